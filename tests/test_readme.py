"""The README's code: every Python block compiles, and what it names exists."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

README = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
# A generated file the README shows whole (a runbook) is fenced with four backticks: its own
# blocks are its generator's, checked where it is tested (tests/test_slo_docs.py).
BLOCKS = re.findall(
    r"```python\n(.*?)```",
    re.sub(r"````markdown\n.*?\n````", "", README, flags=re.DOTALL),
    re.DOTALL,
)


def test_the_readme_has_python_blocks() -> None:
    assert len(BLOCKS) > 10


@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_each_python_block_compiles(index: int) -> None:
    compile(BLOCKS[index], f"README block {index}", "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)


def test_the_two_commands_and_every_example_are_in_the_readme() -> None:
    assert "make demo" in README
    assert "make test" in README
    examples = sorted(
        p.name for p in (Path(__file__).resolve().parent.parent / "examples").glob("*.py")
    )
    for name in examples:
        assert f"examples/{name}" in README, name


# -- figures the README takes from benchmarks/RESULTS.md -------------------------------------

RESULTS = (Path(__file__).resolve().parent.parent / "benchmarks" / "RESULTS.md").read_text(
    encoding="utf-8"
)
MATRIX_MARKER = "<!-- outage matrix: every cell is checked against benchmarks/RESULTS.md"


def _table_after(text: str, marker: str) -> list[list[str]]:
    lines = text[text.index(marker) :].splitlines()[1:]
    rows = []
    for line in lines:
        if not line.startswith("|"):
            break
        rows.append([cell.strip() for cell in line.strip("|").split("|")])
    return rows


def _results_row(shape: str, client: str, rate: str) -> list[str]:
    """The row of ``client`` at ``rate`` in the table titled ``shape`` in RESULTS.md."""
    found = re.search(rf"^\*\*{re.escape(shape)}[ :(]", RESULTS, re.MULTILINE)
    assert found, f"no {shape} table in benchmarks/RESULTS.md"
    section = RESULTS[found.start() :]
    section = section[: section.index("\n\n**")] if "\n\n**" in section else section
    for line in section.splitlines():
        cells = [cell.strip() for cell in line.strip("|").split("|")]
        if line.startswith("|") and cells[:2] == [client, rate]:
            return cells
    raise AssertionError(f"no row for {client} at {rate} calls/s in the {shape} table")


def test_the_outage_matrix_in_the_readme_is_the_one_in_results() -> None:
    header, _, *rows = _table_after(README, MATRIX_MARKER)
    rate = header[0].removesuffix(" calls/s")
    clients = [c.replace("`CircuitBreaker()`", "").strip() for c in header[1:]]
    assert clients[:2] == ["no protection", "seawall"]
    assert len(rows) == 7
    for row in rows:
        shape = re.sub(r" \(.*\)$", "", row[0])
        for client, cell in zip(clients, row[1:], strict=True):
            found = _results_row(shape, client, rate)
            availability, detect, recover = found[2], found[6], found[7]
            if client == "no protection":
                assert cell == availability, (shape, client)
            else:
                assert cell == f"{availability}, {detect} / {recover}", (shape, client)


def test_the_retry_budget_figures_in_the_readme_are_the_ones_in_results() -> None:
    rows = _table_after(README, "<!-- retry budget: every cell is checked")[2:]
    names = {
        "tenacity, 3 attempts": "tenacity, 3 attempts",
        "seawall `Retry` + `RetryBudget()`, no breaker": (
            "seawall Retry + RetryBudget(), no breaker"
        ),
        "seawall's default transport policy (retry, budget, breaker)": (
            "seawall default policy [info]"
        ),
    }
    assert [row[0] for row in rows] == list(names)
    for label, at20, at200 in rows:
        for rate, cell in (("20", at20), ("200", at200)):
            found = _results_row("retry budget", names[label], rate)
            assert cell == found[2], (label, rate)


def test_every_opentelemetry_name_follows_the_rule_the_readme_states() -> None:
    from seawall.metrics import CATALOGUE

    text = " ".join(README.split())
    assert "named `seawall.<part>.<name>`" in text
    stated_exceptions = {
        "seawall_circuit_breaker_open_seconds_total": "seawall.circuit_breaker.open_time",
        "seawall_http_client_request_duration_seconds": "http.client.request.duration",
    }
    for prometheus, otel in stated_exceptions.items():
        assert f"`{prometheus}`" in text or otel in text
    parts = ("call", "circuit_breaker", "retry", "timeout", "bulkhead", "chaos", "shared_state")
    for metric in CATALOGUE:
        if metric.name in stated_exceptions:
            assert metric.otel_name == stated_exceptions[metric.name]
            continue
        bare = metric.name.removesuffix("_total").removesuffix("_seconds")
        (part,) = [p for p in parts if bare.startswith(f"seawall_{p}_")]
        name = bare.removeprefix(f"seawall_{part}_")
        assert metric.otel_name == f"seawall.{part}.{name}", metric.name


def test_the_policy_table_is_policys_signature() -> None:
    import inspect

    import seawall

    section = README.split("## Composition", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| `(\w+)` \| ([^|]+) \|", section, re.MULTILINE)
    table = {name: default.strip() for name, default in rows}
    parameters = inspect.signature(seawall.Policy).parameters
    assert list(table) == list(parameters)
    for name, parameter in parameters.items():
        if parameter.default is inspect.Parameter.empty:
            assert table[name] == "required", name
        else:
            assert table[name].startswith(f"`{parameter.default!r}`"), name


def test_the_coverage_floor_in_the_readme_is_the_enforced_one() -> None:
    import tomllib

    pyproject = tomllib.loads((Path(__file__).parent.parent / "pyproject.toml").read_text())
    floor = pyproject["tool"]["coverage"]["report"]["fail_under"]
    assert f"under coverage (floor {floor}%)" in README
