"""One scripted scenario, then every catalogue series read from Prometheus and OpenTelemetry.

The scenario runs every policy on its own :class:`FakeClock`, so each duration is exactly what
the function advanced its clock by (0 unless it did), and durations are dyadic fractions
(0.015625, 0.125, 0.375, ...), so histogram sums add up exactly in floating point. The async
timeout, which cancels on its event loop's clock, runs on simulated time instead
(``seawall.testing.simulated``): its cut comes at exactly its 0.25 s, in no real time.

The series are read from a fresh ``CollectorRegistry`` (``configure(prometheus=registry)``)
and from an OpenTelemetry SDK ``MeterProvider`` with an ``InMemoryMetricReader``
(``configure(otel=provider)``, before any call, because OpenTelemetry's histograms are
recorded per event from the moment its exporter is enabled).

Isolation: the policy registry is process-wide, and policies of other tests may still be
alive. Every policy here has a name starting with ``parity-``, and only series whose
``operation`` or ``policy`` label starts with it are compared; the HTTP series has neither,
so there it is the ``server_address`` (the httpx transport's own per-host policies are named
``http-parity:...``, outside the comparison). OpenTelemetry's HTTP attributes follow the
semantic conventions: the port and status code are integers, and the status code (no
response) or ``error.type`` (success) is left out where the Prometheus label is empty.

The one expected difference: Prometheus shows the ``success`` and ``failure`` duration series
of every operation from the moment its policy exists (so that ratios are defined before the
first error), with zero counts; an OpenTelemetry histogram has a series only once something
was recorded in it. Everything else is identical.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import (
    Gauge,
    HistogramDataPoint,
    InMemoryMetricReader,
    NumberDataPoint,
)
from prometheus_client import CollectorRegistry

from seawall import (
    Bulkhead,
    BulkheadFullError,
    CircuitBreaker,
    CircuitOpenError,
    Policy,
    Retry,
    RetryBudget,
    Timeout,
    TimeoutExceededError,
    chaos,
)
from seawall._stats.counters import ATTEMPT_BUCKETS, DURATION_BUCKETS
from seawall.httpx import FailureResponse, ResilientTransport
from seawall.metrics import CATALOGUE, Metric, _otel, configure
from seawall.metrics import _config as metrics_config
from seawall.metrics._otel import attribute_keys
from seawall.testing import FakeClock, simulated
from tests.helpers import free_port

PREFIX = "parity-"

Labels = tuple[str, ...]
#: Per-bucket (not cumulative) counts, the last one +Inf; and the sum.
Hist = tuple[tuple[int, ...], float]
#: Catalogue (Prometheus) name -> label values -> value (counters, gauges) or Hist.
Series = dict[str, dict[Labels, Any]]


def hist(bounds: tuple[float, ...], counts: dict[float, int], total: float) -> Hist:
    """A histogram from {upper bound: count} (``math.inf`` for +Inf)."""
    slots = [*bounds, math.inf]
    assert set(counts) <= set(slots), counts
    return tuple(counts.get(bound, 0) for bound in slots), total


def dur(counts: dict[float, int], total: float) -> Hist:
    return hist(DURATION_BUCKETS, counts, total)


def att(counts: dict[float, int], total: float) -> Hist:
    return hist(ATTEMPT_BUCKETS, counts, total)


ZERO = dur({}, 0.0)

# -- what the scenario implies, series by series ----------------------------------------------

BS, BA = "parity-breaker-sync", "parity-breaker-async"
RR, RX, RB = "parity-retry-recovers", "parity-retry-exhausted", "parity-retry-budget"
BH = "parity-bulkhead"
TS, TA = "parity-timeout-sync", "parity-timeout-async"
CH = "parity-chaos"
SH = "parity-shared"
HOST = "parity-http.test"

EXPECTED: Series = {
    "seawall_call_duration_seconds": {
        # 3 successes of 0, 1/64 and 3/8 s, then the half-open probe (0 s)
        (BS, "success"): dur({0.005: 2, 0.025: 1, 0.5: 1}, 0.390625),
        (BS, "failure"): dur({0.005: 3}, 0.0),  # the outage: 3 failures open it
        (BS, "rejected"): dur({0.005: 2}, 0.0),  # 2 calls while open
        (BA, "success"): dur({0.25: 1}, 0.125),
        (BA, "failure"): dur({0.25: 1}, 0.25),  # 0.25 is in the bucket le=0.25
        (BA, "rejected"): dur({0.005: 1}, 0.0),
        (RR, "success"): dur({0.5: 1, 0.005: 1}, 0.5),  # one waited 0.5 s to retry
        (RR, "failure"): ZERO,
        (RX, "success"): ZERO,
        (RX, "failure"): dur({0.5: 1}, 0.5),  # 3 attempts, 2 waits of 0.25 s
        (RB, "success"): ZERO,
        (RB, "failure"): dur({0.005: 1}, 0.0),  # the budget refused the retry
        (BH, "success"): dur({2.5: 2}, 3.0),  # the holder and the waiter, 1.5 s each
        (BH, "failure"): ZERO,
        (BH, "rejected"): dur({0.005: 1}, 0.0),
        (TS, "success"): dur({0.5: 1}, 0.5),
        (TS, "failure"): ZERO,
        (TS, "timeout"): dur({2.5: 1}, 2.0),  # ran 2 s past a 1 s deadline
        (TA, "success"): dur({0.005: 1}, 0.0),
        (TA, "failure"): ZERO,
        (TA, "timeout"): dur({0.25: 1}, 0.25),  # cut at its 0.25 s, on simulated time
        (CH, "success"): dur({0.25: 1}, 0.25),  # after 0.25 s of injected latency
        (CH, "failure"): dur({0.005: 2}, 0.0),  # 2 injected connection errors
        (SH, "success"): dur({0.005: 2}, 0.0),
        (SH, "failure"): dur({0.005: 1}, 0.0),
        (SH, "rejected"): ZERO,
    },
    "seawall_call_errors_total": {
        (BS, "failure", "ValueError"): 3,
        (BS, "rejected", "CircuitOpenError"): 2,
        (BA, "failure", "RuntimeError"): 1,
        (BA, "rejected", "CircuitOpenError"): 1,
        (RX, "failure", "ValueError"): 1,
        (RB, "failure", "ValueError"): 1,
        (BH, "rejected", "BulkheadFullError"): 1,
        (TS, "timeout", "TimeoutExceededError"): 1,
        (TA, "timeout", "TimeoutExceededError"): 1,
        (CH, "failure", "ConnectionRefusedError"): 2,
        (SH, "failure", "ValueError"): 1,
    },
    "seawall_circuit_breaker_calls_total": {
        (BS, "success"): 4,
        (BS, "failure"): 3,
        (BS, "ignored"): 0,
        (BS, "rejected"): 2,
        (BA, "success"): 1,
        (BA, "failure"): 1,
        (BA, "ignored"): 0,
        (BA, "rejected"): 1,
        (SH, "success"): 2,
        (SH, "failure"): 1,
        (SH, "ignored"): 0,
        (SH, "rejected"): 0,
    },
    "seawall_circuit_breaker_slow_calls_total": {(BS,): 0, (BA,): 0, (SH,): 0},
    "seawall_circuit_breaker_state": {
        (BS, "closed"): 1,
        (BS, "open"): 0,
        (BS, "half_open"): 0,
        (BS, "forced_open"): 0,
        (BS, "disabled"): 0,
        (BA, "closed"): 0,
        (BA, "open"): 1,
        (BA, "half_open"): 0,
        (BA, "forced_open"): 0,
        (BA, "disabled"): 0,
        (SH, "closed"): 1,
        (SH, "open"): 0,
        (SH, "half_open"): 0,
        (SH, "forced_open"): 0,
        (SH, "disabled"): 0,
    },
    "seawall_circuit_breaker_transitions_total": {
        (BS, "closed", "open"): 1,
        (BS, "open", "half_open"): 1,
        (BS, "half_open", "closed"): 1,
        (BA, "closed", "open"): 1,
    },
    "seawall_circuit_breaker_open_seconds_total": {
        (BS,): 5.0,  # open for its open_duration, then closed by the probe at once
        (BA,): 2.0,  # still open, 2 s after opening
        (SH,): 0.0,
    },
    "seawall_circuit_breaker_open_duration_seconds": {(BS,): 5.0, (BA,): 30.0, (SH,): 0.6},
    "seawall_circuit_breaker_next_probe_seconds": {
        (BS,): 0.0,  # closed
        (BA,): 28.0,  # open for 30 s, 2 s of them gone
        (SH,): 0.0,
    },
    # The shared breaker's one exchange found no Redis: its 3 outcomes never reached it.
    "seawall_shared_state_up": {(SH,): 0},
    "seawall_shared_state_flush_errors_total": {(SH,): 1},
    "seawall_shared_state_deltas_dropped_total": {(SH,): 3},
    "seawall_retry_calls_total": {
        (RR, "success", "false"): 1,
        (RR, "success", "true"): 1,
        (RR, "failure", "false"): 0,
        (RR, "failure", "true"): 0,
        (RX, "success", "false"): 0,
        (RX, "success", "true"): 0,
        (RX, "failure", "false"): 0,
        (RX, "failure", "true"): 1,
        (RB, "success", "false"): 0,
        (RB, "success", "true"): 0,
        (RB, "failure", "false"): 1,
        (RB, "failure", "true"): 0,
    },
    "seawall_retry_attempts": {
        (RR,): att({1: 1, 2: 1}, 3.0),
        (RX,): att({3: 1}, 3.0),
        (RB,): att({1: 1}, 1.0),
    },
    "seawall_retry_refused_attempts_total": {(RR,): 0, (RX,): 0, (RB,): 0},
    "seawall_retry_budget_exhausted_total": {(RR,): 0, (RX,): 0, (RB,): 1},
    "seawall_timeout_calls_total": {
        (TS, "success"): 1,
        (TS, "failure"): 0,
        (TS, "timeout"): 1,
        (TS, "cancelled"): 0,
        (TA, "success"): 1,
        (TA, "failure"): 0,
        (TA, "timeout"): 1,
        (TA, "cancelled"): 0,
    },
    "seawall_bulkhead_calls_total": {(BH, "admitted"): 2, (BH, "rejected"): 1},
    "seawall_bulkhead_active": {(BH,): 0},
    "seawall_bulkhead_queued": {(BH,): 0},
    "seawall_bulkhead_limit": {(BH,): 1},
    # The holder was admitted at once (0 s), the waiter after 1.5 s.
    "seawall_bulkhead_wait_seconds": {(BH,): dur({0.005: 1, 2.5: 1}, 1.5)},
    "seawall_chaos_injections_total": {(CH, "connect_error"): 2, (CH, "latency"): 1},
    # GET /ok: 200 in 1/8 s; GET /flaky: 503 in 1/4 s, retried, 200 in 1/8 s;
    # POST /down: no response (ConnectError, not retried: POST), 0 s.
    "seawall_http_client_request_duration_seconds": {
        ("GET", HOST, "80", "200", ""): dur({0.25: 2}, 0.25),
        ("GET", HOST, "80", "503", "503"): dur({0.25: 1}, 0.25),
        ("POST", HOST, "80", "", "ConnectError"): dur({0.005: 1}, 0.0),
    },
}


# -- the scenario --------------------------------------------------------------------------------


def run_scenario() -> list[object]:
    """Drive every policy; return them, to keep them alive while the series are read."""
    return [
        *breaker_sync(),
        *breaker_async(),
        *retries(),
        *bulkhead_at_its_limit(),
        *timeouts(),
        *http_attempts(),
        *injections(),
        *shared_breaker(),
    ]


def shared_breaker() -> list[object]:
    """A breaker whose shared state (Redis on a port where nothing listens) is gone: one
    exchange, run by hand (the syncer is stopped), fails."""
    from seawall.redis import RedisState

    state = RedisState(f"redis://127.0.0.1:{free_port()}/0", timeout=1.0)
    state.close()
    breaker = CircuitBreaker(name=SH, clock=FakeClock(), shared=state)

    @breaker
    def work(fail: bool = False) -> str:
        if fail:
            raise ValueError("down")
        return "ok"

    assert work() == work() == "ok"
    with pytest.raises(ValueError, match="down"):
        work(fail=True)
    state.sync_now()
    assert breaker.state == "closed"
    return [breaker, work, state]


def injections() -> list[object]:
    clock = FakeClock()
    injector = chaos.inject(
        chaos.Schedule(
            chaos.Phase("down", 10.0, chaos.ConnectError()),
            chaos.Phase("slow", None, chaos.Latency(0.25)),
        ),
        enabled=True,
        name=CH,
        clock=clock,
    )
    for _ in range(2):
        with pytest.raises(ConnectionRefusedError):
            injector.call(lambda: "ok")
    clock.advance(10.0)
    assert injector.call(lambda: "ok") == "ok"
    assert clock.sleeps == [0.25]
    return [injector]


def breaker_sync() -> list[object]:
    clock = FakeClock()
    breaker = CircuitBreaker(
        name=BS, minimum_calls=4, open_duration=5.0, half_open_calls=1, clock=clock
    )

    @breaker
    def work(seconds: float = 0.0, fail: bool = False) -> str:
        clock.advance(seconds)
        if fail:
            raise ValueError("down")
        return "ok"

    for seconds in (0.0, 0.015625, 0.375):
        assert work(seconds) == "ok"
    for _ in range(3):  # 3 failures of 6 calls: ratio 0.5, the breaker opens
        with pytest.raises(ValueError, match="down"):
            work(fail=True)
    for _ in range(2):
        with pytest.raises(CircuitOpenError):
            work()
    clock.advance(5.0)  # open_duration: the next call is a half-open probe
    assert work() == "ok"
    assert breaker.state == "closed"
    return [breaker, work]


def breaker_async() -> list[object]:
    clock = FakeClock()
    breaker = CircuitBreaker(name=BA, minimum_calls=2, open_duration=30.0, clock=clock)

    @breaker
    async def work(seconds: float = 0.0, fail: bool = False) -> str:
        clock.advance(seconds)
        if fail:
            raise RuntimeError("down")
        return "ok"

    async def main() -> None:
        assert await work(0.125) == "ok"
        with pytest.raises(RuntimeError, match="down"):  # 1 of 2 calls: it opens
            await work(0.25, fail=True)
        with pytest.raises(CircuitOpenError):
            await work()

    asyncio.run(main())
    clock.advance(2.0)
    assert breaker.state == "open"
    return [breaker, work]


def retries() -> list[object]:
    recovers_clock, exhausted_clock, budget_clock = FakeClock(), FakeClock(), FakeClock()
    recovers = Retry(on=ValueError, attempts=3, wait=0.5, name=RR, clock=recovers_clock)
    exhausted = Retry(on=ValueError, attempts=3, wait=0.25, name=RX, clock=exhausted_clock)
    budget = RetryBudget(ratio=0.0, min_per_second=0.0, clock=budget_clock)
    refused = Retry(on=ValueError, attempts=3, wait=0.0, budget=budget, name=RB, clock=budget_clock)
    failures = [1]  # the first attempt fails, every later one succeeds

    @recovers
    def flaky() -> str:
        if failures[0]:
            failures[0] -= 1
            raise ValueError("once")
        return "ok"

    def broken() -> str:
        raise ValueError("always")

    assert flaky() == "ok"  # on the 2nd attempt, after a 0.5 s wait
    assert flaky() == "ok"  # at once
    assert recovers_clock.sleeps == [0.5]
    with pytest.raises(ValueError, match="always"):
        exhausted(broken)()
    assert exhausted_clock.sleeps == [0.25, 0.25]
    with pytest.raises(ValueError, match="always"):
        refused(broken)()
    assert budget.snapshot().refused == 1
    return [recovers, exhausted, refused, budget, flaky]


def bulkhead_at_its_limit() -> list[object]:
    clock = FakeClock()
    bulkhead = Bulkhead(1, max_queue=1, max_wait=10.0, name=BH, clock=clock)

    @bulkhead
    async def task(gate: asyncio.Event | None = None) -> str:
        if gate is not None:
            await gate.wait()
        return "ok"

    async def main() -> None:
        gate = asyncio.Event()
        holder = asyncio.create_task(task(gate))
        await asyncio.sleep(0)
        assert bulkhead.active == 1
        waiter = asyncio.create_task(task())
        await asyncio.sleep(0)  # it has queued, and read the clock when it did
        assert bulkhead.queued == 1
        with pytest.raises(BulkheadFullError):  # the slot is taken and the queue is full
            await task()
        clock.advance(1.5)
        gate.set()  # the holder finishes; its slot goes to the waiter, 1.5 s after it queued
        assert await holder == "ok"
        assert await waiter == "ok"

    asyncio.run(main())
    return [bulkhead, task]


def timeouts() -> list[object]:
    sync_clock = FakeClock()
    sync_timeout = Timeout(1.0, name=TS, clock=sync_clock)

    @sync_timeout
    def slow(seconds: float) -> str:
        sync_clock.advance(seconds)
        return "late" if seconds > 1.0 else "ok"

    assert slow(0.5) == "ok"
    with pytest.raises(TimeoutExceededError):  # returned after its deadline: dropped
        slow(2.0)

    # Cancellation runs on the event loop's clock: a simulation's, which the timeout's
    # durations are read from too.
    with simulated() as simulation:
        async_timeout = Timeout(0.25, name=TA)

        @async_timeout
        async def hang(seconds: float) -> str:
            await asyncio.sleep(seconds)
            return "ok"

        async def main() -> None:
            assert await hang(0) == "ok"
            with pytest.raises(TimeoutExceededError):
                await hang(10.0)

        simulation.run(main)
        assert simulation.now() == 0.25
    return [sync_timeout, async_timeout, slow, hang]


def http_attempts() -> list[object]:
    clock = FakeClock()
    script = {"/ok": [(200, 0.125)], "/flaky": [(503, 0.25), (200, 0.125)]}

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/down":
            raise httpx.ConnectError("down", request=request)
        status, seconds = script[request.url.path].pop(0)
        clock.advance(seconds)
        return httpx.Response(status, request=request)

    retry = Retry(on=(FailureResponse, httpx.TransportError), attempts=2, wait=0.0, clock=clock)
    transport = ResilientTransport(
        httpx.MockTransport(handler), policy=Policy("http-parity", retry=retry, clock=clock)
    )
    with httpx.Client(transport=transport) as client:
        assert client.get(f"http://{HOST}/ok").status_code == 200
        assert client.get(f"http://{HOST}/flaky").status_code == 200
        with pytest.raises(httpx.ConnectError):
            client.post(f"http://{HOST}/down", content=b"x")
    return [transport]


# -- reading both exporters ----------------------------------------------------------------------


def ours(metric: Metric, labels: Labels) -> bool:
    if metric.name == "seawall_http_client_request_duration_seconds":
        return labels[1].startswith(PREFIX)  # server_address
    return labels[0].startswith(PREFIX)  # operation or policy comes first in the others


def read_prometheus(registry: CollectorRegistry) -> Series:
    samples: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
    for family in registry.collect():
        for sample in family.samples:
            samples[sample.name, tuple(sorted(sample.labels.items()))] = sample.value
    out: Series = {metric.name: {} for metric in CATALOGUE}
    for metric in CATALOGUE:
        for (name, label_items), value in samples.items():
            labels = dict(label_items)
            if metric.kind != "histogram":
                if name != metric.name:
                    continue
                key = tuple(labels[label] for label in metric.labels)
                if ours(metric, key):
                    out[metric.name][key] = value
                continue
            if name != metric.name + "_sum":
                continue
            key = tuple(labels[label] for label in metric.labels)
            if not ours(metric, key):
                continue
            cumulative = []
            for bound in [*metric.buckets, math.inf]:
                le = "+Inf" if bound == math.inf else repr(float(bound))
                bucket = samples[
                    metric.name + "_bucket", tuple(sorted({**labels, "le": le}.items()))
                ]
                cumulative.append(int(bucket))
            count = samples[metric.name + "_count", label_items]
            assert count == cumulative[-1]
            counts = tuple(b - a for a, b in zip([0, *cumulative], cumulative, strict=False))
            out[metric.name][key] = (counts, value)
    return out


#: Attributes OpenTelemetry leaves out where the Prometheus label is "".
OPTIONAL = {"http.response.status_code", "error.type"}
#: Attributes OpenTelemetry reports as integers.
INTEGERS = {"server.port", "http.response.status_code"}


def read_otel(reader: InMemoryMetricReader) -> Series:
    by_otel_name = {metric.otel_name: metric for metric in CATALOGUE}
    out: Series = {metric.name: {} for metric in CATALOGUE}
    data = reader.get_metrics_data()
    assert data is not None
    scopes = [scope for rm in data.resource_metrics for scope in rm.scope_metrics]
    assert [scope.scope.name for scope in scopes] == ["seawall"]
    for otel_metric in scopes[0].metrics:
        metric = by_otel_name[otel_metric.name]
        keys = attribute_keys(metric)
        assert otel_metric.unit == metric.unit
        assert otel_metric.description == metric.help
        for point in otel_metric.data.data_points:
            attributes = dict(point.attributes or {})
            assert set(keys) - OPTIONAL <= set(attributes) <= set(keys)
            for k in INTEGERS & set(attributes):
                assert type(attributes[k]) is int, (k, attributes[k])
            key = tuple(str(attributes.get(k, "")) for k in keys)
            if not ours(metric, key):
                continue
            assert key not in out[metric.name], f"{metric.name}{key} reported twice"
            if isinstance(point, HistogramDataPoint):
                assert tuple(point.explicit_bounds) == tuple(float(b) for b in metric.buckets)
                assert point.count == sum(point.bucket_counts)
                out[metric.name][key] = (tuple(point.bucket_counts), point.sum)
            else:
                assert isinstance(point, NumberDataPoint)
                assert isinstance(otel_metric.data, Gauge) == (metric.kind == "gauge")
                out[metric.name][key] = point.value
    return out


def without_empty_histograms(series: Series) -> Series:
    return {
        name: {
            labels: value
            for labels, value in values.items()
            if not (isinstance(value, tuple) and sum(value[0]) == 0)
        }
        for name, values in series.items()
    }


def as_floats(series: Series) -> Series:
    """Counters and gauges as floats (Prometheus' type), to compare values exactly."""
    return {
        name: {
            labels: value if isinstance(value, tuple) else float(value)
            for labels, value in values.items()
        }
        for name, values in series.items()
    }


@pytest.fixture(scope="module")
def readings() -> Iterator[tuple[Series, Series]]:
    saved_registry, saved_otel = metrics_config._registry, _otel._target
    registry = CollectorRegistry()
    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader], shutdown_on_exit=False)
    configure(prometheus=registry, otel=provider)
    try:
        alive = run_scenario()
        otel = read_otel(reader)
        prometheus = read_prometheus(registry)
        del alive
        yield prometheus, otel
    finally:
        configure(
            prometheus=saved_registry if saved_registry is not None else False,
            otel=True if saved_otel is None else saved_otel,
        )
        provider.shutdown()


def test_every_family_of_the_catalogue_is_checked() -> None:
    assert set(EXPECTED) == {metric.name for metric in CATALOGUE}


@pytest.mark.parametrize("metric", CATALOGUE, ids=lambda metric: metric.name)
def test_prometheus_shows_what_the_scenario_did(
    readings: tuple[Series, Series], metric: Metric
) -> None:
    prometheus, _ = readings
    assert prometheus[metric.name] == as_floats(EXPECTED)[metric.name]


@pytest.mark.parametrize("metric", CATALOGUE, ids=lambda metric: metric.name)
def test_opentelemetry_shows_what_the_scenario_did(
    readings: tuple[Series, Series], metric: Metric
) -> None:
    _, otel = readings
    expected = without_empty_histograms(EXPECTED)[metric.name]
    assert as_floats(otel)[metric.name] == as_floats({metric.name: expected})[metric.name]


def test_prometheus_and_opentelemetry_agree_series_by_series(
    readings: tuple[Series, Series],
) -> None:
    prometheus, otel = readings
    assert as_floats(otel) == without_empty_histograms(prometheus)


def test_they_differ_only_in_prometheus_empty_success_and_failure_durations(
    readings: tuple[Series, Series],
) -> None:
    prometheus, otel = readings
    only_prometheus = {
        (name, labels)
        for name, values in prometheus.items()
        for labels in values
        if labels not in otel[name]
    }
    assert only_prometheus == {
        ("seawall_call_duration_seconds", (RR, "failure")),
        ("seawall_call_duration_seconds", (RX, "success")),
        ("seawall_call_duration_seconds", (RB, "success")),
        ("seawall_call_duration_seconds", (BH, "failure")),
        ("seawall_call_duration_seconds", (TS, "failure")),
        # A breaker's rejections, too, are shown before the first one.
        ("seawall_call_duration_seconds", (SH, "rejected")),
        ("seawall_call_duration_seconds", (TA, "failure")),
    }
    assert all(
        prometheus["seawall_call_duration_seconds"][key[1]] == ZERO for key in only_prometheus
    )
