"""How many sandboxes the server's file-descriptor limit lets it hold.

Each execution environment keeps descriptors open in the server: the Runtime API listener
and the runtime's connection, the read ends of its output pipe and of its framed log
channel, and the control socket that reports its exit (5, measured); a busy one, until it
is frozen, also holds its two cgroup statistics files. The server's ``RLIMIT_NOFILE``
therefore bounds how many environments it can hold with all of them (:func:`sandbox_limit`),
as its memory capacity does. Past it every start fails with ``EMFILE`` half-way (a 500, and
cleanups that cannot open the files they need); counted ahead, the request that would go
past it is throttled like one that would over-commit memory.

A frozen environment may be *parked* (:mod:`.parking`): 4 of its 5 descriptors are held by
a vault process (:mod:`.fd_vault`, each with a limit of its own) until its next invocation,
and 1 stays in the server (its control socket: its exit is still noticed at once). So the
budget counts descriptors, not environments: ``sandbox_limit(nofile) * FDS_PER_SANDBOX``,
5 for each resident environment, :data:`FDS_PARKED` for each parked one; a start past it
parks idle environments first (the worker, :mod:`hearth.worker.worker`). On this VM (hard
limit 20,000, not raisable) that is 3,600 environments resident, up to
:func:`environment_limit` = 18,000 parked: memory (~2.7 MiB each) and ``pid_max`` bind first.

The soft limit is raised to the hard one at start-up (Debian's login default is 1,024
soft, 524,288 hard: ~200 environments at the soft one).
"""

from __future__ import annotations

import logging
import resource

log = logging.getLogger(__name__)

#: Descriptors an environment (or SnapStart template) keeps in the server while resident.
FDS_PER_SANDBOX = 5
#: ... and while parked (its control socket; the rest are in the fd vault).
FDS_PARKED = 1
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


def environment_limit(nofile: int, vault_processes: int = 16, vault_margin: int = 32) -> int:
    """Environments a server with ``nofile`` descriptors can hold if all of them but one
    are parked, in ``vault_processes`` vault processes with the same hard limit each
    (:mod:`.fd_vault`: ``vault_margin`` kept for themselves), memory aside."""
    budget = sandbox_limit(nofile) * FDS_PER_SANDBOX - vault_processes
    in_server = (budget - FDS_PER_SANDBOX) // FDS_PARKED + 1
    vaulted = FDS_PER_SANDBOX - FDS_PARKED
    in_vaults = vault_processes * max(0, nofile - vault_margin) // vaulted + 1
    return max(1, min(in_server, in_vaults))
