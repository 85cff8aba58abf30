"""Throughput under ``wrk`` and server CPU per warm invoke.

``wrk`` (the Debian package) replays one pre-signed Invoke request for a fixed time at
1, 32 and 128 concurrent connections, against Hearth and against the bare asyncio server
(:mod:`benchmarks._bare`). The server's own CPU time (user + system, all threads; not
the sandboxes') over the 32-connection run, divided by the requests served, is the CPU
per warm invoke.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

from benchmarks._common import (
    INVOKE_PATH,
    Row,
    bare_pid_of,
    bare_server,
    cpu_seconds,
    create,
    hearth,
    signed_headers,
    time_requests,
)

DURATION = int(os.environ.get("BENCH_WRK_SECONDS", "5"))
CONNECTIONS = (1, 32, 128)
BODY = b'{"x": 1}'


def _lua(headers: dict[str, str], body: bytes, tmp: Path) -> Path:
    lines = ['wrk.method = "POST"', f"wrk.body = '{body.decode()}'"]
    for k, v in headers.items():
        if k.lower() in ("host", "content-length"):
            continue
        lines.append(f'wrk.headers["{k}"] = "{v}"')
    script = tmp / "invoke.lua"
    script.write_text("\n".join(lines) + "\n")
    return script


def _wrk(url: str, conns: int, script: Path) -> tuple[float, int, int]:
    """(requests/s, requests, non-2xx responses + socket errors)."""
    threads = min(conns, 2)
    out = subprocess.run(
        ["wrk", f"-t{threads}", f"-c{conns}", f"-d{DURATION}s", "-s", str(script), url],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    total = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    bad = 0
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if m:
        bad += int(m.group(1))
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    if m:
        bad += sum(int(g) for g in m.groups())
    return rate, total, bad


def _measure(port: int, path: str, pid: int, script: Path) -> dict[int, tuple[float, float, int]]:
    """Per connection count: (requests/s, CPU µs per request, errors)."""
    url = f"http://127.0.0.1:{port}{path}"
    _wrk(url, max(CONNECTIONS), script)  # warm-up: every environment started
    out = {}
    for conns in CONNECTIONS:
        c0 = cpu_seconds(pid)
        rate, total, bad = _wrk(url, conns, script)
        cpu_us = (cpu_seconds(pid) - c0) / max(total, 1) * 1e6
        out[conns] = (rate, cpu_us, bad)
    return out


def run() -> list[Row]:
    if shutil.which("wrk") is None:
        print("wrk is not installed (make install adds it): throughput skipped")
        return []
    with tempfile.TemporaryDirectory() as tmp_s:
        tmp = Path(tmp_s)
        with hearth(tmp) as srv:
            create(srv, "bench")
            path = INVOKE_PATH.format(name="bench")
            headers = signed_headers(srv.port, path, BODY)
            time_requests(srv.port, path, BODY, 50, headers)
            h = _measure(srv.port, path, srv.proc.pid, _lua(headers, BODY, tmp))
        with bare_server() as port:
            b = _measure(port, "/", bare_pid_of(port), _lua({}, BODY, tmp))
    what = "bare asyncio server under the same wrk"
    rows = []
    for conns in CONNECTIONS:
        target = "≥ 0.6x (1 client)" if conns == 1 else "≥ 0.2x" if conns == 32 else ""
        label = f"throughput, {conns} conn" + (
            "" if h[conns][2] == 0 else f", {h[conns][2]} errors"
        )
        rows.append(Row(label, h[conns][0], b[conns][0], "req/s", what, target))
    rows.append(Row("server CPU per warm invoke, 32 conn", h[32][1], b[32][1], "µs",
                    "bare server CPU per request", "≤ 150 µs"))  # fmt: skip
    return rows
