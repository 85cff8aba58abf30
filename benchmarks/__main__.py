"""``make bench``: run every benchmark, print one markdown table, save JSON results.

Each figure is measured next to a baseline in the same run on the same machine (see each
``bench_*`` module). ``BENCH_ONLY=invoke,burst`` runs a subset.
"""

from __future__ import annotations

import json
import os
import platform
import time
from pathlib import Path

from benchmarks import (
    bench_burst,
    bench_density,
    bench_invoke,
    bench_node_cold,
    bench_queues,
    bench_sigv4,
    bench_snapstart,
    bench_throughput,
)
from benchmarks._common import Row, table

QUIET_IDLE = 0.85  # fraction of CPU time idle that counts as a quiet host
QUIET_WAIT = float(os.environ.get("BENCH_QUIET_WAIT", "30"))


def _cpu_times() -> tuple[int, int]:
    """(idle + iowait, total) jiffies of all CPUs, from /proc/stat."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return fields[3] + fields[4], sum(fields[:8])


def wait_quiet() -> float:
    """Wait (up to ``BENCH_QUIET_WAIT`` s) until the host is idle for two 0.5 s windows
    in a row; return the last window's idle fraction.

    A suite's server and sandboxes are gone when it returns, but the kernel still tears
    down their namespaces, cgroups and mounts for a while: a suite started right away
    measured ~half its throughput (one connection right after the Node suite). Waiting
    also keeps a run's figures apart from whatever else the host does.
    """
    deadline = time.monotonic() + QUIET_WAIT
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


SUITES = {
    "invoke": bench_invoke.run,
    "node": bench_node_cold.run,
    "throughput": bench_throughput.run,
    "burst": bench_burst.run,
    "density": bench_density.run,
    "snapstart": bench_snapstart.run,
    "queues": bench_queues.run,
}


def main() -> None:
    out = Path(__file__).resolve().parent / "results"
    out.mkdir(exist_ok=True)
    only = [s for s in os.environ.get("BENCH_ONLY", "").split(",") if s]
    if not only or "sigv4" in only:
        print("## SigV4 verification\n")
        bench_sigv4.main()
    rows: list[Row] = []
    quiet: dict[str, float] = {}
    for name, run in SUITES.items():
        if only and name not in only:
            continue
        idle = wait_quiet()
        note = "" if idle >= QUIET_IDLE else f" (host still busy: {idle:.0%} idle)"
        print(f"\n… {name}{note}", flush=True)
        quiet[name] = round(idle, 3)
        rows.extend(run())
    print("\n## Hearth against same-run baselines\n")
    print(table(rows))
    stamp = time.strftime("%Y%m%dT%H%M%S")
    doc = {
        "when": stamp,
        "host": {"cpus": os.cpu_count(), "kernel": platform.release()},
        "idle_before_suite": quiet,
        "rows": [r.as_dict() for r in rows],
    }
    (out / f"bench-{stamp}.json").write_text(json.dumps(doc, indent=2))


if __name__ == "__main__":
    main()
