"""Shared breakers when the network or Redis misbehaves: lost questions and lost answers, a
slow spell, a restore from an older snapshot, a closed state, an event loop.

Each test reproduces one fault against a real redis-server on 127.0.0.1, through a proxy
that loses what a flaky network loses (tests.helpers.RedisProxy) or with Redis kept busy by
a Lua loop (tests.helpers.keep_redis_busy). Time is real: the point is real sockets and
real timeouts; every wait has a generous bound. Where a test needs exchanges at chosen
moments, its states sync rarely on their own (``interval=60``) and it calls ``sync_now()``.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pytest
import redis

from seawall import CircuitBreaker, CircuitOpenError, CircuitState, StateChange
from seawall._shared import Lease, Reply, Report, Settings
from seawall.redis import RedisState
from tests.helpers import (
    RedisProxy,
    RedisServer,
    free_port,
    keep_redis_busy,
    needs_redis,
    redis_server_fixture,
    redis_states_fixture,
)
from tests.test_redis import fail, quick, trip, wait_for

pytestmark = needs_redis


server = redis_server_fixture()
states = redis_states_fixture()


@pytest.fixture
def proxy(server: RedisServer) -> Iterator[RedisProxy]:
    proxy = RedisProxy(server)
    yield proxy
    proxy.close()


def admitted(breaker: CircuitBreaker) -> bool:
    try:
        breaker.call(lambda: None)
    except CircuitOpenError:
        return False
    return True


class _Deaf(threading.Event):
    """A syncer's wake-up that only close() gets through."""

    def __init__(self, state: RedisState) -> None:
        super().__init__()
        self.state = state

    def set(self) -> None:
        if self.state._closed:
            super().set()


def quiet(state: RedisState) -> RedisState:
    """No early exchanges: news (a verdict, a trip, a switch) no longer wakes the syncer,
    so with ``interval=60`` exchanges happen only when the test calls ``sync_now()``."""
    state._wake = _Deaf(state)
    return state


def probe_held(breaker: CircuitBreaker) -> tuple[threading.Event, list[str], threading.Thread]:
    """A probe through ``breaker`` on a thread of its own, admitted and held running until
    the returned event is set; then it succeeds, and its result is in the list."""
    started, release = threading.Event(), threading.Event()

    def probe() -> str:
        started.set()
        release.wait(5.0)
        return "ok"

    results: list[str] = []
    runner = threading.Thread(target=lambda: results.append(breaker.call(probe)))
    runner.start()
    assert started.wait(5.0)
    return release, results, runner


def half_open_pair(
    states: Callable[..., RedisState], name: str, first_url: str | None = None, **kwargs: object
) -> tuple[RedisState, CircuitBreaker, RedisState, CircuitBreaker]:
    """Two "processes" whose shared breaker ``name`` has just half-opened, syncing only when
    the test says so."""
    kwargs.setdefault("open_duration", 0.2)
    kwargs.setdefault("half_open_timeout", 30.0)
    one, other = quiet(states(first_url, interval=60)), quiet(states(interval=60))
    first, second = quick(name, one, **kwargs), quick(name, other, **kwargs)
    trip(first)
    one.sync_now()
    other.sync_now()
    assert second.state is CircuitState.OPEN
    wait_for(lambda: other.status(name).state == "half_open")
    other.sync_now()
    one.sync_now()
    assert first.state is second.state is CircuitState.HALF_OPEN
    return one, first, other, second


# -- a probe's lease and verdict -------------------------------------------------------------


def test_a_probes_verdict_whose_exchange_was_lost_goes_with_the_next(
    states: Callable[..., RedisState], proxy: RedisProxy
) -> None:
    """The probe succeeded; the exchange telling Redis was lost. Its verdict goes again with
    the next one, so the fleet closes then, instead of staying half-open until the lease
    would count as hung (30 s here) and reopening on a good probe."""
    one, first, other, second = half_open_pair(states, "verdict", proxy.url)
    assert first.call(lambda: "ok") == "ok"
    assert first.state is CircuitState.CLOSED
    assert other.status("verdict").probes_in_flight == 1

    proxy.lose_requests = True
    one.sync_now()  # times out: the verdict did not reach Redis
    proxy.lose_requests = False
    assert first.snapshot().shared_errors == 1
    assert one.up  # one timeout is not a lost Redis

    one.sync_now()
    shared = other.status("verdict")
    assert (shared.state, shared.probes_in_flight) == ("closed", 0)
    other.sync_now()
    assert second.state is CircuitState.CLOSED
    assert admitted(second)


def test_a_lease_granted_after_its_question_timed_out_goes_back(
    states: Callable[..., RedisState], server: RedisServer
) -> None:
    """Redis is slow once (0.4 s, longer than the 0.25 s timeout): the lease it granted
    reached nobody. The caller is refused, the lease goes back, and the fleet probes again
    as soon as Redis answers, not at the probe timeout (30 s here)."""
    one, first, other, second = half_open_pair(states, "timed-out")
    busy = keep_redis_busy(server.url, 0.4)
    with pytest.raises(CircuitOpenError) as refused:
        first.call(lambda: "probe")
    assert refused.value.retry_after == one.interval  # this process asks again then
    busy.join()
    assert one.up  # one slow spell is not a lost Redis

    one.sync_now()  # carries the lease back (if the syncer has not already)
    assert other.status("timed-out").probes_in_flight == 0
    other.sync_now()
    assert second.call(lambda: "probe") == "probe"  # the next probe, long before 30 s
    assert second.state is CircuitState.CLOSED
    assert first._link is not None
    assert first._link.asking == 0


def test_a_lease_given_back_before_redis_granted_it_is_refused(
    states: Callable[..., RedisState],
) -> None:
    """The give-back can reach Redis before the question it answers (two connections): the
    lease is then refused when it comes, instead of being granted to nobody."""
    one, first, other, _ = half_open_pair(states, "early")
    link = first._link
    assert link is not None
    link.verdict("early-lease", "drop")
    one.sync_now()
    settings = link.settings
    late = one._lease("early", settings, "early-lease", 0.5)
    assert not late.granted
    assert other.status("early").probes_in_flight == 0
    assert one._lease("early", settings, "another-lease", 0.5).granted


def test_a_process_asks_for_no_more_leases_at_once_than_it_may_have_probes(
    states: Callable[..., RedisState],
) -> None:
    """16 threads reach a half-open breaker together while its lease is slow to come: one
    question goes out (half_open_calls=1), not 16."""
    one, first, _, _ = half_open_pair(states, "gate")
    questions = []
    real_lease = one._lease
    release = threading.Event()

    def slow_lease(name: str, settings: Settings, lease: str, jitter: float) -> Lease:
        questions.append(lease)
        release.wait(5.0)
        return real_lease(name, settings, lease, jitter)

    one._lease = slow_lease  # type: ignore[method-assign]
    outcomes: list[str] = []

    def caller() -> None:
        try:
            first.call(lambda: None)
            outcomes.append("probe")
        except CircuitOpenError:
            outcomes.append("refused")

    threads = [threading.Thread(target=caller) for _ in range(16)]
    for thread in threads:
        thread.start()
    wait_for(lambda: len(outcomes) == 15)
    release.set()
    for thread in threads:
        thread.join()
    assert len(questions) == 1
    assert sorted(outcomes) == ["probe"] + ["refused"] * 15
    assert first._link is not None
    assert first._link.asking == 0


def test_a_probe_whose_lease_redis_ended_does_not_close_its_process(
    states: Callable[..., RedisState],
) -> None:
    """A's probe outlives half_open_timeout: Redis counts it as hung, reopens, half-opens
    again and gives B the fleet's one probe. A's probe then succeeds; A must not close on
    it (it would admit every call while B's probe decides), but follow B's verdict."""
    one, first, other, second = half_open_pair(
        states, "stale", open_duration=0.05, half_open_timeout=0.3
    )
    release, results, runner = probe_held(first)
    time.sleep(0.35)  # past A's lease's timeout (and the reopened breaker's open time)
    other.sync_now()
    assert other.status("stale").state == "half_open"
    b_probing, b_release = threading.Event(), threading.Event()

    def b_probe() -> None:
        b_probing.set()
        b_release.wait(5.0)
        raise RuntimeError("still down")

    def b_caller() -> None:
        with pytest.raises(RuntimeError):
            second.call(b_probe)

    b_runner = threading.Thread(target=b_caller)
    b_runner.start()
    assert b_probing.wait(5.0)  # B holds the fleet's one lease now
    one.sync_now()  # A learns the new half-open stretch
    release.set()
    runner.join()
    assert results == ["ok"]
    assert first.state is CircuitState.HALF_OPEN  # A's old probe does not close A
    assert not any(admitted(first) for _ in range(20))
    b_release.set()
    b_runner.join()
    other.sync_now()
    one.sync_now()
    assert first.state is CircuitState.OPEN  # B's failed probe reopened the fleet


def test_a_probe_cancelled_before_its_lease_came_leaves_no_lease(
    states: Callable[..., RedisState],
) -> None:
    """A coroutine cancelled while its lease is asked for: the process's count of questions
    in flight goes back to 0 at once, and the lease, whenever it comes, is given back."""
    one, first, other, _ = half_open_pair(states, "cancel")
    asked = threading.Event()
    real_lease = one._lease

    def slow_lease(name: str, settings: Settings, lease: str, jitter: float) -> Lease:
        asked.set()
        time.sleep(0.3)
        return real_lease(name, settings, lease, jitter)

    one._lease = slow_lease  # type: ignore[method-assign]

    async def ok() -> str:
        return "ok"

    async def main() -> None:
        task = asyncio.get_running_loop().create_task(first.acall(ok))
        assert await asyncio.to_thread(asked.wait, 5.0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert first._link is not None
        assert first._link.asking == 0
        await asyncio.sleep(0.5)  # the question reached Redis meanwhile

    asyncio.run(main())
    one._lease = real_lease  # type: ignore[method-assign]
    one.sync_now()
    assert other.status("cancel").probes_in_flight == 0
    assert first.call(lambda: "probe") == "probe"


# -- a slow Redis ----------------------------------------------------------------------------


def test_one_slow_spell_is_not_a_lost_redis(
    states: Callable[..., RedisState], server: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    """Redis busy for 0.4 s (a fork for a snapshot, say) times out several questions at
    once in every process. None of them counts Redis as lost, so none probes on its own:
    the fleet sends exactly half_open_calls probes."""
    made = [states(interval=0.1) for _ in range(3)]
    breakers = [quick("spell", state, open_duration=0.2) for state in made]
    trip(breakers[0])
    for breaker in breakers:
        wait_for(lambda breaker=breaker: breaker.state is CircuitState.HALF_OPEN)
    probes: list[int] = []

    def probe() -> str:
        probes.append(1)
        time.sleep(1.0)
        return "ok"

    def caller(breaker: CircuitBreaker) -> None:
        end = time.monotonic() + 0.6
        while time.monotonic() < end:
            try:
                breaker.call(probe)
                return
            except CircuitOpenError:
                time.sleep(0.01)

    caplog.set_level(logging.INFO, logger="seawall")
    busy = keep_redis_busy(server.url, 0.4)
    threads = [threading.Thread(target=caller, args=(b,)) for b in breakers for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    busy.join()
    assert len(probes) == 1
    assert all(state.up for state in made)
    assert "lost the shared breaker state" not in caplog.text


def test_a_redis_slow_for_long_is_lost_once_and_found_again(
    states: Callable[..., RedisState], server: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    """Slow for 1.5 s (more than twice the timeout): breakers decide alone, with one
    warning; one line when Redis answers again."""
    state = states(interval=0.1)
    breaker = quick("long", state)
    breaker.call(lambda: None)
    wait_for(lambda: "long" in state.names())
    caplog.set_level(logging.INFO, logger="seawall")
    busy = keep_redis_busy(server.url, 1.5)
    wait_for(lambda: not state.up, within=1.4)
    assert admitted(breaker)
    busy.join()
    wait_for(lambda: state.up, within=2.0)

    def logged() -> list[str]:
        return [r.getMessage() for r in caplog.records if r.name == "seawall"]

    wait_for(lambda: len(logged()) >= 2)  # the line follows the flag
    time.sleep(0.2)  # and no third comes
    lines = logged()
    assert len(lines) == 2
    assert "lost the shared breaker state" in lines[0]
    assert "is back after" in lines[1]


def test_the_syncer_does_not_spin_while_redis_refuses_connections() -> None:
    """A lost exchange keeps its news for the next interval rather than trying again at
    once: with Redis refusing connections, a syncer asks about once per interval."""
    own = RedisState(f"redis://127.0.0.1:{free_port()}/0", interval=0.05)  # nobody there
    try:
        breaker = quick("spin", own)
        attempts = []
        real = own._exchange

        def counted(reports: Sequence[Report]) -> list[Reply]:
            attempts.append(1)
            return real(reports)

        own._exchange = counted  # type: ignore[method-assign]
        for _ in range(20):  # news for every exchange
            breaker.call(lambda: None)
            time.sleep(0.025)
        assert 5 <= len(attempts) <= 15  # about 0.5 s / 0.05 s
    finally:
        own.close()


# -- Redis's state goes back ------------------------------------------------------------------


def test_after_a_restore_from_an_older_snapshot_processes_follow_it(tmp_path: Path) -> None:
    """Redis restarts from its last snapshot: the same epoch with an older generation.
    Processes that had seen newer generations follow the restored state, and so obey an
    operator's switch made on it."""
    own = RedisServer(tmp_path)
    state = RedisState(own.url, prefix="restore", interval=0.05)
    try:
        breaker = quick("restore", state, open_duration=0.1)
        breaker.call(lambda: None)
        wait_for(lambda: "restore" in state.names())
        redis.Redis.from_url(own.url).save()  # the snapshot, at generation 0
        for _ in range(3):
            trip(breaker)
            wait_for(lambda: breaker.state is CircuitState.HALF_OPEN)
            breaker.call(lambda: None)
            wait_for(lambda: state.status("restore").state == "closed")
        assert breaker._link is not None
        assert breaker._link.generation >= 6
        own.kill()
        own.start()  # loads the snapshot
        assert state.status("restore").generation == 0
        RedisState(own.url, prefix="restore").isolate("restore")
        wait_for(lambda: breaker.state is CircuitState.FORCED_OPEN, within=2.0)
        assert not admitted(breaker)
    finally:
        state.close()
        own.stop()


# -- switches ---------------------------------------------------------------------------------


def test_a_switch_sent_again_does_not_undo_a_later_one(
    states: Callable[..., RedisState], proxy: RedisProxy
) -> None:
    """A process isolates; Redis applies it but the answer is lost, so the switch goes again
    with the next exchange. Meanwhile an operator reset the breaker: the switch sent again
    is not applied twice."""
    state, operator = quiet(states(proxy.url, interval=60)), states()
    breaker = quick("switch", state)
    breaker.call(lambda: None)
    state.sync_now()
    proxy.lose_replies_with = b"forced_open"
    breaker.isolate()
    state.sync_now()  # applied on Redis; the reply never came
    proxy.lose_replies_with = None
    assert operator.status("switch").state == "forced_open"
    assert breaker._link is not None
    assert breaker._link.pending
    assert operator.reset("switch").state == "closed"
    state.sync_now()
    assert operator.status("switch").state == "closed"
    assert breaker.state is CircuitState.CLOSED


def test_a_switch_whose_exchange_never_arrived_is_applied_with_the_next(
    states: Callable[..., RedisState], proxy: RedisProxy
) -> None:
    state, operator = quiet(states(proxy.url, interval=60)), states()
    breaker = quick("unsent", state)
    breaker.call(lambda: None)
    state.sync_now()
    proxy.lose_requests = True
    breaker.isolate()
    state.sync_now()
    proxy.lose_requests = False
    assert operator.status("unsent").state == "closed"
    state.sync_now()
    assert operator.status("unsent").state == "forced_open"


def test_an_answer_asked_for_before_a_local_switch_does_not_undo_it(
    states: Callable[..., RedisState],
) -> None:
    state = quiet(states(interval=60))
    breaker = quick("before", state)
    breaker.call(lambda: None)
    state.sync_now()
    link = breaker._link
    assert link is not None
    asked = time.monotonic()
    closed = Reply("closed", link.generation, 0.0, 0.6, 1, 0, link.epoch)
    breaker.isolate()
    breaker._follow(link, closed, asked)  # in flight when the switch was made
    assert breaker.state is CircuitState.FORCED_OPEN
    state.sync_now()  # the switch is delivered
    breaker._follow(link, closed, asked)
    assert breaker.state is CircuitState.FORCED_OPEN


# -- closing ----------------------------------------------------------------------------------


def test_close_tells_redis_what_is_left_then_decides_alone(
    states: Callable[..., RedisState],
) -> None:
    """A probe's verdict not yet sent goes with close(); after it, the breaker decides
    alone: it takes no lease (none hangs on Redis) and its state is not shared."""
    one, first, other, second = half_open_pair(states, "closing")
    assert first.call(lambda: "ok") == "ok"
    one.close()  # the verdict goes now, not at the next interval (never, once closed)
    assert not one.up
    assert first.snapshot().shared_up is False
    other.sync_now()
    assert second.state is CircuitState.CLOSED
    trip(first)
    assert first.state is CircuitState.OPEN
    time.sleep(0.25)
    assert first.call(lambda: "probe") == "probe"  # alone: no lease
    assert other.status("closing").probes_in_flight == 0
    assert other.status("closing").state == "closed"  # the trip after close() is its own
    one.close()  # twice is harmless


def test_a_trip_pending_at_close_reaches_the_fleet(states: Callable[..., RedisState]) -> None:
    one, other = quiet(states(interval=60)), quiet(states(interval=60))
    first, second = quick("last-trip", one), quick("last-trip", other)
    first.call(lambda: None)
    one.sync_now()
    trip(first)
    one.close()
    other.sync_now()
    assert second.state is CircuitState.OPEN


# -- event loops ------------------------------------------------------------------------------


def test_a_breaker_made_on_an_event_loop_never_blocks_it(
    states: Callable[..., RedisState], server: RedisServer
) -> None:
    """An async transport builds a new host's breaker on the event loop. With Redis slow
    (0.4 s), building it does not wait for Redis; the syncer reads the shared state for it,
    so an isolation made before reaches it within an interval once Redis answers."""
    state, operator = states(interval=0.1), states()
    operator.isolate("loop:new-host")

    async def build() -> tuple[CircuitBreaker, float]:
        started = time.monotonic()
        breaker = CircuitBreaker(name="loop:new-host", shared=state)
        return breaker, time.monotonic() - started

    busy = keep_redis_busy(server.url, 0.4)
    breaker, took = asyncio.run(build())
    assert took < 0.1
    busy.join()
    wait_for(lambda: breaker.state is CircuitState.FORCED_OPEN, within=2.0)


def test_the_pipeline_asks_no_script_exists(
    states: Callable[..., RedisState], server: RedisServer
) -> None:
    """Each exchange is one round trip of EVALSHA calls; redis-py's Script in a pipeline
    would ask SCRIPT EXISTS first, every time."""
    state = states(interval=60)
    breakers = [quick(f"trip-{i}", state) for i in range(3)]
    for breaker in breakers:
        breaker.call(lambda: None)
    state.sync_now()
    client = redis.Redis.from_url(server.url)
    before = client.info("commandstats").get("cmdstat_script|exists", {}).get("calls", 0)
    for _ in range(10):
        for breaker in breakers:
            breaker.call(lambda: None)
        state.sync_now()
    after = client.info("commandstats").get("cmdstat_script|exists", {}).get("calls", 0)
    client.close()
    assert after == before


def test_a_process_takes_the_open_duration_the_fleet_grew(
    states: Callable[..., RedisState],
) -> None:
    """Failed probes grow the shared open duration (max_open_duration). A process follows
    the grown one, and if it later decides alone, grows it from there, not from the start."""
    one, first, other, second = half_open_pair(
        states, "grown", open_duration=0.1, max_open_duration=10.0
    )
    for _ in range(2):  # two failed probes: 0.1 s -> 0.2 s -> 0.4 s (before jitter)
        wait_for(lambda: other.status("grown").state == "half_open")
        one.sync_now()
        with pytest.raises(RuntimeError):
            first.call(fail)
        one.sync_now()
    other.sync_now()
    assert second.state is CircuitState.OPEN
    assert 0.4 <= second.snapshot().open_duration <= 0.4 * 1.2
    other.close()  # from here, the second process decides alone
    wait_for(lambda: second.state is CircuitState.HALF_OPEN, within=2.0)
    with pytest.raises(RuntimeError):
        second.call(fail)
    assert 0.8 <= second.snapshot().open_duration <= 0.8 * 1.2


def test_a_caller_interrupted_while_asking_for_its_lease_leaves_none(
    states: Callable[..., RedisState],
) -> None:
    """KeyboardInterrupt (or any BaseException) while a sync caller asks for its lease: the
    process may still ask for leases afterwards, and the lease goes back."""
    one, first, other, _ = half_open_pair(states, "interrupted")
    real_lease = one._lease

    def interrupted(name: str, settings: Settings, lease: str, jitter: float) -> Lease:
        real_lease(name, settings, lease, jitter)  # granted on Redis
        raise KeyboardInterrupt

    one._lease = interrupted  # type: ignore[method-assign]
    with pytest.raises(KeyboardInterrupt):
        first.call(lambda: "probe")
    one._lease = real_lease  # type: ignore[method-assign]
    assert first._link is not None
    assert first._link.asking == 0
    one.sync_now()
    assert other.status("interrupted").probes_in_flight == 0
    assert first.call(lambda: "probe") == "probe"


def test_a_lease_whose_answer_was_overtaken_makes_no_probe(
    states: Callable[..., RedisState],
) -> None:
    """A's lease is granted, but its answer comes late: meanwhile B's probe failed, Redis
    reopened and half-opened again (ending A's lease), and A followed that. The late answer
    is not followed, so it makes no probe: the fleet still has exactly half_open_calls."""
    one, first, other, second = half_open_pair(
        states, "overtaken", half_open_calls=2, open_duration=0.05, max_open_duration=0.05
    )
    real_lease = one._lease
    granted, deliver = threading.Event(), threading.Event()

    def late(name: str, settings: Settings, lease: str, jitter: float) -> Lease:
        answer = real_lease(name, settings, lease, jitter)
        granted.set()
        deliver.wait(5.0)  # the answer is on its way
        return answer

    one._lease = late  # type: ignore[method-assign]
    outcome: list[object] = []

    def a_caller() -> None:
        try:
            outcome.append(first.call(lambda: "probe"))
        except CircuitOpenError as exc:
            outcome.append(exc)

    runner = threading.Thread(target=a_caller)
    runner.start()
    assert granted.wait(5.0)

    def b_fails() -> None:
        time.sleep(0.1)  # past the open duration: Redis half-opens again at once
        raise RuntimeError("down")

    with pytest.raises(RuntimeError):
        second.call(b_fails)
    other.sync_now()
    assert other.status("overtaken").probes_in_flight == 0
    one.sync_now()  # A follows the new stretch
    deliver.set()
    runner.join()
    assert isinstance(outcome[0], CircuitOpenError)  # no probe on an overtaken lease
    assert first._link is not None
    assert first._link.asking == 0
    assert first._probe_starts == []
    one._lease = real_lease  # type: ignore[method-assign]
    one.sync_now()
    assert other.status("overtaken").probes_in_flight == 0


def test_a_listener_interrupted_while_a_lease_is_answered_frees_its_place(
    states: Callable[..., RedisState],
) -> None:
    """A state-change listener raising KeyboardInterrupt while a lease's answer is followed
    must not leave the process unable to ask for leases again."""
    _, first, other, second = half_open_pair(states, "listener", open_duration=0.1)
    assert second.call(lambda: "ok") == "ok"
    other.sync_now()  # B's probe closed the fleet; A has not synced
    armed = [True]

    def listener(event: object) -> None:
        if isinstance(event, StateChange) and armed[0]:
            armed[0] = False
            raise KeyboardInterrupt

    first.add_listener(listener)
    with pytest.raises(KeyboardInterrupt):
        first.call(lambda: "x")  # its lease's answer says closed: A closes
    assert first._link is not None
    assert first._link.asking == 0
    assert first.state is CircuitState.CLOSED


def test_close_gives_back_the_lease_of_a_probe_still_running(
    states: Callable[..., RedisState],
) -> None:
    """A process closes its state (a graceful shutdown) while its probe holds the fleet's
    lease: the lease goes back with close()'s last exchange, so another process probes at
    once, instead of the fleet waiting for half_open_timeout and reopening."""
    one, first, other, second = half_open_pair(states, "closing-probe")
    release, results, runner = probe_held(first)
    assert other.status("closing-probe").probes_in_flight == 1
    one.close()
    assert other.status("closing-probe").probes_in_flight == 0
    release.set()
    runner.join()
    assert results == ["ok"]
    assert first.state is CircuitState.CLOSED  # alone now: its own probe decides for it
    assert first._link is not None
    assert first._link._verdicts == []  # nothing kept that nobody will send
    other.sync_now()
    assert second.call(lambda: "probe") == "probe"  # the fleet's next probe, at once
    assert second.state is CircuitState.CLOSED


def test_an_exchange_overlapping_one_with_a_trip_does_not_undo_the_trip(
    states: Callable[..., RedisState],
) -> None:
    """The syncer's round carrying a local trip is still on its way when another exchange
    (sync_now() at shutdown, say) asks and is answered first: its "closed" must not reopen
    the tripped breaker to calls."""
    state = quiet(states(interval=60))
    breaker = quick("overlap", state, open_duration=30.0)
    breaker.call(lambda: None)
    state.sync_now()
    real_exchange = state._exchange
    taken, go = threading.Event(), threading.Event()

    def slow_first(reports: Sequence[Report]) -> list[Reply]:
        if not taken.is_set():
            taken.set()
            go.wait(5.0)  # taken, still on its way to Redis
        return real_exchange(reports)

    state._exchange = slow_first  # type: ignore[method-assign]
    trip(breaker)
    carrying = threading.Thread(target=state.sync_now)
    carrying.start()
    assert taken.wait(5.0)
    state.sync_now()  # asked after the trip, answered before it arrives: "closed"
    assert breaker.state is CircuitState.OPEN
    assert not admitted(breaker)
    go.set()
    carrying.join()
    assert state.status("overlap").state == "open"
    assert breaker.state is CircuitState.OPEN


def test_status_does_not_count_a_lease_its_own_read_ended(
    states: Callable[..., RedisState],
) -> None:
    """A read writes nothing; when the time it reads at has ended a hung lease (and begun a
    new half-open stretch), it does not count that lease as in flight."""
    one, first, other, _ = half_open_pair(states, "hung", open_duration=0.05, half_open_timeout=0.2)
    link = first._link
    assert link is not None
    assert one._lease("hung", link.settings, "a-hung-lease", 0.0).granted
    time.sleep(0.3)  # past half_open_timeout, and the reopened breaker's open time
    status = other.status("hung")
    assert (status.state, status.probes_in_flight) == ("half_open", 0)


def test_a_coroutines_lease_does_not_wait_behind_the_loops_default_executor(
    states: Callable[..., RedisState],
) -> None:
    """Real threads: the loop's default executor is full of slow work; a probe's lease is
    asked on the backend's own threads, so it is answered within its timeout anyway."""
    _, first, _, _ = half_open_pair(states, "executor")

    async def ok() -> str:
        return "ok"

    async def main() -> float:
        loop = asyncio.get_running_loop()
        workers = min(32, (os.cpu_count() or 1) + 4)  # the default executor's size
        busy = [loop.run_in_executor(None, time.sleep, 0.8) for _ in range(2 * workers)]
        await asyncio.sleep(0.05)
        started = time.monotonic()
        assert await first.acall(ok) == "ok"
        took = time.monotonic() - started
        await asyncio.gather(*busy)
        return took

    assert asyncio.run(main()) < 0.5


def test_an_interrupted_exchange_leaves_nothing_on_its_way(
    states: Callable[..., RedisState],
) -> None:
    """KeyboardInterrupt while sync_now() exchanges (in the exchange itself, or in a
    listener of a breaker it moves): no report stays counted as on its way, so later replies
    are followed, and the trip it carried is sent again."""
    state = quiet(states(interval=60))
    first, second = quick("int-1", state), quick("int-2", state)
    first.call(lambda: None)
    second.call(lambda: None)
    state.sync_now()
    real_exchange = state._exchange

    def interrupted(reports: Sequence[Report]) -> list[Reply]:
        raise KeyboardInterrupt

    trip(first)
    state._exchange = interrupted  # type: ignore[method-assign]
    with pytest.raises(KeyboardInterrupt):
        state.sync_now()
    state._exchange = real_exchange  # type: ignore[method-assign]
    assert first._link is not None
    assert first._link.sending == 0
    assert first._link.pending  # the trip goes again
    state.sync_now()
    assert state.status("int-1").state == "open"

    state.reset("int-1")  # the first breaker will follow it back to closed
    first.add_listener(_interrupt_once())
    trip(second)  # news on its way with the same exchange
    with pytest.raises(KeyboardInterrupt):
        state.sync_now()  # the first breaker's listener interrupts it
    for breaker in (first, second):
        assert breaker._link is not None
        assert breaker._link.sending == 0
    state.isolate("int-1")
    state.sync_now()
    assert first.state is CircuitState.FORCED_OPEN


def _interrupt_once() -> Callable[[object], None]:
    armed = [True]

    def listener(event: object) -> None:
        if isinstance(event, StateChange) and armed[0]:
            armed[0] = False
            raise KeyboardInterrupt

    return listener


def test_a_lease_granted_after_close_still_has_its_verdict_told(
    states: Callable[..., RedisState],
) -> None:
    """A caller's lease question leaves as close() runs and is granted after close()'s last
    exchange (a coroutine on a loop that close() blocks, or a thread switch): its probe's
    verdict is told all the same, so the lease does not hang until half_open_timeout."""
    one, first, other, second = half_open_pair(states, "after-close")
    real_lease = one._lease
    go = threading.Event()

    def late(name: str, settings: Settings, lease: str, jitter: float) -> Lease:
        go.wait(5.0)  # the question leaves late
        return real_lease(name, settings, lease, jitter)

    one._lease = late  # type: ignore[method-assign]
    results: list[str] = []
    runner = threading.Thread(target=lambda: results.append(first.call(lambda: "probe")))
    runner.start()
    wait_for(lambda: first._link is not None and first._link.asking == 1)
    one.close()  # gives up waiting for the question after its timeout
    go.set()
    runner.join()
    assert results == ["probe"]
    wait_for(lambda: other.status("after-close").state == "closed", within=2.0)
    assert other.status("after-close").probes_in_flight == 0
    other.sync_now()
    assert second.state is CircuitState.CLOSED


def test_a_listener_interrupted_by_the_move_of_a_granted_lease_gives_it_back(
    states: Callable[..., RedisState],
) -> None:
    """The lease is granted and its answer moves this breaker (open -> half-open, following
    the fleet); a listener raises KeyboardInterrupt on that move. The probe never runs, so
    its place here and its lease on Redis go back at once."""
    one, first, other, second = half_open_pair(
        states, "granted-move", open_duration=0.1, max_open_duration=0.1
    )
    real_lease = one._lease
    go = threading.Event()

    def late(name: str, settings: Settings, lease: str, jitter: float) -> Lease:
        go.wait(5.0)  # the question leaves late: meanwhile this process follows "open"
        return real_lease(name, settings, lease, jitter)

    one._lease = late  # type: ignore[method-assign]
    outcome: list[BaseException | str] = []

    def caller() -> None:
        try:
            outcome.append(first.call(lambda: "probe"))
        except BaseException as exc:
            outcome.append(exc)

    runner = threading.Thread(target=caller)
    runner.start()
    wait_for(lambda: first._link is not None and first._link.asking == 1)
    with pytest.raises(RuntimeError):
        second.call(fail)  # B's probe fails: the fleet reopens
    other.sync_now()
    one.sync_now()
    assert first.state is CircuitState.OPEN
    wait_for(lambda: other.status("granted-move").state == "half_open")
    first.add_listener(_interrupt_once())
    go.set()  # granted: the answer moves A open -> half-open, and the listener interrupts
    runner.join()
    assert isinstance(outcome[0], KeyboardInterrupt)
    assert first._probe_starts == []
    assert first._link is not None
    assert first._link.held == set()
    one._lease = real_lease  # type: ignore[method-assign]
    one.sync_now()  # the lease goes back
    assert other.status("granted-move").probes_in_flight == 0
    assert first.call(lambda: "probe") == "probe"


def test_a_listener_interrupting_the_half_opening_before_a_lease_frees_its_place(
    states: Callable[..., RedisState],
) -> None:
    """The breaker's own open time runs out as a call arrives: the call half-opens it and
    would ask for a lease, but a listener raises KeyboardInterrupt on that move. No lease
    was asked for, and the process may still ask for one."""
    one, first, other, _ = half_open_pair(states, "before-lease", open_duration=0.1)
    with pytest.raises(RuntimeError):
        first.call(fail)  # A's probe fails: the fleet reopens
    one.sync_now()
    assert first.state is CircuitState.OPEN
    time.sleep(0.15)  # past the open time, here and on Redis
    first.add_listener(_interrupt_once())
    with pytest.raises(KeyboardInterrupt):
        first.call(lambda: "probe")  # open -> half-open, interrupted
    assert first._link is not None
    assert first._link.asking == 0
    assert first.state is CircuitState.HALF_OPEN
    assert first.call(lambda: "probe") == "probe"
    one.sync_now()
    assert other.status("before-lease").state == "closed"
