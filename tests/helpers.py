"""What many test modules share, in one place (fixtures are in ``conftest.py``)."""

from __future__ import annotations

import asyncio
import selectors
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


class Boom(Exception):
    """The failure test functions raise: an exception no library raises by itself."""


class _TimeTravelSelector(selectors.SelectSelector):
    """Never waits: "waiting" for the next timer moves the simulated clock to it."""

    def __init__(self) -> None:
        super().__init__()
        self.now = 0.0

    def select(self, timeout: float | None = None) -> list[Any]:
        if timeout is None:
            raise RuntimeError("simulated loop stalled: nothing ready and no timer scheduled")
        if timeout > 0:
            self.now += timeout
        return []


class SimLoop(asyncio.SelectorEventLoop):
    """An event loop on simulated time from 0: when nothing is ready, its clock jumps to the
    next timer. For code that waits on timers only, never on I/O."""

    def __init__(self) -> None:
        self._travel = _TimeTravelSelector()
        super().__init__(self._travel)

    def time(self) -> float:
        return self._travel.now


def run_simulated(main: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run ``main()`` to its end on a fresh :class:`SimLoop`."""
    with asyncio.Runner(loop_factory=SimLoop) as runner:
        return runner.run(main())


class LoopClock:
    """A seawall clock on the running loop's time (a :class:`SimLoop`'s simulated time)."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.monotonic = loop.time

    def sleep(self, seconds: float) -> None:
        raise RuntimeError("code on a simulated loop must not block")

    async def asleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)
