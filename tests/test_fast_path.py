"""Policy's fast path (seawall._fast) against the composed chain it stands in for.

A :class:`~seawall.Policy` whose parts are eligible runs the common call (let through at once,
successful at once) in one frame, and hands anything else over to its parts. That must be
observably identical to the same parts composed by a :class:`~seawall.Pipeline`, which never
takes the fast path. The differential tests drive the two with the same hypothesis-drawn
steps on two fake clocks and compare, after every step, the outcome and every reading of
every part (and what the metric observers were told); once through ``call``, once through
``acall`` (identical whether or not the async shell has a fast path of its own). The other
tests cover when the fast path is used, what it publishes and counts on its own, and its
counts under real threads.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import random
import sys
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

import pytest
import tenacity
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import seawall
from seawall import (
    Bulkhead,
    BulkheadFullError,
    CircuitBreaker,
    CircuitOpenError,
    Fallback,
    Pipeline,
    Policy,
    RejectedError,
    Retry,
    RetryBudget,
    Timeout,
    TimeoutExceededError,
    chaos,
)
from seawall._base import PolicyBase
from seawall._chaos import Injector
from seawall._deadline import current_deadline
from seawall._stats.observers import observers
from seawall.testing import FakeClock, force_open

#: How long a test waits on a thread before declaring it hung.
HANG = 20.0

PARTS = ("retry", "breaker", "timeout", "bulkhead")


class Flaky(Exception):
    """What the retry retries."""


class Fatal(Exception):
    """Not retried."""


class Abort(BaseException):
    """Not an Exception: like KeyboardInterrupt, nothing retries or judges it."""


def is_partial(shell: object) -> bool:
    return isinstance(shell, functools.partial)


def on_fast_path(policy: Policy) -> bool:
    return not is_partial(policy._sync_shell)


# -- the differential test -------------------------------------------------------------------


@dataclass(frozen=True)
class Config:
    parts: frozenset[str]
    start: float
    # retry
    attempts: int
    wait: float
    deadline: float | None
    stop_after: float | None
    retry_on: tuple[type[Exception], ...]
    budget: bool
    budget_ratio: float
    budget_min_per_second: float
    budget_window: float
    # breaker
    consecutive_failures: int | None
    consecutive_span: float
    minimum_calls: int
    failure_ratio: float
    window: float
    open_duration: float
    max_open_duration: float | None
    half_open_calls: int
    half_open_timeout: float
    ignore_fatal: bool
    failure_on_flaky: bool
    seed: int
    # attempt timeout and bulkhead
    timeout: float
    bulkhead: int
    # a fault injector innermost: none, disarmed (passed by) or armed (the composed way)
    chaos: str = "none"


@st.composite
def configs(draw: st.DrawFn) -> Config:
    return Config(
        parts=draw(st.sets(st.sampled_from(PARTS), min_size=2).map(frozenset)),
        start=draw(st.sampled_from([0.0, 3.7, 1e6])),
        attempts=draw(st.integers(1, 4)),
        wait=draw(st.sampled_from([0.0, 0.1, 1.0])),
        deadline=draw(st.none() | st.sampled_from([0.5, 3.0])),
        stop_after=draw(st.none() | st.just(2.0)),
        retry_on=draw(
            st.sampled_from(
                [
                    (Flaky,),
                    (Flaky, TimeoutExceededError),
                    (Flaky, TimeoutExceededError, RejectedError),
                ]
            )
        ),
        budget=draw(st.booleans()),
        budget_ratio=draw(st.sampled_from([0.2, 1.0])),
        budget_min_per_second=draw(st.sampled_from([0.1, 0.5, 10.0])),
        budget_window=draw(st.sampled_from([1.0, 10.0])),
        consecutive_failures=draw(st.none() | st.integers(1, 3)),
        consecutive_span=draw(st.sampled_from([0.0, 0.5])),
        minimum_calls=draw(st.integers(1, 3)),
        failure_ratio=draw(st.sampled_from([0.3, 0.5, 1.0])),
        window=draw(st.sampled_from([1.0, 5.0])),
        open_duration=draw(st.sampled_from([0.5, 2.0])),
        max_open_duration=draw(st.none() | st.just(4.0)),
        half_open_calls=draw(st.integers(1, 2)),
        half_open_timeout=draw(st.sampled_from([1.0, 30.0])),
        ignore_fatal=draw(st.booleans()),
        failure_on_flaky=draw(st.booleans()),
        seed=draw(st.integers(0, 2**32 - 1)),
        timeout=draw(st.sampled_from([0.25, 1.0, 2.5])),
        bulkhead=draw(st.integers(1, 2)),
        chaos=draw(st.sampled_from(["none", "none", "disarmed", "armed"])),
    )


@dataclass(frozen=True)
class Nested:
    """An attempt that makes a call through the same policy (its own script inside), after
    half its attempt timeout passes (``later``), and then raises what that call raised
    (``propagate``) or returns a description of it."""

    script: tuple[str, ...]
    propagate: bool
    later: bool


Action = str | Nested

#: What one attempt's function does (see System.act).
ACTIONS = (
    "return",
    "return",
    "flaky",
    "flaky",
    "fatal",
    "abort",
    "late_return",
    "late_raise",
    "edge_return",
    "timeout_error",
    "late_timeout_error",
)


@dataclass(frozen=True)
class Advance:
    seconds: float


@dataclass(frozen=True)
class Call:
    """One call; attempt ``i`` does ``script[i]`` (the last entry for any further attempt).
    ``how``: ``policy.call(fn)``, ``policy.call(fn, tag=...)``, a decorated ``fn``, or
    ``policy.call(fn)`` inside a 1 s Timeout (``enclosed``: sooner or later than the
    attempt timeout, or the same)."""

    script: tuple[Action, ...]
    how: str = "call"


Step = Advance | Call

actions = st.sampled_from(ACTIONS)
nested = st.builds(
    Nested, st.lists(actions, min_size=1, max_size=3).map(tuple), st.booleans(), st.booleans()
)
steps: st.SearchStrategy[Step] = st.one_of(
    st.builds(
        Advance,
        st.sampled_from([0.0, 0.1, 0.25, 0.5, 1.0, 2.0, 2.5, 5.0, 12.0])
        | st.floats(0.0, 12.0, allow_nan=False),
    ),
    st.builds(
        Call,
        st.lists(actions | nested, min_size=1, max_size=4).map(tuple),
        st.sampled_from(["call", "call", "keyword", "decorated", "enclosed"]),
    ),
    st.builds(Call, st.lists(actions, min_size=1, max_size=4).map(tuple)),
)


Outcome = tuple[Any, ...]


class Sink:
    """Where the observers installed by :func:`observing` record: the list of the system
    being stepped (both systems name everything "p", so their events compare as they are)."""

    def __init__(self) -> None:
        self.events: list[tuple[Any, ...]] | None = None

    def recorder(self, kind: str) -> Callable[..., None]:
        def record(*args: Any) -> None:
            if self.events is not None:
                self.events.append((kind, *args))

        return record


SINK = Sink()


@contextmanager
def observing() -> Iterator[None]:
    """Install recording observers (as an OpenTelemetry exporter installs its own)."""
    saved = (observers.call_duration, observers.retry_attempts, observers.bulkhead_wait)
    observers.call_duration = SINK.recorder("call_duration")
    observers.retry_attempts = SINK.recorder("retry_attempts")
    observers.bulkhead_wait = SINK.recorder("bulkhead_wait")
    try:
        yield
    finally:
        observers.call_duration, observers.retry_attempts, observers.bulkhead_wait = saved


def chained(exc: BaseException | None) -> tuple[type[BaseException], str] | None:
    if exc is None:
        return None
    return type(exc), str(exc)


def raised(exc: BaseException) -> Outcome:
    """An exception as the caller sees it: type, message, notes, and what it is chained to."""
    return (
        "raised",
        type(exc),
        str(exc),
        tuple(getattr(exc, "__notes__", ())),
        chained(exc.__cause__),
        chained(exc.__context__),
        exc.__suppress_context__,
    )


class System:
    """One Policy (``fast``) or one Pipeline of the same parts, on its own FakeClock."""

    def __init__(self, cfg: Config, *, fast: bool) -> None:
        self.cfg = cfg
        self.clock = clock = FakeClock(cfg.start)
        self.budget = (
            RetryBudget(
                cfg.budget_ratio,
                cfg.budget_min_per_second,
                window=cfg.budget_window,
                clock=clock,
            )
            if cfg.budget
            else None
        )
        self.retry = (
            Retry(
                on=cfg.retry_on,
                attempts=cfg.attempts,
                wait=cfg.wait,
                deadline=cfg.deadline,
                stop=None if cfg.stop_after is None else tenacity.stop_after_delay(cfg.stop_after),
                budget=self.budget,
                clock=clock,
            )
            if "retry" in cfg.parts
            else None
        )
        self.breaker = (
            CircuitBreaker(
                consecutive_failures=cfg.consecutive_failures,
                consecutive_span=cfg.consecutive_span,
                failure_ratio=cfg.failure_ratio,
                minimum_calls=cfg.minimum_calls,
                window=cfg.window,
                open_duration=cfg.open_duration,
                max_open_duration=cfg.max_open_duration,
                half_open_calls=cfg.half_open_calls,
                half_open_timeout=cfg.half_open_timeout,
                failure_on=(Flaky, TimeoutExceededError) if cfg.failure_on_flaky else Exception,
                ignore_on=Fatal if cfg.ignore_fatal else None,
                rng=random.Random(cfg.seed),
                clock=clock,
            )
            if "breaker" in cfg.parts
            else None
        )
        self.timeout = Timeout(cfg.timeout, clock=clock) if "timeout" in cfg.parts else None
        self.bulkhead = Bulkhead(cfg.bulkhead, clock=clock) if "bulkhead" in cfg.parts else None
        self.chaos = (
            None
            if cfg.chaos == "none"
            else chaos.inject(
                # Flaky: retried and a breaker failure; the latency may pass the deadline.
                chaos.Error(Flaky, rate=0.3),
                chaos.Latency(0.1, up_to=0.4, rate=0.5),
                enabled=cfg.chaos == "armed",
                seed=cfg.seed,
                clock=clock,
            )
        )
        self.policy: PolicyBase
        if fast:
            policy = Policy(
                "p",
                retry=self.retry,
                breaker=self.breaker,
                attempt_timeout=self.timeout,
                bulkhead=self.bulkhead,
                chaos=self.chaos,
                clock=clock,
            )
            assert on_fast_path(policy)
            self.policy = policy
        else:
            parts = [self.retry, self.breaker, self.timeout, self.bulkhead, self.chaos]
            self.policy = Pipeline(*[p for p in parts if p is not None], name="p", clock=clock)
        #: What each attempt saw inside: the deadline left, the bulkhead's active calls.
        self.inside: list[tuple[float | None, int | None]] = []
        #: What the observers were told.
        self.events: list[tuple[Any, ...]] = []

    # -- the functions called through the policy ----------------------------------------------

    def function(self, script: tuple[Action, ...]) -> Callable[..., Any]:
        attempt = 0

        def fn(*, tag: str = "") -> Any:
            nonlocal attempt
            action = script[min(attempt, len(script) - 1)]
            attempt += 1
            active = None if self.bulkhead is None else self.bulkhead.active
            self.inside.append((seawall.remaining(), active))
            return (tag, self.act(action, attempt))

        return fn

    def afunction(self, script: tuple[Action, ...]) -> Callable[..., Awaitable[Any]]:
        """:meth:`function` for the async shell."""
        attempt = 0

        async def afn(*, tag: str = "") -> Any:
            nonlocal attempt
            action = script[min(attempt, len(script) - 1)]
            attempt += 1
            active = None if self.bulkhead is None else self.bulkhead.active
            self.inside.append((seawall.remaining(), active))
            if isinstance(action, Nested):
                if action.later:
                    self.clock.advance(self.cfg.timeout / 2)
                try:
                    inner = await self.policy.acall(self.afunction(action.script))
                except Exception as exc:
                    return (tag, self.inner_raised(action, exc))
                return (tag, f"inner returned {inner}")
            return (tag, self.act(action, attempt))

        return afn

    def inner_raised(self, action: Nested, exc: Exception) -> str:
        if action.propagate:
            raise exc
        return f"inner raised {type(exc).__name__}: {exc}"

    def act(self, action: Action, attempt: int) -> Any:
        late = self.cfg.timeout + 0.5
        if isinstance(action, Nested):
            if action.later:  # then the inner attempt's own deadline is after this one's
                self.clock.advance(self.cfg.timeout / 2)
            try:
                inner = self.policy.call(self.function(action.script))
            except Exception as exc:
                return self.inner_raised(action, exc)
            return f"inner returned {inner}"
        if action == "return":
            return f"ok {attempt}"
        if action == "flaky":
            raise Flaky(f"flaky {attempt}")
        if action == "fatal":
            raise Fatal(f"fatal {attempt}")
        if action == "abort":
            raise Abort(f"abort {attempt}")
        if action == "late_return":
            self.clock.advance(late)
            return f"late {attempt}"
        if action == "edge_return":  # exactly at the deadline: still in time
            self.clock.advance(self.cfg.timeout)
            return f"edge {attempt}"
        if action == "late_raise":
            self.clock.advance(late)
            raise Flaky(f"late flaky {attempt}")
        if action == "timeout_error":
            raise TimeoutExceededError("inside", 1.0)
        assert action == "late_timeout_error"
        self.clock.advance(late)
        raise TimeoutExceededError("inside", 1.0)

    # -- steps and readings -------------------------------------------------------------------

    def step(self, step: Step) -> Outcome | None:
        if isinstance(step, Advance):
            self.clock.advance(step.seconds)
            return None
        fn = self.function(step.script)
        SINK.events = self.events
        try:
            if step.how == "decorated":
                decorated: Callable[[], Any] = self.policy(fn)
                result = decorated()
            elif step.how == "keyword":
                result = self.policy.call(fn, tag="keyword")
            elif step.how == "enclosed":
                outer = Timeout(1.0, name="outer", clock=self.clock)
                result = (outer.call(self.policy.call, fn), outer._counts.as_dict())
            else:
                result = self.policy.call(fn)
        except (Exception, Abort) as exc:
            return self.settled(raised(exc))
        finally:
            SINK.events = None
        return self.settled(("returned", result))

    async def astep(self, step: Step) -> Outcome | None:
        """:meth:`step` through the async shell."""
        if isinstance(step, Advance):
            self.clock.advance(step.seconds)
            return None
        afn = self.afunction(step.script)
        SINK.events = self.events
        try:
            if step.how == "decorated":
                result = await self.policy(afn)()
            elif step.how == "keyword":
                result = await self.policy.acall(afn, tag="keyword")
            elif step.how == "enclosed":
                outer = Timeout(1.0, name="outer", clock=self.clock)
                result = (await outer.acall(self.policy.acall, afn), outer._counts.as_dict())
            else:
                result = await self.policy.acall(afn)
        except (Exception, Abort) as exc:
            return self.settled(raised(exc))
        finally:
            SINK.events = None
        return self.settled(("returned", result))

    def settled(self, outcome: Outcome) -> Outcome:
        # Nothing leaks out of a call: no deadline, no slot.
        assert seawall.remaining() is None
        if self.bulkhead is not None:
            assert self.bulkhead.active == 0
            assert self.bulkhead.queued == 0
        return outcome

    def readings(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "now": self.clock.monotonic(),
            "sleeps": list(self.clock.sleeps),
            "stats": self.policy.stats.read(),
            "inside": list(self.inside),
            "events": list(self.events),
        }
        if self.breaker is not None:
            snapshot = self.breaker.snapshot()
            out["breaker"] = (snapshot, dict(snapshot.transitions))
        if self.bulkhead is not None:
            out["bulkhead"] = self.bulkhead.snapshot()
        if self.retry is not None:
            out["retry"] = self.retry.snapshot()
        if self.timeout is not None:
            out["timeout"] = self.timeout._counts.as_dict()
        if self.budget is not None:
            out["budget"] = self.budget.snapshot()
        if self.chaos is not None:
            out["chaos"] = self.chaos.snapshot()
        return out


def assert_same_readings(fast: System, composed: System) -> None:
    mine, theirs = fast.readings(), composed.readings()
    assert mine.keys() == theirs.keys()
    for key in mine:
        assert mine[key] == theirs[key], key


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cfg=configs(), script=st.lists(steps, min_size=1, max_size=30), every_step=st.booleans())
def test_fast_path_matches_the_composed_chain(
    cfg: Config, script: list[Step], every_step: bool
) -> None:
    fast, composed = System(cfg, fast=True), System(cfg, fast=False)
    with observing():
        for step in script:
            assert fast.step(step) == composed.step(step), step
            # Reading a breaker or budget rolls its window; some runs only read at the end.
            if every_step:
                assert_same_readings(fast, composed)
    assert_same_readings(fast, composed)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cfg=configs(), script=st.lists(steps, min_size=1, max_size=30), every_step=st.booleans())
def test_the_async_shell_matches_the_composed_chain(
    cfg: Config, script: list[Step], every_step: bool
) -> None:
    """The same through ``acall``: whether or not the Policy's async shell has a fast path
    of its own, it must be what the composed parts do. (Nothing here waits for real, so no
    timeout expires: async timeouts are measured on the event loop's clock.)"""
    fast, composed = System(cfg, fast=True), System(cfg, fast=False)

    async def main() -> None:
        for step in script:
            assert await fast.astep(step) == await composed.astep(step), step
            if every_step:
                assert_same_readings(fast, composed)

    with observing():
        asyncio.run(main())
    assert_same_readings(fast, composed)


# -- eligibility -----------------------------------------------------------------------------


def retry_on(clock: FakeClock, **kwargs: Any) -> Retry:
    return Retry(on=Flaky, attempts=3, wait=0, clock=clock, **kwargs)


def eligible_policies(clock: FakeClock) -> dict[str, Policy]:
    return {
        "all four": Policy(
            "p",
            retry=retry_on(clock, budget=RetryBudget(clock=clock)),
            breaker=CircuitBreaker(clock=clock),
            attempt_timeout=Timeout(1, clock=clock),
            bulkhead=Bulkhead(2, clock=clock),
        ),
        "retry, breaker": Policy("p", retry=retry_on(clock), breaker=CircuitBreaker(clock=clock)),
        "breaker, timeout": Policy(
            "p", breaker=CircuitBreaker(clock=clock), attempt_timeout=Timeout(1, clock=clock)
        ),
        "timeout, bulkhead": Policy("p", attempt_timeout=Timeout(1, clock=clock), bulkhead=3),
        "retry, bulkhead": Policy("p", retry=retry_on(clock), bulkhead=Bulkhead(1)),
        "breaker on its own bulkhead clock": Policy(
            "p", breaker=CircuitBreaker(clock=clock), bulkhead=Bulkhead(1, clock=FakeClock())
        ),
        "parts on the policy's clock": Policy(
            "p",
            retry=Retry(on=Flaky, attempts=3, wait=0, budget=RetryBudget()),
            breaker=True,
            attempt_timeout=1,
            bulkhead=2,
            clock=clock,
        ),
    }


def ineligible_policies(clock: FakeClock) -> dict[str, Policy]:
    other = FakeClock()
    return {
        "fallback": Policy(
            "p",
            fallback=Fallback("fallback", on=Fatal),
            retry=retry_on(clock),
            breaker=CircuitBreaker(clock=clock),
        ),
        "a single part": Policy("p", breaker=CircuitBreaker(clock=clock)),
        "a single retry": Policy("p", retry=retry_on(clock)),
        "parts on different clocks": Policy(
            "p", retry=retry_on(clock), breaker=CircuitBreaker(clock=other)
        ),
        "a budget on another clock": Policy(
            "p",
            retry=retry_on(clock, budget=RetryBudget(clock=other)),
            breaker=CircuitBreaker(clock=clock),
        ),
        "a timeout on the system clock": Policy(
            "p", breaker=CircuitBreaker(clock=clock), attempt_timeout=1.0
        ),
        "retry_result": Policy(
            "p",
            retry=retry_on(clock, retry_result=lambda result: result is None),
            breaker=CircuitBreaker(clock=clock),
        ),
        "window_calls": Policy(
            "p", retry=retry_on(clock), breaker=CircuitBreaker(window_calls=10, clock=clock)
        ),
        "slow_call_duration": Policy(
            "p", retry=retry_on(clock), breaker=CircuitBreaker(slow_call_duration=1, clock=clock)
        ),
        "failure_result": Policy(
            "p",
            retry=retry_on(clock),
            breaker=CircuitBreaker(failure_result=lambda result: False, clock=clock),
        ),
    }


def double(x: int) -> int:
    return x * 2


def keyword_only(*, y: int) -> int:
    return y


@pytest.mark.parametrize("case", list(eligible_policies(FakeClock())))
def test_eligible_policies_take_the_fast_path(case: str) -> None:
    policy = eligible_policies(FakeClock())[case]
    assert on_fast_path(policy)
    assert policy._raw_call() is policy._sync_shell  # decorated functions use it too
    assert policy.call(lambda: "ok") == "ok"
    assert policy(double)(21) == 42
    assert policy.call(keyword_only, y=5) == 5


@pytest.mark.parametrize("case", list(ineligible_policies(FakeClock())))
def test_ineligible_policies_go_the_composed_way_and_still_work(case: str) -> None:
    policy = ineligible_policies(FakeClock())[case]
    assert is_partial(policy._sync_shell)
    assert policy.call(lambda: "ok") == "ok"
    assert policy(double)(21) == 42


# -- what the fast path itself does -----------------------------------------------------------


@dataclass
class Stack:
    """The four parts of a fast-path Policy on one FakeClock."""

    clock: FakeClock
    budget: RetryBudget
    retry: Retry
    breaker: CircuitBreaker
    timeout: Timeout
    bulkhead: Bulkhead
    policy: PolicyBase


def stack(
    *,
    seconds: float = 2.5,
    slots: int = 1,
    fast: bool = True,
    on: tuple[type[Exception], ...] = (Flaky,),
) -> Stack:
    clock = FakeClock()
    budget = RetryBudget(clock=clock)
    retry = Retry(on=on, attempts=3, wait=0, budget=budget, clock=clock)
    breaker = CircuitBreaker(clock=clock)
    timeout = Timeout(seconds, clock=clock)
    bulkhead = Bulkhead(slots, clock=clock)
    policy: PolicyBase
    if fast:
        policy = Policy(
            "p",
            retry=retry,
            breaker=breaker,
            attempt_timeout=timeout,
            bulkhead=bulkhead,
            clock=clock,
        )
        assert on_fast_path(policy)
    else:
        policy = Pipeline(retry, breaker, timeout, bulkhead, name="p", clock=clock)
    return Stack(clock, budget, retry, breaker, timeout, bulkhead, policy)


def counts(s: Stack) -> dict[str, Any]:
    """Every part's counts (what the tests below expect deltas of)."""
    breaker = s.breaker.snapshot()
    bulkhead = s.bulkhead.snapshot()
    retry = s.retry.snapshot()
    budget = s.budget.snapshot()
    stats = s.policy.stats.read()
    return {
        "breaker": (breaker.successes, breaker.failures, breaker.ignored, breaker.rejected),
        "bulkhead": (bulkhead.admitted, bulkhead.rejected, bulkhead.active, bulkhead.queued),
        "timeout": s.timeout._counts.as_dict(),
        "retry": (dict(retry.calls), retry.attempts_total, retry.budget_exhausted),
        "budget": (budget.calls, budget.window_calls, budget.retries, budget.refused),
        "successes": sum(stats.durations["success"][0]),
        "errors": stats.errors,
    }


FAILED_NONE = {("failure", False): 0, ("failure", True): 0}
NOT_RETRIED_FAILURE = {
    ("success", False): 0,
    ("success", True): 0,
    ("failure", False): 1,
    ("failure", True): 0,
}


def caller_file(frame: FrameType | None) -> str:
    """The file of the code that called the function running in ``frame``."""
    assert frame is not None
    assert frame.f_back is not None
    return Path(frame.f_back.f_code.co_filename).name


def test_a_success_counts_exactly_once_in_each_part() -> None:
    s = stack()
    callers: list[str] = []

    def fn() -> str:
        callers.append(caller_file(sys._getframe()))
        return "ok"

    assert s.policy.call(fn) == "ok"
    assert callers == ["_fast.py"]  # run by the fast path itself, in its one frame
    assert counts(s) == {
        "breaker": (1, 0, 0, 0),
        "bulkhead": (1, 0, 0, 0),
        "timeout": {"success": 1, "failure": 0, "timeout": 0, "cancelled": 0},
        "retry": ({("success", False): 1, ("success", True): 0, **FAILED_NONE}, 1, 0),
        "budget": (1, 1, 0, 0),
        "successes": 1,
        "errors": {},
    }
    retry = s.retry.snapshot()
    assert retry.attempt_buckets[0] == 1
    assert sum(retry.attempt_buckets) == 1
    assert s.breaker.snapshot().window_calls == 1


def test_a_failed_first_attempt_is_retried_through_the_composed_parts() -> None:
    s = stack()
    callers: list[str] = []

    def fn() -> str:
        callers.append(caller_file(sys._getframe()))
        if len(callers) == 1:
            raise Flaky("once")
        return "ok"

    assert s.policy.call(fn) == "ok"
    assert callers == ["_fast.py", "_bulkhead.py"]
    assert counts(s)["breaker"] == (1, 1, 0, 0)
    assert counts(s)["bulkhead"] == (2, 0, 0, 0)
    assert counts(s)["timeout"] == {"success": 1, "failure": 1, "timeout": 0, "cancelled": 0}
    assert counts(s)["retry"] == (
        {("success", False): 0, ("success", True): 1, **FAILED_NONE},
        2,
        0,
    )
    assert counts(s)["budget"] == (1, 1, 1, 0)


def test_the_attempt_deadline_is_published_inside_and_gone_after() -> None:
    s = stack(seconds=2.5)
    seen: list[float | None] = []

    def fn() -> str:
        seen.append(seawall.remaining())
        deadline = current_deadline()
        assert deadline is not None
        assert deadline.owner is s.timeout
        s.clock.advance(1.0)
        seen.append(seawall.remaining())
        return "ok"

    assert seawall.remaining() is None
    assert s.policy.call(fn) == "ok"
    assert seen == [2.5, 1.5]
    assert seawall.remaining() is None
    assert current_deadline() is None


@pytest.mark.parametrize("outcome", ["raise", "late", "abort"])
def test_the_deadline_is_gone_after_a_call_that_fails(outcome: str) -> None:
    s = stack(seconds=1.0)

    def fn() -> str:
        if outcome == "raise":
            raise Fatal("no")
        if outcome == "abort":
            raise Abort("stop")
        s.clock.advance(2.0)
        return "late"

    with pytest.raises((Fatal, Abort, TimeoutExceededError)):
        s.policy.call(fn)
    assert seawall.remaining() is None
    assert s.bulkhead.active == 0


def test_an_enclosing_sooner_deadline_stays_in_force_inside() -> None:
    s = stack(seconds=2.5, slots=2)
    outer = Timeout(1.0, clock=s.clock)
    seen: list[tuple[float | None, object]] = []

    def fn() -> str:
        deadline = current_deadline()
        seen.append((seawall.remaining(), None if deadline is None else deadline.owner))
        return "inner"

    def around() -> str:
        result = s.policy.call(fn)
        # The enclosing deadline is back as it was.
        deadline = current_deadline()
        seen.append((seawall.remaining(), None if deadline is None else deadline.owner))
        return result

    assert outer.call(around) == "inner"
    assert seen == [(1.0, outer), (1.0, outer)]
    assert seawall.remaining() is None
    assert s.timeout._counts.as_dict()["success"] == 1


def test_an_enclosing_later_deadline_gives_way_to_the_attempt_timeout() -> None:
    s = stack(seconds=2.5)
    outer = Timeout(10.0, clock=s.clock)
    seen: list[float | None] = []

    def fn() -> str:
        seen.append(seawall.remaining())
        return "inner"

    assert outer.call(lambda: (s.policy.call(fn), seawall.remaining())) == ("inner", 10.0)
    assert seen == [2.5]


@pytest.mark.parametrize("fast", [True, False], ids=["fast", "composed"])
def test_a_forced_open_breaker_rejects_without_calling(fast: bool) -> None:
    s = stack(fast=fast)
    called: list[str] = []
    before = counts(s)
    with force_open(s.breaker), pytest.raises(CircuitOpenError):
        s.policy.call(lambda: called.append("called"))
    assert called == []
    after = counts(s)
    assert after["breaker"] == (0, 0, 0, 1)
    assert after["bulkhead"] == before["bulkhead"]
    assert after["timeout"] == before["timeout"]  # the timeout is inside the breaker
    assert after["retry"] == (NOT_RETRIED_FAILURE, 1, 0)
    assert after["budget"] == (1, 1, 0, 0)
    assert after["successes"] == 0
    assert after["errors"] == {("rejected", "CircuitOpenError"): 1}
    # Closed again on leaving the block: the next call takes the fast path.
    assert s.policy.call(lambda: "ok") == "ok"
    assert counts(s)["breaker"] == (1, 0, 0, 1)


@pytest.mark.parametrize("fast", [True, False], ids=["fast", "composed"])
def test_a_full_bulkhead_refuses_and_nothing_else_is_counted(fast: bool) -> None:
    s = stack(seconds=60.0, slots=1, fast=fast)
    entered, release = threading.Event(), threading.Event()
    held: list[object] = []

    def hold() -> str:
        entered.set()
        assert release.wait(HANG)
        return "held"

    thread = threading.Thread(target=lambda: held.append(s.policy.call(hold)), daemon=True)
    thread.start()
    try:
        assert entered.wait(HANG)
        before = counts(s)
        # The held call so far: admitted, and counted in the budget (it deposits on entry).
        assert before == {
            "breaker": (0, 0, 0, 0),
            "bulkhead": (1, 0, 1, 0),
            "timeout": {"success": 0, "failure": 0, "timeout": 0, "cancelled": 0},
            "retry": ({("success", False): 0, ("success", True): 0, **FAILED_NONE}, 0, 0),
            "budget": (1, 1, 0, 0),
            "successes": 0,
            "errors": {},
        }
        called: list[str] = []
        with pytest.raises(BulkheadFullError):
            s.policy.call(lambda: called.append("called"))
        assert called == []
        after = counts(s)
    finally:
        release.set()
        thread.join(HANG)
    assert held == ["held"]
    # The refusal itself, as each part sees it; no success and no admission anywhere.
    assert after["bulkhead"] == (1, 1, 1, 0)
    assert after["breaker"] == (0, 0, 1, 0)  # a refusal on this side is ignored
    assert after["timeout"] == {"success": 0, "failure": 1, "timeout": 0, "cancelled": 0}
    assert after["retry"] == (NOT_RETRIED_FAILURE, 1, 0)
    assert after["budget"] == (2, 2, 0, 0)  # the refused call deposited too
    assert after["successes"] == 0
    assert after["errors"] == {("rejected", "BulkheadFullError"): 1}
    # Then the held call's success, counted once.
    final = counts(s)
    assert final["bulkhead"] == (1, 1, 0, 0)
    assert final["breaker"] == (1, 0, 1, 0)
    assert final["timeout"]["success"] == 1
    assert final["successes"] == 1


# A retried attempt is made as the composed Retry makes it: outside the handler of the first
# attempt's exception, so it does not run "during handling" of it, and what it raises is not
# chained to it. (The fast path once made further attempts from inside that handler.)


@pytest.mark.parametrize("fast", [True, False], ids=["fast", "composed"])
def test_a_retried_attempt_runs_outside_the_first_attempt_s_handler(fast: bool) -> None:
    s = stack(fast=fast)
    handling: list[BaseException | None] = []

    def fn() -> str:
        handling.append(sys.exception())
        raise Flaky(f"attempt {len(handling)}")

    with pytest.raises(Flaky) as info:
        s.policy.call(fn)
    assert str(info.value) == "attempt 3"
    assert handling == [None, None, None]
    assert info.value.__context__ is None


@pytest.mark.parametrize("fast", [True, False], ids=["fast", "composed"])
def test_a_retried_async_attempt_runs_outside_the_first_attempt_s_handler(fast: bool) -> None:
    s = stack(fast=fast)
    handling: list[BaseException | None] = []

    async def fn() -> str:
        handling.append(sys.exception())
        raise Flaky(f"attempt {len(handling)}")

    with pytest.raises(Flaky) as info:
        asyncio.run(s.policy.acall(fn))
    assert str(info.value) == "attempt 3"
    assert handling == [None, None, None]
    assert info.value.__context__ is None


@pytest.mark.parametrize("kind", ["sync", "async"])
@pytest.mark.parametrize(
    "fast",
    [
        True,
        False,
    ],
    ids=["fast", "composed"],
)
def test_a_refusal_by_a_full_bulkhead_is_not_chained_to_an_internal_error(
    fast: bool, kind: str
) -> None:
    s = stack(slots=1, fast=fast)
    refused: list[BaseException] = []

    def outer() -> str:  # holds the one slot while it calls again
        try:
            s.policy.call(lambda: "inner")
        except BulkheadFullError as exc:
            refused.append(exc)
        return "outer"

    async def aouter() -> str:
        async def inner() -> str:
            return "inner"

        try:
            await s.policy.acall(inner)
        except BulkheadFullError as exc:
            refused.append(exc)
        return "outer"

    if kind == "sync":
        assert s.policy.call(outer) == "outer"
    else:
        assert asyncio.run(s.policy.acall(aouter)) == "outer"
    [exc] = refused
    assert (exc.__cause__, exc.__context__) == (None, None)


@pytest.mark.parametrize(
    "fast",
    [
        True,
        False,
    ],
    ids=["fast", "composed"],
)
def test_a_call_that_queued_for_a_slot_runs_outside_any_handler(fast: bool) -> None:
    clock = FakeClock()
    retry = Retry(on=Flaky, wait=0, clock=clock)
    bulkhead = Bulkhead(1, max_queue=1, max_wait=HANG, clock=clock)
    policy: PolicyBase
    if fast:
        policy = Policy("p", retry=retry, bulkhead=bulkhead, clock=clock)
        assert on_fast_path(policy)
    else:
        policy = Pipeline(retry, bulkhead, name="p", clock=clock)
    entered, release = threading.Event(), threading.Event()
    handling: list[BaseException | None] = []
    results: list[object] = []

    def hold() -> str:
        entered.set()
        assert release.wait(HANG)
        return "held"

    def queued() -> str:
        handling.append(sys.exception())
        return "queued"

    holder = threading.Thread(target=lambda: results.append(policy.call(hold)), daemon=True)
    holder.start()
    assert entered.wait(HANG)
    waiter = threading.Thread(target=lambda: results.append(policy.call(queued)), daemon=True)
    waiter.start()
    for _ in range(int(HANG / 0.001)):  # until it waits in the queue
        if bulkhead.queued:
            break
        time.sleep(0.001)
    assert bulkhead.queued == 1
    release.set()
    holder.join(HANG)
    waiter.join(HANG)
    assert sorted(map(str, results)) == ["held", "queued"]
    assert handling == [None]


def describe(exc: BaseException) -> tuple[object, ...]:
    """An exception and how it is chained."""
    cause, context = exc.__cause__, exc.__context__
    return (
        type(exc),
        str(exc),
        None if cause is None else type(cause),
        None if context is None else type(context),
        exc.__suppress_context__,
    )


@pytest.mark.parametrize("retried", [True, False], ids=["retried", "not-retried"])
def test_an_async_attempt_cut_short_by_its_timeout_matches_the_composed_chain(
    retried: bool,
) -> None:
    """Async timeouts cancel on the event loop's clock: a simulated loop's here, so the cut
    comes at exactly 0.02 s of its time (durations and deadlines stay on the FakeClock)."""
    from tests.helpers import run_simulated

    on = (Flaky, TimeoutExceededError) if retried else (Flaky,)

    def run(fast: bool) -> tuple[object, float, list[float | None], dict[str, Any]]:
        s = stack(seconds=0.02, fast=fast, on=on)
        attempts: list[float | None] = []

        async def fn() -> str:
            attempts.append(seawall.remaining())
            if len(attempts) == 1:
                await asyncio.sleep(HANG)  # cut short by the attempt timeout
            return "ok"

        async def main() -> tuple[object, float]:
            try:
                outcome: object = await s.policy.acall(fn)
            except TimeoutExceededError as exc:
                outcome = describe(exc)
            return outcome, asyncio.get_running_loop().time()

        outcome, ended = run_simulated(main)
        assert seawall.remaining() is None
        return outcome, ended, attempts, counts(s)

    mine = run(fast=True)
    assert mine == run(fast=False)
    outcome, ended, attempts, final = mine
    assert ended == 0.02  # the first attempt cut at its timeout; a retry returns at once
    assert attempts == ([0.02, 0.02] if retried else [0.02])
    assert final["timeout"]["timeout"] == 1
    assert final["breaker"][1] == 1  # the timeout counts as the breaker's failure
    assert final["bulkhead"][2] == 0
    if not retried:
        assert outcome == (
            TimeoutExceededError,
            "'p' exceeded its timeout of 0.02s",
            TimeoutError,
            TimeoutError,
            True,
        )


# -- concurrency --------------------------------------------------------------------------------

THREADS = 16
CALLS = 300


@pytest.fixture
def busy_switching() -> Iterator[None]:
    """Switch threads every 10 µs rather than 5 ms, so that calls overlap and queue in the
    bulkhead (at the default interval they barely do)."""
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)
    try:
        yield
    finally:
        sys.setswitchinterval(interval)


@pytest.mark.usefixtures("busy_switching")
def test_counts_are_exact_under_threads() -> None:
    budget = RetryBudget(ratio=1.0, min_per_second=1000.0)  # never refuses here
    retry = Retry(on=Flaky, attempts=3, wait=0, budget=budget)
    # It cannot open: no run of 100 failures without a success in between is possible.
    breaker = CircuitBreaker(failure_ratio=1.0, minimum_calls=100)
    timeout = Timeout(10.0)
    bulkhead = Bulkhead(4, max_queue=100, max_wait=10.0)
    policy = Policy(
        "threads", retry=retry, breaker=breaker, attempt_timeout=timeout, bulkhead=bulkhead
    )
    assert on_fast_path(policy)

    def failing(times: int, value: int) -> Callable[[], int]:
        """Fails ``times`` times with Flaky, then returns ``value``."""
        left = times

        def fn() -> int:
            nonlocal left
            if left:
                left -= 1
                raise Flaky(value)
            return value

        return fn

    # Call j of each thread fails j % 4 - 1 times (0, 0, 1, 2): every call succeeds.
    failures = [max(0, j % 4 - 1) for j in range(CALLS)]
    results: list[list[object]] = [[] for _ in range(THREADS)]
    barrier = threading.Barrier(THREADS)

    def worker(index: int) -> None:
        barrier.wait(HANG)
        for j in range(CALLS):
            try:
                results[index].append(policy.call(failing(failures[j], index * CALLS + j)))
            except Exception as exc:  # recorded, so the assertion below shows it
                results[index].append(exc)

    threads = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(HANG)
    assert not any(thread.is_alive() for thread in threads)

    assert results == [[i * CALLS + j for j in range(CALLS)] for i in range(THREADS)]
    calls = THREADS * CALLS
    retried = THREADS * sum(1 for f in failures if f)
    failed_attempts = THREADS * sum(failures)
    attempts = calls + failed_attempts

    b = bulkhead.snapshot()
    assert (b.admitted, b.rejected, b.active, b.queued) == (attempts, 0, 0, 0)
    c = breaker.snapshot()
    assert (c.successes, c.failures, c.ignored, c.rejected) == (calls, failed_attempts, 0, 0)
    assert c.state == "closed"
    assert dict(c.transitions) == {}
    r = retry.snapshot()
    assert r.calls == {
        ("success", False): calls - retried,
        ("success", True): retried,
        ("failure", False): 0,
        ("failure", True): 0,
    }
    assert r.attempts_total == attempts
    assert r.retries == failed_attempts
    ones, twos, threes = (THREADS * failures.count(n) for n in (0, 1, 2))
    assert r.attempt_buckets[:3] == (ones, twos, threes)
    assert sum(r.attempt_buckets) == calls
    assert r.budget_exhausted == 0
    assert timeout._counts.as_dict() == {
        "success": calls,
        "failure": failed_attempts,
        "timeout": 0,
        "cancelled": 0,
    }
    g = budget.snapshot()
    assert (g.calls, g.retries, g.refused) == (calls, failed_attempts, 0)
    stats = policy.stats.read()
    assert sum(stats.durations["success"][0]) == calls
    assert stats.errors == {}


# -- found by review: what the composed parts do inside an exception's handler -------------------


class RecorderDown(Exception):
    pass


def _pair(fast: bool, **parts: Any) -> PolicyBase:
    """``Policy`` (the fast path) or the ``Pipeline`` of the same parts, in Policy order."""
    if fast:
        policy = Policy("p", **parts)
        assert not isinstance(policy._sync_shell, functools.partial)
        return policy
    order = ("retry", "breaker", "attempt_timeout", "bulkhead")
    return Pipeline(*(parts[name] for name in order if name in parts), name="p")


@pytest.mark.parametrize("fast", [True, False], ids=["fast", "composed"])
def test_a_failing_wait_recorder_is_the_attempt_s_error(fast: bool) -> None:
    # Where the bulkhead's shell reports an admission: inside the attempt's deadline, so the
    # timeout, the breaker and the retry judge a recorder's error like the call's own.
    clock = FakeClock()
    budget = RetryBudget(clock=clock)
    retry = Retry(on=Exception, attempts=3, wait=0, budget=budget, clock=clock)
    breaker = CircuitBreaker(minimum_calls=1, clock=clock)
    timeout = Timeout(1.0, clock=clock)
    bulkhead = Bulkhead(2)
    policy = _pair(fast, retry=retry, breaker=breaker, attempt_timeout=timeout, bulkhead=bulkhead)
    inside: list[float | None] = []

    def recorder(name: str, seconds: float) -> None:
        inside.append(seawall.remaining())
        raise RecorderDown("exporter broke")

    saved, observers.bulkhead_wait = observers.bulkhead_wait, recorder
    try:
        # Retried once, into the breaker it opened: the caller gets the attempt's own error.
        with pytest.raises(RecorderDown):
            policy.call(lambda: "ok")
    finally:
        observers.bulkhead_wait = saved
    assert inside == [1.0]
    assert breaker.snapshot().failures == 1
    assert timeout._counts.as_dict() == {"success": 0, "failure": 1, "timeout": 0, "cancelled": 0}
    assert (budget.snapshot().calls, budget.snapshot().retries) == (1, 1)
    assert {k: v for k, v in retry.snapshot().calls.items() if v} == {("failure", True): 1}
    assert (bulkhead.snapshot().admitted, bulkhead.active) == (1, 0)


class Inner(Exception):
    pass


class Outer(Exception):
    pass


class Callers(Exception):
    pass


def raise_outer_from_inner() -> None:
    try:
        raise Inner("root cause")
    except Inner:
        raise Outer("what fn raised")  # noqa: B904 - chained implicitly, on purpose


@pytest.mark.parametrize("fast", [True, False], ids=["fast", "composed"])
@pytest.mark.parametrize("with_retry", [False, True], ids=["no retry", "retry"])
def test_an_error_keeps_its_own_context_inside_a_caller_s_handler(
    fast: bool, with_retry: bool
) -> None:
    clock = FakeClock()
    parts: dict[str, Any] = {
        "breaker": CircuitBreaker(clock=clock),
        "attempt_timeout": Timeout(1, clock=clock),
        "bulkhead": Bulkhead(2),
    }
    if with_retry:
        parts["retry"] = Retry(on=Inner, clock=clock)  # Outer is not retried
    policy = _pair(fast, **parts)
    seen_in_listener: list[BaseException | None] = []
    parts["breaker"].add_listener(lambda event: seen_in_listener.append(sys.exc_info()[1]))
    try:
        raise Callers("the caller is handling this")
    except Callers:
        with pytest.raises(Outer) as caught:
            policy.call(raise_outer_from_inner)
    assert isinstance(caught.value.__context__, Inner)
    assert [type(exc) for exc in seen_in_listener] == [Outer]  # judged in its handler


@pytest.mark.parametrize("fast", [True, False], ids=["fast", "composed"])
def test_tenacity_sees_the_retried_call_as_the_composed_retry_does(fast: bool) -> None:
    clock = FakeClock()
    seen: list[tuple[str, int]] = []

    def wait(state: Any) -> float:
        seen.append((state.fn.__name__, len(state.args)))
        return 0.0

    attempts = iter([Flaky("first"), None])

    def flaky() -> str:
        error = next(attempts)
        if error is not None:
            raise error
        return "ok"

    policy = _pair(
        fast,
        retry=Retry(on=Flaky, wait=wait, clock=clock),
        breaker=CircuitBreaker(clock=clock),
        attempt_timeout=Timeout(1, clock=clock),
    )
    assert policy.call(flaky) == "ok"
    assert seen == [("_call", 2)]  # the breaker's raw shell, handed the timeout's and fn


# -- async timeouts on simulated time ----------------------------------------------------------
#
# The differential test above runs on fake clocks, where no async timeout ever fires. Here the
# parts' clock is a simulated loop's own time, so the attempt and total timeouts cancel for
# real: a Policy (whose fast path folds the total timeout in behind the attempt's) against the
# same parts composed by a Pipeline, attempt by attempt, including callees that swallow their
# cancellation and return late or go on, and cancellations from outside.


@dataclass(frozen=True)
class TimedAttempt:
    seconds: int  # how long the callee works before it acts
    act: str  # "return", "flaky", "fatal"
    swallow: str  # what it does with a cancellation: "no" (lets it out), "return", "go_on"


@dataclass(frozen=True)
class TimedCase:
    attempt_timeout: int
    total_timeout: int
    attempts: int
    wait: int
    breaker: bool
    bulkhead: bool
    script: tuple[TimedAttempt, ...]
    cancel_at: int | None


timed_cases = st.builds(
    TimedCase,
    attempt_timeout=st.integers(1, 4),
    total_timeout=st.integers(1, 12),
    attempts=st.integers(1, 3),
    wait=st.integers(0, 2),
    breaker=st.booleans(),
    bulkhead=st.booleans(),
    script=st.lists(
        st.builds(
            TimedAttempt,
            seconds=st.integers(0, 14),
            act=st.sampled_from(["return", "flaky", "fatal"]),
            swallow=st.sampled_from(["no", "return", "go_on"]),
        ),
        min_size=1,
        max_size=3,
    ).map(tuple),
    cancel_at=st.none() | st.integers(0, 20),
)


def run_timed(case: TimedCase, *, fast: bool) -> tuple[Any, ...]:
    from tests.helpers import LoopClock, run_simulated

    async def main() -> tuple[Any, ...]:
        loop = asyncio.get_running_loop()
        clock = LoopClock(loop)
        total = Timeout(case.total_timeout, name="total", clock=clock)
        attempt = Timeout(case.attempt_timeout, name="attempt", clock=clock)
        retry = Retry(
            on=(Flaky, TimeoutExceededError), attempts=case.attempts, wait=case.wait, clock=clock
        )
        breaker = CircuitBreaker(clock=clock) if case.breaker else None
        bulkhead = Bulkhead(2, clock=clock) if case.bulkhead else None
        policy: PolicyBase
        if fast:
            policy = Policy(
                "p",
                total_timeout=total,
                retry=retry,
                breaker=breaker,
                attempt_timeout=attempt,
                bulkhead=bulkhead,
                clock=clock,
            )
            # Folded in, unless the attempt timeout is as long as the total.
            assert is_partial(policy._async_shell) == (case.attempt_timeout == case.total_timeout)
        else:
            parts = [total, retry, breaker, attempt, bulkhead]
            policy = Pipeline(*[p for p in parts if p is not None], name="p", clock=clock)
        made = 0
        seen: list[tuple[float, float | None]] = []

        async def fn() -> str:
            nonlocal made
            step = case.script[min(made, len(case.script) - 1)]
            made += 1
            seen.append((loop.time(), seawall.remaining()))
            try:
                await asyncio.sleep(step.seconds)
            except asyncio.CancelledError:
                if step.swallow == "no":
                    raise
                if step.swallow == "go_on":
                    await asyncio.sleep(step.seconds)
                return f"late {made}"
            if step.act == "flaky":
                raise Flaky(f"flaky {made}")
            if step.act == "fatal":
                raise Fatal(f"fatal {made}")
            return f"ok {made}"

        async def call() -> Any:
            try:
                return await policy.acall(fn)
            except BaseException as exc:
                return describe(exc)

        task = asyncio.create_task(call())
        if case.cancel_at is not None:
            loop.call_at(case.cancel_at, task.cancel)
        try:
            outcome = await task
        except asyncio.CancelledError:
            outcome = "cancelled before the call"
        snapshot_retry = retry.snapshot()
        return (
            outcome,
            loop.time(),
            seen,
            total._counts.as_dict(),
            attempt._counts.as_dict(),
            (dict(snapshot_retry.calls), snapshot_retry.attempts_total),
            None if breaker is None else breaker.snapshot(),
            None if bulkhead is None else bulkhead.snapshot(),
            policy.stats.read(),
        )

    return run_simulated(main)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(timed_cases)
def test_async_timeouts_on_simulated_time_match_the_composed_chain(case: TimedCase) -> None:
    if case.attempt_timeout > case.total_timeout:
        return  # refused by Policy (the attempt timeout could never act)
    assert run_timed(case, fast=True) == run_timed(case, fast=False)


def test_a_policy_with_both_timeouts_folds_the_total_into_its_async_fast_path() -> None:
    clock = FakeClock()
    policy = Policy(
        "p",
        total_timeout=Timeout(10, clock=clock),
        retry=retry_on(clock),
        attempt_timeout=Timeout(1, clock=clock),
        clock=clock,
    )
    assert not is_partial(policy._async_shell)  # one frame, the total's shell not around it
    # Sync: the total's shell around the fast path.
    assert is_partial(policy._sync_shell)
    assert policy._sync_shell.func == policy.total_timeout._call  # type: ignore[union-attr]
    assert not is_partial(policy._sync_shell.args[0])
    for total_seconds, clock_of_total in ((1, clock), (10, FakeClock())):
        other = Policy(
            "q",
            total_timeout=Timeout(total_seconds, clock=clock_of_total),
            retry=retry_on(clock),
            attempt_timeout=Timeout(1, clock=clock),
        )
        assert is_partial(other._async_shell)  # equal seconds or another clock: not folded


# -- the contract: what the differential test draws, what the fast path may read ---------------

#: Every constructor parameter of the parts the fast path stands in for, drawn by ``configs()``
#: (and passed by ``System``) ...
DRAWN: dict[type, set[str]] = {
    Retry: {"on", "attempts", "wait", "stop", "deadline", "budget", "clock"},
    CircuitBreaker: {
        "consecutive_failures",
        "consecutive_span",
        "failure_ratio",
        "minimum_calls",
        "window",
        "failure_on",
        "ignore_on",
        "open_duration",
        "max_open_duration",
        "half_open_calls",
        "half_open_timeout",
        "clock",
        "rng",
    },
    Timeout: {"seconds", "clock"},
    Bulkhead: {"max_concurrent", "clock"},
    RetryBudget: {"ratio", "min_per_second", "window", "clock"},
    Injector: {"faults", "enabled", "seed", "clock"},
}
#: ... or listed here with the reason it is not. A new parameter fails the test below until
#: someone decides which.
NOT_DRAWN: dict[tuple[type, str], str] = {
    (Retry, "name"): "names label series; the differential test compares counts by part",
    (Retry, "retry_result"): "a retry that judges results is ineligible (ineligible_policies)",
    (CircuitBreaker, "name"): "names label series; the differential test compares counts",
    (CircuitBreaker, "window_calls"): "a count window takes the lock: ineligible",
    (CircuitBreaker, "slow_call_duration"): "slow calls take the lock: ineligible",
    (CircuitBreaker, "slow_call_ratio"): "acts only with slow_call_duration (ineligible)",
    (CircuitBreaker, "failure_result"): "judging results takes the lock: ineligible",
    (CircuitBreaker, "shared"): (
        "sharing adds nothing to a success: the shared state moves the breaker between calls, "
        "through the same transitions (tests/test_redis.py)"
    ),
    (Timeout, "name"): "names label series; the differential test compares counts",
    (Bulkhead, "name"): "names label series; the differential test compares counts",
    (Bulkhead, "max_queue"): (
        "a queued call waits for another thread's release, which the single-threaded steps "
        "cannot give; the fast path leaves a queue to the bulkhead's own shell, tested by "
        "test_a_call_that_queued_for_a_slot_runs_outside_any_handler and the thread test"
    ),
    (Bulkhead, "max_wait"): "acts only with max_queue (see there)",
    (Injector, "name"): "names label series; the differential test compares counts",
    (Injector, "_shape"): "the transports' (requests, not functions): not a Policy part's",
}


@pytest.mark.parametrize("part", list(DRAWN), ids=lambda part: part.__name__)
def test_every_constructor_parameter_is_drawn_or_excluded_with_a_reason(part: type) -> None:
    parameters = set(inspect.signature(part).parameters)
    excluded = {name for (kind, name) in NOT_DRAWN if kind is part}
    assert not DRAWN[part] & excluded
    assert parameters == DRAWN[part] | excluded, (
        f"{part.__name__}: draw it in configs() or list it in NOT_DRAWN with a reason: "
        f"{sorted(parameters - DRAWN[part] - excluded)}"
    )


def test_the_fast_path_reads_no_private_attribute_but_through_views() -> None:
    """Each part's view (``_fast_view``) is all the fast path may use of it: ``_fast.py`` reads
    no private attribute of any object, but the seawall modules it imports."""
    import ast

    import seawall._fast

    source = Path(seawall._fast.__file__).read_text()
    tree = ast.parse(source)
    modules = {
        alias.asname or alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and node.module == "seawall"
        for alias in node.names
    }
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Attribute):
            continue
        name = node.attr
        if not name.startswith("_") or name.startswith("__") or name == "_fast_view":
            continue
        if isinstance(node.value, ast.Name) and node.value.id in modules:
            continue  # a module's own function (seawall._deadline.publish, ...)
        found.append(f"line {node.lineno}: {ast.unparse(node)}")
    assert modules == {"_deadline", "_loop_timeouts"}
    assert not found, "private reads outside the views:\n" + "\n".join(found)


@pytest.mark.parametrize("total", [None, 10.0], ids=["attempt timeout", "both timeouts"])
def test_outside_a_task_the_fast_path_counts_what_the_composed_parts_count(
    total: float | None,
) -> None:
    """An async timeout needs a task (as asyncio.timeout): a coroutine driven by hand (trio
    through a bridge, a test) gets the RuntimeError, and every part counts what it counts
    when composed; nothing is admitted or deposited on the fast path first."""

    def run(fast: bool) -> tuple[Any, ...]:
        budget = RetryBudget()
        retry = Retry(on=Flaky, attempts=2, wait=0, budget=budget)
        breaker = CircuitBreaker()
        attempt = Timeout(1.0, name="attempt")
        bulkhead = Bulkhead(2)
        total_timeout = None if total is None else Timeout(total, name="total")
        if fast:
            policy: PolicyBase = Policy(
                "p",
                total_timeout=total_timeout,
                retry=retry,
                breaker=breaker,
                attempt_timeout=attempt,
                bulkhead=bulkhead,
            )
        else:
            parts = [total_timeout, retry, breaker, attempt, bulkhead]
            policy = Pipeline(*[p for p in parts if p is not None], name="p")

        async def fn() -> str:
            return "ok"

        coro = policy.acall(fn)
        with pytest.raises(RuntimeError) as raised:
            coro.send(None)
        snapshot = retry.snapshot()
        return (
            str(raised.value),
            budget.snapshot(),
            (dict(snapshot.calls), snapshot.attempts_total),
            breaker.snapshot(),
            bulkhead.snapshot(),
            attempt._counts.as_dict(),
            None if total_timeout is None else total_timeout._counts.as_dict(),
        )

    assert run(fast=True) == run(fast=False)
