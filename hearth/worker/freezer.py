"""Freezing an idle environment (cgroup freezer) and thawing it for its next invocation.

An environment idle for ``after`` seconds since its last invocation is frozen: its
processes get no CPU at all until the next invocation thaws it. Not after every
invocation: a freeze and a thaw cost ~0.4 ms, too much for back-to-back calls.

One timer per environment, re-armed lazily: an invocation ending does not move it; when
it fires early (the environment was used meanwhile) it waits for the rest of the idle
time. A thaw never waits for a freeze still settling: it calls the freeze off (the
freezer reaches FROZEN only once every task has run to its freeze point, which on a busy
host took up to the freeze's 2 s timeout, and the invocation waited all that time).

Once a freeze has settled, ``on_frozen`` is told: the worker may then *park* the
environment (hand its descriptors to the fd vault, :mod:`hearth.worker.fd_vault`), which is
only done to frozen environments: a frozen runtime neither reads nor writes them.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Protocol

log = logging.getLogger(__name__)


class Freezable(Protocol):
    async def freeze(self) -> None: ...

    async def thaw(self) -> None: ...


class Freezer:
    def __init__(
        self,
        env_id: str,
        after: float | None,
        idle_since: Callable[[], float | None],
        sandbox: Callable[[], Freezable | None],
        on_frozen: Callable[[], None] | None = None,
    ) -> None:
        """``idle_since``: when the environment's last invocation ended if it is idle now
        (monotonic clock), else None; ``sandbox``: what to freeze, if anything yet;
        ``on_frozen``: called when a freeze this timer started has settled."""
        self._id = env_id
        self._after = after
        self._idle_since = idle_since
        self._sandbox = sandbox
        self._timer: asyncio.TimerHandle | None = None
        self._freezing: asyncio.Task[None] | None = None
        """Set from the moment a freeze starts until the next thaw."""
        self._on_frozen = on_frozen

    @property
    def frozen(self) -> bool:
        """Frozen, or being frozen: the next invocation must thaw first."""
        return self._freezing is not None

    def arm(self, loop: asyncio.AbstractEventLoop) -> None:
        """The environment became idle: freeze it after ``after`` seconds unless used."""
        if self._after is not None and self._timer is None:
            self._timer = loop.call_later(self._after, self._due)

    def cancel(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _due(self) -> None:
        self._timer = None
        since = self._idle_since()
        if self._after is None or since is None:
            return  # busy: the invocation's end arms it again
        remaining = since + self._after - time.monotonic()
        if remaining > 0.001:
            self._timer = asyncio.get_running_loop().call_later(remaining, self._due)
            return
        self._start_freeze()

    def _start_freeze(self) -> asyncio.Task[None] | None:
        sandbox = self._sandbox()
        if self._freezing is None and sandbox is not None:
            self._freezing = asyncio.ensure_future(sandbox.freeze())
            # A freeze racing a kill may fail; thaw() reports failures it sees.
            self._freezing.add_done_callback(self._settled)
        return self._freezing

    def _settled(self, task: asyncio.Task[None]) -> None:
        if task.cancelled() or task.exception() is not None:
            return
        if self._freezing is task and self._on_frozen is not None:
            self._on_frozen()

    @property
    def settled(self) -> bool:
        """Frozen, and the freeze has succeeded (the sandbox's processes are stopped)."""
        f = self._freezing
        return f is not None and f.done() and not f.cancelled() and f.exception() is None

    async def freeze_now(self) -> bool:
        """Freeze now (an idle environment about to be parked before its idle time is up);
        True once frozen. ``on_frozen`` is not called for it."""
        self.cancel()
        freezing = self._freezing
        if freezing is None:
            sandbox = self._sandbox()
            if sandbox is None:
                return False
            freezing = self._freezing = asyncio.ensure_future(sandbox.freeze())
            freezing.add_done_callback(lambda t: t.cancelled() or t.exception())
        await asyncio.wait((freezing,))
        return self._freezing is freezing and self.settled

    async def thaw(self) -> None:
        """Thaw before delivery (nothing to do if not frozen)."""
        freezing, self._freezing = self._freezing, None
        sandbox = self._sandbox()
        if freezing is None or sandbox is None:
            return
        if not freezing.done():
            freezing.cancel()
            await asyncio.wait((freezing,))  # never raises; the thaw below undoes it
        elif not freezing.cancelled() and freezing.exception() is not None:
            # A failed freeze leaves it running: nothing to undo.
            log.warning("environment %s: freeze failed: %s", self._id, freezing.exception())
        await sandbox.thaw()
