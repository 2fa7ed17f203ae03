"""What a policy leaves behind when it is collected: no memory, and no count lost.

Policies are made and dropped in loops, as services that build a policy (or an httpx client)
per request do; the checks are on the finalizer registry, traced memory, and the series read
after garbage collection.
"""

from __future__ import annotations

import gc
import threading
import tracemalloc
import weakref
from concurrent.futures import ThreadPoolExecutor

import httpx

import seawall
from seawall.httpx import ResilientTransport


def _finalizers() -> int:
    return len(weakref.finalize._registry)  # type: ignore[attr-defined]


def _called_and_dropped(count: int) -> None:
    for _ in range(count):
        policy = seawall.Policy("dropped", retry=seawall.Retry(on=OSError), breaker=True)
        policy.call(lambda: 1)


def test_a_collected_policy_leaves_no_finalizer_or_shard_in_a_long_lived_thread() -> None:
    _called_and_dropped(200)  # warm up: caches, interned names
    gc.collect()
    before = _finalizers()
    tracemalloc.start()
    try:
        start, _ = tracemalloc.get_traced_memory()
        _called_and_dropped(5_000)
        gc.collect()
        end, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert _finalizers() - before <= 1
    # 5,000 dropped policies kept ~600 B each before (3 MB); now what is left is noise.
    assert end - start < 300_000


def test_the_same_from_a_thread_pool() -> None:
    before = _finalizers()
    with ThreadPoolExecutor(4) as pool:
        for _ in range(1_000):
            pool.submit(_called_and_dropped, 1).result()
        gc.collect()
        during = _finalizers()
    gc.collect()
    # While the pool lives, at most one finalizer per live policy per thread.
    assert during - before <= 4
    assert _finalizers() - before <= 4


def test_a_dead_threads_successes_still_count_while_the_policy_lives() -> None:
    policy = seawall.Policy("threads", breaker=True, bulkhead=4)
    threads = [
        threading.Thread(target=lambda: [policy.call(lambda: 1) for _ in range(100)])
        for _ in range(8)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    del threads
    gc.collect()
    (counts, _) = policy.stats.read().durations["success"]
    assert sum(counts) == 800


def test_evicted_hosts_leave_no_finalizers() -> None:
    transport = ResilientTransport(
        httpx.MockTransport(lambda request: httpx.Response(200)), max_hosts=10
    )
    with httpx.Client(transport=transport) as client:
        client.get("http://warm.test/")
        gc.collect()
        before = _finalizers()
        for i in range(500):
            client.get(f"http://host-{i}.test/")
        gc.collect()
        assert len(transport.policies()) == 10
        assert _finalizers() - before <= 10
