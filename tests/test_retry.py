"""Retry: waits, stops, the original exception, deadlines, rejections, validation, snapshot.

Every behaviour goes through both shells (the ``run`` fixture of conftest.py: ``policy.call``
and ``await policy.acall``); time is a FakeClock whose sleeps are recorded, never real.
"""

from __future__ import annotations

import asyncio
import random
import threading
from typing import Any

import pytest
import tenacity
from helpers import Boom

import seawall
import seawall._retry as retry_module
from seawall import CircuitBreaker, CircuitOpenError, Retry, RetryBudget, Timeout
from seawall.testing import FakeClock, Simulation, no_waits


class Script:
    """A function whose n-th call raises or returns the n-th outcome (the last one repeats).

    Records the clock time of each attempt; ``takes`` seconds pass on the clock per attempt.
    """

    def __init__(self, *outcomes: object, clock: FakeClock | None = None, takes: float = 0.0):
        self.outcomes = outcomes
        self.clock = clock
        self.takes = takes
        self.calls = 0
        self.times: list[float] = []

    def __call__(self) -> Any:
        if self.clock is not None:
            self.times.append(self.clock.monotonic())
            if self.takes:
                self.clock.advance(self.takes)
        outcome = self.outcomes[min(self.calls, len(self.outcomes) - 1)]
        self.calls += 1
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome


def fails(n: int, then: object = "ok", **kw: Any) -> Script:
    """Raises ``n`` fresh Boom errors, then returns ``then``."""
    return Script(*[Boom(f"failure {i + 1}") for i in range(n)], then, **kw)


def always_fails(**kw: Any) -> Script:
    return Script(Boom("down"), **kw)


def nested(run: Any, outer: Any, inner: Any, fn: Any) -> Any:
    """``outer`` around ``inner`` around ``fn``, through the shell ``run`` stands for."""
    if run.kind == "sync":
        return outer.call(inner.call, fn)

    async def afn() -> Any:
        return fn()

    return asyncio.run(outer.acall(inner.acall, afn))


# -- waits ----------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", [7, 2024])
def test_default_wait_is_exponential_with_seeded_jitter(run: Any, clock: FakeClock, seed: int):
    retry = Retry(on=Boom, attempts=9, clock=clock)
    fn = always_fails()
    random.seed(seed)
    with pytest.raises(Boom):
        run(retry, fn)
    # tenacity.wait_exponential_jitter: min(initial * 2**(attempt-1) + uniform(0, jitter), max)
    random.seed(seed)
    expected = [min(0.1 * 2 ** (n - 1) + random.uniform(0, 0.1), 5.0) for n in range(1, 9)]
    assert clock.sleeps == expected
    assert fn.calls == 9
    assert clock.sleeps[-2:] == [5.0, 5.0]  # 6.4 s and 12.8 s are capped
    assert all(
        0.1 * 2 ** (n - 1) <= w <= 0.1 * 2 ** (n - 1) + 0.1 for n, w in enumerate(expected[:6], 1)
    )


def test_default_wait_emits_no_deprecation_warning(recwarn: pytest.WarningsRecorder):
    Retry(on=Boom)
    assert [w for w in recwarn if issubclass(w.category, DeprecationWarning)] == []


def test_seconds_wait_is_fixed(run: Any, clock: FakeClock):
    retry = Retry(on=Boom, attempts=4, wait=0.5, clock=clock)
    fn = always_fails(clock=clock)
    with pytest.raises(Boom):
        run(retry, fn)
    assert clock.sleeps == [0.5, 0.5, 0.5]
    assert fn.times == [0.0, 0.5, 1.0, 1.5]


def test_zero_wait_does_not_sleep(run: Any, clock: FakeClock):
    retry = Retry(on=Boom, attempts=3, wait=0, clock=clock)
    fn = fails(2)
    assert run(retry, fn) == "ok"
    assert fn.calls == 3
    assert clock.sleeps == []


@pytest.mark.parametrize(
    ("wait", "expected"),
    [
        (tenacity.wait_fixed(0.2), [0.2, 0.2, 0.2, 0.2]),
        (
            tenacity.wait_incrementing(start=0.1, increment=0.2),
            [0.1 + 0.2 * (n - 1) for n in range(1, 5)],
        ),
        (
            tenacity.wait_chain(
                tenacity.wait_fixed(1), tenacity.wait_fixed(1), tenacity.wait_fixed(2)
            ),
            [1, 1, 2, 2],
        ),
    ],
    ids=["wait_fixed", "wait_incrementing", "wait_chain"],
)
def test_tenacity_wait_strategies(run: Any, clock: FakeClock, wait: Any, expected: list[float]):
    retry = Retry(on=Boom, attempts=5, wait=wait, clock=clock)
    fn = always_fails()
    with pytest.raises(Boom):
        run(retry, fn)
    assert clock.sleeps == expected
    assert fn.calls == 5


# -- stops and attempts ---------------------------------------------------------------------


def test_stop_after_attempt(run: Any, clock: FakeClock):
    retry = Retry(on=Boom, attempts=10, wait=0.1, stop=tenacity.stop_after_attempt(2), clock=clock)
    fn = always_fails()
    with pytest.raises(Boom):
        run(retry, fn)
    assert fn.calls == 2
    assert clock.sleeps == [0.1]


def test_stop_after_delay_reads_the_seawall_clock(run: Any, clock: FakeClock):
    # On the real clock no time passes, so stop_after_delay would never stop: 10 attempts.
    retry = Retry(on=Boom, attempts=10, wait=0.4, stop=tenacity.stop_after_delay(1.0), clock=clock)
    fn = always_fails(clock=clock)
    with pytest.raises(Boom) as info:
        run(retry, fn)
    # Failures at 0, 0.4, 0.8 are within 1 s; the one at 1.2 is not.
    assert fn.calls == 4
    assert clock.sleeps == [0.4, 0.4, 0.4]
    assert fn.times == pytest.approx([0.0, 0.4, 0.8, 1.2])
    assert "after 4 attempts over 1.2s" in info.value.__notes__[0]


def test_stop_after_delay_counts_the_first_attempt(run: Any, clock: FakeClock):
    # As in tenacity: the delay runs from the start of the first attempt (0.5 s long here).
    retry = Retry(on=Boom, attempts=10, wait=0.4, stop=tenacity.stop_after_delay(1.0), clock=clock)
    fn = always_fails(clock=clock, takes=0.5)
    with pytest.raises(Boom) as info:
        run(retry, fn)
    # Attempt 1 ends at 0.5 (< 1.0), attempt 2 runs 0.9..1.4 (>= 1.0): stop.
    assert fn.calls == 2
    assert fn.times == [0.0, 0.9]
    assert "after 2 attempts over 1.4s" in info.value.__notes__[0]


def test_attempts_counts_the_first_call(run: Any, clock: FakeClock):
    retry = Retry(on=Boom, attempts=1, wait=0.5, clock=clock)
    fn = always_fails()
    with pytest.raises(Boom):
        run(retry, fn)
    assert fn.calls == 1
    assert clock.sleeps == []


@pytest.mark.parametrize("attempts", [2, 3, 5])
def test_attempts_bound_the_calls(run: Any, clock: FakeClock, attempts: int):
    retry = Retry(on=Boom, attempts=attempts, wait=0.5, clock=clock)
    fn = always_fails()
    with pytest.raises(Boom):
        run(retry, fn)
    assert fn.calls == attempts
    assert clock.sleeps == [0.5] * (attempts - 1)


def test_success_after_failures_returns_the_result(run: Any, clock: FakeClock):
    retry = Retry(on=Boom, attempts=3, wait=0.5, clock=clock)
    fn = fails(2, then={"answer": 42})
    assert run(retry, fn) == {"answer": 42}
    assert fn.calls == 3
    assert clock.sleeps == [0.5, 0.5]


# -- what is raised -------------------------------------------------------------------------


def test_original_exception_is_raised_with_a_note(run: Any, clock: FakeClock):
    last = Boom("third")
    fn = Script(Boom("first"), Boom("second"), last)
    retry = Retry(on=Boom, attempts=3, wait=0.5, name="fetch", clock=clock)
    with pytest.raises(Boom) as info:
        run(retry, fn)
    assert info.value is last
    assert info.value.__notes__ == [
        "seawall: retry 'fetch' gave up after 3 attempts over 1s (attempts exhausted)"
    ]


def test_single_attempt_note_is_singular(run: Any, clock: FakeClock):
    exc = Boom("once")
    retry = Retry(on=Boom, attempts=1, name="once", clock=clock)
    with pytest.raises(Boom) as info:
        run(retry, Script(exc))
    assert info.value is exc
    assert info.value.__notes__ == [
        "seawall: retry 'once' gave up after 1 attempt over 0s (attempts exhausted)"
    ]


def test_exceptions_not_in_on_are_not_retried(run: Any, clock: FakeClock):
    exc = KeyError("nope")
    fn = Script(exc, "ok")
    retry = Retry(on=Boom, attempts=5, wait=0.5, clock=clock)
    with pytest.raises(KeyError) as info:
        run(retry, fn)
    assert info.value is exc
    assert fn.calls == 1
    assert clock.sleeps == []


@pytest.mark.parametrize(
    "on",
    [
        (Boom, KeyError),
        lambda exc: isinstance(exc, Boom | KeyError),
        tenacity.retry_if_exception_type((Boom, KeyError)),
    ],
    ids=["tuple", "predicate", "tenacity"],
)
def test_on_forms(run: Any, clock: FakeClock, on: Any):
    retry = Retry(on=on, attempts=4, wait=0.5, clock=clock)
    fn = Script(Boom("a"), KeyError("b"), "ok")
    assert run(retry, fn) == "ok"
    assert fn.calls == 3
    assert clock.sleeps == [0.5, 0.5]

    other = ValueError("not named")
    fn = Script(other, "ok")
    with pytest.raises(ValueError, match="not named") as info:
        run(retry, fn)
    assert info.value is other
    assert fn.calls == 1


def test_predicate_sees_the_exception(run: Any, clock: FakeClock):
    seen: list[BaseException] = []

    def transient(exc: BaseException) -> bool:
        seen.append(exc)
        return "transient" in str(exc)

    first, second = Boom("transient"), Boom("permanent")
    retry = Retry(on=transient, attempts=5, wait=0, clock=clock)
    fn = Script(first, second, "ok")
    with pytest.raises(Boom) as info:
        run(retry, fn)
    assert info.value is second
    assert seen == [first, second]
    assert fn.calls == 2


# -- retry_result ---------------------------------------------------------------------------


def test_retry_result_retries_bad_results(run: Any, clock: FakeClock):
    retry = Retry(on=Boom, retry_result=lambda r: r is None, attempts=4, wait=0.5, clock=clock)
    fn = Script(None, None, "ready")
    assert run(retry, fn) == "ready"
    assert fn.calls == 3
    assert clock.sleeps == [0.5, 0.5]
    assert retry.snapshot().calls[("success", True)] == 1


def test_retry_result_returns_the_last_result_when_attempts_run_out(run: Any, clock: FakeClock):
    retry = Retry(on=Boom, retry_result=lambda r: r < 0, attempts=3, wait=0.5, clock=clock)
    fn = Script(-1, -2, -3, 4)
    assert run(retry, fn) == -3
    assert fn.calls == 3
    assert clock.sleeps == [0.5, 0.5]
    snap = retry.snapshot()
    assert snap.calls[("failure", True)] == 1
    assert snap.attempts_total == 3


def test_retry_result_mixed_with_exceptions(run: Any, clock: FakeClock):
    retry = Retry(on=Boom, retry_result=lambda r: r == "busy", attempts=4, wait=0, clock=clock)
    fn = Script("busy", Boom("x"), "busy", "done")
    assert run(retry, fn) == "done"
    assert fn.calls == 4


# -- deadlines ------------------------------------------------------------------------------


def test_deadline_stops_retrying_before_a_wait_that_would_pass_it(run: Any, clock: FakeClock):
    retry = Retry(on=Boom, attempts=10, wait=0.4, deadline=1.0, name="dl", clock=clock)
    fn = always_fails(clock=clock)
    with pytest.raises(Boom) as info:
        run(retry, fn)
    assert fn.times == [0.0, 0.4, 0.8]
    assert clock.sleeps == [0.4, 0.4]
    assert clock.monotonic() == 0.8  # the wait to 1.2 was not made
    assert info.value.__notes__ == [
        "seawall: retry 'dl' gave up after 3 attempts over 0.8s (deadline reached)"
    ]


def test_deadline_includes_the_first_attempt(run: Any, clock: FakeClock):
    retry = Retry(on=Boom, attempts=10, wait=0.4, deadline=1.0, clock=clock)
    fn = always_fails(clock=clock, takes=0.7)
    with pytest.raises(Boom) as info:
        run(retry, fn)
    assert fn.calls == 1  # 0.3 s left, a 0.4 s wait does not fit
    assert clock.sleeps == []
    assert "deadline" in info.value.__notes__[0]


def test_deadline_lets_a_late_success_through(run: Any, clock: FakeClock):
    retry = Retry(on=Boom, attempts=10, wait=0.4, deadline=1.0, clock=clock)
    fn = fails(2, clock=clock)
    assert run(retry, fn) == "ok"
    assert fn.times == [0.0, 0.4, 0.8]


def test_enclosing_timeout_bounds_retries(run: Any, clock: FakeClock):
    retry = Retry(on=Boom, attempts=10, wait=0.4, name="inner", clock=clock)
    last = Boom("last")
    fn = Script(Boom("1"), Boom("2"), last, "too late", clock=clock)
    with pytest.raises(Boom) as info:
        nested(run, Timeout(1.0, clock=clock), retry, fn)
    assert info.value is last
    assert fn.times == [0.0, 0.4, 0.8]
    assert clock.sleeps == [0.4, 0.4]
    assert info.value.__notes__[0].endswith("(deadline reached)")


@pytest.mark.parametrize(
    ("own", "outer", "times"),
    [
        (1.0, 0.5, [0.0, 0.4]),
        (0.5, 1.0, [0.0, 0.4]),
        (1.0, 5.0, [0.0, 0.4, 0.8]),
        (5.0, 1.0, [0.0, 0.4, 0.8]),
    ],
)
def test_sooner_of_own_and_enclosing_deadline_wins(
    run: Any, clock: FakeClock, own: float, outer: float, times: list[float]
):
    retry = Retry(on=Boom, attempts=10, wait=0.4, deadline=own, clock=clock)
    fn = always_fails(clock=clock)
    with pytest.raises(Boom):
        nested(run, Timeout(outer, clock=clock), retry, fn)
    assert fn.times == times


# -- rejections -----------------------------------------------------------------------------


def test_rejection_is_not_retried_without_a_deadline(run: Any, clock: FakeClock):
    rejected = CircuitOpenError("x", 0.3)
    fn = Script(rejected, "ok")
    retry = Retry(on=Exception, attempts=5, wait=0.1, clock=clock)
    with pytest.raises(CircuitOpenError) as info:
        run(retry, fn)
    assert info.value is rejected
    assert fn.calls == 1
    assert clock.sleeps == []
    assert "retry_after (0.3s)" in info.value.__notes__[0]


def test_rejection_is_retried_after_retry_after_when_it_fits(run: Any, clock: FakeClock):
    retry = Retry(on=Exception, attempts=5, wait=0.1, deadline=1.0, clock=clock)
    fn = Script(CircuitOpenError("x", 0.3), "ok", clock=clock)
    assert run(retry, fn) == "ok"
    assert clock.sleeps == [0.3]  # not the 0.1 s wait: at least retry_after
    assert fn.times == [0.0, 0.3]


def test_rejection_waits_the_longer_of_wait_and_retry_after(run: Any, clock: FakeClock):
    retry = Retry(on=Exception, attempts=5, wait=0.5, deadline=1.0, clock=clock)
    fn = Script(CircuitOpenError("x", 0.3), "ok")
    assert run(retry, fn) == "ok"
    assert clock.sleeps == [0.5]


def test_rejection_is_not_retried_when_retry_after_does_not_fit(run: Any, clock: FakeClock):
    rejected = CircuitOpenError("x", 2.0)
    retry = Retry(on=Exception, attempts=5, wait=0.1, deadline=1.0, clock=clock)
    fn = Script(rejected, "ok")
    with pytest.raises(CircuitOpenError) as info:
        run(retry, fn)
    assert info.value is rejected
    assert fn.calls == 1
    assert clock.sleeps == []


def test_rejection_within_an_enclosing_timeout_is_retried(run: Any, clock: FakeClock):
    retry = Retry(on=Exception, attempts=5, wait=0.1, clock=clock)
    fn = Script(CircuitOpenError("x", 0.3), "ok")
    assert nested(run, Timeout(1.0, clock=clock), retry, fn) == "ok"
    assert clock.sleeps == [0.3]


def test_rejection_not_named_in_on_is_not_retried(run: Any, clock: FakeClock):
    retry = Retry(on=Boom, attempts=5, wait=0.1, deadline=10.0, clock=clock)
    fn = Script(CircuitOpenError("x", 0.3), "ok")
    with pytest.raises(CircuitOpenError):
        run(retry, fn)
    assert fn.calls == 1


def test_isolated_breaker_is_not_retried(run: Any, clock: FakeClock):
    breaker = CircuitBreaker(name="dep", clock=clock)
    breaker.isolate()
    body = Script("ok")
    retry = Retry(on=Exception, attempts=5, wait=0.1, deadline=10.0, clock=clock)
    with pytest.raises(CircuitOpenError) as info:
        nested(run, retry, breaker, body)
    assert info.value.name == "dep"
    assert info.value.retry_after == float("inf")
    assert body.calls == 0
    assert clock.sleeps == []
    assert breaker.snapshot().rejected == 1


# -- validation -----------------------------------------------------------------------------


def test_on_is_required():
    with pytest.raises(TypeError, match=r"on=") as info:
        Retry()  # type: ignore[call-arg]
    assert "hides bugs" in str(info.value)


@pytest.mark.parametrize(
    ("kwargs", "param"),
    [
        ({"attempts": 0}, "attempts"),
        ({"attempts": -3}, "attempts"),
        ({"deadline": 0}, "deadline"),
        ({"deadline": -1.0}, "deadline"),
        ({"deadline": float("nan")}, "deadline"),
        ({"wait": -1}, "wait"),
    ],
)
def test_bad_values_raise_value_error_naming_the_parameter(kwargs: dict[str, Any], param: str):
    with pytest.raises(ValueError, match=rf"^{param} must"):
        Retry(on=Boom, **kwargs)


@pytest.mark.parametrize(
    ("kwargs", "param"),
    [
        ({"attempts": 1.5}, "attempts"),
        ({"attempts": True}, "attempts"),
        ({"on": "x"}, "on"),
        ({"on": ()}, "on"),
        ({"on": None}, "on"),
        ({"on": (Boom, "x")}, "on"),
        ({"budget": object()}, "budget"),
        ({"stop": "x"}, "stop"),
        ({"wait": "x"}, "wait"),
        ({"retry_result": 3}, "retry_result"),
        ({"deadline": "1"}, "deadline"),
        ({"name": 3}, "name"),
        ({"clock": object()}, "clock"),
    ],
)
def test_wrong_types_raise_type_error(kwargs: dict[str, Any], param: str):
    kwargs = {"on": Boom, **kwargs}
    with pytest.raises(TypeError, match=rf"^{param} must"):
        Retry(**kwargs)


def test_generator_functions_are_refused():
    def gen() -> Any:
        yield 1

    with pytest.raises(TypeError, match="generator"):
        Retry(on=Boom)(gen)


# -- cancellation ---------------------------------------------------------------------------


class Interrupt(BaseException):
    pass


@pytest.mark.parametrize("exc_type", [Interrupt, asyncio.CancelledError, KeyboardInterrupt])
def test_cancellation_is_never_retried(run: Any, clock: FakeClock, exc_type: type[BaseException]):
    exc = exc_type()
    fn = Script(exc, "ok")
    retry = Retry(on=BaseException, attempts=5, wait=0.1, clock=clock)
    with pytest.raises(exc_type) as info:
        run(retry, fn)
    assert info.value is exc
    assert fn.calls == 1
    assert clock.sleeps == []


def test_cancellation_after_a_failure_is_not_retried(run: Any, clock: FakeClock):
    fn = Script(Boom("x"), asyncio.CancelledError(), "ok")
    retry = Retry(on=BaseException, attempts=5, wait=0.1, clock=clock)
    with pytest.raises(asyncio.CancelledError):
        run(retry, fn)
    assert fn.calls == 2
    assert clock.sleeps == [0.1]


def test_cancelling_the_task_during_a_retry_stops_it():
    entered = 0

    async def main() -> None:
        nonlocal entered
        second = asyncio.Event()
        never = asyncio.Event()

        async def slow() -> None:
            nonlocal entered
            entered += 1
            if entered == 1:
                raise Boom("first")
            second.set()
            await never.wait()  # the second attempt hangs until cancelled

        retry = Retry(on=BaseException, attempts=5, wait=0.1, clock=FakeClock())
        task = asyncio.create_task(retry.acall(slow))
        await second.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())
    assert entered == 2


# -- the success path -----------------------------------------------------------------------


def test_success_path_makes_no_tenacity_objects(
    run: Any, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
):
    retry = Retry(on=Boom, attempts=3, wait=0.5, clock=clock)

    def no_tenacity(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("tenacity's RetryCallState was built")

    monkeypatch.setattr(retry_module, "RetryCallState", no_tenacity)
    assert run(retry, Script(42)) == 42
    assert run(retry, Script("again")) == "again"
    assert retry.snapshot().calls[("success", False)] == 2
    # ... and the patch is live: the first failure does build one.
    with pytest.raises(AssertionError, match="RetryCallState"):
        run(retry, fails(1))


# -- snapshot and names ---------------------------------------------------------------------


def test_snapshot_after_a_scripted_sequence(run: Any, clock: FakeClock):
    # Budget: no ratio, a floor of 0.5/s over 10 s = 5 retries in all.
    budget = RetryBudget(ratio=0.0, min_per_second=0.5, window=10.0, clock=clock)
    retry = Retry(on=Boom, attempts=4, wait=0, budget=budget, name="seq", clock=clock)
    outcomes = run.many(
        retry,
        [
            Script("ok"),  # success at once: 1 attempt
            fails(1),  # success, retried: 2 attempts (budget: 1 used)
            always_fails(),  # failure, retried: 4 attempts (budget: 4 used)
            Script(KeyError("k"), "ok"),  # failure, not retryable: 1 attempt
            fails(2),  # 1 retry (5 used), then refused: failure, retried, 2 attempts
            fails(1),  # refused at once: failure, not retried, 1 attempt
        ],
    )
    assert [type(o) for o in outcomes] == [str, str, Boom, KeyError, Boom, Boom]
    assert outcomes[4].__notes__[0].endswith("(retry budget exhausted)")  # type: ignore[union-attr]
    snap = retry.snapshot()
    assert snap.name == "seq"
    assert snap.calls == {
        ("success", False): 1,
        ("success", True): 1,
        ("failure", False): 2,
        ("failure", True): 2,
    }
    assert snap.attempt_buckets == (3, 2, 0, 1, 0, 0, 0, 0)
    assert snap.attempts_total == 11
    assert snap.retries == 5
    assert snap.budget_exhausted == 2
    assert budget.snapshot().refused == 2


def test_snapshot_attempt_buckets_up_to_infinity(run: Any, clock: FakeClock):
    retry = Retry(on=Boom, attempts=12, wait=0, clock=clock)
    run.many(
        retry,
        [fails(0), fails(1), fails(2), fails(3), fails(4), fails(5), fails(7), always_fails()],
    )
    snap = retry.snapshot()
    # Attempts 1, 2, 3, 4, 5, 6, 8, 12 -> buckets 1, 2, 3, 4, 5, 7, 10, +Inf.
    assert snap.attempt_buckets == (1, 1, 1, 1, 1, 1, 1, 1)
    assert snap.attempts_total == 1 + 2 + 3 + 4 + 5 + 6 + 8 + 12
    assert snap.retries == snap.attempts_total - 8
    assert snap.calls == {
        ("success", False): 1,
        ("success", True): 6,
        ("failure", False): 0,
        ("failure", True): 1,
    }
    assert snap.budget_exhausted == 0


def test_fresh_snapshot_is_zero():
    snap = Retry(on=Boom, name="idle").snapshot()
    assert snap.name == "idle"
    assert sum(snap.calls.values()) == 0
    assert snap.attempt_buckets == (0,) * 8
    assert snap.attempts_total == snap.retries == snap.budget_exhausted == 0


def test_name_defaults_to_the_decorated_functions_qualname(run: Any, clock: FakeClock):
    calls = 0

    def fetch_user(user_id: int) -> str:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise Boom("flaky")
        return f"user {user_id}"

    retry = Retry(on=Boom, wait=0.5, clock=clock)
    assert retry.name == "retry"
    decorated = run.decorate(retry, fetch_user)
    assert decorated.__name__ == "fetch_user"
    assert decorated(7) == "user 7"
    assert retry.name == fetch_user.__qualname__
    assert retry.name.endswith("<locals>.fetch_user")
    assert retry.snapshot().name == retry.name
    assert clock.sleeps == [0.5]


def test_explicit_name_is_kept(run: Any, clock: FakeClock):
    retry = Retry(on=Boom, name="users", clock=clock)

    def fetch() -> int:
        return 1

    assert run.decorate(retry, fetch)() == 1
    assert retry.name == "users"
    assert "name='users'" in repr(retry)


# -- concurrency ----------------------------------------------------------------------------


def outcome_of(i: int) -> str:
    """Call ``i`` of a concurrency test: fails once, always fails, or succeeds at once."""
    if i % 4 == 0:
        return "flaky"
    if i % 10 == 3:
        return "down"
    return "fine"


def make_call(i: int) -> Any:
    kind = outcome_of(i)
    failures = 0

    def call() -> str:
        nonlocal failures
        if kind == "down" or (kind == "flaky" and failures == 0):
            failures += 1
            raise Boom(kind)
        return kind

    return call


def test_shared_by_threads_counts_exactly(clock: FakeClock):
    threads, per_thread = 8, 2000
    retry = Retry(on=Boom, attempts=3, clock=clock)  # default (jittered) wait, zeroed below
    barrier = threading.Barrier(threads)
    errors: list[BaseException] = []
    results: list[tuple[int, int]] = []
    lock = threading.Lock()

    def worker() -> None:
        ok = failed = 0
        barrier.wait(10)
        for i in range(per_thread):
            try:
                retry.call(make_call(i))
                ok += 1
            except Boom:
                failed += 1
            except BaseException as exc:  # pragma: no cover - reported below
                errors.append(exc)
        with lock:
            results.append((ok, failed))

    with no_waits():
        pool = [threading.Thread(target=worker) for _ in range(threads)]
        for t in pool:
            t.start()
        for t in pool:
            t.join(30)
    assert errors == []
    kinds = [outcome_of(i) for i in range(per_thread)]
    flaky, down, fine = (kinds.count(k) * threads for k in ("flaky", "down", "fine"))
    assert (flaky, down, fine) == (4000, 1600, 10400)
    assert results == [(per_thread - down // threads, down // threads)] * threads
    snap = retry.snapshot()
    assert snap.calls == {
        ("success", False): fine,
        ("success", True): flaky,
        ("failure", False): 0,
        ("failure", True): down,
    }
    assert snap.attempt_buckets == (fine, flaky, down, 0, 0, 0, 0, 0)
    assert snap.attempts_total == fine + 2 * flaky + 3 * down == 23200
    assert snap.retries == flaky + 2 * down
    assert clock.sleeps == []


def test_shared_by_tasks_counts_exactly(clock: FakeClock):
    tasks = 200
    retry = Retry(on=Boom, attempts=3, wait=0.01, clock=clock)

    def async_call(i: int) -> Any:
        sync = make_call(i)

        async def call() -> str:
            await asyncio.sleep(0)
            return sync()

        return call

    async def main() -> list[object]:
        return await asyncio.gather(
            *(retry.acall(async_call(i)) for i in range(tasks)), return_exceptions=True
        )

    outcomes = asyncio.run(main())
    kinds = [outcome_of(i) for i in range(tasks)]
    flaky, down, fine = (kinds.count(k) for k in ("flaky", "down", "fine"))
    assert (flaky, down, fine) == (50, 20, 130)
    assert [o if isinstance(o, str) else "raised" for o in outcomes] == [
        "raised" if k == "down" else k for k in kinds
    ]
    snap = retry.snapshot()
    assert snap.calls == {
        ("success", False): fine,
        ("success", True): flaky,
        ("failure", False): 0,
        ("failure", True): down,
    }
    assert snap.attempt_buckets == (fine, flaky, down, 0, 0, 0, 0, 0)
    assert snap.attempts_total == fine + 2 * flaky + 3 * down
    assert clock.sleeps == [0.01] * (flaky + 2 * down)


def test_public_names():
    assert seawall.Retry is Retry
    assert seawall.RetrySnapshot is retry_module.RetrySnapshot


@pytest.mark.parametrize("retried", [False, True], ids=["not retryable", "retries spent"])
def test_the_error_raised_keeps_its_own_context_inside_a_caller_s_handler(retried: bool) -> None:
    class Root(Exception):
        pass

    class Raised(Exception):
        pass

    class Callers(Exception):
        pass

    def fail() -> None:
        try:
            raise Root("inside the call")
        except Root:
            raise Raised("what the call raised")  # noqa: B904 - chained implicitly, on purpose

    retry = Retry(on=Raised if retried else Root, attempts=2, wait=0, clock=FakeClock())
    try:
        raise Callers("the caller is handling this")
    except Callers:
        with pytest.raises(Raised) as caught:
            retry.call(fail)
    assert isinstance(caught.value.__context__, Root)


@pytest.mark.parametrize(
    ("on", "spelled"),
    [
        ([OSError], "on=(OSError,)"),
        ([OSError, ValueError], "on=(OSError, ValueError)"),
        ({KeyError}, "on=(KeyError,)"),
    ],
)
def test_exception_types_in_a_list_or_set_are_told_to_be_a_tuple(on: Any, spelled: str) -> None:
    with pytest.raises(TypeError, match=r"on must give several exception types as a tuple") as info:
        Retry(on=on)
    assert str(info.value).endswith(spelled)
    with pytest.raises(TypeError, match=r"failure_on must give several exception types as a tuple"):
        CircuitBreaker(failure_on=on)


@pytest.mark.parametrize("on", [[], [OSError, "x"], ["OSError"]])
def test_a_list_that_is_not_only_exception_types_is_refused_plainly(on: Any) -> None:
    with pytest.raises(TypeError, match=r"on must be exception types or a predicate"):
        Retry(on=on)


# -- calls ended by a cancellation or an interrupt ------------------------------------------------


def test_an_interrupt_in_a_later_attempt_still_counts_the_attempts(run: Any) -> None:
    clock = FakeClock()
    retry = Retry(on=ConnectionError, attempts=3, wait=0, clock=clock)
    runs: list[int] = []

    def dep() -> None:
        runs.append(1)
        if len(runs) == 1:
            raise ConnectionError
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run(retry, dep)
    snap = retry.snapshot()
    assert len(runs) == 2
    assert snap.attempts_total == 2
    assert snap.calls[("cancelled", True)] == 1
    assert sum(snap.calls.values()) == 1


def test_an_interrupt_in_the_first_attempt_counts_one_cancelled_call(run: Any) -> None:
    retry = Retry(on=ConnectionError, attempts=3, wait=0, clock=FakeClock())

    def dep() -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run(retry, dep)
    snap = retry.snapshot()
    assert (snap.attempts_total, snap.calls[("cancelled", False)]) == (1, 1)


def test_a_task_cancelled_while_waiting_to_retry_counts_the_attempts_made(
    simulated: Simulation,
) -> None:
    retry = Retry(on=ConnectionError, attempts=3, wait=30.0)  # a wait on the loop, cancelled
    runs: list[int] = []
    failed = asyncio.Event()

    async def dep() -> None:
        runs.append(1)
        failed.set()
        raise ConnectionError

    async def main() -> None:
        task = asyncio.create_task(retry.acall(dep))
        await failed.wait()
        await asyncio.sleep(0.01)  # into the retry's 30 s wait
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    simulated.run(main)
    assert simulated.now() == 0.01  # the wait ended with the cancellation, not at 30 s
    snap = retry.snapshot()
    assert len(runs) == 1
    assert snap.attempts_total == 1
    assert snap.calls[("cancelled", False)] == 1


def test_an_interrupt_through_a_policys_one_frame_path_is_counted(run: Any) -> None:
    clock = FakeClock()
    retry = Retry(on=ConnectionError, attempts=3, wait=0, clock=clock)
    policy = seawall.Policy("interrupted", retry=retry, breaker=CircuitBreaker(clock=clock))

    def dep() -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run(policy, dep)
    snap = retry.snapshot()
    assert (snap.attempts_total, snap.calls[("cancelled", False)]) == (1, 1)


# -- judges that raise, and exceptions raised again --------------------------------------------


def test_an_on_predicate_that_raises_leaves_the_original_exception(
    run: Any, caplog: pytest.LogCaptureFixture
) -> None:
    retry = Retry(on=lambda exc: exc.args[0].startswith("retry"), wait=0, clock=FakeClock())
    runs: list[int] = []

    def fail() -> None:
        runs.append(1)
        raise ConnectionError(503)

    with pytest.raises(ConnectionError) as info:
        run(retry, fail)
    assert info.value.args == (503,)
    assert runs == [1]
    assert "the on= of retry" in caplog.text
    assert "AttributeError" in caplog.text
    # The caller sees the judge's error without the log: on the original, as a note.
    (note,) = info.value.__notes__
    assert note.endswith(
        "gave up after 1 attempt over 0s "
        "(its on= raised AttributeError: 'int' object has no attribute 'startswith')"
    )
    assert info.value.__context__ is None  # its own context, not the judge's error


def test_a_tenacity_strategy_that_raises_leaves_the_original_exception(run: Any) -> None:
    def broken(state: tenacity.RetryCallState) -> bool:
        raise KeyError("outcome")

    retry = Retry(on=tenacity.retry_if_exception(lambda exc: broken(None)), clock=FakeClock())  # type: ignore[arg-type]
    with pytest.raises(Boom) as info:
        run(retry, always_fails())
    assert info.value.__notes__[0].endswith("(its on= raised KeyError: 'outcome')")


@pytest.mark.parametrize(
    ("make", "param", "what"),
    [
        (lambda: Retry(on=lambda: True), "on", "the exception"),
        (lambda: Retry(on=lambda exc, why: True), "on", "the exception"),
        (lambda: Retry(on=OSError, retry_result=lambda: True), "retry_result", "the result"),
        (lambda: CircuitBreaker(failure_on=lambda: True), "failure_on", "the exception"),
        (lambda: CircuitBreaker(ignore_on=lambda *, exc: True), "ignore_on", "the exception"),
        (lambda: CircuitBreaker(failure_result=lambda: True), "failure_result", "the result"),
        (lambda: seawall.Fallback(0, on=lambda: True), "on", "the exception"),
    ],
)
def test_a_judge_that_cannot_take_its_one_argument_is_refused_at_construction(
    make: Any, param: str, what: str
) -> None:
    with pytest.raises(TypeError, match=f"^{param} is called with one argument, {what}; "):
        make()


def test_judges_that_take_one_argument_are_accepted() -> None:
    class Judge:
        def __call__(self, exc: BaseException, extra: int = 0) -> bool:
            return True

    def variadic(*args: Any) -> bool:
        return True

    for judge in (Judge(), variadic, lambda exc: True):
        Retry(on=judge, retry_result=judge)
        CircuitBreaker(failure_on=judge, ignore_on=judge, failure_result=judge)
    Retry(on=OSError, retry_result=bool)  # a builtin without a signature: taken as it is


def test_a_retry_result_judge_that_raises_keeps_the_result(
    run: Any, caplog: pytest.LogCaptureFixture
) -> None:
    def judge(result: object) -> bool:
        raise RuntimeError("judge broke")

    retry = Retry(on=OSError, retry_result=judge, wait=0, clock=FakeClock())
    assert run(retry, lambda: "value") == "value"
    assert "retry_result of retry" in caplog.text


def test_an_exception_raised_again_carries_one_give_up_note(run: Any) -> None:
    error = ConnectionError("shared")
    retry = Retry(on=ConnectionError, attempts=2, wait=0, clock=FakeClock())

    def fail() -> None:
        raise error

    for _ in range(50):
        with pytest.raises(ConnectionError):
            run(retry, fail)
    notes = [note for note in error.__notes__ if note.startswith("seawall: retry")]
    assert len(notes) == 1


def test_nested_retries_each_leave_their_note_and_only_theirs(run: Any) -> None:
    clock = FakeClock()
    inner = Retry(on=Boom, attempts=2, wait=0, name="inner", clock=clock)
    outer = Retry(on=Boom, attempts=2, wait=0, name="outer", clock=clock)
    with pytest.raises(Boom) as info:
        nested(run, outer, inner, always_fails())  # fresh errors: the last has both notes
    assert [note.split(" gave up")[0] for note in info.value.__notes__] == [
        "seawall: retry 'inner'",
        "seawall: retry 'outer'",
    ]
    shared = Boom("shared")
    for _ in range(20):  # one instance raised again: still one note from each
        with pytest.raises(Boom):
            nested(run, outer, inner, Script(shared))
    assert [note.split(" gave up")[0] for note in shared.__notes__] == [
        "seawall: retry 'inner'",
        "seawall: retry 'outer'",
    ]
