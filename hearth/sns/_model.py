"""Topics and subscriptions: the model, and its tables in the main store (kept whole in
memory, written through)."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import asdict, dataclass, field

from hearth.store.sqlite import SqliteStore

SCHEMA = """
CREATE TABLE IF NOT EXISTS sns_topics (
    arn TEXT PRIMARY KEY,
    doc TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS sns_subscriptions (
    arn TEXT PRIMARY KEY,
    doc TEXT NOT NULL
);
"""


@dataclass(slots=True)
class Topic:
    arn: str
    account_id: str
    region: str
    name: str
    attributes: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)


@dataclass(slots=True)
class Subscription:
    arn: str
    topic_arn: str
    account_id: str
    protocol: str
    endpoint: str
    attributes: dict[str, str] = field(default_factory=dict)


class SnsStore:
    def __init__(self, store: SqliteStore) -> None:
        self._store = store
        self.topics: dict[str, Topic] = {}
        self.subscriptions: dict[str, Subscription] = {}

    async def open(self) -> None:
        await self._store.add_schema(SCHEMA)

        def load(db: sqlite3.Connection) -> tuple[list[tuple[str]], list[tuple[str]]]:
            return (
                db.execute("SELECT doc FROM sns_topics").fetchall(),
                db.execute("SELECT doc FROM sns_subscriptions").fetchall(),
            )

        topics, subs = await self._store.run(load)
        for (doc,) in topics:
            t = Topic(**json.loads(doc))
            self.topics[t.arn] = t
        for (doc,) in subs:
            s = Subscription(**json.loads(doc))
            self.subscriptions[s.arn] = s

    def of_topic(self, topic_arn: str) -> list[Subscription]:
        return sorted(
            (s for s in self.subscriptions.values() if s.topic_arn == topic_arn),
            key=lambda s: s.arn,
        )

    async def put_topic(self, t: Topic) -> None:
        doc = json.dumps(asdict(t))
        await self._store.run(
            lambda db: db.execute("INSERT OR REPLACE INTO sns_topics VALUES (?,?)", (t.arn, doc))
        )
        self.topics[t.arn] = t

    async def delete_topic(self, t: Topic) -> None:
        subs = [s.arn for s in self.of_topic(t.arn)]

        def op(db: sqlite3.Connection) -> None:
            db.execute("DELETE FROM sns_topics WHERE arn=?", (t.arn,))
            db.executemany("DELETE FROM sns_subscriptions WHERE arn=?", [(a,) for a in subs])

        await self._store.run(op)
        self.topics.pop(t.arn, None)
        for arn in subs:
            self.subscriptions.pop(arn, None)

    async def put_subscription(self, s: Subscription) -> None:
        doc = json.dumps(asdict(s))
        await self._store.run(
            lambda db: db.execute(
                "INSERT OR REPLACE INTO sns_subscriptions VALUES (?,?)", (s.arn, doc)
            )
        )
        self.subscriptions[s.arn] = s

    async def delete_subscription(self, s: Subscription) -> None:
        await self._store.run(
            lambda db: db.execute("DELETE FROM sns_subscriptions WHERE arn=?", (s.arn,))
        )
        self.subscriptions.pop(s.arn, None)
