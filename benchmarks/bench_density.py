"""Density: idle (frozen) environments of a small Python function, and what each costs.

Environments are started in waves: each wave is ``BENCH_DENSITY_WAVE`` (default 200)
invokes of a function of its own, sent at once, that hold until a common release time,
so that many distinct environments start (a wave's function is used by that wave only:
its environments are never reused by the next); after the release they go idle and are
frozen. Waves go on until N environments exist or the server refuses (capacity: a
throttle or an error ends the run and is printed). Then, for the environments that
answered (each reports its own cgroup; PSS from a sample of at most 1,000):

* PSS per environment: the proportional set size of its processes (shared pages split
  among their sharers), from ``/proc/<pid>/smaps_rollup``;
* cgroup memory per environment: the memory cgroup's usage (includes page cache);
* host memory per environment: the drop of ``MemAvailable`` from before the first start
  to after the freeze, divided by N (everything: server-side state, sockets, loop /tmp);
  of which, over the same interval: the kernel's (``Slab`` + ``PageTables`` +
  ``KernelStack`` of ``/proc/meminfo``) and the server process's own PSS growth.

Baseline: idle fresh ``python3 -I -S`` processes that imported json (PSS each).
N is ``BENCH_DENSITY_N`` (default 5,000, the target), capped so that the host keeps a
fifth of its available memory (at ~4.5 MiB per environment: 3.9 measured, plus margin) and
to what the server's open-file limit holds with idle environments parked
(:func:`hearth.worker.fd_budget.environment_limit`: 18,000 at this VM's hard 20,000; 3,600
without parking, ``HEARTH_FD_VAULT=0``); the server's memory capacity, account concurrency
and this client's open-file limit are set for N.
No wave starts that would take the host below that fifth (counting 4.5 MiB for each
of its environments). Last, the latency of invokes that each take an idle frozen
environment (thaw included).

``BENCH_DENSITY_MERGE=1``: the server runs with ``--memory-merge`` (KSM, see
:mod:`hearth.sandbox.merging`; every row's label says so), ksmd scans
``BENCH_DENSITY_KSM_SCAN`` pages (default 4,000) every 20 ms while the bench runs (its
settings are restored after), N is capped at 1.5 MiB per environment instead, a wave
that does not fit waits (up to five minutes) for ksmd to make room, and after the last
start the bench waits for two full ksmd passes (up to 15 minutes) before it measures;
extra rows: the pages merged away per environment, ksmd's time and CPU to get there and
its CPU while everything is idle and merged.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks._common import (
    INVOKE_PATH,
    Row,
    _one,
    bare_pid_of,
    create,
    hearth,
    pct,
    signed_headers,
)
from hearth.worker.fd_budget import environment_limit, sandbox_limit

N = int(os.environ.get("BENCH_DENSITY_N", "5000"))
WAVE = int(os.environ.get("BENCH_DENSITY_WAVE", "200"))
RUNTIME = os.environ.get("BENCH_DENSITY_RUNTIME", "python3.11")
#: Host memory counted per environment (caps N; a wave that would take the host below a
#: fifth of its memory does not start): python3.12 / 3.13 measured 2.7-2.9 (their zygotes'
#: objects are immortal: far fewer pages copied per fork), older ones 3.9-4.3; plus margin.
HOST_MIB_PER_ENV = 3.5 if RUNTIME in ("python3.12", "python3.13") else 4.5
#: with merging (0.7 measured once merged, plus margin); the waves wait for ksmd (or
#: stop) rather than take the host below a fifth of its available memory
MERGED_MIB_PER_ENV = 1.5
HOLD = float(os.environ.get("BENCH_DENSITY_HOLD", "0"))
#: BENCH_DENSITY_MERGE=1: the server runs with --memory-merge (KSM, hearth.sandbox.merging)
MERGE = os.environ.get("BENCH_DENSITY_MERGE", "0") == "1"
#: ksmd's pages per wake-up (every 20 ms) while merging is measured
KSM_SCAN = int(os.environ.get("BENCH_DENSITY_KSM_SCAN", "4000"))
KSM_DIR = Path("/sys/kernel/mm/ksm")
CODE = """
import json, time
def handler(event, context):
    time.sleep(max(0.0, event["until"] - time.time()))
    return {"cgroup": open("/proc/self/cgroup").read()}
"""


def _meminfo(key: str) -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) * 1024
    return 0


def _kernel() -> int:
    """Kernel memory that grows with processes, mounts and sockets (bytes)."""
    return sum(_meminfo(k) for k in ("Slab", "PageTables", "KernelStack"))


def _pss(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def _ksm(name: str) -> int:
    return int((KSM_DIR / name).read_text().split()[0])


def _ksmd_cpu() -> float:
    """CPU seconds ksmd has used (0 without a ksmd thread)."""
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            if (d / "comm").read_text().strip() == "ksmd":
                fields = (d / "stat").read_text().rsplit(")", 1)[1].split()
                return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        except OSError:
            continue
    return 0.0


def _ksm_settle(timeout: float = 900) -> float:
    """Wait until ksmd has made two full passes over everything (merged what it can)."""
    t0 = time.perf_counter()
    first = _ksm("full_scans")
    while _ksm("full_scans") < first + 2 and time.perf_counter() - t0 < timeout:
        time.sleep(1)
    return time.perf_counter() - t0


def _paths(cgroup_text: str) -> dict[str, str]:
    out = {}
    for line in cgroup_text.splitlines():
        _, ctrls, path = line.split(":", 2)
        for c in ctrls.split(","):
            out[c] = path
    return out


def _alive(cgroup_text: str) -> bool:
    """Whether the environment's memory cgroup still exists."""
    p = _paths(cgroup_text)
    root = Path("/sys/fs/cgroup")
    return (
        root / "memory" / p["memory"].lstrip("/") if "memory" in p else root / p[""].lstrip("/")
    ).is_dir()


def _env_memory(cgroup_text: str) -> tuple[int, int, bool]:
    """(PSS bytes, cgroup usage bytes, frozen) of one environment (cgroup v1 or v2)."""
    p = _paths(cgroup_text)
    root = Path("/sys/fs/cgroup")
    if "memory" in p:
        mem = root / "memory" / p["memory"].lstrip("/")
        usage = int((mem / "memory.usage_in_bytes").read_text())
        procs = (mem / "cgroup.procs").read_text().split()
        frozen = (root / "freezer" / p["freezer"].lstrip("/") / "freezer.state").read_text()
        is_frozen = frozen.strip() == "FROZEN"
    else:
        d = root / p[""].lstrip("/")
        usage = int((d / "memory.current").read_text())
        procs = (d / "cgroup.procs").read_text().split()
        is_frozen = "frozen 1" in (d / "cgroup.events").read_text()
    return sum(_pss(int(pid)) for pid in procs), usage, is_frozen


def _baseline_pss(n: int) -> float:
    py = os.path.realpath(sys.executable)
    procs = [
        subprocess.Popen(
            [py, "-I", "-S", "-c", "import json, sys; sys.stdout.write('r'); sys.stdout.flush();"
             " sys.stdin.read()"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
        )
        for _ in range(n)
    ]  # fmt: skip
    for p in procs:
        assert p.stdout is not None
        p.stdout.read(1)
    total = sum(_pss(p.pid) for p in procs)
    for p in procs:
        p.kill()
        p.wait()
    return total / n


def _fire(port: int, path: str, headers: dict[str, str], body: bytes, n: int) -> list[Any]:
    """n identical POSTs at once, each on its own connection, each bounded in time."""

    async def one() -> Any:
        return await asyncio.wait_for(_one(port, path, headers, body), 600)

    async def main() -> list[Any]:
        return await asyncio.gather(*(one() for _ in range(n)), return_exceptions=True)

    return asyncio.run(main())


def run() -> list[Row]:
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # a wave's connections
    available = _meminfo("MemAvailable")
    per_env = MERGED_MIB_PER_ENV if MERGE else HOST_MIB_PER_ENV
    n = max(10, min(N, int(available * 0.8 / (per_env * 2**20))))
    # ... and what the server's open-file limit holds (hearth.worker.fd_budget): past it a
    # start evicts an idle environment (or is throttled), so the count would not grow.
    # Idle frozen environments are parked (hearth.worker.fd_vault) unless HEARTH_FD_VAULT=0.
    parking = os.environ.get("HEARTH_FD_VAULT") != "0"
    n = min(n, (environment_limit(hard) if parking else sandbox_limit(hard)) - 10)
    env = {
        "HEARTH_ACCOUNT_CONCURRENCY": str(n + 100),
        "HEARTH_CGROUP_ROOT": f"hearth-density-{os.getpid()}",
    }
    # Idle environments write nothing to /tmp: the run promises their 512 MB each on
    # purpose (the server's default disk capacity would hold ~140 here).
    args = ["--memory-capacity-mb", str((n + 10) * 128), "--idle-timeout", "3600"]
    args += ["--disk-capacity-mb", str((n + 10) * 512)]
    saved = (
        {k: (KSM_DIR / k).read_text().strip() for k in ("run", "pages_to_scan")} if MERGE else {}
    )
    try:
        if MERGE:  # the server starts ksmd; how fast it scans is the operator's (bench's) part
            env["HEARTH_MEMORY_MERGE"] = "1"
            (KSM_DIR / "pages_to_scan").write_text(str(KSM_SCAN))
        return _run(n, args, env)
    finally:
        for k, v in saved.items():
            (KSM_DIR / k).write_text(v)


def _room_for(m: int, available: int) -> str:
    """Why a wave of ``m`` environments would take the host below a fifth of the memory
    available at the start (unmerged, as they start), or "" if it fits; with merging,
    waits up to five minutes for ksmd to make room first."""
    deadline = time.monotonic() + (300 if MERGE else 0)
    while True:
        free = _meminfo("MemAvailable") - m * HOST_MIB_PER_ENV * 2**20
        if free >= available * 0.2:
            return ""
        if time.monotonic() > deadline:
            return f"host memory: {free / 2**20:.0f} MiB would be left after {m} more"
        time.sleep(2)


def _idle_invokes(port: int, waves: int, samples: int = 20) -> list[float]:
    """Latency (ms) of invokes that each take an idle, frozen environment (thaw included;
    with merging, the copy-on-write faults on merged pages too): one function per wave,
    in rounds, a pause between rounds so that the environments used freeze again."""
    out: list[float] = []
    while len(out) < samples:
        for w in range(min(waves, samples - len(out))):
            path = INVOKE_PATH.format(name=f"dense-{w}")
            body = json.dumps({"until": 0}).encode()
            headers = signed_headers(port, path, body)
            t = time.perf_counter()
            r = asyncio.run(_one(port, path, headers, body))
            out.append((time.perf_counter() - t) * 1000)
            if r[0] != 200:
                raise RuntimeError(f"idle invoke failed: {r!r:.300}")
        time.sleep(1.5)
    return out


def _run(n: int, args: list[str], env: dict[str, str]) -> list[Row]:
    cgroups: set[str] = set()
    stop = ""
    rate = 40.0  # environments started per second; halved after a wave that fell short
    with (
        tempfile.TemporaryDirectory() as tmp,
        hearth(Path(tmp), *args, env=env, stop_timeout=600) as srv,
    ):
        create(srv, "dense-warm", CODE, MemorySize=128, Timeout=900, Runtime=RUNTIME)
        warm = INVOKE_PATH.format(name="dense-warm")  # the runtime's zygote is up
        body = json.dumps({"until": 0}).encode()
        _fire(srv.port, warm, signed_headers(srv.port, warm, body), body, 1)
        time.sleep(1)
        server = bare_pid_of(srv.port)
        before = _meminfo("MemAvailable")
        kernel_before, server_before = _kernel(), _pss(server)
        t0, cpu0 = time.perf_counter(), _ksmd_cpu()
        wave = 0
        while len(cgroups) < n and not stop:
            m = min(WAVE, n - len(cgroups))
            stop = _room_for(m, before)
            if stop:
                break
            name = f"dense-{wave}"
            create(srv, name, CODE, MemorySize=128, Timeout=900, Runtime=RUNTIME)
            path = INVOKE_PATH.format(name=name)
            body = json.dumps({"until": time.time() + 2 + 1.5 * m / rate}).encode()
            results = _fire(srv.port, path, signed_headers(srv.port, path, body), body, m)
            docs = [json.loads(r[1]) for r in results if isinstance(r, tuple) and r[0] == 200]
            got = {d["cgroup"] for d in docs if isinstance(d, dict) and "cgroup" in d}
            failed = [r for r in results if not (isinstance(r, tuple) and b'"cgroup"' in r[1])]
            if failed:
                stop = f"wave {wave}: {len(failed)} of {m} failed, e.g. {failed[0]!r:.300}"
            cgroups |= got
            if len(got) < m:  # some requests were served by the wave's first environments
                rate = max(5.0, rate / 2)
            print(f"density: wave {wave}: {len(got)} environments, {len(cgroups)} in all",
                  flush=True)  # fmt: skip
            wave += 1
        took = time.perf_counter() - t0
        time.sleep(3)  # idle → frozen
        settle = ksm_cpu = ksm_idle = 0.0
        if MERGE:
            settle = _ksm_settle()
            cpu1 = _ksmd_cpu()
            time.sleep(20)
            ksm_cpu, ksm_idle = cpu1 - cpu0, (_ksmd_cpu() - cpu1) / 20
            print(f"density: ksm settled in {settle:.1f} s ({ksm_cpu:.1f} s CPU), idle"
                  f" {ksm_idle * 100:.1f} % of a CPU; pages_sharing {_ksm('pages_sharing')},"
                  f" pages_shared {_ksm('pages_shared')}", flush=True)  # fmt: skip
        # An environment gone meanwhile (evicted: a start past the budget that could not
        # park an idle one; a crash) is not counted.
        gone = {c for c in cgroups if not _alive(c)}
        if gone:
            print(f"density: {len(gone)} environments gone after their start", flush=True)
            cgroups -= gone
        sample = random.sample(sorted(cgroups), min(len(cgroups), 1000))
        mems = [_env_memory(c) for c in sample]
        after = _meminfo("MemAvailable")
        kernel_after, server_after = _kernel(), _pss(server)
        sharing = _ksm("pages_sharing") if MERGE else 0
        time.sleep(HOLD)  # BENCH_DENSITY_HOLD: time to look at the idle environments
        idle = _idle_invokes(srv.port, wave)
    count = len(cgroups)
    frozen = sum(1 for m in mems if m[2])
    pss = sum(m[0] for m in mems) / max(len(mems), 1) / 2**20
    usage = sum(m[1] for m in mems) / max(len(mems), 1) / 2**20
    host = (before - after) / max(count, 1) / 2**20
    kernel = (kernel_after - kernel_before) / max(count, 1) / 2**20
    in_server = (server_after - server_before) / max(count, 1) / 2**20
    base = _baseline_pss(100) / 2**20
    print(f"density: {count}/{n} environments up in {took:.1f} s; {frozen}/{len(mems)} sampled"
          f" frozen; {stop or 'no refusal'}")  # fmt: skip
    what = "idle fresh python3 -I -S (PSS)"
    tag = " [KSM merging on]" if MERGE else ""
    rows = [
        Row(f"density: idle frozen environments ({frozen}/{len(mems)} sampled frozen)", count,
            None, "envs", f"asked for {n}", "≥ 5,000"),
        Row("density: PSS per environment", pss, base, "MiB", what, "≤ 2 MiB"),
        Row("density: cgroup memory per environment", usage, base, "MiB", what),
        Row("density: host MemAvailable drop per environment", host, base, "MiB", what),
        Row("density: of which kernel (slab, page tables, stacks)", kernel, None, "MiB", ""),
        Row("density: of which the server process (PSS)", in_server, None, "MiB", ""),
        Row("density: invoke of an idle frozen environment p50", pct(idle, 0.5), None, "ms",
            f"{len(idle)} samples, one function per wave"),
    ]  # fmt: skip
    if MERGE:
        rows += [
            Row("density: pages merged away per environment", sharing * 4096 / max(count, 1)
                / 2**20, None, "MiB", "ksm pages_sharing / environments"),
            Row("density: ksmd time to merge (two full passes)", settle, None, "s",
                f"after the last start; pages_to_scan {KSM_SCAN}/20 ms; {ksm_cpu:.1f} s CPU"),
            Row("density: ksmd CPU while idle", ksm_idle * 100, None, "% of a CPU", ""),
        ]  # fmt: skip
    for r in rows:
        r.figure = r.figure.replace("density:", "density" + tag + ":", 1)
    return rows
