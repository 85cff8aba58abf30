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

import boto3
import pytest
from botocore.config import Config
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


def test_function_level_operations_through_a_qualified_name(lam: Any, make_function: Any) -> None:
    """botocore's FunctionName pattern admits a ``:qualifier`` on these operations; they act
    on the whole function (as LocalStack's AWS-validated provider answers them), while
    GetPolicy reads the policy of the version or alias named."""
    name = make_function(CODE)["FunctionName"]
    lam.publish_version(FunctionName=name)
    lam.create_alias(FunctionName=name, Name="live", FunctionVersion="1")
    lam.put_function_concurrency(FunctionName=name, ReservedConcurrentExecutions=1)
    grant = {"Action": "lambda:InvokeFunction", "Principal": "s3.amazonaws.com"}
    lam.add_permission(FunctionName=name, Qualifier="live", StatementId="s", **grant)
    for ident in (f"{name}:1", f"{PREFIX}{name}:live"):
        got = lam.get_function_concurrency(FunctionName=ident)
        assert got["ReservedConcurrentExecutions"] == 1
        versions = lam.list_versions_by_function(FunctionName=ident)["Versions"]
        assert [v["Version"] for v in versions] == ["$LATEST", "1"]
        assert [a["Name"] for a in lam.list_aliases(FunctionName=ident)["Aliases"]] == ["live"]
    policy = json.loads(lam.get_policy(FunctionName=f"{name}:live")["Policy"])
    assert policy["Statement"][0]["Resource"] == f"{PREFIX}{name}:live"
    with pytest.raises(lam.exceptions.ResourceNotFoundException) as exc:
        lam.get_policy(FunctionName=f"{name}:1")  # the version has no policy of its own
    assert error_of(exc) == (
        "ResourceNotFoundException",
        404,
        "The resource you requested does not exist.",
    )
    assert lam.list_aliases(FunctionName=name, FunctionVersion="1")["Aliases"][0]["Name"] == "live"
    assert lam.list_aliases(FunctionName=name, FunctionVersion="$LATEST")["Aliases"] == []
    lam.delete_function_concurrency(FunctionName=f"{name}:1")
    assert "ReservedConcurrentExecutions" not in lam.get_function_concurrency(FunctionName=name)


def test_tags_belong_to_the_function_not_its_versions_or_aliases(
    lam: Any, make_function: Any
) -> None:
    name = make_function(CODE)["FunctionName"]
    # GetFunction leaves Tags out for a function without any, as AWS does.
    assert "Tags" not in lam.get_function(FunctionName=name)
    lam.publish_version(FunctionName=name)
    lam.create_alias(FunctionName=name, Name="live", FunctionVersion="1")
    message = (
        "Tags on function aliases and versions are not supported. Please specify a function ARN."
    )
    for qualifier in ("$LATEST", "1", "live"):
        arn = f"{PREFIX}{name}:{qualifier}"
        for op, kw in (
            ("tag_resource", {"Tags": {"a": "b"}}),
            ("untag_resource", {"TagKeys": ["a"]}),
            ("list_tags", {}),
        ):
            with pytest.raises(lam.exceptions.InvalidParameterValueException) as exc:
                getattr(lam, op)(Resource=arn, **kw)
            assert error_of(exc) == ("InvalidParameterValueException", 400, message)
    lam.tag_resource(Resource=f"{PREFIX}{name}", Tags={"team": "core"})
    assert lam.get_function(FunctionName=name)["Tags"] == {"team": "core"}
    assert lam.get_function(FunctionName=name, Qualifier="live")["Tags"] == {"team": "core"}


def test_boto3_waiters_see_functions_and_updates_settle(lam: Any, make_function: Any) -> None:
    """Hearth stores and checks a package before CreateFunction or UpdateFunctionCode
    answer, so a function is Active and an update Successful at once: every waiter AWS's
    clients use after those calls returns on its first poll."""
    name = make_function(CODE)["FunctionName"]
    for waiter in ("function_exists", "function_active", "function_active_v2"):
        lam.get_waiter(waiter).wait(FunctionName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 2})
    updated = lam.update_function_code(
        FunctionName=name, ZipFile=make_zip({"app.py": CODE + "# v2\n"})
    )
    assert (updated["State"], updated["LastUpdateStatus"]) == ("Active", "Successful")
    for waiter in ("function_updated", "function_updated_v2"):
        lam.get_waiter(waiter).wait(FunctionName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 2})
    conf = lam.get_function_configuration(FunctionName=name)
    assert (conf["State"], conf["LastUpdateStatus"]) == ("Active", "Successful")
    version = lam.publish_version(FunctionName=name)["Version"]
    lam.get_waiter("published_version_active").wait(
        FunctionName=name, Qualifier=version, WaiterConfig={"Delay": 1, "MaxAttempts": 2}
    )


def test_list_functions_pages_with_max_items_and_marker(lam: Any, make_function: Any) -> None:
    names = {make_function(CODE)["FunctionName"] for _ in range(3)}
    seen: list[str] = []
    marker: str | None = None
    while True:
        kw = {"Marker": marker} if marker else {}
        page = lam.list_functions(MaxItems=2, **kw)
        assert len(page["Functions"]) <= 2
        seen.extend(f["FunctionName"] for f in page["Functions"])
        marker = page.get("NextMarker")
        if not marker:
            break
    assert names <= set(seen) and len(seen) == len(set(seen))
    paged = lam.get_paginator("list_functions").paginate(PaginationConfig={"PageSize": 1})
    assert [f["FunctionName"] for p in paged for f in p["Functions"]] == seen
    raw = boto3.client(
        "lambda", endpoint_url=lam.meta.endpoint_url, region_name="us-east-1",
        aws_access_key_id="test", aws_secret_access_key="test",
        config=Config(parameter_validation=False, retries={"max_attempts": 1}),
    )  # fmt: skip
    for kw, expected in (
        (
            {"MaxItems": 0},
            (
                "ValidationException",
                400,
                "1 validation error detected: Value '0' at 'maxItems' failed to satisfy"
                " constraint: Member must have value greater than or equal to 1",
            ),
        ),
        (
            {"MaxItems": 10001},
            (
                "ValidationException",
                400,
                "1 validation error detected: Value '10001' at 'maxItems' failed to satisfy"
                " constraint: Member must have value less than or equal to 10000",
            ),
        ),
        ({"Marker": "garbage"}, ("InvalidParameterValueException", 400, "Invalid marker")),
    ):
        with pytest.raises(ClientError) as exc:
            raw.list_functions(**kw)
        assert error_of(exc) == expected
    assert raw.list_functions(MaxItems=1)["Functions"]


def test_executed_version_on_alias_invokes_and_event_answers(lam: Any, make_function: Any) -> None:
    name = make_function(CODE)["FunctionName"]
    lam.publish_version(FunctionName=name)
    lam.create_alias(FunctionName=name, Name="live", FunctionVersion="1")
    for kw in ({"FunctionName": name, "Qualifier": "live"}, {"FunctionName": f"{name}:live"}):
        resp = lam.invoke(Payload=b"{}", **kw)
        assert resp["ExecutedVersion"] == "1"
        assert resp["ResponseMetadata"]["HTTPHeaders"]["x-amz-executed-version"] == "1"
        assert json.loads(resp["Payload"].read()) == {"v": "1"}
    assert lam.invoke(FunctionName=name, Payload=b"{}")["ExecutedVersion"] == "$LATEST"
    # Event: 202 with an empty body; DryRun: 204.
    event = lam.invoke(FunctionName=name, Qualifier="live", InvocationType="Event", Payload=b"{}")
    assert event["StatusCode"] == 202 and event["Payload"].read() == b""
    assert event["ResponseMetadata"]["HTTPHeaders"]["x-amzn-requestid"]
    dry = lam.invoke(FunctionName=name, InvocationType="DryRun", Payload=b"{}")
    assert dry["StatusCode"] == 204


def test_provisioned_concurrency_of_latest_is_refused_in_aws_words(
    lam: Any, make_function: Any
) -> None:
    name = make_function(CODE)["FunctionName"]
    with pytest.raises(lam.exceptions.InvalidParameterValueException) as exc:
        lam.put_provisioned_concurrency_config(
            FunctionName=name, Qualifier="$LATEST", ProvisionedConcurrentExecutions=1
        )
    assert error_of(exc)[2] == (
        "Provisioned Concurrency Configs cannot be applied to unpublished function versions."
    )
    for call in (
        lambda: lam.get_provisioned_concurrency_config(FunctionName=name, Qualifier="$LATEST"),
        lambda: lam.delete_provisioned_concurrency_config(FunctionName=name, Qualifier="$LATEST"),
    ):
        with pytest.raises(lam.exceptions.InvalidParameterValueException) as exc:
            call()
        assert error_of(exc) == (
            "InvalidParameterValueException",
            400,
            "The function resource provided must be an alias or a published version.",
        )
    assert (
        lam.list_provisioned_concurrency_configs(FunctionName=name)["ProvisionedConcurrencyConfigs"]
        == []
    )
