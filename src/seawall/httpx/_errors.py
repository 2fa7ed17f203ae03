"""The exceptions of seawall's httpx transports: seawall errors that are also httpx errors,
and the internal carriers of failed and back-pressure responses."""

from __future__ import annotations

import httpx

from seawall._errors import (
    BulkheadFullError,
    CircuitOpenError,
    SeawallError,
    TimeoutExceededError,
)

__all__ = [
    "BackpressureResponse",
    "BulkheadFullHTTPError",
    "CircuitOpenHTTPError",
    "FailureResponse",
    "TimeoutHTTPError",
    "to_httpx_error",
]


class CircuitOpenHTTPError(CircuitOpenError, httpx.TransportError):
    """The host's circuit breaker is open: also an :class:`httpx.TransportError`."""


class BulkheadFullHTTPError(BulkheadFullError, httpx.TransportError):
    """The host's bulkhead is full: also an :class:`httpx.TransportError`."""


class TimeoutHTTPError(TimeoutExceededError, httpx.TimeoutException):
    """A seawall timeout passed: also an :class:`httpx.TimeoutException` (and a builtin
    :class:`TimeoutError`)."""


class FailureResponse(SeawallError):
    """Raised inside a transport's policy for a response classified as a failure (by default
    a 5xx), so that retries and the breaker see it; the caller gets ``response`` back.

    ``error_type`` (the status code) is the ``error_type`` label of the call-level SLI.
    """

    def __init__(self, response: httpx.Response, retry_after: float | None = None) -> None:
        super().__init__(f"HTTP {response.status_code}")
        self.response = response
        self.error_type = str(response.status_code)
        #: Seconds the server asked to wait (``Retry-After``, capped), if it said.
        self.retry_after = retry_after

    def __reduce__(self) -> tuple[object, ...]:  # pragma: no cover - responses do not pickle
        raise TypeError(f"{type(self).__name__} carries a live response and cannot be pickled")


class BackpressureResponse(FailureResponse):
    """A response classified as back-pressure (by default 429, and 503 with Retry-After):
    retried after its ``Retry-After``, ignored by the circuit breaker."""


def to_httpx_error(exc: BaseException, request: httpx.Request) -> BaseException:
    """seawall's own rejection or timeout as the matching httpx-compatible error, with
    ``request`` set; anything else as it is."""
    converted: BaseException
    if isinstance(exc, CircuitOpenError) and not isinstance(exc, httpx.HTTPError):
        converted = CircuitOpenHTTPError(exc.name, exc.retry_after, state=exc.state)
    elif isinstance(exc, BulkheadFullError) and not isinstance(exc, httpx.HTTPError):
        converted = BulkheadFullHTTPError(exc.name, exc.retry_after, detail=exc.detail)
    elif isinstance(exc, TimeoutExceededError) and not isinstance(exc, httpx.HTTPError):
        converted = TimeoutHTTPError(exc.name, exc.seconds)
    else:
        return exc
    converted.request = request
    for note in getattr(exc, "__notes__", ()):
        converted.add_note(note)
    return converted
