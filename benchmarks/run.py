"""Run seawall's benchmark suites: ``python benchmarks/run.py [suite ...] [--json PATH]``.

Every ``benchmarks/bench_<name>.py`` exposing ``SUITE`` is a suite named ``<name>``; with no
suite named, all run, in alphabetical order. ``--help`` lists the options.
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
    return cli(argv, discover())


if __name__ == "__main__":
    sys.exit(main())
