"""Sandbox networking beyond ``lo`` (placeholder until egress is implemented)."""

from __future__ import annotations

from typing import Any

from hearth.errors import SandboxError
from hearth.sandbox.base import BackendConfig


class EgressNetwork:
    @classmethod
    def manager(cls, config: BackendConfig) -> EgressManager:
        return EgressManager(config)

    def inner_config(self) -> dict[str, Any]:
        raise SandboxError("egress not supported")

    async def attach(self, pid: int) -> None:
        raise SandboxError("egress not supported")

    def remove(self) -> None:
        return None


class EgressManager:
    def __init__(self, config: BackendConfig) -> None:
        self.config = config

    async def create(self, env_id: str) -> EgressNetwork:
        raise SandboxError("egress not supported")

    def close(self) -> None:
        return None
