"""The CloudWatch Logs API subset (AWS JSON 1.1, ``X-Amz-Target: Logs_20140328.<Op>``).

Entry point: :func:`handle_logs`, called by the router after SigV4 verification with the
caller's account id. Operations: CreateLogGroup, DeleteLogGroup, DescribeLogGroups,
CreateLogStream, DeleteLogStream, DescribeLogStreams, PutLogEvents, GetLogEvents,
FilterLogEvents, PutRetentionPolicy, DeleteRetentionPolicy. That covers the SDKs'
paginators, ``aws logs get-log-events`` / ``filter-log-events`` and CLI v2's
``aws logs tail [--follow]`` (FilterLogEvents with ``interleaved``/``startTime``,
``nextToken`` paging, then re-polling from the newest timestamp and de-duplicating on
``eventId``).

Token semantics
---------------
* List operations and FilterLogEvents: opaque keyset cursors; ``nextToken`` is present
  only when more results exist, so paginators and ``tail`` know when a pass is done.
* GetLogEvents: ``f/…`` and ``b/…`` tokens encode an event position ``(timestamp, id)``;
  reading past either end returns an empty page and *the same token* that was sent,
  which is how AWS clients detect the end of a stream.

Store reads run in a worker thread; store writes go through the store's writer thread.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import sqlite3
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from hearth.api.types import Response
from hearth.errors import AwsError
from hearth.observe.filter_pattern import FilterPatternError, TermFilter, parse_filter_pattern
from hearth.observe.json_pattern import JsonFilter, parse_json_pattern
from hearth.observe.logs_wire import (
    MAX_RESPONSE_BYTES,
    Params,
    already_exists,
    check_group_name,
    check_stream_name,
    decode_position,
    decode_token,
    encode_position,
    encode_token,
    group_arn,
    group_not_found,
    invalid,
    resolve_group,
    stream_not_found,
)
from hearth.observe.logstore import (
    EventRow,
    GroupInfo,
    LogStore,
    Outcome,
    StreamInfo,
    event_size,
    now_ms,
)

log = logging.getLogger(__name__)

TARGET_PREFIX = "Logs_20140328."
CONTENT_TYPE = "application/x-amz-json-1.1"
#: Retention values CloudWatch Logs accepts.
RETENTION_DAYS = frozenset(
    {
        1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400,
        545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653,
    }
)  # fmt: skip
#: PutLogEvents acceptance window (AWS: 2 h into the future, 14 days into the past).
_TOO_NEW_MS = 2 * 3600 * 1000
_TOO_OLD_MS = 14 * 86400 * 1000
#: A constant: sequence tokens are ignored by PutLogEvents (as AWS does since 2023).
_SEQUENCE_TOKEN = "49650000000000000000000000000000000000000000000000000000"


@dataclass(frozen=True, slots=True)
class _Ctx:
    store: LogStore
    account: str
    region: str


_Op = Callable[[_Ctx, Params], Awaitable[dict[str, Any] | None]]


def json_response(payload: dict[str, Any] | None, status: int = 200) -> Response:
    body = b"" if payload is None else json.dumps(payload, separators=(",", ":")).encode()
    headers = [("Content-Type", CONTENT_TYPE), ("x-amzn-RequestId", str(uuid.uuid4()))]
    return Response(status=status, headers=headers, body=body)


def error_response(err: AwsError) -> Response:
    """The JSON 1.1 error shape botocore parses: ``__type`` and ``message``."""
    resp = json_response({"__type": err.code, "message": err.message, **err.extra}, err.status)
    resp.headers.append(("x-amzn-ErrorType", err.code))
    resp.headers.extend(err.headers.items())
    return resp


async def handle_logs(
    store: LogStore, account_id: str, region: str, target: str, body: bytes
) -> Response:
    """Serve one Logs request for an already-authenticated *account_id*.

    *target* is the ``X-Amz-Target`` header value. Never raises for client errors: they
    become JSON error responses; store failures become ``ServiceUnavailableException``.
    """
    op = _OPS.get(target[len(TARGET_PREFIX) :]) if target.startswith(TARGET_PREFIX) else None
    if op is None:
        return error_response(
            AwsError(
                f"Unrecognized operation: {target or '(none)'}",
                code="UnknownOperationException",
                status=400,
            )
        )
    try:
        return json_response(await op(_Ctx(store, account_id, region), Params(body)))
    except AwsError as err:
        return error_response(err)
    except (sqlite3.Error, RuntimeError) as exc:
        log.exception("logs API: %s failed", target)
        return error_response(AwsError(str(exc), code="ServiceUnavailableException", status=500))


# ---------------------------------------------------------------------- shapes


def _group_json(ctx: _Ctx, g: GroupInfo) -> dict[str, Any]:
    arn = group_arn(ctx.region, ctx.account, g.name)
    out: dict[str, Any] = {
        "logGroupName": g.name,
        "creationTime": g.creation_time,
        "metricFilterCount": 0,
        "arn": arn + ":*",
        "storedBytes": g.stored_bytes,
        "logGroupClass": "STANDARD",
        "logGroupArn": arn,
        "deletionProtectionEnabled": False,
    }
    if g.retention_days is not None:
        out["retentionInDays"] = g.retention_days
    return out


def _stream_json(ctx: _Ctx, group: str, s: StreamInfo) -> dict[str, Any]:
    out: dict[str, Any] = {
        "logStreamName": s.name,
        "creationTime": s.creation_time,
        "arn": f"{group_arn(ctx.region, ctx.account, group)}:log-stream:{s.name}",
        "storedBytes": s.stored_bytes,
        "uploadSequenceToken": _SEQUENCE_TOKEN,
    }
    for key, value in (
        ("firstEventTimestamp", s.first_event_ts),
        ("lastEventTimestamp", s.last_event_ts),
        ("lastIngestionTime", s.last_ingestion_time),
    ):
        if value is not None:
            out[key] = value
    return out


def _check_outcome(outcome: Outcome, what: str = "log group") -> None:
    if outcome is Outcome.NO_GROUP:
        raise group_not_found()
    if outcome is Outcome.NO_STREAM:
        raise stream_not_found()
    if outcome is Outcome.EXISTS:
        raise already_exists(what)


# ---------------------------------------------------------------------- groups


async def _create_log_group(ctx: _Ctx, p: Params) -> None:
    name = check_group_name(p.req("logGroupName"))
    _check_outcome(await ctx.store.create_group(ctx.account, name), "log group")
    return None


async def _delete_log_group(ctx: _Ctx, p: Params) -> None:
    name = check_group_name(p.req("logGroupName"))
    _check_outcome(await ctx.store.delete_group(ctx.account, name))
    return None


async def _put_retention_policy(ctx: _Ctx, p: Params) -> None:
    name = check_group_name(p.req("logGroupName"))
    days = p.get_int("retentionInDays")
    if days is None or days not in RETENTION_DAYS:
        raise invalid(
            f"1 validation error detected: Value '{days}' at 'retentionInDays' failed to "
            "satisfy constraint: Member must satisfy enum value set: "
            f"[{', '.join(map(str, sorted(RETENTION_DAYS)))}]"
        )
    _check_outcome(await ctx.store.set_retention(ctx.account, name, days))
    return None


async def _delete_retention_policy(ctx: _Ctx, p: Params) -> None:
    name = check_group_name(p.req("logGroupName"))
    _check_outcome(await ctx.store.set_retention(ctx.account, name, None))
    return None


async def _describe_log_groups(ctx: _Ctx, p: Params) -> dict[str, Any]:
    limit = p.get_int("limit", lo=1, hi=50) or 50
    prefix = p.get_str("logGroupNamePrefix")
    pattern = p.get_str("logGroupNamePattern")
    idents = p.get_str_list("logGroupIdentifiers", max_items=50)
    if prefix is not None and pattern is not None:
        raise invalid(
            "LogGroup name prefix and LogGroup name pattern are mutually exclusive parameters."
        )
    names: list[str] | None = None
    if idents is not None:
        if prefix is not None or pattern is not None:
            raise invalid(
                "logGroupIdentifiers is mutually exclusive with logGroupNamePrefix and "
                "logGroupNamePattern."
            )
        names = [n for n in (_ident_name(ctx, i) for i in idents) if n is not None]
    token = p.get_str("nextToken", max_len=4096)
    after = str(decode_token(token, 1)[0]) if token else None
    klass = p.get_str("logGroupClass")
    if klass is not None and klass != "STANDARD":
        return {"logGroups": []}
    rows = await asyncio.to_thread(
        ctx.store.list_groups,
        ctx.account,
        prefix=prefix,
        contains=pattern,
        names=names,
        after=after,
        limit=limit + 1,
    )
    out: dict[str, Any] = {"logGroups": [_group_json(ctx, g) for g in rows[:limit]]}
    if len(rows) > limit:
        out["nextToken"] = encode_token(rows[limit - 1].name)
    return out


def _ident_name(ctx: _Ctx, ident: str) -> str | None:
    """Name from a DescribeLogGroups identifier; ``None`` for other accounts' ARNs."""
    if not ident.startswith("arn:"):
        return ident
    parts = ident.split(":")
    if len(parts) < 7 or parts[4] != ctx.account or parts[5] != "log-group":
        return None
    return parts[6]


# ---------------------------------------------------------------------- streams


async def _create_log_stream(ctx: _Ctx, p: Params) -> None:
    group = check_group_name(p.req("logGroupName"))
    stream = check_stream_name(p.req("logStreamName"))
    _check_outcome(await ctx.store.create_stream(ctx.account, group, stream), "log stream")
    return None


async def _delete_log_stream(ctx: _Ctx, p: Params) -> None:
    group = check_group_name(p.req("logGroupName"))
    stream = check_stream_name(p.req("logStreamName"))
    _check_outcome(await ctx.store.delete_stream(ctx.account, group, stream))
    return None


async def _describe_log_streams(ctx: _Ctx, p: Params) -> dict[str, Any]:
    group = resolve_group(p, ctx.account)
    assert group is not None
    prefix = p.get_str("logStreamNamePrefix")
    order = p.get_str("orderBy") or "LogStreamName"
    if order not in ("LogStreamName", "LastEventTime"):
        raise invalid(
            f"1 validation error detected: Value '{order}' at 'orderBy' failed to satisfy "
            "constraint: Member must satisfy enum value set: [LogStreamName, LastEventTime]"
        )
    by_last = order == "LastEventTime"
    if by_last and prefix:
        raise invalid("Cannot order by LastEventTime with a logStreamNamePrefix.")
    descending = p.get_bool("descending")
    limit = p.get_int("limit", lo=1, hi=50) or 50
    token = p.get_str("nextToken", max_len=4096)
    after: tuple[int, str] | str | None = None
    if token:
        if by_last:
            ts, name = decode_token(token, 2)
            if not isinstance(ts, int) or not isinstance(name, str):
                raise invalid("The specified nextToken is invalid.")
            after = (ts, name)
        else:
            after = str(decode_token(token, 1)[0])
    rows = await asyncio.to_thread(
        ctx.store.list_streams,
        ctx.account,
        group,
        prefix=prefix,
        by_last_event=by_last,
        descending=descending,
        after=after,
        limit=limit + 1,
    )
    if rows is None:
        raise group_not_found()
    out: dict[str, Any] = {"logStreams": [_stream_json(ctx, group, s) for s in rows[:limit]]}
    if len(rows) > limit:
        last = rows[limit - 1]
        out["nextToken"] = (
            encode_token(last.last_event_ts or 0, last.name) if by_last else encode_token(last.name)
        )
    return out


# ---------------------------------------------------------------------- events


async def _put_log_events(ctx: _Ctx, p: Params) -> dict[str, Any]:
    group = resolve_group(p, ctx.account)
    assert group is not None
    stream = check_stream_name(p.req("logStreamName"))
    raw = p.get_list("logEvents")
    if not raw or len(raw) > 10_000:
        raise invalid(
            "1 validation error detected: Value at 'logEvents' failed to satisfy "
            "constraint: Member must have length between 1 and 10000"
        )
    events: list[tuple[int, str]] = []
    for item in raw:
        if not isinstance(item, dict):
            raise invalid("Each log event must be an object with timestamp and message.")
        ts, msg = item.get("timestamp"), item.get("message")
        if isinstance(ts, bool) or not isinstance(ts, int) or not isinstance(msg, str) or not msg:
            raise invalid("Each log event needs an integer timestamp and a non-empty message.")
        events.append((ts, msg))
    if any(a[0] > b[0] for a, b in itertools.pairwise(events)):
        raise invalid("Log events in a single PutLogEvents request must be in chronological order.")
    if events[-1][0] - events[0][0] > 86_400_000:
        raise invalid(
            "The batch of log events in a single PutLogEvents request cannot span more "
            "than 24 hours."
        )
    total = sum(event_size(m) for _, m in events)
    if total > 1_048_576:
        raise invalid(f"Upload too large: {total} bytes exceeds limit of 1048576")
    now = now_ms()
    old_end = sum(1 for ts, _ in events if ts < now - _TOO_OLD_MS)
    new_start = next((i for i, (ts, _) in enumerate(events) if ts > now + _TOO_NEW_MS), len(events))
    _check_outcome(
        await ctx.store.put_events(ctx.account, group, stream, events[old_end:new_start])
    )
    out: dict[str, Any] = {"nextSequenceToken": _SEQUENCE_TOKEN}
    rejected: dict[str, int] = {}
    if old_end:
        rejected["tooOldLogEventEndIndex"] = old_end
    if new_start < len(events):
        rejected["tooNewLogEventStartIndex"] = new_start
    if rejected:
        out["rejectedLogEventsInfo"] = rejected
    return out


async def _get_log_events(ctx: _Ctx, p: Params) -> dict[str, Any]:
    group = resolve_group(p, ctx.account)
    assert group is not None
    stream = check_stream_name(p.req("logStreamName"))
    start = p.get_int("startTime", lo=0)
    end = p.get_int("endTime", lo=0)
    limit = p.get_int("limit", lo=1, hi=10_000) or 10_000
    token = p.get_str("nextToken", max_len=4096)
    if token:
        direction, pos = decode_position(token)
        forward = direction == "f"
    else:
        forward, pos = p.get_bool("startFromHead"), None
    rows = await asyncio.to_thread(
        ctx.store.read_stream,
        ctx.account,
        group,
        stream,
        start=start,
        end=end,
        after=pos if forward else None,
        before=None if forward else pos,
        newest_first=not forward,
        limit=limit,
        max_bytes=MAX_RESPONSE_BYTES,
    )
    if isinstance(rows, Outcome):
        _check_outcome(rows)
        rows = []
    if not forward:
        rows.reverse()
    if rows:
        fwd, bwd = rows[-1].position, rows[0].position
    elif pos is None:
        fwd = bwd = (start or 0, 0)
    elif forward:  # at the end: hand back the same forward token
        fwd, bwd = pos, (pos[0], pos[1] + 1)
    else:  # at the beginning: hand back the same backward token
        fwd, bwd = (pos[0], pos[1] - 1), pos
    return {
        "events": [
            {"timestamp": e.timestamp, "message": e.message, "ingestionTime": e.ingestion_time}
            for e in rows
        ],
        "nextForwardToken": encode_position("f", fwd),
        "nextBackwardToken": encode_position("b", bwd),
    }


async def _filter_log_events(ctx: _Ctx, p: Params) -> dict[str, Any]:
    group = resolve_group(p, ctx.account)
    assert group is not None
    names = p.get_str_list("logStreamNames")
    prefix = p.get_str("logStreamNamePrefix")
    if names is not None and prefix is not None:
        raise invalid("Cannot specify both logStreamNames and logStreamNamePrefix.")
    start = p.get_int("startTime", lo=0)
    end = p.get_int("endTime", lo=0)
    if start is not None and end is not None and start > end:
        raise invalid("startTime must be less than or equal to endTime.")
    try:
        pattern = p.get_str("filterPattern", max_len=1024)
        terms: TermFilter | JsonFilter = (
            parse_json_pattern(pattern)
            if pattern and pattern.lstrip().startswith("{")
            else parse_filter_pattern(pattern)
        )
    except FilterPatternError as exc:
        raise invalid(str(exc)) from exc
    limit = p.get_int("limit", lo=1, hi=10_000) or 10_000
    token = p.get_str("nextToken", max_len=4096)
    after: tuple[int, int] | None = None
    if token:
        ts, eid = decode_token(token, 2)
        if not isinstance(ts, int) or not isinstance(eid, int):
            raise invalid("The specified nextToken is invalid.")
        after = (ts, eid)
    result = await asyncio.to_thread(
        ctx.store.filter_events,
        ctx.account,
        group,
        streams=names,
        stream_prefix=prefix,
        start=start,
        end=end,
        after=after,
        terms=None if terms.is_empty else terms,
        limit=limit,
        max_bytes=MAX_RESPONSE_BYTES,
    )
    if result is None:
        raise group_not_found()
    rows, more = result
    out: dict[str, Any] = {
        "events": [_filtered_json(e) for e in rows],
        "searchedLogStreams": [
            {"logStreamName": s, "searchedCompletely": not more}
            for s in dict.fromkeys(e.stream for e in rows)
        ],
    }
    if more:
        out["nextToken"] = encode_token(*rows[-1].position)
    return out


def _filtered_json(e: EventRow) -> dict[str, Any]:
    return {
        "logStreamName": e.stream,
        "timestamp": e.timestamp,
        "message": e.message,
        "ingestionTime": e.ingestion_time,
        "eventId": str(e.id),
    }


_OPS: dict[str, _Op] = {
    "CreateLogGroup": _create_log_group,
    "DeleteLogGroup": _delete_log_group,
    "DescribeLogGroups": _describe_log_groups,
    "PutRetentionPolicy": _put_retention_policy,
    "DeleteRetentionPolicy": _delete_retention_policy,
    "CreateLogStream": _create_log_stream,
    "DeleteLogStream": _delete_log_stream,
    "DescribeLogStreams": _describe_log_streams,
    "PutLogEvents": _put_log_events,
    "GetLogEvents": _get_log_events,
    "FilterLogEvents": _filter_log_events,
}

#: Operations served, for the router's capability listing and tests.
OPERATIONS = frozenset(_OPS)

__all__ = ["OPERATIONS", "error_response", "handle_logs", "json_response"]
