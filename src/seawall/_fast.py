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
and whose retry does not judge results.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from seawall import _aio, _deadline
from seawall._base import _NotAwaitable
from seawall._breaker import _CLOSED
from seawall._deadline import Deadline
from seawall._errors import TimeoutExceededError
from seawall._observers import observers
from seawall._retry import _Run
from seawall._timeout import Timeout

if TYPE_CHECKING:
    from seawall._clock import Clock
    from seawall._compose import Policy

__all__ = ["fast_acall", "fast_call"]

_new_deadline = object.__new__
_publish = _deadline.publish
_enter = _deadline.enter
_leave = _deadline.leave
_current_deadline = _deadline.current_deadline


class _Parts:
    """What the fast path reads of a policy's parts, taken once; and the verdict on a failed
    attempt, which both shells share."""

    def __init__(self, policy: Policy, *, sync: bool) -> None:
        retry, breaker = policy.retry, policy.breaker
        timeout, bulkhead = policy.attempt_timeout, policy.bulkhead
        self.retry, self.breaker, self.timeout, self.bulkhead = retry, breaker, timeout, bulkhead
        clocks: list[Clock] = []
        if retry is not None:
            clocks.append(retry.clock)
            if retry.budget is not None:
                clocks.append(retry.budget._clock)
        if breaker is not None:
            clocks.append(breaker.clock)
        if timeout is not None:
            clocks.append(timeout.clock)
        present = [retry, breaker, timeout, bulkhead]
        self.eligible = (
            policy.fallback is None
            and policy.total_timeout is None
            and sum(part is not None for part in present) >= 2
            and all(clock is clocks[0] for clock in clocks)
            and (retry is None or retry._retry_result is None)
            and (breaker is None or breaker._lockfree)
            and (bulkhead is None or bulkhead._lockfree)
        )
        if not self.eligible:
            return
        self.clock: Any = clocks[0]
        self.now: Callable[[], float] = self.clock.monotonic
        # The composed parts inside the retry, as the composed retry is handed them: the
        # first one's raw shell, and the others' before the call's own function and args.
        inner = [part for part in policy.policies if part is not retry]
        calls = [part._call if sync else part._acall for part in inner]
        self.inner: Any = calls[0]
        self.inner_args: tuple[Any, ...] = tuple(calls[1:])
        self.timed = retry is not None and retry._timed
        self.budget = None if retry is None else retry.budget
        self.budget_window: Any = None if self.budget is None else self.budget._window
        self.count_call: Any = None if self.budget is None else self.budget._count_call
        self.breaker_window: Any = None if breaker is None else breaker._window
        self.queue = None if bulkhead is None else bulkhead._waiters
        self.take: Any = None if bulkhead is None else bulkhead._free.pop
        self.give_back: Any = None if bulkhead is None else bulkhead._free.append
        self.count_admitted: Any = None if bulkhead is None else bulkhead._count_admitted

    def verdict(self, fn: Any, args: Any, exc: BaseException, start: float) -> _Run | None:
        """In the handler of the attempt's exception, as in the composed parts: the breaker's
        verdict, then the retry's. The retry's run if it goes on, else ``None`` (re-raise)."""
        if self.breaker is not None:
            self.breaker._on_exception(None, exc, 0.0)
        retry = self.retry
        if retry is None:
            return None
        if not isinstance(exc, Exception):  # a cancellation or an interrupt: still counted
            if not isinstance(exc, _NotAwaitable):  # but not a refused acall
                retry._finished("cancelled", 1, 0)
            return None
        started = start if self.timed else None
        run = retry._begin(self.inner, (*self.inner_args, fn, *args), started)
        run.failed(exc)
        return run


def _count_timeout_failure(timeout: Timeout, own: Deadline, exc: BaseException) -> None:
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
    retry, breaker, timeout, bulkhead = parts.retry, parts.breaker, parts.timeout, parts.bulkhead
    clock, now, verdict = parts.clock, parts.now, parts.verdict
    inner, inner_args = parts.inner, parts.inner_args
    budget, budget_window, count_call = parts.budget, parts.budget_window, parts.count_call
    breaker_window, queue, take = parts.breaker_window, parts.queue, parts.take
    give_back, count_admitted = parts.give_back, parts.count_admitted

    def call(fn: Callable[..., Any], /, *args: Any) -> Any:
        if breaker is not None and breaker._state is not _CLOSED:
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
                    budget._roll()
                count_call()
            if timeout is not None:
                # Filled in here rather than by Deadline's __init__, as Timeout does.
                own = _new_deadline(Deadline)
                own.at, own.clock, own.owner = start + timeout.seconds, clock, timeout
                token = _publish(own) if _current_deadline() is None else _enter(own)
        except BaseException:
            if bulkhead is not None:
                bulkhead._release()
            raise
        try:
            if bulkhead is not None:
                # Where the bulkhead's shell reports it: inside the deadline, and an error
                # of the recorder's is the attempt's.
                recorder = observers.bulkhead_wait
                if recorder is not None:
                    recorder(bulkhead.name, 0.0)
            result = fn(*args)
        except BaseException as exc:
            if token is not None:
                _leave(token)
            if bulkhead is not None:
                bulkhead._release()
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
                    bulkhead._pass_on()
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
                    return retry._go_on(run, inner, (*inner_args, fn, *args))  # type: ignore[union-attr]
                timeout._count_success()
            if breaker is not None:
                if end >= breaker_window.bucket_end:
                    breaker._roll()
                breaker._count_success()
            if retry is not None:
                retry._count_first_try_success()
                if observers.retry_attempts is not None:
                    observers.retry_attempts(retry.name, 1)
            return result
        # Outside the handler, as in the composed retry: further attempts (and their errors)
        # are not made while the first attempt's exception is being handled.
        return retry._go_on(run, inner, (*inner_args, fn, *args))  # type: ignore[union-attr]

    return call


def fast_acall(policy: Policy, composed: Callable[..., Any]) -> Callable[..., Any] | None:
    """The async raw shell of ``policy`` with the fast path, or ``None`` (see :func:`fast_call`;
    the attempt timeout cancels the call as :class:`Timeout`'s async shell does)."""
    parts = _Parts(policy, sync=False)
    if not parts.eligible:
        return None
    retry, breaker, timeout, bulkhead = parts.retry, parts.breaker, parts.timeout, parts.bulkhead
    clock, now, verdict = parts.clock, parts.now, parts.verdict
    inner, inner_args = parts.inner, parts.inner_args
    budget, budget_window, count_call = parts.budget, parts.budget_window, parts.count_call
    breaker_window, queue, take = parts.breaker_window, parts.queue, parts.take
    give_back, count_admitted = parts.give_back, parts.count_admitted

    async def acall(fn: Callable[..., Awaitable[Any]], /, *args: Any) -> Any:
        if breaker is not None and breaker._state is not _CLOSED:
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
                return await composed(fn, *args)
            count_admitted()
        token: Any = None
        scope: Any = None
        own: Any = None
        expired: Any = None  # the error this shell raised for the scope's expiry
        try:
            start = now()
            if budget is not None:
                if start >= budget_window.bucket_end:
                    budget._roll()
                count_call()
            if timeout is not None:
                seconds = timeout.seconds
                scope = _aio.timeout(seconds)  # first, as Timeout's async shell does
                own = _new_deadline(Deadline)
                own.at, own.clock, own.owner = start + seconds, clock, timeout
                token = _publish(own) if _current_deadline() is None else _enter(own)
        except BaseException:
            if bulkhead is not None:
                bulkhead._release()
            raise
        try:
            try:
                if bulkhead is not None:
                    recorder = observers.bulkhead_wait
                    if recorder is not None:
                        recorder(bulkhead.name, 0.0)
                if scope is not None:
                    async with scope:
                        result = await fn(*args)
                else:
                    result = await fn(*args)
            except TimeoutError as exc:
                # The attempt timeout's own expiry becomes its error, raised from this one,
                # as Timeout's async shell raises it.
                if scope is None or not scope.expired():
                    raise
                timeout.counts.timeout.increment()  # type: ignore[union-attr]
                expired = own.exceeded()
                raise expired from exc
        except BaseException as exc:
            if token is not None:
                _leave(token)
            if bulkhead is not None:
                bulkhead._release()
            if timeout is not None and exc is not expired:
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
                    bulkhead._pass_on()
            if timeout is not None:
                if scope.expired():
                    # It swallowed its cancellation and returned late: dropped, as in sync.
                    timeout.counts.timeout.increment()
                    try:
                        raise own.exceeded()
                    except TimeoutExceededError as exc:
                        run = verdict(fn, args, exc, start)
                        if run is None:
                            raise
                    return await retry._ago_on(run, inner, (*inner_args, fn, *args))  # type: ignore[union-attr]
                timeout._count_success()
            if breaker is not None:
                if now() >= breaker_window.bucket_end:
                    breaker._roll()
                breaker._count_success()
            if retry is not None:
                retry._count_first_try_success()
                if observers.retry_attempts is not None:
                    observers.retry_attempts(retry.name, 1)
            return result
        # Outside the handler, as in the composed retry (see fast_call).
        return await retry._ago_on(run, inner, (*inner_args, fn, *args))  # type: ignore[union-attr]

    return acall
