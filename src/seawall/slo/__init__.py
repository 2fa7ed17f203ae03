"""SLOs on seawall's SLIs: from a ten-line spec to Prometheus rules that page on a fast burn.

A spec (Python, or YAML: :func:`load`) names objectives on the operations seawall measures
(``seawall_call_duration_seconds{operation, outcome}``): availability (the share of calls that
did not fail, time out, get rejected or fall back) or latency (the share of successful calls
under a bucket bound). :func:`generate` writes the rules (recording rules per window, and
multi-window, multi-burn-rate alerts as in the SRE workbook, with a low-traffic guard and an
alert for a missing SLI) into a directory, with a Grafana dashboard on them
(:func:`dashboard`) and a runbook per alert (:func:`runbooks`);
``python -m seawall slo generate SPEC --out DIR`` does the same from the command line, and
``python -m seawall slo check SPEC`` checks a spec without writing. :func:`budget` reads an
operation's error budget from seawall's own counts, in process.
"""

from __future__ import annotations

from seawall.slo._budget import Budget, budget
from seawall.slo._dashboard import dashboard
from seawall.slo._generate import generate
from seawall.slo._rules import alert_names, rules
from seawall.slo._runbooks import runbooks
from seawall.slo._spec import (
    BAD_OUTCOMES,
    DEFAULT_WINDOWS,
    OUTCOMES,
    SLO,
    Spec,
    SpecError,
    Window,
    format_duration,
    from_mapping,
    load,
    parse_duration,
)

__all__ = [
    "BAD_OUTCOMES",
    "DEFAULT_WINDOWS",
    "OUTCOMES",
    "SLO",
    "Budget",
    "Spec",
    "SpecError",
    "Window",
    "alert_names",
    "budget",
    "dashboard",
    "format_duration",
    "from_mapping",
    "generate",
    "load",
    "parse_duration",
    "rules",
    "runbooks",
]
