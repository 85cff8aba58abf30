"""Sandbox backends behind one protocol (:mod:`hearth.sandbox.base`).

Use :func:`make_backend` (``"process"``) or :class:`ProcessBackend` directly.
"""

from __future__ import annotations

from hearth.errors import SandboxError
from hearth.sandbox.base import (
    BackendConfig,
    ExitInfo,
    Mount,
    NetworkMode,
    Sandbox,
    SandboxBackend,
    SandboxSpec,
    Stats,
)
from hearth.sandbox.process import ProcessBackend, ProcessSandbox

__all__ = [
    "BackendConfig",
    "ExitInfo",
    "Mount",
    "NetworkMode",
    "ProcessBackend",
    "ProcessSandbox",
    "Sandbox",
    "SandboxBackend",
    "SandboxError",
    "SandboxSpec",
    "Stats",
    "make_backend",
]


def make_backend(name: str, config: BackendConfig) -> SandboxBackend:
    """The backend called ``name`` (only ``"process"`` exists so far)."""
    if name == "process":
        return ProcessBackend(config)
    raise SandboxError(f"unknown sandbox backend {name!r} (available: process)")
