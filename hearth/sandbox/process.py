"""The process backend: Linux namespaces + cgroups + seccomp + an unprivileged uid.

Each sandbox is one launcher (:mod:`hearth.sandbox._nsinit`) spawned with ``Popen``; see
that module for what happens inside. This module owns the host side: uid allocation,
cgroups (:mod:`.cgroups`), the ``/tmp`` loop device (:mod:`.scratch`), the optional egress
veth (:mod:`.network`), and the teardown of all of it (:mod:`.lifecycle`).

Deviations from the original design, each forced by a measurement on the dev machine
(details in the module named):

* the seccomp filter is compiled once by pyseccomp in the server and installed as BPF by
  the launcher (:mod:`.policy`): importing pyseccomp per launcher cost ~7 ms (and its
  ``find_library`` 70 ms);
* the backend, not the sandbox child, joins the launcher to the cgroups, in a thread while
  the launcher's interpreter starts: a v1 cgroup migration waits for an RCU grace period
  (10-18 ms). The outside waiter is therefore a cgroup member: ``pids.max`` is
  ``pids_max + 1`` and the sandbox's processes get ``oom_score_adj`` 1000;
* scratch images are formatted *and attached* ahead of time and unlinked at attach
  (:mod:`.scratch`): attaching costs ~18 ms;
* the launcher runs from a pre-compiled ``.pyc`` and uses marshal, not json.

Measured start (``start()`` call to the sandbox's first connection to 127.0.0.1:9001,
Debian ``python3 -I -S`` connecting): ~60-70 ms median on the shared 2-vCPU dev box,
of which ``start()`` itself is ~30-40 ms; ``kill()`` ~13-20 ms; freeze 0.5 / thaw 0.3 ms.

Threading: all methods must be called from the event loop thread that started the
sandbox. Nothing here forks the server; exits are noticed via a pidfd on the loop.

Ownership: ``runtime_api_socket`` (non-blocking), ``output_fd`` and ``log_fd`` belong to
the sandbox and are closed by :meth:`ProcessSandbox.kill` -- a caller that reads them must
stop (``remove_reader``) and drain before calling ``kill``.

The framed log channel (``log_fd``, see :mod:`hearth.observe.frames`): a second pipe made
with the output pipe, its write end handed to the sandbox's PID 1 with the output pipe's
(the launcher's argv and ``pass_fds`` on the exec path, the fork request's fds on the zygote
path), which moves it to :data:`hearth.sandbox._nsinit.LOG_FD` and names it in
``_LAMBDA_TELEMETRY_LOG_FD``, as Lambda does. A SnapStart template has none (its
environments would inherit it); each environment forked from it gets its own with the
fork request (hearth/runtimes/python/hearth_template.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from hearth.errors import SandboxError
from hearth.sandbox import codetree
from hearth.sandbox.base import BackendConfig, ExitInfo, Mount, SandboxSpec, Stats
from hearth.sandbox.cgroups import CgroupManager, EnvCgroup
from hearth.sandbox.codetree import open_code_tree
from hearth.sandbox.launcher import Launcher, compile_nsinit
from hearth.sandbox.lifecycle import Lifecycle
from hearth.sandbox.network import EgressManager, EgressNetwork
from hearth.sandbox.policy import compile_filter, template_filter
from hearth.sandbox.scratch import (
    ScratchDevice,
    ScratchPool,
    loop_supported,
    wait_loop_released,
)
from hearth.sandbox.stems import Key, StemPool
from hearth.sandbox.uids import UidAllocator
from hearth.sandbox.validate import validate_spec
from hearth.sandbox.zygote import join_forked
from hearth.sandbox.zygotes import ZygoteKey, Zygotes, zygote_key

log = logging.getLogger(__name__)

RUNTIME_API_PORT = 9001
#: Threads that make cgroups and move processes into them. A v1 migration sleeps for an
#: RCU grace period (~9 ms idle, tens of ms on a busy host) and a start makes one cgroup
#: and joins one: in the default executor (6 threads here), shared with ``/tmp`` images
#: and code unpacking, a burst's 8 starts and the stem filler queued for them.
CGROUP_THREADS = 16
SHM_MB = 64
KILL_GRACE = 2.0


def _remove_made_cgroup(made: asyncio.Future[EnvCgroup]) -> None:
    """A cgroup made for a start that was cancelled meanwhile: removed (it is empty)."""
    if not made.cancelled() and made.exception() is None:
        try:
            made.result().remove()
        except SandboxError as exc:
            log.error("%s", exc)


def _exit_info(status: int, oom: bool) -> ExitInfo:
    if os.WIFSIGNALED(status):
        return ExitInfo(returncode=None, signal=os.WTERMSIG(status), oom_killed=oom)
    return ExitInfo(returncode=os.WEXITSTATUS(status), signal=None, oom_killed=oom)


class ProcessSandbox:
    """One running sandbox of :class:`ProcessBackend` (implements ``Sandbox``)."""

    def __init__(self, backend: ProcessBackend, spec: SandboxSpec, *, fork: bool = True) -> None:
        self._backend = backend
        self._spec = spec
        self._fork = fork
        self._life = Lifecycle(spec.env_id)
        self._uid = -1
        self._cg: EnvCgroup | None = None
        self._launcher: Launcher | None = None
        self._api: socket.socket | None = None
        self._output_r = -1
        self._log_r = -1
        self._log_w = -1
        """The log channel's write end until the launcher has it (see _network_and_output)."""
        self._loop_fd = -1
        self.scratch_device: ScratchDevice | None = None
        """The loop device behind ``/tmp`` (None with the tmpfs fallback)."""
        self.egress_address: str | None = None
        """The sandbox's IPv4 address on its veth (``network="egress"`` only)."""
        self._stats = Stats(0, 0)
        self._exit: ExitInfo | None = None
        self.started_at = 0.0
        """``time.monotonic()`` when ``execve`` of ``argv`` succeeded."""

    # --- Sandbox protocol -------------------------------------------------------------
    @property
    def id(self) -> str:
        return self._spec.env_id

    @property
    def uid(self) -> int:
        """The host uid the sandbox's processes run as."""
        return self._uid

    @property
    def runtime_api_socket(self) -> socket.socket:
        if self._api is None:
            raise SandboxError(f"sandbox {self.id} has no Runtime API socket")
        return self._api

    @property
    def output_fd(self) -> int:
        return self._output_r

    @property
    def log_fd(self) -> int:
        return self._log_r

    @property
    def running(self) -> bool:
        """Started, not torn down, and its main process has not exited."""
        launcher = self._launcher
        return not self._life.dead and launcher is not None and not launcher.exited

    async def wait(self) -> ExitInfo:
        if self._exit is None:
            if self._launcher is None:
                raise SandboxError(f"sandbox {self.id} was never started")
            self._record_exit(await self._launcher.wait())
        assert self._exit is not None
        return self._exit

    async def freeze(self) -> None:
        if not self._life.dead and self._cg is not None:
            await self._cg.freeze()
            # An idle environment holds no statistics fds (they are reopened at the next
            # REPORT): the server's RLIMIT_NOFILE bounds how many environments it holds.
            self._cg.close()

    async def thaw(self) -> None:
        if not self._life.dead and self._cg is not None:
            await self._cg.thaw()

    def stats(self) -> Stats:
        if not self._life.dead and self._cg is not None:
            with contextlib.suppress(OSError, ValueError):
                self._stats = Stats(self._cg.peak_bytes(), self._cg.cpu_ns())
        return self._stats

    def peak_memory(self) -> int:
        if not self._life.dead and self._cg is not None:
            with contextlib.suppress(OSError, ValueError):
                peak = self._cg.peak_bytes()
                self._stats = Stats(peak, self._stats.cpu_ns)
        return self._stats.max_memory_bytes

    def reset_peak(self) -> None:
        if not self._life.dead and self._cg is not None:
            self._cg.reset_peak()

    async def kill(self) -> ExitInfo:
        await self._life.teardown()
        return self._exit or ExitInfo(returncode=None, signal=None, oom_killed=False)

    # --- start and teardown -----------------------------------------------------------
    def _record_exit(self, status: int) -> None:
        if self._exit is None:
            oom = False
            if self._cg is not None:
                with contextlib.suppress(OSError, ValueError):
                    oom = self._cg.oom_kills() > 0
            self._exit = _exit_info(status, oom)

    async def _start(self) -> None:
        spec, be = self._spec, self._backend
        deadline = time.monotonic() + be.start_timeout
        async with self._life.starting():
            cg, tmp, net, w = await self._acquire()
            try:
                forked = (
                    await be.zygotes.launcher(spec, w, log_w=self._log_w)
                    if be.zygotes and self._fork
                    else None
                )
                launcher = forked or Launcher(be.nsinit, w, spec.inherit_fds, self._log_w)
            finally:
                os.close(w)
                self._close_log_w()
            self._adopt(launcher)
            loop = asyncio.get_running_loop()
            if forked is None:  # overlaps its start-up
                await loop.run_in_executor(be.cgroup_executor, cg.join, launcher.pid)
            launcher.send(self._launch_spec(tmp, net))
            msg, _ = await self._recv_api(launcher, deadline)
            await self._attach_egress(net, launcher, msg)
            await launcher.expect("child", 0, deadline)
            if forked is not None:  # joined while it set up (see hearth.sandbox.zygote)
                await loop.run_in_executor(be.cgroup_executor, join_forked, cg, launcher)
                launcher.send({"event": "cgroup"})
            error = await launcher.exec_error(deadline)
            if error is not None:
                raise SandboxError(f"sandbox {self.id} failed to start: {error}")
            self.started_at = time.monotonic()
            self._close_loop_fd()  # the sandbox's /tmp mount holds the device now
            launcher.watch()

    async def _acquire(self) -> tuple[EnvCgroup, dict[str, Any], EgressNetwork | None, int]:
        """What every start takes first, each undone by the lifecycle on failure: a uid,
        the cgroup, ``/tmp``, the egress network (if any) and the output pipe's write end
        (the caller closes it once the launcher has it).

        The cgroup is made in a thread, while ``/tmp`` is taken: on cgroup v1 its five
        ``mkdir`` and limit writes took ~1-13 ms of the event loop per start (py-spy, a
        burst of 100 starts: half of the loop's time spent on starts), longer when other
        cgroups are made or removed on the host (``cgroup_mutex``)."""
        be = self._backend
        self._uid = be.uids.acquire()
        self._life.push("uid", lambda: be.uids.release(self._uid))
        spec = self._spec
        made = asyncio.get_running_loop().run_in_executor(
            be.cgroup_executor, be.cgroups.create, spec.env_id, spec.memory_mb, spec.pids_max + 1
        )
        try:
            tmp = await self._prepare_tmp()
        finally:
            # +1: the exec path's outside waiter is a member too (see _nsinit); a forked
            # sandbox has none (its reaper is the zygote), so the one spare pid is unused
            # there. Pushed once made, whatever else failed: the lifecycle removes it.
            try:
                self._cg = await asyncio.shield(made)
            except asyncio.CancelledError:
                made.add_done_callback(_remove_made_cgroup)
                raise
            self._life.push("cgroup", self._remove_cgroup)
        net, w = await self._network_and_output()
        return self._cg, tmp, net, w

    def _adopt(self, launcher: Launcher) -> None:
        """The started launcher's fds and processes are the lifecycle's to undo."""
        self._launcher = launcher
        self._life.push("launcher fds", launcher.close)
        self._life.push("processes", self._kill_processes)

    @staticmethod
    async def _attach_egress(
        net: EgressNetwork | None, launcher: Launcher, msg: dict[str, Any]
    ) -> None:
        """Move the egress veth (the sandbox's, not the function's) into the namespace of
        the PID 1 that reported ``msg``, and tell it the veth is there."""
        if net is not None:
            await net.attach(int(msg["pid"]))
            launcher.send({"event": "veth"})

    def _make_cgroup(self) -> EnvCgroup:
        spec = self._spec
        # +1: as in _acquire
        self._cg = self._backend.cgroups.create(spec.env_id, spec.memory_mb, spec.pids_max + 1)
        self._life.push("cgroup", self._remove_cgroup)
        return self._cg

    async def _network_and_output(self, log: bool = True) -> tuple[EgressNetwork | None, int]:
        """The egress veth (if asked for) and the output pipe (its write end, returned, is
        the caller's to close); ``log`` (and not a template's spec): the framed log channel
        too, its write end in ``self._log_w`` until :meth:`_close_log_w`."""
        net = None
        if self._spec.network == "egress":
            net = await self._backend.network.create(self._spec.env_id)
            self._life.push("veth", net.remove)
            self.egress_address = str(net.inner_ip)
        r, w = os.pipe2(os.O_CLOEXEC)
        self._output_r = r
        os.set_blocking(r, False)
        self._life.push("output pipe", self._close_output)
        if log and not self._spec.template:
            self._log_r, self._log_w = os.pipe2(os.O_CLOEXEC)
            os.set_blocking(self._log_r, False)
            self._life.push("log pipe", self._close_log)
        return net, w

    async def _recv_api(
        self, launcher: Launcher, deadline: float, extra_fds: int = 0
    ) -> tuple[dict[str, Any], list[int]]:
        """Take the sandbox's listening Runtime API socket from the launcher's "netns"
        message; return the message and the ``extra_fds`` fds that came after it."""
        msg, fds = await launcher.expect("netns", 1 + extra_fds, deadline)
        self._api = socket.socket(fileno=fds[0])
        self._api.setblocking(False)
        self._life.push("runtime api socket", self._close_api)
        return msg, fds[1:]

    # --- stems (see hearth.sandbox.stems) ---------------------------------------------
    async def _start_stem(self, *, by_exec: bool = False) -> None:
        """Everything of a start that does not depend on the function: uid, cgroup
        (joined), ``/tmp``, output pipe, namespaces (with the egress veth if the spec has
        ``network="egress"``), root without ``/var/task``. :meth:`specialize` does the
        rest. ``self._spec`` is the stem's placeholder.

        ``by_exec``: a *spare* of the exec path (a spawned launcher, as :meth:`_start`
        without a zygote: joined to the cgroups before it gets the spec, so its PID 1 is
        forked inside them), not a stem forked by a zygote."""
        spec, be = self._spec, self._backend
        deadline = time.monotonic() + be.start_timeout
        async with self._life.starting():
            zygotes = be.zygotes
            if zygotes is None and not by_exec:
                raise SandboxError("stems need a zygote")
            cg, tmp, net, w = await self._acquire()
            try:
                if by_exec or zygotes is None:
                    launcher: Launcher | None = Launcher(be.nsinit, w, log_w=self._log_w)
                else:
                    launcher = await zygotes.launcher(spec, w, op="stem", log_w=self._log_w)
            finally:
                os.close(w)
                self._close_log_w()
            if launcher is None:
                raise SandboxError("no zygote is ready to fork stems")
            self._adopt(launcher)
            loop = asyncio.get_running_loop()
            part = self._stem_part(tmp, net)
            if by_exec:
                await loop.run_in_executor(be.cgroup_executor, cg.join, launcher.pid)
                part["spare"] = True
            launcher.send(part)
            msg, _ = await self._recv_api(launcher, deadline)
            await self._attach_egress(net, launcher, msg)
            await launcher.expect("child", 0, deadline)
            if not by_exec:
                await loop.run_in_executor(be.cgroup_executor, join_forked, cg, launcher)
                launcher.send({"event": "cgroup"})

    @property
    def usable_stem(self) -> bool:
        """A stem that is alive and not specialized yet."""
        return (
            self._launcher is not None
            and not self._launcher.exited
            and not self._life.dead
            and self.started_at == 0.0
        )

    async def specialize(self, spec: SandboxSpec) -> None:
        """Turn this stem into the sandbox of ``spec`` (of the stem's key, see .stems).

        The stem's PID 1 is in its cgroups already, waiting on the control socket: it gets
        the function's part of the launch spec, binds the code at ``/var/task``, drops
        privileges and runs the bootstrap (a fork-path stem) or execs ``argv`` (an
        exec-path spare), exactly as a start from scratch does."""
        deadline = time.monotonic() + self._backend.start_timeout
        launcher, cg = self._launcher, self._cg
        async with self._life.starting():
            if launcher is None or cg is None or not self.usable_stem:
                raise SandboxError(f"stem {self.id} is gone")
            self._spec = spec
            cg.resize(spec.memory_mb, spec.pids_max + 1)
            tree = open_code_tree(spec.code_dir)
            try:
                launcher.send({"event": "specialize", **self._function_part()}, [tree])
            finally:
                os.close(tree)
            error = await launcher.exec_error(deadline)
            if error is not None:
                raise SandboxError(f"sandbox {self.id} failed to start: {error}")
            self.started_at = time.monotonic()
            self._close_loop_fd()
            launcher.watch()

    async def _prepare_tmp(self) -> dict[str, Any]:
        be = self._backend
        if be.scratch is None:
            return {"kind": "tmpfs", "size_mb": self._spec.ephemeral_mb}
        self.scratch_device = dev = await be.scratch.take(self._spec.ephemeral_mb)
        self._loop_fd = dev.fd
        self._life.push("loop device", lambda: wait_loop_released(dev))
        self._life.push("loop fd", self._close_loop_fd)
        return {"kind": "loop", "device": dev.device}

    def _launch_spec(self, tmp: dict[str, Any], net: EgressNetwork | None) -> dict[str, Any]:
        assert self._cg is not None
        code_dir = os.path.realpath(self._spec.code_dir)
        return {**self._stem_part(tmp, net), **self._function_part(), "code_dir": code_dir}

    def _stem_part(self, tmp: dict[str, Any], net: EgressNetwork | None) -> dict[str, Any]:
        """The launch spec's fields a stem knows before its function (see .stems)."""
        spec, be = self._spec, self._backend
        return {
            "argv": list(spec.argv),
            "root_dir": be.root_dir,
            "mounts": [[os.path.realpath(m.host_path), m.sandbox_path] for m in spec.mounts],
            "tmp": tmp,
            "shm_mb": min(SHM_MB, spec.memory_mb),
            "network": spec.network,
            "egress": net.inner_config() if net is not None else None,
            "api_port": RUNTIME_API_PORT,
            "uid": self._uid,
        }

    def _function_part(self) -> dict[str, Any]:
        """The launch spec's fields that belong to the function."""
        spec, be = self._spec, self._backend
        return {
            "argv": list(spec.argv),
            "env": dict(spec.env),
            "cwd": spec.cwd,
            "hostname": spec.hostname,
            "uid": self._uid,
            "nofile": spec.nofile,
            "seccomp_bpf": be.template_seccomp_bpf() if spec.template else be.seccomp_bpf,
            "keep_fds": list(spec.inherit_fds),
        }

    def _close_api(self) -> None:
        if self._api is not None:
            self._api.close()

    # --- parking (hearth.worker.fd_vault) ---------------------------------------------
    def park_fds(self) -> tuple[int, int]:
        """Give up the host's copies of the sandbox's descriptors while it is parked: the
        output and log read ends are returned (the caller's to close, once another process
        holds them); the Runtime API socket is closed by whoever serves it. The sandbox's
        own ends and processes are untouched; :meth:`unpark_fds` takes them back."""
        fds = self._output_r, self._log_r
        self._output_r = -1
        self._log_r = -1
        self._api = None
        return fds

    def unpark_fds(self, api: socket.socket, output_r: int, log_r: int) -> None:
        """The descriptors given up by :meth:`park_fds`, back (under new numbers)."""
        self._api = api
        self._output_r = output_r
        self._log_r = log_r

    def _close_loop_fd(self) -> None:
        if self._loop_fd >= 0:
            os.close(self._loop_fd)
            self._loop_fd = -1

    def _close_output(self) -> None:
        if self._output_r >= 0:
            os.close(self._output_r)
            self._output_r = -1

    def _close_log_w(self) -> None:
        if self._log_w >= 0:
            os.close(self._log_w)
            self._log_w = -1

    def _close_log(self) -> None:
        self._close_log_w()
        if self._log_r >= 0:
            os.close(self._log_r)
            self._log_r = -1

    async def _kill_processes(self) -> None:
        """SIGKILL the sandbox's PID 1 (the kernel then kills its whole pid namespace), let
        its reaper (the exec path's waiter, or the zygote) report it, then SIGKILL whatever
        is left in the cgroup.

        PID 1 goes first so that the exec path's waiter -- itself a cgroup member -- is
        still alive to reap it; killed together, PID 1 would linger as a zombie of the
        host's init.
        """
        launcher, cg = self._launcher, self._cg
        assert launcher is not None and cg is not None
        if not launcher.exited and launcher.init_pid is not None:
            with contextlib.suppress(ProcessLookupError):  # not reaped yet: pid still ours
                os.kill(launcher.init_pid, signal.SIGKILL)
            await cg.thaw()  # a v1-frozen task takes SIGKILL only once thawed
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(launcher.wait(), KILL_GRACE)
        await cg.kill()
        await launcher.stop(KILL_GRACE)
        self._record_exit(await launcher.wait())

    async def _remove_cgroup(self) -> None:
        assert self._cg is not None
        self.stats()  # the last known values survive the cgroup
        await self._cg.kill()
        await self._cg.aremove()
        self._cg = None


class ProcessBackend:
    """Sandboxes as namespaced, cgroup-limited, seccomp-filtered processes.

    ``ProcessBackend(BackendConfig(state_dir=...))``. Construction is synchronous: it
    detects the cgroup version, sweeps sandbox cgroups left by a crashed earlier server
    and starts pre-formatting ``/tmp`` images. ``config.extra`` keys:
    ``start_timeout`` (seconds, default 10), ``scratch_pool`` (images kept ready per
    size, default 2), ``stem_pool`` (pre-made sandboxes kept ready per runtime command, mounts
    and /tmp size once one was asked for, default 4; 0 turns stems and spares off, see
    :mod:`.stems`),
    ``egress_subnet`` (IPv4 /16 for egress veths, default 10.213.0.0/16).
    """

    name = "process"

    def __init__(self, config: BackendConfig) -> None:
        self.config = config
        self.start_timeout = float(config.extra.get("start_timeout", "10"))
        self.seccomp_bpf, skipped = compile_filter()
        if skipped:
            log.info("seccomp: syscalls unknown here, not filtered: %s", ", ".join(skipped))
        os.makedirs(config.state_dir, mode=0o700, exist_ok=True)
        self.nsinit = compile_nsinit(config.state_dir)
        self.root_dir = os.path.join(config.state_dir, "rootfs")
        os.makedirs(self.root_dir, mode=0o755, exist_ok=True)
        self.cgroups = CgroupManager(config.cgroup_root_name)
        self.cgroup_executor = ThreadPoolExecutor(
            max_workers=CGROUP_THREADS, thread_name_prefix="hearth-cgroup"
        )
        """Threads for cgroup creation and joins (see :data:`CGROUP_THREADS`)."""
        stale = self.cgroups.sweep_blocking()
        if stale:
            log.warning("removed %d stale sandbox cgroups: %s", len(stale), ", ".join(stale))
        self.uids = UidAllocator(config.sandbox_uid_base, config.uid_count)
        self.scratch: ScratchPool | None = None
        if loop_supported():
            per_size = int(config.extra.get("scratch_pool", "2"))
            self.scratch = ScratchPool(os.path.join(config.state_dir, "scratch"), per_size)
            self.scratch.prefill(512)
        else:
            log.warning("no loop devices or mkfs.ext4: sandbox /tmp falls back to tmpfs")
        self.network = EgressManager(config)
        self._zygotes: Zygotes | None = None
        self._real_mounts: dict[tuple[Mount, ...], tuple[tuple[str, str], ...]] = {}
        self.stems = StemPool(
            self._make_stem, self._stem_key, int(config.extra.get("stem_pool", "4"))
        )
        self._live: dict[str, ProcessSandbox] = {}
        self._closed = False
        self._template_bpf: bytes | None = None

    @property
    def zygotes(self) -> Zygotes | None:
        """Set by the server to start Python runtimes by fork (:mod:`.zygote`)."""
        return self._zygotes

    @zygotes.setter
    def zygotes(self, zygotes: Zygotes | None) -> None:
        self._zygotes = zygotes
        if zygotes is not None:
            zygotes.on_retire = self._zygote_retired

    def _zygote_retired(self, key: ZygoteKey) -> None:
        """A zygote was let go: so go the ready stems it forked (see :meth:`_stem_key`),
        which would keep its process waiting; its account's next start makes new ones."""
        account, argv = key
        self.stems.drop(lambda k: k[0] == argv and k[-2:] == ("fork", account))

    def template_seccomp_bpf(self) -> bytes:
        """The seccomp filter of SnapStart templates (compiled on first use)."""
        if self._template_bpf is None:
            self._template_bpf = template_filter()
        return self._template_bpf

    async def start(self, spec: SandboxSpec) -> ProcessSandbox:
        if self._closed:
            raise SandboxError("backend is closed")
        validate_spec(spec)
        if spec.env_id in self._live:
            raise SandboxError(f"sandbox {spec.env_id} is already running")
        if spec.inherit_fds:  # the zygote's fork requests carry no extra fds
            return await self._start_one(spec, fork=False)
        try:
            return await self._start_one(spec, fork=True)
        except SandboxError as exc:
            if not (self.zygotes and self.zygotes.would_fork(spec)):
                raise
            # The fork path is an optimisation: a start it could not finish (its launcher
            # gone before joining its cgroup, say) is tried once more by exec, which
            # needs no zygote.
            log.warning("sandbox %s: fork path failed (%s); starting by exec", spec.env_id, exc)
            return await self._start_one(spec, fork=False)

    def prepare(self, spec: SandboxSpec) -> None:
        """Sandboxes like ``spec`` will be asked for soon (its function was created or
        changed): start its runtime's zygote now, in the background, and fill its stem
        pool. Nothing of the function is used: a zygote and stems are function-free."""
        if self._closed or spec.template or spec.inherit_fds:
            return
        if self.zygotes is not None:
            self.zygotes.warm(spec)
        self.stems.prepare(spec)

    async def start_with(
        self, spec: SandboxSpec, make: Callable[[], ProcessSandbox]
    ) -> ProcessSandbox:
        """Start a sandbox of another kind (``make()``, e.g. a SnapStart environment,
        :mod:`.template`), registered, validated and torn down like the others."""
        if self._closed:
            raise SandboxError("backend is closed")
        validate_spec(spec)
        if spec.env_id in self._live:
            raise SandboxError(f"sandbox {spec.env_id} is already running")
        return await self._start_one(spec, fork=False, make=make)

    async def _start_one(
        self,
        spec: SandboxSpec,
        *,
        fork: bool,
        make: Callable[[], ProcessSandbox] | None = None,
    ) -> ProcessSandbox:
        stem = self.stems.take(spec) if fork and make is None else None
        if stem is not None:
            self._register(spec.env_id, stem)
            try:
                await stem.specialize(spec)
                return stem
            except SandboxError as exc:  # torn down (and forgotten) already
                # Nothing of the function ran (its exec or hand-over is what failed): a
                # stem that died while it waited is replaced by a start from scratch.
                log.warning("sandbox %s: stem failed (%s); starting anew", spec.env_id, exc)
        sandbox = make() if make is not None else ProcessSandbox(self, spec, fork=fork)
        self._register(spec.env_id, sandbox)
        await sandbox._start()
        return sandbox

    def _register(self, env_id: str, sandbox: ProcessSandbox) -> None:
        self._live[env_id] = sandbox
        sandbox._life.push("registration", lambda: self._forget(env_id))

    def _stem_key(self, spec: SandboxSpec) -> Key | None:
        """Starts of ``spec`` may use a stem of this key (None: they may not).

        The key ends with how the stem is made: ``"fork"`` and the account (by the
        account's zygote of the runtime, for the specs it forks) or ``"exec"`` (a spawned
        launcher: Node, custom runtimes,
        Python functions that cannot fork). The mounts are part of it because they are
        bound before the stem pivots into its root, whose ``/`` is read-only then."""
        if spec.template or spec.inherit_fds:
            return None
        if not codetree.supported():
            return None
        mounts = self._real_mounts.get(spec.mounts)
        if mounts is None:
            mounts = tuple((os.path.realpath(m.host_path), m.sandbox_path) for m in spec.mounts)
            self._real_mounts[spec.mounts] = mounts
        shm = min(SHM_MB, spec.memory_mb)
        by_fork = self.zygotes is not None and self.zygotes.would_fork(spec)
        # A forked stem carries its zygote's state, so its key has the zygote's account
        # (see zygote_key); an exec'd one shares nothing and serves any account.
        kind: tuple[str, ...] = ("fork", zygote_key(spec)[0]) if by_fork else ("exec",)
        return (tuple(spec.argv), mounts, spec.ephemeral_mb, shm, spec.network, *kind)

    async def _make_stem(self, template: SandboxSpec, key: Key) -> ProcessSandbox:
        if self._closed:
            raise SandboxError("backend is closed")
        by_exec = key[-1] == "exec"
        stem = ProcessSandbox(self, template, fork=not by_exec)
        await stem._start_stem(by_exec=by_exec)
        return stem

    def _forget(self, env_id: str) -> None:
        self._live.pop(env_id, None)

    @property
    def live(self) -> list[ProcessSandbox]:
        return list(self._live.values())

    async def aclose(self) -> None:
        """Kill every sandbox, stop the scratch pool, remove cgroup parents and the veths."""
        self._closed = True
        results = await asyncio.gather(
            *(s.kill() for s in list(self._live.values())), return_exceptions=True
        )
        for res in results:
            if isinstance(res, BaseException):
                log.error("sandbox cleanup at backend close: %s", res)
        await self.stems.aclose()
        if self.scratch is not None:
            await asyncio.get_running_loop().run_in_executor(None, self.scratch.close)
        if self.zygotes is not None:
            await self.zygotes.aclose()
        self.cgroup_executor.shutdown(wait=False)
        self.network.close()
        self.cgroups.remove_parents()
        with contextlib.suppress(OSError):
            os.rmdir(self.root_dir)
