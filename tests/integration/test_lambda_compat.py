"""Compatibility review of the Lambda core against botocore's model and AWS's behaviour.

Each test pins one discrepancy found by driving a real server with boto3 the way a user
would; the expected codes and messages are AWS's.
"""

from __future__ import annotations

import base64
import json
import re
import time
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.conftest import invoke_json
from tests.helpers import ServerProcess, make_zip

CODE = "def handler(event, context):\n    return {'v': context.function_version}\n"


def test_delete_function_latest_qualifier_keeps_the_function(lam: Any, make_function: Any) -> None:
    name = make_function(CODE)["FunctionName"]
    for kw in ({"FunctionName": name, "Qualifier": "$LATEST"}, {"FunctionName": f"{name}:$LATEST"}):
        with pytest.raises(lam.exceptions.InvalidParameterValueException) as exc:
            lam.delete_function(**kw)
        assert exc.value.response["Error"]["Message"] == (
            "$LATEST version cannot be deleted without deleting the function."
        )
    _, body = invoke_json(lam, name)
    assert body == {"v": "$LATEST"}


def test_delete_aliased_version_names_the_aliases(lam: Any, make_function: Any) -> None:
    name = make_function(CODE)["FunctionName"]
    version = lam.publish_version(FunctionName=name)["Version"]
    lam.create_alias(FunctionName=name, Name="live", FunctionVersion=version)
    with pytest.raises(lam.exceptions.ResourceConflictException) as exc:
        lam.delete_function(FunctionName=name, Qualifier=version)
    assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 409
    assert exc.value.response["Error"]["Message"] == (
        "Unable to delete version because the following aliases reference it: [live]"
    )


def test_update_code_changes_architecture(lam: Any, make_function: Any) -> None:
    name = make_function(CODE)["FunctionName"]
    resp = lam.update_function_code(
        FunctionName=name, ZipFile=make_zip({"app.py": CODE}), Architectures=["arm64"]
    )
    assert resp["Architectures"] == ["arm64"]
    assert lam.get_function_configuration(FunctionName=name)["Architectures"] == ["arm64"]
    resp = lam.update_function_code(FunctionName=name, ZipFile=make_zip({"app.py": CODE}))
    assert resp["Architectures"] == ["arm64"]


JSON_LOGS = """
import logging
logger = logging.getLogger()
def handler(event, context):
    print("plain print")
    logger.debug("hidden debug")
    logger.info("structured %s", "info")
    return {}
"""


def test_json_log_format_reaches_the_runtime(lam: Any, make_function: Any) -> None:
    fn = make_function(JSON_LOGS, LoggingConfig={"LogFormat": "JSON"})
    assert fn["LoggingConfig"] == {
        "LogFormat": "JSON",
        "ApplicationLogLevel": "INFO",
        "SystemLogLevel": "INFO",
        "LogGroup": f"/aws/lambda/{fn['FunctionName']}",
    }
    resp = lam.invoke(FunctionName=fn["FunctionName"], LogType="Tail", Payload=b"{}")
    lines = base64.b64decode(resp["LogResult"]).decode().splitlines()
    assert "plain print" in lines
    records = [json.loads(line) for line in lines if line.startswith("{")]
    (record,) = [r for r in records if r.get("message") == "structured info"]
    assert record["level"] == "INFO" and record["logger"] == "root"
    assert record["requestId"] == resp["ResponseMetadata"]["RequestId"]
    assert not any("hidden debug" in line for line in lines)
    # Platform records are JSON too (Lambda's system logs in JSON format).
    kinds = [r["type"] for r in records if "type" in r]
    assert kinds == ["platform.start", "platform.runtimeDone", "platform.report"]
    (report,) = [r for r in records if r.get("type") == "platform.report"]
    assert report["record"]["requestId"] == resp["ResponseMetadata"]["RequestId"]
    assert set(report["record"]["metrics"]) >= {
        "durationMs", "billedDurationMs", "memorySizeMB", "maxMemoryUsedMB", "initDurationMs"
    }  # fmt: skip
    assert report["record"]["status"] == "success"
    assert not any(line.startswith(("START", "END", "REPORT")) for line in lines)
    # ApplicationLogLevel DEBUG lets debug records through.
    lam.update_function_configuration(
        FunctionName=fn["FunctionName"],
        LoggingConfig={"LogFormat": "JSON", "ApplicationLogLevel": "DEBUG"},
    )
    lam.get_waiter("function_updated_v2").wait(FunctionName=fn["FunctionName"])
    resp = lam.invoke(FunctionName=fn["FunctionName"], LogType="Tail", Payload=b"{}")
    assert "hidden debug" in base64.b64decode(resp["LogResult"]).decode()
    # SystemLogLevel above INFO drops the platform records.
    lam.update_function_configuration(
        FunctionName=fn["FunctionName"],
        LoggingConfig={"LogFormat": "JSON", "SystemLogLevel": "WARN"},
    )
    lam.get_waiter("function_updated_v2").wait(FunctionName=fn["FunctionName"])
    resp = lam.invoke(FunctionName=fn["FunctionName"], LogType="Tail", Payload=b"{}")
    assert "platform." not in base64.b64decode(resp["LogResult"]).decode()


def test_log_tail_is_the_last_4kb_even_after_a_long_line(lam: Any, make_function: Any) -> None:
    name = make_function("def handler(event, context):\n    print('y' * 10000)\n    return 1\n")[
        "FunctionName"
    ]
    resp = lam.invoke(FunctionName=name, LogType="Tail", Payload=b"{}")
    tail = base64.b64decode(resp["LogResult"])
    assert len(tail) == 4096
    assert b"yyyy\nEND RequestId: " in tail and tail.endswith(b"\n")


def test_response_far_past_6mb_is_a_function_error_not_a_timeout(
    lam: Any, make_function: Any
) -> None:
    name = make_function(
        "def handler(event, context):\n    return 'x' * (8 * 1024 * 1024)\n",
        MemorySize=512,
        Timeout=20,
    )["FunctionName"]
    resp = lam.invoke(FunctionName=name, Payload=b"{}")
    assert resp["StatusCode"] == 200 and resp["FunctionError"] == "Unhandled"
    body = json.loads(resp["Payload"].read())
    assert body == {
        "errorMessage": "Response payload size exceeded maximum allowed payload size"
        " (6291556 bytes).",
        "errorType": "Function.ResponseSizeTooLarge",
    }


def test_list_functions_all_versions(lam: Any, make_function: Any) -> None:
    name = make_function(CODE, name="compat-all-versions")["FunctionName"]
    lam.publish_version(FunctionName=name)
    lam.update_function_code(FunctionName=name, ZipFile=make_zip({"app.py": CODE + "\n"}))
    lam.publish_version(FunctionName=name)
    pages = lam.get_paginator("list_functions").paginate(
        FunctionVersion="ALL", PaginationConfig={"PageSize": 2}
    )
    mine = [f for page in pages for f in page["Functions"] if f["FunctionName"] == name]
    assert [f["Version"] for f in mine] == ["$LATEST", "1", "2"]
    assert [f["FunctionArn"].rsplit(":", 1)[1] for f in mine] == ["$LATEST", "1", "2"]
    plain = [
        f["Version"]
        for page in lam.get_paginator("list_functions").paginate()
        for f in page["Functions"]
        if f["FunctionName"] == name
    ]
    assert plain == ["$LATEST"]
    with pytest.raises(lam.exceptions.ClientError) as exc:
        lam.list_functions(FunctionVersion="LATEST")
    assert exc.value.response["Error"]["Code"] == "ValidationException"
    assert exc.value.response["Error"]["Message"] == (
        "1 validation error detected: Value 'LATEST' at 'functionVersion' failed to satisfy"
        " constraint: Member must satisfy enum value set: [ALL]"
    )


def test_client_context_must_be_a_json_object(lam: Any, make_function: Any) -> None:
    name = make_function(CODE)["FunctionName"]
    for raw in (b"not json", b"[1, 2]"):
        with pytest.raises(lam.exceptions.InvalidRequestContentException) as exc:
            lam.invoke(FunctionName=name, ClientContext=base64.b64encode(raw).decode())
        assert exc.value.response["Error"]["Message"] == (
            "Client context must be a valid Base64-encoded JSON object."
        )
    ok = base64.b64encode(json.dumps({"custom": {"k": "v"}}).encode()).decode()
    assert lam.invoke(FunctionName=name, ClientContext=ok)["StatusCode"] == 200


JSON_LEVELS = """
import logging
logger = logging.getLogger()
def handler(event, context):
    print("plain text line")
    logger.info("all good", extra={"code": 200})
    logger.error("it broke", extra={"code": 503, "tags": {"team": "core"}})
    logger.warning("a [bracket] and ? mark")
    return {}
"""


def test_filter_log_events_json_patterns(lam: Any, logs: Any, make_function: Any) -> None:
    name = make_function(JSON_LEVELS, LoggingConfig={"LogFormat": "JSON"})["FunctionName"]
    lam.invoke(FunctionName=name, Payload=b"{}")
    group = f"/aws/lambda/{name}"
    deadline = time.monotonic() + 10
    report = '{ $.type = "platform.report" }'  # JSON format: platform records are JSON too
    while time.monotonic() < deadline:  # the log sink writes in batches; the report comes last
        groups = logs.describe_log_groups(logGroupNamePrefix=group)["logGroups"]
        if groups and logs.filter_log_events(logGroupName=group, filterPattern=report)["events"]:
            break
        time.sleep(0.2)

    def messages(pattern: str) -> list[str]:
        events = logs.filter_log_events(logGroupName=group, filterPattern=pattern)["events"]
        docs = [json.loads(e["message"]) for e in events]
        return [d["message"] for d in docs if "message" in d]

    assert messages('{ $.level = "ERROR" }') == ["it broke"]
    assert messages("{ $.level = ERROR }") == ["it broke"]
    assert messages('{ $.level = "WARN*" }') == ["a [bracket] and ? mark"]
    assert messages("{ $.code >= 500 }") == ["it broke"]
    assert messages("{ $.code = 200 }") == ["all good"]
    assert messages('{ $.tags.team = "core" && $.code > 1 }') == ["it broke"]
    assert messages('{ ($.code = 200) || ($.level = "WARNING") }') == [
        "all good",
        "a [bracket] and ? mark",
    ]
    assert messages('{ $.level != "INFO" && $.code NOT EXISTS }') == ["a [bracket] and ? mark"]
    assert messages('{ $.message = "*[bracket]*" }') == ["a [bracket] and ? mark"]
    with pytest.raises(logs.exceptions.InvalidParameterException):
        logs.filter_log_events(logGroupName=group, filterPattern='{ $.level = "x" ')
    with pytest.raises(logs.exceptions.InvalidParameterException):
        logs.filter_log_events(logGroupName=group, filterPattern='{ $.level > "x" }')


def test_logged_exception_does_not_swallow_the_next_line(lam: Any, make_function: Any) -> None:
    name = make_function(
        "import logging, sys\n"
        "def handler(event, context):\n"
        "    try:\n"
        "        1 / 0\n"
        "    except ZeroDivisionError:\n"
        "        logging.getLogger().exception('caught')\n"
        "    print('next line')\n"
        "    return 1\n"
    )["FunctionName"]
    resp = lam.invoke(FunctionName=name, LogType="Tail", Payload=b"{}")
    lines = base64.b64decode(resp["LogResult"]).decode().splitlines()
    assert "ZeroDivisionError: division by zero" in lines
    assert "next line" in lines


def test_timeout_log_line_has_milliseconds(lam: Any, make_function: Any) -> None:
    name = make_function(
        "import time\ndef handler(event, context):\n    time.sleep(5)\n", Timeout=1
    )["FunctionName"]
    resp = lam.invoke(FunctionName=name, LogType="Tail", Payload=b"{}")
    rid = resp["ResponseMetadata"]["RequestId"]
    tail = base64.b64decode(resp["LogResult"]).decode()
    assert re.search(
        rf"^\d{{4}}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{{3}}Z {rid} Task timed out after 1\.00 seconds$",
        tail,
        re.M,
    ), tail


def test_event_payload_past_the_async_limit(lam: Any, make_function: Any) -> None:
    name = make_function(CODE)["FunctionName"]
    payload = b'"' + b"x" * (1024 * 1024) + b'"'
    with pytest.raises(lam.exceptions.ClientError) as exc:
        lam.invoke(FunctionName=name, InvocationType="Event", Payload=payload)
    assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 413
    assert exc.value.response["Error"] == {
        "Code": "RequestEntityTooLargeException",
        "Message": f"{len(payload)} byte payload is too large for the Event invocation type"
        " (limit 1048576 bytes)",
    }


def test_delete_absent_version_is_a_no_op(lam: Any, make_function: Any) -> None:
    name = make_function(CODE)["FunctionName"]
    resp = lam.delete_function(FunctionName=name, Qualifier="99")
    assert resp["ResponseMetadata"]["HTTPStatusCode"] == 204
    assert lam.get_function(FunctionName=name)["Configuration"]["Version"] == "$LATEST"
    with pytest.raises(lam.exceptions.ResourceNotFoundException) as exc:
        lam.delete_function(FunctionName="compat-no-such-function", Qualifier="1")
    assert exc.value.response["Error"]["Message"] == (
        "Function not found: arn:aws:lambda:us-east-1:000000000000:function:compat-no-such-function"
    )


def test_update_absent_alias(lam: Any, make_function: Any) -> None:
    fn = make_function(CODE)
    with pytest.raises(lam.exceptions.ResourceNotFoundException) as exc:
        lam.update_alias(FunctionName=fn["FunctionName"], Name="nope", FunctionVersion="$LATEST")
    assert exc.value.response["Error"]["Message"] == f"Alias not found: {fn['FunctionArn']}:nope"
    # DeleteAlias of an absent alias answers 204, as on AWS.
    resp = lam.delete_alias(FunctionName=fn["FunctionName"], Name="nope")
    assert resp["ResponseMetadata"]["HTTPStatusCode"] == 204


def test_logging_config_is_validated(lam: Any, make_function: Any) -> None:
    name = make_function(CODE)["FunctionName"]
    cases = [
        ({"LogFormat": "XML"}, "'XML' at 'loggingConfig.logFormat'", "[JSON, Text]"),
        (
            {"LogFormat": "JSON", "ApplicationLogLevel": "LOUD"},
            "'LOUD' at 'loggingConfig.applicationLogLevel'",
            "[TRACE, DEBUG, INFO, WARN, ERROR, FATAL]",
        ),
        (
            {"LogFormat": "JSON", "SystemLogLevel": "ERROR"},
            "'ERROR' at 'loggingConfig.systemLogLevel'",
            "[DEBUG, INFO, WARN]",
        ),
    ]
    for config, where, allowed in cases:
        with pytest.raises(lam.exceptions.ClientError) as exc:
            lam.update_function_configuration(FunctionName=name, LoggingConfig=config)
        assert exc.value.response["Error"]["Code"] == "ValidationException"
        assert exc.value.response["Error"]["Message"] == (
            f"1 validation error detected: Value {where} failed to satisfy constraint:"
            f" Member must satisfy enum value set: {allowed}"
        )
    with pytest.raises(lam.exceptions.ClientError) as exc:
        lam.update_function_configuration(FunctionName=name, LoggingConfig={"LogGroup": "a b"})
    assert exc.value.response["Error"]["Code"] == "ValidationException"
    assert lam.get_function_configuration(FunctionName=name)["LoggingConfig"]["LogFormat"] == "Text"


def test_executed_version_only_for_request_response(lam: Any, make_function: Any) -> None:
    name = make_function(CODE)["FunctionName"]
    event = lam.invoke(FunctionName=name, InvocationType="Event", Payload=b"{}")
    assert event["StatusCode"] == 202 and "ExecutedVersion" not in event
    dry = lam.invoke(FunctionName=name, InvocationType="DryRun")
    assert dry["StatusCode"] == 204 and "ExecutedVersion" not in dry
    assert lam.invoke(FunctionName=name)["ExecutedVersion"] == "$LATEST"


def test_list_functions_leaves_out_state_fields(lam: Any, make_function: Any) -> None:
    name = make_function(CODE, name="compat-list-subset")["FunctionName"]
    lam.publish_version(FunctionName=name)
    omitted = {
        "State",
        "StateReason",
        "StateReasonCode",
        "LastUpdateStatus",
        "LastUpdateStatusReason",
        "LastUpdateStatusReasonCode",
        "RuntimeVersionConfig",
    }
    for kw in ({}, {"FunctionVersion": "ALL"}):
        pages = lam.get_paginator("list_functions").paginate(**kw)
        entries = [f for p in pages for f in p["Functions"] if f["FunctionName"] == name]
        assert entries and all(not omitted & set(f) for f in entries)
        assert all(f["CodeSha256"] and f["RevisionId"] for f in entries)
    got = lam.get_function(FunctionName=name)["Configuration"]
    assert got["State"] == "Active" and got["LastUpdateStatus"] == "Successful"


def test_provisioned_concurrency_within_reserved(lam: Any, make_function: Any) -> None:
    name = make_function(CODE, Publish=True)["FunctionName"]
    lam.put_function_concurrency(FunctionName=name, ReservedConcurrentExecutions=1)
    with pytest.raises(lam.exceptions.InvalidParameterValueException) as exc:
        lam.put_provisioned_concurrency_config(
            FunctionName=name, Qualifier="1", ProvisionedConcurrentExecutions=2
        )
    assert exc.value.response["Error"]["Message"] == (
        "Requested Provisioned Concurrency should not be greater than the"
        " reservedConcurrentExecution for function"
    )
    lam.put_provisioned_concurrency_config(
        FunctionName=name, Qualifier="1", ProvisionedConcurrentExecutions=1
    )
    lam.delete_provisioned_concurrency_config(FunctionName=name, Qualifier="1")


def test_a_version_is_provisioned_once(lam: Any, make_function: Any) -> None:
    name = make_function(CODE, Publish=True)["FunctionName"]
    lam.create_alias(FunctionName=name, Name="live", FunctionVersion="1")
    put = lam.put_provisioned_concurrency_config
    put(FunctionName=name, Qualifier="1", ProvisionedConcurrentExecutions=1)
    with pytest.raises(lam.exceptions.ResourceConflictException) as exc:
        put(FunctionName=name, Qualifier="live", ProvisionedConcurrentExecutions=1)
    assert exc.value.response["Error"]["Message"] == (
        "Alias can't be used for Provisioned Concurrency configuration on an already"
        " Provisioned version"
    )
    lam.delete_provisioned_concurrency_config(FunctionName=name, Qualifier="1")
    put(FunctionName=name, Qualifier="live", ProvisionedConcurrentExecutions=1)
    with pytest.raises(lam.exceptions.ResourceConflictException) as exc:
        put(FunctionName=name, Qualifier="1", ProvisionedConcurrentExecutions=1)
    assert exc.value.response["Error"]["Message"] == (
        "Version is pointed by a Provisioned Concurrency alias"
    )
    lam.delete_provisioned_concurrency_config(FunctionName=name, Qualifier="live")


def test_logging_config_updates_merge(lam: Any, make_function: Any) -> None:
    name = make_function(CODE, LoggingConfig={"LogFormat": "JSON", "ApplicationLogLevel": "DEBUG"})[
        "FunctionName"
    ]
    resp = lam.update_function_configuration(
        FunctionName=name, LoggingConfig={"LogGroup": "/custom/compat-group"}
    )
    assert resp["LoggingConfig"] == {
        "LogFormat": "JSON",
        "ApplicationLogLevel": "DEBUG",
        "SystemLogLevel": "INFO",
        "LogGroup": "/custom/compat-group",
    }
    resp = lam.update_function_configuration(FunctionName=name, LoggingConfig={"LogFormat": "Text"})
    assert resp["LoggingConfig"] == {"LogFormat": "Text", "LogGroup": "/custom/compat-group"}


@pytest.mark.parametrize("runtime", ["python3.8", "nodejs16.x", "go1.x"])
def test_deprecated_runtimes_are_refused_as_on_aws(make_function: Any, runtime: str) -> None:
    with pytest.raises(ClientError) as exc:
        make_function(runtime=runtime)
    err = exc.value.response["Error"]
    code, message = err["Code"], err["Message"]
    status = exc.value.response["ResponseMetadata"]["HTTPStatusCode"]
    assert (code, status) == ("InvalidParameterValueException", 400)
    assert message.startswith(f"The runtime parameter of {runtime} is no longer supported")


def test_logs_missing_required_member_is_value_null(server: ServerProcess, logs: Any) -> None:
    """An absent required member reads ``Value null`` (unquoted), as AWS writes it."""
    raw = server.client("logs", parameter_validation=False)
    with pytest.raises(ClientError) as exc:
        raw.get_log_events(logGroupName="/aws/lambda/none")
    assert exc.value.response["Error"]["Message"] == (
        "1 validation error detected: Value null at 'logStreamName' failed to satisfy"
        " constraint: Member must not be null"
    )
    assert logs.describe_log_groups()["ResponseMetadata"]["HTTPStatusCode"] == 200
