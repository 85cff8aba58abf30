"""HTTP front doors to functions: function URLs, HTTP APIs, throttling and usage plans.

Imports point down: this package uses ``hearth.api`` (wire helpers, types, the Lambda
route seam), ``hearth.invoke`` (the router, to run functions) and the store; nothing in
the core imports it except ``server.py``, which wires it through the seams
(``LambdaApi.add_route``, ``App.add_service``, ``App.add_front_door``).

Modules: ``events`` (request → event, result → response), ``cors``, ``invoker``,
``urls`` + ``url_door`` (function URLs), ``routes`` (route keys and matching),
``apis_store`` + ``api_items`` + ``apis`` + ``api_door`` (HTTP APIs), ``throttle`` (token
buckets), ``usage_store`` + ``usage`` (API keys and usage plans, a Hearth extension).
"""

from __future__ import annotations

from typing import Any

from hearth.api.types import Request
from hearth.gateway.api_door import HttpApiDoor
from hearth.gateway.apis import HttpApisService
from hearth.gateway.apis_store import ApiStore
from hearth.gateway.errors import NotFound
from hearth.gateway.invoker import RouterLike
from hearth.gateway.throttle import Buckets
from hearth.gateway.url_door import FunctionUrlDoor, Verifier
from hearth.gateway.urls import FunctionUrls
from hearth.gateway.usage import UsagePlans
from hearth.gateway.usage_store import SCHEMA as USAGE_SCHEMA
from hearth.versions._store import FeatureStore

__all__ = ["FunctionUrlDoor", "FunctionUrls", "Gateway"]


class Gateway:
    """Everything in this package as one object the server wires in."""

    def __init__(self, store: FeatureStore, router: RouterLike, verifier: Verifier) -> None:
        self.urls = FunctionUrls(store)
        self.url_door = FunctionUrlDoor(self.urls, router, verifier)
        self.apis = ApiStore(store)
        self.buckets = Buckets()
        self.apis_service = HttpApisService(self.apis, api_endpoint)
        self.api_door = HttpApiDoor(self.apis, router, self.buckets)
        self._store = store
        self.usage = UsagePlans(store, self.buckets, self._api_stage_exists)
        self.api_door.keys = self.usage
        self.api_door.verifier = verifier

    async def open(self) -> None:
        await self.urls.open()
        await self.apis.open()
        await self._store.add_schema(USAGE_SCHEMA)

    def install(self, add_route: Any, app: Any) -> None:
        """Register the control-plane routes and the front doors."""
        self.urls.register(add_route)
        app.add_front_door(self.url_door)
        app.add_service(self.apis_service)
        app.add_service(self.usage)
        app.add_front_door(self.api_door)

    async def _api_stage_exists(self, account_id: str, api_id: str, stage: str) -> bool:
        try:
            doc = await self.apis.read(account_id, api_id)
        except NotFound:
            return False
        return stage in doc.stages

    async def function_deleted(self, account_id: str, name: str) -> None:
        await self.urls.function_deleted(account_id, name)

    async def alias_deleted(self, account_id: str, name: str, alias: str) -> None:
        await self.urls.alias_deleted(account_id, name, alias)


def api_endpoint(req: Request, api_id: str) -> str:
    """``ApiEndpoint`` of an HTTP API: host-based, on the port the request came in on."""
    host = req.headers.get("host", "")
    _, sep, port = host.rpartition(":")
    suffix = f":{port}" if sep and port.isdigit() else ""
    return f"http://{api_id}.execute-api.localhost{suffix}"
