"""SnapStart for the worker: one initialized template per function version.

A function version with ``SnapStart.ApplyOn = PublishedVersions`` (and ``$LATEST`` too
when the server runs with ``HEARTH_SNAPSTART_LATEST=1``) gets a *template* on its first
cold start, or as soon as it is published: a sandbox that runs Init once
(``AWS_LAMBDA_INITIALIZATION_TYPE=snap-start``) and the before-snapshot hooks, then
forks every new environment of that version (:mod:`hearth.sandbox.template`). Those
environments run the after-restore hooks instead of Init, and their REPORT shows
Restore Duration instead of Init Duration, as on Lambda.

Templates are keyed like the worker's pools (account, function, version, revision): a
template is never shared across functions, versions or accounts. A template whose Init
fails is dropped and the version is served by ordinary environments, whose own Init
reports the error exactly as without SnapStart; the next try is a minute later. A
template lives as long as its version is current (as Lambda keeps a snapshot while the
version exists) and its credentials allow (past ``max_age``, :mod:`.lifetimes`, a new
template replaces it: its forks carry its environment variables, credentials included);
once retired (function updated or deleted, or too old), it is killed as soon as no
environment forked from it is alive (an environment cannot outlive its template). Under
memory pressure, templates without live environments are evicted after idle
environments, least recently used first.

Template output (Init's prints and logs, then ``INIT_REPORT``) goes to a log stream of
its own in the function's log group, as Lambda writes a SnapStart version's Init.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from hearth.errors import SandboxError
from hearth.runtimes.registry import runtime_version, runtime_version_arn
from hearth.sandbox.base import Mount, SandboxBackend, SandboxSpec
from hearth.sandbox.process import ProcessBackend
from hearth.sandbox.template import ForkedSandbox, SandboxTemplate
from hearth.types import FunctionConfig
from hearth.worker.environment import log_stream_name
from hearth.worker.lifetimes import Lifetimes
from hearth.worker.output import LogSink, OutputCapture
from hearth.worker.platform_log import PlatformLog

log = logging.getLogger(__name__)

TemplateKey = tuple[str, str, str, str]
RETRY_AFTER = 60.0
"""Seconds before a version whose template failed gets another template."""
SPARES = 2
"""Environments each template keeps forked ahead (:meth:`SandboxTemplate.keep_spares`)."""


@dataclass(frozen=True, slots=True)
class TemplateLaunch:
    """What a template runs: the same command, environment and mounts as an environment."""

    code_dir: str
    argv: tuple[str, ...]
    env: Mapping[str, str]
    mounts: tuple[Mount, ...]
    network: str


class TemplateBackend:
    """The :class:`SandboxBackend` through which an environment of a SnapStart version
    starts: a fork of the version's template instead of a new runtime."""

    name = "snapstart"

    def __init__(self, template: SandboxTemplate, born: float = 0.0) -> None:
        self.template = template
        self.born = born
        """When the template's environment (its credentials) was made: its forks' age."""

    async def start(self, spec: SandboxSpec) -> ForkedSandbox:
        return await self.template.start_environment(spec)

    async def aclose(self) -> None:
        return None


class _Entry:
    def __init__(
        self, task: asyncio.Task[SandboxTemplate | None], memory_mb: int, disk_mb: int, born: float
    ) -> None:
        self.task = task
        self.memory_mb = memory_mb
        self.disk_mb = disk_mb
        self.born = born
        self.retired = False
        self.failed_at = 0.0

    @property
    def template(self) -> SandboxTemplate | None:
        """The running template (None while starting, after a failure, or if cancelled)."""
        task = self.task
        if not task.done() or task.cancelled() or task.exception() is not None:
            return None
        return task.result()


class Templates:
    def __init__(
        self,
        backend: SandboxBackend,
        sink: LogSink,
        *,
        init_timeout: float,
        latest: bool = False,
        reserve: Callable[[int, int], Awaitable[None]] | None = None,
        release: Callable[[int, int], None] | None = None,
        spares: int = SPARES,
        lifetimes: Lifetimes[Any] | None = None,
    ) -> None:
        self._spares = spares
        self._lifetimes: Lifetimes[Any] = lifetimes if lifetimes is not None else Lifetimes()
        self._backend = backend if isinstance(backend, ProcessBackend) else None
        self._sink = sink
        self._init_timeout = init_timeout
        self._latest = latest
        self._reserve = reserve
        self._release = release
        self._entries: dict[TemplateKey, _Entry] = {}
        self._aged: list[tuple[TemplateKey, _Entry]] = []
        """Templates replaced for their age, killed once no fork of theirs is alive."""
        self._watchers: set[asyncio.Task[None]] = set()
        self._outputs: dict[SandboxTemplate, OutputCapture] = {}

    def applies(self, cfg: FunctionConfig) -> bool:
        """Whether environments of this snapshot come from a template."""
        if self._backend is None or cfg.snap_start != "PublishedVersions":
            return False
        return cfg.snap_start_on or self._latest

    async def backend_for(
        self, key: TemplateKey, cfg: FunctionConfig, launch: TemplateLaunch
    ) -> TemplateBackend | None:
        """The template of this snapshot (started now if there is none), or None: start
        an ordinary environment (no template can be had, or its Init failed)."""
        entry = self._entries.get(key)
        if entry is not None and entry.task.done() and self._lifetimes.too_old(entry.born):
            self._age_out(key, entry)
            entry = None
        if entry is not None and entry.task.done():
            template = entry.template
            if template is None and time.monotonic() - entry.failed_at < RETRY_AFTER:
                return None
            if template is not None and not template.alive:  # it died: its forks with it
                del self._entries[key]
                await self._kill(template, key, entry)
                entry = None
            elif template is None:
                entry = None
        if entry is None:
            task = asyncio.get_running_loop().create_task(self._create(cfg, launch))
            entry = _Entry(task, cfg.memory_size, cfg.ephemeral_storage, self._lifetimes.clock())
            self._entries[key] = entry
            task.add_done_callback(lambda _: self._settled(entry))
        try:
            template = await asyncio.shield(entry.task)
        except Exception as exc:
            log.warning("SnapStart template of %s:%s failed: %s", cfg.name, cfg.version, exc)
            return None
        return TemplateBackend(template, entry.born) if template is not None else None

    @staticmethod
    def _settled(entry: _Entry) -> None:
        if entry.template is None:
            entry.failed_at = time.monotonic()

    async def _create(self, cfg: FunctionConfig, launch: TemplateLaunch) -> SandboxTemplate | None:
        assert self._backend is not None
        if self._reserve is not None:
            try:
                await self._reserve(cfg.memory_size, cfg.ephemeral_storage)
            except Exception as exc:  # no capacity: ordinary environments throttle as usual
                log.info("no capacity for a SnapStart template of %s: %s", cfg.name, exc)
                return None
        env = dict(launch.env)
        env["AWS_LAMBDA_INITIALIZATION_TYPE"] = "snap-start"
        # Lambda: these two are not available in SnapStart functions.
        env.pop("AWS_LAMBDA_LOG_GROUP_NAME", None)
        env.pop("AWS_LAMBDA_LOG_STREAM_NAME", None)
        spec = SandboxSpec(
            env_id=f"{cfg.account_id}-tpl-{time.monotonic_ns() % 10**12:012d}",
            code_dir=launch.code_dir,
            argv=launch.argv,
            env=env,
            memory_mb=cfg.memory_size,
            ephemeral_mb=cfg.ephemeral_storage,
            mounts=launch.mounts,
            network=launch.network,  # type: ignore[arg-type]
        )
        started = time.monotonic()
        template: SandboxTemplate | None = None
        output: OutputCapture | None = None
        try:
            template = await SandboxTemplate.start(self._backend, spec)
            stream = log_stream_name(cfg.version, time.time())
            output = OutputCapture(
                template.sandbox.output_fd, self._sink, cfg.account_id, cfg.log_group, stream
            )
            output.start()
            init_start = PlatformLog(
                cfg.logging_config.get("LogFormat", "Text"),
                cfg.logging_config.get("SystemLogLevel", "INFO"),
            ).init_start(
                runtime_version(cfg.runtime),
                runtime_version_arn(cfg.region, cfg.runtime),
                initializationType="snap-start",
                phase="init",
                functionName=cfg.name,
                functionVersion=cfg.version,
            )
            if init_start is not None:
                output.emit(init_start)
            error = await template.ready(max(self._init_timeout, 130.0, float(cfg.timeout)))
            init_ms = (time.monotonic() - started) * 1000
            output.drain()
            if error is not None:
                output.emit(
                    f"INIT_REPORT Init Duration: {init_ms:.2f} ms\tPhase: init\tStatus: error"
                    f"\tError Type: {error.get('errorType', 'Runtime.Unknown')}\n"
                )
                raise SandboxError(f"Init failed: {error.get('errorType')}")
            output.emit(f"INIT_REPORT Init Duration: {init_ms:.2f} ms\n")
            output.drain()
            if self._spares > 0:
                template.keep_spares(
                    SandboxSpec(
                        env_id=f"{cfg.account_id}-sp{time.monotonic_ns() % 10**9:09d}",
                        code_dir=launch.code_dir,
                        argv=launch.argv,
                        env={},
                        memory_mb=cfg.memory_size,
                        ephemeral_mb=cfg.ephemeral_storage,
                        network=launch.network,  # type: ignore[arg-type]
                    ),
                    self._spares,
                )
            template.freeze_soon()
        except BaseException as exc:
            if output is not None:
                output.stop()
            if template is not None:
                await template.kill()
            if self._release is not None:
                self._release(cfg.memory_size, cfg.ephemeral_storage)
            if not isinstance(exc, (SandboxError, OSError)):
                raise
            log.warning("SnapStart template of %s:%s not available: %s", cfg.name, cfg.version, exc)
            return None
        log.info("SnapStart template of %s:%s ready in %.1f ms", cfg.name, cfg.version, init_ms)
        self._watch(template, output)
        return template

    def _watch(self, template: SandboxTemplate, output: OutputCapture) -> None:
        """Stop capturing the template's output once it has exited (or is killed)."""
        self._outputs[template] = output

        async def watch() -> None:
            with contextlib.suppress(Exception):
                await template.sandbox.wait()
            output.stop()

        task = asyncio.get_running_loop().create_task(watch())
        self._watchers.add(task)
        task.add_done_callback(self._watchers.discard)

    # -- housekeeping -----------------------------------------------------------------
    async def retire(self, matches: Callable[[TemplateKey], bool]) -> None:
        """Templates of snapshots that are no longer current go once unused."""
        for key, entry in list(self._entries.items()):
            if matches(key):
                entry.retired = True
        await self.collect()

    def _age_out(self, key: TemplateKey, entry: _Entry) -> None:
        del self._entries[key]
        entry.retired = True
        self._aged.append((key, entry))

    async def collect(self) -> None:
        """Kill templates that are retired, too old or dead, once no environment forked
        from them is alive."""
        for key, entry in list(self._entries.items()):
            if entry.task.done() and self._lifetimes.too_old(entry.born):
                self._age_out(key, entry)
        for key, entry in list(self._aged):
            template = entry.template
            if template is None or not template.in_use:
                self._aged.remove((key, entry))
                if template is not None:
                    await self._kill(template, key, entry)
        for key, entry in list(self._entries.items()):
            if not entry.task.done():
                continue
            template = entry.template
            if template is None:
                if entry.retired:
                    del self._entries[key]
                continue
            if template.in_use or (template.alive and not entry.retired):
                continue
            del self._entries[key]
            await self._kill(template, key, entry)

    async def evict_one(self) -> bool:
        """Under memory pressure: kill the least recently used template that has no live
        environment (its version's next cold start runs Init again). False if none."""
        best: tuple[float, TemplateKey, _Entry, SandboxTemplate] | None = None
        for key, entry in self._entries.items():
            template = entry.template
            if (
                template is not None
                and not template.in_use
                and (best is None or template.last_used < best[0])
            ):
                best = (template.last_used, key, entry, template)
        if best is None:
            return False
        _, key, entry, template = best
        del self._entries[key]
        await self._kill(template, key, entry)
        return True

    async def _kill(self, template: SandboxTemplate, key: TemplateKey, entry: _Entry) -> None:
        output = self._outputs.pop(template, None)
        if output is not None:  # before the pipe is closed (its fd number may be reused)
            output.stop()
        with contextlib.suppress(Exception):
            await template.kill()
        if self._release is not None:
            self._release(entry.memory_mb, entry.disk_mb)
        log.info("SnapStart template of %s:%s removed", key[1], key[2])

    async def aclose(self) -> None:
        entries, self._entries = self._entries, {}
        aged, self._aged = self._aged, []
        for key, entry in [*entries.items(), *aged]:
            if not entry.task.done():
                entry.task.cancel()
                with contextlib.suppress(BaseException):
                    await entry.task
                continue
            template = entry.template
            if template is not None:
                await self._kill(template, key, entry)
