"""The invoke router: resolve → admit → hand to a worker → release.

Algorithm of :meth:`Router.invoke` (the hot path; no store write, no payload copy):

1. Resolve the function snapshot from the in-memory cache (filled from the store on a
   miss, invalidated by the control plane on every change).
2. Admit: take a concurrency slot of the function's reservation or of the account's
   unreserved pool (:mod:`hearth.invoke.admission`; an over-limit request gets a 429
   ``TooManyRequestsException`` with AWS's Reason at once, never a queue that grows).
3. Hand the invocation to the worker and return its result; the slot is released on
   every path (``try``/``finally``: cheaper than an async context manager here).

Asynchronous (``Event``) invocations go to an :class:`EventQueue`: the server installs
the durable one of :mod:`hearth.events` (retries, destinations, dead-letter queues).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Protocol

from hearth.deferred import Deferred
from hearth.errors import ResourceNotFound, ServiceError
from hearth.invoke.admission import Admission
from hearth.store.base import Store
from hearth.types import LATEST, FunctionConfig, function_arn
from hearth.worker.invocation import Invocation, InvokeResult

log = logging.getLogger(__name__)


class WorkerClient(Protocol):
    def invoke_nowait(self, cfg: FunctionConfig, inv: Invocation) -> Deferred[InvokeResult] | None:
        """An idle environment takes ``inv`` at once (its result), or None."""
        ...

    async def begin(self, cfg: FunctionConfig, inv: Invocation) -> Deferred[InvokeResult]:
        """Hand ``inv`` to an environment, waiting for or starting one (its result)."""
        ...


class Router:
    def __init__(self, store: Store, worker: WorkerClient, admission: Admission) -> None:
        self._store = store
        self._worker = worker
        self.admission = admission
        self._cache: dict[tuple[str, str, str], FunctionConfig] = {}
        #: (account, function, alias) -> version to run, or None; set by the versions feature.
        self.alias_resolver: Callable[[str, str, str], Awaitable[str | None]] | None = None
        #: The same from the alias cache alone, without an await (None: not cached).
        self.alias_cached: Callable[[str, str, str], str | None] | None = None
        self.events: EventQueue = NoEventQueue()

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

    def cached(self, account_id: str, name: str, qualifier: str | None) -> FunctionConfig | None:
        """The snapshot :meth:`resolve` would give, if every step of it is cached (the warm
        path's lookup, no await); else None."""
        if qualifier is None:
            return self._cache.get((account_id, name, LATEST))
        if qualifier == LATEST or qualifier.isdigit():
            return self._cache.get((account_id, name, qualifier))
        if self.alias_cached is None:
            return None
        version = self.alias_cached(account_id, name, qualifier)
        return None if version is None else self._cache.get((account_id, name, version))

    def invalidate(self, account_id: str, name: str) -> None:
        for key in [k for k in self._cache if k[0] == account_id and k[1] == name]:
            del self._cache[key]

    def invoke_nowait(self, cfg: FunctionConfig, inv: Invocation) -> Deferred[InvokeResult] | None:
        """The warm path without a task: admit, and hand ``inv`` to an idle environment at
        once; None when there is none (then :meth:`invoke`). Raises TooManyRequests."""
        slot = self.admission.acquire(cfg.account_id, cfg.name)
        done = self._worker.invoke_nowait(cfg, inv)
        if done is None:
            self.admission.release(slot)
            return None
        done.then(lambda _: self.admission.release(slot))
        return done

    async def invoke(self, cfg: FunctionConfig, inv: Invocation) -> InvokeResult:
        """Admit and run ``inv``. The slot is held until the invocation ends, even if the
        caller is cancelled first (the invocation itself runs on, as on Lambda)."""
        slot = self.admission.acquire(cfg.account_id, cfg.name)
        try:
            done = self._worker.invoke_nowait(cfg, inv)
            if done is None:
                done = await self._worker.begin(cfg, inv)
        except BaseException:
            self.admission.release(slot)
            raise
        done.then(lambda _: self.admission.release(slot))
        return await done.future()


def _arn_for(region: str, account_id: str, name: str, qualifier: str | None) -> str:
    arn = function_arn(region, account_id, name)
    return f"{arn}:{qualifier}" if qualifier else arn


class EventQueue(Protocol):
    async def submit(self, cfg: FunctionConfig, inv: Invocation) -> None:
        """Accept an asynchronous invocation durably (committed before it returns), or
        raise TooManyRequests when the queue is full."""
        ...

    async def aclose(self) -> None: ...


class NoEventQueue:
    """Placeholder until the server installs the durable queue (:mod:`hearth.events`)."""

    async def submit(self, cfg: FunctionConfig, inv: Invocation) -> None:
        raise ServiceError("Asynchronous invocation is not available on this server.")

    async def aclose(self) -> None:
        return None
