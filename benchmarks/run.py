"""Run seawall's benchmark suites: ``python benchmarks/run.py [suite ...] [--json PATH]``.

Every ``benchmarks/bench_<name>.py`` exposing ``SUITE`` is a suite named ``<name>``; with no
suite named, all run, in alphabetical order. ``--help`` lists the options.

The report: a run of every suite (``python benchmarks/run.py``, which ``make bench`` runs)
prints its results and also writes them to ``benchmarks/RESULTS.md`` (Markdown: the date,
the machine, the package versions, the command, then every suite's tables, bar verdicts and
notes). A run of some suites only (``python benchmarks/run.py outage``) writes no report, so
it never overwrites the full one, unless asked:

- ``--results PATH`` writes the report of this run to ``PATH``; ``--results`` alone writes
  ``benchmarks/RESULTS.md`` (put it after the suite names, or write ``--results=PATH``);
- ``--no-results`` writes none, even for a full run.

``python benchmarks/bench_<name>.py`` runs one suite the same way, and writes a report only
when ``--results`` asks for one.

The console output is the same either way.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:  # also when run as `python -m` or imported from elsewhere
    sys.path.insert(0, str(HERE))

from _harness import Suite, cli  # noqa: E402


def discover() -> dict[str, Suite]:
    suites: dict[str, Suite] = {}
    for path in sorted(HERE.glob("bench_*.py")):
        module = importlib.import_module(path.stem)
        suite = getattr(module, "SUITE", None)
        if isinstance(suite, Suite):
            suites[suite.name] = suite
    return suites


def main(argv: list[str] | None = None) -> int:
    return cli(argv, discover(), full_report=True)


if __name__ == "__main__":
    sys.exit(main())
