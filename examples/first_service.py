"""A first service with seawall: a FastAPI app whose two dependencies fail fast, recover by
themselves and show up on a dashboard.

- ``GET /orders/{order_id}`` reads the order from an inventory service over HTTP, through an
  ``httpx.AsyncClient`` whose transport is seawall's (retries, a per-host breaker, deadlines),
  and prices it with a local pricing engine behind a decorated function (a timeout, a
  breaker, and a fallback price when the engine cannot answer).
- ``GET /metrics`` is prometheus-client's exposition: ``import seawall`` has already put
  seawall's series in prometheus-client's default registry.

Run it (``pip install seawall[httpx] fastapi uvicorn``), with an inventory service at
``INVENTORY_URL``::

    INVENTORY_URL=http://127.0.0.1:8001 uvicorn first_service:app --port 8000
    curl -s localhost:8000/metrics | grep ^seawall_
"""

from __future__ import annotations

import asyncio
import os

import httpx
import prometheus_client
from fastapi import FastAPI, HTTPException, Response

import seawall
from seawall.httpx import AsyncResilientTransport, FailureResponse

INVENTORY_URL = os.environ.get("INVENTORY_URL", "http://127.0.0.1:8001")

# The inventory service: every request through one policy per host.
inventory = httpx.AsyncClient(
    base_url=INVENTORY_URL,
    timeout=5.0,
    transport=AsyncResilientTransport(
        policy=seawall.Policy(
            "inventory",
            total_timeout=2.0,  # one deadline for the request, retries included
            attempt_timeout=0.5,
            retry=seawall.Retry(
                on=(httpx.TransportError, FailureResponse),  # connection errors, 5xx, 429
                attempts=3,
                budget=seawall.RetryBudget(),  # no retry storm when it is down
            ),
            breaker=True,
        )
    ),
)


@seawall.Policy(
    "pricing",
    fallback=seawall.Fallback(None, on=(seawall.RejectedError, seawall.TimeoutExceededError)),
    attempt_timeout=0.2,
    breaker=True,
)
async def price(item: str, quantity: int) -> float | None:
    """The pricing engine (here a stand-in that takes a moment); ``None`` when it cannot
    answer in time or its breaker is open: the order is shown without a price."""
    await asyncio.sleep(0.001)
    return round(9.99 * quantity, 2)


app = FastAPI()


@app.get("/orders/{order_id}")
async def order(order_id: str) -> dict[str, object]:
    try:
        response = await inventory.get(f"/orders/{order_id}")
    except httpx.HTTPError as exc:  # seawall's refusals and timeouts are httpx errors too
        raise HTTPException(503, "inventory unavailable", {"Retry-After": "1"}) from exc
    if response.status_code != 200:
        raise HTTPException(502, f"inventory answered {response.status_code}")
    item = response.json()
    return {**item, "price": await price(item["item"], item["quantity"])}


@app.get("/metrics")
def metrics() -> Response:
    return Response(
        prometheus_client.generate_latest(), media_type=prometheus_client.CONTENT_TYPE_LATEST
    )
