"""seawall.testing: no_waits(), force_open(), force_closed() (FakeClock has test_clock.py)."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import pytest
from helpers import Boom

import seawall.testing
from seawall import CircuitBreaker, CircuitOpenError, CircuitState, Retry, RetryBudget, chaos
from seawall.testing import FakeClock, Simulation, force_closed, force_open, no_waits


class Counter:
    """Fails the first ``failures`` calls, then returns "ok"; counts calls."""

    def __init__(self, failures: int = 10**9) -> None:
        self.failures = failures
        self.calls = 0

    def __call__(self) -> str:
        self.calls += 1
        if self.calls <= self.failures:
            raise Boom(f"failure {self.calls}")
        return "ok"


def fail_once(run: Any, retry: Retry) -> None:
    """One call that fails every attempt."""
    with pytest.raises(Boom):
        run(retry, Counter())


# -- no_waits -------------------------------------------------------------------------------


def test_no_waits_makes_retry_waits_zero(run: Any, clock: FakeClock):
    retry = Retry(on=Boom, attempts=4, wait=0.5, clock=clock)
    fn = Counter(failures=3)
    with no_waits():
        assert run(retry, fn) == "ok"
    assert fn.calls == 4
    assert clock.sleeps == []
    assert clock.monotonic() == 0.0


def test_no_waits_zeroes_the_default_jittered_wait(run: Any, clock: FakeClock):
    retry = Retry(on=Boom, attempts=6, clock=clock)
    with no_waits():
        fail_once(run, retry)
    assert clock.sleeps == []
    assert retry.snapshot().attempts_total == 6


def test_no_waits_with_the_system_clock_returns_at_once(run: Any):
    retry = Retry(on=Boom, attempts=3, wait=30)  # the real clock: 60 s of waits without it
    fn = Counter(failures=2)
    started = time.monotonic()
    with no_waits():
        assert run(retry, fn) == "ok"
    assert time.monotonic() - started < 5.0
    assert fn.calls == 3


def test_no_waits_nests(run: Any, clock: FakeClock):
    retry = Retry(on=Boom, attempts=3, wait=0.5, clock=clock)
    with no_waits():
        with no_waits():
            fail_once(run, retry)
        fail_once(run, retry)  # the outer block still zeroes waits
        assert clock.sleeps == []
    fail_once(run, retry)
    assert clock.sleeps == [0.5, 0.5]


def test_no_waits_restores_after_an_exception(run: Any, clock: FakeClock):
    retry = Retry(on=Boom, attempts=3, wait=0.5, clock=clock)
    with pytest.raises(RuntimeError, match="in the block"), no_waits():
        raise RuntimeError("in the block")
    fail_once(run, retry)
    assert clock.sleeps == [0.5, 0.5]


def test_no_waits_restores_after_a_retry_raises_inside(run: Any, clock: FakeClock):
    retry = Retry(on=Boom, attempts=3, wait=0.5, clock=clock)
    with pytest.raises(Boom), no_waits():
        run(retry, Counter())
    assert clock.sleeps == []
    fail_once(run, retry)
    assert clock.sleeps == [0.5, 0.5]


def test_no_waits_keeps_attempts_and_budget(run: Any, clock: FakeClock):
    budget = RetryBudget(ratio=0.0, min_per_second=0.3, window=10.0, clock=clock)
    retry = Retry(on=Boom, attempts=5, wait=0.5, budget=budget, clock=clock)
    first, second = Counter(), Counter()
    with no_waits():
        with pytest.raises(Boom):
            run(retry, first)
        with pytest.raises(Boom):
            run(retry, second)
    assert (first.calls, second.calls) == (4, 1)  # the 3 retries of the budget, then refused
    assert retry.snapshot().budget_exhausted == 2


def test_no_waits_keeps_the_deadline(run: Any, clock: FakeClock):
    retry = Retry(on=Boom, attempts=10, wait=0.5, deadline=1.0, clock=clock)
    times: list[float] = []

    def slow() -> None:
        times.append(clock.monotonic())
        clock.advance(0.4)
        raise Boom("slow")

    with no_waits(), pytest.raises(Boom) as info:
        run(retry, slow)
    assert times == pytest.approx([0.0, 0.4, 0.8])  # the third attempt ends past 1.0
    assert clock.sleeps == []
    assert info.value.__notes__[0].endswith("(deadline reached)")


def test_no_waits_applies_in_other_threads(clock: FakeClock):
    retry = Retry(on=Boom, attempts=3, wait=0.5, clock=clock)
    calls: list[int] = []

    def worker() -> None:
        fn = Counter(failures=2)
        assert retry.call(fn) == "ok"
        calls.append(fn.calls)

    with no_waits():
        thread = threading.Thread(target=worker)
        thread.start()
        thread.join(10)
    assert calls == [3]
    assert clock.sleeps == []


# -- force_open / force_closed --------------------------------------------------------------


def make_breaker(clock: FakeClock) -> CircuitBreaker:
    return CircuitBreaker(name="dep", minimum_calls=2, failure_ratio=0.5, clock=clock)


def test_force_open_rejects_calls(run: Any, clock: FakeClock):
    breaker = make_breaker(clock)
    restore = force_open(breaker)
    assert breaker.state is CircuitState.FORCED_OPEN
    fn = Counter(failures=0)
    with pytest.raises(CircuitOpenError) as info:
        run(breaker, fn)
    assert fn.calls == 0
    assert info.value.name == "dep"
    assert info.value.retry_after == float("inf")
    clock.advance(3600)
    with pytest.raises(CircuitOpenError):
        run(breaker, fn)  # time does not close it
    assert fn.calls == 0
    assert breaker.snapshot().rejected == 2
    restore.__exit__(None, None, None)
    assert run(breaker, fn) == "ok"


def test_force_open_as_a_context_manager_gives_the_breaker_back_closed(run: Any, clock: FakeClock):
    breaker = make_breaker(clock)
    fn = Counter(failures=0)
    with force_open(breaker) as forced:
        assert forced is breaker
        with pytest.raises(CircuitOpenError):
            run(breaker, fn)
    assert breaker.state is CircuitState.CLOSED
    assert run(breaker, fn) == "ok"
    assert fn.calls == 1


def test_force_open_context_restores_after_an_exception(clock: FakeClock):
    breaker = make_breaker(clock)
    with pytest.raises(RuntimeError, match="inside"), force_open(breaker):
        raise RuntimeError("inside")
    assert breaker.state is CircuitState.CLOSED


def test_force_closed_closes_an_open_breaker(run: Any, clock: FakeClock):
    breaker = make_breaker(clock)
    for _ in range(2):
        with pytest.raises(Boom):
            run(breaker, Counter())
    assert breaker.state is CircuitState.OPEN
    fn = Counter(failures=0)
    with pytest.raises(CircuitOpenError):
        run(breaker, fn)
    force_closed(breaker)
    assert breaker.state is CircuitState.CLOSED
    assert breaker.snapshot().window_calls == 0
    assert run(breaker, fn) == "ok"
    assert fn.calls == 1


def test_force_closed_as_a_context_manager(run: Any, clock: FakeClock):
    breaker = make_breaker(clock)
    breaker.isolate()
    fn = Counter(failures=0)
    with force_closed(breaker) as closed:
        assert closed is breaker
        assert breaker.state is CircuitState.CLOSED
        assert run(breaker, fn) == "ok"
    assert breaker.state is CircuitState.CLOSED
    assert fn.calls == 1


def test_force_closed_clears_a_forced_open_or_disabled_breaker(clock: FakeClock):
    breaker = make_breaker(clock)
    breaker.disable()
    force_closed(breaker)
    assert breaker.state is CircuitState.CLOSED
    force_open(breaker)
    force_closed(breaker)
    assert breaker.state is CircuitState.CLOSED


@pytest.mark.parametrize("helper", [force_open, force_closed])
@pytest.mark.parametrize("thing", [object(), None, "dep", Retry(on=Boom)])
def test_helpers_refuse_non_breakers(helper: Any, thing: Any):
    with pytest.raises(TypeError, match=r"^breaker must be a CircuitBreaker"):
        helper(thing)


def test_public_names():
    assert set(seawall.testing.__all__) == {
        "FakeClock",
        "PhaseOutcome",
        "SimulatedClock",
        "Simulation",
        "SimulationStalled",
        "Watch",
        "force_closed",
        "force_open",
        "load",
        "no_waits",
        "simulated",
        "watch",
    }
    assert seawall.testing.FakeClock is FakeClock


# -- load and watch ---------------------------------------------------------------------------


def outage_policy(*, breaker: bool = True) -> seawall.Policy:
    schedule = chaos.Schedule(
        chaos.Phase("healthy", 10),
        chaos.Phase("down", 20, chaos.ConnectError()),
        chaos.Phase("healthy-again", 10),
    )
    return seawall.Policy(
        "watched",
        breaker=seawall.CircuitBreaker(consecutive_failures=3, consecutive_span=0, open_duration=2)
        if breaker
        else None,
        attempt_timeout=1.0,
        chaos=chaos.inject(schedule, enabled=True),
    )


async def ok() -> str:
    return "ok"


def test_load_starts_calls_at_its_rate_whatever_they_do(simulated: Simulation) -> None:
    started: list[float] = []

    async def call() -> None:
        started.append(simulated.now())
        if len(started) % 2:
            raise Boom("swallowed: seawall counts it")
        await asyncio.sleep(5)  # the next calls start anyway

    made = simulated.run(seawall.testing.load(call, rate=4, seconds=2.5))
    assert made == 10
    assert started == [i / 4 for i in range(10)]
    assert simulated.now() == 2.25 + 5  # it waited for the last one


def test_load_refuses_bad_numbers() -> None:
    with pytest.raises(ValueError, match="rate must be in"):
        asyncio.run(seawall.testing.load(ok, rate=0, seconds=1))
    with pytest.raises(TypeError, match="seconds must be a number"):
        asyncio.run(seawall.testing.load(ok, rate=1, seconds="1"))  # type: ignore[arg-type]


def test_watch_reads_each_phase_from_seawalls_counts(simulated: Simulation) -> None:
    policy = outage_policy()
    with seawall.testing.watch(policy) as seen:
        simulated.run(seawall.testing.load(lambda: policy.acall(ok), rate=10, seconds=40))
    healthy = seen.phase("healthy")
    assert (healthy.calls, healthy.succeeded, healthy.availability) == (100, 100, 1.0)
    assert (healthy.attempts, healthy.attempts_per_call) == (100, 1.0)
    assert (healthy.detected, healthy.recovered) == (None, 0.0)
    down = seen.phase("down")
    assert (down.start, down.end, down.calls, down.succeeded) == (10.0, 30.0, 200, 0)
    assert down.detected == pytest.approx(0.2)  # the third failure in a row, 0.2 s in
    # 3 failures, then a probe per open duration (2 s, growing with failed probes).
    assert 3 < down.attempts <= 3 + 10
    assert down.recovered is not None
    assert 0 < down.recovered <= 2.0
    again = seen.phase("healthy-again")
    assert again.availability > 0.8
    assert again.recovered == 0.0
    assert len(seen.calls) == 400
    assert {outcome for _, _, outcome in seen.calls} == {"success", "failure", "rejected"}


def test_watch_shares_the_hook_with_an_exporter_and_other_watches(simulated: Simulation) -> None:
    from seawall._stats.observers import observers

    heard: list[tuple[str, str]] = []

    def exporter(operation: str, outcome: str, seconds: float) -> None:
        heard.append((operation, outcome))

    policy = outage_policy()
    first, second = seawall.testing.watch(policy), seawall.testing.watch(policy)
    try:
        first.__enter__()
        observers.set_call_exporter(exporter)  # an exporter set while a watch is open
        second.__enter__()
        simulated.run(policy.acall(ok))
        first.__exit__(None, None, None)  # out of order
        simulated.run(policy.acall(ok))
        second.__exit__(None, None, None)
        simulated.run(policy.acall(ok))
        assert len(first.calls) == 1
        assert len(second.calls) == 2
        assert heard == [("watched", "success")] * 3  # the exporter kept every call
        assert observers.call_duration is exporter  # and is all that is left
        with pytest.raises(RuntimeError, match="a Watch is entered once"):
            first.__enter__()
    finally:
        observers.set_call_exporter(None)
    assert observers.call_duration is None


def test_watch_without_a_breaker_or_a_second_occurrence(simulated: Simulation) -> None:
    schedule = chaos.Schedule(
        chaos.Phase("down", 5, chaos.ConnectError()),
        chaos.Phase("up", 5),
        chaos.Phase("down", 5, chaos.ConnectError()),
    )
    injector = chaos.inject(schedule, enabled=True)
    policy = seawall.Pipeline(seawall.Timeout(1.0), injector, name="flapping")
    with seawall.testing.watch(policy) as seen:
        simulated.run(seawall.testing.load(lambda: policy.acall(ok), rate=2, seconds=15))
    first, second = seen.phase("down"), seen.phase("down", 1)
    assert (first.start, second.start) == (0.0, 10.0)
    assert (first.attempts, second.attempts, seen.phase("up").attempts) == (10, 10, 10)
    assert (first.availability, seen.phase("up").availability) == (0.0, 1.0)
    assert (first.detected, first.recovered) == (None, 0.0)  # no breaker to open
    with pytest.raises(ValueError, match=r"occurrence must be in \[0, 1\]"):
        seen.phase("down", 2)
    with pytest.raises(KeyError, match="no phase is called 'sideways'"):
        seen.phase("sideways")


def test_watch_needs_a_policy_with_an_injector_or_one_given() -> None:
    with pytest.raises(TypeError, match="policy must be a seawall policy or httpx transport"):
        seawall.testing.watch(object())  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"injector: no seawall\.chaos injector found"):
        seawall.testing.watch(seawall.Policy("plain", breaker=True))
    with pytest.raises(TypeError, match=r"injector must be a seawall\.chaos Injector"):
        seawall.testing.watch(seawall.Policy("plain", breaker=True), injector="x")  # type: ignore[arg-type]
    given = chaos.inject(chaos.Hang())
    assert (
        seawall.testing.watch(seawall.Policy("p", breaker=True), injector=given).injector is given
    )


def test_watch_a_transport_sees_each_hosts_calls_and_breaker(simulated: Simulation) -> None:
    import httpx

    import seawall.httpx

    outage = chaos.Schedule(
        chaos.Phase("healthy", 10),
        chaos.Phase("outage", 20, chaos.Status(500)),
        chaos.Phase("recovered", 30),
    )
    inner = chaos.AsyncChaosTransport(
        httpx.MockTransport(lambda request: httpx.Response(200)), outage, enabled=True
    )
    template = seawall.Policy(
        "api",
        breaker=seawall.CircuitBreaker(consecutive_failures=3, consecutive_span=0),
        attempt_timeout=1.0,
    )
    transport = seawall.httpx.AsyncResilientTransport(inner, policy=template)
    client = httpx.AsyncClient(transport=transport)

    async def get() -> None:
        for host in ("a.test", "b.test"):
            try:
                await client.get(f"http://{host}/")
            except httpx.HTTPError:
                pass  # refused by the host's open breaker

    with seawall.testing.watch(transport) as seen:
        simulated.run(seawall.testing.load(get, rate=2, seconds=60))
    simulated.run(client.aclose())
    outage_ = seen.phase("outage")
    assert outage_.calls == 2 * 2 * 20  # each load call made a call per host
    assert outage_.availability == 0.0
    assert outage_.detected is not None
    assert outage_.detected <= 2.0
    assert outage_.attempts < outage_.calls  # the breakers spared the upstream
    assert seen.phase("recovered").availability == 1.0
    assert len(seen._breakers) == 2  # one per host


def test_watch_counts_only_the_attempts_of_its_own_block(simulated: Simulation) -> None:
    schedule = chaos.Schedule(chaos.Phase("a", 10), chaos.Phase("b", 10), repeat=True)
    injector = chaos.inject(schedule, enabled=True)
    policy = seawall.Policy("rounds", attempt_timeout=1.0, chaos=injector)
    simulated.run(seawall.testing.load(lambda: policy.acall(ok), rate=1, seconds=5))  # before
    injector.restart()
    with seawall.testing.watch(policy) as seen:
        simulated.run(seawall.testing.load(lambda: policy.acall(ok), rate=1, seconds=60))
    a = seen.phase("a")
    assert (a.calls, a.attempts, a.attempts_per_call) == (10, 10, 1.0)  # first round only
    assert injector.calls_in(0) == 5 + 30  # the injector's own counts hold every round


def test_a_phase_without_calls_has_no_availability(simulated: Simulation) -> None:
    policy = outage_policy()
    with seawall.testing.watch(policy) as seen:
        pass
    healthy = seen.phase("healthy")
    assert (healthy.calls, healthy.availability, healthy.attempts_per_call) == (0, None, None)


def test_load_counts_the_arrivals_before_its_end(simulated: Simulation) -> None:
    for rate, seconds, expected in (
        (1, 0.5, 1),
        (1, 1.5, 2),
        (1, 2.5, 3),
        (3, 0.1, 1),
        (20, 720, 14_400),
        (0.4, 1, 1),
        (1, 0, 0),
    ):
        made = simulated.run(seawall.testing.load(ok, rate=rate, seconds=seconds))
        assert made == expected, (rate, seconds)


def test_load_cancelled_starts_no_more_calls_and_cancels_those_under_way(
    simulated: Simulation,
) -> None:
    started: list[float] = []
    cancelled: list[float] = []

    async def call() -> None:
        started.append(simulated.now())
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            cancelled.append(simulated.now())
            raise

    async def main() -> None:
        task = asyncio.ensure_future(seawall.testing.load(call, rate=10, seconds=1))
        await asyncio.sleep(0.25)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await asyncio.sleep(5)

    simulated.run(main)
    assert started == [0.0, 0.1, 0.2]
    assert cancelled == [0.25] * 3


def test_load_refuses_a_call_that_makes_no_coroutine_and_an_infinite_rate(
    simulated: Simulation,
) -> None:
    with pytest.raises(TypeError, match="call must make a coroutine, it returned a str"):
        simulated.run(seawall.testing.load(lambda: "sync", rate=10, seconds=1))
    with pytest.raises(ValueError, match="rate must be in"):
        simulated.run(seawall.testing.load(ok, rate=float("inf"), seconds=1))
    with pytest.raises(TypeError, match="call must be a function"):
        simulated.run(seawall.testing.load("ok", rate=1, seconds=1))  # type: ignore[arg-type]
