"""Compatibility review of queues, async invocation and event source mappings against
botocore's models and AWS's documentation (boto3 as the client, a real server)."""

from __future__ import annotations

import json
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
    fn = make_function(PRINTER)["FunctionName"]
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
        (rec,) = _records(logs, fn, 1)
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
