"""seawall.slo: specs and their checks, the rules made from them, the command line, and the
error budget read in process."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

import seawall
from seawall import slo
from seawall.testing import FakeClock

EXAMPLE = """\
service: checkout
slos:
  - name: payments-availability
    operation: payments          # a seawall operation (policy) name
    sli: availability
    objective: 99.5              # percent
    period: 30d
  - name: payments-latency
    operation: payments
    sli: latency
    threshold: 0.25              # seconds; must be a bucket bound of the histogram
    objective: 99
"""


def example(**changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(EXAMPLE)
    data.update(changes)
    return data


def with_slo(**changes: Any) -> dict[str, Any]:
    data = example()
    data["slos"][0].update(changes)
    return data


def test_the_example_spec_reads_with_its_defaults() -> None:
    spec = slo.load(EXAMPLE)
    assert spec.service == "checkout"
    availability, latency = spec.slos
    assert (availability.sli, availability.objective, availability.period) == (
        "availability",
        99.5,
        30 * 86400,
    )
    assert availability.budget == pytest.approx(0.005)
    assert availability.bad_outcomes == ("failure", "timeout", "rejected", "fallback")
    assert (latency.threshold, latency.period) == (0.25, 30 * 86400)
    assert spec.windows == slo.DEFAULT_WINDOWS
    assert (spec.scrape_interval, spec.min_events, spec.missing_for) == (60, 10, 600)
    # The SRE workbook's factors, for a 30-day period.
    assert [w.factor(availability.period) for w in spec.windows] == pytest.approx([14.4, 6, 3, 1])


def test_a_spec_file_and_python_give_the_same_spec(tmp_path: Path) -> None:
    path = tmp_path / "slo.yaml"
    path.write_text(EXAMPLE)
    made = slo.Spec(
        service="checkout",
        slos=(
            slo.SLO("payments-availability", "payments", "availability", 99.5),
            slo.SLO("payments-latency", "payments", "latency", 99, threshold=0.25),
        ),
    )
    assert slo.load(path) == made
    assert slo.load(str(path)) == made


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (
            with_slo(sli="latency", threshold=0.3),
            r"slos\[0\]\.threshold: 0\.3 is not a bucket bound",
        ),
        (
            with_slo(objective=50),
            r"slos\[0\]\.objective: 50% leaves a budget of 0\.5; windows\[0\] burns it "
            r"14\.4x.*can never fire",
        ),
        (
            with_slo(bad_outcomes=["failure", "slow"]),
            r"slos\[0\]\.bad_outcomes: unknown outcome 'slow'",
        ),
        (with_slo(bad_outcomes=["success"]), r"slos\[0\]\.bad_outcomes: unknown outcome 'success'"),
        (
            with_slo(bad_outcomes=["failure", "cancelled"]),
            r"slos\[0\]\.bad_outcomes: 'cancelled' counts neither way",
        ),
        (
            example(scrape_interval="2m"),
            r"windows\[0\]\.short: 5m holds fewer than 4 scrapes of 2m",
        ),
        (
            with_slo(period="1d"),
            r"slos\[0\]\.period: 1d is shorter than the longest alert window \(3d\)",
        ),
        (example(missing_for="1m"), r"missing_for: 1m is under two scrapes"),
        (with_slo(period="30 days"), r"slos\[0\]\.period: a duration such as '30d'"),
        (with_slo(sli="throughput"), r"slos\[0\]\.sli: one of availability, latency"),
        (with_slo(objective=100), r"slos\[0\]\.objective: a percentage in \(0, 100\)"),
        (with_slo(objective="high"), r"slos\[0\]\.objective: a number, got 'high'"),
        (with_slo(sli="latency"), r"slos\[0\]\.threshold: a latency SLO needs one"),
        (with_slo(threshold=0.25), r"slos\[0\]\.threshold: only a latency SLO has one"),
        (with_slo(name="Payments!"), r"slos\[0\]\.name: lower-case letters"),
        (with_slo(owner="me"), r"slos\[0\]: unknown field\(s\) owner"),
        (example(team="x"), r"spec: unknown field\(s\) team"),
        ({"service": "checkout"}, r"spec: missing slos"),
        (example(slos=[]), r"slos: at least one SLO"),
        (example(slos="payments"), r"slos: a list of SLOs"),
        (example(windows="1h"), r"windows: a list of windows"),
        (with_slo(bad_outcomes="failure"), r"slos\[0\]\.bad_outcomes: a list of outcomes"),
        (example(runbook_url="https://wiki/runbooks"), r"runbook_url: must contain \{alert\}"),
        (example(min_events=0), r"min_events: at least 1"),
        (
            example(windows=[{"severity": "page", "long": "5m", "short": "1h", "budget": 2}]),
            r"windows\[0\]\.short: must be shorter than long \(5m\)",
        ),
        (
            example(windows=[{"severity": "sms", "long": "1h", "short": "5m", "budget": 2}]),
            r"windows\[0\]\.severity: one of page, ticket",
        ),
    ],
)
def test_a_spec_that_would_not_work_is_refused_naming_its_field(data: Any, message: str) -> None:
    if isinstance(data, dict) and isinstance(data.get("slos"), list):
        data["slos"] = [dict(item) for item in data["slos"]]
    with pytest.raises(slo.SpecError, match=message):
        slo.from_mapping(data)


def test_two_slos_of_one_name_are_refused() -> None:
    data = example()
    data["slos"][1]["name"] = data["slos"][0]["name"]
    with pytest.raises(
        slo.SpecError, match=r"slos\[1\]\.name: 'payments-availability' is used twice"
    ):
        slo.from_mapping(data)


def test_two_slos_whose_alerts_would_share_names_are_refused() -> None:
    data = example()
    data["slos"][1]["name"] = "payments_availability"
    with pytest.raises(slo.SpecError, match=r"slos\[1\]\.name: 'payments_availability' and "):
        slo.from_mapping(data)


def test_invalid_yaml_is_a_spec_error() -> None:
    with pytest.raises(slo.SpecError, match="spec: not valid YAML"):
        slo.load("service: [unclosed\n")


@pytest.mark.parametrize(
    ("text", "seconds", "written"),
    [
        ("30d", 2592000, "30d"),
        ("1h30m", 5400, "1h30m"),
        ("500ms", 0.5, "500ms"),
        (90, 90, "1m30s"),
        ("1w", 604800, "7d"),
    ],
)
def test_durations(text: object, seconds: float, written: str) -> None:
    assert slo.parse_duration("x", text) == seconds
    assert slo.format_duration(seconds) == written


# -- the rules ---------------------------------------------------------------------------------


def rules_of(spec: slo.Spec) -> list[dict[str, Any]]:
    return [rule for group in slo.rules(spec)["groups"] for rule in group["rules"]]


def test_every_alert_has_its_labels_annotations_and_runbook() -> None:
    spec = slo.load(EXAMPLE)
    alerts = [rule for rule in rules_of(spec) if "alert" in rule]
    assert len(alerts) == 2 * 4 + 1  # four burn-rate windows per SLO; one operation's SLI
    for alert in alerts:
        assert set(alert["labels"]) == {"service", "slo", "severity", "long_window", "short_window"}
        assert alert["labels"]["severity"] in ("page", "ticket")
        assert set(alert["annotations"]) == {"summary", "description", "runbook_url"}
        assert alert["annotations"]["runbook_url"] == f"runbooks/{alert['alert']}.md"
    names = {alert["alert"] for alert in alerts}
    assert names == {
        "PaymentsAvailabilityBurnRatePage",
        "PaymentsAvailabilityBurnRateTicket",
        "PaymentsAvailabilitySLIMissing",
        "PaymentsLatencyBurnRatePage",
        "PaymentsLatencyBurnRateTicket",
    }
    assert names == {name for s in spec.slos for name in slo.alert_names(s, spec).values()}


def test_slos_on_one_operation_share_one_missing_sli_alert() -> None:
    spec = slo.Spec(
        service="checkout",
        slos=(
            slo.SLO("pay-availability", "pay", "availability", 99.5),
            slo.SLO("refund-availability", "refund", "availability", 99.0),
            slo.SLO("pay-latency", "pay", "latency", 99.0, threshold=0.25),
            slo.SLO("pay-latency-slow", "pay", "latency", 99.9, threshold=1.0),
        ),
    )
    missing = [rule for rule in rules_of(spec) if rule.get("alert", "").endswith("SLIMissing")]
    # One per series the SLIs read: each operation's count, named after its first SLO.
    assert [(rule["alert"], rule["expr"]) for rule in missing] == [
        (
            "PayAvailabilitySLIMissing",
            'absent(seawall_call_duration_seconds_count{operation="pay"})',
        ),
        (
            "RefundAvailabilitySLIMissing",
            'absent(seawall_call_duration_seconds_count{operation="refund"})',
        ),
    ]
    assert missing[0]["labels"]["slo"] == "pay-availability"
    assert missing[0]["annotations"]["summary"] == (
        "checkout: no SLI for pay-availability, pay-latency and pay-latency-slow"
    )
    assert [slo.alert_names(s, spec)["missing"] for s in spec.slos] == [
        "PayAvailabilitySLIMissing",
        "RefundAvailabilitySLIMissing",
        "PayAvailabilitySLIMissing",
        "PayAvailabilitySLIMissing",
    ]
    books = slo.runbooks(spec)
    assert sorted(name for name in books if name.endswith("SLIMissing")) == [
        "PayAvailabilitySLIMissing",
        "RefundAvailabilitySLIMissing",
    ]
    assert "`PayLatencySlowBurnRatePage`" in books["PayAvailabilitySLIMissing"]


def test_burn_thresholds_are_factor_times_budget_on_both_windows_with_a_traffic_guard() -> None:
    spec = slo.load(EXAMPLE)
    page = next(
        rule
        for rule in rules_of(spec)
        if rule.get("alert") == "PaymentsAvailabilityBurnRatePage"
        and rule["labels"]["long_window"] == "1h"
    )
    assert page["labels"]["short_window"] == "5m"
    expr = page["expr"]
    selector = '{service="checkout",slo="payments-availability"}'
    assert f"slo:sli_error:ratio_rate1h{selector} > 0.072" in expr
    assert f"slo:sli_error:ratio_rate5m{selector} > 0.072" in expr
    assert f"slo:sli_events:rate1h{selector} * 3600 >= 10" in expr
    ticket = [
        rule for rule in rules_of(spec) if rule.get("alert") == "PaymentsLatencyBurnRateTicket"
    ]
    assert [rule["labels"]["long_window"] for rule in ticket] == ["1d", "3d"]
    assert "> 0.03\n" in ticket[0]["expr"]  # 3 x a 1% budget
    assert "> 0.01\n" in ticket[1]["expr"]  # 1 x


def test_a_burn_factor_under_1_is_raised_to_1_in_every_file() -> None:
    # A 7-day budget: the default ticket windows would burn it 0.7x and 0.23x, firing while
    # the budget outlasts the period. They alert at 1x: the slowest burn that spends it.
    spec = slo.load(EXAMPLE.replace("period: 30d", "period: 7d"))
    week = spec.slos[0]
    assert [w.factor(week.period) for w in spec.windows] == pytest.approx([3.36, 1.4, 1, 1])
    assert [w.spent(week.period) for w in spec.windows] == pytest.approx([0.02, 0.05, 1 / 7, 3 / 7])
    ticket = [r for r in rules_of(spec) if r.get("alert") == "PaymentsAvailabilityBurnRateTicket"]
    assert ["> 0.005\n" in rule["expr"] for rule in ticket] == [True, True]  # 1x a 0.5% budget
    assert "burning its error budget 1x too fast" in ticket[1]["annotations"]["summary"]
    book = slo.runbooks(spec)["PaymentsAvailabilityBurnRateTicket"]
    assert "| 3d | 6h | 1x | 0.5% (0.005) | 42.86% in 3d | 7d |" in book
    burns = [p for p in slo.dashboard(spec)["panels"] if p["title"].startswith("Burn rate")]
    assert "spends 42.86% of the budget in 3d" in burns[3]["description"]


def test_the_slis_are_ratios_of_sums_on_seawalls_series() -> None:
    spec = slo.load(EXAMPLE)
    records = {
        (rule["record"], rule["labels"]["slo"]): rule["expr"]
        for rule in rules_of(spec)
        if "record" in rule
    }
    availability = records[("slo:sli_error:ratio_rate5m", "payments-availability")]
    assert availability == (
        'sum(rate(seawall_call_duration_seconds_count{operation="payments",'
        'outcome=~"failure|timeout|rejected|fallback"}[5m]))\n/\n'
        '(sum(rate(seawall_call_duration_seconds_count{operation="payments",'
        'outcome!="cancelled"}[5m])) > 0)'  # no calls: no sample, not NaN
    )
    latency = records[("slo:sli_error:ratio_rate3d", "payments-latency")]
    assert (
        'seawall_call_duration_seconds_bucket{operation="payments",outcome="success",le="0.25"}[3d]'
        in latency
    )
    assert records[("slo:objective:ratio", "payments-latency")] == "vector(0.99)"
    whole = slo.Spec(service="s", slos=(slo.SLO("l", 'odd "name"', "latency", 99, threshold=1.0),))
    expr = next(rule["expr"] for rule in rules_of(whole) if "record" in rule)
    assert 'le=~"1|1\\\\.0"' in expr  # prometheus-client's "1.0" and Prometheus 3's
    assert 'operation="odd \\"name\\""' in expr


def test_the_period_is_summed_from_the_shortest_windows_recorded_rates() -> None:
    # Reading every raw series over 30 days at every evaluation is what a real Prometheus
    # cannot afford: the period's rules read the 5m rates recorded at each evaluation.
    spec = slo.load(EXAMPLE)
    for objective in spec.slos:
        selector = f'{{service="checkout",slo="{objective.name}"}}'
        records = {
            rule["record"]: rule["expr"]
            for rule in rules_of(spec)
            if "record" in rule and rule["labels"]["slo"] == objective.name
        }
        period = [expr for expr in records.values() if "[30d]" in expr]
        assert period, records
        assert all("seawall_call_duration_seconds" not in expr for expr in period), period
        # A ratio of sums (the errors summed over the events summed), not a mean of ratios.
        assert records["slo:sli_error:ratio_rate30d"] == (
            f"sum_over_time(slo:sli_errors:rate5m{selector}[30d])\n/\n"
            f"(sum_over_time(slo:sli_events:rate5m{selector}[30d]) > 0)"
        )
        assert records["slo:sli_events:rate30d"] == (
            f"avg_over_time(slo:sli_events:rate5m{selector}[30d])"
        )
        bad, total = records["slo:sli_error:ratio_rate5m"].split("\n/\n")
        assert records["slo:sli_errors:rate5m"] == bad
        assert records["slo:sli_events:rate5m"] == total.removeprefix("(").removesuffix(" > 0)")
        assert [name for name in records if name.startswith("slo:sli_errors:")] == [
            "slo:sli_errors:rate5m"
        ]
        # A group's rules run in order: the period's read this evaluation's 5m rates.
        order = list(records)
        assert order.index("slo:sli_errors:rate5m") < order.index("slo:sli_error:ratio_rate30d")
    # A period that is an alert window too is read as the alert reads its windows.
    three = slo.load(EXAMPLE.replace("period: 30d", "period: 3d"))
    expr = next(
        r["expr"] for r in rules_of(three) if r.get("record") == "slo:sli_error:ratio_rate3d"
    )
    assert "seawall_call_duration_seconds_count" in expr


def test_generated_files_are_the_same_every_time(tmp_path: Path) -> None:
    spec = slo.load(EXAMPLE)
    first = [path.read_bytes() for path in slo.generate(spec, tmp_path / "a")]
    second = [path.read_bytes() for path in slo.generate(spec, tmp_path / "b")]
    assert first == second


# -- the command line --------------------------------------------------------------------------


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "seawall", "slo", *args], capture_output=True, text=True, timeout=60
    )


def test_the_command_line_checks_and_generates(tmp_path: Path) -> None:
    spec = tmp_path / "slo.yaml"
    spec.write_text(EXAMPLE)
    done = cli("check", str(spec))
    assert (done.returncode, done.stdout.strip()) == (0, f"{spec}: 2 SLO(s) for checkout, ok")
    done = cli("generate", str(spec), "--out", str(tmp_path / "out"))
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "out" / "rules.yaml").exists()
    assert str(tmp_path / "out" / "rules.yaml") in done.stdout.split()
    spec.write_text(EXAMPLE.replace("threshold: 0.25", "threshold: 0.3"))
    done = cli("check", str(spec))
    assert done.returncode == 1
    assert "slos[1].threshold: 0.3 is not a bucket bound" in done.stderr
    done = cli("check", str(tmp_path / "missing.yaml"))
    assert done.returncode == 2
    assert "No such file" in done.stderr


# -- the budget, in process ----------------------------------------------------------------------


def test_the_budget_in_process_is_the_rules_ratio_over_the_process_lifetime() -> None:
    clock = FakeClock()
    policy = seawall.Policy(
        "slo-budget-op", breaker=seawall.CircuitBreaker(minimum_calls=1000), clock=clock
    )
    availability = slo.SLO("a", "slo-budget-op", "availability", 90.0, period=3600 * 24 * 3)
    latency = slo.SLO("l", "slo-budget-op", "latency", 50.0, threshold=0.1, period=3600 * 24 * 3)
    assert slo.budget(availability).remaining is None  # no calls yet

    def taking(seconds: float) -> str:
        clock.advance(seconds)
        return "ok"

    def failing() -> None:
        raise OSError("down")

    for seconds in (0.0, 0.05, 0.2, 0.5):
        policy.call(taking, seconds)
    with pytest.raises(OSError, match="down"):
        policy.call(failing)
    # 5 calls, 1 bad: ratio 0.2 against a 10% budget: 2x spent.
    read = slo.budget(availability)
    assert (read.events, read.bad, read.error_ratio) == (5, 1, pytest.approx(0.2))
    assert read.remaining == pytest.approx(1 - 0.2 / 0.1)
    # 4 successes, 2 of them over 0.1 s: ratio 0.5 against a 50% budget: all spent.
    read = slo.budget(latency)
    assert (read.events, read.bad, read.remaining) == (4, 2, pytest.approx(0.0))


# -- the README ---------------------------------------------------------------------------------


def readme_section(*, shown: bool = False) -> str:
    """The README's SLO section; without the runbook it shows whole unless ``shown``."""
    import re

    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    if not shown:
        readme = re.sub(r"````markdown\n.*?\n````", "", readme, flags=re.DOTALL)
    section = readme.split("\n## From spec to page: SLOs\n", 1)[1]
    return section.split("\n## Errors\n", 1)[0] if shown else section.split("\n## ", 1)[0]


def test_the_readme_s_spec_commands_and_code_run_as_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import re

    section = readme_section()
    [spec_text] = re.findall(r"```yaml\n(.*?)```", section, re.DOTALL)
    assert spec_text == EXAMPLE
    [commands] = re.findall(r"```\n(python -m seawall slo.*?)```", section, re.DOTALL)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "slo.yaml").write_text(spec_text)
    for line in commands.strip().splitlines():
        args = line.split("#", 1)[0].split()
        assert args[:4] == ["python", "-m", "seawall", "slo"]
        done = cli(*args[4:])
        assert done.returncode == 0, done.stderr
    assert (tmp_path / "slo" / "rules.yaml").exists()
    [code] = re.findall(r"```python\n(.*?)```", section, re.DOTALL)
    exec(compile(code, "README.md", "exec"), {})
    # The figures it states.
    spec = slo.load(spec_text)
    assert [w.factor(spec.slos[0].period) for w in spec.windows] == pytest.approx([14.4, 6, 3, 1])
    assert (spec.min_events, slo.format_duration(spec.missing_for)) == (10, "10m")


def test_the_readme_shows_a_runbook_as_generated(tmp_path: Path) -> None:
    import re

    [shown] = re.findall(r"````markdown\n(.*?)\n````", readme_section(shown=True), re.DOTALL)
    slo.generate(slo.load(EXAMPLE), tmp_path)
    book = tmp_path / "runbooks" / "PaymentsAvailabilityBurnRatePage.md"
    assert shown == book.read_text().rstrip("\n")
