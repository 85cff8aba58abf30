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
from benchmarks._common import QUIET_IDLE, Row, table, wait_quiet

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
