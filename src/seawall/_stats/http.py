"""Per-attempt HTTP client durations kept by seawall's httpx transports, as plain numbers.

Each transport owns one :class:`HttpStats`; the metrics exporters read every live one when
scraped (``seawall_http_client_request_duration_seconds``). Labels are bounded: methods
outside the standard set, server addresses beyond ``max_addresses`` (with their ports), and
a server's (method, status code, error type) beyond :data:`LABEL_SETS` become ``_OTHER``.
"""

from __future__ import annotations

import threading
import weakref
from bisect import bisect_left
from collections import deque

from seawall import _fork
from seawall._stats import live
from seawall._stats.counters import DURATION_BUCKETS, Histogram
from seawall._stats.observers import observers

__all__ = ["LABEL_SETS", "HttpLabels", "HttpStats", "live_http_stats"]

OTHER = "_OTHER"
#: The methods kept as labels (the OpenTelemetry semantic convention's list); others: _OTHER.
KNOWN_METHODS = frozenset(
    {"CONNECT", "DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT", "TRACE"}
)

#: method, server address, server port, response status code ("" without a response),
#: error type ("" when none)
HttpLabels = tuple[str, str, str, str, str]
_BOUNDS = DURATION_BUCKETS
_FIRST = _BOUNDS[0]
#: Distinct (method, status code, error type) each server shows, the last of them all
#: ``_OTHER``: a server chooses its status codes.
LABEL_SETS = 10
#: How many label sets, as given, the fast path remembers per transport.
_SEEN_LIMIT = 4096
#: Attempts a series holds before they are folded into its histogram (and on every read).
_FOLD_AT = 256


class _Series:
    """One label set's histogram, and the durations observed since it was last brought up to
    date: appended lock-free, folded into the histogram under the lock."""

    __slots__ = ("histogram", "labels", "pending")

    def __init__(self, labels: HttpLabels) -> None:
        self.labels = labels
        self.histogram = Histogram(_BOUNDS)
        self.pending: deque[float] = deque()


class HttpStats:
    """Duration histograms of HTTP attempts, one per label set.

    An attempt's duration is appended to its series' pending queue (``deque.append``, one C
    call, atomic: no lock per attempt); the lock is taken to fold the queue into the
    histogram, every :data:`_FOLD_AT` attempts and whenever the series are read.
    """

    __slots__ = (
        "__weakref__",
        "_collected",
        "_kinds",
        "_lock",
        "_seen",
        "_serial",
        "_series",
        "_servers",
        "max_addresses",
    )

    def __init__(self, max_addresses: int) -> None:
        self.max_addresses = max_addresses
        self._lock = threading.Lock()
        self._series: dict[HttpLabels, _Series] = {}
        self._servers: set[tuple[str, str]] = set()
        # Per server (address, port): the (method, status code, error type) it shows.
        self._kinds: dict[tuple[str, str], set[tuple[str, str, str]]] = {}
        # The series of each label set as given, before the bounding: the hot path is one
        # lookup. Bounded too: a full cache stops growing, the misses go the slow way.
        self._seen: dict[HttpLabels, _Series] = {}
        self._serial = live.next_serial()
        self._collected = False  # set once its counts are with the remains
        _register(self)

    def __del__(self) -> None:
        # Its counts outlive it in the exported totals (see seawall.metrics._remains).
        try:
            live.collected(self)
        except Exception:  # pragma: no cover - at interpreter shutdown
            pass

    def observe(
        self, method: str, address: str, port: str, status: str, error_type: str, seconds: float
    ) -> None:
        given = (method, address, port, status, error_type)
        series = self._seen.get(given)
        if series is None:
            series = self._bounded(given)
        pending = series.pending
        pending.append(seconds)
        if len(pending) >= _FOLD_AT:
            self._fold(series)
        if observers.http_request_duration is not None:
            observers.http_request_duration(series.labels, seconds)

    def _fold(self, series: _Series) -> None:
        """Bring ``series``' histogram up to date. Only lock holders take from a queue, and
        a count taken under the lock is never more than is there: nothing is lost to the
        attempts appending meanwhile."""
        with self._lock:
            self._fold_locked(series)

    @staticmethod
    def _fold_locked(series: _Series) -> None:
        pending, histogram = series.pending, series.histogram
        counts = histogram.counts
        total = 0.0
        for _ in range(len(pending)):
            seconds = pending.popleft()
            counts[0 if seconds <= _FIRST else bisect_left(_BOUNDS, seconds)] += 1
            total += seconds
        histogram.sum += total

    def _bounded(self, given: HttpLabels) -> _Series:
        """The series of ``given`` once its method and address are bounded."""
        method, address, port, status, error_type = given
        if method not in KNOWN_METHODS:
            method = OTHER
        server = (address, port)  # bounded as a pair: ports vary as much as hostnames
        with self._lock:
            if server not in self._servers:
                if len(self._servers) >= self.max_addresses:
                    address = port = OTHER
                else:
                    self._servers.add(server)
            # A server chooses its status codes (and so the error types that are codes): each
            # server shows at most LABEL_SETS of them with the method, the last one _OTHER.
            kinds = self._kinds.get((address, port))
            if kinds is None:
                kinds = self._kinds[(address, port)] = set()
            kind = (method, status, error_type)
            if kind not in kinds:
                if len(kinds) >= LABEL_SETS - 1:
                    method = status = error_type = OTHER
                    kinds.add((OTHER, OTHER, OTHER))
                else:
                    kinds.add(kind)
            labels = (method, address, port, status, error_type)
            series = self._series.get(labels)
            if series is None:
                series = self._series[labels] = _Series(labels)
            if len(self._seen) < _SEEN_LIMIT:
                self._seen[given] = series
            return series

    def read(self) -> dict[HttpLabels, tuple[tuple[int, ...], float]]:
        with self._lock:
            readings = {}
            for labels, series in self._series.items():
                self._fold_locked(series)
                readings[labels] = series.histogram.read()
            return readings

    def addresses(self) -> int:
        """How many distinct server addresses (with their ports) have their own labels."""
        with self._lock:
            return len(self._servers)


_lock = threading.Lock()
_live: weakref.WeakSet[HttpStats] = weakref.WeakSet()


def _register(stats: HttpStats) -> None:
    with _lock:
        _live.add(stats)


@_fork.in_child
def _renew() -> None:
    global _lock
    _lock = threading.Lock()
    for stats in list(_live):
        stats._lock = threading.Lock()


def live_http_stats() -> list[HttpStats]:
    with _lock:
        return list(_live)
