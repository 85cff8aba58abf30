"""The local worker: pools of execution environments per function version.

Algorithm of :meth:`Worker.invoke_nowait` (the warm path) and :meth:`Worker.begin`:

1. Find the pool of the exact snapshot (account, name, version, revision).
2. Take its most recently used idle environment (warm); else reserve memory capacity
   (and ``/tmp`` disk: EphemeralStorage) for a new one, evicting least-recently-used idle
   environments of any pool if the worker is full, and start it (cold). No capacity →
   TooManyRequests, never an over-committed host. At most ``max_starting`` environments
   start at once; a request finding neither an idle environment nor a start slot waits
   (bounded) for the first of either (:mod:`hearth.worker.starts`).
3. Hand it the invocation; when the invocation ends (whether or not its caller still
   waits) give the environment back if it is still alive, else forget it.

Descriptors (:mod:`.fd_budget`): each environment keeps 5 in the server, which bound how
many it holds; a frozen one may be *parked* (:mod:`.parking`: 1 left in the server, the
rest in the fd vault, :mod:`.fd_vault`). Environments are parked when they freeze once the
server uses more than ``park_at`` of its descriptor budget, and on demand: a start past the
budget first parks idle environments (frozen now if not yet), then evicts idle ones, then
is throttled (429); so does the unpark of a parked environment being invoked.

A reaper kills environments idle for longer than ``idle_timeout``, and retires those
older than their credentials allow (:mod:`.lifetimes`; provisioned ones are replaced
first). ``retire`` kills the idle environments of snapshots that are no longer current
(updated or deleted functions); busy ones finish their invocation and are then dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import logging
import os
import time
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from dataclasses import dataclass, field
from typing import Any

from hearth.deferred import Deferred
from hearth.errors import SandboxError, ServiceError, TooManyRequests, throttle
from hearth.runtimes.registry import RuntimeLaunch, RuntimeRegistry
from hearth.runtimes.wrapper import exec_wrapped
from hearth.sandbox.base import SandboxBackend, SandboxSpec
from hearth.types import FunctionConfig
from hearth.worker.environment import Environment, EnvLimits, NotDelivered, State
from hearth.worker.extensions_api import layered_launch
from hearth.worker.fd_budget import FDS_PER_SANDBOX
from hearth.worker.fd_vault import FdVault
from hearth.worker.invocation import Invocation, InvokeResult
from hearth.worker.lifetimes import MAX_AGE, Lifetimes
from hearth.worker.output import LogSink
from hearth.worker.starts import StartGate
from hearth.worker.templates import TemplateBackend, TemplateLaunch, Templates

log = logging.getLogger(__name__)

#: X-Ray variables Lambda defines (not reserved: a function's own values win): the SDK
#: logs instead of raising when no segment is open; the daemon's link-local address.
_XRAY_ENV = {
    "AWS_XRAY_CONTEXT_MISSING": "LOG_ERROR",
    "AWS_XRAY_DAEMON_ADDRESS": "169.254.79.129:2000",
    "_AWS_XRAY_DAEMON_ADDRESS": "169.254.79.129",
    "_AWS_XRAY_DAEMON_PORT": "2000",
}

PoolKey = tuple[str, str, str, str]


def pool_key(cfg: FunctionConfig) -> PoolKey:
    return (cfg.account_id, cfg.name, cfg.version, cfg.revision_id)


def _retrieve(task: asyncio.Future[Any]) -> None:
    """Done callback of a start nobody may await any more: its failure is logged."""
    if not task.cancelled() and task.exception() is not None:
        exc = task.exception()
        if not isinstance(exc, (TooManyRequests, ServiceError)):
            log.warning("environment start: %s", exc)


@dataclass(frozen=True, slots=True)
class WorkerConfig:
    memory_capacity_mb: int
    idle_timeout: float = 600.0
    reap_interval: float = 5.0
    limits: EnvLimits = field(default_factory=EnvLimits)
    max_starting: int = 8
    """Environments starting at once; more requests wait (see :mod:`.starts`)."""
    max_waiting: int = 1000
    wait_timeout: float = 30.0
    snapstart_latest: bool = False
    """SnapStart (ApplyOn PublishedVersions) applies to ``$LATEST`` too (a Hearth setting:
    on Lambda it applies to published versions only)."""
    max_age: float = MAX_AGE
    """Seconds an environment (or SnapStart template) may live: less than its credentials."""
    max_sandboxes: int | None = None
    """Environments and templates held at once with all their descriptors in the server
    (its file descriptors bound it: see :mod:`.fd_budget`); parked ones count for what they
    keep there (1 of 5); None: no bound but memory."""
    disk_capacity_mb: int | None = None
    """Disk the ``/tmp`` images of environments and templates may take in all, each its
    EphemeralStorage (a sparse image can grow to that and no further); None: no bound."""
    park_at: float = 0.5
    """With an fd vault: environments are parked as they freeze once the server's
    descriptors in use pass this share of its budget (0: every frozen one), and on demand
    past the budget. Not always: an unpark adds ~0.3-0.5 ms to the next invoke of the
    environment (:mod:`.parking`), for nothing while descriptors are to spare; not only on
    demand: half of the budget kept free lets a burst of starts (1,800 here) go without
    waiting for parks (a freeze and a round trip to the vault each)."""


class Worker:
    def __init__(
        self,
        backend: SandboxBackend,
        runtimes: RuntimeRegistry,
        sink: LogSink,
        code_dir_of: Callable[[FunctionConfig], str],
        config: WorkerConfig,
        clock: Callable[[], float] = time.monotonic,
        vault: FdVault | None = None,
    ) -> None:
        self._backend = backend
        self._runtimes = runtimes
        self._sink = sink
        self._code_dir_of = code_dir_of
        self._code_dirs: dict[str, str] = {}
        """Code package sha → its unpacked directory, as ``code_dir_of`` returned it."""
        self._unpacking: dict[str, int] = {}
        """Code package sha → starts and preparations unpacking it now."""
        self._config = config
        self.credentials_of: Callable[[FunctionConfig], Mapping[str, str]] | None = None
        """``AWS_ACCESS_KEY_ID`` / ``..._SECRET_ACCESS_KEY`` / ``AWS_SESSION_TOKEN`` for an
        environment of a function (``hearth.api.session_keys``), wired by the server."""
        self.opt_dir_of: Callable[[FunctionConfig], Awaitable[str | None]] | None = None
        """The merged /opt tree of a function's layers (``hearth.layers``), wired by the server."""
        self._idle: dict[PoolKey, list[Environment]] = {}
        self._all: set[Environment] = set()
        self._committed_mb = 0
        self._committed_disk_mb = 0
        self._slots = 0  # sandboxes holding capacity: starting or alive
        self._fds = 0
        """Descriptors the sandboxes keep in the server: 5 each, less what is parked."""
        self._parked = 0
        """Environments parked now."""
        self._fd_budget = (
            None if config.max_sandboxes is None else config.max_sandboxes * FDS_PER_SANDBOX
        )
        self._parking_host: _ParkingHost | None = (
            _ParkingHost(self, vault) if vault is not None and self._fd_budget else None
        )
        self._reaper: asyncio.Task[None] | None = None
        self._closing = False
        self._provisioned: set[Environment] = set()
        """Environments initialized ahead (provisioned concurrency): used first, never reaped."""
        self._lifetimes: Lifetimes[Environment] = Lifetimes(config.max_age, clock)
        """Birth times: an environment is retired before its credentials expire."""
        self._gate: StartGate[Environment] = StartGate(
            config.max_starting, config.max_waiting, config.wait_timeout
        )
        self.templates = Templates(
            backend,
            sink,
            init_timeout=config.limits.init_timeout,
            latest=config.snapstart_latest,
            reserve=self._reserve,
            release=self._unreserve,
            lifetimes=self._lifetimes,
        )
        """SnapStart templates (:mod:`.templates`)."""
        self._background: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        self._reaper = asyncio.create_task(self._reap_loop())

    # -- invoke -----------------------------------------------------------------------
    def invoke_nowait(self, cfg: FunctionConfig, inv: Invocation) -> Deferred[InvokeResult] | None:
        """The warm path, without a task: an idle environment of ``cfg`` takes ``inv`` now
        (the future is its result, see :meth:`Environment.begin`), or None if there is none."""
        env = self._take_idle(cfg)
        return None if env is None else self._run_on(env, inv)

    async def begin(self, cfg: FunctionConfig, inv: Invocation) -> Deferred[InvokeResult]:
        """Hand ``inv`` to an environment: an idle one, one that becomes free, or a new one."""
        return await self._begin(cfg, inv)

    async def _begin(
        self, cfg: FunctionConfig, inv: Invocation, redeliver: bool = True
    ) -> Deferred[InvokeResult]:
        env = self._take_idle(cfg)
        while env is None:
            env = await self._gate.acquire(
                pool_key(cfg), lambda: self._take_idle(cfg), self._release
            )
            if env is None:
                return await self._start_for(cfg, inv)
            if env.state is not State.IDLE:
                env = None  # died while handed over
        return self._run_on(env, inv, redeliver)

    async def _start_for(self, cfg: FunctionConfig, inv: Invocation) -> Deferred[InvokeResult]:
        """With a start slot: start an environment and hand it ``inv`` (which waits for the
        end of its Init), unless an environment of ``cfg`` frees up before the runtime
        took ``inv``: then ``inv`` runs there, and the new environment joins the pool when
        its Init ends (see :mod:`.starts`)."""
        began: list[Environment] = []  # the new environment, once it holds ``inv``
        elsewhere = False  # ``inv`` is served by another environment (or nobody waits)

        async def start() -> Deferred[InvokeResult] | None:
            try:
                env = await self._start_env(cfg)
            finally:
                self._gate.start_done()
            if elsewhere:
                self._adopt(env)
                return None
            done = self._run_on(env, inv)
            began.append(env)
            await env.init_done.wait()  # Init over: ``inv`` delivered (or the env died)
            return done

        own = asyncio.get_running_loop().create_task(start())
        own.add_done_callback(_retrieve)
        try:
            other = await self._gate.race(pool_key(cfg), own, self._release)
        except BaseException:
            if not own.done():  # the caller went away while its environment starts
                elsewhere = True
                if began and began[0].retract(inv):
                    self._adopt(began[0])
            raise
        if other is None or own.done():
            if other is not None:
                self._release(other)
            done = own.result()
            assert done is not None
            return done
        if began and not began[0].retract(inv):  # delivered meanwhile: stay with it
            self._release(other)
            done = await own
            assert done is not None
            return done
        elsewhere = True
        if began:
            self._adopt(began[0])
        if other.state is not State.IDLE:  # died while handed over
            return await self.begin(cfg, inv)
        return self._run_on(other, inv)

    def _adopt(self, env: Environment) -> None:
        """An environment started for a request served elsewhere: into the pool once its
        Init is over."""

        async def when_initialized() -> None:
            await env.init_done.wait()  # set at the end of Init, or when it dies
            if env.state is State.IDLE:
                self._release(env)

        self._spawn(when_initialized())

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        """Run ``coro`` in the background, held until it ends (cancelled at close)."""
        task = asyncio.get_running_loop().create_task(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    def _run_on(
        self, env: Environment, inv: Invocation, redeliver: bool = True
    ) -> Deferred[InvokeResult]:
        """``env`` (idle) takes ``inv``. A frozen one thaws first (and unparks); if that
        fails, nothing of ``inv`` ran (:class:`NotDelivered`), and with ``redeliver`` it
        goes to another environment (once) instead of failing with the one that broke.
        The warm path (not frozen) returns the environment's own result."""
        frozen = env.frozen
        done = env.begin(inv)
        # The environment goes back when the invocation ends, not when its caller stops
        # waiting (a client that disconnects must not leave it busy for ever).
        done.then(lambda _: self._release(env))
        if not frozen or not redeliver:
            return done
        outer: Deferred[InvokeResult] = Deferred()

        def settled(d: Deferred[InvokeResult]) -> None:
            if d.cancelled():
                outer.cancel()
            elif isinstance(d.exception(), NotDelivered):
                log.warning("%s; handing %s to another environment", d.exception(), inv.request_id)
                self._spawn(self._redeliver(env.cfg, inv, outer))
            else:
                d.forward(outer)

        done.then(settled)
        return outer

    async def _redeliver(
        self, cfg: FunctionConfig, inv: Invocation, outer: Deferred[InvokeResult]
    ) -> None:
        try:
            done = await self._begin(cfg, inv, redeliver=False)
        except asyncio.CancelledError:
            outer.cancel()
            raise
        except Exception as exc:  # throttled, or the start failed: the caller's answer
            outer.fail(exc)
            return
        done.forward(outer)

    def _release(self, env: Environment) -> None:
        """A free environment goes to a waiting request of its version, else to the pool
        (or, retired while it served, away: see :mod:`.lifetimes`)."""
        if self._lifetimes.retiring and env in self._lifetimes.retiring:
            self._lifetimes.retiring.discard(env)
            self._retire_env(env, free=True)
            return
        if env.available and not self._closing:
            key = pool_key(env.cfg)
            if not self._gate.offer(key, env):
                self._idle.setdefault(key, []).append(env)

    def uses_code(self, sha256_hex: str) -> bool:
        """Whether a live environment runs this code package (or it is being unpacked)."""
        return sha256_hex in self._unpacking or any(
            env.alive and env.cfg.code_sha256_hex == sha256_hex for env in self._all
        )

    def _take_idle(self, cfg: FunctionConfig) -> Environment | None:
        idle = self._idle.get(pool_key(cfg))
        if idle and self._provisioned:  # provisioned environments serve first
            for i in range(len(idle) - 1, -1, -1):
                if idle[i] in self._provisioned and idle[i].available:
                    return idle.pop(i)
        while idle:
            env = idle.pop()
            if env.available:
                return env
        return None

    async def _launch(
        self, cfg: FunctionConfig, init_type: str
    ) -> tuple[RuntimeLaunch, dict[str, str], str, list[str]]:
        """What an environment of ``cfg`` runs: the launch (runtime, layers), its
        environment variables, its code directory and its external extensions."""
        runtime = self._runtimes.get(cfg.runtime)
        if runtime is None:
            raise TooManyRequests(f"Runtime {cfg.runtime} is not available on this worker")
        launch = exec_wrapped(runtime.launch(), cfg.runtime, cfg.environment)
        # The runtime's defaults first: LANG, PATH, TZ, PYTHONPATH, ... are not reserved,
        # so a function's own values win (AWS: "Using Lambda environment variables").
        env_vars = dict(launch.env)
        env_vars.update(_XRAY_ENV)
        env_vars.update(cfg.environment)
        env_vars.update(
            {
                "_HANDLER": cfg.handler,
                "AWS_REGION": cfg.region,
                "AWS_DEFAULT_REGION": cfg.region,
                "AWS_LAMBDA_FUNCTION_NAME": cfg.name,
                "AWS_LAMBDA_FUNCTION_VERSION": cfg.version,
                "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(cfg.memory_size),
                "AWS_LAMBDA_LOG_GROUP_NAME": cfg.log_group,
                "AWS_LAMBDA_RUNTIME_API": "127.0.0.1:9001",
                "AWS_LAMBDA_INITIALIZATION_TYPE": init_type,
                "LAMBDA_TASK_ROOT": "/var/task",
                "LAMBDA_RUNTIME_DIR": "/var/runtime",
            }
        )
        if self.credentials_of is not None:
            env_vars.update(self.credentials_of(cfg))
        if cfg.logging_config.get("LogFormat") == "JSON":
            # LoggingConfig reaches the runtime as on Lambda: its logger writes JSON records
            # at the application log level (INFO unless set).
            env_vars["AWS_LAMBDA_LOG_FORMAT"] = "JSON"
            env_vars["AWS_LAMBDA_LOG_LEVEL"] = cfg.logging_config.get("ApplicationLogLevel", "INFO")
        # Unpacked once: then one stat here, not a hop to a thread (~0.2-1 ms loaded).
        sha = cfg.code_sha256_hex
        code_dir = self._code_dirs.get(sha, "")
        if not os.path.isdir(code_dir):
            # Counted as in use meanwhile: a package deleted now stays until the next
            # sweep, instead of its tree being unpacked again after its removal.
            self._unpacking[sha] = self._unpacking.get(sha, 0) + 1
            try:
                loop = asyncio.get_running_loop()
                code_dir = await loop.run_in_executor(None, self._code_dir_of, cfg)
            finally:
                left = self._unpacking.pop(sha) - 1
                if left:
                    self._unpacking[sha] = left
            self._code_dirs[sha] = code_dir
        opt_dir = await self.opt_dir_of(cfg) if cfg.layers and self.opt_dir_of else None
        extensions: list[str] = []
        if opt_dir is not None:
            launch, extensions = layered_launch(launch, opt_dir)
        return launch, env_vars, code_dir, extensions

    async def _template_for(
        self, cfg: FunctionConfig, launch: RuntimeLaunch, env_vars: dict[str, str], code_dir: str
    ) -> TemplateBackend | None:
        target = TemplateLaunch(
            code_dir, launch.argv, env_vars, launch.mounts, self._config.limits.network
        )
        return await self.templates.backend_for(pool_key(cfg), cfg, target)

    def prepare_snapshot(self, cfg: FunctionConfig) -> None:
        """A version was published: with SnapStart, its template starts now (in the
        background), as Lambda initializes a SnapStart version when it is published."""
        if self._closing or not self.templates.applies(cfg):
            return

        async def prepare() -> None:
            try:
                launch, env_vars, code_dir, extensions = await self._launch(cfg, "on-demand")
                if not extensions:
                    await self._template_for(cfg, launch, env_vars, code_dir)
            except Exception as exc:
                log.warning("SnapStart template of %s:%s: %s", cfg.name, cfg.version, exc)

        self._spawn(prepare())

    def prepare(self, cfg: FunctionConfig) -> None:
        """A function was created or changed: in the background, unpack its code and let
        the backend prepare what its first starts need (the process backend: start the
        runtime's zygote and fill the stem pool of its kind of sandbox; nothing of the
        function runs or is loaded). Measured in a burst of 100 starts from zero on a
        fresh server: the runtime's zygote started at the first Invoke, and the first
        eight starts waited ~100-270 ms for it (one took the exec path meanwhile)."""
        prepare: Callable[[SandboxSpec], None] | None = getattr(self._backend, "prepare", None)
        if self._closing or prepare is None or self.templates.applies(cfg):
            return

        async def run() -> None:
            try:
                launch, env_vars, code_dir, extensions = await self._launch(cfg, "on-demand")
            except Exception as exc:
                log.debug("preparing %s: %s", cfg.name, exc)
                return
            if extensions or self._closing:
                return
            prepare(
                SandboxSpec(
                    env_id=f"{cfg.account_id}-prepare",
                    code_dir=code_dir,
                    argv=launch.argv,
                    env=env_vars,
                    memory_mb=cfg.memory_size,
                    ephemeral_mb=cfg.ephemeral_storage,
                    mounts=launch.mounts,
                    network=self._config.limits.network,  # type: ignore[arg-type]
                )
            )

        self._spawn(run())

    async def _start_env(self, cfg: FunctionConfig, init_type: str = "on-demand") -> Environment:
        await self._reserve(cfg.memory_size, cfg.ephemeral_storage)
        backend: SandboxBackend = self._backend
        restore = False
        born: float | None = None  # now (its credentials were just issued)
        try:
            launch, env_vars, code_dir, extensions = await self._launch(cfg, init_type)
            if init_type == "on-demand" and not extensions and self.templates.applies(cfg):
                forked = await self._template_for(cfg, launch, env_vars, code_dir)
                if forked is not None:
                    backend, restore, born = forked, True, forked.born
                    env_vars["AWS_LAMBDA_INITIALIZATION_TYPE"] = "snap-start"
        except BaseException:
            self._unreserve(cfg.memory_size, cfg.ephemeral_storage)
            raise

        def environment(backend: SandboxBackend, restore: bool) -> Environment:
            env = Environment(
                cfg,
                backend=backend,
                code_dir=code_dir,
                argv=launch.argv,
                env=env_vars,
                mounts=launch.mounts,
                sink=self._sink,
                limits=self._config.limits,
                on_dead=self._forget,
                extensions=extensions,
                restore=restore,
                parking=self._parking_host,
            )
            self._all.add(env)
            self._lifetimes.born(env, born if restore else None)
            return env

        env = environment(backend, restore)
        try:
            await env.start()
        except SandboxError as exc:
            if not restore:
                log.error("cannot start an environment for %s: %s", cfg.name, exc)
                raise ServiceError(
                    f"Hearth could not start an execution environment for {cfg.name}: {exc}"
                ) from exc
            # The template could not fork (it died, say): start this one the usual way.
            log.warning("SnapStart restore of %s failed (%s); running Init", cfg.name, exc)
            await self._reserve(cfg.memory_size, cfg.ephemeral_storage)
            env_vars["AWS_LAMBDA_INITIALIZATION_TYPE"] = init_type
            env = environment(self._backend, False)
            try:
                await env.start()
            except SandboxError as exc2:
                raise ServiceError(
                    f"Hearth could not start an execution environment for {cfg.name}: {exc2}"
                ) from exc2
        return env

    def _unreserve(self, memory_mb: int, disk_mb: int) -> None:
        self._committed_mb -= memory_mb
        self._committed_disk_mb -= disk_mb
        self._slots -= 1
        self._fds -= FDS_PER_SANDBOX

    def _fds_full(self, n: int) -> bool:
        budget = self._fd_budget
        return budget is not None and self._fds + n > budget

    def _full(self, memory_mb: int, disk_mb: int) -> bool:
        return self._other_full(memory_mb, disk_mb) or self._fds_full(FDS_PER_SANDBOX)

    def _other_full(self, memory_mb: int, disk_mb: int) -> bool:
        """Memory or disk would be over-committed (descriptors aside)."""
        disk = self._config.disk_capacity_mb
        return self._committed_mb + memory_mb > self._config.memory_capacity_mb or (
            disk is not None and self._committed_disk_mb + disk_mb > disk
        )

    async def _reserve(self, memory_mb: int, disk_mb: int) -> None:
        """Reserve capacity (memory, ``/tmp`` disk, and a sandbox's descriptors) for a new
        environment or template: past the descriptor budget idle environments are parked
        first; then idle ones are evicted.

        Disk: each ``/tmp`` is a sparse image of EphemeralStorage size, so the sum of
        those of the live environments and templates bounds what functions can write on
        the host's disk. Stems, SnapStart spares and the images kept formatted ahead
        (:mod:`hearth.sandbox.scratch`) reserve nothing: no function code runs in them
        before they become an environment, which reserves; empty, an image takes ~0.5
        MB, which the capacity's reserve covers (:func:`hearth.config.default_disk_capacity_mb`)."""
        while self._full(memory_mb, disk_mb):
            other_full = self._other_full(memory_mb, disk_mb)
            if not other_full and await self._park_lru():
                continue
            victim = self._lru_idle(resident_first=not other_full)
            if victim is None and await self.templates.evict_one():
                continue
            if victim is None:
                raise throttle()
            await victim.kill()
        self._committed_mb += memory_mb
        self._committed_disk_mb += disk_mb
        self._slots += 1
        self._fds += FDS_PER_SANDBOX

    def _lru_idle(self, resident_first: bool = False) -> Environment | None:
        """The least recently used idle environment, out of the pool (``resident_first``:
        one that is not parked if there is any: evicting a parked one frees 1 descriptor)."""
        best: Environment | None = None
        for envs in self._idle.values():
            for env in envs:
                if env.state is not State.IDLE or env in self._provisioned:
                    continue
                if best is None:
                    best = env
                    continue
                if resident_first and best.parked != env.parked:
                    if best.parked:
                        best = env
                    continue
                if env.last_used < best.last_used:
                    best = env
        if best is not None:
            self._idle[pool_key(best.cfg)].remove(best)
        return best

    async def _park_lru(self, tries: int = 8) -> bool:
        """Park the least recently used idle environments that can be, until one is parked
        (at most ``tries``); False if none was."""
        if self._parking_host is None:
            return False
        candidates = heapq.nsmallest(  # O(n): a start past the budget asks each time
            tries,
            (env for envs in self._idle.values() for env in envs if env.parkable),
            key=lambda env: env.last_used,
        )
        for env in candidates:
            if await env.park():
                return True
        return False

    def _maybe_park(self, env: Environment) -> None:
        """``env`` has just frozen: park it if the server's descriptors in use are past
        ``park_at`` of its budget."""
        budget = self._fd_budget
        if self._closing or budget is None or self._fds <= self._config.park_at * budget:
            return
        if env.parkable:
            self._spawn(self._park_quietly(env))

    @staticmethod
    async def _park_quietly(env: Environment) -> None:
        try:
            await env.park()
        except Exception as exc:  # it stays resident
            log.warning("parking environment %s: %s", env.id, exc)

    async def _room(self, n: int) -> None:
        """``n`` more descriptors in the server (an environment being unparked): park or
        evict idle environments for them, or raise TooManyRequests."""
        while self._fds_full(n):
            if await self._park_lru():
                continue
            victim = self._lru_idle(resident_first=True)
            if victim is None or victim.parked:
                if victim is not None:
                    self._release(victim)
                raise throttle()
            await victim.kill()

    def _forget(self, env: Environment) -> None:
        self._provisioned.discard(env)
        self._lifetimes.forget(env)
        if env in self._all:
            self._all.discard(env)
            self._unreserve(env.cfg.memory_size, env.cfg.ephemeral_storage)
        idle = self._idle.get(pool_key(env.cfg))
        if idle and env in idle:
            idle.remove(env)

    # -- provisioned concurrency -------------------------------------------------------
    async def provision(self, cfg: FunctionConfig, count: int) -> None:
        """Start environments of ``cfg`` until ``count`` provisioned ones are alive and
        initialized (Init runs now, with ``AWS_LAMBDA_INITIALIZATION_TYPE`` set to
        ``provisioned-concurrency``). Raises TooManyRequests/ServiceError if one cannot."""
        missing = count - self.provisioned_count(cfg)
        sem = asyncio.Semaphore(self._config.max_starting)

        async def one() -> None:
            async with sem:
                await self._provision_one(cfg)

        await asyncio.gather(*(one() for _ in range(max(0, missing))))

    async def _provision_one(self, cfg: FunctionConfig) -> Environment:
        env = await self._start_env(cfg, "provisioned-concurrency")
        await asyncio.wait_for(env.init_done.wait(), self._config.limits.init_timeout)
        if env.state is not State.IDLE:
            await env.kill()
            raise ServiceError(f"provisioned environment of {cfg.name} failed its Init")
        self._provisioned.add(env)
        self._release(env)
        return env

    def provisioned_count(self, cfg: FunctionConfig) -> int:
        key = pool_key(cfg)
        return sum(1 for env in self._provisioned if pool_key(env.cfg) == key and env.alive)

    def deprovision(self, cfg: FunctionConfig) -> None:
        """Provisioned environments of ``cfg`` become ordinary ones (reaped when idle)."""
        key = pool_key(cfg)
        self._provisioned = {env for env in self._provisioned if pool_key(env.cfg) != key}

    # -- housekeeping -----------------------------------------------------------------
    async def retire(
        self,
        account_id: str,
        name: str,
        keep_revision: str | None = None,
        version: str | None = None,
    ) -> None:
        """Kill idle environments of a function whose snapshot is no longer current.

        With ``version``, only that version's pool is considered (published versions are
        immutable, so a change of ``$LATEST`` leaves their environments warm).
        """
        victims: list[Environment] = []
        for key, envs in list(self._idle.items()):
            if version is not None and key[2] != version:
                continue
            if key[0] == account_id and key[1] == name and key[3] != keep_revision:
                victims.extend(envs)
                del self._idle[key]
        await asyncio.gather(*(env.kill() for env in victims), return_exceptions=True)

        def stale(key: PoolKey) -> bool:
            return (
                key[0] == account_id
                and key[1] == name
                and key[3] != keep_revision
                and (version is None or key[2] == version)
            )

        await self.templates.retire(stale)

    def _retire_env(self, env: Environment, free: bool = False) -> None:
        """Kill an environment past its lifetime now if it is in the pool (or ``free``: just
        released), else when the invocation it serves (or is handed) ends."""
        idle = self._idle.get(pool_key(env.cfg))
        if idle is not None and env in idle:
            idle.remove(env)
        elif not free and env.state is not State.DEAD:
            self._lifetimes.retiring.add(env)
            return
        self._spawn(env.kill())

    async def _renew(self, env: Environment) -> None:
        """Retire an environment past its lifetime; a provisioned one after its
        replacement has initialized (on failure it serves on and the next reap retries)."""
        if env in self._provisioned:
            self._lifetimes.renewing.add(env)
            try:
                new = await self._provision_one(env.cfg)
            except Exception as exc:
                log.warning("replacing a provisioned environment of %s: %s", env.cfg.name, exc)
                return
            finally:
                self._lifetimes.renewing.discard(env)
            if env.alive and env not in self._provisioned:
                self._provisioned.discard(new)  # deprovisioned meanwhile: ordinary too
            self._provisioned.discard(env)
        self._retire_env(env)

    def renew_expired(self) -> None:
        """Start retiring every environment past its lifetime (the reaper calls this)."""
        for env in self._lifetimes.expired(self._all):
            self._spawn(self._renew(env))

    async def _reap_loop(self) -> None:
        while True:
            await asyncio.sleep(self._config.reap_interval)
            self.renew_expired()
            deadline = time.monotonic() - self._config.idle_timeout
            victims = [
                env
                for envs in self._idle.values()
                for env in envs
                if env.state is State.IDLE
                and env.last_used < deadline
                and env not in self._provisioned
            ]
            for env in victims:
                with contextlib.suppress(Exception):
                    await env.kill()
            with contextlib.suppress(Exception):
                await self.templates.collect()

    def statistics(self) -> dict[str, int]:
        return {
            "environments": len(self._all),
            "idle": sum(len(v) for v in self._idle.values()),
            "committed_mb": self._committed_mb,
            "capacity_mb": self._config.memory_capacity_mb,
            "disk_committed_mb": self._committed_disk_mb,
            "disk_capacity_mb": self._config.disk_capacity_mb or 0,
            "sandboxes": self._slots,
            "parked": self._parked,
            "server_fds": self._fds,
            **(self._parking_host.vault.statistics() if self._parking_host else {}),
            **self._gate.statistics(),
        }

    async def aclose(self) -> None:
        self._closing = True
        if self._reaper is not None:
            self._reaper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reaper
        await asyncio.gather(*(env.kill() for env in list(self._all)), return_exceptions=True)
        self._idle.clear()
        await self.templates.aclose()


class _ParkingHost:
    """The worker's side of parking, as environments see it (:class:`.parking.ParkingHost`)."""

    def __init__(self, worker: Worker, vault: FdVault) -> None:
        self._worker = worker
        self.vault = vault

    def frozen(self, env: Environment) -> None:
        self._worker._maybe_park(env)

    def moved(self, n: int) -> None:
        self._worker._fds -= n
        self._worker._parked += 1 if n > 0 else -1

    async def room(self, n: int) -> None:
        await self._worker._room(n)
