"""Environment lifetimes (fast tier, injected clock): an environment is retired before its
credentials expire; a provisioned one only once its replacement has initialized."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from hearth.worker.environment import State
from hearth.worker.lifetimes import Lifetimes
from hearth.worker.worker import Worker, WorkerConfig, pool_key
from tests.unit.fakes import Cfg


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@dataclass(eq=False)
class FakeEnv:
    cfg: Cfg = field(default_factory=Cfg)
    state: State = State.IDLE
    killed: bool = False

    @property
    def available(self) -> bool:
        return self.state is State.IDLE

    @property
    def alive(self) -> bool:
        return self.state is not State.DEAD

    async def kill(self) -> None:
        self.state = State.DEAD
        self.killed = True


def test_lifetimes_expire_at_max_age_once() -> None:
    clock = Clock()
    lt: Lifetimes[str] = Lifetimes(100.0, clock)
    lt.born("a")
    lt.born("forked", at=clock.now - 60)  # a template's fork: as old as its template
    clock.now += 39
    assert lt.expired(["a", "forked"]) == []
    clock.now += 1
    assert lt.expired(["a", "forked", "unknown"]) == ["forked"]
    lt.retiring.add("forked")
    clock.now += 60
    assert lt.expired(["a", "forked"]) == ["a"]  # one being retired is not found again
    assert lt.too_old(clock.now - 100) and not lt.too_old(clock.now - 99)
    lt.forget("forked")
    assert "forked" not in lt.retiring


def _worker(clock: Clock) -> Worker:
    config = WorkerConfig(memory_capacity_mb=10_000, max_age=100.0)
    return Worker(object(), None, None, str, config, clock=clock)  # type: ignore[arg-type]


def _add(worker: Any, env: FakeEnv, *, idle: bool = True) -> None:
    worker._all.add(env)
    worker._lifetimes.born(env)
    if idle:
        worker._idle.setdefault(pool_key(env.cfg), []).append(env)  # type: ignore[arg-type]


def test_an_environment_past_its_lifetime_is_retired_idle_now_busy_after_its_invoke() -> None:
    async def main() -> None:
        clock = Clock()
        worker: Any = _worker(clock)
        idle, busy, young = FakeEnv(), FakeEnv(state=State.BUSY), FakeEnv()
        _add(worker, idle)
        _add(worker, busy, idle=False)
        clock.now += 50
        _add(worker, young)
        clock.now += 50
        worker.renew_expired()
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        assert idle.killed and not young.killed
        assert not busy.killed and busy in worker._lifetimes.retiring
        assert worker._idle[pool_key(Cfg())] == [young]
        # The busy one ends its invocation: it is killed instead of going back.
        busy.state = State.IDLE
        worker._release(busy)
        await asyncio.sleep(0)
        assert busy.killed and worker._idle[pool_key(Cfg())] == [young]
        worker.renew_expired()  # nothing found twice
        await asyncio.sleep(0)
        assert not young.killed

    asyncio.run(main())


def test_a_provisioned_environment_is_replaced_before_it_is_retired() -> None:
    async def main() -> None:
        clock = Clock()
        worker: Any = _worker(clock)
        old = FakeEnv()
        _add(worker, old)
        worker._provisioned.add(old)
        gate = asyncio.Event()
        replacements: list[FakeEnv] = []
        fail = [True]

        async def provision_one(cfg: Any) -> FakeEnv:
            await gate.wait()
            if fail[0]:
                raise RuntimeError("no capacity")
            new = FakeEnv(cfg)
            _add(worker, new, idle=False)
            worker._provisioned.add(new)
            worker._release(new)
            replacements.append(new)
            return new

        worker._provision_one = provision_one
        clock.now += 100
        worker.renew_expired()
        await asyncio.sleep(0)
        # While its replacement initializes, the old one serves on and is not found again.
        assert not old.killed and old in worker._idle[pool_key(Cfg())]
        worker.renew_expired()
        gate.set()
        for _ in range(3):
            await asyncio.sleep(0)
        # The replacement failed: the old one stays (and provisioned) for the next reap.
        assert not old.killed and old in worker._provisioned and replacements == []
        fail[0] = False
        worker.renew_expired()
        for _ in range(3):
            await asyncio.sleep(0)
        assert old.killed and old not in worker._provisioned
        assert len(replacements) == 1  # exactly one replacement for one retired environment
        assert worker._provisioned == {replacements[0]}
        assert worker._idle[pool_key(Cfg())] == replacements

    asyncio.run(main())


class FakeTemplate:
    def __init__(self) -> None:
        self.alive = True
        self.in_use: set[object] = {object()}  # a fork of it is alive
        self.killed = False

    async def kill(self) -> None:
        self.alive, self.killed = False, True


def test_a_snapstart_template_past_its_lifetime_forks_no_more() -> None:
    from hearth.worker.templates import Templates

    async def main() -> None:
        clock = Clock()
        made: list[FakeTemplate] = []

        async def create(cfg: Any, launch: Any) -> FakeTemplate:
            made.append(FakeTemplate())
            return made[-1]

        templates: Any = Templates(
            object(),
            None,
            init_timeout=1.0,
            lifetimes=Lifetimes(100.0, clock),  # type: ignore[arg-type]
        )
        templates._create = create
        key = ("000000000000", "f", "1", "r")
        first = await templates.backend_for(key, Cfg(), None)
        assert first.template is made[0] and first.born == clock.now
        clock.now += 99
        assert (await templates.backend_for(key, Cfg(), None)).template is made[0]
        clock.now += 1
        second = await templates.backend_for(key, Cfg(), None)
        assert second.template is made[1] and second.born == clock.now
        await templates.collect()
        assert not made[0].killed  # its forks live on: it stays until they are gone
        made[0].in_use = set()
        await templates.collect()
        assert made[0].killed and not made[1].killed
        await templates.aclose()
        assert made[1].killed

    asyncio.run(main())


def test_a_replacement_finished_after_deprovisioning_is_an_ordinary_environment() -> None:
    async def main() -> None:
        clock = Clock()
        worker: Any = _worker(clock)
        old = FakeEnv()
        _add(worker, old)
        worker._provisioned.add(old)
        gate = asyncio.Event()

        async def provision_one(cfg: Any) -> FakeEnv:
            await gate.wait()
            new = FakeEnv(cfg)
            _add(worker, new, idle=False)
            worker._provisioned.add(new)
            worker._release(new)
            return new

        worker._provision_one = provision_one
        clock.now += 100
        worker.renew_expired()
        await asyncio.sleep(0)
        worker.deprovision(old.cfg)  # DeleteProvisionedConcurrencyConfig meanwhile
        gate.set()
        for _ in range(3):
            await asyncio.sleep(0)
        assert old.killed and worker._provisioned == set()

    asyncio.run(main())
