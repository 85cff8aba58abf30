"""The shared vocabulary: function identity and configuration snapshots.

A :class:`FunctionConfig` is an immutable snapshot of one version of one function of one
account. The control plane (api) writes new snapshots to the store; the router and the
worker only ever see snapshots, so a configuration change never mutates a running
environment: it produces a new ``revision_id`` and environments of the old revision are
retired.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any

LATEST = "$LATEST"


@dataclass(frozen=True, slots=True)
class FunctionConfig:
    account_id: str
    region: str
    name: str
    runtime: str
    handler: str
    role: str
    code_sha256_hex: str
    code_sha256_b64: str
    code_size: int
    revision_id: str
    last_modified: str
    version: str = LATEST
    description: str = ""
    memory_size: int = 128
    timeout: int = 3
    environment: dict[str, str] = field(default_factory=dict)
    ephemeral_storage: int = 512
    architectures: tuple[str, ...] = ("x86_64",)
    package_type: str = "Zip"
    state: str = "Active"
    state_reason: str = ""
    state_reason_code: str = ""
    last_update_status: str = "Successful"
    tracing_mode: str = "PassThrough"
    dead_letter_target: str = ""
    kms_key_arn: str = ""
    tags: dict[str, str] = field(default_factory=dict)
    logging_config: dict[str, str] = field(default_factory=dict)
    layers: tuple[str, ...] = ()
    """Layer version ARNs, in order (extracted under /opt, later ones over earlier ones)."""
    layer_sizes: tuple[int, ...] = ()
    """Each layer's zip size (``Layers[].CodeSize``); versions are immutable."""
    snap_start: str = "None"
    """``SnapStart.ApplyOn``: ``PublishedVersions`` or ``None``."""
    runtime_update: dict[str, str] = field(default_factory=dict)
    """PutRuntimeManagementConfig: ``UpdateRuntimeOn`` (and ``RuntimeVersionArn``)."""
    recursive_loop: str = "Terminate"
    """PutFunctionRecursionConfig: ``Allow`` or ``Terminate``."""

    @property
    def snap_start_on(self) -> bool:
        """SnapStart applies to this snapshot (a published version with ApplyOn set)."""
        return self.snap_start == "PublishedVersions" and self.version != LATEST

    @property
    def arn(self) -> str:
        return function_arn(self.region, self.account_id, self.name)

    @property
    def qualified_arn(self) -> str:
        return f"{self.arn}:{self.version}"

    @property
    def log_group(self) -> str:
        return self.logging_config.get("LogGroup") or f"/aws/lambda/{self.name}"

    def replace(self, **changes: Any) -> FunctionConfig:
        return dataclasses.replace(self, **changes)

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> FunctionConfig:
        raw = json.loads(text)
        raw["architectures"] = tuple(raw.get("architectures", ("x86_64",)))
        raw["layers"] = tuple(raw.get("layers", ()))
        raw["layer_sizes"] = tuple(raw.get("layer_sizes", ()))
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in raw.items() if k in known})


def function_arn(region: str, account_id: str, name: str) -> str:
    return f"arn:aws:lambda:{region}:{account_id}:function:{name}"
