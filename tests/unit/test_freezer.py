"""The freezer: idle environments frozen after their idle time, thawed at once (fast tier)."""

from __future__ import annotations

import asyncio
import time

from hearth.worker.freezer import Freezer


class _Sandbox:
    def __init__(self) -> None:
        self.thaws = 0

    async def thaw(self) -> None:
        self.thaws += 1


def _env_freezing(freeze: object) -> tuple[Freezer, _Sandbox]:
    """A freezer whose freeze (``freeze``) is under way."""
    sandbox = _Sandbox()
    freezer = Freezer("env", 1.0, lambda: 0.0, lambda: sandbox)
    freezer._freezing = asyncio.ensure_future(freeze)  # type: ignore[arg-type]
    return freezer, sandbox


def test_an_invoke_does_not_wait_for_a_freeze_that_has_not_settled() -> None:
    """On a busy host the freezer may take up to its 2 s timeout to reach FROZEN; the
    invocation arriving meanwhile calls the freeze off and thaws at once."""

    async def main() -> None:
        never = asyncio.Event()
        freezer, sandbox = _env_freezing(never.wait())
        await asyncio.sleep(0)  # the freeze is under way
        freezing = freezer._freezing
        await asyncio.wait_for(freezer.thaw(), 1.0)
        assert sandbox.thaws == 1
        assert freezing is not None and freezing.cancelled()
        assert not freezer.frozen

    asyncio.run(main())


def test_a_failed_freeze_is_still_thawed() -> None:
    async def main() -> None:
        async def fail() -> None:
            raise OSError("freezer did not reach FROZEN in 2 s")

        freezer, sandbox = _env_freezing(fail())
        await asyncio.sleep(0.01)
        await freezer.thaw()
        assert sandbox.thaws == 1

    asyncio.run(main())


def test_an_idle_environment_is_frozen_after_its_idle_time_and_a_busy_one_is_not() -> None:
    class Counting(_Sandbox):
        def __init__(self) -> None:
            super().__init__()
            self.freezes = 0

        async def freeze(self) -> None:
            self.freezes += 1

    async def main() -> None:
        sandbox = Counting()
        idle: list[float | None] = [None]  # busy
        freezer = Freezer("env", 0.05, lambda: idle[0], lambda: sandbox)
        loop = asyncio.get_running_loop()
        freezer.arm(loop)
        await asyncio.sleep(0.1)
        assert sandbox.freezes == 0 and not freezer.frozen  # busy when the timer fired
        idle[0] = time.monotonic()
        freezer.arm(loop)
        await asyncio.sleep(0.02)
        assert sandbox.freezes == 0  # not idle long enough yet
        await asyncio.sleep(0.1)
        assert sandbox.freezes == 1 and freezer.frozen
        await freezer.thaw()
        assert sandbox.thaws == 1 and not freezer.frozen

    asyncio.run(main())


class _Freezing(_Sandbox):
    def __init__(self) -> None:
        super().__init__()
        self.freezes = 0

    async def freeze(self) -> None:
        self.freezes += 1


def test_on_frozen_is_told_once_a_timer_freeze_has_settled() -> None:
    """The worker parks environments when they have frozen (hearth.worker.fd_vault)."""

    async def main() -> None:
        sandbox = _Freezing()
        told: list[bool] = []
        freezer = Freezer("env", 0.01, lambda: 0.0, lambda: sandbox, lambda: told.append(True))
        freezer.arm(asyncio.get_running_loop())
        await asyncio.sleep(0.1)
        assert sandbox.freezes == 1 and freezer.settled and told == [True]
        await freezer.thaw()
        assert not freezer.settled

    asyncio.run(main())


def test_freeze_now_freezes_an_idle_environment_before_its_time() -> None:
    async def main() -> None:
        sandbox = _Freezing()
        told: list[bool] = []
        freezer = Freezer("env", 60.0, time.monotonic, lambda: sandbox, lambda: told.append(True))
        freezer.arm(asyncio.get_running_loop())
        assert await freezer.freeze_now()
        assert sandbox.freezes == 1 and freezer.frozen and freezer.settled
        assert told == []  # the caller (a park) knows
        await freezer.thaw()
        assert sandbox.thaws == 1 and not freezer.frozen

    asyncio.run(main())
