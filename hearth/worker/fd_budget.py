"""How many sandboxes the server's file-descriptor limit lets it hold.

Each execution environment keeps descriptors open in the server for its whole life, frozen
or not: the Runtime API listener and the runtime's connection, the read ends of its output
pipe and of its framed log channel, and the control socket that reports its exit (5,
measured); a busy one briefly holds its cgroup statistics files as well. The server's
``RLIMIT_NOFILE`` therefore bounds how many environments it can hold, as its memory
capacity does. Past it every start fails with ``EMFILE`` half-way (a 500, and cleanups that
cannot open the files they need); counted ahead, the request that would go past it is
throttled like one that would over-commit memory.

The soft limit is raised to the hard one at start-up (Debian's login default is 1,024
soft, 524,288 hard: ~200 environments at the soft one).
"""

from __future__ import annotations

import logging
import resource

log = logging.getLogger(__name__)

#: Descriptors one environment (or SnapStart template) counts for: the 5 it keeps, plus
#: one for a busy one's statistics files.
FDS_PER_SANDBOX = 6
#: Descriptors kept for everything else: client connections, the stores, zygotes, stems,
#: and the transient descriptors of starts in progress.
RESERVE = 1024


def raise_nofile() -> int:
    """Raise the soft ``RLIMIT_NOFILE`` to the hard limit (as far as the kernel allows);
    return the soft limit in force afterwards."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard
    if hard == resource.RLIM_INFINITY:
        target = _nr_open()
    if soft == resource.RLIM_INFINITY or soft >= target:
        return soft if soft != resource.RLIM_INFINITY else target
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    except (OSError, ValueError) as exc:
        log.warning("cannot raise the open-file limit from %d to %d: %s", soft, target, exc)
        return soft
    return target


def _nr_open() -> int:
    try:
        with open("/proc/sys/fs/nr_open") as f:
            return int(f.read())
    except (OSError, ValueError):
        return 1 << 20


def sandbox_limit(nofile: int) -> int:
    """Sandboxes a server with ``nofile`` descriptors can hold: what is left after the
    reserve (at most half of a small limit), divided among them; never less than 1."""
    reserve = min(RESERVE, nofile // 2)
    return max(1, (nofile - reserve) // FDS_PER_SANDBOX)
