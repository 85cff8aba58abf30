"""Thawing an environment whose freeze has not settled yet (fast tier)."""

from __future__ import annotations

import asyncio

from hearth.worker.environment import Environment


class _Sandbox:
    def __init__(self) -> None:
        self.thaws = 0

    async def thaw(self) -> None:
        self.thaws += 1


def _env_freezing(freeze: object) -> tuple[Environment, _Sandbox]:
    # Only the two fields _thaw reads: the rest of an Environment needs a real sandbox.
    env = Environment.__new__(Environment)
    sandbox = _Sandbox()
    env.id = "env"
    env._sandbox = sandbox  # type: ignore[assignment]
    env._freezing = asyncio.ensure_future(freeze)  # type: ignore[arg-type]
    return env, sandbox


def test_an_invoke_does_not_wait_for_a_freeze_that_has_not_settled() -> None:
    """On a busy host the freezer may take up to its 2 s timeout to reach FROZEN; the
    invocation arriving meanwhile calls the freeze off and thaws at once."""

    async def main() -> None:
        never = asyncio.Event()
        env, sandbox = _env_freezing(never.wait())
        await asyncio.sleep(0)  # the freeze is under way
        freezing = env._freezing
        await asyncio.wait_for(env._thaw(), 1.0)
        assert sandbox.thaws == 1
        assert freezing is not None and freezing.cancelled()
        assert env._freezing is None

    asyncio.run(main())


def test_a_failed_freeze_is_still_thawed() -> None:
    async def main() -> None:
        async def fail() -> None:
            raise OSError("freezer did not reach FROZEN in 2 s")

        env, sandbox = _env_freezing(fail())
        await asyncio.sleep(0.01)
        await env._thaw()
        assert sandbox.thaws == 1

    asyncio.run(main())
