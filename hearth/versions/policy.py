"""Resource-based policies of functions: AddPermission, GetPolicy, RemovePermission.

One policy per function and qualifier (the unqualified function and ``$LATEST`` share
one; each version and alias has its own), stored as its list of statements plus a
``RevisionId`` that changes on every write. Statements are built as Lambda builds them:
``Principal`` ``"*"``, ``{"Service": ...}`` for a service principal, or ``{"AWS": ...}``
for an account (as its ``root`` ARN) or an ARN; ``SourceArn``, ``SourceAccount``,
``PrincipalOrgID``, ``EventSourceToken``, ``FunctionUrlAuthType`` and
``InvokedViaFunctionUrl`` become the usual conditions.

**RevisionId:** as on Lambda, a policy has no revision of its own: GetPolicy answers with
the RevisionId of the function version or alias it belongs to, AddPermission and
RemovePermission change that RevisionId (GetFunction / GetAlias show the new one) and
check a given ``RevisionId`` against it (PreconditionFailedException, 412). An alias's
revision is its row's; a version's (or ``$LATEST``'s) stored revision also keys its warm
environments, so a permission change does not rewrite it (that would retire them and
make PublishVersion see a change): the new id is kept beside it in ``policy_revisions``
and shown while the stored revision it was made from is still current
(:func:`hearth.versions._store.shown_revision`); the next configuration or code change
supersedes it.

**Scope:** Hearth records and returns policies exactly, so the usual set-up steps of
function URLs and API Gateway integrations (``aws lambda add-permission ...``) work, but
it does not evaluate them: who may invoke is decided by SigV4 (and a URL's ``AuthType``).
"""

from __future__ import annotations

import json
import re
import sqlite3
import uuid
from typing import Any

from hearth.api.functions import PreconditionFailed
from hearth.api.names import FunctionRef, merge_qualifier, parse_function_name, path_param
from hearth.api.types import Principal, Request, Response
from hearth.api.wire import (
    ValidationError,
    check_enum,
    check_string,
    json_response,
    parse_json_body,
)
from hearth.errors import AwsError, ResourceConflict, ResourceNotFound
from hearth.types import LATEST, function_arn
from hearth.versions._store import FeatureStore, shown_revision
from hearth.versions.versions import query

SCHEMA = """
CREATE TABLE IF NOT EXISTS function_policies (
    account_id  TEXT NOT NULL,
    function    TEXT NOT NULL,
    qualifier   TEXT NOT NULL,
    statements  TEXT NOT NULL,
    revision_id TEXT NOT NULL,
    PRIMARY KEY (account_id, function, qualifier)
);
"""
_PREFIX = r"/2015-03-31/functions/(?P<fn>[^/]+)/policy"
_QUALIFIER = r"\$(LATEST(\.PUBLISHED)?)|[a-zA-Z0-9-_$]+"
_ACTION = r"(lambda:[*]|lambda:[a-zA-Z]+|[*])"
_SERVICE = re.compile(r"[a-z0-9.-]+\.amazonaws\.com(\.cn)?")
#: Lambda's limit on a function's policy document.
MAX_POLICY_BYTES = 20 * 1024


class PolicyLengthExceeded(AwsError):
    code = "PolicyLengthExceededException"
    status = 400


def _principal(value: str) -> Any:
    if value == "*":
        return "*"
    if re.fullmatch(r"\d{12}", value):
        return {"AWS": f"arn:aws:iam::{value}:root"}
    if _SERVICE.fullmatch(value):
        return {"Service": value}
    return {"AWS": value}


def build_statement(body: dict[str, Any], resource: str) -> dict[str, Any]:
    """The policy statement AddPermission adds, from its validated request body."""
    for member in ("StatementId", "Action", "Principal"):
        if member not in body:
            wire = member[0].lower() + member[1:]
            raise ValidationError(
                f"1 validation error detected: Value null at '{wire}' failed to satisfy"
                " constraint: Member must not be null"
            )
    sid = check_string(
        body["StatementId"], "statementId", min_len=1, max_len=100, pattern=r"([a-zA-Z0-9-_]+)"
    )
    action = check_string(body["Action"], "action", pattern=_ACTION)
    principal = check_string(body["Principal"], "principal", pattern=r"[^\s]+")
    stmt: dict[str, Any] = {
        "Sid": sid,
        "Effect": "Allow",
        "Principal": _principal(principal),
        "Action": action,
        "Resource": resource,
    }
    cond: dict[str, dict[str, str]] = {}
    if "SourceAccount" in body:
        acct = check_string(body["SourceAccount"], "sourceAccount", pattern=r"\d{12}")
        cond.setdefault("StringEquals", {})["AWS:SourceAccount"] = acct
    if "PrincipalOrgID" in body:
        org = check_string(
            body["PrincipalOrgID"], "principalOrgID", min_len=12, max_len=34,
            pattern=r"o-[a-z0-9]{10,32}",
        )  # fmt: skip
        cond.setdefault("StringEquals", {})["aws:PrincipalOrgID"] = org
    if "EventSourceToken" in body:
        token = check_string(
            body["EventSourceToken"], "eventSourceToken", max_len=256, pattern=r"[a-zA-Z0-9._\-]+"
        )
        cond.setdefault("StringEquals", {})["lambda:EventSourceToken"] = token
    if "FunctionUrlAuthType" in body:
        auth = check_enum(body["FunctionUrlAuthType"], "functionUrlAuthType", ["NONE", "AWS_IAM"])
        cond.setdefault("StringEquals", {})["lambda:FunctionUrlAuthType"] = auth
    if body.get("InvokedViaFunctionUrl") is True:
        cond.setdefault("Bool", {})["lambda:InvokedViaFunctionUrl"] = "true"
    if "SourceArn" in body:
        arn = check_string(
            body["SourceArn"], "sourceArn",
            pattern=r"arn:(aws[a-zA-Z0-9-]*):([a-zA-Z0-9\-])+:((eusc-)?[a-z]{2}((-gov)|(-iso([a-z]?)))?-[a-z]+-\d{1})?:(\d{12})?:(.*)",
        )  # fmt: skip
        cond.setdefault("ArnLike", {})["AWS:SourceArn"] = arn
    if cond:
        stmt["Condition"] = cond
    return stmt


def _policy_doc(statements: list[dict[str, Any]]) -> str:
    doc = {"Version": "2012-10-17", "Id": "default", "Statement": statements}
    return json.dumps(doc, separators=(",", ":"))


class PolicyApi:
    """Registered on the LambdaApi with :meth:`register`; shares the core store."""

    def __init__(self, store: FeatureStore) -> None:
        self._store = store

    async def open(self) -> None:
        await self._store.add_schema(SCHEMA)

    def register(self, add_route: Any) -> None:
        add_route("POST", _PREFIX + r"/?", self._add)
        add_route("GET", _PREFIX + r"/?", self._get)
        add_route("DELETE", _PREFIX + r"/(?P<sid>[^/]+)/?", self._remove)

    # -- helpers ----------------------------------------------------------------------
    @staticmethod
    def _target(p: Principal, req: Request, m: re.Match[str]) -> tuple[FunctionRef, str]:
        ref = parse_function_name(path_param(m.group("fn")), p.account_id, region=p.region)
        given = query(req).get("Qualifier")
        if given is not None:
            check_string(given, "qualifier", min_len=1, max_len=128, pattern=_QUALIFIER)
        qualifier = merge_qualifier(ref, given) or ""
        arn = function_arn(p.region, p.account_id, ref.name)
        resource = f"{arn}:{qualifier}" if qualifier else arn
        return FunctionRef(ref.name, "" if qualifier == LATEST else qualifier), resource

    @staticmethod
    def _check_exists(db: sqlite3.Connection, p: Principal, ref: FunctionRef, res: str) -> None:
        row = db.execute(
            "SELECT 1 FROM function_versions WHERE account_id=? AND name=? AND version=?",
            (p.account_id, ref.name, LATEST),
        ).fetchone()
        q = ref.qualifier or ""
        if row is not None and q.isdigit():
            row = db.execute(
                "SELECT 1 FROM function_versions WHERE account_id=? AND name=? AND version=?",
                (p.account_id, ref.name, q),
            ).fetchone()
        elif row is not None and q:
            row = db.execute(
                "SELECT 1 FROM aliases WHERE account_id=? AND function=? AND name=?",
                (p.account_id, ref.name, q),
            ).fetchone()
        if row is None:
            raise ResourceNotFound(f"Function not found: {res}")

    @staticmethod
    def _load(
        db: sqlite3.Connection, p: Principal, ref: FunctionRef
    ) -> tuple[list[dict[str, Any]], str] | None:
        row = db.execute(
            "SELECT statements, revision_id FROM function_policies"
            " WHERE account_id=? AND function=? AND qualifier=?",
            (p.account_id, ref.name, ref.qualifier or ""),
        ).fetchone()
        return (json.loads(row[0]), row[1]) if row else None

    @staticmethod
    def _revision(db: sqlite3.Connection, p: Principal, ref: FunctionRef) -> str:
        """The RevisionId of the version or alias the policy belongs to (it exists)."""
        q = ref.qualifier or ""
        if q and not q.isdigit():
            row = db.execute(
                "SELECT revision_id FROM aliases WHERE account_id=? AND function=? AND name=?",
                (p.account_id, ref.name, q),
            ).fetchone()
            return str(row[0])
        version = q or LATEST
        row = db.execute(
            "SELECT revision_id FROM function_versions WHERE account_id=? AND name=? AND version=?",
            (p.account_id, ref.name, version),
        ).fetchone()
        return shown_revision(db, p.account_id, ref.name, version, str(row[0]))

    @staticmethod
    def _new_revision(db: sqlite3.Connection, p: Principal, ref: FunctionRef) -> str:
        """A permission change: the version's or alias's RevisionId changes."""
        new = str(uuid.uuid4())
        q = ref.qualifier or ""
        if q and not q.isdigit():
            db.execute(
                "UPDATE aliases SET revision_id=? WHERE account_id=? AND function=? AND name=?",
                (new, p.account_id, ref.name, q),
            )
            return new
        version = q or LATEST
        row = db.execute(
            "SELECT revision_id FROM function_versions WHERE account_id=? AND name=? AND version=?",
            (p.account_id, ref.name, version),
        ).fetchone()
        db.execute(
            "INSERT OR REPLACE INTO policy_revisions VALUES (?,?,?,?,?)",
            (p.account_id, ref.name, version, str(row[0]), new),
        )
        return new

    @staticmethod
    def _check_revision(given: Any, current: str | None) -> None:
        if given is not None and given != current:
            raise PreconditionFailed(
                "The Revision Id provided does not match the latest Revision Id. Call the"
                " GetFunction/GetAlias API to retrieve the latest Revision Id"
            )

    def _save(
        self, db: sqlite3.Connection, p: Principal, ref: FunctionRef, stmts: list[dict[str, Any]]
    ) -> None:
        key = (p.account_id, ref.name, ref.qualifier or "")
        revision = self._new_revision(db, p, ref)
        if not stmts:
            db.execute(
                "DELETE FROM function_policies WHERE account_id=? AND function=? AND qualifier=?",
                key,
            )
            return
        db.execute(
            "INSERT OR REPLACE INTO function_policies VALUES (?,?,?,?,?)",
            (*key, json.dumps(stmts), revision),
        )

    # -- operations -------------------------------------------------------------------
    async def _add(self, p: Principal, req: Request, m: re.Match[str]) -> Response:
        ref, resource = self._target(p, req, m)
        body = parse_json_body(req.body)
        stmt = build_statement(body, resource)

        def op(db: sqlite3.Connection) -> None:
            self._check_exists(db, p, ref, resource)
            found = self._load(db, p, ref)
            stmts = found[0] if found else []
            self._check_revision(body.get("RevisionId"), self._revision(db, p, ref))
            if any(s.get("Sid") == stmt["Sid"] for s in stmts):
                raise ResourceConflict(
                    f"The statement id ({stmt['Sid']}) provided already exists. Please provide"
                    " a new statement id, or remove the existing statement."
                )
            stmts.append(stmt)
            if len(_policy_doc(stmts).encode()) > MAX_POLICY_BYTES:
                raise PolicyLengthExceeded(
                    "The final policy size is bigger than the limit (20480)."
                )
            self._save(db, p, ref, stmts)

        await self._store.run(op)
        return json_response(201, {"Statement": json.dumps(stmt, separators=(",", ":"))})

    async def _get(self, p: Principal, req: Request, m: re.Match[str]) -> Response:
        ref, resource = self._target(p, req, m)

        def op(db: sqlite3.Connection) -> tuple[list[dict[str, Any]], str] | None:
            self._check_exists(db, p, ref, resource)
            found = self._load(db, p, ref)
            return None if found is None else (found[0], self._revision(db, p, ref))

        found = await self._store.run(op)
        if found is None:
            raise ResourceNotFound("The resource you requested does not exist.")
        stmts, revision = found
        return json_response(200, {"Policy": _policy_doc(stmts), "RevisionId": revision})

    async def _remove(self, p: Principal, req: Request, m: re.Match[str]) -> Response:
        ref, resource = self._target(p, req, m)
        sid = check_string(
            path_param(m.group("sid")), "statementId", min_len=1, max_len=100,
            pattern=r"([a-zA-Z0-9-_.]+)",
        )  # fmt: skip
        revision_given = query(req).get("RevisionId")

        def op(db: sqlite3.Connection) -> None:
            self._check_exists(db, p, ref, resource)
            found = self._load(db, p, ref)
            if found is None:
                raise ResourceNotFound("No policy is associated with the given resource.")
            stmts = found[0]
            self._check_revision(revision_given, self._revision(db, p, ref))
            kept = [s for s in stmts if s.get("Sid") != sid]
            if len(kept) == len(stmts):
                raise ResourceNotFound(f"Statement {sid} is not found in resource policy.")
            self._save(db, p, ref, kept)

        await self._store.run(op)
        return Response(204, [], b"")

    async def qualifier_deleted(self, account_id: str, name: str, qualifier: str) -> None:
        def op(db: sqlite3.Connection) -> None:
            db.execute(
                "DELETE FROM function_policies WHERE account_id=? AND function=? AND qualifier=?",
                (account_id, name, qualifier),
            )
            db.execute(
                "DELETE FROM policy_revisions WHERE account_id=? AND function=? AND version=?",
                (account_id, name, qualifier),
            )

        await self._store.run(op)

    async def function_deleted(self, account_id: str, name: str) -> None:
        def op(db: sqlite3.Connection) -> None:
            db.execute(
                "DELETE FROM function_policies WHERE account_id=? AND function=?",
                (account_id, name),
            )
            db.execute(
                "DELETE FROM policy_revisions WHERE account_id=? AND function=?",
                (account_id, name),
            )

        await self._store.run(op)
