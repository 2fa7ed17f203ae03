"""Circuit breaker overhead on the success path: seawall against the peer libraries.

Overhead = per-call time of a decorated no-op minus that of the bare no-op (see _harness for the
method). Every breaker is built with its library's defaults: no storage backend other than the
default in-memory one, no listeners, no fallback. After timing, each breaker is checked to be
still closed with no failure recorded, so only the success path was measured.

The bar: seawall breaker overhead <= 0.3 x pybreaker's (sync, decorated). And what an
OpenTelemetry SDK adds per call on the caller's thread (the ``with OpenTelemetry SDK`` row's
minimum minus ``seawall``'s, same rounds) <= 2 µs: seawall records the call-duration histogram
for it.

Run: ``python benchmarks/run.py breaker`` (or ``python benchmarks/bench_breaker.py``).
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from typing import Any

from _harness import (
    BASELINE,
    OTEL_NOTE,
    Candidate,
    RunConfig,
    SkipCandidate,
    Suite,
    SuiteResult,
    Table,
    added_bar,
    anoop,
    bare,
    cli,
    noop,
    otel_sdk,
    overhead_suite,
)

BAR_LIMIT = 0.3
OTEL_LIMIT_US = 2.0
OTEL_ROW = "seawall with OpenTelemetry SDK [info]"


# -- sync candidates ---------------------------------------------------------------------------


def _seawall_check(breaker: Any) -> Callable[[], str | None]:
    def check() -> str | None:
        snap = breaker.snapshot()
        if snap.state != "closed" or snap.failures or snap.rejected or not snap.successes:
            return f"breaker not on the success path: {snap}"
        return None

    return check


def seawall_sync() -> Candidate:
    import seawall

    breaker = seawall.CircuitBreaker(name="bench")
    return Candidate("seawall", breaker(noop()), "seawall", _seawall_check(breaker))


def seawall_sync_count() -> Candidate:
    import seawall

    breaker = seawall.CircuitBreaker(name="bench", window_calls=100)
    return Candidate(
        "seawall window_calls=100", breaker(noop()), "seawall", _seawall_check(breaker)
    )


def seawall_sync_call() -> Candidate:
    import seawall

    breaker = seawall.CircuitBreaker(name="bench")
    # functools.partial is a C callable: this times breaker.call() without a Python wrapper.
    return Candidate(
        "seawall .call() [info]",
        functools.partial(breaker.call, noop()),
        "seawall",
        _seawall_check(breaker),
        note="breaker.call(fn) without the decorator's wrapper frame, for comparison",
    )


def seawall_sync_otel() -> Candidate:
    import seawall

    around = otel_sdk()
    breaker = seawall.CircuitBreaker(name="bench-otel")
    return Candidate(
        OTEL_ROW, breaker(noop()), "seawall", _seawall_check(breaker), OTEL_NOTE, around
    )


def pybreaker_sync() -> Candidate:
    import pybreaker

    breaker = pybreaker.CircuitBreaker()  # fail_max=5, memory storage, no listeners

    def check() -> str | None:
        if breaker.current_state != "closed" or breaker.fail_counter:
            return f"state {breaker.current_state}, fail_counter {breaker.fail_counter}"
        return None

    return Candidate("pybreaker", breaker(noop()), "pybreaker", check)


def circuitbreaker_sync() -> Candidate:
    import circuitbreaker

    breaker = circuitbreaker.CircuitBreaker(name="bench")  # threshold 5, no fallback

    def check() -> str | None:
        if not breaker.closed or breaker.failure_count:
            return f"state {breaker.state}, failure_count {breaker.failure_count}"
        return None

    return Candidate("circuitbreaker", breaker(noop()), "circuitbreaker", check)


def _interlock_check(breaker: Any) -> Callable[[], str | None]:
    from interlock import State

    def check() -> str | None:
        snap = breaker.snapshot()
        if breaker.state != State.CLOSED or snap.failed_calls or not snap.total_calls:
            return f"state {breaker.state}, window {snap}"
        return None

    return check


def interlock_sync() -> Candidate:
    import interlock

    # Default Config (count window of 100), no listener, no storage.
    breaker = interlock.CircuitBreaker(name="bench")
    return Candidate("interlock-cb", breaker(noop()), "interlock-cb", _interlock_check(breaker))


def purgatory_sync() -> Candidate:
    import purgatory

    factory = purgatory.SyncCircuitBreakerFactory()  # in-memory unit of work, no listeners

    def check() -> str | None:
        context = factory.get_breaker("bench").context
        if context.state != "closed" or context.failure_count:
            return f"state {context.state}, failure_count {context.failure_count}"
        return None

    return Candidate("purgatory", factory("bench")(noop()), "purgatory", check)


# -- async candidates --------------------------------------------------------------------------


def seawall_async() -> Candidate:
    import seawall

    breaker = seawall.CircuitBreaker(name="bench")
    return Candidate("seawall", breaker(anoop()), "seawall", _seawall_check(breaker))


def seawall_async_count() -> Candidate:
    import seawall

    breaker = seawall.CircuitBreaker(name="bench", window_calls=100)
    return Candidate(
        "seawall window_calls=100", breaker(anoop()), "seawall", _seawall_check(breaker)
    )


def aiobreaker_async() -> Candidate:
    import aiobreaker

    breaker = aiobreaker.CircuitBreaker()  # fail_max=5, memory storage, no listeners

    def check() -> str | None:
        if breaker.current_state != aiobreaker.CircuitBreakerState.CLOSED or breaker.fail_counter:
            return f"state {breaker.current_state}, fail_counter {breaker.fail_counter}"
        return None

    return Candidate("aiobreaker", breaker(anoop()), "aiobreaker", check)


def purgatory_async() -> Candidate:
    import purgatory

    factory = purgatory.AsyncCircuitBreakerFactory()  # in-memory unit of work, no listeners

    async def check() -> str | None:
        context = (await factory.get_breaker("bench")).context
        if context.state != "closed" or context.failure_count:
            return f"state {context.state}, failure_count {context.failure_count}"
        return None

    return Candidate("purgatory", factory("bench")(anoop()), "purgatory", check)


def circuitbreaker_async() -> Candidate:
    import circuitbreaker

    breaker = circuitbreaker.CircuitBreaker(name="bench-async")

    def check() -> str | None:
        if not breaker.closed or breaker.failure_count:
            return f"state {breaker.state}, failure_count {breaker.failure_count}"
        return None

    return Candidate("circuitbreaker", breaker(anoop()), "circuitbreaker", check)


def pybreaker_async() -> Candidate:
    import pybreaker

    tornado = "installed" if pybreaker.HAS_TORNADO_SUPPORT else "not installed"
    raise SkipCandidate(
        "no asyncio call path: pybreaker's call_async is built on tornado.gen coroutines "
        f"(tornado {tornado})"
    )


def interlock_async() -> Candidate:
    import interlock

    breaker = interlock.CircuitBreaker(name="bench-async")
    return Candidate("interlock-cb", breaker(anoop()), "interlock-cb", _interlock_check(breaker))


# -- the suite ---------------------------------------------------------------------------------


SYNC = [
    (BASELINE, bare(noop())),
    ("seawall", seawall_sync),
    ("seawall window_calls=100", seawall_sync_count),
    ("seawall .call() [info]", seawall_sync_call),
    (OTEL_ROW, seawall_sync_otel),
    ("pybreaker", pybreaker_sync),
    ("circuitbreaker", circuitbreaker_sync),
    ("interlock-cb", interlock_sync),
    ("purgatory", purgatory_sync),
]

ASYNC = [
    (BASELINE, bare(anoop())),
    ("seawall", seawall_async),
    ("seawall window_calls=100", seawall_async_count),
    ("aiobreaker", aiobreaker_async),
    ("purgatory", purgatory_async),
    ("circuitbreaker", circuitbreaker_async),
    ("pybreaker", pybreaker_async),
    ("interlock-cb", interlock_async),
]


def run(config: RunConfig) -> SuiteResult:
    result = overhead_suite(
        config,
        name="breaker",
        subject="seawall",
        sync=SYNC,
        async_=ASYNC,
        sync_title="sync: decorated no-op, overhead per call vs the bare function",
        async_title="async: awaited decorated no-op in one event loop, overhead per call vs bare",
        sync_reference="pybreaker",
        async_reference="aiobreaker",
        bar_id="breaker_overhead_vs_pybreaker",
        bar_description=f"seawall breaker overhead <= {BAR_LIMIT} x pybreaker's (sync)",
        limit=BAR_LIMIT,
        missing="pybreaker not installed",
    )
    sync_table = next((t for t in result.tables if isinstance(t, Table)), None)
    if sync_table is not None:
        result.bars.append(
            added_bar(
                sync_table,
                OTEL_ROW,
                "seawall",
                bar_id="breaker_added_per_call_with_otel_sdk_us",
                description=f"added per call with an OpenTelemetry SDK <= {OTEL_LIMIT_US:g} µs "
                "(sync breaker)",
                limit_us=OTEL_LIMIT_US,
            )
        )
    return result


SUITE = Suite("breaker", "circuit breaker success-path overhead vs peers", run)

if __name__ == "__main__":
    sys.exit(cli(sys.argv[1:], {SUITE.name: SUITE}))
