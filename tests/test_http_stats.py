"""The httpx transports' per-attempt series: exact under threads, though observing takes no lock."""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator

import pytest

from seawall._stats.counters import DURATION_BUCKETS
from seawall._stats.http import _FOLD_AT, HttpStats

OK = ("GET", "a.test", "443", "200", "")
#: A duration whose sums are exact in binary floating point, in the first bucket.
FAST = 2.0**-8


@pytest.fixture
def fast_switching() -> Iterator[None]:
    before = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    yield
    sys.setswitchinterval(before)


def test_every_attempt_lands_in_its_bucket_and_the_sum() -> None:
    stats = HttpStats(max_addresses=10)
    durations = [FAST, DURATION_BUCKETS[0], DURATION_BUCKETS[3], 7.0, 100.0]
    for seconds in durations * (_FOLD_AT // 2):  # more than one fold's worth, and a rest
        stats.observe(*OK, seconds)
    counts, total = stats.read()[OK]
    rounds = _FOLD_AT // 2
    expected = [0] * (len(DURATION_BUCKETS) + 1)
    expected[0] = 2 * rounds  # FAST, and the first bound itself (bounds are inclusive)
    expected[3] = rounds
    expected[DURATION_BUCKETS.index(7.5)] = rounds
    expected[-1] = rounds  # +Inf
    assert list(counts) == expected
    assert total == pytest.approx(sum(durations) * rounds)


def test_counts_are_exact_under_threads_while_being_read(fast_switching: None) -> None:
    stats = HttpStats(max_addresses=10)
    threads, per_thread = 8, 5_000
    start = threading.Barrier(threads + 1)
    done = threading.Event()
    seen_while_running: list[int] = []

    def work() -> None:
        start.wait(10)
        for _ in range(per_thread):
            stats.observe(*OK, FAST)

    def reader() -> None:
        start.wait(10)
        while not done.is_set():
            reading = stats.read().get(OK)
            seen_while_running.append(0 if reading is None else sum(reading[0]))

    workers = [threading.Thread(target=work) for _ in range(threads)]
    watcher = threading.Thread(target=reader)
    for thread in [*workers, watcher]:
        thread.start()
    for thread in workers:
        thread.join(30)
    done.set()
    watcher.join(30)
    counts, total = stats.read()[OK]
    assert sum(counts) == counts[0] == threads * per_thread
    assert total == threads * per_thread * FAST  # exact: nothing lost or counted twice
    assert seen_while_running == sorted(seen_while_running)  # readings never go back
