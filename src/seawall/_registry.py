"""Every live policy, for the metrics exporters to read when scraped."""

from __future__ import annotations

import threading
import weakref
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from seawall._base import PolicyBase

__all__ = ["live_policies", "register"]

_lock = threading.Lock()
_policies: weakref.WeakSet[PolicyBase] = weakref.WeakSet()


def register(policy: PolicyBase) -> None:
    with _lock:
        _policies.add(policy)


def live_policies() -> list[PolicyBase]:
    with _lock:
        return list(_policies)
