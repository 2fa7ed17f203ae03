"""Sliding windows of call outcomes for the circuit breaker. Pure bookkeeping: no locks, no I/O.

The breaker holds its lock around every method here except where a docstring says otherwise.
"""

from __future__ import annotations

__all__ = ["CountWindow", "TimeWindow", "Totals"]

# Lifetime (successes, failures, slow calls) of a breaker.
Totals = tuple[int, int, int]


_FAILED = 1
_SLOW = 2


class CountWindow:
    """The last ``size`` outcomes, in order."""

    __slots__ = ("_pos", "_ring", "_size", "calls", "failures", "slow")

    # A count window never ages, so the breaker never needs to roll it.
    bucket_end = float("inf")

    def __init__(self, size: int) -> None:
        self._size = size
        self._ring = [0] * size
        self._pos = 0
        self.calls = 0
        self.failures = 0
        self.slow = 0

    def record(self, failed: bool, slow: bool) -> None:
        pos = self._pos
        if self.calls == self._size:
            old = self._ring[pos]
            self.failures -= old & _FAILED
            self.slow -= old >> 1
        else:
            self.calls += 1
        self._ring[pos] = failed | (slow << 1)
        self._pos = pos + 1 if pos + 1 < self._size else 0
        self.failures += failed
        self.slow += slow

    def roll(self, now: float, totals: Totals) -> None:
        """Count windows do not age."""

    def counts(self, totals: Totals) -> Totals:
        """(calls, failures, slow calls) in the window."""
        return self.calls, self.failures, self.slow

    def clear(self, totals: Totals) -> None:
        self._ring = [0] * self._size
        self._pos = 0
        self.calls = self.failures = self.slow = 0


class TimeWindow:
    """Outcomes of the last ``seconds``, in ``buckets`` slices that expire whole.

    It stores no outcomes: it keeps a mark of the breaker's lifetime totals at the start of
    each bucket, and the window is "totals now minus the mark of the oldest bucket". So a
    success only has to bump the breaker's lock-free counter; the window moves on (under the
    lock) once per bucket, when a call sees ``now >= bucket_end``. Resolution is one bucket:
    an outcome leaves the window between ``seconds - width`` and ``seconds`` after it happened.
    """

    __slots__ = ("_head", "_marks", "_n", "_width", "bucket_end")

    def __init__(self, seconds: float, buckets: int = 10) -> None:
        self._n = buckets
        self._width = seconds / buckets
        self._marks: list[Totals] = [(0, 0, 0)] * buckets
        self._head = -(1 << 62)  # absolute index of the newest bucket: none yet
        self.bucket_end = float("-inf")

    @property
    def seconds(self) -> float:
        return self._width * self._n

    @property
    def buckets(self) -> int:
        return self._n

    def roll(self, now: float, totals: Totals) -> None:
        """Start the buckets that ``now`` has reached, marking each with ``totals``."""
        index = int(now // self._width)
        head = self._head
        if index <= head:
            return
        if index - head >= self._n:
            self._marks = [totals] * self._n
        else:
            for absolute in range(head + 1, index + 1):
                self._marks[absolute % self._n] = totals
        self._head = index
        self.bucket_end = (index + 1) * self._width

    def record(self, failed: bool, slow: bool) -> None:
        """Nothing to do: the breaker's totals are the record."""

    def counts(self, totals: Totals) -> Totals:
        """(calls, failures, slow calls) in the window, given the lifetime ``totals`` now."""
        successes, failures, slow = totals
        mark_successes, mark_failures, mark_slow = self._marks[(self._head + 1) % self._n]
        failed = failures - mark_failures
        return successes - mark_successes + failed, failed, slow - mark_slow

    def clear(self, totals: Totals) -> None:
        self._marks = [totals] * self._n
