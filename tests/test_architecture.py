"""ARCHITECTURE.md's layer map is the code's: every module is in it, and none imports from a
layer below its own (imports made only for type checking aside)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SRC = ROOT / "src" / "seawall"
DOC = (ROOT / "ARCHITECTURE.md").read_text()


def layers() -> dict[str, int]:
    """Module (``_base``, ``httpx/``, ...) → its layer's position in the document's table."""
    table = DOC.split("## Layers", 1)[1].split("\n## ", 1)[0]
    out: dict[str, int] = {}
    rows = [line for line in table.splitlines() if line.startswith("| ") and "`" in line]
    for index, row in enumerate(rows):
        modules = row.split("|")[2]
        for name in re.findall(r"`([\w/]+)`", modules):
            out[name] = index
    return out


def layer_of(module: str, table: dict[str, int]) -> int:
    """``module`` as a dotted name under seawall (``_base``, ``httpx._transport``, ...)."""
    package = module.split(".", 1)[0]
    if f"{package}/" in table:
        return table[f"{package}/"]
    return table[module]


def modules() -> dict[str, Path]:
    out = {}
    for path in SRC.rglob("*.py"):
        relative = path.relative_to(SRC).with_suffix("")
        parts = [part for part in relative.parts if part != "__init__"]
        if parts:
            out[".".join(parts)] = path
    return out


def imports(path: Path) -> set[str]:
    """The seawall modules ``path`` imports when it runs (not under TYPE_CHECKING)."""
    tree = ast.parse(path.read_text())
    skipped: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skipped.update(id(child) for child in ast.walk(node))
    found = set()
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("seawall"):
            if node.module == "seawall":
                found.update(alias.name for alias in node.names)
            else:
                found.add(node.module.removeprefix("seawall."))
        elif isinstance(node, ast.Import):
            found.update(
                alias.name.removeprefix("seawall.")
                for alias in node.names
                if alias.name.startswith("seawall.")
            )
    return found


def test_every_module_is_on_the_map() -> None:
    table = layers()
    for module in modules():
        if module in ("httpx", "metrics", "_stats"):
            continue  # the packages themselves: their modules are mapped
        layer_of(module, table)  # a KeyError names a module the document misses


def test_no_module_imports_from_a_layer_below_its_own() -> None:
    table = layers()
    found = modules()
    wrong = []
    for module, path in found.items():
        if module in ("httpx", "metrics", "_stats"):
            own = table[f"{module}/"]
        elif module == "":
            continue
        else:
            own = layer_of(module, table)
        for imported in imports(path):
            if imported not in found:
                continue
            if layer_of(imported, table) > own:
                wrong.append(f"{module} imports {imported}")
    assert wrong == []


def test_the_checks_see_imports_and_layers() -> None:
    table = layers()
    assert len(set(table.values())) == 7
    assert {"_stats", "_stats.calls"} <= imports(SRC / "_base.py")
    assert "_fallback" not in imports(SRC / "_base.py")  # for type checking only
    assert layer_of("metrics._readings", table) > layer_of("httpx._transport", table)
