"""SQS through boto3 (JSON 1.0 protocol) against a real server: queues, messages, errors."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import struct
import threading
import time
from typing import Any

import pytest
from botocore.exceptions import ClientError

_n = iter(range(10_000))


def _name(prefix: str) -> str:
    return f"{prefix}-{next(_n)}-{int(time.time() * 1000) % 100000}"


@pytest.fixture(scope="module")
def sqs(server: Any) -> Any:
    return server.client("sqs")


@pytest.fixture
def queue(sqs: Any) -> Any:
    url = sqs.create_queue(QueueName=_name("q"))["QueueUrl"]
    yield url
    with contextlib.suppress(ClientError):
        sqs.delete_queue(QueueUrl=url)


def _code(exc: pytest.ExceptionInfo[ClientError]) -> str:
    return str(exc.value.response["Error"]["Code"])


def _md5_attrs(attrs: dict[str, dict[str, Any]]) -> str:
    """MD5 of message attributes as the SQS documentation specifies it (independent copy)."""
    h = hashlib.md5()
    for name in sorted(attrs):
        a = attrs[name]
        for s in (name.encode(), a["DataType"].encode()):
            h.update(struct.pack(">I", len(s)) + s)
        if "BinaryValue" in a:
            v = a["BinaryValue"]
            h.update(b"\x02" + struct.pack(">I", len(v)) + v)
        else:
            v = a["StringValue"].encode()
            h.update(b"\x01" + struct.pack(">I", len(v)) + v)
    return h.hexdigest()


def test_queue_lifecycle_urls_and_arns(sqs: Any, server: Any) -> None:
    name = _name("life")
    url = sqs.create_queue(QueueName=name, Attributes={"VisibilityTimeout": "45"})["QueueUrl"]
    assert url == f"{server.endpoint}/000000000000/{name}"
    # Idempotent with the same attributes, an error with different ones.
    assert (
        sqs.create_queue(QueueName=name, Attributes={"VisibilityTimeout": "45"})["QueueUrl"] == url
    )
    with pytest.raises(ClientError) as exc:
        sqs.create_queue(QueueName=name, Attributes={"VisibilityTimeout": "46"})
    assert _code(exc) == "QueueAlreadyExists"
    assert isinstance(exc.value, sqs.exceptions.QueueNameExists)
    assert sqs.get_queue_url(QueueName=name)["QueueUrl"] == url
    assert url in sqs.list_queues(QueueNamePrefix=name)["QueueUrls"]
    attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    assert attrs["QueueArn"] == f"arn:aws:sqs:us-east-1:000000000000:{name}"
    assert attrs["VisibilityTimeout"] == "45"
    assert attrs["DelaySeconds"] == "0"
    assert attrs["MessageRetentionPeriod"] == "345600"
    assert attrs["ReceiveMessageWaitTimeSeconds"] == "0"
    assert attrs["ApproximateNumberOfMessages"] == "0"
    assert int(attrs["CreatedTimestamp"]) <= time.time() + 1
    sqs.set_queue_attributes(QueueUrl=url, Attributes={"DelaySeconds": "2"})
    got = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["DelaySeconds"])["Attributes"]
    assert got == {"DelaySeconds": "2"}
    sqs.delete_queue(QueueUrl=url)
    with pytest.raises(ClientError) as exc:
        sqs.get_queue_url(QueueName=name)
    assert _code(exc) == "AWS.SimpleQueueService.NonExistentQueue"
    assert isinstance(exc.value, sqs.exceptions.QueueDoesNotExist)


def test_unknown_queue_errors(sqs: Any, server: Any) -> None:
    url = f"{server.endpoint}/000000000000/no-such-queue"
    for call in (
        lambda: sqs.send_message(QueueUrl=url, MessageBody="x"),
        lambda: sqs.receive_message(QueueUrl=url),
        lambda: sqs.get_queue_attributes(QueueUrl=url),
        lambda: sqs.delete_queue(QueueUrl=url),
    ):
        with pytest.raises(sqs.exceptions.QueueDoesNotExist) as exc:
            call()
        assert _code(exc) == "AWS.SimpleQueueService.NonExistentQueue"  # type: ignore[arg-type]
        assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400


def test_invalid_attributes(sqs: Any, queue: str) -> None:
    cases = [
        ({"VisibilityTimeout": "43201"}, "InvalidAttributeValue"),
        ({"DelaySeconds": "-1"}, "InvalidAttributeValue"),
        ({"MessageRetentionPeriod": "59"}, "InvalidAttributeValue"),
        ({"ReceiveMessageWaitTimeSeconds": "abc"}, "InvalidAttributeValue"),
        ({"RedrivePolicy": '{"maxReceiveCount": 2}'}, "InvalidAttributeValue"),
        ({"Bogus": "1"}, "InvalidAttributeName"),
        ({"QueueArn": "x"}, "InvalidAttributeName"),
    ]
    for attrs, code in cases:
        with pytest.raises(ClientError) as exc:
            sqs.set_queue_attributes(QueueUrl=queue, Attributes=attrs)
        assert _code(exc) == code, attrs
    with pytest.raises(ClientError) as exc:
        sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["Nope"])  # type: ignore[list-item]
    assert _code(exc) == "InvalidAttributeName"
    with pytest.raises(ClientError) as exc:
        sqs.set_queue_attributes(QueueUrl=queue, Attributes={"ContentBasedDeduplication": "true"})
    assert _code(exc) == "InvalidAttributeName"


def test_send_receive_md5s_and_attributes(sqs: Any, queue: str) -> None:
    attrs = {
        "color": {"DataType": "String", "StringValue": "blue"},
        "count": {"DataType": "Number", "StringValue": "42"},
        "blob": {"DataType": "Binary", "BinaryValue": b"\x00\x01\xff"},
        "custom": {"DataType": "String.custom", "StringValue": "ünïcode"},
    }
    body = "héllo wörld"
    sent = sqs.send_message(QueueUrl=queue, MessageBody=body, MessageAttributes=attrs)
    assert sent["MD5OfMessageBody"] == hashlib.md5(body.encode()).hexdigest()
    assert sent["MD5OfMessageAttributes"] == _md5_attrs(attrs)
    got = sqs.receive_message(
        QueueUrl=queue,
        MessageAttributeNames=["All"],
        MessageSystemAttributeNames=["All"],
        WaitTimeSeconds=1,
    )["Messages"]
    assert len(got) == 1
    m = got[0]
    assert m["MessageId"] == sent["MessageId"]
    assert m["Body"] == body
    assert m["MD5OfBody"] == sent["MD5OfMessageBody"]
    assert m["MD5OfMessageAttributes"] == sent["MD5OfMessageAttributes"]
    assert m["MessageAttributes"]["blob"]["BinaryValue"] == b"\x00\x01\xff"
    assert m["MessageAttributes"]["count"] == {"DataType": "Number", "StringValue": "42"}
    sys_attrs = m["Attributes"]
    assert sys_attrs["ApproximateReceiveCount"] == "1"
    assert sys_attrs["SenderId"] == "000000000000"
    assert abs(int(sys_attrs["SentTimestamp"]) / 1000 - time.time()) < 30
    # Only the attributes asked for.
    sqs.change_message_visibility(
        QueueUrl=queue, ReceiptHandle=m["ReceiptHandle"], VisibilityTimeout=0
    )
    again = sqs.receive_message(QueueUrl=queue, MessageAttributeNames=["col.*", "count"])[
        "Messages"
    ][0]
    assert set(again["MessageAttributes"]) == {"count"}
    assert "Attributes" not in again
    sqs.delete_message(QueueUrl=queue, ReceiptHandle=again["ReceiptHandle"])
    assert "Messages" not in sqs.receive_message(QueueUrl=queue)


def test_bad_message_input(sqs: Any, queue: str) -> None:
    with pytest.raises(ClientError) as exc:
        sqs.send_message(QueueUrl=queue, MessageBody="bad \x01 char")
    assert _code(exc) == "InvalidMessageContents"
    with pytest.raises(ClientError) as exc:
        sqs.send_message(QueueUrl=queue, MessageBody="x" * (1024 * 1024 + 1))
    assert _code(exc) == "InvalidParameterValue"
    assert "Message must be shorter than 1048576 bytes" in str(exc.value)
    with pytest.raises(ClientError) as exc:
        sqs.send_message(QueueUrl=queue, MessageBody="x", DelaySeconds=901)
    assert _code(exc) == "InvalidParameterValue"
    with pytest.raises(ClientError) as exc:
        sqs.send_message(
            QueueUrl=queue,
            MessageBody="x",
            MessageAttributes={"n": {"DataType": "Number", "StringValue": "abc"}},
        )
    assert _code(exc) == "InvalidParameterValue"
    with pytest.raises(ClientError) as exc:
        sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=11)
    assert _code(exc) == "InvalidParameterValue"
    assert "MaxNumberOfMessages" in str(exc.value)
    with pytest.raises(ClientError) as exc:
        sqs.receive_message(QueueUrl=queue, WaitTimeSeconds=21)
    assert _code(exc) == "InvalidParameterValue"


def test_visibility_timeout_and_receive_count(sqs: Any, queue: str) -> None:
    sqs.send_message(QueueUrl=queue, MessageBody="v")
    first = sqs.receive_message(QueueUrl=queue, VisibilityTimeout=2, AttributeNames=["All"])
    m1 = first["Messages"][0]
    assert "Messages" not in sqs.receive_message(QueueUrl=queue)
    attrs = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["All"])["Attributes"]
    assert attrs["ApproximateNumberOfMessagesNotVisible"] == "1"
    time.sleep(2.3)
    m2 = sqs.receive_message(QueueUrl=queue, AttributeNames=["All"])["Messages"][0]
    assert m2["MessageId"] == m1["MessageId"]
    assert m2["Attributes"]["ApproximateReceiveCount"] == "2"
    assert m2["ReceiptHandle"] != m1["ReceiptHandle"]
    # The stale handle no longer controls the message.
    with pytest.raises(ClientError) as exc:
        sqs.change_message_visibility(
            QueueUrl=queue, ReceiptHandle=m1["ReceiptHandle"], VisibilityTimeout=5
        )
    assert _code(exc) == "AWS.SimpleQueueService.MessageNotInflight"
    sqs.delete_message(QueueUrl=queue, ReceiptHandle=m1["ReceiptHandle"])  # succeeds, no-op
    sqs.delete_message(QueueUrl=queue, ReceiptHandle=m2["ReceiptHandle"])
    attrs = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["All"])["Attributes"]
    assert (
        attrs["ApproximateNumberOfMessages"]
        == attrs["ApproximateNumberOfMessagesNotVisible"]
        == "0"
    )


def test_delay_seconds(sqs: Any, queue: str) -> None:
    sqs.send_message(QueueUrl=queue, MessageBody="later", DelaySeconds=2)
    attrs = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["All"])["Attributes"]
    assert attrs["ApproximateNumberOfMessagesDelayed"] == "1"
    assert "Messages" not in sqs.receive_message(QueueUrl=queue)
    got = sqs.receive_message(QueueUrl=queue, WaitTimeSeconds=5)
    assert got["Messages"][0]["Body"] == "later"


def test_long_polling_wakes_on_send(sqs: Any, queue: str) -> None:
    result: dict[str, Any] = {}

    def poll() -> None:
        t0 = time.monotonic()
        result["resp"] = sqs.receive_message(QueueUrl=queue, WaitTimeSeconds=10)
        result["elapsed"] = time.monotonic() - t0

    t = threading.Thread(target=poll)
    t.start()
    time.sleep(1.0)
    sqs.send_message(QueueUrl=queue, MessageBody="wake")
    t.join(15)
    assert result["resp"]["Messages"][0]["Body"] == "wake"
    assert 0.9 < result["elapsed"] < 3.0
    # An empty long poll waits its full time.
    t0 = time.monotonic()
    assert "Messages" not in sqs.receive_message(QueueUrl=queue, WaitTimeSeconds=2)
    assert time.monotonic() - t0 >= 1.9


def test_batch_apis(sqs: Any, queue: str) -> None:
    entries = [{"Id": f"m{i}", "MessageBody": f"body {i}"} for i in range(3)]
    entries.append({"Id": "bad", "MessageBody": "nul \x00"})
    res = sqs.send_message_batch(QueueUrl=queue, Entries=entries)
    assert sorted(s["Id"] for s in res["Successful"]) == ["m0", "m1", "m2"]
    for s in res["Successful"]:
        body = f"body {s['Id'][1:]}"
        assert s["MD5OfMessageBody"] == hashlib.md5(body.encode()).hexdigest()
    assert res["Failed"] == [
        {
            "Id": "bad",
            "SenderFault": True,
            "Code": "InvalidMessageContents",
            "Message": res["Failed"][0]["Message"],
        }
    ]
    got = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10, WaitTimeSeconds=1)["Messages"]
    assert sorted(m["Body"] for m in got) == ["body 0", "body 1", "body 2"]
    dele = sqs.delete_message_batch(
        QueueUrl=queue,
        Entries=[{"Id": f"d{i}", "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(got)]
        + [{"Id": "junk", "ReceiptHandle": "not-a-handle"}],
    )
    assert len(dele["Successful"]) == 3
    assert dele["Failed"][0]["Id"] == "junk"
    assert dele["Failed"][0]["Code"] == "ReceiptHandleIsInvalid"
    too_many = [{"Id": f"x{i}", "MessageBody": "x"} for i in range(11)]
    with pytest.raises(ClientError) as exc:
        sqs.send_message_batch(QueueUrl=queue, Entries=too_many)
    assert _code(exc) == "AWS.SimpleQueueService.TooManyEntriesInBatchRequest"
    with pytest.raises(ClientError) as exc:
        sqs.send_message_batch(
            QueueUrl=queue,
            Entries=[{"Id": "a", "MessageBody": "1"}, {"Id": "a", "MessageBody": "2"}],
        )
    assert _code(exc) == "AWS.SimpleQueueService.BatchEntryIdsNotDistinct"
    with pytest.raises(ClientError) as exc:
        sqs.send_message_batch(QueueUrl=queue, Entries=[{"Id": "bad id!", "MessageBody": "1"}])
    assert _code(exc) == "AWS.SimpleQueueService.InvalidBatchEntryId"
    with pytest.raises(ClientError) as exc:
        sqs.delete_message_batch(QueueUrl=queue, Entries=[])
    assert _code(exc) == "AWS.SimpleQueueService.EmptyBatchRequest"
    big = [{"Id": f"b{i}", "MessageBody": "x" * 200_000} for i in range(6)]
    with pytest.raises(ClientError) as exc:
        sqs.send_message_batch(QueueUrl=queue, Entries=big)
    assert _code(exc) == "AWS.SimpleQueueService.BatchRequestTooLong"


def test_receipt_handle_from_another_queue(sqs: Any, queue: str) -> None:
    other = sqs.create_queue(QueueName=_name("other"))["QueueUrl"]
    sqs.send_message(QueueUrl=other, MessageBody="x")
    handle = sqs.receive_message(QueueUrl=other)["Messages"][0]["ReceiptHandle"]
    with pytest.raises(ClientError) as exc:
        sqs.delete_message(QueueUrl=queue, ReceiptHandle=handle)
    assert _code(exc) == "ReceiptHandleIsInvalid"
    with pytest.raises(ClientError) as exc:
        sqs.change_message_visibility(QueueUrl=queue, ReceiptHandle=handle, VisibilityTimeout=1)
    assert _code(exc) == "ReceiptHandleIsInvalid"
    sqs.delete_queue(QueueUrl=other)


def test_redrive_to_dead_letter_queue(sqs: Any) -> None:
    dlq = sqs.create_queue(QueueName=_name("dlq"))["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    policy = json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 2})
    src = sqs.create_queue(QueueName=_name("src"), Attributes={"RedrivePolicy": policy})["QueueUrl"]
    src_arn = sqs.get_queue_attributes(QueueUrl=src, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    assert sqs.list_dead_letter_source_queues(QueueUrl=dlq)["queueUrls"] == [src]
    sent = sqs.send_message(QueueUrl=src, MessageBody="poison")
    for _ in range(2):
        got = sqs.receive_message(QueueUrl=src, VisibilityTimeout=0)["Messages"]
        assert got[0]["MessageId"] == sent["MessageId"]
    # Third receive: past maxReceiveCount, the message moves to the DLQ.
    assert "Messages" not in sqs.receive_message(QueueUrl=src)
    moved = sqs.receive_message(QueueUrl=dlq, AttributeNames=["All"], WaitTimeSeconds=1)["Messages"]
    assert moved[0]["MessageId"] == sent["MessageId"]
    assert moved[0]["Body"] == "poison"
    assert moved[0]["Attributes"]["DeadLetterQueueSourceArn"] == src_arn
    sqs.delete_queue(QueueUrl=src)
    sqs.delete_queue(QueueUrl=dlq)


def test_purge(sqs: Any, queue: str) -> None:
    sqs.send_message_batch(
        QueueUrl=queue, Entries=[{"Id": str(i), "MessageBody": "p"} for i in range(5)]
    )
    sqs.purge_queue(QueueUrl=queue)
    assert "Messages" not in sqs.receive_message(QueueUrl=queue)
    with pytest.raises(ClientError) as exc:
        sqs.purge_queue(QueueUrl=queue)
    assert _code(exc) == "AWS.SimpleQueueService.PurgeQueueInProgress"


def test_messages_survive_restart(tmp_path: Any) -> None:
    from tests.helpers import start_server

    srv = start_server(tmp_path / "data", ["--no-egress"])
    try:
        sqs = srv.client("sqs")
        url = sqs.create_queue(QueueName="durable")["QueueUrl"]
        sqs.send_message(QueueUrl=url, MessageBody=base64.b64encode(b"keep").decode())
        srv.stop(9)  # SIGKILL
        srv = srv.restart()
        sqs = srv.client("sqs")
        got = sqs.receive_message(QueueUrl=url, WaitTimeSeconds=1)["Messages"]
        assert base64.b64decode(got[0]["Body"]) == b"keep"
    finally:
        srv.stop()


def test_fifo_queue_order_groups_and_deduplication(sqs: Any) -> None:
    name = _name("f") + ".fifo"
    with pytest.raises(ClientError) as exc:
        sqs.create_queue(QueueName=name)  # a .fifo name needs FifoQueue=true
    assert _code(exc) == "InvalidParameterValue"
    with pytest.raises(ClientError) as exc:
        sqs.create_queue(QueueName=_name("nf"), Attributes={"FifoQueue": "true"})
    assert _code(exc) == "InvalidParameterValue"
    url = sqs.create_queue(
        QueueName=name, Attributes={"FifoQueue": "true", "ContentBasedDeduplication": "true"}
    )["QueueUrl"]
    attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    assert attrs["FifoQueue"] == "true" and attrs["ContentBasedDeduplication"] == "true"
    sent = {}
    for body, group in (("a1", "A"), ("b1", "B"), ("a2", "A"), ("a3", "A"), ("b2", "B")):
        r = sqs.send_message(QueueUrl=url, MessageBody=body, MessageGroupId=group)
        sent[body] = r
        assert len(r["SequenceNumber"]) == 20
    seqs = [int(sent[b]["SequenceNumber"]) for b in ("a1", "b1", "a2", "a3", "b2")]
    assert seqs == sorted(seqs)
    # Same body within 5 minutes: deduplicated, the first message's id comes back.
    dup = sqs.send_message(QueueUrl=url, MessageBody="a1", MessageGroupId="A")
    assert dup["MessageId"] == sent["a1"]["MessageId"]
    assert dup["SequenceNumber"] == sent["a1"]["SequenceNumber"]
    explicit = sqs.send_message(
        QueueUrl=url, MessageBody="a1", MessageGroupId="A", MessageDeduplicationId="other"
    )
    assert explicit["MessageId"] != sent["a1"]["MessageId"]
    with pytest.raises(ClientError) as exc:
        sqs.send_message(QueueUrl=url, MessageBody="x")
    assert _code(exc) == "MissingParameter"
    with pytest.raises(ClientError) as exc:
        sqs.send_message(QueueUrl=url, MessageBody="x", MessageGroupId="A", DelaySeconds=1)
    assert _code(exc) == "InvalidParameterValue"
    # One group's next message waits while its predecessor is in flight.
    first = sqs.receive_message(QueueUrl=url, AttributeNames=["All"])["Messages"][0]
    assert first["Body"] == "a1"
    assert first["Attributes"]["MessageGroupId"] == "A"
    assert first["Attributes"]["SequenceNumber"] == sent["a1"]["SequenceNumber"]
    assert sqs.receive_message(QueueUrl=url)["Messages"][0]["Body"] == "b1"
    assert "Messages" not in sqs.receive_message(QueueUrl=url)
    sqs.delete_message(QueueUrl=url, ReceiptHandle=first["ReceiptHandle"])
    rest = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]
    assert [m["Body"] for m in rest] == ["a2", "a3", "a1"]  # B is still blocked by b1
    with pytest.raises(ClientError) as exc:
        sqs.send_message(
            QueueUrl=url, MessageBody="x", MessageGroupId="A", MessageDeduplicationId=""
        )
    assert _code(exc) in ("InvalidParameterValue", "MissingParameter")
    sqs.delete_queue(QueueUrl=url)


def _query(server: Any, params: dict[str, str], path: str = "/") -> tuple[int, Any]:
    """A query-protocol request (form-encoded, SigV4 for sqs), as pre-JSON SDKs send it."""
    import urllib.error
    import urllib.request
    import xml.etree.ElementTree as ET
    from urllib.parse import urlencode

    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    body = urlencode({"Version": "2012-11-05", **params})
    req = AWSRequest(
        method="POST",
        url=server.endpoint + path,
        data=body,
        headers={"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"},
    )
    SigV4Auth(Credentials("test", "test"), "sqs", "us-east-1").add_auth(req)
    prepared = req.prepare()
    raw = urllib.request.Request(
        prepared.url, data=body.encode(), headers=dict(prepared.headers), method="POST"
    )
    try:
        with urllib.request.urlopen(raw, timeout=30) as resp:
            status, data = resp.status, resp.read()
    except urllib.error.HTTPError as err:
        status, data = err.code, err.read()
    root = ET.fromstring(data)
    for el in root.iter():  # drop the namespace for simple lookups
        el.tag = el.tag.split("}", 1)[-1]
    return status, root


def test_query_protocol(server: Any) -> None:
    name = _name("query")
    status, doc = _query(
        server,
        {
            "Action": "CreateQueue",
            "QueueName": name,
            "Attribute.1.Name": "VisibilityTimeout",
            "Attribute.1.Value": "7",
        },
    )
    assert status == 200
    url = doc.find("CreateQueueResult/QueueUrl").text
    assert url.endswith(f"/000000000000/{name}")
    status, doc = _query(
        server,
        {
            "Action": "SendMessage",
            "QueueUrl": url,
            "MessageBody": "q body",
            "MessageAttribute.1.Name": "color",
            "MessageAttribute.1.Value.DataType": "String",
            "MessageAttribute.1.Value.StringValue": "red",
        },
    )
    assert status == 200
    res = doc.find("SendMessageResult")
    assert res.find("MD5OfMessageBody").text == hashlib.md5(b"q body").hexdigest()
    assert res.find("MD5OfMessageAttributes").text == _md5_attrs(
        {"color": {"DataType": "String", "StringValue": "red"}}
    )
    # Posted to the queue's URL path, without QueueUrl.
    path = "/000000000000/" + name
    status, doc = _query(
        server,
        {
            "Action": "ReceiveMessage",
            "AttributeName.1": "All",
            "MessageAttributeName.1": "All",
            "WaitTimeSeconds": "1",
        },
        path,
    )
    assert status == 200
    msg = doc.find("ReceiveMessageResult/Message")
    assert msg.find("Body").text == "q body"
    attrs = {a.find("Name").text: a.find("Value").text for a in msg.findall("Attribute")}
    assert attrs["ApproximateReceiveCount"] == "1"
    assert msg.find("MessageAttribute/Value/StringValue").text == "red"
    status, doc = _query(
        server,
        {
            "Action": "DeleteMessageBatch",
            "QueueUrl": url,
            "DeleteMessageBatchRequestEntry.1.Id": "one",
            "DeleteMessageBatchRequestEntry.1.ReceiptHandle": msg.find("ReceiptHandle").text,
        },
    )
    assert doc.find("DeleteMessageBatchResult/DeleteMessageBatchResultEntry/Id").text == "one"
    status, doc = _query(
        server,
        {"Action": "GetQueueAttributes", "QueueUrl": url, "AttributeName.1": "VisibilityTimeout"},
    )
    assert doc.find("GetQueueAttributesResult/Attribute/Value").text == "7"
    status, doc = _query(server, {"Action": "GetQueueUrl", "QueueName": "no-such-queue"})
    assert status == 400
    assert doc.find("Error/Code").text == "AWS.SimpleQueueService.NonExistentQueue"
    assert doc.find("Error/Type").text == "Sender"
    _query(server, {"Action": "DeleteQueue", "QueueUrl": url})
