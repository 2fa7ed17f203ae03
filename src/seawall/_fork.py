"""What a child process inherits from a fork taken while other threads use seawall.

A fork copies the process with only the forking thread. Locks that other threads held stay
held in the child, for ever, and slots they held (a bulkhead's permits, a breaker's
half-open probes) belong to threads that do not exist there. After a fork the child gets
fresh locks everywhere, every bulkhead slot free with nobody queued, and no probe in flight;
configuration, states and counts are kept. Calls in progress in the forking thread itself go
on: one inside a bulkhead gives its slot back when it ends, so until then that bulkhead may
admit one call more than its limit.

Each module registers what it renews with :func:`in_child`; the hooks run in the order they
were registered (module import order: a module's objects before those that use them).
"""

from __future__ import annotations

import os
from collections.abc import Callable

from seawall import _log

__all__ = ["in_child"]

_hooks: list[Callable[[], None]] = []


def in_child(hook: Callable[[], None]) -> Callable[[], None]:
    """Run ``hook`` in every child forked from now on, before it runs anything else."""
    _hooks.append(hook)
    return hook


def _after_fork_in_child() -> None:
    for hook in _hooks:
        try:
            hook()
        except Exception:  # pragma: no cover - each module's renewal is independent
            _log.logger().exception("seawall: renewing %r after a fork failed", hook)


if hasattr(os, "register_at_fork"):  # POSIX
    os.register_at_fork(after_in_child=_after_fork_in_child)
