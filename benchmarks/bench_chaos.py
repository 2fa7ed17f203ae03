"""What fault injection costs while it is off: seawall.chaos wired in, not enabled.

A service can keep its injectors in production, off, for game days (``SEAWALL_CHAOS=1`` or
``seawall.chaos.enable()`` turns them on). Off, they must cost next to nothing. Three pairs,
each timed in one table (interleaved rounds, as every suite):

- sync and async: ``Policy("p", retry=Retry(on=ConnectionError), breaker=CircuitBreaker(),
  bulkhead=Bulkhead(100))`` decorating a no-op, with and without ``chaos=inject(ConnectError())``
  (disabled: left to the process switch, which is off);
- the transport: ``handle_request(request)`` of a trivial httpx transport (it returns a
  prebuilt response) and of a disabled ``ChaosTransport`` around it: what an httpx client
  pays per request for the wrapper.

Each check confirms that nothing was injected and nothing counted. The bars: each pair's
difference of minimums <= 50 ns.

Run: ``python benchmarks/run.py chaos`` (or ``python benchmarks/bench_chaos.py``).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

from _harness import (
    BASELINE,
    Candidate,
    RunConfig,
    Suite,
    SuiteResult,
    added_bar,
    anoop,
    bare,
    cli,
    noop,
    overhead_table,
)

LIMIT_NS = 50.0
POLICY = "seawall Policy"
WITH_CHAOS = "seawall Policy + chaos, disabled"
TRANSPORT = "httpx transport"
CHAOS_TRANSPORT = "ChaosTransport around it, disabled"


def _policy(chaos: bool) -> Any:
    import seawall
    from seawall import chaos as chaos_

    return seawall.Policy(
        "p",
        retry=seawall.Retry(on=ConnectionError),
        breaker=seawall.CircuitBreaker(),
        bulkhead=seawall.Bulkhead(100),
        chaos=chaos_.inject(chaos_.ConnectError()) if chaos else None,
    )


def _nothing_injected(policy: Any) -> Callable[[], str | None]:
    def check() -> str | None:
        breaker = policy.breaker.snapshot()
        if breaker.failures or not breaker.successes:
            return f"not on the success path: {breaker}"
        injector = policy.chaos
        if injector is not None:
            snapshot = injector.snapshot()
            if snapshot.armed or any(snapshot.injections.values()) or any(snapshot.calls.values()):
                return f"the injector acted: {snapshot}"
        return None

    return check


def _policy_candidate(name: str, chaos: bool, fn: Callable[[], Any]) -> Candidate:
    policy = _policy(chaos)
    return Candidate(name, policy(fn), "seawall", _nothing_injected(policy))


def _transport_candidates() -> list[Callable[[], Candidate]]:
    import httpx

    from seawall import chaos

    response = httpx.Response(200)
    request = httpx.Request("GET", "http://chaos.test/")

    class Trivial(httpx.BaseTransport):
        def handle_request(self, request: httpx.Request) -> httpx.Response:
            return response

    def plain() -> Candidate:
        inner = Trivial()
        return Candidate(BASELINE, lambda: inner.handle_request(request))

    def wrapped() -> Candidate:
        transport = chaos.ChaosTransport(Trivial(), chaos.ConnectError())

        def check() -> str | None:
            snapshot = transport.injector.snapshot()
            if snapshot.armed or any(snapshot.injections.values()):
                return f"the injector acted: {snapshot}"
            return None

        return Candidate(
            CHAOS_TRANSPORT, lambda: transport.handle_request(request), "seawall", check
        )

    return [plain, wrapped]


def run(config: RunConfig) -> SuiteResult:
    result = SuiteResult("chaos")
    sync = overhead_table(
        "sync: decorated no-op, overhead per call vs the bare function",
        "sync",
        [
            bare(noop())(),
            _policy_candidate(POLICY, False, noop()),
            _policy_candidate(WITH_CHAOS, True, noop()),
        ],
        [],
        reference=None,
        config=config,
    )
    async_ = overhead_table(
        "async: awaited decorated no-op in one event loop, overhead per call vs bare",
        "async",
        [
            bare(anoop())(),
            _policy_candidate(POLICY, False, anoop()),
            _policy_candidate(WITH_CHAOS, True, anoop()),
        ],
        [],
        reference=None,
        config=config,
    )
    transport = overhead_table(
        f"transport: handle_request() of a {TRANSPORT} returning a prebuilt response ('bare') "
        "and of a disabled ChaosTransport around it",
        "sync",
        [make() for make in _transport_candidates()],
        [],
        reference=None,
        config=config,
    )
    result.tables += [sync, async_, transport]
    for table, kind in ((sync, "sync"), (async_, "async")):
        result.bars.append(
            added_bar(
                table,
                WITH_CHAOS,
                POLICY,
                bar_id=f"chaos_disabled_added_per_call_{kind}_ns",
                description=f"a disabled chaos part adds <= {LIMIT_NS:g} ns per call ({kind} "
                "Policy)",
                limit_us=LIMIT_NS / 1000,
            )
        )
    result.bars.append(
        added_bar(
            transport,
            CHAOS_TRANSPORT,
            BASELINE,
            bar_id="chaos_disabled_added_per_request_ns",
            description=f"a disabled ChaosTransport adds <= {LIMIT_NS:g} ns per request",
            limit_us=LIMIT_NS / 1000,
        )
    )
    return result


SUITE = Suite("chaos", "fault injection's cost while disabled", run)

if __name__ == "__main__":
    sys.exit(cli(sys.argv[1:], {SUITE.name: SUITE}))
