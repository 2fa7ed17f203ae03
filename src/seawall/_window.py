"""Sliding windows of call outcomes for the circuit breaker. Pure bookkeeping: no locks, no I/O.

Both keep running totals so that reading them is O(1); the breaker holds its lock around them.
"""

from __future__ import annotations

__all__ = ["CountWindow", "TimeWindow", "Window"]

_FAILED = 1
_SLOW = 2


class CountWindow:
    """The last ``size`` outcomes."""

    __slots__ = ("_pos", "_ring", "_size", "calls", "failures", "slow")

    def __init__(self, size: int) -> None:
        self._size = size
        self._ring = [0] * size
        self._pos = 0
        self.calls = 0
        self.failures = 0
        self.slow = 0

    def record(self, now: float, failed: bool, slow: bool) -> None:
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

    def roll(self, now: float) -> None:
        """Count windows do not age."""

    def clear(self) -> None:
        self._ring = [0] * self._size
        self._pos = 0
        self.calls = self.failures = self.slow = 0


class TimeWindow:
    """Outcomes of the last ``seconds``, kept in ``buckets`` slices that expire whole.

    Resolution is one bucket: an outcome leaves the window between ``seconds - width`` and
    ``seconds`` after it was recorded.
    """

    __slots__ = ("_calls", "_failures", "_head", "_n", "_slow", "_width", "calls", "failures", "slow")

    def __init__(self, seconds: float, buckets: int = 10) -> None:
        self._n = buckets
        self._width = seconds / buckets
        self._calls = [0] * buckets
        self._failures = [0] * buckets
        self._slow = [0] * buckets
        self._head: int | None = None  # absolute index of the newest bucket
        self.calls = 0
        self.failures = 0
        self.slow = 0

    def roll(self, now: float) -> None:
        """Expire the buckets that ``now`` has left behind."""
        index = int(now // self._width)
        head = self._head
        if head == index:
            return
        if head is None or index - head >= self._n or index < head:
            self._zero()
        else:
            for absolute in range(head + 1, index + 1):
                slot = absolute % self._n
                self.calls -= self._calls[slot]
                self.failures -= self._failures[slot]
                self.slow -= self._slow[slot]
                self._calls[slot] = self._failures[slot] = self._slow[slot] = 0
        self._head = index

    def record(self, now: float, failed: bool, slow: bool) -> None:
        self.roll(now)
        slot = self._head % self._n  # type: ignore[operator]  # roll() set it
        self._calls[slot] += 1
        self.calls += 1
        if failed:
            self._failures[slot] += 1
            self.failures += 1
        if slow:
            self._slow[slot] += 1
            self.slow += 1

    def clear(self) -> None:
        self._zero()
        self._head = None

    def _zero(self) -> None:
        n = self._n
        self._calls = [0] * n
        self._failures = [0] * n
        self._slow = [0] * n
        self.calls = self.failures = self.slow = 0


Window = CountWindow | TimeWindow
