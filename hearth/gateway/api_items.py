"""Integrations, routes and stages of HTTP APIs: validation and the create/update rules.

Each function changes an :class:`ApiDoc` in place inside the store's read-modify-write
(see :mod:`hearth.gateway.apis_store`) and raises the apigatewayv2 error for bad input.
Identifiers are random lower-case alphanumerics (10 characters for APIs, 7 for the rest),
as on AWS.
"""

from __future__ import annotations

import re
import secrets
import string
import time
from collections.abc import Callable
from typing import Any

from hearth.gateway.apis_store import ApiDoc
from hearth.gateway.errors import BadRequest, Conflict, NotFound
from hearth.gateway.routes import InvalidRouteKey, parse_route_key

_ALNUM = string.ascii_lowercase + string.digits
_LAMBDA_ARN = re.compile(
    r"arn:aws[a-zA-Z-]*:lambda:(?P<region>[a-z0-9-]+):(?P<account>\d{12}):function:"
    r"(?P<name>[a-zA-Z0-9-_]{1,64})(?::(?P<qualifier>\$LATEST|[a-zA-Z0-9-_]{1,128}))?"
)
_APIGW_URI = re.compile(
    r"arn:aws[a-zA-Z-]*:apigateway:[a-z0-9-]+:lambda:path/20\d\d-\d\d-\d\d/functions/"
    r"(?P<arn>.+)/invocations"
)
_STAGE_NAME = re.compile(r"\$default|[A-Za-z0-9_-]{1,128}")
_STAGE_VAR_NAME = re.compile(r"[A-Za-z0-9_]{1,64}")
_STAGE_VAR_VALUE = re.compile(r"[A-Za-z0-9\-._~:/?#&=,]{0,2048}")
MAX_ROUTES = 300
MAX_INTEGRATIONS = 300
MAX_STAGES = 10


def new_id(n: int) -> str:
    return "".join(secrets.choice(_ALNUM) for _ in range(n))


def iso_now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


_STAGE_VAR_REF = re.compile(r"\$\{stageVariables\.([A-Za-z0-9_]{1,64})\}")


def substitute_stage_variables(uri: str, variables: dict[str, str]) -> str:
    """``${stageVariables.<name>}`` in an integration URI replaced by the stage's values
    (HTTP APIs allow them in Lambda integration URIs); an undefined one is BadRequest."""

    def value(m: re.Match[str]) -> str:
        if m.group(1) not in variables:
            raise BadRequest(f"Stage variable {m.group(1)} is not defined")
        return variables[m.group(1)]

    return _STAGE_VAR_REF.sub(value, uri)


def parse_integration_uri(uri: str) -> tuple[str, str, str, str | None]:
    """(region, account, function, qualifier) of a Lambda integration URI, or BadRequest.

    Stage-variable references are checked with a stand-in value (``x``); the door
    substitutes the stage's own values before it parses the URI again.
    """
    uri = _STAGE_VAR_REF.sub("x", uri)
    m = _APIGW_URI.fullmatch(uri)
    arn = m.group("arn") if m else uri
    f = _LAMBDA_ARN.fullmatch(arn)
    if f is None:
        raise BadRequest(
            f"Invalid integration URI specified: {uri}. An AWS_PROXY integration of an HTTP"
            " API needs a Lambda function ARN."
        )
    return f.group("region"), f.group("account"), f.group("name"), f.group("qualifier")


def string_member(body: dict[str, Any], key: str, *, lo: int = 0, hi: int = 1024) -> str | None:
    if key not in body or body[key] is None:
        return None
    v = body[key]
    if not isinstance(v, str) or not lo <= len(v) <= hi:
        raise BadRequest(f"Invalid value for {key}: must be a string of length {lo} to {hi}")
    return v


def bool_member(body: dict[str, Any], key: str) -> bool | None:
    if key not in body or body[key] is None:
        return None
    if not isinstance(body[key], bool):
        raise BadRequest(f"Invalid value for {key}: must be a boolean")
    return bool(body[key])


def check_cors(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise BadRequest("Invalid CorsConfiguration: must be an object")
    out: dict[str, Any] = {}
    for key in ("allowOrigins", "allowMethods", "allowHeaders", "exposeHeaders"):
        if key in value:
            items = value[key]
            if not isinstance(items, list) or not all(isinstance(i, str) for i in items):
                raise BadRequest(f"Invalid CorsConfiguration.{key}: must be a list of strings")
            out[key] = items
    if "allowCredentials" in value:
        if not isinstance(value["allowCredentials"], bool):
            raise BadRequest("Invalid CorsConfiguration.allowCredentials: must be a boolean")
        out["allowCredentials"] = value["allowCredentials"]
        if value["allowCredentials"] and "*" in out.get("allowOrigins", []):
            raise BadRequest(
                "allow-credentials is not supported if allow-origin is set to '*' in CORS"
                " configuration."
            )
    if "maxAge" in value:
        age = value["maxAge"]
        if isinstance(age, bool) or not isinstance(age, int) or not -1 <= age <= 86400:
            raise BadRequest("Invalid CorsConfiguration.maxAge: must be -1 to 86400")
        out["maxAge"] = age
    return out


def check_route_settings(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise BadRequest(f"Invalid {where}: must be an object")
    out: dict[str, Any] = {}
    if "throttlingRateLimit" in value:
        rate = value["throttlingRateLimit"]
        if isinstance(rate, bool) or not isinstance(rate, int | float) or rate < 0:
            raise BadRequest(f"Invalid {where}.throttlingRateLimit: must be a number >= 0")
        out["throttlingRateLimit"] = float(rate)
    if "throttlingBurstLimit" in value:
        burst = value["throttlingBurstLimit"]
        if isinstance(burst, bool) or not isinstance(burst, int) or burst < 0:
            raise BadRequest(f"Invalid {where}.throttlingBurstLimit: must be an integer >= 0")
        out["throttlingBurstLimit"] = burst
    for key in ("detailedMetricsEnabled", "dataTraceEnabled"):
        if key in value and isinstance(value[key], bool):
            out[key] = value[key]
    return out


def _stage_variables(value: Any) -> dict[str, str]:
    if not isinstance(value, dict):
        raise BadRequest("Invalid stageVariables: must be a map of strings")
    for k, v in value.items():
        if not isinstance(v, str) or not _STAGE_VAR_NAME.fullmatch(str(k)):
            raise BadRequest(f"Invalid stage variable name: {k}")
        if not _STAGE_VAR_VALUE.fullmatch(v):
            raise BadRequest(f"Invalid stage variable value: {v}")
    return {str(k): str(v) for k, v in value.items()}


def item_of(d: ApiDoc, kind: str, label: str, ident: str) -> dict[str, Any]:
    item: dict[str, Any] | None = getattr(d, kind).get(ident)
    if item is None:
        raise NotFound(f"Invalid {label} identifier specified {d.account_id}:{ident}", label)
    return item


def route_key(key: Any) -> str:
    if not isinstance(key, str):
        raise BadRequest("Invalid input: routeKey is required")
    try:
        parse_route_key(key)
    except InvalidRouteKey as exc:
        raise BadRequest(str(exc)) from None
    return key


def new_route(rid: str, key: str, target: str | None) -> dict[str, Any]:
    route: dict[str, Any] = {
        "apiKeyRequired": False,
        "authorizationType": "NONE",
        "routeId": rid,
        "routeKey": key,
    }
    if target:
        route["target"] = target
    return route


def _apply_integration(d: ApiDoc, item: dict[str, Any], body: dict[str, Any], account: str) -> None:
    if "integrationType" in body:
        if body["integrationType"] != "AWS_PROXY":
            raise BadRequest(
                f"Unsupported integrationType {body['integrationType']}: Hearth HTTP APIs"
                " support AWS_PROXY (Lambda proxy) integrations."
            )
        item["integrationType"] = "AWS_PROXY"
    if "integrationUri" in body:
        uri = string_member(body, "integrationUri", lo=1, hi=2048) or ""
        _, owner, _, _ = parse_integration_uri(uri)
        if owner != account:
            raise BadRequest(f"Invalid integration URI specified: {uri} (another account)")
        item["integrationUri"] = uri
    if "payloadFormatVersion" in body:
        if body["payloadFormatVersion"] not in ("1.0", "2.0"):
            raise BadRequest(
                f"Invalid payloadFormatVersion {body['payloadFormatVersion']}: must be 1.0 or 2.0"
            )
        item["payloadFormatVersion"] = body["payloadFormatVersion"]
    if "timeoutInMillis" in body:
        t = body["timeoutInMillis"]
        if isinstance(t, bool) or not isinstance(t, int) or not 50 <= t <= 30000:
            raise BadRequest("Invalid timeoutInMillis: must be 50 to 30000")
        item["timeoutInMillis"] = t
    desc = string_member(body, "description")
    if desc is not None:
        item["description"] = desc


def _create_integration(d: ApiDoc, body: dict[str, Any], account: str) -> dict[str, Any]:
    if "integrationType" not in body:
        raise BadRequest("Invalid input: integrationType is required")
    if len(d.integrations) >= MAX_INTEGRATIONS:
        raise BadRequest(f"An API can have at most {MAX_INTEGRATIONS} integrations")
    iid = new_id(7)
    item: dict[str, Any] = {
        "integrationId": iid, "connectionType": "INTERNET", "integrationMethod": "POST",
        "timeoutInMillis": 30000,
    }  # fmt: skip
    _apply_integration(d, item, body, account)
    if "integrationUri" not in item:
        raise BadRequest("Invalid input: integrationUri is required for AWS_PROXY integrations")
    if "payloadFormatVersion" not in item:
        raise BadRequest(
            "Invalid input: payloadFormatVersion is required for AWS_PROXY integrations of"
            " HTTP APIs (1.0 or 2.0)"
        )
    d.integrations[iid] = item
    return item


def _update_integration(
    d: ApiDoc, item: dict[str, Any], body: dict[str, Any], account: str
) -> dict[str, Any]:
    _apply_integration(d, item, body, account)
    return item


def _apply_route(d: ApiDoc, item: dict[str, Any], body: dict[str, Any]) -> None:
    if "routeKey" in body:
        key = route_key(body["routeKey"])
        for other in d.routes.values():
            if other["routeKey"] == key and other["routeId"] != item.get("routeId"):
                raise Conflict(f"Route with key {key} already exists for this API")
        item["routeKey"] = key
    if "target" in body:
        target = body["target"]
        if target is None or target == "":
            item.pop("target", None)
        elif (
            not isinstance(target, str)
            or not target.startswith("integrations/")
            or target[len("integrations/") :] not in d.integrations
        ):
            raise BadRequest(f"Invalid target {target}: must be integrations/<an integration id>")
        else:
            item["target"] = target
    b = bool_member(body, "apiKeyRequired")
    if b is not None:
        item["apiKeyRequired"] = b
    auth = body.get("authorizationType")
    if auth not in (None, "NONE", "AWS_IAM"):
        raise BadRequest("Hearth HTTP APIs support authorizationType NONE and AWS_IAM only")
    if auth is not None:
        item["authorizationType"] = auth
    op = string_member(body, "operationName", lo=1, hi=64)
    if op is not None:
        item["operationName"] = op


def _create_route(d: ApiDoc, body: dict[str, Any], account: str) -> dict[str, Any]:
    if "routeKey" not in body:
        raise BadRequest("Invalid input: routeKey is required")
    if len(d.routes) >= MAX_ROUTES:
        raise BadRequest(f"An API can have at most {MAX_ROUTES} routes")
    rid = new_id(7)
    item = new_route(rid, "", None)
    _apply_route(d, item, body)
    d.routes[rid] = item
    return item


def _update_route(
    d: ApiDoc, item: dict[str, Any], body: dict[str, Any], account: str
) -> dict[str, Any]:
    _apply_route(d, item, body)
    return item


def new_stage(name: str, body: dict[str, Any]) -> dict[str, Any]:
    now = iso_now()
    item: dict[str, Any] = {
        "stageName": name,
        "autoDeploy": False,
        "createdDate": now,
        "lastUpdatedDate": now,
        "defaultRouteSettings": {"detailedMetricsEnabled": False},
        "routeSettings": {},
        "stageVariables": {},
        "tags": body.get("tags") or {},
    }
    _apply_stage(item, body)
    return item


def _apply_stage(item: dict[str, Any], body: dict[str, Any]) -> None:
    b = bool_member(body, "autoDeploy")
    if b is not None:
        item["autoDeploy"] = b
    desc = string_member(body, "description")
    if desc is not None:
        item["description"] = desc
    if "stageVariables" in body:
        item["stageVariables"] = _stage_variables(body["stageVariables"])
    if "defaultRouteSettings" in body:
        settings = check_route_settings(body["defaultRouteSettings"], "defaultRouteSettings")
        item["defaultRouteSettings"] = {"detailedMetricsEnabled": False, **settings}
    if "routeSettings" in body:
        raw = body["routeSettings"]
        if not isinstance(raw, dict):
            raise BadRequest("Invalid routeSettings: must be a map of route key to settings")
        out = {}
        for key, settings in raw.items():
            route_key(key)
            out[key] = check_route_settings(settings, f"routeSettings[{key}]")
        item["routeSettings"] = out
    item["lastUpdatedDate"] = iso_now()


def _create_stage(d: ApiDoc, body: dict[str, Any], account: str) -> dict[str, Any]:
    name = body.get("stageName")
    if not isinstance(name, str) or not _STAGE_NAME.fullmatch(name):
        raise BadRequest(f"Invalid stageName {name}: $default or [A-Za-z0-9_-]{{1,128}}")
    if name in d.stages:
        raise Conflict(f"Stage {name} already exists")
    if len(d.stages) >= MAX_STAGES:
        raise BadRequest(f"An API can have at most {MAX_STAGES} stages")
    item = new_stage(name, body)
    _stage_deployment(d, item, body)
    d.stages[name] = item
    return item


def _update_stage(
    d: ApiDoc, item: dict[str, Any], body: dict[str, Any], account: str
) -> dict[str, Any]:
    _apply_stage(item, body)
    _stage_deployment(d, item, body)
    return item


def _stage_deployment(d: ApiDoc, item: dict[str, Any], body: dict[str, Any]) -> None:
    """``deploymentId`` on a stage must name one of the API's deployments."""
    dep = body.get("deploymentId")
    if dep is None:
        return
    if not isinstance(dep, str) or dep not in d.deployments:
        raise NotFound(f"Invalid Deployment identifier specified {d.account_id}:{dep}")
    item["deploymentId"] = dep


CREATE: dict[str, Callable[[ApiDoc, dict[str, Any], str], dict[str, Any]]] = {
    "integrations": _create_integration,
    "routes": _create_route,
    "stages": _create_stage,
}
UPDATE: dict[str, Callable[[ApiDoc, dict[str, Any], dict[str, Any], str], dict[str, Any]]] = {
    "integrations": _update_integration,
    "routes": _update_route,
    "stages": _update_stage,
}
