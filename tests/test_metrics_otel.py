"""OpenTelemetry: the meter, the instruments, and what it costs with and without an SDK.

The API's global meter provider can be set once per process, so every test that sets it runs
a small script in a subprocess; the others pass a provider to ``configure(otel=...)`` and put
the previous configuration back afterwards.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import textwrap
import threading
import time
import warnings
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from opentelemetry.metrics import (
    Histogram,
    NoOpMeterProvider,
    ObservableCounter,
    ObservableGauge,
    get_meter_provider,
)
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import (
    InMemoryMetricReader,
    MetricExporter,
    MetricExportResult,
    MetricsData,
    PeriodicExportingMetricReader,
)
from prometheus_client import CollectorRegistry

import seawall
from seawall import CircuitBreaker, Retry
from seawall._stats.observers import observers
from seawall.httpx import FailureResponse, ResilientTransport
from seawall.metrics import CATALOGUE, _otel, configure
from seawall.metrics import _config as metrics_config
from seawall.metrics._catalogue import by_name
from seawall.metrics._otel import attribute_keys
from seawall.testing import FakeClock


@pytest.fixture(autouse=True)
def restore_metrics_config() -> Iterator[None]:
    saved_registry, saved_otel = metrics_config._registry, _otel._target
    yield
    configure(
        prometheus=saved_registry if saved_registry is not None else False,
        otel=True if saved_otel is None else saved_otel,
    )


@pytest.fixture
def sdk() -> Iterator[tuple[MeterProvider, InMemoryMetricReader]]:
    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader], shutdown_on_exit=False)
    yield provider, reader
    provider.shutdown()


OFF = (None, None, None, None)


def hooks() -> tuple[object, object, object, object]:
    return (
        observers.call_duration,
        observers.retry_attempts,
        observers.bulkhead_wait,
        observers.http_request_duration,
    )


def points(data: MetricsData | None, otel_name: str, **attributes: str) -> list[Any]:
    """The data points of one instrument whose attributes include ``attributes``."""
    assert data is not None
    out = []
    for resource in data.resource_metrics:
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                if metric.name == otel_name:
                    out += [
                        point
                        for point in metric.data.data_points
                        if attributes.items() <= dict(point.attributes or {}).items()
                    ]
    return out


def instrument_names(data: MetricsData | None) -> list[str]:
    assert data is not None
    return [
        metric.name
        for resource in data.resource_metrics
        for scope in resource.scope_metrics
        for metric in scope.metrics
    ]


# -- the meter and its instruments -----------------------------------------------------------------


def test_the_meter_is_seawall_at_the_package_version(sdk: Any) -> None:
    provider, reader = sdk
    configure(otel=provider)
    breaker = CircuitBreaker(name="otel-meter")
    breaker(lambda: None)()
    data = reader.get_metrics_data()
    assert data is not None
    scopes = [scope.scope for rm in data.resource_metrics for scope in rm.scope_metrics]
    assert [(scope.name, scope.version) for scope in scopes] == [("seawall", seawall.__version__)]
    exporter = _otel.active_exporter()
    assert exporter is not None
    assert exporter.meter.name == "seawall"
    assert exporter.meter.version == seawall.__version__


def test_every_catalogue_family_is_an_instrument_with_its_name_unit_and_description(
    sdk: Any,
) -> None:
    provider, _ = sdk
    configure(otel=provider)
    exporter = _otel.active_exporter()
    assert exporter is not None
    assert set(exporter.instruments) == {metric.name for metric in CATALOGUE}
    kinds = {"counter": ObservableCounter, "gauge": ObservableGauge, "histogram": Histogram}
    for metric in CATALOGUE:
        instrument = exporter.instruments[metric.name]
        assert isinstance(instrument, kinds[metric.kind]), metric.name
        assert (instrument.name, instrument.unit, instrument.description) == (
            metric.otel_name,
            metric.unit,
            metric.help,
        )


def test_histograms_use_the_catalogue_buckets(sdk: Any) -> None:
    provider, reader = sdk
    configure(otel=provider)
    retry = Retry(on=ValueError, name="otel-buckets", clock=FakeClock())
    retry(lambda: None)()
    data = reader.get_metrics_data()
    for name, policy_label in [
        ("seawall_call_duration_seconds", "operation"),
        ("seawall_retry_attempts", "policy"),
    ]:
        metric = by_name(name)
        [point] = points(data, metric.otel_name, **{policy_label: "otel-buckets"})
        assert tuple(point.explicit_bounds) == tuple(float(b) for b in metric.buckets)


def test_attribute_keys_are_the_label_names_and_semantic_conventions_for_http() -> None:
    for metric in CATALOGUE:
        if metric.otel_name != "http.client.request.duration":
            assert attribute_keys(metric) == metric.labels
    http = by_name("seawall_http_client_request_duration_seconds")
    assert attribute_keys(http) == (
        "http.request.method",
        "server.address",
        "server.port",
        "http.response.status_code",
        "error.type",
    )


# -- reading ---------------------------------------------------------------------------------------


def test_one_collection_reads_the_policies_once_and_the_next_reads_them_afresh(
    sdk: Any,
) -> None:
    provider, reader = sdk
    configure(otel=provider)
    exporter = _otel.active_exporter()
    assert exporter is not None
    breaker = CircuitBreaker(name="otel-reads", clock=FakeClock())
    call = breaker(lambda: None)
    call()
    before = exporter.reads
    data = reader.get_metrics_data()
    assert exporter.reads == before + 1
    [point] = points(data, "seawall.circuit_breaker.calls", policy="otel-reads", outcome="success")
    assert point.value == 1
    call()
    call()
    data = reader.get_metrics_data()  # at once: a new collection, not the cached reading
    assert exporter.reads == before + 2
    [point] = points(data, "seawall.circuit_breaker.calls", policy="otel-reads", outcome="success")
    assert point.value == 3


def test_counts_made_before_opentelemetry_was_enabled_are_reported_not_their_durations(
    sdk: Any,
) -> None:
    provider, reader = sdk
    configure(otel=False)
    call = CircuitBreaker(name="otel-before", clock=FakeClock())(lambda: None)
    call()
    configure(otel=provider)
    call()
    data = reader.get_metrics_data()
    [calls] = points(data, "seawall.circuit_breaker.calls", policy="otel-before", outcome="success")
    assert calls.value == 2  # read from the breaker's own counts
    [duration] = points(data, "seawall.call.duration", operation="otel-before")
    assert duration.count == 1  # recorded per event, from when the exporter was enabled


# -- configure -------------------------------------------------------------------------------------


def test_without_an_sdk_the_hooks_stay_off_and_calls_record_nothing() -> None:
    if not _otel._is_proxy(get_meter_provider().get_meter("probe")):
        pytest.skip("a global SDK meter provider was set in this process")
    configure(otel=True)
    exporter = _otel.active_exporter()
    assert exporter is not None
    assert exporter.proxy
    assert not exporter.live
    assert hooks() == OFF
    call = Retry(on=ValueError, name="otel-nosdk", clock=FakeClock())(lambda: "ok")
    assert call() == "ok"
    assert hooks() == OFF
    assert exporter._histograms == {}  # not even created: nothing to record into


def test_a_provider_without_an_sdk_is_treated_as_off() -> None:
    configure(otel=NoOpMeterProvider())
    assert hooks() == OFF


def test_configure_otel_false_stops_reporting_and_recording(sdk: Any) -> None:
    provider, reader = sdk
    configure(otel=provider)
    assert None not in hooks()
    call = CircuitBreaker(name="otel-stop", clock=FakeClock())(lambda: None)
    call()
    data = reader.get_metrics_data()
    assert points(data, "seawall.circuit_breaker.calls", policy="otel-stop")
    configure(otel=False)
    assert hooks() == OFF
    assert _otel.active_exporter() is None
    call()
    data = reader.get_metrics_data()
    assert not points(data, "seawall.circuit_breaker.calls", policy="otel-stop")
    [duration] = points(data, "seawall.call.duration", operation="otel-stop")
    assert duration.count == 1  # what was recorded stays; nothing more was


def test_configure_true_goes_back_to_the_global_provider(sdk: Any) -> None:
    provider, _ = sdk
    configure(otel=provider)
    configure(otel=True)
    exporter = _otel.active_exporter()
    assert exporter is not None
    assert exporter.provider is get_meter_provider() or exporter.bound_to is get_meter_provider()


def test_configure_none_leaves_it(sdk: Any) -> None:
    provider, _ = sdk
    configure(otel=provider)
    exporter = _otel.active_exporter()
    configure()
    configure(otel=None, prometheus=None)
    assert _otel.active_exporter() is exporter


def test_configuring_a_provider_again_makes_no_second_set_of_instruments(
    sdk: Any, caplog: pytest.LogCaptureFixture
) -> None:
    provider, reader = sdk
    other = MeterProvider(metric_readers=[InMemoryMetricReader()], shutdown_on_exit=False)
    caplog.set_level(logging.WARNING)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        configure(otel=provider)
        exporter = _otel.active_exporter()
        configure(otel=provider)
        configure(otel=other)
        configure(otel=True)
        configure(otel=provider)
        assert _otel.active_exporter() is exporter
        breaker = CircuitBreaker(name="otel-twice", clock=FakeClock())
        breaker(lambda: None)()
        data = reader.get_metrics_data()
    other.shutdown()
    assert caught == []
    assert [r for r in caplog.records if r.levelno >= logging.WARNING] == []
    names = instrument_names(data)
    assert len(names) == len(set(names))
    [point] = points(data, "seawall.circuit_breaker.calls", policy="otel-twice", outcome="success")
    assert point.value == 1  # not reported by two callbacks


@pytest.mark.parametrize("bad", ["x", 1, object()])
def test_configure_rejects_a_wrong_otel_type_and_changes_nothing(bad: object) -> None:
    before = (_otel._target, metrics_config._registry)
    with pytest.raises(TypeError, match="otel"):
        configure(otel=bad, prometheus=False)  # type: ignore[arg-type]
    assert (_otel._target, metrics_config._registry) == before


# -- the per-event recorders -----------------------------------------------------------------------


class FakeHistogram:
    def __init__(self) -> None:
        self.records: list[tuple[float, Any]] = []

    def record(self, amount: float, attributes: Any = None, context: Any = None) -> None:
        self.records.append((amount, attributes))


def test_recorders_reuse_one_attributes_dict_per_label_set() -> None:
    histogram = FakeHistogram()
    pending = _otel._Pending(100, 100)
    record = _otel._call_duration_recorder(histogram, pending)  # type: ignore[arg-type]
    record("op", "success", 0.25)
    record("op", "success", 0.5)
    record("op", "failure", 1.0)
    assert histogram.records == []  # until a collection hands them over
    assert pending.drain() == 3
    (_, first), (_, second), (_, third) = histogram.records
    assert first is second
    assert first == {"operation": "op", "outcome": "success"}
    assert third == {"operation": "op", "outcome": "failure"}
    by_policy = FakeHistogram()
    record_policy = _otel._policy_recorder(by_policy, pending)  # type: ignore[arg-type]
    record_policy("p", 2)
    record_policy("p", 3)
    pending.drain()
    assert by_policy.records[0][1] is by_policy.records[1][1] == {"policy": "p"}


def test_the_http_recorder_uses_the_semantic_conventions_and_reuses_its_dicts() -> None:
    histogram = FakeHistogram()
    pending = _otel._Pending(100, 100)
    record = _otel._http_request_duration_recorder(histogram, pending)  # type: ignore[arg-type]
    record(("GET", "a.test", "443", "200", ""), 0.25)
    record(("GET", "a.test", "443", "200", ""), 0.5)
    record(("POST", "a.test", "8080", "503", "503"), 1.0)
    record(("_OTHER", "_OTHER", "80", "", "ConnectError"), 2.0)
    pending.drain()
    (_, ok), (_, ok_again), (_, failed), (_, no_response) = histogram.records
    assert ok is ok_again
    assert ok == {
        "http.request.method": "GET",
        "server.address": "a.test",
        "server.port": 443,
        "http.response.status_code": 200,
    }
    assert failed == {
        "http.request.method": "POST",
        "server.address": "a.test",
        "server.port": 8080,
        "http.response.status_code": 503,
        "error.type": "503",
    }
    assert no_response == {  # no response: no status code; an error: error.type
        "http.request.method": "_OTHER",
        "server.address": "_OTHER",
        "server.port": 80,
        "error.type": "ConnectError",
    }


def test_http_attempts_are_recorded_with_their_attributes_and_as_in_prometheus(
    sdk: Any,
) -> None:
    provider, reader = sdk
    registry = CollectorRegistry()
    configure(otel=provider, prometheus=registry)
    try:
        clock = FakeClock()
        statuses = [200, 503]  # then 503 for every later attempt

        def handler(request: httpx.Request) -> httpx.Response:
            clock.advance(0.125)
            status = statuses.pop(0) if len(statuses) > 1 else statuses[0]
            return httpx.Response(status, request=request)

        retry = Retry(on=FailureResponse, attempts=2, wait=0.0, clock=clock)
        transport = ResilientTransport(
            httpx.MockTransport(handler),
            policy=seawall.Policy("otel-http", retry=retry, clock=clock),
        )
        with httpx.Client(transport=transport) as client:
            assert client.get("http://otel-http.test:8080/").status_code == 200
            assert client.get("http://otel-http.test:8080/").status_code == 503  # 2 attempts

        metric = by_name("seawall_http_client_request_duration_seconds")
        ours = points(
            reader.get_metrics_data(), metric.otel_name, **{"server.address": "otel-http.test"}
        )
        common = {
            "http.request.method": "GET",
            "server.address": "otel-http.test",
            "server.port": 8080,
        }
        ok = {**common, "http.response.status_code": 200}
        failed = {**common, "http.response.status_code": 503, "error.type": "503"}
        by_attributes = {frozenset(dict(p.attributes or {}).items()): p for p in ours}
        assert {key: p.count for key, p in by_attributes.items()} == {
            frozenset(ok.items()): 1,
            frozenset(failed.items()): 2,
        }
        for point in ours:
            assert tuple(point.explicit_bounds) == tuple(float(b) for b in metric.buckets)
            assert point.sum == 0.125 * point.count

        prometheus = {
            tuple(sample.labels[label] for label in metric.labels): sample.value
            for family in registry.collect()
            for sample in family.samples
            if sample.name == metric.name + "_count"
            and sample.labels["server_address"] == "otel-http.test"
        }
        assert prometheus == {
            ("GET", "otel-http.test", "8080", "200", ""): 1,
            ("GET", "otel-http.test", "8080", "503", "503"): 2,
        }
        keys = attribute_keys(metric)
        as_labels = {
            tuple(str(dict(key).get(k, "")) for k in keys): point.count
            for key, point in by_attributes.items()
        }
        assert as_labels == prometheus
    finally:
        configure(prometheus=True)


def test_turning_off_leaves_hooks_it_did_not_install_alone() -> None:
    configure(otel=False)

    def foreign(operation: str, outcome: str, seconds: float) -> None:
        pass

    def foreign_http(labels: tuple[str, str, str, str, str], seconds: float) -> None:
        pass

    observers.call_duration = foreign
    observers.http_request_duration = foreign_http
    try:
        configure(otel=False)
        assert observers.call_duration is foreign
        assert observers.http_request_duration is foreign_http
    finally:
        observers.call_duration = None
        observers.http_request_duration = None


# -- the global provider, set once per process: in subprocesses ------------------------------------


def run_script(body: str) -> dict[str, Any]:
    """Run ``body`` in a fresh interpreter; it prints one JSON object last. OpenTelemetry's and
    seawall's warnings go to stderr, which must stay empty."""
    prelude = textwrap.dedent(
        """
        import json, logging, sys, warnings
        logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
        warnings.simplefilter("always")
        from opentelemetry import metrics
        from opentelemetry.sdk.metrics import MeterProvider
        from opentelemetry.sdk.metrics.export import InMemoryMetricReader

        def hooks_on():
            from seawall._stats.observers import observers as o
            hooks = (o.call_duration, o.retry_attempts, o.bulkhead_wait, o.http_request_duration)
            return [h is not None for h in hooks]

        def values(reader, name, **attrs):
            data = reader.get_metrics_data()
            out = []
            for rm in data.resource_metrics if data is not None else ():
                for sm in rm.scope_metrics:
                    for m in sm.metrics:
                        if m.name == name:
                            for p in m.data.data_points:
                                if attrs.items() <= dict(p.attributes).items():
                                    out.append(getattr(p, "count", getattr(p, "value", None)))
            return out
        """
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    done = subprocess.run(
        [sys.executable, "-c", prelude + textwrap.dedent(body)],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def test_an_sdk_set_globally_after_import_starts_the_recording() -> None:
    result = run_script(
        """
        import seawall
        from seawall.testing import FakeClock
        call = seawall.CircuitBreaker(name="late-sdk", clock=FakeClock())(lambda: None)
        call()  # no SDK yet: counted by the breaker, recorded nowhere else
        before = hooks_on()
        reader = InMemoryMetricReader()
        metrics.set_meter_provider(MeterProvider(metric_readers=[reader]))
        after = hooks_on()
        call(); call()
        calls = values(reader, "seawall.circuit_breaker.calls", policy="late-sdk")
        durations = values(reader, "seawall.call.duration", operation="late-sdk")
        result = {"before": before, "after": after, "calls": calls, "durations": durations}
        print(json.dumps(result))
        """
    )
    assert result == {
        "before": [False, False, False, False],
        "after": [True, True, True, True],
        "calls": [3, 0, 0, 0],  # success, failure, ignored, rejected
        "durations": [2],
    }


def test_an_sdk_set_globally_before_import_records_from_the_start() -> None:
    result = run_script(
        """
        reader = InMemoryMetricReader()
        metrics.set_meter_provider(MeterProvider(metric_readers=[reader]))
        import seawall
        from seawall.testing import FakeClock
        on = hooks_on()
        seawall.CircuitBreaker(name="early-sdk", clock=FakeClock())(lambda: None)()
        durations = values(reader, "seawall.call.duration", operation="early-sdk")
        print(json.dumps({"on": on, "durations": durations}))
        """
    )
    assert result == {"on": [True, True, True, True], "durations": [1]}


def test_a_provider_configured_then_set_globally_gets_one_set_of_instruments() -> None:
    result = run_script(
        """
        import seawall, seawall.metrics
        from seawall.testing import FakeClock
        reader = InMemoryMetricReader()
        provider = MeterProvider(metric_readers=[reader])
        seawall.metrics.configure(otel=provider)
        metrics.set_meter_provider(provider)  # seawall's proxy meter must not add its own
        seawall.metrics.configure(otel=True)  # the global provider: that same one
        breaker = seawall.CircuitBreaker(name="both", clock=FakeClock())
        breaker(lambda: None)()
        data = reader.get_metrics_data()
        names = [m.name for rm in data.resource_metrics for sm in rm.scope_metrics
                 for m in sm.metrics]
        calls = values(reader, "seawall.circuit_breaker.calls", policy="both", outcome="success")
        durations = values(reader, "seawall.call.duration", operation="both")
        print(json.dumps({"unique": len(names) == len(set(names)), "calls": calls,
                          "durations": durations, "on": hooks_on()}))
        """
    )
    assert result == {
        "unique": True,
        "calls": [1],
        "durations": [1],
        "on": [True, True, True, True],
    }


def test_off_stays_off_when_an_sdk_is_set_and_true_turns_it_on() -> None:
    result = run_script(
        """
        import seawall, seawall.metrics
        from seawall.testing import FakeClock
        seawall.metrics.configure(otel=False)
        reader = InMemoryMetricReader()
        metrics.set_meter_provider(MeterProvider(metric_readers=[reader]))
        off = hooks_on()
        call = seawall.CircuitBreaker(name="off-on", clock=FakeClock())(lambda: None)
        call()
        silent = values(reader, "seawall.circuit_breaker.calls", policy="off-on")
        seawall.metrics.configure(otel=True)
        on = hooks_on()
        call()
        durations = values(reader, "seawall.call.duration", operation="off-on")
        print(json.dumps({"off": off, "silent": silent, "on": on, "durations": durations}))
        """
    )
    assert result == {
        "off": [False, False, False, False],
        "silent": [],
        "on": [True, True, True, True],
        "durations": [1],
    }


# -- the histograms are handed to the SDK at collection --------------------------------------------


def exporter_for(provider: MeterProvider) -> Any:
    configure(otel=provider)
    exporter = _otel.active_exporter()
    assert exporter is not None
    assert exporter.provider is provider
    return exporter


def durations(data: MetricsData | None, operation: str) -> list[Any]:
    return points(data, "seawall.call.duration", operation=operation)


def test_records_wait_on_the_callers_side_until_a_collection_hands_them_over(sdk: Any) -> None:
    provider, reader = sdk
    exporter = exporter_for(provider)
    clock = FakeClock()

    def work() -> None:
        clock.advance(0.125)

    call = seawall.Policy(
        "otel-pending",
        retry=Retry(on=ValueError, clock=clock),
        bulkhead=seawall.Bulkhead(2),
        clock=clock,
    )(work)
    call()
    call()
    assert len(exporter.pending.queue) == 6  # call duration, retry attempts, bulkhead wait
    data = reader.get_metrics_data()
    assert not exporter.pending.queue
    [duration] = durations(data, "otel-pending")
    assert (duration.count, duration.sum) == (2, 0.25)
    [attempts] = points(data, "seawall.retry.attempts", policy="otel-pending")
    assert (attempts.count, attempts.sum) == (2, 2)
    [waited] = points(data, "seawall.bulkhead.wait", policy="otel-pending")
    assert (waited.count, waited.sum) == (2, 0)


def test_records_made_on_many_threads_at_once_all_arrive_once(sdk: Any) -> None:
    provider, reader = sdk
    exporter = exporter_for(provider)
    threads, calls = 8, 500
    breaker = CircuitBreaker(name="otel-threads", clock=FakeClock())
    call = breaker(lambda: None)
    start = threading.Barrier(threads + 1)
    done = threading.Event()
    collected: list[int] = []

    def caller() -> None:
        start.wait()
        for _ in range(calls):
            call()

    def collector() -> None:  # collections race the callers: each record is handed over once
        start.wait()
        while not done.is_set():
            collected.append(len(durations(reader.get_metrics_data(), "otel-threads")))

    workers = [threading.Thread(target=caller) for _ in range(threads)]
    collecting = threading.Thread(target=collector)
    for thread in [*workers, collecting]:
        thread.start()
    for thread in workers:
        thread.join()
    done.set()
    collecting.join()
    assert collected  # it did collect while they ran
    [duration] = durations(reader.get_metrics_data(), "otel-threads")
    assert duration.count == threads * calls
    assert not exporter.pending.queue


def test_every_reader_gets_every_record_whichever_collects_first() -> None:
    first, second = InMemoryMetricReader(), InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[first, second], shutdown_on_exit=False)
    try:
        exporter_for(provider)
        clock = FakeClock()

        def work() -> None:
            clock.advance(0.25)

        call = CircuitBreaker(name="otel-readers", clock=clock)(work)
        call()
        call()
        [a] = durations(first.get_metrics_data(), "otel-readers")  # drains into both
        call()
        [b] = durations(second.get_metrics_data(), "otel-readers")
        [a_again] = durations(first.get_metrics_data(), "otel-readers")
        assert (a.count, a.sum) == (2, 0.5)
        assert (b.count, b.sum, list(b.bucket_counts)) == (3, 0.75, list(a_again.bucket_counts))
        assert (a_again.count, a_again.sum) == (3, 0.75)
    finally:
        provider.shutdown()


def test_delta_temporality_gets_what_was_recorded_since_the_last_collection() -> None:
    from opentelemetry.sdk.metrics import Histogram as SdkHistogram
    from opentelemetry.sdk.metrics.export import AggregationTemporality

    reader = InMemoryMetricReader(
        preferred_temporality={SdkHistogram: AggregationTemporality.DELTA}
    )
    provider = MeterProvider(metric_readers=[reader], shutdown_on_exit=False)
    try:
        exporter_for(provider)
        call = CircuitBreaker(name="otel-delta", clock=FakeClock())(lambda: None)
        for _ in range(3):
            call()
        [point] = durations(reader.get_metrics_data(), "otel-delta")
        assert point.count == 3
        call()
        call()
        [point] = durations(reader.get_metrics_data(), "otel-delta")
        assert point.count == 2
        assert durations(reader.get_metrics_data(), "otel-delta") == []
    finally:
        provider.shutdown()


def test_exemplars_keep_the_span_current_when_the_call_was_made(sdk: Any) -> None:
    from opentelemetry.sdk.trace import TracerProvider

    provider, reader = sdk
    exporter_for(provider)
    tracer = TracerProvider().get_tracer("otel-exemplars")
    clock = FakeClock()

    def work(seconds: float) -> None:
        clock.advance(seconds)

    call = CircuitBreaker(name="otel-exemplars", clock=clock)(work)
    with tracer.start_as_current_span("caller") as span:
        call(0.25)
    call(4.0)  # no span: no exemplar, even when handed over inside another span
    with tracer.start_as_current_span("collector"):
        data = reader.get_metrics_data()
    [point] = durations(data, "otel-exemplars")
    assert point.count == 2
    [exemplar] = point.exemplars
    assert exemplar.value == 0.25
    assert exemplar.span_id == span.get_span_context().span_id
    assert exemplar.trace_id == span.get_span_context().trace_id


def test_past_a_few_thousand_waiting_a_background_thread_hands_them_over(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """No caller pays for the hand-over: seawall's own thread does it (real threads here)."""
    monkeypatch.setattr(_otel, "_HAND_OVER_AT", 5)
    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader], shutdown_on_exit=False)
    try:
        exporter = exporter_for(provider)  # a new exporter: it takes the threshold now
        pending = exporter.pending
        drained_on: list[str] = []
        hand = _otel._Pending._hand

        def watched_hand(self: Any, limit: int | None) -> int:
            drained_on.append(threading.current_thread().name)
            return hand(self, limit)

        monkeypatch.setattr(_otel._Pending, "_hand", watched_hand)
        call = CircuitBreaker(name="otel-hand-over", clock=FakeClock())(lambda: None)
        for _ in range(23):
            call()
        deadline = time.monotonic() + 20.0
        while pending.queue and time.monotonic() < deadline:
            time.sleep(0.001)
        assert not pending.queue
        assert drained_on
        assert set(drained_on) == {"seawall-otel-hand-over"}
        [point] = durations(reader.get_metrics_data(), "otel-hand-over")
        assert point.count == 23
    finally:
        provider.shutdown()


def test_past_the_cap_a_recording_thread_hands_over_one_record(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """When the hand-over cannot keep up, memory stays bounded and a caller pays for one."""
    monkeypatch.setattr(_otel, "_HAND_OVER_AT", 5)
    monkeypatch.setattr(_otel, "_PENDING_CAP", 5)
    monkeypatch.setattr(_otel._Pending, "_hand_over", lambda self: None)  # a stalled thread
    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader], shutdown_on_exit=False)
    try:
        exporter = exporter_for(provider)
        assert exporter.pending.cap == 5
        call = CircuitBreaker(name="otel-cap", clock=FakeClock())(lambda: None)
        longest = 0
        for _ in range(23):
            call()
            longest = max(longest, len(exporter.pending.queue))
        assert longest == 4  # the fifth record makes its caller hand the oldest one over
        [point] = durations(reader.get_metrics_data(), "otel-cap")
        assert point.count == 23
    finally:
        provider.shutdown()


class KeptExports(MetricExporter):
    def __init__(self) -> None:
        super().__init__()
        self.exports: list[MetricsData] = []

    def export(
        self, metrics_data: MetricsData, timeout_millis: float = 10_000, **kwargs: Any
    ) -> MetricExportResult:
        self.exports.append(metrics_data)
        return MetricExportResult.SUCCESS

    def force_flush(self, timeout_millis: float = 10_000) -> bool:
        return True

    def shutdown(self, timeout_millis: float = 30_000, **kwargs: Any) -> None:
        pass


@pytest.mark.parametrize("how", ["shutdown", "force_flush"])
def test_the_providers_last_collection_gets_every_record(how: str) -> None:
    exported = KeptExports()
    # An hour between exports: the only collection is the one shutdown or force_flush makes.
    reader = PeriodicExportingMetricReader(exported, export_interval_millis=3_600_000)
    provider = MeterProvider(metric_readers=[reader], shutdown_on_exit=False)
    try:
        exporter_for(provider)
        call = CircuitBreaker(name=f"otel-{how}", clock=FakeClock())(lambda: None)
        call()
        call()
        getattr(provider, how)()
        [data] = exported.exports
        [point] = durations(data, f"otel-{how}")
        assert point.count == 2
    finally:
        configure(otel=False)
        if how != "shutdown":
            provider.shutdown()


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork (POSIX)")
def test_a_forked_child_starts_with_no_pending_records(sdk: Any) -> None:
    provider, reader = sdk
    exporter = exporter_for(provider)
    call = CircuitBreaker(name="otel-fork", clock=FakeClock())(lambda: None)
    call()
    call()
    assert len(exporter.pending.queue) == 2
    pid = os.fork()
    if pid == 0:  # the child: its SDK must not get the parent's records a second time
        code = 1
        try:
            call()
            code = 0 if len(exporter.pending.queue) == 1 else 2
            [point] = durations(reader.get_metrics_data(), "otel-fork")
            code = code or (0 if point.count == 1 else 3)
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    [point] = durations(reader.get_metrics_data(), "otel-fork")
    assert point.count == 2  # the parent's own records, handed over in the parent


def test_a_collection_waits_for_a_record_the_hand_over_thread_is_handing_over() -> None:
    """A record popped by the hand-over thread but not yet in the SDK when a collection
    drains would miss that collection (at shutdown: for good). The collection waits for the
    batch under way (real threads: one blocks inside the SDK's record)."""
    pending = _otel._Pending(100, 100)
    inside, release = threading.Event(), threading.Event()
    recorded: list[float] = []

    def slow_record(value: float, attributes: Any, context: Any) -> None:
        inside.set()
        assert release.wait(20)
        recorded.append(value)

    def record(value: float, attributes: Any, context: Any) -> None:
        recorded.append(value)

    pending.queue.append((slow_record, 1.0, {}, None))  # type: ignore[arg-type]
    pending.queue.append((record, 2.0, {}, None))  # type: ignore[arg-type]

    def batch() -> None:
        with pending._handing:
            pending._hand(1)

    hand_over = threading.Thread(target=batch)
    hand_over.start()
    assert inside.wait(20)  # the hand-over thread holds record 1, not yet recorded
    seen_at_end: list[list[float]] = []
    collection = threading.Thread(target=lambda: (pending.drain(), seen_at_end.append(recorded[:])))
    collection.start()
    collection.join(0.2)
    assert collection.is_alive()  # waiting for the batch under way
    release.set()
    hand_over.join(20)
    collection.join(20)
    assert seen_at_end == [[1.0, 2.0]]
