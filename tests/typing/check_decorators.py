"""Type-checked, never run: ``mypy --strict tests/typing/`` proves that policies keep signatures.

``assert_type`` lines pass only if mypy infers exactly that type. Lines ending in
``# type: ignore[code]`` show calls mypy must reject: with ``warn_unused_ignores`` (on under
``--strict``) an ignore that is not needed is itself an error, so each one proves the error
is reported.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Coroutine
from typing import Any, assert_type

from seawall import (
    BreakerEvent,
    BreakerSnapshot,
    CircuitBreaker,
    CircuitOpenError,
    CircuitState,
    StateChange,
)
from seawall.testing import FakeClock

breaker = CircuitBreaker(
    name="typing",
    failure_on=(ConnectionError, TimeoutError),
    ignore_on=lambda exc: isinstance(exc, KeyError),
    failure_result=lambda result: result is None,
    clock=FakeClock(),
    rng=random.Random(0),
)


@breaker
def lookup(key: str, *, default: int = 0) -> int:
    return len(key) + default


@breaker
async def fetch(url: str, retries: int = 1) -> bytes:
    return url.encode() * retries


class Client:
    @breaker
    def get(self, path: str) -> str:
        return path

    @breaker
    async def aget(self, path: str) -> str:
        return path


def plain(x: int) -> float:
    return x / 2


async def aplain(x: int) -> list[int]:
    return [x]


# -- decorated functions keep their signatures --------------------------------------------------

assert_type(lookup("a"), int)
assert_type(lookup("a", default=2), int)
coroutine = assert_type(fetch("u"), Coroutine[Any, Any, bytes])
coroutine.close()
assert_type(Client().get("/"), str)

lookup(1)  # type: ignore[arg-type]
lookup("a", 2)  # type: ignore[call-arg]
lookup("a", fallback=2)  # type: ignore[call-arg]
lookup()  # type: ignore[call-arg]
Client().get(3)  # type: ignore[arg-type]
_text: str = lookup("a")  # type: ignore[assignment]


async def use_async() -> None:
    assert_type(await fetch("u"), bytes)
    assert_type(await fetch("u", 3), bytes)
    assert_type(await Client().aget("/"), str)
    await fetch()  # type: ignore[call-arg]
    await fetch(b"u")  # type: ignore[arg-type]
    await fetch("u", retries="3")  # type: ignore[arg-type]
    await Client().aget(path=1)  # type: ignore[arg-type]
    _text: str = await fetch("u")  # type: ignore[assignment]


# -- call and acall -----------------------------------------------------------------------------

assert_type(breaker.call(plain, 1), float)
assert_type(breaker.call(lookup, "a", default=1), int)
breaker.call(plain, "1")  # type: ignore[arg-type]
breaker.call(plain)  # type: ignore[call-arg]
breaker.call(plain, 1, 2)  # type: ignore[call-arg]
breaker.call(lookup, "a", fallback=1)  # type: ignore[call-arg]


async def use_acall() -> None:
    assert_type(await breaker.acall(aplain, 1), list[int])
    assert_type(await breaker.acall(fetch, "u", retries=2), bytes)
    await breaker.acall(aplain, "1")  # type: ignore[arg-type]
    await breaker.acall(aplain)  # type: ignore[call-arg]
    await breaker.acall(plain, 1)  # type: ignore[arg-type]


# -- what the breaker exposes -------------------------------------------------------------------

assert_type(breaker.state, CircuitState)
assert_type(breaker.name, str)
snapshot = breaker.snapshot()
assert_type(snapshot, BreakerSnapshot)
assert_type(snapshot.retry_after, float | None)
assert_type(snapshot.calls, int)
assert_type(snapshot.failure_ratio, float)


def on_event(event: BreakerEvent) -> None:
    if isinstance(event, StateChange):
        assert_type(event.to_state, CircuitState)


assert_type(breaker.add_listener(on_event), Callable[[BreakerEvent], object])
breaker.add_listener(42)  # type: ignore[arg-type]
CircuitBreaker(failure_ratio="0.5")  # type: ignore[arg-type]
CircuitBreaker(failure_on=int)  # type: ignore[arg-type]

try:
    lookup("a")
except CircuitOpenError as err:
    assert_type(err.retry_after, float)
    assert_type(err.state, str)
