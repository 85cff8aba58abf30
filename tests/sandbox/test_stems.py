"""Stems (sandboxes made ahead, hearth.sandbox.stems): as isolated as any other start."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import textwrap
from pathlib import Path
from typing import Any

import pytest

from hearth.runtimes.registry import PythonRuntime, RuntimeRegistry
from hearth.sandbox import BackendConfig, ProcessBackend, SandboxSpec
from hearth.sandbox.process import ProcessSandbox
from hearth.sandbox.zygote import python_zygote
from hearth.sandbox.zygotes import Zygotes
from tests.netns import PORT, outside_namespace
from tests.sandbox.conftest import (
    LOG_CHANNEL,
    PRIVILEGES,
    ROOT_NAME,
    UID_BASE,
    exchange,
    read_output,
)

#: Imported by the bootstrap as the handler module: reports what it sees during Init.
PROBE = (
    """
import json, os, socket
"""
    + PRIVILEGES
    + LOG_CHANNEL
    + """
info = {
    "pid": os.getpid(), "uid": os.getuid(), "gid": os.getgid(),
    "status": {
        k: status[k].strip() for k in ("CapBnd", "CapEff", "CapPrm", "NoNewPrivs", "Seccomp")
    },
    "cgroup": open("/proc/self/cgroup").read(), "task": sorted(os.listdir("/var/task")),
    "task_write": attempt_write("/var/task/x"), "tmp_write": attempt_write("/tmp/x"),
    "tmp_owner": os.stat("/tmp").st_uid, "probe": os.environ.get("PROBE"), "cwd": os.getcwd(),
    "hostname": socket.gethostname(), "nice": os.nice(0), "log": log_channel(),
    "log_env": os.environ.get("_LAMBDA_TELEMETRY_LOG_FD", "taken by the bootstrap"),
}
s = socket.create_connection(("127.0.0.1", 9001), timeout=10)
s.sendall(json.dumps(info).encode() + b"\\n")
s.makefile().readline()
s.close()
def handler(event, context):
    return event
"""
)


def _python_runtime() -> PythonRuntime:
    registry = RuntimeRegistry.discover()
    for name in registry.names:
        rt = registry.get(name)
        if isinstance(rt, PythonRuntime):
            return rt
    pytest.skip("no Python runtime on this host")


def _backend(tmp_path: Path, rt: PythonRuntime) -> ProcessBackend:
    launch = rt.launch()
    be = ProcessBackend(
        BackendConfig(
            state_dir=str(tmp_path / "state"),
            cgroup_root_name=f"{ROOT_NAME}-stems",
            sandbox_uid_base=UID_BASE + 900,
            uid_count=100,
            extra={"stem_pool": "2", "egress_subnet": "10.214.0.0/16"},
        )
    )
    zygotes = Zygotes()
    mounts = [(m.host_path, m.sandbox_path) for m in launch.mounts]
    bootstrap = os.path.join(launch.mounts[1].host_path, "bootstrap.py")
    zygotes.register(launch.argv, python_zygote(rt.interpreter, mounts, bootstrap))
    be.zygotes = zygotes
    return be


async def _stem_starts(
    tmp_path: Path,
    rt: PythonRuntime,
    probe: str,
    check: Any,
    env_extra: dict[str, str] | None = None,
    **kw: Any,
) -> None:
    """Start sandboxes until three took a stem; ``check(sandbox, spec, report)`` each."""
    launch = rt.launch()
    env_extra = env_extra or {}
    be = _backend(tmp_path, rt)
    try:
        taken = 0
        for i in range(12):
            code = tmp_path / f"code{i}"
            code.mkdir()
            (code / "app.py").write_text(textwrap.dedent(probe))
            spec = SandboxSpec(
                env_id=f"stem-test-{i}",
                code_dir=str(code),
                argv=launch.argv,
                env={**launch.env, "_HANDLER": "app.handler", "PROBE": str(i), **env_extra},
                memory_mb=128 if i == 0 else 256,
                ephemeral_mb=64,
                mounts=launch.mounts,
                **kw,
            )
            stems_before = be.stems.taken
            sb = await be.start(spec)
            try:
                report: dict[str, Any] = await exchange(sb)
                taken += be.stems.taken > stems_before
                check(sb, spec, report)
            finally:
                await sb.kill()
            if taken >= 3:
                break
            await asyncio.sleep(0.3)  # the zygote starts, then the pool fills
        assert taken >= 3, "no start took a stem"
    finally:
        await be.aclose()
    assert be.cgroups.existing() == []


def test_stem_starts_are_isolated_and_specialized(tmp_path: Path) -> None:
    asyncio.run(_stem_starts(tmp_path, _python_runtime(), PROBE, _check))


def test_prepared_key_forks_every_start_and_concurrent_forks_line_up(tmp_path: Path) -> None:
    """``prepare`` starts the runtime's zygote and fills the key's stems before any start;
    then concurrent starts (their fork requests pipelined to the one zygote, each answer
    matched to its request) all fork, none falls back to the exec path."""
    asyncio.run(_prepared_burst(tmp_path, _python_runtime()))


async def _prepared_burst(tmp_path: Path, rt: PythonRuntime) -> None:
    launch = rt.launch()
    be = _backend(tmp_path, rt)
    assert be.zygotes is not None
    try:
        specs = []
        for i in range(6):
            code = tmp_path / f"code{i}"
            code.mkdir()
            (code / "app.py").write_text(textwrap.dedent(PROBE))
            specs.append(
                SandboxSpec(
                    env_id=f"prepared-{i}",
                    code_dir=str(code),
                    argv=launch.argv,
                    env={**launch.env, "_HANDLER": "app.handler", "PROBE": str(i)},
                    memory_mb=256,
                    ephemeral_mb=64,
                    mounts=launch.mounts,
                )
            )
        be.prepare(specs[0])
        for _ in range(600):
            if be.stems.ready_count() >= be.stems.per_key:
                break
            await asyncio.sleep(0.05)
        assert be.stems.ready_count() == be.stems.per_key, "prepare made no stems"
        sandboxes = await asyncio.gather(*(be.start(spec) for spec in specs))
        try:
            reports = await asyncio.gather(*(exchange(sb) for sb in sandboxes))
            for sb, spec, report in zip(sandboxes, specs, reports, strict=True):
                _check(sb, spec, report)
            assert len({sb.uid for sb in sandboxes}) == len(specs)
            assert be.stems.taken == be.stems.per_key
            assert be.zygotes.fallbacks == 0
        finally:
            await asyncio.gather(*(sb.kill() for sb in sandboxes))
    finally:
        await be.aclose()
    assert be.cgroups.existing() == []


EGRESS_PROBE = """
import json, os, socket
def attempt(host, port):
    try:
        c = socket.create_connection((host, port), timeout=1)
        data = c.makefile().readline().strip()
        c.close()
        return data or "connected"
    except OSError as e:
        return type(e).__name__
targets = json.loads(os.environ["TARGETS"])
info = {
    "uid": os.getuid(), "ifaces": sorted(n for _, n in socket.if_nameindex()),
    "results": {name: attempt(h, p) for name, (h, p) in targets.items()},
}
s = socket.create_connection(("127.0.0.1", 9001), timeout=10)
s.sendall(json.dumps(info).encode() + b"\\n")
s.makefile().readline()
s.close()
def handler(event, context):
    return event
"""


def test_egress_stems_reach_outside_only(tmp_path: Path) -> None:
    rt = _python_runtime()
    with outside_namespace(tmp_path, 78, "st") as (host_ip, outside_ip):
        host_listener = socket.socket()
        host_listener.bind(("0.0.0.0", 0))
        host_listener.listen()
        targets = {"outside": [outside_ip, PORT], "host": [host_ip, host_listener.getsockname()[1]]}

        def check(sb: ProcessSandbox, spec: SandboxSpec, r: dict[str, Any]) -> None:
            assert r["uid"] == sb.uid and r["ifaces"] == ["eth0", "lo"]
            assert sb.egress_address is not None
            assert r["results"]["outside"] == f"pong from {host_ip}"  # through NAT
            # dropped by the firewall (socket.timeout is called "timeout" before 3.10)
            assert r["results"]["host"] in ("TimeoutError", "timeout")

        env = {"TARGETS": json.dumps(targets)}
        with host_listener:
            asyncio.run(
                _stem_starts(tmp_path, rt, EGRESS_PROBE, check, network="egress", env_extra=env)
            )


def _check(sb: ProcessSandbox, spec: SandboxSpec, r: dict[str, Any]) -> None:
    assert r["pid"] == 1 and r["uid"] == sb.uid and r["gid"] == sb.uid and sb.uid >= UID_BASE
    assert r["status"] == {
        "CapBnd": "0000000000000000",
        "CapEff": "0000000000000000",
        "CapPrm": "0000000000000000",
        "NoNewPrivs": "1",
        "Seccomp": "2",
    }
    # its own code, read-only; its own /tmp, writable by its uid only
    assert r["task"] == ["app.py"] and r["probe"] == spec.env["PROBE"]
    assert r["task_write"] in (30, 13) and r["tmp_write"] == "written"
    assert r["tmp_owner"] == sb.uid and r["cwd"] == "/var/task" and r["hostname"] == "localhost"
    assert r["nice"] == 0  # a stem waits at a lower priority; the function never runs so
    # the framed log channel at 62 (its variable taken out of the environment by the
    # bootstrap, as awslambdaric does), the environment's own
    assert r["log"].startswith("pipe:") and r["log_env"] == "taken by the bootstrap"
    assert read_output(sb.log_fd) == "via-62"
    # in the cgroups the backend made, with this function's limits
    cg = sb._cg
    assert cg is not None
    paths = dict(line.split(":", 2)[1:] for line in r["cgroup"].splitlines())
    if "memory" in cg.dirs:  # v1
        assert cg.dirs["memory"].endswith(paths["memory"])
        assert cg.dirs["pids"].endswith(paths["pids"])
        limit = Path(cg.dirs["memory"], "memory.limit_in_bytes").read_text()
        pids = Path(cg.dirs["pids"], "pids.max").read_text()
    else:
        assert cg.dirs[""].endswith(paths[""])
        limit = Path(cg.dirs[""], "memory.max").read_text()
        pids = Path(cg.dirs[""], "pids.max").read_text()
    assert int(limit) == spec.memory_mb << 20 and int(pids) == spec.pids_max + 1
