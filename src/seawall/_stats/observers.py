"""Per-event recorders an exporter may install; ``None`` (the default) costs one check.

Counts are read from the policies when scraped, but OpenTelemetry has no observable
histogram: when an SDK is installed, its exporter sets these to record durations, attempts
and waits as they happen.
"""

from __future__ import annotations

from collections.abc import Callable

__all__ = ["observers"]


class _Observers:
    __slots__ = ("bulkhead_wait", "call_duration", "http_request_duration", "retry_attempts")

    def __init__(self) -> None:
        #: (operation, outcome, seconds) of a logical call
        self.call_duration: Callable[[str, str, float], None] | None = None
        #: (policy, attempts) of a logical call through a Retry
        self.retry_attempts: Callable[[str, int], None] | None = None
        #: (policy, seconds) an admitted call waited for a bulkhead slot
        self.bulkhead_wait: Callable[[str, float], None] | None = None
        #: (method, server address, server port, status code, error type), seconds of one
        #: HTTP attempt through a seawall transport
        self.http_request_duration: (
            Callable[[tuple[str, str, str, str, str], float], None] | None
        ) = None


observers = _Observers()
