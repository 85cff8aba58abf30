"""Tables of API keys, usage plans, their keys and per-day request counts.

Counts are written to the store on every request that a plan admits (one small
``INSERT ... ON CONFLICT`` on the store's thread), so they survive a restart or a crash
of the server; a quota is enforced against the sum of the days in its current period
(DAY: today, WEEK: since Monday, MONTH: since the 1st, all in UTC, as API Gateway
counts). The quota check and the increment happen in one call on the store's thread,
so concurrent requests cannot both take the last unit of a quota.
"""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
from dataclasses import dataclass
from typing import Any

SCHEMA = """
CREATE TABLE IF NOT EXISTS api_keys (
    id         TEXT PRIMARY KEY,
    account_id TEXT NOT NULL,
    value      TEXT NOT NULL UNIQUE,
    doc        TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS usage_plans (
    id         TEXT PRIMARY KEY,
    account_id TEXT NOT NULL,
    doc        TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS usage_plan_keys (
    plan_id TEXT NOT NULL,
    key_id  TEXT NOT NULL,
    PRIMARY KEY (plan_id, key_id)
);
CREATE TABLE IF NOT EXISTS usage_counts (
    plan_id TEXT NOT NULL,
    key_id  TEXT NOT NULL,
    day     TEXT NOT NULL,
    count   INTEGER NOT NULL,
    PRIMARY KEY (plan_id, key_id, day)
);
"""


def period_start(period: str, today: dt.date) -> dt.date:
    if period == "WEEK":
        return today - dt.timedelta(days=today.weekday())
    if period == "MONTH":
        return today.replace(day=1)
    return today


@dataclass(frozen=True, slots=True)
class Admission:
    """What the key check learned: the plan and key, and the plan's limits."""

    plan_id: str
    key_id: str
    throttle: dict[str, Any]
    quota: dict[str, Any]


def find_admission(
    db: sqlite3.Connection, api_id: str, stage: str, key_value: str | None
) -> tuple[bool, Admission | None]:
    """(stage is metered, admission). A metered stage without a valid key → (True, None)."""
    plans = []
    for plan_id, doc in db.execute("SELECT id, doc FROM usage_plans").fetchall():
        d = json.loads(doc)
        if any(s.get("apiId") == api_id and s.get("stage") == stage for s in d["apiStages"]):
            plans.append((plan_id, d))
    if not plans:
        return False, None
    if not key_value:
        return True, None
    row = db.execute("SELECT id, doc FROM api_keys WHERE value=?", (key_value,)).fetchone()
    if row is None or not json.loads(row[1]).get("enabled", False):
        return True, None
    key_id = row[0]
    for plan_id, d in plans:
        linked = db.execute(
            "SELECT 1 FROM usage_plan_keys WHERE plan_id=? AND key_id=?", (plan_id, key_id)
        ).fetchone()
        if linked is not None:
            return True, Admission(plan_id, key_id, d.get("throttle") or {}, d.get("quota") or {})
    return True, None


def used_since(db: sqlite3.Connection, plan_id: str, key_id: str, start: dt.date) -> int:
    row = db.execute(
        "SELECT COALESCE(SUM(count), 0) FROM usage_counts WHERE plan_id=? AND key_id=? AND day>=?",
        (plan_id, key_id, start.isoformat()),
    ).fetchone()
    return int(row[0])


def take_quota(db: sqlite3.Connection, a: Admission, today: dt.date) -> bool:
    """Count one request against the plan's quota; False (nothing counted) if used up."""
    limit = a.quota.get("limit")
    if limit is not None:
        start = period_start(str(a.quota.get("period", "DAY")), today)
        if used_since(db, a.plan_id, a.key_id, start) >= int(limit):
            return False
    db.execute(
        "INSERT INTO usage_counts VALUES (?,?,?,1) ON CONFLICT (plan_id, key_id, day)"
        " DO UPDATE SET count = count + 1",
        (a.plan_id, a.key_id, today.isoformat()),
    )
    return True


def usage_report(
    db: sqlite3.Connection,
    plan: dict[str, Any],
    key_id: str | None,
    start: dt.date,
    end: dt.date,
) -> dict[str, list[list[int]]]:
    """GetUsage's ``values``: per key, one ``[used, remaining]`` pair per day."""
    keys = [
        r[0]
        for r in db.execute(
            "SELECT key_id FROM usage_plan_keys WHERE plan_id=? ORDER BY key_id", (plan["id"],)
        ).fetchall()
    ]
    if key_id is not None:
        keys = [k for k in keys if k == key_id]
    quota = plan.get("quota") or {}
    out: dict[str, list[list[int]]] = {}
    for k in keys:
        rows = dict(
            db.execute(
                "SELECT day, count FROM usage_counts WHERE plan_id=? AND key_id=?"
                " AND day>=? AND day<=?",
                (plan["id"], k, start.isoformat(), end.isoformat()),
            ).fetchall()
        )
        series = []
        day = start
        while day <= end:
            used = int(rows.get(day.isoformat(), 0))
            if quota.get("limit") is not None:
                p_start = period_start(str(quota.get("period", "DAY")), day)
                so_far = used_since_until(db, plan["id"], k, p_start, day)
                remaining = max(int(quota["limit"]) - so_far, 0)
            else:
                remaining = 0
            series.append([used, remaining])
            day += dt.timedelta(days=1)
        out[k] = series
    return out


def used_since_until(
    db: sqlite3.Connection, plan_id: str, key_id: str, start: dt.date, end: dt.date
) -> int:
    row = db.execute(
        "SELECT COALESCE(SUM(count), 0) FROM usage_counts WHERE plan_id=? AND key_id=?"
        " AND day>=? AND day<=?",
        (plan_id, key_id, start.isoformat(), end.isoformat()),
    ).fetchone()
    return int(row[0])
