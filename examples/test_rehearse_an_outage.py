"""Rehearse "the payments API hangs for 10 minutes" in a test, on simulated time.

The `simulated` fixture (seawall's pytest plugin) runs the test on an event loop whose clock
jumps to the next timer: the 12 minutes below take well under a second, the same way every
run. The Policy is built inside the test, so it runs on the simulated clock.

    pytest examples/test_rehearse_an_outage.py
"""

from __future__ import annotations

import asyncio

import seawall
from seawall.testing import Simulation

RATE = 20  # calls a second
HANG_FROM, HANG_UNTIL = 60.0, 60.0 + 10 * 60  # the payments API hangs for 10 minutes
END = HANG_UNTIL + 60.0


def payments_policy() -> seawall.Policy:
    """What the service runs in production (here: the defaults, with timeouts)."""
    return seawall.Policy(
        "payments",
        retry=seawall.Retry(on=seawall.TimeoutExceededError, attempts=2),
        breaker=True,
        attempt_timeout=1.0,
        total_timeout=2.5,
    )


def test_the_payments_api_hangs_for_ten_minutes(simulated: Simulation) -> None:
    policy = payments_policy()
    attempts_while_hanging = 0
    outcomes: list[tuple[float, bool]] = []  # (when the call was made, whether it succeeded)

    async def charge() -> str:  # the payments API, as the test imagines it
        nonlocal attempts_while_hanging
        if HANG_FROM <= simulated.now() < HANG_UNTIL:
            attempts_while_hanging += 1
            await asyncio.sleep(3600)  # hangs: only the attempt timeout ends it
        await asyncio.sleep(0.05)
        return "charged"

    async def one() -> None:
        started = simulated.now()
        try:
            await policy.acall(charge)
        except seawall.SeawallError:
            outcomes.append((started, False))
        else:
            outcomes.append((started, True))

    async def traffic() -> None:
        calls = []
        while simulated.now() < END:
            calls.append(asyncio.ensure_future(one()))
            await asyncio.sleep(1 / RATE)
        await asyncio.gather(*calls)

    simulated.run(traffic)

    # Detected: from 2 s into the hang on, no call waits on it (until the last 2.5 s, whose
    # retries may land after the API is back).
    hanging = [ok for started, ok in outcomes if HANG_FROM + 2.0 <= started < HANG_UNTIL - 2.5]
    assert hanging
    assert not any(hanging)
    # Recovered: 2 s after the API is back, every call succeeds again.
    after = [ok for started, ok in outcomes if started >= HANG_UNTIL + 2.0]
    assert after
    assert all(after)
    # The hanging API was spared: at most 0.1 attempts per call during the hang.
    during = [started for started, _ in outcomes if HANG_FROM <= started < HANG_UNTIL]
    assert attempts_while_hanging <= 0.1 * len(during)


def test_the_rehearsal_is_the_same_every_run() -> None:
    def rehearse() -> tuple[list[str], float]:
        # The retry's jittered waits draw from `random`, which simulated() seeds.
        with seawall.testing.simulated(seed=1) as sim:
            policy = payments_policy()

            async def flaky() -> str:
                await asyncio.sleep(0.01)
                if sim.now() % 7 < 3:
                    raise seawall.TimeoutExceededError("payments", 1.0)
                return "ok"

            async def traffic() -> list[str]:
                results = []
                for _ in range(200):
                    try:
                        results.append(await policy.acall(flaky))
                    except seawall.SeawallError as exc:
                        results.append(type(exc).__name__)
                    await asyncio.sleep(0.1)
                return results

            return sim.run(traffic), sim.now()

    first = rehearse()
    assert rehearse() == first
    assert "ok" in first[0]
    assert "TimeoutExceededError" in first[0]
