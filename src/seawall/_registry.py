"""Every live policy, for the metrics exporters to read when scraped."""

from __future__ import annotations

import itertools
import threading
import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING

from seawall import _fork

if TYPE_CHECKING:
    from seawall._base import PolicyBase

__all__ = ["live_policies", "on_collected", "register"]

_lock = threading.Lock()
#: A number for each policy and transport's stats, never reused (ids are): what their counts
#: are known by once they are collected (see seawall.metrics._remains).
next_serial = itertools.count().__next__
_policies: weakref.WeakSet[PolicyBase] = weakref.WeakSet()


@_fork.in_child
def _renew() -> None:
    global _lock
    _lock = threading.Lock()
    for policy in list(_policies):
        try:
            policy._after_fork()
        except AttributeError:
            # Registered before its subclass set up its state: one whose constructor raised
            # (a traceback keeps it alive). It has nothing to renew.
            pass


def register(policy: PolicyBase) -> None:
    with _lock:
        _policies.add(policy)


def live_policies() -> list[PolicyBase]:
    with _lock:
        return list(_policies)


#: Called with a policy (or an httpx transport's per-attempt stats) as it is collected, from
#: its ``__del__``: the metrics layer keeps its counts, so that totals never go down. It must
#: not raise, and may run in any thread at any allocation.
on_collected: Callable[[object], None] | None = None


def collected(obj: object) -> None:
    hook = on_collected
    if hook is not None:
        hook(obj)
