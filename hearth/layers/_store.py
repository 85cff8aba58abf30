"""Layer versions in the SQLite store, content in a code store of their own.

Layer zips live in their own :class:`~hearth.code.CodeStore` (``<data>/layers``), apart
from function packages, so the function store's garbage collection never removes a
layer's content. ``DeleteLayerVersion`` only marks the row deleted: the content stays,
because functions that already use the version keep working on Lambda, and the row
keeps the ARN → content mapping for them (no garbage collection of layer content yet).
Version numbers count up per layer name and are never reused, as on Lambda.
"""

from __future__ import annotations

import dataclasses
import json
import sqlite3
from collections.abc import Awaitable, Callable
from typing import Protocol, TypeVar

from hearth.layers._model import LayerVersion

T = TypeVar("T")

SCHEMA = """
CREATE TABLE IF NOT EXISTS layer_names (
    account_id   TEXT NOT NULL,
    name         TEXT NOT NULL,
    last_version INTEGER NOT NULL,
    PRIMARY KEY (account_id, name)
);
CREATE TABLE IF NOT EXISTS layer_versions (
    account_id    TEXT NOT NULL,
    name          TEXT NOT NULL,
    version       INTEGER NOT NULL,
    region        TEXT NOT NULL,
    sha256_hex    TEXT NOT NULL,
    sha256_b64    TEXT NOT NULL,
    code_size     INTEGER NOT NULL,
    unzipped_size INTEGER NOT NULL,
    description   TEXT NOT NULL,
    runtimes      TEXT NOT NULL,
    architectures TEXT NOT NULL,
    license_info  TEXT NOT NULL,
    created       TEXT NOT NULL,
    deleted       INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (account_id, name, version)
);
"""

_CACHE_MAX = 10_000
_COLUMNS = (
    "account_id, region, name, version, sha256_hex, sha256_b64, code_size, unzipped_size,"
    " description, runtimes, architectures, license_info, created"
)


class StoreLike(Protocol):
    def run(self, fn: Callable[[sqlite3.Connection], T]) -> Awaitable[T]: ...

    async def add_schema(self, script: str) -> None: ...


def _row(r: tuple[object, ...]) -> LayerVersion:
    return LayerVersion(
        account_id=str(r[0]),
        region=str(r[1]),
        name=str(r[2]),
        version=int(r[3]),  # type: ignore[call-overload]
        sha256_hex=str(r[4]),
        sha256_b64=str(r[5]),
        code_size=int(r[6]),  # type: ignore[call-overload]
        unzipped_size=int(r[7]),  # type: ignore[call-overload]
        description=str(r[8]),
        runtimes=tuple(json.loads(str(r[9]))),
        architectures=tuple(json.loads(str(r[10]))),
        license_info=str(r[11]),
        created=str(r[12]),
    )


class LayerStore:
    """Rows of layer versions. Lookups for functions see deleted versions too."""

    def __init__(self, store: StoreLike) -> None:
        self._store = store
        self._by_arn: dict[str, LayerVersion] = {}
        """Immutable versions, cached by ARN for the worker's cold starts."""

    async def open(self) -> None:
        await self._store.add_schema(SCHEMA)

    async def publish(self, draft: LayerVersion) -> LayerVersion:
        """Insert ``draft`` as the next version of its layer; return it numbered."""

        def op(db: sqlite3.Connection) -> LayerVersion:
            db.execute("BEGIN IMMEDIATE")
            try:
                row = db.execute(
                    "SELECT last_version FROM layer_names WHERE account_id=? AND name=?",
                    (draft.account_id, draft.name),
                ).fetchone()
                version = (int(row[0]) if row else 0) + 1
                db.execute(
                    "INSERT INTO layer_names VALUES (?,?,?) ON CONFLICT (account_id, name)"
                    " DO UPDATE SET last_version=excluded.last_version",
                    (draft.account_id, draft.name, version),
                )
                d = draft
                db.execute(
                    f"INSERT INTO layer_versions ({_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
                    (
                        d.account_id, d.region, d.name, version, d.sha256_hex, d.sha256_b64,
                        d.code_size, d.unzipped_size, d.description, json.dumps(d.runtimes),
                        json.dumps(d.architectures), d.license_info, d.created,
                    ),
                )  # fmt: skip
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
            return dataclasses.replace(draft, version=version)

        return await self._store.run(op)

    async def get(
        self, account_id: str, name: str, version: int, *, include_deleted: bool = False
    ) -> LayerVersion | None:
        arn_key = f"{account_id}:{name}:{version}"
        if include_deleted and arn_key in self._by_arn:
            return self._by_arn[arn_key]
        deleted = "" if include_deleted else " AND deleted=0"

        def op(db: sqlite3.Connection) -> LayerVersion | None:
            r = db.execute(
                f"SELECT {_COLUMNS} FROM layer_versions"
                f" WHERE account_id=? AND name=? AND version=?{deleted}",
                (account_id, name, version),
            ).fetchone()
            return _row(r) if r else None

        lv = await self._store.run(op)
        if lv is not None:
            if len(self._by_arn) >= _CACHE_MAX:
                self._by_arn.clear()  # a bound, not an LRU: refills from the store
            self._by_arn[arn_key] = lv
        return lv

    async def versions(self, account_id: str, name: str) -> list[LayerVersion]:
        """Live versions of one layer, newest first."""

        def op(db: sqlite3.Connection) -> list[LayerVersion]:
            rows = db.execute(
                f"SELECT {_COLUMNS} FROM layer_versions WHERE account_id=? AND name=?"
                " AND deleted=0 ORDER BY version DESC",
                (account_id, name),
            ).fetchall()
            return [_row(r) for r in rows]

        return await self._store.run(op)

    async def all_live(self, account_id: str) -> list[LayerVersion]:
        """Every live version of the account, by name then newest first."""

        def op(db: sqlite3.Connection) -> list[LayerVersion]:
            rows = db.execute(
                f"SELECT {_COLUMNS} FROM layer_versions WHERE account_id=? AND deleted=0"
                " ORDER BY name, version DESC",
                (account_id,),
            ).fetchall()
            return [_row(r) for r in rows]

        return await self._store.run(op)

    async def delete(self, account_id: str, name: str, version: int) -> None:
        def op(db: sqlite3.Connection) -> None:
            db.execute(
                "UPDATE layer_versions SET deleted=1 WHERE account_id=? AND name=? AND version=?",
                (account_id, name, version),
            )

        await self._store.run(op)
