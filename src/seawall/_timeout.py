"""Timeout: real cancellation for coroutines, a published deadline for threads."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from seawall import _aio, _deadline
from seawall._base import PolicyBase, _NotAwaitable, remember_init
from seawall._clock import Clock
from seawall._deadline import Deadline
from seawall._errors import TimeoutExceededError
from seawall._validate import check_number
from seawall._window import AtomicCounter

_enter = _deadline.enter
_leave = _deadline.leave
_publish = _deadline.publish
_new_deadline = object.__new__
_current_deadline = _deadline.current_deadline

__all__ = ["Timeout", "TimeoutCounts"]

R = TypeVar("R")


class TimeoutCounts:
    """Lifetime outcomes of calls through a :class:`Timeout`, lock-free."""

    __slots__ = ("cancelled", "failure", "success", "timeout")

    def __init__(self) -> None:
        self.success = AtomicCounter()
        self.failure = AtomicCounter()
        self.timeout = AtomicCounter()
        self.cancelled = AtomicCounter()

    def as_dict(self) -> dict[str, int]:
        return {
            "success": self.success.value,
            "failure": self.failure.value,
            "timeout": self.timeout.value,
            "cancelled": self.cancelled.value,
        }


class Timeout(PolicyBase):
    """Bounds how long a call may take.

    Async: the call is cancelled when ``seconds`` pass (the callee sees ``CancelledError``)
    and the caller gets :class:`TimeoutExceededError`. Cancellation from outside stays a
    ``CancelledError`` and is never reported as a timeout.

    Sync: a thread cannot be interrupted, so the deadline is published (see
    :func:`seawall.remaining`) for the code inside to honour; seawall's httpx transports
    shorten each request's timeouts to it. Code that ignores it runs to the end; if it returns
    after the deadline, its result is dropped and the caller gets :class:`TimeoutExceededError`
    (an exception it raises late propagates unchanged). A coroutine that swallows its
    cancellation and returns late is treated the same way.
    """

    _call_outcomes = frozenset({"timeout"})

    #: What a passed deadline raises. seawall's httpx transports set an httpx-compatible
    #: subclass on their own timeouts, so that a retry on httpx's errors sees it as one.
    _error: type[TimeoutExceededError] = TimeoutExceededError

    @remember_init
    def __init__(self, seconds: float, *, name: str | None = None, clock: Clock | None = None):
        super().__init__(name=name, clock=clock)
        self.seconds = check_number("seconds", seconds)
        self.counts = TimeoutCounts()
        self._count_success = self.counts.success.increment

    def _deadline(self) -> Deadline:
        clock = self._clock
        return Deadline(clock.monotonic() + self.seconds, clock, self)

    def _call(self, fn: Callable[..., R], /, *args: Any) -> R:
        clock = self._clock
        # Filled in here rather than by Deadline's __init__: one frame fewer on every call.
        own = _new_deadline(Deadline)
        own.at, own.clock, own.owner = clock.monotonic() + self.seconds, clock, self
        # Outside any other deadline (the common case) this one is published as it is.
        token = _publish(own) if _current_deadline() is None else _enter(own)
        try:
            result = fn(*args)
        except TimeoutExceededError:
            # Raised inside on this deadline's behalf (e.g. by a bulkhead that stopped waiting).
            (self.counts.timeout if own.remaining() <= 0.0 else self.counts.failure).increment()
            raise
        except Exception:
            self.counts.failure.increment()
            raise
        except BaseException:
            self.counts.cancelled.increment()
            raise
        finally:
            _leave(token)
        # Each timeout judges its own deadline: an enclosing one that passed reports itself.
        if clock.monotonic() > own.at:
            self.counts.timeout.increment()
            raise own.exceeded()
        self._count_success()
        return result

    async def _acall(self, fn: Callable[..., Awaitable[R]], /, *args: Any) -> R:
        # Each timeout has its own scope: an enclosing sooner one cancels on its own account.
        # Made first: without a running loop it raises, and no deadline may be left behind.
        scope = _aio.timeout(self.seconds)
        own = self._deadline()
        token = _publish(own) if _current_deadline() is None else _enter(own)
        try:
            async with scope:
                result = await fn(*args)
        except TimeoutError as exc:
            if scope.expired():
                self.counts.timeout.increment()
                raise own.exceeded() from exc
            if isinstance(exc, TimeoutExceededError) and own.remaining() <= 0.0:
                # Raised inside on this deadline's behalf (a bulkhead that stopped waiting, an
                # httpx attempt whose timeouts were cut to it), before the scope fired.
                self.counts.timeout.increment()
                raise
            self.counts.failure.increment()
            raise
        except Exception:
            self.counts.failure.increment()
            raise
        except BaseException as exc:
            if not isinstance(exc, _NotAwaitable):  # a refused acall is no outcome
                self.counts.cancelled.increment()
            raise
        finally:
            _deadline.leave(token)
        if scope.expired():
            # The callee swallowed its cancellation and returned late: dropped, as in sync.
            self.counts.timeout.increment()
            raise own.exceeded()
        self.counts.success.increment()
        return result

    def _has_run(self) -> bool:
        return super()._has_run() or any(self.counts.as_dict().values())

    def __repr__(self) -> str:
        return f"Timeout({self.seconds:g}, name={self.name!r})"
