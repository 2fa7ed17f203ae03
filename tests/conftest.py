"""Shared fixtures: a fake clock, and running calls through a policy's sync or async shell.

``run`` is parametrized over ``"sync"`` and ``"async"``, so a test that takes it runs twice:
once through ``policy.call`` (and sync decorated functions), once through ``await
policy.acall`` (and async decorated functions). Test bodies are written once, as plain sync
functions; the async shell wraps each one in a coroutine function.

``run.hold(policy, n)`` starts ``n`` calls that stay in flight (admitted, their body waiting)
until the test releases them: threads blocked on a :class:`threading.Event` for the sync shell,
tasks awaiting an :class:`asyncio.Event` on an event loop in a background thread for the async
shell. Waiting on those events is the only waiting these helpers do; time itself comes from a
:class:`~seawall.testing.FakeClock`.
"""

from __future__ import annotations

import asyncio
import functools
import threading
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, Literal, Protocol

import pytest

from seawall.metrics._remains import remains
from seawall.testing import FakeClock

#: How long a helper waits for threads or tasks before declaring the test hung.
HANG = 20.0

Kind = Literal["sync", "async"]


@pytest.fixture(autouse=True)
def _no_counts_of_earlier_tests() -> None:
    """Collected policies keep their counts in the exported totals: each test starts without
    those of earlier tests' policies."""
    remains.clear()


class Policy(Protocol):
    def call(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any: ...

    def acall(self, fn: Callable[..., Awaitable[Any]], /, *args: Any, **kwargs: Any) -> Any: ...

    def __call__(self, fn: Callable[..., Any]) -> Callable[..., Any]: ...


def as_async(fn: Callable[..., Any]) -> Callable[..., Awaitable[Any]]:
    """A coroutine function doing what ``fn`` does (same name, so policies adopt it)."""

    @functools.wraps(fn)
    async def run(*args: Any, **kwargs: Any) -> Any:
        return fn(*args, **kwargs)

    return run


class Shell:
    """One of the two ways into a policy; the ``run`` fixture."""

    def __init__(self, kind: Kind) -> None:
        self.kind: Kind = kind

    def __repr__(self) -> str:
        return f"Shell({self.kind!r})"

    def __call__(self, policy: Policy, fn: Callable[..., Any], /, *args: Any, **kw: Any) -> Any:
        """``policy.call(fn, ...)`` or ``asyncio.run(policy.acall(async fn, ...))``."""
        if self.kind == "sync":
            return policy.call(fn, *args, **kw)
        return asyncio.run(policy.acall(as_async(fn), *args, **kw))

    def many(self, policy: Policy, fns: Iterable[Callable[[], Any]]) -> list[object]:
        """Call each of ``fns`` in turn; each entry is the result or the ``Exception`` raised.

        The async shell runs them all on one event loop.
        """
        fns = list(fns)
        if self.kind == "sync":
            out: list[object] = []
            for fn in fns:
                try:
                    out.append(policy.call(fn))
                except Exception as exc:
                    out.append(exc)
            return out

        async def main() -> list[object]:
            out: list[object] = []
            for fn in fns:
                try:
                    out.append(await policy.acall(as_async(fn)))
                except Exception as exc:
                    out.append(exc)
            return out

        return asyncio.run(main())

    def decorate(self, policy: Policy, fn: Callable[..., Any]) -> Callable[..., Any]:
        """Decorate ``fn`` (or a coroutine-function twin of it) with ``policy``; the returned
        sync callable calls the decorated function (running the coroutine to completion)."""
        if self.kind == "sync":
            return policy(fn)
        decorated = policy(as_async(fn))

        @functools.wraps(decorated)
        def run(*args: Any, **kwargs: Any) -> Any:
            return asyncio.run(decorated(*args, **kwargs))

        return run

    def hold(self, policy: Policy, count: int, *, together: bool = False) -> Held:
        """Start ``count`` calls through ``policy`` that stay in flight until released."""
        return Held(self.kind, policy, count, together=together)


class Held:
    """``count`` concurrent calls through a policy whose bodies wait until :meth:`release`.

    On return from the constructor every call has either entered its body (it was admitted:
    :attr:`admitted`) or finished already (it was rejected: :attr:`early`). ``together=True``
    makes the sync shell's threads wait on a barrier so that they all call at once.
    """

    def __init__(self, kind: Kind, policy: Policy, count: int, *, together: bool = False) -> None:
        self.kind = kind
        self.policy = policy
        self.count = count
        self._cond = threading.Condition()
        self._entered = 0
        self._results: dict[int, object] = {}
        self._then: Callable[[], Any] = lambda: "done"
        self._released = False
        self._gate = threading.Event()
        self._barrier = threading.Barrier(count) if together else None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._agate: asyncio.Event | None = None
        self._tasks: list[asyncio.Task[None]] = []
        if kind == "sync":
            self._threads = [
                threading.Thread(target=self._thread, args=(i,), daemon=True) for i in range(count)
            ]
        else:
            self._threads = [threading.Thread(target=self._loop_thread, daemon=True)]
        for thread in self._threads:
            thread.start()
        self._wait_for(lambda: self._entered + len(self._results) >= count, "calls to settle")

    # -- what tests read ------------------------------------------------------------------------

    @property
    def admitted(self) -> int:
        """How many calls entered their body (were let through by the policy)."""
        with self._cond:
            return self._entered

    @property
    def early(self) -> list[object]:
        """What the calls that finished before release raised or returned (rejections)."""
        with self._cond:
            return [self._results[i] for i in sorted(self._results)]

    def release(self, then: Callable[[], Any] = lambda: "done") -> list[object]:
        """Let the waiting bodies go on with ``then()`` (returning its value or raising);
        wait for every call to finish; return each call's result or exception, in order."""
        self._then = then
        self._released = True
        if self.kind == "sync":
            self._gate.set()
        else:
            assert self._loop is not None
            assert self._agate is not None
            self._loop.call_soon_threadsafe(self._agate.set)
        return self._join()

    def cancel(self) -> list[object]:
        """Cancel every task (async shell only) and return the outcomes, in order."""
        assert self.kind == "async", "only tasks can be cancelled"
        assert self._loop is not None
        self._released = True
        tasks = list(self._tasks)
        self._loop.call_soon_threadsafe(lambda: [task.cancel() for task in tasks])
        return self._join()

    def __enter__(self) -> Held:
        return self

    def __exit__(self, *exc_info: object) -> None:
        if not self._released:
            self.release()

    # -- the machinery --------------------------------------------------------------------------

    def _wait_for(self, predicate: Callable[[], bool], what: str) -> None:
        with self._cond:
            if not self._cond.wait_for(predicate, timeout=HANG):
                raise AssertionError(f"timed out waiting for {what}")

    def _join(self) -> list[object]:
        self._wait_for(lambda: len(self._results) == self.count, "calls to finish")
        for thread in self._threads:
            thread.join(HANG)
        with self._cond:
            return [self._results[i] for i in range(self.count)]

    def _enter(self) -> None:
        with self._cond:
            self._entered += 1
            self._cond.notify_all()

    def _finish(self, index: int, outcome: object) -> None:
        with self._cond:
            self._results[index] = outcome
            self._cond.notify_all()

    def _body(self) -> Any:
        self._enter()
        if not self._gate.wait(HANG):
            raise AssertionError("a held call was never released")
        return self._then()

    def _thread(self, index: int) -> None:
        if self._barrier is not None:
            self._barrier.wait(HANG)
        try:
            outcome: object = self.policy.call(self._body)
        except BaseException as exc:
            outcome = exc
        self._finish(index, outcome)

    async def _abody(self) -> Any:
        self._enter()
        assert self._agate is not None
        await self._agate.wait()
        return self._then()

    async def _one(self, index: int) -> None:
        try:
            outcome: object = await self.policy.acall(self._abody)
        except BaseException as exc:  # including CancelledError: the test wants to see it
            outcome = exc
        self._finish(index, outcome)

    async def _amain(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._agate = asyncio.Event()
        self._tasks = [asyncio.create_task(self._one(i)) for i in range(self.count)]
        await asyncio.gather(*self._tasks)

    def _loop_thread(self) -> None:
        asyncio.run(self._amain())


@pytest.fixture(params=["sync", "async"])
def run(request: pytest.FixtureRequest) -> Shell:
    """Runs calls through the sync shell, then (second parametrization) the async one."""
    kind: Kind = request.param
    return Shell(kind)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()
