"""AWS wire helpers: JSON bodies, error shapes per protocol, model validation errors."""

from __future__ import annotations

import json
import re
import time
import uuid
from typing import Any

from hearth.api.types import Response
from hearth.errors import AwsError, InvalidRequestContent

JSON = "application/json"


def json_response(status: int, doc: Any, headers: list[tuple[str, str]] | None = None) -> Response:
    body = json.dumps(doc, separators=(",", ":")).encode() if doc is not None else b""
    hdrs = [("Content-Type", JSON), ("x-amzn-RequestId", str(uuid.uuid4()))]
    if headers:
        hdrs.extend(headers)
    return Response(status, hdrs, body)


#: Lambda's error shapes whose message member is ``Message`` in botocore's model (the
#: others, InvalidParameterValueException and TooManyRequestsException among them, say
#: ``message``): boto3 lifts the body's modeled members into the parsed error, so a
#: client reads ``response["Message"]`` of a ResourceNotFoundException as AWS sends it.
CAPITAL_MESSAGE = frozenset(
    {
        "CallbackTimeoutException", "CodeSigningConfigNotFoundException",
        "CodeVerificationFailedException", "DurableExecutionAlreadyStartedException",
        "EC2AccessDeniedException", "EC2ThrottledException", "EC2UnexpectedException",
        "EFSIOException", "EFSMountConnectivityException", "EFSMountFailureException",
        "EFSMountTimeoutException", "ENILimitReachedException", "ENINotReadyException",
        "InvalidCodeSignatureException", "InvalidRuntimeException",
        "InvalidSecurityGroupIDException", "InvalidSubnetIDException",
        "InvalidZipFileException", "KMSAccessDeniedException", "KMSDisabledException",
        "KMSInvalidStateException", "KMSNotFoundException", "NoPublishedVersionException",
        "PublicPolicyException", "RecursiveInvocationException", "ResourceInUseException",
        "ResourceNotFoundException", "ServiceException", "ServiceQuotaExceededException",
        "SnapStartException", "SnapStartNotReadyException",
        "SnapStartRegenerationFailureException", "SnapStartTimeoutException",
        "SubnetIPAddressLimitReachedException",
    }
)  # fmt: skip


def rest_json_error(err: AwsError) -> Response:
    """REST-JSON (Lambda): ``x-amzn-ErrorType`` header plus ``{"Type", "message"}`` (or
    ``"Message"`` for the shapes that name it so, see :data:`CAPITAL_MESSAGE`)."""
    key = "Message" if err.code in CAPITAL_MESSAGE else "message"
    doc: dict[str, Any] = {"Type": err.kind, key: err.message}
    doc.update(err.extra)
    headers = [("x-amzn-ErrorType", err.code)]
    headers.extend(err.headers.items())
    return json_response(err.status, doc, headers)


def json11_error(err: AwsError) -> Response:
    """JSON 1.1 (Logs): ``{"__type", "message"}``."""
    doc: dict[str, Any] = {"__type": err.code, "message": err.message}
    doc.update(err.extra)
    resp = json_response(err.status, doc, list(err.headers.items()))
    resp.headers[0] = ("Content-Type", "application/x-amz-json-1.1")
    return resp


def parse_json_body(body: bytes) -> dict[str, Any]:
    """Parse a request body that must be a JSON object (empty → ``{}``)."""
    if not body.strip():
        return {}
    try:
        doc = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidRequestContent(f"Could not parse request body into json: {exc}") from None
    if not isinstance(doc, dict):
        raise InvalidRequestContent(
            "Could not parse request body into json: the request body must be a JSON object"
        )
    return doc


class ValidationError(AwsError):
    """The model-level ``ValidationException`` AWS sends for constraint violations."""

    code = "ValidationException"
    status = 400


def validation_error(value: object, member: str, constraint: str) -> ValidationError:
    """AWS's one-constraint message; an absent value (``None``) is written ``Value null``,
    unquoted, as AWS writes it."""
    shown = "null" if value is None else f"'{value}'"
    return ValidationError(
        f"1 validation error detected: Value {shown} at '{member}' failed to satisfy"
        f" constraint: Member must {constraint}"
    )


def missing(member: str) -> ValidationError:
    """A required member left out: ``Value null at 'x' ... Member must not be null``."""
    return validation_error(None, member, "not be null")


def check_string(
    value: Any,
    member: str,
    *,
    min_len: int = 0,
    max_len: int | None = None,
    pattern: str | None = None,
) -> str:
    if not isinstance(value, str):
        raise InvalidRequestContent(
            f"Could not parse request body into json: '{member}' must be a string"
        )
    if len(value) < min_len:
        raise validation_error(value, member, f"have length greater than or equal to {min_len}")
    if max_len is not None and len(value) > max_len:
        raise validation_error(value, member, f"have length less than or equal to {max_len}")
    if pattern is not None and re.fullmatch(pattern, value) is None:
        raise validation_error(value, member, f"satisfy regular expression pattern: {pattern}")
    return value


def check_int(value: Any, member: str, *, lo: int, hi: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidRequestContent(
            f"Could not parse request body into json: '{member}' must be an integer"
        )
    if value < lo:
        raise validation_error(value, member, f"have value greater than or equal to {lo}")
    if value > hi:
        raise validation_error(value, member, f"have value less than or equal to {hi}")
    return value


def check_enum(value: Any, member: str, allowed: list[str]) -> str:
    if value is None:
        raise missing(member)
    if not isinstance(value, str) or value not in allowed:
        raise validation_error(value, member, f"satisfy enum value set: [{', '.join(allowed)}]")
    return value


def now_iso() -> str:
    """Now as Lambda writes ``LastModified`` / ``CreatedDate``: ``2024-01-31T12:00:00.000+0000``."""
    t = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int(t * 1000) % 1000:03d}+0000"
