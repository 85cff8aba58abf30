"""The public endpoint: authenticate every request, then dispatch by protocol.

Dispatch:

* ``/_hearth/code/<sha>.zip`` — code download URLs (GetFunction's ``Code.Location``);
  authenticated by their own HMAC signature and expiry, like a presigned S3 URL.
* ``/_hearth/health`` — liveness, no auth.
* ``X-Amz-Target: Logs_20140328.*`` — CloudWatch Logs (JSON 1.1).
* ``/2015-03-31/...``, ``/2016-08-19/...`` — Lambda (REST-JSON).

Every other request is SigV4-verified before anything else runs; a bad signature is a
403 with the AWS error type and nothing executes.
"""

from __future__ import annotations

import logging
from typing import Protocol
from urllib.parse import parse_qsl

from hearth.api.lambda_api import MAX_SYNC_PAYLOAD, LambdaApi
from hearth.api.types import Principal, Request, Response
from hearth.api.wire import json11_error, json_response, rest_json_error
from hearth.errors import AwsError, RequestTooLarge, ServiceError

log = logging.getLogger(__name__)

LOGS_TARGET = "Logs_20140328."


class Verifier(Protocol):
    def verify(
        self, method: str, raw_path: str, raw_query: str, headers: dict[str, str], body: bytes
    ) -> Principal: ...


class LogsHandler(Protocol):
    async def __call__(
        self, account_id: str, region: str, target: str, body: bytes
    ) -> Response: ...


class App:
    def __init__(self, verifier: Verifier, lambda_api: LambdaApi, logs: LogsHandler) -> None:
        self._verifier = verifier
        self._lambda = lambda_api
        self._logs = logs

    async def __call__(self, req: Request) -> Response:
        target = req.headers.get("x-amz-target", "")
        is_json11 = target.startswith(LOGS_TARGET)
        try:
            if req.path.startswith("/_hearth/"):
                return self._internal(req)
            principal = self._verifier.verify(
                req.method, req.path, req.query, req.headers, req.body
            )
            if is_json11:
                return await self._logs(principal.account_id, principal.region, target, req.body)
            if self._lambda.handles(req.path):
                return await self._lambda(principal, req)
            raise AwsError(
                f"Unknown operation {req.method} {req.path}",
                code="UnknownOperationException",
                status=404,
            )
        except AwsError as err:
            return json11_error(err) if is_json11 else rest_json_error(err)
        except Exception:
            log.exception("internal error on %s %s", req.method, req.path)
            internal = ServiceError("An internal error occurred in Hearth; see the server log.")
            return json11_error(internal) if is_json11 else rest_json_error(internal)

    def _internal(self, req: Request) -> Response:
        if req.path == "/_hearth/health":
            return json_response(200, {"status": "ok"})
        if req.path.startswith("/_hearth/code/") and req.path.endswith(".zip"):
            sha = req.path[len("/_hearth/code/") : -len(".zip")]
            q = dict(parse_qsl(req.query))
            data = self._lambda.functions.read_code(
                sha, q.get("Expires", ""), q.get("Signature", "")
            )
            if data is not None:
                return Response(200, [("Content-Type", "application/zip")], data)
            return Response(403, [("Content-Type", "text/plain")], b"Access Denied")
        return Response(404, [("Content-Type", "text/plain")], b"Not Found")


def too_large(req: Request) -> Response:
    """Answer for a request body past the server's hard cap (connection then closes)."""
    is_invoke = req.path.endswith("/invocations") or req.path.endswith("/invocations/")
    limit = MAX_SYNC_PAYLOAD if is_invoke else 70 * 1024 * 1024
    op = "InvokeFunction" if is_invoke else "this"
    return rest_json_error(
        RequestTooLarge(f"Request must be smaller than {limit} bytes for the {op} operation")
    )
