"""Durable state of versions and aliases, in the store's SQLite database.

Tables (created with ``add_schema``, beside the core ``function_versions`` table whose
rows already hold one snapshot per (account, function, version)):

* ``version_counters`` — the last version number handed out per function, and the
  ``$LATEST`` revision it was published from. Numbers are never reused while the
  function exists (deleting version 3 leaves a gap); deleting the function drops the
  counter, as AWS restarts at 1 for a re-created function.
* ``aliases`` — one row per alias: primary version, optional second version with its
  weight, description and a RevisionId changed on every update.

Every statement runs on the store's single thread, so a read-modify-write inside one
``run`` call is atomic with respect to other control-plane writes.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol, TypeVar

from hearth.types import FunctionConfig

T = TypeVar("T")

SCHEMA = """
CREATE TABLE IF NOT EXISTS version_counters (
    account_id    TEXT NOT NULL,
    name          TEXT NOT NULL,
    last_version  INTEGER NOT NULL,
    from_revision TEXT NOT NULL,
    PRIMARY KEY (account_id, name)
);
CREATE TABLE IF NOT EXISTS aliases (
    account_id   TEXT NOT NULL,
    function     TEXT NOT NULL,
    name         TEXT NOT NULL,
    version      TEXT NOT NULL,
    description  TEXT NOT NULL,
    weights      TEXT NOT NULL,
    revision_id  TEXT NOT NULL,
    PRIMARY KEY (account_id, function, name)
);
CREATE TABLE IF NOT EXISTS policy_revisions (
    account_id TEXT NOT NULL,
    function   TEXT NOT NULL,
    version    TEXT NOT NULL,
    base       TEXT NOT NULL,
    revision   TEXT NOT NULL,
    PRIMARY KEY (account_id, function, version)
);
"""


class FeatureStore(Protocol):
    """The part of the SQLite store a feature uses: its own SQL on the store's thread."""

    async def run(self, fn: Callable[[sqlite3.Connection], T]) -> T: ...

    async def add_schema(self, script: str) -> None: ...


@dataclass(frozen=True, slots=True)
class Alias:
    account_id: str
    function: str
    name: str
    version: str
    description: str
    revision_id: str
    weights: dict[str, float] = field(default_factory=dict)

    @staticmethod
    def from_row(row: tuple[str, str, str, str, str, str, str]) -> Alias:
        account, function, name, version, description, weights, revision = row
        return Alias(account, function, name, version, description, revision, json.loads(weights))


ALIAS_COLUMNS = "account_id, function, name, version, description, weights, revision_id"


def load_version_rows(db: sqlite3.Connection, account_id: str, name: str) -> list[FunctionConfig]:
    """Every snapshot of a function: ``$LATEST`` first, then versions in numeric order."""
    rows = db.execute(
        "SELECT version, config FROM function_versions WHERE account_id=? AND name=?",
        (account_id, name),
    ).fetchall()
    cfgs = [FunctionConfig.from_json(r[1]) for r in rows]
    return sorted(cfgs, key=lambda c: -1 if not c.version.isdigit() else int(c.version))


def get_alias(db: sqlite3.Connection, account_id: str, function: str, name: str) -> Alias | None:
    row = db.execute(
        f"SELECT {ALIAS_COLUMNS} FROM aliases WHERE account_id=? AND function=? AND name=?",
        (account_id, function, name),
    ).fetchone()
    return Alias.from_row(row) if row else None


def aliases_of(db: sqlite3.Connection, account_id: str, function: str) -> list[Alias]:
    rows = db.execute(
        f"SELECT {ALIAS_COLUMNS} FROM aliases WHERE account_id=? AND function=? ORDER BY name",
        (account_id, function),
    ).fetchall()
    return [Alias.from_row(r) for r in rows]


def forget_function(db: sqlite3.Connection, account_id: str, name: str) -> None:
    """Drop the counter and aliases of a deleted function."""
    db.execute("DELETE FROM version_counters WHERE account_id=? AND name=?", (account_id, name))
    db.execute("DELETE FROM aliases WHERE account_id=? AND function=?", (account_id, name))


def shown_revision(
    db: sqlite3.Connection, account_id: str, name: str, version: str, stored: str
) -> str:
    """The RevisionId a function version shows: a permission change's, made from the
    ``stored`` revision, while that is still the version's; else ``stored``."""
    row = db.execute(
        "SELECT base, revision FROM policy_revisions WHERE account_id=? AND function=?"
        " AND version=?",
        (account_id, name, version),
    ).fetchone()
    return str(row[1]) if row is not None and row[0] == stored else stored


def shown_revisions(
    db: sqlite3.Connection, account_id: str, cfgs: list[FunctionConfig]
) -> list[str]:
    """:func:`shown_revision` of many versions of an account, in one query."""
    rows = db.execute(
        "SELECT function, version, base, revision FROM policy_revisions WHERE account_id=?",
        (account_id,),
    ).fetchall()
    made = {(str(r[0]), str(r[1])): (str(r[2]), str(r[3])) for r in rows}
    shown = []
    for c in cfgs:
        base, revision = made.get((c.name, c.version), ("", ""))
        shown.append(revision if base == c.revision_id else c.revision_id)
    return shown
