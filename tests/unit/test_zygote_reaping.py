"""Zygotes are let go when idle, or least recently used past the cap (injected clock)."""

from __future__ import annotations

import asyncio
from typing import Any

from hearth.errors import SandboxError
from hearth.sandbox.base import SandboxSpec
from hearth.sandbox.zygote import ZygoteSpec
from hearth.sandbox.zygotes import Zygotes

ARGV = ("/var/lang/bin/python3.12", "/var/runtime/bootstrap.py")


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class FakeZygote:
    def __init__(self, spec: ZygoteSpec, argv: tuple[str, ...]) -> None:
        self.spec = spec
        self.argv = argv
        self.pid = 1
        self.immortal = 0
        self.alive = False
        self.busy = False
        self.retired = False
        self.exited = False
        self.killed = False

    async def start(self) -> None:
        self.alive = True

    def retire(self) -> None:
        self.alive = False
        self.retired = True

    async def aclose(self) -> None:
        self.alive = False
        self.killed = True


def _spec(tmp: Any, account: str) -> SandboxSpec:
    return SandboxSpec(env_id=f"{account}-e", code_dir=str(tmp), argv=ARGV, env={}, memory_mb=128)


def _zygotes(clock: Clock, made: list[FakeZygote], **kw: Any) -> Zygotes:
    def make(spec: ZygoteSpec, argv: tuple[str, ...]) -> Any:
        made.append(FakeZygote(spec, argv))
        return made[-1]

    zygotes = Zygotes(clock=clock, make=make, **kw)
    zygotes.register(ARGV, ZygoteSpec("/usr/bin/python3", (), "/dev/null"))
    return zygotes


async def _started(zygotes: Zygotes) -> None:
    for _ in range(3):
        await asyncio.sleep(0)


def test_an_idle_zygote_is_retired_with_its_stems_and_the_next_start_makes_a_new_one(
    tmp_path: Any,
) -> None:
    async def main() -> None:
        clock, made = Clock(), []  # type: ignore[var-annotated]
        zygotes = _zygotes(clock, made, idle_timeout=600.0)
        retired_keys: list[Any] = []
        zygotes.on_retire = retired_keys.append
        zygotes.warm(_spec(tmp_path, "111111111111"))
        await _started(zygotes)
        assert zygotes.statistics()["zygotes"] == 1
        clock.now += 599
        zygotes.reap()
        assert not made[0].retired
        made[0].busy = True  # a fork on its way: never retired under it
        clock.now += 1
        zygotes.reap()
        assert not made[0].retired
        made[0].busy = False
        zygotes.reap()
        assert made[0].retired and not made[0].killed  # what it forked lives on
        assert retired_keys == [("111111111111", ARGV)]
        assert zygotes.statistics()["zygotes_draining"] == 1
        made[0].exited = True  # its last sandbox exited, and so did it
        zygotes.reap()
        assert zygotes.statistics()["zygotes_draining"] == 0
        # The next start of the key takes the exec path and starts a new zygote.
        assert await zygotes.launcher(_spec(tmp_path, "111111111111"), -1) is None
        await _started(zygotes)
        assert len(made) == 2 and made[1].alive
        await zygotes.aclose()
        assert made[1].killed

    asyncio.run(main())


def test_a_fork_keeps_a_zygote_from_going_idle(tmp_path: Any) -> None:
    async def main() -> None:
        clock, made = Clock(), []  # type: ignore[var-annotated]
        zygotes = _zygotes(clock, made, idle_timeout=10.0)
        spec = _spec(tmp_path, "111111111111")
        zygotes.warm(spec)
        await _started(zygotes)
        forked: list[int] = []

        async def fork(fds: Any, op: str = "fork") -> int:
            forked.append(len(fds))
            raise SandboxError("no real fork in a unit test")

        made[0].fork = fork  # type: ignore[attr-defined]
        clock.now += 9
        await zygotes.launcher(spec, -1)  # a start used it (its fork failing or not)
        assert forked
        clock.now += 9
        zygotes.reap()
        assert not made[0].retired
        clock.now += 1
        zygotes.reap()
        assert made[0].retired
        await zygotes.aclose()

    asyncio.run(main())


def test_past_the_cap_the_least_recently_used_zygote_goes(tmp_path: Any) -> None:
    async def main() -> None:
        clock, made = Clock(), []  # type: ignore[var-annotated]
        zygotes = _zygotes(clock, made, max_live=2)
        for account in ("111111111111", "222222222222"):
            zygotes.warm(_spec(tmp_path, account))
            await _started(zygotes)
            clock.now += 1
        zygotes.warm(_spec(tmp_path, "111111111111"))  # running: nothing happens
        assert len(made) == 2
        # Account 1 started first and forked nothing since: it goes for account 3.
        zygotes.warm(_spec(tmp_path, "333333333333"))
        await _started(zygotes)
        assert made[0].retired and not made[1].retired and made[2].alive
        assert zygotes.statistics()["zygotes"] == 2
        # Busy zygotes are never taken: with both busy, a fourth account execs.
        made[1].busy = made[2].busy = True
        zygotes.warm(_spec(tmp_path, "444444444444"))
        await _started(zygotes)
        assert len(made) == 3 and zygotes.statistics()["zygotes"] == 2
        await zygotes.aclose()
        assert all(z.killed for z in made)  # the draining one too, at shutdown

    asyncio.run(main())
