"""Configuration is a value, fixed once a policy is built; state is made from it.

Every public configuration attribute refuses to be set (naming itself and what to do), so
nothing derived from it (a bulkhead's slots, a retry's deadline arithmetic) can go out of step.
Each policy keeps its constructor's arguments as a read-only ``Config``, from which copies with
changes are built; and a policy is seen by the metrics readers only once fully built.
"""

from __future__ import annotations

from typing import Any, ClassVar

import pytest

import seawall
from seawall import (
    Bulkhead,
    CircuitBreaker,
    Fallback,
    Pipeline,
    Policy,
    Retry,
    RetryBudget,
    Timeout,
)
from seawall._config import Config
from seawall.metrics._readings import read_all
from seawall.testing import FakeClock
from tests.helpers import Boom

#: Every public configuration attribute, with a value to try to set it to.
READ_ONLY: list[tuple[Any, str, Any]] = [
    (lambda: Timeout(1.0), "seconds", 30.0),
    (lambda: Bulkhead(3), "max_concurrent", 5),
    (lambda: Bulkhead(3, max_queue=2, max_wait=1.0), "max_queue", 0),
    (lambda: Bulkhead(3, max_queue=2, max_wait=1.0), "max_wait", 5.0),
    (lambda: Retry(on=Boom), "attempts", 10),
    (lambda: Retry(on=Boom, deadline=5.0), "deadline", None),
    (lambda: Retry(on=Boom), "budget", RetryBudget()),
    (RetryBudget, "ratio", 1.0),
    (RetryBudget, "min_per_second", 0.0),
    (RetryBudget, "window", 60.0),
]


@pytest.mark.parametrize(
    ("make", "attribute", "value"), READ_ONLY, ids=[f"{a}" for _, a, _ in READ_ONLY]
)
def test_configuration_attributes_are_read_only(make: Any, attribute: str, value: Any) -> None:
    policy = make()
    before = getattr(policy, attribute)
    with pytest.raises(AttributeError, match=rf"{type(policy).__name__}\.{attribute} is read-only"):
        setattr(policy, attribute, value)
    assert getattr(policy, attribute) == before


def test_the_error_says_what_to_do_instead() -> None:
    with pytest.raises(AttributeError) as caught:
        Timeout(1.0).seconds = 2.0  # type: ignore[misc]
    assert "build a new Timeout(seconds=...)" in str(caught.value)


def test_an_idle_bulkhead_stays_idle() -> None:
    """The review's case: changing max_concurrent left an idle bulkhead 'active'."""
    bulkhead = Bulkhead(5)
    with pytest.raises(AttributeError):
        bulkhead.max_concurrent = 8  # type: ignore[misc]
    snapshot = bulkhead.snapshot()
    assert (bulkhead.active, snapshot.active, snapshot.limit) == (0, 0, 5)


def test_a_retry_s_deadline_keeps_its_attempts() -> None:
    clock = FakeClock()
    retry = Retry(on=Boom, attempts=5, wait=1.0, deadline=2.5, clock=clock)
    with pytest.raises(AttributeError):
        retry.deadline = 100.0  # type: ignore[misc]
    calls = 0

    def fails() -> None:
        nonlocal calls
        calls += 1
        raise Boom

    with pytest.raises(Boom):
        retry.call(fails)
    assert calls == 3  # at 0, 1 and 2 s: a fourth would start past the 2.5 s deadline


def test_config_keeps_the_arguments_with_a_readable_repr() -> None:
    clock = FakeClock()
    breaker = CircuitBreaker(failure_ratio=0.25, clock=clock)
    config = breaker._config
    assert isinstance(config, Config)
    assert config.failure_ratio == 0.25
    assert config.open_duration == 0.6  # a default, filled in
    assert repr(config) == f"CircuitBreakerConfig(failure_ratio=0.25, clock={clock!r})"
    assert repr(Timeout(2)._config) == "TimeoutConfig(seconds=2)"
    with pytest.raises(AttributeError, match="read-only"):
        config.failure_ratio = 0.5
    with pytest.raises(AttributeError, match="no parameter 'nope'"):
        config.nope  # noqa: B018
    with pytest.raises(TypeError, match="no parameter 'nope'"):
        config.replace(nope=1)


def test_a_copy_with_changes_has_the_configuration_and_none_of_the_state() -> None:
    clock = FakeClock()
    bulkhead = Bulkhead(2, max_queue=1, max_wait=1.0, name="b", clock=clock)
    bulkhead.call(lambda: None)
    copy = bulkhead._spawn("c", max_concurrent=4)
    assert (copy.name, copy.max_concurrent, copy.max_queue, copy.max_wait) == ("c", 4, 1, 1.0)
    assert copy.clock is clock
    assert copy.snapshot().admitted == 0
    assert bulkhead.snapshot().admitted == 1
    assert copy._config == bulkhead._config.replace(name="c", max_concurrent=4)
    budget = RetryBudget(0.5, window=20.0)
    assert (budget._spawn().ratio, budget._spawn().window) == (0.5, 20.0)


def test_a_copy_is_checked_as_the_original_was() -> None:
    with pytest.raises(ValueError, match="max_concurrent"):
        Bulkhead(2)._spawn(None, max_concurrent=0)


def test_bad_calls_get_python_s_own_error() -> None:
    with pytest.raises(TypeError, match="seconds"):
        Timeout()  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="unexpected keyword argument 'secs'"):
        Timeout(secs=1)  # type: ignore[call-arg]


def names_read() -> set[str]:
    """Every label value in every series the readers give now."""
    names: set[str] = set()
    for reading in read_all().values():
        for labels in (*reading.values, *reading.histograms):
            names.update(labels)
    return names


class Slow(Timeout):
    """A policy whose construction is watched: readers run in the middle of it."""

    seen_while_building: ClassVar[list[bool]] = []

    def __init__(self, seconds: float) -> None:
        super().__init__(seconds, name="half-built")
        Slow.seen_while_building.append("half-built" in names_read())
        self.extra = True


def test_a_policy_is_seen_by_the_readers_only_once_built() -> None:
    policy = Slow(1.0)
    assert Slow.seen_while_building == [False]
    assert policy._config.seconds == 1.0
    assert "half-built" in names_read()


def test_policy_clock_rebuilds_a_part_from_its_config() -> None:
    clock = FakeClock()
    retry = Retry(on=Boom, attempts=4, budget=RetryBudget(0.3))
    policy = Policy("p", retry=retry, breaker=True, clock=clock)
    assert retry.clock is clock
    assert retry.budget is not None
    assert retry.budget._clock is clock
    assert retry._config.clock is clock
    assert retry.attempts == 4
    assert retry.budget.ratio == 0.3
    assert policy.call(lambda: "ok") == "ok"


def test_every_policy_has_a_config() -> None:
    clock = FakeClock()
    parts = [
        Timeout(1),
        Bulkhead(1),
        Retry(on=Boom),
        CircuitBreaker(),
        Fallback(None, on=Boom),
        Pipeline(Timeout(1), name="x"),
        Policy("y", breaker=True, clock=clock),
        RetryBudget(),
    ]
    for part in parts:
        assert isinstance(part._config, Config), part  # type: ignore[attr-defined]
    assert seawall.Policy("z", attempt_timeout=1)._config.attempt_timeout == 1


class ForwardingTimeout(Timeout):
    """A subclass that forwards its arguments, as users write them."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("seconds", 2.0)
        super().__init__(*args, **kwargs)


def test_a_subclass_that_forwards_its_arguments_is_copied_and_put_on_a_policy_s_clock() -> None:
    timeout = ForwardingTimeout()
    copy = timeout._spawn("host")
    assert type(copy) is ForwardingTimeout
    assert (copy.name, copy.seconds) == ("host", 2.0)
    clock = FakeClock()
    policy = Policy("p", breaker=True, attempt_timeout=ForwardingTimeout(), clock=clock)
    assert policy.attempt_timeout is not None
    assert policy.attempt_timeout.clock is clock


def test_a_budget_subclass_is_copied_as_itself() -> None:
    class MyBudget(RetryBudget):
        pass

    assert type(MyBudget(0.3)._spawn()) is MyBudget


def test_a_config_can_be_copied_and_pickled() -> None:
    import copy
    import pickle

    config = Bulkhead(3, max_queue=1, max_wait=0.5)._config
    assert copy.deepcopy(config) == config
    assert copy.copy(config) == config
    assert pickle.loads(pickle.dumps(config)) == config


def test_the_readme_names_every_read_only_attribute() -> None:
    import re
    from pathlib import Path

    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    [paragraph] = re.findall(r"A policy's configuration is fixed.*?\n\n", readme, re.DOTALL)
    named = set(re.findall(r"`(\w+\.\w+)`", paragraph))
    expected = {f"{type(make()).__name__}.{attribute}" for make, attribute, _ in READ_ONLY}
    assert named == expected
