"""Log events as Lambda frames them: a record written to the framed log channel
(``_LAMBDA_TELEMETRY_LOG_FD``) is one event however many lines it has; stdout stays one
event per line. Through a real server, read back with boto3 (GetLogEvents,
FilterLogEvents, ``LogType: Tail``)."""

from __future__ import annotations

import base64
import json
import time
from typing import Any

import pytest

NBSP = "\u00a0"

RAISES = """\
def handler(event, context):
    helper()

def helper():
    raise Exception("boom")
"""

LOGS = """\
import logging
import os

def handler(event, context):
    logging.error("a\\nb")
    print("x")
    context.log("c\\nd")
    return os.environ.get("_LAMBDA_TELEMETRY_LOG_FD", "gone")
"""

BY_HAND = """\
import struct
import time

FD = 62

def handler(event, context):
    message = "hand\\nmade\\n".encode()
    stamp = 1_700_000_000_000_000 if event.get("old") else time.time_ns() // 1000
    frame = struct.pack(">IIQ", 0xA55A0003, len(message), stamp) + message
    os_write(FD, frame)
    os_write(FD, struct.pack(">II", 0xA55A0001, 6) + b"legacy")
    return "ok"

def os_write(fd, data):
    import os
    while data:
        data = data[os.write(fd, data):]
"""


def _stream_events(logs: Any, group: str, rid: str) -> list[str]:
    """The messages between the START and the END of request ``rid``."""
    deadline = time.monotonic() + 20
    while True:
        try:
            events = logs.filter_log_events(logGroupName=group)["events"]
        except logs.exceptions.ResourceNotFoundException:
            events = []
        messages = [e["message"] for e in events]
        starts = [i for i, m in enumerate(messages) if m.startswith(f"START RequestId: {rid}")]
        ends = [i for i, m in enumerate(messages) if m.startswith(f"END RequestId: {rid}")]
        if starts and ends:
            return messages[starts[0] + 1 : ends[0]]
        assert time.monotonic() < deadline, messages
        time.sleep(0.2)


def _invoke(lam: Any, name: str, payload: dict[str, Any] | None = None) -> tuple[Any, str]:
    resp = lam.invoke(FunctionName=name, LogType="Tail", Payload=json.dumps(payload or {}))
    rid = resp["ResponseMetadata"]["HTTPHeaders"]["x-amzn-requestid"]
    return resp, rid


def test_uncaught_error_is_one_event(lam: Any, logs: Any, make_function: Any) -> None:
    name = make_function(RAISES)["FunctionName"]
    resp, rid = _invoke(lam, name)
    assert resp["FunctionError"] == "Unhandled"
    between = _stream_events(logs, f"/aws/lambda/{name}", rid)
    errors = [m for m in between if m.startswith("[ERROR]")]
    assert len(errors) == 1, between
    error = errors[0]
    lines = error.split("\n")
    assert lines[0] == "[ERROR] Exception: boom"
    assert lines[1] == "Traceback (most recent call last):"
    assert lines[2].startswith(f'{NBSP * 2}File "/var/task/app.py", line 2, in handler')
    assert lines[-1] == f'{NBSP * 4}raise Exception("boom")'  # no newline at the end
    assert not any(m.startswith(NBSP) or m.startswith("Traceback") for m in between)
    # GetLogEvents of the stream has the same one event.
    stream = logs.describe_log_streams(logGroupName=f"/aws/lambda/{name}")["logStreams"][0]
    got = logs.get_log_events(
        logGroupName=f"/aws/lambda/{name}", logStreamName=stream["logStreamName"]
    )
    assert [e["message"] for e in got["events"]].count(error) == 1
    # The tail: as on Lambda, END follows the event's last line directly.
    tail = base64.b64decode(resp["LogResult"]).decode()
    assert f'{NBSP * 4}raise Exception("boom")END RequestId: {rid}\n' in tail
    assert tail.count("[ERROR] Exception: boom\nTraceback (most recent call last):\n") == 1


def test_logging_record_print_and_context_log(lam: Any, logs: Any, make_function: Any) -> None:
    name = make_function(LOGS)["FunctionName"]
    resp, rid = _invoke(lam, name)
    assert json.loads(resp["Payload"].read()) == "gone"  # taken out, as awslambdaric does
    between = _stream_events(logs, f"/aws/lambda/{name}", rid)
    records = [m for m in between if m.startswith("[ERROR]\t")]
    assert len(records) == 1, between
    level, stamp, request_id, message = records[0].split("\t")
    assert (level, request_id, message) == ("[ERROR]", rid, "a\nb\n")
    assert stamp.endswith("Z")
    assert "x\n" in between
    assert "c\nd" in between
    assert len(between) == 3, between
    tail = base64.b64decode(resp["LogResult"]).decode()
    assert f"[ERROR]\t{stamp}\t{rid}\ta\nb\n" in tail


def test_frame_written_by_hand(lam: Any, logs: Any, make_function: Any) -> None:
    name = make_function(BY_HAND)["FunctionName"]
    _, rid = _invoke(lam, name)
    between = _stream_events(logs, f"/aws/lambda/{name}", rid)
    assert between == ["hand\nmade\n", "legacy"]
    # A timestamp CloudWatch would refuse (2023) is replaced by the time of reading.
    _, rid = _invoke(lam, name, {"old": True})
    group = f"/aws/lambda/{name}"
    between = _stream_events(logs, group, rid)
    assert between == ["hand\nmade\n", "legacy"]
    events = logs.filter_log_events(logGroupName=group)["events"]
    made = [e for e in events if e["message"] == "hand\nmade\n"]
    assert all(e["timestamp"] > time.time() * 1000 - 600_000 for e in made)


@pytest.mark.parametrize("runtime", ["python3.11"])
def test_json_log_format_error_is_one_event(
    lam: Any, logs: Any, make_function: Any, runtime: str
) -> None:
    name = make_function(RAISES, runtime=runtime, LoggingConfig={"LogFormat": "JSON"})[
        "FunctionName"
    ]
    resp, _ = _invoke(lam, name)
    assert resp["FunctionError"] == "Unhandled"
    group = f"/aws/lambda/{name}"
    deadline = time.monotonic() + 20
    while True:
        try:
            events = logs.filter_log_events(logGroupName=group)["events"]
        except logs.exceptions.ResourceNotFoundException:
            events = []
        errors = [e["message"] for e in events if '"level": "ERROR"' in e["message"]]
        if errors:
            break
        assert time.monotonic() < deadline, events
        time.sleep(0.2)
    assert len(errors) == 1
    record = json.loads(errors[0])
    assert record["errorType"] == "Exception"
    assert record["errorMessage"] == "boom"
    assert len(record["stackTrace"]) == 2
