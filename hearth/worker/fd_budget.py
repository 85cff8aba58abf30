"""How many sandboxes the server's file-descriptor limit lets it hold.

Each execution environment keeps descriptors open in the server for its whole life, frozen
or not: the Runtime API listener and the runtime's connection, the read ends of its output
pipe and of its framed log channel, and the control socket that reports its exit (5,
measured); a busy one, until it is frozen, also holds its two cgroup statistics files. The server's
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

#: Descriptors an environment (or SnapStart template) keeps for its whole life.
FDS_PER_SANDBOX = 5
#: Descriptors kept for everything else, at least: client connections, the stores,
#: zygotes, stems, the transient descriptors of starts in progress, and the two
#: statistics files each busy (or not yet frozen) environment holds on top of its five.
RESERVE = 1024
#: ... or this share of the limit if more: two thousand of the 20,000 here cover ~800
#: environments busy at once near the ceiling.
RESERVE_SHARE = 10


def raise_nofile() -> int:
    """Raise the soft ``RLIMIT_NOFILE`` to the hard limit (as far as the kernel allows);
    return the soft limit in force afterwards."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = _nr_open() if hard == resource.RLIM_INFINITY else hard
    if soft == resource.RLIM_INFINITY or soft >= target:  # at the ceiling already
        return target
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
    reserve (never more than half of a small limit), divided among them; at least 1."""
    reserve = min(max(RESERVE, nofile // RESERVE_SHARE), nofile // 2)
    return max(1, (nofile - reserve) // FDS_PER_SANDBOX)
