"""How long an execution environment may live: its credentials' lifetime bounds it.

Every environment gets temporary credentials when it starts (``AWS_ACCESS_KEY_ID`` /
``AWS_SECRET_ACCESS_KEY`` / ``AWS_SESSION_TOKEN``, :mod:`hearth.api.session_keys`: 12 h),
and a runtime reads them once, at Init. Lambda never renews them inside an environment:
its environments are recycled, and a new one gets new credentials. Hearth does the same:
an environment older than ``max_age`` (the credentials' lifetime minus a margin longer
than the longest invocation, 15 min) is retired:

1. the reaper finds it (every ``reap_interval``); if it is provisioned, a replacement is
   initialized first, so the configuration's count of READY environments never drops;
2. then, idle, it is killed at once; busy, it finishes its invocation and is killed
   instead of going back to the pool (:meth:`Lifetimes.retiring`).

An environment forked from a SnapStart template carries the template's environment
variables, so it is as old as its template (``born`` is the template's start), and a
template past ``max_age`` forks no more environments (:mod:`.templates`).

Time is injected (``clock``, monotonic seconds) so the policy is tested without waiting.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable, Iterable
from typing import Generic, TypeVar

E = TypeVar("E", bound=Hashable)

MAX_AGE = 11 * 3600.0
"""Default: credentials last 12 h; one hour is left for the last invocation (≤ 15 min)."""


class Lifetimes(Generic[E]):
    """Birth times of live environments, and which of them are too old to keep."""

    def __init__(self, max_age: float = MAX_AGE, clock: Callable[[], float] = time.monotonic):
        self.max_age = max_age
        self.clock = clock
        self._born: dict[E, float] = {}
        self.renewing: set[E] = set()
        """Provisioned environments whose replacement is being initialized (they serve on)."""
        self.retiring: set[E] = set()
        """Environments retired while busy: killed when their invocation ends."""

    def born(self, env: E, at: float | None = None) -> None:
        """Record ``env``'s birth: now, or ``at`` (a forked environment: its template's)."""
        self._born[env] = self.clock() if at is None else at

    def forget(self, env: E) -> None:
        self._born.pop(env, None)
        self.renewing.discard(env)
        self.retiring.discard(env)

    def expired(self, envs: Iterable[E]) -> list[E]:
        """Those of ``envs`` older than ``max_age`` and not already being retired."""
        deadline = self.clock() - self.max_age
        return [
            env
            for env in envs
            if self._born.get(env, deadline + 1) <= deadline
            and env not in self.retiring
            and env not in self.renewing
        ]

    def too_old(self, born: float) -> bool:
        """Whether something born at ``born`` is past ``max_age`` now."""
        return self.clock() - born >= self.max_age
