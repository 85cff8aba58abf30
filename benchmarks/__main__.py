"""``make bench``: run every benchmark, print their tables, save JSON results."""

from __future__ import annotations

import json
import time
from pathlib import Path

from benchmarks import bench_invoke, bench_sigv4


def main() -> None:
    out = Path(__file__).resolve().parent / "results"
    out.mkdir(exist_ok=True)
    print("## SigV4 verification\n")
    bench_sigv4.main()
    print("\n## Invoke latency\n")
    results = bench_invoke.main()
    stamp = time.strftime("%Y%m%dT%H%M%S")
    (out / f"invoke-{stamp}.json").write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
