"""What many test modules share, in one place (fixtures are in ``conftest.py``)."""

from __future__ import annotations

import asyncio
import json
import shutil
import socket
import subprocess
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Coroutine, Generator, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, TypeVar

import pytest

from seawall._simulated import LoopClock, SimulatedLoop

__all__ = [
    "NO_PROMETHEUS",
    "NO_PROMTOOL",
    "PROMETHEUS",
    "PROMTOOL",
    "Boom",
    "Gate",
    "LabelSet",
    "LoopClock",
    "Prometheus",
    "SimulatedLoop",
    "free_port",
    "resume",
    "run_simulated",
]

T = TypeVar("T")


class Boom(Exception):
    """The failure test functions raise: an exception no library raises by itself."""


class Gate:
    """An awaitable that suspends exactly once: ``policy.acall(Gate)`` driven by hand
    (``coro.send(None)``) holds an async call in flight, with no event loop, until
    :func:`resume` finishes it. (Calls held in flight on threads or a loop: ``Held`` in
    ``conftest.py``, through the ``run`` fixture's ``hold``.)"""

    def __await__(self) -> Generator[Gate, None, str]:
        yield self
        return "ok"


def resume(coro: Coroutine[Any, Any, str], exc: BaseException | None) -> tuple[Any, Any]:
    """Finish a call held at its :class:`Gate`, with ``exc`` raised there or else with a
    return: ``(result, None)`` if it returned, ``(None, exception)`` if it raised."""
    try:
        if exc is None:
            coro.send(None)
        else:
            coro.throw(exc)
    except StopIteration as stop:
        return stop.value, None
    except BaseException as err:
        return None, err
    raise AssertionError("the call did not finish at its gate")


def run_simulated(main: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run ``main()`` to its end on a fresh loop on simulated time."""
    with asyncio.Runner(loop_factory=SimulatedLoop) as runner:
        return runner.run(main())


# -- a real HTTP server on loopback ---------------------------------------------------------------


class Server:
    """A ThreadingHTTPServer on 127.0.0.1 (port 0) answering ``GET /<status>`` with that
    status after ``delay`` seconds, and counting the requests in flight."""

    def __init__(self, delay: float = 0.0) -> None:
        self.delay = delay
        self.lock = threading.Lock()
        self.in_flight = 0
        self.most_in_flight = 0
        self.requests = 0
        self.retry_after: str | None = None
        self.script: list[int] = []  # statuses for the next requests, before the path's
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.0"  # one request per connection: a stopped server is down

            def do_GET(self) -> None:
                with server.lock:
                    server.requests += 1
                    server.in_flight += 1
                    server.most_in_flight = max(server.most_in_flight, server.in_flight)
                try:
                    if server.delay:
                        time.sleep(server.delay)
                    with server.lock:
                        scripted = server.script.pop(0) if server.script else None
                    status = scripted or int(self.path.strip("/") or 200)
                    body = b"ok"
                    self.send_response(status)
                    if server.retry_after is not None and status in (429, 503):
                        self.send_header("Retry-After", server.retry_after)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up on it (a timeout)
                finally:
                    with server.lock:
                        server.in_flight -= 1

            do_POST = do_GET

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


# -- a real Prometheus ---------------------------------------------------------------------------

#: Debian's ``prometheus`` package has both binaries; ``.ci/run`` installs them when run as root.
#: The tests that need one skip with these reasons where it is missing.
PROMETHEUS = shutil.which("prometheus")
PROMTOOL = shutil.which("promtool")
NO_PROMETHEUS = (
    "prometheus is not on PATH (Debian's prometheus package has it; .ci/run installs it when "
    "run as root)"
)
NO_PROMTOOL = (
    "promtool is not on PATH (Debian's prometheus package has it; .ci/run installs it when "
    "run as root)"
)

needs_prometheus = pytest.mark.skipif(PROMETHEUS is None, reason=NO_PROMETHEUS)
needs_promtool = pytest.mark.skipif(PROMTOOL is None, reason=NO_PROMTOOL)

#: The README's SLO spec (without its comments): availability and latency on one operation.
SLO_EXAMPLE = """\
service: checkout
slos:
  - name: payments-availability
    operation: payments
    sli: availability
    objective: 99.5
    period: 30d
  - name: payments-latency
    operation: payments
    sli: latency
    threshold: 0.25
    objective: 99
"""

#: A label set, as the HTTP API gives it, sorted: the key of a vector or a matrix.
LabelSet = tuple[tuple[str, str], ...]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class Prometheus:
    """A Prometheus server on a free 127.0.0.1 port with its own directory, scraping
    ``target`` (a port on 127.0.0.1) and evaluating ``rule_files`` every second."""

    def __init__(self, target: int, directory: Path, rule_files: Sequence[Path] = ()) -> None:
        config = directory / "prometheus.yml"
        rules = "".join(f"  - '{path}'\n" for path in rule_files)
        config.write_text(
            "global:\n"
            "  scrape_interval: 1s\n"
            "  evaluation_interval: 1s\n"
            + (f"rule_files:\n{rules}" if rules else "")
            + "scrape_configs:\n"
            "  - job_name: app\n"
            "    static_configs:\n"
            f"      - targets: ['127.0.0.1:{target}']\n"
        )
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = directory / "prometheus.log"
        assert PROMETHEUS is not None
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                [
                    PROMETHEUS,
                    f"--config.file={config}",
                    f"--storage.tsdb.path={directory / 'data'}",
                    f"--web.listen-address=127.0.0.1:{self.port}",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        self.wait_for(lambda: self._get("/-/ready") is not None, "ready")

    def _get(self, path: str) -> bytes | None:
        try:
            with urllib.request.urlopen(self.url + path, timeout=5) as response:
                data: bytes = response.read()
                return data
        except OSError:
            return None

    def api(self, path: str, **params: str) -> Any:
        """The ``data`` of a successful answer of the HTTP API at ``/api/v1/<path>``."""
        query = "?" + urllib.parse.urlencode(params) if params else ""
        data = self._get(f"/api/v1/{path}{query}")
        assert data is not None, f"no answer from /api/v1/{path} {params}"
        answer = json.loads(data)
        assert answer["status"] == "success", answer
        return answer["data"]

    def query(self, expr: str, at: float | None = None) -> dict[LabelSet, float]:
        """The instant vector of ``expr`` now (or at ``at``, Unix seconds): value by label set."""
        params = {"query": expr} if at is None else {"query": expr, "time": f"{at:.3f}"}
        data = self.api("query", **params)
        assert data["resultType"] == "vector", data
        return {
            tuple(sorted(item["metric"].items())): float(item["value"][1])
            for item in data["result"]
        }

    def matrix(
        self, expr: str, at: float | None = None
    ) -> dict[LabelSet, list[tuple[float, float]]]:
        """The samples a range-vector ``expr`` (``series[1m]``) selects now (or at ``at``):
        ``(timestamp, value)`` pairs by label set, oldest first."""
        params = {"query": expr} if at is None else {"query": expr, "time": f"{at:.3f}"}
        data = self.api("query", **params)
        assert data["resultType"] == "matrix", data
        return {
            tuple(sorted(item["metric"].items())): [(float(t), float(v)) for t, v in item["values"]]
            for item in data["result"]
        }

    def alerts(self) -> list[dict[str, Any]]:
        """The alerts pending or firing now."""
        alerts: list[dict[str, Any]] = self.api("alerts")["alerts"]
        return alerts

    def samples(self, series: str) -> int:
        """How many samples of ``series`` were scraped in the last 5 minutes."""
        values = self.query(f"count_over_time({series}[5m])")
        return int(next(iter(values.values()), 0))

    def wait_for(self, condition: Callable[[], object], what: str, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            if self.process.poll() is not None:
                pytest.fail(
                    f"prometheus exited with {self.process.returncode}:\n"
                    + self.log.read_text(errors="replace")[-3000:]
                )
            if time.monotonic() > deadline:
                pytest.fail(f"prometheus: not {what} within {timeout:g} s")
            time.sleep(0.2)

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


#: Debian's ``redis-server`` package; ``.ci/run`` installs it when run as root.
REDIS_SERVER = shutil.which("redis-server")
NO_REDIS = (
    "redis-server is not on PATH (Debian's redis-server package has it; .ci/run installs it "
    "when run as root)"
)
needs_redis = pytest.mark.skipif(REDIS_SERVER is None, reason=NO_REDIS)


class RedisServer:
    """A redis-server of the test's own on a free 127.0.0.1 port, with no persistence. It
    can be killed (``kill -9``) and started again on the same port."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen[bytes] | None = None
        self.start()

    def start(self) -> None:
        assert REDIS_SERVER is not None
        self.process = subprocess.Popen(
            [
                REDIS_SERVER,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.directory),
                "--loglevel",
                "warning",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10.0
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as sock:
                    sock.sendall(b"PING\r\n")
                    if sock.recv(16).startswith(b"+PONG"):
                        return
            except OSError:
                pass
            time.sleep(0.02)
        raise RuntimeError(f"redis-server did not start on port {self.port}")

    def kill(self) -> None:
        """``kill -9``: the server is gone at once, its data with it."""
        if self.process is not None:
            self.process.kill()
            self.process.wait()
            self.process = None

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
            self.process = None


class RedisProxy:
    """A TCP proxy on a free 127.0.0.1 port in front of a :class:`RedisServer`, which loses
    what a flaky network loses: while ``lose_requests`` is set, what clients send is dropped
    (their questions time out); while ``lose_replies_with`` is set, replies containing those
    bytes are dropped (the command ran, its answer never came). ``close()`` ends it all."""

    def __init__(self, server: RedisServer) -> None:
        self.target = server.port
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.lose_requests = False
        self.lose_replies_with: bytes | None = None
        self._sockets: list[socket.socket] = []
        self._closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
                upstream = socket.create_connection(("127.0.0.1", self.target))
            except OSError:
                return
            self._sockets += [client, upstream]
            threading.Thread(target=self._pump, args=(client, upstream), daemon=True).start()

    def _pump(self, client: socket.socket, upstream: socket.socket) -> None:
        import select

        try:
            while not self._closed:
                ready, _, _ = select.select([client, upstream], [], [], 0.1)
                for sock in ready:
                    data = sock.recv(65536)
                    if not data:
                        return
                    if sock is client:
                        if not self.lose_requests:
                            upstream.sendall(data)
                    elif self.lose_replies_with is None or self.lose_replies_with not in data:
                        client.sendall(data)
        except (OSError, ValueError):
            pass
        finally:
            client.close()
            upstream.close()

    def close(self) -> None:
        self._closed = True
        self._listener.close()
        for sock in self._sockets:
            sock.close()


def keep_redis_busy(url: str, seconds: float) -> threading.Thread:
    """Keep the redis-server at ``url`` busy for ``seconds`` (a Lua loop on a connection of
    its own, as a fork for a snapshot or a slow command would): every other client waits.
    Returns the thread running it, once Redis is busy."""
    import redis

    started = threading.Event()

    def run() -> None:
        client = redis.Redis.from_url(url)
        started.set()
        client.eval(
            "local t = redis.call('TIME') local s = t[1] * 1e6 + t[2] "
            "while true do local n = redis.call('TIME') "
            "if n[1] * 1e6 + n[2] - s > tonumber(ARGV[1]) then break end end return 1",
            0,
            int(seconds * 1e6),
        )
        client.close()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    started.wait(5.0)
    time.sleep(0.05)  # the script has begun
    return thread


def redis_server_fixture(directory: str = "redis") -> Any:
    """A module's own redis-server, started once for the module and stopped after it:
    ``server = redis_server_fixture()`` at a test module's top level."""

    @pytest.fixture(scope="module")
    def server(tmp_path_factory: pytest.TempPathFactory) -> Generator[RedisServer, None, None]:
        redis_server = RedisServer(tmp_path_factory.mktemp(directory))
        try:
            yield redis_server
        finally:
            redis_server.stop()

    return server


def redis_states_fixture() -> Any:
    """``states``: makes ``RedisState``s ("processes") on the module's ``server`` (or at a URL
    given first), with a key prefix of the test's own, and closes them after the test."""
    from seawall.redis import RedisState

    @pytest.fixture
    def states(server: RedisServer) -> Generator[Callable[..., RedisState], None, None]:
        made: list[RedisState] = []
        prefix = f"t{time.monotonic_ns()}"

        def make(url: str | None = None, **kwargs: Any) -> RedisState:
            kwargs.setdefault("prefix", prefix)
            state = RedisState(url or server.url, **kwargs)
            made.append(state)
            return state

        yield make
        for state in made:
            state.close()

    return states
