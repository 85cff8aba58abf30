"""OS-only custom runtimes: ``provided.al2023`` and ``provided.al2``.

The function brings its own runtime: an executable ``bootstrap`` at the root of the
package (``/var/task/bootstrap``) or in a layer (``/opt/bootstrap``), tried in that
order as on Lambda. Hearth starts it through its launcher (``launch.sh``, a bash script
mounted at ``/var/hearth``), which also starts external extensions and, when no valid
bootstrap exists, reports ``Runtime.InvalidEntrypoint`` through ``init/error`` with the
message Lambda gives (``Couldn't find valid bootstrap(s): [...]`` or ``fork/exec ...:
permission denied``). Any language the host has works: the host's ``/usr`` is visible
read-only inside the sandbox.

Neither runtime sets ``AWS_EXECUTION_ENV`` (Lambda sets it only for managed runtimes).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from hearth.runtimes.registry import RuntimeLaunch
from hearth.sandbox.base import Mount

LAUNCHER_DIR = str(Path(__file__).resolve().parent / "launcher")
LAUNCHER_MOUNT = "/var/hearth"
LAUNCHER = f"{LAUNCHER_MOUNT}/launch.sh"
PROVIDED_NAMES = ("provided.al2023", "provided.al2")
BASH = "/bin/bash"


@dataclass(frozen=True, slots=True)
class ProvidedRuntime:
    name: str

    def launch(self) -> RuntimeLaunch:
        return RuntimeLaunch(
            argv=(BASH, LAUNCHER, "--provided"),
            mounts=(Mount(LAUNCHER_DIR, LAUNCHER_MOUNT),),
            env={
                "PATH": "/usr/local/bin:/usr/bin/:/bin:/opt/bin",
                "LD_LIBRARY_PATH": "/lib64:/usr/lib64:/var/runtime:/var/runtime/lib"
                ":/var/task:/var/task/lib:/opt/lib",
                "LANG": "en_US.UTF-8",
                "TZ": ":UTC",
            },
        )


def provided_runtimes() -> dict[str, ProvidedRuntime]:
    """Both custom runtimes, offered when the host has bash (the launcher's shell)."""
    if not Path(BASH).exists():
        return {}
    return {name: ProvidedRuntime(name) for name in PROVIDED_NAMES}


def with_extensions(launch: RuntimeLaunch) -> RuntimeLaunch:
    """Wrap a managed runtime's launch so the launcher starts /opt/extensions/* first.

    Only used when the function's layers hold extensions: a bare runtime start stays
    one ``exec`` shorter.
    """
    if launch.argv[:2] == (BASH, LAUNCHER):
        return launch
    return RuntimeLaunch(
        argv=(BASH, LAUNCHER, "--", *launch.argv),
        mounts=(*launch.mounts, Mount(LAUNCHER_DIR, LAUNCHER_MOUNT)),
        env=launch.env,
    )
