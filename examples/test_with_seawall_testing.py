"""Testing your own code that uses seawall, with ``seawall.testing``: no sleeping, no flakiness.

- ``FakeClock``: pass it as ``clock=``; time moves only when the test says ``clock.advance()``,
  so a breaker goes open -> half-open -> closed in microseconds.
- ``no_waits()``: every retry inside the block waits 0 s, even those of policies the code
  under test built itself (no clock to inject).
- ``force_open()`` / ``force_closed()``: put a breaker in a known state, to test your fallback
  path, or to start each test from a closed breaker.

Run it: ``pytest examples/test_with_seawall_testing.py``
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

import seawall
from seawall.testing import FakeClock, force_closed, force_open, no_waits

# -- the application code under test ---------------------------------------------------------
# In your project this lives in your package; the tests below import it.

payments = seawall.Policy(
    "payments",
    retry=seawall.Retry(on=ConnectionError, attempts=3),  # the default, exponential backoff
    breaker=seawall.CircuitBreaker(minimum_calls=10),
)


class Gateway:
    """A payments gateway stand-in: fails its first ``failures`` charges, then succeeds."""

    def __init__(self, failures: int = 0) -> None:
        self.failures = failures
        self.charges: list[str] = []

    def charge(self, order_id: str) -> str:
        self.charges.append(order_id)
        if len(self.charges) <= self.failures:
            raise ConnectionError("gateway unreachable")
        return f"receipt-{order_id}"


def checkout(gateway: Gateway, order_id: str) -> str:
    """Charge through the payments policy; while payments is refused, queue the order."""
    try:
        return payments.call(gateway.charge, order_id)
    except seawall.RejectedError:  # the breaker is open: the gateway was not called
        return "queued"


# -- the tests -------------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def payments_breaker_closed() -> Iterator[None]:
    """A module-level policy keeps its state from one test to the next: start each test with
    its breaker closed and its window empty, and leave it that way."""
    assert payments.breaker is not None
    with force_closed(payments.breaker):
        yield


def test_breaker_opens_half_opens_and_closes_without_sleeping() -> None:
    clock = FakeClock()
    breaker = seawall.CircuitBreaker(
        minimum_calls=2, window_calls=2, open_duration=5.0, half_open_calls=1, clock=clock
    )
    gateway = Gateway(failures=2)

    for order_id in ("o-1", "o-2"):
        with pytest.raises(ConnectionError):
            breaker.call(gateway.charge, order_id)
    assert breaker.state is seawall.CircuitState.OPEN

    with pytest.raises(seawall.CircuitOpenError) as rejected:
        breaker.call(gateway.charge, "o-3")
    assert rejected.value.retry_after == 5.0  # exact: the clock has not moved
    assert gateway.charges == ["o-1", "o-2"]  # the rejected call never reached the gateway

    clock.advance(4.9)
    assert breaker.state is seawall.CircuitState.OPEN
    clock.advance(0.1)  # open_duration has passed, and no time was slept
    assert breaker.state is seawall.CircuitState.HALF_OPEN

    assert breaker.call(gateway.charge, "o-4") == "receipt-o-4"  # the probe succeeds...
    assert breaker.state is seawall.CircuitState.CLOSED  # ...and closes the breaker


def test_retry_waits_are_recorded_by_a_fake_clock() -> None:
    clock = FakeClock()
    retry = seawall.Retry(on=ConnectionError, attempts=3, wait=0.5, clock=clock)

    assert retry.call(Gateway(failures=2).charge, "o-1") == "receipt-o-1"
    assert clock.sleeps == [0.5, 0.5]  # the waits it made, none of them real


def test_retries_are_instant_under_no_waits() -> None:
    gateway = Gateway(failures=2)
    started = time.perf_counter()
    with no_waits():  # `payments` has the real clock; its backoff would take 0.3 s or more
        assert checkout(gateway, "o-1") == "receipt-o-1"
    assert time.perf_counter() - started < 0.25
    assert gateway.charges == ["o-1", "o-1", "o-1"]  # 3 attempts all the same


def test_checkout_queues_the_order_while_payments_is_refused() -> None:
    assert payments.breaker is not None
    gateway = Gateway()
    with force_open(payments.breaker):  # every call rejected; closed again on exit
        assert checkout(gateway, "o-1") == "queued"
    assert gateway.charges == []  # the fallback did not touch the gateway
    assert checkout(gateway, "o-2") == "receipt-o-2"  # closed again after the block
