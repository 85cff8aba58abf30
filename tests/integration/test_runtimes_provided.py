"""Custom runtimes (provided.al2023 / provided.al2) and the official Python client.

Each runtime kind is created with boto3, invoked, and checked for its payload, error
shape, context, init-once and logs: a bash bootstrap with curl (AWS's tutorial), a
Python bootstrap (stdlib only), and ``awslambdaric`` run unmodified from the package
(``exec /usr/bin/python3 -m awslambdaric app.handler``).
"""

from __future__ import annotations

import itertools
import os
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROLE, invoke_json
from tests.helpers import make_zip

_ids = itertools.count()

SHELL_BOOTSTRAP = r"""#!/bin/bash
set -euo pipefail
INIT_AT=$(date +%s%N)
CALLS=0
echo "shell runtime init for $_HANDLER"
API="http://${AWS_LAMBDA_RUNTIME_API}/2018-06-01/runtime"
while true; do
  HEADERS="$(mktemp)"
  EVENT=$(curl -sS -LD "$HEADERS" "$API/invocation/next")
  RID=$(grep -Fi Lambda-Runtime-Aws-Request-Id "$HEADERS" | tr -d '[:space:]' | cut -d: -f2)
  DEADLINE=$(grep -Fi Lambda-Runtime-Deadline-Ms "$HEADERS" | tr -d '[:space:]' | cut -d: -f2)
  ARN=$(grep -Fi Lambda-Runtime-Invoked-Function-Arn "$HEADERS" | tr -d '[:space:]' | cut -d: -f2-)
  CALLS=$((CALLS + 1))
  echo "handling $RID" >&2
  if [ "$EVENT" = '{"fail": true}' ]; then
    curl -sS -o /dev/null -H "Lambda-Runtime-Function-Error-Type: Custom.Failed" \
      "$API/invocation/$RID/error" \
      -d '{"errorMessage":"asked to fail","errorType":"Custom.Failed","stackTrace":[]}'
    continue
  fi
  FMT='{"event":%s,"rid":"%s","deadline":%s,"arn":"%s","calls":%d,"init":"%s",'
  FMT+='"fn":"%s","mem":"%s","handler":"%s","stream":"%s"}'
  BODY=$(printf "$FMT" \
    "$EVENT" "$RID" "$DEADLINE" "$ARN" "$CALLS" "$INIT_AT" "$AWS_LAMBDA_FUNCTION_NAME" \
    "$AWS_LAMBDA_FUNCTION_MEMORY_SIZE" "$_HANDLER" "$AWS_LAMBDA_LOG_STREAM_NAME")
  curl -sS -o /dev/null "$API/invocation/$RID/response" -d "$BODY"
done
"""

PYTHON_BOOTSTRAP = r"""#!/usr/bin/python3
import json, os, sys, time, urllib.request, urllib.error
API = "http://" + os.environ["AWS_LAMBDA_RUNTIME_API"] + "/2018-06-01/runtime"
INIT_AT = time.time()
CALLS = 0
print("python runtime init", os.environ["_HANDLER"], flush=True)
while True:
    with urllib.request.urlopen(API + "/invocation/next") as r:
        rid = r.headers["Lambda-Runtime-Aws-Request-Id"]
        deadline = int(r.headers["Lambda-Runtime-Deadline-Ms"])
        arn = r.headers["Lambda-Runtime-Invoked-Function-Arn"]
        event = json.loads(r.read())
    CALLS += 1
    print("handling", rid, file=sys.stderr, flush=True)
    if event.get("fail"):
        doc = {"errorMessage": "asked to fail", "errorType": "Custom.Failed", "stackTrace": []}
        req = urllib.request.Request(
            API + f"/invocation/{rid}/error", json.dumps(doc).encode(),
            {"Lambda-Runtime-Function-Error-Type": "Custom.Failed"})
    else:
        body = {"event": event, "rid": rid, "deadline": deadline, "arn": arn, "calls": CALLS,
                "init": str(INIT_AT), "fn": os.environ["AWS_LAMBDA_FUNCTION_NAME"],
                "mem": os.environ["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"],
                "handler": os.environ["_HANDLER"],
                "stream": os.environ["AWS_LAMBDA_LOG_STREAM_NAME"]}
        req = urllib.request.Request(API + f"/invocation/{rid}/response", json.dumps(body).encode())
    urllib.request.urlopen(req).read()
"""

RIC_APP = """
import os, time
INIT_AT = time.time()
CALLS = 0
print("ric init")
def handler(event, context):
    global CALLS
    CALLS += 1
    print("ric handling", context.aws_request_id)
    if event.get("fail"):
        raise ValueError("asked to fail")
    return {
        "event": event, "rid": context.aws_request_id, "calls": CALLS, "init": str(INIT_AT),
        "fn": context.function_name, "version": context.function_version,
        "arn": context.invoked_function_arn, "mem": context.memory_limit_in_mb,
        "group": context.log_group_name, "stream": context.log_stream_name,
        "remaining": context.get_remaining_time_in_millis(),
    }
"""


@pytest.fixture
def create(lam: Any) -> Iterator[Callable[..., str]]:
    created: list[str] = []

    def make(
        files: dict[str, str | bytes],
        modes: dict[str, int] | None = None,
        *,
        runtime: str = "provided.al2023",
        handler: str = "function.handler",
        **kw: Any,
    ) -> str:
        name = f"prov-{next(_ids)}-{int(time.time() * 1000) % 10**7}"
        lam.create_function(
            FunctionName=name,
            Runtime=runtime,
            Role=ROLE,
            Handler=handler,
            Code={"ZipFile": make_zip(files, modes)},
            **kw,
        )
        created.append(name)
        return name

    yield make
    for name in created:
        lam.delete_function(FunctionName=name)


def wait_for_log(logs: Any, group: str, needle: str, timeout: float = 10) -> list[str]:
    deadline = time.monotonic() + timeout
    while True:
        try:
            events = logs.filter_log_events(logGroupName=group)["events"]
        except logs.exceptions.ResourceNotFoundException:
            events = []
        messages = [e["message"] for e in events]
        if any(needle in m for m in messages) or time.monotonic() > deadline:
            return messages
        time.sleep(0.2)


def check_custom_runtime(lam: Any, logs: Any, name: str, init_line: str) -> None:
    resp, body = invoke_json(lam, name, {"k": 1})
    assert resp["StatusCode"] == 200 and "FunctionError" not in resp
    rid = resp["ResponseMetadata"]["RequestId"]
    assert body["event"] == {"k": 1}
    assert body["rid"] == rid
    assert body["fn"] == name
    assert body["mem"] == "256"
    assert body["handler"] == "function.handler"
    assert body["arn"].endswith(f":function:{name}")
    assert 0 < body["deadline"] - time.time() * 1000 <= 7000
    assert "[$LATEST]" in body["stream"]
    # Init once: the second call is served by the same process.
    _, again = invoke_json(lam, name, {"k": 2})
    assert again["calls"] == 2 and again["init"] == body["init"]
    # Error shape: what the runtime posted to invocation/{id}/error, verbatim.
    resp, err = invoke_json(lam, name, {"fail": True})
    assert resp["FunctionError"] == "Unhandled"
    assert err == {"errorMessage": "asked to fail", "errorType": "Custom.Failed", "stackTrace": []}
    messages = wait_for_log(logs, f"/aws/lambda/{name}", f"REPORT RequestId: {rid}")
    text = "\n".join(messages)
    assert init_line in text
    assert f"handling {rid}" in text
    assert f"START RequestId: {rid} Version: $LATEST" in text
    assert f"REPORT RequestId: {rid}" in text


def test_shell_bootstrap(lam: Any, logs: Any, create: Any) -> None:
    name = create({"bootstrap": SHELL_BOOTSTRAP}, {"bootstrap": 0o755}, MemorySize=256, Timeout=7)
    check_custom_runtime(lam, logs, name, "shell runtime init for function.handler")


def test_python_bootstrap_on_al2(lam: Any, logs: Any, create: Any) -> None:
    name = create(
        {"bootstrap": PYTHON_BOOTSTRAP},
        {"bootstrap": 0o755},
        runtime="provided.al2",
        MemorySize=256,
        Timeout=7,
    )
    check_custom_runtime(lam, logs, name, "python runtime init function.handler")
    cfg = lam.get_function_configuration(FunctionName=name)
    assert cfg["Runtime"] == "provided.al2"


def test_missing_bootstrap_is_invalid_entrypoint(lam: Any, logs: Any, create: Any) -> None:
    name = create({"function.sh": "echo hi\n"})
    resp, err = invoke_json(lam, name, {})
    rid = resp["ResponseMetadata"]["RequestId"]
    assert resp["FunctionError"] == "Unhandled"
    assert err == {
        "errorType": "Runtime.InvalidEntrypoint",
        "errorMessage": f"RequestId: {rid} Error: Couldn't find valid bootstrap(s):"
        " [/var/task/bootstrap /opt/bootstrap]",
    }
    messages = wait_for_log(logs, f"/aws/lambda/{name}", "INIT_REPORT")
    assert any(
        "Status: error" in m and "Error Type: Runtime.InvalidEntrypoint" in m for m in messages
    )


def test_bootstrap_not_executable_is_invalid_entrypoint(lam: Any, create: Any) -> None:
    name = create({"bootstrap": SHELL_BOOTSTRAP}, {"bootstrap": 0o644})
    resp, err = invoke_json(lam, name, {})
    rid = resp["ResponseMetadata"]["RequestId"]
    assert resp["FunctionError"] == "Unhandled"
    assert err == {
        "errorType": "Runtime.InvalidEntrypoint",
        "errorMessage": f"RequestId: {rid} Error: fork/exec /var/task/bootstrap: permission denied",
    }


# -- awslambdaric, the official Python runtime interface client, unmodified -------------

_RIC_PYTHON = "/usr/bin/python3"


@pytest.fixture(scope="session")
def awslambdaric_pkg(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``pip install --target`` awslambdaric with the interpreter the sandbox will run.

    Built with the host's Debian ``/usr/bin/python3``: the host's ``/usr`` is visible
    read-only inside every sandbox, so the C extension (``runtime_client``) matches the
    interpreter that ``bootstrap`` execs. Cached across runs under the temp dir root.
    """
    if not os.access(_RIC_PYTHON, os.X_OK):
        pytest.skip(f"{_RIC_PYTHON} is missing: awslambdaric needs the sandbox-visible python3")
    cache = Path(os.environ.get("HEARTH_TEST_CACHE", "/tmp/hearth-test-cache")) / "awslambdaric"
    if (cache / "awslambdaric").is_dir():
        return cache
    tmp = tmp_path_factory.mktemp("ric")
    res = subprocess.run(
        [
            _RIC_PYTHON,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--target",
            str(tmp / "pkg"),
            "awslambdaric",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if res.returncode != 0:
        pytest.skip(
            f"`{_RIC_PYTHON} -m pip install --target pkg awslambdaric` failed (needs the"
            f" python3-pip Debian package and PyPI access): {res.stderr.strip()[-400:]}"
        )
    cache.parent.mkdir(parents=True, exist_ok=True)
    if not cache.exists():
        os.replace(tmp / "pkg", cache)
    return cache


def _package_dir(root: Path) -> dict[str, bytes]:
    files: dict[str, bytes] = {}
    for p in sorted(root.rglob("*")):
        if p.is_file() and "__pycache__" not in p.parts:
            files[str(p.relative_to(root))] = p.read_bytes()
    return files


def test_awslambdaric_unmodified(lam: Any, logs: Any, create: Any, awslambdaric_pkg: Path) -> None:
    files: dict[str, str | bytes] = dict(_package_dir(awslambdaric_pkg))
    files["app.py"] = RIC_APP
    files["bootstrap"] = f"#!/bin/sh\nexec {_RIC_PYTHON} -m awslambdaric app.handler\n"
    modes = {n: 0o755 for n in files if n == "bootstrap" or n.endswith(".so")}
    name = create(files, modes, handler="app.handler", MemorySize=256, Timeout=7)
    resp, body = invoke_json(lam, name, {"k": 1})
    assert resp["StatusCode"] == 200 and "FunctionError" not in resp, body
    rid = resp["ResponseMetadata"]["RequestId"]
    assert body["event"] == {"k": 1} and body["rid"] == rid
    assert body["fn"] == name and body["version"] == "$LATEST"
    assert body["arn"].endswith(f":function:{name}")
    assert body["mem"] == "256"
    assert body["group"] == f"/aws/lambda/{name}" and "[$LATEST]" in body["stream"]
    assert 0 < body["remaining"] <= 7000
    _, again = invoke_json(lam, name, {})
    assert again["calls"] == 2 and again["init"] == body["init"]
    resp, err = invoke_json(lam, name, {"fail": True})
    assert resp["FunctionError"] == "Unhandled"
    assert err["errorType"] == "ValueError" and err["errorMessage"] == "asked to fail"
    assert isinstance(err["stackTrace"], list) and err["stackTrace"]
    messages = wait_for_log(logs, f"/aws/lambda/{name}", f"REPORT RequestId: {rid}")
    text = "\n".join(messages)
    assert "ric init" in text and f"ric handling {rid}" in text
    # awslambdaric writes the uncaught error to the framed log channel it finds in
    # _LAMBDA_TELEMETRY_LOG_FD: the whole traceback is one event, as on Lambda.
    failed = resp["ResponseMetadata"]["RequestId"]
    messages = wait_for_log(logs, f"/aws/lambda/{name}", f"REPORT RequestId: {failed}")
    errors = [m for m in messages if m.startswith("[ERROR] ValueError: asked to fail")]
    assert len(errors) == 1, messages
    assert "\nTraceback (most recent call last):\n" in errors[0]
    assert errors[0].rstrip("\n").endswith('raise ValueError("asked to fail")')
    assert not any(m.startswith("Traceback") for m in messages)
