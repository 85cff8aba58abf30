"""Layer version permissions: who besides the owner may use a layer version.

Operations (botocore's Lambda model, API date 2018-10-31): AddLayerVersionPermission
(``POST .../versions/{n}/policy``, 201 ``{Statement, RevisionId}``; ``Statement`` is the
statement as a JSON string), GetLayerVersionPolicy (``GET``, ``{Policy, RevisionId}``;
``Policy`` is ``{"Version": "2012-10-17", "Id": "default", "Statement": [...]}`` as a
JSON string), RemoveLayerVersionPermission (``DELETE .../policy/{sid}``, 204).

Statements take Lambda's shapes: an account principal becomes ``{"AWS":
"arn:aws:iam::<id>:root"}``, ``*`` stays ``"*"``, and ``OrganizationId`` adds a
``StringEquals`` ``aws:PrincipalOrgID`` condition. Errors: a duplicate statement id is
ResourceConflictException; a RevisionId that is not the policy's current one is
PreconditionFailedException; no policy, or no such statement, is
ResourceNotFoundException.

:meth:`LayerPolicies.allows` is the check another account's use goes through
(GetLayerVersionByArn, a function's ``Layers``): a statement for ``*`` without a
condition, or for that account, grants it. Hearth has no organizations, so a statement
limited to an organization grants no one.
"""

from __future__ import annotations

import json
import re
import sqlite3
import uuid
from collections.abc import Callable
from typing import Any

from hearth.api.functions import PreconditionFailed
from hearth.api.types import Principal, Request, Response
from hearth.api.wire import check_string, json_response, parse_json_body, validation_error
from hearth.errors import ResourceConflict, ResourceNotFound
from hearth.layers._store import LayerStore, StoreLike

SCHEMA = """
CREATE TABLE IF NOT EXISTS layer_policies (
    account_id  TEXT NOT NULL,
    name        TEXT NOT NULL,
    version     INTEGER NOT NULL,
    statements  TEXT NOT NULL,
    revision_id TEXT NOT NULL,
    PRIMARY KEY (account_id, name, version)
);
"""

ACTION = "lambda:GetLayerVersion"
STATEMENT_ID_PATTERN = r"([a-zA-Z0-9-_]+)"
PRINCIPAL_PATTERN = r"\d{12}|\*|arn:(aws[a-zA-Z-]*):iam::\d{12}:root"
ORGANIZATION_PATTERN = r"o-[a-z0-9]{10,32}"
NO_POLICY = "No policy is associated with the given resource."
_PREFIX = "/2018-10-31/layers"

Statements = list[dict[str, Any]]


def _principal_doc(principal: str) -> str | dict[str, str]:
    if principal == "*":
        return "*"
    if re.fullmatch(r"\d{12}", principal):
        return {"AWS": f"arn:aws:iam::{principal}:root"}
    return {"AWS": principal}


def _grants(statement: dict[str, Any], account_id: str) -> bool:
    principal = statement.get("Principal")
    if principal == "*":
        return "Condition" not in statement
    return isinstance(principal, dict) and principal.get("AWS") == (
        f"arn:aws:iam::{account_id}:root"
    )


class LayerPolicies:
    """Each layer version's statements and revision, in the SQLite store."""

    def __init__(self, store: StoreLike) -> None:
        self._store = store

    async def open(self) -> None:
        await self._store.add_schema(SCHEMA)

    async def read(self, account_id: str, name: str, version: int) -> tuple[Statements, str]:
        """The statements and revision; no statements and "" when there is no policy."""

        def op(db: sqlite3.Connection) -> tuple[Statements, str]:
            row = db.execute(
                "SELECT statements, revision_id FROM layer_policies"
                " WHERE account_id=? AND name=? AND version=?",
                (account_id, name, version),
            ).fetchone()
            return (json.loads(str(row[0])), str(row[1])) if row else ([], "")

        return await self._store.run(op)

    async def update(
        self,
        account_id: str,
        name: str,
        version: int,
        change: Callable[[Statements], Statements],
        revision_id: str | None,
    ) -> str:
        """Apply ``change`` to the statements in one transaction; return the new revision.

        ``change`` may raise (a conflict, a missing statement): nothing is written then.
        """

        def op(db: sqlite3.Connection) -> str:
            db.execute("BEGIN IMMEDIATE")
            try:
                row = db.execute(
                    "SELECT statements, revision_id FROM layer_policies"
                    " WHERE account_id=? AND name=? AND version=?",
                    (account_id, name, version),
                ).fetchone()
                current: Statements = json.loads(str(row[0])) if row else []
                if revision_id is not None and (row is None or revision_id != str(row[1])):
                    raise PreconditionFailed(
                        "The Revision Id provided does not match the latest Revision Id."
                        " Call the GetLayerVersionPolicy API to retrieve the latest"
                        " Revision Id"
                    )
                statements = change(current)
                new_revision = str(uuid.uuid4())
                if statements:
                    db.execute(
                        "INSERT INTO layer_policies VALUES (?,?,?,?,?)"
                        " ON CONFLICT (account_id, name, version) DO UPDATE SET"
                        " statements=excluded.statements, revision_id=excluded.revision_id",
                        (account_id, name, version, json.dumps(statements), new_revision),
                    )
                else:
                    db.execute(
                        "DELETE FROM layer_policies WHERE account_id=? AND name=? AND version=?",
                        (account_id, name, version),
                    )
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
            return new_revision

        return await self._store.run(op)

    async def allows(self, owner: str, name: str, version: int, account_id: str) -> bool:
        """Whether ``account_id`` may use the version ``owner`` published."""
        statements, _ = await self.read(owner, name, version)
        return any(_grants(s, account_id) for s in statements)


class LayerPolicyApi:
    """The three permission operations, on the layer versions of the caller's account."""

    def __init__(
        self,
        policies: LayerPolicies,
        layers: LayerStore,
        name_of: Callable[[Principal, re.Match[str]], str],
        version_of: Callable[[re.Match[str]], int],
    ) -> None:
        self._policies = policies
        self._layers = layers
        self._name_of = name_of
        self._version_of = version_of

    def routes(self) -> list[tuple[str, str, Any]]:
        """(method, path regex, handler) for ``LambdaApi.add_route``."""
        base = rf"{_PREFIX}/(?P<name>[^/]+)/versions/(?P<version>[^/]+)/policy"
        return [
            ("POST", rf"{base}/?", self._add),
            ("GET", rf"{base}/?", self._get),
            ("DELETE", rf"{base}/(?P<sid>[^/]+)/?", self._remove),
        ]

    async def _target(self, p: Principal, m: re.Match[str]) -> tuple[str, int, str]:
        """(name, version, version ARN) of a live version of the caller's account."""
        name = self._name_of(p, m)
        version = self._version_of(m)
        lv = await self._layers.get(p.account_id, name, version)
        if lv is None:
            raise ResourceNotFound(
                f"Layer version arn:aws:lambda:{p.region}:{p.account_id}:layer:{name}:{version}"
                " does not exist."
            )
        return name, version, lv.arn

    @staticmethod
    def _revision(req: Request) -> str | None:
        from urllib.parse import parse_qsl

        return dict(parse_qsl(req.query)).get("RevisionId")

    async def _add(self, p: Principal, req: Request, m: re.Match[str]) -> Response:
        body = parse_json_body(req.body)
        for key, member in (
            ("StatementId", "statementId"),
            ("Action", "action"),
            ("Principal", "principal"),
        ):
            if body.get(key) is None:
                raise validation_error(None, member, "not be null")
        sid = check_string(
            body["StatementId"],
            "statementId",
            min_len=1,
            max_len=100,
            pattern=STATEMENT_ID_PATTERN,
        )
        action = check_string(body["Action"], "action", max_len=22, pattern=ACTION)
        principal = check_string(
            body["Principal"], "principal", max_len=10000, pattern=PRINCIPAL_PATTERN
        )
        org = body.get("OrganizationId")
        if org is not None:
            org = check_string(org, "organizationId", max_len=34, pattern=ORGANIZATION_PATTERN)
        name, version, arn = await self._target(p, m)
        statement: dict[str, Any] = {
            "Sid": sid,
            "Effect": "Allow",
            "Principal": _principal_doc(principal),
            "Action": action,
            "Resource": arn,
        }
        if org:
            statement["Condition"] = {"StringEquals": {"aws:PrincipalOrgID": org}}

        def add(current: Statements) -> Statements:
            if any(s.get("Sid") == sid for s in current):
                raise ResourceConflict(
                    f"The statement id ({sid}) provided already exists. Please provide a new"
                    " statement id, or remove the existing statement."
                )
            return [*current, statement]

        revision = await self._policies.update(
            p.account_id, name, version, add, self._revision(req)
        )
        return json_response(201, {"Statement": json.dumps(statement), "RevisionId": revision})

    async def _get(self, p: Principal, req: Request, m: re.Match[str]) -> Response:
        name, version, _ = await self._target(p, m)
        statements, revision = await self._policies.read(p.account_id, name, version)
        if not statements:
            raise ResourceNotFound(NO_POLICY)
        policy = {"Version": "2012-10-17", "Id": "default", "Statement": statements}
        return json_response(200, {"Policy": json.dumps(policy), "RevisionId": revision})

    async def _remove(self, p: Principal, req: Request, m: re.Match[str]) -> Response:
        sid = check_string(
            m.group("sid"), "statementId", min_len=1, max_len=100, pattern=STATEMENT_ID_PATTERN
        )
        name, version, _ = await self._target(p, m)

        def remove(current: Statements) -> Statements:
            if not current:
                raise ResourceNotFound(NO_POLICY)
            kept = [s for s in current if s.get("Sid") != sid]
            if len(kept) == len(current):
                raise ResourceNotFound(f"Statement {sid} is not found in resource policy.")
            return kept

        await self._policies.update(p.account_id, name, version, remove, self._revision(req))
        return json_response(204, None)
