"""The outage benchmark's simulation, measures and bars, and the benchmark report: behaviour,
not figures (seawall's own outcomes are asserted in test_breaker_outcomes.py).

benchmarks/ is not a package: its directory goes on ``sys.path`` (as ``benchmarks/run.py``
does) and the modules are imported by name. The peer breakers are a ``bench`` extra, absent
from a plain ``.[dev]`` install: their tests are skipped without them.
"""

from __future__ import annotations

import asyncio
import importlib
import itertools
import math
import random
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from seawall import chaos
from seawall._simulated import SimulationStalled

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
if str(BENCHMARKS) not in sys.path:
    sys.path.insert(0, str(BENCHMARKS))

outage: Any = importlib.import_module("bench_outage")
harness: Any = importlib.import_module("_harness")

HARD_DOWN = outage.SHAPES_BY_NAME["hard-down"]
FLAPPING = outage.SHAPES_BY_NAME["flapping"]


def run(client: str, shape: Any = HARD_DOWN, rate: float = 2.0) -> Any:
    return outage.simulate(outage.SPECS[client], outage.Scenario(shape, rate))


# -- simulated time ----------------------------------------------------------------------------


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


def test_a_simulation_with_nothing_left_to_wait_for_stops_with_an_error() -> None:
    async def main() -> None:
        await asyncio.get_running_loop().create_future()

    with (
        asyncio.Runner(loop_factory=outage.SimLoop) as runner,
        pytest.raises(SimulationStalled),
    ):
        runner.run(main())


# -- shapes ------------------------------------------------------------------------------------


def test_every_shape_the_matrix_promises_is_there() -> None:
    assert [s.name for s in outage.SHAPES] == [
        "hard-down",
        "hanging",
        "40% errors",
        "slow",
        "3 s blip",
        "flapping",
        "10-minute hang",
    ]
    assert all(isinstance(s.schedule, chaos.Schedule) for s in outage.SHAPES)
    assert outage.SHAPES_BY_NAME["10-minute hang"].end == 690.0
    assert outage.SHAPES_BY_NAME["10-minute hang"].disturbances[0].end == 630.0
    assert [(p.start, p.end) for p in FLAPPING.disturbances] == [(30, 40), (50, 60), (70, 80)]
    assert FLAPPING.schedule.bounds("down") == [(30, 40), (50, 60), (70, 80)]
    slow = outage.SHAPES_BY_NAME["slow"].disturbances[0].faults
    assert slow == (chaos.Latency(0.9),)
    assert slow[0].seconds < outage.ATTEMPT_TIMEOUT


def test_hard_down_is_the_chaos_schedule_the_docstring_shows() -> None:
    assert HARD_DOWN.schedule == chaos.Schedule(
        chaos.Phase("healthy", 30),
        chaos.Phase("hard-down", 60, chaos.ConnectError(after=0.001)),
        chaos.Phase("recovered", None),
    )
    assert HARD_DOWN.end == 150.0


@pytest.mark.parametrize("shape", outage.SHAPES, ids=lambda s: s.slug)
def test_the_spans_are_where_the_schedule_puts_its_phases(shape: Any) -> None:
    spans = shape.spans
    assert spans[0].start == 0.0
    assert spans[-1].end == shape.end
    for span, after in itertools.pairwise(spans):
        assert span.end == after.start
    for span in spans:
        assert shape.schedule.phase_at(span.start) is span.phase
        assert shape.schedule.phase_at(math.nextafter(span.end, 0.0)) is span.phase
        assert shape.disturbed(span.start) == bool(span.faults)


def test_shape_schedule_slug_and_description() -> None:
    assert FLAPPING.faults_at(29.99) == ()
    assert FLAPPING.faults_at(30.0) == (outage.REFUSED,)
    assert not FLAPPING.disturbed(40.0)
    assert FLAPPING.disturbed(50.0)
    assert outage.SHAPES_BY_NAME["40% errors"].slug == "40pct-errors"
    assert HARD_DOWN.describe() == (
        "healthy 0-30 s; 30-90 s: every attempt fails (connection error after 1 ms); "
        "healthy 90-150 s"
    )
    assert [until for _, until in FLAPPING.stretches()] == [50.0, 70.0, 150.0]


def test_the_description_reads_the_chaos_faults() -> None:
    shape = outage.Shape(
        "mixed",
        chaos.Schedule(
            chaos.Phase("warm", 10),
            chaos.Phase("still warm", 10),
            chaos.Phase("flaky", 10, chaos.Latency(0.25), chaos.Reset(after=0.002, rate=0.2)),
            chaos.Phase("stuck", 5, chaos.Hang(rate=0.5)),
            chaos.Phase("odd", 5, chaos.Error(KeyError), chaos.ReadTimeout(after=0.5)),
            chaos.Phase("over", None),
        ),
        end=60.0,
    )
    assert shape.describe() == (
        "healthy 0-20 s; 20-30 s: every attempt succeeds after 0.25 s and 20% of attempts "
        "fail (connection reset after 2 ms); 30-35 s: 50% of attempts hang until the "
        "caller's timeout; 35-40 s: every attempt fails (KeyError after 0 ms) and every "
        "attempt fails (read timeout after 500 ms); healthy 40-60 s"
    )
    assert [(s.name, s.start, s.end) for s in shape.disturbances] == [
        ("flaky", 20, 30),
        ("stuck", 30, 35),
        ("odd", 35, 40),
    ]
    assert [until for _, until in shape.stretches()] == [30.0, 35.0, 60.0]


def test_bad_shapes_are_refused() -> None:
    down = chaos.ConnectError()
    with pytest.raises(ValueError, match="within the run"):
        outage.Shape("x", chaos.Schedule(chaos.Phase("h", 10), chaos.Phase("d", 190, down)))
    with pytest.raises(ValueError, match="within the run"):  # the last phase stays in force
        outage.Shape("x", chaos.Schedule(chaos.Phase("h", 10), chaos.Phase("d", 10, down)))
    with pytest.raises(ValueError, match="repeats"):
        outage.Shape(
            "x", chaos.Schedule(chaos.Phase("h", 10), chaos.Phase("d", 10, down), repeat=True)
        )
    for fault, why in [
        (chaos.Status(503), "Status is not acted out"),
        (chaos.Result(1), "Result is not acted out"),
        (chaos.ConnectError(host="db"), "names a host"),
        (chaos.Latency(0.1, up_to=0.2), "draws no latencies"),
    ]:
        schedule = chaos.Schedule(chaos.Phase("bad", 10, fault), chaos.Phase("ok", None))
        with pytest.raises(ValueError, match=why):
            outage.Shape("x", schedule)
    with pytest.raises(TypeError, match=r"seawall\.chaos\.Schedule"):
        outage.Shape("x", (chaos.Phase("d", 10, down),))


def test_shapes_are_found_by_name_or_slug() -> None:
    found = outage.find_shapes(["flapping", "40pct-errors", "Hard-Down"])
    assert [s.name for s in found] == ["hard-down", "40% errors", "flapping"]
    with pytest.raises(ValueError, match="unknown shape"):
        outage.find_shapes(["meltdown"])


# -- the simulation ----------------------------------------------------------------------------


@pytest.mark.parametrize("shape", outage.SHAPES[:-1], ids=lambda s: s.slug)
def test_no_protection_makes_one_attempt_per_call(shape: Any) -> None:
    o = run(outage.NO_PROTECTION, shape)
    s = outage.summarize(o)
    assert s.calls == len(outage.Scenario(shape, 2.0).arrivals()) == shape.end * 2
    assert s.attempts == s.calls
    assert s.refused == 0
    assert all(c.attempts == 1 for c in o.calls)


def test_what_each_fault_does_to_an_unprotected_call() -> None:
    def by_arrival(shape: Any) -> dict[float, Any]:
        return {c.arrival: c for c in run(outage.NO_PROTECTION, shape).calls}

    down = by_arrival(HARD_DOWN)
    assert down[10.0].ok
    assert down[10.0].end == pytest.approx(10.0 + outage.HEALTHY_LATENCY)
    assert not down[40.0].ok
    assert down[40.0].error == "UpstreamError"
    assert down[40.0].end == pytest.approx(40.0 + outage.FAIL_LATENCY)
    hung = by_arrival(outage.SHAPES_BY_NAME["hanging"])[40.0]
    assert not hung.ok
    assert hung.error == "TimeoutError"
    assert hung.end == pytest.approx(40.0 + outage.ATTEMPT_TIMEOUT)
    slow = by_arrival(outage.SHAPES_BY_NAME["slow"])[40.0]
    assert slow.ok
    assert slow.end == pytest.approx(40.9)


def test_the_upstream_acts_out_the_other_chaos_faults_with_indexed_draws() -> None:
    shape = outage.Shape(
        "mixed",
        chaos.Schedule(
            chaos.Phase("healthy", 10),
            chaos.Phase("flaky", 10, chaos.Latency(0.25), chaos.Reset(after=0.002, rate=0.2)),
            chaos.Phase("timing out", 10, chaos.ReadTimeout(after=0.5)),
            chaos.Phase("odd", 10, chaos.Error(KeyError), chaos.ReadTimeout(after=0.5)),
            chaos.Phase("recovered", None),
        ),
        end=50.0,
    )
    o = run(outage.NO_PROTECTION, shape, rate=2.0)
    # The second fault of a phase draws from its own indexed stream.
    draws = random.Random(f"{outage.SEED}:0:1")
    reset = [draws.random() < 0.2 for _ in o.calls]
    flaky = outage.calls_between(o.calls, 10, 20)
    assert 0 < sum(reset[c.index] for c in flaky) < len(flaky)
    for c in flaky:
        if reset[c.index]:
            assert (c.ok, c.error) == (False, "UpstreamError")
            assert c.end == pytest.approx(c.arrival + 0.25 + 0.002)
        else:
            assert c.ok
            assert c.end == pytest.approx(c.arrival + 0.25)  # the latency is the answer's time
    for c in outage.calls_between(o.calls, 20, 30):
        assert (c.ok, c.error) == (False, "TimeoutError")
        assert c.end == pytest.approx(c.arrival + 0.5)
    for c in outage.calls_between(o.calls, 30, 40):  # the first fault that ends a call ends it
        assert (c.ok, c.error, c.end) == (False, "KeyError", c.arrival)
    assert all(c.ok for c in outage.calls_between(o.calls, 40, 50))


def test_forty_percent_errors_are_the_same_draws_for_every_client() -> None:
    shape = outage.SHAPES_BY_NAME["40% errors"]
    a = run(outage.NO_PROTECTION, shape, rate=20.0)
    b = run(outage.TENACITY, shape, rate=20.0)
    first_a = [c.ok for c in outage.calls_between(a.calls, 30, 90)]
    # tenacity's retries do not change which first attempts fail: a call it could not save
    # failed its first attempt for the unprotected client too.
    saved = [c.ok for c in outage.calls_between(b.calls, 30, 90)]
    assert all(ok_b for ok_a, ok_b in zip(first_a, saved, strict=True) if ok_a)
    share = 1 - sum(first_a) / len(first_a)
    assert 0.35 < share < 0.45


def test_a_run_is_deterministic() -> None:
    one = outage.summarize(run(outage.SEAWALL_POLICY, FLAPPING, rate=20.0))
    two = outage.summarize(run(outage.SEAWALL_POLICY, FLAPPING, rate=20.0))
    assert one == two


def test_the_seawall_rows_use_the_breakers_own_defaults() -> None:
    import seawall

    defaults = outage.seawall_breaker_defaults()
    shown = repr(seawall.CircuitBreaker())
    for name in ("consecutive_failures", "failure_ratio", "open_duration", "half_open_calls"):
        assert f"{name}={defaults[name]!r}" in shown
    assert "clock" not in defaults
    assert "name" not in defaults
    trips, opened, admits, _ = outage._seawall_how(defaults)
    assert opened == f"open_duration={defaults['open_duration']:g} s"
    assert admits == f"half_open_calls={defaults['half_open_calls']} probe(s)"
    assert f"{defaults['consecutive_failures']} failures in a row" in trips


def test_a_peer_that_is_not_installed_is_skipped_with_its_reason() -> None:
    def build(env: Any) -> Any:
        import seawall_no_such_peer  # type: ignore[import-not-found]  # noqa: F401

    spec = outage.ClientSpec("ghost", build, "ghost", has_breaker=True)
    with pytest.raises(harness.SkipCandidate, match="not installed"):
        outage.simulate(spec, outage.Scenario(HARD_DOWN, 2.0))


def test_a_peer_that_no_longer_reads_the_time_where_patched_is_skipped() -> None:
    import types

    module = types.ModuleType("peer")
    with (
        pytest.raises(harness.SkipCandidate, match=r"peer\.clock"),
        outage.patched(module, "clock", object(), expect=callable),
    ):
        pass
    module.clock = time.monotonic  # type: ignore[attr-defined]
    with outage.patched(module, "clock", 1.0, expect=callable):
        assert module.clock == 1.0  # type: ignore[attr-defined]
    assert module.clock is time.monotonic  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("client", "package", "module", "name"),
    [
        (outage.PYBREAKER, "pybreaker", "pybreaker", "datetime"),
        (outage.CIRCUITBREAKER, "circuitbreaker", "circuitbreaker", "monotonic"),
        (outage.PURGATORY, "purgatory", "purgatory.domain.model", "time"),
        (outage.AIOBREAKER, "aiobreaker", "aiobreaker.state", "datetime"),
    ],
)
def test_a_peer_runs_on_simulated_time_and_its_clock_is_put_back(
    client: str, package: str, module: str, name: str
) -> None:
    pytest.importorskip(package)
    patched_module = importlib.import_module(module)
    original = getattr(patched_module, name)
    s = outage.summarize(run(client, HARD_DOWN, rate=20.0))
    assert getattr(patched_module, name) is original
    # Five failures in a row open it at once; an open time of 30-60 s on simulated time
    # means it refuses nearly every call of the 60 s outage, and recovers after it.
    assert s.worst_detect < 1.0
    assert s.attempts_per_call_disturbed < 0.1
    assert s.worst_recover < 60.0


# -- the measures ------------------------------------------------------------------------------


def calls(*rows: tuple[float, bool, int, float]) -> list[Any]:
    return [
        outage.Call(i, arrival, ok=ok, attempts=attempts, end=end)
        for i, (arrival, ok, attempts, end) in enumerate(rows)
    ]


def test_detect_is_the_end_of_the_first_refused_call() -> None:
    found = calls(
        (9.0, True, 1, 9.1),
        (10.0, False, 1, 10.5),  # failed at the upstream: not a refusal
        (10.2, False, 0, 10.3),
        (11.0, False, 0, 11.0),
    )
    assert outage.detect_time(found, 10.0, 20.0) == pytest.approx(0.3)
    assert outage.detect_time(found[:2], 10.0, 20.0) is None


def test_recover_is_the_start_of_the_unbroken_run_of_successes() -> None:
    found = calls(
        (20.0, False, 0, 20.0),
        (20.5, True, 1, 20.6),
        (21.0, False, 1, 21.0),  # a failure after the first success still counts
        (21.5, True, 1, 21.6),
        (22.0, True, 1, 22.1),
    )
    assert outage.recover_time(found, 20.0, 30.0) == pytest.approx(1.5)
    assert outage.recover_time(found[3:], 20.0, 30.0) == 0.0
    assert outage.recover_time(found[:3], 20.0, 30.0) is None  # the stretch ends failing


def test_probe_peak_counts_attempts_in_any_one_second() -> None:
    assert outage.peak_in_window([0.0, 0.5, 0.99, 1.0, 1.2, 5.0]) == 4
    assert outage.peak_in_window([]) == 0
    assert outage.probe_peak([0.0, 0.5, 10.0, 10.4, 10.9, 12.0], 1.0, 12.0) == 3


def test_percentile_is_nearest_rank() -> None:
    assert outage.percentile(list(range(1, 101)), 99) == 99
    assert outage.percentile([3.0], 99) == 3.0


def test_summary_is_per_phase_and_takes_the_worst() -> None:
    s = outage.summarize(run(outage.SEAWALL, FLAPPING, rate=20.0))
    assert len(s.detect) == len(s.recover) == len(s.probes_peak) == 3
    assert s.worst_detect == max(s.detect)
    assert s.worst_recover == max(s.recover)
    assert s.disturbed_calls == 3 * 10 * 20
    assert s.refused > 0


def test_series_gives_a_share_per_second_and_the_refusing_spans() -> None:
    s = outage.series(run(outage.SEAWALL, HARD_DOWN, rate=20.0))
    assert len(s.success_share) == 150
    assert s.success_share[10] == 1.0
    assert s.success_share[60] < 0.2
    assert all(30.0 <= a < b <= 92.0 for a, b in s.refusing)


# -- the matrix, its tables and bars -----------------------------------------------------------


@pytest.fixture(scope="module")
def small() -> Any:
    shapes = [HARD_DOWN, FLAPPING]
    clients = [outage.SPECS[outage.NO_PROTECTION], outage.SPECS[outage.SEAWALL]]
    return outage.run_matrix(shapes, [2.0, 20.0], clients, plots=True)


def test_the_matrix_runs_every_cell_and_keeps_series_at_the_plot_rate(small: Any) -> None:
    assert len(small.summaries) == 2 * 2 * 2
    assert set(small.series) == {
        (shape, client)
        for shape in ("hard-down", "flapping")
        for client in (outage.NO_PROTECTION, outage.SEAWALL)
    }


def test_the_shape_table_compares_with_no_protection(small: Any) -> None:
    clients = [outage.SPECS[outage.NO_PROTECTION], outage.SPECS[outage.SEAWALL]]
    table = outage.shape_table(small, FLAPPING, clients)
    assert table.headers == outage.SHAPE_HEADERS
    assert [row[:2] for row in table.rows] == [
        [outage.NO_PROTECTION, "2"],
        [outage.SEAWALL, "2"],
        [outage.NO_PROTECTION, "20"],
        [outage.SEAWALL, "20"],
    ]
    base = small.get("flapping", 20.0, outage.NO_PROTECTION)
    mine = small.get("flapping", 20.0, outage.SEAWALL)
    row = table.rows[3]
    assert row[3] == f"{(mine.availability - base.availability) * 100:+.1f}"
    assert table.rows[2][3] == "ref"
    assert table.rows[2][6] == "n/a"
    assert "worst of the 3 phases" in table.notes[0]
    text = harness.markdown_table(table)
    assert text.splitlines()[0].startswith("**flapping (150 s)")


def test_the_bars_name_their_worst_case(small: Any) -> None:
    bars = {b.id: b for b in outage.matrix_bars(small)}
    assert set(bars) == {
        "outage_availability",
        "outage_detect_2s",
        "outage_recover_2s",
        "outage_detect_5s",
        "outage_recover_5s",
        "outage_attempts_per_call",
        "outage_probe_load",
    }
    assert all(b.valid for b in bars.values())
    assert "worst: " in bars["outage_detect_2s"].detail
    assert "@20/s" in bars["outage_detect_2s"].detail
    assert "@2/s" in bars["outage_detect_5s"].detail
    assert bars["outage_probe_load"].detail.startswith("bound: half_open_calls / open_duration")


def test_the_bars_are_invalid_when_no_protection_does_not_make_one_attempt_per_call(
    small: Any,
) -> None:
    import dataclasses

    broken = outage.Matrix(small.shapes, small.rates, dict(small.summaries))
    key = ("hard-down", 20.0, outage.NO_PROTECTION)
    broken.summaries[key] = dataclasses.replace(broken.summaries[key], attempts=1)
    bars = outage.matrix_bars(broken)
    assert all(not b.valid for b in bars)
    assert all(b.status == "INVALID" for b in bars)
    assert "hard-down @20/s" in bars[0].detail


def test_a_bar_with_no_case_selected_is_not_run() -> None:
    bar = outage._worst_bar("x", "x", 1.0, [])
    assert bar.measured is None
    assert "not run" in bar.detail


def test_the_suite_runs_part_of_the_matrix_from_its_options() -> None:
    config = harness.RunConfig(
        options={"outage_rates": [2.0], "outage_shapes": "hard-down", "outage_jobs": 1}
    )
    result = outage.SUITE.run(config)
    titles = [t.title for t in result.tables]
    assert titles[0].startswith("clients: ")
    assert titles[1].startswith("hard-down (150 s)")
    assert titles[2].startswith("retry budget: ")
    assert {b.id for b in result.bars} >= {"outage_detect_5s", "outage_retry_budget"}
    assert result.images == []  # no report, no --plots: no pictures


def test_pictures_are_one_png_per_shape(small: Any, tmp_path: Path, monkeypatch: Any) -> None:
    pytest.importorskip("matplotlib")
    monkeypatch.setattr(outage, "IMG_DIR", str(tmp_path))
    clients = [outage.SPECS[outage.NO_PROTECTION], outage.SPECS[outage.SEAWALL]]
    images, note = outage.draw_pictures(small, clients)
    assert note == ""
    assert [Path(i.path).name for i in images] == ["outage-hard-down.png", "outage-flapping.png"]
    for image in images:
        assert Path(image.path).read_bytes().startswith(b"\x89PNG")


def test_no_pictures_without_the_plot_rate(small: Any) -> None:
    quiet = outage.Matrix(small.shapes, [2.0], dict(small.summaries))
    images, note = outage.draw_pictures(quiet, [])
    assert images == []
    assert "did not run" in note or "matplotlib is not installed" in note


# -- the report that benchmarks/run.py writes ------------------------------------------------


def test_markdown_escapes_pipes() -> None:
    table = harness.TextTable("t", ["a", "b"], [["x | y", "1"]])
    assert "| x \\| y | 1 |" in harness.markdown_table(table).splitlines()


def _suites(small: Any, tmp_path: Path) -> dict[str, Any]:
    picture = tmp_path / "img" / "p.png"

    def quick(config: Any) -> Any:
        result = harness.SuiteResult("quick")
        clients = [outage.SPECS[outage.NO_PROTECTION], outage.SPECS[outage.SEAWALL]]
        result.tables.append(outage.shape_table(small, HARD_DOWN, clients))
        result.bars.append(harness.Bar("b", "a bar", 1.2, 0.5, "some detail"))
        result.notes.append(f"a note; report={config.report}; x={config.options.get('quick_x')}")
        result.images.append(harness.Image("a picture", str(picture)))
        return result

    def other(config: Any) -> Any:
        return harness.SuiteResult("other", notes=["the other suite ran"])

    def options(group: Any) -> None:
        group.add_argument("--x", dest="quick_x")

    return {
        "quick": harness.Suite("quick", "a quick suite", quick, options),
        "other": harness.Suite("other", "another suite", other),
    }


def test_report_written_to_the_path_asked_for(
    small: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "report.md"
    suites = _suites(small, tmp_path)
    assert harness.cli(["quick", "--x", "7", "--results", str(path)], suites) == 0
    report = path.read_text(encoding="utf-8")
    assert report.startswith("# seawall benchmark results\n")
    assert f"benchmarks/run.py quick --x 7 --results {path}`" in report
    assert "- CPUs: " in report
    assert "- Python: " in report
    assert "## quick: a quick suite" in report
    assert f"| {outage.SEAWALL} | 2 |" in report
    assert "- **PASS** a bar: measured 0.500 (limit 1.2); some detail" in report
    assert "- a note; report=True; x=7" in report
    assert "![a picture](img/p.png)" in report  # relative to the report
    assert "## other" not in report
    out = capsys.readouterr().out
    assert f"wrote {path}" in out
    assert "picture: " in out


def test_report_written_by_default_only_for_a_full_run(
    small: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    default = tmp_path / "RESULTS.md"
    monkeypatch.setattr(harness, "RESULTS_PATH", str(default))
    suites = _suites(small, tmp_path)
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
