"""An operation's error budget, read in process from seawall's own counts."""

from __future__ import annotations

from dataclasses import dataclass

from seawall.slo._spec import SLO

__all__ = ["Budget", "budget"]


@dataclass(frozen=True)
class Budget:
    """What ``slo``'s operation has done since the process started (its live policies and the
    remains of collected ones): ``events`` counted by the SLI, ``bad`` of them, their
    ``error_ratio``, and ``remaining``: the share of the error budget left (1.0 untouched,
    0.0 spent, below 0 overspent); ``None`` without events."""

    slo: str
    events: float
    bad: float
    error_ratio: float | None
    remaining: float | None


def budget(slo: SLO) -> Budget:
    """``slo``'s error budget from this process's counts: the same ratio the rules compute,
    over the process's lifetime rather than a window (a deploy gate, a health endpoint)."""
    from seawall._stats.counters import DURATION_BUCKETS
    from seawall.metrics._readings import read_all

    reading = read_all()["seawall_call_duration_seconds"]
    events = bad = 0.0
    for (operation, outcome), (counts, _) in reading.histograms.items():
        if operation != slo.operation or outcome == "cancelled":
            continue
        calls = float(sum(counts))
        if slo.sli == "availability":
            events += calls
            if outcome in slo.bad_outcomes:
                bad += calls
        elif outcome == "success":
            assert slo.threshold is not None
            within = sum(
                count
                for bound, count in zip(DURATION_BUCKETS, counts, strict=False)
                if bound <= slo.threshold
            )
            events += calls
            bad += calls - within
    if not events:
        return Budget(slo.name, 0.0, 0.0, None, None)
    ratio = bad / events
    return Budget(slo.name, events, bad, ratio, 1.0 - ratio / slo.budget)
