"""Provisioned concurrency: N environments of a version initialized ahead and kept ready.

A configuration names a function and a qualifier (a published version or an alias; never
``$LATEST``, as on Lambda) and a count. Putting one stores it, answers ``IN_PROGRESS`` at
once and, in the background, asks the worker for that many initialized environments of the
version the qualifier designates; when all are up the status becomes ``READY`` (or
``FAILED`` with a reason, e.g. the worker's memory capacity is exhausted). The worker hands
requests to provisioned environments first and starts on-demand ones beyond them; it never
reaps or evicts provisioned ones. Deleting the configuration turns them into ordinary
environments (reaped when idle).

Configurations persist (table ``provisioned_concurrency``) and are provisioned again when
the server starts. One background task per configuration; :meth:`aclose` cancels them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

from hearth.errors import AwsError
from hearth.invoke.admission import Admission
from hearth.types import FunctionConfig

log = logging.getLogger(__name__)

SCHEMA = """
CREATE TABLE IF NOT EXISTS provisioned_concurrency (
    account_id TEXT NOT NULL,
    name TEXT NOT NULL,
    qualifier TEXT NOT NULL,
    region TEXT NOT NULL,
    requested INTEGER NOT NULL,
    last_modified TEXT NOT NULL,
    PRIMARY KEY (account_id, name, qualifier)
);
"""

Key = tuple[str, str, str]
Resolver = Callable[[str, str, str, str], Awaitable[FunctionConfig]]


class ProvisionTarget(Protocol):
    async def provision(self, cfg: FunctionConfig, count: int) -> None: ...

    def provisioned_count(self, cfg: FunctionConfig) -> int: ...

    def deprovision(self, cfg: FunctionConfig) -> None: ...


class FeatureStore(Protocol):
    async def run(self, fn: Any) -> Any: ...

    async def add_schema(self, script: str) -> None: ...


@dataclass(slots=True)
class PcConfig:
    account_id: str
    name: str
    qualifier: str
    region: str
    requested: int
    last_modified: str
    status: str = "IN_PROGRESS"
    reason: str = ""
    cfg: FunctionConfig | None = None


class Provisioned:
    def __init__(
        self,
        store: FeatureStore,
        worker: ProvisionTarget,
        resolve: Resolver,
        admission: Admission | None = None,
    ) -> None:
        self._store = store
        self._worker = worker
        self._resolve = resolve
        self._admission = admission
        """Told each function's provisioned total, which it holds back from on-demand use."""
        self._configs: dict[Key, PcConfig] = {}
        self._tasks: dict[Key, asyncio.Task[None]] = {}

    async def open(self) -> None:
        await self._store.add_schema(SCHEMA)

        def load(db: sqlite3.Connection) -> list[tuple[str, str, str, str, int, str]]:
            return list(db.execute("SELECT * FROM provisioned_concurrency"))

        for account_id, name, qualifier, region, requested, modified in await self._store.run(load):
            pc = PcConfig(account_id, name, qualifier, region, int(requested), modified)
            self._configs[(account_id, name, qualifier)] = pc
            self._claim(account_id, name)
            self._start(pc)

    # -- operations -----------------------------------------------------------------------
    async def put(self, pc: PcConfig, cfg: FunctionConfig) -> PcConfig:
        """Store ``pc`` (its qualifier already resolved to ``cfg``) and provision it."""
        key = (pc.account_id, pc.name, pc.qualifier)
        old = self._configs.get(key)
        if old is not None and old.cfg is not None and old.cfg != cfg:
            self._worker.deprovision(old.cfg)
        pc.cfg = cfg

        def op(db: sqlite3.Connection) -> None:
            db.execute(
                "INSERT OR REPLACE INTO provisioned_concurrency VALUES (?,?,?,?,?,?)",
                (pc.account_id, pc.name, pc.qualifier, pc.region, pc.requested, pc.last_modified),
            )

        await self._store.run(op)
        self._configs[key] = pc
        self._claim(pc.account_id, pc.name)
        self._start(pc)
        return pc

    def get(self, account_id: str, name: str, qualifier: str) -> PcConfig | None:
        return self._configs.get((account_id, name, qualifier))

    def of_account(self, account_id: str) -> list[PcConfig]:
        """Every configuration of an account (for the account's concurrency arithmetic)."""
        return [c for k, c in self._configs.items() if k[0] == account_id]

    def list(self, account_id: str, name: str) -> list[PcConfig]:
        return sorted(
            (c for k, c in self._configs.items() if k[0] == account_id and k[1] == name),
            key=lambda c: c.qualifier,
        )

    async def delete(self, account_id: str, name: str, qualifier: str) -> None:
        key = (account_id, name, qualifier)
        pc = self._configs.pop(key, None)
        self._claim(account_id, name)
        task = self._tasks.pop(key, None)
        if task is not None:
            task.cancel()
        if pc is not None and pc.cfg is not None:
            self._worker.deprovision(pc.cfg)

        def op(db: sqlite3.Connection) -> None:
            db.execute(
                "DELETE FROM provisioned_concurrency WHERE account_id=? AND name=? AND qualifier=?",
                key,
            )

        await self._store.run(op)

    async def function_deleted(self, account_id: str, name: str) -> None:
        for pc in self.list(account_id, name):
            await self.delete(account_id, name, pc.qualifier)

    def _claim(self, account_id: str, name: str) -> None:
        if self._admission is not None:
            total = sum(c.requested for c in self.list(account_id, name))
            self._admission.set_provisioned(account_id, name, total)

    def counts(self, pc: PcConfig) -> tuple[int, int]:
        """(allocated, available) environments of a configuration right now."""
        n = self._worker.provisioned_count(pc.cfg) if pc.cfg is not None else 0
        n = min(n, pc.requested)
        return n, n

    # -- background provisioning ------------------------------------------------------------
    def _start(self, pc: PcConfig) -> None:
        key = (pc.account_id, pc.name, pc.qualifier)
        old = self._tasks.pop(key, None)
        if old is not None:
            old.cancel()
        pc.status, pc.reason = "IN_PROGRESS", ""
        self._tasks[key] = asyncio.get_running_loop().create_task(self._provision(pc))

    async def _provision(self, pc: PcConfig) -> None:
        try:
            if pc.cfg is None:
                pc.cfg = await self._resolve(pc.account_id, pc.region, pc.name, pc.qualifier)
            await self._worker.provision(pc.cfg, pc.requested)
            pc.status = "READY"
        except asyncio.CancelledError:
            raise
        except AwsError as exc:
            pc.status, pc.reason = "FAILED", exc.message
        except Exception as exc:
            log.exception("provisioning %s:%s failed", pc.name, pc.qualifier)
            pc.status, pc.reason = "FAILED", str(exc) or type(exc).__name__
        finally:
            key = (pc.account_id, pc.name, pc.qualifier)
            if self._tasks.get(key) is asyncio.current_task():
                del self._tasks[key]

    async def aclose(self) -> None:
        for task in list(self._tasks.values()):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
