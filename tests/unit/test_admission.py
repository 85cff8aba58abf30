"""Admission counting (fast tier): reserved pools, the unreserved pool, release."""

from __future__ import annotations

import pytest

from hearth.errors import TooManyRequests
from hearth.invoke.admission import AccountLimits, Admission


def test_unreserved_pool_is_the_limit_minus_reservations() -> None:
    a = Admission(AccountLimits(concurrency=10, min_unreserved=2))
    assert a.unreserved("acct") == 10
    assert a.can_reserve("acct", "f", 8) and not a.can_reserve("acct", "f", 9)
    a.set_reserved("acct", "f", 3)
    assert a.unreserved("acct") == 7
    assert a.can_reserve("acct", "f", 8)  # replacing its own reservation counts once
    a.set_reserved("acct", "f", None)
    assert a.unreserved("acct") == 10 and a.reserved("acct", "f") is None


def test_reserved_function_is_throttled_at_its_reservation_only() -> None:
    a = Admission(AccountLimits(concurrency=10, min_unreserved=2))
    a.set_reserved("acct", "f", 2)
    slots = [a.acquire("acct", "f"), a.acquire("acct", "f")]
    with pytest.raises(TooManyRequests) as ei:
        a.acquire("acct", "f")
    assert ei.value.extra["Reason"] == "ReservedFunctionConcurrentInvocationLimitExceeded"
    assert ei.value.headers == {"Retry-After": "1"}
    others = [a.acquire("acct", "g") for _ in range(8)]  # the unreserved 8 are untouched
    with pytest.raises(TooManyRequests) as ei:
        a.acquire("acct", "g")
    assert ei.value.extra["Reason"] == "ConcurrentInvocationLimitExceeded"
    assert a.in_flight("acct") == 10
    for s in slots + others:
        a.release(s)
    assert a.in_flight("acct") == 0


def test_zero_reservation_throttles_everything_and_accounts_are_separate() -> None:
    a = Admission(AccountLimits(concurrency=1, min_unreserved=0))
    a.set_reserved("acct", "f", 0)
    with pytest.raises(TooManyRequests):
        a.acquire("acct", "f")
    slot = a.acquire("other", "f")  # another account's function of the same name
    a.release(slot)


def test_release_uses_the_pool_the_slot_came_from() -> None:
    a = Admission(AccountLimits(concurrency=5, min_unreserved=1))
    slot = a.acquire("acct", "f")  # unreserved
    a.set_reserved("acct", "f", 1)  # reserved while the request runs
    a.release(slot)
    assert a.in_flight("acct") == 0
    a.release(a.acquire("acct", "f"))


def test_provisioned_concurrency_is_held_back_from_on_demand_use() -> None:
    a = Admission(AccountLimits(concurrency=6, min_unreserved=2))
    a.set_provisioned("acct", "f", 2)
    assert a.unreserved("acct") == 4 and a.unreserved("acct", without="f") == 6
    others = [a.acquire("acct", "g") for _ in range(4)]
    with pytest.raises(TooManyRequests) as ei:
        a.acquire("acct", "g")
    assert ei.value.extra["Reason"] == "ConcurrentInvocationLimitExceeded"
    mine = [a.acquire("acct", "f"), a.acquire("acct", "f")]  # its provisioned slots
    with pytest.raises(TooManyRequests):
        a.acquire("acct", "f")  # beyond them it spills to the (full) on-demand pool
    a.release(others.pop())
    mine.append(a.acquire("acct", "f"))  # a spill-over slot from the pool
    assert a.in_flight("acct") == 6
    for s in others + mine:
        a.release(s)
    assert a.in_flight("acct") == 0
    # A reservation takes the provisioned concurrency into itself; removing both frees all.
    a.set_reserved("acct", "f", 3)
    assert a.unreserved("acct") == 3
    a.set_reserved("acct", "f", None)
    a.set_provisioned("acct", "f", 0)
    assert a.unreserved("acct") == 6
