"""Reserved and provisioned concurrency APIs, and what they change elsewhere.

Shapes and errors follow botocore's Lambda model:

* ``PUT /2017-10-31/functions/{FunctionName}/concurrency`` with
  ``{"ReservedConcurrentExecutions": n}`` (n ≥ 0) → 200 ``{"ReservedConcurrentExecutions": n}``;
  a reservation that would leave the account's unreserved pool below its minimum (AWS:
  100) → ``InvalidParameterValueException`` with AWS's message.
* ``GET /2019-09-30/functions/{FunctionName}/concurrency`` → ``{}`` or the reservation.
* ``DELETE /2017-10-31/functions/{FunctionName}/concurrency`` → 204.
* ``GetFunction`` gains ``Concurrency`` when a reservation exists, and
  ``GetAccountSettings`` reports ``UnreservedConcurrentExecutions`` as the account limit
  minus every reservation and the provisioned concurrency of unreserved functions.
  A qualified name is refused (concurrency is the whole function's), and so is a
  reservation below the function's total provisioned concurrency.

Provisioned concurrency (``/2019-09-30/functions/{FunctionName}/provisioned-concurrency``
with ``?Qualifier=`` or ``?List=ALL``): Put (202, ``IN_PROGRESS``), Get
(``ProvisionedConcurrencyConfigNotFoundException`` when absent), List and Delete, on a
published version or an alias, never ``$LATEST``; the engine is
:mod:`hearth.invoke.provisioned`.

Reservations persist in the store (table ``function_concurrency``) and are loaded into
:class:`~hearth.invoke.admission.Admission` at start; a deleted function loses its
reservation (:meth:`ConcurrencyApi.function_deleted`), as on Lambda.
"""

from __future__ import annotations

import base64
import binascii
import re
import sqlite3
import uuid
from typing import Any, Protocol
from urllib.parse import parse_qsl

from hearth.api.functions import FunctionsApi
from hearth.api.names import FunctionRef, parse_function_name, path_param, qualified_ref
from hearth.api.types import Principal, Request, Response
from hearth.api.wire import (
    ValidationError,
    check_int,
    check_string,
    json_response,
    now_iso,
    parse_json_body,
)
from hearth.errors import AwsError, InvalidParameterValue, ResourceConflict
from hearth.invoke.admission import Admission
from hearth.invoke.provisioned import PcConfig, Provisioned, Resolver
from hearth.types import LATEST

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


class ProvisionedConcurrencyConfigNotFound(AwsError):
    code = "ProvisionedConcurrencyConfigNotFoundException"
    status = 404


class ConcurrencyApi:
    def __init__(
        self,
        store: FeatureStore,
        functions: FunctionsApi,
        admission: Admission,
        provisioned: Provisioned | None = None,
        resolve: Resolver | None = None,
    ) -> None:
        self._store = store
        self._functions = functions
        self._admission = admission
        self._provisioned = provisioned
        self._resolve = resolve

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
        if self._provisioned is not None:
            pc = r"/2019-09-30/functions" + _FN + r"/provisioned-concurrency/?"
            api.add_route("PUT", pc, self._pc_put)
            api.add_route("GET", pc, self._pc_get)
            api.add_route("DELETE", pc, self._pc_delete)

    # -- helpers --------------------------------------------------------------------------
    @staticmethod
    def _ref(p: Principal, req: Request, m: re.Match[str]) -> FunctionRef:
        return qualified_ref(m.group("fn"), req.query, p.account_id, region=p.region)

    async def _exists(self, p: Principal, ref: FunctionRef) -> str:
        """The function's name; raises ResourceNotFound as GetFunction does."""
        cfg = await self._functions.load(p.account_id, p.region, FunctionRef(ref.name, None))
        return cfg.name

    async def _qualifier_exists(self, p: Principal, name: str, qualifier: str) -> None:
        """A version or alias that does not exist is AWS's 404 ``Function not found:
        <qualified ARN>`` (before "no configuration" or a silent 204 on delete)."""
        if self._resolve is not None:
            await self._resolve(p.account_id, p.region, name, qualifier)

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
        """PutFunctionConcurrency, in AWS's order of checks: the body's shape; an alias or
        version named (``f:1``, a qualified ARN, even ``f:$LATEST``) is refused, since
        concurrency belongs to the whole function; the unreserved pool's minimum; then a
        reservation below the function's total provisioned concurrency is refused."""
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
        if ref.qualifier:
            raise InvalidParameterValue(
                "This operation is permitted on Lambda functions only. Aliases and versions do"
                " not support this operation. Please specify either a function name or an"
                " unqualified function ARN."
            )
        name = await self._exists(p, ref)
        # The pool this function would leave: every other reservation and the provisioned
        # concurrency of the functions without one come out of it.
        after = self._unreserved(p.account_id, without=name) - amount
        if after < self._admission.min_unreserved:
            raise InvalidParameterValue(
                "Specified ReservedConcurrentExecutions for function decreases account's"
                " UnreservedConcurrentExecution below its minimum value of"
                f" [{self._admission.min_unreserved}]."
            )
        provisioned = self._provisioned_total(p.account_id, name)
        if amount < provisioned:
            # AWS's message, spacing included (LocalStack's AWS-validated snapshot).
            raise InvalidParameterValue(
                f" ReservedConcurrentExecutions  {amount} should not be lower than function's"
                f" total provisioned concurrency [{provisioned}]."
            )
        await self._write(p.account_id, name, amount)
        return json_response(200, {"ReservedConcurrentExecutions": amount})

    def _provisioned_total(self, account_id: str, name: str) -> int:
        if self._provisioned is None:
            return 0
        return sum(c.requested for c in self._provisioned.list(account_id, name))

    def _unreserved(self, account_id: str, without: str | None = None) -> int:
        """AWS's ``UnreservedConcurrentExecutions``: the account limit minus every
        reservation and minus the provisioned concurrency of functions without one (a
        reserved function's provisioned environments come out of its reservation); the
        pool admission lets on-demand requests use. ``without`` leaves one function's
        claim out (its new setting replaces it)."""
        return self._admission.unreserved(account_id, without)

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
        doc["AccountLimit"]["UnreservedConcurrentExecutions"] = self._unreserved(p.account_id)
        return json_response(200, doc)

    # -- provisioned concurrency ----------------------------------------------------------
    def _pc_ref(
        self, p: Principal, req: Request, m: re.Match[str], put: bool = False
    ) -> tuple[str, str]:
        """(function name, qualifier): the qualifier is required and never ``$LATEST``
        (AWS words it one way for Put, another for Get and Delete)."""
        ref = self._ref(p, req, m)
        if not ref.qualifier:
            raise ValidationError(
                "1 validation error detected: Value null at 'qualifier' failed to satisfy"
                " constraint: Member must not be null"
            )
        check_string(ref.qualifier, "qualifier", min_len=1, max_len=128, pattern=r"[a-zA-Z0-9$_-]+")
        if ref.qualifier == LATEST and put:
            raise InvalidParameterValue(
                "Provisioned Concurrency Configs cannot be applied to unpublished function"
                " versions."
            )
        if ref.qualifier == LATEST:
            raise InvalidParameterValue(
                "The function resource provided must be an alias or a published version."
            )
        return ref.name, ref.qualifier

    def _pc_doc(self, pc: PcConfig, with_arn: str | None = None) -> dict[str, Any]:
        assert self._provisioned is not None
        allocated, available = self._provisioned.counts(pc)
        doc: dict[str, Any] = {}
        if with_arn:
            doc["FunctionArn"] = with_arn
        doc.update(
            {
                "RequestedProvisionedConcurrentExecutions": pc.requested,
                "AvailableProvisionedConcurrentExecutions": available,
                "AllocatedProvisionedConcurrentExecutions": allocated,
                "Status": pc.status,
                "LastModified": pc.last_modified,
            }
        )
        if pc.reason:
            doc["StatusReason"] = pc.reason
        return doc

    async def _pc_put(self, p: Principal, req: Request, m: re.Match[str]) -> Response:
        assert self._provisioned is not None and self._resolve is not None
        name, qualifier = self._pc_ref(p, req, m, put=True)
        body = parse_json_body(req.body)
        if body.get("ProvisionedConcurrentExecutions") is None:
            raise ValidationError(
                "1 validation error detected: Value null at 'provisionedConcurrentExecutions'"
                " failed to satisfy constraint: Member must not be null"
            )
        count = check_int(
            body["ProvisionedConcurrentExecutions"],
            "provisionedConcurrentExecutions",
            lo=1,
            hi=2**31 - 1,
        )
        cfg = await self._resolve(p.account_id, p.region, name, qualifier)
        reserved = self._admission.reserved(p.account_id, cfg.name)
        other_configs = [
            c for c in self._provisioned.list(p.account_id, cfg.name) if c.qualifier != qualifier
        ]
        # One version is provisioned once: directly or through one alias (as on AWS).
        for c in other_configs:
            if not qualifier.isdigit() and c.qualifier == cfg.version:
                raise ResourceConflict(
                    "Alias can't be used for Provisioned Concurrency configuration on an"
                    " already Provisioned version"
                )
            if qualifier.isdigit() and c.cfg is not None and c.cfg.version == qualifier:
                raise ResourceConflict("Version is pointed by a Provisioned Concurrency alias")
        others = sum(c.requested for c in other_configs)
        if reserved is not None and reserved < others + count:
            raise InvalidParameterValue(
                "Requested Provisioned Concurrency should not be greater than the"
                " reservedConcurrentExecution for function"
            )
        if reserved is None:
            # Without a reservation, provisioned concurrency comes out of the account's
            # unreserved pool, which keeps its minimum (AWS's messages, as its clients
            # report them: ``... is greater than account's unreserved concurrency [n].`` and
            # ``... decreases account's UnreservedConcurrentExecution below ...``).
            pool = self._unreserved(p.account_id, without=cfg.name) - others
            if count > pool:
                raise InvalidParameterValue(
                    "Specified ConcurrentExecutions for function is greater than account's"
                    f" unreserved concurrency [{pool}]."
                )
            if pool - count < self._admission.min_unreserved:
                raise InvalidParameterValue(
                    "Specified ConcurrentExecutions for function decreases account's"
                    " UnreservedConcurrentExecution below its minimum value of"
                    f" [{self._admission.min_unreserved}]."
                )
        pc = PcConfig(p.account_id, cfg.name, qualifier, p.region, count, now_iso())
        pc = await self._provisioned.put(pc, cfg)
        return json_response(202, self._pc_doc(pc))

    async def _pc_get(self, p: Principal, req: Request, m: re.Match[str]) -> Response:
        assert self._provisioned is not None
        query = dict(parse_qsl(req.query, keep_blank_values=True))
        if query.get("List") == "ALL":
            ref = parse_function_name(path_param(m.group("fn")), p.account_id, region=p.region)
            name = await self._exists(p, FunctionRef(ref.name, None))
            limit = 50
            if "MaxItems" in query:
                try:
                    limit = check_int(int(query["MaxItems"]), "maxItems", lo=1, hi=50)
                except ValueError:
                    raise InvalidParameterValue("MaxItems must be an integer") from None
            offset = _marker_offset(query.get("Marker"))
            base = f"arn:aws:lambda:{p.region}:{p.account_id}:function:{name}"
            configs = self._provisioned.list(p.account_id, name)
            items = [
                self._pc_doc(pc, f"{base}:{pc.qualifier}")
                for pc in configs[offset : offset + limit]
            ]
            doc: dict[str, Any] = {"ProvisionedConcurrencyConfigs": items}
            if offset + limit < len(configs):
                # Pages by MaxItems and Marker, as boto3's paginator for this operation
                # asks (it ignored MaxItems: every page held them all).
                doc["NextMarker"] = base64.urlsafe_b64encode(str(offset + limit).encode()).decode()
            return json_response(200, doc)
        name, qualifier = self._pc_ref(p, req, m)
        await self._exists(p, FunctionRef(name, None))
        pc = self._provisioned.get(p.account_id, name, qualifier)
        if pc is None:
            await self._qualifier_exists(p, name, qualifier)
            raise ProvisionedConcurrencyConfigNotFound(
                "No Provisioned Concurrency Config found for this function"
            )
        return json_response(200, self._pc_doc(pc))

    async def _pc_delete(self, p: Principal, req: Request, m: re.Match[str]) -> Response:
        assert self._provisioned is not None
        name, qualifier = self._pc_ref(p, req, m)
        await self._exists(p, FunctionRef(name, None))
        if self._provisioned.get(p.account_id, name, qualifier) is None:
            await self._qualifier_exists(p, name, qualifier)
        await self._provisioned.delete(p.account_id, name, qualifier)
        return Response(204, [("x-amzn-RequestId", str(uuid.uuid4()))], b"")

    # -- lifecycle hook -------------------------------------------------------------------
    async def function_deleted(self, account_id: str, name: str) -> None:
        """Drop the reservation and provisioned configurations of a deleted function."""
        if self._admission.reserved(account_id, name) is not None:
            await self._write(account_id, name, None)
        if self._provisioned is not None:
            await self._provisioned.function_deleted(account_id, name)


def _marker_offset(marker: str | None) -> int:
    """The offset an opaque ``Marker`` of a previous page carries (0 for none)."""
    if not marker:
        return 0
    try:
        offset = int(base64.urlsafe_b64decode(marker.encode()).decode())
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise InvalidParameterValue("Invalid marker") from None
    if offset < 0:
        raise InvalidParameterValue("Invalid marker")
    return offset
