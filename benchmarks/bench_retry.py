"""Retry overhead on the success path: seawall against tenacity, stamina and backoff.

Overhead = per-call time of a decorated no-op minus that of the bare no-op (see _harness for the
method). The no-op succeeds at once, so no library ever waits or retries: what is timed is what
every successful call pays for being retryable. Each library is configured the same way: retry
on ``ConnectionError``, at most 3 attempts, exponential backoff with jitter (each library's own
default parameters). After timing, each candidate is checked to have stayed on the success path
(seawall: no retries, no budget refusal; tenacity: one attempt; stamina: active, not in testing
mode, so that its real retrying path was timed).

The bar: seawall retry overhead <= 0.1 x tenacity's (sync, decorated). The async ratio is
reported alongside, not as a bar.

Run: ``python benchmarks/run.py retry`` (or ``python benchmarks/bench_retry.py``).
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from typing import Any

from _harness import (
    BASELINE,
    Candidate,
    RunConfig,
    Suite,
    SuiteResult,
    anoop,
    bare,
    cli,
    noop,
    overhead_suite,
)

BAR_LIMIT = 0.1
ATTEMPTS = 3


# -- checks ------------------------------------------------------------------------------------


def _seawall_check(retry: Any) -> Callable[[], str | None]:
    def check() -> str | None:
        snap = retry.snapshot()
        first_try = snap.calls.get(("success", False), 0)
        others = sum(n for key, n in snap.calls.items() if key != ("success", False))
        if not first_try or others or snap.retries or snap.budget_exhausted:
            return f"retry not on the success path: {snap}"
        budget = retry.budget
        if budget is not None:
            spent = budget.snapshot()
            if spent.retries or spent.refused or not spent.calls:
                return f"budget not on the success path: {spent}"
        return None

    return check


def _tenacity_check(decorated: Any) -> Callable[[], str | None]:
    def check() -> str | None:
        stats = decorated.statistics  # the last call's statistics
        if stats.get("attempt_number") != 1:
            return f"last call took more than one attempt: {stats}"
        return None

    return check


def _stamina_check() -> str | None:
    import stamina

    if not stamina.is_active() or stamina.is_testing():
        return f"stamina active={stamina.is_active()}, testing={stamina.is_testing()}"
    return None


def _stamina_activate() -> None:
    import stamina

    # A test suite (or STAMINA_*) may have switched retrying off, which would time a shortcut.
    stamina.set_active(True)
    if stamina.is_testing():
        stamina.set_testing(False)


# -- sync candidates ---------------------------------------------------------------------------


def _seawall_retry(budget: bool = False) -> Any:
    import seawall

    return seawall.Retry(
        on=ConnectionError,
        attempts=ATTEMPTS,
        budget=seawall.RetryBudget() if budget else None,
        name="bench",
    )


def seawall_sync() -> Candidate:
    retry = _seawall_retry()
    return Candidate("seawall", retry(noop()), "seawall", _seawall_check(retry))


def seawall_sync_budget() -> Candidate:
    retry = _seawall_retry(budget=True)
    return Candidate(
        "seawall + RetryBudget [info]",
        retry(noop()),
        "seawall",
        _seawall_check(retry),
        note="RetryBudget() defaults (ratio 0.2, 10/s): each call is deposited in the budget",
    )


def seawall_sync_call() -> Candidate:
    retry = _seawall_retry()
    # functools.partial is a C callable: this times retry.call() without a Python wrapper.
    return Candidate(
        "seawall .call() [info]",
        functools.partial(retry.call, noop()),
        "seawall",
        _seawall_check(retry),
        note="retry.call(fn) without the decorator's wrapper frame, for comparison",
    )


def _tenacity_decorator() -> Callable[[Any], Any]:
    import tenacity

    return tenacity.retry(
        retry=tenacity.retry_if_exception_type(ConnectionError),
        stop=tenacity.stop_after_attempt(ATTEMPTS),
        wait=tenacity.wait_exponential_jitter(),
    )


def tenacity_sync() -> Candidate:
    decorated = _tenacity_decorator()(noop())
    return Candidate("tenacity", decorated, "tenacity", _tenacity_check(decorated))


def stamina_sync() -> Candidate:
    import stamina

    _stamina_activate()
    decorated = stamina.retry(on=ConnectionError, attempts=ATTEMPTS)(noop())
    return Candidate("stamina", decorated, "stamina", _stamina_check)


def backoff_sync() -> Candidate:
    import backoff

    decorated = backoff.on_exception(backoff.expo, ConnectionError, max_tries=ATTEMPTS)(noop())
    return Candidate("backoff", decorated, "backoff")


# -- async candidates --------------------------------------------------------------------------


def seawall_async() -> Candidate:
    retry = _seawall_retry()
    return Candidate("seawall", retry(anoop()), "seawall", _seawall_check(retry))


def seawall_async_budget() -> Candidate:
    retry = _seawall_retry(budget=True)
    return Candidate(
        "seawall + RetryBudget [info]",
        retry(anoop()),
        "seawall",
        _seawall_check(retry),
        note="RetryBudget() defaults (ratio 0.2, 10/s): each call is deposited in the budget",
    )


def tenacity_async() -> Candidate:
    decorated = _tenacity_decorator()(anoop())  # an async function gets AsyncRetrying
    return Candidate("tenacity", decorated, "tenacity", _tenacity_check(decorated))


def stamina_async() -> Candidate:
    import stamina

    _stamina_activate()
    decorated = stamina.retry(on=ConnectionError, attempts=ATTEMPTS)(anoop())
    return Candidate("stamina", decorated, "stamina", _stamina_check)


def backoff_async() -> Candidate:
    import backoff

    decorated = backoff.on_exception(backoff.expo, ConnectionError, max_tries=ATTEMPTS)(anoop())
    return Candidate("backoff", decorated, "backoff")


# -- the suite ---------------------------------------------------------------------------------


SYNC = [
    (BASELINE, bare(noop())),
    ("seawall", seawall_sync),
    ("seawall + RetryBudget [info]", seawall_sync_budget),
    ("seawall .call() [info]", seawall_sync_call),
    ("tenacity", tenacity_sync),
    ("stamina", stamina_sync),
    ("backoff", backoff_sync),
]

ASYNC = [
    (BASELINE, bare(anoop())),
    ("seawall", seawall_async),
    ("seawall + RetryBudget [info]", seawall_async_budget),
    ("tenacity", tenacity_async),
    ("stamina", stamina_async),
    ("backoff", backoff_async),
]


def run(config: RunConfig) -> SuiteResult:
    return overhead_suite(
        config,
        name="retry",
        subject="seawall",
        sync=SYNC,
        async_=ASYNC,
        sync_title=(
            "sync: decorated no-op that succeeds at once, overhead per call vs the bare function"
        ),
        async_title="async: awaited decorated no-op in one event loop, overhead per call vs bare",
        sync_reference="tenacity",
        async_reference="tenacity",
        bar_id="retry_overhead_vs_tenacity",
        bar_description=f"seawall retry overhead <= {BAR_LIMIT} x tenacity's (sync)",
        limit=BAR_LIMIT,
        missing="tenacity not installed",
    )


SUITE = Suite("retry", "retry success-path overhead vs tenacity, stamina, backoff", run)

if __name__ == "__main__":
    sys.exit(cli(sys.argv[1:], {SUITE.name: SUITE}))
