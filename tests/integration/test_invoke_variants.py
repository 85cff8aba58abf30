"""InvokeWithResponseStream (event stream, decoded by botocore) and the legacy InvokeAsync."""

from __future__ import annotations

import base64
import json
import time
from typing import Any

import pytest
from botocore.exceptions import ClientError

BIG = """
def handler(event, context):
    if event.get("fail"):
        raise ValueError("streaming went wrong")
    return {"data": "x" * event.get("size", 10), "fn": context.function_name}
"""


def _events(resp: Any) -> tuple[bytes, dict[str, Any]]:
    chunks: list[bytes] = []
    complete: dict[str, Any] = {}
    for event in resp["EventStream"]:
        if "PayloadChunk" in event:
            chunks.append(event["PayloadChunk"]["Payload"])
        if "InvokeComplete" in event:
            complete = event["InvokeComplete"]
    return b"".join(chunks), complete


def test_response_stream(lam: Any, make_function: Any) -> None:
    name = make_function(BIG)["FunctionName"]
    resp = lam.invoke_with_response_stream(
        FunctionName=name, Payload=json.dumps({"size": 200_000}), LogType="Tail"
    )
    assert resp["StatusCode"] == 200
    assert resp["ExecutedVersion"] == "$LATEST"
    assert resp["ResponseStreamContentType"] == "application/vnd.amazon.eventstream"
    payload, complete = _events(resp)
    assert json.loads(payload) == {"data": "x" * 200_000, "fn": name}
    assert "ErrorCode" not in complete
    assert "REPORT RequestId" in base64.b64decode(complete["LogResult"]).decode()


def test_response_stream_function_error(lam: Any, make_function: Any) -> None:
    name = make_function(BIG)["FunctionName"]
    resp = lam.invoke_with_response_stream(FunctionName=name, Payload=b'{"fail": true}')
    payload, complete = _events(resp)
    assert payload == b""
    assert complete["ErrorCode"] == "Unhandled"
    details = json.loads(complete["ErrorDetails"])
    assert details["errorType"] == "ValueError"
    assert details["errorMessage"] == "streaming went wrong"


def test_response_stream_bad_requests(lam: Any, make_function: Any) -> None:
    name = make_function(BIG)["FunctionName"]
    with pytest.raises(lam.exceptions.ResourceNotFoundException):
        lam.invoke_with_response_stream(FunctionName=name + "-missing", Payload=b"{}")
    with pytest.raises(ClientError) as exc:
        lam.invoke_with_response_stream(FunctionName=name, Payload=b"{not json")
    assert exc.value.response["Error"]["Code"] == "InvalidRequestContentException"
    with pytest.raises(ClientError) as exc:
        lam.invoke_with_response_stream(FunctionName=name, InvocationType="Event", Payload=b"{}")
    assert exc.value.response["Error"]["Code"] == "ValidationException"
    dry = lam.invoke_with_response_stream(FunctionName=name, InvocationType="DryRun")
    assert dry["StatusCode"] == 204


def test_invoke_async(lam: Any, logs: Any, make_function: Any) -> None:
    code = "def handler(event, context):\n    print('async got', event['n'])\n"
    name = make_function(code)["FunctionName"]
    resp = lam.invoke_async(FunctionName=name, InvokeArgs=b'{"n": 41}')
    assert resp["Status"] == 202
    deadline = time.monotonic() + 20
    while True:
        try:
            events = logs.filter_log_events(logGroupName=f"/aws/lambda/{name}")["events"]
        except logs.exceptions.ResourceNotFoundException:
            events = []
        if any("async got 41" in e["message"] for e in events):
            break
        assert time.monotonic() < deadline, "the async invocation never ran"
        time.sleep(0.3)
