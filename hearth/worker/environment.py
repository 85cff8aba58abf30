"""One execution environment: a sandbox running a runtime for one function version.

Lifecycle (an explicit state machine; ``_transition`` guards it)::

    STARTING ──► INITIALIZING ──► IDLE ◄──► BUSY
        │              │            │         │
        └──────────────┴────────────┴─────────┴──► DEAD  (kill, crash, timeout, OOM)

* INITIALIZING ends when the runtime first calls ``GET invocation/next`` (Init Duration).
  Init is capped at ``init_timeout`` (10 s as on Lambda).
* BUSY serves exactly one invocation; its timer starts when the payload is handed to
  the runtime. A timeout, a crash or an OOM kill makes the environment DEAD: it is
  never reused.
* IDLE for ``freeze_after`` freezes the sandbox (cgroup freezer: no CPU while idle); the
  next ``invoke`` thaws it before delivering the payload.
* A frozen environment may be *parked* (:mod:`.parking`): its descriptors held by the fd
  vault, not the server; the next ``invoke`` fetches them back before the thaw.
* After DEAD every method returns at once; ``kill`` is idempotent.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import json
import logging
import math
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass

from hearth.api.http import HttpServer
from hearth.api.types import Response
from hearth.deferred import Deferred
from hearth.errors import AwsError, InvalidStateError, TooManyRequests
from hearth.runtimes.registry import runtime_version, runtime_version_arn
from hearth.sandbox.base import ExitInfo, Sandbox, SandboxBackend, SandboxSpec
from hearth.types import FunctionConfig
from hearth.worker.extensions_api import ExtensionsHub, FunctionInfo
from hearth.worker.freezer import Freezer
from hearth.worker.invocation import Invocation, InvokeResult, error_payload
from hearth.worker.outcomes import RESTORE_FAILURES, Outcome, exit_outcome, runtime_error
from hearth.worker.output import LogSink, OutputCapture
from hearth.worker.parking import Parked, ParkingHost, park, unpark
from hearth.worker.platform_log import PlatformLog, Report
from hearth.worker.runtime_api import RuntimeApi, invalid_request_id

log = logging.getLogger(__name__)


class NotDelivered(Exception):
    """The invocation never reached the runtime: the idle environment it was handed to
    could not be thawed, or its parked descriptors fetched back. Nothing of it ran, so
    the worker hands it to another environment (:meth:`Worker._run_on`)."""


class State(enum.Enum):
    STARTING = "starting"
    INITIALIZING = "initializing"
    IDLE = "idle"
    BUSY = "busy"
    DEAD = "dead"


_ALLOWED = {
    State.STARTING: {State.INITIALIZING, State.DEAD},
    State.INITIALIZING: {State.BUSY, State.IDLE, State.DEAD},
    State.IDLE: {State.BUSY, State.DEAD},
    State.BUSY: {State.IDLE, State.DEAD},
    State.DEAD: set(),
}


@dataclass(frozen=True, slots=True)
class EnvLimits:
    init_timeout: float = 10.0
    max_response: int = 6 * 1024 * 1024 + 100  # 6291556 bytes, Lambda's own figure
    network: str = "none"
    freeze_after: float | None = 1.0
    """Freeze an idle environment's processes after this long (None: never). Not after
    every invoke: a freeze + thaw costs ~0.4 ms, too much for back-to-back calls."""


def log_stream_name(version: str, now: float) -> str:
    day = time.strftime("%Y/%m/%d", time.gmtime(now))
    return f"{day}/[{version}]{uuid.uuid4().hex}"


class Environment:
    def __init__(
        self,
        cfg: FunctionConfig,
        *,
        backend: SandboxBackend,
        code_dir: str,
        argv: tuple[str, ...],
        env: Mapping[str, str],
        mounts: tuple[object, ...],
        sink: LogSink,
        limits: EnvLimits,
        on_dead: Callable[[Environment], None],
        extensions: Sequence[str] = (),
        restore: bool = False,
        parking: ParkingHost | None = None,
    ) -> None:
        self.cfg = cfg
        self.restore = restore
        self._loop = asyncio.get_running_loop()
        """Kept: on Python < 3.12 every ``asyncio.get_running_loop()`` is a ``getpid``
        system call (its fork check), several per invoke."""
        self._platform = PlatformLog(
            cfg.logging_config.get("LogFormat", "Text"),
            cfg.logging_config.get("SystemLogLevel", "INFO"),
        )
        """Forked from a SnapStart template: its start is a *restore* (REPORT shows Restore
        Duration, not Init Duration; a failed after-restore hook is SnapStartException)."""
        self.id = uuid.uuid4().hex[:20]
        self.state = State.STARTING
        self.last_used = time.monotonic()
        self.stream = log_stream_name(cfg.version, time.time())
        self._backend = backend
        self._code_dir = code_dir
        self._argv = argv
        self._env = dict(env)
        self._mounts = mounts
        self._sink = sink
        self._limits = limits
        self._on_dead = on_dead
        self._hub: ExtensionsHub | None = None
        """External extensions (from layers): the Extensions API and their lifecycle."""
        if extensions:
            info = FunctionInfo(cfg.name, cfg.version, cfg.handler, cfg.account_id)
            self._hub = ExtensionsHub(extensions, info, self._extension_failed)
        self._sandbox: Sandbox | None = None
        self._server: HttpServer | None = None
        self._output: OutputCapture | None = None
        self._watch: asyncio.Task[None] | None = None
        self._started_at = 0.0
        self.init_ms: float | None = None
        self._init_reported = False
        self._init_error: Outcome | None = None
        self._waiter: Deferred[Response] | None = None
        self._pending: Invocation | None = None
        self._current: Invocation | None = None
        self._delivered_at = 0.0
        self._result: asyncio.Future[Outcome] | None = None
        self._done: Deferred[InvokeResult] = Deferred()
        """What :meth:`begin` returned for the invocation being served."""
        self._was_cold = False
        self._thawing: asyncio.Task[None] | None = None
        self._timer: asyncio.TimerHandle | None = None
        """Armed while an invocation may time out; re-armed lazily (see _timeout_due)."""
        self._timeout_at = 0.0
        """Loop time at which the invocation being served times out; 0.0: none."""
        self._init_timer: asyncio.TimerHandle | None = None
        self._exit: ExitInfo | None = None
        self._kill_task: asyncio.Future[None] | None = None
        self.init_done = asyncio.Event()
        """Set when Init has finished (the runtime's first ``/next``) or the environment died."""
        self._parking = parking if not extensions else None
        """The worker's side of parking (None: this environment is never parked; nor is
        one with extensions, whose Extensions API connections are served by tasks)."""
        self._parked: Parked | None = None
        self._park_op: asyncio.Future[None] | None = None
        """Set while a park or unpark is under way (done when it is over)."""
        self._freezer = Freezer(
            self.id,
            limits.freeze_after,
            lambda: self.last_used if self.state is State.IDLE else None,
            lambda: self._sandbox,
            self._frozen_idle if self._parking is not None else None,
        )
        """Freezes the sandbox after ``freeze_after`` idle, thaws it for an invocation."""
        self._invoke_deadline: float | None = None
        self._doomed = False
        """A kill is scheduled: never hand this environment out again."""
        self._first_delivery = True

    # -- lifecycle --------------------------------------------------------------------
    def _transition(self, new: State) -> None:
        if new not in _ALLOWED[self.state]:
            raise InvalidStateError(f"environment {self.id}: {self.state.value} -> {new.value}")
        self.state = new

    @property
    def available(self) -> bool:
        """Idle and not about to be killed: may take the next invocation."""
        return self.state is State.IDLE and not self._doomed

    @property
    def alive(self) -> bool:
        return self.state is not State.DEAD

    async def start(self) -> None:
        """Start the sandbox and serve its Runtime API. Raises SandboxError on failure."""
        env = dict(self._env)
        env["AWS_LAMBDA_LOG_STREAM_NAME"] = self.stream
        spec = SandboxSpec(
            env_id=f"{self.cfg.account_id}-{self.id}",
            code_dir=self._code_dir,
            argv=self._argv,
            env=env,
            memory_mb=self.cfg.memory_size,
            ephemeral_mb=self.cfg.ephemeral_storage,
            mounts=self._mounts,  # type: ignore[arg-type]
            network=self._limits.network,  # type: ignore[arg-type]
        )
        self._started_at = time.monotonic()
        loop = self._loop
        try:
            self._sandbox = await self._backend.start(spec)
            self._output = OutputCapture(
                self._sandbox.output_fd,
                self._sink,
                self.cfg.account_id,
                self.cfg.log_group,
                self.stream,
                frames_fd=self._sandbox.log_fd,
            )
            self._output.start()
            self._init_start()
            api = RuntimeApi(self, self._limits.max_response)
            self._server = HttpServer(
                self._hub.wrap(api) if self._hub is not None else api.serve,
                max_body=self._limits.max_response + 1024 * 1024,
                on_too_large=api.oversized,
                cork=self._hub is None,
            )
            await self._server.start(sock=self._sandbox.runtime_api_socket)
        except BaseException:
            await self.kill()
            raise
        self._transition(State.INITIALIZING)
        self._init_timer = loop.call_later(self._limits.init_timeout, self._init_timed_out)
        self._watch = asyncio.create_task(self._watch_exit())

    def _init_start(self) -> None:
        """``INIT_START`` (a SnapStart restore: ``RESTORE_START``), first in the stream."""
        cfg = self.cfg
        line = self._platform.init_start(
            runtime_version(cfg.runtime),
            runtime_version_arn(cfg.region, cfg.runtime),
            restore=self.restore,
            initializationType=self._env.get("AWS_LAMBDA_INITIALIZATION_TYPE", "on-demand"),
            phase="init",
            functionName=cfg.name,
            functionVersion=cfg.version,
        )
        if line is not None and self._output is not None:
            self._output.emit(line)

    async def _watch_exit(self) -> None:
        assert self._sandbox is not None
        info = await self._sandbox.wait()
        self._exit = info
        if self._output is not None:
            self._output.drain()
        if self._result is not None and not self._result.done():
            self._settle(self._exit_outcome_of(info))
        await self.kill()

    def _exit_outcome_of(self, info: ExitInfo) -> Outcome:
        rid = self._current.request_id if self._current else ""
        return exit_outcome(info, rid, self._init_error)

    def _init_timed_out(self) -> None:
        """Init ran past its cap (10 s, as on Lambda).

        A restore past the same cap fails the invocation with SnapStartTimeoutException.

        With an invocation waiting (an on-demand cold start), Lambda goes on with Init
        inside the invoke phase, bounded by the function's timeout: so does Hearth, the
        invocation's clock starting now. With nothing waiting, the environment is dropped.
        """
        if self.init_ms is not None or self.state is State.DEAD:
            return
        if self.restore:
            self._restore_report("Sandbox.Timedout")
            self._init_error = Outcome(b"", "SnapStartTimeoutException")
            if self._result is not None and not self._result.done():
                self._settle(self._init_error)
            self._kill_soon()
            return
        if self._output is not None:
            self._output.emit(
                f"INIT_REPORT Init Duration: {self._limits.init_timeout * 1000:.2f} ms"
                "\tPhase: init\tStatus: timeout\n"
            )
        if self.state is State.BUSY and self._pending is not None and not self._timeout_at:
            self._arm_timeout(self.cfg.timeout)
            self._invoke_deadline = time.time() + self.cfg.timeout
            return
        if self.state in (State.INITIALIZING, State.BUSY):
            self._init_error = Outcome(
                error_payload(
                    "Runtime.Unknown",
                    f"Init timed out after {self._limits.init_timeout:.2f} seconds",
                ),
                "Runtime.Unknown",
            )
            if self._result is not None and not self._result.done():
                self._settle(self._init_error)
            self._kill_soon()

    def _arm_timeout(self, delay: float) -> None:
        """The invocation being served times out in ``delay`` seconds.

        Timers are not created and cancelled per invoke (two ``call_later`` and two
        ``cancel`` per warm invoke showed in py-spy): the one timer stays armed across
        invocations, and when it fires it either times the current one out or re-arms at
        its deadline (a warm function answering in ms wakes it once per timeout period).
        """
        loop = self._loop
        self._timeout_at = loop.time() + delay
        if self._timer is None:
            self._timer = loop.call_at(self._timeout_at, self._timeout_due)

    def _timeout_due(self) -> None:
        self._timer = None
        at = self._timeout_at
        if not at:
            return  # nothing running: re-armed by the next delivery
        loop = self._loop
        if loop.time() < at - 0.001:  # a later invocation's deadline
            self._timer = loop.call_at(at, self._timeout_due)
            return
        self._timeout_at = 0.0
        self._timed_out()

    def _timed_out(self) -> None:
        if self._result is None or self._result.done() or self._current is None:
            return
        rid = self._current.request_id
        secs = f"{self.cfg.timeout:.2f}"
        if self._output is not None:
            now = time.time()
            stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now))
            stamp += f".{int(now * 1000) % 1000:03d}Z"  # milliseconds, as Lambda writes it
            self._output.emit(f"{stamp} {rid} Task timed out after {secs} seconds\n")
        self._settle(
            Outcome(
                error_payload(
                    "Sandbox.Timedout",
                    f"RequestId: {rid} Error: Task timed out after {secs} seconds",
                ),
                "Sandbox.Timedout",
            )
        )
        self._kill_soon()

    def _kill_soon(self) -> None:
        """Kill from a synchronous callback; the task is kept so it is not collected."""
        if self._kill_task is None:
            self._kill_task = asyncio.ensure_future(self.kill())
        # Until the task runs, the environment must not look reusable to anyone.
        self._doomed = True

    async def kill(self) -> None:
        """Tear everything down. Idempotent; safe from any state."""
        if self.state is State.DEAD:
            return
        was_idle = self.state is State.IDLE
        self.state = State.DEAD
        self.init_done.set()
        for timer in (self._timer, self._init_timer):
            if timer is not None:
                timer.cancel()
        self._freezer.cancel()
        if self._waiter is not None and not self._waiter.done():
            self._waiter.cancel()
        try:
            await self._unpark_for_kill()
            if self._hub is not None:
                # Extensions get SHUTDOWN and their grace time before the sandbox goes.
                with contextlib.suppress(Exception):
                    await self._freezer.thaw()
                await self._hub.shutdown(self._shutdown_reason(was_idle))
                self._hub.close()
            if self._output is not None:
                # Drain before the backend closes the pipe (its fd number may be reused).
                self._output.stop()
            if self._sandbox is not None:
                info = await self._sandbox.kill()
                self._exit = self._exit or info
            if self._server is not None:
                await self._server.aclose()
        finally:
            if self._result is not None and not self._result.done():
                self._settle(self._exit_outcome_of(self._exit or ExitInfo(None, 9, False)))
            self._on_dead(self)

    # -- invoke -----------------------------------------------------------------------
    def begin(self, inv: Invocation) -> Deferred[InvokeResult]:
        """Hand ``inv`` to this (idle) environment; the future is its result.

        The invocation runs to its end whether or not anyone still waits: a client that
        goes away (which cancels what it awaited) neither cuts it short nor leaves the
        environment busy for ever, as on Lambda. Function failures are results (it never
        raises for them); a failed SnapStart restore is its exception.
        """
        self._transition(State.BUSY)
        self._was_cold = self.init_ms is None
        # Not Deferred[InvokeResult](): calling a subscripted generic costs ~5 µs.
        done: Deferred[InvokeResult] = Deferred()
        self._done = done
        if self._freezer.frozen:
            self._thawing = self._loop.create_task(self._thaw_and_hand(inv))
        else:
            self._hand(inv)
        return done

    def retract(self, inv: Invocation) -> bool:
        """Take back ``inv``, handed to this environment during its Init and not delivered
        yet (an environment freed elsewhere serves it first). This one goes on with Init
        and is idle at its end. False if the runtime has taken ``inv`` already."""
        if self.state is not State.BUSY or self._pending is not inv or self.init_ms is not None:
            return False
        self._pending = None
        self._current = None
        if self._result is not None:
            self._result.cancel()
            self._result = None
        self._done = Deferred()  # the retracted invocation's is never settled here
        self.state = State.INITIALIZING  # not a transition of the life cycle: an undo
        return True

    async def _thaw_and_hand(self, inv: Invocation) -> None:
        try:
            if self._park_op is not None or self._parked is not None:
                await self._unpark()
            await self._freezer.thaw()
        except TooManyRequests as exc:
            # No room in the server for its descriptors now: it stays parked, idle.
            if self.state is State.BUSY:
                self._transition(State.IDLE)
            self._done.fail(exc)
            return
        except Exception as exc:
            log.warning("environment %s: thaw failed: %s", self.id, exc)
            self._kill_soon()
            self._done.fail(NotDelivered(f"environment {self.id} could not take it: {exc}"))
            return
        if self.state is State.DEAD:  # killed while thawing: settle as any crash is
            self._current = inv
            self._result = self._loop.create_future()
            self._settle(self._exit_outcome_of(self._exit or ExitInfo(None, 9, False)))
            return
        self._hand(inv)

    def _hand(self, inv: Invocation) -> None:
        self._result = self._loop.create_future()
        self._current = inv
        out = self._output
        assert out is not None and self._sandbox is not None
        out.begin_invocation(inv.want_log_tail)
        self._delivered_at = 0.0
        waiter, self._waiter = self._waiter, None
        if waiter is not None and not waiter.done():
            waiter.resolve(self._deliver(inv))
        else:
            self._pending = inv

    def _settle(self, outcome: Outcome) -> None:
        """The invocation ended (answer, error, timeout, crash): account for it now (not a
        loop iteration later: each one is an epoll call) and settle what :meth:`begin`
        returned."""
        result = self._result
        assert result is not None and not result.done()
        result.set_result(outcome)
        end = time.monotonic()
        done = self._done
        inv = self._current
        self._current = None
        self._pending = None
        self._timeout_at = 0.0
        if outcome.error_type in RESTORE_FAILURES:
            status, message = RESTORE_FAILURES[outcome.error_type]
            done.fail(AwsError(message, code=outcome.error_type, status=status))
            return
        duration_ms = (end - self._delivered_at) * 1000 if self._delivered_at else 0.0
        init_ms = self.init_ms if self._was_cold else None
        self.last_used = end
        if self.state is State.BUSY and not self._doomed:
            self._transition(State.IDLE)
            self._freezer.arm(self._loop)
        res = InvokeResult(
            payload=outcome.payload,
            function_error="Unhandled" if outcome.error_type else None,
            error_type=outcome.error_type,
            executed_version=self.cfg.version,
            duration_ms=duration_ms,
            billed_ms=max(1, math.ceil(duration_ms)),
            init_ms=init_ms,
        )
        assert inv is not None
        if inv.want_log_tail:
            self._report(inv.request_id, res, outcome.error_type)
            if self._output is not None:
                res.log_tail = self._output.tail()
            done.resolve(res)
        else:
            # The response first (resolve writes it on the warm path), then END / REPORT:
            # still before this environment can START another invocation, which needs the
            # runtime's next request, read after this returns.
            done.resolve(res)
            self._report(inv.request_id, res, outcome.error_type)

    @property
    def frozen(self) -> bool:
        return self._freezer.frozen

    # -- parking (see .parking) ----------------------------------------------------------
    @property
    def parked(self) -> bool:
        return self._parked is not None

    @property
    def parkable(self) -> bool:
        """Idle, resident, and of a kind that can be parked."""
        return (
            self._parking is not None
            and self._parked is None
            and self._park_op is None
            and self.available
            and hasattr(self._sandbox, "park_fds")
        )

    def _frozen_idle(self) -> None:
        if self._parking is not None:
            self._parking.frozen(self)

    async def park(self) -> bool:
        """Freeze (if not yet) and park this idle environment; True if it is parked now.

        An invocation arriving meanwhile waits for the park to end, then unparks."""
        host = self._parking
        if host is None or not self.parkable:
            return False
        with self._park_operation():
            if not self._freezer.settled and not await self._freezer.freeze_now():
                return False
            server, output, sandbox = self._server, self._output, self._sandbox
            if self.state is not State.IDLE or server is None or output is None:
                return False
            parked = await park(server, output, sandbox, host.vault, self._vault_lost)  # type: ignore[arg-type]
            if parked is None:
                return False
            self._parked = parked
            host.moved(parked.ticket.nfds)
            return True

    @contextlib.contextmanager
    def _park_operation(self) -> Iterator[None]:
        """A park or unpark under way: :attr:`_park_op` is set until it ends, for whoever
        must wait for it (an invocation arriving during a park, a kill)."""
        op: asyncio.Future[None] = self._loop.create_future()
        self._park_op = op
        try:
            yield
        finally:
            self._park_op = None
            op.set_result(None)

    async def _unpark(self) -> None:
        """Before a thaw: wait for a park under way, then fetch the descriptors back."""
        if self._park_op is not None:
            await asyncio.shield(self._park_op)
        parked, host = self._parked, self._parking
        if parked is None or host is None:
            return
        await host.room(parked.ticket.nfds)  # TooManyRequests: still parked
        if self._parked is not parked:  # lost or killed meanwhile
            if self.state is State.DEAD:
                return
            raise RuntimeError("its parked descriptors were lost")
        self._parked = None
        host.moved(-parked.ticket.nfds)
        with self._park_operation():
            # The cgroup thaw overlaps the vault's round trip (~0.17 and ~0.35 ms p50
            # measured): a thawed runtime just goes on waiting in its GET /next, and what it
            # writes waits in its pipe until the server reads it again.
            thawing = self._loop.create_task(self._freezer.thaw())
            try:
                assert self._server is not None and self._output is not None
                await unpark(parked, self._server, self._output, self._sandbox, host.vault)  # type: ignore[arg-type]
            finally:
                await thawing

    async def _unpark_for_kill(self) -> None:
        """At kill: let a park or unpark under way end; a parked environment's descriptors
        are closed in the vault (nothing to read: it was frozen all along)."""
        if self._park_op is not None:
            with contextlib.suppress(Exception):
                await asyncio.shield(self._park_op)
        parked, self._parked = self._parked, None
        if parked is not None and self._parking is not None:
            self._parking.vault.drop(parked.ticket)
            self._parking.moved(-parked.ticket.nfds)

    def _vault_lost(self) -> None:
        """The vault process holding this environment's descriptors died: they are gone
        (its runtime's connection and listener with them), so the environment goes."""
        parked, self._parked = self._parked, None
        if parked is not None and self._parking is not None:
            self._parking.moved(-parked.ticket.nfds)
        log.warning("environment %s: its parked descriptors were lost; killing it", self.id)
        self._kill_soon()

    def _report(self, request_id: str, res: InvokeResult, error_type: str | None) -> None:
        """Write END and REPORT (Max Memory Used is the environment's peak, as on Lambda)."""
        out = self._output
        if out is None:
            return
        out.drain()
        if self._sandbox is not None:
            with contextlib.suppress(Exception):
                peak = self._sandbox.peak_memory()
                res.max_memory_mb = math.ceil(peak / (1024 * 1024))
        platform = self._platform
        end = platform.end(request_id, error_type)
        report = platform.report(
            Report(
                request_id,
                res.duration_ms,
                res.billed_ms,
                self.cfg.memory_size,
                res.max_memory_mb,
                res.init_ms,
                self.restore,
                error_type,
            )
        )
        if end is not None and report is not None:
            out.emit(end, report)

    def _deliver(self, inv: Invocation) -> Response:
        if self._output is not None:
            if self._first_delivery:
                # Whatever init printed belongs before START, as in Lambda's streams. Later
                # deliveries need no read: the last REPORT drained the pipe, and a line a
                # background thread prints in between is read when the loop sees it.
                self._first_delivery = False
                self._output.drain()
            start = self._platform.start(inv.request_id, self.cfg.version)
            if start is not None:
                self._output.emit(start)
        now = time.time()
        self._delivered_at = time.monotonic()
        if self._invoke_deadline is not None:
            # Init overran and already used part of this invocation's time.
            deadline_ms = int(self._invoke_deadline * 1000)
            self._invoke_deadline = None
        else:
            deadline_ms = int((now + self.cfg.timeout) * 1000)
            self._arm_timeout(self.cfg.timeout)
        headers = [
            ("Content-Type", "application/json"),
            ("Lambda-Runtime-Aws-Request-Id", inv.request_id),
            ("Lambda-Runtime-Deadline-Ms", str(deadline_ms)),
            ("Lambda-Runtime-Invoked-Function-Arn", inv.invoked_arn),
            ("Lambda-Runtime-Trace-Id", inv.trace_id),
        ]
        if inv.client_context:
            headers.append(("Lambda-Runtime-Client-Context", inv.client_context))
        if inv.cognito_identity:
            headers.append(("Lambda-Runtime-Cognito-Identity", inv.cognito_identity))
        if self._hub is not None:
            self._hub.dispatch_invoke(inv.request_id, deadline_ms, inv.invoked_arn, inv.trace_id)
        return Response(200, headers, inv.payload)

    # -- RuntimeApiTarget ----------------------------------------------------------------
    async def next_invocation(self) -> Response:
        if self._hub is not None:
            # Init, and each invoke, end only when every extension is back in event/next.
            await self._hub.wait_ready()
        answer = self.next_invocation_nowait()
        return answer if isinstance(answer, Response) else await answer.future()

    def _init_done(self) -> None:
        """The runtime's first ``invocation/next``: Init is over."""
        if self.init_ms is None:
            self.init_ms = (time.monotonic() - self._started_at) * 1000
            if self._init_timer is not None:
                self._init_timer.cancel()
            if self.state is State.INITIALIZING:
                self._transition(State.IDLE)  # initialized ahead (provisioned, adopted)
                self._freezer.arm(self._loop)
            if self.restore:
                self._restore_report(None, self.init_ms)
            self.init_done.set()

    def _restore_report(self, error_type: str | None, ms: float | None = None) -> None:
        """``RESTORE_REPORT`` once the restore is over (after its hooks' output); its
        duration is the one REPORT shows."""
        if ms is None:
            ms = (time.monotonic() - self._started_at) * 1000
        line = self._platform.restore_report(ms, error_type)
        if line is not None and self._output is not None:
            self._output.drain()
            self._output.emit(line)

    def next_invocation_nowait(self) -> Response | Deferred[Response]:
        """The waiting invocation, or the next one deferred (the Runtime API's hot path: no
        task, the HTTP server writes the event as the invoke hands it over)."""
        if self.init_ms is None:
            self._init_done()
        if self._pending is not None:
            inv, self._pending = self._pending, None
            return self._deliver(inv)
        waiter: Deferred[Response] = Deferred()
        self._waiter = waiter
        return waiter

    def _matches(self, request_id: str) -> bool:
        return (
            self._current is not None
            and self._current.request_id == request_id
            and self._delivered_at != 0.0
            and self._result is not None
            and not self._result.done()
        )

    def post_response(self, request_id: str, body: bytes) -> Response | None:
        if not self._matches(request_id):
            return invalid_request_id(request_id)
        assert self._result is not None
        self._settle(Outcome(body))
        return None

    def post_error(self, request_id: str, error_type: str, body: bytes) -> Response | None:
        if not self._matches(request_id):
            return invalid_request_id(request_id)
        assert self._result is not None
        self._settle(Outcome(runtime_error(error_type, body), error_type or "Unhandled"))
        return None

    def _shutdown_reason(self, was_idle: bool) -> str:
        """SHUTDOWN's ``shutdownReason``: timeout (the invoke timed out), spindown, failure."""
        res = self._result
        if res is not None and res.done() and res.result().error_type == "Sandbox.Timedout":
            return "timeout"
        return "spindown" if was_idle else "failure"

    def _extension_failed(self, error_type: str, message: str) -> None:
        """An extension failed (init/error, exit/error, a crash, an overrun): reset."""
        if self.init_ms is None:
            self.post_init_error(error_type, message.encode())
        else:
            self._init_error = Outcome(b"", error_type, platform_message=message)
            if self._output is not None:
                self._output.emit(f"[ERROR] {error_type}: {message}\n")
        self._kill_soon()

    def post_restore_error(self, error_type: str, body: bytes) -> None:
        """An after-restore hook failed: the invocation fails with SnapStartException."""
        self._restore_report(error_type or "Runtime.Unknown")
        self._init_error = Outcome(body, "SnapStartException")
        if self._result is not None and not self._result.done():
            self._settle(self._init_error)
        self._kill_soon()

    def post_init_error(self, error_type: str, body: bytes) -> None:
        payload = runtime_error(error_type, body)
        self._init_error = Outcome(payload, error_type)
        if payload is not body:
            self._init_error.platform_message = body.decode("utf-8", "replace")
        if self._output is not None:
            try:
                doc = json.loads(payload)
                msg = f"[ERROR] {doc.get('errorType', error_type)}: {doc.get('errorMessage', '')}"
            except ValueError:
                msg = f"[ERROR] {error_type}"
            self._output.emit(msg + "\n")
            self._output.emit(
                f"INIT_REPORT Init Duration: {(time.monotonic() - self._started_at) * 1000:.2f}"
                f" ms\tPhase: init\tStatus: error\tError Type: {error_type}\n"
            )
