"""The Lambda Runtime API (``/2018-06-01/runtime/...``), served per environment.

Each execution environment gets its own listener (a socket bound to 127.0.0.1:9001
inside its network namespace), so the connection itself says which environment is
calling: no token, no lookup, and no way to address another environment.

Paths, headers and status codes follow AWS's "Using the Lambda runtime API" page:
``GET invocation/next`` blocks until an invocation is ready; ``POST
invocation/{id}/response`` and ``POST invocation/{id}/error`` answer 202; ``POST
init/error`` answers 202 and the environment is then torn down. An unknown or stale
request id answers 400 ``InvalidRequestID``; a response past the limit 413.

``init/error`` is Init's alone, as in Lambda's Runtime API (RAPID): once the runtime has
called ``invocation/next`` it answers 403 ``InvalidStateTransition`` ("State transition
from Running to InitError failed for runtime. Error: State transition is not allowed"),
naming the runtime's state: ``Ready`` (waiting in ``next``), ``Running`` (holding an
invocation) or ``RuntimeResponseSentState`` (answered it).
"""

from __future__ import annotations

import json
from typing import Protocol

from hearth.api.types import Request, Response
from hearth.deferred import Deferred

PREFIX = "/2018-06-01/runtime/"
_NEXT = PREFIX + "invocation/next"
_ACCEPTED = Response(202, [("Content-Type", "application/json")], b'{"status":"OK"}')


def _error(status: int, error_type: str, message: str) -> Response:
    body = json.dumps({"errorMessage": message, "errorType": error_type}).encode()
    return Response(status, [("Content-Type", "application/json")], body)


class RuntimeApiTarget(Protocol):
    """The environment, as seen by its Runtime API endpoint."""

    restore: bool
    """Started from a SnapStart template (``restore/error`` is allowed)."""

    async def next_invocation(self) -> Response: ...

    def next_invocation_nowait(self) -> Response | Deferred[Response]:
        """The next invocation if one is waiting, else a future of it (cancelled if the
        runtime goes away)."""
        ...

    def post_response(self, request_id: str, body: bytes) -> Response | None: ...

    def post_error(self, request_id: str, error_type: str, body: bytes) -> Response | None: ...

    def post_init_error(self, error_type: str, body: bytes) -> None: ...

    def post_restore_error(self, error_type: str, body: bytes) -> None: ...


class RuntimeApi:
    """Routes Runtime API requests of one environment to it.

    :meth:`serve` is the hot path (no task per request: it answers at once, or with a
    future for a parked ``invocation/next``); calling the object is the same as a
    coroutine, for servers that wrap it (the Extensions API endpoint).
    """

    def __init__(self, target: RuntimeApiTarget, max_response: int) -> None:
        self._target = target
        self._max_response = max_response
        self._state = "Started"
        """The runtime's state as RAPID names it; ``init/error`` is taken only when Started."""
        self._parked: Deferred[Response] | None = None
        """The last ``invocation/next`` that had to wait (its outcome decides Ready/Running)."""

    async def __call__(self, req: Request) -> Response:
        if req.method == "GET" and req.path == _NEXT:
            # Through the target's coroutine: with extensions it first waits for them.
            self._state = "Ready"
            self._parked = None
            invocation = await self._target.next_invocation()
            if invocation.status == 200:
                self._state = "Running"
            return invocation
        answer = self.serve(req)
        return answer if isinstance(answer, Response) else await answer.future()

    def serve(self, req: Request) -> Response | Deferred[Response]:
        path = req.path
        if not path.startswith(PREFIX):
            return _error(404, "UnknownPath", f"Unknown path {path}")
        rest = path[len(PREFIX) :]
        if rest == "invocation/next":
            if req.method != "GET":
                return _error(405, "MethodNotAllowed", "invocation/next takes GET")
            self._state = "Ready"
            invocation = self._target.next_invocation_nowait()
            if isinstance(invocation, Response):
                self._parked = None
                if invocation.status == 200:
                    self._state = "Running"
            else:
                self._parked = invocation
            return invocation
        if rest in ("init/error", "restore/error"):  # restore/error: SnapStart's hooks
            return self._phase_error(req, rest)
        if rest.startswith("invocation/"):
            request_id, _, verb = rest[len("invocation/") :].partition("/")
            if req.method != "POST":
                return _error(405, "MethodNotAllowed", f"{verb} takes POST")
            if verb == "response":
                if len(req.body) > self._max_response:
                    return self.oversized(req)
                answer = self._target.post_response(request_id, req.body)
            elif verb == "error":
                error_type = req.headers.get(
                    "lambda-runtime-function-error-type", "Runtime.Unknown"
                )
                answer = self._target.post_error(request_id, error_type, req.body)
            else:
                return _error(404, "UnknownPath", f"Unknown path {path}")
            if answer is None:
                self._state = "RuntimeResponseSentState"
                self._parked = None
                return _ACCEPTED
            return answer
        return _error(404, "UnknownPath", f"Unknown path {path}")

    def _current_state(self) -> str:
        """``Ready`` becomes ``Running`` once the parked ``invocation/next`` got an event."""
        fut = self._parked
        if (
            self._state == "Ready"
            and fut is not None
            and fut.done()
            and not fut.cancelled()
            and fut.exception() is None
            and fut.result().status == 200
        ):
            self._state = "Running"
            self._parked = None
        return self._state

    def _phase_error(self, req: Request, rest: str) -> Response:
        """``init/error`` (Init failed) or ``restore/error`` (an after-restore hook failed,
        in an environment forked from a SnapStart template): taken only while Started."""
        restore = rest == "restore/error"
        if req.method != "POST":
            return _error(405, "MethodNotAllowed", f"{rest} takes POST")
        state = self._current_state()
        if state != "Started" or (restore and not self._target.restore):
            target = "RestoreError" if restore else "InitError"
            return _error(
                403,
                "InvalidStateTransition",
                f"State transition from {state} to {target} failed for runtime."
                " Error: State transition is not allowed",
            )
        error_type = req.headers.get("lambda-runtime-function-error-type", "Runtime.Unknown")
        if restore:
            self._target.post_restore_error(error_type, req.body)
        else:
            self._target.post_init_error(error_type, req.body)
        return _ACCEPTED

    def oversized(self, req: Request) -> Response:
        """A response past the limit: the invocation fails with Function.ResponseSizeTooLarge.

        Also the HTTP server's answer to a body past its own cap (the body is not kept),
        so a far larger response fails the invocation too instead of leaving it to time out.
        """
        rest = req.path[len(PREFIX) :] if req.path.startswith(PREFIX) else ""
        request_id, _, verb = rest.removeprefix("invocation/").partition("/")
        if rest.startswith("invocation/") and verb == "response":
            self._target.post_error(
                request_id,
                "Function.ResponseSizeTooLarge",
                json.dumps(
                    {
                        "errorMessage": "Response payload size exceeded maximum allowed"
                        f" payload size ({self._max_response} bytes).",
                        "errorType": "Function.ResponseSizeTooLarge",
                    }
                ).encode(),
            )
        return _error(
            413,
            "RequestEntityTooLarge",
            f"Exceeded maximum allowed payload size ({self._max_response} bytes).",
        )


def invalid_request_id(request_id: str) -> Response:
    return _error(400, "InvalidRequestID", f"Invalid request ID: {request_id!r}")
