"""AWS conformance review, second pass: each test pins an AWS behaviour found missing by
driving a real server with boto3 (the expected codes, statuses and messages are AWS's, or
the closest documented form where AWS documents none, as the test says). Every bad input
is followed by a good request, so the server is shown to keep serving.
"""

from __future__ import annotations

import base64
import json
import time
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from tests.conftest import error_of, invoke_json
from tests.helpers import make_zip

CODE = "def handler(event, context):\n    return {'v': context.function_version}\n"
PREFIX = "arn:aws:lambda:us-east-1:000000000000:function:"


def _wait_ready(lam: Any, name: str, qualifier: str) -> None:
    deadline = time.monotonic() + 60
    while (
        lam.get_provisioned_concurrency_config(FunctionName=name, Qualifier=qualifier)["Status"]
        == "IN_PROGRESS"
    ):
        assert time.monotonic() < deadline
        time.sleep(0.2)


def test_reservation_below_provisioned_concurrency_is_refused(lam: Any, make_function: Any) -> None:
    name = make_function(CODE)["FunctionName"]
    version = lam.publish_version(FunctionName=name)["Version"]
    lam.put_provisioned_concurrency_config(
        FunctionName=name, Qualifier=version, ProvisionedConcurrentExecutions=2
    )
    try:
        with pytest.raises(lam.exceptions.InvalidParameterValueException) as exc:
            lam.put_function_concurrency(FunctionName=name, ReservedConcurrentExecutions=1)
        assert error_of(exc) == (
            "InvalidParameterValueException",
            400,
            " ReservedConcurrentExecutions  1 should not be lower than function's total"
            " provisioned concurrency [2].",
        )
        assert (
            lam.get_function_concurrency(FunctionName=name).get("ReservedConcurrentExecutions")
            is None
        )
        # Equal to the provisioned total is allowed; then more provisioned than reserved is not.
        put = lam.put_function_concurrency(FunctionName=name, ReservedConcurrentExecutions=2)
        assert put["ReservedConcurrentExecutions"] == 2
        with pytest.raises(lam.exceptions.InvalidParameterValueException) as exc:
            lam.put_provisioned_concurrency_config(
                FunctionName=name, Qualifier=version, ProvisionedConcurrentExecutions=3
            )
        assert error_of(exc)[2] == (
            "Requested Provisioned Concurrency should not be greater than the"
            " reservedConcurrentExecution for function"
        )
        _wait_ready(lam, name, version)
        _, body = invoke_json(lam, name, Qualifier=version)
        assert body == {"v": version}
    finally:
        lam.delete_function_concurrency(FunctionName=name)
        lam.delete_provisioned_concurrency_config(FunctionName=name, Qualifier=version)


def test_provisioned_concurrency_comes_out_of_the_unreserved_pool(
    lam: Any, make_function: Any
) -> None:
    name = make_function(CODE)["FunctionName"]
    version = lam.publish_version(FunctionName=name)["Version"]
    before = lam.get_account_settings()["AccountLimit"]["UnreservedConcurrentExecutions"]
    with pytest.raises(lam.exceptions.InvalidParameterValueException) as exc:
        lam.put_provisioned_concurrency_config(
            FunctionName=name, Qualifier=version, ProvisionedConcurrentExecutions=before + 1
        )
    assert error_of(exc) == (
        "InvalidParameterValueException",
        400,
        "Specified ConcurrentExecutions for function is greater than account's unreserved"
        f" concurrency [{before}].",
    )
    with pytest.raises(lam.exceptions.InvalidParameterValueException) as exc:
        lam.put_provisioned_concurrency_config(
            FunctionName=name, Qualifier=version, ProvisionedConcurrentExecutions=before - 99
        )
    assert error_of(exc)[2] == (
        "Specified ConcurrentExecutions for function decreases account's"
        " UnreservedConcurrentExecution below its minimum value of [100]."
    )
    with pytest.raises(lam.exceptions.ProvisionedConcurrencyConfigNotFoundException):
        lam.get_provisioned_concurrency_config(FunctionName=name, Qualifier=version)
    lam.put_provisioned_concurrency_config(
        FunctionName=name, Qualifier=version, ProvisionedConcurrentExecutions=1
    )
    try:
        settings = lam.get_account_settings()["AccountLimit"]
        assert settings["UnreservedConcurrentExecutions"] == before - 1
        # A reservation takes the function's provisioned concurrency into itself.
        lam.put_function_concurrency(FunctionName=name, ReservedConcurrentExecutions=3)
        settings = lam.get_account_settings()["AccountLimit"]
        assert settings["UnreservedConcurrentExecutions"] == before - 3
        lam.delete_function_concurrency(FunctionName=name)
    finally:
        lam.delete_provisioned_concurrency_config(FunctionName=name, Qualifier=version)
    settings = lam.get_account_settings()["AccountLimit"]
    assert settings["UnreservedConcurrentExecutions"] == before


def test_concurrency_of_a_qualified_name_is_refused(lam: Any, make_function: Any) -> None:
    name = make_function(CODE)["FunctionName"]
    lam.publish_version(FunctionName=name)
    for ident in (f"{name}:1", f"{PREFIX}{name}:1", f"{name}:$LATEST"):
        with pytest.raises(lam.exceptions.InvalidParameterValueException) as exc:
            lam.put_function_concurrency(FunctionName=ident, ReservedConcurrentExecutions=1)
        assert error_of(exc) == (
            "InvalidParameterValueException",
            400,
            "This operation is permitted on Lambda functions only. Aliases and versions do not"
            " support this operation. Please specify either a function name or an unqualified"
            " function ARN.",
        )
    assert (
        lam.get_function_concurrency(FunctionName=name).get("ReservedConcurrentExecutions") is None
    )
    put = lam.put_function_concurrency(
        FunctionName=f"{PREFIX}{name}", ReservedConcurrentExecutions=1
    )
    assert put["ReservedConcurrentExecutions"] == 1
    lam.delete_function_concurrency(FunctionName=name)


def test_updates_through_a_version_or_alias_are_refused(lam: Any, make_function: Any) -> None:
    name = make_function(CODE)["FunctionName"]
    lam.publish_version(FunctionName=name)
    lam.create_alias(FunctionName=name, Name="live", FunctionVersion="1")
    message = "Current operation does not support versions other than $LATEST"
    for ident in (f"{name}:1", f"{PREFIX}{name}:1", f"{name}:live", f"{PREFIX}{name}:live"):
        with pytest.raises(lam.exceptions.InvalidParameterValueException) as exc:
            lam.update_function_configuration(FunctionName=ident, Timeout=9)
        assert error_of(exc) == ("InvalidParameterValueException", 400, message)
        with pytest.raises(lam.exceptions.InvalidParameterValueException) as exc:
            lam.update_function_code(FunctionName=ident, ZipFile=make_zip({"app.py": CODE}))
        assert error_of(exc) == ("InvalidParameterValueException", 400, message)
    got = lam.get_function_configuration(FunctionName=name, Qualifier="1")
    assert got["Timeout"] == 3
    # $LATEST named explicitly is the function itself.
    done = lam.update_function_configuration(FunctionName=f"{name}:$LATEST", Timeout=9)
    assert (done["Timeout"], done["Version"]) == (9, "$LATEST")
    lam.get_waiter("function_updated_v2").wait(FunctionName=name)
    code = lam.update_function_code(
        FunctionName=f"{PREFIX}{name}:$LATEST", ZipFile=make_zip({"app.py": CODE})
    )
    assert code["Version"] == "$LATEST"


def test_function_arn_through_an_alias_is_the_alias_arn(lam: Any, make_function: Any) -> None:
    name = make_function(CODE)["FunctionName"]
    lam.publish_version(FunctionName=name)
    lam.create_alias(FunctionName=name, Name="live", FunctionVersion="1")
    got = lam.get_function(FunctionName=name, Qualifier="live")["Configuration"]
    assert (got["FunctionArn"], got["Version"]) == (f"{PREFIX}{name}:live", "1")
    conf = lam.get_function_configuration(FunctionName=f"{name}:live")
    assert (conf["FunctionArn"], conf["Version"]) == (f"{PREFIX}{name}:live", "1")
    by_version = lam.get_function_configuration(FunctionName=name, Qualifier="1")
    assert by_version["FunctionArn"] == f"{PREFIX}{name}:1"
    latest = lam.get_function(FunctionName=name, Qualifier="$LATEST")["Configuration"]
    assert latest["FunctionArn"] == f"{PREFIX}{name}:$LATEST"
    assert lam.get_function(FunctionName=name)["Configuration"]["FunctionArn"] == f"{PREFIX}{name}"


def test_client_context_over_aws_limit_is_refused(lam: Any, make_function: Any) -> None:
    code = (
        "def handler(event, context):\n"
        "    return context.client_context.custom if context.client_context else None\n"
    )
    name = make_function(code)["FunctionName"]

    def context_of(size: int) -> str:
        """A base64 ClientContext of exactly ``size`` characters."""
        for pad in range(size):
            raw = base64.b64encode(json.dumps({"custom": {"k": "x" * pad}}).encode()).decode()
            if len(raw) >= size:
                return raw
        raise AssertionError(size)

    too_long = context_of(3584)
    assert len(too_long) > 3583
    with pytest.raises(ClientError) as exc:
        lam.invoke(FunctionName=name, ClientContext=too_long, Payload=b"{}")
    code_, status, message = error_of(exc)
    # AWS documents the limit, not its error: the closest documented form (400).
    assert (code_, status) == ("InvalidParameterValueException", 400)
    assert "3583" in message
    fits = context_of(3580)
    assert len(fits) <= 3583
    _, body = invoke_json(lam, name, ClientContext=fits)
    assert body == {"k": json.loads(base64.b64decode(fits))["custom"]["k"]}


def _events(logs: Any, group: str, want: str, timeout: float = 20) -> list[str]:
    deadline = time.monotonic() + timeout
    while True:
        try:
            found = logs.filter_log_events(logGroupName=group)["events"]
        except logs.exceptions.ResourceNotFoundException:
            found = []
        messages = [e["message"] for e in found]
        if any(want in m for m in messages):
            return messages
        assert time.monotonic() < deadline, messages
        time.sleep(0.2)


def test_log_events_end_as_lambdas_and_a_cold_start_writes_init_start(
    lam: Any, logs: Any, make_function: Any
) -> None:
    code = "def handler(event, context):\n    print('hello')\n    return 1\n"
    fn = make_function(code, runtime="python3.11")
    name = fn["FunctionName"]
    resp = lam.invoke(FunctionName=name, LogType="Tail", Payload=b"{}")
    rid = resp["ResponseMetadata"]["RequestId"]
    tail = base64.b64decode(resp["LogResult"]).decode()
    assert tail.startswith(
        f"START RequestId: {rid} Version: $LATEST\nhello\nEND RequestId: {rid}\n"
    )
    assert tail.endswith(
        " MB\tInit Duration: " + tail.split("Init Duration: ")[1].split("\t")[0] + "\t\n"
    )
    messages = _events(logs, f"/aws/lambda/{name}", f"REPORT RequestId: {rid}")
    version_arn = fn["RuntimeVersionConfig"]["RuntimeVersionArn"]
    assert version_arn.startswith("arn:aws:lambda:us-east-1::runtime:")
    assert messages[0] == (
        f"INIT_START Runtime Version: python:3.11.v1\tRuntime Version ARN: {version_arn}\n"
    )
    assert messages[1:4] == [
        f"START RequestId: {rid} Version: $LATEST\n",
        "hello\n",
        f"END RequestId: {rid}\n",
    ]
    assert messages[4].startswith(f"REPORT RequestId: {rid}\tDuration: ")
    assert messages[4].endswith("\t\n")
    # A warm invoke writes no INIT_START (one per execution environment).
    again = lam.invoke(FunctionName=name, LogType="Tail", Payload=b"{}")
    warm = base64.b64decode(again["LogResult"]).decode()
    assert "INIT_START" not in warm and "Init Duration" not in warm
    rid2 = again["ResponseMetadata"]["RequestId"]
    messages = _events(logs, f"/aws/lambda/{name}", f"REPORT RequestId: {rid2}")
    assert sum(m.startswith("INIT_START ") for m in messages) == 1


def _client(server: Any, **creds: Any) -> Any:
    return boto3.client(
        "lambda",
        endpoint_url=server.endpoint,
        region_name="us-east-1",
        config=Config(retries={"max_attempts": 1}),
        **creds,
    )


ENV_DUMP = """
import os
def handler(event, context):
    return {k: v for k, v in os.environ.items()}
"""


def test_defined_runtime_environment_variables(server: Any, lam: Any, make_function: Any) -> None:
    name = make_function(ENV_DUMP, MemorySize=256)["FunctionName"]
    trace = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1"
    resp = lam.invoke(FunctionName=name, Payload=b"{}")
    env = json.loads(resp["Payload"].read())
    expected = {
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_LAMBDA_FUNCTION_NAME": name,
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "256",
        "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
        "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{name}",
        "AWS_LAMBDA_RUNTIME_API": "127.0.0.1:9001",
        "AWS_EXECUTION_ENV": "AWS_Lambda_python3.11",
        "AWS_XRAY_CONTEXT_MISSING": "LOG_ERROR",
        "AWS_XRAY_DAEMON_ADDRESS": "169.254.79.129:2000",
        "_AWS_XRAY_DAEMON_ADDRESS": "169.254.79.129",
        "_AWS_XRAY_DAEMON_PORT": "2000",
        "_HANDLER": "app.handler",
        "LAMBDA_TASK_ROOT": "/var/task",
        "LAMBDA_RUNTIME_DIR": "/var/runtime",
        "TZ": ":UTC",
    }
    assert {k: env.get(k) for k in expected} == expected
    assert "[$LATEST]" in env["AWS_LAMBDA_LOG_STREAM_NAME"]
    assert env["_X_AMZN_TRACE_ID"].startswith("Root=1-")

    # _X_AMZN_TRACE_ID changes with each invocation: the caller's header when it sends one.
    def with_trace(request: Any, **_: Any) -> None:
        request.headers["X-Amzn-Trace-Id"] = trace

    lam.meta.events.register("before-sign.lambda.Invoke", with_trace)
    try:
        traced = json.loads(lam.invoke(FunctionName=name, Payload=b"{}")["Payload"].read())
    finally:
        lam.meta.events.unregister("before-sign.lambda.Invoke", with_trace)
    assert traced["_X_AMZN_TRACE_ID"] == trace
    # Lambda's execution-role session: temporary credentials of the function's account.
    key_id, secret, token = (
        env["AWS_ACCESS_KEY_ID"], env["AWS_SECRET_ACCESS_KEY"], env["AWS_SESSION_TOKEN"]
    )  # fmt: skip
    assert key_id.startswith("ASIA") and secret and token
    assert key_id not in ("test",) and secret != "test"
    inside = _client(server, aws_access_key_id=key_id, aws_secret_access_key=secret,
                     aws_session_token=token)  # fmt: skip
    got = inside.get_function(FunctionName=name)["Configuration"]
    assert got["FunctionArn"] == f"{PREFIX}{name}"
    _, body = invoke_json(inside, name)
    assert body["AWS_LAMBDA_FUNCTION_NAME"] == name
    # Without its session token, with another's, or forged, the key is not valid.
    for kw in (
        {"aws_session_token": None},
        {"aws_session_token": token[:-4] + "AAA="},
        {"aws_access_key_id": key_id[:-2] + ("AA" if key_id[-2:] != "AA" else "BB")},
    ):
        creds = {
            "aws_access_key_id": key_id, "aws_secret_access_key": secret,
            "aws_session_token": token, **kw,
        }  # fmt: skip
        bad = _client(server, **creds)
        with pytest.raises(ClientError) as exc:
            bad.get_function(FunctionName=name)
        assert error_of(exc) == (
            "UnrecognizedClientException",
            403,
            "The security token included in the request is invalid.",
        )
    assert lam.get_function(FunctionName=name)["Configuration"]["FunctionName"] == name


def test_permissions_change_the_revision_id_they_are_checked_against(
    lam: Any, make_function: Any
) -> None:
    name = make_function(CODE)["FunctionName"]
    r0 = lam.get_function(FunctionName=name)["Configuration"]["RevisionId"]
    grant = {"Action": "lambda:InvokeFunction", "Principal": "s3.amazonaws.com"}
    lam.add_permission(FunctionName=name, StatementId="a", RevisionId=r0, **grant)
    r1 = lam.get_function(FunctionName=name)["Configuration"]["RevisionId"]
    assert r1 != r0
    assert lam.get_policy(FunctionName=name)["RevisionId"] == r1
    assert lam.get_function_configuration(FunctionName=name)["RevisionId"] == r1
    listed = lam.list_versions_by_function(FunctionName=name)["Versions"]
    assert [v["RevisionId"] for v in listed if v["Version"] == "$LATEST"] == [r1]
    pages = lam.get_paginator("list_functions").paginate()
    mine = [f for page in pages for f in page["Functions"] if f["FunctionName"] == name]
    assert [f["RevisionId"] for f in mine] == [r1]
    stale = "The Revision Id provided does not match the latest Revision Id. Call the"
    for call in (
        lambda: lam.add_permission(FunctionName=name, StatementId="b", RevisionId=r0, **grant),
        lambda: lam.remove_permission(FunctionName=name, StatementId="a", RevisionId=r0),
        lambda: lam.update_function_configuration(FunctionName=name, Timeout=5, RevisionId=r0),
        lambda: lam.update_function_code(
            FunctionName=name, ZipFile=make_zip({"app.py": CODE}), RevisionId=r0
        ),
        lambda: lam.publish_version(FunctionName=name, RevisionId=r0),
    ):
        with pytest.raises(lam.exceptions.PreconditionFailedException) as exc:
            call()
        code, status, message = error_of(exc)
        assert (code, status) == ("PreconditionFailedException", 412)
        assert message.startswith(stale) and "GetFunction/GetAlias API" in message
    lam.remove_permission(FunctionName=name, StatementId="a", RevisionId=r1)
    r2 = lam.get_function(FunctionName=name)["Configuration"]["RevisionId"]
    assert r2 not in (r0, r1)
    done = lam.update_function_configuration(FunctionName=name, Timeout=5, RevisionId=r2)
    assert done["RevisionId"] != r2
    lam.get_waiter("function_updated_v2").wait(FunctionName=name)
    assert lam.get_function(FunctionName=name)["Configuration"]["RevisionId"] == done["RevisionId"]
    # An alias: its own RevisionId changes with its policy.
    lam.publish_version(FunctionName=name)
    a0 = lam.create_alias(FunctionName=name, Name="live", FunctionVersion="1")["RevisionId"]
    lam.add_permission(FunctionName=name, Qualifier="live", StatementId="a", **grant)
    a1 = lam.get_alias(FunctionName=name, Name="live")["RevisionId"]
    assert a1 != a0
    assert lam.get_policy(FunctionName=name, Qualifier="live")["RevisionId"] == a1
    with pytest.raises(lam.exceptions.PreconditionFailedException):
        lam.update_alias(FunctionName=name, Name="live", Description="x", RevisionId=a0)
    lam.update_alias(FunctionName=name, Name="live", Description="x", RevisionId=a1)
    _, body = invoke_json(lam, name, Qualifier="live")
    assert body == {"v": "1"}


def test_event_source_mapping_validation_comes_first_and_speaks_aws(
    lam: Any, sqs: Any, make_function: Any
) -> None:
    name = make_function(CODE)["FunctionName"]
    url = sqs.create_queue(QueueName=f"c2-esm-{name}")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    with pytest.raises(lam.exceptions.InvalidParameterValueException) as exc:
        lam.create_event_source_mapping(FunctionName=name)
    assert error_of(exc) == ("InvalidParameterValueException", 400, "Unrecognized event source.")
    with pytest.raises(lam.exceptions.InvalidParameterValueException) as exc:
        lam.create_event_source_mapping(EventSourceArn=arn, FunctionName=f"{name}-absent")
    assert error_of(exc) == ("InvalidParameterValueException", 400, "Function does not exist")
    with pytest.raises(lam.exceptions.InvalidParameterValueException) as exc:
        lam.create_event_source_mapping(EventSourceArn=arn, FunctionName=f"{name}:nope")
    assert error_of(exc)[2] == "Function does not exist"
    # The request's members are the model's ValidationException even when the function or
    # the queue is wrong too.
    for kw, fragment in (
        ({"BatchSize": 10001}, "Value '10001' at 'batchSize' failed to satisfy constraint"),
        (
            {"FunctionResponseTypes": ["Nope"]},
            "Value '[Nope]' at 'functionResponseTypes' failed to satisfy constraint: Member"
            " must satisfy constraint: [Member must satisfy enum value set:"
            " [ReportBatchItemFailures], Member must not be null]",
        ),
    ):
        with pytest.raises(ClientError) as exc:
            lam.create_event_source_mapping(
                EventSourceArn=arn + "-absent", FunctionName=f"{name}-absent", **kw
            )
        code, status, message = error_of(exc)
        assert (code, status) == ("ValidationException", 400)
        assert message.startswith("1 validation error detected: ") and fragment in message
    made = lam.create_event_source_mapping(
        EventSourceArn=arn, FunctionName=name, FunctionResponseTypes=["ReportBatchItemFailures"]
    )
    assert made["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    lam.delete_event_source_mapping(UUID=made["UUID"])


def test_alias_weight_keys_are_the_models_map_keys(lam: Any, make_function: Any) -> None:
    name = make_function(CODE)["FunctionName"]
    lam.publish_version(FunctionName=name)
    with pytest.raises(ClientError) as exc:
        lam.create_alias(
            FunctionName=name,
            Name="live",
            FunctionVersion="1",
            RoutingConfig={"AdditionalVersionWeights": {"$LATEST": 0.5}},
        )
    assert error_of(exc) == (
        "ValidationException",
        400,
        "1 validation error detected: Value '{$LATEST=0.5}' at"
        " 'routingConfig.additionalVersionWeights' failed to satisfy constraint: Map keys must"
        " satisfy constraint: [Member must have length less than or equal to 1024, Member must"
        " have length greater than or equal to 1, Member must satisfy regular expression"
        " pattern: [0-9]+, Member must not be null]",
    )
    made = lam.create_alias(FunctionName=name, Name="live", FunctionVersion="1")
    assert made["AliasArn"] == f"{PREFIX}{name}:live"


def test_list_functions_master_region(lam: Any, make_function: Any) -> None:
    name = make_function(CODE)["FunctionName"]
    # Lambda@Edge replicas only: Hearth replicates none.
    for region in ("us-east-1", "ALL"):
        got = lam.list_functions(MasterRegion=region, FunctionVersion="ALL")
        assert got["Functions"] == []
    with pytest.raises(lam.exceptions.InvalidParameterValueException) as exc:
        lam.list_functions(MasterRegion="us-east-1")
    assert error_of(exc)[:2] == ("InvalidParameterValueException", 400)
    with pytest.raises(ClientError) as exc:
        lam.list_functions(MasterRegion="moon-1", FunctionVersion="ALL")
    code, status, message = error_of(exc)
    assert (code, status) == ("ValidationException", 400)
    assert "Value 'moon-1' at 'masterRegion' failed to satisfy constraint" in message
    pages = lam.get_paginator("list_functions").paginate(FunctionVersion="ALL")
    every = [f["FunctionArn"] for page in pages for f in page["Functions"]]
    assert f"{PREFIX}{name}:$LATEST" in every


def test_event_invoke_config_needs_a_setting(lam: Any, make_function: Any) -> None:
    name = make_function(CODE)["FunctionName"]
    message = "You must specify at least one of error handling or destination setting."
    with pytest.raises(lam.exceptions.InvalidParameterValueException) as exc:
        lam.put_function_event_invoke_config(FunctionName=name)
    assert error_of(exc) == ("InvalidParameterValueException", 400, message)
    lam.put_function_event_invoke_config(FunctionName=name, MaximumRetryAttempts=1)
    with pytest.raises(lam.exceptions.InvalidParameterValueException) as exc:
        lam.update_function_event_invoke_config(FunctionName=name)
    assert error_of(exc)[2] == message
    got = lam.get_function_event_invoke_config(FunctionName=name)
    assert got["MaximumRetryAttempts"] == 1
