"""Fault injection for rehearsals and game days: the same faults for functions and for httpx.

Faults (``rate=`` the share of calls they hit; for requests, ``host=``/``path=``/``method=``
patterns say which):

- :class:`Latency` (added wait), :class:`Hang` (no answer: the caller's timeout decides);
- :class:`ConnectError`, :class:`Reset`, :class:`ReadTimeout`, :class:`Error` (any
  exception);
- requests only: :class:`Status` (500, 503 with ``Retry-After``, 429, ...),
  :class:`SlowBody`; functions only: :class:`Result` (a wrong answer).

A :class:`Schedule` of :class:`Phase` objects says which faults are in force when
(healthy → outage → slow → flaky → recovered). Put them in a function's policy with
:func:`inject` (``Policy(..., chaos=inject(...))``), or around an httpx transport with
:class:`ChaosTransport` / :class:`AsyncChaosTransport` (``pip install seawall[httpx]``).

Nothing is injected unless enabled: ``enabled=True`` on the injector, or :func:`enable`
(``SEAWALL_CHAOS=1`` in the environment) for injectors left to the process. Draws are
seeded (``seed=``, or ``random``'s state, which ``seawall.testing.simulated()`` seeds), and
every injection is counted: ``seawall_chaos_injections_total{policy, fault}``.
"""

from __future__ import annotations

import typing
from typing import Any

from seawall._chaos import (
    ConnectError,
    Error,
    Fault,
    Hang,
    Injector,
    InjectorSnapshot,
    Latency,
    Phase,
    ReadTimeout,
    Reset,
    Result,
    Schedule,
    SlowBody,
    Status,
    disable,
    enable,
    inject,
    is_enabled,
)

if typing.TYPE_CHECKING:
    from seawall.chaos._transport import AsyncChaosTransport, ChaosTransport

__all__ = [
    "AsyncChaosTransport",
    "ChaosTransport",
    "ConnectError",
    "Error",
    "Fault",
    "Hang",
    "Injector",
    "InjectorSnapshot",
    "Latency",
    "Phase",
    "ReadTimeout",
    "Reset",
    "Result",
    "Schedule",
    "SlowBody",
    "Status",
    "disable",
    "enable",
    "inject",
    "is_enabled",
]

_TRANSPORTS = frozenset({"AsyncChaosTransport", "ChaosTransport"})


def __getattr__(name: str) -> Any:
    # The transports need httpx, an extra: the faults work without it.
    if name in _TRANSPORTS:
        try:
            from seawall.chaos import _transport
        except ImportError as exc:  # pragma: no cover - depends on the environment
            raise ImportError(
                f"seawall.chaos.{name} needs httpx: install it with `pip install seawall[httpx]`"
            ) from exc
        value = getattr(_transport, name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *_TRANSPORTS})
