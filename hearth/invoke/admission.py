"""Concurrency admission: how many requests may be served at once, as Lambda counts them.

Lambda's model (https://docs.aws.amazon.com/lambda/latest/dg/lambda-concurrency.html):

* Concurrency is the number of requests being served at the same moment; one execution
  environment serves one request at a time.
* An account has a concurrency limit (1,000 by default). A function may *reserve* part
  of it: the function can then never use more than its reservation, and no other
  function can use the reserved part. Reserved concurrency 0 throttles every invoke.
* Functions without a reservation share the *unreserved* pool: the account limit minus
  the sum of all reservations. AWS keeps at least 100 in that pool (``min_unreserved``,
  configurable), so a reservation that would shrink it below is refused.

Algorithm of :meth:`Admission.acquire` (a few dict operations; it is on the hot path):

1. If the function has a reservation R: admit when its in-flight count is below R, else
   throttle with Reason ``ReservedFunctionConcurrentInvocationLimitExceeded``.
2. Else admit when the account's unreserved in-flight count is below the unreserved
   pool, else throttle with Reason ``ConcurrentInvocationLimitExceeded``.

Every throttle is an immediate 429 ``TooManyRequestsException`` with a ``Retry-After``
header; nothing queues. :meth:`release` undoes exactly what :meth:`acquire` counted (the
returned :class:`Slot` remembers which pool it came from, so a reservation changed
while a request runs never skews the counters).
"""

from __future__ import annotations

from dataclasses import dataclass

from hearth.errors import TooManyRequests

FunctionKey = tuple[str, str]
"""(account id, function name): reservations are per function, across its versions."""


@dataclass(slots=True)
class AccountLimits:
    concurrency: int = 1000
    """Concurrent executions of an account (GetAccountSettings' ConcurrentExecutions)."""
    min_unreserved: int = 100
    """What reservations must leave in the unreserved pool (AWS: 100)."""


@dataclass(frozen=True, slots=True)
class Slot:
    """One admitted request: which counters to give back on release."""

    account_id: str
    function: FunctionKey | None
    """Set when the slot came from the function's reservation, else None (unreserved)."""


def throttle(reason: str) -> TooManyRequests:
    return TooManyRequests(
        "Rate Exceeded.",
        extra={"Reason": reason, "Type": "User"},
        headers={"Retry-After": "1"},
    )


class Admission:
    """Counts requests being served at once, per account and per reserved function."""

    def __init__(self, limits: AccountLimits) -> None:
        self._limits = limits
        self._reserved: dict[FunctionKey, int] = {}
        self._reserved_sum: dict[str, int] = {}
        self._fn_in_flight: dict[FunctionKey, int] = {}
        self._unreserved_in_flight: dict[str, int] = {}

    # -- configuration ------------------------------------------------------------------
    @property
    def limit(self) -> int:
        return self._limits.concurrency

    @property
    def min_unreserved(self) -> int:
        return self._limits.min_unreserved

    def reserved(self, account_id: str, name: str) -> int | None:
        return self._reserved.get((account_id, name))

    def unreserved(self, account_id: str) -> int:
        """The account's unreserved pool: its limit minus every reservation."""
        return self._limits.concurrency - self._reserved_sum.get(account_id, 0)

    def can_reserve(self, account_id: str, name: str, amount: int) -> bool:
        """Whether reserving ``amount`` for ``name`` leaves the unreserved minimum."""
        current = self._reserved.get((account_id, name), 0)
        after = self.unreserved(account_id) + current - amount
        return after >= self._limits.min_unreserved

    def set_reserved(self, account_id: str, name: str, amount: int | None) -> None:
        """Set (or with None, remove) a function's reservation."""
        key = (account_id, name)
        old = self._reserved.pop(key, 0)
        total = self._reserved_sum.get(account_id, 0) - old
        if amount is not None:
            self._reserved[key] = amount
            total += amount
        self._reserved_sum[account_id] = total

    # -- admission (hot path) -------------------------------------------------------------
    def acquire(self, account_id: str, name: str) -> Slot:
        """Admit one request or raise :class:`TooManyRequests` (see the module docstring)."""
        key = (account_id, name)
        reserved = self._reserved.get(key)
        if reserved is not None:
            n = self._fn_in_flight.get(key, 0)
            if n >= reserved:
                raise throttle("ReservedFunctionConcurrentInvocationLimitExceeded")
            self._fn_in_flight[key] = n + 1
            return Slot(account_id, key)
        n = self._unreserved_in_flight.get(account_id, 0)
        if n >= self._limits.concurrency - self._reserved_sum.get(account_id, 0):
            raise throttle("ConcurrentInvocationLimitExceeded")
        self._unreserved_in_flight[account_id] = n + 1
        return Slot(account_id, None)

    def release(self, slot: Slot) -> None:
        if slot.function is not None:
            self._fn_in_flight[slot.function] -= 1
        else:
            self._unreserved_in_flight[slot.account_id] -= 1

    def in_flight(self, account_id: str) -> int:
        """Requests of the account being served now (reserved and unreserved)."""
        n = self._unreserved_in_flight.get(account_id, 0)
        return n + sum(v for (acct, _), v in self._fn_in_flight.items() if acct == account_id)
