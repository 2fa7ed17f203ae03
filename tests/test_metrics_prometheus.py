"""seawall's series as Prometheus sees them: each test exposes every live policy in a fresh
``CollectorRegistry`` (``seawall.metrics.configure(prometheus=registry)``) and asserts exact
values read back with ``registry.get_sample_value``.

Policies of other tests may still be alive in this process and are exposed too, so every
policy here has a name of its own (:func:`unique`). Time comes from a ``FakeClock``; the only
real waiting is for threads and tasks to reach a known point.
"""

from __future__ import annotations

import asyncio
import itertools
import math
import os
import random
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any, NoReturn

import pytest
from conftest import HANG, Shell
from prometheus_client import REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.openmetrics.exposition import generate_latest as openmetrics_latest
from prometheus_client.openmetrics.parser import (
    text_string_to_metric_families as openmetrics_parse,
)
from prometheus_client.samples import Sample

import seawall
from seawall import (
    Bulkhead,
    BulkheadFullError,
    CircuitBreaker,
    CircuitOpenError,
    CircuitState,
    Fallback,
    Pipeline,
    Policy,
    Retry,
    RetryBudget,
    Timeout,
    TimeoutExceededError,
    chaos,
)
from seawall._base import PolicyBase
from seawall._stats.calls import ERROR_TYPE_CAP, OTHER
from seawall._stats.counters import ATTEMPT_BUCKETS, DURATION_BUCKETS
from seawall.metrics import CATALOGUE, configure
from seawall.redis import RedisState
from seawall.testing import FakeClock, Simulation
from tests.helpers import free_port

CALLS = "seawall_call_duration_seconds"
ERRORS = "seawall_call_errors_total"
HTTP = "seawall_http_client_request_duration_seconds"
STATES = tuple(state.value for state in CircuitState)

_ids = itertools.count()


def unique(what: str) -> str:
    """A policy name no other test uses: the process may hold other tests' policies."""
    return f"prom-test.{what}.{next(_ids)}"


# -- fixtures and helpers -------------------------------------------------------------------------


@pytest.fixture
def registry() -> Iterator[CollectorRegistry]:
    """A fresh registry holding seawall's series; the default registry again afterwards."""
    fresh = CollectorRegistry()
    configure(prometheus=fresh)
    try:
        yield fresh
    finally:
        configure(prometheus=True)


class CountingClock(FakeClock):
    """A FakeClock that counts its reads, per thread: how a test knows that another thread
    has noted the time (e.g. when its wait for a bulkhead slot began)."""

    def __init__(self) -> None:
        super().__init__()
        self._reads: dict[int, int] = {}
        self._count_lock = threading.Lock()

    def monotonic(self) -> float:
        ident = threading.get_ident()
        with self._count_lock:
            self._reads[ident] = self._reads.get(ident, 0) + 1
        return super().monotonic()

    def reads_by(self, ident: int | None) -> int:
        with self._count_lock:
            return 0 if ident is None else self._reads.get(ident, 0)


def wait_until(predicate: Callable[[], bool], what: str) -> None:
    """Wait (real time) for other threads to make ``predicate`` true."""
    give_up = time.monotonic() + HANG
    pause = threading.Event()
    while not predicate():
        if time.monotonic() > give_up:
            raise AssertionError(f"timed out waiting for {what}")
        pause.wait(0.001)


def value(registry: CollectorRegistry, name: str, **labels: str) -> float | None:
    return registry.get_sample_value(name, labels)


def calls(registry: CollectorRegistry, operation: str, outcome: str) -> float | None:
    """How many logical calls of ``operation`` ended with ``outcome`` (the histogram count)."""
    return value(registry, f"{CALLS}_count", operation=operation, outcome=outcome)


def errors(registry: CollectorRegistry, operation: str) -> dict[tuple[str, str], float]:
    """``seawall_call_errors_total`` of ``operation``, by (outcome, error_type)."""
    return {
        (s.labels["outcome"], s.labels["error_type"]): s.value
        for s in samples(registry, ERRORS, operation=operation)
    }


def samples(registry: CollectorRegistry, name: str, **match: str) -> list[Sample]:
    """Every sample called ``name`` whose labels include ``match``."""
    return [
        s
        for family in registry.collect()
        for s in family.samples
        if s.name == name and all(s.labels.get(k) == v for k, v in match.items())
    ]


def le(bound: float) -> str:
    return "+Inf" if bound == float("inf") else repr(float(bound))


def cumulative(registry: CollectorRegistry, name: str, **labels: str) -> dict[float, float]:
    """A histogram's cumulative bucket counts, by upper bound (``inf`` for +Inf)."""
    out = {}
    for s in samples(registry, f"{name}_bucket", **labels):
        out[float(s.labels["le"])] = s.value
    return out


def expected_buckets(
    bounds: tuple[float, ...], observations: Sequence[float]
) -> dict[float, float]:
    """Cumulative counts Prometheus should show for ``observations`` (bounds inclusive)."""
    return {
        bound: float(sum(1 for seen in observations if seen <= bound))
        for bound in (*bounds, float("inf"))
    }


def states(registry: CollectorRegistry, policy: str) -> dict[str, float]:
    return {
        s.labels["state"]: s.value
        for s in samples(registry, "seawall_circuit_breaker_state", policy=policy)
    }


def one_hot(registry: CollectorRegistry, policy: str, state: str) -> None:
    """The state gauge of ``policy`` shows ``state`` and only it."""
    assert states(registry, policy) == {each: float(each == state) for each in STATES}


def transitions(registry: CollectorRegistry, policy: str) -> dict[tuple[str, str], float]:
    return {
        (s.labels["from_state"], s.labels["to_state"]): s.value
        for s in samples(registry, "seawall_circuit_breaker_transitions_total", policy=policy)
    }


def raising(exc: BaseException) -> Callable[[], NoReturn]:
    def work() -> NoReturn:
        raise exc

    return work


def taking(clock: FakeClock, seconds: float, result: object = "ok") -> Callable[[], object]:
    """A call that takes ``seconds`` on the fake clock."""

    def work() -> object:
        clock.advance(seconds)
        return result

    return work


def slowly_failing(clock: FakeClock, seconds: float, exc: BaseException) -> Callable[[], NoReturn]:
    """A call that takes ``seconds`` on the fake clock, then raises ``exc``."""

    def work() -> NoReturn:
        clock.advance(seconds)
        raise exc

    return work


def failing_times(times: int, exc: type[Exception] = ValueError) -> Callable[[], str]:
    """A call that raises ``exc`` on its first ``times`` attempts, then returns "ok"."""
    attempts = itertools.count(1)

    def work() -> str:
        if next(attempts) <= times:
            raise exc("transient")
        return "ok"

    return work


def quiet_breaker(name: str, clock: FakeClock, **kwargs: Any) -> CircuitBreaker:
    """A breaker that never trips: failures are counted and nothing else."""
    return CircuitBreaker(
        name=name, clock=clock, failure_ratio=1.0, minimum_calls=1_000_000_000, **kwargs
    )


def stopped_state() -> RedisState:
    state = RedisState(f"redis://127.0.0.1:{free_port()}/0")
    state.close()
    return state


class Abort(BaseException):
    """Not an Exception, like KeyboardInterrupt: the call is "cancelled"."""


# -- the families ---------------------------------------------------------------------------------


def test_every_family_has_its_catalogue_type_help_and_label_names(
    registry: CollectorRegistry,
) -> None:
    clock = FakeClock()
    breaker = CircuitBreaker(name=unique("family-breaker"), clock=clock)
    # Kept alive: the exporters read live policies only.
    others = (
        Retry(on=ValueError, name=unique("family-retry"), clock=clock),
        Timeout(1.0, name=unique("family-timeout"), clock=clock),
        Bulkhead(1, name=unique("family-bulkhead"), clock=clock),
        chaos.inject(chaos.ConnectError(), name=unique("family-chaos"), clock=clock),
        # A shared breaker (its syncer stopped: no Redis is needed to show its families).
        CircuitBreaker(name=unique("family-shared"), clock=clock, shared=stopped_state()),
    )
    with pytest.raises(ValueError, match="down"):
        breaker.call(raising(ValueError("down")))
    breaker.isolate()  # a transition, so the transitions family has a series too

    text = generate_latest(registry).decode()
    help_lines = [line for line in text.splitlines() if line.startswith("# HELP ")]
    type_lines = [line for line in text.splitlines() if line.startswith("# TYPE ")]
    by_name = {metric.name: metric for metric in CATALOGUE}
    exposed = {line.split()[2] for line in type_lines}
    # Every family has series now, except the transports' HTTP one (no transport here).
    assert set(by_name) - {HTTP} <= exposed
    assert exposed <= set(by_name), "a series outside the catalogue"
    for name in exposed:
        metric = by_name[name]
        assert type_lines.count(f"# TYPE {name} {metric.kind}") == 1
        assert help_lines.count(f"# HELP {name} {metric.help}") == 1
    assert len(type_lines) == len(exposed) == len(help_lines)
    del others

    for family in registry.collect():
        sample_names = {s.name for s in family.samples}
        metric = next(m for m in CATALOGUE if m.name.startswith(family.name))
        assert family.type == metric.kind
        assert family.documentation == metric.help
        for s in family.samples:
            names = set(s.labels)
            if s.name.endswith("_bucket"):
                assert "le" in names
                names.discard("le")
            assert names == set(metric.labels), s
        if metric.kind == "histogram":
            assert sample_names == {f"{metric.name}_{part}" for part in ("bucket", "count", "sum")}
            bounds = sorted({float(s.labels["le"]) for s in family.samples if "le" in s.labels})
            assert bounds == [*metric.buckets, float("inf")]
        elif metric.kind == "counter":
            assert sample_names == {metric.name}
            assert metric.name.endswith("_total")
        else:
            assert sample_names == {metric.name}


def test_histogram_buckets_are_the_catalogues() -> None:
    by_name = {metric.name: metric for metric in CATALOGUE}
    assert by_name["seawall_retry_attempts"].buckets == (1, 2, 3, 4, 5, 7, 10)
    assert by_name["seawall_retry_attempts"].buckets == ATTEMPT_BUCKETS
    semconv = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10)
    for name in (CALLS, "seawall_bulkhead_wait_seconds", HTTP):
        assert by_name[name].buckets == (*semconv, 30, 60) == DURATION_BUCKETS


# -- the call-level SLI ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("make", "can_give"),
    [
        (lambda name: CircuitBreaker(name=name), {"rejected"}),
        (lambda name: Retry(on=ValueError, name=name), set()),
        (lambda name: Timeout(1.0, name=name), {"timeout"}),
        (lambda name: Bulkhead(2, name=name), {"rejected"}),
        (lambda name: Fallback(None, on=ValueError, name=name), {"fallback"}),
        (lambda name: Pipeline(CircuitBreaker(), Bulkhead(2), name=name), {"rejected"}),
        (
            lambda name: Policy(
                name,
                fallback=Fallback(None, on=ValueError),
                retry=Retry(on=ValueError),
                breaker=True,
                attempt_timeout=1,
            ),
            {"fallback", "rejected", "timeout"},
        ),
    ],
    ids=["breaker", "retry", "timeout", "bulkhead", "fallback", "pipeline", "policy"],
)
def test_the_series_of_every_outcome_a_policy_can_give_exist_before_any_call(
    registry: CollectorRegistry, make: Callable[[str], Any], can_give: set[str]
) -> None:
    # rate() misses the first count of a series that appears with it: the first rejection of
    # an outage would be lost to the error ratio.
    name = unique("fresh")
    policy = make(name)
    for outcome in ("success", "failure", *can_give):
        assert calls(registry, name, outcome) == 0
        assert value(registry, f"{CALLS}_sum", operation=name, outcome=outcome) == 0
        assert cumulative(registry, CALLS, operation=name, outcome=outcome) == expected_buckets(
            DURATION_BUCKETS, []
        )
    for outcome in {"timeout", "rejected", "cancelled", "fallback"} - can_give:
        assert calls(registry, name, outcome) is None  # only once such a call happened
    assert errors(registry, name) == {}
    del policy


def test_success_and_failure_are_counted(run: Shell, registry: CollectorRegistry) -> None:
    clock = FakeClock()
    name = unique("outcomes")
    breaker = CircuitBreaker(name=name, clock=clock)
    assert run(breaker, taking(clock, 0.25)) == "ok"
    assert run(breaker, taking(clock, 0.5)) == "ok"
    with pytest.raises(ValueError, match="down"):
        run(breaker, raising(ValueError("down")))

    assert calls(registry, name, "success") == 2
    assert value(registry, f"{CALLS}_sum", operation=name, outcome="success") == 0.75
    assert calls(registry, name, "failure") == 1
    assert value(registry, f"{CALLS}_sum", operation=name, outcome="failure") == 0
    assert errors(registry, name) == {("failure", "ValueError"): 1}


def test_a_sync_timeout_is_a_timeout_outcome(registry: CollectorRegistry) -> None:
    clock = FakeClock()
    name = unique("timeout")
    timeout = Timeout(1.0, name=name, clock=clock)
    with pytest.raises(TimeoutExceededError):
        timeout.call(taking(clock, 2.0))

    assert calls(registry, name, "timeout") == 1
    assert value(registry, f"{CALLS}_sum", operation=name, outcome="timeout") == 2.0
    assert cumulative(registry, CALLS, operation=name, outcome="timeout") == expected_buckets(
        DURATION_BUCKETS, [2.0]
    )
    assert (calls(registry, name, "success"), calls(registry, name, "failure")) == (0, 0)
    assert errors(registry, name) == {("timeout", "TimeoutExceededError"): 1}


def test_an_open_breaker_is_a_rejected_outcome(run: Shell, registry: CollectorRegistry) -> None:
    name = unique("rejected")
    breaker = CircuitBreaker(name=name, clock=FakeClock())
    breaker.isolate()
    with pytest.raises(CircuitOpenError):
        run(breaker, lambda: "never runs")
    decorated = run.decorate(breaker, lambda: "never runs")
    with pytest.raises(CircuitOpenError):
        decorated()

    assert calls(registry, name, "rejected") == 2
    assert (calls(registry, name, "success"), calls(registry, name, "failure")) == (0, 0)
    assert errors(registry, name) == {("rejected", "CircuitOpenError"): 2}


def test_a_cancelled_task_is_a_cancelled_outcome(registry: CollectorRegistry) -> None:
    clock = FakeClock()
    name = unique("cancelled")
    breaker = CircuitBreaker(name=name, clock=clock)

    async def main() -> None:
        entered, never = asyncio.Event(), asyncio.Event()

        @breaker
        async def work() -> None:
            entered.set()
            clock.advance(0.25)
            await never.wait()

        task = asyncio.create_task(work())
        await entered.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())
    assert calls(registry, name, "cancelled") == 1
    assert value(registry, f"{CALLS}_sum", operation=name, outcome="cancelled") == 0.25
    assert (calls(registry, name, "success"), calls(registry, name, "failure")) == (0, 0)
    assert errors(registry, name) == {("cancelled", "CancelledError"): 1}
    # Cancellation says nothing about the dependency: the breaker ignores it.
    assert (
        value(registry, "seawall_circuit_breaker_calls_total", policy=name, outcome="ignored") == 1
    )


def test_a_logical_call_is_recorded_once_by_the_outermost_layer(
    run: Shell, registry: CollectorRegistry
) -> None:
    clock = FakeClock()
    name = unique("policy")
    policy = Policy(
        name,
        retry=Retry(on=ValueError, attempts=3, wait=0, clock=clock),
        breaker=quiet_breaker(name, clock),
        bulkhead=Bulkhead(2, clock=clock),
    )
    work = run.decorate(policy, failing_times(2))
    assert work() == "ok"

    # The logical call: one success, whatever happened inside.
    assert calls(registry, name, "success") == 1
    assert calls(registry, name, "failure") == 0
    assert errors(registry, name) == {}
    # success, failure, and rejected (its breaker can reject)
    assert len(samples(registry, f"{CALLS}_count", operation=name)) == 3
    # The breaker and the bulkhead saw all three attempts; the retry saw one retried call.
    breaker_calls = "seawall_circuit_breaker_calls_total"
    assert value(registry, breaker_calls, policy=name, outcome="success") == 1
    assert value(registry, breaker_calls, policy=name, outcome="failure") == 2
    assert value(registry, "seawall_bulkhead_calls_total", policy=name, outcome="admitted") == 3
    retry_calls = "seawall_retry_calls_total"
    assert value(registry, retry_calls, policy=name, outcome="success", retried="true") == 1
    assert value(registry, retry_calls, policy=name, outcome="success", retried="false") == 0
    assert value(registry, "seawall_retry_attempts_sum", policy=name) == 3


def test_a_pipeline_member_used_on_its_own_records_its_own_calls(
    run: Shell, registry: CollectorRegistry
) -> None:
    clock = FakeClock()
    pipeline_name, breaker_name, bulkhead_name = unique("pipe"), unique("member"), unique("bh")
    breaker = CircuitBreaker(name=breaker_name, clock=clock)
    bulkhead = Bulkhead(1, name=bulkhead_name, clock=clock)
    pipeline = Pipeline(breaker, bulkhead, name=pipeline_name)
    # Composed and not (yet) called on its own: the pipeline reports its calls.
    assert calls(registry, breaker_name, "success") is None
    assert calls(registry, bulkhead_name, "success") is None

    for _ in range(2):
        assert run(pipeline, lambda: "ok") == "ok"
    assert run(breaker, lambda: "alone") == "alone"
    with pytest.raises(ValueError, match="alone"):
        run(breaker, raising(ValueError("alone")))

    assert calls(registry, pipeline_name, "success") == 2
    assert calls(registry, pipeline_name, "failure") == 0
    assert calls(registry, breaker_name, "success") == 1
    assert calls(registry, breaker_name, "failure") == 1
    assert errors(registry, breaker_name) == {("failure", "ValueError"): 1}
    assert calls(registry, bulkhead_name, "success") is None  # never called on its own
    breaker_calls = "seawall_circuit_breaker_calls_total"
    assert value(registry, breaker_calls, policy=breaker_name, outcome="success") == 3
    assert value(registry, breaker_calls, policy=breaker_name, outcome="failure") == 1
    assert (
        value(registry, "seawall_bulkhead_calls_total", policy=bulkhead_name, outcome="admitted")
        == 2
    )


def test_duration_buckets_and_sums_are_exact(run: Shell, registry: CollectorRegistry) -> None:
    clock = FakeClock()
    name = unique("buckets")
    breaker = quiet_breaker(name, clock)

    def work(seconds: float, fail: bool = False) -> None:
        clock.advance(seconds)
        if fail:
            raise ZeroDivisionError

    work = run.decorate(breaker, work)
    # Exact binary fractions, so the clock's differences and the sums are exact too.
    took = [0.00390625, 0.3125, 128.0, 0.0]
    for seconds in took:
        work(seconds)
    with pytest.raises(ZeroDivisionError):
        work(0.0625, fail=True)

    assert cumulative(registry, CALLS, operation=name, outcome="success") == expected_buckets(
        DURATION_BUCKETS, took
    )
    assert cumulative(registry, CALLS, operation=name, outcome="success")[0.005] == 2
    assert cumulative(registry, CALLS, operation=name, outcome="success")[0.25] == 2
    assert cumulative(registry, CALLS, operation=name, outcome="success")[0.5] == 3
    assert cumulative(registry, CALLS, operation=name, outcome="success")[60.0] == 3
    assert value(registry, f"{CALLS}_bucket", operation=name, outcome="success", le="+Inf") == 4
    assert calls(registry, name, "success") == 4
    assert value(registry, f"{CALLS}_sum", operation=name, outcome="success") == 128.31640625
    assert cumulative(registry, CALLS, operation=name, outcome="failure") == expected_buckets(
        DURATION_BUCKETS, [0.0625]
    )
    assert value(registry, f"{CALLS}_sum", operation=name, outcome="failure") == 0.0625
    assert errors(registry, name) == {("failure", "ZeroDivisionError"): 1}


@pytest.mark.parametrize(
    ("seconds", "bucket"),
    [(0.005, 0.005), (0.0050001, 0.01), (0.5, 0.5), (60.0, 60.0), (60.5, float("inf"))],
)
def test_bucket_bounds_are_inclusive(
    registry: CollectorRegistry, seconds: float, bucket: float
) -> None:
    clock = FakeClock()
    name = unique("bound")
    breaker = CircuitBreaker(name=name, clock=clock)
    breaker.call(taking(clock, seconds))
    counts = cumulative(registry, CALLS, operation=name, outcome="success")
    bounds = (*DURATION_BUCKETS, float("inf"))
    assert counts == {bound: float(bound >= bucket) for bound in bounds}


# -- seawall_call_errors_total --------------------------------------------------------------------


def test_error_types_are_class_names(run: Shell, registry: CollectorRegistry) -> None:
    name = unique("types")
    breaker = quiet_breaker(name, FakeClock())
    for exc in (KeyError("k"), KeyError("other"), LookupError(), ZeroDivisionError()):
        with pytest.raises(type(exc)):
            run(breaker, raising(exc))
    assert errors(registry, name) == {
        ("failure", "KeyError"): 2,
        ("failure", "LookupError"): 1,
        ("failure", "ZeroDivisionError"): 1,
    }


def test_error_types_are_capped_per_operation(registry: CollectorRegistry) -> None:
    name = unique("cap")
    clock = FakeClock()
    breaker = quiet_breaker(name, clock)
    generated = [type(f"Generated{i}", (Exception,), {}) for i in range(100)]
    for exc_type in generated:
        with pytest.raises(exc_type):
            breaker.call(raising(exc_type()))
    # Types seen before the cap was reached keep their own series.
    for exc_type in generated[:5]:
        with pytest.raises(exc_type):
            breaker.call(raising(exc_type()))
    # Later types go to _OTHER; seawall's own errors always keep their names.
    for exc_type in generated[50:53]:
        with pytest.raises(exc_type):
            breaker.call(raising(exc_type()))
    breaker.isolate()
    with pytest.raises(CircuitOpenError):
        breaker.call(lambda: None)

    expected = {("failure", f"Generated{i}"): 1.0 for i in range(ERROR_TYPE_CAP)}
    for i in range(5):
        expected["failure", f"Generated{i}"] = 2.0
    expected["failure", OTHER] = 100 - ERROR_TYPE_CAP + 3
    expected["rejected", "CircuitOpenError"] = 1
    assert errors(registry, name) == expected
    kept = {error_type for _, error_type in expected if error_type.startswith("Generated")}
    assert len(kept) == ERROR_TYPE_CAP
    assert sum(errors(registry, name).values()) == 100 + 5 + 3 + 1
    # The cap is on labels only: every call is in the duration histogram.
    assert calls(registry, name, "failure") == 108
    assert calls(registry, name, "rejected") == 1


def test_the_cap_is_per_operation(registry: CollectorRegistry) -> None:
    clock = FakeClock()
    names = [unique("cap-a"), unique("cap-b")]
    generated = [type(f"PerOp{i}", (Exception,), {}) for i in range(ERROR_TYPE_CAP + 1)]
    breakers = [quiet_breaker(name, clock) for name in names]
    for breaker in breakers:
        for exc_type in generated:
            with pytest.raises(exc_type):
                breaker.call(raising(exc_type()))
    for name in names:
        found = errors(registry, name)
        assert len(found) == ERROR_TYPE_CAP + 1
        assert found["failure", OTHER] == 1
        assert found["failure", f"PerOp{ERROR_TYPE_CAP - 1}"] == 1


def test_error_type_attributes_of_other_exceptions_are_not_labels(
    registry: CollectorRegistry,
) -> None:
    class ApiError(Exception):
        def __init__(self, message: str) -> None:
            super().__init__(message)
            self.error_type = message  # e.g. copied from a response body

    class StatusFailure(seawall.SeawallError):
        error_type = "503"  # how seawall's own transports name an HTTP status

    name = unique("error-type-attr")
    breaker = quiet_breaker(name, FakeClock())
    with pytest.raises(ApiError):
        breaker.call(raising(ApiError("user 12345 at http://x/y")))
    with pytest.raises(StatusFailure):
        breaker.call(raising(StatusFailure()))
    assert errors(registry, name) == {
        ("failure", ApiError.__qualname__): 1,
        ("failure", "503"): 1,
    }


# -- circuit breaker series -----------------------------------------------------------------------


def test_breaker_calls_by_outcome_and_slow_calls(run: Shell, registry: CollectorRegistry) -> None:
    clock = FakeClock()
    name = unique("breaker-outcomes")
    breaker = quiet_breaker(name, clock, ignore_on=KeyError, slow_call_duration=1.0)
    assert run(breaker, taking(clock, 0.5)) == "ok"
    assert run(breaker, taking(clock, 2.0)) == "ok"  # slow
    assert run(breaker, taking(clock, 1.0)) == "ok"  # slow: the bound is inclusive
    with pytest.raises(ValueError, match="x"):
        run(breaker, slowly_failing(clock, 1.5, ValueError("x")))  # slow
    with pytest.raises(ValueError, match="y"):
        run(breaker, raising(ValueError("y")))
    with pytest.raises(KeyError):
        run(breaker, raising(KeyError("ignored")))
    breaker.isolate()
    for _ in range(2):
        with pytest.raises(CircuitOpenError):
            run(breaker, lambda: "never runs")

    counts = {
        s.labels["outcome"]: s.value
        for s in samples(registry, "seawall_circuit_breaker_calls_total", policy=name)
    }
    assert counts == {"success": 3, "failure": 2, "ignored": 1, "rejected": 2}
    assert value(registry, "seawall_circuit_breaker_slow_calls_total", policy=name) == 3
    # The logical calls: an ignored exception still fails the caller's call.
    assert calls(registry, name, "success") == 3
    assert calls(registry, name, "failure") == 3
    assert calls(registry, name, "rejected") == 2


def test_breaker_state_transitions_and_time_open(run: Shell, registry: CollectorRegistry) -> None:
    clock = FakeClock()
    name = unique("breaker-states")
    breaker = CircuitBreaker(
        name=name, clock=clock, minimum_calls=2, open_duration=8.0, half_open_calls=1
    )
    open_seconds = "seawall_circuit_breaker_open_seconds_total"
    one_hot(registry, name, "closed")
    assert transitions(registry, name) == {}
    assert value(registry, open_seconds, policy=name) == 0

    clock.advance(1.0)
    for _ in range(2):
        with pytest.raises(ValueError, match="down"):
            run(breaker, raising(ValueError("down")))
    one_hot(registry, name, "open")
    assert transitions(registry, name) == {("closed", "open"): 1}
    assert value(registry, open_seconds, policy=name) == 0

    clock.advance(4.0)
    one_hot(registry, name, "open")
    assert value(registry, open_seconds, policy=name) == 4.0  # the stretch in progress counts

    clock.advance(4.0)  # open_duration has passed: the next reading finds it half-open
    one_hot(registry, name, "half_open")
    assert transitions(registry, name) == {("closed", "open"): 1, ("open", "half_open"): 1}
    assert value(registry, open_seconds, policy=name) == 8.0

    assert run(breaker, taking(clock, 0.5)) == "ok"  # the probe succeeds
    one_hot(registry, name, "closed")
    assert transitions(registry, name) == {
        ("closed", "open"): 1,
        ("open", "half_open"): 1,
        ("half_open", "closed"): 1,
    }
    clock.advance(100.0)
    assert value(registry, open_seconds, policy=name) == 8.5  # closed time is not counted

    breaker.isolate()
    one_hot(registry, name, "forced_open")
    clock.advance(2.0)
    breaker.disable()
    one_hot(registry, name, "disabled")
    clock.advance(3.0)  # disabled lets calls through: not time open
    breaker.reset()
    one_hot(registry, name, "closed")
    assert value(registry, open_seconds, policy=name) == 10.5
    assert transitions(registry, name) == {
        ("closed", "open"): 1,
        ("open", "half_open"): 1,
        ("half_open", "closed"): 1,
        ("closed", "forced_open"): 1,
        ("forced_open", "disabled"): 1,
        ("disabled", "closed"): 1,
    }
    assert (
        value(registry, "seawall_circuit_breaker_calls_total", policy=name, outcome="failure") == 2
    )
    assert (
        value(registry, "seawall_circuit_breaker_calls_total", policy=name, outcome="success") == 1
    )


def test_a_failed_probe_opens_again(registry: CollectorRegistry) -> None:
    clock = FakeClock()
    name = unique("breaker-reopen")
    breaker = CircuitBreaker(
        name=name, clock=clock, minimum_calls=1, open_duration=2.0, half_open_calls=1
    )
    with pytest.raises(ValueError, match="down"):
        breaker.call(raising(ValueError("down")))
    clock.advance(2.0)
    with pytest.raises(ValueError, match="still"):
        breaker.call(raising(ValueError("still")))
    one_hot(registry, name, "open")
    assert transitions(registry, name) == {
        ("closed", "open"): 1,
        ("open", "half_open"): 1,
        ("half_open", "open"): 1,
    }
    assert value(registry, "seawall_circuit_breaker_open_seconds_total", policy=name) == 2.0


def test_open_duration_and_next_probe_gauges_follow_the_breaker(
    registry: CollectorRegistry,
) -> None:
    clock = FakeClock()
    name = unique("breaker-probe-gauges")
    breaker = CircuitBreaker(
        name=name,
        clock=clock,
        consecutive_failures=None,
        minimum_calls=1,
        open_duration=2.0,
        max_open_duration=8.0,
        rng=random.Random(1),
    )
    open_duration = "seawall_circuit_breaker_open_duration_seconds"
    next_probe = "seawall_circuit_breaker_next_probe_seconds"
    assert value(registry, open_duration, policy=name) == 2.0
    assert value(registry, next_probe, policy=name) == 0.0  # closed
    with pytest.raises(ValueError, match="down"):
        breaker.call(raising(ValueError("down")))
    clock.advance(0.5)
    assert value(registry, next_probe, policy=name) == 1.5
    clock.advance(1.5)
    with pytest.raises(ValueError, match="still"):
        breaker.call(raising(ValueError("still")))  # a failed probe: the duration grows
    grown = breaker.snapshot().open_duration
    assert 4.0 <= grown <= 4.8
    assert value(registry, open_duration, policy=name) == grown
    assert value(registry, next_probe, policy=name) == grown
    clock.advance(grown)
    assert value(registry, next_probe, policy=name) == 0.0  # half-open: probing
    breaker.isolate()
    assert value(registry, next_probe, policy=name) == math.inf
    breaker.reset()
    assert value(registry, open_duration, policy=name) == 2.0
    assert value(registry, next_probe, policy=name) == 0.0


def test_breakers_sharing_a_name_share_series(registry: CollectorRegistry) -> None:
    clock = FakeClock()
    name = unique("shared")
    tripping = CircuitBreaker(name=name, clock=clock, minimum_calls=1, open_duration=60.0)
    steady = CircuitBreaker(name=name, clock=clock)
    for _ in range(3):
        steady.call(lambda: "ok")
    with pytest.raises(ValueError, match="one"):
        steady.call(raising(ValueError("one")))
    with pytest.raises(ValueError, match="two"):
        tripping.call(raising(ValueError("two")))  # trips it
    with pytest.raises(CircuitOpenError):
        tripping.call(lambda: "never runs")
    clock.advance(2.0)

    counts = {
        s.labels["outcome"]: s.value
        for s in samples(registry, "seawall_circuit_breaker_calls_total", policy=name)
    }
    assert counts == {"success": 3, "failure": 2, "ignored": 0, "rejected": 1}
    assert states(registry, name)["open"] == 1  # one of them is open
    assert states(registry, name)["half_open"] == 0
    assert transitions(registry, name) == {("closed", "open"): 1}
    assert value(registry, "seawall_circuit_breaker_open_seconds_total", policy=name) == 2.0
    assert calls(registry, name, "success") == 3
    assert calls(registry, name, "failure") == 2
    assert calls(registry, name, "rejected") == 1

    steady.isolate()
    clock.advance(1.0)
    assert states(registry, name)["open"] == 1
    assert states(registry, name)["forced_open"] == 1
    assert transitions(registry, name) == {("closed", "open"): 1, ("closed", "forced_open"): 1}
    assert value(registry, "seawall_circuit_breaker_open_seconds_total", policy=name) == 4.0


# -- retry series ---------------------------------------------------------------------------------


def test_retry_calls_and_attempts(run: Shell, registry: CollectorRegistry) -> None:
    clock = FakeClock()
    name = unique("retry")
    retry = Retry(on=ValueError, attempts=12, wait=0, name=name, clock=clock)
    attempts = []
    for failures in (0, 0, 1, 2, 5, 9, 10):
        assert run(retry, failing_times(failures)) == "ok"
        attempts.append(failures + 1)
    with pytest.raises(KeyError):
        run(retry, raising(KeyError("not retryable")))
    attempts.append(1)
    with pytest.raises(ValueError, match="forever"):
        run(retry, raising(ValueError("forever")))
    attempts.append(12)
    assert clock.sleeps == []

    retry_calls = {
        (s.labels["outcome"], s.labels["retried"]): s.value
        for s in samples(registry, "seawall_retry_calls_total", policy=name)
    }
    assert retry_calls == {
        ("success", "false"): 2,
        ("success", "true"): 5,
        ("failure", "false"): 1,
        ("failure", "true"): 1,
    }
    assert cumulative(registry, "seawall_retry_attempts", policy=name) == expected_buckets(
        ATTEMPT_BUCKETS, attempts
    )
    assert cumulative(registry, "seawall_retry_attempts", policy=name) == {
        1.0: 3,
        2.0: 4,
        3.0: 5,
        4.0: 5,
        5.0: 5,
        7.0: 6,
        10.0: 7,
        float("inf"): 9,
    }
    assert value(registry, "seawall_retry_attempts_count", policy=name) == 9
    assert value(registry, "seawall_retry_attempts_sum", policy=name) == 47
    assert value(registry, "seawall_retry_budget_exhausted_total", policy=name) == 0
    assert calls(registry, name, "success") == 7
    assert calls(registry, name, "failure") == 2
    assert errors(registry, name) == {("failure", "KeyError"): 1, ("failure", "ValueError"): 1}


def test_retry_budget_exhausted(run: Shell, registry: CollectorRegistry) -> None:
    clock = FakeClock()
    name = unique("budget")
    budget = RetryBudget(ratio=0.0, min_per_second=0.0, clock=clock)  # no retries at all
    retry = Retry(on=ValueError, attempts=3, wait=0, budget=budget, name=name, clock=clock)
    for _ in range(3):
        with pytest.raises(ValueError, match="down"):
            run(retry, raising(ValueError("down")))
    assert run(retry, lambda: "ok") == "ok"

    assert value(registry, "seawall_retry_budget_exhausted_total", policy=name) == 3
    retry_calls = "seawall_retry_calls_total"
    assert value(registry, retry_calls, policy=name, outcome="failure", retried="false") == 3
    assert value(registry, retry_calls, policy=name, outcome="failure", retried="true") == 0
    assert value(registry, retry_calls, policy=name, outcome="success", retried="false") == 1
    assert value(registry, "seawall_retry_attempts_bucket", policy=name, le="1.0") == 4
    assert value(registry, "seawall_retry_attempts_sum", policy=name) == 4


# -- timeout series -------------------------------------------------------------------------------


def timeout_calls(registry: CollectorRegistry, name: str) -> dict[str, float]:
    return {
        s.labels["outcome"]: s.value
        for s in samples(registry, "seawall_timeout_calls_total", policy=name)
    }


def test_sync_timeout_series(registry: CollectorRegistry) -> None:
    clock = FakeClock()
    name = unique("timeout-sync")
    timeout = Timeout(1.0, name=name, clock=clock)
    assert timeout_calls(registry, name) == {
        "success": 0,
        "failure": 0,
        "timeout": 0,
        "cancelled": 0,
    }
    assert timeout.call(taking(clock, 0.5)) == "ok"
    with pytest.raises(ValueError, match="bad"):
        timeout.call(raising(ValueError("bad")))
    with pytest.raises(TimeoutExceededError):
        timeout.call(taking(clock, 2.0))
    with pytest.raises(Abort):
        timeout.call(raising(Abort()))

    assert timeout_calls(registry, name) == {
        "success": 1,
        "failure": 1,
        "timeout": 1,
        "cancelled": 1,
    }
    for outcome in ("success", "failure", "timeout", "cancelled"):
        assert calls(registry, name, outcome) == 1
    assert errors(registry, name) == {
        ("failure", "ValueError"): 1,
        ("timeout", "TimeoutExceededError"): 1,
        ("cancelled", "Abort"): 1,
    }


def test_async_timeout_series(registry: CollectorRegistry, simulated: Simulation) -> None:
    name = unique("timeout-async")
    # Async timeouts cancel on the event loop's own clock: here a simulation's.
    timeout = Timeout(0.001, name=name)

    async def main() -> None:
        never = asyncio.Event()

        async def ok() -> str:
            return "ok"

        async def bad() -> NoReturn:
            raise ValueError("bad")

        assert await timeout.acall(ok) == "ok"
        with pytest.raises(ValueError, match="bad"):
            await timeout.acall(bad)
        with pytest.raises(TimeoutExceededError):
            await timeout.acall(never.wait)
        task = asyncio.create_task(timeout.acall(never.wait))
        await asyncio.sleep(0)
        task.cancel()  # from outside: cancelled, never a timeout
        with pytest.raises(asyncio.CancelledError):
            await task

    simulated.run(main)
    assert simulated.now() == 0.001  # the one cut, at its deadline; the rest took no time
    assert timeout_calls(registry, name) == {
        "success": 1,
        "failure": 1,
        "timeout": 1,
        "cancelled": 1,
    }
    for outcome in ("success", "failure", "timeout", "cancelled"):
        assert calls(registry, name, outcome) == 1
    assert errors(registry, name) == {
        ("failure", "ValueError"): 1,
        ("timeout", "TimeoutExceededError"): 1,
        ("cancelled", "CancelledError"): 1,
    }


# -- bulkhead series ------------------------------------------------------------------------------


def bulkhead_state(registry: CollectorRegistry, name: str) -> dict[str, float | None]:
    return {
        "active": value(registry, "seawall_bulkhead_active", policy=name),
        "queued": value(registry, "seawall_bulkhead_queued", policy=name),
        "limit": value(registry, "seawall_bulkhead_limit", policy=name),
        "admitted": value(
            registry, "seawall_bulkhead_calls_total", policy=name, outcome="admitted"
        ),
        "rejected": value(
            registry, "seawall_bulkhead_calls_total", policy=name, outcome="rejected"
        ),
    }


def test_bulkhead_series_while_calls_are_in_flight(run: Shell, registry: CollectorRegistry) -> None:
    clock = CountingClock()
    name = unique("bulkhead")
    bulkhead = Bulkhead(2, max_queue=1, max_wait=HANG, name=name, clock=clock)
    assert bulkhead_state(registry, name) == {
        "active": 0,
        "queued": 0,
        "limit": 2,
        "admitted": 0,
        "rejected": 0,
    }

    held = run.hold(bulkhead, 2)
    assert held.admitted == 2
    assert bulkhead_state(registry, name) == {
        "active": 2,
        "queued": 0,
        "limit": 2,
        "admitted": 2,
        "rejected": 0,
    }

    outcome: list[object] = []
    queued = threading.Thread(target=lambda: outcome.append(run(bulkhead, lambda: "queued")))
    queued.start()
    # One read for the queued call's SLI, one for the start of its wait.
    wait_until(
        lambda: bulkhead.queued == 1 and clock.reads_by(queued.ident) >= 2,
        "the third call to queue and note when its wait began",
    )
    assert bulkhead_state(registry, name) == {
        "active": 2,
        "queued": 1,
        "limit": 2,
        "admitted": 2,
        "rejected": 0,
    }
    with pytest.raises(BulkheadFullError):
        run(bulkhead, lambda: "no room")
    assert bulkhead_state(registry, name) == {
        "active": 2,
        "queued": 1,
        "limit": 2,
        "admitted": 2,
        "rejected": 1,
    }

    clock.advance(0.375)
    assert held.release() == ["done", "done"]
    queued.join(HANG)
    assert outcome == ["queued"]
    assert bulkhead_state(registry, name) == {
        "active": 0,
        "queued": 0,
        "limit": 2,
        "admitted": 3,
        "rejected": 1,
    }
    # Two calls admitted at once (0 s, the first bucket), one after 0.375 s in the queue.
    assert cumulative(registry, "seawall_bulkhead_wait_seconds", policy=name) == expected_buckets(
        DURATION_BUCKETS, [0.0, 0.0, 0.375]
    )
    assert value(registry, "seawall_bulkhead_wait_seconds_bucket", policy=name, le="0.005") == 2
    assert value(registry, "seawall_bulkhead_wait_seconds_bucket", policy=name, le="0.25") == 2
    assert value(registry, "seawall_bulkhead_wait_seconds_bucket", policy=name, le="0.5") == 3
    assert value(registry, "seawall_bulkhead_wait_seconds_count", policy=name) == 3
    assert value(registry, "seawall_bulkhead_wait_seconds_sum", policy=name) == 0.375
    assert calls(registry, name, "success") == 3
    assert calls(registry, name, "rejected") == 1
    assert errors(registry, name) == {("rejected", "BulkheadFullError"): 1}


def test_async_bulkhead_series_on_one_loop(registry: CollectorRegistry) -> None:
    clock = FakeClock()
    name = unique("bulkhead-async")
    bulkhead = Bulkhead(1, max_queue=2, max_wait=HANG, name=name, clock=clock)

    async def main() -> None:
        gate = asyncio.Event()

        async def body(label: str) -> str:
            await gate.wait()
            return label

        holder = asyncio.create_task(bulkhead.acall(body, "holder"))
        await asyncio.sleep(0)
        first = asyncio.create_task(bulkhead.acall(body, "first"))
        await asyncio.sleep(0)
        clock.advance(0.0625)
        second = asyncio.create_task(bulkhead.acall(body, "second"))
        await asyncio.sleep(0)
        assert bulkhead_state(registry, name) == {
            "active": 1,
            "queued": 2,
            "limit": 1,
            "admitted": 1,
            "rejected": 0,
        }
        with pytest.raises(BulkheadFullError):
            await bulkhead.acall(body, "no room")
        clock.advance(2.0)
        gate.set()
        assert list(await asyncio.gather(holder, first, second)) == ["holder", "first", "second"]

    asyncio.run(main())
    assert bulkhead_state(registry, name) == {
        "active": 0,
        "queued": 0,
        "limit": 1,
        "admitted": 3,
        "rejected": 1,
    }
    waits = [0.0, 2.0625, 2.0]
    assert cumulative(registry, "seawall_bulkhead_wait_seconds", policy=name) == expected_buckets(
        DURATION_BUCKETS, waits
    )
    assert value(registry, "seawall_bulkhead_wait_seconds_sum", policy=name) == sum(waits)


# -- configure() ----------------------------------------------------------------------------------


def breaker_successes(registry: CollectorRegistry, name: str) -> float | None:
    return value(registry, "seawall_circuit_breaker_calls_total", policy=name, outcome="success")


def test_configuring_the_same_registry_twice_duplicates_nothing(
    registry: CollectorRegistry,
) -> None:
    name = unique("twice")
    breaker = CircuitBreaker(name=name)
    breaker.call(lambda: None)
    configure(prometheus=registry)
    configure(prometheus=registry)
    configure()  # None: leave it as it is

    found = samples(registry, "seawall_circuit_breaker_calls_total", policy=name, outcome="success")
    assert [s.value for s in found] == [1]
    assert len(samples(registry, f"{CALLS}_count", operation=name, outcome="success")) == 1
    text = generate_latest(registry).decode()
    assert text.count("# TYPE seawall_circuit_breaker_calls_total counter") == 1
    names = [family.name for family in registry.collect()]
    assert len(names) == len(set(names))


def test_configure_moves_the_series_between_registries(registry: CollectorRegistry) -> None:
    before_name, after_name = unique("before"), unique("after")
    before = CircuitBreaker(name=before_name)
    before.call(lambda: None)
    assert breaker_successes(registry, before_name) == 1
    assert breaker_successes(REGISTRY, before_name) is None

    other = CollectorRegistry()
    configure(prometheus=other)
    after = CircuitBreaker(name=after_name)
    after.call(lambda: None)
    after.call(lambda: None)
    assert list(registry.collect()) == []
    assert breaker_successes(other, before_name) == 1
    assert breaker_successes(other, after_name) == 2

    configure(prometheus=False)
    assert list(other.collect()) == []
    assert list(registry.collect()) == []
    assert breaker_successes(REGISTRY, before_name) is None

    configure(prometheus=registry)
    assert breaker_successes(registry, before_name) == 1
    assert breaker_successes(registry, after_name) == 2
    assert calls(registry, after_name, "success") == 2

    configure(prometheus=True)  # the default registry, as out of the box
    assert breaker_successes(REGISTRY, before_name) == 1
    assert breaker_successes(REGISTRY, after_name) == 2
    assert list(registry.collect()) == []


@pytest.mark.parametrize("bad", ["x", 1, object(), [CollectorRegistry()]])
def test_configure_rejects_other_types(registry: CollectorRegistry, bad: object) -> None:
    name = unique("typeerror")
    breaker = CircuitBreaker(name=name)
    breaker.call(lambda: None)
    with pytest.raises(TypeError, match="prometheus must be"):
        configure(prometheus=bad)  # type: ignore[arg-type]
    assert breaker_successes(registry, name) == 1  # nothing moved


def test_the_default_registry_has_the_series_out_of_the_box(tmp_path: Any) -> None:
    script = textwrap.dedent(
        """
        import seawall
        from prometheus_client import generate_latest

        breaker = seawall.CircuitBreaker(name="out-of-the-box")
        breaker.call(lambda: None)
        print(generate_latest().decode())
        """
    )
    env = {
        key: val
        for key, val in os.environ.items()
        if key.lower() != "prometheus_multiproc_dir" and not key.startswith("OTEL_")
    }
    done = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        cwd=tmp_path,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    for line in (
        "# TYPE seawall_call_duration_seconds histogram",
        'seawall_call_duration_seconds_count{operation="out-of-the-box",outcome="success"} 1.0',
        'seawall_call_duration_seconds_count{operation="out-of-the-box",outcome="failure"} 0.0',
        'seawall_circuit_breaker_calls_total{outcome="success",policy="out-of-the-box"} 1.0',
        'seawall_circuit_breaker_state{policy="out-of-the-box",state="closed"} 1.0',
    ):
        assert line in lines, done.stdout
    assert "python_info" in done.stdout  # the default registry, with its own collectors


@pytest.mark.parametrize(
    "build",
    [
        lambda name: CircuitBreaker(name=name, failure_ratio=2.0),
        lambda name: Retry(name=name),
        lambda name: Timeout(-1.0, name=name),
        lambda name: Bulkhead(0, name=name),
    ],
    ids=["breaker", "retry", "timeout", "bulkhead"],
)
def test_a_policy_whose_constructor_raised_does_not_break_the_scrape(
    registry: CollectorRegistry, build: Callable[[str], Any]
) -> None:
    name, bystander = unique("half-built"), unique("bystander")
    breaker = CircuitBreaker(name=bystander)
    breaker.call(lambda: None)
    # The exception's traceback keeps the half-built policy alive (and registered).
    with pytest.raises((TypeError, ValueError)) as raised:
        build(name)
    assert raised.value.__traceback__ is not None

    text = generate_latest(registry).decode()
    assert name not in text
    assert breaker_successes(registry, bystander) == 1


def test_a_policy_still_being_built_is_not_read_until_it_is_complete(
    registry: CollectorRegistry,
) -> None:
    # What a scrape in another thread sees while a constructor runs: registered by
    # PolicyBase.__init__, the subclass's own state not set up yet.
    name = unique("being-built")
    breaker = CircuitBreaker.__new__(CircuitBreaker)
    PolicyBase.__init__(breaker, name=name, clock=None)
    assert name not in generate_latest(registry).decode()

    CircuitBreaker.__init__(breaker, name=name)
    breaker.call(lambda: None)
    assert breaker_successes(registry, name) == 1
    assert calls(registry, name, "success") == 1


def test_the_openmetrics_exposition_is_valid(registry: CollectorRegistry) -> None:
    clock = FakeClock()
    breaker = CircuitBreaker(name=unique("om-breaker"), clock=clock)
    retry = Retry(on=ValueError, attempts=2, wait=0, name=unique("om-retry"), clock=clock)
    bulkhead = Bulkhead(1, name=unique("om-bulkhead"), clock=clock)
    breaker.call(taking(clock, 0.3))
    with pytest.raises(ValueError, match="down"):
        retry.call(raising(ValueError("down")))
    bulkhead.call(lambda: None)
    timeout = Timeout(1.0, name=unique("om-timeout"), clock=clock)
    timeout.call(lambda: None)
    injector = chaos.inject(chaos.ConnectError(), name=unique("om-chaos"), clock=clock)
    shared = CircuitBreaker(name=unique("om-shared"), clock=clock, shared=stopped_state())
    breaker.isolate()

    text = openmetrics_latest(registry).decode()
    families = {family.name: family for family in openmetrics_parse(text)}
    for metric in CATALOGUE:
        if metric.name == HTTP:
            continue
        family_name = (
            metric.name.removesuffix("_total") if metric.kind == "counter" else metric.name
        )
        assert families[family_name].type == metric.kind
    assert injector.snapshot().injections == {"connect_error": 0}  # kept alive until here
    assert shared.snapshot().shared_up is False  # kept alive until here; its Redis is gone


# -- concurrency ----------------------------------------------------------------------------------


def test_threads_hammering_one_decorated_breaker_give_exact_counts(
    registry: CollectorRegistry,
) -> None:
    name = unique("threads")
    threads_n, per_thread = 8, 10_000
    breaker = quiet_breaker(name, FakeClock())

    @breaker
    def work(i: int) -> int:
        if i % 4 == 0:
            raise ValueError("every fourth")
        return i

    start = threading.Barrier(threads_n + 1)
    done = threading.Event()
    problems: list[BaseException] = []

    def hammer() -> None:
        start.wait(HANG)
        for i in range(per_thread):
            try:
                work(i)
            except ValueError:
                pass

    def scrape() -> None:
        # Readings taken while the calls run never go backwards.
        last = (0.0, 0.0)
        try:
            while not done.is_set():
                now = (calls(registry, name, "success") or 0, calls(registry, name, "failure") or 0)
                assert now[0] >= last[0], (last, now)
                assert now[1] >= last[1], (last, now)
                last = now
        except BaseException as exc:
            problems.append(exc)

    workers = [threading.Thread(target=hammer) for _ in range(threads_n)]
    scraper = threading.Thread(target=scrape)
    for thread in (*workers, scraper):
        thread.start()
    start.wait(HANG)
    for thread in workers:
        thread.join(HANG)
    done.set()
    scraper.join(HANG)
    assert problems == []

    failures = threads_n * per_thread // 4
    successes = threads_n * per_thread - failures
    assert calls(registry, name, "success") == successes
    assert calls(registry, name, "failure") == failures
    assert errors(registry, name) == {("failure", "ValueError"): failures}
    breaker_calls = "seawall_circuit_breaker_calls_total"
    assert value(registry, breaker_calls, policy=name, outcome="success") == successes
    assert value(registry, breaker_calls, policy=name, outcome="failure") == failures
    one_hot(registry, name, "closed")

    # Threads that ended hand their counts over when they are gone: nothing is lost.
    del workers
    assert calls(registry, name, "success") == successes
    assert calls(registry, name, "failure") == failures


def test_tasks_hammering_one_decorated_breaker_give_exact_counts(
    registry: CollectorRegistry,
) -> None:
    name = unique("tasks")
    tasks_n, per_task = 100, 200
    breaker = quiet_breaker(name, FakeClock())

    @breaker
    async def work(i: int) -> int:
        await asyncio.sleep(0)
        if i % 5 == 0:
            raise ValueError("every fifth")
        return i

    async def hammer() -> None:
        for i in range(per_task):
            try:
                await work(i)
            except ValueError:
                pass

    async def main() -> None:
        await asyncio.gather(*(hammer() for _ in range(tasks_n)))

    asyncio.run(main())
    failures = tasks_n * per_task // 5
    successes = tasks_n * per_task - failures
    assert calls(registry, name, "success") == successes
    assert calls(registry, name, "failure") == failures
    assert errors(registry, name) == {("failure", "ValueError"): failures}
    breaker_calls = "seawall_circuit_breaker_calls_total"
    assert value(registry, breaker_calls, policy=name, outcome="success") == successes
    assert value(registry, breaker_calls, policy=name, outcome="failure") == failures


# -- label safety ---------------------------------------------------------------------------------


@pytest.mark.parametrize("bad", ["", "line\nbreak", "nul\x00", "tab\there", "zero\u200bwidth"])
@pytest.mark.parametrize(
    "make",
    [
        lambda name: CircuitBreaker(name=name),
        lambda name: Retry(on=ValueError, name=name),
        lambda name: Timeout(1.0, name=name),
        lambda name: Bulkhead(1, name=name),
        lambda name: Fallback(None, on=ValueError, name=name),
        lambda name: Pipeline(CircuitBreaker(), name=name),
        lambda name: Policy(name, breaker=True),
    ],
    ids=["breaker", "retry", "timeout", "bulkhead", "fallback", "pipeline", "policy"],
)
def test_names_are_validated(make: Callable[[str], Any], bad: str) -> None:
    with pytest.raises(ValueError, match="name"):
        make(bad)


def test_a_name_must_be_a_string() -> None:
    with pytest.raises(TypeError, match="name"):
        CircuitBreaker(name=42)  # type: ignore[arg-type]


def test_nothing_from_an_exception_message_becomes_a_label(
    run: Shell, registry: CollectorRegistry
) -> None:
    clock = FakeClock()
    message = "user 12345 at http://x/y"
    name = unique("safety")
    policy = Policy(
        name,
        retry=Retry(on=ValueError, attempts=2, wait=0, clock=clock),
        breaker=CircuitBreaker(clock=clock, minimum_calls=2),
        bulkhead=Bulkhead(1, clock=clock),
    )
    with pytest.raises(ValueError, match="12345"):
        run(policy, raising(ValueError(message)))
    with pytest.raises(CircuitOpenError):  # the breaker tripped
        run(policy, raising(ValueError(message)))
    timeout = Timeout(1.0, name=unique("safety-timeout"), clock=clock)
    with pytest.raises(ValueError, match="12345"):
        run(timeout, raising(ValueError(message)))

    assert errors(registry, name) == {
        ("failure", "ValueError"): 1,
        ("rejected", "CircuitOpenError"): 1,
    }
    for family in registry.collect():
        for s in family.samples:
            for label in s.labels.values():
                # Other tests' live policies may have "http" or "user" in their names.
                assert "12345" not in label, s
                assert "http://x/y" not in label, s
                assert "user 1" not in label, s


# -- a policy written straight on a function -------------------------------------------------


@pytest.mark.parametrize(
    "make",
    [
        lambda name: seawall.Policy(name, retry=seawall.Retry(on=OSError), breaker=True),
        lambda name: seawall.Pipeline(seawall.Timeout(5), seawall.Bulkhead(4), name=name),
        lambda name: seawall.Fallback(lambda exc: 0, on=OSError, name=name),
        lambda name: seawall.Retry(on=OSError, name=name),
    ],
    ids=["Policy", "Pipeline", "Fallback", "Retry"],
)
@pytest.mark.parametrize("is_async", [False, True], ids=["sync", "async"])
def test_a_policy_written_on_a_function_lives_as_long_as_the_function(
    registry: CollectorRegistry, make: Callable[[str], Any], is_async: bool
) -> None:
    import gc

    name = unique("inline")
    if is_async:

        async def afn() -> int:
            return 1

        decorated: Any = make(name)(afn)
    else:

        def fn() -> int:
            return 1

        decorated = make(name)(fn)
    gc.collect()  # nothing but the decorated function holds the policy now
    for _ in range(3):
        result = decorated()
        if is_async:
            result = asyncio.run(result)
        assert result == 1
    gc.collect()
    assert value(registry, f"{CALLS}_count", operation=name, outcome="success") == 3
