"""The sandbox contract: what the worker asks of any isolation backend.

A backend starts a *sandbox* from a :class:`SandboxSpec`: one isolated process tree that
runs ``spec.argv`` with the code at ``/var/task`` (read-only), a private ``/tmp`` of
``spec.ephemeral_mb``, a memory limit of ``spec.memory_mb``, and a network namespace of
its own in which ``127.0.0.1:9001`` is a listening socket that the *worker* serves (the
Lambda Runtime API). The worker never connects into the sandbox; the sandbox reaches
nothing of the host but that socket.

After :meth:`Sandbox.kill` every method is a no-op or returns the last known value; a
sandbox is never restarted.
"""

from __future__ import annotations

import socket
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal, Protocol

NetworkMode = Literal["none", "egress"]


@dataclass(frozen=True, slots=True)
class Mount:
    """A read-only bind mount of a host path at a path inside the sandbox."""

    host_path: str
    sandbox_path: str


@dataclass(frozen=True, slots=True)
class SandboxSpec:
    env_id: str
    """Unique id of the execution environment; ``[a-z0-9-]``, at most 64 chars."""
    code_dir: str
    """Host directory mounted read-only at ``/var/task``."""
    argv: tuple[str, ...]
    """Command run inside, with sandbox paths (``argv[0]`` absolute)."""
    env: Mapping[str, str]
    """The complete environment of the command (nothing is inherited from the host)."""
    memory_mb: int
    ephemeral_mb: int = 512
    mounts: tuple[Mount, ...] = ()
    """Extra read-only mounts: the runtime (``/var/lang``, ``/var/runtime``), layers (``/opt``)."""
    network: NetworkMode = "none"
    pids_max: int = 1024
    nofile: int = 1024
    cwd: str = "/var/task"
    hostname: str = "localhost"
    inherit_fds: tuple[int, ...] = ()
    """Host fds the command inherits under the same numbers (the runtime's side of a
    private channel to the worker, e.g. a SnapStart template's control socket)."""
    template: bool = False
    """The sandbox runs a SnapStart template (:mod:`hearth.sandbox.template`): its seccomp
    filter lets it create the user-namespaced environments it forks."""


@dataclass(frozen=True, slots=True)
class ExitInfo:
    """How the sandbox's main process ended."""

    returncode: int | None
    """Exit code, or None when killed by a signal."""
    signal: int | None
    """The signal that killed it, if any."""
    oom_killed: bool
    """The kernel's OOM killer fired in the sandbox's memory cgroup."""


@dataclass(frozen=True, slots=True)
class Stats:
    max_memory_bytes: int
    """Peak memory charged to the sandbox since the last :meth:`Sandbox.reset_peak`."""
    cpu_ns: int
    """CPU time used by all of the sandbox's processes since start."""


class Sandbox(Protocol):
    @property
    def id(self) -> str: ...

    @property
    def runtime_api_socket(self) -> socket.socket:
        """A listening TCP socket bound to 127.0.0.1:9001 inside the sandbox's netns."""
        ...

    @property
    def output_fd(self) -> int:
        """Read end of the pipe carrying the sandbox's stdout and stderr (non-blocking)."""
        ...

    @property
    def log_fd(self) -> int:
        """Read end of the sandbox's framed log channel (non-blocking; -1: it has none):
        the pipe its runtime finds in ``_LAMBDA_TELEMETRY_LOG_FD``, one frame per log
        record (:mod:`hearth.observe.frames`)."""
        ...

    async def wait(self) -> ExitInfo:
        """Wait until the sandbox's main process has exited."""
        ...

    async def freeze(self) -> None: ...

    async def thaw(self) -> None: ...

    def stats(self) -> Stats: ...

    def peak_memory(self) -> int:
        """:attr:`Stats.max_memory_bytes` alone (REPORT's figure: one statistics read)."""
        ...

    def reset_peak(self) -> None:
        """Start a new peak-memory window (one per invocation)."""
        ...

    async def kill(self) -> ExitInfo:
        """Kill every process of the sandbox and release everything it held.

        Idempotent: mounts, loop devices, cgroups and scratch files are gone when it returns.
        """
        ...


class SandboxBackend(Protocol):
    name: str

    async def start(self, spec: SandboxSpec) -> Sandbox:
        """Start a sandbox; raise :class:`hearth.errors.SandboxError` if it cannot be."""
        ...

    async def aclose(self) -> None:
        """Kill every sandbox this backend started and remove its host state."""
        ...


@dataclass(slots=True)
class BackendConfig:
    """Settings a backend takes from the server configuration."""

    state_dir: str
    """Host directory for the backend's own files (scratch images, sockets)."""
    cgroup_root_name: str = "hearth"
    """Name of the cgroup subtree under which every sandbox's cgroup is made."""
    sandbox_uid_base: int = 200_000
    """Sandboxes run as host uids ``base .. base + uid_count - 1`` (never root)."""
    uid_count: int = 60_000
    extra: dict[str, str] = field(default_factory=dict)
