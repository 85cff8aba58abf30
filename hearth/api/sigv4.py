"""AWS Signature Version 4 verification for incoming requests.

Why this is hand-rolled: the check runs on every invoke. Rebuilding an ``AWSRequest`` and
running botocore's ``SigV4Auth`` costs ~38 µs per request; this module does the same work with
``hashlib``/``hmac`` and a cached signing key in a few µs (see
``/work/shared/research/hotpath-floor.md`` and ``benchmarks/bench_sigv4.py``). The price of
hand-rolling is the risk of canonicalising differently from the SDKs, so
``tests/unit/test_sigv4.py`` signs requests with botocore itself (``SigV4Auth``,
``SigV4QueryAuth`` and real ``boto3`` clients) and asserts both that they verify and that
:func:`canonical_request` is byte-identical to botocore's ``canonical_request``.

What is reproduced, rule by rule, from ``botocore.auth.SigV4Auth`` (non-S3 flavour):

* path: ``remove_dot_segments`` (which also collapses ``//``) and then
  ``quote(path, safe="/~")`` applied to the path *as it went on the wire*, i.e. the already
  percent-encoded path is encoded a second time (``%3A`` becomes ``%253A``);
* query: the raw ``k=v`` pairs split on ``&``, sorted as strings, re-joined. The values stay
  encoded exactly as sent (botocore's ``_canonical_query_string_url``). A request that
  ``AWSRequest`` built from a ``params`` dict went on the wire with ``urlencode`` (``+`` for
  space) but was signed with ``%20``; that form is tried as a fallback, only after the primary
  form failed, so the hot path never pays for it;
* headers: the names listed in ``SignedHeaders``, each value trimmed and with runs of
  whitespace collapsed (``" ".join(value.split())``);
* payload: the ``X-Amz-Content-SHA256`` header verbatim when present, else SHA-256 of the body.

Limits, deliberately: the verifier only sees the wire. A client whose HTTP layer rewrote the
path or query after signing (urllib3 percent-encodes a raw space or non-ASCII character in an
``AWSRequest`` URL) cannot be verified by this or any AWS endpoint; every request a boto3 client
produces is already encoded and is unaffected. Non-ASCII characters in ``raw_path``,
``raw_query`` or header values are taken to be wire bytes decoded as latin-1, which is what
``hearth.api.http`` does. Chunked ``STREAMING-*`` payloads (an S3 feature) are refused.

Hot-path costs are memoised per verifier, each table bounded (cleared when full): the parsed
credential scope and derived signing key per credential (kept as pre-padded HMAC state, with
the :class:`Principal` to return), the canonical path per raw path, and the epoch per
``X-Amz-Date``. The SDKs' exact ``Authorization`` layout is split without a general parser.

Error codes and messages are the ones AWS's front end sends for Lambda and CloudWatch Logs
(``x-amzn-ErrorType`` / ``__type``): ``MissingAuthenticationTokenException``,
``IncompleteSignatureException`` (malformed header, date or presign parameters),
``UnrecognizedClientException`` (unknown key id) and ``InvalidSignatureException`` (mismatch,
clock skew, expired presigned URL, bad scope). The tests pin each message.
"""

from __future__ import annotations

import calendar
import hashlib
import hmac
import time
from collections.abc import Callable, Mapping
from email.utils import parsedate_tz
from urllib.parse import parse_qsl, quote, unquote, unquote_to_bytes

from hearth.api.keys import AccessKey
from hearth.api.session_keys import SessionKeys
from hearth.api.types import Principal
from hearth.errors import AuthError

__all__ = [
    "MAX_PRESIGN_EXPIRES",
    "SigV4Verifier",
    "canonical_path",
    "canonical_query",
    "canonical_request",
]

ALGORITHM = "AWS4-HMAC-SHA256"
UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD"
#: A presigned URL may live at most a week (the lifetime of a SigV4 signing key's scope).
MAX_PRESIGN_EXPIRES = 604800

_MSG_MISSING = "Missing Authentication Token"
_MSG_UNKNOWN_KEY = "The security token included in the request is invalid."
_MSG_MISMATCH = (
    "The request signature we calculated does not match the signature you provided. "
    "Check your AWS Secret Access Key and signing method. "
    "Consult the service documentation for details."
)
_MSG_CONTENT_SHA = "The provided 'x-amz-content-sha256' header does not match what was computed."

_MISSING_TOKEN = "MissingAuthenticationTokenException"
_INCOMPLETE = "IncompleteSignatureException"
_INVALID_SIGNATURE = "InvalidSignatureException"
_UNRECOGNIZED = "UnrecognizedClientException"

_PRESIGN_PARAMS = (
    "X-Amz-Algorithm",
    "X-Amz-Credential",
    "X-Amz-Date",
    "X-Amz-SignedHeaders",
    "X-Amz-Signature",
)

#: Bound on each memo table; a full table is simply cleared (cheap, and a working set of a
#: few keys x regions x services x days, or of hot paths, refills it in one request each).
_CACHE_LIMIT = 4096


# --------------------------------------------------------------------------- canonical form


def _wire_text(s: str) -> str:
    """Undo the server's latin-1 decoding of non-ASCII wire bytes, reading them as UTF-8.

    botocore signs ``str`` values and hashes them as UTF-8; the server hands us wire bytes
    decoded as latin-1. Re-reading those bytes as UTF-8 restores the string the signer saw.
    Strings that are not latin-1 round-trippable or not UTF-8 are returned unchanged (they
    then simply fail to verify).
    """
    try:
        return s.encode("latin-1").decode("utf-8")
    except UnicodeError:
        return s


def _remove_dot_segments(path: str) -> str:
    # Same algorithm as botocore.utils.remove_dot_segments: RFC 3986 5.2.4 plus the AWS
    # rule that empty segments ("//") disappear.
    if not path:
        return "/"
    output: list[str] = []
    for segment in path.split("/"):
        if segment and segment != ".":
            if segment == "..":
                if output:
                    output.pop()
            else:
                output.append(segment)
    first = "/" if path[0] == "/" else ""
    last = "/" if path[-1] == "/" and output else ""
    return first + "/".join(output) + last


def canonical_path(raw_path: str) -> str:
    """The canonical URI botocore's ``SigV4Auth`` signs for a request with this wire path."""
    if not raw_path.isascii():
        raw_path = _wire_text(raw_path)
    return quote(_remove_dot_segments(raw_path), safe="/~")


def _join_sorted(pairs: list[tuple[str, str]]) -> str:
    pairs.sort()
    return "&".join([f"{k}={v}" for k, v in pairs])


def _raw_pairs(raw_query: str, drop: str | None) -> list[tuple[str, str]]:
    pairs = []
    for pair in raw_query.split("&"):
        key, _, value = pair.partition("=")
        if key != drop:
            pairs.append((key, value))
    return pairs


def canonical_query(raw_query: str, *, drop: str | None = None) -> str:
    """botocore's canonical query for a URL carrying ``raw_query``.

    Same rules as botocore's ``_canonical_query_string_url``: the pairs are sorted and
    re-joined but not re-encoded. ``drop`` removes every pair with that (raw) key; presigned
    requests drop ``X-Amz-Signature``.
    """
    if not raw_query:
        return ""
    if not raw_query.isascii():
        raw_query = _wire_text(raw_query)
    return _join_sorted(_raw_pairs(raw_query, drop))


def _canonical_query_reencoded(raw_query: str, drop: str | None) -> str:
    """The canonical query for a request ``AWSRequest`` built from a ``params`` dict.

    Those go on the wire through ``urlencode`` (``quote_plus``) but are signed with each key
    and value encoded by ``quote(safe="-_.~")``; decoding with ``+`` as space and re-encoding
    recovers the signed form exactly (bytes, so no UTF-8 round-trip loss).
    """
    if not raw_query.isascii():
        raw_query = _wire_text(raw_query)
    pairs = []
    for key, value in _raw_pairs(raw_query, drop):
        pairs.append(
            (
                quote(unquote_to_bytes(key.replace("+", " ")), safe="-_.~"),
                quote(unquote_to_bytes(value.replace("+", " ")), safe="-_.~"),
            )
        )
    return _join_sorted(pairs)


def canonical_request(
    method: str,
    path: str,
    query: str,
    signed_headers: str,
    headers: Mapping[str, str],
    payload_hash: str,
) -> str:
    """Assemble the canonical request from an already canonical path and query.

    ``signed_headers`` is the ``;``-separated list exactly as the client sent it; its order
    is the order of the canonical header block (botocore always sends it sorted).
    """
    lines = []
    for name in signed_headers.split(";"):
        value = headers.get(name)
        if value:
            if not value.isascii():
                value = _wire_text(value)
            # Trimall: outer whitespace removed, inner runs collapsed to one space.
            lines.append(f"{name}:{' '.join(value.split())}")
        else:
            lines.append(f"{name}:")
    return (
        f"{method.upper()}\n{path}\n{query}\n"
        + "\n".join(lines)
        + f"\n\n{signed_headers}\n{payload_hash}"
    )


# --------------------------------------------------------------------------- timestamps


def _format_basic(epoch: float) -> str:
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(epoch))


def _bad_date(value: str) -> AuthError:
    return AuthError(
        f"Date must be in ISO-8601 'basic format'. Got '{value}'. "
        "See http://en.wikipedia.org/wiki/ISO_8601",
        code=_INCOMPLETE,
    )


def _date_header_to_basic(value: str) -> str:
    """An RFC 1123 ``Date`` header as the ISO 8601 basic timestamp botocore signed with it."""
    parsed = parsedate_tz(value)
    if parsed is None:
        raise _bad_date(value)
    offset = parsed[9] or 0
    try:
        epoch = calendar.timegm(parsed[:6]) - offset
    except (ValueError, OverflowError):
        raise _bad_date(value) from None
    return _format_basic(epoch)


# --------------------------------------------------------------------------- the verifier


class SigV4Verifier:
    """Verifies SigV4-signed requests (``Authorization`` header or presigned query string).

    ``keys`` maps access key id to :class:`AccessKey`; it is read on every request, so a
    caller may swap entries in place (a changed secret invalidates the cached signing key).
    ``clock`` returns the current epoch time. Requests whose timestamp is more than
    ``max_skew_seconds`` away from ``clock()`` are refused, as AWS does (15 minutes).

    Not thread-safe in the strict sense, but the only shared state is memo dicts whose worst
    case under a race is a recomputation; the server calls it from one event loop anyway.
    """

    def __init__(
        self,
        keys: Mapping[str, AccessKey],
        *,
        clock: Callable[[], float] = time.time,
        max_skew_seconds: int = 900,
    ) -> None:
        self._keys = keys
        self.sessions: SessionKeys | None = None
        """Temporary credentials of functions, accepted beside ``keys`` when set."""
        self._clock = clock
        self._max_skew = max_skew_seconds
        # All memo tables are bounded by _CACHE_LIMIT and cleared when full.
        # credential ("KEYID/date/region/service/aws4_request") -> parsed scope
        self._scopes: dict[str, tuple[str, str, str, str]] = {}
        # credential -> signing key state for the AccessKey it was derived from
        self._signers: dict[str, _Signer] = {}
        # raw path -> canonical path
        self._paths: dict[str, str] = {}
        # "YYYYMMDDTHHMMSSZ" -> epoch seconds
        self._stamps: dict[str, int] = {}

    # ------------------------------------------------------------------ public

    def verify(
        self,
        method: str,
        raw_path: str,
        raw_query: str,
        headers: Mapping[str, str],
        body: bytes,
    ) -> Principal:
        """Return who signed the request, or raise :class:`AuthError`.

        Errors are 403 with the AWS code and message (see the module docstring), except a
        body contradicting its signed ``X-Amz-Content-SHA256``, which is 400.

        ``raw_path`` is the path exactly as on the wire (still percent-encoded, no query),
        ``raw_query`` the query without ``?``, ``headers`` lower-cased names with repeated
        headers joined by ``,``. The returned principal carries the region and service of
        the credential scope as signed; checking the service is the router's job.
        """
        auth = headers.get("authorization")
        if auth is not None:
            return self._verify_header(method, raw_path, raw_query, headers, body, auth)
        if "X-Amz-" in raw_query:
            params = self._presign_params(raw_query)
            if params:
                return self._verify_presigned(method, raw_path, raw_query, headers, body, params)
        raise AuthError(_MSG_MISSING, code=_MISSING_TOKEN)

    # ------------------------------------------------------------------ header auth

    def _verify_header(
        self,
        method: str,
        raw_path: str,
        raw_query: str,
        headers: Mapping[str, str],
        body: bytes,
        auth: str,
    ) -> Principal:
        credential, signed_headers, signature = _parse_authorization(auth, headers)
        amz_date = headers.get("x-amz-date")
        if amz_date is None:
            # _parse_authorization guarantees one of the two is present.
            amz_date = _date_header_to_basic(headers["date"])
        epoch = self._epoch(amz_date)
        key_id, scope, region, service = self._scope(credential, amz_date)
        now = self._clock()
        if epoch < now - self._max_skew:
            raise AuthError(
                f"Signature expired: {amz_date} is now earlier than "
                f"{_format_basic(now - self._max_skew)} "
                f"({_format_basic(now)} - {self._max_skew // 60} min.)",
                code=_INVALID_SIGNATURE,
            )
        if epoch > now + self._max_skew:
            raise AuthError(
                f"Signature not yet current: {amz_date} is still later than "
                f"{_format_basic(now + self._max_skew)} "
                f"({_format_basic(now)} + {self._max_skew // 60} min.)",
                code=_INVALID_SIGNATURE,
            )
        return self._check(
            credential, key_id, scope, region, service, amz_date, signature,
            method, raw_path, raw_query, None, signed_headers, headers, body,
        )  # fmt: skip

    # ------------------------------------------------------------------ presigned

    @staticmethod
    def _presign_params(raw_query: str) -> dict[str, str]:
        """The (decoded) ``X-Amz-*`` auth parameters of a query string, if it has any."""
        params: dict[str, str] = {}
        for pair in raw_query.split("&"):
            if pair.startswith("X-Amz-"):
                key, _, value = pair.partition("=")
                params[key] = unquote(value)
        if "X-Amz-Algorithm" not in params and "X-Amz-Signature" not in params:
            return {}
        return params

    def _verify_presigned(
        self,
        method: str,
        raw_path: str,
        raw_query: str,
        headers: Mapping[str, str],
        body: bytes,
        params: dict[str, str],
    ) -> Principal:
        missing = [name for name in _PRESIGN_PARAMS if not params.get(name)]
        if missing:
            raise AuthError(
                " ".join(f"AWS query-string parameters must include '{name}'." for name in missing)
                + " Re-examine the query-string parameters.",
                code=_INCOMPLETE,
            )
        algorithm = params["X-Amz-Algorithm"]
        if algorithm != ALGORITHM:
            raise AuthError(f"Unsupported AWS 'algorithm': '{algorithm}'.", code=_INCOMPLETE)
        amz_date = params["X-Amz-Date"]
        credential = params["X-Amz-Credential"]
        signed_headers = params["X-Amz-SignedHeaders"]
        if "host" not in signed_headers.split(";"):
            raise AuthError(
                "'Host' must be a 'SignedHeader' in the AWS Authorization.", code=_INCOMPLETE
            )
        epoch = self._epoch(amz_date)
        key_id, scope, region, service = self._scope(credential, amz_date)
        now = self._clock()
        expires_text = params.get("X-Amz-Expires")
        if expires_text is not None:
            if not (expires_text.isascii() and expires_text.isdigit()):
                raise AuthError("X-Amz-Expires should be a number", code=_INCOMPLETE)
            expires = int(expires_text)
            if expires > MAX_PRESIGN_EXPIRES:
                raise AuthError(
                    "X-Amz-Expires must be less than a week (in seconds) that is 604800",
                    code=_INCOMPLETE,
                )
        else:
            expires = self._max_skew
        if now > epoch + expires:
            raise AuthError(
                f"Signature expired: {amz_date} is now earlier than "
                f"{_format_basic(now - expires)} ({_format_basic(now)} - {expires} sec.)",
                code=_INVALID_SIGNATURE,
            )
        if epoch > now + self._max_skew:
            raise AuthError(
                f"Signature not yet current: {amz_date} is still later than "
                f"{_format_basic(now + self._max_skew)} "
                f"({_format_basic(now)} + {self._max_skew // 60} min.)",
                code=_INVALID_SIGNATURE,
            )
        return self._check(
            credential, key_id, scope, region, service, amz_date, params["X-Amz-Signature"],
            method, raw_path, raw_query, "X-Amz-Signature", signed_headers, headers, body,
        )  # fmt: skip

    # ------------------------------------------------------------------ shared

    def _scope(self, credential: str, amz_date: str) -> tuple[str, str, str, str]:
        """``(key_id, scope, region, service)`` of a credential (memoised _split_credential).

        Also checks the scope's date against the request timestamp, as AWS does.
        """
        parsed = self._scopes.get(credential)
        if parsed is None:
            parsed = _split_credential(credential)
            if len(self._scopes) >= _CACHE_LIMIT:
                self._scopes.clear()
            self._scopes[credential] = parsed
        date = parsed[1][:8]
        if not amz_date.startswith(date):
            raise AuthError(
                "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date "
                f"from HTTP: '{date}' != '{amz_date[:8]}', from '{amz_date}'.",
                code=_INVALID_SIGNATURE,
            )
        return parsed

    def _check(
        self,
        credential: str,
        key_id: str,
        scope: str,
        region: str,
        service: str,
        amz_date: str,
        signature: str,
        method: str,
        raw_path: str,
        raw_query: str,
        drop: str | None,
        signed_headers: str,
        headers: Mapping[str, str],
        body: bytes,
    ) -> Principal:
        key = self._keys.get(key_id)
        if key is None and self.sessions is not None:
            # A function's temporary credentials (hearth.api.session_keys): valid only
            # with their session token, signed or presigned like any other.
            token = headers.get("x-amz-security-token")
            if token is None and "X-Amz-Security-Token" in raw_query:
                token = dict(parse_qsl(raw_query)).get("X-Amz-Security-Token")
            key = self.sessions.resolve(key_id, token)
        if key is None:
            raise AuthError(_MSG_UNKNOWN_KEY, code=_UNRECOGNIZED)

        payload_hash = headers.get("x-amz-content-sha256")
        if payload_hash is None:
            payload_hash = hashlib.sha256(body).hexdigest()
        elif payload_hash != UNSIGNED_PAYLOAD and not hmac.compare_digest(
            payload_hash.encode("utf-8"), hashlib.sha256(body).hexdigest().encode()
        ):
            # A signed hash that is not the body's would let the body be swapped under a
            # valid signature (S3's XAmzContentSHA256Mismatch; Lambda has no code of its own).
            raise AuthError(_MSG_CONTENT_SHA, code="XAmzContentSHA256Mismatch", status=400)

        path = self._paths.get(raw_path)
        if path is None:
            path = canonical_path(raw_path)
            if len(self._paths) >= _CACHE_LIMIT:
                self._paths.clear()
            self._paths[raw_path] = path
        query = canonical_query(raw_query, drop=drop)

        signer = self._signers.get(credential)
        if signer is None or not (signer.key is key or signer.key == key):
            # New scope, or the key behind this key id changed (rotated secret or account).
            signer = _Signer.derive(key, scope, region, service)
            if len(self._signers) >= _CACHE_LIMIT:
                self._signers.clear()
            self._signers[credential] = signer
        prefix = f"{ALGORITHM}\n{amz_date}\n{scope}\n"
        cr = canonical_request(method, path, query, signed_headers, headers, payload_hash)
        if signer.matches(prefix, cr, signature):
            return signer.principal
        if raw_query:
            alt = _canonical_query_reencoded(raw_query, drop)
            if alt != query:
                cr = canonical_request(method, path, alt, signed_headers, headers, payload_hash)
                if signer.matches(prefix, cr, signature):
                    return signer.principal
        raise AuthError(_MSG_MISMATCH, code=_INVALID_SIGNATURE)

    def _epoch(self, amz_date: str) -> int:
        """Epoch seconds of a ``YYYYMMDDTHHMMSSZ`` stamp, memoised: no ``strptime`` per call."""
        epoch = self._stamps.get(amz_date)
        if epoch is None:
            epoch = _parse_basic(amz_date)
            if len(self._stamps) >= _CACHE_LIMIT:
                self._stamps.clear()
            self._stamps[amz_date] = epoch
        return epoch


# HMAC pads, as in the hmac module.
_TRANS_5C = bytes(x ^ 0x5C for x in range(256))
_TRANS_36 = bytes(x ^ 0x36 for x in range(256))


class _Signer:
    """A derived SigV4 signing key, kept as pre-padded HMAC-SHA256 state.

    HMAC(k, m) = H((k ^ opad) || H((k ^ ipad) || m)). Copying two SHA-256 objects that have
    already absorbed the padded key costs a fraction of ``hmac.new``, which re-derives the
    pads on every call; the result is the same RFC 2104 HMAC (the tests compare it).
    """

    __slots__ = ("_inner", "_outer", "key", "principal")

    def __init__(self, key: AccessKey, signing_key: bytes, principal: Principal) -> None:
        padded = signing_key.ljust(64, b"\0")  # a signing key is 32 bytes < the block size
        self._inner = hashlib.sha256(padded.translate(_TRANS_36))
        self._outer = hashlib.sha256(padded.translate(_TRANS_5C))
        #: the key this was derived from; a different key for the same id invalidates it
        self.key = key
        #: returned for every request this signer verifies (immutable, so shared)
        self.principal = principal

    @classmethod
    def derive(cls, key: AccessKey, scope: str, region: str, service: str) -> _Signer:
        date, _, _, terminator = scope.split("/")
        k = _hmac(f"AWS4{key.secret}".encode(), date)
        k = _hmac(k, region)
        k = _hmac(k, service)
        k = _hmac(k, terminator)
        return cls(key, k, Principal(key.key_id, key.account_id, region, service))

    def sign(self, string_to_sign: str) -> str:
        """Hex HMAC-SHA256 of ``string_to_sign`` under the signing key."""
        inner = self._inner.copy()
        inner.update(string_to_sign.encode("utf-8"))
        outer = self._outer.copy()
        outer.update(inner.digest())
        return outer.hexdigest()

    def matches(self, prefix: str, cr: str, signature: str) -> bool:
        expected = self.sign(prefix + hashlib.sha256(cr.encode("utf-8")).hexdigest())
        # compare_digest refuses non-ASCII str; such a signature cannot match a hex digest.
        return signature.isascii() and hmac.compare_digest(expected, signature)


def _hmac(key: bytes, msg: str) -> bytes:
    return hmac.new(key, msg.encode("utf-8"), hashlib.sha256).digest()


def _parse_basic(amz_date: str) -> int:
    """Epoch seconds of an ISO 8601 basic timestamp; IncompleteSignature if malformed."""
    if (
        len(amz_date) != 16
        or amz_date[8] != "T"
        or amz_date[15] != "Z"
        or not amz_date.isascii()
        or not amz_date[:8].isdigit()
        or not amz_date[9:15].isdigit()
    ):
        raise _bad_date(amz_date)
    try:
        midnight = calendar.timegm(time.strptime(amz_date[:8], "%Y%m%d"))
    except ValueError:
        raise _bad_date(amz_date) from None
    hours, minutes, seconds = int(amz_date[9:11]), int(amz_date[11:13]), int(amz_date[13:15])
    if hours > 23 or minutes > 59 or seconds > 60:
        raise _bad_date(amz_date)
    return midnight + hours * 3600 + minutes * 60 + seconds


_BOTOCORE_PREFIX = ALGORITHM + " Credential="


def _parse_authorization(auth: str, headers: Mapping[str, str]) -> tuple[str, str, str]:
    """``(credential, signed_headers, signature)`` of an ``AWS4-HMAC-SHA256`` header.

    Mirrors the AWS front end's checks and messages: a missing component or date header is
    reported all at once, a stray token without ``=`` as "not a valid key=value pair", and a
    scheme other than ``AWS4-HMAC-SHA256`` as an unsupported algorithm. A header that is a
    single token (e.g. a bare JWT) has no scheme and reports the missing components.
    """
    if auth.startswith(_BOTOCORE_PREFIX):
        # Fast path for the exact shape every AWS SDK sends:
        # "AWS4-HMAC-SHA256 Credential=C, SignedHeaders=H, Signature=S".
        credential, _, rest = auth[len(_BOTOCORE_PREFIX) :].partition(", SignedHeaders=")
        signed_headers, sep2, signature = rest.partition(", Signature=")
        # The separator counts prove no component contains " ", "," or "=" of its own.
        if (
            sep2
            and credential
            and signed_headers
            and signature
            and auth.count(" ") == 3
            and auth.count(",") == 2
            and auth.count("=") == 3
            and ("x-amz-date" in headers or "date" in headers)
            and "host" in signed_headers.split(";")
        ):
            return credential, signed_headers, signature
    algorithm, _, rest = auth.strip().partition(" ")
    fields: dict[str, str] = {}
    if rest:
        if algorithm != ALGORITHM:
            raise AuthError(f"Unsupported AWS 'algorithm': '{algorithm}'.", code=_INCOMPLETE)
        # AWS separates the components with commas and/or whitespace.
        for part in rest.replace(",", " ").split():
            name, eq, value = part.partition("=")
            if not eq:
                raise AuthError(
                    f"'{part}' not a valid key=value pair (missing equal-sign) in "
                    f"Authorization header: '{auth}'.",
                    code=_INCOMPLETE,
                )
            fields[name] = value
    problems = [
        f"Authorization header requires '{name}' parameter."
        for name in ("Credential", "Signature", "SignedHeaders")
        if not fields.get(name)
    ]
    if "x-amz-date" not in headers and "date" not in headers:
        problems.append(
            "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header."
        )
    if problems:
        raise AuthError(" ".join(problems) + f" Authorization={auth}", code=_INCOMPLETE)
    signed_headers = fields["SignedHeaders"]
    if "host" not in signed_headers.split(";"):
        raise AuthError(
            "'Host' must be a 'SignedHeader' in the AWS Authorization.", code=_INCOMPLETE
        )
    return fields["Credential"], signed_headers, fields["Signature"]


def _split_credential(credential: str) -> tuple[str, str, str, str]:
    """``(key_id, scope, region, service)``; ``scope`` is ``date/region/service/aws4_request``."""
    parts = credential.split("/")
    if len(parts) != 5 or not all(parts):
        raise AuthError(
            "Credential must have exactly 5 slash-delimited elements, "
            f"e.g. keyid/date/region/service/term, got '{credential}'",
            code=_INCOMPLETE,
        )
    key_id, date, region, service, terminator = parts
    if terminator != "aws4_request":
        raise AuthError(
            f"Credential should be scoped with a valid terminator: 'aws4_request', "
            f"not '{terminator}'.",
            code=_INVALID_SIGNATURE,
        )
    if len(date) != 8:
        raise AuthError(
            f"Date in Credential scope must be YYYYMMDD, got '{date}'.", code=_INCOMPLETE
        )
    return key_id, credential[len(key_id) + 1 :], region, service
