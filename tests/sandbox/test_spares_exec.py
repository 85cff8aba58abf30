"""Spares (exec-path stems, hearth.sandbox.stems): as isolated as any other exec start."""

from __future__ import annotations

import asyncio
import os
import signal
from dataclasses import replace
from pathlib import Path
from typing import Any

from hearth.sandbox import BackendConfig, Mount, ProcessBackend, SandboxSpec
from hearth.sandbox.process import ProcessSandbox
from tests.sandbox.conftest import (
    LOG_CHANNEL,
    PRELUDE,
    PRIVILEGES,
    PYTHON,
    ROOT_NAME,
    UID_BASE,
    exchange,
    read_output,
)

#: Reports what the runtime command sees when it starts (it is exec'd, as node would be).
PROBE = (
    PRELUDE
    + PRIVILEGES
    + LOG_CHANNEL
    + """
def listing(path):
    try:
        return sorted(os.listdir(path))
    except OSError as e:
        return e.errno
report({
    "pid": os.getpid(), "uid": os.getuid(), "gid": os.getgid(), "groups": os.getgroups(),
    "status": {
        k: status[k].strip() for k in ("CapBnd", "CapEff", "CapPrm", "NoNewPrivs", "Seccomp")
    },
    "cgroup": open("/proc/self/cgroup").read(), "task": sorted(os.listdir("/var/task")),
    "task_write": attempt_write("/var/task/x"), "tmp_write": attempt_write("/tmp/x"),
    "root_write": attempt_write("/x"), "tmp_owner": os.stat("/tmp").st_uid,
    "env": dict(os.environ), "cwd": os.getcwd(), "hostname": socket.gethostname(),
    "nice": os.nice(0), "nofile": __import__("resource").getrlimit(7)[0],
    "layer": listing("/opt/layer"),
    "log": log_channel(),
})
"""
)


def _backend(tmp_path: Path, per_key: int = 2) -> ProcessBackend:
    """A backend without zygotes: every start takes the exec path."""
    return ProcessBackend(
        BackendConfig(
            state_dir=str(tmp_path / "state"),
            cgroup_root_name=f"{ROOT_NAME}-spares",
            sandbox_uid_base=UID_BASE + 800,
            uid_count=100,
            extra={"stem_pool": str(per_key)},
        )
    )


def _spec(tmp_path: Path, i: int, **kw: Any) -> SandboxSpec:
    code = tmp_path / f"code{i}"
    code.mkdir()
    (code / "probe.py").write_text(PROBE)
    (code / f"only-{i}").write_text("")
    spec = SandboxSpec(
        env_id=f"spare-test-{i}",
        code_dir=str(code),
        argv=(PYTHON, "-I", "-S", "/var/task/probe.py"),
        env={"PATH": "/usr/bin:/bin", "PROBE": str(i)},
        cwd="/var/task",
        hostname=f"host-{i}",
        memory_mb=128 if i == 0 else 256,
        ephemeral_mb=64,
        nofile=1000 + i,
    )
    return replace(spec, **kw)


def _check(sb: ProcessSandbox, spec: SandboxSpec, r: dict[str, Any], i: int) -> None:
    assert r["pid"] == 1
    assert r["uid"] == r["gid"] == sb.uid >= UID_BASE
    assert r["groups"] == []
    assert r["status"] == {
        "CapBnd": "0000000000000000",
        "CapEff": "0000000000000000",
        "CapPrm": "0000000000000000",
        "NoNewPrivs": "1",
        "Seccomp": "2",
    }
    # in the cgroups the backend made (named after the spare), with this function's limits
    cg = sb._cg
    assert cg is not None
    paths = dict(line.split(":", 2)[1:] for line in r["cgroup"].splitlines())
    if "memory" in cg.dirs:  # v1
        assert cg.dirs["memory"].endswith(paths["memory"])
        assert cg.dirs["pids"].endswith(paths["pids"])
        limit = Path(cg.dirs["memory"], "memory.limit_in_bytes").read_text()
    else:
        assert cg.dirs[""].endswith(paths[""])
        limit = Path(cg.dirs[""], "memory.max").read_text()
    assert int(limit) == spec.memory_mb << 20
    assert r["task"] == sorted(["probe.py", f"only-{i}"])  # its own code, nobody else's
    assert r["task_write"] == 30 and r["root_write"] == 30  # EROFS
    assert r["tmp_write"] == "written" and r["tmp_owner"] == sb.uid
    env = {k: v for k, v in r["env"].items() if k != "LC_CTYPE"}  # Python's locale coercion
    # the function's environment, nothing else but where its framed log channel is
    assert env == {**spec.env, "_LAMBDA_TELEMETRY_LOG_FD": "62"}
    assert r["log"].startswith("pipe:") and read_output(sb.log_fd) == "via-62"
    assert r["cwd"] == "/var/task"
    assert r["hostname"] == spec.hostname
    assert r["nice"] == 0  # a spare waits at SPARE_NICE, the function does not run at it
    assert r["nofile"] == spec.nofile


async def _starts(tmp_path: Path, make_spec: Any, check: Any, want: int = 3) -> None:
    """Start sandboxes until ``want`` took a spare; ``check(sandbox, spec, report, i)``."""
    be = _backend(tmp_path)
    try:
        taken = 0
        for i in range(12):
            spec = make_spec(i)
            before = be.stems.taken
            sb = await be.start(spec)
            try:
                report: dict[str, Any] = await exchange(sb)
                taken += be.stems.taken > before
                check(sb, spec, report, i)
                info = await asyncio.wait_for(sb.wait(), 20)
                assert info.returncode == 0
            finally:
                await sb.kill()
            if taken >= want:
                break
            await asyncio.sleep(0.3)  # the pool fills
        assert taken >= want, "no start took a spare"
    finally:
        await be.aclose()
    assert be.cgroups.existing() == []


def test_spare_starts_are_isolated_and_specialized(tmp_path: Path) -> None:
    asyncio.run(_starts(tmp_path, lambda i: _spec(tmp_path, i), _check))


def test_spares_are_keyed_by_mounts(tmp_path: Path) -> None:
    """A spare has its mounts bound before it pivots: specs with other mounts (a layer
    under /opt) never take it, those with the same ones do and see them read-only."""
    layers = []
    for n in range(2):
        layer = tmp_path / f"layer{n}"
        layer.mkdir()
        (layer / f"from-layer-{n}").write_text("")
        layers.append(layer)

    def spec(i: int) -> SandboxSpec:
        return _spec(tmp_path, i, mounts=(Mount(str(layers[i % 2]), "/opt/layer"),))

    def check(sb: ProcessSandbox, s: SandboxSpec, r: dict[str, Any], i: int) -> None:
        _check(sb, s, r, i)
        assert r["layer"] == [f"from-layer-{i % 2}"]

    asyncio.run(_starts(tmp_path, spec, check, want=4))


def test_dead_spare_is_replaced_by_a_start_from_scratch(tmp_path: Path) -> None:
    async def run() -> None:
        be = _backend(tmp_path, per_key=1)
        try:
            first = await be.start(_spec(tmp_path, 0))
            await exchange(first)
            await first.kill()
            for _ in range(100):  # wait for the pool to fill
                if be.stems.ready_count():
                    break
                await asyncio.sleep(0.05)
            assert be.stems.ready_count() == 1
            (spare,) = (s for ready in be.stems._ready.values() for s in ready)
            launcher = spare._launcher
            assert launcher is not None and launcher.init_pid is not None
            os.kill(launcher.init_pid, signal.SIGKILL)
            await asyncio.sleep(0.05)  # usable or not: the start must work either way
            spec = _spec(tmp_path, 1)
            sb = await be.start(spec)
            try:
                _check(sb, spec, await exchange(sb), 1)
            finally:
                await sb.kill()
            assert not be.live
        finally:
            await be.aclose()
        assert be.cgroups.existing() == []

    asyncio.run(run())


def test_backend_close_kills_ready_spares(tmp_path: Path) -> None:
    async def run() -> None:
        be = _backend(tmp_path)
        sb = await be.start(_spec(tmp_path, 0))
        await exchange(sb)
        await sb.kill()
        for _ in range(100):
            if be.stems.ready_count() == 2:
                break
            await asyncio.sleep(0.05)
        assert be.stems.ready_count() == 2
        pids = [s._launcher.pid for ready in be.stems._ready.values() for s in ready if s._launcher]
        await be.aclose()
        assert be.cgroups.existing() == []
        for pid in pids:
            assert not os.path.exists(f"/proc/{pid}")

    asyncio.run(run())
