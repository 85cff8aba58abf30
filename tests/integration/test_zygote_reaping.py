"""A real server lets an idle zygote go: what it forked serves on, the process exits with
its last sandbox, and the account's next start forks from a new zygote."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.conftest import ROLE, invoke_json
from tests.helpers import ServerProcess, make_zip, start_server

PROBE = """
import random, sys, time
FORKED = "decimal" in sys.modules  # pre-loaded by the zygote only, never by the bootstrap
R = random.random()
N = 0
def handler(event, context):
    global N
    N += 1
    time.sleep(event.get("sleep", 0))
    return {"forked": FORKED, "r": R, "n": N}
"""


def _zygotes(server: ServerProcess) -> set[int]:
    """Pids of the server's zygote processes (zombies included: not reaped yet)."""
    found = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmd = (entry / "cmdline").read_bytes()
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        if ppid == server.proc.pid and b"_zygote_main.py" in cmd:
            found.add(int(entry.name))
    return found


def _exists(pid: int) -> bool:
    """Whether ``pid`` is a live (not zombie) process."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _wait(what: str, cond: Callable[[], Any], timeout: float = 30) -> Any:
    deadline = time.monotonic() + timeout
    while not (res := cond()):
        assert time.monotonic() < deadline, what
        time.sleep(0.1)
    return res


def test_an_idle_zygote_is_let_go_and_what_it_forked_lives_on(tmp_path: Path) -> None:
    server = start_server(
        tmp_path / "data",
        ["--no-egress", "--zygote-idle-timeout", "3", "--idle-timeout", "600"],
    )
    try:
        lam = server.client("lambda")

        def create(name: str) -> None:
            lam.create_function(
                FunctionName=name,
                Runtime="python3.11",
                Role=ROLE,
                Handler="app.handler",
                Code={"ZipFile": make_zip({"app.py": PROBE})},
                Timeout=30,
            )

        create("zr-a")  # warms the account's zygote
        (first,) = _wait("no zygote started", lambda: _zygotes(server))
        _, body = invoke_json(lam, "zr-a")
        assert body["forked"] and body["n"] == 1, body
        # A provisioned environment, forked from the same zygote.
        create("zr-p")
        version = lam.publish_version(FunctionName="zr-p")["Version"]
        lam.put_provisioned_concurrency_config(
            FunctionName="zr-p", Qualifier=version, ProvisionedConcurrentExecutions=1
        )
        _wait(
            "provisioned concurrency not READY",
            lambda: (
                lam.get_provisioned_concurrency_config(FunctionName="zr-p", Qualifier=version)[
                    "Status"
                ]
                == "READY"
            ),
        )
        _, pbody = invoke_json(lam, "zr-p", Qualifier=version)
        assert pbody["forked"], pbody
        # No fork for 3 s: let go (its process stays the parent of the environment).
        _wait(
            "the idle zygote was not retired", lambda: f"retired (pid {first})" in server.log_text()
        )
        time.sleep(1)
        assert _exists(first)
        # The environment forked from it still answers (the same one: its count goes on).
        _, again = invoke_json(lam, "zr-a")
        assert again == {**body, "n": 2}, (body, again)
        _, pagain = invoke_json(lam, "zr-p", Qualifier=version)
        assert pagain == {**pbody, "n": pbody["n"] + 1}, (pbody, pagain)
        # A new environment of the same account: the first start after the retirement
        # execs and starts a new zygote; the next one forks from it.
        create("zr-b")
        second = _wait("no new zygote", lambda: _zygotes(server) - {first})
        create("zr-c")
        _, other = invoke_json(lam, "zr-c")
        assert other["forked"] and other["n"] == 1, other
        assert _zygotes(server) - {first} == second
        # The last environments forked from the old zygote go: so does its process.
        lam.update_function_configuration(FunctionName="zr-a", Description="new")
        time.sleep(1)
        assert _exists(first)  # the provisioned one still lives
        lam.delete_function(FunctionName="zr-p")
        _wait("the retired zygote did not exit", lambda: not _exists(first))
        _wait("the retired zygote was not reaped", lambda: first not in _zygotes(server))
        _, renewed = invoke_json(lam, "zr-a")
        assert renewed["n"] == 1 and "errorType" not in renewed, renewed
        assert "Traceback" not in server.log_text()
    finally:
        server.stop()
    assert not _exists(first) and not any(_exists(p) for p in second)
