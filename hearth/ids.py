"""Request and trace ids, made on every invoke.

Both need unpredictable bits (a request id is a version 4 UUID; an X-Ray trace id has 96
random bits), and ``os.urandom`` is a ``getrandom`` system call: two per invoke, each
~5-10 µs on this paravirtualised VM under load. The bits come from the same kernel
CSPRNG, read 4 KiB at a time and handed out in slices (a lock keeps slices distinct
across threads), so an invoke makes no system call for them.
"""

from __future__ import annotations

import os
import threading
import time

_CHUNK = 4096


class _Entropy:
    def __init__(self) -> None:
        self._buf = b""
        self._pos = 0
        self._lock = threading.Lock()

    def take(self, n: int) -> bytes:
        with self._lock:
            pos = self._pos
            if pos + n > len(self._buf):
                self._buf = os.urandom(_CHUNK)
                pos = 0
            self._pos = pos + n
            return self._buf[pos : pos + n]

    def reseed(self) -> None:
        """Forget buffered bits (after ``fork``: parent and child must not share them).
        Runs in the child, where another thread may have held the lock: a new one."""
        self._lock = threading.Lock()
        self._buf = b""
        self._pos = 0


_entropy = _Entropy()
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_entropy.reseed)

#: The RFC 4122 variant: the top two bits of the clock_seq_hi byte are 10.
_VARIANT = {d: "89ab"[int(d, 16) & 3] for d in "0123456789abcdef"}


def new_request_id() -> str:
    """A random (version 4) UUID as ``str(uuid.uuid4())`` gives it (no UUID object)."""
    h = _entropy.take(16).hex()
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{_VARIANT[h[16]]}{h[17:20]}-{h[20:]}"


def new_trace_id() -> str:
    """An X-Ray trace header for a request that came without one (not sampled)."""
    rand = _entropy.take(20).hex()
    return f"Root=1-{int(time.time()):08x}-{rand[:24]};Parent={rand[24:]};Sampled=0"
