"""API keys and usage plans (the API Gateway v1 REST-JSON subset), applied to HTTP APIs.

**A Hearth extension:** on AWS, usage plans and API keys bind to REST API stages only;
Hearth binds them to HTTP API stages (``apiStages`` entries name an HTTP API id and one
of its stages). A stage that is in any usage plan requires an ``x-api-key`` header naming
an enabled key of one of those plans: a missing or unknown key is a 403
``{"message":"Forbidden"}``, the plan's ``throttle`` (token bucket per plan and key) a
429 ``{"message":"Too Many Requests"}``, and a used-up ``quota`` a 429
``{"message":"Limit Exceeded"}``. Counts are persisted (see :mod:`usage_store`).

Operations: CreateApiKey, GetApiKey(s), UpdateApiKey (patch ``/enabled``, ``/name``,
``/description``), DeleteApiKey; CreateUsagePlan, GetUsagePlan(s), UpdateUsagePlan
(patch ``/name``, ``/description``, ``/throttle/*``, ``/quota/*``, add/remove
``/apiStages``), DeleteUsagePlan; CreateUsagePlanKey, GetUsagePlanKey(s),
DeleteUsagePlanKey; GetUsage.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import sqlite3
import string
import time
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qsl, unquote

from hearth.api.types import Principal, Request, Response
from hearth.api.wire import json_response, parse_json_body
from hearth.errors import AwsError
from hearth.gateway.errors import BadRequest, Conflict, NotFound, apigw_error
from hearth.gateway.throttle import Buckets
from hearth.gateway.url_door import message
from hearth.gateway.usage_shapes import (
    check_quota,
    check_throttle,
    page,
    plan_key_doc,
    random_id,
    today_utc,
)
from hearth.gateway.usage_store import find_admission, take_quota, usage_report
from hearth.versions._store import FeatureStore

Handler = Callable[[Principal, Request, "re.Match[str]"], Awaitable[Response]]
_ALNUM = string.ascii_letters + string.digits


class UsagePlans:
    """The v1 service (``App.add_service``) and the key check the HTTP API door calls."""

    def __init__(
        self,
        store: FeatureStore,
        buckets: Buckets,
        api_stage_exists: Callable[[str, str, str], Awaitable[bool]],
        today: Callable[[], dt.date] = today_utc,
    ) -> None:
        self._store = store
        self._buckets = buckets
        self._api_stage_exists = api_stage_exists
        self._today = today
        self._metered: set[tuple[str, str]] | None = None
        k, u = r"/apikeys/(?P<key>[^/]+)/?", r"/usageplans/(?P<plan>[^/]+)"
        self._routes: list[tuple[str, re.Pattern[str], Handler]] = [
            ("POST", re.compile(r"/apikeys/?"), self._create_key),
            ("GET", re.compile(r"/apikeys/?"), self._get_keys),
            ("GET", re.compile(k), self._get_key),
            ("PATCH", re.compile(k), self._update_key),
            ("DELETE", re.compile(k), self._delete_key),
            ("POST", re.compile(r"/usageplans/?"), self._create_plan),
            ("GET", re.compile(r"/usageplans/?"), self._get_plans),
            ("GET", re.compile(u + "/?"), self._get_plan),
            ("PATCH", re.compile(u + "/?"), self._update_plan),
            ("DELETE", re.compile(u + "/?"), self._delete_plan),
            ("POST", re.compile(u + "/keys/?"), self._create_plan_key),
            ("GET", re.compile(u + "/keys/?"), self._get_plan_keys),
            ("GET", re.compile(u + r"/keys/(?P<key>[^/]+)/?"), self._get_plan_key),
            ("DELETE", re.compile(u + r"/keys/(?P<key>[^/]+)/?"), self._delete_plan_key),
            ("GET", re.compile(u + "/usage/?"), self._get_usage),
        ]

    # -- Service protocol -------------------------------------------------------------
    def claims(self, req: Request) -> bool:
        p = req.path
        return p.startswith(("/apikeys", "/usageplans")) and (
            p in ("/apikeys", "/usageplans") or p[len(p.split("/")[1]) + 1] == "/"
        )

    async def __call__(self, principal: Principal, req: Request) -> Response:
        for method, pattern, handler in self._routes:
            m = pattern.fullmatch(req.path)
            if m is not None and method == req.method:
                return await handler(principal, req, m)
        raise NotFound(f"Unknown operation {req.method} {req.path}")

    def error(self, err: AwsError) -> Response:
        return apigw_error(err)

    # -- the key check (front door) -----------------------------------------------------
    async def _metered_stages(self) -> set[tuple[str, str]]:
        """Every (API id, stage) some usage plan names; cached until a plan changes, so an
        HTTP API request to a stage without a plan costs no store round trip."""
        if self._metered is None:

            def op(db: sqlite3.Connection) -> set[tuple[str, str]]:
                out: set[tuple[str, str]] = set()
                for (doc,) in db.execute("SELECT doc FROM usage_plans").fetchall():
                    out.update((s["apiId"], s["stage"]) for s in json.loads(doc)["apiStages"])
                return out

            self._metered = await self._store.run(op)
        return self._metered

    async def check(self, api_id: str, stage: str, api_key: str | None) -> Response | None:
        if (api_id, stage) not in await self._metered_stages():
            return None
        metered, a = await self._store.run(lambda db: find_admission(db, api_id, stage, api_key))
        if not metered:
            return None
        if a is None:
            return message(403, "Forbidden")
        if a.throttle:
            rate = float(a.throttle.get("rateLimit", 10_000.0))
            burst = int(a.throttle.get("burstLimit", 5_000))
            if not self._buckets.allow(("plan", a.plan_id, a.key_id), rate, burst):
                return message(429, "Too Many Requests")
        today = self._today()

        def op(db: sqlite3.Connection) -> bool:
            return take_quota(db, a, today)

        if not await self._store.run(op):
            return message(429, "Limit Exceeded")
        return None

    # -- helpers ----------------------------------------------------------------------
    async def _row(self, table: str, account: str, ident: str, label: str) -> dict[str, Any]:
        def op(db: sqlite3.Connection) -> Any:
            return db.execute(
                f"SELECT doc FROM {table} WHERE id=? AND account_id=?", (ident, account)
            ).fetchone()

        row = await self._store.run(op)
        if row is None:
            raise NotFound(f"Invalid {label} identifier specified")
        doc: dict[str, Any] = json.loads(row[0])
        return doc

    async def _save(self, table: str, doc: dict[str, Any]) -> None:
        def op(db: sqlite3.Connection) -> None:
            db.execute(f"UPDATE {table} SET doc=? WHERE id=?", (json.dumps(doc), doc["id"]))

        await self._store.run(op)

    @staticmethod
    def _key_view(doc: dict[str, Any], with_value: bool) -> dict[str, Any]:
        out = {k: v for k, v in doc.items() if k != "value"}
        if with_value:
            out["value"] = doc["value"]
        return out

    # -- API keys ---------------------------------------------------------------------
    async def _create_key(self, p: Principal, req: Request, m: re.Match[str]) -> Response:
        body = parse_json_body(req.body)
        value = body.get("value") or random_id(40, _ALNUM)
        if not isinstance(value, str) or len(value) < 20:
            raise BadRequest("API Key value should be at least 20 characters")
        now = int(time.time())
        doc: dict[str, Any] = {
            "id": random_id(10),
            "value": value,
            "name": str(body.get("name") or ""),
            "description": str(body.get("description") or ""),
            "enabled": bool(body.get("enabled", False)),
            "createdDate": now,
            "lastUpdatedDate": now,
            "stageKeys": [],
            "tags": body.get("tags") or {},
        }
        if body.get("customerId"):
            doc["customerId"] = str(body["customerId"])

        def op(db: sqlite3.Connection) -> None:
            try:
                db.execute(
                    "INSERT INTO api_keys VALUES (?,?,?,?)",
                    (doc["id"], p.account_id, value, json.dumps(doc)),
                )
            except sqlite3.IntegrityError:
                raise Conflict("API Key already exists") from None

        await self._store.run(op)
        return json_response(201, self._key_view(doc, True))

    async def _get_key(self, p: Principal, req: Request, m: re.Match[str]) -> Response:
        doc = await self._row("api_keys", p.account_id, unquote(m.group("key")), "API Key")
        include = dict(parse_qsl(req.query)).get("includeValue") == "true"
        return json_response(200, self._key_view(doc, include))

    async def _get_keys(self, p: Principal, req: Request, m: re.Match[str]) -> Response:
        q = dict(parse_qsl(req.query))

        def op(db: sqlite3.Connection) -> list[Any]:
            return db.execute(
                "SELECT doc FROM api_keys WHERE account_id=? ORDER BY id", (p.account_id,)
            ).fetchall()

        docs = [json.loads(r[0]) for r in await self._store.run(op)]
        if q.get("name"):
            docs = [d for d in docs if d["name"].startswith(q["name"])]
        if q.get("customerId"):
            docs = [d for d in docs if d.get("customerId") == q["customerId"]]
        include = q.get("includeValues") == "true"
        return json_response(200, page([self._key_view(d, include) for d in docs], q))

    async def _update_key(self, p: Principal, req: Request, m: re.Match[str]) -> Response:
        doc = await self._row("api_keys", p.account_id, unquote(m.group("key")), "API Key")
        for op in parse_json_body(req.body).get("patchOperations") or []:
            path, value = op.get("path"), op.get("value")
            if op.get("op") != "replace" or path not in ("/enabled", "/name", "/description"):
                raise BadRequest(f"Invalid patch path {path}")
            doc[path[1:]] = (value == "true") if path == "/enabled" else str(value or "")
        doc["lastUpdatedDate"] = int(time.time())
        await self._save("api_keys", doc)
        return json_response(200, self._key_view(doc, False))

    async def _delete_key(self, p: Principal, req: Request, m: re.Match[str]) -> Response:
        ident = unquote(m.group("key"))
        await self._row("api_keys", p.account_id, ident, "API Key")

        def op(db: sqlite3.Connection) -> None:
            db.execute("DELETE FROM api_keys WHERE id=?", (ident,))
            db.execute("DELETE FROM usage_plan_keys WHERE key_id=?", (ident,))

        await self._store.run(op)
        return Response(202, [("Content-Type", "application/json")], b"")

    # -- usage plans ------------------------------------------------------------------
    async def _stages(self, p: Principal, value: Any) -> list[dict[str, str]]:
        if not isinstance(value, list):
            raise BadRequest("Invalid apiStages: must be a list")
        out = []
        for s in value:
            if not isinstance(s, dict) or not s.get("apiId") or not s.get("stage"):
                raise BadRequest("Invalid apiStages entry: apiId and stage are required")
            if not await self._api_stage_exists(p.account_id, s["apiId"], s["stage"]):
                raise BadRequest(
                    f"Invalid API Stage {{api: {s['apiId']}, stage: {s['stage']}}} specified"
                    " for usageplan"
                )
            out.append({"apiId": str(s["apiId"]), "stage": str(s["stage"])})
        return out

    async def _create_plan(self, p: Principal, req: Request, m: re.Match[str]) -> Response:
        body = parse_json_body(req.body)
        if not isinstance(body.get("name"), str) or not body["name"]:
            raise BadRequest("Invalid input: name is required")
        doc: dict[str, Any] = {
            "id": random_id(6),
            "name": body["name"],
            "description": str(body.get("description") or ""),
            "apiStages": await self._stages(p, body.get("apiStages") or []),
            "tags": body.get("tags") or {},
        }
        if body.get("throttle") is not None:
            doc["throttle"] = check_throttle(body["throttle"])
        if body.get("quota") is not None:
            doc["quota"] = check_quota(body["quota"])

        def op(db: sqlite3.Connection) -> None:
            db.execute(
                "INSERT INTO usage_plans VALUES (?,?,?)", (doc["id"], p.account_id, json.dumps(doc))
            )

        await self._store.run(op)
        self._metered = None
        return json_response(201, doc)

    async def _get_plan(self, p: Principal, req: Request, m: re.Match[str]) -> Response:
        doc = await self._row("usage_plans", p.account_id, unquote(m.group("plan")), "Usage Plan")
        return json_response(200, doc)

    async def _get_plans(self, p: Principal, req: Request, m: re.Match[str]) -> Response:
        q = dict(parse_qsl(req.query))
        key_id = q.get("keyId")

        def op(db: sqlite3.Connection) -> list[Any]:
            if key_id:  # only the plans that key is in
                return db.execute(
                    "SELECT p.doc FROM usage_plans p JOIN usage_plan_keys u ON u.plan_id = p.id"
                    " WHERE p.account_id=? AND u.key_id=? ORDER BY p.id",
                    (p.account_id, key_id),
                ).fetchall()
            return db.execute(
                "SELECT doc FROM usage_plans WHERE account_id=? ORDER BY id", (p.account_id,)
            ).fetchall()

        return json_response(200, page([json.loads(r[0]) for r in await self._store.run(op)], q))

    async def _update_plan(self, p: Principal, req: Request, m: re.Match[str]) -> Response:
        doc = await self._row("usage_plans", p.account_id, unquote(m.group("plan")), "Usage Plan")
        for op in parse_json_body(req.body).get("patchOperations") or []:
            kind, path, value = op.get("op"), str(op.get("path") or ""), op.get("value")
            if kind == "replace" and path in ("/name", "/description"):
                doc[path[1:]] = str(value or "")
            elif kind == "replace" and path in ("/throttle/rateLimit", "/throttle/burstLimit"):
                t = dict(doc.get("throttle") or {})
                t[path.rsplit("/", 1)[1]] = float(value) if "rate" in path else int(value)
                doc["throttle"] = check_throttle(t)
            elif kind == "replace" and path in ("/quota/limit", "/quota/period"):
                q = dict(doc.get("quota") or {"period": "DAY", "limit": 0})
                q[path.rsplit("/", 1)[1]] = int(value) if path.endswith("limit") else value
                doc["quota"] = check_quota(q)
            elif kind in ("add", "remove") and path == "/apiStages":
                api_id, _, stage = str(value or "").partition(":")
                entry = {"apiId": api_id, "stage": stage}
                if kind == "add":
                    doc["apiStages"] = doc["apiStages"] + await self._stages(p, [entry])
                else:
                    doc["apiStages"] = [s for s in doc["apiStages"] if s != entry]
            else:
                raise BadRequest(f"Invalid patch operation {kind} {path}")
        await self._save("usage_plans", doc)
        self._metered = None
        return json_response(200, doc)

    async def _delete_plan(self, p: Principal, req: Request, m: re.Match[str]) -> Response:
        ident = unquote(m.group("plan"))
        await self._row("usage_plans", p.account_id, ident, "Usage Plan")

        def op(db: sqlite3.Connection) -> None:
            db.execute("DELETE FROM usage_plans WHERE id=?", (ident,))
            db.execute("DELETE FROM usage_plan_keys WHERE plan_id=?", (ident,))

        await self._store.run(op)
        self._metered = None
        return Response(202, [("Content-Type", "application/json")], b"")

    # -- usage plan keys and usage ------------------------------------------------------
    async def _create_plan_key(self, p: Principal, req: Request, m: re.Match[str]) -> Response:
        plan = await self._row("usage_plans", p.account_id, unquote(m.group("plan")), "Usage Plan")
        body = parse_json_body(req.body)
        if body.get("keyType") != "API_KEY":
            raise BadRequest("Invalid keyType: the valid key type is API_KEY")
        key = await self._row("api_keys", p.account_id, str(body.get("keyId") or ""), "API Key")

        def op(db: sqlite3.Connection) -> None:
            try:
                db.execute("INSERT INTO usage_plan_keys VALUES (?,?)", (plan["id"], key["id"]))
            except sqlite3.IntegrityError:
                raise Conflict("Usage Plan Key already exists") from None

        await self._store.run(op)
        return json_response(201, plan_key_doc(key))

    async def _plan_keys(self, p: Principal, plan_id: str) -> list[dict[str, Any]]:
        await self._row("usage_plans", p.account_id, plan_id, "Usage Plan")

        def op(db: sqlite3.Connection) -> list[Any]:
            return db.execute(
                "SELECT k.doc FROM usage_plan_keys u JOIN api_keys k ON k.id = u.key_id"
                " WHERE u.plan_id=? ORDER BY k.id",
                (plan_id,),
            ).fetchall()

        return [json.loads(r[0]) for r in await self._store.run(op)]

    async def _get_plan_keys(self, p: Principal, req: Request, m: re.Match[str]) -> Response:
        keys = await self._plan_keys(p, unquote(m.group("plan")))
        q = dict(parse_qsl(req.query))
        if q.get("name"):
            keys = [k for k in keys if k["name"].startswith(q["name"])]
        return json_response(200, page([plan_key_doc(k) for k in keys], q))

    async def _get_plan_key(self, p: Principal, req: Request, m: re.Match[str]) -> Response:
        keys = await self._plan_keys(p, unquote(m.group("plan")))
        for k in keys:
            if k["id"] == unquote(m.group("key")):
                return json_response(200, plan_key_doc(k))
        raise NotFound("Invalid Usage Plan Key identifier specified")

    async def _delete_plan_key(self, p: Principal, req: Request, m: re.Match[str]) -> Response:
        plan_id, key_id = unquote(m.group("plan")), unquote(m.group("key"))
        if key_id not in {k["id"] for k in await self._plan_keys(p, plan_id)}:
            raise NotFound("Invalid Usage Plan Key identifier specified")

        def op(db: sqlite3.Connection) -> None:
            db.execute(
                "DELETE FROM usage_plan_keys WHERE plan_id=? AND key_id=?", (plan_id, key_id)
            )

        await self._store.run(op)
        return Response(202, [("Content-Type", "application/json")], b"")

    async def _get_usage(self, p: Principal, req: Request, m: re.Match[str]) -> Response:
        plan = await self._row("usage_plans", p.account_id, unquote(m.group("plan")), "Usage Plan")
        q = dict(parse_qsl(req.query))
        try:
            start = dt.date.fromisoformat(q["startDate"])
            end = dt.date.fromisoformat(q["endDate"])
        except (KeyError, ValueError):
            raise BadRequest("startDate and endDate must be dates as YYYY-MM-DD") from None
        if end < start or (end - start).days > 90:
            raise BadRequest("The usage data period must be 0 to 90 days, endDate after startDate")
        key_id = q.get("keyId")

        def op(db: sqlite3.Connection) -> dict[str, list[list[int]]]:
            return usage_report(db, plan, key_id, start, end)

        values = await self._store.run(op)
        doc = {
            "usagePlanId": plan["id"],
            "startDate": start.isoformat(),
            "endDate": end.isoformat(),
            "values": values,
        }
        return json_response(200, doc)
