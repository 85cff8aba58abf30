"""``network="egress"``: out through NAT to an "outside" the test builds itself, nothing else.

The outside is a network namespace made here (``ip netns add``) behind a veth pair with
addresses from 198.18.0.0/15 (the benchmarking range): no real or foreign address is
ever contacted.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.netns import PORT, outside_namespace
from tests.sandbox.conftest import Harness, exchange

HOST_IP, OUTSIDE_IP = "198.18.77.1", "198.18.77.2"


def host_address() -> str:
    """An IPv4 address of the host on an interface this test did not make (the uplink)."""
    out = subprocess.run(
        ["ip", "-4", "-o", "addr", "show", "scope", "global"], capture_output=True, text=True
    ).stdout
    for line in out.splitlines():
        name, addr = line.split()[1], line.split()[3].split("/")[0]
        if not name.startswith(("hz", "hsb", "hit")):  # sandbox and test veths
            return addr
    pytest.skip("the host has no global IPv4 address")


@pytest.fixture
def outside(tmp_path: Path) -> Iterator[str]:
    """A TCP server at OUTSIDE_IP:8080 in a private netns, routed from the host."""
    with outside_namespace(tmp_path, 77, "sb") as (_, outside_ip):
        yield outside_ip


CLIENT = """
def attempt(host, port):
    try:
        c = socket.create_connection((host, port), timeout=1)
        data = c.makefile().readline().strip()
        c.close()
        return data or "connected"
    except OSError as e:
        return type(e).__name__
targets = json.loads(os.environ["TARGETS"])
report({
    "ifaces": sorted(n for _, n in socket.if_nameindex()),
    "results": {name: attempt(h, p) for name, (h, p) in targets.items()},
})
"""

LISTENER = """
s = socket.socket()
s.bind(("0.0.0.0", 7000))
s.listen()
report({})
s.settimeout(60)
c, _ = s.accept()
c.sendall(b"leak\\n")
"""


def test_egress_reaches_outside_only(harness: Harness, outside: str) -> None:
    host_listener = socket.socket()
    host_listener.bind(("0.0.0.0", 0))  # every host address, e.g. where the API listens
    host_listener.listen()
    host_port = host_listener.getsockname()[1]
    uplink = host_address()

    async def main() -> dict[str, str]:
        other = await harness.start(LISTENER, network="egress")
        try:
            await exchange(other)
            assert other.egress_address is not None
            targets = {
                "outside": [outside, PORT],
                "host_test_if": [HOST_IP, host_port],
                "host_uplink": [uplink, host_port],
                "other_sandbox": [other.egress_address, 7000],
            }
            env = {"TARGETS": json.dumps(targets), "LANG": "C.UTF-8"}
            p = await harness.probe(CLIENT, network="egress", env=env)
            assert p.exit.returncode == 0, p.output
            assert p.report["ifaces"] == ["eth0", "lo"]
            return dict(p.report["results"])
        finally:
            await other.kill()

    with host_listener:
        results = asyncio.run(main())
    assert results["outside"] == f"pong from {HOST_IP}"  # through NAT
    # dropped by the firewall (a refusal would mean the packets arrived)
    assert results["host_test_if"] == "TimeoutError"
    assert results["host_uplink"] == "TimeoutError"
    assert results["other_sandbox"] == "TimeoutError"
    leftover = [
        n for n in os.listdir("/sys/class/net") if n.startswith("hz" + harness.backend.network.tag)
    ]
    assert leftover == []
