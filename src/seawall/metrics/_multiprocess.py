"""Prometheus multiprocess mode (gunicorn with ``PROMETHEUS_MULTIPROC_DIR``): a mirror.

seawall's normal exporter is a custom collector that reads the policies' counts when scraped.
In multiprocess mode that cannot work: the scrape is served by one worker, which cannot read
the other workers' memory, and prometheus-client's ``MultiProcessCollector`` merges only the
per-process files that its own metric objects write. So, in that mode, seawall keeps
prometheus-client ``Counter``, ``Gauge`` and ``Histogram`` objects with the catalogue's names,
help texts and labels, and pushes its counts into them: at :func:`flush`, every ``interval``
seconds from a daemon thread, before the process forks, and at exit. The success path still
makes no call into prometheus-client; a flush costs a read of every live policy.

What a scrape shows, merged across the worker processes:

- counters and histograms: the sum over every process that ever wrote them, dead ones
  included (counters never go down when a worker is replaced);
- ``seawall_circuit_breaker_state`` (``livemax``): 1 for a state when any live process has a
  breaker of that name in it, so ``state="open"`` reads 1 when it is open in any worker
  (several states can read 1 at once: each worker has its own breaker, unless the breakers
  share their state, ``seawall.redis``);
- ``seawall_shared_state_up`` (``livemin``): 0 when any live worker lost the shared state;
- ``seawall_circuit_breaker_open_duration_seconds`` and ``_next_probe_seconds``
  (``livemax``): the longest over the live workers;
- ``seawall_bulkhead_active``, ``_queued`` and ``_limit`` (``livesum``): summed over the live
  workers. The limits add up because the active calls do, so active / limit stays the
  fleet's saturation.

"Live" means not yet passed to prometheus-client's ``multiprocess.mark_process_dead(pid)``:
a dead worker's gauges count until the server says it is dead (gunicorn's ``child_exit``
hook below), then they no longer do; its counters always count.

The recipe (gunicorn)::

    # Environment, before gunicorn starts (before prometheus_client is first imported):
    #   PROMETHEUS_MULTIPROC_DIR=/run/myapp/prometheus   an empty directory, wiped at start

    # gunicorn.conf.py
    import os, pathlib, shutil
    from prometheus_client import multiprocess

    def on_starting(server):  # a fresh directory for each server start
        path = pathlib.Path(os.environ["PROMETHEUS_MULTIPROC_DIR"])
        shutil.rmtree(path, ignore_errors=True)
        path.mkdir(parents=True)

    def child_exit(server, worker):  # a dead worker's gauges stop counting
        multiprocess.mark_process_dead(worker.pid)

    # The app's /metrics: a fresh registry per request, not the default registry.
    from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
    from prometheus_client.multiprocess import MultiProcessCollector

    def metrics():
        registry = CollectorRegistry()
        MultiProcessCollector(registry)
        return generate_latest(registry), CONTENT_TYPE_LATEST

``import seawall`` then turns the mirror on by itself (and does not put its collector in the
default registry, which must not be exposed in this mode). Both ``preload_app`` settings work.

Delays and losses, by design: a series shows a worker's calls up to ``interval`` seconds late.
A worker that exits normally (``sys.exit``, gunicorn's graceful exit) flushes at exit; one
killed by a signal or ending in ``os._exit`` loses at most its last ``interval`` of counts.
A policy that is garbage-collected keeps its counts: they are pushed with the next flush.

Forks (gunicorn forks its workers from the master): no seawall thread runs while a process
forks. Just before, the mirror stops its thread and flushes, so the parent's file holds every
count so far; the child inherits the policies with those counts *and* the record of what was
pushed, so it pushes only what its own calls add (pushing from zero would count the parent's
calls twice). prometheus-client gives the child its own file, starting at zero; the child
re-sets every gauge on its next flush and restarts the thread. Calls that another thread of
the parent makes between that flush and the fork itself are counted twice: fork from a quiet
process, as gunicorn's master is.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
from typing import Any, Literal

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, values

from seawall._validate import check_number
from seawall.metrics import _config
from seawall.metrics._catalogue import CATALOGUE, Metric
from seawall.metrics._readings import HistogramValue, Labels, read_all

__all__ = [
    "GAUGE_MODES",
    "Mirror",
    "disable",
    "enable",
    "enabled",
    "flush",
    "in_multiprocess_mode",
]

logger = logging.getLogger("seawall")

GaugeMode = Literal["livemax", "livemin", "livesum"]

#: How each gauge merges: across processes (prometheus-client's ``multiprocess_mode``) and,
#: the same way, across same-named policies inside one process.
GAUGE_MODES: dict[str, GaugeMode] = {
    "seawall_circuit_breaker_state": "livemax",
    "seawall_circuit_breaker_open_duration_seconds": "livemax",
    "seawall_circuit_breaker_next_probe_seconds": "livemax",
    "seawall_bulkhead_active": "livesum",
    "seawall_bulkhead_queued": "livesum",
    "seawall_bulkhead_limit": "livesum",
    "seawall_shared_state_up": "livemin",
}

Key = tuple[str, Labels]  # (family name, label values)


def in_multiprocess_mode() -> bool:
    """Whether prometheus-client writes its values to per-process files: true when
    ``PROMETHEUS_MULTIPROC_DIR`` was set before ``prometheus_client`` was first imported."""
    return bool(getattr(values.ValueClass, "_multiprocess", False))


def _make(metric: Metric, registry: CollectorRegistry | None) -> Counter | Gauge | Histogram:
    labels = metric.labels
    if metric.kind == "counter":
        # prometheus-client takes the "_total" off the name and writes it back on the sample.
        return Counter(metric.name, metric.help, labels, registry=registry)
    if metric.kind == "gauge":
        mode = GAUGE_MODES[metric.name]  # a new gauge needs its mode chosen here
        return Gauge(metric.name, metric.help, labels, registry=registry, multiprocess_mode=mode)
    return Histogram(metric.name, metric.help, labels, registry=registry, buckets=metric.buckets)


def _histogram_values(child: Histogram, slots: int) -> tuple[list[Any], Any] | None:
    """The per-bucket value objects (not cumulative, +Inf last) and the sum's value object of
    a labelled ``Histogram`` child, or ``None`` if this prometheus-client lays them out
    differently.

    prometheus-client has no public way to add counts to a bucket, and ``observe`` can add
    only one value at a time, so the mirror adds to the value objects ``observe`` itself
    increments (``_buckets[i].inc``, ``_sum.inc``; laid out so in 0.17.0, the oldest release
    seawall supports, and in 0.26.0). They are checked here, on each child before it is used:
    if a release lays them out otherwise, histograms are left out (and an error logged) rather
    than written wrong. The test suite checks that the installed release passes.
    """
    buckets = getattr(child, "_buckets", None)
    total = getattr(child, "_sum", None)
    if (
        isinstance(buckets, list)
        and len(buckets) == slots
        and all(callable(getattr(b, "inc", None)) for b in buckets)
        and callable(getattr(total, "inc", None))
    ):
        return buckets, total
    return None


class _Pushed:
    """What the mirror has pushed: counter values and histograms by series."""

    __slots__ = ("histograms", "values")

    def __init__(self) -> None:
        self.values: dict[Key, float] = {}
        self.histograms: dict[Key, HistogramValue] = {}


class Mirror:
    """prometheus-client metric objects for the catalogue, kept up to date by :meth:`flush`.

    The objects are registered in ``registry`` if one is given; the default, ``None``, is
    right for multiprocess mode, where prometheus-client's ``MultiProcessCollector`` reads what
    they write to their files. The mirror remembers what it pushed for each live policy and
    pushes only the difference, so flushing any number of times counts each call once.
    """

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.lock = threading.Lock()
        self._families = {metric.name: _make(metric, registry) for metric in CATALOGUE}
        self._children: dict[Key, Any] = {}
        self._histograms: dict[Key, tuple[list[Any], Any]] = {}
        self._pushed = _Pushed()
        self._gauges: dict[Key, float] = {}
        self._slots = {metric.name: len(metric.buckets) + 1 for metric in CATALOGUE}
        self._broken_histograms = False

    def flush(self) -> None:
        """Push what every live policy counted since the last flush."""
        with self.lock:
            self.flush_locked()

    def flush_locked(self) -> None:
        """:meth:`flush`, for a caller that holds :attr:`lock`."""
        # Totals by series over every source (the live policies and transports, and what the
        # collected ones counted): they never go down, so what was pushed for a series is
        # all the mirror needs to remember to push each count once.
        pushed = self._pushed
        counters: set[Key] = set()
        histograms: set[Key] = set()
        gauges: dict[Key, float] = {}
        for reading in read_all().values():
            metric = reading.metric
            if metric.kind == "counter":
                for labels, value in reading.values.items():
                    key = (metric.name, labels)
                    counters.add(key)
                    self._push_counter(key, value, pushed)
            elif metric.kind == "histogram":
                for labels, histogram in reading.histograms.items():
                    key = (metric.name, labels)
                    histograms.add(key)
                    self._push_histogram(key, histogram, pushed)
            else:
                for labels, value in reading.values.items():
                    gauges[(metric.name, labels)] = value
        # A series no source holds any more (a transport's host past the bound of kept
        # names): if it comes back, its new counts are pushed from zero.
        for key in pushed.values.keys() - counters:
            del pushed.values[key]
        for key in pushed.histograms.keys() - histograms:
            del pushed.histograms[key]
        for key in self._gauges.keys() - gauges.keys():
            gauges[key] = 0.0  # no live policy has this series any more
        for key, value in gauges.items():
            if self._gauges.get(key) != value:
                self._child(key).set(value)
                self._gauges[key] = value

    def forget_gauges(self) -> None:
        """Set every gauge again on the next flush (a forked child starts a file of its own)."""
        with self.lock:
            self._gauges.clear()

    def _child(self, key: Key) -> Any:
        child = self._children.get(key)
        if child is None:
            name, labels = key
            child = self._children[key] = self._families[name].labels(*labels)
        return child

    def _push_counter(self, key: Key, value: float, pushed: _Pushed) -> None:
        last = pushed.values.get(key)
        if last == value:
            return  # most series, most of the time
        # Created even at zero: rates need the series from the start.
        child = self._child(key)
        # A policy's counts never go down; a reading lower than the last (float rounding)
        # pushes nothing and becomes the new baseline.
        base = 0.0 if last is None else last
        if value > base:
            child.inc(value - base)
        pushed.values[key] = value

    def _push_histogram(self, key: Key, value: HistogramValue, pushed: _Pushed) -> None:
        old = pushed.histograms.get(key)
        if old == value:
            return
        target = self._histogram(key)
        if target is None:
            return
        buckets, total = target
        counts, sum_ = value
        old_counts, old_sum = old if old is not None else ((0,) * len(counts), 0.0)
        for bucket, new, was in zip(buckets, counts, old_counts, strict=True):
            if new > was:
                bucket.inc(new - was)
        if sum_ > old_sum:
            total.inc(sum_ - old_sum)
        pushed.histograms[key] = value

    def _histogram(self, key: Key) -> tuple[list[Any], Any] | None:
        target = self._histograms.get(key)
        if target is None and not self._broken_histograms:
            target = _histogram_values(self._child(key), self._slots[key[0]])
            if target is None:
                self._broken_histograms = True
                logger.error(
                    "seawall cannot add to prometheus-client's histograms in this release of "
                    "it; seawall's histograms are left out of the multiprocess files"
                )
            else:
                self._histograms[key] = target
        return target


_HTTP_DURATION = "seawall_http_client_request_duration_seconds"


# -- the process's mirror, its thread, and what happens at fork and exit ---------------------------

_control = threading.Lock()  # enable, disable, and the fork hooks; held across a fork
_mirror: Mirror | None = None
_enabled = False
_interval = 1.0
_thread: threading.Thread | None = None
_stop = threading.Event()
_hooks_installed = False


def enable(interval: float = 1.0) -> None:
    """Mirror seawall's series into prometheus-client's multiprocess files: now, then every
    ``interval`` seconds from a daemon thread, before each fork and at exit
    (``interval=math.inf``: no timer, only before each fork and at exit).

    Raises ``RuntimeError`` unless prometheus-client is in multiprocess mode (see
    :func:`in_multiprocess_mode`). Calling it again changes the interval.
    """
    global _mirror, _enabled, _interval, _hooks_installed
    seconds = check_number("interval", interval)
    if not in_multiprocess_mode():
        raise RuntimeError(
            "prometheus-client is not in multiprocess mode: set PROMETHEUS_MULTIPROC_DIR "
            "before prometheus_client is first imported"
        )
    with _control:
        if _mirror is None:
            _mirror = Mirror()
        if not _hooks_installed:
            os.register_at_fork(
                before=_before_fork,
                after_in_parent=_after_fork_in_parent,
                after_in_child=_after_fork_in_child,
            )
            atexit.register(_at_exit)
            _hooks_installed = True
        _stop_thread()
        _enabled, _interval = True, seconds
        _mirror.flush()
        _start_thread()


def disable() -> None:
    """Stop mirroring, after a last flush. The series already written stay in the files."""
    global _enabled
    with _control:
        if not _enabled:
            return
        _stop_thread()
        _enabled = False
        assert _mirror is not None
        _mirror.flush()


def enabled() -> bool:
    """Whether :func:`enable` is in force in this process."""
    return _enabled


def flush() -> None:
    """Push every live policy's counts to the multiprocess files now (when enabled; otherwise
    nothing). Cheap to call often: only what changed since the last flush is written."""
    mirror = _mirror
    if _enabled and mirror is not None:
        mirror.flush()


def _run(mirror: Mirror, stop: threading.Event, interval: float) -> None:
    failing = False
    # Beyond what a lock can wait for (interval=inf): no timer, only the fork and exit flushes.
    timeout = interval if interval < threading.TIMEOUT_MAX else None
    while not stop.wait(timeout):
        try:
            mirror.flush()
        except Exception:
            if not failing:  # once per run of failures, not once a second
                logger.exception("seawall could not write its multiprocess metrics")
            failing = True
        else:
            failing = False


def _start_thread() -> None:
    global _thread, _stop
    assert _mirror is not None
    _stop = threading.Event()
    _thread = threading.Thread(
        target=_run, args=(_mirror, _stop, _interval), name="seawall-metrics", daemon=True
    )
    _thread.start()


def _stop_thread() -> None:
    global _thread
    if _thread is not None:
        _stop.set()
        if _thread is not threading.current_thread():
            _thread.join(5.0)
        _thread = None


_flushed_for_fork = False  # whether _before_fork holds the mirror's lock


def _before_fork() -> None:
    global _flushed_for_fork
    _control.acquire()
    if not _enabled:
        return
    _stop_thread()
    assert _mirror is not None
    # Held across the fork, so that no other thread is inside a flush when it happens.
    _flushed_for_fork = _mirror.lock.acquire(timeout=5.0)
    if _flushed_for_fork:
        try:
            _mirror.flush_locked()
        except Exception:
            logger.exception("seawall could not write its multiprocess metrics before a fork")


def _after_fork_in_parent() -> None:
    if _enabled:
        assert _mirror is not None
        if _flushed_for_fork:
            _mirror.lock.release()
        _start_thread()
    _control.release()


def _after_fork_in_child() -> None:
    if _enabled:
        assert _mirror is not None
        _mirror.lock = threading.Lock()  # whoever held it is not in this process
        _mirror.forget_gauges()
        _start_thread()
    _control.release()


def _at_exit() -> None:
    if not _control.acquire(timeout=5.0):
        return
    try:
        if _enabled:
            _stop_thread()
            assert _mirror is not None
            _mirror.flush()
    except Exception:
        logger.exception("seawall could not write its multiprocess metrics at exit")
    finally:
        _control.release()


# Last: the out-of-the-box setup may have waited for this module (see _config.resume).
_config.resume(__name__)
