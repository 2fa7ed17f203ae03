"""Timeout scopes with one timer per loop (seawall._loop_timeouts) behave as asyncio.timeout.

A differential test runs the same hypothesis-drawn scenarios (tasks with nested scopes, work
that outlasts them or not, callees that swallow their cancellation, cancellations from
outside) once with ``asyncio.timeout`` and once with seawall's scopes, on a loop on simulated
time, and compares everything a caller can see: results, exceptions and their causes, when
each task ended, which scopes expired, and the tasks' pending cancellation requests. The other
tests pin what the scheduler adds: one timer however many scopes, a bounded heap, a loop per
thread.
"""

from __future__ import annotations

import asyncio
import threading
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from seawall import _loop_timeouts
from tests.helpers import LoopClock, SimulatedLoop, run_simulated


class SeawallScope:
    """seawall's scope as an async context manager, to run the same code as asyncio.timeout."""

    def __init__(self, seconds: float) -> None:
        self.scope = _loop_timeouts.enter(seconds)

    async def __aenter__(self) -> SeawallScope:
        return self

    async def __aexit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> None:
        if _loop_timeouts.leave(self.scope, exc):
            raise TimeoutError from exc

    def expired(self) -> bool:
        return _loop_timeouts.expired(self.scope)


@dataclass(frozen=True)
class TaskPlan:
    start: int  # when the task begins its scopes
    timeouts: tuple[int, ...]  # nested scopes, outermost first (seconds)
    work: int  # how long the innermost call sleeps
    swallow: bool  # the innermost call catches its cancellation and returns
    cancel_at: int | None  # a cancellation from outside, at this time


plans = st.lists(
    st.builds(
        TaskPlan,
        start=st.integers(0, 5),
        timeouts=st.lists(st.integers(0, 12), min_size=1, max_size=3).map(tuple),
        work=st.integers(0, 12),
        swallow=st.booleans(),
        cancel_at=st.none() | st.integers(0, 15),
    ),
    min_size=1,
    max_size=6,
)


def run_scenario(make_scope: Any, tasks: list[TaskPlan]) -> list[tuple[Any, ...]]:
    async def body(plan: TaskPlan, level: int, scopes: list[Any]) -> str:
        if level == len(plan.timeouts):
            try:
                await asyncio.sleep(plan.work)
            except asyncio.CancelledError:
                if plan.swallow:
                    return "swallowed"
                raise
            return "done"
        scope = make_scope(plan.timeouts[level])
        scopes.append(scope)
        async with scope:
            return await body(plan, level + 1, scopes)

    async def one(plan: TaskPlan) -> tuple[Any, ...]:
        await asyncio.sleep(plan.start)
        scopes: list[Any] = []
        task = asyncio.current_task()
        assert task is not None
        loop = asyncio.get_running_loop()
        try:
            outcome: Any = await body(plan, 0, scopes)
        except BaseException as exc:
            cause = type(exc.__cause__).__name__ if exc.__cause__ is not None else None
            outcome = (type(exc).__name__, cause)
        return (
            outcome,
            loop.time(),
            tuple(scope.expired() for scope in scopes),
            task.cancelling(),
        )

    async def main() -> list[tuple[Any, ...]]:
        loop = asyncio.get_running_loop()
        running = [asyncio.create_task(one(plan)) for plan in tasks]
        for task, plan in zip(running, tasks, strict=True):
            if plan.cancel_at is not None:
                loop.call_at(plan.cancel_at, task.cancel)
        results: list[tuple[Any, ...]] = []
        for task in running:
            try:
                results.append(await task)
            except asyncio.CancelledError:
                results.append(("cancelled before its scopes", loop.time()))
        return results

    return run_simulated(main)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(plans)
def test_same_outcomes_as_asyncio_timeout(tasks: list[TaskPlan]) -> None:
    assert run_scenario(SeawallScope, tasks) == run_scenario(asyncio.timeout, tasks)


@pytest.mark.parametrize("make_scope", [asyncio.timeout, SeawallScope], ids=["asyncio", "seawall"])
def test_documented_cases(make_scope: Any) -> None:
    """The cases the differential test draws, written out: both implementations agree."""
    expire = TaskPlan(0, (2,), 5, False, None)
    in_time = TaskPlan(0, (5,), 2, False, None)
    swallowed = TaskPlan(0, (2,), 5, True, None)
    outside = TaskPlan(0, (5,), 9, False, 3)
    both_at_once = TaskPlan(0, (3,), 9, False, 3)
    inner_sooner = TaskPlan(0, (8, 2), 9, False, None)
    outer_sooner = TaskPlan(0, (2, 8), 9, False, None)
    already_passed = TaskPlan(0, (0,), 1, False, None)
    results = run_scenario(
        make_scope,
        [expire, in_time, swallowed, outside, both_at_once, inner_sooner, outer_sooner],
    )
    assert results == [
        (("TimeoutError", "CancelledError"), 2.0, (True,), 0),
        ("done", 2.0, (False,), 0),
        ("swallowed", 2.0, (True,), 0),  # the caller judges a late return (Timeout does)
        (("CancelledError", None), 3.0, (False,), 1),
        (("CancelledError", None), 3.0, (True,), 1),  # an outside request stays one
        (("TimeoutError", "CancelledError"), 2.0, (False, True), 0),
        (("TimeoutError", "CancelledError"), 2.0, (True, False), 0),
    ]
    # A deadline already passed expires the scope at the loop's next iteration.
    assert run_scenario(make_scope, [already_passed]) == [
        (("TimeoutError", "CancelledError"), 0.0, (True,), 0)
    ]


def test_outside_a_running_loop_or_a_task_is_a_runtime_error() -> None:
    with pytest.raises(RuntimeError, match="no running event loop"):
        _loop_timeouts.enter(1.0)

    async def main() -> None:
        loop = asyncio.get_running_loop()
        done: asyncio.Future[BaseException] = loop.create_future()

        def from_a_callback() -> None:
            try:
                _loop_timeouts.enter(1.0)
            except RuntimeError as exc:
                done.set_result(exc)

        loop.call_soon(from_a_callback)
        assert "inside a task" in str(await done)

    run_simulated(main)


def test_one_timer_for_many_scopes_and_a_bounded_heap() -> None:
    async def main() -> tuple[int, int, int]:
        loop = asyncio.get_running_loop()
        timers_before = len(loop._scheduled)  # type: ignore[attr-defined]
        most_timers = most_entries = 0
        for _ in range(10_000):
            scope = _loop_timeouts.enter(10.0)
            most_timers = max(most_timers, len(loop._scheduled))  # type: ignore[attr-defined]
            most_entries = max(most_entries, len(scope[5].heap))
            assert not _loop_timeouts.leave(scope, None)
        return most_timers - timers_before, most_entries, len(scope[5].heap)

    timers, most_entries, entries_left = run_simulated(main)
    assert timers == 1
    assert most_entries <= 2 * 65
    assert entries_left <= 2 * 65


def test_a_sooner_scope_rearms_the_timer_and_the_timer_moves_on_to_the_next() -> None:
    async def main() -> list[float]:
        loop = asyncio.get_running_loop()
        fired: list[float] = []

        async def sleeper(seconds: float, work: float) -> None:
            try:
                async with SeawallScope(seconds):
                    await asyncio.sleep(work)
            except TimeoutError:
                fired.append(loop.time())

        await asyncio.gather(
            sleeper(30, 100), sleeper(10, 100), sleeper(20, 5), sleeper(1, 100), sleeper(40, 39)
        )
        return fired

    assert run_simulated(main) == [1.0, 10.0, 30.0]


def test_scopes_on_loops_in_many_threads_at_once() -> None:
    """Each loop has its own scopes and timer: 8 threads, 200 tasks each, exact outcomes."""
    results: dict[int, tuple[int, int]] = {}
    errors: list[BaseException] = []

    def worker(index: int) -> None:
        async def call(work: float) -> bool:
            try:
                async with SeawallScope(5.0):
                    await asyncio.sleep(work)
            except TimeoutError:
                return False
            return True

        async def main() -> tuple[int, int]:
            outcomes = await asyncio.gather(*(call(1.0 + (i % 10)) for i in range(200)))
            return sum(outcomes), len(outcomes) - sum(outcomes)

        try:
            loop = SimulatedLoop()
            try:
                results[index] = loop.run_until_complete(main())
            finally:
                loop.close()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors
    # Work of 1..10 s under a 5 s timeout: 1..4 s in time; 5..10 s cut (a deadline that
    # passes as the work ends cuts it, as asyncio.timeout does); 20 tasks of each.
    assert results == {i: (80, 120) for i in range(8)}


def test_a_real_loop_cancels_in_real_time() -> None:
    """On a real loop (real cancellation, generous bounds): a hang is cut near its deadline."""

    async def main() -> float:
        loop = asyncio.get_running_loop()
        start = loop.time()
        with pytest.raises(TimeoutError):
            async with SeawallScope(0.05):
                await asyncio.sleep(30)
        return loop.time() - start

    elapsed = asyncio.run(main())
    assert 0.04 <= elapsed < 5.0


class Result:
    """A call's result, watched: nothing of seawall's may keep it once the call is over."""


def test_loops_and_results_are_not_kept_once_a_loop_is_done() -> None:
    """asyncio.run() over and over (a CLI, a task queue): each loop, with the tasks and
    results of the calls it ran, goes once it is done (the last one may stay remembered)."""
    import gc
    import weakref

    import seawall

    timeout = seawall.Timeout(10)
    policy = seawall.Policy(
        "leak", retry=seawall.Retry(on=ValueError), total_timeout=30, attempt_timeout=10
    )
    loops: list[weakref.ref[asyncio.AbstractEventLoop]] = []
    results: list[weakref.ref[Result]] = []

    async def call() -> Result:
        result = Result()
        results.append(weakref.ref(result))
        return result

    async def main() -> None:
        loops.append(weakref.ref(asyncio.get_running_loop()))
        await timeout.acall(call)
        await policy.acall(call)

    for _ in range(20):
        asyncio.run(main())
    gc.collect()
    assert sum(ref() is not None for ref in loops) <= 1
    assert sum(ref() is not None for ref in results) == 0


def test_a_follower_dropped_before_its_shell_takes_over_never_cancels_later() -> None:
    """A verdict that raises (here a BaseException from inside the breaker's bookkeeping)
    ends the call before the total timeout's shell takes it over: the total's scope, which the
    attempt's expiry had made live, must not cancel the task at its deadline, long after."""
    import seawall

    class Interrupt(BaseException):
        pass

    async def main() -> str:
        clock = LoopClock(asyncio.get_running_loop())
        breaker = seawall.CircuitBreaker(clock=clock)
        policy = seawall.Policy(
            "p",
            retry=seawall.Retry(on=ValueError, clock=clock),
            breaker=breaker,
            attempt_timeout=1.0,
            total_timeout=5.0,
            clock=clock,
        )

        def on_exception(*args: object) -> None:
            raise Interrupt

        breaker._view().on_exception = on_exception  # type: ignore[union-attr]
        with pytest.raises(Interrupt):
            await policy.acall(asyncio.sleep, 60)  # cut at 1 s; the verdict raises
        await asyncio.sleep(10)  # past the total's deadline: no stray cancellation
        return "not cancelled"

    assert run_simulated(main) == "not cancelled"
