"""CircuitBreaker under real concurrency: threads, asyncio tasks, and both sharing one breaker.

Time still comes from a FakeClock (advanced by the workers themselves) except in the tests whose
point is that calls run in parallel: threads sleep for real (generous bounds), tasks on
simulated time (exact).
"""

from __future__ import annotations

import asyncio
import functools
import random
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any, NoReturn

import pytest
from conftest import Shell
from helpers import Boom

from seawall import CircuitBreaker, CircuitOpenError, CircuitState
from seawall.testing import FakeClock, Simulation

CLOSED = CircuitState.CLOSED
OPEN = CircuitState.OPEN
HALF_OPEN = CircuitState.HALF_OPEN
SEED = 11
CALLERS = 100


class Skip(Exception):
    pass


class Abort(BaseException):
    pass


def fail() -> NoReturn:
    raise Boom("down")


def abort() -> NoReturn:
    raise Abort


def probing_breaker(clock: FakeClock, **overrides: Any) -> CircuitBreaker:
    config: dict[str, Any] = {
        "name": "dep",
        "consecutive_failures": None,
        "max_open_duration": 60.0,
        "window_calls": 4,
        "minimum_calls": 2,
        "failure_on": Boom,
        "ignore_on": Skip,
        "open_duration": 5.0,
        "half_open_calls": 3,
        "half_open_timeout": 30.0,
        "rng": random.Random(SEED),
        "clock": clock,
    }
    config.update(overrides)
    return CircuitBreaker(**config)


def trip(run: Shell, breaker: CircuitBreaker) -> None:
    run.many(breaker, [fail, fail])
    assert breaker.state is OPEN


def probe_everyone(run: Shell, breaker: CircuitBreaker) -> None:
    """100 callers at once against a half-open breaker: exactly 3 get through, and close it."""
    with run.hold(breaker, CALLERS, together=True) as again:
        assert again.admitted == 3
        assert len(again.early) == CALLERS - 3
        again.release()
    assert breaker.state is CLOSED


# -- half-open admission under 100 concurrent callers -------------------------------------------


def test_default_breaker_admits_exactly_one_probe_among_100_callers(
    run: Shell, clock: FakeClock
) -> None:
    breaker = CircuitBreaker(clock=clock, consecutive_span=0)
    run.many(breaker, [fail] * 5)
    assert breaker.state is OPEN
    for verdict in ("fail", "succeed"):
        clock.advance(breaker.snapshot().retry_after or 0.0)
        with run.hold(breaker, CALLERS, together=True) as held:
            assert held.admitted == 1
            assert len(held.early) == CALLERS - 1
            held.release(lambda v=verdict: "probed" if v == "succeed" else fail())
    assert breaker.state is CLOSED
    snapshot = breaker.snapshot()
    assert snapshot.rejected == 2 * (CALLERS - 1)
    assert (snapshot.successes, snapshot.failures) == (1, 6)


@pytest.mark.parametrize("verdict", ["succeed", "fail"])
def test_half_open_admits_exactly_half_open_calls_among_100_callers(
    run: Shell, clock: FakeClock, verdict: str
) -> None:
    breaker = probing_breaker(clock)
    trip(run, breaker)
    clock.advance(5.0)
    with run.hold(breaker, CALLERS, together=True) as held:
        assert held.admitted == 3
        rejected = held.early
        assert len(rejected) == CALLERS - 3
        for err in rejected:
            assert isinstance(err, CircuitOpenError)
            assert err.state == "half_open"
            assert err.retry_after == 5.0  # open_duration: probes settle sooner, or it reopens
        assert breaker.state is HALF_OPEN
        assert breaker.snapshot().rejected == CALLERS - 3
        outcomes = held.release(lambda: "probed" if verdict == "succeed" else fail())
    snapshot = breaker.snapshot()
    assert snapshot.rejected == CALLERS - 3
    if verdict == "succeed":
        assert outcomes.count("probed") == 3
        assert breaker.state is CLOSED
        assert (snapshot.successes, snapshot.failures) == (3, 2)
        assert snapshot.transitions[HALF_OPEN, CLOSED] == 1
        trip(run, breaker)
        clock.advance(5.0)
    else:
        assert sum(isinstance(outcome, Boom) for outcome in outcomes) == 3
        assert breaker.state is OPEN
        assert (snapshot.successes, snapshot.failures) == (0, 5)
        assert snapshot.transitions[HALF_OPEN, OPEN] == 1  # the first failure reopened it
        clock.advance(snapshot.open_duration)
    # No slot leaked: the next probing admits exactly three again, and they close it.
    probe_everyone(run, breaker)
    assert breaker.snapshot().rejected == 2 * (CALLERS - 3)


def test_hung_probes_are_released_by_half_open_timeout(run: Shell, clock: FakeClock) -> None:
    breaker = probing_breaker(clock)
    trip(run, breaker)
    clock.advance(5.0)
    with run.hold(breaker, CALLERS, together=True) as hung:
        assert hung.admitted == 3
        clock.advance(29.5)
        assert breaker.state is HALF_OPEN
        clock.advance(0.5)
        # Reopened for open_duration after the hung probes were let through (t=5): that is
        # over already, so the breaker half-opens again at once.
        assert breaker.state is HALF_OPEN
        snapshot = breaker.snapshot()
        assert snapshot.transitions[HALF_OPEN, OPEN] == 1
        assert snapshot.open_duration == 10.0 * (1.0 + 0.2 * random.Random(SEED).random())
        probe_everyone(run, breaker)  # while the old probes still hang
        late = hung.release(fail)
    assert sum(isinstance(outcome, Boom) for outcome in late) == 3
    assert breaker.state is CLOSED  # the late failures belong to a finished probing
    snapshot = breaker.snapshot()
    assert (snapshot.successes, snapshot.failures, snapshot.ignored) == (3, 5, 0)
    assert snapshot.rejected == 2 * (CALLERS - 3)
    assert snapshot.calls == 3 + 5 + 2 * (CALLERS - 3)


def test_probes_ended_without_a_verdict_give_back_their_slots(run: Shell, clock: FakeClock) -> None:
    """Cancelled tasks (async shell) or a BaseException (sync shell) are not verdicts."""
    breaker = probing_breaker(clock)
    trip(run, breaker)
    clock.advance(5.0)
    with run.hold(breaker, CALLERS, together=True) as held:
        assert held.admitted == 3
        if run.kind == "async":
            outcomes = held.cancel()
            ended: type[BaseException] = asyncio.CancelledError
        else:
            outcomes = held.release(abort)
            ended = Abort
    assert sum(isinstance(outcome, ended) for outcome in outcomes) == 3
    assert sum(isinstance(outcome, CircuitOpenError) for outcome in outcomes) == CALLERS - 3
    assert breaker.state is HALF_OPEN
    snapshot = breaker.snapshot()
    assert (snapshot.successes, snapshot.failures, snapshot.ignored) == (0, 2, 3)
    probe_everyone(run, breaker)


# -- the protected call never runs under a lock -------------------------------------------------


@pytest.mark.parametrize(
    "config",
    [
        {},
        {"window_calls": 100},
        {"slow_call_duration": 10.0},
        {"failure_result": lambda result: False},
    ],
    ids=["time-window", "count-window", "slow-calls", "failure-result"],
)
def test_calls_through_one_breaker_run_in_parallel(config: dict[str, Any]) -> None:
    # Real time: the point is real threads inside the breaker at once.
    breaker = CircuitBreaker(name="parallel", **config)  # the system clock
    start = threading.Barrier(10)
    results: list[str] = []

    def slow() -> str:
        time.sleep(0.2)
        return "done"

    def worker() -> None:
        start.wait()
        results.append(breaker.call(slow))

    threads = [threading.Thread(target=worker) for _ in range(10)]
    began = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - began
    assert results == ["done"] * 10
    assert elapsed < 1.0
    assert breaker.snapshot().successes == 10


def test_async_calls_through_one_breaker_run_concurrently(simulated: Simulation) -> None:
    breaker = CircuitBreaker(name="parallel", window_calls=100)

    async def slow() -> str:
        await asyncio.sleep(0.2)
        return "done"

    async def main() -> list[str]:
        return await asyncio.gather(*(breaker.acall(slow) for _ in range(10)))

    assert simulated.run(main) == ["done"] * 10
    assert simulated.now() == 0.2  # all ten at once: one after another would take 2 s
    assert breaker.snapshot().successes == 10


# -- exact counts under contention --------------------------------------------------------------

BUSY = {
    "name": "busy",
    "failure_on": Boom,
    "ignore_on": Skip,
    "minimum_calls": 10,
    "failure_ratio": 0.5,
    "open_duration": 0.05,
    "max_open_duration": 0.2,
    "half_open_calls": 2,
    "half_open_timeout": 0.5,
}
WINDOWS = [{"window": 0.1}, {"window_calls": 20}]
WINDOW_IDS = ["time-window", "count-window"]
TICK = 0.001  # how far each call moves the fake clock


@pytest.fixture
def switch_often() -> Iterator[None]:
    """Make the interpreter switch threads far more often, to shake out races."""
    before = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)
    yield
    sys.setswitchinterval(before)


def pick(rng: random.Random) -> str:
    """An outcome with failures about as common as successes, so the breaker keeps tripping."""
    roll = rng.random()
    return "success" if roll < 0.45 else "failure" if roll < 0.9 else "ignored"


def work(kind: str) -> str:
    if kind == "failure":
        raise Boom
    if kind == "ignored":
        raise Skip
    return kind


async def awork(kind: str) -> str:
    await asyncio.sleep(0)  # let other tasks in while this call is in flight
    return work(kind)


def sync_worker(
    breaker: CircuitBreaker, clock: FakeClock, seed: int, calls: int, seen: Counter[str]
) -> None:
    rng = random.Random(seed)
    for _ in range(calls):
        clock.advance(TICK)
        try:
            breaker.call(work, pick(rng))
        except Boom:
            seen["failures"] += 1
        except Skip:
            seen["ignored"] += 1
        except CircuitOpenError:
            seen["rejected"] += 1
        else:
            seen["successes"] += 1


async def async_worker(
    breaker: CircuitBreaker, clock: FakeClock, seed: int, calls: int, seen: Counter[str]
) -> None:
    rng = random.Random(seed)
    for _ in range(calls):
        clock.advance(TICK)
        try:
            await breaker.acall(awork, pick(rng))
        except Boom:
            seen["failures"] += 1
        except Skip:
            seen["ignored"] += 1
        except CircuitOpenError:
            seen["rejected"] += 1
        else:
            seen["successes"] += 1


def run_threads(targets: list[Callable[[], object]]) -> None:
    start = threading.Barrier(len(targets))
    errors: list[BaseException] = []

    def wrapped(target: Callable[[], object]) -> None:
        start.wait()
        try:
            target()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=wrapped, args=(target,)) for target in targets]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []


def assert_counts_match(
    breaker: CircuitBreaker, seen: list[Counter[str]], total: int, *, full_cycle: bool = True
) -> None:
    observed: Counter[str] = Counter()
    for counter in seen:
        observed.update(counter)
    snapshot = breaker.snapshot()
    assert snapshot.successes == observed["successes"]
    assert snapshot.failures == observed["failures"]
    assert snapshot.ignored == observed["ignored"]
    assert snapshot.rejected == observed["rejected"]
    assert snapshot.calls == total
    assert sum(observed.values()) == total
    # The run exercised the whole state machine, not just the closed path.
    assert observed["rejected"] > 0
    assert snapshot.transitions[CLOSED, OPEN] > 0
    if full_cycle:  # an operator flipping the state may cut every cycle short
        assert snapshot.transitions[OPEN, HALF_OPEN] > 0
        assert snapshot.transitions.get((HALF_OPEN, CLOSED), 0) > 0


def assert_no_probe_slot_leaked(breaker: CircuitBreaker, clock: FakeClock) -> None:
    """With every call finished, the breaker recovers with plain successes, rejecting none.

    A leaked probe slot would look like a probe hanging past half_open_timeout: the state read
    would reopen the breaker instead.
    """
    clock.advance(1000.0)
    assert breaker.state in (CLOSED, HALF_OPEN)
    rejected = breaker.snapshot().rejected
    for _ in range(int(BUSY["half_open_calls"])):
        breaker.call(work, "success")
    assert breaker.state is CLOSED
    assert breaker.snapshot().rejected == rejected


@pytest.mark.usefixtures("switch_often")
@pytest.mark.parametrize("window", WINDOWS, ids=WINDOW_IDS)
def test_exact_counts_8_threads_x_10000_calls(window: dict[str, Any]) -> None:
    clock = FakeClock()
    breaker = CircuitBreaker(clock=clock, rng=random.Random(SEED), **BUSY, **window)
    seen = [Counter[str]() for _ in range(8)]
    run_threads(
        [functools.partial(sync_worker, breaker, clock, i, 10_000, seen[i]) for i in range(8)]
    )
    assert_counts_match(breaker, seen, 80_000)
    assert_no_probe_slot_leaked(breaker, clock)


@pytest.mark.usefixtures("switch_often")
def test_exact_counts_with_an_operator_flipping_the_breaker() -> None:
    """Manual control racing with callers: isolate, disable and reset while 8 threads call."""
    clock = FakeClock()
    breaker = CircuitBreaker(clock=clock, rng=random.Random(SEED), **BUSY, window_calls=20)
    seen = [Counter[str]() for _ in range(8)]
    done = threading.Event()

    def operator() -> None:
        controls = (breaker.isolate, breaker.reset, breaker.disable, breaker.reset)
        flips = 0
        while not done.is_set():
            controls[flips % len(controls)]()
            flips += 1
            breaker.snapshot()
        breaker.reset()

    def workers() -> None:
        try:
            run_threads(
                [
                    functools.partial(sync_worker, breaker, clock, i, 5_000, seen[i])
                    for i in range(8)
                ]
            )
        finally:
            done.set()

    run_threads([operator, workers])
    assert_counts_match(breaker, seen, 40_000, full_cycle=False)
    snapshot = breaker.snapshot()
    assert snapshot.transitions[CLOSED, CircuitState.FORCED_OPEN] > 0
    assert snapshot.transitions[CircuitState.DISABLED, CLOSED] > 0
    assert_no_probe_slot_leaked(breaker, clock)


@pytest.mark.parametrize("window", WINDOWS, ids=WINDOW_IDS)
def test_exact_counts_100_tasks_x_500_calls(window: dict[str, Any]) -> None:
    clock = FakeClock()
    breaker = CircuitBreaker(clock=clock, rng=random.Random(SEED), **BUSY, **window)
    seen = [Counter[str]() for _ in range(100)]

    async def main() -> None:
        await asyncio.gather(*(async_worker(breaker, clock, i, 500, seen[i]) for i in range(100)))

    asyncio.run(main())
    assert_counts_match(breaker, seen, 50_000)
    assert_no_probe_slot_leaked(breaker, clock)


@pytest.mark.usefixtures("switch_often")
@pytest.mark.parametrize("window", WINDOWS, ids=WINDOW_IDS)
def test_exact_counts_threads_and_an_event_loop_sharing_one_breaker(
    window: dict[str, Any],
) -> None:
    clock = FakeClock()
    breaker = CircuitBreaker(clock=clock, rng=random.Random(SEED), **BUSY, **window)
    thread_seen = [Counter[str]() for _ in range(4)]
    task_seen = [Counter[str]() for _ in range(50)]

    async def tasks() -> None:
        await asyncio.gather(
            *(async_worker(breaker, clock, 100 + i, 200, task_seen[i]) for i in range(50))
        )

    run_threads(
        [
            *(
                functools.partial(sync_worker, breaker, clock, i, 5_000, thread_seen[i])
                for i in range(4)
            ),
            lambda: asyncio.run(tasks()),
        ]
    )
    assert_counts_match(breaker, thread_seen + task_seen, 4 * 5_000 + 50 * 200)
    assert_no_probe_slot_leaked(breaker, clock)
