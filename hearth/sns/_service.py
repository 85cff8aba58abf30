"""The SNS API subset (the query protocol: form-encoded ``Action=…``, XML answers, as
botocore speaks it) with Lambda and SQS subscriptions: pub/sub fan-out.

Publish delivers to every confirmed subscription of the topic whose ``FilterPolicy``
matches (message attributes by default, or the message body with
``FilterPolicyScope`` ``MessageBody``; the pattern language of EventBridge): a Lambda
subscription gets an asynchronous invocation with SNS's ``Records`` event (through the
durable event queue), an SQS subscription a message with SNS's JSON envelope, or the bare
message with ``RawMessageDelivery``. Lambda and SQS subscriptions are confirmed at once,
as on AWS. Differences: Hearth cannot sign as SNS, so ``Signature``, ``SigningCertURL``
and ``UnsubscribeURL`` are left out of notifications; no FIFO topics, no HTTP / email /
SMS endpoints.

Errors (botocore's ``sns`` model): ``NotFound`` 404 (``Topic does not exist``),
``InvalidParameter`` 400 (``Invalid parameter: <what>``).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import time
import uuid
from typing import Any
from urllib.parse import parse_qsl
from xml.sax.saxutils import escape

from hearth.api.types import Principal, Request, Response
from hearth.errors import AwsError
from hearth.esm._filter import pattern_matches, valid_pattern
from hearth.ids import new_request_id
from hearth.invoke.router import Router
from hearth.queues import NewMessage, QueueEngine, md5_of_body
from hearth.sns._model import SnsStore, Subscription, Topic
from hearth.worker.invocation import Invocation

log = logging.getLogger(__name__)
XMLNS = "http://sns.amazonaws.com/doc/2010-03-31/"
_TOPIC_NAME = re.compile(r"[A-Za-z0-9_-]{1,256}")
_SCOPE = re.compile(r"Credential=[^/]+/[^/]+/[^/]+/sns/aws4_request")
MAX_MESSAGE = 256 * 1024
_FORM = "application/x-www-form-urlencoded"


class SnsError(AwsError):
    status = 400


def _invalid(what: str) -> SnsError:
    return SnsError(f"Invalid parameter: {what}", code="InvalidParameter")


def _not_found(what: str) -> SnsError:
    return SnsError(f"{what} does not exist", code="NotFound", status=404)


def _stamp() -> str:
    t = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int(t * 1000) % 1000:03d}Z"


def _entries(params: dict[str, str], prefix: str, k: str, v: str) -> dict[str, str]:
    """``<prefix>.entry.N.<k>`` / ``.<v>`` (or ``.member.N.``) pairs as a dict."""
    out: dict[str, str] = {}
    for n in range(1, 1000):
        key = params.get(f"{prefix}.entry.{n}.{k}", params.get(f"{prefix}.member.{n}.{k}"))
        if key is None:
            break
        out[key] = params.get(f"{prefix}.entry.{n}.{v}", params.get(f"{prefix}.member.{n}.{v}", ""))
    return out


def _message_attributes(params: dict[str, str]) -> dict[str, dict[str, str]]:
    out: dict[str, dict[str, str]] = {}
    for n in range(1, 11):
        base = f"MessageAttributes.entry.{n}"
        name = params.get(f"{base}.Name")
        if name is None:
            break
        dtype = params.get(f"{base}.Value.DataType", "")
        if dtype.split(".")[0] not in ("String", "Number", "Binary"):
            raise _invalid(f"The message attribute '{name}' has an invalid message attribute type")
        value = params.get(f"{base}.Value.StringValue", params.get(f"{base}.Value.BinaryValue"))
        if value is None:
            raise _invalid(
                f"The message attribute '{name}' must contain non-empty message attribute value"
            )
        out[name] = {"Type": dtype, "Value": value}
    return out


def _filter_view(attrs: dict[str, dict[str, str]]) -> dict[str, Any]:
    """Message attributes as a filter policy sees them: numbers as numbers, String.Array
    as its list."""
    view: dict[str, Any] = {}
    for name, a in attrs.items():
        value: Any = a["Value"]
        if a["Type"].startswith("Number"):
            with contextlib.suppress(ValueError):
                value = float(value) if "." in value or "e" in value.lower() else int(value)
        elif a["Type"] == "String.Array":
            with contextlib.suppress(ValueError):
                value = json.loads(value)
        view[name] = value
    return view


def _xml(value: Any, item: str = "member") -> str:
    if isinstance(value, dict):
        return "".join(f"<{k}>{_xml(v)}</{k}>" for k, v in value.items() if v is not None)
    if isinstance(value, list):
        return "".join(f"<{item}>{_xml(v)}</{item}>" for v in value)
    return escape(str(value))


def _attrs_xml(attrs: dict[str, str]) -> str:
    return "".join(
        f"<entry><key>{escape(k)}</key><value>{escape(v)}</value></entry>" for k, v in attrs.items()
    )


class SnsService:
    def __init__(self, store: SnsStore, router: Router, queues: QueueEngine) -> None:
        self.store = store
        self._router = router
        self._queues = queues
        self.operations = {
            "CreateTopic": self._create_topic,
            "DeleteTopic": self._delete_topic,
            "ListTopics": self._list_topics,
            "GetTopicAttributes": self._get_topic_attributes,
            "SetTopicAttributes": self._set_topic_attributes,
            "Subscribe": self._subscribe,
            "Unsubscribe": self._unsubscribe,
            "ListSubscriptions": self._list_subscriptions,
            "ListSubscriptionsByTopic": self._list_subscriptions_by_topic,
            "GetSubscriptionAttributes": self._get_subscription_attributes,
            "SetSubscriptionAttributes": self._set_subscription_attributes,
            "Publish": self._publish,
            "TagResource": self._tag,
            "UntagResource": self._untag,
            "ListTagsForResource": self._list_tags,
        }

    # -- Service protocol -------------------------------------------------------------
    def claims(self, req: Request) -> bool:
        """A form-encoded POST signed for the ``sns`` service."""
        return (
            req.method == "POST"
            and req.headers.get("content-type", "").startswith(_FORM)
            and _SCOPE.search(req.headers.get("authorization", "")) is not None
        )

    async def __call__(self, principal: Principal, req: Request) -> Response:
        params = dict(parse_qsl(req.body.decode(errors="replace"), keep_blank_values=True))
        action = params.get("Action", "")
        op = self.operations.get(action)
        if op is None:
            raise SnsError(
                f"The action {action} is not valid for this endpoint.", code="InvalidAction"
            )
        result = await op(principal, params)
        rid = str(uuid.uuid4())
        inner = f"<{action}Result>{result}</{action}Result>" if result is not None else ""
        body = (
            f'<{action}Response xmlns="{XMLNS}">{inner}'
            f"<ResponseMetadata><RequestId>{rid}</RequestId></ResponseMetadata>"
            f"</{action}Response>"
        )
        return Response(
            200, [("Content-Type", "text/xml"), ("x-amzn-RequestId", rid)], body.encode()
        )

    def error(self, err: AwsError) -> Response:
        rid = str(uuid.uuid4())
        fault = "Sender" if err.status < 500 else "Receiver"
        body = (
            f'<ErrorResponse xmlns="{XMLNS}"><Error><Type>{fault}</Type>'
            f"<Code>{escape(err.code)}</Code><Message>{escape(err.message)}</Message></Error>"
            f"<RequestId>{rid}</RequestId></ErrorResponse>"
        )
        return Response(
            err.status, [("Content-Type", "text/xml"), ("x-amzn-RequestId", rid)], body.encode()
        )

    # -- helpers ----------------------------------------------------------------------
    def _topic(self, p: Principal, arn: str | None, member: str = "TopicArn") -> Topic:
        if not arn:
            raise _invalid(member)
        parts = arn.split(":")
        if len(parts) != 6 or parts[2] != "sns":
            raise _invalid(member)
        topic = self.store.topics.get(arn)
        if topic is None or (topic.account_id, topic.region) != (p.account_id, p.region):
            raise _not_found("Topic")
        return topic

    def _subscription(self, p: Principal, arn: str | None) -> Subscription:
        if not arn or arn.count(":") != 6:
            raise _invalid("SubscriptionArn")
        sub = self.store.subscriptions.get(arn)
        if sub is None or sub.account_id != p.account_id or arn.split(":")[3] != p.region:
            raise _not_found("Subscription")
        return sub

    # -- topics -----------------------------------------------------------------------
    async def _create_topic(self, p: Principal, params: dict[str, str]) -> str:
        name = params.get("Name", "")
        if _TOPIC_NAME.fullmatch(name) is None:
            raise _invalid(
                "Topic Name" if not name.endswith(".fifo") else "FIFO topics are not supported"
            )
        attrs = _entries(params, "Attributes", "key", "value")
        if attrs.get("FifoTopic", "false").lower() == "true":
            raise _invalid("FIFO topics are not supported by Hearth")
        arn = f"arn:aws:sns:{p.region}:{p.account_id}:{name}"
        topic = self.store.topics.get(arn)
        if topic is None:
            topic = Topic(arn, p.account_id, p.region, name, attrs)
            topic.tags = _entries(params, "Tags", "Key", "Value")
            await self.store.put_topic(topic)
        return f"<TopicArn>{escape(arn)}</TopicArn>"

    async def _delete_topic(self, p: Principal, params: dict[str, str]) -> None:
        try:
            topic = self._topic(p, params.get("TopicArn"))
        except SnsError as exc:
            if exc.code == "NotFound":
                return None  # deleting an absent topic succeeds, as on AWS
            raise
        await self.store.delete_topic(topic)
        return None

    async def _list_topics(self, p: Principal, params: dict[str, str]) -> str:
        arns = sorted(
            a
            for a, t in self.store.topics.items()
            if (t.account_id, t.region) == (p.account_id, p.region)
        )
        start = int(params["NextToken"]) if params.get("NextToken", "").isdigit() else 0
        page = arns[start : start + 100]
        more = f"<NextToken>{start + 100}</NextToken>" if start + 100 < len(arns) else ""
        return "<Topics>" + _xml([{"TopicArn": a} for a in page]) + "</Topics>" + more

    async def _get_topic_attributes(self, p: Principal, params: dict[str, str]) -> str:
        topic = self._topic(p, params.get("TopicArn"))
        subs = self.store.of_topic(topic.arn)
        attrs = {
            "TopicArn": topic.arn,
            "Owner": topic.account_id,
            "DisplayName": topic.attributes.get("DisplayName", ""),
            "SubscriptionsConfirmed": str(len(subs)),
            "SubscriptionsPending": "0",
            "SubscriptionsDeleted": "0",
            **{k: v for k, v in topic.attributes.items() if k != "DisplayName"},
        }
        return f"<Attributes>{_attrs_xml(attrs)}</Attributes>"

    async def _set_topic_attributes(self, p: Principal, params: dict[str, str]) -> None:
        topic = self._topic(p, params.get("TopicArn"))
        name = params.get("AttributeName", "")
        if not name:
            raise _invalid("AttributeName")
        topic.attributes[name] = params.get("AttributeValue", "")
        await self.store.put_topic(topic)
        return None

    # -- subscriptions ----------------------------------------------------------------
    async def _subscribe(self, p: Principal, params: dict[str, str]) -> str:
        topic = self._topic(p, params.get("TopicArn"))
        protocol = params.get("Protocol", "")
        endpoint = params.get("Endpoint", "")
        if protocol not in ("lambda", "sqs"):
            raise _invalid(
                f"Protocol {protocol!r}: Hearth delivers to lambda and sqs subscriptions only"
            )
        parts = endpoint.split(":")
        if len(parts) < 6 or parts[2] != protocol:
            what = "Lambda endpoint ARN" if protocol == "lambda" else "SQS endpoint ARN"
            raise _invalid(what)
        attrs = _entries(params, "Attributes", "key", "value")
        self._check_subscription_attrs(attrs)
        for sub in self.store.of_topic(topic.arn):
            if (sub.protocol, sub.endpoint) == (protocol, endpoint):
                return f"<SubscriptionArn>{escape(sub.arn)}</SubscriptionArn>"
        sub = Subscription(
            f"{topic.arn}:{uuid.uuid4()}", topic.arn, p.account_id, protocol, endpoint, attrs
        )
        await self.store.put_subscription(sub)
        return f"<SubscriptionArn>{escape(sub.arn)}</SubscriptionArn>"

    @staticmethod
    def _check_subscription_attrs(attrs: dict[str, str]) -> None:
        if attrs.get("FilterPolicy"):
            try:
                policy = json.loads(attrs["FilterPolicy"])
            except ValueError:
                policy = None
            if not valid_pattern(policy):
                raise _invalid("FilterPolicy: failed to parse JSON")
        scope = attrs.get("FilterPolicyScope", "MessageAttributes")
        if scope not in ("MessageAttributes", "MessageBody"):
            raise _invalid("Attributes Reason: FilterPolicyScope: Invalid value")
        if attrs.get("RawMessageDelivery", "false").lower() not in ("true", "false"):
            raise _invalid("Attributes Reason: RawMessageDelivery: Invalid value")

    async def _unsubscribe(self, p: Principal, params: dict[str, str]) -> None:
        sub = self._subscription(p, params.get("SubscriptionArn"))
        await self.store.delete_subscription(sub)
        return None

    @staticmethod
    def _sub_doc(s: Subscription) -> dict[str, str]:
        return {
            "SubscriptionArn": s.arn,
            "Owner": s.account_id,
            "Protocol": s.protocol,
            "Endpoint": s.endpoint,
            "TopicArn": s.topic_arn,
        }

    async def _list_subscriptions(self, p: Principal, params: dict[str, str]) -> str:
        subs = sorted(
            (
                s
                for s in self.store.subscriptions.values()
                if s.account_id == p.account_id and s.topic_arn.split(":")[3] == p.region
            ),
            key=lambda s: s.arn,
        )
        return "<Subscriptions>" + _xml([self._sub_doc(s) for s in subs]) + "</Subscriptions>"

    async def _list_subscriptions_by_topic(self, p: Principal, params: dict[str, str]) -> str:
        topic = self._topic(p, params.get("TopicArn"))
        subs = self.store.of_topic(topic.arn)
        return "<Subscriptions>" + _xml([self._sub_doc(s) for s in subs]) + "</Subscriptions>"

    async def _get_subscription_attributes(self, p: Principal, params: dict[str, str]) -> str:
        sub = self._subscription(p, params.get("SubscriptionArn"))
        attrs = {
            **self._sub_doc(sub),
            "ConfirmationWasAuthenticated": "true",
            "PendingConfirmation": "false",
            "RawMessageDelivery": "false",
            **sub.attributes,
        }
        return f"<Attributes>{_attrs_xml(attrs)}</Attributes>"

    async def _set_subscription_attributes(self, p: Principal, params: dict[str, str]) -> None:
        sub = self._subscription(p, params.get("SubscriptionArn"))
        name = params.get("AttributeName", "")
        allowed = ("RawMessageDelivery", "FilterPolicy", "FilterPolicyScope", "RedrivePolicy")
        if name not in allowed:
            raise _invalid("AttributeName")
        attrs = {**sub.attributes, name: params.get("AttributeValue", "")}
        self._check_subscription_attrs(attrs)
        sub.attributes = attrs
        await self.store.put_subscription(sub)
        return None

    # -- tags -------------------------------------------------------------------------
    async def _tag(self, p: Principal, params: dict[str, str]) -> str:
        topic = self._topic(p, params.get("ResourceArn"), "ResourceArn")
        topic.tags = {**topic.tags, **_entries(params, "Tags", "Key", "Value")}
        await self.store.put_topic(topic)
        return ""

    async def _untag(self, p: Principal, params: dict[str, str]) -> str:
        topic = self._topic(p, params.get("ResourceArn"), "ResourceArn")
        keys = {v for k, v in params.items() if k.startswith("TagKeys.member.")}
        topic.tags = {k: v for k, v in topic.tags.items() if k not in keys}
        await self.store.put_topic(topic)
        return ""

    async def _list_tags(self, p: Principal, params: dict[str, str]) -> str:
        topic = self._topic(p, params.get("ResourceArn"), "ResourceArn")
        tags = [{"Key": k, "Value": v} for k, v in sorted(topic.tags.items())]
        return "<Tags>" + _xml(tags) + "</Tags>"

    # -- publish ----------------------------------------------------------------------
    async def _publish(self, p: Principal, params: dict[str, str]) -> str:
        if params.get("TargetArn") or params.get("PhoneNumber"):
            raise _invalid("Hearth publishes to topics only (TopicArn)")
        if not params.get("TopicArn"):
            # AWS's words (as SDK fixtures recorded from the service show them).
            raise _invalid("TopicArn or TargetArn Reason: no value for required parameter")
        topic = self._topic(p, params.get("TopicArn"))
        message = params.get("Message", "")
        if not message:
            raise _invalid("Empty message")
        if len(message.encode()) > MAX_MESSAGE:
            raise _invalid("Message too long")
        subject = params.get("Subject")
        if subject is not None and (not subject or len(subject) > 100):
            raise _invalid("Subject")
        per_protocol: dict[str, Any] = {}
        if params.get("MessageStructure") == "json":
            try:
                per_protocol = json.loads(message)
            except ValueError:
                per_protocol = {}
            if not isinstance(per_protocol, dict) or not isinstance(
                per_protocol.get("default"), str
            ):
                raise _invalid("Message Structure - No default entry in JSON message body")
        attrs = _message_attributes(params)
        message_id = await self.fan_out(topic, message, subject, attrs, per_protocol)
        return f"<MessageId>{message_id}</MessageId>"

    async def publish_record(self, topic_arn: str, message: str) -> None:
        """Publish a Lambda invocation record (an asynchronous invocation's destination)."""
        topic = self.store.topics.get(topic_arn)
        if topic is None:
            raise ValueError(f"topic {topic_arn} does not exist")
        await self.fan_out(topic, message, None, {}, {})

    async def fan_out(
        self,
        topic: Topic,
        message: str,
        subject: str | None,
        attrs: dict[str, dict[str, str]],
        per_protocol: dict[str, Any],
    ) -> str:
        """Deliver one message to every matching subscription; return its MessageId."""
        message_id = str(uuid.uuid4())
        stamp = _stamp()
        for sub in self.store.of_topic(topic.arn):
            text = (
                str(per_protocol.get(sub.protocol, per_protocol["default"]))
                if per_protocol
                else message
            )
            if not self._passes(sub, text, attrs):
                continue
            try:
                await self._deliver(sub, topic, message_id, stamp, subject, text, attrs)
            except (AwsError, ValueError) as exc:
                log.warning("sns: delivery to %s failed: %s", sub.endpoint, exc)
        return message_id

    @staticmethod
    def _passes(sub: Subscription, text: str, attrs: dict[str, dict[str, str]]) -> bool:
        raw = sub.attributes.get("FilterPolicy")
        if not raw:
            return True
        policy = json.loads(raw)
        if sub.attributes.get("FilterPolicyScope") == "MessageBody":
            try:
                body = json.loads(text)
            except ValueError:
                return False
            return isinstance(body, dict) and pattern_matches(policy, body)
        return pattern_matches(policy, _filter_view(attrs))

    async def _deliver(
        self,
        sub: Subscription,
        topic: Topic,
        message_id: str,
        stamp: str,
        subject: str | None,
        text: str,
        attrs: dict[str, dict[str, str]],
    ) -> None:
        parts = sub.endpoint.split(":")
        if parts[4] != topic.account_id:
            raise ValueError("the endpoint is in another account")
        if sub.protocol == "sqs":
            q = self._queues.by_arn(sub.endpoint)
            if q is None:
                raise ValueError("the queue does not exist")
            if sub.attributes.get("RawMessageDelivery", "false").lower() == "true":
                body = text
            else:
                envelope: dict[str, Any] = {
                    "Type": "Notification",
                    "MessageId": message_id,
                    "TopicArn": topic.arn,
                }
                if subject is not None:
                    envelope["Subject"] = subject
                envelope.update({"Message": text, "Timestamp": stamp, "SignatureVersion": "1"})
                if attrs:
                    envelope["MessageAttributes"] = attrs
                body = json.dumps(envelope)
            await self._queues.send(q, [NewMessage(body=body, md5_body=md5_of_body(body))])
            return
        qualifier = parts[7] if len(parts) == 8 else None
        cfg = await self._router.resolve(topic.account_id, parts[3], parts[6], qualifier)
        event = {
            "Records": [
                {
                    "EventSource": "aws:sns",
                    "EventVersion": "1.0",
                    "EventSubscriptionArn": sub.arn,
                    "Sns": {
                        "Type": "Notification",
                        "MessageId": message_id,
                        "TopicArn": topic.arn,
                        "Subject": subject,
                        "Message": text,
                        "Timestamp": stamp,
                        "SignatureVersion": "1",
                        "MessageAttributes": attrs,
                    },
                }
            ]
        }
        rand = os.urandom(20).hex()
        await self._router.events.submit(
            cfg,
            Invocation(
                request_id=new_request_id(),
                payload=json.dumps(event).encode(),
                invoked_arn=f"{cfg.arn}:{qualifier}" if qualifier else cfg.arn,
                trace_id=f"Root=1-{int(time.time()):08x}-{rand[:24]};Parent={rand[24:]};Sampled=0",
            ),
        )
