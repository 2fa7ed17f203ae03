"""Timeout scopes for coroutines with one timer per event loop, not one per call.

``asyncio.timeout`` schedules a timer handle when a scope is entered and cancels it when the
scope is left: on a call that succeeds in time that costs more than everything else a
``Policy`` does. Here every scope on a loop is an entry in that loop's heap of deadlines, and
the loop holds one timer, armed at the soonest deadline that may still be live. Leaving a
scope only marks its entry left; left entries are dropped when the timer passes them or when
the heap has grown to twice its live entries (and 64 more) since it was last cleared. A scope
entered with a later deadline than the armed one (the usual case: the same timeout on every
call) touches no timer at all.

The semantics are those of ``asyncio.timeout``:

- :func:`enter` must run inside a task on a running loop (else ``RuntimeError``, as
  ``asyncio.timeout``), and remembers how many cancellation requests the task had.
- When the deadline passes (at the loop iteration where ``asyncio`` would fire its timer for
  that deadline) the task is cancelled, once, with no message, and the scope is expiring.
- :func:`leave` undoes that cancellation request (``Task.uncancel``); it answers that the
  caller must raise ``TimeoutError`` (from the exception) only if the call ended with
  ``CancelledError`` and no other cancellation request is left than those the task had
  before the scope: a cancellation from outside stays a cancellation.
- A scope whose deadline has already passed when it is entered is expired at the loop's
  next iteration, not at once.

Scopes are entries in the heap, lists ``[when, serial, task, cancelling, state, timeouts,
follower]`` (a list compares by ``when`` then by the serial, never further, and costs one
allocation).

A scope may have a dormant follower (:func:`enter_pair`): a later deadline entered at the same
moment, for an enclosing scope that can only matter once the first one is over. A Policy's
attempt timeout is never longer than its total timeout, so while the first attempt runs the
total's scope cannot expire first: it stays out of the heap until the attempt's scope expires
(then it joins the heap, as if entered all along) or the call goes on past the first attempt
(:func:`resume`). A first attempt that succeeds in time never touches it. Only the
loop's own thread touches a loop's heap: scopes are entered and left by tasks of that loop,
and the timer runs on it.
"""

from __future__ import annotations

import threading
import types
import weakref
from collections.abc import Callable
from heapq import heapify, heappop, heappush
from itertools import count
from typing import TYPE_CHECKING, Any

from seawall import _aio, _fork

if TYPE_CHECKING:
    import asyncio

__all__ = ["Scope", "abandon", "enter", "enter_pair", "expired", "follower", "leave", "resume"]

#: A scope: ``[when, serial, task, cancelling, state, the loop's _LoopTimeouts, follower]``.
Scope = list[Any]

_WHEN, _SERIAL, _TASK, _CANCELLING, _STATE, _TIMEOUTS, _FOLLOWER = range(7)
_ENTERED, _EXPIRING, _EXPIRED, _LEFT, _DORMANT = 0, 1, 2, 3, 4
#: Left entries are dropped from a heap when it grows past twice its live entries and this
#: many more (as asyncio drops its cancelled timer handles): amortised, a few steps a scope.
_SLACK = 64

# asyncio's, set by the first scope (asyncio is imported then, not by `import seawall`).
_get_running_loop: Callable[[], asyncio.AbstractEventLoop]
_current_task: Callable[[Any], asyncio.Task[Any] | None]


def _import_asyncio() -> None:
    global _get_running_loop, _current_task
    import asyncio

    _get_running_loop = asyncio.get_running_loop
    _current_task = asyncio.current_task
    # Python 3.11's current_task is Python around this dict (3.12 made it C): the dict is
    # quicker.
    current_tasks = getattr(asyncio.tasks, "_current_tasks", None)
    if isinstance(current_tasks, dict) and isinstance(_current_task, types.FunctionType):
        _current_task = current_tasks.get


_get_ident = threading.get_ident
_INF = float("inf")


class _LoopTimeouts:
    """One loop's scopes and its one timer."""

    __slots__ = (
        "__weakref__",
        "armed_at",
        "compact_at",
        "handle",
        "heap",
        "loop",
        "resolution",
        "serials",
    )

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        # Weakly: this is the loop's value in a WeakKeyDictionary, which must not keep it.
        self.loop = weakref.ref(loop)
        self.heap: list[Scope] = []
        self.compact_at = _SLACK  # the heap's length at which left entries are dropped
        # Ties between equal deadlines: only the loop's thread counts here.
        self.serials = count().__next__
        self.handle: asyncio.Handle | None = None
        self.armed_at = _INF
        # asyncio runs a timer when its time is within this of the loop's time.
        self.resolution: float = getattr(loop, "_clock_resolution", 0.0)

    def arm(self, when: float) -> None:
        if self.handle is not None:
            self.handle.cancel()
        loop = self.loop()
        if loop is None:  # pragma: no cover - a scope outlived its loop
            return
        self.armed_at = when
        if when <= loop.time():
            self.handle = loop.call_soon(self.fire)
        else:
            self.handle = loop.call_at(when, self.fire)

    def fire(self) -> None:
        """The timer: expire every live scope that is due, as asyncio would fire its timer
        in this iteration, then arm for the soonest live one left."""
        due_by = self.armed_at
        self.handle = None
        self.armed_at = _INF
        heap = self.heap
        loop = self.loop()
        if loop is None:  # pragma: no cover - the loop is gone
            return
        end = loop.time() + self.resolution
        while heap:
            top = heap[0]
            state = top[_STATE]
            if state == _LEFT:
                heappop(heap)
                continue
            when = top[_WHEN]
            if when > due_by and when >= end:
                self.arm(when)
                return
            heappop(heap)
            top[_STATE] = _EXPIRING
            top[_TASK].cancel()
            follower = top[_FOLLOWER]
            if follower is not None and follower[_STATE] == _DORMANT:
                follower[_STATE] = _ENTERED  # entered all along: due now too, if it is
                heappush(heap, follower)

    def compact(self) -> None:
        heap = self.heap = [scope for scope in self.heap if scope[_STATE] == _ENTERED]
        heapify(heap)
        self.compact_at = 2 * len(heap) + _SLACK


#: Where a loop keeps its scopes: on itself, so that a loop no longer used is collected with
#: them (its timer handle and its scopes' tasks refer back to it: a table of loops would keep
#: them all). A loop without a ``__dict__`` keeps none: it gets new ones whenever it is not
#: the last loop used, and each arms its own timer (correct, only slower).
_ATTRIBUTE = "_seawall_timeouts"


class _NoLoop:
    _thread_id = None


#: The loop used last and its scopes: most processes run one loop, so this is the lookup. It
#: is the running loop of this thread if the loop says it runs in this thread (asyncio's loops
#: keep ``_thread_id`` while they run): asking asyncio for the running loop costs more than
#: the rest of a scope. Loops without ``_thread_id`` are never remembered here.
_last: tuple[Any, _LoopTimeouts | None] = (_NoLoop(), None)


def _running() -> tuple[asyncio.AbstractEventLoop, _LoopTimeouts]:
    global _last
    if "_get_running_loop" not in globals():
        _import_asyncio()
    loop = _get_running_loop()  # RuntimeError without one, as asyncio.timeout
    timeouts: _LoopTimeouts | None = getattr(loop, _ATTRIBUTE, None)
    if timeouts is None:
        timeouts = _LoopTimeouts(loop)
        try:
            setattr(loop, _ATTRIBUTE, timeouts)
        except AttributeError:  # no __dict__: see _ATTRIBUTE
            pass
    if getattr(loop, "_thread_id", None) == _get_ident():
        _last = (loop, timeouts)
    return loop, timeouts


def enter(seconds: float) -> Scope:
    """Enter a scope that cancels the current task in ``seconds`` on the loop's time."""
    loop, timeouts = _last
    if loop._thread_id != _get_ident():
        loop, timeouts = _running()
    task = _current_task(loop)
    if task is None:
        raise RuntimeError("Timeout should be used inside a task")
    when = loop.time() + seconds
    scope = [when, timeouts.serials(), task, task.cancelling(), _ENTERED, timeouts, None]  # type: ignore[union-attr]
    heap = timeouts.heap  # type: ignore[union-attr]
    heappush(heap, scope)
    if when < timeouts.armed_at:  # type: ignore[union-attr]
        timeouts.arm(when)  # type: ignore[union-attr]
    if len(heap) > timeouts.compact_at:  # type: ignore[union-attr]
        timeouts.compact()  # type: ignore[union-attr]
    return scope


def enter_pair(seconds: float, then: float) -> Scope:
    """:func:`enter` ``seconds``, with a dormant follower of ``then`` seconds (not sooner) from
    the same moment, for the enclosing scope: see :func:`follower` and :func:`resume`."""
    # enter()'s body again rather than a shared helper: both run on every call, and a frame
    # more is a fifth of what a scope costs.
    loop, timeouts = _last
    if loop._thread_id != _get_ident():
        loop, timeouts = _running()
    task = _current_task(loop)
    if task is None:
        raise RuntimeError("Timeout should be used inside a task")
    now = loop.time()
    when, cancelling = now + seconds, task.cancelling()
    serial = timeouts.serials  # type: ignore[union-attr]
    follower = [now + then, serial(), task, cancelling, _DORMANT, timeouts, None]
    scope = [when, serial(), task, cancelling, _ENTERED, timeouts, follower]
    heap = timeouts.heap  # type: ignore[union-attr]
    heappush(heap, scope)
    if when < timeouts.armed_at:  # type: ignore[union-attr]
        timeouts.arm(when)  # type: ignore[union-attr]
    if len(heap) > timeouts.compact_at:  # type: ignore[union-attr]
        timeouts.compact()  # type: ignore[union-attr]
    return scope


def follower(scope: Scope) -> Scope:
    """The follower :func:`enter_pair` gave ``scope``."""
    return scope[_FOLLOWER]  # type: ignore[no-any-return]


def resume(scope: Scope) -> None:
    """Make a follower an entered scope, if its leader's expiry has not already."""
    if scope[_STATE] == _DORMANT:
        scope[_STATE] = _ENTERED
        timeouts = scope[_TIMEOUTS]
        heappush(timeouts.heap, scope)
        if scope[_WHEN] < timeouts.armed_at:
            timeouts.arm(scope[_WHEN])


def leave(scope: Scope, exc: BaseException | None) -> bool:
    """Leave ``scope``, the call having ended with ``exc`` (``None``: it returned). Whether the
    caller must raise ``TimeoutError`` from ``exc``: its cancellation was this scope's."""
    state = scope[_STATE]
    if state == _ENTERED:
        scope[_STATE] = _LEFT
        # The heap may keep the entry a while; not the task, nor a follower (and its task).
        scope[_TASK] = scope[_FOLLOWER] = None
        return False
    if state == _EXPIRING:
        scope[_STATE] = _EXPIRED
        task = scope[_TASK]
        scope[_TASK] = scope[_FOLLOWER] = None
        return task.uncancel() <= scope[_CANCELLING] and exc is not None and _aio.is_cancelled(exc)
    raise RuntimeError("a timeout scope was left twice")  # pragma: no cover - a seawall bug


def abandon(scope: Scope) -> None:
    """Drop a follower the call will not go on under (the call ended another way): dormant,
    it is forgotten; entered, it is left; expiring, its cancellation request is taken back,
    so that it cannot reach the task later, doing other work."""
    state = scope[_STATE]
    if state in (_DORMANT, _ENTERED):
        scope[_STATE] = _LEFT
        scope[_TASK] = None
    elif state == _EXPIRING:
        scope[_STATE] = _EXPIRED
        scope[_TASK].uncancel()
        scope[_TASK] = None


def expired(scope: Scope) -> bool:
    """Whether the scope's deadline passed while it was entered (as ``Timeout.expired()``)."""
    state = scope[_STATE]
    return state in (_EXPIRING, _EXPIRED)


@_fork.in_child
def _forget_loops() -> None:
    # A child runs none of its parent's loops.
    global _last
    _last = (_NoLoop(), None)
