"""seawall.httpx transports against real HTTP servers on 127.0.0.1, started in threads."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import httpx
import pytest

import seawall
from seawall.httpx import (
    AsyncResilientTransport,
    CircuitOpenHTTPError,
    FailureResponse,
    ResilientTransport,
)
from seawall.testing import FakeClock, no_waits
from tests.helpers import Server


@pytest.fixture
def servers() -> Iterator[list[Server]]:
    made: list[Server] = []
    yield made
    for server in made:
        try:
            server.stop()
        except OSError:
            pass


def start(servers: list[Server], delay: float = 0.0) -> Server:
    server = Server(delay)
    servers.append(server)
    return server


def test_host_down_opens_its_breaker_other_host_keeps_working(servers: list[Server]) -> None:
    a, b = start(servers), start(servers)
    template = seawall.Policy(
        "it",
        retry=seawall.Retry(on=httpx.TransportError, attempts=2, wait=0.0),
        breaker=seawall.CircuitBreaker(minimum_calls=4, failure_ratio=0.5, open_duration=60),
    )
    transport = ResilientTransport(policy=template)
    with httpx.Client(transport=transport, timeout=5) as client:
        assert client.get(a.url).status_code == 200
        assert client.get(b.url).status_code == 200
        a.stop()
        failures: list[Exception] = []
        for _ in range(3):
            with pytest.raises(httpx.TransportError) as caught:
                client.get(a.url)
            failures.append(caught.value)
        assert isinstance(failures[0], httpx.ConnectError)
        assert isinstance(failures[-1], CircuitOpenHTTPError)
        started = time.monotonic()
        with pytest.raises(httpx.TransportError) as caught:
            client.get(a.url)
        assert isinstance(caught.value, CircuitOpenHTTPError)
        assert isinstance(caught.value, seawall.CircuitOpenError)
        assert time.monotonic() - started < 0.5  # fails fast
        for _ in range(5):
            assert client.get(b.url).status_code == 200
    states = {key: p.breaker.state for key, p in transport.policies().items()}  # type: ignore[union-attr]
    assert states[f"127.0.0.1:{a.port}"] is seawall.CircuitState.OPEN
    assert states[f"127.0.0.1:{b.port}"] is seawall.CircuitState.CLOSED


def test_429_with_retry_after_is_waited_for_once_then_succeeds(servers: list[Server]) -> None:
    server = start(servers)
    server.retry_after = "2"
    server.script = [429]
    clock = FakeClock()
    template = seawall.Policy(
        "it-429",
        retry=seawall.Retry(
            on=(httpx.TransportError, FailureResponse), attempts=3, wait=0.0, clock=clock
        ),
        breaker=seawall.CircuitBreaker(clock=clock),
        clock=clock,
    )
    transport = ResilientTransport(policy=template)  # the default classification
    with httpx.Client(transport=transport, timeout=5) as client:
        response = client.get(server.url)
    assert response.status_code == 200
    assert server.requests == 2
    assert clock.sleeps == [2.0]  # one wait, of Retry-After's two seconds
    (policy,) = transport.policies().values()
    assert policy.breaker is not None
    snapshot = policy.breaker.snapshot()
    assert (snapshot.failures, snapshot.ignored, snapshot.successes) == (0, 1, 1)


def test_429_retry_after_then_success(servers: list[Server]) -> None:
    server = start(servers)
    server.retry_after = "1"
    calls = {"n": 0}

    def classify(response: httpx.Response) -> str:
        calls["n"] += 1
        return "backpressure" if calls["n"] == 1 else "success"

    transport = ResilientTransport(classify=classify)
    with no_waits(), httpx.Client(transport=transport, timeout=5) as client:
        response = client.get(f"{server.url}/429")
    assert response.status_code == 429  # the second answer, classified a success
    assert server.requests == 2


def test_5xx_retried_then_returned_and_post_not_retried(servers: list[Server]) -> None:
    server = start(servers)
    with no_waits(), httpx.Client(transport=ResilientTransport(), timeout=5) as client:
        assert client.get(f"{server.url}/502").status_code == 502
        assert server.requests == 3
        assert client.post(f"{server.url}/502", content=b"x").status_code == 502
        assert server.requests == 4


def test_bulkhead_caps_concurrency_at_the_server(servers: list[Server]) -> None:
    server = start(servers, delay=0.02)
    template = seawall.Policy("it", bulkhead=seawall.Bulkhead(20, max_queue=1000, max_wait=60.0))
    transport = AsyncResilientTransport(policy=template)

    async def main() -> list[int]:
        async with httpx.AsyncClient(transport=transport, timeout=30) as client:
            responses = await asyncio.gather(*(client.get(server.url) for _ in range(200)))
        return [response.status_code for response in responses]

    assert asyncio.run(main()) == [200] * 200
    assert server.requests == 200
    assert 1 < server.most_in_flight <= 20


def _attempt_series(transport: ResilientTransport | AsyncResilientTransport) -> dict[str, int]:
    """Attempts recorded per error type (status-less ones only)."""
    counts: dict[str, int] = {}
    for (_, _, _, status, error_type), (buckets, _) in transport.stats.read().items():
        if status == "":
            counts[error_type] = counts.get(error_type, 0) + sum(buckets)
    return counts


def _timeout_policy(name: str) -> seawall.Policy:
    return seawall.Policy(
        name,
        total_timeout=5.0,
        attempt_timeout=0.3,
        retry=seawall.Retry(on=(httpx.TransportError, FailureResponse), attempts=3, wait=0.0),
    )


@pytest.mark.parametrize("kind", ["sync", "async"])
def test_attempt_timeouts_are_retried_and_recorded_alike_sync_and_async(
    servers: list[Server], kind: str
) -> None:
    # A hanging upstream: each attempt is cut by the attempt timeout, seen by the retry as an
    # httpx timeout, and recorded as an attempt; the caller gets the same error either way.
    server = start(servers, delay=2.0)
    url = f"{server.url}/200"
    error: BaseException
    if kind == "sync":
        transport: ResilientTransport | AsyncResilientTransport = ResilientTransport(
            policy=_timeout_policy("hang-sync")
        )
        assert isinstance(transport, ResilientTransport)
        with (
            httpx.Client(transport=transport, timeout=None) as client,
            pytest.raises(httpx.TimeoutException) as caught,
        ):
            client.get(url)
        error = caught.value
    else:
        transport = AsyncResilientTransport(policy=_timeout_policy("hang-async"))
        assert isinstance(transport, AsyncResilientTransport)

        async def main() -> BaseException:
            async with httpx.AsyncClient(transport=transport, timeout=None) as client:
                with pytest.raises(httpx.TimeoutException) as caught:
                    await client.get(url)
            return caught.value

        error = asyncio.run(main())
    assert server.requests == 3
    assert isinstance(error, seawall.httpx.TimeoutHTTPError)
    assert _attempt_series(transport) == {"TimeoutHTTPError": 3}
    (host,) = transport.policies().values()
    assert host.attempt_timeout is not None
    assert host.attempt_timeout._counts.as_dict()["timeout"] == 3
    errors = host.stats.read().errors
    assert errors == {("timeout", "TimeoutHTTPError"): 1}
