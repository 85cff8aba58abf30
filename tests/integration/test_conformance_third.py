"""AWS conformance review, third pass: each test pins an AWS behaviour (from AWS's
documentation and botocore's model) by driving a real server with boto3; every bad input
is followed by a good request, so the server is shown to keep serving.
"""

from __future__ import annotations

import base64
import json
import os
import time
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.conftest import ROLE, error_of, invoke_json
from tests.helpers import ServerProcess, make_zip, start_server

CODE = "def handler(event, context):\n    return {'v': context.function_version}\n"
PREFIX = "arn:aws:lambda:us-east-1:000000000000:function:"

WHO = """
import os
def handler(event, context):
    return {"key": os.environ["AWS_ACCESS_KEY_ID"], "pid_ns": os.readlink("/proc/self/ns/pid"),
            "init": os.environ["AWS_LAMBDA_INITIALIZATION_TYPE"]}
"""


@pytest.fixture(scope="module")
def short_lived(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """A server whose environments live 3 s (their credentials' margin, shortened)."""
    srv = start_server(
        tmp_path_factory.mktemp("lifetime") / "data",
        ["--no-egress"],
        env={"HEARTH_ENV_MAX_AGE": "3"},
    )
    yield srv
    srv.stop()


def test_a_provisioned_environment_is_recycled_with_new_credentials_and_stays_ready(
    short_lived: ServerProcess,
) -> None:
    """Lambda renews an environment's credentials by recycling it: a provisioned one is
    replaced by an initialized one first, so the configuration stays READY with its count."""
    lam = short_lived.client("lambda")
    name = "lifetime-who"
    lam.create_function(
        FunctionName=name, Runtime="python3.11", Role=ROLE, Handler="app.handler",
        Code={"ZipFile": make_zip({"app.py": WHO})}, Timeout=10,
    )  # fmt: skip
    version = lam.publish_version(FunctionName=name)["Version"]
    lam.put_provisioned_concurrency_config(
        FunctionName=name, Qualifier=version, ProvisionedConcurrentExecutions=1
    )
    try:
        deadline = time.monotonic() + 60
        while (
            lam.get_provisioned_concurrency_config(FunctionName=name, Qualifier=version)["Status"]
            != "READY"
        ):
            assert time.monotonic() < deadline
            time.sleep(0.2)
        seen = {invoke_json(lam, name, Qualifier=version)[1]["key"]}
        while len(seen) < 3:  # two renewals
            assert time.monotonic() < deadline + 60, seen
            time.sleep(0.5)
            resp = lam.invoke(FunctionName=name, Qualifier=version, LogType="Tail")
            body = json.loads(resp["Payload"].read())
            tail = base64.b64decode(resp["LogResult"]).decode()
            # Always a provisioned environment initialized ahead: never an Init here.
            assert body["init"] == "provisioned-concurrency" and "Init Duration" not in tail
            seen.add(body["key"])
            got = lam.get_provisioned_concurrency_config(FunctionName=name, Qualifier=version)
            assert got["Status"] == "READY"
            assert got["AvailableProvisionedConcurrentExecutions"] == 1
    finally:
        lam.delete_provisioned_concurrency_config(FunctionName=name, Qualifier=version)
        lam.delete_function(FunctionName=name)


def _stream_of(logs: Any, group: str, want: str, timeout: float = 20) -> list[str]:
    """The messages of the log stream holding ``want``, in order (once it is there)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            events = logs.filter_log_events(logGroupName=group)["events"]
        except logs.exceptions.ResourceNotFoundException:
            events = []
        streams = [e["logStreamName"] for e in events if want in e["message"]]
        if streams:
            return [e["message"] for e in events if e["logStreamName"] == streams[0]]
        assert time.monotonic() < deadline, [e["message"] for e in events]
        time.sleep(0.3)


HOOKED = """
from snapshot_restore_py import register_after_restore
register_after_restore(lambda: print("AFTER RESTORE"))
def handler(event, context):
    return "ok"
"""


def test_a_snapstart_restore_writes_restore_report_then_reports_its_duration(
    lam: Any, logs: Any, make_function: Any
) -> None:
    """As Lambda's logs show a restored environment: RESTORE_START, the after-restore
    hooks' output, ``RESTORE_REPORT Restore Duration: X ms``, START ..., and REPORT with
    ``Restore Duration: X ms`` and ``Billed Restore Duration``, no Init Duration."""
    snap = {"SnapStart": {"ApplyOn": "PublishedVersions"}}
    name = make_function(HOOKED, runtime="python3.12", **snap)["FunctionName"]
    version = lam.publish_version(FunctionName=name)["Version"]
    resp = lam.invoke(FunctionName=name, Qualifier=version, LogType="Tail", Payload=b"{}")
    rid = resp["ResponseMetadata"]["RequestId"]
    messages = _stream_of(logs, f"/aws/lambda/{name}", f"REPORT RequestId: {rid}")
    kinds = [m.split(" ")[0].rstrip("\n") for m in messages]
    assert kinds[0] == "RESTORE_START", messages
    assert kinds.index("RESTORE_REPORT") < kinds.index("START") < kinds.index("REPORT")
    assert messages.index("AFTER RESTORE\n") < kinds.index("RESTORE_REPORT")
    restore = messages[kinds.index("RESTORE_REPORT")]
    assert restore.startswith("RESTORE_REPORT Restore Duration: ") and restore.endswith(" ms\n")
    restored_ms = float(restore.split(": ")[1].split(" ")[0])
    report = messages[kinds.index("REPORT")]
    assert f"\tRestore Duration: {restored_ms:.2f} ms\tBilled Restore Duration: " in report
    assert "Init Duration" not in report and "Status:" not in restore
    # A warm invoke: neither a restore line nor a restore duration.
    again = lam.invoke(FunctionName=name, Qualifier=version, LogType="Tail", Payload=b"{}")
    tail = base64.b64decode(again["LogResult"]).decode()
    assert "RESTORE_" not in tail and "Restore Duration" not in tail


def test_oversized_payloads_and_packages_are_aws_413s(
    server: ServerProcess, lam: Any, make_function: Any
) -> None:
    name = make_function(CODE)["FunctionName"]
    # Synchronous over 6 MB: the Invoke reference's and botocore's RequestTooLargeException,
    # with the front end's message.
    with pytest.raises(lam.exceptions.RequestTooLargeException) as exc:
        lam.invoke(FunctionName=name, Payload=b"x" * (6 * 1024 * 1024 + 1))
    assert error_of(exc) == (
        "RequestTooLargeException",
        413,
        "Request must be smaller than 6291456 bytes for the InvokeFunction operation",
    )
    # Asynchronous: 1 MB since 2025 (the Invoke reference); exactly 1 MB is accepted.
    big = b'"' + b"x" * (1024 * 1024 - 2) + b'"'
    assert lam.invoke(FunctionName=name, InvocationType="Event", Payload=big)["StatusCode"] == 202
    with pytest.raises(ClientError) as exc:
        lam.invoke(FunctionName=name, InvocationType="Event", Payload=big + b" ")
    assert error_of(exc) == (
        "RequestEntityTooLargeException",
        413,
        "1048577 byte payload is too large for the Event invocation type (limit 1048576 bytes)",
    )
    # The deprecated InvokeAsync keeps 256 KB ("For larger payloads, for up to 1MB, use
    # Invoke").
    with pytest.raises(ClientError) as exc:
        lam.invoke_async(FunctionName=name, InvokeArgs=b"x" * (256 * 1024 + 1))
    assert error_of(exc) == (
        "RequestEntityTooLargeException",
        413,
        "262145 byte payload is too large for the Event invocation type (limit 262144 bytes)",
    )
    assert lam.invoke_async(FunctionName=name, InvokeArgs=b"{}")["Status"] == 202
    # A ZipFile over 50 MB: AWS's front end, naming the operation.
    blob = os.urandom(50 * 1024 * 1024 + 1)
    for call, op in (
        (
            lambda: lam.create_function(
                FunctionName=f"{name}-huge",
                Runtime="python3.12",
                Role=ROLE,
                Handler="app.handler",
                Code={"ZipFile": blob},
            ),
            "CreateFunction",
        ),
        (lambda: lam.update_function_code(FunctionName=name, ZipFile=blob), "UpdateFunctionCode"),
    ):
        with pytest.raises(ClientError) as exc:
            call()
        assert error_of(exc) == (
            "RequestEntityTooLargeException",
            413,
            f"Request must be smaller than 69905067 bytes for the {op} operation",
        )
    _, body = invoke_json(lam, name)
    assert body == {"v": "$LATEST"}
