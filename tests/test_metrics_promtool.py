"""seawall's exposition passes ``promtool check metrics`` with no findings.

promtool comes from Debian's ``prometheus`` package (``.ci/run`` installs it when it runs as
root); these tests skip, saying so, where it is not on ``PATH``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.parser import text_string_to_metric_families

from seawall import (
    Bulkhead,
    BulkheadFullError,
    CircuitBreaker,
    CircuitOpenError,
    CircuitState,
    Policy,
    Retry,
    RetryBudget,
    Timeout,
    TimeoutExceededError,
    chaos,
)
from seawall.metrics import CATALOGUE, SeawallCollector
from seawall.redis import RedisState
from seawall.testing import FakeClock
from tests.helpers import free_port

PROMTOOL = shutil.which("promtool")
needs_promtool = pytest.mark.skipif(
    PROMTOOL is None,
    reason="promtool is not on PATH (Debian's prometheus package has it; .ci/run installs "
    "it when run as root)",
)

#: Families that the scenario below cannot fill: the HTTP series come only from seawall's
#: httpx transports.
NOT_FILLED = {"seawall_http_client_request_duration_seconds"}


def populate_every_family() -> list[object]:
    """Calls through every kind of policy that leave a sample in every family the policies
    fill: breaker outcomes, slow calls and all three transitions, retries with an exhausted
    budget, timeouts, bulkhead admissions, rejections and waits, call errors. Returns the
    policies (keep them alive until the scrape)."""
    clock = FakeClock()

    def slow() -> str:
        clock.advance(2.0)
        return "slow"

    def boom() -> None:
        raise ValueError("boom")

    breaker = CircuitBreaker(
        name="promtool_breaker",
        minimum_calls=2,
        window_calls=4,
        slow_call_duration=1.0,
        ignore_on=KeyError,
        open_duration=1.0,
        half_open_calls=1,
        clock=clock,
    )
    breaker.call(slow)  # a slow success
    with pytest.raises(KeyError):
        breaker.call(lambda: {}["missing"])  # ignored
    with pytest.raises(ValueError, match="boom"):
        breaker.call(boom)  # one failure in two calls: closed -> open
    assert breaker.state is CircuitState.OPEN
    with pytest.raises(CircuitOpenError):
        breaker.call(lambda: "rejected")
    clock.advance(1.5)  # open -> half-open, then the probe closes it
    assert breaker.call(lambda: "probe") == "probe"
    assert breaker.state is CircuitState.CLOSED

    retry = Retry(
        on=ValueError,
        attempts=3,
        wait=0.0,
        budget=RetryBudget(ratio=0.0, min_per_second=0.0),
        name="promtool_retry",
        clock=clock,
    )
    assert retry.call(lambda: "ok") == "ok"
    with pytest.raises(ValueError, match="boom"):
        retry.call(boom)  # the budget refuses the retry
    flaky = Retry(on=ValueError, attempts=3, wait=0.0, name="promtool_flaky", clock=clock)
    tries = iter([ValueError("once"), None])

    def once() -> str:
        error = next(tries)
        if error is not None:
            raise error
        return "ok"

    assert flaky.call(once) == "ok"

    timeout = Timeout(1.0, name="promtool_timeout", clock=clock)
    assert timeout.call(lambda: "fast") == "fast"
    with pytest.raises(TimeoutExceededError):
        timeout.call(slow)

    bulkhead = Bulkhead(1, name="promtool_bulkhead", clock=clock)

    def nested() -> None:
        bulkhead.call(lambda: "no room")  # the one slot is taken by the outer call

    with pytest.raises(BulkheadFullError):
        bulkhead.call(nested)

    policy = Policy(
        "promtool_policy",
        retry=Retry(on=ValueError, attempts=2, wait=0.0, clock=clock),
        breaker=CircuitBreaker(clock=clock),
        bulkhead=Bulkhead(4, clock=clock),
    )
    assert policy.call(lambda: "ok") == "ok"
    with pytest.raises(ValueError, match="boom"):
        policy.call(boom)

    injector = chaos.inject(chaos.Reset(), enabled=True, name="promtool_chaos", clock=clock)
    with pytest.raises(ConnectionResetError):
        injector.call(lambda: "never")
    # A shared breaker whose Redis is gone (nothing listens there): its one exchange fails.
    state = RedisState(f"redis://127.0.0.1:{free_port()}/0", timeout=1.0)
    state.close()
    shared = CircuitBreaker(name="promtool_shared", clock=clock, shared=state)
    shared.call(lambda: "ok")
    state.sync_now()
    return [breaker, retry, flaky, timeout, bulkhead, policy, injector, shared]


def promtool_findings(exposition: bytes) -> tuple[int, str]:
    """``promtool check metrics``'s exit code and everything it printed."""
    assert PROMTOOL is not None
    done = subprocess.run(
        [PROMTOOL, "check", "metrics"],
        input=exposition,
        capture_output=True,
        timeout=60,
        check=False,
    )
    return done.returncode, (done.stdout + done.stderr).decode()


def families_in(exposition: bytes) -> set[str]:
    names = set()
    for family in text_string_to_metric_families(exposition.decode()):
        if family.samples:
            names.add(family.name + ("_total" if family.type == "counter" else ""))
    return names


def expected_families() -> set[str]:
    return {metric.name for metric in CATALOGUE} - NOT_FILLED


@needs_promtool
def test_collector_exposition_passes_promtool() -> None:
    keep = populate_every_family()
    registry = CollectorRegistry()
    registry.register(SeawallCollector())
    exposition = generate_latest(registry)
    assert families_in(exposition) >= expected_families()
    code, findings = promtool_findings(exposition)
    assert (code, findings.strip()) == (0, ""), findings
    del keep


WORKER = """
import sys
sys.path.insert(0, sys.argv[1])
import test_metrics_promtool
from seawall.metrics import _multiprocess
_multiprocess.enable()
keep = test_metrics_promtool.populate_every_family()
_multiprocess.flush()
"""


@needs_promtool
def test_multiprocess_exposition_passes_promtool(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k.lower() != "prometheus_multiproc_dir"}
    env["PROMETHEUS_MULTIPROC_DIR"] = str(tmp_path)
    subprocess.run(
        [sys.executable, "-c", WORKER, str(Path(__file__).parent)],
        env=env,
        check=True,
        timeout=60,
    )
    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=str(tmp_path))
    exposition = generate_latest(registry)
    assert families_in(exposition) >= expected_families()
    code, findings = promtool_findings(exposition)
    assert (code, findings.strip()) == (0, ""), findings
