"""The start gate (fast tier): bounded starts, hand-over to waiters, bounds."""

from __future__ import annotations

import asyncio

import pytest

from hearth.errors import TooManyRequests
from hearth.worker.starts import StartGate


def test_starts_are_bounded_and_a_freed_environment_goes_to_the_oldest_waiter() -> None:
    async def main() -> None:
        gate: StartGate[str] = StartGate(max_starting=1, max_waiting=10, wait_timeout=5)
        given: list[str] = []
        assert await gate.acquire("k", lambda: None, given.append) is None  # slot 1
        first = asyncio.ensure_future(gate.acquire("k", lambda: None, given.append))
        second = asyncio.ensure_future(gate.acquire("k", lambda: None, given.append))
        await asyncio.sleep(0.01)
        assert gate.statistics() == {"starting": 1, "waiting": 2}
        assert gate.offer("k", "env-1")  # handed over, oldest first
        assert await first == "env-1"
        assert not gate.offer("other", "env-x")  # only to waiters of the same version
        gate.start_done()  # the slot frees: the next waiter may start its own
        assert await second is None
        assert gate.statistics() == {"starting": 1, "waiting": 0}
        assert given == []

    asyncio.run(main())


def test_waiting_is_bounded_in_number_and_time() -> None:
    async def main() -> None:
        gate: StartGate[str] = StartGate(max_starting=1, max_waiting=1, wait_timeout=0.05)
        assert await gate.acquire("k", lambda: None, lambda e: None) is None
        waiter = asyncio.ensure_future(gate.acquire("k", lambda: None, lambda e: None))
        await asyncio.sleep(0.01)
        with pytest.raises(TooManyRequests):  # a second waiter is over the bound
            await gate.acquire("k", lambda: None, lambda e: None)
        with pytest.raises(TooManyRequests) as ei:  # the first one times out
            await waiter
        assert ei.value.extra["Reason"] == "ConcurrentInvocationLimitExceeded"
        assert gate.statistics()["waiting"] == 0

    asyncio.run(main())


def test_a_cancelled_waiter_gives_a_handed_environment_back() -> None:
    async def main() -> None:
        gate: StartGate[str] = StartGate(max_starting=0, max_waiting=5, wait_timeout=5)
        back: list[str] = []
        waiter = asyncio.ensure_future(gate.acquire("k", lambda: None, back.append))
        await asyncio.sleep(0.01)
        gate.offer("k", "env-1")
        waiter.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiter
        assert back == ["env-1"]

    asyncio.run(main())


def test_a_starting_request_takes_an_environment_freed_before_its_own_start_ends() -> None:
    async def main() -> None:
        gate: StartGate[str] = StartGate(max_starting=1, max_waiting=5, wait_timeout=5)
        assert await gate.acquire("k", lambda: None, lambda e: None) is None  # the slot
        start: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        racing = asyncio.ensure_future(gate.race("k", start, lambda e: None))
        await asyncio.sleep(0.01)
        assert not gate.offer("other", "env-x")  # only its own version
        assert gate.offer("k", "env-1")
        assert await racing == "env-1"
        assert not start.done()  # the start goes on: the caller adopts what it gives
        assert gate.statistics()["waiting"] == 0

    asyncio.run(main())


def test_a_starting_request_takes_its_own_start_when_it_ends_first() -> None:
    async def main() -> None:
        gate: StartGate[str] = StartGate(max_starting=1, max_waiting=5, wait_timeout=5)
        start: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        racing = asyncio.ensure_future(gate.race("k", start, lambda e: None))
        await asyncio.sleep(0.01)
        start.set_result("env-own")
        assert await racing is None  # its own start ended first
        assert gate.statistics()["waiting"] == 0
        assert not gate.offer("k", "env-1")  # nobody waits any more

        failing: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        failing.set_exception(RuntimeError("no sandbox"))
        assert await gate.race("k", failing, lambda e: None) is None  # the caller reads it

    asyncio.run(main())


def test_a_freed_start_slot_wakes_a_waiter_without_one_not_a_racing_request() -> None:
    async def main() -> None:
        gate: StartGate[str] = StartGate(max_starting=1, max_waiting=5, wait_timeout=5)
        assert await gate.acquire("k", lambda: None, lambda e: None) is None
        start: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        racing = asyncio.ensure_future(gate.race("k", start, lambda e: None))
        await asyncio.sleep(0.01)
        waiter = asyncio.ensure_future(gate.acquire("k", lambda: None, lambda e: None))
        await asyncio.sleep(0.01)
        gate.start_done()  # the racing request is older, but it has its slot already
        assert await waiter is None  # the waiter got the freed slot
        assert not racing.done()
        racing.cancel()

    asyncio.run(main())
