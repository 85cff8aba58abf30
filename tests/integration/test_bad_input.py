"""Every bad input gets the exact AWS error, and the server keeps serving."""

from __future__ import annotations

import io
import json
import urllib.error
import urllib.request
import zipfile
from typing import Any

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.exceptions import ClientError

from tests.conftest import HELLO, ROLE
from tests.helpers import make_zip


def signed(
    server: Any,
    method: str,
    path: str,
    body: bytes = b"",
    headers: dict[str, str] | None = None,
    secret: str = "test",
) -> tuple[int, dict[str, str], bytes]:
    url = server.endpoint + path
    req = AWSRequest(method=method, url=url, data=body, headers=headers or {})
    SigV4Auth(Credentials("test", secret), "lambda", "us-east-1").add_auth(req)
    prepared = req.prepare()
    raw = urllib.request.Request(
        url, data=body or None, method=method, headers=dict(prepared.headers)
    )
    try:
        with urllib.request.urlopen(raw, timeout=60) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


def assert_serving(lam: Any) -> None:
    assert "AccountLimit" in lam.get_account_settings()


def test_malformed_json_body(server: Any, lam: Any) -> None:
    status, headers, body = signed(server, "POST", "/2015-03-31/functions", b"{not json")
    assert status == 400
    assert headers["x-amzn-ErrorType"] == "InvalidRequestContentException"
    assert json.loads(body)["message"]
    assert_serving(lam)


def test_invoke_payload_not_json(server: Any, lam: Any, make_function: Any) -> None:
    make_function(name="notjson-fn")
    status, headers, _ = signed(
        server, "POST", "/2015-03-31/functions/notjson-fn/invocations", b"\x00not json"
    )
    assert status == 400
    assert headers["x-amzn-ErrorType"] == "InvalidRequestContentException"
    assert_serving(lam)


def test_oversized_payload(lam: Any, make_function: Any) -> None:
    make_function(name="big-fn")
    payload = b'"' + b"x" * (6 * 1024 * 1024 - 1) + b'"'
    assert len(payload) == 6 * 1024 * 1024 + 1
    with pytest.raises(lam.exceptions.RequestTooLargeException) as exc:
        lam.invoke(FunctionName="big-fn", Payload=payload)
    assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 413
    assert_serving(lam)


def test_async_payload_limit(lam: Any, make_function: Any) -> None:
    make_function(name="bigasync-fn")
    payload = b'"' + b"x" * (1024 * 1024) + b'"'
    with pytest.raises(lam.exceptions.ClientError) as exc:
        lam.invoke(FunctionName="bigasync-fn", Payload=payload, InvocationType="Event")
    assert exc.value.response["Error"]["Code"] == "RequestEntityTooLargeException"


def _create(lam: Any, name: str, zip_bytes: bytes, handler: str = "app.handler") -> Any:
    return lam.create_function(
        FunctionName=name,
        Runtime="python3.11",
        Role=ROLE,
        Handler=handler,
        Code={"ZipFile": zip_bytes},
    )


def _zip_with(entries: list[tuple[zipfile.ZipInfo | str, bytes]]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for info, data in entries:
            z.writestr(info, data)
    return buf.getvalue()


def _symlink(name: str, target: str) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name)
    info.external_attr = 0o120777 << 16
    info.create_system = 3
    return info


@pytest.mark.parametrize(
    "zip_bytes",
    [
        pytest.param(b"this is not a zip file at all", id="corrupt"),
        pytest.param(make_zip({"app.py": HELLO})[:-30], id="truncated"),
        pytest.param(_zip_with([("../evil.py", b"x = 1")]), id="dotdot"),
        pytest.param(_zip_with([("/etc/evil.py", b"x = 1")]), id="absolute"),
        pytest.param(
            _zip_with([(_symlink("link", "/etc/passwd"), b"/etc/passwd")]), id="symlink-abs"
        ),
        pytest.param(_zip_with([(_symlink("link", "../../x"), b"../../x")]), id="symlink-up"),
    ],
)
def test_hostile_zips_rejected(lam: Any, zip_bytes: bytes) -> None:
    with pytest.raises(lam.exceptions.InvalidParameterValueException):
        _create(lam, "hostile-zip", zip_bytes)
    with pytest.raises(lam.exceptions.ResourceNotFoundException):
        lam.get_function(FunctionName="hostile-zip")
    assert_serving(lam)


def test_zip_bomb_rejected(lam: Any) -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("bomb.bin", b"\0" * (300 * 1024 * 1024))
    with pytest.raises(lam.exceptions.InvalidParameterValueException):
        _create(lam, "bomb-zip", buf.getvalue())
    assert_serving(lam)


def test_update_code_with_bad_zip_keeps_old_code(lam: Any, make_function: Any) -> None:
    fn = make_function(name="keep-code-fn")
    with pytest.raises(lam.exceptions.InvalidParameterValueException):
        lam.update_function_code(FunctionName="keep-code-fn", ZipFile=b"garbage")
    assert (
        lam.get_function(FunctionName="keep-code-fn")["Configuration"]["CodeSha256"]
        == (fn["CodeSha256"])
    )


@pytest.mark.parametrize(
    "name",
    [
        pytest.param("x" * 65, id="too-long"),
        pytest.param("héllo", id="non-ascii"),
        pytest.param("has space", id="space"),
        pytest.param("a" * 200, id="very-long"),
    ],
)
def test_bad_function_names(lam: Any, name: str) -> None:
    with pytest.raises(ClientError) as exc:
        _create(lam, name, make_zip({"app.py": HELLO}))
    assert exc.value.response["Error"]["Code"] == "ValidationException"
    assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert_serving(lam)


@pytest.mark.parametrize("handler", ["has space.handler", "x" * 129])
def test_bad_handler_strings(lam: Any, handler: str) -> None:
    with pytest.raises(ClientError) as exc:
        _create(lam, "bad-handler", make_zip({"app.py": HELLO}), handler=handler)
    assert exc.value.response["Error"]["Code"] == "ValidationException"
    assert_serving(lam)


def test_wrong_signature(server: Any, lam: Any) -> None:
    status, headers, _body = signed(server, "GET", "/2015-03-31/functions", secret="wrong")
    assert status == 403
    assert headers["x-amzn-ErrorType"] == "InvalidSignatureException"
    bad = server.client("lambda", secret="wrong")
    with pytest.raises(ClientError) as exc:
        bad.list_functions()
    assert exc.value.response["Error"]["Code"] == "InvalidSignatureException"
    assert_serving(lam)


def test_signature_never_executes(server: Any, lam: Any, make_function: Any) -> None:
    make_function(
        "import os\ndef handler(e, c):\n    print('EXECUTED-marker-991')\n", name="sig-fn"
    )
    status, _, _ = signed(
        server, "POST", "/2015-03-31/functions/sig-fn/invocations", b"{}", secret="bad"
    )
    assert status == 403
    # Nothing ran: no log group was ever created for the function.
    logs = server.client("logs")
    with pytest.raises(logs.exceptions.ResourceNotFoundException):
        logs.filter_log_events(logGroupName="/aws/lambda/sig-fn")


def test_expired_signature(server: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    import datetime

    import botocore.auth

    url = server.endpoint + "/2015-03-31/functions"
    req = AWSRequest(method="GET", url=url)
    old = datetime.datetime(2020, 1, 1, tzinfo=datetime.UTC).replace(tzinfo=None)
    monkeypatch.setattr(botocore.auth, "get_current_datetime", lambda: old)
    SigV4Auth(Credentials("test", "test"), "lambda", "us-east-1").add_auth(req)
    raw = urllib.request.Request(url, method="GET", headers=dict(req.prepare().headers))
    with pytest.raises(urllib.error.HTTPError) as exc:
        urllib.request.urlopen(raw)
    assert exc.value.code == 403
    assert exc.value.headers["x-amzn-ErrorType"] == "InvalidSignatureException"
    assert "Signature expired" in json.loads(exc.value.read())["message"]


def test_unknown_route(server: Any) -> None:
    status, headers, _ = signed(server, "GET", "/2015-03-31/nothing-here")
    assert status == 404
    assert headers["x-amzn-ErrorType"] == "UnknownOperationException"
