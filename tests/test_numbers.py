"""Numbers a policy cannot work with are refused at construction, naming the parameter; the
extreme ones it can work with (an infinite wait, a very long sleep) work."""

from __future__ import annotations

import math
import threading
from typing import Any

import httpx
import pytest

import seawall
from seawall._clock import SystemClock
from seawall.httpx import ResilientTransport

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
