"""Fallback: a value (or a function of the exception) instead of an exception."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from seawall._base import PolicyBase, is_async_callable
from seawall._clock import Clock
from seawall._config import configured
from seawall._stats.counters import AtomicCounter
from seawall._validate import ExceptionMatcher, classifier

__all__ = ["Fallback", "FallbackSnapshot"]


def _through(fn: Callable[..., R], /, *args: Any) -> R:
    return fn(*args)


async def _athrough(fn: Callable[..., Awaitable[R]], /, *args: Any) -> R:
    return await fn(*args)


R = TypeVar("R")

_MISSING: Any = object()


@dataclass(frozen=True, slots=True)
class FallbackSnapshot:
    """How many times a fallback answered in place of a failure."""

    name: str
    used: int


class Fallback(PolicyBase):
    """Returns ``value`` instead of raising, for the exceptions ``on`` names.

    If ``value`` is callable it is called with the exception and its return value is used
    (awaited in async calls when it is a coroutine function). To fall back to a callable
    object itself, wrap it: ``Fallback(lambda exc: handler)``.
    """

    _call_outcomes = frozenset({"fallback"})

    @configured
    def __init__(
        self,
        value: Any,
        *,
        on: ExceptionMatcher = _MISSING,
        name: str | None = None,
        clock: Clock | None = None,
    ) -> None:
        super().__init__(name=name, clock=clock)
        if on is _MISSING:
            raise TypeError(
                "Fallback needs on=: the exception types (or a predicate) to answer with the "
                "fallback; say on=Exception if you mean every failure"
            )
        matcher = classifier("on", on)
        if matcher is None:
            raise TypeError("on must be exception types or a predicate, got None")
        self._matches = matcher
        self._value = value
        self._is_function = callable(value)
        self._is_async = is_async_callable(value)
        self._used = AtomicCounter()
        # Called on its own, its answers are recorded as their own outcome: the recording
        # shell applies it around the bare call (see PolicyBase).
        self._fallback_head = (self, _through, _athrough)

    def _applies(self, exc: BaseException) -> bool:
        """Whether this fallback answers ``exc`` (only ever an ``Exception``)."""
        return isinstance(exc, Exception) and self._matches(exc)

    def _answer(self, exc: Exception) -> Any:
        """The answer for ``exc``, which :meth:`_applies` to it, in a sync call."""
        if self._is_async:
            raise TypeError(
                f"fallback {self.name!r} is a coroutine function; it can only serve async calls"
            ) from exc
        self._used.increment()
        return self._value(exc) if self._is_function else self._value

    async def _aanswer(self, exc: Exception) -> Any:
        """The answer for ``exc`` in an async call."""
        self._used.increment()
        if self._is_async:
            return await self._value(exc)
        return self._value(exc) if self._is_function else self._value

    def snapshot(self) -> FallbackSnapshot:
        return FallbackSnapshot(self.name, self._used.value)

    def _has_run(self) -> bool:
        return super()._has_run() or self._used.value > 0

    def _call(self, fn: Callable[..., R], /, *args: Any) -> R:
        try:
            return fn(*args)
        except Exception as exc:
            if not self._matches(exc):
                raise
            return self._answer(exc)  # type: ignore[no-any-return]

    async def _acall(self, fn: Callable[..., Awaitable[R]], /, *args: Any) -> R:
        try:
            return await fn(*args)
        except Exception as exc:
            if not self._matches(exc):
                raise
            return await self._aanswer(exc)  # type: ignore[no-any-return]

    def __repr__(self) -> str:
        return f"Fallback({self._value!r}, name={self.name!r})"
