"""Memory capacity: the worker never starts an environment that would over-commit it."""

from __future__ import annotations

import json
import threading
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.conftest import ROLE
from tests.helpers import ServerProcess, make_zip, start_server

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
    results: list[Any] = [None] * 3
    barrier = threading.Barrier(3)

    def one(i: int) -> None:
        client = small.client("lambda")
        barrier.wait()
        try:
            resp = client.invoke(FunctionName="cap-slow", Payload=json.dumps({"sleep": 2}))
            results[i] = json.loads(resp["Payload"].read())
        except ClientError as exc:
            results[i] = exc

    threads = [threading.Thread(target=one, args=(i,)) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
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
