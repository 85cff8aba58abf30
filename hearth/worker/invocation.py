"""What the router hands a worker, and what it gets back."""

from __future__ import annotations

import json
from dataclasses import dataclass, field


@dataclass(slots=True)
class Invocation:
    request_id: str
    payload: bytes
    invoked_arn: str
    trace_id: str = ""
    client_context: str = ""
    """JSON text (already base64-decoded), or empty."""
    cognito_identity: str = ""
    want_log_tail: bool = False


@dataclass(slots=True)
class InvokeResult:
    payload: bytes
    function_error: str | None = None
    """``Unhandled`` when the function failed, else None."""
    error_type: str | None = None
    log_tail: str = ""
    executed_version: str = "$LATEST"
    duration_ms: float = 0.0
    billed_ms: int = 0
    max_memory_mb: int = 0
    init_ms: float | None = None
    extra_headers: dict[str, str] = field(default_factory=dict)


def error_payload(error_type: str, message: str, request_id: str | None = None) -> bytes:
    body: dict[str, object] = {"errorType": error_type, "errorMessage": message}
    if request_id is not None:
        body["requestId"] = request_id
    return json.dumps(body).encode()
