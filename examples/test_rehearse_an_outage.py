"""Rehearse "the payments API hangs for 10 minutes" in a test, on simulated time.

The `simulated` fixture (seawall's pytest plugin) runs the test on an event loop whose clock
jumps to the next timer: the 12 minutes below take well under a second, the same way every
run. `seawall.chaos` plays the outage where the payments API would be (innermost in the
Policy), and `seawall.testing.watch` reads what happened from seawall's own counts.

    pytest examples/test_rehearse_an_outage.py
"""

from __future__ import annotations

import seawall
from seawall import chaos
from seawall.testing import Simulation, load, watch

# Healthy for a minute, hanging for ten, healthy again: the payments API's bad day.
TEN_MINUTE_HANG = chaos.Schedule(
    chaos.Phase("healthy", 60, chaos.Latency(0.05)),
    chaos.Phase("hang", 600, chaos.Hang()),
    chaos.Phase("recovered", 60, chaos.Latency(0.05)),
)


def payments_policy(faults: chaos.Injector | None = None) -> seawall.Policy:
    """What the service runs in production (its chaos part is None there, or off)."""
    return seawall.Policy(
        "payments",
        retry=seawall.Retry(on=seawall.TimeoutExceededError, attempts=2),
        breaker=True,
        attempt_timeout=1.0,
        total_timeout=2.5,
        chaos=faults,
    )


async def charge() -> str:  # the call to the payments API; chaos stands in for its trouble
    return "charged"


def test_the_payments_api_hangs_for_ten_minutes(simulated: Simulation) -> None:
    policy = payments_policy(chaos.inject(TEN_MINUTE_HANG, enabled=True))
    with watch(policy) as seen:
        simulated.run(load(lambda: policy.acall(charge), rate=20, seconds=720))

    hang = seen.phase("hang")
    assert hang.detected is not None
    assert hang.detected <= 2.0  # the breaker opened within 2 s of the hang
    assert hang.recovered is not None
    assert hang.recovered <= 2.0  # and closed within 2 s of the API's return
    assert hang.attempts_per_call <= 0.1  # the hanging API was spared
    assert seen.phase("healthy").availability == 1.0
    # Attempts still hanging when the API came back time out in its first second.
    assert seen.phase("recovered").availability >= 0.98


def test_the_rehearsal_is_the_same_every_run() -> None:
    def rehearse() -> tuple[list[tuple[float, float, str]], float]:
        # Jitter (the retry's, the breaker's) and the faults' draws come from `random`,
        # which simulated() seeds.
        with seawall.testing.simulated(seed=1) as sim:
            flaky = chaos.Schedule(
                chaos.Phase(
                    "flaky", 30, chaos.ReadTimeout(rate=0.3), chaos.Latency(0.01, up_to=0.2)
                ),
                chaos.Phase("healthy", None),
            )
            policy = payments_policy(chaos.inject(flaky, enabled=True))
            with watch(policy) as seen:
                sim.run(load(lambda: policy.acall(charge), rate=10, seconds=60))
            return seen.calls, sim.now()

    first = rehearse()
    assert rehearse() == first
    outcomes = {outcome for _, _, outcome in first[0]}
    assert {"success", "failure"} <= outcomes


def test_sync_code_rehearses_too(simulated: Simulation) -> None:
    """A sync policy's waits move the simulated time on (no real sleep)."""
    policy = seawall.Policy(
        "ledger",
        retry=seawall.Retry(on=ConnectionError, attempts=3, wait=1.0),
        chaos=chaos.inject(chaos.ConnectError(after=0.5), enabled=True),
    )
    try:
        policy.call(lambda: "written")
    except ConnectionRefusedError:
        pass
    assert simulated.now() == 3 * 0.5 + 2 * 1.0  # three refusals, two waits between
