"""Each generated ``dashboard.json`` type-checks against Grafana's own published dashboard
types, and the check fails a dashboard Grafana's schema does not allow.

No Grafana server can be run here, so no dashboard is imported live. What is checked instead is
what Grafana publishes for the JSON model: ``@grafana/schema`` on npm, the TypeScript types
generated from the CUE schemas of Grafana's dashboard and of its panel plugins, at the version
pinned in ``tests/grafana/package.json`` (Grafana 10.4: ``schemaVersion`` 39, the dashboard's).
``tests/grafana/types.ts`` builds, from them, one type per kind of panel: the dashboard model
(``Dashboard``, rows, variables, annotations), each panel's options and custom field config
(timeseries, stat, table), every override's property (its id must name a field-config setting,
and its value be of that setting's type) and each target (a Prometheus query). Each dashboard is
written as a TypeScript module, every panel ``satisfies`` its kind's type, and ``tsc --strict
--noEmit`` runs on it: an unknown key, a missing required one or a value of the wrong type (a
string no enum of Grafana's has, say) fails the test. Not checked: what the types leave open
(a transformation's options, a matcher's options, a mapping's result beyond its color and
index) and anything only a running Grafana does (its migrations, the queries' results).

The npm packages are installed by this test (``npm ci``, exactly as locked, in about 2 s) into a
cache directory keyed by the lock file, and reused; the test skips, saying why, where node or
npm is missing or the install fails (no registry).
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from seawall import slo
from tests.test_slo_promtool import SPECS, TINY, many

HERE = Path(__file__).parent / "grafana"
NODE, NPM = shutil.which("node"), shutil.which("npm")

#: Each panel type the dashboards use, and its type in tests/grafana/types.ts.
KINDS = {
    "row": "RowPanel",
    "timeseries": "TimeSeriesPanel",
    "stat": "StatPanel",
    "table": "TablePanel",
}

DASHBOARDS = {**SPECS, "tiny": TINY, "four-slos": many(4)}


def _cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "seawall" / "grafana-check"


@pytest.fixture(scope="module")
def node_modules() -> Path:
    """``node_modules`` with the locked packages: installed once per lock file, then reused."""
    if NODE is None or NPM is None:
        pytest.skip("node and npm are not on PATH (Debian's nodejs and npm packages have them)")
    lock = (HERE / "package-lock.json").read_bytes()
    manifest = (HERE / "package.json").read_bytes()
    key = hashlib.sha256(manifest + lock).hexdigest()[:16]
    place = _cache_root() / key
    done = place / "node_modules" / ".seawall-installed"
    if not done.exists():
        shutil.rmtree(place, ignore_errors=True)
        place.mkdir(parents=True)
        shutil.copy(HERE / "package.json", place)
        shutil.copy(HERE / "package-lock.json", place)
        try:
            installed = subprocess.run(
                [NPM, "ci", "--no-audit", "--no-fund", "--ignore-scripts", "--fetch-retries=1"],
                cwd=place,
                capture_output=True,
                text=True,
                timeout=300,
                check=False,
            )
        except subprocess.TimeoutExpired:
            pytest.skip("npm ci did not finish in 300 s (is the npm registry reachable?)")
        if installed.returncode != 0:
            pytest.skip(f"npm ci failed (is the npm registry reachable?):\n{installed.stderr}")
        done.touch()
    return place / "node_modules"


def typescript(name: str, board: dict[str, Any]) -> str:
    """``board`` as a TypeScript module: each panel ``satisfies`` its kind's type, and the
    dashboard, with those panels, ``satisfies`` Grafana's ``Dashboard``."""
    lines = [
        "import type { Dashboard, RowPanel, StatPanel, TablePanel, TimeSeriesPanel } "
        "from './types';",
        "",
    ]
    names = []
    for index, panel in enumerate(board["panels"]):
        kind = KINDS.get(panel.get("type"), "never")  # a type no panel satisfies
        names.append(f"panel{index}")
        lines.append(
            f"const panel{index} = {json.dumps(panel, indent=2)} satisfies {kind};  // {name}"
        )
    rest = {**board, "panels": "@PANELS@"}
    text = json.dumps(rest, indent=2).replace('"@PANELS@"', "[" + ", ".join(names) + "]")
    lines += [f"export const dashboard = {text} satisfies Dashboard;", ""]
    return "\n".join(lines)


def tsc(node_modules: Path, work: Path, boards: dict[str, dict[str, Any]]) -> str:
    """Type-check each of ``boards`` (by name) in ``work``; tsc's report, empty if all pass."""
    assert NODE is not None
    shutil.copy(HERE / "types.ts", work / "types.ts")
    (work / "node_modules").symlink_to(node_modules, target_is_directory=True)
    files = []
    for name, board in boards.items():
        path = work / f"{name}.ts"
        path.write_text(typescript(name, board))
        files.append(path.name)
    checked = subprocess.run(
        [
            NODE,
            str(node_modules / "typescript" / "bin" / "tsc"),
            "--noEmit",
            "--strict",
            "--exactOptionalPropertyTypes",
            "--noUncheckedIndexedAccess",
            "--target",
            "es2022",
            "--module",
            "esnext",
            "--moduleResolution",
            "bundler",
            "--skipLibCheck",
            "false",
            "--pretty",
            "false",
            *files,
        ],
        cwd=work,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert checked.returncode in (0, 2), checked  # 2: errors found in the files
    return checked.stdout + checked.stderr


def generated(text: str, out: Path) -> dict[str, Any]:
    slo.generate(slo.load(text), out)
    board: dict[str, Any] = json.loads((out / "dashboard.json").read_text())
    return board


def test_every_generated_dashboard_type_checks_against_grafanas_schema(
    node_modules: Path, tmp_path: Path
) -> None:
    boards = {
        name.replace("-", "_"): generated(text, tmp_path / "out" / name)
        for name, text in DASHBOARDS.items()
    }
    kinds = {panel["type"] for board in boards.values() for panel in board["panels"]}
    assert kinds == set(KINDS), kinds  # a new kind of panel needs its type in types.ts
    work = tmp_path / "ts"
    work.mkdir()
    report = tsc(node_modules, work, boards)
    assert report == "", report


def _panel(board: dict[str, Any], kind: str) -> dict[str, Any]:
    panel: dict[str, Any] = next(p for p in board["panels"] if p["type"] == kind)
    return panel


def _override(board: dict[str, Any], kind: str, id_: str) -> dict[str, Any]:
    """The property ``id_`` of the first override of the first panel of ``kind``."""
    (override, *_) = _panel(board, kind)["fieldConfig"]["overrides"]
    found: dict[str, Any] = next(p for p in override["properties"] if p["id"] == id_)
    return found


#: Dashboards broken on purpose, as a slip in _dashboard.py might: (what is changed, the text
#: of tsc's error on it).
BROKEN = {
    "schema-version-a-string": (
        lambda b: b.update(schemaVersion="39"),
        "Type 'string' is not assignable to type 'number'",
    ),
    "variable-type-unknown": (
        lambda b: b["templating"]["list"][0].update(type="datasources"),
        '"datasources"',
    ),
    "variable-current-empty": (
        lambda b: b["templating"]["list"][0].update(current={}),
        "text, value",
    ),
    "row-not-collapsible": (
        lambda b: b["panels"][0].pop("collapsed"),
        'Type \'{ type: "row"; ',  # tsc names no missing key: the row is not a RowPanel
    ),
    "panel-type-unknown": (lambda b: _panel(b, "stat").update(type="singlestat"), "type 'never'"),
    "draw-style-unknown": (
        lambda b: _panel(b, "timeseries")["fieldConfig"]["defaults"]["custom"].update(
            drawStyle="lines"
        ),
        '"lines"',
    ),
    "custom-option-misspelt": (
        lambda b: _panel(b, "timeseries")["fieldConfig"]["defaults"]["custom"].update(
            showPoint="never"
        ),
        "showPoint",
    ),
    "legend-option-unknown": (
        lambda b: _panel(b, "timeseries")["options"]["legend"].update(show=True),
        "show",
    ),
    "stat-color-mode-unknown": (
        lambda b: _panel(b, "stat")["options"].update(colorMode="backgrounds"),
        '"backgrounds"',
    ),
    "threshold-mode-unknown": (
        lambda b: _panel(b, "stat")["fieldConfig"]["defaults"]["thresholds"].update(mode="absolut"),
        '"absolut"',
    ),
    "override-id-unknown": (
        lambda b: _override(b, "timeseries", "custom.lineStyle").update(id="custom.lineStyles"),
        "custom.lineStyles",
    ),
    "override-value-of-wrong-type": (
        lambda b: _override(b, "timeseries", "custom.lineStyle").update(value="dash"),
        '{ id: "custom.lineStyle"; value: string; }',
    ),
    "cell-type-unknown": (
        lambda b: _override(b, "table", "custom.cellOptions").update(
            value={"type": "color-backgrounds"}
        ),
        '"color-backgrounds"',
    ),
    "cell-options-a-string": (
        lambda b: _override(b, "table", "custom.cellOptions").update(value="color-background"),
        '{ id: "custom.cellOptions"; value: string; }',
    ),
    "target-without-ref-id": (lambda b: _panel(b, "stat")["targets"][0].pop("refId"), "refId"),
    "target-format-unknown": (
        lambda b: _panel(b, "table")["targets"][0].update(format="tables"),
        '"tables"',
    ),
}


def test_the_check_fails_a_dashboard_grafanas_schema_does_not_allow(
    node_modules: Path, tmp_path: Path
) -> None:
    board = generated(SPECS["example"], tmp_path / "out")
    boards = {}
    for name, (change, _) in BROKEN.items():
        broken = copy.deepcopy(board)
        change(broken)
        boards[name.replace("-", "_")] = broken
    work = tmp_path / "ts"
    work.mkdir()
    report = tsc(node_modules, work, boards)
    for name, (_, says) in BROKEN.items():
        errors = [
            line for line in report.splitlines() if line.startswith(name.replace("-", "_") + ".ts(")
        ]
        assert errors, f"{name}: no error\n{report}"
        assert any(says in error for error in errors), f"{name}: {errors}"
