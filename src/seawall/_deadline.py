"""The deadline of the current call, published for cooperative code and the httpx transports."""

from __future__ import annotations

import contextvars

from seawall._clock import Clock
from seawall._errors import TimeoutExceededError

__all__ = ["Deadline", "current_deadline", "enter", "leave", "remaining"]


class Deadline:
    """An absolute time on a clock by which the current call must be done, and whose it is:
    the ``name`` and ``seconds`` of the :class:`seawall.Timeout` that set it."""

    __slots__ = ("at", "clock", "name", "seconds")

    def __init__(self, at: float, clock: Clock, name: str, seconds: float) -> None:
        self.at = at
        self.clock = clock
        self.name = name
        self.seconds = seconds

    def remaining(self) -> float:
        return max(0.0, self.at - self.clock.monotonic())

    def passed(self) -> bool:
        """Strictly past it: a call that ends exactly at its deadline is in time."""
        return self.clock.monotonic() > self.at

    def exceeded(self) -> TimeoutExceededError:
        """The error to raise on behalf of the timeout that owns this deadline."""
        return TimeoutExceededError(self.name, self.seconds)


_current: contextvars.ContextVar[Deadline | None] = contextvars.ContextVar(
    "seawall_deadline", default=None
)
current_deadline = _current.get


def remaining() -> float | None:
    """Seconds left before the innermost enclosing seawall deadline, or ``None`` outside any.

    Sync code that may run long should check it (and give up, or pass it on as its own I/O
    timeout): a sync :class:`seawall.Timeout` cannot interrupt a thread.
    """
    deadline = _current.get()
    return None if deadline is None else deadline.remaining()


def enter(own: Deadline) -> contextvars.Token[Deadline | None]:
    """Publish ``own``, unless an enclosing deadline is sooner: that one stays in force."""
    outer = _current.get()
    if outer is not None and outer.remaining() <= own.remaining():
        return _current.set(outer)
    return _current.set(own)


def leave(token: contextvars.Token[Deadline | None]) -> None:
    _current.reset(token)
