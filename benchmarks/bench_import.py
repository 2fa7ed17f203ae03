"""Import time: ``import seawall`` in a fresh interpreter, against the peers' imports.

Each run is a fresh interpreter (the running one, with its environment: a source tree on
``PYTHONPATH`` is what it imports) that times its own import statement::

    python -c "import time; t = time.perf_counter(); import seawall; print(time.perf_counter() - t)"

and is timed as a whole from outside, start to exit. Three figures per import:

- **import**: the statement's own time, as the child measured it (``time`` is built in, so
  reading the clock imports nothing). The median over rounds; the bar is on this figure.
- **process - bare**: the whole process minus that of a bare ``python -c "..."`` (the same
  code without the import) in the same round, median over rounds. It adds what importing
  costs at exit (the interpreter tears the modules down) to the import itself.
- **-X importtime**: the cumulative times the interpreter reports for the top-level imports
  of the statement (median of fewer runs), its own overhead included.

Rounds run every candidate once, in an order that rotates from round to round, so that the
swings of a shared machine hit every candidate alike. Bytecode is written once, before
timing, to a private cache (``PYTHONPYCACHEPREFIX``), so that what is timed is an import from
compiled files, as from an installed package.

The bar: ``import seawall`` <= 50 ms. ``import seawall.httpx`` (which imports httpx) and the
peers are reported for context: the peers only where installed (the ``bench`` extra installs
them).

Run: ``python benchmarks/run.py import`` (or ``python benchmarks/bench_import.py``).
"""

from __future__ import annotations

import importlib.util
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass

from _harness import Bar, RunConfig, Suite, SuiteResult, TextTable, cli, dist_version

BAR_LIMIT_MS = 50.0


@dataclass(frozen=True)
class Target:
    label: str
    module: str | None  # None: the bare interpreter
    package: str | None = None  # distribution whose version is shown
    info: bool = False  # context only, no bar


TARGETS = [
    Target("python -c pass", None),
    Target("import seawall", "seawall", "seawall"),
    Target("import seawall.httpx [info]", "seawall.httpx", "seawall", info=True),
    Target("import tenacity", "tenacity", "tenacity", info=True),
    Target("import pybreaker", "pybreaker", "pybreaker", info=True),
    Target("import stamina", "stamina", "stamina", info=True),
]


def _code(target: Target) -> str:
    statement = "pass" if target.module is None else f"import {target.module}"
    return f"import time; t = time.perf_counter(); {statement}; print(time.perf_counter() - t)"


def _environment(cache: str) -> dict[str, str]:
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = cache
    return env  # PYTHONPATH as it is: a source tree on it is what the children import


def _run(code: str, env: dict[str, str], *flags: str) -> tuple[float, str, str]:
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, *flags, "-c", code],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"python -c {code!r} failed: {done.stderr.strip()[-500:]}")
    return elapsed, done.stdout, done.stderr


def _top_level(importtime: str) -> dict[str, int]:
    """Cumulative microseconds of each top-level import in ``-X importtime`` output."""
    out: dict[str, int] = {}
    for line in importtime.splitlines():
        if not line.startswith("import time:") or "self [us]" in line:
            continue
        _, cumulative, name = line[len("import time:") :].split("|")
        if name.startswith(" ") and not name.startswith("  "):
            out[name.strip()] = out.get(name.strip(), 0) + int(cumulative)
    return out


def _importtime_ms(code: str, env: dict[str, str], startup: set[str]) -> float:
    _, _, err = _run(code, env, "-X", "importtime")
    return sum(us for name, us in _top_level(err).items() if name not in startup) / 1000


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f} ms"


def run(config: RunConfig) -> SuiteResult:
    result = SuiteResult("import")
    present = [t for t in TARGETS if t.module is None or _installed(t.module)]
    missing = [t for t in TARGETS if t not in present]
    rounds = max(config.rounds, 10)
    with tempfile.TemporaryDirectory(prefix="seawall-bench-import-") as cache:
        env = _environment(cache)
        for target in present:  # compile once: the timed runs read bytecode
            _run(_code(target), env)
        walls: dict[str, list[float]] = {t.label: [] for t in present}
        inside: dict[str, list[float]] = {t.label: [] for t in present}
        for r in range(rounds):
            k = r % len(present)
            for target in [*present[k:], *present[:k]]:
                wall, out, _ = _run(_code(target), env)
                walls[target.label].append(wall)
                inside[target.label].append(float(out) * 1000)
        _, _, bare_err = _run(_code(present[0]), env, "-X", "importtime")
        startup = set(_top_level(bare_err))
        importtimes: dict[str, list[float]] = {t.label: [] for t in present if t.module}
        for _ in range(max(rounds // 2, 5)):
            for target in present:
                if target.module is not None:
                    importtimes[target.label].append(_importtime_ms(_code(target), env, startup))
    bare = walls[present[0].label]
    rows: list[list[str]] = []
    data: list[dict[str, object]] = []
    figures: dict[str, float] = {}
    for target in present:
        samples = walls[target.label]
        if target.module is None:
            figure = process = None
        else:
            figure = statistics.median(inside[target.label])
            process = statistics.median((c - b) * 1000 for c, b in zip(samples, bare, strict=True))
            figures[target.module] = figure
        self_reported = (
            statistics.median(importtimes[target.label]) if target.module is not None else None
        )
        rows.append(
            [
                target.label,
                dist_version(target.package),
                _ms(figure),
                _ms(process),
                _ms(self_reported),
                f"{statistics.median(samples) * 1000:.1f} ms",
            ]
        )
        data.append(
            {
                "candidate": target.label,
                "module": target.module,
                "import_ms": figure,
                "process_minus_bare_ms": process,
                "process_ms_median": statistics.median(samples) * 1000,
                "import_samples_ms": inside[target.label],
                "importtime_ms": self_reported,
                "wall_samples_ms": [s * 1000 for s in samples],
            }
        )
    notes = [
        f"{rounds} interleaved rounds of fresh interpreters ({sys.executable}); import: the "
        "import statement timed inside the child, median; process - bare: median over rounds "
        "of (this process's wall time - that round's bare interpreter's); process: its median",
        "-X importtime: median of the cumulative times the interpreter reports for the "
        "top-level imports of the statement (its own overhead included)",
        f"seawall imported from {_origin('seawall')}",
        *(f"{t.label}: skipped (not installed)" for t in missing),
    ]
    result.tables.append(
        TextTable(
            "import time in a fresh interpreter (bytecode already compiled)",
            ["import", "version", "import", "process - bare", "-X importtime", "process"],
            rows,
            notes,
            data,
        )
    )
    measured = figures.get("seawall")
    result.bars.append(
        Bar(
            "import_seawall_ms",
            f"import seawall <= {BAR_LIMIT_MS:g} ms (in a fresh interpreter, bytecode compiled)",
            BAR_LIMIT_MS,
            measured,
            "" if measured is None else f"median over {rounds} runs: {measured:.1f} ms",
        )
    )
    return result


def _origin(module: str) -> str:
    spec = importlib.util.find_spec(module)
    return str(spec.origin) if spec is not None else "?"


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module.split(".", 1)[0]) is not None
    except (ImportError, ValueError):
        return False


SUITE = Suite("import", "import time of seawall vs tenacity, pybreaker, stamina", run)

if __name__ == "__main__":
    sys.exit(cli(sys.argv[1:], {SUITE.name: SUITE}))
