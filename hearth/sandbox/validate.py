"""Checks on a :class:`SandboxSpec` before any resource is acquired.

Everything in a spec ends up in paths, cgroup names, argv of privileged helpers or mount
targets, so it is checked strictly here rather than trusted downstream.
"""

from __future__ import annotations

import os
import re

from hearth.errors import SandboxError
from hearth.sandbox.base import SandboxSpec

ENV_ID = re.compile(r"[a-z0-9-]{1,64}")
HOSTNAME = re.compile(r"[A-Za-z0-9.-]{1,64}")
#: Sandbox paths that the launcher builds itself and extra mounts may not cover.
RESERVED = ("/", "/proc", "/dev", "/tmp", "/var/task", "/usr", "/etc", "/bin", "/sbin", "/lib")


def _sandbox_path(path: str) -> bool:
    return path.startswith("/") and os.path.normpath(path) == path and "\0" not in path


def validate_spec(spec: SandboxSpec) -> None:
    """Raise :class:`SandboxError` naming the first problem of ``spec``."""
    if not ENV_ID.fullmatch(spec.env_id):
        raise SandboxError(f"invalid env_id {spec.env_id!r}: [a-z0-9-]{{1,64}} expected")
    if not spec.argv or not spec.argv[0].startswith("/"):
        raise SandboxError("argv must be non-empty with an absolute argv[0]")
    if any("\0" in a for a in spec.argv) or any(
        "\0" in k or "=" in k or not k or "\0" in v for k, v in spec.env.items()
    ):
        raise SandboxError("argv and env may not contain NUL; env names no '='")
    if not os.path.isdir(spec.code_dir):
        raise SandboxError(f"code_dir {spec.code_dir!r} is not a directory")
    if spec.memory_mb < 16 or spec.ephemeral_mb < 1 or spec.pids_max < 1 or spec.nofile < 16:
        raise SandboxError("memory_mb >= 16, ephemeral_mb >= 1, pids_max >= 1, nofile >= 16")
    if not _sandbox_path(spec.cwd):
        raise SandboxError(f"cwd {spec.cwd!r} must be an absolute normalized path")
    if not HOSTNAME.fullmatch(spec.hostname):
        raise SandboxError(f"invalid hostname {spec.hostname!r}")
    if spec.network not in ("none", "egress"):
        raise SandboxError(f"unknown network mode {spec.network!r}")
    for fd in spec.inherit_fds:
        if fd < 3:
            raise SandboxError(f"inherit_fds: {fd} is a standard stream")
        try:
            os.fstat(fd)
        except OSError:
            raise SandboxError(f"inherit_fds: {fd} is not an open file descriptor") from None
    for m in spec.mounts:
        if not _sandbox_path(m.sandbox_path):
            raise SandboxError(f"mount target {m.sandbox_path!r} must be absolute, normalized")
        if any(m.sandbox_path == r or m.sandbox_path.startswith(r + "/") for r in RESERVED[1:]):
            raise SandboxError(f"mount target {m.sandbox_path!r} is reserved")
        if m.sandbox_path == "/" or not os.path.exists(m.host_path):
            raise SandboxError(f"mount source {m.host_path!r} does not exist")
