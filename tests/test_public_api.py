"""The public API is exactly what ``__all__`` says, in ``seawall`` and in each public submodule.

Data-driven: the tests read ``__all__`` and the modules' namespaces, so they keep working (and
keep guarding) as names and subpackages are added.
"""

from __future__ import annotations
import __future__

import importlib
import importlib.metadata
import importlib.resources
import inspect
import pkgutil
from types import ModuleType

import pytest

import seawall

#: What the design (section 2) promises to import from ``seawall``.
PUBLIC_NAMES = (
    "CircuitBreaker",
    "Retry",
    "RetryBudget",
    "Timeout",
    "Bulkhead",
    "Fallback",
    "Policy",
    "Pipeline",
    "CircuitState",
    "SeawallError",
    "RejectedError",
    "CircuitOpenError",
    "BulkheadFullError",
    "TimeoutExceededError",
)


def public_submodules() -> list[str]:
    """``seawall.testing`` and the like: every module or subpackage without an underscore."""
    return sorted(
        f"seawall.{info.name}"
        for info in pkgutil.iter_modules(seawall.__path__)
        if not info.name.startswith("_")
    )


def public_attributes(module: ModuleType) -> set[str]:
    """Names a user can import from ``module`` that look public.

    Submodules and ``from __future__`` directives are not API; dunders are not public names.
    In ``seawall`` itself every other name counts (it is what users import from); in a public
    submodule only what the submodule defines counts, not the helpers it imports to use.
    """
    names = set()
    for name, value in vars(module).items():
        if name.startswith("_"):
            continue
        if isinstance(value, ModuleType | __future__._Feature):
            continue
        if module is not seawall and getattr(value, "__module__", module.__name__) != (
            module.__name__
        ):
            continue
        names.add(name)
    return names


MODULES = ["seawall", *public_submodules()]


def test_public_submodules_are_found() -> None:
    assert "seawall.testing" in MODULES


@pytest.mark.parametrize("module_name", MODULES)
def test_all_has_no_duplicates(module_name: str) -> None:
    exported = importlib.import_module(module_name).__all__
    assert len(exported) == len(set(exported))
    assert all(isinstance(name, str) for name in exported)


@pytest.mark.parametrize("module_name", MODULES)
def test_everything_in_all_is_importable(module_name: str) -> None:
    module = importlib.import_module(module_name)
    namespace: dict[str, object] = {}
    exec(f"from {module_name} import *", namespace)
    for name in module.__all__:
        assert hasattr(module, name), f"{module_name}.__all__ names missing {name!r}"
        assert namespace[name] is getattr(module, name)
    star = {name for name in namespace if name != "__builtins__"}
    assert star == set(module.__all__)


@pytest.mark.parametrize("module_name", MODULES)
def test_no_public_attribute_is_missing_from_all(module_name: str) -> None:
    module = importlib.import_module(module_name)
    missing = public_attributes(module) - set(module.__all__)
    assert missing == set(), f"public in {module_name} but not in __all__: {sorted(missing)}"


@pytest.mark.parametrize("module_name", MODULES)
def test_exported_classes_and_functions_are_seawalls_own_and_documented(
    module_name: str,
) -> None:
    module = importlib.import_module(module_name)
    for name in module.__all__:
        value = getattr(module, name)
        if not (inspect.isclass(value) or inspect.isfunction(value)):
            continue
        assert value.__module__.startswith("seawall"), f"{name} comes from {value.__module__}"
        assert inspect.getdoc(value), f"{module_name}.{name} has no docstring"


def test_version() -> None:
    assert "__version__" in seawall.__all__
    assert seawall.__version__ == importlib.metadata.version("seawall")


def test_package_is_typed() -> None:
    assert importlib.resources.files("seawall").joinpath("py.typed").is_file()


def test_design_names_that_exist_are_exported() -> None:
    missing = [name for name in PUBLIC_NAMES if not hasattr(seawall, name)]
    for name in PUBLIC_NAMES:
        if name not in missing:
            assert name in seawall.__all__
    if missing:
        pytest.skip(f"not implemented yet: {', '.join(missing)}")


def test_foundation_names() -> None:
    for name in (
        "BreakerEvent",
        "BreakerSnapshot",
        "CallFailed",
        "CallRejected",
        "CircuitBreaker",
        "CircuitOpenError",
        "CircuitState",
        "Clock",
        "RejectedError",
        "SeawallError",
        "StateChange",
        "SystemClock",
        "TimeoutExceededError",
        "BulkheadFullError",
    ):
        assert name in seawall.__all__
    assert "FakeClock" in seawall.testing.__all__  # type: ignore[attr-defined]


def test_private_modules_stay_private() -> None:
    for name in seawall.__all__:
        assert not name.startswith("_") or name == "__version__"
