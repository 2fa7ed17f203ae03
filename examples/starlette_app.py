"""A Starlette app whose calls to a dependency go through seawall, with a ``/metrics`` page.

- ``GET /quote/{symbol}`` asks a quotes service for a price through an ``httpx.AsyncClient``
  whose transport is a ``seawall.httpx.AsyncResilientTransport``: failed requests are retried,
  and while the quotes service is down its circuit breaker opens, so the endpoint answers
  ``503`` with ``Retry-After`` at once instead of waiting on a dead dependency.
- ``GET /metrics`` is prometheus-client's text format. ``import seawall`` has already put
  seawall's series in prometheus-client's default registry: nothing else to set up.

The quotes service here is a fake, an ``httpx.MockTransport`` that the resilient transport
wraps, so the example needs no network at all. In a real app, drop ``transport=`` from
``AsyncResilientTransport(...)`` (it then sends real requests) and set ``QUOTES_URL``.

Run the self-check (no server, uses ``starlette.testclient.TestClient``)::

    python examples/starlette_app.py

Serve it for real (``pip install uvicorn``), from the repository's root::

    uvicorn examples.starlette_app:app --port 8000
    curl localhost:8000/quote/ACME
    curl -s localhost:8000/metrics | grep ^seawall_
"""

from __future__ import annotations

import math
import warnings
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import prometheus_client
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

import seawall
from seawall.httpx import AsyncResilientTransport, FailureResponse

QUOTES_URL = "http://quotes.internal"

# -- the dependency: a fake quotes service ---------------------------------------------------


class QuotesService:
    """Answers ``GET /quotes/{symbol}``; one request in three gets a 503; ``down`` makes
    every request a 500."""

    def __init__(self) -> None:
        self.down = False
        self.requests = 0

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests += 1
        if self.down:
            return httpx.Response(500, text="database unavailable")
        if self.requests % 3 == 0:
            return httpx.Response(503, text="busy")
        symbol = request.url.path.rsplit("/", 1)[-1]
        return httpx.Response(200, json={"symbol": symbol, "price": 12.34})


quotes_service = QuotesService()

# -- the client, made resilient --------------------------------------------------------------

# A template: the transport makes one copy per host, named "quotes:<host>:<port>".
quotes_policy = seawall.Policy(
    "quotes",
    total_timeout=2.0,  # the whole call, retries included; each attempt's timeouts are cut to it
    retry=seawall.Retry(
        on=(httpx.TransportError, FailureResponse),  # connection errors, timeouts, 5xx, 429
        attempts=3,
        wait=0.02,
        budget=seawall.RetryBudget(),
    ),
    breaker=seawall.CircuitBreaker(minimum_calls=5, window_calls=20, open_duration=30.0),
)


@asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[dict[str, httpx.AsyncClient]]:
    """One client for the app's lifetime, shared by every request (and so are its breakers)."""
    transport = AsyncResilientTransport(httpx.MockTransport(quotes_service), policy=quotes_policy)
    async with httpx.AsyncClient(transport=transport, base_url=QUOTES_URL, timeout=5.0) as client:
        yield {"quotes": client}  # request.state.quotes in the endpoints


# -- the endpoints ---------------------------------------------------------------------------


async def quote(request: Request) -> Response:
    client: httpx.AsyncClient = request.state.quotes
    symbol = request.path_params["symbol"]
    try:
        upstream = await client.get(f"/quotes/{symbol}")
    except seawall.RejectedError as exc:
        # The breaker is open (CircuitOpenHTTPError): no request was sent. Say when to return.
        headers = {"Retry-After": str(math.ceil(exc.retry_after))}
        if not math.isfinite(exc.retry_after):  # forced open: only an operator can reopen it
            headers = {}
        return JSONResponse({"error": "quotes unavailable"}, status_code=503, headers=headers)
    except httpx.HTTPError as exc:  # connection errors, timeouts (after the retries)
        return JSONResponse({"error": f"quotes unreachable: {exc}"}, status_code=502)
    if upstream.status_code != 200:  # still failing once the retries ran out
        return JSONResponse({"error": f"quotes said {upstream.status_code}"}, status_code=502)
    return JSONResponse(upstream.json())


async def metrics(request: Request) -> Response:
    """Prometheus' text format, from prometheus-client's default registry (seawall's series
    included). Under gunicorn with PROMETHEUS_MULTIPROC_DIR, see the README's recipe."""
    return Response(
        prometheus_client.generate_latest(), media_type=prometheus_client.CONTENT_TYPE_LATEST
    )


app = Starlette(
    routes=[Route("/quote/{symbol}", quote), Route("/metrics", metrics)],
    lifespan=lifespan,
)


# -- the self-check --------------------------------------------------------------------------


def self_check() -> int:
    with warnings.catch_warnings():
        # Recent Starlette prefers httpx2 for its TestClient and warns when it finds httpx.
        warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")
        from starlette.testclient import TestClient

    with TestClient(app) as client:  # "with" runs the lifespan: the quotes client exists
        print("the quotes service is up; one request in three gets a 503, which is retried:")
        for _ in range(4):
            response = client.get("/quote/ACME")
            print(f"  GET /quote/ACME -> {response.status_code} {response.text}")

        print("the quotes service goes down: 500s, retried, until the breaker opens:")
        quotes_service.down = True
        for _ in range(3):
            response = client.get("/quote/ACME")
            retry_after = response.headers.get("retry-after")
            extra = f" (Retry-After: {retry_after})" if retry_after else ""
            print(f"  GET /quote/ACME -> {response.status_code} {response.text}{extra}")
        print(f"requests the quotes service received: {quotes_service.requests}")

        page = client.get("/metrics")
        assert page.status_code == 200
        print("seawall's series on /metrics (histogram buckets left out):")
        for line in page.text.splitlines():
            if line.startswith("seawall_") and "_bucket{" not in line:
                print(f"  {line}")
    return 0


if __name__ == "__main__":
    raise SystemExit(self_check())
