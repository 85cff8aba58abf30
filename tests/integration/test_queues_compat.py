"""Compatibility review of queues, async invocation and event source mappings against
botocore's models and AWS's documentation (boto3 as the client, a real server)."""

from __future__ import annotations

import base64
import hashlib
import importlib
import json
import struct
import time
from collections.abc import Callable
from typing import Any

import pytest
from botocore.exceptions import ClientError

ACCOUNT = "000000000000"

# Prints each SQS record it gets as one JSON line (read back through CloudWatch Logs).
PRINTER = """
import json
def handler(event, context):
    for r in event["Records"]:
        print("REC " + json.dumps(r))
    return {}
"""

_n = iter(range(10_000))


def _name(prefix: str) -> str:
    return f"{prefix}-{next(_n)}-{int(time.time() * 1000) % 100000}"


@pytest.fixture(scope="module")
def sqs(server: Any) -> Any:
    return server.client("sqs")


def _arn(sqs: Any, url: str) -> str:
    attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]
    return str(attrs["QueueArn"])


def _fifo(sqs: Any, **attrs: str) -> tuple[str, str]:
    url = sqs.create_queue(
        QueueName=_name("cf") + ".fifo", Attributes={"FifoQueue": "true", **attrs}
    )["QueueUrl"]
    return url, _arn(sqs, url)


def _records(logs: Any, fn: str, want: int, timeout: float = 60) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    out: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        try:
            events = logs.filter_log_events(logGroupName=f"/aws/lambda/{fn}")["events"]
        except ClientError:
            events = []
        out = [
            json.loads(e["message"].strip()[4:]) for e in events if e["message"].startswith("REC ")
        ]
        if len(out) >= want:
            break
        time.sleep(0.5)
    return out


def test_fifo_queue_as_dead_letter_queue(sqs: Any) -> None:
    """A FIFO queue's ARN (``name.fifo``) is a valid deadLetterTargetArn, and redrive works."""
    dlq_url, dlq_arn = _fifo(sqs)
    src_url, _ = _fifo(
        sqs,
        ContentBasedDeduplication="true",
        RedrivePolicy=json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 1}),
    )
    policy = sqs.get_queue_attributes(QueueUrl=src_url, AttributeNames=["RedrivePolicy"])
    assert json.loads(policy["Attributes"]["RedrivePolicy"])["deadLetterTargetArn"] == dlq_arn
    assert sqs.list_dead_letter_source_queues(QueueUrl=dlq_url)["queueUrls"] == [src_url]
    sqs.send_message(QueueUrl=src_url, MessageBody="poison", MessageGroupId="g")
    first = sqs.receive_message(QueueUrl=src_url, VisibilityTimeout=0)["Messages"]
    assert first[0]["Body"] == "poison"
    assert "Messages" not in sqs.receive_message(QueueUrl=src_url)
    moved = sqs.receive_message(QueueUrl=dlq_url, MessageSystemAttributeNames=["All"])
    assert moved["Messages"][0]["Body"] == "poison"
    assert moved["Messages"][0]["Attributes"]["MessageGroupId"] == "g"


def test_event_source_mapping_from_fifo_queue(
    sqs: Any, lam: Any, logs: Any, make_function: Callable[..., dict[str, Any]]
) -> None:
    """Lambda maps FIFO queues; the record carries the FIFO system attributes."""
    url, arn = _fifo(sqs)
    fn = make_function(PRINTER, Timeout=30)["FunctionName"]  # room for a slow machine
    with pytest.raises(lam.exceptions.InvalidParameterValueException) as exc:
        lam.create_event_source_mapping(
            FunctionName=fn, EventSourceArn=arn, MaximumBatchingWindowInSeconds=5
        )
    assert exc.value.response["Error"]["Message"] == (
        "Batching window is not supported for FIFO queues"
    )
    m = lam.create_event_source_mapping(FunctionName=fn, EventSourceArn=arn, BatchSize=10)
    try:
        assert m["EventSourceArn"] == arn and m["State"] == "Creating"
        sent = sqs.send_message(
            QueueUrl=url, MessageBody="one", MessageGroupId="g1", MessageDeduplicationId="d1"
        )
        rec = _records(logs, fn, 1)[0]
        assert rec["messageId"] == sent["MessageId"]
        assert rec["eventSource"] == "aws:sqs" and rec["eventSourceARN"] == arn
        attrs = rec["attributes"]
        assert attrs["MessageGroupId"] == "g1"
        assert attrs["MessageDeduplicationId"] == "d1"
        assert attrs["SequenceNumber"] == sent["SequenceNumber"]
        with pytest.raises(lam.exceptions.InvalidParameterValueException):
            lam.update_event_source_mapping(UUID=m["UUID"], MaximumBatchingWindowInSeconds=3)
    finally:
        lam.delete_event_source_mapping(UUID=m["UUID"])


def _queue(sqs: Any) -> tuple[str, str]:
    url = sqs.create_queue(QueueName=_name("cq"))["QueueUrl"]
    return url, _arn(sqs, url)


def _err(exc: pytest.ExceptionInfo[ClientError]) -> tuple[int, str, str]:
    r = exc.value.response
    return r["ResponseMetadata"]["HTTPStatusCode"], r["Error"]["Code"], r["Error"]["Message"]


def test_add_and_remove_permission(sqs: Any) -> None:
    """AddPermission/RemovePermission edit the queue policy as SQS does."""
    url, arn = _queue(sqs)
    sqs.add_permission(
        QueueUrl=url, Label="one", AWSAccountIds=["111111111111"], Actions=["SendMessage"]
    )
    sqs.add_permission(
        QueueUrl=url,
        Label="two",
        AWSAccountIds=["111111111111", "222222222222"],
        Actions=["ReceiveMessage", "DeleteMessage"],
    )
    policy = json.loads(
        sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["Policy"])["Attributes"]["Policy"]
    )
    assert policy["Version"] == "2012-10-17"
    assert policy["Id"] == f"{arn}/SQSDefaultPolicy"
    assert policy["Statement"] == [
        {
            "Sid": "one",
            "Effect": "Allow",
            "Principal": {"AWS": "arn:aws:iam::111111111111:root"},
            "Action": "SQS:SendMessage",
            "Resource": arn,
        },
        {
            "Sid": "two",
            "Effect": "Allow",
            "Principal": {
                "AWS": ["arn:aws:iam::111111111111:root", "arn:aws:iam::222222222222:root"]
            },
            "Action": ["SQS:ReceiveMessage", "SQS:DeleteMessage"],
            "Resource": arn,
        },
    ]
    sqs.remove_permission(QueueUrl=url, Label="one")
    policy = json.loads(
        sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["Policy"])["Attributes"]["Policy"]
    )
    assert [s["Sid"] for s in policy["Statement"]] == ["two"]
    sqs.remove_permission(QueueUrl=url, Label="two")
    assert (
        "Policy" not in sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    )


def test_permission_errors(sqs: Any) -> None:
    url, _ = _queue(sqs)
    sqs.add_permission(QueueUrl=url, Label="t", AWSAccountIds=["111111111111"], Actions=["*"])
    cases: list[tuple[dict[str, Any], tuple[int, str, str]]] = [
        (
            {"Label": "t", "AWSAccountIds": ["111111111111"], "Actions": ["SendMessage"]},
            (400, "InvalidParameterValue", "Value t for parameter Label is invalid. Reason:"
             " Already exists."),
        ),
        (
            {"Label": "u", "AWSAccountIds": ["111111111111"], "Actions": ["RemovePermission"]},
            (400, "InvalidParameterValue", "Value SQS:RemovePermission for parameter ActionName"
             " is invalid. Reason: Only the queue owner is allowed to invoke this action."),
        ),
        (
            {"Label": "u", "AWSAccountIds": ["111111111111"], "Actions": []},
            (400, "MissingParameter", "The request must contain the parameter Actions."),
        ),
        (
            {"Label": "u", "AWSAccountIds": [], "Actions": ["SendMessage"]},
            (400, "InvalidParameterValue", "Value [] for parameter PrincipalId is invalid."
             " Reason: Unable to verify."),
        ),
        (
            {
                "Label": "u",
                "AWSAccountIds": ["111111111111"],
                "Actions": [
                    "ChangeMessageVisibility", "DeleteMessage", "GetQueueAttributes",
                    "GetQueueUrl", "ListDeadLetterSourceQueues", "PurgeQueue",
                    "ReceiveMessage", "SendMessage",
                ],
            },
            (403, "OverLimit", "8 Actions were found, maximum allowed is 7."),
        ),
    ]  # fmt: skip
    for kw, want in cases:
        with pytest.raises(ClientError) as exc:
            sqs.add_permission(QueueUrl=url, **kw)
        assert _err(exc) == want, kw
    with pytest.raises(ClientError) as exc:
        sqs.remove_permission(QueueUrl=url, Label="nope")
    assert _err(exc) == (
        400,
        "InvalidParameterValue",
        "Value nope for parameter Label is invalid. Reason: can't find label on existing policy.",
    )


def test_tag_errors(sqs: Any) -> None:
    url, _ = _queue(sqs)
    sqs.tag_queue(QueueUrl=url, Tags={"k": "v"})
    with pytest.raises(ClientError) as exc:
        sqs.tag_queue(QueueUrl=url, Tags={})
    assert _err(exc) == (400, "MissingParameter", "The request must contain the parameter Tags.")
    name = url.rsplit("/", 1)[1]
    with pytest.raises(ClientError) as exc:
        sqs.tag_queue(QueueUrl=url, Tags={f"k{i}": "v" for i in range(50)})
    assert _err(exc) == (400, "InvalidParameterValue", f"Too many tags added for queue {name}.")
    assert sqs.list_queue_tags(QueueUrl=url)["Tags"] == {"k": "v"}
    with pytest.raises(ClientError) as exc:
        sqs.untag_queue(QueueUrl=url, TagKeys=[])
    assert _err(exc) == (
        400,
        "InvalidParameterValue",
        "Tag keys must be between 1 and 128 characters in length.",
    )


def test_redrive_policy_target_must_exist_and_match_type(sqs: Any) -> None:
    _, std_arn = _queue(sqs)
    _, fifo_arn = _fifo(sqs)
    missing = std_arn + "-missing"
    for name, attrs, dlq, reason in (
        (_name("r"), {}, missing, "Dead letter target does not exist."),
        (_name("r"), {}, fifo_arn, "Dead-letter queue must be same type of queue as the source.."),
        (
            _name("r") + ".fifo",
            {"FifoQueue": "true"},
            std_arn,
            "Dead-letter queue must be same type of queue as the source..",
        ),
    ):
        policy = json.dumps({"deadLetterTargetArn": dlq, "maxReceiveCount": 3})
        with pytest.raises(ClientError) as exc:
            sqs.create_queue(QueueName=name, Attributes={**attrs, "RedrivePolicy": policy})
        assert _err(exc) == (
            400,
            "InvalidParameterValue",
            f"Value {policy} for parameter RedrivePolicy is invalid. Reason: {reason}",
        )
    url, _ = _queue(sqs)
    policy = json.dumps({"deadLetterTargetArn": missing, "maxReceiveCount": 3})
    with pytest.raises(ClientError) as exc:
        sqs.set_queue_attributes(QueueUrl=url, Attributes={"RedrivePolicy": policy})
    assert _err(exc)[1] == "InvalidParameterValue"


def test_fifo_attribute_defaults(sqs: Any) -> None:
    """A FIFO queue reports its FIFO attributes' defaults, and CreateQueue compares them."""
    name = _name("fd") + ".fifo"
    url = sqs.create_queue(QueueName=name, Attributes={"FifoQueue": "true"})["QueueUrl"]
    attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    assert attrs["FifoQueue"] == "true"
    assert attrs["ContentBasedDeduplication"] == "false"
    assert attrs["DeduplicationScope"] == "queue"
    assert attrs["FifoThroughputLimit"] == "perQueue"
    again = sqs.create_queue(
        QueueName=name,
        Attributes={
            "FifoQueue": "true",
            "ContentBasedDeduplication": "false",
            "DeduplicationScope": "queue",
        },
    )
    assert again["QueueUrl"] == url
    with pytest.raises(sqs.exceptions.QueueNameExists):
        sqs.create_queue(
            QueueName=name, Attributes={"FifoQueue": "true", "ContentBasedDeduplication": "true"}
        )


def _dead_lettered(sqs: Any, n: int) -> tuple[str, str, str, str]:
    """(source url, source arn, DLQ url, DLQ arn) with ``n`` messages in the DLQ."""
    dlq_url, dlq_arn = _queue(sqs)
    src_url = sqs.create_queue(
        QueueName=_name("src"),
        Attributes={
            "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 1})
        },
    )["QueueUrl"]
    for i in range(0, n, 10):
        sqs.send_message_batch(
            QueueUrl=src_url,
            Entries=[{"Id": str(j), "MessageBody": f"m{j}"} for j in range(i, min(n, i + 10))],
        )
    got = 0
    while got < n:
        got += len(
            sqs.receive_message(QueueUrl=src_url, MaxNumberOfMessages=10, VisibilityTimeout=0).get(
                "Messages", []
            )
        )
    assert "Messages" not in sqs.receive_message(QueueUrl=src_url, MaxNumberOfMessages=10)
    assert _count(sqs, dlq_url) == n
    return src_url, _arn(sqs, src_url), dlq_url, dlq_arn


def _count(sqs: Any, url: str) -> int:
    attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])
    return int(attrs["Attributes"]["ApproximateNumberOfMessages"])


def _wait_status(sqs: Any, arn: str, status: str) -> dict[str, Any]:
    deadline = time.monotonic() + 30
    while True:
        (res,) = sqs.list_message_move_tasks(SourceArn=arn)["Results"]
        if res["Status"] == status or time.monotonic() > deadline:
            return dict(res)
        time.sleep(0.2)


def test_message_move_task_back_to_source(sqs: Any) -> None:
    """StartMessageMoveTask without a destination redrives each message to its source."""
    src_url, _, dlq_url, dlq_arn = _dead_lettered(sqs, 3)
    handle = sqs.start_message_move_task(SourceArn=dlq_arn)["TaskHandle"]
    assert isinstance(handle, str) and handle
    res = _wait_status(sqs, dlq_arn, "COMPLETED")
    assert res["SourceArn"] == dlq_arn
    assert res["ApproximateNumberOfMessagesMoved"] == 3
    assert res["ApproximateNumberOfMessagesToMove"] == 3
    assert "TaskHandle" not in res and "DestinationArn" not in res
    assert isinstance(res["StartedTimestamp"], int)
    assert _count(sqs, dlq_url) == 0
    back = sqs.receive_message(
        QueueUrl=src_url, MaxNumberOfMessages=10, MessageSystemAttributeNames=["All"]
    )["Messages"]
    assert sorted(m["Body"] for m in back) == ["m0", "m1", "m2"]
    assert {m["Attributes"]["ApproximateReceiveCount"] for m in back} == {"1"}


def test_message_move_task_destination_rate_and_cancel(sqs: Any) -> None:
    _, _, _, dlq_arn = _dead_lettered(sqs, 10)
    dest_url, dest_arn = _queue(sqs)
    handle = sqs.start_message_move_task(
        SourceArn=dlq_arn, DestinationArn=dest_arn, MaxNumberOfMessagesPerSecond=1
    )["TaskHandle"]
    (running,) = sqs.list_message_move_tasks(SourceArn=dlq_arn, MaxResults=10)["Results"]
    assert running["Status"] == "RUNNING" and running["TaskHandle"] == handle
    assert running["DestinationArn"] == dest_arn
    assert running["MaxNumberOfMessagesPerSecond"] == 1
    assert running["ApproximateNumberOfMessagesToMove"] == 10
    with pytest.raises(ClientError) as exc:
        sqs.start_message_move_task(SourceArn=dlq_arn)
    assert _err(exc) == (
        400,
        "InvalidParameterValue",
        "There is already a task running. Only one active task is allowed for a source queue"
        " arn at a given time.",
    )
    moved = sqs.cancel_message_move_task(TaskHandle=handle)["ApproximateNumberOfMessagesMoved"]
    assert 0 <= moved < 10
    res = _wait_status(sqs, dlq_arn, "CANCELLED")
    assert res["ApproximateNumberOfMessagesMoved"] == moved == _count(sqs, dest_url)


def test_message_move_task_errors(sqs: Any) -> None:
    _, src_arn, _, dlq_arn = _dead_lettered(sqs, 1)
    missing = dlq_arn + "-missing"
    cases = [
        (
            {"SourceArn": src_arn},
            (400, "InvalidParameterValue", "Source queue must be configured as a Dead Letter"
             " Queue."),
        ),
        (
            {"SourceArn": missing},
            (404, "ResourceNotFoundException", "The resource that you specified for the SourceArn"
             " parameter doesn't exist."),
        ),
        (
            {"SourceArn": dlq_arn, "DestinationArn": missing},
            (404, "ResourceNotFoundException", "The resource that you specified for the"
             " DestinationArn parameter doesn't exist."),
        ),
    ]  # fmt: skip
    for kw, want in cases:
        with pytest.raises(ClientError) as exc:
            sqs.start_message_move_task(**kw)
        assert _err(exc) == want, kw
    with pytest.raises(ClientError) as exc:
        sqs.cancel_message_move_task(TaskHandle="not-a-handle")
    assert _err(exc) == (400, "InvalidParameterValue", "Value for parameter TaskHandle is invalid.")
    unknown = base64.b64encode(
        json.dumps(
            {"taskId": "00000000-0000-0000-0000-000000000000", "sourceArn": dlq_arn}
        ).encode()
    ).decode()
    with pytest.raises(ClientError) as exc:
        sqs.cancel_message_move_task(TaskHandle=unknown)
    assert _err(exc) == (404, "ResourceNotFoundException", "Task does not exist.")
    assert sqs.list_message_move_tasks(SourceArn=dlq_arn)["Results"] == []


def test_mapping_needs_visibility_timeout_not_below_function_timeout(
    sqs: Any, lam: Any, make_function: Callable[..., dict[str, Any]]
) -> None:
    url = sqs.create_queue(QueueName=_name("vt"), Attributes={"VisibilityTimeout": "10"})[
        "QueueUrl"
    ]
    arn = _arn(sqs, url)
    fn = make_function(PRINTER, Timeout=60)["FunctionName"]
    with pytest.raises(lam.exceptions.InvalidParameterValueException) as exc:
        lam.create_event_source_mapping(FunctionName=fn, EventSourceArn=arn)
    assert exc.value.response["Error"]["Message"] == (
        "Queue visibility timeout: 10 seconds is less than Function timeout: 60 seconds"
    )
    short = make_function(PRINTER, Timeout=10)["FunctionName"]
    uid = lam.create_event_source_mapping(FunctionName=short, EventSourceArn=arn)["UUID"]
    try:
        with pytest.raises(lam.exceptions.InvalidParameterValueException):
            lam.update_event_source_mapping(UUID=uid, FunctionName=fn)
    finally:
        lam.delete_event_source_mapping(UUID=uid)


def test_change_visibility_of_a_deleted_message(sqs: Any) -> None:
    """A deleted message's handle: InvalidParameterValue naming the handle (single and batch)."""
    url, _ = _queue(sqs)
    sqs.send_message(QueueUrl=url, MessageBody="x")
    handle = sqs.receive_message(QueueUrl=url)["Messages"][0]["ReceiptHandle"]
    sqs.delete_message(QueueUrl=url, ReceiptHandle=handle)
    sqs.delete_message(QueueUrl=url, ReceiptHandle=handle)  # again: no error, as SQS
    message = (
        f"Value {handle} for parameter ReceiptHandle is invalid. Reason: Message does not exist"
        " or is not available for visibility timeout change."
    )
    with pytest.raises(ClientError) as exc:
        sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=handle, VisibilityTimeout=5)
    assert _err(exc) == (400, "InvalidParameterValue", message)
    res = sqs.change_message_visibility_batch(
        QueueUrl=url, Entries=[{"Id": "a", "ReceiptHandle": handle, "VisibilityTimeout": 5}]
    )
    assert res["Successful"] == []
    assert res["Failed"] == [
        {"Id": "a", "SenderFault": True, "Code": "InvalidParameterValue", "Message": message}
    ]


def test_policy_documents_must_be_json(sqs: Any) -> None:
    url, _ = _queue(sqs)
    with pytest.raises(ClientError) as exc:
        sqs.set_queue_attributes(QueueUrl=url, Attributes={"Policy": "file://policy.json"})
    assert _err(exc) == (400, "InvalidAttributeValue", "Invalid value for the parameter Policy.")
    with pytest.raises(ClientError) as exc:
        sqs.set_queue_attributes(
            QueueUrl=url, Attributes={"RedriveAllowPolicy": '{"redrivePermission": "some"}'}
        )
    assert _err(exc)[:2] == (400, "InvalidAttributeValue")
    assert _err(exc)[2].startswith("Invalid value for the parameter RedriveAllowPolicy.")
    policy = json.dumps({"Version": "2012-10-17", "Statement": []})
    allow = json.dumps({"redrivePermission": "denyAll"})
    sqs.set_queue_attributes(
        QueueUrl=url, Attributes={"Policy": policy, "RedriveAllowPolicy": allow}
    )
    got = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["Policy", "RedriveAllowPolicy"])
    assert got["Attributes"] == {"Policy": policy, "RedriveAllowPolicy": allow}


def test_md5_of_message_system_attributes(sqs: Any) -> None:
    """SendMessage(Batch) with an AWSTraceHeader answers MD5OfMessageSystemAttributes."""
    url, _ = _queue(sqs)
    trace = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1"
    h = hashlib.md5()
    for part in (b"AWSTraceHeader", b"String"):
        h.update(struct.pack(">I", len(part)) + part)
    h.update(b"\x01" + struct.pack(">I", len(trace)) + trace.encode())
    system = {"AWSTraceHeader": {"DataType": "String", "StringValue": trace}}
    sent = sqs.send_message(QueueUrl=url, MessageBody="x", MessageSystemAttributes=system)
    assert sent["MD5OfMessageSystemAttributes"] == h.hexdigest()
    batch = sqs.send_message_batch(
        QueueUrl=url,
        Entries=[
            {"Id": "a", "MessageBody": "y", "MessageSystemAttributes": system},
            {"Id": "b", "MessageBody": "z"},
        ],
    )
    by_id = {e["Id"]: e for e in batch["Successful"]}
    assert by_id["a"]["MD5OfMessageSystemAttributes"] == h.hexdigest()
    assert "MD5OfMessageSystemAttributes" not in by_id["b"]
    assert "MD5OfMessageSystemAttributes" not in sqs.send_message(QueueUrl=url, MessageBody="w")


def test_query_protocol_permissions_and_move_tasks(server: Any, sqs: Any) -> None:
    """The older query protocol: indexed AWSAccountId/ActionName; move task result entries."""
    # test_sqs's signed form-post helper (looked up at run time: that module is not typed)
    _query = importlib.import_module("tests.integration.test_sqs")._query

    url, _ = _queue(sqs)
    status, _ = _query(
        server,
        {
            "Action": "AddPermission",
            "QueueUrl": url,
            "Label": "q",
            "AWSAccountId.1": "111111111111",
            "ActionName.1": "SendMessage",
            "ActionName.2": "ReceiveMessage",
        },
    )
    assert status == 200
    policy = json.loads(
        sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["Policy"])["Attributes"]["Policy"]
    )
    assert policy["Statement"][0]["Action"] == ["SQS:SendMessage", "SQS:ReceiveMessage"]
    _, _, _, dlq_arn = _dead_lettered(sqs, 1)
    sqs.start_message_move_task(SourceArn=dlq_arn)
    _wait_status(sqs, dlq_arn, "COMPLETED")
    status, doc = _query(server, {"Action": "ListMessageMoveTasks", "SourceArn": dlq_arn})
    assert status == 200
    entry = doc.find("ListMessageMoveTasksResult/ListMessageMoveTasksResultEntry")
    assert entry is not None
    assert entry.find("Status").text == "COMPLETED"
    assert entry.find("ApproximateNumberOfMessagesMoved").text == "1"


def test_queue_name_reuse_after_delete_waits_60_seconds(sqs: Any) -> None:
    name = _name("reuse")
    url = sqs.create_queue(QueueName=name)["QueueUrl"]
    sqs.delete_queue(QueueUrl=url)
    with pytest.raises(sqs.exceptions.QueueDeletedRecently) as exc:
        sqs.create_queue(QueueName=name)
    assert _err(exc) == (
        400,
        "AWS.SimpleQueueService.QueueDeletedRecently",
        "You must wait 60 seconds after deleting a queue before you can create another with the"
        " same name.",
    )


def test_dead_letter_source_queues_pages(sqs: Any) -> None:
    dlq_url, dlq_arn = _queue(sqs)
    policy = json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 2})
    urls = sorted(
        sqs.create_queue(QueueName=_name("dls"), Attributes={"RedrivePolicy": policy})["QueueUrl"]
        for _ in range(3)
    )
    first = sqs.list_dead_letter_source_queues(QueueUrl=dlq_url, MaxResults=2)
    assert first["queueUrls"] == urls[:2] and first["NextToken"]
    rest = sqs.list_dead_letter_source_queues(
        QueueUrl=dlq_url, MaxResults=2, NextToken=first["NextToken"]
    )
    assert rest["queueUrls"] == urls[2:] and "NextToken" not in rest
    pages = sqs.get_paginator("list_dead_letter_source_queues").paginate(
        QueueUrl=dlq_url, PaginationConfig={"PageSize": 1}
    )
    assert [u for page in pages for u in page["queueUrls"]] == urls
