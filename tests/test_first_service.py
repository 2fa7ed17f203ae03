"""The README's "Your first service" recipe works as written, and its queries match what it
exposes.

The app (``examples/first_service.py``, the same code as the README's block) runs under
FastAPI's test client against an inventory service on 127.0.0.1 that answers, then fails,
then comes back. Its own ``/metrics`` is read after that outage, and every selector of the
recipe's PromQL (metric name and label matchers) must match a series there. Where promtool
is installed, the scrape config and every query pass ``promtool check``.
"""

from __future__ import annotations

import importlib.util
import json
import re
import shutil
import subprocess
import sys
import threading
import warnings
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

import seawall
import seawall.testing

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "first_service.py"
README = ROOT / "README.md"
PROMTOOL = shutil.which("promtool")

with warnings.catch_warnings():
    # Starlette's test client warns, on import, that a later Starlette will want another
    # httpx: nothing this test can act on.
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient


class Inventory:
    """``GET /orders/{id}`` on 127.0.0.1: an order, or a 500 while ``down``."""

    def __init__(self) -> None:
        self.down = False
        self.requests = 0
        inventory = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                inventory.requests += 1
                if inventory.down:
                    status, body = 500, b"database unavailable"
                else:
                    order = self.path.rsplit("/", 1)[-1]
                    status = 200
                    body = json.dumps({"order": order, "item": "lamp", "quantity": 2}).encode()
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def inventory() -> Iterator[Inventory]:
    server = Inventory()
    yield server
    server.stop()


def load_app(inventory_url: str, monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    monkeypatch.setenv("INVENTORY_URL", inventory_url)
    spec = importlib.util.spec_from_file_location("first_service_under_test", EXAMPLE)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def readme_section() -> str:
    text = README.read_text()
    return text.split("## Your first service", 1)[1].split("\n## ", 1)[0]


def block(section: str, language: str) -> str:
    return section.split(f"```{language}\n", 1)[1].split("```", 1)[0]


def test_the_readme_shows_the_example_as_it_is() -> None:
    code = EXAMPLE.read_text()
    assert block(readme_section(), "python") == code.split('"""', 2)[2].lstrip("\n")


def test_the_recipe_serves_fails_fast_and_exposes_what_its_queries_ask(
    inventory: Inventory, monkeypatch: pytest.MonkeyPatch
) -> None:
    service = load_app(inventory.url, monkeypatch)
    with TestClient(service.app) as client:
        answer = client.get("/orders/42")
        assert answer.status_code == 200
        assert answer.json() == {"order": "42", "item": "lamp", "quantity": 2, "price": 19.98}

        inventory.down = True  # an outage: retried, then the breaker opens and fails fast
        statuses = [client.get(f"/orders/{n}").status_code for n in range(30)]
        assert set(statuses) <= {502, 503}
        assert statuses[-1] == 503  # refused at once by the open breaker
        # The open breaker refuses without calling the dead inventory. On a slow machine its
        # open duration (0.6 s) may lapse first: then one call is a probe (502, one request),
        # and the breaker, open again for longer, refuses the next.
        for _ in range(5):
            reached = inventory.requests
            status = client.get("/orders/43").status_code
            if status == 503:
                assert inventory.requests == reached  # the dead inventory was not called
                break
            assert (status, inventory.requests - reached) == (502, 1)
        else:
            raise AssertionError("the open breaker never refused a call at once")

        inventory.down = False  # back; its breaker is closed again for this test
        for host in service.inventory._transport.policies().values():
            host.breaker.reset()
        pricing = service.price.__seawall_policy__.breaker
        with seawall.testing.force_open(pricing):  # the pricing engine is down: no price
            answer = client.get("/orders/44")
        assert answer.status_code == 200
        assert answer.json()["price"] is None
        exposition = client.get("/metrics")
    assert exposition.status_code == 200
    samples = [
        (sample.name, sample.labels)
        for family in text_string_to_metric_families(exposition.text)
        for sample in family.samples
    ]
    queries = block(readme_section(), "promql")
    selectors = re.findall(r"(seawall_\w+)(\{[^}]*\})?", queries)
    assert len(selectors) >= 8
    for name, matchers in selectors:
        assert any(sample == name and _matches(labels, matchers) for sample, labels in samples), (
            f"no series for {name}{matchers} in the recipe's /metrics"
        )


def _matches(labels: dict[str, str], matchers: str) -> bool:
    for label, op, value in re.findall(r'(\w+)\s*(=~|!~|!=|=)\s*"([^"]*)"', matchers):
        have = labels.get(label, "")
        full = re.fullmatch(value, have) is not None
        if (
            (op == "=" and have != value)
            or (op == "!=" and have == value)
            or (op == "=~" and not full)
            or (op == "!~" and full)
        ):
            return False
    return True


@pytest.mark.skipif(PROMTOOL is None, reason="promtool is not on PATH (.ci/run installs it)")
def test_the_scrape_config_and_the_queries_pass_promtool(tmp_path: Path) -> None:
    assert PROMTOOL is not None
    section = readme_section()
    config = tmp_path / "prometheus.yml"
    config.write_text(block(section, "yaml"))
    checked = subprocess.run(
        [PROMTOOL, "check", "config", str(config)], capture_output=True, text=True, check=False
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    queries = [
        " ".join(line.strip() for line in group.splitlines() if not line.startswith("#"))
        for group in block(section, "promql").strip().split("\n\n")
    ]
    rules = tmp_path / "rules.yml"
    rules.write_text(
        "groups:\n  - name: recipe\n    rules:\n"
        + "".join(
            f"      - record: recipe:query{n}\n        expr: {json.dumps(query)}\n"
            for n, query in enumerate(queries)
        )
    )
    checked = subprocess.run(
        [PROMTOOL, "check", "rules", str(rules)], capture_output=True, text=True, check=False
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_the_readme_metrics_route_answers_at_metrics_itself() -> None:
    # The "Exposing it" recipe, run as written: /metrics answers 200 with seawall's series
    # (a mounted ASGI app would answer 307 with an empty body).
    text = README.read_text().split("### Exposing it", 1)[1]
    recipe = block(text, "python")
    start = recipe.index("# FastAPI (or any framework)")
    end = recipe.index("# a registry of your own")
    import prometheus_client
    from fastapi import FastAPI

    namespace: dict[str, Any] = {"app": FastAPI(), "prometheus_client": prometheus_client}
    exec(recipe[start:end], namespace)
    policy = seawall.Policy("exposed-by-the-route", breaker=True)
    policy.call(lambda: None)
    with TestClient(namespace["app"]) as client:
        answer = client.get("/metrics", follow_redirects=False)
    assert answer.status_code == 200
    assert 'seawall_call_duration_seconds_count{operation="exposed-by-the-route"' in answer.text
