"""The durable asynchronous invocation queue and its dispatcher.

:meth:`DurableEventQueue.submit` commits the event to the queue database (group commit,
``synchronous=FULL``) before it returns, so a 202 means the event survives ``kill -9``.

Dispatch policy, per event (the numbered steps of :meth:`DurableEventQueue._process`):

1. Resolve the function (a deleted function's events are dropped, logged and counted).
2. Past ``MaximumEventAgeInSeconds`` → finish with ``EventAgeExceeded``.
3. Invoke through the router, as a synchronous call would (admission included).
4. Throttled (429) → wait with exponential backoff and jitter (1 s doubling) and try
   again; the wait does not count as an attempt. Lambda caps the backoff at 5 minutes;
   Hearth caps it at 10 s (``throttle_max``) so a freed slot is used soon, at the cost
   of a few more database reads and writes per throttled event. If the next try would
   fall past the maximum age, finish with ``EventAgeExceeded`` now.
5. Function error → retry after ``retry_delays[n]`` (AWS: about 1 min, then 2 min) up to
   ``MaximumRetryAttempts``; then finish with ``RetriesExhausted``. A retry that would
   start past the maximum age finishes the event with ``EventAgeExceeded`` at once
   (rather than waiting only to discard it).
6. Finishing deletes the event and delivers its record to OnSuccess / OnFailure and the
   original event to the function's dead-letter queue, in one transaction.

Bounds: at most ``max_pending`` accepted events (then ``TooManyRequestsException``),
and at most ``concurrency`` invocations in flight from this dispatcher.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import random
import sqlite3
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from hearth.errors import AwsError, ResourceNotFound, TooManyRequests
from hearth.events import _table
from hearth.events._config import EventInvokeConfig, EventInvokeConfigs
from hearth.events._records import Deliverer, Outcome, record
from hearth.events._table import EventRow
from hearth.invoke.router import Router
from hearth.queues import QueueDb, QueueEngine, QueueInfo
from hearth.types import LATEST, FunctionConfig, function_arn
from hearth.worker.invocation import Invocation

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class AsyncSettings:
    retry_delays: tuple[float, ...] = (60.0, 120.0)
    throttle_base: float = 1.0
    throttle_max: float = 10.0
    concurrency: int = 64
    max_pending: int = 100_000

    @classmethod
    def from_environ(cls, environ: dict[str, str]) -> AsyncSettings:
        """``HEARTH_ASYNC_RETRY_DELAYS=1,2`` (seconds; for tests) overrides AWS's 60,120."""
        d = cls()
        raw = environ.get("HEARTH_ASYNC_RETRY_DELAYS", "")
        delays = tuple(float(x) for x in raw.split(",") if x.strip()) or d.retry_delays
        conc = int(environ.get("HEARTH_ASYNC_CONCURRENCY") or d.concurrency)
        return cls(retry_delays=delays, concurrency=conc)


@dataclass(slots=True)
class AsyncStats:
    accepted: int = 0
    succeeded: int = 0
    retries: int = 0
    exhausted: int = 0
    expired: int = 0
    throttled: int = 0
    dropped: int = 0
    duplicates: int = 0
    recovered: int = 0
    extra: dict[str, int] = field(default_factory=dict)


#: destinations delivered through :attr:`DurableEventQueue.external`
EXTERNAL_PREFIXES = ("arn:aws:sns:", "arn:aws:events:")
#: (destination ARN, invocation record, qualified function ARN, success) -> delivered
ExternalDestination = Callable[[str, bytes, str, bool], Awaitable[None]]


class DurableEventQueue:
    def __init__(
        self,
        db: QueueDb,
        queues: QueueEngine,
        router: Router,
        configs: EventInvokeConfigs,
        settings: AsyncSettings,
    ) -> None:
        self._db = db
        self._queues = queues
        self._router = router
        self._configs = configs
        self._settings = settings
        self._deliver = Deliverer(queues)
        self._wake = asyncio.Event()
        self._tasks: set[asyncio.Task[None]] = set()
        self._loop_task: asyncio.Task[None] | None = None
        self._throttles: dict[int, int] = {}
        self._pending = 0
        self.stats = AsyncStats()
        self.external: ExternalDestination | None = None
        """Delivers a record to an SNS topic or an EventBridge bus (set by the wiring once
        those services exist); ``None``: such destinations count as failed deliveries."""

    async def open(self) -> None:
        now = time.time()
        released, self._pending = await self._db.run(lambda db: _table.recover(db, now))
        self.stats.recovered = released
        if released or self._pending:
            log.info(
                "async events: %d pending (%d interrupted by a crash)", self._pending, released
            )
        self._loop_task = asyncio.create_task(self._loop(), name="async-dispatcher")

    # -- EventQueue seam --------------------------------------------------------------
    async def submit(self, cfg: FunctionConfig, inv: Invocation) -> None:
        """Accept an Event invocation durably, or raise TooManyRequests when full."""
        if self._pending >= self._settings.max_pending:
            raise TooManyRequests(
                "Rate Exceeded.", extra={"Reason": "CallerRateLimitExceeded", "Type": "User"}
            )
        qualifier = inv.invoked_arn.split(":")[7] if inv.invoked_arn.count(":") >= 7 else None
        now = time.time()
        row = EventRow(
            0,
            inv.request_id,
            cfg.account_id,
            cfg.region,
            cfg.name,
            qualifier,
            inv.payload,
            inv.trace_id,
            now,
            0,
            0,
        )
        self._pending += 1
        try:
            await self._db.run(lambda db: _table.insert(db, row, now))
        except BaseException:
            self._pending -= 1
            raise
        self.stats.accepted += 1
        self._wake.set()

    async def aclose(self) -> None:
        if self._loop_task is not None:
            self._loop_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._loop_task
            self._loop_task = None
        tasks = list(self._tasks)
        for t in tasks:
            t.cancel()
        for t in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await t
        # Events cut short by the shutdown run again at the next start.
        await self._db.run(lambda db: _table.recover(db, time.time()))

    def statistics(self) -> dict[str, Any]:
        return {
            "pending": self._pending,
            "in_flight": len(self._tasks),
            **{k: getattr(self.stats, k) for k in AsyncStats.__dataclass_fields__ if k != "extra"},
            "destination_deliveries": self._deliver.stats.delivered,
            "destination_failures": self._deliver.stats.failed,
        }

    # -- dispatch loop ----------------------------------------------------------------
    async def _loop(self) -> None:
        while True:
            self._wake.clear()
            free = self._settings.concurrency - len(self._tasks)
            timeout = 1.0
            if free > 0:
                now = time.time()
                rows = await self._db.run(functools.partial(_claim, now=now, limit=free))
                for ev in rows:
                    task = asyncio.create_task(self._run_one(ev))
                    self._tasks.add(task)
                if len(rows) < free:
                    due = await self._db.run(_table.next_due)
                    if due is not None:
                        timeout = min(max(due - time.time(), 0.01), 1.0)
                else:
                    continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout)

    async def _run_one(self, ev: EventRow) -> None:
        try:
            await self._process(ev)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("async event %s: dispatch failed; retrying in 5 s", ev.request_id)
            with contextlib.suppress(Exception):
                await self._db.run(
                    lambda db: _table.release(
                        db, ev.id, time.time() + 5, failed=False, invoked=False
                    )
                )
        finally:
            task = asyncio.current_task()
            if task is not None:
                self._tasks.discard(task)
            self._wake.set()

    async def _process(self, ev: EventRow) -> None:
        qualifier = ev.qualifier or LATEST
        conf = self._configs.effective(ev.account_id, ev.function_name, qualifier)
        qarn = f"{function_arn(ev.region, ev.account_id, ev.function_name)}:{qualifier}"
        # 1. resolve
        try:
            cfg = await self._router.resolve(
                ev.account_id, ev.region, ev.function_name, ev.qualifier
            )
        except ResourceNotFound:
            log.warning("async event %s dropped: %s no longer exists", ev.request_id, qarn)
            self.stats.dropped += 1
            await self._db.run(lambda db: _table.delete(db, ev.id))
            self._pending -= 1
            return
        # 2. age
        if time.time() - ev.received > conf.age:
            await self._finish(ev, cfg, conf, qarn, Outcome("EventAgeExceeded"), ev.deliveries - 1)
            return
        # 3. invoke
        inv = Invocation(
            request_id=ev.request_id,
            payload=ev.payload,
            invoked_arn=f"{cfg.arn}:{ev.qualifier}" if ev.qualifier else cfg.arn,
            trace_id=ev.trace_id,
        )
        try:
            result = await self._router.invoke(cfg, inv)
        except TooManyRequests:
            # 4. throttled: wait, not an attempt
            self.stats.throttled += 1
            n = self._throttles[ev.id] = self._throttles.get(ev.id, 0) + 1
            delay = min(self._settings.throttle_base * 2 ** (n - 1), self._settings.throttle_max)
            delay *= random.uniform(0.5, 1.0)
            if time.time() + delay - ev.received > conf.age:
                self._throttles.pop(ev.id, None)
                await self._finish(
                    ev, cfg, conf, qarn, Outcome("EventAgeExceeded"), ev.deliveries - 1
                )
            else:
                at = time.time() + delay
                await self._db.run(
                    lambda db: _table.release(db, ev.id, at, failed=False, invoked=False)
                )
            return
        except AwsError as exc:
            outcome = Outcome(
                "RetriesExhausted",
                status_code=exc.status,
                executed_version=cfg.version,
                response=json.dumps({"errorType": exc.code, "errorMessage": exc.message}).encode(),
                error_message=exc.message,
            )
        else:
            if not result.function_error:
                self._throttles.pop(ev.id, None)
                ok = Outcome(
                    "Success",
                    status_code=200,
                    executed_version=result.executed_version,
                    response=result.payload,
                )
                await self._finish(ev, cfg, conf, qarn, ok, ev.deliveries)
                return
            outcome = Outcome(
                "RetriesExhausted",
                status_code=200,
                executed_version=result.executed_version,
                function_error=result.function_error,
                response=result.payload,
                error_message=_error_message(result.payload),
            )
        # 5. function error: retry or give up
        self._throttles.pop(ev.id, None)
        failures = ev.failures + 1
        if failures > conf.retries:
            await self._finish(ev, cfg, conf, qarn, outcome, ev.deliveries)
            return
        delays = self._settings.retry_delays
        at = time.time() + delays[min(failures - 1, len(delays) - 1)]
        if at - ev.received > conf.age:
            outcome.condition = "EventAgeExceeded"
            await self._finish(ev, cfg, conf, qarn, outcome, ev.deliveries)
            return
        self.stats.retries += 1
        await self._db.run(lambda db: _table.release(db, ev.id, at, failed=True, invoked=True))

    async def _finish(
        self,
        ev: EventRow,
        cfg: FunctionConfig,
        conf: EventInvokeConfig,
        qarn: str,
        outcome: Outcome,
        invoke_count: int,
    ) -> None:
        """6. Delete the event and deliver its record / DLQ message in one transaction."""
        success = outcome.condition == "Success"
        target = conf.on_success if success else conf.on_failure
        body = record(ev, qarn, outcome, invoke_count) if target else b""
        dlq = "" if success else cfg.dead_letter_target
        external = target.startswith(EXTERNAL_PREFIXES)
        if external:
            # SNS / EventBridge live outside this database: deliver first (each commits
            # durably on its own), then delete the event. A crash in between delivers the
            # record again (at least once, as for every other destination).
            if self.external is None:
                log.warning("async invoke: no service for destination %s", target)
            else:
                try:
                    await self.external(target, body, qarn, success)
                except Exception as exc:
                    log.warning("async invoke: delivery to %s failed: %s", target, exc)

        def op(db: sqlite3.Connection) -> list[QueueInfo] | None:
            if not _table.delete(db, ev.id):
                return None
            touched: list[QueueInfo] = []
            if target and not external:
                self._deliver.to_target(db, target, body, touched)
            if dlq:
                self._deliver.to_dlq(db, dlq, ev, outcome, touched)
            return touched

        touched = await self._db.run(op)
        if touched is None:
            return
        self._pending -= 1
        if success:
            self.stats.succeeded += 1
        elif outcome.condition == "EventAgeExceeded":
            self.stats.expired += 1
        else:
            self.stats.exhausted += 1
        attempts = ev.failures + (1 if outcome.status_code is not None else 0)
        if invoke_count > attempts:
            self.stats.duplicates += invoke_count - attempts
        for q in touched:
            self._queues.notify(q)
        if target and ":lambda:" in target:
            self._pending += 1
            self._wake.set()


def _claim(db: sqlite3.Connection, *, now: float, limit: int) -> list[EventRow]:
    return _table.claim(db, now, limit)


def _error_message(payload: bytes) -> str:
    try:
        doc = json.loads(payload)
    except (ValueError, UnicodeDecodeError):
        return payload.decode(errors="replace")
    if isinstance(doc, dict):
        return str(doc.get("errorMessage", ""))
    return ""
