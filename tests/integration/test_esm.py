"""Event source mappings from Hearth SQS queues through boto3: API, batching, partial
batch responses, retries through the visibility timeout, redrive, MaximumConcurrency."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.conftest import ROLE
from tests.helpers import ServerProcess, make_zip, start_server

# Prints one JSON line per batch (read back through CloudWatch Logs), sleeps if asked,
# fails messages whose body is "fail" (whole batch, or per item with partial responses).
RECORDER = """
import json, time
def handler(event, context):
    recs = event["Records"]
    t0 = time.time()
    docs = [json.loads(r["body"]) for r in recs if r["body"].startswith("{")]
    sleep = max([d.get("sleep", 0) for d in docs] or [0])
    time.sleep(sleep)
    print("BATCH " + json.dumps({"ids": [r["messageId"] for r in recs],
        "bodies": [r["body"] for r in recs], "t0": t0, "t1": time.time(),
        "first": recs[0] if len(recs) == 1 else None}))
    failed = [r["messageId"] for r in recs if r["body"] == "fail"]
    if failed and not event.get("partial", False) and "PARTIAL" not in context.function_name:
        raise RuntimeError("batch failed")
    return {"batchItemFailures": [{"itemIdentifier": i} for i in failed]}
"""


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    server = start_server(
        tmp_path_factory.mktemp("esm") / "data", ["--no-egress", "--idle-timeout", "120"]
    )
    yield server
    server.stop()


@pytest.fixture(scope="module")
def lam(srv: ServerProcess) -> Any:
    return srv.client("lambda")


@pytest.fixture(scope="module")
def sqs(srv: ServerProcess) -> Any:
    return srv.client("sqs")


@pytest.fixture(scope="module")
def logs(srv: ServerProcess) -> Any:
    return srv.client("logs")


_n = iter(range(10_000))


def _fn(lam: Any, name: str | None = None, timeout: int = 30) -> str:
    name = name or f"esm-{next(_n)}"
    lam.create_function(
        FunctionName=name,
        Runtime="python3.11",
        Role=ROLE,
        Handler="app.handler",
        Timeout=timeout,
        Code={"ZipFile": make_zip({"app.py": RECORDER})},
    )
    return name


def _queue(sqs: Any, **attrs: str) -> tuple[str, str]:
    url = sqs.create_queue(QueueName=f"esmq-{next(_n)}-{int(time.time())}", Attributes=attrs)[
        "QueueUrl"
    ]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    return url, arn


def _batches(logs: Any, name: str) -> list[dict[str, Any]]:
    try:
        events = logs.filter_log_events(logGroupName=f"/aws/lambda/{name}", filterPattern="BATCH")[
            "events"
        ]
    except ClientError:
        return []
    out = []
    for e in events:
        msg = e["message"].strip()
        if msg.startswith("BATCH "):
            out.append(json.loads(msg[len("BATCH ") :]))
    return out


def _wait_batches(logs: Any, name: str, ids: int, timeout: float = 60) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    while True:
        got = _batches(logs, name)
        if len({i for b in got for i in b["ids"]}) >= ids or time.monotonic() > deadline:
            return got
        time.sleep(0.5)


def _send(sqs: Any, url: str, bodies: list[str]) -> list[str]:
    ids = []
    for i in range(0, len(bodies), 10):
        chunk = bodies[i : i + 10]
        res = sqs.send_message_batch(
            QueueUrl=url,
            Entries=[{"Id": str(j), "MessageBody": b} for j, b in enumerate(chunk)],
        )
        ids.extend(s["MessageId"] for s in sorted(res["Successful"], key=lambda s: int(s["Id"])))
    return ids


def _queue_empty(sqs: Any, url: str, timeout: float = 30) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        a = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
        if a["ApproximateNumberOfMessages"] == a["ApproximateNumberOfMessagesNotVisible"] == "0":
            return True
        time.sleep(0.5)
    return False


def test_mapping_api_and_states(lam: Any, sqs: Any) -> None:
    name = _fn(lam)
    _, arn = _queue(sqs)
    created = lam.create_event_source_mapping(
        EventSourceArn=arn, FunctionName=name, BatchSize=5, Enabled=False
    )
    assert created["ResponseMetadata"]["HTTPStatusCode"] == 202
    uid = created["UUID"]
    assert created["EventSourceArn"] == arn
    assert created["FunctionArn"] == f"arn:aws:lambda:us-east-1:000000000000:function:{name}"
    assert created["BatchSize"] == 5
    assert created["MaximumBatchingWindowInSeconds"] == 0
    assert created["EventSourceMappingArn"].endswith(f":event-source-mapping:{uid}")
    assert lam.get_event_source_mapping(UUID=uid)["State"] == "Disabled"
    upd = lam.update_event_source_mapping(
        UUID=uid,
        Enabled=True,
        BatchSize=50,
        MaximumBatchingWindowInSeconds=1,
        FunctionResponseTypes=["ReportBatchItemFailures"],
        ScalingConfig={"MaximumConcurrency": 3},
    )
    assert upd["State"] == "Enabling"
    got = lam.get_event_source_mapping(UUID=uid)
    assert got["State"] == "Enabled"
    assert got["BatchSize"] == 50
    assert got["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert got["ScalingConfig"] == {"MaximumConcurrency": 3}
    listed = lam.list_event_source_mappings(FunctionName=name)["EventSourceMappings"]
    assert [m["UUID"] for m in listed] == [uid]
    assert [
        m["UUID"] for m in lam.list_event_source_mappings(EventSourceArn=arn)["EventSourceMappings"]
    ] == [uid]
    with pytest.raises(lam.exceptions.ResourceConflictException):
        lam.create_event_source_mapping(EventSourceArn=arn, FunctionName=name)
    assert lam.delete_event_source_mapping(UUID=uid)["State"] == "Deleting"
    with pytest.raises(lam.exceptions.ResourceNotFoundException):
        lam.get_event_source_mapping(UUID=uid)


def test_mapping_bad_input(lam: Any, sqs: Any, srv: ServerProcess) -> None:
    name = _fn(lam)
    _, arn = _queue(sqs)
    cases: list[tuple[dict[str, Any], str]] = [
        ({"BatchSize": 10001}, "ValidationException"),
        ({"BatchSize": 20}, "InvalidParameterValueException"),  # needs a batching window
        ({"MaximumBatchingWindowInSeconds": 301}, "ValidationException"),
        ({"ScalingConfig": {"MaximumConcurrency": 1001}}, "ValidationException"),
        ({"FunctionResponseTypes": ["Nope"]}, "ValidationException"),  # the model's enum
    ]
    for kw, code in cases:
        with pytest.raises(ClientError) as exc:
            lam.create_event_source_mapping(EventSourceArn=arn, FunctionName=name, **kw)
        assert exc.value.response["Error"]["Code"] == code, kw
    with pytest.raises(lam.exceptions.InvalidParameterValueException) as exc:
        lam.create_event_source_mapping(
            EventSourceArn="arn:aws:sqs:us-east-1:000000000000:nope", FunctionName=name
        )
    assert "NonExistentQueue" in str(exc.value)
    # AWS's answer for a mapping to a function that does not exist (a 400, not a 404).
    with pytest.raises(lam.exceptions.InvalidParameterValueException) as exc:
        lam.create_event_source_mapping(EventSourceArn=arn, FunctionName="no-such-fn")
    assert exc.value.response["Error"]["Message"] == "Function does not exist"


def test_batching_and_record_shape(lam: Any, sqs: Any, logs: Any) -> None:
    name = _fn(lam)
    url, arn = _queue(sqs)
    one = sqs.send_message(
        QueueUrl=url,
        MessageBody="single",
        MessageAttributes={"k": {"DataType": "String", "StringValue": "v"}},
    )
    uid = lam.create_event_source_mapping(EventSourceArn=arn, FunctionName=name, BatchSize=1)[
        "UUID"
    ]
    (batch,) = _wait_batches(logs, name, 1)
    rec = batch["first"]
    assert rec["messageId"] == one["MessageId"]
    assert rec["body"] == "single"
    assert rec["md5OfBody"] == one["MD5OfMessageBody"]
    assert rec["md5OfMessageAttributes"] == one["MD5OfMessageAttributes"]
    assert rec["eventSource"] == "aws:sqs"
    assert rec["eventSourceARN"] == arn
    assert rec["awsRegion"] == "us-east-1"
    assert rec["receiptHandle"]
    assert rec["messageAttributes"] == {
        "k": {
            "stringValue": "v",
            "stringListValues": [],
            "binaryListValues": [],
            "dataType": "String",
        }
    }
    assert set(rec["attributes"]) >= {
        "ApproximateReceiveCount",
        "SentTimestamp",
        "SenderId",
        "ApproximateFirstReceiveTimestamp",
    }
    assert _queue_empty(sqs, url)
    # Batches of up to 10 with a one-second window.
    lam.update_event_source_mapping(UUID=uid, BatchSize=10, MaximumBatchingWindowInSeconds=1)
    time.sleep(0.5)
    ids = _send(sqs, url, [f"m{i}" for i in range(25)])
    batches = _wait_batches(logs, name, 26)
    seen = [i for b in batches for i in b["ids"]]
    assert set(ids) <= set(seen)
    sizes = [len(b["ids"]) for b in batches[1:]]
    assert max(sizes) <= 10 and max(sizes) >= 5, sizes
    assert _queue_empty(sqs, url)
    lam.delete_event_source_mapping(UUID=uid)


def test_batching_window_collects_one_big_batch(lam: Any, sqs: Any, logs: Any) -> None:
    name = _fn(lam)
    url, arn = _queue(sqs)
    uid = lam.create_event_source_mapping(
        EventSourceArn=arn, FunctionName=name, BatchSize=100, MaximumBatchingWindowInSeconds=3
    )["UUID"]
    time.sleep(0.5)
    ids = []
    for _ in range(4):  # 40 messages spread over about a second
        ids += _send(sqs, url, [f"w{i}" for i in range(10)])
        time.sleep(0.25)
    batches = _wait_batches(logs, name, 40)
    assert {i for b in batches for i in b["ids"]} == set(ids)
    assert max(len(b["ids"]) for b in batches) >= 30, [len(b["ids"]) for b in batches]
    lam.delete_event_source_mapping(UUID=uid)


def test_partial_batch_response_and_redrive(lam: Any, sqs: Any, logs: Any) -> None:
    name = _fn(lam, f"PARTIAL-{next(_n)}", timeout=3)  # ≤ the queue's visibility timeout
    dlq_url, dlq_arn = _queue(sqs)
    policy = json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 2})
    url, arn = _queue(sqs, VisibilityTimeout="3", RedrivePolicy=policy)
    ids = _send(sqs, url, ["ok1", "fail", "ok2", "ok3"])
    uid = lam.create_event_source_mapping(
        EventSourceArn=arn,
        FunctionName=name,
        BatchSize=10,
        FunctionResponseTypes=["ReportBatchItemFailures"],
    )["UUID"]
    moved = []
    deadline = time.monotonic() + 40
    while not moved and time.monotonic() < deadline:
        moved = sqs.receive_message(QueueUrl=dlq_url, WaitTimeSeconds=1).get("Messages", [])
    assert [m["MessageId"] for m in moved] == [ids[1]]
    batches = _batches(logs, name)
    seen = [i for b in batches for i in b["ids"]]
    # Successes were deleted after their first batch; the failure was retried once.
    for ok in (ids[0], ids[2], ids[3]):
        assert seen.count(ok) == 1
    assert seen.count(ids[1]) == 2
    assert _queue_empty(sqs, url)
    lam.delete_event_source_mapping(UUID=uid)


def test_function_error_retries_whole_batch_after_visibility_timeout(
    lam: Any, sqs: Any, logs: Any
) -> None:
    name = _fn(lam, timeout=3)  # ≤ the queue's visibility timeout
    dlq_url, dlq_arn = _queue(sqs)
    policy = json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 3})
    url, arn = _queue(sqs, VisibilityTimeout="3", RedrivePolicy=policy)
    ids = _send(sqs, url, ["a", "fail"])
    uid = lam.create_event_source_mapping(
        EventSourceArn=arn, FunctionName=name, BatchSize=10, MaximumBatchingWindowInSeconds=1
    )["UUID"]
    got: list[dict[str, Any]] = []
    deadline = time.monotonic() + 40
    while len(got) < 2 and time.monotonic() < deadline:
        got += sqs.receive_message(QueueUrl=dlq_url, WaitTimeSeconds=1).get("Messages", [])
    assert sorted(m["MessageId"] for m in got) == sorted(ids)
    seen = [i for b in _batches(logs, name) for i in b["ids"]]
    assert seen.count(ids[0]) == 3 and seen.count(ids[1]) == 3
    lam.delete_event_source_mapping(UUID=uid)


def test_maximum_concurrency_honoured(lam: Any, sqs: Any, logs: Any) -> None:
    name = _fn(lam)
    url, arn = _queue(sqs)
    _send(sqs, url, [json.dumps({"sleep": 1.0, "i": i}) for i in range(12)])
    uid = lam.create_event_source_mapping(
        EventSourceArn=arn,
        FunctionName=name,
        BatchSize=1,
        ScalingConfig={"MaximumConcurrency": 3},
    )["UUID"]
    batches = _wait_batches(logs, name, 12, timeout=90)
    assert len(batches) == 12
    # Concurrency measured from inside the function: overlapping [t0, t1] intervals.
    points = sorted([(b["t0"], 1) for b in batches] + [(b["t1"], -1) for b in batches])
    level = peak = 0
    for _, d in points:
        level += d
        peak = max(peak, level)
    assert peak <= 3
    assert peak >= 2  # it did scale out with the backlog
    assert _queue_empty(sqs, url)
    lam.delete_event_source_mapping(UUID=uid)


def test_mappings_survive_restart(tmp_path: Any) -> None:
    srv = start_server(tmp_path / "data", ["--no-egress"])
    try:
        lam, sqs, logs = srv.client("lambda"), srv.client("sqs"), srv.client("logs")
        name = _fn(lam)
        url, arn = _queue(sqs)
        uid = lam.create_event_source_mapping(EventSourceArn=arn, FunctionName=name)["UUID"]
        srv.stop()
        srv = srv.restart()
        lam, sqs, logs = srv.client("lambda"), srv.client("sqs"), srv.client("logs")
        assert lam.get_event_source_mapping(UUID=uid)["State"] == "Enabled"
        ids = _send(sqs, url, ["after-restart"])
        batches = _wait_batches(logs, name, 1)
        assert ids[0] in {i for b in batches for i in b["ids"]}
    finally:
        srv.stop()


def test_filter_criteria(lam: Any, sqs: Any, logs: Any) -> None:
    name = _fn(lam)
    url, arn = _queue(sqs)
    pattern = json.dumps(
        {"body": {"kind": ["keep", {"prefix": "also-"}], "n": [{"numeric": [">", 5]}]}}
    )
    with pytest.raises(lam.exceptions.InvalidParameterValueException):
        lam.create_event_source_mapping(
            EventSourceArn=arn,
            FunctionName=name,
            FilterCriteria={"Filters": [{"Pattern": '{"body": 5}'}]},
        )
    ids = _send(
        sqs,
        url,
        [
            json.dumps({"kind": "keep", "n": 6}),
            json.dumps({"kind": "also-this", "n": 10}),
            json.dumps({"kind": "keep", "n": 1}),
            json.dumps({"kind": "drop", "n": 9}),
            "not json",
        ],
    )
    uid = lam.create_event_source_mapping(
        EventSourceArn=arn,
        FunctionName=name,
        BatchSize=10,
        MaximumBatchingWindowInSeconds=1,
        FilterCriteria={"Filters": [{"Pattern": pattern}]},
    )["UUID"]
    assert lam.get_event_source_mapping(UUID=uid)["FilterCriteria"] == {
        "Filters": [{"Pattern": pattern}]
    }
    assert _queue_empty(sqs, url)  # unmatched messages are deleted, matched ones processed
    seen = {i for b in _wait_batches(logs, name, 2) for i in b["ids"]}
    assert seen == {ids[0], ids[1]}
    lam.delete_event_source_mapping(UUID=uid)
