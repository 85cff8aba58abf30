"""``AWS_LAMBDA_EXEC_WRAPPER``: a function's own script starts its managed runtime.

As on Lambda ("Modifying the runtime environment" → wrapper scripts): when a function of
a managed runtime (Python, Node.js) sets ``AWS_LAMBDA_EXEC_WRAPPER`` to the path of an
executable (in its package or a layer), the runtime is started as ``<wrapper> <runtime
command...>``; the script may change the environment or the arguments and then ``exec
"$@"``. Custom runtimes (``provided.*``) ignore it: their ``bootstrap`` is the start.

The wrapped command starts through Hearth's launcher, which reports a wrapper that is
missing or not executable as ``Runtime.InvalidEntrypoint`` (``fork/exec <path>: no such
file or directory`` / ``permission denied``) instead of a sandbox that fails to start. A
wrapped start always takes the exec path (a zygote forks only the bare runtime command).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

from hearth.runtimes.provided import with_extensions
from hearth.runtimes.registry import RuntimeLaunch

EXEC_WRAPPER = "AWS_LAMBDA_EXEC_WRAPPER"


def exec_wrapped(
    launch: RuntimeLaunch, runtime: str, environment: Mapping[str, str]
) -> RuntimeLaunch:
    """``launch`` with the function's wrapper script in front, if it sets one."""
    wrapper = environment.get(EXEC_WRAPPER, "")
    if not wrapper or runtime.startswith("provided"):
        return launch
    return with_extensions(dataclasses.replace(launch, argv=(wrapper, *launch.argv)))
