"""Bulkhead: one limit on concurrent calls, shared by threads and asyncio tasks.

Calls are held in flight by events (``threading.Event`` for threads, ``asyncio.Event`` for
tasks); real sleeps appear only where real concurrency is the point. Tasks alone run on
simulated time (the ``simulated`` fixture), where an async wait that must time out ends at a
known time; a sync waiter blocks its thread on a lock, so its waits are short real ones
(``max_wait``) with generous bounds on the elapsed time.
"""

from __future__ import annotations

import asyncio
import gc
import math
import sys
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from helpers import Boom, SimulatedLoop, run_simulated

import seawall
from seawall import Bulkhead, BulkheadFullError, RejectedError, Timeout, TimeoutExceededError
from seawall._bulkhead import _ThreadWaiter
from seawall._stats.counters import DURATION_BUCKETS
from seawall.testing import FakeClock, Simulation

#: How long a helper waits for threads or tasks before declaring the test hung.
HANG = 10.0


# -- helpers --------------------------------------------------------------------------------------


def wait_until(predicate: Callable[[], bool], what: str) -> None:
    """Poll ``predicate`` from a thread (real time: other threads must make progress)."""
    give_up = time.monotonic() + HANG
    while not predicate():
        if time.monotonic() > give_up:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.001)


async def until(predicate: Callable[[], bool], what: str) -> None:
    """Yield to the event loop until ``predicate`` holds: at first at once, as often as the
    tasks of this loop need to get on (no time passes, simulated or real), then in 1 ms pauses
    (on a real loop, real time: other threads must make progress)."""
    give_up = time.monotonic() + HANG
    for turn in range(1_000_000):
        if predicate():
            return
        if time.monotonic() > give_up:
            break
        await asyncio.sleep(0 if turn < 10 else 0.001)
    raise AssertionError(f"timed out waiting for {what}")


class ThreadCall:
    """``policy.call(fn)`` (or just ``fn()`` when ``policy`` is ``None``) in a daemon thread;
    :meth:`join` gives its result or exception."""

    def __init__(self, policy: Any, fn: Callable[[], Any]) -> None:
        self.outcome: object = None
        self.done = threading.Event()
        self._policy, self._fn = policy, fn
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            if self._policy is None:
                self.outcome = self._fn()
            else:
                self.outcome = self._policy.call(self._fn)
        except BaseException as exc:
            self.outcome = exc
        self.done.set()

    def join(self) -> object:
        self.thread.join(HANG)
        assert not self.thread.is_alive(), "a thread call never finished"
        return self.outcome


class Gate:
    """Bodies that record their entry and wait for :meth:`open` (threads)."""

    def __init__(self) -> None:
        self._event = threading.Event()
        self._lock = threading.Lock()
        self.entered: list[object] = []

    def body(self, label: object, *, fail: bool = False) -> Callable[[], object]:
        def run() -> object:
            with self._lock:
                self.entered.append(label)
            if not self._event.wait(HANG):
                raise AssertionError("a held call was never released")
            if fail:
                raise Boom(label)
            return label

        return run

    def wait_entered(self, count: int) -> None:
        wait_until(lambda: len(self.entered) >= count, f"{count} calls to enter")

    def open(self) -> None:
        self._event.set()


class AGate:
    """Bodies that record their entry and wait for :meth:`open` (tasks, one event loop)."""

    def __init__(self) -> None:
        self._event = asyncio.Event()
        self.entered: list[object] = []

    def body(self, label: object, *, fail: bool = False) -> Callable[[], Awaitable[object]]:
        async def run() -> object:
            self.entered.append(label)
            await self._event.wait()
            if fail:
                raise Boom(label)
            return label

        return run

    async def wait_entered(self, count: int) -> None:
        await until(lambda: len(self.entered) >= count, f"{count} calls to enter")

    def open(self) -> None:
        self._event.set()


class Peak:
    """Counts calls inside at once, across threads and tasks."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.current = 0
        self.peak = 0
        self.by_kind = {"thread": 0, "task": 0}
        self.mixed = False

    def enter(self, kind: str = "thread") -> None:
        with self._lock:
            self.current += 1
            self.peak = max(self.peak, self.current)
            self.by_kind[kind] += 1
            if self.by_kind["thread"] and self.by_kind["task"]:
                self.mixed = True

    def leave(self, kind: str = "thread") -> None:
        with self._lock:
            self.current -= 1
            self.by_kind[kind] -= 1


class CountingClock(FakeClock):
    """A fake clock that counts reads, so a test knows a waiter has taken its start time."""

    def __init__(self) -> None:
        super().__init__()
        self.reads = 0

    def monotonic(self) -> float:
        self.reads += 1
        return super().monotonic()


def assert_idle(bulkhead: Bulkhead) -> None:
    snap = bulkhead.snapshot()
    assert (snap.active, snap.queued) == (0, 0)
    assert (bulkhead.active, bulkhead.queued) == (0, 0)


def assert_sync_full_capacity(bulkhead: Bulkhead) -> None:
    """``limit`` thread calls all get in at once (no permit was lost), then leave."""
    limit = bulkhead.max_concurrent
    gate = Gate()
    calls = [ThreadCall(bulkhead, gate.body(i)) for i in range(limit)]
    wait_until(
        lambda: len(gate.entered) == limit or any(c.done.is_set() for c in calls),
        f"{limit} calls to run together",
    )
    assert sorted(gate.entered) == list(range(limit))  # type: ignore[type-var]
    assert bulkhead.snapshot().active == limit
    assert bulkhead.snapshot().queued == 0
    gate.open()
    assert [c.join() for c in calls] == list(range(limit))
    assert_idle(bulkhead)


async def assert_async_full_capacity(bulkhead: Bulkhead) -> None:
    """``limit`` task calls all get in at once (no permit was lost), then leave."""
    limit = bulkhead.max_concurrent
    gate = AGate()
    tasks = [asyncio.create_task(bulkhead.acall(gate.body(i))) for i in range(limit)]
    await until(
        lambda: len(gate.entered) == limit or any(t.done() for t in tasks),
        f"{limit} calls to run together",
    )
    assert sorted(gate.entered) == list(range(limit))  # type: ignore[type-var]
    assert bulkhead.snapshot().active == limit
    assert bulkhead.snapshot().queued == 0
    gate.open()
    assert await asyncio.gather(*tasks) == list(range(limit))
    assert_idle(bulkhead)


def never() -> str:
    raise AssertionError("this call must not run")


async def anever() -> str:
    raise AssertionError("this call must not run")


# -- the limit holds under load ----------------------------------------------------------------


def test_threads_never_exceed_the_limit() -> None:
    # Real time: the point is real threads inside the bulkhead at once.
    bulkhead = Bulkhead(5, max_queue=50, max_wait=5, name="threads")
    peak = Peak()
    start = threading.Barrier(50)
    # The first five calls in wait for each other, so the limit is certainly reached.
    first_wave = threading.Barrier(5)
    entries = iter(range(50))

    def work() -> str:
        peak.enter()
        try:
            if next(entries) < 5:
                first_wave.wait(HANG)
            time.sleep(0.005)
        finally:
            peak.leave()
        return "ok"

    def caller() -> str:
        start.wait(HANG)
        return bulkhead.call(work)

    calls = [ThreadCall(None, caller) for _ in range(50)]
    assert [c.join() for c in calls] == ["ok"] * 50
    assert peak.peak == 5
    snap = bulkhead.snapshot()
    assert (snap.admitted, snap.rejected, snap.active, snap.queued) == (50, 0, 0, 0)
    assert snap.limit == 5
    assert snap.name == "threads"


def test_tasks_never_exceed_the_limit(simulated: Simulation) -> None:
    bulkhead = Bulkhead(10, max_queue=200, max_wait=5, name="tasks")
    peak = Peak()

    async def work(i: int) -> int:
        peak.enter("task")
        try:
            await asyncio.sleep(0.001)
        finally:
            peak.leave("task")
        return i

    async def main() -> list[int]:
        return await asyncio.gather(*(bulkhead.acall(work, i) for i in range(200)))

    assert simulated.run(main) == list(range(200))
    assert simulated.now() == pytest.approx(0.02)  # 200 calls of 1 ms, ten at a time
    assert peak.peak == 10
    snap = bulkhead.snapshot()
    assert (snap.admitted, snap.rejected, snap.active, snap.queued) == (200, 0, 0, 0)
    # The first ten got in at once; every other call queued first.
    assert snap.waited == 190


def test_threads_and_tasks_share_one_limit() -> None:
    # Real time: the point is real threads and a real loop's tasks sharing the slots.
    bulkhead = Bulkhead(3, max_queue=40, max_wait=5)
    peak = Peak()
    thread_gate = threading.Event()

    def thread_work() -> str:
        peak.enter("thread")
        try:
            thread_gate.wait(HANG)
            time.sleep(0.002)
        finally:
            peak.leave("thread")
        return "thread"

    async def main() -> None:
        task_gate = asyncio.Event()

        async def task_work() -> str:
            peak.enter("task")
            try:
                await task_gate.wait()
                await asyncio.sleep(0.002)
            finally:
                peak.leave("task")
            return "task"

        # Calls arrive one at a time, alternating thread and task, so the queue alternates
        # too and every hand-over of a slot crosses from one kind to the other.
        threads, tasks = [], []
        for n in range(1, 25):
            if n % 2:
                threads.append(ThreadCall(bulkhead, thread_work))
            else:
                tasks.append(asyncio.create_task(bulkhead.acall(task_work)))
            await until(
                lambda n=n: bulkhead.snapshot().admitted + bulkhead.queued == n,
                f"call {n} to be admitted or queued",
            )
        await until(lambda: peak.current == 3, "the first three calls to enter")
        assert peak.by_kind == {"thread": 2, "task": 1}
        assert bulkhead.snapshot().queued == 21
        thread_gate.set()
        task_gate.set()
        assert await asyncio.gather(*tasks) == ["task"] * 12
        assert [c.join() for c in threads] == ["thread"] * 12

    asyncio.run(main())
    assert peak.peak == 3
    assert peak.mixed
    snap = bulkhead.snapshot()
    assert (snap.admitted, snap.rejected, snap.active, snap.queued) == (24, 0, 0, 0)
    assert snap.waited == 21


# -- without a queue: rejected at once ------------------------------------------------------------


@pytest.fixture
def fast_switching() -> Any:
    """Threads switch as often as CPython allows: races between taking and giving back slots
    lock-free and queueing under the lock get their chance."""
    before = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    yield
    sys.setswitchinterval(before)


def test_slots_churned_by_threads_and_tasks_all_reach_a_caller(fast_switching: Any) -> None:
    # Real time: the point is real threads racing a real loop's tasks for the slots.
    # Short calls, many more callers than slots: slots are given back lock-free while others
    # queue. A slot given back that no waiter got would leave a waiter to time out (10 s) and
    # be refused; a token given back twice would let more than two in.
    bulkhead = Bulkhead(2, max_queue=64, max_wait=HANG, name="churn")
    peak = Peak()
    threads, tasks, calls = 8, 8, 300

    def work(kind: str) -> int:
        peak.enter(kind)
        if kind == "thread":
            time.sleep(0)  # let the others run while this one holds a slot
        peak.leave(kind)
        return 1

    async def awork() -> int:
        await asyncio.sleep(0)
        return work("task")

    async def tasks_main() -> int:
        async def one() -> int:
            return sum([await bulkhead.acall(awork) for _ in range(calls)])

        return sum(await asyncio.gather(*(one() for _ in range(tasks))))

    def thread_main() -> int:
        return sum(bulkhead.call(work, "thread") for _ in range(calls))

    loop = ThreadCall(None, lambda: asyncio.run(tasks_main()))
    workers = [ThreadCall(None, thread_main) for _ in range(threads)]
    assert [w.join() for w in workers] == [calls] * threads
    assert loop.join() == calls * tasks
    assert peak.peak <= 2
    snap = bulkhead.snapshot()
    total = (threads + tasks) * calls
    assert (snap.admitted, snap.rejected, snap.active, snap.queued) == (total, 0, 0, 0)
    assert bulkhead.active == 0
    assert snap.waited > 0  # the queue was used, not only the lock-free path


def test_a_slot_given_back_while_a_caller_queues_goes_to_that_caller() -> None:
    # The interleaving the churn test can only hope for, made certain: the slot comes back
    # (lock-free, finding nobody queued) after the caller found none free, before it queued.
    bulkhead = Bulkhead(1, max_queue=1, max_wait=HANG)
    assert bulkhead._take()  # the only slot is in use

    def queue_as_the_slot_comes_back() -> _ThreadWaiter:
        bulkhead._release()
        return _ThreadWaiter()

    waiter = bulkhead._enter_or_queue(queue_as_the_slot_comes_back)
    assert waiter is not None
    assert waiter.granted
    assert (bulkhead.active, bulkhead.queued) == (1, 0)


@pytest.mark.parametrize("kind", ["sync", "async"])
def test_a_failing_wait_recorder_gives_the_slot_back(kind: str) -> None:
    # An exporter's per-event recorder that raises must not cost the bulkhead a slot.
    from seawall._stats.observers import observers

    def broken(name: str, seconds: float) -> None:
        raise RuntimeError("recorder")

    bulkhead = Bulkhead(1)

    def one_call() -> None:
        if kind == "sync":
            bulkhead.call(lambda: None)
        else:
            asyncio.run(bulkhead.acall(asyncio.sleep, 0))

    saved, observers.bulkhead_wait = observers.bulkhead_wait, broken
    try:
        for _ in range(2):
            with pytest.raises(RuntimeError, match="recorder"):
                one_call()
            assert bulkhead.active == 0
    finally:
        observers.bulkhead_wait = saved
    assert bulkhead.call(lambda: "ok") == "ok"


@pytest.mark.parametrize("stranded", [1, 400])
def test_tasks_left_waiting_on_a_closed_loop_give_their_slot_back_once(stranded: int) -> None:
    # A loop closed by hand (not asyncio.run, which cancels its tasks first) strands its
    # queued tasks. The slot handed to each goes back, and on: however many there are, never
    # twice (not again when the stranded task is collected), and none counts as admitted.
    bulkhead = Bulkhead(1, max_queue=stranded, max_wait=HANG)
    held, go = threading.Event(), threading.Event()

    def hold() -> str:
        held.set()
        assert go.wait(HANG)
        return "held"

    holder = ThreadCall(bulkhead, hold)
    assert held.wait(HANG)
    loop = SimulatedLoop()  # its 0.05 s (for every task to queue) pass in no real time
    tasks = [loop.create_task(bulkhead.acall(asyncio.sleep, 0)) for _ in range(stranded)]
    loop.run_until_complete(asyncio.sleep(0.05))
    assert bulkhead.queued == stranded
    loop.close()
    go.set()
    assert holder.join() == "held"  # its release hands the slot through every dead waiter
    del tasks
    gc.collect()  # the stranded coroutines are closed: they must not give a slot back again
    snap = bulkhead.snapshot()
    assert (snap.active, snap.queued, snap.admitted) == (0, 0, 1)
    assert bulkhead.call(lambda: "ok") == "ok"
    assert bulkhead.active == 0


def test_sync_without_a_queue_excess_callers_are_rejected_at_once() -> None:
    bulkhead = Bulkhead(2, name="pool")
    gate = Gate()
    held = [ThreadCall(bulkhead, gate.body(i)) for i in range(2)]
    gate.wait_entered(2)

    started = time.monotonic()
    with pytest.raises(BulkheadFullError) as info:
        bulkhead.call(never)
    assert time.monotonic() - started < 1.0
    exc = info.value
    assert isinstance(exc, RejectedError)
    assert exc.name == "pool"
    assert exc.retry_after == 0.0
    assert str(exc) == "bulkhead 'pool' is full"
    snap = bulkhead.snapshot()
    assert (snap.active, snap.queued, snap.admitted, snap.rejected) == (2, 0, 2, 1)

    gate.open()
    assert [c.join() for c in held] == [0, 1]
    snap = bulkhead.snapshot()
    assert (snap.active, snap.queued, snap.admitted, snap.rejected) == (0, 0, 2, 1)
    assert snap.waited == 0


def test_async_without_a_queue_excess_callers_are_rejected_at_once(simulated: Simulation) -> None:
    bulkhead = Bulkhead(2, name="pool")

    async def main() -> None:
        gate = AGate()
        held = [asyncio.create_task(bulkhead.acall(gate.body(i))) for i in range(2)]
        await gate.wait_entered(2)
        with pytest.raises(BulkheadFullError) as info:
            await bulkhead.acall(anever)
        assert simulated.now() == 0.0  # at once
        assert info.value.name == "pool"
        assert isinstance(info.value, RejectedError)
        snap = bulkhead.snapshot()
        assert (snap.active, snap.queued, snap.admitted, snap.rejected) == (2, 0, 2, 1)
        gate.open()
        assert await asyncio.gather(*held) == [0, 1]

    asyncio.run(main())
    snap = bulkhead.snapshot()
    assert (snap.active, snap.queued, snap.admitted, snap.rejected) == (0, 0, 2, 1)


def test_queue_full_rejects_the_overflow_at_once() -> None:
    bulkhead = Bulkhead(1, max_queue=2, max_wait=5)
    gate = Gate()
    holder = ThreadCall(bulkhead, gate.body("holder"))
    gate.wait_entered(1)
    waiters = [ThreadCall(bulkhead, gate.body(f"w{i}")) for i in range(2)]
    wait_until(lambda: bulkhead.queued == 2, "two waiters")

    started = time.monotonic()
    with pytest.raises(BulkheadFullError):
        bulkhead.call(never)
    assert time.monotonic() - started < 1.0
    gate.open()
    assert [holder.join(), *(w.join() for w in waiters)] == ["holder", "w0", "w1"]
    snap = bulkhead.snapshot()
    assert (snap.active, snap.queued, snap.admitted, snap.rejected, snap.waited) == (
        0,
        0,
        3,
        1,
        2,
    )


# -- waiting: FIFO, bounded by max_wait -----------------------------------------------------------


def test_sync_waiters_get_slots_in_arrival_order() -> None:
    bulkhead = Bulkhead(1, max_queue=5, max_wait=5)
    gate = Gate()
    holder = ThreadCall(bulkhead, gate.body("holder"))
    gate.wait_entered(1)
    waiters = []
    for i in range(5):
        waiters.append(ThreadCall(bulkhead, gate.body(i)))
        wait_until(lambda n=i + 1: bulkhead.queued == n, f"waiter {i} to queue")
    gate.open()
    assert [holder.join(), *(w.join() for w in waiters)] == ["holder", 0, 1, 2, 3, 4]
    assert gate.entered == ["holder", 0, 1, 2, 3, 4]
    snap = bulkhead.snapshot()
    assert (snap.admitted, snap.rejected, snap.waited) == (6, 0, 5)
    assert_idle(bulkhead)


def test_async_waiters_get_slots_in_arrival_order(simulated: Simulation) -> None:
    bulkhead = Bulkhead(1, max_queue=5, max_wait=5)

    async def main() -> None:
        gate = AGate()
        holder = asyncio.create_task(bulkhead.acall(gate.body("holder")))
        await gate.wait_entered(1)
        waiters = []
        for i in range(5):
            waiters.append(asyncio.create_task(bulkhead.acall(gate.body(i))))
            await until(lambda n=i + 1: bulkhead.queued == n, f"waiter {i} to queue")
        gate.open()
        assert await asyncio.gather(holder, *waiters) == ["holder", 0, 1, 2, 3, 4]
        assert gate.entered == ["holder", 0, 1, 2, 3, 4]

    simulated.run(main)
    snap = bulkhead.snapshot()
    assert (snap.admitted, snap.rejected, snap.waited) == (6, 0, 5)
    assert_idle(bulkhead)


def test_a_newcomer_does_not_overtake_a_waiter() -> None:
    # A slot freed while someone waits goes to the waiter, even if a newcomer calls first.
    bulkhead = Bulkhead(1, max_queue=2, max_wait=5)
    gate = Gate()
    holder = ThreadCall(bulkhead, gate.body("holder"))
    gate.wait_entered(1)
    waiter = ThreadCall(bulkhead, gate.body("waiter"))
    wait_until(lambda: bulkhead.queued == 1, "the waiter to queue")
    newcomer = ThreadCall(bulkhead, gate.body("newcomer"))
    wait_until(lambda: bulkhead.queued == 2, "the newcomer to queue")
    gate.open()
    assert [holder.join(), waiter.join(), newcomer.join()] == ["holder", "waiter", "newcomer"]
    assert gate.entered == ["holder", "waiter", "newcomer"]


def test_sync_waiter_past_max_wait_is_rejected_and_leaves_the_queue() -> None:
    # Real time: a sync waiter blocks its thread on a lock, a real 0.05 s here.
    bulkhead = Bulkhead(1, max_queue=1, max_wait=0.05, name="slow-pool")
    gate = Gate()
    holder = ThreadCall(bulkhead, gate.body("holder"))
    gate.wait_entered(1)

    started = time.monotonic()
    with pytest.raises(BulkheadFullError) as info:
        bulkhead.call(never)
    elapsed = time.monotonic() - started
    assert 0.03 <= elapsed < 2.0
    assert info.value.name == "slow-pool"
    assert str(info.value).startswith("bulkhead 'slow-pool' is full: no slot within ")
    snap = bulkhead.snapshot()
    assert (snap.active, snap.queued, snap.admitted, snap.rejected) == (1, 0, 1, 1)

    gate.open()
    assert holder.join() == "holder"
    assert_idle(bulkhead)  # the slot did not go to the waiter that left
    assert bulkhead.call(lambda: "next") == "next"
    snap = bulkhead.snapshot()
    assert (snap.admitted, snap.rejected, snap.waited) == (2, 1, 0)


def test_async_waiter_past_max_wait_is_rejected_and_leaves_the_queue(simulated: Simulation) -> None:
    bulkhead = Bulkhead(1, max_queue=1, max_wait=0.05, name="slow-pool")

    async def main() -> None:
        gate = AGate()
        holder = asyncio.create_task(bulkhead.acall(gate.body("holder")))
        await gate.wait_entered(1)
        with pytest.raises(BulkheadFullError) as info:
            await bulkhead.acall(anever)
        assert simulated.now() == 0.05  # max_wait, to the tick
        assert info.value.name == "slow-pool"
        snap = bulkhead.snapshot()
        assert (snap.active, snap.queued, snap.admitted, snap.rejected) == (1, 0, 1, 1)
        gate.open()
        assert await holder == "holder"
        assert_idle(bulkhead)
        assert await bulkhead.acall(asyncio.sleep, 0, "next") == "next"

    simulated.run(main)
    snap = bulkhead.snapshot()
    assert (snap.admitted, snap.rejected, snap.waited) == (2, 1, 0)


# -- every permit comes back ----------------------------------------------------------------------


def test_sync_failing_calls_give_their_permits_back() -> None:
    bulkhead = Bulkhead(2, max_queue=2, max_wait=5)
    gate = Gate()
    calls = [ThreadCall(bulkhead, gate.body(i, fail=True)) for i in range(2)]
    gate.wait_entered(2)
    calls += [ThreadCall(bulkhead, gate.body(i, fail=True)) for i in range(2, 4)]
    wait_until(lambda: bulkhead.queued == 2, "two waiters")
    gate.open()
    outcomes = [c.join() for c in calls]
    assert [type(o) for o in outcomes] == [Boom] * 4
    assert sorted(o.args[0] for o in outcomes) == [0, 1, 2, 3]  # type: ignore[attr-defined]
    snap = bulkhead.snapshot()
    assert (snap.active, snap.queued, snap.admitted, snap.rejected) == (0, 0, 4, 0)
    assert_sync_full_capacity(bulkhead)


def test_async_failing_calls_give_their_permits_back(simulated: Simulation) -> None:
    bulkhead = Bulkhead(2, max_queue=2, max_wait=5)

    async def main() -> None:
        gate = AGate()
        tasks = [asyncio.create_task(bulkhead.acall(gate.body(i, fail=True))) for i in range(2)]
        await gate.wait_entered(2)
        tasks += [asyncio.create_task(bulkhead.acall(gate.body(i, fail=True))) for i in range(2, 4)]
        await until(lambda: bulkhead.queued == 2, "two waiters")
        gate.open()
        outcomes = await asyncio.gather(*tasks, return_exceptions=True)
        assert [type(o) for o in outcomes] == [Boom] * 4
        snap = bulkhead.snapshot()
        assert (snap.active, snap.queued, snap.admitted, snap.rejected) == (0, 0, 4, 0)
        await assert_async_full_capacity(bulkhead)

    simulated.run(main)


def test_async_timeout_around_a_running_call_gives_its_permit_back(
    simulated: Simulation,
) -> None:
    bulkhead = Bulkhead(2)
    timeout = Timeout(0.05)
    seen: list[str] = []

    async def slow() -> None:
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            seen.append("cancelled")
            raise

    async def main() -> None:
        with pytest.raises(TimeoutExceededError):
            await timeout.acall(bulkhead.acall, slow)
        assert simulated.now() == 0.05
        assert_idle(bulkhead)
        await assert_async_full_capacity(bulkhead)

    simulated.run(main)
    assert seen == ["cancelled"]
    assert timeout._counts.as_dict()["timeout"] == 1


def test_async_timeout_around_a_queued_waiter_takes_it_out_of_the_queue(
    simulated: Simulation,
) -> None:
    bulkhead = Bulkhead(1, max_queue=1, max_wait=5)
    timeout = Timeout(0.05)

    async def main() -> None:
        gate = AGate()
        holder = asyncio.create_task(bulkhead.acall(gate.body("holder")))
        await gate.wait_entered(1)
        started = simulated.now()
        with pytest.raises(TimeoutExceededError):
            await timeout.acall(bulkhead.acall, anever)
        assert simulated.now() - started == pytest.approx(0.05)  # not the bulkhead's 5 s
        snap = bulkhead.snapshot()
        assert (snap.active, snap.queued, snap.admitted) == (1, 0, 1)
        gate.open()
        assert await holder == "holder"
        assert_idle(bulkhead)
        await assert_async_full_capacity(bulkhead)

    simulated.run(main)
    assert timeout._counts.as_dict()["timeout"] == 1


def test_async_cancelling_a_running_call_gives_its_permit_back(simulated: Simulation) -> None:
    bulkhead = Bulkhead(2)

    async def main() -> None:
        gate = AGate()
        task = asyncio.create_task(bulkhead.acall(gate.body("held")))
        await gate.wait_entered(1)
        assert bulkhead.active == 1
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert_idle(bulkhead)
        await assert_async_full_capacity(bulkhead)

    simulated.run(main)


def test_async_cancelling_a_queued_waiter_takes_it_out_of_the_queue(simulated: Simulation) -> None:
    bulkhead = Bulkhead(1, max_queue=2, max_wait=5)

    async def main() -> None:
        gate = AGate()
        holder = asyncio.create_task(bulkhead.acall(gate.body("holder")))
        await gate.wait_entered(1)
        waiter = asyncio.create_task(bulkhead.acall(anever))
        await until(lambda: bulkhead.queued == 1, "the waiter to queue")
        waiter.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiter
        snap = bulkhead.snapshot()
        assert (snap.active, snap.queued, snap.admitted, snap.rejected) == (1, 0, 1, 0)
        gate.open()
        assert await holder == "holder"
        assert_idle(bulkhead)
        await assert_async_full_capacity(bulkhead)

    simulated.run(main)


def test_async_waiter_cancelled_just_after_being_handed_the_slot_passes_it_on() -> None:
    # A real loop: a real thread hands the slot to its task (call_soon_threadsafe).
    bulkhead = Bulkhead(1, max_queue=2, max_wait=5)
    release = threading.Event()
    entered = threading.Event()

    def hold() -> str:
        entered.set()
        release.wait(HANG)
        return "holder"

    async def main() -> None:
        holder = ThreadCall(bulkhead, hold)
        assert entered.wait(HANG)
        waiter = asyncio.create_task(bulkhead.acall(anever))
        await until(lambda: bulkhead.queued == 1, "the waiter to queue")
        # The thread's release hands the slot to the waiting task; the loop is blocked here,
        # so the task has not woken yet when it is cancelled.
        release.set()
        assert holder.join() == "holder"
        snap = bulkhead.snapshot()
        assert (snap.active, snap.queued) == (1, 0)
        waiter.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiter
        assert_idle(bulkhead)
        await assert_async_full_capacity(bulkhead)

    asyncio.run(main())


def test_async_cancelled_granted_waiter_hands_the_slot_to_the_next_waiter() -> None:
    # A real loop: a real thread hands the slot to its task (call_soon_threadsafe).
    bulkhead = Bulkhead(1, max_queue=2, max_wait=5)
    release = threading.Event()
    entered = threading.Event()

    def hold() -> str:
        entered.set()
        release.wait(HANG)
        return "holder"

    async def main() -> None:
        holder = ThreadCall(bulkhead, hold)
        assert entered.wait(HANG)
        first = asyncio.create_task(bulkhead.acall(anever))
        await until(lambda: bulkhead.queued == 1, "the first waiter to queue")
        second = asyncio.create_task(bulkhead.acall(asyncio.sleep, 0, "second"))
        await until(lambda: bulkhead.queued == 2, "the second waiter to queue")
        release.set()
        assert holder.join() == "holder"
        first.cancel()
        with pytest.raises(asyncio.CancelledError):
            await first
        assert await second == "second"
        assert_idle(bulkhead)

    asyncio.run(main())
    snap = bulkhead.snapshot()
    # The cancelled waiter had the slot for a moment: it counts as admitted, not waited.
    assert (snap.admitted, snap.rejected, snap.waited) == (3, 0, 1)


def test_sync_waiter_is_bounded_by_an_enclosing_timeout() -> None:
    # Real time: a sync waiter blocks its thread on a lock, a real 0.05 s here.
    bulkhead = Bulkhead(1, max_queue=1, max_wait=5)
    timeout = Timeout(0.05)
    gate = Gate()
    holder = ThreadCall(bulkhead, gate.body("holder"))
    gate.wait_entered(1)

    started = time.monotonic()
    with pytest.raises(TimeoutExceededError) as info:
        timeout.call(bulkhead.call, never)
    elapsed = time.monotonic() - started
    assert 0.03 <= elapsed < 2.0  # not max_wait (5 s): the deadline's remaining time
    snap = bulkhead.snapshot()
    assert (snap.active, snap.queued, snap.admitted, snap.rejected) == (1, 0, 1, 1)
    # It was the deadline that ended the wait, so the caller sees the timeout, as in async.
    assert info.value.seconds == 0.05
    assert timeout._counts.as_dict() == {"success": 0, "failure": 0, "timeout": 1, "cancelled": 0}
    gate.open()
    assert holder.join() == "holder"
    assert_sync_full_capacity(bulkhead)


def test_sync_waiter_with_no_time_left_gives_up_at_once() -> None:
    clock = FakeClock()
    bulkhead = Bulkhead(1, max_queue=1, max_wait=5)
    timeout = Timeout(1, clock=clock)
    gate = Gate()
    holder = ThreadCall(bulkhead, gate.body("holder"))
    gate.wait_entered(1)

    def late_caller() -> str:
        clock.advance(1)
        assert seawall.remaining() == 0.0
        return bulkhead.call(never)

    started = time.monotonic()
    with pytest.raises(TimeoutExceededError):
        timeout.call(late_caller)
    assert time.monotonic() - started < 1.0
    assert bulkhead.queued == 0
    gate.open()
    assert holder.join() == "holder"
    assert_idle(bulkhead)


# -- async machinery is made on first use ---------------------------------------------------------


def test_constructed_outside_a_loop_and_used_from_two_loops() -> None:
    bulkhead = Bulkhead(1, max_queue=1, max_wait=5)

    async def main(tag: str) -> list[object]:
        gate = AGate()
        holder = asyncio.create_task(bulkhead.acall(gate.body(f"{tag}-holder")))
        await gate.wait_entered(1)
        waiter = asyncio.create_task(bulkhead.acall(gate.body(f"{tag}-waiter")))
        await until(lambda: bulkhead.queued == 1, "the waiter to queue")
        gate.open()
        return list(await asyncio.gather(holder, waiter))

    # Two loops (on simulated time), one after the other.
    assert run_simulated(lambda: main("one")) == ["one-holder", "one-waiter"]
    assert run_simulated(lambda: main("two")) == ["two-holder", "two-waiter"]
    snap = bulkhead.snapshot()
    assert (snap.active, snap.queued, snap.admitted, snap.rejected, snap.waited) == (
        0,
        0,
        4,
        0,
        2,
    )


# -- the wait histogram ---------------------------------------------------------------------------


def test_sync_wait_histogram() -> None:
    clock = CountingClock()
    bulkhead = Bulkhead(1, max_queue=1, max_wait=5, clock=clock)
    gate = Gate()
    holder = ThreadCall(bulkhead, gate.body("holder"))
    gate.wait_entered(1)
    before = clock.reads  # the holder's call-level SLI read the clock when it started
    waiter = ThreadCall(bulkhead, gate.body("waiter"))
    # One read for the waiter's call-level SLI, one for the start of its wait.
    wait_until(lambda: clock.reads == before + 2, "the waiter to note when it started waiting")
    clock.advance(0.3)
    gate.open()
    assert [holder.join(), waiter.join()] == ["holder", "waiter"]

    snap = bulkhead.snapshot()
    expected = [0] * (len(DURATION_BUCKETS) + 1)
    expected[DURATION_BUCKETS.index(0.5)] = 1  # 0.3 s falls in (0.25, 0.5]
    assert snap.wait_buckets == tuple(expected)
    assert snap.waited == 1
    assert snap.wait_seconds_total == 0.3
    assert (snap.admitted, snap.rejected) == (2, 0)


def test_async_wait_histogram(simulated: Simulation) -> None:
    clock = CountingClock()
    bulkhead = Bulkhead(1, max_queue=3, max_wait=5, clock=clock)

    async def main() -> None:
        gate = AGate()
        holder = asyncio.create_task(bulkhead.acall(gate.body("holder")))
        await gate.wait_entered(1)
        waiters = []
        for i, wait in enumerate((0.005, 0.02, 100.0)):
            waiters.append(asyncio.create_task(bulkhead.acall(gate.body(i))))
            await until(lambda n=i + 1: bulkhead.queued == n, f"waiter {i} to queue")
            clock.advance(wait)
        gate.open()
        assert await asyncio.gather(holder, *waiters) == ["holder", 0, 1, 2]

    simulated.run(main)
    # Waited: 0.005 + 0.02 + 100 = 100.025 s, 0.02 + 100 = 100.02 s, and 100 s.
    snap = bulkhead.snapshot()
    expected = [0] * (len(DURATION_BUCKETS) + 1)
    expected[-1] = 3  # all past the last bound (60 s): +Inf
    assert snap.wait_buckets == tuple(expected)
    assert snap.waited == 3
    assert snap.wait_seconds_total == pytest.approx(300.045)


def test_wait_histogram_bounds_are_inclusive(simulated: Simulation) -> None:
    clock = CountingClock()
    bulkhead = Bulkhead(1, max_queue=1, max_wait=5, clock=clock)

    async def main() -> None:
        for wait in (0.005, 0.0050001):
            gate = AGate()
            holder = asyncio.create_task(bulkhead.acall(gate.body("holder")))
            await gate.wait_entered(1)
            waiter = asyncio.create_task(bulkhead.acall(gate.body("waiter")))
            await until(lambda: bulkhead.queued == 1, "the waiter to queue")
            clock.advance(wait)
            gate.open()
            await asyncio.gather(holder, waiter)

    simulated.run(main)
    snap = bulkhead.snapshot()
    assert snap.wait_buckets[:3] == (1, 1, 0)  # 0.005 → le=0.005; a hair more → le=0.01
    assert snap.waited == 2


# -- decorating, reading --------------------------------------------------------------------------


def test_decorates_sync_and_async_functions() -> None:
    sync_bulkhead = Bulkhead(1)
    async_bulkhead = Bulkhead(1)

    @sync_bulkhead
    def add(a: int, b: int) -> int:
        return a + b

    @async_bulkhead
    async def aadd(a: int, b: int) -> int:
        await asyncio.sleep(0)
        return a + b

    assert add(1, b=2) == 3
    assert asyncio.run(aadd(3, b=4)) == 7
    assert sync_bulkhead.name == add.__qualname__
    assert async_bulkhead.name == aadd.__qualname__
    assert sync_bulkhead.snapshot().admitted == async_bulkhead.snapshot().admitted == 1


def test_snapshot_of_a_fresh_bulkhead_and_repr() -> None:
    bulkhead = Bulkhead(3, max_queue=4, max_wait=0.5, name="db")
    snap = bulkhead.snapshot()
    assert snap.name == "db"
    assert (snap.limit, snap.active, snap.queued, snap.admitted, snap.rejected) == (3, 0, 0, 0, 0)
    assert snap.wait_buckets == (0,) * (len(DURATION_BUCKETS) + 1)
    assert snap.wait_seconds_total == 0.0
    assert snap.waited == 0
    assert repr(bulkhead) == "Bulkhead(3, max_queue=4, max_wait=0.5, name='db')"
    assert repr(Bulkhead(2, name="x")) == "Bulkhead(2, name='x')"


# -- construction ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "param"),
    [
        ({"max_concurrent": 0}, "max_concurrent"),
        ({"max_concurrent": -3}, "max_concurrent"),
        ({"max_concurrent": 1, "max_queue": -1}, "max_queue"),
        ({"max_concurrent": 1, "max_wait": -1}, "max_wait"),
        ({"max_concurrent": 1, "max_queue": 1, "max_wait": math.nan}, "max_wait"),
    ],
)
def test_out_of_range_values_name_the_parameter(kwargs: dict[str, Any], param: str) -> None:
    with pytest.raises(ValueError, match=f"^{param} must be"):
        Bulkhead(**kwargs)


def test_a_queue_needs_a_wait_and_a_wait_needs_a_queue() -> None:
    with pytest.raises(ValueError, match=r"^max_wait must be > 0 when max_queue > 0"):
        Bulkhead(1, max_queue=1)
    with pytest.raises(ValueError, match=r"^max_wait must be > 0 when max_queue > 0"):
        Bulkhead(1, max_queue=1, max_wait=0.0)
    with pytest.raises(ValueError, match=r"^max_queue must be > 0 when max_wait > 0"):
        Bulkhead(1, max_wait=1.0)
    with pytest.raises(ValueError, match=r"^max_queue must be > 0 when max_wait > 0"):
        Bulkhead(1, max_queue=0, max_wait=1.0)
    assert Bulkhead(1, max_queue=0, max_wait=0).max_queue == 0


@pytest.mark.parametrize(
    ("kwargs", "param"),
    [
        ({"max_concurrent": 1.5}, "max_concurrent"),
        ({"max_concurrent": "2"}, "max_concurrent"),
        ({"max_concurrent": True}, "max_concurrent"),
        ({"max_concurrent": None}, "max_concurrent"),
        ({"max_concurrent": 1, "max_queue": 1.0, "max_wait": 1}, "max_queue"),
        ({"max_concurrent": 1, "max_queue": 1, "max_wait": "1"}, "max_wait"),
    ],
)
def test_wrong_types_name_the_parameter(kwargs: dict[str, Any], param: str) -> None:
    with pytest.raises(TypeError, match=f"^{param} must be a"):
        Bulkhead(**kwargs)
