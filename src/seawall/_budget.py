"""RetryBudget: caps retries to a share of calls, shared by any number of Retry policies."""

from __future__ import annotations

import threading
from dataclasses import dataclass

from seawall._base import check_clock
from seawall._clock import Clock
from seawall._config import ReadOnly, configured
from seawall._stats.counters import AtomicCounter
from seawall._validate import check_number, check_window
from seawall._window import TimeWindow

__all__ = ["BudgetSnapshot", "RetryBudget"]


@dataclass(frozen=True, slots=True)
class BudgetSnapshot:
    """Calls and retries in the current window, and lifetime counts."""

    window_calls: int
    window_retries: int
    calls: int
    retries: int
    refused: int


class BudgetView:
    """What a Policy's fast path (seawall._fast) may use of a retry budget: a first attempt
    deposits as ``RetryBudget.deposit`` does (roll the window when its bucket has ended, then
    ``count_call``), on the budget's ``clock``."""

    __slots__ = ("clock", "count_call", "roll", "window")

    def __init__(self, budget: RetryBudget) -> None:
        self.clock = budget._clock
        self.window = budget._window  # never rebound once built
        self.roll = budget._roll
        self.count_call = budget._count_call


class RetryBudget:
    """A budget of retries that keeps a failing dependency from being retried into a storm.

    Over a sliding ``window`` (10 s), retries may reach ``ratio`` * the calls made in that
    window, or ``min_per_second`` * ``window``, whichever is larger: busy callers retry at most
    a ``ratio`` share of their calls (with ``ratio=0.2`` a dead dependency sees at most 1.2
    attempts per call), and quiet callers can still retry a little. Share one budget between
    the policies that call the same dependency. Thread- and task-safe; counting a call takes
    no lock.
    """

    ratio: ReadOnly[float] = ReadOnly("_ratio")
    min_per_second: ReadOnly[float] = ReadOnly("_min_per_second")
    window: ReadOnly[float] = ReadOnly("_window_seconds")

    @configured
    def __init__(
        self,
        ratio: float = 0.2,
        min_per_second: float = 10.0,
        *,
        window: float = 10.0,
        clock: Clock | None = None,
    ) -> None:
        # Finite: with no calls yet, an infinite ratio times 0 calls is nan, and refuses all.
        self._ratio = check_number("ratio", ratio, min_inclusive=True, max_inclusive=False)
        self._min_per_second = check_number("min_per_second", min_per_second, min_inclusive=True)
        self._window_seconds = check_window("window", window)
        self._floor = self._min_per_second * self._window_seconds
        self._clock = check_clock(clock)
        self._now = self._clock.monotonic
        self._lock = threading.Lock()
        self._calls = AtomicCounter()
        self._count_call = self._calls.increment
        self._retries = 0
        self._refused = 0
        self._window = TimeWindow(self._window_seconds)

    def _spawn(self) -> RetryBudget:
        """A fresh budget with this one's configuration and none of its counts."""
        return self._config.build(type(self))  # type: ignore[attr-defined, no-any-return]

    def _fast_view(self) -> BudgetView:
        return BudgetView(self)

    def deposit(self) -> None:
        """Count one call (its first attempt). Lock-free except once per bucket."""
        if self._now() >= self._window.bucket_end:
            self._roll()
        self._count_call()

    def try_withdraw(self) -> bool:
        """Take one retry from the budget; ``False`` (and counted) when it is spent."""
        now = self._now()
        with self._lock:
            totals = (self._calls.value, 0, self._retries)
            self._window.roll(now, totals)
            calls, _, retries = self._window.counts(totals)
            if retries < max(self._ratio * calls, self._floor):
                self._retries += 1
                return True
            self._refused += 1
            return False

    def _after_fork(self) -> None:
        """In a forked child: a fresh lock (see seawall._fork)."""
        self._lock = threading.Lock()

    def _roll(self) -> None:
        now = self._now()
        with self._lock:
            self._window.roll(now, (self._calls.value, 0, self._retries))

    def snapshot(self) -> BudgetSnapshot:
        now = self._now()
        with self._lock:
            totals = (self._calls.value, 0, self._retries)
            self._window.roll(now, totals)
            calls, _, retries = self._window.counts(totals)
            return BudgetSnapshot(calls, retries, totals[0], self._retries, self._refused)

    def __repr__(self) -> str:
        return (
            f"RetryBudget(ratio={self._ratio:g}, min_per_second={self._min_per_second:g}, "
            f"window={self._window_seconds:g})"
        )
