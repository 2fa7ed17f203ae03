"""Breakers shared on Redis (seawall.redis), against a real redis-server on 127.0.0.1.

Each ``RedisState`` stands for a process: it has its own connection pool and syncer thread,
so two of them in one test behave as two workers do (tests/test_redis_fleet.py runs real
processes). Time here is real: the point is real concurrency with a real server, and every
wait has a generous bound. Where a test needs exchanges at chosen moments, its states sync
rarely on their own (``interval=60``) and the test calls ``sync_now()``.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
import redis
import respx

from seawall import CircuitBreaker, CircuitOpenError, CircuitState, Policy
from seawall._clock import SystemClock
from seawall.httpx import ResilientTransport
from seawall.redis import RedisState, SharedStatus
from tests.helpers import (
    RedisServer,
    free_port,
    needs_redis,
    redis_server_fixture,
    redis_states_fixture,
)

pytestmark = needs_redis


server = redis_server_fixture()
states = redis_states_fixture()


def wait_for(condition: Callable[[], bool], within: float = 5.0) -> float:
    """Seconds until ``condition()`` held (polled every 2 ms); fails after ``within``."""
    start = time.monotonic()
    while not condition():
        if time.monotonic() - start > within:
            raise AssertionError(f"not within {within} s")
        time.sleep(0.002)
    return time.monotonic() - start


def fail() -> None:
    raise RuntimeError("down")


def trip(breaker: CircuitBreaker, times: int = 5) -> None:
    for _ in range(times):
        with pytest.raises((RuntimeError, CircuitOpenError)):
            breaker.call(fail)


def quick(name: str, state: RedisState, **kwargs: object) -> CircuitBreaker:
    """A shared breaker that trips on 5 failures in a row at once (no span to wait)."""
    kwargs.setdefault("consecutive_span", 0.0)
    return CircuitBreaker(name=name, shared=state, **kwargs)  # type: ignore[arg-type]


# -- bad inputs ----------------------------------------------------------------------------


def test_bad_arguments_are_refused_naming_the_parameter(server: RedisServer) -> None:
    with pytest.raises(ValueError, match="url_or_client"):
        RedisState("http://127.0.0.1:6379")
    with pytest.raises(TypeError, match="url_or_client"):
        RedisState(6379)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="url_or_client"):
        RedisState(redis.asyncio.Redis())  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="prefix"):
        RedisState(server.url, prefix="")
    with pytest.raises(ValueError, match="interval"):
        RedisState(server.url, interval=0)
    with pytest.raises(ValueError, match="timeout"):
        RedisState(server.url, timeout=-1)
    with pytest.raises(ValueError, match="ttl"):
        RedisState(server.url, ttl=0)
    with pytest.raises(TypeError, match="shared"):
        CircuitBreaker(shared=server.url)  # type: ignore[arg-type]


def test_a_shared_breaker_needs_a_window_of_time(
    states: Callable[..., RedisState],
) -> None:
    with pytest.raises(ValueError, match=r"shared.*window_calls"):
        CircuitBreaker(window_calls=10, shared=states())
    with pytest.raises(TypeError, match="name"):
        states().status("")


def test_a_client_of_ones_own_is_used(server: RedisServer) -> None:
    client = redis.Redis(host="127.0.0.1", port=server.port, socket_timeout=0.5)
    state = RedisState(client, prefix=f"own{time.monotonic_ns()}", interval=60)
    try:
        breaker = quick("own", state)
        trip(breaker)
        state.sync_now()
        assert state.status("own").state == "open"
        assert "127.0.0.1" in repr(state)
    finally:
        state.close()


# -- one state for every process -------------------------------------------------------------


def test_a_trip_in_one_process_reaches_the_others_within_a_sync_interval(
    states: Callable[..., RedisState],
) -> None:
    one, other = quick("pay", states()), quick("pay", states())
    seen = []
    for _ in range(5):
        trip(one)
        seen.append(wait_for(lambda: other.state is CircuitState.OPEN))
        assert one.state is CircuitState.OPEN
        one.reset()  # a switch: every process closes
        wait_for(lambda: other.state is CircuitState.CLOSED)
    # The syncer runs every 0.1 s; a trip is sent at once. Bounds for a loaded machine.
    assert sorted(seen)[2] < 0.25, seen
    assert max(seen) < 1.0, seen


def test_the_merged_window_trips_where_no_process_alone_would(
    states: Callable[..., RedisState],
) -> None:
    one_state, other_state = states(interval=60), states(interval=60)
    settings = {"consecutive_failures": None, "minimum_calls": 20, "failure_ratio": 0.5}
    one = CircuitBreaker(name="merged", shared=one_state, **settings)  # type: ignore[arg-type]
    other = CircuitBreaker(name="merged", shared=other_state, **settings)  # type: ignore[arg-type]
    time.sleep(0.3)  # their syncers' first exchanges (a new breaker's) are over
    for breaker in (one, other):  # 10 calls, 6 failures each: below minimum_calls alone
        for _ in range(4):
            breaker.call(lambda: None)
        for _ in range(6):
            with pytest.raises(RuntimeError):
                breaker.call(fail)
        assert breaker.state is CircuitState.CLOSED
    one_state.sync_now()
    status = one_state.status("merged")
    assert (status.state, status.window_calls, status.window_failures) == ("closed", 10, 6)
    other_state.sync_now()  # 20 calls, 12 failures: 0.6 >= 0.5
    assert other.state is CircuitState.OPEN
    one_state.sync_now()
    assert one.state is CircuitState.OPEN
    assert one_state.status("merged").state == "open"


def test_successes_never_trip_the_merged_window(states: Callable[..., RedisState]) -> None:
    state = states(interval=60)
    breaker = CircuitBreaker(name="ok", shared=state, minimum_calls=2)
    time.sleep(0.3)  # its syncer's first exchange is over
    for _ in range(50):
        breaker.call(lambda: None)
    state.sync_now()
    status = state.status("ok")
    assert (status.state, status.window_calls, status.window_failures) == ("closed", 50, 0)


def test_open_half_open_and_closed_together(states: Callable[..., RedisState]) -> None:
    one, other = (quick("cycle", states(), open_duration=0.3) for _ in range(2))
    trip(one)
    wait_for(lambda: other.state is CircuitState.OPEN)
    with pytest.raises(CircuitOpenError) as refused:
        other.call(lambda: None)
    assert 0.0 < refused.value.retry_after <= 0.3
    # After the open duration, one probe (from either) closes it for both.
    wait_for(lambda: other.state is CircuitState.HALF_OPEN)
    assert other.call(lambda: "probe") == "probe"
    assert other.state is CircuitState.CLOSED
    wait_for(lambda: one.state is CircuitState.CLOSED)
    snap = one.snapshot()
    assert snap.shared_up is True
    assert snap.shared_errors == 0


def test_a_failed_probe_opens_every_process_again(states: Callable[..., RedisState]) -> None:
    one, other = (quick("reopen", states(), open_duration=0.3) for _ in range(2))
    trip(one)
    wait_for(lambda: other.state is CircuitState.HALF_OPEN)
    with pytest.raises(RuntimeError):
        other.call(fail)
    assert other.state is CircuitState.OPEN
    wait_for(lambda: one.state is CircuitState.OPEN)
    status = states().status("reopen")
    # The open duration doubled (0.6 s, up to 20% longer), capped by max_open_duration=0.3?
    # No cap was given: max_open_duration defaults to open_duration, so it stays 0.3 s + jitter.
    assert status.state in ("open", "half_open")
    assert 0.3 <= status.open_duration <= 0.36 + 0.001


def test_exactly_half_open_calls_probes_across_processes_and_threads(
    states: Callable[..., RedisState],
) -> None:
    # 32 threads spin on 2 CPUs here: a generous timeout keeps the test about exactness, not
    # about a Redis too slow to answer (then each process decides alone, as documented).
    processes = [
        quick("probes", states(timeout=2.0), open_duration=0.2, half_open_calls=2) for _ in range(4)
    ]
    trip(processes[0])
    for breaker in processes:
        wait_for(lambda breaker=breaker: breaker.state is CircuitState.OPEN)  # type: ignore[misc]
    admitted, refused = [], []
    lock, release = threading.Lock(), threading.Event()

    def probe() -> str:
        with lock:
            admitted.append(threading.get_ident())
        release.wait(10)
        return "ok"

    def caller(breaker: CircuitBreaker) -> None:
        deadline = time.monotonic() + 1.5
        while time.monotonic() < deadline and not release.is_set():
            try:
                breaker.call(probe)
                return
            except CircuitOpenError:
                with lock:
                    refused.append(1)
            time.sleep(0.005)

    threads = [
        threading.Thread(target=caller, args=(breaker,)) for breaker in processes for _ in range(8)
    ]
    for thread in threads:
        thread.start()
    time.sleep(1.0)  # long past the open duration: every caller has tried many times
    assert len(admitted) == 2
    release.set()
    for thread in threads:
        thread.join(10)
    assert len(admitted) == 2
    assert refused
    for breaker in processes:
        wait_for(lambda breaker=breaker: breaker.state is CircuitState.CLOSED)  # type: ignore[misc]


def test_a_probe_whose_process_died_gives_its_slot_back_at_the_probe_timeout(
    states: Callable[..., RedisState],
) -> None:
    dead = states()
    breaker = quick("lease", states(), open_duration=0.1, half_open_timeout=0.5)
    trip(breaker)
    wait_for(lambda: dead.status("lease").state == "half_open", within=2.0)
    # A process took the one probe's lease and was killed: it never reports back.
    lease = dead._lease("lease", breaker._link.settings, "killed-1", 0.0)  # type: ignore[union-attr]
    assert lease.granted
    granted_at = time.monotonic()
    admitted_after = wait_for(lambda: _admitted(breaker), within=3.0)
    waited = time.monotonic() - granted_at
    assert 0.5 <= waited < 1.5, (waited, admitted_after)
    assert breaker.state is CircuitState.CLOSED


def _admitted(breaker: CircuitBreaker) -> bool:
    try:
        breaker.call(lambda: None)
    except CircuitOpenError:
        return False
    return True


# -- switches ----------------------------------------------------------------------------------


def test_an_operators_switches_reach_every_process(states: Callable[..., RedisState]) -> None:
    operator = states()
    workers = [quick("switch", states()) for _ in range(3)]
    workers[0].call(lambda: None)
    states_of = lambda: {breaker.state for breaker in workers}  # noqa: E731

    status = operator.isolate("switch")
    assert isinstance(status, SharedStatus)
    assert status.state == "forced_open"
    wait_for(lambda: states_of() == {CircuitState.FORCED_OPEN})
    with pytest.raises(CircuitOpenError) as refused:
        workers[1].call(lambda: None)
    assert refused.value.retry_after == float("inf")

    assert operator.disable("switch").state == "disabled"
    wait_for(lambda: states_of() == {CircuitState.DISABLED})
    trip(workers[2], times=10)  # disabled: nothing trips
    assert workers[2].state is CircuitState.DISABLED

    assert operator.reset("switch").state == "closed"
    wait_for(lambda: states_of() == {CircuitState.CLOSED})
    assert operator.status("switch").state == "closed"
    assert "switch" in operator.names()


def test_a_breakers_own_switch_is_the_fleets(states: Callable[..., RedisState]) -> None:
    one, other = quick("own-switch", states()), quick("own-switch", states())
    one.isolate()
    wait_for(lambda: other.state is CircuitState.FORCED_OPEN)
    one.reset()
    wait_for(lambda: other.state is CircuitState.CLOSED)


def test_status_of_a_breaker_no_process_has_used(states: Callable[..., RedisState]) -> None:
    status = states().status("nobody")
    assert (status.state, status.window_calls, status.probes_in_flight) == ("closed", 0, 0)


# -- clocks --------------------------------------------------------------------------------


class OffsetClock(SystemClock):
    """The system clock, ``offset`` seconds off: a process whose clock disagrees."""

    __slots__ = ()

    def __init__(self, offset: float) -> None:
        super().__init__()
        self.monotonic = lambda: time.monotonic() + offset


def test_processes_whose_clocks_differ_by_30_s_decide_the_same(
    states: Callable[..., RedisState],
) -> None:
    ahead = quick("clocks", states(), open_duration=0.5, clock=OffsetClock(+30.0))
    behind = quick("clocks", states(), open_duration=0.5, clock=OffsetClock(-30.0))
    trip(ahead)
    wait_for(lambda: behind.state is CircuitState.OPEN)
    with pytest.raises(CircuitOpenError) as from_ahead:
        ahead.call(lambda: None)
    with pytest.raises(CircuitOpenError) as from_behind:
        behind.call(lambda: None)
    # Both were told the same time to wait, within a sync interval, not 60 s apart.
    assert abs(from_ahead.value.retry_after - from_behind.value.retry_after) < 0.2
    assert from_behind.value.retry_after <= 0.5
    # They half-open together, and one probe closes both.
    wait_for(lambda: behind.state is CircuitState.HALF_OPEN, within=2.0)
    assert behind.call(lambda: "probe") == "probe"
    wait_for(lambda: ahead.state is CircuitState.CLOSED)


# -- Redis slow or gone ------------------------------------------------------------------------


def test_redis_killed_mid_load_is_invisible_to_callers(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    own = RedisServer(tmp_path)
    state = RedisState(own.url, prefix="kill", interval=0.05)
    breaker = CircuitBreaker(name="kill", shared=state)
    errors: list[BaseException] = []
    calls = [0]
    stop = threading.Event()

    def load() -> None:
        while not stop.is_set():
            try:
                breaker.call(lambda: None)
                calls[0] += 1
            except BaseException as exc:
                errors.append(exc)
            time.sleep(0.001)

    caplog.set_level(logging.INFO, logger="seawall")
    threads = [threading.Thread(target=load) for _ in range(4)]
    try:
        for thread in threads:
            thread.start()
        time.sleep(0.3)
        own.kill()
        wait_for(lambda: breaker.snapshot().shared_up is False, within=3.0)
        time.sleep(0.5)
        own.start()
        back = wait_for(lambda: breaker.snapshot().shared_up is True, within=5.0)
        time.sleep(0.3)
    finally:
        stop.set()
        for thread in threads:
            thread.join(10)
        state.close()
        own.stop()
    assert errors == []
    assert calls[0] > 100
    assert back < 1.0
    lines = [r for r in caplog.records if r.name == "seawall"]
    assert [r.levelno for r in lines] == [logging.WARNING, logging.INFO], lines
    assert "lost the shared breaker state" in lines[0].getMessage()
    assert "is back" in lines[1].getMessage()
    snap = breaker.snapshot()
    assert snap.shared_errors >= 1
    assert snap.shared_dropped >= 1
    assert snap.state is CircuitState.CLOSED


def test_a_trip_while_redis_is_gone_is_local_and_then_shared(tmp_path: Path) -> None:
    own = RedisServer(tmp_path)
    one_state = RedisState(own.url, prefix="gone", interval=0.05)
    other_state = RedisState(own.url, prefix="gone", interval=0.05)
    try:
        one = quick("gone", one_state, open_duration=30.0)
        other = quick("gone", other_state, open_duration=30.0)
        one.call(lambda: None)
        wait_for(lambda: one_state.status("gone").generation == 0)
        own.kill()
        trip(one)  # decided alone: this process fails fast at once
        assert one.state is CircuitState.OPEN
        with pytest.raises(CircuitOpenError):
            one.call(lambda: None)
        assert other.state is CircuitState.CLOSED
        own.start()  # an empty Redis: the state was lost with the server
        wait_for(lambda: other.state is CircuitState.OPEN, within=5.0)
        assert one.state is CircuitState.OPEN
    finally:
        one_state.close()
        other_state.close()
        own.stop()


def test_a_probe_lease_when_redis_is_gone_is_decided_alone(tmp_path: Path) -> None:
    own = RedisServer(tmp_path)
    state = RedisState(own.url, prefix="probe-gone", interval=60)
    try:
        breaker = quick("probe-gone", state, open_duration=0.05)
        trip(breaker)
        state.sync_now()
        time.sleep(0.2)  # the syncer, woken by the trip, has had its exchange too
        own.kill()
        time.sleep(0.1)
        assert breaker.state is CircuitState.HALF_OPEN
        assert state.up
        start = time.monotonic()
        with pytest.raises(CircuitOpenError):  # the lease got no answer: refused, not probed
            breaker.call(lambda: "unanswered")
        assert time.monotonic() - start < 1.0
        assert not state.up  # refused connections: Redis is gone at once
        assert breaker.call(lambda: "alone") == "alone"  # now it decides alone: a local probe
        assert breaker.state is CircuitState.CLOSED
    finally:
        state.close()
        own.stop()


def test_an_unreachable_redis_from_the_start_costs_callers_nothing() -> None:
    state = RedisState(f"redis://127.0.0.1:{free_port()}/0", interval=0.02)
    try:
        breaker = quick("never", state)
        for _ in range(100):
            breaker.call(lambda: None)
        wait_for(lambda: not state.up, within=3.0)
        trip(breaker)
        assert breaker.state is CircuitState.OPEN
    finally:
        state.close()


# -- async, transports, memory -------------------------------------------------------------------


def test_an_async_probe_awaits_its_lease(states: Callable[..., RedisState]) -> None:
    one, other = (quick("async", states(), open_duration=0.1) for _ in range(2))

    async def ok() -> str:
        return "ok"

    async def main() -> int:
        ticks = 0

        async def ticker() -> None:
            nonlocal ticks
            while True:
                ticks += 1
                await asyncio.sleep(0)

        beat = asyncio.get_running_loop().create_task(ticker())
        await asyncio.sleep(0)
        assert await other.acall(ok) == "ok"  # the probe: its lease asked on a worker thread
        beat.cancel()
        assert other.state is CircuitState.CLOSED
        return ticks

    trip(one)
    wait_for(lambda: other.state is CircuitState.HALF_OPEN)
    assert asyncio.run(main()) > 1  # the loop ran on while the lease was asked for
    wait_for(lambda: one.state is CircuitState.CLOSED)


def test_a_transports_per_host_breakers_share_through_its_template(
    states: Callable[..., RedisState],
) -> None:
    def transport(state: RedisState) -> ResilientTransport:
        template = Policy(
            "api", breaker=CircuitBreaker(consecutive_span=0.0, open_duration=30.0, shared=state)
        )
        return ResilientTransport(httpx.HTTPTransport(), policy=template)

    with respx.mock(assert_all_called=False) as mock:
        mock.get("http://down.test/").mock(return_value=httpx.Response(503))
        mock.get("http://up.test/").mock(return_value=httpx.Response(200))
        one_state, other_state = states(), states()
        with (
            httpx.Client(transport=transport(one_state)) as one,
            httpx.Client(transport=transport(other_state)) as other,
        ):
            for _ in range(5):
                one.get("http://down.test/")
            wait_for(lambda: one_state.status("api:down.test:80").state == "open")
            # The other process had no breaker for down.test: its first request makes one,
            # which reads the shared state before it calls: that request is refused.
            with pytest.raises(CircuitOpenError):
                other.get("http://down.test/")
            assert other.get("http://up.test/").status_code == 200
    assert one_state.status("api:up.test:80").state == "closed"


@pytest.mark.parametrize("rate", [1, 10_000])
def test_redis_memory_per_breaker_is_bounded(
    server: RedisServer, states: Callable[..., RedisState], rate: int
) -> None:
    state = states(interval=0.05)
    breaker = CircuitBreaker(name=f"memory-{rate}", shared=state, window=1.0)
    start, done = time.monotonic(), 0
    while time.monotonic() - start < 1.5:  # every window bucket used
        due = int((time.monotonic() - start) * rate) + 1
        for _ in range(due - done):
            breaker.call(lambda: None)
        done = due
        time.sleep(0.0005)
    state.sync_now()
    client = redis.Redis(port=server.port)
    key = f"{{{state.prefix}:cb:memory-{rate}}}"
    used = client.memory_usage(key) or 0
    used += client.memory_usage(f"{key}:probes") or 0
    client.close()
    assert state.status(f"memory-{rate}").window_calls > 0
    assert 0 < used <= 2048, used


# -- the README's recipe -----------------------------------------------------------------------


def test_the_readmes_recipe_shares_one_breaker(
    server: RedisServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    after = readme.split("<!-- recipe: shared breakers", 1)[1]
    code = after.split("```python\n", 1)[1].split("```", 1)[0]
    monkeypatch.setenv("REDIS_URL", server.url)
    workers = [dict[str, object]() for _ in range(2)]
    for namespace in workers:  # two "workers" running the same module
        exec(compile(code, "README recipe", "exec"), namespace)
    one, other = (namespace["payments"] for namespace in workers)
    charge = workers[0]["charge"]
    try:
        assert charge("A-1") == "charged A-1"  # type: ignore[operator]
        one.breaker.isolate()  # type: ignore[attr-defined]
        wait_for(lambda: other.breaker.state is CircuitState.FORCED_OPEN)  # type: ignore[attr-defined]
        with pytest.raises(CircuitOpenError):
            workers[1]["charge"]("A-2")  # type: ignore[operator]
        one.breaker.reset()  # type: ignore[attr-defined]
        wait_for(lambda: other.breaker.state is CircuitState.CLOSED)  # type: ignore[attr-defined]
    finally:
        for namespace in workers:
            namespace["shared"].close()  # type: ignore[attr-defined]


def test_reads_and_idle_breakers_write_nothing(
    server: RedisServer, states: Callable[..., RedisState]
) -> None:
    state = states()
    assert state.status("typo").state == "closed"
    idle = CircuitBreaker(name="idle", shared=state)  # never called: a transport's template
    state.sync_now()
    assert idle.state is CircuitState.CLOSED
    assert "typo" not in state.names()
    assert "idle" not in state.names()
    used = CircuitBreaker(name="used", shared=state)  # kept: a collected breaker sends nothing
    used.call(lambda: None)
    state.sync_now()  # (or the syncer's own exchange, running meanwhile, tells it)
    wait_for(lambda: "used" in state.names())


def test_a_breaker_made_during_an_isolation_obeys_before_its_first_call(
    states: Callable[..., RedisState],
) -> None:
    states().isolate("late")
    breaker = CircuitBreaker(name="late", shared=states())
    with pytest.raises(CircuitOpenError):
        breaker.call(lambda: None)
    unnamed = CircuitBreaker(shared=states())

    @unnamed  # takes its name from the function: it reads the state then
    def late() -> None:
        pass

    states().isolate(unnamed.name)
    fresh = CircuitBreaker(shared=states())
    with pytest.raises(CircuitOpenError):
        fresh.call(late)  # adopts the name "…late" on its first call, and reads first


def test_an_answer_overtaken_by_a_newer_one_is_not_followed(
    states: Callable[..., RedisState],
) -> None:
    from seawall._shared import Reply

    state = states(interval=60)
    breaker = quick("crossed", state)
    breaker.call(lambda: None)
    state.sync_now()
    link = breaker._link
    assert link is not None
    assert link.epoch
    newer = Reply("open", link.generation + 2, 30.0, 30.0, 0, 0, link.epoch)
    older = Reply("closed", link.generation + 1, 0.0, 0.6, 0, 0, link.epoch)
    older_asked = time.monotonic()
    breaker._follow(link, newer, time.monotonic())
    breaker._follow(link, older, older_asked)  # the two exchanges' answers arrived crossed
    assert breaker.state is CircuitState.OPEN
    # The same older generation asked for after the newer one was followed: the backend went
    # back to an older copy of the state (a restored snapshot), which is followed.
    breaker._follow(link, older, time.monotonic())
    assert breaker.state is CircuitState.CLOSED
    assert link.generation == older.generation
    # A new epoch (Redis lost the state and began again) is followed whatever its generation.
    breaker._follow(link, newer, time.monotonic())
    breaker._follow(link, Reply("closed", 0, 0.0, 0.6, 0, 0, "another life"), 0.0)
    assert breaker.state is CircuitState.CLOSED


def test_after_redis_lost_its_state_every_process_follows_it_again(tmp_path: Path) -> None:
    own = RedisServer(tmp_path)
    one_state = RedisState(own.url, prefix="again", interval=0.05)
    other_state = RedisState(own.url, prefix="again", interval=0.05)
    try:
        one, other = quick("again", one_state), quick("again", other_state)
        for _ in range(3):  # generations 1..6 in the first life
            trip(one)
            wait_for(lambda: other.state is CircuitState.OPEN)
            one_state.reset("again")
            wait_for(lambda: other.state is one.state is CircuitState.CLOSED)
        own.kill()
        own.start()  # empty: the state begins again at generation 0
        one.call(lambda: None)  # news, so that the key exists again
        wait_for(lambda: "again" in one_state.names())
        one_state.isolate("again")  # generation 1 of the new life
        wait_for(lambda: other.state is CircuitState.FORCED_OPEN)
        wait_for(lambda: one.state is CircuitState.FORCED_OPEN)
    finally:
        one_state.close()
        other_state.close()
        own.stop()


def test_a_flushed_script_cache_is_loaded_again(
    server: RedisServer, states: Callable[..., RedisState]
) -> None:
    """EVALSHA falls back to loading the script (NOSCRIPT), in a pipeline and alone."""
    state = states(interval=60)
    breaker = quick("noscript", state, open_duration=0.05)
    breaker.call(lambda: None)
    state.sync_now()
    client = redis.Redis(port=server.port)
    client.script_flush()
    trip(breaker)
    state.sync_now()  # the exchange's pipeline
    assert state.status("noscript").state == "open"
    client.script_flush()
    time.sleep(0.1)
    assert breaker.call(lambda: "probe") == "probe"  # the lease, alone
    client.close()
    assert state.up


def test_a_switch_shows_in_each_processs_metrics(states: Callable[..., RedisState]) -> None:
    from seawall.metrics._readings import read_all

    workers = [quick("metrics-switch", states()) for _ in range(2)]
    states().isolate("metrics-switch")
    for worker in workers:
        wait_for(lambda worker=worker: worker.state is CircuitState.FORCED_OPEN)  # type: ignore[misc]
        gauge = read_all([worker])["seawall_circuit_breaker_state"].values
        assert gauge[("metrics-switch", "forced_open")] == 1
        assert gauge[("metrics-switch", "closed")] == 0
        assert read_all([worker])["seawall_shared_state_up"].values == {("metrics-switch",): 1}


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork (POSIX)")
def test_a_forked_worker_shares_through_a_syncer_of_its_own(
    states: Callable[..., RedisState],
) -> None:
    """gunicorn --preload: the breaker is made before the fork; the child's syncer thread is
    its own (the parent's did not survive the fork), and its trip reaches the parent."""
    state = states()
    breaker = quick("forked", state, open_duration=30.0)
    breaker.call(lambda: None)
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        code = 1
        try:
            assert state._thread is not None
            assert state._thread.is_alive()  # started again in the child
            trip(breaker)
            wait_for(lambda: state.status("forked").state == "open")
            code = 0
        except BaseException as exc:  # reported through the exit status
            os.write(2, f"child failed: {exc!r}\n".encode())
        finally:
            os._exit(code)
    deadline = time.monotonic() + 30
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            assert os.waitstatus_to_exitcode(status) == 0, "the child's checks failed"
            break
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            pytest.fail("the forked child hung")
        time.sleep(0.005)
    wait_for(lambda: breaker.state is CircuitState.OPEN)


def test_a_probe_cancelled_while_asking_for_its_lease_gives_it_back(
    states: Callable[..., RedisState],
) -> None:
    """Real cancellation: the task is cancelled while its lease is being asked for (on a
    worker thread, slowed here); the lease, granted to nobody, is given back at once."""
    state = states()
    breaker = quick("cancelled", state, open_duration=0.05, half_open_timeout=30.0)
    asked = threading.Event()
    real_lease = state._lease

    def slow_lease(*args: object) -> object:
        asked.set()
        time.sleep(0.3)
        return real_lease(*args)  # type: ignore[arg-type]

    trip(breaker)
    wait_for(lambda: breaker.state is CircuitState.HALF_OPEN)

    async def ok() -> str:
        return "ok"

    async def main() -> None:
        state._lease = slow_lease  # type: ignore[method-assign]
        task = asyncio.get_running_loop().create_task(breaker.acall(ok))
        assert await asyncio.to_thread(asked.wait, 5.0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await asyncio.sleep(0.6)  # the lease came, and went back
        state._lease = real_lease  # type: ignore[method-assign]

    asyncio.run(main())
    assert state.status("cancelled").probes_in_flight == 0
    wait_for(lambda: _admitted(breaker), within=2.0)  # the next probe, long before 30 s
    assert breaker.state is CircuitState.CLOSED
