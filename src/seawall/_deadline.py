"""The deadline of the current call, published for cooperative code and the httpx transports."""

from __future__ import annotations

import contextvars
from typing import Protocol

from seawall._clock import Clock
from seawall._errors import TimeoutExceededError

__all__ = ["Deadline", "current_deadline", "enter", "leave", "remaining"]


class Deadline:
    """An absolute time on a clock by which the current call must be done, and whose it is:
    the :class:`seawall.Timeout` that set it (``owner``: its ``name`` and ``seconds``)."""

    __slots__ = ("at", "clock", "owner")

    def __init__(self, at: float, clock: Clock, owner: _Owner) -> None:
        self.at = at
        self.clock = clock
        self.owner = owner

    def remaining(self) -> float:
        return max(0.0, self.at - self.clock.monotonic())

    def passed(self) -> bool:
        """Strictly past it: a call that ends exactly at its deadline is in time."""
        return self.clock.monotonic() > self.at

    def exceeded(self) -> TimeoutExceededError:
        """The error to raise on behalf of the timeout that owns this deadline (of the class it
        raises: seawall's httpx transports give their timeouts an httpx-compatible one)."""
        owner = self.owner
        return owner._error(owner.name, owner.seconds)


class _Owner(Protocol):
    @property
    def name(self) -> str: ...

    seconds: float
    _error: type[TimeoutExceededError]


_current: contextvars.ContextVar[Deadline | None] = contextvars.ContextVar(
    "seawall_deadline", default=None
)
current_deadline = _current.get
#: Publish a deadline as it is (``enter`` when there may be a sooner one in force).
publish = _current.set


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
    if outer is not None and (
        outer.at <= own.at if outer.clock is own.clock else outer.remaining() <= own.remaining()
    ):
        return _current.set(outer)
    return _current.set(own)


leave = _current.reset
