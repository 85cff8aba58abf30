"""Delivery of events to rule targets, and the scheduler of scheduled rules.

A target is a Lambda function (an asynchronous invocation through the durable event
queue, so retries, destinations and dead-letter queues apply as for any ``Event``
invoke) or an SQS queue of this server (one message). The payload is the event, or the
target's ``Input`` (constant JSON), ``InputPath`` (a ``$.a.b`` path into the event) or
``InputTransformer`` (``InputPathsMap`` values substituted into ``InputTemplate`` at
``<name>``), as EventBridge builds it. A target in another account, or one that no
longer exists, is skipped and logged (EventBridge would count a failed invocation).

The scheduler wakes once a second, fires every enabled scheduled rule that is due and
computes its next time; it holds no state that a restart needs.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import time
import uuid
from datetime import UTC, datetime
from typing import Any

from hearth.errors import AwsError
from hearth.eventbridge._rules import Rule, RuleStore
from hearth.eventbridge._schedule import InvalidSchedule, Schedule, parse, utcnow
from hearth.ids import new_request_id
from hearth.invoke.router import Router
from hearth.queues import NewMessage, QueueEngine, md5_of_body
from hearth.worker.invocation import Invocation

log = logging.getLogger(__name__)
TICK = 1.0


def _json(doc: Any) -> str:
    """Compact JSON, as EventBridge writes the events it delivers."""
    return json.dumps(doc, separators=(",", ":"))


def event_time(t: datetime) -> str:
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def scheduled_event(rule: Rule, at: datetime) -> dict[str, Any]:
    """The event EventBridge sends for a scheduled rule."""
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": rule.account_id,
        "time": event_time(at),
        "region": rule.region,
        "resources": [rule.arn],
        "detail": {},
    }


def _path(doc: Any, path: str) -> Any:
    """A ``$``, ``$.a`` or ``$.a.b`` JSONPath into ``doc`` (None when absent)."""
    if path == "$":
        return doc
    for part in path.removeprefix("$.").split("."):
        doc = doc.get(part) if isinstance(doc, dict) else None
    return doc


def target_payload(target: dict[str, Any], event: dict[str, Any]) -> str:
    if "Input" in target:
        return str(target["Input"])
    if "InputPath" in target:
        return _json(_path(event, str(target["InputPath"])))
    transformer = target.get("InputTransformer")
    if isinstance(transformer, dict):
        text = str(transformer.get("InputTemplate", ""))
        for name, path in (transformer.get("InputPathsMap") or {}).items():
            value = _path(event, str(path))
            # Inside quotes a string goes in bare; elsewhere as JSON.
            text = text.replace(f'"<{name}>"', _json(value))
            text = text.replace(f"<{name}>", value if isinstance(value, str) else _json(value))
        return text
    return _json(event)


class Deliverer:
    def __init__(self, router: Router, queues: QueueEngine) -> None:
        self._router = router
        self._queues = queues
        self.delivered = 0
        self.failed = 0

    async def deliver(self, rule: Rule, event: dict[str, Any]) -> None:
        for target in list(rule.targets.values()):
            try:
                await self._one(rule, target, target_payload(target, event))
                self.delivered += 1
            except (AwsError, ValueError) as exc:
                self.failed += 1
                log.warning("eventbridge: rule %s target %s: %s", rule.arn, target["Id"], exc)

    async def _one(self, rule: Rule, target: dict[str, Any], payload: str) -> None:
        arn = str(target["Arn"])
        parts = arn.split(":")
        if len(parts) < 6 or parts[4] != rule.account_id:
            raise ValueError(f"target {arn} is not a resource of account {rule.account_id}")
        if parts[2] == "lambda" and parts[5] == "function" and len(parts) in (7, 8):
            qualifier = parts[7] if len(parts) == 8 else None
            cfg = await self._router.resolve(rule.account_id, parts[3], parts[6], qualifier)
            rand = os.urandom(20).hex()
            inv = Invocation(
                request_id=new_request_id(),
                payload=payload.encode(),
                invoked_arn=f"{cfg.arn}:{qualifier}" if qualifier else cfg.arn,
                trace_id=f"Root=1-{int(time.time()):08x}-{rand[:24]};Parent={rand[24:]};Sampled=0",
            )
            await self._router.events.submit(cfg, inv)
            return
        if parts[2] == "sqs":
            q = self._queues.by_arn(arn)
            if q is None:
                raise ValueError(f"queue {arn} does not exist")
            group = (target.get("SqsParameters") or {}).get("MessageGroupId")
            if q.fifo and not group:
                raise ValueError(f"FIFO queue {arn} needs SqsParameters.MessageGroupId")
            msg = NewMessage(
                body=payload,
                md5_body=md5_of_body(payload),
                group_id=str(group) if q.fifo else None,
                dedup_id=str(uuid.uuid4()) if q.fifo else None,
            )
            await self._queues.send(q, [msg])
            return
        raise ValueError(f"target {arn} is neither a Lambda function nor an SQS queue")


class Scheduler:
    def __init__(self, rules: RuleStore, deliverer: Deliverer) -> None:
        self._rules = rules
        self._deliverer = deliverer
        self._next: dict[tuple[str, str, str], tuple[str, float, datetime | None]] = {}
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="eventbridge")

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(TICK)
            try:
                await self.tick(utcnow())
            except Exception:
                log.exception("eventbridge scheduler")

    async def tick(self, now: datetime) -> None:
        live = set()
        for rule in self._rules.all():
            if not rule.schedule or rule.state != "ENABLED":
                continue
            key = (rule.account_id, rule.region, rule.name)
            live.add(key)
            expr, created, due = self._next.get(key, ("", 0.0, None))
            if expr != rule.schedule or created != rule.created:
                due = self._due(rule, now)
                self._next[key] = (rule.schedule, rule.created, due)
            if due is None or due > now:
                continue
            self._next[key] = (rule.schedule, rule.created, self._due(rule, now))
            await self._deliverer.deliver(rule, scheduled_event(rule, due))
        for key in set(self._next) - live:
            del self._next[key]

    @staticmethod
    def _due(rule: Rule, now: datetime) -> datetime | None:
        try:
            sched: Schedule = parse(rule.schedule)
        except InvalidSchedule:
            return None
        return sched.next_after(datetime.fromtimestamp(rule.created, UTC), now)
