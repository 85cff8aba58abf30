"""Burst: 100 concurrent invokes of a 100 ms function from zero environments.

Hearth: a fresh server, 100 Invoke requests sent at once, each on its own connection;
the figure is the time until all have answered, and how many distinct environments
served them per second of that time. Baseline: 100 fresh ``python3`` processes that
import json and sleep 100 ms, spawned at once; time until all have exited.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks._common import INVOKE_PATH, Row, create, fire, hearth, signed_headers

N = int(os.environ.get("BENCH_BURST_N", "100"))
CODE = """
import time, uuid
ENV = uuid.uuid4().hex
def handler(event, context):
    time.sleep(0.1)
    return {"env": ENV}
"""


def run() -> list[Row]:
    with tempfile.TemporaryDirectory() as tmp, hearth(Path(tmp)) as srv:
        create(srv, "burst", CODE, Timeout=60)
        path = INVOKE_PATH.format(name="burst")
        body = b"{}"
        headers = signed_headers(srv.port, path, body)
        t0 = time.perf_counter()
        results = fire(srv.port, path, headers, body, N)
        elapsed = time.perf_counter() - t0
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
    label = f"burst {N} x 100 ms from zero: all done"
    if len(ok) != N:
        label += f" ({N - len(ok)} failed)"
    return [
        Row(label, elapsed * 1000, base * 1000, "ms", f"{N} fresh python3 processes at once",
            "well under 1 s"),
        Row("burst: environments started per second", envs / elapsed, N / base, "env/s",
            "fresh python3 processes per second", f"{envs} envs used"),
    ]  # fmt: skip
