"""Put/Update/Get/Delete/ListFunctionEventInvokeConfigs (REST-JSON, ``/2019-09-25/``)."""

from __future__ import annotations

import re
from dataclasses import replace
from typing import Any
from urllib.parse import parse_qsl

from hearth.api.names import merge_qualifier, parse_function_name, path_param
from hearth.api.types import Principal, Request, Response
from hearth.api.wire import check_int, json_response, parse_json_body
from hearth.errors import InvalidParameterValue, ResourceNotFound
from hearth.events._config import EventInvokeConfig, EventInvokeConfigs
from hearth.invoke.router import Router
from hearth.queues import parse_queue_arn
from hearth.types import LATEST, FunctionConfig, function_arn

_FN = r"/2019-09-25/functions/(?P<fn>[^/]+)/event-invoke-config"
_FUNCTION_ARN = re.compile(
    r"arn:aws[a-zA-Z-]*:lambda:[a-z0-9-]+:\d{12}:function:[a-zA-Z0-9-_]+(:(\$LATEST|[a-zA-Z0-9-_]+))?"
)


class EventInvokeConfigApi:
    def __init__(self, configs: EventInvokeConfigs, router: Router) -> None:
        self._configs = configs
        self._router = router

    def register(self, add_route: Any) -> None:
        add_route("PUT", _FN + r"/?", self._put)
        add_route("POST", _FN + r"/?", self._update)
        add_route("GET", _FN + r"/?", self._get)
        add_route("DELETE", _FN + r"/?", self._delete)
        add_route("GET", _FN + r"/list/?", self._list)

    async def _target(
        self, p: Principal, req: Request, m: re.Match[str]
    ) -> tuple[FunctionConfig, str, str]:
        """(function snapshot, qualifier, qualified ARN) named by the path and query."""
        ref = parse_function_name(path_param(m.group("fn")), p.account_id, region=p.region)
        query = dict(parse_qsl(req.query, keep_blank_values=True))
        qualifier = merge_qualifier(ref, query.get("Qualifier")) or LATEST
        cfg = await self._router.resolve(p.account_id, p.region, ref.name, qualifier)
        return cfg, qualifier, f"{function_arn(p.region, p.account_id, ref.name)}:{qualifier}"

    def _parse(
        self, body: dict[str, Any], base: EventInvokeConfig, self_arn: str
    ) -> EventInvokeConfig:
        cfg = base
        if body.get("MaximumRetryAttempts") is not None:
            cfg = replace(
                cfg,
                max_retries=check_int(
                    body["MaximumRetryAttempts"], "maximumRetryAttempts", lo=0, hi=2
                ),
            )
        if body.get("MaximumEventAgeInSeconds") is not None:
            cfg = replace(
                cfg,
                max_age=check_int(
                    body["MaximumEventAgeInSeconds"], "maximumEventAgeInSeconds", lo=60, hi=21600
                ),
            )
        dest = body.get("DestinationConfig")
        if dest is not None:
            if not isinstance(dest, dict):
                raise InvalidParameterValue("DestinationConfig must be an object.")
            for key, attr in (("OnSuccess", "on_success"), ("OnFailure", "on_failure")):
                if key in dest:
                    arn = (dest[key] or {}).get("Destination") or ""
                    _check_destination(str(arn), self_arn)
                    if attr == "on_success":
                        cfg = replace(cfg, on_success=str(arn))
                    else:
                        cfg = replace(cfg, on_failure=str(arn))
        return cfg

    async def _put(self, p: Principal, req: Request, m: re.Match[str]) -> Response:
        fn, qualifier, arn = await self._target(p, req, m)
        body = parse_json_body(req.body)
        _one_setting(body)
        new = self._parse(body, EventInvokeConfig(), fn.arn)
        saved = await self._configs.put(p.account_id, fn.name, qualifier, new)
        return json_response(200, saved.wire(arn))

    async def _update(self, p: Principal, req: Request, m: re.Match[str]) -> Response:
        fn, qualifier, arn = await self._target(p, req, m)
        current = self._configs.get(p.account_id, fn.name, qualifier)
        if current is None:
            raise ResourceNotFound(f"The function {arn} doesn't have an EventInvokeConfig")
        body = parse_json_body(req.body)
        _one_setting(body)
        new = self._parse(body, current, fn.arn)
        saved = await self._configs.put(p.account_id, fn.name, qualifier, new)
        return json_response(200, saved.wire(arn))

    async def _get(self, p: Principal, req: Request, m: re.Match[str]) -> Response:
        fn, qualifier, arn = await self._target(p, req, m)
        current = self._configs.get(p.account_id, fn.name, qualifier)
        if current is None:
            raise ResourceNotFound(f"The function {arn} doesn't have an EventInvokeConfig")
        return json_response(200, current.wire(arn))

    async def _delete(self, p: Principal, req: Request, m: re.Match[str]) -> Response:
        fn, qualifier, arn = await self._target(p, req, m)
        if self._configs.get(p.account_id, fn.name, qualifier) is None:
            raise ResourceNotFound(f"The function {arn} doesn't have an EventInvokeConfig")
        await self._configs.delete(p.account_id, fn.name, qualifier)
        return Response(204, [("x-amzn-RequestId", _rid())], b"")

    async def _list(self, p: Principal, req: Request, m: re.Match[str]) -> Response:
        ref = parse_function_name(path_param(m.group("fn")), p.account_id, region=p.region)
        if ref.qualifier:
            raise InvalidParameterValue(
                "ListFunctionEventInvokeConfigs does not accept a qualified function name."
            )
        fn = await self._router.resolve(p.account_id, p.region, ref.name, None)
        query = dict(parse_qsl(req.query, keep_blank_values=True))
        max_items = 50
        if "MaxItems" in query:
            try:
                max_items = int(query["MaxItems"])
            except ValueError:
                raise InvalidParameterValue("MaxItems must be an integer") from None
            check_int(max_items, "maxItems", lo=1, hi=50)
        marker = query.get("Marker", "")
        items = [(q, c) for q, c in self._configs.list(p.account_id, fn.name) if q > marker]
        page = items[:max_items]
        doc: dict[str, Any] = {
            "FunctionEventInvokeConfigs": [c.wire(f"{fn.arn}:{q}") for q, c in page]
        }
        if len(items) > max_items:
            doc["NextMarker"] = page[-1][0]
        return json_response(200, doc)


_SNS_TOPIC = re.compile(r"arn:aws[a-zA-Z-]*:sns:[a-z0-9-]+:\d{12}:[A-Za-z0-9_-]{1,256}")
_DEFAULT_BUS = re.compile(r"arn:aws[a-zA-Z-]*:events:[a-z0-9-]+:\d{12}:event-bus/default")


def _one_setting(body: dict[str, Any]) -> None:
    """Put/UpdateFunctionEventInvokeConfig with none of its three settings: AWS's 400
    (LocalStack's AWS-validated message)."""
    if all(
        body.get(k) is None
        for k in ("MaximumRetryAttempts", "MaximumEventAgeInSeconds", "DestinationConfig")
    ):
        raise InvalidParameterValue(
            "You must specify at least one of error handling or destination setting."
        )


def _check_destination(arn: str, self_arn: str) -> None:
    """Function, Hearth queue, SNS topic and default-EventBridge-bus destinations are
    supported; S3 and custom event buses are not."""
    if arn == "":
        return
    if _FUNCTION_ARN.fullmatch(arn):
        if arn.split(":")[6] == self_arn.split(":")[6]:
            raise InvalidParameterValue(
                "You can't specify the function as a destination for itself."
            )
        return
    if parse_queue_arn(arn) is not None and not arn.endswith(".fifo"):
        return
    if _SNS_TOPIC.fullmatch(arn) or _DEFAULT_BUS.fullmatch(arn):
        return
    if arn.startswith(("arn:aws:events:", "arn:aws:s3:")):
        raise InvalidParameterValue(
            f"The destination ARN {arn} is not supported by Hearth: use a Lambda function,"
            " an SQS queue or an SNS topic of this server, or its default event bus."
        )
    raise InvalidParameterValue(f"The destination ARN {arn} is invalid.")


def _rid() -> str:
    import uuid

    return str(uuid.uuid4())
