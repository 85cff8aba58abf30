"""Fast tier: request → event, result → response, CORS, token buckets (no server)."""

from __future__ import annotations

import base64
import json

import pytest

from hearth.api.types import Request
from hearth.gateway import cors
from hearth.gateway.events import (
    BadLambdaResponse,
    EventContext,
    event_v1,
    event_v2,
    map_response,
)
from hearth.gateway.throttle import Buckets


def _req(**kw: object) -> Request:
    base: dict[str, object] = {
        "method": "GET",
        "path": "/p",
        "query": "",
        "headers": {"host": "abc.lambda-url.us-east-1.localhost:8910"},
        "body": b"",
        "client": "127.0.0.1",
    }
    base.update(kw)
    return Request(**base)  # type: ignore[arg-type]


CTX = EventContext("rid", "000000000000", "abc", "abc.lambda-url.us-east-1.localhost", "/p")


def test_event_v2_shapes() -> None:
    req = _req(
        query="a=1&a=2",
        headers={"host": "h:8910", "cookie": "x=1; y=2", "content-type": "image/png"},
        body=b"\x00\xff",
    )
    ev = event_v2(req, CTX, now=1_700_000_000.5)
    assert ev["cookies"] == ["x=1", "y=2"] and "cookie" not in ev["headers"]
    assert ev["queryStringParameters"] == {"a": "1,2"}
    assert ev["headers"]["x-forwarded-for"] == "127.0.0.1"
    assert ev["headers"]["x-forwarded-port"] == "8910"
    assert ev["isBase64Encoded"] is True and base64.b64decode(ev["body"]) == b"\x00\xff"
    assert ev["requestContext"]["timeEpoch"] == 1_700_000_000_500
    assert ev["requestContext"]["time"] == "14/Nov/2023:22:13:20 +0000"
    assert "pathParameters" not in ev and "stageVariables" not in ev
    json.dumps(ev)


def test_event_v1_shapes() -> None:
    ev = event_v1(_req(query="a=1&a=2&b=3"), CTX)
    assert ev["version"] == "1.0" and ev["httpMethod"] == "GET"
    assert ev["queryStringParameters"] == {"a": "2", "b": "3"}
    assert ev["multiValueQueryStringParameters"] == {"a": ["1", "2"], "b": ["3"]}
    assert ev["body"] is None and ev["isBase64Encoded"] is False
    assert ev["pathParameters"] is None and ev["stageVariables"] is None


def test_text_bodies_stay_text() -> None:
    for ct in ("application/json", "text/html; charset=utf-8", "application/vnd.api+json"):
        ev = event_v2(_req(headers={"content-type": ct}, body="é".encode()), CTX)
        assert ev["body"] == "é" and ev["isBase64Encoded"] is False
    ev = event_v2(_req(headers={"content-type": "text/plain"}, body=b"\xff"), CTX)
    assert ev["isBase64Encoded"] is True  # not UTF-8: must be base64


@pytest.mark.parametrize(
    ("payload", "status", "body"),
    [
        (b'{"a":1}', 200, b'{"a":1}'),
        (b'"s"', 200, b'"s"'),
        (b"null", 200, b"null"),
        (b'{"statusCode": 418, "body": "tea"}', 418, b"tea"),
        (b'{"statusCode": "201", "body": {"k": 1}}', 201, b'{"k": 1}'),
    ],
)
def test_map_response(payload: bytes, status: int, body: bytes) -> None:
    resp = map_response(payload)
    assert resp.status == status and resp.body == body


@pytest.mark.parametrize(
    "payload",
    [
        b'{"statusCode": 99}',
        b'{"statusCode": true}',
        b'{"statusCode": 200, "headers": "x"}',
        b'{"statusCode": 200, "body": "!!", "isBase64Encoded": true}',
        b'{"statusCode": 200, "headers": {"X": "a\\r\\nInjected: 1"}}',
    ],
)
def test_map_response_rejects(payload: bytes) -> None:
    with pytest.raises(BadLambdaResponse):
        map_response(payload)


def test_v1_requires_status_code_and_framing_headers_are_dropped() -> None:
    with pytest.raises(BadLambdaResponse):
        map_response(b'{"a": 1}', version="1.0")
    resp = map_response(b'{"statusCode": 200, "headers": {"Content-Length": "999"}, "body": "x"}')
    assert all(k.lower() != "content-length" for k, _ in resp.headers)


def test_cors_wildcard_and_credentials() -> None:
    req = _req(
        method="OPTIONS", headers={"origin": "https://x", "access-control-request-method": "GET"}
    )
    assert cors.is_preflight(req)
    pre = dict(cors.preflight({"AllowOrigins": ["*"]}, req).headers)
    assert pre["Access-Control-Allow-Origin"] == "*"
    pre = dict(cors.preflight({"AllowOrigins": ["*"], "AllowCredentials": True}, req).headers)
    assert pre["Access-Control-Allow-Origin"] == "https://x"  # never * with credentials


def test_token_bucket_with_fake_clock() -> None:
    now = [0.0]
    b = Buckets(clock=lambda: now[0])
    assert [b.allow("k", 2.0, 3) for _ in range(4)] == [True, True, True, False]
    now[0] = 0.5  # one token back
    assert b.allow("k", 2.0, 3) and not b.allow("k", 2.0, 3)
    now[0] = 100.0  # capped at burst
    assert [b.allow("k", 2.0, 3) for _ in range(4)] == [True, True, True, False]
    assert not b.allow("zero", 100.0, 0)  # burst 0 refuses everything
