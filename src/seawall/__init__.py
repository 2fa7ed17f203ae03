"""seawall: circuit breakers, timeouts, retries and bulkheads for sync and async Python,
with SLI metrics for Prometheus and OpenTelemetry."""

from __future__ import annotations

from typing import Any as _Any

from seawall._breaker import (
    BreakerEvent,
    BreakerSnapshot,
    CallFailed,
    CallRejected,
    CircuitBreaker,
    CircuitState,
    StateChange,
)
from seawall._budget import BudgetSnapshot, RetryBudget
from seawall._bulkhead import Bulkhead, BulkheadSnapshot
from seawall._clock import Clock, SystemClock
from seawall._compose import Pipeline, Policy
from seawall._deadline import remaining
from seawall._errors import (
    BulkheadFullError,
    CircuitOpenError,
    RejectedError,
    SeawallError,
    TimeoutExceededError,
)
from seawall._fallback import Fallback, FallbackSnapshot
from seawall._retry import Retry, RetrySnapshot
from seawall._timeout import Timeout, TimeoutSnapshot
from seawall.metrics._config import setup_defaults as _setup_metrics

__version__: str  # read from the installed distribution on first use: see __getattr__

__all__ = [
    "BreakerEvent",
    "BreakerSnapshot",
    "BudgetSnapshot",
    "Bulkhead",
    "BulkheadFullError",
    "BulkheadSnapshot",
    "CallFailed",
    "CallRejected",
    "CircuitBreaker",
    "CircuitOpenError",
    "CircuitState",
    "Clock",
    "Fallback",
    "FallbackSnapshot",
    "Pipeline",
    "Policy",
    "RejectedError",
    "Retry",
    "RetryBudget",
    "RetrySnapshot",
    "SeawallError",
    "StateChange",
    "SystemClock",
    "Timeout",
    "TimeoutExceededError",
    "TimeoutSnapshot",
    "__version__",
    "remaining",
]


def __getattr__(name: str) -> _Any:
    # importlib.metadata costs tens of milliseconds to import: the version is looked up when
    # first asked for, then kept as an ordinary module attribute.
    if name == "__version__":
        from importlib.metadata import PackageNotFoundError, version

        try:
            value = version("seawall")
        except PackageNotFoundError:  # pragma: no cover - a source tree without install
            value = "0.0.0"
        globals()["__version__"] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), "__version__"})


# Out of the box: seawall's series appear wherever prometheus-client's default registry is
# exposed, and in OpenTelemetry once the application installs an SDK.
_setup_metrics()
