"""The other two ways to invoke: InvokeWithResponseStream and the legacy InvokeAsync.

Both run through the Invoke handler of :class:`~hearth.api.lambda_api.LambdaApi` (the same
validation, routing, concurrency and logs), and differ only in their wire shapes:

* ``POST /2021-11-15/functions/{FunctionName}/response-streaming-invocations``: the
  response is an ``application/vnd.amazon.eventstream`` of ``PayloadChunk`` events with
  the payload, then one ``InvokeComplete`` (``ErrorCode`` / ``ErrorDetails`` when the
  function failed, ``LogResult`` with ``LogType: Tail``). Hearth's runtimes answer with
  whole responses (as Lambda's Python runtimes do), so the payload arrives when the
  function has returned, cut into chunks of at most 64 KiB.
* ``POST /2014-11-13/functions/{FunctionName}/invoke-async/``: an ``Event`` invocation;
  202 with ``{"Status": 202}``.

The event stream framing (AWS's, as botocore decodes it): each message is the total
length and headers length (big-endian u32), the CRC32 of those eight bytes, the headers
(name length u8, name, type 7 = string, value length u16, value), the payload and the
CRC32 of everything before it. Written by hand: botocore only ships the decoder.
"""

from __future__ import annotations

import json
import re
import struct
import zlib
from typing import Any

from hearth.api.lambda_api import LambdaApi
from hearth.api.types import Principal, Request, Response
from hearth.api.wire import check_enum, json_response
from hearth.errors import RequestEntityTooLarge

CHUNK = 64 * 1024
INVOKE_ASYNC_PAYLOAD = 256 * 1024
_STREAM = r"/2021-11-15/functions/(?P<fn>[^/]+)/response-streaming-invocations/?"
_ASYNC = r"/2014-11-13/functions/(?P<fn>[^/]+)/invoke-async/?"


def _header(name: str, value: str) -> bytes:
    raw_name, raw_value = name.encode(), value.encode()
    return (
        struct.pack("B", len(raw_name))
        + raw_name
        + struct.pack(">BH", 7, len(raw_value))
        + raw_value
    )


def event_message(event_type: str, content_type: str, payload: bytes) -> bytes:
    """One event-stream message of an ``event`` named ``event_type``."""
    headers = (
        _header(":event-type", event_type)
        + _header(":content-type", content_type)
        + _header(":message-type", "event")
    )
    total = 12 + len(headers) + len(payload) + 4
    prelude = struct.pack(">II", total, len(headers))
    message = prelude + struct.pack(">I", zlib.crc32(prelude)) + headers + payload
    return message + struct.pack(">I", zlib.crc32(message))


class InvokeVariants:
    def __init__(self, api: LambdaApi) -> None:
        self._api = api

    def register(self, add_route: Any) -> None:
        add_route("POST", _STREAM, self._stream)
        add_route("POST", _ASYNC, self._invoke_async)

    async def _stream(self, p: Principal, req: Request, m: re.Match[str]) -> Response:
        kind = req.headers.get("x-amz-invocation-type", "RequestResponse")
        check_enum(kind, "invocationType", ["RequestResponse", "DryRun"])
        resp = await self._api.invoke(p, req, m)  # Invoke's own validation and run
        if resp.status != 200:
            return resp
        headers = {name.lower(): value for name, value in resp.headers}
        complete: dict[str, str] = {}
        body = b""
        error = headers.get("x-amz-function-error")
        if error:
            complete["ErrorCode"] = error
            complete["ErrorDetails"] = bytes(resp.body).decode("utf-8", "replace")
        else:
            payload = bytes(resp.body)
            body = b"".join(
                event_message("PayloadChunk", "application/octet-stream", payload[i : i + CHUNK])
                for i in range(0, len(payload), CHUNK)
            )
        if "x-amz-log-result" in headers:
            complete["LogResult"] = headers["x-amz-log-result"]
        body += event_message("InvokeComplete", "application/json", json.dumps(complete).encode())
        out = [
            ("Content-Type", "application/vnd.amazon.eventstream"),
            ("x-amzn-RequestId", headers.get("x-amzn-requestid", "")),
            ("X-Amz-Executed-Version", headers.get("x-amz-executed-version", "$LATEST")),
        ]
        return Response(200, out, body)

    async def _invoke_async(self, p: Principal, req: Request, m: re.Match[str]) -> Response:
        # AWS's InvokeAsync reference: "The payload limit is 256KB. For larger payloads,
        # for up to 1MB, use Invoke." Refused as an Event Invoke over its limit is.
        if len(req.body) > INVOKE_ASYNC_PAYLOAD:
            raise RequestEntityTooLarge(
                f"{len(req.body)} byte payload is too large for the Event invocation type"
                f" (limit {INVOKE_ASYNC_PAYLOAD} bytes)"
            )
        event = Request(
            req.method,
            req.path,
            req.query,
            {**req.headers, "x-amz-invocation-type": "Event"},
            req.body,
            req.client,
        )
        await self._api.invoke(p, event, m)
        return json_response(202, {"Status": 202})
