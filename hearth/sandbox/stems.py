"""Stems: sandboxes made ahead, before anyone knows which function they will run.

A stem is a :class:`~hearth.sandbox.process.ProcessSandbox` forked by a runtime zygote
(on the exec path: a spawned launcher, a *spare*, see below) that has done every
function-independent step of a start: uid, cgroups (joined: on cgroup v1 a migration
waits for an RCU grace period, ~9 ms here), a ``/tmp`` loop device, namespaces, the
listening Runtime API socket, and the root file system built up to the point where the
function's code would be bound at ``/var/task``. Its PID 1 then waits on its control
socket. A cold start that finds a stem of its key only sends the function's
part of the spec (:meth:`ProcessSandbox.specialize`): PID 1 binds the code, pivots, drops
privileges (uid, capabilities, no_new_privs, seccomp) and runs the pre-loaded bootstrap,
exactly as a fork-path start does -- nothing of the function runs earlier, and nothing of
it is in the stem before: a stem is never shared, it *becomes* one sandbox.

The exec path has the same in *spares*: for Node and custom runtimes, and Python
functions a zygote cannot fork (:func:`hearth.sandbox.zygote.forkable`), a stem is a
spawned launcher (:mod:`hearth.sandbox._nsinit`, joined to its cgroups before it gets its
spec) whose PID 1 has built and entered the root without ``/var/task`` and emptied its
bounding set; specialized, it mounts the code, sets the hostname, drops privileges as any
exec-path start and execs the runtime command with the function's environment.

Measured here (2 vCPUs, loaded): a fork-path start from ``backend.start()`` to the
runtime's first Runtime API request took ~23 ms median; a start from a stem ~3-5 ms.

Key: runtime command, its mounts (bound before the pivot, after which ``/`` is read-only:
a layer set under ``/opt`` gets a pool of its own), ``/tmp`` size, ``/dev/shm`` size,
network mode (an egress stem has its veth attached and configured) and the path (fork or
exec); never a SnapStart template's, nor a spec with inherited fds. A key gets a pool
when a function of it is created or changed (:meth:`StemPool.prepare`, through
:meth:`ProcessBackend.prepare`), or the first time a start asks for it (that start takes
the ordinary fork path); the pool
then keeps ``per_key`` stems ready, making up to ``parallel`` at once in the background,
:data:`REFILL_DELAY` after a take.
A stem that died while waiting is dropped when found.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import TYPE_CHECKING

from hearth.sandbox.base import SandboxSpec

if TYPE_CHECKING:
    from hearth.sandbox.process import ProcessSandbox

log = logging.getLogger(__name__)

Key = tuple[object, ...]
#: Consecutive failures after which a key's filler stops (the next take restarts it).
MAX_FAILURES = 20
RETRY_DELAY = 0.5
#: Seconds between a take and the refill it causes (measured: invoke of a new environment
#: p50 16-20 ms refilling at once, 12-13 ms after 50 ms, same runs alternating).
REFILL_DELAY = 0.05
#: Seconds without a start of a key after which its ready stems are let go.
KEY_IDLE = 600.0


class StemPool:
    """Ready stems per key (see the module docstring)."""

    def __init__(
        self,
        make: Callable[[SandboxSpec, Key], Awaitable[ProcessSandbox]],
        key_of: Callable[[SandboxSpec], Key | None],
        per_key: int = 4,
        parallel: int = 2,
    ) -> None:
        self._make = make
        self._key_of = key_of
        self.per_key = per_key
        self.parallel = max(1, parallel)
        self._ready: dict[Key, deque[ProcessSandbox]] = {}
        self._templates: dict[Key, SandboxSpec] = {}
        self._fillers: dict[Key, asyncio.Task[None]] = {}
        self._discards: set[asyncio.Task[object]] = set()
        """Stems being killed (expired, or made as the pool closed): close waits for them."""
        self._making: set[asyncio.Future[ProcessSandbox]] = set()
        self._closed = False
        self.taken = 0
        self.refill_delay = REFILL_DELAY
        self.key_idle = KEY_IDLE
        self._expiry: dict[Key, asyncio.TimerHandle] = {}

    def take(self, spec: SandboxSpec) -> ProcessSandbox | None:
        """A ready stem for ``spec``, or None (then the pool of its key is (re)filled)."""
        if self._closed or self.per_key <= 0:
            return None
        key = self._key_of(spec)
        if key is None:
            return None
        ready = self._ready.setdefault(key, deque())
        stem = None
        while ready:
            candidate = ready.popleft()
            if candidate.usable_stem:
                stem = candidate
                break
            self._discard(candidate)
        self._want(key, spec)
        if stem is not None:
            self.taken += 1
        return stem

    def prepare(self, spec: SandboxSpec) -> None:
        """Fill the pool of ``spec``'s key now, before its first start asks for a stem
        (a function was created: its first cold starts then take stems)."""
        if self._closed or self.per_key <= 0:
            return
        key = self._key_of(spec)
        if key is not None:
            self._want(key, spec)

    def _want(self, key: Key, spec: SandboxSpec) -> None:
        """Keep ``key``'s pool filled (from ``spec``'s template) for ``key_idle`` more s."""
        if key not in self._templates:
            self._templates[key] = replace(spec, env={})
        old = self._expiry.pop(key, None)
        if old is not None:
            old.cancel()
        self._expiry[key] = asyncio.get_running_loop().call_later(self.key_idle, self._expire, key)
        self._fill_soon(key)

    def _expire(self, key: Key) -> None:
        """No start of this key for ``key_idle`` seconds: its ready stems go (each holds
        processes, a cgroup and a ``/tmp`` device); the next start of the key refills it."""
        self._expiry.pop(key, None)
        self._templates.pop(key, None)
        filler = self._fillers.pop(key, None)
        if filler is not None:
            filler.cancel()
        for stem in self._ready.pop(key, deque()):
            self._discard(stem)

    def drop(self, matches: Callable[[Key], bool]) -> None:
        """Let the ready stems of every key ``matches`` go now (as if idle: the next start
        of such a key refills it), e.g. those forked by a zygote that was retired."""
        for key in [k for k in {*self._templates, *self._ready} if matches(k)]:
            handle = self._expiry.pop(key, None)
            if handle is not None:
                handle.cancel()
            self._expire(key)

    @property
    def closed(self) -> bool:
        return self._closed

    def ready_count(self) -> int:
        return sum(len(r) for r in self._ready.values())

    def _discard(self, stem: ProcessSandbox) -> None:
        task: asyncio.Task[object] = asyncio.ensure_future(stem.kill())
        self._discards.add(task)
        task.add_done_callback(self._discarded)

    def _discard_made(self, task: asyncio.Future[ProcessSandbox]) -> None:
        if not task.cancelled() and task.exception() is None:
            self._discard(task.result())

    def _discarded(self, task: asyncio.Task[object]) -> None:
        self._discards.discard(task)
        if not task.cancelled():
            task.exception()  # retrieved: a failed kill was logged by the sandbox

    def _fill_soon(self, key: Key) -> None:
        if key in self._fillers or self._closed:
            return
        task = asyncio.get_running_loop().create_task(self._fill(key))
        self._fillers[key] = task
        task.add_done_callback(lambda _t: self._fillers.pop(key, None))

    async def _fill(self, key: Key) -> None:
        ready = self._ready.setdefault(key, deque())
        failures = 0
        # Not at once: the start that took a stem is still on its way to the runtime's
        # first request, and a stem's making takes the event loop and a CPU from it.
        await asyncio.sleep(self.refill_delay)
        while not self._closed:
            missing = self.per_key - len(ready)
            template = self._templates.get(key)
            if missing <= 0 or template is None:  # full, or the key expired
                return
            batch = [
                # The account prefix keeps a forked stem with its account's zygote.
                replace(
                    template,
                    env_id=f"{template.env_id.split('-', 1)[0]}-stem-{uuid.uuid4().hex[:16]}",
                )
                for _ in range(min(missing, self.parallel))
            ]
            loop = asyncio.get_running_loop()
            tasks: list[asyncio.Future[ProcessSandbox]] = [
                asyncio.ensure_future(self._make(s, key), loop=loop) for s in batch
            ]
            self._making.update(tasks)
            for task in tasks:
                task.add_done_callback(self._making.discard)
            try:
                results = await asyncio.gather(*tasks, return_exceptions=True)
            except asyncio.CancelledError:
                # A stem finished just as the pool closed or its key expired: gather drops
                # its result, so it must be killed here (its processes, cgroup, /tmp).
                for task in tasks:
                    task.add_done_callback(self._discard_made)
                raise
            for res in results:
                if isinstance(res, BaseException):
                    failures += 1
                    log.debug("stem for %s not made: %s", key[0], res)
                elif self.closed or key not in self._templates:  # closed / expired meanwhile
                    self._discard(res)
                else:
                    failures = 0
                    ready.append(res)
            if failures >= MAX_FAILURES:
                log.warning("stems for %s: %d failures in a row; stopped", key[0], failures)
                return
            if failures:
                await asyncio.sleep(RETRY_DELAY)

    async def aclose(self) -> None:
        """Stop filling and kill every ready stem."""
        self._closed = True
        for handle in self._expiry.values():
            handle.cancel()
        self._expiry.clear()
        for task in list(self._fillers.values()):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await asyncio.gather(*list(self._making), return_exceptions=True)
        await asyncio.sleep(0)  # the _discard_made callbacks of those that finished
        stems = [s for ready in self._ready.values() for s in ready]
        self._ready.clear()
        kills = [s.kill() for s in stems]
        results = await asyncio.gather(*kills, *list(self._discards), return_exceptions=True)
        for res in results:
            if isinstance(res, BaseException):
                log.error("stem cleanup at backend close: %s", res)
