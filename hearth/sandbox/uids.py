"""Allocation of a distinct unprivileged host uid to every live sandbox.

Two sandboxes never share a uid, so even a process that escaped its namespaces could not
signal or ptrace another sandbox's processes or read its files. The cursor rotates
through the range so a uid is not handed out again right after it was released (files a
killed sandbox left in a shared place would otherwise belong to the next one).
"""

from __future__ import annotations

from hearth.errors import SandboxError


class UidAllocator:
    def __init__(self, base: int, count: int) -> None:
        if base <= 0 or count <= 0:
            raise SandboxError(f"invalid sandbox uid range {base}+{count}: must exclude root")
        self.base = base
        self.count = count
        self._used: set[int] = set()
        self._cursor = 0

    def acquire(self) -> int:
        if len(self._used) >= self.count:
            raise SandboxError(f"all {self.count} sandbox uids are in use")
        while True:
            uid = self.base + self._cursor
            self._cursor = (self._cursor + 1) % self.count
            if uid not in self._used:
                self._used.add(uid)
                return uid

    def release(self, uid: int) -> None:
        self._used.discard(uid)

    def __len__(self) -> int:
        return len(self._used)
