"""Timeout: real cancellation for coroutines, a published deadline for threads.

Sync calls are timed with a :class:`~seawall.testing.FakeClock` moved from inside the call.
Async timeouts are real cancellations on the event loop's clock, so those tests use short
limits around callees that would sleep far longer, with generous bounds on the elapsed time.
"""

from __future__ import annotations

import asyncio
import math
from typing import Any

import pytest
from helpers import Boom

import seawall
from seawall import SeawallError, Timeout, TimeoutExceededError
from seawall.testing import FakeClock, Simulation

ZERO = {"success": 0, "failure": 0, "timeout": 0, "cancelled": 0}


def counts(**nonzero: int) -> dict[str, int]:
    return {**ZERO, **nonzero}


# -- async: real cancellation, on simulated time (the `simulated` fixture) ---------------------


def test_async_call_past_its_limit_is_cancelled_and_reported(simulated: Simulation) -> None:
    timeout = Timeout(0.05, name="slow-dep")
    seen: list[str] = []

    async def slow() -> str:
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            seen.append("cancelled")
            raise
        seen.append("finished")
        return "late"

    async def main() -> TimeoutExceededError:
        with pytest.raises(TimeoutExceededError) as info:
            await timeout.acall(slow)
        return info.value

    exc = simulated.run(main)

    assert simulated.now() == 0.05  # cut at its deadline, not after the callee's 10 s
    assert seen == ["cancelled"]
    assert isinstance(exc, TimeoutError)
    assert isinstance(exc, SeawallError)
    assert exc.name == "slow-dep"
    assert exc.seconds == 0.05
    assert str(exc) == "'slow-dep' exceeded its timeout of 0.05s"
    assert isinstance(exc.__cause__, TimeoutError)
    assert timeout._counts.as_dict() == counts(timeout=1)


def _swallows_cancellation(seen: list[str]) -> Any:
    async def stubborn() -> str:
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            seen.append("cancelled")  # and returns anyway, late
        return "late"

    return stubborn


def test_async_late_return_after_swallowing_cancellation_is_a_timeout(
    simulated: Simulation,
) -> None:
    timeout = Timeout(0.05, name="stubborn")
    seen: list[str] = []

    async def main() -> None:
        with pytest.raises(TimeoutExceededError):
            await timeout.acall(_swallows_cancellation(seen))

    simulated.run(main)
    assert seen == ["cancelled"]
    assert timeout._counts.as_dict() == counts(timeout=1)


def test_async_late_return_through_a_policy_is_a_timeout_and_retried(
    simulated: Simulation,
) -> None:
    # The policy's one-frame path (retry, breaker, attempt timeout) drops it the same way.
    seen: list[str] = []
    retry = seawall.Retry(on=TimeoutExceededError, attempts=2, wait=0.0)
    policy = seawall.Policy("stubborn-policy", retry=retry, breaker=True, attempt_timeout=0.05)

    async def main() -> None:
        with pytest.raises(TimeoutExceededError):
            await policy.acall(_swallows_cancellation(seen))

    simulated.run(main)
    assert seen == ["cancelled", "cancelled"]
    assert simulated.now() == pytest.approx(0.1)  # two attempts, each cut at 0.05 s
    assert policy.attempt_timeout is not None
    assert policy.attempt_timeout._counts.as_dict() == counts(timeout=2)
    assert policy.stats.read().errors == {("timeout", "TimeoutExceededError"): 1}
    assert policy.breaker is not None
    assert policy.breaker.snapshot().failures == 2


def test_async_decorated_function_times_out_under_its_own_name(simulated: Simulation) -> None:
    seen: list[str] = []

    @Timeout(0.05)
    async def fetch_quote(symbol: str) -> str:
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            seen.append(symbol)
            raise
        return symbol

    with pytest.raises(TimeoutExceededError) as info:
        simulated.run(fetch_quote("ACME"))
    assert simulated.now() == 0.05
    assert seen == ["ACME"]
    assert info.value.name == fetch_quote.__qualname__
    assert info.value.seconds == 0.05


def test_async_cancellation_from_outside_is_not_a_timeout(simulated: Simulation) -> None:
    timeout = Timeout(10)
    seen: list[str] = []

    async def callee(started: asyncio.Event) -> None:
        started.set()
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            seen.append("cancelled")
            raise

    async def main() -> None:
        started = asyncio.Event()
        task = asyncio.create_task(timeout.acall(callee, started))
        await started.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert task.cancelled()

    simulated.run(main)
    assert simulated.now() == 0.0  # cancelled at once, from outside
    assert seen == ["cancelled"]
    assert timeout._counts.as_dict() == counts(cancelled=1)
    assert timeout._counts.as_dict()["timeout"] == 0


def test_async_timeout_error_raised_by_the_callee_is_not_seawalls() -> None:
    timeout = Timeout(10)
    mine = TimeoutError("the callee's own timeout")

    async def callee() -> None:
        await asyncio.sleep(0)
        raise mine

    with pytest.raises(TimeoutError) as info:
        asyncio.run(timeout.acall(callee))
    assert info.value is mine
    assert not isinstance(info.value, TimeoutExceededError)
    assert timeout._counts.as_dict() == counts(failure=1)


def test_async_counts_successes_and_failures() -> None:
    timeout = Timeout(10)

    async def echo(value: int) -> int:
        await asyncio.sleep(0)
        return value

    async def fail() -> None:
        await asyncio.sleep(0)
        raise Boom("no")

    async def main() -> list[int]:
        results = [await timeout.acall(echo, 1), await timeout.acall(echo, value=2)]
        with pytest.raises(Boom, match=r"^no$"):
            await timeout.acall(fail)
        return results

    assert asyncio.run(main()) == [1, 2]
    assert timeout._counts.as_dict() == counts(success=2, failure=1)


def test_async_remaining_is_the_deadline_inside_and_none_outside() -> None:
    clock = FakeClock(100.0)
    timeout = Timeout(3, clock=clock)

    async def callee() -> tuple[float | None, float | None]:
        first = seawall.remaining()
        clock.advance(1.25)
        await asyncio.sleep(0)
        return first, seawall.remaining()

    async def main() -> tuple[float | None, float | None, float | None, float | None]:
        before = seawall.remaining()
        first, second = await timeout.acall(callee)
        return before, first, second, seawall.remaining()

    assert seawall.remaining() is None
    assert asyncio.run(main()) == (None, 3.0, 1.75, None)
    assert seawall.remaining() is None


def test_async_remaining_on_the_system_clock_is_about_seconds() -> None:
    timeout = Timeout(3)

    async def callee() -> float | None:
        return seawall.remaining()

    left = asyncio.run(timeout.acall(callee))
    assert left is not None
    assert 2.0 < left <= 3.0


def test_async_remaining_is_none_after_a_failure_and_after_a_timeout(
    simulated: Simulation,
) -> None:
    async def fail() -> None:
        raise Boom

    async def slow() -> None:
        await asyncio.sleep(10)

    async def main() -> list[float | None]:
        out = []
        with pytest.raises(Boom):
            await Timeout(5).acall(fail)
        out.append(seawall.remaining())
        with pytest.raises(TimeoutExceededError):
            await Timeout(0.02).acall(slow)
        out.append(seawall.remaining())
        return out

    assert simulated.run(main) == [None, None]


@pytest.mark.parametrize(("outer_s", "inner_s"), [(1.0, 5.0), (5.0, 1.0)])
def test_async_nested_timeouts_inner_sees_the_sooner_deadline(
    outer_s: float, inner_s: float
) -> None:
    clock = FakeClock()
    outer = Timeout(outer_s, clock=clock)
    inner = Timeout(inner_s, clock=clock)

    async def leaf() -> float | None:
        return seawall.remaining()

    async def middle() -> tuple[float | None, float | None, float | None]:
        before = seawall.remaining()
        clock.advance(0.5)
        seen = await inner.acall(leaf)
        return before, seen, seawall.remaining()

    before, seen, after = asyncio.run(outer.acall(middle))
    assert before == outer_s
    assert seen == min(outer_s - 0.5, inner_s)
    assert after == outer_s - 0.5
    assert outer._counts.as_dict() == counts(success=1)
    assert inner._counts.as_dict() == counts(success=1)


def test_async_nested_timeout_cancels_at_the_outer_sooner_deadline(
    simulated: Simulation,
) -> None:
    outer = Timeout(0.05, name="outer")
    inner = Timeout(10, name="inner")
    seen: list[str] = []

    async def slow() -> None:
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            seen.append("cancelled")
            raise

    with pytest.raises(TimeoutExceededError) as info:
        simulated.run(outer.acall(inner.acall, slow))
    assert simulated.now() == 0.05
    assert seen == ["cancelled"]
    # The outer deadline is the one that passed: the outer reports the timeout, and the inner
    # layer only saw its call cancelled.
    assert info.value.name == "outer"
    assert info.value.seconds == 0.05
    assert outer._counts.as_dict() == counts(timeout=1)
    assert inner._counts.as_dict() == counts(cancelled=1)


# -- sync: a published deadline, checked when the call returns ------------------------------------


def test_sync_publishes_the_deadline() -> None:
    clock = FakeClock(50.0)
    timeout = Timeout(2, clock=clock)

    def work() -> tuple[float | None, float | None]:
        first = seawall.remaining()
        clock.advance(0.5)
        return first, seawall.remaining()

    assert seawall.remaining() is None
    assert timeout.call(work) == (2.0, 1.5)
    assert seawall.remaining() is None
    assert timeout._counts.as_dict() == counts(success=1)


def test_sync_remaining_reaches_zero_and_never_goes_negative() -> None:
    clock = FakeClock()
    timeout = Timeout(1, clock=clock)
    seen: list[float | None] = []

    def work(advance: float) -> None:
        clock.advance(advance)
        seen.append(seawall.remaining())

    timeout.call(work, 1)
    with pytest.raises(TimeoutExceededError):
        timeout.call(work, 3)
    assert seen == [0.0, 0.0]
    assert timeout._counts.as_dict() == counts(success=1, timeout=1)


def test_sync_call_returning_after_the_deadline_raises_and_counts_a_timeout() -> None:
    clock = FakeClock()
    timeout = Timeout(2, name="report", clock=clock)
    ran: list[str] = []

    def slow() -> str:
        clock.advance(2.5)
        ran.append("to the end")
        return "late result"

    with pytest.raises(TimeoutExceededError) as info:
        timeout.call(slow)
    assert ran == ["to the end"]
    assert info.value.name == "report"
    assert info.value.seconds == 2.0
    assert isinstance(info.value, TimeoutError)
    assert timeout._counts.as_dict() == counts(timeout=1)
    assert seawall.remaining() is None


def test_sync_returning_in_time_gives_the_result() -> None:
    clock = FakeClock()
    timeout = Timeout(2, clock=clock)

    def quick(a: int, *, b: int) -> int:
        clock.advance(1.5)
        return a + b

    def on_the_deadline() -> str:
        clock.advance(2)
        return "just in time"

    assert timeout.call(quick, 1, b=2) == 3
    assert timeout.call(on_the_deadline) == "just in time"
    assert timeout._counts.as_dict() == counts(success=2)


def test_sync_decorated_function_times_out_under_its_own_name() -> None:
    clock = FakeClock()

    @Timeout(1, clock=clock)
    def render(page: int) -> int:
        clock.advance(page)
        return page

    assert render(1) == 1
    with pytest.raises(TimeoutExceededError) as info:
        render(2)
    assert info.value.name == render.__qualname__
    assert info.value.seconds == 1.0


@pytest.mark.parametrize("late", [False, True])
def test_sync_exception_propagates_unchanged(late: bool) -> None:
    clock = FakeClock()
    timeout = Timeout(1, clock=clock)
    error = Boom("original")

    def fail() -> None:
        if late:
            clock.advance(5)
        raise error

    with pytest.raises(Boom) as info:
        timeout.call(fail)
    assert info.value is error
    assert timeout._counts.as_dict() == counts(failure=1)
    assert seawall.remaining() is None


def test_sync_base_exception_is_counted_as_cancelled() -> None:
    timeout = Timeout(1, clock=FakeClock())

    def interrupted() -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        timeout.call(interrupted)
    assert timeout._counts.as_dict() == counts(cancelled=1)
    assert seawall.remaining() is None


@pytest.mark.parametrize(("outer_s", "inner_s"), [(1.0, 5.0), (5.0, 1.0), (2.0, 2.0)])
def test_sync_nested_timeouts_take_the_sooner_deadline(outer_s: float, inner_s: float) -> None:
    clock = FakeClock()
    outer = Timeout(outer_s, clock=clock)
    inner = Timeout(inner_s, clock=clock)

    def middle() -> tuple[float | None, float | None, float | None]:
        before = seawall.remaining()
        clock.advance(0.5)
        seen = inner.call(seawall.remaining)
        return before, seen, seawall.remaining()

    assert outer.call(middle) == (outer_s, min(outer_s - 0.5, inner_s), outer_s - 0.5)
    assert seawall.remaining() is None


def test_sync_nested_timeout_trips_on_the_outer_deadline() -> None:
    clock = FakeClock()
    outer = Timeout(1, name="outer", clock=clock)
    inner = Timeout(5, name="inner", clock=clock)

    def slow() -> str:
        clock.advance(1.5)
        return "late"

    with pytest.raises(TimeoutExceededError) as info:
        outer.call(inner.call, slow)
    # Each layer judges its own deadline: the inner's 5 s have not passed, so it lets the
    # result through, and the outer, whose 1 s has, reports the timeout.
    assert info.value.name == "outer"
    assert inner._counts.as_dict() == counts(success=1)
    assert outer._counts.as_dict() == counts(timeout=1)


def test_sync_nested_timeouts_on_different_clocks() -> None:
    # The outer deadline is on a fake clock and sooner, so the inner (system clock) keeps it:
    # whether it has passed must be read on the fake clock, not the inner's.
    fake = FakeClock()
    outer = Timeout(1, clock=fake)
    inner = Timeout(5)

    def quick() -> float | None:
        return seawall.remaining()

    assert outer.call(inner.call, quick) == 1.0
    assert inner._counts.as_dict() == counts(success=1)

    def late() -> str:
        fake.advance(2)
        return "late"

    with pytest.raises(TimeoutExceededError) as info:
        outer.call(inner.call, late)
    # The inner's own 5 s (system clock) have not passed; the outer's 1 s (fake clock) have.
    assert inner._counts.as_dict() == counts(success=2)
    assert info.value.seconds == 1


# -- construction ---------------------------------------------------------------------------------


@pytest.mark.parametrize("seconds", [0, 0.0, -1, -0.5, math.nan])
def test_seconds_must_be_positive(seconds: float) -> None:
    with pytest.raises(ValueError, match=r"^seconds must be in"):
        Timeout(seconds)


@pytest.mark.parametrize("seconds", ["1", None, True, [1]])
def test_seconds_must_be_a_number(seconds: Any) -> None:
    with pytest.raises(TypeError, match=r"^seconds must be a number"):
        Timeout(seconds)


def test_seconds_name_and_repr() -> None:
    timeout = Timeout(1.5, name="db")
    assert timeout.seconds == 1.5
    assert timeout.name == "db"
    assert repr(timeout) == "Timeout(1.5, name='db')"
    assert Timeout(2).seconds == 2.0
    assert isinstance(Timeout(2).seconds, float)
