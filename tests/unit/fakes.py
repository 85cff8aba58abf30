"""Stand-ins shared by the worker's fast tests."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Cfg:
    """What the worker reads of a FunctionConfig: its pool key and its reservations."""

    account_id: str = "000000000000"
    name: str = "f"
    version: str = "1"
    revision_id: str = "r"
    memory_size: int = 128
    ephemeral_storage: int = 512
