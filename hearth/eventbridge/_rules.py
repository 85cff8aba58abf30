"""Rules and their targets: the model, its wire form and its table in the main store.

Kept whole in memory (the scheduler and PutEvents read every rule of an account) and
written through to SQLite, so rules and targets survive a restart; a schedule's next
firing is not stored (after a restart it is counted from the rule's creation again, and
firings missed while the server was down are not made up, as on EventBridge).
"""

from __future__ import annotations

import json
import sqlite3
import time
from dataclasses import asdict, dataclass, field
from typing import Any

from hearth.store.sqlite import SqliteStore

SCHEMA = """
CREATE TABLE IF NOT EXISTS eventbridge_rules (
    account_id TEXT NOT NULL,
    region     TEXT NOT NULL,
    name       TEXT NOT NULL,
    doc        TEXT NOT NULL,
    PRIMARY KEY (account_id, region, name)
);
"""

DEFAULT_BUS = "default"


@dataclass(slots=True)
class Rule:
    account_id: str
    region: str
    name: str
    state: str = "ENABLED"
    schedule: str = ""
    pattern: str = ""
    description: str = ""
    role_arn: str = ""
    created: float = field(default_factory=time.time)
    targets: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Target id -> the target as given (the members Hearth acts on, echoed back)."""
    tags: dict[str, str] = field(default_factory=dict)

    @property
    def arn(self) -> str:
        return f"arn:aws:events:{self.region}:{self.account_id}:rule/{self.name}"

    def wire(self) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "Name": self.name,
            "Arn": self.arn,
            "State": self.state,
            "EventBusName": DEFAULT_BUS,
        }
        if self.pattern:
            doc["EventPattern"] = self.pattern
        if self.schedule:
            doc["ScheduleExpression"] = self.schedule
        if self.description:
            doc["Description"] = self.description
        if self.role_arn:
            doc["RoleArn"] = self.role_arn
        return doc


class RuleStore:
    def __init__(self, store: SqliteStore) -> None:
        self._store = store
        self._rules: dict[tuple[str, str, str], Rule] = {}

    async def open(self) -> None:
        await self._store.add_schema(SCHEMA)

        def load(db: sqlite3.Connection) -> list[tuple[str]]:
            return db.execute("SELECT doc FROM eventbridge_rules").fetchall()

        for (doc,) in await self._store.run(load):
            rule = Rule(**json.loads(doc))
            self._rules[(rule.account_id, rule.region, rule.name)] = rule

    def get(self, account_id: str, region: str, name: str) -> Rule | None:
        return self._rules.get((account_id, region, name))

    def by_arn(self, arn: str) -> Rule | None:
        """The rule of a ``arn:aws:events:<region>:<account>:rule/<name>`` ARN."""
        parts = arn.split(":", 5)
        if len(parts) != 6 or parts[2] != "events" or not parts[5].startswith("rule/"):
            return None
        return self.get(parts[4], parts[3], parts[5][len("rule/") :])

    def all(self) -> list[Rule]:
        return list(self._rules.values())

    def of(self, account_id: str, region: str) -> list[Rule]:
        return sorted(
            (r for r in self._rules.values() if (r.account_id, r.region) == (account_id, region)),
            key=lambda r: r.name,
        )

    async def put(self, rule: Rule) -> None:
        doc = json.dumps(asdict(rule))

        def op(db: sqlite3.Connection) -> None:
            db.execute(
                "INSERT OR REPLACE INTO eventbridge_rules VALUES (?,?,?,?)",
                (rule.account_id, rule.region, rule.name, doc),
            )

        await self._store.run(op)
        self._rules[(rule.account_id, rule.region, rule.name)] = rule

    async def delete(self, rule: Rule) -> None:
        def op(db: sqlite3.Connection) -> None:
            db.execute(
                "DELETE FROM eventbridge_rules WHERE account_id=? AND region=? AND name=?",
                (rule.account_id, rule.region, rule.name),
            )

        await self._store.run(op)
        self._rules.pop((rule.account_id, rule.region, rule.name), None)
