"""Runbooks for a spec's alerts: ``runbooks/<alert>.md``, one per alert name in the rules.

Each is in the shape on-call engineers use: when the alert fires (its expressions and
thresholds, with the numbers), the impact (what callers see, how fast the budget goes),
diagnostic steps (PromQL to paste, one query per ``promql`` block, on seawall's series for
the SLO's operation), mitigation (what seawall offers, with the Python to run) and
escalation (placeholders to fill in: ``<team>``, ``<channel>``, ``<dashboard link>``).
Every query reads only seawall's series (:data:`seawall.metrics.CATALOGUE`), the recording
rules of ``rules.yaml``, and Prometheus's own ``ALERTS`` and ``up``.
"""

from __future__ import annotations

import json
from pathlib import Path

from seawall.slo._rules import (
    BUDGET_REMAINING,
    ERROR_RATIO,
    SERIES,
    _quote,
    _selector,
    _threshold,
    alert_names,
    alert_rules,
    error_ratio_expr,
    sharing,
)
from seawall.slo._spec import SLO, Spec, Window, format_duration

__all__ = ["PLACEHOLDERS", "runbooks", "write_runbooks"]

#: What the team fills in, in every runbook.
PLACEHOLDERS = ("<team>", "<channel>", "<dashboard link>")

_RE2_SPECIAL = set("\\.+*?()|[]{}^$")


def _regex(value: str) -> str:
    """``value`` as an RE2 pattern matching exactly it."""
    return "".join("\\" + char if char in _RE2_SPECIAL else char for char in value)


def _promql(query: str) -> str:
    return f"```promql\n{query}\n```\n"


def _python(code: str) -> str:
    return f"```python\n{code}\n```\n"


def _percent(share: float) -> str:
    return f"{share * 100:.4g}%"


def _either(items: list[str]) -> str:
    """``a, b or c``."""
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " or " + items[-1]


def _py(text: str) -> str:
    """A Python string literal."""
    return json.dumps(text, ensure_ascii=False)


class _Runbook:
    """What every runbook of one SLO says the same way."""

    def __init__(self, spec: Spec, slo: SLO) -> None:
        self.spec = spec
        self.slo = slo
        self.selector = _selector(spec, slo)
        self.operation = _quote(slo.operation)
        self.policy = f"policy={self.operation}"
        self.period = format_duration(slo.period)
        self.names = alert_names(slo, spec)
        self.errors_step = 2  # the diagnostic step that breaks the errors down
        if slo.sli == "availability":
            self.objective_text = (
                f"{slo.objective:g}% of the calls of the seawall operation `{slo.operation}` "
                f"succeed (availability: not {_either(list(slo.bad_outcomes))}; cancelled calls "
                "count neither way)"
            )
        else:
            self.objective_text = (
                f"{slo.objective:g}% of the successful calls of the seawall operation "
                f"`{slo.operation}` take at most {slo.threshold:g} s (latency)"
            )

    def header(self, alert: str, severity: str) -> str:
        description = f"\n{self.slo.description.strip()}\n" if self.slo.description else ""
        return (
            f"# {alert}\n\n"
            f"**{self.spec.service} / {self.slo.name}**, severity **{severity}**. The SLO: "
            f"{self.objective_text}, over {self.period}: an error budget of "
            f"{_percent(self.slo.budget)} of them.\n{description}\n"
            "Dashboard: <dashboard link> (`dashboard.json`, generated beside `rules.yaml`, "
            "imported into Grafana).\n"
        )

    def bad_calls(self) -> tuple[str, str]:
        """Whose calls the SLI counts, and what makes one bad, for a caller."""
        if self.slo.sli == "availability":
            kinds = {
                "failure": "an error",
                "timeout": "a timeout",
                "rejected": "a rejection (an open breaker, a full bulkhead)",
                "fallback": "a fallback's answer instead of the dependency's",
            }
            said = [kinds.get(outcome, outcome) for outcome in self.slo.bad_outcomes]
            return f"the calls to `{self.slo.operation}`", "end in " + _either(said)
        return (
            f"the successful calls to `{self.slo.operation}`",
            f"take longer than {self.slo.threshold:g} s",
        )

    # -- the diagnostic queries --------------------------------------------------------------

    def errors_by_type(self, window: str) -> str:
        """The error ratio by outcome and error type: the share of the calls of each."""
        if self.slo.sli == "availability":
            outcomes = f"outcome=~{_quote('|'.join(self.slo.bad_outcomes))}"
        else:
            outcomes = 'outcome!="cancelled"'
        return (
            f"sum by (outcome, error_type) (rate(seawall_call_errors_total"
            f"{{operation={self.operation},{outcomes}}}[{window}]))\n"
            "/ ignoring (outcome, error_type) group_left\n"
            f'sum(rate({SERIES}_count{{operation={self.operation},outcome!="cancelled"}}'
            f"[{window}]))"
        )

    def latency(self, window: str) -> str:
        return (
            f"histogram_quantile(0.99, sum by (le) (rate({SERIES}_bucket"
            f'{{operation={self.operation},outcome="success"}}[{window}])))'
        )

    def diagnostics(self, window: str, longer: str, burns: list[tuple[str, str]]) -> str:
        """The diagnostic steps over ``window`` (transitions over ``longer``); ``burns``: the
        (window, threshold) pairs to confirm the burn on."""
        slo, operation = self.slo, self.slo.operation
        parts = [
            "## Diagnostic steps\n\n"
            "Paste these into Prometheus (or Grafana's Explore) on the data source that "
            f"scrapes {self.spec.service}. They look at the last {window}: widen the range to "
            f"look further back. seawall names a policy's parts after it (unless they were "
            f"given names of their own): the breaker, retry and bulkhead of `{operation}` are "
            f"the series with `{self.policy}`.\n"
        ]
        step = 1
        burn = f"{step}. **Is it still burning?** The burn rate (error ratio / budget) now:\n\n"
        for burn_window, threshold in burns:
            burn += (
                f"   over {burn_window} (the alert needs it above {threshold}):\n\n"
                + _indent(_promql(f"{ERROR_RATIO}{burn_window}{self.selector} / {slo.budget:.10g}"))
                + "\n"
            )
        parts.append(burn.removesuffix("\n"))
        step += 1
        if slo.sli == "latency":
            parts.append(
                f"{step}. **How slow?** The 99th percentile of the successful calls, against "
                f"the {slo.threshold:g} s threshold:\n\n" + _indent(_promql(self.latency(window)))
            )
            step += 1
        self.errors_step = step
        parts.append(
            f"{step}. **Which errors?** The share of `{operation}`'s calls by outcome and error "
            "type. `rejected` with `CircuitOpenError`: a breaker refuses the calls (step "
            f"{step + 1}); with `BulkheadFullError`: the bulkhead is full (step {step + 3}); "
            "`timeout`: seawall's timeout cut the call; `failure`: the dependency's own errors "
            "by exception class (or HTTP status, through seawall's httpx transport); "
            "`fallback`: the fallback answered, for the error type shown.\n\n"
            + _indent(_promql(self.errors_by_type(window)))
        )
        step += 1
        parts.append(
            f"{step}. **Breakers.** The breaker's state now (`open`, `half_open`: the "
            "dependency failed; `forced_open`: somebody isolated it; `disabled`: it never "
            "trips):\n\n"
            + _indent(
                _promql(
                    f"max by (policy, state) (seawall_circuit_breaker_state{{{self.policy}}}) == 1"
                )
            )
            + f"\n   Its transitions over the last {longer} (open → half_open → open again and "
            "again: the dependency is still down):\n\n"
            + _indent(
                _promql(
                    "sum by (policy, from_state, to_state) (increase("
                    f"seawall_circuit_breaker_transitions_total{{{self.policy}}}[{longer}]))"
                )
            )
            + "\n   Every breaker of the service that is open now (the failing dependency may "
            "be behind another policy):\n\n"
            + _indent(
                _promql(
                    "max by (policy) "
                    '(seawall_circuit_breaker_state{state=~"open|forced_open"}) == 1'
                )
            )
        )
        step += 1
        parts.append(
            f"{step}. **Retries.** Retries the retry budget refused (the dependency fails "
            "more often than the budget allows retries for):\n\n"
            + _indent(
                _promql(
                    "sum by (policy) (rate(seawall_retry_budget_exhausted_total"
                    f"{{{self.policy}}}[{window}]))"
                )
            )
            + "\n   Attempts that reached the dependency per call (1: no retries; near the "
            "policy's `attempts`: every call is retried):\n\n"
            + _indent(
                _promql(
                    f"(sum by (policy) (rate(seawall_retry_attempts_sum{{{self.policy}}}"
                    f"[{window}]))\n - sum by (policy) (rate("
                    f"seawall_retry_refused_attempts_total{{{self.policy}}}[{window}])))\n"
                    f"/ sum by (policy) (rate(seawall_retry_attempts_count{{{self.policy}}}"
                    f"[{window}]))"
                )
            )
        )
        step += 1
        parts.append(
            f"{step}. **Bulkhead saturation.** Its share in use (1: full, so calls queue or are "
            "turned away):\n\n"
            + _indent(
                _promql(
                    f"seawall_bulkhead_active{{{self.policy}}} / "
                    f"seawall_bulkhead_limit{{{self.policy}}}"
                )
            )
            + "\n   Calls it turned away, per second:\n\n"
            + _indent(
                _promql(
                    "sum by (policy) (rate(seawall_bulkhead_calls_total"
                    f'{{{self.policy},outcome="rejected"}}[{window}]))'
                )
            )
        )
        step += 1
        attempt = _quote(f"{_regex(operation)}(\\.attempt)?")
        parts.append(
            f"{step}. **Timeouts.** Calls through the policy's timeouts by outcome (the attempt "
            f"timeout of a policy with two is `{operation}.attempt`):\n\n"
            + _indent(
                _promql(
                    "sum by (policy, outcome) (rate(seawall_timeout_calls_total"
                    f"{{policy=~{attempt}}}[{window}]))"
                )
            )
        )
        step += 1
        parts.append(
            f"{step}. **Per dependency (HTTP).** Through seawall's httpx transports, the "
            "attempts per second by server, status and error (these series are per server, "
            "not per operation: find the one this operation calls):\n\n"
            + _indent(
                _promql(
                    "sum by (server_address, http_response_status_code, error_type) "
                    f"(rate(seawall_http_client_request_duration_seconds_count[{window}]))"
                )
            )
            + "\n   Their 99th percentile latency by server:\n\n"
            + _indent(
                _promql(
                    "histogram_quantile(0.99, sum by (server_address, le) "
                    f"(rate(seawall_http_client_request_duration_seconds_bucket[{window}])))"
                )
            )
        )
        step += 1
        parts.append(
            f"{step}. **A rehearsal left on?** Faults seawall.chaos is injecting now (none "
            "unless an injector was enabled):\n\n"
            + _indent(
                _promql(
                    f"sum by (policy, fault) (rate(seawall_chaos_injections_total[{window}])) > 0"
                )
            )
        )
        return "\n".join(parts)

    # -- mitigation and escalation ------------------------------------------------------------

    def handle(self) -> str:
        """How to reach the policy's objects in the running process."""
        operation = self.slo.operation
        text = (
            "seawall's switches act on the objects in the running process: call them where "
            "your service keeps its policy (an admin endpoint, a debug console). Below, "
            f"`policy` is the `seawall.Policy({_py(operation)}, ...)` behind the operation."
        )
        template, colon, key = operation.partition(":")
        if colon and template and key:
            text += (
                f" If `{operation}` is a host policy of a `seawall.httpx` transport (template "
                f"`{template}`, key `{key}`), it is `transport.policies()[{_py(key)}]`."
            )
        return text + "\n"

    def mitigation(self) -> str:
        operation = self.slo.operation
        fallback_note = (
            "The availability SLI still counts a fallback's answer as bad (the dependency "
            "failed): the budget goes on burning, but callers get an answer."
            if self.slo.sli == "availability"
            else "A fallback's answer is not a successful call: the latency SLI does not count "
            "it either way."
        )
        return (
            "## Mitigation\n\n"
            + self.handle()
            + "\n- **Isolate the breaker** when the dependency is down or must be spared (it "
            "is overloaded, or being repaired): every call is rejected at once with "
            "`CircuitOpenError` (or answered by the policy's fallback) until you reset it, so "
            "callers fail fast instead of waiting for timeouts.\n\n"
            + _indent(_python("policy.breaker.isolate()  # undo: policy.breaker.reset()"))
            + "\n   A breaker shared on Redis (`CircuitBreaker(shared=RedisState(url))`) is "
            "switched for every process at once, from anywhere (`status` lists the shared "
            "breakers, a transport's per-host ones among them):\n\n"
            + _indent(
                "```console\n"
                f"python -m seawall breaker isolate {operation} --redis $REDIS_URL\n"
                f"python -m seawall breaker reset {operation} --redis $REDIS_URL  # undo\n"
                "```\n"
            )
            + "\n- **Disable the breaker** when it is the problem (it trips on errors that do "
            f"not matter: `rejected` dominates step {self.errors_step} while the dependency "
            "answers): calls go through, and it never trips, still counting.\n\n"
            + _indent(_python("policy.breaker.disable()  # undo: policy.breaker.reset()"))
            + "\n- **Serve a fallback** (a deploy: a policy's parts are fixed once built) so "
            "that callers get a cached or default answer instead of the error. "
            + fallback_note
            + "\n\n"
            + _indent(
                _python(
                    "policy = seawall.Policy(\n"
                    f"    {_py(operation)},\n"
                    "    fallback=seawall.Fallback(\n"
                    "        lambda exc: cached_answer(),  # yours: a cached value, a default\n"
                    "        on=(seawall.RejectedError, seawall.TimeoutExceededError),\n"
                    "    ),\n"
                    "    breaker=True,  # and the rest of the policy as it was\n"
                    ")"
                )
            )
            + "\n- **Shed load with a bulkhead** (a deploy) when the dependency slows down "
            "under load: at most that many calls at once, the rest rejected at once "
            "(`BulkheadFullError`, outcome `rejected`) instead of piling up on it. Size it "
            "from the concurrency it handles when healthy.\n\n"
            + _indent(
                _python(
                    "policy = seawall.Policy(\n"
                    f"    {_py(operation)},\n"
                    "    bulkhead=seawall.Bulkhead(20, max_queue=0),  # 20: yours to choose\n"
                    "    breaker=True,  # and the rest of the policy as it was\n"
                    ")"
                )
            )
            + "\nThen watch the burn rate (step 1) fall; undo the switches once the "
            "dependency is healthy again.\n"
        )

    @staticmethod
    def escalation(when: str) -> str:
        return (
            "## Escalation\n\n"
            f"- {when}, escalate to <team> in <channel>.\n"
            "- Owner of this SLO: <team>. Channel: <channel>. Dashboard: <dashboard link>.\n"
        )

    # -- the runbooks ------------------------------------------------------------------------

    def burn(self, severity: str, windows: list[Window]) -> str:
        slo, spec = self.slo, self.spec
        alert = self.names[severity]
        rules = [rule for rule in alert_rules(spec, slo) if rule["alert"] == alert]
        whose, bad = self.bad_calls()
        rows = []
        for window in windows:
            factor = window.factor(slo.period)
            threshold = _threshold(window, slo)
            rows.append(
                f"| {format_duration(window.long)} | {format_duration(window.short)} "
                f"| {factor:.3g}x | {_percent(threshold)} ({threshold:.10g}) "
                f"| {_percent(window.spent(slo.period))} in {format_duration(window.long)} "
                f"| {format_duration(slo.period / factor)} |"
            )
        fires = (
            "## When this alert fires\n\n"
            f"When the {slo.sli} SLI's error ratio (the share of {whose} that {bad}) burns "
            f"the {self.period} error budget too fast over a long and a short window at "
            f"once, with at least {spec.min_events} calls in the long window:\n\n"
            "| long window | short window | burn rate above | error ratio above "
            "| budget spent at that rate | whole budget gone in |\n"
            "|---|---|---|---|---|---|\n" + "\n".join(rows) + "\n\n"
            "The rules, as in `rules.yaml`:\n\n"
            + "\n".join(_promql(rule["expr"]) for rule in rules)
            + f"\nThe error ratio they read (`{ERROR_RATIO}<window>`), here over "
            f"{format_duration(windows[0].short)}:\n\n"
            + _promql(error_ratio_expr(slo, windows[0].short))
        )
        lowest = min(windows, key=lambda w: w.factor(slo.period))
        fastest = max(windows, key=lambda w: w.factor(slo.period))
        outage = format_duration(slo.period * slo.budget)
        gone = format_duration(slo.period / fastest.factor(slo.period))
        impact = (
            "## Impact\n\n"
            f"- **What callers see**: at least {_percent(_threshold(lowest, slo))} of {whose} "
            f"{bad} (at least {_percent(_threshold(fastest, slo))} when the "
            f"{format_duration(fastest.long)} window fires).\n"
            f"- **How fast the budget goes**: at {fastest.factor(slo.period):.3g}x the whole "
            f"{self.period} budget is gone in {gone}"
            + (
                f"; at {lowest.factor(slo.period):.3g}x in "
                f"{format_duration(slo.period / lowest.factor(slo.period))}"
                if lowest is not fastest
                else ""
            )
            + f". A full outage (every call bad) spends all of it in {outage}.\n"
            f"- The budget left over {self.period} (1: untouched, 0: spent, below 0: "
            "overspent):\n\n" + _indent(_promql(f"{BUDGET_REMAINING}{self.selector}"))
        )
        shortest = min(window.short for window in windows)
        recent = min(window.long for window in windows)
        burns = [
            (format_duration(window.short), f"{window.factor(slo.period):.3g}")
            for window in windows
        ]
        when = (
            "If the burn has not slowed after a mitigation, or you cannot find the cause"
            if severity == "page"
            else "If the cause is not found within the working day, or the burn speeds up"
        )
        urgency = (
            f"A page: act now; at this rate the budget is gone in {gone}.\n\n"
            if severity == "page"
            else f"A ticket: a slower burn (the budget gone in {gone} at the fastest), to look "
            "into within the working day.\n\n"
        )
        return (
            self.header(alert, severity)
            + "\n"
            + urgency
            + fires
            + "\n"
            + impact
            + "\n"
            + self.diagnostics(format_duration(shortest), format_duration(recent), burns)
            + "\n"
            + self.mitigation()
            + "\n"
            + self.escalation(when)
        )

    def missing(self) -> str:
        slo, spec = self.slo, self.spec
        alert = self.names["missing"]
        for_ = format_duration(spec.missing_for)
        series = f"{SERIES}_count{{operation={self.operation}}}"
        burn_alerts = ", ".join(  # of every SLO on the operation: they read these series
            f"`{alert_names(other)[severity]}`"
            for other in sharing(spec, slo)
            for severity in ("page", "ticket")
            if any(window.severity == severity for window in spec.windows)
        )
        fires = (
            "## When this alert fires\n\n"
            f"When no series `{series}` has been scraped for {for_}:\n\n"
            + _promql(f"absent({series})")
            + f"\nseawall makes an operation's `success` and `failure` series when its policy "
            "is created, before any call, so they are absent only when no scraped process has "
            f"created the policy `{slo.operation}`: the service is down or not scraped, its "
            "metrics are not exposed, or the operation was renamed.\n"
        )
        impact = (
            "## Impact\n\n"
            f"- **The SLO is blind**: while the SLI is missing, {burn_alerts} cannot fire: "
            f"an outage of `{slo.operation}` would not page.\n"
            "- **What callers see** depends on why: nothing if only the scrape is broken; "
            "every call failing if the service is down.\n"
            f"- **The budget**: the {self.period} error ratio is computed from the calls that "
            "were scraped; the gap counts neither way.\n"
        )
        window = format_duration(max(spec.missing_for, 4 * spec.scrape_interval))
        diagnostics = (
            "## Diagnostic steps\n\n"
            "1. **Is seawall scraped at all, and under which operation names?** (A renamed "
            "policy shows here under its new name; then update `operation:` in the spec and "
            "generate the rules again.)\n\n"
            + _indent(_promql(f"count by (operation) ({SERIES}_count)"))
            + "\n2. **Are the scrape targets up?**\n\n"
            + _indent(_promql("up == 0"))
            + f"\n3. **When was `{slo.operation}` last seen?** Seconds ago, over the last day "
            "(nothing: not for a day):\n\n"
            + _indent(_promql(f"time() - max(max_over_time(timestamp({series})[1d:{window}]))"))
            + "\n4. **In the service**: did a deploy rename or remove the policy, stop "
            "exposing `/metrics`, or turn seawall's Prometheus export off "
            "(`seawall.metrics.configure(prometheus=False)`)? Under gunicorn, is "
            "`PROMETHEUS_MULTIPROC_DIR` set before the workers import seawall?\n"
        )
        mitigation = (
            "## Mitigation\n\n"
            "- Restore the scrape or the service (roll back the deploy that removed or renamed "
            "the policy), or, if the rename was meant, point the spec's `operation:` at the new "
            "name and regenerate: `python -m seawall slo generate SPEC --out DIR`.\n"
            "- seawall's switches (`breaker.isolate()`, `breaker.disable()`, a `Fallback`, a "
            "`Bulkhead`) do not bring an SLI back; until it is back, watch the callers by "
            "other means.\n"
        )
        return (
            self.header(alert, "ticket")
            + "\n"
            + fires
            + "\n"
            + impact
            + "\n"
            + diagnostics
            + "\n"
            + mitigation
            + "\n"
            + self.escalation(f"If the SLI is not back within {for_} of a fix")
        )


def _indent(text: str) -> str:
    """``text`` indented under a list item."""
    return "".join(f"   {line}" if line.strip() else line for line in text.splitlines(True))


def runbooks(spec: Spec) -> dict[str, str]:
    """Every alert's runbook, by alert name (the ``runbooks/<alert>.md`` file's stem): per
    SLO, one for each severity its burn-rate windows have; per operation, one for its missing
    SLI."""
    out: dict[str, str] = {}
    for slo in spec.slos:
        book = _Runbook(spec, slo)
        texts = {}
        for severity in ("page", "ticket"):
            windows = [window for window in spec.windows if window.severity == severity]
            if windows:
                texts[book.names[severity]] = book.burn(severity, windows)
        if sharing(spec, slo)[0] == slo:  # one missing-SLI alert per operation
            texts[book.names["missing"]] = book.missing()
        out.update(texts)  # alert names are distinct: the spec refuses SLOs that would share
    return out


def write_runbooks(spec: Spec, directory: Path) -> list[Path]:
    """Write ``runbooks/<alert>.md`` under ``directory``; the paths written."""
    books = runbooks(spec)
    folder = directory / "runbooks"
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in books.items():
        path = folder / f"{name}.md"
        path.write_text(text)
        written.append(path)
    return written
