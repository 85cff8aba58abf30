"""The SQS API on Hearth's endpoint: AWS JSON 1.0, ``X-Amz-Target: AmazonSQS.<Operation>``.

This is the protocol current botocore speaks to SQS (the service is *query compatible*:
errors carry the historical query code in ``x-amzn-query-error``). Queue URLs are
``http://<Host header>/<account>/<queue name>``; a URL's host is not checked (clients
built for another endpoint name still work), its account and name are.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from hearth.api.types import Principal, Request, Response
from hearth.errors import AwsError
from hearth.queues._engine import Message, NewMessage, QueueEngine, QueueInfo
from hearth.queues._errors import (
    BatchEntryIdsNotDistinct,
    BatchRequestTooLong,
    EmptyBatchRequest,
    InvalidAction,
    InvalidAttributeName,
    InvalidBatchEntryId,
    InvalidParameterValue,
    MissingParameter,
    SqsError,
    TooManyEntriesInBatchRequest,
    invalid_value,
    queue_does_not_exist,
)
from hearth.queues._model import (
    ALL_QUEUE_ATTRIBUTES,
    FIFO_DEFAULTS,
    INT_ATTRIBUTES,
    MAX_MESSAGE_SIZE,
    MessageAttribute,
    attributes_to_json,
    check_body,
    check_queue_name,
    md5_of_attributes,
    md5_of_body,
    parse_message_attributes,
    queue_url,
    validate_queue_attributes,
)
from hearth.queues._move import MoveTasks
from hearth.queues._permissions import add_permission, remove_permission

TARGET = "AmazonSQS."
CONTENT_TYPE = "application/x-amz-json-1.0"
_BATCH_ID = re.compile(r"[A-Za-z0-9_-]{1,80}")
_FIFO_ID = re.compile(r"[!-~]{1,128}")
_SYSTEM_ATTRIBUTES = [
    "SenderId",
    "SentTimestamp",
    "ApproximateReceiveCount",
    "ApproximateFirstReceiveTimestamp",
    "AWSTraceHeader",
    "DeadLetterQueueSourceArn",
    "MessageGroupId",
    "MessageDeduplicationId",
    "SequenceNumber",
]

Op = Callable[[Principal, Request, dict[str, Any]], Awaitable[dict[str, Any]]]


def _response(
    status: int, doc: dict[str, Any], headers: list[tuple[str, str]] | None = None
) -> Response:
    hdrs = [("Content-Type", CONTENT_TYPE), ("x-amzn-RequestId", str(uuid.uuid4()))]
    hdrs.extend(headers or [])
    return Response(status, hdrs, json.dumps(doc, separators=(",", ":")).encode())


class SqsService:
    def __init__(self, engine: QueueEngine) -> None:
        self.engine = engine
        self.moves = MoveTasks(engine)
        self.operations: dict[str, Op] = {
            "CreateQueue": self._create_queue,
            "GetQueueUrl": self._get_queue_url,
            "ListQueues": self._list_queues,
            "DeleteQueue": self._delete_queue,
            "PurgeQueue": self._purge_queue,
            "GetQueueAttributes": self._get_attributes,
            "SetQueueAttributes": self._set_attributes,
            "SendMessage": self._send_message,
            "SendMessageBatch": self._send_message_batch,
            "ReceiveMessage": self._receive_message,
            "DeleteMessage": self._delete_message,
            "DeleteMessageBatch": self._delete_message_batch,
            "ChangeMessageVisibility": self._change_visibility,
            "ChangeMessageVisibilityBatch": self._change_visibility_batch,
            "ListQueueTags": self._list_tags,
            "TagQueue": self._tag_queue,
            "UntagQueue": self._untag_queue,
            "ListDeadLetterSourceQueues": self._dead_letter_sources,
            "AddPermission": self._add_permission,
            "RemovePermission": self._remove_permission,
            "StartMessageMoveTask": self._start_move,
            "ListMessageMoveTasks": self._list_moves,
            "CancelMessageMoveTask": self._cancel_move,
        }

    async def aclose(self) -> None:
        await self.moves.aclose()

    # -- Service protocol -------------------------------------------------------------
    def claims(self, req: Request) -> bool:
        return req.headers.get("x-amz-target", "").startswith(TARGET)

    async def __call__(self, principal: Principal, req: Request) -> Response:
        op = self.operations.get(req.headers.get("x-amz-target", "")[len(TARGET) :])
        if op is None:
            raise InvalidAction(
                f"The action {req.headers.get('x-amz-target', '')} is not valid for this endpoint."
            )
        try:
            body = json.loads(req.body) if req.body.strip() else {}
        except (ValueError, UnicodeDecodeError):
            raise SqsError("The request body is not valid JSON.", code="MalformedInput") from None
        if not isinstance(body, dict):
            raise SqsError("The request body must be a JSON object.", code="MalformedInput")
        return _response(200, await op(principal, req, body))

    def error(self, err: AwsError) -> Response:
        shape = err.shape if isinstance(err, SqsError) else err.code
        fault = "Sender" if err.status < 500 else "Receiver"
        doc = {"__type": f"com.amazonaws.sqs#{shape}", "message": err.message}
        return _response(err.status, doc, [("x-amzn-query-error", f"{err.code};{fault}")])

    # -- helpers ----------------------------------------------------------------------
    def _queue(self, p: Principal, body: dict[str, Any]) -> QueueInfo:
        url = body.get("QueueUrl")
        if not isinstance(url, str) or not url:
            raise MissingParameter("The request must contain the parameter QueueUrl.")
        parts = url.split("?", 1)[0].rstrip("/").split("/")
        if len(parts) < 2 or parts[-2] != p.account_id:
            raise queue_does_not_exist()
        return self.engine.get(p.account_id, parts[-1])

    def _check_dead_letter_target(self, raw: Any, attrs: dict[str, str], fifo: bool) -> None:
        """A RedrivePolicy names an existing queue of the source's type (FIFO or not)."""
        if not attrs.get("RedrivePolicy"):
            return
        given = str(raw["RedrivePolicy"])
        dlq = self.engine.by_arn(json.loads(attrs["RedrivePolicy"])["deadLetterTargetArn"])
        if dlq is None:
            raise InvalidParameterValue(
                f"Value {given} for parameter RedrivePolicy is invalid. Reason: Dead letter"
                " target does not exist."
            )
        if dlq.fifo != fifo:
            raise InvalidParameterValue(
                f"Value {given} for parameter RedrivePolicy is invalid. Reason: Dead-letter"
                " queue must be same type of queue as the source.."
            )

    @staticmethod
    def _host(req: Request) -> str:
        return req.headers.get("host", "127.0.0.1")

    def _message(self, q: QueueInfo, entry: dict[str, Any]) -> NewMessage:
        body = check_body(entry.get("MessageBody"))
        attrs = parse_message_attributes(entry.get("MessageAttributes"))
        size = len(body.encode()) + sum(a.size() for a in attrs)
        limit = q.int_attr("MaximumMessageSize")
        if size > limit:
            raise InvalidParameterValue(
                "One or more parameters are invalid. Reason: Message must be shorter than"
                f" {limit} bytes."
            )
        delay = entry.get("DelaySeconds")
        if delay is not None and (
            isinstance(delay, bool) or not isinstance(delay, int) or not 0 <= delay <= 900
        ):
            raise invalid_value("DelaySeconds", delay, "DelaySeconds must be >= 0 and <= 900.")
        group = entry.get("MessageGroupId")
        dedup = entry.get("MessageDeduplicationId")
        if q.fifo:
            if delay is not None:
                raise invalid_value(
                    "DelaySeconds",
                    delay,
                    "The request include parameter that is not valid for this queue type",
                )
            if not isinstance(group, str) or not group:
                raise MissingParameter("The request must contain the parameter MessageGroupId.")
            if not _FIFO_ID.fullmatch(group):
                raise invalid_value("MessageGroupId", group, "Invalid characters or length.")
            if dedup is None:
                if q.attributes.get("ContentBasedDeduplication") != "true":
                    raise InvalidParameterValue(
                        "The queue should either have ContentBasedDeduplication enabled or"
                        " MessageDeduplicationId provided explicitly"
                    )
                dedup = hashlib.sha256(body.encode()).hexdigest()
            elif not isinstance(dedup, str) or not _FIFO_ID.fullmatch(dedup):
                raise invalid_value(
                    "MessageDeduplicationId", dedup, "Invalid characters or length."
                )
        elif dedup is not None:
            raise invalid_value(
                "MessageDeduplicationId",
                dedup,
                "The request include parameter that is not valid for this queue type",
            )
        else:
            group = None
        trace = None
        sys_attrs = entry.get("MessageSystemAttributes") or {}
        if isinstance(sys_attrs, dict) and isinstance(sys_attrs.get("AWSTraceHeader"), dict):
            trace = str(sys_attrs["AWSTraceHeader"].get("StringValue") or "") or None
        return NewMessage(
            body=body,
            md5_body=md5_of_body(body),
            attributes_json=attributes_to_json(attrs),
            md5_attributes=md5_of_attributes(attrs) if attrs else "",
            delay=delay,
            trace_header=trace,
            group_id=group,
            dedup_id=dedup,
        )

    @staticmethod
    def _entries(body: dict[str, Any], kind: str) -> list[dict[str, Any]]:
        entries = body.get("Entries")
        if not isinstance(entries, list) or not entries:
            raise EmptyBatchRequest(f"There should be at least one {kind} in the request.")
        if len(entries) > 10:
            raise TooManyEntriesInBatchRequest(
                f"Maximum number of entries per request are 10. You have sent {len(entries)}."
            )
        seen: set[str] = set()
        for e in entries:
            eid = e.get("Id") if isinstance(e, dict) else None
            if not isinstance(eid, str) or not _BATCH_ID.fullmatch(eid):
                raise InvalidBatchEntryId(
                    "A batch entry id can only contain alphanumeric characters, hyphens and"
                    " underscores. It can be at most 80 letters long."
                )
            if eid in seen:
                raise BatchEntryIdsNotDistinct(f"Id {eid} repeated.")
            seen.add(eid)
        return entries

    @staticmethod
    def _failed(eid: str, err: AwsError) -> dict[str, Any]:
        return {
            "Id": eid,
            "SenderFault": err.status < 500,
            "Code": err.code,
            "Message": err.message,
        }

    # -- queues -----------------------------------------------------------------------
    async def _create_queue(
        self, p: Principal, req: Request, body: dict[str, Any]
    ) -> dict[str, Any]:
        name = body.get("QueueName")
        if not isinstance(name, str) or not name:
            raise MissingParameter("The request must contain the parameter QueueName.")
        fifo = check_queue_name(name, body.get("Attributes"))
        attrs = validate_queue_attributes(body.get("Attributes"), fifo=fifo, creating=True)
        self._check_dead_letter_target(body.get("Attributes"), attrs, fifo)
        tags = body.get("tags") or {}
        q = await self.engine.create_queue(p.account_id, p.region, name, attrs, dict(tags))
        return {"QueueUrl": queue_url(self._host(req), q.account_id, q.name)}

    async def _get_queue_url(
        self, p: Principal, req: Request, body: dict[str, Any]
    ) -> dict[str, Any]:
        name = body.get("QueueName")
        if not isinstance(name, str) or not name:
            raise MissingParameter("The request must contain the parameter QueueName.")
        owner = body.get("QueueOwnerAWSAccountId") or p.account_id
        if owner != p.account_id:
            raise queue_does_not_exist()
        q = self.engine.get(p.account_id, name)
        return {"QueueUrl": queue_url(self._host(req), q.account_id, q.name)}

    async def _list_queues(
        self, p: Principal, req: Request, body: dict[str, Any]
    ) -> dict[str, Any]:
        prefix = str(body.get("QueueNamePrefix") or "")
        limit = body.get("MaxResults")
        if limit is not None and (not isinstance(limit, int) or not 1 <= limit <= 1000):
            raise invalid_value("MaxResults", limit, "MaxResults must be >= 1 and <= 1000.")
        queues = self.engine.list_queues(p.account_id, prefix)
        token = body.get("NextToken")
        if token:
            queues = [q for q in queues if q.name > str(token)]
        out: dict[str, Any] = {}
        page = queues[: limit or 1000]
        if page:
            out["QueueUrls"] = [queue_url(self._host(req), q.account_id, q.name) for q in page]
        if limit and len(queues) > limit:
            out["NextToken"] = page[-1].name
        return out

    async def _delete_queue(
        self, p: Principal, req: Request, body: dict[str, Any]
    ) -> dict[str, Any]:
        await self.engine.delete_queue(self._queue(p, body))
        return {}

    async def _purge_queue(
        self, p: Principal, req: Request, body: dict[str, Any]
    ) -> dict[str, Any]:
        await self.engine.purge(self._queue(p, body))
        return {}

    async def _get_attributes(
        self, p: Principal, req: Request, body: dict[str, Any]
    ) -> dict[str, Any]:
        q = self._queue(p, body)
        names = body.get("AttributeNames") or []
        for n in names:
            if n != "All" and n not in ALL_QUEUE_ATTRIBUTES:
                raise InvalidAttributeName(f"Unknown Attribute {n}.")
        wanted = set(ALL_QUEUE_ATTRIBUTES) if "All" in names else set(names)
        values: dict[str, str] = {}
        for key in INT_ATTRIBUTES:
            if key != "KmsDataKeyReusePeriodSeconds" or key in q.attributes:
                values[key] = str(q.int_attr(key))
        for key, value in q.attributes.items():
            values.setdefault(key, value)
        if q.fifo:
            for key, value in FIFO_DEFAULTS.items():
                values.setdefault(key, value)
        values["QueueArn"] = q.arn
        values["CreatedTimestamp"] = str(int(q.created))
        values["LastModifiedTimestamp"] = str(int(q.modified))
        if wanted & {
            "ApproximateNumberOfMessages",
            "ApproximateNumberOfMessagesNotVisible",
            "ApproximateNumberOfMessagesDelayed",
        }:
            visible, inflight, delayed = await self.engine.counts(q)
            values["ApproximateNumberOfMessages"] = str(visible)
            values["ApproximateNumberOfMessagesNotVisible"] = str(inflight)
            values["ApproximateNumberOfMessagesDelayed"] = str(delayed)
        attrs = {k: v for k, v in values.items() if k in wanted}
        return {"Attributes": attrs} if attrs else {}

    async def _set_attributes(
        self, p: Principal, req: Request, body: dict[str, Any]
    ) -> dict[str, Any]:
        q = self._queue(p, body)
        if "Attributes" not in body:
            raise MissingParameter("The request must contain the parameter Attributes.")
        attrs = validate_queue_attributes(body["Attributes"], fifo=q.fifo, creating=False)
        self._check_dead_letter_target(body["Attributes"], attrs, q.fifo)
        await self.engine.set_attributes(q, attrs)
        return {}

    async def _list_tags(self, p: Principal, req: Request, body: dict[str, Any]) -> dict[str, Any]:
        q = self._queue(p, body)
        return {"Tags": dict(q.tags)} if q.tags else {}

    async def _tag_queue(self, p: Principal, req: Request, body: dict[str, Any]) -> dict[str, Any]:
        q = self._queue(p, body)
        tags = body.get("Tags")
        if not isinstance(tags, dict) or not tags:
            raise MissingParameter("The request must contain the parameter Tags.")
        merged = {**q.tags, **{str(k): str(v) for k, v in tags.items()}}
        if len(merged) > 50:
            raise InvalidParameterValue(f"Too many tags added for queue {q.name}.")
        await self.engine.set_tags(q, merged)
        return {}

    async def _untag_queue(
        self, p: Principal, req: Request, body: dict[str, Any]
    ) -> dict[str, Any]:
        q = self._queue(p, body)
        keys = set(body.get("TagKeys") or [])
        if not keys:
            raise InvalidParameterValue("Tag keys must be between 1 and 128 characters in length.")
        await self.engine.set_tags(q, {k: v for k, v in q.tags.items() if k not in keys})
        return {}

    async def _add_permission(
        self, p: Principal, req: Request, body: dict[str, Any]
    ) -> dict[str, Any]:
        q = self._queue(p, body)
        policy = add_permission(q.attributes.get("Policy", ""), q.arn, body)
        await self.engine.set_attributes(q, {"Policy": policy})
        return {}

    async def _remove_permission(
        self, p: Principal, req: Request, body: dict[str, Any]
    ) -> dict[str, Any]:
        q = self._queue(p, body)
        policy = remove_permission(q.attributes.get("Policy", ""), q.arn, body)
        await self.engine.set_attributes(q, {"Policy": policy})
        return {}

    async def _start_move(self, p: Principal, req: Request, body: dict[str, Any]) -> dict[str, Any]:
        return await self.moves.start(p.account_id, body)

    async def _list_moves(self, p: Principal, req: Request, body: dict[str, Any]) -> dict[str, Any]:
        return await self.moves.list_tasks(p.account_id, body)

    async def _cancel_move(
        self, p: Principal, req: Request, body: dict[str, Any]
    ) -> dict[str, Any]:
        return await self.moves.cancel(p.account_id, body)

    async def _dead_letter_sources(
        self, p: Principal, req: Request, body: dict[str, Any]
    ) -> dict[str, Any]:
        q = self._queue(p, body)
        limit = body.get("MaxResults")
        if limit is not None and (not isinstance(limit, int) or not 1 <= limit <= 1000):
            raise invalid_value("MaxResults", limit, "MaxResults must be >= 1 and <= 1000.")
        token = str(body.get("NextToken") or "")
        sources = [
            other
            for other in self.engine.list_queues(p.account_id, "")
            if (policy := other.redrive()) is not None and policy[0] == q.arn and other.name > token
        ]
        page = sources[: limit or 1000]
        out: dict[str, Any] = {
            "queueUrls": [queue_url(self._host(req), o.account_id, o.name) for o in page]
        }
        if limit and len(sources) > limit:
            out["NextToken"] = page[-1].name
        return out

    # -- messages ---------------------------------------------------------------------
    async def _send_message(
        self, p: Principal, req: Request, body: dict[str, Any]
    ) -> dict[str, Any]:
        q = self._queue(p, body)
        msg = self._message(q, body)
        await self.engine.send(q, [msg])
        out = {"MessageId": msg.message_id, "MD5OfMessageBody": msg.md5_body}
        if msg.md5_attributes:
            out["MD5OfMessageAttributes"] = msg.md5_attributes
        if msg.trace_header:
            out["MD5OfMessageSystemAttributes"] = _md5_of_system_attributes(msg)
        if msg.sequence_number:
            out["SequenceNumber"] = msg.sequence_number
        return out

    async def _send_message_batch(
        self, p: Principal, req: Request, body: dict[str, Any]
    ) -> dict[str, Any]:
        q = self._queue(p, body)
        entries = self._entries(body, "SendMessageBatchRequestEntry")
        total = sum(len(str(e.get("MessageBody") or "").encode()) for e in entries)
        if total > MAX_MESSAGE_SIZE:
            raise BatchRequestTooLong(
                f"Batch requests cannot be longer than {MAX_MESSAGE_SIZE} bytes. You have sent"
                f" {total} bytes."
            )
        ok: list[tuple[str, NewMessage]] = []
        failed: list[dict[str, Any]] = []
        for e in entries:
            try:
                ok.append((e["Id"], self._message(q, e)))
            except AwsError as err:
                failed.append(self._failed(e["Id"], err))
        if ok:
            await self.engine.send(q, [m for _, m in ok])
        successful = []
        for eid, m in ok:
            item = {"Id": eid, "MessageId": m.message_id, "MD5OfMessageBody": m.md5_body}
            if m.md5_attributes:
                item["MD5OfMessageAttributes"] = m.md5_attributes
            if m.trace_header:
                item["MD5OfMessageSystemAttributes"] = _md5_of_system_attributes(m)
            if m.sequence_number:
                item["SequenceNumber"] = m.sequence_number
            successful.append(item)
        return {"Successful": successful, "Failed": failed}

    async def _receive_message(
        self, p: Principal, req: Request, body: dict[str, Any]
    ) -> dict[str, Any]:
        q = self._queue(p, body)
        max_n = _opt_int(
            body, "MaxNumberOfMessages", 1, 10, 1, "Must be between 1 and 10, if provided."
        )
        wait = _opt_int(
            body,
            "WaitTimeSeconds",
            0,
            20,
            q.int_attr("ReceiveMessageWaitTimeSeconds"),
            "Must be >= 0 and <= 20, if provided.",
        )
        vt_raw = body.get("VisibilityTimeout")
        vt = None
        if vt_raw is not None:
            vt = _opt_int(
                body, "VisibilityTimeout", 0, 43200, 0, "Must be >= 0 and <= 43200, if provided."
            )
        sys_names = set(body.get("MessageSystemAttributeNames") or []) | set(
            body.get("AttributeNames") or []
        )
        attr_names = list(body.get("MessageAttributeNames") or [])
        msgs = await self.engine.receive(q, max_n, wait, vt)
        if not msgs:
            return {}
        return {"Messages": [_wire_message(m, p, sys_names, attr_names) for m in msgs]}

    async def _delete_message(
        self, p: Principal, req: Request, body: dict[str, Any]
    ) -> dict[str, Any]:
        q = self._queue(p, body)
        await self.engine.delete(q, [self.engine.check_receipt(q, body.get("ReceiptHandle"))])
        return {}

    async def _delete_message_batch(
        self, p: Principal, req: Request, body: dict[str, Any]
    ) -> dict[str, Any]:
        q = self._queue(p, body)
        entries = self._entries(body, "DeleteMessageBatchRequestEntry")
        good: list[tuple[str, tuple[int, str]]] = []
        failed = []
        for e in entries:
            try:
                good.append((e["Id"], self.engine.check_receipt(q, e.get("ReceiptHandle"))))
            except AwsError as err:
                failed.append(self._failed(e["Id"], err))
        if good:
            await self.engine.delete(q, [r for _, r in good])
        return {"Successful": [{"Id": eid} for eid, _ in good], "Failed": failed}

    async def _change_visibility(
        self, p: Principal, req: Request, body: dict[str, Any]
    ) -> dict[str, Any]:
        q = self._queue(p, body)
        seq, token = self.engine.check_receipt(q, body.get("ReceiptHandle"))
        if "VisibilityTimeout" not in body:
            raise MissingParameter("The request must contain the parameter VisibilityTimeout.")
        vt = _opt_int(
            body, "VisibilityTimeout", 0, 43200, 0, "Must be >= 0 and <= 43200, if provided."
        )
        (err,) = await self.engine.change_visibility(q, [(seq, token, vt)])
        if err is not None:
            raise err
        return {}

    async def _change_visibility_batch(
        self, p: Principal, req: Request, body: dict[str, Any]
    ) -> dict[str, Any]:
        q = self._queue(p, body)
        entries = self._entries(body, "ChangeMessageVisibilityBatchRequestEntry")
        items: list[tuple[str, tuple[int, str, int]]] = []
        failed = []
        for e in entries:
            try:
                seq, token = self.engine.check_receipt(q, e.get("ReceiptHandle"))
                vt = _opt_int(
                    e, "VisibilityTimeout", 0, 43200, 0, "Must be >= 0 and <= 43200, if provided."
                )
                items.append((e["Id"], (seq, token, vt)))
            except AwsError as err:
                failed.append(self._failed(e["Id"], err))
        errors = await self.engine.change_visibility(q, [i for _, i in items]) if items else []
        successful = []
        for (eid, _), problem in zip(items, errors, strict=True):
            if problem is None:
                successful.append({"Id": eid})
            elif isinstance(problem, AwsError):
                failed.append(self._failed(eid, problem))
        return {"Successful": successful, "Failed": failed}


def _md5_of_system_attributes(m: NewMessage) -> str:
    """MD5OfMessageSystemAttributes: the message-attribute digest over AWSTraceHeader."""
    return md5_of_attributes([MessageAttribute("AWSTraceHeader", "String", m.trace_header, None)])


def _opt_int(body: dict[str, Any], name: str, lo: int, hi: int, default: int, reason: str) -> int:
    value = body.get(name)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise invalid_value(name, value, reason)
    return value


def _wire_message(
    m: Message, p: Principal, sys_names: set[str], attr_names: list[str]
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "MessageId": m.message_id,
        "ReceiptHandle": m.receipt_handle,
        "MD5OfBody": m.md5_body,
        "Body": m.body,
    }
    if sys_names:
        system = system_attributes(m, p.account_id)
        wanted = set(_SYSTEM_ATTRIBUTES) if "All" in sys_names else sys_names
        picked = {k: v for k, v in system.items() if k in wanted}
        if picked:
            out["Attributes"] = picked
    if attr_names and m.md5_attributes:
        attrs = json.loads(m.attributes_json)
        chosen = {k: v for k, v in attrs.items() if _attr_wanted(k, attr_names)}
        if chosen:
            out["MessageAttributes"] = chosen
            out["MD5OfMessageAttributes"] = m.md5_attributes
    return out


def system_attributes(m: Message, sender: str) -> dict[str, str]:
    """The message system attributes SQS reports (timestamps in epoch milliseconds)."""
    out = {
        "SenderId": sender,
        "SentTimestamp": str(int(m.sent * 1000)),
        "ApproximateReceiveCount": str(m.receive_count),
        "ApproximateFirstReceiveTimestamp": str(int(m.first_receive * 1000)),
    }
    if m.trace_header:
        out["AWSTraceHeader"] = m.trace_header
    if m.source_arn:
        out["DeadLetterQueueSourceArn"] = m.source_arn
    if m.group_id is not None:
        out["MessageGroupId"] = m.group_id
        out["MessageDeduplicationId"] = m.dedup_id or ""
        out["SequenceNumber"] = m.sequence_number or ""
    return out


def _attr_wanted(name: str, wanted: list[str]) -> bool:
    for w in wanted:
        if w in ("All", ".*") or w == name:
            return True
        if w.endswith(".*") and name.startswith(w[:-1]):
            return True
    return False


def now_ms() -> int:
    return int(time.time() * 1000)
