"""Asynchronous invocation through boto3: durable queue, retries, event age, destinations,
dead-letter queues, throttling, and the event invoke config API."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.conftest import ROLE
from tests.helpers import ServerProcess, make_zip, start_server

ACCOUNT = "000000000000"
PREFIX = f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:"

# Counts attempts per request id inside the (warm) environment; fails the first
# ``fail_times`` attempts of each request, then succeeds.
FLAKY = """
import json
ATTEMPTS = {}
def handler(event, context):
    n = ATTEMPTS[context.aws_request_id] = ATTEMPTS.get(context.aws_request_id, 0) + 1
    print("ATTEMPT", context.aws_request_id, n)
    if n <= event.get("fail_times", 0):
        raise RuntimeError(f"attempt {n} failed")
    return {"attempts": n, "event": event}
"""


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    base = tmp_path_factory.mktemp("async")
    server = start_server(
        base / "data",
        ["--no-egress", "--idle-timeout", "120"],
        env={"HEARTH_ASYNC_RETRY_DELAYS": "0.5,1"},
    )
    yield server
    server.stop()


@pytest.fixture(scope="module")
def lam(srv: ServerProcess) -> Any:
    return srv.client("lambda")


@pytest.fixture(scope="module")
def sqs(srv: ServerProcess) -> Any:
    return srv.client("sqs")


_n = iter(range(10_000))


def _fn(lam: Any, code: str = FLAKY, **kw: Any) -> str:
    name = f"async-{next(_n)}"
    lam.create_function(
        FunctionName=name,
        Runtime="python3.11",
        Role=ROLE,
        Handler="app.handler",
        Code={"ZipFile": make_zip({"app.py": code})},
        **kw,
    )
    return name


def _queue(sqs: Any) -> tuple[str, str]:
    url = sqs.create_queue(QueueName=f"dest-{next(_n)}-{int(time.time())}")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    return url, arn


def _drain(sqs: Any, url: str, want: int, timeout: float = 30, **kw: Any) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout
    while len(out) < want and time.monotonic() < deadline:
        got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1, **kw)
        for m in got.get("Messages", []):
            out.append(m)
            sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
    return out


def _event(lam: Any, name: str, payload: Any, **kw: Any) -> str:
    resp = lam.invoke(FunctionName=name, InvocationType="Event", Payload=json.dumps(payload), **kw)
    assert resp["StatusCode"] == 202
    assert resp["Payload"].read() == b""
    return str(resp["ResponseMetadata"]["RequestId"])


def test_success_record_to_queue(lam: Any, sqs: Any) -> None:
    name = _fn(lam)
    url, arn = _queue(sqs)
    lam.put_function_event_invoke_config(
        FunctionName=name, DestinationConfig={"OnSuccess": {"Destination": arn}}
    )
    rid = _event(lam, name, {"k": "v"})
    (msg,) = _drain(sqs, url, 1)
    rec = json.loads(msg["Body"])
    assert set(rec) == {
        "version",
        "timestamp",
        "requestContext",
        "requestPayload",
        "responseContext",
        "responsePayload",
    }
    assert rec["version"] == "1.0"
    assert len(rec["timestamp"]) == 24 and rec["timestamp"].endswith("Z")
    time.strptime(rec["timestamp"][:19], "%Y-%m-%dT%H:%M:%S")
    assert rec["requestContext"] == {
        "requestId": rid,
        "functionArn": f"{PREFIX}{name}:$LATEST",
        "condition": "Success",
        "approximateInvokeCount": 1,
    }
    assert rec["requestPayload"] == {"k": "v"}
    assert rec["responseContext"] == {"statusCode": 200, "executedVersion": "$LATEST"}
    assert rec["responsePayload"] == {"attempts": 1, "event": {"k": "v"}}


def test_failure_retried_then_on_failure_and_dlq(lam: Any, sqs: Any) -> None:
    dlq_url, dlq_arn = _queue(sqs)
    name = _fn(lam, DeadLetterConfig={"TargetArn": dlq_arn})
    url, arn = _queue(sqs)
    lam.put_function_event_invoke_config(
        FunctionName=name,
        MaximumRetryAttempts=2,
        DestinationConfig={"OnFailure": {"Destination": arn}},
    )
    rid = _event(lam, name, {"fail_times": 99})
    (msg,) = _drain(sqs, url, 1)
    rec = json.loads(msg["Body"])
    ctx = rec["requestContext"]
    assert ctx["requestId"] == rid
    assert ctx["condition"] == "RetriesExhausted"
    assert ctx["approximateInvokeCount"] == 3  # 1 + MaximumRetryAttempts
    assert ctx["functionArn"] == f"{PREFIX}{name}:$LATEST"
    assert rec["requestPayload"] == {"fail_times": 99}
    assert rec["responseContext"] == {
        "statusCode": 200,
        "executedVersion": "$LATEST",
        "functionError": "Unhandled",
    }
    # Counted from inside the function: the third attempt of the same request id.
    assert rec["responsePayload"]["errorType"] == "RuntimeError"
    assert rec["responsePayload"]["errorMessage"] == "attempt 3 failed"
    (dead,) = _drain(sqs, dlq_url, 1, MessageAttributeNames=["All"])
    assert json.loads(dead["Body"]) == {"fail_times": 99}
    attrs = dead["MessageAttributes"]
    assert attrs["RequestID"] == {"DataType": "String", "StringValue": rid}
    assert attrs["ErrorCode"] == {"DataType": "Number", "StringValue": "200"}
    assert attrs["ErrorMessage"]["StringValue"] == "attempt 3 failed"


def test_retry_then_success_and_zero_retries(lam: Any, sqs: Any) -> None:
    name = _fn(lam)
    url, arn = _queue(sqs)
    lam.put_function_event_invoke_config(
        FunctionName=name,
        DestinationConfig={"OnSuccess": {"Destination": arn}, "OnFailure": {"Destination": arn}},
    )
    _event(lam, name, {"fail_times": 1})
    (msg,) = _drain(sqs, url, 1)
    rec = json.loads(msg["Body"])
    assert rec["requestContext"]["condition"] == "Success"
    assert rec["requestContext"]["approximateInvokeCount"] == 2
    assert rec["responsePayload"]["attempts"] == 2
    lam.update_function_event_invoke_config(FunctionName=name, MaximumRetryAttempts=0)
    _event(lam, name, {"fail_times": 1})
    (msg,) = _drain(sqs, url, 1)
    rec = json.loads(msg["Body"])
    assert rec["requestContext"]["condition"] == "RetriesExhausted"
    assert rec["requestContext"]["approximateInvokeCount"] == 1


def test_function_destination(lam: Any, sqs: Any) -> None:
    url, arn = _queue(sqs)
    target = _fn(lam, "def handler(event, context):\n    return {'got': event}\n")
    lam.put_function_event_invoke_config(
        FunctionName=target, DestinationConfig={"OnSuccess": {"Destination": arn}}
    )
    name = _fn(lam)
    lam.put_function_event_invoke_config(
        FunctionName=name,
        DestinationConfig={"OnSuccess": {"Destination": f"{PREFIX}{target}"}},
    )
    rid = _event(lam, name, {"chain": 1})
    (msg,) = _drain(sqs, url, 1)
    outer = json.loads(msg["Body"])
    assert outer["requestContext"]["functionArn"] == f"{PREFIX}{target}:$LATEST"
    inner = outer["requestPayload"]
    assert inner["requestContext"]["requestId"] == rid
    assert inner["requestContext"]["functionArn"] == f"{PREFIX}{name}:$LATEST"
    assert inner["requestPayload"] == {"chain": 1}
    assert outer["responsePayload"] == {"got": inner}


def test_throttled_events_wait_then_run(lam: Any, sqs: Any) -> None:
    name = _fn(lam)
    url, arn = _queue(sqs)
    lam.put_function_event_invoke_config(
        FunctionName=name, DestinationConfig={"OnSuccess": {"Destination": arn}}
    )
    lam.put_function_concurrency(FunctionName=name, ReservedConcurrentExecutions=0)
    _event(lam, name, {"t": 1})
    assert _drain(sqs, url, 1, timeout=3) == []
    lam.delete_function_concurrency(FunctionName=name)
    (msg,) = _drain(sqs, url, 1, timeout=30)
    rec = json.loads(msg["Body"])
    assert rec["requestContext"]["condition"] == "Success"
    assert rec["requestContext"]["approximateInvokeCount"] == 1  # throttles are not attempts


def test_event_payload_limit(lam: Any) -> None:
    name = _fn(lam)
    with pytest.raises(ClientError) as exc:
        lam.invoke(
            FunctionName=name,
            InvocationType="Event",
            Payload=json.dumps({"x": "a" * (1024 * 1024)}),
        )
    assert exc.value.response["Error"]["Code"] == "RequestEntityTooLargeException"
    assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 413


def test_event_invoke_config_api(lam: Any, sqs: Any) -> None:
    name = _fn(lam)
    _, arn = _queue(sqs)
    with pytest.raises(lam.exceptions.ResourceNotFoundException) as exc:
        lam.get_function_event_invoke_config(FunctionName=name)
    assert "doesn't have an EventInvokeConfig" in str(exc.value)
    put = lam.put_function_event_invoke_config(
        FunctionName=name, MaximumRetryAttempts=1, MaximumEventAgeInSeconds=600
    )
    assert put["FunctionArn"] == f"{PREFIX}{name}:$LATEST"
    assert put["MaximumRetryAttempts"] == 1
    assert put["MaximumEventAgeInSeconds"] == 600
    assert put["DestinationConfig"] == {"OnSuccess": {}, "OnFailure": {}}
    upd = lam.update_function_event_invoke_config(
        FunctionName=name, DestinationConfig={"OnFailure": {"Destination": arn}}
    )
    assert upd["MaximumRetryAttempts"] == 1  # update merges
    assert upd["DestinationConfig"]["OnFailure"] == {"Destination": arn}
    got = lam.get_function_event_invoke_config(FunctionName=name, Qualifier="$LATEST")
    assert got["MaximumEventAgeInSeconds"] == 600
    # Put replaces the whole config.
    put2 = lam.put_function_event_invoke_config(FunctionName=name, MaximumRetryAttempts=0)
    assert "MaximumEventAgeInSeconds" not in put2
    assert put2["DestinationConfig"] == {"OnSuccess": {}, "OnFailure": {}}
    # Per version.
    ver = lam.publish_version(FunctionName=name)["Version"]
    lam.put_function_event_invoke_config(FunctionName=name, Qualifier=ver, MaximumRetryAttempts=2)
    listed = lam.list_function_event_invoke_configs(FunctionName=name)["FunctionEventInvokeConfigs"]
    assert sorted(c["FunctionArn"] for c in listed) == sorted(
        [f"{PREFIX}{name}:$LATEST", f"{PREFIX}{name}:{ver}"]
    )
    page = lam.list_function_event_invoke_configs(FunctionName=name, MaxItems=1)
    assert len(page["FunctionEventInvokeConfigs"]) == 1 and page["NextMarker"]
    lam.delete_function_event_invoke_config(FunctionName=name, Qualifier=ver)
    with pytest.raises(lam.exceptions.ResourceNotFoundException):
        lam.delete_function_event_invoke_config(FunctionName=name, Qualifier=ver)
    # Bad input.
    bad: list[tuple[dict[str, Any], str, str]] = [
        ({"MaximumRetryAttempts": 3}, "ValidationException", "maximumRetryAttempts"),
        ({"MaximumEventAgeInSeconds": 21601}, "ValidationException", "maximumEventAgeInSeconds"),
        (
            {"DestinationConfig": {"OnSuccess": {"Destination": "arn:aws:s3:::bucket"}}},
            "InvalidParameterValueException",
            "",
        ),
        (
            {"DestinationConfig": {"OnFailure": {"Destination": f"{PREFIX}{name}"}}},
            "InvalidParameterValueException",
            "itself",
        ),
    ]
    for kw, code, text in bad:
        with pytest.raises(ClientError) as err:
            lam.put_function_event_invoke_config(FunctionName=name, **kw)
        assert err.value.response["Error"]["Code"] == code, kw
        assert text in str(err.value)
    with pytest.raises(lam.exceptions.ResourceNotFoundException):
        lam.put_function_event_invoke_config(FunctionName="no-such-fn", MaximumRetryAttempts=1)
    # Deleting the function deletes its configs: a new function of the same name has none.
    lam.delete_function(FunctionName=name)
    lam.create_function(
        FunctionName=name,
        Runtime="python3.11",
        Role=ROLE,
        Handler="app.handler",
        Code={"ZipFile": make_zip({"app.py": FLAKY})},
    )
    with pytest.raises(lam.exceptions.ResourceNotFoundException):
        lam.get_function_event_invoke_config(FunctionName=name)


def test_max_event_age(tmp_path: Path) -> None:
    # Retry delays longer than the minimum event age: the first failure expires the event.
    srv = start_server(tmp_path / "data", ["--no-egress"], env={"HEARTH_ASYNC_RETRY_DELAYS": "61"})
    try:
        lam, sqs = srv.client("lambda"), srv.client("sqs")
        name = _fn(lam)
        url, arn = _queue(sqs)
        lam.put_function_event_invoke_config(
            FunctionName=name,
            MaximumEventAgeInSeconds=60,
            DestinationConfig={"OnFailure": {"Destination": arn}},
        )
        rid = _event(lam, name, {"fail_times": 5})
        (msg,) = _drain(sqs, url, 1)
        rec = json.loads(msg["Body"])
        assert rec["requestContext"]["requestId"] == rid
        assert rec["requestContext"]["condition"] == "EventAgeExceeded"
        assert rec["requestContext"]["approximateInvokeCount"] == 1
        assert rec["responsePayload"]["errorMessage"] == "attempt 1 failed"
    finally:
        srv.stop()


def test_accepted_events_survive_kill(tmp_path: Path) -> None:
    srv = start_server(tmp_path / "data", ["--no-egress"])
    try:
        lam, sqs = srv.client("lambda"), srv.client("sqs")
        url, arn = _queue(sqs)
        # A function that takes a while: the events are accepted, then the server dies.
        name = _fn(lam, "import time\ndef handler(e, c):\n    time.sleep(0.5)\n    return e\n")
        lam.put_function_event_invoke_config(
            FunctionName=name, DestinationConfig={"OnSuccess": {"Destination": arn}}
        )
        lam.put_function_concurrency(FunctionName=name, ReservedConcurrentExecutions=1)
        sent = {_event(lam, name, {"i": i}) for i in range(10)}
        srv.stop(9)
        time.sleep(1)  # let the killed server's sandboxes die before the sweep at start
        srv = srv.restart()
        sqs = srv.client("sqs")
        got = _drain(sqs, url, 10, timeout=60)
        records = [json.loads(m["Body"]) for m in got]
        assert {r["requestContext"]["requestId"] for r in records} == sent
    finally:
        srv.stop()


def test_alias_config_and_record(lam: Any, sqs: Any) -> None:
    name = _fn(lam)
    url, arn = _queue(sqs)
    ver = lam.publish_version(FunctionName=name)["Version"]
    lam.create_alias(FunctionName=name, Name="live", FunctionVersion=ver)
    # Only the alias has a destination: an unqualified invoke delivers nothing.
    lam.put_function_event_invoke_config(
        FunctionName=name, Qualifier="live", DestinationConfig={"OnSuccess": {"Destination": arn}}
    )
    _event(lam, name, {"which": "latest"})
    rid = _event(lam, f"{name}:live", {"which": "alias"})
    (msg,) = _drain(sqs, url, 1)
    assert _drain(sqs, url, 1, timeout=2) == []
    rec = json.loads(msg["Body"])
    assert rec["requestContext"]["requestId"] == rid
    assert rec["requestContext"]["functionArn"] == f"{PREFIX}{name}:live"
    assert rec["responseContext"]["executedVersion"] == ver
    assert rec["requestPayload"] == {"which": "alias"}


def test_sns_and_eventbridge_destinations(srv: ServerProcess, lam: Any, sqs: Any) -> None:
    """OnSuccess to an SNS topic (the record is the message) and OnFailure to the default
    event bus (an event ``Lambda Function Invocation Result - Failure`` from ``lambda``)."""
    sns = srv.client("sns")
    events = srv.client("events")
    name = _fn(lam)
    topic_url, topic_queue = _queue(sqs)
    bus_url, bus_queue = _queue(sqs)
    topic = sns.create_topic(Name=f"results-{name}")["TopicArn"]
    sns.subscribe(
        TopicArn=topic,
        Protocol="sqs",
        Endpoint=topic_queue,
        Attributes={"RawMessageDelivery": "true"},
    )
    rule = f"failures-{name}"
    events.put_rule(
        Name=rule,
        EventPattern=json.dumps(
            {"source": ["lambda"], "detail-type": ["Lambda Function Invocation Result - Failure"]}
        ),
    )
    events.put_targets(Rule=rule, Targets=[{"Id": "q", "Arn": bus_queue}])
    bus = f"arn:aws:events:us-east-1:{ACCOUNT}:event-bus/default"
    lam.put_function_event_invoke_config(
        FunctionName=name,
        MaximumRetryAttempts=0,
        DestinationConfig={"OnSuccess": {"Destination": topic}, "OnFailure": {"Destination": bus}},
    )
    ok = _event(lam, name, {"k": 1})
    bad = _event(lam, name, {"fail_times": 5})
    (msg,) = _drain(sqs, topic_url, 1)
    rec = json.loads(msg["Body"])
    assert rec["requestContext"]["requestId"] == ok
    assert rec["requestContext"]["condition"] == "Success"
    (msg,) = _drain(sqs, bus_url, 1)
    event = json.loads(msg["Body"])
    assert (event["source"], event["detail-type"]) == (
        "lambda",
        "Lambda Function Invocation Result - Failure",
    )
    assert event["resources"] == [bus, f"{PREFIX}{name}:$LATEST"]
    assert event["detail"]["requestContext"]["requestId"] == bad
    assert event["detail"]["requestContext"]["condition"] == "RetriesExhausted"
    with pytest.raises(ClientError) as exc:
        lam.put_function_event_invoke_config(
            FunctionName=name,
            DestinationConfig={
                "OnSuccess": {"Destination": f"arn:aws:events:us-east-1:{ACCOUNT}:event-bus/x"}
            },
        )
    assert exc.value.response["Error"]["Code"] == "InvalidParameterValueException"
