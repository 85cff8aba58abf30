"""Which runtimes this host offers, and how a sandbox starts each one.

Server side only. A Python runtime ``python3.X`` is offered when a real CPython 3.X
interpreter is found on the host: on ``PATH`` (pyenv shims are resolved past, since a
shim costs ~100 ms per start and may refuse versions that are not selected), in pyenv's
``versions/`` folder, or in ``/usr/bin`` / ``/usr/local/bin``. Its installation prefix is
mounted read-only at ``/var/lang`` inside the sandbox (where Lambda keeps its
interpreters) and Hearth's bootstrap at ``/var/runtime``.

Node runtimes (``nodejsNN.x``) and the OS-only custom runtimes (``provided.al2023``,
``provided.al2``) are described in :mod:`hearth.runtimes.node` and
:mod:`hearth.runtimes.provided`; this module gathers them into one registry.
"""

from __future__ import annotations

import glob
import hashlib
import os
import re
import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from hearth.sandbox.base import Mount

PYTHON_VERSIONS = ("3.9", "3.10", "3.11", "3.12", "3.13")
BOOTSTRAP_DIR = str(Path(__file__).resolve().parent / "python")

#: Environment variables Lambda reserves; a function may not set them.
RESERVED_ENV = frozenset(
    {
        "_HANDLER",
        "_X_AMZN_TRACE_ID",
        "AWS_DEFAULT_REGION",
        "AWS_REGION",
        "AWS_EXECUTION_ENV",
        "AWS_LAMBDA_FUNCTION_NAME",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
        "AWS_LAMBDA_FUNCTION_VERSION",
        "AWS_LAMBDA_INITIALIZATION_TYPE",
        "AWS_LAMBDA_LOG_GROUP_NAME",
        "AWS_LAMBDA_LOG_STREAM_NAME",
        "AWS_ACCESS_KEY",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_LAMBDA_RUNTIME_API",
        "LAMBDA_TASK_ROOT",
        "LAMBDA_RUNTIME_DIR",
    }
)


@dataclass(frozen=True, slots=True)
class RuntimeLaunch:
    """How to start one runtime inside a sandbox."""

    argv: tuple[str, ...]
    mounts: tuple[Mount, ...]
    env: Mapping[str, str]


@dataclass(frozen=True, slots=True)
class PythonRuntime:
    name: str
    """``python3.X``."""
    interpreter: str
    """Host path of the real interpreter binary."""
    prefix: str
    """Host installation prefix (mounted at /var/lang)."""

    def launch(self) -> RuntimeLaunch:
        minor = self.name.removeprefix("python")
        return RuntimeLaunch(
            argv=(f"/var/lang/bin/python{minor}", "-s", "-B", "/var/runtime/bootstrap.py"),
            mounts=(Mount(self.prefix, "/var/lang"), Mount(BOOTSTRAP_DIR, "/var/runtime")),
            env={
                "AWS_EXECUTION_ENV": f"AWS_Lambda_{self.name}",
                "PATH": "/var/lang/bin:/usr/local/bin:/usr/bin/:/bin:/opt/bin",
                "LD_LIBRARY_PATH": (
                    "/var/lang/lib:/lib64:/usr/lib64:/var/runtime:/var/runtime/lib"
                    ":/var/task:/var/task/lib:/opt/lib"
                ),
                "PYTHONPATH": "/var/runtime",
                "LANG": "en_US.UTF-8",
                "TZ": ":UTC",
            },
        )


def _is_elf(path: str) -> bool:
    try:
        with open(path, "rb") as f:
            return f.read(4) == b"\x7fELF"
    except OSError:
        return False


def _candidates(version: str, environ: Mapping[str, str]) -> list[str]:
    exe = f"python{version}"
    found: list[str] = []
    on_path = shutil.which(exe, path=environ.get("PATH", os.defpath))
    if on_path:
        found.append(on_path)
    pyenv_root = environ.get("PYENV_ROOT") or os.path.expanduser("~/.pyenv")
    pattern = os.path.join(pyenv_root, "versions", f"{version}.*", "bin", exe)
    found.extend(sorted(glob.glob(pattern), key=_version_key, reverse=True))
    found.extend(f"{d}/{exe}" for d in ("/usr/local/bin", "/usr/bin"))
    return found


def _version_key(path: str) -> tuple[int, ...]:
    m = re.search(r"/versions/(\d+)\.(\d+)\.(\d+)", path)
    return tuple(int(x) for x in m.groups()) if m else (0,)


def _probe(path: str, version: str) -> str | None:
    """Return the interpreter's sys.prefix if ``path`` really is CPython ``version``."""
    real = os.path.realpath(path)
    if not _is_elf(real):
        return None
    try:
        out = subprocess.run(
            [
                real,
                "-I",
                "-S",
                "-c",
                "import sys;print(sys.prefix);print('%d.%d'%sys.version_info[:2])",
            ],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.split("\n")
    except (OSError, subprocess.SubprocessError):
        return None
    if len(out) < 2 or out[1] != version:
        return None
    return out[0]


def discover_python(environ: Mapping[str, str] | None = None) -> dict[str, PythonRuntime]:
    """Find one interpreter per supported Python version."""
    env = os.environ if environ is None else environ
    runtimes: dict[str, PythonRuntime] = {}
    for version in PYTHON_VERSIONS:
        for cand in _candidates(version, env):
            prefix = _probe(cand, version)
            if prefix is None:
                continue
            real = os.path.realpath(cand)
            if not real.startswith(prefix.rstrip("/") + "/"):
                continue  # e.g. a venv: its prefix does not hold the binary
            runtimes[f"python{version}"] = PythonRuntime(f"python{version}", real, prefix)
            break
    return runtimes


class Runtime(Protocol):
    """A runtime this host offers: a name and how a sandbox starts it."""

    @property
    def name(self) -> str: ...

    def launch(self) -> RuntimeLaunch: ...


class RuntimeRegistry:
    """The runtimes this server offers, found once at start."""

    def __init__(
        self, python: Mapping[str, PythonRuntime], others: Mapping[str, Runtime] | None = None
    ) -> None:
        self._python = dict(python)
        self._others: dict[str, Runtime] = dict(others or {})

    @classmethod
    def discover(cls, environ: Mapping[str, str] | None = None) -> RuntimeRegistry:
        from hearth.runtimes.node import discover_node
        from hearth.runtimes.provided import provided_runtimes

        others: dict[str, Runtime] = {}
        others.update(discover_node(environ))
        others.update(provided_runtimes())
        return cls(discover_python(environ), others)

    @property
    def names(self) -> list[str]:
        python = sorted(self._python, key=lambda n: tuple(int(x) for x in n[6:].split(".")))
        return python + sorted(self._others)

    def get(self, name: str) -> Runtime | None:
        return self._python.get(name) or self._others.get(name)


def runtime_version(runtime: str) -> str:
    """The runtime version Lambda names in ``INIT_START`` (``python:3.13.v14``,
    ``nodejs:20.v13``): family, release, then Hearth's runtime build (``v1``)."""
    m = re.fullmatch(r"([a-z]+)\.?(.*)", runtime)
    family, release = (m.group(1), m.group(2)) if m else (runtime, "")
    release = release.removesuffix(".x")
    return f"{family}:{release}.v1" if release else f"{family}:v1"


def runtime_version_arn(region: str, runtime: str) -> str:
    """The runtime version's ARN (``RuntimeVersionConfig`` and ``INIT_START``): AWS's
    form, ``arn:aws:lambda:<region>::runtime:<64 hex digits>``, the digits a digest of
    the runtime version, so it is stable and the same everywhere it is shown."""
    digest = hashlib.sha256(f"hearth:{runtime_version(runtime)}".encode()).hexdigest()
    return f"arn:aws:lambda:{region}::runtime:{digest}"
