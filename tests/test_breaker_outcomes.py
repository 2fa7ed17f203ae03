"""What the default CircuitBreaker does in an outage, on virtual time: how soon it refuses, how
soon it lets calls through again, and how many calls still reach a dead dependency.

A small discrete-event run: calls arrive evenly; each admitted call holds its place through the
async shell (driven by hand, no event loop, as in the model test) until its outcome is due on
the FakeClock: at once for a dependency that is up or fails fast, after the caller's 1 s timeout
for one that hangs. The figures the README states come from ``benchmarks/`` (the outage
matrix); these tests hold the defaults to the same goals in every run.
"""

from __future__ import annotations

import heapq
import itertools
import math
import random
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

import pytest

from seawall import BreakerEvent, CircuitBreaker, CircuitOpenError, CircuitState, StateChange
from seawall.testing import FakeClock
from tests.helpers import Gate

TIMEOUT = 1.0  # the caller's per-attempt timeout, inside the breaker
HEALTHY = 0.010  # a healthy attempt's latency


class Down(ConnectionError):
    """The dependency refused the connection."""


@dataclass(frozen=True)
class Shape:
    """Disturbed phases ``(start, end, kind)``; kind is "down", "hang" or "errors" (40%)."""

    phases: tuple[tuple[float, float, str], ...]
    end: float

    def kind(self, t: float) -> str | None:
        for start, end, kind in self.phases:
            if start <= t < end:
                return kind
        return None


HARD_DOWN = Shape(((30.0, 90.0, "down"),), 150.0)
HANGING = Shape(((30.0, 90.0, "hang"),), 150.0)
FLAPPING = Shape(((30.0, 40.0, "down"), (50.0, 60.0, "down"), (70.0, 80.0, "down")), 150.0)
ERRORS_40 = Shape(((30.0, 90.0, "errors"),), 150.0)


@dataclass
class Run:
    arrivals: list[float]
    ok: list[bool]
    ends: list[float]
    refused: list[bool]
    attempts: list[float] = field(default_factory=list)  # when each attempt started
    states: list[tuple[float, CircuitState]] = field(default_factory=list)


def simulate(shape: Shape, rate: float, make: Callable[[FakeClock], CircuitBreaker]) -> Run:
    clock = FakeClock()
    breaker = make(clock)
    n = round(shape.end * rate)
    run = Run([i / rate for i in range(n)], [False] * n, [math.nan] * n, [False] * n)

    @breaker.add_listener
    def record(event: BreakerEvent) -> None:
        if isinstance(event, StateChange):
            run.states.append((event.at, event.to_state))

    errors = random.Random(1729)
    # (time, order, index, what): "arrive", or the outcome due (None: it returns).
    events: list[tuple[float, int, int, BaseException | str | None]] = [
        (t, i, i, "arrive") for i, t in enumerate(run.arrivals)
    ]
    heapq.heapify(events)
    order = n
    in_flight: dict[int, Coroutine[Any, Any, str]] = {}
    while events:
        t, _, i, what = heapq.heappop(events)
        clock.advance(t - clock.monotonic())
        if what == "arrive":
            coro = breaker.acall(Gate)
            try:
                coro.send(None)
            except CircuitOpenError:
                run.refused[i] = True
                run.ends[i] = t
                continue
            run.attempts.append(t)
            in_flight[i] = coro
            kind = shape.kind(t)
            outcome: BaseException | None
            if kind == "hang":
                due, outcome = t + TIMEOUT, TimeoutError()
            elif kind == "down" or (kind == "errors" and errors.random() < 0.4):
                due, outcome = t + 0.001, Down()
            else:
                due, outcome = t + HEALTHY, None
            order += 1
            heapq.heappush(events, (due, order, i, outcome))
        else:
            coro = in_flight.pop(i)
            try:
                if what is None:
                    coro.send(None)
                else:
                    assert isinstance(what, BaseException)
                    coro.throw(what)
            except StopIteration:
                run.ok[i] = True
            except (Down, TimeoutError):
                pass
            run.ends[i] = t
    assert not in_flight
    return run


def detect(run: Run, shape: Shape) -> float:
    """Worst over the phases: phase start to the first refusal answered."""
    worst = 0.0
    for start, _end, _ in shape.phases:
        refusals = [
            e
            for a, e, r in zip(run.arrivals, run.ends, run.refused, strict=True)
            if r and a >= start
        ]
        worst = max(worst, min(refusals) - start)
    return worst


def recover(run: Run, shape: Shape) -> float:
    """Worst over the phases: phase end until every later call (to the next phase) succeeds."""
    worst = 0.0
    starts = [p[0] for p in shape.phases[1:]] + [shape.end]
    for (_, end, _), following in zip(shape.phases, starts, strict=True):
        failed = [
            a for a, ok in zip(run.arrivals, run.ok, strict=True) if end <= a < following and not ok
        ]
        if failed:
            worst = max(worst, failed[-1] - end)
    return worst


def attempts_per_call(run: Run, shape: Shape) -> float:
    during = sum(1 for a in run.arrivals if shape.kind(a))
    return sum(1 for t in run.attempts if shape.kind(t)) / during


def availability(run: Run) -> float:
    return sum(run.ok) / len(run.ok)


def defaults(clock: FakeClock) -> CircuitBreaker:
    return CircuitBreaker(clock=clock, rng=random.Random(7))


@pytest.mark.parametrize("shape", [HARD_DOWN, HANGING, FLAPPING], ids=["down", "hang", "flap"])
@pytest.mark.parametrize("rate", [20.0, 200.0])
def test_defaults_detect_and_recover_within_2_s(shape: Shape, rate: float) -> None:
    run = simulate(shape, rate, defaults)
    assert detect(run, shape) <= 2.0
    assert recover(run, shape) <= 2.0


@pytest.mark.parametrize("shape", [HARD_DOWN, HANGING, FLAPPING], ids=["down", "hang", "flap"])
def test_defaults_detect_and_recover_within_5_s_at_2_calls_a_second(shape: Shape) -> None:
    run = simulate(shape, 2.0, defaults)
    assert detect(run, shape) <= 5.0
    assert recover(run, shape) <= 5.0


@pytest.mark.parametrize("shape", [HARD_DOWN, HANGING], ids=["down", "hang"])
@pytest.mark.parametrize("rate", [20.0, 200.0])
def test_defaults_send_a_dead_dependency_at_most_a_tenth_of_the_calls(
    shape: Shape, rate: float
) -> None:
    assert attempts_per_call(simulate(shape, rate, defaults), shape) <= 0.1


@pytest.mark.parametrize("shape", [HARD_DOWN, HANGING], ids=["down", "hang"])
@pytest.mark.parametrize("rate", [20.0, 200.0])
def test_defaults_cost_no_availability_in_a_clean_outage(shape: Shape, rate: float) -> None:
    run = simulate(shape, rate, defaults)
    unprotected = 1.0 - 60.0 / 150.0  # every call in the outage fails either way
    assert availability(run) >= unprotected - 0.01


@pytest.mark.parametrize("rate", [20.0, 200.0])
def test_defaults_never_trip_on_40_percent_errors(rate: float) -> None:
    run = simulate(ERRORS_40, rate, defaults)
    assert run.states == []
    assert not any(run.refused)


@pytest.mark.parametrize("shape", [HARD_DOWN, HANGING], ids=["down", "hang"])
@pytest.mark.parametrize("rate", [2.0, 20.0, 200.0])
def test_an_open_breaker_probes_at_most_once_per_open_duration(shape: Shape, rate: float) -> None:
    """The stated bound: at most half_open_calls (1) probes per open_duration (0.6 s), so at
    most 2 in any second, whatever the call rate."""
    run = simulate(shape, rate, defaults)
    first_refusal = min(e for e, r in zip(run.ends, run.refused, strict=True) if r)
    probes = [t for t in run.attempts if first_refusal <= t < 90.0]
    assert probes
    gaps = [b - a for a, b in itertools.pairwise(probes)]
    assert min(gaps) >= 0.6 - 1e-9
    assert max(sum(1 for p in probes if s <= p < s + 1.0) for s in probes) <= 2


def test_a_probe_cut_by_its_timeout_does_not_delay_the_next_one() -> None:
    """Hanging: a probe fails 1 s after it was let through, later than open_duration, so the
    next probe goes as soon as the first fails: one a second, not one every 1.6 s."""
    run = simulate(HANGING, 20.0, defaults)
    first_refusal = min(e for e, r in zip(run.ends, run.refused, strict=True) if r)
    probes = [t for t in run.attempts if first_refusal <= t < 90.0]
    gaps = [b - a for a, b in itertools.pairwise(probes)]
    assert max(gaps) <= 1.0 + 1 / 20.0 + 1e-9


def test_a_fleet_sends_the_bound_and_no_more() -> None:
    """Many processes' breakers tripped together do not probe in step: their open spells
    after a failed probe are jittered, and each stays within one probe per 0.6 s."""
    runs = [
        simulate(
            HARD_DOWN, 20.0, lambda clock, i=i: CircuitBreaker(clock=clock, rng=random.Random(i))
        )
        for i in range(8)
    ]
    late = [sorted(t for t in r.attempts if 40.0 <= t < 50.0) for r in runs]
    assert all(len(p) <= 10 / 0.6 + 1 for p in late)
    assert len({tuple(p) for p in late}) == len(late)  # no two processes probe in step
