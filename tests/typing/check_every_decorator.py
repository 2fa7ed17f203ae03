"""Type-checked, never run: every public policy keeps the signature of what it decorates.

The breaker is checked in depth in ``check_decorators.py``; here each of the others, and the
compositions, as a decorator on sync and async functions and through ``call`` / ``acall``.
"""

from __future__ import annotations

from collections.abc import Coroutine
from typing import Any, assert_type

import seawall

POLICIES = (
    seawall.Retry(on=ConnectionError),
    seawall.Timeout(1.0),
    seawall.Bulkhead(4),
    seawall.Fallback(0, on=ConnectionError),
    seawall.Pipeline(seawall.Timeout(1.0), seawall.Bulkhead(4)),
    seawall.Policy("typing", retry=seawall.Retry(on=OSError), breaker=True, attempt_timeout=1),
)

retry, timeout, bulkhead, fallback, pipeline, policy = POLICIES


@retry
def by_retry(key: str, *, times: int = 1) -> int:
    return len(key) * times


@timeout
async def by_timeout(url: str) -> bytes:
    return url.encode()


@bulkhead
def by_bulkhead(n: int) -> list[int]:
    return [n]


@fallback
async def by_fallback(n: int) -> int:
    return n


@pipeline
def by_pipeline(a: int, b: int = 0) -> float:
    return a / (b or 1)


@policy
async def by_policy(order: str, cents: int) -> dict[str, int]:
    return {order: cents}


assert_type(by_retry("a", times=2), int)
assert_type(by_bulkhead(1), list[int])
assert_type(by_pipeline(1, 2), float)
assert_type(by_timeout("u"), Coroutine[Any, Any, bytes]).close()
assert_type(by_fallback(1), Coroutine[Any, Any, int]).close()
assert_type(by_policy("o", 1), Coroutine[Any, Any, dict[str, int]]).close()

by_retry(1)  # type: ignore[arg-type]
by_retry("a", 2)  # type: ignore[call-arg]
by_bulkhead("1")  # type: ignore[arg-type]
by_pipeline()  # type: ignore[call-arg]


async def misuse() -> None:
    await by_policy("o")  # type: ignore[call-arg]
    await by_timeout(b"u")  # type: ignore[arg-type]


def plain(x: int) -> str:
    return str(x)


async def aplain(x: int) -> list[str]:
    return [str(x)]


async def use() -> None:
    assert_type(await by_timeout("u"), bytes)
    assert_type(await by_fallback(1), int)
    assert_type(await by_policy("o", 1), dict[str, int])
    for each in POLICIES:
        assert_type(each.call(plain, 1), str)
        assert_type(await each.acall(aplain, 1), list[str])
        each.call(plain, "1")  # type: ignore[arg-type]
        await each.acall(aplain)  # type: ignore[call-arg]
