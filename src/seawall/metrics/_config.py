"""Where seawall's metrics go: :func:`configure`, and the out-of-the-box setup.

Nothing here imports prometheus-client or opentelemetry-api until they are used: the
out-of-the-box setup of each waits until the application imports it (see
:mod:`seawall._on_import`), and :func:`configure` imports only what it is asked for.
"""

from __future__ import annotations

import os
import sys
import threading
from types import ModuleType
from typing import TYPE_CHECKING

from seawall import _fork
from seawall._on_import import after_import

if TYPE_CHECKING:
    from opentelemetry.metrics import MeterProvider
    from prometheus_client import CollectorRegistry

    from seawall.metrics._prometheus import SeawallCollector

__all__ = ["configure", "setup_defaults"]

PROMETHEUS = "prometheus_client"
OTEL = "opentelemetry.metrics"
_MULTIPROC_VARIABLES = ("PROMETHEUS_MULTIPROC_DIR", "prometheus_multiproc_dir")

# Reentrant: a module imported while it is held may run its after-import setup, which takes it.
_lock = threading.RLock()


@_fork.in_child
def _renew() -> None:
    global _lock
    _lock = threading.RLock()


_collector: SeawallCollector | None = None  # made on first use
_registry: CollectorRegistry | None = None
#: The out-of-the-box setup waits for the import of prometheus-client / opentelemetry-api;
#: a choice made through configure() replaces it.
_prometheus_default_waits = False
_otel_default_waits = False


def _multiprocess() -> ModuleType:
    import prometheus_client  # noqa: F401  (first: its after-import setup may need this module)

    from seawall.metrics import _multiprocess

    return _multiprocess


def _mirroring() -> bool:
    module = sys.modules.get("seawall.metrics._multiprocess")
    return module is not None and bool(module.enabled())


def _otel() -> ModuleType:
    import opentelemetry.metrics  # noqa: F401  (first: its after-import setup may need this module)

    from seawall.metrics import _otel

    return _otel


def _instance_of(value: object, module: str, name: str) -> bool:
    # An instance of a class of a module nobody has imported cannot exist: no import to check.
    loaded = sys.modules.get(module)
    return loaded is not None and isinstance(value, getattr(loaded, name))


def _the_collector() -> SeawallCollector:
    global _collector
    if _collector is None:
        import prometheus_client  # noqa: F401  (first: see _multiprocess)

        from seawall.metrics._prometheus import SeawallCollector

        _collector = SeawallCollector()
    return _collector


def _use_registry(registry: CollectorRegistry | None) -> None:
    global _registry
    if registry is _registry:
        return  # configuring the same registry twice is not a duplicate registration
    if _registry is not None:
        _registry.unregister(_the_collector())
        _registry = None
    if registry is not None:
        registry.register(_the_collector())
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
    global _prometheus_default_waits, _otel_default_waits
    if not (
        prometheus is None
        or isinstance(prometheus, bool)
        or _instance_of(prometheus, PROMETHEUS, "CollectorRegistry")
    ):
        raise TypeError(
            "prometheus must be a CollectorRegistry, True, False or None, "
            f"got {type(prometheus).__name__}"
        )
    if not (otel is None or isinstance(otel, bool) or _instance_of(otel, OTEL, "MeterProvider")):
        raise TypeError(
            f"otel must be an OpenTelemetry MeterProvider, True, False or None, "
            f"got {type(otel).__name__}"
        )
    if prometheus is not None:
        with _lock:
            _prometheus_default_waits = False
        # Off, with prometheus-client never imported: nothing was ever registered or mirrored.
        if prometheus is not False or PROMETHEUS in sys.modules:
            multiprocess = _multiprocess()  # imported before the lock is taken
            with _lock:
                if prometheus is True:
                    _use_default()
                else:
                    multiprocess.disable()
                    _use_registry(None if prometheus is False else prometheus)
    # OpenTelemetry has its own lock: switching may call into the API, which may call back.
    if otel is not None:
        with _lock:
            _otel_default_waits = False
        if otel is not False or "seawall.metrics._otel" in sys.modules:
            _otel().use(otel)


def setup_defaults() -> None:
    """What ``import seawall`` does: expose the series in the default registry (in
    prometheus-client's multiprocess mode, mirror them into its files instead: there the
    default registry must not be exposed), and create the OpenTelemetry instruments on the
    global meter provider.

    Each waits until the application imports the library (prometheus-client, the
    OpenTelemetry metrics API), unless it already has: nobody can read either before that.
    In prometheus-client's multiprocess mode (``PROMETHEUS_MULTIPROC_DIR`` set) the mirror
    starts at once, since a worker that never imports prometheus-client still writes the
    files the scraping process reads."""
    global _prometheus_default_waits, _otel_default_waits
    # prometheus-client's own test: either name set, whatever its value.
    now = PROMETHEUS in sys.modules or any(name in os.environ for name in _MULTIPROC_VARIABLES)
    with _lock:
        _prometheus_default_waits = True
    if now:
        _prometheus_imported()
    else:
        after_import(PROMETHEUS, _prometheus_imported)
    with _lock:
        _otel_default_waits = True
    after_import(OTEL, _otel_imported)


#: seawall's modules that import each library; while one of them is being imported (and so
#: imported the library), its setup cannot run yet: the module calls resume() at its end.
_PROMETHEUS_MODULES = ("seawall.metrics._multiprocess", "seawall.metrics._prometheus")
_OTEL_MODULES = ("seawall.metrics._otel",)


def _importing(names: tuple[str, ...], ready: str) -> bool:
    for name in names:
        module = sys.modules.get(name)
        spec = getattr(module, "__spec__", None)
        if name != ready and getattr(spec, "_initializing", False):
            return True
    return False


def resume(ready: str) -> None:
    """Run the out-of-the-box setup that waited for module ``ready`` (one of seawall's that
    import a library) to finish importing; called at the end of that module."""
    if PROMETHEUS in sys.modules and ready in _PROMETHEUS_MODULES:
        _prometheus_imported(ready)
    if OTEL in sys.modules and ready in _OTEL_MODULES:
        _otel_imported(ready)


def _prometheus_imported(ready: str = "") -> None:
    global _prometheus_default_waits
    if _importing(_PROMETHEUS_MODULES, ready):
        return
    _multiprocess()  # imported before the lock is taken
    _the_collector()
    with _lock:
        if not _prometheus_default_waits:
            return  # configure() chose since
        _prometheus_default_waits = False
        if _registry is None and not _mirroring():
            _use_default()


def _otel_imported(ready: str = "") -> None:
    global _otel_default_waits
    if _importing(_OTEL_MODULES, ready):
        return
    with _lock:
        if not _otel_default_waits:
            return  # configure() chose since
        _otel_default_waits = False
    _otel().setup_defaults()


def _use_default() -> None:
    # In prometheus-client's multiprocess mode (PROMETHEUS_MULTIPROC_DIR set before it was
    # imported) the default registry is not what /metrics exposes: MultiProcessCollector
    # reads the per-process files, which seawall's mirror writes.
    multiprocess = _multiprocess()
    if multiprocess.in_multiprocess_mode():
        _use_registry(None)
        multiprocess.enable()
    else:
        from prometheus_client import REGISTRY

        multiprocess.disable()
        _use_registry(REGISTRY)
