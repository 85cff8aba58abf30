"""Runtime zygotes: the fork path of sandbox start (host side).

A :class:`Zygote` is one long-lived process per Python runtime
(:mod:`hearth.sandbox._zygote_main`): the runtime's interpreter with the sandbox launcher
and the runtime bootstrap already imported. For a new sandbox the backend asks it to fork
a launcher instead of spawning ``python _nsinit.py`` and later exec'ing the runtime: the
child goes through the very same isolation steps, then runs the pre-loaded bootstrap in
process. Two interpreter start-ups (launcher and runtime, ~10 + ~25 ms, plus compiling
the bootstrap) become one ``fork``; the memory the children share with the zygote
(interpreter, standard modules, bootstrap) is counted once.

:class:`~hearth.sandbox.zygotes.Zygotes` maps (account, runtime command) to its zygote. It
starts a zygote in the background when a function of its runtime is created or changed
(:meth:`Zygotes.warm`), or else the first time its command is asked for: that start
uses the exec path, the ones asked for while the zygote starts wait for it (up to
:data:`ZYGOTE_WAIT`), the following ones fork. Any other command (node, custom runtimes,
anything unknown) always uses the exec path, as does the first start after a zygote
died (it is restarted then), and every function that
ships shared libraries for ``LD_LIBRARY_PATH`` (see :func:`forkable`). A zygote that has
not forked for a while, or the least recently used one when too many serve, is retired:
it forks no more and exits with the last sandbox it forked.

:class:`ZygoteLauncher` is the :class:`~hearth.sandbox.launcher.Launcher` of a forked
sandbox: the same protocol on the same fds; only the process is not the server's child.
A zygote forks the sandbox's PID 1 itself (into a new pid namespace) and reaps it, so its
exit status comes from the zygote's report on the control socket (what the exec path's
waiter sends), and signals go through a pidfd (no pid reuse race). There is no waiter
outside a forked sandbox: at 400 idle environments it was ~1.2 MiB of PSS and ~1 MiB of
host memory per environment (``BENCH_ONLY=density``, 4.8 → 3.6 MiB PSS each).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import marshal
import os
import signal
import socket
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

from hearth.errors import SandboxError
from hearth.sandbox.base import SandboxSpec
from hearth.sandbox.cgroups import EnvCgroup
from hearth.sandbox.launcher import NSINIT, Launcher, fd_ready

log = logging.getLogger(__name__)

ZYGOTE_MAIN = os.path.join(os.path.dirname(os.path.abspath(__file__)), "_zygote_main.py")
#: Standard modules the bootstrap and typical handlers import at start.
PRELOAD = (
    "json",
    "logging",
    "socket",
    "traceback",
    "decimal",
    "datetime",
    "uuid",
    "random",
    "base64",
    "re",
    "typing",
    "urllib.parse",
    "collections",
    "functools",
    "threading",
    "time",
    # Imported by every runtime at its first request, measured ~2-5 ms in each sandbox:
    # the handler's import (``importlib``) and the first connect to the Runtime API
    # (``socket.create_connection`` encodes the host with the idna codec: stringprep and
    # the unicodedata extension).
    "importlib",
    "encodings.idna",
)
START_TIMEOUT = 10.0
#: How long a forked process's exit report may lag behind its pidfd (see
#: :meth:`ZygoteLauncher._on_pidfd`): its reaper sends it at once.
REPORT_WAIT = 5.0
#: How long a start waits for its runtime's zygote that is starting (else: exec path).
ZYGOTE_WAIT = 2.0


@dataclass(frozen=True, slots=True)
class ZygoteSpec:
    interpreter: str
    """Host path of the runtime's interpreter."""
    path_map: tuple[tuple[str, str], ...]
    """(host path, sandbox path) of the runtime's mounts: rewrites ``sys.path`` inside."""
    bootstrap: str
    """Host path of the bootstrap file (mounted at /var/runtime/bootstrap.py)."""
    memory_merge: bool = False
    """Opt the zygote, and so every sandbox it forks, into KSM (:mod:`.merging`)."""


class Zygote:
    def __init__(self, spec: ZygoteSpec, argv: Sequence[str]) -> None:
        """``argv``: the runtime command whose sandboxes this zygote forks."""
        self.spec = spec
        self.argv = tuple(argv)
        self.pid = 0
        self._proc: subprocess.Popen[bytes] | None = None
        self._ctl: socket.socket | None = None
        self._replies: collections.deque[asyncio.Future[dict[str, Any]]] = collections.deque()
        """Fork requests sent and not answered yet, oldest first (see :meth:`fork`)."""
        self.ready = False
        self.immortal = 0
        """Objects the zygote made immortal before serving (see _zygote_main.immortalize)."""

    async def start(self) -> None:
        """Spawn the zygote and wait until it has pre-loaded everything."""
        ctl, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        config = marshal.dumps(
            {
                "nsinit": NSINIT,
                "bootstrap": self.spec.bootstrap,
                "path_map": [list(p) for p in self.spec.path_map],
                "preload_modules": list(PRELOAD),
                "argv": list(self.argv),
                "memory_merge": self.spec.memory_merge,
            }
        )
        try:
            self._proc = subprocess.Popen(
                [self.spec.interpreter, "-I", "-S", ZYGOTE_MAIN, str(child.fileno()), config.hex()],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                pass_fds=(child.fileno(),),
                close_fds=True,
                env={"LC_CTYPE": "C.UTF-8"},
                cwd="/",
            )
        except OSError as exc:
            ctl.close()
            raise SandboxError(f"cannot start a zygote for {self.spec.interpreter}: {exc}") from exc
        finally:
            child.close()
        ctl.setblocking(False)
        self._ctl = ctl
        msg = await self._recv(time.monotonic() + START_TIMEOUT)
        if "ready" not in msg:
            await self.aclose()
            raise SandboxError(f"zygote for {self.spec.interpreter} failed: {msg}")
        self.pid = int(msg["ready"])
        self.immortal = int(msg.get("immortal", 0))
        if msg.get("merge_error"):
            log.warning("zygote for %s: no memory merging: %s", self.spec.interpreter,
                        msg["merge_error"])  # fmt: skip
        self.ready = True

    async def _recv(self, deadline: float) -> dict[str, Any]:
        assert self._ctl is not None
        while True:
            try:
                data = self._ctl.recv(4096)
            except BlockingIOError:
                await fd_ready(self._ctl.fileno(), deadline)
                continue
            if not data:
                self.ready = False
                raise SandboxError(f"zygote for {self.spec.interpreter} exited")
            msg: dict[str, Any] = marshal.loads(data)
            return msg

    @property
    def alive(self) -> bool:
        return self.ready and self._proc is not None and self._proc.poll() is None

    async def fork(self, fds: Sequence[int], op: str = "fork") -> int:
        """Fork a launcher that gets ``fds`` (control socket, exec pipe, output pipe[, log
        channel]);
        ``op="stem"``: a launcher that learns its function later (:mod:`.stems`).

        Requests are pipelined: each is sent at once, and the zygote, which serves them
        in order, answers them in order (:meth:`_on_replies`). Sent one at a time, each
        waiting for the previous answer, a burst's forks were spaced by two wake-ups
        (the zygote's, then the busy server loop's): ~6-19 ms a fork round trip for a
        ~1-2.5 ms ``clone``, and the 8 starts of a burst queued 40-370 ms for theirs."""
        ctl = self._ctl
        if not self.alive or ctl is None:
            raise SandboxError("zygote is not running")
        loop = asyncio.get_running_loop()
        data = marshal.dumps({"op": op})
        while True:
            try:
                socket.send_fds(ctl, [data], list(fds))
                break
            except BlockingIOError:  # the zygote is that far behind: wait for room
                await fd_ready(
                    ctl.fileno(),
                    time.monotonic() + START_TIMEOUT,
                    write=True,
                    what="zygote does not take fork requests",
                )
            except OSError as exc:
                self._fail(f"zygote: cannot send a fork request: {exc}")
                raise SandboxError(f"zygote: cannot send a fork request: {exc}") from exc
        reply: asyncio.Future[dict[str, Any]] = loop.create_future()
        if not self._replies:
            loop.add_reader(ctl.fileno(), self._on_replies)
        self._replies.append(reply)
        try:
            msg = await asyncio.wait_for(asyncio.shield(reply), START_TIMEOUT)
        except TimeoutError:  # answers no longer line up with requests: start anew
            self._fail("zygote did not answer a fork request in time")
            raise SandboxError("zygote did not answer a fork request in time") from None
        if "pid" not in msg:
            raise SandboxError(f"zygote could not fork: {msg}")
        return int(msg["pid"])

    def _on_replies(self) -> None:
        """Answers of the zygote: each settles the oldest request waiting."""
        ctl = self._ctl
        assert ctl is not None
        while self._replies:
            try:
                data = ctl.recv(4096)
            except BlockingIOError:
                return
            except OSError:
                data = b""
            if not data:
                self._fail(f"zygote for {self.spec.interpreter} exited")
                return
            reply = self._replies.popleft()
            if not reply.done():
                reply.set_result(marshal.loads(data))
        asyncio.get_running_loop().remove_reader(ctl.fileno())

    def _fail(self, why: str) -> None:
        """The zygote is unusable (gone, or out of step): fail every request waiting;
        the next start restarts it (:meth:`Zygotes.launcher`)."""
        self.ready = False
        if self._ctl is not None and self._replies:
            asyncio.get_running_loop().remove_reader(self._ctl.fileno())
        while self._replies:
            reply = self._replies.popleft()
            if not reply.done():
                reply.set_exception(SandboxError(why))
                reply.exception()  # its waiter may have timed out: nothing to log then

    @property
    def busy(self) -> bool:
        """Fork requests are on their way (retiring now would fail them)."""
        return bool(self._replies)

    def retire(self) -> None:
        """Let the zygote go without killing what it forked: the control socket is closed,
        the zygote forks no more and exits once its last sandbox has (it is their parent:
        their ``PDEATHSIG`` would kill them with it, see ``_zygote_main._drain``)."""
        self._fail("zygote retired")
        if self._ctl is not None:
            self._ctl.close()
            self._ctl = None

    @property
    def exited(self) -> bool:
        """The process is gone (and reaped)."""
        return self._proc is None or self._proc.poll() is not None

    async def aclose(self) -> None:
        self._fail("zygote closed")
        if self._ctl is not None:
            self._ctl.close()
            self._ctl = None
        if self._proc is not None:
            with contextlib.suppress(ProcessLookupError):
                self._proc.kill()
            await asyncio.get_running_loop().run_in_executor(None, self._proc.wait)
            self._proc = None


class ZygoteLauncher(Launcher):
    """A launcher forked by a zygote (see the module docstring)."""

    _watching = False
    """Exits are watched on the control socket (:meth:`watch`)."""
    _gone = 0.0
    """``time.monotonic()`` when the pidfd said the process exited (0: not seen)."""

    def __init__(self, pid: int | None, ctl: socket.socket, exec_r: int) -> None:
        """``pid`` None: the process is known later (:meth:`adopt`)."""
        # Launcher.__init__ spawns a process; this one exists already: set the same state.
        self.ctl = ctl
        self.exec_r = exec_r
        self.ctl.setblocking(False)
        os.set_blocking(exec_r, False)
        self.proc = SimpleNamespace(returncode=None)  # type: ignore[assignment]
        self.pid = 0
        self.pidfd = -1
        self.init_pid = None
        self.exit_status = None
        self._exited = asyncio.get_running_loop().create_future()
        if pid is not None:
            self.adopt(os.pidfd_open(pid), pid)

    def adopt(self, pidfd: int, pid: int) -> None:
        """Watch the launcher's exit through ``pidfd`` (of process ``pid``)."""
        self.pidfd = pidfd
        self.pid = pid
        asyncio.get_running_loop().add_reader(pidfd, self._on_pidfd)

    def watch(self) -> None:
        """Once started: notice the exit by EOF on the control socket, and close the
        pidfd -- one fd less per sandbox in the server, whose ``RLIMIT_NOFILE`` bounds how
        many environments it can hold (density). EOF comes when every holder of the
        sandbox's end is gone: its reaper (the zygote, or a template environment's
        waiter, which report PID 1's status first) and PID 1 (which closed it before
        running anything of the function)."""
        if self.exited or self.pidfd < 0:
            return
        loop = asyncio.get_running_loop()
        loop.remove_reader(self.pidfd)
        os.close(self.pidfd)
        self.pidfd = -1
        loop.add_reader(self.ctl.fileno(), self._on_ctl)
        self._watching = True

    def _on_pidfd(self) -> None:
        """The process is gone (before :meth:`watch`): its wait status comes from its
        reaper (the zygote, a template's waiter) on the control socket, then EOF; poll for
        them (up to :data:`REPORT_WAIT`) -- the start may be reading that socket too."""
        loop = asyncio.get_running_loop()
        loop.remove_reader(self.pidfd)
        os.close(self.pidfd)
        self.pidfd = -1
        self._gone = time.monotonic()
        self._poll_report()

    def _poll_report(self) -> None:
        if self._exited.done():
            return
        eof = self._read_ctl()
        if self.exit_status is None and not eof and time.monotonic() < self._gone + REPORT_WAIT:
            asyncio.get_running_loop().call_later(0.002, self._poll_report)
            return
        self._settle_exit()

    def _on_ctl(self) -> None:
        if self._read_ctl():
            asyncio.get_running_loop().remove_reader(self.ctl.fileno())
            self._watching = False
            self._settle_exit()

    def _read_ctl(self) -> bool:
        """Note every message the control socket holds now; True at EOF."""
        while True:
            try:
                data, fds, _, _ = socket.recv_fds(self.ctl, 65536, 4)
            except BlockingIOError:
                return False
            except OSError:
                data, fds = b"", []
            for fd in fds:
                os.close(fd)
            if not data:
                return True
            with contextlib.suppress(ValueError, EOFError, TypeError):
                self._note(marshal.loads(data))

    def _settle_exit(self) -> None:
        """The sandbox is gone: its reported wait status (255 if none came) is final."""
        if self.exit_status is None:
            self.exit_status = 255 << 8
        self.proc.returncode = os.waitstatus_to_exitcode(self.exit_status)
        if not self._exited.done():
            self._exited.set_result(self.exit_status)

    async def stop(self, grace: float) -> None:
        if self.pid == 0 and not self._exited.done():  # never adopted: nothing to wait for
            self._exited.set_result(255 << 8)
        if not self.exited:
            try:
                await asyncio.wait_for(self.wait(), grace)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError, OSError):
                    if self._gone:  # reaped: its report is awaited (_poll_report)
                        pass
                    elif self.pidfd >= 0:
                        signal.pidfd_send_signal(self.pidfd, signal.SIGKILL)
                    else:  # no EOF yet: not reaped (or just now: see _poll_report)
                        os.kill(self.pid, signal.SIGKILL)
                await asyncio.wait_for(self.wait(), 5.0)

    def close(self) -> None:
        if self._watching:
            asyncio.get_running_loop().remove_reader(self.ctl.fileno())
            self._watching = False
        super().close()


def join_forked(cg: EnvCgroup, launcher: Launcher) -> None:
    """Move a forked launcher and its sandbox's PID 1 into the sandbox's cgroups.

    On the fork path this happens *after* the launcher has set the sandbox up (namespaces,
    root, uid, seccomp) instead of before: a v1 cgroup migration waits for an RCU grace
    period (~9 ms here), which now overlaps that work; two migrations in a row share one
    grace period. PID 1 waits for the launcher's go (sent once both have moved) before it
    runs the bootstrap, so no function code ever runs outside the cgroup. (Pages the
    launcher and PID 1 copied before the move stay charged where they were, as cgroup v1
    does not move charges: ~1 MiB of Hearth's own set-up per sandbox, never the function's.)
    """
    cg.join(launcher.pid)
    if launcher.init_pid not in (None, launcher.pid):  # a template's waiter and its PID 1
        cg.join(launcher.init_pid)


#: The Python runtime's own LD_LIBRARY_PATH entries (registry.PythonRuntime.launch).
_RUNTIME_LIB_DIRS = frozenset(
    {
        "",
        "/var/lang/lib",
        "/lib64",
        "/usr/lib64",
        "/var/runtime",
        "/var/runtime/lib",
        "/var/task",
        "/var/task/lib",
        "/opt/lib",
    }
)


def forkable(sandbox: SandboxSpec) -> bool:
    """Whether a forked runtime behaves exactly like an exec'd one for this sandbox.

    The dynamic loader reads ``LD_LIBRARY_PATH`` once, when a process starts: a forked
    runtime keeps the zygote's (empty) one. Functions that ship shared libraries where
    Lambda's ``LD_LIBRARY_PATH`` points (``/var/task/lib``, layers under ``/opt``) start
    by exec so that ``ctypes`` and native extensions find them.
    """
    if os.path.isdir(os.path.join(sandbox.code_dir, "lib")):
        return False
    # A function's own PYTHONPATH / LD_LIBRARY_PATH is read at process start too.
    if sandbox.env.get("PYTHONPATH", "/var/runtime") != "/var/runtime":
        return False
    if any(p not in _RUNTIME_LIB_DIRS for p in sandbox.env.get("LD_LIBRARY_PATH", "").split(":")):
        return False
    return not any(m.sandbox_path.startswith("/opt") for m in sandbox.mounts)


def python_zygote(
    interpreter: str,
    mounts: Sequence[tuple[str, str]],
    bootstrap: str,
    memory_merge: bool = False,
) -> ZygoteSpec:
    """The zygote of a Python runtime (``interpreter`` must be CPython ≥ 3.9);
    ``memory_merge``: see :mod:`.merging`."""
    return ZygoteSpec(interpreter, tuple((h, s) for h, s in mounts), bootstrap, memory_merge)
