"""Layers as functions use them: validation of ``Layers``, the size limit, ``/opt``.

:meth:`FunctionLayers.resolve` validates a function's ``Layers`` with Lambda's errors:
more than 5 → InvalidParameterValueException "Cannot reference more than 5 layers."; a
malformed ARN → ValidationException; a layer of another account → AccessDeniedException
(403) unless the version's policy grants the caller's account (AddLayerVersionPermission);
an unknown or deleted version → InvalidParameterValueException "Layer version <arn> does
not exist.".
Function code plus its layers, unzipped, must fit Lambda's 250 MB
("Function code combined with layers exceeds the maximum allowed size of ...").
Functions that already use a deleted version keep it: :meth:`opt_dir` and
:meth:`check_code_update` resolve deleted versions too.
"""

from __future__ import annotations

import asyncio
import re
from typing import Any

from hearth.api.wire import validation_error
from hearth.code import CodeStore
from hearth.errors import InvalidParameterValue
from hearth.layers._api import MAX_LAYERS, denied
from hearth.layers._model import LAYER_VERSION_ARN_PATTERN, LayerVersion, parse_layer_arn
from hearth.layers._opt import OptTrees, tree_size
from hearth.layers._policy import LayerPolicies
from hearth.layers._store import LayerStore


class FunctionLayers:
    def __init__(
        self,
        store: LayerStore,
        trees: OptTrees,
        function_code: CodeStore,
        max_unzipped: int,
        policies: LayerPolicies | None = None,
    ) -> None:
        self._store = store
        self._policies = policies
        self._trees = trees
        self._function_code = function_code
        self._max_unzipped = max_unzipped

    async def resolve(self, account_id: str, region: str, value: Any) -> list[LayerVersion]:
        """Validate a function's ``Layers`` member; return the versions in order."""
        if not isinstance(value, list) or not all(isinstance(a, str) for a in value):
            raise InvalidParameterValue("Layers must be a list of layer version ARNs.")
        if len(value) > MAX_LAYERS:
            raise InvalidParameterValue(f"Cannot reference more than {MAX_LAYERS} layers.")
        bad = [
            a
            for a in value
            if not (1 <= len(a) <= 140) or re.fullmatch(LAYER_VERSION_ARN_PATTERN, a) is None
        ]
        if bad:
            raise validation_error(
                "[" + ", ".join(value) + "]",
                "layers",
                "satisfy constraint: [Member must have length less than or equal to 140,"
                " Member must have length greater than or equal to 1, Member must satisfy"
                f" regular expression pattern: {LAYER_VERSION_ARN_PATTERN}]",
            )
        names = [parse_layer_arn(a) for a in value]
        seen_names: set[tuple[str, str]] = set()
        out: list[LayerVersion] = []
        for arn, parsed in zip(value, names, strict=True):
            if parsed is None or parsed.version is None:
                raise InvalidParameterValue(f"Layer version {arn} does not exist.")
            if parsed.account_id != account_id and not (
                self._policies is not None
                and await self._policies.allows(
                    parsed.account_id, parsed.name, parsed.version, account_id
                )
            ):
                raise denied(account_id, arn)
            if (parsed.account_id, parsed.name) in seen_names:
                raise InvalidParameterValue(
                    "Two different versions of the same layer are not allowed to be"
                    " referenced in the same function."
                )
            seen_names.add((parsed.account_id, parsed.name))
            lv = await self._store.get(parsed.account_id, parsed.name, parsed.version)
            if lv is None or parsed.region != region or lv.region != region:
                raise InvalidParameterValue(f"Layer version {arn} does not exist.")
            out.append(lv)
        return out

    async def function_settings(
        self, account_id: str, region: str, value: Any, code_sha256_hex: str
    ) -> dict[str, Any]:
        """Validate a function's ``Layers`` with its code; return its FunctionConfig fields."""
        layers = await self.resolve(account_id, region, value)
        if layers:
            await self._check_with_code(code_sha256_hex, layers)
        return {
            "layers": tuple(lv.arn for lv in layers),
            "layer_sizes": tuple(lv.code_size for lv in layers),
        }

    async def check_code_update(self, arns: tuple[str, ...], code_sha256_hex: str) -> None:
        """New code for a function with layers: the 250 MB limit again (deleted versions count)."""
        layers: list[LayerVersion] = []
        for arn in arns:
            parsed = parse_layer_arn(arn)
            if parsed is None or parsed.version is None:
                continue
            lv = await self._store.get(
                parsed.account_id, parsed.name, parsed.version, include_deleted=True
            )
            if lv is not None:
                layers.append(lv)
        if layers:
            await self._check_with_code(code_sha256_hex, layers)

    async def _check_with_code(self, code_sha256_hex: str, layers: list[LayerVersion]) -> None:
        loop = asyncio.get_running_loop()
        size = await loop.run_in_executor(
            None, lambda: tree_size(self._function_code.unpacked(code_sha256_hex))
        )
        self.check_size(size, layers)

    def check_size(self, function_unzipped: int, layers: list[LayerVersion]) -> None:
        """Lambda's 250 MB limit on function code plus layers, unzipped."""
        total = function_unzipped + sum(lv.unzipped_size for lv in layers)
        if total > self._max_unzipped:
            raise InvalidParameterValue(
                "Function code combined with layers exceeds the maximum allowed size of"
                f" {self._max_unzipped} bytes. The actual size is {total} bytes."
            )

    async def opt_dir(self, account_id: str, arns: tuple[str, ...]) -> str | None:
        """The merged /opt tree of a function's layers (deleted versions still resolve)."""
        if not arns:
            return None
        shas: list[str] = []
        for arn in arns:
            parsed = parse_layer_arn(arn)
            if parsed is None or parsed.version is None:
                raise InvalidParameterValue(f"Layer version {arn} does not exist.")
            lv = await self._store.get(
                parsed.account_id, parsed.name, parsed.version, include_deleted=True
            )
            if lv is None:
                raise InvalidParameterValue(f"Layer version {arn} does not exist.")
            shas.append(lv.sha256_hex)
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(None, self._trees.tree, shas)
