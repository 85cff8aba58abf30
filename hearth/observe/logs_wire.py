"""Wire helpers for the CloudWatch Logs JSON 1.1 API: typed parameter access, errors,
pagination tokens and ARNs.

Errors use the codes and messages the real service sends, because SDKs map ``__type``
to exception classes (``client.exceptions.ResourceNotFoundException``) and scripts grep
the messages. Every error is HTTP 400, as in CloudWatch Logs.
"""

from __future__ import annotations

import base64
import json
import re
from typing import Any

from hearth.errors import AwsError

#: Largest response payload of GetLogEvents / FilterLogEvents (AWS: 1 MB).
MAX_RESPONSE_BYTES = 1024 * 1024

_GROUP_NAME_RE = re.compile(r"[\.\-_/#A-Za-z0-9]+")
_GROUP_ARN_RE = re.compile(r"arn:[^:]+:logs:([^:]*):(\d*):log-group:([^:]+)(?::\*)?")
_POSITION_TOKEN_RE = re.compile(r"([fb])/(\d{19})(\d{19})")


def invalid(message: str) -> AwsError:
    return AwsError(message, code="InvalidParameterException", status=400)


def serialization(message: str) -> AwsError:
    return AwsError(message, code="SerializationException", status=400)


def group_not_found() -> AwsError:
    return AwsError(
        "The specified log group does not exist.", code="ResourceNotFoundException", status=400
    )


def stream_not_found() -> AwsError:
    return AwsError(
        "The specified log stream does not exist.", code="ResourceNotFoundException", status=400
    )


def already_exists(what: str) -> AwsError:
    return AwsError(
        f"The specified {what} already exists", code="ResourceAlreadyExistsException", status=400
    )


def _constraint(name: str, value: object, constraint: str) -> AwsError:
    """AWS's one-constraint message; an absent member is ``Value null``, unquoted."""
    shown = "null" if value is None else f"'{value}'"
    return invalid(
        f"1 validation error detected: Value {shown} at '{name}' failed to satisfy "
        f"constraint: Member must {constraint}"
    )


class Params:
    """Typed, validating access to a decoded request body."""

    def __init__(self, body: bytes) -> None:
        try:
            data = json.loads(body) if body.strip() else {}
        except (ValueError, UnicodeDecodeError) as exc:
            raise serialization("Request body is not valid JSON") from exc
        if not isinstance(data, dict):
            raise serialization("Request body must be a JSON object")
        self._data: dict[str, Any] = data

    def __contains__(self, name: str) -> bool:
        return self._data.get(name) is not None

    def get_str(self, name: str, *, required: bool = False, max_len: int = 512) -> str | None:
        value = self._data.get(name)
        if value is None:
            if required:
                raise _constraint(name, None, "not be null")
            return None
        if not isinstance(value, str):
            raise serialization(f"Expected a string for '{name}'")
        if len(value) > max_len:
            raise _constraint(name, value, f"have length less than or equal to {max_len}")
        return value

    def req(self, name: str, *, max_len: int = 512) -> str:
        value = self.get_str(name, required=True, max_len=max_len)
        assert value is not None
        if not value:
            raise _constraint(name, value, "have length greater than or equal to 1")
        return value

    def get_int(self, name: str, *, lo: int | None = None, hi: int | None = None) -> int | None:
        value = self._data.get(name)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            raise serialization(f"Expected an integer for '{name}'")
        if lo is not None and value < lo:
            raise _constraint(name, value, f"have value greater than or equal to {lo}")
        if hi is not None and value > hi:
            raise _constraint(name, value, f"have value less than or equal to {hi}")
        return value

    def get_bool(self, name: str, default: bool = False) -> bool:
        value = self._data.get(name)
        if value is None:
            return default
        if not isinstance(value, bool):
            raise serialization(f"Expected a boolean for '{name}'")
        return value

    def get_str_list(self, name: str, *, max_items: int = 100) -> list[str] | None:
        value = self._data.get(name)
        if value is None:
            return None
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise serialization(f"Expected a list of strings for '{name}'")
        if not 1 <= len(value) <= max_items:
            raise _constraint(name, value, f"have length between 1 and {max_items}")
        return value

    def get_list(self, name: str) -> list[Any] | None:
        value = self._data.get(name)
        if value is None:
            return None
        if not isinstance(value, list):
            raise serialization(f"Expected a list for '{name}'")
        return value


def check_group_name(name: str, field: str = "logGroupName") -> str:
    if not _GROUP_NAME_RE.fullmatch(name):
        raise _constraint(field, name, "satisfy regular expression pattern: [\\.\\-_/#A-Za-z0-9]+")
    return name


def check_stream_name(name: str, field: str = "logStreamName") -> str:
    if ":" in name or "*" in name:
        raise _constraint(field, name, "satisfy regular expression pattern: [^:*]*")
    return name


def resolve_group(p: Params, account_id: str, *, required: bool = True) -> str | None:
    """The log group named by ``logGroupName`` or ``logGroupIdentifier`` (name or ARN).

    An ARN of another account resolves to a group that cannot exist for this caller
    (there is no cross-account observability here): ResourceNotFoundException.
    """
    name = p.get_str("logGroupName")
    ident = p.get_str("logGroupIdentifier", max_len=2048)
    if name is not None and ident is not None:
        raise invalid("LogGroup name and LogGroup ARN are mutually exclusive parameters.")
    if name is None and ident is None:
        if required:
            raise invalid("Should provide either logGroupName or logGroupIdentifier.")
        return None
    if name is not None:
        return check_group_name(name)
    assert ident is not None
    m = _GROUP_ARN_RE.fullmatch(ident)
    if m:
        if m.group(2) != account_id:
            raise group_not_found()
        return m.group(3)
    return check_group_name(ident, "logGroupIdentifier")


def group_arn(region: str, account: str, name: str) -> str:
    return f"arn:aws:logs:{region}:{account}:log-group:{name}"


def encode_token(*parts: object) -> str:
    """An opaque pagination token for list operations."""
    raw = json.dumps(list(parts), separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_token(token: str, arity: int) -> list[Any]:
    """Inverse of :func:`encode_token`; InvalidParameterException for foreign tokens."""
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        parts = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise invalid("The specified nextToken is invalid.") from exc
    if not isinstance(parts, list) or len(parts) != arity:
        raise invalid("The specified nextToken is invalid.")
    return parts


def encode_position(direction: str, position: tuple[int, int]) -> str:
    """``f/…`` or ``b/…`` GetLogEvents token for an event position ``(timestamp, id)``."""
    ts, eid = position
    return f"{direction}/{max(ts, 0):019d}{max(eid, 0):019d}"


def decode_position(token: str) -> tuple[str, tuple[int, int]]:
    m = _POSITION_TOKEN_RE.fullmatch(token)
    if not m:
        raise invalid("The specified nextToken is invalid.")
    return m.group(1), (int(m.group(2)), int(m.group(3)))
