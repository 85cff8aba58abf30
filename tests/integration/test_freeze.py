"""Idle environments are frozen (cgroup freezer) and thawed by the next invoke."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from tests.conftest import invoke_json

SPINNER = """
import threading
COUNT = 0
def spin():
    global COUNT
    while True:
        COUNT += 1
threading.Thread(target=spin, daemon=True).start()
def handler(event, context):
    return {"count": COUNT, "cgroup": open("/proc/self/cgroup").read()}
"""


def _cgroup_files(cgroup_text: str) -> tuple[Path, Path]:
    """(freezer state file, CPU usage file) of the sandbox's cgroup, v1 or v2."""
    paths = {}
    for line in cgroup_text.splitlines():
        _, ctrls, path = line.split(":", 2)
        for c in ctrls.split(","):
            paths[c] = path
    if "freezer" in paths:
        base = Path("/sys/fs/cgroup")
        return (
            base / "freezer" / paths["freezer"].lstrip("/") / "freezer.state",
            base / "cpuacct" / paths["cpuacct"].lstrip("/") / "cpuacct.usage",
        )
    d = Path("/sys/fs/cgroup") / paths[""].lstrip("/")
    return d / "cgroup.events", d / "cpu.stat"


def _cpu_ns(path: Path) -> int:
    text = path.read_text()
    if path.name == "cpu.stat":
        return int(text.split("usage_usec ")[1].split()[0]) * 1000
    return int(text)


def _frozen(path: Path) -> bool:
    text = path.read_text()
    if path.name == "cgroup.events":
        return "frozen 1" in text
    return text.strip() == "FROZEN"


def test_idle_environment_is_frozen_and_thawed_by_the_next_invoke(
    lam: Any, make_function: Any
) -> None:
    make_function(SPINNER, name="freeze-spin")
    _, first = invoke_json(lam, "freeze-spin")
    state, usage = _cgroup_files(first["cgroup"])
    # Busy spinning right after the invoke: not frozen yet (freeze comes after idling).
    assert not _frozen(state)
    deadline = time.monotonic() + 10
    while not _frozen(state):
        assert time.monotonic() < deadline, "the idle environment was never frozen"
        time.sleep(0.1)
    # Frozen: its spinning thread gets no CPU at all.
    before = _cpu_ns(usage)
    time.sleep(1.0)
    assert _cpu_ns(usage) == before
    # The next invoke thaws it and is answered by the same environment.
    _, second = invoke_json(lam, "freeze-spin")
    assert second["cgroup"] == first["cgroup"]
    assert second["count"] > first["count"]
    assert not _frozen(state)
    time.sleep(0.3)
    assert _cpu_ns(usage) > before  # running again
