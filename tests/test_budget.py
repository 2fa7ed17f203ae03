"""RetryBudget: retries capped to a share of calls, shared, windowed, with a floor."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from helpers import Boom

import seawall
from seawall import BudgetSnapshot, Retry, RetryBudget
from seawall.testing import FakeClock


class Dependency:
    """Counts attempts; fails every one of them (or the first ``fail_first`` of each call)."""

    def __init__(self) -> None:
        self.attempts = 0

    def __call__(self) -> None:
        self.attempts += 1
        raise Boom("down")


def failing_calls(run: Any, retry: Retry, dependency: Dependency, n: int) -> None:
    outcomes = run.many(retry, [dependency] * n)
    assert all(isinstance(o, Boom) for o in outcomes)


# -- the cap --------------------------------------------------------------------------------


def test_budget_caps_attempts_per_call_of_a_dead_dependency(run: Any, clock: FakeClock):
    budget = RetryBudget(0.2, clock=clock)
    retry = Retry(on=Boom, attempts=3, wait=0, budget=budget, clock=clock)
    dependency = Dependency()
    failing_calls(run, retry, dependency, 1000)
    per_call = dependency.attempts / 1000
    assert per_call <= 1.25
    assert per_call == pytest.approx(1.2, abs=0.01)
    # Exactly: 200 retries (ratio 0.2 of 1,000 calls; the floor of 100 is spent by the first
    # 50 calls with 2 retries each, and every later call is refused once).
    assert dependency.attempts == 1200
    snap = retry.snapshot()
    assert snap.attempts_total == 1200
    assert snap.retries == 200
    assert snap.budget_exhausted == 950
    assert budget.snapshot() == BudgetSnapshot(
        window_calls=1000, window_retries=200, calls=1000, retries=200, refused=950
    )


def test_without_a_budget_a_dead_dependency_gets_every_attempt(run: Any, clock: FakeClock):
    retry = Retry(on=Boom, attempts=3, wait=0, clock=clock)
    dependency = Dependency()
    failing_calls(run, retry, dependency, 1000)
    assert dependency.attempts / 1000 == 3.0
    assert retry.snapshot().budget_exhausted == 0


def test_exhausted_budget_raises_the_failure_at_once(run: Any, clock: FakeClock):
    budget = RetryBudget(ratio=0.0, min_per_second=0.0, clock=clock)
    retry = Retry(on=Boom, attempts=5, wait=0.5, budget=budget, name="b", clock=clock)
    exc = Boom("down")

    def fn() -> None:
        raise exc

    with pytest.raises(Boom) as info:
        run(retry, fn)
    assert info.value is exc
    assert clock.sleeps == []
    assert info.value.__notes__ == [
        "seawall: retry 'b' gave up after 1 attempt over 0s (retry budget exhausted)"
    ]
    assert retry.snapshot().budget_exhausted == 1
    assert budget.snapshot().refused == 1


def test_successes_earn_retries(run: Any, clock: FakeClock):
    budget = RetryBudget(ratio=0.5, min_per_second=0.0, clock=clock)
    retry = Retry(on=Boom, attempts=2, wait=0, budget=budget, clock=clock)
    run.many(retry, [lambda: "ok"] * 10)  # 10 calls: up to 5 retries
    dependency = Dependency()
    failing_calls(run, retry, dependency, 4)  # 14 calls: up to 7 retries, 4 wanted
    assert dependency.attempts == 8
    assert budget.snapshot() == BudgetSnapshot(
        window_calls=14, window_retries=4, calls=14, retries=4, refused=0
    )


def test_one_budget_shared_by_two_policies_caps_their_combined_retries(run: Any, clock: FakeClock):
    budget = RetryBudget(0.2, min_per_second=0.0, clock=clock)
    first = Retry(on=Boom, attempts=3, wait=0, budget=budget, name="first", clock=clock)
    second = Retry(on=Boom, attempts=3, wait=0, budget=budget, name="second", clock=clock)
    a, b = Dependency(), Dependency()
    for _ in range(20):
        failing_calls(run, first, a, 25)
        failing_calls(run, second, b, 25)
    one, two = first.snapshot(), second.snapshot()
    # 500 calls each, 1,000 in all: 20% of them may be retried, between both policies.
    assert one.retries + two.retries == budget.snapshot().retries == 200
    assert a.attempts + b.attempts == 1200
    assert one.retries == 100
    assert two.retries == 100
    assert one.budget_exhausted + two.budget_exhausted == budget.snapshot().refused
    assert budget.snapshot().calls == 1000


def test_separate_budgets_do_not_share(run: Any, clock: FakeClock):
    first = Retry(
        on=Boom, attempts=3, wait=0, budget=RetryBudget(0.2, 0.0, clock=clock), clock=clock
    )
    second = Retry(
        on=Boom, attempts=3, wait=0, budget=RetryBudget(0.2, 0.0, clock=clock), clock=clock
    )
    failing_calls(run, first, Dependency(), 500)
    failing_calls(run, second, Dependency(), 10)
    assert first.snapshot().retries == 100
    assert second.snapshot().retries == 2  # its own 20% of 10, untouched by the first


# -- the window and the floor ---------------------------------------------------------------


def test_budget_refills_after_the_window(run: Any, clock: FakeClock):
    # A floor of 0.2/s over 10 s: 2 retries per window, no ratio.
    budget = RetryBudget(ratio=0.0, min_per_second=0.2, window=10.0, clock=clock)
    retry = Retry(on=Boom, attempts=2, wait=0, budget=budget, clock=clock)
    dependency = Dependency()
    failing_calls(run, retry, dependency, 3)
    assert dependency.attempts == 2 + 2 + 1
    clock.advance(9.5)
    failing_calls(run, retry, dependency, 1)
    assert dependency.attempts == 6  # still spent
    clock.advance(0.5)  # 10 s since the retries: they leave the window
    snap = budget.snapshot()
    assert (snap.window_calls, snap.window_retries) == (1, 0)  # the call at 9.5 s stays
    assert (snap.calls, snap.retries, snap.refused) == (4, 2, 2)
    failing_calls(run, retry, dependency, 3)
    assert dependency.attempts == 6 + 2 + 2 + 1
    assert retry.snapshot().budget_exhausted == 3


def test_try_withdraw_refills_after_the_window(clock: FakeClock):
    budget = RetryBudget(ratio=0.0, min_per_second=1.0, window=10.0, clock=clock)
    assert [budget.try_withdraw() for _ in range(11)] == [True] * 10 + [False]
    clock.advance(9.99)
    assert budget.try_withdraw() is False
    clock.advance(0.01)
    assert [budget.try_withdraw() for _ in range(11)] == [True] * 10 + [False]
    assert budget.snapshot() == BudgetSnapshot(
        window_calls=0, window_retries=10, calls=0, retries=20, refused=3
    )


def test_min_per_second_floor_lets_a_quiet_caller_retry(run: Any, clock: FakeClock):
    quiet = Retry(
        on=Boom,
        attempts=5,
        wait=0,
        budget=RetryBudget(0.2, min_per_second=1.0, window=10.0, clock=clock),
        clock=clock,
    )
    dependency = Dependency()
    failing_calls(run, quiet, dependency, 1)
    assert dependency.attempts == 5  # 4 retries for 1 call: the floor (10 per window) allows it

    no_floor = Retry(
        on=Boom,
        attempts=5,
        wait=0,
        budget=RetryBudget(0.2, min_per_second=0.0, window=10.0, clock=clock),
        clock=clock,
    )
    dependency = Dependency()
    failing_calls(run, no_floor, dependency, 1)
    assert dependency.attempts == 2  # 20% of 1 call: one retry, then refused
    assert no_floor.snapshot().budget_exhausted == 1


def test_default_floor_is_ten_per_second_over_ten_seconds(clock: FakeClock):
    budget = RetryBudget(clock=clock)
    assert (budget.ratio, budget.min_per_second, budget.window) == (0.2, 10.0, 10.0)
    assert sum(budget.try_withdraw() for _ in range(150)) == 100


# -- validation and snapshot ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "param"),
    [
        ({"ratio": -0.1}, "ratio"),
        ({"ratio": float("nan")}, "ratio"),
        ({"min_per_second": -1}, "min_per_second"),
        ({"window": 0}, "window"),
        ({"window": -5.0}, "window"),
    ],
)
def test_bad_values_raise_value_error_naming_the_parameter(kwargs: dict[str, Any], param: str):
    with pytest.raises(ValueError, match=rf"^{param} must be in"):
        RetryBudget(**kwargs)


@pytest.mark.parametrize(
    ("kwargs", "param"),
    [
        ({"ratio": "x"}, "ratio"),
        ({"ratio": None}, "ratio"),
        ({"min_per_second": "10"}, "min_per_second"),
        ({"window": True}, "window"),
        ({"clock": "system"}, "clock"),
    ],
)
def test_wrong_types_raise_type_error(kwargs: dict[str, Any], param: str):
    with pytest.raises(TypeError, match=rf"^{param} must"):
        RetryBudget(**kwargs)


def test_zero_ratio_and_floor_are_allowed():
    budget = RetryBudget(ratio=0, min_per_second=0)
    assert budget.try_withdraw() is False


def test_snapshot_fields(clock: FakeClock):
    budget = RetryBudget(ratio=0.5, min_per_second=0.0, window=10.0, clock=clock)
    assert budget.snapshot() == BudgetSnapshot(0, 0, 0, 0, 0)
    for _ in range(4):
        budget.deposit()
    assert [budget.try_withdraw() for _ in range(3)] == [True, True, False]
    snap = budget.snapshot()
    assert snap.window_calls == 4
    assert snap.window_retries == 2
    assert snap.calls == 4
    assert snap.retries == 2
    assert snap.refused == 1
    clock.advance(10.0)
    budget.deposit()
    assert budget.snapshot() == BudgetSnapshot(
        window_calls=1, window_retries=0, calls=5, retries=2, refused=1
    )
    assert repr(budget) == "RetryBudget(ratio=0.5, min_per_second=0, window=10)"


def test_public_names():
    assert seawall.RetryBudget is RetryBudget
    assert seawall.BudgetSnapshot is BudgetSnapshot


# -- concurrency ----------------------------------------------------------------------------


def run_threads(count: int, target: Any) -> None:
    barrier = threading.Barrier(count)

    def go() -> None:
        barrier.wait(10)
        target()

    threads = [threading.Thread(target=go) for _ in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not any(t.is_alive() for t in threads)


def test_deposit_from_threads_counts_exactly(clock: FakeClock):
    budget = RetryBudget(clock=clock)

    def deposits() -> None:
        for _ in range(10_000):
            budget.deposit()

    run_threads(8, deposits)
    snap = budget.snapshot()
    assert snap.calls == 80_000
    assert snap.window_calls == 80_000


def test_deposit_from_threads_on_the_system_clock_counts_exactly():
    budget = RetryBudget()

    def deposits() -> None:
        for _ in range(10_000):
            budget.deposit()

    run_threads(8, deposits)
    assert budget.snapshot().calls == 80_000


def test_withdraw_from_threads_grants_exactly_the_budget(clock: FakeClock):
    budget = RetryBudget(ratio=0.0, min_per_second=100.0, window=10.0, clock=clock)
    granted: list[int] = []
    lock = threading.Lock()

    def withdraw() -> None:
        got = sum(budget.try_withdraw() for _ in range(500))
        with lock:
            granted.append(got)

    run_threads(8, withdraw)
    assert sum(granted) == 1000
    snap = budget.snapshot()
    assert (snap.retries, snap.refused) == (1000, 3000)


def test_shared_by_threads_through_retry(clock: FakeClock):
    budget = RetryBudget(0.2, min_per_second=0.0, clock=clock)
    retry = Retry(on=Boom, attempts=3, wait=0, budget=budget, clock=clock)
    attempts = [0] * 8

    def worker(index: int) -> None:
        def fn() -> None:
            attempts[index] += 1
            raise Boom("down")

        for _ in range(500):
            try:
                retry.call(fn)
            except Boom:
                pass

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    snap = budget.snapshot()
    assert snap.calls == 4000
    # Interleaving decides who gets them, but never more than 20% of the calls made so far.
    assert snap.retries <= 800
    assert snap.retries >= 790
    assert sum(attempts) == 4000 + snap.retries == retry.snapshot().attempts_total
    assert retry.snapshot().budget_exhausted == snap.refused
