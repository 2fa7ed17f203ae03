"""CircuitBreaker on a FakeClock: configuration, every transition, classification, manual
control, snapshots and listeners. Each behaviour runs through the sync and the async shell
(the ``run`` fixture); concurrency has its own module."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import math
import random
import re
from collections.abc import Callable
from typing import Any, NoReturn, get_args

import pytest
from conftest import Shell
from helpers import Boom

from seawall import (
    BreakerEvent,
    BreakerSnapshot,
    CallFailed,
    CallRejected,
    CircuitBreaker,
    CircuitOpenError,
    CircuitState,
    RejectedError,
    SeawallError,
    StateChange,
)
from seawall.testing import FakeClock

CLOSED = CircuitState.CLOSED
OPEN = CircuitState.OPEN
HALF_OPEN = CircuitState.HALF_OPEN
FORCED_OPEN = CircuitState.FORCED_OPEN
DISABLED = CircuitState.DISABLED

SEED = 7


class Skip(Exception):
    """What the tests' breakers ignore (``ignore_on=Skip``)."""


class Other(Exception):
    """Neither: a success of the dependency, still raised to the caller."""


class Abort(BaseException):
    """A BaseException that is not an Exception, like KeyboardInterrupt."""


def ok(value: object = "ok") -> Callable[[], object]:
    return lambda: value


def fail(exc: BaseException | None = None) -> Callable[[], NoReturn]:
    def work() -> NoReturn:
        raise exc if exc is not None else Boom("down")

    return work


def taking(clock: FakeClock, seconds: float, value: object = "ok") -> Callable[[], object]:
    """A call that takes ``seconds`` on the fake clock."""

    def work() -> object:
        clock.advance(seconds)
        return value

    return work


def make(clock: FakeClock, **overrides: Any) -> CircuitBreaker:
    """A small breaker: trips on 2 failures of the last 4 calls, 2 probes, open 5 s, growing.
    Its failure-streak signal is off unless a test turns it on."""
    config: dict[str, Any] = {
        "name": "dep",
        "consecutive_failures": None,
        "window_calls": 4,
        "minimum_calls": 2,
        "failure_ratio": 0.5,
        "failure_on": Boom,
        "ignore_on": Skip,
        "open_duration": 5.0,
        "max_open_duration": 60.0,
        "half_open_calls": 2,
        "half_open_timeout": 30.0,
        "rng": random.Random(SEED),
    }
    if "window" in overrides:
        del config["window_calls"]
    config.update(overrides)
    return CircuitBreaker(clock=clock, **config)


def jittered(nominal: float, rng: random.Random) -> float:
    """The open duration after a failed probing, computed as the breaker documents it."""
    return nominal * (1.0 + 0.2 * rng.random())


def trip(run: Shell, breaker: CircuitBreaker, failures: int = 2) -> None:
    outcomes = run.many(breaker, [fail()] * failures)
    assert all(isinstance(outcome, Boom) for outcome in outcomes)
    assert breaker.state is OPEN


def half_open(run: Shell, breaker: CircuitBreaker, clock: FakeClock) -> None:
    trip(run, breaker)
    clock.advance(breaker.snapshot().open_duration)
    assert breaker.state is HALF_OPEN


def drive(run: Shell, breaker: CircuitBreaker, clock: FakeClock, state: CircuitState) -> None:
    """Bring a fresh ``make`` breaker into ``state``."""
    if state is OPEN:
        trip(run, breaker)
    elif state is HALF_OPEN:
        half_open(run, breaker, clock)
    elif state is FORCED_OPEN:
        breaker.isolate()
    elif state is DISABLED:
        breaker.disable()
    assert breaker.state is state


def counts(breaker: CircuitBreaker) -> tuple[int, int, int, int, int]:
    """Lifetime (successes, failures, ignored, rejected, slow calls)."""
    s = breaker.snapshot()
    return s.successes, s.failures, s.ignored, s.rejected, s.slow_calls


def window(breaker: CircuitBreaker) -> tuple[int, int, int]:
    """(calls, failures, slow calls) in the window."""
    s = breaker.snapshot()
    return s.window_calls, s.window_failures, s.window_slow_calls


# -- configuration ------------------------------------------------------------------------------

NAN = math.nan

VALUE_ERRORS = [
    ("failure_ratio", 0),
    ("failure_ratio", 0.0),
    ("failure_ratio", -0.5),
    ("failure_ratio", 1.01),
    ("failure_ratio", NAN),
    ("minimum_calls", 0),
    ("minimum_calls", -3),
    ("window", 0),
    ("window", -1.0),
    ("window", NAN),
    ("window_calls", 0),
    ("window_calls", -1),
    ("slow_call_duration", 0),
    ("slow_call_duration", -0.1),
    ("slow_call_ratio", 0),
    ("slow_call_ratio", 1.5),
    ("open_duration", 0),
    ("open_duration", -5),
    ("max_open_duration", 0),
    ("max_open_duration", 0.59),  # below the default open_duration of 0.6
    ("consecutive_failures", 0),
    ("consecutive_failures", -1),
    ("consecutive_span", -0.5),
    ("consecutive_span", NAN),
    ("half_open_calls", 0),
    ("half_open_calls", -2),
    ("half_open_timeout", 0),
    ("half_open_timeout", -1),
]


@pytest.mark.parametrize(("param", "value"), VALUE_ERRORS)
def test_out_of_range_is_a_value_error_naming_the_parameter(param: str, value: object) -> None:
    with pytest.raises(ValueError, match=rf"^{param} must ") as caught:
        CircuitBreaker(**{param: value})
    assert repr(value) in str(caught.value)


def test_max_open_duration_below_open_duration() -> None:
    with pytest.raises(
        ValueError, match=re.escape("max_open_duration must be >= open_duration (10), got 9.5")
    ):
        CircuitBreaker(open_duration=10, max_open_duration=9.5)


def test_window_and_window_calls_together() -> None:
    with pytest.raises(ValueError, match=r"give window \(seconds\) or window_calls \(a count\)"):
        CircuitBreaker(window=10.0, window_calls=10)


TYPE_ERRORS = [
    ("failure_ratio", "0.5"),
    ("failure_ratio", True),
    ("failure_ratio", None),
    ("minimum_calls", 2.0),
    ("minimum_calls", True),
    ("minimum_calls", "2"),
    ("minimum_calls", None),
    ("window", "30"),
    ("window", False),
    ("window_calls", 10.0),
    ("window_calls", True),
    ("window_calls", "10"),
    ("slow_call_duration", "1"),
    ("slow_call_duration", True),
    ("slow_call_ratio", None),
    ("slow_call_ratio", "1"),
    ("open_duration", "5"),
    ("open_duration", True),
    ("open_duration", None),
    ("consecutive_failures", 5.0),
    ("consecutive_failures", True),
    ("consecutive_span", "0.5"),
    ("consecutive_span", None),
    ("max_open_duration", "60"),
    ("half_open_calls", 2.5),
    ("half_open_calls", True),
    ("half_open_calls", None),
    ("half_open_timeout", "30"),
    ("half_open_timeout", None),
    ("failure_on", None),
    ("failure_on", "ValueError"),
    ("failure_on", ValueError("not a type")),
    ("failure_on", int),
    ("failure_on", ()),
    ("failure_on", (ValueError, "KeyError")),
    ("failure_on", (ValueError, int)),
    ("failure_on", [ValueError]),
    ("ignore_on", "KeyError"),
    ("ignore_on", (KeyError, str)),
    ("ignore_on", 3),
    ("failure_result", 42),
    ("failure_result", "falsy"),
    ("rng", 42),
    ("rng", random),
    ("name", 42),
    ("clock", object()),
]


@pytest.mark.parametrize(("param", "value"), TYPE_ERRORS)
def test_wrong_type_is_a_type_error_naming_the_parameter(param: str, value: object) -> None:
    with pytest.raises(TypeError, match=rf"^{param} must "):
        CircuitBreaker(**{param: value})


def test_configuration_is_keyword_only() -> None:
    with pytest.raises(TypeError):
        CircuitBreaker(0.5)  # type: ignore[misc]


def test_boundary_values_are_accepted(clock: FakeClock) -> None:
    CircuitBreaker(failure_ratio=1, minimum_calls=1, window_calls=1, half_open_calls=1)
    CircuitBreaker(slow_call_duration=0.001, slow_call_ratio=1.0, window=0.001)
    CircuitBreaker(open_duration=5, max_open_duration=5, half_open_timeout=0.001)
    CircuitBreaker(consecutive_failures=1, consecutive_span=0)
    CircuitBreaker(consecutive_failures=None, consecutive_span=math.inf)
    CircuitBreaker(open_duration=1.5, max_open_duration=math.inf)
    CircuitBreaker(failure_on=(Boom, KeyError), ignore_on=lambda exc: False)
    CircuitBreaker(failure_on=lambda exc: True, failure_result=bool, rng=random.Random(1))
    CircuitBreaker(clock=clock, name="x")


def test_repr_of_the_defaults() -> None:
    assert repr(CircuitBreaker()) == (
        "CircuitBreaker(name='circuitbreaker', state='closed', consecutive_failures=5, "
        "consecutive_span=0.5, failure_ratio=0.5, minimum_calls=20, window=30, "
        "open_duration=0.6, half_open_calls=1)"
    )


def test_repr_shows_configuration_and_state(clock: FakeClock) -> None:
    breaker = CircuitBreaker(
        name="db",
        failure_ratio=0.25,
        minimum_calls=10,
        window_calls=50,
        slow_call_duration=2.5,
        slow_call_ratio=0.8,
        open_duration=1.5,
        max_open_duration=12,
        half_open_calls=2,
        consecutive_failures=None,
        clock=clock,
    )
    assert repr(breaker) == (
        "CircuitBreaker(name='db', state='closed', consecutive_failures=None, "
        "failure_ratio=0.25, minimum_calls=10, window_calls=50, slow_call_duration=2.5, "
        "slow_call_ratio=0.8, open_duration=1.5, max_open_duration=12, half_open_calls=2)"
    )
    breaker.isolate()
    assert "state='forced_open'" in repr(breaker)
    assert "window=12.5," in repr(CircuitBreaker(window=12.5))


def test_circuit_state_values() -> None:
    assert [state.value for state in CircuitState] == [
        "closed",
        "open",
        "half_open",
        "forced_open",
        "disabled",
    ]
    assert str(OPEN) == "open"
    assert OPEN == "open"


# -- the defaults at work -----------------------------------------------------------------------


def test_default_breaker_trips_on_a_streak_and_closes_on_one_probe(
    run: Shell, clock: FakeClock
) -> None:
    breaker = CircuitBreaker(clock=clock)
    # Five failures in a row are not enough while they span less than half a second.
    for _ in range(7):
        run.many(breaker, [fail()])
        clock.advance(0.0625)
    assert breaker.state is CLOSED
    run.many(breaker, [fail(Other())])  # the 8th, 0.4375 s after the first: still closed
    assert breaker.state is CLOSED
    clock.advance(0.0625)
    run.many(breaker, [fail()])  # 0.5 s after the first failure of the streak
    assert breaker.state is OPEN
    snapshot = breaker.snapshot()
    assert snapshot.open_duration == 0.6
    assert snapshot.retry_after == pytest.approx(0.6)
    clock.advance(0.6)
    assert run(breaker, ok(1)) == 1  # one successful probe closes it
    assert breaker.state is CLOSED


def test_default_streak_needs_five_failures_when_calls_are_sparse(
    run: Shell, clock: FakeClock
) -> None:
    breaker = CircuitBreaker(clock=clock)
    for _ in range(4):
        run.many(breaker, [fail()])
        clock.advance(0.5)  # 2 calls/s: four failures span 1.5 s
    assert breaker.state is CLOSED
    run.many(breaker, [fail()])
    assert breaker.state is OPEN


def test_default_breaker_still_trips_on_the_failure_ratio(run: Shell, clock: FakeClock) -> None:
    """Failures that never come five in a row: the 30 s window's ratio (0.5, 20 calls)."""
    breaker = CircuitBreaker(clock=clock)
    for _ in range(6):
        run.many(breaker, [fail(), fail(), ok()])
        clock.advance(1.0)
    assert breaker.state is CLOSED  # 18 calls: fewer than minimum_calls=20
    run.many(breaker, [ok()])
    assert breaker.state is CLOSED  # successes never trip it
    run.many(breaker, [fail()])  # 13 failures of 20 calls, never more than 2 in a row
    assert breaker.state is OPEN


@pytest.mark.parametrize(("later", "state"), [(29.9, OPEN), (30.0, CLOSED)])
def test_default_window_is_30_seconds(
    run: Shell, clock: FakeClock, later: float, state: CircuitState
) -> None:
    breaker = CircuitBreaker(clock=clock, consecutive_failures=None)
    run.many(breaker, [fail()] * 19)
    clock.advance(later)
    run.many(breaker, [fail()])
    assert breaker.state is state


def test_default_open_duration_does_not_grow(run: Shell, clock: FakeClock) -> None:
    breaker = CircuitBreaker(clock=clock, rng=random.Random(SEED), consecutive_span=0)
    run.many(breaker, [fail()] * 5)
    assert breaker.state is OPEN
    for _ in range(5):
        clock.advance(breaker.snapshot().retry_after or 0.0)
        run.many(breaker, [fail()])  # a failed probe
        assert breaker.state is OPEN
        assert 0.6 <= breaker.snapshot().open_duration <= 0.72  # jittered, never grown


# -- the failure streak -------------------------------------------------------------------------


def streaky(clock: FakeClock, **overrides: Any) -> CircuitBreaker:
    """A breaker that trips only on 3 failures in a row spanning at least 1 s."""
    config: dict[str, Any] = {
        "consecutive_failures": 3,
        "consecutive_span": 1.0,
        "window_calls": 100,
        "minimum_calls": 100,
    }
    return make(clock, **{**config, **overrides})


def spaced(run: Shell, clock: FakeClock, breaker: CircuitBreaker, works: list[Any]) -> None:
    """One call every 0.5 s."""
    for work in works:
        run.many(breaker, [work])
        clock.advance(0.5)


def test_streak_trips_on_enough_failures_over_enough_time(run: Shell, clock: FakeClock) -> None:
    breaker = streaky(clock)
    spaced(run, clock, breaker, [fail(), fail()])
    assert breaker.state is CLOSED
    run.many(breaker, [fail()])  # the third in a row, 1 s after the first
    assert breaker.state is OPEN
    assert breaker.snapshot().transitions == {(CLOSED, OPEN): 1}


def test_streak_needs_its_span_however_many_failures(run: Shell, clock: FakeClock) -> None:
    breaker = streaky(clock)
    run.many(breaker, [fail()] * 50)  # all at once: a burst, not yet an outage
    assert breaker.state is CLOSED
    clock.advance(0.999)
    run.many(breaker, [fail()])
    assert breaker.state is CLOSED
    clock.advance(0.001)
    run.many(breaker, [fail()])
    assert breaker.state is OPEN


def test_streak_needs_its_count_however_long(run: Shell, clock: FakeClock) -> None:
    breaker = streaky(clock)
    run.many(breaker, [fail()])
    clock.advance(60.0)
    run.many(breaker, [fail()])
    assert breaker.state is CLOSED
    run.many(breaker, [fail()])
    assert breaker.state is OPEN


def test_a_success_ends_the_streak(run: Shell, clock: FakeClock) -> None:
    breaker = streaky(clock)
    spaced(run, clock, breaker, [fail(), fail(), ok(), fail(), fail()])
    assert breaker.state is CLOSED  # two streaks of two
    run.many(breaker, [fail()])  # the new streak's third, 1 s after its first
    assert breaker.state is OPEN


def test_an_exception_outside_failure_on_ends_the_streak(run: Shell, clock: FakeClock) -> None:
    breaker = streaky(clock)
    spaced(run, clock, breaker, [fail(), fail(), fail(Other()), fail(), fail()])
    assert breaker.state is CLOSED


@pytest.mark.parametrize(
    "exc", [Skip(), RejectedError("full", name="inner", retry_after=1.0)], ids=["skip", "rejected"]
)
def test_ignored_outcomes_neither_end_nor_extend_the_streak(
    run: Shell, clock: FakeClock, exc: BaseException
) -> None:
    breaker = streaky(clock)
    spaced(run, clock, breaker, [fail(), fail(exc), fail(exc), fail()])
    assert breaker.state is CLOSED  # two failures, 1.5 s apart
    run.many(breaker, [fail()])
    assert breaker.state is OPEN


def test_a_successful_result_judged_a_failure_joins_the_streak(
    run: Shell, clock: FakeClock
) -> None:
    breaker = streaky(clock, failure_result=lambda result: result == "error page")
    spaced(run, clock, breaker, [fail(), ok("error page")])
    run.many(breaker, [fail()])
    assert breaker.state is OPEN


def test_slow_successes_end_the_streak(run: Shell, clock: FakeClock) -> None:
    breaker = streaky(clock, slow_call_duration=0.1)
    spaced(run, clock, breaker, [fail(), taking(clock, 0.2), fail(), fail()])
    assert breaker.state is CLOSED
    assert breaker.snapshot().slow_calls == 1


def test_the_streak_starts_afresh_after_the_breaker_closes(run: Shell, clock: FakeClock) -> None:
    breaker = streaky(clock, half_open_calls=1)
    spaced(run, clock, breaker, [fail(), fail()])
    run.many(breaker, [fail()])
    assert breaker.state is OPEN
    clock.advance(5.0)
    run.many(breaker, [ok()])  # the probe closes it
    assert breaker.state is CLOSED
    spaced(run, clock, breaker, [fail(), fail()])
    assert breaker.state is CLOSED  # the failures before the trip do not count again
    run.many(breaker, [fail()])
    assert breaker.state is OPEN


def test_a_disabled_breaker_never_trips_on_a_streak(run: Shell, clock: FakeClock) -> None:
    breaker = streaky(clock)
    breaker.disable()
    spaced(run, clock, breaker, [fail()] * 6)
    assert breaker.state is DISABLED
    breaker.reset()
    spaced(run, clock, breaker, [fail(), fail()])
    assert breaker.state is CLOSED  # failures while disabled are not part of the streak


def test_consecutive_failures_none_turns_the_streak_off(run: Shell, clock: FakeClock) -> None:
    breaker = streaky(clock, consecutive_failures=None)
    spaced(run, clock, breaker, [fail()] * 20)
    assert breaker.state is CLOSED


def test_consecutive_span_zero_is_a_plain_count(run: Shell, clock: FakeClock) -> None:
    breaker = streaky(clock, consecutive_span=0)
    run.many(breaker, [fail(), fail()])
    assert breaker.state is CLOSED
    run.many(breaker, [fail()])
    assert breaker.state is OPEN


def test_probes_are_not_part_of_a_streak(run: Shell, clock: FakeClock) -> None:
    breaker = streaky(clock, half_open_calls=1, max_open_duration=5.0)
    spaced(run, clock, breaker, [fail(), fail()])
    run.many(breaker, [fail()])
    for _ in range(3):  # failed probes reopen it; they do not trip a closed breaker later
        clock.advance(breaker.snapshot().retry_after or 0.0)
        run.many(breaker, [fail()])
        assert breaker.state is OPEN
    clock.advance(breaker.snapshot().retry_after or 0.0)
    run.many(breaker, [ok()])
    assert breaker.state is CLOSED
    run.many(breaker, [fail()])
    assert breaker.state is CLOSED


# -- CLOSED -> OPEN -----------------------------------------------------------------------------


def test_trips_when_the_failure_ratio_is_reached(run: Shell, clock: FakeClock) -> None:
    breaker = make(clock, window_calls=10, minimum_calls=5)
    run.many(breaker, [ok(), ok(), ok(), fail(), fail()])
    assert breaker.state is CLOSED
    assert window(breaker) == (5, 2, 0)
    assert breaker.snapshot().failure_ratio == 0.4
    run.many(breaker, [fail()])  # 3 of 6: exactly the ratio
    assert breaker.state is OPEN
    assert dict(breaker.snapshot().transitions) == {(CLOSED, OPEN): 1}
    assert counts(breaker) == (3, 3, 0, 0, 0)


def test_does_not_trip_below_minimum_calls(run: Shell, clock: FakeClock) -> None:
    breaker = make(clock, window_calls=10, minimum_calls=5)
    run.many(breaker, [fail()] * 4)
    assert breaker.state is CLOSED
    assert breaker.snapshot().failure_ratio == 1.0
    run.many(breaker, [fail()])
    assert breaker.state is OPEN


def test_successes_never_open_the_breaker(run: Shell, clock: FakeClock) -> None:
    breaker = make(clock, window_calls=10, minimum_calls=4)
    run.many(breaker, [fail(), fail(), fail()])
    assert breaker.state is CLOSED
    run.many(breaker, [ok()])  # 3 failures of 4 calls, but the last outcome is a success
    assert breaker.state is CLOSED
    assert window(breaker) == (4, 3, 0)
    run.many(breaker, [ok()])
    assert breaker.state is CLOSED
    run.many(breaker, [fail()])  # 4 of 6
    assert breaker.state is OPEN


def test_failure_ratio_one_needs_every_call_to_fail(run: Shell, clock: FakeClock) -> None:
    breaker = make(clock, window_calls=4, minimum_calls=4, failure_ratio=1.0)
    run.many(breaker, [ok(), fail(), fail(), fail()])
    assert breaker.state is CLOSED
    run.many(breaker, [fail()])  # the success has left the window
    assert breaker.state is OPEN


def test_minimum_calls_is_capped_by_window_calls(run: Shell, clock: FakeClock) -> None:
    breaker = make(clock, window_calls=3, minimum_calls=20)
    run.many(breaker, [fail(), fail()])
    assert breaker.state is CLOSED
    run.many(breaker, [fail()])
    assert breaker.state is OPEN


def test_count_window_keeps_the_last_calls_only(run: Shell, clock: FakeClock) -> None:
    breaker = make(clock, window_calls=4, minimum_calls=4)
    run.many(breaker, [fail(), ok(), ok(), ok()])
    assert window(breaker) == (4, 1, 0)
    run.many(breaker, [ok()])  # pushes the failure out
    assert window(breaker) == (4, 0, 0)
    run.many(breaker, [fail()])
    assert window(breaker) == (4, 1, 0)
    assert breaker.state is CLOSED
    run.many(breaker, [fail()])
    assert breaker.state is OPEN


def test_time_window_trips(run: Shell, clock: FakeClock) -> None:
    breaker = make(clock, window=10.0, minimum_calls=4)
    run.many(breaker, [fail(), fail()])
    clock.advance(5.0)
    run.many(breaker, [ok()])
    assert window(breaker) == (3, 2, 0)
    assert breaker.state is CLOSED
    run.many(breaker, [fail()])
    assert breaker.state is OPEN


def test_time_window_forgets_old_outcomes(run: Shell, clock: FakeClock) -> None:
    breaker = make(clock, window=10.0, minimum_calls=4)
    run.many(breaker, [fail(), fail(), fail()])
    clock.advance(9.5)
    assert window(breaker) == (3, 3, 0)
    clock.advance(0.5)
    assert window(breaker) == (0, 0, 0)
    assert counts(breaker) == (0, 3, 0, 0, 0)  # lifetime counts stay
    run.many(breaker, [fail(), fail(), fail()])  # had the old ones stayed, this would trip
    assert breaker.state is CLOSED
    run.many(breaker, [fail()])
    assert breaker.state is OPEN


@pytest.mark.parametrize("at", [0.0, 0.5, 0.75])
def test_time_window_outcome_leaves_between_window_minus_width_and_window(
    run: Shell, at: float
) -> None:
    clock = FakeClock(at)
    breaker = make(clock, window=10.0, minimum_calls=100)  # buckets of 1 s
    run.many(breaker, [fail()])
    clock.advance(9.875 - at)  # at least window - width later, still in the window
    assert window(breaker) == (1, 1, 0)
    clock.advance(0.125)  # at 10.0 the bucket [0, 1) has left
    assert window(breaker) == (0, 0, 0)


def test_time_window_with_lock_free_successes(run: Shell, clock: FakeClock) -> None:
    breaker = make(clock, window=4.0, minimum_calls=4)  # buckets of 0.4 s
    run.many(breaker, [ok()] * 3)
    clock.advance(2.0)
    run.many(breaker, [ok()] * 3 + [fail()])
    assert window(breaker) == (7, 1, 0)
    clock.advance(2.25)  # the first three successes have left
    run.many(breaker, [fail()])
    assert window(breaker) == (5, 2, 0)
    assert breaker.state is CLOSED
    run.many(breaker, [fail()])
    assert breaker.state is OPEN


def test_trips_on_slow_call_ratio(run: Shell, clock: FakeClock) -> None:
    breaker = make(
        clock,
        window_calls=4,
        minimum_calls=4,
        failure_ratio=1.0,
        slow_call_duration=1.0,
        slow_call_ratio=0.5,
    )
    run.many(breaker, [ok(), ok(), taking(clock, 1.0)])
    assert breaker.state is CLOSED
    assert window(breaker) == (3, 0, 1)
    run.many(breaker, [taking(clock, 1.5)])
    assert breaker.state is OPEN
    assert counts(breaker) == (4, 0, 0, 0, 2)


def test_slow_call_duration_is_inclusive(run: Shell, clock: FakeClock) -> None:
    breaker = make(clock, window_calls=1, minimum_calls=1, slow_call_duration=2.0)
    assert run(breaker, taking(clock, 1.75)) == "ok"
    assert breaker.state is CLOSED
    assert counts(breaker) == (1, 0, 0, 0, 0)
    assert run(breaker, taking(clock, 2.0)) == "ok"
    assert breaker.state is OPEN
    assert counts(breaker) == (2, 0, 0, 0, 1)


def test_long_calls_are_not_slow_without_slow_call_duration(run: Shell, clock: FakeClock) -> None:
    breaker = make(clock, window_calls=1, minimum_calls=1)
    run.many(breaker, [taking(clock, 1000.0)] * 3)
    assert breaker.state is CLOSED
    assert counts(breaker) == (3, 0, 0, 0, 0)


def test_slow_failure_counts_as_both(run: Shell, clock: FakeClock) -> None:
    breaker = make(
        clock, window_calls=4, minimum_calls=4, slow_call_duration=1.0, failure_ratio=1.0
    )

    def slow_failure() -> NoReturn:
        clock.advance(1.0)
        raise Boom

    run.many(breaker, [slow_failure])
    assert window(breaker) == (1, 1, 1)
    assert counts(breaker) == (0, 1, 0, 0, 1)


def test_slow_call_ratio_trips_even_with_failures_below_their_ratio(
    run: Shell, clock: FakeClock
) -> None:
    breaker = make(
        clock,
        window=10.0,
        minimum_calls=2,
        failure_ratio=0.9,
        slow_call_duration=0.5,
        slow_call_ratio=1.0,
    )

    def slow_failure() -> NoReturn:
        clock.advance(0.5)
        raise Boom

    run.many(breaker, [taking(clock, 0.5), slow_failure])  # 1 failure of 2, 2 slow of 2
    assert breaker.state is OPEN


# -- classification -----------------------------------------------------------------------------


def test_exceptions_outside_failure_on_are_successes_and_still_raised(
    run: Shell, clock: FakeClock
) -> None:
    breaker = make(clock, window_calls=2, minimum_calls=2)
    err = Other("bad request")
    with pytest.raises(Other) as caught:
        run(breaker, fail(err))
    assert caught.value is err
    assert window(breaker) == (1, 0, 0)
    with pytest.raises(Boom):
        run(breaker, fail())
    assert counts(breaker) == (1, 1, 0, 0, 0)
    assert breaker.state is OPEN  # 1 of 2 reaches 0.5


def test_failure_on_subclasses_count(run: Shell, clock: FakeClock) -> None:
    class SubBoom(Boom):
        pass

    breaker = make(clock, window_calls=10, minimum_calls=10)
    run.many(breaker, [fail(SubBoom()), fail(Boom())])
    assert counts(breaker) == (0, 2, 0, 0, 0)


def test_failure_on_tuple(run: Shell, clock: FakeClock) -> None:
    breaker = make(clock, window_calls=10, minimum_calls=10, failure_on=(Boom, KeyError))
    outcomes = run.many(breaker, [fail(KeyError("k")), fail(Boom()), fail(Other()), ok()])
    assert [type(outcome) for outcome in outcomes] == [KeyError, Boom, Other, str]
    assert counts(breaker) == (2, 2, 0, 0, 0)


def test_failure_on_predicate_sees_the_exception(run: Shell, clock: FakeClock) -> None:
    seen: list[BaseException] = []

    def is_failure(exc: BaseException) -> bool:
        seen.append(exc)
        return "5xx" in str(exc)

    breaker = make(clock, window_calls=10, minimum_calls=10, failure_on=is_failure)
    first, second = Other("5xx"), Other("4xx")
    run.many(breaker, [fail(first), fail(second), ok()])
    assert seen == [first, second]
    assert counts(breaker) == (2, 1, 0, 0, 0)


def test_default_failure_on_is_every_exception(run: Shell, clock: FakeClock) -> None:
    breaker = CircuitBreaker(clock=clock, window_calls=10, minimum_calls=10)
    run.many(breaker, [fail(Other()), fail(KeyError()), fail(Boom())])
    assert counts(breaker) == (0, 3, 0, 0, 0)


@pytest.mark.parametrize(
    "ignore_on",
    [Skip, (KeyError, Skip), lambda exc: isinstance(exc, Skip)],
    ids=["type", "tuple", "predicate"],
)
def test_ignore_on_wins_over_failure_on(run: Shell, clock: FakeClock, ignore_on: Any) -> None:
    breaker = make(clock, failure_on=Exception, ignore_on=ignore_on)
    err = Skip()
    with pytest.raises(Skip) as caught:
        run(breaker, fail(err))
    assert caught.value is err
    assert counts(breaker) == (0, 0, 1, 0, 0)


@pytest.mark.parametrize("config", [{"window_calls": 4}, {"window": 10.0}], ids=["count", "time"])
def test_ignored_exceptions_neither_count_nor_reset_anything(
    run: Shell, clock: FakeClock, config: dict[str, Any]
) -> None:
    breaker = make(clock, minimum_calls=4, **config)
    run.many(breaker, [fail(), fail(), ok()])
    before = breaker.snapshot()
    outcomes = run.many(breaker, [fail(Skip())] * 10)
    assert all(isinstance(outcome, Skip) for outcome in outcomes)
    after = breaker.snapshot()
    assert dataclasses.replace(after, ignored=before.ignored) == before
    assert after.ignored == 10
    assert window(breaker) == (3, 2, 0)
    run.many(breaker, [fail()])  # 3 of 4: the ignored calls diluted nothing
    assert breaker.state is OPEN


@pytest.mark.parametrize("exc_type", [Abort, KeyboardInterrupt, SystemExit])
def test_base_exceptions_are_neither_success_nor_failure(
    run: Shell, clock: FakeClock, exc_type: type[BaseException]
) -> None:
    breaker = make(clock, failure_on=BaseException)
    err = exc_type()
    with pytest.raises(exc_type) as caught:
        run(breaker, fail(err))
    assert caught.value is err
    assert counts(breaker) == (0, 0, 1, 0, 0)
    assert window(breaker) == (0, 0, 0)


def test_failure_result(run: Shell, clock: FakeClock) -> None:
    events: list[BreakerEvent] = []
    breaker = make(clock, failure_result=lambda result: result is None or result < 0)
    breaker.add_listener(events.append)
    assert run(breaker, ok(-1)) == -1  # a failure, still returned
    assert run(breaker, ok(5)) == 5
    assert breaker.state is CLOSED
    assert run(breaker, ok(None)) is None
    assert breaker.state is OPEN
    assert counts(breaker) == (1, 2, 0, 0, 0)
    assert events[:2] == [CallFailed("dep", None, -1), CallFailed("dep", None, None)]


@pytest.mark.parametrize(("verdict", "failed"), [("yes", 1), ([], 0), (0, 0), (1, 1), (None, 0)])
def test_failure_result_is_read_for_truth(
    run: Shell, clock: FakeClock, verdict: object, failed: int
) -> None:
    breaker = make(clock, failure_result=lambda result: verdict)
    run(breaker, ok())
    assert counts(breaker) == (1 - failed, failed, 0, 0, 0)


def test_failure_result_does_not_judge_exceptions(run: Shell, clock: FakeClock) -> None:
    judged: list[object] = []

    def judge(result: object) -> bool:
        judged.append(result)
        return True

    breaker = make(clock, window_calls=10, minimum_calls=10, failure_result=judge)
    run.many(breaker, [fail(Other()), fail(Skip()), ok("r")])
    assert judged == ["r"]
    assert counts(breaker) == (1, 1, 1, 0, 0)


def test_raising_exception_classifier_counts_a_failure_and_logs(
    run: Shell, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(exc: BaseException) -> bool:
        raise RuntimeError("classifier bug")

    breaker = make(clock, window_calls=10, minimum_calls=10, failure_on=broken)
    err = Other("original")
    with caplog.at_level(logging.ERROR, logger="seawall"), pytest.raises(Other) as caught:
        run(breaker, fail(err))
    assert caught.value is err
    assert counts(breaker) == (0, 1, 0, 0, 0)
    [record] = caplog.records
    assert record.name == "seawall"
    assert record.levelno == logging.ERROR
    assert "an exception classifier of circuit breaker 'dep' raised" in record.getMessage()
    assert record.exc_info is not None
    assert isinstance(record.exc_info[1], RuntimeError)


def test_raising_ignore_on_predicate_counts_a_failure(
    run: Shell, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(exc: BaseException) -> bool:
        raise RuntimeError("classifier bug")

    breaker = make(clock, window_calls=10, minimum_calls=10, ignore_on=broken)
    with caplog.at_level(logging.ERROR, logger="seawall"), pytest.raises(Skip):
        run(breaker, fail(Skip()))
    assert counts(breaker) == (0, 1, 0, 0, 0)
    assert len(caplog.records) == 1


def test_raising_failure_result_counts_a_failure_and_logs(
    run: Shell, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(result: object) -> bool:
        raise RuntimeError("predicate bug")

    breaker = make(clock, window_calls=10, minimum_calls=10, failure_result=broken)
    with caplog.at_level(logging.ERROR, logger="seawall"):
        assert run(breaker, ok(42)) == 42
    assert counts(breaker) == (0, 1, 0, 0, 0)
    [record] = caplog.records
    assert record.name == "seawall"
    assert "failure_result of circuit breaker 'dep' raised" in record.getMessage()


# -- OPEN ---------------------------------------------------------------------------------------


def test_open_rejects_without_calling(run: Shell, clock: FakeClock) -> None:
    breaker = make(clock)
    trip(run, breaker)
    calls: list[int] = []
    clock.advance(2.0)
    with pytest.raises(CircuitOpenError) as caught:
        run(breaker, lambda: calls.append(1))
    err = caught.value
    assert calls == []
    assert isinstance(err, RejectedError)
    assert isinstance(err, SeawallError)
    assert err.name == "dep"
    assert err.retry_after == 3.0
    assert err.state == "open"
    assert str(err) == "circuit 'dep' is open; retry after 3s"
    clock.advance(2.5)
    with pytest.raises(CircuitOpenError) as caught:
        run(breaker, lambda: calls.append(1))
    assert caught.value.retry_after == 0.5
    assert calls == []
    assert counts(breaker) == (0, 2, 0, 2, 0)
    snapshot = breaker.snapshot()
    assert snapshot.state is OPEN
    assert snapshot.retry_after == 0.5
    assert snapshot.window_calls == 0


def test_open_moves_to_half_open_when_the_state_is_read(run: Shell, clock: FakeClock) -> None:
    breaker = make(clock)
    trip(run, breaker)
    clock.advance(4.5)
    assert breaker.state is OPEN
    clock.advance(0.5)
    assert breaker.state is HALF_OPEN
    assert dict(breaker.snapshot().transitions) == {(CLOSED, OPEN): 1, (OPEN, HALF_OPEN): 1}
    assert breaker.snapshot().retry_after is None


def test_open_moves_to_half_open_on_snapshot(run: Shell, clock: FakeClock) -> None:
    breaker = make(clock)
    trip(run, breaker)
    clock.advance(5.0)
    assert breaker.snapshot().state is HALF_OPEN


def test_open_admits_a_probe_on_the_first_call_after_open_duration(
    run: Shell, clock: FakeClock
) -> None:
    breaker = make(clock)
    trip(run, breaker)
    clock.advance(5.0)
    assert run(breaker, ok("probe")) == "probe"
    assert breaker.state is HALF_OPEN  # one of two probes done
    assert counts(breaker) == (1, 2, 0, 0, 0)
    assert breaker.snapshot().window_calls == 0  # probes do not feed the window


# -- HALF_OPEN ----------------------------------------------------------------------------------


def test_half_open_closes_after_half_open_calls_successes(run: Shell, clock: FakeClock) -> None:
    breaker = make(clock, half_open_calls=3)
    half_open(run, breaker, clock)
    assert run.many(breaker, [ok(1), ok(2)]) == [1, 2]
    assert breaker.state is HALF_OPEN
    assert run(breaker, ok(3)) == 3
    assert breaker.state is CLOSED
    snapshot = breaker.snapshot()
    assert snapshot.window_calls == 0
    assert snapshot.open_duration == 5.0
    assert dict(snapshot.transitions) == {
        (CLOSED, OPEN): 1,
        (OPEN, HALF_OPEN): 1,
        (HALF_OPEN, CLOSED): 1,
    }
    assert counts(breaker) == (3, 2, 0, 0, 0)
    # The window started afresh: one failure does not trip, as the two old ones are gone.
    run.many(breaker, [fail()])
    assert breaker.state is CLOSED
    run.many(breaker, [fail()])
    assert breaker.state is OPEN
    assert breaker.snapshot().retry_after == 5.0


def test_failed_probe_reopens_for_twice_as_long_jittered(run: Shell, clock: FakeClock) -> None:
    breaker = make(clock, half_open_calls=3)
    half_open(run, breaker, clock)
    run.many(breaker, [ok()])
    assert breaker.state is HALF_OPEN
    with pytest.raises(Boom):
        run(breaker, fail())
    assert breaker.state is OPEN
    expected = jittered(10.0, random.Random(SEED))
    snapshot = breaker.snapshot()
    assert snapshot.open_duration == expected
    assert snapshot.retry_after == pytest.approx(expected, rel=1e-12)
    assert 10.0 <= expected <= 12.0
    assert snapshot.transitions[HALF_OPEN, OPEN] == 1
    calls: list[int] = []
    with pytest.raises(CircuitOpenError):
        run(breaker, lambda: calls.append(1))
    assert calls == []
    clock.advance(expected - 0.25)
    assert breaker.state is OPEN
    clock.advance(0.5)
    assert breaker.state is HALF_OPEN


def test_slow_probe_reopens(run: Shell, clock: FakeClock) -> None:
    breaker = make(clock, slow_call_duration=1.0)
    half_open(run, breaker, clock)
    assert run(breaker, taking(clock, 1.0, "late")) == "late"
    assert breaker.state is OPEN
    assert counts(breaker) == (1, 2, 0, 0, 1)
    assert breaker.snapshot().open_duration == jittered(10.0, random.Random(SEED))


def test_probe_judged_a_failure_by_failure_result_reopens(run: Shell, clock: FakeClock) -> None:
    breaker = make(clock, failure_result=lambda result: result == "error page")
    half_open(run, breaker, clock)
    assert run(breaker, ok("error page")) == "error page"
    assert breaker.state is OPEN


def test_probe_raising_a_non_failure_is_a_successful_probe(run: Shell, clock: FakeClock) -> None:
    breaker = make(clock, half_open_calls=1)
    half_open(run, breaker, clock)
    with pytest.raises(Other):
        run(breaker, fail(Other()))
    assert breaker.state is CLOSED


@pytest.mark.parametrize("exc", [Skip(), Abort()], ids=["ignore_on", "base-exception"])
def test_ignored_probe_gives_back_its_slot(
    run: Shell, clock: FakeClock, exc: BaseException
) -> None:
    breaker = make(clock, half_open_calls=1)
    half_open(run, breaker, clock)
    with pytest.raises(type(exc)):
        run(breaker, fail(exc))
    assert breaker.state is HALF_OPEN
    assert counts(breaker) == (0, 2, 1, 0, 0)
    assert run(breaker, ok()) == "ok"  # the slot is free again
    assert breaker.state is CLOSED


def test_half_open_rejects_calls_beyond_the_probes_in_flight(run: Shell, clock: FakeClock) -> None:
    breaker = make(clock, half_open_calls=2, half_open_timeout=30.0)
    half_open(run, breaker, clock)
    calls: list[int] = []
    with run.hold(breaker, 3) as held:
        assert held.admitted == 2
        [early] = held.early
        assert isinstance(early, CircuitOpenError)
        assert early.state == "half_open"
        # Probes settle within their latency, or the breaker reopens for open_duration at least.
        assert early.retry_after == 5.0
        clock.advance(4.0)
        with pytest.raises(CircuitOpenError) as caught:
            run(breaker, lambda: calls.append(1))
        assert caught.value.state == "half_open"
        assert caught.value.retry_after == 5.0
        assert str(caught.value) == "circuit 'dep' is half_open; retry after 5s"
        clock.advance(23.0)  # the probes have run 27 s of their 30
        with pytest.raises(CircuitOpenError) as caught:
            run(breaker, lambda: calls.append(1))
        assert caught.value.retry_after == 3.0
        snapshot = breaker.snapshot()
        assert snapshot.state is HALF_OPEN
        assert snapshot.retry_after is None
        assert snapshot.rejected == 3
        outcomes = held.release()
    assert calls == []
    assert outcomes.count("done") == 2
    assert early in outcomes
    assert breaker.state is CLOSED
    assert counts(breaker) == (2, 2, 0, 3, 0)


def test_half_open_retry_after_is_capped_by_the_oldest_probes_timeout(
    run: Shell, clock: FakeClock
) -> None:
    breaker = make(clock, half_open_calls=2, half_open_timeout=30.0)
    half_open(run, breaker, clock)  # at t=5
    clock.advance(2.0)
    with run.hold(breaker, 1) as first:  # admitted at t=7
        clock.advance(3.0)
        with run.hold(breaker, 1) as second:  # admitted at t=10
            clock.advance(24.0)
            with pytest.raises(CircuitOpenError) as caught:
                run(breaker, ok())
            assert caught.value.retry_after == 3.0  # 7 + 30 - 34, sooner than open_duration
            assert second.release() == ["done"]
        assert first.release() == ["done"]
    assert breaker.state is CLOSED


def test_half_open_timeout_reopens_when_the_state_is_read(run: Shell, clock: FakeClock) -> None:
    breaker = make(clock, half_open_calls=1, half_open_timeout=2.0)
    half_open(run, breaker, clock)  # at t=5
    with run.hold(breaker, 1) as hung:  # admitted at t=5
        assert hung.admitted == 1
        clock.advance(1.75)
        assert breaker.state is HALF_OPEN
        clock.advance(0.25)
        assert breaker.state is OPEN
        duration = jittered(10.0, random.Random(SEED))  # counted as a failed probing
        before = breaker.snapshot()
        assert before.open_duration == duration
        # The next probe goes open_duration after the hung one was let through (t=5).
        assert before.retry_after == pytest.approx(5.0 + duration - 7.0)
        # The hung probe finishes late: its caller gets the result, the state is unmoved.
        assert hung.release(lambda: "late") == ["late"]
    after = breaker.snapshot()
    assert after.state is OPEN
    assert after.transitions == before.transitions
    assert after.successes == before.successes + 1
    assert after.retry_after == before.retry_after
    clock.advance(before.retry_after or 0.0)
    assert breaker.state is HALF_OPEN  # fresh probing
    assert run(breaker, ok()) == "ok"
    assert breaker.state is CLOSED


def test_half_open_timeout_reopens_on_the_next_call(run: Shell, clock: FakeClock) -> None:
    breaker = make(clock, half_open_calls=1, half_open_timeout=2.0)
    half_open(run, breaker, clock)  # at t=5
    with run.hold(breaker, 1) as hung:
        clock.advance(2.0)
        calls: list[int] = []
        with pytest.raises(CircuitOpenError) as caught:
            run(breaker, lambda: calls.append(1))
        assert calls == []
        assert caught.value.state == "open"
        duration = jittered(10.0, random.Random(SEED))
        assert caught.value.retry_after == pytest.approx(5.0 + duration - 7.0, rel=1e-12)
        assert breaker.snapshot().transitions[HALF_OPEN, OPEN] == 1
        # A late failure of the timed-out probe changes nothing either.
        [late] = hung.release(fail(Boom("late")))
    assert isinstance(late, Boom)
    assert breaker.state is OPEN
    assert breaker.snapshot().transitions[HALF_OPEN, OPEN] == 1
    assert breaker.snapshot().open_duration == duration


def test_a_probe_timed_out_after_its_open_duration_lets_the_next_probe_in_at_once(
    run: Shell, clock: FakeClock
) -> None:
    breaker = make(clock, half_open_calls=1, half_open_timeout=30.0, max_open_duration=5.0)
    half_open(run, breaker, clock)  # at t=5
    events: list[BreakerEvent] = []
    breaker.add_listener(events.append)
    with run.hold(breaker, 1) as hung:  # admitted at t=5
        clock.advance(30.0)
        # Reopened at t=35 for open_duration after t=5: already over, so probing again.
        assert breaker.state is HALF_OPEN
        assert run(breaker, ok("next probe")) == "next probe"
        assert breaker.state is CLOSED
        assert hung.release(fail(Boom("late"))) != ["done"]
    assert breaker.state is CLOSED  # the late failure belongs to an earlier probing
    assert [(e.from_state, e.to_state, e.at) for e in events if isinstance(e, StateChange)] == [
        (HALF_OPEN, OPEN, 35.0),
        (OPEN, HALF_OPEN, 35.0),
        (HALF_OPEN, CLOSED, 35.0),
    ]


def test_a_probe_that_fails_late_does_not_delay_the_next_one(run: Shell, clock: FakeClock) -> None:
    """A probe cut by an inner timeout fails after it: the next goes open_duration after the
    failed one was let through, not after its failure."""
    breaker = make(clock, half_open_calls=1, max_open_duration=5.0)
    half_open(run, breaker, clock)  # at t=5
    with run.hold(breaker, 1) as slow:  # admitted at t=5
        clock.advance(3.0)
        [error] = slow.release(fail())
    assert isinstance(error, Boom)
    assert breaker.state is OPEN  # failed at t=8
    duration = jittered(5.0, random.Random(SEED))
    assert breaker.snapshot().retry_after == pytest.approx(5.0 + duration - 8.0)
    clock.advance(5.0 + duration - 8.0)
    assert breaker.state is HALF_OPEN


def test_half_open_timeout_counts_from_the_oldest_probe_still_in_flight(
    run: Shell, clock: FakeClock
) -> None:
    breaker = make(clock, half_open_calls=3, half_open_timeout=30.0)
    half_open(run, breaker, clock)  # at t=5
    with run.hold(breaker, 1) as first:  # admitted at t=5
        clock.advance(20.0)
        with run.hold(breaker, 1) as second:  # admitted at t=25
            assert first.release() == ["done"]  # a slow but successful probe
            clock.advance(10.0)  # t=35: the probe in flight has run 10 s of its 30
            assert breaker.state is HALF_OPEN
            assert second.release() == ["done"]
    assert breaker.state is HALF_OPEN


# -- open duration growth -----------------------------------------------------------------------


def test_open_duration_grows_with_each_failed_probing_up_to_the_cap(
    run: Shell, clock: FakeClock
) -> None:
    breaker = make(
        clock, open_duration=5.0, max_open_duration=30.0, half_open_calls=1, rng=random.Random(3)
    )
    expected_rng = random.Random(3)
    trip(run, breaker)
    assert breaker.snapshot().open_duration == 5.0  # the first opening is not jittered
    durations = []
    for nominal in (10.0, 20.0, 30.0, 30.0, 30.0):
        clock.advance(breaker.snapshot().open_duration)
        with pytest.raises(Boom):
            run(breaker, fail())
        assert breaker.state is OPEN
        expected = jittered(nominal, expected_rng)
        assert breaker.snapshot().open_duration == expected
        assert nominal <= expected <= 1.2 * nominal
        durations.append(expected)
    assert len(set(durations)) == 5  # jitter differs each time
    clock.advance(breaker.snapshot().open_duration)
    assert run(breaker, ok()) == "ok"
    assert breaker.state is CLOSED
    assert breaker.snapshot().open_duration == 5.0
    trip(run, breaker)
    assert breaker.snapshot().open_duration == 5.0
    assert breaker.snapshot().retry_after == 5.0
    clock.advance(5.0)
    with pytest.raises(Boom):
        run(breaker, fail())
    assert breaker.snapshot().open_duration == jittered(10.0, expected_rng)  # grows from base


def test_open_duration_cap_equal_to_open_duration(run: Shell, clock: FakeClock) -> None:
    breaker = make(clock, open_duration=5.0, max_open_duration=5.0, half_open_calls=1)
    half_open(run, breaker, clock)
    run.many(breaker, [fail()])
    assert breaker.snapshot().open_duration == jittered(5.0, random.Random(SEED))


def test_open_duration_without_rng_is_jittered_within_bounds(run: Shell, clock: FakeClock) -> None:
    breaker = make(clock, rng=None, half_open_calls=1)
    half_open(run, breaker, clock)
    run.many(breaker, [fail()])
    assert 10.0 <= breaker.snapshot().open_duration <= 12.0


def test_half_open_timeouts_grow_the_open_duration_too(run: Shell, clock: FakeClock) -> None:
    breaker = make(clock, half_open_calls=1, half_open_timeout=1.0, max_open_duration=15.0)
    expected_rng = random.Random(SEED)
    trip(run, breaker)
    with contextlib.ExitStack() as stack:
        hung = []
        for nominal in (10.0, 15.0):
            clock.advance(breaker.snapshot().open_duration)
            hung.append(stack.enter_context(run.hold(breaker, 1)))
            clock.advance(1.5)
            assert breaker.state is OPEN
            assert breaker.snapshot().open_duration == jittered(nominal, expected_rng)
        for held in hung:
            assert held.release() == ["done"]
    assert breaker.state is OPEN
    assert breaker.snapshot().transitions[HALF_OPEN, OPEN] == 2


# -- manual control -----------------------------------------------------------------------------

STATES = [CLOSED, OPEN, HALF_OPEN, FORCED_OPEN, DISABLED]


@pytest.mark.parametrize("start", STATES)
def test_isolate_forces_open_from_every_state(
    run: Shell, clock: FakeClock, start: CircuitState
) -> None:
    breaker = make(clock)
    drive(run, breaker, clock, start)
    before = breaker.snapshot().transitions
    breaker.isolate()
    assert breaker.state is FORCED_OPEN
    calls: list[int] = []
    with pytest.raises(CircuitOpenError) as caught:
        run(breaker, lambda: calls.append(1))
    assert calls == []
    assert caught.value.retry_after == math.inf
    assert caught.value.state == "forced_open"
    assert str(caught.value) == "circuit 'dep' is forced_open; until reset"
    clock.advance(10_000.0)
    assert breaker.state is FORCED_OPEN
    snapshot = breaker.snapshot()
    assert snapshot.retry_after == math.inf
    assert snapshot.window_calls == 0
    expected = dict(before)
    if start is not FORCED_OPEN:
        expected[start, FORCED_OPEN] = 1
    assert dict(snapshot.transitions) == expected


@pytest.mark.parametrize("start", STATES)
def test_disable_admits_everything_and_never_trips_from_every_state(
    run: Shell, clock: FakeClock, start: CircuitState
) -> None:
    breaker = make(clock)
    drive(run, breaker, clock, start)
    successes, failures, *_ = counts(breaker)
    breaker.disable()
    assert breaker.state is DISABLED
    outcomes = run.many(breaker, [fail()] * 50 + [ok()] * 3)
    assert all(isinstance(outcome, Boom) for outcome in outcomes[:50])
    assert outcomes[50:] == ["ok"] * 3
    clock.advance(10_000.0)
    assert breaker.state is DISABLED
    snapshot = breaker.snapshot()
    assert (snapshot.successes, snapshot.failures) == (successes + 3, failures + 50)
    assert snapshot.rejected == 0
    assert snapshot.retry_after is None
    assert snapshot.window_calls == 0
    if start is not DISABLED:
        assert snapshot.transitions[start, DISABLED] == 1


@pytest.mark.parametrize("start", STATES)
def test_reset_closes_from_every_state(run: Shell, clock: FakeClock, start: CircuitState) -> None:
    breaker = make(clock)
    drive(run, breaker, clock, start)
    if start is CLOSED:
        run.many(breaker, [fail()])  # something in the window
    breaker.reset()
    assert breaker.state is CLOSED
    snapshot = breaker.snapshot()
    assert snapshot.window_calls == 0
    assert snapshot.open_duration == 5.0
    assert snapshot.retry_after is None
    if start is not CLOSED:
        assert snapshot.transitions[start, CLOSED] == 1
    assert run(breaker, ok()) == "ok"
    run.many(breaker, [fail()])  # 1 failure of 2: trips on a fresh window
    assert breaker.state is OPEN
    assert breaker.snapshot().open_duration == 5.0


def test_reset_in_closed_clears_the_window_without_a_transition(
    run: Shell, clock: FakeClock
) -> None:
    events: list[BreakerEvent] = []
    breaker = make(clock, window_calls=4, minimum_calls=3)
    breaker.add_listener(events.append)
    run.many(breaker, [fail(), fail()])
    events.clear()
    breaker.reset()
    assert events == []
    assert dict(breaker.snapshot().transitions) == {}
    run.many(breaker, [fail(), fail()])
    assert breaker.state is CLOSED  # had the window kept the old two, this would trip
    run.many(breaker, [fail()])
    assert breaker.state is OPEN


def test_reset_clears_a_grown_open_duration(run: Shell, clock: FakeClock) -> None:
    breaker = make(clock, half_open_calls=1)
    half_open(run, breaker, clock)
    run.many(breaker, [fail()])
    assert breaker.snapshot().open_duration == jittered(10.0, random.Random(SEED))
    breaker.reset()
    assert breaker.snapshot().open_duration == 5.0
    trip(run, breaker)
    assert breaker.snapshot().retry_after == 5.0


def test_repeated_manual_moves_count_once(clock: FakeClock) -> None:
    breaker = make(clock)
    breaker.isolate()
    breaker.isolate()
    breaker.disable()
    breaker.disable()
    breaker.reset()
    breaker.reset()
    assert dict(breaker.snapshot().transitions) == {
        (CLOSED, FORCED_OPEN): 1,
        (FORCED_OPEN, DISABLED): 1,
        (DISABLED, CLOSED): 1,
    }


@pytest.mark.parametrize("control", ["reset", "isolate", "disable"])
def test_a_probe_outstanding_across_manual_control_changes_nothing(
    run: Shell, clock: FakeClock, control: str
) -> None:
    breaker = make(clock, half_open_calls=1)
    half_open(run, breaker, clock)
    with run.hold(breaker, 1) as probe:
        getattr(breaker, control)()
        state = breaker.state
        before = breaker.snapshot()
        [late] = probe.release(fail())
    assert isinstance(late, Boom)
    after = breaker.snapshot()
    assert after.state is state
    assert after.failures == before.failures + 1
    assert after.transitions == before.transitions
    assert after.window_calls == 0


# -- snapshot -----------------------------------------------------------------------------------


def test_snapshot_fields(run: Shell, clock: FakeClock) -> None:
    breaker = make(clock, window_calls=10, minimum_calls=10, slow_call_duration=1.0)
    run.many(
        breaker,
        [ok(), ok(), fail(), fail(Skip()), taking(clock, 1.0), fail(Other())],
    )
    snapshot = breaker.snapshot()
    assert snapshot == BreakerSnapshot(
        name="dep",
        state=CLOSED,
        window_calls=5,
        window_failures=1,
        window_slow_calls=1,
        successes=4,
        failures=1,
        ignored=1,
        rejected=0,
        slow_calls=1,
        transitions={},
        not_closed_seconds=0.0,
        open_duration=5.0,
        retry_after=None,
    )
    assert snapshot.calls == 6
    assert snapshot.failure_ratio == 0.2


def test_snapshot_of_a_new_breaker(clock: FakeClock) -> None:
    snapshot = make(clock).snapshot()
    assert snapshot.calls == 0
    assert snapshot.failure_ratio == 0.0
    assert snapshot.state is CLOSED


def test_snapshot_counts_rejections_and_probes(run: Shell, clock: FakeClock) -> None:
    breaker = make(clock, half_open_calls=2)
    trip(run, breaker)
    run.many(breaker, [ok()] * 3)
    clock.advance(5.0)
    run.many(breaker, [ok(), fail(Skip()), fail()])
    snapshot = breaker.snapshot()
    assert (snapshot.successes, snapshot.failures, snapshot.ignored, snapshot.rejected) == (
        1,
        3,
        1,
        3,
    )
    assert snapshot.calls == 8
    assert snapshot.state is OPEN
    assert snapshot.window_calls == 0
    assert snapshot.failure_ratio == 0.0


def test_snapshot_is_frozen_and_detached(run: Shell, clock: FakeClock) -> None:
    breaker = make(clock)
    trip(run, breaker)
    snapshot = breaker.snapshot()
    with pytest.raises(dataclasses.FrozenInstanceError):
        snapshot.failures = 0  # type: ignore[misc]
    with pytest.raises(TypeError):
        snapshot.transitions[CLOSED, OPEN] = 5  # type: ignore[index]
    breaker.reset()
    assert dict(snapshot.transitions) == {(CLOSED, OPEN): 1}
    assert snapshot.state is OPEN


def test_not_closed_seconds(run: Shell, clock: FakeClock) -> None:
    def not_closed() -> float:
        return breaker.snapshot().not_closed_seconds

    breaker = make(clock)
    clock.advance(10.0)
    assert not_closed() == 0.0
    trip(run, breaker)  # opens at t=10
    clock.advance(3.0)
    assert not_closed() == 3.0  # the current stretch counts
    clock.advance(2.0)
    assert breaker.state is HALF_OPEN
    clock.advance(2.0)
    assert not_closed() == 7.0
    run.many(breaker, [ok(), ok()])  # closes at t=17
    assert breaker.state is CLOSED
    clock.advance(100.0)
    assert not_closed() == 7.0
    breaker.isolate()  # t=117
    clock.advance(3.0)
    assert not_closed() == 10.0
    breaker.disable()  # disabled is not refusing
    clock.advance(50.0)
    assert not_closed() == 10.0
    breaker.reset()
    trip(run, breaker)  # t=170, open then forced open: one stretch
    clock.advance(1.0)
    breaker.isolate()
    clock.advance(1.0)
    breaker.reset()
    clock.advance(1.0)
    assert not_closed() == 12.0


# -- listeners ----------------------------------------------------------------------------------


def test_event_types() -> None:
    assert get_args(BreakerEvent) == (StateChange, CallRejected, CallFailed)
    change = StateChange("dep", CLOSED, OPEN, 1.0)
    with pytest.raises(dataclasses.FrozenInstanceError):
        change.at = 2.0  # type: ignore[misc]


def test_listener_sees_a_full_cycle_in_order(run: Shell, clock: FakeClock) -> None:
    events: list[BreakerEvent] = []
    listener = events.append
    breaker = make(clock, window_calls=2, minimum_calls=2, half_open_calls=1)
    assert breaker.add_listener(listener) is listener
    e1, e2, e3, e4 = Boom("1"), Boom("2"), Boom("3"), Boom("4")
    run.many(breaker, [fail(e1), ok(), fail(e2)])  # trips at t=0
    clock.advance(1.0)
    run.many(breaker, [ok()])  # rejected
    clock.advance(4.0)
    run.many(breaker, [fail(e3)])  # a failed probe at t=5
    duration = jittered(10.0, random.Random(SEED))
    clock.advance(duration)
    reopened_at = clock.monotonic()
    assert breaker.state is HALF_OPEN
    run.many(breaker, [ok()])
    breaker.isolate()
    run.many(breaker, [ok()])
    breaker.disable()
    run.many(breaker, [fail(e4), ok()])
    breaker.reset()
    assert events == [
        CallFailed("dep", e1, None),
        CallFailed("dep", e2, None),
        StateChange("dep", CLOSED, OPEN, 0.0),
        CallRejected("dep", OPEN, 4.0),
        StateChange("dep", OPEN, HALF_OPEN, 5.0),
        CallFailed("dep", e3, None),
        StateChange("dep", HALF_OPEN, OPEN, 5.0),
        StateChange("dep", OPEN, HALF_OPEN, reopened_at),
        StateChange("dep", HALF_OPEN, CLOSED, reopened_at),
        StateChange("dep", CLOSED, FORCED_OPEN, reopened_at),
        CallRejected("dep", FORCED_OPEN, math.inf),
        StateChange("dep", FORCED_OPEN, DISABLED, reopened_at),
        CallFailed("dep", e4, None),
        StateChange("dep", DISABLED, CLOSED, reopened_at),
    ]


def test_half_open_timeout_and_half_open_rejections_are_events(
    run: Shell, clock: FakeClock
) -> None:
    breaker = make(clock, half_open_calls=1, half_open_timeout=2.0)
    half_open(run, breaker, clock)
    events: list[BreakerEvent] = []
    breaker.add_listener(events.append)
    with run.hold(breaker, 2) as held:
        clock.advance(2.0)
        assert breaker.state is OPEN
        held.release()
    assert events == [
        CallRejected("dep", HALF_OPEN, 2.0),
        StateChange("dep", HALF_OPEN, OPEN, 7.0),
    ]


def test_raising_listener_never_changes_the_result(
    run: Shell, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    seen: list[BreakerEvent] = []

    def broken(event: BreakerEvent) -> None:
        raise RuntimeError("listener bug")

    breaker = make(clock, half_open_calls=1)
    breaker.add_listener(broken)
    breaker.add_listener(seen.append)
    with caplog.at_level(logging.ERROR, logger="seawall"):
        err = Boom()
        with pytest.raises(Boom) as caught:
            run(breaker, fail(err))
        assert caught.value is err
        with pytest.raises(Boom):
            run(breaker, fail())  # trips
        with pytest.raises(CircuitOpenError):
            run(breaker, ok())
        clock.advance(5.0)
        assert run(breaker, ok("fine")) == "fine"  # half-open, then closed
    assert breaker.state is CLOSED
    assert [type(event) for event in seen] == [
        CallFailed,
        CallFailed,
        StateChange,
        CallRejected,
        StateChange,
        StateChange,
    ]
    assert len(caplog.records) == len(seen)
    for record in caplog.records:
        assert record.name == "seawall"
        assert record.levelno == logging.ERROR
        assert "of circuit breaker 'dep' raised" in record.getMessage()


def test_remove_listener(run: Shell, clock: FakeClock) -> None:
    kept: list[BreakerEvent] = []
    removed: list[BreakerEvent] = []
    breaker = make(clock)
    keep = breaker.add_listener(kept.append)
    gone = breaker.add_listener(removed.append)
    breaker.remove_listener(gone)
    trip(run, breaker)
    assert len(kept) == 3
    assert removed == []
    with pytest.raises(ValueError, match="not in list"):
        breaker.remove_listener(gone)
    breaker.remove_listener(keep)
    with pytest.raises(ValueError, match="not in list"):
        breaker.remove_listener(print)


def test_add_listener_works_as_a_decorator(clock: FakeClock) -> None:
    breaker = make(clock)
    seen: list[BreakerEvent] = []

    @breaker.add_listener
    def on_event(event: BreakerEvent) -> None:
        seen.append(event)

    breaker.isolate()
    assert seen == [StateChange("dep", CLOSED, FORCED_OPEN, 0.0)]
    assert callable(on_event)


def test_add_listener_rejects_non_callables(clock: FakeClock) -> None:
    with pytest.raises(TypeError, match="listener must be callable, got int"):
        make(clock).add_listener(42)  # type: ignore[arg-type]


def test_a_listener_added_twice_hears_twice(clock: FakeClock) -> None:
    seen: list[BreakerEvent] = []
    listener = seen.append
    breaker = make(clock)
    breaker.add_listener(listener)
    breaker.add_listener(listener)
    breaker.isolate()
    assert len(seen) == 2
    breaker.remove_listener(listener)
    breaker.reset()
    assert len(seen) == 3


def test_successes_make_no_events(run: Shell, clock: FakeClock) -> None:
    events: list[BreakerEvent] = []
    breaker = make(clock, window=10.0)
    breaker.add_listener(events.append)
    run.many(breaker, [ok()] * 5 + [fail(Skip()), fail(Other())])
    assert events == []


# -- cancellation (async only: it is how tasks end early) ----------------------------------------


def test_cancelled_probe_is_ignored_and_gives_back_its_slot(clock: FakeClock) -> None:
    breaker = make(clock, half_open_calls=1)

    async def down() -> NoReturn:
        raise Boom

    async def up() -> str:
        return "ok"

    async def main() -> None:
        for _ in range(2):
            with pytest.raises(Boom):
                await breaker.acall(down)
        clock.advance(5.0)
        entered = asyncio.Event()
        never = asyncio.Event()

        async def hang() -> str:
            entered.set()
            await never.wait()
            return "never"

        task = asyncio.create_task(breaker.acall(hang))
        await entered.wait()
        with pytest.raises(CircuitOpenError) as caught:
            await breaker.acall(up)
        assert caught.value.state == "half_open"
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert breaker.state is HALF_OPEN
        assert counts(breaker) == (0, 2, 1, 1, 0)
        assert await breaker.acall(up) == "ok"  # the slot came back
        assert breaker.state is CLOSED

    asyncio.run(main())


def test_cancelled_call_in_closed_changes_no_window(clock: FakeClock) -> None:
    breaker = make(clock, window_calls=4, minimum_calls=3)

    async def down() -> NoReturn:
        raise Boom

    async def main() -> None:
        for _ in range(2):
            with pytest.raises(Boom):
                await breaker.acall(down)
        started = asyncio.Event()

        async def hang() -> None:
            started.set()
            await asyncio.Event().wait()

        task = asyncio.create_task(breaker.acall(hang))
        await started.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())
    assert window(breaker) == (2, 2, 0)
    assert counts(breaker) == (0, 2, 1, 0, 0)
    assert breaker.state is CLOSED
