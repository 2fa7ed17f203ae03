"""The one catalogue of seawall's metrics, used by both exporters."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from seawall._stats.counters import ATTEMPT_BUCKETS, DURATION_BUCKETS

__all__ = ["CATALOGUE", "Metric", "by_name"]

Kind = Literal["counter", "gauge", "histogram"]


@dataclass(frozen=True, slots=True)
class Metric:
    """One series family: its Prometheus name (with unit and ``_total`` suffixes), its
    OpenTelemetry instrument name, kind, help text, unit, label names and buckets."""

    name: str
    otel_name: str
    kind: Kind
    help: str
    unit: str
    labels: tuple[str, ...]
    buckets: tuple[float, ...] = ()


CATALOGUE: tuple[Metric, ...] = (
    Metric(
        "seawall_call_duration_seconds",
        "seawall.call.duration",
        "histogram",
        "Duration of logical calls through seawall, by outcome, measured by the outermost policy.",
        "s",
        ("operation", "outcome"),
        DURATION_BUCKETS,
    ),
    Metric(
        "seawall_call_errors_total",
        "seawall.call.errors",
        "counter",
        "Logical calls that did not succeed, by outcome and error type.",
        "{call}",
        ("operation", "outcome", "error_type"),
    ),
    Metric(
        "seawall_circuit_breaker_calls_total",
        "seawall.circuit_breaker.calls",
        "counter",
        "Calls that reached a circuit breaker, by outcome.",
        "{call}",
        ("policy", "outcome"),
    ),
    Metric(
        "seawall_circuit_breaker_slow_calls_total",
        "seawall.circuit_breaker.slow_calls",
        "counter",
        "Calls a circuit breaker counted as slow.",
        "{call}",
        ("policy",),
    ),
    Metric(
        "seawall_circuit_breaker_state",
        "seawall.circuit_breaker.state",
        "gauge",
        "Circuit breaker state, one-hot: 1 for the current state, 0 for the others.",
        "1",
        ("policy", "state"),
    ),
    Metric(
        "seawall_circuit_breaker_transitions_total",
        "seawall.circuit_breaker.transitions",
        "counter",
        "Circuit breaker state transitions.",
        "{transition}",
        ("policy", "from_state", "to_state"),
    ),
    Metric(
        "seawall_circuit_breaker_open_seconds_total",
        "seawall.circuit_breaker.open_time",
        "counter",
        "Seconds a circuit breaker spent open, half-open or forced open.",
        "s",
        ("policy",),
    ),
    Metric(
        "seawall_circuit_breaker_open_duration_seconds",
        "seawall.circuit_breaker.open_duration",
        "gauge",
        "How long a circuit breaker refuses after a trip or a failed probe before its next probe.",
        "s",
        ("policy",),
    ),
    Metric(
        "seawall_circuit_breaker_next_probe_seconds",
        "seawall.circuit_breaker.next_probe",
        "gauge",
        "Seconds until an open circuit breaker lets its next probe through: 0 unless open; "
        "+Inf when forced open.",
        "s",
        ("policy",),
    ),
    Metric(
        "seawall_retry_calls_total",
        "seawall.retry.calls",
        "counter",
        "Logical calls through a retry policy, by outcome and whether they were retried.",
        "{call}",
        ("policy", "outcome", "retried"),
    ),
    Metric(
        "seawall_retry_attempts",
        "seawall.retry.attempts",
        "histogram",
        "Attempts per logical call through a retry policy, the first one included.",
        "{attempt}",
        ("policy",),
        ATTEMPT_BUCKETS,
    ),
    Metric(
        "seawall_retry_refused_attempts_total",
        "seawall.retry.refused_attempts",
        "counter",
        "Attempts through a retry policy refused before reaching the dependency (an open "
        "breaker, a full bulkhead); they are among seawall_retry_attempts.",
        "{attempt}",
        ("policy",),
    ),
    Metric(
        "seawall_retry_budget_exhausted_total",
        "seawall.retry.budget_exhausted",
        "counter",
        "Retries refused because the retry budget was spent.",
        "{retry}",
        ("policy",),
    ),
    Metric(
        "seawall_timeout_calls_total",
        "seawall.timeout.calls",
        "counter",
        "Calls through a timeout policy, by outcome.",
        "{call}",
        ("policy", "outcome"),
    ),
    Metric(
        "seawall_bulkhead_calls_total",
        "seawall.bulkhead.calls",
        "counter",
        "Calls that reached a bulkhead, by outcome: admitted or rejected.",
        "{call}",
        ("policy", "outcome"),
    ),
    Metric(
        "seawall_bulkhead_active",
        "seawall.bulkhead.active",
        "gauge",
        "Calls running inside a bulkhead now.",
        "{call}",
        ("policy",),
    ),
    Metric(
        "seawall_bulkhead_queued",
        "seawall.bulkhead.queued",
        "gauge",
        "Calls waiting for a bulkhead slot now.",
        "{call}",
        ("policy",),
    ),
    Metric(
        "seawall_bulkhead_limit",
        "seawall.bulkhead.limit",
        "gauge",
        "Maximum concurrent calls a bulkhead admits.",
        "{call}",
        ("policy",),
    ),
    Metric(
        "seawall_bulkhead_wait_seconds",
        "seawall.bulkhead.wait",
        "histogram",
        "Time admitted calls waited for a bulkhead slot (0 when admitted at once).",
        "s",
        ("policy",),
        DURATION_BUCKETS,
    ),
    Metric(
        "seawall_chaos_injections_total",
        "seawall.chaos.injections",
        "counter",
        "Faults injected by seawall.chaos, by kind (only ever while fault injection is enabled).",
        "{injection}",
        ("policy", "fault"),
    ),
    Metric(
        "seawall_shared_state_up",
        "seawall.shared_state.up",
        "gauge",
        "1 while a shared circuit breaker shares its state (on Redis), 0 while it decides "
        "alone (the shared state lost, or closed).",
        "1",
        ("policy",),
    ),
    Metric(
        "seawall_shared_state_flush_errors_total",
        "seawall.shared_state.flush_errors",
        "counter",
        "Exchanges of a shared circuit breaker's counts and state that did not reach its "
        "shared state.",
        "{error}",
        ("policy",),
    ),
    Metric(
        "seawall_shared_state_deltas_dropped_total",
        "seawall.shared_state.deltas_dropped",
        "counter",
        "Call outcomes a shared circuit breaker counted whose exchange with its shared state "
        "failed: left out of the shared window rather than risk counting them twice (they are "
        "in it after all when only the answer was lost).",
        "{call}",
        ("policy",),
    ),
    Metric(
        "seawall_http_client_request_duration_seconds",
        "http.client.request.duration",
        "histogram",
        "Duration of HTTP client request attempts made through seawall's transports.",
        "s",
        (
            "http_request_method",
            "server_address",
            "server_port",
            "http_response_status_code",
            "error_type",
        ),
        DURATION_BUCKETS,
    ),
)

_BY_NAME = {metric.name: metric for metric in CATALOGUE}


def by_name(name: str) -> Metric:
    return _BY_NAME[name]
