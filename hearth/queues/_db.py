"""A dedicated SQLite file for queued work (SQS messages, async events), with group commit.

Why a file of its own: queue traffic is write-heavy and must not wait behind (or delay)
control-plane statements on the main store's thread.

Contract of :meth:`QueueDb.run`: ``fn(connection)`` runs on the database thread inside a
transaction shared with other operations submitted at about the same time; it returns
only after that transaction is committed (WAL, ``synchronous=FULL``: the commit is on
disk, so whatever the caller acknowledges survives ``kill -9`` and power loss). Each
operation runs under its own SAVEPOINT, so one that raises is rolled back alone and
its exception is re-raised in the caller; the others commit.

Group commit: operations queue up while the previous batch is being written; the thread
takes up to ``max_batch`` of them at once, so N concurrent submitters cost one fsync,
not N. Operations must be short and never block on anything but SQLite.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import threading
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")
log = logging.getLogger(__name__)

_Op = tuple[Callable[[sqlite3.Connection], Any], "asyncio.Future[Any]", asyncio.AbstractEventLoop]


class QueueDb:
    def __init__(self, path: str | Path, *, max_batch: int = 512) -> None:
        self._path = str(path)
        self._max_batch = max_batch
        self._ops: deque[_Op] = deque()
        self._cond = threading.Condition()
        self._closing = False
        self._thread: threading.Thread | None = None
        self._db: sqlite3.Connection | None = None
        self.commits = 0
        """Transactions committed (for statistics: ops / commits is the group size)."""
        self.ops = 0

    async def open(self, schema: str) -> None:
        db = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=FULL")
        db.execute("PRAGMA busy_timeout=5000")
        db.executescript(schema)
        self._db = db
        self._thread = threading.Thread(target=self._loop, name="hearth-queuedb", daemon=True)
        self._thread.start()

    async def run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``fn`` in a group-committed transaction; return once it is durable."""
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[T] = loop.create_future()
        with self._cond:
            if self._closing:
                raise RuntimeError("queue database is closed")
            self._ops.append((fn, fut, loop))
            self._cond.notify()
        return await fut

    def _loop(self) -> None:
        db = self._db
        if db is None:  # pragma: no cover - open() sets it first
            return
        while True:
            with self._cond:
                while not self._ops and not self._closing:
                    self._cond.wait()
                if not self._ops and self._closing:
                    return
                batch = [self._ops.popleft() for _ in range(min(len(self._ops), self._max_batch))]
            results: list[tuple[bool, Any]] = []
            try:
                db.execute("BEGIN IMMEDIATE")
                for fn, _, _ in batch:
                    db.execute("SAVEPOINT op")
                    try:
                        results.append((True, fn(db)))
                        db.execute("RELEASE op")
                    except Exception as exc:
                        db.execute("ROLLBACK TO op")
                        db.execute("RELEASE op")
                        results.append((False, exc))
                db.execute("COMMIT")
                self.commits += 1
                self.ops += len(batch)
            except sqlite3.Error as exc:
                log.exception("queue database batch failed")
                if db.in_transaction:
                    db.execute("ROLLBACK")
                results = [(False, exc)] * len(batch)
            for (_, fut, loop), (ok, value) in zip(batch, results, strict=True):
                loop.call_soon_threadsafe(_settle, fut, ok, value)

    async def aclose(self) -> None:
        with self._cond:
            self._closing = True
            self._cond.notify()
        if self._thread is not None:
            await asyncio.get_running_loop().run_in_executor(None, self._thread.join)
            self._thread = None
        if self._db is not None:
            self._db.close()
            self._db = None


def _settle(fut: asyncio.Future[Any], ok: bool, value: Any) -> None:
    if fut.done():
        return
    if ok:
        fut.set_result(value)
    else:
        fut.set_exception(value)
