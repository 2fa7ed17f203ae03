"""The shared-breaker benchmark (benchmarks/bench_shared.py): its measures on made-up records,
its skip, and a small run of every part against a real redis-server (behaviour, not figures).

benchmarks/ is not a package: its directory goes on ``sys.path`` (as ``benchmarks/run.py``
does) and the module is imported by name.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import RedisServer, needs_redis

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
if str(BENCHMARKS) not in sys.path:
    sys.path.insert(0, str(BENCHMARKS))

shared: Any = importlib.import_module("bench_shared")
harness: Any = importlib.import_module("_harness")

OK, FAILED, REFUSED = shared.OK, shared.FAILED, shared.REFUSED
BAR_IDS = {
    "shared_overhead_vs_local_sync",
    "shared_overhead_vs_local_async",
    "shared_fleet_probes_vs_per_process",
    "shared_fleet_probe_peak",
    "shared_fleet_recover_s",
    "shared_trip_propagation_p99_ms",
    "shared_kill_caller_exceptions",
    "shared_kill_p99_vs_local",
    "shared_kill_log_lines_per_outage",
    "shared_kill_back_s",
}


# -- the measures --------------------------------------------------------------------------


def test_recover_is_the_start_of_the_unbroken_run_of_successes() -> None:
    calls = [(9.0, FAILED), (10.0, REFUSED), (10.2, FAILED), (10.3, OK), (10.4, OK)]
    assert shared.recover_time(calls, 10.0) == pytest.approx(0.3)
    assert shared.recover_time([(9.0, FAILED), (10.1, OK)], 10.0) == 0.0
    assert shared.recover_time([(10.1, OK), (10.2, REFUSED)], 10.0) is None


def test_peak_counts_the_most_in_any_one_second() -> None:
    assert shared.peak_in_window([0.0, 0.5, 0.99, 1.0, 1.4, 3.0]) == 4
    assert shared.peak_in_window([]) == 0


def test_a_worker_is_split_at_its_first_refusal_in_the_outage() -> None:
    raw = {
        "attempts": [0.5, 1.0, 1.1, 1.2, 1.8, 2.5, 2.6],
        "calls": [
            (0.5, OK),
            (1.0, FAILED),
            (1.1, FAILED),
            (1.2, FAILED),
            (1.3, REFUSED),
            (1.8, FAILED),
            (1.9, REFUSED),
            (2.1, REFUSED),
            (2.5, OK),
            (2.6, OK),
        ],
        "skipped": 2,
        "shared_errors": 0,
    }
    worker = shared.summarize_worker(raw, 1.0, 2.0)
    assert worker.calls == 10
    assert worker.attempts_down == 4  # 1.0, 1.1, 1.2, 1.8
    assert worker.attempts_before_open == 3
    assert worker.probe_times == [1.8]
    assert worker.detect == pytest.approx(0.3)
    assert worker.recover == pytest.approx(0.5)
    assert worker.skipped == 2


def test_a_worker_that_never_refused_detected_nothing() -> None:
    raw = {
        "attempts": [1.0, 1.5, 2.1],
        "calls": [(1.0, FAILED), (1.5, FAILED), (2.1, FAILED)],
        "skipped": 0,
    }
    worker = shared.summarize_worker({**raw, "shared_errors": 0}, 1.0, 2.0)
    assert worker.detect is None
    assert worker.attempts_before_open == 2
    assert worker.probe_times == []
    assert worker.recover is None  # its last call failed


def outcome(label: str, probes: list[list[float]], recover: float | None) -> Any:
    fleet = shared.FleetOutcome(label, shared.OutagePlan(workers=len(probes)))
    fleet.workers = [
        shared.WorkerOutcome(100, 50 + len(p), 50, p, 0.5, recover, 0, 0) for p in probes
    ]
    return fleet


def test_the_outage_bars_compare_the_probes_and_bound_the_fleets() -> None:
    local = outcome("per process", [[1.0, 1.6, 2.2], [1.0, 1.6, 2.2]], 0.2)
    fleet = outcome("shared", [[1.0], [1.6]], 0.3)
    share, peak, recover = shared.outage_bars(local, fleet)
    assert share.measured == pytest.approx(2 / 6)
    assert share.status == "PASS"
    assert peak.measured == 2.0
    assert peak.limit == 2.0  # 1 probe per 0.6 s, rounded up
    assert recover.measured == pytest.approx(0.3)
    table = shared.outage_table([local, fleet])
    assert [row[0] for row in table.rows] == ["per process", "shared"]
    assert any("shared / per process" in note for note in table.notes)


def test_a_worker_that_never_recovered_fails_the_recover_bar() -> None:
    local = outcome("per process", [[1.0]], 0.2)
    fleet = outcome("shared", [[1.0]], None)
    *_, recover = shared.outage_bars(local, fleet)
    assert recover.status == "FAIL"


def test_propagation_takes_the_last_worker_per_trip_and_counts_misses() -> None:
    plan = shared.PropagationPlan(workers=3, trips=3, cycle=1.0, reset_after=0.25)
    raws = [
        {"opened": [100.01, 101.05, 102.10], "shared_errors": 0},  # trips 0 by worker 0
        {"opened": [100.05, 101.0, 102.12], "shared_errors": 0},  # trip 1 by worker 1
        {"opened": [100.09, 101.2], "shared_errors": 0},  # trip 2: worker 2's own, not opened
    ]
    result = shared.analyse_propagation(plan, 100.0, raws)
    assert result.not_tripped == 1
    assert result.delays == [
        [pytest.approx(0.04), pytest.approx(0.08)],
        [pytest.approx(0.05), pytest.approx(0.2)],
    ]
    assert result.fleet == [pytest.approx(0.08), pytest.approx(0.2)]
    bar = shared.propagation_bar(result)
    assert bar.measured == pytest.approx(200.0)
    assert not bar.valid  # a trip that did not open its own worker's breaker


def test_a_worker_that_missed_a_trip_fails_the_propagation_bar() -> None:
    plan = shared.PropagationPlan(workers=2, trips=1, cycle=1.0, reset_after=0.25)
    raws = [{"opened": [0.01], "shared_errors": 0}, {"opened": [0.5], "shared_errors": 0}]
    result = shared.analyse_propagation(plan, 0.0, raws)
    assert result.missed == 1
    assert shared.propagation_bar(result).status == "FAIL"
    assert shared.propagation_table(result).rows[0][-1] == "1"


def kill_raw(shared_: bool, flips: list[Any], log: int = 0, errors: Any = None) -> Any:
    return {
        "shared": shared_,
        "latencies": [0.0003] * 98 + [0.001, 0.002],
        "starts": [i * 0.03 for i in range(100)],
        "exceptions": errors or {},
        "log": [("WARNING", "lost"), ("INFO", "back")][:log],
        "flips": flips,
    }


def test_a_kill_round_times_shared_up_from_the_kill_and_from_the_restart() -> None:
    raw = kill_raw(True, [(0.0, True), (1.04, False), (2.05, True)], log=2)
    run = shared.summarize_kill(raw, 1.0, 2.0, 2.015)
    assert run.lost_after == pytest.approx(0.04)
    assert run.back_after == pytest.approx(0.05)
    assert run.ready_after == pytest.approx(0.015)
    assert run.p99 == pytest.approx(0.001)
    assert run.p99_down == pytest.approx(0.0003)  # the calls started in [1.0, 2.0)
    local = shared.summarize_kill(kill_raw(False, [(0.0, None)]), 1.0, 2.0, 2.015)
    assert local.lost_after is None
    assert local.back_after is None


def kill_outcome(*pairs: tuple[Any, Any]) -> Any:
    outcome = shared.KillOutcome(shared.KillPlan(rounds=len(pairs)))
    outcome.rounds = [
        (shared.summarize_kill(a, 1.0, 2.0, 2.02), shared.summarize_kill(b, 1.0, 2.0, 2.02))
        for a, b in pairs
    ]
    return outcome


def test_the_kill_bars_count_exceptions_lines_and_the_way_back() -> None:
    local = kill_raw(False, [(0.0, None)])
    ok = kill_raw(True, [(0.0, True), (1.05, False), (2.1, True)], log=2)
    outcome = kill_outcome((local, ok), (local, ok))
    exceptions, p99, lines, back = shared.kill_bars(outcome)
    assert [b.status for b in (exceptions, p99, lines, back)] == ["PASS"] * 4
    assert p99.measured == pytest.approx(1.0)
    assert lines.measured == 2.0
    assert back.measured == pytest.approx(0.1)
    table = shared.kill_table(outcome)
    assert [row[0] for row in table.rows] == [shared.LOCAL, shared.SHARED]

    raised = kill_raw(True, [(0.0, True), (1.05, False)], log=1, errors={"RedisError": 3})
    exceptions, _, _, back = shared.kill_bars(kill_outcome((local, ok), (local, raised)))
    assert exceptions.measured == 3.0
    assert exceptions.status == "FAIL"
    assert "RedisError 3" in exceptions.detail
    assert back.status == "FAIL"  # one round never saw shared_up again


def test_a_kill_the_breaker_never_noticed_makes_the_kill_bars_invalid() -> None:
    local = kill_raw(False, [(0.0, None)])
    unseen = kill_raw(True, [(0.0, True)])
    bars = shared.kill_bars(kill_outcome((local, unseen)))
    assert {b.status for b in bars} == {"INVALID"}


def test_without_redis_the_suite_says_why_and_skips_its_bars(monkeypatch: Any) -> None:
    monkeypatch.setattr(shared, "missing", lambda: "redis-server is not on PATH")
    result = shared.SUITE.run(harness.RunConfig())
    assert result.tables == []
    assert result.notes == ["skipped: redis-server is not on PATH"]
    assert {b.id for b in result.bars} == BAR_IDS
    assert {b.status for b in result.bars} == {"SKIP"}


# -- a small run against a real redis-server ------------------------------------------------


@needs_redis
def test_every_part_runs_against_a_real_redis_server(tmp_path: Path) -> None:
    server = RedisServer(tmp_path)
    try:
        result = shared.run_parts(
            server,
            harness.RunConfig(rounds=2, sample_time=0.002),
            # 1.5 s of outage: each worker trips on its own 0.5 s streak, later on a loaded machine
            outage=shared.OutagePlan(workers=2, warm=0.3, outage=1.5, healthy=0.7),
            spread=shared.PropagationPlan(workers=2, trips=2),
            # Redis down 0.5 s (5 exchange intervals); 1.5 s after the restart to see it back
            kill=shared.KillPlan(threads=2, seconds=1.5, rounds=1),
        )
    finally:
        server.stop()
    assert {b.id for b in result.bars} == BAR_IDS
    overhead = [b for b in result.bars if b.id.startswith("shared_overhead")]
    assert all(b.measured is not None and b.valid for b in overhead), overhead
    sync, async_, outage, spread, killed = result.tables
    assert [row.candidate for row in sync.rows] == ["bare", shared.LOCAL, shared.SHARED]
    assert async_.kind == "async"
    assert [row[0] for row in outage.rows] == [shared.LOCAL_FLEET, shared.SHARED_FLEET]
    for fleet in outage.data:
        # Every worker of both configurations opened during the outage and closed after it.
        assert None not in fleet["detect_s"], fleet
        assert None not in fleet["recover_s"], fleet
        assert fleet["attempts_during_outage"] > 0
        assert fleet["shared_errors"] == 0
    assert spread.data == [{"delays_s": [[pytest.approx(0.0, abs=0.25)]] * 2, "not_tripped": 0}]
    propagated = next(b for b in result.bars if b.id == "shared_trip_propagation_p99_ms")
    assert propagated.valid
    assert propagated.measured is not None
    # Redis killed and restarted under load: no caller saw it, the shared breaker logged one
    # line when it lost Redis and one when it was back, and its snapshot said so.
    assert [row[0] for row in killed.rows] == [shared.LOCAL, shared.SHARED]
    local, shared_ = killed.data
    assert local["exceptions"] == [{}], killed.data
    assert shared_["exceptions"] == [{}], killed.data
    assert min(local["calls"]) > 0
    assert min(shared_["calls"]) > 0
    assert local["log_lines"] == [0]
    assert local["shared_up_lost_after_s"] == [None] == local["shared_up_back_after_s"]
    assert shared_["log_lines"] == [2], killed.notes
    assert None not in shared_["shared_up_lost_after_s"], killed.data
    assert None not in shared_["shared_up_back_after_s"], killed.data
    bars = {b.id: b for b in result.bars}
    assert bars["shared_kill_caller_exceptions"].status == "PASS"
    assert bars["shared_kill_log_lines_per_outage"].status == "PASS"
    assert bars["shared_kill_p99_vs_local"].measured is not None
    assert bars["shared_kill_p99_vs_local"].valid
    assert bars["shared_kill_back_s"].measured is not None
