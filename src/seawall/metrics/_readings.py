"""Reading every live policy's counts into the catalogue's shape, for both exporters.

Nothing here runs on a call's path: exporters call :func:`read_all` when scraped.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from seawall import _fork
from seawall._base import PolicyBase
from seawall._breaker import BreakerSnapshot, CircuitState
from seawall._bulkhead import BulkheadSnapshot
from seawall._chaos import InjectorSnapshot
from seawall._retry import RetrySnapshot
from seawall._stats import live
from seawall._stats.calls import ERROR_TYPE_CAP, OTHER, OWN_ERROR_TYPES, CallStatsReading
from seawall._stats.counters import DURATION_BUCKETS
from seawall._stats.http import HttpStats, live_http_stats
from seawall._stats.live import live_policies
from seawall._timeout import TimeoutSnapshot
from seawall.metrics._catalogue import CATALOGUE, Metric

if TYPE_CHECKING:
    from seawall.metrics._remains import Remains

__all__ = ["HistogramValue", "Reading", "read_all"]

Labels = tuple[str, ...]
#: Per-bucket counts (not cumulative; the last is +Inf) and the sum of observed values.
HistogramValue = tuple[tuple[int, ...], float]

_STATES = tuple(CircuitState)
_NO_CALLS: HistogramValue = ((0,) * (len(DURATION_BUCKETS) + 1), 0.0)
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

    def lowest(self, labels: Labels, value: float) -> None:
        self.values[labels] = min(self.values.get(labels, value), value)

    def add_histogram(self, labels: Labels, value: HistogramValue) -> None:
        counts, total = value
        old = self.histograms.get(labels)
        if old is not None:
            counts = tuple(a + b for a, b in zip(old[0], counts, strict=True))
            total += old[1]
        self.histograms[labels] = (counts, total)


def read_all(policies: Iterable[PolicyBase] | None = None) -> dict[str, Reading]:
    """Every catalogue family, filled from ``policies`` (default: every live policy, the
    per-attempt HTTP counts of every live httpx transport, and what collected ones counted).

    Policies that share a name share series: counts add up, and the breaker state gauge
    shows a state when any of them is in it.
    """
    if policies is not None:
        return _read(policies, (), None)
    from seawall.metrics._remains import remains

    # Held for the whole reading: a policy collected meanwhile leaves its counts queued, and
    # they are added once it is no longer read alive (see _remains).
    with remains.lock:
        return _read(live_policies(), live_http_stats(), remains)


def _read(
    policies: Iterable[PolicyBase], http_stats: Iterable[HttpStats], remains: Remains | None
) -> dict[str, Reading]:
    out = {metric.name: Reading(metric) for metric in CATALOGUE}
    read: set[int] = set()
    for policy in policies:
        if policy._collected:
            continue  # its counts are with the remains
        template = live.template_of(policy)
        if template is not None and not (_called(template) or _called(policy)):
            continue  # an httpx transport's template, used only to make per-host copies
        write_own = _own_series(policy)  # a policy is registered once fully built
        _read_calls(policy, out)
        write_own(out)
        read.add(policy._serial)
    http = out["seawall_http_client_request_duration_seconds"]
    for stats in http_stats:
        if stats._collected:
            continue
        for labels, value in stats.read().items():
            http.add_histogram(labels, value)
        read.add(stats._serial)
    if remains is not None:
        # What collected policies and transports counted: totals never go down.
        remains.add_to_locked(out, read)
    return out


def _own_series(policy: PolicyBase) -> Callable[[dict[str, Reading]], None]:
    """Read a policy's own counts now (its snapshot), before anything is written; return what
    adds them (its snapshot type's reader, if its counts have series of their own)."""
    snapshot = getattr(policy, "snapshot", None)
    if snapshot is None:  # a Pipeline or Policy: its members are read on their own
        return _no_series
    taken = snapshot()
    reader = READERS.get(type(taken))
    return _no_series if reader is None else functools.partial(reader, taken)


def _no_series(out: dict[str, Reading]) -> None:
    pass


def _called(policy: PolicyBase) -> bool:
    """Whether any call went through ``policy`` itself (its call-level SLI has one)."""
    return _holds_calls(policy.stats.read())


def _holds_calls(reading: CallStatsReading) -> bool:
    return bool(reading.errors) or any(sum(counts) for counts, _ in reading.durations.values())


def _read_calls(policy: PolicyBase, out: dict[str, Reading]) -> None:
    reading = policy.stats.read()
    if live.is_member(policy) and not _holds_calls(reading):
        return  # composed inside a pipeline and never called on its own: the pipeline reports
    operation = policy.name
    durations = out["seawall_call_duration_seconds"]
    for outcome, value in reading.durations.items():
        durations.add_histogram((operation, outcome), value)
    for outcome in policy._call_outcomes - reading.durations.keys():
        durations.add_histogram((operation, outcome), _NO_CALLS)
    errors = out["seawall_call_errors_total"]
    for (outcome, error_type), count in reading.errors.items():
        errors.add((operation, outcome, _kept_error_type(operation, error_type)), count)


# The error types shown per operation name, across every policy of that name (each caps its
# own; same-named ones, such as an httpx transport's hosts past its labelled ones, could
# together show more). First seen, first kept: the set only grows, so a series never moves.
_error_types: dict[str, set[str]] = {}
# Reentrant: a finalizer that a garbage collection runs inside the locked block (a set made
# there) reads its policy's error types too, in the same thread.
_error_types_lock = threading.RLock()


@_fork.in_child
def _renew() -> None:
    global _error_types_lock
    _error_types_lock = threading.RLock()


def _kept_error_type(operation: str, error_type: str) -> str:
    if error_type in OWN_ERROR_TYPES:
        return error_type
    with _error_types_lock:
        kept = _error_types.setdefault(operation, set())
        if error_type in kept:
            return error_type
        if len(kept) >= ERROR_TYPE_CAP:
            return OTHER
        kept.add(error_type)
        return error_type


def _read_breaker(snap: BreakerSnapshot, out: dict[str, Reading]) -> None:
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
    # Same-named breakers: the longest open duration, the furthest next probe.
    out["seawall_circuit_breaker_open_duration_seconds"].highest((name,), snap.open_duration)
    out["seawall_circuit_breaker_next_probe_seconds"].highest((name,), snap.retry_after or 0.0)
    if snap.shared_up is not None:
        # Same-named shared breakers: down if any of them lost the shared state.
        out["seawall_shared_state_up"].lowest((name,), 1.0 if snap.shared_up else 0.0)
        out["seawall_shared_state_flush_errors_total"].add((name,), snap.shared_errors)
        out["seawall_shared_state_deltas_dropped_total"].add((name,), snap.shared_dropped)


def _read_retry(snap: RetrySnapshot, out: dict[str, Reading]) -> None:
    name = snap.name
    calls = out["seawall_retry_calls_total"]
    for outcome in ("success", "failure"):
        for retried in (False, True):
            count = snap.calls.get((outcome, retried), 0)
            calls.add((name, outcome, "true" if retried else "false"), count)
    for retried in (False, True):  # only once a call was cancelled: rare, and no ratio needs it
        count = snap.calls.get(("cancelled", retried), 0)
        if count:
            calls.add((name, "cancelled", "true" if retried else "false"), count)
    out["seawall_retry_attempts"].add_histogram(
        (name,), (snap.attempt_buckets, float(snap.attempts_total))
    )
    out["seawall_retry_refused_attempts_total"].add((name,), snap.refused_attempts)
    out["seawall_retry_budget_exhausted_total"].add((name,), snap.budget_exhausted)


def _read_timeout(snap: TimeoutSnapshot, out: dict[str, Reading]) -> None:
    calls = out["seawall_timeout_calls_total"]
    for outcome in _TIMEOUT_OUTCOMES:
        calls.add((snap.name, outcome), getattr(snap, outcome))


def _read_bulkhead(snap: BulkheadSnapshot, out: dict[str, Reading]) -> None:
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


def _read_injector(snap: InjectorSnapshot, out: dict[str, Reading]) -> None:
    injections = out["seawall_chaos_injections_total"]
    for fault, count in snap.injections.items():
        injections.add((snap.name, fault), count)


#: The reader of each snapshot type whose counts have series of their own: adding a policy
#: means adding its snapshot and, if it has series, a reader here (and its metrics in the
#: catalogue). A fallback's answers are in the call-level series (``outcome="fallback"``).
READERS: dict[type, Callable[..., None]] = {
    BreakerSnapshot: _read_breaker,
    RetrySnapshot: _read_retry,
    TimeoutSnapshot: _read_timeout,
    BulkheadSnapshot: _read_bulkhead,
    InjectorSnapshot: _read_injector,
}
