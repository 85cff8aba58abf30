"""The store contract: durable control-plane state.

Implementations: :mod:`hearth.store.sqlite` (the embedded default). A PostgreSQL store
for clusters implements the same protocol. Every method is a coroutine so that a network
database fits; the SQLite implementation runs its statements on one dedicated thread.
"""

from __future__ import annotations

from typing import Protocol

from hearth.types import FunctionConfig


class Store(Protocol):
    async def create_function(self, cfg: FunctionConfig) -> None:
        """Insert ``$LATEST`` of a new function; raise ResourceConflict if the name exists."""
        ...

    async def get_function(
        self, account_id: str, name: str, version: str = "$LATEST"
    ) -> FunctionConfig | None: ...

    async def list_functions(
        self, account_id: str, after: str | None, limit: int
    ) -> list[FunctionConfig]:
        """``$LATEST`` of each function, ordered by name, names strictly after ``after``."""
        ...

    async def update_function(self, cfg: FunctionConfig, expected_revision: str) -> None:
        """Replace a version's snapshot if its revision is still ``expected_revision``.

        Raises ResourceNotFound if it is gone and PreconditionFailed-style
        ResourceConflict if someone else changed it first.
        """
        ...

    async def delete_function(self, account_id: str, name: str) -> list[FunctionConfig]:
        """Delete every version of a function; return what was deleted (empty if none)."""
        ...

    async def code_in_use(self, sha256_hex: str) -> bool:
        """Whether any version of any function still references this code package."""
        ...

    async def account_usage(self, account_id: str) -> tuple[int, int]:
        """(function count, total code size in bytes) of an account."""
        ...

    async def list_all_latest(self) -> list[FunctionConfig]:
        """Every account's ``$LATEST`` snapshots (used to warm caches at start)."""
        ...

    async def aclose(self) -> None: ...
