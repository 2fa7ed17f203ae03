"""The README's code: every Python block compiles, and what it names exists."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

README = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
BLOCKS = re.findall(r"```python\n(.*?)```", README, re.DOTALL)


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
