from __future__ import annotations

import contextlib
import itertools
import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.helpers import ServerProcess, hearth_cgroups, make_zip, start_server

ROLE = "arn:aws:iam::000000000000:role/hearth-test"

HELLO = """
import json, os
INIT_COUNT = 0
INIT_COUNT += 1
def handler(event, context):
    print("hello from handler", json.dumps(event))
    return {"event": event, "fn": context.function_name, "rid": context.aws_request_id}
"""


@pytest.fixture(scope="session", autouse=True)
def no_leaks_after_the_suite() -> Iterator[None]:
    """After every server of the session has stopped, nothing of a sandbox remains."""
    before = set(hearth_cgroups())
    yield
    leftover_cgroups = set(hearth_cgroups()) - before
    assert not leftover_cgroups, f"cgroups left behind: {sorted(leftover_cgroups)}"
    with open("/proc/self/mountinfo") as f:
        mounts = [line for line in f if "/hearth-scratch" in line or "/var/task" in line]
    assert not mounts, f"mounts left behind: {mounts}"


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """One real ``hearth server`` for the integration tests of a session."""
    base = tmp_path_factory.mktemp("hearth")
    srv = start_server(base / "data", ["--no-egress", "--idle-timeout", "120"])
    yield srv
    srv.stop()


@pytest.fixture(scope="session")
def lam(server: ServerProcess) -> Any:
    return server.client("lambda")


@pytest.fixture(scope="session")
def logs(server: ServerProcess) -> Any:
    return server.client("logs")


@pytest.fixture(scope="session")
def sqs(server: ServerProcess) -> Any:
    return server.client("sqs")


_names = itertools.count()


@pytest.fixture
def make_function(lam: Any) -> Iterator[Callable[..., dict[str, Any]]]:
    created: list[str] = []

    def make(
        code: str | dict[str, str] = HELLO,
        *,
        handler: str = "app.handler",
        runtime: str = "python3.11",
        name: str | None = None,
        **kw: Any,
    ) -> dict[str, Any]:
        files = {"app.py": code} if isinstance(code, str) else code
        fname = name or f"fn-{next(_names)}-{abs(hash(json.dumps(files, sort_keys=True))) % 10**6}"
        resp = lam.create_function(
            FunctionName=fname,
            Runtime=runtime,
            Role=ROLE,
            Handler=handler,
            Code={"ZipFile": make_zip(files)},
            **kw,
        )
        created.append(fname)
        return dict(resp)

    yield make
    for fname in created:
        with contextlib.suppress(lam.exceptions.ResourceNotFoundException):
            lam.delete_function(FunctionName=fname)


def invoke_json(lam: Any, name: str, payload: Any = None, **kw: Any) -> tuple[dict[str, Any], Any]:
    resp = lam.invoke(FunctionName=name, Payload=json.dumps(payload or {}), **kw)
    body = resp["Payload"].read()
    return resp, json.loads(body) if body else None


#: A handler that prints each event it gets (``GOT <json>``), for delivery tests.
PRINTER = "import json\ndef handler(event, context):\n    print('GOT ' + json.dumps(event))\n"


def error_of(exc: pytest.ExceptionInfo[ClientError]) -> tuple[str, int, str]:
    """(code, HTTP status, message) of an AWS error a client raised."""
    resp = exc.value.response
    return (
        resp["Error"]["Code"],
        resp["ResponseMetadata"]["HTTPStatusCode"],
        resp["Error"]["Message"],
    )


def receive_bodies(sqs: Any, url: str, want: int, timeout: float = 20) -> list[str]:
    """Bodies of up to ``want`` messages received from a queue within ``timeout`` s."""
    bodies: list[str] = []
    deadline = time.monotonic() + timeout
    while len(bodies) < want and time.monotonic() < deadline:
        resp = sqs.receive_message(QueueUrl=url, WaitTimeSeconds=1, MaxNumberOfMessages=10)
        bodies.extend(m["Body"] for m in resp.get("Messages", []))
    return bodies


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "integration" in Path(str(item.fspath)).parts:
            item.add_marker(pytest.mark.slow)
