"""Bulkhead: a limit on concurrent calls shared by threads and asyncio tasks.

The core is a list of free-slot tokens, a FIFO of waiters and a lock for the queue. A call
that finds a slot free while nobody waits takes a token and gives it back without the lock.
A waiter is either a thread (woken through a lock it blocks on) or a task (woken through a
future on its own loop), so one limit holds across both. A freed slot is handed straight to
the first waiter, and a newcomer that finds waiters queues behind them.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from seawall import _aio, _deadline
from seawall._base import PolicyBase
from seawall._clock import Clock
from seawall._config import ReadOnly, configured
from seawall._deadline import Deadline
from seawall._errors import BulkheadFullError
from seawall._stats.counters import GIL_ENABLED as _GIL_ENABLED
from seawall._stats.counters import AtomicCounter, Histogram
from seawall._stats.observers import observers
from seawall._validate import MAX_CONCURRENT, check_int, check_number

if TYPE_CHECKING:
    import asyncio

# The lock-free slots rely on the GIL making one C call atomic.

__all__ = ["Bulkhead", "BulkheadSnapshot"]

R = TypeVar("R")
W = TypeVar("W", "_ThreadWaiter", "_TaskWaiter")


class _ThreadWaiter:
    """A thread in the queue. ``granted``: a slot was handed to it; ``gone``: it holds no
    slot and is in no queue any more (its slot, if it had one, was given back for it)."""

    __slots__ = ("_gate", "gone", "granted")

    def __init__(self) -> None:
        self.granted = False
        self.gone = False
        self._gate = threading.Lock()
        self._gate.acquire()

    def wake(self) -> bool:
        self._gate.release()
        return True

    def wait(self, timeout: float) -> None:
        # Beyond what a lock can wait for (max_wait=inf): wait until woken.
        self._gate.acquire(timeout=timeout if timeout < threading.TIMEOUT_MAX else -1)


class _TaskWaiter:
    """A task in the queue (see :class:`_ThreadWaiter`)."""

    __slots__ = ("_future", "_loop", "gone", "granted")

    def __init__(self) -> None:
        self.granted = False
        self.gone = False
        self._loop = _aio.get_running_loop()
        self._future: asyncio.Future[None] = self._loop.create_future()

    def wake(self) -> bool:
        """``False`` when its event loop is closed: nobody will ever take the slot."""
        if self._loop.is_closed():
            return False
        try:
            # The releasing thread may not be the loop's thread.
            self._loop.call_soon_threadsafe(self._set)
        except RuntimeError:  # closed since the check
            return False
        return True

    def _set(self) -> None:
        if not self._future.done():
            self._future.set_result(None)

    async def wait(self, seconds: float) -> None:
        try:
            async with _aio.timeout(seconds):
                await self._future
        except TimeoutError:
            pass


_Waiter = _ThreadWaiter | _TaskWaiter


@dataclass(frozen=True, slots=True)
class BulkheadSnapshot:
    """A consistent reading of a bulkhead's occupancy and lifetime counts."""

    name: str
    limit: int
    active: int
    queued: int
    admitted: int
    rejected: int
    #: Wait times of admitted calls that queued first (per-bucket counts over
    #: seawall's duration buckets, and their sum); the others waited 0 s.
    wait_buckets: tuple[int, ...]
    wait_seconds_total: float

    @property
    def waited(self) -> int:
        """How many admitted calls queued before they got their slot."""
        return sum(self.wait_buckets)


class BulkheadView:
    """What a Policy's fast path (seawall._fast) may use of a bulkhead, and nothing else.

    A call admitted on the fast path takes a slot only while nobody waits (``queue`` empty):
    ``take`` (``IndexError`` when none is free), then ``count_admitted``; it gives the slot
    back with ``give_back`` and, if someone queued meanwhile, ``pass_on``; a failure gives it
    back with ``release``. The slot list and the queue are never rebound, so these stay the
    bulkhead's own (a forked child empties them in place).
    """

    __slots__ = (
        "acall",
        "call",
        "count_admitted",
        "give_back",
        "pass_on",
        "queue",
        "release",
        "take",
    )

    def __init__(self, bulkhead: Bulkhead) -> None:
        self.queue = bulkhead._waiters
        self.take = bulkhead._free.pop
        self.give_back = bulkhead._free.append
        self.count_admitted = bulkhead._count_admitted
        self.release = bulkhead._release
        self.pass_on = bulkhead._pass_on
        self.call = bulkhead._call
        self.acall = bulkhead._acall


class Bulkhead(PolicyBase):
    """At most ``max_concurrent`` calls at once; up to ``max_queue`` more wait up to
    ``max_wait`` seconds for a slot; anything beyond gets :class:`BulkheadFullError` at once.

    A sync caller's wait is also cut short by an enclosing :class:`seawall.Timeout`'s deadline;
    an async caller's wait is cancellable and never blocks the event loop. Every slot is given
    back when the call ends, however it ends.
    """

    _call_outcomes = frozenset({"rejected"})

    max_concurrent: ReadOnly[int] = ReadOnly("_max_concurrent")
    max_queue: ReadOnly[int] = ReadOnly("_max_queue")
    max_wait: ReadOnly[float] = ReadOnly("_max_wait")

    @configured
    def __init__(
        self,
        max_concurrent: int,
        *,
        max_queue: int = 0,
        max_wait: float = 0.0,
        name: str | None = None,
        clock: Clock | None = None,
    ) -> None:
        super().__init__(name=name, clock=clock)
        # One slot per permit, allocated up front (taking one is a lock-free pop).
        self._max_concurrent = check_int("max_concurrent", max_concurrent, maximum=MAX_CONCURRENT)
        self._max_queue = check_int("max_queue", max_queue, minimum=0)
        self._max_wait = check_number("max_wait", max_wait, min_inclusive=True)
        if self._max_queue and not self._max_wait:
            raise ValueError("max_wait must be > 0 when max_queue > 0: queued calls must time out")
        if self._max_wait and not self._max_queue:
            raise ValueError("max_queue must be > 0 when max_wait > 0: nothing can wait otherwise")
        self._lock = threading.Lock()
        # One token per free slot. Taking one (list.pop) and giving it back (list.append) are
        # single C calls, atomic under the GIL: a call that finds a slot free takes no lock.
        self._free: list[None] = [None] * self._max_concurrent
        self._lockfree = _GIL_ENABLED
        self._waiters: deque[_Waiter] = deque()
        self._admitted_at_once = AtomicCounter()  # admitted without waiting (lock-free)
        self._count_admitted = self._admitted_at_once.increment
        self._admitted = 0  # admitted after waiting
        self._rejected = 0
        self._waits = Histogram()

    def _fast_view(self) -> BulkheadView | None:
        """The fast path's view of this bulkhead, or ``None`` without the GIL (every slot is
        then taken under the lock)."""
        return BulkheadView(self) if self._lockfree else None

    def _has_run(self) -> bool:
        snap = self.snapshot()
        return super()._has_run() or bool(snap.admitted + snap.rejected)

    def _after_fork(self) -> None:
        super()._after_fork()
        self._lock = threading.Lock()
        # Every slot free and nobody queued: those who held or awaited them are not in the
        # child. In place: the fast path holds these very list and deque.
        self._waiters.clear()
        self._free[:] = [None] * self._max_concurrent

    # -- the core --------------------------------------------------------------------------

    def _enter_or_queue(self, make_waiter: Callable[[], W]) -> W | None:
        """Take a slot (``None``), or join the queue (the waiter), or raise when full."""
        # Lock-free when nobody waits (a newcomer never passes a queued waiter by much: one
        # that queues meanwhile may lose this slot to it, as if it had come a moment later).
        if self._lockfree and not self._waiters:
            try:
                self._free.pop()
            except IndexError:
                pass
            else:
                self._count_admitted()
                if observers.bulkhead_wait is not None:
                    self._record_wait(0.0)
                return None
        waiter: W | None = None
        full = False
        wake: list[_Waiter] = []
        with self._lock:
            if not self._waiters and self._take():
                self._count_admitted()
            elif len(self._waiters) >= self._max_queue:
                self._rejected += 1
                full = True
            else:
                waiter = make_waiter()
                self._waiters.append(waiter)
                # A slot given back between the checks above and this append saw no waiter
                # to hand it to: this waiter takes it (see _release).
                wake = self._hand_over_locked()
        self._wake(wake)
        if full:
            raise BulkheadFullError(self.name, detail="full")
        if waiter is None and observers.bulkhead_wait is not None:
            self._record_wait(0.0)
        return waiter

    def _record_wait(self, seconds: float) -> None:
        """Report an admitted call's wait; if the recorder fails, the slot goes back."""
        recorder = observers.bulkhead_wait
        if recorder is None:
            return
        try:
            recorder(self.name, seconds)
        except BaseException:
            self._release()
            raise

    def _take(self) -> bool:
        try:
            self._free.pop()
        except IndexError:
            return False
        return True

    def _settle(self, waiter: _Waiter, started: float, deadline: Deadline | None = None) -> None:
        """After a wait: keep the slot if it was handed over, else leave the queue and raise
        (a timeout, when it was the enclosing deadline that ended the wait)."""
        waited = self._clock.monotonic() - started
        with self._lock:
            if waiter.granted:
                self._admitted += 1
                self._waits.observe(waited)
                granted = True
            else:
                if not waiter.gone:
                    self._waiters.remove(waiter)
                    waiter.gone = True
                self._rejected += 1
                granted = False
        if granted:
            if observers.bulkhead_wait is not None:
                self._record_wait(waited)
            return
        if deadline is not None and deadline.remaining() <= 0.0:
            raise deadline.exceeded()
        raise BulkheadFullError(self.name, detail=f"full: no slot within {waited:.3g}s")

    def _abandon(self, waiter: _Waiter) -> None:
        """A waiter was cancelled: leave the queue, or pass on a slot just handed over."""
        with self._lock:
            if waiter.gone:  # its slot was given back already (see _wake)
                return
            waiter.gone = True
            if not waiter.granted:
                self._waiters.remove(waiter)  # cancelled, not refused: counted neither way
                return
            waiter.granted = False
            self._admitted += 1  # it had its slot, if only for a moment
        self._release()

    def _release(self) -> None:
        """Give a slot back; the first waiter, if any, gets it."""
        if self._lockfree:
            self._free.append(None)
            # After the append: a waiter that queued before it is seen here; one that queues
            # after it sees the token when it queues. Either way the slot reaches a waiter.
            if self._waiters:
                self._pass_on()
            return
        with self._lock:
            self._free.append(None)
            wake = self._hand_over_locked()
        self._wake(wake)

    def _pass_on(self) -> None:
        """Free slots to the first waiters (a slot was given back while they wait)."""
        with self._lock:
            wake = self._hand_over_locked()
        self._wake(wake)

    def _hand_over_locked(self) -> list[_Waiter]:
        """Free slots to the first waiters, in order (lock held); those to wake."""
        wake: list[_Waiter] = []
        waiters = self._waiters
        while waiters and self._take():
            waiter = waiters.popleft()
            waiter.granted = True  # the slot is the waiter's from now on
            wake.append(waiter)
        return wake

    def _wake(self, waiters: list[_Waiter]) -> None:
        """Wake the waiters just handed a slot. The slot of one whose event loop is closed
        goes back, and on to the next waiters: in a loop, however many such waiters there
        are, and only if the waiter's own cancellation has not given it back already."""
        while waiters:
            dead = [waiter for waiter in waiters if not waiter.wake()]
            if not dead:
                return
            with self._lock:
                for waiter in dead:
                    if waiter.granted and not waiter.gone:
                        waiter.granted, waiter.gone = False, True
                        self._free.append(None)
                waiters = self._hand_over_locked()

    # -- the shells ------------------------------------------------------------------------

    def _call(self, fn: Callable[..., R], /, *args: Any) -> R:
        waiter = self._enter_or_queue(_ThreadWaiter)
        if waiter is not None:
            started = self._clock.monotonic()
            # A thread cannot be cancelled, so the enclosing deadline bounds its wait too.
            deadline = _deadline.current_deadline()
            wait = self._max_wait if deadline is None else min(self._max_wait, deadline.remaining())
            try:
                waiter.wait(wait)
            except BaseException:
                self._abandon(waiter)
                raise
            self._settle(waiter, started, deadline)
        try:
            return fn(*args)
        finally:
            self._release()

    async def _acall(self, fn: Callable[..., Awaitable[R]], /, *args: Any) -> R:
        waiter = self._enter_or_queue(_TaskWaiter)
        if waiter is not None:
            started = self._clock.monotonic()
            try:
                # An enclosing async Timeout cancels this wait itself.
                await waiter.wait(self._max_wait)
            except BaseException:
                self._abandon(waiter)
                raise
            self._settle(waiter, started)
        try:
            return await fn(*args)
        finally:
            self._release()

    # -- what users read -------------------------------------------------------------------

    @property
    def active(self) -> int:
        return self._max_concurrent - len(self._free)

    @property
    def queued(self) -> int:
        return len(self._waiters)

    def snapshot(self) -> BulkheadSnapshot:
        with self._lock:
            buckets, wait_total = self._waits.read()
            return BulkheadSnapshot(
                name=self.name,
                limit=self._max_concurrent,
                active=self._max_concurrent - len(self._free),
                queued=len(self._waiters),
                admitted=self._admitted_at_once.value + self._admitted,
                rejected=self._rejected,
                wait_buckets=buckets,
                wait_seconds_total=wait_total,
            )

    def __repr__(self) -> str:
        queue = (
            f", max_queue={self._max_queue}, max_wait={self._max_wait:g}" if self._max_queue else ""
        )
        return f"Bulkhead({self._max_concurrent}{queue}, name={self.name!r})"
