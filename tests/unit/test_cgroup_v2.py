"""cgroup v2, driven for real where this host allows it.

Production hosts mostly run the unified hierarchy; the development machine is a hybrid
host (v1 controllers, plus a controller-less cgroup2 mount at ``/sys/fs/cgroup/unified``).
Memory, CPU and pids limits need those controllers, which v1 holds here, but the v2 core
does not: membership (``cgroup.procs``), freezing (``cgroup.freeze`` / ``cgroup.events``),
``cgroup.kill`` and ``cpu.stat``'s ``usage_usec`` work on any cgroup2 mount. Those run
against the kernel below; the limit files :meth:`V2EnvCgroup.setup` writes are checked
in a directory standing in for a cgroup (the kernel's parsing of them is not ours).
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from hearth.sandbox.cgroups import V2EnvCgroup, cpu_weight


def _cgroup2_mount() -> str | None:
    """Where a cgroup2 hierarchy is mounted (the unified one first), if anywhere."""
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        left, _, right = line.partition(" - ")
        if right.split()[:1] == ["cgroup2"]:
            return left.split()[4]
    return None


MOUNT = _cgroup2_mount()
needs_v2 = pytest.mark.skipif(
    MOUNT is None or os.geteuid() != 0, reason="needs root and a cgroup2 mount"
)

BUSY = "import time\nwhile True:\n    time.sleep(0.0005)\n"


@pytest.fixture
def v2cg() -> Iterator[V2EnvCgroup]:
    assert MOUNT is not None
    path = f"{MOUNT}/hearth-v2test-{os.getpid()}"
    os.mkdir(path)
    cg = V2EnvCgroup({"": path})
    try:
        yield cg
    finally:
        cg.kill_blocking()
        cg.remove()
    assert not os.path.exists(path)


def _member(cg: V2EnvCgroup) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen([sys.executable, "-c", BUSY])
    cg.join(proc.pid)
    return proc


def _cpu_over(cg: V2EnvCgroup, seconds: float) -> int:
    before = cg.cpu_ns()
    time.sleep(seconds)
    return cg.cpu_ns() - before


@needs_v2
def test_membership_and_cpu_time_are_read_from_the_unified_files(
    v2cg: V2EnvCgroup,
) -> None:
    proc = _member(v2cg)
    try:
        assert v2cg.pids() == {proc.pid}
        assert _cpu_over(v2cg, 0.3) > 0
    finally:
        proc.kill()
        proc.wait()


@needs_v2
def test_a_frozen_cgroup_gets_no_cpu_and_thawing_resumes_it(v2cg: V2EnvCgroup) -> None:
    proc = _member(v2cg)
    try:
        asyncio.run(v2cg.freeze())
        events = Path(v2cg.dirs[""], "cgroup.events").read_text()
        assert "frozen 1" in events
        time.sleep(0.05)  # a tick already counted when the freeze landed
        assert _cpu_over(v2cg, 0.3) == 0
        asyncio.run(v2cg.thaw())
        assert _cpu_over(v2cg, 0.3) > 0
        assert proc.poll() is None
    finally:
        proc.kill()
        proc.wait()


@needs_v2
def test_kill_empties_a_frozen_cgroup(v2cg: V2EnvCgroup) -> None:
    procs = [_member(v2cg) for _ in range(3)]
    asyncio.run(v2cg.freeze())
    asyncio.run(v2cg.kill())
    assert v2cg.pids() == set()
    for p in procs:
        assert p.wait(timeout=5) == -9


def test_setup_writes_the_v2_limits(tmp_path: Path) -> None:
    (tmp_path / "memory.swap.max").write_text("max\n")
    cg = V2EnvCgroup({"": str(tmp_path)})
    cg.setup(256, 1024)
    assert (tmp_path / "memory.max").read_text() == str(256 << 20)
    assert (tmp_path / "memory.swap.max").read_text() == "0"
    assert (tmp_path / "cpu.weight").read_text() == str(cpu_weight(256))
    assert (tmp_path / "pids.max").read_text() == "1024"
    assert cg.limits == (256, 1024)


def test_setup_leaves_swap_alone_without_a_swap_controller(tmp_path: Path) -> None:
    V2EnvCgroup({"": str(tmp_path)}).setup(128, 64)
    assert not (tmp_path / "memory.swap.max").exists()


def test_peak_memory_falls_back_to_current_before_linux_5_19(tmp_path: Path) -> None:
    (tmp_path / "memory.current").write_text("4096\n")
    cg = V2EnvCgroup({"": str(tmp_path)})
    assert cg.peak_bytes() == 4096
    (tmp_path / "memory.peak").write_text("8192\n")
    assert cg.peak_bytes() == 8192


def test_cpu_weight_maps_lambdas_one_vcpu_to_the_v1_default() -> None:
    # 1,769 MB is one vCPU on Lambda: v1 shares 1024, whose v2 weight is systemd's ~39.
    assert cpu_weight(1769) == 1 + (1024 - 2) * 9999 // 262142
    assert cpu_weight(128) >= 1
    assert cpu_weight(10240) <= 10000
