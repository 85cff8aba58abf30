"""The invoke router: resolve → admit → hand to a worker → release.

Algorithm of :meth:`Router.invoke` (the hot path; no store write, no payload copy):

1. Resolve the function snapshot from the in-memory cache (filled from the store on a
   miss, invalidated by the control plane on every change).
2. Admit: take a concurrency slot of the function's reservation or of the account's
   unreserved pool (:mod:`hearth.invoke.admission`; an over-limit request gets a 429
   ``TooManyRequestsException`` with AWS's Reason at once, never a queue that grows).
3. Hand the invocation to the worker and return its result; the slot is released on
   every path (``try``/``finally``: cheaper than an async context manager here).

Asynchronous (``Event``) invocations go to an :class:`EventQueue`; the local one is a
bounded in-memory queue drained by a few tasks. The durable queue with retries and
destinations replaces it behind the same seam.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Awaitable, Callable
from typing import Protocol

from hearth.errors import ResourceNotFound, TooManyRequests
from hearth.invoke.admission import Admission
from hearth.store.base import Store
from hearth.types import LATEST, FunctionConfig, function_arn
from hearth.worker.invocation import Invocation, InvokeResult

log = logging.getLogger(__name__)


class WorkerClient(Protocol):
    async def invoke(self, cfg: FunctionConfig, inv: Invocation) -> InvokeResult: ...


class Router:
    def __init__(self, store: Store, worker: WorkerClient, admission: Admission) -> None:
        self._store = store
        self._worker = worker
        self.admission = admission
        self._cache: dict[tuple[str, str, str], FunctionConfig] = {}
        #: (account, function, alias) -> version to run, or None; set by the versions feature.
        self.alias_resolver: Callable[[str, str, str], Awaitable[str | None]] | None = None
        self.events: EventQueue = LocalEventQueue(self)

    async def resolve(
        self, account_id: str, region: str, name: str, qualifier: str | None
    ) -> FunctionConfig:
        version = qualifier or LATEST
        if self.alias_resolver is not None and version != LATEST and not version.isdigit():
            # An alias: its version (a weighted draw for a routing alias), from a cache.
            picked = await self.alias_resolver(account_id, name, version)
            if picked is None:
                raise ResourceNotFound(
                    f"Function not found: {_arn_for(region, account_id, name, qualifier)}",
                )
            version = picked
        key = (account_id, name, version)
        cfg = self._cache.get(key)
        if cfg is None:
            cfg = await self._store.get_function(account_id, name, version)
            if cfg is None:
                raise ResourceNotFound(
                    f"Function not found: {_arn_for(region, account_id, name, qualifier)}",
                )
            self._cache[key] = cfg
        return cfg

    def invalidate(self, account_id: str, name: str) -> None:
        for key in [k for k in self._cache if k[0] == account_id and k[1] == name]:
            del self._cache[key]

    async def invoke(self, cfg: FunctionConfig, inv: Invocation) -> InvokeResult:
        slot = self.admission.acquire(cfg.account_id, cfg.name)
        try:
            return await self._worker.invoke(cfg, inv)
        finally:
            self.admission.release(slot)


def new_request_id() -> str:
    return str(uuid.uuid4())


def _arn_for(region: str, account_id: str, name: str, qualifier: str | None) -> str:
    arn = function_arn(region, account_id, name)
    return f"{arn}:{qualifier}" if qualifier else arn


class EventQueue(Protocol):
    def submit(self, cfg: FunctionConfig, inv: Invocation) -> None:
        """Accept an asynchronous invocation or raise TooManyRequests when full."""
        ...

    async def aclose(self) -> None: ...


class LocalEventQueue:
    """A bounded in-memory queue of Event invocations, drained by a few tasks.

    Not durable: events accepted but not yet run are lost if the server dies. The
    durable store-backed queue (with retries and destinations) replaces this class.
    """

    def __init__(self, router: Router, bound: int = 10_000, workers: int = 16) -> None:
        self._router = router
        self._queue: asyncio.Queue[tuple[FunctionConfig, Invocation]] = asyncio.Queue(bound)
        self._workers = workers
        self._tasks: list[asyncio.Task[None]] = []

    def submit(self, cfg: FunctionConfig, inv: Invocation) -> None:
        if not self._tasks:
            self._tasks = [asyncio.create_task(self._drain()) for _ in range(self._workers)]
        try:
            self._queue.put_nowait((cfg, inv))
        except asyncio.QueueFull:
            raise TooManyRequests(
                "Rate Exceeded.", extra={"Reason": "CallerRateLimitExceeded", "Type": "User"}
            ) from None

    async def _drain(self) -> None:
        while True:
            cfg, inv = await self._queue.get()
            try:
                # Throttled events wait and try again rather than fail.
                for _ in range(600):
                    try:
                        await self._router.invoke(cfg, inv)
                        break
                    except TooManyRequests:
                        await asyncio.sleep(1)
            except Exception:
                log.exception("event invocation %s failed", inv.request_id)

    async def aclose(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
