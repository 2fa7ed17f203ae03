"""The exceptions seawall raises: their tree, attributes, messages, and pickling."""

from __future__ import annotations

import copy
import math
import pickle

import pytest

import seawall
from seawall import (
    BulkheadFullError,
    CircuitOpenError,
    RejectedError,
    SeawallError,
    TimeoutExceededError,
)


@pytest.mark.parametrize(
    ("cls", "bases"),
    [
        (SeawallError, (Exception,)),
        (RejectedError, (SeawallError,)),
        (CircuitOpenError, (RejectedError, SeawallError)),
        (BulkheadFullError, (RejectedError, SeawallError)),
        (TimeoutExceededError, (SeawallError, TimeoutError, OSError)),
    ],
)
def test_exception_tree(cls: type[Exception], bases: tuple[type[BaseException], ...]) -> None:
    for base in bases:
        assert issubclass(cls, base)


def test_timeouts_are_not_rejections_and_rejections_are_not_timeouts() -> None:
    assert not issubclass(TimeoutExceededError, RejectedError)
    assert not issubclass(CircuitOpenError, TimeoutError)
    assert not issubclass(BulkheadFullError, TimeoutError)
    assert not issubclass(CircuitOpenError, BulkheadFullError)


def test_every_error_is_exported() -> None:
    for name in (
        "SeawallError",
        "RejectedError",
        "CircuitOpenError",
        "BulkheadFullError",
        "TimeoutExceededError",
    ):
        assert name in seawall.__all__


def test_rejected_error() -> None:
    err = RejectedError("refused", name="db", retry_after=2.5)
    assert str(err) == "refused"
    assert err.name == "db"
    assert err.retry_after == 2.5


def test_circuit_open_error() -> None:
    err = CircuitOpenError("db", 1.25)
    assert err.name == "db"
    assert err.retry_after == 1.25
    assert err.state == "open"
    assert str(err) == "circuit 'db' is open; retry after 1.25s"


def test_circuit_open_error_half_open() -> None:
    err = CircuitOpenError("db", 30.0, state="half_open")
    assert err.state == "half_open"
    assert str(err) == "circuit 'db' is half_open; retry after 30s"


def test_circuit_open_error_forced_open_says_until_reset() -> None:
    err = CircuitOpenError("db", math.inf, state="forced_open")
    assert err.retry_after == math.inf
    assert str(err) == "circuit 'db' is forced_open; until reset"


def test_bulkhead_full_error() -> None:
    err = BulkheadFullError("pool")
    assert err.name == "pool"
    assert err.retry_after == 0.0
    assert str(err) == "bulkhead 'pool' is full"
    detailed = BulkheadFullError("pool", 0.5, detail="queue full")
    assert detailed.retry_after == 0.5
    assert str(detailed) == "bulkhead 'pool' is queue full"


def test_timeout_exceeded_error() -> None:
    err = TimeoutExceededError("fetch", 1.5)
    assert err.name == "fetch"
    assert err.seconds == 1.5
    assert str(err) == "'fetch' exceeded its timeout of 1.5s"


def test_timeout_exceeded_error_is_caught_as_builtin_timeout_error() -> None:
    with pytest.raises(TimeoutError):
        raise TimeoutExceededError("fetch", 1.0)


ERRORS = [
    pytest.param(RejectedError("refused", name="db", retry_after=2.5), id="rejected"),
    pytest.param(CircuitOpenError("db", 1.25), id="circuit-open"),
    pytest.param(CircuitOpenError("db", 3.0, state="half_open"), id="circuit-half-open"),
    pytest.param(CircuitOpenError("db", math.inf, state="forced_open"), id="circuit-forced"),
    pytest.param(BulkheadFullError("pool", 0.5), id="bulkhead"),
    pytest.param(TimeoutExceededError("fetch", 1.5), id="timeout"),
]


def attributes(err: BaseException) -> dict[str, object]:
    names = ("name", "retry_after", "state", "seconds")
    return {name: getattr(err, name) for name in names if hasattr(err, name)}


@pytest.mark.parametrize("err", ERRORS)
def test_pickle_round_trip_keeps_type_and_attributes(err: SeawallError) -> None:
    for protocol in range(pickle.HIGHEST_PROTOCOL + 1):
        back = pickle.loads(pickle.dumps(err, protocol=protocol))
        assert type(back) is type(err)
        assert attributes(back) == attributes(err)
        assert attributes(back)  # there is something to compare


@pytest.mark.parametrize("err", ERRORS)
def test_copy_keeps_type_and_attributes(err: SeawallError) -> None:
    for back in (copy.copy(err), copy.deepcopy(err)):
        assert type(back) is type(err)
        assert attributes(back) == attributes(err)


@pytest.mark.parametrize(
    "err",
    [
        pytest.param(RejectedError("refused", name="db", retry_after=2.5), id="rejected"),
        pytest.param(CircuitOpenError("db", 1.25), id="circuit-open"),
        pytest.param(
            CircuitOpenError("db", 3.0, state="half_open"),
            id="circuit-half-open",
        ),
        pytest.param(
            CircuitOpenError("db", math.inf, state="forced_open"),
            id="circuit-forced",
        ),
        pytest.param(BulkheadFullError("pool", 0.5), id="bulkhead"),
        pytest.param(
            BulkheadFullError("pool", 0.5, detail="queue full"),
            id="bulkhead-detail",
        ),
        pytest.param(TimeoutExceededError("fetch", 1.5), id="timeout"),
    ],
)
def test_pickle_round_trip_keeps_the_message(err: SeawallError) -> None:
    back = pickle.loads(pickle.dumps(err))
    assert str(back) == str(err)
    assert back.args == err.args


def test_subclass_of_rejected_error_pickles_as_itself() -> None:
    class Throttled(RejectedError):
        pass

    err = Throttled("slow down", name="api", retry_after=4.0)
    reduced = err.__reduce__()
    assert reduced[1][0] is Throttled
    # The rebuild function is what pickle would call.
    rebuilt = reduced[0](*reduced[1])  # type: ignore[operator]
    assert type(rebuilt) is Throttled
    assert attributes(rebuilt) == {"name": "api", "retry_after": 4.0}
    assert str(rebuilt) == "slow down"
