"""The process backend against real outcomes: what a sandboxed program can and cannot do."""

from __future__ import annotations

import asyncio
import errno
import os
import signal
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

import pytest

from hearth.errors import SandboxError
from hearth.sandbox import BackendConfig, Mount, ProcessBackend
from tests.sandbox.conftest import LOG_CHANNEL, Harness, exchange, read_output

ISOLATION_PROBE = (
    LOG_CHANNEL
    + """
import ctypes, resource
libc = ctypes.CDLL(None, use_errno=True)

def err(rc):
    return 0 if rc == 0 else ctypes.get_errno()

def write_errno(path):
    try:
        open(path, "w").close()
        return 0
    except OSError as e:
        return e.errno

status = dict(l.split(":", 1) for l in open("/proc/self/status").read().splitlines())
try:
    socket.create_connection(("127.0.0.1", int(os.environ["HOST_PORT"])), timeout=2)
    host_conn = "connected"
except OSError as e:
    host_conn = e.errno
with open("/tmp/scratch", "w") as f:
    f.write("hi")
report({
    "procs": sorted(int(p) for p in os.listdir("/proc") if p.isdigit()),
    "pid": os.getpid(), "uid": os.getuid(), "gid": os.getgid(), "groups": os.getgroups(),
    "status": {k: v.strip() for k, v in status.items()},
    "write": {p: write_errno(p) for p in ("/x", "/var/task/x", "/usr/x", "/etc/x", "/dev/x")},
    "tmp": sorted(os.listdir("/tmp")), "tmp_mode": oct(os.stat("/tmp").st_mode),
    "mount": err(libc.mount(b"none", b"/tmp", b"tmpfs", 0, None)),
    "unshare_user": err(libc.unshare(0x10000000)),
    "ptrace_traceme": err(libc.ptrace(0, 0, None, None)),
    "ifaces": [n for _, n in socket.if_nameindex()],
    "host_conn": host_conn,
    "hostname": socket.gethostname(),
    "env": dict(os.environ), "cwd": os.getcwd(), "root": sorted(os.listdir("/")),
    "opt": sorted(os.listdir("/opt/layer")),
    "nofile": resource.getrlimit(resource.RLIMIT_NOFILE),
    "fds": {n: os.readlink(f"/proc/self/fd/{n}") for n in (0, 1, 2)},
    "open_fds": sorted(int(n) for n in os.listdir("/proc/self/fd")),
    "log": log_channel(),
    "mounts": [l.split()[1:4] for l in open("/proc/self/mounts")],
})
"""
)


def test_isolation(harness: Harness, tmp_path: Path) -> None:
    layer = tmp_path / "layer"
    layer.mkdir()
    (layer / "lib.txt").write_text("layer")
    host = socket.socket()
    host.bind(("127.0.0.1", 0))
    host.listen()
    env = {"HOST_PORT": str(host.getsockname()[1]), "LANG": "C.UTF-8", "A": "b c"}
    with host:
        p = asyncio.run(
            harness.probe(
                ISOLATION_PROBE,
                env=env,
                hostname="fn-host",
                nofile=256,
                mounts=(Mount(str(layer), "/opt/layer"),),
            )
        )
    r = p.report
    assert p.exit.returncode == 0 and not p.exit.oom_killed, p.output
    assert r["pid"] == 1 and r["procs"] == [1]  # own pid namespace, no host processes
    assert r["uid"] != 0 and r["gid"] == r["uid"] and r["groups"] == []
    st = r["status"]
    assert st["CapEff"] == st["CapPrm"] == st["CapBnd"] == "0000000000000000"
    assert st["Seccomp"] == "2" and st["NoNewPrivs"] == "1"
    assert r["write"] == {p: errno.EROFS for p in ("/x", "/var/task/x", "/usr/x", "/etc/x")} | {
        "/dev/x": errno.EROFS
    }
    assert r["tmp"] == ["scratch"] and r["tmp_mode"] == oct(0o41777)
    # EPERM from the seccomp filter; an unprivileged process could otherwise do the last two
    assert r["mount"] == r["unshare_user"] == r["ptrace_traceme"] == errno.EPERM
    assert r["ifaces"] == ["lo"]
    assert r["host_conn"] == errno.ECONNREFUSED  # the sandbox's 127.0.0.1 is its own
    assert r["hostname"] == "fn-host"
    # the function's environment, and where its framed log channel is (as on Lambda)
    assert {k: v for k, v in r["env"].items() if k != "LC_CTYPE"} == {
        **env,
        "_LAMBDA_TELEMETRY_LOG_FD": "62",
    }
    assert r["cwd"] == "/var/task"
    assert "work" not in r["root"] and "root" not in r["root"] and "sys" not in r["root"]
    assert r["opt"] == ["lib.txt"]
    assert r["nofile"] == [256, 256]
    assert r["fds"]["0"] == "/dev/null" and r["fds"]["1"] == r["fds"]["2"]
    assert r["fds"]["1"].startswith("pipe:")
    assert r["open_fds"] == [0, 1, 2, 3, 62]  # 3: the listing itself; 62: the log channel
    assert r["log"].startswith("pipe:") and r["log"] != r["fds"]["1"]
    assert p.log == "via-62" and "via-62" not in p.output
    fstypes = {m[0]: m[1] for m in r["mounts"]}
    assert fstypes["/tmp"] == "ext4" and fstypes["/proc"] == "proc"
    opts = {m[0]: m[2].split(",") for m in r["mounts"]}
    assert "ro" in opts["/"] and "ro" in opts["/var/task"] and "ro" in opts["/opt/layer"]
    assert {"nosuid", "nodev"} <= set(opts["/tmp"])


TMP_FILL = """
written, code = 0, None
fd = os.open("/tmp/fill", os.O_WRONLY | os.O_CREAT)
buf = b"x" * (1 << 20)
try:
    while True:
        written += os.write(fd, buf)
except OSError as e:
    code = e.errno
os.fsync(fd)
report({"written": written, "errno": code, "secret": os.listdir("/tmp")})
"""


def test_tmp_is_disk_backed_and_bounded(harness: Harness) -> None:
    # 80 MB of /tmp under a 48 MB memory limit: a tmpfs would be OOM-killed
    host_free = os.statvfs(harness.backend.config.state_dir)
    p = asyncio.run(harness.probe(TMP_FILL, memory_mb=48, ephemeral_mb=80))
    assert p.exit.returncode == 0 and not p.exit.oom_killed, p.output
    assert p.report["errno"] == errno.ENOSPC
    assert 70 << 20 <= p.report["written"] <= 80 << 20
    after = os.statvfs(harness.backend.config.state_dir)
    assert after.f_bavail * after.f_frsize > 1 << 30
    assert host_free.f_bavail > 0


def test_other_sandbox_state_is_unreachable(harness: Harness) -> None:
    holder = """
    with open("/tmp/secret", "w") as f:
        f.write("a")
    report({"uid": os.getuid()})
    import time
    time.sleep(60)
    """
    looker = """
    report({"uid": os.getuid(), "tmp": os.listdir("/tmp"),
            "procs": [p for p in os.listdir("/proc") if p.isdigit()]})
    """

    async def main() -> None:
        a = await harness.start(holder)
        try:
            ra = await exchange(a)
            b = await harness.probe(looker)
            assert b.report["tmp"] == [] and b.report["procs"] == ["1"]
            assert b.report["uid"] != ra["uid"]
        finally:
            await a.kill()

    asyncio.run(main())


def test_oom_kill_is_reported(harness: Harness) -> None:
    code = """
    report({"ready": 1})
    hog = b"\\x01" * (256 << 20)
    """
    p = asyncio.run(harness.probe(code, memory_mb=64))
    assert p.exit.oom_killed
    assert p.exit.signal == signal.SIGKILL and p.exit.returncode is None


def test_fork_bomb_is_contained(harness: Harness) -> None:
    code = """
    import time
    kids, err = 0, None
    for _ in range(200):
        try:
            pid = os.fork()
        except OSError as e:
            err = e.errno
            break
        if pid == 0:
            time.sleep(60)
            os._exit(0)
        kids += 1
    report({"kids": kids, "errno": err})
    while True:  # now a real bomb: every process forks forever
        try:
            os.fork()
        except OSError:
            pass
    """

    async def main() -> None:
        sb = await harness.start(code, pids_max=20)
        try:
            r = await exchange(sb)
            assert r["errno"] == errno.EAGAIN and r["kids"] < 20
            await asyncio.sleep(0.2)
            assert sb._cg is not None and len(sb._cg.pids()) <= 21
        finally:
            await sb.kill()

    asyncio.run(main())


def test_freeze_thaw_and_kill_while_frozen(harness: Harness) -> None:
    code = """
    import time
    report({"ready": 1})
    i = 0
    while True:
        print(i, flush=True)
        i += 1
        time.sleep(0.005)
    """

    async def main() -> None:
        sb = await harness.start(code)
        try:
            await exchange(sb)
            await asyncio.sleep(0.1)
            t0 = time.perf_counter()
            await sb.freeze()
            freeze_ms = (time.perf_counter() - t0) * 1000
            read_output(sb.output_fd)
            await asyncio.sleep(0.3)
            assert read_output(sb.output_fd) == ""
            await sb.thaw()
            await asyncio.sleep(0.2)
            assert read_output(sb.output_fd) != ""
            await sb.freeze()
            print(f"freeze {freeze_ms:.2f} ms")
            info = await asyncio.wait_for(sb.kill(), 10)  # v1: a frozen task needs a thaw
            assert info.signal == signal.SIGKILL
        finally:
            await sb.kill()

    asyncio.run(main())


def test_stats_peak_and_reset(harness: Harness) -> None:
    code = """
    report({"ready": 1})
    hog = b"\\x01" * (40 << 20)
    report({"allocated": 1})
    del hog
    report({"freed": 1})
    import time
    time.sleep(60)
    """

    async def main() -> None:
        sb = await harness.start(code)
        try:
            await exchange(sb)
            await exchange(sb)
            peak = sb.stats().max_memory_bytes
            assert peak >= 40 << 20
            await exchange(sb)
            sb.reset_peak()
            stats = sb.stats()
            assert 0 < stats.max_memory_bytes < peak and stats.cpu_ns > 0
            await sb.kill()
            assert sb.stats() == stats or sb.stats().cpu_ns >= stats.cpu_ns  # last known
            await sb.freeze()  # no-ops on a dead sandbox
            sb.reset_peak()
        finally:
            await sb.kill()

    asyncio.run(main())


def test_kill_releases_everything(harness: Harness) -> None:
    async def main() -> None:
        sb = await harness.start("report({}); import time; time.sleep(60)")
        await exchange(sb)
        assert sb.scratch_device is not None and sb.scratch_device.bound()
        assert sb._cg is not None
        dirs = list(sb._cg.dirs.values())
        pids = sb._cg.pids()
        assert pids and all(os.path.isdir(d) for d in dirs)
        first = await sb.kill()
        assert first.signal == signal.SIGKILL and first.returncode is None
        assert not any(os.path.exists(d) for d in dirs)
        assert not sb.scratch_device.bound()
        # not even zombies: the waiter reaped PID 1 before it exited and was reaped
        assert not [p for p in pids if os.path.exists(f"/proc/{p}")]
        assert await sb.kill() == first  # idempotent
        assert await sb.wait() == first
        assert sb.output_fd == -1

    asyncio.run(main())


def test_output_keeps_interleaving_and_exit_code(harness: Harness) -> None:
    code = """
    report({})
    for i in range(3):
        os.write(1, b"out%d\\n" % i)
        os.write(2, b"err%d\\n" % i)
    sys.exit(3)
    """
    p = asyncio.run(harness.probe(code))
    assert p.output == "out0\nerr0\nout1\nerr1\nout2\nerr2\n"
    assert p.exit.returncode == 3 and p.exit.signal is None and not p.exit.oom_killed


def test_start_failures_are_reported_and_clean(harness: Harness, tmp_path: Path) -> None:
    async def main() -> None:
        with pytest.raises(SandboxError, match="exec /nonexistent"):
            await harness.start("", argv=("/nonexistent",))
        with pytest.raises(SandboxError, match=r"chdir|No such file"):
            await harness.start("", cwd="/var/missing")
        with pytest.raises(SandboxError, match="code_dir"):
            await harness.start("", code_dir=str(tmp_path / "missing"))
        with pytest.raises(SandboxError, match="env_id"):
            await harness.start("", env_id="Bad_ID")
        with pytest.raises(SandboxError, match="reserved"):
            await harness.start("", mounts=(Mount(str(tmp_path), "/proc/x"),))

    asyncio.run(main())


CRASHING_SERVER = """
import asyncio, sys
from hearth.sandbox import BackendConfig, ProcessBackend, SandboxSpec
async def main():
    # No stems (as the harness): a stem being made as the server is killed is an empty
    # cgroup younger than the sweep's grace, left alone, which this test would count.
    be = ProcessBackend(BackendConfig(state_dir=sys.argv[1], cgroup_root_name=sys.argv[2],
                                      sandbox_uid_base=int(sys.argv[3]),
                                      extra={"stem_pool": "0"}))
    sb = await be.start(SandboxSpec(env_id="crashed", code_dir=sys.argv[1],
                                    argv=("/bin/sleep", "60"), env={}, memory_mb=64))
    print(sb.id, flush=True)
    await asyncio.sleep(60)
asyncio.run(main())
"""


def test_sweep_removes_only_orphaned_sandboxes(harness: Harness, tmp_path: Path) -> None:
    cfg = harness.backend.config
    state = tmp_path / "crashed"
    state.mkdir()
    server = subprocess.Popen(
        [
            sys.executable,
            "-c",
            CRASHING_SERVER,
            str(state),
            cfg.cgroup_root_name,
            str(cfg.sandbox_uid_base + 500),
        ],
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).parents[2],
    )
    assert server.stdout is not None and server.stdout.readline().strip() == "crashed"
    server.kill()  # a crash: no aclose, the sandbox's cgroup stays behind
    server.wait()

    async def main() -> None:
        live = await harness.start("report({}); import time; time.sleep(60)")
        try:
            await exchange(live)
            assert "crashed" in harness.backend.cgroups.existing()
            other = ProcessBackend(
                BackendConfig(
                    state_dir=str(tmp_path / "other"),
                    cgroup_root_name=cfg.cgroup_root_name,
                    sandbox_uid_base=cfg.sandbox_uid_base,
                    uid_count=cfg.uid_count,
                )
            )
            assert other.scratch is not None
            other.scratch.close()
            assert harness.backend.cgroups.existing() == [live.id]  # owned by a live server
            assert live._launcher is not None and not live._launcher.exited
        finally:
            await live.kill()

    asyncio.run(main())


def test_start_latency(harness: Harness) -> None:
    async def main() -> list[float]:
        return [(await harness.probe("report({})")).start_ms for _ in range(5)]

    times = asyncio.run(main())
    print(f"start to first Runtime API connection: median {statistics.median(times):.1f} ms")
    assert statistics.median(times) < 1000
