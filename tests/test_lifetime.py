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
from pathlib import Path

import httpx
import pytest
from prometheus_client import CollectorRegistry

import seawall
from seawall.httpx import ResilientTransport
from seawall.metrics import SeawallCollector
from seawall.metrics import _remains as remains_module
from seawall.testing import Simulation


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
        _called_and_dropped(2_000)
        gc.collect()
        end, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert _finalizers() - before <= 1
    # 2,000 dropped policies kept ~600 B each before (1.2 MB); now what is left is noise.
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


# -- totals under a name never go down ----------------------------------------------------------


def _exposed(name: str, **labels: str) -> float | None:
    registry = CollectorRegistry()
    registry.register(SeawallCollector())
    return registry.get_sample_value(name, labels)


CALLS = "seawall_call_duration_seconds_count"


def test_a_collected_policy_sharing_a_name_leaves_its_counts_in_the_total() -> None:
    a = seawall.Policy("shared-total", breaker=True, bulkhead=1)
    b = seawall.Policy("shared-total", breaker=True, bulkhead=1)
    for _ in range(10):
        a.call(lambda: 1)
    for _ in range(5):
        b.call(lambda: 1)
    assert _exposed(CALLS, operation="shared-total", outcome="success") == 15
    del b
    gc.collect()
    assert _exposed(CALLS, operation="shared-total", outcome="success") == 15
    breaker_calls = "seawall_circuit_breaker_calls_total"
    assert _exposed(breaker_calls, policy="shared-total", outcome="success") == 15
    a.call(lambda: 1)
    assert _exposed(CALLS, operation="shared-total", outcome="success") == 16


def test_a_policy_made_per_request_keeps_adding_up(simulated: Simulation) -> None:
    for request in range(1, 4):
        policy = seawall.Policy("per-request", retry=seawall.Retry(on=OSError), breaker=True)
        for _ in range(5):
            policy.call(lambda: 1)
        with pytest.raises(OSError, match="down"):
            policy.call(_fails)
        # Its default waits (0.1 s and 0.2 s, each with up to 0.1 s of jitter) were made, on
        # the simulation's clock.
        assert 0.3 * request <= simulated.now() <= 0.5 * request
        del policy
        gc.collect()
        assert _exposed(CALLS, operation="per-request", outcome="success") == 5 * request
        assert _exposed(CALLS, operation="per-request", outcome="failure") == request
        attempts = _exposed("seawall_retry_attempts_count", policy="per-request")
        assert attempts == 6 * request


def _fails() -> None:
    raise OSError("down")


def test_an_httpx_client_made_per_request_keeps_adding_up() -> None:
    http = "seawall_http_client_request_duration_seconds_count"
    labels = {
        "http_request_method": "GET",
        "server_address": "per-request.test",
        "server_port": "80",
        "http_response_status_code": "200",
        "error_type": "",
    }
    for request in range(1, 4):
        transport = ResilientTransport(httpx.MockTransport(lambda r: httpx.Response(200)))
        with httpx.Client(transport=transport) as client:
            client.get("http://per-request.test/")
        del client, transport
        gc.collect()
        assert _exposed(http, **labels) == request
        operation = "httpx:per-request.test:80"
        assert _exposed(CALLS, operation=operation, outcome="success") == request


def test_an_evicted_hosts_totals_stay_and_come_back_with_it() -> None:
    transport = ResilientTransport(
        httpx.MockTransport(lambda request: httpx.Response(200)), max_hosts=2
    )
    with httpx.Client(transport=transport) as client:
        client.get("http://first.test/")
        for i in range(5):  # pushes first.test out
            client.get(f"http://other-{i}.test/")
        gc.collect()
        assert "first.test:80" not in transport.policies()
        operation = "httpx:first.test:80"
        assert _exposed(CALLS, operation=operation, outcome="success") == 1
        client.get("http://first.test/")  # back, with a fresh policy: the total goes on
        assert _exposed(CALLS, operation=operation, outcome="success") == 2
        total = sum(
            _exposed(CALLS, operation=f"httpx:{host}:80", outcome="success") or 0
            for host in ["first.test", *(f"other-{i}.test" for i in range(5))]
        )
        assert total == 7


def test_evicted_hosts_beyond_the_kept_names_end_their_series(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Past the bound of kept host names a host's series ends (and starts again from zero if
    # it comes back, which rate() reads as a new series, not as a drop): memory stays bounded.
    monkeypatch.setattr(remains_module, "HOST_NAMES", 3)
    transport = ResilientTransport(
        httpx.MockTransport(lambda request: httpx.Response(200)), max_hosts=1
    )
    with httpx.Client(transport=transport) as client:
        for i in range(10):
            client.get(f"http://hostile-{i}.test/")
        gc.collect()
    kept = [
        i
        for i in range(10)
        if _exposed(CALLS, operation=f"httpx:hostile-{i}.test:80", outcome="success")
    ]
    assert kept == [0, 1, 2, 9]  # three evicted names kept, and the live one


def test_the_readme_states_the_bounds_of_kept_names() -> None:
    readme = (Path(__file__).parent.parent / "README.md").read_text()
    text = " ".join(readme.split())
    assert remains_module.HOST_NAMES == remains_module.HTTP_SERVERS == 1000
    assert "for up to 1,000 evicted host names per process" in text
    assert "(and 1,000 server addresses of the per-attempt series)" in text


def test_a_policy_collected_during_a_reading_is_counted_once() -> None:
    # A reader that has read a policy alive must not also add its remains: the entry waits
    # for the next reading, which no longer sees the policy alive.
    from seawall.metrics._readings import Reading
    from seawall.metrics._remains import remains

    policy = seawall.Policy("collected-mid-read", breaker=True)
    for _ in range(5):
        policy.call(lambda: 1)
    serial = policy._serial
    from seawall.metrics import CATALOGUE

    with remains.lock:  # a reader at work, which has read the policy alive
        del policy
        gc.collect()  # its finalizer queues its counts (the lock is taken: not folded)
        out = {metric.name: Reading(metric) for metric in CATALOGUE}
        remains.add_to_locked(out, {serial})
        durations = out["seawall_call_duration_seconds"].histograms
        assert ("collected-mid-read", "success") not in durations  # read alive already
    assert _exposed(CALLS, operation="collected-mid-read", outcome="success") == 5


def test_a_policy_marked_collected_is_read_from_the_remains_only() -> None:
    from seawall.metrics._remains import remains

    policy = seawall.Policy("marked", breaker=True)
    for _ in range(3):
        policy.call(lambda: 1)
    remains.policy_collected(policy)  # as its finalizer does; still referenced here
    assert policy._collected
    assert _exposed(CALLS, operation="marked", outcome="success") == 3


def test_reading_error_types_again_in_the_same_thread_does_not_hang() -> None:
    # A garbage collection inside the locked block runs a finalizer that reads its policy's
    # error types in the same thread.
    from seawall.metrics import _readings

    done = threading.Event()

    def reenter() -> None:
        with _readings._error_types_lock:
            _readings._kept_error_type("reentered", "ValueError")
        done.set()

    thread = threading.Thread(target=reenter, daemon=True)
    thread.start()
    thread.join(10)
    assert done.is_set()


def test_a_shared_other_name_keeps_evicted_hosts_counts_past_the_bound(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(remains_module, "HOST_NAMES", 0)  # every host name past the bound
    transport = ResilientTransport(
        httpx.MockTransport(lambda request: httpx.Response(200)), max_hosts=1, labelled_hosts=1
    )
    with httpx.Client(transport=transport) as client:
        client.get("http://labelled.test/")
        for i in range(5):
            client.get(f"http://shared-{i}.test/")  # under <name>:_OTHER, evicted one by one
        gc.collect()
        operation = f"{transport.name}:_OTHER"
        assert _exposed(CALLS, operation=operation, outcome="success") == 5
        client.get("http://shared-9.test/")
        assert _exposed(CALLS, operation=operation, outcome="success") == 6
