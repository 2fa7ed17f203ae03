"""The counts policies keep: lock-free counters for the success paths, and plain-number
histograms that policies fill inside their own critical sections. The metrics exporters read
them when scraped."""

from __future__ import annotations

import bisect
import itertools
import sys

__all__ = ["ATTEMPT_BUCKETS", "DURATION_BUCKETS", "GIL_ENABLED", "AtomicCounter", "Histogram"]

#: Whether a single C call is atomic here (the GIL): the lock-free success paths rely on it,
#: and the breaker and bulkhead take their locks on every call without it.
GIL_ENABLED: bool = getattr(sys, "_is_gil_enabled", lambda: True)()

# The OpenTelemetry semantic-convention duration buckets, plus 30 s and 60 s.
DURATION_BUCKETS: tuple[float, ...] = (
    0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0, 30.0, 60.0,
)  # fmt: skip
ATTEMPT_BUCKETS: tuple[float, ...] = (1, 2, 3, 4, 5, 7, 10)


class Histogram:
    """Counts per bucket (not cumulative; the last slot is +Inf), and the sum. Not locked:
    the owner holds its own lock around :meth:`observe` and :meth:`read`."""

    __slots__ = ("bounds", "counts", "sum")

    def __init__(self, bounds: tuple[float, ...] = DURATION_BUCKETS) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)
        self.sum = 0.0

    def observe(self, value: float) -> None:
        self.counts[bisect.bisect_left(self.bounds, value)] += 1
        self.sum += value

    def read(self) -> tuple[tuple[int, ...], float]:
        """(per-bucket counts, sum), a copy."""
        return tuple(self.counts), self.sum


class AtomicCounter:
    """A counter that needs no lock: ``increment`` is ``itertools.count.__next__``, a single C
    call, which the GIL makes atomic. This is what keeps the breaker's success path lock-free.
    """

    __slots__ = ("_count", "increment")

    def __init__(self) -> None:
        self._count = itertools.count()
        self.increment = self._count.__next__

    @property
    def value(self) -> int:
        # count(N) is the only public way to read the next value without taking it.
        return int(repr(self._count)[6:-1])
