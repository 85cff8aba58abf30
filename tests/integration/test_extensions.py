"""External extensions from a layer: Init, INVOKE, SHUTDOWN through the Extensions API."""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.conftest import ROLE, invoke_json
from tests.helpers import make_zip
from tests.integration.test_runtimes_provided import wait_for_log

_ids = itertools.count()

RECORDER = r"""#!/usr/bin/python3
# An external extension: records every event it gets to /tmp (shared with the function).
import json, os, sys, time, urllib.request
API = "http://" + os.environ["AWS_LAMBDA_RUNTIME_API"] + "/2020-01-01/extension"
NAME = os.path.basename(__file__)

def record(doc):
    with open("/tmp/ext-events.jsonl", "a") as f:
        f.write(json.dumps(doc) + "\n")

time.sleep(0.3)  # register late: Init must wait for us
req = urllib.request.Request(
    API + "/register", json.dumps({"events": ["INVOKE", "SHUTDOWN"]}).encode(),
    {"Lambda-Extension-Name": NAME, "Lambda-Extension-Accept-Feature": "accountId"},
    method="POST")
with urllib.request.urlopen(req) as r:
    ext_id = r.headers["Lambda-Extension-Identifier"]
    record({"registered": json.loads(r.read()), "name": NAME})
print(f"[{NAME}] registered", flush=True)
while True:
    req = urllib.request.Request(
        API + "/event/next", headers={"Lambda-Extension-Identifier": ext_id})
    with urllib.request.urlopen(req) as r:
        event = json.loads(r.read())
        event["eventId"] = r.headers["Lambda-Extension-Event-Identifier"]
    record(event)
    if event["eventType"] == "SHUTDOWN":
        left = event["deadlineMs"] - time.time() * 1000
        print(f"[{NAME}] SHUTDOWN {event['shutdownReason']} {left > 0}", flush=True)
        sys.exit(0)
    time.sleep(0.4)  # post-invoke work: the environment is not free before we call next
    record({"done": event["requestId"]})
"""

FUNCTION = """
import json, time
def handler(event, context):
    try:
        lines = open("/tmp/ext-events.jsonl").read().splitlines()
    except FileNotFoundError:
        lines = []
    return {"events": [json.loads(x) for x in lines], "rid": context.aws_request_id,
            "at": time.time()}
"""


@pytest.fixture
def layer(lam: Any) -> Iterator[dict[str, Any]]:
    name = f"ext-layer-{next(_ids)}-{int(time.time() * 1000) % 10**7}"
    resp = lam.publish_layer_version(
        LayerName=name,
        Content={
            "ZipFile": make_zip(
                {"extensions/recorder": RECORDER, "extensions/README": "not executable\n"},
                {"extensions/recorder": 0o755},
            )
        },
    )
    yield dict(resp)
    lam.delete_layer_version(LayerName=name, VersionNumber=resp["Version"])


def test_extension_gets_init_invoke_and_shutdown(lam: Any, logs: Any, layer: Any) -> None:
    name = f"ext-fn-{next(_ids)}-{int(time.time() * 1000) % 10**7}"
    lam.create_function(
        FunctionName=name,
        Runtime="python3.11",
        Role=ROLE,
        Handler="app.handler",
        Code={"ZipFile": make_zip({"app.py": FUNCTION})},
        Layers=[layer["LayerVersionArn"]],
        Timeout=10,
    )
    try:
        resp, first = invoke_json(lam, name, {})
        assert "FunctionError" not in resp, first
        rid1 = first["rid"]
        # Init waited for the extension to register (it sleeps before registering).
        registered = first["events"][0]
        assert registered["name"] == "recorder"
        assert registered["registered"] == {
            "functionName": name,
            "functionVersion": "$LATEST",
            "handler": "app.handler",
            "accountId": "000000000000",
        }
        sent = time.time()
        resp, second = invoke_json(lam, name, {})
        rid2 = second["rid"]
        # The environment became free only after the extension called next again.
        kinds = [e.get("eventType") or ("done" if "done" in e else "reg") for e in second["events"]]
        assert kinds[:3] == ["reg", "INVOKE", "done"], second["events"]
        invoke1 = second["events"][1]
        assert invoke1["requestId"] == rid1
        assert invoke1["invokedFunctionArn"].endswith(f":function:{name}")
        assert invoke1["deadlineMs"] > 0 and invoke1["tracing"]["type"] == "X-Amzn-Trace-Id"
        assert second["events"][2] == {"done": rid1}
        assert second["at"] >= sent  # served after the extension's post-invoke work
        # SHUTDOWN on spin-down: a configuration change retires the environment. The
        # extension exits at once, so the retirement does not wait out the 2 s deadline.
        started = time.monotonic()
        lam.update_function_configuration(FunctionName=name, Timeout=11)
        assert time.monotonic() - started < 1.5
        messages = wait_for_log(logs, f"/aws/lambda/{name}", "SHUTDOWN")
        text = "\n".join(messages)
        assert "[recorder] registered" in text
        assert "[recorder] SHUTDOWN spindown True" in text
        # The next environment starts the extension again, and saw the old one's INVOKE
        # for rid2 only in its own sandbox (each /tmp is private).
        _, third = invoke_json(lam, name, {})
        assert [e.get("eventType") for e in third["events"]][:1] == [None]
        assert all(e.get("requestId") != rid2 for e in third["events"])
    finally:
        lam.delete_function(FunctionName=name)


def test_extension_with_custom_runtime(lam: Any, layer: Any) -> None:
    """The launcher starts extensions for provided runtimes too (bootstrap in the zip)."""
    bootstrap = r"""#!/bin/bash
API="http://${AWS_LAMBDA_RUNTIME_API}/2018-06-01/runtime"
while true; do
  H="$(mktemp)"
  curl -sS -o /dev/null -D "$H" "$API/invocation/next"
  RID=$(grep -Fi Lambda-Runtime-Aws-Request-Id "$H" | tr -d '[:space:]' | cut -d: -f2)
  BODY=$(cat /tmp/ext-events.jsonl | head -1)
  curl -sS -o /dev/null "$API/invocation/$RID/response" -d "$BODY"
done
"""
    name = f"ext-prov-{next(_ids)}-{int(time.time() * 1000) % 10**7}"
    lam.create_function(
        FunctionName=name,
        Runtime="provided.al2023",
        Role=ROLE,
        Handler="x",
        Code={"ZipFile": make_zip({"bootstrap": bootstrap}, {"bootstrap": 0o755})},
        Layers=[layer["LayerVersionArn"]],
    )
    try:
        resp, body = invoke_json(lam, name, {})
        assert "FunctionError" not in resp, body
        assert body["name"] == "recorder" and body["registered"]["handler"] == "x"
    finally:
        lam.delete_function(FunctionName=name)


def test_extension_crashing_before_register_fails_init(lam: Any) -> None:
    name = f"ext-crash-{next(_ids)}-{int(time.time() * 1000) % 10**7}"
    layer = lam.publish_layer_version(
        LayerName=name,
        Content={
            "ZipFile": make_zip(
                {"extensions/crasher": "#!/bin/sh\nexit 3\n"}, {"extensions/crasher": 0o755}
            )
        },
    )
    lam.create_function(
        FunctionName=name,
        Runtime="python3.11",
        Role=ROLE,
        Handler="app.handler",
        Code={"ZipFile": make_zip({"app.py": FUNCTION})},
        Layers=[layer["LayerVersionArn"]],
    )
    try:
        started = time.monotonic()
        resp, err = invoke_json(lam, name, {})
        assert time.monotonic() - started < 5  # not the 10 s Init timeout
        rid = resp["ResponseMetadata"]["RequestId"]
        assert resp["FunctionError"] == "Unhandled"
        assert err == {
            "errorType": "Extension.Crash",
            "errorMessage": f"RequestId: {rid} Error: extension crasher exited before"
            " registering (exit status 3)",
        }
    finally:
        lam.delete_function(FunctionName=name)
        lam.delete_layer_version(LayerName=name, VersionNumber=layer["Version"])


def test_shutdown_reason_timeout(lam: Any, logs: Any, layer: Any) -> None:
    code = "import time\ndef handler(event, context):\n    time.sleep(event.get('sleep', 0))\n"
    name = f"ext-timeout-{next(_ids)}-{int(time.time() * 1000) % 10**7}"
    lam.create_function(
        FunctionName=name,
        Runtime="python3.11",
        Role=ROLE,
        Handler="app.handler",
        Code={"ZipFile": make_zip({"app.py": code})},
        Layers=[layer["LayerVersionArn"]],
        Timeout=1,
    )
    try:
        resp, err = invoke_json(lam, name, {"sleep": 5})
        assert resp["FunctionError"] == "Unhandled" and err["errorType"] == "Sandbox.Timedout"
        messages = wait_for_log(logs, f"/aws/lambda/{name}", "SHUTDOWN")
        assert any("[recorder] SHUTDOWN timeout True" in m for m in messages), messages
    finally:
        lam.delete_function(FunctionName=name)


def test_extension_with_node_runtime(lam: Any, layer: Any) -> None:
    """Managed runtimes start through the launcher when a layer brings extensions."""
    from tests.integration.test_runtimes_node import NODE

    if NODE is None:
        pytest.skip("no node 18, 20 or 22 on this host: no nodejs runtime is offered")
    code = (
        "const fs = require('fs');\n"
        "exports.handler = async () => fs.readFileSync('/tmp/ext-events.jsonl', 'utf8')"
        ".trim().split('\\n').map((l) => JSON.parse(l));\n"
    )
    name = f"ext-node-{next(_ids)}-{int(time.time() * 1000) % 10**7}"
    lam.create_function(
        FunctionName=name,
        Runtime=NODE,
        Role=ROLE,
        Handler="index.handler",
        Code={"ZipFile": make_zip({"index.js": code})},
        Layers=[layer["LayerVersionArn"]],
    )
    try:
        resp, events = invoke_json(lam, name, {})
        assert "FunctionError" not in resp, events
        assert events[0]["name"] == "recorder"
        assert events[0]["registered"]["handler"] == "index.handler"
    finally:
        lam.delete_function(FunctionName=name)


SLOWPOKE = r"""#!/bin/bash
API="http://${AWS_LAMBDA_RUNTIME_API}/2020-01-01/extension"
ID=$(curl -sS -D - -o /dev/null -X POST "$API/register" -H "Lambda-Extension-Name: slowpoke" \
  -d '{"events":["INVOKE"]}' | grep -Fi Lambda-Extension-Identifier | tr -d '[:space:]' \
  | cut -d: -f2)
while true; do
  curl -sS -o /dev/null -H "Lambda-Extension-Identifier: $ID" "$API/event/next" || exit 0
  sleep 30  # post-invoke work far past the function's timeout
done
"""


def test_extension_overrunning_the_deadline_resets_the_environment(lam: Any, logs: Any) -> None:
    name = f"ext-slow-{next(_ids)}-{int(time.time() * 1000) % 10**7}"
    layer = lam.publish_layer_version(
        LayerName=name,
        Content={
            "ZipFile": make_zip({"extensions/slowpoke": SLOWPOKE}, {"extensions/slowpoke": 0o755})
        },
    )
    code = "import os\nPID = os.getpid()\ndef handler(e, c):\n    return PID\n"
    lam.create_function(
        FunctionName=name,
        Runtime="python3.11",
        Role=ROLE,
        Handler="app.handler",
        Code={"ZipFile": make_zip({"app.py": code})},
        Layers=[layer["LayerVersionArn"]],
        Timeout=1,
    )
    try:
        resp, _ = invoke_json(lam, name, {})
        assert "FunctionError" not in resp  # the caller is answered when the runtime is
        messages = wait_for_log(logs, f"/aws/lambda/{name}", "Extension.TimedOut")
        assert any(
            "[ERROR] Extension.TimedOut: extensions did not finish before the invocation's"
            " deadline" in m
            for m in messages
        ), messages
        # The environment was reset: the next call gets a fresh one and succeeds.
        resp, _ = invoke_json(lam, name, {})
        assert "FunctionError" not in resp
    finally:
        lam.delete_function(FunctionName=name)
        lam.delete_layer_version(LayerName=name, VersionNumber=layer["Version"])
