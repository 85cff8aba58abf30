"""SnapStart templates, sandbox side: an initialized runtime that forks environments.

Used by the bootstrap when the worker starts it as a *template* (``_HEARTH_TEMPLATE_FD``
names a ``SOCK_SEQPACKET`` control socket): the runtime runs the function's Init once
(import of the handler module and its top-level code), then the before-snapshot hooks
of ``snapshot_restore_py``, reports ``{"ready": True}`` (or ``{"init_error": {...}}``)
and serves fork requests. The host side is :mod:`hearth.sandbox.template`.

Each fork request carries four fds: the new environment's control socket, its
exec-report pipe, its output pipe and a detached mount of its own ``/tmp``; and a fifth,
the write end of its framed log channel, if it has one. The environment finds that at
the lowest free fd from 62 up (the template ran user code: 62 itself may be in use) and
its number in ``_LAMBDA_TELEMETRY_LOG_FD``, which the bootstrap reads when the fork
returns to it. The forked
child (the *waiter*) isolates itself from the template and from its siblings, although
it can hold no privilege of its own (the template runs as the sandbox's unprivileged uid
with no capabilities, and it has run user code):

1. ``unshare(CLONE_NEWUSER)``: capabilities, but only over namespaces the new user
   namespace will own; the only uid/gid mapped is the sandbox's own (identity map).
2. New mount, network, IPC, UTS and pid namespaces, owned by that user namespace.
3. Its own ``/tmp`` (``move_mount`` of the detached mount the worker made), ``lo`` up, a
   listening Runtime API socket on ``127.0.0.1:<port>`` sent to the worker with a pidfd
   of itself (the worker learns host pids from pidfds: this process's own pid numbers
   are those of the template's pid namespace), and the egress veth configured with
   ioctls (an exec'd ``ip`` would not keep the user namespace's capabilities).
4. A fork: PID 1 of the new pid namespace mounts its ``/proc``, sets the hostname, drops
   every capability (bounding set, ambient, permitted), stacks the ordinary sandbox
   seccomp filter on the template's, waits for the worker's go (sent once both
   processes are in the environment's cgroups), and returns to the bootstrap, which runs
   the after-restore hooks and the usual Runtime API loop. The waiter drops its
   capabilities and stacks the same filter, then reaps PID 1 and reports its exit
   status, as the launcher's waiter does.

The template's seccomp filter is the ordinary one minus ``unshare`` and the mount calls
that steps 1-3 need; every environment forked from it runs under the ordinary one.

Standard library only (Python 3.9-3.13).
"""

import array
import contextlib
import ctypes
import fcntl
import marshal
import os
import signal
import socket
import struct
import sys

CLONE_NEWNS = 0x00020000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000
MS_NOSUID, MS_NODEV, MS_NOEXEC = 2, 4, 8
AT_FDCWD = -100
MOVE_MOUNT_F_EMPTY_PATH = 4
SYS_MOVE_MOUNT = {"x86_64": 429, "aarch64": 429}
SYS_CAPSET = {"x86_64": 126, "aarch64": 91}
PR_SET_PDEATHSIG = 1
PR_SET_SECCOMP = 22
PR_CAPBSET_DROP = 24
PR_CAP_AMBIENT = 47
PR_CAP_AMBIENT_CLEAR_ALL = 4
SECCOMP_MODE_FILTER = 2
_LINUX_CAPABILITY_VERSION_3 = 0x20080522

SIOCSIFNAME = 0x8923
SIOCGIFFLAGS = 0x8913
SIOCSIFFLAGS = 0x8914
SIOCSIFADDR = 0x8916
SIOCSIFNETMASK = 0x891C
SIOCADDRT = 0x890B
IFF_UP = 0x1
RTF_UP, RTF_GATEWAY = 0x1, 0x2

_libc = ctypes.CDLL(None, use_errno=True)


class TemplateError(Exception):
    """A step of an environment's set-up failed; the message names it."""


def _check(res, what):
    if res != 0:
        err = ctypes.get_errno()
        raise TemplateError(f"{what}: {os.strerror(err)} (errno {err})")


def _prctl(option, arg):
    _check(_libc.prctl(option, ctypes.c_ulong(arg), 0, 0, 0), f"prctl {option}")


def _recv(sock, nfds):
    fds = array.array("i")
    msg, ancdata, _flags, _addr = sock.recvmsg(1 << 20, socket.CMSG_LEN(nfds * fds.itemsize))
    for level, kind, data in ancdata:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            fds.frombytes(data[: len(data) - (len(data) % fds.itemsize)])
    return msg, list(fds)


def _send(sock, message, fds=()):
    data = marshal.dumps(message)
    if fds:
        sock.sendmsg([data], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", fds))])
    else:
        sock.send(data)


# -- the template --------------------------------------------------------------------


def run(fd, load_handler, init_failed):
    """Init, before-snapshot hooks, then serve forks. Returns the handler in each forked
    environment; never returns in the template itself.

    ``load_handler()`` imports the handler (raises on an Init error); ``init_failed(exc)``
    logs an Init error as the runtime does and returns its error document (a dict).
    """
    ctl = socket.socket(fileno=fd)
    os.set_inheritable(fd, False)
    try:
        handler = load_handler()
        import snapshot_restore_py

        for func, args, kwargs in snapshot_restore_py.get_before_snapshot():
            func(*args, **kwargs)
    except Exception as exc:
        _send(ctl, {"init_error": init_failed(exc)})
        os._exit(1)
    _flush()
    # Forked waiters are reaped by the kernel: their statuses travel to the worker.
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)
    _send(ctl, {"ready": True})
    while True:
        try:
            data, fds = _recv(ctl, 5)
        except InterruptedError:
            continue
        if not data:
            os._exit(0)  # the worker closed the template
        request = marshal.loads(data)
        if len(fds) not in (4, 5):
            for extra in fds:
                os.close(extra)
            _send(ctl, {"error": "expected 4 or 5 fds"})
            continue
        _flush()
        pid = os.fork()
        if pid == 0:
            ctl.close()
            signal.signal(signal.SIGCHLD, signal.SIG_DFL)
            _environment(request, fds)  # returns in the environment's PID 1 only
            return handler
        for each in fds:
            os.close(each)
        _send(ctl, {"forked": pid})


def _flush():
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):
            stream.flush()


def after_restore():
    """Run the after-restore hooks; return the exception of the first that failed."""
    import snapshot_restore_py

    for func, args, kwargs in snapshot_restore_py.get_after_restore():
        try:
            func(*args, **kwargs)
        except Exception as exc:
            return exc
    return None


# -- a forked environment ------------------------------------------------------------


def _environment(request, fds):
    ctl_fd, exec_fd, output_fd, tmp_fd = fds[:4]
    ctl = socket.socket(fileno=ctl_fd)
    if len(fds) == 5:  # the framed log channel (see the module docstring)
        log_fd = fcntl.fcntl(fds[4], fcntl.F_DUPFD, 62)
        os.close(fds[4])
        os.environ["_LAMBDA_TELEMETRY_LOG_FD"] = str(log_fd)
    else:
        os.environ.pop("_LAMBDA_TELEMETRY_LOG_FD", None)
    try:
        null = os.open("/dev/null", os.O_RDONLY)
        os.dup2(null, 0)
        os.dup2(output_fd, 1)
        os.dup2(output_fd, 2)
        os.close(null)
        os.close(output_fd)
        _isolate(tmp_fd)
        api = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        api.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        api.bind(("127.0.0.1", request["api_port"]))
        api.listen(64)
        me = os.pidfd_open(os.getpid())
        _send(ctl, {"event": "netns", "pid": 0}, [api.fileno(), me])
        api.close()
        os.close(me)
        if request["network"] == "egress":
            reply = marshal.loads(ctl.recv(4096) or marshal.dumps({}))
            if reply.get("event") != "veth":
                raise TemplateError(f"egress set-up aborted by the worker: {reply!r}")
            _configure_egress(request["egress"])
        go_r, go_w = os.pipe()
        pid = os.fork()
    except BaseException as exc:
        _report(exec_fd, exc)
        os._exit(126)
    if pid == 0:
        try:
            os.close(go_w)
            _pid1(request, exec_fd, go_r, ctl)
        except BaseException as exc:
            _report(exec_fd, exc)
            os._exit(127)
        return
    os.close(exec_fd)
    os.close(go_r)
    try:
        child = os.pidfd_open(pid)
        _send(ctl, {"event": "child", "pid": 0}, [child])
        os.close(child)
        reply = marshal.loads(ctl.recv(4096) or marshal.dumps({}))
        if reply.get("event") == "cgroup":
            os.write(go_w, b"1")
    except OSError:
        pass
    os.close(go_w)  # without the go, PID 1 reads EOF and exits
    try:  # the waiter needs no privilege either from here on
        _drop_capabilities()
        _load_seccomp(request["seccomp_bpf"])
    except (OSError, TemplateError):
        pass
    _wait(ctl, pid)


def _isolate(tmp_fd):
    """Steps 1-3 of the module docstring up to the Runtime API socket."""
    uid, gid = os.getuid(), os.getgid()
    _check(_libc.unshare(CLONE_NEWUSER), "unshare user namespace")
    for name, text in (("setgroups", "deny"), ("uid_map", f"{uid} {uid} 1")):
        with open(f"/proc/self/{name}", "w") as f:
            f.write(text)
    with open("/proc/self/gid_map", "w") as f:
        f.write(f"{gid} {gid} 1")
    flags = CLONE_NEWNS | CLONE_NEWNET | CLONE_NEWIPC | CLONE_NEWUTS | CLONE_NEWPID
    _check(_libc.unshare(flags), "unshare")
    machine = os.uname().machine
    res = _libc.syscall(
        SYS_MOVE_MOUNT[machine], tmp_fd, b"", AT_FDCWD, b"/tmp", MOVE_MOUNT_F_EMPTY_PATH
    )
    _check(0 if res == 0 else -1, "move_mount /tmp")
    os.close(tmp_fd)
    _if_up(b"lo")


def _if_up(name):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        req = struct.pack("16sh22x", name, 0)
        flags = struct.unpack("16sh22x", fcntl.ioctl(s.fileno(), SIOCGIFFLAGS, req))[1]
        fcntl.ioctl(s.fileno(), SIOCSIFFLAGS, struct.pack("16sh22x", name, flags | IFF_UP))
    finally:
        s.close()


def _sockaddr(address):
    return struct.pack("HH4s8x", socket.AF_INET, 0, socket.inet_aton(address))


def _ifreq_addr(name, address):
    """A ``struct ifreq`` (40 bytes) carrying an IPv4 address."""
    return struct.pack("16s", name) + _sockaddr(address) + bytes(8)


def _configure_egress(cfg):
    """The inner veth end: renamed eth0, addressed, up, default route via the host end."""
    address, _, prefix = cfg["address"].partition("/")
    mask = socket.inet_ntoa(struct.pack("!I", (0xFFFFFFFF << (32 - int(prefix))) & 0xFFFFFFFF))
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        old = cfg["ifname"].encode()
        fcntl.ioctl(s.fileno(), SIOCSIFNAME, struct.pack("16s16s8x", old, b"eth0"))
        fcntl.ioctl(s.fileno(), SIOCSIFADDR, _ifreq_addr(b"eth0", address))
        fcntl.ioctl(s.fileno(), SIOCSIFNETMASK, _ifreq_addr(b"eth0", mask))
        try:  # the firewall is IPv4-only: no IPv6 on the way out (netns-local sysctl)
            with open("/proc/sys/net/ipv6/conf/eth0/disable_ipv6", "w") as f:
                f.write("1")
        except OSError:
            pass
        _if_up(b"eth0")
        # struct rtentry (x86_64/aarch64 layout): pad, dst, gateway, genmask, flags, ...
        route = struct.pack(
            "L16s16s16sHhLPhPLLH",
            0,
            _sockaddr("0.0.0.0"),
            _sockaddr(cfg["gateway"]),
            _sockaddr("0.0.0.0"),
            RTF_UP | RTF_GATEWAY,
            0,
            0,
            0,
            0,
            0,
            0,
            0,
            0,
        )
        buf = bytearray(route) + bytes(120 - len(route))  # sizeof(struct rtentry)
        fcntl.ioctl(s.fileno(), SIOCADDRT, buf)
    except OSError as exc:
        raise TemplateError(f"egress set-up: {exc}") from None
    finally:
        s.close()


class _CapHeader(ctypes.Structure):
    _fields_ = (("version", ctypes.c_uint32), ("pid", ctypes.c_int))


class _CapData(ctypes.Structure):
    _fields_ = (
        ("effective", ctypes.c_uint32),
        ("permitted", ctypes.c_uint32),
        ("inheritable", ctypes.c_uint32),
    )


class _SockFprog(ctypes.Structure):
    _fields_ = (("len", ctypes.c_ushort), ("filter", ctypes.c_void_p))


def _drop_capabilities():
    cap = 0
    while _libc.prctl(PR_CAPBSET_DROP, ctypes.c_ulong(cap), 0, 0, 0) == 0:
        cap += 1
    _libc.prctl(PR_CAP_AMBIENT, ctypes.c_ulong(PR_CAP_AMBIENT_CLEAR_ALL), 0, 0, 0)
    header = _CapHeader(_LINUX_CAPABILITY_VERSION_3, 0)
    data = (_CapData * 2)()
    res = _libc.syscall(SYS_CAPSET[os.uname().machine], ctypes.byref(header), data)
    _check(0 if res == 0 else -1, "capset")


def _load_seccomp(bpf):
    if not bpf or len(bpf) % 8:
        raise TemplateError("invalid seccomp program")
    buf = ctypes.create_string_buffer(bpf, len(bpf))
    prog = _SockFprog(len(bpf) // 8, ctypes.cast(buf, ctypes.c_void_p))
    res = _libc.prctl(PR_SET_SECCOMP, ctypes.c_ulong(SECCOMP_MODE_FILTER), ctypes.byref(prog), 0, 0)
    _check(res, "load seccomp filter")


def _pid1(request, exec_fd, go_fd, ctl):
    """PID 1 of the environment: its /proc, hostname, no capabilities, the seccomp filter."""
    _prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    with open("/proc/self/oom_score_adj", "w") as f:
        f.write("1000")
    proc_flags = ctypes.c_ulong(MS_NOSUID | MS_NODEV | MS_NOEXEC)
    _check(_libc.mount(b"proc", b"/proc", b"proc", proc_flags, None), "mount /proc")
    hostname = request["hostname"].encode()
    _check(_libc.sethostname(hostname, len(hostname)), "sethostname")
    os.chdir(request["cwd"])
    _drop_capabilities()
    _load_seccomp(request["seccomp_bpf"])
    for sig in (signal.SIGCHLD, signal.SIGPIPE, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.pthread_sigmask(signal.SIG_SETMASK, set())
    if os.read(go_fd, 1) != b"1":
        raise TemplateError("environment set-up aborted before joining its cgroups")
    os.close(go_fd)
    ctl.close()
    _reseed()
    os.close(exec_fd)  # EOF without data: the worker's "the runtime is running"


def _reseed():
    """Fresh randomness in every environment: ``random``'s global generator (reseeded at
    fork by CPython already; again here, from the kernel) -- never the template's state."""
    import random

    random.seed()


def _report(exec_fd, exc):
    msg = str(exc) if isinstance(exc, TemplateError) else f"{type(exc).__name__}: {exc}"
    with contextlib.suppress(OSError):
        os.write(exec_fd, marshal.dumps({"error": msg}))


def _wait(ctl, pid):
    """Reap PID 1, report its wait status and exit the same way (the launcher's waiter)."""
    while True:
        try:
            _, status = os.waitpid(pid, 0)
            break
        except ChildProcessError:
            status = 255 << 8
            break
        except InterruptedError:
            continue
    with contextlib.suppress(OSError):
        ctl.send(marshal.dumps({"event": "exit", "status": status}))
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        signal.signal(sig, signal.SIG_DFL)
        os.kill(os.getpid(), sig)
    os._exit(os.waitstatus_to_exitcode(status) if os.WIFEXITED(status) else 255)
