"""seawall.slo's documents beside the rules: the Grafana dashboard (``dashboard.json``) and the
runbooks (``runbooks/<alert>.md``).

Every PromQL query in them is checked twice: by promtool (``promtool check rules`` on a rules
file whose recording rules are the queries; skipped, saying so, where promtool is not on
``PATH``), and here, for its names: every series it reads is one of seawall's
(:data:`seawall.metrics.CATALOGUE`), a recording rule that ``rules.yaml`` defines (with the
labels it has there), or Prometheus's own ``ALERTS`` and ``up``, and every label it names is
one of that series'.
"""

from __future__ import annotations

import ast
import json
import re
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from seawall import slo
from seawall.metrics import CATALOGUE
from seawall.slo._dashboard import SCHEMA_VERSION
from tests.helpers import PROMTOOL, SLO_EXAMPLE, needs_promtool

EXAMPLE = SLO_EXAMPLE

#: Operation names a query must quote and escape: a transport's host policy, quotes, dots.
ODD = """\
service: odd
slos:
  - name: api-availability
    operation: 'api:pay.example.com:443'
    sli: availability
    objective: 99.9
  - name: quoted-latency
    operation: 'say "hi" (v1.2)|*'
    sli: latency
    threshold: 1.0
    objective: 95
    bad_outcomes: [failure, timeout]
"""

#: Windows of one severity only, in seconds: no ticket alert, no ticket runbook.
PAGES_ONLY = """\
service: quick
scrape_interval: 1s
missing_for: 10s
windows:
  - {severity: page, long: 60s, short: 5s, budget: 50}
slos:
  - name: fast
    operation: fast-op
    sli: availability
    objective: 90
    period: 10m
"""

SPECS = {"example": EXAMPLE, "odd": ODD, "pages-only": PAGES_ONLY}
SECTIONS = (
    "## When this alert fires",
    "## Impact",
    "## Diagnostic steps",
    "## Mitigation",
    "## Escalation",
)


@pytest.fixture(params=sorted(SPECS))
def generated(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[slo.Spec, Path]:
    spec = slo.load(SPECS[request.param])
    slo.generate(spec, tmp_path / "out")
    return spec, tmp_path / "out"


def rules_file(directory: Path) -> list[dict[str, Any]]:
    data = yaml.safe_load((directory / "rules.yaml").read_text())
    return [rule for group in data["groups"] for rule in group["rules"]]


def dashboard_of(directory: Path) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((directory / "dashboard.json").read_text())
    return loaded


# -- PromQL: the names a query reads -------------------------------------------------------------

_TOKEN = re.compile(
    r"""
    (?P<space>\s+)
    | (?P<comment>\#[^\n]*)
    | (?P<string>"(?:\\.|[^"\\])*"|'(?:\\.|[^'\\])*'|`[^`]*`)
    | (?P<range>\[[^\]]*\])
    | (?P<number>(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)
    | (?P<ident>[a-zA-Z_:][a-zA-Z0-9_:]*)
    | (?P<op>=~|!~|!=|==|>=|<=|[-+*/%^<>=(){},])
    """,
    re.VERBOSE,
)
_BINARY = {"and", "or", "unless", "bool", "offset"}
_GROUPING = {"by", "without", "on", "ignoring", "group_left", "group_right"}


@dataclass
class Selector:
    metric: str
    matchers: list[tuple[str, str, str]] = field(default_factory=list)  # label, op, value


@dataclass
class Names:
    selectors: list[Selector] = field(default_factory=list)
    grouping: set[str] = field(default_factory=set)  # labels in by/without/on/ignoring/group_*


def _tokens(query: str) -> list[tuple[str, str]]:
    out = []
    at = 0
    while at < len(query):
        match = _TOKEN.match(query, at)
        assert match, f"cannot read {query[at:]!r} in {query!r}"
        kind = match.lastgroup
        assert kind is not None
        if kind not in ("space", "comment"):
            out.append((kind, match.group()))
        at = match.end()
    return out


def _unquote(text: str) -> str:
    if text.startswith("`"):
        return text[1:-1]
    if text.startswith("'"):
        text = '"' + text[1:-1].replace('"', '\\"') + '"'
    value: str = json.loads(text)
    return value


def names_in(query: str) -> Names:
    """The series selectors and grouping labels of ``query``."""
    tokens = _tokens(query)
    names = Names()
    index = 0

    def matchers(start: int) -> tuple[list[tuple[str, str, str]], int]:
        assert tokens[start] == ("op", "{")
        found = []
        at = start + 1
        while tokens[at] != ("op", "}"):
            (kind, label), (_, op), (string, value) = tokens[at : at + 3]
            assert (kind, string) == ("ident", "string")
            assert op in ("=", "!=", "=~", "!~")
            found.append((label, op, _unquote(value)))
            at += 3
            if tokens[at] == ("op", ","):
                at += 1
        return found, at + 1

    while index < len(tokens):
        kind, text = tokens[index]
        following = tokens[index + 1] if index + 1 < len(tokens) else ("", "")
        if kind == "ident" and text in _GROUPING and following == ("op", "("):
            index += 2
            while tokens[index] != ("op", ")"):
                if tokens[index][0] == "ident":
                    names.grouping.add(tokens[index][1])
                index += 1
            index += 1
        elif kind == "ident" and (
            following == ("op", "(") or following in (("ident", "by"), ("ident", "without"))
        ):
            index += 1  # a function or an aggregation
        elif kind == "ident" and text in _BINARY | _GROUPING:
            index += 1
        elif kind == "ident":
            selector = Selector(text)
            index += 1
            if following == ("op", "{"):
                selector.matchers, index = matchers(index)
            names.selectors.append(selector)
        elif (kind, text) == ("op", "{"):
            found, index = matchers(index)
            metric = next((value for label, op, value in found if label == "__name__"), "")
            names.selectors.append(Selector(metric, found))
        else:
            index += 1
    return names


def test_the_name_reader_reads_what_a_query_names() -> None:
    names = names_in(
        'sum by (outcome, error_type) (rate(seawall_call_errors_total{operation="a\\"b",'
        "outcome=~'x|y'}[5m])) / ignoring (outcome) group_left sum(rate(up[1d:1m])) > 0 "
        "and on() vector(1)"
    )
    assert [(s.metric, s.matchers) for s in names.selectors] == [
        ("seawall_call_errors_total", [("operation", "=", 'a"b'), ("outcome", "=~", "x|y")]),
        ("up", []),
    ]
    assert names.grouping == {"outcome", "error_type"}


#: Prometheus's own series that the documents read, and their labels.
PROMETHEUS_SERIES = {"up": {"job", "instance"}}
#: The label values the catalogue's help and the README give for some labels.
KNOWN_VALUES = {
    ("seawall_call_duration_seconds", "outcome"): set(slo.OUTCOMES),
    ("seawall_call_errors_total", "outcome"): set(slo.OUTCOMES) - {"success"},
    ("seawall_circuit_breaker_state", "state"): {
        "closed",
        "open",
        "half_open",
        "forced_open",
        "disabled",
    },
    ("seawall_bulkhead_calls_total", "outcome"): {"admitted", "rejected"},
}


def catalogue_series() -> dict[str, tuple[str, set[str]]]:
    """Every series name seawall exposes → (its family, its labels)."""
    out = {}
    for metric in CATALOGUE:
        labels = set(metric.labels)
        if metric.kind == "histogram":
            out[f"{metric.name}_bucket"] = (metric.name, labels | {"le"})
            out[f"{metric.name}_count"] = (metric.name, labels)
            out[f"{metric.name}_sum"] = (metric.name, labels)
        else:
            out[metric.name] = (metric.name, labels)
    return out


def check_names(query: str, rules: list[dict[str, Any]]) -> None:
    """Fail unless every series ``query`` reads is seawall's, a recording rule of ``rules``
    (selected by labels it has there), ``ALERTS`` of an alert in ``rules``, or ``up``; and every
    label it names belongs to a series it reads."""
    seawall = catalogue_series()
    records: dict[str, list[dict[str, str]]] = {}
    for rule in rules:
        if "record" in rule:
            records.setdefault(rule["record"], []).append(rule.get("labels", {}))
    alerts = [
        {"alertname": rule["alert"], **rule.get("labels", {})} for rule in rules if "alert" in rule
    ]
    names = names_in(query)
    assert names.selectors, f"no series in {query!r}"
    labels_read: set[str] = set()
    for selector in names.selectors:
        metric, given = selector.metric, selector.matchers
        where = f"{metric}{{...}} in {query!r}"
        if metric in seawall:
            family, labels = seawall[metric]
            for label, op, value in given:
                assert label in labels, f"{where}: {metric} has no label {label!r}"
                known = KNOWN_VALUES.get((family, label))
                if known is not None and op in ("=", "=~") and re.fullmatch(r"[\w|]+", value):
                    assert set(value.split("|")) <= known, f"{where}: {label}={value!r}"
        elif metric in records:
            labels = set().union(*(set(r) for r in records[metric]))
            wanted = {label: value for label, op, value in given if op == "="}
            assert set(wanted) == {label for label, _, _ in given}, f"{where}: only = matchers"
            assert any(wanted.items() <= r.items() for r in records[metric]), (
                f"{where}: rules.yaml records no {metric} with {wanted}"
            )
        elif metric == "ALERTS":
            labels = set().union(*(set(a) for a in alerts)) | {"alertstate"}
            wanted = {label: value for label, op, value in given if op == "="}
            assert any(wanted.items() <= a.items() for a in alerts), (
                f"{where}: no alert in rules.yaml has {wanted}"
            )
        elif metric in PROMETHEUS_SERIES:
            labels = PROMETHEUS_SERIES[metric]
        else:
            raise AssertionError(f"{where}: neither seawall's, nor a recording rule, nor ALERTS")
        for label, _, _ in given:
            assert label in labels, f"{where}: no label {label!r}"
        labels_read |= labels
    assert names.grouping <= labels_read, (
        f"grouping by {sorted(names.grouping - labels_read)} in {query!r}: not a label of "
        f"{sorted({s.metric for s in names.selectors})}"
    )


def promtool_check(queries: list[str], directory: Path) -> None:
    """``promtool check rules`` on a rules file whose recording rules are ``queries``."""
    assert PROMTOOL is not None
    path = directory / "queries.rules.yaml"
    groups = {
        "groups": [
            {
                "name": "queries",
                "rules": [
                    {"record": f"docs:query_{index}:value", "expr": query}
                    for index, query in enumerate(queries)
                ],
            }
        ]
    }
    path.write_text(yaml.safe_dump(groups, sort_keys=False))
    done = subprocess.run(
        [PROMTOOL, "check", "rules", str(path)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"SUCCESS: {len(queries)} rules found" in done.stdout, done.stdout


def test_the_name_check_refuses_what_is_not_there() -> None:
    rules = rules_file_of(slo.load(EXAMPLE))
    check_names('seawall_bulkhead_active{policy="p"}', rules)
    for query, message in [
        ("seawall_bulkhead_actives", "neither seawall's"),
        ('seawall_bulkhead_active{operation="p"}', "has no label 'operation'"),
        ('seawall_call_duration_seconds_count{outcome="ok"}', "outcome='ok'"),
        ('slo:sli_error:ratio_rate7m{slo="payments-latency"}', "neither seawall's"),
        ('slo:sli_error:ratio_rate5m{slo="nope"}', "records no"),
        ("sum by (policy) (seawall_call_errors_total)", "grouping by ['policy']"),
        ('ALERTS{slo="nope"}', "no alert"),
    ]:
        with pytest.raises(AssertionError, match=re.escape(message)):
            check_names(query, rules)


def rules_file_of(spec: slo.Spec) -> list[dict[str, Any]]:
    return [rule for group in slo.rules(spec)["groups"] for rule in group["rules"]]


# -- the dashboard ---------------------------------------------------------------------------


def panels_of(board: dict[str, Any]) -> list[dict[str, Any]]:
    return [panel for panel in board["panels"] if panel["type"] != "row"]


def exprs_of(board: dict[str, Any]) -> list[str]:
    return [target["expr"] for panel in panels_of(board) for target in panel["targets"]]


def test_the_dashboard_is_grafanas_json_model_importable_as_it_is(
    generated: tuple[slo.Spec, Path],
) -> None:
    spec, out = generated
    board = dashboard_of(out)
    assert board == slo.dashboard(spec)
    assert board["schemaVersion"] == SCHEMA_VERSION == 39
    assert board["id"] is None
    assert re.fullmatch(r"[\w-]{1,40}", board["uid"])
    assert board["title"] == f"SLOs: {spec.service}"
    assert isinstance(board["refresh"], str)  # as Grafana 11.3's migration (v40) wants it
    (variable,) = board["templating"]["list"]
    assert (variable["name"], variable["type"], variable["query"]) == (
        "datasource",
        "datasource",
        "prometheus",
    )
    # No `current`: Grafana's schema wants a text and a value in one; without it, Grafana
    # picks its default Prometheus data source.
    assert "current" not in variable
    ids = [panel["id"] for panel in board["panels"]]
    assert len(set(ids)) == len(ids)
    source = {"type": "prometheus", "uid": "${datasource}"}
    taken: set[tuple[int, int]] = set()
    for panel in board["panels"]:
        grid = panel["gridPos"]
        assert grid["x"] >= 0, panel["title"]
        assert grid["x"] + grid["w"] <= 24, panel["title"]
        cells = {
            (x, y)
            for x in range(grid["x"], grid["x"] + grid["w"])
            for y in range(grid["y"], grid["y"] + grid["h"])
        }
        assert not cells & taken, f"{panel['title']} overlaps another panel"
        taken |= cells
        if panel["type"] == "row":
            assert panel["panels"] == []
            assert not panel["collapsed"]
            continue
        assert panel["datasource"] == source
        for target in panel["targets"]:
            assert target["datasource"] == source
            assert target["refId"]
            assert target["expr"]


def test_each_slo_has_a_row_with_its_sli_objective_budget_burn_rates_and_alerts(
    generated: tuple[slo.Spec, Path],
) -> None:
    spec, out = generated
    board = dashboard_of(out)
    rows = [index for index, panel in enumerate(board["panels"]) if panel["type"] == "row"]
    assert len(rows) == len(spec.slos)
    for number, objective in enumerate(spec.slos):
        start = rows[number] + 1
        end = rows[number + 1] if number + 1 < len(rows) else len(board["panels"])
        row = board["panels"][start:end]
        assert objective.name in board["panels"][rows[number]]["title"]
        selector = f'{{service="{spec.service}",slo="{objective.name}"}}'
        by_title = {panel["title"]: panel for panel in row}
        sli = next(panel for title, panel in by_title.items() if title.startswith("SLI"))
        fast, slow = slo._dashboard.sli_windows(spec, objective)
        assert [target["expr"] for target in sli["targets"]] == [
            f"1 - slo:sli_error:ratio_rate{fast}{selector}",
            f"1 - slo:sli_error:ratio_rate{slow}{selector}",
            f"slo:objective:ratio{selector}",
        ]
        if spec.windows == slo.DEFAULT_WINDOWS:
            assert (fast, slow) == ("5m", "1h")
        (budget,) = (p for t, p in by_title.items() if t.startswith("Error budget left"))
        assert budget["type"] == "stat"
        assert budget["targets"][0]["expr"] == f"slo:error_budget_remaining:ratio{selector}"
        (alerts,) = (p for p in row if p["type"] == "table")
        missing = slo.alert_names(objective, spec)["missing"]
        shared = f' or ALERTS{{service="{spec.service}",alertname="{missing}"}}'
        owner = slo.alert_names(objective)["missing"] == missing
        assert alerts["targets"][0]["expr"] == f"ALERTS{selector}" + ("" if owner else shared)
        assert missing in alerts["description"]
        assert alerts["targets"][0]["instant"] is True
        burns = [panel for title, panel in by_title.items() if title.startswith("Burn rate")]
        assert len(burns) == len(spec.windows)
        for window, panel in zip(spec.windows, burns, strict=True):
            long_ = slo.format_duration(window.long)
            short = slo.format_duration(window.short)
            budget_text = f"{objective.budget:.10g}"
            assert [target["expr"] for target in panel["targets"]] == [
                f"slo:sli_error:ratio_rate{long_}{selector} / {budget_text}",
                f"slo:sli_error:ratio_rate{short}{selector} / {budget_text}",
            ]
            # The alert's threshold, drawn as a line: the same factor the rule compares with.
            steps = panel["fieldConfig"]["defaults"]["thresholds"]["steps"]
            assert steps[-1]["value"] == pytest.approx(window.factor(objective.period))
            custom = panel["fieldConfig"]["defaults"]["custom"]
            assert custom["thresholdsStyle"]["mode"] == "line"
            rule = next(
                r
                for r in rules_file(out)
                if r.get("alert") == slo.alert_names(objective)[window.severity]
                and r["labels"]["long_window"] == long_
            )
            threshold = float(re.findall(r"> ([\d.e-]+)", rule["expr"])[0])
            assert steps[-1]["value"] * objective.budget == pytest.approx(threshold)


def test_every_dashboard_query_reads_recording_rules_of_rules_yaml_or_alerts(
    generated: tuple[slo.Spec, Path],
) -> None:
    _, out = generated
    rules = rules_file(out)
    records = {rule["record"] for rule in rules if "record" in rule}
    for expr in exprs_of(dashboard_of(out)):
        check_names(expr, rules)
        assert {s.metric for s in names_in(expr).selectors} <= records | {"ALERTS"}, expr


@needs_promtool
def test_every_dashboard_query_passes_promtool(
    generated: tuple[slo.Spec, Path], tmp_path: Path
) -> None:
    _, out = generated
    promtool_check(exprs_of(dashboard_of(out)), tmp_path)


# -- the runbooks ----------------------------------------------------------------------------


def blocks(text: str, language: str) -> list[str]:
    """The fenced code blocks of ``language`` in a Markdown text (list items' included)."""
    found = []
    for match in re.finditer(rf"^( *)```{language}\n(.*?)^\1```$", text, re.DOTALL | re.M):
        indent = len(match.group(1))
        lines = match.group(2).splitlines()
        found.append("\n".join(line[indent:] for line in lines))
    return found


def runbook_texts(out: Path) -> dict[str, str]:
    return {path.stem: path.read_text() for path in sorted((out / "runbooks").glob("*.md"))}


def test_every_alert_has_a_runbook_and_its_runbook_url_points_to_it(
    generated: tuple[slo.Spec, Path],
) -> None:
    spec, out = generated
    alerts = [rule for rule in rules_file(out) if "alert" in rule]
    assert set(runbook_texts(out)) == {rule["alert"] for rule in alerts}
    for rule in alerts:
        url = rule["annotations"]["runbook_url"]
        assert url == f"runbooks/{rule['alert']}.md"
        assert (out / url).is_file()
    if spec.service == "quick":  # page windows only: no ticket alert, so no ticket runbook
        assert not [name for name in runbook_texts(out) if name.endswith("Ticket")]


def test_each_runbook_says_when_it_fires_with_the_numbers(
    generated: tuple[slo.Spec, Path],
) -> None:
    spec, out = generated
    texts = runbook_texts(out)
    for rule in rules_file(out):
        if "alert" not in rule:
            continue
        text = texts[rule["alert"]]
        headings = [line for line in text.splitlines() if line.startswith("## ")]
        assert headings == list(SECTIONS), rule["alert"]
        fires = text.split("## When this alert fires", 1)[1].split("\n## ", 1)[0]
        assert rule["expr"] in blocks(fires, "promql")  # the expression, as the rule has it
        for threshold in re.findall(r"> ([\d.e-]+)\n", rule["expr"]):
            assert f"({threshold})" in fires  # and its threshold in the table
        if rule["alert"].endswith("SLIMissing"):
            assert slo.format_duration(spec.missing_for) in fires
            continue
        labels = rule["labels"]
        pair = re.escape(f"| {labels['long_window']} | {labels['short_window']} |")
        assert re.search(pair + r" [\d.]+x \|", fires), rule["alert"]
        impact = text.split("## Impact", 1)[1].split("\n## ", 1)[0]
        assert "What callers see" in impact
        assert "budget is gone in" in impact


def test_each_runbooks_diagnostics_and_mitigation_are_seawalls(
    generated: tuple[slo.Spec, Path],
) -> None:
    spec, out = generated
    texts = runbook_texts(out)
    by_name = {
        name: objective for objective in spec.slos for name in slo.alert_names(objective).values()
    }
    for name, text in texts.items():
        objective = by_name[name]
        for placeholder in ("<team>", "<channel>", "<dashboard link>"):
            assert placeholder in text.split("## Escalation", 1)[1], name
        diagnostics = text.split("## Diagnostic steps", 1)[1].split("\n## ", 1)[0]
        queries = blocks(diagnostics, "promql")
        read = {s.metric for query in queries for s in names_in(query).selectors}
        operation = json.dumps(objective.operation)
        if name.endswith("SLIMissing"):
            assert read >= {"seawall_call_duration_seconds_count", "up"}
            assert "isolate()" in text  # it says the switches do not help
            continue
        assert read >= {
            "seawall_call_errors_total",  # the error ratio by outcome and error_type
            "seawall_circuit_breaker_state",
            "seawall_circuit_breaker_transitions_total",
            "seawall_retry_budget_exhausted_total",
            "seawall_retry_refused_attempts_total",
            "seawall_bulkhead_active",
            "seawall_bulkhead_limit",
            "seawall_bulkhead_calls_total",
            "seawall_http_client_request_duration_seconds_count",
        }, name
        errors = next(q for q in queries if "seawall_call_errors_total" in q)
        assert "by (outcome, error_type)" in errors
        assert f"operation={operation}" in errors
        http = next(q for q in queries if "request_duration_seconds_count" in q)
        assert "by (server_address, http_response_status_code" in http
        assert f"policy={operation}" in diagnostics
        mitigation = text.split("## Mitigation", 1)[1].split("\n## ", 1)[0]
        code = blocks(mitigation, "python")
        for snippet in code:
            ast.parse(snippet)  # Python that runs as written (given the names it uses)
        joined = "\n".join(code)
        for switch in ("breaker.isolate()", "breaker.disable()", "seawall.Fallback(", "Bulkhead("):
            assert switch in joined, (name, switch)
        assert f"seawall.Policy(\n    {operation}," in joined


def test_every_runbook_query_names_only_what_there_is(generated: tuple[slo.Spec, Path]) -> None:
    _, out = generated
    rules = rules_file(out)
    for name, text in runbook_texts(out).items():
        queries = blocks(text, "promql")
        assert len(queries) >= 3, name
        for query in queries:
            check_names(query, rules)


@needs_promtool
def test_every_runbook_query_passes_promtool(
    generated: tuple[slo.Spec, Path], tmp_path: Path
) -> None:
    _, out = generated
    queries = [query for text in runbook_texts(out).values() for query in blocks(text, "promql")]
    promtool_check(queries, tmp_path)


def test_a_runbooks_operation_regex_matches_the_operation_and_nothing_wider() -> None:
    spec = slo.load(ODD)
    books = slo.runbooks(spec)
    for objective in spec.slos:
        page = books[slo.alert_names(objective)["page"]]
        (query,) = (q for q in blocks(page, "promql") if "seawall_timeout_calls_total" in q)
        ((_, op, pattern),) = names_in(query).selectors[0].matchers
        assert op == "=~"
        assert re.fullmatch(pattern, objective.operation)
        assert re.fullmatch(pattern, objective.operation + ".attempt")
        assert not re.fullmatch(pattern, objective.operation + "x")
        assert not re.fullmatch(pattern, "x" + objective.operation)


def test_a_transports_host_policy_is_reached_through_the_transport() -> None:
    spec = slo.load(ODD)
    page = slo.runbooks(spec)["ApiAvailabilityBurnRatePage"]
    assert '`transport.policies()["pay.example.com:443"]`' in page
    assert (
        "transport.policies()"
        not in slo.runbooks(slo.load(EXAMPLE))["PaymentsAvailabilityBurnRatePage"]
    )


def test_two_slos_whose_alert_names_collide_are_refused() -> None:
    # Both would be PayAvail...: one runbook file for two SLOs' alerts. The spec refuses them.
    with pytest.raises(slo.SpecError, match=r"slos\[1\]\.name: 'pay_avail' and 'pay-avail'"):
        slo.Spec(
            service="s",
            slos=(
                slo.SLO("pay-avail", "p", "availability", 99.0),
                slo.SLO("pay_avail", "p", "availability", 99.5),
            ),
        )


# -- the files, together ---------------------------------------------------------------------


def tree(directory: Path) -> dict[str, bytes]:
    return {
        str(path.relative_to(directory)): path.read_bytes()
        for path in sorted(directory.rglob("*"))
        if path.is_file()
    }


def test_generate_writes_the_same_files_every_time(tmp_path: Path) -> None:
    spec = slo.load(EXAMPLE)
    written = slo.generate(spec, tmp_path / "a")
    slo.generate(slo.load(EXAMPLE), tmp_path / "b")
    first, second = tree(tmp_path / "a"), tree(tmp_path / "b")
    assert first == second
    assert sorted(str(path.relative_to(tmp_path / "a")) for path in written) == sorted(first)
    assert set(first) == {
        "rules.yaml",
        "dashboard.json",
        *(f"runbooks/{name}.md" for name in slo.runbooks(spec)),
        "tests.yaml",
    }


def iter_all_queries(out: Path) -> Iterator[str]:
    yield from exprs_of(dashboard_of(out))
    for text in runbook_texts(out).values():
        yield from blocks(text, "promql")


@needs_promtool
def test_the_generated_rules_pass_promtool(generated: tuple[slo.Spec, Path]) -> None:
    _, out = generated
    assert PROMTOOL is not None
    done = subprocess.run(
        [PROMTOOL, "check", "rules", str(out / "rules.yaml")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert list(iter_all_queries(out))


def test_a_long_service_name_still_gives_a_uid_grafana_takes() -> None:
    long_name = "a-service-whose-name-runs-on-and-on-and-on"
    spec = slo.Spec(service=long_name, slos=(slo.SLO("a", "op", "availability", 99.0),))
    uid = slo.dashboard(spec)["uid"]
    assert re.fullmatch(r"seawall-slo-[0-9a-f]{27}", uid)
    assert uid == slo.dashboard(spec)["uid"]  # the same every time
    assert slo.dashboard(slo.Spec(service="checkout", slos=spec.slos))["uid"] == (
        "seawall-slo-checkout"
    )
