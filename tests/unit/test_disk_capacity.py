"""Disk capacity (fast tier): every environment and SnapStart template reserves its
EphemeralStorage; a start past the capacity evicts idle environments, else is throttled
like a memory over-commit."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

import pytest

from hearth.errors import TooManyRequests
from hearth.worker.environment import State
from hearth.worker.worker import Worker, WorkerConfig, pool_key
from tests.unit.fakes import Cfg


@dataclass(eq=False)
class FakeEnv:
    cfg: Cfg = field(default_factory=Cfg)
    state: State = State.IDLE
    last_used: float = 0.0
    killed: bool = False
    forget: Any = None

    async def kill(self) -> None:
        self.state = State.DEAD
        self.killed = True
        self.forget(self)


def _worker(disk_mb: int | None) -> Any:
    config = WorkerConfig(memory_capacity_mb=100_000, disk_capacity_mb=disk_mb)
    return Worker(object(), None, None, str, config)  # type: ignore[arg-type]


async def _live(worker: Any, cfg: Cfg, *, idle: bool) -> FakeEnv:
    """An environment as ``_start_env`` makes one: capacity reserved, then known."""
    await worker._reserve(cfg.memory_size, cfg.ephemeral_storage)
    env = FakeEnv(cfg, forget=worker._forget)
    worker._all.add(env)
    if idle:
        worker._idle.setdefault(pool_key(cfg), []).append(env)  # type: ignore[arg-type]
    return env


def test_a_start_past_the_disk_capacity_is_throttled_then_fits_when_one_is_gone() -> None:
    async def main() -> None:
        worker = _worker(1024)
        a = await _live(worker, Cfg(), idle=False)
        await _live(worker, Cfg(), idle=False)
        assert worker.statistics()["disk_committed_mb"] == 1024
        with pytest.raises(TooManyRequests) as info:
            await worker._reserve(128, 512)
        assert info.value.extra["Reason"] == "ConcurrentInvocationLimitExceeded"
        assert worker.statistics()["disk_committed_mb"] == 1024  # nothing half-reserved
        await worker._reserve(128, 0)  # memory alone still fits (no /tmp asked for)
        worker._unreserve(128, 0)
        a.state = State.DEAD
        worker._forget(a)
        await worker._reserve(128, 512)
        assert worker.statistics()["disk_committed_mb"] == 1024

    asyncio.run(main())


def test_idle_environments_are_evicted_for_disk_least_recently_used_first() -> None:
    async def main() -> None:
        worker = _worker(2048)
        big = Cfg(name="big", ephemeral_storage=1024)
        old = await _live(worker, big, idle=True)
        newer = await _live(worker, Cfg(name="g"), idle=True)
        newer.last_used = 5.0
        await worker._reserve(128, 1024)  # past 2,048: the least recently used goes
        assert old.killed and not newer.killed
        assert worker.statistics()["disk_committed_mb"] == 1536

    asyncio.run(main())


def test_no_disk_capacity_means_no_disk_bound() -> None:
    async def main() -> None:
        worker = _worker(None)
        for _ in range(10):
            await worker._reserve(128, 10_240)
        assert worker.statistics()["disk_committed_mb"] == 102_400

    asyncio.run(main())
