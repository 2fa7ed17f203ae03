"""httpx clients, sync and async, made resilient by seawall's transports.

Two tiny HTTP servers run on 127.0.0.1 in background threads:

- ``api``, healthy but with two awkward endpoints: ``/flaky`` answers 503 to every other
  request, ``/busy`` answers 429 with ``Retry-After: 1`` to every other request;
- ``legacy``, down (500 on every request) until the demo brings it back.

A ``seawall.httpx.ResilientTransport`` (for ``httpx.Client``) or ``AsyncResilientTransport``
(for ``httpx.AsyncClient``) retries the 503, waits as the 429 asks before retrying (that is
back-pressure: it never counts against the breaker), and keeps one circuit breaker per host:
``legacy``'s opens and fails its requests fast with ``CircuitOpenHTTPError`` (an
``httpx.TransportError``) while ``api``'s stays closed.

Run it: ``python examples/httpx_clients.py`` (two or three seconds).
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx

import seawall
from seawall.httpx import AsyncResilientTransport, CircuitOpenHTTPError, ResilientTransport

START = time.perf_counter()


def log(message: str) -> None:
    """Print with the time since start, to show what happens when."""
    print(f"[{(time.perf_counter() - START) * 1000:6.1f} ms] {message}")


# -- the servers -----------------------------------------------------------------------------


class Server(ThreadingHTTPServer):
    """An HTTP server on 127.0.0.1 (a free port) that counts the requests it gets by path."""

    daemon_threads = True

    def __init__(self, *, down: bool = False) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.down = down
        self.hits: Counter[str] = Counter()
        self.url = f"http://127.0.0.1:{self.server_address[1]}"

    def handle_error(self, request: object, client_address: object) -> None:
        # A response the client retries is closed unread, so httpx drops its keep-alive
        # connection and the server sees a reset. Not worth a traceback here.
        pass


class Handler(BaseHTTPRequestHandler):
    server: Server
    protocol_version = "HTTP/1.1"  # keep-alive, as real services do

    def do_GET(self) -> None:
        server = self.server
        server.hits[self.path] += 1
        hit = server.hits[self.path]
        if server.down:
            self.reply(500, "internal error")
        elif self.path == "/flaky" and hit % 2 == 1:
            self.reply(503, "overloaded, try again")  # no Retry-After: a plain failure
        elif self.path == "/busy" and hit % 2 == 1:
            self.reply(429, "slow down", {"Retry-After": "1"})
        else:
            self.reply(200, f"ok ({self.path}, request #{hit})")

    def reply(self, status: int, text: str, headers: dict[str, str] | None = None) -> None:
        body = text.encode()
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass  # keep the demo's output readable


@contextmanager
def running(server: Server) -> Iterator[Server]:
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


# -- the clients' policy ---------------------------------------------------------------------


def template(name: str) -> seawall.Policy:
    """The transport copies this policy for each host it talks to (named ``name:host:port``).

    Like ``seawall.httpx.default_policy()``, with small numbers for a quick demo."""
    return seawall.Policy(
        name,
        retry=seawall.Retry(
            on=(httpx.TransportError, seawall.httpx.FailureResponse),  # what the default retries
            attempts=3,
            wait=0.05,  # a Retry-After longer than this wins
            budget=seawall.RetryBudget(),  # each host gets its own budget
        ),
        breaker=seawall.CircuitBreaker(
            failure_ratio=0.5,
            minimum_calls=4,
            window_calls=10,
            open_duration=0.5,
            half_open_calls=1,
        ),
    )


# The server asks for 1 s; max_retry_after caps what a client waits (default 30 s).
MAX_RETRY_AFTER = 0.25


def describe(transport: ResilientTransport | AsyncResilientTransport) -> None:
    """The per-host policies the transport made, and their numbers."""
    for policy in transport.policies().values():
        assert policy.retry is not None
        assert policy.breaker is not None
        retry, breaker = policy.retry.snapshot(), policy.breaker.snapshot()
        log(
            f"  {policy.name}: breaker {breaker.state} (successes={breaker.successes} "
            f"failures={breaker.failures} ignored={breaker.ignored} "
            f"rejected={breaker.rejected}); retries={retry.retries}"
        )


def outcome(response: httpx.Response, took: float) -> str:
    return f"{response.status_code} {response.text!r} in {took * 1000:.0f} ms"


def refused(exc: CircuitOpenHTTPError, took: float) -> str:
    return f"CircuitOpenHTTPError, retry_after={exc.retry_after:.2f} s, in {took * 1000:.0f} ms"


# -- sync ------------------------------------------------------------------------------------


def sync_demo(api: Server, legacy: Server) -> None:
    transport = ResilientTransport(policy=template("sync"), max_retry_after=MAX_RETRY_AFTER)
    with httpx.Client(transport=transport, timeout=2.0) as client:

        def get(url: str) -> None:
            started = time.perf_counter()
            try:
                response = client.get(url)
            except CircuitOpenHTTPError as exc:  # also an httpx.TransportError
                log(f"GET {url} -> {refused(exc, time.perf_counter() - started)}")
                return
            log(f"GET {url} -> {outcome(response, time.perf_counter() - started)}")

        log("sync: a 503 is retried, and the caller sees the 200")
        get(f"{api.url}/flaky")
        log("sync: a 429 with Retry-After is waited out (capped at 0.25 s), then retried")
        get(f"{api.url}/busy")

        log("sync: legacy answers 500; when retries run out the caller gets the last 500")
        get(f"{legacy.url}/report")
        log("sync: the next 500 is the 4th failure: legacy's breaker opens, the retry is refused")
        get(f"{legacy.url}/report")
        log("sync: from then on, requests to legacy fail fast, without being sent")
        get(f"{legacy.url}/report")
        log("sync: ...while api, another host, has its own breaker, still closed")
        get(f"{api.url}/status")
        log(f"requests legacy received: {sum(legacy.hits.values())}")
        describe(transport)

        log("sync: legacy comes back; after open_duration one probe closes its breaker")
        legacy.down = False
        time.sleep(0.5)
        get(f"{legacy.url}/report")
        describe(transport)


# -- async -----------------------------------------------------------------------------------


async def async_demo(api: Server, legacy: Server) -> None:
    transport = AsyncResilientTransport(policy=template("async"), max_retry_after=MAX_RETRY_AFTER)
    async with httpx.AsyncClient(transport=transport, timeout=2.0) as client:

        async def get(url: str) -> None:
            started = time.perf_counter()
            try:
                response = await client.get(url)
            except CircuitOpenHTTPError as exc:
                log(f"GET {url} -> {refused(exc, time.perf_counter() - started)}")
                return
            log(f"GET {url} -> {outcome(response, time.perf_counter() - started)}")

        log("async: the same, concurrently: /flaky, /busy and legacy at once")
        await asyncio.gather(
            get(f"{api.url}/flaky"), get(f"{api.url}/busy"), get(f"{legacy.url}/report")
        )
        await get(f"{legacy.url}/report")  # the 4th failure: open
        await get(f"{legacy.url}/report")
        describe(transport)


def main() -> int:
    with running(Server()) as api, running(Server(down=True)) as legacy:
        sync_demo(api, legacy)
    # Fresh servers (and a fresh transport): the async client starts from scratch.
    with running(Server()) as api, running(Server(down=True)) as legacy:
        asyncio.run(async_demo(api, legacy))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
