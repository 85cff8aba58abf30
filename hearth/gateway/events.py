"""HTTP request → Lambda event, and Lambda result → HTTP response, as AWS maps them.

Two event shapes, as documented for function URLs and API Gateway HTTP APIs:

* payload format **2.0** (function URLs always; HTTP API integrations by default):
  ``version``, ``routeKey``, ``rawPath``, ``rawQueryString``, ``cookies`` (taken out of
  the headers), ``headers`` (lower-case names, repeated values comma-joined),
  ``queryStringParameters`` (repeated values comma-joined), ``requestContext`` (with
  ``http.method/path/protocol/sourceIp/userAgent``, ``requestId``, ``time``,
  ``timeEpoch``), ``body`` and ``isBase64Encoded``, plus ``pathParameters`` and
  ``stageVariables`` where there are some;
* payload format **1.0** (HTTP API integrations that ask for it): the REST-API shape
  with ``resource``, ``path``, ``httpMethod``, ``headers``/``multiValueHeaders``,
  ``queryStringParameters``/``multiValueQueryStringParameters`` and so on.

A body is passed as text when the content type is textual and the bytes are UTF-8, and
base64-encoded (``isBase64Encoded: true``) otherwise.

Response mapping (:func:`map_response`) for format 2.0: a JSON object with a
``statusCode`` is read as ``statusCode`` / ``headers`` / ``multiValueHeaders`` /
``cookies`` / ``body`` / ``isBase64Encoded``; any other JSON value is the body of a 200
``application/json`` response. Format 1.0 requires the ``statusCode`` object form. A
malformed answer is a 502, as on AWS.
"""

from __future__ import annotations

import base64
import binascii
import json
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, unquote

from hearth.api.types import Request, Response

_TEXT_TYPES = ("text/", "application/json", "application/xml", "application/javascript")
#: Framing headers the server writes itself; a function's values are dropped.
_HOP_BY_HOP = frozenset({"content-length", "transfer-encoding", "connection", "keep-alive"})
_TEXT_HINTS = ("+json", "+xml", "x-www-form-urlencoded", "graphql", "yaml")


@dataclass(slots=True)
class EventContext:
    """What the front door knows about a request besides the request itself."""

    request_id: str
    account_id: str
    api_id: str
    domain_name: str
    raw_path: str
    route_key: str = "$default"
    stage: str = "$default"
    resource_path: str = ""
    path_parameters: dict[str, str] | None = None
    stage_variables: dict[str, str] | None = None
    authorizer: dict[str, Any] | None = None


def is_text(content_type: str) -> bool:
    ct = content_type.lower()
    return ct.startswith(_TEXT_TYPES) or any(h in ct for h in _TEXT_HINTS)


def encode_body(req: Request) -> tuple[str | None, bool]:
    """(body, isBase64Encoded) for an event."""
    if not req.body:
        return None, False
    if is_text(req.headers.get("content-type", "")) or "content-type" not in req.headers:
        try:
            return req.body.decode("utf-8"), False
        except UnicodeDecodeError:
            pass
    return base64.b64encode(req.body).decode(), True


def forwarded_headers(req: Request) -> dict[str, str]:
    """The request's headers plus the ``x-forwarded-*`` ones AWS's front ends add."""
    headers = dict(req.headers)
    if req.client:
        prior = headers.get("x-forwarded-for")
        headers["x-forwarded-for"] = f"{prior},{req.client}" if prior else req.client
    headers.setdefault("x-forwarded-proto", "http")
    _, sep, port = headers.get("host", "").rpartition(":")
    headers.setdefault("x-forwarded-port", port if sep and port.isdigit() else "80")
    return headers


def _query_pairs(raw_query: str) -> list[tuple[str, str]]:
    return parse_qsl(raw_query, keep_blank_values=True)


def _clf_time(now: float) -> str:
    return time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now))


def event_v2(req: Request, ctx: EventContext, *, now: float | None = None) -> dict[str, Any]:
    now = time.time() if now is None else now
    headers = {k: v for k, v in forwarded_headers(req).items() if k != "cookie"}
    domain = ctx.domain_name
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": ctx.route_key,
        "rawPath": ctx.raw_path,
        "rawQueryString": req.query,
    }
    cookie = req.headers.get("cookie")
    if cookie:
        event["cookies"] = [c.strip() for c in cookie.replace(",", ";").split(";") if c.strip()]
    event["headers"] = headers
    if req.query:
        params: dict[str, str] = {}
        for k, v in _query_pairs(req.query):
            params[k] = f"{params[k]},{v}" if k in params else v
        event["queryStringParameters"] = params
    rc: dict[str, Any] = {
        "accountId": ctx.account_id,
        "apiId": ctx.api_id,
        "domainName": domain,
        "domainPrefix": domain.split(".", 1)[0],
        "http": {
            "method": req.method,
            "path": unquote(ctx.raw_path),
            "protocol": "HTTP/1.1",
            "sourceIp": req.client,
            "userAgent": req.headers.get("user-agent", ""),
        },
        "requestId": ctx.request_id,
        "routeKey": ctx.route_key,
        "stage": ctx.stage,
        "time": _clf_time(now),
        "timeEpoch": int(now * 1000),
    }
    if ctx.authorizer is not None:
        rc["authorizer"] = ctx.authorizer
    event["requestContext"] = rc
    body, b64 = encode_body(req)
    if body is not None:
        event["body"] = body
    if ctx.path_parameters:
        event["pathParameters"] = dict(ctx.path_parameters)
    event["isBase64Encoded"] = b64
    if ctx.stage_variables:
        event["stageVariables"] = dict(ctx.stage_variables)
    return event


def event_v1(req: Request, ctx: EventContext, *, now: float | None = None) -> dict[str, Any]:
    now = time.time() if now is None else now
    headers = forwarded_headers(req)
    # One value per header: the HTTP layer has already joined repeated lines with ",", and
    # splitting again would cut single values that contain commas (User-Agent, Accept).
    multi_headers = {k: [v] for k, v in headers.items()}
    pairs = _query_pairs(req.query)
    multi_q: dict[str, list[str]] = {}
    for k, v in pairs:
        multi_q.setdefault(k, []).append(v)
    body, b64 = encode_body(req)
    path = unquote(ctx.raw_path)
    return {
        "version": "1.0",
        "resource": ctx.resource_path or path,
        "path": path,
        "httpMethod": req.method,
        "headers": headers,
        "multiValueHeaders": multi_headers,
        "queryStringParameters": {k: v[-1] for k, v in multi_q.items()} or None,
        "multiValueQueryStringParameters": multi_q or None,
        "requestContext": {
            "accountId": ctx.account_id,
            "apiId": ctx.api_id,
            "domainName": ctx.domain_name,
            "domainPrefix": ctx.domain_name.split(".", 1)[0],
            "extendedRequestId": ctx.request_id,
            "httpMethod": req.method,
            "identity": _identity_v1(req, ctx.authorizer),
            "path": path,
            "protocol": "HTTP/1.1",
            "requestId": ctx.request_id,
            "requestTime": _clf_time(now),
            "requestTimeEpoch": int(now * 1000),
            "resourcePath": ctx.resource_path or path,
            "stage": ctx.stage,
        },
        "pathParameters": dict(ctx.path_parameters) if ctx.path_parameters else None,
        "stageVariables": dict(ctx.stage_variables) if ctx.stage_variables else None,
        "body": body,
        "isBase64Encoded": b64,
    }


_IDENTITY_V1 = (
    "accessKey", "accountId", "caller", "cognitoAuthenticationProvider",
    "cognitoAuthenticationType", "cognitoIdentityId", "cognitoIdentityPoolId",
    "principalOrgId", "user", "userArn",
)  # fmt: skip


def _identity_v1(req: Request, authorizer: dict[str, Any] | None) -> dict[str, Any]:
    """``requestContext.identity`` of format 1.0: every documented member, null unless
    known (the signer's, for an ``AWS_IAM`` route)."""
    out: dict[str, Any] = dict.fromkeys(_IDENTITY_V1)
    out["sourceIp"] = req.client
    out["userAgent"] = req.headers.get("user-agent", "")
    iam = (authorizer or {}).get("iam")
    if iam:
        out.update(
            accessKey=iam["accessKey"], accountId=iam["accountId"], caller=iam["callerId"],
            user=iam["userId"], userArn=iam["userArn"],
        )  # fmt: skip
    return out


class BadLambdaResponse(Exception):
    """The function's answer cannot be mapped to an HTTP response (a 502)."""


def map_response(payload: bytes, *, version: str = "2.0") -> Response:
    """Turn a function's JSON answer into an HTTP response (see the module docstring)."""
    try:
        doc = json.loads(payload) if payload.strip() else None
    except (ValueError, UnicodeDecodeError):
        raise BadLambdaResponse("response is not JSON") from None
    if not (isinstance(doc, dict) and "statusCode" in doc):
        if version == "1.0":
            raise BadLambdaResponse("payload format 1.0 needs a statusCode")
        return Response(200, [("Content-Type", "application/json")], payload)
    status = doc.get("statusCode")
    if isinstance(status, str) and status.isdigit():
        status = int(status)
    if isinstance(status, bool) or not isinstance(status, int) or not 100 <= status <= 599:
        raise BadLambdaResponse("statusCode must be an HTTP status")
    out: list[tuple[str, str]] = []
    headers = doc.get("headers") or {}
    multi = doc.get("multiValueHeaders") or {}
    if not isinstance(headers, dict) or not isinstance(multi, dict):
        raise BadLambdaResponse("headers must be objects")
    seen: set[str] = set()
    for k, vals in multi.items():
        if not isinstance(vals, list):
            raise BadLambdaResponse("multiValueHeaders values must be lists")
        seen.add(str(k).lower())
        if str(k).lower() not in _HOP_BY_HOP:
            out.extend((str(k), _header_value(v)) for v in vals)
    for k, v in headers.items():
        if str(k).lower() not in seen and str(k).lower() not in _HOP_BY_HOP:
            out.append((str(k), _header_value(v)))
    cookies = doc.get("cookies") or []
    if not isinstance(cookies, list):
        raise BadLambdaResponse("cookies must be a list")
    out.extend(("Set-Cookie", str(c)) for c in cookies)
    body = doc.get("body")
    raw: bytes
    if body is None:
        raw = b""
    elif isinstance(body, str):
        if doc.get("isBase64Encoded") is True:
            try:
                raw = base64.b64decode(body, validate=True)
            except (binascii.Error, ValueError):
                raise BadLambdaResponse("body is not base64") from None
        else:
            raw = body.encode()
    else:
        raw = json.dumps(body).encode()
    if version == "2.0" and not any(k.lower() == "content-type" for k, _ in out) and raw:
        out.append(("Content-Type", "application/json"))
    return Response(status, out, raw)


def _header_value(v: Any) -> str:
    plain = isinstance(v, int | float) and not isinstance(v, bool)
    s = v if isinstance(v, str) else str(v) if plain else json.dumps(v)
    if "\r" in s or "\n" in s:
        raise BadLambdaResponse("header values cannot contain line breaks")
    return s
