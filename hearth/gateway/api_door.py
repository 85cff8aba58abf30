"""The front door of HTTP APIs: ``<api-id>.execute-api[.<region>].localhost`` hosts and the
path form ``/_hearth/execute-api/<api-id>/...``.

Algorithm per request:

1. Find the API (unknown → 404 ``{"message":"Not Found"}``; with
   ``DisableExecuteApiEndpoint`` → 403 ``{"message":"Forbidden"}``).
2. Pick the stage: a first path segment naming a stage selects it (and is stripped for
   route matching); otherwise the ``$default`` stage if there is one; otherwise 404.
3. With a CORS configuration, answer a preflight here (204, as HTTP APIs do).
4. Match the route (most specific wins, see :mod:`hearth.gateway.routes`); none → 404.
5. A route with ``authorizationType`` ``AWS_IAM`` needs a valid SigV4 signature (any
   account's: HTTP APIs have no resource policies), else 403 ``{"message":"Forbidden"}``;
   the signer is ``requestContext.authorizer.iam`` in the event.
6. Usage plans (a Hearth extension, see :mod:`hearth.gateway.usage`): if the stage is
   in a usage plan, the ``x-api-key`` header must name an enabled key of such a plan
   (else 403 ``{"message":"Forbidden"}``); the plan's throttle and quota apply (429
   ``{"message":"Too Many Requests"}`` / ``{"message":"Limit Exceeded"}``).
7. Stage and route throttling: the route's ``RouteSettings`` if set, else the stage's
   ``DefaultRouteSettings``; a refused token is a 429 ``{"message":"Too Many Requests"}``.
8. Build the event in the integration's payload format, run the function, map its
   answer. A function error or unmappable answer is a 500
   ``{"message":"Internal Server Error"}``, as HTTP APIs answer; an event over the 6 MB
   invoke limit is a 413; an answer slower than the integration's ``timeoutInMillis`` is
   a 503 ``{"message":"Service Unavailable"}``.
"""

from __future__ import annotations

import asyncio
import logging
import re
from typing import Any, Protocol

from hearth.api.types import Principal, Request, Response
from hearth.errors import AuthError, AwsError, TooManyRequests
from hearth.gateway import cors
from hearth.gateway.api_items import substitute_stage_variables
from hearth.gateway.apis import parse_integration_uri
from hearth.gateway.apis_store import ApiStore, LiveApi
from hearth.gateway.errors import BadRequest
from hearth.gateway.events import (
    BadLambdaResponse,
    EventContext,
    event_v1,
    event_v2,
    map_response,
)
from hearth.gateway.invoker import EventTooLarge, RouterLike, encode_event, invoke_function
from hearth.gateway.routes import Match
from hearth.gateway.throttle import Buckets
from hearth.gateway.url_door import Verifier, addressed, claims, iam_context, message
from hearth.ids import new_request_id

log = logging.getLogger(__name__)

_HOST = re.compile(r"(?P<id>[a-z0-9]{10})\.execute-api(?:\.[a-z0-9-]+)?\.localhost(?::\d+)?")
_PATH = re.compile(r"/_hearth/execute-api/(?P<id>[a-z0-9]{10})(?P<rest>/.*)?")
PATH_PREFIX = "/_hearth/execute-api/"
#: API Gateway's payload limit for HTTP APIs.
MAX_BODY = 10 * 1024 * 1024


class KeyCheck(Protocol):
    async def check(self, api_id: str, stage: str, api_key: str | None) -> Response | None:
        """None to let the request in, else the response refusing it."""
        ...


def lambda_cors(c: dict[str, Any]) -> dict[str, Any]:
    """apigatewayv2 ``CorsConfiguration`` (camelCase) → the keys :mod:`cors` reads."""
    return {k[0].upper() + k[1:]: v for k, v in c.items()}


class HttpApiDoor:
    def __init__(self, apis: ApiStore, router: RouterLike, buckets: Buckets) -> None:
        self._apis = apis
        self._router = router
        self._buckets = buckets
        self.keys: KeyCheck | None = None
        self.verifier: Verifier | None = None  # for routes with authorizationType AWS_IAM

    def claims(self, req: Request) -> bool:
        return claims(req, PATH_PREFIX, _HOST)

    async def __call__(self, req: Request) -> Response:
        target = addressed(req, _HOST, _PATH)
        if target is None:
            return message(404, "Not Found")
        api_id, path = target
        live = await self._apis.live(api_id)
        if live is None:
            return message(404, "Not Found")
        if live.doc.api.get("disableExecuteApiEndpoint"):
            return message(403, "Forbidden")  # as AWS answers on a disabled default endpoint
        stage, route_path = _stage_of(live, path)
        if stage is None:
            return message(404, "Not Found")
        request_id = new_request_id()
        resp = await self._serve(live, req, stage, path, route_path, request_id)
        resp.headers.append(("Apigw-Requestid", request_id))
        if req.method == "HEAD":
            resp.body = b""  # a body after a HEAD answer would corrupt a kept-alive stream
        api_cors = live.doc.api.get("corsConfiguration")
        if not api_cors or cors.is_preflight(req):
            return resp
        return cors.decorate(lambda_cors(api_cors), req, resp)

    async def _serve(
        self, live: LiveApi, req: Request, stage: str, raw_path: str, route_path: str, rid: str
    ) -> Response:
        api_cors = live.doc.api.get("corsConfiguration")
        if api_cors and cors.is_preflight(req):
            return cors.preflight(lambda_cors(api_cors), req, 204)
        if len(req.body) > MAX_BODY:
            return message(413, "Request Entity Too Large")
        match = live.table.match(req.method, route_path)
        if match is None or not match.target.startswith("integrations/"):
            return message(404, "Not Found")
        authorizer: dict[str, Any] | None = None
        if _auth_type(live, match) == "AWS_IAM":
            principal = self._signer(req)
            if principal is None:
                return message(403, "Forbidden")
            authorizer = {"iam": iam_context(principal)}
        if self.keys is not None:
            refused = await self.keys.check(live.doc.api_id, stage, req.headers.get("x-api-key"))
            if refused is not None:
                return refused
        stage_doc = live.doc.stages.get(stage, {})
        settings = stage_doc.get("routeSettings", {}).get(match.key.key) or stage_doc.get(
            "defaultRouteSettings", {}
        )
        rate, burst = settings.get("throttlingRateLimit"), settings.get("throttlingBurstLimit")
        if rate is not None or burst is not None:
            key = (live.doc.api_id, stage, match.key.key)
            rate_f = float(rate) if rate is not None else 10_000.0
            burst_i = int(burst) if burst is not None else 5_000
            if not self._buckets.allow(key, rate_f, burst_i):
                return message(429, "Too Many Requests")
        integration = live.doc.integrations.get(match.target[len("integrations/") :])
        if integration is None:
            return message(500, "Internal Server Error")
        return await self._invoke(
            live, req, stage, stage_doc, raw_path, match, integration, rid, authorizer
        )

    def _signer(self, req: Request) -> Principal | None:
        """Who signed the request (SigV4, as sent), or None if it is not validly signed."""
        if self.verifier is None:
            return None
        try:
            return self.verifier.verify(req.method, req.path, req.query, req.headers, req.body)
        except AuthError:
            return None

    async def _invoke(
        self,
        live: LiveApi,
        req: Request,
        stage: str,
        stage_doc: dict[str, Any],
        raw_path: str,
        match: Match,
        integration: dict[str, Any],
        rid: str,
        authorizer: dict[str, Any] | None,
    ) -> Response:
        d = live.doc
        version = integration.get("payloadFormatVersion", "2.0")
        ctx = EventContext(
            request_id=rid,
            account_id=d.account_id,
            api_id=d.api_id,
            domain_name=f"{d.api_id}.execute-api.{d.region}.localhost",
            raw_path=raw_path,
            route_key=match.key.key,
            stage=stage,
            resource_path=match.key.path or "$default",
            path_parameters=match.path_parameters or None,
            stage_variables=stage_doc.get("stageVariables") or None,
            authorizer=authorizer,
        )
        event = event_v1(req, ctx) if version == "1.0" else event_v2(req, ctx)
        try:
            payload = encode_event(event)
        except EventTooLarge:
            return message(413, "Request Entity Too Large")
        try:
            uri = substitute_stage_variables(
                integration["integrationUri"], stage_doc.get("stageVariables") or {}
            )
            region, account, name, qualifier = parse_integration_uri(uri)
            if account != d.account_id:  # a stage variable may not reach another account
                raise BadRequest(f"Integration URI {uri} names another account's function")
            task = asyncio.ensure_future(
                invoke_function(self._router, account, region, name, qualifier, payload, rid)
            )
            done, _ = await asyncio.wait({task}, timeout=_timeout_s(integration))
            if not done:
                # The function runs on to its own timeout; its late answer is dropped.
                task.add_done_callback(_drop_result)
                return message(503, "Service Unavailable")
            result = task.result()
        except TooManyRequests:
            return message(429, "Too Many Requests")
        except (AwsError, BadRequest) as err:
            log.warning("HTTP API %s: integration failed: %s", d.api_id, err.message)
            return message(500, "Internal Server Error")
        if result.function_error:
            return message(500, "Internal Server Error")
        try:
            return map_response(result.payload, version=version)
        except BadLambdaResponse as exc:
            log.info("HTTP API %s: unmappable response: %s", d.api_id, exc)
            return message(500, "Internal Server Error")


def _stage_of(live: LiveApi, path: str) -> tuple[str | None, str]:
    """(stage, path to match routes on) for a request path."""
    first, _, rest = path[1:].partition("/")
    stages = live.doc.stages
    if first and first != "$default" and first in stages:
        return first, "/" + rest
    if "$default" in stages:
        return "$default", path
    return None, path


def _timeout_s(integration: dict[str, Any]) -> float:
    return int(integration.get("timeoutInMillis", 30000)) / 1000


def _drop_result(task: asyncio.Future[Any]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.info("HTTP API: late integration failed: %s", task.exception())


def _auth_type(live: LiveApi, match: Match) -> str:
    for route in live.doc.routes.values():
        if route.get("routeKey") == match.key.key:
            return str(route.get("authorizationType", "NONE"))
    return "NONE"
