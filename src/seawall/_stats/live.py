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

__all__ = [
    "forget",
    "is_member",
    "is_per_host",
    "live_policies",
    "mark_member",
    "mark_per_host",
    "mark_template",
    "on_collected",
    "register",
    "template_of",
]

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
        policy._after_fork()  # registered once fully built: it has its state


#: Policies composed by a Pipeline (its calls are the pipeline's to report), and the template
#: policy of each part of an httpx transport's template (until called some other way, only
#: the transport's per-host copies have series). What only the readers need to know.
_members: weakref.WeakSet[PolicyBase] = weakref.WeakSet()
_templates: weakref.WeakKeyDictionary[PolicyBase, PolicyBase] = weakref.WeakKeyDictionary()


def mark_member(policy: PolicyBase) -> None:
    with _lock:
        _members.add(policy)


def is_member(policy: PolicyBase) -> bool:
    """Whether a Pipeline (or Policy) composes ``policy``."""
    return policy in _members


#: Serials of an httpx transport's per-host copies (kept by serial: it is read as the policy
#: is collected, when weak references to it are gone); forgotten once collected.
_per_host: set[int] = set()


def mark_per_host(policy: PolicyBase) -> None:
    with _lock:
        _per_host.add(policy._serial)


def is_per_host(policy: PolicyBase) -> bool:
    """Whether ``policy`` is a transport's per-host copy (its remains are bounded)."""
    return policy._serial in _per_host


def forget(policy: PolicyBase) -> None:
    """``policy`` is collected: nothing here is kept for it any longer."""
    _per_host.discard(policy._serial)


def mark_template(part: PolicyBase, template: PolicyBase) -> None:
    with _lock:
        _templates[part] = template


def template_of(policy: PolicyBase) -> PolicyBase | None:
    """The httpx transport template ``policy`` is, or is part of, if any."""
    return _templates.get(policy)


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
