"""Breakers shared on Redis (``shared=RedisState(url)``): what sharing costs and what it buys,
and what a Redis killed under load does to callers.

Everything runs against a real ``redis-server`` that the suite starts on a free 127.0.0.1
port (no persistence, its own temporary directory) and stops at the end. Without
``redis-server`` on PATH, or without redis-py, the suite says so and its bars are skipped.

1. **Success path.** A decorated no-op through ``CircuitBreaker(name=...)`` at its defaults,
   local and with ``shared=RedisState(url)``, timed as the breaker suite times (interleaved
   rounds, see ``_harness``): overhead over the bare function and the paired ratio shared /
   local, sync and async. A shared breaker decides every call locally; its syncer thread
   exchanges counts with Redis every ``interval`` (0.1 s) meanwhile, and what that thread
   takes from the caller's thread (the GIL) is in the figures. Checked after timing: both
   breakers closed with no failure, and the shared one's successes counted in Redis's
   window. Bars: ratio <= 1.2, sync and async.

2. **Fleet outage**, in real time. 8 worker processes (``multiprocessing``, spawned), each
   calling a dependency every 10 ms (staggered by 1.25 ms from one worker to the next)
   through ``CircuitBreaker(name="dep")`` at its defaults, once with no ``shared=`` (each
   process on its own) and once with ``shared=RedisState(url)`` (its defaults:
   ``interval=0.1``). The dependency reads one wall-clock schedule (``time.time()``
   against a start time given to every worker): healthy 1 s, dead 3 s (it raises
   ``ConnectionError`` at once), healthy 2 s; it records every attempt it gets. A worker
   that falls more than one period behind skips the ticks it missed (a loaded machine lowers
   the rate, it never bursts). Each configuration runs once. Columns:

   - ``attempts during the outage``: attempts that reached the dead dependency, all 8
     workers; split into those before the worker's breaker first refused a call and those
     after (the probes, and calls admitted while a worker had not yet followed the shared
     state);
   - ``probes, fleet peak/1 s``: of the attempts after a worker's first refusal, the most
     the whole fleet made in any 1 s (sliding);
   - ``detect``: from the outage's start to each worker's first refused call;
   - ``recover``: from the outage's end to the first call of each worker's unbroken run of
     successes to the run's end (the outage suite's definition), median and worst worker.

   Detection is local in both configurations: every worker sees the dependency fail at the
   same moment, and each trips on its own streak (5 failures in a row spanning 0.5 s), so
   the attempts until the breakers open are about the same with and without sharing; what
   sharing changes is the open stretch, where the fleet sends ``half_open_calls`` probes per
   open duration instead of each process sending its own. Bars: the fleet's shared probes
   <= 0.5 x the per-process configuration's; their peak in any 1 s <= ``half_open_calls /
   open_duration`` (the defaults), rounded up, as the outage suite bounds one breaker's;
   every shared worker recovered within 1.5 s of the outage's end (the jittered open
   duration, 0.72 s at most, plus an exchange interval and room for a loaded machine).

3. **Trip propagation.** The same 8 workers, each with a shared breaker
   (``consecutive_span=0``, so that 5 quick failures trip it at once; otherwise its
   defaults). 20 times, one worker in turn trips its breaker; every worker records (a state
   listener) when its breaker left the closed state; 0.25 s after the trip the tripping
   worker resets it (a switch every worker follows) and the next trip comes 0.5 s after the
   last. Per trip: the time until the last of the other 7 workers had opened; a worker that
   had not opened by the reset missed the trip. Bar: p99 over the trips <= 250 ms.

4. **Redis killed mid-load.** Two worker processes run the same load in the same seconds:
   4 threads each, calling back to back a healthy dependency (``time.sleep(200 µs)``) through
   ``CircuitBreaker(name="kill-dep")`` at its defaults, in one worker local, in the other with
   ``shared=RedisState(url)`` (its defaults); 3 s of load, redis-server killed (``SIGKILL``)
   at 1 s and started again on its port at 2 s (by the parent, which waits until it answers).
   A thread of each worker reads its breaker's ``snapshot()`` every 5 ms (``shared_up``),
   and goes on 1 s after the load; each worker records every record of the ``seawall``
   logger at any level. 6 rounds, which worker is shared alternating, so that machine noise
   hits both alike. Figures: exceptions that reached the callers; p50 and p99 latency of the
   calls (pooled, and the calls started while Redis was down); the log lines per outage;
   from the kill until ``shared_up`` reads false and from the restart until it reads true.
   Bars: no exception reached a caller; the shared worker's p99 / the local worker's,
   median over the rounds, <= 1.1; at most 2 log lines per outage (one when lost, one when
   back); ``shared_up`` again within 1 s of the restart, worst round.

Parts 2 and 3 run on one fleet, spawned once (8 interpreters take seconds to start on a
small machine): the per-process outage, the shared outage, then the trips, each stage set up
in the 0.5 s after the previous one ends; part 4 on a fleet of two, its rounds as stages.
Times across processes are ``time.time()`` on one host.

Run: ``python benchmarks/run.py shared`` (or ``python benchmarks/bench_shared.py``).
``--rounds`` and ``--sample-time`` apply to part 1 only.
"""

from __future__ import annotations

import logging
import math
import multiprocessing
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from _harness import (
    RESULT,
    Bar,
    Candidate,
    RunConfig,
    Suite,
    SuiteResult,
    Table,
    TextTable,
    anoop,
    bare,
    cli,
    invalid_rows,
    noop,
    overhead_table,
)

OVERHEAD_LIMIT = 1.2
PROBE_SHARE_LIMIT = 0.5
RECOVER_LIMIT = 1.5
PROPAGATION_LIMIT = 0.250
KILL_P99_LIMIT = 1.10
KILL_LOG_LIMIT = 2
KILL_BACK_LIMIT = 1.0
LOCAL = "seawall, local"
SHARED = "seawall, shared=RedisState"

# -- a redis-server of the suite's own ---------------------------------------------------------


def missing() -> str | None:
    """Why the suite cannot run here, or ``None``."""
    if shutil.which("redis-server") is None:
        return "redis-server is not on PATH (Debian's redis-server package has it)"
    try:
        import redis  # noqa: F401

        import seawall.redis  # noqa: F401
    except ImportError as exc:
        return f"redis-py is not installed (pip install seawall[redis]): {exc}"
    return None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class RedisServer:
    """``redis-server`` on a free 127.0.0.1 port, no persistence, in a temporary directory. It
    can be killed (``SIGKILL``) and started again on the same port."""

    def __init__(self) -> None:
        executable = shutil.which("redis-server")
        if executable is None:
            raise RuntimeError("redis-server is not on PATH")
        self._executable = executable
        self._dir = tempfile.TemporaryDirectory(prefix="seawall-bench-redis-")
        self.port = _free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.version = ""
        self.process: subprocess.Popen[bytes] | None = None
        try:
            self.start()
        except BaseException:
            self.stop()
            raise

    def start(self) -> None:
        """Start the server (again) on its port; return once it answers."""
        self.process = subprocess.Popen(
            [
                self._executable,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                self._dir.name,
                "--loglevel",
                "warning",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10.0
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as sock:
                    sock.sendall(b"INFO server\r\n")
                    answer = sock.recv(4096).decode(errors="replace")
                    if answer.startswith("$"):
                        for line in answer.splitlines():
                            if line.startswith("redis_version:"):
                                self.version = line.split(":", 1)[1].strip()
                        return
            except OSError:
                pass
            time.sleep(0.005)
        raise RuntimeError(f"redis-server did not start on port {self.port}")

    def kill(self) -> None:
        """``SIGKILL``: the server is gone at once, its data with it."""
        if self.process is not None:
            self.process.kill()
            self.process.wait()
            self.process = None

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
            self.process = None
        self._dir.cleanup()


def new_prefix() -> str:
    """Keys of one run's own: nothing left by an earlier run is shared with it."""
    return f"seawall-bench-{uuid.uuid4().hex[:12]}"


# -- 1. the success path -----------------------------------------------------------------------


def _check(breaker: Any, state: Any = None) -> Callable[[], str | None]:
    def check() -> str | None:
        snap = breaker.snapshot()
        if snap.state != "closed" or snap.failures or snap.rejected or not snap.successes:
            return f"breaker not on the success path: {snap}"
        if state is not None:
            state.sync_now()
            status = state.status(breaker.name)
            if snap.shared_errors or not snap.shared_up:
                return f"the shared state was not reached: {snap}"
            if status.state != "closed" or not status.window_calls or status.window_failures:
                return f"the shared window did not count the calls: {status}"
        return None

    return check


def overhead_tables(url: str, config: RunConfig) -> list[Table]:
    """Part 1: sync and async tables, bare / local / shared."""
    import seawall
    from seawall.redis import RedisState

    tables: list[Table] = []
    for kind, make in (("sync", noop), ("async", anoop)):
        state = RedisState(url, prefix=new_prefix())
        try:
            local = seawall.CircuitBreaker(name=f"bench-{kind}-local")
            shared = seawall.CircuitBreaker(name=f"bench-{kind}-shared", shared=state)
            candidates = [
                bare(make())(),
                Candidate(LOCAL, local(make()), "seawall", _check(local)),
                Candidate(
                    SHARED,
                    shared(make()),
                    "seawall",
                    _check(shared, state),
                    note=f"CircuitBreaker(name=..., shared=RedisState(url)); {state!r}; "
                    "its syncer thread runs meanwhile",
                ),
            ]
            title = (
                "sync: decorated no-op, overhead per call vs the bare function"
                if kind == "sync"
                else "async: awaited decorated no-op in one event loop, overhead per call vs bare"
            )
            tables.append(
                overhead_table(
                    f"{title}; CircuitBreaker() defaults, local vs shared on a loopback "
                    "redis-server",
                    kind,
                    candidates,
                    [],
                    reference=LOCAL,
                    config=config,
                )
            )
        finally:
            state.close()
    return tables


def overhead_bars(tables: Sequence[Table]) -> list[Bar]:
    bars = []
    for table in tables:
        ratio = table.overhead_ratio(SHARED, LOCAL)
        invalid = invalid_rows(table, (SHARED, LOCAL))
        detail = (
            "not measured"
            if ratio is None
            else f"overhead over bare, shared / local: paired per-round median; ratio of "
            f"minimums {ratio[1]:.3f}"
        )
        if invalid:
            detail += f"; failed the success-path check: {', '.join(invalid)}"
        bars.append(
            Bar(
                id=f"shared_overhead_vs_local_{table.kind}",
                description=f"shared breaker success-path overhead <= {OVERHEAD_LIMIT:g} x a "
                f"local breaker's ({table.kind})",
                limit=OVERHEAD_LIMIT,
                measured=None if ratio is None else ratio[0],
                detail=detail,
                valid=not invalid,
            )
        )
    return bars


# -- the fleet: spawned worker processes on one schedule ---------------------------------------


class FleetError(RuntimeError):
    """A worker failed to set up or to run, or the fleet did not finish in time."""


def _sleep_until(t: float) -> None:
    delay = t - time.time()
    if delay > 0:
        time.sleep(delay)


@dataclass(frozen=True)
class Stage:
    """One job every worker runs, from its start time for ``seconds``."""

    job: str
    args: dict[str, Any]
    seconds: float


def _worker(
    stages: Sequence[Stage], index: int, ready: Any, go: Any, start: Any, results: Any
) -> None:
    """A worker process: import what the jobs need, say so, wait for the start time, then run
    each stage (set up at the previous one's end, started ``GAP`` s after it), hand back."""
    try:
        import seawall

        if missing() is None:
            import seawall.redis  # noqa: F401
    except BaseException as exc:
        ready.put((index, f"{type(exc).__name__}: {exc}"))
        return
    ready.put((index, None))
    if not go.wait(120):
        return
    t = start.value
    out = []
    try:
        for stage in stages:
            run = JOBS[stage.job](index, stage.args)
            out.append(run(t))
            t += stage.seconds + GAP
    except BaseException as exc:
        results.put((index, None, f"{type(exc).__name__}: {exc}"))
    else:
        results.put((index, out, None))


#: Seconds between one stage's end and the next one's start (the next is set up meanwhile).
GAP = 0.5


def run_fleet(
    stages: Sequence[Stage],
    workers: int,
    lead: float = 0.3,
    during: Callable[[float], None] | None = None,
) -> list[tuple[float, list[Any]]]:
    """Spawn ``workers`` processes; once every one is ready, give them one start time
    (``lead`` s ahead, ``time.time()``). Per stage: its start time and each worker's result.
    One fleet for every stage: spawning 8 interpreters costs seconds on a small machine.
    ``during(start)``, if given, runs in this process while the workers run their stages."""
    context = multiprocessing.get_context("spawn")
    ready, results = context.Queue(), context.Queue()
    go = context.Event()
    start = context.Value("d", 0.0)
    processes = [
        context.Process(
            target=_worker,
            args=(list(stages), i, ready, go, start, results),
            name=f"seawall-bench-shared-{i}",
            daemon=True,
        )
        for i in range(workers)
    ]
    seconds = sum(stage.seconds + GAP for stage in stages)
    try:
        for process in processes:
            process.start()
        for _ in range(workers):
            index, problem = ready.get(timeout=120)
            if problem is not None:
                raise FleetError(f"worker {index} could not start: {problem}")
        t0 = time.time() + lead
        start.value = t0
        go.set()
        if during is not None:
            during(t0)
        by_worker: list[Any] = [None] * workers
        for _ in range(workers):
            index, value, problem = results.get(timeout=lead + seconds + 60)
            if problem is not None:
                raise FleetError(f"worker {index} failed: {problem}")
            by_worker[index] = value
    finally:
        go.set()  # a worker still waiting returns at once
        for process in processes:
            process.join(timeout=10)
            if process.is_alive():
                process.kill()
                process.join()
        for queue in (ready, results):
            queue.close()
            queue.join_thread()
    out = []
    t = t0
    for i, stage in enumerate(stages):
        out.append((t, [by_worker[w][i] for w in range(workers)]))
        t += stage.seconds + GAP
    return out


# -- 2. the fleet outage -----------------------------------------------------------------------

OK, FAILED, REFUSED = 0, 1, 2


@dataclass(frozen=True)
class OutagePlan:
    workers: int = 8
    period: float = 0.010
    warm: float = 1.0
    outage: float = 3.0
    healthy: float = 2.0

    @property
    def seconds(self) -> float:
        return self.warm + self.outage + self.healthy

    def describe(self) -> str:
        return (
            f"{self.workers} processes, each calling every {self.period * 1000:g} ms; "
            f"healthy {self.warm:g} s, dead {self.outage:g} s (ConnectionError at once), "
            f"healthy {self.healthy:g} s"
        )


def _outage_job(index: int, args: dict[str, Any]) -> Callable[[float], dict[str, Any]]:
    import seawall
    from seawall import CircuitOpenError

    plan: OutagePlan = args["plan"]
    state = None
    if args["url"] is not None:
        from seawall.redis import RedisState

        state = RedisState(args["url"], prefix=args["prefix"])
    breaker = seawall.CircuitBreaker(name="dep", shared=state)
    if state is not None:
        state.sync_now()  # connected, and the shared state's generation known
        if not state.up:
            raise FleetError(f"redis at {args['url']} did not answer")

    def run(t0: float) -> dict[str, Any]:
        down_from = t0 + plan.warm
        down_until = down_from + plan.outage
        end = t0 + plan.seconds
        attempts: list[float] = []
        calls: list[tuple[float, int]] = []

        def dependency() -> str:
            now = time.time()
            attempts.append(now)
            if down_from <= now < down_until:
                raise ConnectionError("the dependency is down")
            return "ok"

        guarded = breaker(dependency)
        offset = index * plan.period / plan.workers
        k = skipped = 0
        while True:
            tick = t0 + offset + k * plan.period
            if tick >= end:
                break
            now = time.time()
            if now < tick:
                time.sleep(tick - now)
            elif now - tick >= plan.period:  # behind: skip the ticks missed, never burst
                missed = int((now - tick) / plan.period)
                k += missed
                skipped += missed
                continue
            at = time.time()
            try:
                guarded()
                outcome = OK
            except CircuitOpenError:
                outcome = REFUSED
            except ConnectionError:
                outcome = FAILED
            calls.append((at, outcome))
            k += 1
        snap = breaker.snapshot()
        if state is not None:
            state.close()
        return {
            "attempts": attempts,
            "calls": calls,
            "skipped": skipped,
            "shared_errors": snap.shared_errors,
        }

    return run


@dataclass
class WorkerOutcome:
    calls: int
    attempts_down: int
    attempts_before_open: int
    probe_times: list[float]
    detect: float | None
    recover: float | None
    skipped: int
    shared_errors: int


@dataclass
class FleetOutcome:
    label: str
    plan: OutagePlan
    workers: list[WorkerOutcome] = field(default_factory=list)

    @property
    def calls(self) -> int:
        return sum(w.calls for w in self.workers)

    @property
    def attempts_down(self) -> int:
        return sum(w.attempts_down for w in self.workers)

    @property
    def attempts_before_open(self) -> int:
        return sum(w.attempts_before_open for w in self.workers)

    @property
    def probes(self) -> int:
        return sum(len(w.probe_times) for w in self.workers)

    @property
    def probe_peak(self) -> int:
        return peak_in_window(sorted(t for w in self.workers for t in w.probe_times))

    @property
    def detects(self) -> list[float | None]:
        return [w.detect for w in self.workers]

    @property
    def recovers(self) -> list[float | None]:
        return [w.recover for w in self.workers]

    @property
    def skipped(self) -> int:
        return sum(w.skipped for w in self.workers)


def peak_in_window(times: Sequence[float], width: float = 1.0) -> int:
    """The most of the sorted ``times`` in any window [t, t + width)."""
    peak = lo = 0
    for hi, t in enumerate(times):
        while t - times[lo] >= width:
            lo += 1
        peak = max(peak, hi - lo + 1)
    return peak


def recover_time(calls: Sequence[tuple[float, int]], end: float) -> float | None:
    """The smallest r >= 0 such that every call at or after ``end + r`` succeeded (0.0 if
    none after ``end`` failed); ``None`` if the last call did not succeed."""
    after = [c for c in calls if c[0] >= end]
    last = next((i for i in range(len(after) - 1, -1, -1) if after[i][1] != OK), None)
    if last is None:
        return 0.0
    if last == len(after) - 1:
        return None
    return after[last + 1][0] - end


def summarize_worker(raw: dict[str, Any], down_from: float, down_until: float) -> WorkerOutcome:
    calls: list[tuple[float, int]] = [tuple(c) for c in raw["calls"]]  # type: ignore[misc]
    down = [t for t in raw["attempts"] if down_from <= t < down_until]
    refused = next((t for t, o in calls if o == REFUSED and t >= down_from), None)
    opened = down_until if refused is None else refused
    return WorkerOutcome(
        calls=len(calls),
        attempts_down=len(down),
        attempts_before_open=sum(1 for t in down if t < opened),
        probe_times=[t for t in down if t >= opened],
        detect=None if refused is None or refused >= down_until else refused - down_from,
        recover=recover_time(calls, down_until),
        skipped=raw["skipped"],
        shared_errors=raw["shared_errors"],
    )


def analyse_outage(
    label: str, plan: OutagePlan, t0: float, raws: Sequence[dict[str, Any]]
) -> FleetOutcome:
    """Part 2, one configuration's figures from its workers' records (stage start ``t0``)."""
    down_from = t0 + plan.warm
    down_until = down_from + plan.outage
    outcome = FleetOutcome(label, plan)
    outcome.workers = [summarize_worker(raw, down_from, down_until) for raw in raws]
    return outcome


def _seconds(values: Sequence[float | None]) -> str:
    if not values:
        return "-"
    known = [v for v in values if v is not None]
    worst = "never" if len(known) < len(values) else f"{max(known):.2f} s"
    median = f"{statistics.median(known):.2f} s" if known else "never"
    return f"{median} / {worst}"


OUTAGE_HEADERS = [
    "breakers",
    "calls",
    "attempts during the outage",
    "until each opened",
    "after (probes)",
    "probes, fleet peak/1 s",
    "detect (median / worst)",
    "recover (median / worst)",
]


def outage_table(outcomes: Sequence[FleetOutcome]) -> TextTable:
    plan = outcomes[0].plan
    rows = [
        [
            o.label,
            f"{o.calls:,}",
            f"{o.attempts_down:,}",
            f"{o.attempts_before_open:,}",
            f"{o.probes:,}",
            str(o.probe_peak),
            _seconds(o.detects),
            _seconds(o.recovers),
        ]
        for o in outcomes
    ]
    data = [
        {
            "breakers": o.label,
            "calls": o.calls,
            "attempts_during_outage": o.attempts_down,
            "attempts_until_opened": o.attempts_before_open,
            "probes": o.probes,
            "probe_peak_per_second": o.probe_peak,
            "detect_s": o.detects,
            "recover_s": o.recovers,
            "skipped_ticks": o.skipped,
            "shared_errors": sum(w.shared_errors for w in o.workers),
        }
        for o in outcomes
    ]
    notes = [
        'per process: CircuitBreaker(name="dep") in each worker; shared: '
        'CircuitBreaker(name="dep", shared=RedisState(url)) in each worker (RedisState '
        "defaults: interval=0.1, timeout=0.25); both at the breaker's defaults",
        "attempts: calls that reached the dead dependency, all workers; until each opened: "
        "before that worker's first refused call; after: the rest (probes, and calls admitted "
        "before a worker followed the shared state); probes, fleet peak: the most of those in "
        "any 1 s (sliding), all workers together; detect: outage start to a worker's first "
        "refused call; recover: outage end to the first call of a worker's unbroken run of "
        "successes",
    ]
    if len(outcomes) == 2 and outcomes[1].attempts_down and outcomes[0].attempts_down:
        local, shared = outcomes
        notes.append(
            f"shared / per process: attempts during the outage "
            f"{shared.attempts_down / local.attempts_down:.2f} x, until each opened "
            f"{shared.attempts_before_open / max(1, local.attempts_before_open):.2f} x, after "
            f"{shared.probes / max(1, local.probes):.2f} x"
        )
    skipped = {o.label: o.skipped for o in outcomes if o.skipped}
    if skipped:
        notes.append(
            "ticks skipped by workers running late (a loaded machine): "
            + ", ".join(f"{label} {n:,}" for label, n in skipped.items())
        )
    errors = {o.label: sum(w.shared_errors for w in o.workers) for o in outcomes}
    if any(errors.values()):
        notes.append(
            "exchanges that did not reach Redis: "
            + ", ".join(f"{label} {n}" for label, n in errors.items() if n)
        )
    return TextTable(
        f"fleet outage, real time: {plan.describe()}", OUTAGE_HEADERS, rows, notes, data
    )


def probe_bound() -> tuple[int, str]:
    """Whole probes the defaults allow in any 1 s: half_open_calls / open_duration, up."""
    import inspect

    import seawall

    params = inspect.signature(seawall.CircuitBreaker).parameters
    calls = params["half_open_calls"].default
    duration = params["open_duration"].default
    bound = math.ceil(calls / duration)
    return bound, (
        f"half_open_calls / open_duration = {calls} / {duration:g} s = {calls / duration:.2f} "
        f"probes/s, rounded up to {bound} in any 1 s"
    )


def outage_bars(
    local: FleetOutcome | None, shared: FleetOutcome | None, why: str = ""
) -> list[Bar]:
    bound, how = probe_bound()
    probe_share = Bar(
        "shared_fleet_probes_vs_per_process",
        f"shared: attempts after each worker's breaker opened, whole fleet <= "
        f"{PROBE_SHARE_LIMIT:g} x the per-process breakers'",
        PROBE_SHARE_LIMIT,
        None,
        why,
    )
    peak = Bar(
        "shared_fleet_probe_peak",
        "shared: the fleet's probes in any 1 s of the outage <= half_open_calls / "
        "open_duration (defaults)",
        float(bound),
        None,
        why,
    )
    recover = Bar(
        "shared_fleet_recover_s",
        f"shared: every worker recovered <= {RECOVER_LIMIT:g} s after the outage's end (s)",
        RECOVER_LIMIT,
        None,
        why,
    )
    if local is None or shared is None:
        return [probe_share, peak, recover]
    probe_share.measured = shared.probes / local.probes if local.probes else math.inf
    probe_share.detail = (
        f"{shared.probes} vs {local.probes}; all attempts during the outage: "
        f"{shared.attempts_down:,} vs {local.attempts_down:,} "
        f"({shared.attempts_down / max(1, local.attempts_down):.2f} x): detection is local "
        "(each breaker trips on its own streak), the open stretch is shared"
    )
    peak.measured = float(shared.probe_peak)
    peak.detail = f"{how}; per-process breakers: {local.probe_peak}"
    recovers = shared.recovers
    recover.measured = math.inf if None in recovers else max(r for r in recovers if r is not None)
    recover.detail = (
        f"worst worker; median {_seconds(recovers).split(' / ')[0]}; per-process breakers: "
        f"{_seconds(local.recovers)} (median / worst)"
    )
    errors = sum(w.shared_errors for w in shared.workers)
    if errors:
        for bar in (probe_share, peak, recover):
            bar.valid = False
            bar.detail += f"; {errors} exchanges did not reach Redis"
    return [probe_share, peak, recover]


# -- 3. trip propagation -----------------------------------------------------------------------


@dataclass(frozen=True)
class PropagationPlan:
    workers: int = 8
    trips: int = 20
    cycle: float = 0.5
    #: The bar's limit: a worker that has not opened by then fails it anyway.
    reset_after: float = PROPAGATION_LIMIT

    @property
    def seconds(self) -> float:
        return self.trips * self.cycle


def _propagation_job(index: int, args: dict[str, Any]) -> Callable[[float], dict[str, Any]]:
    import seawall
    from seawall import CircuitState, StateChange
    from seawall.redis import RedisState

    plan: PropagationPlan = args["plan"]
    state = RedisState(args["url"], prefix=args["prefix"])
    breaker = seawall.CircuitBreaker(name="prop", consecutive_span=0.0, shared=state)
    opened: list[float] = []

    def listener(event: object) -> None:
        if isinstance(event, StateChange) and event.from_state is CircuitState.CLOSED:
            opened.append(time.time())

    breaker.add_listener(listener)
    state.sync_now()
    if not state.up:
        raise FleetError(f"redis at {args['url']} did not answer")

    @breaker
    def failing() -> None:
        raise ConnectionError("down")

    def run(t0: float) -> dict[str, Any]:
        for k in range(plan.trips):
            if k % plan.workers != index:
                continue
            at = t0 + k * plan.cycle
            _sleep_until(at)
            for _ in range(5):
                try:
                    failing()
                except (ConnectionError, seawall.CircuitOpenError):
                    pass
            _sleep_until(at + plan.reset_after)
            breaker.reset()
        _sleep_until(t0 + plan.seconds)
        snap = breaker.snapshot()
        state.close()
        return {"opened": opened, "shared_errors": snap.shared_errors}

    return run


@dataclass
class Propagation:
    plan: PropagationPlan
    #: Per trip: each other worker's delay (s), ``None`` where it had not opened by the reset.
    delays: list[list[float | None]] = field(default_factory=list)
    #: Trips whose tripping worker did not open (its trip was not counted).
    not_tripped: int = 0
    shared_errors: int = 0

    @property
    def fleet(self) -> list[float | None]:
        """Per trip: until the last other worker opened (``None``: one never did)."""
        return [None if None in d else max(x for x in d if x is not None) for d in self.delays]

    @property
    def missed(self) -> int:
        return sum(1 for d in self.delays for x in d if x is None)


def analyse_propagation(
    plan: PropagationPlan, t0: float, raws: Sequence[dict[str, Any]]
) -> Propagation:
    """Part 3's figures from the workers' records (stage start ``t0``)."""
    out = Propagation(plan, shared_errors=sum(r["shared_errors"] for r in raws))
    for k in range(plan.trips):
        begin = t0 + k * plan.cycle
        until = begin + plan.reset_after

        def first(opened: Sequence[float], begin: float = begin, until: float = until) -> Any:
            return next((t for t in opened if begin <= t < until), None)

        tripper = k % plan.workers
        tripped = first(raws[tripper]["opened"])
        if tripped is None:
            out.not_tripped += 1
            continue
        delays: list[float | None] = []
        for w, raw in enumerate(raws):
            if w != tripper:
                seen = first(raw["opened"])
                delays.append(None if seen is None else max(0.0, seen - tripped))
        out.delays.append(delays)
    return out


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (``q`` in 0..100) of a non-empty sequence."""
    ordered = sorted(values)
    return ordered[max(1, math.ceil(q / 100 * len(ordered))) - 1]


def _ms(values: Sequence[float | None], q: float) -> str:
    if not values:
        return "-"
    if None in values and percentile([math.inf if v is None else v for v in values], q) == math.inf:
        return "missed"
    return f"{percentile([math.inf if v is None else v for v in values], q) * 1000:.0f} ms"


def propagation_table(result: Propagation) -> TextTable:
    plan = result.plan
    fleet = result.fleet
    pooled = [x for d in result.delays for x in d]
    rows = [
        [
            f"seen by all {plan.workers} (the last of the other {plan.workers - 1}, per trip)",
            str(len(fleet)),
            _ms(fleet, 50),
            _ms(fleet, 99),
            _ms(fleet, 100),
            str(sum(1 for f in fleet if f is None)),
        ],
        [
            "seen by each other worker (pooled)",
            str(len(pooled)),
            _ms(pooled, 50),
            _ms(pooled, 99),
            _ms(pooled, 100),
            str(result.missed),
        ],
    ]
    notes = [
        f"{plan.trips} trips, {plan.cycle:g} s apart, by each worker in turn: 5 failures in a "
        'row of CircuitBreaker(name="prop", consecutive_span=0, shared=RedisState(url)); the '
        f"tripping worker resets it {plan.reset_after:g} s later; a worker that had not opened "
        "by then missed the trip; times from each worker's state listener (time.time())",
    ]
    if result.not_tripped:
        notes.append(
            f"trips where the tripping worker's own breaker did not open: {result.not_tripped}"
        )
    if result.shared_errors:
        notes.append(f"exchanges that did not reach Redis: {result.shared_errors}")
    data = [{"delays_s": result.delays, "not_tripped": result.not_tripped}]
    return TextTable(
        f"trip propagation: a trip in one of {plan.workers} processes, until the others open",
        ["", "trips", "p50", "p99", "max", "missed"],
        rows,
        notes,
        data,
    )


def propagation_bar(result: Propagation | None, why: str = "") -> Bar:
    bar = Bar(
        "shared_trip_propagation_p99_ms",
        f"shared: a trip in one worker seen by all {PropagationPlan.workers} within "
        f"{PROPAGATION_LIMIT * 1000:g} ms, p99 over the trips (ms)",
        PROPAGATION_LIMIT * 1000,
        None,
        why,
    )
    if result is None:
        return bar
    fleet = [math.inf if f is None else f for f in result.fleet]
    if not fleet:
        bar.detail = "no trip opened its own worker's breaker"
        bar.valid = False
        return bar
    bar.measured = percentile(fleet, 99) * 1000
    bar.detail = (
        f"{len(fleet)} trips; p50 {percentile(fleet, 50) * 1000:.0f} ms; missed "
        f"{result.missed} of {sum(len(d) for d in result.delays)} worker-trips"
    )
    if result.missed or result.not_tripped or result.shared_errors:
        bar.valid = not (result.not_tripped or result.shared_errors)
        if result.not_tripped:
            bar.detail += f"; {result.not_tripped} trips did not open the tripping worker"
        if result.shared_errors:
            bar.detail += f"; {result.shared_errors} exchanges did not reach Redis"
    return bar


# -- 4. redis-server killed mid-load -----------------------------------------------------------


class Killable(Protocol):
    """A redis-server that part 4 kills and starts again on the same port (its ``url``)."""

    url: str

    def kill(self) -> None: ...

    def start(self) -> None: ...


@dataclass(frozen=True)
class KillPlan:
    #: Two worker processes run at once, one with a local breaker and one with a shared one
    #: (which is which alternates over the rounds): both see the same machine at the same time.
    threads: int = 4
    #: The healthy dependency's time per call: a sleep, so that threads overlap as on I/O.
    work: float = 0.0002
    seconds: float = 3.0
    rounds: int = 6
    #: How often a thread of each worker reads its breaker's snapshot (``shared_up``); the
    #: local breaker's is read alike, so that both loads run beside the same reader.
    poll: float = 0.005
    #: After the load, how long each worker goes on reading the snapshot (``shared_up`` after
    #: the restart, still within the round).
    tail: float = 1.0

    @property
    def kill_at(self) -> float:
        return self.seconds / 3

    @property
    def restart_at(self) -> float:
        return 2 * self.seconds / 3

    def describe(self) -> str:
        return (
            f"2 processes at once (one breaker local, one shared), each {self.threads} threads "
            f"calling back to back for {self.seconds:g} s a healthy dependency "
            f"(time.sleep({self.work * 1e6:g} µs)); redis-server killed (SIGKILL) at "
            f"{self.kill_at:g} s, started again on its port at {self.restart_at:g} s"
        )


class _Records(logging.Handler):
    """Every record of the ``seawall`` logger, whatever the application's levels."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def _kill_job(index: int, args: dict[str, Any]) -> Callable[[float], dict[str, Any]]:
    """One worker of a round of part 4: ``plan.threads`` threads call a decorated healthy
    dependency, through a shared breaker if this worker is ``args["shared"]``, else a local
    one; the parent kills and restarts redis-server meanwhile."""
    import seawall

    plan: KillPlan = args["plan"]
    shared = index == args["shared"]
    state = None
    if shared:
        from seawall.redis import RedisState

        state = RedisState(args["url"], prefix=args["prefix"])
    breaker = seawall.CircuitBreaker(name="kill-dep", shared=state)
    if state is not None:
        state.sync_now()
        if not state.up:
            raise FleetError(f"redis at {args['url']} did not answer")

    @breaker
    def dependency() -> object:
        time.sleep(plan.work)
        return RESULT

    def run(t0: float) -> dict[str, Any]:
        records = _Records()
        logger = logging.getLogger("seawall")
        logger.addHandler(records)
        logger.setLevel(logging.DEBUG)
        per_thread: list[tuple[list[float], list[float], list[str]]] = []
        flips: list[tuple[float, bool | None]] = []

        def load(latencies: list[float], starts: list[float], errors: list[str]) -> None:
            _sleep_until(t0)
            clock = time.perf_counter
            origin = clock() - (time.time() - t0)  # perf_counter's reading at t0
            end = origin + plan.seconds
            while True:
                start = clock()
                if start >= end:
                    return
                try:
                    dependency()
                except Exception as exc:
                    errors.append(type(exc).__name__)
                else:
                    latencies.append(clock() - start)
                    starts.append(start - origin)

        def watch() -> None:
            _sleep_until(t0)
            last: bool | None = None
            while True:
                now = time.time()
                if now >= t0 + plan.seconds + plan.tail:
                    return
                up = breaker.snapshot().shared_up
                if up is not last:
                    flips.append((now - t0, up))
                    last = up
                time.sleep(plan.poll)

        threads = []
        for i in range(plan.threads):
            mine: tuple[list[float], list[float], list[str]] = ([], [], [])
            per_thread.append(mine)
            threads.append(threading.Thread(target=load, args=mine, name=f"kill-load-{i}"))
        threads.append(threading.Thread(target=watch, name="kill-watch"))
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        logger.removeHandler(records)
        if state is not None:
            state.close()
        errors = [e for _, _, mine in per_thread for e in mine]
        return {
            "shared": shared,
            "latencies": [d for mine in per_thread for d in mine[0]],
            "starts": [t for mine in per_thread for t in mine[1]],
            "exceptions": {name: errors.count(name) for name in sorted(set(errors))},
            "log": [(r.levelname, r.getMessage()) for r in records.records],
            "flips": flips,
        }

    return run


@dataclass
class KillRun:
    """One worker's figures of one round of part 4: one breaker, one kill, one restart."""

    shared: bool
    #: Every call that returned: its latency (s) and its start (s from the round's start).
    latencies: list[float]
    starts: list[float]
    #: Exceptions that reached a caller, by type.
    exceptions: dict[str, int]
    #: The ``seawall`` logger's lines, level and message.
    log: list[tuple[str, str]]
    #: From the kill to the first snapshot with ``shared_up`` false (``None``: none was).
    lost_after: float | None
    #: From the restart's start to the first snapshot after it with ``shared_up`` true.
    back_after: float | None
    #: From the restart's start until the new redis-server answered.
    ready_after: float
    down: tuple[float, float]  # the kill and the restart's start, s from the round's start

    @property
    def p50(self) -> float:
        return percentile(self.latencies, 50)

    @property
    def p99(self) -> float:
        return percentile(self.latencies, 99)

    @property
    def p99_down(self) -> float | None:
        lo, hi = self.down
        down = [d for d, t in zip(self.latencies, self.starts, strict=True) if lo <= t < hi]
        return percentile(down, 99) if down else None


def summarize_kill(raw: dict[str, Any], killed: float, restarted: float, ready: float) -> KillRun:
    """One worker's record of a round (times in s from the round's start) as figures."""
    flips: list[tuple[float, bool | None]] = list(raw["flips"])
    lost = next((t for t, up in flips if up is False and t >= killed), None)
    back = next((t for t, up in flips if up and t >= restarted), None)
    return KillRun(
        shared=raw["shared"],
        latencies=raw["latencies"],
        starts=raw["starts"],
        exceptions=dict(raw["exceptions"]),
        log=list(raw["log"]),
        lost_after=None if lost is None else lost - killed,
        back_after=None if back is None else back - restarted,
        ready_after=ready - restarted,
        down=(killed, restarted),
    )


@dataclass
class KillOutcome:
    plan: KillPlan
    #: Per round: the local worker's run and the shared worker's, side by side in time.
    rounds: list[tuple[KillRun, KillRun]] = field(default_factory=list)

    def runs(self, shared: bool) -> list[KillRun]:
        return [pair[1] if shared else pair[0] for pair in self.rounds]

    @property
    def ratios(self) -> list[float]:
        """Per round: the shared run's p99 / the local run's."""
        return [s.p99 / loc.p99 for loc, s in self.rounds]


def kill_rounds(server: Killable, plan: KillPlan) -> KillOutcome:
    """Part 4: ``plan.rounds`` rounds on a fleet of two workers, one breaker local and one
    shared (alternating which worker is which); in each round the parent kills redis-server
    at ``plan.kill_at`` and starts it again at ``plan.restart_at``."""
    seconds = plan.seconds + plan.tail
    stages = [
        Stage(
            "kill",
            {"plan": plan, "url": server.url, "prefix": new_prefix(), "shared": k % 2},
            seconds,
        )
        for k in range(plan.rounds)
    ]
    times: list[tuple[float, float, float]] = []

    def control(t0: float) -> None:
        t = t0
        for _ in stages:
            _sleep_until(t + plan.kill_at)
            killed = time.time()
            server.kill()
            _sleep_until(t + plan.restart_at)
            restarted = time.time()
            server.start()
            times.append((killed - t, restarted - t, time.time() - t))
            t += seconds + GAP

    outcome = KillOutcome(plan)
    for (_, raws), (killed, restarted, ready) in zip(
        run_fleet(stages, 2, during=control), times, strict=True
    ):
        runs = [summarize_kill(raw, killed, restarted, ready) for raw in raws]
        local = next(r for r in runs if not r.shared)
        shared = next(r for r in runs if r.shared)
        outcome.rounds.append((local, shared))
    return outcome


def _us(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds * 1e6:,.0f} µs"


def _p99_down(runs: Sequence[KillRun]) -> float | None:
    down = [
        d
        for r in runs
        for d, t in zip(r.latencies, r.starts, strict=True)
        if r.down[0] <= t < r.down[1]
    ]
    return percentile(down, 99) if down else None


def _worst(values: Sequence[float | None]) -> str:
    if not values:
        return "-"
    if None in values:
        return "never"
    known = [v for v in values if v is not None]
    return f"{statistics.median(known) * 1000:.0f} / {max(known) * 1000:.0f} ms"


KILL_HEADERS = [
    "breaker",
    "calls",
    "exceptions to callers",
    "p50",
    "p99",
    "p99, Redis down",
    "p99 x local (median of rounds)",
    "seawall log lines per outage (most)",
    "shared_up false after the kill (median / worst)",
    "shared_up again after the restart (median / worst)",
]


def kill_table(result: KillOutcome) -> TextTable:
    plan = result.plan
    rows, data = [], []
    for shared in (False, True):
        runs = result.runs(shared)
        pooled = [d for r in runs for d in r.latencies]
        exceptions = sum(sum(r.exceptions.values()) for r in runs)
        lines = max(len(r.log) for r in runs)
        rows.append(
            [
                SHARED if shared else LOCAL,
                f"{len(pooled):,}",
                str(exceptions),
                _us(percentile(pooled, 50)),
                _us(percentile(pooled, 99)),
                _us(_p99_down(runs)),
                f"{statistics.median(result.ratios):.2f}" if shared else "1.00",
                str(lines),
                _worst([r.lost_after for r in runs]) if shared else "-",
                _worst([r.back_after for r in runs]) if shared else "-",
            ]
        )
        data.append(
            {
                "breaker": SHARED if shared else LOCAL,
                "calls": [len(r.latencies) for r in runs],
                "exceptions": [r.exceptions for r in runs],
                "p50_s": [r.p50 for r in runs],
                "p99_s": [r.p99 for r in runs],
                "p99_redis_down_s": [r.p99_down for r in runs],
                "log_lines": [len(r.log) for r in runs],
                "shared_up_lost_after_s": [r.lost_after for r in runs],
                "shared_up_back_after_s": [r.back_after for r in runs],
                "redis_ready_after_s": [r.ready_after for r in runs],
            }
        )
    shared_runs = result.runs(True)
    notes = [
        f"{plan.rounds} rounds; in each, two spawned worker processes run the load in the same "
        'seconds, one with CircuitBreaker(name="kill-dep") at its defaults, the other with '
        "shared=RedisState(url) as well (its defaults), which is which alternating over the "
        "rounds; the parent kills redis-server and starts it again; a thread of each worker "
        f"reads its breaker's snapshot() every {plan.poll * 1000:g} ms",
        "latencies: calls that returned, all threads and rounds pooled; Redis down: calls that "
        "started between the kill and the restart; p99 x local: per round, the shared worker's "
        "p99 / the local worker's, median over the rounds: "
        + ", ".join(f"{r:.2f}" for r in result.ratios),
        "log lines: records of the seawall logger at any level in a worker during a round (one "
        "outage per round); shared_up again: from the restart's start (the new redis-server "
        f"answered after {_worst([r.ready_after for r in shared_runs])}, median / worst) to "
        "the first snapshot saying shared_up",
    ]
    logged = [f"{level} {message}" for r in shared_runs for level, message in r.log]
    if logged:
        notes.append("the shared runs' log lines: " + " | ".join(_scrubbed(logged)))
    return TextTable(
        f"redis-server killed mid-load: {plan.describe()}", KILL_HEADERS, rows, notes, data
    )


def _scrubbed(lines: Sequence[str]) -> list[str]:
    """Log lines with the figures that differ from run to run taken out, each once."""
    out = [re.sub(r"after \d+\.\d s", "after N s", line) for line in lines]
    return sorted(set(out))


def kill_bars(result: KillOutcome | None, why: str = "") -> list[Bar]:
    exceptions = Bar(
        "shared_kill_caller_exceptions",
        "shared: exceptions that reached callers while redis-server was killed and restarted "
        "mid-load",
        0.0,
        None,
        why,
    )
    p99 = Bar(
        "shared_kill_p99_vs_local",
        f"shared: p99 latency of the calls, redis-server killed and restarted mid-load, <= "
        f"{KILL_P99_LIMIT:g} x a local breaker's (median of paired rounds)",
        KILL_P99_LIMIT,
        None,
        why,
    )
    lines = Bar(
        "shared_kill_log_lines_per_outage",
        f"shared: seawall log lines per Redis outage <= {KILL_LOG_LIMIT}",
        float(KILL_LOG_LIMIT),
        None,
        why,
    )
    back = Bar(
        "shared_kill_back_s",
        f"shared: from redis-server's restart until the breaker's snapshot says shared_up "
        f"<= {KILL_BACK_LIMIT:g} s, worst run (s)",
        KILL_BACK_LIMIT,
        None,
        why,
    )
    bars = [exceptions, p99, lines, back]
    if result is None:
        return bars
    local, shared = result.runs(False), result.runs(True)

    def errors(runs: Sequence[KillRun]) -> str:
        counts: dict[str, int] = {}
        for r in runs:
            for name, n in r.exceptions.items():
                counts[name] = counts.get(name, 0) + n
        calls = sum(len(r.latencies) for r in runs) + sum(counts.values())
        kinds = f" ({', '.join(f'{k} {n}' for k, n in sorted(counts.items()))})" if counts else ""
        return f"{sum(counts.values())} of {calls:,} calls{kinds}"

    exceptions.measured = float(sum(sum(r.exceptions.values()) for r in shared))
    exceptions.detail = f"{errors(shared)} in {len(shared)} runs; local breaker: {errors(local)}"
    p99.measured = statistics.median(result.ratios)
    ours = [d for r in shared for d in r.latencies]
    theirs = [d for r in local for d in r.latencies]
    p99.detail = (
        "per round, shared p99 / local p99: "
        + ", ".join(f"{r:.2f}" for r in result.ratios)
        + f"; pooled p99 {_us(percentile(ours, 99))} vs {_us(percentile(theirs, 99))}, "
        f"p50 {_us(percentile(ours, 50))} vs {_us(percentile(theirs, 50))}"
    )
    lines.measured = float(max(len(r.log) for r in shared))
    levels = sorted({level for r in shared for level, _ in r.log})
    lines.detail = (
        f"most in one run; per shared run: {', '.join(str(len(r.log)) for r in shared)} "
        f"({', '.join(levels) or 'none'}); local runs: {sum(len(r.log) for r in local)} in all"
    )
    backs = [r.back_after for r in shared]
    back.measured = math.inf if None in backs else max(b for b in backs if b is not None)
    back.detail = (
        f"median / worst {_worst(backs)}; the new redis-server answered after "
        f"{_worst([r.ready_after for r in shared])}; shared_up false after the kill: "
        f"{_worst([r.lost_after for r in shared])}"
    )
    unseen = sum(1 for r in shared if r.lost_after is None)
    if unseen:
        for bar in bars:
            bar.valid = False
            bar.detail += f"; in {unseen} runs the breaker never said shared_up false"
    return bars


JOBS: dict[str, Callable[[int, dict[str, Any]], Callable[[float], Any]]] = {
    "outage": _outage_job,
    "propagation": _propagation_job,
    "kill": _kill_job,
}


# -- the suite ---------------------------------------------------------------------------------


def skipped_bars(why: str) -> list[Bar]:
    return [
        *(
            Bar(
                f"shared_overhead_vs_local_{kind}",
                f"shared breaker success-path overhead <= {OVERHEAD_LIMIT:g} x a local "
                f"breaker's ({kind})",
                OVERHEAD_LIMIT,
                None,
                why,
            )
            for kind in ("sync", "async")
        ),
        *outage_bars(None, None, why),
        propagation_bar(None, why),
        *kill_bars(None, why),
    ]


LOCAL_FLEET = "per process"
SHARED_FLEET = "shared=RedisState"


def fleet(
    url: str, outage: OutagePlan, spread: PropagationPlan
) -> tuple[FleetOutcome, FleetOutcome, Propagation]:
    """Parts 2 and 3 on one fleet of ``outage.workers`` processes: the outage with breakers of
    their own, the outage with shared breakers, then the trips."""
    if spread.workers != outage.workers:
        raise ValueError("one fleet: give both plans the same number of workers")
    stages = [
        Stage("outage", {"plan": outage, "url": None, "prefix": None}, outage.seconds),
        Stage("outage", {"plan": outage, "url": url, "prefix": new_prefix()}, outage.seconds),
        Stage("propagation", {"plan": spread, "url": url, "prefix": new_prefix()}, spread.seconds),
    ]
    (t_local, local), (t_shared, shared), (t_spread, spreading) = run_fleet(stages, outage.workers)
    return (
        analyse_outage(LOCAL_FLEET, outage, t_local, local),
        analyse_outage(SHARED_FLEET, outage, t_shared, shared),
        analyse_propagation(spread, t_spread, spreading),
    )


def run_parts(
    server: Killable,
    config: RunConfig,
    *,
    outage: OutagePlan | None = None,
    spread: PropagationPlan | None = None,
    kill: KillPlan | None = None,
) -> SuiteResult:
    """Every part against ``server`` (part 4 kills it and starts it again)."""
    result = SuiteResult("shared")
    tables = overhead_tables(server.url, config)
    result.tables += tables
    result.bars += overhead_bars(tables)
    try:
        local, shared, spreading = fleet(
            server.url, outage or OutagePlan(), spread or PropagationPlan()
        )
    except (FleetError, OSError) as exc:
        why = f"the fleet did not run: {exc}"
        result.bars += [*outage_bars(None, None, why), propagation_bar(None, why)]
    else:
        result.tables += [outage_table([local, shared]), propagation_table(spreading)]
        result.bars += [*outage_bars(local, shared), propagation_bar(spreading)]
    try:
        killed = kill_rounds(server, kill or KillPlan())
    except (RuntimeError, OSError) as exc:
        result.bars += kill_bars(None, f"part 4 did not run: {exc}")
    else:
        result.tables.append(kill_table(killed))
        result.bars += kill_bars(killed)
    return result


def run(config: RunConfig) -> SuiteResult:
    why = missing()
    if why is not None:
        result = SuiteResult("shared")
        result.notes.append(f"skipped: {why}")
        result.bars += skipped_bars(why)
        return result
    try:
        server = RedisServer()
    except (RuntimeError, OSError) as exc:
        result = SuiteResult("shared")
        result.notes.append(f"skipped: {exc}")
        result.bars += skipped_bars(str(exc))
        return result
    try:
        result = run_parts(server, config)
    finally:
        server.stop()
    import redis

    result.notes.append(
        f"redis-server {server.version or '?'} on 127.0.0.1 (loopback, no persistence), started "
        f"for this suite; redis-py {redis.__version__}; workers spawned "
        f"(multiprocessing), {os.cpu_count()} CPUs"
    )
    return result


SUITE = Suite(
    "shared",
    "breakers shared on Redis: success-path cost, fleet outage, trips, Redis killed",
    run,
)

if __name__ == "__main__":
    sys.exit(cli(sys.argv[1:], {SUITE.name: SUITE}))
