"""Shared pieces of the benchmarks: a Hearth server, a bare baseline server, timing, rows.

Every figure is a :class:`Row`: Hearth's number and a baseline's, measured in the same
run on the same machine, with their ratio and the target from ``PRODUCT.md``.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.helpers import ServerProcess, free_port, make_zip, start_server  # noqa: E402

ROLE = "arn:aws:iam::000000000000:role/bench"
HELLO = "def handler(event, context):\n    return {'hello': event}\n"
INVOKE_PATH = "/2015-03-31/functions/{name}/invocations"


QUIET_IDLE = 0.85  # fraction of CPU time idle that counts as a quiet host
QUIET_WAIT = float(os.environ.get("BENCH_QUIET_WAIT", "30"))
"""Seconds to wait for a quiet host at most (then measure anyway, and say so)."""


def _cpu_times() -> tuple[int, int]:
    """(idle + iowait, total) jiffies of all CPUs, from /proc/stat."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return fields[3] + fields[4], sum(fields[:8])


def wait_quiet(limit: float = QUIET_WAIT) -> float:
    """Wait (up to ``limit`` s) until the host is idle for two 0.5 s windows
    in a row; return the last window's idle fraction.

    A suite's server and sandboxes are gone when it returns, but the kernel still tears
    down their namespaces, cgroups and mounts for a while: a suite started right away
    measured ~half its throughput (one connection right after the Node suite). Waiting
    also keeps a run's figures apart from whatever else the host does.
    """
    deadline = time.monotonic() + limit
    quiet = 0
    idle = 0.0
    while True:
        i0, t0 = _cpu_times()
        time.sleep(0.5)
        i1, t1 = _cpu_times()
        idle = (i1 - i0) / max(t1 - t0, 1)
        quiet = quiet + 1 if idle >= QUIET_IDLE else 0
        if quiet >= 2 or time.monotonic() > deadline:
            return idle


@dataclass
class Row:
    figure: str
    hearth: float
    baseline: float | None
    unit: str
    baseline_is: str
    target: str = ""

    @property
    def ratio(self) -> float | None:
        if self.baseline in (None, 0):
            return None
        return self.hearth / self.baseline

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["ratio"] = self.ratio
        return d


def table(rows: list[Row]) -> str:
    out = [
        "| figure | Hearth | baseline | ratio | target | baseline is |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        base = "—" if r.baseline is None else f"{r.baseline:.3f}"
        ratio = "—" if r.ratio is None else f"{r.ratio:.2f}"
        out.append(
            f"| {r.figure} ({r.unit}) | {r.hearth:.3f} | {base} | {ratio} | {r.target} |"
            f" {r.baseline_is} |"
        )
    return "\n".join(out)


def pct(samples: list[float], p: float) -> float:
    s = sorted(samples)
    return s[min(len(s) - 1, int(len(s) * p))]


def signed_headers(port: int, path: str, body: bytes) -> dict[str, str]:
    """SigV4 headers of a POST, signed before any timer starts (a valid replayable request)."""
    req = AWSRequest(method="POST", url=f"http://127.0.0.1:{port}{path}", data=body)
    SigV4Auth(Credentials("test", "test"), "lambda", "us-east-1").add_auth(req)
    headers = dict(req.prepare().headers)
    headers["Content-Type"] = "application/json"
    return headers


def time_requests(
    port: int, path: str, body: bytes, n: int, headers: dict[str, str]
) -> list[float]:
    """n sequential POSTs on one keep-alive connection; latency of each in ms."""
    conn = http.client.HTTPConnection("127.0.0.1", port)
    samples = []
    for _ in range(n):
        t0 = time.perf_counter()
        conn.request("POST", path, body=body, headers=headers)
        resp = conn.getresponse()
        resp.read()
        samples.append((time.perf_counter() - t0) * 1000)
        if resp.status != 200:
            raise RuntimeError(f"status {resp.status}")
    conn.close()
    return samples


def cpu_seconds(pid: int) -> float:
    """User + system CPU of one process (all its threads) so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@contextlib.contextmanager
def hearth(
    tmp: Path, *args: str, env: dict[str, str] | None = None, stop_timeout: float = 30
) -> Iterator[ServerProcess]:
    """A server for one suite; stopped (SIGTERM) within ``stop_timeout`` s, else killed:
    a killed server leaves its sandboxes' cgroups behind (and, on cgroup v1, its frozen
    sandboxes, which take no SIGKILL while frozen) until a server of the same cgroup root
    sweeps them, and each run here has a root of its own."""
    srv = start_server(tmp / "data", ["--no-egress", *args], env=env, timeout=60)
    try:
        # A new server starts a zygote per Python runtime and Node spares in the
        # background: ~a second of both CPUs, which the first figures measured too
        # (the burst "from zero" competed with four other runtimes' start-ups).
        wait_quiet(10)
        yield srv
    finally:
        srv.stop(timeout=stop_timeout)


def create(srv: ServerProcess, name: str, code: str = HELLO, **kw: Any) -> None:
    kw.setdefault("Runtime", "python3.11")
    srv.client().create_function(
        FunctionName=name,
        Handler="app.handler",
        Role=ROLE,
        Code={"ZipFile": make_zip({"app.py": code})},
        **kw,
    )


@contextlib.contextmanager
def bare_server() -> Iterator[int]:
    """The baseline: a bare asyncio (uvloop) HTTP server calling the handler in-process."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "benchmarks._bare", str(port)],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/", data=b"{}", timeout=1)
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        yield port
    finally:
        proc.terminate()
        proc.wait(10)


def bare_pid_of(port: int) -> int:
    """The pid of the process listening on ``port`` (for CPU accounting of the baseline)."""
    out = subprocess.run(
        ["ss", "-Hltnp", f"sport = :{port}"], capture_output=True, text=True, check=True
    ).stdout
    return int(out.split("pid=")[1].split(",")[0])


async def _one(port: int, path: str, headers: dict[str, str], body: bytes) -> tuple[int, bytes]:
    import asyncio

    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    head = [f"POST {path} HTTP/1.1", f"Host: 127.0.0.1:{port}", f"Content-Length: {len(body)}"]
    head += [f"{k}: {v}" for k, v in headers.items() if k.lower() not in ("host", "content-length")]
    writer.write(("\r\n".join(head) + "\r\n\r\n").encode() + body)
    raw = await reader.readuntil(b"\r\n\r\n")
    status = int(raw.split(b" ", 2)[1])
    length = 0
    for line in raw.split(b"\r\n"):
        if line[:15].lower() == b"content-length:":
            length = int(line[15:])
    payload = await reader.readexactly(length)
    writer.close()
    return status, payload


def fire(port: int, path: str, headers: dict[str, str], body: bytes, n: int) -> list[Any]:
    """n identical POSTs at once, each on its own connection: [(status, body) | exception]."""
    import asyncio

    async def main() -> list[Any]:
        return await asyncio.gather(
            *(_one(port, path, headers, body) for _ in range(n)), return_exceptions=True
        )

    return asyncio.run(main())
