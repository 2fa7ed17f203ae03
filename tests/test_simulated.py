"""seawall.testing.simulated(): an outage rehearsed on virtual time, in little real time.

Policies built inside a simulation run on its clock; the loop's clock jumps to its next timer;
the same seed gives the same run, bit for bit.
"""

from __future__ import annotations

import asyncio
import random
import time
from typing import Any

import pytest

import seawall
from seawall.testing import Simulation, SimulationStalled, simulated
from tests.helpers import Boom


class Upstream:
    """A dependency that hangs from ``down_from`` to ``down_until`` (simulated seconds)."""

    def __init__(self, loop: asyncio.AbstractEventLoop, down_from: float, down_until: float):
        self.loop, self.down_from, self.down_until = loop, down_from, down_until
        self.attempts_while_down = 0

    async def call(self) -> str:
        now = self.loop.time()
        if self.down_from <= now < self.down_until:
            self.attempts_while_down += 1
            await asyncio.sleep(3600)  # hangs until cut
        await asyncio.sleep(0.01)
        return "ok"


RATE = 20  # calls a second
HANG = 10 * 60.0  # seconds the dependency hangs
SCENARIO = HANG + 120.0


def rehearse(seed: int = 0) -> tuple[object, ...]:
    """12 minutes: healthy 60 s, a 10-minute hang, healthy 60 s; 20 calls a second."""
    with simulated(seed=seed) as sim:
        policy = seawall.Policy(
            "payments",
            retry=seawall.Retry(on=seawall.TimeoutExceededError, attempts=2),
            breaker=True,
            attempt_timeout=1.0,
            total_timeout=3.0,
        )
        upstream = Upstream(sim.loop, 60.0, 60.0 + HANG)

        async def main() -> tuple[int, int, float | None]:
            ok = failed = 0
            first_failure_refused: float | None = None

            async def one() -> None:
                nonlocal ok, failed, first_failure_refused
                try:
                    await policy.acall(upstream.call)
                    ok += 1
                except seawall.CircuitOpenError:
                    failed += 1
                    if first_failure_refused is None:
                        first_failure_refused = sim.now()
                except seawall.TimeoutExceededError:
                    failed += 1

            tasks = []
            for _ in range(int(SCENARIO * RATE)):
                tasks.append(asyncio.ensure_future(one()))
                await asyncio.sleep(1 / RATE)
            await asyncio.gather(*tasks)
            return ok, failed, first_failure_refused

        ok, failed, refused_at = sim.run(main)
        return ok, failed, refused_at, upstream.attempts_while_down, sim.now()


def test_a_ten_minute_hang_runs_in_little_real_time_and_the_same_every_time() -> None:
    started = time.perf_counter()
    first = rehearse()
    elapsed = time.perf_counter() - started
    assert elapsed < 10.0  # generous: under a second here for 14,400 calls over 12 minutes
    assert rehearse() == first  # bit-identical
    ok, failed, refused_at, attempts_while_down, end = first
    assert ok + failed == SCENARIO * RATE
    assert refused_at is not None
    assert 60.0 < refused_at < 63.0
    # The breaker spares the hanging dependency: under 0.1 attempts per call during the hang.
    assert attempts_while_down < 0.1 * HANG * RATE
    assert end == pytest.approx(SCENARIO, abs=5.0)


def test_policies_built_inside_use_the_simulation_s_clock_and_outside_the_system_s() -> None:
    outside = seawall.Timeout(1.0)
    with simulated() as sim:
        inside = seawall.Timeout(1.0)
        assert inside.clock is sim.clock
        assert seawall.Policy("p", breaker=True).breaker.clock is sim.clock  # type: ignore[union-attr]
        given = seawall.testing.FakeClock()
        assert seawall.Timeout(1.0, clock=given).clock is given  # a clock given is kept
    assert outside.clock is seawall.SystemClock or outside.clock.__class__.__name__ == "SystemClock"
    assert seawall.Timeout(1.0).clock is not sim.clock


def test_timeouts_retry_waits_and_open_breakers_pass_in_simulated_time() -> None:
    with simulated() as sim:
        retry = seawall.Retry(on=Boom, attempts=4, wait=10.0)
        breaker = seawall.CircuitBreaker(
            consecutive_failures=1, consecutive_span=0.0, open_duration=30.0
        )
        calls: list[float] = []

        async def fails() -> None:
            calls.append(sim.now())
            raise Boom

        async def main() -> None:
            with pytest.raises(Boom):
                await retry.acall(fails)
            with pytest.raises(Boom):
                await breaker.acall(fails)
            with pytest.raises(seawall.CircuitOpenError):
                await breaker.acall(fails)
            await asyncio.sleep(30.0)
            with pytest.raises(Boom):
                await breaker.acall(fails)  # the probe, 30 s later
            with pytest.raises(seawall.TimeoutExceededError):
                await seawall.Timeout(5.0).acall(asyncio.sleep, 3600)

        started = time.perf_counter()
        sim.run(main)
        assert time.perf_counter() - started < 2.0
        assert calls == [0.0, 10.0, 20.0, 30.0, 30.0, 60.0]
        assert sim.now() == 65.0


def test_sync_waits_move_the_simulated_time_on() -> None:
    with simulated() as sim:
        retry = seawall.Retry(on=Boom, attempts=3, wait=5.0)

        def fails() -> None:
            raise Boom

        with pytest.raises(Boom):
            retry.call(fails)
        assert sim.now() == 10.0
        sim.advance(2.5)
        assert sim.now() == 12.5


def test_a_blocking_sleep_inside_the_running_loop_is_refused() -> None:
    with simulated() as sim:
        retry = seawall.Retry(on=Boom, attempts=2, wait=1.0)

        def fails() -> None:
            raise Boom

        async def main() -> None:
            retry.call(fails)  # a sync retry inside a coroutine would block the loop

        with pytest.raises(RuntimeError, match="would stop every task"):
            sim.run(main)


def test_the_simulation_s_clock_waits_only_on_its_own_loop() -> None:
    with simulated() as sim:
        clock = sim.clock

    async def elsewhere() -> None:
        await clock.asleep(1.0)

    with pytest.raises(RuntimeError, match="its own loop"):
        asyncio.run(elsewhere())


def test_a_simulation_with_nothing_to_wait_for_stops_with_an_error() -> None:
    async def forever() -> None:
        await asyncio.get_running_loop().create_future()

    with simulated() as sim, pytest.raises(SimulationStalled):
        sim.run(forever)


def test_the_seed_is_applied_and_random_given_back() -> None:
    random.seed(1234)
    expected_after = random.random()
    random.seed(1234)
    with simulated(seed=7):
        inside = random.random()
    assert random.random() == expected_after
    random.seed(7)
    assert inside == random.random()
    with simulated(seed=None):
        pass


@pytest.mark.parametrize(
    ("call", "error"),
    [
        (lambda sim: sim.advance(-1.0), ValueError),
        (lambda sim: sim.advance(float("inf")), ValueError),
        (lambda sim: sim.advance("1"), TypeError),
        (lambda sim: sim.run(42), TypeError),
    ],
)
def test_bad_inputs_are_refused(call: object, error: type[Exception]) -> None:
    with simulated() as sim, pytest.raises(error):
        call(sim)  # type: ignore[operator]
    with pytest.raises(TypeError, match="seed"), simulated(seed=1.5):  # type: ignore[arg-type]
        pass


def test_the_pytest_fixture(simulated: Simulation) -> None:
    timeout = seawall.Timeout(2.0)
    assert timeout.clock is simulated.clock

    async def main() -> float:
        with pytest.raises(seawall.TimeoutExceededError):
            await timeout.acall(asyncio.sleep, 10)
        return simulated.now()

    assert simulated.run(main) == 2.0


def test_the_readme_s_rehearsal_runs_as_written() -> None:
    import re
    from pathlib import Path

    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", readme, re.DOTALL)
    [block] = [b for b in blocks if "def test_payments_hangs_for_ten_minutes" in b]
    namespace: dict[str, object] = {}
    exec(compile(block, "README.md", "exec"), namespace)
    started = time.perf_counter()
    with simulated() as sim:
        namespace["test_payments_hangs_for_ten_minutes"](sim)  # type: ignore[operator]
        assert sim.now() >= 719  # 12 simulated minutes
    assert time.perf_counter() - started < 10.0  # generous: well under a second here


def test_a_thirty_minute_outage_replays_in_well_under_a_second_the_same_every_run() -> None:
    from seawall import chaos
    from seawall.testing import load, watch

    def rehearse() -> tuple[float, Any]:
        with simulated(seed=3) as sim:
            schedule = chaos.Schedule(
                chaos.Phase("healthy", 60, chaos.Latency(0.01, up_to=0.1)),
                chaos.Phase("hang", 30 * 60, chaos.Hang()),
                chaos.Phase("recovered", 60, chaos.Latency(0.01, up_to=0.1)),
            )
            policy = seawall.Policy(
                "thirty",
                retry=seawall.Retry(on=seawall.TimeoutExceededError, attempts=2),
                breaker=True,
                attempt_timeout=1.0,
                chaos=chaos.inject(schedule, enabled=True),
            )

            async def charge() -> str:
                return "ok"

            started = time.perf_counter()
            with watch(policy) as seen:
                sim.run(load(lambda: policy.acall(charge), rate=5, seconds=32 * 60))
            elapsed = time.perf_counter() - started
            return elapsed, (seen.calls, seen.changes, policy.chaos.snapshot(), seen.phase("hang"))  # type: ignore[union-attr]

    elapsed, first = rehearse()
    again, second = rehearse()
    assert second == first  # bit-identical: every call's times and outcome, every transition
    hang = first[3]
    assert hang.calls == 30 * 60 * 5
    assert hang.detected is not None
    assert hang.detected <= 2.0
    assert hang.recovered is not None
    assert hang.recovered <= 2.0
    # 9,600 calls over 32 simulated minutes: about 0.25 s here; generous for slower machines.
    assert min(elapsed, again) < 3.0
