"""Writing a spec's files into a directory."""

from __future__ import annotations

from pathlib import Path

from seawall.slo._dashboard import write_dashboard
from seawall.slo._rules import rules
from seawall.slo._runbooks import write_runbooks
from seawall.slo._spec import Spec
from seawall.slo._tests import write_tests

__all__ = ["generate", "to_yaml"]


def to_yaml(data: object) -> str:
    """``data`` as YAML a person reads: no anchors, multi-line strings as ``|`` blocks."""
    import yaml

    class Dumper(yaml.SafeDumper):
        def ignore_aliases(self, data: object) -> bool:
            return True

    def text(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
        style = "|" if "\n" in value else None
        return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)

    Dumper.add_representer(str, text)
    return yaml.dump(data, Dumper=Dumper, sort_keys=False, width=100, allow_unicode=True)


def generate(spec: Spec, out: str | Path) -> list[Path]:
    """Write ``rules.yaml``, ``dashboard.json``, ``runbooks/<alert>.md`` and ``tests.yaml`` (the
    ``promtool test rules`` file proving the rules) for ``spec`` into ``out`` (made if
    missing); the paths written."""
    directory = Path(out)
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    path = directory / "rules.yaml"
    path.write_text(to_yaml(rules(spec)))
    written.append(path)
    written += write_dashboard(spec, directory)
    written += write_runbooks(spec, directory)
    written.append(write_tests(spec, directory))
    return written
