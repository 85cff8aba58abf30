"""Host side of the launcher protocol (see :mod:`hearth.sandbox._nsinit`).

:class:`Launcher` spawns ``_nsinit.py`` with :class:`subprocess.Popen` (vfork+exec, never a
Python ``fork`` of the server), feeds it the spec, receives the sandbox's listening
Runtime API socket over SCM_RIGHTS, learns when ``execve`` succeeded (EOF on a
close-on-exec pipe) and reaps the outside waiter through a pidfd on the event loop -- no
thread per sandbox.
"""

from __future__ import annotations

import asyncio
import contextlib
import marshal
import os
import py_compile
import signal
import socket
import subprocess
import sys
import time
from typing import Any

from hearth.errors import SandboxError

NSINIT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "_nsinit.py")


def compile_nsinit(state_dir: str) -> str:
    """Byte-compile the launcher into ``state_dir`` (a script is recompiled on every run)."""
    target = os.path.join(state_dir, "nsinit.pyc")
    try:
        py_compile.compile(NSINIT, cfile=target, doraise=True)
    except py_compile.PyCompileError as exc:
        raise SandboxError(f"cannot compile the sandbox launcher: {exc}") from exc
    return target


async def fd_ready(
    fd: int, deadline: float, *, write: bool = False, what: str = "sandbox launcher timed out"
) -> None:
    """Wait until ``fd`` is readable (``write``: writable) or ``deadline`` (monotonic)
    passes, then SandboxError(``what``)."""
    loop = asyncio.get_running_loop()
    fut: asyncio.Future[None] = loop.create_future()

    def ready() -> None:
        if not fut.done():
            fut.set_result(None)

    if write:
        loop.add_writer(fd, ready)
    else:
        loop.add_reader(fd, ready)
    try:
        await asyncio.wait_for(fut, max(0.0, deadline - time.monotonic()))
    except TimeoutError:
        raise SandboxError(what) from None
    finally:
        if write:
            loop.remove_writer(fd)
        else:
            loop.remove_reader(fd)


class Launcher:
    """One spawned launcher: its pid, control socket, exec pipe and exit status."""

    def __init__(
        self, script: str, output_w: int, keep_fds: tuple[int, ...] = (), log_w: int = -1
    ) -> None:
        """``log_w``: the framed log channel's write end (-1: none), passed as the third
        argument (the sandbox's PID 1 moves it to its fixed number, see _nsinit)."""
        self.ctl, child_ctl = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        exec_r, exec_w = os.pipe2(os.O_CLOEXEC)
        argv = [sys.executable, "-I", "-S", script, str(child_ctl.fileno()), str(exec_w)]
        fds = (child_ctl.fileno(), exec_w, *keep_fds)
        if log_w >= 0:
            argv.append(str(log_w))
            fds += (log_w,)
        try:
            self.proc = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=output_w,
                stderr=output_w,
                pass_fds=fds,
                close_fds=True,
                env={},
                cwd="/",
            )
        except OSError as exc:
            os.close(exec_r)
            self.ctl.close()
            raise SandboxError(f"cannot spawn the sandbox launcher: {exc}") from exc
        finally:
            child_ctl.close()
            os.close(exec_w)
        self.exec_r = exec_r
        self.ctl.setblocking(False)
        os.set_blocking(exec_r, False)
        self.pid = self.proc.pid
        self.pidfd = os.pidfd_open(self.pid)
        self.init_pid: int | None = None
        """Host pid of the sandbox's PID 1 (valid until :attr:`exited`: the waiter reaps it)."""
        self.exit_status: int | None = None
        """Wait status of the sandbox's PID 1 (from the waiter) once it has exited."""
        self._exited: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        asyncio.get_running_loop().add_reader(self.pidfd, self._on_pidfd)

    def send(self, message: dict[str, Any], fds: list[int] | None = None) -> None:
        data = marshal.dumps(message)
        try:
            if fds:
                socket.send_fds(self.ctl, [data], fds)
            else:
                self.ctl.send(data)
        except OSError as exc:
            raise SandboxError(f"cannot send the spec to the launcher: {exc}") from exc

    async def expect(
        self, event: str, nfds: int, deadline: float
    ) -> tuple[dict[str, Any], list[int]]:
        """The next message, which must be ``event`` carrying exactly ``nfds`` fds."""
        msg, fds = await self.recv(deadline)
        if msg.get("event") != event or len(fds) != nfds:
            for fd in fds:
                os.close(fd)
            raise SandboxError(f"unexpected launcher message {msg} (expected {event!r})")
        return msg, fds

    async def recv(self, deadline: float) -> tuple[dict[str, Any], list[int]]:
        """Next control message from the launcher, with any fds it carried."""
        while True:
            try:
                data, fds, _, _ = socket.recv_fds(self.ctl, 65536, 4)
            except BlockingIOError:
                await fd_ready(self.ctl.fileno(), deadline)
                continue
            if not data:
                raise SandboxError(f"sandbox launcher exited: {await self.exec_error(deadline)}")
            msg: dict[str, Any] = marshal.loads(data)
            self._note(msg)
            return msg, fds

    def _note(self, msg: dict[str, Any]) -> None:
        if msg.get("event") == "exit":
            self.exit_status = int(msg["status"])
        elif msg.get("event") == "child":
            self.init_pid = int(msg["pid"])

    async def exec_error(self, deadline: float) -> str | None:
        """Read the exec pipe to EOF: None if ``execve`` succeeded, else the reason."""
        chunks: list[bytes] = []
        while True:
            try:
                chunk = os.read(self.exec_r, 65536)
            except BlockingIOError:
                await fd_ready(self.exec_r, deadline)
                continue
            if not chunk:
                break
            chunks.append(chunk)
        os.close(self.exec_r)
        self.exec_r = -1
        if not chunks:
            return None
        data = b"".join(chunks)
        try:
            return str(marshal.loads(data)["error"])
        except (ValueError, EOFError, TypeError, KeyError):
            return data.decode(errors="replace").strip() or "unknown launcher failure"

    def _on_pidfd(self) -> None:
        try:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
        except ChildProcessError:  # reaped by someone else; rely on the waiter's report
            pid, status = self.pid, 255 << 8
        if pid == 0:
            return
        asyncio.get_running_loop().remove_reader(self.pidfd)
        self.proc.returncode = os.waitstatus_to_exitcode(status)  # keeps Popen quiet
        self._drain_ctl()
        if self.exit_status is None:
            self.exit_status = status
        if not self._exited.done():
            self._exited.set_result(self.exit_status)

    def _drain_ctl(self) -> None:
        """Pick up the waiter's exit report that may still sit in the control socket."""
        while True:
            try:
                data, fds, _, _ = socket.recv_fds(self.ctl, 65536, 4)
            except OSError:
                return
            for fd in fds:
                os.close(fd)
            if not data:
                return
            with contextlib.suppress(ValueError, EOFError, TypeError):
                self._note(marshal.loads(data))

    def watch(self) -> None:
        """Called once the sandbox runs (a forked launcher changes how it watches)."""

    @property
    def exited(self) -> bool:
        return self._exited.done()

    async def wait(self) -> int:
        return await asyncio.shield(self._exited)

    async def stop(self, grace: float) -> None:
        """Wait up to ``grace`` s for the waiter to exit, then SIGKILL it; reap it."""
        if not self.exited:
            try:
                await asyncio.wait_for(self.wait(), grace)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(self.pid, signal.SIGKILL)
                await asyncio.wait_for(self.wait(), 5.0)

    def close(self) -> None:
        """Release the host fds (after :meth:`stop`)."""
        loop = asyncio.get_running_loop()
        if self.pidfd >= 0:
            loop.remove_reader(self.pidfd)
            os.close(self.pidfd)
            self.pidfd = -1
        if self.exec_r >= 0:
            os.close(self.exec_r)
            self.exec_r = -1
        self.ctl.close()
