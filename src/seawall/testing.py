"""Helpers for testing code that uses seawall, without sleeping.

- :class:`FakeClock`: pass it as ``clock=`` to any policy; ``advance()`` moves time, and its
  sleeps return at once and are recorded in ``sleeps``.
- :func:`no_waits`: a context manager under which every retry wait is zero, whatever clock the
  policies use (handy when the code under test builds its own policies).
- :func:`force_open` / :func:`force_closed`: put a breaker in a known state; as context
  managers they give it back closed and cleared.
- :func:`simulated`: an event loop on simulated time, whose clock every policy built inside
  uses: timeouts, retry waits, open breakers, bulkhead waits and deadlines run in no real
  time, and the same way every run. Also the pytest fixture ``simulated``.
"""

from __future__ import annotations

import random
import threading
import typing
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from seawall import _clock, _fork
from seawall._breaker import CircuitBreaker
from seawall._clock import FakeClock
from seawall._retry import zero_waits

if typing.TYPE_CHECKING:
    from seawall._simulated import SimulatedClock, Simulation, SimulationStalled

__all__ = [
    "FakeClock",
    "SimulatedClock",
    "Simulation",
    "SimulationStalled",
    "force_closed",
    "force_open",
    "no_waits",
    "simulated",
]

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


_SIMULATION_NAMES = frozenset({"SimulatedClock", "Simulation", "SimulationStalled"})


def __getattr__(name: str) -> Any:
    # The simulation's names import asyncio: `import seawall.testing` stays light for sync
    # test suites, and they come with the first use.
    if name in _SIMULATION_NAMES:
        from seawall import _simulated

        value = getattr(_simulated, name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


@contextmanager
def simulated(seed: int | None = 0) -> Iterator[Simulation]:
    """Run code on simulated time: yields a :class:`Simulation` whose ``run(main)`` runs a
    coroutine on an event loop whose clock jumps to its next timer whenever nothing is
    ready. Policies built inside the block without a ``clock=`` use the simulation's clock,
    so their timeouts, retry waits (on ``asyncio.sleep``), open durations, bulkhead waits and
    deadlines all pass in no real time. ``random`` is seeded with ``seed`` inside the block
    (retry jitter, breaker jitter: the same run every time; ``None`` leaves it alone) and
    given its state back after.

    Sync code inside the block: its policies' waits (a retry's sleep) move the simulated
    time on at once, as with a FakeClock; a blocking sleep from inside the running loop is
    refused with a ``RuntimeError`` (it would stop every task of the simulation). Code that
    waits on real I/O never finishes here: the loop does no I/O (it raises
    ``SimulationStalled`` when nothing is scheduled).
    """
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
        raise TypeError(f"seed must be an int or None, got {type(seed).__name__}")
    from seawall._simulated import Simulation

    simulation = Simulation()
    token = _clock.default_clock.set(simulation.clock)
    state = random.getstate()
    if seed is not None:
        random.seed(seed)
    try:
        yield simulation
    finally:
        if seed is not None:
            random.setstate(state)
        _clock.default_clock.reset(token)
        simulation.close()
