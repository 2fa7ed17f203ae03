"""An event loop on simulated time, and a seawall clock on a loop's time.

For code that waits on timers only, never on I/O: when nothing is ready, the loop's clock
jumps to its next timer, so hours of timeouts, retry waits and open breakers run in
milliseconds, the same way every run. The project's tests and its outage benchmark run on it.
"""

from __future__ import annotations

import asyncio
import selectors
from typing import Any

__all__ = ["LoopClock", "SimulatedClock", "SimulatedLoop", "Simulation", "SimulationStalled"]


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


class SimulatedClock:
    """The clock of a :class:`Simulation`: its loop's simulated time.

    ``asleep`` waits on the simulated loop (in no real time). ``sleep`` moves the simulated
    time on at once when called from outside the running loop (sync code under the
    simulation, as a FakeClock would), and refuses inside it: a blocking sleep there would
    stop every task of the simulation.
    """

    def __init__(self, simulation: Simulation) -> None:
        self._simulation = simulation
        self.monotonic = simulation.loop.time

    def sleep(self, seconds: float) -> None:
        self._simulation.advance(seconds)

    async def asleep(self, seconds: float) -> None:
        if asyncio.get_running_loop() is not self._simulation.loop:
            raise RuntimeError(
                "a simulation's clock waits only on its own loop: run the coroutine with "
                "simulation.run(...)"
            )
        await asyncio.sleep(seconds)

    def __repr__(self) -> str:
        return f"SimulatedClock(now={self.monotonic():g})"


class Simulation:
    """An event loop on simulated time and the clock on it (see ``seawall.testing.simulated``).

    ``run(main)`` runs a coroutine (or a function returning one) to its end on the loop:
    whenever nothing is ready, the loop's clock jumps to its next timer. ``now()`` reads the
    simulated time; ``advance(seconds)`` moves it on between runs, for sync code.
    """

    def __init__(self) -> None:
        self.loop = SimulatedLoop()
        self.clock = SimulatedClock(self)
        self._runner = asyncio.Runner(loop_factory=lambda: self.loop)

    def run(self, main: Any) -> Any:
        """Run ``main`` (a coroutine, or a function that makes one) to its end; its result."""
        if callable(main) and not asyncio.iscoroutine(main):
            main = main()
        if not asyncio.iscoroutine(main):
            raise TypeError(f"main must be a coroutine or make one, got {type(main).__name__}")
        return self._runner.run(main)

    def now(self) -> float:
        return self.loop.time()

    def advance(self, seconds: float) -> None:
        """Move the simulated time on by ``seconds`` (sync code between runs)."""
        if self.loop.is_running():
            raise RuntimeError(
                "a blocking sleep inside the simulation's running loop would stop every task "
                "of it: await asyncio.sleep() (or use the policy's async API) instead"
            )
        if isinstance(seconds, bool) or not isinstance(seconds, int | float):
            raise TypeError(f"seconds must be a number, got {type(seconds).__name__}")
        if not 0.0 <= seconds < float("inf"):
            raise ValueError(f"seconds must be finite and >= 0, got {seconds!r}")
        self.loop._travel.now += seconds

    def close(self) -> None:
        self._runner.close()
        if not self.loop.is_closed():  # never run: the runner never took it
            self.loop.close()
