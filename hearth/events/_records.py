"""Invocation records for destinations, and delivery to a queue, a function or a DLQ.

The record is the one AWS documents for asynchronous invocation destinations::

    {"version": "1.0", "timestamp": "2019-11-14T18:16:05.568Z",
     "requestContext": {"requestId", "functionArn", "condition", "approximateInvokeCount"},
     "requestPayload": <the event>, "responseContext": {"statusCode", "executedVersion",
     "functionError"?}, "responsePayload": <what the function returned or raised>}

Delivery runs on the queue database thread *inside the transaction that deletes the
event*, so an event is either still queued or delivered, never both or neither.
A destination that does not exist (or a full queue) is logged and counted, as Lambda
counts ``DestinationDeliveryFailures``; it does not keep the event queued forever.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from hearth.events._table import EventRow, insert
from hearth.queues import (
    NewMessage,
    QueueEngine,
    QueueInfo,
    attributes_to_json,
    md5_of_attributes,
    md5_of_body,
)
from hearth.queues._errors import OverLimit
from hearth.queues._model import MessageAttribute

log = logging.getLogger(__name__)

MAX_RECORD = 1024 * 1024
"""Largest record delivered (the queue message limit)."""


@dataclass(slots=True)
class Outcome:
    """What the last attempt produced (None fields when the function never ran)."""

    condition: str  # Success | RetriesExhausted | EventAgeExceeded
    status_code: int | None = None
    executed_version: str | None = None
    function_error: str | None = None
    response: bytes | None = None
    error_message: str = ""


@dataclass(slots=True)
class DeliveryStats:
    delivered: int = 0
    failed: int = 0
    queues_touched: list[QueueInfo] = field(default_factory=list)


def _json_or_text(data: bytes) -> Any:
    try:
        return json.loads(data)
    except (ValueError, UnicodeDecodeError):
        return data.decode(errors="replace")


def record(ev: EventRow, qualified_arn: str, outcome: Outcome, invoke_count: int) -> bytes:
    now = time.time()
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{int(now * 1000) % 1000:03d}Z"
    doc: dict[str, Any] = {
        "version": "1.0",
        "timestamp": stamp,
        "requestContext": {
            "requestId": ev.request_id,
            "functionArn": qualified_arn,
            "condition": outcome.condition,
            "approximateInvokeCount": invoke_count,
        },
        "requestPayload": _json_or_text(ev.payload),
    }
    if outcome.status_code is not None:
        ctx: dict[str, Any] = {
            "statusCode": outcome.status_code,
            "executedVersion": outcome.executed_version,
        }
        if outcome.function_error:
            ctx["functionError"] = outcome.function_error
        doc["responseContext"] = ctx
        if outcome.response is not None:
            doc["responsePayload"] = _json_or_text(outcome.response)
    body = json.dumps(doc, separators=(",", ":")).encode()
    # A record must fit a queue message: drop the payloads (response first), as Lambda
    # drops them for destinations with a smaller limit than the record.
    for key in ("responsePayload", "requestPayload"):
        if len(body) <= MAX_RECORD or key not in doc:
            continue
        del doc[key]
        body = json.dumps(doc, separators=(",", ":")).encode()
    return body


class Deliverer:
    def __init__(self, queues: QueueEngine) -> None:
        self._queues = queues
        self.stats = DeliveryStats()

    def to_target(
        self, db: sqlite3.Connection, arn: str, body: bytes, touched: list[QueueInfo]
    ) -> None:
        """Deliver ``body`` to a queue or (as a new async event) to a function."""
        if ":sqs:" in arn:
            q = self._queues.by_arn(arn)
            if q is None or q.fifo:  # Lambda destinations are standard queues
                self._failed(arn, "queue does not exist or is a FIFO queue")
                return
            text = body.decode()
            try:
                self._queues.insert_sync(db, q, [NewMessage(body=text, md5_body=md5_of_body(text))])
            except OverLimit as exc:
                self._failed(arn, exc.message)
                return
            touched.append(q)
        elif ":lambda:" in arn:
            parts = arn.split(":")
            now = time.time()
            insert(
                db,
                EventRow(
                    0,
                    str(uuid.uuid4()),
                    parts[4],
                    parts[3],
                    parts[6],
                    parts[7] if len(parts) > 7 else None,
                    body,
                    "",
                    now,
                    0,
                    0,
                ),
                now,
            )
        else:
            self._failed(arn, "unsupported destination")
            return
        self.stats.delivered += 1

    def to_dlq(
        self,
        db: sqlite3.Connection,
        arn: str,
        ev: EventRow,
        outcome: Outcome,
        touched: list[QueueInfo],
    ) -> None:
        """The original event, with RequestID/ErrorCode/ErrorMessage attributes (as Lambda)."""
        q = self._queues.by_arn(arn)
        if q is None or q.fifo:  # a Lambda dead-letter queue is a standard queue
            self._failed(arn, "dead-letter queue does not exist or is a FIFO queue")
            return
        attrs = [
            MessageAttribute("RequestID", "String", ev.request_id, None),
            MessageAttribute("ErrorCode", "Number", str(outcome.status_code or 200), None),
        ]
        if outcome.error_message:
            attrs.append(
                MessageAttribute("ErrorMessage", "String", outcome.error_message[:1024], None)
            )
        text = ev.payload.decode(errors="replace")
        msg = NewMessage(
            body=text,
            md5_body=md5_of_body(text),
            attributes_json=attributes_to_json(attrs),
            md5_attributes=md5_of_attributes(attrs),
        )
        try:
            self._queues.insert_sync(db, q, [msg])
        except OverLimit as exc:
            self._failed(arn, exc.message)
            return
        touched.append(q)
        self.stats.delivered += 1

    def _failed(self, arn: str, why: str) -> None:
        self.stats.failed += 1
        log.warning("async invoke: delivery to %s failed: %s", arn, why)
