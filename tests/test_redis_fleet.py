"""A fleet of real worker processes sharing breakers on a real redis-server (127.0.0.1).

Eight processes (started with ``spawn``: nothing inherited but what they are given) each
build their own ``RedisState`` and breaker, as gunicorn workers do, and take commands from
the test. Real time, real processes, generous bounds.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Iterator
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Event
from pathlib import Path
from typing import Any

import pytest

from seawall import CircuitBreaker, CircuitOpenError, CircuitState
from seawall.redis import RedisState
from tests.helpers import RedisServer, needs_redis, redis_server_fixture

pytestmark = needs_redis

WORKERS = 8
CONTEXT = multiprocessing.get_context("spawn")


def breaker_for(state: RedisState, name: str, half_open_calls: int) -> CircuitBreaker:
    """The probes of ``fleet-probes`` are held for seconds: they must not count as hung."""
    return CircuitBreaker(
        name=name,
        shared=state,
        consecutive_span=0.0,
        open_duration=0.5,
        half_open_calls=half_open_calls,
        half_open_timeout=30.0 if name == "fleet-probes" else 1.0,
    )


def worker(
    index: int,
    url: str,
    prefix: str,
    commands: Queue[tuple[Any, ...]],
    out: Queue[tuple[Any, ...]],
    admitted: Any,
    release: Event,
) -> None:
    """One worker process: a state and two breakers of its own, driven by ``commands``."""
    state = RedisState(url, prefix=prefix)
    trips = breaker_for(state, "fleet-trips", 1)
    probes = breaker_for(state, "fleet-probes", 2)
    hung = breaker_for(state, "fleet-hung", 1)

    def seen(event: object) -> None:
        to = getattr(event, "to_state", None)
        if to is not None:
            out.put(("moved", index, to.value, time.time()))

    trips.add_listener(seen)
    out.put(("ready", index))
    while True:
        command = commands.get()
        if command[0] == "stop":
            state.close()
            return
        if command[0] == "probe":
            # Each worker starts once it has followed the trip (within a sync interval;
            # longer on a loaded machine): before that its breaker was still closed.
            deadline = time.monotonic() + 10
            while probes.state is CircuitState.CLOSED and time.monotonic() < deadline:
                time.sleep(0.005)
            run_probers(probes, 16, admitted, release)
            out.put(("probed", index))
        if command[0] == "hang":

            def hang() -> None:
                out.put(("probing", index, time.time()))
                time.sleep(3600)

            try:
                hung.call(hang)
            except CircuitOpenError:
                out.put(("refused", index))


def run_probers(breaker: CircuitBreaker, threads: int, admitted: Any, release: Event) -> None:
    def probe() -> None:
        with admitted.get_lock():
            admitted.value += 1
        release.wait(30)

    def caller() -> None:
        while not release.is_set():
            try:
                breaker.call(probe)
                return
            except CircuitOpenError:
                time.sleep(0.005)

    started = [threading.Thread(target=caller) for _ in range(threads)]
    for thread in started:
        thread.start()
    for thread in started:
        thread.join(60)


class Fleet:
    def __init__(self, server: RedisServer, prefix: str) -> None:
        self.out: Queue[tuple[Any, ...]] = CONTEXT.Queue()
        self.commands: list[Queue[tuple[Any, ...]]] = [CONTEXT.Queue() for _ in range(WORKERS)]
        self.admitted = CONTEXT.Value("i", 0)
        self.release = CONTEXT.Event()
        self.processes = [
            CONTEXT.Process(
                target=worker,
                args=(
                    index,
                    server.url,
                    prefix,
                    self.commands[index],
                    self.out,
                    self.admitted,
                    self.release,
                ),
                daemon=True,
            )
            for index in range(WORKERS)
        ]
        for process in self.processes:
            process.start()
        ready = {self.get("ready", within=60.0)[1] for _ in range(WORKERS)}
        assert ready == set(range(WORKERS))

    def get(self, kind: str, within: float = 10.0) -> tuple[Any, ...]:
        """The next message of ``kind`` (others are dropped)."""
        deadline = time.monotonic() + within
        while True:
            left = deadline - time.monotonic()
            assert left > 0, f"no {kind!r} message within {within} s"
            message = self.out.get(timeout=left)
            if message[0] == kind:
                return message

    def send(self, *command: Any) -> None:
        for queue in self.commands:
            queue.put(command)

    def stop(self) -> None:
        self.release.set()
        for index, process in enumerate(self.processes):
            if process.is_alive():
                self.commands[index].put(("stop",))
        for process in self.processes:
            process.join(10)
            if process.is_alive():
                process.kill()
                process.join(10)


server = redis_server_fixture("redis-fleet")


@pytest.fixture(scope="module")
def fleet(server: RedisServer) -> Iterator[tuple[Fleet, RedisState]]:
    prefix = f"fleet{os.getpid()}"
    made = Fleet(server, prefix)
    state = RedisState(server.url, prefix=prefix)
    yield made, state
    made.stop()
    state.close()


def test_a_trip_in_one_process_is_seen_by_all_eight_within_250_ms(
    fleet: tuple[Fleet, RedisState],
) -> None:
    workers, state = fleet
    mine = breaker_for(state, "fleet-trips", 1)
    delays: list[float] = []
    for _ in range(10):
        tripped_at = time.time()
        for _ in range(5):
            with pytest.raises((RuntimeError, CircuitOpenError)):
                mine.call(_fail)
        assert mine.state is CircuitState.OPEN
        opened = {}
        while len(opened) < WORKERS:
            _, index, to, at = workers.get("moved")
            if to == "open":
                opened[index] = at - tripped_at
        delays.extend(opened.values())
        state.reset("fleet-trips")
        closed: set[int] = set()
        while len(closed) < WORKERS:
            _, index, to, _ = workers.get("moved")
            if to == "closed":
                closed.add(index)
        deadline = time.monotonic() + 5
        while mine.state is not CircuitState.CLOSED and time.monotonic() < deadline:
            time.sleep(0.005)
    delays.sort()
    p99 = delays[int(0.99 * (len(delays) - 1))]
    assert len(delays) == 10 * WORKERS
    assert p99 <= 0.25, delays


def test_exactly_half_open_calls_probes_across_8_processes_of_16_threads(
    fleet: tuple[Fleet, RedisState],
) -> None:
    workers, state = fleet
    mine = breaker_for(state, "fleet-probes", 2)
    for _ in range(5):
        with pytest.raises((RuntimeError, CircuitOpenError)):
            mine.call(_fail)
    # The workers follow the trip within a sync interval (0.1 s); until then theirs were
    # still closed. Then 128 threads try until released; it half-opens 0.5 s after the trip.
    time.sleep(0.3)
    workers.send("probe")
    time.sleep(2.0)
    assert workers.admitted.value == 2
    workers.release.set()
    done = {workers.get("probed", within=30)[1] for _ in range(WORKERS)}
    assert done == set(range(WORKERS))
    assert workers.admitted.value == 2
    assert state.status("fleet-probes").state == "closed"


def test_a_probe_killed_with_sigkill_gives_its_slot_back_within_the_probe_timeout(
    server: RedisServer, tmp_path: Path
) -> None:
    prefix = f"hung{os.getpid()}"
    state = RedisState(server.url, prefix=prefix)
    mine = breaker_for(state, "fleet-hung", 1)
    out: Queue[tuple[Any, ...]] = CONTEXT.Queue()
    commands: Queue[tuple[Any, ...]] = CONTEXT.Queue()
    admitted, release = CONTEXT.Value("i", 0), CONTEXT.Event()  # alive until the child has them
    process = CONTEXT.Process(
        target=worker,
        args=(0, server.url, prefix, commands, out, admitted, release),
        daemon=True,
    )
    process.start()
    try:
        assert out.get(timeout=60)[0] == "ready"
        for _ in range(5):
            with pytest.raises((RuntimeError, CircuitOpenError)):
                mine.call(_fail)
        time.sleep(0.7)  # past the open duration: the worker's call is the one probe
        commands.put(("hang",))
        message = out.get(timeout=10)
        assert message[0] == "probing", message
        assert process.pid is not None
        os.kill(process.pid, signal.SIGKILL)
        probing_at = message[2]
        with pytest.raises(CircuitOpenError):
            mine.call(lambda: None)  # the probe's slot is taken, by a dead process
        while True:
            try:
                mine.call(lambda: None)
                break
            except CircuitOpenError:
                assert time.time() - probing_at < 3.0, "the slot never came back"
                time.sleep(0.01)
        waited = time.time() - probing_at
        assert 0.9 <= waited <= 1.0 + 0.5, waited  # half_open_timeout=1.0
        assert mine.state is CircuitState.CLOSED
    finally:
        process.kill()
        process.join(10)
        state.close()


def _fail() -> None:
    raise RuntimeError("down")
