"""Model-based test of CircuitBreaker.

A hypothesis state machine drives a real breaker (on a FakeClock, with a seeded rng) and a small
reference model of the documented state machine with the same calls and clock steps, and
compares them after every step: state, admission or rejection (with ``retry_after``), lifetime
counts, window counts, transitions, open duration and time not closed.

Calls that stay in flight while other calls happen go through the async shell: the protected
function returns a :class:`Gate`, an awaitable that suspends once, and the test drives the
coroutine by hand (no event loop): the first ``send`` runs up to the gate, so the breaker has
admitted the call; a later ``send`` (success) or ``throw`` (an exception) completes it.

Waits are drawn in seconds, or as "until the model's next moment" (the open deadline, a probe's
timeout, the next bucket, the expiry of the oldest outcome in the window) so that the boundaries
are hit exactly, not only by chance.
"""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from seawall import CircuitBreaker, CircuitOpenError, CircuitState
from seawall.testing import FakeClock
from tests.helpers import Gate, resume

CLOSED = CircuitState.CLOSED
OPEN = CircuitState.OPEN
HALF_OPEN = CircuitState.HALF_OPEN
FORCED_OPEN = CircuitState.FORCED_OPEN
DISABLED = CircuitState.DISABLED
REFUSING = frozenset({OPEN, HALF_OPEN, FORCED_OPEN})
JITTER = 0.2
BUCKETS = 10
MAX_IN_FLIGHT = 4

# The ticket of a call admitted outside half-open; a probe's ticket is its half-open stretch.
OUTSIDE = -1


@dataclass(frozen=True)
class Config:
    window: float | None
    window_calls: int | None
    minimum_calls: int
    consecutive_failures: int | None
    consecutive_span: float
    failure_ratio: float
    half_open_calls: int
    open_duration: float
    max_open_duration: float
    half_open_timeout: float
    slow_call_duration: float | None
    slow_call_ratio: float
    failure_on: type[Exception]
    seed: int
    start: float


@st.composite
def configs(draw: st.DrawFn) -> Config:
    if draw(st.booleans()):
        window, window_calls = None, draw(st.integers(1, 5))
    else:
        seconds = st.sampled_from([1.25, 2.5, 5.0, 10.0]) | st.floats(0.05, 20.0)
        window, window_calls = draw(seconds), None
    open_duration = draw(st.sampled_from([0.5, 1.0, 2.0]) | st.floats(0.01, 10.0))
    ratio = st.sampled_from([0.25, 0.5, 2 / 3, 1.0]) | st.floats(0.0, 1.0, exclude_min=True)
    return Config(
        window=window,
        window_calls=window_calls,
        minimum_calls=draw(st.integers(1, 4)),
        consecutive_failures=draw(st.none() | st.integers(1, 5)),
        consecutive_span=draw(st.sampled_from([0.0, 0.25, 0.5, 1.0]) | st.floats(0.0, 5.0)),
        failure_ratio=draw(ratio),
        half_open_calls=draw(st.integers(1, 3)),
        open_duration=open_duration,
        max_open_duration=open_duration * draw(st.sampled_from([1, 1.5, 2, 3, 10])),
        half_open_timeout=draw(st.sampled_from([0.5, 1.0, 2.0, 5.0]) | st.floats(0.01, 20.0)),
        slow_call_duration=draw(st.none() | st.sampled_from([0.25, 1.0, 3.0])),
        slow_call_ratio=draw(st.sampled_from([0.5, 1.0]) | ratio),
        failure_on=draw(st.sampled_from([Exception, RuntimeError])),
        seed=draw(st.integers(0, 2**32 - 1)),
        start=draw(st.sampled_from([0.0, 7.3, 1e6])),
    )


class Model:
    """The documented semantics of the breaker, written out plainly."""

    def __init__(self, cfg: Config) -> None:
        self.cfg = cfg
        self.rng = random.Random(cfg.seed)
        self.state = CLOSED
        # Outcomes counted while closed: (bucket, failed, slow); the bucket is 0 for count windows.
        self.window: list[tuple[int, bool, bool]] = []
        self.nominal = self.duration = cfg.open_duration
        self.open_until = 0.0
        self.stretch = 0  # which half-open stretch this is (probes carry it as their ticket)
        self.probes: list[float] = []  # admission times of this stretch's probes in flight
        self.probe_successes = 0
        self.streak = 0  # failures in a row while closed, and when the first of them ended
        self.streak_start = 0.0
        self.successes = self.failures = self.ignored = self.rejected = self.slow_calls = 0
        self.transitions: Counter[tuple[CircuitState, CircuitState]] = Counter()
        self.not_closed = 0.0
        self.refusing_since: float | None = None

    # -- the window ----------------------------------------------------------------------------

    def bucket(self, now: float) -> int:
        if self.cfg.window is None:
            return 0
        return int(now // (self.cfg.window / BUCKETS))

    def window_counts(self, now: float) -> tuple[int, int, int]:
        if self.cfg.window_calls is not None:
            outcomes = self.window[-self.cfg.window_calls :]
        else:
            oldest = self.bucket(now) - (BUCKETS - 1)
            outcomes = [o for o in self.window if o[0] >= oldest]
        return (len(outcomes), sum(o[1] for o in outcomes), sum(o[2] for o in outcomes))

    def trips(self, now: float) -> bool:
        cfg = self.cfg
        minimum = cfg.minimum_calls
        if cfg.window_calls is not None:
            minimum = min(minimum, cfg.window_calls)
        calls, failures, slow = self.window_counts(now)
        return calls >= minimum and (
            failures / calls >= cfg.failure_ratio
            or (cfg.slow_call_duration is not None and slow / calls >= cfg.slow_call_ratio)
        )

    # -- transitions ---------------------------------------------------------------------------

    def streak_trips(self, now: float) -> bool:
        """A failure joins the streak; whether the streak is now long and wide enough."""
        if self.streak == 0:
            self.streak_start = now
        self.streak += 1
        needed = self.cfg.consecutive_failures
        return (
            needed is not None
            and self.streak >= needed
            and now - self.streak_start >= self.cfg.consecutive_span
        )

    def go(self, to: CircuitState, now: float, probe_admitted: float | None = None) -> None:
        frm = self.state
        if frm is to:
            return
        self.state = to
        self.streak = 0
        self.transitions[frm, to] += 1
        if to in REFUSING and self.refusing_since is None:
            self.refusing_since = now
        elif to not in REFUSING and self.refusing_since is not None:
            self.not_closed += now - self.refusing_since
            self.refusing_since = None
        if to is OPEN:
            if frm is HALF_OPEN:  # probing failed: jittered, longer if growth is configured
                self.nominal = min(self.cfg.max_open_duration, self.nominal * 2)
                self.duration = self.nominal * (1.0 + JITTER * self.rng.random())
                # The next probe goes open_duration after the failed one was let through.
                assert probe_admitted is not None
                self.open_until = max(now, probe_admitted + self.duration)
            else:
                self.nominal = self.duration = self.cfg.open_duration
                self.open_until = now + self.duration
            self.window.clear()
        elif to is HALF_OPEN:
            self.stretch += 1
            self.probes = []
            self.probe_successes = 0
        elif to is CLOSED:
            self.nominal = self.duration = self.cfg.open_duration
            self.window.clear()

    def tick(self, now: float) -> None:
        """The transitions that time alone makes, applied on admission and on reading."""
        if self.state is OPEN and now >= self.open_until:
            self.go(HALF_OPEN, now)
        elif self.state is HALF_OPEN and any(
            now - started >= self.cfg.half_open_timeout for started in self.probes
        ):
            self.go(OPEN, now, min(self.probes))  # a probe hung
            if now >= self.open_until:  # it was let through longer ago than the open duration
                self.go(HALF_OPEN, now)

    def reset(self, now: float) -> None:
        self.go(CLOSED, now)
        self.window.clear()
        self.nominal = self.duration = self.cfg.open_duration

    def moments(self, now: float) -> dict[str, float]:
        """The next moments at which time alone changes what the model says, by name."""
        found = {}
        if self.state is OPEN:
            found["deadline"] = self.open_until
        elif self.state is HALF_OPEN and self.probes:
            found["deadline"] = min(self.probes) + self.cfg.half_open_timeout
        if self.cfg.window is not None:
            width = self.cfg.window / BUCKETS
            found["next bucket"] = (self.bucket(now) + 1) * width
            live = [b for b, _, _ in self.window if b >= self.bucket(now) - (BUCKETS - 1)]
            if live:  # when the oldest outcome leaves the window, and a moment before
                found["expiry"] = (min(live) + BUCKETS) * width
                found["before expiry"] = found["expiry"] - width / 2
        return {name: moment for name, moment in found.items() if moment > now}

    # -- calls ---------------------------------------------------------------------------------

    def admit(self, now: float) -> tuple[int | None, float]:
        """``(ticket, 0.0)`` when the call is admitted, ``(None, retry_after)`` when rejected."""
        self.tick(now)
        if self.state in (CLOSED, DISABLED):
            return OUTSIDE, 0.0
        if self.state is HALF_OPEN and len(self.probes) + self.probe_successes < (
            self.cfg.half_open_calls
        ):
            self.probes.append(now)
            return self.stretch, 0.0
        self.rejected += 1
        return None, self.retry_after(now)

    def retry_after(self, now: float) -> float:
        if self.state is OPEN:
            return max(0.0, self.open_until - now)
        if self.state is HALF_OPEN:
            # Probes settle soon, or fail and the breaker refuses for about the open
            # duration; and never later than the oldest probe's timeout.
            oldest = min(self.probes, default=now)
            timeout_in = oldest + self.cfg.half_open_timeout - now
            return max(0.0, min(self.duration, timeout_in))
        return float("inf")

    def is_current_probe(self, ticket: int) -> bool:
        return self.state is HALF_OPEN and ticket == self.stretch

    def complete(self, ticket: int, kind: str, start: float, now: float) -> None:
        """An admitted call ended: ``kind`` is success, failure or ignored."""
        if kind == "ignored":
            self.ignored += 1
            if self.is_current_probe(ticket):
                self.probes.remove(start)  # the probe gives its slot back
            return
        failed = kind == "failure"
        slow = self.cfg.slow_call_duration is not None and now - start >= (
            self.cfg.slow_call_duration
        )
        self.failures += failed
        self.successes += not failed
        self.slow_calls += slow
        if ticket == OUTSIDE:
            if not failed:
                self.streak = 0  # any success ends a streak
            if self.state is CLOSED:
                self.window.append((self.bucket(now), failed, slow))
                if (failed and self.streak_trips(now)) or ((failed or slow) and self.trips(now)):
                    self.go(OPEN, now)
        elif self.is_current_probe(ticket):
            self.probes.remove(start)
            if failed or slow:
                self.go(OPEN, now, start)
            else:
                self.probe_successes += 1
                if self.probe_successes == self.cfg.half_open_calls:
                    self.go(CLOSED, now)

    def classify(self, outcome: str) -> str:
        if outcome in ("ignored", "cancelled"):
            return "ignored"
        if outcome == "other":  # a ValueError: a failure only if failure_on is Exception
            return "failure" if self.cfg.failure_on is Exception else "success"
        return outcome

    def snapshot(self, now: float) -> dict[str, Any]:
        self.tick(now)
        closed = self.state is CLOSED
        calls, failures, slow = self.window_counts(now) if closed else (0, 0, 0)
        not_closed = self.not_closed
        if self.refusing_since is not None:
            not_closed += now - self.refusing_since
        return {
            "state": self.state,
            "window": (calls, failures, slow),
            "lifetime": (
                self.successes,
                self.failures,
                self.ignored,
                self.rejected,
                self.slow_calls,
            ),
            "transitions": dict(self.transitions),
            "open_duration": self.duration,
            "retry_after": self.retry_after(now) if self.state in (OPEN, FORCED_OPEN) else None,
            "not_closed": not_closed,
        }


@dataclass
class InFlight:
    coro: Coroutine[Any, Any, str]
    ticket: int
    start: float


# Failures are listed twice, so that the breaker trips (and probes) more often.
OUTCOMES = ("success", "failure", "failure", "ignored", "other")
# How long to wait: seconds, or until one of the model's next moments (to hit boundaries exactly).
WAITS: st.SearchStrategy[float | str] = (
    st.just(0.0)
    | st.sampled_from(["deadline", "next bucket", "expiry", "before expiry"])
    | st.sampled_from([0.25, 0.5, 1.0, 2.0, 10.0])
    | st.floats(0.0, 30.0)
)
DURATIONS = st.just(0.0) | st.sampled_from([0.25, 0.5, 1.0, 3.0]) | st.floats(0.0, 5.0)


def exception_for(outcome: str) -> BaseException | None:
    return {
        "success": None,
        "failure": RuntimeError("down"),
        "ignored": KeyError("missing"),
        "other": ValueError("bad input"),
        "cancelled": asyncio.CancelledError(),
    }[outcome]


class BreakerMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.in_flight: list[InFlight] = []

    @initialize(cfg=configs())
    def build(self, cfg: Config) -> None:
        self.clock = FakeClock(start=cfg.start)
        self.breaker = CircuitBreaker(
            name="model",
            window=cfg.window,
            window_calls=cfg.window_calls,
            minimum_calls=cfg.minimum_calls,
            consecutive_failures=cfg.consecutive_failures,
            consecutive_span=cfg.consecutive_span,
            failure_ratio=cfg.failure_ratio,
            half_open_calls=cfg.half_open_calls,
            open_duration=cfg.open_duration,
            max_open_duration=cfg.max_open_duration,
            half_open_timeout=cfg.half_open_timeout,
            slow_call_duration=cfg.slow_call_duration,
            slow_call_ratio=cfg.slow_call_ratio,
            failure_on=cfg.failure_on,
            ignore_on=LookupError,
            clock=self.clock,
            rng=random.Random(cfg.seed),
        )
        self.model = Model(cfg)

    def now(self) -> float:
        return self.clock.monotonic()

    def wait(self, how: float | str) -> None:
        if isinstance(how, str):
            now = self.now()
            moment = self.model.moments(now).get(how)
            if moment is not None:
                self.clock.advance(moment - now)
        else:
            self.clock.advance(how)

    def check_rejection(self, ticket: int | None, retry_after: float, err: Exception) -> None:
        assert ticket is None, f"breaker rejected a call the model admits: {err}"
        assert isinstance(err, CircuitOpenError)
        assert err.retry_after == retry_after
        assert err.state == self.model.state.value

    # -- rules ---------------------------------------------------------------------------------

    @rule(wait=WAITS, outcome=st.sampled_from(OUTCOMES), duration=DURATIONS)
    def call(self, wait: float | str, outcome: str, duration: float) -> None:
        """A sync call, admitted after ``wait``, that takes ``duration`` (slow if long)."""
        self.wait(wait)
        start = self.now()
        ticket, retry_after = self.model.admit(start)
        exc = exception_for(outcome)

        def work() -> str:
            self.clock.advance(duration)
            if exc is not None:
                raise exc
            return "ok"

        result: str | None = None
        raised: BaseException | None = None
        try:
            result = self.breaker.call(work)
        except CircuitOpenError as err:
            self.check_rejection(ticket, retry_after, err)
            return
        except Exception as err:
            raised = err
        assert raised is exc
        assert result == (None if exc else "ok")
        assert ticket is not None, "breaker admitted a call the model rejects"
        self.model.complete(ticket, self.model.classify(outcome), start, self.now())

    @precondition(lambda self: len(self.in_flight) < MAX_IN_FLIGHT)
    @rule(
        wait=WAITS,
        count=st.integers(1, MAX_IN_FLIGHT),
        spacing=st.sampled_from([0.0, 0.25, 1.0]) | st.floats(0.0, 5.0),
    )
    def start_calls(self, wait: float | str, count: int, spacing: float) -> None:
        """``count`` async calls (or probes) arriving ``spacing`` seconds apart after ``wait``;
        those admitted stay in flight until ``finish_call``."""
        self.wait(wait)
        for i in range(min(count, MAX_IN_FLIGHT - len(self.in_flight))):
            if i:
                self.clock.advance(spacing)
            start = self.now()
            ticket, retry_after = self.model.admit(start)
            coro = self.breaker.acall(Gate)
            try:
                gate = coro.send(None)
            except CircuitOpenError as err:
                self.check_rejection(ticket, retry_after, err)
                continue
            assert isinstance(gate, Gate)
            assert ticket is not None, "breaker admitted a call the model rejects"
            self.in_flight.append(InFlight(coro, ticket, start))

    @precondition(lambda self: self.in_flight)
    @rule(
        data=st.data(),
        wait=WAITS,
        outcome=st.sampled_from((*OUTCOMES, "cancelled")),
    )
    def finish_call(self, data: st.DataObject, wait: float | str, outcome: str) -> None:
        index = data.draw(st.integers(0, len(self.in_flight) - 1), label="which")
        call = self.in_flight.pop(index)
        self.wait(wait)
        exc = exception_for(outcome)
        result, raised = resume(call.coro, exc)
        assert raised is exc
        assert result == (None if exc else "ok")
        self.model.complete(call.ticket, self.model.classify(outcome), call.start, self.now())

    @rule(seconds=WAITS)
    def advance_clock(self, seconds: float | str) -> None:
        self.wait(seconds)

    @rule(wait=WAITS)
    def read_state(self, wait: float | str) -> None:
        self.wait(wait)
        self.model.tick(self.now())
        assert self.breaker.state is self.model.state

    @rule(action=st.sampled_from(["isolate", "disable", "reset"]))
    def manual(self, action: str) -> None:
        """Manual control: one rule for the three, so that calls are drawn more often."""
        getattr(self.breaker, action)()
        now = self.now()
        if action == "isolate":
            self.model.go(FORCED_OPEN, now)
        elif action == "disable":
            self.model.go(DISABLED, now)
        else:
            self.model.reset(now)

    # -- the comparison ------------------------------------------------------------------------

    @invariant()
    def agrees_with_model(self) -> None:
        snap = self.breaker.snapshot()
        expected = self.model.snapshot(self.now())
        actual = {
            "state": snap.state,
            "window": (snap.window_calls, snap.window_failures, snap.window_slow_calls),
            "lifetime": (
                snap.successes,
                snap.failures,
                snap.ignored,
                snap.rejected,
                snap.slow_calls,
            ),
            "transitions": dict(snap.transitions),
            "open_duration": snap.open_duration,
            "retry_after": snap.retry_after,
            "not_closed": snap.not_closed_seconds,
        }
        assert actual == expected

    def teardown(self) -> None:
        for call in self.in_flight:
            call.coro.close()


BreakerMachine.TestCase.settings = settings(
    max_examples=250,
    stateful_step_count=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestBreakerModel = BreakerMachine.TestCase
