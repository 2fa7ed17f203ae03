"""``promtool test rules`` for a spec's rules: ``tests.yaml``, next to ``rules.yaml``.

Every expectation comes from the spec, not from the rules: an alert's threshold is
``max(1, budget share x period / long window) x (1 - objective)``, its guard is ``min_events`` calls
in its long window, its SLI the documented one. The input series are seawall's own
(``seawall_call_duration_seconds_count``, and ``_bucket`` for a latency SLO, ``le`` written as
prometheus-client writes it: ``0.25``, ``1.0``), counters of whole calls from 0; a small model
of those counts says what every window holds at every check, so the file states which alerts
fire, the other windows' alerts of the same name included.

For every SLO and every burn-rate window, the groups check that the alert

- fires when the SLI burns at 1.05x its threshold over the whole long window, and stays
  silent at 0.95x (checked when both windows are full);
- resolves once the short window has passed after the burn stops (at stop + short window +
  one sample), while the long window alone would still be above the threshold;
- stays silent below the traffic guard (``min_events`` - 1 calls in the long window, all of
  them bad) and fires just above it (``min_events`` + 1);

and, per SLO, that every recording rule holds the value the traffic gives it (each window a
different one, so a rule reading the wrong window fails), that without calls no error ratio
and no budget left has a sample (not NaN) while every events rate is 0, and that the
missing-SLI alert is pending before ``missing_for`` and fires at it, but not while the series
exist. The period's figures are worked out as its rules sample them: the shortest window's
rates at every evaluation in the period (the evaluation interval apart: 2 h for the default
windows, so they see the 5 m before each evaluation only), errors summed over events summed;
a real Prometheus evaluates far more often, and there they weigh every call alike.

promtool evaluates every rule of the file at every ``evaluation_interval`` from 0 to a test
group's last check, and reloads the rules for every group: that is what a test costs (about
0.1 ms a rule an evaluation). So a group is a check, not a check of one SLO: SLOs on distinct
operations read distinct series, and one group carries the check for all of them, each on its
own series; SLOs sharing an operation take a group each (the operation's first SLOs one, its
second ones another...). The groups grow with the most SLOs on one operation, not with the
SLOs, and the cost as the rules do. The interval here divides ``missing_for`` and the long windows
when that keeps the longest window within :data:`MAX_STEPS` evaluations; otherwise it is a
multiple of the long windows' greatest common divisor that does: 2 h for the default windows,
so ``missing_for`` (10 m) is checked at the evaluations around it, 0 and 2 h. Checks fall on
evaluations; the burns start and stop on each group's own sample grid (``interval``: a fifth
of the short window or less, dividing every window the group's alerts read), so a 5 m window
stays exact.

Values are compared as ``round(x * 1e9)`` (billionths): exact, yet free of a float's last
bits.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from seawall._stats.counters import DURATION_BUCKETS
from seawall.slo._rules import (
    BUDGET_REMAINING,
    ERROR_RATIO,
    ERRORS_RATE,
    EVENTS_RATE,
    OBJECTIVE,
    SERIES,
    _quote,
    alert_names,
    alert_rules,
    period_from_rates,
    rules,
    sharing,
    windows_of,
)
from seawall.slo._spec import OUTCOMES, SLO, Spec, Window, format_duration

__all__ = ["FIRE", "MAX_STEPS", "SILENT", "unit_tests", "write_tests"]

#: The burn, as a multiple of an alert's threshold, at which it must fire, and must not.
FIRE = 1.05
SILENT = 0.95
#: The most evaluations the longest window may take: the evaluation interval divides
#: ``missing_for`` and every long window if it can, else the long windows' greatest common
#: divisor, times what it takes to stay under this.
MAX_STEPS = 48
#: Comparisons closer than this (relative) to a threshold are left to no test: a float's last
#: bit could go either way.
_CLOSE = 1e-6
_VALUE = "{{ $value | humanizePercentage }}"
_T = TypeVar("_T")


class _Ambiguous(Exception):
    """A check would sit on a threshold or a rounding edge: try the next burn."""


def write_tests(spec: Spec, directory: Path) -> Path:
    """Write ``tests.yaml`` for ``spec`` into ``directory``, next to ``rules.yaml``."""
    from seawall.slo._generate import to_yaml

    path = directory / "tests.yaml"
    path.write_text(to_yaml(unit_tests(spec)))
    return path


def unit_tests(spec: Spec, rule_file: str = "rules.yaml") -> dict[str, Any]:
    """The ``promtool test rules`` file for ``spec``'s rules (read from ``rule_file``)."""
    plan = _Plan(spec)
    groups = rules(spec)["groups"]
    order = [g["name"] for g in groups if "record" in g["rules"][0]]
    order += [g["name"] for g in groups if "record" not in g["rules"][0]]
    # promtool evaluates every rule of the file in every test group: a group per SLO and check
    # would cost (SLOs x rules), growing as the square of the SLOs. SLOs on distinct operations
    # read distinct series, so one group carries the same check for all of them at once; only
    # SLOs sharing an operation (a layer each: its first SLOs, its second ones...) need groups
    # of their own.
    merged: dict[tuple[int, str, str], list[dict[str, Any]]] = {}
    for slo in spec.slos:
        layer = sharing(spec, slo).index(slo)
        for kind, group in plan.parts(slo):
            merged.setdefault((layer, kind, group["interval"]), []).append(group)
    tests = [_merge(groups) for groups in merged.values()]
    tests.append(plan.missing())
    return {
        "rule_files": [rule_file],
        "evaluation_interval": _duration(plan.step),
        # The recording rules first: an alert reads the ratios of its own evaluation.
        "group_eval_order": order,
        "tests": tests,
    }


def _merge(groups: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """One test group of ``groups`` (on one sample interval, each on its own series)."""
    if len(groups) == 1:
        return groups[0]
    out: dict[str, Any] = {
        "name": "; ".join(group["name"] for group in groups),
        "interval": groups[0]["interval"],
    }
    for key in ("input_series", "alert_rule_test", "promql_expr_test"):
        items = [item for group in groups for item in group.get(key, [])]
        if items or key != "promql_expr_test":
            out[key] = items
    return out


# -- time, in whole milliseconds -----------------------------------------------------------------


def _ms(seconds: float) -> int:
    return round(seconds * 1000)


def _ceil(value: int, step: int) -> int:
    return -(-value // step) * step


def _duration(ms: int) -> str:
    return format_duration(ms / 1000) if ms else "0s"


def _sample_interval(grid: int, short: int) -> int:
    """The largest divisor of ``grid`` no longer than a fifth of ``short`` (or 1 ms)."""
    bound = max(1, short // 5)
    best = 1
    for low in range(1, math.isqrt(grid) + 1):
        if grid % low == 0:
            for divisor in (low, grid // low):
                if best < divisor <= bound:
                    best = divisor
    return best


def _round_number(least: float) -> int:
    """The smallest of 1, 2, 5, 10, 20, ... that is at least ``least``."""
    power = 1
    while True:
        for digit in (1, 2, 5):
            if digit * power >= least:
                return digit * power
        power *= 10


# -- traffic and what the rules see of it --------------------------------------------------------


class _Traffic:
    """Whole calls, and bad ones among them, in each sample interval; the counters start at 0
    at the first sample. What ``rate()`` over a window times its length gives is the calls of
    the intervals ending in it: the windows' edges fall on samples, and a window reaching back
    before the first sample reads counters from zero (no extrapolation)."""

    def __init__(self, interval: int) -> None:
        self.interval = interval
        self.calls: list[int] = []
        self.bad: list[int] = []

    @property
    def end(self) -> int:
        return len(self.calls) * self.interval

    def steps(self, until: int) -> int:
        if until % self.interval or until < self.end:
            raise ValueError(f"{until} ms is not a sample after {self.end} ms")
        return (until - self.end) // self.interval

    def steady(self, until: int, calls: int, bad: int = 0) -> _Traffic:
        """``calls`` an interval, ``bad`` of them bad, until ``until``."""
        count = self.steps(until)
        self.calls += [calls] * count
        self.bad += [bad] * count
        return self

    def spread(self, until: int, calls: int) -> _Traffic:
        """``calls`` bad calls spread evenly over the intervals until ``until``, the last one
        of them holding one (when there are calls)."""
        count = self.steps(until)
        placed = [(k + 1) * calls // count - k * calls // count for k in range(count)]
        self.calls += placed
        self.bad += placed
        return self

    def between(self, start: int, end: int) -> tuple[int, int]:
        """(calls, bad calls) of the intervals ending in ``(start, end]``."""
        first, last = max(0, start) // self.interval, end // self.interval
        return sum(self.calls[first:last]), sum(self.bad[first:last])

    def ratio(self, end: int, window: int) -> float:
        calls, bad = self.between(end - window, end)
        return bad / calls if calls else math.nan


def _values(increments: Sequence[int]) -> str:
    """A counter from 0 growing by ``increments``, in promtool's expanding notation
    (``0+60x10 600x5``: 11 samples from 0 by 60, then 5 of 600)."""
    runs: list[tuple[int, int]] = []
    for step in increments:
        if runs and runs[-1][0] == step:
            runs[-1] = (step, runs[-1][1] + 1)
        else:
            runs.append((step, 1))
    items: list[str] = []
    value = 0
    for index, (step, count) in enumerate(runs):
        start, times = (0, count) if index == 0 else (value + step, count - 1)
        items.append(f"{start}+{step}x{times}" if step else f"{start}x{times}")
        value = start + step * times
    return " ".join(items) if items else "0"


def _le(bound: float) -> str:
    """A bucket bound as prometheus-client writes it: ``0.25``, ``1.0``, ``+Inf``."""
    return "+Inf" if math.isinf(bound) else repr(float(bound))


def _series(name: str, labels: dict[str, str], increments: Sequence[int]) -> dict[str, str]:
    inner = ",".join(f"{key}={_quote(value)}" for key, value in labels.items())
    return {"series": f"{SERIES}_{name}{{{inner}}}", "values": _values(increments)}


def _split(total: int, parts: int) -> list[int]:
    """``total`` in ``parts`` whole shares, the first ones larger by one when it must."""
    share, left = divmod(total, parts)
    return [share + (1 if index < left else 0) for index in range(parts)]


def _input_series(slo: SLO, traffic: _Traffic) -> list[dict[str, str]]:
    """seawall's series for ``slo``'s operation carrying ``traffic``: its calls and bad calls
    as the SLI defines them, with series the SLI must leave out beside them."""
    calls, bad = traffic.calls, traffic.bad
    good = [c - b for c, b in zip(calls, bad, strict=True)]
    op = {"operation": slo.operation}
    if slo.sli == "availability":
        bad_outcomes = [o for o in OUTCOMES if o in slo.bad_outcomes]
        others = [o for o in OUTCOMES if o not in slo.bad_outcomes and o != "success"]
        others = [o for o in others if o != "cancelled"]  # good, besides success: a fifth
        counts: dict[str, list[int]] = {o: [] for o in OUTCOMES}
        for c, b, g in zip(calls, bad, good, strict=True):
            for outcome, share in zip(bad_outcomes, _split(b, len(bad_outcomes)), strict=True):
                counts[outcome].append(share)
            other = _split(g // 5, len(others)) if others else []
            for outcome, share in zip(others, other, strict=True):
                counts[outcome].append(share)
            counts["success"].append(g - sum(other))
            if "cancelled" not in bad_outcomes:
                counts["cancelled"].append(c // 4)  # neither good nor bad: in no count
        return [
            _series("count", {**op, "outcome": outcome}, counts[outcome])
            for outcome in OUTCOMES
            if counts[outcome]
        ]
    assert slo.threshold is not None
    threshold = float(slo.threshold)
    index = DURATION_BUCKETS.index(threshold)
    below = DURATION_BUCKETS[index - 1] if index else None
    above = DURATION_BUCKETS[index + 1] if index + 1 < len(DURATION_BUCKETS) else None
    success = {**op, "outcome": "success"}
    out = [_series("count", success, calls)]
    if below is not None:
        out.append(_series("bucket", {**success, "le": _le(below)}, [g // 2 for g in good]))
    out.append(_series("bucket", {**success, "le": _le(threshold)}, good))
    if above is not None:
        out.append(_series("bucket", {**success, "le": _le(above)}, calls))
    out.append(_series("bucket", {**success, "le": "+Inf"}, calls))
    # Slow failures: the latency SLI reads successful calls only.
    failure = {**op, "outcome": "failure"}
    slow = [c // 10 for c in calls]
    out.append(_series("count", failure, slow))
    out.append(_series("bucket", {**failure, "le": _le(threshold)}, [0] * len(calls)))
    out.append(_series("bucket", {**failure, "le": "+Inf"}, slow))
    return out


# -- expectations --------------------------------------------------------------------------------


def _humanize_percentage(value: float) -> str:
    """Prometheus's ``humanizePercentage``: ``fmt.Sprintf("%.4g%%", v*100)``."""
    low, high = (f"{value * 100 * (1 + d):.4g}%" for d in (-1e-9, 1e-9))
    if low != high:
        raise _Ambiguous(f"{value!r} rounds either way")
    return low


def _render(text: str, value: float) -> str:
    out = text.replace(_VALUE, _humanize_percentage(value)) if _VALUE in text else text
    if "{{" in out:
        raise ValueError(f"an annotation template the tests cannot render: {text!r}")
    return out


def _above(value: float, threshold: float) -> bool:
    """``value > threshold`` as Prometheus decides it; ambiguous when within a float's reach."""
    if math.isnan(value):
        return False
    if abs(value - threshold) <= _CLOSE * abs(threshold):
        raise _Ambiguous(f"{value!r} is {threshold!r} to a float's last bits")
    return value > threshold


def _billionths(value: float) -> int:
    scaled = value * 1e9
    if abs(scaled - math.floor(scaled) - 0.5) < 1e-3:
        raise _Ambiguous(f"{value!r} in billionths rounds either way")
    return math.floor(scaled + 0.5)


class _Plan:
    def __init__(self, spec: Spec) -> None:
        self.spec = spec
        longs = [_ms(w.long) for w in spec.windows]
        grid = math.gcd(*longs)
        with_missing = math.gcd(grid, _ms(spec.missing_for))
        if max(longs) // with_missing <= MAX_STEPS:
            self.step = with_missing
        else:
            self.step = grid * -(-max(longs) // (grid * MAX_STEPS))

    # -- the pieces of every group -------------------------------------------------------------

    def threshold(self, slo: SLO, window: Window) -> float:
        # The spec's factor, never below 1 (under 1x the budget outlasts the period).
        return max(1.0, window.budget * slo.period / window.long) * slo.budget

    def volume(self, slo: SLO) -> int:
        """Calls an interval when traffic is plenty: a round number, enough for a burn of
        1.05x the lowest threshold to be one to a thousand, and for a window of five
        intervals to hold twenty times the guard."""
        lowest = min(self.threshold(slo, w) for w in self.spec.windows)
        return _round_number(max(1000 / lowest, 4 * self.spec.min_events))

    def selector(self, slo: SLO) -> str:
        return f"{{service={_quote(self.spec.service)},slo={_quote(slo.name)}}}"

    def peers(self, window: Window) -> list[Window]:
        """The windows whose alerts share ``window``'s name."""
        return [w for w in self.spec.windows if w.severity == window.severity]

    def interval(self, window: Window) -> int:
        """A group's sample interval: a fifth of ``window``'s short window or less, dividing
        the evaluation interval and every window its alert name reads."""
        peers = self.peers(window)
        windows = [_ms(w.long) for w in peers] + [_ms(w.short) for w in peers]
        return _sample_interval(math.gcd(self.step, *windows), _ms(window.short))

    def alerts(self, slo: SLO, window: Window, traffic: _Traffic, at: int) -> list[dict[str, Any]]:
        """What promtool must list for ``window``'s alert name at ``at``: every rule of that
        name whose long and short windows are both above its threshold with enough calls."""
        name = alert_names(slo)[window.severity]
        by_windows = {
            (r["labels"]["long_window"], r["labels"]["short_window"]): r
            for r in alert_rules(self.spec, slo)
            if r["alert"] == name
        }
        out = []
        for peer in self.peers(window):
            threshold = self.threshold(slo, peer)
            long_ratio = traffic.ratio(at, _ms(peer.long))
            calls, _ = traffic.between(at - _ms(peer.long), at)
            long_above = _above(long_ratio, threshold)
            short_above = _above(traffic.ratio(at, _ms(peer.short)), threshold)
            if not (long_above and short_above and calls >= self.spec.min_events):
                continue
            long_, short = _duration(_ms(peer.long)), _duration(_ms(peer.short))
            rule = by_windows[(long_, short)]
            out.append(
                {
                    "exp_labels": {
                        "service": self.spec.service,
                        "slo": slo.name,
                        "severity": peer.severity,
                        "long_window": long_,
                        "short_window": short,
                    },
                    "exp_annotations": {
                        key: _render(text, long_ratio) for key, text in rule["annotations"].items()
                    },
                }
            )
        return out

    def fires(self, alerts: list[dict[str, Any]], window: Window) -> bool:
        labels = {"long_window": _duration(_ms(window.long))}
        labels["short_window"] = _duration(_ms(window.short))
        return any(all(a["exp_labels"][k] == v for k, v in labels.items()) for a in alerts)

    def group(
        self,
        name: str,
        slo: SLO,
        traffic: _Traffic,
        alerts: list[dict[str, Any]],
        exprs: Sequence[dict[str, Any]] = (),
    ) -> dict[str, Any]:
        out: dict[str, Any] = {
            "name": name,
            "interval": _duration(traffic.interval),
            "input_series": _input_series(slo, traffic),
            "alert_rule_test": alerts,
        }
        if exprs:
            out["promql_expr_test"] = list(exprs)
        return out

    def settle(self, tries: Sequence[_T], build: Callable[[_T], dict[str, Any]]) -> Any:
        """``build`` at the first of ``tries`` whose checks are all clear of their edges."""
        problems = []
        for value in tries:
            try:
                return build(value)
            except _Ambiguous as exc:
                problems.append(str(exc))
        raise RuntimeError(f"no test clear of its thresholds: {'; '.join(problems)}")

    def check(self, name: str, at: int, alerts: list[dict[str, Any]]) -> dict[str, Any]:
        return {"eval_time": _duration(at), "alertname": name, "exp_alerts": alerts}

    def title(self, slo: SLO, window: Window, what: str) -> str:
        return (
            f"{slo.name}: {alert_names(slo)[window.severity]} "
            f"({format_duration(window.long)}/{format_duration(window.short)}) {what}"
        )

    # -- the groups ---------------------------------------------------------------------------

    def silent(self, slo: SLO, window: Window) -> dict[str, Any]:
        """A burn at 0.95x the threshold over the whole long window, checked when both windows
        are full: no alert for the window."""
        long = _ms(window.long)
        at = _ceil(long, self.step)
        threshold = self.threshold(slo, window)
        name = alert_names(slo)[window.severity]
        volume = self.volume(slo)

        def build(times: float) -> dict[str, Any]:
            bad = round(volume * times * threshold)
            traffic = _Traffic(self.interval(window)).steady(at - long, volume)
            traffic.steady(at, volume, bad)
            alerts = self.alerts(slo, window, traffic, at)
            assert not self.fires(alerts, window)
            title = self.title(
                slo,
                window,
                f"stays silent at {bad / volume / threshold:.4g}x its threshold burn: "
                f"{bad} of every {volume} calls bad over the whole {format_duration(window.long)} "
                f"(threshold {threshold:.6g})",
            )
            return self.group(title, slo, traffic, [self.check(name, at, alerts)])

        result: dict[str, Any] = self.settle([SILENT - k * 0.005 for k in range(9)], build)
        return result

    def fire_and_resolve(self, slo: SLO, window: Window) -> dict[str, Any]:
        """A burn at 1.05x the threshold over the whole long window fires, checked when both
        windows are full; the burn goes on, then stops, and the alert is gone at stop + short
        window + one sample, while the long window alone would still be above the threshold."""
        long, short = _ms(window.long), _ms(window.short)
        interval = self.interval(window)
        fired = _ceil(long, self.step)
        threshold = self.threshold(slo, window)
        name = alert_names(slo)[window.severity]
        selector = self.selector(slo)
        volume = self.volume(slo)

        def timeline(first: int, margin: float) -> tuple[int, int, int, bool]:
            """(stop, gone, the bad calls an interval after the first check, whether the long
            window can still hold ``margin`` x the threshold when the alert is gone)."""
            earliest = _ceil(fired + short + interval, self.step)
            gone = earliest
            while True:
                stop = gone - short - interval
                kept = first * max(0, fired - (gone - long))  # the first burn, still in
                span = stop - max(fired, gone - long)  # the second burn, in it
                need = (margin * threshold * volume * long - kept) / span if span > 0 else math.inf
                if need <= volume:
                    return stop, gone, max(math.ceil(need), first), True
                if gone - long >= fired:  # later checks see no more of the burn
                    return earliest - short - interval, earliest, first, False
                gone += self.step

        def build(tries: tuple[float, float]) -> dict[str, Any]:
            times, margin = tries
            first = round(volume * times * threshold)
            stop, gone, second, above = timeline(first, margin)
            traffic = _Traffic(interval).steady(fired - long, volume)
            traffic.steady(fired, volume, first).steady(stop, volume, second)
            traffic.steady(gone, volume)
            fires = self.alerts(slo, window, traffic, fired)
            checks = [self.check(name, fired, fires)]
            # After the stop, at every evaluation: firing while the short window holds some of
            # the burn above the threshold, then gone for good.
            for at in range(_ceil(stop + 1, self.step), gone, self.step):
                checks.append(self.check(name, at, self.alerts(slo, window, traffic, at)))
            after = self.alerts(slo, window, traffic, gone)
            checks.append(self.check(name, gone, after))
            assert self.fires(fires, window)
            assert not self.fires(after, window)
            exprs = [
                {
                    "expr": f"round({ERROR_RATIO}{_duration(short)}{selector} * 1e9)",
                    "eval_time": _duration(gone),
                    "exp_samples": [{"labels": selector, "value": 0}],
                }
            ]
            still = traffic.ratio(gone, long)
            if above and _above(still, threshold * 1.01):
                exprs.append(
                    {
                        "expr": f"{ERROR_RATIO}{_duration(long)}{selector} > bool {threshold:.10g}",
                        "eval_time": _duration(gone),
                        "exp_samples": [{"labels": selector, "value": 1}],
                    }
                )
                tail = f", while the {format_duration(window.long)} window holds {still:.6g}"
            else:
                tail = f" (the {format_duration(window.long)} window cannot stay above)"
            burn = "goes on" if second == first else f"goes on at {second} of every {volume}"
            title = self.title(
                slo,
                window,
                f"fires at {first / volume / threshold:.4g}x its threshold burn: {first} of "
                f"every {volume} calls bad over the whole {format_duration(window.long)} "
                f"(threshold {threshold:.6g}); the burn {burn} until {_duration(stop)} and "
                f"stops: gone at {_duration(gone)}, {_duration(short + interval)} later{tail}",
            )
            return self.group(title, slo, traffic, checks, exprs)

        # Margins clear of round decimals: a ratio like 0.0066875 sits on a rounding edge of
        # the annotation's 4 digits.
        margins = (1.2345, 1.2789, 1.3123, 1.1987, 1.3711)
        tries = [(FIRE + k * 0.005, m) for k in range(9) for m in margins]
        result: dict[str, Any] = self.settle(tries, build)
        return result

    def guard(self, slo: SLO, window: Window) -> dict[str, Any]:
        """Every call bad, but min_events - 1 calls in the long window: silent; one evaluation
        later, with min_events + 1 calls in it: fires."""
        long = _ms(window.long)
        at = _ceil(long, self.step)
        later = at + self.step
        few = self.spec.min_events - 1
        traffic = _Traffic(self.interval(window)).steady(at - long, 0).spread(at, few)
        kept, _ = traffic.between(later - long, at)  # of those, still in the window later
        traffic.steady(later - min(long, self.step), 0)
        traffic.spread(later, self.spec.min_events + 1 - kept)
        name = alert_names(slo)[window.severity]

        def build(_: None) -> dict[str, Any]:
            silent = self.alerts(slo, window, traffic, at)
            fires = self.alerts(slo, window, traffic, later)
            assert not self.fires(silent, window)
            assert self.fires(fires, window)
            title = self.title(
                slo,
                window,
                f"stays silent with {few} calls in {format_duration(window.long)}, all bad "
                f"(min_events {self.spec.min_events}), fires with "
                f"{self.spec.min_events + 1}",
            )
            checks = [self.check(name, at, silent), self.check(name, later, fires)]
            return self.group(title, slo, traffic, checks)

        result: dict[str, Any] = self.settle([None], build)
        return result

    def parts(self, slo: SLO) -> list[tuple[str, dict[str, Any]]]:
        """``slo``'s test groups, each by what it checks (the same for every SLO)."""
        out = [("idle", self.idle(slo))]
        out += [(f"recorded {n}", group) for n, group in enumerate(self.recorded(slo))]
        for n, window in enumerate(self.spec.windows):
            out.append((f"window {n} fires", self.fire_and_resolve(slo, window)))
            out.append((f"window {n} silent", self.silent(slo, window)))
            out.append((f"window {n} guard", self.guard(slo, window)))
        return out

    def idle(self, slo: SLO) -> dict[str, Any]:
        """The operation's series exist but hold no calls: every events rate is 0, and no
        error ratio and no budget left has a sample (not NaN), as budget() gives None."""
        windows = windows_of(self.spec, slo)
        interval = math.gcd(self.step, *(_ms(w) for w in windows))
        at = self.step  # every window holds two samples or more: its rate is 0
        traffic = _Traffic(interval).steady(at, 0)
        selector = self.selector(slo)

        def check(record: str, samples: list[dict[str, Any]]) -> dict[str, Any]:
            return {
                "expr": f"{record}{selector}",
                "eval_time": _duration(at),
                "exp_samples": samples,
            }

        exprs = []
        for seconds in windows:
            window = _duration(_ms(seconds))
            exprs.append(check(f"{ERROR_RATIO}{window}", []))
            exprs.append(check(f"{EVENTS_RATE}{window}", [{"labels": selector, "value": 0}]))
            exprs[-1]["expr"] = f"round({exprs[-1]['expr']} * 1e9)"  # as the others: no name
        exprs.append(check(BUDGET_REMAINING, []))
        title = (
            f"{slo.name}: no calls, its series at 0 until {_duration(at)}: every events rate 0, "
            "no error ratio and no budget left (no sample, not NaN)"
        )
        return self.group(title, slo, traffic, [], exprs)

    def recorded(self, slo: SLO) -> list[dict[str, Any]]:
        """The recording rules' values. The windows that are whole evaluation intervals are
        checked at the longest alert window's end, sampled at the evaluation interval; the
        others (5m, 30m, 1h for the default windows) early, sampled finer: each group costs
        its evaluations, and a fine sampling over days is slow."""
        windows = sorted(
            {w.long for w in self.spec.windows}
            | {w.short for w in self.spec.windows}
            | {slo.period}
        )
        coarse = [w for w in windows if _ms(w) % self.step == 0]
        fine = [w for w in windows if _ms(w) % self.step]
        if not coarse or not fine:
            return [self.values(slo, windows, last=True)]
        return [self.values(slo, fine, last=False), self.values(slo, coarse, last=True)]

    def period(self, slo: SLO, traffic: _Traffic, at: int) -> tuple[float, float]:
        """(error ratio, events per second) over ``slo``'s period at ``at``, as its rules make
        them: from the recorded rates over the shortest window, at every evaluation in the
        period that has them (none at 0: one sample), the period's start included (as
        Prometheus 2 takes a range); the errors summed over the events summed, and the events
        rates' mean. From seawall's series, when the period is an alert window too."""
        period = _ms(slo.period)
        if not period_from_rates(self.spec, slo):
            calls, _ = traffic.between(at - period, at)
            return traffic.ratio(at, period), calls / slo.period
        shortest = _ms(windows_of(self.spec, slo)[0])
        start = max(self.step, _ceil(at - period, self.step))
        seen = [traffic.between(t - shortest, t) for t in range(start, at + 1, self.step)]
        calls, bad = sum(c for c, _ in seen), sum(b for _, b in seen)
        return (bad / calls if calls else math.nan), calls / len(seen) / (shortest / 1000)

    def values(self, slo: SLO, windows: Sequence[float], last: bool) -> dict[str, Any]:
        """The traffic doubles, and errors start, in the last of the shortest of ``windows``, so
        each window holds its own ratio and rate; checked in billionths, when every alert
        window among ``windows`` is full (the period may not be: counters start from zero at
        the first sample, it reads them all). ``last``: with the objective, the budget left and
        the missing-SLI alert silent while the series exist."""
        alert_windows = {w.long for w in self.spec.windows} | {w.short for w in self.spec.windows}
        longest = max((_ms(w) for w in windows if w in alert_windows), default=self.step)
        at = _ceil(longest, self.step) + self.step
        recorded = windows_of(self.spec, slo)[0]  # the rates the period's rules sum
        grid = [_ms(w) for w in windows if _ms(w) <= at]
        if slo.period in windows and period_from_rates(self.spec, slo):
            grid.append(_ms(recorded))  # its rate at every evaluation: two samples or more
        interval = math.gcd(self.step, *grid)
        shortest = _ms(min(windows))
        selector = self.selector(slo)
        name = alert_names(slo, self.spec)["missing"]
        volume = self.volume(slo)

        def value(expr: str, number: float) -> dict[str, Any]:
            return {
                "expr": f"round({expr}{selector} * 1e9)",
                "eval_time": _duration(at),
                "exp_samples": [{"labels": selector, "value": _billionths(number)}],
            }

        def build(errors: float) -> dict[str, Any]:
            bad = round(2 * volume * errors)
            traffic = _Traffic(interval).steady(at - shortest, volume)
            traffic.steady(at, 2 * volume, bad)
            exprs = []
            for seconds in windows:
                window = _duration(_ms(seconds))
                calls, errors = traffic.between(at - _ms(seconds), at)
                ratio, rate = traffic.ratio(at, _ms(seconds)), calls / seconds
                if seconds == slo.period:
                    ratio, rate = self.period(slo, traffic, at)
                exprs.append(value(f"{ERROR_RATIO}{window}", ratio))
                exprs.append(value(f"{EVENTS_RATE}{window}", rate))
                if seconds == recorded:
                    exprs.append(value(f"{ERRORS_RATE}{window}", errors / seconds))
            checks = []
            if last:
                exprs.append(value(OBJECTIVE, slo.objective / 100))
                remaining = 1 - self.period(slo, traffic, at)[0] / slo.budget
                exprs.append(value(BUDGET_REMAINING, remaining))
                checks.append(self.check(name, at, []))
            listed = ", ".join(format_duration(w) for w in windows)
            title = (
                f"{slo.name}: the recording rules over {listed} at {_duration(at)} (in "
                f"billionths): {volume} calls every {_duration(interval)}, {2 * volume} in the "
                f"last {_duration(shortest)} with {bad} of them bad"
            )
            if slo.period in windows and period_from_rates(self.spec, slo):
                title += (
                    f"; over {format_duration(slo.period)}, the {format_duration(recorded)} rates "
                    f"of every evaluation (each {_duration(self.step)}) summed"
                )
            if last:
                title += f"; the objective, the budget left, {name} silent"
            return self.group(title, slo, traffic, checks, exprs)

        result: dict[str, Any] = self.settle([0.01, 0.02, 0.03, 0.05, 0.04, 0.015], build)
        return result

    def missing(self) -> dict[str, Any]:
        """No series for any SLO's operation (one for another operation): each operation's
        missing-SLI alert (its first SLO's, for all of them) is pending until missing_for,
        then fires, once."""
        missing_for = _ms(self.spec.missing_for)
        fires = _ceil(missing_for, self.step)
        before = fires - self.step
        operations = {slo.operation for slo in self.spec.slos}
        other = "other"
        while other in operations:
            other += "-other"
        calls = [100] * (fires // self.step)
        series = [_series("count", {"operation": other, "outcome": "success"}, calls)]
        checks = []
        exprs = []
        for slo in self.spec.slos:
            if sharing(self.spec, slo)[0] != slo:
                continue  # the operation's alert is its first SLO's
            name = alert_names(slo)["missing"]
            [rule] = [r for r in alert_rules(self.spec, slo) if r["alert"] == name]
            labels = {"operation": slo.operation, **rule["labels"]}
            checks.append(self.check(name, before, []))
            checks.append(
                self.check(
                    name,
                    fires,
                    [{"exp_labels": labels, "exp_annotations": dict(rule["annotations"])}],
                )
            )
            pending = {"alertname": name, "alertstate": "pending", **labels}
            inner = ",".join(f"{k}={_quote(v)}" for k, v in sorted(pending.items()))
            exprs.append(
                {
                    "expr": f"ALERTS{{alertname={_quote(name)}}}",
                    "eval_time": _duration(before),
                    "exp_samples": [{"labels": f"ALERTS{{{inner}}}", "value": 1}],
                }
            )
        title = (
            f"no series for {', '.join(sorted(operations))}: every missing-SLI alert pending "
            f"at {_duration(before)}, firing at {_duration(fires)} (missing_for "
            f"{format_duration(self.spec.missing_for)}, evaluated every {_duration(self.step)})"
        )
        return {
            "name": title,
            "interval": _duration(self.step),
            "input_series": series,
            "alert_rule_test": checks,
            "promql_expr_test": exprs,
        }
