"""seawall.chaos's httpx transports: respx for each fault, a real server on 127.0.0.1 for the
whole stack (a chaos transport under a ResilientTransport)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import respx

import seawall
from seawall import chaos
from seawall.chaos import AsyncChaosTransport, ChaosTransport
from seawall.httpx import AsyncResilientTransport, ResilientTransport
from seawall.testing import FakeClock, Simulation
from tests.helpers import Server

URL = "http://pay.test/v1/charges"


@pytest.fixture
def router() -> respx.Router:
    router = respx.Router(assert_all_called=False)
    router.route().respond(200, text="paid")
    return router


def sync_client(router: respx.Router, *faults: Any, **kwargs: Any) -> httpx.Client:
    kwargs.setdefault("enabled", True)
    kwargs.setdefault("clock", FakeClock())
    transport = ChaosTransport(httpx.MockTransport(router.handler), *faults, **kwargs)
    return httpx.Client(transport=transport, timeout=2.0)


def injector_of(client: httpx.Client | httpx.AsyncClient) -> chaos.Injector:
    transport = client._transport
    assert isinstance(transport, ChaosTransport | AsyncChaosTransport)
    return transport.injector


def test_disabled_it_passes_every_request_through(router: respx.Router) -> None:
    with sync_client(router, chaos.ConnectError(), enabled=None) as client:
        assert client.get(URL).text == "paid"
    assert router.calls.call_count == 1
    assert injector_of(client).snapshot().injections == {"connect_error": 0}


@pytest.mark.parametrize(
    ("fault", "error", "message"),
    [
        (chaos.ConnectError(), httpx.ConnectError, "Connection refused"),
        (chaos.Reset(), httpx.ReadError, "Connection reset by peer"),
        (chaos.ReadTimeout(), httpx.ReadTimeout, "timed out"),
        (
            chaos.Error(httpx.RemoteProtocolError("Server disconnected")),
            httpx.RemoteProtocolError,
            "Server disconnected",
        ),
    ],
)
def test_each_error_is_httpxs_own_and_never_reaches_the_server(
    router: respx.Router, fault: chaos.Fault, error: type[Exception], message: str
) -> None:
    with sync_client(router, fault) as client, pytest.raises(error, match=message) as caught:
        client.get(URL)
    assert router.calls.call_count == 0
    if isinstance(caught.value, httpx.RequestError) and not isinstance(fault, chaos.Error):
        assert caught.value.request.url == URL


def test_a_status_answers_for_the_server_with_its_retry_after(router: respx.Router) -> None:
    with sync_client(router, chaos.Status(503, retry_after=7, body=b"busy")) as client:
        response = client.get(URL)
    assert response.status_code == 503
    assert response.headers["retry-after"] == "7"
    assert response.text == "busy"
    assert router.calls.call_count == 0
    with sync_client(router, chaos.Status(429)) as client:
        assert "retry-after" not in client.get(URL).headers


def test_latency_waits_then_sends_and_past_the_read_timeout_times_out_at_it(
    router: respx.Router,
) -> None:
    clock = FakeClock()
    with sync_client(router, chaos.Latency(0.5), clock=clock) as client:
        assert client.get(URL).text == "paid"
        assert clock.sleeps == [0.5]
        with pytest.raises(httpx.ReadTimeout):
            client.get(URL, timeout=0.2)
        assert clock.sleeps == [0.5, 0.2]
    assert router.calls.call_count == 1


def test_a_sync_hang_waits_the_read_timeout_and_needs_one(router: respx.Router) -> None:
    clock = FakeClock()
    with sync_client(router, chaos.Hang(), clock=clock) as client:
        with pytest.raises(httpx.ReadTimeout):
            client.get(URL, timeout=3.0)
        assert clock.sleeps == [3.0]
        with pytest.raises(RuntimeError, match="give the client a timeout"):
            client.get(URL, timeout=None)


def test_a_slow_body_arrives_in_its_chunks_over_its_seconds(router: respx.Router) -> None:
    router.routes.clear()
    router.route().respond(200, content=b"x" * 1000, headers={"content-encoding": "identity"})
    clock = FakeClock()
    with sync_client(router, chaos.SlowBody(2.0, chunks=4), clock=clock) as client:
        response = client.get(URL)
        assert response.content == b"x" * 1000
        assert clock.sleeps == [0.5] * 4
        with pytest.raises(httpx.ReadTimeout):
            client.get(URL, timeout=0.4)  # each pause (0.5 s) is past the read timeout


def test_faults_apply_by_host_path_and_method(router: respx.Router) -> None:
    with sync_client(
        router,
        chaos.Status(500, host="*.test", path="/v1/charges*", method="post"),
        chaos.Status(429, host="other.example"),
    ) as client:
        assert client.post(URL).status_code == 500
        assert client.post(URL + "/42").status_code == 500
        assert client.get(URL).status_code == 200  # not a POST
        assert client.post("http://pay.test/v1/refunds").status_code == 200
        assert client.get("http://other.example/").status_code == 429
    assert injector_of(client).snapshot().injections == {"status": 3}


def test_a_schedule_plays_healthy_outage_slow_flaky_recovered(router: respx.Router) -> None:
    clock = FakeClock()
    schedule = chaos.Schedule(
        chaos.Phase("healthy", 10),
        chaos.Phase("outage", 10, chaos.ConnectError()),
        chaos.Phase("slow", 10, chaos.Latency(0.3)),
        chaos.Phase("flaky", 10, chaos.Status(503, rate=0.5)),
        chaos.Phase("recovered", None),
    )
    seen: dict[str, list[Any]] = {}
    with sync_client(router, schedule, clock=clock, seed=2) as client:
        transport = client._transport
        assert isinstance(transport, ChaosTransport)
        for _ in range(50):
            phase = transport.injector.phase().name
            try:
                outcome: Any = client.get(URL).status_code
            except httpx.ConnectError:
                outcome = "refused"
            seen.setdefault(phase, []).append(outcome)
            clock.advance(1.0)
    assert set(seen["healthy"]) == {200}
    assert set(seen["outage"]) == {"refused"}
    assert set(seen["slow"]) == {200}
    assert set(seen["flaky"]) == {200, 503}
    assert set(seen["recovered"]) == {200}
    # The slow phase's latency moved the clock too: 8 calls fit in its 10 s.
    assert transport.injector.snapshot().calls == {
        "healthy": 10,
        "outage": 10,
        "slow": 8,
        "flaky": 10,
        "recovered": 12,
    }


def test_functions_only_faults_and_a_wrong_transport_are_refused(router: respx.Router) -> None:
    with pytest.raises(TypeError, match="faults: Result applies to functions only"):
        ChaosTransport(httpx.MockTransport(router.handler), chaos.Result(1))
    with pytest.raises(TypeError, match=r"transport must be an httpx\.BaseTransport"):
        ChaosTransport(object(), chaos.Hang())  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"transport must be an httpx\.AsyncBaseTransport"):
        AsyncChaosTransport(object(), chaos.Hang())  # type: ignore[arg-type]
    template = seawall.Policy("t", breaker=True, chaos=chaos.inject(chaos.Hang()))
    for kind in (ResilientTransport, AsyncResilientTransport):
        with pytest.raises(TypeError, match="policy: a transport's template takes no chaos part"):
            kind(policy=template)


# -- async --------------------------------------------------------------------------------------


def test_async_faults_on_simulated_time(simulated: Simulation, router: respx.Router) -> None:
    schedule = chaos.Schedule(
        chaos.Phase("hang", 10, chaos.Hang()),
        chaos.Phase("slow", 10, chaos.Latency(0.25), chaos.SlowBody(1.0, chunks=2)),
        chaos.Phase("errors", None, chaos.Reset(after=0.1)),
    )
    transport = AsyncChaosTransport(httpx.MockTransport(router.handler), schedule, enabled=True)

    async def main() -> list[Any]:
        out: list[Any] = []
        async with httpx.AsyncClient(transport=transport, timeout=2.0) as client:
            for at in (0.0, 10.0, 20.0):
                await asyncio.sleep(at - simulated.now())
                try:
                    response = await client.get(URL)
                    out.append((response.status_code, response.text))
                except httpx.HTTPError as exc:
                    out.append(type(exc).__name__)
                out.append(round(simulated.now() - at, 6))
            # No read timeout: a hang lasts until the caller gives up.
            transport.injector.restart()
            with pytest.raises(TimeoutError):
                async with asyncio.timeout(60):
                    await client.get(URL, timeout=None)
        return out

    assert simulated.run(main) == [
        "ReadTimeout",
        2.0,  # the hang lasted the read timeout
        (200, "paid"),
        1.25,  # 0.25 s of latency, then the body over 1 s
        "ReadError",
        0.1,
    ]
    assert simulated.now() == 20.1 + 60
    assert transport.injector.snapshot().injections == {
        "hang": 2,
        "latency": 1,
        "slow_body": 1,
        "reset": 1,
    }


def test_under_a_resilient_transport_the_policy_sees_the_faults(simulated: Simulation) -> None:
    router = respx.Router()
    router.route().respond(200, text="paid")
    outage = chaos.Schedule(
        chaos.Phase("healthy", 5),
        chaos.Phase("outage", 60, chaos.Status(500)),
        chaos.Phase("recovered", None),
    )
    flaky = AsyncChaosTransport(httpx.MockTransport(router.handler), outage, enabled=True)
    transport = AsyncResilientTransport(flaky, policy=seawall.httpx.default_policy())

    async def main() -> list[int | str]:
        out: list[int | str] = []
        async with httpx.AsyncClient(transport=transport, timeout=1.0) as client:
            while simulated.now() < 100:
                try:
                    out.append((await client.get(URL)).status_code)
                except httpx.HTTPError as exc:
                    out.append(type(exc).__name__)
                await asyncio.sleep(0.05)  # 20 calls a second, one after the other
        return out

    outcomes = simulated.run(main)
    assert outcomes[:100] == [200] * 100
    assert "CircuitOpenHTTPError" in outcomes  # the outage opened the breaker
    assert outcomes[-200:] == [200] * 200  # and it closed again after
    calls = flaky.injector.snapshot().calls
    outage_calls = 60 / 0.05
    assert calls["outage"] <= 0.1 * outage_calls  # the dead upstream was spared


# -- a real server on loopback ------------------------------------------------------------------


@pytest.fixture
def server() -> Iterator[Server]:
    made = Server()
    yield made
    made.stop()


def test_against_a_real_server_retries_heal_injected_resets(server: Server) -> None:
    flaky = ChaosTransport(httpx.HTTPTransport(), chaos.Reset(rate=0.2), enabled=True, seed=4)
    policy = seawall.Policy(
        "loopback",
        retry=seawall.Retry(on=httpx.TransportError, attempts=6, wait=0),
        breaker=seawall.CircuitBreaker(consecutive_failures=None, minimum_calls=1_000),
    )
    with httpx.Client(transport=ResilientTransport(flaky, policy=policy), timeout=5) as client:
        statuses = [client.get(server.url).status_code for _ in range(100)]
    assert statuses == [200] * 100
    injected = flaky.injector.snapshot().injections["reset"]
    assert 10 <= injected <= 60
    assert server.requests == 100  # each request reached the server once it got through


def test_an_error_slower_than_the_requests_timeout_ends_as_that_timeout(
    router: respx.Router,
) -> None:
    clock = FakeClock()
    timeout = httpx.Timeout(5.0, connect=0.5, read=1.0)
    for fault, error, waited in (
        (chaos.ConnectError(after=30), httpx.ConnectTimeout, 0.5),
        (chaos.Reset(after=30), httpx.ReadTimeout, 1.0),
        (chaos.Error(RuntimeError, after=30), httpx.ReadTimeout, 1.0),
        (chaos.ReadTimeout(after=30), httpx.ReadTimeout, 1.0),
        (chaos.Reset(after=0.25), httpx.ReadError, 0.25),
    ):
        clock.sleeps.clear()
        with sync_client(router, fault, clock=clock) as client, pytest.raises(error):
            client.get(URL, timeout=timeout)
        assert clock.sleeps == [waited], fault


def test_a_chaos_transport_has_no_call_series_of_its_own(router: respx.Router) -> None:
    from prometheus_client import CollectorRegistry, generate_latest

    from seawall.metrics import SeawallCollector

    transport = ChaosTransport(
        httpx.MockTransport(router.handler), chaos.Status(500), name="chaos-series"
    )
    registry = CollectorRegistry()
    registry.register(SeawallCollector())
    lines = [
        line for line in generate_latest(registry).decode().splitlines() if "chaos-series" in line
    ]
    assert lines == ['seawall_chaos_injections_total{fault="status",policy="chaos-series"} 0.0']
    assert transport.injector.snapshot().injections == {"status": 0}
