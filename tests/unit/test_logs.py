"""Function logs: the batched SQLite store and the CloudWatch Logs JSON 1.1 API.

The API is driven both in-process (``handle_logs``) and through a real botocore client
and the ``aws`` CLI, via a tiny threaded HTTP server that forwards POST bodies to
``handle_logs``. SigV4 is not checked here (the real router does that); the harness
maps the access key in the Authorization header to an account id.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config

from hearth.observe.filter_pattern import FilterPatternError, parse_filter_pattern
from hearth.observe.logs_api import handle_logs
from hearth.observe.logstore import LogStore

ACCOUNTS = {"test": "111111111111", "other": "222222222222"}
REGION = "us-east-1"
AWS = Path(sys.executable).parent / "aws"


class Harness:
    """A LogStore, an asyncio loop thread, and an HTTP front-end for botocore."""

    def __init__(self, data_dir: Path) -> None:
        self.store = LogStore(data_dir)
        self.loop = asyncio.new_event_loop()
        self._loop_thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._loop_thread.start()
        harness = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                m = re.search(r"Credential=([^/]+)/", self.headers.get("Authorization", ""))
                account = ACCOUNTS.get(m.group(1) if m else "", "000000000000")
                resp = harness.run(
                    handle_logs(
                        harness.store,
                        account,
                        REGION,
                        self.headers.get("X-Amz-Target", ""),
                        body,
                    )
                )
                self.send_response(resp.status)
                for name, value in resp.headers:
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(resp.body)))
                self.end_headers()
                self.wfile.write(resp.body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self._http_thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self._http_thread.start()
        self.endpoint = f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def run(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(10)

    def client(self, key: str = "test") -> Any:
        return boto3.client(
            "logs",
            endpoint_url=self.endpoint,
            region_name=REGION,
            aws_access_key_id=key,
            aws_secret_access_key="test",
            config=Config(retries={"max_attempts": 1}),
        )

    def append(self, group: str, stream: str, ts: int, msg: str, account: str = "test") -> None:
        self.loop.call_soon_threadsafe(self.store.append, ACCOUNTS[account], group, stream, ts, msg)

    def flush(self) -> None:
        self.run(self.store.flush())

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.store.close()
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._loop_thread.join(5)
        self.loop.close()


@pytest.fixture(scope="module")
def harness(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Harness]:
    h = Harness(tmp_path_factory.mktemp("logs"))
    yield h
    h.close()


@pytest.fixture
def logs(harness: Harness) -> Any:
    return harness.client()


_counter = iter(range(1_000_000))


@pytest.fixture
def group(logs: Any) -> str:
    """A fresh, empty log group for one test."""
    name = f"/aws/lambda/fn-{next(_counter)}"
    logs.create_log_group(logGroupName=name)
    return name


def _now() -> int:
    return int(time.time() * 1000)


# ---------------------------------------------------------------------- filter patterns


@pytest.mark.parametrize(
    ("pattern", "message", "expected"),
    [
        ("", "anything", True),
        ("ERROR", "an ERROR here", True),
        ("ERROR", "an error here", False),
        ("ERROR timeout", "ERROR: db timeout", True),
        ("ERROR timeout", "ERROR: db refused", False),
        ('"db timeout"', "ERROR: db timeout", True),
        ('"db timeout"', "timeout db", False),
        ("?ERROR ?WARN", "WARN disk", True),
        ("?ERROR ?WARN", "INFO ok", False),
        ("ERROR -retry", "ERROR will retry", False),
        ("ERROR -retry", "ERROR fatal", True),
        ('-"a b" x', "x a b", False),
        ('"say \\"hi\\""', 'they say "hi"', True),
    ],
)
def test_filter_pattern_semantics(pattern: str, message: str, expected: bool) -> None:
    assert parse_filter_pattern(pattern).matches(message) is expected


@pytest.mark.parametrize("pattern", ['{ $.level = "x" }', "[ip, user]", '"unterminated'])
def test_filter_pattern_rejects_unsupported(pattern: str) -> None:
    with pytest.raises(FilterPatternError):
        parse_filter_pattern(pattern)


# ---------------------------------------------------------------------- in-process API


def test_in_process_errors_and_shapes(tmp_path: Path) -> None:
    async def main() -> None:
        store = LogStore(tmp_path)
        try:
            resp = await handle_logs(store, "1", REGION, "Logs_20140328.Nope", b"{}")
            assert resp.status == 400
            assert json.loads(resp.body)["__type"] == "UnknownOperationException"
            resp = await handle_logs(store, "1", REGION, "Logs_20140328.DescribeLogGroups", b"[")
            assert json.loads(resp.body)["__type"] == "SerializationException"
            target = "Logs_20140328.DescribeLogStreams"
            resp = await handle_logs(store, "1", REGION, target, b'{"logGroupName":"g"}')
            assert resp.status == 400
            assert json.loads(resp.body) == {
                "__type": "ResourceNotFoundException",
                "message": "The specified log group does not exist.",
            }
            assert ("Content-Type", "application/x-amz-json-1.1") in resp.headers
            store.append("1", "g", "s", 1000, "hello")
            await store.flush()
            resp = await handle_logs(store, "1", REGION, "Logs_20140328.DescribeLogGroups", b"")
            (g,) = json.loads(resp.body)["logGroups"]
            assert g["arn"] == f"arn:aws:logs:{REGION}:1:log-group:g:*"
            assert g["logGroupArn"] == f"arn:aws:logs:{REGION}:1:log-group:g"
            assert g["storedBytes"] == len("hello") + 26
        finally:
            await store.aclose()

    asyncio.run(main())


# ---------------------------------------------------------------------- store


def test_append_lazily_creates_and_survives_reopen(tmp_path: Path) -> None:
    store = LogStore(tmp_path)
    for i in range(2500):  # crosses the 1000-event batch trigger
        store.append("111111111111", "/aws/lambda/a", "s1", 1000 + i, f"line {i}")
    store.close()  # drains without an explicit flush
    assert store.dropped == 0

    store = LogStore(tmp_path)
    try:
        rows, more = store.filter_events("111111111111", "/aws/lambda/a", limit=10_000) or ([], 1)
        assert [r.message for r in rows] == [f"line {i}" for i in range(2500)]
        assert not more
        assert store.filter_events("222222222222", "/aws/lambda/a") is None
        (s,) = store.list_streams("111111111111", "/aws/lambda/a") or []
        assert (s.first_event_ts, s.last_event_ts) == (1000, 3499)
    finally:
        store.close()


@pytest.mark.parametrize("odd", ["plain", "nul \x00 inside"])
def test_batch_of_many_streams_keeps_text_order_and_stats(tmp_path: Path, odd: str) -> None:
    # One batch spanning streams is written in one statement (JSON rows); a message JSON
    # cannot carry (an escaped NUL) takes the per-stream path. Both keep every byte.
    store = LogStore(tmp_path, flush_interval=30)
    texts = ["é ü 😀 \t tab", 'quote " and \\ back\\u0041', odd, "\x01 ctl", "x" * 300]
    try:
        for i in range(30):
            store.append("a", "g", f"s{i % 3}", 5000 - i, texts[i % len(texts)])
        store.flush_sync(5)
        rows, _ = store.filter_events("a", "g", limit=100) or ([], False)
        got = sorted((r.stream, -r.timestamp, r.message) for r in rows)
        want = sorted((f"s{i % 3}", i - 5000, texts[i % len(texts)]) for i in range(30))
        assert got == want
        for s in store.list_streams("a", "g") or []:
            mine = [i for i in range(30) if f"s{i % 3}" == s.name]
            assert (s.first_event_ts, s.last_event_ts) == (5000 - mine[-1], 5000 - mine[0])
            assert s.stored_bytes == sum(len(texts[i % len(texts)].encode()) + 26 for i in mine)
    finally:
        store.close()


def test_buffer_is_bounded_dropping_oldest(tmp_path: Path) -> None:
    # A long batch window keeps the writer lingering, so the bound is what decides.
    store = LogStore(tmp_path, flush_interval=30, max_buffered_events=5)
    try:
        for i in range(12):
            store.append("a", "g", "s", i, f"m{i}")
        assert store.dropped == 7
        store.flush_sync(5)
        rows, _ = store.filter_events("a", "g") or ([], False)
        assert [r.message for r in rows] == [f"m{i}" for i in range(7, 12)]
    finally:
        store.close()
    store.append("a", "g", "s", 99, "after close")
    assert store.dropped == 8


def test_events_survive_kill_9(tmp_path: Path) -> None:
    child = (
        "import sys, time\n"
        "from hearth.observe.logstore import LogStore\n"
        "s = LogStore(sys.argv[1])\n"
        "for i in range(50): s.append('acct', '/aws/lambda/k', 'st', 1000 + i, f'k{i}')\n"
        "print('appended', flush=True)\n"
        "time.sleep(60)\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", child, str(tmp_path)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "appended"
        time.sleep(0.5)  # "well under a second" after the append
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    store = LogStore(tmp_path)
    try:
        rows, _ = store.filter_events("acct", "/aws/lambda/k") or ([], False)
        assert len(rows) == 50
    finally:
        store.close()


def test_delete_group_orders_after_buffered_events(tmp_path: Path) -> None:
    async def main() -> None:
        store = LogStore(tmp_path, flush_interval=30)
        try:
            store.append("a", "g", "s", 1, "before delete")
            assert (await store.delete_group("a", "g")).value == "ok"
            store.append("a", "g", "s", 2, "after delete")
            await store.flush()
            result = await asyncio.to_thread(store.filter_events, "a", "g")
            assert result is not None
            assert [r.message for r in result[0]] == ["after delete"]
        finally:
            await store.aclose()

    asyncio.run(main())


# ---------------------------------------------------------------------- botocore: groups


def test_log_group_lifecycle_and_errors(logs: Any) -> None:
    name = "/aws/lambda/lifecycle"
    logs.create_log_group(logGroupName=name)
    with pytest.raises(logs.exceptions.ResourceAlreadyExistsException):
        logs.create_log_group(logGroupName=name)
    (g,) = logs.describe_log_groups(logGroupNamePrefix=name)["logGroups"]
    assert g["logGroupName"] == name and g["storedBytes"] == 0 and "retentionInDays" not in g
    logs.put_retention_policy(logGroupName=name, retentionInDays=7)
    (g,) = logs.describe_log_groups(logGroupNamePrefix=name)["logGroups"]
    assert g["retentionInDays"] == 7
    with pytest.raises(logs.exceptions.InvalidParameterException):
        logs.put_retention_policy(logGroupName=name, retentionInDays=8)
    logs.delete_log_group(logGroupName=name)
    with pytest.raises(logs.exceptions.ResourceNotFoundException) as exc:
        logs.delete_log_group(logGroupName=name)
    assert exc.value.response["Error"]["Message"] == "The specified log group does not exist."
    with pytest.raises(logs.exceptions.InvalidParameterException):
        logs.create_log_group(logGroupName="bad name with spaces")


def test_describe_log_groups_filters_and_pagination(logs: Any) -> None:
    names = [f"/pg/app-{i}" for i in range(7)] + ["/pg/Other"]
    for n in names:
        logs.create_log_group(logGroupName=n)
    pages = list(
        logs.get_paginator("describe_log_groups").paginate(
            logGroupNamePrefix="/pg/", PaginationConfig={"PageSize": 3}
        )
    )
    assert len(pages) == 3
    got = [g["logGroupName"] for p in pages for g in p["logGroups"]]
    assert got == sorted(names)
    pattern = logs.describe_log_groups(logGroupNamePattern="other")["logGroups"]
    assert [g["logGroupName"] for g in pattern] == ["/pg/Other"]  # case-insensitive
    with pytest.raises(logs.exceptions.InvalidParameterException):
        logs.describe_log_groups(logGroupNamePrefix="/pg/", logGroupNamePattern="app")
    with pytest.raises(logs.exceptions.InvalidParameterException):
        logs.describe_log_groups(limit=51)
    with pytest.raises(logs.exceptions.InvalidParameterException):
        logs.describe_log_groups(nextToken="garbage!")


def test_accounts_are_isolated(harness: Harness, logs: Any, group: str) -> None:
    other = harness.client("other")
    logs.create_log_stream(logGroupName=group, logStreamName="s")
    logs.put_log_events(
        logGroupName=group, logStreamName="s", logEvents=[{"timestamp": _now(), "message": "x"}]
    )
    assert other.describe_log_groups(logGroupNamePrefix=group)["logGroups"] == []
    calls: list[tuple[str, dict[str, str]]] = [
        ("describe_log_streams", {"logGroupName": group}),
        ("filter_log_events", {"logGroupName": group}),
        ("get_log_events", {"logGroupName": group, "logStreamName": "s"}),
        ("delete_log_group", {"logGroupName": group}),
    ]
    for method, kwargs in calls:
        with pytest.raises(other.exceptions.ResourceNotFoundException):
            getattr(other, method)(**kwargs)
    # Another account's ARN as identifier does not reach this account's group.
    arn = f"arn:aws:logs:{REGION}:{ACCOUNTS['test']}:log-group:{group}"
    with pytest.raises(other.exceptions.ResourceNotFoundException):
        other.filter_log_events(logGroupIdentifier=arn)
    assert len(logs.filter_log_events(logGroupIdentifier=arn + ":*")["events"]) == 1
    # The same name in the other account is a different group.
    other.create_log_group(logGroupName=group)
    assert other.filter_log_events(logGroupName=group)["events"] == []


# ---------------------------------------------------------------------- botocore: streams


def test_log_streams(logs: Any, group: str) -> None:
    with pytest.raises(logs.exceptions.ResourceNotFoundException):
        logs.create_log_stream(logGroupName=group + "-missing", logStreamName="x")
    base = _now()
    for i, name in enumerate(["b", "a", "c"]):
        logs.create_log_stream(logGroupName=group, logStreamName=name)
        logs.put_log_events(
            logGroupName=group,
            logStreamName=name,
            logEvents=[{"timestamp": base + i, "message": f"in {name}"}],
        )
    logs.create_log_stream(logGroupName=group, logStreamName="empty")
    with pytest.raises(logs.exceptions.ResourceAlreadyExistsException):
        logs.create_log_stream(logGroupName=group, logStreamName="a")

    by_name = logs.describe_log_streams(logGroupName=group)["logStreams"]
    assert [s["logStreamName"] for s in by_name] == ["a", "b", "c", "empty"]
    a = by_name[0]
    assert a["firstEventTimestamp"] == a["lastEventTimestamp"] == base + 1
    assert a["arn"].endswith(f":log-group:{group}:log-stream:a")
    assert "lastEventTimestamp" not in by_name[3]

    pages = logs.get_paginator("describe_log_streams").paginate(
        logGroupName=group,
        orderBy="LastEventTime",
        descending=True,
        PaginationConfig={"PageSize": 1},
    )
    assert [s["logStreamName"] for p in pages for s in p["logStreams"]] == [
        "c",
        "a",
        "b",
        "empty",
    ]
    prefixed = logs.describe_log_streams(logGroupName=group, logStreamNamePrefix="e")
    assert [s["logStreamName"] for s in prefixed["logStreams"]] == ["empty"]
    with pytest.raises(logs.exceptions.InvalidParameterException):
        logs.describe_log_streams(
            logGroupName=group, orderBy="LastEventTime", logStreamNamePrefix="a"
        )
    with pytest.raises(logs.exceptions.InvalidParameterException):
        logs.describe_log_streams(logGroupName=group, logGroupIdentifier=group)

    logs.delete_log_stream(logGroupName=group, logStreamName="a")
    with pytest.raises(logs.exceptions.ResourceNotFoundException) as exc:
        logs.delete_log_stream(logGroupName=group, logStreamName="a")
    assert "log stream does not exist" in exc.value.response["Error"]["Message"]
    assert all(
        e["logStreamName"] != "a" for e in logs.filter_log_events(logGroupName=group)["events"]
    )


# ---------------------------------------------------------------------- events


def test_put_log_events_validation(logs: Any, group: str) -> None:
    logs.create_log_stream(logGroupName=group, logStreamName="s")
    now = _now()
    with pytest.raises(logs.exceptions.InvalidParameterException):
        logs.put_log_events(
            logGroupName=group,
            logStreamName="s",
            logEvents=[{"timestamp": now, "message": "2"}, {"timestamp": now - 5, "message": "1"}],
        )
    with pytest.raises(logs.exceptions.ResourceNotFoundException):
        logs.put_log_events(
            logGroupName=group, logStreamName="nope", logEvents=[{"timestamp": now, "message": "x"}]
        )

    def put(*stamps: int) -> Any:
        events = [{"timestamp": ts, "message": f"at {ts - now}"} for ts in stamps]
        return logs.put_log_events(logGroupName=group, logStreamName="s", logEvents=events)

    with pytest.raises(logs.exceptions.InvalidParameterException):
        put(now - 2 * 86400 * 1000, now)  # spans more than 24 h
    assert put(now - 15 * 86400 * 1000)["rejectedLogEventsInfo"] == {"tooOldLogEventEndIndex": 1}
    resp = put(now, now + 3 * 3600 * 1000)
    assert resp["rejectedLogEventsInfo"] == {"tooNewLogEventStartIndex": 1}
    assert [
        e["message"] for e in logs.get_log_events(logGroupName=group, logStreamName="s")["events"]
    ] == ["at 0"]


def test_get_log_events_tokens(logs: Any, group: str) -> None:
    logs.create_log_stream(logGroupName=group, logStreamName="s")
    base = _now() - 60_000
    logs.put_log_events(
        logGroupName=group,
        logStreamName="s",
        logEvents=[{"timestamp": base + i, "message": f"e{i}"} for i in range(10)],
    )
    # Default (startFromHead=false): the newest `limit` events, oldest first.
    tail = logs.get_log_events(logGroupName=group, logStreamName="s", limit=3)
    assert [e["message"] for e in tail["events"]] == ["e7", "e8", "e9"]
    assert tail["nextForwardToken"].startswith("f/")
    assert tail["nextBackwardToken"].startswith("b/")
    # Walk backwards to the beginning, then the same backward token comes back.
    seen: list[str] = []
    token = tail["nextBackwardToken"]
    while True:
        page = logs.get_log_events(logGroupName=group, logStreamName="s", limit=3, nextToken=token)
        if page["nextBackwardToken"] == token:
            assert page["events"] == []
            break
        seen = [e["message"] for e in page["events"]] + seen
        token = page["nextBackwardToken"]
    assert seen == [f"e{i}" for i in range(7)]
    # From the head forward; at the end the same forward token is returned.
    head = logs.get_log_events(logGroupName=group, logStreamName="s", startFromHead=True, limit=4)
    assert [e["message"] for e in head["events"]] == ["e0", "e1", "e2", "e3"]
    msgs, token = [], head["nextForwardToken"]
    while True:
        page = logs.get_log_events(logGroupName=group, logStreamName="s", nextToken=token)
        msgs += [e["message"] for e in page["events"]]
        if page["nextForwardToken"] == token:
            break
        token = page["nextForwardToken"]
    assert msgs == [f"e{i}" for i in range(4, 10)]
    # New events appear behind a forward token that was at the end.
    logs.put_log_events(
        logGroupName=group,
        logStreamName="s",
        logEvents=[{"timestamp": base + 20, "message": "new"}],
    )
    page = logs.get_log_events(logGroupName=group, logStreamName="s", nextToken=token)
    assert [e["message"] for e in page["events"]] == ["new"]
    # Time window: startTime inclusive, endTime exclusive.
    window = logs.get_log_events(
        logGroupName=group,
        logStreamName="s",
        startTime=base + 2,
        endTime=base + 5,
        startFromHead=True,
    )
    assert [e["message"] for e in window["events"]] == ["e2", "e3", "e4"]
    with pytest.raises(logs.exceptions.ResourceNotFoundException):
        logs.get_log_events(logGroupName=group, logStreamName="missing")
    with pytest.raises(logs.exceptions.InvalidParameterException):
        logs.get_log_events(logGroupName=group, logStreamName="s", nextToken="f/bogus")
    with pytest.raises(logs.exceptions.InvalidParameterException):
        logs.get_log_events(logGroupName=group, logStreamName="s", limit=10_001)


def test_get_log_events_respects_1mb_cap(harness: Harness, logs: Any, group: str) -> None:
    big = "x" * 200_000
    for i in range(8):
        harness.append(group, "big", 1000 + i, big)
    harness.flush()
    page = logs.get_log_events(logGroupName=group, logStreamName="big", startFromHead=True)
    assert len(page["events"]) == 5  # 5 * (200_000 + 26) <= 1 MiB < 6 * ...
    rest = logs.get_log_events(
        logGroupName=group, logStreamName="big", nextToken=page["nextForwardToken"]
    )
    assert len(rest["events"]) == 3


def test_filter_log_events(harness: Harness, logs: Any, group: str) -> None:
    base = _now() - 10_000
    lines = [
        ("s1", "START RequestId: 1"),
        ("s2", "ERROR db timeout"),
        ("s1", "WARN slow query"),
        ("s2", "ERROR will retry"),
        ("s3", "INFO done"),
        ("s1", "ERROR: db refused"),
    ]
    for i, (stream, msg) in enumerate(lines):
        harness.append(group, stream, base + i, msg)
    harness.flush()

    def msgs(**kw: Any) -> list[str]:
        return [e["message"] for e in logs.filter_log_events(logGroupName=group, **kw)["events"]]

    everything = logs.filter_log_events(logGroupName=group, interleaved=True)
    assert [e["message"] for e in everything["events"]] == [m for _, m in lines]
    e0 = everything["events"][0]
    assert set(e0) == {"logStreamName", "timestamp", "message", "ingestionTime", "eventId"}
    assert "nextToken" not in everything
    assert {s["logStreamName"] for s in everything["searchedLogStreams"]} == {"s1", "s2", "s3"}
    assert msgs(filterPattern="ERROR") == [
        "ERROR db timeout",
        "ERROR will retry",
        "ERROR: db refused",
    ]
    assert msgs(filterPattern="ERROR db") == ["ERROR db timeout", "ERROR: db refused"]
    assert msgs(filterPattern='"db timeout"') == ["ERROR db timeout"]
    assert msgs(filterPattern="?WARN ?INFO") == ["WARN slow query", "INFO done"]
    assert msgs(filterPattern="ERROR -retry") == ["ERROR db timeout", "ERROR: db refused"]
    assert msgs(filterPattern="error") == []
    assert msgs(logStreamNames=["s1", "s3"]) == [lines[i][1] for i in (0, 2, 4, 5)]
    assert msgs(logStreamNamePrefix="s2") == [lines[i][1] for i in (1, 3)]
    assert msgs(startTime=base + 2, endTime=base + 3) == [lines[2][1], lines[3][1]]
    with pytest.raises(logs.exceptions.InvalidParameterException):
        logs.filter_log_events(logGroupName=group, filterPattern="[ip, user]")
    with pytest.raises(logs.exceptions.InvalidParameterException):
        logs.filter_log_events(logGroupName=group, filterPattern="{ $.a ~ 1 }")
    assert msgs(filterPattern="{ $.a = 1 }") == []  # no line is JSON
    with pytest.raises(logs.exceptions.InvalidParameterException):
        logs.filter_log_events(logGroupName=group, logStreamNames=["s1"], logStreamNamePrefix="s")
    with pytest.raises(logs.exceptions.ResourceNotFoundException):
        logs.filter_log_events(logGroupName=group + "-missing")

    pages = list(
        logs.get_paginator("filter_log_events").paginate(
            logGroupName=group, PaginationConfig={"PageSize": 2}
        )
    )
    assert len(pages) == 3
    assert [e["message"] for p in pages for e in p["events"]] == [m for _, m in lines]
    ids = [e["eventId"] for p in pages for e in p["events"]]
    assert len(set(ids)) == len(ids)


def _tail_follow_like_cli_v2(
    logs: Any, group: str, start: int, between_polls: list[Callable[[], None]]
) -> list[dict[str, Any]]:
    """awscli v2 ``logs tail --follow`` (its FollowLogEventsGenerator), where the 5 s
    sleep between polls is replaced by the next callback of *between_polls*."""
    kwargs: dict[str, Any] = {"logGroupName": group, "interleaved": True, "startTime": start}
    seen: dict[int, set[str]] = defaultdict(set)
    out: list[dict[str, Any]] = []
    for pause in [*between_polls, None]:
        while True:
            resp = logs.filter_log_events(**kwargs)
            for event in resp["events"]:
                if event["eventId"] not in seen[event["timestamp"]]:
                    seen[event["timestamp"]].add(event["eventId"])
                    out.append(event)
            if seen:
                newest = max(seen)
                seen = defaultdict(set, {newest: seen[newest]})
            if "nextToken" in resp:
                kwargs["nextToken"] = resp["nextToken"]
                continue
            if seen:
                kwargs["startTime"] = max(seen)
            kwargs.pop("nextToken", None)
            break
        if pause is not None:
            pause()
    return out


def test_tail_follow_protocol(harness: Harness, logs: Any, group: str) -> None:
    base = _now()
    for i in range(5):
        harness.append(group, "s", base + i // 2, f"first {i}")  # shared timestamps
    harness.flush()

    def more() -> None:
        harness.append(group, "s", base + 2, "same ts as the newest seen")
        harness.append(group, "s2", base + 3, "later")
        harness.flush()

    got = _tail_follow_like_cli_v2(logs, group, base - 1000, [lambda: None, more, lambda: None])
    assert [e["message"] for e in got] == [
        *(f"first {i}" for i in range(5)),
        "same ts as the newest seen",
        "later",
    ]


# ---------------------------------------------------------------------- persistence + CLI


def test_api_reads_survive_store_reopen(tmp_path: Path) -> None:
    h = Harness(tmp_path)
    try:
        c = h.client()
        c.create_log_group(logGroupName="/persist")
        c.create_log_stream(logGroupName="/persist", logStreamName="s")
        c.put_log_events(
            logGroupName="/persist",
            logStreamName="s",
            logEvents=[{"timestamp": _now(), "message": "a"}],
        )
        h.append("/persist", "lazy", _now() + 1, "b")
    finally:
        h.close()
    h = Harness(tmp_path)
    try:
        c = h.client()
        events = c.filter_log_events(logGroupName="/persist")["events"]
        assert [(e["logStreamName"], e["message"]) for e in events] == [("s", "a"), ("lazy", "b")]
    finally:
        h.close()


def _aws(harness: Harness, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_PAGER": "",
    }
    aws = str(AWS) if AWS.exists() else shutil.which("aws")
    if aws is None:
        pytest.skip("aws CLI not installed")
    return subprocess.run(
        [aws, "logs", *args, "--endpoint-url", harness.endpoint],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_aws_cli(harness: Harness, group: str) -> None:
    base = _now() - 5000
    harness.append(group, "2024/01/01/[$LATEST]abc", base, "START RequestId: r1")
    harness.append(group, "2024/01/01/[$LATEST]abc", base + 1, "hello from the function")
    harness.flush()
    out = _aws(harness, "filter-log-events", "--log-group-name", group, "--output", "json")
    assert out.returncode == 0, out.stderr
    assert [e["message"] for e in json.loads(out.stdout)["events"]] == [
        "START RequestId: r1",
        "hello from the function",
    ]
    out = _aws(
        harness,
        "get-log-events",
        "--log-group-name",
        group,
        "--log-stream-name",
        "2024/01/01/[$LATEST]abc",
        "--output",
        "text",
    )
    assert out.returncode == 0, out.stderr
    assert "hello from the function" in out.stdout

    # `aws logs tail` exists only in AWS CLI v2; run it when that is what is installed.
    tail = _aws(harness, "tail", group, "--since", "1h", "--format", "short")
    if tail.returncode != 0 and "Invalid choice" in tail.stderr:
        return
    assert tail.returncode == 0, tail.stderr
    assert "hello from the function" in tail.stdout
