"""SQLite store, the embedded default.

Uses the standard library's ``sqlite3`` (no ORM: a handful of statements, and the
PostgreSQL store will have its own). All statements run on one dedicated thread, which
serialises writers (SQLite allows one anyway) and keeps fsync off the event loop. WAL
mode with ``synchronous=FULL`` for control-plane writes: a function acknowledged to a
client survives ``kill -9`` and power loss.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

from hearth.errors import ResourceConflict, ResourceNotFound
from hearth.types import LATEST, FunctionConfig

T = TypeVar("T")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS function_versions (
    account_id   TEXT NOT NULL,
    name         TEXT NOT NULL,
    version      TEXT NOT NULL,
    revision_id  TEXT NOT NULL,
    code_sha256  TEXT NOT NULL,
    code_size    INTEGER NOT NULL,
    config       TEXT NOT NULL,
    PRIMARY KEY (account_id, name, version)
);
CREATE INDEX IF NOT EXISTS function_versions_code ON function_versions (code_sha256);
"""


class SqliteStore:
    def __init__(self, path: str | Path) -> None:
        self._path = str(path)
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="hearth-store")
        self._db: sqlite3.Connection | None = None

    async def open(self) -> None:
        await self._run(self._open)

    def _open(self) -> None:
        db = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=FULL")
        db.execute("PRAGMA busy_timeout=5000")
        db.executescript(_SCHEMA)
        self._db = db

    async def _run(self, fn: Callable[[], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._pool, fn)

    async def run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``fn(connection)`` on the store's thread (for feature stores with own tables).

        The connection is in autocommit mode; use ``BEGIN IMMEDIATE`` / ``COMMIT`` for
        multi-statement transactions.
        """
        return await self._run(lambda: fn(self.db))

    async def add_schema(self, script: str) -> None:
        """Create a feature's tables (idempotent ``CREATE ... IF NOT EXISTS`` script)."""
        await self._run(lambda: self.db.executescript(script))

    @property
    def db(self) -> sqlite3.Connection:
        if self._db is None:
            raise RuntimeError("store is not open")
        return self._db

    async def create_function(self, cfg: FunctionConfig) -> None:
        def op() -> None:
            try:
                self.db.execute(
                    "INSERT INTO function_versions VALUES (?,?,?,?,?,?,?)",
                    (
                        cfg.account_id,
                        cfg.name,
                        cfg.version,
                        cfg.revision_id,
                        cfg.code_sha256_hex,
                        cfg.code_size,
                        cfg.to_json(),
                    ),
                )
            except sqlite3.IntegrityError:
                raise ResourceConflict(f"Function already exist: {cfg.name}") from None

        await self._run(op)

    async def get_function(
        self, account_id: str, name: str, version: str = LATEST
    ) -> FunctionConfig | None:
        def op() -> FunctionConfig | None:
            row = self.db.execute(
                "SELECT config FROM function_versions WHERE account_id=? AND name=? AND version=?",
                (account_id, name, version),
            ).fetchone()
            return FunctionConfig.from_json(row[0]) if row else None

        return await self._run(op)

    async def list_functions(
        self, account_id: str, after: str | None, limit: int
    ) -> list[FunctionConfig]:
        def op() -> list[FunctionConfig]:
            rows = self.db.execute(
                "SELECT config FROM function_versions WHERE account_id=? AND version=?"
                " AND name > ? ORDER BY name LIMIT ?",
                (account_id, LATEST, after or "", limit),
            ).fetchall()
            return [FunctionConfig.from_json(r[0]) for r in rows]

        return await self._run(op)

    async def update_function(self, cfg: FunctionConfig, expected_revision: str) -> None:
        def op() -> None:
            cur = self.db.execute(
                "UPDATE function_versions SET revision_id=?, code_sha256=?, code_size=?,"
                " config=? WHERE account_id=? AND name=? AND version=? AND revision_id=?",
                (
                    cfg.revision_id,
                    cfg.code_sha256_hex,
                    cfg.code_size,
                    cfg.to_json(),
                    cfg.account_id,
                    cfg.name,
                    cfg.version,
                    expected_revision,
                ),
            )
            if cur.rowcount == 1:
                return
            exists = self.db.execute(
                "SELECT 1 FROM function_versions WHERE account_id=? AND name=? AND version=?",
                (cfg.account_id, cfg.name, cfg.version),
            ).fetchone()
            if not exists:
                raise ResourceNotFound(f"Function not found: {cfg.arn}")
            raise ResourceConflict(
                "The operation cannot be performed at this time. The function was updated"
                " by another request. Try again."
            )

        await self._run(op)

    async def delete_function(self, account_id: str, name: str) -> list[FunctionConfig]:
        def op() -> list[FunctionConfig]:
            db = self.db
            db.execute("BEGIN IMMEDIATE")
            try:
                rows = db.execute(
                    "SELECT config FROM function_versions WHERE account_id=? AND name=?",
                    (account_id, name),
                ).fetchall()
                db.execute(
                    "DELETE FROM function_versions WHERE account_id=? AND name=?",
                    (account_id, name),
                )
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
            return [FunctionConfig.from_json(r[0]) for r in rows]

        return await self._run(op)

    async def code_in_use(self, sha256_hex: str) -> bool:
        def op() -> bool:
            row = self.db.execute(
                "SELECT 1 FROM function_versions WHERE code_sha256=? LIMIT 1", (sha256_hex,)
            ).fetchone()
            return row is not None

        return await self._run(op)

    async def account_usage(self, account_id: str) -> tuple[int, int]:
        def op() -> tuple[int, int]:
            row = self.db.execute(
                "SELECT COUNT(DISTINCT name), COALESCE(SUM(code_size), 0)"
                " FROM function_versions WHERE account_id=?",
                (account_id,),
            ).fetchone()
            return int(row[0]), int(row[1])

        return await self._run(op)

    async def list_all_latest(self) -> list[FunctionConfig]:
        def op() -> list[FunctionConfig]:
            rows = self.db.execute(
                "SELECT config FROM function_versions WHERE version=?", (LATEST,)
            ).fetchall()
            return [FunctionConfig.from_json(r[0]) for r in rows]

        return await self._run(op)

    async def aclose(self) -> None:
        if self._db is not None:
            await self._run(self.db.close)
            self._db = None
        self._pool.shutdown(wait=True)
