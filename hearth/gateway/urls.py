"""Function URL configurations: Create / Get / Update / Delete / ListFunctionUrlConfigs.

A function (``$LATEST``, or one alias through ``Qualifier``) has at most one URL. Its id
is 32 random lower-case hex characters, as on AWS; the URL is served on Hearth's own port
as ``http://<url-id>.lambda-url.<region>.localhost:<port>/`` (``*.localhost`` resolves to
loopback) and, for clients that cannot set ``Host``, as
``http://<host>:<port>/_hearth/url/<url-id>/``. The returned ``FunctionUrl`` uses the
host-based form with the port the control-plane request came in on.

Rows live in the ``function_urls`` table; the front door looks a URL id up through an
in-memory cache that every write here clears for its id.
"""

from __future__ import annotations

import json
import re
import secrets
import sqlite3
from dataclasses import dataclass
from typing import Any

from hearth.api.names import FunctionRef, function_url_target, path_param
from hearth.api.types import Principal, Request, Response
from hearth.api.wire import (
    ValidationError,
    check_enum,
    check_int,
    check_string,
    json_response,
    now_iso,
    parse_json_body,
)
from hearth.errors import InvalidParameterValue, ResourceConflict, ResourceNotFound
from hearth.ids import new_request_id
from hearth.types import LATEST, function_arn
from hearth.versions._store import FeatureStore
from hearth.versions.versions import next_marker, page_params, query

SCHEMA = """
CREATE TABLE IF NOT EXISTS function_urls (
    url_id      TEXT PRIMARY KEY,
    account_id  TEXT NOT NULL,
    region      TEXT NOT NULL,
    function    TEXT NOT NULL,
    qualifier   TEXT NOT NULL,
    auth_type   TEXT NOT NULL,
    cors        TEXT NOT NULL,
    invoke_mode TEXT NOT NULL,
    created     TEXT NOT NULL,
    modified    TEXT NOT NULL,
    UNIQUE (account_id, function, qualifier)
);
"""
_COLUMNS = (
    "url_id, account_id, region, function, qualifier, auth_type, cors, invoke_mode,"
    " created, modified"
)
QUALIFIER_PATTERN = r"((?!^\d+$)^[0-9a-zA-Z-_]+$)"
_PREFIX = r"/2021-10-31/functions/(?P<fn>[^/]+)"


@dataclass(frozen=True, slots=True)
class UrlConfig:
    url_id: str
    account_id: str
    region: str
    function: str
    qualifier: str  # "" for the unqualified function ($LATEST)
    auth_type: str
    cors: dict[str, Any]
    invoke_mode: str
    created: str
    modified: str

    @property
    def function_arn(self) -> str:
        arn = function_arn(self.region, self.account_id, self.function)
        return f"{arn}:{self.qualifier}" if self.qualifier else arn

    @staticmethod
    def from_row(row: tuple[Any, ...]) -> UrlConfig:
        r = list(row)
        r[6] = json.loads(r[6])
        return UrlConfig(*r)


def url_host(url_id: str, region: str) -> str:
    return f"{url_id}.lambda-url.{region}.localhost"


def _port_of(req: Request) -> str:
    host = req.headers.get("host", "")
    _, sep, port = host.rpartition(":")
    return f":{port}" if sep and port.isdigit() else ""


def check_cors(value: Any) -> dict[str, Any]:
    """The ``Cors`` structure, validated against botocore's constraints."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InvalidParameterValue("Cors must be an object")
    out: dict[str, Any] = {}
    lists = {
        "AllowOrigins": ("cors.allowOrigins", 100, 253, 1),
        "AllowMethods": ("cors.allowMethods", 6, 6, 0),
        "AllowHeaders": ("cors.allowHeaders", 100, 1024, 0),
        "ExposeHeaders": ("cors.exposeHeaders", 100, 1024, 0),
    }
    for member, (wire, max_items, max_len, min_len) in lists.items():
        if member not in value:
            continue
        items = value[member]
        if not isinstance(items, list):
            raise InvalidParameterValue(f"Cors.{member} must be a list")
        if len(items) > max_items:
            raise ValidationError(
                f"1 validation error detected: Value '{items}' at '{wire}' failed to satisfy"
                f" constraint: Member must have length less than or equal to {max_items}"
            )
        out[member] = [check_string(i, wire, min_len=min_len, max_len=max_len) for i in items]
    if "AllowMethods" in out:
        allowed = {"GET", "PUT", "HEAD", "POST", "PATCH", "DELETE", "OPTIONS", "*"}
        for method in out["AllowMethods"]:
            if method.upper() not in allowed:
                raise InvalidParameterValue(f"Invalid method in AllowMethods: {method}")
    if "AllowCredentials" in value:
        if not isinstance(value["AllowCredentials"], bool):
            raise InvalidParameterValue("Cors.AllowCredentials must be a boolean")
        out["AllowCredentials"] = value["AllowCredentials"]
    if "MaxAge" in value:
        out["MaxAge"] = check_int(value["MaxAge"], "cors.maxAge", lo=0, hi=86400)
    return out


class FunctionUrls:
    """The control plane of function URLs plus the lookup the front door uses."""

    def __init__(self, store: FeatureStore) -> None:
        self._store = store
        self._cache: dict[str, UrlConfig | None] = {}

    async def open(self) -> None:
        await self._store.add_schema(SCHEMA)

    def register(self, add_route: Any) -> None:
        add_route("POST", _PREFIX + r"/url/?", self._create)
        add_route("GET", _PREFIX + r"/url/?", self._get)
        add_route("PUT", _PREFIX + r"/url/?", self._update)
        add_route("DELETE", _PREFIX + r"/url/?", self._delete)
        add_route("GET", _PREFIX + r"/urls/?", self._list)

    async def lookup(self, url_id: str) -> UrlConfig | None:
        if url_id in self._cache:
            return self._cache[url_id]

        def op(db: sqlite3.Connection) -> UrlConfig | None:
            row = db.execute(
                f"SELECT {_COLUMNS} FROM function_urls WHERE url_id=?", (url_id,)
            ).fetchone()
            return UrlConfig.from_row(row) if row else None

        found = await self._store.run(op)
        if len(self._cache) > 10_000:
            self._cache.clear()
        self._cache[url_id] = found
        return found

    async def alias_deleted(self, account_id: str, name: str, alias: str) -> None:
        """An alias's URL goes with the alias (a re-created alias has none)."""

        def op(db: sqlite3.Connection) -> None:
            db.execute(
                "DELETE FROM function_urls WHERE account_id=? AND function=? AND qualifier=?",
                (account_id, name, alias),
            )

        await self._store.run(op)
        self._cache.clear()

    async def function_deleted(self, account_id: str, name: str) -> None:
        def op(db: sqlite3.Connection) -> None:
            db.execute(
                "DELETE FROM function_urls WHERE account_id=? AND function=?", (account_id, name)
            )

        await self._store.run(op)
        self._cache.clear()

    # -- helpers ----------------------------------------------------------------------
    def _target(self, p: Principal, req: Request, m: re.Match[str]) -> FunctionRef:
        ref = function_url_target(path_param(m.group("fn")), p.account_id, region=p.region)
        given = query(req).get("Qualifier")
        if given is not None:
            check_string(given, "qualifier", min_len=1, max_len=128, pattern=QUALIFIER_PATTERN)
        if given and ref.qualifier and given != ref.qualifier:
            raise InvalidParameterValue(
                "The derived qualifier from the function name does not match the specified"
                " qualifier."
            )
        qualifier = given or ref.qualifier or ""
        if qualifier == LATEST:
            qualifier = ""
        if qualifier.isdigit():
            raise InvalidParameterValue(
                "Function URLs can only be attached to an alias or the unqualified function,"
                " not to a version."
            )
        return FunctionRef(ref.name, qualifier)

    def _doc(self, u: UrlConfig, req: Request, *, with_modified: bool = True) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "FunctionUrl": f"http://{url_host(u.url_id, u.region)}{_port_of(req)}/",
            "FunctionArn": u.function_arn,
            "AuthType": u.auth_type,
            "CreationTime": u.created,
            "InvokeMode": u.invoke_mode,
        }
        if u.cors:
            doc["Cors"] = u.cors
        if with_modified:
            doc["LastModifiedTime"] = u.modified
        return doc

    @staticmethod
    def _check_target(db: sqlite3.Connection, p: Principal, ref: FunctionRef) -> None:
        row = db.execute(
            "SELECT 1 FROM function_versions WHERE account_id=? AND name=? AND version=?",
            (p.account_id, ref.name, LATEST),
        ).fetchone()
        if row is not None and ref.qualifier:
            row = db.execute(
                "SELECT 1 FROM aliases WHERE account_id=? AND function=? AND name=?",
                (p.account_id, ref.name, ref.qualifier),
            ).fetchone()
        if row is None:
            arn = function_arn(p.region, p.account_id, ref.name)
            suffix = f":{ref.qualifier}" if ref.qualifier else ""
            raise ResourceNotFound(f"Function not found: {arn}{suffix}")

    @staticmethod
    def _settings(body: dict[str, Any], *, create: bool) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if create and "AuthType" not in body:
            raise ValidationError(
                "1 validation error detected: Value null at 'authType' failed to satisfy"
                " constraint: Member must not be null"
            )
        if "AuthType" in body:
            out["auth_type"] = check_enum(body["AuthType"], "authType", ["NONE", "AWS_IAM"])
        if "InvokeMode" in body:
            mode = check_enum(body["InvokeMode"], "invokeMode", ["BUFFERED", "RESPONSE_STREAM"])
            if mode == "RESPONSE_STREAM":
                raise InvalidParameterValue(
                    "InvokeMode RESPONSE_STREAM is not supported by Hearth; use BUFFERED."
                )
            out["invoke_mode"] = mode
        if "Cors" in body:
            out["cors"] = check_cors(body["Cors"])
        return out

    # -- operations -------------------------------------------------------------------
    async def _create(self, p: Principal, req: Request, m: re.Match[str]) -> Response:
        ref = self._target(p, req, m)
        s = self._settings(parse_json_body(req.body), create=True)
        stamp = now_iso()
        u = UrlConfig(
            secrets.token_hex(16), p.account_id, p.region, ref.name, ref.qualifier or "",
            s["auth_type"], s.get("cors", {}), s.get("invoke_mode", "BUFFERED"), stamp, stamp,
        )  # fmt: skip

        def op(db: sqlite3.Connection) -> None:
            self._check_target(db, p, ref)
            try:
                db.execute(
                    f"INSERT INTO function_urls ({_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?)",
                    (u.url_id, u.account_id, u.region, u.function, u.qualifier, u.auth_type,
                     json.dumps(u.cors), u.invoke_mode, u.created, u.modified),
                )  # fmt: skip
            except sqlite3.IntegrityError:
                raise ResourceConflict(
                    f"Failed to create function url config for [functionArn = {u.function_arn}]."
                    " Error message:  FunctionUrlConfig exists for this Lambda function"
                ) from None

        await self._store.run(op)
        self._cache.pop(u.url_id, None)
        return json_response(201, self._doc(u, req, with_modified=False))

    async def _find(self, p: Principal, ref: FunctionRef) -> UrlConfig:
        def op(db: sqlite3.Connection) -> UrlConfig | None:
            self._check_target(db, p, ref)
            row = db.execute(
                f"SELECT {_COLUMNS} FROM function_urls WHERE account_id=? AND function=?"
                " AND qualifier=?",
                (p.account_id, ref.name, ref.qualifier or ""),
            ).fetchone()
            return UrlConfig.from_row(row) if row else None

        u = await self._store.run(op)
        if u is None:
            raise ResourceNotFound("The resource you requested does not exist.")
        return u

    async def _get(self, p: Principal, req: Request, m: re.Match[str]) -> Response:
        u = await self._find(p, self._target(p, req, m))
        return json_response(200, self._doc(u, req))

    async def _update(self, p: Principal, req: Request, m: re.Match[str]) -> Response:
        ref = self._target(p, req, m)
        s = self._settings(parse_json_body(req.body), create=False)
        old = await self._find(p, ref)
        new = UrlConfig(
            old.url_id, old.account_id, old.region, old.function, old.qualifier,
            s.get("auth_type", old.auth_type), s.get("cors", old.cors),
            s.get("invoke_mode", old.invoke_mode), old.created, now_iso(),
        )  # fmt: skip

        def op(db: sqlite3.Connection) -> None:
            db.execute(
                "UPDATE function_urls SET auth_type=?, cors=?, invoke_mode=?, modified=?"
                " WHERE url_id=?",
                (new.auth_type, json.dumps(new.cors), new.invoke_mode, new.modified, new.url_id),
            )

        await self._store.run(op)
        self._cache.pop(new.url_id, None)
        return json_response(200, self._doc(new, req))

    async def _delete(self, p: Principal, req: Request, m: re.Match[str]) -> Response:
        u = await self._find(p, self._target(p, req, m))

        def op(db: sqlite3.Connection) -> None:
            db.execute("DELETE FROM function_urls WHERE url_id=?", (u.url_id,))

        await self._store.run(op)
        self._cache.pop(u.url_id, None)
        return Response(204, [("x-amzn-RequestId", new_request_id())], b"")

    async def _list(self, p: Principal, req: Request, m: re.Match[str]) -> Response:
        ref = function_url_target(path_param(m.group("fn")), p.account_id, region=p.region)
        offset, limit = page_params(query(req), 50)

        def op(db: sqlite3.Connection) -> list[UrlConfig]:
            self._check_target(db, p, FunctionRef(ref.name, None))
            rows = db.execute(
                f"SELECT {_COLUMNS} FROM function_urls WHERE account_id=? AND function=?"
                " ORDER BY qualifier",
                (p.account_id, ref.name),
            ).fetchall()
            return [UrlConfig.from_row(r) for r in rows]

        found = await self._store.run(op)
        page = found[offset : offset + limit]
        doc: dict[str, Any] = {"FunctionUrlConfigs": [self._doc(u, req) for u in page]}
        if offset + limit < len(found):
            doc["NextMarker"] = next_marker(offset + limit)
        return json_response(200, doc)
