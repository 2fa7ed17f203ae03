"""Prometheus multiprocess mode: the mirror into prometheus-client's per-process files.

Worker processes share one ``PROMETHEUS_MULTIPROC_DIR`` (set before they import anything);
the test merges their files with prometheus-client's ``MultiProcessCollector``, as an
application's ``/metrics`` does, and checks the totals exactly. The mirror's bookkeeping
(what it pushed, per policy) is also checked in this process, against metric objects
registered in a private registry.
"""

from __future__ import annotations

import gc
import json
import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead

from seawall import Bulkhead, CircuitBreaker, CircuitState, Retry
from seawall.metrics import CATALOGUE, SeawallCollector
from seawall.metrics import _multiprocess as mp
from seawall.testing import FakeClock

HANG = 20.0

# -- worker processes --------------------------------------------------------------------------

#: Shared by the worker scripts: wait (10 s at most) until this process's own counter file,
#: written by the mirror's thread, holds ``want`` successes for breaker ``policy``.
WAIT_FOR_THREAD = r"""
import os, sys, threading
from prometheus_client.multiprocess import MultiProcessCollector

def own_successes(policy):
    mine = os.path.join(os.environ["PROMETHEUS_MULTIPROC_DIR"], f"counter_{os.getpid()}.db")
    try:
        families = MultiProcessCollector.merge([mine])
    except Exception:  # not there yet, or caught between its creation and its first write
        return None
    for family in families:
        for sample in family.samples:
            if sample.labels == {"policy": policy, "outcome": "success"}:
                return sample.value
    return None

def wait_for_thread(policy, want):
    tick = threading.Event()
    for _ in range(1000):
        if own_successes(policy) == want:
            return
        tick.wait(0.01)
    sys.exit(f"the thread never wrote {want} successes; the file has {own_successes(policy)}")
"""

#: One worker: calls through a breaker, a retry and a bulkhead, flushed in two halves (with a
#: repeated flush in between), then one of three ways out: an explicit flush, the exit-time
#: flush, or the thread's flush (waited for, then ``os._exit``, which skips exit handlers).
WORKER = (
    WAIT_FOR_THREAD
    + r"""
import json
from seawall import Bulkhead, CircuitBreaker, CircuitOpenError, Retry
from seawall.metrics import _multiprocess as mp
from seawall.testing import FakeClock

cfg = json.loads(sys.argv[1])
mp.enable(interval=cfg["interval"])
clock = FakeClock()
breaker = CircuitBreaker(
    name="mp_breaker", minimum_calls=4, consecutive_failures=None, clock=clock
)
retry = Retry(on=ValueError, attempts=3, wait=0.0, name="mp_retry", clock=clock)
bulkhead = Bulkhead(2, name="mp_bulkhead", clock=clock)

def ok():
    clock.advance(0.25)
    return "ok"

def boom():
    clock.advance(0.5)
    raise ValueError("boom")

def flaky(fails):
    left = [fails]
    def call():
        if left[0]:
            left[0] -= 1
            raise ValueError("flaky")
        return "ok"
    return call

def attempt(fn):
    try:
        fn()
    except (ValueError, CircuitOpenError):
        pass

def calls(n):
    for _ in range(n["successes"]):
        attempt(lambda: breaker.call(ok))
    for _ in range(n["failures"]):
        attempt(lambda: breaker.call(boom))
    for fails in n["retry_fails"]:
        attempt(lambda: retry.call(flaky(fails)))
    for _ in range(n["bulkhead"]):
        bulkhead.call(ok)

calls(cfg["first"])
mp.flush()
mp.flush()  # nothing new: must add nothing
calls(cfg["second"])
if cfg["open"]:
    clock.advance(60.0)  # past the 30 s window: the next failures are the only calls in it
    for _ in range(4):
        attempt(lambda: breaker.call(boom))  # 4 failures in a row open it
    for _ in range(3):
        attempt(lambda: breaker.call(ok))  # rejected
    assert breaker.state.value == "open", breaker.state

how = cfg["exit"]
if how == "flush":
    mp.flush()
elif how == "thread":
    # Wait for the thread to write this process's calls, then leave without exit handlers.
    wait_for_thread("mp_breaker", breaker.snapshot().successes)
    os._exit(0)
# how == "atexit": the exit-time flush writes the second half.
"""
)


def spawn(script: str, directory: Path, *args: str) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if k.lower() != "prometheus_multiproc_dir"}
    env["PROMETHEUS_MULTIPROC_DIR"] = str(directory)
    return subprocess.Popen(
        [sys.executable, "-c", script, *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finish(process: subprocess.Popen[str]) -> str:
    """Wait for ``process`` (killing it if it hangs); its output, once it exited with 0."""
    try:
        out, err = process.communicate(timeout=HANG)
    except subprocess.TimeoutExpired:
        process.kill()
        process.communicate()
        raise
    assert process.returncode == 0, err
    return out


class Merged:
    """What a scrape of the directory shows, merged across processes."""

    def __init__(self, directory: Path) -> None:
        self.registry = CollectorRegistry()
        MultiProcessCollector(self.registry, path=str(directory))

    def __call__(self, name: str, **labels: str) -> float | None:
        return self.registry.get_sample_value(name, labels)


def batch(successes: int, failures: int, retry_fails: list[int], bulkhead: int) -> dict[str, Any]:
    return {
        "successes": successes,
        "failures": failures,
        "retry_fails": retry_fails,
        "bulkhead": bulkhead,
    }


#: Three workers; the first ends with its breaker open. Each worker's successes come before
#: its failures, which stay under half of its calls, so that only the first one's opens.
WORKERS = [
    {
        "first": batch(6, 1, [0, 1], 2),
        "second": batch(5, 2, [2, 3], 1),
        "open": True,
        "exit": "flush",
        "interval": 60.0,
    },
    {
        "first": batch(10, 3, [0, 0, 3], 0),
        "second": batch(4, 1, [1], 3),
        "open": False,
        "exit": "atexit",
        "interval": 60.0,
    },
    {
        "first": batch(7, 0, [1, 1], 1),
        "second": batch(8, 2, [0], 2),
        "open": False,
        "exit": "thread",
        "interval": 0.05,
    },
]


def expected_totals() -> dict[str, float]:
    """The totals, worked out from WORKERS without seawall."""
    out = dict.fromkeys(
        [
            "successes",
            "failures",
            "rejected",
            "retry_first",
            "retry_retried",
            "retry_failed",
            "attempts",
            "attempt_le_1",
            "attempt_le_2",
            "bulkhead",
        ],
        0.0,
    )
    for worker in WORKERS:
        for half in (worker["first"], worker["second"]):
            out["successes"] += half["successes"]
            out["failures"] += half["failures"]
            out["bulkhead"] += half["bulkhead"]
            for fails in half["retry_fails"]:
                attempts = min(fails, 2) + 1  # three attempts at most
                out["attempts"] += attempts
                out["attempt_le_1"] += attempts <= 1
                out["attempt_le_2"] += attempts <= 2
                if fails == 0:
                    out["retry_first"] += 1
                elif fails < 3:
                    out["retry_retried"] += 1
                else:
                    out["retry_failed"] += 1
        if worker["open"]:
            out["failures"] += 4
            out["rejected"] += 3
    out["retry_calls"] = out["retry_first"] + out["retry_retried"] + out["retry_failed"]
    return out


@pytest.fixture(scope="module")
def workers(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[int]]:
    """The workers' shared directory, after all of them ran and exited; their pids."""
    directory = tmp_path_factory.mktemp("multiproc")
    processes = [spawn(WORKER, directory, json.dumps(worker)) for worker in WORKERS]
    for process in processes:
        finish(process)
    return directory, [process.pid for process in processes]


def test_merged_totals_are_exact(workers: tuple[Path, list[int]]) -> None:
    directory, _ = workers
    merged, want = Merged(directory), expected_totals()
    calls = "seawall_circuit_breaker_calls_total"
    assert merged(calls, policy="mp_breaker", outcome="success") == want["successes"] == 40
    assert merged(calls, policy="mp_breaker", outcome="failure") == want["failures"] == 13
    assert merged(calls, policy="mp_breaker", outcome="rejected") == want["rejected"] == 3
    assert merged(calls, policy="mp_breaker", outcome="ignored") == 0

    duration = "seawall_call_duration_seconds"
    success = {"operation": "mp_breaker", "outcome": "success"}
    assert merged(f"{duration}_count", **success) == want["successes"]
    assert merged(f"{duration}_sum", **success) == want["successes"] * 0.25
    assert merged(f"{duration}_bucket", **success, le="0.25") == want["successes"]
    assert merged(f"{duration}_bucket", **success, le="0.1") == 0
    failure = {"operation": "mp_breaker", "outcome": "failure"}
    assert merged(f"{duration}_count", **failure) == want["failures"]
    assert merged(f"{duration}_sum", **failure) == want["failures"] * 0.5
    assert merged(f"{duration}_count", operation="mp_breaker", outcome="rejected") == 3

    def errors(operation: str, outcome: str, error_type: str) -> float | None:
        labels = {"operation": operation, "outcome": outcome, "error_type": error_type}
        return merged("seawall_call_errors_total", **labels)

    assert errors("mp_breaker", "failure", "ValueError") == want["failures"]
    assert errors("mp_breaker", "rejected", "CircuitOpenError") == want["rejected"]
    assert errors("mp_retry", "failure", "ValueError") == want["retry_failed"]

    def retries(outcome: str, retried: str) -> float | None:
        labels = {"policy": "mp_retry", "outcome": outcome, "retried": retried}
        return merged("seawall_retry_calls_total", **labels)

    assert retries("success", "false") == want["retry_first"] == 4
    assert retries("success", "true") == want["retry_retried"] == 5
    assert retries("failure", "true") == want["retry_failed"] == 2
    attempts = "seawall_retry_attempts"
    assert merged(f"{attempts}_count", policy="mp_retry") == want["retry_calls"] == 11
    assert merged(f"{attempts}_sum", policy="mp_retry") == want["attempts"]
    assert merged(f"{attempts}_bucket", policy="mp_retry", le="1.0") == want["attempt_le_1"]
    assert merged(f"{attempts}_bucket", policy="mp_retry", le="2.0") == want["attempt_le_2"]
    assert merged(f"{attempts}_bucket", policy="mp_retry", le="+Inf") == want["retry_calls"]

    bulkhead = "seawall_bulkhead_calls_total"
    assert merged(bulkhead, policy="mp_bulkhead", outcome="admitted") == want["bulkhead"] == 9
    assert merged(bulkhead, policy="mp_bulkhead", outcome="rejected") == 0
    waits = "seawall_bulkhead_wait_seconds"
    assert merged(f"{waits}_count", policy="mp_bulkhead") == want["bulkhead"]
    assert merged(f"{waits}_bucket", policy="mp_bulkhead", le="0.005") == want["bulkhead"]


def test_breaker_state_reads_open_while_any_live_worker_has_it_open(
    workers: tuple[Path, list[int]], tmp_path: Path
) -> None:
    directory, pids = workers
    # Work on a copy: the module's other tests read the directory as the workers left it.
    copy = tmp_path / "copy"
    copy.mkdir()
    for path in directory.iterdir():
        (copy / path.name).write_bytes(path.read_bytes())
    merged = Merged(copy)
    state = "seawall_circuit_breaker_state"
    # The workers exited, but no server marked them dead: their gauges still count.
    assert merged(state, policy="mp_breaker", state="open") == 1
    assert merged(state, policy="mp_breaker", state="closed") == 1  # the other two workers
    assert merged(state, policy="mp_breaker", state="half_open") == 0
    assert merged("seawall_bulkhead_limit", policy="mp_bulkhead") == 3 * 2
    assert merged("seawall_bulkhead_active", policy="mp_bulkhead") == 0

    mark_process_dead(pids[0], path=str(copy))  # what gunicorn's child_exit hook does
    merged = Merged(copy)
    assert merged(state, policy="mp_breaker", state="open") == 0
    assert merged(state, policy="mp_breaker", state="closed") == 1
    assert merged("seawall_bulkhead_limit", policy="mp_bulkhead") == 2 * 2
    # Counters keep a dead worker's counts.
    calls = "seawall_circuit_breaker_calls_total"
    assert merged(calls, policy="mp_breaker", outcome="rejected") == 3


#: A gunicorn-like master: calls before forking (some flushed, some not), two forked children
#: with calls of their own (one leaves through exit handlers, one waits for its restarted
#: thread and leaves with os._exit), then more calls in the master after they are gone.
FORKING = (
    WAIT_FOR_THREAD
    + r"""
from seawall import CircuitBreaker
from seawall.metrics import _multiprocess as mp

mp.enable(interval=0.05)
breaker = CircuitBreaker(name="fork_breaker")

def calls(n):
    for _ in range(n):
        breaker.call(lambda: "ok")

calls(5)
mp.flush()
calls(2)  # not flushed when the process forks
children = []
for i, n in enumerate((10, 20)):
    pid = os.fork()
    if pid == 0:
        assert mp.enabled()
        calls(n)
        if i == 1:
            wait_for_thread("fork_breaker", n)  # this process's own file holds only its own calls
            os._exit(0)
        sys.exit(0)  # the exit-time flush
    children.append(pid)
for pid in children:
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, status
calls(1)
print(" ".join(str(pid) for pid in [os.getpid(), *children]))
"""
)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_forked_workers_count_the_parents_calls_once(tmp_path: Path) -> None:
    master, *children = (int(pid) for pid in finish(spawn(FORKING, tmp_path)).split())
    merged = Merged(tmp_path)
    success = {"policy": "fork_breaker", "outcome": "success"}
    assert merged("seawall_circuit_breaker_calls_total", **success) == 5 + 2 + 10 + 20 + 1

    def own(kind: str, pid: int, name: str, **labels: str) -> float:
        """A sample from one process's own file."""
        for family in MultiProcessCollector.merge([str(tmp_path / f"{kind}_{pid}.db")]):
            for sample in family.samples:
                if sample.name == name and sample.labels == labels:
                    return sample.value
        raise AssertionError(f"no {name} {labels} for pid {pid}")

    calls = "seawall_circuit_breaker_calls_total"
    assert [own("counter", pid, calls, **success) for pid in (master, *children)] == [8, 10, 20]
    duration = "seawall_call_duration_seconds_count"
    assert merged(duration, operation="fork_breaker", outcome="success") == 38
    # Each child wrote its own gauges (its file started empty at the fork).
    state = "seawall_circuit_breaker_state"
    for pid in (master, *children):
        assert own("gauge_livemax", pid, state, policy="fork_breaker", state="closed") == 1


def test_import_seawall_turns_the_mirror_on_and_keeps_the_default_registry_out(
    tmp_path: Path,
) -> None:
    script = r"""
import seawall
from prometheus_client import REGISTRY
from seawall.metrics import _multiprocess as mp
breaker = seawall.CircuitBreaker(name="import_breaker")
breaker.call(lambda: "ok")
scraped = REGISTRY.get_sample_value(
    "seawall_circuit_breaker_calls_total", {"policy": "import_breaker", "outcome": "success"}
)
print(mp.in_multiprocess_mode(), mp.enabled(), scraped)
"""
    out = finish(spawn(script, tmp_path)).split()
    assert out == ["True", "True", "None"], (
        "in multiprocess mode, import seawall must enable the mirror and leave seawall's "
        "collector out of the default registry (seawall.metrics._config.setup_defaults)"
    )
    # The exit-time flush wrote the call.
    merged = Merged(tmp_path)
    calls = "seawall_circuit_breaker_calls_total"
    assert merged(calls, policy="import_breaker", outcome="success") == 1


# -- the mirror's bookkeeping, in this process -------------------------------------------------

in_this_process = pytest.mark.skipif(
    mp.in_multiprocess_mode(),
    reason="this process's prometheus-client is in multiprocess mode: its objects write files",
)


def unique(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:8]}"


class Mirrored:
    """A :class:`~seawall.metrics._multiprocess.Mirror` registered in a private registry."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.mirror = mp.Mirror(self.registry)

    def __call__(self, name: str, **labels: str) -> float | None:
        return self.registry.get_sample_value(name, labels)


@in_this_process
def test_flushing_twice_counts_once_and_later_flushes_push_the_difference() -> None:
    clock = FakeClock()
    name = unique("twice")
    breaker = CircuitBreaker(name=name, clock=clock)
    mirrored = Mirrored()
    calls = "seawall_circuit_breaker_calls_total"

    mirrored.mirror.flush()
    assert mirrored(calls, policy=name, outcome="success") == 0  # the series exists at once
    assert mirrored(calls, policy=name, outcome="failure") == 0
    for _ in range(3):
        breaker.call(lambda: clock.advance(0.25))
    mirrored.mirror.flush()
    mirrored.mirror.flush()
    assert mirrored(calls, policy=name, outcome="success") == 3
    assert mirrored("seawall_call_duration_seconds_count", operation=name, outcome="success") == 3
    assert mirrored("seawall_call_duration_seconds_sum", operation=name, outcome="success") == 0.75

    for _ in range(4):
        breaker.call(lambda: clock.advance(0.5))
    with pytest.raises(ValueError, match="x"):
        breaker.call(lambda: (_ for _ in ()).throw(ValueError("x")))
    mirrored.mirror.flush()
    assert mirrored(calls, policy=name, outcome="success") == 7
    assert mirrored(calls, policy=name, outcome="failure") == 1
    duration = {"operation": name, "outcome": "success"}
    assert mirrored("seawall_call_duration_seconds_count", **duration) == 7
    assert mirrored("seawall_call_duration_seconds_sum", **duration) == 0.75 + 2.0
    assert mirrored("seawall_call_duration_seconds_bucket", **duration, le="0.25") == 3
    assert mirrored("seawall_call_duration_seconds_bucket", **duration, le="0.5") == 7


@in_this_process
def test_the_mirror_shows_what_the_collector_shows() -> None:
    clock = FakeClock()
    prefix = unique("same")
    keep = [CircuitBreaker(name=f"{prefix}_a", clock=clock), CircuitBreaker(name=f"{prefix}_a")]
    retry = Retry(on=ValueError, attempts=2, wait=0.0, name=f"{prefix}_r", clock=clock)
    bulkhead = Bulkhead(3, name=f"{prefix}_b", clock=clock)
    keep[0].isolate()  # same-named breakers: one forced open, one closed
    for _ in range(2):
        keep[1].call(lambda: "ok")
    retry.call(lambda: "ok")
    bulkhead.call(lambda: "ok")
    mirrored = Mirrored()
    mirrored.mirror.flush()
    collector = CollectorRegistry()
    collector.register(SeawallCollector())

    def ours(registry: CollectorRegistry) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        out = {}
        for family in registry.collect():
            for sample in family.samples:
                if sample.name.endswith("_created"):
                    continue  # prometheus-client's own objects add these in-process only
                if any(str(value).startswith(prefix) for value in sample.labels.values()):
                    out[sample.name, tuple(sorted(sample.labels.items()))] = sample.value
        return out

    from_collector = ours(collector)
    assert ours(mirrored.registry) == from_collector
    state = ("seawall_circuit_breaker_state", (("policy", f"{prefix}_a"), ("state", "closed")))
    assert from_collector[state] == 1
    del keep


@in_this_process
def test_the_mirror_carries_the_httpx_transports_per_attempt_series() -> None:
    import httpx

    from seawall import Policy
    from seawall.httpx import ResilientTransport

    host = f"{unique('mirror')}.test"
    statuses = iter([503, 200, 200])

    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(next(statuses))

    clock = FakeClock()
    template = Policy(unique("http"), retry=Retry(on=Exception, attempts=2, wait=0.0), clock=clock)
    transport = ResilientTransport(httpx.MockTransport(answer), policy=template)
    mirrored = Mirrored()
    with httpx.Client(transport=transport) as client:
        assert client.get(f"http://{host}/").status_code == 200
        mirrored.mirror.flush()
        assert client.get(f"http://{host}/").status_code == 200
    mirrored.mirror.flush()
    mirrored.mirror.flush()  # nothing new: counted once
    name = "seawall_http_client_request_duration_seconds_count"
    labels = {"http_request_method": "GET", "server_address": host, "server_port": "80"}
    assert mirrored(name, **labels, http_response_status_code="503", error_type="503") == 1
    assert mirrored(name, **labels, http_response_status_code="200", error_type="") == 2


@in_this_process
def test_a_collected_policys_counts_stay_and_a_new_one_with_its_name_adds() -> None:
    name = unique("gone")
    mirrored = Mirrored()
    calls = "seawall_circuit_breaker_calls_total"
    state = "seawall_circuit_breaker_state"
    breaker = CircuitBreaker(name=name)
    for _ in range(5):
        breaker.call(lambda: "ok")
    mirrored.mirror.flush()
    del breaker
    gc.collect()
    mirrored.mirror.flush()
    assert mirrored(calls, policy=name, outcome="success") == 5  # counters never go down
    assert mirrored(state, policy=name, state="closed") == 0  # no breaker is in any state

    again = CircuitBreaker(name=name)
    again.call(lambda: "ok")
    mirrored.mirror.flush()
    assert mirrored(calls, policy=name, outcome="success") == 6
    assert mirrored(state, policy=name, state="closed") == 1


@in_this_process
def test_gauges_follow_the_state() -> None:
    name = unique("gauge")
    mirrored = Mirrored()
    breaker = CircuitBreaker(name=name)
    state = "seawall_circuit_breaker_state"
    mirrored.mirror.flush()
    assert mirrored(state, policy=name, state="closed") == 1
    breaker.isolate()
    mirrored.mirror.flush()
    assert mirrored(state, policy=name, state="closed") == 0
    assert mirrored(state, policy=name, state="forced_open") == 1
    assert breaker.state is CircuitState.FORCED_OPEN


@in_this_process
def test_this_prometheus_client_lets_the_mirror_add_to_histograms() -> None:
    # The mirror adds to the value objects Histogram.observe increments; this is the guard
    # that a prometheus-client upgrade which moves them fails here rather than in production.
    mirrored = Mirrored()
    for metric in CATALOGUE:
        if metric.kind == "histogram":
            family = mirrored.mirror._families[metric.name]
            child = family.labels(*(["x"] * len(metric.labels)))
            assert mp._histogram_values(child, len(metric.buckets) + 1) is not None, metric.name


def test_every_gauge_has_a_multiprocess_mode() -> None:
    gauges = {metric.name for metric in CATALOGUE if metric.kind == "gauge"}
    assert set(mp.GAUGE_MODES) == gauges
    assert mp.GAUGE_MODES["seawall_circuit_breaker_state"] == "livemax"


def test_enable_checks_its_interval_and_the_mode() -> None:
    with pytest.raises(ValueError, match="interval"):
        mp.enable(interval=0)
    if not mp.in_multiprocess_mode():
        with pytest.raises(RuntimeError, match="PROMETHEUS_MULTIPROC_DIR"):
            mp.enable()
        assert not mp.enabled()
        mp.flush()  # nothing to do, and no error


@in_this_process
def test_a_policy_collected_between_flushes_keeps_its_last_counts() -> None:
    name = unique("collected")
    breaker = CircuitBreaker(name=name)
    mirrored = Mirrored()
    for _ in range(3):
        breaker.call(lambda: "ok")
    mirrored.mirror.flush()
    assert mirrored("seawall_circuit_breaker_calls_total", policy=name, outcome="success") == 3
    for _ in range(2):
        breaker.call(lambda: "ok")
    del breaker
    gc.collect()
    mirrored.mirror.flush()
    mirrored.mirror.flush()
    assert mirrored("seawall_circuit_breaker_calls_total", policy=name, outcome="success") == 5
    count = "seawall_call_duration_seconds_count"
    assert mirrored(count, operation=name, outcome="success") == 5
