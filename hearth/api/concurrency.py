"""Reserved concurrency: Put / Get / DeleteFunctionConcurrency, and what it changes elsewhere.

Shapes and errors follow botocore's Lambda model:

* ``PUT /2017-10-31/functions/{FunctionName}/concurrency`` with
  ``{"ReservedConcurrentExecutions": n}`` (n ≥ 0) → 200 ``{"ReservedConcurrentExecutions": n}``;
  a reservation that would leave the account's unreserved pool below its minimum (AWS:
  100) → ``InvalidParameterValueException`` with AWS's message.
* ``GET /2019-09-30/functions/{FunctionName}/concurrency`` → ``{}`` or the reservation.
* ``DELETE /2017-10-31/functions/{FunctionName}/concurrency`` → 204.
* ``GetFunction`` gains ``Concurrency`` when a reservation exists, and
  ``GetAccountSettings`` reports ``UnreservedConcurrentExecutions`` as the account limit
  minus every reservation.

Reservations persist in the store (table ``function_concurrency``) and are loaded into
:class:`~hearth.invoke.admission.Admission` at start; a deleted function loses its
reservation (:meth:`ConcurrencyApi.function_deleted`), as on Lambda.
"""

from __future__ import annotations

import re
import sqlite3
import uuid
from typing import Any, Protocol
from urllib.parse import parse_qsl

from hearth.api.functions import FunctionsApi
from hearth.api.names import FunctionRef, merge_qualifier, parse_function_name, path_param
from hearth.api.types import Principal, Request, Response
from hearth.api.wire import ValidationError, check_int, json_response, parse_json_body
from hearth.errors import InvalidParameterValue
from hearth.invoke.admission import Admission

SCHEMA = """
CREATE TABLE IF NOT EXISTS function_concurrency (
    account_id TEXT NOT NULL,
    name TEXT NOT NULL,
    reserved INTEGER NOT NULL,
    PRIMARY KEY (account_id, name)
);
"""

_FN = r"/(?P<fn>[^/]+)"


class FeatureStore(Protocol):
    async def run(self, fn: Any) -> Any: ...

    async def add_schema(self, script: str) -> None: ...


class RouteTable(Protocol):
    def add_route(self, method: str, pattern: str, handler: Any) -> None: ...


class ConcurrencyApi:
    def __init__(self, store: FeatureStore, functions: FunctionsApi, admission: Admission) -> None:
        self._store = store
        self._functions = functions
        self._admission = admission

    async def open(self) -> None:
        """Create the table and load every reservation into admission."""
        await self._store.add_schema(SCHEMA)

        def load(db: sqlite3.Connection) -> list[tuple[str, str, int]]:
            return list(db.execute("SELECT account_id, name, reserved FROM function_concurrency"))

        for account_id, name, reserved in await self._store.run(load):
            self._admission.set_reserved(account_id, name, int(reserved))

    def install(self, api: RouteTable) -> None:
        api.add_route("PUT", r"/2017-10-31/functions" + _FN + r"/concurrency/?", self._put)
        api.add_route("GET", r"/2019-09-30/functions" + _FN + r"/concurrency/?", self._get)
        api.add_route("DELETE", r"/2017-10-31/functions" + _FN + r"/concurrency/?", self._delete)
        api.add_route("GET", r"/2015-03-31/functions" + _FN + r"/?", self._get_function)
        api.add_route("GET", r"/2016-08-19/account-settings/?", self._account_settings)

    # -- helpers --------------------------------------------------------------------------
    @staticmethod
    def _ref(p: Principal, req: Request, m: re.Match[str]) -> FunctionRef:
        ref = parse_function_name(path_param(m.group("fn")), p.account_id)
        query = dict(parse_qsl(req.query, keep_blank_values=True))
        return FunctionRef(ref.name, merge_qualifier(ref, query.get("Qualifier")))

    async def _exists(self, p: Principal, ref: FunctionRef) -> str:
        """The function's name; raises ResourceNotFound as GetFunction does."""
        cfg = await self._functions.load(p.account_id, p.region, FunctionRef(ref.name, None))
        return cfg.name

    async def _write(self, account_id: str, name: str, reserved: int | None) -> None:
        def op(db: sqlite3.Connection) -> None:
            if reserved is None:
                db.execute(
                    "DELETE FROM function_concurrency WHERE account_id=? AND name=?",
                    (account_id, name),
                )
            else:
                db.execute(
                    "INSERT OR REPLACE INTO function_concurrency VALUES (?,?,?)",
                    (account_id, name, reserved),
                )

        await self._store.run(op)
        self._admission.set_reserved(account_id, name, reserved)

    # -- operations -----------------------------------------------------------------------
    async def _put(self, p: Principal, req: Request, m: re.Match[str]) -> Response:
        ref = self._ref(p, req, m)
        body = parse_json_body(req.body)
        if body.get("ReservedConcurrentExecutions") is None:
            raise ValidationError(
                "1 validation error detected: Value null at 'reservedConcurrentExecutions'"
                " failed to satisfy constraint: Member must not be null"
            )
        amount = check_int(
            body["ReservedConcurrentExecutions"], "reservedConcurrentExecutions", lo=0, hi=2**31 - 1
        )
        name = await self._exists(p, ref)
        if not self._admission.can_reserve(p.account_id, name, amount):
            raise InvalidParameterValue(
                "Specified ReservedConcurrentExecutions for function decreases account's"
                " UnreservedConcurrentExecution below its minimum value of"
                f" [{self._admission.min_unreserved}]."
            )
        await self._write(p.account_id, name, amount)
        return json_response(200, {"ReservedConcurrentExecutions": amount})

    async def _get(self, p: Principal, req: Request, m: re.Match[str]) -> Response:
        name = await self._exists(p, self._ref(p, req, m))
        reserved = self._admission.reserved(p.account_id, name)
        doc = {} if reserved is None else {"ReservedConcurrentExecutions": reserved}
        return json_response(200, doc)

    async def _delete(self, p: Principal, req: Request, m: re.Match[str]) -> Response:
        name = await self._exists(p, self._ref(p, req, m))
        await self._write(p.account_id, name, None)
        return Response(204, [("x-amzn-RequestId", str(uuid.uuid4()))], b"")

    async def _get_function(self, p: Principal, req: Request, m: re.Match[str]) -> Response:
        ref = self._ref(p, req, m)
        host = req.headers.get("host", "127.0.0.1")
        doc = await self._functions.get(p.account_id, p.region, ref, host)
        reserved = self._admission.reserved(p.account_id, ref.name)
        if reserved is not None:
            doc["Concurrency"] = {"ReservedConcurrentExecutions": reserved}
        return json_response(200, doc)

    async def _account_settings(self, p: Principal, req: Request, m: re.Match[str]) -> Response:
        doc = await self._functions.account_settings(p.account_id, self._admission.limit)
        doc["AccountLimit"]["UnreservedConcurrentExecutions"] = self._admission.unreserved(
            p.account_id
        )
        return json_response(200, doc)

    # -- lifecycle hook -------------------------------------------------------------------
    async def function_deleted(self, account_id: str, name: str) -> None:
        """Drop the reservation of a deleted function (a new one of that name starts clean)."""
        if self._admission.reserved(account_id, name) is not None:
            await self._write(account_id, name, None)
