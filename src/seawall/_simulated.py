"""An event loop on simulated time, and a seawall clock on a loop's time.

For code that waits on timers only, never on I/O: when nothing is ready, the loop's clock
jumps to its next timer, so hours of timeouts, retry waits and open breakers run in
milliseconds, the same way every run. The project's tests and its outage benchmark run on it.
"""

from __future__ import annotations

import asyncio
import selectors
from typing import Any

__all__ = ["LoopClock", "SimulatedLoop", "SimulationStalled"]


class SimulationStalled(RuntimeError):
    """Nothing is ready and no timer is scheduled, yet the simulation has not finished."""


class _TimeTravelSelector(selectors.SelectSelector):
    """Never waits: "waiting" for the next timer moves the simulated clock to it."""

    def __init__(self) -> None:
        super().__init__()
        self.now = 0.0

    def select(self, timeout: float | None = None) -> list[Any]:
        if timeout is None:
            raise SimulationStalled("no timer is scheduled and nothing is ready")
        if timeout > 0:
            self.now += timeout
        return []


class SimulatedLoop(asyncio.SelectorEventLoop):
    """An event loop on simulated time, starting at 0: when nothing is ready, its clock jumps
    to the next scheduled timer. Only for code that waits on timers, never on I/O."""

    def __init__(self) -> None:
        self._travel = _TimeTravelSelector()
        super().__init__(self._travel)

    def time(self) -> float:
        return self._travel.now


class LoopClock:
    """A seawall clock on a loop's time (a :class:`SimulatedLoop`'s simulated time)."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.monotonic = loop.time

    def sleep(self, seconds: float) -> None:
        raise RuntimeError("code on a simulated loop must not block: nothing may call sleep()")

    async def asleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)
