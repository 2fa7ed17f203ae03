"""The one mechanism that makes every policy a decorator (``PolicyBase``), shown on the breaker."""

from __future__ import annotations

import asyncio
import functools
import inspect
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from conftest import Shell
from helpers import Boom

import seawall
from seawall import CircuitBreaker, CircuitOpenError, CircuitState
from seawall._base import PolicyBase, check_decoratable, qualified_name
from seawall.testing import FakeClock


def fetch(key: str, *, default: int = 0) -> int:
    """Fetch a number."""
    return len(key) + default


async def afetch(key: str, *, default: int = 0) -> int:
    """Fetch a number, asynchronously."""
    await asyncio.sleep(0)
    return len(key) + default


def breaker(**kwargs: Any) -> CircuitBreaker:
    return CircuitBreaker(clock=FakeClock(), **kwargs)


# -- wrapping -----------------------------------------------------------------------------------


@pytest.mark.parametrize("fn", [fetch, afetch])
def test_wraps_keeps_metadata(fn: Any) -> None:
    guarded = breaker()(fn)
    assert guarded is not fn
    assert guarded.__name__ == fn.__name__
    assert guarded.__qualname__ == fn.__qualname__
    assert guarded.__doc__ == fn.__doc__
    assert guarded.__module__ == fn.__module__
    assert guarded.__wrapped__ is fn
    assert inspect.signature(guarded) == inspect.signature(fn)


def test_sync_function_stays_sync() -> None:
    guarded = breaker()(fetch)
    assert not inspect.iscoroutinefunction(guarded)
    assert guarded("abc", default=1) == 4


def test_async_function_stays_a_coroutine_function() -> None:
    guarded = breaker()(afetch)
    assert inspect.iscoroutinefunction(guarded)
    assert asyncio.iscoroutinefunction(guarded)
    assert asyncio.run(guarded("abcd", default=2)) == 6


def test_arguments_and_results_pass_through(run: Shell) -> None:
    seen: list[tuple[object, ...]] = []

    def work(a: int, b: int = 0, *rest: int, key: str = "k", **extra: object) -> str:
        seen.append((a, b, rest, key, extra))
        return f"{a}-{b}-{key}"

    guarded = run.decorate(breaker(), work)
    assert guarded(1, 2, 3, 4, key="x", flag=True) == "1-2-x"
    assert guarded(5) == "5-0-k"
    assert seen == [(1, 2, (3, 4), "x", {"flag": True}), (5, 0, (), "k", {})]


def test_exception_passes_through_unchanged(run: Shell) -> None:
    err = Boom("down")

    def work() -> None:
        raise err

    guarded = run.decorate(breaker(), work)
    with pytest.raises(Boom) as caught:
        guarded()
    assert caught.value is err


def test_decorated_method_binds_self(run: Shell) -> None:
    b = breaker()

    class Client:
        def __init__(self, base: int) -> None:
            self.base = base

        def get(self, n: int) -> int:
            return self.base + n

    Client.get = run.decorate(b, Client.get)  # type: ignore[method-assign]
    assert Client(10).get(5) == 15
    assert b.name == "test_decorated_method_binds_self.<locals>.Client.get"


def test_decorated_sync_and_async_functions_trip_one_breaker(run: Shell) -> None:
    calls: list[str] = []

    def work() -> None:
        calls.append("ran")
        raise Boom

    b = breaker(name="shared", window_calls=2, minimum_calls=2)
    guarded = run.decorate(b, work)
    for _ in range(2):
        with pytest.raises(Boom):
            guarded()
    assert b.state is CircuitState.OPEN
    with pytest.raises(CircuitOpenError) as caught:
        guarded()
    assert caught.value.name == "shared"
    assert calls == ["ran", "ran"]


def test_one_breaker_guards_a_sync_and_an_async_function() -> None:
    b = breaker(window_calls=2, minimum_calls=2)

    @b
    def sync_work() -> None:
        raise Boom

    @b
    async def async_work() -> None:
        raise Boom

    with pytest.raises(Boom):
        sync_work()
    with pytest.raises(Boom):
        asyncio.run(async_work())
    assert b.snapshot().failures == 2
    assert b.state is CircuitState.OPEN
    with pytest.raises(CircuitOpenError):
        sync_work()
    with pytest.raises(CircuitOpenError):
        asyncio.run(async_work())
    assert b.snapshot().rejected == 2


def test_partial_of_an_async_function_is_guarded_as_async() -> None:
    b = breaker(window_calls=1, minimum_calls=1)

    async def down(reason: str) -> None:
        raise Boom(reason)

    guarded = b(functools.partial(down, "gone"))
    assert inspect.iscoroutinefunction(guarded)
    with pytest.raises(Boom, match="gone"):
        asyncio.run(guarded())
    assert b.snapshot().failures == 1
    assert b.state is CircuitState.OPEN


def test_callable_object_with_async_call_is_guarded_as_async() -> None:
    class Client:
        async def __call__(self) -> None:
            raise Boom

    b = breaker(window_calls=1, minimum_calls=1)
    guarded = b(Client())
    assert inspect.iscoroutinefunction(guarded)
    with pytest.raises(Boom):
        asyncio.run(guarded())
    assert b.snapshot().failures == 1
    assert b.name == "Client"
    assert b.state is CircuitState.OPEN


def test_classes_and_sync_callable_objects_are_guarded_as_sync() -> None:
    class Handler:
        def __call__(self) -> str:
            return "handled"

    class AsyncHandler:
        async def __call__(self) -> None:
            pass

    b = breaker()
    guarded = b(Handler())
    assert not inspect.iscoroutinefunction(guarded)
    assert guarded() == "handled"
    make = b(AsyncHandler)  # calling the class builds an instance, synchronously
    assert not inspect.iscoroutinefunction(make)
    assert isinstance(make(), AsyncHandler)
    assert b.snapshot().successes == 2


# -- what cannot be decorated -------------------------------------------------------------------


def gen() -> Iterator[int]:
    yield 1


async def agen() -> AsyncIterator[int]:
    yield 1


@pytest.mark.parametrize("fn", [gen, agen], ids=["generator", "async-generator"])
def test_generator_functions_are_rejected(fn: Any) -> None:
    b = breaker()
    with pytest.raises(TypeError, match=f"{fn.__qualname__} is a generator function"):
        b(fn)
    assert b.name == "circuitbreaker"  # a rejected function does not name the policy


@pytest.mark.parametrize("value", [42, "fetch", None, 1.5, [fetch]])
def test_non_callables_are_rejected(value: object) -> None:
    with pytest.raises(TypeError, match=f"decorates callables, got {type(value).__name__}"):
        breaker()(value)  # type: ignore[call-overload]


def test_check_decoratable_accepts_every_kind_of_callable() -> None:
    class Handler:
        def __call__(self) -> None:
            pass

    for fn in (fetch, afetch, Handler(), functools.partial(fetch, "x"), len, Handler):
        check_decoratable(fn)


# -- names --------------------------------------------------------------------------------------


def test_qualified_name() -> None:
    class Obj:
        def method(self) -> None:
            pass

        def __call__(self) -> None:
            pass

    assert qualified_name(fetch) == "fetch"
    assert qualified_name(Obj.method) == "test_qualified_name.<locals>.Obj.method"
    assert qualified_name(Obj().method) == "test_qualified_name.<locals>.Obj.method"
    assert qualified_name(Obj()) == "Obj"
    assert qualified_name(functools.partial(fetch, "x")) == "partial"
    assert qualified_name(len) == "len"


def test_default_name_before_any_function() -> None:
    assert breaker().name == "circuitbreaker"


def test_name_defaults_to_the_first_decorated_function() -> None:
    b = breaker()

    @b
    def first() -> None:
        pass

    @b
    async def second() -> None:
        pass

    assert b.name == "test_name_defaults_to_the_first_decorated_function.<locals>.first"


def test_async_function_names_the_policy() -> None:
    b = breaker()
    b(afetch)
    assert b.name == "afetch"


def test_explicit_name_wins_over_decorated_function() -> None:
    b = breaker(name="payments")
    b(fetch)
    assert b.name == "payments"


def test_name_adopted_from_the_first_called_function(run: Shell) -> None:
    b = breaker()
    assert run(b, fetch, "ab") == 2

    def other() -> int:
        return 0

    run(b, other)
    assert b.name == "fetch"


def test_name_adopted_by_call_appears_in_errors(run: Shell) -> None:
    def flaky() -> None:
        raise Boom

    b = breaker(window_calls=1, minimum_calls=1)
    with pytest.raises(Boom):
        run(b, flaky)
    with pytest.raises(CircuitOpenError, match="circuit 'test_name_adopted_by_call") as caught:
        run(b, fetch, "x")
    assert caught.value.name == "test_name_adopted_by_call_appears_in_errors.<locals>.flaky"


@pytest.mark.parametrize(
    ("name", "error", "match"),
    [
        (42, TypeError, "name must be a str, got int"),
        (b"db", TypeError, "name must be a str, got bytes"),
        ("", ValueError, "name must be a non-empty printable string"),
        ("a\nb", ValueError, "name must be a non-empty printable string"),
    ],
)
def test_bad_names(name: object, error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        breaker(name=name)


def test_policy_base_call_and_acall_are_abstract() -> None:
    base = PolicyBase(name="base", clock=None)
    with pytest.raises(NotImplementedError):
        base.call(fetch, "x")
    with pytest.raises(NotImplementedError):
        asyncio.run(base.acall(afetch, "x"))


def test_inherit_name_only_when_none_was_given() -> None:
    unnamed = PolicyBase(name=None, clock=None)
    named = PolicyBase(name="own", clock=None)
    unnamed._inherit_name("outer")
    named._inherit_name("outer")
    assert unnamed.name == "outer"
    assert named.name == "own"


# -- what call and acall cannot run ---------------------------------------------------------------


def _refusable_policies(clock: FakeClock) -> dict[str, seawall.PolicyBase]:
    def retry() -> seawall.Retry:
        return seawall.Retry(on=Exception, attempts=3, wait=0, clock=clock)

    def breaker() -> CircuitBreaker:
        return CircuitBreaker(
            minimum_calls=1, window_calls=1, consecutive_failures=None, clock=clock
        )

    return {
        "Policy": seawall.Policy(
            "one-frame",
            retry=retry(),
            breaker=breaker(),
            attempt_timeout=seawall.Timeout(5, clock=clock),
            bulkhead=seawall.Bulkhead(2, clock=clock),
        ),
        "Policy of every part": seawall.Policy(
            "composed",
            fallback=seawall.Fallback("answer", on=Exception),
            total_timeout=seawall.Timeout(10, clock=clock),
            retry=retry(),
            breaker=breaker(),
            bulkhead=seawall.Bulkhead(2, clock=clock),
        ),
        "Retry": retry(),
        "CircuitBreaker": breaker(),
        "Timeout": seawall.Timeout(5, clock=clock),
        "Bulkhead": seawall.Bulkhead(2, clock=clock),
        "Fallback": seawall.Fallback("answer", on=Exception),
        "Pipeline": seawall.Pipeline(retry(), breaker(), seawall.Timeout(5, clock=clock)),
    }


def _counts(policy: seawall.PolicyBase) -> dict[str, object]:
    """Everything the policy and its parts have counted, but a bulkhead's admissions."""
    reading = policy.stats.read()
    counts: dict[str, object] = {
        "calls": {outcome: sum(buckets) for outcome, (buckets, _) in reading.durations.items()},
        "errors": reading.errors,
    }
    parts = policy.policies if isinstance(policy, seawall.Pipeline) else (policy,)
    for index, part in enumerate(parts):
        if isinstance(part, seawall.Retry):
            snap = part.snapshot()
            counts[f"{index} retry"] = (snap.calls, snap.attempts_total)
        elif isinstance(part, CircuitBreaker):
            b = part.snapshot()
            counts[f"{index} breaker"] = (b.state, b.successes, b.failures, b.ignored, b.rejected)
        elif isinstance(part, seawall.Timeout):
            counts[f"{index} timeout"] = part._counts.as_dict()
        elif isinstance(part, seawall.Bulkhead):
            counts[f"{index} bulkhead"] = (part.snapshot().active, part.snapshot().rejected)
        elif isinstance(part, seawall.Fallback):
            counts[f"{index} fallback"] = part.snapshot().used
    return counts


@pytest.mark.parametrize("kind", list(_refusable_policies(FakeClock())))
def test_acall_of_a_sync_function_is_refused_once_and_counted_nowhere(kind: str) -> None:
    policy = _refusable_policies(FakeClock())[kind]
    fresh = _counts(_refusable_policies(FakeClock())[kind])
    runs: list[int] = []

    def charge_card() -> str:
        runs.append(1)
        return "charged"

    async def charge_card_async() -> str:
        return "charged"

    with pytest.raises(TypeError, match=r"acall awaits what its function returns.*call\(\)"):
        asyncio.run(policy.acall(charge_card))
    assert runs == [1]  # not retried, not answered by a fallback
    assert _counts(policy) == fresh  # no outcome: not a failure, nor a cancellation
    assert asyncio.run(policy.acall(charge_card_async)) == "charged"  # nothing held
    assert _counts(policy)["calls"] == {**fresh["calls"], "success": 1}  # type: ignore[dict-item]


def test_acall_of_a_sync_function_in_half_open_gives_the_probe_back() -> None:
    clock = FakeClock()
    breaker = CircuitBreaker(
        minimum_calls=1, window_calls=1, consecutive_failures=None, open_duration=10, clock=clock
    )

    def down() -> None:
        raise Boom

    with pytest.raises(Boom):
        breaker.call(down)
    clock.advance(10)
    ignored = breaker.snapshot().ignored
    with pytest.raises(TypeError, match="acall awaits"):
        asyncio.run(breaker.acall(lambda: "not awaitable"))
    assert breaker.state is CircuitState.HALF_OPEN
    assert breaker.snapshot().ignored == ignored

    async def probe() -> str:
        return "ok"

    assert asyncio.run(breaker.acall(probe)) == "ok"  # the probe's slot was given back
    assert breaker.state is CircuitState.CLOSED


def test_acall_of_a_function_returning_a_coroutine_awaits_it() -> None:
    async def fetch() -> str:
        return "fetched"

    policy = seawall.Policy("lambda-coro", retry=seawall.Retry(on=OSError), breaker=True)
    assert asyncio.run(policy.acall(lambda: fetch())) == "fetched"


@pytest.mark.parametrize("way", ["call", "acall"])
def test_call_of_a_non_callable_is_a_type_error_and_counts_nothing(way: str) -> None:
    breaker = seawall.CircuitBreaker(minimum_calls=1, window_calls=1, consecutive_failures=None)

    def attempt() -> None:
        if way == "call":
            breaker.call(None)  # type: ignore[arg-type]
        else:
            asyncio.run(breaker.acall(None))  # type: ignore[arg-type]

    with pytest.raises(TypeError, match="needs a function to call"):
        attempt()
    assert breaker.snapshot().failures == 0
