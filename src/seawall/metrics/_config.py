"""Where seawall's metrics go: :func:`configure`, and the out-of-the-box setup."""

from __future__ import annotations

import threading

from opentelemetry.metrics import MeterProvider
from prometheus_client import REGISTRY, CollectorRegistry

from seawall import _fork
from seawall.metrics import _multiprocess, _otel
from seawall.metrics._prometheus import SeawallCollector

__all__ = ["configure", "setup_defaults"]

_lock = threading.Lock()


@_fork.in_child
def _renew() -> None:
    global _lock
    _lock = threading.Lock()


_collector = SeawallCollector()
_registry: CollectorRegistry | None = None


def _use_registry(registry: CollectorRegistry | None) -> None:
    global _registry
    if registry is _registry:
        return  # configuring the same registry twice is not a duplicate registration
    if _registry is not None:
        _registry.unregister(_collector)
        _registry = None
    if registry is not None:
        registry.register(_collector)
        _registry = registry


def configure(
    *,
    prometheus: CollectorRegistry | bool | None = None,
    otel: MeterProvider | bool | None = None,
) -> None:
    """Choose where seawall's series go.

    ``prometheus``: a ``CollectorRegistry`` to expose them in (instead of wherever they were),
    ``True`` for prometheus-client's default registry (in its multiprocess mode, its
    per-process files instead), ``False`` for nowhere, ``None`` (the default) to leave as it is.

    ``otel``: an OpenTelemetry ``MeterProvider`` to report through (instead of the global one),
    ``True`` for the global provider (``opentelemetry.metrics.get_meter_provider()``, where
    seawall reports out of the box: nothing until the application installs an SDK, then through
    it, whether it is set before or after seawall is imported), ``False`` for nowhere, ``None``
    (the default) to leave as it is. Counters and gauges are read from the live policies at
    each collection. The histograms (call duration, retry attempts, bulkhead wait) are recorded
    per event once an SDK is behind the provider, so they hold only what happened after that;
    while none is, recording costs nothing.

    Safe to call any number of times, before or after policies are created: series are read
    from the live policies when scraped or collected, so none is lost, and a registry or
    provider seawall has used before gets no second registration or set of instruments.
    A wrong type raises ``TypeError`` before anything changes.
    """
    if prometheus is not None and not isinstance(prometheus, bool | CollectorRegistry):
        raise TypeError(
            "prometheus must be a CollectorRegistry, True, False or None, "
            f"got {type(prometheus).__name__}"
        )
    if otel is not None and not isinstance(otel, bool | MeterProvider):
        raise TypeError(
            f"otel must be an OpenTelemetry MeterProvider, True, False or None, "
            f"got {type(otel).__name__}"
        )
    with _lock:
        if prometheus is True:
            _use_default()
        elif prometheus is False:
            _multiprocess.disable()
            _use_registry(None)
        elif prometheus is not None:
            _multiprocess.disable()
            _use_registry(prometheus)
    # OpenTelemetry has its own lock: switching may call into the API, which may call back.
    if otel is not None:
        _otel.use(otel)


def setup_defaults() -> None:
    """What ``import seawall`` does: expose the series in the default registry (in
    prometheus-client's multiprocess mode, mirror them into its files instead: there the
    default registry must not be exposed), and create the OpenTelemetry instruments on the
    global meter provider."""
    with _lock:
        if _registry is None and not _multiprocess.enabled():
            _use_default()
    _otel.setup_defaults()


def _use_default() -> None:
    # In prometheus-client's multiprocess mode (PROMETHEUS_MULTIPROC_DIR set before it was
    # imported) the default registry is not what /metrics exposes: MultiProcessCollector
    # reads the per-process files, which seawall's mirror writes.
    if _multiprocess.in_multiprocess_mode():
        _use_registry(None)
        _multiprocess.enable()
    else:
        _multiprocess.disable()
        _use_registry(REGISTRY)
