"""Queue attributes, message attributes and their MD5s, URLs, ARNs and receipt handles.

Everything here is pure (no I/O): the rules SQS applies to what a client sends.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
import struct
from dataclasses import dataclass
from typing import Any

from hearth.queues._errors import (
    InvalidAttributeName,
    InvalidAttributeValue,
    InvalidMessageContents,
    InvalidParameterValue,
    ReceiptHandleIsInvalid,
)

NAME_RE = re.compile(r"[A-Za-z0-9_-]{1,80}")
MAX_MESSAGE_SIZE = 1024 * 1024

#: settable attribute → (low, high, default) for the integer ones
INT_ATTRIBUTES: dict[str, tuple[int, int, int]] = {
    "DelaySeconds": (0, 900, 0),
    "MaximumMessageSize": (1024, MAX_MESSAGE_SIZE, MAX_MESSAGE_SIZE),
    "MessageRetentionPeriod": (60, 1_209_600, 345_600),
    "ReceiveMessageWaitTimeSeconds": (0, 20, 0),
    "VisibilityTimeout": (0, 43_200, 30),
    "KmsDataKeyReusePeriodSeconds": (60, 86_400, 300),
}
#: settable attributes kept as given (no effect on delivery here)
OPAQUE_ATTRIBUTES = {"Policy", "KmsMasterKeyId", "SqsManagedSseEnabled", "RedriveAllowPolicy"}
FIFO_ATTRIBUTES = {"FifoQueue", "ContentBasedDeduplication", "DeduplicationScope",
                   "FifoThroughputLimit"}  # fmt: skip
READ_ONLY = {
    "ApproximateNumberOfMessages",
    "ApproximateNumberOfMessagesNotVisible",
    "ApproximateNumberOfMessagesDelayed",
    "CreatedTimestamp",
    "LastModifiedTimestamp",
    "QueueArn",
}
ALL_QUEUE_ATTRIBUTES = [
    *INT_ATTRIBUTES,
    *OPAQUE_ATTRIBUTES,
    *FIFO_ATTRIBUTES,
    "RedrivePolicy",
    *READ_ONLY,
]


def queue_arn(region: str, account_id: str, name: str) -> str:
    return f"arn:aws:sqs:{region}:{account_id}:{name}"


def queue_url(host: str, account_id: str, name: str) -> str:
    return f"http://{host}/{account_id}/{name}"


def parse_queue_arn(arn: str) -> tuple[str, str, str] | None:
    """(region, account, name) of ``arn:aws:sqs:<region>:<account>:<name>``, else None."""
    m = re.fullmatch(
        r"arn:aws[a-zA-Z-]*:sqs:([a-z0-9-]+):(\d{12}):([A-Za-z0-9_-]{1,75}(?:\.fifo)?|[A-Za-z0-9_-]{76,80})",
        arn,
    )
    return (m.group(1), m.group(2), m.group(3)) if m else None


def check_queue_name(name: str, attrs: Any) -> bool:
    """Validate a queue name against its ``FifoQueue`` attribute; return whether FIFO."""
    fifo_attr = str((attrs or {}).get("FifoQueue", "false")).lower() == "true"
    if name.endswith(".fifo"):
        if not fifo_attr or not NAME_RE.fullmatch(name[: -len(".fifo")]) or len(name) > 80:
            raise InvalidParameterValue(
                "The name of a FIFO queue can only include alphanumeric characters, hyphens,"
                " or underscores, must end with .fifo suffix and be 1 to 80 in length."
            )
        return True
    if fifo_attr:
        raise InvalidParameterValue(
            "The name of a FIFO queue can only include alphanumeric characters, hyphens, or"
            " underscores, must end with .fifo suffix and be 1 to 80 in length."
        )
    if not NAME_RE.fullmatch(name):
        raise InvalidParameterValue(
            "Can only include alphanumeric characters, hyphens, or underscores. 1 to 80 in length"
        )
    return False


#: what a FIFO queue reports (and CreateQueue compares) for FIFO attributes never set
FIFO_DEFAULTS = {
    "ContentBasedDeduplication": "false",
    "DeduplicationScope": "queue",
    "FifoThroughputLimit": "perQueue",
}

_FIFO_VALUES = {
    "FifoQueue": ("true", "false"),
    "ContentBasedDeduplication": ("true", "false"),
    "DeduplicationScope": ("messageGroup", "queue"),
    "FifoThroughputLimit": ("perQueue", "perMessageGroupId"),
}


def validate_queue_attributes(attrs: Any, *, fifo: bool, creating: bool) -> dict[str, str]:
    """Check settable attributes; return them normalised (string values, as SQS stores)."""
    if attrs is None:
        return {}
    if not isinstance(attrs, dict):
        raise InvalidParameterValue("Attributes must be a map of attribute names to values.")
    out: dict[str, str] = {}
    for name, raw in attrs.items():
        value = str(raw)
        if name in FIFO_ATTRIBUTES:
            if not fifo:
                if name == "FifoQueue" and value.lower() == "false":
                    continue
                raise InvalidAttributeName(f"Unknown Attribute {name}.")
            allowed = _FIFO_VALUES[name]
            if value not in allowed and value.lower() not in allowed:
                raise InvalidAttributeValue(f"Invalid value for the parameter {name}.")
            if name == "FifoQueue" and not creating:
                raise InvalidAttributeValue(f"Invalid value for the parameter {name}.")
            out[name] = (
                value.lower() if name in ("FifoQueue", "ContentBasedDeduplication") else value
            )
        elif name in INT_ATTRIBUTES:
            lo, hi, _ = INT_ATTRIBUTES[name]
            if not re.fullmatch(r"-?\d{1,12}", value) or not lo <= int(value) <= hi:
                raise InvalidAttributeValue(f"Invalid value for the parameter {name}.")
            out[name] = str(int(value))
        elif name == "RedrivePolicy":
            out[name] = _redrive_policy(value)
        elif name in OPAQUE_ATTRIBUTES:
            _check_policy_document(name, value)
            out[name] = value
        else:
            raise InvalidAttributeName(f"Unknown Attribute {name}.")
    return out


def _check_policy_document(name: str, value: str) -> None:
    """Policy and RedriveAllowPolicy are JSON objects ("" clears them), as SQS checks."""
    if name not in ("Policy", "RedriveAllowPolicy") or value == "":
        return
    try:
        doc = json.loads(value)
    except ValueError:
        doc = None
    if name == "Policy" and not isinstance(doc, dict):
        raise InvalidAttributeValue("Invalid value for the parameter Policy.")
    if name == "RedriveAllowPolicy" and (
        not isinstance(doc, dict)
        or doc.get("redrivePermission") not in ("allowAll", "denyAll", "byQueue")
    ):
        raise InvalidAttributeValue(
            "Invalid value for the parameter RedriveAllowPolicy. Reason: Amazon SQS can\u2019t"
            " create the redrive allow policy, as it\u2019s in an unsupported format."
        )


def _redrive_policy(value: str) -> str:
    if value == "":
        return ""
    try:
        doc = json.loads(value)
    except ValueError:
        raise InvalidAttributeValue(
            "Invalid value for the parameter RedrivePolicy. Reason: Redrive policy is not a"
            " valid JSON map."
        ) from None
    if not isinstance(doc, dict) or "deadLetterTargetArn" not in doc:
        raise InvalidAttributeValue(
            "Value "
            + value
            + " for parameter RedrivePolicy is invalid. Reason: Redrive policy does not"
            " contain mandatory attribute: deadLetterTargetArn."
        )
    if "maxReceiveCount" not in doc:
        raise InvalidAttributeValue(
            "Value "
            + value
            + " for parameter RedrivePolicy is invalid. Reason: Redrive policy does not"
            " contain mandatory attribute: maxReceiveCount."
        )
    try:
        count = int(doc["maxReceiveCount"])
    except (TypeError, ValueError):
        count = 0
    if not 1 <= count <= 1000:
        raise InvalidAttributeValue(
            "Value " + value + " for parameter RedrivePolicy is invalid. Reason: Invalid value for"
            " maxReceiveCount: "
            + str(doc["maxReceiveCount"])
            + ", valid values are from 1 to 1000 both inclusive."
        )
    if parse_queue_arn(str(doc["deadLetterTargetArn"])) is None:
        raise InvalidAttributeValue(
            "Value " + value + " for parameter RedrivePolicy is invalid. Reason: Invalid value for"
            " deadLetterTargetArn."
        )
    return json.dumps(
        {"deadLetterTargetArn": str(doc["deadLetterTargetArn"]), "maxReceiveCount": count},
        separators=(",", ":"),
    )


# -- messages -----------------------------------------------------------------------------
_BAD_CHAR = re.compile("[^\x09\x0a\x0d\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_ATTR_NAME = re.compile(r"[A-Za-z0-9_.-]{1,256}")


def check_body(body: Any) -> str:
    if not isinstance(body, str) or body == "":
        raise InvalidParameterValue(
            "The request must contain the parameter MessageBody.", code="MissingParameter"
        )
    bad = _BAD_CHAR.search(body)
    if bad is not None:
        raise InvalidMessageContents(
            f"Invalid binary character '#x{ord(bad.group()):X}' was found in the message body,"
            " the set of allowed characters is #x9 | #xA | #xD | #x20 to #xD7FF | #xE000 to"
            " #xFFFD | #x10000 to #x10FFFF"
        )
    return body


@dataclass(frozen=True, slots=True)
class MessageAttribute:
    name: str
    data_type: str
    string_value: str | None
    binary_value: bytes | None

    def size(self) -> int:
        value = len(self.string_value.encode()) if self.string_value is not None else 0
        return len(self.name) + len(self.data_type) + value + len(self.binary_value or b"")

    def to_wire(self) -> dict[str, str]:
        out = {"DataType": self.data_type}
        if self.string_value is not None:
            out["StringValue"] = self.string_value
        if self.binary_value is not None:
            out["BinaryValue"] = base64.b64encode(self.binary_value).decode()
        return out


def parse_message_attributes(raw: Any) -> list[MessageAttribute]:
    """Validate ``MessageAttributes`` as SQS does (≤ 10, typed, non-empty values)."""
    if raw is None:
        return []
    if not isinstance(raw, dict):
        raise InvalidParameterValue("MessageAttributes must be a map.")
    if len(raw) > 10:
        raise InvalidParameterValue(
            f"Number of message attributes [{len(raw)}] exceeds the allowed maximum [10]."
        )
    out: list[MessageAttribute] = []
    for name, spec in raw.items():
        if (
            not _ATTR_NAME.fullmatch(name)
            or name.startswith((".", "AWS.", "Amazon."))
            or name.endswith(".")
            or ".." in name
        ):
            raise InvalidParameterValue(f"Message attribute name '{name}' is invalid.")
        if not isinstance(spec, dict) or not spec.get("DataType"):
            raise InvalidParameterValue(
                f"The message attribute '{name}' must contain non-empty message attribute type."
            )
        dtype = str(spec["DataType"])
        base = dtype.split(".", 1)[0]
        if base not in ("String", "Number", "Binary"):
            raise InvalidParameterValue(
                f"The type of message (user) attribute '{name}' is invalid. You must use only"
                " the following supported type prefixes: Binary, Number, String."
            )
        if base == "Binary":
            b64 = spec.get("BinaryValue")
            try:
                data = base64.b64decode(b64, validate=True) if isinstance(b64, str) else b""
            except (binascii.Error, ValueError):
                data = b""
            if not data:
                raise InvalidParameterValue(
                    f"The message attribute '{name}' with type 'Binary' must use field 'Binary'."
                )
            out.append(MessageAttribute(name, dtype, None, data))
            continue
        sval = spec.get("StringValue")
        if not isinstance(sval, str) or sval == "":
            raise InvalidParameterValue(
                f"The message attribute '{name}' must contain non-empty message attribute"
                " value for message attribute type 'String'."
                if base == "String"
                else f"The message attribute '{name}' must contain non-empty message attribute"
                " value for message attribute type 'Number'."
            )
        if base == "Number" and not re.fullmatch(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?", sval):
            raise InvalidParameterValue(
                f"Can't cast the value of message (user) attribute '{name}' to a number."
            )
        out.append(MessageAttribute(name, dtype, sval, None))
    return out


def md5_of_body(body: str) -> str:
    return hashlib.md5(body.encode()).hexdigest()


def md5_of_attributes(attrs: list[MessageAttribute]) -> str:
    """The MD5 SQS computes over message attributes (sorted by name, length-prefixed)."""
    h = hashlib.md5()
    for a in sorted(attrs, key=lambda x: x.name):
        for part in (a.name.encode(), a.data_type.encode()):
            h.update(struct.pack(">I", len(part)) + part)
        if a.binary_value is not None:
            h.update(b"\x02" + struct.pack(">I", len(a.binary_value)) + a.binary_value)
        else:
            value = (a.string_value or "").encode()
            h.update(b"\x01" + struct.pack(">I", len(value)) + value)
    return h.hexdigest()


def attributes_to_json(attrs: list[MessageAttribute]) -> str:
    return json.dumps({a.name: a.to_wire() for a in attrs}, separators=(",", ":"))


# -- receipt handles ------------------------------------------------------------------------
def make_receipt(queue_id: int, seq: int, token: str) -> str:
    raw = f"{queue_id}:{seq}:{token}".encode()
    return base64.urlsafe_b64encode(raw).decode()


def parse_receipt(handle: Any) -> tuple[int, int, str]:
    if not isinstance(handle, str) or handle == "":
        raise InvalidParameterValue(
            "The request must contain the parameter ReceiptHandle.", code="MissingParameter"
        )
    try:
        qid, seq, token = base64.urlsafe_b64decode(handle.encode()).decode().split(":")
        return int(qid), int(seq), token
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise ReceiptHandleIsInvalid(
            f'The input receipt handle "{handle}" is not a valid receipt handle.'
        ) from None
