"""The front door of function URLs: ``<url-id>.lambda-url.<region>.localhost`` hosts and
the path form ``/_hearth/url/<url-id>/...``.

Algorithm per request:

1. Find the URL configuration by id (unknown → 404 ``{"message":"Not Found"}``).
2. ``AuthType AWS_IAM``: verify the SigV4 signature (service ``lambda``) over the request
   exactly as sent; a missing or bad signature, or a signer of another account, is a 403
   ``{"Message":"Forbidden"}`` (``x-amzn-ErrorType: AccessDeniedException``). ``NONE``
   lets everyone in.
3. A CORS preflight is answered here when the URL has a CORS configuration.
4. The request becomes a payload format 2.0 event (a body over the 6 MB synchronous
   limit is a 413), the function (or alias) runs through the router, and its answer is
   mapped to the HTTP response; an unhandled function error or an answer that cannot be
   mapped is a 502, a throttle a 429.
"""

from __future__ import annotations

import json
import logging
import re
from typing import Any, Protocol

from hearth.api.types import Principal, Request, Response
from hearth.errors import AuthError, AwsError, ResourceNotFound, TooManyRequests
from hearth.gateway import cors
from hearth.gateway.events import BadLambdaResponse, EventContext, event_v2, map_response
from hearth.gateway.invoker import EventTooLarge, RouterLike, encode_event, invoke_function
from hearth.gateway.urls import FunctionUrls, UrlConfig, url_host
from hearth.ids import new_request_id

log = logging.getLogger(__name__)

_HOST = re.compile(r"(?P<id>[a-z0-9]{32})\.lambda-url\.(?P<region>[a-z0-9-]+)\.localhost(?::\d+)?")
_PATH = re.compile(r"/_hearth/url/(?P<id>[a-z0-9]{32})(?P<rest>/.*)?")
PATH_PREFIX = "/_hearth/url/"


class Verifier(Protocol):
    def verify(
        self, method: str, raw_path: str, raw_query: str, headers: dict[str, str], body: bytes
    ) -> Principal: ...


def message(status: int, text: str, key: str = "message") -> Response:
    body = json.dumps({key: text}).encode()
    return Response(status, [("Content-Type", "application/json")], body)


def addressed(req: Request, host: re.Pattern[str], path: re.Pattern[str]) -> tuple[str, str] | None:
    """The target id and path a front-door request addresses, by Host or path form.

    Host form: ``<id>.<suffix>`` with the request's own path; path form:
    ``/_hearth/<kind>/<id>/<rest>`` for clients that cannot set Host. Both patterns
    capture ``id`` (and the path form ``rest``).
    """
    m = host.fullmatch(req.headers.get("host", "").lower())
    if m is not None:
        return m.group("id"), req.path or "/"
    pm = path.fullmatch(req.path)
    if pm is None:
        return None
    return pm.group("id"), pm.group("rest") or "/"


def claims(req: Request, prefix: str, host: re.Pattern[str]) -> bool:
    """Whether a request is for a front door: its path form (``prefix``) or Host form."""
    return (
        req.path.startswith(prefix)
        or host.fullmatch(req.headers.get("host", "").lower()) is not None
    )


class FunctionUrlDoor:
    def __init__(self, urls: FunctionUrls, router: RouterLike, verifier: Verifier) -> None:
        self._urls = urls
        self._router = router
        self._verifier = verifier

    def claims(self, req: Request) -> bool:
        return claims(req, PATH_PREFIX, _HOST)

    async def __call__(self, req: Request) -> Response:
        target = addressed(req, _HOST, _PATH)
        if target is None:
            return message(404, "Not Found")
        url_id, raw_path = target
        u = await self._urls.lookup(url_id)
        if u is None:
            return message(404, "Not Found")
        request_id = new_request_id()
        authorizer: dict[str, Any] | None = None
        if u.auth_type == "AWS_IAM":
            try:
                principal = self._verifier.verify(
                    req.method, req.path, req.query, req.headers, req.body
                )
            except AuthError:
                return _forbidden()
            if principal.account_id != u.account_id:
                return _forbidden()
            authorizer = {"iam": iam_context(principal)}
        if u.cors and cors.is_preflight(req):
            return cors.preflight(u.cors, req)
        resp = await self._run(u, req, raw_path, request_id, authorizer)
        resp.headers.append(("x-amzn-RequestId", request_id))
        if req.method == "HEAD":
            resp.body = b""  # a body after a HEAD answer would corrupt a kept-alive stream
        return cors.decorate(u.cors, req, resp)

    async def _run(
        self,
        u: UrlConfig,
        req: Request,
        raw_path: str,
        request_id: str,
        authorizer: dict[str, Any] | None,
    ) -> Response:
        ctx = EventContext(
            request_id=request_id,
            account_id=u.account_id,
            api_id=u.url_id,
            domain_name=url_host(u.url_id, u.region),
            raw_path=raw_path,
            authorizer=authorizer,
        )
        try:
            payload = encode_event(event_v2(req, ctx))
        except EventTooLarge:
            # Lambda's front end, as a function URL's raw answer shows it.
            resp = message(
                413,
                "Request must be smaller than 6291456 bytes for the InvokeFunction operation",
                key="Message",
            )
            resp.headers.append(("x-amzn-ErrorType", "RequestEntityTooLargeException"))
            return resp
        try:
            result = await invoke_function(
                self._router, u.account_id, u.region, u.function, u.qualifier or None,
                payload, request_id,
            )  # fmt: skip
        except TooManyRequests:
            return message(429, "Too Many Requests")
        except ResourceNotFound:
            return message(404, "Not Found")
        except AwsError as err:
            log.warning("function URL %s: %s", u.url_id, err.message)
            return message(502, "Internal Server Error", "Message")
        if result.function_error:
            return message(502, "Internal Server Error", "Message")
        try:
            return map_response(result.payload)
        except BadLambdaResponse as exc:
            log.info("function URL %s: unmappable response: %s", u.url_id, exc)
            return message(502, "Internal Server Error", "Message")


def _forbidden() -> Response:
    resp = message(403, "Forbidden", "Message")
    resp.headers.append(("x-amzn-ErrorType", "AccessDeniedException"))
    return resp


def iam_context(p: Principal) -> dict[str, Any]:
    return {
        "accessKey": p.access_key,
        "accountId": p.account_id,
        "callerId": p.access_key,
        "cognitoIdentity": None,
        "principalOrgId": None,
        "userArn": f"arn:aws:iam::{p.account_id}:user/{p.access_key}",
        "userId": p.access_key,
    }
