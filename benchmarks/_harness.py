"""Shared machinery of the benchmark suites: interleaved timing, tables, bar checks, JSON, CLI.

A suite is a module ``benchmarks/bench_<name>.py`` exposing ``SUITE = Suite(...)``; its
``run(config)`` returns a :class:`SuiteResult`: tables (:class:`Table` for per-call overheads,
:class:`TextTable` for anything else), bars and notes. ``benchmarks/run.py`` finds and runs
them, prints the results, and writes them as Markdown (:func:`results_markdown`) to
``benchmarks/RESULTS.md`` after a run of every suite (see its ``--results`` option). A suite
may add options of its own to the command line (:attr:`Suite.options`) and pictures to its
result (:class:`Image`), which the report shows.

Method (the same for every suite, so figures are comparable): every candidate of a table,
including the bare baseline, is timed in the same process and the same run. Each candidate
gets a calibrated number of calls N (about ``sample_time`` seconds per sample); a round times
every candidate once, N calls each, and the order rotates from round to round so that no
candidate always runs first or last. Many short rounds (default 40 x 15 ms) rather than a few
long ones, so that a round is short next to the speed swings of a shared machine.

- ``ns/call`` and ``overhead ns`` use the **minimum** over rounds: a candidate's best per-call
  time minus the bare baseline's best (the median-based overhead is shown alongside).
- The **ratio** to the reference (and so every bar) is **paired**: in each round, the
  candidate's overhead over that round's bare sample divided by the reference's overhead in
  the same round; the figure is the median over rounds. Measured on a loaded 2-CPU VM this
  was stable to +-0.01 run to run, where the ratio of two minimums moved by +-0.15, because a
  swing in machine speed hits both sides of a same-round ratio alike. ``x ref (min)`` shows
  the ratio of minimums too.

The garbage collector is off while a round runs (as :mod:`timeit` does). Async candidates are
timed as ``for _ in range(n): await fn()`` inside one coroutine, all in one event loop.

Benchmarks are not library code: ``time.perf_counter`` is used directly here.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import inspect
import itertools
import json
import os
import platform
import shlex
import statistics
import sys
import time
from collections.abc import (
    Awaitable,
    Callable,
    Coroutine,
    Iterable,
    Iterator,
    Mapping,
    Sequence,
)
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from typing import Any

__all__ = [
    "Bar",
    "Candidate",
    "Image",
    "Measurement",
    "Row",
    "RunConfig",
    "SkipCandidate",
    "Skipped",
    "Suite",
    "SuiteResult",
    "Table",
    "TextTable",
    "added_bar",
    "build_candidates",
    "cli",
    "dist_version",
    "measure_async",
    "measure_sync",
    "overhead_table",
    "results_markdown",
]

BASELINE = "bare"
METHOD = (
    "interleaved rounds in one process; overhead ns = candidate's min per-call time - bare min; "
    "ratio = median over rounds of (candidate - bare) / (reference - bare) within each round"
)

# -- candidates --------------------------------------------------------------------------------


class SkipCandidate(Exception):
    """Raised by a candidate builder that cannot take part (missing feature, missing extra)."""


@dataclass(frozen=True)
class Candidate:
    """One thing to time: a zero-argument callable (sync) or coroutine function (async)."""

    name: str
    fn: Callable[[], Any]
    #: Distribution name whose version is printed (``None``: no version column entry).
    package: str | None = None
    #: Run after timing; returns a problem (e.g. "breaker left closed state") or ``None``.
    #: May be a coroutine function for async candidates.
    check: Callable[[], Any] | None = None
    note: str = ""
    #: Entered around the candidate's warm-up, calibration and every sample, outside the
    #: timed loop: a setting only this candidate runs under (e.g. an OpenTelemetry SDK).
    around: Callable[[], AbstractContextManager[Any]] | None = None


@dataclass(frozen=True)
class Skipped:
    name: str
    reason: str


def build_candidates(
    builders: Iterable[tuple[str, Callable[[], Candidate]]],
) -> tuple[list[Candidate], list[Skipped]]:
    """Run each ``(name, builder)``; a missing peer or unsupported feature becomes a skip."""
    candidates: list[Candidate] = []
    skipped: list[Skipped] = []
    for name, build in builders:
        try:
            candidates.append(build())
        except ImportError as exc:
            skipped.append(Skipped(name, f"not installed ({exc})"))
        except SkipCandidate as exc:
            skipped.append(Skipped(name, str(exc)))
        except Exception as exc:
            skipped.append(Skipped(name, f"setup failed: {type(exc).__name__}: {exc}"))
    return candidates, skipped


def dist_version(package: str | None) -> str:
    if package is None:
        return ""
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "?"


# -- timing ------------------------------------------------------------------------------------


@dataclass
class Measurement:
    name: str
    calls_per_sample: int
    #: Per-call seconds of each round's sample, in round order.
    samples: list[float] = field(default_factory=list)

    @property
    def best(self) -> float:
        return min(self.samples)

    @property
    def median(self) -> float:
        return statistics.median(self.samples)


def _time_sync(fn: Callable[[], Any], n: int) -> float:
    loop = itertools.repeat(None, n)
    clock = time.perf_counter
    start = clock()
    for _ in loop:
        fn()
    return clock() - start


async def _time_async(fn: Callable[[], Awaitable[Any]], n: int) -> float:
    loop = itertools.repeat(None, n)
    clock = time.perf_counter
    start = clock()
    for _ in loop:
        await fn()
    return clock() - start


def _next_n(n: int, elapsed: float, target: float) -> int | None:
    """Calibration step: ``None`` once ``n`` calls take long enough to extrapolate."""
    if elapsed >= target / 5:
        return None
    if elapsed <= 0:
        return n * 10
    return max(n * 2, min(n * 10, int(n * target / 5 / elapsed) + 1))


def _final_n(n: int, elapsed: float, target: float) -> int:
    return max(1, round(n * target / max(elapsed, 1e-9)))


def _rotations(names: Sequence[str], rounds: int) -> Iterable[list[str]]:
    for r in range(rounds):
        k = r % len(names)
        yield [*names[k:], *names[:k]]


class _GcPaused:
    def __enter__(self) -> None:
        self._was_enabled = gc.isenabled()
        gc.collect()
        gc.disable()

    def __exit__(self, *exc: object) -> None:
        if self._was_enabled:
            gc.enable()


Around = Mapping[str, Callable[[], AbstractContextManager[Any]]]


def _around(around: Around | None, name: str) -> AbstractContextManager[Any]:
    enter = None if around is None else around.get(name)
    return nullcontext() if enter is None else enter()


def measure_sync(
    candidates: Mapping[str, Callable[[], Any]],
    *,
    rounds: int,
    sample_time: float,
    around: Around | None = None,
) -> dict[str, Measurement]:
    """Time each sync callable over ``rounds`` interleaved rounds; see the module docstring.
    ``around[name]`` (if any) is entered around that candidate's every sample, untimed."""
    sizes: dict[str, int] = {}
    for name, fn in candidates.items():
        with _around(around, name):
            fn()  # warm up (first-call work: name adoption, lazy set-up, caches)
            n = 10
            while True:
                elapsed = _time_sync(fn, n)
                bigger = _next_n(n, elapsed, sample_time)
                if bigger is None:
                    break
                n = bigger
        sizes[name] = _final_n(n, elapsed, sample_time)
    results = {name: Measurement(name, sizes[name]) for name in candidates}
    for order in _rotations(list(candidates), rounds):
        with _GcPaused():
            for name in order:
                n = sizes[name]
                with _around(around, name):
                    elapsed = _time_sync(candidates[name], n)
                results[name].samples.append(elapsed / n)
    return results


async def measure_async(
    candidates: Mapping[str, Callable[[], Awaitable[Any]]],
    *,
    rounds: int,
    sample_time: float,
    around: Around | None = None,
) -> dict[str, Measurement]:
    """Time each coroutine function, awaited in a loop in the running event loop."""
    sizes: dict[str, int] = {}
    for name, fn in candidates.items():
        with _around(around, name):
            await fn()
            n = 10
            while True:
                elapsed = await _time_async(fn, n)
                bigger = _next_n(n, elapsed, sample_time)
                if bigger is None:
                    break
                n = bigger
        sizes[name] = _final_n(n, elapsed, sample_time)
    results = {name: Measurement(name, sizes[name]) for name in candidates}
    for order in _rotations(list(candidates), rounds):
        with _GcPaused():
            for name in order:
                n = sizes[name]
                with _around(around, name):
                    elapsed = await _time_async(candidates[name], n)
                results[name].samples.append(elapsed / n)
    return results


async def _maybe_await(value: Any) -> Any:
    return await value if inspect.isawaitable(value) else value


# -- results -----------------------------------------------------------------------------------


@dataclass
class Row:
    candidate: str
    package: str | None
    version: str
    per_call_ns: float
    per_call_ns_median: float
    overhead_ns: float | None  # None for the baseline row
    overhead_ns_median: float | None
    ratio: float | None  # median over rounds of this round's overhead / the reference's
    ratio_min: float | None  # overhead_ns / the reference's overhead_ns
    calls_per_sample: int
    samples_ns: list[float]
    note: str = ""


@dataclass
class Table:
    title: str
    kind: str  # "sync" or "async"
    reference: str | None  # the candidate ratios are relative to
    rows: list[Row]
    skipped: list[Skipped]

    def row(self, candidate: str) -> Row | None:
        return next((r for r in self.rows if r.candidate == candidate), None)

    def overhead_ratio(self, candidate: str, reference: str) -> tuple[float, float] | None:
        """(paired, min-based) overhead ratio of two rows, or ``None`` if one is absent."""
        base, a, b = self.row(BASELINE), self.row(candidate), self.row(reference)
        if base is None or a is None or b is None or a.overhead_ns is None:
            return None
        paired = paired_ratio(base.samples_ns, a.samples_ns, b.samples_ns)
        assert b.overhead_ns is not None
        by_min = a.overhead_ns / b.overhead_ns if b.overhead_ns > 0 else None
        if paired is None or by_min is None:
            return None
        return paired, by_min


@dataclass
class TextTable:
    """A table of ready-formatted cells, for suites whose figures are not per-call overheads.

    ``data`` holds the raw figures (one mapping per row) for the JSON output; ``notes`` are
    printed under the table. The first column is left-aligned, the others right-aligned.
    """

    title: str
    headers: list[str]
    rows: list[list[str]]
    notes: list[str] = field(default_factory=list)
    data: list[dict[str, Any]] = field(default_factory=list)


def paired_ratio(
    base: Sequence[float], candidate: Sequence[float], reference: Sequence[float]
) -> float | None:
    """Median over rounds of the candidate's overhead over the reference's, round by round."""
    ratios = [
        (c - b) / (r - b) for b, c, r in zip(base, candidate, reference, strict=True) if r - b > 0
    ]
    return statistics.median(ratios) if ratios else None


@dataclass
class Bar:
    """A bar the project holds itself to: ``measured <= limit`` passes; ``measured is None``
    means skipped.

    ``valid=False`` (a row it depends on failed its sanity check) makes it ``INVALID``, which
    ``--check`` treats as a failure.
    """

    id: str
    description: str
    limit: float
    measured: float | None
    detail: str = ""
    valid: bool = True

    @property
    def status(self) -> str:
        if not self.valid:
            return "INVALID"
        if self.measured is None:
            return "SKIP"
        return "PASS" if self.measured <= self.limit else "FAIL"


@dataclass(frozen=True)
class Image:
    """A picture a suite wrote: printed as its path, shown in the Markdown report."""

    caption: str
    path: str


@dataclass
class SuiteResult:
    name: str
    tables: list[Table | TextTable] = field(default_factory=list)
    bars: list[Bar] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0
    images: list[Image] = field(default_factory=list)


@dataclass(frozen=True)
class RunConfig:
    rounds: int = 40
    sample_time: float = 0.015
    #: The suites' own command-line options (see :attr:`Suite.options`), by ``dest``.
    options: Mapping[str, Any] = field(default_factory=dict)
    #: This run writes the Markdown report (a full run, or ``--results``): suites that draw
    #: pictures for it draw them then.
    report: bool = False


@dataclass(frozen=True)
class Suite:
    name: str
    title: str
    run: Callable[[RunConfig], SuiteResult]
    #: Adds the suite's own options to the command line's argument group for it; their
    #: values reach ``run`` as ``config.options[dest]`` (prefix the dests with the suite's name).
    options: Callable[[argparse._ArgumentGroup], None] | None = None


async def _check(c: Candidate) -> str | None:
    """The candidate's post-run check, if any; a check that raises is a problem too."""
    if c.check is None:
        return None
    try:
        problem = await _maybe_await(c.check())
    except Exception as exc:
        return f"check raised {type(exc).__name__}: {exc}"
    return str(problem) if problem else None


async def _preflight(c: Candidate, expected: object) -> str | None:
    """One call, which must hand back exactly what the bare function returns."""
    try:
        got = await _maybe_await(c.fn())
    except Exception as exc:
        return f"a call raised {type(exc).__name__}: {exc}"
    if got is not expected:
        return f"a call returned {got!r}, not the bare function's result"
    return None


def overhead_table(
    title: str,
    kind: str,
    candidates: Sequence[Candidate],
    skipped: Sequence[Skipped],
    *,
    reference: str | None,
    config: RunConfig,
) -> Table:
    """Time ``candidates`` (one of them named :data:`BASELINE`) and build the overhead table.

    ``kind`` is ``"sync"`` or ``"async"``; an async table runs in one fresh event loop (sync
    candidates never run inside an event loop). A candidate whose first call raises or does
    not return the bare function's result is skipped; one whose check fails after timing is
    marked ``INVALID``.
    """
    skipped = list(skipped)
    problems: dict[str, str] = {}

    async def timed(asynchronous: bool) -> dict[str, Measurement]:
        nonlocal candidates
        baseline = next(c for c in candidates if c.name == BASELINE)
        expected = await _maybe_await(baseline.fn())
        kept = [baseline]
        for c in candidates:
            if c is not baseline:
                problem = await _preflight(c, expected)
                if problem is None:
                    kept.append(c)
                else:
                    skipped.append(Skipped(c.name, problem))
        candidates = kept
        fns = {c.name: c.fn for c in candidates}
        around = {c.name: c.around for c in candidates if c.around is not None}
        if asynchronous:
            measured = await measure_async(
                fns, rounds=config.rounds, sample_time=config.sample_time, around=around
            )
        else:
            measured = measure_sync(
                fns, rounds=config.rounds, sample_time=config.sample_time, around=around
            )
        for c in candidates:
            problem = await _check(c)
            if problem is not None:
                problems[c.name] = problem
        return measured

    if kind == "async":
        measured = asyncio.run(timed(True))
    else:
        # Drive the (sync) coroutine by hand: no event loop is running while sync code runs.
        coro = timed(False)
        try:
            coro.send(None)
        except StopIteration as done:
            measured = done.value
        else:  # pragma: no cover - a sync candidate's check awaited something
            coro.close()
            raise RuntimeError("a sync candidate's check must not be a coroutine that suspends")

    base = measured[BASELINE]
    ref = measured.get(reference) if reference is not None else None
    ref_overhead = ref.best - base.best if ref is not None else None
    rows: list[Row] = []
    for c in candidates:
        m = measured[c.name]
        is_base = c.name == BASELINE
        overhead = None if is_base else (m.best - base.best) * 1e9
        overhead_median = None if is_base else (m.median - base.median) * 1e9
        ratio = ratio_min = None
        if overhead is not None and ref is not None and ref_overhead is not None:
            ratio = paired_ratio(base.samples, m.samples, ref.samples)
            ratio_min = overhead / (ref_overhead * 1e9) if ref_overhead > 0 else None
        note = c.note
        if c.name in problems:
            note = f"INVALID: {problems[c.name]}" + (f"; {note}" if note else "")
        rows.append(
            Row(
                candidate=c.name,
                package=c.package,
                version=dist_version(c.package),
                per_call_ns=m.best * 1e9,
                per_call_ns_median=m.median * 1e9,
                overhead_ns=overhead,
                overhead_ns_median=overhead_median,
                ratio=ratio,
                ratio_min=ratio_min,
                calls_per_sample=m.calls_per_sample,
                samples_ns=[s * 1e9 for s in m.samples],
                note=note,
            )
        )
    return Table(title, kind, reference, rows, list(skipped))


# -- printing ----------------------------------------------------------------------------------


def _fmt(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def _cells(table: Table | TextTable) -> tuple[list[str], list[list[str]], int, list[str]]:
    """A table's headers, body, number of left-aligned columns, and the lines under it."""
    if isinstance(table, TextTable):
        return table.headers, table.rows, 1, list(table.notes)
    ref = table.reference or "-"
    headers = [
        "candidate",
        "version",
        "ns/call",
        "overhead ns",
        "(median)",
        f"x {ref}",
        "(min)",
        "calls/sample",
    ]
    body = [
        [
            r.candidate,
            r.version,
            _fmt(r.per_call_ns, ",.0f"),
            _fmt(r.overhead_ns, ",.0f"),
            _fmt(r.overhead_ns_median, ",.0f"),
            _fmt(r.ratio, ".2f"),
            _fmt(r.ratio_min, ".2f"),
            f"{r.calls_per_sample:,}",
        ]
        for r in table.rows
    ]
    under = [f"note: {r.candidate}: {r.note}" for r in table.rows if r.note]
    under += [f"skipped: {s.name}: {s.reason}" for s in table.skipped]
    return headers, body, 2, under


def format_table(table: Table | TextTable) -> str:
    headers, body, left, under = _cells(table)
    widths = [max([len(h), *(len(line[i]) for line in body)]) for i, h in enumerate(headers)]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(
            cell.ljust(w) if i < left else cell.rjust(w)
            for i, (cell, w) in enumerate(zip(cells, widths, strict=True))
        ).rstrip()

    out = [table.title, line(headers), line(["-" * w for w in widths])]
    out += [line(cells) for cells in body]
    out += [f"  {text}" for text in under]
    return "\n".join(out)


def format_bar(bar: Bar) -> str:
    measured = "-" if bar.measured is None else f"{bar.measured:.3f}"
    text = f"[{bar.status}] {bar.description}: measured {measured} (limit {bar.limit:g})"
    return text + (f"; {bar.detail}" if bar.detail else "")


def print_suite(result: SuiteResult) -> None:
    print(f"== {result.name} ({result.seconds:.1f} s)")
    for table in result.tables:
        print()
        print(format_table(table))
    if result.bars:
        print()
        for bar in result.bars:
            print(format_bar(bar))
    for note in result.notes:
        print(f"note: {note}")
    for image in result.images:
        print(f"picture: {_display_path(image.path)} ({image.caption})")
    print()


# -- Markdown: benchmarks/RESULTS.md -----------------------------------------------------------

RESULTS_PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "RESULTS.md")

#: Distributions whose versions the report lists: seawall, the peers, what they run on.
REPORT_PACKAGES = (
    "seawall",
    "pybreaker",
    "circuitbreaker",
    "aiobreaker",
    "purgatory",
    "interlock-cb",
    "tenacity",
    "stamina",
    "backoff",
    "httpx",
    "httpx-retries",
    "prometheus-client",
    "opentelemetry-api",
    "opentelemetry-sdk",
)


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def markdown_table(table: Table | TextTable) -> str:
    """The table as GitHub-flavoured Markdown: its title, the grid, and the lines under it."""
    headers, body, left, under = _cells(table)
    align = [":---" if i < left else "---:" for i in range(len(headers))]
    out = [f"**{_md_cell(table.title)}**", ""]
    out.append("| " + " | ".join(_md_cell(h) for h in headers) + " |")
    out.append("| " + " | ".join(align) + " |")
    out += ["| " + " | ".join(_md_cell(c) for c in cells) + " |" for cells in body]
    if under:
        out.append("")
        out += [f"- {text}" for text in under]
    return "\n".join(out)


def format_bar_markdown(bar: Bar) -> str:
    measured = "-" if bar.measured is None else f"{bar.measured:.3f}"
    text = f"**{bar.status}** {bar.description}: measured {measured} (limit {bar.limit:g})"
    return text + (f"; {bar.detail}" if bar.detail else "")


def results_markdown(
    results: Sequence[SuiteResult],
    config: RunConfig,
    *,
    command: str,
    titles: Mapping[str, str] | None = None,
    generated_at: datetime | None = None,
    path: str = RESULTS_PATH,
) -> str:
    """The report ``benchmarks/run.py`` writes: when, where, how, and every suite's tables,
    bar verdicts and notes, as they were printed, and its pictures (linked relative to
    ``path``, where the report goes)."""
    env = environment()
    when = (generated_at or datetime.now(UTC)).isoformat(timespec="seconds")
    out = [
        "# seawall benchmark results",
        "",
        f"Written by `{command}` at {when}. Every figure below comes from that one run; "
        "rerun the command (`make bench` runs `benchmarks/run.py`) to refresh this file.",
        "",
        "## Machine",
        "",
        f"- CPUs: {env['cpus']}",
        f"- Python: {env['implementation']} {env['python']}",
        f"- platform: {env['platform']} ({env['machine']})",
        "",
        "| package | version |",
        "| :--- | :--- |",
    ]
    out += [f"| {name} | {dist_version(name)} |" for name in REPORT_PACKAGES]
    out += [
        "",
        "## Method of the timing suites",
        "",
        f"{METHOD}; {config.rounds} rounds x ~{config.sample_time * 1000:g} ms per candidate. "
        "Each suite's module docstring (`benchmarks/bench_<suite>.py`) says what it measures "
        "and how.",
    ]
    for result in results:
        title = (titles or {}).get(result.name)
        heading = f"{result.name}: {title}" if title else result.name
        out += ["", f"## {heading}", "", f"Ran in {result.seconds:.1f} s."]
        for table in result.tables:
            out += ["", markdown_table(table)]
        if result.bars:
            out += ["", "Bars:", ""]
            out += [f"- {format_bar_markdown(bar)}" for bar in result.bars]
        if result.notes:
            out += ["", "Notes:", ""]
            out += [f"- {note}" for note in result.notes]
        for image in result.images:
            link = os.path.relpath(image.path, os.path.dirname(os.path.abspath(path)))
            link = link.replace(os.sep, "/")
            out += ["", f"![{_md_cell(image.caption)}]({link})"]
    return "\n".join(out) + "\n"


def _command(argv: Sequence[str] | None) -> str:
    """The command line that started this run, as one could type it again."""
    python = sys.executable or "python"
    try:
        relative = os.path.relpath(python)
    except ValueError:  # pragma: no cover - another drive (Windows)
        relative = python
    if not relative.startswith(os.pardir):
        python = relative
    args = sys.argv[1:] if argv is None else list(argv)
    from_command_line = args == sys.argv[1:] and sys.argv[0].endswith(".py")
    script = sys.argv[0] if from_command_line else "benchmarks/run.py"
    return shlex.join([python, script, *args])


def _display_path(path: str) -> str:
    relative = os.path.relpath(path)
    return path if relative.startswith(os.pardir) else relative


# -- JSON and the command line -----------------------------------------------------------------


def environment() -> dict[str, Any]:
    return {
        "python": sys.version.split()[0],
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "seawall": dist_version("seawall"),
    }


def to_json(results: Sequence[SuiteResult], config: RunConfig) -> dict[str, Any]:
    def bar_json(bar: Bar) -> dict[str, Any]:
        return {**asdict(bar), "status": bar.status}

    return {
        "schema": 1,
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "environment": environment(),
        "method": {
            "summary": METHOD,
            "rounds": config.rounds,
            "sample_time": config.sample_time,
            "unit": "ns/call",
        },
        "suites": {
            r.name: {
                "seconds": r.seconds,
                "tables": [asdict(t) for t in r.tables],
                "bars": [bar_json(b) for b in r.bars],
                "notes": r.notes,
                "images": [asdict(i) for i in r.images],
            }
            for r in results
        },
    }


def cli(
    argv: Sequence[str] | None, suites: Mapping[str, Suite], *, full_report: bool = False
) -> int:
    """Parse ``argv`` (default ``sys.argv[1:]``), run the suites, print and write results.

    ``full_report``: ``suites`` is every suite there is (``benchmarks/run.py``), so a run of
    all of them writes :data:`RESULTS_PATH` unless ``--no-results``. A suite module run on its
    own passes ``False``: it writes a report only when ``--results`` asks for one.
    """
    parser = argparse.ArgumentParser(
        prog="benchmarks/run.py", description="Run seawall's benchmark suites."
    )
    parser.add_argument(
        "suite", nargs="*", help=f"suites to run (default: all of {', '.join(suites)})"
    )
    parser.add_argument("--rounds", type=int, default=RunConfig.rounds, help="default %(default)s")
    parser.add_argument(
        "--sample-time",
        type=float,
        default=RunConfig.sample_time,
        help="seconds per candidate per round (default %(default)s)",
    )
    parser.add_argument("--json", metavar="PATH", help="also write results as JSON to PATH")
    parser.add_argument(
        "--results",
        metavar="PATH",
        nargs="?",
        const=RESULTS_PATH,
        help="write the Markdown report to PATH (without PATH: benchmarks/RESULTS.md). By "
        "default a run of every suite writes benchmarks/RESULTS.md and a run of some suites "
        "writes nothing",
    )
    parser.add_argument(
        "--no-results", action="store_true", help="write no Markdown report, even for a full run"
    )
    parser.add_argument(
        "--check", action="store_true", help="exit 1 if a bar fails (default: report only)"
    )
    parser.add_argument("--list", action="store_true", help="list the suites and exit")
    parser.add_argument(
        "--otel-sdk",
        action="store_true",
        help="install an OpenTelemetry SDK meter provider first (its reader never collects "
        "during the run, so seawall's calling threads hand their queued histogram values to "
        "the SDK themselves, 65,536 at a time)",
    )
    parser.add_argument(
        "--metrics-off",
        action="store_true",
        help="turn seawall's exporters off first: configure(prometheus=False, otel=False)",
    )
    suite_options: list[str] = []
    for suite in suites.values():
        if suite.options is not None:
            group = parser.add_argument_group(f"options of the {suite.name} suite")
            suite.options(group)
            suite_options += [action.dest for action in group._group_actions]
    args = parser.parse_args(argv)
    if args.metrics_off:
        import seawall.metrics

        seawall.metrics.configure(prometheus=False, otel=False)
        print("seawall's exporters off: configure(prometheus=False, otel=False)")
    if args.otel_sdk:
        from opentelemetry import metrics as otel_metrics
        from opentelemetry.sdk.metrics import MeterProvider
        from opentelemetry.sdk.metrics.export import InMemoryMetricReader

        otel_metrics.set_meter_provider(MeterProvider(metric_readers=[InMemoryMetricReader()]))
        print("OpenTelemetry SDK installed: MeterProvider with an InMemoryMetricReader")

    if args.list:
        for suite in suites.values():
            print(f"{suite.name:12} {suite.title}")
        return 0
    unknown = [s for s in args.suite if s not in suites]
    if unknown:
        parser.error(f"unknown suite(s) {', '.join(unknown)}; known: {', '.join(suites)}")
    if args.rounds < 1 or args.sample_time <= 0:
        parser.error("--rounds must be >= 1 and --sample-time > 0")
    if args.no_results and args.results:
        parser.error("--results and --no-results contradict each other")
    selected = list(dict.fromkeys(args.suite)) or list(suites)
    results_path: str | None = args.results
    full_run = full_report and set(selected) == set(suites)
    if results_path is None and not args.no_results and full_run:
        results_path = RESULTS_PATH  # a full run refreshes the report; a partial one does not
    config = RunConfig(
        rounds=args.rounds,
        sample_time=args.sample_time,
        options={dest: getattr(args, dest) for dest in suite_options},
        report=results_path is not None,
    )

    env = environment()
    print(
        f"seawall {env['seawall']} benchmarks: {env['implementation']} {env['python']} on "
        f"{env['platform']} ({env['cpus']} CPUs)"
    )
    print(f"method: {METHOD}")
    print(f"{config.rounds} rounds x ~{config.sample_time * 1000:g} ms per candidate")
    print()

    results: list[SuiteResult] = []
    for name in selected:
        start = time.perf_counter()
        result = suites[name].run(config)
        result.seconds = time.perf_counter() - start
        print_suite(result)
        results.append(result)

    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(to_json(results, config), f, indent=2)
            f.write("\n")
        print(f"wrote {args.json}")
    if results_path is not None:
        report = results_markdown(
            results,
            config,
            command=_command(argv),
            titles={name: suite.title for name, suite in suites.items()},
            path=results_path,
        )
        with open(results_path, "w", encoding="utf-8") as f:
            f.write(report)
        print(f"wrote {_display_path(results_path)}")
    failed = [b for r in results for b in r.bars if b.status in ("FAIL", "INVALID")]
    return 1 if args.check and failed else 0


# -- what the suites share -------------------------------------------------------------------

RESULT = object()  # what every no-op returns; each candidate must hand back this very object


def noop() -> Callable[[], object]:
    """A fresh sync no-op per candidate, so no library sees another's decorated function."""

    def noop() -> object:
        return RESULT

    return noop


def anoop() -> Callable[[], Coroutine[Any, Any, object]]:
    """A fresh async no-op per candidate."""

    async def noop() -> object:
        return RESULT

    return noop


def bare(fn: Callable[[], Any]) -> Callable[[], Candidate]:
    """The baseline candidate: ``fn`` itself, undecorated."""
    return lambda: Candidate(BASELINE, fn)


def invalid_rows(table: Table, names: tuple[str, ...]) -> list[str]:
    """The candidates among ``names`` whose post-timing check failed."""
    return [
        r.candidate for r in table.rows if r.candidate in names and r.note.startswith("INVALID")
    ]


METRICS_NOTE = (
    "metrics on, as users run it: seawall records its call-level SLI and keeps every "
    "count on the success path; its exporters only read them when scraped, so turning "
    "them off (configure(prometheus=False, otel=False)) changes nothing measured here"
)


def otel_sdk() -> Callable[[], AbstractContextManager[None]]:
    """A context under which seawall reports through an OpenTelemetry SDK of its own: a
    ``MeterProvider`` with an ``InMemoryMetricReader``, configured on entry and the previous
    target put back on exit. On exit (untimed) the reader collects, as a periodic reader does
    on its own thread, so that what the collection costs is not on the measured calls' path.
    Raises ``ImportError`` (a skipped candidate) without the SDK."""
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader

    import seawall.metrics
    from seawall.metrics import _otel

    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader], shutdown_on_exit=False)
    # The reader collects between samples, so no more values wait than a sample makes: the
    # hand-over thread (another thread's work, as the reader's) is kept out of the samples.
    previous = _otel._target
    threshold = _otel._HAND_OVER_AT
    _otel._HAND_OVER_AT = _otel._PENDING_CAP
    try:
        seawall.metrics.configure(otel=provider)  # its exporter is made now, with that threshold
    finally:
        _otel._HAND_OVER_AT = threshold
        seawall.metrics.configure(otel=True if previous is None else previous)

    @contextmanager
    def around() -> Iterator[None]:
        previous = _otel._target
        seawall.metrics.configure(otel=provider)
        try:
            yield
        finally:
            reader.collect()
            seawall.metrics.configure(otel=True if previous is None else previous)

    return around


OTEL_NOTE = (
    "under an OpenTelemetry SDK (MeterProvider + InMemoryMetricReader, configure(otel=...)) "
    "only while this row runs; the reader collects after each sample, untimed, as a periodic "
    "reader does on its own thread (seawall's hand-over thread, which drains on its own "
    "thread when 16,384 values wait between collections, is kept out of the samples: the "
    "SDK's cost per value is paid there, not on the caller's thread)"
)


def added_bar(
    table: Table, candidate: str, base: str, *, bar_id: str, description: str, limit_us: float
) -> Bar:
    """A bar on what ``candidate`` adds per call over ``base`` (same table), in µs: the
    difference of their minimums, as the ``overhead ns`` column is measured. An absolute time
    swings with the machine's speed (on a loaded 2-CPU VM a round's median call took up to 2x
    its best): the best round of each is the stable figure. The median over rounds of the
    same-round differences is shown alongside."""
    a, b = table.row(candidate), table.row(base)
    if a is None or b is None:
        missing = base if a is not None else candidate
        return Bar(bar_id, description, limit_us, None, f"{missing} not measured")
    paired = statistics.median(
        (x - y) / 1000 for x, y in zip(a.samples_ns, b.samples_ns, strict=True)
    )
    invalid = [r.candidate for r in (a, b) if r.note.startswith("INVALID")]
    detail = (
        f"{candidate} - {base}: difference of minimums, in µs; paired per-round median "
        f"{paired:.3f} µs"
    )
    if invalid:
        detail += f"; failed the success-path check: {', '.join(invalid)}"
    measured = (a.per_call_ns - b.per_call_ns) / 1000
    return Bar(bar_id, description, limit_us, measured, detail, not invalid)


def overhead_suite(
    config: RunConfig,
    *,
    name: str,
    subject: str,
    sync: list[tuple[str, Callable[[], Candidate]]],
    async_: list[tuple[str, Callable[[], Candidate]]],
    sync_title: str,
    async_title: str,
    sync_reference: str,
    async_reference: str,
    bar_id: str,
    bar_description: str,
    limit: float,
    missing: str,
) -> SuiteResult:
    """What every overhead suite does: a sync and an async table against a reference, the
    bar on the sync ratio of ``subject``, and the async ratio as a note."""
    result = SuiteResult(name)
    sync_candidates, sync_skipped = build_candidates(sync)
    async_candidates, async_skipped = build_candidates(async_)
    if not any(c.name == subject for c in sync_candidates):
        result.notes.append("seawall itself is not importable: nothing to measure")
        return result
    sync_table = overhead_table(
        sync_title, "sync", sync_candidates, sync_skipped, reference=sync_reference, config=config
    )
    async_table = overhead_table(
        async_title,
        "async",
        async_candidates,
        async_skipped,
        reference=async_reference,
        config=config,
    )
    result.tables += [sync_table, async_table]

    ratio = sync_table.overhead_ratio(subject, sync_reference)
    invalid = invalid_rows(sync_table, (subject, sync_reference))
    if ratio is None:
        detail = missing
    else:
        detail = f"paired per-round median; ratio of minimums {ratio[1]:.3f}"
    if invalid:
        detail += f"; failed the success-path check: {', '.join(invalid)}"
    result.bars.append(
        Bar(
            id=bar_id,
            description=bar_description,
            limit=limit,
            measured=None if ratio is None else ratio[0],
            detail=detail,
            valid=not invalid,
        )
    )
    async_ratio = async_table.overhead_ratio(subject, async_reference)
    if async_ratio is not None:
        invalid = invalid_rows(async_table, (subject, async_reference))
        result.notes.append(
            f"async (reported, not a bar): {subject} overhead = {async_ratio[0]:.3f} x "
            f"{async_reference}'s (paired; ratio of minimums {async_ratio[1]:.3f})"
            + (f"; failed the success-path check: {', '.join(invalid)}" if invalid else "")
        )
    result.notes.append(METRICS_NOTE)
    return result
