"""The exceptions seawall raises."""

from __future__ import annotations

import math

__all__ = [
    "BulkheadFullError",
    "CircuitOpenError",
    "RejectedError",
    "SeawallError",
    "TimeoutExceededError",
]


class SeawallError(Exception):
    """Base class of every exception seawall raises itself."""


class RejectedError(SeawallError):
    """A policy refused the call without running it.

    ``name`` is the policy's name; ``retry_after`` is how many seconds until trying again may
    succeed (``math.inf`` when only an operator can let calls through again).
    """

    def __init__(self, message: str, *, name: str, retry_after: float) -> None:
        super().__init__(message)
        self.name = name
        self.retry_after = retry_after

    def __reduce__(self) -> tuple[object, ...]:
        return (_rebuild, (type(self), str(self), self.name, self.retry_after))


def _rebuild(cls: type[RejectedError], message: str, name: str, retry_after: float) -> object:
    return cls(message, name=name, retry_after=retry_after)


class CircuitOpenError(RejectedError):
    """The circuit breaker is open (or half-open with every probe slot taken)."""

    def __init__(self, name: str, retry_after: float, *, state: str = "open") -> None:
        when = "until reset" if math.isinf(retry_after) else f"retry after {retry_after:.3g}s"
        super().__init__(f"circuit {name!r} is {state}; {when}", name=name, retry_after=retry_after)
        self.state = state

    def __reduce__(self) -> tuple[object, ...]:
        return (_rebuild_open, (type(self), self.name, self.retry_after, self.state))


def _rebuild_open(
    cls: type[CircuitOpenError], name: str, retry_after: float, state: str
) -> CircuitOpenError:
    return cls(name, retry_after, state=state)


class BulkheadFullError(RejectedError):
    """The bulkhead has no free slot and no room (or time) left to wait for one."""

    def __init__(self, name: str, retry_after: float = 0.0, *, detail: str = "full") -> None:
        super().__init__(f"bulkhead {name!r} is {detail}", name=name, retry_after=retry_after)
        self.detail = detail

    def __reduce__(self) -> tuple[object, ...]:
        return (_rebuild_full, (type(self), self.name, self.retry_after, self.detail))


def _rebuild_full(
    cls: type[BulkheadFullError], name: str, retry_after: float, detail: str
) -> BulkheadFullError:
    return cls(name, retry_after, detail=detail)


class TimeoutExceededError(SeawallError, TimeoutError):
    """The call ran past its deadline. Also a builtin :class:`TimeoutError`."""

    def __init__(self, name: str, seconds: float) -> None:
        super().__init__(f"{name!r} exceeded its timeout of {seconds:.3g}s")
        self.name = name
        self.seconds = seconds

    def __reduce__(self) -> tuple[object, ...]:
        return (type(self), (self.name, self.seconds))
