"""Persistence of HTTP APIs: one JSON document per API, plus a compiled-view cache.

An API's document holds its own fields and its integrations, routes and stages, all in
the apigatewayv2 wire form (camelCase members) so that reads return what was written.
Every control-plane change is a read-modify-write of one document inside one call on the
store's thread (atomic with respect to other writes); the front door reads a compiled
:class:`LiveApi` (route table ready) from an in-memory cache that writes invalidate.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from hearth.gateway.errors import NotFound
from hearth.gateway.routes import RouteTable
from hearth.versions._store import FeatureStore

T = TypeVar("T")

SCHEMA = """
CREATE TABLE IF NOT EXISTS http_apis (
    api_id     TEXT PRIMARY KEY,
    account_id TEXT NOT NULL,
    region     TEXT NOT NULL,
    doc        TEXT NOT NULL
);
"""
MAX_CACHE = 10_000


@dataclass(slots=True)
class ApiDoc:
    api_id: str
    account_id: str
    region: str
    api: dict[str, Any]
    integrations: dict[str, dict[str, Any]]
    routes: dict[str, dict[str, Any]]
    stages: dict[str, dict[str, Any]]
    deployments: dict[str, dict[str, Any]] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps(
            {
                "api": self.api,
                "integrations": self.integrations,
                "routes": self.routes,
                "stages": self.stages,
                "deployments": self.deployments,
            }
        )

    @staticmethod
    def from_row(api_id: str, account_id: str, region: str, text: str) -> ApiDoc:
        d = json.loads(text)
        return ApiDoc(
            api_id, account_id, region, d["api"], d["integrations"], d["routes"], d["stages"],
            d.get("deployments", {}),
        )  # fmt: skip


@dataclass(slots=True)
class LiveApi:
    """What the front door needs to serve one API."""

    doc: ApiDoc
    table: RouteTable


class ApiStore:
    def __init__(self, store: FeatureStore) -> None:
        self._store = store
        self._live: dict[str, LiveApi | None] = {}

    async def open(self) -> None:
        await self._store.add_schema(SCHEMA)

    async def create(self, doc: ApiDoc) -> None:
        def op(db: sqlite3.Connection) -> None:
            db.execute(
                "INSERT INTO http_apis VALUES (?,?,?,?)",
                (doc.api_id, doc.account_id, doc.region, doc.to_json()),
            )

        await self._store.run(op)
        self._live.pop(doc.api_id, None)

    async def read(self, account_id: str, api_id: str) -> ApiDoc:
        def op(db: sqlite3.Connection) -> ApiDoc:
            return _load(db, account_id, api_id)

        return await self._store.run(op)

    async def update(self, account_id: str, api_id: str, change: Callable[[ApiDoc], T]) -> T:
        """Apply ``change`` to the document and save it, atomically; return its result."""

        def op(db: sqlite3.Connection) -> T:
            doc = _load(db, account_id, api_id)
            result = change(doc)
            db.execute("UPDATE http_apis SET doc=? WHERE api_id=?", (doc.to_json(), api_id))
            return result

        try:
            return await self._store.run(op)
        finally:
            self._live.pop(api_id, None)

    async def delete(self, account_id: str, api_id: str) -> None:
        def op(db: sqlite3.Connection) -> None:
            _load(db, account_id, api_id)
            db.execute("DELETE FROM http_apis WHERE api_id=?", (api_id,))

        await self._store.run(op)
        self._live.pop(api_id, None)

    async def list(self, account_id: str) -> list[ApiDoc]:
        def op(db: sqlite3.Connection) -> list[ApiDoc]:
            rows = db.execute(
                "SELECT api_id, account_id, region, doc FROM http_apis WHERE account_id=?"
                " ORDER BY api_id",
                (account_id,),
            ).fetchall()
            return [ApiDoc.from_row(*r) for r in rows]

        return await self._store.run(op)

    async def live(self, api_id: str) -> LiveApi | None:
        """The compiled API for the front door (cached; None if there is no such API)."""
        if api_id in self._live:
            return self._live[api_id]

        def op(db: sqlite3.Connection) -> ApiDoc | None:
            row = db.execute(
                "SELECT api_id, account_id, region, doc FROM http_apis WHERE api_id=?", (api_id,)
            ).fetchone()
            return ApiDoc.from_row(*row) if row else None

        doc = await self._store.run(op)
        live = None
        if doc is not None:
            routes = [(r["routeKey"], r.get("target", "")) for r in doc.routes.values()]
            live = LiveApi(doc, RouteTable(routes))
        if len(self._live) >= MAX_CACHE:
            self._live.clear()
        self._live[api_id] = live
        return live


def _load(db: sqlite3.Connection, account_id: str, api_id: str) -> ApiDoc:
    row = db.execute(
        "SELECT api_id, account_id, region, doc FROM http_apis WHERE api_id=? AND account_id=?",
        (api_id, account_id),
    ).fetchone()
    if row is None:
        raise NotFound(f"Invalid API identifier specified {account_id}:{api_id}", "Api")
    return ApiDoc.from_row(*row)
