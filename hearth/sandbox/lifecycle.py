"""Shared safety for every sandbox implementation: one teardown, run once, on every path.

A sandbox acquires resources one by one while it starts (uid, cgroups, loop device, fds,
processes, veth...). Each acquisition immediately registers its release with
:class:`Lifecycle`. Whatever happens next -- a failed start step, a normal :meth:`kill`, a
second concurrent :meth:`kill`, a backend shutdown -- the same LIFO teardown runs exactly
once, every step is attempted even if an earlier one failed, and afterwards the sandbox is
*dead*: control methods become no-ops and report the last known values.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from hearth.errors import SandboxError

log = logging.getLogger(__name__)

Action = Callable[[], Awaitable[None] | None]


class Lifecycle:
    """A LIFO stack of release actions plus the dead/alive state of one sandbox."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._actions: list[tuple[str, Action]] = []
        self._task: asyncio.Task[list[str]] | None = None

    @property
    def dead(self) -> bool:
        """True as soon as teardown has begun; nothing may be started or controlled then."""
        return self._task is not None

    def push(self, what: str, action: Action) -> None:
        """Register the release of a resource that was just acquired."""
        if self.dead:
            raise SandboxError(f"sandbox {self.name} is already dead")
        self._actions.append((what, action))

    async def _run(self) -> list[str]:
        errors: list[str] = []
        while self._actions:
            what, action = self._actions.pop()
            try:
                res = action()
                if inspect.isawaitable(res):
                    await res
            except Exception as exc:
                log.error("sandbox %s: releasing %s failed: %s", self.name, what, exc)
                errors.append(f"{what}: {exc}")
        return errors

    async def teardown(self) -> None:
        """Run every release action once; concurrent and later callers share the result.

        Raises :class:`SandboxError` (to the callers that ran or awaited the teardown) if
        any resource could not be released; every action is attempted regardless.
        """
        first = self._task is None
        if self._task is None:
            self._task = asyncio.ensure_future(self._run())
        errors = await asyncio.shield(self._task)
        if errors and first:
            raise SandboxError(f"sandbox {self.name}: incomplete cleanup: {'; '.join(errors)}")

    @asynccontextmanager
    async def starting(self) -> AsyncIterator[None]:
        """Wrap a start: on any error (or cancellation) tear down what was acquired.

        Errors other than :class:`SandboxError` are reported as one, with the cause chained.
        """
        try:
            yield
        except BaseException as exc:
            try:
                await self.teardown()
            except SandboxError as cleanup:
                log.error("%s", cleanup)
            if isinstance(exc, SandboxError | asyncio.CancelledError) or not isinstance(
                exc, Exception
            ):
                raise
            raise SandboxError(f"cannot start sandbox {self.name}: {exc}") from exc
