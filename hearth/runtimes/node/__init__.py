"""Node.js runtimes: discovery of ``node`` on the host and the launch spec.

``nodejsNN.x`` is offered when a ``node`` of major version NN is found on the host (on
``PATH``, in ``/usr/local/bin`` / ``/usr/bin``, or under nvm's ``versions/node``). Its
installation prefix is mounted read-only at ``/var/lang`` and Hearth's bootstrap
(``bootstrap.js``, Node standard library only) at ``/var/runtime``, as on Lambda.
``NODE_PATH`` lists the layer folders Lambda documents (``/opt/nodejs/nodeNN/node_modules``,
``/opt/nodejs/node_modules``) before the runtime's and the function's own.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from hearth.runtimes.registry import RuntimeLaunch
from hearth.sandbox.base import Mount

NODE_MAJORS = (18, 20, 22)
BOOTSTRAP_DIR = str(Path(__file__).resolve().parent)


@dataclass(frozen=True, slots=True)
class NodeRuntime:
    name: str
    """``nodejsNN.x``."""
    node: str
    """Host path of the real ``node`` binary."""
    prefix: str
    """Host installation prefix (``<prefix>/bin/node``), mounted at /var/lang."""

    def launch(self) -> RuntimeLaunch:
        major = self.name.removeprefix("nodejs").removesuffix(".x")
        return RuntimeLaunch(
            argv=("/var/lang/bin/node", "/var/runtime/bootstrap.js"),
            mounts=(Mount(self.prefix, "/var/lang"), Mount(BOOTSTRAP_DIR, "/var/runtime")),
            env={
                "AWS_EXECUTION_ENV": f"AWS_Lambda_{self.name}",
                "PATH": "/var/lang/bin:/usr/local/bin:/usr/bin/:/bin:/opt/bin",
                "LD_LIBRARY_PATH": (
                    "/var/lang/lib:/lib64:/usr/lib64:/var/runtime:/var/runtime/lib"
                    ":/var/task:/var/task/lib:/opt/lib"
                ),
                "NODE_PATH": (
                    f"/opt/nodejs/node{major}/node_modules:/opt/nodejs/node_modules"
                    ":/var/runtime/node_modules:/var/runtime:/var/task"
                ),
                "LANG": "en_US.UTF-8",
                "TZ": ":UTC",
            },
        )


def _candidates(environ: Mapping[str, str]) -> list[str]:
    found: list[str] = []
    on_path = shutil.which("node", path=environ.get("PATH", os.defpath))
    if on_path:
        found.append(on_path)
    found.extend(("/usr/local/bin/node", "/usr/bin/node"))
    nvm = environ.get("NVM_DIR") or os.path.expanduser("~/.nvm")
    found.extend(sorted(glob.glob(os.path.join(nvm, "versions", "node", "v*", "bin", "node"))))
    return found


def _major(node: str) -> int | None:
    try:
        out = subprocess.run(
            [node, "-e", "process.stdout.write(process.versions.node)"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout
        return int(out.split(".")[0])
    except (OSError, subprocess.SubprocessError, ValueError):
        return None


def discover_node(environ: Mapping[str, str] | None = None) -> dict[str, NodeRuntime]:
    """One ``node`` per supported major version, first found wins."""
    env = os.environ if environ is None else environ
    runtimes: dict[str, NodeRuntime] = {}
    seen: set[str] = set()
    for cand in _candidates(env):
        real = os.path.realpath(cand)
        if real in seen or not os.path.isfile(real):
            continue
        seen.add(real)
        major = _major(real)
        name = f"nodejs{major}.x"
        if major not in NODE_MAJORS or name in runtimes:
            continue
        bindir = os.path.dirname(real)
        if os.path.basename(bindir) != "bin":
            continue
        runtimes[name] = NodeRuntime(name, real, os.path.dirname(bindir))
    return runtimes
