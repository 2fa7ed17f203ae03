"""The circuit breaker: an I/O-free state machine and window, with thin sync and async shells."""

from __future__ import annotations

import enum
import functools
import math
import random
import sys
import threading
import time
import weakref
from collections.abc import Awaitable, Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, NoReturn, ParamSpec, TypeVar

from seawall import _log
from seawall._base import PolicyBase, _NotAwaitable, bind
from seawall._clock import Clock
from seawall._config import configured
from seawall._errors import CircuitOpenError, RejectedError
from seawall._stats.counters import GIL_ENABLED as _GIL_ENABLED
from seawall._stats.counters import AtomicCounter
from seawall._validate import (
    MAX_WINDOW_CALLS,
    ExceptionMatcher,
    check_callable,
    check_int,
    check_number,
    check_one_argument,
    check_window,
    classifier,
    optional_number,
)
from seawall._window import CountWindow, TimeWindow, Totals

if TYPE_CHECKING:
    # Imported when a breaker is shared: the dataclasses cost ~6 ms of `import seawall`.
    from seawall._shared import Lease, Reply, Settings, SharedLink, SharedState

__all__ = [
    "BreakerEvent",
    "BreakerSnapshot",
    "CallFailed",
    "CallRejected",
    "CircuitBreaker",
    "CircuitState",
    "StateChange",
]

P = ParamSpec("P")
R = TypeVar("R")


class CircuitState(enum.StrEnum):
    """Where a breaker is. The values are the ``state`` label of the metrics."""

    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"
    FORCED_OPEN = "forced_open"
    DISABLED = "disabled"


_CLOSED = CircuitState.CLOSED
_OPEN = CircuitState.OPEN
_HALF_OPEN = CircuitState.HALF_OPEN
_FORCED_OPEN = CircuitState.FORCED_OPEN
_DISABLED = CircuitState.DISABLED
# States in which calls are (at least partly) refused: time in them is "time not closed".
_REFUSING = frozenset({_OPEN, _HALF_OPEN, _FORCED_OPEN})

# A call's ticket says how it was admitted: None outside half-open; a probe carries the
# generation of its half-open stretch and the time it was admitted, so its outcome only
# counts while that stretch lasts and a hung probe can be timed on its own, and the shared
# state's lease it holds (None when the breaker decided alone).
Ticket = tuple[int, float, str | None] | None

# Open spells after a failed probe are lengthened by up to this share, at random, so that
# many processes that tripped together do not all probe together. Lengthened, never
# shortened: so a breaker never admits more than half_open_calls probes per open_duration.
OPEN_JITTER = 0.2

# The lock-free success path relies on the GIL making one C call atomic.

# Outcome codes of the classification.
_SUCCESS, _FAILURE, _IGNORED = 0, 1, 2


@dataclass(frozen=True, slots=True)
class StateChange:
    """The breaker ``name`` moved from ``from_state`` to ``to_state`` at clock time ``at``."""

    name: str
    from_state: CircuitState
    to_state: CircuitState
    at: float


@dataclass(frozen=True, slots=True)
class CallRejected:
    """A call was refused without running; ``retry_after`` is what the caller was told."""

    name: str
    state: CircuitState
    retry_after: float


@dataclass(frozen=True, slots=True)
class CallFailed:
    """A call counted as a failure: it raised ``exception``, or returned ``result`` that
    ``failure_result`` judged a failure (then ``exception`` is ``None``)."""

    name: str
    exception: BaseException | None
    result: object


BreakerEvent = StateChange | CallRejected | CallFailed


@dataclass(frozen=True, slots=True)
class BreakerSnapshot:
    """A consistent reading of a breaker's state, window and lifetime counts."""

    name: str
    state: CircuitState
    #: Calls, failures and slow calls in the current window (closed state only).
    window_calls: int
    window_failures: int
    window_slow_calls: int
    #: Lifetime counts by outcome; they only grow.
    successes: int
    failures: int
    ignored: int
    rejected: int
    slow_calls: int
    #: Lifetime count of each (from, to) transition that happened.
    transitions: Mapping[tuple[CircuitState, CircuitState], int]
    #: Seconds spent open, half-open or forced open, including the current stretch.
    not_closed_seconds: float
    #: The open duration the breaker uses the next (or current) time it opens.
    open_duration: float
    #: Seconds until an open breaker admits probes; ``None`` unless open or forced open.
    retry_after: float | None
    #: Shared breakers only (``shared=``): whether the shared state answered the last
    #: exchange, how many reports of this breaker did not reach it, and how many outcomes
    #: were therefore left out of the shared window. ``None``, 0, 0 for a local breaker.
    shared_up: bool | None = None
    shared_errors: int = 0
    shared_dropped: int = 0

    @property
    def calls(self) -> int:
        """Every call that reached the breaker: the four outcomes added up."""
        return self.successes + self.failures + self.ignored + self.rejected

    @property
    def failure_ratio(self) -> float:
        """Failures over calls in the current window (0.0 when it is empty)."""
        return self.window_failures / self.window_calls if self.window_calls else 0.0


class BreakerView:
    """What a Policy's fast path (seawall._fast) may use of a breaker, and nothing else.

    ``closed`` is kept equal to the breaker's state being closed (``CircuitBreaker._move`` sets
    both). A success on the fast path does exactly what the breaker's own lock-free success
    path does: roll the window when its bucket has ended, then ``count_success``; a failure
    is handed to ``on_exception`` as the breaker's shell hands it. ``call``/``acall`` are the
    raw shells, for the composed parts inside a retry.
    """

    __slots__ = (
        "__weakref__",
        "acall",
        "call",
        "closed",
        "count_success",
        "on_exception",
        "roll",
        "window",
    )

    def __init__(self, breaker: CircuitBreaker) -> None:
        self.closed = breaker._state is _CLOSED
        self.window = breaker._window  # never rebound once built
        self.roll = breaker._roll
        self.count_success = breaker._count_success
        self.on_exception = breaker._on_exception
        self.call = breaker._call
        self.acall = breaker._acall


def _no_view() -> BreakerView | None:
    return None


class CircuitBreaker(PolicyBase):
    """Fails calls fast while a dependency is failing, and lets it recover.

    Closed, it opens on either of two signals. The fast one is a failure streak:
    ``consecutive_failures`` failures in a row (no success between them) that span at least
    ``consecutive_span`` seconds, so a dead dependency is cut off within about a second
    whatever the call rate, while random partial failures (40% errors) almost never line up
    long enough. The slow one is the failure ratio (or slow-call ratio) over a sliding
    window, once ``minimum_calls`` are in it: partial failures that do not come in streaks.

    Open, it rejects every call with :class:`CircuitOpenError` for ``open_duration`` seconds,
    then half-opens and admits ``half_open_calls`` probes: when they all succeed it closes; a
    failed probe (or one that runs past ``half_open_timeout``) opens it again until
    ``open_duration`` after that probe was admitted, lengthened at random by up to 20%, so a
    probe that hangs until its timeout does not delay the next one. So an open breaker sends
    its dependency at most ``half_open_calls`` probes per ``open_duration``, and notices a
    recovery within about ``open_duration``. With ``max_open_duration`` above
    ``open_duration`` the open duration doubles with each failed probing up to that cap.

    A call refused on this side of the dependency (a :class:`RejectedError`: a full bulkhead
    or an inner open breaker) is ignored, like a cancellation: it says nothing of the
    dependency's health.

    Only state changes and outcome bookkeeping take its lock, for a few arithmetic operations;
    the protected call never runs under it. One instance serves threads and asyncio tasks.
    """

    _call_outcomes = frozenset({"rejected"})

    @configured
    def __init__(
        self,
        *,
        name: str | None = None,
        consecutive_failures: int | None = 5,
        consecutive_span: float = 0.5,
        failure_ratio: float = 0.5,
        minimum_calls: int = 20,
        window: float | None = None,
        window_calls: int | None = None,
        slow_call_duration: float | None = None,
        slow_call_ratio: float = 1.0,
        failure_on: ExceptionMatcher = Exception,
        ignore_on: ExceptionMatcher | None = None,
        failure_result: Callable[[Any], bool] | None = None,
        open_duration: float = 0.6,
        max_open_duration: float | None = None,
        half_open_calls: int = 1,
        half_open_timeout: float = 30.0,
        clock: Clock | None = None,
        rng: random.Random | None = None,
        shared: SharedState | None = None,
    ) -> None:
        super().__init__(name=name, clock=clock)
        self._streak_needed = (
            None
            if consecutive_failures is None
            else check_int("consecutive_failures", consecutive_failures)
        )
        self._streak_span = check_number("consecutive_span", consecutive_span, min_inclusive=True)
        self._ratio = check_number("failure_ratio", failure_ratio, maximum=1.0)
        self._minimum_calls = check_int("minimum_calls", minimum_calls)
        if window is not None and window_calls is not None:
            raise ValueError("give window (seconds) or window_calls (a count), not both")
        if window_calls is not None:
            # One slot per call of the window, allocated up front.
            size = check_int("window_calls", window_calls, maximum=MAX_WINDOW_CALLS)
            self._window: CountWindow | TimeWindow = CountWindow(size)
            # A count window never holds more than its size, so that is the most we can wait for.
            self._min_calls = min(self._minimum_calls, size)
            self._window_spec = f"window_calls={size}"
        else:
            seconds = check_window("window", 30.0 if window is None else window)
            self._window = TimeWindow(seconds)
            self._min_calls = self._minimum_calls
            self._window_spec = f"window={seconds:g}"
        self._slow_after = optional_number("slow_call_duration", slow_call_duration)
        self._slow_ratio = check_number("slow_call_ratio", slow_call_ratio, maximum=1.0)
        is_failure = classifier("failure_on", failure_on)
        if is_failure is None:
            raise TypeError("failure_on must be exception types or a predicate, got None")
        self._is_failure = is_failure
        self._is_ignored = classifier("ignore_on", ignore_on)
        if failure_result is not None:
            check_callable("failure_result", failure_result)
            check_one_argument("failure_result", failure_result, "the result")
        self._failure_result = failure_result
        self._open_base = check_number("open_duration", open_duration)
        self._open_max = (
            self._open_base
            if max_open_duration is None
            else check_number("max_open_duration", max_open_duration)
        )
        if self._open_max < self._open_base:
            raise ValueError(
                f"max_open_duration must be >= open_duration ({self._open_base:g}), "
                f"got {max_open_duration!r}"
            )
        self._half_open_calls = check_int("half_open_calls", half_open_calls)
        self._half_open_timeout = check_number("half_open_timeout", half_open_timeout)
        if rng is not None and not isinstance(rng, random.Random):
            raise TypeError(f"rng must be a random.Random, got {type(rng).__name__}")
        self._random = rng.random if rng is not None else random.random
        if shared is not None:
            from seawall._shared import SharedState

            if not isinstance(shared, SharedState):
                raise TypeError(
                    f"shared must be a shared state (such as seawall.redis.RedisState), "
                    f"got {type(shared).__name__}"
                )
            if not isinstance(self._window, TimeWindow):
                raise ValueError(
                    "shared: breakers share a window of time, not of calls; "
                    "give window (seconds) instead of window_calls"
                )

        self._now = self._clock.monotonic
        self._lock = threading.Lock()
        self._state = _CLOSED
        self._generation = 0
        self._listeners: tuple[Callable[[BreakerEvent], object], ...] = ()
        # Open-duration growth: the un-jittered duration doubles with each failed probing.
        self._open_nominal = self._open_base
        self._open_current = self._open_base
        self._open_until = 0.0
        # The failure streak: its length, its first failure's time, and the lifetime success
        # count when it began (a success since then ends it, with nothing written on the
        # lock-free success path).
        self._streak = 0
        self._streak_start = 0.0
        self._streak_mark = 0
        # Half-open probing.
        self._probe_starts: list[float] = []  # admission times of the probes in flight
        self._probe_successes = 0
        # Lifetime counts, read by snapshot() and the metrics exporters. Outcomes of calls
        # admitted outside half-open feed the window; probes' outcomes are kept apart.
        self._successes = AtomicCounter()  # the one count the success path bumps, lock-free
        self._count_success = self._successes.increment
        self._failures = 0
        self._slow_calls = 0
        self._probe_outcomes = [0, 0, 0]  # successes, failures, slow calls of probes
        self._ignored = 0
        self._rejected = 0
        # A plain success can skip the lock when nothing but the counter needs to know of it.
        self._lockfree = (
            isinstance(self._window, TimeWindow)
            and self._slow_after is None
            and failure_result is None
            and _GIL_ENABLED
        )
        self._transitions: dict[tuple[CircuitState, CircuitState], int] = {}
        self._not_closed_total = 0.0
        self._not_closed_since: float | None = None
        # Weakly: the view holds the breaker's methods, and a cycle would keep an evicted
        # per-host breaker alive until a garbage collection.
        self._view: Callable[[], BreakerView | None] = _no_view
        # Sharing: the link holds what the shared state has not been told yet. A move made
        # to follow the shared state is not news for it (``_following``).
        self._following = False
        self._link: SharedLink | None = (
            None if shared is None else shared._attach(self, self._settings_to_share())
        )
        self._learn_shared()

    def _settings_to_share(self) -> Settings:
        from seawall._shared import Settings

        assert isinstance(self._window, TimeWindow)  # checked in __init__
        return Settings(
            window=self._window.seconds,
            buckets=self._window.buckets,
            minimum_calls=self._min_calls,
            failure_ratio=self._ratio,
            slow_call_ratio=None if self._slow_after is None else self._slow_ratio,
            open_duration=self._open_base,
            max_open_duration=self._open_max,
            half_open_calls=self._half_open_calls,
            half_open_timeout=self._half_open_timeout,
        )

    def _adopt_name(self, fn: object) -> None:
        super()._adopt_name(fn)
        self._learn_shared()

    def _inherit_name(self, name: str) -> None:
        super()._inherit_name(name)
        self._learn_shared()

    def _learn_shared(self) -> None:
        """A shared breaker reads the shared state once it has its name, before its first
        call: a breaker made during an incident (a transport's new host) obeys an isolation
        at once. One read, bounded by the backend's timeout; on failure it decides alone.
        Made on an event loop's thread, it never blocks the loop: the syncer reads the state
        for it at once instead, within one round trip."""
        link, name = self._link, self._name
        if link is None or name is None or link.learned == name:
            return
        link.learned = name
        backend = link.backend
        if not backend._up:
            return
        aio = sys.modules.get("asyncio")  # not imported: no loop runs (and none is imported)
        if aio is not None and aio._get_running_loop() is not None:
            backend._wake.set()
            return
        asked = time.monotonic()
        try:
            status = backend._switch(name, None)
        except Exception as exc:
            backend._lost(exc)
            return
        backend._found()
        from seawall._shared import Reply

        self._follow(
            link,
            Reply(
                state=status.state,
                generation=status.generation,
                open_remaining=status.open_remaining,
                open_duration=status.open_duration,
                window_calls=status.window_calls,
                window_failures=status.window_failures,
            ),
            asked,
        )

    def _fast_view(self) -> BreakerView | None:
        """The fast path's view of this breaker, or ``None`` if a success needs more than the
        lock-free counter (a count window, slow calls, a failure_result, no GIL). One view
        per breaker, however many policies use it: its ``closed`` follows the state."""
        if not self._lockfree:
            return None
        with self._lock:
            view = self._view()
            if view is None:
                view = BreakerView(self)
                self._view = weakref.ref(view)
            return view

    # -- the shells ---------------------------------------------------------------------------

    def _call(self, fn: Callable[..., R], /, *args: Any) -> R:
        """Run ``fn(*args)`` through the breaker.

        Raises :class:`CircuitOpenError` without calling ``fn`` when the breaker refuses.
        """
        if self._state is not _CLOSED or not self._lockfree:
            return self._call_counted(fn, *args)
        # The hot path: closed, and a success needs nothing but the lock-free counter.
        try:
            result = fn(*args)
        except BaseException as exc:
            self._on_exception(None, exc, 0.0)
            raise
        if self._now() >= self._window.bucket_end:
            self._roll()
        self._count_success()
        return result

    def _call_counted(self, fn: Callable[..., R], /, *args: Any) -> R:
        ticket = None if self._state is _CLOSED else self._admit()
        start = self._now() if self._slow_after is not None else 0.0
        try:
            result = fn(*args)
        except BaseException as exc:
            self._on_exception(ticket, exc, start)
            raise
        self._on_return(ticket, result, start)
        return result

    async def _acall(self, fn: Callable[..., Awaitable[R]], /, *args: Any) -> R:
        """Await ``fn(*args)`` through the breaker (see :meth:`call`)."""
        if self._state is not _CLOSED or not self._lockfree:
            return await self._acall_counted(fn, *args)
        try:
            result = await fn(*args)
        except BaseException as exc:
            self._on_exception(None, exc, 0.0)
            raise
        if self._now() >= self._window.bucket_end:
            self._roll()
        self._count_success()
        return result

    async def _acall_counted(self, fn: Callable[..., Awaitable[R]], /, *args: Any) -> R:
        ticket = None if self._state is _CLOSED else await self._aadmit()
        start = self._now() if self._slow_after is not None else 0.0
        try:
            result = await fn(*args)
        except BaseException as exc:
            self._on_exception(ticket, exc, start)
            raise
        self._on_return(ticket, result, start)
        return result

    # -- the decorators ---------------------------------------------------------------------

    # The generic decorator (PolicyBase) records the call-level SLI around the raw shell. For
    # the breaker's hot path that is one frame and one clock read too many, about a third of
    # its overhead budget, so its decorators fuse the two: the closed, lock-free success path
    # runs inline with the SLI and shares its end time; everything else goes through the
    # counted shell exactly as the generic decorator would.

    def _decorate_sync(self, fn: Callable[P, R]) -> Callable[P, R]:
        if not self._lockfree:
            return super()._decorate_sync(fn)
        breaker, window, now = self, self._window, self._now
        counted, on_exception, count_success = (
            self._call_counted,
            self._on_exception,
            self._count_success,
        )
        succeeded, failed = self.stats.succeeded, self.stats.failed

        @functools.wraps(fn)
        def guarded(*args: P.args, **kwargs: P.kwargs) -> R:
            start = now()
            try:
                if breaker._state is not _CLOSED:
                    result = counted(bind(fn, kwargs) if kwargs else fn, *args)
                else:
                    try:
                        result = fn(*args, **kwargs)
                    except BaseException as exc:
                        on_exception(None, exc, 0.0)
                        raise
                    end = now()
                    if end >= window.bucket_end:
                        breaker._roll()
                    count_success()
                    succeeded(end - start)
                    return result
            except BaseException as exc:
                failed(exc, now() - start)
                raise
            succeeded(now() - start)
            return result

        return guarded

    def _decorate_async(
        self, fn: Callable[P, Coroutine[Any, Any, R]]
    ) -> Callable[P, Coroutine[Any, Any, R]]:
        if not self._lockfree:
            return super()._decorate_async(fn)
        breaker, window, now = self, self._window, self._now
        counted, on_exception, count_success = (
            self._acall_counted,
            self._on_exception,
            self._count_success,
        )
        succeeded, failed = self.stats.succeeded, self.stats.failed

        @functools.wraps(fn)
        async def guarded(*args: P.args, **kwargs: P.kwargs) -> R:
            start = now()
            try:
                if breaker._state is not _CLOSED:
                    result = await counted(bind(fn, kwargs) if kwargs else fn, *args)
                else:
                    try:
                        result = await fn(*args, **kwargs)
                    except BaseException as exc:
                        on_exception(None, exc, 0.0)
                        raise
                    end = now()
                    if end >= window.bucket_end:
                        breaker._roll()
                    count_success()
                    succeeded(end - start)
                    return result
            except BaseException as exc:
                failed(exc, now() - start)
                raise
            succeeded(now() - start)
            return result

        return guarded

    # -- the core: admission, outcomes, transitions -------------------------------------------

    def _admit(self) -> Ticket:
        """Admit a call outside the closed fast path, or raise :class:`CircuitOpenError`."""
        link = self._link
        if link is not None and link.backend._up:
            lease = self._shared_probe(link)
            if lease is None:
                return None
            backend = link.backend
            asked = time.monotonic()
            try:
                answer = backend._lease(self.name, link.settings, lease, self._random())
            except Exception as exc:
                self._unanswered(link, lease, exc)
            except BaseException:  # interrupted while asking: the lease goes back
                self._gave_up(link, lease)
                raise
            return self._shared_admitted(link, lease, answer, asked)
        return self._admit_alone()

    async def _aadmit(self) -> Ticket:
        """:meth:`_admit` for coroutines: a probe's lease is awaited, never blocking a loop."""
        link = self._link
        if link is not None and link.backend._up:
            lease = self._shared_probe(link)
            if lease is None:
                return None
            backend = link.backend
            asked = time.monotonic()
            try:
                answer = await backend._alease(self.name, link.settings, lease, self._random())
            except Exception as exc:
                self._unanswered(link, lease, exc)
            except BaseException:  # cancelled while asking: the lease goes back
                self._gave_up(link, lease)
                raise
            return self._shared_admitted(link, lease, answer, asked)
        return self._admit_alone()

    def _gave_up(self, link: SharedLink, lease: str) -> None:
        """The caller left while its lease was asked for: the lease goes back with the next
        report (Redis refuses it if the give-back arrives first)."""
        with self._lock:
            link.asking -= 1
            link.verdict(lease, "drop")

    def _unanswered(self, link: SharedLink, lease: str, exc: BaseException) -> NoReturn:
        """A probe's lease got no answer: this call is refused (a half-open breaker refuses
        most calls anyway) rather than probing on its own, which would break the fleet's
        probe count whenever Redis is merely slow. The lease goes back, in case the question
        reached Redis. Once the shared state counts as lost, this breaker decides alone."""
        backend = link.backend
        now = self._now()
        wait = backend.interval  # this process asks again then
        with self._lock:
            link.asking -= 1
            link.verdict(lease, "drop")
            self._rejected += 1
            link.retry_at = link.refused_until = now + wait
            state = self._state
        backend._lost(exc)
        self._refuse(state, wait)

    def _admit_alone(self) -> Ticket:
        """Admission decided by this breaker alone (not shared, or the shared state is gone)."""
        now = self._now()
        ticket: Ticket = None
        rejected = False
        with self._lock:
            changes = self._advance(now)
            state = self._state
            if state is _CLOSED or state is _DISABLED:
                pass
            elif (
                state is _HALF_OPEN
                and len(self._probe_starts) + self._probe_successes < self._half_open_calls
            ):
                self._probe_starts.append(now)
                ticket = (self._generation, now, None)
            else:
                self._rejected += 1
                retry_after = self._retry_after(now)
                rejected = True
        if changes:
            self._emit_admission(changes, None if ticket is None else self._releaser(ticket))
        if rejected:
            self._refuse(state, retry_after)
        return ticket

    def _emit_admission(
        self, changes: Sequence[StateChange], undo: Callable[[], object] | None
    ) -> None:
        """Emit the moves an admission made. A listener's interrupt there means the call never
        runs: ``undo`` gives back what the admission took, a probe's place or a lease about
        to be asked for."""
        try:
            for change in changes:
                self._emit(change)
        except BaseException:
            if undo is not None:
                undo()
            raise

    def _releaser(self, ticket: tuple[int, float, str | None]) -> Callable[[], None]:
        """Gives a probe's place (and lease) back, for a probe that never ran."""
        return functools.partial(self._release, ticket, counted=False)

    def _refuse(self, state: CircuitState, retry_after: float) -> NoReturn:
        error = CircuitOpenError(self.name, retry_after, state=state.value)
        if self._listeners:
            self._emit(CallRejected(self.name, state, retry_after))
        raise error

    def _shared_probe(self, link: SharedLink) -> str | None:
        """Admission of a shared breaker that is not closed, while the shared state answers:
        ``None`` for a plain call (closed or disabled by now), a refusal, or the lease to ask
        the shared state for, for a probe: this breaker never probes on its own then. A
        process asks for no more leases at once than it may have probes, and while the shared
        state's last refusal holds (up to one interval), calls are refused without asking."""
        now = self._now()
        lease = None
        refused = False
        with self._lock:
            changes = self._advance(now)
            state = self._state
            if state is _CLOSED or state is _DISABLED:
                pass
            elif (
                state is _HALF_OPEN
                and now >= link.refused_until
                and len(self._probe_starts) + self._probe_successes + link.asking
                < self._half_open_calls
            ):
                link.asking += 1
                lease = link.backend._new_id()
            else:
                self._rejected += 1
                refused = True
                retry_after = (
                    max(0.0, link.retry_at - now)
                    if state is _HALF_OPEN and now < link.refused_until
                    else self._retry_after(now)
                )
        if changes:
            self._emit_admission(
                changes, None if lease is None else functools.partial(self._unask, link)
            )
        if refused:
            self._refuse(state, retry_after)
        return lease

    def _unask(self, link: SharedLink) -> None:
        """A lease about to be asked for will not be: its place goes back."""
        with self._lock:
            link.asking -= 1

    def _shared_admitted(self, link: SharedLink, lease: str, answer: Lease, asked: float) -> Ticket:
        """The shared state's answer to a probe's lease: a probe ticket, or a refusal.

        One hold of the lock decides: a granted lease makes a probe only if its answer was
        followed (not overtaken by a newer one, nor by this breaker's own moves) and the
        breaker is half-open then; otherwise the lease goes back."""
        backend = link.backend
        now = self._now()
        ticket: Ticket = None
        refused = False
        with self._lock:
            link.asking -= 1
            taken, change = self._follow_locked(link, answer.reply, asked, now, False)
            state = self._state
            if answer.granted and taken and state is _HALF_OPEN:
                self._probe_starts.append(now)
                link.held.add(lease)
                ticket = (self._generation, now, lease)
            else:
                if answer.granted:
                    link.verdict(lease, "drop")  # not a probe after all: give it back
                if state is not _CLOSED and state is not _DISABLED:
                    self._rejected += 1
                    refused = True
                    if answer.granted:
                        retry_after = self._retry_after(now)
                    else:
                        retry_after = answer.retry_after
                        link.retry_at = now + retry_after
                        link.refused_until = now + min(retry_after, backend.interval)
        backend._found()
        if change is not None:
            self._emit_admission((change,), None if ticket is None else self._releaser(ticket))
        if refused:
            self._refuse(state, retry_after)
        return ticket

    def _on_return(self, ticket: Ticket, result: object, start: float) -> None:
        predicate = self._failure_result
        if predicate is None:
            self._record(ticket, False, start, None, None)
            return
        try:
            failed = bool(predicate(result))
        except Exception:
            _log.logger().exception(
                "failure_result of circuit breaker %r raised; counted as a failure", self.name
            )
            failed = True
        self._record(ticket, failed, start, None, result)

    def _on_exception(self, ticket: Ticket, exc: BaseException, start: float) -> None:
        outcome = self._classify(exc)
        if outcome == _IGNORED:
            self._release(ticket, counted=not isinstance(exc, _NotAwaitable))
        else:
            self._record(ticket, outcome == _FAILURE, start, exc, None)

    def _classify(self, exc: BaseException) -> int:
        # Cancellation, KeyboardInterrupt and the like say nothing about the dependency; nor
        # does a call refused on this side (a full bulkhead, an inner open breaker).
        if not isinstance(exc, Exception) or isinstance(exc, RejectedError):
            return _IGNORED
        try:
            if self._is_ignored is not None and self._is_ignored(exc):
                return _IGNORED
            return _FAILURE if self._is_failure(exc) else _SUCCESS
        except Exception:
            _log.logger().exception(
                "an exception classifier of circuit breaker %r raised; "
                "the call counts as a failure",
                self.name,
            )
            return _FAILURE

    def _record(
        self,
        ticket: Ticket,
        failed: bool,
        start: float,
        exc: BaseException | None,
        result: object,
    ) -> None:
        now = self._now()
        slow = self._slow_after is not None and now - start >= self._slow_after
        change = None
        with self._lock:
            state = self._state
            if ticket is None:
                window = self._window
                if now >= window.bucket_end:
                    window.roll(now, self._totals())
                if failed:
                    self._failures += 1
                else:
                    self._count_success()
                if slow:
                    self._slow_calls += 1
                if state is _CLOSED:
                    window.record(failed, slow)
                    # Successes never open the breaker: only a failure or a slow call can.
                    if (failed and self._streak_tripped(now)) or (
                        (failed or slow) and self._ratio_tripped()
                    ):
                        change = self._move(_OPEN, now)
            else:
                outcomes = self._probe_outcomes
                outcomes[1 if failed else 0] += 1
                if slow:
                    outcomes[2] += 1
                if ticket[2] is not None and self._link is not None:
                    self._link.verdict(ticket[2], "failure" if failed or slow else "success")
                if self._is_current_probe(ticket):
                    self._probe_starts.remove(ticket[1])
                    if failed or slow:
                        change = self._move(_OPEN, now, probe_admitted=ticket[1])
                    else:
                        self._probe_successes += 1
                        if self._probe_successes >= self._half_open_calls:
                            change = self._move(_CLOSED, now)
        if self._listeners:
            if failed:
                self._emit(CallFailed(self.name, exc, result))
            if change is not None:
                self._emit(change)

    def _streak_tripped(self, now: float) -> bool:
        """Count a failure into the streak; whether the streak now trips. Holds the lock."""
        needed = self._streak_needed
        if needed is None:
            return False
        successes = self._successes.value
        if self._streak == 0 or successes != self._streak_mark:
            self._streak, self._streak_start, self._streak_mark = 1, now, successes
        else:
            self._streak += 1
        return self._streak >= needed and now - self._streak_start >= self._streak_span

    def _ratio_tripped(self) -> bool:
        """Whether the window's failure or slow-call ratio trips. Holds the lock."""
        calls, failures, slow_calls = self._window.counts(self._totals())
        return calls >= self._min_calls and (
            failures / calls >= self._ratio
            or (self._slow_after is not None and slow_calls / calls >= self._slow_ratio)
        )

    def _roll(self) -> None:
        """Move the time window on to the bucket the clock has reached (success path)."""
        now = self._now()
        with self._lock:
            self._window.roll(now, self._totals())

    def _totals(self) -> Totals:
        """Lifetime outcomes of calls admitted outside half-open: what time windows mark."""
        return self._successes.value, self._failures, self._slow_calls

    def _release(self, ticket: Ticket, *, counted: bool = True) -> None:
        """An ignored or cancelled call: no verdict, and a probe gives its slot back. A
        refused ``acall`` (a sync function's result) is not counted as ignored either."""
        with self._lock:
            if counted:
                self._ignored += 1
            if ticket is not None and ticket[2] is not None and self._link is not None:
                self._link.verdict(ticket[2], "drop")
            if ticket is not None and self._is_current_probe(ticket):
                self._probe_starts.remove(ticket[1])

    def _has_run(self) -> bool:
        snap = self.snapshot()
        return super()._has_run() or bool(
            snap.successes + snap.failures + snap.ignored + snap.rejected
        )

    def _after_fork(self) -> None:
        super()._after_fork()
        self._lock = threading.Lock()
        # Probes in flight were other threads': none in the child. A new generation makes
        # any ticket from before the fork stale.
        self._probe_starts.clear()
        self._generation += 1

    def _is_current_probe(self, ticket: tuple[int, float, str | None]) -> bool:
        """A probe of the half-open stretch in progress (not of one that has ended)."""
        return ticket[0] == self._generation and self._state is _HALF_OPEN

    def _advance(self, now: float) -> tuple[StateChange, ...]:
        """Apply the transitions that the passing of time makes. Holds the lock."""
        state = self._state
        if state is _OPEN and now >= self._open_until:
            return self._moved(_HALF_OPEN, now)
        if (
            state is _HALF_OPEN
            and self._probe_starts
            and now - min(self._probe_starts) >= self._half_open_timeout
        ):
            # A probe that runs this long is as bad a sign as one that failed. It was let
            # through long ago, so the next probe may be due at once.
            reopened = self._moved(_OPEN, now, probe_admitted=min(self._probe_starts))
            if now >= self._open_until:
                return reopened + self._moved(_HALF_OPEN, now)
            return reopened
        return ()

    def _moved(
        self, to: CircuitState, now: float, probe_admitted: float | None = None
    ) -> tuple[StateChange, ...]:
        change = self._move(to, now, probe_admitted)
        return () if change is None else (change,)

    def _move(
        self, to: CircuitState, now: float, probe_admitted: float | None = None
    ) -> StateChange | None:
        """Change state and everything that goes with it. Holds the lock.

        ``probe_admitted``: when the probe that failed (and so reopens the breaker) was let
        through; the next probe may go ``open_duration`` after it, not after its failure."""
        frm = self._state
        if frm is to:
            return None
        self._state = to
        view = self._view()
        if view is not None:
            view.closed = to is _CLOSED
        link = self._link
        if link is not None and not self._following:
            link.moved()
            if to is _OPEN and frm is _CLOSED:
                link.tripped()
            elif to is _CLOSED:
                link.closed()
        self._generation += 1
        self._streak = 0
        key = (frm, to)
        self._transitions[key] = self._transitions.get(key, 0) + 1
        if to in _REFUSING:
            if self._not_closed_since is None:
                self._not_closed_since = now
        elif self._not_closed_since is not None:
            self._not_closed_total += now - self._not_closed_since
            self._not_closed_since = None

        if to is _OPEN:
            if frm is _HALF_OPEN:
                self._open_nominal = min(self._open_max, self._open_nominal * 2)
                self._open_current = self._open_nominal * (1.0 + OPEN_JITTER * self._random())
                since = now if probe_admitted is None else probe_admitted
                self._open_until = max(now, since + self._open_current)
            else:
                self._open_nominal = self._open_current = self._open_base
                self._open_until = now + self._open_current
            self._window.clear(self._totals())
        elif to is _HALF_OPEN:
            self._probe_starts = []
            self._probe_successes = 0
        elif to is _CLOSED:
            self._open_nominal = self._open_current = self._open_base
            self._window.clear(self._totals())
        return StateChange(self.name, frm, to, now)

    def _retry_after(self, now: float) -> float:
        state = self._state
        if state is _OPEN:
            return max(0.0, self._open_until - now)
        if state is _HALF_OPEN:
            # Probes usually settle within their latency; when they fail the breaker refuses
            # for about the open duration. Never later than the oldest probe's timeout.
            oldest = min(self._probe_starts, default=now)
            return max(0.0, min(self._open_current, oldest + self._half_open_timeout - now))
        if state is _FORCED_OPEN:
            return math.inf
        return 0.0

    def _emit(self, event: BreakerEvent) -> None:
        for listener in self._listeners:
            try:
                listener(event)
            except Exception:
                _log.logger().exception(
                    "listener %r of circuit breaker %r raised", listener, self.name
                )

    # -- what users read and control ----------------------------------------------------------

    @property
    def state(self) -> CircuitState:
        """The current state, after any transition that time alone has made due."""
        if self._state is _CLOSED:
            return _CLOSED
        now = self._now()
        with self._lock:
            changes = self._advance(now)
            state = self._state
        for change in changes:
            self._emit(change)
        return state

    def snapshot(self) -> BreakerSnapshot:
        """Read state, window and lifetime counts together, under the lock."""
        now = self._now()
        link = self._link
        with self._lock:
            changes = self._advance(now)
            window = self._window
            totals = self._totals()
            window.roll(now, totals)
            window_calls, window_failures, window_slow = window.counts(totals)
            probe_successes, probe_failures, probe_slow = self._probe_outcomes
            state = self._state
            not_closed = self._not_closed_total
            if self._not_closed_since is not None:
                not_closed += now - self._not_closed_since
            snapshot = BreakerSnapshot(
                name=self.name,
                state=state,
                window_calls=window_calls if state is _CLOSED else 0,
                window_failures=window_failures if state is _CLOSED else 0,
                window_slow_calls=window_slow if state is _CLOSED else 0,
                successes=totals[0] + probe_successes,
                failures=totals[1] + probe_failures,
                ignored=self._ignored,
                rejected=self._rejected,
                slow_calls=totals[2] + probe_slow,
                transitions=MappingProxyType(dict(self._transitions)),
                not_closed_seconds=not_closed,
                open_duration=self._open_current,
                retry_after=self._retry_after(now) if state in (_OPEN, _FORCED_OPEN) else None,
                shared_up=None if link is None else link.backend._up,
                shared_errors=0 if link is None else link.errors,
                shared_dropped=0 if link is None else link.dropped,
            )
        for change in changes:
            self._emit(change)
        return snapshot

    def isolate(self) -> None:
        """Force the breaker open: every call is rejected until :meth:`reset` (a kill switch)."""
        self._manual(_FORCED_OPEN)

    def disable(self) -> None:
        """Let every call through and never trip, still counting outcomes, until :meth:`reset`."""
        self._manual(_DISABLED)

    def reset(self) -> None:
        """Close the breaker, clear its window and its grown open duration."""
        self._manual(_CLOSED)

    def _manual(self, to: CircuitState) -> None:
        now = self._now()
        with self._lock:
            change = self._move(to, now)
            if to is _CLOSED:
                self._window.clear(self._totals())
                self._open_nominal = self._open_current = self._open_base
            if self._link is not None:  # a shared breaker's switch is the fleet's
                self._link.switch(to.value)  # type: ignore[arg-type]
        if change is not None:
            self._emit(change)

    def _follow(
        self, link: SharedLink, reply: Reply, asked: float, *, delivered: bool = False
    ) -> None:
        """Take the shared state's decision (see :meth:`_follow_locked`)."""
        now = self._now()
        with self._lock:
            _, change = self._follow_locked(link, reply, asked, now, delivered)
        if change is not None:
            self._emit(change)

    def _follow_locked(
        self, link: SharedLink, reply: Reply, asked: float, now: float, delivered: bool
    ) -> tuple[bool, StateChange | None]:
        """Take the shared state's decision, asked for at ``asked`` (``time.monotonic()``;
        the syncer, a probe's lease, or the first read calls this); ``delivered``: the reply
        answers a report with news. Holds the lock. Returns whether the reply was taken, and
        the move it made (to emit once the lock is released).

        A reply is not taken while this breaker has news not yet delivered (a local trip or
        switch, or a report with news on its way), nor when it was asked for before this
        breaker last moved on its own: the exchange carrying the news brings a newer one.
        Nor is a reply of an older generation asked for before a newer one was followed (two
        exchanges crossed). A new generation in the same state is a new stretch: a half-open
        breaker's probes admitted before it no longer count here (the backend ended their
        leases). Open time left comes as a duration, so the clocks of the processes never
        meet."""
        if delivered:
            link.sending -= 1
        if link.pending or asked < link.moved_at:
            return False, None
        same_life = not reply.epoch or reply.epoch == link.epoch
        if same_life and reply.generation < link.generation and asked < link.followed_at:
            return False, None  # an older answer, overtaken by a newer one
        to = CircuitState(reply.state)
        change = None
        previous = link.generation
        renewed = reply.generation != previous or not same_life
        if renewed:
            link.generation = reply.generation
            link.followed_at = time.monotonic()
        if reply.epoch:
            link.epoch = reply.epoch
        if to is not self._state:
            self._following = True
            try:
                change = self._move(to, now)
            finally:
                self._following = False
        elif renewed and previous >= 0 and to is _HALF_OPEN:
            # The shared breaker reopened and half-opened since (a hung lease ended): a
            # probe of the old stretch must not close this process.
            self._generation += 1
            self._probe_starts = []
            self._probe_successes = 0
        if to is _OPEN:
            self._open_current = reply.open_duration
            self._open_until = now + reply.open_remaining
        if reply.open_nominal > 0:
            self._open_nominal = min(self._open_max, reply.open_nominal)
        return True, change

    def add_listener(
        self, listener: Callable[[BreakerEvent], object]
    ) -> Callable[[BreakerEvent], object]:
        """Call ``listener(event)`` on every :class:`StateChange`, :class:`CallRejected` and
        :class:`CallFailed`. It runs in the calling thread, outside the breaker's lock; an
        exception it raises is logged and never changes the protected call's result.
        Returns ``listener``, so this works as a decorator."""
        check_callable("listener", listener)
        with self._lock:
            self._listeners = (*self._listeners, listener)
        return listener

    def remove_listener(self, listener: Callable[[BreakerEvent], object]) -> None:
        """Stop calling ``listener``; ``ValueError`` if it was not added."""
        with self._lock:
            listeners = list(self._listeners)
            listeners.remove(listener)
            self._listeners = tuple(listeners)

    def __repr__(self) -> str:
        slow = (
            f", slow_call_duration={self._slow_after:g}, slow_call_ratio={self._slow_ratio:g}"
            if self._slow_after is not None
            else ""
        )
        streak = (
            "consecutive_failures=None"
            if self._streak_needed is None
            else f"consecutive_failures={self._streak_needed}, "
            f"consecutive_span={self._streak_span:g}"
        )
        growth = (
            f", max_open_duration={self._open_max:g}" if self._open_max != self._open_base else ""
        )
        return (
            f"CircuitBreaker(name={self.name!r}, state={self._state.value!r}, {streak}, "
            f"failure_ratio={self._ratio:g}, minimum_calls={self._minimum_calls}, "
            f"{self._window_spec}{slow}, open_duration={self._open_base:g}{growth}, "
            f"half_open_calls={self._half_open_calls})"
        )
