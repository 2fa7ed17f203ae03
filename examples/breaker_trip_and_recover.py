"""A circuit breaker trips and recovers, in real time (under a second).

A fake payments service goes down: the breaker counts failures, opens, and from then on fails
calls fast with ``CircuitOpenError`` instead of waiting on a dead dependency. The service comes
back; once ``open_duration`` has passed the breaker half-opens, lets a few probe calls through,
and closes when they succeed.

Run it: ``python examples/breaker_trip_and_recover.py``
"""

from __future__ import annotations

import time

from seawall import BreakerEvent, CircuitBreaker, CircuitOpenError, CircuitState, StateChange

START = time.perf_counter()


def log(message: str) -> None:
    """Print with the time since start, to show what happens when."""
    print(f"[{(time.perf_counter() - START) * 1000:6.1f} ms] {message}")


class PaymentsService:
    """A stand-in for a remote dependency that can be switched down and up.

    While down, a call hangs for 50 ms (a connect timeout) before it fails: the cost a
    breaker saves its callers.
    """

    def __init__(self) -> None:
        self.healthy = True
        self.requests = 0  # how many calls actually reached the service

    def charge(self, amount: int) -> str:
        self.requests += 1
        if not self.healthy:
            time.sleep(0.05)
            raise ConnectionError("payments service unreachable")
        return f"receipt #{self.requests} for {amount}"


service = PaymentsService()

breaker = CircuitBreaker(
    name="payments",
    failure_ratio=0.5,  # open when half the calls in the window failed...
    minimum_calls=5,  # ...once the window holds at least 5 calls
    window_calls=10,  # the window: the last 10 calls
    open_duration=0.5,  # reject everything for 0.5 s, then probe
    half_open_calls=2,  # close again after 2 successful probes
)


@breaker.add_listener
def on_event(event: BreakerEvent) -> None:
    # Listeners also receive CallRejected and CallFailed events; this one shows transitions.
    if isinstance(event, StateChange):
        log(f"  >> breaker {event.name!r}: {event.from_state} -> {event.to_state}")


@breaker
def charge(amount: int) -> str:
    return service.charge(amount)


def attempt(amount: int) -> None:
    """One call through the breaker, printing its outcome and the breaker's state after it."""
    started = time.perf_counter()
    try:
        outcome = f"ok: {charge(amount)}"
    except CircuitOpenError as exc:
        outcome = f"REJECTED (CircuitOpenError, retry_after={exc.retry_after:.3f} s)"
    except ConnectionError as exc:
        outcome = f"failed: {exc}"
    took = (time.perf_counter() - started) * 1000
    log(f"charge({amount}) -> {outcome} in {took:.2f} ms  [state: {breaker.state}]")


def main() -> int:
    log("phase 1: the service is healthy")
    for amount in (10, 20, 30):
        attempt(amount)

    log("phase 2: the service goes down; failures fill the window until the ratio trips it")
    service.healthy = False
    for amount in (40, 50, 60):
        attempt(amount)  # the third failure makes 3 of 6 calls failed: ratio 0.5, open

    log("phase 3: open, calls fail fast without reaching the service")
    reached = service.requests
    for amount in (70, 80):
        attempt(amount)
    log(f"requests that reached the service while open: {service.requests - reached}")

    log("phase 4: the service recovers; the breaker stays open until open_duration passes")
    service.healthy = True
    try:
        charge(90)
    except CircuitOpenError as exc:
        log(f"still open; sleeping retry_after={exc.retry_after:.3f} s as the error suggests")
        time.sleep(exc.retry_after)

    log("phase 5: half-open, probes go through and their success closes the breaker")
    for amount in (100, 110, 120):
        attempt(amount)

    snap = breaker.snapshot()
    log(
        f"snapshot: state={snap.state} successes={snap.successes} failures={snap.failures} "
        f"rejected={snap.rejected} not_closed={snap.not_closed_seconds:.3f} s"
    )
    for (frm, to), count in snap.transitions.items():
        log(f"  transition {frm} -> {to}: {count}")
    return 0 if snap.state is CircuitState.CLOSED else 1


if __name__ == "__main__":
    raise SystemExit(main())
