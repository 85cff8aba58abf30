"""Invoke latency: a real ``hearth server`` against baselines measured in the same run.

* warm: sequential invokes of a hello function through the full HTTP API (SigV4
  included), against a bare asyncio HTTP server on this machine that calls the same
  handler in-process, both driven by the same keep-alive client with requests signed
  before the timer starts.
* cold: Invoke → response of a new environment (a function whose configuration changes
  before each sample, so the old environment is retired), against a fresh
  ``python3 -c 'import json'`` process.

A benchmark, never a test: it prints a markdown table with ratios and writes JSON under
``benchmarks/results/``.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import contextlib

from tests.helpers import free_port, make_zip, start_server

HANDLER = "def handler(event, context):\n    return {'hello': event}\n"
WARM_N = 1000
COLD_N = 50


def _pct(samples: list[float], p: float) -> float:
    s = sorted(samples)
    return s[min(len(s) - 1, int(len(s) * p))]


def _signed(port: int, path: str, body: bytes) -> dict[str, str]:
    req = AWSRequest(method="POST", url=f"http://127.0.0.1:{port}{path}", data=body)
    SigV4Auth(Credentials("test", "test"), "lambda", "us-east-1").add_auth(req)
    return dict(req.prepare().headers)


def _time_requests(port: int, path: str, body: bytes, n: int, sign: bool) -> list[float]:
    conn = http.client.HTTPConnection("127.0.0.1", port)
    samples = []
    for _ in range(n):
        headers = _signed(port, path, body) if sign else {"Content-Type": "application/json"}
        t0 = time.perf_counter()
        conn.request("POST", path, body=body, headers=headers)
        resp = conn.getresponse()
        resp.read()
        samples.append((time.perf_counter() - t0) * 1000)
        if resp.status != 200:
            raise RuntimeError(f"status {resp.status}")
    conn.close()
    return samples


def _baseline_server(port: int, ready: threading.Event, stop: list[Any]) -> None:
    ns: dict[str, Any] = {}
    exec(HANDLER, ns)
    handler = ns["handler"]

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            try:
                head = await reader.readuntil(b"\r\n\r\n")
            except (asyncio.IncompleteReadError, ConnectionError):
                writer.close()
                return
            length = 0
            for line in head.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
            body = await reader.readexactly(length)
            out = json.dumps(handler(json.loads(body), None)).encode()
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(out), out))

    async def main() -> None:
        server = await asyncio.start_server(serve, "127.0.0.1", port)
        stop.append(server)
        ready.set()
        async with server:
            await server.serve_forever()

    import uvloop

    with contextlib.suppress(asyncio.CancelledError):
        uvloop.run(main())


def main() -> dict[str, Any]:
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        srv = start_server(Path(tmp) / "data", ["--no-egress"])
        try:
            lam = srv.client()
            lam.create_function(
                FunctionName="bench", Runtime="python3.11", Handler="app.handler",
                Role="arn:aws:iam::000000000000:role/bench",
                Code={"ZipFile": make_zip({"app.py": HANDLER})},
            )  # fmt: skip
            path = "/2015-03-31/functions/bench/invocations"
            body = b'{"x": 1}'
            _time_requests(srv.port, path, body, 200, sign=True)
            warm = _time_requests(srv.port, path, body, WARM_N, sign=True)

            cold: list[float] = []
            for i in range(COLD_N):
                lam.update_function_configuration(FunctionName="bench", Description=str(i))
                cold.extend(_time_requests(srv.port, path, body, 1, sign=True))
        finally:
            srv.stop()

    port = free_port()
    ready = threading.Event()
    holder: list[Any] = []
    t = threading.Thread(target=_baseline_server, args=(port, ready, holder), daemon=True)
    t.start()
    ready.wait(10)
    _time_requests(port, "/", body, 200, sign=False)
    base_warm = _time_requests(port, "/", body, WARM_N, sign=False)

    base_cold = []
    for _ in range(COLD_N):
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-I", "-c", "import json; print(json.dumps({}))"],
                       check=True, capture_output=True)  # fmt: skip
        base_cold.append((time.perf_counter() - t0) * 1000)

    rows = [
        ("warm invoke p50 (ms)", _pct(warm, 0.5), _pct(base_warm, 0.5), "bare asyncio server"),
        ("warm invoke p99 (ms)", _pct(warm, 0.99), _pct(base_warm, 0.99), "bare asyncio server"),
        ("cold start p50 (ms)", _pct(cold, 0.5), _pct(base_cold, 0.5), "fresh python3 -I"),
        ("cold start p99 (ms)", _pct(cold, 0.99), _pct(base_cold, 0.99), "fresh python3 -I"),
    ]
    print("| figure | hearth | baseline | ratio | baseline is |")
    print("|---|---|---|---|---|")
    for name, h, b, what in rows:
        print(f"| {name} | {h:.3f} | {b:.3f} | {h / b:.2f} | {what} |")
        results[name] = {"hearth": h, "baseline": b, "ratio": h / b, "baseline_is": what}
    results["warm_mean_ms"] = statistics.mean(warm)
    return results


if __name__ == "__main__":
    main()
