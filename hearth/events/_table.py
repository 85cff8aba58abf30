"""The ``async_events`` table in the queue database: accepted Event invocations.

Life of a row: inserted by ``submit`` (the 202 is sent after the commit) → *claimed* by
the dispatcher (``leased=1``, ``deliveries+1``, in the same transaction that reads it) →
either finished (deleted, atomically with its destination/DLQ delivery) or released
with a later ``next_at`` (a retry after a function error, or a wait after a throttle).
A row still leased when the server starts was interrupted by a crash: :func:`recover`
releases it, so it runs again (at least once; ``deliveries`` then exceeds the count of
finished attempts and the record's ``approximateInvokeCount`` shows the duplicate).
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

SCHEMA = """
CREATE TABLE IF NOT EXISTS async_events (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    request_id    TEXT NOT NULL,
    account_id    TEXT NOT NULL,
    region        TEXT NOT NULL,
    function_name TEXT NOT NULL,
    qualifier     TEXT,
    payload       BLOB NOT NULL,
    trace_id      TEXT NOT NULL DEFAULT '',
    received      REAL NOT NULL,
    next_at       REAL NOT NULL,
    leased        INTEGER NOT NULL DEFAULT 0,
    deliveries    INTEGER NOT NULL DEFAULT 0,
    failures      INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS async_events_due ON async_events (leased, next_at);
"""

_COLUMNS = (
    "id, request_id, account_id, region, function_name, qualifier, payload, trace_id,"
    " received, deliveries, failures"
)


@dataclass(slots=True)
class EventRow:
    id: int
    request_id: str
    account_id: str
    region: str
    function_name: str
    qualifier: str | None
    payload: bytes
    trace_id: str
    received: float
    deliveries: int
    failures: int


def insert(db: sqlite3.Connection, row: EventRow, now: float) -> None:
    db.execute(
        "INSERT INTO async_events (request_id, account_id, region, function_name, qualifier,"
        " payload, trace_id, received, next_at) VALUES (?,?,?,?,?,?,?,?,?)",
        (
            row.request_id,
            row.account_id,
            row.region,
            row.function_name,
            row.qualifier,
            row.payload,
            row.trace_id,
            row.received,
            now,
        ),
    )


def claim(db: sqlite3.Connection, now: float, limit: int) -> list[EventRow]:
    rows = db.execute(
        f"SELECT {_COLUMNS} FROM async_events WHERE leased=0 AND next_at<=?"
        " ORDER BY next_at LIMIT ?",
        (now, limit),
    ).fetchall()
    db.executemany(
        "UPDATE async_events SET leased=1, deliveries=deliveries+1 WHERE id=?",
        [(r[0],) for r in rows],
    )
    return [
        EventRow(r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8], r[9] + 1, r[10])
        for r in rows
    ]


def next_due(db: sqlite3.Connection) -> float | None:
    row = db.execute("SELECT MIN(next_at) FROM async_events WHERE leased=0").fetchone()
    return float(row[0]) if row and row[0] is not None else None


def release(
    db: sqlite3.Connection, event_id: int, next_at: float, *, failed: bool, invoked: bool
) -> None:
    """Put a claimed event back: after a failure (``failed``) or a throttle (not ``invoked``)."""
    db.execute(
        "UPDATE async_events SET leased=0, next_at=?, failures=failures+?,"
        " deliveries=deliveries-? WHERE id=?",
        (next_at, 1 if failed else 0, 0 if invoked else 1, event_id),
    )


def delete(db: sqlite3.Connection, event_id: int) -> bool:
    return db.execute("DELETE FROM async_events WHERE id=?", (event_id,)).rowcount == 1


def recover(db: sqlite3.Connection, now: float) -> tuple[int, int]:
    """Release rows a crashed run had claimed; return (released, pending total)."""
    released = db.execute(
        "UPDATE async_events SET leased=0, next_at=MIN(next_at, ?) WHERE leased=1", (now,)
    ).rowcount
    total = db.execute("SELECT COUNT(*) FROM async_events").fetchone()[0]
    return released, int(total)
