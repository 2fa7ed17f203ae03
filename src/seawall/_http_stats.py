"""Per-attempt HTTP client durations kept by seawall's httpx transports, as plain numbers.

Each transport owns one :class:`HttpStats`; the metrics exporters read every live one when
scraped (``seawall_http_client_request_duration_seconds``). Labels are bounded: methods
outside the standard set, and server addresses beyond ``max_addresses`` (with their ports),
become ``_OTHER``.
"""

from __future__ import annotations

import threading
import weakref
from bisect import bisect_left

from seawall._histogram import DURATION_BUCKETS, Histogram
from seawall._observers import observers

__all__ = ["HttpLabels", "HttpStats", "live_http_stats"]

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
#: How many label sets, as given, the fast path remembers per transport.
_SEEN_LIMIT = 4096


class HttpStats:
    """Duration histograms of HTTP attempts, one per label set, under one lock."""

    __slots__ = (
        "__weakref__",
        "_histograms",
        "_lock",
        "_seen",
        "_servers",
        "max_addresses",
    )

    def __init__(self, max_addresses: int) -> None:
        self.max_addresses = max_addresses
        self._lock = threading.Lock()
        self._histograms: dict[HttpLabels, Histogram] = {}
        self._servers: set[tuple[str, str]] = set()
        # The histogram and labels of each label set as given, before the bounding: the hot
        # path is one lookup. Bounded too: a full cache stops growing, the misses go the slow way.
        self._seen: dict[HttpLabels, tuple[Histogram, HttpLabels]] = {}
        _register(self)

    def observe(
        self, method: str, address: str, port: str, status: str, error_type: str, seconds: float
    ) -> None:
        given = (method, address, port, status, error_type)
        lock = self._lock
        lock.acquire()  # not ``with``: its __exit__ call costs as much as the rest here
        try:
            seen = self._seen.get(given)
            if seen is None:
                seen = self._bounded(given)
            histogram, labels = seen
            # Most loopback and in-datacenter attempts land in the first bucket.
            histogram.counts[0 if seconds <= _FIRST else bisect_left(_BOUNDS, seconds)] += 1
            histogram.sum += seconds
        finally:
            lock.release()
        if observers.http_request_duration is not None:
            observers.http_request_duration(labels, seconds)

    def _bounded(self, given: HttpLabels) -> tuple[Histogram, HttpLabels]:
        """The histogram of ``given`` once its method and address are bounded (lock held)."""
        method, address, port, status, error_type = given
        if method not in KNOWN_METHODS:
            method = OTHER
        server = (address, port)  # bounded as a pair: ports vary as much as hostnames
        if server not in self._servers:
            if len(self._servers) >= self.max_addresses:
                address = port = OTHER
            else:
                self._servers.add(server)
        labels = (method, address, port, status, error_type)
        histogram = self._histograms.get(labels)
        if histogram is None:
            histogram = self._histograms[labels] = Histogram(_BOUNDS)
        seen = (histogram, labels)
        if len(self._seen) < _SEEN_LIMIT:
            self._seen[given] = seen
        return seen

    def read(self) -> dict[HttpLabels, tuple[tuple[int, ...], float]]:
        with self._lock:
            return {labels: histogram.read() for labels, histogram in self._histograms.items()}

    def addresses(self) -> int:
        """How many distinct server addresses (with their ports) have their own labels."""
        with self._lock:
            return len(self._servers)


_lock = threading.Lock()
_live: weakref.WeakSet[HttpStats] = weakref.WeakSet()


def _register(stats: HttpStats) -> None:
    with _lock:
        _live.add(stats)


def live_http_stats() -> list[HttpStats]:
    with _lock:
        return list(_live)
