"""SNS topics with SQS and Lambda subscriptions, driven with boto3's ``sns`` client (the
query protocol): fan-out, raw delivery, filter policies, and AWS's error codes for bad
input (each followed by a good request: the server keeps serving)."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.conftest import PRINTER, receive_bodies
from tests.helpers import ServerProcess


@pytest.fixture(scope="module")
def sns(server: ServerProcess) -> Any:
    return server.client("sns")


def test_fan_out_to_sqs_and_lambda(sns: Any, sqs: Any, logs: Any, make_function: Any) -> None:
    tag = uuid.uuid4().hex[:8]
    fn = make_function(PRINTER)
    env_url = sqs.create_queue(QueueName=f"sns-env-{tag}")["QueueUrl"]
    raw_url = sqs.create_queue(QueueName=f"sns-raw-{tag}")["QueueUrl"]
    topic = sns.create_topic(Name=f"orders-{tag}")["TopicArn"]
    assert topic == f"arn:aws:sns:us-east-1:000000000000:orders-{tag}"
    assert sns.create_topic(Name=f"orders-{tag}")["TopicArn"] == topic  # idempotent
    sns.subscribe(
        TopicArn=topic, Protocol="sqs", Endpoint=f"arn:aws:sqs:us-east-1:000000000000:sns-env-{tag}"
    )
    sns.subscribe(
        TopicArn=topic,
        Protocol="sqs",
        Endpoint=f"arn:aws:sqs:us-east-1:000000000000:sns-raw-{tag}",
        Attributes={"RawMessageDelivery": "true", "FilterPolicy": '{"color": ["red"]}'},
    )
    lam_sub = sns.subscribe(TopicArn=topic, Protocol="lambda", Endpoint=fn["FunctionArn"])[
        "SubscriptionArn"
    ]
    assert lam_sub.startswith(topic + ":")
    subs = sns.list_subscriptions_by_topic(TopicArn=topic)["Subscriptions"]
    assert sorted(s["Protocol"] for s in subs) == ["lambda", "sqs", "sqs"]
    attrs = sns.get_topic_attributes(TopicArn=topic)["Attributes"]
    assert (attrs["TopicArn"], attrs["SubscriptionsConfirmed"]) == (topic, "3")

    red = sns.publish(
        TopicArn=topic,
        Message="hello",
        Subject="greeting",
        MessageAttributes={"color": {"DataType": "String", "StringValue": "red"}},
    )["MessageId"]
    sns.publish(
        TopicArn=topic,
        Message="blue",
        MessageAttributes={"color": {"DataType": "String", "StringValue": "blue"}},
    )
    envelopes = [json.loads(b) for b in receive_bodies(sqs, env_url, 2)]
    first = next(e for e in envelopes if e["MessageId"] == red)
    assert first["Type"] == "Notification" and first["TopicArn"] == topic
    assert (first["Subject"], first["Message"]) == ("greeting", "hello")
    assert first["MessageAttributes"] == {"color": {"Type": "String", "Value": "red"}}
    assert first["Timestamp"].endswith("Z")
    assert receive_bodies(sqs, raw_url, 1) == ["hello"]  # raw, and the blue one filtered out
    assert receive_bodies(sqs, raw_url, 1, timeout=2) == []

    group = f"/aws/lambda/{fn['FunctionName']}"
    got: list[dict[str, Any]] = []
    deadline = time.monotonic() + 30
    while len(got) < 2 and time.monotonic() < deadline:
        time.sleep(0.5)
        if logs.describe_log_groups(logGroupNamePrefix=group)["logGroups"]:
            found = logs.filter_log_events(logGroupName=group, filterPattern="GOT")["events"]
            got = [json.loads(e["message"].split("GOT ", 1)[1]) for e in found]
    record = next(g for g in got if g["Records"][0]["Sns"]["MessageId"] == red)["Records"][0]
    assert (record["EventSource"], record["EventVersion"]) == ("aws:sns", "1.0")
    assert record["EventSubscriptionArn"] == lam_sub
    assert record["Sns"]["Message"] == "hello" and record["Sns"]["TopicArn"] == topic

    sns.unsubscribe(SubscriptionArn=lam_sub)
    assert len(sns.list_subscriptions_by_topic(TopicArn=topic)["Subscriptions"]) == 2
    sns.delete_topic(TopicArn=topic)
    sns.delete_topic(TopicArn=topic)  # absent: success, as on AWS
    with pytest.raises(sns.exceptions.NotFoundException):
        sns.get_topic_attributes(TopicArn=topic)


def test_bad_input_gets_sns_errors(sns: Any, sqs: Any) -> None:
    tag = uuid.uuid4().hex[:8]
    topic = sns.create_topic(Name=f"t-{tag}")["TopicArn"]
    absent = f"arn:aws:sns:us-east-1:000000000000:absent-{tag}"
    cases: list[tuple[Any, str, int, str]] = [
        (
            lambda: sns.publish(TopicArn=absent, Message="x"),
            "NotFound",
            404,
            "Topic does not exist",
        ),
        (
            lambda: sns.publish(TopicArn="nope", Message="x"),
            "InvalidParameter",
            400,
            "Invalid parameter: TopicArn",
        ),
        (
            lambda: sns.create_topic(Name="bad name"),
            "InvalidParameter",
            400,
            "Invalid parameter: Topic Name",
        ),
        (
            lambda: sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint="not-an-arn"),
            "InvalidParameter",
            400,
            "Invalid parameter: SQS endpoint ARN",
        ),
        (
            lambda: sns.subscribe(
                TopicArn=topic,
                Protocol="sqs",
                Endpoint="arn:aws:sqs:us-east-1:000000000000:x",
                Attributes={"FilterPolicy": "{not json"},
            ),
            "InvalidParameter",
            400,
            "Invalid parameter: FilterPolicy",
        ),
        (
            lambda: sns.unsubscribe(
                SubscriptionArn=f"{topic}:00000000-0000-0000-0000-000000000000"
            ),
            "NotFound",
            404,
            "Subscription does not exist",
        ),
        (
            lambda: sns.publish(TopicArn=topic, Message="x", MessageStructure="json"),
            "InvalidParameter",
            400,
            "Invalid parameter: Message Structure",
        ),
    ]
    for call, code, status, message in cases:
        with pytest.raises(ClientError) as exc:
            call()
        err = exc.value.response
        got = (err["Error"]["Code"], err["ResponseMetadata"]["HTTPStatusCode"])
        assert got == (code, status), (got, err["Error"]["Message"])
        assert err["Error"]["Message"].startswith(message)
    assert sns.publish(TopicArn=topic, Message="fine")["MessageId"]
    assert sqs.list_queues()  # the query-protocol SQS service is undisturbed
    sns.delete_topic(TopicArn=topic)


def test_topics_and_rules_are_private_to_an_account_and_region(tmp_path: Any) -> None:
    from tests.helpers import start_server

    srv = start_server(
        tmp_path / "data",
        ["--no-egress"],
        env={"HEARTH_ACCESS_KEYS": "ka:sa:111111111111,kb:sb:222222222222"},
    )
    try:
        a_sns = srv.client("sns", key="ka", secret="sa")
        b_sns = srv.client("sns", key="kb", secret="sb")
        a_west = srv.client("sns", key="ka", secret="sa", region_name="us-west-2")
        topic = a_sns.create_topic(Name="private")["TopicArn"]
        assert b_sns.list_topics()["Topics"] == []
        assert a_west.list_topics()["Topics"] == []
        for other in (b_sns, a_west):
            with pytest.raises(other.exceptions.NotFoundException):
                other.publish(TopicArn=topic, Message="x")
        a_events = srv.client("events", key="ka", secret="sa")
        b_events = srv.client("events", key="kb", secret="sb")
        a_events.put_rule(Name="private", ScheduleExpression="rate(1 day)")
        assert b_events.list_rules()["Rules"] == []
        with pytest.raises(b_events.exceptions.ResourceNotFoundException):
            b_events.describe_rule(Name="private")
        assert a_events.describe_rule(Name="private")["Arn"].startswith(
            "arn:aws:events:us-east-1:111111111111:rule/"
        )
    finally:
        srv.stop()
