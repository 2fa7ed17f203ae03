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


def test_an_infinite_bulkhead_wait_waits_until_a_slot_is_free() -> None:
    bulkhead = seawall.Bulkhead(1, max_queue=1, max_wait=math.inf)
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
def test_a_template_timeout_too_long_for_a_socket_leaves_the_requests_timeouts(
    seconds: float,
) -> None:
    seen: list[dict[str, float | None]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(dict(request.extensions["timeout"]))
        return httpx.Response(200)

    template = seawall.Policy("far", total_timeout=seconds)
    transport = ResilientTransport(httpx.MockTransport(handler), policy=template)
    with httpx.Client(transport=transport, timeout=None) as client:
        assert client.get("http://far.test/").status_code == 200
    assert seen == [{"connect": None, "read": None, "write": None, "pool": None}]
