"""Retry, built on tenacity's strategies; tenacity is only involved once a call has failed."""

from __future__ import annotations

import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

from seawall import _deadline, _log
from seawall._base import PolicyBase, _NotAwaitable, unbind
from seawall._budget import RetryBudget
from seawall._clock import Clock
from seawall._config import ReadOnly, configured
from seawall._errors import RejectedError
from seawall._on_import import after_import
from seawall._stats.counters import ATTEMPT_BUCKETS, AtomicCounter, Histogram
from seawall._stats.observers import observers
from seawall._validate import (
    ExceptionMatcher,
    check_callable,
    check_int,
    check_number,
    check_one_argument,
    classifier,
    optional_number,
)

if TYPE_CHECKING:
    from tenacity import RetryCallState
    from tenacity.retry import retry_base
    from tenacity.stop import stop_base
    from tenacity.wait import wait_base

__all__ = ["Retry", "RetrySnapshot", "zero_waits"]

R = TypeVar("R")

if TYPE_CHECKING:
    WaitStrategy = wait_base | Callable[[RetryCallState], float]
    StopStrategy = stop_base | Callable[[RetryCallState], bool]


def _publish_tenacity_names() -> None:
    # tenacity is imported by the first Retry, not by `import seawall` (it costs milliseconds
    # to import); its names in this module's annotations appear here once it is imported, so
    # that typing.get_type_hints() resolves them as before.
    from tenacity import RetryCallState
    from tenacity.retry import retry_base
    from tenacity.stop import stop_base
    from tenacity.wait import wait_base

    globals().update(
        RetryCallState=RetryCallState,
        retry_base=retry_base,
        stop_base=stop_base,
        wait_base=wait_base,
        WaitStrategy=wait_base | Callable[[RetryCallState], float],
        StopStrategy=stop_base | Callable[[RetryCallState], bool],
    )


after_import("tenacity", _publish_tenacity_names)

_MISSING: Any = object()
_NOTE = "seawall: retry "


class _ZeroWaits:
    """How many ``seawall.testing.no_waits()`` blocks are open: while any is, waits are 0."""

    depth = 0


zero_waits = _ZeroWaits


@dataclass(frozen=True, slots=True)
class RetrySnapshot:
    """Lifetime counts of a :class:`Retry`."""

    name: str
    #: Logical calls by (outcome, retried): outcome is "success", "failure" or "cancelled" (a
    #: cancellation or an interrupt, in an attempt or a wait; present once one happened).
    calls: dict[tuple[str, bool], int]
    #: Attempts per logical call, per bucket of 1, 2, 3, 4, 5, 7, 10, +Inf; and their sum.
    attempt_buckets: tuple[int, ...]
    attempts_total: int
    #: Retries refused because the retry budget was spent.
    budget_exhausted: int
    #: Attempts refused inside the retry (a :class:`RejectedError`: an open breaker, a full
    #: bulkhead) that never reached the dependency; they are among ``attempts_total``.
    refused_attempts: int = 0

    @property
    def retries(self) -> int:
        """Attempts beyond the first, over all calls."""
        return self.attempts_total - sum(self.calls.values())

    @property
    def attempts_made(self) -> int:
        """Attempts that reached the dependency: ``attempts_total`` less the refused ones."""
        return self.attempts_total - self.refused_attempts


def _reraise(exc: BaseException) -> NoReturn:
    """Raise ``exc`` as it was raised. A plain ``raise exc`` out of its handler would make
    whatever exception the caller is handling its ``__context__``, in place of its own."""
    context = exc.__context__
    try:
        raise exc
    except BaseException:
        exc.__context__ = context
        raise


class _Run:
    """One logical call's retries: the I/O-free decisions, in tenacity's terms.

    The shells make the attempts and the waits; this says whether and how long to wait.
    """

    __slots__ = (
        "_deadline_at",
        "exc",
        "made_exc",
        "policy",
        "reason",
        "refused",
        "result",
        "started",
        "state",
    )

    def __init__(self, policy: Retry, fn: Any, args: Any, kwargs: Any, started: float) -> None:
        self.policy = policy
        self.started = started
        self.state = RetryCallState(policy._tenacity, fn, args, kwargs)
        # tenacity stamps its own clock; seawall's clock is the one that counts.
        self.state.start_time = started
        deadline = policy._deadline_seconds
        self._deadline_at = None if deadline is None else started + deadline
        self.exc: BaseException | None = None
        self.result: Any = None
        self.reason = ""
        # The last failure of an attempt that was made, and the attempts refused (a
        # RejectedError from inside: the dependency was not called).
        self.made_exc: BaseException | None = None
        self.refused = 0

    def failed(self, exc: BaseException) -> None:
        self.exc, self.result = exc, None
        if isinstance(exc, RejectedError):
            self.refused += 1
        else:
            self.made_exc = exc
        self.state.set_exception((type(exc), exc, exc.__traceback__))
        self.state.outcome_timestamp = self.policy._clock.monotonic()

    def returned(self, result: Any) -> None:
        self.exc, self.result = None, result
        self.state.set_result(result)
        self.state.outcome_timestamp = self.policy._clock.monotonic()

    def next_wait(self) -> float | None:
        """Seconds to wait before the next attempt, or ``None`` to give up (see ``reason``)."""
        policy, state, exc = self.policy, self.state, self.exc
        try:
            retryable = policy._should_retry(state, exc)
        except Exception as error:
            # As the breaker treats a classifier that raises: logged, and the call's own
            # outcome is what the caller gets, its note naming the judge's error.
            _log.logger().exception(
                "the on= of retry %r raised; the call is not retried", policy.name
            )
            self.reason = f"its on= raised {type(error).__name__}: {error}"
            return None
        if not retryable:
            self.reason = "not retryable"
            return None
        remaining = self._remaining()
        if isinstance(exc, RejectedError):
            if remaining is None:
                self.reason = (
                    f"rejected; no deadline to wait out its retry_after ({exc.retry_after:g}s)"
                )
                return None
            if exc.retry_after > remaining:
                self.reason = (
                    f"rejected; its retry_after ({exc.retry_after:g}s) passes the deadline"
                )
                return None
        wait = float(policy._wait(state))
        if isinstance(exc, RejectedError):
            wait = max(wait, exc.retry_after)
        if zero_waits.depth:
            wait = 0.0
        state.upcoming_sleep = wait
        if state.attempt_number >= policy._max_attempts:
            self.reason = "attempts exhausted"
            return None
        if policy._stop is not None and policy._stop(state):
            self.reason = "stop strategy"
            return None
        if remaining is not None and wait >= remaining:
            self.reason = "deadline reached"
            return None
        if policy._budget is not None and not policy._budget.try_withdraw():
            self.reason = "retry budget exhausted"
            policy._budget_refused()
            return None
        state.prepare_for_next_attempt()
        state.idle_for += wait
        return wait

    def _remaining(self) -> float | None:
        now = self.policy._clock.monotonic()
        own = None if self._deadline_at is None else self._deadline_at - now
        outer = _deadline.remaining()
        if own is None:
            return outer
        return own if outer is None else min(own, outer)

    def give_up(self) -> Any:
        attempts = self.state.attempt_number
        self.policy._finished("failure", attempts, self.refused)
        exc = self.exc
        if exc is None:
            return self.result
        if attempts == 1 and self.reason == "not retryable":
            _reraise(exc)  # retrying was never in question: nothing to add
        elapsed = self.policy._clock.monotonic() - self.started
        plural = "attempt" if attempts == 1 else "attempts"
        made = ""
        if self.refused:
            made = f" ({attempts - self.refused} made, {self.refused} refused"
            if isinstance(exc, RejectedError):
                made += f": {type(exc).__name__}"
            made += ")"
        if isinstance(exc, RejectedError) and self.made_exc is not None:
            # Refused after attempts that reached the dependency (a breaker opened during the
            # retries): the caller gets what the dependency said, not the refusal.
            exc = self.made_exc
        mine = f"{_NOTE}{self.policy.name!r} gave up "
        notes = getattr(exc, "__notes__", None)
        if notes:
            # An exception raised again (a shared instance): one note of this retry, the
            # latest; an enclosing retry's note is its own.
            notes[:] = [note for note in notes if not note.startswith(mine)]
        exc.add_note(f"{mine}after {attempts} {plural}{made} over {elapsed:.3g}s ({self.reason})")
        _reraise(exc)

    def succeeded(self, result: Any) -> Any:
        self.policy._finished("success", self.state.attempt_number, self.refused)
        return result

    def interrupted(self, waiting: bool) -> None:
        """The call ends in a cancellation or an interrupt (not an ``Exception``), in an
        attempt or, when ``waiting``, in the wait before one: its attempts still count."""
        made = self.state.attempt_number - (1 if waiting else 0)
        self.policy._finished("cancelled", made, self.refused)


class RetryView:
    """What a Policy's fast path (seawall._fast) may use of a retry, and nothing else.

    A first attempt that succeeds is counted as ``Retry``'s shells count it
    (``count_first_try_success``; the budget's deposit through ``budget``). A failed first
    attempt is handed over: ``begin`` makes the retry's run (timed from the call's start when
    ``timed``), ``finished`` counts a cancelled call, and ``go_on``/``ago_on`` make any
    further attempts through the composed parts, as the retry's own shells do.
    """

    __slots__ = (
        "ago_on",
        "begin",
        "budget",
        "count_first_try_success",
        "finished",
        "go_on",
        "timed",
    )

    def __init__(self, retry: Retry) -> None:
        self.timed = retry._timed
        self.budget = None if retry._budget is None else retry._budget._fast_view()
        self.count_first_try_success = retry._count_first_try_success
        self.begin = retry._begin
        self.finished = retry._finished
        self.go_on = retry._go_on
        self.ago_on = retry._ago_on


class Retry(PolicyBase):
    """Retries a failed call, with backoff, within attempts, a deadline and a budget.

    ``on`` (required) names what is worth retrying: exception types, a predicate on the
    exception, or a tenacity retry strategy. ``attempts`` counts the first call. ``wait`` is a
    tenacity wait strategy or fixed seconds (default: exponential backoff from 0.1 s, capped
    at 5 s, with up to 0.1 s of jitter); ``stop`` adds a tenacity stop strategy; ``deadline``
    bounds the whole call, first attempt included, and a wait that would pass it is not made.
    ``retry_result`` retries on return values it judges bad. ``budget`` is a shared
    :class:`RetryBudget`. When retrying ends, the last exception is raised as it was (with a
    note of attempts and time), or the last result is returned.

    A :class:`RejectedError` (open circuit, full bulkhead) is retried only when ``on`` covers
    it and its ``retry_after`` fits in the remaining deadline, and then not before it.
    A call that succeeds at once never touches tenacity.
    """

    attempts: ReadOnly[int] = ReadOnly("_max_attempts")
    deadline: ReadOnly[float | None] = ReadOnly("_deadline_seconds")
    budget: ReadOnly[RetryBudget | None] = ReadOnly("_budget")

    @configured
    def __init__(
        self,
        *,
        on: ExceptionMatcher | retry_base = _MISSING,
        attempts: int = 3,
        wait: WaitStrategy | float | None = None,
        stop: StopStrategy | None = None,
        deadline: float | None = None,
        retry_result: Callable[[Any], bool] | None = None,
        budget: RetryBudget | None = None,
        name: str | None = None,
        clock: Clock | None = None,
    ) -> None:
        import tenacity  # here, not at import: see _publish_tenacity_names

        if "retry_base" not in globals():  # pragma: no cover - published by the import
            _publish_tenacity_names()
        super().__init__(name=name, clock=clock)
        if on is _MISSING:
            raise TypeError(
                "Retry needs on=: the exception types (or a predicate) worth retrying. "
                "Retrying every exception hides bugs; say on=Exception if you mean it."
            )
        if isinstance(on, retry_base):
            self._retry_strategy: retry_base | None = on
            self._retry_on: Callable[[BaseException], bool] | None = None
        else:
            self._retry_strategy = None
            self._retry_on = classifier("on", on)
            if self._retry_on is None:
                raise TypeError("on must be exception types, a predicate or a tenacity strategy")
        self._max_attempts = check_int("attempts", attempts)
        if wait is None:
            try:
                wait = tenacity.wait_exponential_jitter(multiplier=0.1, max=5.0, jitter=0.1)
            except TypeError:  # tenacity < 9.2 names it initial (deprecated since)
                wait = tenacity.wait_exponential_jitter(initial=0.1, max=5.0, jitter=0.1)
        elif isinstance(wait, int | float) and not isinstance(wait, bool):
            seconds = check_number("wait", wait, min_inclusive=True, max_inclusive=False)
            wait = tenacity.wait_fixed(seconds)
        else:
            check_callable("wait", wait)
        self._wait: Callable[[RetryCallState], float] = wait  # type: ignore[assignment]
        if stop is not None:
            check_callable("stop", stop)
        self._stop: Callable[[RetryCallState], bool] | None = stop
        self._deadline_seconds = optional_number("deadline", deadline)
        self._timed = self._deadline_seconds is not None or stop is not None
        if retry_result is not None:
            check_callable("retry_result", retry_result)
            check_one_argument("retry_result", retry_result, "the result")
        self._retry_result = retry_result
        if budget is not None and not isinstance(budget, RetryBudget):
            raise TypeError(f"budget must be a RetryBudget, got {type(budget).__name__}")
        self._budget = budget
        # tenacity's view of this policy: what its RetryCallState refers back to.
        self._tenacity = tenacity.Retrying(sleep=self._clock.sleep, wait=self._wait, reraise=True)
        self._first_try_successes = AtomicCounter()
        self._count_first_try_success = self._first_try_successes.increment
        self._lock = threading.Lock()
        self._outcomes = {("success", True): 0, ("failure", False): 0, ("failure", True): 0}
        self._attempts = Histogram(ATTEMPT_BUCKETS)
        self._budget_exhausted = 0
        self._refused = 0

    # -- the shells ------------------------------------------------------------------------

    def _call(self, fn: Callable[..., R], /, *args: Any) -> R:
        # Inline rather than a method: this runs on every call. The clock is read only if a
        # deadline or stop needs the start (tenacity's stop strategies time the first try).
        if self._budget is not None:
            self._budget.deposit()
        started = self._clock.monotonic() if self._timed else None
        try:
            result = fn(*args)
        except Exception as exc:
            run = self._begin(fn, args, started)
            run.failed(exc)
        except BaseException:
            self._finished("cancelled", 1, 0)  # a cancellation or an interrupt: still counted
            raise
        else:
            if self._retry_result is None or not self._bad_result(result):
                self._count_first_try_success()
                if observers.retry_attempts is not None:
                    observers.retry_attempts(self.name, 1)
                return result
            run = self._begin(fn, args, started)
            run.returned(result)
        return self._go_on(run, fn, args)

    def _go_on(self, run: _Run, fn: Callable[..., R], args: Any) -> R:
        """After the first attempt's outcome: wait, try again, until ``run`` says stop."""
        while (wait := run.next_wait()) is not None:
            waiting = True
            try:
                if wait > 0:
                    self._clock.sleep(wait)
                waiting = False
                result = fn(*args)
            except Exception as exc:
                if waiting:  # the clock's sleep failed: not an attempt's outcome
                    run.interrupted(waiting)
                    raise
                run.failed(exc)
            except BaseException:
                run.interrupted(waiting)
                raise
            else:
                if self._retry_result is None or not self._bad_result(result):
                    return run.succeeded(result)  # type: ignore[no-any-return]
                run.returned(result)
        return run.give_up()  # type: ignore[no-any-return]

    async def _acall(self, fn: Callable[..., Awaitable[R]], /, *args: Any) -> R:
        # Inline rather than a method: this runs on every call. The clock is read only if a
        # deadline or stop needs the start (tenacity's stop strategies time the first try).
        if self._budget is not None:
            self._budget.deposit()
        started = self._clock.monotonic() if self._timed else None
        try:
            result = await fn(*args)
        except Exception as exc:
            run = self._begin(fn, args, started)
            run.failed(exc)
        except BaseException as exc:
            if not isinstance(exc, _NotAwaitable):  # a refused acall is no outcome
                self._finished("cancelled", 1, 0)  # a cancellation or an interrupt: counted
            raise
        else:
            if self._retry_result is None or not self._bad_result(result):
                self._count_first_try_success()
                if observers.retry_attempts is not None:
                    observers.retry_attempts(self.name, 1)
                return result
            run = self._begin(fn, args, started)
            run.returned(result)
        return await self._ago_on(run, fn, args)

    async def _ago_on(self, run: _Run, fn: Callable[..., Awaitable[R]], args: Any) -> R:
        """After the first attempt's outcome: wait, try again, until ``run`` says stop."""
        while (wait := run.next_wait()) is not None:
            waiting = True
            try:
                if wait > 0:
                    await self._clock.asleep(wait)
                waiting = False
                result = await fn(*args)
            except Exception as exc:
                if waiting:  # the clock's sleep failed: not an attempt's outcome
                    run.interrupted(waiting)
                    raise
                run.failed(exc)
            except BaseException:
                run.interrupted(waiting)
                raise
            else:
                if self._retry_result is None or not self._bad_result(result):
                    return run.succeeded(result)  # type: ignore[no-any-return]
                run.returned(result)
        return run.give_up()  # type: ignore[no-any-return]

    def _fast_view(self) -> RetryView | None:
        """The fast path's view of this retry, or ``None`` if it judges results (a success
        is then not known until ``retry_result`` has seen it)."""
        return RetryView(self) if self._retry_result is None else None

    # -- the core --------------------------------------------------------------------------

    def _begin(self, fn: Any, args: Any, started: float | None) -> _Run:
        # Without a deadline or stop the clock was not read up front: time runs from the failure.
        fn, kwargs = unbind(fn)  # tenacity's state shows the call as it was made
        return _Run(self, fn, args, kwargs, self._clock.monotonic() if started is None else started)

    def _has_run(self) -> bool:
        return super()._has_run() or self.snapshot().attempts_total > 0

    def _after_fork(self) -> None:
        super()._after_fork()
        self._lock = threading.Lock()
        if self._budget is not None:
            self._budget._after_fork()

    def _bad_result(self, result: Any) -> bool:
        """``retry_result``'s verdict on ``result``; one that raises is logged, and the result
        is taken as it is."""
        assert self._retry_result is not None
        try:
            return bool(self._retry_result(result))
        except Exception:
            _log.logger().exception(
                "retry_result of retry %r raised; the result is kept", self.name
            )
            return False

    def _should_retry(self, state: RetryCallState, exc: BaseException | None) -> bool:
        if exc is None:
            return True  # retry_result already judged the result bad
        if self._retry_strategy is not None:
            return bool(self._retry_strategy(state))
        assert self._retry_on is not None
        return bool(self._retry_on(exc))

    def _finished(self, outcome: str, attempts: int, refused: int) -> None:
        with self._lock:
            key = (outcome, attempts > 1)
            self._outcomes[key] = self._outcomes.get(key, 0) + 1
            self._attempts.observe(attempts)
            self._refused += refused
        if observers.retry_attempts is not None:
            observers.retry_attempts(self.name, attempts)

    def _budget_refused(self) -> None:
        with self._lock:
            self._budget_exhausted += 1

    # -- what users read -------------------------------------------------------------------

    def snapshot(self) -> RetrySnapshot:
        first = self._first_try_successes.value
        with self._lock:
            calls = dict(self._outcomes)
            buckets, attempts_sum = self._attempts.read()
            exhausted = self._budget_exhausted
            refused = self._refused
        calls[("success", False)] = first
        buckets = (buckets[0] + first, *buckets[1:])
        return RetrySnapshot(
            name=self.name,
            calls=calls,
            attempt_buckets=buckets,
            attempts_total=int(attempts_sum) + first,
            budget_exhausted=exhausted,
            refused_attempts=refused,
        )

    def __repr__(self) -> str:
        deadline, budget = self._deadline_seconds, self._budget
        extra = f", deadline={deadline:g}" if deadline is not None else ""
        extra += f", budget={budget!r}" if budget is not None else ""
        return f"Retry(attempts={self._max_attempts}{extra}, name={self.name!r})"
