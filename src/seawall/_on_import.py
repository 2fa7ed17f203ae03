"""Run a function once a module has been imported: now if it has been, else right after its
first import completes.

``import seawall`` must stay cheap, and prometheus-client and opentelemetry-api cost more to
import than the rest of seawall. Their out-of-the-box setup (seawall's collector in the
default registry, its instruments on the global meter provider) only matters to a program
that uses them, and such a program imports them: the setup waits for that import. A finder at
the front of ``sys.meta_path`` watches for the awaited names; it wraps the loader of the spec
the other finders return, runs the module as that loader would, puts the loader back on the
module, and then calls the waiting functions. It removes itself once nothing is awaited.

A waiting function runs inside the importer's ``import`` statement: one that fails is logged,
never raised into the import.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable, Sequence
from types import ModuleType
from typing import TYPE_CHECKING, Any

from seawall import _log

if TYPE_CHECKING:
    from importlib.machinery import ModuleSpec

__all__ = ["after_import", "awaited"]


_lock = threading.Lock()
_waiting: dict[str, list[Callable[[], None]]] = {}


class _Loader:
    """The module's own loader, plus the waiting functions once the module has run."""

    def __init__(self, loader: Any, name: str) -> None:
        self.loader = loader
        self.name = name

    def __getattr__(self, name: str) -> Any:
        # Anything else a loader offers (get_filename, get_code, is_package, ...) is its own.
        return getattr(self.loader, name)

    def create_module(self, spec: ModuleSpec) -> ModuleType | None:
        create = getattr(self.loader, "create_module", None)
        return None if create is None else create(spec)

    def exec_module(self, module: ModuleType) -> None:
        # The module keeps its own loader (for its resources, reloads, introspection).
        module.__loader__ = self.loader
        spec = getattr(module, "__spec__", None)
        if spec is not None and spec.loader is self:
            spec.loader = self.loader
        self.loader.exec_module(module)
        _run(self.name)


class _Finder:
    """Finds nothing itself: hands back the other finders' spec with a watching loader."""

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> ModuleSpec | None:
        if fullname not in _waiting:
            return None
        for finder in list(sys.meta_path):
            find = None if finder is self else getattr(finder, "find_spec", None)
            if find is None:
                continue
            spec: ModuleSpec | None = find(fullname, path, target)
            if spec is not None:
                break
        else:
            return None
        if spec.loader is not None and hasattr(spec.loader, "exec_module"):
            spec.loader = _Loader(spec.loader, fullname)  # type: ignore[assignment]
        return spec

    def invalidate_caches(self) -> None:
        pass


_finder = _Finder()


def after_import(name: str, fn: Callable[[], None]) -> None:
    """Call ``fn()`` once module ``name`` has been imported: now, if it is in
    ``sys.modules``, else when its first import completes."""
    with _lock:
        if name not in sys.modules:
            _waiting.setdefault(name, []).append(fn)
            if _finder not in sys.meta_path:
                # A new list, never the one in use: another thread's import may be walking
                # it, and would skip a finder if it shifted under it.
                sys.meta_path = [_finder, *sys.meta_path]
            return
    fn()


def awaited(name: str) -> bool:
    """Whether functions still wait for module ``name`` (for tests)."""
    with _lock:
        return name in _waiting


def _run(name: str) -> None:
    with _lock:
        waiting = _waiting.pop(name, [])
        if not _waiting and _finder in sys.meta_path:
            sys.meta_path = [finder for finder in sys.meta_path if finder is not _finder]
    for fn in waiting:
        try:
            fn()
        except Exception:
            _log.logger().warning(
                "seawall could not finish its set-up after the import of %s", name, exc_info=True
            )
