"""Memory capacity: the worker never starts an environment that would over-commit it."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.conftest import ROLE
from tests.helpers import ServerProcess, invoke_at_once, make_zip, start_server

SLOW = """
import time
def handler(event, context):
    time.sleep(event.get("sleep", 0))
    return {"ok": True}
"""


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    base = tmp_path_factory.mktemp("cap")
    server = start_server(base / "data", ["--no-egress", "--memory-capacity-mb", "512"])
    yield server
    server.stop()


def test_request_that_would_overcommit_is_throttled(small: ServerProcess) -> None:
    lam = small.client("lambda")
    lam.create_function(
        FunctionName="cap-slow",
        Runtime="python3.11",
        Role=ROLE,
        Handler="app.handler",
        Code={"ZipFile": make_zip({"app.py": SLOW})},
        MemorySize=256,
        Timeout=30,
    )
    results = invoke_at_once(small.client("lambda"), "cap-slow", [b'{"sleep": 2}'] * 3)
    throttled = [r for r in results if isinstance(r, ClientError)]
    assert len(throttled) == 1, results
    err = throttled[0].response
    assert err["Error"]["Code"] == "TooManyRequestsException"
    assert err["ResponseMetadata"]["HTTPStatusCode"] == 429
    assert err["Reason"] == "ConcurrentInvocationLimitExceeded"
    assert results.count({"ok": True}) == 2
    # The host stays healthy and the capacity comes back: idle environments are reused.
    with urllib.request.urlopen(small.endpoint + "/_hearth/health", timeout=5) as r:
        assert r.status == 200
    for _ in range(3):
        resp = lam.invoke(FunctionName="cap-slow", Payload=b"{}")
        assert json.loads(resp["Payload"].read()) == {"ok": True}


def test_idle_environments_of_other_functions_are_evicted_for_capacity(
    small: ServerProcess,
) -> None:
    lam = small.client("lambda")
    for name in ("cap-a", "cap-b", "cap-c"):
        lam.create_function(
            FunctionName=name,
            Runtime="python3.11",
            Role=ROLE,
            Handler="app.handler",
            Code={"ZipFile": make_zip({"app.py": SLOW})},
            MemorySize=256,
        )
    # Three 256 MB functions in turn on a 512 MB worker: idle ones make room, never a 429.
    for _ in range(2):
        for name in ("cap-a", "cap-b", "cap-c"):
            resp = lam.invoke(FunctionName=name, Payload=b"{}")
            assert json.loads(resp["Payload"].read()) == {"ok": True}


def test_the_open_file_limit_throttles_instead_of_failing_starts(tmp_path: Any) -> None:
    """Each environment keeps descriptors open in the server: with a small RLIMIT_NOFILE
    (400: room for (400 - 200) // 5 = 40 sandboxes, see hearth.worker.fd_budget), a burst
    past it gets 429s, never a 500 from a start that ran out of descriptors half-way. Busy
    environments cannot be parked (only idle frozen ones are, hearth.worker.fd_vault): 52
    held at once still find room for 40 at most."""
    server = start_server(tmp_path / "data", ["--no-egress"], nofile=400)
    try:
        lam = server.client("lambda", max_pool_connections=64)
        lam.create_function(
            FunctionName="fd-slow",
            Runtime="python3.11",
            Role=ROLE,
            Handler="app.handler",
            Code={"ZipFile": make_zip({"app.py": SLOW})},
            Timeout=60,
        )
        n = 52
        results = invoke_at_once(lam, "fd-slow", [b'{"sleep": 3}'] * n)
        ok = [r for r in results if r == {"ok": True}]
        throttled = [r for r in results if isinstance(r, ClientError)]
        assert len(ok) + len(throttled) == n, results
        assert 1 <= len(ok) <= 40, (len(ok), len(throttled))
        for exc in throttled:
            assert exc.response["ResponseMetadata"]["HTTPStatusCode"] == 429, exc.response
            assert exc.response["Reason"] == "ConcurrentInvocationLimitExceeded"
        assert "Too many open files" not in server.log_text()
        # Still serving: the idle environments answer.
        resp = lam.invoke(FunctionName="fd-slow", Payload=b"{}")
        assert json.loads(resp["Payload"].read()) == {"ok": True}
    finally:
        server.stop()
