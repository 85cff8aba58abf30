"""The apigatewayv2 control plane for HTTP APIs (REST-JSON under ``/v2/apis``).

Operations: Create/Get/Update/Delete Api and GetApis; Create/Get/Update/Delete
Integration and GetIntegrations; the same for Routes, Stages and Deployments; Tag /
Untag / GetTags. Only what Hearth can
serve is accepted: ProtocolType HTTP, integrations of type AWS_PROXY to a Lambda function
(plain or ``arn:aws:apigateway:...:lambda:path/.../invocations`` URI, optionally with a
version or alias qualifier) with PayloadFormatVersion 1.0 or 2.0. Anything else is a
``BadRequestException`` that says so.

Routes and stages are live as soon as they are written: Hearth's deployments are records
(see :mod:`hearth.gateway.deployments`), so every stage behaves as ``AutoDeploy`` (the
flag is stored and reported as given).
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qsl, unquote

from hearth.api.types import Principal, Request, Response
from hearth.api.wire import json_response, parse_json_body
from hearth.errors import AwsError
from hearth.gateway.api_items import (
    CREATE,
    UPDATE,
    bool_member,
    check_cors,
    iso_now,
    item_of,
    new_id,
    new_route,
    new_stage,
    parse_integration_uri,
    route_key,
    string_member,
)
from hearth.gateway.api_tags import get_tags, parse_arn, tag, untag
from hearth.gateway.apis_store import ApiDoc, ApiStore
from hearth.gateway.deployments import (
    create_deployment,
    delete_deployment,
    deployment_of,
    update_deployment,
)
from hearth.gateway.errors import BadRequest, Conflict, NotFound, apigw_error
from hearth.ids import new_request_id

__all__ = ["HttpApisService", "parse_integration_uri"]

Handler = Callable[[Principal, Request, "re.Match[str]"], Awaitable[Response]]


def _page(items: list[dict[str, Any]], q: dict[str, str]) -> dict[str, Any]:
    try:
        offset = int(q.get("nextToken") or 0)
        limit = int(q.get("maxResults") or 100)
    except ValueError:
        raise BadRequest("Invalid nextToken or maxResults") from None
    if limit < 1 or offset < 0:
        raise BadRequest("Invalid nextToken or maxResults")
    doc: dict[str, Any] = {"items": items[offset : offset + limit]}
    if offset + limit < len(items):
        doc["nextToken"] = str(offset + limit)
    return doc


class HttpApisService:
    """A SigV4 service for ``App.add_service``."""

    def __init__(self, apis: ApiStore, endpoint: Callable[[Request, str], str]) -> None:
        self._apis = apis
        self._endpoint = endpoint
        a = r"/v2/apis/(?P<api>[^/]+)"
        self._routes: list[tuple[str, re.Pattern[str], Handler]] = [
            ("POST", re.compile(r"/v2/apis/?"), self._create_api),
            ("GET", re.compile(r"/v2/apis/?"), self._get_apis),
            ("GET", re.compile(a + "/?"), self._get_api),
            ("PATCH", re.compile(a + "/?"), self._update_api),
            ("DELETE", re.compile(a + "/?"), self._delete_api),
        ]
        for kind, label in (("integrations", "Integration"), ("routes", "Route")):
            self._routes += [
                ("POST", re.compile(f"{a}/{kind}/?"), self._creator(kind)),
                ("GET", re.compile(f"{a}/{kind}/?"), self._lister(kind)),
                ("GET", re.compile(f"{a}/{kind}/(?P<id>[^/]+)/?"), self._getter(kind, label)),
                ("PATCH", re.compile(f"{a}/{kind}/(?P<id>[^/]+)/?"), self._updater(kind, label)),
                ("DELETE", re.compile(f"{a}/{kind}/(?P<id>[^/]+)/?"), self._deleter(kind, label)),
            ]
        self._routes += [
            ("POST", re.compile(f"{a}/stages/?"), self._creator("stages")),
            ("GET", re.compile(f"{a}/stages/?"), self._lister("stages")),
            ("GET", re.compile(f"{a}/stages/(?P<id>[^/]+)/?"), self._getter("stages", "Stage")),
            ("PATCH", re.compile(f"{a}/stages/(?P<id>[^/]+)/?"), self._updater("stages", "Stage")),
            ("DELETE", re.compile(f"{a}/stages/(?P<id>[^/]+)/?"), self._deleter("stages", "Stage")),
            ("POST", re.compile(f"{a}/deployments/?"), self._create_deployment),
            ("GET", re.compile(f"{a}/deployments/?"), self._lister("deployments")),
            ("GET", re.compile(f"{a}/deployments/(?P<id>[^/]+)/?"), self._deployment),
            ("PATCH", re.compile(f"{a}/deployments/(?P<id>[^/]+)/?"), self._update_deployment),
            ("DELETE", re.compile(f"{a}/deployments/(?P<id>[^/]+)/?"), self._delete_deployment),
            ("GET", re.compile(r"/v2/tags/(?P<arn>[^/]+)/?"), self._get_tags),
            ("POST", re.compile(r"/v2/tags/(?P<arn>[^/]+)/?"), self._tag),
            ("DELETE", re.compile(r"/v2/tags/(?P<arn>[^/]+)/?"), self._untag),
        ]  # fmt: skip

    # -- Service protocol -------------------------------------------------------------
    def claims(self, req: Request) -> bool:
        return req.path == "/v2/apis" or req.path.startswith(("/v2/apis/", "/v2/tags/"))

    async def __call__(self, principal: Principal, req: Request) -> Response:
        for method, pattern, handler in self._routes:
            m = pattern.fullmatch(req.path)
            if m is not None and method == req.method:
                return await handler(principal, req, m)
        raise NotFound(f"Unknown operation {req.method} {req.path}")

    def error(self, err: AwsError) -> Response:
        return apigw_error(err)

    # -- APIs -------------------------------------------------------------------------
    def _api_doc(self, req: Request, d: ApiDoc) -> dict[str, Any]:
        out = dict(d.api)
        out["apiEndpoint"] = self._endpoint(req, d.api_id)
        return out

    def _apply_api(self, api: dict[str, Any], body: dict[str, Any]) -> None:
        name = string_member(body, "name", lo=1, hi=128)
        if name is not None:
            api["name"] = name
        for key in ("description", "version"):
            v = string_member(body, key, hi=1024)
            if v is not None:
                api[key] = v
        for key in ("disableExecuteApiEndpoint", "disableSchemaValidation"):
            b = bool_member(body, key)
            if b is not None:
                api[key] = b
        if "corsConfiguration" in body:
            api["corsConfiguration"] = check_cors(body["corsConfiguration"])

    async def _create_api(self, p: Principal, req: Request, m: re.Match[str]) -> Response:
        body = parse_json_body(req.body)
        if "name" not in body or "protocolType" not in body:
            raise BadRequest("Invalid input: name and protocolType are required")
        if body["protocolType"] != "HTTP":
            raise BadRequest(
                f"Unsupported protocolType {body['protocolType']}: Hearth serves HTTP APIs only."
            )
        api_id = new_id(10)
        api: dict[str, Any] = {
            "apiId": api_id,
            "apiKeySelectionExpression": "$request.header.x-api-key",
            "createdDate": iso_now(),
            "disableExecuteApiEndpoint": False,
            "protocolType": "HTTP",
            "routeSelectionExpression": "$request.method $request.path",
            "tags": body.get("tags") or {},
        }
        self._apply_api(api, body)
        doc = ApiDoc(api_id, p.account_id, p.region, api, {}, {}, {})
        target = string_member(body, "target", lo=1, hi=2048)
        if target is not None:  # quick create: integration + route + $default stage
            parse_integration_uri(target)
            iid = new_id(7)
            doc.integrations[iid] = {
                "integrationId": iid, "integrationType": "AWS_PROXY",
                "integrationUri": target, "payloadFormatVersion": "2.0",
                "connectionType": "INTERNET", "integrationMethod": "POST",
                "timeoutInMillis": 30000,
            }  # fmt: skip
            key = string_member(body, "routeKey", lo=1) or "$default"
            route_key(key)
            rid = new_id(7)
            doc.routes[rid] = new_route(rid, key, f"integrations/{iid}")
            doc.stages["$default"] = new_stage("$default", {"autoDeploy": True})
        elif "routeKey" in body:
            raise BadRequest("routeKey is only allowed with target (quick create).")
        await self._apis.create(doc)
        return json_response(201, self._api_doc(req, doc))

    async def _get_apis(self, p: Principal, req: Request, m: re.Match[str]) -> Response:
        docs = await self._apis.list(p.account_id)
        q = dict(parse_qsl(req.query))
        return json_response(200, _page([self._api_doc(req, d) for d in docs], q))

    async def _get_api(self, p: Principal, req: Request, m: re.Match[str]) -> Response:
        doc = await self._apis.read(p.account_id, m.group("api"))
        return json_response(200, self._api_doc(req, doc))

    async def _update_api(self, p: Principal, req: Request, m: re.Match[str]) -> Response:
        body = parse_json_body(req.body)

        def change(d: ApiDoc) -> ApiDoc:
            self._apply_api(d.api, body)
            return d

        doc = await self._apis.update(p.account_id, m.group("api"), change)
        return json_response(200, self._api_doc(req, doc))

    async def _delete_api(self, p: Principal, req: Request, m: re.Match[str]) -> Response:
        await self._apis.delete(p.account_id, m.group("api"))
        return Response(204, [("x-amzn-RequestId", new_request_id())], b"")

    # -- integrations, routes, stages ---------------------------------------------------
    def _creator(self, kind: str) -> Handler:
        async def create(p: Principal, req: Request, m: re.Match[str]) -> Response:
            body = parse_json_body(req.body)

            def change(d: ApiDoc) -> dict[str, Any]:
                return CREATE[kind](d, body, p.account_id)

            item = await self._apis.update(p.account_id, m.group("api"), change)
            return json_response(201, item)

        return create

    def _lister(self, kind: str) -> Handler:
        async def list_(p: Principal, req: Request, m: re.Match[str]) -> Response:
            doc = await self._apis.read(p.account_id, m.group("api"))
            items = list(getattr(doc, kind).values())
            return json_response(200, _page(items, dict(parse_qsl(req.query))))

        return list_

    def _getter(self, kind: str, label: str) -> Handler:
        async def get(p: Principal, req: Request, m: re.Match[str]) -> Response:
            doc = await self._apis.read(p.account_id, m.group("api"))
            return json_response(200, item_of(doc, kind, label, unquote(m.group("id"))))

        return get

    def _updater(self, kind: str, label: str) -> Handler:
        async def update(p: Principal, req: Request, m: re.Match[str]) -> Response:
            body = parse_json_body(req.body)
            ident = unquote(m.group("id"))

            def change(d: ApiDoc) -> dict[str, Any]:
                item = item_of(d, kind, label, ident)
                return UPDATE[kind](d, item, body, p.account_id)

            item = await self._apis.update(p.account_id, m.group("api"), change)
            return json_response(200, item)

        return update

    def _deleter(self, kind: str, label: str) -> Handler:
        async def delete(p: Principal, req: Request, m: re.Match[str]) -> Response:
            ident = unquote(m.group("id"))

            def change(d: ApiDoc) -> None:
                item_of(d, kind, label, ident)
                if kind == "integrations":
                    users = [r["routeId"] for r in d.routes.values()
                             if r.get("target") == f"integrations/{ident}"]  # fmt: skip
                    if users:
                        raise Conflict(
                            f"Cannot delete Integration {ident}: it is the target of Route(s)"
                            f" {', '.join(users)}"
                        )
                del getattr(d, kind)[ident]

            await self._apis.update(p.account_id, m.group("api"), change)
            return Response(204, [("x-amzn-RequestId", new_request_id())], b"")

        return delete

    # -- deployments (records only: see hearth.gateway.deployments) ----------------------
    async def _create_deployment(self, p: Principal, req: Request, m: re.Match[str]) -> Response:
        body = parse_json_body(req.body)
        item = await self._apis.update(
            p.account_id, m.group("api"), lambda d: create_deployment(d, body)
        )
        return json_response(201, item)

    async def _deployment(self, p: Principal, req: Request, m: re.Match[str]) -> Response:
        doc = await self._apis.read(p.account_id, m.group("api"))
        return json_response(200, deployment_of(doc, unquote(m.group("id"))))

    async def _update_deployment(self, p: Principal, req: Request, m: re.Match[str]) -> Response:
        body, ident = parse_json_body(req.body), unquote(m.group("id"))
        item = await self._apis.update(
            p.account_id, m.group("api"), lambda d: update_deployment(d, ident, body)
        )
        return json_response(200, item)

    async def _delete_deployment(self, p: Principal, req: Request, m: re.Match[str]) -> Response:
        ident = unquote(m.group("id"))
        await self._apis.update(p.account_id, m.group("api"), lambda d: delete_deployment(d, ident))
        return Response(204, [("x-amzn-RequestId", new_request_id())], b"")

    # -- tags -------------------------------------------------------------------------
    async def _get_tags(self, p: Principal, req: Request, m: re.Match[str]) -> Response:
        api_id, stage = parse_arn(unquote(m.group("arn")))
        doc = await self._apis.read(p.account_id, api_id)
        return json_response(200, {"tags": get_tags(doc, stage)})

    async def _tag(self, p: Principal, req: Request, m: re.Match[str]) -> Response:
        api_id, stage = parse_arn(unquote(m.group("arn")))
        body = parse_json_body(req.body)
        await self._apis.update(p.account_id, api_id, lambda d: tag(d, stage, body))
        return json_response(201, {})

    async def _untag(self, p: Principal, req: Request, m: re.Match[str]) -> Response:
        api_id, stage = parse_arn(unquote(m.group("arn")))
        keys = [v for k, v in parse_qsl(req.query, keep_blank_values=True) if k == "tagKeys"]
        await self._apis.update(p.account_id, api_id, lambda d: untag(d, stage, keys))
        return Response(204, [("x-amzn-RequestId", new_request_id())], b"")
