"""Outage scenarios on virtual time: what each breaker costs its callers and the upstream sees.

A matrix: every **shape** of trouble, at every **rate**, for every **client**; each run is a
discrete-event simulation on simulated time (below), deterministic, and takes well under a
second of real time for most cells.

Shapes (a run lasts 150 simulated seconds, the upstream is disturbed from 30 to 90 s, unless
said). A shape is a named :class:`seawall.chaos.Schedule` (the fault vocabulary of
``seawall.chaos``, which the demo's upstream shares) and the run's end: phases one after the
other from the run's start, each a ``chaos.Phase(name, seconds, *faults)``; a phase with
faults disturbs the upstream, one without is healthy (it answers in 10 ms). ``hard-down`` is
``Schedule(Phase("healthy", 30), Phase("hard-down", 60, ConnectError(after=0.001)),
Phase("recovered", None))``; the others change the middle phase's fault or length:

- ``hard-down``: ``ConnectError(after=0.001)``: every attempt fails at once (a connection
  error, :class:`UpstreamError`, after 1 ms);
- ``hanging``: ``Hang()``: every attempt hangs until the caller's 1 s per-attempt timeout
  cuts it;
- ``40% errors``: ``ConnectError(after=0.001, rate=0.4)``: each attempt fails fast with
  probability 0.4, else is healthy (the draws are indexed, below);
- ``slow``: ``Latency(0.9)``: every attempt succeeds after 0.9 s, just under the timeout;
- ``3 s blip``: ``ConnectError(after=0.001)`` from 30 to 33 s only;
- ``flapping``: phases ``down`` (``ConnectError(after=0.001)``) and ``up`` (healthy), 10 s
  each, alternating: down 30-40, 50-60, 70-80 s;
- ``10-minute hang``: ``Hang()`` from 30 to 630 s; the run ends at 690 s.

The benchmark's upstream (:class:`Upstream`) acts the faults out itself, on the simulated
clock, rather than through ``seawall.chaos.inject``, whose draws are taken in call order, so
that a client's retries and refusals would change which later calls fail. Its draws for a
fault's ``rate`` are seeded and indexed by (call number, attempt number): attempt k of call i
meets the phase's j-th fault if the i-th draw of ``random.Random(f"{SEED}:{k}")``
(``f"{SEED}:{k}:{j}"`` for j > 0) is below its rate, so every client sees the same failures
on its first attempts, whatever it did before. As in the injector, the latencies drawn add
up and the first fault drawn that ends the attempt ends it; unlike it, a ``Latency`` is the
upstream's whole answer time, in place of its healthy 10 ms (``slow`` answers in 0.9 s, not
0.91 s). It acts out ``Latency`` (without ``up_to``), ``Hang``, ``ConnectError`` and
``Reset`` (an :class:`UpstreamError` after ``after``), ``ReadTimeout`` (a ``TimeoutError``)
and ``Error``; a shape with other faults (``Status``, ``SlowBody``, ``Result``), with faults
that name a host, path or method, with a repeating schedule, or with a phase with faults that
does not end within the run, is refused.

Rates: 2, 20 and 200 logical calls per second, evenly spaced (``--rates`` picks some).

Clients: each is a breaker around one timed attempt (``asyncio.timeout(1.0)`` or seawall's
``Timeout(1.0)``, *inside* the breaker, so the breaker sees a timeout as a failure), no
retries, every breaker built with no arguments (its defaults, read from its source for the
versions listed in the report):

- ``no protection``: the timed attempt alone;
- ``pybreaker``: ``pybreaker.CircuitBreaker()`` (fail_max=5 failures in a row, reset_timeout=60
  s, success_threshold=1). pybreaker has no asyncio API (``call_async`` is for Tornado), so
  the attempt runs inside its documented ``with breaker.calling():`` context manager (the
  state machine of ``breaker.call``). It reads ``datetime.now(UTC)`` through the name
  ``datetime`` in module ``pybreaker``: for its run only, that name is a ``datetime`` subclass
  whose ``now()`` is a fixed epoch plus the simulated time (:func:`simulated_datetime`);
- ``circuitbreaker``: ``circuitbreaker.CircuitBreaker()`` (failure_threshold=5 failures in a
  row, recovery_timeout=30 s), decorating the attempt's coroutine function, which gives its
  asyncio wrapper (``call_async``). It reads ``time.monotonic`` through the name
  ``monotonic`` in module ``circuitbreaker`` (and ``datetime.now`` only for the message of its
  error, which the benchmark never formats): for its run only, that name is the simulated
  clock. Decorating registers the breaker in its global ``CircuitBreakerMonitor``, from which
  it is removed after the run;
- ``purgatory``: ``purgatory.AsyncCircuitBreakerFactory()`` (default_threshold=5 failures in a
  row, default_ttl=30 s, in-memory state), its decorator ``factory("bench_outage")`` around the
  attempt. It reads ``time.time()`` through the name ``time`` in ``purgatory.domain.model``:
  for its run only, that name is an object whose ``time()`` is a fixed epoch plus the
  simulated time. An open purgatory breaker raises its own state object (``OpenedState`` is
  an exception) on every refusal; the benchmark drops each caught exception's traceback, so
  that one object does not pile them up;
- ``aiobreaker``: ``aiobreaker.CircuitBreaker()`` (fail_max=5 failures in a row,
  timeout_duration=60 s), as ``await breaker.call_async(attempt, call)``. It reads
  ``datetime.utcnow()`` (when it opens, and when an open breaker checks its timeout) and
  ``datetime.now()`` (for its error's reopen time) through the name ``datetime`` in
  ``aiobreaker.circuitbreaker`` and in ``aiobreaker.state``: for its run only, both are a
  ``datetime`` subclass on the simulated time;
- ``seawall``: ``seawall.Policy("bench_outage", breaker=seawall.CircuitBreaker(clock=clock,
  rng=random.Random(SEED)), attempt_timeout=seawall.Timeout(1.0, clock=clock), clock=clock)``:
  the breaker with its defaults (listed in the report, read from its signature), every part
  on the simulated clock (:class:`LoopClock`);
- ``seawall default policy [info]``: what seawall's httpx transports use by default: the
  above plus ``retry=seawall.Retry(on=(TimeoutError, UpstreamError), attempts=3,
  budget=seawall.RetryBudget(clock=clock), clock=clock)``.

The four peers' half-open states admit every caller until the first outcome; seawall's admits
``half_open_calls`` probes. A peer that cannot be built (not installed, or no longer reads the
time where the benchmark patches it) is skipped, with its reason.

Columns, per shape, rate and client (the "disturbance" is the union of the shape's phases
with faults, "the phases" below):

- ``availability``: successful calls / calls; ``vs unprotected``: that minus the
  ``no protection`` client's, in points;
- ``attempts/call, disturbed``: upstream attempts started during the phases / calls arriving
  during them;
- ``p99 latency, disturbed``: of the calls arriving during the phases, from arrival to
  outcome (nearest rank);
- ``detect``: per phase, from its start to the end of the first call that failed without
  touching the upstream (refused by the breaker) among the calls arriving from the phase's
  start to the next such phase's start (or the run's end); the worst over the phases;
  ``never`` if a breaker refused none there, ``n/a`` without a breaker;
- ``recover``: per phase, the smallest r >= 0 such that every call arriving in [phase end + r,
  next such phase's start or run end) succeeds, i.e. the arrival of the first call of the unbroken
  run of successes that ends that stretch, less the phase's end (0 if none failed); the worst
  over the phases; ``never`` if the stretch's last call failed;
- ``probes, peak/1 s``: the upstream attempts made while the breaker was refusing (started
  after the phase's detection and before its end), the most of them in any 1 s window
  (sliding); the worst over the phases.

Bars (on the ``seawall`` row, the CircuitBreaker() defaults; each names its worst case):
availability >= no protection's - 1 point (every shape, 20 and 200 calls/s); detect <= 2 s and
recover <= 2 s (hard-down, hanging, flapping, 10-minute hang at 20 and 200 calls/s); at most
0.1 attempts per call during the outage (hard-down, hanging, 10-minute hang at 20 and 200
calls/s); detect <= 5 s and recover <= 5 s (hard-down, hanging, flapping at 2 calls/s); and the
probe load: the peak probes in any 1 s of the hard-down and 10-minute-hang outages <=
``half_open_calls / open_duration``, both read from the defaults of
``inspect.signature(seawall.CircuitBreaker)``, rounded up to a whole number of probes. The
``no protection`` client must make exactly one attempt per call in every run, or every bar is
``INVALID``.

Second part, the retry budget (the promise: with a RetryBudget of ratio 0.2 a dead dependency sees
at most 1.2 attempts per logical call): the hard-down shape, at each rate, against clients
that retry its connection errors and timeouts, 3 attempts: ``tenacity`` (``tenacity.retry(stop
=stop_after_attempt(3), wait=wait_exponential_jitter(0.1, max=5, jitter=0.1),
retry=retry_if_exception_type((TimeoutError, UpstreamError)), reraise=True)`` around the timed
attempt), seawall's ``Retry`` with ``RetryBudget()`` and no breaker, the same with
``RetryBudget(min_per_second=0)`` (the ratio alone), and the matrix's ``no protection`` and
``seawall default policy [info]`` rows. The bar: attempts per call during the outage of the
``RetryBudget()`` row at the rates where the ratio, not the budget's floor of
``min_per_second`` retries, is the cap (``rate >= min_per_second / ratio``, 50 calls/s).

The model: every logical call is an asyncio task started at its arrival time, all of a run's
calls in one event loop whose clock is simulated (:class:`SimLoop`): the loop runs whatever is
ready, then jumps its clock to the next timer instead of waiting for it. So calls overlap as in
a service, every timeout, wait and breaker timer fires at its simulated time, and a breaker sees
each outcome when that attempt ends. Per-attempt timeouts are real cancellations on the
simulated clock. The upstream decides what to do with an attempt when it starts: an attempt
started at 89.5 s into a hang hangs until its timeout. Everything is deterministic: arrivals
are evenly spaced; the fault draws are seeded and indexed (above); the module ``random`` is
seeded with :data:`SEED` for each run (the jitter of tenacity's and seawall's retry waits),
and seawall's breaker gets its own ``random.Random(SEED)``.

Pictures (``--plots``, and every run that writes the Markdown report, such as ``make bench``;
they need matplotlib, from the ``bench`` extra): one PNG per shape at 20 calls/s,
``benchmarks/img/outage-<shape>.png``: each client's share of successful calls per second of
arrival, and, for each breaker, when it refused calls, with the upstream's disturbed phases
shaded.

Run: ``python benchmarks/run.py outage`` (or ``python benchmarks/bench_outage.py``);
``--rates 20,200`` and ``--shapes hard-down,flapping`` run part of the matrix, ``--jobs N``
sets the worker processes (default: one per CPU, at most 4; ``--jobs 1`` runs everything in
this process). ``--rounds`` and ``--sample-time`` do not apply.
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import concurrent.futures
import contextlib
import inspect
import math
import multiprocessing
import os
import random
import re
import sys
import textwrap
import types
from collections.abc import Awaitable, Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from operator import attrgetter
from typing import Any

from _harness import (
    Bar,
    Image,
    RunConfig,
    SkipCandidate,
    Skipped,
    Suite,
    SuiteResult,
    TextTable,
    cli,
    dist_version,
)

from seawall import chaos
from seawall._simulated import LoopClock, SimulatedLoop

SEED = 1729
ATTEMPT_TIMEOUT = 1.0
HEALTHY_LATENCY = 0.010
FAIL_LATENCY = 0.001
RATES: tuple[float, ...] = (2.0, 20.0, 200.0)
#: The rate the pictures show.
PLOT_RATE = 20.0
IMG_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "img")
RETRY_ATTEMPTS = 3

# -- the schedule: shapes of trouble in seawall.chaos's vocabulary -----------------------------

#: The faults the simulated upstream acts out (:meth:`Upstream.request`); a shape with any
#: other (the HTTP-only ``Status`` and ``SlowBody``, ``Result``) is refused.
ACTED: tuple[type[chaos.Fault], ...] = (
    chaos.Latency,
    chaos.Hang,
    chaos.ConnectError,
    chaos.Reset,
    chaos.ReadTimeout,
    chaos.Error,
)


def _unacted(fault: chaos.Fault) -> str | None:
    """Why the simulated upstream cannot act ``fault`` out; ``None``: it can."""
    name = type(fault).__name__
    if not isinstance(fault, ACTED):
        return f"{name} is not acted out by the simulated upstream"
    if fault.routed:
        return f"{name} names a host, path or method, which the simulated upstream has not"
    if isinstance(fault, chaos.Latency) and fault.up_to is not None:
        return f"{name}(up_to=...): the simulated upstream draws no latencies, give seconds"
    return None


def describe_fault(fault: chaos.Fault) -> str:
    """What an attempt meets: ``every attempt fails (connection error after 1 ms)``."""
    every = fault.rate == 1.0
    who = "every attempt" if every else f"{fault.rate:.0%} of attempts"
    if isinstance(fault, chaos.Latency):
        return f"{who} {'succeeds' if every else 'succeed'} after {fault.seconds:g} s"
    if isinstance(fault, chaos.Hang):
        return f"{who} {'hangs' if every else 'hang'} until the caller's timeout"
    if isinstance(fault, chaos.ConnectError):
        what = "connection error"
    elif isinstance(fault, chaos.Reset):
        what = "connection reset"
    elif isinstance(fault, chaos.ReadTimeout):
        what = "read timeout"
    elif isinstance(fault, chaos.Error):
        error = fault.error
        what = getattr(error, "__name__", type(error).__name__)
    else:
        raise AssertionError(f"the simulated upstream does not act out {fault!r}")
    after = getattr(fault, "after", 0.0)
    return f"{who} {'fails' if every else 'fail'} ({what} after {after * 1000:g} ms)"


@dataclass(frozen=True)
class Span:
    """A phase of a shape's schedule placed on the run: in force for the attempts starting in
    [start, end) s; disturbed if it has faults."""

    phase: chaos.Phase
    start: float
    end: float

    @property
    def name(self) -> str:
        return self.phase.name

    @property
    def faults(self) -> tuple[chaos.Fault, ...]:
        return self.phase.faults

    def describe(self) -> str:
        if not self.faults:
            return f"healthy {self.start:g}-{self.end:g} s"
        what = " and ".join(describe_fault(fault) for fault in self.faults)
        return f"{self.start:g}-{self.end:g} s: {what}"


@dataclass(frozen=True)
class Shape:
    """A named run of ``end`` s against an upstream that follows ``schedule`` from the run's
    start: healthy in a phase without faults, disturbed in a phase with. Every phase with
    faults must end within the run; the schedule must not repeat (write its phases out)."""

    name: str
    schedule: chaos.Schedule
    end: float = 150.0
    #: Every phase in force during the run, placed (the last one cut at ``end``).
    spans: tuple[Span, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        schedule = self.schedule
        if not isinstance(schedule, chaos.Schedule):
            raise TypeError(f"{self.name}: schedule must be a seawall.chaos.Schedule")
        if schedule.repeat:
            raise ValueError(f"{self.name}: the schedule repeats; write its phases out")
        if not 0.0 < self.end < math.inf:
            raise ValueError(f"{self.name}: the run's end must be a positive number of seconds")
        for fault in schedule.faults:
            problem = _unacted(fault)
            if problem is not None:
                raise ValueError(f"{self.name}: {problem}")
        spans = []
        start = 0.0
        last = len(schedule.phases) - 1
        for index, phase in enumerate(schedule.phases):
            # As Schedule counts them; past its end, its last phase stays in force.
            end = math.inf if phase.seconds is None or index == last else start + phase.seconds
            if phase.faults and end > self.end:
                raise ValueError(
                    f"{self.name}: phase {phase.name!r} ({start:g}-{end:g} s) has faults and "
                    f"must end within the run ({self.end:g} s)"
                )
            if start < self.end:
                spans.append(Span(phase, start, min(end, self.end)))
            start = end
        object.__setattr__(self, "spans", tuple(spans))

    @property
    def slug(self) -> str:
        """The name as a file name: ``40% errors`` -> ``40pct-errors``."""
        return re.sub(r"[^a-z0-9]+", "-", self.name.lower().replace("%", "pct")).strip("-")

    @property
    def disturbances(self) -> tuple[Span, ...]:
        """The phases with faults, placed: where the upstream is disturbed."""
        return tuple(span for span in self.spans if span.faults)

    def faults_at(self, t: float) -> tuple[chaos.Fault, ...]:
        """The faults an attempt starting at ``t`` meets; none: a healthy upstream."""
        return self.schedule.phase_at(t).faults

    def disturbed(self, t: float) -> bool:
        return bool(self.faults_at(t))

    def stretches(self) -> list[tuple[Span, float]]:
        """Each phase with faults with the end of the stretch it owns: the next such phase's
        start, or the run's end. Detection and recovery are looked for within it."""
        disturbances = self.disturbances
        ends = [span.start for span in disturbances[1:]] + [self.end]
        return list(zip(disturbances, ends, strict=True))

    def describe(self) -> str:
        parts: list[str] = []
        healthy: Span | None = None  # consecutive healthy phases read as one
        for span in self.spans:
            if not span.faults:
                healthy = span if healthy is None else Span(healthy.phase, healthy.start, span.end)
                continue
            if healthy is not None:
                parts.append(healthy.describe())
                healthy = None
            parts.append(span.describe())
        if healthy is not None:
            parts.append(healthy.describe())
        return "; ".join(parts)


#: What ``down`` is: a connection refused after 1 ms.
REFUSED = chaos.ConnectError(after=FAIL_LATENCY)


def _outage(name: str, fault: chaos.Fault, seconds: float = 60.0) -> chaos.Schedule:
    """Healthy for 30 s, then ``fault`` for ``seconds``, then recovered."""
    return chaos.Schedule(
        chaos.Phase("healthy", 30.0),
        chaos.Phase(name, seconds, fault),
        chaos.Phase("recovered", None),
    )


SHAPES: tuple[Shape, ...] = (
    Shape("hard-down", _outage("hard-down", REFUSED)),
    Shape("hanging", _outage("hanging", chaos.Hang())),
    Shape("40% errors", _outage("40% errors", chaos.ConnectError(after=FAIL_LATENCY, rate=0.4))),
    Shape("slow", _outage("slow", chaos.Latency(0.9))),
    Shape("3 s blip", _outage("blip", REFUSED, seconds=3.0)),
    Shape(
        "flapping",
        chaos.Schedule(
            chaos.Phase("healthy", 30.0),
            chaos.Phase("down", 10.0, REFUSED),
            chaos.Phase("up", 10.0),
            chaos.Phase("down", 10.0, REFUSED),
            chaos.Phase("up", 10.0),
            chaos.Phase("down", 10.0, REFUSED),
            chaos.Phase("recovered", None),
        ),
    ),
    Shape("10-minute hang", _outage("hang", chaos.Hang(), seconds=600.0), end=690.0),
)
SHAPES_BY_NAME = {s.name: s for s in SHAPES}


def find_shapes(names: Iterable[str]) -> list[Shape]:
    """Shapes by name or slug, in :data:`SHAPES` order."""
    wanted = {n.strip().lower() for n in names if n.strip()}
    known = {s.name.lower() for s in SHAPES} | {s.slug for s in SHAPES}
    unknown = sorted(wanted - known)
    if unknown:
        raise ValueError(
            f"unknown shape(s) {', '.join(unknown)}; known: {', '.join(s.slug for s in SHAPES)}"
        )
    return [s for s in SHAPES if s.name.lower() in wanted or s.slug in wanted]


@dataclass(frozen=True)
class Scenario:
    """One shape at one rate: the load and the upstream, in simulated seconds."""

    shape: Shape
    rate: float  # logical calls per second, evenly spaced
    seed: int = SEED
    attempt_timeout: float = ATTEMPT_TIMEOUT
    healthy_latency: float = HEALTHY_LATENCY

    def arrivals(self) -> list[float]:
        rate = self.rate
        return [i / rate for i in range(round(self.shape.end * rate))]


# -- simulated time ----------------------------------------------------------------------------


# The loop on simulated time and the clock on it are seawall's own (the project's tests run on
# them too).
SimLoop = SimulatedLoop


_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)
_NAIVE_EPOCH = _EPOCH.replace(tzinfo=None)
_EPOCH_SECONDS = _EPOCH.timestamp()


def simulated_datetime(now: Callable[[], float]) -> type[datetime]:
    """A ``datetime`` subclass whose ``now()`` and ``utcnow()`` are a fixed epoch (2000-01-01
    UTC) plus ``now()`` simulated seconds; naive unless ``now`` is given a time zone."""

    class SimulatedDatetime(datetime):
        @classmethod
        def now(cls, tz: Any = None) -> Any:
            naive = _NAIVE_EPOCH + timedelta(seconds=now())
            return naive if tz is None else naive.replace(tzinfo=UTC).astimezone(tz)

        @classmethod
        def utcnow(cls) -> Any:
            return _NAIVE_EPOCH + timedelta(seconds=now())

    return SimulatedDatetime


@contextlib.contextmanager
def patched(
    module: types.ModuleType, name: str, value: object, *, expect: Callable[[Any], bool]
) -> Iterator[None]:
    """Replace the global ``name`` of ``module`` by ``value`` inside the block, then put the
    original back. ``expect(original)`` must hold, or the peer no longer reads the time there
    and is skipped (:class:`SkipCandidate`) rather than run on the real clock."""
    names = vars(module)
    saved = names.get(name)
    if saved is None or not expect(saved):
        raise SkipCandidate(
            f"{module.__name__} no longer reads the time through {module.__name__}.{name}"
        )
    names[name] = value
    try:
        yield
    finally:
        names[name] = saved


def _is_datetime(value: Any) -> bool:
    return isinstance(value, type) and issubclass(value, datetime)


def pybreaker_simulated_time(now: Callable[[], float]) -> contextlib.AbstractContextManager[None]:
    """pybreaker calls ``datetime.now(UTC)`` through the name ``datetime`` in its module."""
    import pybreaker

    return patched(pybreaker, "datetime", simulated_datetime(now), expect=_is_datetime)


# -- the upstream, the calls, the clients ------------------------------------------------------


class UpstreamError(ConnectionError):
    """A connection-level failure of the upstream: what ``ConnectError`` and ``Reset`` raise."""


class Call:
    """One logical call and what became of it (simulated seconds)."""

    __slots__ = ("arrival", "attempts", "end", "error", "index", "ok")

    def __init__(
        self,
        index: int,
        arrival: float,
        *,
        end: float = math.nan,
        ok: bool = False,
        attempts: int = 0,
        error: str = "",
    ) -> None:
        self.index = index
        self.arrival = arrival
        self.end = end
        self.ok = ok
        self.attempts = attempts  # attempts that reached the upstream
        self.error = error

    @property
    def refused(self) -> bool:
        """Failed without touching the upstream: a breaker turned it away."""
        return not self.ok and self.attempts == 0

    def __repr__(self) -> str:
        return (
            f"Call({self.index}, {self.arrival:g}, end={self.end:g}, ok={self.ok}, "
            f"attempts={self.attempts}, error={self.error!r})"
        )


class Upstream:
    """The dependency: acts out the faults of the phase of the shape's schedule in force when
    an attempt starts; healthy, it answers in 10 ms.

    The draws for the faults' ``rate`` are indexed, not taken in call order (as
    ``seawall.chaos.inject``'s are): attempt k (0 = first) of call i meets the phase's j-th
    fault if the i-th draw of ``random.Random(f"{seed}:{k}")`` (``f"{seed}:{k}:{j}"`` for j >
    0) is below its rate, so every client of a run sees the same failures on its first
    attempts, whatever it did before. As in the injector, the latencies drawn add up and the
    first fault drawn that ends the attempt ends it; unlike it, a ``Latency`` is the upstream's
    whole answer time, in place of the healthy 10 ms.
    """

    def __init__(self, scenario: Scenario, loop: asyncio.AbstractEventLoop, calls: int) -> None:
        self.loop = loop
        self.phase_at = scenario.shape.schedule.phase_at
        self.healthy_latency = scenario.healthy_latency
        self.seed = scenario.seed
        self.calls = calls
        self.attempt_times: list[float] = []
        self._draws: dict[tuple[int, int], list[float]] = {}

    def draw(self, index: int, attempt: int, fault: int = 0) -> float:
        """The uniform draw for fault ``fault`` (its position in the phase) at attempt
        ``attempt`` (0 = first) of call ``index``: the same for every client of a run."""
        draws = self._draws.get((attempt, fault))
        if draws is None:
            key = f"{self.seed}:{attempt}" if fault == 0 else f"{self.seed}:{attempt}:{fault}"
            rng = random.Random(key)
            draws = self._draws[attempt, fault] = [rng.random() for _ in range(self.calls)]
        return draws[index]

    async def request(self, call: Call) -> str:
        loop = self.loop
        now = loop.time()
        attempt = call.attempts
        call.attempts = attempt + 1
        self.attempt_times.append(now)
        latency: float | None = None  # the answer's time, if a Latency was drawn
        for position, fault in enumerate(self.phase_at(now).faults):
            if fault.rate < 1.0 and self.draw(call.index, attempt, position) >= fault.rate:
                continue
            if isinstance(fault, chaos.Latency):
                latency = fault.seconds if latency is None else latency + fault.seconds
                continue
            if latency:
                await asyncio.sleep(latency)
            if isinstance(fault, chaos.Hang):
                await loop.create_future()  # never resolved: only the caller's timeout ends it
            after = getattr(fault, "after", 0.0)
            if after:
                await asyncio.sleep(after)
            raise upstream_error(fault)
        await asyncio.sleep(self.healthy_latency if latency is None else latency)
        return "ok"


def upstream_error(fault: chaos.Fault) -> BaseException:
    """What an attempt ending with ``fault`` raises."""
    if isinstance(fault, chaos.ConnectError):
        return UpstreamError("connection refused")
    if isinstance(fault, chaos.Reset):
        return UpstreamError("connection reset by peer")
    if isinstance(fault, chaos.ReadTimeout):
        return TimeoutError("read timed out")
    if isinstance(fault, chaos.Error):
        return fault.make()
    raise AssertionError(f"the simulated upstream does not act out {fault!r}")


@dataclass
class Env:
    """What a client builder gets: all on the simulation's loop and clock."""

    scenario: Scenario
    loop: asyncio.AbstractEventLoop
    clock: LoopClock
    upstream: Upstream
    stack: contextlib.ExitStack
    rng: random.Random

    def timed_attempt(self) -> Callable[[Call], Awaitable[str]]:
        """One upstream attempt under the 1 s per-attempt timeout."""
        timeout, request = self.scenario.attempt_timeout, self.upstream.request

        async def attempt(c: Call) -> str:
            async with asyncio.timeout(timeout):
                return await request(c)

        return attempt


CallFn = Callable[[Call], Awaitable[object]]


@dataclass(frozen=True)
class ClientSpec:
    """A client: ``build(env)`` returns the coroutine function one logical call awaits."""

    name: str
    build: Callable[[Env], CallFn]
    package: str | None = None
    has_breaker: bool = False


def no_protection(env: Env) -> CallFn:
    return env.timed_attempt()


def pybreaker_client(env: Env) -> CallFn:
    import pybreaker

    env.stack.enter_context(pybreaker_simulated_time(env.loop.time))
    breaker = pybreaker.CircuitBreaker()
    attempt = env.timed_attempt()

    async def call(c: Call) -> str:
        with breaker.calling():
            return await attempt(c)

    return call


def circuitbreaker_client(env: Env) -> CallFn:
    import circuitbreaker

    env.stack.enter_context(patched(circuitbreaker, "monotonic", env.loop.time, expect=callable))
    breaker = circuitbreaker.CircuitBreaker()
    protected: CallFn = breaker(env.timed_attempt())  # its async wrapper for a coroutine function
    monitor = getattr(circuitbreaker, "CircuitBreakerMonitor", None)
    registered = getattr(monitor, "circuit_breakers", None)
    if isinstance(registered, dict):
        env.stack.callback(registered.pop, breaker.name, None)
    return protected


def purgatory_client(env: Env) -> CallFn:
    import purgatory
    from purgatory.domain import model

    now = env.loop.time
    clock = types.SimpleNamespace(time=lambda: _EPOCH_SECONDS + now())
    env.stack.enter_context(
        patched(model, "time", clock, expect=lambda t: callable(getattr(t, "time", None)))
    )
    factory = purgatory.AsyncCircuitBreakerFactory()
    protected: CallFn = factory("bench_outage")(env.timed_attempt())
    return protected


def aiobreaker_client(env: Env) -> CallFn:
    import aiobreaker
    import aiobreaker.circuitbreaker
    import aiobreaker.state

    clock = simulated_datetime(env.loop.time)
    for module in (aiobreaker.circuitbreaker, aiobreaker.state):
        env.stack.enter_context(patched(module, "datetime", clock, expect=_is_datetime))
    breaker = aiobreaker.CircuitBreaker()
    attempt = env.timed_attempt()

    async def call(c: Call) -> object:
        return await breaker.call_async(attempt, c)

    return call


def _seawall(env: Env, *, breaker: bool, retry: bool, **budget: Any) -> CallFn:
    """A seawall Policy, every part on the simulation's clock: the breaker with its defaults
    (``breaker``), a 1 s attempt timeout, and (``retry``) 3 attempts on connection errors and
    timeouts with a RetryBudget (``budget``: its arguments)."""
    import seawall

    clock = env.clock
    parts: dict[str, Any] = {}
    if breaker:
        parts["breaker"] = seawall.CircuitBreaker(clock=clock, rng=env.rng)
    if retry:
        parts["retry"] = seawall.Retry(
            on=(TimeoutError, UpstreamError),
            attempts=RETRY_ATTEMPTS,
            budget=seawall.RetryBudget(clock=clock, **budget),
            clock=clock,
        )
    policy = seawall.Policy(
        "bench_outage",
        attempt_timeout=seawall.Timeout(env.scenario.attempt_timeout, clock=clock),
        clock=clock,
        **parts,
    )
    request = env.upstream.request

    async def call(c: Call) -> object:
        return await policy.acall(request, c)

    return call


def seawall_client(env: Env) -> CallFn:
    return _seawall(env, breaker=True, retry=False)


def seawall_default_policy(env: Env) -> CallFn:
    return _seawall(env, breaker=True, retry=True)


def seawall_budget_only(env: Env) -> CallFn:
    return _seawall(env, breaker=False, retry=True)


def seawall_ratio_only(env: Env) -> CallFn:
    return _seawall(env, breaker=False, retry=True, min_per_second=0.0)


def _tenacity_retry() -> Callable[[Any], Any]:
    import tenacity

    try:
        wait = tenacity.wait_exponential_jitter(multiplier=0.1, max=5.0, jitter=0.1)
    except TypeError:  # tenacity < 9.2 names it initial
        wait = tenacity.wait_exponential_jitter(initial=0.1, max=5.0, jitter=0.1)
    return tenacity.retry(
        stop=tenacity.stop_after_attempt(RETRY_ATTEMPTS),
        wait=wait,
        retry=tenacity.retry_if_exception_type((TimeoutError, UpstreamError)),
        reraise=True,
    )


def tenacity_client(env: Env) -> CallFn:
    retried: CallFn = _tenacity_retry()(env.timed_attempt())
    return retried


NO_PROTECTION = "no protection"
PYBREAKER = "pybreaker"
CIRCUITBREAKER = "circuitbreaker"
PURGATORY = "purgatory"
AIOBREAKER = "aiobreaker"
SEAWALL = "seawall"
SEAWALL_POLICY = "seawall default policy [info]"
TENACITY = "tenacity, 3 attempts"
SEAWALL_BUDGET = "seawall Retry + RetryBudget(), no breaker"
SEAWALL_RATIO = "seawall Retry + RetryBudget(min_per_second=0), no breaker"

CLIENTS: tuple[ClientSpec, ...] = (
    ClientSpec(NO_PROTECTION, no_protection),
    ClientSpec(PYBREAKER, pybreaker_client, "pybreaker", has_breaker=True),
    ClientSpec(CIRCUITBREAKER, circuitbreaker_client, "circuitbreaker", has_breaker=True),
    ClientSpec(PURGATORY, purgatory_client, "purgatory", has_breaker=True),
    ClientSpec(AIOBREAKER, aiobreaker_client, "aiobreaker", has_breaker=True),
    ClientSpec(SEAWALL, seawall_client, "seawall", has_breaker=True),
    ClientSpec(SEAWALL_POLICY, seawall_default_policy, "seawall", has_breaker=True),
)
#: The retry-budget part's own clients (it also shows no protection and the default policy).
BUDGET_CLIENTS: tuple[ClientSpec, ...] = (
    ClientSpec(TENACITY, tenacity_client, "tenacity"),
    ClientSpec(SEAWALL_BUDGET, seawall_budget_only, "seawall"),
    ClientSpec(SEAWALL_RATIO, seawall_ratio_only, "seawall"),
)
SPECS = {c.name: c for c in CLIENTS + BUDGET_CLIENTS}
BUDGET_SHAPE = "hard-down"

#: How each client is configured, run and timed; the seawall rows add their defaults.
HOW: dict[str, tuple[str, str, str, str]] = {
    # client: (trips on, stays open, half-open admits, time source patched for its run)
    NO_PROTECTION: ("-", "-", "-", "asyncio.timeout on the loop's clock"),
    PYBREAKER: (
        "fail_max=5 failures in a row",
        "reset_timeout=60 s",
        "every caller until an outcome",
        "datetime.now(UTC) via pybreaker.datetime",
    ),
    CIRCUITBREAKER: (
        "failure_threshold=5 failures in a row",
        "recovery_timeout=30 s",
        "every caller until an outcome",
        "time.monotonic via circuitbreaker.monotonic",
    ),
    PURGATORY: (
        "default_threshold=5 failures in a row",
        "default_ttl=30 s",
        "every caller until an outcome",
        "time.time via purgatory.domain.model.time",
    ),
    AIOBREAKER: (
        "fail_max=5 failures in a row",
        "timeout_duration=60 s",
        "every caller until an outcome",
        "datetime.utcnow/now via aiobreaker.circuitbreaker and .state",
    ),
}


def seawall_breaker_defaults() -> dict[str, Any]:
    """The defaults of ``seawall.CircuitBreaker``'s parameters, from its signature."""
    import seawall

    skip = {"name", "clock", "rng", "failure_on", "ignore_on", "failure_result"}
    return {
        name: p.default
        for name, p in inspect.signature(seawall.CircuitBreaker).parameters.items()
        if name not in skip and p.default is not inspect.Parameter.empty
    }


def _seawall_how(defaults: dict[str, Any]) -> tuple[str, str, str, str]:
    """The seawall row of the clients table, from the breaker's defaults (whichever exist)."""
    trips = []
    streak = defaults.get("consecutive_failures")
    if streak is not None:
        span = defaults.get("consecutive_span")
        trips.append(f"{streak} failures in a row" + (f" spanning >= {span:g} s" if span else ""))
    if "failure_ratio" in defaults:
        trips.append(
            f"failure ratio {defaults['failure_ratio']:g} over its window once "
            f"{defaults.get('minimum_calls')} calls are in it"
        )
    opened = "-"
    if "open_duration" in defaults:
        opened = f"open_duration={defaults['open_duration']:g} s"
        cap = defaults.get("max_open_duration")
        if cap is not None and cap > defaults["open_duration"]:
            opened += f", doubling up to {cap:g} s"
    probes = defaults.get("half_open_calls")
    admits = "-" if probes is None else f"half_open_calls={probes} probe(s)"
    return " or ".join(trips) or "-", opened, admits, "clock=LoopClock (simulated)"


# -- running it --------------------------------------------------------------------------------


@dataclass
class Outcome:
    """One client's run: every call (in arrival order) and every upstream attempt's start."""

    spec: ClientSpec
    scenario: Scenario
    calls: list[Call]
    attempt_times: list[float]


async def _simulate(spec: ClientSpec, scenario: Scenario) -> Outcome:
    loop = asyncio.get_running_loop()
    arrivals = scenario.arrivals()
    calls = [Call(i, t) for i, t in enumerate(arrivals)]
    count = len(calls)
    upstream = Upstream(scenario, loop, count)
    finished = loop.create_future()
    live: set[asyncio.Task[None]] = set()
    pending = count

    async def one(c: Call) -> None:
        nonlocal pending
        try:
            await call(c)
        except Exception as exc:  # every failure a caller would see, refusals included
            c.error = type(exc).__name__
            exc.__traceback__ = None  # purgatory raises one object on every refusal
        else:
            c.ok = True
        c.end = loop.time()
        pending -= 1
        if not pending:
            finished.set_result(None)

    def arrive(i: int) -> None:
        task = loop.create_task(one(calls[i]))
        live.add(task)
        task.add_done_callback(live.discard)
        if i + 1 < count:
            loop.call_at(arrivals[i + 1], arrive, i + 1)

    with contextlib.ExitStack() as stack:
        env = Env(scenario, loop, LoopClock(loop), upstream, stack, random.Random(scenario.seed))
        try:
            call = spec.build(env)
        except ImportError as exc:
            raise SkipCandidate(f"not installed ({exc})") from exc
        except SkipCandidate:
            raise
        except Exception as exc:
            raise SkipCandidate(f"setup failed: {type(exc).__name__}: {exc}") from exc
        if count:
            loop.call_at(arrivals[0], arrive, 0)
            await finished
    return Outcome(spec, scenario, calls, upstream.attempt_times)


def simulate(spec: ClientSpec, scenario: Scenario) -> Outcome:
    """Run one client through one scenario on a fresh simulated loop, deterministically.
    Raises :class:`SkipCandidate` if the client cannot be built."""
    state = random.getstate()
    random.seed(scenario.seed)  # the jitter of tenacity's and seawall's retry waits
    try:
        with asyncio.Runner(loop_factory=SimLoop) as runner:
            return runner.run(_simulate(spec, scenario))
    finally:
        random.setstate(state)


# -- what a run shows --------------------------------------------------------------------------

_arrival = attrgetter("arrival")


def calls_between(calls: Sequence[Call], start: float, end: float) -> Sequence[Call]:
    """The calls (sorted by arrival) arriving in [start, end)."""
    lo = bisect.bisect_left(calls, start, key=_arrival)
    hi = bisect.bisect_left(calls, end, lo, key=_arrival)
    return calls[lo:hi]


def count_between(times: Sequence[float], start: float, end: float) -> int:
    """How many of the sorted ``times`` fall in [start, end)."""
    return bisect.bisect_left(times, end) - bisect.bisect_left(times, start)


def detect_time(calls: Sequence[Call], start: float, until: float) -> float | None:
    """From ``start`` to the end of the first refused call among those arriving in
    [start, until); ``None``: none was refused."""
    ends = [c.end for c in calls_between(calls, start, until) if c.refused]
    return min(ends) - start if ends else None


def recover_time(calls: Sequence[Call], end: float, until: float) -> float | None:
    """The smallest r >= 0 such that every call arriving in [end + r, until) succeeded: the
    arrival of the first call after the last failure there, less ``end`` (0.0 if none failed);
    ``None`` if the last call of the stretch failed."""
    after = calls_between(calls, end, until)
    last = next((i for i in range(len(after) - 1, -1, -1) if not after[i].ok), None)
    if last is None:
        return 0.0
    if last == len(after) - 1:
        return None
    return after[last + 1].arrival - end


def peak_in_window(times: Sequence[float], width: float = 1.0) -> int:
    """The most of the sorted ``times`` in any window [t, t + width)."""
    peak = lo = 0
    for hi, t in enumerate(times):
        while t - times[lo] >= width:
            lo += 1
        peak = max(peak, hi - lo + 1)
    return peak


def probe_peak(attempt_times: Sequence[float], since: float, until: float) -> int:
    """The peak, in any 1 s, of the upstream attempts started in [since, until): the probes
    of a breaker that has been refusing since ``since``."""
    lo = bisect.bisect_left(attempt_times, since)
    hi = bisect.bisect_left(attempt_times, until, lo)
    return peak_in_window(attempt_times[lo:hi])


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (``q`` in 0..100) of a non-empty sequence."""
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


@dataclass(frozen=True)
class Summary:
    """One run's figures. Per-phase tuples: ``None`` is "never"."""

    client: str
    shape: str
    rate: float
    has_breaker: bool
    calls: int
    successes: int
    refused: int
    attempts: int
    disturbed_calls: int
    disturbed_attempts: int
    p99_disturbed: float
    detect: tuple[float | None, ...]
    recover: tuple[float | None, ...]
    probes_peak: tuple[int | None, ...]

    @property
    def availability(self) -> float:
        return self.successes / self.calls if self.calls else math.nan

    @property
    def attempts_per_call_disturbed(self) -> float:
        return self.disturbed_attempts / self.disturbed_calls if self.disturbed_calls else 0.0

    @property
    def worst_detect(self) -> float:
        """The slowest phase's detection; ``inf`` if a phase was never detected."""
        return max((math.inf if d is None else d for d in self.detect), default=0.0)

    @property
    def worst_recover(self) -> float:
        return max((math.inf if r is None else r for r in self.recover), default=0.0)

    @property
    def peak_probes(self) -> int | None:
        """The most probes in any 1 s of any phase; ``None`` if the breaker never refused."""
        peaks = [p for p in self.probes_peak if p is not None]
        return max(peaks) if peaks else None

    def as_dict(self) -> dict[str, Any]:
        data = dict(self.__dict__)
        data.update(
            availability=self.availability,
            attempts_per_call_disturbed=self.attempts_per_call_disturbed,
        )
        return data


def summarize(outcome: Outcome) -> Summary:
    scenario, calls, times = outcome.scenario, outcome.calls, outcome.attempt_times
    shape = scenario.shape
    detect: list[float | None] = []
    recover: list[float | None] = []
    probes: list[int | None] = []
    latencies: list[float] = []
    disturbed_attempts = 0
    for span, until in shape.stretches():
        during = calls_between(calls, span.start, span.end)
        latencies += [c.end - c.arrival for c in during]
        disturbed_attempts += count_between(times, span.start, span.end)
        found = detect_time(calls, span.start, until)
        detect.append(found)
        recover.append(recover_time(calls, span.end, until))
        probes.append(None if found is None else probe_peak(times, span.start + found, span.end))
    return Summary(
        client=outcome.spec.name,
        shape=shape.name,
        rate=scenario.rate,
        has_breaker=outcome.spec.has_breaker,
        calls=len(calls),
        successes=sum(c.ok for c in calls),
        refused=sum(c.refused for c in calls),
        attempts=len(times),
        disturbed_calls=len(latencies),
        disturbed_attempts=disturbed_attempts,
        p99_disturbed=percentile(latencies, 99) if latencies else math.nan,
        detect=tuple(detect),
        recover=tuple(recover),
        probes_peak=tuple(probes),
    )


@dataclass(frozen=True)
class Series:
    """What a picture shows of one run: the share of calls arriving in each second that
    succeeded, and the spans of arrivals that the breaker refused."""

    client: str
    has_breaker: bool
    success_share: tuple[float, ...]
    refusing: tuple[tuple[float, float], ...]


def series(outcome: Outcome) -> Series:
    seconds = math.ceil(outcome.scenario.shape.end)
    ok = [0] * seconds
    total = [0] * seconds
    spans: list[list[float]] = []
    gap = 1.5 / outcome.scenario.rate  # consecutive arrivals are 1 / rate apart
    for c in outcome.calls:
        s = min(int(c.arrival), seconds - 1)
        total[s] += 1
        ok[s] += c.ok
        if c.refused:
            if spans and c.arrival - spans[-1][1] < gap:
                spans[-1][1] = c.arrival
            else:
                spans.append([c.arrival, c.arrival])
    step = 1 / outcome.scenario.rate
    return Series(
        outcome.spec.name,
        outcome.spec.has_breaker,
        tuple(k / n if n else math.nan for k, n in zip(ok, total, strict=True)),
        tuple((a, b + step) for a, b in spans),
    )


# -- the matrix --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Cell:
    shape: str
    rate: float
    client: str
    want_series: bool = False

    @property
    def cost(self) -> float:
        """Roughly proportional to the simulated calls."""
        return SHAPES_BY_NAME[self.shape].end * self.rate


def run_cell(cell: Cell) -> tuple[Cell, Summary | Skipped, Series | None]:
    """One run: its summary (or why the client was skipped) and, if asked, its series."""
    spec = SPECS[cell.client]
    scenario = Scenario(SHAPES_BY_NAME[cell.shape], cell.rate)
    try:
        outcome = simulate(spec, scenario)
    except SkipCandidate as exc:
        return cell, Skipped(spec.name, str(exc)), None
    return cell, summarize(outcome), series(outcome) if cell.want_series else None


@dataclass
class Matrix:
    shapes: list[Shape]
    rates: list[float]
    summaries: dict[tuple[str, float, str], Summary] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)
    series: dict[tuple[str, str], Series] = field(default_factory=dict)

    def get(self, shape: str, rate: float, client: str) -> Summary | None:
        return self.summaries.get((shape, rate, client))


def default_jobs() -> int:
    return max(1, min(4, os.cpu_count() or 1))


def run_cells(cells: Sequence[Cell], jobs: int = 1) -> Iterator[tuple[Cell, Any, Any]]:
    """Every cell, in this process (``jobs=1``) or spread over ``jobs`` worker processes
    (biggest first; each run is deterministic wherever it runs)."""
    if jobs <= 1 or len(cells) <= 1:
        yield from map(run_cell, cells)
        return
    ordered = sorted(cells, key=lambda c: -c.cost)
    context = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(jobs, mp_context=context) as pool:
        yield from pool.map(run_cell, ordered)


def run_matrix(
    shapes: Sequence[Shape],
    rates: Sequence[float],
    clients: Sequence[ClientSpec] = CLIENTS,
    *,
    plots: bool = False,
    jobs: int = 1,
    extra: Sequence[ClientSpec] = (),
) -> Matrix:
    """Every client through every shape at every rate; ``extra`` clients (the retry-budget
    part) on the hard-down shape only. A client that cannot be built is skipped."""
    matrix = Matrix(list(shapes), list(rates))
    cells = [
        Cell(shape.name, rate, spec.name, want_series=plots and rate == PLOT_RATE)
        for shape in shapes
        for rate in rates
        for spec in clients
    ]
    if any(s.name == BUDGET_SHAPE for s in shapes):
        cells += [Cell(BUDGET_SHAPE, rate, spec.name) for rate in rates for spec in extra]
    for cell, found, drawn in run_cells(cells, jobs):
        if isinstance(found, Skipped):
            matrix.skipped.setdefault(found.name, found.reason)
            continue
        matrix.summaries[cell.shape, cell.rate, cell.client] = found
        if drawn is not None:
            matrix.series[cell.shape, cell.client] = drawn
    return matrix


# -- tables ------------------------------------------------------------------------------------


def _seconds(value: float | None, *, missing: str = "never") -> str:
    if value is None or math.isinf(value):
        return missing
    return f"{value:.2f} s"


def _rate(rate: float) -> str:
    return f"{rate:g}"


def clients_table(clients: Sequence[ClientSpec], skipped: dict[str, str]) -> TextTable:
    headers = ["client", "version", "trips on", "stays open", "half-open admits", "time source"]
    rows: list[list[str]] = []
    notes: list[str] = []
    for spec in clients:
        if spec.name in skipped:
            continue
        if spec.package == "seawall":
            defaults = seawall_breaker_defaults()
            how = _seawall_how(defaults)
            if spec.name == SEAWALL_POLICY:
                notes.append(
                    f"{SEAWALL_POLICY}: the seawall row plus Retry(on=(TimeoutError, "
                    "UpstreamError), attempts=3, budget=RetryBudget()): what seawall's httpx "
                    "transports use by default (with httpx's errors)"
                )
            else:
                shown = ", ".join(f"{k}={v!r}" for k, v in defaults.items())
                notes.append(f"{SEAWALL}: CircuitBreaker() defaults: {shown}")
        else:
            how = HOW.get(spec.name, ("?", "?", "?", "?"))
        rows.append([spec.name, dist_version(spec.package), *how])
    notes += [f"skipped: {name}: {reason}" for name, reason in skipped.items()]
    title = (
        "clients: each a breaker constructed with no arguments around one attempt under a 1 s "
        "timeout (inside the breaker: a timeout is a failure), no retries; every clock on "
        "simulated time for its run only"
    )
    return TextTable(title, headers, rows, notes)


SHAPE_HEADERS = [
    "client",
    "calls/s",
    "availability",
    "vs unprotected",
    "attempts/call, disturbed",
    "p99 latency, disturbed",
    "detect",
    "recover",
    "probes, peak/1 s",
]


def shape_table(matrix: Matrix, shape: Shape, clients: Sequence[ClientSpec]) -> TextTable:
    rows: list[list[str]] = []
    data: list[dict[str, Any]] = []
    for rate in matrix.rates:
        baseline = matrix.get(shape.name, rate, NO_PROTECTION)
        for spec in clients:
            sm = matrix.get(shape.name, rate, spec.name)
            if sm is None:
                continue
            if spec.name == NO_PROTECTION:
                versus = "ref"
            elif baseline is None:
                versus = "-"
            else:
                versus = f"{(sm.availability - baseline.availability) * 100:+.1f}"
            breaker = sm.has_breaker
            peak = sm.peak_probes
            rows.append(
                [
                    sm.client,
                    _rate(rate),
                    f"{sm.availability:.1%}",
                    versus,
                    f"{sm.attempts_per_call_disturbed:.2f}",
                    f"{sm.p99_disturbed:.3f} s",
                    _seconds(sm.worst_detect) if breaker else "n/a",
                    _seconds(sm.worst_recover),
                    ("-" if peak is None else str(peak)) if breaker else "n/a",
                ]
            )
            data.append(sm.as_dict())
    notes = []
    disturbed = len(shape.disturbances)
    if disturbed > 1:
        notes.append(f"detect, recover, probes: the worst of the {disturbed} phases")
    title = f"{shape.name} ({shape.end:g} s): {shape.describe()}"
    return TextTable(title, SHAPE_HEADERS, rows, notes, data)


BUDGET_HEADERS = [
    "client",
    "calls/s",
    "attempts/call, outage",
    "availability",
    "p99 latency, outage",
]


def budget_table(matrix: Matrix) -> TextTable:
    names = [NO_PROTECTION, *(c.name for c in BUDGET_CLIENTS), SEAWALL_POLICY]
    rows: list[list[str]] = []
    data: list[dict[str, Any]] = []
    for rate in matrix.rates:
        for name in names:
            sm = matrix.get(BUDGET_SHAPE, rate, name)
            if sm is None:
                continue
            rows.append(
                [
                    name,
                    _rate(rate),
                    f"{sm.attempts_per_call_disturbed:.2f}",
                    f"{sm.availability:.1%}",
                    f"{sm.p99_disturbed:.3f} s",
                ]
            )
            data.append(sm.as_dict())
    shape = SHAPES_BY_NAME[BUDGET_SHAPE]
    title = (
        f"retry budget: retries against a dead dependency ({BUDGET_SHAPE}, "
        f"{shape.describe()}); {RETRY_ATTEMPTS} attempts on connection errors and timeouts"
    )
    notes = [
        f"{TENACITY}: tenacity.retry(stop_after_attempt(3), wait_exponential_jitter(0.1, "
        "max=5, jitter=0.1), retry_if_exception_type((TimeoutError, UpstreamError))) around "
        "the timed attempt, no budget",
        f"{SEAWALL_BUDGET} / {SEAWALL_RATIO}: Policy(retry=Retry(on=(TimeoutError, "
        "UpstreamError), attempts=3, budget=...), attempt_timeout=1.0), no breaker",
    ]
    return TextTable(title, BUDGET_HEADERS, rows, notes, data)


# -- bars --------------------------------------------------------------------------------------


def _case(shape: str, rate: float) -> str:
    return f"{shape} @{rate:g}/s"


def _seawall_cases(
    matrix: Matrix, shapes: Sequence[str], rates: Sequence[float]
) -> list[tuple[str, Summary]]:
    return [
        (_case(shape, rate), sm)
        for shape in shapes
        for rate in rates
        if (sm := matrix.get(shape, rate, SEAWALL)) is not None
    ]


def _fmt(value: float, unit: str) -> str:
    if math.isinf(value):
        return "never"
    return f"{value:.2f}{unit}"


def _worst_bar(
    bar_id: str,
    description: str,
    limit: float,
    cases: Sequence[tuple[str, float]],
    *,
    unit: str = "",
    valid: bool = True,
    problem: str = "",
) -> Bar:
    if not cases:
        return Bar(bar_id, description, limit, None, "not run (no such case selected)", valid)
    label, worst = max(cases, key=lambda case: case[1])
    detail = f"worst: {label} ({_fmt(worst, unit)}); " + ", ".join(
        f"{name} {_fmt(value, unit)}" for name, value in cases
    )
    if problem:
        detail += f"; {problem}"
    return Bar(bar_id, description, limit, worst, detail, valid)


OUTAGES = ("hard-down", "hanging", "flapping", "10-minute hang")
DEAD = ("hard-down", "hanging", "10-minute hang")
PROBED = ("hard-down", "10-minute hang")


def probe_bound() -> tuple[int | None, str]:
    """``half_open_calls / open_duration`` from the defaults, rounded up to whole probes."""
    defaults = seawall_breaker_defaults()
    calls, duration = defaults.get("half_open_calls"), defaults.get("open_duration")
    if not isinstance(calls, int) or not isinstance(duration, int | float) or duration <= 0:
        return None, "CircuitBreaker's signature has no half_open_calls / open_duration default"
    per_second = calls / duration
    bound = math.ceil(per_second - 1e-9)
    return bound, (
        f"bound: half_open_calls / open_duration = {calls} / {duration:g} s = "
        f"{per_second:.3g} probes/s, rounded up to {bound} whole probe(s) in any 1 s"
    )


def matrix_bars(matrix: Matrix) -> list[Bar]:
    wrong = [
        _case(shape, rate)
        for (shape, rate, client), sm in matrix.summaries.items()
        if client == NO_PROTECTION and sm.attempts != sm.calls
    ]
    valid = not wrong and not any(
        matrix.get(s.name, r, NO_PROTECTION) is None for s in matrix.shapes for r in matrix.rates
    )
    problem = (
        ""
        if valid
        else "the no-protection client did not make exactly one attempt per call"
        + (f" ({', '.join(wrong)})" if wrong else " (it did not run)")
    )
    common = {"valid": valid, "problem": problem}
    busy = [r for r in (20.0, 200.0) if r in matrix.rates]
    quiet = [r for r in (2.0,) if r in matrix.rates]
    all_shapes = [s.name for s in matrix.shapes]
    bars: list[Bar] = []

    lost = []
    for label, sm in _seawall_cases(matrix, all_shapes, busy):
        base = matrix.get(sm.shape, sm.rate, NO_PROTECTION)
        if base is not None:
            lost.append((label, (base.availability - sm.availability) * 100))
    bars.append(
        _worst_bar(
            "outage_availability",
            "seawall (CircuitBreaker() defaults) availability >= no protection's - 1 point, "
            "every shape at 20 and 200 calls/s: points below no protection",
            1.0,
            lost,
            unit=" pt",
            **common,
        )
    )
    for rates, limit, where in (
        (busy, 2.0, "hard-down, hanging, flapping, 10-minute hang at 20 and 200 calls/s"),
        (quiet, 5.0, "hard-down, hanging, flapping at 2 calls/s"),
    ):
        shapes = OUTAGES if limit == 2.0 else OUTAGES[:3]
        cases = _seawall_cases(matrix, shapes, rates)
        for what, attr in (("detect", "worst_detect"), ("recover", "worst_recover")):
            bars.append(
                _worst_bar(
                    f"outage_{what}_{limit:g}s",
                    f"seawall time to {what} <= {limit:g} s, {where} (s)",
                    limit,
                    [(label, getattr(sm, attr)) for label, sm in cases],
                    unit=" s",
                    **common,
                )
            )
    bars.append(
        _worst_bar(
            "outage_attempts_per_call",
            "seawall upstream attempts per call during the outage <= 0.1, hard-down, hanging, "
            "10-minute hang at 20 and 200 calls/s",
            0.1,
            [
                (label, sm.attempts_per_call_disturbed)
                for label, sm in _seawall_cases(matrix, DEAD, busy)
            ],
            **common,
        )
    )
    bound, how = probe_bound()
    cases = _seawall_cases(matrix, PROBED, matrix.rates)
    peaks = [(label, float(sm.peak_probes)) for label, sm in cases if sm.peak_probes is not None]
    never = [label for label, sm in cases if sm.peak_probes is None]
    bar = _worst_bar(
        "outage_probe_load",
        "seawall peak probes in any 1 s of the hard-down and 10-minute-hang outages <= "
        "half_open_calls / open_duration (defaults), every rate",
        math.inf if bound is None else float(bound),
        peaks,
        **common,
    )
    bar.detail = how + "; " + bar.detail
    if never:
        bar.detail += f"; never refused (no probes counted): {', '.join(never)}"
    if bound is None:
        bar.measured = None
    bars.append(bar)
    return bars


def budget_bar(matrix: Matrix) -> Bar:
    """The promise: with a RetryBudget of ratio 0.2, a dead dependency sees at most 1.2 attempts
    per call, where the ratio is the cap: rate >= min_per_second / ratio."""
    import seawall

    budget = seawall.RetryBudget()
    ratio, floor = budget.ratio, budget.min_per_second
    limit = 1 + ratio
    threshold = floor / ratio if ratio else math.inf
    cases = [
        (_case(BUDGET_SHAPE, rate), sm.attempts_per_call_disturbed)
        for rate in matrix.rates
        if rate >= threshold and (sm := matrix.get(BUDGET_SHAPE, rate, SEAWALL_BUDGET))
    ]
    bar = _worst_bar(
        "outage_retry_budget",
        f"seawall Retry with RetryBudget() (ratio {ratio:g}), no breaker: upstream attempts "
        f"per call during a hard-down outage <= {limit:g}, at rates >= {threshold:g} calls/s "
        "(where the ratio, not the floor, caps the retries)",
        limit,
        cases,
    )
    others = []
    for rate in matrix.rates:
        for name in (SEAWALL_BUDGET, SEAWALL_RATIO, TENACITY, SEAWALL_POLICY):
            sm = matrix.get(BUDGET_SHAPE, rate, name)
            if sm is not None and not (name == SEAWALL_BUDGET and rate >= threshold):
                others.append(f"{name} @{rate:g}/s {sm.attempts_per_call_disturbed:.2f}")
    if others:
        bar.detail += "; for comparison: " + ", ".join(others)
    return bar


# -- pictures ----------------------------------------------------------------------------------

COLOURS = {
    NO_PROTECTION: "#444444",
    PYBREAKER: "#1f77b4",
    CIRCUITBREAKER: "#ff7f0e",
    PURGATORY: "#9467bd",
    AIOBREAKER: "#8c564b",
    SEAWALL: "#2ca02c",
    SEAWALL_POLICY: "#17becf",
}


def plot_shape(shape: Shape, drawn: Sequence[Series], path: str) -> None:
    """One picture: success share per second for each client, the breakers' refusals as a
    strip, the upstream's disturbed phases shaded. Needs matplotlib."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    breakers = [s for s in drawn if s.has_breaker]
    fig, (top, strip) = plt.subplots(
        2,
        1,
        figsize=(10, 6),
        dpi=100,
        sharex=True,
        gridspec_kw={"height_ratios": [3, 1.4], "hspace": 0.08},
    )
    for ax in (top, strip):
        for i, span in enumerate(shape.disturbances):
            ax.axvspan(
                span.start,
                span.end,
                color="#d62728",
                alpha=0.10,
                lw=0,
                label="upstream disturbed" if ax is top and i == 0 else None,
            )
    seconds = [s + 0.5 for s in range(math.ceil(shape.end))]
    for k, s in enumerate(drawn):
        dashed = s.client == NO_PROTECTION
        top.plot(
            seconds,
            [v * 100 for v in s.success_share],
            color=COLOURS.get(s.client),
            lw=2.4 if dashed else 1.5,
            ls="--" if dashed else "-",
            alpha=0.9,
            label=s.client,
            zorder=3 + k,
        )
    top.set_ylabel("successful calls, % per second")
    top.set_ylim(-5, 105)
    title = f"{shape.name} at {PLOT_RATE:g} calls/s: {shape.describe()}"
    top.set_title(textwrap.fill(title, 120), fontsize=9)
    top.grid(alpha=0.3)
    # Every line sits at 0 or 100 % outside its transitions: the middle right stays clear.
    top.legend(loc="center right", fontsize=8, ncol=2, framealpha=0.9)

    for row, s in enumerate(reversed(breakers)):
        strip.broken_barh(
            [(a, b - a) for a, b in s.refusing],
            (row + 0.15, 0.7),
            color=COLOURS.get(s.client),
        )
    strip.set_yticks([row + 0.5 for row in range(len(breakers))])
    strip.set_yticklabels([s.client for s in reversed(breakers)], fontsize=8)
    strip.set_ylim(0, max(1, len(breakers)))
    strip.set_xlim(0, shape.end)
    strip.set_xlabel("simulated seconds (calls by arrival)")
    strip.set_title(
        "when each breaker refused calls (blank: closed, calls let through)", fontsize=9
    )
    fig.subplots_adjust(left=0.2, right=0.98, top=0.91, bottom=0.09)
    fig.savefig(path, dpi=100)
    plt.close(fig)


def draw_pictures(matrix: Matrix, clients: Sequence[ClientSpec]) -> tuple[list[Image], str]:
    """One PNG per shape at :data:`PLOT_RATE`; a note when they cannot be drawn."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return [], "pictures skipped: matplotlib is not installed (pip install -e '.[bench]')"
    if PLOT_RATE not in matrix.rates:
        return [], f"pictures skipped: they show {PLOT_RATE:g} calls/s, which did not run"
    os.makedirs(IMG_DIR, exist_ok=True)
    images = []
    for shape in matrix.shapes:
        drawn = [
            matrix.series[shape.name, c.name]
            for c in clients
            if (shape.name, c.name) in matrix.series
        ]
        if not drawn:
            continue
        path = os.path.join(IMG_DIR, f"outage-{shape.slug}.png")
        plot_shape(shape, drawn, path)
        images.append(Image(f"{shape.name} at {PLOT_RATE:g} calls/s", path))
    return images, ""


# -- the suite ---------------------------------------------------------------------------------


def _floats(text: str) -> list[float]:
    return [float(x) for x in text.split(",") if x.strip()]


def add_options(group: Any) -> None:
    group.add_argument(
        "--rates",
        dest="outage_rates",
        type=_floats,
        metavar="R,...",
        help="outage: calls per second to run (default: 2,20,200)",
    )
    group.add_argument(
        "--shapes",
        dest="outage_shapes",
        metavar="NAME,...",
        help=f"outage: shapes to run, by name or slug (default: all of "
        f"{', '.join(s.slug for s in SHAPES)})",
    )
    group.add_argument(
        "--plots",
        dest="outage_plots",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="outage: draw the pictures (default: only when the report is written)",
    )
    group.add_argument(
        "--jobs",
        dest="outage_jobs",
        type=int,
        metavar="N",
        help=f"outage: worker processes (default {default_jobs()}: one per CPU, at most 4)",
    )


def run(config: RunConfig) -> SuiteResult:
    result = SuiteResult("outage")
    options = config.options
    rates = sorted(options.get("outage_rates") or RATES)
    names = options.get("outage_shapes")
    shapes = find_shapes(names.split(",")) if names else list(SHAPES)
    plots = options.get("outage_plots")
    if plots is None:
        plots = config.report
    jobs = options.get("outage_jobs") or default_jobs()

    matrix = run_matrix(shapes, rates, plots=plots, jobs=jobs, extra=BUDGET_CLIENTS)
    result.tables.append(clients_table(CLIENTS, matrix.skipped))
    result.tables += [shape_table(matrix, shape, CLIENTS) for shape in shapes]
    if any(s.name == BUDGET_SHAPE for s in shapes):
        result.tables.append(budget_table(matrix))
    if SEAWALL not in matrix.skipped:
        result.bars += matrix_bars(matrix)
        if any(s.name == BUDGET_SHAPE for s in shapes):
            result.bars.append(budget_bar(matrix))
    else:
        result.notes.append(f"seawall is not importable: no bars ({matrix.skipped[SEAWALL]})")
    calls = sum(sm.calls for sm in matrix.summaries.values())
    result.notes.append(
        f"discrete-event simulation: {len(matrix.summaries)} runs, {calls:,} simulated calls; "
        "every call is an asyncio task on an event loop whose clock jumps to the next timer, "
        "so calls overlap and each timeout, wait and breaker timer fires at its simulated "
        "time; deterministic (seeded), not a timing, so --rounds and --sample-time do not "
        f"apply; {jobs} worker process(es). See benchmarks/bench_outage.py's docstring"
    )
    result.notes.append(
        "detect: phase start to the end of the first call the breaker refused (failed without "
        "touching the upstream); recover: from the phase's end to the first call of the "
        "unbroken run of successes that ends its stretch (to the next phase or the run's "
        "end); probes: upstream attempts started after detection and before the phase's "
        "end, the most in any 1 s (sliding)"
    )
    import seawall

    budget = seawall.RetryBudget()
    result.notes.append(
        f"RetryBudget(): retries up to ratio {budget.ratio:g} x the calls in its "
        f"{budget.window:g} s window or min_per_second={budget.min_per_second:g} x the window, "
        f"whichever is larger: below {budget.min_per_second / budget.ratio:g} calls/s the "
        "floor, not the ratio, caps the retries"
    )
    if plots:
        images, note = draw_pictures(matrix, CLIENTS)
        result.images += images
        if note:
            result.notes.append(note)
    return result


SUITE = Suite(
    "outage",
    "outage scenarios on simulated time: shapes x rates x breakers at their defaults",
    run,
    add_options,
)

if __name__ == "__main__":
    sys.exit(cli(sys.argv[1:], {SUITE.name: SUITE}))
