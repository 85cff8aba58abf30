"""Persistent function logs: one SQLite file (``logs.db``) and one batching writer thread.

Write path
----------
:meth:`LogStore.append` is the hot path, called from the event loop for every line a
function prints. It never touches SQLite: it appends a tuple to an in-memory buffer
under a short lock and returns. A single writer thread commits the buffer every
``flush_interval`` seconds (default 50 ms) or as soon as ``batch_size`` (1000) events are
waiting, one transaction per batch. Groups and streams are created lazily by the writer
on the first event that names them (what Lambda does with ``/aws/lambda/<fn>``).

The buffer is bounded (``max_buffered_events`` events and ``max_buffered_bytes`` of
message text, counted as characters + 26 like AWS's event overhead). When a new event
would exceed either bound the **oldest** buffered event is dropped and
:attr:`LogStore.dropped` is incremented: a function that floods stdout faster than the
disk can take it loses its oldest unsaved lines rather than stalling invocations or
exhausting memory. Messages longer than :data:`MAX_MESSAGE_BYTES` are truncated.

Durability: WAL with ``synchronous=NORMAL``. A commit is in the WAL file before the
writer moves on, so events survive ``kill -9`` of the server once committed (within
~``flush_interval`` of being appended); only an OS crash / power loss can lose the last
commits. :meth:`flush` waits for everything appended so far to be committed.

Administrative writes (create/delete group or stream, explicit ``PutLogEvents``,
retention) are *commands* run by the same writer thread, ordered exactly after every
event appended before them, so e.g. a ``DeleteLogGroup`` also removes events that were
still buffered when it was issued. Each command returns a future; the async wrappers
await it. Having one writer means SQLite never sees write contention.

Read path
---------
The query methods (:meth:`get_group`, :meth:`list_groups`, :meth:`list_streams`,
:meth:`read_stream`, :meth:`filter_events`) are synchronous and thread-safe, each
borrowing a pooled read connection (WAL readers never block the writer). Call them from
a thread executor, not the event loop. They see committed data only: call
:meth:`flush` first when read-your-writes of ``append`` matters.

Isolation: every query starts from ``(account, group name)``; streams and events are
reached only through that group's row id, so accounts never see each other's logs.

Event ids come from an ``AUTOINCREMENT`` key: never reused even after deletes, so they
are stable, unique identifiers (``aws logs tail --follow`` de-duplicates on them) and
``(timestamp, id)`` is a total order used for every cursor.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import logging
import sqlite3
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any, TypeVar

from hearth.observe.filter_pattern import TermFilter
from hearth.observe.json_pattern import JsonFilter

log = logging.getLogger(__name__)

T = TypeVar("T")

#: AWS's per-event overhead in size accounting (PutLogEvents batch size, storedBytes).
EVENT_OVERHEAD = 26
#: Longest message kept; longer ones are truncated (AWS's own per-event limit is 1 MiB).
MAX_MESSAGE_BYTES = 1024 * 1024 - EVENT_OVERHEAD
DB_NAME = "logs.db"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS log_groups (
    id             INTEGER PRIMARY KEY,
    account        TEXT    NOT NULL,
    name           TEXT    NOT NULL,
    creation_time  INTEGER NOT NULL,
    retention_days INTEGER,
    UNIQUE (account, name)
);
CREATE TABLE IF NOT EXISTS log_streams (
    id                  INTEGER PRIMARY KEY,
    group_id            INTEGER NOT NULL,
    name                TEXT    NOT NULL,
    creation_time       INTEGER NOT NULL,
    first_event_ts      INTEGER,
    last_event_ts       INTEGER,
    last_ingestion_time INTEGER,
    stored_bytes        INTEGER NOT NULL DEFAULT 0,
    UNIQUE (group_id, name)
);
CREATE TABLE IF NOT EXISTS log_events (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    group_id       INTEGER NOT NULL,
    stream_id      INTEGER NOT NULL,
    timestamp      INTEGER NOT NULL,
    ingestion_time INTEGER NOT NULL,
    message        TEXT    NOT NULL
);
CREATE INDEX IF NOT EXISTS log_events_by_stream ON log_events (stream_id, timestamp, id);
CREATE INDEX IF NOT EXISTS log_events_by_group ON log_events (group_id, timestamp, id);
"""

#: (account, group, stream, timestamp_ms, ingestion_ms, message)
_Event = tuple[str, str, str, int, int, str]
#: An event position in the total order ``(timestamp, id)``; cursors are exclusive bounds.
Position = tuple[int, int]


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def event_size(message: str) -> int:
    """Bytes an event counts for in AWS limits: UTF-8 length + 26."""
    return len(message.encode("utf-8", "replace")) + EVENT_OVERHEAD


class Outcome(Enum):
    """Result of an administrative write command."""

    OK = "ok"
    NO_GROUP = "no-group"
    NO_STREAM = "no-stream"
    EXISTS = "exists"


@dataclass(frozen=True, slots=True)
class GroupInfo:
    name: str
    creation_time: int
    retention_days: int | None
    stored_bytes: int


@dataclass(frozen=True, slots=True)
class StreamInfo:
    name: str
    creation_time: int
    first_event_ts: int | None
    last_event_ts: int | None
    last_ingestion_time: int | None
    stored_bytes: int


@dataclass(frozen=True, slots=True)
class EventRow:
    id: int
    stream: str
    timestamp: int
    ingestion_time: int
    message: str

    @property
    def position(self) -> Position:
        return (self.timestamp, self.id)


@dataclass(slots=True)
class _Command:
    #: number of events appended before this command; they are written before it runs
    seq: int
    fn: Callable[[sqlite3.Connection], Any]
    future: concurrent.futures.Future[Any]


def _truncate(message: str) -> str:
    # Cheap pre-check: a str of n chars encodes to at most 4n bytes.
    if len(message) * 4 <= MAX_MESSAGE_BYTES:
        return message
    raw = message.encode("utf-8", "replace")
    if len(raw) <= MAX_MESSAGE_BYTES:
        return message
    return raw[:MAX_MESSAGE_BYTES].decode("utf-8", "ignore")


class LogStore:
    """See the module docstring. ``LogStore(data_dir)`` opens ``data_dir/logs.db``."""

    def __init__(
        self,
        data_dir: str | Path,
        *,
        flush_interval: float = 0.05,
        batch_size: int = 1000,
        max_buffered_events: int = 100_000,
        max_buffered_bytes: int = 64 * 1024 * 1024,
        expire_interval: float = 600.0,
    ) -> None:
        Path(data_dir).mkdir(parents=True, exist_ok=True)
        self.path = Path(data_dir) / DB_NAME
        self._interval = flush_interval
        self._batch_size = batch_size
        self._max_events = max_buffered_events
        self._max_bytes = max_buffered_bytes
        self._expire_interval = expire_interval

        self._lock = threading.Lock()
        self._buf: deque[_Event] = deque()
        self._buf_bytes = 0
        self._appended = 0  # total events ever appended (sequence of the next one)
        self._head_seq = 0  # sequence number of self._buf[0]
        self._cmds: list[_Command] = []
        self._closing = False
        self._dropped = 0
        self._wake = threading.Event()  # there is something to write
        self._urgent = threading.Event()  # ... and it should not wait for the batch window

        self._pool: list[sqlite3.Connection] = []
        self._pool_lock = threading.Lock()
        self._closed = threading.Event()  # set once close() ran; an Event so it reads as a call

        writer = self._connect()
        writer.executescript(_SCHEMA)
        self._thread = threading.Thread(
            target=self._run, args=(writer,), name="hearth-logstore-writer", daemon=True
        )
        self._thread.start()

    # ------------------------------------------------------------------ connections

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(
            self.path, isolation_level=None, check_same_thread=False, timeout=30.0
        )
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        return conn

    @contextmanager
    def _reader(self) -> Iterator[sqlite3.Connection]:
        if self._closed.is_set():
            raise RuntimeError("LogStore is closed")
        with self._pool_lock:
            conn = self._pool.pop() if self._pool else None
        if conn is None:
            conn = self._connect()
        try:
            yield conn
        finally:
            with self._pool_lock:
                if self._closed.is_set():
                    conn.close()
                else:
                    self._pool.append(conn)

    # ------------------------------------------------------------------ write path

    @property
    def dropped(self) -> int:
        """Events lost: evicted from a full buffer, appended after close, or failed commits."""
        return self._dropped

    @property
    def buffered(self) -> int:
        """Events appended but not yet handed to the writer."""
        return len(self._buf)

    def append(
        self, account: str, group: str, stream: str, timestamp_ms: int, message: str
    ) -> None:
        """Buffer one event; O(1), never blocks on I/O, safe from any thread.

        The ingestion time is taken now. The group and stream are created on commit if
        they do not exist.
        """
        self.append_many(account, group, stream, timestamp_ms, (message,))

    def append_many(
        self, account: str, group: str, stream: str, timestamp_ms: int, messages: Sequence[str]
    ) -> None:
        """:meth:`append` of several events with one timestamp (one lock, one clock read:
        an invoke's END and REPORT, the lines of one read of a sandbox's output)."""
        ts = int(timestamp_ms)
        ingested = time.time_ns() // 1_000_000
        with self._lock:
            if self._closing:
                self._dropped += len(messages)
                return
            buf = self._buf
            was_empty = not buf
            for message in messages:
                if len(message) * 4 > MAX_MESSAGE_BYTES:
                    message = _truncate(message)
                size = len(message) + EVENT_OVERHEAD
                while buf and (
                    len(buf) >= self._max_events or self._buf_bytes + size > self._max_bytes
                ):
                    old = buf.popleft()
                    self._buf_bytes -= len(old[5]) + EVENT_OVERHEAD
                    self._head_seq += 1
                    self._dropped += 1
                buf.append((account, group, stream, ts, ingested, message))
                self._buf_bytes += size
                self._appended += 1
            if was_empty:
                self._wake.set()
            if len(buf) >= self._batch_size:
                self._urgent.set()

    def submit(self, fn: Callable[[sqlite3.Connection], T]) -> concurrent.futures.Future[T]:
        """Run ``fn(conn)`` on the writer thread inside one transaction, after all events
        appended so far are committed. The future carries its result or exception."""
        future: concurrent.futures.Future[T] = concurrent.futures.Future()
        with self._lock:
            if self._closing:
                future.set_exception(RuntimeError("LogStore is closed"))
                return future
            self._cmds.append(_Command(self._appended, fn, future))
            self._wake.set()
            self._urgent.set()
        return future

    async def flush(self) -> None:
        """Wait until every event appended before this call is committed to disk."""
        await asyncio.wrap_future(self.submit(lambda conn: None))

    def flush_sync(self, timeout: float | None = None) -> None:
        """:meth:`flush` for non-async callers (tests, shutdown hooks)."""
        self.submit(lambda conn: None).result(timeout)

    def close(self) -> None:
        """Drain the buffer, stop the writer thread and close every connection. Idempotent."""
        with self._lock:
            self._closing = True
            self._wake.set()
            self._urgent.set()
        self._thread.join()
        with self._pool_lock:
            self._closed.set()
            pool, self._pool = self._pool, []
        for conn in pool:
            conn.close()

    async def aclose(self) -> None:
        """:meth:`close` without blocking the event loop."""
        await asyncio.to_thread(self.close)

    # ------------------------------------------------------------------ writer thread

    def _run(self, conn: sqlite3.Connection) -> None:
        ids: dict[tuple[str, str, str], tuple[int, int]] = {}
        next_expiry = time.monotonic()
        try:
            while True:
                if time.monotonic() >= next_expiry:
                    self._expire(conn)
                    next_expiry = time.monotonic() + self._expire_interval
                self._wake.wait(self._expire_interval)
                self._urgent.wait(self._interval)
                with self._lock:
                    self._wake.clear()
                    self._urgent.clear()
                    events = list(self._buf)
                    first_seq = self._head_seq
                    self._buf.clear()
                    self._buf_bytes = 0
                    self._head_seq += len(events)
                    cmds, self._cmds = self._cmds, []
                    closing = self._closing
                self._write(conn, ids, events, first_seq, cmds)
                if closing:
                    break
        finally:
            conn.close()

    def _write(
        self,
        conn: sqlite3.Connection,
        ids: dict[tuple[str, str, str], tuple[int, int]],
        events: list[_Event],
        first_seq: int,
        cmds: list[_Command],
    ) -> None:
        done = 0
        for cmd in cmds:
            cut = min(len(events), max(done, cmd.seq - first_seq))
            if cut > done:
                self._insert(conn, ids, events[done:cut])
                done = cut
            self._run_command(conn, cmd)
            ids.clear()  # a command may have deleted groups/streams
        if done < len(events):
            self._insert(conn, ids, events[done:])

    def _run_command(self, conn: sqlite3.Connection, cmd: _Command) -> None:
        if not cmd.future.set_running_or_notify_cancel():
            return
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                result = cmd.fn(conn)
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
        except Exception as exc:
            cmd.future.set_exception(exc)
        else:
            cmd.future.set_result(result)

    def _insert(
        self,
        conn: sqlite3.Connection,
        ids: dict[tuple[str, str, str], tuple[int, int]],
        events: Sequence[_Event],
    ) -> None:
        by_stream: dict[tuple[str, str, str], list[_Event]] = {}
        for ev in events:
            key = (ev[0], ev[1], ev[2])
            evs = by_stream.get(key)
            if evs is None:
                by_stream[key] = [ev]
            else:
                evs.append(ev)
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                batches = []
                for key, evs in by_stream.items():
                    ref = ids.get(key)
                    if ref is None:
                        ref = ids[key] = _ensure_stream(conn, *key, max(e[4] for e in evs))
                    batches.append((ref, [(e[3], e[4], e[5]) for e in evs]))
                _insert_many(conn, batches)
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                ids.clear()
                raise
        except sqlite3.Error:
            log.exception("log store: dropping a batch of %d events", len(events))
            with self._lock:
                self._dropped += len(events)

    def _expire(self, conn: sqlite3.Connection) -> None:
        """Delete events older than their group's retention (best effort, off the hot path)."""
        now = now_ms()
        try:
            conn.execute("BEGIN IMMEDIATE")
            conn.execute(
                "DELETE FROM log_events WHERE id IN (SELECT e.id FROM log_groups g "
                "JOIN log_events e ON e.group_id = g.id "
                "WHERE g.retention_days IS NOT NULL "
                "AND e.timestamp < ? - g.retention_days * 86400000)",
                (now,),
            )
            conn.execute("COMMIT")
        except sqlite3.Error:
            log.exception("log store: retention sweep failed")
            if conn.in_transaction:
                conn.execute("ROLLBACK")

    # ------------------------------------------------------------------ admin commands

    async def create_group(self, account: str, name: str) -> Outcome:
        def run(conn: sqlite3.Connection) -> Outcome:
            cur = conn.execute(
                "INSERT OR IGNORE INTO log_groups (account, name, creation_time) VALUES (?, ?, ?)",
                (account, name, now_ms()),
            )
            return Outcome.OK if cur.rowcount else Outcome.EXISTS

        return await asyncio.wrap_future(self.submit(run))

    async def delete_group(self, account: str, name: str) -> Outcome:
        def run(conn: sqlite3.Connection) -> Outcome:
            gid = _group_id(conn, account, name)
            if gid is None:
                return Outcome.NO_GROUP
            conn.execute("DELETE FROM log_events WHERE group_id = ?", (gid,))
            conn.execute("DELETE FROM log_streams WHERE group_id = ?", (gid,))
            conn.execute("DELETE FROM log_groups WHERE id = ?", (gid,))
            return Outcome.OK

        return await asyncio.wrap_future(self.submit(run))

    async def set_retention(self, account: str, name: str, days: int | None) -> Outcome:
        def run(conn: sqlite3.Connection) -> Outcome:
            cur = conn.execute(
                "UPDATE log_groups SET retention_days = ? WHERE account = ? AND name = ?",
                (days, account, name),
            )
            return Outcome.OK if cur.rowcount else Outcome.NO_GROUP

        return await asyncio.wrap_future(self.submit(run))

    async def create_stream(self, account: str, group: str, stream: str) -> Outcome:
        def run(conn: sqlite3.Connection) -> Outcome:
            gid = _group_id(conn, account, group)
            if gid is None:
                return Outcome.NO_GROUP
            cur = conn.execute(
                "INSERT OR IGNORE INTO log_streams (group_id, name, creation_time) "
                "VALUES (?, ?, ?)",
                (gid, stream, now_ms()),
            )
            return Outcome.OK if cur.rowcount else Outcome.EXISTS

        return await asyncio.wrap_future(self.submit(run))

    async def delete_stream(self, account: str, group: str, stream: str) -> Outcome:
        def run(conn: sqlite3.Connection) -> Outcome:
            ref = _stream_ref(conn, account, group, stream)
            if isinstance(ref, Outcome):
                return ref
            conn.execute("DELETE FROM log_events WHERE stream_id = ?", (ref[1],))
            conn.execute("DELETE FROM log_streams WHERE id = ?", (ref[1],))
            return Outcome.OK

        return await asyncio.wrap_future(self.submit(run))

    async def put_events(
        self, account: str, group: str, stream: str, events: Sequence[tuple[int, str]]
    ) -> Outcome:
        """Commit *events* ``(timestamp_ms, message)`` to an existing stream (``PutLogEvents``)."""
        ingest = now_ms()
        rows = [(ts, ingest, _truncate(msg)) for ts, msg in events]

        def run(conn: sqlite3.Connection) -> Outcome:
            ref = _stream_ref(conn, account, group, stream)
            if isinstance(ref, Outcome):
                return ref
            if rows:
                _insert_events(conn, ref, rows)
            return Outcome.OK

        return await asyncio.wrap_future(self.submit(run))

    # ------------------------------------------------------------------ queries (sync)

    def get_group(self, account: str, name: str) -> GroupInfo | None:
        with self._reader() as conn:
            rows = _groups(conn, "g.account = ? AND g.name = ?", [account, name], 1)
        return rows[0] if rows else None

    def list_groups(
        self,
        account: str,
        *,
        prefix: str | None = None,
        contains: str | None = None,
        names: Sequence[str] | None = None,
        after: str | None = None,
        limit: int = 50,
    ) -> list[GroupInfo]:
        """Groups ordered by name, after the name *after*. *contains* is case-insensitive."""
        where: list[str] = ["g.account = ?"]
        args: list[object] = [account]
        if prefix:
            where.append("substr(g.name, 1, ?) = ?")
            args += [len(prefix), prefix]
        if contains:
            where.append("instr(lower(g.name), lower(?)) > 0")
            args.append(contains)
        if names is not None:
            where.append(f"g.name IN ({','.join('?' * len(names))})")
            args += names
        if after is not None:
            where.append("g.name > ?")
            args.append(after)
        with self._reader() as conn:
            return _groups(conn, " AND ".join(where), args, limit)

    def list_streams(
        self,
        account: str,
        group: str,
        *,
        prefix: str | None = None,
        by_last_event: bool = False,
        descending: bool = False,
        after: tuple[int, str] | str | None = None,
        limit: int = 50,
    ) -> list[StreamInfo] | None:
        """Streams of a group (``None`` if the group does not exist).

        Ordered by name, or by ``(last event timestamp or 0, name)`` when
        *by_last_event*; *after* is the exclusive cursor in that same key.
        """
        with self._reader() as conn:
            gid = _group_id(conn, account, group)
            if gid is None:
                return None
            keys = ["coalesce(last_event_ts, 0)", "name"] if by_last_event else ["name"]
            direction = "DESC" if descending else "ASC"
            where: list[str] = ["group_id = ?"]
            args: list[object] = [gid]
            if prefix:
                where.append("substr(name, 1, ?) = ?")
                args += [len(prefix), prefix]
            if after is not None:
                cursor = list(after) if isinstance(after, tuple) else [after]
                marks = ", ".join("?" * len(cursor))
                where.append(f"({', '.join(keys)}) {'<' if descending else '>'} ({marks})")
                args += cursor
            order = ", ".join(f"{k} {direction}" for k in keys)
            rows = conn.execute(
                "SELECT name, creation_time, first_event_ts, last_event_ts, "
                "last_ingestion_time, stored_bytes FROM log_streams "
                f"WHERE {' AND '.join(where)} ORDER BY {order} LIMIT ?",
                [*args, limit],
            ).fetchall()
        return [StreamInfo(*r) for r in rows]

    def read_stream(
        self,
        account: str,
        group: str,
        stream: str,
        *,
        start: int | None = None,
        end: int | None = None,
        after: Position | None = None,
        before: Position | None = None,
        newest_first: bool = False,
        limit: int = 10_000,
        max_bytes: int = 1024 * 1024,
    ) -> list[EventRow] | Outcome:
        """Events of one stream with ``start <= timestamp < end`` strictly between the
        cursors, in ``(timestamp, id)`` order (reversed if *newest_first*), stopping at
        *limit* events or before exceeding *max_bytes* (AWS event sizes).

        Returns ``Outcome.NO_GROUP``/``NO_STREAM`` when either does not exist.
        """
        with self._reader() as conn:
            ref = _stream_ref(conn, account, group, stream)
            if isinstance(ref, Outcome):
                return ref
            where: list[str] = ["e.stream_id = ?"]
            args: list[object] = [ref[1]]
            _bounds(where, args, start, end, after, before, end_inclusive=False)
            return _scan(conn, where, args, newest_first, limit, max_bytes)[0]

    def filter_events(
        self,
        account: str,
        group: str,
        *,
        streams: Sequence[str] | None = None,
        stream_prefix: str | None = None,
        start: int | None = None,
        end: int | None = None,
        after: Position | None = None,
        terms: TermFilter | JsonFilter | None = None,
        limit: int = 10_000,
        max_bytes: int = 1024 * 1024,
    ) -> tuple[list[EventRow], bool] | None:
        """Matching events of a group with ``start <= timestamp <= end`` after the cursor,
        oldest first. Returns ``(events, more)`` or ``None`` if the group does not exist;
        *more* tells whether further matching events exist beyond this page."""
        with self._reader() as conn:
            gid = _group_id(conn, account, group)
            if gid is None:
                return None
            where: list[str] = ["e.group_id = ?"]
            args: list[object] = [gid]
            if streams is not None or stream_prefix:
                swhere: list[str] = ["group_id = ?"]
                sargs: list[object] = [gid]
                if streams is not None:
                    swhere.append(f"name IN ({','.join('?' * len(streams))})")
                    sargs += streams
                if stream_prefix:
                    swhere.append("substr(name, 1, ?) = ?")
                    sargs += [len(stream_prefix), stream_prefix]
                where.append(
                    f"e.stream_id IN (SELECT id FROM log_streams WHERE {' AND '.join(swhere)})"
                )
                args += sargs
            _bounds(where, args, start, end, after, None, end_inclusive=True)
            if isinstance(terms, JsonFilter):
                where.append(terms.sql)
                args += terms.args
            elif terms is not None:
                for term in terms.required:
                    where.append("instr(e.message, ?) > 0")
                    args.append(term)
                if terms.any_of:
                    where.append(
                        "(" + " OR ".join(["instr(e.message, ?) > 0"] * len(terms.any_of)) + ")"
                    )
                    args += terms.any_of
                for term in terms.excluded:
                    where.append("instr(e.message, ?) = 0")
                    args.append(term)
            return _scan(conn, where, args, False, limit, max_bytes)


# ---------------------------------------------------------------------- SQL helpers


def _group_id(conn: sqlite3.Connection, account: str, name: str) -> int | None:
    row = conn.execute(
        "SELECT id FROM log_groups WHERE account = ? AND name = ?", (account, name)
    ).fetchone()
    return None if row is None else int(row[0])


def _stream_ref(
    conn: sqlite3.Connection, account: str, group: str, stream: str
) -> tuple[int, int] | Outcome:
    gid = _group_id(conn, account, group)
    if gid is None:
        return Outcome.NO_GROUP
    row = conn.execute(
        "SELECT id FROM log_streams WHERE group_id = ? AND name = ?", (gid, stream)
    ).fetchone()
    return Outcome.NO_STREAM if row is None else (gid, int(row[0]))


def _ensure_stream(
    conn: sqlite3.Connection, account: str, group: str, stream: str, now: int
) -> tuple[int, int]:
    conn.execute(
        "INSERT OR IGNORE INTO log_groups (account, name, creation_time) VALUES (?, ?, ?)",
        (account, group, now),
    )
    gid = _group_id(conn, account, group)
    assert gid is not None
    conn.execute(
        "INSERT OR IGNORE INTO log_streams (group_id, name, creation_time) VALUES (?, ?, ?)",
        (gid, stream, now),
    )
    row = conn.execute(
        "SELECT id FROM log_streams WHERE group_id = ? AND name = ?", (gid, stream)
    ).fetchone()
    return gid, int(row[0])


def _insert_events(
    conn: sqlite3.Connection, ref: tuple[int, int], rows: Sequence[tuple[int, int, str]]
) -> None:
    """Insert ``(timestamp, ingestion, message)`` rows into a stream and update its stats."""
    gid, sid = ref
    conn.executemany(
        "INSERT INTO log_events (group_id, stream_id, timestamp, ingestion_time, message) "
        "VALUES (?, ?, ?, ?, ?)",
        [(gid, sid, ts, ing, msg) for ts, ing, msg in rows],
    )
    first = min(r[0] for r in rows)
    last = max(r[0] for r in rows)
    conn.execute(
        "UPDATE log_streams SET first_event_ts = min(coalesce(first_event_ts, ?1), ?1), "
        "last_event_ts = max(coalesce(last_event_ts, ?2), ?2), "
        "last_ingestion_time = max(coalesce(last_ingestion_time, ?3), ?3), "
        "stored_bytes = stored_bytes + ?4 WHERE id = ?5",
        (first, last, max(r[1] for r in rows), sum(event_size(r[2]) for r in rows), sid),
    )


#: A batch is inserted by one statement, its rows passed as one JSON array per stream
#: (``[[group, stream, [[ts, ingestion, message], ...]], ...]``): the sqlite3 module
#: releases and retakes the GIL around every statement (and every ``executemany`` row),
#: and each hand-off to this thread can wake it (a futex wake) and stall the event loop.
#: ``executemany`` → one statement per stream (measured under ``wrk``, 32 connections,
#: 3 lines per invoke): the writer thread ~100 → ~45 µs of CPU per invoke, the event loop
#: ~525 → ~420 µs. One statement per stream → one per batch (32 streams, same load,
#: three runs each alternating): the writer's voluntary context switches 0.44-0.74 →
#: 0.12-0.19 per invoke, the event loop's CPU 300-307 → 236-298 µs per invoke, requests
#: served +6-22 %.
_INSERT_JSON = (
    # The streams are materialized first: ``s.value ->> 0`` in the outer query would
    # re-parse a stream's whole JSON text for each of its rows (quadratic in a stream's
    # share of the batch: ~350 µs of writer CPU per invoke with one busy stream).
    "WITH s AS MATERIALIZED (SELECT key AS k, value ->> 0 AS g, value ->> 1 AS st, "
    "value -> 2 AS rows FROM json_each(?1)) "
    "INSERT INTO log_events (group_id, stream_id, timestamp, ingestion_time, message) "
    "SELECT s.g, s.st, r.value ->> 0, r.value ->> 1, r.value ->> 2 "
    "FROM s, json_each(s.rows) AS r ORDER BY s.k, r.key"
)
_UPDATE_JSON = (
    "UPDATE log_streams SET first_event_ts = min(coalesce(first_event_ts, s.f), s.f), "
    "last_event_ts = max(coalesce(last_event_ts, s.l), s.l), "
    "last_ingestion_time = max(coalesce(last_ingestion_time, s.i), s.i), "
    "stored_bytes = stored_bytes + s.b "
    "FROM (SELECT json_extract(value, '$[0]') AS id, json_extract(value, '$[1]') AS f, "
    "json_extract(value, '$[2]') AS l, json_extract(value, '$[3]') AS i, "
    "json_extract(value, '$[4]') AS b FROM json_each(?)) AS s WHERE log_streams.id = s.id"
)
#: JSON functions are built in from SQLite 3.38, UPDATE ... FROM exists from 3.33.
_JSON_BATCHES = sqlite3.sqlite_version_info >= (3, 38, 0)


def _insert_many(
    conn: sqlite3.Connection,
    batches: Sequence[tuple[tuple[int, int], Sequence[tuple[int, int, str]]]],
) -> None:
    """:func:`_insert_events` for several streams: one statement for all their rows, one
    for all their statistics.

    A stream whose rows JSON cannot carry goes through ``executemany``: SQLite's JSON
    functions cut a string at an escaped NUL (``\\u0000``).
    """
    if not _JSON_BATCHES:
        for ref, rows in batches:
            _insert_events(conn, ref, rows)
        return
    stats: list[tuple[int, int, int, int, int]] = []
    parts: list[str] = []
    for (gid, sid), rows in batches:
        text = json.dumps(rows, ensure_ascii=False)
        if "\\u0000" in text:
            _insert_events(conn, (gid, sid), rows)
            continue
        parts.append(f"[{gid},{sid},{text}]")
        stats.append(
            (
                sid,
                min(r[0] for r in rows),
                max(r[0] for r in rows),
                max(r[1] for r in rows),
                sum(event_size(r[2]) for r in rows),
            )
        )
    if parts:
        conn.execute(_INSERT_JSON, ("[" + ",".join(parts) + "]",))
        conn.execute(_UPDATE_JSON, (json.dumps(stats),))


def _groups(
    conn: sqlite3.Connection, where: str, args: Sequence[object], limit: int
) -> list[GroupInfo]:
    rows = conn.execute(
        "SELECT g.name, g.creation_time, g.retention_days, "
        "(SELECT coalesce(sum(s.stored_bytes), 0) FROM log_streams s WHERE s.group_id = g.id) "
        f"FROM log_groups g WHERE {where} ORDER BY g.name LIMIT ?",
        [*args, limit],
    ).fetchall()
    return [GroupInfo(*r) for r in rows]


def _bounds(
    where: list[str],
    args: list[object],
    start: int | None,
    end: int | None,
    after: Position | None,
    before: Position | None,
    *,
    end_inclusive: bool,
) -> None:
    if start is not None:
        where.append("e.timestamp >= ?")
        args.append(start)
    if end is not None:
        where.append("e.timestamp <= ?" if end_inclusive else "e.timestamp < ?")
        args.append(end)
    if after is not None:
        where.append("(e.timestamp, e.id) > (?, ?)")
        args += after
    if before is not None:
        where.append("(e.timestamp, e.id) < (?, ?)")
        args += before


def _scan(
    conn: sqlite3.Connection,
    where: list[str],
    args: list[object],
    newest_first: bool,
    limit: int,
    max_bytes: int,
) -> tuple[list[EventRow], bool]:
    """Run the event query; stop at *limit* rows or *max_bytes*. Returns ``(rows, more)``."""
    order = "DESC" if newest_first else "ASC"
    cur = conn.execute(
        "SELECT e.id, s.name, e.timestamp, e.ingestion_time, e.message "
        "FROM log_events e JOIN log_streams s ON s.id = e.stream_id "
        f"WHERE {' AND '.join(where)} ORDER BY e.timestamp {order}, e.id {order} LIMIT ?",
        [*args, limit + 1],
    )
    out: list[EventRow] = []
    used = 0
    try:
        for row in cur:
            if len(out) >= limit:
                return out, True
            used += event_size(row[4])
            if out and used > max_bytes:
                return out, True
            out.append(EventRow(*row))
    finally:
        cur.close()
    return out, False
