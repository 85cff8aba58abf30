"""Settings kept beside a function's configuration: runtime management and recursion.

* ``GET|PUT /2021-07-20/functions/{FunctionName}/runtime-management-config[?Qualifier=]``:
  ``UpdateRuntimeOn`` (``Auto`` by default, ``FunctionUpdate`` or ``Manual`` with a
  ``RuntimeVersionArn``), per version, answered with the function's ARN.
* ``GET|PUT /2024-08-31/functions/{FunctionName}/recursion-config``: ``RecursiveLoop``
  (``Terminate`` by default, or ``Allow``).
* ``GET /2020-06-30/functions/{FunctionName}/code-signing-config``: Hearth has no code
  signing configurations, so every function answers as an unsigned one does on Lambda
  (``CodeSigningConfigArn`` empty); tools that read it for every function (IaC
  providers, compliance scanners) work.

Hearth records both and reports them as Lambda does; it runs the host's runtime builds
whatever the update mode says (there is one runtime version per runtime here), and it
has no recursive-loop detection to switch off (recursion needs a function to reach the
API, which sandboxes cannot by default). Neither changes the ``RevisionId``.
"""

from __future__ import annotations

import re
from typing import Any

from hearth.api.functions import FunctionsApi
from hearth.api.names import FunctionRef, path_param, qualified_ref, unqualified_function_name
from hearth.api.types import Principal, Request, Response
from hearth.api.wire import check_enum, check_string, json_response, parse_json_body
from hearth.errors import InvalidParameterValue
from hearth.types import LATEST, FunctionConfig

_RUNTIME = r"/2021-07-20/functions/(?P<fn>[^/]+)/runtime-management-config/?"
_RECURSION = r"/2024-08-31/functions/(?P<fn>[^/]+)/recursion-config/?"
_CODE_SIGNING = r"/2020-06-30/functions/(?P<fn>[^/]+)/code-signing-config/?"
RUNTIME_VERSION_ARN = (
    r"arn:(aws[a-zA-Z-]*):lambda:[a-z]{2}((-gov)|(-iso([a-z]?)))?-[a-z]+-\d{1}::runtime:.+"
)


class FunctionSettingsApi:
    def __init__(self, functions: FunctionsApi) -> None:
        self._functions = functions

    def register(self, add_route: Any) -> None:
        add_route("GET", _RUNTIME, self._get_runtime)
        add_route("PUT", _RUNTIME, self._put_runtime)
        add_route("GET", _RECURSION, self._get_recursion)
        add_route("PUT", _RECURSION, self._put_recursion)
        add_route("GET", _CODE_SIGNING, self._get_code_signing)

    @staticmethod
    def _ref(p: Principal, req: Request, m: re.Match[str], max_len: int) -> FunctionRef:
        return qualified_ref(
            m.group("fn"), req.query, p.account_id, max_len=max_len, region=p.region
        )

    @staticmethod
    def _runtime_doc(cfg: FunctionConfig) -> dict[str, str]:
        doc = {
            "UpdateRuntimeOn": cfg.runtime_update.get("UpdateRuntimeOn", "Auto"),
            "FunctionArn": cfg.arn if cfg.version == LATEST else cfg.qualified_arn,
        }
        if "RuntimeVersionArn" in cfg.runtime_update:
            doc["RuntimeVersionArn"] = cfg.runtime_update["RuntimeVersionArn"]
        return doc

    async def _get_runtime(self, p: Principal, req: Request, m: re.Match[str]) -> Response:
        cfg = await self._functions.load(p.account_id, p.region, self._ref(p, req, m, 256))
        return json_response(200, self._runtime_doc(cfg))

    async def _put_runtime(self, p: Principal, req: Request, m: re.Match[str]) -> Response:
        ref = self._ref(p, req, m, 256)
        body = parse_json_body(req.body)
        mode = check_enum(
            body.get("UpdateRuntimeOn"), "updateRuntimeOn", ["Auto", "Manual", "FunctionUpdate"]
        )
        setting = {"UpdateRuntimeOn": mode}
        arn = body.get("RuntimeVersionArn")
        if arn is not None:
            setting["RuntimeVersionArn"] = check_string(
                arn, "runtimeVersionArn", min_len=26, max_len=2048, pattern=RUNTIME_VERSION_ARN
            )
        if mode == "Manual" and arn is None:
            raise InvalidParameterValue(
                "RuntimeVersionArn is required when UpdateRuntimeOn is set to Manual."
            )
        if mode != "Manual" and arn is not None:
            raise InvalidParameterValue(
                "RuntimeVersionArn can only be set when UpdateRuntimeOn is set to Manual."
            )
        cfg = await self._functions.change_settings(
            p.account_id, p.region, ref, lambda c: c.replace(runtime_update=setting)
        )
        return json_response(200, self._runtime_doc(cfg))

    async def _get_recursion(self, p: Principal, req: Request, m: re.Match[str]) -> Response:
        name = unqualified_function_name(path_param(m.group("fn")), p.account_id, region=p.region)
        cfg = await self._functions.load(p.account_id, p.region, FunctionRef(name, None))
        return json_response(200, {"RecursiveLoop": cfg.recursive_loop})

    async def _get_code_signing(self, p: Principal, req: Request, m: re.Match[str]) -> Response:
        ref = self._ref(p, req, m, 140)
        cfg = await self._functions.load(p.account_id, p.region, FunctionRef(ref.name, None))
        return json_response(200, {"CodeSigningConfigArn": "", "FunctionName": cfg.name})

    async def _put_recursion(self, p: Principal, req: Request, m: re.Match[str]) -> Response:
        name = unqualified_function_name(path_param(m.group("fn")), p.account_id, region=p.region)
        body = parse_json_body(req.body)
        loop = check_enum(body.get("RecursiveLoop"), "recursiveLoop", ["Allow", "Terminate"])
        await self._functions.change_settings(
            p.account_id, p.region, FunctionRef(name, None),
            lambda c: c.replace(recursive_loop=loop),
        )  # fmt: skip
        return json_response(200, {"RecursiveLoop": loop})
