"""The fd vault: helper processes that hold the descriptors of parked environments.

Why: the server's ``RLIMIT_NOFILE`` bounds how many environments it holds (5 descriptors
each, :mod:`.fd_budget`), and on this VM its hard limit (20,000) cannot be raised: 3,600
environments, where memory would allow ~7,000. An idle *frozen* environment needs none of
its descriptors in the server until its next invocation, but they must stay open: the
runtime's ``GET /next`` long-poll connection stays established, its listener and pipes
stay as they are. So the server hands them to a vault process (``SCM_RIGHTS``), which holds
a reference to each (the kernel objects stay open) while the server closes its own copies;
at the next invocation it fetches them back (one request and reply) before the thaw.

Each vault process raises its own soft limit to the hard one and holds up to that many
descriptors (less a margin): at this VM's 20,000 a process holds ~4,980 environments (4
descriptors each), and more processes are started as needed (:data:`MAX_PROCESSES`), each
costing the server one descriptor (its socket) and the host ~5 MiB of PSS (10 MiB RSS,
measured: an idle ``python3 -I -S``). The process (:mod:`._vault_main`) imports nothing of Hearth.

A vault process that dies (killed from outside, a bug) takes the descriptors it held with
it: the server notices (EOF on its socket), fails the requests in flight with
:class:`VaultLost`, and calls each of its tickets' ``on_lost`` (the worker kills those
environments: they are idle, and their runtime API connection is gone).

Threading: all methods are called from the event loop thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import struct
import subprocess
import sys
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from hearth.sandbox.launcher import fd_ready

log = logging.getLogger(__name__)

SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "_vault_main.py")
_KEY = struct.Struct("<Q")
#: Descriptors a vault process keeps for itself (stdio, its socket, the interpreter's own)
#: on top of what it holds for the server.
MARGIN = 32
#: Vault processes at most: 16 x ~4,980 environments at this VM's limit.
MAX_PROCESSES = 16
START_TIMEOUT = 10.0
MAX_FDS = 253  # SCM_MAX_FD


class VaultError(Exception):
    """The vault could not take or give back descriptors."""


class VaultFull(VaultError):
    """Every vault process is full and no other may be started."""


class VaultLost(VaultError):
    """The vault process holding the descriptors died: they are gone."""


@dataclass(eq=False, slots=True)
class Ticket:
    """What the vault holds for one environment: ``nfds`` descriptors under ``key``."""

    proc: _VaultProcess
    key: int
    nfds: int
    on_lost: Callable[[], None]


@dataclass(eq=False)
class _VaultProcess:
    """One vault process and the server's end of its socket."""

    sock: socket.socket
    proc: subprocess.Popen[bytes]
    capacity: int = 0
    """Descriptors it may hold (its limit less :data:`MARGIN`); 0 until it is ready."""
    held: int = 0
    """Descriptors it holds, or is being sent."""
    dead: bool = False
    ready: asyncio.Future[None] | None = None
    replies: deque[asyncio.Future[tuple[bytes, list[int]]]] = field(default_factory=deque)
    tickets: dict[int, Ticket] = field(default_factory=dict)


class FdVault:
    """The vault processes of one server (started on first use)."""

    def __init__(self, max_processes: int = MAX_PROCESSES) -> None:
        self._max = max_processes
        self._procs: list[_VaultProcess] = []
        self._starting: asyncio.Future[_VaultProcess] | None = None
        self._next_key = 0
        self._closed = False
        self._dropping: set[asyncio.Future[tuple[bytes, list[int]]]] = set()
        self.lost = 0
        """Tickets lost to vault processes that died."""

    # -- the server's side ----------------------------------------------------------------
    async def put(self, fds: Sequence[int], on_lost: Callable[[], None]) -> Ticket:
        """Hand ``fds`` to a vault process (the caller closes its own copies once this
        returns). ``on_lost`` is called if that process dies while it holds them.

        Raises:
            VaultFull: no vault process has room and no other may be started.
            VaultError: the vault refused them, or died meanwhile (``fds`` are still the
                caller's: nothing was taken).
        """
        if not fds or len(fds) > MAX_FDS:
            raise VaultError(f"cannot park {len(fds)} descriptors")
        proc = await self._with_room(len(fds))
        proc.held += len(fds)
        self._next_key += 1
        key = self._next_key
        try:
            data, _ = await self._request(proc, b"P", key, fds)
        except BaseException:
            proc.held -= len(fds)
            raise
        if data[:1] != b"P":
            proc.held -= len(fds)
            raise VaultError(f"the vault refused {len(fds)} descriptors ({data[:1]!r})")
        ticket = Ticket(proc, key, len(fds), on_lost)
        proc.tickets[key] = ticket
        return ticket

    async def take(self, ticket: Ticket) -> list[int]:
        """The descriptors of ``ticket``, back (the caller's now; the vault's copies are
        closed). Raises VaultLost if its vault process died."""
        proc = ticket.proc
        if proc.tickets.pop(ticket.key, None) is None:
            raise VaultLost("the vault no longer holds these descriptors")
        proc.held -= ticket.nfds
        data, fds = await self._request(proc, b"G", ticket.key)
        if data[:1] != b"G" or len(fds) != ticket.nfds:
            for fd in fds:
                os.close(fd)
            raise VaultLost(f"the vault gave back {len(fds)} of {ticket.nfds} descriptors")
        return fds

    def drop(self, ticket: Ticket) -> None:
        """Close the descriptors of ``ticket`` in the vault (its environment is gone)."""
        proc = ticket.proc
        if proc.tickets.pop(ticket.key, None) is None or proc.dead:
            return
        proc.held -= ticket.nfds
        task = asyncio.ensure_future(self._request(proc, b"D", ticket.key))
        self._dropping.add(task)
        task.add_done_callback(self._dropped)

    def _dropped(self, task: asyncio.Future[tuple[bytes, list[int]]]) -> None:
        self._dropping.discard(task)
        if not task.cancelled() and task.exception() is None:
            for fd in task.result()[1]:
                os.close(fd)

    def statistics(self) -> dict[str, int]:
        live = [p for p in self._procs if not p.dead]
        return {
            "vault_processes": len(live),
            "vault_fds": sum(p.held for p in live),
            "vault_capacity": sum(p.capacity for p in live),
            "vault_lost": self.lost,
        }

    def pids(self) -> list[int]:
        return [p.proc.pid for p in self._procs if not p.dead]

    async def aclose(self) -> None:
        self._closed = True
        for proc in list(self._procs):
            self._lose(proc, notify=False)
        for proc in self._procs:
            with contextlib.suppress(Exception):
                await asyncio.get_running_loop().run_in_executor(None, proc.proc.wait, 5)
        self._procs.clear()

    # -- processes ------------------------------------------------------------------------
    async def _with_room(self, nfds: int) -> _VaultProcess:
        while True:
            if self._closed:
                raise VaultError("the vault is closed")
            for proc in self._procs:
                if not proc.dead and proc.capacity - proc.held >= nfds:
                    return proc
            if self._starting is not None:
                with contextlib.suppress(VaultError):
                    await asyncio.shield(self._starting)
                continue
            if sum(1 for p in self._procs if not p.dead) >= self._max:
                raise VaultFull("every vault process is full")
            self._starting = asyncio.ensure_future(self._spawn())
            try:
                await asyncio.shield(self._starting)
            finally:
                self._starting = None

    async def _spawn(self) -> _VaultProcess:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            popen = subprocess.Popen(
                [sys.executable, "-I", "-S", SCRIPT, str(theirs.fileno())],
                stdin=subprocess.DEVNULL,
                pass_fds=(theirs.fileno(),),
                close_fds=True,
                env={},
                cwd="/",
            )
        except OSError as exc:
            ours.close()
            raise VaultError(f"cannot start a vault process: {exc}") from exc
        finally:
            theirs.close()
        ours.setblocking(False)
        loop = asyncio.get_running_loop()
        proc = _VaultProcess(ours, popen, ready=loop.create_future())
        self._procs.append(proc)
        loop.add_reader(ours.fileno(), self._on_readable, proc)
        assert proc.ready is not None
        try:
            await asyncio.wait_for(asyncio.shield(proc.ready), START_TIMEOUT)
        except (TimeoutError, VaultError) as exc:
            self._lose(proc)
            raise VaultError(f"the vault process did not start: {exc}") from exc
        log.info("fd vault process %d holds up to %d descriptors", popen.pid, proc.capacity)
        return proc

    async def _request(
        self, proc: _VaultProcess, op: bytes, key: int, fds: Sequence[int] = ()
    ) -> tuple[bytes, list[int]]:
        msg = op + _KEY.pack(key)
        while True:
            if proc.dead:
                raise VaultLost("the vault process died")
            try:
                if fds:
                    socket.send_fds(proc.sock, [msg], list(fds))
                else:
                    proc.sock.send(msg)
                break
            except BlockingIOError:
                await fd_ready(
                    proc.sock.fileno(),
                    time.monotonic() + START_TIMEOUT,
                    write=True,
                    what="the vault process does not read",
                )
            except OSError as exc:
                self._lose(proc)
                raise VaultLost(f"the vault process is gone: {exc}") from exc
        fut: asyncio.Future[tuple[bytes, list[int]]] = asyncio.get_running_loop().create_future()
        proc.replies.append(fut)
        try:
            return await asyncio.shield(fut)
        except asyncio.CancelledError:
            # The reply still comes: its descriptors are closed when it does.
            fut.add_done_callback(_close_reply)
            raise

    def _on_readable(self, proc: _VaultProcess) -> None:
        while not proc.dead:
            try:
                data, fds, _, _ = socket.recv_fds(proc.sock, 64, MAX_FDS)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                data, fds = b"", []
            if not data:
                self._lose(proc)
                return
            if data[:1] == b"R" and proc.ready is not None and not proc.ready.done():
                (limit,) = _KEY.unpack(data[1:9])
                proc.capacity = max(0, limit - MARGIN)
                proc.ready.set_result(None)
                continue
            if not proc.replies:
                for fd in fds:
                    os.close(fd)
                continue
            fut = proc.replies.popleft()
            if fut.done():
                for fd in fds:
                    os.close(fd)
            else:
                fut.set_result((data, fds))

    def _lose(self, proc: _VaultProcess, notify: bool = True) -> None:
        """The process is gone (or being stopped): fail what waits, report its tickets."""
        if proc.dead:
            return
        proc.dead = True
        loop = asyncio.get_running_loop()
        loop.remove_reader(proc.sock.fileno())
        proc.sock.close()
        with contextlib.suppress(ProcessLookupError):
            proc.proc.send_signal(signal.SIGKILL)
        loop.run_in_executor(None, proc.proc.wait)  # reaped in a thread, at once
        lost = VaultLost(f"vault process {proc.proc.pid} died")
        if proc.ready is not None and not proc.ready.done():
            proc.ready.set_exception(lost)
        while proc.replies:
            fut = proc.replies.popleft()
            if not fut.done():
                fut.set_exception(lost)
        tickets = list(proc.tickets.values())
        proc.tickets.clear()
        proc.held = 0
        if notify and tickets:
            self.lost += len(tickets)
            log.error(
                "fd vault process %d died holding %d environments' descriptors: they are killed",
                proc.proc.pid,
                len(tickets),
            )
            for ticket in tickets:
                try:
                    ticket.on_lost()
                except Exception:
                    log.exception("on_lost of a vault ticket")
        if not self._closed:
            self._procs.remove(proc)


def _close_reply(fut: asyncio.Future[tuple[bytes, list[int]]]) -> None:
    if not fut.cancelled() and fut.exception() is None:
        for fd in fut.result()[1]:
            os.close(fd)
