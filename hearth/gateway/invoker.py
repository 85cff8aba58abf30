"""Run a function for an HTTP front door: event in, result out, through the router.

The same path as the Lambda Invoke API (resolve the qualifier, including a weighted alias
draw → admit → worker), so throttling, versions and warm environments behave the same.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any, Protocol

from hearth.types import FunctionConfig
from hearth.worker.invocation import Invocation, InvokeResult

#: Lambda's synchronous payload limit; a front-door event larger than this is a 413.
MAX_EVENT_BYTES = 6 * 1024 * 1024


class RouterLike(Protocol):
    async def resolve(
        self, account_id: str, region: str, name: str, qualifier: str | None
    ) -> FunctionConfig: ...

    async def invoke(self, cfg: FunctionConfig, inv: Invocation) -> InvokeResult: ...


class EventTooLarge(Exception):
    """The event would exceed the synchronous invoke payload limit."""


def encode_event(event: dict[str, Any]) -> bytes:
    payload = json.dumps(event, separators=(",", ":")).encode()
    if len(payload) > MAX_EVENT_BYTES:
        raise EventTooLarge
    return payload


def _trace_id() -> str:
    return f"Root=1-{int(time.time()):08x}-{os.urandom(12).hex()};Sampled=0"


async def invoke_function(
    router: RouterLike,
    account_id: str,
    region: str,
    name: str,
    qualifier: str | None,
    payload: bytes,
    request_id: str,
) -> InvokeResult:
    cfg = await router.resolve(account_id, region, name, qualifier)
    invoked = f"{cfg.arn}:{qualifier}" if qualifier else cfg.arn
    inv = Invocation(
        request_id=request_id, payload=payload, invoked_arn=invoked, trace_id=_trace_id()
    )
    return await router.invoke(cfg, inv)
