"""Invoke through boto3: payloads, errors, logs, lifecycle, runtimes."""

from __future__ import annotations

import base64
import json
import socket
import time
from typing import Any

import pytest

from tests.conftest import invoke_json

CONTEXT = """
import os, time
STARTED = time.time()
CALLS = 0
def handler(event, context):
    global CALLS
    CALLS += 1
    return {
        "function_name": context.function_name,
        "function_version": context.function_version,
        "invoked_function_arn": context.invoked_function_arn,
        "memory_limit_in_mb": context.memory_limit_in_mb,
        "aws_request_id": context.aws_request_id,
        "log_group_name": context.log_group_name,
        "log_stream_name": context.log_stream_name,
        "remaining": context.get_remaining_time_in_millis(),
        "calls": CALLS,
        "started": STARTED,
        "env": {k: os.environ.get(k) for k in (
            "AWS_LAMBDA_FUNCTION_NAME", "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
            "AWS_LAMBDA_FUNCTION_VERSION", "AWS_REGION", "AWS_DEFAULT_REGION",
            "LAMBDA_TASK_ROOT", "_HANDLER", "AWS_LAMBDA_RUNTIME_API", "TZ",
            "AWS_LAMBDA_LOG_GROUP_NAME", "AWS_LAMBDA_LOG_STREAM_NAME", "AWS_EXECUTION_ENV",
            "COLOR", "LAMBDA_RUNTIME_DIR")},
        "cwd": os.getcwd(),
        "uid": os.getuid(),
    }
"""


def test_invoke_context_and_warm_reuse(lam: Any, make_function: Any) -> None:
    fn = make_function(
        CONTEXT,
        name="ctx-fn",
        MemorySize=256,
        Timeout=30,
        Environment={"Variables": {"COLOR": "red"}},
    )
    resp, body = invoke_json(lam, "ctx-fn", {"k": 1})
    assert resp["StatusCode"] == 200
    assert "FunctionError" not in resp
    assert resp["ExecutedVersion"] == "$LATEST"
    assert body["function_name"] == "ctx-fn"
    assert body["function_version"] == "$LATEST"
    assert body["invoked_function_arn"] == fn["FunctionArn"]
    assert body["memory_limit_in_mb"] == "256"  # a string, as in awslambdaric
    assert body["log_group_name"] == "/aws/lambda/ctx-fn"
    assert "[$LATEST]" in body["log_stream_name"]
    assert 25_000 < body["remaining"] <= 30_000
    assert body["aws_request_id"] == resp["ResponseMetadata"]["RequestId"]
    env = body["env"]
    assert env["AWS_LAMBDA_FUNCTION_NAME"] == "ctx-fn"
    assert env["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"] == "256"
    assert env["AWS_REGION"] == env["AWS_DEFAULT_REGION"] == "us-east-1"
    assert env["LAMBDA_TASK_ROOT"] == "/var/task"
    assert env["_HANDLER"] == "app.handler"
    assert env["AWS_LAMBDA_RUNTIME_API"] == "127.0.0.1:9001"
    assert env["TZ"] == ":UTC"
    assert env["COLOR"] == "red"
    assert env["AWS_EXECUTION_ENV"] == "AWS_Lambda_python3.11"
    assert body["cwd"] == "/var/task"
    assert body["uid"] != 0
    # Warm: same environment, init ran once.
    _, again = invoke_json(lam, "ctx-fn", {})
    assert again["calls"] == 2 and again["started"] == body["started"]
    # A configuration change retires the environment: the next invoke is a cold start.
    lam.update_function_configuration(FunctionName="ctx-fn", Timeout=31)
    _, fresh = invoke_json(lam, "ctx-fn", {})
    assert fresh["calls"] == 1


def test_invoke_by_arn_and_partial_arn(lam: Any, make_function: Any) -> None:
    fn = make_function(name="arn-fn")
    for ident in (fn["FunctionArn"], "000000000000:function:arn-fn", "arn-fn:$LATEST"):
        resp, body = invoke_json(lam, ident, {"x": ident})
        assert resp["StatusCode"] == 200 and body["event"] == {"x": ident}


def test_unhandled_error_shape(lam: Any, make_function: Any) -> None:
    make_function(
        "class MyError(Exception):\n    pass\ndef handler(e, c):\n    raise MyError('it broke')\n",
        name="err-fn",
    )
    resp, body = invoke_json(lam, "err-fn")
    assert resp["StatusCode"] == 200
    assert resp["FunctionError"] == "Unhandled"
    assert body["errorType"] == "MyError"
    assert body["errorMessage"] == "it broke"
    assert isinstance(body["stackTrace"], list) and body["stackTrace"]


@pytest.mark.parametrize(
    ("files", "handler", "error_type"),
    [
        (
            {"app.py": "def handler(e, c): return 1\n"},
            "missing.handler",
            "Runtime.ImportModuleError",
        ),
        ({"app.py": "def handler(e, c): return 1\n"}, "app.nothere", "Runtime.HandlerNotFound"),
        (
            {"app.py": "def handler(e, c):\n  return (\n"},
            "app.handler",
            "Runtime.UserCodeSyntaxError",
        ),
        ({"app.py": "def handler(e, c): return 1\n"}, "nodot", "Runtime.MalformedHandlerName"),
        ({"app.py": "def handler(e, c): return {1, 2}\n"}, "app.handler", "Runtime.MarshalError"),
    ],
)
def test_runtime_error_types(
    lam: Any, make_function: Any, files: dict[str, str], handler: str, error_type: str
) -> None:
    fn = make_function(files, handler=handler)
    resp, body = invoke_json(lam, fn["FunctionName"])
    assert resp["FunctionError"] == "Unhandled"
    assert body["errorType"] == error_type
    # The server keeps serving.
    assert lam.get_function(FunctionName=fn["FunctionName"])


def test_nested_package_handler(lam: Any, make_function: Any) -> None:
    make_function(
        {
            "pkg/__init__.py": "",
            "pkg/sub/__init__.py": "",
            "pkg/sub/mod.py": "def fn(e, c):\n    return {'nested': True, 'e': e}\n",
        },
        handler="pkg/sub/mod.fn",
        name="nested-fn",
    )
    _, body = invoke_json(lam, "nested-fn", {"a": 1})
    assert body == {"nested": True, "e": {"a": 1}}


def test_log_tail_and_report(lam: Any, make_function: Any) -> None:
    make_function(name="tail-fn")
    resp = lam.invoke(FunctionName="tail-fn", Payload=b'{"hi": 1}', LogType="Tail")
    rid = resp["ResponseMetadata"]["RequestId"]
    text = base64.b64decode(resp["LogResult"]).decode()
    assert f"START RequestId: {rid} Version: $LATEST" in text
    assert 'hello from handler {"hi": 1}' in text
    assert f"END RequestId: {rid}" in text
    report = next(line for line in text.splitlines() if line.startswith("REPORT"))
    assert f"RequestId: {rid}" in report
    assert "Duration: " in report and " ms" in report
    assert "Billed Duration: " in report and "Memory Size: 128 MB" in report
    assert "Max Memory Used: " in report
    assert len(resp["LogResult"]) <= 4096 * 4 // 3 + 4


def test_logs_api_sees_invocation(lam: Any, logs: Any, make_function: Any) -> None:
    make_function(name="logged-fn")
    resp = lam.invoke(FunctionName="logged-fn", Payload=b'{"marker": "zebra-42"}')
    rid = resp["ResponseMetadata"]["RequestId"]
    deadline = time.time() + 10
    messages: list[str] = []
    while time.time() < deadline:
        try:
            events = logs.filter_log_events(logGroupName="/aws/lambda/logged-fn")["events"]
        except logs.exceptions.ResourceNotFoundException:
            events = []
        messages = [e["message"] for e in events]
        if any(m.startswith("REPORT") for m in messages):
            break
        time.sleep(0.2)
    assert any("zebra-42" in m for m in messages)
    assert any(m.startswith(f"START RequestId: {rid}") for m in messages)
    streams = logs.describe_log_streams(logGroupName="/aws/lambda/logged-fn")["logStreams"]
    assert streams and "[$LATEST]" in streams[0]["logStreamName"]
    hits = logs.filter_log_events(logGroupName="/aws/lambda/logged-fn", filterPattern="zebra-42")
    assert all("zebra-42" in e["message"] for e in hits["events"]) and hits["events"]


def test_event_and_dryrun(lam: Any, logs: Any, make_function: Any) -> None:
    make_function(name="async-fn")
    resp = lam.invoke(
        FunctionName="async-fn", InvocationType="Event", Payload=b'{"async": "yak-7"}'
    )
    assert resp["StatusCode"] == 202
    assert resp["Payload"].read() == b""
    dry = lam.invoke(FunctionName="async-fn", InvocationType="DryRun")
    assert dry["StatusCode"] == 204
    deadline = time.time() + 15
    while time.time() < deadline:
        try:
            events = logs.filter_log_events(
                logGroupName="/aws/lambda/async-fn", filterPattern="yak-7"
            )["events"]
        except logs.exceptions.ResourceNotFoundException:
            events = []
        if events:
            break
        time.sleep(0.2)
    assert events, "the Event invocation never ran"


def test_timeout_kills_and_recovers(lam: Any, make_function: Any) -> None:
    make_function(
        "import time\nSTART = time.time()\n"
        "def handler(e, c):\n    if e.get('sleep'):\n        time.sleep(10)\n    return START\n",
        name="slow-fn",
        Timeout=1,
    )
    _, first_start = invoke_json(lam, "slow-fn")
    t0 = time.monotonic()
    resp, body = invoke_json(lam, "slow-fn", {"sleep": True}, LogType="Tail")
    assert time.monotonic() - t0 < 5
    assert resp["FunctionError"] == "Unhandled"
    assert "Task timed out after 1.00 seconds" in body["errorMessage"]
    assert "Task timed out after 1.00 seconds" in base64.b64decode(resp["LogResult"]).decode()
    resp, start = invoke_json(lam, "slow-fn")
    assert "FunctionError" not in resp
    assert start != first_start  # a new environment: the timed-out one was never reused


def test_timeout_counts_from_its_own_delivery(lam: Any, make_function: Any) -> None:
    # The environment's timeout timer outlives an invocation (it is re-armed lazily): the
    # one armed by the first invoke fires in the middle of the second, which must then run
    # to its own deadline, not be cut at the first one's.
    make_function(
        "import time\ndef handler(e, c):\n    time.sleep(e.get('sleep', 0))\n    return 'ok'\n",
        name="late-timeout-fn",
        Timeout=2,
    )
    invoke_json(lam, "late-timeout-fn")
    time.sleep(1.0)
    t0 = time.monotonic()
    resp, body = invoke_json(lam, "late-timeout-fn", {"sleep": 1.6})
    assert "FunctionError" not in resp, body
    assert body == "ok"
    assert time.monotonic() - t0 >= 1.6
    resp, body = invoke_json(lam, "late-timeout-fn", {"sleep": 5})
    assert "Task timed out after 2.00 seconds" in body["errorMessage"]


def test_runtime_exit_is_reported(lam: Any, make_function: Any) -> None:
    make_function("import os\ndef handler(e, c):\n    os._exit(3)\n", name="exit-fn")
    resp, body = invoke_json(lam, "exit-fn")
    assert resp["FunctionError"] == "Unhandled"
    assert body["errorType"] == "Runtime.ExitError"
    assert "exit status 3" in body["errorMessage"]


def test_every_python_runtime(lam: Any, make_function: Any) -> None:
    settings = lam.get_account_settings()
    assert settings
    code = "import sys\ndef handler(e, c):\n    return '%d.%d' % sys.version_info[:2]\n"
    for minor in ("3.9", "3.10", "3.11", "3.12", "3.13"):
        try:
            fn = make_function(code, runtime=f"python{minor}")
        except lam.exceptions.InvalidParameterValueException:
            continue  # not installed on this host
        _, body = invoke_json(lam, fn["FunctionName"])
        assert body == minor


def test_unicode_and_large_payload(lam: Any, make_function: Any) -> None:
    make_function("def handler(e, c):\n    return e\n", name="echo-fn")
    payload = {"text": "héllo wörld ✓ 日本", "blob": "x" * (5 * 1024 * 1024)}
    resp = lam.invoke(FunctionName="echo-fn", Payload=json.dumps(payload).encode())
    assert json.loads(resp["Payload"].read()) == payload


def test_init_past_ten_seconds_continues_in_invoke_phase(lam: Any, make_function: Any) -> None:
    # As on Lambda: Init is capped at 10 s, then goes on inside the invocation, whose
    # timeout bounds it.
    make_function(
        "import time\ntime.sleep(10.5)\ndef handler(e, c):\n    return 'late but fine'\n",
        name="slow-init-fn",
        Timeout=10,
    )
    resp, body = invoke_json(lam, "slow-init-fn", LogType="Tail")
    assert "FunctionError" not in resp, body
    assert body == "late but fine"
    assert "Phase: init\tStatus: timeout" in base64.b64decode(resp["LogResult"]).decode()


@pytest.mark.parametrize("size", [6_400_000, 8_000_000])
def test_oversized_result_then_next_invocation(lam: Any, make_function: Any, size: int) -> None:
    # The Python runtime pipelines GET invocation/next behind its result POST. Past 6 MB
    # the result is refused (413); past the endpoint's body cap the server also closes
    # the connection, and the runtime must send the GET again on a new one.
    make_function(
        "CALLS = []\n"
        "def handler(e, c):\n    CALLS.append(1)\n"
        "    return 'x' * e['big'] if e.get('big') else len(CALLS)\n",
        name=f"oversized-{size}",
        MemorySize=512,
    )
    assert invoke_json(lam, f"oversized-{size}")[1] == 1
    resp, err = invoke_json(lam, f"oversized-{size}", {"big": size})
    assert resp["FunctionError"] == "Unhandled"
    assert err["errorType"] == "Function.ResponseSizeTooLarge"
    resp, body = invoke_json(lam, f"oversized-{size}")
    assert "FunctionError" not in resp, body
    assert body == 3  # the same environment went on serving


def test_pipelined_invokes_log_in_order(
    server: Any, lam: Any, logs: Any, make_function: Any
) -> None:
    """Two Invoke requests pipelined on one connection run one after the other in the same
    environment: each answered in order, and each one's START ... END, REPORT complete
    before the next one's START."""
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    make_function("def handler(e, c):\n    print('line', e['n'])\n    return e\n", name="piped-fn")
    lam.invoke(FunctionName="piped-fn", Payload=b'{"n": 0}')  # warm: the task-free path
    invoke_json_path = "/2015-03-31/functions/piped-fn/invocations"
    raw = b""
    for n in (1, 2):
        body = json.dumps({"n": n}).encode()
        req = AWSRequest(method="POST", url=server.endpoint + invoke_json_path, data=body)
        SigV4Auth(Credentials("test", "test"), "lambda", "us-east-1").add_auth(req)
        head = f"POST {invoke_json_path} HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n"
        for k, v in req.headers.items():
            if k.lower() != "host":
                head += f"{k}: {v}\r\n"
        raw += (head + f"Content-Length: {len(body)}\r\n\r\n").encode() + body
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
        sock.sendall(raw)
        got = b""
        while got.count(b'{"n": ') < 2:
            chunk = sock.recv(65536)
            assert chunk, got
            got += chunk
    assert got.index(b'{"n": 1}') < got.index(b'{"n": 2}')
    deadline = time.time() + 10
    messages: list[str] = []
    while time.time() < deadline:
        try:
            events = logs.filter_log_events(logGroupName="/aws/lambda/piped-fn")["events"]
        except logs.exceptions.ResourceNotFoundException:
            events = []
        messages = [e["message"].split(" RequestId")[0].strip() for e in events]
        if messages.count("REPORT") == 3:
            break
        time.sleep(0.2)
    kinds = [m for m in messages if m in ("START", "END", "REPORT") or m.startswith("line")]
    assert kinds == [k for n in (0, 1, 2) for k in ("START", f"line {n}", "END", "REPORT")]
