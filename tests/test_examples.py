"""Every example in examples/ runs, exits 0, and shows what it says it shows.

Each runs in its own process, with this interpreter, from the repository's root, as a user
would run it. A new example needs an entry here: ``test_every_example_is_covered`` fails
until it has one.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
TIMEOUT = 60.0

#: Scripts run as ``python examples/<name>``, and lines (fragments) their output must hold.
SCRIPTS: dict[str, list[str]] = {
    "breaker_trip_and_recover.py": [
        ">> breaker 'payments': closed -> open",
        "REJECTED (CircuitOpenError, retry_after=",
        "requests that reached the service while open: 0",
        ">> breaker 'payments': open -> half_open",
        ">> breaker 'payments': half_open -> closed",
        "snapshot: state=closed successes=6 failures=3 rejected=3",
    ],
    "decorate_functions.py": [
        "check_stock('S-4') -> 7",
        "requests that reached the inventory service: 6",
        "retry:    calls=4 attempts=6 retries=2",
        "breaker:  state=closed successes=4 failures=2 rejected=0",
        "get_price('A-1') -> failed: 'pricing.attempt' exceeded its timeout of 0.1s",
        "get_price('A-2') -> failed: 'pricing.attempt' exceeded its timeout of 0.1s",
        "get_price('A-3') -> refused: CircuitOpenError, retry_after=",
        "requests that reached the pricing service while open: 0",
        "get_price('A-6') -> ok: 9.99",
        "get_price('B-3') -> refused: BulkheadFullError",
        "open -> half_open: 1",
        "half_open -> closed: 1",
        "bulkhead: limit=2 admitted=7 rejected=1",
    ],
    "httpx_clients.py": [
        "/flaky -> 200 'ok (/flaky, request #2)'",
        "/busy -> 200 'ok (/busy, request #2)'",
        "/report -> 500 'internal error'",
        "/report -> CircuitOpenHTTPError, retry_after=",
        "/status -> 200 'ok (/status, request #1)'",
        "requests legacy received: 4",
        "breaker open (successes=0 failures=4 ignored=0 rejected=2); retries=3",
        "breaker closed (successes=3 failures=1 ignored=1 rejected=0); retries=2",
        "/report -> 200 'ok (/report, request #5)'",
        "breaker closed (successes=1 failures=4 ignored=0 rejected=2); retries=3",
    ],
    "starlette_app.py": [
        'GET /quote/ACME -> 200 {"symbol":"ACME","price":12.34}',
        'GET /quote/ACME -> 502 {"error":"quotes said 500"}',
        'GET /quote/ACME -> 503 {"error":"quotes unavailable"} (Retry-After: 30)',
        "requests the quotes service received: 8",
        'seawall_circuit_breaker_state{policy="quotes:quotes.internal:80",state="open"} 1.0',
        'seawall_circuit_breaker_calls_total{outcome="failure",policy="quotes:quotes.internal:80"}'
        " 4.0",
        "seawall_retry_attempts_count{",
        "seawall_http_client_request_duration_seconds_count{",
    ],
}

#: Examples that are pytest test files, run as ``python -m pytest <file>``: how many pass.
TEST_FILES: dict[str, int] = {
    "test_with_seawall_testing.py": 4,
    "test_rehearse_an_outage.py": 3,
}


def run(*args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    # The examples expose seawall's series in the default registry, not in a multiprocess
    # directory that the environment of this test run may name.
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    env.pop("prometheus_multiproc_dir", None)
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return subprocess.run(
        [sys.executable, *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )


@pytest.mark.parametrize("name", sorted(SCRIPTS))
def test_example_script(name: str) -> None:
    result = run(str(Path("examples") / name))
    report = f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    assert result.returncode == 0, report
    for expected in SCRIPTS[name]:
        assert expected in result.stdout, f"{expected!r} missing from the output\n{report}"


@pytest.mark.parametrize("name", sorted(TEST_FILES))
def test_example_test_file(name: str) -> None:
    result = run("-m", "pytest", "-q", str(Path("examples") / name), "-p", "no:cacheprovider")
    report = f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    assert result.returncode == 0, report
    assert f"{TEST_FILES[name]} passed" in result.stdout, report


#: Apps (nothing to run as a script), each tested by a module of its own.
APPS: dict[str, str] = {
    "first_service.py": "tests/test_first_service.py",
}


def test_every_app_has_its_test() -> None:
    for test in APPS.values():
        assert (ROOT / test).is_file(), test


def test_every_example_is_covered() -> None:
    examples = {path.name for path in EXAMPLES.glob("*.py")}
    covered = set(SCRIPTS) | set(TEST_FILES) | set(APPS)
    assert examples - covered == set(), "examples with no test: add them to SCRIPTS or TEST_FILES"
    assert covered - examples == set(), "tests of examples that no longer exist"
