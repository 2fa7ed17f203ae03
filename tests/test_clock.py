"""The clock protocol, the system clock and the fake clock tests use."""

from __future__ import annotations

import asyncio
import math
import threading
import time

import pytest

import seawall
import seawall.testing
from seawall import Clock, SystemClock
from seawall._clock import FakeClock, system_clock

# -- FakeClock ----------------------------------------------------------------------------------


def test_fake_clock_is_exported_from_seawall_testing() -> None:
    assert seawall.testing.FakeClock is FakeClock
    assert "FakeClock" in seawall.testing.__all__


def test_fake_clock_starts_at_zero_by_default() -> None:
    clock = FakeClock()
    assert clock.monotonic() == 0.0
    assert clock.sleeps == []


@pytest.mark.parametrize(("start", "now"), [(0, 0.0), (5, 5.0), (2.5, 2.5), (-3.0, -3.0)])
def test_fake_clock_start(start: float, now: float) -> None:
    clock = FakeClock(start)
    assert clock.monotonic() == now
    assert type(clock.monotonic()) is float


@pytest.mark.parametrize("start", ["1", None, True, [1.0]])
def test_fake_clock_start_must_be_a_number(start: object) -> None:
    with pytest.raises(TypeError, match="start must be a number"):
        FakeClock(start)  # type: ignore[arg-type]


def test_fake_clock_moves_only_when_advanced() -> None:
    clock = FakeClock(10.0)
    assert clock.monotonic() == 10.0
    assert clock.monotonic() == 10.0
    clock.advance(2.5)
    assert clock.monotonic() == 12.5
    clock.advance(0)
    assert clock.monotonic() == 12.5
    clock.advance(7)
    assert clock.monotonic() == 19.5
    assert clock.sleeps == []


def test_fake_clock_cannot_go_backwards() -> None:
    clock = FakeClock(1.0)
    with pytest.raises(ValueError, match="seconds must be >= 0"):
        clock.advance(-0.5)
    assert clock.monotonic() == 1.0


def test_fake_clock_sleep_advances_at_once_and_records() -> None:
    clock = FakeClock()
    clock.sleep(1.5)
    clock.sleep(0)
    clock.sleep(3)
    assert clock.monotonic() == 4.5
    assert clock.sleeps == [1.5, 0, 3]


def test_fake_clock_negative_sleep_is_recorded_but_does_not_move_time() -> None:
    clock = FakeClock(2.0)
    clock.sleep(-1.0)
    assert clock.monotonic() == 2.0
    assert clock.sleeps == [-1.0]


def test_fake_clock_asleep_advances_records_and_yields_to_the_loop() -> None:
    clock = FakeClock()
    order: list[str] = []

    async def other() -> None:
        order.append("other ran")

    async def main() -> None:
        task = asyncio.create_task(other())
        await clock.asleep(2.0)
        order.append("after asleep")
        await task

    asyncio.run(main())
    assert order == ["other ran", "after asleep"]
    assert clock.monotonic() == 2.0
    assert clock.sleeps == [2.0]


def test_fake_clock_is_safe_to_share_between_threads() -> None:
    clock = FakeClock()
    start = threading.Barrier(8)

    def work() -> None:
        start.wait()
        for _ in range(1000):
            clock.advance(1)
            clock.sleep(1)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert clock.monotonic() == 16_000.0
    assert len(clock.sleeps) == 8000


def test_fake_clock_repr() -> None:
    clock = FakeClock(1.5)
    clock.sleep(1)
    assert repr(clock) == "FakeClock(now=2.5, sleeps=1)"


# -- SystemClock --------------------------------------------------------------------------------


def test_system_clock_is_time_monotonic() -> None:
    clock = SystemClock()
    before = time.monotonic()
    now = clock.monotonic()
    after = time.monotonic()
    assert before <= now <= after


def test_system_clock_never_goes_backwards() -> None:
    clock = SystemClock()
    readings = [clock.monotonic() for _ in range(1000)]
    assert readings == sorted(readings)


def test_system_clock_sleep_zero() -> None:
    assert SystemClock().sleep(0) is None  # type: ignore[func-returns-value]


def test_system_clock_asleep_zero_yields_to_the_loop() -> None:
    order: list[str] = []

    async def other() -> None:
        order.append("other ran")

    async def main() -> None:
        task = asyncio.create_task(other())
        await SystemClock().asleep(0)
        order.append("after asleep")
        await task

    asyncio.run(main())
    assert order == ["other ran", "after asleep"]


def test_system_clock_repr_and_default_instance() -> None:
    assert repr(SystemClock()) == "SystemClock()"
    assert isinstance(system_clock, SystemClock)


def test_system_clock_has_no_instance_dict() -> None:
    with pytest.raises(AttributeError):
        SystemClock().other = 1  # type: ignore[attr-defined]


# -- the protocol -------------------------------------------------------------------------------


def test_both_clocks_satisfy_the_protocol() -> None:
    assert isinstance(SystemClock(), Clock)
    assert isinstance(FakeClock(), Clock)
    assert seawall.Clock is Clock


def test_an_object_missing_a_method_is_not_a_clock() -> None:
    class NoAsleep:
        def monotonic(self) -> float:
            return 0.0

        def sleep(self, seconds: float) -> None:
            pass

    assert not isinstance(NoAsleep(), Clock)
    assert not isinstance(object(), Clock)


def test_policies_default_to_the_system_clock() -> None:
    assert seawall.CircuitBreaker().clock is system_clock


def test_policies_use_the_clock_given() -> None:
    clock = FakeClock()
    assert seawall.CircuitBreaker(clock=clock).clock is clock


@pytest.mark.parametrize("bad", [object(), 1.0, "clock"])
def test_policies_reject_what_is_not_a_clock(bad: object) -> None:
    with pytest.raises(TypeError, match=r"clock must provide monotonic\(\), sleep\(\) and asleep"):
        seawall.CircuitBreaker(clock=bad)  # type: ignore[arg-type]


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_fake_clock_refuses_a_time_that_is_not_finite(bad: float) -> None:
    with pytest.raises(ValueError, match=r"start must be in \[-1e\+12, 1e\+12\]"):
        FakeClock(bad)
    clock = FakeClock()
    with pytest.raises(ValueError, match=r"seconds must be in \(-inf, inf\)"):
        clock.advance(bad)
    with pytest.raises(ValueError, match=r"seconds must be in \(-inf, inf\)"):
        clock.sleep(bad)
    with pytest.raises(TypeError, match="seconds must be a number"):
        clock.advance("1")  # type: ignore[arg-type]
    assert clock.monotonic() == 0.0
    assert clock.sleeps == []
