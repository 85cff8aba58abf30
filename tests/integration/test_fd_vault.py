"""Parked environments (hearth.worker.fd_vault): idle frozen environments whose descriptors
a vault process holds, so that a server holds more of them than its open-file limit would
at 5 descriptors each; and what happens when the vault process dies."""

from __future__ import annotations

import base64
import json
import os
import signal
import time
from pathlib import Path
from typing import Any

from tests.conftest import ROLE
from tests.helpers import ServerProcess, make_zip, start_server

COUNTER = """
COUNT = 0
def handler(event, context):
    global COUNT
    COUNT += 1
    print("count", COUNT)
    return {"count": COUNT}
"""


def _children(pid: int) -> list[int]:
    with open(f"/proc/{pid}/task/{pid}/children") as f:
        return [int(p) for p in f.read().split()]


def _vaults(server: ServerProcess) -> list[int]:
    found = []
    for child in _children(server.proc.pid):
        try:
            with open(f"/proc/{child}/cmdline", "rb") as f:
                if b"_vault_main.py" in f.read():
                    found.append(child)
        except OSError:
            continue
    return found


def _open_fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def _create(lam: Any, names: list[str]) -> None:
    for name in names:
        lam.create_function(
            FunctionName=name,
            Runtime="python3.12",
            Role=ROLE,
            Handler="app.handler",
            Code={"ZipFile": make_zip({"app.py": COUNTER})},
            MemorySize=128,
        )


def _count(lam: Any, name: str) -> int:
    resp = lam.invoke(FunctionName=name, Payload=b"{}")
    assert "FunctionError" not in resp, resp
    return int(json.loads(resp["Payload"].read())["count"])


#: A vault process's own descriptors: stdin, stdout, stderr and its socket to the server.
VAULT_OWN_FDS = 4


def _wait_vault_holds(server: ServerProcess, fds: int, timeout: float = 60) -> None:
    """Until the vault processes hold ``fds`` descriptors for the server."""
    deadline = time.monotonic() + timeout
    while sum(_open_fds(v) - VAULT_OWN_FDS for v in _vaults(server)) < fds:
        assert time.monotonic() < deadline, "environments were not parked"
        time.sleep(0.2)


def test_a_server_holds_more_idle_environments_than_its_open_file_limit_would(
    tmp_path: Path,
) -> None:
    """nofile 400: (400 - 200) // 5 = 40 environments with all their descriptors in the
    server. 60 idle frozen ones are held (parked past the budget), and each then answers
    from its own warm state (its module-level counter goes on)."""
    server = start_server(tmp_path / "data", ["--no-egress"], nofile=400)
    try:
        lam = server.client("lambda")
        names = [f"park-{i}" for i in range(60)]
        _create(lam, names)
        for name in names:
            assert _count(lam, name) == 1
        # Every start past the budget parked idle ones: 60 alive, 1 descriptor each parked.
        _wait_vault_holds(server, 20 * 4)
        assert _open_fds(server.proc.pid) < 300
        for name in names:
            assert _count(lam, name) == 2, name  # the same environment, thawed
        # Parked again, and its output still reaches its log stream (LogType Tail).
        _wait_vault_holds(server, 20 * 4)
        resp = lam.invoke(FunctionName=names[0], Payload=b"{}", LogType="Tail")
        assert json.loads(resp["Payload"].read()) == {"count": 3}
        tail = base64.b64decode(resp["LogResult"]).decode()
        assert "count 3" in tail and "REPORT RequestId" in tail, tail
        assert "Too many open files" not in server.log_text()
        assert "Traceback" not in server.log_text()
    finally:
        server.stop()


def test_a_dead_vault_kills_its_parked_environments_and_the_server_goes_on(
    tmp_path: Path,
) -> None:
    server = start_server(
        tmp_path / "data", ["--no-egress"], nofile=400, env={"HEARTH_PARK_AT": "0"}
    )
    try:
        lam = server.client("lambda")
        names = [f"lost-{i}" for i in range(5)]
        _create(lam, names)
        for name in names:
            assert _count(lam, name) == 1
        # Parked as they froze (HEARTH_PARK_AT=0): 4 descriptors of each in the vault.
        _wait_vault_holds(server, 5 * 4)
        (vault,) = _vaults(server)
        os.kill(vault, signal.SIGKILL)
        deadline = time.monotonic() + 30
        while server.log_text().count("parked descriptors were lost") < 5:
            assert time.monotonic() < deadline, server.log_text()[-3000:]
            time.sleep(0.1)
        # Each function is served again, by a new environment (Init ran again), and those
        # are parked by a new vault process.
        for name in names:
            assert _count(lam, name) == 1, name
        _wait_vault_holds(server, 5 * 4)
        for name in names:
            assert _count(lam, name) == 2, name
        assert "Traceback" not in server.log_text()
    finally:
        server.stop()


CGROUP_OF = """
COUNT = 0
def handler(event, context):
    global COUNT
    COUNT += 1
    return {"count": COUNT, "cgroup": open("/proc/self/cgroup").read()}
"""


def test_a_parked_environment_whose_sandbox_dies_is_noticed(tmp_path: Path) -> None:
    """Its exit is still seen while it is parked (its control socket stays in the server):
    killed from outside (and thawed, so that the kill lands on cgroup v1), it goes, and
    the next invoke starts a new environment."""
    server = start_server(
        tmp_path / "data", ["--no-egress"], nofile=400, env={"HEARTH_PARK_AT": "0"}
    )
    try:
        lam = server.client("lambda")
        lam.create_function(
            FunctionName="doomed",
            Runtime="python3.12",
            Role=ROLE,
            Handler="app.handler",
            Code={"ZipFile": make_zip({"app.py": CGROUP_OF})},
        )
        first = json.loads(lam.invoke(FunctionName="doomed", Payload=b"{}")["Payload"].read())
        assert first["count"] == 1
        _wait_vault_holds(server, 4)
        paths = {}
        for line in first["cgroup"].splitlines():
            _, ctrls, path = line.split(":", 2)
            for c in ctrls.split(","):
                paths[c] = path
        base = Path("/sys/fs/cgroup")
        if "freezer" in paths:
            procs = base / "memory" / paths["memory"].lstrip("/") / "cgroup.procs"
            thaw = base / "freezer" / paths["freezer"].lstrip("/") / "freezer.state"
            thawed = "THAWED"
        else:
            procs = base / paths[""].lstrip("/") / "cgroup.procs"
            thaw = base / paths[""].lstrip("/") / "cgroup.freeze"
            thawed = "0"
        for pid in procs.read_text().split():
            os.kill(int(pid), signal.SIGKILL)
        thaw.write_text(thawed)
        deadline = time.monotonic() + 30
        while procs.exists():  # the server noticed and tore the sandbox down
            assert time.monotonic() < deadline, "the dead parked environment was not noticed"
            time.sleep(0.1)
        second = json.loads(lam.invoke(FunctionName="doomed", Payload=b"{}")["Payload"].read())
        assert second["count"] == 1  # a new environment
        assert "Traceback" not in server.log_text()
    finally:
        server.stop()
