"""httpx transports that make every request resilient: per-host circuit breakers, bulkheads
and retry budgets, retries that honour ``Retry-After``, deadlines passed down as request
timeouts, and per-attempt metrics (``seawall_http_client_request_duration_seconds``).

Needs httpx (``pip install seawall[httpx]``)::

    client = httpx.Client(transport=seawall.httpx.ResilientTransport())
    client = httpx.AsyncClient(transport=seawall.httpx.AsyncResilientTransport())

Errors raised by the transports are httpx errors too: :class:`CircuitOpenHTTPError` and
:class:`BulkheadFullHTTPError` are :class:`httpx.TransportError`, :class:`TimeoutHTTPError`
an :class:`httpx.TimeoutException`, so ``except httpx.HTTPError`` keeps working.
"""

from __future__ import annotations

try:
    import httpx as _httpx  # noqa: F401
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError(
        "seawall.httpx needs httpx: install it with `pip install seawall[httpx]`"
    ) from exc

from seawall.httpx._errors import (
    BackpressureResponse,
    BulkheadFullHTTPError,
    CircuitOpenHTTPError,
    FailureResponse,
    TimeoutHTTPError,
)
from seawall.httpx._transport import (
    DEFAULT_RETRY_METHODS,
    AsyncResilientTransport,
    ResilientTransport,
    default_classify,
    default_policy,
    parse_retry_after,
)

__all__ = [
    "DEFAULT_RETRY_METHODS",
    "AsyncResilientTransport",
    "BackpressureResponse",
    "BulkheadFullHTTPError",
    "CircuitOpenHTTPError",
    "FailureResponse",
    "ResilientTransport",
    "TimeoutHTTPError",
    "default_classify",
    "default_policy",
    "parse_retry_after",
]
