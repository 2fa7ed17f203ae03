"""What many test modules share, in one place (fixtures are in ``conftest.py``)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine, Generator
from typing import Any, TypeVar

from seawall._simulated import LoopClock, SimulatedLoop

__all__ = ["Boom", "Gate", "LoopClock", "SimulatedLoop", "resume", "run_simulated"]

T = TypeVar("T")


class Boom(Exception):
    """The failure test functions raise: an exception no library raises by itself."""


class Gate:
    """An awaitable that suspends exactly once: ``policy.acall(Gate)`` driven by hand
    (``coro.send(None)``) holds an async call in flight, with no event loop, until
    :func:`resume` finishes it. (Calls held in flight on threads or a loop: ``Held`` in
    ``conftest.py``, through the ``run`` fixture's ``hold``.)"""

    def __await__(self) -> Generator[Gate, None, str]:
        yield self
        return "ok"


def resume(coro: Coroutine[Any, Any, str], exc: BaseException | None) -> tuple[Any, Any]:
    """Finish a call held at its :class:`Gate`, with ``exc`` raised there or else with a
    return: ``(result, None)`` if it returned, ``(None, exception)`` if it raised."""
    try:
        if exc is None:
            coro.send(None)
        else:
            coro.throw(exc)
    except StopIteration as stop:
        return stop.value, None
    except BaseException as err:
        return None, err
    raise AssertionError("the call did not finish at its gate")


def run_simulated(main: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run ``main()`` to its end on a fresh loop on simulated time."""
    with asyncio.Runner(loop_factory=SimulatedLoop) as runner:
        return runner.run(main())
