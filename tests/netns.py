"""An "outside" for egress tests: a network namespace the test builds itself.

A veth pair joins the host to a namespace that runs a tiny TCP server answering
``pong from <peer address>``. Addresses come from 198.18.0.0/15 (the benchmarking
range), so no real or foreign address is ever contacted.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

PORT = 8080

_SERVER = """
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


def ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True)


@contextlib.contextmanager
def outside_namespace(workdir: Path, subnet: int, tag: str) -> Iterator[tuple[str, str]]:
    """Yield (host-side address, outside address) of ``198.18.<subnet>.0/30``."""
    ns = f"hearth-{tag}-{os.getpid()}"
    host_if, ns_if = f"h{tag[:2]}e{os.getpid() % 100000}", f"h{tag[:2]}i{os.getpid() % 100000}"
    host_ip, outside_ip = f"198.18.{subnet}.1", f"198.18.{subnet}.2"
    ip("netns", "add", ns)
    proc = None
    try:
        ip("link", "add", host_if, "type", "veth", "peer", ns_if)
        ip("link", "set", ns_if, "netns", ns)
        ip("addr", "add", f"{host_ip}/30", "dev", host_if)
        ip("link", "set", host_if, "up")
        Path(f"/proc/sys/net/ipv4/conf/{host_if}/forwarding").write_text("1")  # replies
        ip("-n", ns, "addr", "add", f"{outside_ip}/30", "dev", ns_if)
        ip("-n", ns, "link", "set", ns_if, "up")
        ip("-n", ns, "link", "set", "lo", "up")
        script = workdir / f"outside-{tag}.py"
        script.write_text(_SERVER)
        proc = subprocess.Popen(["ip", "netns", "exec", ns, sys.executable, "-I", str(script)])
        for _ in range(250):
            r = subprocess.run(
                ["ip", "netns", "exec", ns, "ss", "-ltn", "sport", "= :8080"],
                capture_output=True,
                text=True,
            )
            if ":8080" in r.stdout:
                break
            time.sleep(0.02)
        yield host_ip, outside_ip
    finally:
        if proc is not None:
            proc.kill()
            proc.wait()
        subprocess.run(["ip", "link", "del", host_if], capture_output=True)
        ip("netns", "del", ns)
