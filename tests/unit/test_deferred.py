"""Deferred: callbacks run at once, in order, isolated from each other; awaiting it."""

from __future__ import annotations

import asyncio

import pytest

from hearth.deferred import Deferred


def test_callbacks_run_synchronously_in_order_and_late_ones_at_once() -> None:
    d = Deferred[int]()
    seen: list[tuple[str, int]] = []
    d.then(lambda x: seen.append(("a", x.result())))
    d.then(lambda x: seen.append(("b", x.result())))
    assert not d.done() and seen == []
    d.resolve(7)
    assert seen == [("a", 7), ("b", 7)]
    d.then(lambda x: seen.append(("late", x.result())))
    assert seen[-1] == ("late", 7)
    d.resolve(8)  # settled once only
    assert d.result() == 7


def test_a_failing_callback_does_not_stop_the_others() -> None:
    d = Deferred[int]()
    seen: list[int] = []

    def boom(_: Deferred[int]) -> None:
        raise RuntimeError("boom")

    d.then(boom)
    d.then(lambda x: seen.append(x.result()))
    d.resolve(1)
    assert seen == [1]


def test_failure_and_cancel() -> None:
    d = Deferred[int]()
    d.fail(ValueError("x"))
    assert isinstance(d.exception(), ValueError)
    with pytest.raises(ValueError):
        d.result()
    c = Deferred[int]()
    called: list[bool] = []
    c.then(lambda x: called.append(x.cancelled()))
    assert c.cancel() and called == [True] and not c.cancel()
    c.resolve(3)  # too late: nobody wants it
    with pytest.raises(asyncio.CancelledError):
        c.result()


def test_future_of_it_and_cancelling_that_future_leaves_it_pending() -> None:
    async def main() -> None:
        d = Deferred[str]()
        fut = d.future()
        asyncio.get_running_loop().call_soon(d.resolve, "ok")
        assert await fut == "ok"
        e = Deferred[str]()
        waiter = asyncio.ensure_future(e.future())
        await asyncio.sleep(0)
        waiter.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiter
        assert not e.done()
        e.resolve("later")
        assert e.result() == "later"

    asyncio.run(main())


def test_forward_settles_the_other_alike() -> None:
    for settle, check in (
        (lambda d: d.resolve(3), lambda o: o.result() == 3),
        (lambda d: d.fail(KeyError("k")), lambda o: isinstance(o.exception(), KeyError)),
        (lambda d: d.cancel(), lambda o: o.cancelled()),
    ):
        src: Deferred[int] = Deferred()
        other: Deferred[int] = Deferred()
        src.forward(other)
        assert not other.done()
        settle(src)
        assert other.done() and check(other)
