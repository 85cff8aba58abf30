"""Node cold start with spares (exec-path stems, :mod:`hearth.sandbox.stems`) and without.

Two servers run side by side, one with the default pools and one with
``HEARTH_STEM_POOL=0``; samples alternate between them (which one goes first alternates
too), with a pause after each so that a spare taken is made again before the next sample,
as it would be between two cold starts that are not a burst. A sample is Invoke → response
of a new environment (the function's configuration changes before each), as in
:mod:`benchmarks.bench_invoke`.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

from benchmarks._common import INVOKE_PATH, ROLE, Row, hearth, pct, signed_headers, time_requests
from hearth.runtimes.node import discover_node
from tests.helpers import ServerProcess, make_zip

N = int(os.environ.get("BENCH_NODE_COLD_N", "40"))
BODY = b'{"x": 1}'
INDEX = "exports.handler = async (event) => ({hello: event});\n"
PAUSE = 0.3


def _sampler(srv: ServerProcess, runtime: str) -> tuple[object, list[float]]:
    lam = srv.client()
    lam.create_function(
        FunctionName="node",
        Runtime=runtime,
        Handler="index.handler",
        Role=ROLE,
        Code={"ZipFile": make_zip({"index.js": INDEX})},
    )
    return lam, []


def run() -> list[Row]:
    runtimes = sorted(discover_node(), key=lambda n: int(n[6:-2]))
    if not runtimes:
        return []
    runtime = runtimes[-1]
    path = INVOKE_PATH.format(name="node")
    with (
        tempfile.TemporaryDirectory() as tmp_a,
        tempfile.TemporaryDirectory() as tmp_b,
        hearth(Path(tmp_a)) as spares,
        hearth(Path(tmp_b), env={"HEARTH_STEM_POOL": "0"}) as plain,
    ):
        servers = [spares, plain]
        clients = [_sampler(s, runtime) for s in servers]
        headers = [signed_headers(s.port, path, BODY) for s in servers]
        for s, h in zip(servers, headers, strict=True):  # the first start makes the pool
            time_requests(s.port, path, BODY, 1, h)
        time.sleep(1.0)
        for i in range(N):
            order = (0, 1) if i % 2 == 0 else (1, 0)
            for k in order:
                lam, samples = clients[k]
                lam.update_function_configuration(  # type: ignore[attr-defined]
                    FunctionName="node", Description=str(i)
                )
                samples.extend(time_requests(servers[k].port, path, BODY, 1, headers[k]))
                time.sleep(PAUSE)
    with_spares, without = clients[0][1], clients[1][1]
    what = f"{runtime}, same server with HEARTH_STEM_POOL=0 (interleaved)"
    return [
        Row(f"{runtime} cold start p50", pct(with_spares, 0.5), pct(without, 0.5), "ms", what),
        Row(f"{runtime} cold start p99", pct(with_spares, 0.99), pct(without, 0.99), "ms", what),
    ]
