"""A Grafana dashboard for a spec, on the recording rules of :mod:`seawall.slo._rules`.

The JSON model is Grafana's classic one, ``schemaVersion`` 39 (Grafana 10.4 and 11 save it;
later versions migrate it on load), importable as it is: every query goes to the data source
chosen in the ``${datasource}`` variable (any Prometheus), and nothing else needs filling in.

Per SLO, a row: the SLI over 5 minutes and an hour against its objective, the calls the SLI
counts, the error budget left over the period, which of its alerts are pending or firing
(``ALERTS``), and one panel per burn-rate alert window: the burn rate (error ratio / budget)
over the alert's long and short window, its threshold drawn as a line. An alert fires when
both lines are above it (and the long window holds ``min_events`` calls).

What is checked, short of a Grafana (``tests/test_slo_grafana.py``, where node and npm are
installed): each dashboard type-checks with ``tsc --strict`` against Grafana's own published
types for the JSON model, ``@grafana/schema`` 10.4 (generated from the CUE schemas of the
dashboard and of the timeseries, stat and table panels, with Prometheus's query): no key the
schema lacks, none it requires missing, no value (an enum's, say) it does not allow, and every
override setting a field-config property with a value of its type. A panel's options and custom
field config may leave keys out (Grafana fills them from the plugin's defaults). Not checked:
what the types leave open (a transformation's options, a matcher's), and what only a running
Grafana does: the import itself, its migrations from ``schemaVersion`` 39, the queries' results.
The datasource variable has no ``current``: the schema wants a text and a value in one, and
without it Grafana selects its default Prometheus data source.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from seawall.slo._rules import (
    BUDGET_REMAINING,
    ERROR_RATIO,
    EVENTS_RATE,
    OBJECTIVE,
    _quote,
    _selector,
    alert_names,
    sharing,
    windows_of,
)
from seawall.slo._spec import SLO, Spec, format_duration

__all__ = ["SCHEMA_VERSION", "dashboard", "sli_windows", "write_dashboard"]

#: The dashboard JSON model's version: Grafana 10.4's and 11.0's.
SCHEMA_VERSION = 39
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
WIDTH = 24  # Grafana's grid


def _uid(service: str) -> str:
    """A stable uid (Grafana allows 40 characters): the service's, hashed if too long."""
    uid = f"seawall-slo-{service}"
    if len(uid) <= 40:
        return uid
    return f"seawall-slo-{hashlib.sha256(service.encode()).hexdigest()[:27]}"


def _target(ref: str, expr: str, legend: str, *, instant: bool = False) -> dict[str, Any]:
    target: dict[str, Any] = {
        "datasource": DATASOURCE,
        "editorMode": "code",
        "expr": expr,
        "legendFormat": legend,
        "range": not instant,
        "instant": instant,
        "refId": ref,
    }
    if instant:
        target["format"] = "table"
    return target


def _thresholds(*steps: tuple[str, float | None]) -> dict[str, Any]:
    return {
        "mode": "absolute",
        "steps": [{"color": color, "value": value} for color, value in steps],
    }


def _timeseries(
    title: str,
    description: str,
    targets: list[dict[str, Any]],
    *,
    unit: str,
    thresholds: dict[str, Any] | None = None,
    overrides: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    custom: dict[str, Any] = {
        "drawStyle": "line",
        "lineInterpolation": "linear",
        "lineWidth": 1,
        "fillOpacity": 0,
        "showPoints": "never",
        "spanNulls": False,
        "axisPlacement": "auto",
        "thresholdsStyle": {"mode": "off" if thresholds is None else "line"},
    }
    return {
        "type": "timeseries",
        "title": title,
        "description": description,
        "datasource": DATASOURCE,
        "fieldConfig": {
            "defaults": {
                "unit": unit,
                "color": {"mode": "palette-classic"},
                "custom": custom,
                "thresholds": thresholds or _thresholds(("green", None)),
            },
            "overrides": overrides or [],
        },
        "options": {
            "legend": {"displayMode": "list", "placement": "bottom", "showLegend": True},
            "tooltip": {"mode": "multi", "sort": "none"},
        },
        "targets": targets,
    }


def sli_windows(spec: Spec, slo: SLO) -> tuple[str, str]:
    """The two windows the SLI panels show, from those the rules record: the shortest, and
    the shortest of an hour or more (5m and 1h with the default windows)."""
    recorded = windows_of(spec, slo)
    hour = [seconds for seconds in recorded[1:] if seconds >= 3600.0]
    longer = hour[0] if hour else recorded[min(1, len(recorded) - 1)]
    return format_duration(recorded[0]), format_duration(longer)


def _slo_panels(spec: Spec, slo: SLO) -> list[dict[str, Any]]:
    """The row's panels, without ids or positions."""
    selector = _selector(spec, slo)
    fast, slow = sli_windows(spec, slo)
    period = format_duration(slo.period)
    budget = f"{slo.budget:.10g}"
    if slo.sli == "availability":
        what = (
            f"the share of the calls of `{slo.operation}` that did not end as "
            f"{', '.join(slo.bad_outcomes)} (cancelled calls count neither way)"
        )
    else:
        what = (
            f"the share of the successful calls of `{slo.operation}` that took at most "
            f"{slo.threshold:g} s"
        )
    sli = _timeseries(
        f"SLI: {slo.sli} against the {slo.objective:g}% objective",
        f"1 - {ERROR_RATIO}<window>: {what}, over {fast} and over {slow}; the dashed "
        f"line is the objective ({OBJECTIVE}).",
        [
            _target("A", f"1 - {ERROR_RATIO}{fast}{selector}", f"SLI over {fast}"),
            _target("B", f"1 - {ERROR_RATIO}{slow}{selector}", f"SLI over {slow}"),
            _target("C", f"{OBJECTIVE}{selector}", "objective"),
        ],
        unit="percentunit",
        overrides=[
            {
                "matcher": {"id": "byName", "options": "objective"},
                "properties": [
                    {"id": "color", "value": {"mode": "fixed", "fixedColor": "red"}},
                    {"id": "custom.lineStyle", "value": {"fill": "dash", "dash": [10, 10]}},
                ],
            }
        ],
    )
    events = _timeseries(
        "Calls counted by the SLI",
        f"{EVENTS_RATE}<window>: the calls per second the SLI counts. A burn-rate alert also "
        f"needs {spec.min_events} of them in its long window.",
        [
            _target("A", f"{EVENTS_RATE}{fast}{selector}", f"over {fast}"),
            _target("B", f"{EVENTS_RATE}{slow}{selector}", f"over {slow}"),
        ],
        unit="reqps",
    )
    remaining = {
        "type": "stat",
        "title": f"Error budget left ({period})",
        "description": (
            f"{BUDGET_REMAINING}: the share of the {period} error budget ({slo.budget * 100:.4g}% "
            "of the calls) not yet spent: 100% untouched, 0% spent, below 0 overspent."
        ),
        "datasource": DATASOURCE,
        "fieldConfig": {
            "defaults": {
                "unit": "percentunit",
                "decimals": 1,
                "color": {"mode": "thresholds"},
                "thresholds": _thresholds(("red", None), ("orange", 0), ("green", 0.25)),
            },
            "overrides": [],
        },
        "options": {
            "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
            "colorMode": "background",
            "graphMode": "area",
            "justifyMode": "auto",
            "orientation": "auto",
            "textMode": "auto",
        },
        "targets": [_target("A", f"{BUDGET_REMAINING}{selector}", "budget left")],
    }
    names = alert_names(slo, spec)
    query = f"ALERTS{selector}"
    if sharing(spec, slo)[0] != slo:  # its missing-SLI alert is the operation's first SLO's
        query += (
            f" or ALERTS{{service={_quote(spec.service)},alertname={_quote(names['missing'])}}}"
        )
    alerts = {
        "type": "table",
        "title": "Alerts pending or firing",
        "description": (
            "ALERTS for this SLO now ("
            + ", ".join(names[key] for key in ("page", "ticket", "missing"))
            + "); empty when none is pending or firing."
        ),
        "datasource": DATASOURCE,
        "fieldConfig": {
            "defaults": {
                "custom": {"align": "auto", "cellOptions": {"type": "auto"}},
                "thresholds": _thresholds(("green", None)),
            },
            "overrides": [
                {
                    "matcher": {"id": "byName", "options": "alertstate"},
                    "properties": [
                        {"id": "custom.cellOptions", "value": {"type": "color-background"}},
                        {
                            "id": "mappings",
                            "value": [
                                {
                                    "type": "value",
                                    "options": {
                                        "firing": {"color": "red", "index": 0},
                                        "pending": {"color": "orange", "index": 1},
                                    },
                                }
                            ],
                        },
                    ],
                }
            ],
        },
        "options": {"showHeader": True, "cellHeight": "sm"},
        "targets": [_target("A", query, "", instant=True)],
        "transformations": [
            {
                "id": "organize",
                "options": {
                    "excludeByName": {
                        "Time": True,
                        "Value": True,
                        "__name__": True,
                        "service": True,
                        "slo": True,
                    },
                    "indexByName": {
                        "alertname": 0,
                        "alertstate": 1,
                        "severity": 2,
                        "long_window": 3,
                        "short_window": 4,
                    },
                    "renameByName": {},
                },
            }
        ],
    }
    panels = [sli, events, remaining, alerts]
    for window in spec.windows:
        factor = window.factor(slo.period)
        long_, short = format_duration(window.long), format_duration(window.short)
        color = "red" if window.severity == "page" else "orange"
        panels.append(
            _timeseries(
                f"Burn rate, {window.severity}: {long_} and {short} (above {factor:.3g}x)",
                f"The error ratio over {long_} and over {short}, divided by the budget "
                f"({budget}): 1x spends the {period} budget exactly in {period}. "
                f"{names[window.severity]} fires when both lines are above {factor:.3g}x "
                f"(the line), which spends {window.spent(slo.period) * 100:.4g}% of the budget "
                f"in {long_}.",
                [
                    _target("A", f"{ERROR_RATIO}{long_}{selector} / {budget}", f"over {long_}"),
                    _target("B", f"{ERROR_RATIO}{short}{selector} / {budget}", f"over {short}"),
                ],
                unit="suffix:x",
                thresholds=_thresholds(("green", None), (color, factor)),
            )
        )
    return panels


def _place(panels: list[dict[str, Any]], y: int, next_id: int) -> tuple[int, int]:
    """Give ``panels`` ids and grid positions from row ``y``: the first four side by side
    (SLI, calls, budget, alerts), then the burn rates four to a line. Returns (y, id) after."""
    heads = [(9, 8), (5, 8), (4, 8), (6, 8)]  # (width, height)
    x = 0
    for panel, (width, height) in zip(panels[:4], heads, strict=True):
        panel["id"] = next_id
        panel["gridPos"] = {"h": height, "w": width, "x": x, "y": y}
        next_id += 1
        x += width
    y += 8
    burns = panels[4:]
    across = min(4, len(burns)) or 1
    width = WIDTH // across
    for index, panel in enumerate(burns):
        column, line = index % across, index // across
        panel["id"] = next_id
        panel["gridPos"] = {"h": 7, "w": width, "x": column * width, "y": y + 7 * line}
        next_id += 1
    y += 7 * -(-len(burns) // across)
    return y, next_id


def dashboard(spec: Spec) -> dict[str, Any]:
    """The Grafana dashboard (its JSON model, as a dict) for ``spec``: a row per SLO."""
    panels: list[dict[str, Any]] = []
    y, next_id = 0, 1
    for slo in spec.slos:
        what = "availability" if slo.sli == "availability" else f"latency <= {slo.threshold:g} s"
        row = {
            "type": "row",
            "title": (
                f"{slo.name}: {what} of {slo.operation}, {slo.objective:g}% over "
                f"{format_duration(slo.period)}"
            ),
            "collapsed": False,
            "panels": [],
            "id": next_id,
            "gridPos": {"h": 1, "w": WIDTH, "x": 0, "y": y},
        }
        panels.append(row)
        members = _slo_panels(spec, slo)
        y, next_id = _place(members, y + 1, next_id + 1)
        panels.extend(members)
    return {
        "id": None,
        "uid": _uid(spec.service),
        "title": f"SLOs: {spec.service}",
        "description": (
            f"The SLOs of {spec.service} on seawall's SLIs, from its seawall.slo spec: the "
            "recording rules of rules.yaml, generated beside this file."
        ),
        "tags": ["seawall", "slo"],
        "editable": True,
        "fiscalYearStartMonth": 0,
        "graphTooltip": 1,
        "links": [],
        "liveNow": False,
        "annotations": {
            "list": [
                {
                    "builtIn": 1,
                    "datasource": {"type": "grafana", "uid": "-- Grafana --"},
                    "enable": True,
                    "hide": True,
                    "iconColor": "rgba(0, 211, 255, 1)",
                    "name": "Annotations & Alerts",
                    "type": "dashboard",
                }
            ]
        },
        "templating": {
            "list": [
                {
                    "name": "datasource",
                    "label": "Data source",
                    "type": "datasource",
                    "query": "prometheus",
                    "hide": 0,
                    "includeAll": False,
                    "multi": False,
                    "options": [],
                    "refresh": 1,
                    "regex": "",
                    "skipUrlSync": False,
                }
            ]
        },
        "panels": panels,
        "refresh": "1m",
        "schemaVersion": SCHEMA_VERSION,
        "time": {"from": "now-24h", "to": "now"},
        "timepicker": {},
        "timezone": "",
        "version": 1,
        "weekStart": "",
    }


def write_dashboard(spec: Spec, directory: Path) -> list[Path]:
    """Write ``dashboard.json`` into ``directory``; the path written, in a list."""
    path = directory / "dashboard.json"
    path.write_text(json.dumps(dashboard(spec), indent=2, ensure_ascii=False) + "\n")
    return [path]
