"""Helpers for testing code that uses seawall, without sleeping.

- :class:`FakeClock`: pass it as ``clock=`` to any policy; ``advance()`` moves time, and its
  sleeps return at once and are recorded in ``sleeps``.
- :func:`no_waits`: a context manager under which every retry wait is zero, whatever clock the
  policies use (handy when the code under test builds its own policies).
- :func:`force_open` / :func:`force_closed`: put a breaker in a known state; as context
  managers they give it back closed and cleared.
- :func:`simulated`: an event loop on simulated time, whose clock every policy built inside
  uses: timeouts, retry waits, open breakers, tasks' bulkhead waits and deadlines run in no real
  time, and the same way every run. Also the pytest fixture ``simulated``.
- :func:`load`: an open-loop load (a call every ``1/rate`` seconds, whatever became of the
  earlier ones), and :func:`watch`: what a policy's callers and its dependency saw, phase by
  phase of its ``seawall.chaos`` schedule: availability, attempts per call, time to detect
  and to recover.
"""

from __future__ import annotations

import math
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
    so their timeouts, retry waits (on ``asyncio.sleep``), open durations, tasks' bulkhead
    waits and deadlines all pass in no real time. ``random`` is seeded with ``seed`` inside
    the block (retry jitter, breaker jitter: the same run every time; ``None`` leaves it
    alone) and given its state back after.

    Sync code inside the block: its policies' waits (a retry's sleep) move the simulated
    time on at once, as with a FakeClock; a thread queued for a bulkhead slot waits for
    another thread in real time, as it must; a blocking sleep from inside the running loop is
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
    """Start ``call()`` every ``1/rate`` seconds, at 0, ``1/rate``, ... for as long as that is
    under ``seconds`` (an open loop: whatever became of the earlier calls), then wait for
    them all; how many were started. Their outcomes are seawall's to count (see
    :func:`watch`): an exception a call raises is not raised here. On the running loop's time
    (simulated inside :func:`simulated`). Cancelled, it starts no more calls and cancels those
    under way."""
    import asyncio
    import inspect

    rate = check_number("rate", rate, maximum=math.inf, max_inclusive=False)
    seconds = check_number("seconds", seconds, min_inclusive=True, max_inclusive=False)
    if not callable(call):
        raise TypeError(f"call must be a function that makes a coroutine, got {call!r}")
    count = math.ceil(seconds * rate)
    while count and (count - 1) / rate >= seconds:  # the float product may overshoot
        count -= 1
    if not count:
        return 0
    loop = asyncio.get_running_loop()
    # Only the calls under way are held, and only the next arrival's timer is set: thousands
    # of finished calls kept with their exceptions (and so their frames) would make every
    # garbage collection slower.
    running: set[asyncio.Task[None]] = set()
    finished = loop.create_future()
    base = loop.time()
    started = 0
    timer: asyncio.TimerHandle | None = None

    async def one(awaitable: Awaitable[Any]) -> None:
        try:
            await awaitable
        except Exception:
            pass  # counted by seawall

    def ended(task: asyncio.Task[None]) -> None:
        running.discard(task)
        if started == count and not running and not finished.done():
            finished.set_result(None)

    def start() -> None:
        nonlocal started, timer
        started += 1
        made = call()
        if not inspect.isawaitable(made):
            if not finished.done():
                finished.set_exception(
                    TypeError(f"call must make a coroutine, it returned a {type(made).__name__}")
                )
            return
        task = loop.create_task(one(made))
        running.add(task)
        task.add_done_callback(ended)
        if started < count:
            timer = loop.call_at(base + started / rate, start)

    timer = loop.call_at(base, start)
    completed = False
    try:
        await finished
        completed = True
    finally:
        if not completed:  # cancelled, or a call made no coroutine
            if timer is not None:
                timer.cancel()
            for task in list(running):
                task.cancel()
    return count


@dataclass(frozen=True)
class PhaseOutcome:
    """What one phase of a schedule did, read from seawall's own counts and events.

    ``calls``: logical calls that started in the phase (and ended in the watch), ``succeeded``
    of them with outcome ``success``; ``availability`` their share (``None`` without calls).
    ``attempts``: attempts that reached the dependency in the phase (those the injector saw),
    and their number per call (``None`` without calls). ``detected``: seconds from the phase's
    start until a breaker opened (0.0 if one was open already; ``None`` if none opened during
    the phase). ``recovered``: seconds from the phase's end until every breaker was closed
    again (0.0 if they were then, or there are none; ``None`` if they never were). Times are
    seconds from the schedule's start; only its first round is read.
    """

    name: str
    start: float
    end: float
    calls: int
    succeeded: int
    availability: float | None
    attempts: int
    attempts_per_call: float | None
    detected: float | None
    recovered: float | None


def _as_transport(target: object) -> Any:
    """``target`` if it is one of seawall's httpx transports (known by what it has: the
    transports need httpx, which this module does not import), else ``None``."""
    template = getattr(target, "template", None)
    if isinstance(template, Pipeline) and callable(getattr(target, "policies", None)):
        return target
    return None


class Watch:
    """Records, while in its ``with`` block, what a policy's callers saw (each call's start,
    end and outcome), its breakers' state changes and the times of the attempts its fault
    injector saw; :meth:`phase` reads one phase of the injector's schedule from them. See
    :func:`watch`."""

    def __init__(self, target: PolicyBase | Any, injector: Injector | None = None) -> None:
        transport = _as_transport(target)
        if transport is None and not isinstance(target, PolicyBase):
            raise TypeError(
                f"policy must be a seawall policy or httpx transport, got {type(target).__name__}"
            )
        if transport is not None:
            policy: PolicyBase = transport.template
            inner = getattr(getattr(transport, "transport", None), "injector", None)
            parts: list[PolicyBase] = []
            found = [inner] if isinstance(inner, Injector) else []
        else:
            policy = target
            parts = list(policy.policies) if isinstance(policy, Pipeline) else [policy]
            found = [part for part in parts if isinstance(part, Injector)]
        if injector is None:
            if not found:
                raise ValueError(
                    "injector: no seawall.chaos injector found to read the schedule of; pass "
                    "it (a ChaosTransport's is transport.injector)"
                )
            injector = found[0]
        if not isinstance(injector, Injector):
            raise TypeError(f"injector must be a seawall.chaos Injector, got {injector!r}")
        self.policy = policy
        self.injector = injector
        self._transport = transport
        #: Each call as (start, end, outcome), on the policy's clock.
        self.calls: list[tuple[float, float, str]] = []
        #: Each breaker's state changes, as (the breaker's number among those watched, change).
        self.changes: list[tuple[int, StateChange]] = []
        #: The times of the attempts the injector saw, on its clock.
        self.attempts: list[float] = []
        self._breakers: list[CircuitBreaker] = []
        self._initial: list[CircuitState] = []
        self._operations: set[str] = set()
        self._entered = False
        self._listeners = []
        for part in parts:
            if isinstance(part, CircuitBreaker):
                self._watch_breaker(part)
        if transport is None:
            self._operations.add(policy.name)

    def _watch_breaker(self, breaker: CircuitBreaker) -> None:
        if any(breaker is known for known in self._breakers):
            return
        self._breakers.append(breaker)
        self._initial.append(breaker.state)
        if self._entered:
            self._listen(len(self._breakers) - 1)

    def _listen(self, number: int) -> None:
        breaker = self._breakers[number]

        def listen(event: BreakerEvent) -> None:
            if isinstance(event, StateChange):
                self.changes.append((number, event))

        breaker.add_listener(listen)
        self._listeners.append((breaker, listen))

    _listeners: list[tuple[CircuitBreaker, Callable[[BreakerEvent], object]]]

    def _record(self, operation: str, outcome: str, seconds: float) -> None:
        if operation not in self._operations and (
            self._transport is None or not self._adopt(operation)
        ):
            return
        end = self.policy.clock.monotonic()
        self.calls.append((end - seconds, end, outcome))

    def _adopt(self, operation: str) -> bool:
        """A transport's host policy seen for the first time: its breaker is watched too."""
        for host_policy in self._transport.policies().values():
            if host_policy.name == operation:
                self._operations.add(operation)
                breaker = host_policy.breaker
                if breaker is not None:
                    self._watch_breaker(breaker)
                return True
        return False

    def _attempt(self, now: float) -> None:
        self.attempts.append(now)

    def __enter__(self) -> Watch:
        if self._entered:
            raise RuntimeError("a Watch is entered once: make another for another block")
        self._entered = True
        for number, breaker in enumerate(self._breakers):
            self._initial[number] = breaker.state  # as they are now
            self._listen(number)
        observers.add_call_listener(self._record)
        self.injector._watchers = (*self.injector._watchers, self._attempt)
        return self

    def __exit__(self, *exc_info: object) -> None:
        observers.remove_call_listener(self._record)
        watchers = list(self.injector._watchers)
        if self._attempt in watchers:
            watchers.remove(self._attempt)
        self.injector._watchers = tuple(watchers)
        for breaker, listen in self._listeners:
            breaker.remove_listener(listen)
        self._listeners.clear()

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
        attempts = sum(begin <= at < finish for at in self.attempts)
        return PhaseOutcome(
            name=name,
            start=start,
            end=end,
            calls=len(during),
            succeeded=succeeded,
            availability=succeeded / len(during) if during else None,
            attempts=attempts,
            attempts_per_call=attempts / len(during) if during else None,
            detected=self._detected(begin, finish),
            recovered=self._recovered(finish),
        )

    def _states_at(self, at: float) -> list[CircuitState]:
        """Each watched breaker's state just after ``at``."""
        states = list(self._initial)
        for number, change in self.changes:
            if change.at <= at:
                states[number] = change.to_state
        return states

    def _detected(self, begin: float, finish: float) -> float | None:
        if any(state is CircuitState.OPEN for state in self._states_at(begin)):
            return 0.0
        opened = [
            change.at
            for _, change in self.changes
            if change.to_state is CircuitState.OPEN and begin <= change.at < finish
        ]
        return min(opened) - begin if opened else None

    def _recovered(self, at: float) -> float | None:
        done = (CircuitState.CLOSED, CircuitState.DISABLED)
        states = self._states_at(at)
        if all(state in done for state in states):
            return 0.0
        for number, change in sorted(self.changes, key=lambda item: item[1].at):
            if change.at > at:
                states[number] = change.to_state
                if all(state in done for state in states):
                    return change.at - at
        return None


def watch(target: PolicyBase | Any, *, injector: Injector | None = None) -> Watch:
    """Watch a policy (or one of seawall's httpx transports: each host's policy and breaker)
    through a rehearsal (``with watch(policy) as seen:``), then read each phase of its fault
    schedule: ``seen.phase("outage").detected``, ``.recovered``, ``.availability``,
    ``.attempts_per_call``. The schedule is that of the policy's chaos part
    (``Policy(..., chaos=inject(schedule))``), of the ``ChaosTransport`` a resilient
    transport sends through, or ``injector``'s."""
    return Watch(target, injector)
