"""Numbers a policy cannot work with are refused at construction, naming the parameter; the
extreme ones it can work with (an infinite wait, a very long sleep) work."""

from __future__ import annotations

import asyncio
import math
import threading
from typing import Any

import httpx
import pytest

import seawall
from seawall._clock import SystemClock
from seawall.httpx import AsyncResilientTransport, ResilientTransport
from seawall.testing import FakeClock

HUGE = 10**400  # beyond any float


@pytest.mark.parametrize(
    ("make", "param"),
    [
        (lambda: seawall.Timeout(HUGE), "seconds"),
        (lambda: seawall.Bulkhead(1, max_queue=1, max_wait=HUGE), "max_wait"),
        (lambda: seawall.Bulkhead(HUGE), "max_concurrent"),
        (lambda: seawall.Bulkhead(10**9), "max_concurrent"),
        (lambda: seawall.Bulkhead(1_000_001), "max_concurrent"),
        (lambda: seawall.CircuitBreaker(window_calls=10**9), "window_calls"),
        (lambda: seawall.CircuitBreaker(window=1e-305), "window"),
        (lambda: seawall.CircuitBreaker(window=1e-323), "window"),
        (lambda: seawall.CircuitBreaker(window=math.inf), "window"),
        (lambda: seawall.CircuitBreaker(open_duration=HUGE), "open_duration"),
        (lambda: seawall.RetryBudget(window=1e-305), "window"),
        (lambda: seawall.Retry(on=OSError, wait=math.inf), "wait"),
        (lambda: seawall.Retry(on=OSError, deadline=HUGE), "deadline"),
        (lambda: ResilientTransport(max_retry_after=math.inf), "max_retry_after"),
        (lambda: seawall.Policy("x", total_timeout=HUGE), "total_timeout"),
    ],
)
def test_numbers_that_would_crash_later_are_refused_naming_the_parameter(
    make: Any, param: str
) -> None:
    with pytest.raises(ValueError, match=rf"^{param}\b") as info:
        make()
    assert len(str(info.value)) < 200  # a 400-digit number is not spelled out


@pytest.mark.parametrize("max_wait", [math.inf, 1e10])
def test_a_bulkhead_wait_beyond_a_lock_waits_until_a_slot_is_free(max_wait: float) -> None:
    bulkhead = seawall.Bulkhead(1, max_queue=1, max_wait=max_wait)
    inside, release = threading.Event(), threading.Event()
    holder = threading.Thread(
        target=bulkhead.call, args=(lambda: (inside.set(), release.wait(20)),)
    )
    holder.start()
    assert inside.wait(20)
    got: list[str] = []
    waiter = threading.Thread(target=lambda: got.append(bulkhead.call(lambda: "slot")))
    waiter.start()
    while bulkhead.snapshot().queued == 0:  # the real point: a thread parked on its lock
        assert waiter.is_alive()
        threading.Event().wait(0.01)
    release.set()
    holder.join(20)
    waiter.join(20)
    assert got == ["slot"]
    assert bulkhead.snapshot().active == 0


def test_the_system_clock_sleeps_longer_than_its_platform_can_in_parts(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    slept: list[float] = []
    monkeypatch.setattr("seawall._clock.time.sleep", slept.append)
    SystemClock().sleep(2.5e9)
    assert slept == [1e9, 1e9, 0.5e9]


@pytest.mark.parametrize("seconds", [math.inf, 1e10])
@pytest.mark.parametrize("which", ["total_timeout", "attempt_timeout"])
def test_a_template_timeout_too_long_for_a_socket_leaves_the_requests_timeouts(
    which: str, seconds: float
) -> None:
    seen: list[dict[str, float | None]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(dict(request.extensions["timeout"]))
        return httpx.Response(200)

    template = seawall.Policy("far", **{which: seconds})
    transport = ResilientTransport(httpx.MockTransport(handler), policy=template)
    with httpx.Client(transport=transport, timeout=None) as client:
        assert client.get("http://far.test/").status_code == 200
    assert seen == [{"connect": None, "read": None, "write": None, "pool": None}]


# -- waits longer than the platform can time -----------------------------------------------------


class Flaky:
    """Fails its first two calls, then answers."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self) -> str:
        self.calls += 1
        if self.calls <= 2:
            raise OSError("flaky")
        return "ok"


def platform_sleep(slept: list[float]) -> Any:
    """A time.sleep that refuses what the platform's refuses, recording what it is asked."""

    def sleep(seconds: float) -> None:
        if seconds > threading.TIMEOUT_MAX:
            raise OverflowError("timestamp out of range for platform time_t")
        slept.append(seconds)

    return sleep


def test_a_sync_retry_waits_longer_than_its_platform_can_sleep(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    slept: list[float] = []
    monkeypatch.setattr("seawall._clock.time.sleep", platform_sleep(slept))
    flaky = Flaky()
    assert seawall.Retry(on=OSError, wait=1e12).call(flaky) == "ok"
    assert flaky.calls == 3
    assert sum(slept) == 2e12
    assert max(slept) <= threading.TIMEOUT_MAX


def test_a_long_retry_after_is_slept_in_parts_by_the_sync_transport(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    slept: list[float] = []
    monkeypatch.setattr("seawall._clock.time.sleep", platform_sleep(slept))
    answers = iter([httpx.Response(503, headers={"Retry-After": "999999999999"})])

    def handler(request: httpx.Request) -> httpx.Response:
        return next(answers, httpx.Response(200))

    template = seawall.Policy(
        "later", retry=seawall.Retry(on=seawall.httpx.FailureResponse, wait=0)
    )
    transport = ResilientTransport(
        httpx.MockTransport(handler), policy=template, max_retry_after=1e10
    )
    with httpx.Client(transport=transport) as client:
        assert client.get("http://later.test/").status_code == 200
    assert sum(slept) == 1e10
    assert max(slept) <= threading.TIMEOUT_MAX


# -- every public parameter that takes a number ------------------------------------------------

NAN, INF, TINY = math.nan, math.inf, 1e-305
#: The kinds of bad number, as a test id and the value.
BAD_NUMBERS = [("nan", NAN), ("inf", INF), ("-inf", -INF), ("huge", HUGE), ("1e-305", TINY)]
BAD_NUMBERS.append(("True", True))

OK = None  # accepted, and works at first use
# What each kind of parameter does with each bad number.
SECONDS = {"nan": ValueError, "inf": OK, "-inf": ValueError, "huge": ValueError, "1e-305": OK}
FINITE = {**SECONDS, "inf": ValueError}  # also every share (in (0, 1] or [0, inf))
WINDOW = {**FINITE, "1e-305": ValueError}
COUNT = {"nan": TypeError, "inf": TypeError, "-inf": TypeError, "huge": OK, "1e-305": TypeError}
SLOTS = {**COUNT, "huge": ValueError}  # a count of slots made up front
for _kind in (SECONDS, FINITE, WINDOW, COUNT, SLOTS):
    _kind["True"] = TypeError


def exercise(policy: Any, clock: FakeClock) -> None:
    """A few failures and a success, a second apart, as a policy's first calls."""
    flaky = Flaky()
    for _ in range(4):
        try:
            policy.call(flaky)
        except (OSError, seawall.SeawallError):
            pass
        clock.advance(1.0)
    if hasattr(policy, "snapshot"):
        policy.snapshot()


def breaker(options: Any) -> Any:
    """A breaker built with ``options(value)``; one failure opens it, so that the open and
    half-open states are reached as well."""
    return lambda v, clock: seawall.CircuitBreaker(
        **{"consecutive_failures": 1, "consecutive_span": 0, **options(v)}, clock=clock
    )


def use_budget(budget: Any, clock: FakeClock) -> None:
    assert budget.try_withdraw()  # its floor allows a retry before any call
    budget.deposit()
    clock.advance(60.0)
    assert budget.try_withdraw()
    budget.snapshot()


def use_transport(transport: Any, clock: FakeClock) -> None:
    with httpx.Client(transport=transport) as client:
        assert client.get("http://a.test/").status_code == 200


def use_async_transport(transport: Any, clock: FakeClock) -> None:
    async def get() -> int:
        async with httpx.AsyncClient(transport=transport) as client:
            return (await client.get("http://a.test/")).status_code

    assert asyncio.run(get()) == 200


def nothing(made: object, clock: FakeClock) -> None:
    pass


def answer(request: httpx.Request) -> httpx.Response:
    return httpx.Response(200)


# (what takes it, the parameter, what kind it is, how it is built, how it is used at first)
PARAMETERS: list[tuple[str, str, dict[str, type[Exception] | None], Any, Any]] = [
    ("Timeout", "seconds", SECONDS, lambda v, clock: seawall.Timeout(v, clock=clock), exercise),
    (
        "Bulkhead",
        "max_concurrent",
        SLOTS,
        lambda v, clock: seawall.Bulkhead(v, clock=clock),
        exercise,
    ),
    (
        "Bulkhead",
        "max_queue",
        COUNT,
        lambda v, clock: seawall.Bulkhead(1, max_queue=v, max_wait=1.0, clock=clock),
        exercise,
    ),
    (
        "Bulkhead",
        "max_wait",
        SECONDS,
        lambda v, clock: seawall.Bulkhead(1, max_queue=1, max_wait=v, clock=clock),
        exercise,
    ),
    (
        "CircuitBreaker",
        "consecutive_failures",
        COUNT,
        lambda v, clock: seawall.CircuitBreaker(consecutive_failures=v, clock=clock),
        exercise,
    ),
    (
        "CircuitBreaker",
        "consecutive_span",
        SECONDS,
        breaker(lambda v: {"consecutive_span": v}),
        exercise,
    ),
    ("CircuitBreaker", "failure_ratio", FINITE, breaker(lambda v: {"failure_ratio": v}), exercise),
    ("CircuitBreaker", "minimum_calls", COUNT, breaker(lambda v: {"minimum_calls": v}), exercise),
    ("CircuitBreaker", "window", WINDOW, breaker(lambda v: {"window": v}), exercise),
    ("CircuitBreaker", "window_calls", SLOTS, breaker(lambda v: {"window_calls": v}), exercise),
    (
        "CircuitBreaker",
        "slow_call_duration",
        SECONDS,
        breaker(lambda v: {"slow_call_duration": v}),
        exercise,
    ),
    (
        "CircuitBreaker",
        "slow_call_ratio",
        FINITE,
        breaker(lambda v: {"slow_call_ratio": v}),
        exercise,
    ),
    ("CircuitBreaker", "open_duration", SECONDS, breaker(lambda v: {"open_duration": v}), exercise),
    (
        "CircuitBreaker",
        "max_open_duration",
        SECONDS,
        breaker(lambda v: {"open_duration": 1e-310, "max_open_duration": v}),
        exercise,
    ),
    (
        "CircuitBreaker",
        "half_open_calls",
        COUNT,
        breaker(lambda v: {"half_open_calls": v}),
        exercise,
    ),
    (
        "CircuitBreaker",
        "half_open_timeout",
        SECONDS,
        breaker(lambda v: {"half_open_timeout": v}),
        exercise,
    ),
    (
        "Retry",
        "attempts",
        COUNT,
        lambda v, clock: seawall.Retry(on=OSError, attempts=v, wait=0, clock=clock),
        exercise,
    ),
    (
        "Retry",
        "wait",
        FINITE,
        lambda v, clock: seawall.Retry(on=OSError, wait=v, clock=clock),
        exercise,
    ),
    (
        "Retry",
        "deadline",
        SECONDS,
        lambda v, clock: seawall.Retry(on=OSError, deadline=v, clock=clock),
        exercise,
    ),
    (
        "RetryBudget",
        "ratio",
        FINITE,
        lambda v, clock: seawall.RetryBudget(ratio=v, clock=clock),
        use_budget,
    ),
    (
        "RetryBudget",
        "min_per_second",
        SECONDS,
        lambda v, clock: seawall.RetryBudget(min_per_second=v, clock=clock),
        use_budget,
    ),
    (
        "RetryBudget",
        "window",
        WINDOW,
        lambda v, clock: seawall.RetryBudget(window=v, clock=clock),
        use_budget,
    ),
    (
        "Policy",
        "total_timeout",
        SECONDS,
        lambda v, clock: seawall.Policy("numbers", total_timeout=v, clock=clock),
        exercise,
    ),
    (
        "Policy",
        "attempt_timeout",
        SECONDS,
        lambda v, clock: seawall.Policy("numbers", attempt_timeout=v, clock=clock),
        exercise,
    ),
    (
        "Policy",
        "bulkhead",
        SLOTS,
        lambda v, clock: seawall.Policy("numbers", bulkhead=v, clock=clock),
        exercise,
    ),
    ("FakeClock", "start", FINITE, lambda v, clock: FakeClock(v), nothing),
    ("FakeClock.advance", "seconds", FINITE, lambda v, clock: clock.advance(v), nothing),
    ("FakeClock.sleep", "seconds", FINITE, lambda v, clock: clock.sleep(v), nothing),
    (
        "ResilientTransport",
        "max_hosts",
        COUNT,
        lambda v, clock: ResilientTransport(httpx.MockTransport(answer), max_hosts=v),
        use_transport,
    ),
    (
        "ResilientTransport",
        "labelled_hosts",
        COUNT,
        lambda v, clock: ResilientTransport(httpx.MockTransport(answer), labelled_hosts=v),
        use_transport,
    ),
    (
        "ResilientTransport",
        "max_retry_after",
        FINITE,
        lambda v, clock: ResilientTransport(httpx.MockTransport(answer), max_retry_after=v),
        use_transport,
    ),
    (
        "AsyncResilientTransport",
        "max_retry_after",
        FINITE,
        lambda v, clock: AsyncResilientTransport(httpx.MockTransport(answer), max_retry_after=v),
        use_async_transport,
    ),
]


@pytest.mark.parametrize(
    ("param", "build", "use", "value", "expected"),
    [
        pytest.param(param, build, use, value, kind[label], id=f"{owner}({param}={label})")
        for owner, param, kind, build, use in PARAMETERS
        for label, value in BAD_NUMBERS
    ],
)
def test_every_number_is_refused_naming_its_parameter_or_works(
    param: str, build: Any, use: Any, value: object, expected: type[Exception] | None
) -> None:
    clock = FakeClock()
    if expected is None:
        use(build(value, clock), clock)
        return
    with pytest.raises(expected, match=rf"^{param}\b") as info:
        build(value, clock)
    assert type(info.value) is expected
    assert len(str(info.value)) < 200
    assert clock.monotonic() == 0.0
    assert clock.sleeps == []


# -- the fake clock's readings -----------------------------------------------------------------


@pytest.mark.parametrize("start", [1e305, 1e13, -1e20, -1e13])
def test_a_fake_clock_starts_only_where_every_time_window_can_read_it(start: float) -> None:
    with pytest.raises(ValueError, match=r"^start must be in \[-1e\+12, 1e\+12\], got"):
        FakeClock(start)


@pytest.mark.parametrize("move", ["advance", "sleep"])
def test_a_fake_clock_is_not_moved_past_its_last_reading(move: str) -> None:
    clock = FakeClock()
    with pytest.raises(ValueError, match=r"^seconds=1e\+308 would move the clock past 1e\+12"):
        getattr(clock, move)(1e308)  # twice was inf, which no window can read
    getattr(clock, move)(1e12)
    with pytest.raises(ValueError, match=r"^seconds=1 would move the clock past 1e\+12"):
        getattr(clock, move)(1)
    assert clock.monotonic() == 1e12
    assert clock.sleeps == ([1e12] if move == "sleep" else [])


@pytest.mark.parametrize("start", [-1e12, 1e12 - 60.0])
def test_a_time_window_lets_outcomes_go_at_either_end_of_the_fake_clock(start: float) -> None:
    clock = FakeClock(start)
    shortest = seawall.CircuitBreaker(window=0.001, minimum_calls=100, clock=clock)
    for _ in range(5):
        with pytest.raises(OSError, match="flaky"):
            shortest.call(Flaky())
    assert shortest.snapshot().window_calls == 5
    clock.advance(1.0)
    assert shortest.snapshot().window_calls == 0


@pytest.mark.parametrize("interval", [math.inf, 1e10])
def test_the_multiprocess_mirror_thread_lives_with_an_interval_beyond_a_lock(
    interval: float,
) -> None:
    from seawall.metrics._multiprocess import _run

    class CountingMirror:
        flushes = 0

        def flush(self) -> None:
            self.flushes += 1

    mirror, stop = CountingMirror(), threading.Event()
    failed: list[BaseException] = []

    def mirroring() -> None:
        try:
            _run(mirror, stop, interval)  # type: ignore[arg-type]
        except BaseException as exc:
            failed.append(exc)

    thread = threading.Thread(target=mirroring)
    thread.start()
    thread.join(0.2)  # the real point: a thread waiting on its stop event
    assert thread.is_alive()
    assert failed == []
    stop.set()
    thread.join(20)
    assert not thread.is_alive()
    assert failed == []
    assert mirror.flushes == 0  # no timer: it flushes only before a fork and at exit
