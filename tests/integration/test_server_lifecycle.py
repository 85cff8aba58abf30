"""Servers of their own: durability across kill -9, accounts, binding rules, no leaks."""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import HELLO, ROLE
from tests.helpers import (
    CGROUP_ROOT,
    REPO,
    free_port,
    hearth_cgroups,
    make_zip,
    start_server,
)


def _create(lam: Any, name: str) -> Any:
    return lam.create_function(
        FunctionName=name,
        Runtime="python3.11",
        Role=ROLE,
        Handler="app.handler",
        Code={"ZipFile": make_zip({"app.py": HELLO})},
    )


def _sandbox_pids() -> list[int]:
    """Processes of execution environments now: a runtime started by exec (or its
    launcher), by its command line; one forked by a zygote (whose command line it keeps),
    by being in a sandbox cgroup of this test run at nice 0 (the zygote is in its
    server's cgroup, and a stem waits at a lower priority until a start takes it)."""
    out = []
    for p in Path("/proc").iterdir():
        if not p.name.isdigit():
            continue
        try:
            cmd = (p / "cmdline").read_bytes()
            cgroup = (p / "cgroup").read_text()
            nice = int((p / "stat").read_text().rsplit(")", 1)[1].split()[16])
        except (OSError, ValueError, IndexError):
            continue
        execd = b"/var/runtime/bootstrap.py" in cmd or b"hearth/sandbox/_nsinit.py" in cmd
        forked = b"_zygote_main.py" in cmd and f"/{CGROUP_ROOT}/" in cgroup and nice == 0
        if execd or forked:
            out.append(int(p.name))
    return out


def test_functions_code_and_logs_survive_kill9(tmp_path: Path) -> None:
    cgroups_before = set(hearth_cgroups())
    srv = start_server(tmp_path / "data", ["--no-egress"])
    try:
        lam = srv.client()
        created = _create(lam, "durable-fn")
        resp = lam.invoke(FunctionName="durable-fn", Payload=b'{"mark": "walrus-5"}')
        assert resp["StatusCode"] == 200
        time.sleep(1.0)  # logs are written behind, in batches, well within a second
        orphans = [p for p in _sandbox_pids() if _under(p, srv.proc.pid)]
        assert orphans
    finally:
        srv.stop(signal.SIGKILL)
    # The sandbox of the killed server may linger until the new server sweeps it.
    srv2 = srv.restart()
    try:
        lam = srv2.client()
        got = lam.get_function(FunctionName="durable-fn")
        assert got["Configuration"]["CodeSha256"] == created["CodeSha256"]
        resp = lam.invoke(FunctionName="durable-fn", Payload=b'{"again": 1}')
        assert json.loads(resp["Payload"].read())["event"] == {"again": 1}
        events = srv2.client("logs").filter_log_events(
            logGroupName="/aws/lambda/durable-fn", filterPattern="walrus-5"
        )["events"]
        assert events
    finally:
        srv2.stop()
    # The restarted server swept what the killed one left behind.
    assert not [p for p in orphans if _alive(p)]
    assert not set(hearth_cgroups()) - cgroups_before


def test_clean_shutdown_leaves_nothing(tmp_path: Path) -> None:
    cgroups_before = set(hearth_cgroups())
    srv = start_server(tmp_path / "data", ["--no-egress"])
    try:
        lam = srv.client()
        _create(lam, "leak-fn")
        for _ in range(2):
            lam.invoke(FunctionName="leak-fn", Payload=b"{}")
        mine = [p for p in _sandbox_pids() if _under(p, srv.proc.pid)]
        assert mine
        assert set(hearth_cgroups()) - cgroups_before
    finally:
        assert srv.stop() == 0
    assert not [p for p in mine if _alive(p)]
    assert not set(hearth_cgroups()) - cgroups_before
    with open("/proc/self/mountinfo") as f:
        assert str(tmp_path) not in f.read()


def test_accounts_never_see_each_other(tmp_path: Path) -> None:
    keys = "AKIDALPHA:alpha-secret:111111111111,AKIDBETA:beta-secret:222222222222"
    srv = start_server(tmp_path / "data", ["--no-egress"], env={"HEARTH_ACCESS_KEYS": keys})
    try:
        alpha = srv.client(key="AKIDALPHA", secret="alpha-secret")
        beta = srv.client(key="AKIDBETA", secret="beta-secret")
        fn = alpha.create_function(
            FunctionName="shared-name",
            Runtime="python3.11",
            Role="arn:aws:iam::111111111111:role/r",
            Handler="app.handler",
            Code={"ZipFile": make_zip({"app.py": HELLO})},
        )
        assert fn["FunctionArn"] == "arn:aws:lambda:us-east-1:111111111111:function:shared-name"
        with pytest.raises(beta.exceptions.ResourceNotFoundException):
            beta.get_function(FunctionName="shared-name")
        with pytest.raises(beta.exceptions.ResourceNotFoundException):
            beta.invoke(FunctionName=fn["FunctionArn"])
        assert beta.list_functions()["Functions"] == []
        # The same name in the other account is a different function.
        beta.create_function(
            FunctionName="shared-name",
            Runtime="python3.11",
            Role="arn:aws:iam::222222222222:role/r",
            Handler="app.handler",
            Code={"ZipFile": make_zip({"app.py": HELLO})},
        )
        assert len(alpha.list_functions()["Functions"]) == 1
        # The default test key is not accepted once keys are configured.
        default = srv.client()
        with pytest.raises(default.exceptions.ClientError) as exc:
            default.list_functions()
        assert exc.value.response["Error"]["Code"] == "UnrecognizedClientException"
    finally:
        srv.stop()


def test_refuses_public_bind_without_keys(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "HEARTH_ACCESS_KEYS"}
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "hearth",
            "server",
            "--host",
            "0.0.0.0",
            "--port",
            str(free_port()),
            "--data-dir",
            str(tmp_path / "d"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        cwd=REPO,
    )
    assert proc.returncode != 0
    assert "refusing to listen" in proc.stderr + proc.stdout


def test_aws_cli_invoke(tmp_path: Path) -> None:
    srv = start_server(tmp_path / "data", ["--no-egress"])
    try:
        _create(srv.client(), "cli-fn")
        aws = str(Path(sys.executable).with_name("aws"))
        env = dict(
            os.environ,
            AWS_ACCESS_KEY_ID="test",
            AWS_SECRET_ACCESS_KEY="test",
            AWS_DEFAULT_REGION="us-east-1",
        )
        out = tmp_path / "out.json"
        # awscli v1 (the one on PyPI) sends --payload as given.
        proc = subprocess.run(
            [aws, "lambda", "invoke", "--function-name", "cli-fn", "--endpoint-url",
             srv.endpoint, "--payload", '{"from": "cli"}', str(out)],
            capture_output=True, text=True, timeout=120, env=env,
        )  # fmt: skip
        assert proc.returncode == 0, proc.stderr
        assert json.loads(proc.stdout)["StatusCode"] == 200
        assert json.loads(out.read_text())["event"] == {"from": "cli"}
        proc = subprocess.run(
            [
                aws,
                "logs",
                "filter-log-events",
                "--log-group-name",
                "/aws/lambda/cli-fn",
                "--endpoint-url",
                srv.endpoint,
            ],
            capture_output=True,
            text=True,
            timeout=120,
            env=env,
        )
        assert proc.returncode == 0, proc.stderr
        assert "START RequestId" in proc.stdout
    finally:
        srv.stop()


def test_idle_environments_are_reaped(tmp_path: Path) -> None:
    srv = start_server(tmp_path / "data", ["--no-egress", "--idle-timeout", "2"])
    try:
        lam = srv.client()
        created = _create(lam, "reap-fn")
        first = json.loads(lam.invoke(FunctionName="reap-fn", Payload=b"{}")["Payload"].read())
        assert first["fn"] == created["FunctionName"]
        # (pid, start time): on a busy host a reaped sandbox's pid can be reused within
        # the wait, and a reused pid is not the sandbox still running.
        mine = {(p, _started(p)) for p in _sandbox_pids() if _under(p, srv.proc.pid)}
        assert mine
        deadline = time.time() + 15
        while time.time() < deadline and any(_started(p) == t for p, t in mine):
            time.sleep(0.2)
        assert not any(_started(p) == t for p, t in mine)
        # The next invoke starts a fresh environment and works.
        again = lam.invoke(FunctionName="reap-fn", Payload=b'{"n": 2}', LogType="Tail")
        assert "Init Duration" in base64.b64decode(again["LogResult"]).decode()
    finally:
        srv.stop()


def _started(pid: int) -> int | None:
    """The process's start time (clock ticks after boot), None once it is gone."""
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19])
    except (OSError, ValueError, IndexError):
        return None


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _under(pid: int, ancestor: int) -> bool:
    """Whether ``pid`` descends from ``ancestor`` (host pid namespace)."""
    while pid > 1:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            return False
        pid = int(stat.rsplit(")", 1)[1].split()[1])
        if pid == ancestor:
            return True
    return False
