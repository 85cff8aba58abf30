"""A runtime zygote: one pre-loaded interpreter that forks each new sandbox of its runtime.

Run by :mod:`hearth.sandbox.zygote` as ``python3.X -I -S _zygote_main.py CTL_FD SPEC``
with the *runtime's* interpreter (so standard library only, Python 3.9-3.13). At start it
imports the sandbox launcher (:mod:`hearth.sandbox._nsinit`) for its setup steps and the
runtime's bootstrap (compiled under its sandbox path, ``/var/runtime/bootstrap.py``) with
the standard modules the bootstrap uses; then it reports ``{"ready": pid}`` and serves.

Protocol on ``CTL_FD`` (``SOCK_SEQPACKET``, marshalled dicts):

* server → zygote: ``{"op": "fork"}`` (or ``{"op": "stem"}``, see :func:`_stem_child`)
  with three fds attached: the sandbox's control socket, the exec-report pipe and the
  output pipe, and a fourth if the sandbox has a framed log channel (exactly what the
  exec path's launcher gets). The zygote forks the child
  straight into a new pid namespace and answers ``{"pid": <pid>}``. The child is the
  sandbox's PID 1 and does the launcher's work itself: it follows
  :func:`hearth.sandbox._nsinit.main` step by step (same messages, same namespaces, root,
  uid, capabilities, no_new_privs, seccomp; the cgroup join comes later and overlaps that
  work, see :func:`hearth.sandbox.zygote.join_forked`), and where the exec path would
  ``execve`` the runtime it instead closes the exec pipe (the backend's "exec succeeded"
  signal) and calls the pre-loaded bootstrap's ``main()`` in process. The function's code
  is imported only there, after privileges are dropped.
* zygote → server, on the sandbox's control socket: ``{"event": "exit", "status": ...}``
  once it has reaped that PID 1 (see :func:`serve`): no waiter stays outside the sandbox.

Why fork is safe here: this process never starts a thread (``unshare`` needs a
single-threaded process), never holds user code or secrets (forks share its memory),
and a child closes every fd of the zygote's (other sandboxes' control sockets included)
before anything of its function runs. ``random`` re-seeds itself in every forked child
(``os.register_at_fork``). If the server dies, ``PDEATHSIG`` kills the zygote, and the
sandboxes' own ``PDEATHSIG`` (relative to the zygote, their parent) kills them with it.
When the server closes the control socket (the zygote was idle, :class:`hearth.sandbox.
zygotes.Zygotes`), the zygote forks no more and exits once its last sandbox has exited
(:func:`_drain`): a sandbox outlives its zygote's retirement, never its zygote.
"""

from __future__ import annotations

import _signal as signal  # type: ignore[import-not-found]
import _socket as socket
import array
import fcntl as _fcntl
import gc
import marshal
import os
import select
import sys

TYPE_CHECKING = False
#: Nice value of a stem while it is made and waits (see :func:`_stem_child`).
STEM_NICE = 10
if TYPE_CHECKING:
    from typing import Any

    PathMap = list[tuple[str, str]]


def _load(name: str, path: str, as_path: str | None = None) -> Any:
    """Import a module from a file, its code named ``as_path`` (its path in the sandbox)."""
    import types

    with open(path) as f:
        source = f.read()
    module = types.ModuleType(name)
    module.__file__ = as_path or path
    sys.modules[name] = module
    exec(compile(source, as_path or path, "exec"), module.__dict__)
    return module


def _inside(entry: str, path_map: PathMap) -> str:
    """A host path as the sandbox sees it (unchanged if no mount covers it)."""
    for host, inside in path_map:
        host = host.rstrip("/")
        if entry == host or entry.startswith(host + "/"):
            return inside + entry[len(host) :]
    return entry


def _outside(entry: str, path_map: PathMap) -> str:
    """A sandbox path as the host sees it (the inverse of :func:`_inside`)."""
    for host, inside in path_map:
        inside = inside.rstrip("/")
        if entry == inside or entry.startswith(inside + "/"):
            return host.rstrip("/") + entry[len(inside) :]
    return entry


def _sandbox_paths(path_map: PathMap, minor: str) -> list[str]:
    """``sys.path`` as the exec path's interpreter has it: host prefixes → sandbox paths.

    Packages imported by the zygote keep searching their submodules in ``__path__``
    (e.g. ``encodings.idna``, imported lazily by ``socket``): those lists are rewritten too.
    """
    for module in list(sys.modules.values()):
        search = getattr(module, "__path__", None)
        if isinstance(search, list):
            search[:] = [_inside(p, path_map) for p in search]
    out = ["/var/runtime"]  # PYTHONPATH of the runtime's environment
    out.extend(_inside(entry, path_map) for entry in sys.path)
    site = "/var/lang/lib/python" + minor + "/site-packages"
    if site not in out and os.path.isdir(_outside(site, path_map)):
        out.append(site)
    return out


def prepare_runtime(argv: list[str], path_map: PathMap) -> None:
    """The interpreter state of the exec'd runtime that does not depend on the function:
    ``sys.path`` (and packages' ``__path__``) as the sandbox sees them, argv, prefixes.

    The zygote does this once, before it serves (:func:`main`): done in each child,
    rewriting every loaded module's paths cost ~2 ms and touched (copied) ~0.4 MiB of
    pages per sandbox (measured: 2.4 MiB private in an idle stem, 2.0 without). The
    zygote then imports nothing more: its ``sys.path`` is the sandbox's."""
    minor = f"{sys.version_info[0]}.{sys.version_info[1]}"
    sys.path[:] = _sandbox_paths(path_map, minor)
    sys.path_importer_cache.clear()
    sys.argv[:] = list(argv[3:]) or ["/var/runtime/bootstrap.py"]
    sys.executable = argv[0]
    sys.prefix = sys.exec_prefix = "/var/lang"
    sys.dont_write_bytecode = True


#: The C ``environ`` of a forked runtime: kept alive, the process's environment points into
#: it (see :func:`set_environ`).
_ENVIRON: list[object] = []


def set_environ(env: dict[str, str], libc: Any) -> None:
    """Make ``env`` the process's whole environment: ``os.environ`` and the C ``environ``
    that ``getenv``, ``tzset`` and child processes read.

    ``os.environ.clear()`` and ``update()`` did it with one ``unsetenv`` / ``setenv`` per
    variable, and in a forked child each ``setenv`` (its string, the ``environ`` array
    grown by one each time, glibc's bookkeeping) takes chunks from the malloc free lists
    the zygote left, writing (and so copying) the pages around each: 0.25 MiB of private
    memory per sandbox for Lambda's ~25 variables (measured, python3.12). Instead the
    strings and a NULL-terminated pointer array are built as Python objects (pymalloc's
    memory, not malloc's) and ``environ`` is pointed at them, as POSIX lets a program do;
    a later ``setenv`` copies that array as it would the initial one. ``os.environ``'s own
    dict gets the same entries. Names with ``=`` and values with NUL take the old way
    (which refuses them, as before).
    """
    import ctypes

    data = getattr(os.environ, "_data", None)
    entries = [os.fsencode(k) + b"=" + os.fsencode(v) for k, v in env.items()]
    if not isinstance(data, dict) or any("=" in k for k in env) or any(b"\0" in e for e in entries):
        os.environ.clear()
        os.environ.update(env)
        return
    block = (ctypes.c_char_p * (len(entries) + 1))(*entries)  # its last entry is NULL
    ctypes.c_void_p.in_dll(libc, "environ").value = ctypes.addressof(block)
    _ENVIRON.append(block)
    data.clear()
    data.update((os.fsencode(k), os.fsencode(v)) for k, v in env.items())


def become_runtime(spec: dict[str, Any], exec_fd: int, boot: Any, libc: Any) -> None:
    """In the sandbox's PID 1, after privileges are dropped: hand over to the bootstrap
    (the zygote did :func:`prepare_runtime` already)."""
    set_environ(spec["env"], libc)
    try:
        import time

        time.tzset()
    except (ImportError, AttributeError):
        pass
    os.close(exec_fd)  # EOF without data: the backend's "exec succeeded"
    sys.exit(boot.main())


def launch(
    ctl_fd: int, exec_fd: int, nsinit: Any, boot: Any, stem: bool = False, log: Any = None
) -> None:
    """The sandbox's PID 1 (forked by :func:`serve` into a new pid namespace): the steps of
    :func:`_nsinit.main` and :func:`_nsinit.child`, with the in-process hand-over instead
    of ``execve``.

    A ``stem`` gets a spec without the function (see :func:`_stem_child`)."""
    ctl = socket.socket(fileno=ctl_fd)
    try:
        # Relative to the zygote, our parent: it reaps us and reports our exit status.
        nsinit.prctl(nsinit.PR_SET_PDEATHSIG, signal.SIGKILL)
        if stem:  # made ahead: cold starts (specializations) come first
            os.setpriority(os.PRIO_PROCESS, 0, STEM_NICE)
        spec = marshal.loads(ctl.recv(1 << 20))
        spec.update(log or {})
        nsinit.enter_namespaces(spec, ctl, new_pid=False)
        # The backend moves this process into the sandbox's cgroups while it goes on.
        ctl.send(marshal.dumps({"event": "child", "pid": nsinit.host_pid()}))
        if stem:
            spec = _stem_child(spec, exec_fd, nsinit, ctl)
        else:
            _child(spec, exec_fd, nsinit, ctl)
    except BaseException as exc:
        nsinit.report_error(exec_fd, exc)
        os._exit(127)
    ctl.detach()  # its fd was closed with all others by _child
    spec["env"] = nsinit.runtime_env(spec)
    become_runtime(spec, exec_fd, boot, nsinit._libc)


def _await_cgroup(nsinit: Any, ctl: socket.socket) -> None:
    """Wait for the backend's ``{"event": "cgroup"}``: this process is in the sandbox's
    cgroups (:func:`hearth.sandbox.zygote.join_forked`); nothing of the function runs
    before."""
    data = ctl.recv(4096)
    if not data or marshal.loads(data).get("event") != "cgroup":
        raise nsinit.LaunchError("sandbox setup aborted before joining its cgroups")


def _child(spec: dict[str, Any], exec_fd: int, nsinit: Any, ctl: socket.socket) -> None:
    """:func:`_nsinit.child` up to (not including) ``execve``, then wait until this process
    is in its cgroups (:func:`_await_cgroup`)."""
    with open("/proc/self/oom_score_adj", "w") as f:
        f.write("1000")
    if spec["network"] == "egress":
        nsinit.configure_egress(spec["egress"])
    nsinit.build_root(spec)
    hostname = spec["hostname"].encode()
    nsinit._check(nsinit._libc.sethostname(hostname, len(hostname)), "sethostname")
    os.chdir(spec["cwd"])
    os.umask(0o022)
    nsinit.drop_privileges(spec)
    for sig in (signal.SIGCHLD, signal.SIGPIPE, signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.default_int_handler)  # KeyboardInterrupt, as usual
    signal.pthread_sigmask(signal.SIG_SETMASK, set())
    _await_cgroup(nsinit, ctl)
    nsinit.close_fds(spec, exec_fd)


def _stem_child(
    stem: dict[str, Any],
    exec_fd: int,
    nsinit: Any,
    ctl: socket.socket,
) -> dict[str, Any]:
    """PID 1 of a stem: :func:`_child`, split where the function becomes known.

    Before the go it builds the function-independent root and pivots into it
    (:func:`_nsinit.prepare_root`, :func:`_nsinit.enter_root`); after the go (it is in its
    cgroups) it waits for ``{"event": "specialize", ...}`` on the control socket -- the
    function's argv, env, cwd, hostname, nofile and seccomp filter, with the function's code
    as a detached read-only mount attached -- then mounts the code at ``/var/task``
    (:func:`_nsinit.attach_code`), drops privileges exactly as :func:`_child`, and returns
    the full spec for :func:`become_runtime`. The launcher never reads the
    control socket after the go, so the specialization reaches this process only.
    """
    nsinit.prctl(nsinit.PR_SET_PDEATHSIG, signal.SIGKILL)
    with open("/proc/self/oom_score_adj", "w") as f:
        f.write("1000")
    if stem["network"] == "egress":
        nsinit.configure_egress(stem["egress"])
    nsinit.prepare_root(stem)
    nsinit.enter_root(stem)
    nsinit.drop_bounding_set()
    _await_cgroup(nsinit, ctl)
    data, fds = _recv_fds(ctl)
    spec = marshal.loads(data or marshal.dumps({}))
    if spec.get("event") != "specialize" or len(fds) != 1:
        raise nsinit.LaunchError("stem released without a function")
    nsinit.attach_code(fds[0])
    os.close(fds[0])
    spec = {**stem, **spec}
    os.setpriority(os.PRIO_PROCESS, 0, 0)  # back from STEM_NICE (needs CAP_SYS_NICE: now)
    hostname = spec["hostname"].encode()
    nsinit._check(nsinit._libc.sethostname(hostname, len(hostname)), "sethostname")
    os.chdir(spec["cwd"])
    os.umask(0o022)
    nsinit.drop_privileges(spec, bounding=False)
    for sig in (signal.SIGCHLD, signal.SIGPIPE, signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.default_int_handler)  # KeyboardInterrupt, as usual
    signal.pthread_sigmask(signal.SIG_SETMASK, set())
    nsinit.close_fds(spec, exec_fd)
    return spec


#: The zygote keeps one fd per live sandbox (its reports, see :func:`serve`) from this
#: number up, so that a forked child closes them all with one ``close_range``.
REPORT_FD_BASE = 256


def serve(ctl: socket.socket, nsinit: Any, boot: Any) -> None:
    """Fork one sandbox PID 1 per request, until the server closes the control socket.

    Each child is forked straight into a new pid namespace (``unshare(CLONE_NEWPID)``
    before the ``fork``, ``setns`` back after it) and is the sandbox's PID 1: no launcher
    stays outside to wait for it (that waiter cost ~1.3 MiB per idle sandbox, measured).
    The zygote is its parent instead: it reaps it and sends its wait status as
    ``{"event": "exit", "status": ...}`` on a duplicate of the sandbox's control socket
    that it keeps for this (then closes it: the server sees the report, then EOF -- what
    the exec path's waiter sends too). ``SIGCHLD`` wakes the loop through a wakeup fd.
    """
    wake_r, wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
    signal.set_wakeup_fd(wake_w, warn_on_full_buffer=False)
    signal.signal(signal.SIGCHLD, _on_sigchld)
    own_pidns = os.open("/proc/self/ns/pid", os.O_RDONLY | os.O_CLOEXEC)
    reports: dict[int, int] = {}
    while True:
        try:
            readable = select.select([ctl.fileno(), wake_r], [], [])[0]
        except InterruptedError:
            continue
        if wake_r in readable:
            while True:
                try:
                    if not os.read(wake_r, 512):
                        break
                except BlockingIOError:
                    break
            _reap(reports)
        if ctl.fileno() not in readable:
            continue
        try:
            data, fds = _recv_fds(ctl)
        except InterruptedError:
            continue
        if not data:  # the server let this zygote go (idle, or over the cap: see zygote.py)
            _drain(wake_r, reports)
            return
        if len(fds) not in (3, 4):
            for fd in fds:
                os.close(fd)
            ctl.send(marshal.dumps({"error": "expected 3 or 4 fds"}))
            continue
        child_ctl, exec_w, output_w = fds[:3]
        stem = marshal.loads(data).get("op") == "stem"
        try:
            report = _fcntl.fcntl(child_ctl, _fcntl.F_DUPFD_CLOEXEC, REPORT_FD_BASE)
            nsinit._check(nsinit._libc.unshare(nsinit.CLONE_NEWPID), "unshare")
        except (OSError, nsinit.LaunchError) as exc:
            for fd in fds:
                os.close(fd)
            ctl.send(marshal.dumps({"error": str(exc)}))
            continue
        gc.freeze()  # what this loop made since the last fork stays out of the child's sight
        try:
            pid = os.fork()
        except OSError as exc:
            pid, error = -1, str(exc)
        if pid != 0:  # the zygote's own children stay in its pid namespace (or it stops)
            nsinit._check(nsinit._libc.setns(own_pidns, nsinit.CLONE_NEWPID), "setns")
        if pid < 0:
            for fd in (*fds, report):
                os.close(fd)
            ctl.send(marshal.dumps({"error": error}))
            continue
        if pid == 0:
            signal.set_wakeup_fd(-1)
            signal.signal(signal.SIGCHLD, signal.SIG_DFL)
            ctl.close()
            os.closerange(REPORT_FD_BASE, 1 << 20)  # other sandboxes' reports, this one's
            for fd in (wake_r, wake_w, own_pidns):
                os.close(fd)
            null = os.open("/dev/null", os.O_RDONLY)
            os.dup2(null, 0)
            os.dup2(output_w, 1)
            os.dup2(output_w, 2)
            for fd in (null, output_w):
                os.close(fd)
            log: dict[str, Any] = {}
            if len(fds) == 4:  # the framed log channel
                child_ctl, exec_w = nsinit.take_log_fd(fds[3], log, child_ctl, exec_w)
            launch(child_ctl, exec_w, nsinit, boot, stem, log)
            return
        reports[pid] = report
        for fd in fds:
            os.close(fd)
        try:
            ctl.send(marshal.dumps({"pid": pid}))
        except OSError:  # the server closed the control socket with this request queued
            _drain(wake_r, reports)
            return


def _drain(wake_r: int, reports: dict[int, int]) -> None:
    """Fork no more, but stay the parent of the sandboxes forked so far until the last one
    has exited: their ``PDEATHSIG`` is relative to this process (it would kill them), and
    it reaps them and reports their exit status. Each exit wakes the loop (SIGCHLD)."""
    while True:
        if _reap(reports) or not reports:
            return
        try:
            select.select([wake_r], [], [])
        except InterruptedError:
            continue
        while True:
            try:
                if not os.read(wake_r, 512):
                    break
            except BlockingIOError:
                break


def _on_sigchld(signum: int, frame: Any) -> None:
    """Nothing: the C-level handler has written to the wakeup fd, which :func:`serve` reads."""


def _reap(reports: dict[int, int]) -> bool:
    """Reap every exited child; report each sandbox PID 1's wait status (see :func:`serve`).
    True if no child is left at all."""
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return True
        except InterruptedError:
            continue
        if pid == 0:
            return False
        fd = reports.pop(pid, None)
        if fd is None:
            continue
        sock = socket.socket(fileno=fd)
        try:  # noqa: SIM105 (no contextlib: start-up cost)
            sock.send(marshal.dumps({"event": "exit", "status": status}), socket.MSG_DONTWAIT)
        except OSError:  # the server is gone or does not read: nothing to report to
            pass
        sock.close()


def _recv_fds(sock: socket.socket) -> tuple[bytes, list[int]]:
    """``socket.recv_fds`` on the C-only ``_socket`` (the ``socket`` module's enum import
    costs start-up time, see _nsinit)."""
    fds = array.array("i")
    msg, ancdata, _flags, _addr = sock.recvmsg(4096, socket.CMSG_LEN(4 * fds.itemsize))
    for level, kind, data in ancdata:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            fds.frombytes(data[: len(data) - (len(data) % fds.itemsize)])
    return msg, list(fds)


def immortalize() -> int:
    """Make the objects the zygote holds immortal (CPython 3.12 and 3.13, GIL builds, 64-bit
    little-endian); return how many were changed (0 elsewhere).

    A forked child copies each page of the zygote's that it writes, and CPython writes the
    reference count of every object it touches (a function called, a module global read,
    a type instantiated): most of a sandbox's private memory is copies of pages it only
    read from. Since PEP 683 (3.12) CPython neither increments nor decrements the count of
    an *immortal* object, one whose low 32 bits of ``ob_refcnt`` read as negative: it gives
    ``None``, small ints, static types and interned strings ``_Py_IMMORTAL_REFCNT``
    (``0xFFFFFFFF``). This gives it to every object reachable from the collector's objects
    and the loaded modules (code objects, which the collector does not traverse, through
    the constants and names they hold) by writing the low 32 bits, as a mortal count fits
    in them. Measured (python3.12, six forked sandboxes, idle after an invoke): 3.1 MiB
    private dirty each before, 1.9 MiB after; the walk (~50,000 objects) takes ~80 ms at
    the zygote's start. Its own bookkeeping (a set of ~55,000 ids, made before the walk
    starts, so walked too) leaves the zygote ~5 MiB more RSS, once per runtime; a walk
    without it (the counts as its marks: +0.5 MiB) measured ~0.08 MiB more private memory
    per sandbox (1.89 against 1.81 MiB, python3.12), so it stays.

    They are objects of the zygote (interpreter, standard modules, the bootstrap), alive for
    as long as it is; what changes: a sandbox that drops one never frees it (it is shared
    memory there anyway), and ``sys.getrefcount`` of one says ``2**32 - 1``. Interned
    strings are left as they are (3.13 keeps some mortal and hands their interned-dict
    references back at exit). Not on 3.9-3.11 (no immortal objects: their counts are always
    written), 3.14+ (another immortal count) or free-threaded builds (another header).
    """
    if (
        sys.version_info[:2] not in ((3, 12), (3, 13))
        or "t" in getattr(sys, "abiflags", "")
        or sys.byteorder != "little"
        or sys.maxsize < 2**32
    ):
        return 0
    import ctypes

    # The address space as 32-bit words: obj's ob_refcnt is words[id(obj) // 4] (low half)
    # and a str's PyASCIIObject.state (interned: its 2 low bits) words[id(obj) // 4 + 8].
    words = (ctypes.c_uint32 * (1 << 60)).from_address(0)
    code = type(immortalize.__code__)
    seen: set[int] = set()
    mark = seen.add
    found: list[object] = []
    frontier: list[Any] = [*gc.get_objects(), *sys.modules.values()]
    while frontier:
        # new ones only, each once (mark() is None): the walk's costliest line, ~45 ms
        batch = [obj for obj in frontier if id(obj) not in seen and mark(id(obj)) is None]
        found.extend(batch)
        frontier = gc.get_referents(*batch)
        for obj in batch:
            if type(obj) is code:
                frontier.extend((obj.co_consts, obj.co_names, obj.co_linetable))
                frontier.extend((obj.co_exceptiontable, obj.co_filename, obj.co_name))
                frontier.append(obj.co_qualname)
                # Made on first use, then kept by the code object: made here, they are
                # immortal too, and no sandbox makes them (-0.3 MiB each, measured).
                frontier.extend((obj.co_varnames, obj.co_freevars, obj.co_cellvars))
    changed = 0
    for obj in found:
        if sys.getrefcount(obj) >= 1 << 31:  # immortal already
            continue
        if type(obj) is str and words[id(obj) // 4 + 8] & 3:  # interned
            continue
        words[id(obj) // 4] = 0xFFFFFFFF
        changed += 1
    return changed


def main() -> None:
    ctl = socket.socket(fileno=int(sys.argv[1]))
    config = marshal.loads(bytes.fromhex(sys.argv[2]))
    nsinit = _load("hearth_nsinit", config["nsinit"])
    nsinit.prctl(nsinit.PR_SET_PDEATHSIG, signal.SIGKILL)
    ready: dict[str, Any] = {"ready": os.getpid()}
    if config.get("memory_merge"):
        try:  # PR_SET_MEMORY_MERGE (hearth.sandbox.merging): inherited by every fork
            nsinit.prctl(67, 1)
        except nsinit.LaunchError as exc:  # before Linux 6.4, or without CAP_SYS_RESOURCE
            ready["merge_error"] = str(exc)
    for name in config["preload_modules"]:
        try:  # noqa: SIM105
            __import__(name)
        except ImportError:
            pass
    boot = _load("bootstrap", config["bootstrap"], "/var/runtime/bootstrap.py")
    import subprocess  # noqa: F401 (for _nsinit.configure_egress: nothing is imported below)

    path_map = [tuple(p) for p in config["path_map"]]
    prepare_runtime(config["argv"], path_map)

    ready["immortal"] = immortalize()
    # Everything loaded so far lives as long as the zygote: out of the collector's sight,
    # a child's collections never write to (and so never copy) the pages these objects
    # share with the zygote (frozen again before each fork, see serve). CPython's advice
    # for fork servers also has the collector off while loading (no freed holes for a
    # child's allocations to fill): measured here, it cost 0.06-0.1 MiB more a sandbox
    # (python3.11 and 3.12; the garbage kept spreads what stays over more pages).
    gc.freeze()
    ctl.send(marshal.dumps(ready))
    serve(ctl, nsinit, boot)


if __name__ == "__main__":
    main()
