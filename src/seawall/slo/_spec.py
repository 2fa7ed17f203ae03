"""SLO specifications: objectives on seawall's SLIs, from Python or a small YAML file, checked.

Every check names the field it is about (``slos[1].threshold: ...``): a spec that passes them
generates rules that can fire, on windows the scrape interval can fill.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from seawall._stats.counters import DURATION_BUCKETS

__all__ = [
    "BAD_OUTCOMES",
    "DEFAULT_WINDOWS",
    "OUTCOMES",
    "SLO",
    "Spec",
    "SpecError",
    "Window",
    "format_duration",
    "load",
    "parse_duration",
]

#: Every outcome of ``seawall_call_duration_seconds``.
OUTCOMES = ("success", "failure", "timeout", "rejected", "cancelled", "fallback")
#: What the availability SLI counts as bad by default: every outcome but a success and a
#: cancellation (the caller gave up: neither good nor bad). A fallback is bad: the dependency
#: failed, whatever the caller was answered.
BAD_OUTCOMES = ("failure", "timeout", "rejected", "fallback")
SLIS = ("availability", "latency")
SEVERITIES = ("page", "ticket")

_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}
_DURATION = re.compile(r"(\d+)(ms|s|m|h|d|w)")
_NAME = re.compile(r"[a-z0-9][a-z0-9_-]*")


def camel(name: str) -> str:
    """An SLO's name as its alerts start: ``payments-availability`` → ``PaymentsAvailability``."""
    return "".join(part[:1].upper() + part[1:] for part in re.split(r"[-_]", name) if part)


class SpecError(ValueError):
    """A spec that cannot give working rules; the message starts with the field."""


def parse_duration(where: str, value: object) -> float:
    """Seconds from a Prometheus duration (``30d``, ``1h30m``, ``500ms``) or a number."""
    if isinstance(value, bool):
        raise SpecError(f"{where}: a duration such as '30d' or a number of seconds, got {value!r}")
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str):
        text = value.strip()
        parts = _DURATION.findall(text)
        if not parts or "".join(n + u for n, u in parts) != text:
            raise SpecError(f"{where}: a duration such as '30d', '1h30m' or '5m', got {value!r}")
        seconds = sum(int(number) * _UNITS[unit] for number, unit in parts)
    else:
        raise SpecError(f"{where}: a duration such as '30d' or a number of seconds, got {value!r}")
    if not (seconds > 0 and math.isfinite(seconds)):
        raise SpecError(f"{where}: must be a positive, finite duration, got {value!r}")
    return seconds


def format_duration(seconds: float) -> str:
    """``seconds`` as Prometheus writes a duration: ``3600`` → ``1h``, ``90`` → ``1m30s``."""
    millis = round(seconds * 1000)
    if millis <= 0:
        raise ValueError(f"a duration must be positive, got {seconds!r}")
    out = []
    for unit, size in (("d", 86_400_000), ("h", 3_600_000), ("m", 60_000), ("s", 1000)):
        count, millis = divmod(millis, size)
        if count:
            out.append(f"{count}{unit}")
    if millis:
        out.append(f"{millis}ms")
    return "".join(out)


@dataclass(frozen=True)
class Window:
    """One multi-window burn-rate alert: it fires at ``severity`` when both the ``long`` and
    the ``short`` window (seconds) burn the error budget fast enough to spend ``budget`` (a
    share of it) in ``long``. Its burn factor is ``budget * period / long``: 14.4 for 2% of a
    30-day budget in an hour; but never below 1 (see :meth:`factor`)."""

    severity: str
    long: float
    short: float
    budget: float

    def factor(self, period: float) -> float:
        """The burn rate the alert fires above, over a ``period`` budget: at least 1. Below 1
        it would fire while the budget outlasts the period (the SLO met): the 1-day and 3-day
        ticket windows on a 7-day period (0.7 and 0.23) alert at 1x instead, the slowest burn
        that spends the budget within the period."""
        return max(1.0, self.budget * period / self.long)

    def spent(self, period: float) -> float:
        """The share of a ``period`` budget spent in ``long`` at :meth:`factor`: ``budget``,
        or more where the factor was raised to 1."""
        return self.factor(period) * self.long / period


#: The SRE workbook's: page at 2% of the budget in 1 h (with 5 m) or 5% in 6 h (with 30 m);
#: ticket at 10% in 1 d (with 2 h) or 10% in 3 d (with 6 h). For a 30-day period their burn
#: factors are 14.4, 6, 3 and 1.
DEFAULT_WINDOWS: tuple[Window, ...] = (
    Window("page", 3600.0, 300.0, 0.02),
    Window("page", 21600.0, 1800.0, 0.05),
    Window("ticket", 86400.0, 7200.0, 0.10),
    Window("ticket", 259200.0, 21600.0, 0.10),
)


@dataclass(frozen=True)
class SLO:
    """One objective on an operation's SLI.

    ``sli="availability"``: the share of the operation's calls (cancelled ones aside) whose
    outcome is not among ``bad_outcomes``. ``sli="latency"``: the share of its successful
    calls that took at most ``threshold`` seconds (a bucket bound of
    ``seawall_call_duration_seconds``). ``objective`` is a percentage, ``period`` seconds.
    """

    name: str
    operation: str
    sli: str
    objective: float
    period: float = 30 * 86400.0
    threshold: float | None = None
    bad_outcomes: tuple[str, ...] = BAD_OUTCOMES
    description: str = ""

    @property
    def budget(self) -> float:
        """The error budget: the share of bad events the objective allows."""
        return 1.0 - self.objective / 100.0


@dataclass(frozen=True)
class Spec:
    """A service's SLOs and how its rules are made.

    ``scrape_interval``: Prometheus's, for this service: every window must hold at least
    four scrapes. ``windows``: the burn-rate alerts (:data:`DEFAULT_WINDOWS`).
    ``min_events``: the low-traffic guard: a burn-rate alert needs at least this many calls
    in its long window. ``missing_for``: how long the SLI's series may be absent before its
    alert fires. ``runbook_url``: where each alert's runbook is, ``{alert}`` standing for the
    alert's name.
    """

    service: str
    slos: tuple[SLO, ...]
    scrape_interval: float = 60.0
    windows: tuple[Window, ...] = DEFAULT_WINDOWS
    min_events: int = 10
    missing_for: float = 600.0
    runbook_url: str = "runbooks/{alert}.md"

    def __post_init__(self) -> None:
        check(self)


def check(spec: Spec) -> None:
    """Raise :class:`SpecError`, naming the field, for anything that would not work."""
    if not isinstance(spec.service, str) or not _NAME.fullmatch(spec.service):
        raise SpecError(f"service: lower-case letters, digits, '-' and '_', got {spec.service!r}")
    if not spec.slos:
        raise SpecError("slos: at least one SLO")
    if not isinstance(spec.min_events, int) or isinstance(spec.min_events, bool):
        raise SpecError(f"min_events: a whole number of calls, got {spec.min_events!r}")
    if spec.min_events < 1:
        raise SpecError(f"min_events: at least 1, got {spec.min_events}")
    if "{alert}" not in spec.runbook_url:
        raise SpecError(f"runbook_url: must contain {{alert}}, got {spec.runbook_url!r}")
    scrape = spec.scrape_interval
    if not (scrape > 0 and math.isfinite(scrape)):
        raise SpecError(f"scrape_interval: a positive duration, got {scrape!r}")
    if spec.missing_for < 2 * scrape:
        raise SpecError(
            f"missing_for: {format_duration(spec.missing_for)} is under two scrapes "
            f"({format_duration(scrape)} each): one late scrape would fire it"
        )
    if not spec.windows:
        raise SpecError("windows: at least one burn-rate window")
    for index, window in enumerate(spec.windows):
        where = f"windows[{index}]"
        if window.severity not in SEVERITIES:
            raise SpecError(
                f"{where}.severity: one of {', '.join(SEVERITIES)}, got {window.severity!r}"
            )
        if not 0 < window.budget <= 1:
            raise SpecError(
                f"{where}.budget: a share of the error budget in (0, 1], got {window.budget!r}"
            )
        if not window.short < window.long:
            raise SpecError(
                f"{where}.short: must be shorter than long ({format_duration(window.long)})"
            )
        if window.short < 4 * scrape:
            raise SpecError(
                f"{where}.short: {format_duration(window.short)} holds fewer than 4 scrapes of "
                f"{format_duration(scrape)}: its rate would be noise or empty"
            )
    names: dict[str, str] = {}
    for index, slo in enumerate(spec.slos):
        where = f"slos[{index}]"
        _check_slo(where, slo, spec)
        if slo.name in names.values():
            raise SpecError(f"{where}.name: {slo.name!r} is used twice")
        alerts = camel(slo.name)
        if alerts in names:
            raise SpecError(
                f"{where}.name: {slo.name!r} and {names[alerts]!r} would name the same alerts "
                f"({alerts}...)"
            )
        names[alerts] = slo.name


def _check_slo(where: str, slo: SLO, spec: Spec) -> None:
    if not isinstance(slo.name, str) or not _NAME.fullmatch(slo.name):
        raise SpecError(f"{where}.name: lower-case letters, digits, '-' and '_', got {slo.name!r}")
    if not isinstance(slo.operation, str) or not slo.operation:
        raise SpecError(
            f"{where}.operation: the seawall operation (policy) name, got {slo.operation!r}"
        )
    if slo.sli not in SLIS:
        raise SpecError(f"{where}.sli: one of {', '.join(SLIS)}, got {slo.sli!r}")
    objective = slo.objective
    if isinstance(objective, bool) or not isinstance(objective, int | float):
        raise SpecError(f"{where}.objective: a percentage such as 99.5, got {objective!r}")
    if not 0 < objective < 100:
        raise SpecError(f"{where}.objective: a percentage in (0, 100), got {objective!r}")
    if slo.sli == "latency":
        if slo.threshold is None:
            raise SpecError(f"{where}.threshold: a latency SLO needs one (seconds)")
        if float(slo.threshold) not in DURATION_BUCKETS:
            bounds = ", ".join(f"{bound:g}" for bound in DURATION_BUCKETS)
            raise SpecError(
                f"{where}.threshold: {slo.threshold!r} is not a bucket bound of "
                f"seawall_call_duration_seconds ({bounds})"
            )
    elif slo.threshold is not None:
        raise SpecError(f"{where}.threshold: only a latency SLO has one")
    for outcome in slo.bad_outcomes:
        if outcome == "cancelled":
            raise SpecError(
                f"{where}.bad_outcomes: 'cancelled' counts neither way (the caller gave up): it "
                "is outside the SLI"
            )
        if outcome not in OUTCOMES or outcome == "success":
            known = ", ".join(o for o in OUTCOMES if o not in ("success", "cancelled"))
            raise SpecError(f"{where}.bad_outcomes: unknown outcome {outcome!r} (known: {known})")
    if not slo.bad_outcomes:
        raise SpecError(f"{where}.bad_outcomes: at least one outcome")
    longest = max(window.long for window in spec.windows)
    if slo.period < longest:
        raise SpecError(
            f"{where}.period: {format_duration(slo.period)} is shorter than the longest alert "
            f"window ({format_duration(longest)})"
        )
    if slo.period < 4 * spec.scrape_interval:
        raise SpecError(f"{where}.period: shorter than four scrapes")
    for index, window in enumerate(spec.windows):
        threshold = window.factor(slo.period) * slo.budget
        if threshold >= 1.0:
            raise SpecError(
                f"{where}.objective: {objective:g}% leaves a budget of {slo.budget:.4g}; "
                f"windows[{index}] burns it {window.factor(slo.period):.4g}x, an error ratio of "
                f"{threshold:.4g}: it can never fire"
            )


# -- reading a spec ------------------------------------------------------------------------------

_SPEC_KEYS = {
    "service",
    "slos",
    "scrape_interval",
    "windows",
    "min_events",
    "missing_for",
    "runbook_url",
}
_SLO_KEYS = {
    "name",
    "operation",
    "sli",
    "objective",
    "period",
    "threshold",
    "bad_outcomes",
    "description",
}
_WINDOW_KEYS = {"severity", "long", "short", "budget"}


def _keys(where: str, mapping: object, known: set[str], required: set[str]) -> Mapping[str, Any]:
    if not isinstance(mapping, Mapping):
        raise SpecError(f"{where}: a mapping, got {type(mapping).__name__}")
    unknown = sorted(set(map(str, mapping)) - known)
    if unknown:
        raise SpecError(
            f"{where}: unknown field(s) {', '.join(unknown)} (known: {', '.join(sorted(known))})"
        )
    missing = sorted(required - set(map(str, mapping)))
    if missing:
        raise SpecError(f"{where}: missing {', '.join(missing)}")
    return mapping


def _percent(where: str, value: object) -> float:
    if isinstance(value, str) and value.strip().endswith("%"):
        value = value.strip()[:-1]
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise SpecError(f"{where}: a number, got {value!r}") from None


def _list(where: str, value: object, of: str) -> Sequence[Any]:
    if isinstance(value, str) or not isinstance(value, Sequence):
        raise SpecError(f"{where}: a list of {of}")
    return value


def from_mapping(data: object) -> Spec:
    """A :class:`Spec` from the YAML file's shape (a mapping), checked."""
    top = _keys("spec", data, _SPEC_KEYS, {"service", "slos"})
    slos = []
    for index, raw in enumerate(_list("slos", top["slos"], "SLOs")):
        where = f"slos[{index}]"
        item = _keys(where, raw, _SLO_KEYS, {"name", "operation", "sli", "objective"})
        threshold = item.get("threshold")
        bad = _list(f"{where}.bad_outcomes", item.get("bad_outcomes", BAD_OUTCOMES), "outcomes")
        slos.append(
            SLO(
                name=item["name"],
                operation=item["operation"],
                sli=item["sli"],
                objective=_percent(f"{where}.objective", item["objective"]),
                period=parse_duration(f"{where}.period", item.get("period", "30d")),
                threshold=None if threshold is None else _number(f"{where}.threshold", threshold),
                bad_outcomes=tuple(str(o) for o in bad),
                description=str(item.get("description", "")),
            )
        )
    windows = DEFAULT_WINDOWS
    if "windows" in top:
        made = []
        for index, raw in enumerate(_list("windows", top["windows"], "windows")):
            where = f"windows[{index}]"
            item = _keys(where, raw, _WINDOW_KEYS, _WINDOW_KEYS)
            made.append(
                Window(
                    severity=str(item["severity"]),
                    long=parse_duration(f"{where}.long", item["long"]),
                    short=parse_duration(f"{where}.short", item["short"]),
                    budget=_percent(f"{where}.budget", item["budget"]) / 100.0,
                )
            )
        windows = tuple(made)
    return Spec(
        service=top["service"],
        slos=tuple(slos),
        scrape_interval=parse_duration("scrape_interval", top.get("scrape_interval", "1m")),
        windows=windows,
        min_events=top.get("min_events", 10),
        missing_for=parse_duration("missing_for", top.get("missing_for", "10m")),
        runbook_url=str(top.get("runbook_url", "runbooks/{alert}.md")),
    )


def _number(where: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise SpecError(f"{where}: a number of seconds, got {value!r}")
    return float(value)


def load(source: str | Path) -> Spec:
    """Read a spec from a YAML file (a path) or YAML text. Needs PyYAML
    (``pip install seawall[slo]``)."""
    try:
        import yaml
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError("seawall.slo reads YAML with PyYAML: pip install seawall[slo]") from exc
    if isinstance(source, Path) or (
        isinstance(source, str) and "\n" not in source and source.endswith((".yaml", ".yml"))
    ):
        text = Path(source).read_text()
    else:
        text = source
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise SpecError(f"spec: not valid YAML: {exc}") from None
    return from_mapping(data)
