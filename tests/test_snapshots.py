"""Every policy has ``snapshot()``, and the exporters read policies through their snapshots."""

from __future__ import annotations

import asyncio

import pytest

from seawall import (
    BreakerSnapshot,
    Bulkhead,
    BulkheadSnapshot,
    CircuitBreaker,
    Fallback,
    FallbackSnapshot,
    Retry,
    RetrySnapshot,
    Timeout,
    TimeoutExceededError,
    TimeoutSnapshot,
    chaos,
)
from seawall.metrics._readings import READERS
from seawall.testing import FakeClock
from tests.helpers import Boom


def test_a_timeout_counts_its_calls_by_outcome() -> None:
    clock = FakeClock()
    timeout = Timeout(1.0, name="t", clock=clock)
    assert timeout.call(lambda: "ok") == "ok"
    with pytest.raises(Boom):
        timeout.call(lambda: (_ for _ in ()).throw(Boom()))

    def late() -> str:
        clock.advance(2.0)
        return "late"

    with pytest.raises(TimeoutExceededError):
        timeout.call(late)

    def interrupted() -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        timeout.call(interrupted)
    assert timeout.snapshot() == TimeoutSnapshot("t", 1.0, 1, 1, 1, 1)


def test_a_fallback_counts_its_answers() -> None:
    fallback = Fallback("cached", on=Boom, name="f")
    assert fallback.snapshot() == FallbackSnapshot("f", 0)

    def fails() -> str:
        raise Boom

    assert fallback.call(fails) == "cached"
    assert asyncio.run(fallback.acall(_afails)) == "cached"
    assert fallback.snapshot() == FallbackSnapshot("f", 2)


async def _afails() -> str:
    raise Boom


@pytest.mark.parametrize(
    ("policy", "kind"),
    [
        (CircuitBreaker(), BreakerSnapshot),
        (Retry(on=Boom), RetrySnapshot),
        (Timeout(1.0), TimeoutSnapshot),
        (Bulkhead(1), BulkheadSnapshot),
        (Fallback(None, on=Boom), FallbackSnapshot),
        (chaos.inject(chaos.Hang()), chaos.InjectorSnapshot),
    ],
    ids=lambda value: getattr(value, "__name__", type(value).__name__),
)
def test_every_policy_has_a_snapshot(policy: object, kind: type) -> None:
    assert isinstance(policy.snapshot(), kind)  # type: ignore[attr-defined]


def test_the_exporters_read_each_snapshot_type_with_series() -> None:
    # A fallback's answers are call-level series (outcome="fallback"): no reader of its own.
    assert set(READERS) == {
        BreakerSnapshot,
        RetrySnapshot,
        TimeoutSnapshot,
        BulkheadSnapshot,
        chaos.InjectorSnapshot,
    }
