"""``python -m seawall demo``: the command line, the schedule, the summary, whole runs in a
subprocess (real time: the point is a real upstream going down and coming back), and the
same story replayed on simulated time (``--simulated``)."""

from __future__ import annotations

import asyncio
import io
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import httpx
import pytest

import seawall._demo
from seawall import CircuitState, chaos
from seawall.__main__ import main, parser
from seawall._demo import (
    PHASES,
    Breaker,
    Call,
    Demo,
    SimulatedUpstream,
    Summary,
    classify,
    schedule,
    simulate,
)
from seawall.testing import FakeClock, force_open, no_waits, simulated

ROOT = Path(__file__).resolve().parent.parent
PROMTOOL = shutil.which("promtool")


@pytest.fixture(autouse=True)
def _demo_files_in_tmp(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A real demo writes its SLO files under the system's temporary directory: in these
    tests, the test's own (its subprocesses take TMPDIR), so that none is left behind."""
    monkeypatch.setenv("TMPDIR", str(tmp_path))


# -- the command line ------------------------------------------------------------------------


def test_help_explains_the_demo_and_its_options(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        parser().parse_args(["demo", "--help"])
    assert exited.value.code == 0
    text = capsys.readouterr().out
    for option in ("--duration", "--port", "--serve", "--rate", "--simulated"):
        assert option in text
    assert "127.0.0.1" in text


def test_top_level_help_names_the_demo() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "seawall", "--help"], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0
    assert "demo" in done.stdout
    assert "outage" in done.stdout


def test_no_command_prints_help_and_fails(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    assert "demo" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--duration", "0"], "--duration: must be > 0"),
        (["--duration", "soon"], "--duration: not a number"),
        (["--duration", "inf"], "--duration: must be finite"),
        (["--duration", "nan"], "--duration: must be > 0"),
        (["--rate", "-3"], "--rate: must be > 0"),
        (["--rate", "inf"], "--rate: must be finite"),
        (["--port", "70000"], "--port: must be 0-65535"),
        (["--port", "http"], "--port: not a port number"),
        (["--simulated", "--serve"], "a simulated replay is one round"),
    ],
)
def test_bad_options_are_refused_naming_them(
    args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["demo", *args])
    assert exited.value.code == 2
    assert message in capsys.readouterr().err


# -- the schedule and the summary --------------------------------------------------------------


def test_the_schedule_scales_with_the_duration() -> None:
    plan = schedule(10.0)
    assert [plan.phase_at(t).name for t in (0.0, 1.5, 3.5, 5.0, 9.9, 12.0)] == [
        "healthy",
        "outage",
        "slow",
        "flaky",
        "recovered",
        "recovered",
    ]
    assert plan.bounds("outage") == [(1.0, 3.0)]
    assert plan.duration == 10.0
    assert schedule(30.0).bounds("outage") == [(3.0, 9.0)]
    assert [name for name, _ in PHASES] == ["healthy", "outage", "slow", "flaky", "recovered"]
    with pytest.raises(KeyError):
        plan.bounds("sideways")


def test_the_schedule_is_made_of_chaos_faults() -> None:
    healthy = chaos.Latency(0.002, up_to=0.01)
    assert [(phase.name, phase.faults) for phase in schedule(30.0)] == [
        ("healthy", (healthy,)),
        ("outage", (chaos.Hang(),)),
        ("slow", (chaos.Latency(0.2, up_to=0.45),)),
        ("flaky", (chaos.Status(503, rate=0.3, body=b"unavailable"), healthy)),
        ("recovered", (healthy,)),
    ]


def test_outcomes_are_classified_from_the_callers_side() -> None:
    request = httpx.Request("GET", "http://127.0.0.1/")
    from seawall.httpx import BulkheadFullHTTPError, CircuitOpenHTTPError

    assert classify(None, httpx.Response(200)) == "ok"
    assert classify(None, httpx.Response(503)) == "error"
    assert classify(httpx.ReadTimeout("slow", request=request), None) == "timeout"
    assert classify(httpx.ConnectError("down", request=request), None) == "failed"
    open_error = CircuitOpenHTTPError("demo", retry_after=1.0, state=CircuitState.OPEN)
    assert classify(open_error, None) == "fast-fail"
    assert classify(BulkheadFullHTTPError("demo", detail="full"), None) == "fast-fail"


def test_the_breaker_sample_keeps_changes_only() -> None:
    breaker = Breaker()
    assert breaker.state() is CircuitState.CLOSED
    for t, state in [(0.0, "closed"), (0.1, "closed"), (2.2, "open"), (2.7, "half_open")]:
        breaker.note(t, CircuitState(state))
    breaker.note(3.1, CircuitState.CLOSED)
    assert [t for t, _ in breaker.changes] == [0.0, 2.2, 2.7, 3.1]
    assert breaker.first(CircuitState.OPEN, after=1.0) == 2.2
    assert breaker.first(CircuitState.CLOSED, after=3.0) == 3.1
    assert breaker.first(CircuitState.OPEN, after=2.5) is None


def test_the_summary_table() -> None:
    fake = SimpleNamespace(
        schedule=schedule(10.0),
        calls={
            "plain": [Call(0.5, 0.51, "ok"), Call(1.5, 2.5, "timeout"), Call(2.0, 3.0, "timeout")],
            "seawall": [
                Call(0.5, 0.51, "ok"),
                Call(1.5, 2.5, "timeout"),
                Call(2.5, 2.501, "fast-fail"),
            ],
        },
        breaker=Breaker(
            [(0.0, CircuitState.CLOSED), (2.4, CircuitState.OPEN), (3.5, CircuitState.CLOSED)]
        ),
        upstream=SimpleNamespace(
            attempts={
                ("plain", "healthy"): 1,
                ("plain", "outage"): 2,
                ("seawall", "healthy"): 1,
                ("seawall", "outage"): 1,
            }
        ),
        refused_retries=lambda: 4,
    )
    summary = Summary.of(fake)  # type: ignore[arg-type]
    assert summary.detected == pytest.approx(1.4)
    assert summary.recovered == pytest.approx(0.5)
    plain, guarded = summary.figures["plain"], summary.figures["seawall"]
    assert (plain.calls, plain.ok, plain.attempts, plain.outage_attempts) == (3, 1, 3, 2)
    assert (plain.spared, guarded.spared, guarded.outage_attempts) == (0, 1, 1)
    text = "\n".join(summary.render())
    assert re.search(r"availability \(2xx\)\s+33\.3%\s+33\.3%", text)
    assert re.search(r"time to detect the outage\s+-\s+1\.40s", text)
    assert re.search(r"calls spared from the dead upstream\s+0\s+1", text)
    assert re.search(r"retries refused by the budget\s+-\s+4", text)


def test_a_row_counts_tries_over_the_calls_it_shows_and_the_budgets_refusals(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    out = io.StringIO()
    demo = Demo(10.0, 40.0, out, FakeClock())
    # The row of second 3 shows the calls that finished in it (one started in second 2),
    # and their attempts: 5 over 4 calls.
    demo.calls["seawall"] = [
        Call(1.2, 2.9, "ok", attempts=1),
        Call(2.1, 2.5, "ok", attempts=3),
        Call(2.6, 2.8, "fast-fail", attempts=0),
        Call(2.7, 2.95, "ok", attempts=1),
    ]
    demo.calls["plain"] = [Call(2.1, 2.2, "ok")]
    refusals = iter([2, 5])
    monkeypatch.setattr(demo, "refused_retries", lambda: next(refusals))
    demo._row(3)
    demo._row(4)
    first, second = out.getvalue().splitlines()
    # calls, ok, fast, breaker, tries, budget
    assert re.search(r"\|\s+4\s+75\.0%\s+1\s+closed\s+1\.25\s+2\s", first), first
    assert re.search(r"\|\s+0\s+-\s+0\s+closed\s+-\s+3\s", second), second


def test_the_protected_calls_count_the_attempts_they_sent_and_the_budgets_refusals() -> None:
    # The real path of a row's `tries` and `budget`: the protected client's calls through its
    # transport, against an upstream that answers 503 to every attempt.
    out = io.StringIO()
    demo = Demo(10.0, 40.0, out, FakeClock())
    sent: list[httpx.Request] = []

    def upstream(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return httpx.Response(503)

    demo.transport.transport.inner = httpx.MockTransport(upstream)  # type: ignore[attr-defined]

    async def calls() -> None:
        async with httpx.AsyncClient(transport=demo.transport) as client:
            await demo._call("seawall", client, "http://upstream.test/")
            (policy,) = demo.transport.policies().values()
            assert policy.breaker is not None
            # Only the budget stops retries now: the breaker lets every call through.
            policy.breaker.disable()
            for _ in range(79):
                await demo._call("seawall", client, "http://upstream.test/")
            with force_open(policy.breaker):
                await demo._call("seawall", client, "http://upstream.test/")

    with no_waits():
        asyncio.run(calls())
    done = demo.calls["seawall"]
    # RetryBudget() allows 10 retries a second over its 10 s window: 100 retries, two for
    # each of the first 50 calls. Each of the next 30 has its first retry refused (and ends
    # with its one attempt); the last is refused by the open breaker before any.
    assert [c.attempts for c in done] == [3] * 50 + [1] * 30 + [0]
    assert done[-1].outcome == "fast-fail"
    assert len(sent) == 180 == sum(c.attempts for c in done)
    assert demo.refused_retries() == 30
    demo._row(1)  # the fake clock never moved: every call finished in second 1
    # calls, ok, fast, breaker, tries (180 attempts / 81 calls), budget
    assert re.search(r"\|\s+81\s+0\.0%\s+1\s+closed\s+2\.22\s+30\s", out.getvalue()), out.getvalue()


# -- whole runs ---------------------------------------------------------------------------------


def _demo(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "seawall", "demo", *args],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def _lines(process: subprocess.Popen[str]) -> Iterator[str]:
    assert process.stdout is not None
    yield from process.stdout


def _figures(text: str, label: str) -> tuple[str, str]:
    match = re.search(rf"^{re.escape(label)}\s+(\S+)\s+(\S+)\s*$", text, re.MULTILINE)
    assert match, f"no {label!r} row in:\n{text}"
    return match.group(1), match.group(2)


def test_a_ten_second_demo_shows_seawall_winning_and_serves_its_metrics() -> None:
    process = _demo("--duration", "10", "--port", "0")
    killer = threading.Timer(90, process.kill)  # generous: never a hung test run
    killer.start()
    seen: list[str] = []
    scraped = ""
    try:
        for line in _lines(process):
            seen.append(line)
            found = re.search(r"Prometheus metrics: (http://127\.0\.0\.1:\d+/metrics)", line)
            if found:
                url = found.group(1)
            if not scraped and re.match(r"\s+3s ", line):  # mid-run: after the outage began
                scraped = httpx.get(url, timeout=10, trust_env=False).text
        code = process.wait(timeout=30)
    finally:
        killer.cancel()
        process.kill()
        process.wait()
        assert process.stdout is not None
        process.stdout.close()
    text = "".join(seen)
    assert code == 0, text
    assert 'seawall_circuit_breaker_state{policy="demo-upstream:upstream",state="open"}' in scraped
    assert "seawall_http_client_request_duration_seconds_bucket{" in scraped
    assert "seawall_call_duration_seconds_count{" in scraped
    # What seawall wins in every run, however loaded the machine: it spares the dead upstream
    # (fewer attempts while it is down). Availability usually rises too, but in 10 s it turns
    # on a few dozen calls around the breaker's recovery: the README shows a 30 s run.
    plain_dead, guarded_dead = (int(v) for v in _figures(text, "attempts on the dead upstream"))
    assert guarded_dead < plain_dead, text
    for value in _figures(text, "availability (2xx)"):
        assert re.fullmatch(r"\d+\.\d%", value), text
    detected = _figures(text, "time to detect the outage")[1]
    assert re.fullmatch(r"\d+\.\d\ds", detected), text
    assert float(detected[:-1]) < 3.0  # the outage lasts 2 s: found within it, or just after
    recovered = _figures(text, "time to recover after it")[1]
    assert re.fullmatch(r"\d+\.\d\ds", recovered), text
    spared = int(_figures(text, "calls spared from the dead upstream")[1])
    assert spared > 0
    # one row a second, both clients
    assert len([line for line in seen if re.match(r"\s*\d+s  \w+\s+\|", line)]) == 10


def test_serve_replays_the_schedule_until_interrupted_even_mid_round() -> None:
    process = _demo("--duration", "3", "--port", "0", "--serve")
    killer = threading.Timer(90, process.kill)
    killer.start()
    seen: list[str] = []
    rounds = 0
    try:
        for line in _lines(process):
            seen.append(line)
            if line.startswith("round "):
                rounds += 1
            if rounds == 2 and re.match(r"\s+2s ", line):  # in the middle of round 3
                process.send_signal(signal.SIGINT)
        code = process.wait(timeout=30)
    finally:
        killer.cancel()
        process.kill()
        process.wait()
        assert process.stdout is not None
        process.stdout.close()
    text = "".join(seen)
    assert code == 0, text
    assert text.count("availability (2xx)") == 2
    assert "Traceback" not in text
    assert "never retrieved" not in text


def test_a_taken_metrics_port_is_reported() -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run(
            [sys.executable, "-m", "seawall", "demo", "--duration", "1", "--port", str(port)],
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert done.returncode == 1
    assert f"cannot serve metrics on 127.0.0.1:{port}" in done.stdout
    assert "--port 0" in done.stdout


# -- the simulated replay ---------------------------------------------------------------------


def _replay() -> tuple[Summary, str, float]:
    """One simulated 30 s replay: its summary, what it printed, and the wall time it took."""
    out = io.StringIO()
    started = time.perf_counter()
    summary = simulate(out=out)
    return summary, out.getvalue(), time.perf_counter() - started


def test_the_simulated_30_second_story_runs_in_well_under_a_second_the_same_every_time() -> None:
    first, text, wall = _replay()
    again, text_again, wall_again = _replay()
    print(f"simulated 30 s replay: {wall:.3f} s, then {wall_again:.3f} s of wall time")
    assert wall < 3.0  # about 0.7 s on an idle machine here: generous for a loaded one
    assert wall_again < 3.0
    assert again == first
    assert text_again == text
    # What the real demo shows, on simulated time.
    plain, guarded = first.figures["plain"], first.figures["seawall"]
    assert plain.calls == guarded.calls == 1201
    assert guarded.ok > plain.ok  # availability
    assert first.detected is not None  # the breaker opened during the outage
    assert first.detected <= 2.0
    assert first.recovered is not None  # and closed after it
    assert first.recovered <= 2.0
    assert plain.outage_attempts == 240  # 6 s at 40 calls a second, every one sent
    assert guarded.outage_attempts / guarded.calls <= 0.1  # per logical call of the round
    assert guarded.spared > 0
    # The rows and the summary as printed: a row a second, the table at the end.
    rows = [line for line in text.splitlines() if re.match(r"\s*\d+s  \w+\s+\|", line)]
    assert len(rows) == 30
    assert re.search(r"^\s+5s  outage\s+\|.*\| .* open ", text, re.MULTILINE), text
    assert "\n".join(first.render()) in text
    assert "no Prometheus metrics served" in text


def test_the_readme_quotes_the_simulated_replays_summary() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    marker = "<!-- simulated demo: what --simulated prints, checked by tests/test_demo.py -->"
    block = readme.split(marker, 1)[1].split("```text\n", 1)[1].split("```", 1)[0]
    assert block.splitlines() == _replay()[0].render()


def _replayed(duration: float = 30.0, seed: int = 7) -> tuple[Demo, SimulatedUpstream]:
    """The replay built from its parts, as simulate() builds it: the Demo and its upstream."""
    with simulated(seed=seed) as simulation:
        upstream = SimulatedUpstream(duration, seed, simulation.clock)
        demo = Demo(duration, 40.0, io.StringIO(), simulation.clock, seed=seed, upstream=upstream)
        simulation.run(demo.run())
    return demo, upstream


def test_once_the_breaker_opens_the_dead_upstream_gets_only_probes() -> None:
    demo, _ = _replayed()
    summary = demo.summary()
    assert summary == _replay()[0]  # the same round as simulate()'s
    assert summary.detected is not None
    ((start, end),) = demo.schedule.bounds("outage")
    opened = start + summary.detected
    after = [c for c in demo.calls["seawall"] if opened <= c.started < end]
    assert len(after) > 100
    # Per call made while the breaker was open or half-open: its probes only.
    assert sum(c.attempts for c in after) / len(after) <= 0.1
    assert sum(c.outcome == "fast-fail" for c in after) >= 0.9 * len(after)


def test_the_simulated_command_prints_what_the_replay_prints() -> None:
    # --port is for the metrics, which a replay does not serve.
    done = subprocess.run(
        [sys.executable, "-m", "seawall", "demo", "--simulated", "--port", "1"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stderr == ""
    # Another process (other addresses, other hash seeds): the same output, line for line.
    assert done.stdout == _replay()[1]


def test_the_simulated_replay_uses_no_sockets_and_its_upstream_answers_what_passes_the_faults(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def refused(*args: object, **kwargs: object) -> None:
        raise AssertionError("the simulated replay opened a connection or a port")

    for name in ("connect", "connect_ex", "bind"):
        monkeypatch.setattr(socket.socket, name, refused)
    monkeypatch.setattr(socket, "getaddrinfo", refused)
    monkeypatch.setattr(asyncio, "create_subprocess_exec", refused)
    demo, upstream = _replayed(duration=10.0)
    summary = demo.summary()
    for name, transport in upstream.chaos.items():
        snapshot = transport.injector.snapshot()
        sent = sum(snapshot.calls.values())
        assert sent == summary.figures[name].attempts
        # The hung and 503'd attempts stop in the chaos transport; the rest are answered.
        answered = sum(n for (client, _), n in upstream.answered.items() if client == name)
        assert answered == sent - snapshot.injections["hang"] - snapshot.injections["status"]
        assert (name, "outage") not in upstream.answered
        assert snapshot.calls["outage"] == summary.figures[name].outage_attempts > 0


# -- the demo's SLO files ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def demo_slo_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path, list[Path]]:
    """One short real run: what it printed, and the SLO directory and files it named."""
    temporary = tmp_path_factory.mktemp("demo-tmp")
    done = subprocess.run(
        [sys.executable, "-m", "seawall", "demo", "--duration", "1", "--port", "0"],
        cwd=ROOT,
        env={**os.environ, "TMPDIR": str(temporary)},
        capture_output=True,
        text=True,
        timeout=90,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    found = re.search(
        r"^  SLO rules, dashboard and runbooks for demo-upstream:upstream \(seawall\.slo\): "
        r"(\S+)$",
        done.stdout,
        re.MULTILINE,
    )
    assert found, done.stdout
    directory = Path(found.group(1))
    named = re.findall(rf"^    ({re.escape(str(directory))}/\S+)$", done.stdout, re.MULTILINE)
    assert directory.parent == temporary  # tempfile.mkdtemp's, not the working directory
    return done.stdout, directory, [Path(path) for path in named]


def test_the_demo_prints_where_its_slo_rules_dashboard_and_runbooks_are(
    demo_slo_files: tuple[str, Path, list[Path]],
) -> None:
    import yaml

    text, directory, named = demo_slo_files
    assert directory.name.startswith("seawall-demo-slo-")
    # At the start: before the first row.
    first_row = re.search(r"^\s*\d+s  \w+\s+\|", text, re.MULTILINE)
    assert first_row is not None
    assert text.index(str(directory)) < first_row.start()
    assert not (ROOT / "seawall-demo-slo").exists()
    for path in named:
        assert path.is_file(), path
    rules = yaml.safe_load((directory / "rules.yaml").read_text())
    alerts = {
        rule["alert"] for group in rules["groups"] for rule in group["rules"] if "alert" in rule
    }
    assert sorted(named) == sorted(
        [
            directory / "rules.yaml",
            directory / "dashboard.json",
            *(directory / "runbooks" / f"{alert}.md" for alert in alerts),
            directory / "tests.yaml",
        ]
    )
    # page and ticket for availability and latency, and one missing-SLI alert for the operation
    assert len(alerts) == 5
    exprs = [rule["expr"] for group in rules["groups"] for rule in group["rules"]]
    assert any('operation="demo-upstream:upstream",outcome=~"failure|' in e for e in exprs)
    assert any('le="0.25"' in e for e in exprs)  # the latency SLO's bucket bound
    assert json.loads((directory / "dashboard.json").read_text())["title"] == ("SLOs: seawall-demo")


@pytest.mark.skipif(
    PROMTOOL is None,
    reason="promtool is not on PATH (Debian's prometheus package has it; .ci/run installs "
    "it when run as root)",
)
def test_the_demos_rules_pass_promtool(demo_slo_files: tuple[str, Path, list[Path]]) -> None:
    _, directory, _ = demo_slo_files
    assert PROMTOOL is not None
    done = subprocess.run(
        [PROMTOOL, "check", "rules", str(directory / "rules.yaml")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS: 47 rules found" in done.stdout, done.stdout


def test_the_demos_slos_are_on_the_operation_its_protected_client_measures() -> None:
    from seawall.metrics._readings import read_all

    simulate(duration=3.0, out=io.StringIO())
    measured = {
        operation for operation, _ in read_all()["seawall_call_duration_seconds"].histograms
    }
    assert {objective.operation for objective in seawall._demo.slo_spec().slos} == {
        "demo-upstream:upstream"
    }
    assert "demo-upstream:upstream" in measured


def test_without_pyyaml_the_demo_says_nothing_about_slos(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setitem(sys.modules, "yaml", None)  # import yaml raises ImportError
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    assert seawall._demo.slo_files() is None
    assert seawall._demo._slo_lines() == ""
    assert list(tmp_path.iterdir()) == []
