"""Per-event recorders an exporter may install; ``None`` (the default) costs one check.

Counts are read from the policies when scraped, but OpenTelemetry has no observable
histogram: when an SDK is installed, its exporter sets these to record durations, attempts
and waits as they happen. Call durations also have listeners (``seawall.testing.watch``):
the exporter's recorder and the listeners share the one hook the hot path reads, each added
and removed on its own.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from seawall import _fork

__all__ = ["CallDuration", "observers"]

#: (operation, outcome, seconds) of a logical call
CallDuration = Callable[[str, str, float], None]


class _Observers:
    __slots__ = (
        "_call_exporter",
        "_call_listeners",
        "_lock",
        "bulkhead_wait",
        "call_duration",
        "http_request_duration",
        "retry_attempts",
    )

    def __init__(self) -> None:
        #: (operation, outcome, seconds) of a logical call: what the hot path calls. Set
        #: through set_call_exporter / add_call_listener, which keep both in it.
        self.call_duration: CallDuration | None = None
        #: (policy, attempts) of a logical call through a Retry
        self.retry_attempts: Callable[[str, int], None] | None = None
        #: (policy, seconds) an admitted call waited for a bulkhead slot
        self.bulkhead_wait: Callable[[str, float], None] | None = None
        #: (method, server address, server port, status code, error type), seconds of one
        #: HTTP attempt through a seawall transport
        self.http_request_duration: (
            Callable[[tuple[str, str, str, str, str], float], None] | None
        ) = None
        self._call_exporter: CallDuration | None = None
        self._call_listeners: tuple[CallDuration, ...] = ()
        self._lock = threading.Lock()

    @property
    def call_exporter(self) -> CallDuration | None:
        """The exporter's call-duration recorder, if one is set."""
        return self._call_exporter

    def set_call_exporter(self, recorder: CallDuration | None) -> None:
        with self._lock:
            self._call_exporter = recorder
            self._join()

    def add_call_listener(self, listener: CallDuration) -> None:
        with self._lock:
            self._call_listeners = (*self._call_listeners, listener)
            self._join()

    def remove_call_listener(self, listener: CallDuration) -> None:
        """Remove one registration of ``listener`` (a listener added twice stays once)."""
        with self._lock:
            listeners = list(self._call_listeners)
            if listener in listeners:
                listeners.remove(listener)
            self._call_listeners = tuple(listeners)
            self._join()

    def _join(self) -> None:
        each = [f for f in (self._call_exporter, *self._call_listeners) if f is not None]
        if not each:
            self.call_duration = None
        elif len(each) == 1:
            self.call_duration = each[0]  # the common case: called directly
        else:
            every = tuple(each)

            def call_duration(operation: str, outcome: str, seconds: float) -> None:
                for recorder in every:
                    recorder(operation, outcome, seconds)

            self.call_duration = call_duration

    def _after_fork(self) -> None:
        self._lock = threading.Lock()


observers = _Observers()


@_fork.in_child
def _renew() -> None:
    observers._after_fork()
