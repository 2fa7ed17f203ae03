"""Call-level SLI: the duration and outcome of every logical call, kept as plain numbers.

Recorded once per call by the outermost seawall layer (a decorator, or a public ``call`` /
``acall``); the policies composed inside a Pipeline or Policy are called through their raw
shells and record nothing here. Exporters read :meth:`CallStats.read` when scraped.
"""

from __future__ import annotations

import threading
import weakref
from bisect import bisect_left
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from seawall import _aio
from seawall._errors import RejectedError, SeawallError, TimeoutExceededError
from seawall._stats.counters import DURATION_BUCKETS
from seawall._stats.observers import observers

__all__ = [
    "ERROR_TYPE_CAP",
    "OTHER",
    "OUTCOMES",
    "OWN_ERROR_TYPES",
    "CallStats",
    "CallStatsReading",
    "is_own_error_type",
]

OUTCOMES = ("success", "failure", "timeout", "rejected", "cancelled", "fallback")
#: Distinct ``error_type`` values kept per operation; the rest are counted as ``OTHER``.
ERROR_TYPE_CAP = 20
OTHER = "_OTHER"
#: The error types of seawall's own exceptions (and of cancellation): a fixed set, never capped.
OWN_ERROR_TYPES = frozenset(
    {
        "SeawallError",
        "RejectedError",
        "CircuitOpenError",
        "BulkheadFullError",
        "TimeoutExceededError",
        "CircuitOpenHTTPError",
        "BulkheadFullHTTPError",
        "TimeoutHTTPError",
        "CancelledError",
        OTHER,
    }
)

_BOUNDS = DURATION_BUCKETS
_SLOTS = len(_BOUNDS) + 1  # the last bucket is +Inf
_SUM = _SLOTS  # a shard is [bucket counts..., sum]
_FIRST = _BOUNDS[0]


def outcome_of(exc: BaseException) -> str:
    """The SLI outcome of a call that raised ``exc``."""
    if isinstance(exc, RejectedError):
        return "rejected"
    if isinstance(exc, TimeoutExceededError):
        return "timeout"
    if isinstance(exc, Exception):
        return "failure"
    return "cancelled"  # asyncio.CancelledError, KeyboardInterrupt, ...


def is_own_error_type(exc: BaseException, error_type: str) -> bool:
    """Whether ``error_type`` names one of seawall's own exception classes, or cancellation
    (a fixed, small set, always kept): not a status code, not a user's subclass."""
    if _aio.is_cancelled(exc):
        return True
    kind = type(exc)
    return kind.__module__.startswith("seawall.") and error_type in OWN_ERROR_TYPES


def error_type_of(exc: BaseException) -> str:
    if _aio.is_cancelled(exc):
        return "CancelledError"
    # An HTTP status from seawall's transports. Only seawall's own exceptions say: any other
    # exception's attributes may carry ids or messages, which must never become labels.
    code = getattr(exc, "error_type", None) if isinstance(exc, SeawallError) else None
    return code if isinstance(code, str) else type(exc).__qualname__


@dataclass(frozen=True, slots=True)
class CallStatsReading:
    """Per-outcome duration histograms (per-bucket counts, sum) and error counts."""

    durations: dict[str, tuple[tuple[int, ...], float]]
    errors: dict[tuple[str, str], int]


class CallStats:
    """Durations and outcomes of one operation's logical calls.

    Successes, the hot path, go to a per-thread shard: no lock, and only its own thread ever
    writes to it. Other outcomes are rare and take a lock. A dead thread's shard is folded
    into the retired totals, so threads that come and go do not grow memory.
    """

    __slots__ = (
        "__weakref__",
        "_capped",
        "_errors",
        "_finalizers",
        "_local",
        "_lock",
        "_other",
        "_owner",
        "_retired",
        "_shards",
    )

    def __init__(self, owner: Callable[[], str]) -> None:
        self._owner = owner  # the operation's name, read only by per-event observers
        self._local = threading.local()
        self._lock = threading.Lock()
        self._shards: list[list[float]] = []
        self._retired: list[float] = [0] * (_SLOTS + 1)
        # Durations of the other outcomes, and error counts by (outcome, error_type).
        self._other: dict[str, list[float]] = {}
        self._errors: dict[tuple[str, str], int] = {}
        self._capped: set[str] = set()  # the error types of other libraries kept so far
        # One per thread that has a shard: each lives as long as its thread, so they are
        # detached when these stats go (a long-lived thread would otherwise keep every shard).
        self._finalizers: list[weakref.finalize[Any, Any]] = []

    def succeeded(self, seconds: float) -> None:
        try:
            shard: list[float] = self._local.shard
        except AttributeError:
            shard = self._new_shard()
        # Most in-process calls land in the first bucket: skip the search for them.
        shard[0 if seconds <= _FIRST else bisect_left(_BOUNDS, seconds)] += 1
        shard[_SUM] += seconds
        if observers.call_duration is not None:
            observers.call_duration(self._owner(), "success", seconds)

    def _new_shard(self) -> list[float]:
        shard: list[float] = [0] * (_SLOTS + 1)
        finalizer = weakref.finalize(threading.current_thread(), _retire, weakref.ref(self), shard)
        with self._lock:
            self._shards.append(shard)
            self._finalizers.append(finalizer)
        self._local.shard = shard
        return shard

    def __del__(self) -> None:
        for finalizer in self._finalizers:
            finalizer.detach()

    def _after_fork(self) -> None:
        self._lock = threading.Lock()

    def _retire(self, shard: list[float]) -> None:
        with self._lock:
            try:
                self._shards.remove(shard)
            except ValueError:
                return
            # Its thread is gone: so is the finalizer that called this.
            self._finalizers = [each for each in self._finalizers if each.alive]
            retired = self._retired
            for i, value in enumerate(shard):
                retired[i] += value

    def fell_back(self, exc: BaseException, seconds: float) -> None:
        """A call answered by a fallback instead of failing with ``exc``."""
        self.failed(exc, seconds, "fallback")

    def failed(self, exc: BaseException, seconds: float, outcome: str | None = None) -> None:
        if outcome is None:
            outcome = outcome_of(exc)
        error_type = error_type_of(exc)
        with self._lock:
            histogram = self._other.get(outcome)
            if histogram is None:
                histogram = self._other[outcome] = [0] * (_SLOTS + 1)
            histogram[bisect_left(_BOUNDS, seconds)] += 1
            histogram[_SUM] += seconds
            key = (outcome, error_type)
            # seawall's own errors are few and always worth seeing: only others are capped,
            # HTTP status codes and subclasses of seawall's errors included.
            if key not in self._errors and not is_own_error_type(exc, error_type):
                if error_type not in self._capped and len(self._capped) >= ERROR_TYPE_CAP:
                    key = (outcome, OTHER)
                else:
                    self._capped.add(error_type)
            self._errors[key] = self._errors.get(key, 0) + 1
        if observers.call_duration is not None:
            observers.call_duration(self._owner(), outcome, seconds)

    def read(self) -> CallStatsReading:
        with self._lock:
            success = list(self._retired)
            for shard in self._shards:
                for i, value in enumerate(shard):
                    success[i] += value
            durations = {"success": _as_reading(success)}
            for outcome, histogram in self._other.items():
                durations[outcome] = _as_reading(histogram)
            durations.setdefault("failure", _as_reading([0] * (_SLOTS + 1)))
            return CallStatsReading(durations, dict(self._errors))


def _as_reading(slots: list[float]) -> tuple[tuple[int, ...], float]:
    return tuple(int(count) for count in slots[:_SUM]), float(slots[_SUM])


def _retire(stats_ref: weakref.ref[CallStats], shard: list[float]) -> None:
    stats = stats_ref()
    if stats is not None:
        stats._retire(shard)
