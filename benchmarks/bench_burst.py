"""Burst: environments started from zero by 100 concurrent invokes.

Two figures, each on a fresh server (``--no-egress``), 100 Invoke requests sent at once,
each on its own connection:

* *100 x 100 ms*: the time until all have answered, and how many distinct environments
  served them per second of that time (short invocations: environments started first
  serve the queue while more start). Baseline: 100 fresh ``python3`` processes that
  import json and sleep 100 ms, spawned at once; time until all have exited.
* *100 x 3 s* (PRODUCT.md: "0 -> 100 concurrent environments in well under a second"):
  the handler sleeps 3 s (``BENCH_BURST_SLEEP``), longer than the starts take, so no
  environment frees up before every request has one of its own. Each environment
  records when its Init ran (``time.time()`` when the handler module is imported, the
  last step of Init) and returns it; the figure is the time from the first request
  until the last environment's Init ran, and environments per second of that.
  Baseline: 100 fresh ``python3 -I -S`` processes spawned at once, each recording when
  it ran its first line after ``import json``; the time until the last one did.

The function's runtime is ``BENCH_BURST_RUNTIME`` (default ``python3.11``; another one is
named in every row's label).

In both, the function is created first and the host left to settle (up to 5 s) before
the burst: a function exists before its burst, and what its CreateFunction sets going in
the background (its code unpacked; on the process backend, its runtime's zygote and a
few stems: function-free sandboxes made ahead) is not part of it. No environment exists.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks._common import (
    INVOKE_PATH,
    Row,
    create,
    fire,
    hearth,
    signed_headers,
    wait_quiet,
)

N = int(os.environ.get("BENCH_BURST_N", "100"))
RUNTIME = os.environ.get("BENCH_BURST_RUNTIME", "python3.11")
#: named in the rows' labels when not the default
TAG = "" if RUNTIME == "python3.11" else f" [{RUNTIME}]"
CODE = """
import time, uuid
ENV = uuid.uuid4().hex
def handler(event, context):
    time.sleep(0.1)
    return {"env": ENV}
"""
LONG = float(os.environ.get("BENCH_BURST_SLEEP", "3.0"))
LONG_CODE = f"""
import time, uuid
INIT_AT = time.time()
ENV = uuid.uuid4().hex
def handler(event, context):
    time.sleep({LONG})
    return {{"env": ENV, "init_at": INIT_AT}}
"""


def _burst(name: str, code: str) -> tuple[list[Any], float, float]:
    """N Invokes of a new function at once on a fresh server, once the host is quiet
    again after the function's creation (which prepares its zygote and stems): the
    answers, when they were sent (epoch seconds) and how long until the last came."""
    with tempfile.TemporaryDirectory() as tmp, hearth(Path(tmp)) as srv:
        create(srv, name, code, Timeout=60, Runtime=RUNTIME)
        wait_quiet(5)
        path = INVOKE_PATH.format(name=name)
        body = b"{}"
        headers = signed_headers(srv.port, path, body)
        t0 = time.time()
        results = fire(srv.port, path, headers, body, N)
        return results, t0, time.time() - t0


def _short() -> list[Row]:
    results, _, elapsed = _burst("burst", CODE)
    ok = [json.loads(r[1])["env"] for r in results if isinstance(r, tuple) and r[0] == 200]
    envs = len(set(ok))
    py = os.path.realpath(sys.executable)
    t0 = time.perf_counter()
    procs = [
        subprocess.Popen([py, "-I", "-S", "-c", "import json, time; time.sleep(0.1)"])
        for _ in range(N)
    ]
    for p in procs:
        p.wait()
    base = time.perf_counter() - t0
    label = f"burst{TAG} {N} x 100 ms from zero: all done"
    if len(ok) != N:
        label += f" ({N - len(ok)} failed)"
    return [
        Row(label, elapsed * 1000, base * 1000, "ms", f"{N} fresh python3 processes at once",
            "well under 1 s"),
        Row(f"burst{TAG}: environments started per second", envs / elapsed, N / base, "env/s",
            "fresh python3 processes per second", f"{envs} envs used"),
    ]  # fmt: skip


def _baseline_starts() -> float:
    """Seconds from spawning the first of N fresh interpreters until the last one ran."""
    py = os.path.realpath(sys.executable)
    code = "import json, time, sys; sys.stdout.write(repr(time.time()))"
    t0 = time.time()
    procs = [
        subprocess.Popen([py, "-I", "-S", "-c", code], stdout=subprocess.PIPE) for _ in range(N)
    ]
    ran = [float(p.communicate()[0]) for p in procs]
    return max(ran) - t0


def _long() -> list[Row]:
    results, t0, done = _burst("burstlong", LONG_CODE)
    answers = [json.loads(r[1]) for r in results if isinstance(r, tuple) and r[0] == 200]
    inits = {a["env"]: a["init_at"] for a in answers}
    started = max(inits.values()) - t0 if inits else float("nan")
    base = _baseline_starts()
    label = f"burst{TAG} {N} x {LONG:g} s from zero: all {len(inits)} environments started"
    if len(answers) != N:
        label += f" ({N - len(answers)} failed)"
    return [
        Row(label, started * 1000, base * 1000, "ms",
            f"{N} fresh python3 -I -S at once, until the last ran", "well under 1 s"),
        Row(f"burst{TAG} {N} x {LONG:g} s: environments started per second", len(inits) / started,
            N / base, "env/s", "fresh python3 processes per second",
            f"{len(inits)} envs; all answered in {done * 1000:.0f} ms"),
    ]  # fmt: skip


def run() -> list[Row]:
    return _short() + _long()
