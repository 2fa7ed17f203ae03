"""asyncio, imported on first use.

``import seawall`` must stay cheap, and asyncio is one of the costliest modules of the
standard library to import. The async shells run inside an event loop, where asyncio is
already imported; the sync ones never need it. The names below are asyncio's own objects:
the first read of one imports asyncio and keeps the object here as a plain module attribute,
so that reading it again costs what ``asyncio.<name>`` does.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from asyncio import get_running_loop, sleep, timeout

__all__ = ["get_running_loop", "is_cancelled", "sleep", "timeout"]

_LAZY = frozenset({"get_running_loop", "sleep", "timeout"})


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import asyncio

    value = getattr(asyncio, name)
    globals()[name] = value
    return value


def is_cancelled(exc: BaseException) -> bool:
    """Whether ``exc`` is an ``asyncio.CancelledError`` (none exists before asyncio is
    imported, so this never imports it)."""
    asyncio = sys.modules.get("asyncio")
    return asyncio is not None and isinstance(exc, asyncio.CancelledError)
