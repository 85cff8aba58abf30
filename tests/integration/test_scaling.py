"""Scale-out: one request per environment at a time, more environments under load."""

from __future__ import annotations

import base64
import json
import threading
import time
from typing import Any

from botocore.exceptions import ClientError

from tests.helpers import ServerProcess

PROBE = """
import os, time, uuid
ENV_ID = uuid.uuid4().hex
BUSY = False
def handler(event, context):
    global BUSY
    overlap = BUSY or os.path.exists("/tmp/busy")
    BUSY = True
    open("/tmp/busy", "w").close()
    try:
        time.sleep(event["sleep"])
    finally:
        os.remove("/tmp/busy")
        BUSY = False
    return {"env": ENV_ID, "overlap": overlap}
"""


def _parallel(server: ServerProcess, name: str, n: int, sleep: float) -> list[Any]:
    results: list[Any] = [None] * n
    barrier = threading.Barrier(n)

    def one(i: int) -> None:
        client = server.client("lambda")
        barrier.wait()
        try:
            resp = client.invoke(FunctionName=name, Payload=json.dumps({"sleep": sleep}))
            results[i] = json.loads(resp["Payload"].read())
        except ClientError as exc:
            results[i] = exc

    threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    return results


def test_ten_parallel_invokes_use_ten_environments(
    server: ServerProcess, make_function: Any
) -> None:
    make_function(PROBE, name="scale-ten", Timeout=30)
    started = time.monotonic()
    results = _parallel(server, "scale-ten", 10, sleep=1.0)
    elapsed = time.monotonic() - started
    assert all(isinstance(r, dict) for r in results), results
    assert not any(r["overlap"] for r in results)
    assert len({r["env"] for r in results}) == 10
    assert elapsed < 5.0, elapsed


def test_no_environment_serves_two_requests_at_once(
    server: ServerProcess, make_function: Any
) -> None:
    make_function(PROBE, name="scale-overlap", Timeout=30)
    # Rounds of parallel short invokes reuse warm environments; none may ever overlap.
    envs: set[str] = set()
    for _ in range(4):
        results = _parallel(server, "scale-overlap", 12, sleep=0.05)
        assert all(isinstance(r, dict) for r in results), results
        assert not any(r["overlap"] for r in results)
        envs.update(r["env"] for r in results)
    assert len(envs) <= 12 * 4


def test_burst_of_short_invokes_is_served_without_throttling(
    server: ServerProcess, make_function: Any
) -> None:
    make_function(PROBE, name="scale-burst", Timeout=30)
    results = _parallel(server, "scale-burst", 40, sleep=0.1)
    assert all(isinstance(r, dict) for r in results), results
    assert not any(r["overlap"] for r in results)


SLOW_INIT = """
import time, uuid
ENV_ID = uuid.uuid4().hex
time.sleep(3)  # a slow Init: every new environment takes 3 s to be ready
def handler(event, context):
    time.sleep(event.get("sleep", 0))
    return {"env": ENV_ID}
"""


def test_a_request_starting_an_environment_takes_one_freed_first_and_the_new_one_is_kept(
    lam: Any, make_function: Any
) -> None:
    """A request that finds every environment busy starts a new one, but is served by a
    busy one that frees up before that start is ready; the new environment still joins
    the pool when its Init ends, and serves later requests warm (no Init Duration)."""
    make_function(SLOW_INIT, name="scale-race", Timeout=30)
    first = json.loads(lam.invoke(FunctionName="scale-race", Payload=b"{}")["Payload"].read())
    busy: dict[str, Any] = {}

    def hold() -> None:  # keeps the warm environment busy for 2 s
        resp = lam.invoke(FunctionName="scale-race", Payload=json.dumps({"sleep": 2}))
        busy.update(json.loads(resp["Payload"].read()))

    holder = threading.Thread(target=hold)
    holder.start()
    time.sleep(0.5)
    # Every environment is busy: this request starts a second one (3 s of Init), and the
    # first frees up after ~1.5 s: it is served there.
    second = json.loads(lam.invoke(FunctionName="scale-race", Payload=b"{}")["Payload"].read())
    holder.join(30)
    assert busy["env"] == first["env"]
    assert second["env"] == first["env"]
    time.sleep(4)  # the second environment's Init is over by now
    both: list[Any] = [None, None]

    def one(i: int) -> None:
        resp = lam.invoke(
            FunctionName="scale-race", Payload=json.dumps({"sleep": 1}), LogType="Tail"
        )
        both[i] = (json.loads(resp["Payload"].read()), base64.b64decode(resp["LogResult"]))

    threads = [threading.Thread(target=one, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    envs = {r[0]["env"] for r in both}
    assert len(envs) == 2 and first["env"] in envs
    assert not any(b"Init Duration" in r[1] for r in both), both
