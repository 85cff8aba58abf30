"""Parking a frozen environment: its descriptors leave the server for the fd vault.

A parked environment keeps one descriptor in the server: the control socket through which
its exit is noticed (EOF when its reaper and PID 1 are gone; on the exec path, its pidfd
too), so a sandbox that dies while parked is still seen at once. Its Runtime API listener,
the runtime's connection(s) to it, and the read ends of its output pipe and framed log
channel (4 descriptors) are held by a vault process (:mod:`.fd_vault`) meanwhile.

Python-side state stays in the server: the HTTP protocol object of each connection (with
the runtime's parked ``GET /next`` and any corked answer), the output's incomplete line and
frame. :func:`unpark` gives each connection back to its own protocol, so the ``/next``
parked before is answered as if nothing had happened (the runtime sees the same TCP
connection: the socket was never closed, as another descriptor referred to it all along).

Order of a park (the environment is frozen: its runtime reads and writes nothing):
1. the output pipes are drained and unwatched; the listener and connections are found
   (none busy, nothing buffered: else no park);
2. the vault takes the descriptors (one message, one reply); on failure step 1 is undone;
3. only then the server closes its copies (each unregistered from the event loop's epoll
   first: a registration would outlive the close while another process holds the file).

Measured in the server (python3.12 counter function, uvloop, this 2-vCPU VM shared with
other test runs; 120 unparks): an unpark p50 0.46 ms (p90 0.8), of which the vault's reply
0.34 ms (a round trip that wakes another process), the pipes back on the loop 0.08 ms, the
connection and listener 0.19 ms; the cgroup thaw after it 0.17 ms (now overlapped with
the vault's reply). A park ~0.6 ms p50 of background work. End to end, the invoke of an
idle frozen environment is ~3 ms here with or without it (the run-to-run noise is larger
than the difference), which is why parking is not done below ``park_at`` of the budget
(:class:`hearth.worker.worker.WorkerConfig`): it costs that much and a vault process, and
gains nothing while the server has descriptors to spare.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from hearth.api.http import HttpProtocol, HttpServer
from hearth.worker.fd_vault import FdVault, Ticket, VaultError
from hearth.worker.output import OutputCapture

if TYPE_CHECKING:
    from hearth.worker.environment import Environment


class ParkableSandbox(Protocol):
    """The sandbox side (:class:`hearth.sandbox.process.ProcessSandbox`)."""

    def park_fds(self) -> tuple[int, int]: ...

    def unpark_fds(self, api: socket.socket, output_r: int, log_r: int) -> None: ...


class ParkingHost(Protocol):
    """What an environment asks of its worker about parking."""

    vault: FdVault

    def frozen(self, env: Environment) -> None:
        """``env`` has just frozen (idle): park it now if that pays."""
        ...

    def moved(self, n: int) -> None:
        """``n`` descriptors left the server for the vault (negative: came back)."""
        ...

    async def room(self, n: int) -> None:
        """Make room for ``n`` more descriptors in the server (parking or evicting idle
        environments), or raise TooManyRequests."""
        ...


@dataclass(eq=False, slots=True)
class Parked:
    """What the server keeps of a parked environment's descriptors."""

    ticket: Ticket
    protocols: list[HttpProtocol]
    has_log: bool


async def park(
    server: HttpServer,
    output: OutputCapture,
    sandbox: ParkableSandbox,
    vault: FdVault,
    on_lost: Callable[[], None],
) -> Parked | None:
    """Hand the descriptors to ``vault`` and close the server's copies; None (and nothing
    changed) if a connection is not quiet or the vault cannot take them."""
    found = server.parkable()
    if found is None:
        return None
    listener, conns = found
    out_fd, log_fd = output.detach()
    fds = [listener, *(fd for _, fd in conns), out_fd]
    if log_fd >= 0:
        fds.append(log_fd)
    try:
        ticket = await vault.put(fds, on_lost)
    except VaultError:
        output.attach(out_fd, log_fd)
        return None
    server.park(conns)
    sandbox.park_fds()
    os.close(out_fd)
    if log_fd >= 0:
        os.close(log_fd)
    return Parked(ticket, [proto for proto, _ in conns], log_fd >= 0)


async def unpark(
    parked: Parked,
    server: HttpServer,
    output: OutputCapture,
    sandbox: ParkableSandbox,
    vault: FdVault,
) -> None:
    """Fetch the descriptors back and serve them again (raises VaultLost if they are gone)."""
    fds = await vault.take(parked.ticket)
    for fd in fds:  # SCM_RIGHTS gives them without close-on-exec
        os.set_inheritable(fd, False)
    n = len(parked.protocols)
    listener = socket.socket(fileno=fds[0])
    conns = [
        (proto, socket.socket(fileno=fd))
        for proto, fd in zip(parked.protocols, fds[1 : 1 + n], strict=True)
    ]
    out_fd = fds[1 + n]
    log_fd = fds[2 + n] if parked.has_log else -1
    sandbox.unpark_fds(listener, out_fd, log_fd)
    output.attach(out_fd, log_fd)
    await server.unpark(listener, conns)
