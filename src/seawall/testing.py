"""Helpers for testing code that uses seawall, without sleeping.

- :class:`FakeClock`: pass it as ``clock=`` to any policy; ``advance()`` moves time, and its
  sleeps return at once and are recorded in ``sleeps``.
- :func:`no_waits`: a context manager under which every retry wait is zero, whatever clock the
  policies use (handy when the code under test builds its own policies).
- :func:`force_open` / :func:`force_closed`: put a breaker in a known state; as context
  managers they give it back closed and cleared.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from seawall import _fork
from seawall._breaker import CircuitBreaker
from seawall._clock import FakeClock
from seawall._retry import zero_waits

__all__ = ["FakeClock", "force_closed", "force_open", "no_waits"]

_lock = threading.Lock()


@_fork.in_child
def _renew() -> None:
    global _lock
    _lock = threading.Lock()


@contextmanager
def no_waits() -> Iterator[None]:
    """Make every :class:`seawall.Retry` wait zero seconds inside the block (nestable, and
    restored on exit even when the block raises). Attempts, deadlines and budgets still apply."""
    with _lock:
        zero_waits.depth += 1
    try:
        yield
    finally:
        with _lock:
            zero_waits.depth -= 1


class _Restore:
    """Returned by :func:`force_open` / :func:`force_closed`: a context manager that resets
    the breaker on exit."""

    def __init__(self, breaker: CircuitBreaker) -> None:
        self._breaker = breaker

    def __enter__(self) -> CircuitBreaker:
        return self._breaker

    def __exit__(self, *exc_info: object) -> None:
        self._breaker.reset()


def force_open(breaker: CircuitBreaker) -> _Restore:
    """Make ``breaker`` reject every call (``isolate()``), e.g. to test a fallback path.

    Use as a plain call or as ``with force_open(breaker):`` (closed again on exit)."""
    if not isinstance(breaker, CircuitBreaker):
        raise TypeError(f"breaker must be a CircuitBreaker, got {type(breaker).__name__}")
    breaker.isolate()
    return _Restore(breaker)


def force_closed(breaker: CircuitBreaker) -> _Restore:
    """Close ``breaker`` and clear its window (``reset()``), whatever state it was in."""
    if not isinstance(breaker, CircuitBreaker):
        raise TypeError(f"breaker must be a CircuitBreaker, got {type(breaker).__name__}")
    breaker.reset()
    return _Restore(breaker)
