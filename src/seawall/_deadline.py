"""The deadline of the current call, published for cooperative code and the httpx transports."""

from __future__ import annotations

import contextvars

from seawall._clock import Clock

__all__ = ["Deadline", "current_deadline", "remaining"]


class Deadline:
    """An absolute time on a clock by which the current call must be done."""

    __slots__ = ("at", "clock")

    def __init__(self, at: float, clock: Clock) -> None:
        self.at = at
        self.clock = clock

    def remaining(self) -> float:
        return max(0.0, self.at - self.clock.monotonic())


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


def enter(seconds: float, clock: Clock) -> contextvars.Token[Deadline | None]:
    """Publish a deadline ``seconds`` from now, or keep an enclosing one that is sooner."""
    outer = _current.get()
    at = clock.monotonic() + seconds
    if outer is not None and outer.remaining() <= seconds:
        return _current.set(outer)
    return _current.set(Deadline(at, clock))


def leave(token: contextvars.Token[Deadline | None]) -> None:
    _current.reset(token)
