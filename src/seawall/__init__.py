"""seawall: circuit breakers, timeouts, retries and bulkheads for sync and async Python,
with SLI metrics for Prometheus and OpenTelemetry."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from seawall._breaker import (
    BreakerEvent,
    BreakerSnapshot,
    CallFailed,
    CallRejected,
    CircuitBreaker,
    CircuitState,
    StateChange,
)
from seawall._clock import Clock, SystemClock
from seawall._errors import (
    BulkheadFullError,
    CircuitOpenError,
    RejectedError,
    SeawallError,
    TimeoutExceededError,
)

try:
    __version__ = version("seawall")
except PackageNotFoundError:  # pragma: no cover - running from a source tree without install
    __version__ = "0.0.0"

__all__ = [
    "BreakerEvent",
    "BreakerSnapshot",
    "BulkheadFullError",
    "CallFailed",
    "CallRejected",
    "CircuitBreaker",
    "CircuitOpenError",
    "CircuitState",
    "Clock",
    "RejectedError",
    "SeawallError",
    "StateChange",
    "SystemClock",
    "TimeoutExceededError",
    "__version__",
]
