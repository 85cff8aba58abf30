"""Density: idle (frozen) environments of a small Python function, and what each costs.

N invokes of a function that holds until a common release time are sent at once, so N
distinct environments start; after the release they go idle and are frozen. Then, for
the environments that answered (each reports its own cgroup):

* PSS per environment: the proportional set size of its processes (shared pages split
  among their sharers), from ``/proc/<pid>/smaps_rollup``;
* cgroup memory per environment: the memory cgroup's usage (includes page cache);
* host memory per environment: the drop of ``MemAvailable`` from before the first start
  to after the freeze, divided by N (everything: server-side state, sockets, loop /tmp).

Baseline: idle fresh ``python3 -I -S`` processes that imported json (PSS each).
N is ``BENCH_DENSITY_N`` (default 300; the target is 5,000), capped so that the host
keeps half of its available memory; the server's capacity is configured to allow N.
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

N = int(os.environ.get("BENCH_DENSITY_N", "300"))
CODE = """
import json, time
def handler(event, context):
    time.sleep(max(0.0, event["until"] - time.time()))
    return {"cgroup": open("/proc/self/cgroup").read()}
"""


def _meminfo(key: str) -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) * 1024
    return 0


def _pss(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def _paths(cgroup_text: str) -> dict[str, str]:
    out = {}
    for line in cgroup_text.splitlines():
        _, ctrls, path = line.split(":", 2)
        for c in ctrls.split(","):
            out[c] = path
    return out


def _env_memory(cgroup_text: str) -> tuple[int, int, bool]:
    """(PSS bytes, cgroup usage bytes, frozen) of one environment (cgroup v1 or v2)."""
    p = _paths(cgroup_text)
    root = Path("/sys/fs/cgroup")
    if "memory" in p:
        mem = root / "memory" / p["memory"].lstrip("/")
        usage = int((mem / "memory.usage_in_bytes").read_text())
        procs = (mem / "cgroup.procs").read_text().split()
        frozen = (root / "freezer" / p["freezer"].lstrip("/") / "freezer.state").read_text()
        is_frozen = frozen.strip() == "FROZEN"
    else:
        d = root / p[""].lstrip("/")
        usage = int((d / "memory.current").read_text())
        procs = (d / "cgroup.procs").read_text().split()
        is_frozen = "frozen 1" in (d / "cgroup.events").read_text()
    return sum(_pss(int(pid)) for pid in procs), usage, is_frozen


def _baseline_pss(n: int) -> float:
    py = os.path.realpath(sys.executable)
    procs = [
        subprocess.Popen(
            [py, "-I", "-S", "-c", "import json, sys; sys.stdout.write('r'); sys.stdout.flush();"
             " sys.stdin.read()"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
        )
        for _ in range(n)
    ]  # fmt: skip
    for p in procs:
        assert p.stdout is not None
        p.stdout.read(1)
    total = sum(_pss(p.pid) for p in procs)
    for p in procs:
        p.kill()
        p.wait()
    return total / n


def run() -> list[Row]:
    available = _meminfo("MemAvailable")
    n = max(10, min(N, int(available / 2 / (12 * 1024 * 1024))))
    env = {"HEARTH_ACCOUNT_CONCURRENCY": str(n + 100)}
    args = ["--memory-capacity-mb", str((n + 10) * 128), "--idle-timeout", "3600"]
    with tempfile.TemporaryDirectory() as tmp, hearth(Path(tmp), *args, env=env) as srv:
        create(srv, "dense", CODE, MemorySize=128, Timeout=900)
        path = INVOKE_PATH.format(name="dense")
        before = _meminfo("MemAvailable")
        hold = 20 + n * 0.12
        body = json.dumps({"until": time.time() + hold}).encode()
        headers = signed_headers(srv.port, path, body)
        t0 = time.perf_counter()
        results = fire(srv.port, path, headers, body, n)
        took = time.perf_counter() - t0
        docs = [json.loads(r[1]) for r in results if isinstance(r, tuple) and r[0] == 200]
        cgroups = {d["cgroup"] for d in docs if isinstance(d, dict) and "cgroup" in d}
        failed = [r for r in results if not (isinstance(r, tuple) and b'"cgroup"' in r[1])]
        if failed:
            print(f"density: {len(failed)} invokes failed, e.g. {failed[0]!r:.300}")
        time.sleep(3)  # idle → frozen
        mems = [_env_memory(c) for c in cgroups]
        after = _meminfo("MemAvailable")
    count = len(cgroups)
    frozen = sum(1 for m in mems if m[2])
    pss = sum(m[0] for m in mems) / max(count, 1) / 2**20
    usage = sum(m[1] for m in mems) / max(count, 1) / 2**20
    host = (before - after) / max(count, 1) / 2**20
    base = _baseline_pss(min(n, 100)) / 2**20
    print(f"density: {count}/{n} environments up in {took:.1f} s, {frozen} frozen")
    what = "idle fresh python3 -I -S (PSS)"
    return [
        Row(f"density: idle frozen environments ({frozen} frozen)", count, None, "envs",
            f"asked for {n}", "≥ 5,000"),
        Row("density: PSS per environment", pss, base, "MiB", what, "≤ 2 MiB"),
        Row("density: cgroup memory per environment", usage, base, "MiB", what),
        Row("density: host MemAvailable drop per environment", host, base, "MiB", what),
    ]  # fmt: skip
