"""End to end: the ``hearth`` client commands, run as subprocesses against a real server.

One server per module (its own data dir and free port); every test uses its own
function names. Outputs and exit codes are checked as a user would see them.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.slow

RUNTIME = f"python{sys.version_info.major}.{sys.version_info.minor}"
LOG_LINE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z [0-9a-f]{8} (?P<message>.*)$")

HELLO = """\
VERSION = {version!r}


def handler(event, context):
    print("hello-log-line", event.get("name", "world"))
    return {{"greeting": "hello " + event.get("name", "world"), "version": VERSION}}


def fail(event, context):
    print("about to fail")
    raise ValueError("kaboom")
"""


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _client_env(endpoint: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "HEARTH_"))}
    env.update(
        HEARTH_ENDPOINT=endpoint,
        AWS_ACCESS_KEY_ID="test",
        AWS_SECRET_ACCESS_KEY="test",
        AWS_DEFAULT_REGION="us-east-1",
        PYTHONUNBUFFERED="1",
    )
    return env


@pytest.fixture(scope="module")
def endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    tmp_path = tmp_path_factory.mktemp("hearth-cli")
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("HEARTH_")}
    log_path = tmp_path / "server.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "hearth",
                "server",
                "--port",
                str(port),
                "--data-dir",
                str(tmp_path / "data"),
                "--no-egress",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            if proc.poll() is not None:
                pytest.fail(f"server exited with {proc.returncode}:\n{log_path.read_text()}")
            try:
                with urllib.request.urlopen(f"{url}/_hearth/health", timeout=2) as resp:
                    if resp.status == 200:
                        break
            except (urllib.error.URLError, OSError):
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"server not healthy after 30 s:\n{log_path.read_text()}")
            time.sleep(0.2)
        yield url
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def hearth(
    endpoint: str,
    *args: str,
    env: dict[str, str] | None = None,
    timeout: float = 180,
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "hearth", *args],
        env=env if env is not None else _client_env(endpoint),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def _fn_dir(tmp_path: Path, version: str = "v1") -> Path:
    d = tmp_path / "fn"
    d.mkdir(exist_ok=True)
    (d / "app.py").write_text(HELLO.format(version=version))
    return d


def _deploy(endpoint: str, directory: Path, name: str, handler: str = "app.handler", *extra: str):  # type: ignore[no-untyped-def]
    return hearth(
        endpoint,
        "deploy",
        str(directory),
        "--name",
        name,
        "--runtime",
        RUNTIME,
        "--handler",
        handler,
        *extra,
    )


def _active_sha(stdout: str, name: str) -> str:
    m = re.search(
        r"^Active: arn:aws:lambda:us-east-1:\d{12}:function:"
        + re.escape(name)
        + r" \(CodeSha256 (?P<sha>[A-Za-z0-9+/=]{44})\)$",
        stdout,
        re.M,
    )
    assert m, stdout
    return m.group("sha")


def _lambda(endpoint: str) -> Any:
    import boto3

    return boto3.client(
        "lambda",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
    )


def _no_traceback(proc: subprocess.CompletedProcess[str]) -> None:
    assert "Traceback" not in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stdout, proc.stdout


# -- control plane only -----------------------------------------------------------------


def test_unreachable_endpoint_gives_a_clear_error() -> None:
    dead = f"http://127.0.0.1:{_free_port()}"
    for args in (["ls"], ["invoke", "x"], ["rm", "x"], ["logs", "x"]):
        proc = hearth(dead, *args)
        assert proc.returncode == 2, (args, proc.stderr)
        assert proc.stderr.strip() == (
            f"error: cannot reach Hearth at {dead} (is 'hearth server' running?)"
        )
        _no_traceback(proc)
    # --endpoint-url wins over $HEARTH_ENDPOINT
    proc = hearth("http://127.0.0.1:1", "ls", "--endpoint-url", dead)
    assert proc.stderr.strip().startswith(f"error: cannot reach Hearth at {dead} ")


def test_deploy_create_then_update(endpoint: str, tmp_path: Path) -> None:
    d = _fn_dir(tmp_path, "v1")
    first = _deploy(
        endpoint,
        d,
        "cli-deploy",
        "app.handler",
        "--memory",
        "256",
        "--env",
        "GREETING=hi",
        "--env",
        "OTHER=x=y",
    )
    assert first.returncode == 0, first.stderr
    assert first.stdout.startswith(f"Packaging {d} …\n"), first.stdout
    assert "Creating function cli-deploy" in first.stdout
    sha1 = _active_sha(first.stdout, "cli-deploy")
    # CodeSha256 is the hash of exactly the bytes the zipper produced.
    from hearth.cli._zip import build_package

    assert sha1 == base64.b64encode(hashlib.sha256(build_package(d).data).digest()).decode()
    cfg = _lambda(endpoint).get_function_configuration(FunctionName="cli-deploy")
    assert cfg["Environment"]["Variables"] == {"GREETING": "hi", "OTHER": "x=y"}
    account = cfg["FunctionArn"].split(":")[4]
    assert cfg["Role"] == f"arn:aws:iam::{account}:role/hearth-function"
    assert cfg["MemorySize"] == 256

    # Same tree again: the same CodeSha256 (deterministic zip), nothing to update.
    (d / "app.py").touch()
    again = _deploy(
        endpoint,
        d,
        "cli-deploy",
        "app.handler",
        "--memory",
        "256",
        "--env",
        "GREETING=hi",
        "--env",
        "OTHER=x=y",
    )
    assert again.returncode == 0, again.stderr
    assert "Updating function cli-deploy" in again.stdout
    assert "code unchanged" in again.stdout
    assert "configuration unchanged" in again.stdout
    assert _active_sha(again.stdout, "cli-deploy") == sha1

    # Edited code and a changed setting: code update, then configuration update.
    (d / "app.py").write_text(HELLO.format(version="v2"))
    upd = _deploy(endpoint, d, "cli-deploy", "app.handler", "--timeout", "7")
    assert upd.returncode == 0, upd.stderr
    assert "updating code" in upd.stdout
    assert "updating configuration: Timeout" in upd.stdout
    sha2 = _active_sha(upd.stdout, "cli-deploy")
    assert sha2 != sha1

    ls = hearth(endpoint, "ls")
    assert ls.returncode == 0, ls.stderr
    lines = ls.stdout.splitlines()
    assert lines[0].split() == ["NAME", "RUNTIME", "MEMORY", "TIMEOUT", "LAST", "MODIFIED", "(UTC)"]
    row = next(line for line in lines if line.startswith("cli-deploy "))
    # memory kept (not given on update), timeout changed
    assert row.split()[:6] == ["cli-deploy", RUNTIME, "256", "MB", "7", "s"]
    assert re.search(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$", row)


def test_deploy_refuses_escaping_symlink(endpoint: str, tmp_path: Path) -> None:
    d = _fn_dir(tmp_path)
    (tmp_path / "secret.txt").write_text("no")
    (d / "leak.txt").symlink_to(tmp_path / "secret.txt")
    proc = _deploy(endpoint, d, "cli-leak")
    assert proc.returncode == 2
    assert proc.stderr.startswith("error: symlink leak.txt -> "), proc.stderr
    assert "points outside" in proc.stderr
    _no_traceback(proc)
    assert "cli-leak" not in hearth(endpoint, "ls").stdout


def test_api_errors_are_one_line(endpoint: str, tmp_path: Path) -> None:
    d = _fn_dir(tmp_path)
    proc = hearth(
        endpoint, "deploy", str(d), "--name", "cli-bad", "--runtime", "cobol85", "--handler", "a.b"
    )
    assert proc.returncode == 2
    assert re.fullmatch(
        r"error: (ValidationException|InvalidParameterValueException): .+\n", proc.stderr
    ), proc.stderr
    _no_traceback(proc)

    bad_key = _client_env(endpoint) | {"AWS_ACCESS_KEY_ID": "nobody"}
    proc = hearth(endpoint, "ls", env=bad_key)
    assert proc.returncode == 2
    assert re.fullmatch(r"error: \w+: .+\n", proc.stderr), proc.stderr
    _no_traceback(proc)


def test_credentials_fall_back_to_test_test(endpoint: str, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "HEARTH_"))}
    env.update(
        HEARTH_ENDPOINT=endpoint,
        AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "none"),
        AWS_CONFIG_FILE=str(tmp_path / "none"),
    )
    proc = hearth(endpoint, "ls", env=env)
    assert proc.returncode == 0, proc.stderr


def test_rm_then_invoke_is_not_found(endpoint: str, tmp_path: Path) -> None:
    assert _deploy(endpoint, _fn_dir(tmp_path), "cli-rm").returncode == 0
    rm = hearth(endpoint, "rm", "cli-rm")
    assert rm.returncode == 0, rm.stderr
    assert rm.stdout == "Deleted cli-rm\n"
    again = hearth(endpoint, "rm", "cli-rm")
    assert again.returncode == 1
    assert again.stderr == "error: no function named 'cli-rm' (ResourceNotFoundException)\n"
    inv = hearth(endpoint, "invoke", "cli-rm")
    assert inv.returncode == 2
    assert inv.stderr.startswith("error: ResourceNotFoundException: "), inv.stderr
    assert inv.stdout == ""
    _no_traceback(inv)
    assert "cli-rm " not in hearth(endpoint, "ls").stdout


def test_logs_of_a_missing_group(endpoint: str) -> None:
    proc = hearth(endpoint, "logs", "cli-never-there")
    assert proc.returncode == 1
    assert proc.stderr == (
        "error: log group /aws/lambda/cli-never-there does not exist"
        " (has cli-never-there been invoked yet?)\n"
    )


# -- needs working sandboxes ------------------------------------------------------------


def test_invoke_payload_log_and_event(endpoint: str, tmp_path: Path) -> None:
    assert _deploy(endpoint, _fn_dir(tmp_path, "v1"), "cli-hello").returncode == 0

    proc = hearth(endpoint, "invoke", "cli-hello", "--payload", '{"name": "cli"}')
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == {"greeting": "hello cli", "version": "v1"}
    assert proc.stderr == ""

    payload_file = tmp_path / "event.json"
    payload_file.write_text('{"name": "file"}')
    proc = hearth(endpoint, "invoke", "cli-hello", "--payload", f"@{payload_file}", "--log")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["greeting"] == "hello file"
    err = proc.stderr.splitlines()
    assert any(line.startswith("START RequestId: ") for line in err), proc.stderr
    assert "hello-log-line file" in err
    assert any(line.startswith("END RequestId: ") for line in err), proc.stderr
    assert any(line.startswith("REPORT RequestId: ") for line in err), proc.stderr

    proc = hearth(endpoint, "invoke", "cli-hello", "--qualifier", "$LATEST")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["greeting"] == "hello world"

    proc = hearth(endpoint, "invoke", "cli-hello", "--event", "--payload", '{"name": "async"}')
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "Accepted (202)\n"

    proc = hearth(endpoint, "invoke", "cli-hello", "--payload", "not json")
    assert proc.returncode == 2
    assert proc.stderr.startswith("error: InvalidRequestContentException: "), proc.stderr


def test_update_changes_what_runs(endpoint: str, tmp_path: Path) -> None:
    d = _fn_dir(tmp_path, "v1")
    assert _deploy(endpoint, d, "cli-upd").returncode == 0
    assert json.loads(hearth(endpoint, "invoke", "cli-upd").stdout)["version"] == "v1"
    (d / "app.py").write_text(HELLO.format(version="v2"))
    assert _deploy(endpoint, d, "cli-upd").returncode == 0
    proc = hearth(endpoint, "invoke", "cli-upd")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["version"] == "v2"


def test_invoke_function_error_exit_1(endpoint: str, tmp_path: Path) -> None:
    assert _deploy(endpoint, _fn_dir(tmp_path), "cli-fail", "app.fail").returncode == 0
    proc = hearth(endpoint, "invoke", "cli-fail")
    assert proc.returncode == 1, proc.stderr
    body = json.loads(proc.stdout)
    assert body["errorType"] == "ValueError"
    assert body["errorMessage"] == "kaboom"
    assert proc.stderr == "function error: Unhandled\n"


def _logs_until(endpoint: str, name: str, wanted: str, timeout: float = 20) -> list[str]:
    deadline = time.monotonic() + timeout
    while True:
        proc = hearth(endpoint, "logs", name)
        lines = proc.stdout.splitlines()
        if proc.returncode == 0 and any(wanted in line for line in lines):
            return lines
        if time.monotonic() > deadline:
            pytest.fail(f"{wanted!r} not in logs: rc={proc.returncode}\n{proc.stdout}{proc.stderr}")
        time.sleep(0.5)


def test_logs_shows_printed_lines(endpoint: str, tmp_path: Path) -> None:
    assert _deploy(endpoint, _fn_dir(tmp_path), "cli-logs").returncode == 0
    inv = hearth(endpoint, "invoke", "cli-logs", "--payload", '{"name": "logged"}')
    assert inv.returncode == 0, inv.stderr
    # REPORT is the last line of an invocation: once it is there, all of it is.
    lines = _logs_until(endpoint, "cli-logs", " REPORT RequestId: ")
    messages = []
    for line in lines:
        m = LOG_LINE.match(line)
        assert m, line
        messages.append(m.group("message"))
    # A cold start: INIT_START first (once per environment), then the invocation.
    assert messages[0].startswith("INIT_START Runtime Version: python:3.")
    assert messages[1].startswith("START RequestId: ")
    assert "hello-log-line logged" in messages
    assert any(m.startswith("END RequestId: ") for m in messages)
    assert messages[-1].startswith("REPORT RequestId: ")
    # time order
    stamps = [line.split(" ", 1)[0] for line in lines]
    assert stamps == sorted(stamps)


def _reader(stream: io.TextIOBase, out: queue.Queue[str]) -> None:
    for line in stream:
        out.put(line.rstrip("\n"))


def test_logs_follow(endpoint: str, tmp_path: Path) -> None:
    # Follow a function that does not exist yet: the command waits for its group.
    proc = subprocess.Popen(
        [sys.executable, "-m", "hearth", "logs", "cli-follow", "--follow"],
        env=_client_env(endpoint),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # As in a terminal: a test run started in the background of a non-interactive
        # shell has SIGINT ignored, the child would inherit that and never see Ctrl-C.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    lines: queue.Queue[str] = queue.Queue()
    assert proc.stdout is not None
    threading.Thread(target=_reader, args=(proc.stdout, lines), daemon=True).start()

    def wait_for(text: str, timeout: float = 30) -> list[str]:
        got: list[str] = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                got.append(lines.get(timeout=0.5))
            except queue.Empty:
                continue
            if got[-1].endswith(text):
                return got
        pytest.fail(f"{text!r} never followed; got {got}")

    try:
        assert _deploy(endpoint, _fn_dir(tmp_path), "cli-follow").returncode == 0
        assert (
            hearth(endpoint, "invoke", "cli-follow", "--payload", '{"name": "one"}').returncode == 0
        )
        first = wait_for("hello-log-line one")
        assert (
            hearth(endpoint, "invoke", "cli-follow", "--payload", '{"name": "two"}').returncode == 0
        )
        second = wait_for("hello-log-line two")
        # nothing printed twice
        seen = [line for line in first + second if LOG_LINE.match(line)]
        assert len(seen) == len(set(seen))
        assert not any(line.endswith("hello-log-line one") for line in second)
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            rc = proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise
    assert rc == 0
    assert proc.stderr is not None
    err = proc.stderr.read()
    assert "waiting for log group /aws/lambda/cli-follow to appear" in err
    assert "Traceback" not in err


def test_deployment_package_is_what_the_server_stores(endpoint: str, tmp_path: Path) -> None:
    """GetFunction's Code.Location serves the package ``deploy`` uploaded."""
    d = _fn_dir(tmp_path)
    (d / "tool.sh").write_text("#!/bin/sh\n")
    (d / "tool.sh").chmod(0o755)
    assert _deploy(endpoint, d, "cli-pkg").returncode == 0
    location = _lambda(endpoint).get_function(FunctionName="cli-pkg")["Code"]["Location"]
    with urllib.request.urlopen(location, timeout=10) as resp:
        data = resp.read()
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        assert zf.namelist() == ["app.py", "tool.sh"]
        assert zf.getinfo("tool.sh").external_attr >> 16 & 0o777 == 0o755
