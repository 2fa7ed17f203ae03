"""A child forked while other threads use seawall gets usable policies.

The parent keeps threads busy on one shared breaker, policy, retry budget, bulkhead (two of
them parked inside it), transport and the metrics, and forks children meanwhile. Each child
must, within a generous bound, call through every object, find the bulkhead's slots free,
build new policies, scrape the metrics and exit 0. A child that hangs (an inherited lock
taken for ever) is killed and fails the test. POSIX only: real forks, real threads.
"""

from __future__ import annotations

import asyncio
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from prometheus_client import CollectorRegistry, generate_latest

import seawall
from seawall.httpx import ResilientTransport
from seawall.metrics import SeawallCollector

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork (POSIX)")

#: How long a child may take before it is declared hung (a healthy one takes milliseconds).
CHILD_BOUND = 10.0
CHILDREN = 20


def down() -> None:
    raise ConnectionError("down")


class Load:
    """Shared objects, and threads that keep every lock of theirs busy until stopped."""

    def __init__(self) -> None:
        self.stop = threading.Event()
        self.release = threading.Event()
        self.breaker = seawall.CircuitBreaker(minimum_calls=10**6, consecutive_failures=None)
        self.budget = seawall.RetryBudget()
        self.policy = seawall.Policy(
            "forked",
            retry=seawall.Retry(on=ConnectionError, attempts=2, wait=0, budget=self.budget),
            breaker=seawall.CircuitBreaker(minimum_calls=10**6, consecutive_failures=None),
        )
        self.bulkhead = seawall.Bulkhead(2)
        self.transport = ResilientTransport(httpx.MockTransport(lambda r: httpx.Response(200)))
        self.threads: list[threading.Thread] = []
        inside = threading.Barrier(3)
        for _ in range(2):  # two calls parked inside the bulkhead, for the whole test
            self.start(lambda: self.bulkhead.call(lambda: (inside.wait(), self.release.wait())))
        inside.wait(timeout=10)
        self.start(self.loop(lambda: self._try(self.breaker.call, down)))
        self.start(self.loop(lambda: self.breaker.snapshot()))
        self.start(self.loop(lambda: self._try(self.policy.call, down)))
        self.start(self.loop(lambda: seawall.Policy("made-in-a-thread", breaker=True)))
        self.start(self.loop(lambda: generate_latest(_registry())))
        self.host = 0
        self.start(self.loop(self._new_host))
        time.sleep(0.05)  # every thread at work

    def _new_host(self) -> None:
        self.host += 1
        request = httpx.Request("GET", f"http://h{self.host % 5000}.test/")
        self.transport.handle_request(request).close()

    @staticmethod
    def _try(call: Callable[..., Any], fn: Callable[[], Any]) -> None:
        try:
            call(fn)
        except ConnectionError:
            pass

    def loop(self, step: Callable[[], object]) -> Callable[[], None]:
        def run() -> None:
            while not self.stop.is_set():
                step()

        return run

    def start(self, target: Callable[[], object]) -> None:
        thread = threading.Thread(target=target, daemon=True)
        thread.start()
        self.threads.append(thread)

    def close(self) -> None:
        self.stop.set()
        self.release.set()
        for thread in self.threads:
            thread.join(10)


def _registry() -> CollectorRegistry:
    registry = CollectorRegistry()
    registry.register(SeawallCollector())
    return registry


@pytest.fixture
def load() -> Iterator[Load]:
    running = Load()
    yield running
    running.close()


def in_child(load: Load) -> None:
    """What a child does: every object, through both shells; exits 0 if all worked."""
    snapshot = load.bulkhead.snapshot()
    assert snapshot.active == 0, snapshot
    assert snapshot.queued == 0, snapshot
    assert [load.bulkhead.call(lambda: "slot") for _ in range(3)] == ["slot"] * 3
    held = threading.Event()
    inside = threading.Event()
    holders = [
        threading.Thread(target=load.bulkhead.call, args=(lambda: (inside.set(), held.wait()),))
        for _ in range(2)
    ]
    for holder in holders:
        holder.start()
    while load.bulkhead.snapshot().active < 2:  # both slots: the limit is the limit again
        time.sleep(0.001)
    with pytest.raises(seawall.BulkheadFullError):
        load.bulkhead.call(lambda: "third")
    held.set()
    for holder in holders:
        holder.join()
    with pytest.raises(ConnectionError):
        load.breaker.call(down)
    load.breaker.snapshot()
    assert load.policy.call(lambda: "ok") == "ok"
    with pytest.raises(ConnectionError):
        load.policy.call(down)
    assert asyncio.run(load.policy.acall(asyncio.sleep, 0, "async")) == "async"
    seawall.Policy("made-in-the-child", breaker=True, bulkhead=1).call(lambda: None)
    load.transport.handle_request(httpx.Request("GET", "http://child.test/")).close()
    text = generate_latest(_registry()).decode()
    assert 'operation="made-in-the-child"' in text


def fork_and_check(load: Load) -> None:
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        code = 1
        try:
            in_child(load)
            code = 0
        except BaseException as exc:  # reported through the exit status
            os.write(2, f"child failed: {exc!r}\n".encode())
        finally:
            os._exit(code)
    deadline = time.monotonic() + CHILD_BOUND
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            assert os.waitstatus_to_exitcode(status) == 0, "the child's checks failed"
            return
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            pytest.fail(f"a child forked under load hung for {CHILD_BOUND:g} s")
        time.sleep(0.005)


def test_children_forked_under_load_get_usable_policies(load: Load) -> None:
    for _ in range(CHILDREN):
        fork_and_check(load)
        time.sleep(0.01)  # let the threads take their locks again
    # The parent is untouched: its two parked calls still hold the bulkhead.
    assert load.bulkhead.snapshot().active == 2
