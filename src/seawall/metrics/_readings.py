"""Reading every live policy's counts into the catalogue's shape, for both exporters.

Nothing here runs on a call's path: exporters call :func:`read_all` when scraped.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from seawall._base import PolicyBase
from seawall._breaker import CircuitBreaker, CircuitState
from seawall._bulkhead import Bulkhead
from seawall._registry import live_policies
from seawall._retry import Retry
from seawall._timeout import Timeout
from seawall.metrics._catalogue import CATALOGUE, Metric

__all__ = ["HistogramValue", "Reading", "read_all"]

Labels = tuple[str, ...]
#: Per-bucket counts (not cumulative; the last is +Inf) and the sum of observed values.
HistogramValue = tuple[tuple[int, ...], float]

_STATES = tuple(CircuitState)
_BREAKER_OUTCOMES = ("success", "failure", "ignored", "rejected")
_TIMEOUT_OUTCOMES = ("success", "failure", "timeout", "cancelled")


@dataclass(slots=True)
class Reading:
    """The samples of one metric family: plain values, or histograms, by label values."""

    metric: Metric
    values: dict[Labels, float] = field(default_factory=dict)
    histograms: dict[Labels, HistogramValue] = field(default_factory=dict)

    def add(self, labels: Labels, value: float) -> None:
        self.values[labels] = self.values.get(labels, 0) + value

    def highest(self, labels: Labels, value: float) -> None:
        self.values[labels] = max(self.values.get(labels, value), value)

    def add_histogram(self, labels: Labels, value: HistogramValue) -> None:
        counts, total = value
        old = self.histograms.get(labels)
        if old is not None:
            counts = tuple(a + b for a, b in zip(old[0], counts, strict=True))
            total += old[1]
        self.histograms[labels] = (counts, total)


def read_all(policies: Iterable[PolicyBase] | None = None) -> dict[str, Reading]:
    """Every catalogue family, filled from ``policies`` (default: every live policy).

    Policies that share a name share series: counts add up, and the breaker state gauge
    shows a state when any of them is in it.
    """
    out = {metric.name: Reading(metric) for metric in CATALOGUE}
    for policy in live_policies() if policies is None else policies:
        _read_calls(policy, out)
        if isinstance(policy, CircuitBreaker):
            _read_breaker(policy, out)
        elif isinstance(policy, Retry):
            _read_retry(policy, out)
        elif isinstance(policy, Timeout):
            _read_timeout(policy, out)
        elif isinstance(policy, Bulkhead):
            _read_bulkhead(policy, out)
    return out


def _read_calls(policy: PolicyBase, out: dict[str, Reading]) -> None:
    reading = policy.stats.read()
    called = reading.errors or any(sum(counts) for counts, _ in reading.durations.values())
    if policy._member_of_pipeline and not called:
        return  # composed inside a pipeline and never called on its own: the pipeline reports
    operation = policy.name
    durations = out["seawall_call_duration_seconds"]
    for outcome, value in reading.durations.items():
        durations.add_histogram((operation, outcome), value)
    errors = out["seawall_call_errors_total"]
    for (outcome, error_type), count in reading.errors.items():
        errors.add((operation, outcome, error_type), count)


def _read_breaker(breaker: CircuitBreaker, out: dict[str, Reading]) -> None:
    snap = breaker.snapshot()
    name = snap.name
    calls = out["seawall_circuit_breaker_calls_total"]
    for outcome, count in zip(
        _BREAKER_OUTCOMES, (snap.successes, snap.failures, snap.ignored, snap.rejected), strict=True
    ):
        calls.add((name, outcome), count)
    out["seawall_circuit_breaker_slow_calls_total"].add((name,), snap.slow_calls)
    state = out["seawall_circuit_breaker_state"]
    for each in _STATES:
        state.highest((name, each.value), 1.0 if snap.state is each else 0.0)
    transitions = out["seawall_circuit_breaker_transitions_total"]
    for (frm, to), count in snap.transitions.items():
        transitions.add((name, frm.value, to.value), count)
    out["seawall_circuit_breaker_open_seconds_total"].add((name,), snap.not_closed_seconds)


def _read_retry(retry: Retry, out: dict[str, Reading]) -> None:
    snap = retry.snapshot()
    name = snap.name
    calls = out["seawall_retry_calls_total"]
    for outcome in ("success", "failure"):
        for retried in (False, True):
            count = snap.calls.get((outcome, retried), 0)
            calls.add((name, outcome, "true" if retried else "false"), count)
    out["seawall_retry_attempts"].add_histogram(
        (name,), (snap.attempt_buckets, float(snap.attempts_total))
    )
    out["seawall_retry_budget_exhausted_total"].add((name,), snap.budget_exhausted)


def _read_timeout(timeout: Timeout, out: dict[str, Reading]) -> None:
    counts = timeout.counts.as_dict()
    calls = out["seawall_timeout_calls_total"]
    for outcome in _TIMEOUT_OUTCOMES:
        calls.add((timeout.name, outcome), counts[outcome])


def _read_bulkhead(bulkhead: Bulkhead, out: dict[str, Reading]) -> None:
    snap = bulkhead.snapshot()
    name = snap.name
    calls = out["seawall_bulkhead_calls_total"]
    calls.add((name, "admitted"), snap.admitted)
    calls.add((name, "rejected"), snap.rejected)
    out["seawall_bulkhead_active"].add((name,), snap.active)
    out["seawall_bulkhead_queued"].add((name,), snap.queued)
    out["seawall_bulkhead_limit"].add((name,), snap.limit)
    # Calls admitted at once waited 0 s: they belong in the first bucket.
    buckets = list(snap.wait_buckets)
    buckets[0] += snap.admitted - snap.waited
    out["seawall_bulkhead_wait_seconds"].add_histogram(
        (name,), (tuple(buckets), snap.wait_seconds_total)
    )
