"""Fixtures for real process sandboxes (root only): one backend per module, a leak check.

Every test runs its own event loop (``asyncio.run``); the backend is loop-independent and
only sandboxes are bound to the loop that started them, so each test kills what it starts.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import textwrap
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest

from hearth.sandbox import BackendConfig, ExitInfo, ProcessBackend, SandboxSpec
from hearth.sandbox.process import ProcessSandbox

if os.geteuid() != 0:
    pytest.skip("sandbox tests need root", allow_module_level=True)

ROOT_NAME = f"hearth-sbtest-{os.getpid()}"  # not the servers' (tests/helpers.py)
UID_BASE = 300_000
UID_COUNT = 1000
PYTHON = "/usr/bin/python3"

#: Prelude of every probe: ``report(obj)`` sends one JSON line to the Runtime API socket
#: (the test's side answers ``ok``), exactly the path a runtime bootstrap takes.
PRELUDE = """
import json, os, socket, sys
def report(obj):
    s = socket.create_connection(("127.0.0.1", 9001), timeout=10)
    s.sendall(json.dumps(obj).encode() + b"\\n")
    assert s.makefile().readline() == "ok\\n"
    s.close()
"""


#: What a probe reports of its privileges (``status``: /proc/self/status) and
#: ``attempt_write(path)``: "written" or the errno of the attempt.
PRIVILEGES = """
status = dict(l.split(":", 1) for l in open("/proc/self/status").read().splitlines())
def attempt_write(path):
    try:
        open(path, "w").close()
        return "written"
    except OSError as e:
        return e.errno
"""


#: ``log_channel()``: writes ``via-62`` to the framed log channel (fd 62, see
#: hearth.observe.frames) and returns what the fd is, or the errno of the attempt.
LOG_CHANNEL = """
def log_channel():
    try:
        os.write(62, b"via-62")
        return os.readlink("/proc/self/fd/62")
    except OSError as e:
        return e.errno
"""


@dataclass
class Probe:
    report: Any
    exit: ExitInfo
    output: str
    log: str
    """What the sandbox wrote to its framed log channel."""
    start_ms: float
    """From ``start()`` call to the sandbox's first Runtime API connection."""


def read_output(fd: int) -> str:
    chunks = []
    while True:
        try:
            chunk = os.read(fd, 65536)
        except BlockingIOError:
            break
        if not chunk:
            break
        chunks.append(chunk)
    return b"".join(chunks).decode(errors="replace")


async def exchange(sb: ProcessSandbox, timeout: float = 20.0) -> Any:
    """Accept one Runtime API connection, read its JSON line, answer ``ok``."""
    loop = asyncio.get_running_loop()
    conn, _ = await asyncio.wait_for(loop.sock_accept(sb.runtime_api_socket), timeout)
    with conn:
        buf = b""
        while not buf.endswith(b"\n"):
            chunk = await asyncio.wait_for(loop.sock_recv(conn, 65536), timeout)
            if not chunk:
                raise AssertionError(f"probe closed early; output: {read_output(sb.output_fd)}")
            buf += chunk
        await loop.sock_sendall(conn, b"ok\n")
    return json.loads(buf)


class Harness:
    """Starts probe scripts in sandboxes of one backend."""

    def __init__(self, backend: ProcessBackend, tmp: Path) -> None:
        self.backend = backend
        self.tmp = tmp
        self._n = 0

    def spec(self, code: str, **kw: Any) -> SandboxSpec:
        self._n += 1
        code_dir = self.tmp / f"code{self._n}"
        code_dir.mkdir()
        (code_dir / "probe.py").write_text(PRELUDE + textwrap.dedent(code))
        base = SandboxSpec(
            env_id=f"t{os.getpid()}-{self._n}",
            code_dir=str(code_dir),
            argv=(PYTHON, "-I", "-S", "/var/task/probe.py"),
            env={"HEARTH_TEST": "1", "PATH": "/usr/bin:/bin"},
            memory_mb=128,
            ephemeral_mb=64,
        )
        return replace(base, **kw)

    async def start(self, code: str, **kw: Any) -> ProcessSandbox:
        return await self.backend.start(self.spec(code, **kw))

    async def probe(self, code: str, **kw: Any) -> Probe:
        """Run ``code`` to completion; it must call ``report()`` exactly once."""
        t0 = time.perf_counter()
        sb = await self.start(code, **kw)
        try:
            report = await exchange(sb)
            start_ms = (time.perf_counter() - t0) * 1000
            info = await asyncio.wait_for(sb.wait(), 20)
            return Probe(report, info, read_output(sb.output_fd), read_output(sb.log_fd), start_ms)
        finally:
            await sb.kill()


@pytest.fixture(scope="module")
def backend(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ProcessBackend]:
    state = tmp_path_factory.mktemp("sandbox-state")
    be = ProcessBackend(
        BackendConfig(
            state_dir=str(state),
            cgroup_root_name=ROOT_NAME,
            sandbox_uid_base=UID_BASE,
            uid_count=UID_COUNT,
            # Starts from scratch: spares made ahead hold cgroups and loop devices between
            # tests (the leak check); they have tests of their own (test_spares_exec.py).
            extra={"stem_pool": "0"},
        )
    )
    yield be
    asyncio.run(be.aclose())
    assert not any(os.path.exists(p) for p in be.cgroups.parents.values())
    for table in ("filter", "nat"):
        rules = subprocess.run(
            ["iptables", "-w", "-t", table, "-S"], capture_output=True, text=True
        )
        assert f"HEARTH-{be.network.tag}" not in rules.stdout


@pytest.fixture
def harness(backend: ProcessBackend, tmp_path: Path) -> Harness:
    return Harness(backend, tmp_path)


def bound_loops(state_dir: str) -> set[str]:
    """Backing files under ``state_dir`` of bound loop devices (per ``losetup``).

    Other Hearth servers on the machine use loop devices too, so only ours are counted.
    """
    out = subprocess.run(
        ["losetup", "-a", "-n", "-O", "BACK-FILE"], capture_output=True, text=True, check=True
    )
    files = {line.strip().removesuffix(" (deleted)") for line in out.stdout.splitlines()}
    return {f for f in files if f.startswith(state_dir)}


def sandbox_uid_processes() -> list[str]:
    """Live processes of sandbox uids, as ``pid name state ppid`` strings.

    A zombie whose parent is the host's init is not counted: it holds nothing but a pid,
    and appears when a crashed server's waiter died before its sandbox's PID 1 (the test
    of the sweep simulates exactly that crash).
    """
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                uid = os.stat(f"/proc/{entry}").st_uid
                status = dict(
                    line.split(":\t", 1)
                    for line in Path(f"/proc/{entry}/status").read_text().splitlines()
                    if ":\t" in line
                )
            except (FileNotFoundError, ProcessLookupError):
                continue
            if UID_BASE <= uid < UID_BASE + UID_COUNT:
                if status.get("State", "").startswith("Z") and status.get("PPid") == "1":
                    continue
                found.append(
                    f"{entry} {status.get('Name')} {status.get('State')} {status.get('PPid')}"
                )
    return found


def pool_devices(be: ProcessBackend) -> set[str]:
    assert be.scratch is not None
    return {dev.backing for dev in be.scratch.ready}


def wait_for(cond: Any, timeout: float = 3.0) -> bool:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


@pytest.fixture(autouse=True)
def leak_check(backend: ProcessBackend) -> Iterator[None]:
    """After each test: no live sandbox, cgroup, host mount, loop device or sandbox process."""
    mounts = Path("/proc/self/mountinfo").read_text()
    state = str(Path(backend.config.state_dir).resolve())
    yield
    assert not backend.live, f"sandboxes left running: {[s.id for s in backend.live]}"
    assert backend.cgroups.existing() == []
    assert Path("/proc/self/mountinfo").read_text() == mounts
    # the scratch pool keeps a few pre-attached devices; every other one must be gone
    assert wait_for(lambda: bound_loops(state) <= pool_devices(backend)), bound_loops(
        state
    ) - pool_devices(backend)
    assert wait_for(lambda: not sandbox_uid_processes()), sandbox_uid_processes()
    scratch = Path(backend.config.state_dir) / "scratch"  # images are unlinked once attached
    assert wait_for(lambda: not [p for p in scratch.iterdir() if not p.name.endswith(".part")])
