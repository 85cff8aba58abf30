"""Event invoke configs (per function version or alias): retries, event age, destinations.

Kept in the main store (control-plane state) and cached in memory whole: the dispatcher
reads one for every event it runs. Contract of :meth:`EventInvokeConfigs.effective`: the
config of exactly the qualifier that was invoked (an unqualified invoke is ``$LATEST``),
with AWS's defaults (2 retries, 6 hours) where nothing is set.
"""

from __future__ import annotations

import json
import sqlite3
import time
from dataclasses import dataclass, replace
from typing import Any

from hearth.store.sqlite import SqliteStore

SCHEMA = """
CREATE TABLE IF NOT EXISTS event_invoke_configs (
    account_id    TEXT NOT NULL,
    function_name TEXT NOT NULL,
    qualifier     TEXT NOT NULL,
    config        TEXT NOT NULL,
    PRIMARY KEY (account_id, function_name, qualifier)
);
"""

DEFAULT_RETRIES = 2
DEFAULT_MAX_AGE = 21_600


@dataclass(frozen=True, slots=True)
class EventInvokeConfig:
    max_retries: int | None = None
    max_age: int | None = None
    on_success: str = ""
    on_failure: str = ""
    last_modified: float = 0.0

    @property
    def retries(self) -> int:
        return DEFAULT_RETRIES if self.max_retries is None else self.max_retries

    @property
    def age(self) -> int:
        return DEFAULT_MAX_AGE if self.max_age is None else self.max_age

    def to_json(self) -> str:
        return json.dumps(
            {
                "max_retries": self.max_retries,
                "max_age": self.max_age,
                "on_success": self.on_success,
                "on_failure": self.on_failure,
                "last_modified": self.last_modified,
            }
        )

    @classmethod
    def from_json(cls, text: str) -> EventInvokeConfig:
        raw: dict[str, Any] = json.loads(text)
        return cls(**raw)

    def wire(self, qualified_arn: str) -> dict[str, Any]:
        doc: dict[str, Any] = {"LastModified": self.last_modified, "FunctionArn": qualified_arn}
        if self.max_retries is not None:
            doc["MaximumRetryAttempts"] = self.max_retries
        if self.max_age is not None:
            doc["MaximumEventAgeInSeconds"] = self.max_age
        doc["DestinationConfig"] = {
            "OnSuccess": {"Destination": self.on_success} if self.on_success else {},
            "OnFailure": {"Destination": self.on_failure} if self.on_failure else {},
        }
        return doc


class EventInvokeConfigs:
    def __init__(self, store: SqliteStore) -> None:
        self._store = store
        self._cache: dict[tuple[str, str, str], EventInvokeConfig] = {}

    async def open(self) -> None:
        await self._store.add_schema(SCHEMA)

        def load(db: sqlite3.Connection) -> list[tuple[str, str, str, str]]:
            return db.execute("SELECT * FROM event_invoke_configs").fetchall()

        for account, name, qualifier, text in await self._store.run(load):
            self._cache[(account, name, qualifier)] = EventInvokeConfig.from_json(text)

    def get(self, account_id: str, name: str, qualifier: str) -> EventInvokeConfig | None:
        return self._cache.get((account_id, name, qualifier))

    def effective(self, account_id: str, name: str, qualifier: str) -> EventInvokeConfig:
        return self._cache.get((account_id, name, qualifier)) or EventInvokeConfig()

    def list(self, account_id: str, name: str) -> list[tuple[str, EventInvokeConfig]]:
        return sorted(
            (q, c) for (a, n, q), c in self._cache.items() if a == account_id and n == name
        )

    async def put(
        self, account_id: str, name: str, qualifier: str, cfg: EventInvokeConfig
    ) -> EventInvokeConfig:
        cfg = replace(cfg, last_modified=time.time())

        def op(db: sqlite3.Connection) -> None:
            db.execute(
                "INSERT OR REPLACE INTO event_invoke_configs VALUES (?,?,?,?)",
                (account_id, name, qualifier, cfg.to_json()),
            )

        await self._store.run(op)
        self._cache[(account_id, name, qualifier)] = cfg
        return cfg

    async def delete(self, account_id: str, name: str, qualifier: str | None = None) -> None:
        """Delete one qualifier's config, or every config of the function (``None``)."""

        def op(db: sqlite3.Connection) -> None:
            if qualifier is None:
                db.execute(
                    "DELETE FROM event_invoke_configs WHERE account_id=? AND function_name=?",
                    (account_id, name),
                )
            else:
                db.execute(
                    "DELETE FROM event_invoke_configs WHERE account_id=? AND function_name=?"
                    " AND qualifier=?",
                    (account_id, name, qualifier),
                )

        await self._store.run(op)
        for key in list(self._cache):
            if key[0] == account_id and key[1] == name and qualifier in (None, key[2]):
                del self._cache[key]
