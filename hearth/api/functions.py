"""Lambda's function control plane: Create / Get / List / Update / Delete, account settings.

Request validation follows botocore's model: a value outside the model's constraints is a
``ValidationException``; a value the model allows but Lambda (or this host) does not is
an ``InvalidParameterValueException``. Writes go to the store first; caches and warm
environments are invalidated after the store has the new snapshot.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from hearth.api.names import FunctionRef
from hearth.api.signed_urls import SignedUrls
from hearth.api.wire import (
    ValidationError,
    check_enum,
    check_int,
    check_string,
    now_iso,
    validation_error,
)
from hearth.errors import AwsError, InvalidParameterValue, ResourceNotFound
from hearth.runtimes.registry import RESERVED_ENV, RuntimeRegistry, runtime_version_arn
from hearth.store.base import Store
from hearth.types import LATEST, FunctionConfig

ROLE_PATTERN = r"arn:(aws[a-zA-Z-]*)?:iam::\d{12}:role/?[a-zA-Z_0-9+=,.@\-_/]+"
ENV_NAME_PATTERN = r"[a-zA-Z]([a-zA-Z0-9_])+"
MAX_ENV_BYTES = 4096
ALL_RUNTIMES = [
    "nodejs18.x", "nodejs20.x", "nodejs22.x", "nodejs24.x", "java8.al2", "java11", "java17",
    "java21", "python3.9", "python3.10", "python3.11", "python3.12", "python3.13",
    "python3.14", "dotnet8", "ruby3.2", "ruby3.3", "ruby3.4", "provided", "provided.al2",
    "provided.al2023",
]  # fmt: skip
#: Runtimes of botocore's enum that Lambda no longer accepts for new or updated functions.
DEPRECATED_RUNTIMES = frozenset(
    {
        "nodejs", "nodejs4.3", "nodejs6.10", "nodejs8.10", "nodejs10.x", "nodejs12.x",
        "nodejs14.x", "nodejs16.x", "nodejs4.3-edge", "java8", "python2.7", "python3.6",
        "python3.7", "python3.8", "dotnetcore1.0", "dotnetcore2.0", "dotnetcore2.1",
        "dotnetcore3.1", "dotnet6", "go1.x", "ruby2.5", "ruby2.7",
    }
)  # fmt: skip


class PreconditionFailed(AwsError):
    code = "PreconditionFailedException"
    status = 412


class CodeStoreLike(Protocol):
    def put(self, zip_bytes: bytes, operation: str | None = None) -> Any: ...

    def read(self, sha256_hex: str) -> bytes: ...

    def remove(self, sha256_hex: str) -> None: ...


class LayersLike(Protocol):
    async def function_settings(
        self, account_id: str, region: str, value: Any, code_sha256_hex: str
    ) -> dict[str, Any]: ...

    async def check_code_update(self, arns: tuple[str, ...], code_sha256_hex: str) -> None: ...


_LOGGING_ENUMS = {
    "LogFormat": ["JSON", "Text"],
    "ApplicationLogLevel": ["TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL"],
    "SystemLogLevel": ["DEBUG", "INFO", "WARN"],
}


def _check_logging_config(cfg: dict[str, Any]) -> None:
    """LoggingConfig's members against botocore's model (enums; the log group's pattern)."""
    for key, allowed in _LOGGING_ENUMS.items():
        if key in cfg:
            check_enum(cfg[key], f"loggingConfig.{key[0].lower()}{key[1:]}", allowed)
    if "LogGroup" in cfg:
        check_string(
            cfg["LogGroup"],
            "loggingConfig.logGroup",
            min_len=1,
            max_len=512,
            pattern=r"[\.\-_/#A-Za-z0-9]+",
        )


def _no_layers() -> InvalidParameterValue:
    return InvalidParameterValue("Layers are not supported by this Hearth server.")


class Invalidator(Protocol):
    async def function_changed(
        self, cfg: FunctionConfig | None, account_id: str, name: str
    ) -> None: ...

    def code_busy(self, sha256_hex: str) -> bool:
        """Whether a live execution environment still runs this code package."""
        ...


class Qualifiers(Protocol):
    async def version_of(self, account_id: str, name: str, qualifier: str) -> str | None:
        """The version a qualifier (version or alias) names; None for an unknown alias."""
        ...

    async def delete_version(
        self, account_id: str, region: str, ref: FunctionRef
    ) -> FunctionConfig | None: ...

    async def publish(self, account_id: str, region: str, name: str) -> FunctionConfig:
        """Publish ``$LATEST`` as a version (``Publish: true`` on create / code update)."""
        ...

    async def list_all(
        self, account_id: str, marker: str | None, max_items: int | None
    ) -> dict[str, Any]:
        """ListFunctions with ``FunctionVersion=ALL``: every version of every function."""
        ...

    async def shown_revision(self, cfg: FunctionConfig) -> str:
        """The RevisionId a version shows: AddPermission / RemovePermission change it
        without rewriting the stored configuration."""
        ...

    async def shown_revisions(self, account_id: str, cfgs: list[FunctionConfig]) -> list[str]:
        """:meth:`shown_revision` of many versions of an account."""
        ...


@dataclass(slots=True)
class AccountDefaults:
    concurrency: int = 1000
    total_code_size: int = 80_530_636_800
    code_size_unzipped: int = 262_144_000
    code_size_zipped: int = 52_428_800


#: What ListFunctions leaves out of each FunctionConfiguration (AWS: "use GetFunction").
LIST_OMITS = (
    "State",
    "StateReason",
    "StateReasonCode",
    "LastUpdateStatus",
    "LastUpdateStatusReason",
    "LastUpdateStatusReasonCode",
    "RuntimeVersionConfig",
)


SNAPSTART_APPLY_ON = ["PublishedVersions", "None"]
#: Runtimes SnapStart works with in Hearth (Lambda: Python 3.12 and later, Java, .NET).
SNAPSTART_RUNTIMES = ("python3.12", "python3.13", "python3.14")


def check_snap_start(cfg: FunctionConfig) -> None:
    """AWS refuses SnapStart on runtimes it does not support, naming the runtime."""
    if cfg.snap_start == "PublishedVersions" and cfg.runtime not in SNAPSTART_RUNTIMES:
        raise InvalidParameterValue(
            f"{cfg.runtime} is not supported for SnapStart enabled functions."
        )


def list_entry(cfg: FunctionConfig) -> dict[str, Any]:
    """A ListFunctions entry: the configuration without the fields AWS lists only in Get."""
    doc = configuration_doc(cfg)
    for key in LIST_OMITS:
        doc.pop(key, None)
    return doc


def configuration_doc(cfg: FunctionConfig) -> dict[str, Any]:
    """The ``FunctionConfiguration`` shape of botocore's Lambda model."""
    doc: dict[str, Any] = {
        "FunctionName": cfg.name,
        "FunctionArn": cfg.arn if cfg.version == LATEST else cfg.qualified_arn,
        "Runtime": cfg.runtime,
        "Role": cfg.role,
        "Handler": cfg.handler,
        "CodeSize": cfg.code_size,
        "Description": cfg.description,
        "Timeout": cfg.timeout,
        "MemorySize": cfg.memory_size,
        "LastModified": cfg.last_modified,
        "CodeSha256": cfg.code_sha256_b64,
        "Version": cfg.version,
        "TracingConfig": {"Mode": cfg.tracing_mode},
        "RevisionId": cfg.revision_id,
        "State": cfg.state,
        "LastUpdateStatus": cfg.last_update_status,
        "PackageType": cfg.package_type,
        "Architectures": list(cfg.architectures),
        "EphemeralStorage": {"Size": cfg.ephemeral_storage},
        "SnapStart": {
            "ApplyOn": cfg.snap_start,
            "OptimizationStatus": "On" if cfg.snap_start_on else "Off",
        },
        "RuntimeVersionConfig": {"RuntimeVersionArn": runtime_version_arn(cfg.region, cfg.runtime)},
        "LoggingConfig": {
            "LogFormat": cfg.logging_config.get("LogFormat", "Text"),
            "LogGroup": cfg.log_group,
        },
    }
    if cfg.logging_config.get("LogFormat") == "JSON":
        for key in ("ApplicationLogLevel", "SystemLogLevel"):
            doc["LoggingConfig"][key] = cfg.logging_config.get(key, "INFO")
    if cfg.environment:
        doc["Environment"] = {"Variables": dict(cfg.environment)}
    if cfg.layers:
        sizes = cfg.layer_sizes or (0,) * len(cfg.layers)
        doc["Layers"] = [{"Arn": a, "CodeSize": s} for a, s in zip(cfg.layers, sizes, strict=False)]
    if cfg.dead_letter_target:
        doc["DeadLetterConfig"] = {"TargetArn": cfg.dead_letter_target}
    if cfg.kms_key_arn:
        doc["KMSKeyArn"] = cfg.kms_key_arn
    if cfg.state_reason:
        doc["StateReason"] = cfg.state_reason
        doc["StateReasonCode"] = cfg.state_reason_code
    return doc


class FunctionsApi:
    def __init__(
        self,
        store: Store,
        code: CodeStoreLike,
        runtimes: RuntimeRegistry,
        invalidator: Invalidator,
        url_secret: bytes,
        defaults: AccountDefaults,
    ) -> None:
        self._store = store
        self._code = code
        self._runtimes = runtimes
        self._invalidator = invalidator
        self._urls = SignedUrls(url_secret)
        self._defaults = defaults
        self._locks: dict[tuple[str, str], asyncio.Lock] = {}
        self.layers: LayersLike | None = None
        """Layer validation (:class:`hearth.layers.LayersApi`), wired by the server."""
        #: Versions and aliases (set by the server when the feature is wired).
        self.qualifiers: Qualifiers | None = None

    # -- validation of the settable members ---------------------------------------------
    def _runtime(self, value: Any) -> str:
        if value in DEPRECATED_RUNTIMES:
            raise InvalidParameterValue(
                f"The runtime parameter of {value} is no longer supported for creating or"
                " updating AWS Lambda functions. We recommend you use a supported runtime while"
                " creating or updating functions."
            )
        runtime = check_enum(value, "runtime", ALL_RUNTIMES)
        if self._runtimes.get(runtime) is None:
            available = ", ".join(self._runtimes.names) or "none"
            raise InvalidParameterValue(
                f"The runtime parameter of {runtime} is not available on this Hearth server."
                f" Available runtimes: {available}."
            )
        return runtime

    @staticmethod
    def _environment(value: Any) -> dict[str, str]:
        if not isinstance(value, dict):
            raise InvalidParameterValue("Environment must be an object")
        variables = value.get("Variables") or {}
        if not isinstance(variables, dict):
            raise InvalidParameterValue("Environment.Variables must be a map of strings")
        for k, v in variables.items():
            if not isinstance(k, str) or re.fullmatch(ENV_NAME_PATTERN, k) is None:
                # AWS names the map, not the key (the variables are a sensitive shape):
                # "Value at 'environment.variables' failed to satisfy constraint: Map keys
                # must satisfy constraint: [...]", as clients' error reports quote it.
                raise ValidationError(
                    "1 validation error detected: Value at 'environment.variables' failed to"
                    " satisfy constraint: Map keys must satisfy constraint: [Member must"
                    f" satisfy regular expression pattern: {ENV_NAME_PATTERN}]"
                )
            if not isinstance(v, str):
                raise InvalidParameterValue(f"Environment variable {k} must be a string")
        reserved = sorted(k for k in variables if k in RESERVED_ENV)
        if reserved:
            raise InvalidParameterValue(
                "Lambda was unable to configure your environment variables because the"
                " environment variables you have provided contains reserved keys that are"
                f" currently not supported for modification. Reserved keys used in this"
                f" request: {', '.join(reserved)}"
            )
        measured = json.dumps(variables, separators=(",", ":"))
        if len(measured.encode()) > MAX_ENV_BYTES:
            raise InvalidParameterValue(
                "Lambda was unable to configure your environment variables because the"
                " environment variables you have provided exceeded the 4KB limit."
                f" String measured: {measured}"
            )
        return {str(k): str(v) for k, v in variables.items()}

    def _apply_settings(self, body: dict[str, Any], base: dict[str, Any]) -> dict[str, Any]:
        """Validate the configuration members present in ``body`` into ``base``."""
        if "Runtime" in body:
            base["runtime"] = self._runtime(body["Runtime"])
        if "Handler" in body:
            base["handler"] = check_string(
                body["Handler"], "handler", max_len=128, pattern=r"[^\s]+"
            )
        if "Role" in body:
            base["role"] = check_string(body["Role"], "role", pattern=ROLE_PATTERN)
        if "Description" in body:
            base["description"] = check_string(body["Description"], "description", max_len=256)
        if "MemorySize" in body:
            mem = check_int(body["MemorySize"], "memorySize", lo=128, hi=32768)
            if mem > 10240:
                raise InvalidParameterValue(
                    "'MemorySize' value failed to satisfy constraint: Member must have value"
                    " less than or equal to 10240"
                )
            base["memory_size"] = mem
        if "Timeout" in body:
            timeout = check_int(body["Timeout"], "timeout", lo=1, hi=5400)
            if timeout > 900:
                raise InvalidParameterValue(
                    "'Timeout' value failed to satisfy constraint: Member must have value"
                    " less than or equal to 900"
                )
            base["timeout"] = timeout
        if "Environment" in body:
            base["environment"] = self._environment(body["Environment"])
        if "EphemeralStorage" in body:
            eph = body["EphemeralStorage"]
            size = eph.get("Size") if isinstance(eph, dict) else None
            size = check_int(size, "ephemeralStorage.size", lo=512, hi=32768)
            if size > 10240:
                raise InvalidParameterValue(
                    "'EphemeralStorage.Size' value failed to satisfy constraint: Member must"
                    " have value less than or equal to 10240"
                )
            base["ephemeral_storage"] = size
        if "TracingConfig" in body and isinstance(body["TracingConfig"], dict):
            mode = body["TracingConfig"].get("Mode", "PassThrough")
            base["tracing_mode"] = check_enum(mode, "tracingConfig.mode", ["Active", "PassThrough"])
        if "DeadLetterConfig" in body and isinstance(body["DeadLetterConfig"], dict):
            base["dead_letter_target"] = str(body["DeadLetterConfig"].get("TargetArn") or "")
        if "KMSKeyArn" in body:
            base["kms_key_arn"] = str(body["KMSKeyArn"] or "")
        if "LoggingConfig" in body and isinstance(body["LoggingConfig"], dict):
            _check_logging_config(body["LoggingConfig"])
            base["logging_config"] = {
                k: str(v) for k, v in body["LoggingConfig"].items() if isinstance(v, str)
            }
        if "SnapStart" in body:
            snap = body["SnapStart"]
            apply_on = snap.get("ApplyOn", "None") if isinstance(snap, dict) else None
            base["snap_start"] = check_enum(apply_on, "snapStart.applyOn", SNAPSTART_APPLY_ON)
        if body.get("VpcConfig") and (
            body["VpcConfig"].get("SubnetIds") or body["VpcConfig"].get("SecurityGroupIds")
        ):
            raise InvalidParameterValue("VpcConfig is not supported by Hearth.")
        return base

    async def _store_zip(self, code: dict[str, Any], operation: str) -> Any:
        if code.get("ImageUri"):
            raise InvalidParameterValue(
                "Container image functions are not supported by Hearth: package the function"
                " as a .zip archive (PackageType Zip)."
            )
        if code.get("S3Bucket") or code.get("S3Key"):
            raise InvalidParameterValue(
                "Code from S3 is not supported by Hearth: send the package as ZipFile."
            )
        raw = code.get("ZipFile")
        if not isinstance(raw, str) or not raw:
            raise InvalidParameterValue("Please provide a source for function code (ZipFile).")
        try:
            zip_bytes = base64.b64decode(raw, validate=True)
        except (binascii.Error, ValueError):
            raise InvalidParameterValue(
                "Could not unzip uploaded file. Please check your file, then try to upload again."
            ) from None
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(None, self._code.put, zip_bytes, operation)

    # -- operations -------------------------------------------------------------------
    async def create(self, account_id: str, region: str, body: dict[str, Any]) -> dict[str, Any]:
        for member, wire in (("FunctionName", "functionName"), ("Role", "role"), ("Code", "code")):
            if member not in body:
                from hearth.api.wire import ValidationError

                raise ValidationError(
                    f"1 validation error detected: Value null at '{wire}' failed to satisfy"
                    " constraint: Member must not be null"
                )
        from hearth.api.names import parse_function_name

        ref = parse_function_name(
            check_string(body["FunctionName"], "functionName", min_len=1), account_id, region=region
        )
        if ref.qualifier:
            raise InvalidParameterValue("Function name cannot contain a qualifier on create.")
        package_type = body.get("PackageType", "Zip")
        check_enum(package_type, "packageType", ["Zip", "Image"])
        if package_type == "Image":
            raise InvalidParameterValue(
                "Container image functions (PackageType Image) are not supported by Hearth:"
                " package the function as a .zip archive (PackageType Zip)."
            )
        if "Runtime" not in body or "Handler" not in body:
            raise InvalidParameterValue(
                "Runtime and Handler are mandatory parameters for functions created with"
                " deployment packages."
            )
        settings = self._apply_settings(body, {})
        archs = _architectures(body.get("Architectures") or ["x86_64"])
        tags = body.get("Tags") or {}
        if not isinstance(tags, dict):
            raise InvalidParameterValue("Tags must be a map of strings")
        from hearth.api.tags import check_tags

        check_tags(tags)
        if not isinstance(body["Code"], dict):
            raise InvalidParameterValue("Code must be an object")
        existing = await self._store.get_function(account_id, ref.name)
        if existing is not None:
            raise _exists(existing)
        code_ref = await self._store_zip(body["Code"], "CreateFunction")
        if body.get("Layers") is not None:
            if self.layers is None:
                raise _no_layers()
            settings.update(
                await self.layers.function_settings(
                    account_id, region, body["Layers"], code_ref.sha256_hex
                )
            )
        cfg = FunctionConfig(
            account_id=account_id,
            region=region,
            name=ref.name,
            code_sha256_hex=code_ref.sha256_hex,
            code_sha256_b64=code_ref.sha256_b64,
            code_size=code_ref.size,
            revision_id=str(uuid.uuid4()),
            last_modified=now_iso(),
            architectures=(archs[0],),
            tags={str(k): str(v) for k, v in tags.items()},
            **settings,
        )
        check_snap_start(cfg)
        try:
            await self._store.create_function(cfg)
        except AwsError:
            raise _exists(cfg) from None
        await self._invalidator.function_changed(cfg, account_id, cfg.name)
        if body.get("Publish") is True and self.qualifiers is not None:
            cfg = await self.qualifiers.publish(account_id, region, cfg.name)
        return configuration_doc(cfg)

    async def get(
        self, account_id: str, region: str, ref: FunctionRef, host: str
    ) -> dict[str, Any]:
        cfg = await self.load(account_id, region, ref)
        tags = cfg.tags if cfg.version == LATEST else await self.tags(account_id, region, cfg.name)
        doc = {
            "Configuration": await self._shown(_as_named(configuration_doc(cfg), cfg, ref), cfg),
            "Code": {"RepositoryType": "S3", "Location": self.code_url(host, cfg)},
        }
        if tags:  # AWS leaves Tags out of GetFunction for a function without any
            doc["Tags"] = dict(tags)
        return doc

    async def get_configuration(
        self, account_id: str, region: str, ref: FunctionRef
    ) -> dict[str, Any]:
        cfg = await self.load(account_id, region, ref)
        return await self._shown(_as_named(configuration_doc(cfg), cfg, ref), cfg)

    async def _shown(self, doc: dict[str, Any], cfg: FunctionConfig) -> dict[str, Any]:
        if self.qualifiers is not None:
            doc["RevisionId"] = await self.qualifiers.shown_revision(cfg)
        return doc

    async def _check_revision(self, cfg: FunctionConfig, body: dict[str, Any]) -> None:
        """A given RevisionId must be the one the function shows (PreconditionFailed)."""
        rev = body.get("RevisionId")
        if rev is None:
            return
        shown = cfg.revision_id
        if self.qualifiers is not None:
            shown = await self.qualifiers.shown_revision(cfg)
        if rev != shown:
            raise PreconditionFailed(
                "The Revision Id provided does not match the latest Revision Id. Call the"
                " GetFunction/GetAlias API to retrieve the latest Revision Id"
            )

    async def load(self, account_id: str, region: str, ref: FunctionRef) -> FunctionConfig:
        version: str | None = ref.qualifier or LATEST
        if self.qualifiers is not None and version is not None:
            version = await self.qualifiers.version_of(account_id, ref.name, version)
        cfg = await self._store.get_function(account_id, ref.name, version) if version else None
        if cfg is None:
            raise ResourceNotFound(f"Function not found: {_unknown_arn(account_id, region, ref)}")
        return cfg

    async def list(
        self, account_id: str, marker: str | None, max_items: int | None, all_versions: bool = False
    ) -> dict[str, Any]:
        """ListFunctions: ``$LATEST`` of each function, or (``all_versions``) every version."""
        if all_versions and self.qualifiers is not None:
            return await self.qualifiers.list_all(account_id, marker, max_items)
        limit = min(max_items or 50, 50)
        after = None
        if marker:
            try:
                after = base64.urlsafe_b64decode(marker.encode()).decode()
            except (binascii.Error, ValueError, UnicodeDecodeError):
                raise InvalidParameterValue("Invalid marker") from None
        cfgs = await self._store.list_functions(account_id, after, limit + 1)
        doc: dict[str, Any] = {"Functions": [list_entry(c) for c in cfgs[:limit]]}
        if self.qualifiers is not None:
            shown = await self.qualifiers.shown_revisions(account_id, cfgs[:limit])
            for entry, revision in zip(doc["Functions"], shown, strict=True):
                entry["RevisionId"] = revision
        if len(cfgs) > limit:
            doc["NextMarker"] = base64.urlsafe_b64encode(cfgs[limit - 1].name.encode()).decode()
        return doc

    def _lock(self, account_id: str, name: str) -> asyncio.Lock:
        return self._locks.setdefault((account_id, name), asyncio.Lock())

    async def tags(self, account_id: str, region: str, name: str) -> dict[str, str]:
        """The function's tags (kept with ``$LATEST``; every version shows them)."""
        return dict((await self.load(account_id, region, FunctionRef(name, None))).tags)

    async def change_tags(
        self,
        account_id: str,
        region: str,
        name: str,
        change: Callable[[dict[str, str]], dict[str, str]],
    ) -> None:
        """Replace the function's tags by ``change(tags)``; configuration and RevisionId
        stay as they are (tags are not part of a version's configuration)."""
        await self.change_settings(
            account_id, region, FunctionRef(name, None), lambda c: c.replace(tags=change(c.tags))
        )

    async def change_settings(
        self,
        account_id: str,
        region: str,
        ref: FunctionRef,
        change: Callable[[FunctionConfig], FunctionConfig],
    ) -> FunctionConfig:
        """Store ``change(cfg)`` for a function or version, keeping its RevisionId: for the
        settings that live beside a configuration (tags, runtime updates, recursion)."""
        async with self._lock(account_id, ref.name):
            cfg = await self.load(account_id, region, ref)
            new = change(cfg)
            await self._store.update_function(new, cfg.revision_id)
            return new

    async def update_code(
        self, account_id: str, region: str, ref: FunctionRef, body: dict[str, Any]
    ) -> dict[str, Any]:
        _only_latest(ref)
        async with self._lock(account_id, ref.name):
            cfg = await self.load(account_id, region, FunctionRef(ref.name, None))
            await self._check_revision(cfg, body)
            if "Architectures" in body:
                _architectures(body["Architectures"])
            code_ref = await self._store_zip(body, "UpdateFunctionCode")
            if cfg.layers and self.layers is not None:
                await self.layers.check_code_update(cfg.layers, code_ref.sha256_hex)
            if body.get("DryRun"):
                return configuration_doc(cfg)
            new = cfg.replace(
                architectures=tuple(body.get("Architectures") or cfg.architectures),
                code_sha256_hex=code_ref.sha256_hex,
                code_sha256_b64=code_ref.sha256_b64,
                code_size=code_ref.size,
                revision_id=str(uuid.uuid4()),
                last_modified=now_iso(),
                last_update_status="Successful",
            )
            await self._store.update_function(new, cfg.revision_id)
            await self._invalidator.function_changed(new, account_id, cfg.name)
            await self._collect(cfg.code_sha256_hex)
            if body.get("Publish") is True and self.qualifiers is not None:
                new = await self.qualifiers.publish(account_id, region, cfg.name)
            return configuration_doc(new)

    async def update_configuration(
        self, account_id: str, region: str, ref: FunctionRef, body: dict[str, Any]
    ) -> dict[str, Any]:
        _only_latest(ref)
        async with self._lock(account_id, ref.name):
            cfg = await self.load(account_id, region, FunctionRef(ref.name, None))
            await self._check_revision(cfg, body)
            settings = self._apply_settings(body, {})
            if "logging_config" in settings:
                # LoggingConfig is merged into the current one, as on AWS; log levels only
                # exist in the JSON format.
                merged = {**cfg.logging_config, **settings["logging_config"]}
                if merged.get("LogFormat") != "JSON":
                    merged.pop("ApplicationLogLevel", None)
                    merged.pop("SystemLogLevel", None)
                settings["logging_config"] = merged
            if body.get("Layers") is not None:
                if self.layers is None:
                    raise _no_layers()
                settings.update(
                    await self.layers.function_settings(
                        account_id, region, body["Layers"], cfg.code_sha256_hex
                    )
                )
            new = cfg.replace(
                revision_id=str(uuid.uuid4()),
                last_modified=now_iso(),
                last_update_status="Successful",
                **settings,
            )
            check_snap_start(new)
            await self._store.update_function(new, cfg.revision_id)
            await self._invalidator.function_changed(new, account_id, cfg.name)
            return configuration_doc(new)

    async def delete(self, account_id: str, region: str, ref: FunctionRef) -> None:
        if ref.qualifier == LATEST:
            # As on AWS: a qualifier of $LATEST never stands for "the whole function".
            raise InvalidParameterValue(
                "$LATEST version cannot be deleted without deleting the function."
            )
        if ref.qualifier:
            if self.qualifiers is None:
                raise InvalidParameterValue("Deleting a published version is not supported.")
            async with self._lock(account_id, ref.name):
                gone = await self.qualifiers.delete_version(account_id, region, ref)
                if gone is None:
                    return
                # An empty keep-revision retires every environment of that version.
                await self._invalidator.function_changed(
                    gone.replace(revision_id=""), account_id, ref.name
                )
                await self._collect(gone.code_sha256_hex)
            return
        async with self._lock(account_id, ref.name):
            deleted = await self._store.delete_function(account_id, ref.name)
            if not deleted:
                raise ResourceNotFound(
                    f"Function not found: {_unknown_arn(account_id, region, ref)}"
                )
            await self._invalidator.function_changed(None, account_id, ref.name)
            for sha in {c.code_sha256_hex for c in deleted}:
                await self._collect(sha)

    async def _collect(self, sha256_hex: str) -> None:
        """Remove a code package no function version references any more.

        A package a live environment still runs (a busy one finishing its invocation)
        stays: the server sweeps unreferenced packages when it starts.
        """
        if self._invalidator.code_busy(sha256_hex):
            return
        if not await self._store.code_in_use(sha256_hex):
            await asyncio.get_running_loop().run_in_executor(None, self._code.remove, sha256_hex)

    async def account_settings(self, account_id: str, concurrency: int) -> dict[str, Any]:
        count, total = await self._store.account_usage(account_id)
        d = self._defaults
        return {
            "AccountLimit": {
                "TotalCodeSize": d.total_code_size,
                "CodeSizeUnzipped": d.code_size_unzipped,
                "CodeSizeZipped": d.code_size_zipped,
                "ConcurrentExecutions": concurrency,
                "UnreservedConcurrentExecutions": concurrency,
            },
            "AccountUsage": {"TotalCodeSize": total, "FunctionCount": count},
        }

    # -- code download URLs -----------------------------------------------------------
    def code_url(self, host: str, cfg: FunctionConfig) -> str:
        return self._urls.url(host, "/_hearth/code/", cfg.code_sha256_hex)

    def read_code(self, sha: str, expires: str, signature: str) -> bytes | None:
        """The zip behind a code URL, if the URL is genuine and unexpired."""
        if not self._urls.valid(sha, expires, signature):
            return None
        try:
            return self._code.read(sha)
        except (OSError, KeyError, ValueError):
            return None


def _as_named(doc: dict[str, Any], cfg: FunctionConfig, ref: FunctionRef) -> dict[str, Any]:
    """Asked through an alias, GetFunction / GetFunctionConfiguration answer with the
    alias's ARN as ``FunctionArn`` (``Version`` stays the version it points to), and
    through ``$LATEST`` the ``:$LATEST``-qualified ARN, as AWS does (LocalStack's
    AWS-validated snapshots); unqualified, the ARN is unqualified."""
    if ref.qualifier and not ref.qualifier.isdigit():
        doc["FunctionArn"] = f"{cfg.arn}:{ref.qualifier}"
    return doc


def _only_latest(ref: FunctionRef) -> None:
    """UpdateFunctionCode / UpdateFunctionConfiguration change ``$LATEST`` only: a name
    carrying a version or alias (``f:1``, ``f:live``, a qualified ARN) is AWS's
    ``InvalidParameterValueException`` with this message; ``f:$LATEST`` is the function."""
    if ref.qualifier and ref.qualifier != LATEST:
        raise InvalidParameterValue(
            "Current operation does not support versions other than $LATEST"
        )


def _exists(cfg: FunctionConfig) -> AwsError:
    from hearth.errors import ResourceConflict

    return ResourceConflict(f"Function already exist: {cfg.name}")


def _unknown_arn(account_id: str, region: str, ref: FunctionRef) -> str:
    suffix = f":{ref.qualifier}" if ref.qualifier else ""
    return f"arn:aws:lambda:{region}:{account_id}:function:{ref.name}{suffix}"


def _architectures(value: Any) -> list[str]:
    """``Architectures``: the model's list of exactly one ``x86_64`` / ``arm64``; a longer,
    empty or unknown list is the model's ValidationException, as AWS answers."""
    if not isinstance(value, list):
        raise InvalidParameterValue("Architectures must list exactly one architecture.")
    shown = "[" + ", ".join(str(a) for a in value) + "]"
    if len(value) > 1:
        raise validation_error(shown, "architectures", "have length less than or equal to 1")
    if not value:
        raise validation_error(shown, "architectures", "have length greater than or equal to 1")
    if value[0] not in ("x86_64", "arm64"):
        raise validation_error(
            shown,
            "architectures",
            "satisfy constraint: [Member must satisfy enum value set: [x86_64, arm64]]",
        )
    return value
