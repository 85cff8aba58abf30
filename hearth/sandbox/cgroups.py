"""Per-sandbox cgroups on cgroup v1 or v2, detected once per backend.

Layout: ``<own cgroup>/<root_name>/<env_id>``, where *own cgroup* is the server's own cgroup
in that hierarchy (``/proc/self/cgroup``), so sandboxes are charged below whatever limits
the server itself runs under. v1 uses the memory, cpu, cpuacct, pids and freezer
hierarchies; v2 one directory with +memory +cpu +pids enabled.

v2 is chosen only when ``/sys/fs/cgroup`` itself is a cgroup2 mount whose
``cgroup.controllers`` offers memory, cpu and pids. A hybrid host (v1 hierarchies plus an
empty ``/sys/fs/cgroup/unified``, as on the dev machine) is treated as v1.

Limits: memory = ``memory_mb`` with swap unable to extend it, CPU weight proportional to
memory (no quota), ``pids.max``. All file writes are tiny and fast (~0.1 ms), so they are
done synchronously; only waits (freeze, kill) yield to the event loop.
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import errno
import os
import signal
import time
from collections.abc import Iterable

from hearth.errors import SandboxError

CGROUP_ROOT = "/sys/fs/cgroup"
V1_CONTROLLERS = ("memory", "cpu", "cpuacct", "pids", "freezer")
V2_CONTROLLERS = ("memory", "cpu", "pids")
KILL_TIMEOUT = 5.0
EMPTY_GRACE = 60.0
"""Seconds an empty sandbox cgroup of another server is left alone (see ``sweep_blocking``)."""
_FREEZE_POLL_MAX = 0.02
"""A freeze's state is polled after 0.5 ms, then ever less often up to this: usually it
is FROZEN at once, but on a busy host a task may take a second to reach its freeze
point, and many environments going idle together polled every 0.5 ms each."""


def _read(path: str) -> str:
    with open(path) as f:
        return f.read()


def _write(path: str, value: str) -> None:
    with open(path, "w") as f:
        f.write(value)


def _keyed(text: str, key: str) -> int:
    """The integer after ``key`` in a ``key value`` per-line file (0 if absent)."""
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[0] == key:
            return int(parts[1])
    return 0


def cpu_shares(memory_mb: int) -> int:
    """v1 ``cpu.shares``: 1024 per 1769 MB, the memory size at which Lambda gives one vCPU."""
    return max(2, memory_mb * 1024 // 1769)


def cpu_weight(memory_mb: int) -> int:
    """v2 ``cpu.weight`` from the v1 shares (the kernel/systemd conversion), in 1..10000."""
    return min(10000, max(1, 1 + (cpu_shares(memory_mb) - 2) * 9999 // 262142))


def _own_paths() -> dict[str, str]:
    """Controller name (or "" for v2) → the server's own cgroup path in that hierarchy."""
    out: dict[str, str] = {}
    for line in _read("/proc/self/cgroup").splitlines():
        _, ctrls, path = line.split(":", 2)
        for c in ctrls.split(",") if ctrls else [""]:
            out[c] = path
    return out


def _v1_mounts() -> dict[str, str]:
    """v1 controller → mount point of its hierarchy (from mountinfo)."""
    out: dict[str, str] = {}
    for line in _read("/proc/self/mountinfo").splitlines():
        left, _, right = line.partition(" - ")
        fields, rfields = left.split(), right.split()
        if len(rfields) >= 3 and rfields[0] == "cgroup":
            for opt in rfields[2].split(","):
                if opt in V1_CONTROLLERS:
                    out.setdefault(opt, fields[4])
    return out


def _pids_in(dirs: Iterable[str]) -> set[int]:
    pids: set[int] = set()
    for d in dirs:
        try:
            pids.update(int(p) for p in _read(f"{d}/cgroup.procs").split())
        except FileNotFoundError:
            continue
    return pids


def _rmdir(path: str) -> None:
    """Remove an (emptied) cgroup dir; EBUSY right after the last exit is retried briefly."""
    deadline = time.monotonic() + 1.0
    while not _try_rmdir(path, deadline):
        time.sleep(0.002)


def _try_rmdir(path: str, deadline: float) -> bool:
    """One attempt: True when the dir is gone, False on EBUSY before ``deadline`` (the
    kernel frees a cgroup's css asynchronously after its last member exits)."""
    try:
        os.rmdir(path)
    except FileNotFoundError:
        pass
    except OSError as exc:
        if exc.errno != errno.EBUSY or time.monotonic() > deadline:
            raise SandboxError(f"cannot remove cgroup {path}: {exc}") from exc
        return False
    return True


def _ppid(pid: int) -> int:
    try:
        return _keyed(_read(f"/proc/{pid}/status").replace(":", " "), "PPid")
    except (FileNotFoundError, ProcessLookupError, ValueError):
        return 0


def _owned_by_live_process(cg: EnvCgroup) -> bool:
    members = cg.pids()
    return any(_ppid(p) not in members and _ppid(p) > 1 for p in members)


class EnvCgroup(abc.ABC):
    """The cgroup(s) of one sandbox. Subclasses implement one cgroup version."""

    def __init__(self, dirs: dict[str, str]) -> None:
        self.dirs = dirs
        """Controller (v1) or "" (v2) → directory."""
        self._fds: dict[str, int] = {}
        self.limits: tuple[int, int] | None = None
        """(memory_mb, pids_max) last set by :meth:`setup`."""

    def _stat(self, path: str) -> str:
        """Read a statistics file through a kept-open fd: ``pread`` at 0 re-renders it.

        Measured here: ~1.3 µs against ~28 µs for open + read + close, and REPORT reads
        two such files after every invoke. The fds are closed by :meth:`remove`.
        """
        fd = self._fds.get(path)
        if fd is None:
            fd = self._fds[path] = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        return os.pread(fd, 4096, 0).decode()

    def join(self, pid: int) -> None:
        """Move process ``pid`` into this cgroup (blocking: ~10-18 ms on v1, see _nsinit)."""
        for d in dict.fromkeys(self.dirs.values()):
            _write(f"{d}/cgroup.procs", str(pid))

    def pids(self) -> set[int]:
        return _pids_in(set(self.dirs.values()))

    @abc.abstractmethod
    def setup(self, memory_mb: int, pids_max: int) -> None:
        """Set (or change: a stem gets its function's limits) memory, CPU and pids limits;
        implementations record them in :attr:`limits`."""

    def resize(self, memory_mb: int, pids_max: int) -> None:
        """:meth:`setup` unless these are the limits already (a stem made for the same size)."""
        if self.limits != (memory_mb, pids_max):
            self.setup(memory_mb, pids_max)

    @abc.abstractmethod
    def peak_bytes(self) -> int: ...

    @abc.abstractmethod
    def reset_peak(self) -> None: ...

    @abc.abstractmethod
    def cpu_ns(self) -> int: ...

    @abc.abstractmethod
    def oom_kills(self) -> int: ...

    @abc.abstractmethod
    async def freeze(self) -> None: ...

    @abc.abstractmethod
    async def thaw(self) -> None: ...

    def _kill_round(self) -> None:
        """SIGKILL every member and let frozen ones run so the signal is delivered."""
        for pid in self.pids():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)

    async def kill(self) -> None:
        """Kill every process in the cgroup and wait until it is empty.

        An empty cgroup (the usual case at teardown: PID 1 and the waiter are gone) costs
        one read of each ``cgroup.procs`` (each ~0.1-0.3 ms on the event loop here)."""
        deadline = time.monotonic() + KILL_TIMEOUT
        while self.pids():
            self._kill_round()
            if time.monotonic() > deadline:
                raise SandboxError(f"processes survive SIGKILL in {self.dirs}: {self.pids()}")
            await asyncio.sleep(0.001)

    def kill_blocking(self) -> None:
        """:meth:`kill` for callers outside the event loop (backend construction)."""
        deadline = time.monotonic() + KILL_TIMEOUT
        while self.pids():
            self._kill_round()
            if time.monotonic() > deadline:
                raise SandboxError(f"processes survive SIGKILL in {self.dirs}: {self.pids()}")
            time.sleep(0.001)

    def close(self) -> None:
        """Close the kept-open statistics fds (done by :meth:`remove` too)."""
        for fd in self._fds.values():
            os.close(fd)
        self._fds.clear()

    def remove(self) -> None:
        self.close()
        for d in dict.fromkeys(self.dirs.values()):
            _rmdir(d)

    async def aremove(self) -> None:
        """:meth:`remove` for the event loop: right after the last member exits, rmdir
        says EBUSY for a while (the kernel frees the css asynchronously); this waits for
        that without blocking the loop (the blocking retries stalled every other sandbox's
        start and Runtime API traffic by up to several ms per teardown, measured)."""
        self.close()
        for d in dict.fromkeys(self.dirs.values()):
            deadline = time.monotonic() + 1.0
            while not _try_rmdir(d, deadline):
                await asyncio.sleep(0.002)


class V1EnvCgroup(EnvCgroup):
    def _f(self, ctrl: str, name: str) -> str:
        return f"{self.dirs[ctrl]}/{name}"

    def setup(self, memory_mb: int, pids_max: int) -> None:
        limit = str(memory_mb << 20)
        mem = self._f("memory", "memory.limit_in_bytes")
        memsw = self._f("memory", "memory.memsw.limit_in_bytes")
        if not os.path.exists(memsw):
            _write(mem, limit)
        else:
            try:
                _write(mem, limit)
                _write(memsw, limit)
            except OSError:  # raising a limit: memory+swap may never be below memory
                _write(memsw, limit)
                _write(mem, limit)
        _write(self._f("cpu", "cpu.shares"), str(cpu_shares(memory_mb)))
        _write(self._f("pids", "pids.max"), str(pids_max))
        self.limits = (memory_mb, pids_max)

    def peak_bytes(self) -> int:
        return int(self._stat(self._f("memory", "memory.max_usage_in_bytes")))

    def reset_peak(self) -> None:
        _write(self._f("memory", "memory.max_usage_in_bytes"), "0")

    def cpu_ns(self) -> int:
        return int(self._stat(self._f("cpuacct", "cpuacct.usage")))

    def oom_kills(self) -> int:
        return _keyed(_read(self._f("memory", "memory.oom_control")), "oom_kill")

    async def freeze(self) -> None:
        state = self._f("freezer", "freezer.state")
        _write(state, "FROZEN")
        deadline = time.monotonic() + 2.0
        pause = 0.0005
        while _read(state).strip() != "FROZEN":
            if time.monotonic() > deadline:
                raise SandboxError("freezer did not reach FROZEN in 2 s")
            await asyncio.sleep(pause)
            pause = min(pause * 2, _FREEZE_POLL_MAX)

    async def thaw(self) -> None:
        _write(self._f("freezer", "freezer.state"), "THAWED")

    def _kill_round(self) -> None:
        super()._kill_round()
        # a v1-frozen task takes SIGKILL only once thawed
        with contextlib.suppress(FileNotFoundError):
            _write(self._f("freezer", "freezer.state"), "THAWED")


class V2EnvCgroup(EnvCgroup):
    def __init__(self, dirs: dict[str, str]) -> None:
        super().__init__(dirs)
        self._peak_resettable = True
        self._peak_floor = 0

    def _f(self, name: str) -> str:
        return f"{self.dirs['']}/{name}"

    def setup(self, memory_mb: int, pids_max: int) -> None:
        _write(self._f("memory.max"), str(memory_mb << 20))
        if os.path.exists(self._f("memory.swap.max")):
            _write(self._f("memory.swap.max"), "0")
        _write(self._f("cpu.weight"), str(cpu_weight(memory_mb)))
        _write(self._f("pids.max"), str(pids_max))
        self.limits = (memory_mb, pids_max)

    def peak_bytes(self) -> int:
        try:
            return int(_read(self._f("memory.peak")))
        except FileNotFoundError:  # kernel < 5.19: best effort
            return max(self._peak_floor, int(_read(self._f("memory.current"))))

    def reset_peak(self) -> None:
        if self._peak_resettable:
            try:
                _write(self._f("memory.peak"), "0")  # Linux 6.12+: per-fd reset
                return
            except OSError:
                self._peak_resettable = False
        self._peak_floor = int(_read(self._f("memory.current")))

    def cpu_ns(self) -> int:
        return _keyed(self._stat(self._f("cpu.stat")), "usage_usec") * 1000

    def oom_kills(self) -> int:
        return _keyed(_read(self._f("memory.events")), "oom_kill")

    async def freeze(self) -> None:
        _write(self._f("cgroup.freeze"), "1")
        deadline = time.monotonic() + 2.0
        pause = 0.0005
        while _keyed(_read(self._f("cgroup.events")), "frozen") != 1:
            if time.monotonic() > deadline:
                raise SandboxError("cgroup did not freeze in 2 s")
            await asyncio.sleep(pause)
            pause = min(pause * 2, _FREEZE_POLL_MAX)

    async def thaw(self) -> None:
        _write(self._f("cgroup.freeze"), "0")

    def _kill_round(self) -> None:
        if os.path.exists(self._f("cgroup.kill")):  # works on frozen tasks too
            _write(self._f("cgroup.kill"), "1")
        else:
            super()._kill_round()
            _write(self._f("cgroup.freeze"), "0")


class CgroupManager:
    """Creates, sweeps and removes the per-sandbox cgroups of one backend."""

    def __init__(self, root_name: str) -> None:
        self.root_name = root_name
        own = _own_paths()
        self.version = 2 if self._is_v2() else 1
        self.parents: dict[str, str] = {}
        if self.version == 2:
            self.parents[""] = self._v2_parent(f"{CGROUP_ROOT}{own.get('', '/')}".rstrip("/"))
        else:
            mounts = _v1_mounts()
            missing = [c for c in V1_CONTROLLERS if c not in mounts]
            if missing:
                raise SandboxError(f"cgroup v1 controllers not mounted: {', '.join(missing)}")
            for c in V1_CONTROLLERS:
                base = (mounts[c] + own.get(c, "/")).rstrip("/")
                self.parents[c] = f"{base}/{root_name}"
                os.makedirs(self.parents[c], exist_ok=True)

    @staticmethod
    def _is_v2() -> bool:
        try:
            available = set(_read(f"{CGROUP_ROOT}/cgroup.controllers").split())
        except FileNotFoundError:
            return False
        return set(V2_CONTROLLERS) <= available

    def _v2_parent(self, own: str) -> str:
        """Make ``<own>/<root_name>`` a non-leaf with memory, cpu and pids delegated.

        ``own`` must pass the controllers down, which the "no internal processes" rule
        forbids while ``own`` has member processes; if so, they move into a leaf
        ``<own>/<root_name>-server`` first.
        """
        enable = " ".join(f"+{c}" for c in V2_CONTROLLERS)
        try:
            _write(f"{own}/cgroup.subtree_control", enable)
        except OSError as exc:
            if exc.errno != errno.EBUSY:
                raise SandboxError(f"cannot delegate cgroup controllers: {exc}") from exc
            leaf = f"{own}/{self.root_name}-server"
            os.makedirs(leaf, exist_ok=True)
            for pid in _pids_in([own]):
                with contextlib.suppress(ProcessLookupError):
                    _write(f"{leaf}/cgroup.procs", str(pid))
            _write(f"{own}/cgroup.subtree_control", enable)
        parent = f"{own}/{self.root_name}"
        os.makedirs(parent, exist_ok=True)
        _write(f"{parent}/cgroup.subtree_control", enable)
        return parent

    def create(self, env_id: str, memory_mb: int, pids_max: int) -> EnvCgroup:
        dirs = {c: f"{p}/{env_id}" for c, p in self.parents.items()}
        made: list[str] = []
        try:
            self._ensure_parents()
            for d in dict.fromkeys(dirs.values()):
                os.mkdir(d)
                made.append(d)
            cg: V1EnvCgroup | V2EnvCgroup
            cg = V2EnvCgroup(dirs) if self.version == 2 else V1EnvCgroup(dirs)
            cg.setup(memory_mb, pids_max)
            return cg
        except OSError as exc:
            for d in reversed(made):
                _rmdir(d)
            raise SandboxError(f"cannot create cgroup for {env_id}: {exc}") from exc

    def _ensure_parents(self) -> None:
        """Recreate parents removed by another backend's ``aclose`` (same root name)."""
        for c, p in self.parents.items():
            if not os.path.isdir(p):
                if self.version == 2:
                    self.parents[c] = self._v2_parent(os.path.dirname(p))
                else:
                    os.makedirs(p, exist_ok=True)

    def env(self, env_id: str) -> EnvCgroup:
        dirs = {c: f"{p}/{env_id}" for c, p in self.parents.items()}
        return V2EnvCgroup(dirs) if self.version == 2 else V1EnvCgroup(dirs)

    def existing(self) -> list[str]:
        """Names of sandbox cgroups present under the backend's parent(s)."""
        names: set[str] = set()
        for p in self.parents.values():
            try:
                names.update(e.name for e in os.scandir(p) if e.is_dir())
            except FileNotFoundError:
                continue
        return sorted(names)

    def sweep_blocking(self) -> list[str]:
        """Kill and remove the sandbox cgroups left behind by a server that is gone.

        Several servers may share ``root_name`` (tests, a restart overlapping the old
        process), so a cgroup is swept only if no member process has a live parent
        outside the cgroup: each sandbox's waiter (or forked PID 1) is a member whose
        parent is the server that owns it (or that server's zygote), and dies with it
        (PR_SET_PDEATHSIG). Empty cgroups are swept too if
        something ran in them or they are older than :data:`EMPTY_GRACE`: a live server
        creates a sandbox's cgroup some milliseconds before its first process joins (the
        fork path joins after set-up), and another server starting then must not take it.
        """
        stale = [
            name
            for name in self.existing()
            if not _owned_by_live_process(self.env(name)) and self._abandoned(name)
        ]
        for name in stale:
            cg = self.env(name)
            cg.kill_blocking()
            cg.remove()
        return stale

    def _abandoned(self, name: str) -> bool:
        """Whether a sandbox cgroup without a live owner is left over, not being set up."""
        cg = self.env(name)
        if cg.pids():
            return True
        try:
            if cg.cpu_ns() > 0:  # its processes ran and are gone
                return True
        except (OSError, ValueError):
            pass
        finally:
            cg.close()
        for parent in self.parents.values():
            with contextlib.suppress(OSError):
                if time.time() - os.stat(os.path.join(parent, name)).st_mtime < EMPTY_GRACE:
                    return False
        return True

    def remove_parents(self) -> None:
        """Remove the ``<root_name>`` dirs if no sandbox cgroup is left in them."""
        for p in self.parents.values():
            with contextlib.suppress(OSError):
                os.rmdir(p)
