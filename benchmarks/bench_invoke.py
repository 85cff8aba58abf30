"""Invoke latency: warm and cold, against baselines measured in the same run.

* warm: sequential invokes of a hello function through the full HTTP API (SigV4
  included) on one keep-alive connection, against the bare asyncio server
  (:mod:`benchmarks._bare`) calling the same handler in-process, driven by the same
  client with requests signed before the timer starts.
* cold: Invoke → response of a new environment (the function's configuration changes
  before each sample, so the old environment is retired), against a fresh
  ``python3 -I`` that imports json and answers, plainly and inside ``bwrap`` and
  ``unshare`` sandboxes.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks._common import (
    INVOKE_PATH,
    Row,
    bare_server,
    create,
    hearth,
    pct,
    signed_headers,
    time_requests,
)

WARM_N = int(os.environ.get("BENCH_WARM_N", "2000"))
COLD_N = int(os.environ.get("BENCH_COLD_N", "50"))
BODY = b'{"x": 1}'
ANSWER = "import json, sys; sys.stdout.write(json.dumps({'hello': {'x': 1}}))"


def _python() -> str:
    """The real interpreter behind the venv's (a venv adds its own start-up work)."""
    return os.path.realpath(sys.executable)


def _time_cmd(argv: list[str], n: int) -> list[float]:
    samples = []
    for _ in range(n):
        t0 = time.perf_counter()
        subprocess.run(argv, check=True, capture_output=True)
        samples.append((time.perf_counter() - t0) * 1000)
    return samples


def cold_baselines(n: int) -> dict[str, list[float]]:
    py = [_python(), "-I", "-S", "-c", ANSWER]
    out = {"fresh python3 -I -S": _time_cmd(py, n)}
    if shutil.which("bwrap"):
        out["python3 in bwrap --unshare-all"] = _time_cmd(
            ["bwrap", "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc",
             "--tmpfs", "/tmp", "--unshare-all", "--die-with-parent", *py],
            n,
        )  # fmt: skip
    if shutil.which("unshare"):
        out["python3 in unshare -fmnpiu"] = _time_cmd(
            ["unshare", "--fork", "--pid", "--mount", "--net", "--ipc", "--uts",
             "--mount-proc", *py],
            n,
        )  # fmt: skip
    return out


def run() -> list[Row]:
    rows: list[Row] = []
    with tempfile.TemporaryDirectory() as tmp, hearth(Path(tmp)) as srv:
        create(srv, "bench")
        path = INVOKE_PATH.format(name="bench")
        headers = signed_headers(srv.port, path, BODY)
        time_requests(srv.port, path, BODY, 300, headers)
        warm = time_requests(srv.port, path, BODY, WARM_N, headers)
        lam = srv.client()
        cold: list[float] = []
        for i in range(COLD_N):
            lam.update_function_configuration(FunctionName="bench", Description=str(i))
            cold.extend(time_requests(srv.port, path, BODY, 1, headers))
    with bare_server() as port:
        headers = {"Content-Type": "application/json"}
        time_requests(port, "/", BODY, 300, headers)
        base = time_requests(port, "/", BODY, WARM_N, headers)
    what = "bare asyncio server, handler in-process"
    rows.append(Row("warm invoke p50", pct(warm, 0.5), pct(base, 0.5), "ms", what,
                    "overhead < 0.3 ms"))  # fmt: skip
    rows.append(Row("warm invoke p99", pct(warm, 0.99), pct(base, 0.99), "ms", what,
                    "overhead < 1 ms"))  # fmt: skip
    rows.append(Row("warm overhead p50", pct(warm, 0.5) - pct(base, 0.5), None, "ms",
                    "Hearth p50 minus bare p50", "< 0.3 ms"))  # fmt: skip
    rows.append(Row("warm overhead p99", pct(warm, 0.99) - pct(base, 0.99), None, "ms",
                    "Hearth p99 minus bare p99", "< 1 ms"))  # fmt: skip
    for name, samples in cold_baselines(COLD_N).items():
        rows.append(Row("cold start p50", pct(cold, 0.5), pct(samples, 0.5), "ms", name,
                        "< 10 ms (fork path)"))  # fmt: skip
        rows.append(Row("cold start p99", pct(cold, 0.99), pct(samples, 0.99), "ms", name))
    return rows
