"""The hand-rolled SigV4 verifier against botocore, the reference implementation.

Every request here is signed by botocore itself (``SigV4Auth``, ``SigV4QueryAuth`` or a real
``boto3`` client whose request is captured at ``before-send``). The tests feed the verifier
exactly what would reach the server (wire path, wire query, lower-cased headers, body) and
check two things: the request verifies, and the canonical request the verifier builds is
byte-identical to the one botocore signed.
"""

from __future__ import annotations

import datetime
import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import boto3
import botocore.auth
import pytest
from botocore.auth import SigV4Auth, SigV4QueryAuth
from botocore.awsrequest import AWSRequest, AWSResponse
from botocore.credentials import Credentials

from hearth.api import sigv4
from hearth.api.keys import DEFAULT_TEST_KEY, AccessKey, load_access_keys
from hearth.api.sigv4 import SigV4Verifier
from hearth.api.types import Principal
from hearth.errors import AuthError

KEY = AccessKey("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "123456789012")
CREDS = Credentials(KEY.key_id, KEY.secret)
NOW = datetime.datetime(2024, 3, 1, 12, 30, 45)  # naive UTC, as botocore uses it
NOW_EPOCH = NOW.replace(tzinfo=datetime.UTC).timestamp()
AMZ_NOW = "20240301T123045Z"
ENDPOINT = "http://localhost:9001"
FN_ARN_PATH = (
    "/2015-03-31/functions/arn%3Aaws%3Alambda%3Aus-east-1%3A000000000000%3Afunction%3Af/invocations"
)
MISMATCH = (
    "The request signature we calculated does not match the signature you provided. "
    "Check your AWS Secret Access Key and signing method. "
    "Consult the service documentation for details."
)


# ----------------------------------------------------------------------------- helpers


@pytest.fixture
def frozen(monkeypatch: pytest.MonkeyPatch) -> None:
    """botocore signs at NOW."""
    monkeypatch.setattr(botocore.auth, "get_current_datetime", lambda *a, **k: NOW)


@pytest.fixture
def botocore_crs(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every canonical request botocore computes while signing, in order."""
    seen: list[str] = []
    original = SigV4Auth.canonical_request

    def recording(self: SigV4Auth, request: AWSRequest) -> str:
        cr: str = original(self, request)
        seen.append(cr)
        return cr

    monkeypatch.setattr(SigV4Auth, "canonical_request", recording)
    return seen


def verifier(*keys: AccessKey, clock: float = NOW_EPOCH) -> SigV4Verifier:
    return SigV4Verifier({k.key_id: k for k in (keys or (KEY,))}, clock=lambda: clock)


class Wire:
    """What the server sees of a request: method, raw path, raw query, headers, body."""

    def __init__(self, method: str, url: str, headers: Any, body: bytes | None) -> None:
        parts = urlsplit(url)
        self.method = method
        # An HTTP client sends "/" for an empty path; the query goes without "?".
        self.path = parts.path or "/"
        self.query = parts.query
        self.headers: dict[str, str] = {}
        for name, value in headers.items():
            text = value.decode("latin-1") if isinstance(value, bytes) else str(value)
            self.headers[name.lower()] = text
        # urllib3/http.client add Host from the URL (default ports omitted, like botocore).
        self.headers.setdefault("host", botocore.auth._host_from_url(url))
        self.body = body or b""

    @classmethod
    def of(cls, request: Any) -> Wire:
        body = request.body
        if isinstance(body, str):
            body = body.encode()
        return cls(request.method, request.url, request.headers, body)

    def verify(self, v: SigV4Verifier | None = None) -> Principal:
        return (v or verifier()).verify(self.method, self.path, self.query, self.headers, self.body)

    def canonical(self, *, presigned: bool = False) -> str:
        """The canonical request the verifier derives from this wire request."""
        if presigned:
            params = dict(p.split("=", 1) for p in self.query.split("&"))
            signed = params["X-Amz-SignedHeaders"].replace("%3B", ";")
        else:
            auth = self.headers["authorization"]
            signed = auth.split("SignedHeaders=")[1].split(",")[0]
        payload = (
            self.headers.get("x-amz-content-sha256") or botocore.auth.sha256(self.body).hexdigest()
        )
        return sigv4.canonical_request(
            self.method,
            sigv4.canonical_path(self.path),
            sigv4.canonical_query(self.query, drop="X-Amz-Signature" if presigned else None),
            signed,
            self.headers,
            payload,
        )


def sign(
    method: str = "POST",
    url: str = ENDPOINT + "/2015-03-31/functions/f/invocations",
    *,
    body: bytes | str | None = b"{}",
    headers: dict[str, str] | None = None,
    params: dict[str, str] | None = None,
    creds: Credentials = CREDS,
    service: str = "lambda",
    region: str = "us-east-1",
    context: dict[str, Any] | None = None,
) -> Wire:
    request = AWSRequest(method=method, url=url, data=body, headers=headers or {}, params=params)
    if context:
        request.context.update(context)
    SigV4Auth(creds, service, region).add_auth(request)
    # prepare() is what botocore sends: it folds params into the URL with urlencode.
    return Wire.of(request.prepare())


def presign(
    method: str = "GET",
    url: str = ENDPOINT + "/2015-03-31/functions",
    *,
    expires: int = 3600,
    creds: Credentials = CREDS,
    body: bytes | None = None,
    service: str = "lambda",
) -> Wire:
    request = AWSRequest(method=method, url=url, data=body)
    SigV4QueryAuth(creds, service, "eu-west-1", expires=expires).add_auth(request)
    return Wire.of(request.prepare())


def auth_error(wire: Wire, v: SigV4Verifier | None = None) -> AuthError:
    with pytest.raises(AuthError) as info:
        wire.verify(v)
    assert info.value.status in (400, 403)
    return info.value


# ----------------------------------------------------------------------------- AWSRequest


ODD_PATHS = [
    "/2015-03-31/functions/f/invocations",
    FN_ARN_PATH,
    "/2015-03-31/functions/a%20b/invocations",  # space, encoded the way the serializer does
    "/2015-03-31/functions/%C3%BCber%E2%9C%93/invocations",  # unicode, encoded
    "/2015-03-31/functions/a%2Fb/invocations",  # encoded slash stays inside the segment
    "/2015-03-31/functions/~tilde/invocations",
    "/2015-03-31/functions/a+b/invocations",
    "/2015-03-31/functions/f:1/invocations",  # unencoded ':' (qualifier written by hand)
    "/a/./b/../c",
    "//double//slashes//",
    "/trailing/",
    "/..",
    "/",
    "",
    "/%7Euser/%25percent",
    "/!$&'()*,;=@",
]


@pytest.mark.usefixtures("frozen")
@pytest.mark.parametrize("path", ODD_PATHS)
def test_odd_paths_match_botocore(path: str, botocore_crs: list[str]) -> None:
    wire = sign(url=ENDPOINT + path)
    assert wire.canonical() == botocore_crs[-1]
    assert wire.verify() == Principal(KEY.key_id, KEY.account_id, "us-east-1", "lambda")


@pytest.mark.usefixtures("frozen")
@pytest.mark.parametrize("path", ["/a b/c", "/\u00fcber/\u2713", "/50%off"])
def test_unencoded_path_bytes_from_a_raw_client(path: str, botocore_crs: list[str]) -> None:
    # A client that puts the signed path on the wire byte for byte (raw UTF-8); the server
    # decodes request-line bytes as latin-1.
    wire = sign(url=ENDPOINT + path)
    wire.path = path.encode("utf-8").decode("latin-1")
    assert wire.canonical() == botocore_crs[-1]
    wire.verify()


def test_remove_dot_segments_matches_botocore() -> None:
    from botocore.utils import normalize_url_path

    for path in ["", "/", "//", "/./", "/../a", "a/b/../c/", "/a//b/./c/..", "/a/b/..", ".."]:
        assert sigv4._remove_dot_segments(path) == normalize_url_path(path), path


QUERIES = [
    "Marker=abc&MaxItems=10",
    "b=2&a=1",  # keys needing sorting
    "a=2&a=1&a=10",  # repeated keys sort by value
    "a=&b=&c",  # empty values, and a key without "="
    "Z=1&a=1&_=2&-=3&~=4&%41=5",  # sort is on the encoded bytes
    "k=v%3Dx%26y%20z",  # '=', '&' and space inside a value
    "q=%C3%BC%E2%9C%93&%C3%A4=1",  # unicode keys and values
    "Qualifier=%24LATEST",
    "flag",
    "a=1&&b=2",  # empty pair
    "x=a+b",  # a literal '+' is signed as sent
]


@pytest.mark.usefixtures("frozen")
@pytest.mark.parametrize("query", QUERIES)
def test_encoded_queries_match_botocore(query: str, botocore_crs: list[str]) -> None:
    wire = sign("GET", ENDPOINT + "/2015-03-31/functions/?" + query, body=None)
    assert wire.query == query
    assert wire.canonical() == botocore_crs[-1]
    wire.verify()


@pytest.mark.usefixtures("frozen")
@pytest.mark.parametrize(
    "params",
    [
        {"MaxItems": "10", "Marker": "a b+c"},
        {"\u00fc": "x=y&z", "k": "\u2713 ~-_."},
        {"empty": ""},
    ],
)
def test_params_dict_requests_verify(params: dict[str, str]) -> None:
    # AWSRequest(params=...) goes on the wire through urlencode ('+' for space) but is
    # signed with %20: the verifier's fallback form covers it.
    wire = sign("GET", ENDPOINT + "/2015-03-31/functions/", body=None, params=params)
    wire.verify()


@pytest.mark.usefixtures("frozen")
@pytest.mark.parametrize("body", [b"", None, b"{}", b'{"k": "\xc3\xbc"}', bytes(range(256)) * 50])
def test_bodies_are_hashed_when_no_content_sha_header(
    body: bytes | None, botocore_crs: list[str]
) -> None:
    wire = sign(body=body)
    assert "x-amz-content-sha256" not in wire.headers
    assert wire.canonical() == botocore_crs[-1]
    wire.verify()


@pytest.mark.usefixtures("frozen")
def test_unsigned_payload_via_botocore_context(botocore_crs: list[str]) -> None:
    wire = sign(
        url="https://lambda.local" + FN_ARN_PATH, context={"payload_signing_enabled": False}
    )
    assert wire.headers["x-amz-content-sha256"] == "UNSIGNED-PAYLOAD"
    assert wire.canonical() == botocore_crs[-1]
    wire.verify()
    # The body is not covered by the signature: any body verifies.
    wire.body = b"something else"
    wire.verify()


@pytest.mark.usefixtures("frozen")
def test_explicit_content_sha_header_must_match_body(botocore_crs: list[str]) -> None:
    body = b'{"a": 1}'
    digest = botocore.auth.sha256(body).hexdigest()
    wire = sign(body=body, headers={"X-Amz-Content-SHA256": digest})
    assert wire.canonical() == botocore_crs[-1]
    wire.verify()
    wire.body = b'{"a": 2}'
    err = auth_error(wire)
    assert err.code == "XAmzContentSHA256Mismatch"
    assert err.status == 400


@pytest.mark.usefixtures("frozen")
def test_session_token_is_signed(botocore_crs: list[str]) -> None:
    wire = sign(creds=Credentials(KEY.key_id, KEY.secret, "FQoGZXIvYXdzE//token+=="))
    assert wire.headers["x-amz-security-token"] == "FQoGZXIvYXdzE//token+=="
    assert "x-amz-security-token" in wire.headers["authorization"]
    assert wire.canonical() == botocore_crs[-1]
    wire.verify()
    wire.headers["x-amz-security-token"] = "other"
    assert auth_error(wire).message == MISMATCH


@pytest.mark.usefixtures("frozen")
def test_header_whitespace_is_trimmed_and_collapsed(botocore_crs: list[str]) -> None:
    wire = sign(headers={"X-Custom": "  a   b \t c  ", "X-Empty": "", "Content-Type": "x/y"})
    assert wire.canonical() == botocore_crs[-1]
    assert "\nx-custom:a b c\n" in botocore_crs[-1]
    wire.verify()
    # A server that strips the value's outer whitespace sees the same canonical form.
    wire.headers["x-custom"] = "a   b \t c"
    wire.verify()


@pytest.mark.usefixtures("frozen")
def test_latin1_header_value(botocore_crs: list[str]) -> None:
    # http.client encodes header values as latin-1 and the server decodes them the same way;
    # botocore signed the str (as UTF-8).
    wire = sign(headers={"X-Name": "caf\u00e9"})
    assert wire.headers["x-name"] == "caf\u00e9"
    assert wire.canonical() == botocore_crs[-1]
    wire.verify()


@pytest.mark.usefixtures("frozen")
def test_date_header_instead_of_x_amz_date(botocore_crs: list[str]) -> None:
    wire = sign(headers={"Date": "placeholder"})
    assert "x-amz-date" not in wire.headers
    assert wire.headers["date"].startswith("Fri, 01 Mar 2024 12:30:45")
    assert wire.canonical() == botocore_crs[-1]
    wire.verify()


@pytest.mark.usefixtures("frozen")
@pytest.mark.parametrize(("service", "region"), [("lambda", "us-east-1"), ("logs", "ap-south-2")])
def test_principal_reports_scope(service: str, region: str) -> None:
    wire = sign(service=service, region=region)
    assert wire.verify() == Principal(KEY.key_id, KEY.account_id, region, service)


@pytest.mark.usefixtures("frozen")
def test_lowercase_method_is_uppercased_like_botocore(botocore_crs: list[str]) -> None:
    wire = sign("post")
    assert wire.canonical() == botocore_crs[-1]
    wire.verify()


# ----------------------------------------------------------------------------- boto3 clients


class _Raw:
    def __init__(self, body: bytes) -> None:
        self._body = body

    def stream(self, **kwargs: Any) -> Iterator[bytes]:
        yield self._body

    def read(self, *args: Any) -> bytes:
        body, self._body = self._body, b""
        return body


def _client(service: str, token: str | None = None, key: AccessKey = KEY) -> tuple[Any, list[Any]]:
    client = boto3.client(
        service,
        endpoint_url=ENDPOINT,
        region_name="eu-central-1",
        aws_access_key_id=key.key_id,
        aws_secret_access_key=key.secret,
        aws_session_token=token,
    )
    sent: list[Any] = []

    def before_send(request: Any, **kwargs: Any) -> AWSResponse:
        sent.append(request)
        return AWSResponse(request.url, 200, {"Content-Type": "application/json"}, _Raw(b"{}"))

    client.meta.events.register("before-send", before_send)
    return client, sent


LAMBDA_CALLS: list[tuple[str, dict[str, Any]]] = [
    ("invoke", {"FunctionName": "f", "Payload": b'{"x": 1}'}),
    ("invoke", {"FunctionName": "f", "Payload": b""}),
    (
        "invoke",
        {"FunctionName": "arn:aws:lambda:us-east-1:000000000000:function:f", "Payload": b"{}"},
    ),
    ("invoke", {"FunctionName": "f", "Qualifier": "$LATEST", "InvocationType": "Event"}),
    ("invoke", {"FunctionName": "weird name~+/\u00fc", "Payload": b"[]"}),
    ("invoke", {"FunctionName": "f", "ClientContext": "eyJhIjogMX0=", "LogType": "Tail"}),
    ("list_functions", {}),
    ("list_functions", {"Marker": "a b=c&d/\u00fc", "MaxItems": 5}),
    ("list_functions", {"MasterRegion": "ALL", "FunctionVersion": "ALL"}),
    ("get_function", {"FunctionName": "f", "Qualifier": "1"}),
    ("delete_function", {"FunctionName": "f"}),
    ("list_tags", {"Resource": "arn:aws:lambda:us-east-1:000000000000:function:f"}),
    ("create_function", {"FunctionName": "f", "Role": "r", "Code": {"ZipFile": b"zip"}}),
]


@pytest.mark.parametrize(("operation", "kwargs"), LAMBDA_CALLS)
@pytest.mark.parametrize("token", [None, "session/token+=="])
def test_boto3_lambda_requests_verify(
    operation: str, kwargs: dict[str, Any], token: str | None, botocore_crs: list[str]
) -> None:
    client, sent = _client("lambda", token)
    getattr(client, operation)(**kwargs)
    assert len(sent) == 1
    wire = Wire.of(sent[0])
    assert wire.canonical() == botocore_crs[-1]
    assert SigV4Verifier({KEY.key_id: KEY}).verify(
        wire.method, wire.path, wire.query, wire.headers, wire.body
    ) == Principal(KEY.key_id, KEY.account_id, "eu-central-1", "lambda")


def test_boto3_lambda_arn_path_is_double_encoded(botocore_crs: list[str]) -> None:
    client, sent = _client("lambda")
    client.invoke(FunctionName="arn:aws:lambda:us-east-1:000000000000:function:f", Payload=b"{}")
    wire = Wire.of(sent[0])
    assert wire.path == FN_ARN_PATH
    assert botocore_crs[-1].split("\n")[1] == FN_ARN_PATH.replace("%", "%25")
    wire.verify(SigV4Verifier({KEY.key_id: KEY}))


LOGS_CALLS: list[tuple[str, dict[str, Any]]] = [
    ("describe_log_groups", {}),
    ("create_log_group", {"logGroupName": "/aws/lambda/f"}),
    (
        "put_log_events",
        {
            "logGroupName": "/aws/lambda/f",
            "logStreamName": "2024/03/01/[$LATEST]abc",
            "logEvents": [{"timestamp": 1, "message": "h\u00e9llo  world"}],
        },
    ),
    ("filter_log_events", {"logGroupName": "/aws/lambda/f", "filterPattern": '"ERROR"'}),
]


@pytest.mark.parametrize(("operation", "kwargs"), LOGS_CALLS)
@pytest.mark.parametrize("token", [None, "tok"])
def test_boto3_logs_requests_verify(
    operation: str, kwargs: dict[str, Any], token: str | None, botocore_crs: list[str]
) -> None:
    client, sent = _client("logs", token)
    getattr(client, operation)(**kwargs)
    wire = Wire.of(sent[0])
    assert (wire.method, wire.path, wire.query) == ("POST", "/", "")
    assert wire.headers["x-amz-target"].startswith("Logs_20140328.")
    assert wire.canonical() == botocore_crs[-1]
    principal = SigV4Verifier({KEY.key_id: KEY}).verify(
        wire.method, wire.path, wire.query, wire.headers, wire.body
    )
    assert principal == Principal(KEY.key_id, KEY.account_id, "eu-central-1", "logs")


def test_boto3_tampered_body_fails() -> None:
    client, sent = _client("lambda")
    client.invoke(FunctionName="f", Payload=b'{"amount": 1}')
    wire = Wire.of(sent[0])
    wire.body = b'{"amount": 9}'
    err = auth_error(wire, SigV4Verifier({KEY.key_id: KEY}))
    assert (err.code, err.message) == ("InvalidSignatureException", MISMATCH)


# ----------------------------------------------------------------------------- presigned


@pytest.mark.usefixtures("frozen")
@pytest.mark.parametrize(
    "url",
    [
        ENDPOINT + "/2015-03-31/functions",
        ENDPOINT + "/2015-03-31/functions/?MaxItems=5&Marker=a%20b",
        ENDPOINT + FN_ARN_PATH + "?Qualifier=%24LATEST",
    ],
)
def test_presigned_urls_verify(url: str, botocore_crs: list[str]) -> None:
    wire = presign(url=url)
    assert "X-Amz-Signature=" in wire.query
    assert "authorization" not in wire.headers
    assert wire.canonical(presigned=True) == botocore_crs[-1]
    principal = wire.verify(verifier(clock=NOW_EPOCH + 3000))
    assert principal == Principal(KEY.key_id, KEY.account_id, "eu-west-1", "lambda")


@pytest.mark.usefixtures("frozen")
def test_presigned_with_body_and_session_token(botocore_crs: list[str]) -> None:
    wire = presign(
        "POST",
        ENDPOINT + "/2015-03-31/functions/f/invocations",
        body=b'{"k": 1}',
        creds=Credentials(KEY.key_id, KEY.secret, "tok/en+"),
    )
    assert "X-Amz-Security-Token=tok%2Fen%2B" in wire.query
    assert wire.canonical(presigned=True) == botocore_crs[-1]
    wire.verify()
    wire.body = b'{"k": 2}'
    assert auth_error(wire).message == MISMATCH


@pytest.mark.usefixtures("frozen")
def test_presigned_expiry() -> None:
    wire = presign(expires=60)
    wire.verify(verifier(clock=NOW_EPOCH + 60))
    err = auth_error(wire, verifier(clock=NOW_EPOCH + 61))
    assert err.code == "InvalidSignatureException"
    assert err.message == (
        "Signature expired: 20240301T123045Z is now earlier than 20240301T123046Z "
        "(20240301T123146Z - 60 sec.)"
    )
    err = auth_error(wire, verifier(clock=NOW_EPOCH - 901))
    assert err.code == "InvalidSignatureException"
    assert err.message.startswith("Signature not yet current: 20240301T123045Z is still later than")


@pytest.mark.usefixtures("frozen")
def test_presigned_rejections() -> None:
    wire = presign()
    tampered = Wire("GET", ENDPOINT + "/2015-03-31/functions?" + wire.query + "&Extra=1", {}, b"")
    assert auth_error(tampered).message == MISMATCH

    other_path = Wire("GET", ENDPOINT + "/2015-03-31/functionz?" + wire.query, {}, b"")
    assert auth_error(other_path).message == MISMATCH

    week = presign(expires=604801)
    err = auth_error(week)
    assert (err.code, err.message) == (
        "IncompleteSignatureException",
        "X-Amz-Expires must be less than a week (in seconds) that is 604800",
    )

    partial = Wire("GET", ENDPOINT + "/?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Date=x", {}, b"")
    err = auth_error(partial)
    assert err.code == "IncompleteSignatureException"
    assert err.message == (
        "AWS query-string parameters must include 'X-Amz-Credential'. "
        "AWS query-string parameters must include 'X-Amz-SignedHeaders'. "
        "AWS query-string parameters must include 'X-Amz-Signature'. "
        "Re-examine the query-string parameters."
    )

    unknown = presign(creds=Credentials("NOBODY", "x"))
    err = auth_error(unknown)
    assert err.code == "UnrecognizedClientException"


# ----------------------------------------------------------------------------- errors


def test_missing_authentication_token() -> None:
    v = verifier()
    for query in ("", "X-Amz-Date=20240301T123045Z", "a=1"):
        with pytest.raises(AuthError) as info:
            v.verify("GET", "/2015-03-31/functions", query, {"host": "h"}, b"")
        assert info.value.code == "MissingAuthenticationTokenException"
        assert info.value.message == "Missing Authentication Token"
        assert info.value.status == 403


def _with_auth(value: str, **headers: str) -> Wire:
    hdrs = {"Authorization": value, "X-Amz-Date": AMZ_NOW, **headers}
    return Wire("POST", ENDPOINT + "/", hdrs, b"")


CRED = f"{KEY.key_id}/20240301/us-east-1/lambda/aws4_request"


@pytest.mark.parametrize(
    ("auth", "message"),
    [
        (
            "eyJhbGciOiJIUzI1NiJ9.e30.sig",
            "Authorization header requires 'Credential' parameter. "
            "Authorization header requires 'Signature' parameter. "
            "Authorization header requires 'SignedHeaders' parameter. "
            "Authorization=eyJhbGciOiJIUzI1NiJ9.e30.sig",
        ),
        ("Bearer eyJhbGciOiJIUzI1NiJ9", "Unsupported AWS 'algorithm': 'Bearer'."),
        (
            f"AWS4-HMAC-SHA256 Credential={CRED}",
            "Authorization header requires 'Signature' parameter. "
            "Authorization header requires 'SignedHeaders' parameter. "
            f"Authorization=AWS4-HMAC-SHA256 Credential={CRED}",
        ),
        (
            "AWS4-HMAC-SHA256 Credential=AKID /20240301/us-east-1/lambda/aws4_request, "
            "SignedHeaders=host, Signature=00",
            "'/20240301/us-east-1/lambda/aws4_request' not a valid key=value pair (missing "
            "equal-sign) in Authorization header: 'AWS4-HMAC-SHA256 Credential=AKID "
            "/20240301/us-east-1/lambda/aws4_request, SignedHeaders=host, Signature=00'.",
        ),
        (
            f"AWS4-HMAC-SHA512 Credential={CRED}, SignedHeaders=host, Signature=00",
            "Unsupported AWS 'algorithm': 'AWS4-HMAC-SHA512'.",
        ),
        (
            "AWS4-HMAC-SHA256 Credential=AKID/20240301/us-east-1, SignedHeaders=host, Signature=0",
            "Credential must have exactly 5 slash-delimited elements, e.g. "
            "keyid/date/region/service/term, got 'AKID/20240301/us-east-1'",
        ),
        (
            f"AWS4-HMAC-SHA256 Credential={CRED}, SignedHeaders=x-amz-date, Signature=00",
            "'Host' must be a 'SignedHeader' in the AWS Authorization.",
        ),
    ],
)
def test_incomplete_signature(auth: str, message: str) -> None:
    err = auth_error(_with_auth(auth))
    assert (err.code, err.message, err.status) == ("IncompleteSignatureException", message, 403)


def test_missing_date_header_is_incomplete() -> None:
    auth = f"AWS4-HMAC-SHA256 Credential={CRED}, SignedHeaders=host, Signature=00"
    wire = Wire("POST", ENDPOINT + "/", {"Authorization": auth}, b"")
    err = auth_error(wire)
    assert err.code == "IncompleteSignatureException"
    assert err.message == (
        "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header. "
        f"Authorization={auth}"
    )


@pytest.mark.parametrize(
    "amz_date", ["2024-03-01T12:30:45Z", "20240301T123045", "20241301T000000Z"]
)
def test_malformed_x_amz_date(amz_date: str) -> None:
    auth = f"AWS4-HMAC-SHA256 Credential={CRED}, SignedHeaders=host, Signature=00"
    err = auth_error(_with_auth(auth, **{"X-Amz-Date": amz_date}))
    assert err.code == "IncompleteSignatureException"
    assert err.message == (
        f"Date must be in ISO-8601 'basic format'. Got '{amz_date}'. "
        "See http://en.wikipedia.org/wiki/ISO_8601"
    )


def test_credential_scope_problems() -> None:
    bad_term = f"AWS4-HMAC-SHA256 Credential={CRED[:-1]}, SignedHeaders=host, Signature=00"
    err = auth_error(_with_auth(bad_term))
    assert (err.code, err.message) == (
        "InvalidSignatureException",
        "Credential should be scoped with a valid terminator: 'aws4_request', not 'aws4_reques'.",
    )
    other_day = CRED.replace("20240301", "20240229")
    err = auth_error(
        _with_auth(f"AWS4-HMAC-SHA256 Credential={other_day}, SignedHeaders=host, Signature=00")
    )
    assert (err.code, err.message) == (
        "InvalidSignatureException",
        "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from "
        "HTTP: '20240229' != '20240301', from '20240301T123045Z'.",
    )


@pytest.mark.usefixtures("frozen")
def test_unrecognized_client() -> None:
    wire = sign(creds=Credentials("AKIDUNKNOWN", KEY.secret))
    err = auth_error(wire)
    assert (err.code, err.message, err.status) == (
        "UnrecognizedClientException",
        "The security token included in the request is invalid.",
        403,
    )


@pytest.mark.usefixtures("frozen")
def test_invalid_signature_cases() -> None:
    def fails(wire: Wire) -> None:
        err = auth_error(wire)
        assert (err.code, err.message, err.status) == ("InvalidSignatureException", MISMATCH, 403)

    fails(sign(creds=Credentials(KEY.key_id, "wrong secret")))
    base = sign(url=ENDPOINT + FN_ARN_PATH + "?Qualifier=1", headers={"X-Custom": "v"})
    base.verify()
    tampered: list[tuple[str, object]] = [
        ("method", "PUT"),
        ("path", FN_ARN_PATH.replace("%3A", ":")),
        ("path", FN_ARN_PATH + "/"),
        ("query", "Qualifier=2"),
        ("query", ""),
        ("body", b"{} "),
    ]
    for attr, changed in tampered:
        kept = getattr(base, attr)
        setattr(base, attr, changed)
        fails(base)
        setattr(base, attr, kept)
    header_changes: list[tuple[str, str | None]] = [
        ("x-custom", "w"),
        ("host", "evil:9001"),
        ("x-custom", None),
    ]
    for header, new_value in header_changes:
        kept_value = base.headers[header]
        if new_value is None:
            del base.headers[header]
        else:
            base.headers[header] = new_value
        fails(base)
        base.headers[header] = kept_value
    base.verify()
    base.headers["authorization"] = base.headers["authorization"][:-2] + "\u00e9\u00e9"
    fails(base)
    fresh = sign(url=ENDPOINT + FN_ARN_PATH + "?Qualifier=1", headers={"X-Custom": "v"})
    fresh.headers["x-unsigned"] = "anything"  # unsigned headers do not matter
    fresh.verify()


@pytest.mark.usefixtures("frozen")
def test_clock_skew_messages() -> None:
    wire = sign()
    wire.verify(verifier(clock=NOW_EPOCH + 900))
    wire.verify(verifier(clock=NOW_EPOCH - 900))

    err = auth_error(wire, verifier(clock=NOW_EPOCH + 901))
    assert (err.code, err.message, err.status) == (
        "InvalidSignatureException",
        "Signature expired: 20240301T123045Z is now earlier than 20240301T123046Z "
        "(20240301T124546Z - 15 min.)",
        403,
    )
    err = auth_error(wire, verifier(clock=NOW_EPOCH - 901))
    assert (err.code, err.message) == (
        "InvalidSignatureException",
        "Signature not yet current: 20240301T123045Z is still later than 20240301T123044Z "
        "(20240301T121544Z + 15 min.)",
    )


@pytest.mark.usefixtures("frozen")
def test_clock_skew_applies_to_date_header() -> None:
    wire = sign(headers={"Date": "x"})
    err = auth_error(wire, verifier(clock=NOW_EPOCH + 3600))
    assert err.message.startswith("Signature expired: 20240301T123045Z is now earlier than")


@pytest.mark.usefixtures("frozen")
def test_configurable_skew() -> None:
    wire = sign()
    v = SigV4Verifier({KEY.key_id: KEY}, clock=lambda: NOW_EPOCH + 301, max_skew_seconds=300)
    err = auth_error(wire, v)
    assert err.message.endswith("(20240301T123546Z - 5 min.)")


# ----------------------------------------------------------------------------- caching


@pytest.mark.usefixtures("frozen")
def test_signing_key_cache_and_secret_rotation() -> None:
    keys = {KEY.key_id: KEY}
    v = SigV4Verifier(keys, clock=lambda: NOW_EPOCH)
    wire = sign()
    wire.verify(v)
    wire.verify(v)
    assert len(v._signers) == 1
    # Rotating the secret in place invalidates the cached key.
    keys[KEY.key_id] = AccessKey(KEY.key_id, "rotated", KEY.account_id)
    assert auth_error(wire, v).message == MISMATCH
    rotated = sign(creds=Credentials(KEY.key_id, "rotated"))
    rotated.verify(v)


@pytest.mark.usefixtures("frozen")
def test_caches_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sigv4, "_CACHE_LIMIT", 4)
    v = verifier()
    for i in range(10):
        sign(url=f"{ENDPOINT}/p{i}", region=f"r-{i}").verify(v)
        assert len(v._signers) <= 4
        assert len(v._paths) <= 4


# ----------------------------------------------------------------------------- keys


def test_default_test_key() -> None:
    assert AccessKey("test", "test", "000000000000") == DEFAULT_TEST_KEY
    assert "s3cr3t" not in repr(AccessKey("k", "s3cr3t", "000000000000"))


def test_load_access_keys_from_env() -> None:
    env = {"HEARTH_ACCESS_KEYS": " AK1:sec/ret+1:111111111111, AK2:a:b:c:222222222222,"}
    keys = load_access_keys(env, None)
    assert keys == {
        "AK1": AccessKey("AK1", "sec/ret+1", "111111111111"),
        "AK2": AccessKey("AK2", "a:b:c", "222222222222"),
    }
    assert load_access_keys({}, None) == {}
    assert load_access_keys({"HEARTH_ACCESS_KEYS": ""}, None) == {}


@pytest.mark.parametrize(
    "value",
    [
        "AK1:secret:12345",
        "AK1:secret:1234567890123",
        "AK1:secret:12345678901x",
        "AK1:secret",
        "AK1",
        ":secret:111111111111",
        "AK1::111111111111",
        "A/K:secret:111111111111",
    ],
)
def test_load_access_keys_rejects_bad_env(value: str) -> None:
    with pytest.raises(ValueError):
        load_access_keys({"HEARTH_ACCESS_KEYS": value}, None)


def test_load_access_keys_from_file(tmp_path: Any) -> None:
    path = tmp_path / "keys.json"
    path.write_text(
        json.dumps(
            {"access_keys": [{"key_id": "F1", "secret": "s1", "account_id": "333333333333"}]}
        )
    )
    env = {"HEARTH_ACCESS_KEYS": "E1:s2:444444444444,F1:s1:333333333333"}
    keys = load_access_keys(env, str(path))
    assert keys == {
        "F1": AccessKey("F1", "s1", "333333333333"),
        "E1": AccessKey("E1", "s2", "444444444444"),
    }
    with pytest.raises(ValueError, match="defined twice"):
        load_access_keys({"HEARTH_ACCESS_KEYS": "F1:other:333333333333"}, str(path))


@pytest.mark.parametrize(
    "doc",
    [
        "not json",
        "[]",
        '{"access_keys": {}}',
        '{"access_keys": [1]}',
        '{"access_keys": [{"key_id": "K", "secret": "s"}]}',
        '{"access_keys": [{"key_id": "K", "secret": "s", "account_id": 123456789012}]}',
        '{"access_keys": [{"key_id": "K", "secret": "s", "account_id": "1234"}]}',
    ],
)
def test_load_access_keys_rejects_bad_file(doc: str, tmp_path: Any) -> None:
    path = tmp_path / "keys.json"
    path.write_text(doc)
    with pytest.raises(ValueError):
        load_access_keys({}, str(path))


def test_load_access_keys_missing_file(tmp_path: Any) -> None:
    with pytest.raises(ValueError, match="cannot read"):
        load_access_keys({}, str(tmp_path / "nope.json"))


def test_configured_keys_drive_the_verifier() -> None:
    keys = load_access_keys({"HEARTH_ACCESS_KEYS": "test:test:000000000000"}, None)
    client, sent = _client("lambda", key=DEFAULT_TEST_KEY)
    client.list_functions()
    wire = Wire.of(sent[0])
    principal = SigV4Verifier(keys).verify(
        wire.method, wire.path, wire.query, wire.headers, wire.body
    )
    assert principal.account_id == "000000000000"


# ----------------------------------------------------------------------------- internals


def test_precomputed_hmac_equals_hmac_new() -> None:
    import hashlib
    import hmac

    signer = sigv4._Signer.derive(
        KEY, "20240301/us-east-1/lambda/aws4_request", "us-east-1", "lambda"
    )
    k = hmac.new(f"AWS4{KEY.secret}".encode(), b"20240301", hashlib.sha256).digest()
    for part in (b"us-east-1", b"lambda", b"aws4_request"):
        k = hmac.new(k, part, hashlib.sha256).digest()
    for message in ("", "x", "AWS4-HMAC-SHA256\n" * 20, "\u00fc" * 100):
        assert signer.sign(message) == hmac.new(k, message.encode(), hashlib.sha256).hexdigest()
        assert signer.sign(message) == signer.sign(message)  # the cached state is not consumed


@pytest.mark.usefixtures("frozen")
@pytest.mark.parametrize(
    "reshape",
    [
        lambda a: a.replace(", ", ","),  # components separated by commas only
        lambda a: a.replace(", ", " "),  # ... or by whitespace only
        lambda a: a.replace(", ", " ,  ") + "  ",
    ],
)
def test_authorization_header_variants_take_the_general_parser(reshape: Any) -> None:
    wire = sign()
    wire.headers["authorization"] = reshape(wire.headers["authorization"])
    wire.verify()


@pytest.mark.usefixtures("frozen")
def test_signature_with_non_ascii_or_wrong_length_is_a_mismatch() -> None:
    for signature in ("\u00e9" * 64, "ab", "0" * 64):
        wire = sign()
        auth = wire.headers["authorization"]
        wire.headers["authorization"] = auth[: auth.index("Signature=") + 10] + signature
        assert auth_error(wire).message == MISMATCH
