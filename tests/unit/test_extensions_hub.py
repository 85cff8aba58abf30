"""The Extensions API state machine of one environment (fast tier, no sandbox)."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path

from hearth.api.types import Request, Response
from hearth.worker.extensions_api import ExtensionsHub, FunctionInfo, extensions_in

INFO = FunctionInfo("fn", "$LATEST", "app.handler", "000000000000")


def _req(
    method: str, verb: str, headers: dict[str, str] | None = None, body: bytes = b""
) -> Request:
    return Request(method, f"/2020-01-01/extension/{verb}", "", headers or {}, body)


async def _register(hub: ExtensionsHub, name: str, events: list[str]) -> str:
    resp = await hub.handle(
        _req(
            "POST",
            "register",
            {"lambda-extension-name": name},
            json.dumps({"events": events}).encode(),
        )
    )
    assert resp.status == 200, resp.body
    return dict(resp.headers)["Lambda-Extension-Identifier"]


def _next(hub: ExtensionsHub, ext_id: str) -> asyncio.Task[Response]:
    return asyncio.ensure_future(
        hub.handle(_req("GET", "event/next", {"lambda-extension-identifier": ext_id}))
    )


def test_init_invoke_and_shutdown_ordering() -> None:
    async def main() -> None:
        fatal: list[tuple[str, str]] = []
        hub = ExtensionsHub(["a", "b"], INFO, lambda t, m: fatal.append((t, m)))
        ready = asyncio.ensure_future(hub.wait_ready())
        a = await _register(hub, "a", ["INVOKE", "SHUTDOWN"])
        b = await _register(hub, "b", ["SHUTDOWN"])
        na = _next(hub, a)
        await asyncio.sleep(0)
        assert not ready.done()  # b has not called next yet
        nb = _next(hub, b)
        await asyncio.wait_for(ready, 1)
        # Registration is closed once Init is over.
        late = await hub.handle(_req("POST", "register", {"lambda-extension-name": "c"}, b"{}"))
        assert late.status == 403 and b"Extension.RegistrationClosed" in late.body
        hub.dispatch_invoke("rid-1", 123, "arn:fn", "Root=1")
        event = json.loads((await asyncio.wait_for(na, 1)).body)
        assert event["eventType"] == "INVOKE" and event["requestId"] == "rid-1"
        assert not nb.done()  # b did not subscribe to INVOKE
        assert not hub.is_ready()  # a is still busy with rid-1
        na = _next(hub, a)
        await asyncio.sleep(0)
        assert hub.is_ready()
        shutdown = asyncio.ensure_future(hub.shutdown("spindown"))
        for task in (na, nb):
            doc = json.loads((await asyncio.wait_for(task, 1)).body)
            assert doc["eventType"] == "SHUTDOWN" and doc["shutdownReason"] == "spindown"
        _next(hub, a)
        exited = await hub.handle(
            _req("POST", "hearth/exited", {"lambda-extension-name": "b"}, b"0")
        )
        assert exited.status == 202
        await asyncio.wait_for(shutdown, 1)  # a called next, b exited: no 2 s wait
        hub.close()
        assert fatal == []

    asyncio.run(main())


def test_crash_before_register_is_fatal_during_init() -> None:
    async def main() -> None:
        fatal: list[tuple[str, str]] = []
        hub = ExtensionsHub(["x"], INFO, lambda t, m: fatal.append((t, m)))
        await hub.handle(_req("POST", "hearth/exited", {"lambda-extension-name": "x"}, b"3"))
        assert fatal == [
            ("Extension.Crash", "extension x exited before registering (exit status 3)")
        ]

    asyncio.run(main())


def test_extensions_in_counts_what_the_launcher_starts(tmp_path: Path) -> None:
    ext = tmp_path / "extensions"
    ext.mkdir()
    for name, mode in (("runs", 0o755), ("owner-only", 0o700), ("data", 0o644)):
        (ext / name).write_text("#!/bin/sh\n")
        os.chmod(ext / name, mode)
    (ext / "dir").mkdir(mode=0o755)
    assert extensions_in(str(tmp_path)) == ["runs"]
    assert extensions_in(None) == [] and extensions_in(str(tmp_path / "nope")) == []


def test_init_error_and_header_checks() -> None:
    async def main() -> None:
        fatal: list[tuple[str, str]] = []
        hub = ExtensionsHub(["a"], INFO, lambda t, m: fatal.append((t, m)))
        ext_id = await _register(hub, "a", [])
        missing = await hub.handle(
            _req("POST", "init/error", {"lambda-extension-identifier": ext_id})
        )
        assert missing.status == 403 and b"Extension.MissingHeader" in missing.body
        ok = await hub.handle(
            _req(
                "POST",
                "init/error",
                {
                    "lambda-extension-identifier": ext_id,
                    "lambda-extension-function-error-type": "Extension.Broken",
                },
            )
        )
        assert ok.status == 202 and ok.body == b'{"status":"OK"}'
        assert fatal == [
            ("Extension.InitError", "Extension a reported init error: Extension.Broken")
        ]
        dup = await hub.handle(_req("POST", "register", {"lambda-extension-name": "a"}, b"{}"))
        assert dup.status == 403 and b"Extension.InvalidExtensionState" in dup.body

    asyncio.run(main())
