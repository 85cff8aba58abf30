"""SnapStart: a new environment forked from an initialized template, against an ordinary
cold start of the same function (same server, same run).

Each sample is the Invoke → response of a *new* environment: the handler ends its
environment shortly after answering (a timer calls ``os._exit``), so the next invoke,
200 ms later, needs a new one. Two functions: ``hello`` (nothing to initialize: what a
restore costs by itself) and ``heavy`` (Init imports a dozen standard modules and builds
a 200,000-entry table: what SnapStart saves).
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks._common import (
    INVOKE_PATH,
    ROLE,
    Row,
    hearth,
    pct,
    signed_headers,
    time_requests,
)
from tests.helpers import make_zip

N = 30
BODY = b"{}"
END_SOON = """
import os, threading
def handler(event, context):
    threading.Timer(0.05, os._exit, (0,)).start()  # a new environment for the next sample
    return {"ok": True}
"""
HEAVY_INIT = """
import asyncio, decimal, email.parser, http.client, json, logging, sqlite3, uuid
import xml.etree.ElementTree, urllib.request, zipfile, csv, statistics
TABLE = {i: str(i) * 3 for i in range(200_000)}
"""


def _samples(port: int, name: str, qualifier: str | None) -> list[float]:
    path = INVOKE_PATH.format(name=name)
    if qualifier:
        path += f"?Qualifier={qualifier}"
    out: list[float] = []
    for _ in range(N):
        headers = signed_headers(port, path, BODY)
        out.extend(time_requests(port, path, BODY, 1, headers))
        time.sleep(0.2)
    return out


def _create(lam: Any, name: str, code: str, **kw: Any) -> None:
    lam.create_function(
        FunctionName=name, Runtime="python3.12", Handler="app.handler", Role=ROLE,
        Code={"ZipFile": make_zip({"app.py": code})}, MemorySize=256, **kw,
    )  # fmt: skip


def run() -> list[Row]:
    rows: list[Row] = []
    with tempfile.TemporaryDirectory() as tmp, hearth(Path(tmp)) as srv:
        lam = srv.client()
        for label, code in (("hello", END_SOON), ("heavy Init", HEAVY_INIT + END_SOON)):
            plain, snap = f"plain-{label[:5]}", f"snap-{label[:5]}"
            _create(lam, plain, code)
            _create(lam, snap, code, SnapStart={"ApplyOn": "PublishedVersions"})
            version = lam.publish_version(FunctionName=snap)["Version"]
            time.sleep(2)  # the template initializes when the version is published
            cold = _samples(srv.port, plain, None)
            restored = _samples(srv.port, snap, version)
            for p, tag in ((0.5, "p50"), (0.99, "p99")):
                rows.append(
                    Row(
                        f"SnapStart new environment {tag} ({label})",
                        pct(restored, p),
                        pct(cold, p),
                        "ms",
                        "ordinary cold start of the same function (python3.12)",
                    )
                )
    return rows
