"""PublishVersion, ListVersionsByFunction, and deleting one version.

A version is an immutable copy of the ``$LATEST`` snapshot under the next integer: its
code and configuration never change afterwards (the control plane only ever updates the
``$LATEST`` row), and it gets its own RevisionId, so the worker pools its environments
apart from ``$LATEST``'s (pools are keyed by account, name, version and revision).

PublishVersion, as AWS does it:

1. ``$LATEST`` must exist (else ResourceNotFoundException).
2. ``RevisionId``, if given, must be ``$LATEST``'s (else PreconditionFailedException);
   ``CodeSha256``, if given, must be ``$LATEST``'s (else InvalidParameterValueException,
   the error AWS returns for that precondition).
3. If ``$LATEST`` has not changed since the last publish and that version still exists,
   the existing version is returned instead of a new one.
4. Otherwise version N = last + 1 is written, with ``Description`` from the request if
   given (else ``$LATEST``'s).

The read of ``$LATEST`` and the insert run in one call on the store's thread, so an
update racing a publish lands either wholly before or wholly after it.
"""

from __future__ import annotations

import base64
import binascii
import re
import sqlite3
import uuid
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl

from hearth.api.functions import PreconditionFailed, configuration_doc, list_entry
from hearth.api.names import FunctionRef, parse_function_name, path_param
from hearth.api.types import Principal, Request, Response
from hearth.api.wire import check_int, check_string, json_response, now_iso, parse_json_body
from hearth.errors import InvalidParameterValue, ResourceConflict, ResourceNotFound
from hearth.types import LATEST, FunctionConfig, function_arn
from hearth.versions._store import (
    FeatureStore,
    aliases_of,
    load_version_rows,
    shown_revision,
    shown_revisions,
)

_FN = r"/2015-03-31/functions/(?P<fn>[^/]+)"


def unknown_function(region: str, account_id: str, name: str, qualifier: str | None) -> str:
    arn = function_arn(region, account_id, name)
    return f"Function not found: {arn}:{qualifier}" if qualifier else f"Function not found: {arn}"


def query(req: Request) -> dict[str, str]:
    return dict(parse_qsl(req.query, keep_blank_values=True))


def page_params(q: dict[str, str], hi: int) -> tuple[int, int]:
    """(offset, limit) from ``Marker`` (an opaque offset) and ``MaxItems``."""
    limit = 50
    if "MaxItems" in q:
        try:
            limit = int(q["MaxItems"])
        except ValueError:
            raise InvalidParameterValue("MaxItems must be an integer") from None
        check_int(limit, "maxItems", lo=1, hi=hi)
        limit = min(limit, 50)
    offset = 0
    if q.get("Marker"):
        try:
            offset = int(base64.urlsafe_b64decode(q["Marker"].encode()).decode())
        except (binascii.Error, ValueError, UnicodeDecodeError):
            raise InvalidParameterValue("Invalid marker") from None
    return offset, limit


def next_marker(offset: int) -> str:
    return base64.urlsafe_b64encode(str(offset).encode()).decode()


class VersionsApi:
    """Registered on the LambdaApi with :meth:`register`; shares the core store."""

    def __init__(self, store: FeatureStore) -> None:
        self._store = store
        self.on_publish: list[Callable[[FunctionConfig], None]] = []
        """Called with each version published (the worker starts SnapStart templates)."""

    def register(self, add_route: Any) -> None:
        add_route("POST", _FN + r"/versions/?", self._publish)
        add_route("GET", _FN + r"/versions/?", self._list)

    def _ref(self, p: Principal, m: re.Match[str], max_len: int = 140) -> FunctionRef:
        return parse_function_name(
            path_param(m.group("fn")), p.account_id, max_len=max_len, region=p.region
        )

    async def _publish(self, p: Principal, req: Request, m: re.Match[str]) -> Response:
        ref = self._ref(p, m)
        body = parse_json_body(req.body)
        sha = body.get("CodeSha256")
        rev = body.get("RevisionId")
        desc = body.get("Description")
        if sha is not None:
            check_string(sha, "codeSha256")
        if rev is not None:
            check_string(rev, "revisionId")
        if desc is not None:
            check_string(desc, "description", max_len=256)

        cfg = await self.publish(p.account_id, p.region, ref.name, sha, rev, desc)
        return json_response(201, configuration_doc(cfg))

    async def publish(
        self,
        account_id: str,
        region: str,
        name: str,
        sha: str | None = None,
        rev: str | None = None,
        desc: str | None = None,
    ) -> FunctionConfig:
        """Publish ``$LATEST`` (see the module docstring); one transaction."""

        def op(db: sqlite3.Connection) -> FunctionConfig:
            db.execute("BEGIN IMMEDIATE")
            try:
                cfg = _publish_in(db, account_id, region, name, sha, rev, desc)
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
            return cfg

        cfg = await self._store.run(op)
        for hook in self.on_publish:
            hook(cfg)
        return cfg

    async def _list(self, p: Principal, req: Request, m: re.Match[str]) -> Response:
        ref = self._ref(p, m, max_len=256)
        offset, limit = page_params(query(req), 10000)

        def op(db: sqlite3.Connection) -> tuple[list[FunctionConfig], list[str]]:
            cfgs = load_version_rows(db, p.account_id, ref.name)
            page = cfgs[offset : offset + limit]
            return cfgs, shown_revisions(db, p.account_id, page)

        cfgs, revisions = await self._store.run(op)
        if not cfgs:
            raise ResourceNotFound(unknown_function(p.region, p.account_id, ref.name, None))
        page = cfgs[offset : offset + limit]
        docs = [configuration_doc(c) for c in page]
        for d, revision in zip(docs, revisions, strict=True):
            d["RevisionId"] = revision
            if d["Version"] == LATEST:  # AWS lists $LATEST under its qualified ARN
                d["FunctionArn"] = f"{d['FunctionArn']}:{LATEST}"
        doc: dict[str, Any] = {"Versions": docs}
        if offset + limit < len(cfgs):
            doc["NextMarker"] = next_marker(offset + limit)
        return json_response(200, doc)

    async def list_all(
        self, account_id: str, marker: str | None, max_items: int | None
    ) -> dict[str, Any]:
        """ListFunctions with ``FunctionVersion=ALL``: each function's ``$LATEST`` then its
        versions, functions by name; every entry under its qualified ARN (as AWS lists them)."""
        q = {"Marker": marker or ""}
        if max_items is not None:
            q["MaxItems"] = str(max_items)
        offset, limit = page_params(q, 10000)

        def op(db: sqlite3.Connection) -> tuple[list[FunctionConfig], list[str]]:
            rows = db.execute(
                "SELECT config FROM function_versions WHERE account_id=?", (account_id,)
            ).fetchall()
            cfgs = sorted(
                (FunctionConfig.from_json(r[0]) for r in rows),
                key=lambda c: (c.name, int(c.version) if c.version.isdigit() else -1),
            )
            return cfgs, shown_revisions(db, account_id, cfgs[offset : offset + limit])

        cfgs, revisions = await self._store.run(op)
        docs = [list_entry(c) for c in cfgs[offset : offset + limit]]
        for d, revision in zip(docs, revisions, strict=True):
            d["RevisionId"] = revision
            if d["Version"] == LATEST:
                d["FunctionArn"] = f"{d['FunctionArn']}:{LATEST}"
        doc: dict[str, Any] = {"Functions": docs}
        if offset + limit < len(cfgs):
            doc["NextMarker"] = next_marker(offset + limit)
        return doc

    async def delete_version(
        self, account_id: str, region: str, ref: FunctionRef
    ) -> FunctionConfig | None:
        """DeleteFunction with a numeric Qualifier: remove that one version (None: there
        was no such version, which AWS answers with 204 like a deletion).

        A version an alias points to (as primary or weighted second version) cannot be
        deleted (ResourceConflictException, as on AWS); an alias name as qualifier is an
        InvalidParameterValueException.
        """
        qualifier = ref.qualifier or LATEST
        if not qualifier.isdigit():
            raise InvalidParameterValue("Deletion of aliases is not supported.")

        def op(db: sqlite3.Connection) -> FunctionConfig | None:
            row = db.execute(
                "SELECT config FROM function_versions WHERE account_id=? AND name=? AND version=?",
                (account_id, ref.name, qualifier),
            ).fetchone()
            if row is None:
                # As on AWS: an absent version of an existing function is a no-op (204).
                latest = db.execute(
                    "SELECT 1 FROM function_versions WHERE account_id=? AND name=? AND version=?",
                    (account_id, ref.name, LATEST),
                ).fetchone()
                if latest is None:
                    raise ResourceNotFound(unknown_function(region, account_id, ref.name, None))
                return None
            users = [
                a.name
                for a in aliases_of(db, account_id, ref.name)
                if a.version == qualifier or qualifier in a.weights
            ]
            if users:
                raise ResourceConflict(
                    "Unable to delete version because the following aliases reference it: "
                    f"[{', '.join(users)}]"
                )
            db.execute(
                "DELETE FROM function_versions WHERE account_id=? AND name=? AND version=?",
                (account_id, ref.name, qualifier),
            )
            return FunctionConfig.from_json(row[0])

        return await self._store.run(op)


def _publish_in(
    db: sqlite3.Connection,
    account_id: str,
    region: str,
    name: str,
    sha: str | None,
    rev: str | None,
    desc: str | None,
) -> FunctionConfig:
    row = db.execute(
        "SELECT config FROM function_versions WHERE account_id=? AND name=? AND version=?",
        (account_id, name, LATEST),
    ).fetchone()
    if row is None:
        raise ResourceNotFound(unknown_function(region, account_id, name, None))
    latest = FunctionConfig.from_json(row[0])
    if rev is not None and rev != shown_revision(db, account_id, name, LATEST, latest.revision_id):
        raise PreconditionFailed(
            "The Revision Id provided does not match the latest Revision Id. Call the"
            " GetFunction/GetAlias API to retrieve the latest Revision Id"
        )
    if sha is not None and sha != latest.code_sha256_b64:
        raise InvalidParameterValue(
            f"CodeSHA256 ({sha}) is different from current CodeSHA256 in $LATEST"
            f" ({latest.code_sha256_b64}). Please try again with the CodeSHA256 in $LATEST."
        )
    counter = db.execute(
        "SELECT last_version, from_revision FROM version_counters WHERE account_id=? AND name=?",
        (account_id, name),
    ).fetchone()
    last = int(counter[0]) if counter else 0
    if counter is not None and counter[1] == latest.revision_id:
        same = db.execute(
            "SELECT config FROM function_versions WHERE account_id=? AND name=? AND version=?",
            (account_id, name, str(last)),
        ).fetchone()
        if same is not None:
            return FunctionConfig.from_json(same[0])
    version = str(last + 1)
    cfg = latest.replace(
        version=version,
        revision_id=str(uuid.uuid4()),
        last_modified=now_iso(),
        description=latest.description if desc is None else desc,
    )
    db.execute(
        "INSERT INTO function_versions VALUES (?,?,?,?,?,?,?)",
        (account_id, name, version, cfg.revision_id, cfg.code_sha256_hex, cfg.code_size,
         cfg.to_json()),
    )  # fmt: skip
    db.execute(
        "INSERT INTO version_counters VALUES (?,?,?,?) ON CONFLICT (account_id, name)"
        " DO UPDATE SET last_version=excluded.last_version,"
        " from_revision=excluded.from_revision",
        (account_id, name, last + 1, latest.revision_id),
    )
    return cfg
