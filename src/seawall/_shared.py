"""Breakers of one name sharing one state across processes: the part no backend repeats.

A shared breaker still decides every call locally, from its own state and window; nothing
on a call's success path waits on the backend. A background thread per backend (the
*syncer*) exchanges, every ``interval`` and at once after a local trip or switch, each
breaker's :class:`Report` (the outcomes counted since the last one, a local trip, probe
verdicts, a switch) for the shared :class:`Reply` (state, open time left, generation), and
the breaker follows the reply. Only a half-open probe asks the backend first, for a lease,
so that a whole fleet sends exactly ``half_open_calls`` probes.

The backend makes every decision that must be atomic (window merging, trips, probe leases,
hung probes, switches) with its own clock; processes only ever send durations, so their
clocks may disagree. When the backend cannot be reached, breakers decide alone and callers
see nothing of it: one warning is logged when it is lost and one line when it is back.

A backend implements :meth:`SharedState._exchange`, :meth:`SharedState._lease` and
:meth:`SharedState._switch` (see ``seawall.redis``); everything else is here.
"""

from __future__ import annotations

import abc
import asyncio
import concurrent.futures
import functools
import itertools
import os
import random
import threading
import time
import weakref
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from seawall import _fork, _log
from seawall._validate import check_number

if TYPE_CHECKING:
    from seawall._breaker import CircuitBreaker

__all__ = [
    "Lease",
    "Reply",
    "Report",
    "Settings",
    "SharedLink",
    "SharedState",
    "SharedStatus",
    "Verdict",
]

#: What a probe's outcome tells the backend: it succeeded, it failed (or was slow), or it
#: ended with no verdict (ignored, cancelled) and only gives its lease back.
Verdict = Literal["success", "failure", "drop"]
#: What an operator's switch sets: forced open, disabled, or closed again (a reset).
Mode = Literal["forced_open", "disabled", "closed"]


@dataclass(frozen=True, slots=True)
class Settings:
    """What the backend needs of a breaker's configuration to decide for the fleet."""

    window: float
    buckets: int
    minimum_calls: int
    failure_ratio: float
    #: ``None`` when the breaker does not count slow calls.
    slow_call_ratio: float | None
    open_duration: float
    max_open_duration: float
    half_open_calls: int
    half_open_timeout: float


@dataclass(slots=True)
class Report:
    """One breaker's news for the backend, taken by the syncer (see :meth:`SharedLink.take`)."""

    name: str
    settings: Settings
    #: The shared generation the process last saw (``-1``: none yet). A local trip only
    #: opens the shared breaker if it is still in that generation's closed state.
    generation: int
    trip: bool
    successes: int
    failures: int
    slow_calls: int
    verdicts: list[tuple[str, Verdict]] = field(default_factory=list)
    switch: Mode | None = None
    #: Unique per switch: a switch sent again (its first reply was lost) is applied once.
    switch_id: str = ""
    #: A random draw in [0, 1) for the open duration's jitter: the backend has no randomness
    #: of its own that every backend could rely on.
    jitter: float = 0.0

    @property
    def news(self) -> bool:
        """Whether it tells of more than counts: a reply to another report, overtaking this
        one, must not be followed until this one is answered."""
        return self.trip or self.switch is not None or bool(self.verdicts)


@dataclass(frozen=True, slots=True)
class Reply:
    """The shared state of one breaker, as the backend decided it just now."""

    state: str
    generation: int
    #: Seconds until an open breaker half-opens (0 in other states).
    open_remaining: float
    open_duration: float
    window_calls: int
    window_failures: int
    #: Which life of the shared state this is: a new one when the backend lost it and began
    #: again (empty when unknown). Within one, generations grow, unless the backend went
    #: back to an older copy of it (a restored snapshot, a lagging replica promoted).
    epoch: str = ""
    #: The open duration before its jitter, grown by failed probes (0: unknown). A process
    #: that later decides alone grows it from there.
    open_nominal: float = 0.0


@dataclass(frozen=True, slots=True)
class Lease:
    """The backend's answer to a probe: admitted (``granted``) or refused, with the state."""

    granted: bool
    reply: Reply
    #: Seconds until a refused caller may try again.
    retry_after: float


@dataclass(frozen=True, slots=True)
class SharedStatus:
    """A shared breaker as every process sees it (``python -m seawall breaker status``)."""

    name: str
    state: str
    generation: int
    open_remaining: float
    open_duration: float
    window_calls: int
    window_failures: int
    probes_in_flight: int


class SharedLink:
    """One breaker's tie to a shared state: what it has not yet told the backend.

    Its fields change under the breaker's lock (by calls) and under that same lock when the
    syncer takes a report, so a count is either in one report or in the next, never in two.

    Replies are ordered by when they were asked for (``time.monotonic()``): one asked before
    this process's latest news (``moved_at``: a local trip, switch or probe outcome) is not
    followed, since the exchange carrying the news brings a newer one; nor is one of an older
    generation asked before a newer generation was followed (``followed_at``: two exchanges
    crossed). One of an older generation asked *after* it is the backend's state gone back
    (a restored snapshot), and is followed.
    """

    __slots__ = (
        "__weakref__",
        "_breaker",
        "_sent",
        "_switch",
        "_switch_id",
        "_verdicts",
        "asking",
        "backend",
        "dropped",
        "epoch",
        "errors",
        "followed_at",
        "generation",
        "held",
        "learned",
        "moved_at",
        "refused_until",
        "retry_at",
        "sending",
        "settings",
        "trip",
    )

    def __init__(self, backend: SharedState, breaker: CircuitBreaker, settings: Settings) -> None:
        self.backend = backend
        self.settings = settings
        self._breaker = weakref.ref(breaker)
        self._sent = breaker._totals()  # what the backend has of this process's outcomes
        self.generation = -1
        self.epoch = ""
        self.followed_at = float("-inf")
        self.moved_at = float("-inf")
        self.learned: str | None = None  # the name under which the shared state was read
        self.trip = False
        self._verdicts: list[tuple[str, Verdict]] = []
        self._switch: Mode | None = None
        self._switch_id = ""
        #: Leases this process is asking for now: with its probes, at most half_open_calls.
        self.asking = 0
        #: Leases granted to probes still running: close() gives them back.
        self.held: set[str] = set()
        #: Reports with news (see Report.news) on their way to the backend.
        self.sending = 0
        #: While half-open and refused by the backend, calls are refused here until then
        #: (local clock) instead of asking again: at most one question per interval.
        self.refused_until = float("-inf")
        self.retry_at = float("-inf")
        self.errors = 0  # reports that did not reach the backend
        self.dropped = 0  # outcomes that never reached the shared window

    @property
    def breaker(self) -> CircuitBreaker | None:
        return self._breaker()

    # -- what calls leave for the syncer (the breaker's lock is held) --------------------------

    def moved(self) -> None:
        """The breaker moved on its own (not following): replies asked before are stale."""
        self.moved_at = time.monotonic()

    def tripped(self) -> None:
        self.trip = True
        self.backend._wake.set()

    def closed(self) -> None:
        """The breaker closed: a trip not yet told is no longer news."""
        self.trip = False

    def verdict(self, lease: str, verdict: Verdict) -> None:
        self.held.discard(lease)
        if self.backend._finished:
            # A lease asked for as close() ran, granted after its last exchange: no syncer
            # is left to tell, so a thread of its own does.
            breaker = self.breaker
            if breaker is not None:
                self.backend._send_late(breaker.name, self.settings, lease, verdict)
            return
        verdicts = self._verdicts
        verdicts.append((lease, verdict))
        if len(verdicts) > MAX_VERDICTS:  # the backend down for long: it ends hung leases
            del verdicts[: len(verdicts) - MAX_VERDICTS]
        self.backend._wake.set()

    def switch(self, mode: Mode) -> None:
        self._switch = mode
        self._switch_id = self.backend._new_id()
        self.trip = False
        self.moved_at = time.monotonic()
        self.backend._wake.set()

    @property
    def pending(self) -> bool:
        """Whether news not yet delivered would make a reply stale: a trip or a switch not
        yet sent, or a report with news on its way."""
        return self.trip or self._switch is not None or self.sending > 0

    # -- the syncer's side ---------------------------------------------------------------------

    def take(self, breaker: CircuitBreaker, settings: Settings) -> Report:
        """This breaker's report, its news now considered sent. Holds the breaker's lock."""
        totals = breaker._totals()
        sent = self._sent
        self._sent = totals
        report = Report(
            name=breaker.name,
            settings=settings,
            generation=self.generation,
            trip=self.trip,
            successes=totals[0] - sent[0],
            failures=totals[1] - sent[1],
            slow_calls=totals[2] - sent[2],
            verdicts=self._verdicts,
            switch=self._switch,
            switch_id=self._switch_id,
            jitter=random.random(),
        )
        self._verdicts = []
        self._switch = None
        self.trip = False
        if report.news:
            self.sending += 1
        return report

    def undelivered(self, report: Report) -> None:
        """The report may not have reached the backend (or only its reply was lost): its
        outcomes are dropped (counted) rather than risk counting them twice. A trip, a switch
        and the probes' verdicts go again with the next report: the backend ignores verdicts
        for leases it no longer holds, and applies a switch once (by its id)."""
        self.errors += 1
        self.dropped += report.successes + report.failures
        if report.news:
            self.sending -= 1
        if report.trip and self.generation == report.generation:
            self.trip = True
        if report.switch is not None and self._switch is None:
            self._switch, self._switch_id = report.switch, report.switch_id
        if report.verdicts:
            self._verdicts[:0] = report.verdicts
            del self._verdicts[: max(0, len(self._verdicts) - MAX_VERDICTS)]

    def forget_unsent(self, breaker: CircuitBreaker) -> None:
        """After a fork: the parent reports what it counted before; the child starts here."""
        self._sent = breaker._totals()
        self._verdicts = []
        self._switch = None
        self.trip = False
        self.asking = 0
        self.held = set()
        self.sending = 0
        self.refused_until = float("-inf")


#: Threads per backend and process asking for coroutines' leases (each at most ``timeout``).
LEASE_THREADS = 4

#: Verdicts kept for the backend per breaker while it cannot be reached. Beyond them the
#: oldest go: the backend ends a lease it never hears of at ``half_open_timeout``.
MAX_VERDICTS = 64

_backends: weakref.WeakSet[SharedState] = weakref.WeakSet()


class SharedState(abc.ABC):
    """Where circuit breakers of the same name in every process keep one state.

    Pass one to ``CircuitBreaker(shared=...)`` (or to the breaker of a transport's template,
    whose per-host copies share it too). See :class:`seawall.redis.RedisState`.
    """

    def __init__(self, *, interval: float, timeout: float, where: str) -> None:
        self.interval = check_number("interval", interval)
        self.timeout = check_number("timeout", timeout)
        self._where = where
        self._lock = threading.Lock()
        self._links: weakref.WeakSet[SharedLink] = weakref.WeakSet()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._closed = False
        self._finished = False  # close() has sent its last exchange
        self._pool: concurrent.futures.ThreadPoolExecutor | None = None  # coroutines' leases
        self._up = True  # until the backend is lost; a fresh process assumes it is there
        #: When the backend first failed to answer since it last answered (None: it answers).
        self._failing_since: float | None = None
        self._lost_at = 0.0
        self._ids = itertools.count(1)
        self._pid = os.getpid()
        _backends.add(self)

    # -- what a backend implements (each call blocks for at most about ``timeout``) -----------

    @abc.abstractmethod
    def _exchange(self, reports: Sequence[Report]) -> list[Reply]:
        """Deliver ``reports`` and return each breaker's shared state, in one round trip."""

    @abc.abstractmethod
    def _lease(self, name: str, settings: Settings, lease: str, jitter: float) -> Lease:
        """Ask for one of the half-open probes' slots of breaker ``name``."""

    @abc.abstractmethod
    def _switch(self, name: str, mode: Mode | None) -> SharedStatus:
        """Apply an operator's switch (``None``: only read) and return the state after it."""

    async def _alease(self, name: str, settings: Settings, lease: str, jitter: float) -> Lease:
        """:meth:`_lease` for coroutines, on a thread of the backend's own: the loop never
        waits, nor does the question wait behind other work in the loop's default executor.
        A backend with a client of its own for event loops may override it. A caller
        cancelled while asking gives the lease back (the backend refuses it if that comes
        first)."""
        pool = self._pool
        if pool is None:
            with self._lock:
                pool = self._pool
                if pool is None and self._closed:  # racing close(): no pool left behind
                    return await asyncio.to_thread(self._lease, name, settings, lease, jitter)
                if pool is None:
                    pool = self._pool = concurrent.futures.ThreadPoolExecutor(
                        max_workers=LEASE_THREADS, thread_name_prefix="seawall-lease"
                    )
        return await asyncio.get_running_loop().run_in_executor(
            pool, functools.partial(self._lease, name, settings, lease, jitter)
        )

    # -- the operator's switches ---------------------------------------------------------------

    def status(self, name: str) -> SharedStatus:
        """The shared state of breaker ``name`` as every process sees it."""
        return self._switch(_check_name(name), None)

    def isolate(self, name: str) -> SharedStatus:
        """Force breaker ``name`` open in every process until :meth:`reset`: its calls are
        refused (and fall back, where a fallback is configured)."""
        return self._switch(_check_name(name), "forced_open")

    def disable(self, name: str) -> SharedStatus:
        """Let every call of breaker ``name`` through in every process, never tripping,
        until :meth:`reset`."""
        return self._switch(_check_name(name), "disabled")

    def reset(self, name: str) -> SharedStatus:
        """Close breaker ``name`` in every process, clearing its window."""
        return self._switch(_check_name(name), "closed")

    # -- breakers ------------------------------------------------------------------------------

    def _attach(self, breaker: CircuitBreaker, settings: Settings) -> SharedLink:
        link = SharedLink(self, breaker, settings)
        with self._lock:
            self._links.add(link)
            self._start()
        self._wake.set()  # a new breaker (a transport's new host) learns the state at once
        return link

    def _start(self) -> None:
        """Start the syncer if it is not running (in this process). Holds ``_lock``."""
        if self._closed or (self._thread is not None and self._thread.is_alive()):
            return
        self._thread = threading.Thread(
            target=_run, args=(weakref.ref(self),), name="seawall-shared-state", daemon=True
        )
        self._thread.start()

    @property
    def up(self) -> bool:
        """Whether breakers share the state now: false while the backend is lost (they
        decide alone) and after :meth:`close`."""
        return self._up

    def _new_id(self) -> str:
        """An id no other lease or switch of any process has: pid, this object, a count."""
        return f"{os.getpid()}-{id(self):x}-{next(self._ids)}"

    def sync_now(self) -> None:
        """Run one exchange in the calling thread (tests and shutdown; the syncer runs them
        on its own)."""
        self._sync_once()

    def close(self) -> None:
        """Let breakers decide alone from now on, stop the syncer, and tell the backend what
        is left to tell in one last exchange: counts, a trip, probes' verdicts, and the
        leases of probes still running given back (their outcomes count only here). The
        backend keeps the state."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._up = False  # no new leases from here
            thread, pool = self._thread, self._pool
        self._wake.set()
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=max(1.0, 4 * self.timeout))
        # Questions already on their way are answered (or given up) within timeout.
        deadline = time.monotonic() + self.timeout + 0.1
        while any(link.asking for link in list(self._links)) and time.monotonic() < deadline:
            time.sleep(0.005)
        for link in list(self._links):
            breaker = link.breaker
            if breaker is not None:
                with breaker._lock:
                    for lease in sorted(link.held):
                        link.verdict(lease, "drop")
        self._sync_once()
        self._finished = True
        if pool is not None:
            pool.shutdown(wait=False)

    def __enter__(self) -> SharedState:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- the syncer ----------------------------------------------------------------------------

    def _send_late(self, name: str, settings: Settings, lease: str, verdict: Verdict) -> None:
        """After close(): one exchange with this verdict alone, on a short-lived thread (the
        caller may hold a breaker's lock, or be an event loop). If it fails, the backend ends
        the lease at ``half_open_timeout``."""
        report = Report(name, settings, -1, False, 0, 0, 0, verdicts=[(lease, verdict)])

        def send() -> None:
            try:
                self._exchange([report])
            except Exception:
                pass

        threading.Thread(target=send, name="seawall-shared-state-late", daemon=True).start()

    def _sync_once(self) -> None:
        asked = time.monotonic()
        taken: list[tuple[SharedLink, CircuitBreaker, Report]] = []
        for link in list(self._links):
            breaker = link.breaker
            if breaker is None:
                continue
            with breaker._lock:
                taken.append((link, breaker, link.take(breaker, link.settings)))
        if not taken:
            return
        try:
            replies = self._exchange([report for _, _, report in taken])
        except BaseException as exc:  # an interrupt in sync_now() too: nothing may stay taken
            for link, breaker, report in taken:
                with breaker._lock:
                    link.undelivered(report)
            if not isinstance(exc, Exception):
                raise
            self._lost(exc)
            return
        self._found()
        answered = list(zip(taken, replies, strict=True))
        followed = 0
        try:
            for (link, breaker, report), reply in answered:
                followed += 1  # counted before: _follow takes the report off its way first
                breaker._follow(link, reply, asked, delivered=report.news)
        except BaseException:  # a listener's; the rest are answered all the same
            for (link, breaker, report), _ in answered[followed:]:
                if report.news:
                    with breaker._lock:
                        link.sending -= 1
            raise

    def _gone(self, exc: BaseException) -> bool:
        """Whether ``exc`` says the backend is gone (refused, reset), not merely slow."""
        return True

    def _lost(self, exc: BaseException) -> None:
        """An exchange or a lease failed. The backend counts as lost (breakers decide alone)
        when it is gone (it refused or dropped the connection), or when it has kept failing
        for ``timeout`` since its first failure: it has then answered nothing for about twice
        ``timeout``. A shorter slow spell (a fork for a snapshot, a loaded machine) times out
        several questions at once; it must not make every process probe on its own."""
        now = time.monotonic()
        with self._lock:
            if self._failing_since is None:
                self._failing_since = now
            if self._closed or not self._up:
                return
            if not self._gone(exc) and now - self._failing_since < self.timeout:
                return
            self._up = False
            self._lost_at = now
        _log.logger().warning(
            "seawall: lost the shared breaker state at %s (%s: %s); breakers decide on "
            "their own until it is back",
            self._where,
            type(exc).__name__,
            exc,
        )

    def _found(self) -> None:
        self._failing_since = None
        if self._up:
            return
        with self._lock:
            if self._up or self._closed:
                return
            self._up = True
            down = time.monotonic() - self._lost_at
        _log.logger().info(
            "seawall: the shared breaker state at %s is back after %.1f s; breakers share it again",
            self._where,
            down,
        )

    def _after_fork(self) -> None:
        """In a forked child: no syncer thread (start one), nothing of the parent's unsent."""
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._thread = None
        self._pid = os.getpid()
        self._ids = itertools.count(1)
        self._failing_since = None
        self._pool = None  # its threads were the parent's
        for link in list(self._links):
            breaker = link.breaker
            if breaker is not None:
                link.forget_unsent(breaker)
        if self._links:
            with self._lock:
                self._start()


def _run(owner: weakref.ref[SharedState]) -> None:
    """The syncer: one exchange per interval, or at once when a call has news. It holds its
    backend weakly between rounds, so an unused backend can be collected."""
    while True:
        backend = owner()
        if backend is None or backend._closed:
            return
        wake, interval = backend._wake, backend.interval
        del backend
        wake.wait(interval)
        wake.clear()
        backend = owner()
        if backend is None or backend._closed:
            return
        try:
            backend._sync_once()
        except BaseException:  # a defect, or a listener's SystemExit: the syncer outlives it
            _log.logger().exception("seawall: the shared-state syncer failed a round")
        del backend


def _check_name(name: str) -> str:
    if not isinstance(name, str) or not name:
        raise TypeError(f"name must be a breaker's name (a non-empty str), got {name!r}")
    return name


@_fork.in_child
def _renew_after_fork() -> None:
    for backend in list(_backends):
        backend._after_fork()
