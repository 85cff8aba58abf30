"""A result that arrives later and runs its callbacks at once.

The warm invoke path hands a result through three parties when the runtime answers: the
environment, the worker and router (which take back the environment and the concurrency
slot), and the HTTP connection waiting to write the response. With ``asyncio.Future``
each hand-off schedules its callbacks for the next loop iteration, and each iteration is
an ``epoll`` call (strace: one per hand-off per invoke) on the request's critical path.
A :class:`Deferred` runs its callbacks synchronously when it is settled, so the
response is written while the runtime's answer is being read.

Callbacks must not raise (one that does is logged and the others still run). Await a
Deferred through :meth:`Deferred.future`: cancelling that future only drops the interest
in the result, never the work behind it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Generic, TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")

_PENDING, _DONE, _CANCELLED = 0, 1, 2


class Deferred(Generic[T]):
    __slots__ = ("_callbacks", "_error", "_state", "_value")

    def __init__(self) -> None:
        self._callbacks: list[Callable[[Deferred[T]], None]] = []
        self._state = _PENDING
        self._value: T | None = None
        self._error: BaseException | None = None

    def done(self) -> bool:
        return self._state != _PENDING

    def cancelled(self) -> bool:
        return self._state == _CANCELLED

    def result(self) -> T:
        if self._state == _CANCELLED:
            raise asyncio.CancelledError
        if self._state == _PENDING:
            raise asyncio.InvalidStateError("result is not ready")
        if self._error is not None:
            raise self._error
        return self._value  # type: ignore[return-value]

    def exception(self) -> BaseException | None:
        if self._state == _CANCELLED:
            raise asyncio.CancelledError
        return self._error

    def then(self, callback: Callable[[Deferred[T]], None]) -> None:
        """Call ``callback(self)`` when settled (now, if it is already)."""
        if self._state == _PENDING:
            self._callbacks.append(callback)
        else:
            _call(callback, self)

    def resolve(self, value: T) -> None:
        if self._state == _PENDING:
            self._value = value
            self._settle(_DONE)

    def fail(self, error: BaseException) -> None:
        if self._state == _PENDING:
            self._error = error
            self._settle(_DONE)

    def cancel(self) -> bool:
        """Nobody wants the result any more (a client went away)."""
        if self._state != _PENDING:
            return False
        self._settle(_CANCELLED)
        return True

    def _settle(self, state: int) -> None:
        self._state = state
        callbacks, self._callbacks = self._callbacks, []
        for callback in callbacks:
            _call(callback, self)

    def forward(self, other: Deferred[T]) -> None:
        """Settle ``other`` as this one settles (cancelled, failed or resolved alike)."""
        self.then(lambda d: _forward(d, other))

    def future(self) -> asyncio.Future[T]:
        """An asyncio future of the result, to await (see the module docstring)."""
        fut: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self.then(lambda d: _copy_to(d, fut))
        return fut


def _call(callback: Callable[[Deferred[T]], None], d: Deferred[T]) -> None:
    try:
        callback(d)
    except Exception:
        log.exception("a Deferred callback failed")


def _forward(d: Deferred[T], other: Deferred[T]) -> None:
    if d.cancelled():
        other.cancel()
    elif d._error is not None:
        other.fail(d._error)
    else:
        other.resolve(d._value)  # type: ignore[arg-type]


def _copy_to(d: Deferred[T], fut: asyncio.Future[T]) -> None:
    if fut.done():
        return
    if d.cancelled():
        fut.cancel()
    elif d.exception() is not None:
        fut.set_exception(d.exception())  # type: ignore[arg-type]
    else:
        fut.set_result(d.result())
