"""The outage scenario: what a dead dependency costs its callers, and what it sees, per client.

One upstream dependency follows a schedule on simulated time: healthy from 0 to 20 s, a full
outage from 20 to 50 s (every attempt hangs until the client's per-attempt timeout of 1 s
ends it), healthy again from 50 to 90 s. Logical calls arrive at a steady 20 per second
(1,800 calls, one every 50 ms); a healthy attempt answers in 10 ms. Each client gets the same
arrivals and the same 1 s per-attempt timeout:

- ``no protection``: one attempt per call, bounded by the timeout (``asyncio.timeout``);
- ``tenacity``: ``tenacity.retry(stop=stop_after_attempt(3), wait=wait_exponential_jitter(
  multiplier=0.1, max=5, jitter=0.1), retry=retry_if_exception_type(TimeoutError),
  reraise=True)`` around the timed attempt: waits of 0.1 s then 0.2 s, plus up to 0.1 s of
  jitter each (the same backoff as seawall's default);
- ``tenacity + pybreaker``: the same retry outside ``pybreaker.CircuitBreaker(fail_max=5,
  reset_timeout=5)`` around the timed attempt; pybreaker's ``CircuitBreakerError`` is not
  retried (it is not the upstream's error);
- ``seawall Policy (defaults)``: ``seawall.Policy(name, retry=Retry(on=TimeoutError,
  attempts=3, budget=RetryBudget()), breaker=CircuitBreaker(), attempt_timeout=1.0)``, every
  part with its defaults (failure ratio 0.5 over a 30 s window once 20 calls are in it, open
  5 s and doubling while probes fail, up to 60 s, 3 half-open probes; budget ratio 0.2 with a
  floor of 10 retries per second). In this scenario the defaults detect late (the 30 s window
  still holds the successes of the healthy seconds before the outage, 400 when it starts)
  and recover late (each failed probe during the 30 s outage doubles the open time);
- ``seawall Policy (tuned)``: configured as ``python -m seawall demo`` configures its client,
  scaled to this scenario and comparable to the pybreaker client:
  ``CircuitBreaker(window=5.0, minimum_calls=10, failure_ratio=0.5, open_duration=5.0,
  max_open_duration=5.0, half_open_calls=1)`` and ``Retry(on=UpstreamError, attempts=3,
  budget=RetryBudget())``: connection-level and 5xx errors (:class:`UpstreamError`) are
  retried, a timeout is not. This outage only hangs, so this client never retries here;
- ``seawall, retry budget only [info]``: the defaults policy without the breaker, to show
  what the retry budget alone does at this call rate; ``seawall, budget ratio only [info]``:
  the same with ``RetryBudget(min_per_second=0)``, the ratio without its floor.

The model: a discrete-event simulation. Every logical call is an asyncio task started at its
arrival time, all of them in one event loop whose clock is simulated (:class:`SimLoop`): the
loop runs whatever is ready, then jumps its clock to the next scheduled timer instead of
waiting for it. So calls overlap as they would in a service (about twenty are in flight
during the outage), every timeout, backoff wait and breaker timer fires at its simulated
time, and a breaker sees each outcome when that attempt ends, not when the call started.
Nothing really sleeps: the whole scenario runs in about a second. Per-attempt timeouts are
real cancellations on the simulated clock (``asyncio.timeout``, and seawall's ``Timeout``,
which uses it). Everything is deterministic: arrivals are evenly spaced, and the jitter of
the waits comes from the module ``random`` seeded with :data:`SEED` for each client's run
(tenacity's ``wait_exponential_jitter`` and seawall's default wait read it; seawall's breaker
gets a ``random.Random(SEED)`` for its open-duration jitter). The upstream decides whether
it is down when an attempt starts: an attempt started at 49.5 s hangs until its timeout.

Time sources:

- seawall: every part gets ``clock=`` a :class:`LoopClock` (``monotonic`` = the loop's
  simulated time, ``asleep`` = ``asyncio.sleep``): the breaker's window and open duration,
  the retry budget's window, the retry waits and the timeouts all run on simulated time.
- tenacity: its waits go through ``asyncio.sleep`` (its default for coroutines), so on
  simulated time. tenacity reads ``time.monotonic`` only for ``stop_after_delay`` and its
  statistics, which this configuration does not use.
- pybreaker: it reads ``datetime.now(UTC)`` (the name ``datetime`` in module ``pybreaker``)
  when it opens and when an open breaker decides whether ``reset_timeout`` has passed. For
  the duration of its run only, the benchmark replaces ``pybreaker.datetime`` with a
  subclass whose ``now()`` is a fixed epoch plus the simulated time
  (:func:`pybreaker_simulated_time`), and puts the original back afterwards. pybreaker has
  no asyncio API (``call_async`` is for Tornado), so the attempt runs inside its documented
  ``with breaker.calling():`` context manager: the same state machine as ``breaker.call``.
  Its half-open state admits every caller until the first outcome: with overlapping calls,
  each half-open spell lets a second's worth of calls through to a dead upstream.

Per client, the table shows: upstream attempts per logical call during the outage
(attempts started in [20, 50) s over calls arriving then) and over the whole run; the
latency of the calls arriving during the outage (p50 and p99, simulated seconds from
arrival to outcome); availability (successful calls / calls); calls that failed fast,
without touching the upstream; time to detect (outage start to the end of the first call
that failed without touching the upstream: the breaker was open; "n/a" without a breaker);
time to recover (from the upstream's recovery to the arrival of the first call of the
unbroken run of successes that ends the scenario; 0 when calls that arrived before the
recovery already succeeded through retries); and when the breaker last closed (after the
recovery). Breaker transitions are listed under the table.

Bar (DESIGN §4, a sanity check of the scenario): with a retry budget of ratio 0.2, seawall's
tuned policy makes at most 1.2 upstream attempts per logical call during the outage (the
defaults row's figure is reported alongside). The ``no protection`` client must make exactly
one attempt per call, or the bar is ``INVALID``.
``--rounds`` and ``--sample-time`` do not apply: one deterministic run.

Run: ``python benchmarks/run.py outage`` (or ``python benchmarks/bench_outage.py``).
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import random
import selectors
import sys
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from _harness import (
    Bar,
    RunConfig,
    SkipCandidate,
    Skipped,
    Suite,
    SuiteResult,
    TextTable,
    cli,
    dist_version,
)

SEED = 1729
ATTEMPTS = 3
FAIL_MAX = 5
RESET_TIMEOUT = 5.0
BUDGET_RATIO = 0.2
BAR_LIMIT = 1 + BUDGET_RATIO
#: The tuned seawall client's breaker: as the demo configures it, scaled to this scenario.
TUNED_BREAKER: dict[str, float] = {
    "window": 5.0,
    "minimum_calls": 10,
    "failure_ratio": 0.5,
    "open_duration": 5.0,
    "max_open_duration": 5.0,
    "half_open_calls": 1,
}

NO_PROTECTION = "no protection"
TENACITY = "tenacity"
PYBREAKER = "tenacity + pybreaker"
SEAWALL_DEFAULTS = "seawall Policy (defaults)"
SEAWALL_TUNED = "seawall Policy (tuned)"
SEAWALL_BUDGET_ONLY = "seawall, retry budget only [info]"
SEAWALL_RATIO_ONLY = "seawall, budget ratio only [info]"


@dataclass(frozen=True)
class Scenario:
    """The upstream's schedule and the load, in simulated seconds."""

    rate: float = 20.0  # logical calls per second, evenly spaced
    outage_start: float = 20.0
    outage_end: float = 50.0  # the upstream is healthy again from here
    end: float = 90.0  # the last call arrives before this
    attempt_timeout: float = 1.0
    healthy_latency: float = 0.010
    seed: int = SEED

    def arrivals(self) -> list[float]:
        return [i / self.rate for i in range(round(self.end * self.rate))]

    def down(self, t: float) -> bool:
        return self.outage_start <= t < self.outage_end

    def describe(self) -> str:
        return (
            f"healthy 0-{self.outage_start:g} s, every attempt hangs until the client's "
            f"{self.attempt_timeout:g} s timeout {self.outage_start:g}-{self.outage_end:g} s, "
            f"healthy again {self.outage_end:g}-{self.end:g} s; {self.rate:g} calls/s "
            f"({len(self.arrivals()):,} calls), {self.healthy_latency * 1000:g} ms per "
            "healthy attempt"
        )


# -- simulated time ----------------------------------------------------------------------------


class SimulationStalled(RuntimeError):
    """Nothing is ready and no timer is scheduled, yet the simulation has not finished."""


class _TimeTravelSelector(selectors.SelectSelector):
    """Never waits: "waiting" for the next timer moves the simulated clock to it."""

    def __init__(self) -> None:
        super().__init__()
        self.now = 0.0

    def select(self, timeout: float | None = None) -> list[Any]:
        if timeout is None:
            raise SimulationStalled("no timer is scheduled and nothing is ready")
        if timeout > 0:
            self.now += timeout
        return []


class SimLoop(asyncio.SelectorEventLoop):
    """An event loop on simulated time, starting at 0: when nothing is ready, its clock jumps
    to the next scheduled timer. Only for code that waits on timers, never on I/O."""

    def __init__(self) -> None:
        self._travel = _TimeTravelSelector()
        super().__init__(self._travel)

    def time(self) -> float:
        return self._travel.now


class LoopClock:
    """A ``seawall.Clock`` on the running loop's (simulated) time."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.monotonic = loop.time

    def sleep(self, seconds: float) -> None:
        raise RuntimeError("the outage simulation is asynchronous: nothing may block")

    async def asleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)


@contextlib.contextmanager
def pybreaker_simulated_time(now: Callable[[], float]) -> Iterator[None]:
    """Make pybreaker read ``now()`` (simulated seconds) as its wall clock, inside the block.

    pybreaker calls ``datetime.now(UTC)`` through the name ``datetime`` in its module; that
    name is replaced by a subclass of :class:`datetime.datetime` whose ``now`` is a fixed
    epoch plus ``now()``, and restored on exit.
    """
    import pybreaker

    names = vars(pybreaker)
    saved = names.get("datetime")
    if not (isinstance(saved, type) and issubclass(saved, datetime)):
        raise SkipCandidate("pybreaker no longer reads the time through pybreaker.datetime")

    class SimulatedDatetime(datetime):
        @classmethod
        def now(cls, tz: Any = None) -> Any:
            return _EPOCH + timedelta(seconds=now())

    names["datetime"] = SimulatedDatetime
    try:
        yield
    finally:
        names["datetime"] = saved


# -- the upstream, the calls, the clients ------------------------------------------------------


class UpstreamError(ConnectionError):
    """A connection-level or 5xx failure of the upstream: what the tuned seawall client
    retries. This scenario's outage never raises it (every attempt hangs until its timeout);
    it is the error a timeout is told apart from."""


@dataclass
class Call:
    """One logical call and what became of it (simulated seconds)."""

    arrival: float
    end: float = math.nan
    ok: bool = False
    attempts: int = 0  # attempts that reached the upstream
    error: str = ""

    @property
    def fast_failure(self) -> bool:
        """Failed without touching the upstream: a breaker turned it away."""
        return not self.ok and self.attempts == 0


class Upstream:
    """The dependency: answers in ``healthy_latency``, or hangs while the schedule says down."""

    def __init__(self, scenario: Scenario, loop: asyncio.AbstractEventLoop) -> None:
        self.scenario = scenario
        self.loop = loop
        self.attempt_times: list[float] = []

    async def request(self, call: Call) -> str:
        now = self.loop.time()
        self.attempt_times.append(now)
        call.attempts += 1
        if self.scenario.down(now):
            await self.loop.create_future()  # never resolved: only the caller's timeout ends it
        await asyncio.sleep(self.scenario.healthy_latency)
        return "ok"


@dataclass
class Env:
    """What a client builder gets: all on the simulation's loop and clock."""

    scenario: Scenario
    loop: asyncio.AbstractEventLoop
    clock: LoopClock
    upstream: Upstream
    stack: contextlib.ExitStack
    rng: random.Random


@dataclass
class Client:
    name: str
    call: Callable[[Call], Awaitable[object]]
    package: str | None = None
    has_breaker: bool = False
    #: Breaker state changes: (simulated time, new state).
    transitions: list[tuple[float, str]] = field(default_factory=list)
    #: Called at the end of the run; returns extra facts for the notes.
    report: Callable[[], str] | None = None
    note: str = ""


def no_protection(env: Env) -> Client:
    timeout, request = env.scenario.attempt_timeout, env.upstream.request

    async def call(c: Call) -> str:
        async with asyncio.timeout(timeout):
            return await request(c)

    return Client(NO_PROTECTION, call, note="one attempt per call, 1 s timeout")


def _tenacity_retry() -> Callable[[Any], Any]:
    import tenacity

    try:
        wait = tenacity.wait_exponential_jitter(multiplier=0.1, max=5.0, jitter=0.1)
    except TypeError:  # tenacity < 9.2 names it initial
        wait = tenacity.wait_exponential_jitter(initial=0.1, max=5.0, jitter=0.1)
    return tenacity.retry(
        stop=tenacity.stop_after_attempt(ATTEMPTS),
        wait=wait,
        retry=tenacity.retry_if_exception_type(TimeoutError),
        reraise=True,
    )


def tenacity_alone(env: Env) -> Client:
    timeout, request = env.scenario.attempt_timeout, env.upstream.request

    @_tenacity_retry()
    async def call(c: Call) -> str:
        async with asyncio.timeout(timeout):
            return await request(c)

    return Client(TENACITY, call, "tenacity")


def tenacity_pybreaker(env: Env) -> Client:
    import pybreaker

    env.stack.enter_context(pybreaker_simulated_time(env.loop.time))
    transitions: list[tuple[float, str]] = []
    loop = env.loop

    class Transitions(pybreaker.CircuitBreakerListener):
        def state_change(self, cb: Any, old_state: Any, new_state: Any) -> None:
            transitions.append((loop.time(), str(new_state.name)))

    breaker = pybreaker.CircuitBreaker(
        fail_max=FAIL_MAX, reset_timeout=RESET_TIMEOUT, listeners=[Transitions()]
    )
    timeout, request = env.scenario.attempt_timeout, env.upstream.request

    @_tenacity_retry()
    async def call(c: Call) -> str:
        with breaker.calling():
            async with asyncio.timeout(timeout):
                return await request(c)

    return Client(
        PYBREAKER,
        call,
        "pybreaker",
        has_breaker=True,
        transitions=transitions,
        note=f"pybreaker.CircuitBreaker(fail_max={FAIL_MAX}, reset_timeout={RESET_TIMEOUT:g}) "
        "inside the tenacity retry; the version shown is pybreaker's",
    )


def _seawall(
    env: Env,
    name: str,
    *,
    breaker: dict[str, Any] | None,
    retry_on: type[BaseException] | tuple[type[BaseException], ...] = TimeoutError,
    note: str = "",
    **budget: Any,
) -> Client:
    """A seawall Policy: ``breaker`` is the CircuitBreaker's keyword arguments (``{}``: its
    defaults; ``None``: no breaker), ``retry_on`` what the Retry retries, ``budget`` extra
    RetryBudget arguments. Every part runs on the simulation's clock."""
    import seawall

    clock = env.clock
    retry_budget = seawall.RetryBudget(ratio=BUDGET_RATIO, clock=clock, **budget)
    retry = seawall.Retry(on=retry_on, attempts=ATTEMPTS, budget=retry_budget, clock=clock)
    transitions: list[tuple[float, str]] = []
    cb = None
    if breaker is not None:
        cb = seawall.CircuitBreaker(**breaker, clock=clock, rng=env.rng)

        @cb.add_listener
        def record(event: seawall.BreakerEvent) -> None:
            if isinstance(event, seawall.StateChange):
                transitions.append((event.at, str(event.to_state)))

    policy = seawall.Policy(
        "bench_outage",
        retry=retry,
        breaker=cb,
        attempt_timeout=seawall.Timeout(env.scenario.attempt_timeout, clock=clock),
        clock=clock,
    )
    request = env.upstream.request

    async def call(c: Call) -> str:
        return await policy.acall(request, c)

    def report() -> str:
        snap = retry.snapshot()
        text = f"{snap.retries:,} retries, {snap.budget_exhausted:,} refused by the retry budget"
        if cb is not None:
            b = cb.snapshot()
            text += f"; breaker rejected {b.rejected:,} attempts"
        return text

    return Client(
        name,
        call,
        "seawall",
        has_breaker=cb is not None,
        transitions=transitions,
        report=report,
        note=note,
    )


def seawall_defaults(env: Env) -> Client:
    return _seawall(
        env,
        SEAWALL_DEFAULTS,
        breaker={},
        note=(
            "Retry(on=TimeoutError, attempts=3, budget=RetryBudget()), CircuitBreaker() with "
            "its defaults: failure_ratio=0.5 over a 30 s time window once minimum_calls=20 are "
            "in it, open_duration=5 s doubling (jittered) up to max_open_duration=60 s while "
            "probes fail, half_open_calls=3. It detects late: its 30 s window still holds the "
            "successes of the healthy seconds before the outage (400 when it starts), so it "
            "opens only once as many failed attempts have joined them. It recovers late: each "
            "failed probe during the "
            "30 s outage doubles the open time, so the last open spell before the recovery "
            "runs on well past it"
        ),
    )


def seawall_tuned(env: Env) -> Client:
    breaker = dict(TUNED_BREAKER)
    return _seawall(
        env,
        SEAWALL_TUNED,
        breaker=breaker,
        retry_on=UpstreamError,
        note=(
            "configured as `python -m seawall demo` configures its client, scaled to this "
            "scenario and comparable to the pybreaker client: CircuitBreaker("
            + ", ".join(f"{k}={v:g}" for k, v in breaker.items())
            + "), Retry(on=UpstreamError, attempts=3, budget=RetryBudget()): connection-level "
            "and 5xx errors are retried, a timeout is not (the upstream is struggling already, "
            "and the caller has waited long enough). This outage only hangs, so every failure "
            "is a timeout and this row never retries: its attempts per call stay at or below 1 "
            "because timeouts are not retried, not because of the retry budget. One probe "
            "per half-open spell, and the open time stays at 5 s (jittered) however many "
            "probes fail"
        ),
    )


def seawall_budget_only(env: Env) -> Client:
    return _seawall(
        env,
        SEAWALL_BUDGET_ONLY,
        breaker=None,
        note="the seawall Policy (defaults) without its breaker: retry with RetryBudget() only",
    )


def seawall_ratio_only(env: Env) -> Client:
    return _seawall(
        env,
        SEAWALL_RATIO_ONLY,
        breaker=None,
        note="no breaker, RetryBudget(min_per_second=0): the ratio alone caps the retries",
        min_per_second=0.0,
    )


Builder = Callable[[Env], Client]

CLIENTS: list[tuple[str, Builder]] = [
    (NO_PROTECTION, no_protection),
    (TENACITY, tenacity_alone),
    (PYBREAKER, tenacity_pybreaker),
    (SEAWALL_DEFAULTS, seawall_defaults),
    (SEAWALL_TUNED, seawall_tuned),
    (SEAWALL_BUDGET_ONLY, seawall_budget_only),
    (SEAWALL_RATIO_ONLY, seawall_ratio_only),
]


# -- running it --------------------------------------------------------------------------------


@dataclass
class Outcome:
    """One client's run: every call, every upstream attempt, the breaker's transitions."""

    client: Client
    scenario: Scenario
    calls: list[Call]
    attempt_times: list[float]
    report: str = ""


async def _simulate(build: Builder, scenario: Scenario) -> Outcome:
    loop = asyncio.get_running_loop()
    upstream = Upstream(scenario, loop)
    calls = [Call(t) for t in scenario.arrivals()]
    tasks: list[asyncio.Task[None]] = []

    async def one(c: Call) -> None:
        try:
            await client.call(c)
        except Exception as exc:  # every failure a caller would see, rejections included
            c.error = type(exc).__name__
        else:
            c.ok = True
        c.end = loop.time()

    def arrive(c: Call) -> None:
        tasks.append(loop.create_task(one(c)))

    with contextlib.ExitStack() as stack:
        env = Env(scenario, loop, LoopClock(loop), upstream, stack, random.Random(scenario.seed))
        client = build(env)
        for c in calls:
            loop.call_at(c.arrival, arrive, c)
        await asyncio.sleep(scenario.end)  # every call has arrived by now
        await asyncio.gather(*tasks)
        report = client.report() if client.report is not None else ""
    return Outcome(client, scenario, calls, upstream.attempt_times, report)


def simulate(build: Builder, scenario: Scenario | None = None) -> Outcome:
    """Run one client through the scenario on a fresh simulated loop, deterministically."""
    scenario = scenario or Scenario()
    state = random.getstate()
    random.seed(scenario.seed)  # the jitter of tenacity's and seawall's default waits
    try:
        with asyncio.Runner(loop_factory=SimLoop) as runner:
            return runner.run(_simulate(build, scenario))
    finally:
        random.setstate(state)


def run_scenario(
    scenario: Scenario | None = None, clients: Sequence[tuple[str, Builder]] = CLIENTS
) -> tuple[list[Outcome], list[Skipped]]:
    """Every client through the same scenario; a client that cannot be built is skipped."""
    scenario = scenario or Scenario()
    outcomes: list[Outcome] = []
    skipped: list[Skipped] = []
    for name, build in clients:
        try:
            outcomes.append(simulate(build, scenario))
        except ImportError as exc:
            skipped.append(Skipped(name, f"not installed ({exc})"))
        except SkipCandidate as exc:
            skipped.append(Skipped(name, str(exc)))
    return outcomes, skipped


# -- what the runs show ------------------------------------------------------------------------


def _percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (``q`` in 0..100) of a non-empty sequence."""
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


@dataclass(frozen=True)
class Summary:
    client: str
    calls: int
    outage_calls: int
    outage_attempts: int
    attempts_per_call_outage: float
    attempts_per_call: float
    latency_p50_outage: float
    latency_p99_outage: float
    availability: float
    fast_failures: int
    has_breaker: bool
    #: Outage start to the end of the first call turned away without touching the upstream.
    time_to_detect: float | None
    #: Upstream recovery to the first call of the final unbroken run of successes (>= 0);
    #: ``None`` if the last call failed.
    time_to_recover: float | None
    #: Upstream recovery to the breaker's last transition to closed; ``None``: no breaker, or
    #: not closed after the recovery.
    breaker_closed_after: float | None


def summarize(outcome: Outcome) -> Summary:
    s, calls = outcome.scenario, outcome.calls
    during = [c for c in calls if s.down(c.arrival)]
    outage_attempts = sum(1 for t in outcome.attempt_times if s.down(t))
    latencies = [c.end - c.arrival for c in during]
    detected = [c.end for c in calls if c.arrival >= s.outage_start and c.fast_failure]
    failed = [i for i, c in enumerate(calls) if not c.ok]
    if not failed:
        recover: float | None = 0.0
    elif failed[-1] == len(calls) - 1:
        recover = None
    else:
        recover = max(0.0, calls[failed[-1] + 1].arrival - s.outage_end)
    closed = [t for t, state in outcome.client.transitions if state == "closed"]
    closed_after = (
        closed[-1] - s.outage_end
        if closed and closed[-1] >= s.outage_end and outcome.client.transitions[-1][1] == "closed"
        else None
    )
    return Summary(
        client=outcome.client.name,
        calls=len(calls),
        outage_calls=len(during),
        outage_attempts=outage_attempts,
        attempts_per_call_outage=outage_attempts / len(during),
        attempts_per_call=len(outcome.attempt_times) / len(calls),
        latency_p50_outage=_percentile(latencies, 50),
        latency_p99_outage=_percentile(latencies, 99),
        availability=sum(c.ok for c in calls) / len(calls),
        fast_failures=sum(c.fast_failure for c in calls),
        has_breaker=outcome.client.has_breaker,
        time_to_detect=min(detected) - s.outage_start if detected else None,
        time_to_recover=recover,
        breaker_closed_after=closed_after,
    )


def _seconds(value: float | None, *, missing: str) -> str:
    return missing if value is None else f"{value:.2f} s"


def _transitions(outcome: Outcome) -> str:
    """The breaker's state changes; a run of changes to the same state (pybreaker re-opens on
    every late failure) is shown once, with its count and its last time."""
    runs: list[list[Any]] = []  # [state, first time, last time, count]
    for t, state in outcome.client.transitions:
        if runs and runs[-1][0] == state:
            runs[-1][2:] = [t, runs[-1][3] + 1]
        else:
            runs.append([state, t, t, 1])
    shown = [
        f"{state} {first:.2f}" + (f" (x{n}, last {last:.2f})" if n > 1 else "")
        for state, first, last, n in runs
    ]
    return ", ".join(shown) if shown else "never left closed"


HEADERS = [
    "client",
    "version",
    "attempts/call, outage",
    "attempts/call, all",
    "p50 latency, outage",
    "p99 latency, outage",
    "availability",
    "fast failures",
    "time to detect",
    "time to recover",
    "breaker closed",
]


def outage_table(
    outcomes: Sequence[Outcome], skipped: Sequence[Skipped] = (), scenario: Scenario | None = None
) -> TextTable:
    """The scenario's table: one row per client, breaker transitions and facts underneath."""
    scenario = scenario or (outcomes[0].scenario if outcomes else Scenario())
    rows: list[list[str]] = []
    data: list[dict[str, Any]] = []
    notes: list[str] = []
    for outcome in outcomes:
        sm = summarize(outcome)
        client = outcome.client
        rows.append(
            [
                sm.client,
                dist_version(client.package),
                f"{sm.attempts_per_call_outage:.2f}",
                f"{sm.attempts_per_call:.2f}",
                f"{sm.latency_p50_outage:.3f} s",
                f"{sm.latency_p99_outage:.3f} s",
                f"{sm.availability:.1%}",
                f"{sm.fast_failures:,}",
                _seconds(sm.time_to_detect, missing="n/a" if not sm.has_breaker else "never"),
                _seconds(sm.time_to_recover, missing="never"),
                _seconds(sm.breaker_closed_after, missing="n/a" if not sm.has_breaker else "no"),
            ]
        )
        data.append({**sm.__dict__, "transitions": client.transitions})
        facts = [client.note] if client.note else []
        if client.has_breaker:
            facts.append(f"breaker transitions (state, simulated s): {_transitions(outcome)}")
        if outcome.report:
            facts.append(outcome.report)
        if facts:
            notes.append(f"{client.name}: " + "; ".join(facts))
    notes += [f"skipped: {s.name}: {s.reason}" for s in skipped]
    title = (
        f"outage on simulated time: {scenario.describe()}; latency = simulated seconds from "
        f"arrival to outcome; times to detect/recover/close are counted from the outage's "
        f"start ({scenario.outage_start:g} s) / end ({scenario.outage_end:g} s)"
    )
    return TextTable(title, HEADERS, rows, notes, data)


def run(config: RunConfig) -> SuiteResult:
    result = SuiteResult("outage")
    scenario = Scenario()
    outcomes, skipped = run_scenario(scenario)
    result.tables.append(outage_table(outcomes, skipped, scenario))
    summaries = {o.client.name: summarize(o) for o in outcomes}

    tuned = summaries.get(SEAWALL_TUNED)
    baseline = summaries.get(NO_PROTECTION)
    problems = []
    if baseline is None or baseline.attempts_per_call != 1.0:
        problems.append("the no-protection client did not make exactly one attempt per call")
    detail = (
        "attempts started during the outage / calls arriving during it; the tuned row does "
        "not retry timeouts, and this outage produces only timeouts"
    )
    for name, label in (
        (SEAWALL_DEFAULTS, "the defaults row (retries timeouts, budget and breaker)"),
        (SEAWALL_BUDGET_ONLY, "without a breaker, the retry budget alone"),
    ):
        other = summaries.get(name)
        if other is not None:
            detail += f"; {label}: {other.attempts_per_call_outage:.2f}"
    if problems:
        detail += "; " + "; ".join(problems)
    result.bars.append(
        Bar(
            id="outage_seawall_attempts_per_call",
            description=(
                f"seawall Policy (tuned; RetryBudget ratio {BUDGET_RATIO:g}) upstream attempts "
                f"per logical call during the outage <= {BAR_LIMIT:g}"
            ),
            limit=BAR_LIMIT,
            measured=None if tuned is None else tuned.attempts_per_call_outage,
            detail=detail,
            valid=not problems,
        )
    )
    result.notes.append(
        "discrete-event simulation: every call is an asyncio task on an event loop whose clock "
        "jumps to the next timer, so calls overlap and each timeout, wait and breaker timer "
        "fires at its simulated time; one deterministic run (seeded jitter), not a timing, so "
        "--rounds and --sample-time do not apply. See benchmarks/bench_outage.py's docstring"
    )
    result.notes.append(
        "how the breakers differ here: pybreaker opens on fail_max consecutive failures and, "
        "while half-open, admits every caller until the first outcome (with overlapping calls, "
        "a second's worth of attempts per probe; each late failure re-opens it and restarts "
        "reset_timeout); a seawall breaker opens on the failure ratio over its time window "
        "once the failures match the successes still in it (the healthy seconds before the "
        "outage: 30 s of them with the defaults, 5 s tuned), admits half_open_calls probes, "
        "and after a failed probe stays open for the open duration doubled (jittered, capped "
        "at max_open_duration: 60 s with the defaults, so a probe that fails shortly before "
        "the recovery keeps it open well after it; 5 s tuned, so no growth). See the breaker "
        "transitions under the table"
    )
    pybreaker_sm = summaries.get(PYBREAKER)
    if (
        tuned is not None
        and pybreaker_sm is not None
        and tuned.time_to_detect is not None
        and pybreaker_sm.time_to_detect is not None
        and tuned.time_to_detect > pybreaker_sm.time_to_detect
    ):
        result.notes.append(
            f"{SEAWALL_TUNED} detects the outage later than {PYBREAKER}: "
            f"{tuned.time_to_detect:.2f} s against {pybreaker_sm.time_to_detect:.2f} s. "
            f"pybreaker opens on the first {FAIL_MAX} consecutive failures, about a second in "
            "(the first attempts time out after 1 s); the tuned seawall breaker opens on the "
            f"failure ratio ({TUNED_BREAKER['failure_ratio']:g}) over its "
            f"{TUNED_BREAKER['window']:g} s window, so the timeouts must first match the "
            "successes of the healthy seconds still in the window"
        )
    result.notes.append(
        "pybreaker reads datetime.now(UTC): for its run only, pybreaker.datetime is replaced by "
        "a datetime subclass whose now() follows the simulated clock, then restored"
    )
    result.notes.append(
        f"RetryBudget's floor: min_per_second=10 over its 10 s window allows 100 retries per "
        f"window, more than ratio {BUDGET_RATIO:g} x the {scenario.rate * 10:g} calls in it; "
        f"below {10 / BUDGET_RATIO:g} calls/s the floor, not the ratio, caps the retries"
    )
    return result


SUITE = Suite("outage", "outage scenario on simulated time: load, latency, detect, recover", run)

if __name__ == "__main__":
    sys.exit(cli(sys.argv[1:], {SUITE.name: SUITE}))
