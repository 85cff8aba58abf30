"""Disk capacity: the sandboxes' /tmp images never promise more disk than the server was
given; a function that fills its /tmp (or the host disk itself) gets the error, and the
server and its stores serve on."""

from __future__ import annotations

import json
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from tests.conftest import ROLE
from tests.helpers import ServerProcess, invoke_at_once, make_zip, start_server

APP = """
import errno, os, time
def handler(event, context):
    if "mark" in event:
        print("MARK", event["mark"])
    if event.get("exit"):
        os._exit(3)
    time.sleep(event.get("sleep", 0))
    mb = event.get("write_mb", 0)
    written = 0
    try:
        with open("/tmp/fill", "wb") as f:
            chunk = b"x" * (1 << 20)
            for _ in range(mb):
                f.write(chunk)
                written += 1
            f.flush()
            os.fsync(f.fileno())
    except OSError as exc:
        return {"error": errno.errorcode.get(exc.errno, str(exc.errno)), "written": written}
    finally:
        if mb and os.path.exists("/tmp/fill"):
            os.unlink("/tmp/fill")
    return {"ok": True, "written": written}
"""


def _create(server: ServerProcess, name: str) -> None:
    server.client("lambda").create_function(
        FunctionName=name,
        Runtime="python3.11",
        Role=ROLE,
        Handler="app.handler",
        Code={"ZipFile": make_zip({"app.py": APP})},
        Timeout=60,
        EphemeralStorage={"Size": 512},
    )


def _healthy(server: ServerProcess) -> None:
    with urllib.request.urlopen(server.endpoint + "/_hearth/health", timeout=5) as r:
        assert r.status == 200


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    base = tmp_path_factory.mktemp("disk")
    server = start_server(base / "data", ["--no-egress", "--disk-capacity-mb", "1024"])
    yield server
    server.stop()


def test_a_start_past_the_disk_capacity_is_throttled_like_memory(small: ServerProcess) -> None:
    _create(small, "disk-slow")
    lam = small.client("lambda")
    results = invoke_at_once(lam, "disk-slow", [b'{"sleep": 3}'] * 3)
    throttled = [r for r in results if isinstance(r, ClientError)]
    assert len(throttled) == 1, results
    err = throttled[0].response
    assert err["Error"]["Code"] == "TooManyRequestsException"
    assert err["ResponseMetadata"]["HTTPStatusCode"] == 429
    assert err["Reason"] == "ConcurrentInvocationLimitExceeded"
    assert results.count({"ok": True, "written": 0}) == 2
    _healthy(small)
    # The others done, it fits: idle environments are reused (or evicted for another).
    for _ in range(2):
        resp = lam.invoke(FunctionName="disk-slow", Payload=b"{}")
        assert json.loads(resp["Payload"].read()) == {"ok": True, "written": 0}
    _create(small, "disk-other")
    resp = lam.invoke(FunctionName="disk-other", Payload=b"{}")
    assert json.loads(resp["Payload"].read()) == {"ok": True, "written": 0}


def test_async_invokes_throttled_for_disk_are_retried(small: ServerProcess) -> None:
    _create(small, "disk-async")
    lam = small.client("lambda")
    for i in range(3):
        payload = json.dumps({"sleep": 2, "mark": f"async-{i}"}).encode()
        resp = lam.invoke(FunctionName="disk-async", InvocationType="Event", Payload=payload)
        assert resp["StatusCode"] == 202
    logs = small.client("logs")
    deadline = time.monotonic() + 60
    seen: set[str] = set()
    while len(seen) < 3:
        assert time.monotonic() < deadline, seen
        time.sleep(0.5)
        events = logs.filter_log_events(logGroupName="/aws/lambda/disk-async")["events"]
        seen = {e["message"].split()[1] for e in events if e["message"].startswith("MARK ")}
    assert seen == {"async-0", "async-1", "async-2"}


def test_a_function_filling_its_tmp_gets_enospc(small: ServerProcess) -> None:
    _create(small, "disk-fill")
    lam = small.client("lambda")
    resp = lam.invoke(FunctionName="disk-fill", Payload=b'{"write_mb": 600}')
    body = json.loads(resp["Payload"].read())
    assert body["error"] == "ENOSPC" and 400 <= body["written"] <= 512, body
    resp = lam.invoke(FunctionName="disk-fill", Payload=b'{"write_mb": 8}')
    assert json.loads(resp["Payload"].read()) == {"ok": True, "written": 8}
    _healthy(small)


def test_when_the_host_disk_really_fills_the_function_gets_the_error(tmp_path: Path) -> None:
    """An operator who promised more than the disk holds (``--disk-capacity-mb`` past it):
    the data directory on a 200 MB filesystem, a function writing 300 MB to its /tmp.
    The function's writes land in its /tmp's page cache; its ``fsync`` fails with ENOSPC
    (the loop device cannot grow its image), and once its environment is gone the server
    and its stores work on. (While the disk is full, writes of the stores fail too: an
    API call that writes gets a 500, a batch of log events is dropped, an image formatted
    ahead fails: each is logged, none of it crashes the server.)"""
    data = tmp_path / "data"
    data.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=200m,mode=0700", "tmpfs", str(data)],
                   check=True)  # fmt: skip
    try:
        server = start_server(data, ["--no-egress", "--disk-capacity-mb", "2048"])
        try:
            _create(server, "disk-host")
            lam = server.client("lambda")
            resp = lam.invoke(FunctionName="disk-host", Payload=b'{"write_mb": 300}')
            payload = resp["Payload"].read()
            if "FunctionError" not in resp:
                body = json.loads(payload)
                assert body.get("error") in ("EIO", "ENOSPC"), body  # ENOSPC here
            _healthy(server)
            # Its environment goes (its image with it); the stores take writes again.
            resp = lam.invoke(FunctionName="disk-host", Payload=b'{"exit": true}')
            assert resp["FunctionError"] == "Unhandled"
            lam.update_function_configuration(FunctionName="disk-host", Description="again")
            lam.get_waiter("function_updated_v2").wait(FunctionName="disk-host")
            resp = lam.invoke(FunctionName="disk-host", Payload=b'{"write_mb": 8}')
            assert json.loads(resp["Payload"].read()) == {"ok": True, "written": 8}
            assert lam.get_function(FunctionName="disk-host")["Configuration"]["Description"]
            events = server.client("logs").filter_log_events(logGroupName="/aws/lambda/disk-host")
            assert any("REPORT" in e["message"] for e in events["events"])
        finally:
            assert server.stop() == 0  # a clean shutdown: nothing crashed meanwhile
    finally:
        subprocess.run(["umount", "-l", str(data)], check=False)
