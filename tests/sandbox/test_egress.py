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
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.sandbox.conftest import Harness, exchange

NS = f"hearth-egress-{os.getpid()}"
HOST_IF, NS_IF = f"hte{os.getpid() % 100000}", f"hti{os.getpid() % 100000}"
HOST_IP, OUTSIDE_IP, PORT = "198.18.77.1", "198.18.77.2", 8080

SERVER = """
import socket
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", 8080))
s.listen()
while True:
    c, addr = s.accept()
    c.sendall(("pong from " + addr[0] + "\\n").encode())
    c.close()
"""


def host_address() -> str:
    """An IPv4 address of the host on an interface this test did not make (the uplink)."""
    out = subprocess.run(
        ["ip", "-4", "-o", "addr", "show", "scope", "global"], capture_output=True, text=True
    ).stdout
    for line in out.splitlines():
        name, addr = line.split()[1], line.split()[3].split("/")[0]
        if not name.startswith(("hz", "ht")):
            return addr
    pytest.skip("the host has no global IPv4 address")


def ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True)


@pytest.fixture
def outside(tmp_path: Path) -> Iterator[str]:
    """A TCP server at OUTSIDE_IP:8080 in a private netns, routed from the host."""
    ip("netns", "add", NS)
    server = None
    try:
        ip("link", "add", HOST_IF, "type", "veth", "peer", NS_IF)
        ip("link", "set", NS_IF, "netns", NS)
        ip("addr", "add", f"{HOST_IP}/30", "dev", HOST_IF)
        ip("link", "set", HOST_IF, "up")
        Path(f"/proc/sys/net/ipv4/conf/{HOST_IF}/forwarding").write_text("1")  # replies
        ip("-n", NS, "addr", "add", f"{OUTSIDE_IP}/30", "dev", NS_IF)
        ip("-n", NS, "link", "set", NS_IF, "up")
        ip("-n", NS, "link", "set", "lo", "up")
        (tmp_path / "server.py").write_text(SERVER)
        server = subprocess.Popen(
            ["ip", "netns", "exec", NS, sys.executable, "-I", str(tmp_path / "server.py")]
        )
        for _ in range(100):
            r = subprocess.run(
                ["ip", "netns", "exec", NS, "ss", "-ltn", "sport", "= :8080"],
                capture_output=True,
                text=True,
            )
            if ":8080" in r.stdout:
                break
            asyncio.run(asyncio.sleep(0.02))
        yield OUTSIDE_IP
    finally:
        if server is not None:
            server.kill()
            server.wait()
        subprocess.run(["ip", "link", "del", HOST_IF], capture_output=True)
        ip("netns", "del", NS)


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
