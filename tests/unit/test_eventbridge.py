"""EventBridge schedule expressions, the scheduler's firing (with injected times, no
waiting) and the payload a target receives."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from hearth.eventbridge._deliver import Scheduler, target_payload
from hearth.eventbridge._rules import Rule
from hearth.eventbridge._schedule import InvalidSchedule, parse

NOW = datetime(2026, 11, 28, 18, 10, 30, tzinfo=UTC)


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ("rate(1 minute)", datetime(2026, 11, 28, 18, 11, 30, tzinfo=UTC)),
        ("rate(5 minutes)", datetime(2026, 11, 28, 18, 15, 30, tzinfo=UTC)),
        ("rate(1 day)", datetime(2026, 11, 29, 18, 10, 30, tzinfo=UTC)),
        ("cron(0 12 * * ? *)", datetime(2026, 11, 29, 12, 0, tzinfo=UTC)),
        ("cron(0/15 * * * ? *)", datetime(2026, 11, 28, 18, 15, tzinfo=UTC)),
        ("cron(0 8 ? * MON-FRI *)", datetime(2026, 11, 30, 8, 0, tzinfo=UTC)),
        ("cron(30 9 ? * 1 *)", datetime(2026, 11, 29, 9, 30, tzinfo=UTC)),  # 1 = Sunday
        ("cron(0 0 L * ? *)", datetime(2026, 11, 30, 0, 0, tzinfo=UTC)),
        ("cron(0 0 1 JAN ? 2027)", datetime(2027, 1, 1, 0, 0, tzinfo=UTC)),
    ],
)
def test_next_time(expr: str, expected: datetime) -> None:
    assert parse(expr).next_after(NOW, NOW) == expected


@pytest.mark.parametrize(
    "expr",
    [
        "rate(1 minutes)",
        "rate(2 minute)",
        "rate(0 minutes)",
        "rate(5 weeks)",
        "cron(* * * * * *)",  # neither day field is '?'
        "cron(0 12 ? * ? *)",  # both are
        "cron(0 12 * *)",
        "cron(60 * * * ? *)",
        "cron(0 12 ? * 6L *)",  # L / W / # in day-of-week: not implemented, refused
        "every minute",
    ],
)
def test_invalid_expressions(expr: str) -> None:
    with pytest.raises(InvalidSchedule):
        parse(expr)


class _Recorder:
    def __init__(self) -> None:
        self.events: list[tuple[str, dict[str, Any]]] = []

    async def deliver(self, rule: Rule, event: dict[str, Any]) -> None:
        self.events.append((rule.name, event))


class _Rules:
    def __init__(self, *rules: Rule) -> None:
        self.rules = list(rules)

    def all(self) -> list[Rule]:
        return self.rules


def test_scheduler_fires_a_rate_rule_once_per_period() -> None:
    created = NOW.timestamp()
    rule = Rule("000000000000", "us-east-1", "every-minute", schedule="rate(1 minute)")
    rule.created = created
    off = Rule("000000000000", "us-east-1", "off", schedule="rate(1 minute)", state="DISABLED")
    off.created = created
    rec = _Recorder()
    sched = Scheduler(_Rules(rule, off), rec)  # type: ignore[arg-type]

    async def run() -> None:
        await sched.tick(NOW + timedelta(seconds=30))  # not due yet
        assert rec.events == []
        await sched.tick(NOW + timedelta(seconds=61))
        await sched.tick(NOW + timedelta(seconds=62))  # same period: no second firing
        assert len(rec.events) == 1
        await sched.tick(NOW + timedelta(seconds=121))
        assert len(rec.events) == 2

    asyncio.run(run())
    name, event = rec.events[0]
    assert name == "every-minute"
    assert event["detail-type"] == "Scheduled Event"
    assert event["source"] == "aws.events"
    assert event["resources"] == ["arn:aws:events:us-east-1:000000000000:rule/every-minute"]
    assert event["time"] == "2026-11-28T18:11:30Z"
    assert event["detail"] == {}
    assert {"version", "id", "account", "region"} <= set(event)


def test_target_payloads() -> None:
    event = {"source": "a", "detail": {"n": 1, "who": "x"}}
    assert target_payload({"Input": '{"c": 1}'}, event) == '{"c": 1}'
    assert target_payload({"InputPath": "$.detail"}, event) == '{"n":1,"who":"x"}'
    assert target_payload({}, event) == '{"source":"a","detail":{"n":1,"who":"x"}}'
    transformer = {
        "InputPathsMap": {"n": "$.detail.n", "who": "$.detail.who"},
        "InputTemplate": '{"count": <n>, "name": "<who>", "text": "hi <who>"}',
    }
    assert target_payload({"InputTransformer": transformer}, event) == (
        '{"count": 1, "name": "x", "text": "hi x"}'
    )


def test_event_pattern_wildcard_and_or() -> None:
    from hearth.esm._filter import parse_filters, pattern_matches, valid_pattern

    pattern = {
        "$or": [{"source": ["shop"]}, {"detail": {"n": [{"numeric": [">", 5]}]}}],
        "detail-type": [{"wildcard": "Order *"}],
    }
    assert valid_pattern(pattern)
    assert pattern_matches(
        pattern, {"source": "x", "detail-type": "Order Placed", "detail": {"n": 6}}
    )
    assert pattern_matches(pattern, {"source": "shop", "detail-type": "Order X", "detail": {}})
    assert not pattern_matches(
        pattern, {"source": "x", "detail-type": "Order Y", "detail": {"n": 1}}
    )
    assert not pattern_matches(pattern, {"source": "shop", "detail-type": "Refund", "detail": {}})
    assert pattern_matches({"key": [{"wildcard": "a\\*b"}]}, {"key": "a*b"})
    assert not pattern_matches({"key": [{"wildcard": "a\\*b"}]}, {"key": "axb"})
    assert not valid_pattern({"$or": [{"a": ["x"]}]})  # $or needs two alternatives
    # Lambda's FilterCriteria language stays as it was: no wildcard there.
    with pytest.raises(Exception, match="Invalid filter pattern"):
        parse_filters({"Filters": [{"Pattern": '{"body": {"k": [{"wildcard": "a*"}]}}'}]})
