"""A Policy's fast path: the common call, admitted at once and successful at once, in one frame.

Composed through the parts' raw shells, a call passes one frame per part, and each part reads
the clock for itself. For a call that every part lets through at once (breaker closed, a free
bulkhead slot) and that succeeds on its first attempt in time, the fast path does in one frame
exactly what the parts would: the same counts, the same deadline published, one clock read
before the call and one after. Anything else goes the composed way: a breaker not closed or a
full bulkhead before the call starts (nothing has been counted yet); a failure or a late
return after it, when each part's verdict is handed over to that part (the timeout's counts,
the breaker's window, the retry's loop, which makes any further attempts through the
composed parts). ``tests/test_fast_path.py`` checks it against the composed parts, outcome by
outcome.

Used for policies of retry, breaker, attempt timeout and bulkhead (any two or more of them)
whose parts share one clock, whose breaker's success and bulkhead's free slot need no lock,
and whose retry does not judge results. A fault injector (``chaos``) is passed by while it
is disarmed; an armed one sends every call the composed way.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from seawall import _deadline, _loop_timeouts
from seawall._base import _NotAwaitable
from seawall._deadline import Deadline
from seawall._errors import TimeoutExceededError
from seawall._retry import _Run
from seawall._stats.observers import observers

if TYPE_CHECKING:
    from seawall._clock import Clock
    from seawall._compose import Policy
    from seawall._timeout import TimeoutView

__all__ = ["fast_acall", "fast_call"]

_new_deadline = object.__new__
_publish = _deadline.publish
_enter = _deadline.enter
_leave = _deadline.leave
_current_deadline = _deadline.current_deadline
_enter_scope = _loop_timeouts.enter
_leave_scope = _loop_timeouts.leave
_expired = _loop_timeouts.expired
_enter_pair = _loop_timeouts.enter_pair
_follower = _loop_timeouts.follower
_abandon = _loop_timeouts.abandon


class _Parts:
    """What the fast path may use of a policy's parts, taken once: each part's view (see
    ``_fast_view`` in each part's module: the part decides what it exposes and whether it is
    eligible), and the parts themselves for their public attributes only (names, clocks);
    and the verdict on a failed attempt, which both shells share."""

    def __init__(self, policy: Policy, *, sync: bool) -> None:
        retry, breaker = policy.retry, policy.breaker
        timeout, bulkhead = policy.attempt_timeout, policy.bulkhead
        self.retry, self.breaker, self.timeout, self.bulkhead = retry, breaker, timeout, bulkhead
        self.retry_view = None if retry is None else retry._fast_view()
        self.breaker_view = None if breaker is None else breaker._fast_view()
        self.timeout_view = None if timeout is None else timeout._fast_view()
        self.bulkhead_view = None if bulkhead is None else bulkhead._fast_view()
        chaos = policy.chaos
        self.chaos_view = None if chaos is None else chaos._fast_view()
        self.budget = None if self.retry_view is None else self.retry_view.budget
        clocks: list[Clock] = [part.clock for part in (retry, breaker, timeout) if part]
        if self.budget is not None:
            clocks.append(self.budget.clock)
        pairs = [
            (retry, self.retry_view),
            (breaker, self.breaker_view),
            (timeout, self.timeout_view),
            (bulkhead, self.bulkhead_view),
        ]
        present = [(part, view) for part, view in pairs if part is not None]
        self.eligible = (
            policy.fallback is None
            and len(present) >= 2
            and all(view is not None for _, view in present)
            and all(clock is clocks[0] for clock in clocks)
        )
        if not self.eligible:
            return
        self.clock: Any = clocks[0]
        self.now: Callable[[], float] = self.clock.monotonic
        # The composed parts inside the retry, as the composed retry is handed them (in the
        # Policy's order): the first one's raw shell, and the others' before the call's own
        # function and args.
        inner: list[Any] = [
            view
            for view in (self.breaker_view, self.timeout_view, self.bulkhead_view, self.chaos_view)
            if view
        ]
        calls = [view.call if sync else view.acall for view in inner] or [None]
        self.inner: Any = calls[0]
        self.inner_args: tuple[Any, ...] = tuple(calls[1:])
        self.timed = self.retry_view is not None and self.retry_view.timed
        self.chain = (self.inner, self.inner_args)
        self.views: tuple[Any, Any, Any, Any] = (
            self.retry_view,
            self.breaker_view,
            self.timeout_view,
            self.bulkhead_view,
        )
        budget, breaker_view, timeout_view, bulkhead_view = (
            self.budget,
            self.breaker_view,
            self.timeout_view,
            self.bulkhead_view,
        )
        self.deposit: tuple[Any, Any] = (
            (None, None) if budget is None else (budget.window, budget.count_call)
        )
        self.breaker_window: Any = None if breaker_view is None else breaker_view.window
        self.attempt_seconds = 0.0 if timeout_view is None else timeout_view.seconds
        self.slots: tuple[Any, Any, Any, Any] = (
            (None, None, None, None)
            if bulkhead_view is None
            else (
                bulkhead_view.queue,
                bulkhead_view.take,
                bulkhead_view.give_back,
                bulkhead_view.count_admitted,
            )
        )

    def verdict(self, fn: Any, args: Any, exc: BaseException, start: float) -> _Run | None:
        """In the handler of the attempt's exception, as in the composed parts: the breaker's
        verdict, then the retry's. The retry's run if it goes on, else ``None`` (re-raise)."""
        if self.breaker_view is not None:
            self.breaker_view.on_exception(None, exc, 0.0)
        retry = self.retry_view
        if retry is None:
            return None
        if not isinstance(exc, Exception):  # a cancellation or an interrupt: still counted
            if not isinstance(exc, _NotAwaitable):  # but not a refused acall
                retry.finished("cancelled", 1, 0)
            return None
        started = start if self.timed else None
        run = retry.begin(self.inner, (*self.inner_args, fn, *args), started)
        run.failed(exc)
        return run


def _count_timeout_failure(timeout: TimeoutView, own: Deadline, exc: BaseException) -> None:
    """The timeout's verdict on an exception from inside it (as its own shell counts it)."""
    counts = timeout.counts
    if isinstance(exc, TimeoutExceededError):
        (counts.timeout if own.remaining() <= 0.0 else counts.failure).increment()
    elif isinstance(exc, Exception):
        counts.failure.increment()
    elif not isinstance(exc, _NotAwaitable):  # a refused acall is no outcome
        counts.cancelled.increment()


def fast_call(policy: Policy, composed: Callable[..., Any]) -> Callable[..., Any] | None:
    """The sync raw shell of ``policy`` with the fast path, or ``None`` if it cannot have one.

    ``composed`` is the policy's parts composed: what a call that leaves the fast path before
    it starts goes through.
    """
    parts = _Parts(policy, sync=True)
    if not parts.eligible:
        return None
    # Closure locals: each read in a call is then one cell load.
    retry, breaker, timeout, bulkhead = parts.views
    retry_part, timeout_part, bulkhead_part = parts.retry, parts.timeout, parts.bulkhead
    clock, now, verdict, inner, inner_args = parts.clock, parts.now, parts.verdict, *parts.chain
    budget, budget_window, count_call = parts.budget, *parts.deposit
    breaker_window, attempt_seconds = parts.breaker_window, parts.attempt_seconds
    queue, take, give_back, count_admitted = parts.slots
    chaos = parts.chaos_view

    def call(fn: Callable[..., Any], /, *args: Any) -> Any:
        if breaker is not None and not breaker.closed:
            return composed(fn, *args)
        if chaos is not None and chaos.armed:  # injecting: every part must see it
            return composed(fn, *args)
        if bulkhead is not None:
            # A free slot while nobody waits, lock-free as in Bulkhead._enter_or_queue.
            taken = False
            if not queue:
                try:
                    take()
                    taken = True
                except IndexError:
                    pass
            if not taken:  # outside the handler: the bulkhead's own shell queues or refuses
                return composed(fn, *args)
            count_admitted()
        own: Any = None
        token: Any = None
        try:
            start = now()
            if budget is not None:
                if start >= budget_window.bucket_end:
                    budget.roll()
                count_call()
            if timeout is not None:
                # Filled in here rather than by Deadline's __init__, as Timeout does.
                own = _new_deadline(Deadline)
                own.at, own.clock, own.owner = start + attempt_seconds, clock, timeout_part
                token = _publish(own) if _current_deadline() is None else _enter(own)
        except BaseException:
            if bulkhead is not None:
                bulkhead.release()
            raise
        try:
            if bulkhead is not None:
                # Where the bulkhead's shell reports it: inside the deadline, and an error
                # of the recorder's is the attempt's.
                recorder = observers.bulkhead_wait
                if recorder is not None:
                    recorder(bulkhead_part.name, 0.0)  # type: ignore[union-attr]
            result = fn(*args)
        except BaseException as exc:
            if token is not None:
                _leave(token)
            if bulkhead is not None:
                bulkhead.release()
            if timeout is not None:
                _count_timeout_failure(timeout, own, exc)
            run = verdict(fn, args, exc, start)
            if run is None:
                raise
        else:
            if token is not None:
                _leave(token)
            if bulkhead is not None:
                give_back(None)  # as Bulkhead._release does
                if queue:
                    bulkhead.pass_on()
            end = now()
            if timeout is not None:
                if end > own.at:  # each timeout judges its own deadline
                    timeout.counts.timeout.increment()
                    try:
                        raise own.exceeded()
                    except TimeoutExceededError as exc:
                        run = verdict(fn, args, exc, start)
                        if run is None:
                            raise
                    return retry.go_on(run, inner, (*inner_args, fn, *args))
                timeout.count_success()
            if breaker is not None:
                if end >= breaker_window.bucket_end:
                    breaker.roll()
                breaker.count_success()
            if retry is not None:
                retry.count_first_try_success()
                if observers.retry_attempts is not None:
                    observers.retry_attempts(retry_part.name, 1)  # type: ignore[union-attr]
            return result
        # Outside the handler, as in the composed retry: further attempts (and their errors)
        # are not made while the first attempt's exception is being handled.
        return retry.go_on(run, inner, (*inner_args, fn, *args))

    total = policy.total_timeout
    return call if total is None else functools.partial(total._fast_view().call, call)


def fast_acall(policy: Policy, composed: Callable[..., Any]) -> Callable[..., Any] | None:
    """The async raw shell of ``policy`` with the fast path, or ``None`` (see :func:`fast_call`;
    the attempt timeout cancels the call as :class:`Timeout`'s async shell does).

    A total timeout on the parts' clock, longer than the attempt timeout, is folded in: the
    first attempt cannot outlast the attempt timeout's scope before the total's, so the
    total's scope is entered dormant behind it (see ``_loop_timeouts.enter_pair``) and a first
    attempt that succeeds in time costs it one count. Anything else after the first attempt
    (a retry, a failure, a late return) goes on inside the total timeout's own shell, started
    when the call started.
    """
    parts = _Parts(policy, sync=False)
    if not parts.eligible:
        return None
    # Closure locals: each read in a call is then one cell load.
    retry, breaker, timeout, bulkhead = parts.views
    retry_part, timeout_part, bulkhead_part = parts.retry, parts.timeout, parts.bulkhead
    clock, now, verdict, inner, inner_args = parts.clock, parts.now, parts.verdict, *parts.chain
    budget, budget_window, count_call = parts.budget, *parts.deposit
    breaker_window, attempt_seconds = parts.breaker_window, parts.attempt_seconds
    queue, take, give_back, count_admitted = parts.slots
    chaos = parts.chaos_view
    total_part = policy.total_timeout
    total = None if total_part is None else total_part._fast_view()
    around = total  # the total's shell around this one, if it is not folded in
    if (
        total is not None
        and timeout is not None
        and total_part.clock is clock  # type: ignore[union-attr]
        and timeout.seconds < total.seconds
    ):
        around = None
    if around is not None:
        total = None
    total_seconds = 0.0 if total is None else total.seconds
    if total is not None:
        # A call that leaves before it starts goes the composed way, the total's shell first.
        composed = functools.partial(total.acall, composed)

    async def acall(fn: Callable[..., Awaitable[Any]], /, *args: Any) -> Any:
        if breaker is not None and not breaker.closed:
            return await composed(fn, *args)
        if chaos is not None and chaos.armed:
            return await composed(fn, *args)
        scope: Any = None
        follower: Any = None  # the total timeout's scope, dormant behind the attempt's
        if timeout is not None:
            # Before anything is counted: outside a task it raises, and the composed parts
            # then say what happens (as they do for an open breaker).
            try:
                if total is None:
                    scope = _enter_scope(attempt_seconds)
                else:
                    scope = _enter_pair(attempt_seconds, total_seconds)
                    follower = _follower(scope)
            except RuntimeError:
                return await composed(fn, *args)
        if bulkhead is not None:
            taken = False
            if not queue:
                try:
                    take()
                    taken = True
                except IndexError:
                    pass
            if not taken:
                if scope is not None:
                    _leave_scope(scope, None)
                return await composed(fn, *args)
            count_admitted()
        token: Any = None
        own: Any = None
        expired: Any = None  # the error this shell raised for the scope's expiry
        try:
            start = now()
            if budget is not None:
                if start >= budget_window.bucket_end:
                    budget.roll()
                count_call()
            if timeout is not None:
                own = _new_deadline(Deadline)
                own.at, own.clock, own.owner = start + attempt_seconds, clock, timeout_part
                token = _publish(own) if _current_deadline() is None else _enter(own)
        except BaseException:
            if scope is not None:
                _leave_scope(scope, None)
            if bulkhead is not None:
                bulkhead.release()
            raise
        try:
            run: _Run | None = None
            error: BaseException | None = None  # what the call raises, if no retry follows
            try:
                try:
                    if bulkhead is not None:
                        recorder = observers.bulkhead_wait
                        if recorder is not None:
                            recorder(bulkhead_part.name, 0.0)  # type: ignore[union-attr]
                    if scope is not None:
                        try:
                            result = await fn(*args)
                        except BaseException as exc:
                            if _leave_scope(scope, exc):
                                raise TimeoutError from exc  # as asyncio.timeout turns it
                            raise
                        _leave_scope(scope, None)
                    else:
                        result = await fn(*args)
                except TimeoutError as exc:
                    # The attempt timeout's own expiry becomes its error, raised from this one,
                    # as Timeout's async shell raises it.
                    if scope is None or not _expired(scope):
                        raise
                    timeout.counts.timeout.increment()
                    expired = own.exceeded()
                    raise expired from exc
            except BaseException as exc:
                if token is not None:
                    _leave(token)
                if bulkhead is not None:
                    bulkhead.release()
                if timeout is not None and exc is not expired:
                    _count_timeout_failure(timeout, own, exc)
                run = verdict(fn, args, exc, start)
                if run is None:
                    if total is None:
                        raise
                    error = exc
            else:
                if token is not None:
                    _leave(token)
                if bulkhead is not None:
                    give_back(None)  # as Bulkhead._release does
                    if queue:
                        bulkhead.pass_on()
                if timeout is not None:
                    if _expired(scope):
                        # It swallowed its cancellation and returned late: dropped, as in sync.
                        timeout.counts.timeout.increment()
                        try:
                            raise own.exceeded()
                        except TimeoutExceededError as exc:
                            run = verdict(fn, args, exc, start)
                            if run is None:
                                if total is None:
                                    raise
                                error = exc
                    else:
                        timeout.count_success()
                if run is None and error is None:
                    if breaker is not None:
                        if now() >= breaker_window.bucket_end:
                            breaker.roll()
                        breaker.count_success()
                    if retry is not None:
                        retry.count_first_try_success()
                        if observers.retry_attempts is not None:
                            observers.retry_attempts(retry_part.name, 1)  # type: ignore[union-attr]
                    if total is not None:
                        total.count_success()
                    return result
            # Outside the handler, as in the composed retry (see fast_call).
            if total is None:
                return await retry.ago_on(run, inner, (*inner_args, fn, *args))
            # The rest of the call is the total timeout's, from the call's start.
            started = (follower, start + total_seconds)
            if run is None:
                return await total.acall(_reraise, error, _started=started)
            go_on = retry.ago_on
            return await total.acall(go_on, run, inner, (*inner_args, fn, *args), _started=started)
        except BaseException:
            if follower is not None:
                # Ended before the total timeout's shell took the call over (a verdict that
                # raised): its scope must not cancel the task later.
                _abandon(follower)
            raise

    return acall if around is None else functools.partial(around.acall, acall)


async def _reraise(error: BaseException) -> Any:
    """The end of a call whose first attempt failed for good, inside its total timeout."""
    raise error
