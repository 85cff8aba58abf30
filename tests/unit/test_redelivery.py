"""An invocation handed to an idle environment that cannot take it (its thaw or unpark
failed: nothing of it ran) goes to another environment instead of failing."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

from hearth.deferred import Deferred
from hearth.worker.environment import NotDelivered, State
from hearth.worker.invocation import InvokeResult
from hearth.worker.worker import Worker, WorkerConfig, pool_key
from tests.unit.fakes import Cfg


@dataclass(eq=False)
class FakeEnv:
    """An idle environment whose next begin either answers or cannot take the request."""

    broken: bool
    frozen: bool = True
    error: Exception | None = None
    cfg: Cfg = field(default_factory=Cfg)
    state: State = State.IDLE
    served: list[str] = field(default_factory=list)
    last: Deferred[InvokeResult] | None = None

    @property
    def available(self) -> bool:
        return self.state is State.IDLE

    def begin(self, inv: Any) -> Deferred[InvokeResult]:
        self.state = State.BUSY
        done: Deferred[InvokeResult] = Deferred()

        def settle() -> None:
            if self.broken:
                self.state = State.DEAD
                done.fail(self.error or NotDelivered("environment x could not take it: lost"))
            else:
                self.served.append(inv.request_id)
                self.state = State.IDLE
                done.resolve(InvokeResult(payload=b'"ok"'))

        asyncio.get_running_loop().call_soon(settle)  # as a thaw does: later
        self.last = done
        return done


def _inv() -> Any:
    return SimpleNamespace(request_id="req-1")


async def _answer(done: Deferred[InvokeResult] | None) -> asyncio.Future[InvokeResult]:
    assert done is not None
    fut = done.future()
    await asyncio.wait((fut,), timeout=5)
    assert fut.done()
    return fut


def _worker() -> Any:
    return Worker(object(), None, None, str, WorkerConfig(memory_capacity_mb=100_000))  # type: ignore[arg-type]


def test_a_request_the_frozen_environment_cannot_take_runs_on_another() -> None:
    async def main() -> None:
        worker = _worker()
        good, bad = FakeEnv(broken=False), FakeEnv(broken=True)
        worker._idle[pool_key(Cfg())] = [good, bad]  # the most recent (bad) is taken first
        fut = await _answer(worker.invoke_nowait(Cfg(), _inv()))
        assert fut.result().payload == b'"ok"'
        assert good.served == ["req-1"] and bad.state is State.DEAD

    asyncio.run(main())


def test_redelivery_happens_once() -> None:
    async def main() -> None:
        worker = _worker()
        worker._idle[pool_key(Cfg())] = [FakeEnv(broken=True), FakeEnv(broken=True)]
        fut = await _answer(worker.invoke_nowait(Cfg(), _inv()))
        assert isinstance(fut.exception(), NotDelivered)

    asyncio.run(main())


def test_other_failures_are_the_callers_answer() -> None:
    async def main() -> None:
        worker = _worker()
        good = FakeEnv(broken=False)
        failing = FakeEnv(broken=True, error=RuntimeError("restore failed"))
        worker._idle[pool_key(Cfg())] = [good, failing]
        fut = await _answer(worker.invoke_nowait(Cfg(), _inv()))
        assert isinstance(fut.exception(), RuntimeError) and good.served == []

    asyncio.run(main())


def test_the_warm_path_returns_the_environments_own_result() -> None:
    async def main() -> None:
        worker = _worker()
        env = FakeEnv(broken=False, frozen=False)
        worker._idle[pool_key(Cfg())] = [env]
        done = worker.invoke_nowait(Cfg(), _inv())
        assert done is not None and done is env.last  # no wrapper
        assert (await _answer(done)).result().payload == b'"ok"'

    asyncio.run(main())
