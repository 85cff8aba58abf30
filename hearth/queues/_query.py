"""The older SQS *query* protocol (form-encoded ``Action=…``, XML answers), for SDKs from
before SQS moved to JSON 1.0.

It is a translation layer over :class:`SqsService`: flattened parameters
(``Attribute.1.Name``, ``MessageAttribute.1.Value.StringValue``,
``SendMessageBatchRequestEntry.1.Id``…) become the JSON request the JSON 1.0 operation
takes, and its JSON result is written out as the query protocol's XML. A request posted
to a queue URL (``/<account>/<name>``) without ``QueueUrl`` addresses that queue.
"""

from __future__ import annotations

import re
import uuid
from typing import Any
from urllib.parse import parse_qsl
from xml.sax.saxutils import escape

from hearth.api.types import Principal, Request, Response
from hearth.errors import AwsError
from hearth.queues._errors import InvalidAction
from hearth.queues._service import SqsService

XMLNS = "http://queue.amazonaws.com/doc/2012-11-05/"
_QUEUE_PATH = re.compile(r"/(\d{12})/([A-Za-z0-9_.-]{1,80})/?")
_INTS = {
    "DelaySeconds",
    "MaxNumberOfMessages",
    "VisibilityTimeout",
    "WaitTimeSeconds",
    "MaxResults",
    "MaxNumberOfMessagesPerSecond",
}
_ENTRY_PREFIXES = (
    "SendMessageBatchRequestEntry",
    "DeleteMessageBatchRequestEntry",
    "ChangeMessageVisibilityBatchRequestEntry",
)
#: JSON list member → XML element name of each item
_LIST_ITEMS = {
    "QueueUrls": "QueueUrl",
    "queueUrls": "QueueUrl",
    "Messages": "Message",
    "Successful": None,  # set per action below
    "Failed": "BatchResultErrorEntry",
    "Results": "ListMessageMoveTasksResultEntry",
}


def _form(req: Request) -> dict[str, str]:
    raw = req.body.decode(errors="replace") if req.method == "POST" else req.query
    return dict(parse_qsl(raw, keep_blank_values=True))


class SqsQueryService:
    def __init__(self, json_service: SqsService) -> None:
        self._json = json_service

    def claims(self, req: Request) -> bool:
        if req.method == "POST":
            ctype = req.headers.get("content-type", "")
            if not ctype.startswith("application/x-www-form-urlencoded"):
                return False
            params = _form(req)
        elif req.method == "GET":
            params = dict(parse_qsl(req.query))
        else:
            return False
        return params.get("Action", "") in self._json.operations and (
            req.path in ("", "/") or _QUEUE_PATH.fullmatch(req.path) is not None
        )

    async def __call__(self, principal: Principal, req: Request) -> Response:
        params = _form(req)
        action = params.pop("Action", "")
        params.pop("Version", None)
        op = self._json.operations.get(action)
        if op is None:
            raise InvalidAction(f"The action {action} is not valid for this endpoint.")
        body = _to_json(params)
        m = _QUEUE_PATH.fullmatch(req.path)
        if m is not None and "QueueUrl" not in body:
            body["QueueUrl"] = f"http://{req.headers.get('host', '')}{req.path.rstrip('/')}"
        result = await op(principal, req, body)
        rid = str(uuid.uuid4())
        inner = _xml_result(action, result)
        xml = (
            f'<?xml version="1.0"?><{action}Response xmlns="{XMLNS}">'
            f"<{action}Result>{inner}</{action}Result>"
            f"<ResponseMetadata><RequestId>{rid}</RequestId></ResponseMetadata>"
            f"</{action}Response>"
        )
        return Response(
            200, [("Content-Type", "text/xml"), ("x-amzn-RequestId", rid)], xml.encode()
        )

    def error(self, err: AwsError) -> Response:
        rid = str(uuid.uuid4())
        kind = "Sender" if err.status < 500 else "Receiver"
        xml = (
            f'<?xml version="1.0"?><ErrorResponse xmlns="{XMLNS}"><Error><Type>{kind}</Type>'
            f"<Code>{escape(err.code)}</Code><Message>{escape(err.message)}</Message>"
            f"<Detail/></Error><RequestId>{rid}</RequestId></ErrorResponse>"
        )
        return Response(
            err.status, [("Content-Type", "text/xml"), ("x-amzn-RequestId", rid)], xml.encode()
        )


# -- parameters → JSON ----------------------------------------------------------------------
def _to_json(params: dict[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in params.items():
        if "." not in key:
            out[key] = int(value) if key in _INTS and re.fullmatch(r"-?\d+", value) else value
    out.update(_pairs(params, "Attribute", "Name", "Value", "Attributes"))
    out.update(_pairs(params, "Tag", "Key", "Value", "tags"))
    if _indexed(params, "Tags"):
        out["Tags"] = _pairs(params, "Tags", "Key", "Value", "x")["x"]
    for prefix, member in (
        ("AttributeName", "AttributeNames"),
        ("MessageAttributeName", "MessageAttributeNames"),
        ("MessageSystemAttributeName", "MessageSystemAttributeNames"),
        ("TagKey", "TagKeys"),
        ("AWSAccountId", "AWSAccountIds"),
        ("ActionName", "Actions"),
    ):
        items = _indexed(params, prefix)
        if items:
            out[member] = [v for _, v in sorted(items.items())]
    attrs = _message_attributes(params, "MessageAttribute")
    if attrs:
        out["MessageAttributes"] = attrs
    for prefix in _ENTRY_PREFIXES:
        entries = _entries(params, prefix)
        if entries:
            out["Entries"] = entries
    return out


def _indexed(params: dict[str, str], prefix: str) -> dict[int, str]:
    out = {}
    for key, value in params.items():
        m = re.fullmatch(re.escape(prefix) + r"\.(\d+)", key)
        if m:
            out[int(m.group(1))] = value
    return out


def _pairs(params: dict[str, str], prefix: str, k: str, v: str, member: str) -> dict[str, Any]:
    found: dict[int, dict[str, str]] = {}
    for key, value in params.items():
        m = re.fullmatch(re.escape(prefix) + r"\.(\d+)\.(" + k + "|" + v + ")", key)
        if m:
            found.setdefault(int(m.group(1)), {})[m.group(2)] = value
    if not found:
        return {}
    return {member: {d.get(k, ""): d.get(v, "") for _, d in sorted(found.items())}}


def _message_attributes(params: dict[str, str], prefix: str) -> dict[str, Any]:
    found: dict[int, dict[str, str]] = {}
    for key, value in params.items():
        m = re.fullmatch(re.escape(prefix) + r"\.(\d+)\.(Name|Value\.\w+)", key)
        if m:
            found.setdefault(int(m.group(1)), {})[m.group(2)] = value
    out: dict[str, Any] = {}
    for _, d in sorted(found.items()):
        spec = {
            f: d[f"Value.{f}"]
            for f in ("DataType", "StringValue", "BinaryValue")
            if f"Value.{f}" in d
        }
        out[d.get("Name", "")] = spec
    return out


def _entries(params: dict[str, str], prefix: str) -> list[dict[str, Any]]:
    groups: dict[int, dict[str, str]] = {}
    for key, value in params.items():
        m = re.fullmatch(re.escape(prefix) + r"\.(\d+)\.(.+)", key)
        if m:
            groups.setdefault(int(m.group(1)), {})[m.group(2)] = value
    return [_to_json(g) for _, g in sorted(groups.items())]


# -- JSON → XML -----------------------------------------------------------------------------
def _xml_result(action: str, doc: dict[str, Any]) -> str:
    parts = []
    success_item = {
        "SendMessageBatch": "SendMessageBatchResultEntry",
        "DeleteMessageBatch": "DeleteMessageBatchResultEntry",
        "ChangeMessageVisibilityBatch": "ChangeMessageVisibilityBatchResultEntry",
    }.get(action, "Entry")
    for key, value in doc.items():
        if key in ("Attributes", "Tags") and isinstance(value, dict):
            k, v = ("Key", "Value") if key == "Tags" else ("Name", "Value")
            item = "Tag" if key == "Tags" else "Attribute"
            parts += [
                f"<{item}><{k}>{escape(a)}</{k}><{v}>{escape(str(b))}</{v}></{item}>"
                for a, b in value.items()
            ]
        elif key in _LIST_ITEMS and isinstance(value, list):
            item = _LIST_ITEMS[key] or success_item
            for entry in value:
                text = _xml_result(action, entry) if isinstance(entry, dict) else escape(str(entry))
                parts.append(f"<{item}>{text}</{item}>")
        elif key == "MessageAttributes" and isinstance(value, dict):
            for name, spec in value.items():
                inner = "".join(f"<{f}>{escape(str(x))}</{f}>" for f, x in spec.items())
                parts.append(
                    f"<MessageAttribute><Name>{escape(name)}</Name><Value>{inner}</Value>"
                    "</MessageAttribute>"
                )
        elif isinstance(value, bool):
            parts.append(f"<{key}>{str(value).lower()}</{key}>")
        else:
            parts.append(f"<{key}>{escape(str(value))}</{key}>")
    return "".join(parts)
