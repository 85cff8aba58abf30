"""Sandbox launcher: the small program that turns itself into one isolated sandbox.

Run by :mod:`hearth.sandbox.launcher` as ``python -I -S _nsinit.py CTL_FD EXEC_FD`` with
the venv interpreter (never ``fork``-ed from the server). Standard library only. Start-up
cost was measured and trimmed, since it is on every cold start: ``-S`` skips ``site``
(10 ms instead of 60 ms: the venv's ``.pth`` files import certifi); the backend runs a
pre-compiled ``.pyc`` of this file (a script is otherwise compiled on every start); the
C modules ``_socket``/``_signal`` replace ``socket``/``signal`` (whose ``enum`` import
costs ~8 ms); messages use
:mod:`marshal` instead of ``json`` (json pulls in ``re``: ~10 ms); and the seccomp filter
arrives as BPF *compiled by libseccomp through pyseccomp in the server*
(:mod:`hearth.sandbox.policy`) and is installed here with one ``prctl`` -- importing
pyseccomp here cost ~7 ms (ctypes.util, typing), for the same filter bytes.

The backend puts this process into the sandbox's cgroups (in a thread, while this
interpreter starts: a v1 cgroup migration waits for an RCU grace period, 10-18 ms), so the
waiter below is a cgroup member too. So that the OOM killer never picks the waiter over the
function, the child raises its ``oom_score_adj`` to 1000 (lowering the waiter's would need
CAP_SYS_RESOURCE, which this host's bounding set lacks); sandbox processes are thereby
also the first victims of a host-wide OOM, which protects the server.

Protocol (``CTL_FD`` is a ``SOCK_SEQPACKET`` socket, ``EXEC_FD`` the write end of a pipe;
every message is one marshalled dict):

1. backend → launcher on CTL: the launch spec (see ``process.py``).
2. The launcher unshares mnt/net/ipc/uts/pid namespaces, brings ``lo`` up, listens on
   ``127.0.0.1:<api_port>`` and sends ``{"event": "netns", "pid": <pid>}`` with that
   listening socket attached (SCM_RIGHTS).
3. For ``network == "egress"`` it then waits for ``{"event": "veth"}`` (the backend has moved
   the inner veth end into this netns) and configures it.
4. It forks. The child is PID 1 of the new pid namespace: it builds a new minimal root,
   drops to the sandbox uid, loads the seccomp filter and execs
   ``argv``. Any failure on the way is written as one message ``{"error": ...}`` to
   EXEC_FD (close-on-exec), so the backend sees EOF without data exactly when exec worked.
   A *spare* (``"spare": True`` in the spec, made ahead by :mod:`hearth.sandbox.stems`)
   stops before the function's part: it waits on CTL for ``{"event": "specialize", ...}``
   with the code as a detached mount attached (see :func:`child`), then goes on the same.
5. The parent stays outside the pid namespace as a waiter: it sends
   ``{"event": "child", "pid": <host pid of the child>}``, reaps the child, sends
   ``{"event": "exit", "status": <wait status>}`` on CTL and exits the same way.
"""

from __future__ import annotations

import _signal as signal  # type: ignore[import-not-found]
import _socket as socket
import ctypes
import fcntl
import marshal
import os
import resource
import struct
import sys

TYPE_CHECKING = False  # not ``typing.TYPE_CHECKING``: importing typing costs ~3 ms
if TYPE_CHECKING:
    from typing import Any

CLONE_NEWNS = 0x00020000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000

MS_RDONLY = 1
MS_NOSUID = 2
MS_NODEV = 4
MS_NOEXEC = 8
MS_REMOUNT = 32
MS_BIND = 4096
MS_REC = 16384
MS_PRIVATE = 1 << 18
MNT_DETACH = 2

PR_SET_PDEATHSIG = 1
PR_SET_SECCOMP = 22
PR_CAPBSET_DROP = 24
PR_SET_NO_NEW_PRIVS = 38
SECCOMP_MODE_FILTER = 2

SIOCGIFFLAGS = 0x8913
SIOCSIFFLAGS = 0x8914
IFF_UP = 0x1

SYS_PIVOT_ROOT = {"x86_64": 155, "aarch64": 41}
SYS_MOVE_MOUNT = 429  # the same number on every architecture (new syscalls are unified)
MOVE_MOUNT_F_EMPTY_PATH = 0x4
AT_FDCWD = -100

#: Host paths that are bound read-only into the new root (symlinks are recreated instead).
HOST_DIRS = ("usr", "bin", "lib", "lib32", "lib64", "libx32", "sbin", "etc")
DEV_NODES = ("null", "zero", "full", "random", "urandom", "tty")
#: Nice value of a spare while it is made and waits (as a fork-path stem's).
SPARE_NICE = 10
#: The framed log channel's number in the sandbox (Lambda's current runtimes find theirs
#: at 62 too), named by :data:`LOG_FD_ENV` (see hearth.observe.frames).
LOG_FD = 62
LOG_FD_ENV = "_LAMBDA_TELEMETRY_LOG_FD"

_libc = ctypes.CDLL("libc.so.6", use_errno=True)


class LaunchError(Exception):
    """A setup step failed; the message names the step."""


def take_log_fd(log_fd: int, spec: dict[str, Any], *others: int) -> list[int]:
    """Move the framed log channel's write end ``log_fd`` (-1: none) to :data:`LOG_FD`
    and mark ``spec`` as having it; return ``others`` (fds still needed), one that was
    at :data:`LOG_FD` moved elsewhere (close-on-exec: none is needed past the exec)."""
    if log_fd < 0:
        return list(others)
    moved = [
        fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, LOG_FD + 1) if fd == LOG_FD else fd for fd in others
    ]
    if log_fd != LOG_FD:
        os.dup2(log_fd, LOG_FD)  # inheritable
        os.close(log_fd)
    spec["log_fd"] = LOG_FD
    return moved


def close_fds(spec: dict[str, Any], *keep: int) -> None:
    """Close every fd from 3 up but ``keep`` and the log channel (if the spec has it)."""
    low = 3
    for fd in sorted({*keep, spec.get("log_fd", -1)}):
        if fd < low:
            continue
        os.closerange(low, fd)
        low = fd + 1
    os.closerange(low, 1 << 20)


def runtime_env(spec: dict[str, Any]) -> dict[str, str]:
    """The runtime's environment: the function's, and the log channel's number if any."""
    env: dict[str, str] = spec["env"]
    if "log_fd" in spec:
        env = {**env, LOG_FD_ENV: str(spec["log_fd"])}
    return env


def _check(res: int, what: str) -> None:
    if res != 0:
        err = ctypes.get_errno()
        raise LaunchError(f"{what}: {os.strerror(err)} (errno {err})")


def mount(src: str | None, target: str, fstype: str | None, flags: int, data: str = "") -> None:
    res = _libc.mount(
        src.encode() if src else None,
        target.encode(),
        fstype.encode() if fstype else None,
        ctypes.c_ulong(flags),
        data.encode() if data else None,
    )
    _check(res, f"mount {src or fstype} on {target}")


def bind_ro(src: str, target: str, extra: int = MS_NODEV) -> None:
    """Bind ``src`` at ``target`` (recursively), then make the top mount read-only."""
    mount(src, target, None, MS_BIND | MS_REC)
    mount(None, target, None, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | extra)


def prctl(option: int, arg: int) -> None:
    _check(_libc.prctl(option, ctypes.c_ulong(arg), 0, 0, 0), f"prctl {option}")


def lo_up() -> None:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        req = struct.pack("16sh22x", b"lo", 0)
        flags = struct.unpack("16sh22x", fcntl.ioctl(s.fileno(), SIOCGIFFLAGS, req))[1]
        fcntl.ioctl(s.fileno(), SIOCSIFFLAGS, struct.pack("16sh22x", b"lo", flags | IFF_UP))
    finally:
        s.close()


class SockFprog(ctypes.Structure):
    _fields_ = (("len", ctypes.c_ushort), ("filter", ctypes.c_void_p))


def load_seccomp(bpf: bytes) -> None:
    """Install a classic-BPF seccomp program (needs no_new_privs or CAP_SYS_ADMIN)."""
    if not bpf or len(bpf) % 8:
        raise LaunchError("invalid seccomp program")
    buf = ctypes.create_string_buffer(bpf, len(bpf))
    prog = SockFprog(len(bpf) // 8, ctypes.cast(buf, ctypes.c_void_p))
    res = _libc.prctl(PR_SET_SECCOMP, ctypes.c_ulong(SECCOMP_MODE_FILTER), ctypes.byref(prog), 0, 0)
    _check(res, "load seccomp filter")


def configure_egress(cfg: dict[str, Any]) -> None:
    """Rename the inner veth end to eth0, address it, route everything via the host end."""
    import subprocess

    ip, dev = cfg["ip_bin"], cfg["ifname"]
    steps = (
        ["link", "set", dev, "name", "eth0"],
        ["addr", "add", cfg["address"], "dev", "eth0"],
        ["link", "set", "eth0", "up"],
        ["route", "add", "default", "via", cfg["gateway"]],
    )
    for i, args in enumerate(steps):
        if i == 1:  # the firewall is IPv4-only: no IPv6 on the way out (netns-local sysctl)
            with open("/proc/sys/net/ipv6/conf/eth0/disable_ipv6", "w") as f:
                f.write("1")
        res = subprocess.run([ip, *args], capture_output=True, text=True, check=False)
        if res.returncode != 0:
            raise LaunchError(f"ip {' '.join(args)}: {res.stderr.strip()}")


def make_mountpoint(path: str, is_dir: bool) -> None:
    if is_dir:
        os.makedirs(path, exist_ok=True)
    else:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        if not os.path.exists(path):
            os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o644))


def build_root(spec: dict[str, Any]) -> None:
    """Create the sandbox's filesystem at ``spec["root_dir"]`` and pivot into it."""
    prepare_root(spec)
    finish_root(spec)


def prepare_root(spec: dict[str, Any]) -> None:
    """Everything of :func:`build_root` that does not depend on the function: a stem
    (see :mod:`hearth.sandbox.stems`) does this before it knows which one it will run."""
    root = spec["root_dir"]
    mount(None, "/", None, MS_REC | MS_PRIVATE)
    mount("tmpfs", root, "tmpfs", MS_NOSUID | MS_NODEV, "size=1m,mode=755")
    for name in HOST_DIRS:
        host = "/" + name
        if os.path.islink(host):
            os.symlink(os.readlink(host), f"{root}/{name}")
        elif os.path.isdir(host):
            os.mkdir(f"{root}/{name}")
            bind_ro(host, f"{root}/{name}")
    for d in ("proc", "dev", "tmp", "var", "var/task", "opt"):
        os.makedirs(f"{root}/{d}", exist_ok=True)
    for host_path, sandbox_path in spec["mounts"]:
        target = root + "/" + sandbox_path.lstrip("/")
        make_mountpoint(target, os.path.isdir(host_path))
        bind_ro(host_path, target)
    mount("proc", f"{root}/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
    build_dev(f"{root}/dev", spec["shm_mb"])
    tmp = spec["tmp"]
    if tmp["kind"] == "loop":
        mount(tmp["device"], f"{root}/tmp", "ext4", MS_NOSUID | MS_NODEV)
        try:  # noqa: SIM105 (no contextlib: start-up cost)
            os.rmdir(f"{root}/tmp/lost+found")
        except OSError:
            pass
    else:
        mount("tmpfs", f"{root}/tmp", "tmpfs", MS_NOSUID | MS_NODEV, f"size={tmp['size_mb']}m")


def finish_root(spec: dict[str, Any]) -> None:
    """The function's part of :func:`build_root`: its code, then :func:`enter_root`."""
    bind_ro(spec["code_dir"], f"{spec['root_dir']}/var/task")
    enter_root(spec)


def enter_root(spec: dict[str, Any]) -> None:
    """Give ``/tmp`` to the sandbox uid, pivot into the new root, make it read-only."""
    root = spec["root_dir"]
    os.chown(f"{root}/tmp", spec["uid"], spec["uid"])
    os.chmod(f"{root}/tmp", 0o1777)
    os.chdir(root)
    _check(_libc.syscall(SYS_PIVOT_ROOT[os.uname().machine], b".", b"."), "pivot_root")
    _check(_libc.umount2(b".", MNT_DETACH), "umount old root")
    os.chdir("/")
    mount(None, "/", None, MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV)


def attach_code(tree_fd: int) -> None:
    """Mount the function's code at ``/var/task`` of the entered root (a stem's last step).

    ``tree_fd`` is a detached read-only clone of the code directory that the backend made
    with ``open_tree`` (:mod:`hearth.sandbox.codetree`): the host path is out of reach
    after the pivot, and the pivot's unmount of the old root waits for an RCU grace period
    (0.2-8 ms measured here), so a stem pivots before it knows its function."""
    res = _libc.syscall(
        SYS_MOVE_MOUNT, tree_fd, b"", AT_FDCWD, b"/var/task", MOVE_MOUNT_F_EMPTY_PATH
    )
    _check(res, "mount the function code at /var/task")


def build_dev(dev: str, shm_mb: int) -> None:
    mount("tmpfs", dev, "tmpfs", MS_NOSUID | MS_NOEXEC, "size=64k,mode=755")
    for name in DEV_NODES:
        if os.path.exists(f"/dev/{name}"):
            make_mountpoint(f"{dev}/{name}", False)
            mount(f"/dev/{name}", f"{dev}/{name}", None, MS_BIND)
    os.mkdir(f"{dev}/shm")
    mount("tmpfs", f"{dev}/shm", "tmpfs", MS_NOSUID | MS_NODEV, f"size={shm_mb}m,mode=1777")
    for name, target in (
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
    ):
        os.symlink(target, f"{dev}/{name}")
    mount(None, dev, None, MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NOEXEC)


def drop_bounding_set() -> None:
    """Empty the capability bounding set (no exec can regain a capability); the effective
    set stays, so a stem does this before it knows its function (~0.4 ms of prctls)."""
    cap = 0
    while _libc.prctl(PR_CAPBSET_DROP, ctypes.c_ulong(cap), 0, 0, 0) == 0:
        cap += 1


def drop_privileges(spec: dict[str, Any], bounding: bool = True) -> None:
    """Become the sandbox uid with no capabilities, no_new_privs and the seccomp filter
    (``bounding=False``: :func:`drop_bounding_set` was done already)."""
    # Lambda's 1,024, or the host's hard limit if that is lower (only raising it needs a
    # privilege this process may not have).
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    nofile = spec["nofile"] if hard == resource.RLIM_INFINITY else min(spec["nofile"], hard)
    resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, nofile))
    if bounding:
        drop_bounding_set()
    uid = spec["uid"]
    os.setgroups([])
    os.setresgid(uid, uid, uid)
    os.setresuid(uid, uid, uid)
    prctl(PR_SET_NO_NEW_PRIVS, 1)
    prctl(PR_SET_PDEATHSIG, signal.SIGKILL)  # cleared by the credential change above
    load_seccomp(spec["seccomp_bpf"])


def child(spec: dict[str, Any], exec_fd: int, ctl: socket.socket) -> None:
    """PID 1 of the sandbox: build the root, drop privileges, exec.

    A spare (``spec["spare"]``, see :mod:`hearth.sandbox.stems`) builds the root without
    the function's code and pivots into it, empties its bounding set, then waits on
    ``ctl`` for ``{"event": "specialize", ...}`` with the code as a detached mount
    (:func:`attach_code`): the function's argv, env, cwd, hostname, nofile and seccomp
    filter. The waiter never reads ``ctl`` after the fork, so that message reaches this
    process only, which is in the sandbox's cgroups already (the backend joined the
    launcher before sending the spec)."""
    prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    with open("/proc/self/oom_score_adj", "w") as f:
        f.write("1000")
    if spec["network"] == "egress":  # here, not in the waiter: the first process forked
        configure_egress(spec["egress"])  # after unshare(NEWPID) is the namespace's init
    spare = spec.get("spare", False)
    if spare:
        prepare_root(spec)
        enter_root(spec)
        drop_bounding_set()
        spec = specialization(spec, ctl)
    else:
        build_root(spec)
    _check(_libc.sethostname(spec["hostname"].encode(), len(spec["hostname"])), "sethostname")
    os.chdir(spec["cwd"])
    os.umask(0o022)
    drop_privileges(spec, bounding=not spare)
    for sig in (signal.SIGCHLD, signal.SIGPIPE, signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_SETMASK, set())
    keep = spec.get("keep_fds", ())
    close_fds(spec, exec_fd, *keep)
    for fd in keep:
        os.set_inheritable(fd, True)
    argv = spec["argv"]
    try:
        os.execve(argv[0], argv, runtime_env(spec))
    except OSError as exc:
        raise LaunchError(f"exec {argv[0]}: {exc.strerror}") from None


def specialization(spare: dict[str, Any], ctl: socket.socket) -> dict[str, Any]:
    """Wait for a spare's function, mount its code; the full spec (see :func:`child`)."""
    while True:
        try:
            data, ancdata, _, _ = ctl.recvmsg(1 << 20, 64)
            break
        except InterruptedError:
            continue
    fds: list[int] = []
    for level, kind, payload in ancdata:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            n = len(payload) // 4
            fds.extend(struct.unpack(f"{n}i", payload[: n * 4]))
    spec = marshal.loads(data) if data else {}
    if spec.get("event") != "specialize" or len(fds) != 1:
        raise LaunchError("spare released without a function")
    attach_code(fds[0])
    os.close(fds[0])
    os.setpriority(os.PRIO_PROCESS, 0, 0)  # back from SPARE_NICE (needs CAP_SYS_NICE: now)
    return {**spare, **spec}


def host_pid() -> int:
    """This process's pid as the host's ``/proc`` (and so the backend) knows it, also from
    inside a new pid namespace, where ``getpid()`` is 1."""
    return int(os.readlink("/proc/self"))


def enter_namespaces(spec: dict[str, Any], ctl: socket.socket, new_pid: bool = True) -> None:
    """Steps 2-3 of the protocol: new namespaces, ``lo`` up, the listening Runtime API
    socket sent as "netns", and (egress) the wait for the backend's veth.

    ``new_pid`` False: the caller is the PID 1 of its pid namespace already (forked into
    it by a zygote, see :func:`hearth.sandbox._zygote_main.serve`)."""
    flags = CLONE_NEWNS | CLONE_NEWNET | CLONE_NEWIPC | CLONE_NEWUTS
    _check(_libc.unshare(flags | CLONE_NEWPID if new_pid else flags), "unshare")
    lo_up()
    api = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    api.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    api.bind(("127.0.0.1", spec["api_port"]))
    api.listen(64)
    msg = marshal.dumps({"event": "netns", "pid": os.getpid() if new_pid else host_pid()})
    rights = struct.pack("i", api.fileno())
    ctl.sendmsg([msg], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, rights)])
    api.close()
    if spec["network"] == "egress":
        reply = marshal.loads(ctl.recv(4096) or marshal.dumps({}))
        if reply.get("event") != "veth":
            raise LaunchError(f"egress setup aborted by the backend: {reply!r}")


def report_error(exec_fd: int, exc: BaseException) -> None:
    msg = str(exc) if isinstance(exc, LaunchError) else f"{type(exc).__name__}: {exc}"
    try:  # noqa: SIM105
        os.write(exec_fd, marshal.dumps({"error": msg}))
    except OSError:
        pass


def waiter(ctl: socket.socket, pid: int) -> None:
    """Reap the sandbox's PID 1, report its wait status and exit the same way."""
    while True:
        try:
            _, status = os.waitpid(pid, 0)
            break
        except ChildProcessError:
            status = 255 << 8
            break
        except InterruptedError:
            continue
    try:  # noqa: SIM105
        ctl.send(marshal.dumps({"event": "exit", "status": status}))
    except OSError:
        pass
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        signal.signal(sig, signal.SIG_DFL)
        os.kill(os.getpid(), sig)
    os._exit(os.waitstatus_to_exitcode(status) if os.WIFEXITED(status) else 255)


def main() -> None:
    ctl_fd, exec_fd = int(sys.argv[1]), int(sys.argv[2])
    log: dict[str, Any] = {}
    if len(sys.argv) > 3:  # the framed log channel's write end
        ctl_fd, exec_fd = take_log_fd(int(sys.argv[3]), log, ctl_fd, exec_fd)
    os.set_inheritable(exec_fd, False)
    ctl = socket.socket(fileno=ctl_fd)
    try:
        prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
        spec = marshal.loads(ctl.recv(1 << 20))
        spec.update(log)
        if spec.get("spare"):  # made ahead: cold starts come first; PID 1 inherits it
            os.setpriority(os.PRIO_PROCESS, 0, SPARE_NICE)
        enter_namespaces(spec, ctl)
        pid = os.fork()
    except BaseException as exc:
        report_error(exec_fd, exc)
        os._exit(126)
    if pid == 0:
        try:
            child(spec, exec_fd, ctl)
        except BaseException as exc:
            report_error(exec_fd, exc)
        os._exit(127)
    os.close(exec_fd)
    try:  # noqa: SIM105
        ctl.send(marshal.dumps({"event": "child", "pid": pid}))
    except OSError:
        pass
    if spec.get("spare"):
        os.setpriority(os.PRIO_PROCESS, 0, 0)
    waiter(ctl, pid)


if __name__ == "__main__":
    main()
