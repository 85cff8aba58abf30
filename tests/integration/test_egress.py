"""Outbound network from a function, through a server with egress on (the default).

The "outside" is a network namespace this test builds (``ip netns add``) behind a veth
pair with addresses from 198.18.0.0/15 (the benchmarking range): no real or foreign
address is ever contacted.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import invoke_json
from tests.helpers import ServerProcess, make_zip, start_server
from tests.netns import PORT, outside_namespace

HOST_IP = "198.18.91.1"

CLIENT = """
import socket
def attempt(host, port):
    try:
        c = socket.create_connection((host, port), timeout=2)
        data = c.makefile().readline().strip()
        c.close()
        return data or "connected"
    except OSError as e:
        return type(e).__name__
def handler(event, context):
    return {f"{h}:{p}": attempt(h, p) for h, p in event["targets"]}
"""


@pytest.fixture
def outside(tmp_path: Path) -> Iterator[str]:
    with outside_namespace(tmp_path, 91, "it") as (host_ip, outside_ip):
        assert host_ip == HOST_IP
        yield outside_ip


@pytest.fixture
def egress_server(tmp_path: Path) -> Iterator[ServerProcess]:
    srv = start_server(tmp_path / "data")  # egress is the default
    yield srv
    srv.stop()


def test_function_reaches_outside_but_not_host(egress_server: Any, outside: str) -> None:
    lam = egress_server.client()
    lam.create_function(
        FunctionName="egress-fn", Runtime="python3.11", Handler="app.handler",
        Role="arn:aws:iam::000000000000:role/r", Timeout=30,
        Code={"ZipFile": make_zip({"app.py": CLIENT})},
    )  # fmt: skip
    host_listener = socket.socket()
    host_listener.bind(("0.0.0.0", 0))
    host_listener.listen()
    host_port = host_listener.getsockname()[1]
    targets = [
        [outside, PORT],
        ["127.0.0.1", egress_server.port],
        [HOST_IP, egress_server.port],
        [HOST_IP, host_port],
    ]
    try:
        _, r = invoke_json(lam, "egress-fn", {"targets": targets})
    finally:
        host_listener.close()
    assert r[f"{outside}:{PORT}"].startswith("pong from ")
    # The outside sees the host's NAT address, not the sandbox's private one.
    assert r[f"{outside}:{PORT}"] == f"pong from {HOST_IP}"
    assert r[f"127.0.0.1:{egress_server.port}"] != "connected"
    assert not r[f"{HOST_IP}:{egress_server.port}"].startswith("pong")
    assert r[f"{HOST_IP}:{egress_server.port}"] in (
        "TimeoutError",
        "ConnectionRefusedError",
        "OSError",
    )
    assert r[f"{HOST_IP}:{host_port}"] in ("TimeoutError", "ConnectionRefusedError", "OSError")


def test_no_egress_setting(tmp_path: Path, outside: str) -> None:
    srv = start_server(tmp_path / "data", ["--no-egress"])
    try:
        lam = srv.client()
        lam.create_function(
            FunctionName="noegress-fn", Runtime="python3.11", Handler="app.handler",
            Role="arn:aws:iam::000000000000:role/r", Timeout=30,
            Code={"ZipFile": make_zip({"app.py": CLIENT})},
        )  # fmt: skip
        _, r = invoke_json(lam, "noegress-fn", {"targets": [[outside, PORT]]})
        assert not r[f"{outside}:{PORT}"].startswith("pong")
    finally:
        srv.stop()
