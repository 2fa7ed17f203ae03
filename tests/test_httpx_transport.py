"""seawall.httpx transports, against mocked servers (respx, httpx.MockTransport); each case
runs through the sync and the async transport."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any, ClassVar

import httpx
import pytest
import respx

import seawall
from seawall.httpx import (
    AsyncResilientTransport,
    BulkheadFullHTTPError,
    CircuitOpenHTTPError,
    ResilientTransport,
    TimeoutHTTPError,
    parse_retry_after,
)
from seawall.metrics._readings import read_all
from seawall.testing import FakeClock, Simulation, no_waits

HTTP_SERIES = "seawall_http_client_request_duration_seconds"

Transport = ResilientTransport | AsyncResilientTransport


@pytest.fixture(params=["sync", "async"])
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def make(kind: str, inner: Any = None, **options: Any) -> Transport:
    if kind == "sync":
        return ResilientTransport(inner, **options)
    return AsyncResilientTransport(inner, **options)


def send(
    kind: str,
    transport: Transport,
    method: str,
    url: str,
    *,
    on: Simulation | None = None,
    **kwargs: Any,
) -> httpx.Response:
    """One request through the sync or the async transport; the async one on a loop of its
    own, or on the simulation ``on`` (simulated time)."""
    if kind == "sync":
        assert isinstance(transport, ResilientTransport)
        with httpx.Client(transport=transport) as client:
            return client.request(method, url, **kwargs)
    assert isinstance(transport, AsyncResilientTransport)

    async def main() -> httpx.Response:
        async with httpx.AsyncClient(transport=transport) as client:
            return await client.request(method, url, **kwargs)

    if on is not None:
        response: httpx.Response = on.run(main)
        return response
    return asyncio.run(main())


def policy(
    *, attempts: int = 3, breaker: seawall.CircuitBreaker | None = None, **kw: Any
) -> seawall.Policy:
    return seawall.Policy(
        "api",
        retry=seawall.Retry(
            on=(httpx.TransportError, seawall.httpx.FailureResponse), attempts=attempts, wait=0.0
        ),
        breaker=breaker,
        **kw,
    )


class Closing(httpx.ByteStream):
    """A response body that notes when it is closed."""

    closed: ClassVar[list[int]] = []

    def __init__(self, status: int) -> None:
        super().__init__(b"")
        self.status = status

    def close(self) -> None:
        Closing.closed.append(self.status)

    async def aclose(self) -> None:
        Closing.closed.append(self.status)


@pytest.fixture
def closing() -> Iterator[list[int]]:
    Closing.closed = []
    return Closing.closed


def scripted(*statuses: int | type[Exception], headers: dict[str, str] | None = None) -> Any:
    """A MockTransport answering with ``statuses`` in turn (an exception type is raised),
    recording the requests it saw."""
    seen: list[httpx.Request] = []
    script = list(statuses)

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        status = script.pop(0) if len(script) > 1 else script[0]
        if isinstance(status, type):
            raise status("scripted", request=request)
        return httpx.Response(status, headers=headers, stream=Closing(status), request=request)

    transport = httpx.MockTransport(handler)
    transport.seen = seen  # type: ignore[attr-defined]
    return transport


# -- classification and retries ------------------------------------------------------------------


def test_5xx_is_retried_then_the_last_response_returned(kind: str, closing: list[int]) -> None:
    inner = scripted(500, 502, 503)
    response = send(kind, make(kind, inner, policy=policy()), "GET", "https://a.test/")
    assert response.status_code == 503
    assert len(inner.seen) == 3
    assert closing == [500, 502, 503]  # the last one closed by the client, after reading it


def test_the_returned_response_is_left_open(closing: list[int]) -> None:
    transport = ResilientTransport(scripted(500, 502), policy=policy(attempts=2))
    response = transport.handle_request(httpx.Request("GET", "https://a.test/"))
    assert response.status_code == 502
    assert closing == [500]


def test_5xx_then_success(kind: str) -> None:
    inner = scripted(500, 200)
    response = send(kind, make(kind, inner, policy=policy()), "GET", "https://a.test/")
    assert response.status_code == 200
    assert len(inner.seen) == 2


def test_other_4xx_is_a_success_and_not_retried(kind: str) -> None:
    inner = scripted(404)
    transport = make(kind, inner, policy=policy(breaker=seawall.CircuitBreaker()))
    assert send(kind, transport, "GET", "https://a.test/").status_code == 404
    assert len(inner.seen) == 1
    snap = transport.policies()["a.test:443"].breaker.snapshot()  # type: ignore[union-attr]
    assert (snap.successes, snap.failures) == (1, 0)


def test_connect_errors_are_retried_and_raised(kind: str) -> None:
    inner = scripted(httpx.ConnectError)
    with pytest.raises(httpx.ConnectError):
        send(kind, make(kind, inner, policy=policy()), "GET", "https://a.test/")
    assert len(inner.seen) == 3


def test_post_is_not_retried(kind: str) -> None:
    inner = scripted(500, 200)
    response = send(kind, make(kind, inner, policy=policy()), "POST", "https://a.test/", json={})
    assert response.status_code == 500
    assert len(inner.seen) == 1


def test_retry_methods_can_be_changed(kind: str) -> None:
    inner = scripted(500, 200)
    transport = make(kind, inner, policy=policy(), retry_methods={"post"})
    assert send(kind, transport, "POST", "https://a.test/", json={}).status_code == 200
    inner = scripted(500, 200)
    transport = make(kind, inner, policy=policy(), retry_methods={"post"})
    assert send(kind, transport, "GET", "https://a.test/").status_code == 500


def test_a_streamed_body_is_not_retried(kind: str) -> None:
    inner = scripted(500, 200)
    transport = make(kind, inner, policy=policy())
    if kind == "sync":
        body: Any = iter([b"a", b"b"])
    else:

        async def agen() -> Any:
            yield b"a"
            yield b"b"

        body = agen()
    response = send(kind, transport, "PUT", "https://a.test/", content=body)
    assert response.status_code == 500
    assert len(inner.seen) == 1


def test_a_bytes_body_is_replayed(kind: str) -> None:
    bodies: list[bytes] = []

    def handler(request: httpx.Request) -> httpx.Response:
        bodies.append(request.read())
        return httpx.Response(500 if len(bodies) == 1 else 200)

    transport = make(kind, httpx.MockTransport(handler), policy=policy())
    assert send(kind, transport, "PUT", "https://a.test/", content=b"xyz").status_code == 200
    assert bodies == [b"xyz", b"xyz"]


def test_429_with_retry_after_waits_once_then_succeeds(kind: str) -> None:
    clock = FakeClock()
    template = seawall.Policy(
        "api", retry=seawall.Retry(on=seawall.httpx.FailureResponse, wait=0.0, clock=clock)
    )
    calls = {"n": 0}

    def handler(request: httpx.Request) -> httpx.Response:
        calls["n"] += 1
        if calls["n"] == 1:
            return httpx.Response(429, headers={"Retry-After": "1"})
        return httpx.Response(200)

    transport = make(kind, httpx.MockTransport(handler), policy=template)
    assert send(kind, transport, "GET", "https://a.test/").status_code == 200
    assert calls["n"] == 2
    assert clock.sleeps == [1.0]


def test_retry_after_http_date_and_cap(kind: str) -> None:
    clock = FakeClock()
    template = seawall.Policy(
        "api", retry=seawall.Retry(on=seawall.httpx.FailureResponse, wait=0.0, clock=clock)
    )
    when = format_datetime(datetime.now(UTC) + timedelta(seconds=3600), usegmt=True)
    inner = scripted(503, 200, headers={"Retry-After": when})
    transport = make(kind, inner, policy=template, max_retry_after=2.5)
    assert send(kind, transport, "GET", "https://a.test/").status_code == 200
    assert clock.sleeps == [2.5]


def test_malformed_retry_after_is_ignored(kind: str) -> None:
    clock = FakeClock()
    template = seawall.Policy(
        "api", retry=seawall.Retry(on=seawall.httpx.FailureResponse, wait=0.0, clock=clock)
    )
    inner = scripted(429, 200, headers={"Retry-After": "soon, maybe"})
    transport = make(kind, inner, policy=template)
    assert send(kind, transport, "GET", "https://a.test/").status_code == 200
    assert clock.sleeps == []  # the template's wait (0 s): no sleep at all


def test_a_wait_past_the_deadline_is_not_made(kind: str, closing: list[int]) -> None:
    clock = FakeClock()
    template = seawall.Policy(
        "api",
        retry=seawall.Retry(on=seawall.httpx.FailureResponse, wait=0.0, deadline=5.0, clock=clock),
    )
    inner = scripted(429, 200, headers={"Retry-After": "10"})
    transport = make(kind, inner, policy=template)
    assert send(kind, transport, "GET", "https://a.test/").status_code == 429
    assert len(inner.seen) == 1
    assert clock.sleeps == []
    assert closing == [429]  # by the client, once it read the body


def test_parse_retry_after() -> None:
    now = datetime(2024, 1, 1, tzinfo=UTC)
    assert parse_retry_after("120") == 120.0
    assert parse_retry_after(" 3 ") == 3.0
    assert parse_retry_after("Mon, 01 Jan 2024 00:00:30 GMT", now=now) == 30.0
    assert parse_retry_after("Sun, 31 Dec 2023 00:00:00 GMT", now=now) == 0.0
    for bad in (None, "", "-1", "1.5", "soon", "Mon, 99 Foo 2024", "١٢"):
        assert parse_retry_after(bad, now=now) is None
    assert parse_retry_after("9" * 40) == float("inf")


def test_backpressure_is_not_a_breaker_failure(kind: str) -> None:
    breaker = seawall.CircuitBreaker(minimum_calls=2, failure_ratio=0.5)
    inner = scripted(429)
    transport = make(kind, inner, policy=policy(attempts=1, breaker=breaker))
    with no_waits():
        for _ in range(5):
            assert send(kind, transport, "GET", "https://a.test/").status_code == 429
    snap = transport.policies()["a.test:443"].breaker.snapshot()  # type: ignore[union-attr]
    assert (snap.failures, snap.ignored, snap.state) == (0, 5, seawall.CircuitState.CLOSED)


def test_custom_classify(kind: str) -> None:
    inner = scripted(404, 200)
    transport = make(
        kind,
        inner,
        policy=policy(),
        classify=lambda r: "failure" if r.status_code == 404 else "success",
    )
    assert send(kind, transport, "GET", "https://a.test/").status_code == 200
    assert len(inner.seen) == 2


def test_a_classifier_can_read_the_request(kind: str) -> None:
    # Transports return responses without .request; the client sets it only afterwards.
    def classify(response: httpx.Response) -> str:
        return "failure" if response.request.url.path.startswith("/v1/") else "success"

    inner = httpx.MockTransport(lambda request: httpx.Response(404))
    transport = make(kind, inner, policy=policy(attempts=2), classify=classify)
    with no_waits():
        assert send(kind, transport, "GET", "http://a.test/v1/x").status_code == 404
        assert send(kind, transport, "GET", "http://a.test/v2/x").status_code == 404
    reading = transport.policies()["a.test:80"].stats.read()
    assert reading.errors == {("failure", "404"): 1}
    assert sum(reading.durations["success"][0]) == 1


def test_classify_returning_nonsense_is_a_type_error(kind: str, closing: list[int]) -> None:
    transport = make(kind, scripted(200), policy=policy(), classify=lambda r: "meh")
    with pytest.raises(TypeError, match="classify"):
        send(kind, transport, "GET", "https://a.test/")
    assert closing == [200]


# -- per host breakers, and httpx-compatible errors -----------------------------------------------


def test_a_host_that_goes_down_fails_fast_while_another_works(kind: str) -> None:
    breaker = seawall.CircuitBreaker(minimum_calls=3, failure_ratio=0.5, open_duration=60)
    transport = make(kind, policy=policy(attempts=1, breaker=breaker))
    with respx.mock(assert_all_called=False) as router:
        down = router.get("https://down.test/").mock(side_effect=httpx.ConnectError("refused"))
        router.get("https://up.test/").mock(return_value=httpx.Response(200))
        for _ in range(3):
            with pytest.raises(httpx.ConnectError):
                send(kind, transport, "GET", "https://down.test/")
        with pytest.raises(httpx.TransportError) as caught:
            send(kind, transport, "GET", "https://down.test/")
        assert isinstance(caught.value, CircuitOpenHTTPError)
        assert isinstance(caught.value, seawall.CircuitOpenError)
        assert caught.value.request.url == "https://down.test/"
        assert down.call_count == 3
        assert send(kind, transport, "GET", "https://up.test/").status_code == 200
    assert set(transport.policies()) == {"down.test:443", "up.test:443"}
    assert transport.policies()["down.test:443"].name == "api:down.test:443"


def test_a_full_bulkhead_is_an_httpx_error(kind: str) -> None:
    transport = make(kind, scripted(200), policy=seawall.Policy("api", bulkhead=1))
    send(kind, transport, "GET", "https://a.test/")
    host_bulkhead = transport.policies()["a.test:443"].bulkhead
    assert host_bulkhead is not None
    assert host_bulkhead is not transport.template.bulkhead
    assert host_bulkhead._take()  # occupy the only slot
    with pytest.raises(httpx.TransportError) as caught:
        send(kind, transport, "GET", "https://a.test/")
    assert isinstance(caught.value, BulkheadFullHTTPError)
    assert caught.value.request.url.host == "a.test"


def test_an_async_timeout_is_an_httpx_timeout(simulated: Simulation) -> None:
    async def slow(request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(5)
        return httpx.Response(200)

    transport = AsyncResilientTransport(
        httpx.MockTransport(slow), policy=seawall.Policy("api", total_timeout=0.05)
    )

    async def main() -> None:
        async with httpx.AsyncClient(transport=transport) as client:
            await client.get("https://a.test/")

    with pytest.raises(httpx.TimeoutException) as caught:
        simulated.run(main)
    assert simulated.now() == 0.05  # cut at the total timeout, not after the server's 5 s
    assert isinstance(caught.value, TimeoutHTTPError)
    assert isinstance(caught.value, seawall.TimeoutExceededError)
    assert isinstance(caught.value, TimeoutError)
    assert caught.value.request.url.host == "a.test"


def test_deadline_shortens_request_timeouts(kind: str) -> None:
    seen: list[dict[str, float]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(dict(request.extensions["timeout"]))
        return httpx.Response(200)

    transport = make(
        kind, httpx.MockTransport(handler), policy=seawall.Policy("api", total_timeout=2.0)
    )
    send(kind, transport, "GET", "https://a.test/", timeout=httpx.Timeout(10.0, connect=1.0))
    (timeout,) = seen
    assert timeout["connect"] == 1.0
    for name in ("read", "write", "pool"):
        assert 1.5 < timeout[name] <= 2.0


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        # sooner than every timeout of the request's own, or than none at all: all are cut
        (httpx.Timeout(5.0), {"connect": 2.0, "read": 2.0, "write": 2.0, "pool": 2.0}),
        (httpx.Timeout(None), {"connect": 2.0, "read": 2.0, "write": 2.0, "pool": 2.0}),
        # later than all of them: the request's own, as they are
        (httpx.Timeout(1.0, read=1.5), {"connect": 1.0, "read": 1.5, "write": 1.0, "pool": 1.0}),
        # between: only the longer ones are cut
        (
            httpx.Timeout(None, connect=1.0, read=3.0),
            {"connect": 1.0, "read": 2.0, "write": 2.0, "pool": 2.0},
        ),
    ],
)
def test_each_attempt_gets_its_own_timeouts_cut_to_its_deadline(
    kind: str, given: httpx.Timeout, expected: dict[str, float]
) -> None:
    clock = FakeClock()
    seen: list[dict[str, float]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(dict(request.extensions["timeout"]))
        return httpx.Response(500 if len(seen) == 1 else 200)

    timeout = seawall.Timeout(2.0, clock=clock)
    retry = seawall.Retry(on=seawall.httpx.FailureResponse, attempts=2, wait=0, clock=clock)
    api = seawall.Policy("api", retry=retry, attempt_timeout=timeout, clock=clock)
    transport = make(kind, httpx.MockTransport(handler), policy=api)
    assert send(kind, transport, "GET", "https://a.test/", timeout=given).status_code == 200
    assert seen == [expected, expected]  # the retry's attempt has a fresh 2 s


def test_outer_sync_timeout_shortens_and_converts() -> None:
    seen: list[dict[str, float]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(dict(request.extensions["timeout"]))
        return httpx.Response(200)

    transport = ResilientTransport(httpx.MockTransport(handler), policy=policy())
    with httpx.Client(transport=transport) as client:
        seawall.Timeout(3.0).call(client.get, "https://a.test/")
        assert 2.5 < seen[0]["read"] <= 3.0
        clock = FakeClock()
        outer = seawall.Timeout(1.0, clock=clock)

        def late() -> None:
            clock.advance(2.0)
            client.get("https://a.test/")

        with pytest.raises(httpx.TimeoutException):
            outer.call(late)
    assert len(seen) == 1


# -- configuration ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "error", "param"),
    [
        ({"policy": seawall.Retry(on=Exception)}, TypeError, "policy"),
        ({"per_host": 1}, TypeError, "per_host"),
        ({"key": "host"}, TypeError, "key"),
        ({"max_hosts": 0}, ValueError, "max_hosts"),
        ({"max_hosts": 1.5}, TypeError, "max_hosts"),
        ({"max_retry_after": -1}, ValueError, "max_retry_after"),
        ({"retry_methods": "GET"}, TypeError, "retry_methods"),
        ({"retry_methods": [1]}, TypeError, "retry_methods"),
        ({"classify": 3}, TypeError, "classify"),
    ],
)
def test_bad_configuration(kind: str, options: dict[str, Any], error: type, param: str) -> None:
    with pytest.raises(error, match=param):
        make(kind, **options)


def test_bad_inner_transport() -> None:
    with pytest.raises(TypeError, match="transport"):
        ResilientTransport(object())  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="transport"):
        AsyncResilientTransport(httpx.HTTPTransport())  # type: ignore[arg-type]


def test_default_policy_shape() -> None:
    transport = ResilientTransport(httpx.MockTransport(lambda r: httpx.Response(200)))
    template = transport.template
    assert template.retry is not None
    assert template.retry.attempts == 3
    assert template.retry.budget is not None
    assert template.breaker is not None
    assert template.bulkhead is None
    assert transport.retry_methods == frozenset(
        {"GET", "HEAD", "OPTIONS", "PUT", "DELETE", "TRACE"}
    )
    with httpx.Client(transport=transport) as client:
        client.get("https://a.test/")
        client.get("https://b.test/")
    a, b = transport.policies().values()
    assert a.breaker is not b.breaker
    assert a.breaker is not template.breaker
    assert a.retry is not None
    assert b.retry is not None
    assert a.retry.budget is not b.retry.budget
    assert a.retry.budget is not template.retry.budget


def test_per_host_false_shares_one_policy(kind: str) -> None:
    transport = make(kind, scripted(200), policy=policy(), per_host=False)
    send(kind, transport, "GET", "https://a.test/")
    send(kind, transport, "GET", "https://b.test/")
    assert list(transport.policies()) == [""]
    assert transport.policies()[""].name == "api"


def test_custom_key(kind: str) -> None:
    transport = make(kind, scripted(200), policy=policy(), key=lambda r: r.url.path.strip("/"))
    send(kind, transport, "GET", "https://a.test/users")
    send(kind, transport, "GET", "https://a.test/orders")
    assert set(transport.policies()) == {"users", "orders"}


def test_an_idna_host_is_one_key_with_its_unicode_labels(kind: str) -> None:
    transport = make(kind, scripted(200, 200), policy=policy())
    send(kind, transport, "GET", "http://xn--fiqs8s.icom.museum:8080/")
    send(kind, transport, "GET", "http://中国.icom.museum:8080/")
    assert list(transport.policies()) == ["中国.icom.museum:8080"]
    assert transport.policies()["中国.icom.museum:8080"].name == "api:中国.icom.museum:8080"
    got = {labels: sum(counts) for labels, (counts, _) in transport.stats.read().items()}
    assert got == {("GET", "中国.icom.museum", "8080", "200", ""): 2}


def test_hosts_are_kept_least_recently_used_first() -> None:
    transport = ResilientTransport(
        httpx.MockTransport(lambda request: httpx.Response(200)), policy=policy(), max_hosts=3
    )
    with httpx.Client(transport=transport) as client:
        for host in ("a", "b", "c", "a", "a", "b"):
            client.get(f"http://{host}.test/")
        assert list(transport.policies()) == ["c.test:80", "a.test:80", "b.test:80"]
        client.get("http://d.test/")  # evicts c, the least recently used
        assert list(transport.policies()) == ["a.test:80", "b.test:80", "d.test:80"]
        client.get("http://a.test/")
        client.get("http://e.test/")  # evicts b
        assert list(transport.policies()) == ["d.test:80", "a.test:80", "e.test:80"]


def test_the_host_used_last_is_not_evicted_after_a_race_left_it_short_of_the_end() -> None:
    transport = ResilientTransport(
        httpx.MockTransport(lambda request: httpx.Response(200)), policy=policy(), max_hosts=3
    )
    with httpx.Client(transport=transport) as client:
        for host in ("a", "b", "c", "b"):
            client.get(f"http://{host}.test/")
        # What two racing requests can leave: b used last, but a moved behind it.
        transport._hosts.move_to_end(("a.test", 80))
        for _ in range(3):
            client.get("http://b.test/")  # the shortcut: b is the host used last
        client.get("http://d.test/")
        client.get("http://e.test/")
    assert list(transport.policies()) == ["b.test:80", "d.test:80", "e.test:80"]


# -- bounded memory and metrics -----------------------------------------------------------------


def test_ten_thousand_hostnames_stay_capped() -> None:
    transport = ResilientTransport(
        policy=policy(attempts=1, breaker=seawall.CircuitBreaker()), max_hosts=50
    )
    with respx.mock(assert_all_called=False) as router:
        router.get(url__regex=r"https://h\d+\.test/").mock(return_value=httpx.Response(200))
        with httpx.Client(transport=transport) as client:
            for i in range(10_000):
                client.get(f"https://h{i}.test/")
    hosts = transport.policies()
    assert len(hosts) == 50
    assert list(hosts)[-1] == "h9999.test:443"  # the most recent are kept
    readings = read_all()
    addresses = {
        labels[1]
        for labels in readings[HTTP_SERIES].histograms
        if labels[1].startswith("h") or labels[1] == "_OTHER"
    }
    own = {labels for labels in transport.stats.read()}
    # The first labelled_hosts addresses, and _OTHER
    assert len({labels[1] for labels in own}) == transport.labelled_hosts + 1
    assert "_OTHER" in addresses
    total = sum(sum(counts) for counts, _ in transport.stats.read().values())
    assert total == 10_000
    breakers = [
        p
        for p in __import__("seawall._stats.live", fromlist=["x"]).live_policies()
        if isinstance(p, seawall.CircuitBreaker) and p.name.startswith("api:")
    ]
    assert len(breakers) <= 50 + 5  # evicted ones are gone (a few may await collection)


def test_server_labels_are_capped_as_address_and_port_pairs() -> None:
    transport = ResilientTransport(
        httpx.MockTransport(lambda request: httpx.Response(200)),
        policy=policy(attempts=1),
        labelled_hosts=2,
    )
    with httpx.Client(transport=transport) as client:
        for i in range(300):
            client.get(f"http://h{i % 7}.test:{10_000 + i}/")
    series = transport.stats.read()
    assert sum(sum(counts) for counts, _ in series.values()) == 300
    others = {labels for labels in series if labels[1] == "_OTHER"}
    assert others == {("GET", "_OTHER", "_OTHER", "200", "")}
    assert len(series) == 3  # the first two (address, port) pairs, and _OTHER


def test_attempt_metrics(kind: str) -> None:
    inner = scripted(500, httpx.ConnectError, 404)
    transport = make(kind, inner, policy=policy())
    assert send(kind, transport, "GET", "http://a.test:8080/").status_code == 404
    got = {labels: sum(counts) for labels, (counts, _) in transport.stats.read().items()}
    assert got == {
        ("GET", "a.test", "8080", "500", "500"): 1,
        ("GET", "a.test", "8080", "", "ConnectError"): 1,
        ("GET", "a.test", "8080", "404", "404"): 1,
    }
    series = read_all()[HTTP_SERIES].histograms
    assert ("GET", "a.test", "8080", "500", "500") in series
    # the call-level SLI of the host's policy sees the final outcome, a success (404)
    reading = transport.policies()["a.test:8080"].stats.read()
    assert sum(reading.durations["success"][0]) == 1


def test_the_template_has_no_series_its_per_host_copies_do(kind: str) -> None:
    name = f"template-{kind}"
    template = seawall.Policy(
        name,
        retry=seawall.Retry(on=httpx.TransportError, attempts=2, wait=0.0),
        breaker=seawall.CircuitBreaker(),
        bulkhead=seawall.Bulkhead(5),
    )
    transport = make(kind, scripted(200), policy=template)
    assert send(kind, transport, "GET", "http://a.test/").status_code == 200
    readings = read_all()
    names = {
        labels[0]
        for reading in readings.values()
        for labels in (*reading.values, *reading.histograms)
    }
    assert name not in names
    assert f"{name}:a.test:80" in names
    calls = readings["seawall_circuit_breaker_calls_total"].values
    assert calls[(f"{name}:a.test:80", "success")] == 1


def test_a_fallback_answer_is_timed_from_the_clock_not_from_an_attempt(kind: str) -> None:
    clock = FakeClock(start=1000.0)
    template = seawall.Policy(
        "with-fallback",
        fallback=seawall.Fallback(httpx.Response(200, text="cached"), on=httpx.TransportError),
        retry=seawall.Retry(
            on=(httpx.TransportError, seawall.httpx.FailureResponse),
            attempts=2,
            wait=0.0,
            clock=clock,
        ),
        clock=clock,
    )
    answers: list[int | None] = [503, None]  # a response first, then none at all

    def handler(request: httpx.Request) -> httpx.Response:
        clock.advance(1.0)
        status = answers.pop(0)
        if status is None:
            raise httpx.ConnectError("down", request=request)
        return httpx.Response(status, request=request)

    transport = make(kind, httpx.MockTransport(handler), policy=template)
    assert send(kind, transport, "GET", "http://a.test/").text == "cached"
    reading = transport.policies()["a.test:80"].stats.read()
    counts, total = reading.durations["fallback"]  # a fallback's answer, not a success
    assert sum(counts) == 1
    assert total == 2.0  # both attempts: not the first one's end, and never negative
    assert reading.errors == {("fallback", "ConnectError"): 1}


def test_a_call_without_any_response_is_not_timed_from_zero(kind: str) -> None:
    clock = FakeClock(start=1000.0)
    template = seawall.Policy(
        "fallback-only",
        fallback=seawall.Fallback(httpx.Response(200, text="cached"), on=httpx.TransportError),
        clock=clock,
    )
    transport = make(kind, scripted(httpx.ConnectError), policy=template)
    assert send(kind, transport, "GET", "http://a.test/").text == "cached"
    counts, total = transport.policies()["a.test:80"].stats.read().durations["fallback"]
    assert (sum(counts), total) == (1, 0.0)


def test_a_template_also_used_as_a_decorator_keeps_its_own_series(kind: str) -> None:
    name = f"shared-{kind}"
    template = seawall.Policy(name, breaker=seawall.CircuitBreaker())
    transport = make(kind, scripted(200), policy=template)
    assert send(kind, transport, "GET", "http://a.test/").status_code == 200
    names = {labels[0] for labels in read_all()["seawall_call_duration_seconds"].histograms}
    assert f"{name}:a.test:80" in names
    assert name not in names  # only a template so far

    @template
    def charge() -> str:
        return "ok"

    assert charge() == "ok"
    readings = read_all()
    durations = readings["seawall_call_duration_seconds"].histograms
    assert sum(durations[(name, "success")][0]) == 1
    calls = readings["seawall_circuit_breaker_calls_total"].values
    assert calls[(name, "success")] == 1
    assert calls[(f"{name}:a.test:80", "success")] == 1


def test_failed_call_sli_uses_the_status_code(kind: str) -> None:
    transport = make(kind, scripted(503), policy=policy(attempts=2))
    assert send(kind, transport, "GET", "https://a.test/").status_code == 503
    reading = transport.policies()["a.test:443"].stats.read()
    assert reading.errors == {("failure", "503"): 1}


def test_streaming_response_is_not_read(kind: str) -> None:
    chunks = [b"x" * 10, b"y" * 10]

    class Body(httpx.SyncByteStream, httpx.AsyncByteStream):
        def __iter__(self) -> Iterator[bytes]:
            yield from chunks

        async def __aiter__(self) -> Any:
            for chunk in chunks:
                yield chunk

    transport = make(
        kind, httpx.MockTransport(lambda r: httpx.Response(200, stream=Body())), policy=policy()
    )
    if kind == "sync":
        assert isinstance(transport, ResilientTransport)
        with (
            httpx.Client(transport=transport) as client,
            client.stream("GET", "https://a.test/") as response,
        ):
            assert not response.is_stream_consumed
            assert b"".join(response.iter_bytes()) == b"".join(chunks)
        return

    async def main() -> None:
        assert isinstance(transport, AsyncResilientTransport)
        async with (
            httpx.AsyncClient(transport=transport) as client,
            client.stream("GET", "https://a.test/") as response,
        ):
            assert not response.is_stream_consumed
            assert b"".join([c async for c in response.aiter_bytes()]) == b"".join(chunks)

    asyncio.run(main())


def test_a_breaker_opened_by_a_failed_attempt_leaves_the_caller_its_response(
    kind: str, closing: list[int]
) -> None:
    breaker = seawall.CircuitBreaker(minimum_calls=1, failure_ratio=0.5, open_duration=60)
    template = seawall.Policy(
        "api",
        retry=seawall.Retry(
            on=(seawall.httpx.FailureResponse, seawall.CircuitOpenError), wait=0.0, deadline=10
        ),
        breaker=breaker,
    )
    transport = make(kind, scripted(500), policy=template)
    # The 500 opened the breaker and the retry's next attempt was refused: the caller gets
    # the response the dependency gave (read, as a client reads it), not the refusal.
    response = send(kind, transport, "GET", "https://a.test/")
    assert response.status_code == 500
    assert closing == [500]  # closed once, by the client that read it
    with pytest.raises(CircuitOpenHTTPError):  # the host's breaker is open
        send(kind, transport, "GET", "https://a.test/")


# -- attempts ended by a timeout or a cancellation ------------------------------------------------


def _attempts_by_error(transport: Transport) -> dict[str, int]:
    counts: dict[str, int] = {}
    for (_, _, _, status, error_type), (buckets, _) in transport.stats.read().items():
        if status == "":
            counts[error_type] = counts.get(error_type, 0) + sum(buckets)
    return counts


def test_async_attempt_cut_by_its_timeout_is_retried_and_recorded(simulated: Simulation) -> None:
    started: list[float] = []

    async def hang(request: httpx.Request) -> httpx.Response:
        started.append(simulated.now())
        await asyncio.sleep(5)
        return httpx.Response(200)

    transport = AsyncResilientTransport(
        httpx.MockTransport(hang), policy=policy(attempt_timeout=0.05, total_timeout=3.0)
    )
    with pytest.raises(TimeoutHTTPError):
        send("async", transport, "GET", "https://up.test/", on=simulated)
    # Three attempts, each cut at 0.05 s and retried at once (the retry's wait is 0).
    assert started == pytest.approx([0.0, 0.05, 0.1])
    assert simulated.now() == pytest.approx(0.15)
    assert _attempts_by_error(transport) == {"TimeoutHTTPError": 3}
    (host,) = transport.policies().values()
    assert host.stats.read().errors == {("timeout", "TimeoutHTTPError"): 1}


def _timed(clock: FakeClock, attempt_timeout: float) -> seawall.Policy:
    """Two attempts on transport errors, each under ``attempt_timeout``, all on ``clock``."""
    return seawall.Policy(
        "api",
        retry=seawall.Retry(on=httpx.TransportError, attempts=2, wait=0.0, clock=clock),
        attempt_timeout=seawall.Timeout(attempt_timeout, clock=clock),
        clock=clock,
    )


def test_sync_attempt_whose_cut_timeout_expires_is_the_deadlines_timeout() -> None:
    clock = FakeClock()

    def slow(request: httpx.Request) -> httpx.Response:
        # httpx's own timeout, cut to the attempt's deadline, fires once it has passed.
        clock.advance(request.extensions["timeout"]["read"])
        raise httpx.ReadTimeout("timed out", request=request)

    transport = ResilientTransport(httpx.MockTransport(slow), policy=_timed(clock, 0.5))
    with pytest.raises(TimeoutHTTPError) as caught:
        send("sync", transport, "GET", "https://up.test/")
    assert isinstance(caught.value.__cause__, httpx.ReadTimeout)
    assert _attempts_by_error(transport) == {"TimeoutHTTPError": 2}


def test_sync_httpx_timeout_before_the_deadline_stays_as_it_is() -> None:
    clock = FakeClock()

    def quick_timeout(request: httpx.Request) -> httpx.Response:
        clock.advance(0.1)  # the request's own 0.1 s read timeout, well before the deadline
        raise httpx.ReadTimeout("timed out", request=request)

    transport = ResilientTransport(httpx.MockTransport(quick_timeout), policy=_timed(clock, 5.0))
    with pytest.raises(httpx.ReadTimeout) as caught:
        send("sync", transport, "GET", "https://up.test/", timeout=0.1)
    assert not isinstance(caught.value, TimeoutHTTPError)
    assert _attempts_by_error(transport) == {"ReadTimeout": 2}


def test_async_attempt_cancelled_by_the_caller_is_recorded_as_cancelled() -> None:
    # Stays on a real loop, waiting on no time: the caller cancels long before the 5 s pass.
    started = asyncio.Event()

    async def hang(request: httpx.Request) -> httpx.Response:
        started.set()
        await asyncio.sleep(5)
        return httpx.Response(200)

    transport = AsyncResilientTransport(httpx.MockTransport(hang), policy=policy())

    async def main() -> None:
        async with httpx.AsyncClient(transport=transport) as client:
            task = asyncio.create_task(client.get("https://up.test/"))
            await started.wait()
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task

    asyncio.run(main())
    assert _attempts_by_error(transport) == {"CancelledError": 1}
    (host,) = transport.policies().values()
    assert host.stats.read().errors == {("cancelled", "CancelledError"): 1}


def test_sync_attempt_interrupted_is_recorded() -> None:
    def interrupted(request: httpx.Request) -> httpx.Response:
        raise KeyboardInterrupt

    transport = ResilientTransport(httpx.MockTransport(interrupted), policy=policy())
    with pytest.raises(KeyboardInterrupt):
        send("sync", transport, "GET", "https://up.test/")
    assert _attempts_by_error(transport) == {"KeyboardInterrupt": 1}


# -- keys and templates that cannot work --------------------------------------------------------


@pytest.mark.parametrize("path", ["/tenant%0Aevil", "/nul%00", "/" + "x" * 5000])
def test_any_key_makes_a_valid_name(kind: str, path: str) -> None:
    transport = make(
        kind,
        httpx.MockTransport(lambda request: httpx.Response(200)),
        key=lambda request: request.url.path,
    )
    assert send(kind, transport, "GET", f"http://example.test{path}").status_code == 200
    (shown,) = transport.policies()
    assert shown.isprintable()
    assert len(shown) <= 200


def test_escaped_keys_stay_apart() -> None:
    transport = ResilientTransport(
        httpx.MockTransport(lambda request: httpx.Response(200)),
        key=lambda request: request.url.path,
    )
    for path in ("/a%0Ab", "/a%0Db"):
        send("sync", transport, "GET", f"http://example.test{path}")
    assert sorted(transport.policies()) == ["/a\\nb", "/a\\rb"]


def test_a_template_fallback_that_is_not_a_response_is_refused(kind: str) -> None:
    template = seawall.Policy(
        "fb", fallback=seawall.Fallback(None, on=seawall.RejectedError), breaker=True
    )
    with pytest.raises(TypeError, match="policy: the fallback of a transport's template"):
        make(kind, policy=template)


def test_a_template_fallback_function_answering_no_response_is_a_clear_error(kind: str) -> None:
    template = seawall.Policy(
        "fb-fn", fallback=seawall.Fallback(lambda exc: "cached", on=Exception), breaker=True
    )
    transport = make(
        kind, httpx.MockTransport(lambda request: httpx.Response(500)), policy=template
    )
    with pytest.raises(TypeError, match=r"must answer with an httpx\.Response, got str"):
        send(kind, transport, "GET", "http://svc.test/")
    (host,) = transport.policies().values()
    assert host.stats.read().errors == {("failure", "TypeError"): 1}


def test_a_template_fallback_response_answers_bad_responses_and_is_counted(kind: str) -> None:
    cached = httpx.Response(200, text="cached")
    template = seawall.Policy(
        "fb-ok", fallback=seawall.Fallback(cached, on=Exception), breaker=True
    )
    transport = make(
        kind, httpx.MockTransport(lambda request: httpx.Response(503)), policy=template
    )
    assert send(kind, transport, "GET", "http://svc.test/").text == "cached"
    (host,) = transport.policies().values()
    assert host.stats.read().errors == {("fallback", "503"): 1}


def test_a_template_fallback_response_is_a_fresh_copy_for_each_request() -> None:
    cached = httpx.Response(200, text="cached", headers={"x-cache": "stale"})
    down = httpx.MockTransport(lambda request: httpx.Response(503))
    sync_transport = ResilientTransport(
        down, policy=seawall.Policy("fb-sync", fallback=seawall.Fallback(cached, on=Exception))
    )
    async_transport = AsyncResilientTransport(
        down, policy=seawall.Policy("fb-async", fallback=seawall.Fallback(cached, on=Exception))
    )
    answers = [
        send("sync", sync_transport, "GET", "http://svc.test/a"),
        send("sync", sync_transport, "GET", "http://svc.test/b"),
        send("async", async_transport, "GET", "http://svc.test/c"),  # after a sync client
    ]
    assert [answer.text for answer in answers] == ["cached"] * 3
    assert [answer.headers["x-cache"] for answer in answers] == ["stale"] * 3
    assert [answer.request.url.path for answer in answers] == ["/a", "/b", "/c"]
    assert len({id(answer) for answer in answers}) == 3
    # The template's response is never handed out: no request of its own, no client's
    # wrapping around its body (one more per request, without end).
    assert type(cached.stream) is httpx.ByteStream
    with pytest.raises(RuntimeError):
        cached.request  # noqa: B018


def test_a_template_fallback_response_without_its_body_is_refused(kind: str) -> None:
    streamed = httpx.Response(200, content=iter([b"once"]))
    template = seawall.Policy("fb-stream", fallback=seawall.Fallback(streamed, on=Exception))
    with pytest.raises(TypeError, match=r"^policy: the fallback's response must hold its body"):
        make(kind, policy=template)


def test_parse_retry_after_of_a_non_string_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="value must be a str or None, got int"):
        parse_retry_after(5)  # type: ignore[arg-type]
