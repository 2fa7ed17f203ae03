"""Where seawall gets its time. Nothing else in the package reads or waits on time directly."""

from __future__ import annotations

import contextvars
import math
import threading
import time
import weakref
from typing import Protocol, runtime_checkable

from seawall import _aio, _fork
from seawall._validate import check_number

__all__ = ["Clock", "FakeClock", "SystemClock", "default_clock", "system_clock"]


@runtime_checkable
class Clock(Protocol):
    """A source of monotonic time that can also wait.

    Every policy takes one as ``clock=``; tests pass a :class:`seawall.testing.FakeClock`.
    """

    def monotonic(self) -> float:
        """Seconds on a clock that never goes backwards."""
        ...

    def sleep(self, seconds: float) -> None:
        """Block the calling thread for ``seconds``."""
        ...

    async def asleep(self, seconds: float) -> None:
        """Suspend the calling task for ``seconds`` without blocking the event loop."""
        ...


_LONGEST_SLEEP = 1e9


_fake_clocks: weakref.WeakSet[FakeClock] = weakref.WeakSet()


@_fork.in_child
def _renew() -> None:
    for clock in list(_fake_clocks):
        clock._after_fork()


class SystemClock:
    """The real clock: :func:`time.monotonic`, :func:`time.sleep`, :func:`asyncio.sleep`."""

    __slots__ = ("monotonic",)

    def __init__(self) -> None:
        # Bound as an attribute so that the hot path calls the C function directly.
        self.monotonic = time.monotonic

    def sleep(self, seconds: float) -> None:
        # time.sleep refuses what its platform cannot time (about 9.2e9 s): longer waits (a
        # Retry-After as long as allowed) are slept in parts.
        while seconds > _LONGEST_SLEEP:
            time.sleep(_LONGEST_SLEEP)
            seconds -= _LONGEST_SLEEP
        time.sleep(seconds)

    async def asleep(self, seconds: float) -> None:
        await _aio.sleep(seconds)

    def __repr__(self) -> str:
        return "SystemClock()"


system_clock = SystemClock()

#: The clock of policies built without one: the system clock, unless a simulation
#: (``seawall.testing.simulated()``) sets its own for the code inside it.
default_clock: contextvars.ContextVar[Clock] = contextvars.ContextVar(
    "seawall_default_clock", default=system_clock
)


#: The furthest a fake clock reads from 0, either way (some 31,700 years). Beyond it a float
#: no longer resolves the 0.1 ms buckets of the shortest time window, and further out a
#: window's bucket number overflows (or falls below the one it starts from).
FAKE_TIME_LIMIT = 1e12


def _finite(param: str, value: object) -> float:
    """``value`` as a float, or the TypeError/ValueError naming ``param``: a fake time of nan
    or inf would break every later reading."""
    return check_number(param, value, minimum=-math.inf, maximum=math.inf, max_inclusive=False)


class FakeClock:
    """A clock that moves only when told to, for tests that must not sleep.

    ``advance(seconds)`` moves it forward. ``sleep`` and ``asleep`` advance it at once by the
    requested amount and record the amount in :attr:`sleeps`, so a test can assert the exact
    waits a policy made. ``asleep`` still yields to the event loop once, as a real sleep would.
    Safe to share between threads. It reads within :data:`FAKE_TIME_LIMIT` of 0: a start or a
    move beyond is a ``ValueError``.
    """

    def __init__(self, start: float = 0.0) -> None:
        self._now = check_number(
            "start", start, minimum=-FAKE_TIME_LIMIT, maximum=FAKE_TIME_LIMIT, min_inclusive=True
        )
        self._lock = threading.Lock()
        self.sleeps: list[float] = []
        _fake_clocks.add(self)

    def _after_fork(self) -> None:
        self._lock = threading.Lock()

    def monotonic(self) -> float:
        return self._now

    def advance(self, seconds: float) -> None:
        """Move the clock forward by ``seconds`` (must not be negative)."""
        if _finite("seconds", seconds) < 0:
            raise ValueError(f"seconds must be >= 0, got {seconds!r}")
        with self._lock:
            self._now = self._moved(seconds)

    def sleep(self, seconds: float) -> None:
        _finite("seconds", seconds)
        with self._lock:
            self._now = self._moved(max(seconds, 0.0))
            self.sleeps.append(seconds)

    def _moved(self, seconds: float) -> float:
        """The reading ``seconds`` later, if the clock may read it (under the lock)."""
        now = self._now + seconds
        if now > FAKE_TIME_LIMIT:
            raise ValueError(
                f"seconds={seconds:g} would move the clock past {FAKE_TIME_LIMIT:g} "
                f"(it reads {self._now:g})"
            )
        return now

    async def asleep(self, seconds: float) -> None:
        self.sleep(seconds)
        await _aio.sleep(0)

    def __repr__(self) -> str:
        return f"FakeClock(now={self._now!r}, sleeps={len(self.sleeps)})"
