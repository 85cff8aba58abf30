"""A stem pool lets the ready stems of a key go once no start has used it for a while."""

from __future__ import annotations

import asyncio
from typing import Any

from hearth.sandbox.base import SandboxSpec
from hearth.sandbox.stems import StemPool


class FakeStem:
    def __init__(self) -> None:
        self.usable_stem = True
        self.killed = False

    async def kill(self) -> None:
        self.killed = True


def test_idle_keys_are_drained_and_refilled_on_demand(tmp_path: Any) -> None:
    made: list[FakeStem] = []

    async def make(spec: SandboxSpec, key: object) -> Any:
        stem = FakeStem()
        made.append(stem)
        return stem

    async def main() -> None:
        pool = StemPool(make, lambda spec: ("python",), per_key=2)
        pool.refill_delay = 0
        pool.key_idle = 0.2
        spec = SandboxSpec(
            env_id="e1", code_dir=str(tmp_path), argv=("/bin/true",), env={}, memory_mb=128
        )
        assert pool.take(spec) is None  # first start of a key: nothing ready yet
        await asyncio.sleep(0.05)
        assert pool.ready_count() == 2
        assert pool.take(spec) is not None  # taken: the key stays alive
        await asyncio.sleep(0.05)
        assert pool.ready_count() == 2
        await asyncio.sleep(0.3)  # idle past key_idle: ready stems go
        assert pool.ready_count() == 0
        assert sum(s.killed for s in made) == 2
        assert pool.take(spec) is None  # the next start refills
        await asyncio.sleep(0.05)
        assert pool.ready_count() == 2
        await pool.aclose()
        assert sum(s.killed for s in made) == len(made) - 1  # all but the one a start took

    asyncio.run(main())
