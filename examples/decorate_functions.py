"""One seawall Policy (retry + breaker + timeouts + bulkhead) on a sync and an async function.

Two dependencies, each behind its own policy, built by the same recipe:

- ``check_stock`` (sync) calls an inventory service that drops one request in four: the
  retry makes every call succeed anyway, and the breaker (which opens at a 50% failure
  ratio) stays closed.
- ``get_price`` (async) calls a pricing service that is dead: every attempt hangs until the
  attempt timeout cancels it. The breaker counts those timeouts, opens, and from then on the
  calls fail fast with ``CircuitOpenError`` (carrying ``retry_after``) without touching the
  service. When the service is back and ``open_duration`` has passed, one probe closes it.
  The bulkhead then turns away the calls beyond its limit.

Run it: ``python examples/decorate_functions.py`` (under a second).
"""

from __future__ import annotations

import asyncio
import time

import seawall

START = time.perf_counter()


def log(message: str) -> None:
    """Print with the time since start, to show what happens when."""
    print(f"[{(time.perf_counter() - START) * 1000:6.1f} ms] {message}")


def make_policy(name: str) -> seawall.Policy:
    """The recipe both dependencies use. Small numbers, so that the demo runs in a blink."""
    return seawall.Policy(
        name,
        total_timeout=2.0,  # one deadline for the whole call, retries and waits included
        retry=seawall.Retry(
            # Worth retrying: a dropped connection, an attempt that timed out.
            on=(ConnectionError, seawall.TimeoutExceededError),
            attempts=3,
            wait=0.02,  # fixed 20 ms between attempts (the default backs off exponentially)
        ),
        breaker=seawall.CircuitBreaker(
            failure_ratio=0.5,  # open when half the attempts in the window failed...
            minimum_calls=4,  # ...once it holds at least 4 of them
            window_calls=10,  # the window: the last 10 attempts
            open_duration=0.3,  # then reject everything for 0.3 s before probing
            half_open_calls=1,  # one successful probe closes it again
            # (a full bulkhead is our own overload, not the dependency failing: never counted)
        ),
        attempt_timeout=0.1,  # each attempt gets 100 ms
        bulkhead=2,  # at most 2 attempts in flight at once
    )


def breaker_of(policy: seawall.Policy) -> seawall.CircuitBreaker:
    """The policy's breaker. A Policy's parts are optional: their type says "or None"."""
    assert policy.breaker is not None
    return policy.breaker


# -- a flaky sync dependency ---------------------------------------------------------------


class InventoryService:
    """Drops one request in four (the 1st, the 5th, the 9th...)."""

    def __init__(self) -> None:
        self.requests = 0

    def lookup(self, sku: str) -> int:
        self.requests += 1
        if self.requests % 4 == 1:
            raise ConnectionError("connection reset by peer")
        return 7


inventory_service = InventoryService()
inventory = make_policy("inventory")


@inventory
def check_stock(sku: str) -> int:
    return inventory_service.lookup(sku)


# -- a dead async dependency ---------------------------------------------------------------


class PricingService:
    """While down, a request hangs (as a dead host does until some timeout gives up)."""

    def __init__(self) -> None:
        self.healthy = False
        self.requests = 0

    async def price(self, sku: str) -> float:
        self.requests += 1
        if not self.healthy:
            await asyncio.sleep(3600)  # cancelled by the attempt timeout
        await asyncio.sleep(0.01)
        return 9.99


pricing_service = PricingService()
pricing = make_policy("pricing")


@pricing
async def get_price(sku: str) -> float:
    return await pricing_service.price(sku)


async def priced(sku: str) -> str:
    """One call to ``get_price``, its outcome as text."""
    started = time.perf_counter()
    try:
        outcome = f"ok: {await get_price(sku)}"
    except seawall.CircuitOpenError as exc:
        outcome = f"refused: CircuitOpenError, retry_after={exc.retry_after:.3f} s"
    except seawall.BulkheadFullError:
        outcome = "refused: BulkheadFullError (2 calls already in flight)"
    except seawall.TimeoutExceededError as exc:
        outcome = f"failed: {exc}"
    took = (time.perf_counter() - started) * 1000
    state = breaker_of(pricing).state
    return f"get_price({sku!r}) -> {outcome} in {took:.1f} ms  [breaker: {state}]"


def show_numbers(policy: seawall.Policy) -> None:
    """The per-policy numbers: every part of a Policy keeps its own counts."""
    assert policy.retry is not None
    assert policy.bulkhead is not None
    retry, breaker, bulkhead = (
        policy.retry.snapshot(),
        breaker_of(policy).snapshot(),
        policy.bulkhead.snapshot(),
    )
    log(f"numbers of {policy.name!r}:")
    log(
        f"  retry:    calls={sum(retry.calls.values())} attempts={retry.attempts_total} "
        f"retries={retry.retries}"
    )
    log(
        f"  breaker:  state={breaker.state} successes={breaker.successes} "
        f"failures={breaker.failures} rejected={breaker.rejected} ignored={breaker.ignored}"
    )
    for (frm, to), count in breaker.transitions.items():
        log(f"            {frm} -> {to}: {count}")
    log(
        f"  bulkhead: limit={bulkhead.limit} admitted={bulkhead.admitted} "
        f"rejected={bulkhead.rejected}"
    )


async def pricing_demo() -> None:
    log("async: the pricing service is dead; each attempt times out after 100 ms")
    log(await priced("A-1"))  # 3 attempts, 3 timeouts: the retry gives up
    # Its first attempt is the 4th failure in the window: the breaker opens, and the retry's
    # next attempt is refused. The caller gets the timeout that reached the service; the
    # refusal is in the error's note.
    log(await priced("A-2"))

    log("async: open, so calls fail fast without reaching the service")
    before = pricing_service.requests
    log(await priced("A-3"))
    log(await priced("A-4"))
    reached = pricing_service.requests - before
    log(f"requests that reached the pricing service while open: {reached}")

    log("async: the service is back; wait out retry_after, then one probe closes the breaker")
    pricing_service.healthy = True
    try:
        await get_price("A-5")
    except seawall.CircuitOpenError as exc:
        # (plus a hair: an asyncio timer may fire a clock tick early)
        await asyncio.sleep(exc.retry_after + 0.005)
    log(await priced("A-6"))

    log("async: 3 calls at once against a bulkhead of 2")
    for line in await asyncio.gather(priced("B-1"), priced("B-2"), priced("B-3")):
        log(line)


def main() -> int:
    log("sync: the inventory service drops one request in four")
    for sku in ("S-1", "S-2", "S-3", "S-4"):
        log(f"check_stock({sku!r}) -> {check_stock(sku)}")
    log(f"requests that reached the inventory service: {inventory_service.requests}")
    show_numbers(inventory)

    asyncio.run(pricing_demo())
    show_numbers(pricing)
    return 0 if breaker_of(pricing).state is seawall.CircuitState.CLOSED else 1


if __name__ == "__main__":
    raise SystemExit(main())
