"""Function URLs over real HTTP on loopback: events, response mapping, CORS, auth, API."""

from __future__ import annotations

import base64
import http.client
import json
import time
from typing import Any

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from tests.helpers import ServerProcess

ECHO = """
import json
def handler(event, context):
    return event
"""

MAPPER = """
import json
def handler(event, context):
    spec = json.loads(event["body"])
    if spec.get("raise"):
        raise ValueError("boom")
    return spec["return"]
"""


def request(
    server: ServerProcess,
    method: str,
    path: str,
    *,
    host: str | None = None,
    headers: list[tuple[str, str]] | None = None,
    body: bytes = b"",
) -> tuple[int, dict[str, str], list[tuple[str, str]], bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
    try:
        conn.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
        conn.putheader("Host", host or f"127.0.0.1:{server.port}")
        for k, v in headers or []:
            conn.putheader(k, v)
        conn.putheader("Content-Length", str(len(body)))
        conn.endheaders(body)
        resp = conn.getresponse()
        data = resp.read()
        raw = resp.getheaders()
        return resp.status, {k.lower(): v for k, v in raw}, raw, data
    finally:
        conn.close()


def url_host(url: str) -> str:
    return url.split("//", 1)[1].rstrip("/")


@pytest.fixture
def url_fn(lam: Any, make_function: Any) -> Any:
    def make(code: str, **kw: Any) -> tuple[str, str, dict[str, Any]]:
        name = make_function(code, Timeout=30)["FunctionName"]
        cfg = lam.create_function_url_config(FunctionName=name, AuthType="NONE", **kw)
        return name, url_host(cfg["FunctionUrl"]), cfg

    return make


def test_event_payload_v2(server: ServerProcess, url_fn: Any) -> None:
    _, host, cfg = url_fn(ECHO)
    url_id = host.split(".", 1)[0]
    assert cfg["FunctionUrl"] == f"http://{url_id}.lambda-url.us-east-1.localhost:{server.port}/"
    before = time.time()
    status, hdrs, _, data = request(
        server,
        "POST",
        "/items/a%20b?x=1&y=2&x=3&empty=",
        host=host,
        headers=[
            ("User-Agent", "hearth-test/1"),
            ("X-Multi", "one"),
            ("X-Multi", "two"),
            ("Content-Type", "application/json"),
            ("Cookie", "a=1; b=2"),
        ],
        body=b'{"hello": "world"}',
    )
    assert status == 200, data
    assert hdrs["content-type"] == "application/json"
    ev = json.loads(data)
    assert ev["version"] == "2.0"
    assert ev["routeKey"] == "$default"
    assert ev["rawPath"] == "/items/a%20b"
    assert ev["rawQueryString"] == "x=1&y=2&x=3&empty="
    assert ev["cookies"] == ["a=1", "b=2"]
    assert "cookie" not in ev["headers"]
    assert ev["headers"]["x-multi"] == "one,two"
    assert ev["headers"]["user-agent"] == "hearth-test/1"
    assert ev["headers"]["host"] == host
    assert all(k == k.lower() for k in ev["headers"])
    assert ev["queryStringParameters"] == {"x": "1,3", "y": "2", "empty": ""}
    rc = ev["requestContext"]
    assert rc["http"] == {
        "method": "POST",
        "path": "/items/a b",
        "protocol": "HTTP/1.1",
        "sourceIp": "127.0.0.1",
        "userAgent": "hearth-test/1",
    }
    assert rc["accountId"] == "000000000000"
    assert rc["apiId"] == url_id and rc["domainPrefix"] == url_id
    assert rc["domainName"] == f"{url_id}.lambda-url.us-east-1.localhost"
    assert rc["routeKey"] == "$default" and rc["stage"] == "$default"
    assert rc["requestId"] == hdrs["x-amzn-requestid"]
    assert before * 1000 - 1000 <= rc["timeEpoch"] <= time.time() * 1000 + 1000
    assert time.strftime("%d/%b/%Y:", time.gmtime(before)) in rc["time"]
    assert rc["time"].endswith(" +0000")
    assert ev["body"] == '{"hello": "world"}'
    assert ev["isBase64Encoded"] is False

    # Binary body: base64; no query: no queryStringParameters; the path-based form.
    blob = bytes(range(256))
    status, _, _, data = request(
        server,
        "PUT",
        f"/_hearth/url/{url_id}/bin",
        headers=[("Content-Type", "application/octet-stream")],
        body=blob,
    )
    assert status == 200, data
    ev = json.loads(data)
    assert ev["rawPath"] == "/bin" and ev["rawQueryString"] == ""
    assert "queryStringParameters" not in ev and "cookies" not in ev
    assert ev["isBase64Encoded"] is True
    assert base64.b64decode(ev["body"]) == blob
    status, _, _, data = request(server, "GET", f"/_hearth/url/{url_id}")
    ev = json.loads(data)
    assert (
        ev["rawPath"] == "/"
        and "body" not in ev
        and ev["requestContext"]["http"]["method"] == "GET"
    )


@pytest.mark.parametrize(
    ("returned", "status", "headers", "cookies", "body"),
    [
        # Any non-statusCode JSON value: 200 application/json with the JSON as body.
        ({"a": 1}, 200, {"content-type": "application/json"}, [], b'{"a": 1}'),
        ("hello", 200, {"content-type": "application/json"}, [], b'"hello"'),
        ([1, 2], 200, {"content-type": "application/json"}, [], b"[1, 2]"),
        (42, 200, {"content-type": "application/json"}, [], b"42"),
        (
            {
                "statusCode": 201,
                "headers": {"Content-Type": "text/plain", "X-A": "1"},
                "multiValueHeaders": {"X-B": ["2", "3"]},
                "cookies": ["c1=v1; Path=/", "c2=v2"],
                "body": "created",
            },
            201,
            {"content-type": "text/plain", "x-a": "1"},
            ["c1=v1; Path=/", "c2=v2"],
            b"created",
        ),
        (
            {"statusCode": 200, "headers": {"Content-Type": "image/png"},
             "body": base64.b64encode(b"\x89PNG\x00\xff").decode(), "isBase64Encoded": True},
            200,
            {"content-type": "image/png"},
            [],
            b"\x89PNG\x00\xff",
        ),
        ({"statusCode": 204}, 204, {}, [], b""),
        ({"statusCode": "nope"}, 502, {}, [], None),
    ],
)  # fmt: skip
def test_response_mapping(
    server: ServerProcess,
    url_fn: Any,
    returned: Any,
    status: int,
    headers: dict[str, str],
    cookies: list[str],
    body: bytes | None,
) -> None:
    _, host, _ = url_fn(MAPPER)
    got_status, hdrs, raw, data = request(
        server, "POST", "/", host=host, body=json.dumps({"return": returned}).encode()
    )
    assert got_status == status, data
    for k, v in headers.items():
        assert hdrs[k] == v
    assert [v for k, v in raw if k.lower() == "set-cookie"] == cookies
    if body is not None:
        assert data == body
    if isinstance(returned, dict) and "multiValueHeaders" in returned:
        assert [v for k, v in raw if k.lower() == "x-b"] == ["2", "3"]


def test_function_error_is_502(server: ServerProcess, url_fn: Any) -> None:
    _, host, _ = url_fn(MAPPER)
    status, _, _, data = request(server, "POST", "/", host=host, body=b'{"raise": true}')
    assert status == 502
    assert json.loads(data) == {"Message": "Internal Server Error"}


def test_oversized_body_413(server: ServerProcess, url_fn: Any) -> None:
    _, host, _ = url_fn(ECHO)
    status, _, _, _ = request(
        server, "POST", "/", host=host, headers=[("Content-Type", "text/plain")],
        body=b"x" * (6 * 1024 * 1024 + 1),
    )  # fmt: skip
    assert status == 413


def test_cors_preflight_and_headers(server: ServerProcess, url_fn: Any) -> None:
    cors = {
        "AllowOrigins": ["https://app.example.com"],
        "AllowMethods": ["GET", "POST"],
        "AllowHeaders": ["x-custom"],
        "ExposeHeaders": ["x-exposed"],
        "MaxAge": 300,
        "AllowCredentials": True,
    }
    _, host, cfg = url_fn(ECHO, Cors=cors)
    assert cfg["Cors"] == cors
    pre = [("Origin", "https://app.example.com"), ("Access-Control-Request-Method", "POST")]
    status, hdrs, _, data = request(server, "OPTIONS", "/x", host=host, headers=pre)
    assert status == 200 and data == b""  # answered by Hearth, not the function
    assert hdrs["access-control-allow-origin"] == "https://app.example.com"
    assert hdrs["access-control-allow-methods"] == "GET,POST"
    assert hdrs["access-control-allow-headers"] == "x-custom"
    assert hdrs["access-control-max-age"] == "300"
    assert hdrs["access-control-allow-credentials"] == "true"
    bad = [("Origin", "https://evil.example.com"), ("Access-Control-Request-Method", "POST")]
    status, hdrs, _, _ = request(server, "OPTIONS", "/x", host=host, headers=bad)
    assert status == 200 and "access-control-allow-origin" not in hdrs
    status, hdrs, _, _ = request(
        server, "GET", "/x", host=host, headers=[("Origin", "https://app.example.com")]
    )
    assert status == 200
    assert hdrs["access-control-allow-origin"] == "https://app.example.com"
    assert hdrs["access-control-expose-headers"] == "x-exposed"
    status, hdrs, _, _ = request(
        server, "GET", "/x", host=host, headers=[("Origin", "https://evil.example.com")]
    )
    assert status == 200 and "access-control-allow-origin" not in hdrs


def _signed_headers(
    method: str, url: str, body: bytes, key: str = "test", secret: str = "test"
) -> list[tuple[str, str]]:
    req = AWSRequest(method=method, url=url, data=body)
    SigV4Auth(Credentials(key, secret), "lambda", "us-east-1").add_auth(req)
    return [(k, v) for k, v in req.headers.items() if k.lower() != "host"]


def test_aws_iam_auth(server: ServerProcess, lam: Any, make_function: Any) -> None:
    name = make_function(ECHO, Timeout=30)["FunctionName"]
    cfg = lam.create_function_url_config(FunctionName=name, AuthType="AWS_IAM")
    host = url_host(cfg["FunctionUrl"])
    status, _, _, data = request(server, "GET", "/secret?q=1", host=host)
    assert status == 403 and json.loads(data) == {"Message": "Forbidden"}
    hdrs = _signed_headers("GET", f"http://{host}/secret?q=1", b"")
    status, _, _, data = request(server, "GET", "/secret?q=1", host=host, headers=hdrs)
    assert status == 200, data
    iam = json.loads(data)["requestContext"]["authorizer"]["iam"]
    assert iam["accountId"] == "000000000000" and iam["accessKey"] == "test"
    # A wrong secret, or a body changed after signing, is rejected.
    hdrs = _signed_headers("GET", f"http://{host}/secret?q=1", b"", secret="wrong")
    assert request(server, "GET", "/secret?q=1", host=host, headers=hdrs)[0] == 403
    hdrs = _signed_headers("POST", f"http://{host}/p", b"signed")
    assert request(server, "POST", "/p", host=host, headers=hdrs, body=b"tampered")[0] == 403
    # Switching the URL to NONE opens it.
    lam.update_function_url_config(FunctionName=name, AuthType="NONE")
    assert request(server, "GET", "/secret", host=host)[0] == 200


def test_url_config_api(server: ServerProcess, lam: Any, make_function: Any) -> None:
    fn = make_function(ECHO, Timeout=30)
    name = fn["FunctionName"]
    created = lam.create_function_url_config(FunctionName=name, AuthType="NONE")
    assert created["FunctionArn"] == fn["FunctionArn"]
    assert created["AuthType"] == "NONE" and created["InvokeMode"] == "BUFFERED"
    got = lam.get_function_url_config(FunctionName=name)
    assert got["FunctionUrl"] == created["FunctionUrl"] and "LastModifiedTime" in got
    with pytest.raises(lam.exceptions.ResourceConflictException):
        lam.create_function_url_config(FunctionName=name, AuthType="NONE")
    updated = lam.update_function_url_config(
        FunctionName=name, Cors={"AllowOrigins": ["*"]}, AuthType="AWS_IAM"
    )
    assert updated["Cors"] == {"AllowOrigins": ["*"]} and updated["AuthType"] == "AWS_IAM"
    # An alias gets its own URL; invoking it runs the alias's version.
    lam.publish_version(FunctionName=name)
    lam.create_alias(FunctionName=name, Name="live", FunctionVersion="1")
    aliased = lam.create_function_url_config(FunctionName=name, Qualifier="live", AuthType="NONE")
    assert aliased["FunctionArn"] == fn["FunctionArn"] + ":live"
    assert aliased["FunctionUrl"] != created["FunctionUrl"]
    status, _, _, data = request(server, "GET", "/", host=url_host(aliased["FunctionUrl"]))
    assert status == 200, data
    listed = lam.list_function_url_configs(FunctionName=name)["FunctionUrlConfigs"]
    assert {c["FunctionArn"] for c in listed} == {fn["FunctionArn"], fn["FunctionArn"] + ":live"}

    with pytest.raises(lam.exceptions.ResourceNotFoundException):
        lam.get_function_url_config(FunctionName=name, Qualifier="nope")
    with pytest.raises(lam.exceptions.ClientError) as exc:
        lam.create_function_url_config(FunctionName=name, Qualifier="1", AuthType="NONE")
    assert exc.value.response["Error"]["Code"] in (
        "ValidationException", "InvalidParameterValueException"
    )  # fmt: skip
    with pytest.raises(lam.exceptions.ClientError) as exc:
        lam.create_function_url_config(FunctionName=name, AuthType="BASIC")
    assert exc.value.response["Error"]["Code"] == "ValidationException"
    with pytest.raises(lam.exceptions.ResourceNotFoundException):
        lam.create_function_url_config(FunctionName="no-such-fn-url", AuthType="NONE")

    lam.delete_function_url_config(FunctionName=name)
    with pytest.raises(lam.exceptions.ResourceNotFoundException):
        lam.get_function_url_config(FunctionName=name)
    status, _, _, data = request(server, "GET", "/", host=url_host(created["FunctionUrl"]))
    assert status == 404 and json.loads(data) == {"message": "Not Found"}
    # Deleting the function removes its URLs.
    alias_host = url_host(aliased["FunctionUrl"])
    lam.delete_function(FunctionName=name)
    assert request(server, "GET", "/", host=alias_host)[0] == 404


STARLETTE_APP = """
from mangum import Mangum
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route


async def item(request: Request) -> JSONResponse:
    return JSONResponse({"id": request.path_params["id"], "q": request.query_params.get("q")})


async def echo(request: Request) -> JSONResponse:
    data = await request.json()
    return JSONResponse({"got": data, "token": request.headers.get("x-token")}, status_code=201)


async def cookies(request: Request) -> JSONResponse:
    resp = JSONResponse({"seen": dict(request.cookies)})
    resp.set_cookie("session", "abc123")
    resp.set_cookie("theme", "dark")
    return resp


async def image(request: Request) -> Response:
    return Response(bytes(range(256)), media_type="image/png")


app = Starlette(routes=[
    Route("/items/{id}", item),
    Route("/echo", echo, methods=["POST"]),
    Route("/cookies", cookies),
    Route("/image.png", image),
])
handler = Mangum(app, lifespan="off")
"""


def _pip_target(target: Any) -> None:
    import subprocess
    import sys

    proc = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
         "--no-compile", "--target", str(target), "mangum", "starlette"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    if proc.returncode != 0:
        text = proc.stderr + proc.stdout
        unreachable = (
            "NewConnectionError",
            "Temporary failure in name resolution",
            "Network is unreachable",
            "ConnectTimeout",
            "Could not fetch URL",
        )
        if any(s in text for s in unreachable):
            pytest.skip(f"PyPI is unreachable, cannot pip install mangum/starlette: {text[-300:]}")
        raise AssertionError(f"pip install --target failed: {text}")


def test_mangum_starlette_app(server: ServerProcess, lam: Any, tmp_path: Any) -> None:
    import io
    import zipfile

    pkg = tmp_path / "pkg"
    _pip_target(pkg)
    (pkg / "app.py").write_text(STARLETTE_APP)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for path in sorted(pkg.rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts:
                z.write(path, str(path.relative_to(pkg)))
    name = f"mangum-{int(time.time())}"
    lam.create_function(
        FunctionName=name, Runtime="python3.11", Role="arn:aws:iam::000000000000:role/r",
        Handler="app.handler", Code={"ZipFile": buf.getvalue()}, Timeout=30, MemorySize=256,
    )  # fmt: skip
    try:
        cfg = lam.create_function_url_config(FunctionName=name, AuthType="NONE")
        host = url_host(cfg["FunctionUrl"])
        status, hdrs, _, data = request(server, "GET", "/items/42?q=find", host=host)
        assert status == 200, data
        assert json.loads(data) == {"id": "42", "q": "find"}
        assert hdrs["content-type"] == "application/json"
        status, _, _, data = request(
            server, "POST", "/echo", host=host,
            headers=[("Content-Type", "application/json"), ("X-Token", "t0k")],
            body=b'{"n": [1, 2]}',
        )  # fmt: skip
        assert status == 201, data
        assert json.loads(data) == {"got": {"n": [1, 2]}, "token": "t0k"}
        status, _, raw, data = request(
            server, "GET", "/cookies", host=host, headers=[("Cookie", "a=1; b=2")]
        )
        assert status == 200, data
        assert json.loads(data) == {"seen": {"a": "1", "b": "2"}}
        set_cookies = [v for k, v in raw if k.lower() == "set-cookie"]
        assert len(set_cookies) == 2
        assert set_cookies[0].startswith("session=abc123")
        assert set_cookies[1].startswith("theme=dark")
        status, hdrs, _, data = request(server, "GET", "/image.png", host=host)
        assert status == 200 and hdrs["content-type"] == "image/png"
        assert data == bytes(range(256))
        status, _, _, _ = request(server, "GET", "/missing", host=host)
        assert status == 404
    finally:
        lam.delete_function(FunctionName=name)


def test_head_has_no_body_on_a_kept_alive_connection(server: ServerProcess, url_fn: Any) -> None:
    _, host, _ = url_fn(ECHO)
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
    try:
        for method in ("HEAD", "GET"):
            conn.request(method, "/h", headers={"Host": host})
            resp = conn.getresponse()
            data = resp.read()
            assert resp.status == 200
            assert (data == b"") if method == "HEAD" else json.loads(data)["rawPath"] == "/h"
    finally:
        conn.close()


def test_aws_iam_rejects_another_account(tmp_path: Any) -> None:
    from tests.helpers import make_zip, start_server

    keys = "ka:secret-a:111111111111,kb:secret-b:222222222222"
    srv = start_server(tmp_path / "data", ["--no-egress"], env={"HEARTH_ACCESS_KEYS": keys})
    try:
        lam = srv.client("lambda", key="ka", secret="secret-a")
        lam.create_function(
            FunctionName="private", Runtime="python3.11", Handler="app.handler",
            Role="arn:aws:iam::111111111111:role/r", Code={"ZipFile": make_zip({"app.py": ECHO})},
            Timeout=30,
        )  # fmt: skip
        host = url_host(
            lam.create_function_url_config(FunctionName="private", AuthType="AWS_IAM")[
                "FunctionUrl"
            ]
        )
        other = _signed_headers("GET", f"http://{host}/", b"", key="kb", secret="secret-b")
        status, _, _, data = request(srv, "GET", "/", host=host, headers=other)
        assert status == 403 and json.loads(data) == {"Message": "Forbidden"}
        owner = _signed_headers("GET", f"http://{host}/", b"", key="ka", secret="secret-a")
        status, _, _, data = request(srv, "GET", "/", host=host, headers=owner)
        assert status == 200, data
        assert json.loads(data)["requestContext"]["accountId"] == "111111111111"
    finally:
        srv.stop()
