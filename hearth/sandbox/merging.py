"""Memory merging: the kernel's samepage merging (KSM) for forked Python sandboxes.

Off by default (``hearth server --memory-merge`` / ``HEARTH_MEMORY_MERGE=1`` turns it on).
With it, each Python runtime's zygote opts its memory in with
``prctl(PR_SET_MEMORY_MERGE)`` (Linux 6.4+), which every process it forks inherits: the
sandboxes it forks and the SnapStart templates and spares forked from those. The kernel's
``ksmd`` then scans those processes' anonymous pages and maps every set of byte-identical
pages to one write-protected copy; a write to such a page takes a copy-on-write fault and
gets a private page again.

Why it pays: sandboxes of one runtime are forks of one zygote that run the same code, so
most of the pages a sandbox copies on write (reference counts and other interpreter
state CPython writes into the zygote's objects, the heap and arenas of the same start-up
steps) hold the same bytes in every sandbox. Measured (``BENCH_ONLY=density``, README
"Performance"): see the density rows there.

Why it is off by default (the trade-off): KSM is global. Pages of sandboxes of different
functions and different *accounts* get merged with each other, and a merged page is a
channel between them: a sandbox that writes a page whose content it guessed can tell from
the copy-on-write fault's time whether another sandbox holds an identical page (memory
deduplication attacks: guessing another tenant's data a page at a time, telling which
library versions or data it has loaded), and merged pages are what Flip Feng Shui style
Rowhammer attacks need to corrupt another tenant's memory. There is no way to merge only
within one account (ksmd has no notion of groups), which is why public clouds turn
cross-tenant deduplication off. Turn it on where every function on the host belongs to
one trust domain (one team's functions, development machines, CI), not where mutually
distrusting accounts share a host.

Operator's part: the server starts ``ksmd`` (``/sys/kernel/mm/ksm/run`` = 1) if it is
off and leaves its tuning alone; how fast ksmd merges and how much CPU it burns is
``pages_to_scan`` / ``sleep_millisecs``, or ``advisor_mode`` = ``scan-time`` to let the
kernel tune both (README "Performance" has what was measured).
"""

from __future__ import annotations

import logging
import os

log = logging.getLogger(__name__)

#: ``prctl`` option (linux/prctl.h, Linux 6.4+): every VMA of the process, present and
#: future, is KSM-mergeable; inherited by ``fork``.
PR_SET_MEMORY_MERGE = 67
KSM_DIR = "/sys/kernel/mm/ksm"


def start_ksmd(ksm_dir: str = KSM_DIR) -> str | None:
    """Make sure ``ksmd`` runs (``run`` = 1). Returns why merging cannot happen, or None.

    ``run`` = 2 (unmerge everything) is left alone: an operator asked for it."""
    path = os.path.join(ksm_dir, "run")
    try:
        with open(path) as f:
            state = f.read().strip()
        if state == "1":
            return None
        if state != "0":
            return f"ksmd is set to run={state}"
        with open(path, "w") as f:
            f.write("1")
    except OSError as exc:
        return f"cannot start ksmd ({path}): {exc}"
    log.info("memory merging: started ksmd (%s = 1)", path)
    return None


def ksm_stats(ksm_dir: str = KSM_DIR) -> dict[str, int]:
    """The counters of ``/sys/kernel/mm/ksm`` (empty without KSM)."""
    out: dict[str, int] = {}
    try:
        names = os.listdir(ksm_dir)
    except OSError:
        return out
    for name in names:
        try:
            with open(os.path.join(ksm_dir, name)) as f:
                out[name] = int(f.read().split()[0])
        except (OSError, ValueError, IndexError):
            continue
    return out
