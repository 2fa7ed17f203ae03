"""The demo behind ``python -m seawall demo``: one upstream, two clients, one outage.

An HTTP server on 127.0.0.1, in a process of its own (so the clients' load does not slow it
down), plays a schedule (:func:`schedule`: seawall.chaos phases) over ``duration`` seconds:
healthy, a full outage (every request hangs until the upstream comes back), slow responses,
partial errors (a share of fast 503s), recovered. Two clients send it the same open-loop
load (a request every ``1/rate`` seconds each, whatever happened to the previous ones), with
the same one-second httpx timeout: a plain ``httpx.AsyncClient``, and one whose transport is
seawall's :class:`~seawall.httpx.AsyncResilientTransport` with a retry of fast failures
(3 attempts, a retry budget), a circuit breaker, a total timeout and a bulkhead.

Once a second a row shows both clients; at the end, a table of their SLIs. Everything is
measured from the outside: outcomes and latencies by the clients' callers, attempts by the
server (read from its ``/__attempts`` page), the breaker's state by sampling it every 10 ms.

:func:`simulate` (``--simulated``) replays the same story on simulated time: no process and
no sockets, the schedule played by seawall.chaos transports over an in-process upstream;
the load, rows, breaker watch and summary are the same code (:class:`Demo`, given a
:class:`SimulatedUpstream`).
"""

from __future__ import annotations

import asyncio
import contextlib
import http
import json
import math
import random
import signal
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, TextIO

import httpx
from prometheus_client import start_http_server

from seawall import chaos, testing
from seawall._breaker import CircuitBreaker, CircuitState
from seawall._budget import RetryBudget
from seawall._clock import Clock, SystemClock
from seawall._compose import Policy
from seawall._retry import Retry
from seawall.chaos import AsyncChaosTransport
from seawall.httpx import (
    AsyncResilientTransport,
    BulkheadFullHTTPError,
    CircuitOpenHTTPError,
    FailureResponse,
)

if TYPE_CHECKING:
    from seawall import slo
    from seawall._shared import SharedState

__all__ = [
    "PHASES",
    "Call",
    "Demo",
    "SimulatedUpstream",
    "Summary",
    "Upstream",
    "UpstreamProcess",
    "classify",
    "protected_policy",
    "run",
    "schedule",
    "simulate",
    "slo_files",
    "slo_spec",
]

#: The upstream's schedule: each phase and where it ends, as a share of the duration.
PHASES: tuple[tuple[str, float], ...] = (
    ("healthy", 0.10),
    ("outage", 0.30),
    ("slow", 0.40),
    ("flaky", 0.80),
    ("recovered", 1.0),
)
TIMEOUT = 1.0  # both clients' httpx timeout: the usual "one second is plenty"
FLAKY_ERRORS = 0.3  # share of 503s in the flaky phase
CLIENTS = ("plain", "seawall")
HEADER = "x-seawall-demo-client"
STATS_PATH = "/__attempts"


#: Each phase's faults (seawall.chaos), in the order they are drawn: in the flaky phase a 503
#: comes at once, the other calls get the healthy latency.
_HEALTHY = chaos.Latency(0.002, up_to=0.01)
_FAULTS: dict[str, tuple[chaos.Fault, ...]] = {
    "healthy": (_HEALTHY,),
    # A dead dependency that still accepts connections: nothing comes back.
    "outage": (chaos.Hang(),),
    "slow": (chaos.Latency(0.2, up_to=0.45),),
    "flaky": (chaos.Status(503, rate=FLAKY_ERRORS, body=b"unavailable"), _HEALTHY),
    "recovered": (_HEALTHY,),
}


def schedule(duration: float) -> chaos.Schedule:
    """The upstream's schedule over ``duration`` seconds, as seawall.chaos phases: what the
    real upstream's process serves, and what the simulated replay's chaos transports inject.
    Past its end, the last phase (recovered) stays in force."""
    phases = []
    start = 0.0
    for name, end in PHASES:
        phases.append(chaos.Phase(name, end * duration - start, *_FAULTS[name]))
        start = end * duration
    return chaos.Schedule(*phases)


def _phase_end(plan: chaos.Schedule, t: float) -> float:
    """When the phase in force ``t`` seconds after the start ends (``inf``: never)."""
    end = 0.0
    index = plan.index_at(t)
    for phase in plan.phases[: index + 1]:
        if phase.seconds is None:
            return math.inf
        end += phase.seconds
    return end


class UpstreamServer:
    """The dependency: a tiny HTTP/1.1 server (keep-alive, GET only) serving a seawall.chaos
    schedule, counting the attempts each client makes in each phase.

    Each request meets the phase in force when it arrives, and its faults are decided as
    seawall.chaos's injector decides them: each drawn at its rate, added latencies add up,
    and the first drawn that ends the call ends it. A server carries them out as a server
    can: :class:`~seawall.chaos.Latency` is a wait before the answer,
    :class:`~seawall.chaos.Status` the answer, and :class:`~seawall.chaos.Hang` holds the
    request until its phase ends, then drops the connection (a dead dependency that still
    accepts connections). Otherwise: 200.
    """

    SERVED = (chaos.Latency, chaos.Hang, chaos.Status)

    def __init__(self, plan: chaos.Schedule, clock: Clock, rng: random.Random) -> None:
        for fault in plan.faults:
            if not isinstance(fault, self.SERVED) or fault.routed:
                raise ValueError(
                    f"the demo's upstream serves Latency, Hang and Status faults for every "
                    f"request, not {fault!r}"
                )
        self.schedule = plan
        self.clock = clock
        self.rng = rng
        self.started = 0.0
        self.attempts: dict[tuple[str, str], int] = {}
        self.port = 0
        self._server: asyncio.AbstractServer | None = None

    async def start(self, started: float) -> None:
        self.started = started
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 1.0)

    def now(self) -> float:
        return self.clock.monotonic() - self.started

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.split(b"\r\n")
                if lines[0].startswith(b"GET " + STATS_PATH.encode() + b" "):
                    self._write(writer, 200, json.dumps(self.counts()).encode())
                    await writer.drain()
                    continue
                client = "?"
                for line in lines[1:]:
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == HEADER.encode():
                        client = value.strip().decode()
                if not await self._answer(client, writer):
                    return
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
            pass
        except asyncio.CancelledError:
            pass  # the upstream is shutting down: this connection ends with it
        finally:
            writer.close()

    def counts(self) -> dict[str, int]:
        """Attempts by ``"client phase"``, as the stats endpoint serves them."""
        return {f"{client} {phase}": n for (client, phase), n in self.attempts.items()}

    @staticmethod
    def _write(
        writer: asyncio.StreamWriter,
        status: int,
        body: bytes,
        headers: tuple[tuple[str, str], ...] = (),
    ) -> None:
        try:
            reason = http.HTTPStatus(status).phrase.encode()
        except ValueError:  # a code without a standard phrase
            reason = b""
        extra = b"".join(b"%s: %s\r\n" % (k.encode(), v.encode()) for k, v in headers)
        writer.write(
            b"HTTP/1.1 %d %s\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n%s\r\n%s"
            % (status, reason, len(body), extra, body)
        )

    def _decide(self, phase: chaos.Phase) -> tuple[float, chaos.Fault | None]:
        """The wait before answering, and the fault that ends the request (or None)."""
        delay = 0.0
        for fault in phase.faults:
            if fault.rate < 1.0 and self.rng.random() >= fault.rate:
                continue
            if isinstance(fault, chaos.Latency):
                delay += fault.draw(self.rng)
            else:
                return delay, fault
        return delay, None

    async def _answer(self, client: str, writer: asyncio.StreamWriter) -> bool:
        t = self.now()
        phase = self.schedule.phase_at(t)
        key = (client, phase.name)
        self.attempts[key] = self.attempts.get(key, 0) + 1
        delay, fault = self._decide(phase)
        if delay:
            await self.clock.asleep(delay)
        if isinstance(fault, chaos.Hang):
            # Nothing comes back until the phase ends, and then the connection is dropped.
            end = _phase_end(self.schedule, t)
            if math.isinf(end):
                await asyncio.get_running_loop().create_future()  # until the server stops
            await self.clock.asleep(max(0.0, end - self.now()))
            return False
        if isinstance(fault, chaos.Status):
            retry_after = fault.retry_after
            headers = () if retry_after is None else (("Retry-After", str(retry_after)),)
            self._write(writer, fault.code, fault.body, headers)
        else:
            self._write(writer, 200, b"ok")
        await writer.drain()
        return True


async def serve_upstream(duration: float, seed: int) -> None:
    """The upstream's own process (``python -m seawall._demo upstream DURATION SEED``): so
    that the clients' load, seawall's included, does not slow the dependency down. Serves
    :func:`schedule` ``(duration)``. Prints ``port N`` once listening, takes ``start T`` (the
    demo's start on the shared monotonic clock) on stdin, and serves until stdin closes."""
    clock = SystemClock()
    upstream = UpstreamServer(schedule(duration), clock, random.Random(seed))
    await upstream.start(clock.monotonic())
    print(f"port {upstream.port}", flush=True)
    loop = asyncio.get_running_loop()
    line = await loop.run_in_executor(None, sys.stdin.readline)
    upstream.started = float(line.split()[1])
    await loop.run_in_executor(None, sys.stdin.read)
    await upstream.stop()


class Upstream(Protocol):
    """Where the demo's requests go, and what it learns from there: the real upstream's
    process (:class:`UpstreamProcess`) or the simulated replay's (:class:`SimulatedUpstream`).

    ``transport(client)`` gives each client's own transport once, before ``start``; ``url``
    is where to send requests once started; ``go(started)`` starts the schedule at
    ``started`` on the demo's clock; ``refresh`` updates ``attempts`` (what reached the
    upstream, by client and phase) from the upstream's own counts."""

    schedule: chaos.Schedule
    attempts: dict[tuple[str, str], int]

    @property
    def url(self) -> str: ...

    def transport(self, client: str) -> httpx.AsyncBaseTransport: ...

    async def start(self) -> None: ...

    async def go(self, started: float) -> None: ...

    async def refresh(self) -> None: ...

    async def stop(self) -> None: ...


class UpstreamProcess:
    """The parent's handle on the upstream's process, and the attempts it last reported."""

    def __init__(self, duration: float, seed: int) -> None:
        self.duration = duration
        self.seed = seed
        self.schedule = schedule(duration)  # the one the process serves (it builds its own)
        self.port = 0
        self.attempts: dict[tuple[str, str], int] = {}
        self._process: asyncio.subprocess.Process | None = None
        self._client: httpx.AsyncClient | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    def transport(self, client: str) -> httpx.AsyncBaseTransport:
        return httpx.AsyncHTTPTransport(limits=_LIMITS)

    async def start(self) -> None:
        self._process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "seawall._demo",
            "upstream",
            repr(self.duration),
            str(self.seed),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
        )
        assert self._process.stdout is not None
        line = await asyncio.wait_for(self._process.stdout.readline(), 60)
        if not line.startswith(b"port "):
            raise RuntimeError(f"the demo's upstream did not start: {line!r}")
        self.port = int(line.split()[1])
        self._client = httpx.AsyncClient(timeout=5.0, trust_env=False)

    async def go(self, started: float) -> None:
        """Start the schedule at ``started`` (the parent's monotonic clock)."""
        assert self._process is not None
        assert self._process.stdin is not None
        self._process.stdin.write(f"start {started!r}\n".encode())
        await self._process.stdin.drain()

    async def refresh(self) -> None:
        """Fetch the attempts counted so far."""
        assert self._client is not None
        response = await self._client.get(f"http://127.0.0.1:{self.port}{STATS_PATH}")
        counts: dict[str, int] = response.json()
        self.attempts = {tuple(key.split(" ", 1)): n for key, n in counts.items()}  # type: ignore[misc]

    async def stop(self) -> None:
        if self._client is not None:
            await self._client.aclose()
        process = self._process
        if process is not None and process.returncode is None:
            assert process.stdin is not None
            process.stdin.close()
            try:
                await asyncio.wait_for(process.wait(), 5)
            except TimeoutError:
                process.kill()
                await process.wait()


class SimulatedUpstream:
    """The simulated replay's upstream: no process, no sockets. An in-process transport
    answers 200 to whatever reaches it; each client reaches it through an
    :class:`~seawall.chaos.AsyncChaosTransport` of its own playing :func:`schedule`, so the
    faults (the hang, the latencies, the 503s) happen on the way, on the demo's clock (a
    simulation's, for a replay on simulated time).

    ``attempts`` are what reached the upstream, faulted or not: each chaos transport's
    calls by phase (the hung and 503'd attempts never reach the in-process transport, which
    counts in ``answered`` only those it answered)."""

    url = "http://upstream.demo/"  # never resolved: the transports answer in process

    def __init__(self, duration: float, seed: int, clock: Clock) -> None:
        self.schedule = schedule(duration)
        self.clock = clock
        self.started = clock.monotonic()
        self.attempts: dict[tuple[str, str], int] = {}
        self.answered: dict[tuple[str, str], int] = {}
        inner = _Answering(self)
        self.chaos = {
            name: AsyncChaosTransport(
                inner,
                self.schedule,
                enabled=True,
                seed=seed + index,
                name=f"demo-{name}",
                clock=clock,
            )
            for index, name in enumerate(CLIENTS)
        }

    def now(self) -> float:
        return self.clock.monotonic() - self.started

    def transport(self, client: str) -> httpx.AsyncBaseTransport:
        return self.chaos[client]

    async def start(self) -> None:
        pass

    async def go(self, started: float) -> None:
        self.started = started
        for transport in self.chaos.values():
            transport.injector.restart()  # the schedule starts now, on the demo's clock

    async def refresh(self) -> None:
        self.attempts = {
            (name, phase): n
            for name, transport in self.chaos.items()
            for phase, n in transport.injector.snapshot().calls.items()
            if n
        }

    async def stop(self) -> None:
        pass


class _Answering(httpx.AsyncBaseTransport):
    """The simulated upstream itself: 200 to every request that reaches it, counted by the
    client (its header) and the phase in force."""

    def __init__(self, upstream: SimulatedUpstream) -> None:
        self.upstream = upstream

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        upstream = self.upstream
        key = (
            request.headers.get(HEADER, "?"),
            upstream.schedule.phase_at(upstream.now()).name,
        )
        upstream.answered[key] = upstream.answered.get(key, 0) + 1
        return httpx.Response(200, content=b"ok", headers={"content-type": "text/plain"})


@dataclass
class Call:
    """One logical request as its caller saw it."""

    started: float
    ended: float
    outcome: str  # ok, error (a 4xx/5xx), timeout, fast-fail (refused by seawall), failed
    attempts: int = 1  # requests it sent the upstream (retries included; 0 if refused)

    @property
    def latency(self) -> float:
        return self.ended - self.started


@dataclass
class Breaker:
    """The protected client's breaker, as sampled: every change of state, with its time."""

    changes: list[tuple[float, CircuitState]] = field(default_factory=list)

    def note(self, t: float, state: CircuitState) -> None:
        if not self.changes or self.changes[-1][1] is not state:
            self.changes.append((t, state))

    def state(self) -> CircuitState:
        return self.changes[-1][1] if self.changes else CircuitState.CLOSED

    def first(self, state: CircuitState, after: float) -> float | None:
        for t, each in self.changes:
            if each is state and t >= after:
                return t
        return None


def protected_policy(shared: SharedState | None = None) -> Policy:
    """The seawall client's template (copied per host by the transport). Its breaker is
    ``CircuitBreaker()`` with its defaults: they detect an outage and its end within a second
    or two at any call rate, so the demo needs no tuning for its length. With ``shared``
    (``--redis``), the per-host breaker (:data:`OPERATION`) shares its state there."""
    return Policy(
        "demo-upstream",
        total_timeout=2 * TIMEOUT,
        # Fast, safe failures are retried (within a budget); a timeout is not: the upstream
        # is probably struggling already, and the caller has waited long enough.
        retry=Retry(
            on=(httpx.NetworkError, httpx.RemoteProtocolError, FailureResponse),
            attempts=3,
            wait=0.02,
            budget=RetryBudget(),
        ),
        breaker=CircuitBreaker(shared=shared),
        bulkhead=200,
    )


def classify(exc: BaseException | None, response: httpx.Response | None) -> str:
    if exc is None:
        assert response is not None
        return "ok" if response.status_code < 400 else "error"
    if isinstance(exc, CircuitOpenHTTPError | BulkheadFullHTTPError):
        return "fast-fail"
    if isinstance(exc, httpx.TimeoutException):
        return "timeout"
    return "failed"


def _percentile(values: list[float], share: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def _ms(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds * 1000:.0f}ms"


def _share(part: int, whole: int) -> str:
    return "-" if not whole else f"{100 * part / whole:.1f}%"


class Demo:
    """One round of the schedule: the upstream, both clients, the live view and the summary.

    The upstream is the real one's process unless given (the simulated replay gives a
    :class:`SimulatedUpstream`); the rest is the same either way."""

    def __init__(
        self,
        duration: float,
        rate: float,
        out: TextIO,
        clock: Clock,
        seed: int = 7,
        upstream: Upstream | None = None,
        shared: SharedState | None = None,
    ) -> None:
        self.upstream: Upstream = UpstreamProcess(duration, seed) if upstream is None else upstream
        self.schedule = self.upstream.schedule
        self.duration = duration
        self.rate = rate
        self.out = out
        self.clock = clock
        self.calls: dict[str, list[Call]] = {name: [] for name in CLIENTS}
        self.breaker = Breaker()
        self.started = 0.0
        self.transport = AsyncResilientTransport(
            _Counting(self.upstream.transport("seawall")),
            policy=protected_policy(shared),
            # One name for the upstream across rounds (its port changes): "demo-upstream:upstream".
            key=lambda request: "upstream",
        )
        self._tasks: set[asyncio.Task[None]] = set()
        self._refused = 0  # retries the budget refused, up to the last row
        #: Set by Ctrl-C during the round (see _catch_interrupt).
        self.interrupted = False

    def _catch_interrupt(self) -> None:
        """Ctrl-C ends the round, and the demo: noted here, not only as the main task's
        cancellation, which a library awaited at that moment may absorb (the round would then
        go on, and the next one start)."""
        loop = asyncio.get_running_loop()
        main = asyncio.current_task()

        def interrupt() -> None:
            self.interrupted = True
            if main is not None:
                main.cancel()

        try:
            loop.add_signal_handler(signal.SIGINT, interrupt)
        except (NotImplementedError, RuntimeError, ValueError):
            pass  # no signal handlers here (another platform, not the main thread)

    def now(self) -> float:
        return self.clock.monotonic() - self.started

    async def run(self) -> None:
        # trust_env=False: a proxy from the environment must not sit between the demo and its
        # own loopback upstream (and would only apply to the plain client).
        plain = httpx.AsyncClient(
            timeout=TIMEOUT, transport=self.upstream.transport("plain"), trust_env=False
        )
        protected = httpx.AsyncClient(timeout=TIMEOUT, transport=self.transport, trust_env=False)
        watcher: asyncio.Task[None] | None = None
        load: asyncio.Task[None] | None = None
        self._catch_interrupt()
        try:
            await self.upstream.start()
            self.started = self.clock.monotonic()
            await self.upstream.go(self.started)
            url = self.upstream.url
            watcher = asyncio.create_task(self._watch_breaker())
            self._header()
            load = asyncio.create_task(self._load(url, {"plain": plain, "seawall": protected}))
            second = 1
            while second <= int(self.duration) and not self.interrupted:
                await self.clock.asleep(max(0.0, second - self.now()))
                await self.upstream.refresh()
                self._row(second)
                second += 1
            await load
            if self._tasks:  # the last requests: bounded by the clients' timeouts
                await asyncio.wait(self._tasks, timeout=4 * TIMEOUT)
            await self.upstream.refresh()
        finally:
            # Stop making requests before closing the clients (Ctrl-C can land mid-round).
            for task in (load, watcher, *self._tasks):
                if task is not None:
                    task.cancel()
            pending = [task for task in (load, watcher, *self._tasks) if task is not None]
            await asyncio.gather(*pending, return_exceptions=True)
            await plain.aclose()
            await protected.aclose()
            await self.upstream.stop()

    async def _load(self, url: str, clients: dict[str, httpx.AsyncClient]) -> None:
        interval = 1.0 / self.rate
        due = 0.0
        while due < self.duration:
            await self.clock.asleep(max(0.0, due - self.now()))
            for name, client in clients.items():
                task = asyncio.create_task(self._call(name, client, url))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
            due += interval

    async def _call(self, name: str, client: httpx.AsyncClient, url: str) -> None:
        started = self.now()
        response: httpx.Response | None = None
        error: BaseException | None = None
        request = client.build_request("GET", url, headers={HEADER: name})
        try:
            response = await client.send(request)
        except httpx.HTTPError as exc:
            error = exc
        # The plain client sends each call once; the protected one counts its attempts.
        attempts = request.extensions.get(_ATTEMPTS, 0) if name == "seawall" else 1
        self.calls[name].append(Call(started, self.now(), classify(error, response), attempts))

    async def _watch_breaker(self) -> None:
        while True:
            for policy in self.transport.policies().values():
                if policy.breaker is not None:
                    self.breaker.note(self.now(), policy.breaker.state)
            await self.clock.asleep(0.01)

    # -- what is printed ----------------------------------------------------------------------

    def _print(self, text: str = "") -> None:
        print(text, file=self.out, flush=True)

    def _header(self) -> None:
        self._print(f"{'':>4}  {'upstream':<9} | {'without seawall':<31} | with seawall")
        self._print(
            f"{'t':>4}  {'':<9} | {'calls':>5} {'ok':>6} {'p50':>7} {'p99':>7}   "
            f"| {'calls':>5} {'ok':>6} {'fast':>5} {'breaker':<9} {'tries':>5} "
            f"{'budget':>6} {'p50':>7} {'p99':>7}"
        )

    def _row(self, second: int) -> None:
        window = (second - 1.0, float(second))
        parts = []
        for name in CLIENTS:
            done = [c for c in self.calls[name] if window[0] <= c.ended < window[1]]
            ok = sum(c.outcome == "ok" for c in done)
            latencies = [c.latency for c in done]
            cells = [f"{len(done):>5}", f"{_share(ok, len(done)):>6}"]
            if name == "seawall":
                fast = sum(c.outcome == "fast-fail" for c in done)
                # Over the same calls as `calls`: those that finished this second.
                tries = "-" if not done else f"{sum(c.attempts for c in done) / len(done):.2f}"
                cells += [
                    f"{fast:>5}",
                    f"{self.breaker.state().value:<9}",
                    f"{tries:>5}",
                    f"{self._budget_refusals():>6}",
                ]
            cells += [
                f"{_ms(_percentile(latencies, 0.5)):>7}",
                f"{_ms(_percentile(latencies, 0.99)):>7}",
            ]
            parts.append(" ".join(cells))
        phase = self.schedule.phase_at(window[0] + 0.5).name
        self._print(f"{second:>3}s  {phase:<9} | {parts[0]}   | {parts[1]}")

    def refused_retries(self) -> int:
        """Retries the protected client's retry budget has refused so far."""
        return sum(
            policy.retry.snapshot().budget_exhausted
            for policy in self.transport.policies().values()
            if policy.retry is not None
        )

    def _budget_refusals(self) -> int:
        """Retries the budget refused since the last row."""
        total = self.refused_retries()
        this_second, self._refused = total - self._refused, total
        return this_second

    def summary(self) -> Summary:
        return Summary.of(self)


_LIMITS = httpx.Limits(max_connections=1000, max_keepalive_connections=200)
_ATTEMPTS = "seawall_demo.attempts"


class _Counting(httpx.AsyncBaseTransport):
    """The protected client's own transport, counting each request's attempts on it."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        request.extensions[_ATTEMPTS] = request.extensions.get(_ATTEMPTS, 0) + 1
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self.inner.aclose()


@dataclass
class Figures:
    """One client's SLIs over the round."""

    calls: int
    ok: int
    p50: float | None
    p99: float | None
    outage_p50: float | None
    outage_p99: float | None
    attempts: int
    outage_attempts: int
    spared: int  # calls that arrived during the outage, less the attempts it received


@dataclass
class Summary:
    figures: dict[str, Figures]
    detected: float | None  # seconds from the outage's start until the breaker opened
    recovered: float | None  # seconds from the upstream's recovery until the breaker closed
    refused_retries: int = 0  # retries the protected client's budget refused

    @classmethod
    def of(cls, demo: Demo) -> Summary:
        (outage,) = demo.schedule.bounds("outage")
        figures = {}
        for name in CLIENTS:
            calls = demo.calls[name]
            during = [c for c in calls if outage[0] <= c.started < outage[1]]
            figures[name] = Figures(
                calls=len(calls),
                ok=sum(c.outcome == "ok" for c in calls),
                p50=_percentile([c.latency for c in calls], 0.5),
                p99=_percentile([c.latency for c in calls], 0.99),
                outage_p50=_percentile([c.latency for c in during], 0.5),
                outage_p99=_percentile([c.latency for c in during], 0.99),
                attempts=sum(n for (c, _), n in demo.upstream.attempts.items() if c == name),
                outage_attempts=demo.upstream.attempts.get((name, "outage"), 0),
                spared=max(0, len(during) - demo.upstream.attempts.get((name, "outage"), 0)),
            )
        opened = demo.breaker.first(CircuitState.OPEN, after=outage[0])
        closed = demo.breaker.first(CircuitState.CLOSED, after=outage[1])
        return cls(
            figures=figures,
            detected=None if opened is None else opened - outage[0],
            recovered=None if closed is None else closed - outage[1],
            refused_retries=demo.refused_retries(),
        )

    def render(self) -> list[str]:
        plain, guarded = self.figures["plain"], self.figures["seawall"]

        def seconds(value: float | None) -> str:
            return "never" if value is None else f"{value:.2f}s"

        rows = [
            ("logical calls", str(plain.calls), str(guarded.calls)),
            (
                "availability (2xx)",
                _share(plain.ok, plain.calls),
                _share(guarded.ok, guarded.calls),
            ),
            ("latency p50", _ms(plain.p50), _ms(guarded.p50)),
            ("latency p99", _ms(plain.p99), _ms(guarded.p99)),
            ("latency p50 during the outage", _ms(plain.outage_p50), _ms(guarded.outage_p50)),
            ("latency p99 during the outage", _ms(plain.outage_p99), _ms(guarded.outage_p99)),
            ("upstream attempts", str(plain.attempts), str(guarded.attempts)),
            (
                "attempts per call",
                f"{plain.attempts / max(1, plain.calls):.2f}",
                f"{guarded.attempts / max(1, guarded.calls):.2f}",
            ),
            (
                "attempts on the dead upstream",
                str(plain.outage_attempts),
                str(guarded.outage_attempts),
            ),
            ("calls spared from the dead upstream", str(plain.spared), str(guarded.spared)),
            ("retries refused by the budget", "-", str(self.refused_retries)),
            ("time to detect the outage", "-", seconds(self.detected)),
            ("time to recover after it", "-", seconds(self.recovered)),
        ]
        width = max(len(row[0]) for row in rows)
        lines = [f"{'SLI':<{width}}  {'without seawall':>15}  {'with seawall':>12}"]
        lines.append("-" * len(lines[0]))
        lines += [f"{a:<{width}}  {b:>15}  {c:>12}" for a, b, c in rows]
        return lines


#: The protected client's operation: its policy's per-host copy, one key for the upstream.
OPERATION = "demo-upstream:upstream"


def slo_spec() -> slo.Spec:
    """SLOs on the protected client's operation, as a service would write them: 99% of its
    calls succeed, and 99% of its successful calls take at most 0.25 s (a bucket bound)."""
    from seawall import slo

    return slo.Spec(
        service="seawall-demo",
        slos=(
            slo.SLO("demo-upstream-availability", OPERATION, "availability", 99.0),
            slo.SLO("demo-upstream-latency", OPERATION, "latency", 99.0, threshold=0.25),
        ),
    )


def slo_files() -> tuple[Path, list[Path]] | None:
    """Generate :func:`slo_spec`'s rules, dashboard and runbooks (``seawall.slo``) into a new
    directory under the system's temporary directory, left there to read: the directory and
    the files written. ``None`` without PyYAML (the ``slo`` extra), which writes the rules."""
    try:
        import yaml  # noqa: F401
    except ImportError:
        return None
    from seawall import slo

    directory = Path(tempfile.mkdtemp(prefix="seawall-demo-slo-"))
    return directory, slo.generate(slo_spec(), directory)


def _slo_lines() -> str:
    """Where :func:`slo_files` wrote the demo's SLO files, for the header ("" without
    PyYAML)."""
    made = slo_files()
    if made is None:
        return ""
    directory, written = made
    lines = [f"SLO rules, dashboard and runbooks for {OPERATION} (seawall.slo): {directory}"]
    lines += [f"  {path}" for path in written]
    return "\n  " + "\n  ".join(lines)


def _intro(duration: float, rate: float, last: str) -> str:
    """The header: the story, its schedule, and ``last`` (where the metrics are)."""
    plan = schedule(duration)
    phases = ", ".join(
        f"{name} {start:.1f}-{end:.1f}s" for name, _ in PHASES for start, end in plan.bounds(name)
    )
    return (
        f"seawall demo: {duration:g}s of an upstream's life, {rate:g} requests/s per client\n"
        f"  schedule: {phases}\n  {last}\n"
    )


def _conclude(summary: Summary, stream: TextIO) -> None:
    print("", file=stream)
    for line in summary.render():
        print(line, file=stream)
    print("", file=stream, flush=True)


def simulate(
    *, duration: float = 30.0, rate: float = 40.0, out: TextIO | None = None, seed: int = 7
) -> Summary:
    """The demo's story replayed on simulated time (``python -m seawall demo --simulated``):
    the same schedule, load, rows and summary, on a :func:`seawall.testing.simulated` loop
    whose clock jumps to its next timer. No upstream process and no sockets: each client's
    transport is an :class:`~seawall.chaos.AsyncChaosTransport` playing the schedule over an
    in-process upstream (:class:`SimulatedUpstream`), the protected one under seawall's
    transport as in the real demo. The same ``seed``, the same output, every run."""
    stream = sys.stdout if out is None else out
    print(
        _intro(
            duration,
            rate,
            "simulated replay: simulated time, an in-process upstream, no sockets "
            "(and no Prometheus metrics served)",
        ),
        file=stream,
        flush=True,
    )
    with testing.simulated(seed=seed) as simulation:
        # Built inside: the protected client's policy takes the simulation's clock.
        upstream = SimulatedUpstream(duration, seed, simulation.clock)
        demo = Demo(duration, rate, stream, simulation.clock, seed=seed, upstream=upstream)
        simulation.run(demo.run())
        summary = demo.summary()
    _conclude(summary, stream)
    return summary


def run(
    *,
    duration: float = 30.0,
    port: int = 9464,
    rate: float = 40.0,
    serve: bool = False,
    out: TextIO | None = None,
    simulated: bool = False,
    redis: str | None = None,
    prefix: str = "seawall",
) -> int:
    """Run the demo (one round, or rounds until interrupted with ``serve``); 0 when done.
    ``simulated``: one round replayed on simulated time instead (:func:`simulate`; no
    metrics port). ``redis``: a Redis URL where the protected client's breaker shares its
    state (``seawall.redis.RedisState``, keys under ``prefix``); not with ``simulated``,
    since Redis decides on its own real clock. 1 if Redis or the metrics port is not there."""
    stream = sys.stdout if out is None else out
    if simulated:
        if redis is not None:
            raise ValueError("a simulated replay cannot share Redis's real clock: no redis")
        try:
            simulate(duration=duration, rate=rate, out=stream)
        except KeyboardInterrupt:
            pass
        return 0
    shared = None
    sharing = ""
    if redis is not None:
        made = _shared_state(redis, prefix)
        if isinstance(made, str):
            print(made, file=sys.stderr, flush=True)
            return 1
        shared, sharing = made
    try:
        return _live(duration, port, rate, serve, stream, shared, sharing)
    finally:
        if shared is not None:
            shared.close()


def _shared_state(url: str, prefix: str) -> tuple[SharedState, str] | str:
    """``--redis``: the shared state and the header's lines about it, or why Redis is not
    there (one line)."""
    from redis import RedisError

    from seawall.redis import RedisState

    shared = RedisState(url, prefix=prefix)
    shown = _without_password(url)
    try:
        now = shared.status(OPERATION)
    except RedisError as exc:
        shared.close()
        detail = " ".join(str(exc).split()) or type(exc).__name__
        return f"cannot reach Redis at {shown}: {detail}"
    command = f"python -m seawall breaker status {OPERATION} --redis {shown}"
    if prefix != "seawall":
        command += f" --prefix {prefix}"
    lines = [
        f"shared breaker state: {shown} (prefix {prefix!r}), {OPERATION} {now.state} "
        f"(generation {now.generation})",
        f"  watch it: {command}",
    ]
    if now.state in ("forced_open", "disabled"):
        lines.append(
            f"  it was switched {now.state} and stays so until: "
            + command.replace(" status ", " reset ", 1)
        )
    return shared, "\n  " + "\n  ".join(lines)


def _without_password(url: str) -> str:
    scheme, sep, rest = url.partition("://")
    head, slash, tail = rest.partition("/")
    if "@" in head:
        head = head.rsplit("@", 1)[1]
    return f"{scheme}{sep}{head}{slash}{tail}"


def _live(
    duration: float,
    port: int,
    rate: float,
    serve: bool,
    stream: TextIO,
    shared: SharedState | None,
    sharing: str,
) -> int:
    """The live demo's rounds, against the upstream's process, on the system clock."""
    clock = SystemClock()  # the upstream's process runs on the system clock too
    try:
        server, thread = start_http_server(port, addr="127.0.0.1")
    except OSError as exc:
        print(f"cannot serve metrics on 127.0.0.1:{port}: {exc} (try --port 0)", file=stream)
        return 1
    metrics = f"http://127.0.0.1:{server.server_port}/metrics"
    last = f"Prometheus metrics: {metrics}" + sharing + _slo_lines()
    print(_intro(duration, rate, last), file=stream, flush=True)
    rounds = 0
    try:
        while True:
            demo = Demo(duration, rate, stream, clock, seed=7 + rounds, shared=shared)
            try:
                asyncio.run(demo.run())
            except asyncio.CancelledError:
                if not demo.interrupted:
                    raise
            if demo.interrupted:
                return 0
            rounds += 1
            _conclude(demo.summary(), stream)
            if not serve:
                return 0
            print(f"round {rounds} done; again (Ctrl-C to stop; metrics: {metrics})\n", file=stream)
    except KeyboardInterrupt:
        return 0
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


if __name__ == "__main__":  # the upstream's process: python -m seawall._demo upstream D SEED
    if sys.argv[1:2] != ["upstream"] or len(sys.argv) != 4:
        sys.exit("usage: python -m seawall._demo upstream DURATION SEED")
    # Ctrl-C reaches the whole terminal's process group: the demo stops this process itself
    # (by closing its stdin), after its last requests.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    asyncio.run(serve_upstream(float(sys.argv[2]), int(sys.argv[3])))
