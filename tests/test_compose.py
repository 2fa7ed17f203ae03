"""Composition: Pipeline (outermost first, itself a policy) and Policy (the recommended order).

Every behaviour runs through the sync shell (``call`` / sync decorated functions) and the
async one (``acall`` / coroutine functions), via the ``shell`` parameter.
"""

from __future__ import annotations

import asyncio
import functools
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import pytest
from helpers import Boom

import seawall
from seawall import (
    Bulkhead,
    CircuitBreaker,
    CircuitOpenError,
    Fallback,
    Pipeline,
    Policy,
    Retry,
    Timeout,
    TimeoutExceededError,
)
from seawall._base import PolicyBase
from seawall.testing import FakeClock, Simulation

R = TypeVar("R")


class Recorder(PolicyBase):
    """A policy that only records entering and leaving, and through which shell."""

    def __init__(self, label: str, log: list[str], *, name: str | None = None) -> None:
        super().__init__(name=name, clock=None)
        self.label = label
        self.log = log
        self.shells: list[str] = []

    def _call(self, fn: Callable[..., R], /, *args: Any) -> R:
        self.shells.append("sync")
        self.log.append(f"{self.label}>")
        try:
            return fn(*args)
        finally:
            self.log.append(f"<{self.label}")

    async def _acall(self, fn: Callable[..., Awaitable[R]], /, *args: Any) -> R:
        self.shells.append("async")
        self.log.append(f"{self.label}>")
        try:
            return await fn(*args)
        finally:
            self.log.append(f"<{self.label}")

    def __repr__(self) -> str:
        return f"Recorder({self.label!r}, name={self.name!r})"


@pytest.fixture(params=["sync", "async"])
def shell(request: pytest.FixtureRequest) -> str:
    kind: str = request.param
    return kind


def as_async(fn: Callable[..., Any]) -> Callable[..., Awaitable[Any]]:
    """A coroutine function doing what ``fn`` does, under the same name."""

    @functools.wraps(fn)
    async def run(*args: Any, **kwargs: Any) -> Any:
        await asyncio.sleep(0)
        return fn(*args, **kwargs)

    return run


def through(kind: str, policy: PolicyBase, fn: Callable[..., Any], *args: Any, **kw: Any) -> Any:
    """``policy.call(fn, ...)`` or ``asyncio.run(policy.acall(async twin of fn, ...))``."""
    if kind == "sync":
        return policy.call(fn, *args, **kw)
    return asyncio.run(policy.acall(as_async(fn), *args, **kw))


def decorate(kind: str, policy: PolicyBase, fn: Callable[..., Any]) -> Callable[..., Any]:
    """``policy(fn)``, or ``policy(async twin of fn)`` run to completion on each call."""
    if kind == "sync":
        return policy(fn)
    decorated = policy(as_async(fn))

    @functools.wraps(decorated)
    def run(*args: Any, **kwargs: Any) -> Any:
        return asyncio.run(decorated(*args, **kwargs))

    return run


def flaky(failures: int, result: object = "ok") -> tuple[Callable[[], object], list[float | None]]:
    """A function failing ``failures`` times with Boom, then returning ``result``; the list
    records ``seawall.remaining()`` at each attempt."""
    seen: list[float | None] = []

    def fn() -> object:
        seen.append(seawall.remaining())
        if len(seen) <= failures:
            raise Boom(len(seen))
        return result

    return fn, seen


# -- Pipeline -------------------------------------------------------------------------------------


def test_pipeline_runs_outermost_first(shell: str) -> None:
    log: list[str] = []
    parts = [Recorder(label, log) for label in "abc"]
    pipeline = Pipeline(*parts)

    def work(x: int, *, y: int) -> int:
        log.append("work")
        return x + y

    assert through(shell, pipeline, work, 1, y=2) == 3
    assert log == ["a>", "b>", "c>", "work", "<c", "<b", "<a"]
    assert [part.shells for part in parts] == [[shell]] * 3


def test_pipeline_unwinds_in_reverse_when_the_call_fails(shell: str) -> None:
    log: list[str] = []
    pipeline = Pipeline(Recorder("a", log), Recorder("b", log))
    error = Boom("x")

    def fail() -> None:
        log.append("fail")
        raise error

    with pytest.raises(Boom) as info:
        through(shell, pipeline, fail)
    assert info.value is error
    assert log == ["a>", "b>", "fail", "<b", "<a"]


def test_pipeline_decorates_sync_and_async_functions(shell: str) -> None:
    log: list[str] = []
    pipeline = Pipeline(Recorder("a", log), Recorder("b", log))

    def greet(name: str, *, punct: str = "!") -> str:
        log.append("greet")
        return f"hi {name}{punct}"

    guarded = decorate(shell, pipeline, greet)
    assert guarded("ann", punct="?") == "hi ann?"
    assert guarded("bob") == "hi bob!"
    assert log == ["a>", "b>", "greet", "<b", "<a"] * 2
    assert guarded.__name__ == "greet"
    assert pipeline.name == greet.__qualname__


@pytest.mark.parametrize("nesting", ["(ab)c", "a(bc)", "((a)(b)(c))"])
def test_pipelines_nest(shell: str, nesting: str) -> None:
    log: list[str] = []
    a, b, c = (Recorder(label, log) for label in "abc")
    pipeline = {
        "(ab)c": Pipeline(Pipeline(a, b), c),
        "a(bc)": Pipeline(a, Pipeline(b, c)),
        "((a)(b)(c))": Pipeline(Pipeline(Pipeline(a), Pipeline(b), Pipeline(c))),
    }[nesting]
    assert isinstance(pipeline, PolicyBase)

    def work() -> str:
        log.append("work")
        return "done"

    assert through(shell, pipeline, work) == "done"
    assert log == ["a>", "b>", "c>", "work", "<c", "<b", "<a"]


def test_pipeline_order_decides_what_wraps_what(shell: str) -> None:
    clock = FakeClock()

    # Fallback outside the retry: three attempts, then the fallback value.
    fn, seen = flaky(failures=10)
    retry = Retry(on=Boom, attempts=3, wait=0.25, clock=clock)
    outer_fallback = Pipeline(Fallback("fallback", on=Boom), retry)
    assert through(shell, outer_fallback, fn) == "fallback"
    assert len(seen) == 3
    assert clock.sleeps == [0.25, 0.25]

    # Fallback inside the retry: the first attempt already "succeeds" with the fallback.
    fn, seen = flaky(failures=10)
    inner_fallback = Pipeline(
        Retry(on=Boom, attempts=3, wait=0.25, clock=clock), Fallback(0, on=Boom)
    )
    assert through(shell, inner_fallback, fn) == 0
    assert len(seen) == 1
    assert clock.sleeps == [0.25, 0.25]


def test_pipeline_members_take_its_name_unless_named() -> None:
    log: list[str] = []
    anonymous = Recorder("a", log)
    named = Recorder("b", log, name="explicit")
    pipeline = Pipeline(anonymous, named, name="pipe")
    assert pipeline.name == "pipe"
    assert anonymous.name == "pipe"
    assert named.name == "explicit"
    assert repr(pipeline) == (
        "Pipeline(Recorder('a', name='pipe'), Recorder('b', name='explicit'), name='pipe')"
    )


def test_unnamed_pipeline_and_members_take_the_decorated_functions_name() -> None:
    log: list[str] = []
    member = Recorder("a", log)
    timeout = Timeout(5)
    pipeline = Pipeline(member, timeout)

    @pipeline
    def load() -> str:
        return "loaded"

    assert load() == "loaded"
    assert pipeline.name == member.name == timeout.name == load.__qualname__
    assert repr(pipeline) == (
        f"Pipeline(Recorder('a', name={load.__qualname__!r}), "
        f"Timeout(5, name={load.__qualname__!r}), name={load.__qualname__!r})"
    )


def test_pipeline_needs_policies() -> None:
    with pytest.raises(ValueError, match=r"^policies: a Pipeline needs at least one policy$"):
        Pipeline()
    with pytest.raises(TypeError, match=r"^policies must be seawall policies, got 'x'$"):
        Pipeline("x")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"^policies must be seawall policies, got 3$"):
        Pipeline(Timeout(1), 3)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"^name must be a str"):
        Pipeline(Timeout(1), name=3)  # type: ignore[arg-type]


# -- Policy: the order ----------------------------------------------------------------------------


def test_policy_builds_the_recommended_order_whatever_the_keyword_order() -> None:
    fallback = Fallback(None, on=Boom)
    total = Timeout(10)
    retry = Retry(on=Boom)
    breaker = CircuitBreaker()
    attempt = Timeout(1)
    bulkhead = Bulkhead(4)
    policy = Policy(
        "svc",
        bulkhead=bulkhead,
        attempt_timeout=attempt,
        breaker=breaker,
        retry=retry,
        total_timeout=total,
        fallback=fallback,
    )
    assert policy.policies == (fallback, total, retry, breaker, attempt, bulkhead)
    assert [policy.fallback, policy.total_timeout, policy.retry] == [fallback, total, retry]
    assert [policy.breaker, policy.attempt_timeout, policy.bulkhead] == [breaker, attempt, bulkhead]
    assert isinstance(policy, Pipeline)


def test_policy_leaves_out_the_parts_not_given() -> None:
    retry = Retry(on=Boom)
    bulkhead = Bulkhead(2)
    policy = Policy("svc", bulkhead=bulkhead, retry=retry)
    assert policy.policies == (retry, bulkhead)
    assert policy.fallback is policy.total_timeout is policy.breaker is None
    assert policy.attempt_timeout is None


def test_every_retry_attempt_passes_through_the_breaker(shell: str) -> None:
    clock = FakeClock()
    total = Timeout(10, clock=clock)
    retry = Retry(on=Boom, attempts=3, wait=0.5, clock=clock)
    breaker = CircuitBreaker(clock=clock)
    attempt = Timeout(2, clock=clock)
    bulkhead = Bulkhead(1)
    policy = Policy(
        "svc",
        total_timeout=total,
        retry=retry,
        breaker=breaker,
        attempt_timeout=attempt,
        bulkhead=bulkhead,
    )
    fn, seen = flaky(failures=2)

    assert through(shell, policy, fn) == "ok"
    # Each attempt saw the attempt timeout's deadline (sooner than what is left of the total).
    assert seen == [2.0, 2.0, 2.0]
    assert clock.sleeps == [0.5, 0.5]
    snap = breaker.snapshot()
    assert (snap.failures, snap.successes, snap.rejected, snap.calls) == (2, 1, 0, 3)
    assert bulkhead.snapshot().admitted == 3
    assert attempt._counts.as_dict() == {"success": 1, "failure": 2, "timeout": 0, "cancelled": 0}
    assert total._counts.as_dict() == {"success": 1, "failure": 0, "timeout": 0, "cancelled": 0}
    retry_snap = retry.snapshot()
    assert retry_snap.calls[("success", True)] == 1
    assert retry_snap.attempts_total == 3


def test_the_total_timeout_is_one_deadline_across_all_retries(shell: str) -> None:
    clock = FakeClock()
    retry = Retry(on=Boom, attempts=5, wait=0.5, clock=clock)
    policy = Policy("svc", total_timeout=Timeout(1, clock=clock), retry=retry)
    fn, seen = flaky(failures=10)

    with pytest.raises(Boom) as info:
        through(shell, policy, fn)
    # 1 s in total: one wait of 0.5 s fits, the next would reach the deadline.
    assert seen == [1.0, 0.5]
    assert clock.sleeps == [0.5]
    assert info.value.args == (2,)
    [note] = info.value.__notes__
    assert note.startswith("seawall: retry 'svc' gave up after 2 attempts over 0.5s (")


def test_an_isolated_breaker_inside_a_retry_rejects_once_without_sleeping(shell: str) -> None:
    clock = FakeClock()
    breaker = CircuitBreaker(clock=clock)
    breaker.isolate()
    retry = Retry(on=Exception, clock=clock)
    policy = Policy("svc", retry=retry, breaker=breaker)
    calls: list[str] = []

    with pytest.raises(CircuitOpenError) as info:
        through(shell, policy, calls.append, "attempt")
    assert calls == []
    assert clock.sleeps == []
    assert breaker.snapshot().rejected == 1
    assert breaker.snapshot().calls == 1
    assert info.value.name == "svc"
    # Not retried blindly: the retry gave up on the rejection at once (the note's wording
    # after "rejected" belongs to test_retry).
    [note] = info.value.__notes__
    assert note.startswith(
        "seawall: retry 'svc' gave up after 1 attempt (0 made, 1 refused: CircuitOpenError) "
        "over 0s (rejected"
    )
    assert retry.snapshot().calls[("failure", False)] == 1


def test_a_breaker_that_opens_during_the_retries_leaves_the_caller_the_real_failure(
    shell: str,
) -> None:
    clock = FakeClock()
    breaker = CircuitBreaker(
        clock=clock, consecutive_failures=None, minimum_calls=2, window_calls=2
    )
    policy = Policy(
        "svc", retry=Retry(on=ConnectionError, attempts=3, clock=clock), breaker=breaker
    )
    made: list[int] = []

    def pay() -> None:
        made.append(1)
        raise ConnectionError(f"refused {len(made)}")

    with pytest.raises(ConnectionError) as info:
        through(shell, policy, pay)
    # Two attempts reached the dependency, the third was refused: the caller gets what the
    # dependency said, and the note says what happened to each attempt.
    assert made == [1, 1]
    assert info.value.args == ("refused 2",)
    [note] = info.value.__notes__
    assert note.startswith(
        "seawall: retry 'svc' gave up after 3 attempts (2 made, 1 refused: CircuitOpenError) "
    )
    assert breaker.state is seawall.CircuitState.OPEN
    reading = policy.stats.read()
    assert reading.errors == {("failure", "ConnectionError"): 1}
    # The attempts that reached the dependency, apart from the one refused.
    assert policy.retry is not None
    snap = policy.retry.snapshot()
    assert (snap.attempts_total, snap.refused_attempts, snap.attempts_made) == (3, 1, 2)


def test_the_fallback_catches_an_open_circuit(shell: str) -> None:
    breaker = CircuitBreaker()
    breaker.isolate()
    policy = Policy(
        "svc",
        fallback=Fallback(lambda exc: f"cached ({exc.name})", on=CircuitOpenError),
        breaker=breaker,
    )
    calls: list[str] = []

    assert through(shell, policy, calls.append, "x") == "cached (svc)"
    assert calls == []
    assert policy.fallback is not None
    assert policy.fallback.snapshot().used == 1


def test_a_policy_with_every_part_decorates_and_works(shell: str) -> None:
    clock = FakeClock()
    policy = Policy(
        "svc",
        fallback=Fallback("fallback", on=CircuitOpenError),
        total_timeout=2.0,
        retry=Retry(on=Boom, attempts=3, wait=0.1, clock=clock),
        breaker=True,
        attempt_timeout=1.0,
        bulkhead=5,
    )
    attempts: list[int] = []

    def double(x: int) -> int:
        attempts.append(x)
        if len(attempts) == 1:
            raise Boom("first attempt")
        return 2 * x

    guarded = decorate(shell, policy, double)
    assert guarded(21) == 42
    assert attempts == [21, 21]
    assert clock.sleeps == [0.1]
    assert guarded.__name__ == "double"
    assert policy.name == "svc"
    assert policy.breaker is not None
    assert policy.bulkhead is not None
    assert policy.total_timeout is not None
    assert policy.attempt_timeout is not None
    snap = policy.breaker.snapshot()
    assert (snap.failures, snap.successes) == (1, 1)
    assert policy.bulkhead.snapshot().admitted == 2
    assert policy.total_timeout._counts.as_dict()["success"] == 1
    assert policy.attempt_timeout._counts.as_dict()["success"] == 1
    assert policy.attempt_timeout._counts.as_dict()["failure"] == 1

    policy.breaker.isolate()
    assert guarded(1) == "fallback"
    assert attempts == [21, 21]


def test_keywords_reach_the_function_through_every_part_on_every_attempt(
    shell: str,
) -> None:
    clock = FakeClock()
    seen: list[tuple[object, ...]] = []
    policy = Policy(
        "svc",
        fallback=Fallback("fallback", on=CircuitOpenError),
        total_timeout=2.0,
        retry=Retry(on=Boom, attempts=2, wait=0.5, clock=clock),
        breaker=True,
        attempt_timeout=1.0,
        bulkhead=5,
    )

    def work(a: int, *rest: int, key: str = "k", **extra: object) -> str:
        seen.append((a, rest, key, extra))
        if len(seen) == 1:
            raise Boom("first attempt")
        return f"{a}-{key}"

    # Through call()/acall() and through the decorator: the same arguments, every attempt.
    assert through(shell, policy, work, 1, 2, key="x", flag=True) == "1-x"
    guarded = decorate(shell, policy, work)
    seen.clear()
    assert guarded(3, key="y") == "3-y"
    assert seen == [(3, (), "y", {}), (3, (), "y", {})]
    assert clock.sleeps == [0.5, 0.5]


def test_a_lone_retry_shows_tenacity_the_call_as_it_was_made(shell: str) -> None:
    clock = FakeClock()
    states: list[tuple[object, tuple[object, ...], dict[str, object]]] = []

    def wait(state: Any) -> float:
        states.append((state.fn, state.args, state.kwargs))
        return 0.0

    calls: list[int] = []

    def work(a: int, *, key: str) -> str:
        calls.append(a)
        if len(calls) == 1:
            raise Boom("first attempt")
        return key

    retry = Retry(on=Boom, attempts=2, wait=wait, clock=clock)
    assert through(shell, retry, work, 7, key="z") == "z"
    ((fn, args, kwargs),) = states
    assert (args, kwargs) == ((7,), {"key": "z"})
    assert getattr(fn, "__name__", None) == "work"


# -- Policy: names and repr -----------------------------------------------------------------------


def test_policy_members_take_its_name() -> None:
    policy = Policy(
        "svc",
        fallback=Fallback(0, on=Boom),
        total_timeout=2.0,
        retry=Retry(on=Boom),
        breaker=True,
        attempt_timeout=1.0,
        bulkhead=3,
    )
    assert [part.name for part in policy.policies] == [
        "svc",
        "svc",
        "svc",
        "svc",
        "svc.attempt",
        "svc",
    ]


def test_a_lone_attempt_timeout_takes_the_policys_name() -> None:
    policy = Policy("svc", attempt_timeout=1.0, bulkhead=2)
    assert policy.attempt_timeout is not None
    assert policy.attempt_timeout.name == "svc"
    total_only = Policy("svc", total_timeout=1.0)
    assert total_only.total_timeout is not None
    assert total_only.total_timeout.name == "svc"


def test_explicitly_named_members_keep_their_names() -> None:
    policy = Policy(
        "svc",
        total_timeout=Timeout(2, name="whole-call"),
        retry=Retry(on=Boom, name="retries"),
        breaker=CircuitBreaker(name="dependency"),
        attempt_timeout=Timeout(1, name="each-try"),
        bulkhead=Bulkhead(2, name="pool"),
    )
    assert [part.name for part in policy.policies] == [
        "whole-call",
        "retries",
        "dependency",
        "each-try",
        "pool",
    ]

    @policy
    def work() -> str:
        return "ok"

    assert work() == "ok"
    assert [part.name for part in policy.policies][1] == "retries"
    assert policy.name == "svc"


def test_policy_repr_lists_the_parts_in_order() -> None:
    policy = Policy(
        "svc",
        bulkhead=3,
        attempt_timeout=0.5,
        retry=Retry(on=Boom, attempts=2),
        total_timeout=2.0,
    )
    assert repr(policy) == (
        "Policy('svc': total_timeout=Timeout(2, name='svc') → "
        "retry=Retry(attempts=2, name='svc') → "
        "attempt_timeout=Timeout(0.5, name='svc.attempt') → "
        "bulkhead=Bulkhead(3, name='svc'))"
    )


def test_full_policy_repr_shows_every_part_in_order() -> None:
    policy = Policy(
        "svc",
        bulkhead=3,
        breaker=True,
        fallback=Fallback("x", on=Boom),
        attempt_timeout=0.5,
        retry=Retry(on=Boom),
        total_timeout=2.0,
    )
    text = repr(policy)
    assert text.startswith("Policy('svc': fallback=Fallback('x', name='svc') → total_timeout=")
    labels = ["fallback=", "total_timeout=", "retry=", "breaker=", "attempt_timeout=", "bulkhead="]
    positions = [text.index(label) for label in labels]
    assert positions == sorted(positions)
    assert text.count(" → ") == 5
    assert "breaker=CircuitBreaker(name='svc', state='closed'" in text


# -- Policy: convenience values and validation ----------------------------------------------------


def test_convenience_values() -> None:
    policy = Policy("svc", total_timeout=2.0, attempt_timeout=1, bulkhead=5, breaker=True)
    assert isinstance(policy.total_timeout, Timeout)
    assert policy.total_timeout.seconds == 2.0
    assert isinstance(policy.attempt_timeout, Timeout)
    assert policy.attempt_timeout.seconds == 1.0
    assert isinstance(policy.bulkhead, Bulkhead)
    assert (policy.bulkhead.max_concurrent, policy.bulkhead.max_queue) == (5, 0)
    assert policy.bulkhead.max_wait == 0.0
    assert isinstance(policy.breaker, CircuitBreaker)
    assert policy.breaker.state is seawall.CircuitState.CLOSED
    assert Policy("svc", breaker=False, bulkhead=1).breaker is None


@pytest.mark.parametrize(
    ("kwargs", "param"),
    [
        ({"retry": 3}, "retry"),
        ({"breaker": "x"}, "breaker"),
        ({"fallback": 1}, "fallback"),
        ({"total_timeout": "2"}, "total_timeout"),
        ({"attempt_timeout": True}, "attempt_timeout"),
        ({"bulkhead": "5"}, "bulkhead"),
        ({"bulkhead": True}, "bulkhead"),
        ({"bulkhead": Timeout(1)}, "bulkhead"),
    ],
)
def test_wrong_types_name_the_parameter(kwargs: dict[str, Any], param: str) -> None:
    with pytest.raises(TypeError, match=f"^{param} must be a"):
        Policy("svc", **kwargs)


def test_out_of_range_convenience_values_are_rejected() -> None:
    with pytest.raises(ValueError, match=r"^total_timeout: seconds must be in"):
        Policy("svc", total_timeout=0)
    with pytest.raises(ValueError, match=r"^bulkhead: max_concurrent must be >= 1"):
        Policy("svc", bulkhead=0)


def test_a_policy_needs_a_part_and_a_name() -> None:
    with pytest.raises(ValueError, match=r"^a Policy needs at least one of its parts$"):
        Policy("x")
    with pytest.raises(ValueError, match=r"^a Policy needs at least one of its parts$"):
        Policy("x", breaker=False)
    with pytest.raises(TypeError, match=r"^name must be a str"):
        Policy(3, bulkhead=1)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"^name must be a non-empty"):
        Policy("", bulkhead=1)


# -- the attempt timeout bounds a queued call -----------------------------------------------------


def test_async_queued_call_cannot_wait_longer_than_its_attempt_timeout(
    simulated: Simulation,
) -> None:
    bulkhead = Bulkhead(1, max_queue=1, max_wait=5)
    policy = Policy("svc", attempt_timeout=0.05, bulkhead=bulkhead)
    ran: list[str] = []

    async def queued() -> None:
        ran.append("queued")

    async def main() -> None:
        release = asyncio.Event()
        # The long call holds the bulkhead's only slot directly, outside the policy.
        holder = asyncio.create_task(bulkhead.acall(release.wait))
        await asyncio.sleep(0)
        assert bulkhead.active == 1
        started = simulated.now()
        with pytest.raises(TimeoutExceededError) as info:
            await policy.acall(queued)
        assert simulated.now() - started == pytest.approx(0.05)  # not the bulkhead's 5 s
        assert info.value.name == "svc"
        assert info.value.seconds == 0.05
        assert bulkhead.queued == 0
        release.set()
        assert await holder is True

    simulated.run(main)
    assert ran == []
    snap = bulkhead.snapshot()
    assert (snap.active, snap.queued, snap.admitted) == (0, 0, 1)
    assert policy.attempt_timeout is not None
    assert policy.attempt_timeout._counts.as_dict()["timeout"] == 1


def test_sync_queued_call_cannot_wait_longer_than_its_attempt_timeout() -> None:
    # Real time: a sync caller waits for a slot blocked on a lock, a real 0.05 s here.
    bulkhead = Bulkhead(1, max_queue=1, max_wait=5)
    policy = Policy("svc", attempt_timeout=0.05, bulkhead=bulkhead)
    entered, release = threading.Event(), threading.Event()

    def hold() -> None:
        entered.set()
        release.wait(10)

    holder = threading.Thread(target=bulkhead.call, args=(hold,), daemon=True)
    holder.start()
    assert entered.wait(10)
    started = time.monotonic()
    # A thread cannot be interrupted: the wait for a slot is cut to the deadline instead,
    # and the caller gets the attempt timeout's error, as an async caller would.
    with pytest.raises(TimeoutExceededError):
        policy.call(lambda: "never")
    assert time.monotonic() - started < 1.0
    assert bulkhead.queued == 0
    release.set()
    holder.join(10)
    snap = bulkhead.snapshot()
    assert (snap.active, snap.queued, snap.admitted, snap.rejected) == (0, 0, 1, 1)


# -- refusals on this side are not the dependency's failures --------------------------------------


def test_a_full_bulkhead_does_not_trip_the_breaker_sync() -> None:
    breaker = seawall.CircuitBreaker(minimum_calls=2, window_calls=2)
    policy = seawall.Policy("full-bulkhead", breaker=breaker, bulkhead=1)
    inside, release = threading.Event(), threading.Event()

    def hold() -> str:
        inside.set()
        release.wait(10)
        return "ok"

    holder = threading.Thread(target=policy.call, args=(hold,))
    holder.start()
    assert inside.wait(10)
    for _ in range(4):
        with pytest.raises(seawall.BulkheadFullError):
            policy.call(lambda: "never")
    release.set()
    holder.join(10)
    snapshot = breaker.snapshot()
    assert snapshot.state is seawall.CircuitState.CLOSED
    assert (snapshot.successes, snapshot.failures, snapshot.ignored) == (1, 0, 4)
    assert policy.bulkhead is not None
    assert policy.bulkhead.active == 0


def test_a_full_bulkhead_does_not_trip_the_breaker_async() -> None:
    breaker = seawall.CircuitBreaker(minimum_calls=2, window_calls=2)
    policy = seawall.Policy("full-bulkhead-async", breaker=breaker, bulkhead=1)

    async def main() -> list[object]:
        release = asyncio.Event()

        async def hold() -> str:
            await release.wait()
            return "ok"

        async def quick() -> str:
            return "never"

        holder = asyncio.create_task(policy.acall(hold))
        await asyncio.sleep(0)
        refused = await asyncio.gather(
            *(policy.acall(quick) for _ in range(4)), return_exceptions=True
        )
        release.set()
        return [*refused, await holder]

    outcomes = asyncio.run(main())
    assert [type(o) for o in outcomes[:4]] == [seawall.BulkheadFullError] * 4
    assert outcomes[4] == "ok"
    snapshot = breaker.snapshot()
    assert snapshot.state is seawall.CircuitState.CLOSED
    assert (snapshot.successes, snapshot.failures, snapshot.ignored) == (1, 0, 4)


def test_an_inner_open_breaker_is_ignored_by_an_outer_one(shell: str) -> None:
    inner = seawall.CircuitBreaker(name="inner")
    outer = seawall.CircuitBreaker(name="outer", minimum_calls=1, window_calls=1)
    inner.isolate()
    pipeline = seawall.Pipeline(outer, inner, name="nested-breakers")
    for _ in range(3):
        with pytest.raises(seawall.CircuitOpenError) as caught:
            through(shell, pipeline, lambda: "never")
        assert caught.value.name == "inner"
    assert outer.state is seawall.CircuitState.CLOSED
    assert outer.snapshot().ignored == 3


def test_an_attempt_timeout_longer_than_the_total_is_refused() -> None:
    with pytest.raises(ValueError, match=r"attempt_timeout \(5s\) must not exceed total_timeout"):
        Policy("svc", total_timeout=1, attempt_timeout=5)
    with pytest.raises(ValueError, match=r"attempt_timeout \(2s\) must not exceed"):
        Policy("svc", total_timeout=Timeout(1.5), attempt_timeout=Timeout(2))
    policy = Policy("svc", total_timeout=2, attempt_timeout=2)  # equal: allowed
    assert policy.attempt_timeout is not None


# -- a Policy's clock, its parts' names, and its parameters in errors ------------------------------


def test_a_policys_clock_reaches_the_parts_built_without_one() -> None:
    clock = FakeClock()
    retry = Retry(on=ConnectionError, attempts=3, wait=1.0, budget=seawall.RetryBudget())
    policy = Policy(
        "clocked",
        retry=retry,
        breaker=True,
        total_timeout=10,
        attempt_timeout=seawall.Timeout(5),
        bulkhead=seawall.Bulkhead(2, max_queue=4, max_wait=1.0),
        clock=clock,
    )
    parts = [policy.retry, policy.breaker, policy.total_timeout, policy.attempt_timeout]
    assert all(part is not None and part.clock is clock for part in parts)
    assert policy.bulkhead is not None
    assert policy.bulkhead.clock is clock
    assert retry.budget is not None
    assert retry.budget._clock is clock

    def down() -> None:
        raise ConnectionError("down")

    with pytest.raises(ConnectionError):
        policy.call(down)
    assert clock.sleeps == [1.0, 1.0]  # the retry waited on the fake clock, not in real time


def test_a_policys_clock_lets_its_breaker_recover_on_it() -> None:
    clock = FakeClock()
    policy = Policy("recovers", breaker=True, clock=clock)
    assert policy.breaker is not None
    while policy.breaker.state is seawall.CircuitState.CLOSED:  # 5 failures over 0.5 s
        clock.advance(0.2)
        with pytest.raises(ConnectionError):
            policy.call(_refused)
    assert policy.breaker.state is seawall.CircuitState.OPEN
    clock.advance(60)
    assert policy.call(lambda: "ok") == "ok"
    assert policy.breaker.state is seawall.CircuitState.CLOSED


def _refused() -> None:
    raise ConnectionError("refused")


def test_a_part_given_its_own_clock_keeps_it() -> None:
    own, policys = FakeClock(), FakeClock()
    breaker = CircuitBreaker(clock=own)
    Policy("own-clock", breaker=breaker, retry=Retry(on=OSError), clock=policys)
    assert breaker.clock is own


def test_a_transports_hosts_keep_the_templates_clock() -> None:
    clock = FakeClock()
    template = Policy(
        "tpl-clock",
        retry=Retry(on=OSError, budget=seawall.RetryBudget()),
        breaker=True,
        total_timeout=10,
        attempt_timeout=seawall.Timeout(5),
        bulkhead=2,
        clock=clock,
    )
    import httpx

    from seawall.httpx import ResilientTransport

    transport = ResilientTransport(
        httpx.MockTransport(lambda request: httpx.Response(200)), policy=template
    )
    with httpx.Client(transport=transport) as client:
        client.get("http://clocked.test/")
        client.post("http://clocked.test/", content=iter([b"not replayable"]))  # no retry
    (host,) = transport.policies().values()
    assert host.clock is clock
    assert len(host.policies) == 5
    assert all(part.clock is clock for part in host.policies)
    assert host.retry is not None
    assert host.retry.budget is not None
    assert host.retry.budget._clock is clock
    assert host.retry.budget is not template.retry.budget  # a copy, on the same clock


def test_a_part_in_one_policy_is_not_renamed_by_another() -> None:
    breaker = CircuitBreaker()
    Policy("orders", breaker=breaker)
    with pytest.raises(
        ValueError, match=r"breaker: this CircuitBreaker is already part of 'orders'"
    ):
        Policy("payments", breaker=breaker)
    assert breaker.name == "orders"
    shared = CircuitBreaker(name="payments-api")  # named: shared knowingly
    Policy("orders", breaker=shared)
    Policy("payments", breaker=shared)
    assert shared.name == "payments-api"


def test_a_part_in_one_pipeline_is_not_renamed_by_another() -> None:
    breaker = CircuitBreaker()
    Pipeline(breaker, Retry(on=OSError), name="orders")
    with pytest.raises(
        ValueError, match=r"^policies: this CircuitBreaker is already part of 'orders'"
    ):
        Pipeline(breaker, name="payments")
    with pytest.raises(ValueError, match=r"already part of 'orders'"):
        Pipeline(breaker)  # it would take the name of the function it decorates
    with pytest.raises(ValueError, match=r"^breaker: this CircuitBreaker is already part"):
        Policy("payments", breaker=breaker)
    assert breaker.name == "orders"
    Pipeline(breaker, name="orders")  # the same name: nothing moves
    shared = CircuitBreaker(name="shared-api")
    Pipeline(shared, name="orders")
    Pipeline(shared, name="payments")
    assert shared.name == "shared-api"


@pytest.mark.parametrize(
    ("options", "error", "message"),
    [
        ({"total_timeout": -1}, ValueError, r"^total_timeout: seconds must be in"),
        ({"attempt_timeout": 0}, ValueError, r"^attempt_timeout: seconds must be in"),
        ({"attempt_timeout": float("nan")}, ValueError, r"^attempt_timeout: "),
        ({"bulkhead": 0}, ValueError, r"^bulkhead: max_concurrent must be >= 1"),
        ({"bulkhead": -3}, ValueError, r"^bulkhead: "),
        ({"bulkhead": 10**9}, ValueError, r"^bulkhead: max_concurrent must be <= 1,000,000"),
        ({"total_timeout": 10**400}, ValueError, r"^total_timeout: seconds must be in .*digits"),
        ({"attempt_timeout": -0.0}, ValueError, r"^attempt_timeout: seconds must be in"),
        ({"total_timeout": "5"}, TypeError, r"^total_timeout must be a Timeout or seconds"),
        ({"bulkhead": 2.5}, TypeError, r"^bulkhead must be a Bulkhead or an int \(its max_co"),
        ({"bulkhead": None, "breaker": "yes"}, TypeError, r"^breaker must be a CircuitBreaker, "),
        ({"breaker": 1}, TypeError, r"^breaker must be a CircuitBreaker, True or False, got int"),
        ({"bulkhead": 1, "clock": 1}, TypeError, r"^clock must provide monotonic\(\)"),
    ],
)
def test_errors_name_the_policys_parameter(
    options: dict[str, Any], error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        Policy("x", **options)


def test_a_part_shared_with_a_policy_on_another_clock_is_refused() -> None:
    shared = CircuitBreaker(name="shared-api")
    first = Policy("orders", breaker=shared)
    with pytest.raises(
        ValueError, match=r"^clock: the breaker is already part of another policy, on another"
    ):
        Policy("payments", breaker=shared, clock=FakeClock())
    assert shared.clock is first.clock  # the first policy's part is left as it was
    clock = FakeClock()
    on_it = CircuitBreaker(name="on-the-clock", clock=clock)
    Policy("orders", breaker=on_it, clock=clock)
    Policy("payments", breaker=on_it, clock=clock)  # one clock: shared freely
    assert on_it.clock is clock


def test_a_part_that_has_run_on_its_own_clock_is_refused_rather_than_reset() -> None:
    breaker = CircuitBreaker()
    breaker.call(lambda: None)
    with pytest.raises(
        ValueError,
        match=r"^clock: the breaker \(CircuitBreaker '.*'\) has run on its own clock already",
    ):
        Policy("reset-would-lose-counts", breaker=breaker, clock=FakeClock())
    assert breaker.snapshot().successes == 1


def test_a_part_keeps_its_listeners_when_it_takes_the_policys_clock() -> None:
    events: list[object] = []
    breaker = CircuitBreaker(minimum_calls=1, window_calls=1, consecutive_failures=None)
    breaker.add_listener(events.append)
    clock = FakeClock()
    policy = Policy("listened", breaker=breaker, clock=clock)
    assert breaker.clock is clock
    with pytest.raises(ConnectionError):
        policy.call(_refused)
    assert any(isinstance(event, seawall.StateChange) for event in events)
