"""The public endpoint: route every request to the part of Hearth that serves it.

Order of dispatch:

1. ``/_hearth/health`` (no auth) and ``/_hearth/code/<sha>.zip`` (code download URLs,
   GetFunction's ``Code.Location``, authenticated by their own HMAC and expiry like a
   presigned S3 URL).
2. *Front doors*: handlers that do their own authentication (function URLs with
   ``AuthType NONE``, HTTP APIs), recognised by Host or path before SigV4.
3. Everything else is SigV4-verified first (a bad signature is a 403 with the AWS error
   type, and nothing executes), then given to the first *service* that claims it:
   CloudWatch Logs (JSON 1.1), the Lambda REST API, and any service registered later.

Errors are encoded in the protocol of the service that was addressed (REST-JSON by
default).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Protocol
from urllib.parse import parse_qsl

from hearth.api.lambda_api import MAX_SYNC_PAYLOAD, LambdaApi
from hearth.api.types import Principal, Request, Response
from hearth.api.wire import json11_error, json_response, rest_json_error
from hearth.deferred import Deferred
from hearth.errors import AwsError, RequestEntityTooLarge, RequestTooLarge, ServiceError

log = logging.getLogger(__name__)

LOGS_TARGET = "Logs_20140328."


class Verifier(Protocol):
    def verify(
        self, method: str, raw_path: str, raw_query: str, headers: dict[str, str], body: bytes
    ) -> Principal: ...


class Service(Protocol):
    """A SigV4-authenticated AWS service served on this endpoint."""

    def claims(self, req: Request) -> bool: ...

    def __call__(
        self, principal: Principal, req: Request
    ) -> Awaitable[Response] | Deferred[Response] | Response:
        """A coroutine (errors raised as AwsError), or on a hot path the Response, or a
        :class:`Deferred` that always carries a Response (errors already encoded)."""
        ...

    def error(self, err: AwsError) -> Response:
        """Encode an error in this service's protocol."""
        ...


class FrontDoor(Protocol):
    """A handler that authenticates requests itself (function URLs, HTTP APIs)."""

    def claims(self, req: Request) -> bool: ...

    async def __call__(self, req: Request) -> Response: ...


LogsHandler = Callable[[str, str, str, bytes], Awaitable[Response]]


class LogsService:
    """CloudWatch Logs (JSON 1.1, ``X-Amz-Target: Logs_20140328.*``)."""

    def __init__(self, handler: LogsHandler) -> None:
        self._handler = handler

    def claims(self, req: Request) -> bool:
        return req.headers.get("x-amz-target", "").startswith(LOGS_TARGET)

    async def __call__(self, principal: Principal, req: Request) -> Response:
        target = req.headers.get("x-amz-target", "")
        return await self._handler(principal.account_id, principal.region, target, req.body)

    def error(self, err: AwsError) -> Response:
        return json11_error(err)


class LambdaService:
    """The Lambda REST-JSON API."""

    def __init__(self, api: LambdaApi) -> None:
        self.api = api

    def claims(self, req: Request) -> bool:
        return self.api.handles(req.path)

    def __call__(
        self, principal: Principal, req: Request
    ) -> Awaitable[Response] | Deferred[Response] | Response:
        return self.api(principal, req)

    def error(self, err: AwsError) -> Response:
        return rest_json_error(err)


class App:
    def __init__(self, verifier: Verifier, lambda_api: LambdaApi) -> None:
        self._verifier = verifier
        self._lambda = lambda_api
        self.services: list[Service] = [LambdaService(lambda_api)]
        self.front_doors: list[FrontDoor] = []

    def add_service(self, service: Service) -> None:
        """Register a service; it is asked before the Lambda API (which claims by path)."""
        self.services.insert(0, service)

    def add_front_door(self, door: FrontDoor) -> None:
        self.front_doors.append(door)

    def __call__(self, req: Request) -> Response | Deferred[Response] | Awaitable[Response]:
        """The answer now, a deferred one (a warm Invoke: no task), or a coroutine."""
        service: Service | None = None
        try:
            # Front doors first: a function URL's own paths may start with /_hearth/, and
            # the path-based URL / HTTP API forms live under it.
            for door in self.front_doors:
                if door.claims(req):
                    return self._guarded(door(req), None, req)
            if req.path.startswith("/_hearth/"):
                return self._internal(req)
            for candidate in self.services:
                if candidate.claims(req):
                    service = candidate
                    break
            principal = self._verifier.verify(
                req.method, req.path, req.query, req.headers, req.body
            )
            if service is None:
                raise AwsError(
                    f"Unknown operation {req.method} {req.path}",
                    code="UnknownOperationException",
                    status=404,
                )
            answer = service(principal, req)
            if isinstance(answer, (Response, Deferred)):
                return answer  # a deferred answer always carries a Response
            return self._guarded(answer, service, req)
        except AwsError as err:
            return service.error(err) if service is not None else rest_json_error(err)
        except Exception:
            return self._internal_error(service, req)

    async def _guarded(
        self, answer: Awaitable[Response], service: Service | None, req: Request
    ) -> Response:
        try:
            return await answer
        except AwsError as err:
            return service.error(err) if service is not None else rest_json_error(err)
        except Exception:
            return self._internal_error(service, req)

    @staticmethod
    def _internal_error(service: Service | None, req: Request) -> Response:
        log.exception("internal error on %s %s", req.method, req.path)
        internal = ServiceError("An internal error occurred in Hearth; see the server log.")
        return service.error(internal) if service is not None else rest_json_error(internal)

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
    if is_invoke:
        return rest_json_error(
            RequestTooLarge(
                f"Request must be smaller than {MAX_SYNC_PAYLOAD} bytes for the InvokeFunction"
                " operation"
            )
        )
    # A code upload: AWS's front end names the operation (a 50 MB zip, base64-encoded).
    path = req.path.rstrip("/")
    if "/layers/" in path:
        op = "PublishLayerVersion"
    elif "/functions/" in path and path.endswith("/code"):
        op = "UpdateFunctionCode"
    elif path.endswith("/functions"):
        op = "CreateFunction"
    else:
        return rest_json_error(RequestEntityTooLarge("The request body is too large."))
    return rest_json_error(
        RequestEntityTooLarge(f"Request must be smaller than 69905067 bytes for the {op} operation")
    )
