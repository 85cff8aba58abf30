"""Concurrency admission: how many requests may be served at once, as Lambda counts them.

Lambda's model (https://docs.aws.amazon.com/lambda/latest/dg/lambda-concurrency.html):

* Concurrency is the number of requests being served at the same moment; one execution
  environment serves one request at a time.
* An account has a concurrency limit (1,000 by default). A function may *reserve* part
  of it: the function can then never use more than its reservation, and no other
  function can use the reserved part. Reserved concurrency 0 throttles every invoke.
* Provisioned concurrency counts against the account too: a function's provisioned
  environments come out of its reservation, or, without one, out of the account's
  concurrency (AWS's ``ClaimedAccountConcurrency`` metric: "the amount of concurrency
  that is unavailable for on-demand invocations ... the total reserved concurrency plus
  total provisioned concurrency", monitoring-concurrency.html).
* Functions without a reservation share the *unreserved* pool: the account limit minus
  the sum of all reservations and of the provisioned concurrency of functions without a
  reservation. AWS keeps at least 100 in that pool (``min_unreserved``, configurable), so
  a reservation that would shrink it below is refused.

Algorithm of :meth:`Admission.acquire` (a few dict operations; it is on the hot path):

1. If the function has a reservation R: admit when its in-flight count is below R, else
   throttle with Reason ``ReservedFunctionConcurrentInvocationLimitExceeded``.
2. Else, if the function has provisioned concurrency P (all its versions and aliases
   together) and fewer than P of its requests hold a provisioned slot: admit into one.
3. Else (on-demand) admit when the account's unreserved in-flight count is below the
   unreserved pool, else throttle with Reason ``ConcurrentInvocationLimitExceeded``.

Provisioned slots are counted per function, not per version: they bound what the
function's requests can take beyond the on-demand pool by what is held back for it, so
the account's total never exceeds its limit, whichever version a request runs.

Every throttle is an immediate 429 ``TooManyRequestsException`` with a ``Retry-After``
header; nothing queues. :meth:`release` undoes exactly what :meth:`acquire` counted (the
returned :class:`Slot` remembers which pool it came from, so a reservation changed
while a request runs never skews the counters).
"""

from __future__ import annotations

from dataclasses import dataclass

from hearth.errors import throttle

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
    """Set when the slot came from the function's reservation or its provisioned
    concurrency, else None (the unreserved pool)."""


class Admission:
    """Counts requests being served at once, per account and per reserved function."""

    def __init__(self, limits: AccountLimits) -> None:
        self._limits = limits
        self._reserved: dict[FunctionKey, int] = {}
        self._reserved_sum: dict[str, int] = {}
        self._fn_in_flight: dict[FunctionKey, int] = {}
        self._unreserved_in_flight: dict[str, int] = {}
        self._provisioned: dict[FunctionKey, int] = {}
        """Provisioned concurrency of functions (every configuration summed), reserved or not."""
        self._pool: dict[str, int] = {}
        """The account's unreserved pool (absent: the whole limit); kept by :meth:`_recount`."""

    # -- configuration ------------------------------------------------------------------
    @property
    def limit(self) -> int:
        return self._limits.concurrency

    @property
    def min_unreserved(self) -> int:
        return self._limits.min_unreserved

    def reserved(self, account_id: str, name: str) -> int | None:
        return self._reserved.get((account_id, name))

    def provisioned(self, account_id: str, name: str) -> int:
        return self._provisioned.get((account_id, name), 0)

    def unreserved(self, account_id: str, without: str | None = None) -> int:
        """The account's unreserved pool (AWS's ``UnreservedConcurrentExecutions``): its
        limit minus every reservation and the provisioned concurrency of functions without
        one. ``without`` leaves one function's claim out (a new setting replaces it)."""
        pool = self._pool.get(account_id, self._limits.concurrency)
        if without is not None:
            key = (account_id, without)
            reserved = self._reserved.get(key)
            pool += reserved if reserved is not None else self._provisioned.get(key, 0)
        return pool

    def can_reserve(self, account_id: str, name: str, amount: int) -> bool:
        """Whether reserving ``amount`` for ``name`` leaves the unreserved minimum."""
        after = self.unreserved(account_id, without=name) - amount
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
        self._recount(account_id)

    def set_provisioned(self, account_id: str, name: str, total: int) -> None:
        """Set a function's provisioned concurrency (the sum of its configurations; 0: none)."""
        key = (account_id, name)
        if total > 0:
            self._provisioned[key] = total
        else:
            self._provisioned.pop(key, None)
        self._recount(account_id)

    def _recount(self, account_id: str) -> None:
        held = sum(
            n
            for key, n in self._provisioned.items()
            if key[0] == account_id and key not in self._reserved
        )
        self._pool[account_id] = (
            self._limits.concurrency - self._reserved_sum.get(account_id, 0) - held
        )

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
        provisioned = self._provisioned.get(key)
        if provisioned is not None:
            n = self._fn_in_flight.get(key, 0)
            if n < provisioned:
                self._fn_in_flight[key] = n + 1
                return Slot(account_id, key)
        n = self._unreserved_in_flight.get(account_id, 0)
        if n >= self._pool.get(account_id, self._limits.concurrency):
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
