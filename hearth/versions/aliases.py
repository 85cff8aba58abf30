"""Aliases: Create / Get / Update / Delete / List, and weighted routing at invoke time.

An alias names one version, optionally with a second version that receives a fraction
of the invocations (``RoutingConfig.AdditionalVersionWeights``, one entry, weight 0-1).
The router asks :meth:`AliasesApi.pick` for the version to run on every invoke of an
alias; the answer comes from an in-memory cache (one store read per alias until it
changes), and the draw is an independent Bernoulli trial per invocation, as on Lambda.

Rules enforced on write, with AWS's errors:

* the alias name is not all digits, 1-128 of ``[a-zA-Z0-9-_]`` (ValidationException);
* the primary version and the additional version exist (ResourceNotFoundException);
* a weighted alias cannot point at ``$LATEST`` and its additional version differs from
  the primary (InvalidParameterValueException);
* ``RevisionId`` on update must match (PreconditionFailedException);
* names are unique per function (ResourceConflictException).
"""

from __future__ import annotations

import json
import random
import re
import sqlite3
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from hearth.api.functions import PreconditionFailed
from hearth.api.names import FunctionRef, parse_function_name, path_param
from hearth.api.types import Principal, Request, Response
from hearth.api.wire import ValidationError, check_string, json_response, parse_json_body
from hearth.errors import InvalidParameterValue, ResourceConflict, ResourceNotFound
from hearth.ids import new_request_id
from hearth.types import LATEST, function_arn
from hearth.versions._store import (
    ALIAS_COLUMNS,
    Alias,
    FeatureStore,
    aliases_of,
    get_alias,
)
from hearth.versions.versions import next_marker, page_params, query, unknown_function

_FN = r"/2015-03-31/functions/(?P<fn>[^/]+)"
ALIAS_PATTERN = r"(?!^[0-9]+$)([a-zA-Z0-9-_]+)"
VERSION_PATTERN = r"(\$LATEST|[0-9]+)"
MAX_CACHE = 100_000


def alias_doc(a: Alias, region: str) -> dict[str, Any]:
    """The ``AliasConfiguration`` shape."""
    doc: dict[str, Any] = {
        "AliasArn": f"{function_arn(region, a.account_id, a.function)}:{a.name}",
        "Name": a.name,
        "FunctionVersion": a.version,
        "Description": a.description,
        "RevisionId": a.revision_id,
    }
    if a.weights:
        doc["RoutingConfig"] = {"AdditionalVersionWeights": dict(a.weights)}
    return doc


def _weights(body: dict[str, Any]) -> dict[str, float] | None:
    """``RoutingConfig.AdditionalVersionWeights`` validated, or None if absent."""
    if "RoutingConfig" not in body:
        return None
    rc = body["RoutingConfig"]
    if rc is None:
        return {}
    if not isinstance(rc, dict):
        raise InvalidParameterValue("RoutingConfig must be an object")
    raw = rc.get("AdditionalVersionWeights") or {}
    if not isinstance(raw, dict):
        raise InvalidParameterValue("AdditionalVersionWeights must be a map")
    out: dict[str, float] = {}
    for k, v in raw.items():
        if not isinstance(k, str) or not 1 <= len(k) <= 1024 or not k.isdigit():
            # The model's map-key form (LocalStack's AWS-validated message).
            raise ValidationError(
                f"1 validation error detected: Value '{{{k}={v}}}' at"
                " 'routingConfig.additionalVersionWeights' failed to satisfy constraint: Map"
                " keys must satisfy constraint: [Member must have length less than or equal"
                " to 1024, Member must have length greater than or equal to 1, Member must"
                " satisfy regular expression pattern: [0-9]+, Member must not be null]"
            )
        if isinstance(v, bool) or not isinstance(v, int | float):
            raise InvalidParameterValue("Weights in AdditionalVersionWeights must be numbers")
        if not 0.0 <= float(v) <= 1.0:
            raise ValidationError(
                f"1 validation error detected: Value '{{{k}={v}}}' at"
                " 'routingConfig.additionalVersionWeights' failed to satisfy constraint: Map"
                " value must satisfy constraint: [Member must have value less than or equal"
                " to 1.0, Member must have value greater than or equal to 0.0, Member must"
                " not be null]"
            )
        out[k] = float(v)
    if len(out) > 1:
        raise InvalidParameterValue(
            "Number of items in AdditionalVersionWeights cannot be greater than 1"
        )
    return out


class AliasesApi:
    def __init__(self, store: FeatureStore) -> None:
        self._store = store
        self._cache: dict[tuple[str, str, str], Alias] = {}
        #: Called with (account, function, alias) after an alias is deleted, so what hangs
        #: off it (its function URL, its policy) goes with it, as on AWS.
        self.on_delete: list[Callable[[str, str, str], Awaitable[None]]] = []

    def register(self, add_route: Any) -> None:
        one = _FN + r"/aliases/(?P<alias>[^/]+)/?"
        add_route("POST", _FN + r"/aliases/?", self._create)
        add_route("GET", _FN + r"/aliases/?", self._list)
        add_route("GET", one, self._get)
        add_route("PUT", one, self._update)
        add_route("DELETE", one, self._delete)

    # -- invoke-time resolution -------------------------------------------------------
    async def pick(self, account_id: str, function: str, alias: str) -> str | None:
        """The version an invocation of ``function:alias`` runs, or None if no such alias."""
        key = (account_id, function, alias)
        a = self._cache.get(key)
        if a is None:
            a = await self._store.run(lambda db: get_alias(db, account_id, function, alias))
            if a is None:
                return None
            if len(self._cache) >= MAX_CACHE:
                self._cache.clear()
            self._cache[key] = a
        return _draw(a)

    def pick_cached(self, account_id: str, function: str, alias: str) -> str | None:
        """:meth:`pick` from the cache alone (the warm invoke path: no await); None when
        the alias is not cached."""
        a = self._cache.get((account_id, function, alias))
        return None if a is None else _draw(a)

    def forget(self, account_id: str, function: str) -> None:
        for key in [k for k in self._cache if k[0] == account_id and k[1] == function]:
            del self._cache[key]

    # -- control plane ----------------------------------------------------------------
    def _ref(self, p: Principal, m: re.Match[str]) -> FunctionRef:
        ref = parse_function_name(path_param(m.group("fn")), p.account_id, region=p.region)
        return FunctionRef(ref.name, None)

    @staticmethod
    def _alias_name(m: re.Match[str]) -> str:
        return check_string(
            path_param(m.group("alias")), "name", min_len=1, max_len=128, pattern=ALIAS_PATTERN
        )

    async def _create(self, p: Principal, req: Request, m: re.Match[str]) -> Response:
        ref = self._ref(p, m)
        body = parse_json_body(req.body)
        for member, wire in (("Name", "name"), ("FunctionVersion", "functionVersion")):
            if member not in body:
                raise ValidationError(
                    f"1 validation error detected: Value null at '{wire}' failed to satisfy"
                    " constraint: Member must not be null"
                )
        name = check_string(body["Name"], "name", min_len=1, max_len=128, pattern=ALIAS_PATTERN)
        version = check_string(
            body["FunctionVersion"], "functionVersion", min_len=1, max_len=1024,
            pattern=VERSION_PATTERN,
        )  # fmt: skip
        desc = check_string(body.get("Description", ""), "description", max_len=256)
        weights = _weights(body) or {}
        a = Alias(p.account_id, ref.name, name, version, desc, str(uuid.uuid4()), weights)

        def op(db: sqlite3.Connection) -> None:
            _check_targets(db, p.region, a)
            if get_alias(db, a.account_id, a.function, a.name) is not None:
                arn = function_arn(p.region, a.account_id, a.function)
                raise ResourceConflict(f"Alias already exists: {arn}:{a.name}")
            db.execute(
                f"INSERT INTO aliases ({ALIAS_COLUMNS}) VALUES (?,?,?,?,?,?,?)",
                (a.account_id, a.function, a.name, a.version, a.description,
                 json.dumps(a.weights), a.revision_id),
            )  # fmt: skip

        await self._store.run(op)
        self.forget(p.account_id, ref.name)
        return json_response(201, alias_doc(a, p.region))

    async def _get(self, p: Principal, req: Request, m: re.Match[str]) -> Response:
        ref = self._ref(p, m)
        name = self._alias_name(m)
        a = await self._store.run(lambda db: get_alias(db, p.account_id, ref.name, name))
        if a is None:
            raise _no_alias(p, ref.name, name)
        return json_response(200, alias_doc(a, p.region))

    async def _update(self, p: Principal, req: Request, m: re.Match[str]) -> Response:
        ref = self._ref(p, m)
        name = self._alias_name(m)
        body = parse_json_body(req.body)
        version = body.get("FunctionVersion")
        if version is not None:
            check_string(
                version, "functionVersion", min_len=1, max_len=1024, pattern=VERSION_PATTERN
            )
        desc = body.get("Description")
        if desc is not None:
            check_string(desc, "description", max_len=256)
        weights = _weights(body)
        rev = body.get("RevisionId")

        def op(db: sqlite3.Connection) -> Alias:
            old = get_alias(db, p.account_id, ref.name, name)
            if old is None:  # UpdateAlias words it apart from GetAlias, as AWS does
                raise _no_alias(p, ref.name, name, "Alias not found: ")
            if rev is not None and rev != old.revision_id:
                raise PreconditionFailed(
                    "The Revision Id provided does not match the latest Revision Id. Call the"
                    " GetFunction/GetAlias API to retrieve the latest Revision Id"
                )
            new = Alias(
                old.account_id, old.function, old.name,
                old.version if version is None else version,
                old.description if desc is None else desc,
                str(uuid.uuid4()),
                old.weights if weights is None else weights,
            )  # fmt: skip
            _check_targets(db, p.region, new)
            db.execute(
                "UPDATE aliases SET version=?, description=?, weights=?, revision_id=?"
                " WHERE account_id=? AND function=? AND name=?",
                (new.version, new.description, json.dumps(new.weights), new.revision_id,
                 new.account_id, new.function, new.name),
            )  # fmt: skip
            return new

        new = await self._store.run(op)
        self.forget(p.account_id, ref.name)
        return json_response(200, alias_doc(new, p.region))

    async def _delete(self, p: Principal, req: Request, m: re.Match[str]) -> Response:
        ref = self._ref(p, m)
        name = self._alias_name(m)

        def op(db: sqlite3.Connection) -> None:
            # AWS answers 204 for an alias that does not exist (DeleteAlias is idempotent),
            # but not for an unknown function.
            _check_function(db, p.region, p.account_id, ref.name)
            db.execute(
                "DELETE FROM aliases WHERE account_id=? AND function=? AND name=?",
                (p.account_id, ref.name, name),
            )

        await self._store.run(op)
        self.forget(p.account_id, ref.name)
        for hook in self.on_delete:
            await hook(p.account_id, ref.name, name)
        return Response(204, [("x-amzn-RequestId", new_request_id())], b"")

    async def _list(self, p: Principal, req: Request, m: re.Match[str]) -> Response:
        ref = self._ref(p, m)
        q = query(req)
        offset, limit = page_params(q, 10000)
        only = q.get("FunctionVersion")
        if only is not None:
            check_string(only, "functionVersion", min_len=1, pattern=VERSION_PATTERN)

        def op(db: sqlite3.Connection) -> list[Alias]:
            _check_function(db, p.region, p.account_id, ref.name)
            return aliases_of(db, p.account_id, ref.name)

        found = await self._store.run(op)
        if only is not None:
            found = [a for a in found if a.version == only or only in a.weights]
        page = found[offset : offset + limit]
        doc: dict[str, Any] = {"Aliases": [alias_doc(a, p.region) for a in page]}
        if offset + limit < len(found):
            doc["NextMarker"] = next_marker(offset + limit)
        return json_response(200, doc)


def _no_alias(
    p: Principal, function: str, name: str, lead: str = "Cannot find alias arn: "
) -> ResourceNotFound:
    arn = function_arn(p.region, p.account_id, function)
    return ResourceNotFound(f"{lead}{arn}:{name}")


def _check_function(db: sqlite3.Connection, region: str, account_id: str, name: str) -> None:
    row = db.execute(
        "SELECT 1 FROM function_versions WHERE account_id=? AND name=? AND version=?",
        (account_id, name, LATEST),
    ).fetchone()
    if row is None:
        raise ResourceNotFound(unknown_function(region, account_id, name, None))


def _check_targets(db: sqlite3.Connection, region: str, a: Alias) -> None:
    _check_function(db, region, a.account_id, a.function)
    for version in [a.version, *a.weights]:
        row = db.execute(
            "SELECT 1 FROM function_versions WHERE account_id=? AND name=? AND version=?",
            (a.account_id, a.function, version),
        ).fetchone()
        if row is None:
            raise ResourceNotFound(unknown_function(region, a.account_id, a.function, version))
    if a.weights and a.version == LATEST:
        raise InvalidParameterValue(
            "$LATEST is not supported for an alias pointing to more than 1 version"
        )
    if a.version in a.weights:
        raise InvalidParameterValue(
            f"Invalid function version {a.version}. Function version {a.version} is already"
            " included in routing configuration."
        )


def _draw(a: Alias) -> str:
    """The version one invocation of an alias runs: a weighted draw when it routes."""
    for version, weight in a.weights.items():
        if random.random() < weight:
            return version
    return a.version
