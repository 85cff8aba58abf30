"""Queue engine: durable SQS-style queues in the :class:`QueueDb` file.

Delivery model (standard queues): at least once, roughly in send order. A message is
*visible* when ``visible_at <= now``. Receiving it makes it invisible for the visibility
timeout and gives it a fresh receipt token; deleting or changing its visibility needs
the latest token. A message received ``maxReceiveCount`` times is moved to the queue's
dead-letter queue (the RedrivePolicy) on its next receive. Messages older than the
retention period are dropped when the queue is next read.

Bounds: each queue holds at most ``max_messages`` messages; a send past it fails with
``OverLimit`` (403), so a producer sees back-pressure instead of a store that grows
without end. Message counts are kept per queue on the database thread.

FIFO queues (``.fifo``): every message has a MessageGroupId; within a group, messages are
delivered in send order and none is delivered while an earlier one of its group is in
flight. A MessageDeduplicationId (or the body's SHA-256 with ContentBasedDeduplication)
seen in the last 5 minutes makes a send return the first message's id without enqueuing.

Long polling: a receiver with nothing to take waits on the queue's signal (set by every
send) or at most one second (delayed and in-flight messages become visible by time).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sqlite3
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from hearth.queues._db import QueueDb
from hearth.queues._errors import (
    InvalidParameterValue,
    MessageNotInflight,
    OverLimit,
    PurgeQueueInProgress,
    QueueDeletedRecently,
    QueueNameExists,
    ReceiptHandleIsInvalid,
    queue_does_not_exist,
)
from hearth.queues._model import (
    FIFO_DEFAULTS,
    INT_ATTRIBUTES,
    make_receipt,
    parse_queue_arn,
    parse_receipt,
    queue_arn,
)

T = TypeVar("T")

REUSE_DELAY = 60.0
"""Seconds before a deleted queue's name can be used again (as SQS)."""

DEDUP_WINDOW = 300.0
"""Seconds a FIFO deduplication id is remembered (as SQS)."""

SCHEMA = """
CREATE TABLE IF NOT EXISTS sqs_queues (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    account_id  TEXT NOT NULL,
    region      TEXT NOT NULL,
    name        TEXT NOT NULL,
    created     REAL NOT NULL,
    modified    REAL NOT NULL,
    attributes  TEXT NOT NULL,
    tags        TEXT NOT NULL DEFAULT '{}',
    UNIQUE (account_id, name)
);
CREATE TABLE IF NOT EXISTS sqs_messages (
    seq            INTEGER PRIMARY KEY AUTOINCREMENT,
    queue_id       INTEGER NOT NULL,
    message_id     TEXT NOT NULL,
    body           TEXT NOT NULL,
    md5_body       TEXT NOT NULL,
    attributes     TEXT NOT NULL,
    md5_attributes TEXT NOT NULL,
    sent           REAL NOT NULL,
    visible_at     REAL NOT NULL,
    receive_count  INTEGER NOT NULL DEFAULT 0,
    first_receive  REAL,
    receipt        TEXT,
    trace_header   TEXT,
    source_arn     TEXT,
    group_id       TEXT,
    dedup_id       TEXT
);
CREATE INDEX IF NOT EXISTS sqs_messages_due ON sqs_messages (queue_id, visible_at);
CREATE TABLE IF NOT EXISTS sqs_dedup (
    queue_id    INTEGER NOT NULL,
    dedup_key   TEXT NOT NULL,
    message_id  TEXT NOT NULL,
    seq         INTEGER NOT NULL,
    expires     REAL NOT NULL,
    PRIMARY KEY (queue_id, dedup_key)
);
"""


@dataclass(slots=True)
class QueueInfo:
    id: int
    account_id: str
    region: str
    name: str
    created: float
    modified: float
    attributes: dict[str, str]
    tags: dict[str, str] = field(default_factory=dict)
    last_purge: float = 0.0

    @property
    def arn(self) -> str:
        return queue_arn(self.region, self.account_id, self.name)

    @property
    def fifo(self) -> bool:
        return self.attributes.get("FifoQueue") == "true"

    def int_attr(self, name: str) -> int:
        raw = self.attributes.get(name)
        return int(raw) if raw else INT_ATTRIBUTES[name][2]

    def redrive(self) -> tuple[str, int] | None:
        raw = self.attributes.get("RedrivePolicy")
        if not raw:
            return None
        doc = json.loads(raw)
        return str(doc["deadLetterTargetArn"]), int(doc["maxReceiveCount"])


@dataclass(slots=True)
class Message:
    seq: int
    message_id: str
    body: str
    md5_body: str
    attributes_json: str
    md5_attributes: str
    sent: float
    receive_count: int
    first_receive: float
    receipt_handle: str
    trace_header: str | None
    source_arn: str | None
    group_id: str | None = None
    dedup_id: str | None = None

    @property
    def sequence_number(self) -> str | None:
        return f"{self.seq:020d}" if self.group_id is not None else None


@dataclass(slots=True)
class NewMessage:
    body: str
    md5_body: str
    attributes_json: str = "{}"
    md5_attributes: str = ""
    delay: int | None = None
    trace_header: str | None = None
    message_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    group_id: str | None = None
    dedup_id: str | None = None
    sequence_number: str | None = None
    """Set by the engine for FIFO queues (the original's on a deduplicated send)."""


class QueueEngine:
    def __init__(self, db: QueueDb, *, max_messages: int = 200_000) -> None:
        self.db = db
        self.max_messages = max_messages
        self._queues: dict[tuple[str, str], QueueInfo] = {}
        self._counts: dict[int, int] = {}  # touched on the database thread only
        self._signals: dict[int, asyncio.Event] = {}
        self._last_expiry: dict[int, float] = {}
        self._deleted: dict[tuple[str, str], float] = {}  # name → deletion time, < 60 s old

    async def open(self) -> None:
        def load(db: sqlite3.Connection) -> list[QueueInfo]:
            have = {r[1] for r in db.execute("PRAGMA table_info(sqs_messages)")}
            for col in ("group_id", "dedup_id"):
                if col not in have:  # a database from before FIFO support
                    db.execute(f"ALTER TABLE sqs_messages ADD COLUMN {col} TEXT")
            rows = db.execute(
                "SELECT id, account_id, region, name, created, modified, attributes, tags"
                " FROM sqs_queues"
            ).fetchall()
            for qid, n in db.execute(
                "SELECT queue_id, COUNT(*) FROM sqs_messages GROUP BY queue_id"
            ).fetchall():
                self._counts[qid] = n
            return [
                QueueInfo(r[0], r[1], r[2], r[3], r[4], r[5], json.loads(r[6]), json.loads(r[7]))
                for r in rows
            ]

        for q in await self.db.run(load):
            self._queues[(q.account_id, q.name)] = q

    # -- queues -----------------------------------------------------------------------
    def get(self, account_id: str, name: str) -> QueueInfo:
        q = self._queues.get((account_id, name))
        if q is None:
            raise queue_does_not_exist()
        return q

    def by_arn(self, arn: str) -> QueueInfo | None:
        parsed = parse_queue_arn(arn)
        if parsed is None:
            return None
        q = self._queues.get((parsed[1], parsed[2]))
        return q if q is not None and q.region == parsed[0] else None

    def list_queues(self, account_id: str, prefix: str) -> list[QueueInfo]:
        return sorted(
            (q for (a, n), q in self._queues.items() if a == account_id and n.startswith(prefix)),
            key=lambda q: q.name,
        )

    async def create_queue(
        self, account_id: str, region: str, name: str, attrs: dict[str, str], tags: dict[str, str]
    ) -> QueueInfo:
        existing = self._queues.get((account_id, name))
        gone = self._deleted.get((account_id, name))
        if existing is None and gone is not None and time.monotonic() - gone < REUSE_DELAY:
            raise QueueDeletedRecently(
                "You must wait 60 seconds after deleting a queue before you can create another"
                " with the same name."
            )
        if existing is not None:
            for key, value in attrs.items():
                if existing.attributes.get(key, _default(key)) != value:
                    raise QueueNameExists(
                        "A queue already exists with the same name and a different value for"
                        f" attribute {key}"
                    )
            return existing
        now = time.time()

        def op(db: sqlite3.Connection) -> int:
            cur = db.execute(
                "INSERT INTO sqs_queues (account_id, region, name, created, modified,"
                " attributes, tags) VALUES (?,?,?,?,?,?,?)",
                (account_id, region, name, now, now, json.dumps(attrs), json.dumps(tags)),
            )
            return int(cur.lastrowid or 0)

        qid = await self.db.run(op)
        q = QueueInfo(qid, account_id, region, name, now, now, dict(attrs), dict(tags))
        self._queues[(account_id, name)] = q
        return q

    async def delete_queue(self, q: QueueInfo) -> None:
        def op(db: sqlite3.Connection) -> None:
            db.execute("DELETE FROM sqs_messages WHERE queue_id=?", (q.id,))
            db.execute("DELETE FROM sqs_queues WHERE id=?", (q.id,))
            self._counts.pop(q.id, None)

        await self.db.run(op)
        self._queues.pop((q.account_id, q.name), None)
        self._signal(q.id).set()
        now = time.monotonic()
        self._deleted = {k: t for k, t in self._deleted.items() if now - t < REUSE_DELAY}
        self._deleted[(q.account_id, q.name)] = now

    async def purge(self, q: QueueInfo) -> None:
        now = time.time()
        if now - q.last_purge < 60:
            raise PurgeQueueInProgress(
                f"Only one PurgeQueue operation on {q.name} is allowed every 60 seconds."
            )
        q.last_purge = now

        def op(db: sqlite3.Connection) -> None:
            db.execute("DELETE FROM sqs_messages WHERE queue_id=?", (q.id,))
            self._counts[q.id] = 0

        await self.db.run(op)

    async def set_attributes(self, q: QueueInfo, attrs: dict[str, str]) -> None:
        merged = dict(q.attributes)
        for key, value in attrs.items():
            if value == "" and key in ("RedrivePolicy", "Policy"):
                merged.pop(key, None)
            else:
                merged[key] = value
        now = time.time()

        def op(db: sqlite3.Connection) -> None:
            db.execute(
                "UPDATE sqs_queues SET attributes=?, modified=? WHERE id=?",
                (json.dumps(merged), now, q.id),
            )

        await self.db.run(op)
        q.attributes = merged
        q.modified = now

    async def set_tags(self, q: QueueInfo, tags: dict[str, str]) -> None:
        def op(db: sqlite3.Connection) -> None:
            db.execute("UPDATE sqs_queues SET tags=? WHERE id=?", (json.dumps(tags), q.id))

        await self.db.run(op)
        q.tags = dict(tags)

    async def counts(self, q: QueueInfo) -> tuple[int, int, int]:
        """(visible, in flight, delayed) message counts."""
        now = time.time()

        def op(db: sqlite3.Connection) -> tuple[int, int, int]:
            row = db.execute(
                "SELECT SUM(visible_at <= ?), SUM(visible_at > ? AND receipt IS NOT NULL),"
                " SUM(visible_at > ? AND receipt IS NULL) FROM sqs_messages WHERE queue_id=?",
                (now, now, now, q.id),
            ).fetchone()
            return int(row[0] or 0), int(row[1] or 0), int(row[2] or 0)

        return await self.db.run(op)

    # -- messages ---------------------------------------------------------------------
    def insert_sync(self, db: sqlite3.Connection, q: QueueInfo, msgs: list[NewMessage]) -> None:
        """Insert messages inside the caller's transaction (database thread only).

        Used by SendMessage and by features that deliver into a queue atomically with
        their own state change (async-invoke destinations, dead-letter queues).
        """
        count = self._counts.get(q.id, 0)
        if count + len(msgs) > self.max_messages:
            raise OverLimit(
                f"Queue {q.name} is full: it holds {count} messages and the limit of this"
                f" server is {self.max_messages}."
            )
        now = time.time()
        default_delay = q.int_attr("DelaySeconds")
        if q.fifo:
            self._insert_fifo(db, q, msgs, now + default_delay, now)
            return
        db.executemany(
            "INSERT INTO sqs_messages (queue_id, message_id, body, md5_body, attributes,"
            " md5_attributes, sent, visible_at, trace_header) VALUES (?,?,?,?,?,?,?,?,?)",
            [
                (
                    q.id,
                    m.message_id,
                    m.body,
                    m.md5_body,
                    m.attributes_json,
                    m.md5_attributes,
                    now,
                    now + (default_delay if m.delay is None else m.delay),
                    m.trace_header,
                )
                for m in msgs
            ],
        )
        self._counts[q.id] = count + len(msgs)

    def _insert_fifo(
        self,
        db: sqlite3.Connection,
        q: QueueInfo,
        msgs: list[NewMessage],
        visible: float,
        now: float,
    ) -> None:
        db.execute("DELETE FROM sqs_dedup WHERE queue_id=? AND expires<?", (q.id, now))
        per_group = q.attributes.get("DeduplicationScope") == "messageGroup"
        added = 0
        for m in msgs:
            key = f"{m.group_id}\x00{m.dedup_id}" if per_group else str(m.dedup_id)
            seen = db.execute(
                "SELECT message_id, seq FROM sqs_dedup WHERE queue_id=? AND dedup_key=?",
                (q.id, key),
            ).fetchone()
            if seen is not None:
                m.message_id, m.sequence_number = seen[0], f"{seen[1]:020d}"
                continue
            cur = db.execute(
                "INSERT INTO sqs_messages (queue_id, message_id, body, md5_body, attributes,"
                " md5_attributes, sent, visible_at, trace_header, group_id, dedup_id)"
                " VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                (
                    q.id,
                    m.message_id,
                    m.body,
                    m.md5_body,
                    m.attributes_json,
                    m.md5_attributes,
                    now,
                    visible,
                    m.trace_header,
                    m.group_id,
                    m.dedup_id,
                ),
            )
            seq = int(cur.lastrowid or 0)
            m.sequence_number = f"{seq:020d}"
            db.execute(
                "INSERT INTO sqs_dedup VALUES (?,?,?,?,?)",
                (q.id, key, m.message_id, seq, now + DEDUP_WINDOW),
            )
            added += 1
        self._counts[q.id] = self._counts.get(q.id, 0) + added

    def notify(self, q: QueueInfo) -> None:
        """Wake long-polling receivers of ``q`` (call after a commit that added messages)."""
        ev = self._signals.pop(q.id, None)
        if ev is not None:
            ev.set()

    async def send(self, q: QueueInfo, msgs: list[NewMessage]) -> None:
        await self.db.run(lambda db: self.insert_sync(db, q, msgs))
        self.notify(q)

    async def receive(
        self,
        q: QueueInfo,
        max_n: int,
        wait: float,
        visibility: int | None = None,
    ) -> list[Message]:
        """Take up to ``max_n`` visible messages, long-polling up to ``wait`` seconds."""
        deadline = time.monotonic() + wait
        vt = q.int_attr("VisibilityTimeout") if visibility is None else visibility
        while True:
            ev = self._signal(q.id)
            got = await self.db.run(lambda db: self._take(db, q, max_n, vt))
            if got or self._queues.get((q.account_id, q.name)) is not q:
                return got
            left = deadline - time.monotonic()
            if left <= 0:
                return []
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(ev.wait(), min(left, 1.0))

    def _signal(self, qid: int) -> asyncio.Event:
        ev = self._signals.get(qid)
        if ev is None:
            ev = self._signals[qid] = asyncio.Event()
        return ev

    def _take(self, db: sqlite3.Connection, q: QueueInfo, max_n: int, vt: int) -> list[Message]:
        now = time.time()
        self._expire(db, q, now)
        redrive = self.redrive_target(q)
        cols = (
            "SELECT seq, message_id, body, md5_body, attributes, md5_attributes, sent,"
            " receive_count, first_receive, trace_header, source_arn, group_id, dedup_id"
            " FROM sqs_messages WHERE queue_id=? AND visible_at<=? ORDER BY seq"
        )
        if q.fifo:
            # Groups with a message in flight are blocked; the rest go in order.
            blocked = {
                r[0]
                for r in db.execute(
                    "SELECT DISTINCT group_id FROM sqs_messages WHERE queue_id=? AND"
                    " visible_at>? AND receipt IS NOT NULL",
                    (q.id, now),
                )
            }
            rows = []
            for row in db.execute(cols, (q.id, now)):
                if row[11] in blocked:
                    continue
                rows.append(row)
                if len(rows) >= max_n:
                    break
        else:
            rows = db.execute(cols + " LIMIT ?", (q.id, now, max_n)).fetchall()
        out: list[Message] = []
        for row in rows:
            seq, count = row[0], row[7]
            if redrive is not None and count >= redrive[1]:
                self._move(db, seq, q, redrive[0], now)
                continue
            token = os.urandom(12).hex()
            first = row[8] if row[8] is not None else now
            db.execute(
                "UPDATE sqs_messages SET visible_at=?, receive_count=?, first_receive=?,"
                " receipt=? WHERE seq=?",
                (now + vt, count + 1, first, token, seq),
            )
            out.append(
                Message(
                    seq,
                    row[1],
                    row[2],
                    row[3],
                    row[4],
                    row[5],
                    row[6],
                    count + 1,
                    first,
                    make_receipt(q.id, seq, token),
                    row[9],
                    row[10],
                    row[11],
                    row[12],
                )
            )
        return out

    def redrive_target(self, q: QueueInfo) -> tuple[QueueInfo, int] | None:
        policy = q.redrive()
        if policy is None:
            return None
        dlq = self.by_arn(policy[0])
        return (dlq, policy[1]) if dlq is not None and dlq.id != q.id else None

    def _move(
        self, db: sqlite3.Connection, seq: int, src: QueueInfo, dst: QueueInfo, now: float
    ) -> None:
        self.transfer_sync(db, seq, src, dst, now, src.arn)

    def transfer_sync(
        self,
        db: sqlite3.Connection,
        seq: int,
        src: QueueInfo,
        dst: QueueInfo,
        now: float,
        source_arn: str | None,
    ) -> None:
        """Move message ``seq`` to ``dst`` as a new, visible message (database thread)."""
        db.execute(
            "UPDATE sqs_messages SET queue_id=?, visible_at=?, receive_count=0,"
            " first_receive=NULL, receipt=NULL, source_arn=? WHERE seq=?",
            (dst.id, now, source_arn, seq),
        )
        self._counts[src.id] = self._counts.get(src.id, 1) - 1
        self._counts[dst.id] = self._counts.get(dst.id, 0) + 1

    def _expire(self, db: sqlite3.Connection, q: QueueInfo, now: float) -> None:
        if now - self._last_expiry.get(q.id, 0.0) < 30:
            return
        self._last_expiry[q.id] = now
        cur = db.execute(
            "DELETE FROM sqs_messages WHERE queue_id=? AND sent < ?",
            (q.id, now - q.int_attr("MessageRetentionPeriod")),
        )
        if cur.rowcount:
            self._counts[q.id] = max(0, self._counts.get(q.id, 0) - cur.rowcount)

    def check_receipt(self, q: QueueInfo, handle: Any) -> tuple[int, str]:
        qid, seq, token = parse_receipt(handle)
        if qid != q.id:
            raise ReceiptHandleIsInvalid(
                f'The input receipt handle "{handle}" is not a valid receipt handle.'
            )
        return seq, token

    async def delete(self, q: QueueInfo, receipts: list[tuple[int, str]]) -> int:
        """Delete messages by (seq, token); a stale token deletes nothing and is no error."""
        return await self.db.run(lambda db: self.delete_sync(db, q, receipts))

    def delete_sync(
        self, db: sqlite3.Connection, q: QueueInfo, receipts: list[tuple[int, str]]
    ) -> int:
        deleted = 0
        for seq, token in receipts:
            cur = db.execute(
                "DELETE FROM sqs_messages WHERE seq=? AND queue_id=? AND receipt=?",
                (seq, q.id, token),
            )
            deleted += cur.rowcount
        self._counts[q.id] = max(0, self._counts.get(q.id, 0) - deleted)
        return deleted

    async def change_visibility(
        self, q: QueueInfo, items: list[tuple[int, str, int]]
    ) -> list[Exception | None]:
        """Set (seq, token, timeout) of in-flight messages; an error per item, or None."""
        now = time.time()

        def op(db: sqlite3.Connection) -> list[Exception | None]:
            out: list[Exception | None] = []
            for seq, token, vt in items:
                cur = db.execute(
                    "UPDATE sqs_messages SET visible_at=? WHERE seq=? AND queue_id=? AND"
                    " receipt=? AND visible_at>?",
                    (now + vt, seq, q.id, token, now),
                )
                if cur.rowcount:
                    out.append(None)
                elif db.execute(
                    "SELECT 1 FROM sqs_messages WHERE seq=? AND queue_id=?", (seq, q.id)
                ).fetchone():
                    out.append(
                        MessageNotInflight(
                            "Message does not exist or is not available for visibility timeout"
                            " change."
                        )
                    )
                else:  # deleted (or expired): SQS names the handle
                    out.append(
                        InvalidParameterValue(
                            f"Value {make_receipt(q.id, seq, token)} for parameter ReceiptHandle"
                            " is invalid. Reason: Message does not exist or is not available for"
                            " visibility timeout change."
                        )
                    )
            return out

        res = await self.db.run(op)
        if any(vt == 0 for _, _, vt in items):
            self.notify(q)
        return res

    async def run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        return await self.db.run(fn)


def _default(name: str) -> str:
    if name in INT_ATTRIBUTES:
        return str(INT_ATTRIBUTES[name][2])
    return FIFO_DEFAULTS.get(name, "")
