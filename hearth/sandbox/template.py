"""SnapStart templates, host side: sandboxes forked from an initialized runtime.

A :class:`SandboxTemplate` is an ordinary sandbox (exec path, own namespaces, cgroup,
uid and ``/tmp``) whose runtime was told to be a template: it runs the function's Init
once, then waits on a private control socket for fork requests (the sandbox side is
``hearth/runtimes/python/hearth_template.py``; its docstring has the isolation steps).
Its seccomp filter is the ordinary one minus ``unshare`` and two mount calls
(:func:`hearth.sandbox.policy.template_filter`): each forked environment creates a user
namespace of its own, in which it holds capabilities over nothing but the namespaces
that user namespace owns, and installs the ordinary filter before any function code
runs again.

:class:`ForkedSandbox` is one environment forked from a template. It is a
:class:`~hearth.sandbox.process.ProcessSandbox` (same teardown, freezer, stats, exit
reporting) with its own start sequence: the backend makes its cgroup, a *detached* mount
of a fresh scratch ``/tmp`` (``fsopen``/``fsmount``: the environment moves it in; it can
mount no block device itself) and its egress veth; the template forks; the child sends
its Runtime API socket and pidfds (its pid numbers are those of the template's pid
namespace: host pids come from the pidfds), and runs the function only after the backend
has moved it into its cgroups.

Differences from a plain sandbox, by construction: the environments of one template
share the template's uid (they share no pid, mount, network, IPC or UTS namespace, no
``/tmp`` and no cgroup); their memory starts as copy-on-write pages of the template,
charged to the template's cgroup until written; and an environment cannot outlive its
template (the template is PID 1 of the pid namespace its environments' namespaces nest
in): callers keep a template alive while it has live environments (:attr:`live`).
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import dataclasses
import logging
import marshal
import os
import socket
import time
from collections import deque
from typing import Any

from hearth.errors import SandboxError
from hearth.sandbox.base import SandboxSpec
from hearth.sandbox.launcher import fd_ready
from hearth.sandbox.process import RUNTIME_API_PORT, ProcessBackend, ProcessSandbox
from hearth.sandbox.scratch import wait_loop_released
from hearth.sandbox.zygote import ZygoteLauncher, join_forked

log = logging.getLogger(__name__)

_libc = ctypes.CDLL(None, use_errno=True)
# x86_64 and aarch64 share the numbers of the new mount API.
SYS_FSOPEN, SYS_FSCONFIG, SYS_FSMOUNT = 430, 431, 432
FSOPEN_CLOEXEC = FSMOUNT_CLOEXEC = 1
FSCONFIG_SET_STRING, FSCONFIG_CMD_CREATE = 1, 6
MOUNT_ATTR_NOSUID, MOUNT_ATTR_NODEV = 0x2, 0x4
TEMPLATE_FD_ENV = "_HEARTH_TEMPLATE_FD"
FREEZE_AFTER = 1.0
"""Seconds without a start after which a template is frozen (cgroup freezer)."""
SPARE_DELAY = 0.05
"""Seconds between a start (or the template's Init) and the making of spares it causes."""


def _syscall(number: int, *args: Any) -> int:
    res = int(_libc.syscall(number, *args))
    if res < 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))
    return res


def detached_mount(fstype: str, options: dict[str, str], uid: int) -> int:
    """A new filesystem mounted nowhere (an fd the sandbox ``move_mount``s), its root
    owned by ``uid`` with mode 1777 as a ``/tmp``. Blocking (a few ms for ext4)."""
    fs = _syscall(SYS_FSOPEN, fstype.encode(), FSOPEN_CLOEXEC)
    try:
        for key, value in options.items():
            _syscall(SYS_FSCONFIG, fs, FSCONFIG_SET_STRING, key.encode(), value.encode(), 0)
        _syscall(SYS_FSCONFIG, fs, FSCONFIG_CMD_CREATE, None, None, 0)
        mnt = _syscall(SYS_FSMOUNT, fs, FSMOUNT_CLOEXEC, MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV)
    finally:
        os.close(fs)
    try:
        root = f"/proc/self/fd/{mnt}"
        with contextlib.suppress(FileNotFoundError):
            os.rmdir(f"{root}/lost+found")
        os.chown(root, uid, uid)
        os.chmod(root, 0o1777)
    except OSError:
        os.close(mnt)
        raise
    return mnt


def pid_of(pidfd: int) -> int:
    """The pid (in this process's pid namespace) of the process a pidfd refers to."""
    with open(f"/proc/self/fdinfo/{pidfd}") as f:
        for line in f:
            if line.startswith("Pid:"):
                pid = int(line.split()[1])
                if pid > 0:
                    return pid
    raise SandboxError("the forked environment's process is gone")


class TemplateLauncher(ZygoteLauncher):
    """The waiter of a forked environment: its pid arrives later, as a pidfd."""

    def __init__(self, ctl: socket.socket, exec_r: int) -> None:
        super().__init__(None, ctl, exec_r)

    def _note(self, msg: dict[str, Any]) -> None:
        # The "child" message's pid is of the template's pid namespace: the host pid comes
        # from the pidfd it carries (ForkedSandbox._start).
        if msg.get("event") == "exit":
            self.exit_status = int(msg["status"])


class SandboxTemplate:
    """A running template sandbox (see the module docstring)."""

    def __init__(self, backend: ProcessBackend, sandbox: ProcessSandbox, ctl: socket.socket):
        self.backend = backend
        self.sandbox = sandbox
        self._ctl = ctl
        self._lock = asyncio.Lock()
        self.live: set[ForkedSandbox] = set()
        """Environments forked from this template and not yet torn down."""
        self.last_used = time.monotonic()
        self._starting = 0
        self._freeze_timer: asyncio.TimerHandle | None = None
        self._frozen: asyncio.Future[None] | None = None
        self._spares: deque[ForkedSandbox] = deque()
        self._spare_spec: SandboxSpec | None = None
        self._spare_count = 0
        self._filling: asyncio.Task[None] | None = None

    # -- spares: environments forked ahead, held before the function side runs ----------
    def keep_spares(self, spec: SandboxSpec, count: int) -> None:
        """Keep ``count`` environments forked ahead (``spec`` gives their limits; each gets
        an id of its own). A spare has done every step of a start but the last: its PID 1
        waits in its cgroups, before reseeding and the after-restore hooks, so nothing of
        the function has run in it when a start takes it."""
        self._spare_spec = spec
        self._spare_count = count
        self._refill()

    @property
    def in_use(self) -> set[ForkedSandbox]:
        """Environments forked from this template that are not idle spares."""
        return {s for s in self.live if not s.held}

    def _refill(self) -> None:
        if self._filling is None or self._filling.done():
            self._filling = asyncio.get_running_loop().create_task(self._fill())

    async def _fill(self) -> None:
        await asyncio.sleep(SPARE_DELAY)
        failures = 0
        while self._spare_spec is not None and self.alive and failures < 3:
            self._spares = deque(s for s in self._spares if s.running and s.held)
            if len(self._spares) >= self._spare_count:
                return
            spec = dataclasses.replace(
                self._spare_spec, env_id=f"{self._spare_spec.env_id}-{os.urandom(4).hex()}"
            )
            try:
                spare = await self._fork_environment(spec, hold=True)
            except (SandboxError, OSError) as exc:
                failures += 1
                log.info("SnapStart spare not made: %s", exc)
                continue
            self._spares.append(spare)

    async def _drop_spares(self) -> None:
        self._spare_spec = None
        if self._filling is not None:
            self._filling.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._filling
        spares, self._spares = self._spares, deque()
        await asyncio.gather(*(s.kill() for s in spares), return_exceptions=True)

    # -- frozen between forks: a template uses no CPU (a thread Init left running
    # included) and the state its forks copy does not move while nobody forks.
    def freeze_soon(self) -> None:
        """Freeze the template once ``FREEZE_AFTER`` seconds pass with no start going on
        (a forked child stays in the template's cgroups until the backend moves it)."""
        if self._freeze_timer is not None:
            self._freeze_timer.cancel()
        loop = asyncio.get_running_loop()
        self._freeze_timer = loop.call_later(FREEZE_AFTER, self._freeze)

    def _freeze(self) -> None:
        self._freeze_timer = None
        if self._starting == 0 and self._frozen is None and self.alive:
            self._frozen = asyncio.ensure_future(self.sandbox.freeze())
            self._frozen.add_done_callback(lambda t: t.cancelled() or t.exception())

    async def _thaw(self) -> None:
        frozen, self._frozen = self._frozen, None
        if frozen is not None:
            with contextlib.suppress(Exception):
                await frozen
            await self.sandbox.thaw()

    @classmethod
    async def start(cls, backend: ProcessBackend, spec: SandboxSpec) -> SandboxTemplate:
        """Start the template's sandbox; its Init runs now (see :meth:`ready`)."""
        ctl, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        env = dict(spec.env)
        env[TEMPLATE_FD_ENV] = str(child.fileno())
        spec = dataclasses.replace(spec, env=env, inherit_fds=(child.fileno(),), template=True)
        try:
            sandbox = await backend.start(spec)
        except BaseException:
            ctl.close()
            raise
        finally:
            child.close()
        ctl.setblocking(False)
        return cls(backend, sandbox, ctl)

    async def _recv(self, deadline: float) -> tuple[dict[str, Any], list[int]]:
        while True:
            try:
                data, fds, _, _ = socket.recv_fds(self._ctl, 1 << 20, 1)
            except BlockingIOError:
                await fd_ready(self._ctl.fileno(), deadline)
                continue
            if not data:
                raise SandboxError("the template exited")
            msg: dict[str, Any] = marshal.loads(data)
            return msg, fds

    async def ready(self, timeout: float) -> dict[str, Any] | None:
        """Wait for Init to end: None when the template is ready, else the Init error
        document the runtime reported. Raises SandboxError if it died or timed out."""
        msg, _ = await self._recv(time.monotonic() + timeout)
        if msg.get("ready"):
            return None
        error = msg.get("init_error")
        if isinstance(error, dict):
            return error
        raise SandboxError(f"unexpected template message {msg!r}")

    @property
    def alive(self) -> bool:
        return self._ctl.fileno() >= 0 and self.sandbox.running

    async def fork(self, request: dict[str, Any], fds: list[int]) -> None:
        """Ask the template to fork an environment that gets ``fds``."""
        async with self._lock:
            if not self.alive:
                raise SandboxError("the template is not running")
            await self._thaw()
            try:
                socket.send_fds(self._ctl, [marshal.dumps(request)], fds)
            except OSError as exc:
                raise SandboxError(f"cannot reach the template: {exc}") from exc
            msg, _ = await self._recv(time.monotonic() + self.backend.start_timeout)
        if "forked" not in msg:
            raise SandboxError(f"the template could not fork: {msg.get('error', msg)!r}")
        self.last_used = time.monotonic()

    async def start_environment(self, spec: SandboxSpec) -> ForkedSandbox:
        """A new environment forked from this template (``spec`` gives its id, limits,
        network and hostname; code, runtime and environment are the template's)."""
        while self._spares:
            spare = self._spares.popleft()
            if not (spare.running and spare.held):
                continue
            self._refill()
            try:
                await spare.release()
            except SandboxError as exc:
                log.info("SnapStart spare %s could not start: %s", spare.id, exc)
                continue
            self.last_used = time.monotonic()
            return spare
        self._refill()
        return await self._fork_environment(spec, hold=False)

    async def _fork_environment(self, spec: SandboxSpec, *, hold: bool) -> ForkedSandbox:
        self._starting += 1
        try:
            sandbox = await self.backend.start_with(
                spec, lambda: ForkedSandbox(self, spec, hold=hold)
            )
        finally:
            self._starting -= 1
            self.freeze_soon()
        assert isinstance(sandbox, ForkedSandbox)
        return sandbox

    async def kill(self) -> None:
        """Kill the template (and with it any environment still forked from it)."""
        if self._freeze_timer is not None:
            self._freeze_timer.cancel()
        await self._drop_spares()
        self._ctl.close()
        await self.sandbox.kill()


class ForkedSandbox(ProcessSandbox):
    """One environment forked from a :class:`SandboxTemplate`."""

    def __init__(self, template: SandboxTemplate, spec: SandboxSpec, *, hold: bool = False) -> None:
        super().__init__(template.backend, spec, fork=False)
        self.template = template
        self.held = hold
        """A spare: forked and isolated, in its cgroups, its PID 1 waiting for the go."""

    async def _start(self) -> None:
        be, template = self._backend, self.template
        deadline = time.monotonic() + be.start_timeout
        loop = asyncio.get_running_loop()
        async with self._life.starting():
            template.live.add(self)
            self._life.push("template", lambda: template.live.discard(self))
            self._uid = template.sandbox.uid  # the template's processes' uid: see above
            cg = self._make_cgroup()
            tmp_fd = await self._tmp_mount()
            try:
                net, w = await self._network_and_output()
            except BaseException:
                os.close(tmp_fd)
                raise
            ctl, child_ctl = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
            exec_r, exec_w = os.pipe2(os.O_CLOEXEC)
            self._launcher = launcher = TemplateLauncher(ctl, exec_r)
            self._life.push("launcher fds", launcher.close)
            self._life.push("processes", self._kill_processes)
            fds = [child_ctl.fileno(), exec_w, w, tmp_fd]
            if self._log_w >= 0:  # the framed log channel: a fifth fd
                fds.append(self._log_w)
            try:
                await template.fork(
                    self._request(net.inner_config() if net is not None else None), fds
                )
            finally:
                child_ctl.close()
                for fd in (exec_w, w, tmp_fd):
                    os.close(fd)
                self._close_log_w()
            _, (pidfd,) = await self._recv_api(launcher, deadline, extra_fds=1)
            launcher.adopt(pidfd, pid_of(pidfd))
            if net is not None:
                await net.attach(launcher.pid)
                launcher.send({"event": "veth"})
            _, (child,) = await launcher.expect("child", 1, deadline)
            try:
                launcher.init_pid = pid_of(child)
            finally:
                os.close(child)
            await loop.run_in_executor(None, join_forked, cg, launcher)
            if not self.held:
                await self._go(deadline)

    async def _go(self, deadline: float) -> None:
        """Let PID 1 go on (it is in its cgroups): reseed, after-restore hooks, runtime."""
        assert self._launcher is not None
        self._launcher.send({"event": "cgroup"})
        error = await self._launcher.exec_error(deadline)
        if error is not None:
            raise SandboxError(f"sandbox {self.id} failed to start: {error}")
        self.held = False
        self.started_at = time.monotonic()
        self._close_loop_fd()

    async def release(self) -> None:
        """Start a held spare's function side (see :meth:`SandboxTemplate.keep_spares`)."""
        try:
            await self._go(time.monotonic() + self._backend.start_timeout)
        except BaseException:
            await self.kill()
            raise

    async def _tmp_mount(self) -> int:
        """A detached mount of this environment's fresh ``/tmp``."""
        be, size = self._backend, self._spec.ephemeral_mb
        loop = asyncio.get_running_loop()
        if be.scratch is None:
            options = {"size": f"{size}m", "mode": "1777"}
            return await loop.run_in_executor(None, detached_mount, "tmpfs", options, self._uid)
        self.scratch_device = dev = await be.scratch.take(size)
        self._loop_fd = dev.fd
        self._life.push("loop device", lambda: wait_loop_released(dev))
        self._life.push("loop fd", self._close_loop_fd)
        options = {"source": dev.device}
        return await loop.run_in_executor(None, detached_mount, "ext4", options, self._uid)

    def _request(self, egress: dict[str, Any] | None) -> dict[str, Any]:
        spec, be = self._spec, self._backend
        return {
            "hostname": spec.hostname,
            "cwd": spec.cwd,
            "network": spec.network,
            "egress": egress,
            "seccomp_bpf": be.seccomp_bpf,
            "api_port": RUNTIME_API_PORT,
        }
