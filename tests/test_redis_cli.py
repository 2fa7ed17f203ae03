"""``python -m seawall breaker status|isolate|disable|reset`` and ``demo --redis``, against a
redis-server of the module's own: the commands run as subprocesses (as an operator runs them)
while breakers in this process share their state on the same Redis and follow the switches
on the real clock, as every process of a fleet would."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from seawall import CircuitBreaker, CircuitOpenError, CircuitState
from seawall.__main__ import main
from seawall.redis import RedisState
from tests.helpers import RedisServer, free_port, needs_redis, redis_server_fixture

pytestmark = needs_redis

ROOT = Path(__file__).resolve().parent.parent
#: The subprocesses run this tree's seawall, whatever the environment's install points at.
ENV = {
    **os.environ,
    "PYTHONPATH": os.pathsep.join(
        [str(ROOT / "src"), *filter(None, [os.environ.get("PYTHONPATH")])]
    ),
}
#: How long a breaker here may take to follow a switch (its sync interval is 0.1 s).
FOLLOW_WITHIN = 5.0


server = redis_server_fixture()


@pytest.fixture
def prefix(request: pytest.FixtureRequest) -> str:
    """Keys of the test's own on the module's server: each test sees only its breakers."""
    return f"t-{request.node.name}"


@pytest.fixture
def state(server: RedisServer, prefix: str) -> Iterator[RedisState]:
    shared = RedisState(server.url, prefix=prefix, timeout=1.0)
    try:
        yield shared
    finally:
        shared.close()


def seawall(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "seawall", *args],
        cwd=ROOT,
        env=ENV,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def breaker_command(
    server: RedisServer, prefix: str, *args: str
) -> subprocess.CompletedProcess[str]:
    return seawall("breaker", *args, "--redis", server.url, "--prefix", prefix)


def shared_breaker(state: RedisState, name: str) -> CircuitBreaker:
    """A breaker of this process sharing its state, known to Redis once this returns (once
    it has counted a call: an idle breaker writes nothing to Redis)."""
    breaker = CircuitBreaker(
        name=name, shared=state, window=10.0, consecutive_failures=None, minimum_calls=100
    )
    breaker.call(lambda: None)
    deadline = time.monotonic() + 5.0
    while name not in state.names():
        assert time.monotonic() < deadline, f"{name} never reached Redis"
        state.sync_now()
        time.sleep(0.01)
    return breaker


def wait_for(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + FOLLOW_WITHIN
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {FOLLOW_WITHIN} s: {what}")
        time.sleep(0.02)


def fail() -> None:
    raise RuntimeError("down")


# -- status ---------------------------------------------------------------------------------


def test_status_of_an_unknown_name_says_so_and_leaves_nothing_on_redis(
    server: RedisServer, prefix: str, state: RedisState
) -> None:
    shared_breaker(state, "payments")
    done = breaker_command(server, prefix, "status", "paymnets")
    assert done.returncode == 1
    assert done.stdout == ""
    assert done.stderr == (
        f"no breaker named 'paymnets' shares its state on {server.url} (prefix {prefix!r}) "
        "(those that do: payments)\n"
    )
    assert state.names() == ["payments"]  # the typo was not written as a breaker


def test_status_with_no_breakers_says_none_share(server: RedisServer, prefix: str) -> None:
    done = breaker_command(server, prefix, "status")
    assert (done.returncode, done.stderr) == (0, "")
    assert done.stdout == f"no breaker shares its state on {server.url} (prefix {prefix!r})\n"
    listed = breaker_command(server, prefix, "status", "--json")
    assert (listed.returncode, json.loads(listed.stdout)) == (0, [])


def test_status_lists_every_shared_breaker_one_line_each(
    server: RedisServer, prefix: str, state: RedisState
) -> None:
    payments = shared_breaker(state, "payments")
    search = shared_breaker(state, "api:search.example")
    for _ in range(3):
        with pytest.raises(RuntimeError):
            payments.call(fail)
    for _ in range(5):
        search.call(lambda: "ok")
    state.sync_now()
    done = breaker_command(server, prefix, "status")
    assert (done.returncode, done.stderr) == (0, "")
    header, *lines = done.stdout.splitlines()
    assert header.split() == [
        "BREAKER",
        "STATE",
        "GEN",
        "OPEN",
        "LEFT",
        "CALLS",
        "FAILED",
        "PROBES",
    ]
    # Sorted by name; state, generation, open time left, window calls and failures, probes.
    assert [line.split() for line in lines] == [
        ["api:search.example", "closed", "0", "-", "6", "0", "0"],  # with shared_breaker's
        ["payments", "closed", "0", "-", "4", "3", "0"],
    ]
    one = breaker_command(server, prefix, "status", "payments").stdout.splitlines()
    assert [line.split() for line in one] == [header.split(), lines[1].split()]
    as_json = json.loads(breaker_command(server, prefix, "status", "payments", "--json").stdout)
    assert as_json == {
        "name": "payments",
        "state": "closed",
        "generation": 0,
        "open_remaining": 0.0,
        "open_duration": 0.6,
        "window_calls": 4,
        "window_failures": 3,
        "probes_in_flight": 0,
    }
    listed = json.loads(breaker_command(server, prefix, "status", "--json").stdout)
    assert [entry["name"] for entry in listed] == ["api:search.example", "payments"]


def test_status_shows_an_open_breakers_time_left(
    server: RedisServer, prefix: str, state: RedisState
) -> None:
    breaker = CircuitBreaker(
        name="payments", shared=state, window=10.0, consecutive_span=0.0, open_duration=60.0
    )
    for _ in range(5):  # consecutive failures: a local trip, which opens the shared state
        with pytest.raises(RuntimeError):
            breaker.call(fail)
    state.sync_now()
    done = breaker_command(server, prefix, "status", "payments")
    assert done.returncode == 0, done.stderr
    name, status, generation, left, *_ = done.stdout.splitlines()[1].split()
    assert (name, status, generation) == ("payments", "open", "1")
    assert left.endswith("s")
    assert 30.0 < float(left[:-1]) <= 60.0


# -- the switches: this process's breaker follows ----------------------------------------------


def test_isolate_forces_a_breaker_in_another_process_open(
    server: RedisServer, prefix: str, state: RedisState
) -> None:
    breaker = shared_breaker(state, "payments")
    done = breaker_command(server, prefix, "isolate", "payments")
    assert (done.returncode, done.stderr) == (0, "")
    lines = done.stdout.splitlines()
    # The window keeps shared_breaker's one call: a forced open does not clear it.
    assert lines[1].split() == ["payments", "forced_open", "1", "until", "reset", "1", "0", "0"]
    assert lines[2] == (
        f"every process sharing breaker 'payments' on {server.url} (prefix {prefix!r}) "
        "follows within its sync interval (0.1 s by default)"
    )
    assert lines[3] == (
        f"undo: python -m seawall breaker reset payments --redis {server.url} --prefix {prefix}"
    )
    wait_for(lambda: breaker.state is CircuitState.FORCED_OPEN, "the breaker here isolated")
    with pytest.raises(CircuitOpenError):
        breaker.call(lambda: "never called")


def test_disable_then_reset_are_followed_too(
    server: RedisServer, prefix: str, state: RedisState
) -> None:
    breaker = shared_breaker(state, "payments")
    done = breaker_command(server, prefix, "disable", "payments")
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[1].split()[:3] == ["payments", "disabled", "1"]
    wait_for(lambda: breaker.state is CircuitState.DISABLED, "the breaker here disabled")
    for _ in range(10):  # disabled: failures go through and never trip it
        with pytest.raises(RuntimeError):
            breaker.call(fail)
    assert breaker.state is CircuitState.DISABLED
    done = breaker_command(server, prefix, "reset", "payments", "--json")
    assert done.returncode == 0, done.stderr
    after = json.loads(done.stdout)
    assert (after["state"], after["generation"], after["window_calls"]) == ("closed", 2, 0)
    wait_for(lambda: breaker.state is CircuitState.CLOSED, "the breaker here closed again")
    assert breaker.call(lambda: "ok") == "ok"


def test_a_switch_before_any_process_shares_the_breaker_waits_for_the_first(
    server: RedisServer, prefix: str, state: RedisState
) -> None:
    done = breaker_command(server, prefix, "isolate", "payments")
    assert done.returncode == 0, done.stderr
    assert (
        "no process shares a breaker named 'payments' there yet: those that start one follow "
        "this switch"
    ) in done.stdout.splitlines()
    breaker = CircuitBreaker(name="payments", shared=state, window=10.0)
    wait_for(lambda: breaker.state is CircuitState.FORCED_OPEN, "a new breaker isolated")


# -- errors -----------------------------------------------------------------------------------


@pytest.mark.parametrize("command", [["status"], ["status", "payments"], ["isolate", "payments"]])
def test_an_unreachable_redis_is_one_line_and_exit_1(command: list[str]) -> None:
    url = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    done = seawall("breaker", *command, "--redis", url)
    assert done.returncode == 1
    assert done.stdout == ""
    assert done.stderr.startswith(f"cannot reach Redis at {url} (prefix 'seawall'): ")
    assert done.stderr.count("\n") == 1, done.stderr


def test_a_password_is_never_printed(server: RedisServer) -> None:
    secret = server.url.replace("redis://", "redis://someone:hunter2@")
    done = seawall("breaker", "status", "--redis", secret)
    assert done.returncode == 1
    assert "hunter2" not in done.stdout + done.stderr
    assert done.stderr.startswith(
        f"Redis at {server.url} (prefix 'seawall') refused the credentials"
    )


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://127.0.0.1:6379/0", "not a redis://, rediss:// or unix:// URL: "),
        ("127.0.0.1:6379", "not a redis://, rediss:// or unix:// URL: "),
        ("redis://127.0.0.1:port/0", "bad port in 'redis://127.0.0.1:port/0'"),
        ("redis://127.0.0.1:70000/0", "bad port in "),
        ("redis://127.0.0.1:6379/zero", "the database must be a number"),
        ("unix://", "a unix:// URL needs the socket's path"),
        ("redis://127.0.0.1/0?socket_timeout=soon", "Invalid value for 'socket_timeout'"),
    ],
)
def test_a_bad_url_is_a_usage_error(
    url: str, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["breaker", "status", "--redis", url])
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("usage: python -m seawall breaker status")
    assert f"error: argument --redis: {message}" in err


def test_a_bad_url_exits_2_from_the_command_line_too() -> None:
    done = seawall("breaker", "isolate", "payments", "--redis", "http://cache:6379")
    assert done.returncode == 2
    assert "error: argument --redis: not a redis://, rediss:// or unix:// URL" in done.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["breaker"], "breaker: say status, isolate, disable or reset"),
        (["breaker", "isolate", "--redis", "redis://h/0"], "required: NAME"),
        (["breaker", "status"], "required: --redis"),
        (["breaker", "status", "--redis", "redis://h/0", "--prefix", ""], "--prefix: must not"),
        (
            ["demo", "--simulated", "--redis", "redis://h/0"],
            "--redis and --simulated: Redis decides a shared breaker's state on its own real clock",
        ),
    ],
)
def test_usage_errors(args: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(args)
    assert exited.value.code == 2
    assert message in capsys.readouterr().err


@pytest.mark.parametrize(
    "args",
    [
        ["breaker", "status", "--redis", "redis://127.0.0.1:1/0"],
        ["demo", "--redis", "redis://127.0.0.1:1/0", "--duration", "1"],
    ],
)
def test_without_redis_py_the_commands_say_what_to_install(
    args: list[str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "redis", None)  # import redis raises ImportError
    monkeypatch.setitem(sys.modules, "seawall.redis", None)
    assert main(args) == 2
    assert "pip install 'seawall[redis]'" in capsys.readouterr().err


def test_help_names_the_breaker_commands() -> None:
    done = seawall("breaker", "--help")
    assert done.returncode == 0
    for word in ("status [NAME]", "isolate NAME", "disable NAME", "reset NAME", "sync interval"):
        assert word in done.stdout
    assert "breaker" in seawall("--help").stdout


# -- the demo ---------------------------------------------------------------------------------


def run_demo(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """A short real demo (its SLO files written under ``tmp_path``)."""
    return subprocess.run(
        [sys.executable, "-m", "seawall", "demo", "--port", "0", *args],
        cwd=ROOT,
        env={**ENV, "TMPDIR": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=90,
    )


def test_the_demos_breaker_follows_a_switch_made_before_it_starts(
    server: RedisServer, prefix: str, state: RedisState, tmp_path: Path
) -> None:
    # Isolated on Redis first: every protected call is refused, none reaches the upstream.
    state.isolate("demo-upstream:upstream")
    done = run_demo(tmp_path, "--duration", "2", "--redis", server.url, "--prefix", prefix)
    assert done.returncode == 0, done.stdout + done.stderr
    text = done.stdout
    watch = (
        f"python -m seawall breaker status demo-upstream:upstream --redis {server.url} "
        f"--prefix {prefix}"
    )
    assert (
        f"  shared breaker state: {server.url} (prefix {prefix!r}), demo-upstream:upstream "
        "forced_open (generation 1)\n"
    ) in text
    assert f"    watch it: {watch}\n" in text
    assert "stays so until: " + watch.replace(" status ", " reset ") in text
    rows = [line for line in text.splitlines() if line.lstrip()[:1].isdigit() and "|" in line]
    assert len(rows) == 2
    assert all(" forced_open " in row for row in rows), text
    # The per-host breaker, made by the first request, follows the shared state from its
    # first exchange with Redis on (it asks at once, but that request does not wait for the
    # answer): the few calls before it go out, none after it.
    attempts = [line for line in text.splitlines() if line.startswith("upstream attempts")]
    plain, guarded = (int(n) for n in attempts[0].split()[-2:])
    assert guarded <= plain / 4, text
    assert state.status("demo-upstream:upstream").state == "forced_open"


def test_the_demo_with_an_unreachable_redis_stops_before_it_starts(tmp_path: Path) -> None:
    url = f"redis://127.0.0.1:{free_port()}/0"
    done = run_demo(tmp_path, "--duration", "1", "--redis", url)
    assert done.returncode == 1
    assert done.stdout == ""
    assert done.stderr.startswith(f"cannot reach Redis at {url}: ")
    assert done.stderr.count("\n") == 1, done.stderr


def test_the_readmes_switch_commands_run_and_a_breaker_follows_them(
    server: RedisServer, prefix: str, state: RedisState
) -> None:
    """The README's incident commands, in order, with the test's Redis for the README's."""
    readme = (ROOT / "README.md").read_text()
    section = readme.split("### Cut off a broken dependency", 1)[1]
    block = section.split("```console\n", 1)[1].split("```", 1)[0]
    commands = [line.removeprefix("$ ").split() for line in block.splitlines()]
    assert [command[:4] for command in commands] == [
        ["python", "-m", "seawall", "breaker"],
    ] * 3
    payments = shared_breaker(state, "payments")
    expected = [CircuitState.FORCED_OPEN, CircuitState.FORCED_OPEN, CircuitState.CLOSED]
    for command, state_after in zip(commands, expected, strict=True):
        args = [server.url if arg.startswith("redis://") else arg for arg in command[3:]]
        done = seawall(*args, "--prefix", prefix)
        assert done.returncode == 0, done.stderr
        deadline = time.monotonic() + 5.0
        while payments.state is not state_after:
            assert time.monotonic() < deadline, (command, payments.state)
            time.sleep(0.01)
