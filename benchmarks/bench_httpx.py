"""httpx transports on a loopback server: time per request, plain httpx against the wrappers.

Clients that share nothing, each with its own loopback server (127.0.0.1, port 0, one
asyncio thread serving all of them; HTTP/1.1 keep-alive, a fixed 2-byte 200 response):

- ``httpx``: a plain ``httpx.Client()`` (the baseline);
- ``seawall ResilientTransport``: ``httpx.Client(transport=seawall.httpx.ResilientTransport(
  policy=...))`` with a full policy: retry (3 attempts on the transport's default predicate,
  with a retry budget), circuit breaker, a 5 s attempt timeout and a bulkhead of 100; metrics on;
- ``seawall default policy [info]`` (sync only): ``ResilientTransport()`` with its
  ``default_policy()`` (retry + breaker), to show what the timeout and bulkhead cost;
- ``httpx-retries RetryTransport``: ``httpx.Client(transport=httpx_retries.RetryTransport(
  retry=httpx_retries.Retry(total=3)))``.

Method: each client is warmed up (200 requests; its keep-alive connection open), then the
clients take turns in interleaved rounds (4 x ``--rounds`` sync and as many async; 25 GET
requests per client per round at the default ``--sample-time``, scaled with it; the order
rotates every round; the garbage collector is off while a round runs). Every request is
timed on its own with ``time.perf_counter`` and its body read; every response must be a 200
with the expected body, and each server must have seen exactly as many requests as its client
sent (no retry, no second attempt).

In the table, ``ns/call`` is the best round's median time per request, ``(median)`` columns use
the median over rounds, ``x httpx`` is the **paired** figure: the median over rounds of (the
client's median / plain httpx's median in the same round), and ``(min)`` the ratio of the best
rounds. The pooled median and p90 over every request are in the notes.

The bars: seawall's transport adds at most 5% to a sync request: its median time per request
<= 1.05 x plain httpx's (sync, paired); and at most 3% to an async one (``httpx.AsyncClient``
with ``AsyncResilientTransport``: <= 1.03 x, paired).

Run: ``python benchmarks/run.py httpx`` (or ``python benchmarks/bench_httpx.py``).
"""

from __future__ import annotations

import asyncio
import gc
import statistics
import sys
import threading
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from _harness import (
    Bar,
    Row,
    RunConfig,
    Skipped,
    Suite,
    SuiteResult,
    Table,
    cli,
    dist_version,
)

BAR_LIMIT = 1.05
ASYNC_BAR_LIMIT = 1.03
ATTEMPTS = 3
ATTEMPT_TIMEOUT = 5.0
BULKHEAD = 100
WARMUP = 200
#: Requests per client per round at the default --sample-time (scaled with it): short rounds
#: (~25 ms here), so that a swing in machine speed hits the clients of a round alike.
REQUESTS_PER_ROUND = 25
#: Rounds per --rounds: many short rounds rather than few long ones.
ROUNDS_PER_ROUND = 4
DEFAULT_SAMPLE_TIME = RunConfig.sample_time

PLAIN = "httpx"
SEAWALL = "seawall ResilientTransport"
SEAWALL_DEFAULT = "seawall default policy [info]"
RETRIES = "httpx-retries RetryTransport"

BODY = b"ok"
RESPONSE = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n\r\n%s" % (
    len(BODY),
    BODY,
)


# -- the loopback servers ----------------------------------------------------------------------


class _Counter:
    def __init__(self) -> None:
        self.requests = 0


class _Protocol(asyncio.Protocol):
    """Answers every request (a GET: headers only, no body) with :data:`RESPONSE`."""

    def __init__(self, counter: _Counter) -> None:
        self.counter = counter
        self.buffer = b""
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        buffer = self.buffer + data
        end = buffer.find(b"\r\n\r\n")
        while end >= 0:
            buffer = buffer[end + 4 :]
            self.counter.requests += 1
            assert self.transport is not None
            self.transport.write(RESPONSE)
            end = buffer.find(b"\r\n\r\n")
        self.buffer = buffer


class LoopbackServers:
    """Servers on 127.0.0.1 (one port each), run by one asyncio event loop in a daemon thread."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._servers: list[asyncio.AbstractServer] = []
        self._thread = threading.Thread(
            target=self.loop.run_forever, name="bench-httpx-server", daemon=True
        )
        self._thread.start()

    def add(self) -> tuple[str, _Counter]:
        """A new server: its base URL and its request counter."""
        counter = _Counter()

        async def start() -> asyncio.AbstractServer:
            return await self.loop.create_server(
                lambda: _Protocol(counter), "127.0.0.1", 0, backlog=16
            )

        server = asyncio.run_coroutine_threadsafe(start(), self.loop).result(timeout=10)
        self._servers.append(server)
        port = server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}/", counter

    def close(self) -> None:
        async def stop() -> None:
            for server in self._servers:
                server.close()
            for server in self._servers:
                await server.wait_closed()

        try:
            asyncio.run_coroutine_threadsafe(stop(), self.loop).result(timeout=10)
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(timeout=10)
            self.loop.close()


# -- candidates --------------------------------------------------------------------------------


@dataclass
class Client:
    """One client under test. ``get`` sends one request and reads it; ``bad`` counts responses
    that were not the expected 200."""

    name: str
    package: str | None
    get: Callable[[], Any]
    close: Callable[[], Any]
    counter: _Counter
    check: Callable[[], str | None] = lambda: None
    note: str = ""
    sent: int = 0
    bad: list[str] = field(default_factory=list)


def _policy(name: str) -> Any:
    import httpx

    import seawall
    import seawall.httpx

    return seawall.Policy(
        name,
        # The transport's own default predicate (see seawall.httpx.default_policy).
        retry=seawall.Retry(
            on=(httpx.TransportError, seawall.httpx.FailureResponse),
            attempts=ATTEMPTS,
            budget=seawall.RetryBudget(),
        ),
        breaker=seawall.CircuitBreaker(),
        attempt_timeout=ATTEMPT_TIMEOUT,
        bulkhead=seawall.Bulkhead(BULKHEAD),
    )


POLICY_NOTE = (
    f"Policy(retry=Retry(on=(httpx.TransportError, FailureResponse), attempts={ATTEMPTS}, "
    f"budget=RetryBudget()), breaker=CircuitBreaker(), attempt_timeout={ATTEMPT_TIMEOUT:g}, "
    f"bulkhead=Bulkhead({BULKHEAD})), per host; metrics on"
)


def _seawall_check(transport: Any) -> Callable[[], str | None]:
    def check() -> str | None:
        policies = transport.policies()
        if len(policies) != 1:
            return f"expected one per-host policy, got {list(policies)}"
        (policy,) = policies.values()
        problems = []
        retry = policy.retry.snapshot()
        others = sum(n for key, n in retry.calls.items() if key != ("success", False))
        if not retry.calls.get(("success", False)) or others or retry.retries:
            problems.append(f"retry {retry}")
        breaker = policy.breaker.snapshot()
        if breaker.state != "closed" or breaker.failures or breaker.rejected:
            problems.append(f"breaker {breaker}")
        bulkhead = policy.bulkhead.snapshot()
        if bulkhead.active or bulkhead.queued or bulkhead.rejected or not bulkhead.admitted:
            problems.append(f"bulkhead {bulkhead}")
        counts = policy.attempt_timeout._counts.as_dict()
        if not counts["success"] or any(v for k, v in counts.items() if k != "success"):
            problems.append(f"attempt timeout {counts}")
        return "not on the success path: " + "; ".join(problems) if problems else None

    return check


def _sync_getter(client: Any, url: str, box: list[Client]) -> Callable[[], None]:
    def get() -> None:
        response = client.get(url)
        response.read()
        if response.status_code != 200 or response.content != BODY:
            box[0].bad.append(f"{response.status_code} {response.content[:40]!r}")

    return get


def _async_getter(client: Any, url: str, box: list[Client]) -> Callable[[], Awaitable[None]]:
    async def get() -> None:
        response = await client.get(url)
        await response.aread()
        if response.status_code != 200 or response.content != BODY:
            box[0].bad.append(f"{response.status_code} {response.content[:40]!r}")

    return get


def _client(
    name: str,
    package: str | None,
    http: Any,
    servers: LoopbackServers,
    *,
    asynchronous: bool,
    check: Callable[[], str | None] = lambda: None,
    note: str = "",
) -> Client:
    url, counter = servers.add()
    box: list[Client] = []
    if asynchronous:
        get: Callable[[], Any] = _async_getter(http, url, box)
        close: Callable[[], Any] = http.aclose
    else:
        get = _sync_getter(http, url, box)
        close = http.close
    box.append(Client(name, package, get, close, counter, check, note))
    return box[0]


def plain(servers: LoopbackServers, asynchronous: bool) -> Client:
    import httpx

    http = httpx.AsyncClient() if asynchronous else httpx.Client()
    return _client(PLAIN, "httpx", http, servers, asynchronous=asynchronous)


def with_seawall(servers: LoopbackServers, asynchronous: bool) -> Client:
    import httpx

    import seawall.httpx

    if asynchronous:
        transport: Any = seawall.httpx.AsyncResilientTransport(policy=_policy("bench-httpx-async"))
        http: Any = httpx.AsyncClient(transport=transport)
    else:
        transport = seawall.httpx.ResilientTransport(policy=_policy("bench-httpx"))
        http = httpx.Client(transport=transport)
    return _client(
        SEAWALL,
        "seawall",
        http,
        servers,
        asynchronous=asynchronous,
        check=_seawall_check(transport),
        note=POLICY_NOTE,
    )


def with_seawall_default(servers: LoopbackServers, asynchronous: bool) -> Client | None:
    if asynchronous:
        return None  # sync only: it tells where the time goes, not a figure to compare
    import httpx

    import seawall.httpx

    transport = seawall.httpx.ResilientTransport()
    return _client(
        SEAWALL_DEFAULT,
        "seawall",
        httpx.Client(transport=transport),
        servers,
        asynchronous=False,
        note="the transport's default_policy(): retry (3 attempts, budget) + breaker, "
        "no attempt timeout, no bulkhead; for comparison",
    )


def with_httpx_retries(servers: LoopbackServers, asynchronous: bool) -> Client:
    import httpx
    import httpx_retries

    transport = httpx_retries.RetryTransport(retry=httpx_retries.Retry(total=ATTEMPTS))
    http = (
        httpx.AsyncClient(transport=transport)
        if asynchronous
        else httpx.Client(transport=transport)
    )
    return _client(
        RETRIES,
        "httpx-retries",
        http,
        servers,
        asynchronous=asynchronous,
        note=f"Retry(total={ATTEMPTS}), otherwise its defaults",
    )


BUILDERS: list[tuple[str, Callable[[LoopbackServers, bool], Client | None]]] = [
    (PLAIN, plain),
    (SEAWALL, with_seawall),
    (SEAWALL_DEFAULT, with_seawall_default),
    (RETRIES, with_httpx_retries),
]


# -- timing ------------------------------------------------------------------------------------


@dataclass
class Timings:
    #: Seconds per request, every request, in order.
    times: list[float] = field(default_factory=list)
    #: Median seconds per request of each round, in round order.
    round_medians: list[float] = field(default_factory=list)


def _rotations(names: Sequence[str], rounds: int) -> list[list[str]]:
    return [[*names[r % len(names) :], *names[: r % len(names)]] for r in range(rounds)]


class _GcPaused:
    def __enter__(self) -> None:
        self._was_enabled = gc.isenabled()
        gc.collect()
        gc.disable()

    def __exit__(self, *exc: object) -> None:
        if self._was_enabled:
            gc.enable()


def _time_sync(get: Callable[[], Any], n: int) -> list[float]:
    clock = time.perf_counter
    times = []
    for _ in range(n):
        start = clock()
        get()
        times.append(clock() - start)
    return times


async def _time_async(get: Callable[[], Awaitable[Any]], n: int) -> list[float]:
    clock = time.perf_counter
    times = []
    for _ in range(n):
        start = clock()
        await get()
        times.append(clock() - start)
    return times


async def _measure(
    clients: Sequence[Client], rounds: int, n: int, asynchronous: bool
) -> dict[str, Timings]:
    async def batch(client: Client, count: int) -> list[float]:
        times = (
            await _time_async(client.get, count) if asynchronous else _time_sync(client.get, count)
        )
        client.sent += count
        return times

    for client in clients:
        await batch(client, WARMUP)
    results = {c.name: Timings() for c in clients}
    by_name = {c.name: c for c in clients}
    for order in _rotations([c.name for c in clients], rounds):
        with _GcPaused():
            for name in order:
                times = await batch(by_name[name], n)
                results[name].times += times
                results[name].round_medians.append(statistics.median(times))
    return results


def _drive(coro: Any) -> Any:
    """Run a coroutine that never suspends (the sync clients) without an event loop."""
    try:
        coro.send(None)
    except StopIteration as done:
        return done.value
    coro.close()
    raise RuntimeError("a sync client's timing loop suspended")


# -- the tables --------------------------------------------------------------------------------


@dataclass
class Outcome:
    table: Table
    #: name -> (pooled median s, pooled p90 s)
    pooled: dict[str, tuple[float, float]]
    #: name -> (paired ratio, ratio of pooled medians) to plain httpx
    ratios: dict[str, tuple[float, float]]
    invalid: list[str]


def _p90(values: Sequence[float]) -> float:
    return statistics.quantiles(values, n=10, method="inclusive")[-1]


def _table(title: str, asynchronous: bool, config: RunConfig) -> Outcome | None:
    n = max(10, round(REQUESTS_PER_ROUND * config.sample_time / DEFAULT_SAMPLE_TIME))
    rounds = config.rounds * ROUNDS_PER_ROUND
    servers = LoopbackServers()
    clients: list[Client] = []
    skipped: list[Skipped] = []
    try:
        for name, build in BUILDERS:
            try:
                client = build(servers, asynchronous)
            except ImportError as exc:
                skipped.append(Skipped(name, f"not installed ({exc})"))
            except Exception as exc:
                skipped.append(Skipped(name, f"setup failed: {type(exc).__name__}: {exc}"))
            else:
                if client is not None:
                    clients.append(client)
        if not clients or clients[0].name != PLAIN:
            return None

        async def measured() -> dict[str, Timings]:
            try:
                return await _measure(clients, rounds, n, asynchronous)
            finally:
                for client in clients:
                    closed = client.close()
                    if asynchronous:
                        await closed

        timings = asyncio.run(measured()) if asynchronous else _drive(measured())
    finally:
        servers.close()

    problems: dict[str, str] = {}
    for client in clients:
        found = []
        if client.bad:
            found.append(f"{len(client.bad)} bad responses, first {client.bad[0]}")
        if client.counter.requests != client.sent:
            found.append(f"server saw {client.counter.requests} requests for {client.sent} sent")
        try:
            problem = client.check()
        except Exception as exc:
            problem = f"check raised {type(exc).__name__}: {exc}"
        if problem:
            found.append(problem)
        if found:
            problems[client.name] = "; ".join(found)

    base = timings[PLAIN]
    base_best = min(base.round_medians)
    base_median = statistics.median(base.round_medians)
    rows: list[Row] = []
    pooled: dict[str, tuple[float, float]] = {}
    ratios: dict[str, tuple[float, float]] = {}
    for client in clients:
        t = timings[client.name]
        best = min(t.round_medians)
        median = statistics.median(t.round_medians)
        pooled[client.name] = (statistics.median(t.times), _p90(t.times))
        is_base = client.name == PLAIN
        ratio = ratio_min = None
        if not is_base:
            ratio = statistics.median(
                c / b for c, b in zip(t.round_medians, base.round_medians, strict=True)
            )
            ratio_min = best / base_best
            ratios[client.name] = (ratio, pooled[client.name][0] / statistics.median(base.times))
        note = client.note
        if client.name in problems:
            note = f"INVALID: {problems[client.name]}" + (f"; {note}" if note else "")
        rows.append(
            Row(
                candidate=client.name,
                package=client.package,
                version=dist_version(client.package),
                per_call_ns=best * 1e9,
                per_call_ns_median=median * 1e9,
                overhead_ns=None if is_base else (best - base_best) * 1e9,
                overhead_ns_median=None if is_base else (median - base_median) * 1e9,
                ratio=ratio,
                ratio_min=ratio_min,
                calls_per_sample=n,
                samples_ns=[s * 1e9 for s in t.round_medians],
                note=note,
            )
        )
    table = Table(title, "async" if asynchronous else "sync", PLAIN, rows, skipped)
    return Outcome(table, pooled, ratios, list(problems))


def _pooled_note(kind: str, outcome: Outcome) -> str:
    base = outcome.pooled[PLAIN][0]
    parts = []
    for name, (median, p90) in outcome.pooled.items():
        text = f"{name} median {median * 1e6:.1f} us, p90 {p90 * 1e6:.1f} us"
        if name != PLAIN:
            text += f" ({median / base:.3f} x)"
        parts.append(text)
    return f"{kind}, every request pooled: " + "; ".join(parts)


def _transport_bar(
    outcome: Outcome | None, bar_id: str, transport: str, kind: str, limit: float
) -> Bar:
    """The bar on seawall's transport: its median time per request <= ``limit`` x plain
    httpx's, paired per round."""
    ratio = None if outcome is None else outcome.ratios.get(SEAWALL)
    invalid = [] if outcome is None else [n for n in outcome.invalid if n in (PLAIN, SEAWALL)]
    if ratio is None:
        detail = f"seawall's {kind} transport could not be set up"
    else:
        detail = f"paired per-round median; ratio of pooled medians {ratio[1]:.3f}"
    if invalid:
        detail += f"; failed the sanity checks: {', '.join(invalid)}"
    return Bar(
        id=bar_id,
        description=(
            f"seawall {transport} median time per request <= {limit:g} x plain httpx's "
            f"({kind}, loopback)"
        ),
        limit=limit,
        measured=None if ratio is None else ratio[0],
        detail=detail,
        valid=not invalid,
    )


def run(config: RunConfig) -> SuiteResult:
    result = SuiteResult("httpx")
    try:
        import httpx  # noqa: F401
    except ImportError:
        result.notes.append("httpx is not installed: nothing to measure")
        return result

    sync = _table(
        "sync: httpx.Client GET on a loopback keep-alive server; ns/call = median time per "
        "request (best round), x httpx = paired ratio of times",
        False,
        config,
    )
    asynchronous = _table("async: httpx.AsyncClient GET, same servers and method", True, config)
    if sync is None:
        result.notes.append("plain httpx could not be set up: nothing to measure")
        return result
    result.tables.append(sync.table)
    if asynchronous is not None:
        result.tables.append(asynchronous.table)

    result.bars.append(
        _transport_bar(sync, "httpx_transport_overhead", "ResilientTransport", "sync", BAR_LIMIT)
    )
    result.bars.append(
        _transport_bar(
            asynchronous,
            "httpx_async_transport_overhead",
            "AsyncResilientTransport",
            "async",
            ASYNC_BAR_LIMIT,
        )
    )

    result.notes.append(_pooled_note("sync", sync))
    if asynchronous is not None:
        result.notes.append(_pooled_note("async", asynchronous))
        for name in (RETRIES,):
            if name in asynchronous.ratios:
                paired, pooled = asynchronous.ratios[name]
                result.notes.append(
                    f"async (reported, not a bar): {name} = {paired:.3f} x plain httpx "
                    f"(paired; pooled medians {pooled:.3f})"
                    + (" [INVALID]" if name in asynchronous.invalid else "")
                )
    result.notes.append(
        "every response checked to be a 200 with the expected body; each server saw exactly "
        "one request per request sent; seawall's per-host policy checked to be on the success "
        "path (no retry, breaker closed, bulkhead empty, no timeout)"
    )
    return result


SUITE = Suite("httpx", "httpx transports: time per request on loopback vs plain httpx", run)

if __name__ == "__main__":
    sys.exit(cli(sys.argv[1:], {SUITE.name: SUITE}))
