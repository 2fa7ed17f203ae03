"""The generated ``tests.yaml`` proves the generated rules with ``promtool test rules``, and
fails when a rule is wrong.

promtool comes from Debian's ``prometheus`` package (``.ci/run`` installs it when it runs as
root); these tests skip, saying so, where it is not on ``PATH``. promtool evaluates every rule
at every evaluation interval up to each test group's last check, so the specs here are the
ones the brief names and no bigger: the example spec takes the longest (its 3-day windows).
"""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

import pytest
import yaml

from seawall import slo
from tests.helpers import PROMTOOL, SLO_EXAMPLE, needs_promtool

SPECS = {
    # The README's: availability and latency on one operation, the default windows.
    "example": SLO_EXAMPLE,
    # Windows of minutes, scraped every 15 s.
    "small-windows": """\
service: small
scrape_interval: 15s
min_events: 5
missing_for: 6m
windows:
  - {severity: page, long: 10m, short: 1m, budget: 2}
  - {severity: page, long: 30m, short: 5m, budget: 5}
  - {severity: ticket, long: 1h, short: 10m, budget: 10}
slos:
  - name: api-availability
    operation: api
    sli: availability
    objective: 99
    period: 1d
  - name: api-latency
    operation: api
    sli: latency
    threshold: 0.1
    objective: 95
    period: 1d
""",
    # A week's budget: the ticket windows' burn factors (0.7 and 0.23) are raised to 1.
    "7d-period": """\
service: ledger
slos:
  - name: writes
    operation: ledger-write
    sli: availability
    objective: 99.9
    period: 7d
""",
    # A whole-number bound: the rules match le="1" or le="1.0"; prometheus-client writes 1.0.
    "whole-threshold": """\
service: search
slos:
  - name: query-latency
    operation: query
    sli: latency
    threshold: 1
    objective: 95
""",
    # Rejections and fallbacks count as good here.
    "bad-outcomes": """\
service: inventory
slos:
  - name: stock-availability
    operation: stock
    sli: availability
    objective: 99
    bad_outcomes: [failure, timeout]
""",
}

#: The cheapest spec with both SLIs (one window), for the rules broken on purpose.
TINY = """\
service: tiny
scrape_interval: 15s
min_events: 5
missing_for: 4m
windows:
  - {severity: page, long: 10m, short: 1m, budget: 5}
slos:
  - name: api
    operation: api
    sli: availability
    objective: 98
    period: 1d
  - name: api-latency
    operation: api-slow
    sli: latency
    threshold: 0.25
    objective: 90
    period: 1d
"""


def many(count: int) -> str:
    """``count`` SLOs, two to an operation (availability and latency), on small windows."""
    lines = [
        "service: many",
        "scrape_interval: 15s",
        "min_events: 5",
        "missing_for: 6m",
        "windows:",
        "  - {severity: page, long: 10m, short: 1m, budget: 2}",
        "  - {severity: ticket, long: 1h, short: 10m, budget: 10}",
        "slos:",
    ]
    for index in range(count):
        operation = f"op{index // 2}"
        if index % 2:
            lines.append(f"  - {{name: {operation}-latency, operation: {operation}, sli: latency,")
            lines.append("     threshold: 0.25, objective: 99, period: 1d}")
        else:
            lines.append(f"  - {{name: {operation}-availability, operation: {operation},")
            lines.append("     sli: availability, objective: 99.5, period: 1d}")
    return "\n".join(lines) + "\n"


def promtool(*args: str | Path) -> subprocess.CompletedProcess[str]:
    assert PROMTOOL is not None
    return subprocess.run(
        [PROMTOOL, *map(str, args)], capture_output=True, text=True, timeout=120, check=False
    )


def output(done: subprocess.CompletedProcess[str]) -> str:
    return (
        f"promtool exited {done.returncode}\n--- stdout\n{done.stdout}\n--- stderr\n{done.stderr}"
    )


def generate(text: str, out: Path) -> Path:
    slo.generate(slo.load(text), out)
    return out


@needs_promtool
@pytest.mark.parametrize("name", list(SPECS))
def test_the_generated_tests_prove_the_generated_rules(name: str, tmp_path: Path) -> None:
    out = generate(SPECS[name], tmp_path / name)
    checked = promtool("check", "rules", out / "rules.yaml")
    assert checked.returncode == 0, output(checked)
    assert "SUCCESS" in checked.stdout, output(checked)
    tested = promtool("test", "rules", out / "tests.yaml")
    assert tested.returncode == 0, output(tested)
    assert "SUCCESS" in tested.stdout, output(tested)


@needs_promtool
def test_the_tests_of_ten_slos_cost_what_their_rules_do(tmp_path: Path) -> None:
    # promtool evaluates every rule in every test group: the groups must not grow with the
    # SLOs, or the cost grows as their square. SLOs on distinct operations share groups.
    two = yaml.safe_load((generate(many(2), tmp_path / "two") / "tests.yaml").read_text())
    out = generate(many(10), tmp_path / "ten")
    ten = yaml.safe_load((out / "tests.yaml").read_text())
    assert len(ten["tests"]) == len(two["tests"])
    names = " ".join(group["name"] for group in ten["tests"])
    assert all(f"op{n}-latency: " in names for n in range(5)), names
    started = time.monotonic()
    tested = promtool("test", "rules", out / "tests.yaml")
    took = time.monotonic() - started
    assert tested.returncode == 0, output(tested)
    assert took < 30, f"promtool took {took:.1f} s"  # about 5 s here; 21 s with groups per SLO


def rule_text(out: Path) -> str:
    return (out / "rules.yaml").read_text()


#: Rules broken on purpose, as someone editing rules.yaml might: (what is replaced, by what,
#: how many times (0: all), what promtool's report of the failure names).
BROKEN = {
    # ApiBurnRatePage's threshold, 5% x 1d / 10m x (1 - 98%) = 0.144: raised, it no longer
    # fires at 1.05x; lowered, it fires at 0.95x.
    "threshold-raised": ("> 0.144\n", "> 0.16\n", 0, "fires at 1.05x"),
    "threshold-lowered": ("> 0.144\n", "> 0.13\n", 0, "stays silent at 0.95x"),
    "no-traffic-guard": (">= 5", ">= 0", 0, "stays silent with 4 calls"),
    # The alert reads its long window as its short one: it does not resolve in time.
    "short-window-swapped": (
        "slo:sli_error:ratio_rate1m{",
        "slo:sli_error:ratio_rate10m{",
        1,
        "gone at",
    ),
    "window-misread": ("[10m]", "[15m]", 0, "slo:sli_error:ratio_rate10m"),
    "cancelled-counted": (',outcome!="cancelled"', "", 0, "slo:sli_events:rate10m"),
    "fallback-good": ("|fallback", "", 0, "fires at 1.05x"),
    "wrong-bucket": ('le="0.25"', 'le="0.5"', 0, "api-latency"),
    "missing-for-longer": ("for: 4m", "for: 6m", 0, "firing at 4m"),
    "budget-misread": ("/ 0.02\n", "/ 0.2\n", 0, "slo:error_budget_remaining:ratio"),
    # The period's ratio as an average of ratios, not a ratio of sums.
    "period-average-of-ratios": (
        'sum_over_time(slo:sli_errors:rate1m{service="tiny",slo="api"}[1d])\n'
        "      /\n"
        '      (sum_over_time(slo:sli_events:rate1m{service="tiny",slo="api"}[1d]) > 0)',
        'avg_over_time(slo:sli_error:ratio_rate1m{service="tiny",slo="api"}[1d])',
        0,
        "slo:sli_error:ratio_rate1d",
    ),
    # Without calls, a ratio with an unguarded divisor is NaN, not absent.
    "no-events-nan": (" > 0)\n", ")\n", 0, "NaN"),
}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return generate(TINY, tmp_path_factory.mktemp("tiny"))


@needs_promtool
def test_the_tiny_spec_s_tests_pass_as_generated(tiny: Path) -> None:
    tested = promtool("test", "rules", tiny / "tests.yaml")
    assert tested.returncode == 0, output(tested)


@needs_promtool
@pytest.mark.parametrize("name", list(BROKEN))
def test_a_wrong_rule_fails_the_generated_tests(name: str, tiny: Path, tmp_path: Path) -> None:
    old, new, count, named = BROKEN[name]
    text = rule_text(tiny)
    assert old in text, f"{old!r} is not in the rules any more: the test needs updating"
    shutil.copytree(tiny, tmp_path / "broken")
    broken = text.replace(old, new, count) if count else text.replace(old, new)
    (tmp_path / "broken" / "rules.yaml").write_text(broken)
    checked = promtool("check", "rules", tmp_path / "broken" / "rules.yaml")
    assert checked.returncode == 0, output(checked)  # still valid rules: only wrong
    tested = promtool("test", "rules", tmp_path / "broken" / "tests.yaml")
    assert tested.returncode == 1, output(tested)
    assert "FAILED" in tested.stderr, output(tested)
    assert named in tested.stderr, output(tested)


@pytest.mark.parametrize("name", list(SPECS))
def test_the_tests_file_is_the_same_every_time(name: str, tmp_path: Path) -> None:
    first = generate(SPECS[name], tmp_path / "a") / "tests.yaml"
    second = generate(SPECS[name], tmp_path / "b") / "tests.yaml"
    assert first.read_bytes() == second.read_bytes()


def test_every_slo_and_window_has_its_groups(tmp_path: Path) -> None:
    spec = slo.load(SPECS["example"])
    tests = yaml.safe_load((generate(SPECS["example"], tmp_path) / "tests.yaml").read_text())
    assert tests["rule_files"] == ["rules.yaml"]
    assert tests["evaluation_interval"] == "2h"  # 3d in 36 evaluations
    order = tests["group_eval_order"]
    assert [name.endswith("-sli") for name in order] == [True, True, False, False]
    names = [group["name"] for group in tests["tests"]]
    for objective in spec.slos:
        alerts = slo.alert_names(objective)
        for window in spec.windows:
            head = (
                f"{objective.name}: {alerts[window.severity]} "
                f"({slo.format_duration(window.long)}/{slo.format_duration(window.short)})"
            )
            mine = [name for name in names if name.startswith(head)]
            assert len(mine) == 3, mine
            fires, silent, guard = mine
            assert " fires at 1.05x " in fires
            assert " and stops: gone at " in fires
            assert " stays silent at 0.95x " in silent
            assert f" stays silent with {spec.min_events - 1} calls in " in guard
            assert f" fires with {spec.min_events + 1}" in guard
    assert names[-1].startswith("no series for payments: every missing-SLI alert pending at 0s")


def test_latency_buckets_are_written_as_prometheus_client_writes_them(tmp_path: Path) -> None:
    text = (generate(SPECS["whole-threshold"], tmp_path) / "tests.yaml").read_text()
    assert 'le="1.0"' in text
    assert 'le="1"' not in text
    assert 'le="0.75"' in text  # the bucket below, and the one above: the rule reads only 1.0
    assert 'le="2.5"' in text
