"""The bounds on series that a hostile dependency (or hostile hostnames) cannot push past.

Each bound is a number the README states: at most 20 ``error_type`` values per operation
(plus seawall's own and ``_OTHER``), at most 10 (method, status code, error type) label sets
per server in the per-attempt series, and per httpx transport at most ``labelled_hosts`` hosts
with series of their own (the rest share ``<name>:_OTHER``), each adding at most 400 series.
"""

from __future__ import annotations

import random
from collections import Counter
from pathlib import Path

import httpx
import pytest
from helpers import Boom
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

import seawall
from seawall._stats.calls import ERROR_TYPE_CAP, OWN_ERROR_TYPES
from seawall._stats.http import LABEL_SETS
from seawall.httpx import FailureResponse, ResilientTransport
from seawall.metrics import SeawallCollector

#: What the README says a labelled host adds at most, all families together.
SERIES_PER_HOST = 400


def samples() -> list[tuple[str, dict[str, str]]]:
    registry = CollectorRegistry()
    registry.register(SeawallCollector())
    text = generate_latest(registry).decode()
    return [
        (sample.name, sample.labels)
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    ]


def error_types(operation: str) -> set[str]:
    return {
        labels["error_type"]
        for name, labels in samples()
        if name == "seawall_call_errors_total" and labels["operation"] == operation
    }


def test_status_codes_count_against_the_error_type_cap() -> None:
    codes = iter(range(500, 600))
    transport = ResilientTransport(
        httpx.MockTransport(lambda request: httpx.Response(next(codes))),
        policy=seawall.Policy(
            "hostile-codes",
            breaker=seawall.CircuitBreaker(minimum_calls=10**6, consecutive_failures=None),
        ),
    )
    with httpx.Client(transport=transport) as client:
        for _ in range(100):
            client.get("http://one-host.test/")
    kept = error_types("hostile-codes:one-host.test:80")
    assert "_OTHER" in kept
    assert len(kept - OWN_ERROR_TYPES) == ERROR_TYPE_CAP


def test_subclasses_of_seawalls_errors_count_against_the_cap() -> None:
    policy = seawall.Policy("hostile-classes", breaker=seawall.CircuitBreaker(minimum_calls=10**6))
    for i in range(100):
        kind = type(f"Custom{i}", (seawall.SeawallError,), {})

        def fail(kind: type[Exception] = kind) -> None:
            raise kind("x")

        with pytest.raises(seawall.SeawallError):
            policy.call(fail)
    kept = error_types("hostile-classes")
    assert len(kept - OWN_ERROR_TYPES) == ERROR_TYPE_CAP
    assert "_OTHER" in kept


def test_same_named_policies_together_keep_the_cap() -> None:
    policies = [seawall.Policy("capped-together", bulkhead=5) for _ in range(3)]
    for n, policy in enumerate(policies):
        for i in range(10):
            kind = type(f"Error{n}x{i}", (Boom,), {})

            def fail(kind: type[Exception] = kind) -> None:
                raise kind

            with pytest.raises(Boom):
                policy.call(fail)
    kept = error_types("capped-together")
    assert len(kept - {"_OTHER"}) == ERROR_TYPE_CAP
    assert "_OTHER" in kept


def test_a_server_shows_at_most_ten_label_sets() -> None:
    rng = random.Random(7)

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(rng.randrange(100, 1000))

    transport = ResilientTransport(
        httpx.MockTransport(handler), policy=seawall.Policy("sets", bulkhead=5)
    )
    with httpx.Client(transport=transport) as client:
        for method in ["GET", "POST", "PUT", "PATCH", "DELETE"] * 40:
            client.request(method, "http://sets.test/")
    kinds = {
        (labels["http_request_method"], labels["http_response_status_code"], labels["error_type"])
        for name, labels in samples()
        if name.startswith("seawall_http_client_request_duration_seconds")
        and labels.get("server_address") == "sets.test"
    }
    assert len(kinds) == LABEL_SETS
    assert ("_OTHER", "_OTHER", "_OTHER") in kinds


def test_hostile_hosts_statuses_errors_and_methods_stay_within_the_stated_series() -> None:
    rng = random.Random(1)
    errors = [type(f"Hostile{i}", (httpx.TransportError,), {}) for i in range(50)]

    def handler(request: httpx.Request) -> httpx.Response:
        if rng.random() < 0.3:
            raise errors[rng.randrange(50)]("x", request=request)
        return httpx.Response(rng.randrange(100, 1000))

    template = seawall.Policy(
        "hostile",
        total_timeout=5,
        retry=seawall.Retry(
            on=(httpx.TransportError, FailureResponse),
            attempts=3,
            wait=0,
            budget=seawall.RetryBudget(),
        ),
        breaker=seawall.CircuitBreaker(minimum_calls=10**6, consecutive_failures=None),
        attempt_timeout=1,
        bulkhead=10,
    )
    transport = ResilientTransport(httpx.MockTransport(handler), policy=template)
    methods = ["GET", "POST", "PUT", "DELETE", "PATCH", "BREW"]
    with httpx.Client(transport=transport) as client:
        for _ in range(3000):
            try:
                client.request(rng.choice(methods), f"http://h{rng.randrange(200)}.test/")
            except httpx.HTTPError:
                pass
    per_host: Counter[str] = Counter()
    for _, labels in samples():
        name = labels.get("operation") or labels.get("policy")
        if name is not None and name.startswith("hostile:"):
            per_host[name.removesuffix(".attempt").split(":", 1)[1]] += 1
        elif labels.get("server_address", "").startswith(("h", "_OTHER")):
            address = labels["server_address"]
            per_host[address if address == "_OTHER" else f"{address}:80"] += 1
    assert len(per_host) == transport.labelled_hosts + 1  # the labelled ones, and _OTHER
    assert max(per_host.values()) <= SERIES_PER_HOST
    assert sum(per_host.values()) <= (transport.labelled_hosts + 1) * SERIES_PER_HOST


def test_hosts_past_the_labelled_ones_share_a_name_but_not_a_breaker() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(500 if request.url.host == "down.test" else 200)

    template = seawall.Policy(
        "shared-series",
        breaker=seawall.CircuitBreaker(minimum_calls=2, window_calls=2, consecutive_failures=None),
    )
    transport = ResilientTransport(httpx.MockTransport(handler), policy=template, labelled_hosts=1)
    with httpx.Client(transport=transport) as client:
        client.get("http://first.test/")
        for _ in range(2):  # opens its breaker
            client.get("http://down.test/")
        assert client.get("http://up.test/").status_code == 200
    policies = transport.policies()
    assert policies["first.test:80"].name == "shared-series:first.test:80"
    assert policies["down.test:80"].name == "shared-series:_OTHER"
    assert policies["up.test:80"].name == "shared-series:_OTHER"
    assert policies["down.test:80"].breaker is not None
    assert policies["down.test:80"].breaker.state is seawall.CircuitState.OPEN
    assert policies["up.test:80"].breaker is not None
    assert policies["up.test:80"].breaker.state is seawall.CircuitState.CLOSED


@pytest.mark.parametrize(("value", "error"), [(0, ValueError), (1.5, TypeError)])
def test_labelled_hosts_is_checked(value: object, error: type[Exception]) -> None:
    with pytest.raises(error, match="labelled_hosts"):
        ResilientTransport(labelled_hosts=value)  # type: ignore[arg-type]


def test_the_readme_states_these_bounds() -> None:
    text = " ".join((Path(__file__).parent.parent / "README.md").read_text().split())
    assert ERROR_TYPE_CAP == 20
    assert LABEL_SETS == 10
    assert "at most 20 distinct values per operation" in text
    assert f"at most {SERIES_PER_HOST} series" in text
    assert "`labelled_hosts=20`" in text
    assert f"at most 21 \N{MULTIPLICATION SIGN} {SERIES_PER_HOST} = 8,400 series" in text
