"""Runtime API and Extensions API conformance, table-driven, from inside a real sandbox.

A custom runtime (a Python ``bootstrap``) executes the requests of a table that the
test sends as the event, against ``AWS_LAMBDA_RUNTIME_API`` (127.0.0.1:9001 in the
sandbox's own network namespace), and reports status, error type and headers. A layer
adds a small extension so that the Extensions API is served. Requests that consume the
invocation (a response posted twice, an oversized response) report their results in
the next invocation.
"""

from __future__ import annotations

import base64
import itertools
import json
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.conftest import ROLE, invoke_json
from tests.helpers import make_zip
from tests.integration.test_runtimes_provided import wait_for_log

_ids = itertools.count()
NIL = "00000000-0000-4000-8000-000000000000"
RT = "/2018-06-01/runtime"
EXT = "/2020-01-01/extension"
MAX_RESPONSE = 6 * 1024 * 1024 + 100  # 6291556 bytes, as Lambda reports it

BOOTSTRAP = r"""#!/usr/bin/python3
import http.client, json, os
HOST, PORT = os.environ["AWS_LAMBDA_RUNTIME_API"].split(":")
carry = None

def call(method, path, headers=None, body=b""):
    conn = http.client.HTTPConnection(HOST, int(PORT), timeout=30)
    conn.request(method, path, body=body, headers=headers or {})
    r = conn.getresponse()
    data = r.read()
    conn.close()
    return r.status, {k.lower(): v for k, v in r.getheaders()}, data

while True:
    status, headers, body = call("GET", "/2018-06-01/runtime/invocation/next")
    rid = headers["lambda-runtime-aws-request-id"]
    event = json.loads(body)
    results = []
    for case in event["cases"]:
        path = case["path"].replace("{rid}", rid)
        payload = case.get("body", "").encode()
        if "size" in case:
            payload = b"x" * case["size"]
        st, hd, data = call(case["method"], path, case.get("headers"), payload)
        try:
            doc = json.loads(data) if data else None
        except ValueError:
            doc = data.decode("latin-1")
        results.append({"id": case["id"], "status": st, "headers": hd, "body": doc})
    if event.get("respond", True):
        out = {"next": {"status": status, "headers": headers}, "results": results,
               "carry": carry, "rid": rid}
        carry = None
        path = f"/2018-06-01/runtime/invocation/{rid}/response"
        call("POST", path, body=json.dumps(out).encode())
    else:
        carry = results
"""

NOOP_EXTENSION = r"""#!/bin/bash
API="http://${AWS_LAMBDA_RUNTIME_API}/2020-01-01/extension"
ID=$(curl -sS -D - -o /dev/null -X POST "$API/register" -H "Lambda-Extension-Name: noop" \
  -d '{"events":["INVOKE"]}' | grep -Fi Lambda-Extension-Identifier \
  | tr -d '[:space:]' | cut -d: -f2)
while true; do
  curl -sS -o /dev/null -H "Lambda-Extension-Identifier: $ID" "$API/event/next" || exit 0
done
"""

# (id, method, path, headers, body, status, errorType)
TABLE: list[tuple[str, str, str, dict[str, str], str, int, str | None]] = [
    ("next by POST", "POST", f"{RT}/invocation/next", {}, "", 405, "MethodNotAllowed"),
    ("unknown runtime path", "GET", f"{RT}/nope", {}, "", 404, "UnknownPath"),
    ("outside both APIs", "GET", "/2019-01-01/other", {}, "", 404, "UnknownPath"),
    (
        "response, unknown id",
        "POST",
        f"{RT}/invocation/{NIL}/response",
        {},
        "{}",
        400,
        "InvalidRequestID",
    ),
    (
        "error, unknown id",
        "POST",
        f"{RT}/invocation/{NIL}/error",
        {},
        "{}",
        400,
        "InvalidRequestID",
    ),
    (
        "response by GET",
        "GET",
        f"{RT}/invocation/{{rid}}/response",
        {},
        "",
        405,
        "MethodNotAllowed",
    ),
    (
        "unknown invocation verb",
        "POST",
        f"{RT}/invocation/{{rid}}/nope",
        {},
        "",
        404,
        "UnknownPath",
    ),
    (
        "ext next, no id",
        "GET",
        f"{EXT}/event/next",
        {},
        "",
        403,
        "Extension.MissingExtensionIdentifier",
    ),
    (
        "ext next, malformed id",
        "GET",
        f"{EXT}/event/next",
        {"Lambda-Extension-Identifier": "abc"},
        "",
        403,
        "Extension.InvalidExtensionIdentifier",
    ),
    (
        "ext next, unknown id",
        "GET",
        f"{EXT}/event/next",
        {"Lambda-Extension-Identifier": NIL},
        "",
        403,
        "Extension.UnknownExtensionIdentifier",
    ),
    (
        "register, no name",
        "POST",
        f"{EXT}/register",
        {},
        '{"events":["INVOKE"]}',
        403,
        "Extension.InvalidExtensionName",
    ),
    (
        "register, bad event",
        "POST",
        f"{EXT}/register",
        {"Lambda-Extension-Name": "x"},
        '{"events":["BOOT"]}',
        403,
        "Extension.InvalidEventType",
    ),
    (
        "register, bad json",
        "POST",
        f"{EXT}/register",
        {"Lambda-Extension-Name": "x"},
        "{",
        403,
        "InvalidRequestFormat",
    ),
    (
        "register after init",
        "POST",
        f"{EXT}/register",
        {"Lambda-Extension-Name": "late"},
        '{"events":["INVOKE"]}',
        403,
        "Extension.RegistrationClosed",
    ),
    ("register by GET", "GET", f"{EXT}/register", {}, "", 405, "MethodNotAllowed"),
    ("unknown ext path", "GET", f"{EXT}/nope", {}, "", 404, "UnknownPath"),
    (
        "init/error, no id",
        "POST",
        f"{EXT}/init/error",
        {},
        "",
        403,
        "Extension.MissingExtensionIdentifier",
    ),
    (
        "exit/error, unknown id",
        "POST",
        f"{EXT}/exit/error",
        {"Lambda-Extension-Identifier": NIL, "Lambda-Extension-Function-Error-Type": "X.Y"},
        "",
        403,
        "Extension.UnknownExtensionIdentifier",
    ),
]


@pytest.fixture(scope="module")
def fn(lam: Any) -> Iterator[str]:
    layer_name = f"conf-ext-{int(time.time() * 1000) % 10**7}"
    layer = lam.publish_layer_version(
        LayerName=layer_name,
        Content={
            "ZipFile": make_zip({"extensions/noop": NOOP_EXTENSION}, {"extensions/noop": 0o755})
        },
    )
    name = f"conformance-{next(_ids)}-{int(time.time() * 1000) % 10**7}"
    lam.create_function(
        FunctionName=name,
        Runtime="provided.al2023",
        Role=ROLE,
        Handler="conformance",
        Code={"ZipFile": make_zip({"bootstrap": BOOTSTRAP}, {"bootstrap": 0o755})},
        Layers=[layer["LayerVersionArn"]],
        MemorySize=512,
        Timeout=30,
    )
    yield name
    lam.delete_function(FunctionName=name)
    lam.delete_layer_version(LayerName=layer_name, VersionNumber=layer["Version"])


def run(lam: Any, name: str, cases: list[dict[str, Any]], **kw: Any) -> tuple[Any, Any]:
    return invoke_json(lam, name, {"cases": cases, **kw})


@pytest.mark.parametrize("row", TABLE, ids=[r[0] for r in TABLE])
def test_error_answers(lam: Any, fn: str, row: tuple[Any, ...]) -> None:
    case_id, method, path, headers, body, status, error_type = row
    resp, out = run(
        lam, fn, [{"id": case_id, "method": method, "path": path, "headers": headers, "body": body}]
    )
    assert "FunctionError" not in resp, out
    result = out["results"][0]
    assert result["status"] == status, result
    assert result["headers"]["content-type"] == "application/json"
    assert result["body"]["errorType"] == error_type
    assert isinstance(result["body"]["errorMessage"], str) and result["body"]["errorMessage"]


def test_next_headers(lam: Any, fn: str) -> None:
    context = base64.b64encode(json.dumps({"custom": {"k": "v"}}).encode()).decode()
    resp = lam.invoke(FunctionName=fn, Payload=json.dumps({"cases": []}), ClientContext=context)
    out = json.loads(resp["Payload"].read())
    nxt = out["next"]
    assert nxt["status"] == 200
    h = nxt["headers"]
    assert h["lambda-runtime-aws-request-id"] == resp["ResponseMetadata"]["RequestId"]
    assert h["lambda-runtime-invoked-function-arn"].endswith(f":function:{fn}")
    assert 0 < int(h["lambda-runtime-deadline-ms"]) - time.time() * 1000 <= 30_000
    assert h["lambda-runtime-trace-id"]
    assert h["content-type"] == "application/json"
    assert json.loads(h["lambda-runtime-client-context"]) == {"custom": {"k": "v"}}


def test_response_posted_twice(lam: Any, fn: str) -> None:
    cases = [
        {
            "id": "first",
            "method": "POST",
            "path": f"{RT}/invocation/{{rid}}/response",
            "body": '"first"',
        },
        {
            "id": "again",
            "method": "POST",
            "path": f"{RT}/invocation/{{rid}}/response",
            "body": '"again"',
        },
        {
            "id": "error after",
            "method": "POST",
            "path": f"{RT}/invocation/{{rid}}/error",
            "body": "{}",
        },
    ]
    resp, out = run(lam, fn, cases, respond=False)
    assert "FunctionError" not in resp and out == "first"
    _, report = run(lam, fn, [])
    first, again, error_after = report["carry"]
    assert first["status"] == 202 and first["body"] == {"status": "OK"}
    assert again["status"] == 400 and again["body"]["errorType"] == "InvalidRequestID"
    assert error_after["status"] == 400 and error_after["body"]["errorType"] == "InvalidRequestID"


def test_oversized_response(lam: Any, fn: str) -> None:
    cases: list[dict[str, Any]] = [
        {
            "id": "big",
            "method": "POST",
            "path": f"{RT}/invocation/{{rid}}/response",
            "size": MAX_RESPONSE + 1,
        },
        {"id": "after", "method": "POST", "path": f"{RT}/invocation/{{rid}}/response", "body": "1"},
    ]
    resp, err = run(lam, fn, cases, respond=False)
    assert resp["FunctionError"] == "Unhandled"
    assert err == {
        "errorMessage": "Response payload size exceeded maximum allowed payload size"
        f" ({MAX_RESPONSE} bytes).",
        "errorType": "Function.ResponseSizeTooLarge",
    }
    _, report = run(lam, fn, [])
    big, after = report["carry"]
    assert big["status"] == 413 and big["body"]["errorType"] == "RequestEntityTooLarge"
    assert after["status"] == 400 and after["body"]["errorType"] == "InvalidRequestID"


def test_error_endpoint_and_init_error(lam: Any, logs: Any) -> None:
    """invocation/{id}/error with Lambda-Runtime-Function-Error-Type; init/error."""
    boot = r"""#!/usr/bin/python3
import http.client, json, os, sys
HOST, PORT = os.environ["AWS_LAMBDA_RUNTIME_API"].split(":")
def call(method, path, headers=None, body=b""):
    c = http.client.HTTPConnection(HOST, int(PORT), timeout=30)
    c.request(method, path, body=body, headers=headers or {})
    r = c.getresponse()
    return r.status, r.read()
doc = {"errorMessage": "cannot start", "errorType": "Custom.InitFailed"}
st, body = call("POST", "/2018-06-01/runtime/init/error", {
    "Lambda-Runtime-Function-Error-Type": "Custom.InitFailed"}, json.dumps(doc).encode())
print("init/error ->", st, body.decode(), flush=True)
sys.exit(1)
"""
    name = f"conf-init-{next(_ids)}-{int(time.time() * 1000) % 10**7}"
    lam.create_function(
        FunctionName=name,
        Runtime="provided.al2023",
        Role=ROLE,
        Handler="x",
        Code={"ZipFile": make_zip({"bootstrap": boot}, {"bootstrap": 0o755})},
    )
    try:
        resp, err = invoke_json(lam, name, {})
        assert resp["FunctionError"] == "Unhandled"
        assert err == {"errorMessage": "cannot start", "errorType": "Custom.InitFailed"}
        messages = wait_for_log(logs, f"/aws/lambda/{name}", "init/error ->")
        assert any('init/error -> 202 {"status":"OK"}' in m for m in messages), messages
    finally:
        lam.delete_function(FunctionName=name)
