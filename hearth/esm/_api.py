"""Create/Get/List/Update/DeleteEventSourceMapping, and the pollers they start and stop.

Mappings are control-plane state in the main store (``event_source_mappings``); on
start, every enabled mapping gets its pollers back.
"""

from __future__ import annotations

import re
import sqlite3
import time
import uuid
from typing import Any
from urllib.parse import parse_qsl

from hearth.api.names import parse_function_name, path_param
from hearth.api.types import Principal, Request, Response
from hearth.api.wire import (
    check_int,
    check_string,
    json_response,
    parse_json_body,
    validation_error,
)
from hearth.errors import InvalidParameterValue, ResourceConflict, ResourceNotFound
from hearth.esm._model import Mapping, apply_settings
from hearth.esm._poller import MappingPoller
from hearth.invoke.router import Router
from hearth.queues import QueueEngine, parse_queue_arn
from hearth.store.sqlite import SqliteStore

#: botocore's ``Arn`` shape of ``EventSourceArn``: outside it, the model's ValidationException.
EVENT_SOURCE_ARN_PATTERN = (
    r"arn:(aws[a-zA-Z0-9-]*):([a-zA-Z0-9\-])+:((eusc-)?[a-z]{2}((-gov)|(-iso([a-z]?)))?-[a-z]+-\d{1})?"
    r":(\d{12})?:(.*)"
)

SCHEMA = """
CREATE TABLE IF NOT EXISTS event_source_mappings (
    uuid       TEXT PRIMARY KEY,
    account_id TEXT NOT NULL,
    doc        TEXT NOT NULL
);
"""
_BASE = r"/2015-03-31/event-source-mappings"


class EventSourceMappings:
    def __init__(self, store: SqliteStore, queues: QueueEngine, router: Router) -> None:
        self._store = store
        self._queues = queues
        self._router = router
        self._mappings: dict[str, Mapping] = {}
        self._pollers: dict[str, MappingPoller] = {}

    async def open(self) -> None:
        await self._store.add_schema(SCHEMA)

        def load(db: sqlite3.Connection) -> list[str]:
            return [r[0] for r in db.execute("SELECT doc FROM event_source_mappings")]

        for doc in await self._store.run(load):
            m = Mapping.from_json(doc)
            self._mappings[m.uuid] = m
            if m.enabled:
                self._start(m)

    async def aclose(self) -> None:
        for poller in list(self._pollers.values()):
            await poller.stop()
        self._pollers.clear()

    def register(self, add_route: Any) -> None:
        add_route("POST", _BASE + r"/?", self._create)
        add_route("GET", _BASE + r"/?", self._list)
        add_route("GET", _BASE + r"/(?P<id>[^/]+)/?", self._get)
        add_route("PUT", _BASE + r"/(?P<id>[^/]+)/?", self._update)
        add_route("DELETE", _BASE + r"/(?P<id>[^/]+)/?", self._delete)

    def statistics(self) -> dict[str, dict[str, int]]:
        return {k: p.statistics() for k, p in self._pollers.items()}

    # -- pollers ----------------------------------------------------------------------
    def _start(self, m: Mapping) -> None:
        poller = self._pollers.get(m.uuid)
        if poller is None:
            poller = self._pollers[m.uuid] = MappingPoller(m, self._queues, self._router)
        poller.mapping = m
        poller.start()

    async def _stop(self, m: Mapping) -> None:
        poller = self._pollers.pop(m.uuid, None)
        if poller is not None:
            await poller.stop()

    async def _save(self, m: Mapping) -> None:
        def op(db: sqlite3.Connection) -> None:
            db.execute(
                "INSERT OR REPLACE INTO event_source_mappings VALUES (?,?,?)",
                (m.uuid, m.account_id, m.to_json()),
            )

        await self._store.run(op)

    # -- handlers ---------------------------------------------------------------------
    def _mapping(self, p: Principal, m: re.Match[str]) -> Mapping:
        found = self._mappings.get(path_param(m.group("id")))
        if found is None or found.account_id != p.account_id:
            raise ResourceNotFound("The resource you requested does not exist.")
        return found

    async def _function(self, p: Principal, raw: Any, source: str) -> tuple[str, str | None]:
        """Resolve the function; Lambda requires the queue's visibility timeout ≥ its timeout."""
        if raw is None:
            raise validation_error(None, "functionName", "not be null")
        check_string(raw, "functionName", min_len=1)
        ref = parse_function_name(raw, p.account_id, region=p.region)
        try:
            cfg = await self._router.resolve(p.account_id, p.region, ref.name, ref.qualifier)
        except ResourceNotFound:
            # AWS answers a mapping to an absent function (or version/alias) this way.
            raise InvalidParameterValue("Function does not exist") from None
        q = self._queues.by_arn(source)
        if q is not None and q.int_attr("VisibilityTimeout") < cfg.timeout:
            raise InvalidParameterValue(
                f"Queue visibility timeout: {q.int_attr('VisibilityTimeout')} seconds is less"
                f" than Function timeout: {cfg.timeout} seconds"
            )
        return ref.name, ref.qualifier

    async def _create(self, p: Principal, req: Request, match: re.Match[str]) -> Response:
        body = parse_json_body(req.body)
        source = body.get("EventSourceArn")
        if source is None:
            raise InvalidParameterValue("Unrecognized event source.")
        check_string(source, "eventSourceArn", max_len=10000, pattern=EVENT_SOURCE_ARN_PATTERN)
        if parse_queue_arn(source) is None:
            raise InvalidParameterValue(
                "Hearth supports event source mappings from its SQS queues only:"
                f" EventSourceArn {source!r} is not an SQS queue ARN."
            )
        # The request's own members first (the model's ValidationException), as AWS
        # checks them before it looks at the function or the queue.
        apply_settings(Mapping("", p.account_id, p.region, "", None, source), body)
        name, qualifier = await self._function(p, body.get("FunctionName"), source)
        if self._queues.by_arn(source) is None:
            raise InvalidParameterValue(
                "Error occurred while ReceiveMessage. SQS Error Code:"
                " AWS.SimpleQueueService.NonExistentQueue. SQS Error Message: The specified"
                " queue does not exist."
            )
        for other in self._mappings.values():
            if (
                other.account_id == p.account_id
                and other.event_source_arn == source
                and other.function_name == name
                and other.qualifier == qualifier
            ):
                raise ResourceConflict(
                    f'An event source mapping with SQS arn (" {source} ") and function'
                    f' (" {name} ") already exists. Please update or delete the existing'
                    f" mapping with UUID {other.uuid}"
                )
        m = Mapping(str(uuid.uuid4()), p.account_id, p.region, name, qualifier, source)
        apply_settings(m, body)
        m.last_modified = time.time()
        m.state = "Enabled" if m.enabled else "Disabled"
        await self._save(m)
        self._mappings[m.uuid] = m
        if m.enabled:
            self._start(m)
        return json_response(202, m.wire("Creating"))

    async def _get(self, p: Principal, req: Request, match: re.Match[str]) -> Response:
        return json_response(200, self._mapping(p, match).wire())

    async def _list(self, p: Principal, req: Request, match: re.Match[str]) -> Response:
        q = dict(parse_qsl(req.query, keep_blank_values=True))
        items = sorted(
            (m for m in self._mappings.values() if m.account_id == p.account_id),
            key=lambda m: m.uuid,
        )
        if q.get("EventSourceArn"):
            check_string(
                q["EventSourceArn"], "eventSourceArn", max_len=10000,
                pattern=EVENT_SOURCE_ARN_PATTERN,
            )  # fmt: skip
            items = [m for m in items if m.event_source_arn == q["EventSourceArn"]]
        if q.get("FunctionName"):
            ref = parse_function_name(q["FunctionName"], p.account_id, region=p.region)
            items = [
                m
                for m in items
                if m.function_name == ref.name and (ref.qualifier in (None, m.qualifier))
            ]
        max_items = 100
        if "MaxItems" in q:
            try:
                max_items = int(q["MaxItems"])
            except ValueError:
                raise InvalidParameterValue("MaxItems must be an integer") from None
            check_int(max_items, "maxItems", lo=1, hi=10000)
        if q.get("Marker"):
            items = [m for m in items if m.uuid > q["Marker"]]
        page = items[:max_items]
        doc: dict[str, Any] = {"EventSourceMappings": [m.wire() for m in page]}
        if len(items) > max_items:
            doc["NextMarker"] = page[-1].uuid
        return json_response(200, doc)

    async def _update(self, p: Principal, req: Request, match: re.Match[str]) -> Response:
        current = self._mapping(p, match)
        body = parse_json_body(req.body)
        new = Mapping.from_json(current.to_json())
        if body.get("FunctionName"):
            new.function_name, new.qualifier = await self._function(
                p, body["FunctionName"], new.event_source_arn
            )
        apply_settings(new, body)
        new.last_modified = time.time()
        new.state = "Enabled" if new.enabled else "Disabled"
        await self._save(new)
        self._mappings[new.uuid] = new
        if new.enabled:
            await self._stop(current)
            self._start(new)
            transient = "Updating" if current.enabled else "Enabling"
        else:
            await self._stop(current)
            transient = "Disabling" if current.enabled else "Disabled"
        return json_response(202, new.wire(transient))

    async def _delete(self, p: Principal, req: Request, match: re.Match[str]) -> Response:
        m = self._mapping(p, match)

        def op(db: sqlite3.Connection) -> None:
            db.execute("DELETE FROM event_source_mappings WHERE uuid=?", (m.uuid,))

        await self._store.run(op)
        self._mappings.pop(m.uuid, None)
        await self._stop(m)
        return json_response(202, m.wire("Deleting"))
