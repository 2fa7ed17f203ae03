"""Where seawall's metrics go: :func:`configure`, and the out-of-the-box setup."""

from __future__ import annotations

import threading

from prometheus_client import REGISTRY, CollectorRegistry

from seawall.metrics._prometheus import SeawallCollector

__all__ = ["configure", "setup_defaults"]

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
) -> None:
    """Choose where seawall's series go.

    ``prometheus``: a ``CollectorRegistry`` to expose them in (instead of wherever they were),
    ``True`` for prometheus-client's default registry, ``False`` for nowhere, ``None`` (the
    default) to leave as it is. Safe to call any number of times, before or after policies
    are created: series are read from the live policies when scraped, so none is lost.
    """
    if prometheus is not None and not isinstance(prometheus, bool | CollectorRegistry):
        raise TypeError(
            "prometheus must be a CollectorRegistry, True, False or None, "
            f"got {type(prometheus).__name__}"
        )
    with _lock:
        if prometheus is True:
            _use_registry(REGISTRY)
        elif prometheus is False:
            _use_registry(None)
        elif prometheus is not None:
            _use_registry(prometheus)


def setup_defaults() -> None:
    """What ``import seawall`` does: expose the series in the default registry."""
    with _lock:
        if _registry is None:
            _use_registry(REGISTRY)
