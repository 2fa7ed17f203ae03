"""Full-policy overhead on the success path: a seawall Policy against peer libraries stacked.

Overhead = per-call time of a decorated no-op minus that of the bare no-op (see _harness for the
method). seawall's candidate is ``Policy("p", retry=Retry(on=ConnectionError),
breaker=CircuitBreaker(), bulkhead=Bulkhead(100))``; the reference is what one would write
without seawall: tenacity (retry on ``ConnectionError``, 3 attempts, exponential backoff with
jitter) decorating a pybreaker-decorated function (sync) or an aiobreaker-decorated coroutine
function (async), every library with its defaults otherwise. After timing, each candidate is
checked to have stayed on the success path: breakers closed with no failure, no retry, the
bulkhead empty with nothing rejected, no timeout.

The bars: a full Policy's overhead <= 0.2 x (tenacity + pybreaker)'s (sync); the async Policy
with a total and an attempt timeout (30 s and 10 s, never reached) <= 4 µs overhead per call
(median over rounds): async timeouts have asyncio.timeout's semantics without a timer per
call; and what an OpenTelemetry SDK adds per call on the caller's thread (the ``with
OpenTelemetry SDK`` rows' minimum minus ``seawall Policy``'s, same rounds), sync and async,
<= 2 µs each: seawall records the call-duration, retry-attempts and bulkhead-wait histograms
for it. The async ratio to the peers is reported alongside, not as a bar.

Run: ``python benchmarks/run.py policy`` (or ``python benchmarks/bench_policy.py``).
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from typing import Any

from _harness import (
    BASELINE,
    OTEL_NOTE,
    Bar,
    Candidate,
    RunConfig,
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

BAR_LIMIT = 0.2
OTEL_LIMIT_US = 2.0
OTEL_ROW = "seawall Policy with OpenTelemetry SDK [info]"
ATTEMPTS = 3
REFERENCE_SYNC = "tenacity + pybreaker"
REFERENCE_ASYNC = "tenacity + aiobreaker"
# Timeouts of the "+ timeouts" rows: long enough never to expire while a no-op runs.
TOTAL_TIMEOUT = 30.0
ATTEMPT_TIMEOUT = 10.0
TIMEOUTS_ROW = "seawall Policy + timeouts"
#: The async Policy with both timeouts: its overhead per call (median over rounds), in ns.
ASYNC_TIMEOUTS_LIMIT_NS = 4000.0


# -- seawall -----------------------------------------------------------------------------------


def _policy(timeouts: bool = False) -> Any:
    import seawall

    return seawall.Policy(
        "p",
        retry=seawall.Retry(on=ConnectionError, attempts=ATTEMPTS),
        breaker=seawall.CircuitBreaker(),
        bulkhead=seawall.Bulkhead(100),
        total_timeout=TOTAL_TIMEOUT if timeouts else None,
        attempt_timeout=ATTEMPT_TIMEOUT if timeouts else None,
    )


def _policy_check(policy: Any) -> Callable[[], str | None]:
    def check() -> str | None:
        problems = []
        retry = policy.retry.snapshot()
        others = sum(n for key, n in retry.calls.items() if key != ("success", False))
        if not retry.calls.get(("success", False)) or others or retry.retries:
            problems.append(f"retry {retry}")
        breaker = policy.breaker.snapshot()
        if breaker.state != "closed" or breaker.failures or breaker.rejected:
            problems.append(f"breaker {breaker}")
        if not breaker.successes:
            problems.append(f"breaker saw no call: {breaker}")
        bulkhead = policy.bulkhead.snapshot()
        if bulkhead.active or bulkhead.queued or bulkhead.rejected or not bulkhead.admitted:
            problems.append(f"bulkhead {bulkhead}")
        for timeout in (policy.total_timeout, policy.attempt_timeout):
            if timeout is not None:
                counts = timeout._counts.as_dict()
                if not counts["success"] or any(v for k, v in counts.items() if k != "success"):
                    problems.append(f"timeout {timeout.name}: {counts}")
        return "not on the success path: " + "; ".join(problems) if problems else None

    return check


def seawall_sync() -> Candidate:
    policy = _policy()
    return Candidate("seawall Policy", policy(noop()), "seawall", _policy_check(policy))


def seawall_sync_call() -> Candidate:
    policy = _policy()
    # functools.partial is a C callable: this times policy.call() without a Python wrapper.
    return Candidate(
        "seawall Policy .call() [info]",
        functools.partial(policy.call, noop()),
        "seawall",
        _policy_check(policy),
        note="policy.call(fn) without the decorator's wrapper frame, for comparison",
    )


def seawall_sync_timeouts() -> Candidate:
    policy = _policy(timeouts=True)
    return Candidate(
        TIMEOUTS_ROW,
        policy(noop()),
        "seawall",
        _policy_check(policy),
        note=f"total_timeout={TOTAL_TIMEOUT:g}, attempt_timeout={ATTEMPT_TIMEOUT:g} added",
    )


def seawall_sync_otel() -> Candidate:
    around = otel_sdk()
    policy = _policy()
    return Candidate(OTEL_ROW, policy(noop()), "seawall", _policy_check(policy), OTEL_NOTE, around)


def seawall_async_otel() -> Candidate:
    around = otel_sdk()
    policy = _policy()
    return Candidate(OTEL_ROW, policy(anoop()), "seawall", _policy_check(policy), OTEL_NOTE, around)


def seawall_async() -> Candidate:
    policy = _policy()
    return Candidate("seawall Policy", policy(anoop()), "seawall", _policy_check(policy))


def seawall_async_timeouts() -> Candidate:
    policy = _policy(timeouts=True)
    return Candidate(
        TIMEOUTS_ROW,
        policy(anoop()),
        "seawall",
        _policy_check(policy),
        note=f"total_timeout={TOTAL_TIMEOUT:g}, attempt_timeout={ATTEMPT_TIMEOUT:g} added "
        "(asyncio.timeout's semantics, one timer per event loop rather than one per call)",
    )


# -- peers -------------------------------------------------------------------------------------


def _tenacity_decorator() -> Callable[[Any], Any]:
    import tenacity

    return tenacity.retry(
        retry=tenacity.retry_if_exception_type(ConnectionError),
        stop=tenacity.stop_after_attempt(ATTEMPTS),
        wait=tenacity.wait_exponential_jitter(),
    )


def _backoff_decorator() -> Callable[[Any], Any]:
    import backoff

    return backoff.on_exception(backoff.expo, ConnectionError, max_tries=ATTEMPTS)


def _tenacity_problem(decorated: Any) -> str | None:
    stats = decorated.statistics  # the last call's statistics
    if stats.get("attempt_number") != 1:
        return f"tenacity: last call took more than one attempt: {stats}"
    return None


def _pybreaker() -> tuple[Any, Callable[[], str | None]]:
    import pybreaker

    breaker = pybreaker.CircuitBreaker()  # fail_max=5, memory storage, no listeners

    def problem() -> str | None:
        if breaker.current_state != "closed" or breaker.fail_counter:
            return f"pybreaker: state {breaker.current_state}, fail_counter {breaker.fail_counter}"
        return None

    return breaker, problem


def _aiobreaker() -> tuple[Any, Callable[[], str | None]]:
    import aiobreaker  # type: ignore[import-untyped, unused-ignore]

    breaker = aiobreaker.CircuitBreaker()  # fail_max=5, memory storage, no listeners

    def problem() -> str | None:
        if breaker.current_state != aiobreaker.CircuitBreakerState.CLOSED or breaker.fail_counter:
            return f"aiobreaker: state {breaker.current_state}, fail_counter {breaker.fail_counter}"
        return None

    return breaker, problem


def _joined(*problems: str | None) -> str | None:
    found = [p for p in problems if p]
    return "; ".join(found) if found else None


def tenacity_pybreaker_sync() -> Candidate:
    breaker, breaker_problem = _pybreaker()
    decorated = _tenacity_decorator()(breaker(noop()))
    return Candidate(
        REFERENCE_SYNC,
        decorated,
        "tenacity",
        lambda: _joined(_tenacity_problem(decorated), breaker_problem()),
        note="tenacity.retry around pybreaker.CircuitBreaker(); version shown is tenacity's",
    )


def backoff_pybreaker_sync() -> Candidate:
    breaker, breaker_problem = _pybreaker()
    decorated = _backoff_decorator()(breaker(noop()))
    return Candidate(
        "backoff + pybreaker [info]",
        decorated,
        "backoff",
        breaker_problem,
        note="backoff.on_exception around pybreaker.CircuitBreaker()",
    )


def tenacity_aiobreaker_async() -> Candidate:
    breaker, breaker_problem = _aiobreaker()
    decorated = _tenacity_decorator()(breaker(anoop()))  # AsyncRetrying
    return Candidate(
        REFERENCE_ASYNC,
        decorated,
        "tenacity",
        lambda: _joined(_tenacity_problem(decorated), breaker_problem()),
        note="tenacity.retry (AsyncRetrying) around aiobreaker.CircuitBreaker()",
    )


def tenacity_purgatory_async() -> Candidate:
    import purgatory

    factory = purgatory.AsyncCircuitBreakerFactory()  # in-memory unit of work, no listeners
    decorated = _tenacity_decorator()(factory("bench")(anoop()))

    async def check() -> str | None:
        context = (await factory.get_breaker("bench")).context
        problem = None
        if context.state != "closed" or context.failure_count:
            problem = f"purgatory: state {context.state}, failure_count {context.failure_count}"
        return _joined(_tenacity_problem(decorated), problem)

    return Candidate(
        "tenacity + purgatory [info]",
        decorated,
        "tenacity",
        check,
        note="tenacity.retry (AsyncRetrying) around purgatory's AsyncCircuitBreakerFactory",
    )


def backoff_aiobreaker_async() -> Candidate:
    breaker, breaker_problem = _aiobreaker()
    decorated = _backoff_decorator()(breaker(anoop()))
    return Candidate(
        "backoff + aiobreaker [info]",
        decorated,
        "backoff",
        breaker_problem,
        note="backoff.on_exception around aiobreaker.CircuitBreaker()",
    )


# -- the suite ---------------------------------------------------------------------------------


SYNC = [
    (BASELINE, bare(noop())),
    ("seawall Policy", seawall_sync),
    ("seawall Policy .call() [info]", seawall_sync_call),
    (TIMEOUTS_ROW, seawall_sync_timeouts),
    (OTEL_ROW, seawall_sync_otel),
    (REFERENCE_SYNC, tenacity_pybreaker_sync),
    ("backoff + pybreaker [info]", backoff_pybreaker_sync),
]

ASYNC = [
    (BASELINE, bare(anoop())),
    ("seawall Policy", seawall_async),
    (TIMEOUTS_ROW, seawall_async_timeouts),
    (OTEL_ROW, seawall_async_otel),
    (REFERENCE_ASYNC, tenacity_aiobreaker_async),
    ("tenacity + purgatory [info]", tenacity_purgatory_async),
    ("backoff + aiobreaker [info]", backoff_aiobreaker_async),
]


def run(config: RunConfig) -> SuiteResult:
    result = _run(config)
    tables = [t for t in result.tables if isinstance(t, Table) and t.kind == "async"]
    row = tables[0].row(TIMEOUTS_ROW) if tables else None
    invalid = row is not None and row.note.startswith("INVALID")
    result.bars.append(
        Bar(
            id="async_policy_timeouts_overhead_ns",
            description=(
                f"async seawall Policy with total and attempt timeouts: overhead per call <= "
                f"{ASYNC_TIMEOUTS_LIMIT_NS:,.0f} ns (median over rounds)"
            ),
            limit=ASYNC_TIMEOUTS_LIMIT_NS,
            measured=None if row is None else row.overhead_ns_median,
            detail="not run" if row is None else f"minimum over rounds {row.overhead_ns:,.0f} ns",
            valid=not invalid,
        )
    )
    return result


def _run(config: RunConfig) -> SuiteResult:
    result = overhead_suite(
        config,
        name="policy",
        subject="seawall Policy",
        sync=SYNC,
        async_=ASYNC,
        sync_title="sync: decorated no-op, retry + breaker + bulkhead, overhead per call vs bare",
        async_title="async: awaited decorated no-op in one event loop, overhead per call vs bare",
        sync_reference=REFERENCE_SYNC,
        async_reference=REFERENCE_ASYNC,
        bar_id="policy_overhead_vs_tenacity_pybreaker",
        bar_description=(
            f"seawall Policy overhead <= {BAR_LIMIT} x (tenacity + pybreaker)'s (sync)"
        ),
        limit=BAR_LIMIT,
        missing="tenacity or pybreaker not installed",
    )
    tables = [t for t in result.tables if isinstance(t, Table)]
    for table in tables:
        result.bars.append(
            added_bar(
                table,
                OTEL_ROW,
                "seawall Policy",
                bar_id=f"policy_added_per_call_with_otel_sdk_us_{table.kind}",
                description=f"added per call with an OpenTelemetry SDK <= {OTEL_LIMIT_US:g} µs "
                f"({table.kind} Policy)",
                limit_us=OTEL_LIMIT_US,
            )
        )
    return result


SUITE = Suite("policy", "full Policy success-path overhead vs tenacity + pybreaker", run)

if __name__ == "__main__":
    sys.exit(cli(sys.argv[1:], {SUITE.name: SUITE}))
