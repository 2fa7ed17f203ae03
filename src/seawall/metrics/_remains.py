"""The counts of collected policies and transports, so that totals under a name never go down.

The exporters read the live policies when scraped. A policy made per request, one of several
sharing a name, or an httpx transport's host evicted past ``max_hosts`` would take its counts
with it when collected, and a counter that goes down reads as a reset to ``rate()``. So when
one is collected its counters and histograms are read one last time (from its ``__del__``:
see ``seawall._stats.live.on_collected``) and kept here, added to every later reading.

Kept bounded: up to :data:`HOST_NAMES` names of transports' per-host policies, and up to
:data:`HTTP_SERVERS` server addresses of per-attempt HTTP series. Past either bound an evicted
host's series end, which ``rate()`` reads as a series that ended (and, if the host comes back,
as a new one), never as a drop. They are not moved under an ``_OTHER`` name: that series
would jump by counts already seen under the host's own. Gauges (a state, a level) are not
kept: they describe a live object.

A finalizer may run in any thread, at any allocation, even while this module's lock is held
by the same thread: it only appends to a queue (``deque.append`` is atomic), and readers fold
the queue in under the lock.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Set as AbstractSet
from typing import TYPE_CHECKING

from seawall import _fork
from seawall._stats import live
from seawall._stats.http import OTHER, HttpLabels, HttpStats
from seawall.metrics._readings import HistogramValue, Labels, Reading, read_all

if TYPE_CHECKING:
    from seawall._base import PolicyBase

__all__ = ["HOST_NAMES", "HTTP_SERVERS", "Remains", "remains"]

#: Distinct names of transports' per-host policies whose counts are kept under their own name.
HOST_NAMES = 1000
#: Distinct server addresses (with their ports) kept in the per-attempt HTTP series.
HTTP_SERVERS = 1000

#: One collected object's counts, by the serial of the object: its policy families (its
#: name, whether it is a transport's per-host copy, the readings), or its per-attempt series.
_Dead = tuple[int, tuple[str, bool, list[Reading]]] | tuple[int, dict[HttpLabels, HistogramValue]]


class Remains:
    """Counts of collected policies, by family and series, and of collected transports'
    per-attempt series.

    A collected object's counts are read in its ``__del__``, queued, and only then is it
    marked collected (readers skip it from then on). A reader holds :attr:`lock` from the
    first live object it reads to the queue it folds; an entry whose object it read alive is
    left queued for the next reader. So each count is read once: alive, or here.
    """

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self._queue: deque[_Dead] = deque()
        self._families: dict[str, dict[Labels, float]] = {}
        self._histograms: dict[str, dict[Labels, HistogramValue]] = {}
        self._http: dict[HttpLabels, HistogramValue] = {}
        self._host_names: set[str] = set()
        self._servers: set[tuple[str, str]] = set()

    # -- from finalizers ----------------------------------------------------------------------

    def policy_collected(self, policy: PolicyBase) -> None:
        """Keep what ``policy`` counted (called as it is collected)."""
        kept = [
            reading
            for reading in read_all([policy]).values()
            if reading.metric.kind != "gauge" and (reading.values or reading.histograms)
        ]
        if kept:
            self._queue.append((policy._serial, (policy.name, live.is_per_host(policy), kept)))
        policy._collected = True
        live.forget(policy)
        self._fold_if_free()

    def http_collected(self, stats: HttpStats) -> None:
        readings = stats.read()
        if readings:
            self._queue.append((stats._serial, readings))
        stats._collected = True
        self._fold_if_free()

    def _fold_if_free(self) -> None:
        """Fold the queue now unless a reader holds the lock (perhaps this very thread, which
        a finalizer interrupted): the queue stays short between reads."""
        if self.lock.acquire(blocking=False):
            try:
                self._fold(frozenset())
            finally:
                self.lock.release()

    def clear(self) -> None:
        """Forget every kept count (between tests that read the exported series)."""
        with self.lock:
            self._queue.clear()
            self._families.clear()
            self._histograms.clear()
            self._http.clear()
            self._host_names.clear()
            self._servers.clear()

    # -- for readers ----------------------------------------------------------------------------

    def add_to_locked(self, out: dict[str, Reading], read: set[int]) -> None:
        """Add the kept counts to ``out`` (a reading, made under :attr:`lock`, of the live
        objects whose serials are ``read``), HTTP series included."""
        self._fold(read)
        for name, values in self._families.items():
            reading = out[name]
            for labels, value in values.items():
                reading.add(labels, value)
        for name, histograms in self._histograms.items():
            reading = out[name]
            for labels, histogram in histograms.items():
                reading.add_histogram(labels, histogram)
        http = out["seawall_http_client_request_duration_seconds"]
        for http_labels, histogram in self._http.items():
            http.add_histogram(http_labels, histogram)

    def _fold(self, read: AbstractSet[int]) -> None:
        queue = self._queue
        later = []
        while queue:
            serial, dead = queue.popleft()
            if serial in read:
                later.append((serial, dead))  # read alive by the reader at hand
            elif isinstance(dead, dict):
                self._fold_http(dead)
            else:
                self._fold_policy(*dead)
        queue.extend(later)  # type: ignore[arg-type]

    def _fold_policy(self, name: str, per_host: bool, readings: list[Reading]) -> None:
        # `<transport>:_OTHER` is one name a transport, shared by live hosts: always kept.
        if per_host and name not in self._host_names and not name.endswith(":_OTHER"):
            if len(self._host_names) >= HOST_NAMES:
                return  # its series end here (see the module's docs)
            self._host_names.add(name)
        for reading in readings:
            family = reading.metric.name
            if reading.values:
                values = self._families.setdefault(family, {})
                for labels, value in reading.values.items():
                    key = (name, *labels[1:])  # every policy family is labelled by name first
                    values[key] = values.get(key, 0) + value
            if reading.histograms:
                histograms = self._histograms.setdefault(family, {})
                for labels, (counts, total) in reading.histograms.items():
                    key = (name, *labels[1:])
                    old = histograms.get(key)
                    if old is not None:
                        counts = tuple(a + b for a, b in zip(old[0], counts, strict=True))
                        total += old[1]
                    histograms[key] = (counts, total)

    def _fold_http(self, readings: dict[HttpLabels, HistogramValue]) -> None:
        for labels, (counts, total) in readings.items():
            server = (labels[1], labels[2])  # address and port
            address = labels[1]
            if server not in self._servers and address != OTHER:
                if len(self._servers) >= HTTP_SERVERS:
                    continue  # its series end here (see the module's docs)
                self._servers.add(server)
            old = self._http.get(labels)
            if old is not None:
                counts = tuple(a + b for a, b in zip(old[0], counts, strict=True))
                total += old[1]
            self._http[labels] = (counts, total)


remains = Remains()


@_fork.in_child
def _renew() -> None:
    remains.lock = threading.Lock()


def _collected(obj: object) -> None:
    # A finalizer must not raise (it would print "Exception ignored"), nor lose the counts of
    # a healthy object for the sake of a broken one: each object is read on its own.
    try:
        if isinstance(obj, HttpStats):
            remains.http_collected(obj)
        else:
            remains.policy_collected(obj)  # type: ignore[arg-type]
    except Exception:  # pragma: no cover - interpreter shutdown, a half-built object
        pass


live.on_collected = _collected
