"""Wire layers into a server: storage, routes, download door, functions and the worker."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hearth.code import CodeStore
from hearth.layers._api import LayerDownloads, LayersApi
from hearth.layers._functions import FunctionLayers
from hearth.layers._opt import OptTrees
from hearth.layers._policy import LayerPolicies, LayerPolicyApi
from hearth.layers._store import LayerStore, StoreLike
from hearth.types import FunctionConfig


async def install(
    data: Path,
    store: StoreLike,
    function_code: CodeStore,
    functions: Any,
    worker: Any,
    lambda_api: Any,
    app: Any,
    secret: bytes,
) -> LayersApi:
    """Layer zips under ``<data>/layers``, merged /opt trees under ``<data>/layers/opt``."""
    content = CodeStore(data / "layers")
    rows = LayerStore(store)
    await rows.open()
    trees = OptTrees(data / "layers-opt", content.unpacked)
    policies = LayerPolicies(store)
    await policies.open()
    api = LayersApi(rows, content, secret, policies)
    uses = FunctionLayers(rows, trees, function_code, content.limits.max_unzipped, policies)
    permissions = LayerPolicyApi(policies, rows, api.name_of, api.version_of)
    for method, pattern, handler in [*api.routes(), *permissions.routes()]:
        lambda_api.add_route(method, pattern, handler)
    app.add_front_door(LayerDownloads(api))
    functions.layers = uses

    async def opt_dir_of(cfg: FunctionConfig) -> str | None:
        return await uses.opt_dir(cfg.account_id, cfg.layers)

    worker.opt_dir_of = opt_dir_of
    return api
