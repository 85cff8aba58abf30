"""The start gate: how many environments start at once, and who waits instead.

Starting an environment costs CPU (a sandbox, an interpreter, the function's Init); on a
small host, starting 100 at once makes every one of them slow. So the worker starts at
most ``max_starting`` at a time, and a request that finds no idle environment and no free
start slot *waits* for whichever comes first:

* an environment of its own function version becoming free (it is handed over directly,
  oldest waiter first, without passing through the idle list), or
* a start slot (then it starts its own environment).

For a burst of short invocations this is faster than each request starting its own
environment (the ones started first serve the queue while more start), and for long
invocations it still scales out, because start slots free up long before the
invocations end.

A request holding a start slot does not wait for its own environment alone either: it
*races* the start (:meth:`StartGate.race`) against environments of its version freed in
the meantime, and takes whichever is first. The start goes on; its environment joins the
pool once initialized. On a busy host a start takes hundreds of milliseconds while warm
environments free up every millisecond: at 128 connections of wrk, requests waited
0.3-2 s for their own start (wrk's timeouts) while the warm ones served others.

Bounds: at most ``max_waiting`` requests wait (more → 429 at once) and none waits longer
than ``wait_timeout`` (→ 429). Both throttles carry Reason
``ConcurrentInvocationLimitExceeded``: the worker is at its start capacity.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable, Hashable
from typing import Any, Generic, TypeVar

from hearth.errors import TooManyRequests, throttle

E = TypeVar("E")


def _throttle(why: str) -> TooManyRequests:
    return throttle(message=f"Rate Exceeded. ({why})")


class StartGate(Generic[E]):
    def __init__(self, max_starting: int, max_waiting: int, wait_timeout: float) -> None:
        self.max_starting = max_starting
        self.max_waiting = max_waiting
        self.wait_timeout = wait_timeout
        self.starting = 0
        self._waiters: deque[tuple[Hashable, asyncio.Future[E | None], bool]] = deque()
        """(version, future, racing): racing entries hold a start slot already."""

    async def acquire(
        self, key: Hashable, take_idle: Callable[[], E | None], give_back: Callable[[E], None]
    ) -> E | None:
        """An environment to use, or None: the caller holds a start slot and must start one.

        The caller gives the slot back with :meth:`start_done` whatever happens. If the
        caller is cancelled just as an environment was handed to it, ``give_back``
        returns that environment to its pool.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.wait_timeout
        while True:
            env = take_idle()
            if env is not None:
                return env
            if self.starting < self.max_starting:
                self.starting += 1
                return None
            if len(self._waiters) >= self.max_waiting:
                raise _throttle("too many requests waiting for an execution environment")
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise _throttle("no execution environment became free in time")
            fut = await self._wait(key, False, give_back, timeout=remaining)
            if not fut.cancelled() and fut.result() is not None:
                return fut.result()

    async def race(
        self, key: Hashable, start: asyncio.Future[Any], give_back: Callable[[E], None]
    ) -> E | None:
        """For a caller holding a start slot: wait for the first of its own start
        (``start``) and an environment of its version offered meanwhile; the environment,
        or None if the start ended first (when both did, the environment: the caller
        gives back what it does not use).

        The start is never cancelled here: what becomes of it is the caller's decision.
        """
        fut = await self._wait(key, True, give_back, also=start)
        return None if fut.cancelled() else fut.result()

    async def _wait(
        self,
        key: Hashable,
        racing: bool,
        give_back: Callable[[E], None],
        also: asyncio.Future[Any] | None = None,
        timeout: float | None = None,
    ) -> asyncio.Future[E | None]:
        """Wait in line for an environment of ``key`` (or ``also`` to end, or
        ``timeout``); the waiter's future, done with what it was handed or cancelled.
        Cancelled meanwhile: an environment just handed over goes back (``give_back``),
        a start slot just offered goes to the next in line."""
        fut: asyncio.Future[E | None] = asyncio.get_running_loop().create_future()
        entry = (key, fut, racing)
        self._waiters.append(entry)
        waits = (fut,) if also is None else (fut, also)
        try:
            await asyncio.wait(waits, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        except BaseException:
            if fut.done() and not fut.cancelled():
                got = fut.result()
                if got is not None:
                    give_back(got)
                else:
                    self._wake_oldest()
            raise
        finally:
            if not fut.done():
                fut.cancel()
                self._waiters.remove(entry)
        return fut

    def start_done(self) -> None:
        """Give a start slot back and let the oldest waiter try again."""
        self.starting -= 1
        self._wake_oldest()

    def _wake_oldest(self) -> None:
        """Wake the oldest waiter without a start slot to try for the freed one."""
        for entry in self._waiters:
            if not entry[2] and not entry[1].done():
                self._waiters.remove(entry)
                entry[1].set_result(None)
                return

    def offer(self, key: Hashable, env: E) -> bool:
        """Hand a free environment to the oldest waiter of its function version, if any."""
        for entry in self._waiters:
            if entry[0] == key and not entry[1].done():
                self._waiters.remove(entry)
                entry[1].set_result(env)
                return True
        return False

    def statistics(self) -> dict[str, int]:
        return {"starting": self.starting, "waiting": len(self._waiters)}
