"""seawall.chaos for functions: the faults, schedules, the switch, and inject() in a Policy.

(The httpx transports: tests/test_chaos_transport.py.)
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading
from typing import Any

import pytest

import seawall
from seawall import chaos
from seawall.testing import FakeClock, Simulation


def armed(*faults: Any, **kwargs: Any) -> chaos.Injector:
    kwargs.setdefault("clock", FakeClock())
    return chaos.inject(*faults, enabled=True, **kwargs)


def ok() -> str:
    return "ok"


# -- off unless enabled -------------------------------------------------------------------------


def test_nothing_is_injected_unless_enabled(run: Any) -> None:
    injector = chaos.inject(chaos.ConnectError(), clock=FakeClock())  # left to the switch: off
    assert not chaos.is_enabled()
    assert injector.enabled is None
    assert not injector.armed
    assert [run(injector, ok) for _ in range(5)] == ["ok"] * 5
    assert injector.snapshot().injections == {"connect_error": 0}
    assert injector.snapshot().calls == {"chaos": 0}  # disarmed: not even counted


def test_enable_arms_the_injectors_left_to_it_and_gives_the_switch_back(run: Any) -> None:
    left = chaos.inject(chaos.ConnectError(), clock=FakeClock())
    never = chaos.inject(chaos.ConnectError(), enabled=False, clock=FakeClock())
    with chaos.enable():
        assert chaos.is_enabled()
        assert left.armed
        assert not never.armed
        with pytest.raises(ConnectionRefusedError):
            run(left, ok)
        assert run(never, ok) == "ok"
        later = chaos.inject(chaos.Reset(), clock=FakeClock())  # built while on: armed
        assert later.armed
        with chaos.disable():
            assert not left.armed
            assert not later.armed
            assert run(left, ok) == "ok"
        assert left.armed
    assert not chaos.is_enabled()
    assert not left.armed
    assert not later.armed
    assert left.snapshot().injections == {"connect_error": 1}


def test_the_environment_turns_the_switch_on_at_start() -> None:
    code = (
        "from seawall import chaos\n"
        "i = chaos.inject(chaos.ConnectError())\n"
        "print(chaos.is_enabled(), i.armed)\n"
    )
    for value, expected in (("1", "True True"), ("", "False False"), ("no", "False False")):
        env = {**os.environ, "SEAWALL_CHAOS": value}
        out = subprocess.run(
            [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
        )
        assert out.stdout.strip() == expected


# -- each fault, sync and async -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("fault", "error", "message"),
    [
        (chaos.ConnectError(after=0.5), ConnectionRefusedError, "Connection refused"),
        (chaos.Reset(after=0.5), ConnectionResetError, "Connection reset by peer"),
        (chaos.ReadTimeout(after=0.5), TimeoutError, "timed out"),
        (chaos.Error(KeyError, after=0.5), KeyError, "injected by seawall chaos"),
    ],
)
def test_an_error_fault_raises_after_its_wait(
    run: Any, fault: chaos.Fault, error: type[BaseException], message: str
) -> None:
    clock = FakeClock()
    injector = armed(fault, clock=clock)
    called = []
    with pytest.raises(error, match=message):
        run(injector, lambda: called.append(1))
    assert called == []  # the dependency never saw it
    assert clock.sleeps == [0.5]
    assert injector.snapshot().injections == {fault.kind: 1}


def test_an_error_instance_is_raised_as_a_fresh_copy_and_a_factory_is_called(run: Any) -> None:
    given = ValueError("payments said no")
    injector = armed(chaos.Error(given))
    raised = []
    for _ in range(2):
        with pytest.raises(ValueError, match="payments said no") as caught:
            run(injector, ok)
        raised.append(caught.value)
    assert raised[0] is not given
    assert raised[1] is not raised[0]
    made = armed(chaos.Error(lambda: OSError(5, "made")))
    with pytest.raises(OSError, match="made"):
        run(made, ok)
    wrong = armed(chaos.Error(lambda: "not an exception"))  # type: ignore[arg-type,return-value]
    with pytest.raises(TypeError, match="error must make an exception, it made a str"):
        run(wrong, ok)


def test_latency_waits_then_calls_and_a_range_is_drawn_within_it(run: Any) -> None:
    clock = FakeClock()
    injector = armed(chaos.Latency(0.2), clock=clock)
    assert run(injector, ok) == "ok"
    assert clock.sleeps == [0.2]
    ranged_clock = FakeClock()
    ranged = armed(chaos.Latency(0.2, up_to=0.45), clock=ranged_clock, seed=3)
    for _ in range(50):
        assert run(ranged, ok) == "ok"
    assert len(ranged_clock.sleeps) == 50
    assert all(0.2 <= s <= 0.45 for s in ranged_clock.sleeps)
    assert len(set(ranged_clock.sleeps)) > 40
    assert ranged.snapshot().injections == {"latency": 50}


def test_a_result_fault_answers_without_calling(run: Any) -> None:
    injector = armed(chaos.Result({"balance": 0}))
    called = []
    assert run(injector, lambda: called.append(1)) == {"balance": 0}
    assert called == []


def test_latency_and_an_ending_fault_add_up_in_one_call(run: Any) -> None:
    clock = FakeClock()
    injector = armed(chaos.Latency(1.0), chaos.ConnectError(after=0.25), clock=clock)
    with pytest.raises(ConnectionRefusedError):
        run(injector, ok)
    assert clock.sleeps == [1.0, 0.25]
    assert injector.snapshot().injections == {"latency": 1, "connect_error": 1}


def test_an_async_hang_lasts_until_the_callers_timeout(simulated: Simulation) -> None:
    injector = chaos.inject(chaos.Hang(), enabled=True)
    policy = seawall.Policy("hang", attempt_timeout=1.5, chaos=injector)

    async def main() -> None:
        with pytest.raises(seawall.TimeoutExceededError):
            await policy.acall(asyncio.sleep, 0, "never")
        assert simulated.now() == 1.5

    simulated.run(main)
    assert injector.snapshot().injections == {"hang": 1}


def test_a_sync_hang_lasts_until_its_deadline_and_fails_as_the_timeout_does() -> None:
    clock = FakeClock()
    policy = seawall.Policy(
        "hang-sync",
        attempt_timeout=2.0,
        chaos=chaos.inject(chaos.Hang(), enabled=True),
        clock=clock,
    )
    with pytest.raises(seawall.TimeoutExceededError, match="hang-sync"):
        policy.call(ok)
    assert clock.sleeps == [2.0]
    assert policy.attempt_timeout is not None
    assert policy.attempt_timeout.snapshot().timeout == 1


def test_a_sync_hang_without_a_deadline_is_refused_rather_than_blocking_forever() -> None:
    injector = armed(chaos.Hang())
    with pytest.raises(RuntimeError, match="put a seawall Timeout around the call"):
        injector.call(ok)


# -- rates, seeds, schedules --------------------------------------------------------------------


def test_a_rate_hits_that_share_of_calls_the_same_way_for_the_same_seed(run: Any) -> None:
    def outcomes(seed: int) -> list[str]:
        injector = armed(chaos.ConnectError(rate=0.3), seed=seed)
        out = []
        for _ in range(1000):
            try:
                out.append(run(injector, ok))
            except ConnectionRefusedError:
                out.append("refused")
        assert injector.snapshot().injections == {"connect_error": out.count("refused")}
        return out

    first = outcomes(7)
    assert 250 <= first.count("refused") <= 350
    assert outcomes(7) == first
    assert outcomes(8) != first


def test_without_a_seed_draws_follow_random_which_a_simulation_seeds() -> None:
    def draws() -> list[float]:
        with seawall.testing.simulated(seed=5):
            clock = FakeClock()
            injector = chaos.inject(chaos.Latency(0, up_to=1), enabled=True, clock=clock)
            for _ in range(10):
                injector.call(ok)
            return clock.sleeps

    assert draws() == draws()


def test_a_schedule_moves_through_its_phases_on_the_injectors_clock(run: Any) -> None:
    clock = FakeClock(100.0)  # the schedule starts when the injector is built
    schedule = chaos.Schedule(
        chaos.Phase("healthy", 10),
        chaos.Phase("outage", 20, chaos.ConnectError()),
        chaos.Phase("flaky", 30, chaos.Error(KeyError, rate=0.5)),
        chaos.Phase("recovered", None),
    )
    injector = armed(schedule, clock=clock, seed=1)
    seen: dict[str, list[str]] = {}
    for _ in range(80):
        phase = injector.phase().name
        try:
            outcome = run(injector, ok)
        except Exception as exc:
            outcome = type(exc).__name__
        seen.setdefault(phase, []).append(outcome)
        clock.advance(1.0)
    assert set(seen["healthy"]) == {"ok"}
    assert len(seen["healthy"]) == 10
    assert set(seen["outage"]) == {"ConnectionRefusedError"}
    assert len(seen["outage"]) == 20
    assert set(seen["flaky"]) == {"ok", "KeyError"}
    assert set(seen["recovered"]) == {"ok"}
    snapshot = injector.snapshot()
    assert snapshot.calls == {"healthy": 10, "outage": 20, "flaky": 30, "recovered": 20}
    assert snapshot.injections == {
        "connect_error": 20,
        "error": seen["flaky"].count("KeyError"),
    }
    injector.restart()
    assert injector.phase().name == "healthy"
    assert injector.elapsed() == 0.0


def test_schedule_arithmetic() -> None:
    schedule = chaos.Schedule(
        chaos.Phase("down", 10, chaos.ConnectError()),
        chaos.Phase("up", 5),
        chaos.Phase("down", 10, chaos.ConnectError()),
        chaos.Phase("up", 5),
        repeat=True,
    )
    assert schedule.duration == 30
    assert schedule.bounds("down") == [(0.0, 10.0), (15.0, 25.0)]
    assert [schedule.phase_at(t).name for t in (-1, 0, 9.99, 10, 14.9, 15, 29.9, 30, 41)] == [
        "down",
        "down",
        "down",
        "up",
        "up",
        "down",
        "up",
        "down",
        "up",
    ]
    once = chaos.Schedule(chaos.Phase("a", 1), chaos.Phase("b", 1))
    assert once.phase_at(100).name == "b"  # past the end, the last phase stays
    with pytest.raises(KeyError, match="no phase is called 'c'"):
        once.bounds("c")
    assert schedule == chaos.Schedule(*schedule.phases, repeat=True)
    assert len({schedule, chaos.Schedule(*schedule.phases, repeat=True)}) == 1
    assert "Phase('down', 10, ConnectError(" in repr(schedule)


# -- in a Policy -------------------------------------------------------------------------------


def test_in_a_policy_every_part_sees_the_faults(run: Any) -> None:
    clock = FakeClock()
    policy = seawall.Policy(
        "payments",
        retry=seawall.Retry(on=ConnectionError, attempts=3, wait=0),
        breaker=seawall.CircuitBreaker(consecutive_failures=5, consecutive_span=0),
        chaos=chaos.inject(chaos.ConnectError(), enabled=True),
        clock=clock,
    )
    assert "chaos=Injector(" in repr(policy)
    with pytest.raises(ConnectionRefusedError):
        run(policy, ok)  # 3 attempts, each refused
    with pytest.raises(ConnectionRefusedError):
        run(policy, ok)  # 2 more: the fifth in a row opens the breaker
    with pytest.raises(seawall.CircuitOpenError):
        run(policy, ok)
    assert policy.retry is not None
    assert policy.breaker is not None
    assert policy.chaos is not None
    assert policy.breaker.state is seawall.CircuitState.OPEN
    assert policy.chaos.snapshot().injections == {"connect_error": 5}
    assert policy.chaos.snapshot().calls == {"chaos": 5}
    assert policy.chaos.clock is clock  # on the policy's clock, as every part built without one


def test_a_disarmed_injector_leaves_the_fast_path_and_its_counts_alone(run: Any) -> None:
    clock = FakeClock()
    injector = chaos.inject(chaos.ConnectError())
    policy = seawall.Policy(
        "quiet", retry=seawall.Retry(on=ConnectionError), breaker=True, chaos=injector, clock=clock
    )
    assert policy._sync_shell is not policy._raw_call.__func__  # type: ignore[attr-defined]
    assert [run(policy, ok) for _ in range(3)] == ["ok"] * 3
    with chaos.enable(), pytest.raises(ConnectionRefusedError):
        run(policy, ok)
    assert run(policy, ok) == "ok"
    assert injector.snapshot().injections == {"connect_error": 3}  # one call, 3 attempts


def test_in_a_pipeline_it_goes_last(run: Any) -> None:
    clock = FakeClock()
    fallback = seawall.Fallback("cached", on=ConnectionError)
    pipeline = seawall.Pipeline(
        fallback, chaos.inject(chaos.ConnectError(), enabled=True), name="pipe", clock=clock
    )
    assert run(pipeline, ok) == "cached"


def test_bad_arguments_are_refused_naming_the_parameter() -> None:
    with pytest.raises(ValueError, match=r"rate must be in \[0, 1\], got 1.5"):
        chaos.ConnectError(rate=1.5)
    with pytest.raises(TypeError, match="rate must be a number"):
        chaos.Hang(rate="often")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="after must be in"):
        chaos.Reset(after=-1)
    with pytest.raises(ValueError, match="up_to must be in"):
        chaos.Latency(1.0, up_to=0.5)
    with pytest.raises(ValueError, match="seconds must be in"):
        chaos.Latency(float("inf"))
    with pytest.raises(TypeError, match="host must be a non-empty str"):
        chaos.ConnectError(host="")
    with pytest.raises(TypeError, match="error must be an exception"):
        chaos.Error(42)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"code must be an HTTP status in \[100, 599\]"):
        chaos.Status(999)
    with pytest.raises(TypeError, match="retry_after must be whole seconds"):
        chaos.Status(503, retry_after=1.5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="chunks must be in"):
        chaos.SlowBody(1.0, chunks=0)
    with pytest.raises(TypeError, match="faults: Status applies to httpx transports only"):
        chaos.inject(chaos.Status(503))
    with pytest.raises(ValueError, match="faults: ConnectError names a host"):
        chaos.inject(chaos.ConnectError(host="payments.internal"))
    with pytest.raises(ValueError, match="faults: give the faults to inject"):
        chaos.inject()
    with pytest.raises(TypeError, match="faults: give either one Schedule or faults"):
        chaos.inject(chaos.Schedule(chaos.Phase("a", None)), chaos.Hang())
    with pytest.raises(TypeError, match=r"faults must be seawall\.chaos faults"):
        chaos.inject("boom")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="enabled must be True, False or None"):
        chaos.inject(chaos.Hang(), enabled=1)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="seed must be an int or None"):
        chaos.inject(chaos.Hang(), seed=1.5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="only the last phase may last forever"):
        chaos.Schedule(chaos.Phase("a", None), chaos.Phase("b", 1))
    with pytest.raises(ValueError, match="phases: a Schedule needs at least one phase"):
        chaos.Schedule()
    with pytest.raises(ValueError, match="repeat: a schedule whose last phase lasts forever"):
        chaos.Schedule(chaos.Phase("a", None), repeat=True)
    with pytest.raises(ValueError, match="seconds must be in"):
        chaos.Phase("a", 0)
    with pytest.raises(TypeError, match=r"faults must be seawall\.chaos faults"):
        chaos.Phase("a", 1, "down")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"chaos must be an Injector \(seawall.chaos.inject\)"):
        seawall.Policy("p", chaos=True)  # type: ignore[arg-type]


# -- many callers at once -----------------------------------------------------------------------


def test_one_armed_injector_under_threads_and_tasks_counts_every_call_exactly() -> None:
    injector = armed(chaos.ConnectError(rate=0.5), clock=FakeClock(), seed=11)
    refused = [0]
    lock = threading.Lock()
    threads_n, per_thread, tasks_n = 8, 2_000, 200

    def worker() -> None:
        mine = 0
        for _ in range(per_thread):
            try:
                injector.call(ok)
            except ConnectionRefusedError:
                mine += 1
        with lock:
            refused[0] += mine

    async def task() -> None:
        for _ in range(10):
            try:
                await injector.acall(asyncio.sleep, 0, "ok")
            except ConnectionRefusedError:
                with lock:
                    refused[0] += 1

    async def tasks() -> None:
        await asyncio.gather(*(task() for _ in range(tasks_n)))

    threads = [threading.Thread(target=worker) for _ in range(threads_n)]
    for thread in threads:
        thread.start()
    asyncio.run(tasks())
    for thread in threads:
        thread.join()
    total = threads_n * per_thread + tasks_n * 10
    snapshot = injector.snapshot()
    assert snapshot.calls == {"chaos": total}
    assert snapshot.injections == {"connect_error": refused[0]}
    assert 0.45 * total <= refused[0] <= 0.55 * total


# -- the README ---------------------------------------------------------------------------------


def readme_section(title: str) -> str:
    from pathlib import Path

    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    return readme.split(f"\n### {title}\n", 1)[1].split("\n## ", 1)[0].split("\n### ", 1)[0]


def test_the_readme_s_fault_table_is_the_vocabulary() -> None:
    import re

    section = readme_section("Faults")
    rows = re.findall(r"^\| `(\w+)\(", section, re.MULTILINE)
    faults = [
        name
        for name in chaos.__all__
        if isinstance(getattr(chaos, name), type)
        and issubclass(getattr(chaos, name), chaos.Fault)
        and name != "Fault"
    ]
    assert sorted(rows) == sorted(faults)
    for name in faults:
        kind: type[chaos.Fault] = getattr(chaos, name)
        row = next(line for line in section.splitlines() if line.startswith(f"| `{name}("))
        _, function, request = (cell.strip() for cell in row.strip("|").split("|"))
        assert bool(function) == ("function" in kind.shapes), name
        assert bool(request) == ("http" in kind.shapes), name


def test_the_readme_s_transport_recipe_builds_what_it_says() -> None:
    import re

    blocks = re.findall(r"```python\n(.*?)```", readme_section("Faults"), re.DOTALL)
    [block] = [b for b in blocks if "AsyncChaosTransport" in b]
    namespace: dict[str, Any] = {}
    exec(compile(block, "README.md", "exec"), namespace)
    client = namespace["client"]
    resilient = client._transport
    assert isinstance(resilient, seawall.httpx.AsyncResilientTransport)
    injector = resilient.transport.injector
    assert injector.armed
    assert [phase.name for phase in injector.schedule] == [
        "healthy",
        "outage",
        "slow",
        "flaky",
        "recovered",
    ]
    asyncio.run(client.aclose())


# -- found by review --------------------------------------------------------------------------


def test_the_schedule_starts_when_the_switch_arms_the_injector(run: Any) -> None:
    clock = FakeClock()
    injector = chaos.inject(
        chaos.Schedule(chaos.Phase("outage", 60, chaos.ConnectError()), chaos.Phase("ok", None)),
        clock=clock,
    )
    clock.advance(3600)  # an hour in the service, off
    with chaos.enable():
        assert injector.phase().name == "outage"  # the game day starts at its first phase
        assert injector.elapsed() == 0.0
        with pytest.raises(ConnectionRefusedError):
            run(injector, ok)
        clock.advance(60)
        assert run(injector, ok) == "ok"


def test_forked_workers_draw_their_own_faults_unless_seeded() -> None:
    import multiprocessing

    if "fork" not in multiprocessing.get_all_start_methods():
        pytest.skip("no fork here")
    code = (
        "import os, sys\n"
        "from seawall import chaos\n"
        "from seawall.testing import FakeClock\n"
        "seed = None if sys.argv[1] == 'none' else 5\n"
        "i = chaos.inject(chaos.Error(KeyError, rate=0.5), enabled=True, seed=seed, "
        "clock=FakeClock())\n"
        "def draws():\n"
        "    out = ''\n"
        "    for _ in range(40):\n"
        "        try: i.call(lambda: 1); out += '.'\n"
        "        except KeyError: out += 'x'\n"
        "    return out\n"
        "for _ in range(2):\n"
        "    r, w = os.pipe()\n"
        "    if os.fork() == 0:\n"
        "        os.write(w, draws().encode()); os._exit(0)\n"
        "    os.close(w); os.wait(); print(os.read(r, 100).decode())\n"
    )
    for seed, same in (("none", False), ("5", True)):
        out = subprocess.run(
            [sys.executable, "-c", code, seed], capture_output=True, text=True, check=True
        ).stdout.split()
        assert len(out) == 2
        assert (out[0] == out[1]) is same, (seed, out)


def test_a_sync_latency_past_the_deadline_ends_at_it_as_the_timeout_does() -> None:
    clock = FakeClock()
    ran = []
    policy = seawall.Policy(
        "late",
        attempt_timeout=1.0,
        chaos=chaos.inject(chaos.Latency(5.0), enabled=True),
        clock=clock,
    )
    with pytest.raises(seawall.TimeoutExceededError):
        policy.call(lambda: ran.append(1))
    assert ran == []  # the dependency was not called past its deadline
    assert clock.sleeps == [1.0]
    error_policy = seawall.Policy(
        "late-error",
        attempt_timeout=1.0,
        chaos=chaos.inject(chaos.Reset(after=3.0), enabled=True),
        clock=clock,
    )
    with pytest.raises(seawall.TimeoutExceededError):
        error_policy.call(ok)
    assert clock.sleeps == [1.0, 1.0]


def test_a_sync_hang_without_a_deadline_is_refused_before_it_is_counted() -> None:
    injector = armed(chaos.Hang())
    retry = seawall.Retry(on=Exception, attempts=3, wait=0, clock=FakeClock())
    with pytest.raises(RuntimeError, match="put a seawall Timeout around the call"):
        seawall.Pipeline(retry, injector, name="no-deadline").call(ok)
    assert injector.snapshot().injections == {"hang": 0}


def test_fault_arguments_that_could_never_match_or_work_are_refused() -> None:
    with pytest.raises(ValueError, match="host is matched against the request's host alone"):
        chaos.Status(500, host="api.test:8080")
    assert chaos.Status(500, host="API.Example.com").host == "api.example.com"
    assert chaos.Hang(host="::1").host == "::1"  # an IPv6 address is a host
    with pytest.raises(ValueError, match="method must be an HTTP method"):
        chaos.Hang(method=" get")
    with pytest.raises(ValueError, match="path must start with '/'"):
        chaos.Hang(path="v1/*")
    with pytest.raises(ValueError, match="retry_after must be an HTTP date"):
        chaos.Status(503, retry_after="1\r\nX-Evil: 1")
    with pytest.raises(ValueError, match="retry_after must be an HTTP date"):
        chaos.Status(503, retry_after="soon")
    assert chaos.Status(503, retry_after="Wed, 21 Oct 2015 07:28:00 GMT").retry_after

    class Detailed(Exception):
        def __init__(self, message: str, *, detail: str) -> None:
            super().__init__(message)

    with pytest.raises(TypeError, match="error: a Detailed cannot be copied for each call"):
        chaos.Error(Detailed("no", detail="d"))
    with pytest.raises(TypeError, match="faults: Fault is no fault of its own"):
        chaos.inject(chaos.Fault())


def test_faults_are_values() -> None:
    assert chaos.ConnectError(after=0.5) == chaos.ConnectError(after=0.5)
    assert chaos.ConnectError(after=0.5) != chaos.Reset(after=0.5)
    assert len({chaos.Hang(), chaos.Hang(), chaos.Hang(rate=0.5)}) == 2
    assert repr(chaos.Latency(0.2, up_to=0.4, rate=0.5, host="a.test")) == (
        "Latency(seconds=0.2, up_to=0.4, rate=0.5, host='a.test')"
    )
    with pytest.raises(AttributeError, match="fixed once made"):
        chaos.Hang().rate = 0.5  # type: ignore[misc]
