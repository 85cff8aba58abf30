"""Message move tasks (dead-letter queue redrive): Start/List/CancelMessageMoveTask.

A task moves the messages of a dead-letter queue (the *source*: a queue some other
queue's RedrivePolicy names) to ``DestinationArn``, or, without one, each back to the
queue it was dead-lettered from (its ``DeadLetterQueueSourceArn``). It moves what was
visible when it started (``ApproximateNumberOfMessagesToMove``), 10 messages per
database transaction, at most ``MaxNumberOfMessagesPerSecond`` when given. A moved
message is new in its destination: visible now, receive count 0.

One task runs per source at a time; SQS lists the 10 most recent per source, and so does
this registry. Task history lives in memory: a restart ends running tasks (the messages
not yet moved stay in the dead-letter queue, so a new task picks them up).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import functools
import json
import logging
import sqlite3
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from hearth.queues._engine import QueueEngine, QueueInfo
from hearth.queues._errors import InvalidParameterValue, MissingParameter, ResourceNotFound

log = logging.getLogger(__name__)

HISTORY = 10
BATCH = 10


@dataclass(slots=True)
class MoveTask:
    task_id: str
    source_arn: str
    destination_arn: str | None
    rate: int | None
    to_move: int
    started_ms: int
    status: str = "RUNNING"
    moved: int = 0
    failure: str | None = None
    runner: asyncio.Task[None] | None = field(default=None, repr=False)
    stop: asyncio.Event = field(default_factory=asyncio.Event, repr=False)

    @property
    def handle(self) -> str:
        raw = json.dumps({"taskId": self.task_id, "sourceArn": self.source_arn})
        return base64.b64encode(raw.encode()).decode()

    def wire(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.status == "RUNNING":
            out["TaskHandle"] = self.handle
        out["Status"] = self.status
        out["SourceArn"] = self.source_arn
        if self.destination_arn:
            out["DestinationArn"] = self.destination_arn
        if self.rate is not None:
            out["MaxNumberOfMessagesPerSecond"] = self.rate
        out["ApproximateNumberOfMessagesMoved"] = self.moved
        out["ApproximateNumberOfMessagesToMove"] = self.to_move
        if self.failure:
            out["FailureReason"] = self.failure
        out["StartedTimestamp"] = self.started_ms
        return out


class _Missing(Exception):
    """A destination queue vanished while the task ran."""


class MoveTasks:
    def __init__(self, engine: QueueEngine) -> None:
        self.engine = engine
        self._tasks: dict[str, list[MoveTask]] = {}  # source ARN → oldest first

    async def aclose(self) -> None:
        runners = [t.runner for ts in self._tasks.values() for t in ts if t.runner]
        for r in runners:
            r.cancel()
        for r in runners:
            with contextlib.suppress(asyncio.CancelledError):
                await r

    # -- API ----------------------------------------------------------------------------
    def _source(self, account_id: str, arn: Any) -> QueueInfo:
        if not isinstance(arn, str) or arn == "":
            raise MissingParameter("The request must contain the parameter SourceArn.")
        q = self.engine.by_arn(arn)
        if q is None or q.account_id != account_id:
            raise ResourceNotFound(
                "The resource that you specified for the SourceArn parameter doesn't exist."
            )
        return q

    async def start(self, account_id: str, body: dict[str, Any]) -> dict[str, Any]:
        src = self._source(account_id, body.get("SourceArn"))
        if not any(
            (t := self.engine.redrive_target(q)) is not None and t[0].id == src.id
            for q in self.engine.list_queues(account_id, "")
        ):
            raise InvalidParameterValue("Source queue must be configured as a Dead Letter Queue.")
        dest_arn = body.get("DestinationArn")
        if dest_arn is not None:
            dest = self.engine.by_arn(str(dest_arn))
            if dest is None or dest.account_id != account_id:
                raise ResourceNotFound(
                    "The resource that you specified for the DestinationArn parameter doesn't"
                    " exist."
                )
        rate = body.get("MaxNumberOfMessagesPerSecond")
        if rate is not None and (
            isinstance(rate, bool) or not isinstance(rate, int) or not 1 <= rate <= 500
        ):
            raise InvalidParameterValue(
                "Value for parameter MaxNumberOfMessagesPerSecond is invalid. Reason: You must"
                " enter a number that's between 1 and 500."
            )
        history = self._tasks.setdefault(src.arn, [])
        if any(t.status == "RUNNING" for t in history):
            raise InvalidParameterValue(
                "There is already a task running. Only one active task is allowed for a source"
                " queue arn at a given time."
            )
        visible, _, _ = await self.engine.counts(src)
        task = MoveTask(
            str(uuid.uuid4()),
            src.arn,
            str(dest_arn) if dest_arn is not None else None,
            rate,
            visible,
            int(time.time() * 1000),
        )
        history.append(task)
        del history[:-HISTORY]
        task.runner = asyncio.create_task(self._run(task, src), name=f"sqs-move-{task.task_id}")
        return {"TaskHandle": task.handle}

    async def list_tasks(self, account_id: str, body: dict[str, Any]) -> dict[str, Any]:
        src = self._source(account_id, body.get("SourceArn"))
        limit = body.get("MaxResults", 1)
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= 10:
            raise InvalidParameterValue(
                "Value for parameter MaxResults is invalid. Reason: You must enter a number"
                " that's between 1 and 10."
            )
        recent = list(reversed(self._tasks.get(src.arn, [])))[:limit]
        return {"Results": [t.wire() for t in recent]}

    async def cancel(self, account_id: str, body: dict[str, Any]) -> dict[str, Any]:
        handle = body.get("TaskHandle")
        if not isinstance(handle, str) or handle == "":
            raise MissingParameter("The request must contain the parameter TaskHandle.")
        try:
            doc = json.loads(base64.b64decode(handle, validate=True))
            task_id, source = str(doc["taskId"]), str(doc["sourceArn"])
        except (binascii.Error, ValueError, TypeError, KeyError):
            raise InvalidParameterValue("Value for parameter TaskHandle is invalid.") from None
        src = self._source(account_id, source)
        task = next((t for t in self._tasks.get(src.arn, []) if t.task_id == task_id), None)
        if task is None:
            raise ResourceNotFound("Task does not exist.")
        if task.status != "RUNNING":
            raise InvalidParameterValue(
                f"Value for parameter TaskHandle is invalid. Reason: The task is {task.status}."
            )
        # Stop between batches (never inside one), so the moved count stays exact.
        task.status = "CANCELLING"
        task.stop.set()
        if task.runner is not None:
            await task.runner
        task.status = "CANCELLED"
        return {"ApproximateNumberOfMessagesMoved": task.moved}

    # -- the move -------------------------------------------------------------------------
    async def _run(self, task: MoveTask, src: QueueInfo) -> None:
        started = time.monotonic()
        try:
            while task.moved < task.to_move:
                n = min(BATCH, task.to_move - task.moved)
                if task.rate is not None:
                    n = min(n, task.rate)
                    due = started + task.moved / task.rate
                    if due > time.monotonic():
                        with contextlib.suppress(TimeoutError):
                            await asyncio.wait_for(task.stop.wait(), due - time.monotonic())
                if task.stop.is_set():
                    return
                step = functools.partial(self._batch, task=task, src=src, n=n)
                moved, touched = await self.engine.run(step)
                for q in touched:
                    self.engine.notify(q)
                if moved == 0:
                    break
                task.moved += moved
            if not task.stop.is_set():
                task.status = "COMPLETED"
        except _Missing:
            task.status, task.failure = "FAILED", "AWS.SimpleQueueService.NonExistentQueue"
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a failed task is reported, never crashes the server
            log.exception("message move task %s failed", task.task_id)
            task.status, task.failure = "FAILED", type(exc).__name__

    def _batch(
        self, db: sqlite3.Connection, task: MoveTask, src: QueueInfo, n: int
    ) -> tuple[int, list[QueueInfo]]:
        """Move up to ``n`` visible messages in one transaction (database thread)."""
        now = time.time()
        rows = db.execute(
            "SELECT seq, source_arn FROM sqs_messages WHERE queue_id=? AND visible_at<=?"
            " ORDER BY seq LIMIT ?",
            (src.id, now, n),
        ).fetchall()
        moves: list[tuple[int, QueueInfo]] = []
        for seq, origin in rows:  # resolve all first: a failure changes nothing
            arn = task.destination_arn or origin
            dest = self.engine.by_arn(arn) if arn else None
            if dest is None:
                raise _Missing(arn)
            moves.append((seq, dest))
        touched: dict[int, QueueInfo] = {}
        for seq, dest in moves:
            self.engine.transfer_sync(db, seq, src, dest, now, None)
            touched[dest.id] = dest
        return len(rows), list(touched.values())
