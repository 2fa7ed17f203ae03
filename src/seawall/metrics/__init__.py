"""seawall's metrics: one catalogue, exported to Prometheus and OpenTelemetry.

Out of the box, ``import seawall`` puts seawall's collector in prometheus-client's default
registry (so an application's existing ``/metrics`` shows its series) and creates its
OpenTelemetry instruments on the global meter provider (no-op until the application installs
an SDK); each as soon as the application imports the library, which seawall itself does not
import until then. :func:`configure` chooses other registries or providers, or turns either
off.

In OpenTelemetry the instruments belong to the meter ``seawall`` (at the package's version);
counters and gauges are observable, read from the policies at each collection, and the three
histograms (call duration, retry attempts, bulkhead wait) are recorded per event once an SDK
is behind the provider, so they hold what happened from then on.
"""

from __future__ import annotations

import typing as _typing

from seawall.metrics import _remains  # noqa: F401  (installs the hook that keeps counts)
from seawall.metrics._catalogue import CATALOGUE, Metric
from seawall.metrics._config import configure

if _typing.TYPE_CHECKING:
    from seawall.metrics._multiprocess import flush
    from seawall.metrics._prometheus import SeawallCollector

__all__ = ["CATALOGUE", "Metric", "SeawallCollector", "configure", "flush"]


def __getattr__(name: str) -> _typing.Any:
    # These two import prometheus-client: only when asked for (``import seawall`` imports
    # this package, and must not pay for prometheus-client).
    value: _typing.Any
    if name == "flush":
        from seawall.metrics import _multiprocess

        value = _multiprocess.flush
    elif name == "SeawallCollector":
        from seawall.metrics import _prometheus

        value = _prometheus.SeawallCollector
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
