"""OpenTelemetry: observable instruments that read seawall's counts, and four histograms
recorded per event and handed to the SDK at collection, through ``opentelemetry-api`` only.

One :class:`OtelExporter` per meter provider owns the instruments of the meter ``seawall``
(versioned as the package). Counters and gauges are observable: their callbacks read every
live policy (one :func:`read_all` per collection, shared by all callbacks), so nothing runs
on a call's path for them. OpenTelemetry has no observable histogram, so the call duration,
retry attempts, bulkhead wait and HTTP client request duration histograms are recorded as
events happen, by recorders installed in :data:`seawall._stats.observers.observers`; only while an
SDK is behind the provider. Those histograms hold what happened after their recorders were
installed: calls (and HTTP attempts) made before OpenTelemetry was enabled are in the
Prometheus series (read from the policies' and transports' own counts) but not in
OpenTelemetry's.

The SDK's ``Histogram.record`` costs several microseconds, so the recorders do not call it on
the caller's thread: they append ``(record, value, attributes, context)`` to the exporter's
:class:`_Pending` deque (the attributes dict is built once per label combination; the context
is the caller's current OpenTelemetry context) and return. Every observable callback of the
exporter first drains that deque into the SDK histograms, passing each record's own context.
The SDK's collection (``SynchronousMeasurementConsumer.collect``) runs every observable
callback, under its collection lock, before it reads its storages, so what was recorded
before a collection is in it:

- every reader gets every record: a record handed over goes to every reader's storage (as a
  direct ``record`` call does), whichever reader's collection drained it; delta readers see
  it in the one delta that follows;
- exemplars stay tied to the caller's span (the trace-based filter and the reservoirs read
  the context passed); a record made with no context is handed over with
  :data:`_NO_SPAN` rather than an empty one, which the SDK would replace by the current
  context of the draining thread;
- ``force_flush`` and the final collection of ``shutdown`` collect, so they drain; an
  exporter that is no longer the active one still drains at its provider's collections;
- draining takes no lock of seawall's and calls nothing back into seawall: no lock order
  with the SDK's collection lock. Records are popped one by one, so concurrent drains (two
  providers' collections, a recording thread past the cap) hand each over once;
- what a user can see change: the SDK stamps a record when it is handed over, so an
  exemplar's timestamp, and the start time of a series' first cumulative point, are those of
  the collection that handed it over rather than of the call;
- bounded, and never on the caller's time: once :data:`_HAND_OVER_AT` records wait (no
  collection for that long), a background thread of seawall's hands them to the SDK; a
  recording thread that still finds :data:`_PENDING_CAP` waiting (the hand-over cannot keep
  up) hands over one record itself, paying the SDK's cost for that one record;
- a forked child starts with none waiting (its parent hands them over).

Costs nothing without an SDK: out of the box the exporter is bound to the API's global
provider. Until the application installs an SDK that is the API's proxy provider, whose
meter forwards nothing: the observable instruments are created through it (the API backs them
with real ones once an SDK provider is set), and the per-event recorders stay ``None``, so
the hot paths pay one ``is not None`` check each. How we learn that an SDK was set, in order
of preference:

1. Our proxy meter's ``on_set_meter_provider``, which the API calls on every proxy meter when
   ``set_meter_provider`` runs, is shadowed by an instance attribute that forwards to it and
   then installs the recorders (see :meth:`OtelExporter._hook`).
2. Every :func:`use` (``configure(otel=...)``) and :func:`setup_defaults` asks the API for the
   global provider again, so a missed notification is caught there.
3. An observable callback that fires proves an SDK is collecting: the exporter then goes live.

Instruments are never created twice on one provider: exporters are kept per provider (an SDK
meter hands back the instrument it already has, with the first instrument's callbacks, and
older SDKs warn), and the global proxy's exporter is filed under the SDK provider it ends up
forwarding to.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from typing import Any

from opentelemetry.context import Context, get_current
from opentelemetry.metrics import (
    CallbackOptions,
    Histogram,
    Meter,
    MeterProvider,
    NoOpMeter,
    Observation,
    get_meter_provider,
)

from seawall import _fork
from seawall._stats.http import HttpLabels
from seawall._stats.observers import observers
from seawall.metrics import _config
from seawall.metrics._catalogue import CATALOGUE, Metric, by_name
from seawall.metrics._readings import Reading, read_all

__all__ = [
    "METER_NAME",
    "OtelExporter",
    "active_exporter",
    "attribute_keys",
    "setup_defaults",
    "use",
]

logger = logging.getLogger("seawall.metrics")

METER_NAME = "seawall"

#: OpenTelemetry attribute keys that differ from the Prometheus label names: the HTTP client
#: series is the semantic-convention ``http.client.request.duration``, with its attributes.
_SEMCONV_KEYS: dict[str, dict[str, str]] = {
    "seawall_http_client_request_duration_seconds": {
        "http_request_method": "http.request.method",
        "server_address": "server.address",
        "server_port": "server.port",
        "http_response_status_code": "http.response.status_code",
        "error_type": "error.type",
    }
}

#: A reading serves every callback of one collection; this bounds how stale it may get when
#: a collection calls only some of the callbacks (see :class:`_SharedReading`).
_READING_MAX_AGE = 0.5
#: Attribute dicts kept per recorder; beyond this many label combinations (only reachable with
#: policies created by the thousand under distinct names) they are built per event.
_ATTRIBUTE_CACHE_CAP = 10_000

#: Records waiting for the next collection, per exporter, past which a background thread hands
#: them to the SDK (a service making more histogram records between two collections than this
#: pays the SDK's cost on that thread, not on its callers').
_HAND_OVER_AT = 16_384
#: Past this many waiting, a recording thread hands one record over itself: the bound on the
#: memory they take. A record is a 4-tuple and a float, about 104 bytes with its place in the
#: deque: 6.8 MB at most.
_PENDING_CAP = 65_536
#: Records the hand-over thread hands over at a time (a collection waits for one batch).
_BATCH = 256

#: What a record made with no current context is handed over with: ``Histogram.record`` reads
#: an empty context as "none given" and would take the current context of the thread that
#: hands it over. This one holds no span (so no exemplar filter sees a sampled one), as the
#: empty context did, and is not empty.
_NO_SPAN = Context({"seawall.recorded-without-context": True})

#: The histograms recorded per event, by Prometheus name.
_CALL_DURATION = "seawall_call_duration_seconds"
_RETRY_ATTEMPTS = "seawall_retry_attempts"
_BULKHEAD_WAIT = "seawall_bulkhead_wait_seconds"
_HTTP_REQUEST_DURATION = "seawall_http_client_request_duration_seconds"

_PROXY_METER_TYPE: type[Meter] | None
try:
    # Private, used only to recognise the API's proxy meter; duck typing is the fallback.
    from opentelemetry.metrics._internal import _ProxyMeter

    _PROXY_METER_TYPE = _ProxyMeter
except ImportError:  # pragma: no cover - a future opentelemetry-api
    _PROXY_METER_TYPE = None


def _context_getter() -> Callable[[], Context]:
    """``opentelemetry.context.get_current``, or what it returns without its two Python frames:
    the API's default runtime context keeps the current context in a ``ContextVar``, whose
    ``get`` this is. Private names, read once: any other runtime context (or a future API) gets
    the public function."""
    try:
        from opentelemetry import context as api_context
        from opentelemetry.context.contextvars_context import ContextVarsRuntimeContext

        runtime = api_context._RUNTIME_CONTEXT
        if type(runtime) is ContextVarsRuntimeContext:
            getter: Callable[[], Context] = runtime._current_context.get
            return getter
    except (ImportError, AttributeError):  # pragma: no cover - a future opentelemetry-api
        pass
    return get_current  # pragma: no cover - a runtime context configured otherwise


def attribute_keys(metric: Metric) -> tuple[str, ...]:
    """The OpenTelemetry attribute keys of ``metric``'s labels, in label order."""
    keys = _SEMCONV_KEYS.get(metric.name, {})
    return tuple(keys.get(label, label) for label in metric.labels)


def _is_proxy(meter: Meter) -> bool:
    """The API's proxy meter (the global provider before an SDK is set): it forwards to a real
    meter once ``set_meter_provider`` runs, and until then does nothing."""
    if _PROXY_METER_TYPE is not None and isinstance(meter, _PROXY_METER_TYPE):
        return True
    return callable(getattr(meter, "on_set_meter_provider", None))


def _version() -> str:
    import seawall  # here: seawall imports this module while it initialises

    return seawall.__version__


class _SharedReading:
    """One :func:`read_all` per collection, shared by the callbacks of all instruments.

    A collection calls every callback once, so a callback that finds its own instrument
    already served from the current reading knows a new collection has begun and reads
    afresh. Readings older than ``_READING_MAX_AGE`` are never reused.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._readings: dict[str, Reading] | None = None
        self._served: set[str] = set()
        self._at = 0.0
        self.reads = 0  # how many times every policy was read, for tests

    def get(self, name: str) -> Reading:
        with self._lock:
            now = time.monotonic()
            if self._readings is None or name in self._served or now - self._at > _READING_MAX_AGE:
                self._readings = read_all()
                self._served = set()
                self._at = now
                self.reads += 1
            self._served.add(name)
            return self._readings[name]


#: One histogram record made on a caller's thread: the histogram's ``record``, the value, the
#: attributes and the OpenTelemetry context current when it was made.
PendingRecord = tuple[Callable[..., None], float, dict[str, Any], Context]


class _Pending:
    """Histogram records waiting to be handed to the SDK, oldest first.

    The recorders only append (one ``deque.append``, atomic in CPython, also in free-threaded
    builds); drains pop them one at a time, so records appended by any number of threads,
    drained by any number of threads at once, each reach the SDK exactly once. A collection's
    drain (:meth:`drain`) and the hand-over thread's batches hold ``_handing``, so a collection
    never misses a record the hand-over thread has popped but not yet handed over; a recording
    thread past the cap hands over its one record without it (never waiting on a batch).
    """

    __slots__ = ("_handing", "_thread", "_wake", "cap", "hand_over_at", "queue")

    def __init__(self, cap: int, hand_over_at: int) -> None:
        self.queue: deque[PendingRecord] = deque()
        self.cap = cap
        self.hand_over_at = hand_over_at
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._handing = threading.Lock()

    def overflow(self) -> None:
        """Called by a recorder that found :attr:`hand_over_at` records or more waiting."""
        if len(self.queue) >= self.cap:
            self._hand(1)  # the hand-over cannot keep up: one record, on this thread
            return
        thread = self._thread
        if thread is None or not thread.is_alive():  # the first time, or in a forked child
            thread = threading.Thread(
                target=self._hand_over, name="seawall-otel-hand-over", daemon=True
            )
            self._thread = thread
            thread.start()
        self._wake.set()

    def _hand_over(self) -> None:
        wake = self._wake
        while True:
            wake.wait()
            wake.clear()
            # In batches: a collection waits for one batch at most.
            while True:
                with self._handing:
                    if not self._hand(_BATCH):
                        break

    def renew(self) -> None:
        """In a forked child: nothing waiting (its parent hands those over), no thread."""
        self.queue.clear()
        self._wake = threading.Event()
        self._thread = None
        self._handing = threading.Lock()

    def drain(self, limit: int | None = None) -> int:
        """Hand every record made before this call (at most ``limit``) to the SDK, each with
        the context it was made in (so exemplars stay tied to the caller's span), once no
        hand-over batch is under way. How many it handed over."""
        with self._handing:
            return self._hand(limit)

    def _hand(self, limit: int | None) -> int:
        popleft = self.queue.popleft
        handed = 0
        waiting = len(self.queue)
        for _ in range(waiting if limit is None else min(limit, waiting)):  # drains end
            try:
                record, value, attributes, context = popleft()
            except IndexError:  # another thread drained them
                break
            try:
                record(value, attributes, context or _NO_SPAN)
            except Exception:  # pragma: no cover - the SDK logs rather than raises
                logger.debug("seawall could not record a histogram value", exc_info=True)
            handed += 1
        return handed


Recorders = tuple[
    Callable[[str, str, float], None],
    Callable[[str, int], None],
    Callable[[str, float], None],
    Callable[[HttpLabels, float], None],
]


class OtelExporter:
    """seawall's instruments on one meter provider's meter ``seawall``.

    Its callbacks report only while it is the active exporter (see :func:`use`); its
    histograms are created, and its recorders installed, once an SDK is behind the meter.
    """

    def __init__(self, provider: MeterProvider, meter: Meter) -> None:
        self.provider = provider
        self.meter = meter
        self._reading = _SharedReading()
        self.pending = _Pending(_PENDING_CAP, _HAND_OVER_AT)
        self._histograms: dict[str, Histogram] = {}
        self._recorders: Recorders | None = None
        self.proxy = _is_proxy(meter)
        # For a proxy meter: the provider it forwards to (None: not known yet), whether that
        # is an SDK (a NoOpMeterProvider is not), whether its instruments were backed by real
        # ones through our hook, and whether that provider had seawall's instruments already
        # (then this exporter never reports: the other one serves).
        self.bound_to: MeterProvider | None = None
        self.backed = False
        self.forwarded = False
        self.superseded = False
        self.instruments: dict[str, Any] = {}
        for metric in CATALOGUE:
            if metric.kind == "counter":
                self.instruments[metric.name] = meter.create_observable_counter(
                    metric.otel_name, [self._callback(metric)], metric.unit, metric.help
                )
            elif metric.kind == "gauge":
                self.instruments[metric.name] = meter.create_observable_gauge(
                    metric.otel_name, [self._callback(metric)], metric.unit, metric.help
                )
        if self.proxy:
            self._hook()
        elif self.live:
            self._create_histograms()

    @property
    def live(self) -> bool:
        """Whether an SDK is behind the meter, so that recording costs something and counts."""
        if isinstance(self.meter, NoOpMeter):
            return False
        if self.proxy:
            return self.backed and not self.superseded
        return True

    # -- observable instruments --------------------------------------------------------------

    def _callback(self, metric: Metric) -> Callable[[CallbackOptions], Iterable[Observation]]:
        name, keys = metric.name, attribute_keys(metric)

        def observe(options: CallbackOptions) -> Iterable[Observation]:
            # The SDK runs every callback before it reads its storages: the histogram
            # records made since the last collection reach every reader's storage first.
            self.pending.drain()
            if _active is not self:
                return ()
            if self.proxy and not self.backed:
                _live_from_callback(self)
            values = self._reading.get(name).values
            return [
                Observation(value, dict(zip(keys, labels, strict=True)))
                for labels, value in values.items()
            ]

        return observe

    # -- histograms: recorded per event, handed to the SDK at collection ----------------------

    def _create_histograms(self) -> None:
        for metric in CATALOGUE:
            if metric.kind == "histogram" and metric.name not in self._histograms:
                self._histograms[metric.name] = _create_histogram(self.meter, metric)
                self.instruments[metric.name] = self._histograms[metric.name]

    def recorders(self) -> Recorders:
        """The per-event recorders, built (with the histograms) on first use."""
        if self._recorders is None:
            self._create_histograms()
            pending = self.pending
            self._recorders = (
                _call_duration_recorder(self._histograms[_CALL_DURATION], pending),
                _policy_recorder(self._histograms[_RETRY_ATTEMPTS], pending),
                _policy_recorder(self._histograms[_BULKHEAD_WAIT], pending),
                _http_request_duration_recorder(self._histograms[_HTTP_REQUEST_DURATION], pending),
            )
        return self._recorders

    @property
    def reads(self) -> int:
        """How many times the callbacks read every live policy (for tests)."""
        return self._reading.reads

    # -- learning that an SDK was set behind the API's proxy ----------------------------------

    def _hook(self) -> None:
        # The API's _ProxyMeterProvider calls on_set_meter_provider(provider) on every proxy
        # meter it handed out when set_meter_provider runs; this one is ours alone (the proxy
        # provider creates one per get_meter call). An instance attribute shadows the method:
        # it forwards to the original (which backs our proxy instruments with real ones),
        # unless that provider already has seawall's instruments, then installs the recorders.
        # Should a future API stop calling it, use() and the callbacks still catch the SDK.
        original = getattr(self.meter, "on_set_meter_provider", None)
        if not callable(original):  # pragma: no cover - a future opentelemetry-api
            return

        def on_set_meter_provider(provider: MeterProvider) -> None:
            if _bind(self, provider, sdk=_is_sdk(provider)) and not self.forwarded:
                self.forwarded = True
                original(provider)
            _refresh(global_provider=provider)

        try:
            setattr(self.meter, "on_set_meter_provider", on_set_meter_provider)  # noqa: B010
        except (AttributeError, TypeError):  # pragma: no cover - slots in a future API
            logger.debug("seawall could not hook the OpenTelemetry proxy meter", exc_info=True)


def _create_histogram(meter: Meter, metric: Metric) -> Histogram:
    try:
        return meter.create_histogram(
            metric.otel_name,
            metric.unit,
            metric.help,
            explicit_bucket_boundaries_advisory=metric.buckets,
        )
    except TypeError:  # pragma: no cover - opentelemetry-api < 1.23 has no advisory
        return meter.create_histogram(metric.otel_name, metric.unit, metric.help)


# The recorders run on the callers' threads: they find the attributes dict (built once per
# label combination), append (record, value, attributes, current context) to the exporter's
# pending records, and past _HAND_OVER_AT waiting wake the hand-over (see _Pending.overflow).


def _queueing(histogram: Histogram, pending: _Pending) -> tuple[Any, Any, Any, int, Any]:
    """What a recorder binds as closure locals: the histogram's ``record``, the queue, its
    ``append``, the hand-over threshold and the overflow."""
    queue = pending.queue
    return histogram.record, queue, queue.append, pending.hand_over_at, pending.overflow


def _call_duration_recorder(
    histogram: Histogram, pending: _Pending
) -> Callable[[str, str, float], None]:
    record, queue, append, soon, overflow = _queueing(histogram, pending)
    current = _context_getter()
    # operation -> outcome -> attributes: no dict, and no key tuple, is built per call.
    cache: dict[str, dict[str, dict[str, str]]] = {}

    def call_duration(operation: str, outcome: str, seconds: float) -> None:
        by_outcome = cache.get(operation)
        attributes = None if by_outcome is None else by_outcome.get(outcome)
        if attributes is None:
            attributes = {"operation": operation, "outcome": outcome}
            if len(cache) < _ATTRIBUTE_CACHE_CAP:
                cache.setdefault(operation, {})[outcome] = attributes
        append((record, seconds, attributes, current()))
        if len(queue) >= soon:
            overflow()

    return call_duration


def _policy_recorder(histogram: Histogram, pending: _Pending) -> Callable[[str, float], None]:
    record, queue, append, soon, overflow = _queueing(histogram, pending)
    current = _context_getter()
    cache: dict[str, dict[str, str]] = {}

    def policy_event(policy: str, value: float) -> None:
        attributes = cache.get(policy)
        if attributes is None:
            attributes = {"policy": policy}
            if len(cache) < _ATTRIBUTE_CACHE_CAP:
                cache[policy] = attributes
        append((record, value, attributes, current()))
        if len(queue) >= soon:
            overflow()

    return policy_event


def _http_request_duration_recorder(
    histogram: Histogram, pending: _Pending
) -> Callable[[HttpLabels, float], None]:
    """``http.client.request.duration`` with the semantic conventions' attributes: the port
    and the status code as integers; ``http.response.status_code`` left out when there was no
    response, ``error.type`` when the attempt succeeded (``""`` in both labels: an empty
    Prometheus label is the same as no label)."""
    record, queue, append, soon, overflow = _queueing(histogram, pending)
    current = _context_getter()
    method_key, address_key, port_key, status_key, error_key = attribute_keys(
        by_name(_HTTP_REQUEST_DURATION)
    )
    # The label tuple is built once per attempt by HttpStats anyway: it is the cache key.
    cache: dict[HttpLabels, dict[str, str | int]] = {}

    def http_request_duration(labels: HttpLabels, seconds: float) -> None:
        attributes = cache.get(labels)
        if attributes is None:
            method, address, port, status, error_type = labels
            attributes = {method_key: method, address_key: address, port_key: int(port)}
            if status:
                attributes[status_key] = int(status)
            if error_type:
                attributes[error_key] = error_type
            if len(cache) < _ATTRIBUTE_CACHE_CAP:
                cache[labels] = attributes
        append((record, seconds, attributes, current()))
        if len(queue) >= soon:
            overflow()

    return http_request_duration


# -- which provider: module state ---------------------------------------------------------------

# Held only for quick bookkeeping. Never held while calling into the API's global functions or
# the proxy provider (which call back into _bind under their own locks), and never taken
# blockingly by a callback (which runs under the SDK's collection lock).
_lock = threading.RLock()


@_fork.in_child
def _renew() -> None:
    global _lock
    _lock = threading.RLock()
    for _, exporter in list(_exporters.values()):
        exporter._reading._lock = threading.Lock()
        # The parent hands these to its SDK: the child's copy of the SDK must not get them too.
        exporter.pending.renew()


#: Exporters by id(provider), with the provider kept alive so the id stays its own.
_exporters: dict[int, tuple[MeterProvider, OtelExporter]] = {}
#: True: the API's global provider; False: off; a provider: that one; None: not yet set up.
_target: MeterProvider | bool | None = None
_generation = 0
#: The exporter whose callbacks report and whose recorders are installed, if any.
_active: OtelExporter | None = None
_installed: Recorders | None = None


def _lookup(provider: MeterProvider) -> OtelExporter | None:
    entry = _exporters.get(id(provider))
    return None if entry is None or entry[0] is not provider else entry[1]


def _exporter_for(provider: MeterProvider) -> OtelExporter:
    with _lock:
        exporter = _lookup(provider)
    if exporter is not None:
        return exporter
    meter = provider.get_meter(METER_NAME, _version())  # outside the lock: see _lock
    with _lock:
        exporter = _lookup(provider)
        if exporter is None:
            exporter = OtelExporter(provider, meter)
            _exporters[id(provider)] = (provider, exporter)
        return exporter


def _is_sdk(provider: MeterProvider) -> bool:
    """Whether ``provider`` records anything (the API's NoOpMeterProvider, or an SDK disabled
    by ``OTEL_SDK_DISABLED``, hands out no-op meters)."""
    try:
        return not isinstance(provider.get_meter(METER_NAME, _version()), NoOpMeter)
    except Exception:  # pragma: no cover - a provider of unknown make
        logger.debug("seawall could not get a meter from %r", provider, exc_info=True)
        return False


def _bind(exporter: OtelExporter, provider: MeterProvider, *, sdk: bool) -> bool:
    """The proxy meter of ``exporter`` forwards to ``provider`` (the new global provider):
    file the exporter under that provider, unless the provider has seawall's instruments
    already. Whether the proxy's instruments should be backed by real ones."""
    with _lock:
        if exporter.bound_to is None:
            exporter.bound_to = provider
            existing = _lookup(provider)
            if existing is None:
                _exporters[id(provider)] = (provider, exporter)
            else:
                # Backing the proxy's instruments too would create seawall's instruments
                # twice on that provider's meter: the exporter already there serves for both.
                exporter.superseded = True
                _exporters[id(exporter.provider)] = (exporter.provider, existing)
        exporter.backed = exporter.backed or sdk
        return exporter.bound_to is provider and not exporter.superseded


def _refresh(global_provider: MeterProvider | None = None) -> None:
    """Make the exporter of the current target the active one, and install its recorders
    if an SDK is behind it (or remove ours if not)."""
    global _active
    with _lock:
        target, generation = _target, _generation
    if target is None or target is False:
        exporter = None
    elif target is True:
        provider = global_provider or get_meter_provider()
        _adopt_missed_global(provider)
        exporter = _exporter_for(provider)
    else:
        exporter = _exporter_for(target)
    with _lock:
        if generation != _generation:
            return  # a later use() has refreshed, or will
        _active = exporter
        _install(exporter.recorders() if exporter is not None and exporter.live else None)


def _adopt_missed_global(provider: MeterProvider) -> None:
    """The global provider is one we have no exporter for, while our proxy meter has not been
    told of any: the API set it without our hook hearing (a future API, or this runs between
    the API storing the provider and notifying the proxies). The API backs the proxy's
    instruments, so file the proxy's exporter under the provider rather than make a second
    set of instruments there."""
    with _lock:
        if _lookup(provider) is not None:
            return
        orphans = [
            exporter
            for _, exporter in _exporters.values()
            if exporter.proxy and exporter.bound_to is None and exporter.provider is not provider
        ]
    for exporter in orphans:
        _bind(exporter, provider, sdk=_is_sdk(provider))


def _live_from_callback(exporter: OtelExporter) -> None:
    # A callback ran, so an SDK is collecting through this proxy: it records. Non-blocking:
    # the caller holds the SDK's collection lock, which a thread holding _lock may be
    # waiting for (creating instruments); the next collection tries again.
    if not _lock.acquire(blocking=False):
        return
    try:
        if _active is exporter and not exporter.superseded:
            exporter.backed = True
            _install(exporter.recorders())
    finally:
        _lock.release()


def _install(recorders: Recorders | None) -> None:
    """Set the per-event hooks (``None``: unset those we set, leave others' alone)."""
    global _installed
    if recorders is None:
        if _installed is not None:
            call_duration, retry_attempts, bulkhead_wait, http_request_duration = _installed
            if observers.call_exporter is call_duration:
                observers.set_call_exporter(None)
            if observers.retry_attempts is retry_attempts:
                observers.retry_attempts = None
            if observers.bulkhead_wait is bulkhead_wait:
                observers.bulkhead_wait = None
            if observers.http_request_duration is http_request_duration:
                observers.http_request_duration = None
    else:
        call_duration, retry_attempts, bulkhead_wait, http_request_duration = recorders
        observers.set_call_exporter(call_duration)
        observers.retry_attempts = retry_attempts
        observers.bulkhead_wait = bulkhead_wait
        observers.http_request_duration = http_request_duration
    _installed = recorders


def use(otel: MeterProvider | bool) -> None:
    """Report through ``otel``: a meter provider, ``True`` for the API's global one, ``False``
    for nowhere. Instruments already made for a provider are reused, never made twice."""
    global _target, _generation
    with _lock:
        _target = otel
        _generation += 1
    _refresh()


def setup_defaults() -> None:
    """Out of the box: the global provider, unless configured already; re-checked if so."""
    with _lock:
        configured = _target is not None
    if configured:
        _refresh()
    else:
        use(True)


def active_exporter() -> OtelExporter | None:
    """The exporter reporting now, if any."""
    return _active


# Last: the out-of-the-box setup may have waited for this module (see _config.resume).
_config.resume(__name__)
