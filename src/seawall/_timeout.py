"""Timeout: real cancellation for coroutines, a published deadline for threads."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from seawall import _deadline, _loop_timeouts
from seawall._base import PolicyBase, _NotAwaitable
from seawall._clock import Clock
from seawall._config import ReadOnly, configured
from seawall._deadline import Deadline
from seawall._errors import TimeoutExceededError
from seawall._stats.counters import AtomicCounter
from seawall._validate import check_number

_enter = _deadline.enter
_leave = _deadline.leave
_publish = _deadline.publish
_new_deadline = object.__new__
_current_deadline = _deadline.current_deadline
_enter_scope = _loop_timeouts.enter
_leave_scope = _loop_timeouts.leave
_expired = _loop_timeouts.expired
_resume = _loop_timeouts.resume

__all__ = ["Timeout", "TimeoutCounts", "TimeoutSnapshot"]

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


@dataclass(frozen=True, slots=True)
class TimeoutSnapshot:
    """A timeout's lifetime outcomes: calls in time, failures inside it, its timeouts, and
    calls cancelled (or interrupted) from outside."""

    name: str
    seconds: float
    success: int
    failure: int
    timeout: int
    cancelled: int


class TimeoutView:
    """What a Policy's fast path (seawall._fast) may use of a timeout: its ``seconds`` (fixed
    once built), its public ``counts`` and ``count_success``, and its raw shells (``acall``
    takes ``_started`` for the rest of a call whose first attempt the fast path made)."""

    __slots__ = ("acall", "call", "count_success", "counts", "seconds")

    def __init__(self, timeout: Timeout) -> None:
        self.seconds = timeout._seconds
        self.counts = timeout._counts
        self.count_success = timeout._count_success
        self.call = timeout._call
        self.acall = timeout._acall


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

    seconds: ReadOnly[float] = ReadOnly("_seconds")

    @configured
    def __init__(self, seconds: float, *, name: str | None = None, clock: Clock | None = None):
        super().__init__(name=name, clock=clock)
        self._seconds = check_number("seconds", seconds)
        self._counts = TimeoutCounts()
        self._count_success = self._counts.success.increment

    def _call(self, fn: Callable[..., R], /, *args: Any) -> R:
        clock = self._clock
        # Filled in here rather than by Deadline's __init__: one frame fewer on every call.
        own = _new_deadline(Deadline)
        own.at, own.clock, own.owner = clock.monotonic() + self._seconds, clock, self
        # Outside any other deadline (the common case) this one is published as it is.
        token = _publish(own) if _current_deadline() is None else _enter(own)
        try:
            result = fn(*args)
        except TimeoutExceededError:
            # Raised inside on this deadline's behalf (e.g. by a bulkhead that stopped waiting).
            (self._counts.timeout if own.remaining() <= 0.0 else self._counts.failure).increment()
            raise
        except Exception:
            self._counts.failure.increment()
            raise
        except BaseException:
            self._counts.cancelled.increment()
            raise
        finally:
            _leave(token)
        # Each timeout judges its own deadline: an enclosing one that passed reports itself.
        if clock.monotonic() > own.at:
            self._counts.timeout.increment()
            raise own.exceeded()
        self._count_success()
        return result

    async def _acall(
        self,
        fn: Callable[..., Awaitable[R]],
        /,
        *args: Any,
        _started: tuple[_loop_timeouts.Scope, float] | None = None,
    ) -> R:
        # Each timeout has its own scope (asyncio.timeout's semantics, one timer per loop): an
        # enclosing sooner one cancels on its own account. Entered first: without a running
        # loop it raises, and no deadline may be left behind.
        clock = self._clock
        if _started is None:
            seconds = self._seconds
            scope = _enter_scope(seconds)
            at = clock.monotonic() + seconds
        else:
            # The rest of a call whose first attempt a Policy's fast path made under this
            # timeout: its scope (a dormant follower) and deadline date from the call's start.
            scope, at = _started
            _resume(scope)
        own = _new_deadline(Deadline)  # as in _call
        own.at, own.clock, own.owner = at, clock, self
        token = _publish(own) if _current_deadline() is None else _enter(own)
        try:
            try:
                result = await fn(*args)
            except BaseException as exc:
                if _leave_scope(scope, exc):
                    raise TimeoutError from exc  # as asyncio.timeout turns its cancellation
                raise
            _leave_scope(scope, None)
        except TimeoutError as exc:
            if _expired(scope):
                self._counts.timeout.increment()
                raise own.exceeded() from exc
            if isinstance(exc, TimeoutExceededError) and own.remaining() <= 0.0:
                # Raised inside on this deadline's behalf (a bulkhead that stopped waiting, an
                # httpx attempt whose timeouts were cut to it), before the scope fired.
                self._counts.timeout.increment()
                raise
            self._counts.failure.increment()
            raise
        except Exception:
            self._counts.failure.increment()
            raise
        except BaseException as exc:
            if not isinstance(exc, _NotAwaitable):  # a refused acall is no outcome
                self._counts.cancelled.increment()
            raise
        finally:
            _leave(token)
        if _expired(scope):
            # The callee swallowed its cancellation and returned late: dropped, as in sync.
            self._counts.timeout.increment()
            raise own.exceeded()
        self._count_success()
        return result

    def _fast_view(self) -> TimeoutView:
        return TimeoutView(self)

    def snapshot(self) -> TimeoutSnapshot:
        counts = self._counts
        return TimeoutSnapshot(
            self.name,
            self._seconds,
            counts.success.value,
            counts.failure.value,
            counts.timeout.value,
            counts.cancelled.value,
        )

    def _has_run(self) -> bool:
        return super()._has_run() or any(self._counts.as_dict().values())

    def __repr__(self) -> str:
        return f"Timeout({self._seconds:g}, name={self.name!r})"
