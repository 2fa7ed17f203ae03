"""seawall: circuit breakers, timeouts, retries and bulkheads for sync and async Python,
with SLI metrics for Prometheus and OpenTelemetry."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError as _PackageNotFoundError
from importlib.metadata import version as _version

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
from seawall._fallback import Fallback
from seawall._retry import Retry, RetrySnapshot
from seawall._timeout import Timeout

try:
    __version__ = _version("seawall")
except _PackageNotFoundError:  # pragma: no cover - running from a source tree without install
    __version__ = "0.0.0"

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
    "__version__",
    "remaining",
]

# Out of the box: seawall's series appear wherever prometheus-client's default registry is
# exposed, and in OpenTelemetry once the application installs an SDK.
from seawall.metrics._config import setup_defaults as _setup_metrics

_setup_metrics()
