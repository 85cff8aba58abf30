"""Lambda's layer operations.

Operations (botocore's Lambda model, API date 2018-10-31): PublishLayerVersion,
GetLayerVersion, GetLayerVersionByArn, ListLayers, ListLayerVersions,
DeleteLayerVersion. Layer content downloads (``Content.Location``) are signed URLs
served by :class:`LayerDownloads`, valid for 10 minutes as on Lambda. How functions
use layers is :mod:`hearth.layers._functions`.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import re
from typing import Any
from urllib.parse import parse_qsl, unquote

from hearth.api.signed_urls import SignedUrls
from hearth.api.types import Principal, Request, Response
from hearth.api.wire import (
    check_enum,
    check_int,
    check_string,
    json_response,
    now_iso,
    parse_json_body,
    validation_error,
)
from hearth.code import CodeStore
from hearth.errors import AwsError, InvalidParameterValue, ResourceNotFound
from hearth.layers._model import (
    LAYER_NAME_MAX,
    LAYER_NAME_PATTERN,
    LAYER_VERSION_ARN_PATTERN,
    LayerVersion,
    parse_layer_arn,
)
from hearth.layers._opt import tree_size
from hearth.layers._policy import LayerPolicies
from hearth.layers._store import LayerStore

MAX_LAYERS = 5
_PREFIX = "/2018-10-31/layers"
ALL_ARCHITECTURES = ["x86_64", "arm64"]
NOT_FOUND = "The resource you requested does not exist."


class AccessDenied(AwsError):
    code = "AccessDeniedException"
    status = 403


class LayersApi:
    def __init__(
        self,
        store: LayerStore,
        content: CodeStore,
        secret: bytes,
        policies: LayerPolicies | None = None,
    ) -> None:
        self._store = store
        self._content = content
        self._urls = SignedUrls(secret, scope="layer:")
        self._policies = policies

    def routes(self) -> list[tuple[str, str, Any]]:
        """(method, path regex, handler) for ``LambdaApi.add_route``."""
        name = r"(?P<name>[^/]+)"
        return [
            ("POST", rf"{_PREFIX}/{name}/versions/?", self._publish),
            ("GET", rf"{_PREFIX}/{name}/versions/?", self._list_versions),
            ("GET", rf"{_PREFIX}/{name}/versions/(?P<version>[^/]+)/?", self._get),
            ("DELETE", rf"{_PREFIX}/{name}/versions/(?P<version>[^/]+)/?", self._delete),
            ("GET", rf"{_PREFIX}/?", self._list_or_by_arn),
        ]

    # -- helpers ----------------------------------------------------------------------
    def name_of(self, p: Principal, m: re.Match[str]) -> str:
        """The ``LayerName`` path member: a name, or an ARN of the caller's account."""
        return self._name(p, m)

    def version_of(self, m: re.Match[str]) -> int:
        """The ``VersionNumber`` path member."""
        return self._version(m)

    def _name(self, p: Principal, m: re.Match[str]) -> str:
        raw = check_string(
            unquote(m.group("name")),
            "layerName",
            min_len=1,
            max_len=LAYER_NAME_MAX,
            pattern=LAYER_NAME_PATTERN,
        )
        if raw.startswith("arn:"):
            parsed = parse_layer_arn(raw)
            if parsed is None or parsed.account_id != p.account_id:
                raise ResourceNotFound(NOT_FOUND)
            return parsed.name
        return raw

    @staticmethod
    def _version(m: re.Match[str]) -> int:
        raw = unquote(m.group("version"))
        try:
            return int(raw)
        except ValueError:
            raise InvalidParameterValue(f"Invalid version number: {raw}") from None

    def location(self, host: str, sha: str) -> str:
        return self._urls.url(host, "/_hearth/layers/", sha)

    def read_signed(self, sha: str, expires: str, signature: str) -> bytes | None:
        if not self._urls.valid(sha, expires, signature):
            return None
        try:
            return self._content.read(sha)
        except (OSError, AwsError):
            return None

    @staticmethod
    def _query(req: Request) -> dict[str, str]:
        return dict(parse_qsl(req.query, keep_blank_values=True))

    def _filters(self, q: dict[str, str]) -> tuple[str | None, str | None]:
        runtime = q.get("CompatibleRuntime")
        if runtime is not None:
            from hearth.api.functions import ALL_RUNTIMES

            check_enum(runtime, "compatibleRuntime", ALL_RUNTIMES)
        arch = q.get("CompatibleArchitecture")
        if arch is not None:
            check_enum(arch, "compatibleArchitecture", ALL_ARCHITECTURES)
        return runtime, arch

    @staticmethod
    def _matches(lv: LayerVersion, runtime: str | None, arch: str | None) -> bool:
        return (runtime is None or runtime in lv.runtimes) and (
            arch is None or arch in lv.architectures
        )

    @staticmethod
    def _page(q: dict[str, str], items: list[Any]) -> tuple[list[Any], str | None]:
        max_items = 50
        if "MaxItems" in q:
            try:
                max_items = check_int(int(q["MaxItems"]), "maxItems", lo=1, hi=50)
            except ValueError:
                raise InvalidParameterValue("MaxItems must be an integer") from None
        start = 0
        if q.get("Marker"):
            try:
                start = int(base64.urlsafe_b64decode(q["Marker"].encode()).decode())
            except (binascii.Error, ValueError, UnicodeDecodeError):
                raise InvalidParameterValue("Invalid marker") from None
        page = items[start : start + max_items]
        more = start + max_items < len(items)
        marker = base64.urlsafe_b64encode(str(start + max_items).encode()).decode()
        return page, marker if more else None

    # -- operations -------------------------------------------------------------------
    async def _publish(self, p: Principal, req: Request, m: re.Match[str]) -> Response:
        name = self._name(p, m)
        body = parse_json_body(req.body)
        if "Content" not in body:
            raise validation_error(None, "content", "not be null")
        content = body["Content"]
        if not isinstance(content, dict):
            raise InvalidParameterValue("Content must be an object")
        if content.get("S3Bucket") or content.get("S3Key"):
            raise InvalidParameterValue(
                "Layer content from S3 is not supported by Hearth: send it as ZipFile."
            )
        raw = content.get("ZipFile")
        if not isinstance(raw, str) or not raw:
            raise InvalidParameterValue("Please provide a source for layer content (ZipFile).")
        description = check_string(body.get("Description", ""), "description", max_len=256)
        license_info = check_string(body.get("LicenseInfo", ""), "licenseInfo", max_len=512)
        runtimes = body.get("CompatibleRuntimes") or []
        archs = body.get("CompatibleArchitectures") or []
        if not isinstance(runtimes, list) or len(runtimes) > 15:
            raise validation_error(
                runtimes, "compatibleRuntimes", "have length less than or equal to 15"
            )
        if not isinstance(archs, list) or len(archs) > 2:
            raise validation_error(
                archs, "compatibleArchitectures", "have length less than or equal to 2"
            )
        from hearth.api.functions import ALL_RUNTIMES

        for r in runtimes:
            check_enum(r, "compatibleRuntimes", ALL_RUNTIMES)
        for a in archs:
            check_enum(a, "compatibleArchitectures", ALL_ARCHITECTURES)
        try:
            zip_bytes = base64.b64decode(raw, validate=True)
        except (binascii.Error, ValueError):
            raise InvalidParameterValue(
                "Could not unzip uploaded file. Please check your file, then try to upload again."
            ) from None
        loop = asyncio.get_running_loop()
        ref = await loop.run_in_executor(None, self._content.put, zip_bytes, "PublishLayerVersion")
        unzipped = await loop.run_in_executor(
            None, lambda: tree_size(self._content.unpacked(ref.sha256_hex))
        )
        lv = await self._store.publish(
            LayerVersion(
                account_id=p.account_id,
                region=p.region,
                name=name,
                version=0,
                sha256_hex=ref.sha256_hex,
                sha256_b64=ref.sha256_b64,
                code_size=ref.size,
                unzipped_size=unzipped,
                description=description,
                runtimes=tuple(runtimes),
                architectures=tuple(archs),
                license_info=license_info,
                created=now_iso(),
            )
        )
        host = req.headers.get("host", "localhost")
        return json_response(201, lv.doc(self.location(host, lv.sha256_hex)))

    async def _get(self, p: Principal, req: Request, m: re.Match[str]) -> Response:
        raw = unquote(m.group("name"))
        parsed = parse_layer_arn(raw) if raw.startswith("arn:") else None
        if parsed is not None and parsed.account_id != p.account_id:
            # Another account's layer, by ARN: as GetLayerVersionByArn, its policy decides.
            version = self._version(m)
            arn = f"{raw}:{version}"
            allowed = self._policies is not None and await self._policies.allows(
                parsed.account_id, parsed.name, version, p.account_id
            )
            if not allowed:
                raise denied(p.account_id, arn)
            lv = await self._store.get(parsed.account_id, parsed.name, version)
        else:
            lv = await self._store.get(p.account_id, self._name(p, m), self._version(m))
        if lv is None:
            raise ResourceNotFound(NOT_FOUND)
        host = req.headers.get("host", "localhost")
        return json_response(200, lv.doc(self.location(host, lv.sha256_hex)))

    async def _delete(self, p: Principal, req: Request, m: re.Match[str]) -> Response:
        name = self._name(p, m)
        await self._store.delete(p.account_id, name, self._version(m))
        return json_response(204, None)

    async def _list_versions(self, p: Principal, req: Request, m: re.Match[str]) -> Response:
        name = self._name(p, m)
        q = self._query(req)
        runtime, arch = self._filters(q)
        items = [
            lv.list_item()
            for lv in await self._store.versions(p.account_id, name)
            if self._matches(lv, runtime, arch)
        ]
        page, marker = self._page(q, items)
        doc: dict[str, Any] = {"LayerVersions": page}
        if marker:
            doc["NextMarker"] = marker
        return json_response(200, doc)

    async def _list_or_by_arn(self, p: Principal, req: Request, m: re.Match[str]) -> Response:
        q = self._query(req)
        if q.get("find") == "LayerVersion":
            return await self._get_by_arn(p, req, q)
        runtime, arch = self._filters(q)
        latest: dict[str, LayerVersion] = {}
        for lv in await self._store.all_live(p.account_id):
            if lv.name not in latest and self._matches(lv, runtime, arch):
                latest[lv.name] = lv
        items = [
            {
                "LayerName": lv.name,
                "LayerArn": lv.layer_arn,
                "LatestMatchingVersion": lv.list_item(),
            }
            for lv in latest.values()
        ]
        page, marker = self._page(q, items)
        doc: dict[str, Any] = {"Layers": page}
        if marker:
            doc["NextMarker"] = marker
        return json_response(200, doc)

    async def _get_by_arn(self, p: Principal, req: Request, q: dict[str, str]) -> Response:
        if "Arn" not in q:
            raise validation_error(None, "arn", "not be null")
        arn = check_string(
            q["Arn"], "arn", min_len=1, max_len=2048, pattern=LAYER_VERSION_ARN_PATTERN
        )
        parsed = parse_layer_arn(arn)
        if parsed is None or parsed.version is None:
            raise ResourceNotFound(NOT_FOUND)
        if parsed.account_id != p.account_id and not (
            self._policies is not None
            and await self._policies.allows(
                parsed.account_id, parsed.name, parsed.version, p.account_id
            )
        ):
            raise denied(p.account_id, arn)
        lv = await self._store.get(parsed.account_id, parsed.name, parsed.version)
        if lv is None or lv.region != parsed.region:
            raise ResourceNotFound(NOT_FOUND)
        host = req.headers.get("host", "localhost")
        return json_response(200, lv.doc(self.location(host, lv.sha256_hex)))


def denied(account_id: str, arn: str) -> AccessDenied:
    """Lambda's answer for a layer of another account (no layer permissions in Hearth)."""
    return AccessDenied(
        f"User: arn:aws:iam::{account_id}:root is not authorized to perform:"
        f" lambda:GetLayerVersion on resource: {arn} because no resource-based policy"
        " allows the lambda:GetLayerVersion action"
    )


class LayerDownloads:
    """Front door for ``/_hearth/layers/<sha>.zip`` signed download URLs."""

    def __init__(self, api: LayersApi) -> None:
        self._api = api

    def claims(self, req: Request) -> bool:
        return req.path.startswith("/_hearth/layers/") and req.path.endswith(".zip")

    async def __call__(self, req: Request) -> Response:
        sha = req.path[len("/_hearth/layers/") : -len(".zip")]
        q = dict(parse_qsl(req.query))
        data = self._api.read_signed(sha, q.get("Expires", ""), q.get("Signature", ""))
        if data is None:
            body = json.dumps({"message": "Access denied or expired"}).encode()
            return Response(403, [("Content-Type", "application/json")], body)
        return Response(200, [("Content-Type", "application/zip")], data)
