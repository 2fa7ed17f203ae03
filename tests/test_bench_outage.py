"""The outage benchmark's simulation and the benchmark report: behaviour, not figures.

benchmarks/ is not a package: its directory goes on ``sys.path`` (as ``benchmarks/run.py``
does) and the modules are imported by name. pybreaker is a ``bench`` extra, absent from a
plain ``.[dev]`` install: its client is left out (and its test skipped) without it.
"""

from __future__ import annotations

import asyncio
import importlib
import math
import sys
import time
from pathlib import Path
from typing import Any

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
if str(BENCHMARKS) not in sys.path:
    sys.path.insert(0, str(BENCHMARKS))

outage: Any = importlib.import_module("bench_outage")
harness: Any = importlib.import_module("_harness")

CORE = [
    (outage.NO_PROTECTION, outage.no_protection),
    (outage.TENACITY, outage.tenacity_alone),
    (outage.SEAWALL_DEFAULTS, outage.seawall_defaults),
    (outage.SEAWALL_TUNED, outage.seawall_tuned),
]


@pytest.fixture(scope="module")
def outcomes() -> dict[str, Any]:
    found, skipped = outage.run_scenario(outage.Scenario(), CORE)
    assert not skipped
    return {o.client.name: o for o in found}


@pytest.fixture(scope="module")
def summaries(outcomes: dict[str, Any]) -> dict[str, Any]:
    return {name: outage.summarize(o) for name, o in outcomes.items()}


def test_simulated_loop_jumps_to_the_next_timer() -> None:
    async def main() -> float:
        loop = asyncio.get_running_loop()
        async with asyncio.timeout(30.0):
            await asyncio.sleep(12.5)
        return loop.time()

    started = time.perf_counter()
    with asyncio.Runner(loop_factory=outage.SimLoop) as runner:
        assert runner.run(main()) == pytest.approx(12.5)
    assert time.perf_counter() - started < 1.0


def test_a_hung_attempt_ends_at_the_timeout_on_simulated_time() -> None:
    async def main() -> tuple[bool, float]:
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(1.0):
                await loop.create_future()
        except TimeoutError:
            return True, loop.time()
        return False, loop.time()

    with asyncio.Runner(loop_factory=outage.SimLoop) as runner:
        assert runner.run(main()) == (True, pytest.approx(1.0))


def test_no_protection_makes_one_attempt_per_call(summaries: dict[str, Any]) -> None:
    s = summaries[outage.NO_PROTECTION]
    scenario = outage.Scenario()
    assert s.calls == len(scenario.arrivals())
    assert s.attempts_per_call == 1.0
    assert s.attempts_per_call_outage == 1.0
    assert s.fast_failures == 0
    assert s.time_to_detect is None
    assert s.breaker_closed_after is None
    # Exactly the calls arriving during the outage fail, each after the full timeout.
    assert s.availability == pytest.approx((s.calls - s.outage_calls) / s.calls)
    assert s.latency_p50_outage == pytest.approx(scenario.attempt_timeout)
    assert s.time_to_recover == 0.0


def test_tenacity_triples_the_load_on_a_dead_dependency(summaries: dict[str, Any]) -> None:
    s = summaries[outage.TENACITY]
    assert s.attempts_per_call_outage > 2.5
    assert s.time_to_detect is None
    assert s.latency_p50_outage > 3 * outage.Scenario().attempt_timeout


@pytest.mark.parametrize("name", [outage.SEAWALL_DEFAULTS, outage.SEAWALL_TUNED])
def test_seawall_sends_far_fewer_attempts_than_tenacity(
    summaries: dict[str, Any], name: str
) -> None:
    seawall_load = summaries[name].attempts_per_call_outage
    assert seawall_load <= outage.BAR_LIMIT
    assert seawall_load < summaries[outage.TENACITY].attempts_per_call_outage / 2


def _detects_and_recovers(outcome: Any, s: Any) -> None:
    """The breaker opened during the outage and closed after it; the calls from the recovery
    point on all succeeded, and none failed before the outage."""
    scenario = outage.Scenario()
    assert s.time_to_detect is not None
    assert 0 < s.time_to_detect < scenario.outage_end - scenario.outage_start
    assert s.fast_failures > 0
    assert s.time_to_recover is not None
    assert math.isfinite(s.time_to_recover)
    assert s.breaker_closed_after is not None
    assert s.breaker_closed_after >= 0
    transitions = outcome.client.transitions
    opened_at, state = transitions[0]
    assert state == "open"
    assert opened_at == pytest.approx(scenario.outage_start + s.time_to_detect, abs=0.1)
    assert transitions[-1][1] == "closed"
    assert transitions[-1][0] >= scenario.outage_end
    recovered = scenario.outage_end + s.time_to_recover
    assert all(c.ok for c in outcome.calls if c.arrival >= recovered)
    assert all(c.ok for c in outcome.calls if c.arrival < scenario.outage_start)


def test_seawall_defaults_detect_the_outage_and_recover_after_the_upstream(
    outcomes: dict[str, Any], summaries: dict[str, Any]
) -> None:
    s = summaries[outage.SEAWALL_DEFAULTS]
    _detects_and_recovers(outcomes[outage.SEAWALL_DEFAULTS], s)


def test_seawall_tuned_detects_and_recovers_within_a_few_seconds(
    outcomes: dict[str, Any], summaries: dict[str, Any]
) -> None:
    s = summaries[outage.SEAWALL_TUNED]
    _detects_and_recovers(outcomes[outage.SEAWALL_TUNED], s)
    open_duration = outage.TUNED_BREAKER["max_open_duration"]
    # Open at most max_open_duration (no doubling), then one probe of a healthy upstream.
    assert s.time_to_recover <= open_duration + 1.0
    assert s.breaker_closed_after <= open_duration + 1.0
    # Sooner than the defaults on both ends.
    defaults = summaries[outage.SEAWALL_DEFAULTS]
    assert s.time_to_detect < defaults.time_to_detect
    assert s.time_to_recover < defaults.time_to_recover


def test_seawall_tuned_does_not_retry_timeouts(summaries: dict[str, Any]) -> None:
    tuned = summaries[outage.SEAWALL_TUNED]
    # Every failure here is a timeout: at most one attempt per call, fewer than tenacity's.
    assert tuned.attempts_per_call_outage <= 1.0
    assert tuned.attempts_per_call <= 1.0
    assert tuned.attempts_per_call_outage < summaries[outage.TENACITY].attempts_per_call_outage


def test_the_bar_is_checked_on_the_tuned_row(
    outcomes: dict[str, Any], summaries: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    # The runs already made, not the whole client list again (pybreaker's included).
    monkeypatch.setattr(outage, "run_scenario", lambda scenario: (list(outcomes.values()), []))
    result = outage.run(harness.RunConfig())
    (bar,) = result.bars
    assert bar.valid
    assert bar.measured == summaries[outage.SEAWALL_TUNED].attempts_per_call_outage
    assert bar.status == "PASS"
    defaults = summaries[outage.SEAWALL_DEFAULTS].attempts_per_call_outage
    assert f"{defaults:.2f}" in bar.detail


@pytest.mark.parametrize("name", [outage.SEAWALL_DEFAULTS, outage.SEAWALL_TUNED])
def test_the_scenario_is_deterministic(summaries: dict[str, Any], name: str) -> None:
    build = dict(outage.CLIENTS)[name]
    assert outage.summarize(outage.simulate(build)) == summaries[name]


def test_pybreaker_runs_on_simulated_time_and_is_put_back() -> None:
    pybreaker = pytest.importorskip("pybreaker")
    original = pybreaker.datetime
    s = outage.summarize(outage.simulate(outage.tenacity_pybreaker))
    assert pybreaker.datetime is original
    assert s.time_to_detect is not None
    assert s.time_to_detect < 5.0
    # reset_timeout=5 on simulated time: closed again a few simulated seconds after recovery.
    assert s.breaker_closed_after is not None
    assert 0 <= s.breaker_closed_after < 2 * outage.RESET_TIMEOUT
    assert s.attempts_per_call_outage < 1.0


def test_the_outage_table_renders_as_markdown(outcomes: dict[str, Any]) -> None:
    table = outage.outage_table(list(outcomes.values()))
    text = harness.markdown_table(table)
    lines = text.splitlines()
    assert lines[0].startswith("**outage on simulated time")
    header = "| " + " | ".join(outage.HEADERS) + " |"
    assert header in lines
    separator = lines[lines.index(header) + 1]
    assert separator.startswith("| :--- | ---: |")
    assert separator.count("|") == len(outage.HEADERS) + 1
    rows = [line for line in lines if line.startswith(f"| {outage.SEAWALL_TUNED} |")]
    assert len(rows) == 1
    assert rows[0].count("|") == len(outage.HEADERS) + 1
    notes = [line for line in lines if line.startswith(f"- {outage.SEAWALL_TUNED}: ")]
    assert len(notes) == 1
    assert "CircuitBreaker(window=5, minimum_calls=10" in notes[0]
    assert "; breaker transitions (state, simulated s): open " in notes[0]
    # The console form shows the same rows.
    assert outage.SEAWALL_TUNED in harness.format_table(table)


def test_markdown_escapes_pipes() -> None:
    table = harness.TextTable("t", ["a", "b"], [["x | y", "1"]])
    assert "| x \\| y | 1 |" in harness.markdown_table(table).splitlines()


# -- the report that benchmarks/run.py writes ------------------------------------------------


def _suites(outcomes: dict[str, Any]) -> dict[str, Any]:
    def quick(config: Any) -> Any:
        result = harness.SuiteResult("quick")
        result.tables.append(outage.outage_table(list(outcomes.values())))
        result.bars.append(harness.Bar("b", "a bar", 1.2, 0.5, "some detail"))
        result.notes.append("a note")
        return result

    def other(config: Any) -> Any:
        return harness.SuiteResult("other", notes=["the other suite ran"])

    return {
        "quick": harness.Suite("quick", "a quick suite", quick),
        "other": harness.Suite("other", "another suite", other),
    }


def test_report_written_to_the_path_asked_for(
    outcomes: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "report.md"
    assert harness.cli(["quick", "--results", str(path)], _suites(outcomes)) == 0
    report = path.read_text(encoding="utf-8")
    assert report.startswith("# seawall benchmark results\n")
    assert f"benchmarks/run.py quick --results {path}`" in report
    assert "- CPUs: " in report
    assert "- Python: " in report
    assert "| tenacity | " in report
    assert "## quick: a quick suite" in report
    assert f"| {outage.SEAWALL_TUNED} |" in report
    assert "- **PASS** a bar: measured 0.500 (limit 1.2); some detail" in report
    assert "- a note" in report
    assert "## other" not in report
    assert f"wrote {path}" in capsys.readouterr().out


def test_report_written_by_default_only_for_a_full_run(
    outcomes: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    default = tmp_path / "RESULTS.md"
    monkeypatch.setattr(harness, "RESULTS_PATH", str(default))
    suites = _suites(outcomes)
    assert harness.cli(["quick"], suites, full_report=True) == 0
    assert not default.exists()  # a partial run leaves the full report alone
    assert harness.cli(["--no-results"], suites, full_report=True) == 0
    assert not default.exists()
    assert harness.cli([], suites) == 0  # a suite module run on its own: no report
    assert not default.exists()
    assert harness.cli([], suites, full_report=True) == 0
    report = default.read_text(encoding="utf-8")
    assert "## quick: a quick suite" in report
    assert "## other: another suite" in report
    assert "- the other suite ran" in report
