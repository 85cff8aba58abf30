"""The registry of runtime zygotes: which (account, runtime) zygote forks a sandbox, when
one starts, and when an idle one is retired.

See :mod:`hearth.sandbox.zygote` for what a zygote is and the fork path it serves; this
module decides which zygote serves a start (:func:`zygote_key`: one per account and
runtime command) and keeps their number bounded (:class:`Zygotes`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
from collections.abc import Callable, Sequence

from hearth.errors import SandboxError
from hearth.sandbox.base import SandboxSpec
from hearth.sandbox.launcher import Launcher
from hearth.sandbox.zygote import (
    ZYGOTE_WAIT,
    Zygote,
    ZygoteLauncher,
    ZygoteSpec,
    forkable,
)

log = logging.getLogger(__name__)


#: A zygote's key: (account, runtime command).
ZygoteKey = tuple[str, tuple[str, ...]]


def zygote_key(sandbox: SandboxSpec) -> ZygoteKey:
    """Zygotes are per account as well as per runtime: everything a zygote holds when it
    forks is in each of its sandboxes, and some of it cannot be renewed in a child (the
    interpreter's ``str`` hash secret, fixed at its start: a function could read it from
    its own memory and craft colliding keys against another function that hashes input
    it sends). Accounts are the trust boundary; the account is ``env_id``'s prefix."""
    return (sandbox.env_id.split("-", 1)[0], tuple(sandbox.argv))


#: Seconds without a fork after which a zygote is let go (``--zygote-idle-timeout``).
ZYGOTE_IDLE = 600.0
#: Zygotes serving at once (``--max-zygotes``): the least recently used goes for a new one.
MAX_ZYGOTES = 32


class Zygotes:
    """(Account, runtime command) → zygote; see the module docstring for when the fork
    path is used, and :func:`zygote_key` for why one per account.

    A host serving many accounts would otherwise keep a zygote (~25-30 MiB, outside any
    sandbox's memory limit: the worker's capacity leaves it to the host reserve) for every
    account it ever served. So a zygote that has not forked for ``idle_timeout`` seconds
    is *retired* (:meth:`reap`, every :attr:`sweep_interval` seconds), and starting one
    past ``max_live`` retires the least recently used first. Retired, a zygote forks no
    more and its ready stems are let go (:attr:`on_retire`); its process exits once the
    last sandbox it forked has (it is their parent, and their ``PDEATHSIG`` is relative to
    it: killing it would kill them), so environments forked from it, provisioned ones
    included, serve on unchanged. SnapStart templates are exec'd, never forked by a
    zygote. The next start of the key starts a new zygote, as a first start does.

    Measured here (python3.11, loaded host, no stems): a serving zygote 17.6 MiB RSS; once
    retired, with its six environments alive, 4.4 MiB PSS of which 3.1 MiB private (its
    pages stay mapped by its children: little is its own); an account's first cold start
    after its zygote's retirement 141-158 ms (exec while the new zygote starts) against
    31-43 ms forked.
    """

    def __init__(
        self,
        idle_timeout: float = ZYGOTE_IDLE,
        max_live: int = MAX_ZYGOTES,
        clock: Callable[[], float] = time.monotonic,
        make: Callable[[ZygoteSpec, tuple[str, ...]], Zygote] = Zygote,
    ) -> None:
        """``clock`` and ``make`` (a zygote of a spec and command, not started yet) are
        for tests."""
        self._make = make
        self._specs: dict[tuple[str, ...], ZygoteSpec] = {}
        self._zygotes: dict[ZygoteKey, Zygote] = {}
        self._starting: dict[ZygoteKey, asyncio.Task[None]] = {}
        self._used: dict[ZygoteKey, float] = {}
        """Last fork (or start, or warm-up) per key serving or starting."""
        self._draining: list[Zygote] = []
        """Retired zygotes whose process waits for its sandboxes to exit."""
        self.idle_timeout = idle_timeout
        self.max_live = max(1, max_live)
        self.sweep_interval = min(30.0, max(0.1, idle_timeout / 4))
        self._clock = clock
        self._sweeper: asyncio.Task[None] | None = None
        self.on_retire: Callable[[ZygoteKey], None] | None = None
        """Called with a key whose zygote was retired (the backend lets its stems go)."""
        self.forks = 0
        self.fallbacks = 0
        self.retired = 0

    def register(self, argv: Sequence[str], spec: ZygoteSpec) -> None:
        self._specs[tuple(argv)] = spec

    def would_fork(self, sandbox: SandboxSpec) -> bool:
        """Whether starts of this sandbox's command go by fork (a zygote is configured)."""
        return tuple(sandbox.argv) in self._specs and forkable(sandbox)

    def warm(self, sandbox: SandboxSpec) -> None:
        """Start the zygote of this sandbox's command now, in the background, if its
        starts would fork and it is not running (see :meth:`ProcessBackend.prepare`)."""
        key = zygote_key(sandbox)
        spec = self._specs.get(key[1])
        zygote = self._zygotes.get(key)
        if spec is not None and forkable(sandbox) and (zygote is None or not zygote.alive):
            self._start_soon(key, spec)

    async def launcher(
        self, sandbox: SandboxSpec, output_w: int, op: str = "fork", log_w: int = -1
    ) -> Launcher | None:
        """A forked launcher for the sandbox's command, or None: use the exec path.
        ``log_w``: the framed log channel's write end (-1: none), a fourth fd."""
        key = zygote_key(sandbox)
        spec = self._specs.get(key[1])
        if spec is None or not forkable(sandbox):
            return None
        zygote = self._zygotes.get(key)
        if zygote is None or not zygote.alive:
            starting = self._starting.get(key)
            if starting is None or op != "fork":  # a stem has no one waiting for it
                self._start_soon(key, spec)
                self.fallbacks += op == "fork"
                return None
            # The first start of a runtime execs while its zygote starts; the ones that
            # come meanwhile (a burst from zero) wait for it: under load, a zygote start
            # (~0.2 s) and then forks finish sooner than a crowd of interpreters starting.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(starting), ZYGOTE_WAIT)
            zygote = self._zygotes.get(key)
            if zygote is None or not zygote.alive:
                self.fallbacks += 1
                return None
        self._used[key] = self._clock()
        ctl, child_ctl = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        exec_r, exec_w = os.pipe2(os.O_CLOEXEC)
        try:
            fds = (child_ctl.fileno(), exec_w, output_w) + ((log_w,) if log_w >= 0 else ())
            pid = await zygote.fork(fds, op)
        except SandboxError as exc:
            ctl.close()
            os.close(exec_r)
            log.warning("zygote fork failed, using the exec path: %s", exc)
            self.fallbacks += 1
            return None
        finally:
            child_ctl.close()
            os.close(exec_w)
        self.forks += 1
        return ZygoteLauncher(pid, ctl, exec_r)

    def _start_soon(self, key: ZygoteKey, spec: ZygoteSpec) -> None:
        if key in self._starting:
            return
        if not self._make_room(key):
            log.info("zygotes: %d serving, none idle to let go; %s starts by exec",
                     self.max_live, key[0])  # fmt: skip
            return
        self._used[key] = self._clock()
        loop = asyncio.get_running_loop()
        if self._sweeper is None:
            self._sweeper = loop.create_task(self._sweep())

        async def start() -> None:
            old = self._zygotes.pop(key, None)
            if old is not None:  # dead, or out of step: what it forked lives on
                old.retire()
                self._draining.append(old)
            zygote = self._make(spec, key[1])
            try:
                await zygote.start()
            except SandboxError as exc:
                log.warning("zygote for %s not available: %s", spec.interpreter, exc)
                await zygote.aclose()
                self._used.pop(key, None)
                return
            finally:
                self._starting.pop(key, None)
            self._zygotes[key] = zygote
            log.info("zygote for %s ready (pid %d, %d objects made immortal)",
                     spec.interpreter, zygote.pid, zygote.immortal)  # fmt: skip

        self._starting[key] = loop.create_task(start())

    def _make_room(self, key: ZygoteKey) -> bool:
        """Whether a zygote of ``key`` may start: under ``max_live`` zygotes serving or
        starting, after retiring the least recently used ones if needed (never one that
        is starting or has forks on their way)."""
        while True:
            live = set(self._zygotes) | set(self._starting)
            live.discard(key)  # a dead zygote of this key is replaced, not added
            if len(live) < self.max_live:
                return True
            idle = [k for k, z in self._zygotes.items() if k != key and not z.busy]
            if not idle:
                return False
            self._retire(min(idle, key=lambda k: self._used.get(k, 0.0)))

    def _retire(self, key: ZygoteKey) -> None:
        zygote = self._zygotes.pop(key)
        self._used.pop(key, None)
        zygote.retire()
        self._draining.append(zygote)
        self.retired += 1
        log.info(
            "zygote of %s for %s retired (pid %d)", key[0], zygote.spec.interpreter, zygote.pid
        )
        if self.on_retire is not None:
            self.on_retire(key)

    def reap(self) -> None:
        """Retire the zygotes idle for ``idle_timeout`` (or dead), and forget retired ones
        whose process has exited."""
        deadline = self._clock() - self.idle_timeout
        for key, zygote in list(self._zygotes.items()):
            if not zygote.busy and (self._used.get(key, 0.0) <= deadline or not zygote.alive):
                self._retire(key)
        self._draining = [z for z in self._draining if not z.exited]

    async def _sweep(self) -> None:
        while True:
            await asyncio.sleep(self.sweep_interval)
            try:
                self.reap()
            except Exception:  # pragma: no cover - logged, the next sweep tries again
                log.exception("zygote sweep")

    def statistics(self) -> dict[str, int]:
        return {
            "zygotes": len(self._zygotes),
            "zygotes_starting": len(self._starting),
            "zygotes_draining": len(self._draining),
            "zygotes_retired": self.retired,
            "forks": self.forks,
            "fallbacks": self.fallbacks,
        }

    async def aclose(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
        for task in list(self._starting.values()):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await asyncio.gather(*(z.aclose() for z in [*self._zygotes.values(), *self._draining]))
        self._zygotes.clear()
        self._draining.clear()
