"""Outbound-only networking for ``network="egress"`` sandboxes: one veth pair + NAT each.

Per sandbox a /30 from ``egress_subnet`` (``BackendConfig.extra``, default
``10.213.0.0/16``): the host end gets ``.1``, the sandbox end (renamed ``eth0`` inside
its netns) ``.2`` with a default route via ``.1``. IPv6 is disabled on both ends (the
filter below is IPv4 only, and a link-local v6 address would otherwise reach the host).

Policy, in chains of this backend (``iptables`` argv lists, never a shell), jumped to
from the top of the built-in chains, matching every sandbox interface (``hz+``):

* ``INPUT``: anything from a sandbox interface to the host itself is dropped -- the
  host's addresses, all its ports (the platform API), its other interfaces.
* ``FORWARD``: sandbox → sandbox is dropped; sandbox → link-local (cloud metadata),
  RFC 1918 and CGNAT ranges is dropped; sandbox → anywhere else is accepted; traffic
  into a sandbox interface is accepted only for established connections.
* ``nat POSTROUTING``: the subnet is masqueraded on its way out.

Forwarding is switched on for the sandbox interfaces (``conf.<if>.forwarding``); the
uplink must forward too, so when egress is installed and ``net.ipv4.ip_forward`` is 0 the
backend turns it on and logs that it did (as container engines do). The FORWARD rules
above still limit what crosses: only sandbox traffic to the outside.

Chain and interface names carry a per-backend tag (from root name and state dir), so a
backend only ever installs or removes its own; several egress-using backends on one host
still need distinct ``egress_subnet`` values.
"""

from __future__ import annotations

import asyncio
import hashlib
import ipaddress
import logging
import os
import shutil
import subprocess
from typing import Any

from hearth.errors import SandboxError
from hearth.sandbox.base import BackendConfig

log = logging.getLogger(__name__)

IF_PREFIX = "hz"
BLOCKED = ("169.254.0.0/16", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10")


def _run(argv: list[str]) -> None:
    res = subprocess.run(argv, capture_output=True, text=True, check=False)
    if res.returncode != 0:
        raise SandboxError(f"{' '.join(argv)}: {res.stderr.strip() or res.returncode}")


def _sysctl(path: str, value: str) -> None:
    with open(f"/proc/sys/{path}", "w") as f:
        f.write(value)


class EgressNetwork:
    """The veth pair of one sandbox."""

    def __init__(self, mgr: EgressManager, slot: int) -> None:
        self.mgr = mgr
        self.slot = slot
        net = mgr.subnet.network_address + 4 * slot
        self.host_ip = ipaddress.IPv4Address(int(net) + 1)
        self.inner_ip = ipaddress.IPv4Address(int(net) + 2)
        self.host_if = f"{IF_PREFIX}{mgr.tag}{slot:04x}"
        self.peer_if = f"{IF_PREFIX}{mgr.tag}{slot:04x}p"
        self._created = False

    def create(self) -> None:
        _run([self.mgr.ip, "link", "add", self.host_if, "type", "veth", "peer", self.peer_if])
        self._created = True
        _sysctl(f"net/ipv6/conf/{self.host_if}/disable_ipv6", "1")
        _run([self.mgr.ip, "addr", "add", f"{self.host_ip}/30", "dev", self.host_if])
        _run([self.mgr.ip, "link", "set", self.host_if, "up"])
        _sysctl(f"net/ipv4/conf/{self.host_if}/forwarding", "1")

    async def attach(self, pid: int) -> None:
        """Move the sandbox end into the netns of process ``pid``."""
        argv = [self.mgr.ip, "link", "set", self.peer_if, "netns", str(pid)]
        await asyncio.get_running_loop().run_in_executor(None, _run, argv)

    def inner_config(self) -> dict[str, Any]:
        """What the launcher needs to configure its end (see ``_nsinit.configure_egress``)."""
        return {
            "ip_bin": self.mgr.ip,
            "ifname": self.peer_if,
            "address": f"{self.inner_ip}/30",
            "gateway": str(self.host_ip),
        }

    def remove(self) -> None:
        """Delete the pair (deleting one end deletes both; gone already if the netns died)."""
        try:
            if self._created and os.path.exists(f"/sys/class/net/{self.host_if}"):
                try:
                    _run([self.mgr.ip, "link", "del", self.host_if])
                except SandboxError:
                    # The kernel removes the pair itself when the sandbox's netns goes,
                    # asynchronously: it may have done so since the check above.
                    if os.path.exists(f"/sys/class/net/{self.host_if}"):
                        raise
        finally:
            self.mgr.release(self.slot)


class EgressManager:
    """Slots, interface names and the shared firewall chains of one backend."""

    def __init__(self, config: BackendConfig) -> None:
        self.subnet = ipaddress.IPv4Network(config.extra.get("egress_subnet", "10.213.0.0/16"))
        ident = f"{config.cgroup_root_name}\0{os.path.realpath(config.state_dir)}"
        self.tag = hashlib.sha256(ident.encode()).hexdigest()[:5]
        """Per-backend (root name + state dir) part of interface and chain names."""
        base = f"HEARTH-{self.tag}"
        self.chains = {"filter_in": f"{base}-IN", "filter_fwd": f"{base}-FWD", "nat": f"{base}-NAT"}
        self.ip = shutil.which("ip") or "/usr/sbin/ip"
        self.iptables = shutil.which("iptables") or "/usr/sbin/iptables"
        self._used: set[int] = set()
        self._installed = False
        self._install_lock = asyncio.Lock()

    def release(self, slot: int) -> None:
        self._used.discard(slot)

    def _slot(self) -> int:
        for slot in range(self.subnet.num_addresses // 4):
            if slot not in self._used:
                self._used.add(slot)
                return slot
        raise SandboxError(f"egress subnet {self.subnet} is exhausted")

    def _rules(self) -> list[tuple[str, str, list[str]]]:
        """(table, chain, rule) for the backend's chains; jumps are added separately."""
        cin, fwd, nat = self.chains["filter_in"], self.chains["filter_fwd"], self.chains["nat"]
        sb = f"{IF_PREFIX}+"
        rules: list[tuple[str, str, list[str]]] = [("filter", cin, ["-i", sb, "-j", "DROP"])]
        rules.append(("filter", fwd, ["-i", sb, "-o", sb, "-j", "DROP"]))
        rules += [("filter", fwd, ["-i", sb, "-d", net, "-j", "DROP"]) for net in BLOCKED]
        rules.append(("filter", fwd, ["-i", sb, "-j", "ACCEPT"]))
        est = ["-m", "conntrack", "--ctstate", "ESTABLISHED,RELATED", "-j", "ACCEPT"]
        rules.append(("filter", fwd, ["-o", sb, *est]))
        rules.append(("filter", fwd, ["-o", sb, "-j", "DROP"]))
        rules.append(("nat", nat, ["-s", str(self.subnet), "!", "-o", sb, "-j", "MASQUERADE"]))
        return rules

    def _jumps(self) -> list[tuple[str, str, str]]:
        return [
            ("filter", "INPUT", self.chains["filter_in"]),
            ("filter", "FORWARD", self.chains["filter_fwd"]),
            ("nat", "POSTROUTING", self.chains["nat"]),
        ]

    def _install(self) -> None:
        self._uninstall()  # leftovers of a crashed earlier run
        ipt = self.iptables
        for table, chain in {(t, c) for t, c, _ in self._rules()}:
            _run([ipt, "-w", "-t", table, "-N", chain])
        for table, chain, rule in self._rules():
            _run([ipt, "-w", "-t", table, "-A", chain, *rule])
        for table, builtin, chain in self._jumps():
            _run([ipt, "-w", "-t", table, "-I", builtin, "1", "-j", chain])
        _enable_forwarding()
        self._installed = True

    def _uninstall(self) -> None:
        ipt = self.iptables
        for table, builtin, chain in self._jumps():
            argv = [ipt, "-w", "-t", table, "-D", builtin, "-j", chain]
            while subprocess.run(argv, capture_output=True, check=False).returncode == 0:
                pass
        for table, chain in {(t, c) for t, c, _ in self._rules()}:
            for op in ("-F", "-X"):
                subprocess.run(
                    [ipt, "-w", "-t", table, op, chain], capture_output=True, check=False
                )
        self._installed = False

    async def create(self, env_id: str) -> EgressNetwork:
        """A new veth pair (and, the first time, the firewall chains) for ``env_id``."""
        net = EgressNetwork(self, self._slot())
        loop = asyncio.get_running_loop()
        try:
            if not self._installed:
                async with self._install_lock:  # concurrent first creations install once
                    if not self._installed:
                        await loop.run_in_executor(None, self._install)
            await loop.run_in_executor(None, net.create)
        except BaseException:
            net.remove()
            raise
        return net

    def close(self) -> None:
        """Remove the firewall chains (after every sandbox is gone)."""
        if self._installed:
            self._uninstall()


def _enable_forwarding() -> None:
    path = "/proc/sys/net/ipv4/ip_forward"
    try:
        with open(path) as f:
            if f.read().strip() == "1":
                return
        with open(path, "w") as f:
            f.write("1")
        log.info("egress: enabled net.ipv4.ip_forward (sandbox traffic leaves through NAT)")
    except OSError as exc:
        log.warning(
            "egress: cannot enable net.ipv4.ip_forward (%s); no egress beyond the host", exc
        )
