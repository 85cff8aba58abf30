"""AddPermission / RemovePermission: statements of a queue's ``Policy`` attribute.

SQS keeps these as statements of the queue policy (a JSON document whose ``Id`` is
``<queue arn>/SQSDefaultPolicy``), one per label (``Sid``), so GetQueueAttributes shows
them and SetQueueAttributes(Policy) replaces them. Hearth stores the policy as given; it
does not evaluate it (every caller of this server's account is its owner).
"""

from __future__ import annotations

import json
import re
from typing import Any

from hearth.queues._errors import InvalidParameterValue, MissingParameter, OverLimit

_LABEL = re.compile(r"[A-Za-z0-9_-]{1,80}")
_ACCOUNT = re.compile(r"\d{12}")
#: actions another account may be granted (the owner-only ones are refused)
_SHAREABLE = {
    "*",
    "ChangeMessageVisibility",
    "DeleteMessage",
    "GetQueueAttributes",
    "GetQueueUrl",
    "ListDeadLetterSourceQueues",
    "PurgeQueue",
    "ReceiveMessage",
    "SendMessage",
}
MAX_ACTIONS = 7


def _one_or_many(values: list[str]) -> str | list[str]:
    return values[0] if len(values) == 1 else values


def _policy(current: str, arn: str) -> dict[str, Any]:
    try:
        doc = json.loads(current) if current else None
    except ValueError:
        doc = None
    if not isinstance(doc, dict) or not isinstance(doc.get("Statement"), list):
        doc = {"Version": "2012-10-17", "Id": f"{arn}/SQSDefaultPolicy", "Statement": []}
    return doc


def _label(body: dict[str, Any]) -> str:
    label = body.get("Label")
    if not isinstance(label, str) or label == "":
        raise MissingParameter("The request must contain the parameter Label.")
    return label


def add_permission(current: str, arn: str, body: dict[str, Any]) -> str:
    """The policy after AddPermission ``body``; raises SQS's errors for bad input."""
    label = _label(body)
    if not _LABEL.fullmatch(label):
        raise InvalidParameterValue(
            f"Value {label} for parameter Label is invalid. Reason: Can only include"
            " alphanumeric characters, hyphens, or underscores. 1 to 80 in length."
        )
    accounts = body.get("AWSAccountIds")
    if not isinstance(accounts, list) or not accounts:
        raise InvalidParameterValue(
            "Value [] for parameter PrincipalId is invalid. Reason: Unable to verify."
        )
    for acct in accounts:
        if not isinstance(acct, str) or not _ACCOUNT.fullmatch(acct):
            raise InvalidParameterValue(
                f"Value [{acct}] for parameter PrincipalId is invalid. Reason: Unable to verify."
            )
    actions = body.get("Actions")
    if not isinstance(actions, list) or not actions:
        raise MissingParameter("The request must contain the parameter Actions.")
    if len(actions) > MAX_ACTIONS:
        raise OverLimit(f"{len(actions)} Actions were found, maximum allowed is {MAX_ACTIONS}.")
    for action in actions:
        if action not in _SHAREABLE:
            raise InvalidParameterValue(
                f"Value SQS:{action} for parameter ActionName is invalid. Reason: Only the"
                " queue owner is allowed to invoke this action."
            )
    doc = _policy(current, arn)
    if any(isinstance(s, dict) and s.get("Sid") == label for s in doc["Statement"]):
        raise InvalidParameterValue(
            f"Value {label} for parameter Label is invalid. Reason: Already exists."
        )
    doc["Statement"].append(
        {
            "Sid": label,
            "Effect": "Allow",
            "Principal": {"AWS": _one_or_many([f"arn:aws:iam::{a}:root" for a in accounts])},
            "Action": _one_or_many([f"SQS:{a}" for a in actions]),
            "Resource": arn,
        }
    )
    return json.dumps(doc, separators=(",", ":"))


def remove_permission(current: str, arn: str, body: dict[str, Any]) -> str:
    """The policy after RemovePermission ``body`` ("" once no statement is left)."""
    label = _label(body)
    doc = _policy(current, arn)
    kept = [s for s in doc["Statement"] if not (isinstance(s, dict) and s.get("Sid") == label)]
    if len(kept) == len(doc["Statement"]):
        raise InvalidParameterValue(
            f"Value {label} for parameter Label is invalid. Reason: can't find label on"
            " existing policy."
        )
    if not kept:
        return ""
    doc["Statement"] = kept
    return json.dumps(doc, separators=(",", ":"))
