"""EventBridge on the default bus, driven with boto3's ``events`` client: rules with event
patterns and their Lambda / SQS targets, PutEvents, and AWS's error codes for bad input
(every one followed by a good request: the server keeps serving). Scheduled firing is
tested with injected times in tests/unit/test_eventbridge.py."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.conftest import PRINTER, error_of, receive_bodies
from tests.helpers import ServerProcess


@pytest.fixture(scope="module")
def events(server: ServerProcess) -> Any:
    return server.client("events")


def test_pattern_rule_delivers_to_lambda_and_sqs(
    events: Any, sqs: Any, lam: Any, logs: Any, make_function: Any
) -> None:
    fn = make_function(PRINTER)
    tag = uuid.uuid4().hex[:8]
    full = sqs.create_queue(QueueName=f"eb-full-{tag}")["QueueUrl"]
    detail_only = sqs.create_queue(QueueName=f"eb-detail-{tag}")["QueueUrl"]
    rule = f"orders-{tag}"
    pattern = {"source": [f"shop.{tag}"], "detail": {"kind": ["order"]}}
    arn = events.put_rule(Name=rule, EventPattern=json.dumps(pattern))["RuleArn"]
    assert arn == f"arn:aws:events:us-east-1:000000000000:rule/{rule}"
    resp = events.put_targets(
        Rule=rule,
        Targets=[
            {"Id": "fn", "Arn": fn["FunctionArn"]},
            {"Id": "full", "Arn": f"arn:aws:sqs:us-east-1:000000000000:eb-full-{tag}"},
            {
                "Id": "detail",
                "Arn": f"arn:aws:sqs:us-east-1:000000000000:eb-detail-{tag}",
                "InputPath": "$.detail",
            },
        ],
    )
    assert (resp["FailedEntryCount"], resp["FailedEntries"]) == (0, [])
    described = events.describe_rule(Name=rule)
    assert described["State"] == "ENABLED" and described["EventBusName"] == "default"
    assert json.loads(described["EventPattern"]) == pattern
    assert {t["Id"] for t in events.list_targets_by_rule(Rule=rule)["Targets"]} == {
        "fn",
        "full",
        "detail",
    }

    put = events.put_events(
        Entries=[
            {"Source": f"shop.{tag}", "DetailType": "Order", "Detail": '{"kind": "order", "n": 1}'},
            {"Source": f"shop.{tag}", "DetailType": "Order", "Detail": '{"kind": "refund"}'},
            {"Source": f"shop.{tag}", "DetailType": "Order", "Detail": "not json"},
        ]
    )
    assert put["FailedEntryCount"] == 1
    assert "EventId" in put["Entries"][0] and "EventId" in put["Entries"][1]
    assert put["Entries"][2]["ErrorCode"] == "MalformedDetail"

    (body,) = receive_bodies(sqs, full, 1)
    event = json.loads(body)
    assert event["id"] == put["Entries"][0]["EventId"]
    assert (event["source"], event["detail-type"]) == (f"shop.{tag}", "Order")
    assert (event["account"], event["region"], event["version"]) == (
        "000000000000",
        "us-east-1",
        "0",
    )
    assert event["detail"] == {"kind": "order", "n": 1}
    assert event["time"].endswith("Z") and event["resources"] == []
    assert [json.loads(b) for b in receive_bodies(sqs, detail_only, 1)] == [
        {"kind": "order", "n": 1}
    ]

    deadline = time.monotonic() + 30
    got: list[str] = []
    while not got and time.monotonic() < deadline:
        time.sleep(0.5)
        group = f"/aws/lambda/{fn['FunctionName']}"
        if logs.describe_log_groups(logGroupNamePrefix=group)["logGroups"]:
            found = logs.filter_log_events(logGroupName=group, filterPattern="GOT")["events"]
            got = [e["message"] for e in found]
    assert len(got) == 1 and json.loads(got[0].split("GOT ", 1)[1])["id"] == event["id"]

    events.disable_rule(Name=rule)
    events.put_events(
        Entries=[{"Source": f"shop.{tag}", "DetailType": "Order", "Detail": '{"kind": "order"}'}]
    )
    assert events.describe_rule(Name=rule)["State"] == "DISABLED"
    assert receive_bodies(sqs, full, 1, timeout=2) == []

    events.remove_targets(Rule=rule, Ids=["fn", "full", "detail"])
    events.delete_rule(Name=rule)
    with pytest.raises(events.exceptions.ResourceNotFoundException):
        events.describe_rule(Name=rule)


def test_bad_input_gets_eventbridge_errors(events: Any) -> None:
    tag = uuid.uuid4().hex[:8]
    queue = "arn:aws:sqs:us-east-1:000000000000:nowhere"
    cases: list[tuple[Any, str, str]] = [
        (
            lambda: events.describe_rule(Name=f"absent-{tag}"),
            "ResourceNotFoundException",
            f"Rule absent-{tag} does not exist on EventBus default.",
        ),
        (
            lambda: events.put_rule(Name=f"r-{tag}"),
            "ValidationException",
            "Parameter(s) EventPattern or ScheduleExpression must be specified.",
        ),
        (
            lambda: events.put_rule(Name=f"r-{tag}", ScheduleExpression="rate(1 minutes)"),
            "ValidationException",
            "Parameter ScheduleExpression is not valid.",
        ),
        (
            lambda: events.put_rule(Name=f"r-{tag}", EventPattern="{not json"),
            "InvalidEventPatternException",
            "",
        ),
        (
            lambda: events.put_rule(Name="bad name", ScheduleExpression="rate(1 minute)"),
            "ValidationException",
            "1 validation error detected: Value 'bad name' at 'name' failed to satisfy"
            " constraint: Member must satisfy regular expression pattern: [\\.\\-_A-Za-z0-9]+",
        ),
        (
            lambda: events.put_targets(Rule=f"absent-{tag}", Targets=[{"Id": "a", "Arn": queue}]),
            "ResourceNotFoundException",
            f"Rule absent-{tag} does not exist on EventBus default.",
        ),
        (
            lambda: events.put_rule(
                Name=f"r-{tag}", ScheduleExpression="rate(1 minute)", EventBusName="custom"
            ),
            "ResourceNotFoundException",
            "Event bus custom does not exist.",
        ),
    ]
    for call, code, message in cases:
        with pytest.raises(ClientError) as exc:
            call()
        got = error_of(exc)
        assert got[:2] == (code, 400), got
        assert got[2].startswith(message), got

    rule = f"sched-{tag}"
    events.put_rule(Name=rule, ScheduleExpression="rate(5 minutes)", State="DISABLED")
    events.put_targets(Rule=rule, Targets=[{"Id": "q", "Arn": queue}])
    with pytest.raises(ClientError) as exc:
        events.delete_rule(Name=rule)
    assert error_of(exc) == (
        "ValidationException",
        400,
        "Rule can't be deleted since it has targets.",
    )
    with pytest.raises(ClientError) as exc:
        events.put_targets(Rule=rule, Targets=[{"Id": f"t{i}", "Arn": queue} for i in range(5)])
    assert error_of(exc)[:2] == ("LimitExceededException", 400)
    with pytest.raises(ClientError) as exc:
        events.put_targets(
            Rule=rule, Targets=[{"Id": "bad", "Arn": queue, "Input": "{", "InputPath": "$"}]
        )
    assert error_of(exc)[:2] == ("ValidationException", 400)
    assert events.list_rule_names_by_target(TargetArn=queue)["RuleNames"] == [rule]
    assert events.describe_rule(Name=rule)["ScheduleExpression"] == "rate(5 minutes)"
    names = [r["Name"] for r in events.list_rules(NamePrefix=f"sched-{tag}")["Rules"]]
    assert names == [rule]
    events.remove_targets(Rule=rule, Ids=["q"])
    events.delete_rule(Name=rule)
    events.delete_rule(Name=rule)  # an absent rule: success, as on EventBridge
    bus = events.describe_event_bus()
    assert bus["Arn"] == "arn:aws:events:us-east-1:000000000000:event-bus/default"


def test_test_event_pattern(events: Any) -> None:
    event = {
        "id": "1",
        "source": "a.b",
        "detail-type": "x",
        "account": "000000000000",
        "time": "2026-01-01T00:00:00Z",
        "region": "us-east-1",
        "resources": ["arn:aws:s3:::bucket"],
        "detail": {"size": 10, "name": "report.csv"},
    }
    yes = {"source": [{"prefix": "a."}], "detail": {"size": [{"numeric": [">", 5]}]}}
    no = {"detail": {"name": [{"suffix": ".txt"}]}}
    for pattern, result in ((yes, True), (no, False)):
        resp = events.test_event_pattern(EventPattern=json.dumps(pattern), Event=json.dumps(event))
        assert resp["Result"] is result


def test_rule_tags(events: Any) -> None:
    name = f"tagged-{uuid.uuid4().hex[:8]}"
    arn = events.put_rule(
        Name=name, ScheduleExpression="rate(1 day)", Tags=[{"Key": "team", "Value": "a"}]
    )["RuleArn"]
    events.tag_resource(ResourceARN=arn, Tags=[{"Key": "env", "Value": "dev"}])
    assert events.list_tags_for_resource(ResourceARN=arn)["Tags"] == [
        {"Key": "env", "Value": "dev"},
        {"Key": "team", "Value": "a"},
    ]
    events.untag_resource(ResourceARN=arn, TagKeys=["team"])
    assert events.list_tags_for_resource(ResourceARN=arn)["Tags"] == [
        {"Key": "env", "Value": "dev"}
    ]
    with pytest.raises(events.exceptions.ResourceNotFoundException):
        events.list_tags_for_resource(ResourceARN=arn + "-absent")
    events.delete_rule(Name=name)
