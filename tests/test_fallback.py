"""Fallback: a value, or a function of the exception, instead of the exceptions named."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from helpers import Boom

import seawall
from seawall import CircuitBreaker, CircuitOpenError, Fallback, Retry
from seawall.testing import FakeClock, force_open


def raiser(exc: BaseException) -> Any:
    def fn() -> Any:
        raise exc

    return fn


def test_value_instead_of_the_exception(run: Any):
    fallback = Fallback("cached", on=Boom)
    assert run(fallback, raiser(Boom("down"))) == "cached"
    assert run(fallback, lambda: "fresh") == "fresh"
    assert fallback.snapshot().used == 1


@pytest.mark.parametrize("value", [None, 0, [], {"k": "v"}])
def test_falsy_and_container_values(run: Any, value: Any):
    fallback = Fallback(value, on=Boom)
    assert run(fallback, raiser(Boom())) == value


def test_callable_receives_the_exception(run: Any):
    seen: list[BaseException] = []

    def answer(exc: BaseException) -> str:
        seen.append(exc)
        return f"fallback for {exc}"

    exc = Boom("down")
    fallback = Fallback(answer, on=Boom)
    assert run(fallback, raiser(exc)) == "fallback for down"
    assert len(seen) == 1
    assert seen[0] is exc


def test_async_callable_is_awaited_in_acall():
    seen: list[BaseException] = []

    async def answer(exc: BaseException) -> str:
        await asyncio.sleep(0)
        seen.append(exc)
        return "from async fallback"

    exc = Boom("down")

    async def fails() -> str:
        raise exc

    fallback = Fallback(answer, on=Boom)
    assert asyncio.run(fallback.acall(fails)) == "from async fallback"
    assert seen == [exc]
    decorated = fallback(fails)
    assert asyncio.run(decorated()) == "from async fallback"
    assert fallback.snapshot().used == 2


def test_async_callable_in_a_sync_call_is_a_type_error():
    async def answer(exc: BaseException) -> str:
        return "never"

    exc = Boom("down")
    fallback = Fallback(answer, on=Boom, name="fb")
    with pytest.raises(TypeError, match=r"'fb' is a coroutine function") as info:
        fallback.call(raiser(exc))
    assert info.value.__cause__ is exc


def test_sync_callable_serves_async_calls_too():
    async def fails() -> str:
        raise Boom("x")

    fallback = Fallback(lambda exc: type(exc).__name__, on=Boom)
    assert asyncio.run(fallback.acall(fails)) == "Boom"


def test_exceptions_not_in_on_propagate(run: Any):
    fallback = Fallback("cached", on=Boom)
    exc = KeyError("other")
    with pytest.raises(KeyError) as info:
        run(fallback, raiser(exc))
    assert info.value is exc
    assert fallback.snapshot().used == 0


@pytest.mark.parametrize(
    "on",
    [(Boom, KeyError), lambda exc: isinstance(exc, Boom | KeyError)],
    ids=["tuple", "predicate"],
)
def test_on_forms(run: Any, on: Any):
    fallback = Fallback("fb", on=on)
    assert run(fallback, raiser(Boom())) == "fb"
    assert run(fallback, raiser(KeyError())) == "fb"
    with pytest.raises(ValueError, match="other"):
        run(fallback, raiser(ValueError("other")))
    assert fallback.snapshot().used == 2


@pytest.mark.parametrize("exc_type", [asyncio.CancelledError, KeyboardInterrupt])
def test_cancellation_is_never_answered(run: Any, exc_type: type[BaseException]):
    fallback = Fallback("fb", on=lambda exc: True)
    with pytest.raises(exc_type):
        run(fallback, raiser(exc_type()))
    assert fallback.snapshot().used == 0


def test_exception_from_the_fallback_function_propagates(run: Any):
    def broken(exc: BaseException) -> str:
        raise RuntimeError("fallback broke") from exc

    fallback = Fallback(broken, on=Boom)
    with pytest.raises(RuntimeError, match="fallback broke"):
        run(fallback, raiser(Boom()))


def test_used_counter(run: Any):
    fallback = Fallback(-1, on=Boom)
    outcomes = run.many(
        fallback,
        [raiser(Boom()), lambda: 1, raiser(Boom()), raiser(KeyError()), raiser(Boom()), lambda: 2],
    )
    assert outcomes[:3] == [-1, 1, -1]
    assert isinstance(outcomes[3], KeyError)
    assert outcomes[4:] == [-1, 2]
    assert fallback.snapshot().used == 3


def test_on_is_required():
    with pytest.raises(TypeError, match=r"on=") as info:
        Fallback(1)  # type: ignore[call-arg]
    assert "Fallback needs on=" in str(info.value)


@pytest.mark.parametrize("on", [None, "x", (), (Boom, 3)])
def test_bad_on_is_a_type_error(on: Any):
    with pytest.raises(TypeError, match=r"^on must be"):
        Fallback(1, on=on)


def test_name_defaults_to_the_decorated_functions_qualname(run: Any):
    fallback = Fallback("fb", on=Boom)

    def load_profile() -> str:
        raise Boom()

    decorated = run.decorate(fallback, load_profile)
    assert decorated() == "fb"
    assert fallback.name == load_profile.__qualname__
    assert repr(fallback) == f"Fallback('fb', name={load_profile.__qualname__!r})"


def test_answers_an_open_breaker(run: Any):
    breaker = CircuitBreaker(name="dep", clock=FakeClock())
    force_open(breaker)
    fallback = Fallback(lambda exc: f"{exc.name} unavailable", on=CircuitOpenError)
    calls = 0

    def dependency() -> str:
        nonlocal calls
        calls += 1
        return "live"

    if run.kind == "sync":
        result = fallback.call(breaker.call, dependency)
    else:

        async def adependency() -> str:
            return dependency()

        result = asyncio.run(fallback.acall(breaker.acall, adependency))
    assert result == "dep unavailable"
    assert calls == 0


def test_answers_after_retries_run_out(run: Any):
    clock = FakeClock()
    retry = Retry(on=Boom, attempts=3, wait=0.5, clock=clock)
    fallback = Fallback(lambda exc: exc.__notes__[-1], on=Boom)
    if run.kind == "sync":
        note = fallback.call(retry.call, raiser(Boom()))
    else:

        async def fails() -> None:
            raise Boom()

        note = asyncio.run(fallback.acall(retry.acall, fails))
    assert "gave up after 3 attempts over 1s" in note
    assert clock.sleeps == [0.5, 0.5]


def test_public_name():
    assert seawall.Fallback is Fallback


# -- how its answers are recorded ---------------------------------------------------------------


def _down() -> None:
    raise ConnectionError("down")


def _outcomes(policy: seawall.Pipeline | Fallback) -> dict[str, int]:
    reading = policy.stats.read()
    return {outcome: sum(counts) for outcome, (counts, _) in reading.durations.items()}


@pytest.mark.parametrize("way", ["call", "decorated"])
def test_answers_of_a_policys_fallback_are_their_own_outcome(run: Any, way: str) -> None:
    policy = seawall.Policy(
        "with-fallback", fallback=Fallback("cached", on=ConnectionError), breaker=True
    )
    if way == "call":
        answers = [run(policy, _down) for _ in range(3)]
    else:
        decorated = run.decorate(policy, _down)
        answers = [decorated() for _ in range(3)]
    assert answers == ["cached"] * 3
    assert _outcomes(policy) == {"success": 0, "failure": 0, "fallback": 3}
    assert policy.stats.read().errors == {("fallback", "ConnectionError"): 3}
    assert policy.breaker is not None
    assert policy.breaker.snapshot().failures == 3
    assert policy.fallback is not None
    assert policy.fallback.snapshot().used == 3


def test_a_fallback_on_its_own_and_first_in_a_pipeline_records_the_same(run: Any) -> None:
    alone = Fallback("cached", on=ConnectionError, name="alone")
    pipeline = seawall.Pipeline(
        Fallback("cached", on=ConnectionError),
        Retry(on=ConnectionError, attempts=2, wait=0, clock=FakeClock()),
        name="piped",
    )
    for policy in (alone, pipeline):
        assert run(policy, _down) == "cached"
        assert run(policy, lambda: "fresh") == "fresh"
        assert _outcomes(policy) == {"success": 1, "failure": 0, "fallback": 1}


def test_a_fallback_inside_a_pipeline_answers_for_the_pipeline_as_a_success(run: Any) -> None:
    # Not the outermost layer: what encloses it sees an answer, and records one.
    pipeline = seawall.Pipeline(
        Retry(on=ConnectionError, attempts=2, wait=0, clock=FakeClock()),
        Fallback("cached", on=ConnectionError),
        name="inner-fallback",
    )
    assert run(pipeline, _down) == "cached"
    assert _outcomes(pipeline) == {"success": 1, "failure": 0}


def test_an_error_of_the_fallback_itself_is_recorded_as_that_error(run: Any) -> None:
    def broken(exc: BaseException) -> str:
        raise LookupError("no cached copy")

    policy = seawall.Policy("broken-fallback", fallback=Fallback(broken, on=ConnectionError))
    with pytest.raises(LookupError) as info:
        run(policy, _down)
    assert isinstance(info.value.__context__, ConnectionError)
    assert policy.stats.read().errors == {("failure", "LookupError"): 1}


def test_exceptions_the_fallback_does_not_answer_are_failures(run: Any) -> None:
    policy = seawall.Policy("unanswered", fallback=Fallback("cached", on=ConnectionError))
    with pytest.raises(Boom):
        run(policy, raiser(Boom()))
    assert policy.stats.read().errors == {("failure", "Boom"): 1}
