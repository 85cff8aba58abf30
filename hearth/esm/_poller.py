"""Pollers of one event source mapping: long-poll the queue, batch, invoke, delete.

Each *lane* is one task with at most one invocation in flight, so the number of lanes is
the mapping's concurrency. Scaling: a lane that takes a full batch starts another lane
(up to ``Mapping.pollers``, i.e. ScalingConfig.MaximumConcurrency); a lane that finds
the queue empty stops unless it is the last one. So lanes follow the backlog up and down.

One batch (steps of :meth:`MappingPoller._batch`):

1. Receive up to ``BatchSize`` messages, 10 per receive, until the batch is full, the
   batching window has passed (counted from the first receive) or ~5 MB of bodies are
   held (an invoke payload is at most 6 MB).
2. Drop (delete) the messages no ``FilterCriteria`` pattern matches; invoke the function
   synchronously with the SQS event (``Records[]``).
3. Success → delete the batch. With ``ReportBatchItemFailures``, delete all but the
   ``batchItemFailures`` (an answer that names an unknown or empty id fails the batch).
   Function error or throttle → delete nothing: the messages become visible again after
   the queue's visibility timeout, and past ``maxReceiveCount`` the queue moves them to
   its dead-letter queue.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
import uuid
from typing import Any

from hearth.errors import AwsError, TooManyRequests
from hearth.esm._filter import matches_any, parse_filters
from hearth.esm._model import Mapping
from hearth.invoke.router import Router
from hearth.queues import Message, QueueEngine, system_attributes
from hearth.worker.invocation import Invocation

log = logging.getLogger(__name__)

MAX_BATCH_BYTES = 5 * 1024 * 1024
POLL_WAIT = 2.0  # seconds a lane long-polls before checking whether to stop


class MappingPoller:
    def __init__(self, mapping: Mapping, queues: QueueEngine, router: Router) -> None:
        self.mapping = mapping
        self._queues = queues
        self._router = router
        self._lanes: set[asyncio.Task[None]] = set()
        self._stopping = False
        self.invocations = 0
        self.deleted = 0
        self.failed_batches = 0
        self.peak_lanes = 0
        self.filtered = 0
        self._patterns = parse_filters({"Filters": [{"Pattern": p} for p in mapping.filters]})

    def start(self) -> None:
        self._stopping = False
        if not self._lanes:
            self._spawn()

    def _spawn(self) -> None:
        if self._stopping or len(self._lanes) >= self.mapping.pollers:
            return
        task = asyncio.create_task(self._lane(), name=f"esm-{self.mapping.uuid}")
        self._lanes.add(task)
        self.peak_lanes = max(self.peak_lanes, len(self._lanes))
        task.add_done_callback(self._lanes.discard)

    async def stop(self) -> None:
        self._stopping = True
        lanes = list(self._lanes)
        for t in lanes:
            t.cancel()
        for t in lanes:
            with contextlib.suppress(asyncio.CancelledError):
                await t

    def statistics(self) -> dict[str, int]:
        return {
            "lanes": len(self._lanes),
            "peak_lanes": self.peak_lanes,
            "invocations": self.invocations,
            "deleted": self.deleted,
            "failed_batches": self.failed_batches,
            "filtered": self.filtered,
        }

    async def _lane(self) -> None:
        backoff = 0.0
        while not self._stopping:
            try:
                full, empty, throttled = await self._batch()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("event source mapping %s: batch failed", self.mapping.uuid)
                full, empty, throttled = False, False, True
            if throttled:
                backoff = min(max(backoff * 2, 0.5), 10.0)
                await asyncio.sleep(backoff)
                continue
            backoff = 0.0
            if full:
                self._spawn()
            elif empty and len(self._lanes) > 1:
                return

    async def _batch(self) -> tuple[bool, bool, bool]:
        """Run one batch; return (batch was full, queue was empty, throttled or failing)."""
        m = self.mapping
        q = self._queues.by_arn(m.event_source_arn)
        if q is None:
            await asyncio.sleep(POLL_WAIT)
            return False, True, False
        msgs: list[Message] = []
        size = 0
        started = time.monotonic()
        while len(msgs) < m.batch_size and size < MAX_BATCH_BYTES:
            if not msgs:
                wait = POLL_WAIT
            else:
                wait = m.window - (time.monotonic() - started)
                if wait <= 0:
                    break
            got = await self._queues.receive(q, min(10, m.batch_size - len(msgs)), min(wait, 20))
            if not got and not msgs:
                return False, True, False
            if not msgs:
                started = time.monotonic()
            msgs.extend(got)
            size += sum(len(x.body) for x in got)
            if m.window == 0 and len(got) < 10:
                break
        full = len(msgs) >= m.batch_size
        records = [self._record(x) for x in msgs]
        if self._patterns:
            # Messages no filter matches are deleted without an invocation (as Lambda does).
            passed = [matches_any(self._patterns, r) for r in records]
            dropped = [x for x, k in zip(msgs, passed, strict=True) if not k]
            if dropped:
                receipts = [self._queues.check_receipt(q, x.receipt_handle) for x in dropped]
                self.filtered += await self._queues.delete(q, receipts)
            msgs = [x for x, k in zip(msgs, passed, strict=True) if k]
            records = [r for r, k in zip(records, passed, strict=True) if k]
            if not msgs:
                return full, False, False
        try:
            cfg = await self._router.resolve(m.account_id, m.region, m.function_name, m.qualifier)
            payload = json.dumps({"Records": records}).encode()
            inv = Invocation(
                request_id=str(uuid.uuid4()), payload=payload, invoked_arn=m.function_arn
            )
            self.invocations += 1
            result = await self._router.invoke(cfg, inv)
        except TooManyRequests:
            return full, False, True
        except AwsError as exc:
            log.warning("event source mapping %s: invoke failed: %s", m.uuid, exc.message)
            self.failed_batches += 1
            return full, False, True
        if result.function_error:
            self.failed_batches += 1
            return full, False, False
        keep = self._failures(result.payload, msgs) if m.report_failures else set()
        if keep is None:
            self.failed_batches += 1
            return full, False, False
        done = [x for x in msgs if x.message_id not in keep]
        if done:
            receipts = [self._queues.check_receipt(q, x.receipt_handle) for x in done]
            self.deleted += await self._queues.delete(q, receipts)
        return full, False, False

    def _record(self, msg: Message) -> dict[str, Any]:
        m = self.mapping
        attrs = system_attributes(msg, m.account_id)
        attrs.pop("DeadLetterQueueSourceArn", None)
        rec: dict[str, Any] = {
            "messageId": msg.message_id,
            "receiptHandle": msg.receipt_handle,
            "body": msg.body,
            "attributes": attrs,
            "messageAttributes": {
                name: _lambda_attr(a) for name, a in json.loads(msg.attributes_json).items()
            },
            "md5OfBody": msg.md5_body,
            "eventSource": "aws:sqs",
            "eventSourceARN": m.event_source_arn,
            "awsRegion": m.region,
        }
        if msg.md5_attributes:
            rec["md5OfMessageAttributes"] = msg.md5_attributes
        return rec

    @staticmethod
    def _failures(payload: bytes, msgs: list[Message]) -> set[str] | None:
        """Ids the function reported as failed; None if the answer fails the whole batch."""
        try:
            doc = json.loads(payload)
        except (ValueError, UnicodeDecodeError):
            return set()
        if not isinstance(doc, dict) or not doc.get("batchItemFailures"):
            return set()
        items = doc["batchItemFailures"]
        if not isinstance(items, list):
            return None
        ids = {x.message_id for x in msgs}
        out: set[str] = set()
        for item in items:
            ident = item.get("itemIdentifier") if isinstance(item, dict) else None
            if not isinstance(ident, str) or ident not in ids:
                return None
            out.add(ident)
        return out


def _lambda_attr(wire: dict[str, str]) -> dict[str, Any]:
    """SQS API attribute form → the camel-case form of Lambda's SQS event."""
    out: dict[str, Any] = {"stringListValues": [], "binaryListValues": []}
    if "StringValue" in wire:
        out["stringValue"] = wire["StringValue"]
    if "BinaryValue" in wire:
        out["binaryValue"] = wire["BinaryValue"]
    out["dataType"] = wire["DataType"]
    return out
