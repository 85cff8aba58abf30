"""The EventBridge API subset (JSON 1.1, ``X-Amz-Target: AWSEvents.*``) on the default
event bus: rules with a schedule or an event pattern, their Lambda / SQS targets,
PutEvents and TestEventPattern.

Error policy (botocore's ``events`` model, AWS's messages): a member outside the model
is ``ValidationException``; an unknown rule is ``ResourceNotFoundException`` ``Rule <name>
does not exist on EventBus default.``; a bad pattern is ``InvalidEventPatternException``;
more than 5 targets on a rule is ``LimitExceededException``; a bus other than
``default`` is ``ResourceNotFoundException`` (Hearth has the default bus only). All are
HTTP 400, as EventBridge answers.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from hearth.api.types import Principal, Request, Response
from hearth.api.wire import json11_error, json_response
from hearth.errors import AwsError
from hearth.esm._filter import pattern_matches, valid_pattern
from hearth.eventbridge._deliver import Deliverer, event_time
from hearth.eventbridge._rules import DEFAULT_BUS, Rule, RuleStore
from hearth.eventbridge._schedule import InvalidSchedule, parse

TARGET = "AWSEvents."
NAME_PATTERN = r"[\.\-_A-Za-z0-9]+"
_NAME = re.compile(NAME_PATTERN)
BUS_PATTERN = (
    r"(arn:aws[\w-]*:events:[a-z]+-[a-z]+-[\w-]+:[0-9]{12}:event-bus\/)?[/\.\-_A-Za-z0-9]+"
)
_BUS = re.compile(BUS_PATTERN)
MAX_TARGETS = 5
#: the Target members Hearth acts on and echoes back
_TARGET_MEMBERS = ("Id", "Arn", "RoleArn", "Input", "InputPath", "InputTransformer")
_TARGET_MEMBERS_EXTRA = ("SqsParameters", "RetryPolicy", "DeadLetterConfig")

Op = Callable[[Principal, dict[str, Any]], Awaitable[dict[str, Any]]]


class EventsError(AwsError):
    status = 400


def _validation(message: str) -> EventsError:
    return EventsError(message, code="ValidationException")


def _constraint(value: object, member: str, constraint: str) -> EventsError:
    """AWS's one-constraint message; an absent member (``None``) is AWS's ``Value null ...
    Member must not be null`` whatever the constraint it would have broken."""
    if value is None:
        return _validation(
            f"1 validation error detected: Value null at '{member}' failed to satisfy"
            " constraint: Member must not be null"
        )
    return _validation(
        f"1 validation error detected: Value '{value}' at '{member}' failed to satisfy"
        f" constraint: Member must {constraint}"
    )


def _string(
    body: dict[str, Any], key: str, member: str, *, max_len: int, required: bool = False
) -> str:
    value = body.get(key)
    if value is None:
        if required:
            raise _validation(
                f"1 validation error detected: Value null at '{member}' failed to satisfy"
                " constraint: Member must not be null"
            )
        return ""
    if not isinstance(value, str):
        raise EventsError(
            f"Start of structure or map found where not expected ({key}).",
            code="SerializationException",
        )
    if len(value) > max_len:
        raise _constraint(value, member, f"have length less than or equal to {max_len}")
    return value


def _name(body: dict[str, Any], key: str, member: str) -> str:
    value = _string(body, key, member, max_len=64, required=True)
    if not value:
        raise _constraint(value, member, "have length greater than or equal to 1")
    if _NAME.fullmatch(value) is None:
        raise _constraint(value, member, f"satisfy regular expression pattern: {NAME_PATTERN}")
    return value


def _check_bus(body: dict[str, Any]) -> None:
    """The model's EventBusNameOrArn first (a ValidationException), then only the default
    bus exists here."""
    bus = body.get("EventBusName")
    if isinstance(bus, str):
        if not bus:
            raise _constraint(bus, "eventBusName", "have length greater than or equal to 1")
        if len(bus) > 1600:
            raise _constraint(bus, "eventBusName", "have length less than or equal to 1600")
        if _BUS.fullmatch(bus) is None:
            raise _constraint(
                bus, "eventBusName", f"satisfy regular expression pattern: {BUS_PATTERN}"
            )
    if (
        bus is None
        or bus == DEFAULT_BUS
        or (isinstance(bus, str) and bus.endswith(":event-bus/default"))
    ):
        return
    raise EventsError(f"Event bus {bus} does not exist.", code="ResourceNotFoundException")


def _pattern(text: str) -> dict[str, Any]:
    try:
        pattern: dict[str, Any] = json.loads(text)
    except ValueError:
        raise EventsError(
            "Event pattern is not valid. Reason: Filter is not valid JSON",
            code="InvalidEventPatternException",
        ) from None
    if not valid_pattern(pattern):
        raise EventsError(
            "Event pattern is not valid. Reason: a pattern is a non-empty JSON object whose"
            " leaves are non-empty arrays of values or matchers",
            code="InvalidEventPatternException",
        )
    return pattern


def _tags(raw: Any, *, required: bool = False) -> dict[str, str]:
    """``[{"Key", "Value"}, ...]`` as a dict (keys 1 to 128, values up to 256 characters)."""
    if raw is None and not required:
        return {}
    if not isinstance(raw, list):
        raise _validation("Tags must be a list of Key/Value pairs.")
    out: dict[str, str] = {}
    for tag in raw:
        key = tag.get("Key") if isinstance(tag, dict) else None
        value = tag.get("Value") if isinstance(tag, dict) else None
        if not isinstance(key, str) or not 1 <= len(key) <= 128:
            raise _constraint(key, "tags.member.key", "have length between 1 and 128")
        if not isinstance(value, str) or len(value) > 256:
            raise _constraint(value, "tags.member.value", "have length less than or equal to 256")
        out[key] = value
    return out


def _page(
    items: list[Any], body: dict[str, Any], default: int = 100
) -> tuple[list[Any], str | None]:
    limit = body.get("Limit", default)
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= 100:
        raise _constraint(limit, "limit", "have value between 1 and 100")
    token = body.get("NextToken")
    start = 0
    if token is not None:
        try:
            start = int(str(token))
        except ValueError:
            raise _validation("The nextToken provided is invalid.") from None
    end = start + limit
    return items[start:end], (str(end) if end < len(items) else None)


class EventBridgeService:
    def __init__(self, rules: RuleStore, deliverer: Deliverer) -> None:
        self.rules = rules
        self.deliverer = deliverer
        self.operations: dict[str, Op] = {
            "PutRule": self._put_rule,
            "DescribeRule": self._describe_rule,
            "ListRules": self._list_rules,
            "DeleteRule": self._delete_rule,
            "EnableRule": self._enable_rule,
            "DisableRule": self._disable_rule,
            "PutTargets": self._put_targets,
            "RemoveTargets": self._remove_targets,
            "ListTargetsByRule": self._list_targets,
            "ListRuleNamesByTarget": self._rule_names_by_target,
            "PutEvents": self._put_events,
            "TestEventPattern": self._test_pattern,
            "TagResource": self._tag,
            "UntagResource": self._untag,
            "ListTagsForResource": self._list_tags,
            "DescribeEventBus": self._describe_bus,
            "ListEventBuses": self._list_buses,
        }

    # -- Service protocol -------------------------------------------------------------
    def claims(self, req: Request) -> bool:
        return req.headers.get("x-amz-target", "").startswith(TARGET)

    async def __call__(self, principal: Principal, req: Request) -> Response:
        name = req.headers.get("x-amz-target", "")[len(TARGET) :]
        op = self.operations.get(name)
        if op is None:
            raise EventsError(
                f"Operation {name} is not supported by Hearth's EventBridge.",
                code="UnknownOperationException",
            )
        try:
            body = json.loads(req.body) if req.body.strip() else {}
        except (ValueError, UnicodeDecodeError):
            raise EventsError(
                "Could not parse the request body.", code="SerializationException"
            ) from None
        if not isinstance(body, dict):
            raise EventsError(
                "The request body must be a JSON object.", code="SerializationException"
            )
        resp = json_response(200, await op(principal, body))
        resp.headers[0] = ("Content-Type", "application/x-amz-json-1.1")
        return resp

    def error(self, err: AwsError) -> Response:
        return json11_error(err)

    # -- helpers ----------------------------------------------------------------------
    def _rule(self, p: Principal, body: dict[str, Any], key: str = "Name") -> Rule:
        name = _name(body, key, key[0].lower() + key[1:])
        _check_bus(body)
        rule = self.rules.get(p.account_id, p.region, name)
        if rule is None:
            raise EventsError(
                f"Rule {name} does not exist on EventBus {DEFAULT_BUS}.",
                code="ResourceNotFoundException",
            )
        return rule

    # -- rules ------------------------------------------------------------------------
    async def _put_rule(self, p: Principal, body: dict[str, Any]) -> dict[str, Any]:
        name = _name(body, "Name", "name")
        _check_bus(body)
        schedule = _string(body, "ScheduleExpression", "scheduleExpression", max_len=256)
        pattern = _string(body, "EventPattern", "eventPattern", max_len=4096)
        state = body.get("State", "ENABLED")
        if state not in ("ENABLED", "DISABLED"):
            raise _constraint(
                state,
                "state",
                "satisfy enum value set: [ENABLED, DISABLED,"
                " ENABLED_WITH_ALL_CLOUDTRAIL_MANAGEMENT_EVENTS]",
            )
        if not schedule and not pattern:
            raise _validation("Parameter(s) EventPattern or ScheduleExpression must be specified.")
        if schedule:
            try:
                parse(schedule)
            except InvalidSchedule:
                raise _validation("Parameter ScheduleExpression is not valid.") from None
        if pattern:
            _pattern(pattern)
        old = self.rules.get(p.account_id, p.region, name)
        rule = Rule(
            p.account_id,
            p.region,
            name,
            state=state,
            schedule=schedule,
            pattern=pattern,
            description=_string(body, "Description", "description", max_len=512),
            role_arn=_string(body, "RoleArn", "roleArn", max_len=1600),
            created=old.created if old and old.schedule == schedule else time.time(),
            targets=old.targets if old else {},
            tags={**(old.tags if old else {}), **_tags(body.get("Tags"))},
        )
        await self.rules.put(rule)
        return {"RuleArn": rule.arn}

    async def _describe_rule(self, p: Principal, body: dict[str, Any]) -> dict[str, Any]:
        rule = self._rule(p, body)
        return {**rule.wire(), "CreatedBy": p.account_id}

    async def _list_rules(self, p: Principal, body: dict[str, Any]) -> dict[str, Any]:
        _check_bus(body)
        prefix = _name(body, "NamePrefix", "namePrefix") if "NamePrefix" in body else ""
        rules = [
            r.wire() for r in self.rules.of(p.account_id, p.region) if r.name.startswith(prefix)
        ]
        page, token = _page(rules, body)
        return {"Rules": page, **({"NextToken": token} if token else {})}

    async def _delete_rule(self, p: Principal, body: dict[str, Any]) -> dict[str, Any]:
        name = _name(body, "Name", "name")
        _check_bus(body)
        rule = self.rules.get(p.account_id, p.region, name)
        if rule is None:
            return {}  # deleting an absent rule succeeds, as on EventBridge
        if rule.targets:
            raise _validation("Rule can't be deleted since it has targets.")
        await self.rules.delete(rule)
        return {}

    async def _set_state(self, p: Principal, body: dict[str, Any], state: str) -> dict[str, Any]:
        rule = self._rule(p, body)
        rule.state = state
        await self.rules.put(rule)
        return {}

    async def _enable_rule(self, p: Principal, body: dict[str, Any]) -> dict[str, Any]:
        return await self._set_state(p, body, "ENABLED")

    async def _disable_rule(self, p: Principal, body: dict[str, Any]) -> dict[str, Any]:
        return await self._set_state(p, body, "DISABLED")

    # -- targets ----------------------------------------------------------------------
    async def _put_targets(self, p: Principal, body: dict[str, Any]) -> dict[str, Any]:
        rule = self._rule(p, body, "Rule")
        targets = body.get("Targets")
        if not isinstance(targets, list) or not targets:
            raise _constraint(targets, "targets", "have length greater than or equal to 1")
        if len(targets) > 100:
            raise _constraint("[...]", "targets", "have length less than or equal to 100")
        given: dict[str, dict[str, Any]] = {}
        for t in targets:
            if not isinstance(t, dict):
                raise _validation("Each target must be an object.")
            tid = _name(t, "Id", "targets.member.id")
            arn = _string(t, "Arn", "targets.member.arn", max_len=1600, required=True)
            kind = arn.split(":")[2] if arn.count(":") >= 5 else ""
            if kind not in ("lambda", "sqs"):
                raise _validation(
                    f"Target {tid}: Hearth delivers to Lambda functions and SQS queues only,"
                    f" not to {arn}."
                )
            inputs = [k for k in ("Input", "InputPath", "InputTransformer") if k in t]
            if len(inputs) > 1:
                raise _validation(
                    f"Only one of Input, InputPath, or InputTransformer must be provided for"
                    f" target {tid}."
                )
            if "Input" in t:
                try:
                    json.loads(str(t["Input"]))
                except ValueError:
                    raise _validation(f"Target {tid}: Input is not valid JSON.") from None
            given[tid] = {k: t[k] for k in _TARGET_MEMBERS + _TARGET_MEMBERS_EXTRA if k in t}
        merged = {**rule.targets, **given}
        if len(merged) > MAX_TARGETS:
            raise EventsError(
                "The requested resource exceeds the maximum number allowed.",
                code="LimitExceededException",
            )
        rule.targets = merged
        await self.rules.put(rule)
        return {"FailedEntryCount": 0, "FailedEntries": []}

    async def _remove_targets(self, p: Principal, body: dict[str, Any]) -> dict[str, Any]:
        rule = self._rule(p, body, "Rule")
        ids = body.get("Ids")
        if not isinstance(ids, list) or not ids:
            raise _constraint(ids, "ids", "have length greater than or equal to 1")
        rule.targets = {k: v for k, v in rule.targets.items() if k not in ids}
        await self.rules.put(rule)
        return {"FailedEntryCount": 0, "FailedEntries": []}

    async def _list_targets(self, p: Principal, body: dict[str, Any]) -> dict[str, Any]:
        rule = self._rule(p, body, "Rule")
        page, token = _page(list(rule.targets.values()), body)
        return {"Targets": page, **({"NextToken": token} if token else {})}

    async def _rule_names_by_target(self, p: Principal, body: dict[str, Any]) -> dict[str, Any]:
        arn = _string(body, "TargetArn", "targetArn", max_len=1600, required=True)
        _check_bus(body)
        names = [
            r.name
            for r in self.rules.of(p.account_id, p.region)
            if any(t.get("Arn") == arn for t in r.targets.values())
        ]
        page, token = _page(names, body)
        return {"RuleNames": page, **({"NextToken": token} if token else {})}

    # -- events -----------------------------------------------------------------------
    async def _put_events(self, p: Principal, body: dict[str, Any]) -> dict[str, Any]:
        entries = body.get("Entries")
        if not isinstance(entries, list) or not entries:
            raise _constraint(entries, "entries", "have length greater than or equal to 1")
        if len(entries) > 10:
            raise _constraint("[...]", "entries", "have length less than or equal to 10")
        results: list[dict[str, Any]] = []
        accepted: list[dict[str, Any]] = []
        for entry in entries:
            event, problem = self._event(p, entry if isinstance(entry, dict) else {})
            if problem is not None:
                results.append({"ErrorCode": problem[0], "ErrorMessage": problem[1]})
                continue
            results.append({"EventId": event["id"]})
            accepted.append(event)
        for event in accepted:
            await self.put_event(p.account_id, p.region, event)
        failed = sum(1 for r in results if "ErrorCode" in r)
        return {"FailedEntryCount": failed, "Entries": results}

    async def put_event(self, account_id: str, region: str, event: dict[str, Any]) -> None:
        """Deliver one event on the default bus to the targets of every matching rule."""
        for rule in self.rules.of(account_id, region):
            if rule.state != "ENABLED" or not rule.pattern:
                continue
            if pattern_matches(json.loads(rule.pattern), event):
                await self.deliverer.deliver(rule, event)

    async def invocation_result(
        self, bus_arn: str, record: bytes, function_arn: str, success: bool
    ) -> None:
        """An asynchronous invocation's record sent to this bus (a Lambda destination)."""
        parts = bus_arn.split(":")
        outcome = "Success" if success else "Failure"
        event = {
            "version": "0",
            "id": str(uuid.uuid4()),
            "detail-type": f"Lambda Function Invocation Result - {outcome}",
            "source": "lambda",
            "account": parts[4],
            "time": event_time(datetime.now(UTC)),
            "region": parts[3],
            "resources": [bus_arn, function_arn],
            "detail": json.loads(record),
        }
        await self.put_event(parts[4], parts[3], event)

    @staticmethod
    def _event(
        p: Principal, entry: dict[str, Any]
    ) -> tuple[dict[str, Any], tuple[str, str] | None]:
        missing = [k for k in ("Source", "DetailType", "Detail") if not entry.get(k)]
        if missing:
            return {}, (
                "InvalidArgument",
                f"Parameter(s) {', '.join(missing)} is(are) not valid. Reason: the"
                " parameter is required.",
            )
        bus = entry.get("EventBusName")
        if bus not in (None, DEFAULT_BUS) and not str(bus).endswith(":event-bus/default"):
            return {}, ("InvalidArgument", f"Event bus {bus} does not exist.")
        try:
            detail = json.loads(str(entry["Detail"]))
        except ValueError:
            detail = None
        if not isinstance(detail, dict):
            return {}, ("MalformedDetail", "Detail is malformed.")
        when = entry.get("Time")
        if isinstance(when, int | float):
            at = datetime.fromtimestamp(when, UTC)
        elif isinstance(when, str) and when:
            try:
                at = datetime.fromisoformat(when.replace("Z", "+00:00"))
            except ValueError:
                at = datetime.now(UTC)
        else:
            at = datetime.now(UTC)
        resources = entry.get("Resources") or []
        return {
            "version": "0",
            "id": str(uuid.uuid4()),
            "detail-type": str(entry["DetailType"]),
            "source": str(entry["Source"]),
            "account": p.account_id,
            "time": event_time(at),
            "region": p.region,
            "resources": [str(r) for r in resources] if isinstance(resources, list) else [],
            "detail": detail,
        }, None

    async def _test_pattern(self, p: Principal, body: dict[str, Any]) -> dict[str, Any]:
        pattern = _pattern(
            _string(body, "EventPattern", "eventPattern", max_len=4096, required=True)
        )
        try:
            event = json.loads(_string(body, "Event", "event", max_len=2**20, required=True))
        except ValueError:
            raise _validation("Parameter Event is not valid.") from None
        if not isinstance(event, dict):
            raise _validation("Parameter Event is not valid.")
        return {"Result": pattern_matches(pattern, event)}

    # -- tags of rules ----------------------------------------------------------------
    def _tagged(self, p: Principal, body: dict[str, Any]) -> Rule:
        arn = _string(body, "ResourceARN", "resourceARN", max_len=1600, required=True)
        rule = self.rules.by_arn(arn)
        if rule is None or (rule.account_id, rule.region) != (p.account_id, p.region):
            name = arn.rsplit("/", 1)[-1]
            raise EventsError(
                f"Rule {name} does not exist on EventBus {DEFAULT_BUS}.",
                code="ResourceNotFoundException",
            )
        return rule

    async def _tag(self, p: Principal, body: dict[str, Any]) -> dict[str, Any]:
        rule = self._tagged(p, body)
        rule.tags = {**rule.tags, **_tags(body.get("Tags"), required=True)}
        await self.rules.put(rule)
        return {}

    async def _untag(self, p: Principal, body: dict[str, Any]) -> dict[str, Any]:
        rule = self._tagged(p, body)
        keys = body.get("TagKeys")
        if not isinstance(keys, list):
            raise _validation("TagKeys must be a list of strings.")
        rule.tags = {k: v for k, v in rule.tags.items() if k not in keys}
        await self.rules.put(rule)
        return {}

    async def _list_tags(self, p: Principal, body: dict[str, Any]) -> dict[str, Any]:
        rule = self._tagged(p, body)
        return {"Tags": [{"Key": k, "Value": v} for k, v in sorted(rule.tags.items())]}

    # -- the default bus --------------------------------------------------------------
    @staticmethod
    def _bus(p: Principal) -> dict[str, Any]:
        return {
            "Name": DEFAULT_BUS,
            "Arn": f"arn:aws:events:{p.region}:{p.account_id}:event-bus/{DEFAULT_BUS}",
        }

    async def _describe_bus(self, p: Principal, body: dict[str, Any]) -> dict[str, Any]:
        name = body.get("Name")
        if name not in (None, DEFAULT_BUS) and not str(name).endswith(":event-bus/default"):
            raise EventsError(f"Event bus {name} does not exist.", code="ResourceNotFoundException")
        return self._bus(p)

    async def _list_buses(self, p: Principal, body: dict[str, Any]) -> dict[str, Any]:
        prefix = body.get("NamePrefix") or ""
        return {"EventBuses": [self._bus(p)] if DEFAULT_BUS.startswith(prefix) else []}
