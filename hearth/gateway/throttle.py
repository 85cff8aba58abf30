"""Token buckets for stage, route and usage-plan throttling.

A bucket holds at most ``burst`` tokens and gains ``rate`` tokens per second; a request
takes one token or is refused (the caller answers 429 at once: nothing queues). A bucket
starts full, as API Gateway's do. ``burst`` 0 refuses everything, as on AWS.

Buckets live in a bounded dict keyed by whatever identifies the limit (API, stage, route
key; or usage plan and key); when full, the least recently created half is dropped (a
dropped bucket comes back full, which errs towards serving). The clock is injected.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass

MAX_BUCKETS = 100_000


@dataclass(slots=True)
class Bucket:
    rate: float
    burst: int
    tokens: float
    stamp: float

    def take(self, now: float) -> bool:
        if now > self.stamp:
            self.tokens = min(float(self.burst), self.tokens + (now - self.stamp) * self.rate)
            self.stamp = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False


class Buckets:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._buckets: dict[Hashable, Bucket] = {}

    def allow(self, key: Hashable, rate: float, burst: int) -> bool:
        """Take a token from the bucket of ``key`` (created full with these limits)."""
        now = self._clock()
        b = self._buckets.get(key)
        if b is None or b.rate != rate or b.burst != burst:
            if len(self._buckets) >= MAX_BUCKETS:
                for old in list(self._buckets)[: MAX_BUCKETS // 2]:
                    del self._buckets[old]
            b = Bucket(rate, burst, float(burst), now)
            self._buckets[key] = b
        return b.take(now)

    def statistics(self) -> dict[str, int]:
        return {"buckets": len(self._buckets)}
