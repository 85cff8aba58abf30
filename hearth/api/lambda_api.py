"""Lambda's REST-JSON surface: routes ``/2015-03-31/...`` and friends to the handlers.

Invoke is the hot path: the payload bytes go to the runtime as they came (checked to be
JSON, never re-encoded), and the runtime's answer comes back the same way.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Awaitable, Callable
from urllib.parse import parse_qsl

from hearth.api.functions import FunctionsApi
from hearth.api.names import FunctionRef, merge_qualifier, parse_function_name, path_param
from hearth.api.types import Principal, Request, Response
from hearth.api.wire import (
    check_enum,
    check_int,
    check_string,
    json_response,
    parse_json_body,
    rest_json_error,
)
from hearth.deferred import Deferred
from hearth.errors import (
    AwsError,
    InvalidParameterValue,
    InvalidRequestContent,
    RequestEntityTooLarge,
    RequestTooLarge,
)
from hearth.ids import new_request_id, new_trace_id
from hearth.invoke.router import Router
from hearth.types import FunctionConfig
from hearth.worker.invocation import Invocation, InvokeResult

_API_DATE = re.compile(r"/20\d\d-\d\d-\d\d/")
MAX_SYNC_PAYLOAD = 6 * 1024 * 1024
MAX_ASYNC_PAYLOAD = 1024 * 1024
#: AWS: "Up to 3,583 bytes of base64-encoded data" in ``X-Amz-Client-Context``.
MAX_CLIENT_CONTEXT = 3583

Handler = Callable[
    [Principal, Request, "re.Match[str]"], "Awaitable[Response] | Deferred[Response] | Response"
]
_MATCH_CACHE = 4096


class UnknownOperation(AwsError):
    code = "UnknownOperationException"
    status = 404


class LambdaApi:
    def __init__(self, functions: FunctionsApi, router: Router) -> None:
        self.functions = functions
        self.router = router
        fn = r"/2015-03-31/functions/(?P<fn>[^/]+)"
        self._routes: list[tuple[str, re.Pattern[str], Handler]] = [
            ("POST", re.compile(fn + r"/invocations/?"), self._invoke),
            ("POST", re.compile(r"/2015-03-31/functions/?"), self._create),
            ("GET", re.compile(r"/2015-03-31/functions/?"), self._list),
            ("GET", re.compile(fn + r"/?"), self._get),
            ("GET", re.compile(fn + r"/configuration/?"), self._get_configuration),
            ("PUT", re.compile(fn + r"/code/?"), self._update_code),
            ("PUT", re.compile(fn + r"/configuration/?"), self._update_configuration),
            ("DELETE", re.compile(fn + r"/?"), self._delete),
            ("GET", re.compile(r"/2016-08-19/account-settings/?"), self._account_settings),
        ]
        self._refs: dict[tuple[str, str, str, str], FunctionRef] = {}
        self._matched: dict[tuple[str, str], tuple[Handler, re.Match[str]]] = {}
        """(method, raw path) -> its route and match: the table has ~40 regexes, the
        invoke route is among the last, and a warm function is called by one path."""

    def add_route(self, method: str, pattern: str, handler: Handler) -> None:
        """Register an operation; ``pattern`` is a regex matched against the raw path.

        Routes added later are tried first, so a feature can refine a path of the core.
        """
        self._routes.insert(0, (method, re.compile(pattern), handler))
        self._matched.clear()

    def handles(self, path: str) -> bool:
        """Lambda's REST paths all start with an API date: ``/2015-03-31/``, ``/2021-10-31/``..."""
        return _API_DATE.match(path) is not None

    def __call__(
        self, principal: Principal, req: Request
    ) -> Awaitable[Response] | Deferred[Response] | Response:
        """The handler's answer: a coroutine, or for a warm Invoke a future (see App)."""
        key = (req.method, req.path)
        hit = self._matched.get(key)
        if hit is None:
            hit = self._match(req.method, req.path)
            if len(self._matched) >= _MATCH_CACHE:
                self._matched.clear()
            self._matched[key] = hit
        return hit[0](principal, req, hit[1])

    def _match(self, method: str, path: str) -> tuple[Handler, re.Match[str]]:
        for route_method, pattern, handler in self._routes:
            m = pattern.fullmatch(path)
            if m is not None and route_method == method:
                return handler, m
        raise UnknownOperation(f"Unknown operation {method} {path}")

    # -- helpers ----------------------------------------------------------------------
    @staticmethod
    def _query(req: Request) -> dict[str, str]:
        return dict(parse_qsl(req.query, keep_blank_values=True))

    def _ref(
        self, principal: Principal, m: re.Match[str], req: Request, *, max_len: int = 140
    ) -> FunctionRef:
        raw = path_param(m.group("fn"))
        ref = parse_function_name(
            raw, principal.account_id, max_len=max_len, region=principal.region
        )
        qualifier = merge_qualifier(ref, self._query(req).get("Qualifier"))
        return FunctionRef(ref.name, qualifier)

    # -- control plane ----------------------------------------------------------------
    async def _create(self, p: Principal, req: Request, m: re.Match[str]) -> Response:
        doc = await self.functions.create(p.account_id, p.region, parse_json_body(req.body))
        return json_response(201, doc)

    async def _get(self, p: Principal, req: Request, m: re.Match[str]) -> Response:
        host = req.headers.get("host", "127.0.0.1")
        return json_response(
            200, await self.functions.get(p.account_id, p.region, self._ref(p, m, req), host)
        )

    async def _get_configuration(self, p: Principal, req: Request, m: re.Match[str]) -> Response:
        doc = await self.functions.get_configuration(p.account_id, p.region, self._ref(p, m, req))
        return json_response(200, doc)

    async def _list(self, p: Principal, req: Request, m: re.Match[str]) -> Response:
        q = self._query(req)
        max_items = None
        if "MaxItems" in q:
            try:
                max_items = int(q["MaxItems"])
            except ValueError:
                raise InvalidParameterValue("MaxItems must be an integer") from None
            check_int(max_items, "maxItems", lo=1, hi=10000)
        if "FunctionVersion" in q:
            check_enum(q["FunctionVersion"], "functionVersion", ["ALL"])
        if "MasterRegion" in q:
            check_string(
                q["MasterRegion"], "masterRegion", min_len=1, max_len=50,
                pattern=r"ALL|(eusc-)?[a-z]{2}((-gov)|(-iso([a-z]?)))?-[a-z]+-\d{1}",
            )  # fmt: skip
            if q.get("FunctionVersion") != "ALL":
                # The model's documentation: "If specified, you must set FunctionVersion
                # to ALL" (AWS documents no message; this is the closest form).
                raise InvalidParameterValue(
                    "FunctionVersion must be set to ALL when MasterRegion is specified."
                )
            # MasterRegion lists only Lambda@Edge replicas of functions mastered there;
            # Hearth replicates none.
            return json_response(200, {"Functions": []})
        return json_response(
            200,
            await self.functions.list(
                p.account_id, q.get("Marker"), max_items, q.get("FunctionVersion") == "ALL"
            ),
        )

    async def _update_code(self, p: Principal, req: Request, m: re.Match[str]) -> Response:
        doc = await self.functions.update_code(
            p.account_id, p.region, self._ref(p, m, req), parse_json_body(req.body)
        )
        return json_response(200, doc)

    async def _update_configuration(self, p: Principal, req: Request, m: re.Match[str]) -> Response:
        doc = await self.functions.update_configuration(
            p.account_id, p.region, self._ref(p, m, req), parse_json_body(req.body)
        )
        return json_response(200, doc)

    async def _delete(self, p: Principal, req: Request, m: re.Match[str]) -> Response:
        await self.functions.delete(p.account_id, p.region, self._ref(p, m, req))
        return Response(204, [("x-amzn-RequestId", new_request_id())], b"")

    async def _account_settings(self, p: Principal, req: Request, m: re.Match[str]) -> Response:
        doc = await self.functions.account_settings(p.account_id, self.router.admission.limit)
        return json_response(200, doc)

    # -- invoke (hot path) ------------------------------------------------------------
    async def invoke(self, p: Principal, req: Request, m: re.Match[str]) -> Response:
        """Invoke as a coroutine (for the variants built on it: streaming, InvokeAsync)."""
        answer = self._invoke(p, req, m)
        return await _resolved(answer)

    def _invoke(
        self, p: Principal, req: Request, m: re.Match[str]
    ) -> Awaitable[Response] | Deferred[Response] | Response:
        """Invoke. A warm RequestResponse invoke runs without a task: checks, the cached
        function (or alias), an idle environment, then a Deferred the HTTP server parks on
        (about a tenth of the server's CPU per invoke went to the task and its coroutine
        chain). Anything else (a cache miss, no idle environment, Event) is a coroutine.
        """
        h = req.headers
        invocation_type = h.get("x-amz-invocation-type", "RequestResponse")
        check_enum(invocation_type, "invocationType", ["Event", "RequestResponse", "DryRun"])
        log_type = h.get("x-amz-log-type", "None")
        check_enum(log_type, "logType", ["None", "Tail"])
        limit = MAX_ASYNC_PAYLOAD if invocation_type == "Event" else MAX_SYNC_PAYLOAD
        payload = req.body
        if invocation_type == "Event" and len(payload) > limit:
            raise RequestEntityTooLarge(
                f"{len(payload)} byte payload is too large for the Event invocation type"
                f" (limit {limit} bytes)"
            )
        if len(payload) > limit:
            raise RequestTooLarge(
                f"Request must be smaller than {limit} bytes for the InvokeFunction operation"
            )
        ref = self._invoke_ref(p, m, req)
        cfg = self.router.cached(p.account_id, ref.name, ref.qualifier)
        if cfg is None:
            return self._invoke_resolving(p, req, ref.name, ref.qualifier, invocation_type)
        return self._invoke_cfg(req, cfg, ref.qualifier, invocation_type)

    def _invoke_ref(self, p: Principal, m: re.Match[str], req: Request) -> FunctionRef:
        """The invoked function and qualifier, parsed once per (account, path, query)."""
        key = (p.account_id, p.region, m.group("fn"), req.query)
        ref = self._refs.get(key)
        if ref is None:
            ref = self._ref(p, m, req, max_len=256)
            if len(self._refs) >= _MATCH_CACHE:
                self._refs.clear()
            self._refs[key] = ref
        return ref

    async def _invoke_resolving(
        self, p: Principal, req: Request, name: str, qualifier: str | None, invocation_type: str
    ) -> Response:
        cfg = await self.router.resolve(p.account_id, p.region, name, qualifier)
        answer = self._invoke_cfg(req, cfg, qualifier, invocation_type)
        return await _resolved(answer)

    def _invoke_cfg(
        self, req: Request, cfg: FunctionConfig, qualifier: str | None, invocation_type: str
    ) -> Awaitable[Response] | Deferred[Response] | Response:
        h = req.headers
        payload = req.body
        if not payload.strip():
            payload = b"{}"
        else:
            try:
                json.loads(payload)
            except (ValueError, UnicodeDecodeError) as exc:
                raise InvalidRequestContent(
                    "Could not parse request body into json: Could not parse payload into"
                    f" json: {exc}"
                ) from None
        client_context = ""
        raw_ctx = h.get("x-amz-client-context")
        if raw_ctx:
            if len(raw_ctx) > MAX_CLIENT_CONTEXT:
                # AWS documents the limit (3,583 bytes of base64) but not its error: this is
                # the closest documented form, the 400 InvalidParameterValueException.
                raise InvalidParameterValue(
                    f"Client context must be at most {MAX_CLIENT_CONTEXT} bytes of"
                    " base64-encoded data."
                )
            try:
                client_context = base64.b64decode(raw_ctx, validate=True).decode()
                if not isinstance(json.loads(client_context), dict):
                    raise ValueError("not a JSON object")
            except (binascii.Error, ValueError, UnicodeDecodeError):
                raise InvalidRequestContent(
                    "Client context must be a valid Base64-encoded JSON object."
                ) from None
        request_id = new_request_id()
        inv = Invocation(
            request_id=request_id,
            payload=payload,
            invoked_arn=_invoked_arn(cfg.arn, qualifier),
            trace_id=_trace_id(h),
            client_context=client_context if invocation_type != "Event" else "",
            want_log_tail=h.get("x-amz-log-type") == "Tail",
        )
        if invocation_type == "DryRun":
            return Response(204, [("x-amzn-RequestId", request_id)], b"")
        if invocation_type == "Event":
            return self._submit_event(cfg, inv)
        done = self.router.invoke_nowait(cfg, inv)
        if done is None:
            return self._invoke_waiting(cfg, inv)
        answer: Deferred[Response] = Deferred()
        done.then(lambda d: _settle(answer, inv, d))
        return answer

    async def _submit_event(self, cfg: FunctionConfig, inv: Invocation) -> Response:
        await self.router.events.submit(cfg, inv)
        return Response(202, [("x-amzn-RequestId", inv.request_id)], b"")

    async def _invoke_waiting(self, cfg: FunctionConfig, inv: Invocation) -> Response:
        return _invoke_response(inv, await self.router.invoke(cfg, inv))


async def _resolved(answer: Awaitable[Response] | Deferred[Response] | Response) -> Response:
    if isinstance(answer, Response):
        return answer
    if isinstance(answer, Deferred):
        return await answer.future()
    return await answer


def _settle(answer: Deferred[Response], inv: Invocation, done: Deferred[InvokeResult]) -> None:
    """The warm path's end: the invocation's result as the HTTP response (an error as the
    REST-JSON error it is; the client may have gone, then nobody waits for it)."""
    exc = done.exception()
    if exc is None:
        answer.resolve(_invoke_response(inv, done.result()))
    elif isinstance(exc, AwsError):
        answer.resolve(rest_json_error(exc))
    else:
        answer.fail(exc)


def _invoke_response(inv: Invocation, result: InvokeResult) -> Response:
    # ExecutedVersion is a RequestResponse header only (as on AWS).
    headers = [
        ("Content-Type", "application/json"),
        ("x-amzn-RequestId", inv.request_id),
        ("X-Amz-Executed-Version", result.executed_version),
    ]
    if result.function_error:
        headers.append(("X-Amz-Function-Error", result.function_error))
    if inv.want_log_tail:
        headers.append(("X-Amz-Log-Result", base64.b64encode(result.log_tail.encode()).decode()))
    return Response(200, headers, result.payload)


def _invoked_arn(arn: str, qualifier: str | None) -> str:
    return f"{arn}:{qualifier}" if qualifier else arn


def _trace_id(headers: dict[str, str]) -> str:
    return headers.get("x-amzn-trace-id") or new_trace_id()
