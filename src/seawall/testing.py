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
- :func:`load`: an open-loop load (a call every ``1/rate`` seconds, whatever became of the
  earlier ones), and :func:`watch`: what a policy's callers and its dependency saw, phase by
  phase of its ``seawall.chaos`` schedule: availability, attempts per call, time to detect
  and to recover.
"""

from __future__ import annotations

import random
import threading
import typing
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from seawall import _clock, _fork
from seawall._base import PolicyBase
from seawall._breaker import BreakerEvent, CircuitBreaker, CircuitState, StateChange
from seawall._chaos import Injector
from seawall._clock import FakeClock
from seawall._compose import Pipeline
from seawall._retry import zero_waits
from seawall._stats.observers import observers
from seawall._validate import check_number

if typing.TYPE_CHECKING:
    from seawall._simulated import SimulatedClock, Simulation, SimulationStalled

__all__ = [
    "FakeClock",
    "PhaseOutcome",
    "SimulatedClock",
    "Simulation",
    "SimulationStalled",
    "Watch",
    "force_closed",
    "force_open",
    "load",
    "no_waits",
    "simulated",
    "watch",
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


async def load(call: Callable[[], Awaitable[Any]], *, rate: float, seconds: float) -> int:
    """Start ``call()`` every ``1/rate`` seconds for ``seconds`` (an open loop: whatever became
    of the earlier calls), then wait for them all; how many were made. Their outcomes are
    seawall's to count (see :func:`watch`): an exception a call raises is not raised here.
    On the running loop's time (simulated inside :func:`simulated`)."""
    import asyncio

    check_number("rate", rate)
    check_number("seconds", seconds, min_inclusive=True, max_inclusive=False)
    loop = asyncio.get_running_loop()
    count = round(seconds * rate)
    if not count:
        return 0
    # Only the calls under way are held: thousands of finished ones, kept with their
    # exceptions (and so their frames), would make every garbage collection slower.
    running: set[asyncio.Task[None]] = set()
    started = 0
    finished = loop.create_future()

    async def one() -> None:
        try:
            await call()
        except Exception:
            pass  # counted by seawall

    def ended(task: asyncio.Task[None]) -> None:
        running.discard(task)
        if started == count and not running and not finished.done():
            finished.set_result(None)

    def start() -> None:
        nonlocal started
        started += 1
        task = loop.create_task(one())
        running.add(task)
        task.add_done_callback(ended)

    # Every arrival is a timer on the loop, set now: no coroutine wakes up to start each one.
    base = loop.time()
    for index in range(count):
        loop.call_at(base + index / rate, start)
    await finished
    return count


@dataclass(frozen=True)
class PhaseOutcome:
    """What one phase of a schedule did, read from seawall's own counts and events.

    ``calls``: logical calls that started in the phase (ended by now), ``succeeded`` of them
    with outcome ``success``; ``availability`` their share (1.0 without calls). ``attempts``:
    attempts that reached the dependency in the phase (the injector's count), and their
    number per call. ``detected``: seconds from the phase's start until the breaker opened
    (``None``: it did not open during the phase). ``recovered``: seconds from the phase's end
    until the breaker was closed again (0.0 if it was closed then; ``None`` if it never was).
    Times are seconds from the schedule's start.
    """

    name: str
    start: float
    end: float
    calls: int
    succeeded: int
    availability: float
    attempts: int
    attempts_per_call: float
    detected: float | None
    recovered: float | None


class Watch:
    """Records what a policy's callers saw (each call's start, end and outcome) and its
    breaker's state changes, while in its ``with`` block; :meth:`phase` reads one phase of the
    policy's ``seawall.chaos`` schedule from them. See :func:`watch`."""

    def __init__(self, policy: PolicyBase, injector: Injector | None = None) -> None:
        if not isinstance(policy, PolicyBase):
            raise TypeError(f"policy must be a seawall policy, got {type(policy).__name__}")
        parts = list(policy.policies) if isinstance(policy, Pipeline) else [policy]
        if injector is None:
            found = [part for part in parts if isinstance(part, Injector)]
            if not found:
                raise ValueError(
                    "injector: the policy has no seawall.chaos injector; pass the one whose "
                    "schedule to read (a ChaosTransport's is transport.injector)"
                )
            injector = found[0]
        if not isinstance(injector, Injector):
            raise TypeError(f"injector must be a seawall.chaos Injector, got {injector!r}")
        self.policy = policy
        self.injector = injector
        self.breakers = [part for part in parts if isinstance(part, CircuitBreaker)]
        #: Each call as (start, end, outcome), on the policy's clock.
        self.calls: list[tuple[float, float, str]] = []
        #: The breakers' state changes.
        self.changes: list[StateChange] = []
        self._previous: Callable[[str, str, float], None] | None = None

    def _record(self, operation: str, outcome: str, seconds: float) -> None:
        previous = self._previous
        if previous is not None:
            previous(operation, outcome, seconds)
        if operation == self.policy.name:
            end = self.policy.clock.monotonic()
            self.calls.append((end - seconds, end, outcome))

    def _listen(self, event: BreakerEvent) -> None:
        if isinstance(event, StateChange):
            self.changes.append(event)

    def __enter__(self) -> Watch:
        self._previous = observers.call_duration
        observers.call_duration = self._record
        for breaker in self.breakers:
            breaker.add_listener(self._listen)
        return self

    def __exit__(self, *exc_info: object) -> None:
        observers.call_duration = self._previous
        for breaker in self.breakers:
            breaker.remove_listener(self._listen)

    def phase(self, name: str, occurrence: int = 0) -> PhaseOutcome:
        """The phase called ``name`` (its ``occurrence``-th, from 0, if the name comes back),
        in the schedule's first round."""
        schedule = self.injector.schedule
        indices = [i for i, phase in enumerate(schedule.phases) if phase.name == name]
        if not indices:
            raise KeyError(f"no phase is called {name!r}")
        if isinstance(occurrence, bool) or not isinstance(occurrence, int):
            raise TypeError(f"occurrence must be an int, got {type(occurrence).__name__}")
        if not 0 <= occurrence < len(indices):
            raise ValueError(
                f"occurrence must be in [0, {len(indices) - 1}]: phase {name!r} occurs "
                f"{len(indices)} time(s)"
            )
        start, end = schedule.bounds(name)[occurrence]
        origin = self.injector.started
        begin, finish = origin + start, origin + end
        during = [outcome for at, _, outcome in self.calls if begin <= at < finish]
        succeeded = sum(outcome == "success" for outcome in during)
        attempts = self.injector.calls_in(indices[occurrence])
        opened = next(
            (
                change.at
                for change in self.changes
                if change.to_state is CircuitState.OPEN and begin <= change.at < finish
            ),
            None,
        )
        return PhaseOutcome(
            name=name,
            start=start,
            end=end,
            calls=len(during),
            succeeded=succeeded,
            availability=succeeded / len(during) if during else 1.0,
            attempts=attempts,
            attempts_per_call=attempts / len(during) if during else 0.0,
            detected=None if opened is None else opened - begin,
            recovered=self._recovered(finish),
        )

    def _recovered(self, at: float) -> float | None:
        state = CircuitState.CLOSED
        for change in self.changes:
            if change.at <= at:
                state = change.to_state
        if state in (CircuitState.CLOSED, CircuitState.DISABLED) or not self.breakers:
            return 0.0
        closed = next(
            (c.at for c in self.changes if c.at > at and c.to_state is CircuitState.CLOSED), None
        )
        return None if closed is None else closed - at


def watch(policy: PolicyBase, *, injector: Injector | None = None) -> Watch:
    """Watch ``policy`` through a rehearsal (``with watch(policy) as w:``), then read each
    phase of its fault schedule: ``w.phase("outage").detected``, ``.recovered``,
    ``.availability``, ``.attempts_per_call``. The schedule is that of the policy's chaos part
    (``Policy(..., chaos=inject(schedule))``), or ``injector``'s (a ChaosTransport's
    ``transport.injector``)."""
    return Watch(policy, injector)
