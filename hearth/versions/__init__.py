"""Versions and aliases of functions (Lambda's PublishVersion / *Alias operations), and
the functions' resource-based policies (AddPermission / GetPolicy / RemovePermission).

Imports point down: this package uses ``hearth.api`` helpers (wire, names, the
configuration document) and the store; the core learns of it only through the seams
``server.py`` wires (routes on the LambdaApi, the router's alias resolver, the control
plane's qualifier hooks).
"""

from __future__ import annotations

import sqlite3
from typing import Any

from hearth.api.names import FunctionRef
from hearth.types import LATEST, FunctionConfig
from hearth.versions._store import (
    SCHEMA,
    FeatureStore,
    forget_function,
    shown_revision,
    shown_revisions,
)
from hearth.versions.aliases import AliasesApi
from hearth.versions.policy import PolicyApi
from hearth.versions.versions import VersionsApi

__all__ = ["AliasesApi", "Versions", "VersionsApi"]


class Versions:
    """The feature as one object: its two APIs and the hooks the core calls."""

    def __init__(self, store: FeatureStore) -> None:
        self._store = store
        self.versions = VersionsApi(store)
        self.aliases = AliasesApi(store)
        self.policy = PolicyApi(store)
        self.aliases.on_delete.append(self.policy.qualifier_deleted)

    async def open(self) -> None:
        await self._store.add_schema(SCHEMA)
        await self.policy.open()

    def register(self, add_route: object) -> None:
        self.versions.register(add_route)
        self.aliases.register(add_route)
        self.policy.register(add_route)

    async def version_of(self, account_id: str, name: str, qualifier: str) -> str | None:
        """The version a qualifier names: itself for a version, the alias's primary
        version for an alias (control-plane reads use the primary, never a weighted draw),
        None for an unknown alias."""
        if qualifier == LATEST or qualifier.isdigit():
            return qualifier
        from hearth.versions._store import get_alias

        a = await self._store.run(lambda db: get_alias(db, account_id, name, qualifier))
        return a.version if a is not None else None

    async def pick(self, account_id: str, name: str, qualifier: str) -> str | None:
        """The version an invocation runs (weighted draw for an alias)."""
        if qualifier == LATEST or qualifier.isdigit():
            return qualifier
        return await self.aliases.pick(account_id, name, qualifier)

    def pick_cached(self, account_id: str, name: str, alias: str) -> str | None:
        """:meth:`pick` for an alias, from its cache alone (None: not cached)."""
        return self.aliases.pick_cached(account_id, name, alias)

    async def delete_version(
        self, account_id: str, region: str, ref: FunctionRef
    ) -> FunctionConfig | None:
        cfg = await self.versions.delete_version(account_id, region, ref)
        if ref.qualifier:  # the version's resource policy goes with it
            await self.policy.qualifier_deleted(account_id, ref.name, ref.qualifier)
        return cfg

    async def shown_revision(self, cfg: FunctionConfig) -> str:
        """The RevisionId a version shows (a permission change's, see ``policy``)."""
        return str(
            await self._store.run(
                lambda db: shown_revision(
                    db, cfg.account_id, cfg.name, cfg.version, cfg.revision_id
                )
            )
        )

    async def shown_revisions(self, account_id: str, cfgs: list[FunctionConfig]) -> list[str]:
        """:meth:`shown_revision` of many versions (one query)."""
        return list(await self._store.run(lambda db: shown_revisions(db, account_id, cfgs)))

    async def publish(self, account_id: str, region: str, name: str) -> FunctionConfig:
        return await self.versions.publish(account_id, region, name)

    async def list_all(
        self, account_id: str, marker: str | None, max_items: int | None
    ) -> dict[str, Any]:
        return await self.versions.list_all(account_id, marker, max_items)

    async def function_deleted(self, account_id: str, name: str) -> None:
        def op(db: sqlite3.Connection) -> None:
            forget_function(db, account_id, name)

        await self._store.run(op)
        await self.policy.function_deleted(account_id, name)
        self.aliases.forget(account_id, name)
