"""The seccomp deny-list of the process backend, compiled once by libseccomp (pyseccomp).

The filter allows everything except the syscalls below, which fail with ``EPERM``: kernel
and mount-table changes, namespace games, tracing other processes, kernel keyrings,
clocks and accounting. Names this libseccomp / architecture does not know are skipped.

It is compiled in the server (no load, just :meth:`SyscallFilter.export_bpf`) and the BPF
bytes are installed by the launcher with ``prctl(PR_SET_SECCOMP)`` right before ``execve``
-- same filter as ``filter.load()`` would install, without importing pyseccomp into every
launcher (measured ~7 ms per sandbox start).
"""

from __future__ import annotations

import errno
import tempfile

from hearth.errors import SandboxError

DENIED_SYSCALLS = (
    "mount", "umount2", "pivot_root", "ptrace", "process_vm_readv", "process_vm_writev",
    "kexec_load", "kexec_file_load", "init_module", "finit_module", "delete_module", "bpf",
    "perf_event_open", "unshare", "setns", "swapon", "swapoff", "reboot", "open_by_handle_at",
    "userfaultfd", "keyctl", "add_key", "request_key", "acct", "settimeofday", "clock_settime",
    "clock_adjtime", "adjtimex", "syslog", "quotactl", "lookup_dcookie", "iopl", "ioperm",
    "name_to_handle_at", "fsopen", "fsmount", "open_tree", "move_mount", "fspick",
    "mount_setattr",
)  # fmt: skip


#: What a SnapStart template (``hearth_template`` in the runtime) needs on top: each
#: environment it forks unshares a user namespace and the others, moves its own ``/tmp``
#: in and mounts its ``/proc``, then installs the ordinary filter over this one.
TEMPLATE_ALLOWED = ("unshare", "mount", "move_mount")


def template_filter() -> bytes:
    """BPF of the deny-list minus :data:`TEMPLATE_ALLOWED` (see ``hearth_template``)."""
    return compile_filter(tuple(n for n in DENIED_SYSCALLS if n not in TEMPLATE_ALLOWED))[0]


def compile_filter(denied: tuple[str, ...] = DENIED_SYSCALLS) -> tuple[bytes, list[str]]:
    """BPF program of the deny-list for the native architecture, and the names skipped."""
    try:
        import pyseccomp as seccomp
    except (ImportError, RuntimeError) as exc:  # RuntimeError: libseccomp.so not found
        raise SandboxError(f"pyseccomp/libseccomp unavailable: {exc}") from exc
    filt = seccomp.SyscallFilter(defaction=seccomp.ALLOW)
    skipped: list[str] = []
    for name in denied:
        try:
            filt.add_rule(seccomp.ERRNO(errno.EPERM), name)
        except (OSError, ValueError, RuntimeError):
            skipped.append(name)
    with tempfile.TemporaryFile() as f:
        filt.export_bpf(f)
        f.flush()
        f.seek(0)
        bpf = f.read()
    if not bpf or len(bpf) % 8:
        raise SandboxError("libseccomp produced no BPF program")
    return bpf, skipped
