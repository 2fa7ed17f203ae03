"""seawall.slo's rules, loaded by a real Prometheus scraping an application that runs seawall,
and run by promtool on every exposition of seawall's series.

The application calls a ``Policy`` (a breaker, an attempt timeout, and a fault injector where
the dependency is) from a thread, 100 times a second, through a schedule of faults: healthy,
then a partial outage (30% of calls refused), a quiet stretch without calls, then the
dependency down (every call refused: the breaker opens and rejects). prometheus-client serves
its default registry on 127.0.0.1; a Prometheus server (Debian's ``prometheus`` binary:
``.ci/run`` installs it, and the test skips, saying so, where it is missing) scrapes it and
evaluates the rules that ``python -m seawall slo generate`` wrote, once a second each.

Before the first call, with the series scraped at zero, every events rate is 0 and no error
ratio and no budget left has a sample, as ``seawall.slo.budget()`` reads ``None``.

Why the window rules can be checked exactly. ``rate()`` extrapolates each series' increase
over the samples in its window to the window's edges, by a factor that depends only on the
series' sample times and on how close its first sample is to zero. Series scraped together
have the same sample times, so when every series that moved in the window was either scraped
from zero (first sample 0) or moved little against its first value, they all get the same
factor, and in a ratio of sums it cancels: the rule's value is then exactly (to rounding) the
ratio of the raw increases, bad over all. The test reads, for each evaluation of each rule,
the raw samples that evaluation's window held (a range query at the evaluation's time), and
asserts that equality wherever that condition holds. seawall exposes every outcome a policy's
parts can produce (here success, failure, timeout, rejected) at zero from the policy's
creation, and Prometheus scrapes those zeros before the first call, so the condition holds
for every evaluation of the 1m window (it reaches back to before the first call: the run is
shorter than a minute). The 5s window is not comparable this way just after a
series starts moving from zero while another was already moving (the outage's first
failures, the breaker's first rejections); those evaluations are counted, not compared. In
the quiet stretch the counts stand still, so the raw samples equal seawall's own counts (read
in process when the calls stopped), and the 1m window's ratio equals
``seawall.slo.budget()`` exactly.

The period (12h) is not read from the raw series: its ratio sums the 5s errors and events
rates recorded at each evaluation. The test checks every evaluation of it against the rates
Prometheus stored (errors summed over events summed), the budget left against it, and, once
the last call's 5s windows have all been evaluated, the whole run's ratio against
``budget()``: equal to within rate()'s extrapolation of a few windows (5%), since every call
counts in about as many evaluations' windows as any other.

Every exposition. The same scripted calls (on a fake clock: every duration exact) are exposed
by prometheus-client's collector, by OpenTelemetry's Prometheus exporter
(``opentelemetry-exporter-prometheus``, in the dev extra; skipped, saying so, without it) and
by prometheus-client's multiprocess files, written by two worker processes with half the
calls each, as under gunicorn; each in a fresh process. promtool (``promtool test rules``)
then runs the generated rules over each exposition's samples, every series 0 and then its
value (so, as above, the ratio of rates is exactly the ratio of counts), and checks that each
SLO's ratio on every window is the same: the one counted by hand, which ``budget()`` read in
the processes that made the calls. Last, the latency rules read a bucket bound written
``le="1.0"`` (prometheus-client, OpenTelemetry) and ``le="1"`` (Prometheus 3) alike.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import math
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import REGISTRY, CollectorRegistry, generate_latest, start_http_server
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.parser import text_string_to_metric_families

import seawall
from seawall import chaos, slo
from seawall.slo._rules import windows_of
from seawall.testing import FakeClock
from tests.helpers import (
    PROMTOOL,
    LabelSet,
    Prometheus,
    needs_prometheus,
    needs_promtool,
)

ROOT = Path(__file__).parent.parent
OPERATION = "slo-e2e-payments"
SERVICE = "checkout"
SLO_NAME = "payments-availability"
PAGE = "PaymentsAvailabilityBurnRatePage"

#: Page at 2% of a 12-hour budget spent in 1 minute (factor 14.4), confirmed over 5 seconds:
#: with a 0.5% budget, an error ratio above 0.072 on both windows.
SPEC = f"""\
service: {SERVICE}
scrape_interval: 1s
windows:
  - {{severity: page, long: 1m, short: 5s, budget: 2}}
slos:
  - name: {SLO_NAME}
    operation: {OPERATION}
    sli: availability
    objective: 99.5
    period: 12h
"""

CALL_EVERY = 0.01  # seconds: 100 calls a second
HEALTHY, PARTIAL, QUIET, DOWN = 8.0, 12.0, 4.0, 6.0
REFUSED = 0.3  # the share of calls refused in the partial outage
#: How long after a scrape's timestamp its samples may still be on their way into the TSDB
#: (a rule evaluated in that gap did not see them; scrapes here take a few milliseconds).
LATE = 0.1


Samples = list[tuple[float, float]]


class App:
    """The application: ``payments`` called at a steady rate from a thread, its faults from
    a schedule, its series served by prometheus-client's own HTTP server (default registry)."""

    def __init__(self, spec_slo: slo.SLO) -> None:
        self.slo = spec_slo
        self.injector = chaos.inject(
            chaos.Schedule(
                chaos.Phase("healthy", HEALTHY),
                chaos.Phase("partial", PARTIAL, chaos.ConnectError(rate=REFUSED)),
                chaos.Phase("quiet", QUIET),  # the app makes no calls: counts stand still
                chaos.Phase("down", None, chaos.ConnectError()),
            ),
            enabled=True,
            seed=20240601,
        )
        self.policy = seawall.Policy(
            OPERATION,
            breaker=seawall.CircuitBreaker(),
            attempt_timeout=1.0,
            chaos=self.injector,
        )
        assert f'operation="{OPERATION}"' in generate_latest(REGISTRY).decode(), (
            "seawall's collector is not in prometheus-client's default registry"
        )
        self.server, self.server_thread = start_http_server(0, addr="127.0.0.1")
        self.port: int = self.server.server_address[1]
        #: The wall time each phase was first seen by the caller (for "quiet": after the last
        #: call before it had returned).
        self.marks: dict[str, float] = {}
        #: seawall's own reading when the calls stopped for the quiet stretch.
        self.frozen: slo.Budget | None = None
        self.outcomes: dict[str, dict[str, int]] = {}
        self.errors: list[BaseException] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="slo-e2e-caller", daemon=True)

    def start(self) -> None:
        self.injector.restart()
        self._thread.start()

    def _run(self) -> None:
        try:
            due = time.monotonic()
            while not self._stop.is_set():
                phase = self.injector.phase().name
                if phase not in self.marks:
                    self.marks[phase] = time.time()
                    if phase == "quiet":
                        self.frozen = slo.budget(self.slo)
                if phase != "quiet":
                    seen = self.outcomes.setdefault(phase, {})
                    what = self._call()
                    seen[what] = seen.get(what, 0) + 1
                due += CALL_EVERY
                self._stop.wait(max(0.0, due - time.monotonic()))
        except BaseException as exc:  # the test reports it
            self.errors.append(exc)

    def _call(self) -> str:
        try:
            self.policy.call(lambda: "charged")
        except ConnectionRefusedError:
            return "refused"
        except seawall.CircuitOpenError:
            return "rejected"
        return "ok"

    def stop_calls(self) -> None:
        self._stop.set()
        if self._thread.ident is not None:  # started
            self._thread.join(10)

    def stop(self) -> None:
        self.stop_calls()
        self.server.shutdown()
        self.server.server_close()
        self.server_thread.join(10)


@dataclass
class Tally:
    """How the evaluations of one recording rule compared with the raw samples."""

    values: list[tuple[float, float]] = field(default_factory=list)  # every (time, value)
    exact: list[tuple[float, float]] = field(default_factory=list)  # (time, value)
    late: int = 0  # exact once a scrape committed after the evaluation is left out
    late_at: list[float] = field(default_factory=list)  # times of those evaluations
    unlike: list[float] = field(default_factory=list)  # times: factors differ, not compared


def bad_and_all(window: dict[LabelSet, Samples], spec_slo: slo.SLO) -> tuple[float, float]:
    """The raw increases in the window, summed: the SLI's bad events and all its events."""
    bad = every = 0.0
    for labels, samples in window.items():
        outcome = dict(labels)["outcome"]
        if outcome == "cancelled":
            continue
        increase = samples[-1][1] - samples[0][1]
        every += increase
        if outcome in spec_slo.bad_outcomes:
            bad += increase
    return bad, every


def scaled_alike(window: dict[LabelSet, Samples], start: float) -> bool:
    """Whether ``rate()`` scales every series that moved in the window (range from ``start``)
    by the same factor: they share their sample times, and the extrapolation towards zero
    before the first sample either applies to all (all scraped from zero) or to none (each
    moved less, relative to its first value, than the factor's other bounds allow)."""
    moving = [samples for samples in window.values() if samples[-1][1] > samples[0][1]]
    if not moving:
        return True
    if len({tuple(t for t, _ in samples) for samples in moving}) != 1:
        return False
    times = [t for t, _ in moving[0]]
    sampled = times[-1] - times[0]
    average = sampled / (len(times) - 1)
    if all(samples[0][1] == 0 for samples in moving):
        return True
    to_start = times[0] - start
    return all(
        sampled * samples[0][1] / (samples[-1][1] - samples[0][1]) >= max(to_start, average / 2)
        for samples in moving
    )


def same(value: float, expected: float) -> bool:
    if math.isnan(expected):
        return math.isnan(value)
    return math.isclose(value, expected, rel_tol=1e-12, abs_tol=0.0)


def raw_window(
    server: Prometheus, seconds: float, at: float, spec_slo: slo.SLO
) -> dict[LabelSet, Samples]:
    window = server.matrix(
        f'seawall_call_duration_seconds_count{{operation="{spec_slo.operation}"}}'
        f"[{slo.format_duration(seconds)}]",
        at=at,
    )
    return {labels: samples for labels, samples in window.items() if samples}


def check_rule(server: Prometheus, seconds: float, spec_slo: slo.SLO) -> Tally:
    """Every evaluation of ``slo:sli_error:ratio_rate<seconds>`` so far, against the raw
    samples its window held: equal wherever the extrapolation factors cancel."""
    window_name = slo.format_duration(seconds)
    (evaluations,) = server.matrix(
        f'slo:sli_error:ratio_rate{window_name}{{service="{SERVICE}",slo="{spec_slo.name}"}}[10m]'
    ).values()
    tally = Tally(values=evaluations)
    for at, value in evaluations:
        raw = raw_window(server, seconds, at, spec_slo)
        candidates = [raw]
        newest = max(t for samples in raw.values() for t, _ in samples)
        if at - newest < LATE:  # the rule may have run before this scrape was committed
            candidates.append(
                {
                    labels: [(t, v) for t, v in samples if t != newest]
                    for labels, samples in raw.items()
                    if any(t != newest for t, _ in samples)
                }
            )
        verdicts = []
        for number, window in enumerate(candidates):
            if not scaled_alike(window, at - seconds):
                verdicts.append("unlike")
                continue
            bad, every = bad_and_all(window, spec_slo)
            expected = bad / every if every else math.nan
            if same(value, expected):
                verdicts.append("exact" if number == 0 else "late")
                break
            verdicts.append(f"{value!r} != {bad:g}/{every:g} = {expected!r}")
        if verdicts[-1] == "exact":
            tally.exact.append((at, value))
        elif verdicts[-1] == "late":
            tally.late += 1
            tally.late_at.append(at)
            tally.exact.append((at, value))
        elif "unlike" in verdicts:
            tally.unlike.append(at)
        else:
            raise AssertionError(
                f"slo:sli_error:ratio_rate{window_name} at {at:.3f}: {verdicts}; window {raw}"
            )
    return tally


def check_period(server: Prometheus, spec_slo: slo.SLO) -> list[tuple[float, float]]:
    """Every evaluation of the period's ratio so far, ``(time, value)``: at each, the errors
    rates over the shortest window recorded in the period, summed, over the events rates
    summed (a ratio of sums, not a mean of ratios), as Prometheus stored them."""
    selector = f'{{service="{SERVICE}",slo="{spec_slo.name}"}}'
    period = slo.format_duration(spec_slo.period)
    (evaluations,) = server.matrix(f"slo:sli_error:ratio_rate{period}{selector}[10m]").values()
    for at, value in evaluations:
        (errors,) = server.matrix(f"slo:sli_errors:rate5s{selector}[{period}]", at=at).values()
        (events,) = server.matrix(f"slo:sli_events:rate5s{selector}[{period}]", at=at).values()
        assert [t for t, _ in errors] == [t for t, _ in events]
        assert errors[-1][0] == at  # this evaluation's rates, recorded just before
        expected = sum(v for _, v in errors) / sum(v for _, v in events)
        assert value == pytest.approx(expected, rel=1e-12), (at, errors, events)
    return evaluations


@pytest.fixture
def running(tmp_path: Path) -> Iterator[tuple[App, Prometheus, slo.Spec]]:
    spec_path = tmp_path / "slo.yaml"
    spec_path.write_text(SPEC)
    done = subprocess.run(
        [sys.executable, "-m", "seawall", "slo", "generate", str(spec_path), "--out", "rules"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    spec = slo.load(spec_path)
    app = App(spec.slos[0])
    server: Prometheus | None = None
    try:
        server = Prometheus(app.port, tmp_path, [tmp_path / "rules" / "rules.yaml"])
        yield app, server, spec
    finally:
        app.stop()
        if server is not None:
            server.stop()


def page_alerts(server: Prometheus) -> list[dict[str, Any]]:
    return [alert for alert in server.alerts() if alert["labels"]["alertname"] == PAGE]


@needs_prometheus
def test_the_rules_in_prometheus_match_seawalls_counts_and_page_on_the_outage(
    running: tuple[App, Prometheus, slo.Spec],
) -> None:
    app, server, spec = running
    (spec_slo,) = spec.slos
    success = f'seawall_call_duration_seconds_count{{operation="{OPERATION}",outcome="success"}}'
    # Every series the SLI reads is scraped from zero before the first call.
    server.wait_for(lambda: server.samples(success) >= 2, "scraping the zeros")
    groups = server.api("rules")["groups"]
    assert {rule["health"] for group in groups for rule in group["rules"]} == {"ok"}
    # No call yet: every events rate is 0, and no window's error ratio and no budget left has a
    # sample (not NaN), as seawall.slo.budget() reads None.
    selector = f'{{service="{SERVICE}",slo="{SLO_NAME}"}}'
    server.wait_for(
        lambda: list(server.query(f"slo:sli_events:rate5s{selector}").values()) == [0.0],
        "the rules evaluated on the zeros",
    )
    assert slo.budget(spec_slo).remaining is None
    for seconds in windows_of(spec, spec_slo):
        window = slo.format_duration(seconds)
        assert list(server.query(f"slo:sli_events:rate{window}{selector}").values()) == [0.0]
        assert server.query(f"slo:sli_error:ratio_rate{window}{selector}") == {}, window
    assert server.query(f"slo:error_budget_remaining:ratio{selector}") == {}
    app.start()

    # Healthy: the page alert is neither pending nor firing.
    while "partial" not in app.marks:
        assert page_alerts(server) == [], "the page alert is active while healthy"
        time.sleep(0.25)
    # The partial outage pages (for: none, so it fires on its first evaluation).
    server.wait_for(
        lambda: any(a["state"] == "firing" for a in page_alerts(server)) or "quiet" in app.marks,
        "paging in the partial outage",
    )
    assert any(a["state"] == "firing" for a in page_alerts(server)), "no page in the outage"
    server.wait_for(lambda: app.marks.get("down", math.inf) + DOWN < time.time(), "down")
    app.stop_calls()
    assert app.errors == []
    stopped = time.time()
    final = slo.budget(spec_slo)
    # A scrape after the calls stopped, then an evaluation of the rules after it.
    server.wait_for(
        lambda: max(server.query(f"timestamp({success})").values(), default=0) > stopped,
        "scraping the last calls",
    )
    time.sleep(1.5)
    marks = app.marks

    # -- the alert: none before the outage, then pending or firing ---------------------------
    alerts = server.matrix(f'ALERTS{{alertname="{PAGE}"}}[10m]')
    first = {dict(labels)["alertstate"]: samples[0][0] for labels, samples in alerts.items()}
    assert first, "the page alert never went pending or firing"
    assert min(first.values()) > marks["partial"], (first, marks)
    assert min(first.values()) < marks["quiet"], (first, marks)
    paged_after = min(first.values()) - marks["partial"]

    # -- the recording rules against the raw samples ------------------------------------------
    tallies = {seconds: check_rule(server, seconds, spec_slo) for seconds in (5.0, 60.0)}
    # Every series was scraped from zero before the first call: all exact, all run long.
    assert tallies[60.0].unlike == [], (tallies[60.0].unlike, marks)
    period = check_period(server, spec_slo)
    for values in (tallies[60.0].exact, period):
        healthy = [v for at, v in values if marks["healthy"] + 2 < at < marks["partial"]]
        assert len(healthy) >= 5, values
        assert set(healthy) == {0.0}, healthy
        partial = [v for at, v in values if marks["partial"] + 2 < at < marks["quiet"]]
        assert len(partial) >= 5, values
        assert all(0 < value < 1 for value in partial), partial
    short = tallies[5.0]
    # Not comparable only in the 6 s after a series starts moving from zero: the successes at
    # the start, the failures and rejections at each outage's.
    for at in short.unlike:
        phases = ("healthy", "partial", "down")
        assert any(0 < at - marks[phase] < 6.0 + LATE for phase in phases), (
            at,
            marks,
        )
    down = [v for at, v in short.exact if marks["down"] + 5.1 <= at and not math.isnan(v)]
    assert down, short
    assert set(down) == {1.0}, down  # failures and rejections: every event is bad
    threshold = spec_slo.budget * spec.windows[0].factor(spec_slo.period)
    over = {
        seconds: min(at for at, v in tallies[seconds].values if v > threshold) - marks["partial"]
        for seconds in (5.0, 60.0)
    }

    # -- seawall's own counts: the quiet stretch -------------------------------------------------
    frozen = app.frozen
    assert frozen is not None
    assert frozen.error_ratio is not None
    assert frozen.bad > 0
    in_quiet = []
    for at, value in tallies[60.0].exact:
        if not marks["quiet"] < at < marks["down"] or at in tallies[60.0].late_at:
            continue  # a late evaluation did not see the window's newest scrape
        window = raw_window(server, 60.0, at, spec_slo)
        if min(samples[-1][0] for samples in window.values()) <= marks["quiet"]:
            continue  # its newest scrape may hold calls made before the stop
        assert bad_and_all(window, spec_slo) == (frozen.bad, frozen.events)
        assert same(value, frozen.error_ratio), (value, frozen)
        in_quiet.append((at, value))
    assert in_quiet, tallies[60.0]
    # The budget left is the period's ratio against the budget, evaluation by evaluation.
    for at, value in period:
        remaining = server.query(
            f'slo:error_budget_remaining:ratio{{service="{SERVICE}",slo="{SLO_NAME}"}}', at=at
        )
        assert list(remaining.values()) == [pytest.approx(1 - value / spec_slo.budget, rel=1e-12)]

    # -- the whole run: seawall.slo.budget() and Prometheus ------------------------------------
    bad = "|".join(spec_slo.bad_outcomes)
    lifetime = server.query(
        f'sum(seawall_call_duration_seconds_count{{operation="{OPERATION}",outcome=~"{bad}"}})'
        f' / sum(seawall_call_duration_seconds_count{{operation="{OPERATION}",'
        f'outcome!="cancelled"}})'
    )
    assert final.error_ratio is not None
    assert list(lifetime.values()) == [pytest.approx(final.error_ratio, rel=1e-12)]
    # The period's ratio sums the 5 s rates of its evaluations (one a second): once the last
    # call's windows have all been evaluated, every call has counted in about five of them,
    # the same for bad and good, so it is the run's ratio to within rate()'s extrapolation,
    # which weighs the windows where a series starts moving a little differently (1 to 2.5%
    # off over this 30-second run of phases; over a real period such windows are a few of
    # thousands).
    last = max(server.query(f"timestamp({success})").values())
    server.wait_for(lambda: time.time() > last + 5.0 + 1.5, "the last call's 5 s windows")
    (period_rule,) = server.query(
        f'slo:sli_error:ratio_rate12h{{service="{SERVICE}",slo="{SLO_NAME}"}}'
    ).values()
    assert period_rule == pytest.approx(final.error_ratio, rel=0.05), (period_rule, final)

    print(
        f"\npaged {paged_after:.2f} s after the partial outage began (first {first}); "
        f"error ratio over {threshold:g} from {over} s after it began; "
        f"5s windows not compared at {[round(at - marks['partial'], 2) for at in short.unlike]} "
        f"s after it began (down began at {marks['down'] - marks['partial']:.2f} s); "
        f"outcomes by phase {app.outcomes}; in the quiet stretch, {len(in_quiet)} "
        f"evaluations equal budget() = {frozen.bad:g}/{frozen.events:g} = "
        f"{frozen.error_ratio!r}; at the end budget() {final.bad:g}/{final.events:g} = "
        f"{final.error_ratio!r}, lifetime query {next(iter(lifetime.values()))!r}, "
        f"slo:sli_error:ratio_rate12h {period_rule!r} "
        f"({period_rule / final.error_ratio - 1:+.2%}); "
        + "; ".join(
            f"{slo.format_duration(s)}: {len(t.exact)} exact ({t.late} late), "
            f"{len(t.unlike)} unlike"
            for s, t in tallies.items()
        )
    )


# -- every exposition: prometheus-client, OpenTelemetry's exporter, multiprocess ----------------

#: The same calls, exposed three ways, must give the rules the same ratios. Two latency SLOs:
#: one on a whole-number bound (``le="1.0"``, written ``le="1"`` by Prometheus 3), one not.
EXPOSITION_SPEC = slo.Spec(
    service=SERVICE,
    slos=(
        slo.SLO("payments-availability", "payments", "availability", 99.5, period=43200.0),
        slo.SLO("payments-latency", "payments", "latency", 99.0, period=43200.0, threshold=1.0),
        slo.SLO(
            "payments-latency-fast", "payments", "latency", 99.0, period=43200.0, threshold=0.25
        ),
    ),
    scrape_interval=1.0,
    windows=(slo.Window("page", 60.0, 5.0, 0.02),),
)

#: (bad, events) of each SLO, counted by hand from :func:`scenario_part` (both parts).
#: Availability: 26 successes, 2 fallbacks, 1 timeout, 3 failures, 2 rejections (1 cancelled
#: call counts neither way). Latency: of the 26 successes, 3 took 2 s (over 1 s), and 9 took
#: 0.5 s or more (over 0.25 s).
EXPECTED = {
    "payments-availability": (8, 34),
    "payments-latency": (3, 26),
    "payments-latency-fast": (9, 26),
}


def scenario_part(part: int) -> list[object]:
    """Calls through a ``payments`` policy (a fallback, a breaker, an attempt timeout) on a
    fake clock, so every duration is exact: part 0 successes of known durations, fallbacks
    and a timeout; part 1 a cancelled call, successes, then failures that open the breaker,
    and rejections. Returns what must stay alive until the exposition is read."""
    clock = FakeClock()
    policy = seawall.Policy(
        "payments",
        fallback=seawall.Fallback("cached", on=LookupError),
        breaker=seawall.CircuitBreaker(
            consecutive_failures=3, consecutive_span=0.0, failure_on=ConnectionError
        ),
        attempt_timeout=3.0,
        clock=clock,
    )

    def taking(seconds: float) -> str:
        clock.advance(seconds)
        return "ok"

    def missing() -> str:
        raise LookupError("not there")

    def refused() -> str:
        raise ConnectionRefusedError("down")

    if part == 0:
        for seconds in [0.0] * 10 + [0.125] * 4 + [0.5] * 3 + [1.0] * 2 + [2.0]:
            assert policy.call(taking, seconds) == "ok"
        for _ in range(2):
            assert policy.call(missing) == "cached"
        with pytest.raises(seawall.TimeoutExceededError):
            policy.call(taking, 4.0)
        return [policy]

    async def cancel_one() -> None:
        entered = asyncio.Event()

        async def hang() -> str:
            entered.set()
            await asyncio.Event().wait()
            return "never"

        task = asyncio.create_task(policy.acall(hang))
        await entered.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(cancel_one())
    for seconds in [0.0] * 3 + [1.0] + [2.0] * 2:
        assert policy.call(taking, seconds) == "ok"
    for _ in range(3):
        with pytest.raises(ConnectionRefusedError):
            policy.call(refused)
    for _ in range(2):
        with pytest.raises(seawall.CircuitOpenError):
            policy.call(taking, 0.0)
    return [policy]


WORKER = """
import json, os, sys
sys.path.insert(0, sys.argv[1])
mode, parts = sys.argv[2], [int(part) for part in sys.argv[3:]]
from prometheus_client import REGISTRY, generate_latest
from seawall import slo
from seawall.metrics import configure
from tests.test_slo_prometheus import EXPOSITION_SPEC, scenario_part
if mode == "otel":
    from opentelemetry.exporter.prometheus import PrometheusMetricReader
    from opentelemetry.sdk.metrics import MeterProvider
    configure(prometheus=False)  # only OpenTelemetry's exporter in the registry
    configure(otel=MeterProvider(metric_readers=[PrometheusMetricReader()]))
elif mode == "multiprocess":
    from seawall.metrics import _multiprocess
    _multiprocess.enable()
keep = [scenario_part(part) for part in parts]
if mode == "multiprocess":
    _multiprocess.flush()
print(json.dumps({
    "exposition": None if mode == "multiprocess" else generate_latest(REGISTRY).decode(),
    "budgets": {s.name: [slo.budget(s).bad, slo.budget(s).events] for s in EXPOSITION_SPEC.slos},
}))
"""

HAS_OTEL_EXPORTER = importlib.util.find_spec("opentelemetry.exporter.prometheus") is not None


def run_worker(mode: str, parts: list[int], env: dict[str, str]) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-c", WORKER, str(ROOT), mode, *map(str, parts)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    answer: dict[str, Any] = json.loads(done.stdout.splitlines()[-1])
    return answer


@pytest.fixture(scope="module")
def expositions(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[str, Any]]:
    """The scenario's exposition text by exporter, with the budgets read in the processes
    that made the calls (summed over the multiprocess workers)."""
    env = {k: v for k, v in os.environ.items() if k.lower() != "prometheus_multiproc_dir"}
    out: dict[str, tuple[str, Any]] = {}
    client = run_worker("client", [0, 1], env)
    out["prometheus-client"] = (client["exposition"], client["budgets"])
    if HAS_OTEL_EXPORTER:
        otel = run_worker("otel", [0, 1], env)
        out["opentelemetry"] = (otel["exposition"], otel["budgets"])
    # gunicorn-style: two worker processes, each with its half of the calls, one directory.
    directory = tmp_path_factory.mktemp("multiproc")
    workers = [
        run_worker("multiprocess", [part], {**env, "PROMETHEUS_MULTIPROC_DIR": str(directory)})
        for part in (0, 1)
    ]
    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=str(directory))
    budgets = {
        name: [sum(worker["budgets"][name][i] for worker in workers) for i in (0, 1)]
        for name in EXPECTED
    }
    out["multiprocess"] = (generate_latest(registry).decode(), budgets)
    return out


def promql_string(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def input_series(exposition: str, le: Callable[[str], str] = str) -> list[dict[str, str]]:
    """promtool input series for every ``seawall_call_duration_seconds`` count and bucket of
    the exposition: 0 for 31 seconds (scraped before the calls), then the exposed value.
    ``le`` rewrites bucket bounds (as Prometheus 3 stores them)."""
    out = []
    for family in text_string_to_metric_families(exposition):
        for sample in family.samples:
            if sample.name not in (
                "seawall_call_duration_seconds_count",
                "seawall_call_duration_seconds_bucket",
            ):
                continue
            labels = dict(sample.labels)
            if "le" in labels:
                labels["le"] = le(labels["le"])
            text = ",".join(f"{k}={promql_string(v)}" for k, v in sorted(labels.items()))
            value = int(sample.value) if float(sample.value).is_integer() else sample.value
            out.append({"series": f"{sample.name}{{{text}}}", "values": f"0x30 {value}x30"})
    return out


def ratio_checks(expected: dict[str, float]) -> list[dict[str, Any]]:
    """At 33 s (the values jumped at 31 s): each SLO's error ratio, on every window, within
    1e-9 of ``expected``. Every series starts at 0 on the same sample times, so rate()
    extrapolates each alike and the ratio of sums is the ratio of the counts."""
    checks = []
    for spec_slo in EXPOSITION_SPEC.slos:
        for seconds in windows_of(EXPOSITION_SPEC, spec_slo):
            record = f"slo:sli_error:ratio_rate{slo.format_duration(seconds)}"
            selector = f'{{service="{SERVICE}",slo="{spec_slo.name}"}}'
            checks.append(
                {
                    "expr": f"abs({record}{selector} - {expected[spec_slo.name]!r}) < bool 1e-9",
                    "eval_time": "33s",
                    "exp_samples": [{"labels": selector, "value": 1}],
                }
            )
    return checks


def promtool_test(
    directory: Path,
    groups: list[tuple[list[dict[str, str]], list[Any]]],
    edit: Callable[[str], str] = str,
) -> subprocess.CompletedProcess[str]:
    """promtool's run of the rules of :data:`EXPOSITION_SPEC` (``edit``-ed) over each group of
    (input series, checks)."""
    assert PROMTOOL is not None
    directory.mkdir(parents=True, exist_ok=True)
    rules = directory / "rules.yaml"
    assert rules in slo.generate(EXPOSITION_SPEC, directory)
    rules.write_text(edit(rules.read_text()))
    test = directory / "test.yaml"
    test.write_text(
        yaml.safe_dump(
            {
                "rule_files": [rules.name],
                "evaluation_interval": "1s",
                "tests": [
                    {"interval": "1s", "input_series": series, "promql_expr_test": checks}
                    for series, checks in groups
                ],
            },
            sort_keys=False,
        )
    )
    return subprocess.run(
        [PROMTOOL, "test", "rules", str(test)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@needs_promtool
@pytest.mark.parametrize("exporter", ["prometheus-client", "opentelemetry", "multiprocess"])
def test_the_rules_give_the_same_ratios_on_every_exposition(
    exporter: str, expositions: dict[str, tuple[str, Any]], tmp_path: Path
) -> None:
    if exporter not in expositions:
        pytest.skip("opentelemetry-exporter-prometheus is not installed (the dev extra has it)")
    exposition, budgets = expositions[exporter]
    expected = {name: bad / events for name, (bad, events) in EXPECTED.items()}
    # What the calls' own processes read with seawall.slo.budget(): the hand counts.
    assert {name: tuple(value) for name, value in budgets.items()} == EXPECTED
    series = input_series(exposition)
    assert series, exposition
    done = promtool_test(tmp_path, [(series, ratio_checks(expected))])
    assert done.returncode == 0, done.stdout + done.stderr


def prometheus_3_le(bound: str) -> str:
    """A bucket bound as Prometheus 3 stores it from the text format: ``1.0`` as ``1``."""
    return bound.removesuffix(".0")


@needs_promtool
def test_the_latency_rules_read_le_as_prometheus_client_and_prometheus_3_write_it(
    expositions: dict[str, tuple[str, Any]], tmp_path: Path
) -> None:
    exposition, _ = expositions["prometheus-client"]
    as_written = input_series(exposition)
    as_stored = input_series(exposition, le=prometheus_3_le)
    assert 'le="1.0"' in str(as_written)
    assert 'le="1.0"' not in str(as_stored)
    assert 'le="1"' in str(as_stored)
    expected = {name: bad / events for name, (bad, events) in EXPECTED.items()}
    checks = [check for check in ratio_checks(expected) if "latency" in check["expr"]]
    assert len(checks) == 2 * 3  # two latency SLOs, three windows
    groups = [(as_written, checks), (as_stored, checks)]
    done = promtool_test(tmp_path / "rules", groups)
    assert done.returncode == 0, done.stdout + done.stderr
    # A rule that matched only prometheus-client's spelling would find no bucket at 1 s in what
    # Prometheus 3 stores: its ratio would have no value at all, and the checks see it.
    rules = (tmp_path / "rules" / "rules.yaml").read_text()
    matched = 'le=~"1|1\\\\.0"'  # as the rules file writes the regex
    assert matched in rules

    def literal(text: str) -> str:
        return text.replace(matched, 'le="1.0"')

    done = promtool_test(tmp_path / "literal", [(as_stored, checks)], edit=literal)
    assert done.returncode == 1, done.stdout + done.stderr
    failed = done.stdout + done.stderr
    assert 'slo="payments-latency"' in failed
    assert 'slo="payments-latency-fast"' not in failed
