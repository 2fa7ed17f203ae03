"""The README's PromQL, run by a real Prometheus against seawall's exposition, gives the truth.

A Prometheus server (Debian's ``prometheus`` binary; ``.ci/run`` installs it, and the test
skips, saying so, where it is missing) scrapes an exposition endpoint on 127.0.0.1 once a
second: first with every series at zero, then after a scenario whose answers are known
(an outage that opens a breaker, a fallback, a retry that the breaker cuts short, a full
bulkhead, calls of a known duration). Each query of the README's "PromQL for the questions
you will ask" block is then asked through Prometheus' HTTP API and checked against what
the scenario did. Ratios of ``rate()`` over series scraped together are exact.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

import seawall
from seawall.metrics import SeawallCollector
from seawall.testing import FakeClock
from tests.helpers import NO_PROMETHEUS, PROMETHEUS, Prometheus

README = Path(__file__).parent.parent / "README.md"

pytestmark = pytest.mark.skipif(PROMETHEUS is None, reason=NO_PROMETHEUS)


class Exposition:
    """seawall's series over HTTP on 127.0.0.1, as an application's ``/metrics`` serves them."""

    def __init__(self) -> None:
        registry = CollectorRegistry()
        registry.register(SeawallCollector())

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body = generate_latest(registry)
                self.send_response(200)
                self.send_header("Content-Type", CONTENT_TYPE_LATEST)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def readme_queries() -> dict[str, list[str]]:
    """The queries of the README's PromQL block, by the comment that introduces them."""
    text = README.read_text()
    section = text.split("### PromQL for the questions you will ask", 1)[1]
    block = section.split("```promql\n", 1)[1].split("```", 1)[0]
    queries: dict[str, list[str]] = {}
    for group in block.strip().split("\n\n"):
        title, *lines = group.splitlines()
        assert title.startswith("# "), group
        exprs: list[str] = []
        for line in lines:
            continues = exprs and (
                line[:1] in " /-+*)" or exprs[-1].count("(") > exprs[-1].count(")")
            )
            if continues and not (line[:1].isalpha() and _balanced(exprs[-1])):
                exprs[-1] += "\n" + line
            else:
                exprs.append(line)
        queries[title[2:]] = exprs
    return queries


def _balanced(expr: str) -> bool:
    return expr.count("(") == expr.count(")")


def by(label: str, vector: dict[tuple[tuple[str, str], ...], float]) -> dict[str, float]:
    return {dict(labels)[label]: value for labels, value in vector.items() if label in dict(labels)}


@pytest.fixture
def prometheus(tmp_path: Path) -> Iterator[tuple[Prometheus, Exposition]]:
    exposition = Exposition()
    server = Prometheus(exposition.port, tmp_path)
    try:
        yield server, exposition
    finally:
        server.stop()
        exposition.stop()


def test_every_readme_query_gives_what_the_scenario_did(
    prometheus: tuple[Prometheus, Exposition],
) -> None:
    server, _ = prometheus
    unique = f"q{int(time.time() * 1000) % 10**8}"
    names = {kind: f"{unique}-{kind}" for kind in ("pay", "search", "amp", "bh", "lat")}
    clock = FakeClock()

    # An outage: 6 successes, then 2 failures open the breaker, which refuses 4 more calls.
    pay = seawall.Policy(
        names["pay"],
        breaker=seawall.CircuitBreaker(
            minimum_calls=4, window_calls=4, consecutive_failures=None, clock=clock
        ),
        clock=clock,
    )
    # A fallback answers 1 call of 4.
    search = seawall.Policy(
        names["search"], fallback=seawall.Fallback("cached", on=ConnectionError), bulkhead=5
    )
    # 10 failing calls: the breaker opens after 2 attempts and refuses every later one.
    amp = seawall.Policy(
        names["amp"],
        retry=seawall.Retry(on=ConnectionError, attempts=3, wait=0, clock=clock),
        breaker=seawall.CircuitBreaker(
            minimum_calls=2, window_calls=2, consecutive_failures=None, clock=clock
        ),
        clock=clock,
    )
    # One call held inside a bulkhead of 1, which turns 3 away.
    bulkhead = seawall.Bulkhead(1, name=names["bh"])
    # 100 successes of 0.2 s each, on a clock of their own (the breakers above stay open).
    slow_clock = FakeClock()
    lat = seawall.Policy(
        names["lat"], breaker=seawall.CircuitBreaker(clock=slow_clock), clock=slow_clock
    )

    first = f'seawall_call_duration_seconds_count{{operation="{names["pay"]}",outcome="success"}}'
    server.wait_for(lambda: server.samples(first) >= 2, "scraping the zeros")

    def down() -> None:
        raise ConnectionError("down")

    for _ in range(6):
        pay.call(lambda: "ok")
    for _ in range(2):
        with pytest.raises(ConnectionError):
            pay.call(down)
    for _ in range(4):
        with pytest.raises(seawall.CircuitOpenError):
            pay.call(lambda: "ok")
    for _ in range(3):
        search.call(lambda: "ok")
    assert search.call(down) == "cached"
    made: list[int] = []

    def amp_down() -> None:
        made.append(1)
        raise ConnectionError("down")

    for _ in range(10):
        with pytest.raises((ConnectionError, seawall.CircuitOpenError)):
            amp.call(amp_down)
    assert len(made) == 2
    entered, release = threading.Event(), threading.Event()

    def hold() -> None:
        entered.set()
        release.wait(60)

    holder = threading.Thread(target=bulkhead.call, args=(hold,))
    holder.start()
    entered.wait(10)
    for _ in range(3):
        with pytest.raises(seawall.BulkheadFullError):
            bulkhead.call(lambda: None)

    def slow() -> None:
        slow_clock.advance(0.2)

    for _ in range(100):
        lat.call(slow)

    try:
        scraped = server.samples(first)
        server.wait_for(lambda: server.samples(first) >= scraped + 2, "scraping the scenario")
        answers = {
            title: [server.query(q) for q in exprs] for title, exprs in readme_queries().items()
        }
    finally:
        release.set()
        holder.join(10)

    checked = set()

    def answer(start: str) -> list[dict[tuple[tuple[str, str], ...], float]]:
        (title,) = [title for title in answers if title.startswith(start)]
        checked.add(title)
        return answers[title]

    (errors,) = answer("error ratio per operation")
    assert by("operation", errors)[names["pay"]] == pytest.approx(6 / 12)
    assert by("operation", errors)[names["search"]] == pytest.approx(1 / 4)
    (seen,) = answer("what callers saw")
    assert by("operation", seen)[names["pay"]] == pytest.approx(6 / 12)
    assert by("operation", seen)[names["search"]] == pytest.approx(0.0)
    (opened,) = answer("is any breaker open?")
    assert {k: v for k, v in by("policy", opened).items() if k.startswith(unique)} == {
        names["pay"]: 1.0,
        names["amp"]: 1.0,
    }
    (amplification,) = answer("retry amplification")
    assert by("policy", amplification)[names["amp"]] == pytest.approx(2 / 10)
    saturation, rejections = answer("bulkhead saturation")
    assert by("policy", saturation)[names["bh"]] == 1.0
    assert by("policy", rejections)[names["bh"]] > 0
    (p99,) = answer("latency p99")
    assert 0.1 < by("operation", p99)[names["lat"]] <= 0.25  # in the bucket of 0.2 s
    assert checked == set(answers), f"README queries without a check: {set(answers) - checked}"


def test_the_readme_query_parser_splits_queries_as_written() -> None:
    queries = readme_queries()
    assert all(len(exprs) == 1 for title, exprs in queries.items() if "saturation" not in title)
    assert len(next(e for t, e in queries.items() if "saturation" in t)) == 2
    for exprs in queries.values():
        for expr in exprs:
            assert _balanced(expr), expr
            assert re.search(r"seawall_\w+", expr), expr
