"""Prometheus rules from a spec: recording rules per window and multi-window burn-rate alerts.

Every ratio is a ratio of sums (``sum(rate(bad)) / sum(rate(all))`` over the same window),
never an average of per-instance ratios, so instances with more traffic weigh more, as
their callers do. A window without events has no ratio at all (the divisor is kept only
when ``> 0``), rather than NaN: so the budget left has no sample either, as
``seawall.slo.budget()`` gives ``None`` without calls, and an alert has nothing to compare.

The selectors read seawall's own series, ``seawall_call_duration_seconds_{count,bucket}``,
which prometheus-client, the OpenTelemetry Prometheus exporter and the multiprocess collector
all expose under the same names; a latency threshold's ``le`` is matched both as written by
prometheus-client (``1.0``) and as Prometheus 3 may store it.
"""

from __future__ import annotations

import re
from typing import Any

from seawall.slo._spec import SLO, Spec, Window, camel, format_duration

__all__ = [
    "ERRORS_RATE",
    "ERROR_RATIO",
    "EVENTS_RATE",
    "alert_names",
    "alert_rules",
    "error_ratio_expr",
    "period_from_rates",
    "recording_rules",
    "rules",
    "sharing",
    "windows_of",
]

ERROR_RATIO = "slo:sli_error:ratio_rate"
EVENTS_RATE = "slo:sli_events:rate"
ERRORS_RATE = "slo:sli_errors:rate"
OBJECTIVE = "slo:objective:ratio"
BUDGET_REMAINING = "slo:error_budget_remaining:ratio"
SERIES = "seawall_call_duration_seconds"


def _quote(value: str) -> str:
    """A PromQL string literal."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def _le(threshold: float) -> str:
    text = repr(float(threshold))  # as prometheus-client writes a bound: 0.25, 1.0
    whole = text.removesuffix(".0")
    if whole != text:
        return f"le=~{_quote(re.escape(whole) + '|' + re.escape(text))}"
    return f"le={_quote(text)}"


def windows_of(spec: Spec, slo: SLO) -> list[float]:
    """Every window a rule reads, shortest first: the alerts' and the period."""
    return sorted({w.long for w in spec.windows} | {w.short for w in spec.windows} | {slo.period})


def _events(slo: SLO, window: str) -> tuple[str, str]:
    """(bad, all) events per second over ``window``, each a sum across every series."""
    operation = f"operation={_quote(slo.operation)}"
    if slo.sli == "availability":
        bad = "|".join(slo.bad_outcomes)
        return (
            f"sum(rate({SERIES}_count{{{operation},outcome=~{_quote(bad)}}}[{window}]))",
            f'sum(rate({SERIES}_count{{{operation},outcome!="cancelled"}}[{window}]))',
        )
    assert slo.threshold is not None
    total = f'sum(rate({SERIES}_count{{{operation},outcome="success"}}[{window}]))'
    good = (
        f'sum(rate({SERIES}_bucket{{{operation},outcome="success",{_le(slo.threshold)}}}'
        f"[{window}]))"
    )
    return f"({total} - {good})", total


def error_ratio_expr(slo: SLO, seconds: float) -> str:
    """The SLI's error ratio over the window: bad events / all events, summed; no sample
    without events (``> 0`` drops the 0 a division would make NaN), as :func:`budget` says
    ``None``."""
    window = format_duration(seconds)
    bad, total = _events(slo, window)
    return f"{bad}\n/\n({total} > 0)"


def _labels(spec: Spec, slo: SLO) -> dict[str, str]:
    return {"service": spec.service, "slo": slo.name}


def _selector(spec: Spec, slo: SLO) -> str:
    return f"{{service={_quote(spec.service)},slo={_quote(slo.name)}}}"


def period_from_rates(spec: Spec, slo: SLO) -> bool:
    """Whether the period's figures are summed from the shortest window's recorded rates: yes,
    unless the period is also an alert window (then the alert reads it as it reads the others,
    from seawall's series)."""
    alert_windows = {w.long for w in spec.windows} | {w.short for w in spec.windows}
    return slo.period not in alert_windows


def _period_rules(spec: Spec, slo: SLO, shortest: str) -> tuple[str, str]:
    """(error ratio, events rate) over the period from the recorded rates over ``shortest``,
    rather than from every raw series over the whole period at every evaluation: the errors
    rates of the period's evaluations summed, over their events rates summed (a ratio of
    sums: an evaluation weighs as its events do), and the events rates' mean. While the rules
    are evaluated at least once per shortest window, every event falls in the windows of as
    many evaluations as any other (to within one; fewer within a shortest window of the
    period's ends), so the ratio weighs every event alike, as one over the raw series does."""
    selector, period = _selector(spec, slo), format_duration(slo.period)
    errors = f"sum_over_time({ERRORS_RATE}{shortest}{selector}[{period}])"
    events = f"sum_over_time({EVENTS_RATE}{shortest}{selector}[{period}])"
    return (
        f"{errors}\n/\n({events} > 0)",
        f"avg_over_time({EVENTS_RATE}{shortest}{selector}[{period}])",
    )


def recording_rules(spec: Spec, slo: SLO) -> list[dict[str, Any]]:
    """Per window, shortest first, the error ratio and the events rate; over the shortest, the
    errors rate too, which the period's rules (last: a group's rules run in order, so they
    read this evaluation's rates) sum."""
    out: list[dict[str, Any]] = []
    labels = _labels(spec, slo)
    windows = windows_of(spec, slo)
    shortest = format_duration(windows[0])
    for seconds in windows:
        window = format_duration(seconds)
        bad, total = _events(slo, window)
        ratio = error_ratio_expr(slo, seconds)
        if seconds == slo.period and period_from_rates(spec, slo):
            ratio, total = _period_rules(spec, slo, shortest)
        out.append({"record": f"{ERROR_RATIO}{window}", "expr": ratio, "labels": labels})
        out.append({"record": f"{EVENTS_RATE}{window}", "expr": total, "labels": labels})
        if window == shortest:
            out.append({"record": f"{ERRORS_RATE}{window}", "expr": bad, "labels": labels})
    out.append(
        {"record": OBJECTIVE, "expr": f"vector({slo.objective / 100:.10g})", "labels": labels}
    )
    period = format_duration(slo.period)
    out.append(
        {
            "record": BUDGET_REMAINING,
            "expr": f"1 - {ERROR_RATIO}{period}{_selector(spec, slo)} / {slo.budget:.10g}",
            "labels": labels,
        }
    )
    return out


def sharing(spec: Spec, slo: SLO) -> list[SLO]:
    """The SLOs of ``spec`` on ``slo``'s operation, in the spec's order: they read the same
    series, so one missing-SLI alert, the first one's, stands for all of them."""
    return [other for other in spec.slos if other.operation == slo.operation]


def alert_names(slo: SLO, spec: Spec | None = None) -> dict[str, str]:
    """The alerts of one SLO by what they are: ``page``, ``ticket``, ``missing``. With
    ``spec``, ``missing`` is the alert that watches the SLO's series: the first SLO's on its
    operation (without, this SLO's own name for it)."""
    base = camel(slo.name)
    owner = camel(sharing(spec, slo)[0].name) if spec is not None else base
    return {
        "page": f"{base}BurnRatePage",
        "ticket": f"{base}BurnRateTicket",
        "missing": f"{owner}SLIMissing",
    }


def _threshold(window: Window, slo: SLO) -> float:
    return window.factor(slo.period) * slo.budget


def alert_rules(spec: Spec, slo: SLO) -> list[dict[str, Any]]:
    names = alert_names(slo)
    selector = _selector(spec, slo)
    what = "availability" if slo.sli == "availability" else f"latency (<= {slo.threshold:g} s)"
    out: list[dict[str, Any]] = []
    for window in spec.windows:
        name = names[window.severity]
        factor = window.factor(slo.period)
        threshold = _threshold(window, slo)
        long_, short = format_duration(window.long), format_duration(window.short)
        expr = (
            f"{ERROR_RATIO}{long_}{selector} > {threshold:.10g}\n"
            f"and\n{ERROR_RATIO}{short}{selector} > {threshold:.10g}\n"
            f"and\n{EVENTS_RATE}{long_}{selector} * {window.long:g} >= {spec.min_events}"
        )
        gone = format_duration(slo.period / factor)
        out.append(
            {
                "alert": name,
                "expr": expr,
                "labels": {
                    **_labels(spec, slo),
                    "severity": window.severity,
                    "long_window": long_,
                    "short_window": short,
                },
                "annotations": {
                    "summary": (
                        f"{spec.service}: {slo.name} is burning its error budget {factor:.3g}x "
                        f"too fast"
                    ),
                    "description": (
                        f"The {what} SLI of {slo.operation!r} has had an error ratio above "
                        f"{threshold:.4g} over the last {long_} and the last {short} (now "
                        "{{ $value | humanizePercentage }}): "
                        f"{factor:.3g}x the rate that spends the {format_duration(slo.period)} "
                        f"budget of {slo.budget * 100:.4g}% exactly. At this rate the budget is "
                        f"gone in {gone}."
                    ),
                    "runbook_url": spec.runbook_url.format(alert=name),
                },
            }
        )
    if sharing(spec, slo)[0] != slo:
        return out  # the first SLO on the operation has the missing-SLI alert for all
    out.append(_missing_rule(spec, slo))
    return out


def _missing_rule(spec: Spec, slo: SLO) -> dict[str, Any]:
    """The alert that the series of ``slo``'s operation (which every SLO on it reads) are
    absent: one per operation, labelled with its first SLO, naming them all."""
    missing = alert_names(slo)["missing"]
    for_ = format_duration(spec.missing_for)
    names = [other.name for other in sharing(spec, slo)]
    slos = names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]
    return {
        "alert": missing,
        "expr": f"absent({SERIES}_count{{operation={_quote(slo.operation)}}})",
        "for": for_,
        "labels": {
            **_labels(spec, slo),
            "severity": "ticket",
            "long_window": for_,
            "short_window": for_,
        },
        "annotations": {
            "summary": f"{spec.service}: no SLI for {slos}",
            "description": (
                f"No series {SERIES}_count{{operation={_quote(slo.operation)}}} for {for_}: "
                f"the {slos} SLO{'s' if len(names) > 1 else ''} cannot be measured (the "
                "service is down, is not scraped, or no longer calls through this seawall "
                "policy)."
            ),
            "runbook_url": spec.runbook_url.format(alert=missing),
        },
    }


def rules(spec: Spec) -> dict[str, Any]:
    """The rules file: per SLO, a group of recording rules and a group of alerts."""
    groups: list[dict[str, Any]] = []
    for slo in spec.slos:
        groups.append(
            {
                "name": f"seawall-slo-{spec.service}-{slo.name}-sli",
                "rules": recording_rules(spec, slo),
            }
        )
        groups.append(
            {
                "name": f"seawall-slo-{spec.service}-{slo.name}-alerts",
                "rules": alert_rules(spec, slo),
            }
        )
    return {"groups": groups}
