"""Fault injection: the faults, their schedule, the switch, and the part that injects them.

One vocabulary for both shapes a dependency has: a function (the :class:`Injector`, a policy
part, shells below) and an httpx transport (``seawall.chaos``'s transports, which use an
Injector's decisions). A fault is data: what goes wrong, at what rate, for which requests. A
:class:`Schedule` says which faults are in force when, as phases. The decision for one call
(:meth:`Injector._plan`) is I/O-free; the shells carry it out on the injector's clock.

Nothing is injected unless enabled: by the injector's own ``enabled=True``, or, for those
left to the process (``enabled=None``), by :func:`enable` or ``SEAWALL_CHAOS=1`` in the
environment. A disarmed injector passes calls straight through; the Policy's fast path reads
one flag (``InjectorView.armed``).
"""

from __future__ import annotations

import bisect
import copy
import errno
import fnmatch
import math
import os
import random
import re
import threading
import weakref
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar

from seawall import _aio, _deadline, _fork
from seawall._base import PolicyBase
from seawall._clock import Clock
from seawall._config import configured
from seawall._stats.counters import AtomicCounter
from seawall._validate import check_number

__all__ = [
    "ConnectError",
    "Error",
    "Fault",
    "Hang",
    "Injector",
    "InjectorSnapshot",
    "InjectorView",
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

R = TypeVar("R")

FUNCTION = "function"
HTTP = "http"


# -- the faults --------------------------------------------------------------------------------

#: A host pattern with a port (``api.test:8080``), which a request's host never has.
_HOST_AND_PORT = re.compile(r"[^:\[\]]+:\d+")
#
# Plain classes with slots rather than dataclasses: ``import seawall`` reads this module, and
# building ten dataclasses costs milliseconds at import.

_MISSING: Any = object()


def _seconds(param: str, value: object) -> float:
    return check_number(
        param, value, minimum=0.0, maximum=math.inf, min_inclusive=True, max_inclusive=False
    )


class Fault:
    """What goes wrong with one call, and when it applies.

    ``rate``: the share of the calls it applies to (drawn per call, from the injector's seeded
    random numbers). ``host``, ``path``, ``method`` (transports only): the requests it applies
    to; ``host`` and ``path`` are shell-style patterns (``*.internal``, ``/v1/charges*``).
    Faults are values: immutable, equal when of the same kind with the same arguments.
    """

    __slots__ = ("host", "method", "path", "rate")

    #: Its name in ``seawall_chaos_injections_total{fault=...}``.
    kind: ClassVar[str] = ""
    #: The shapes it makes sense for: a function's call, an HTTP request.
    shapes: ClassVar[frozenset[str]] = frozenset({FUNCTION, HTTP})
    #: Whether it ends the call (anything but added latency).
    ends_call: ClassVar[bool] = True
    #: Its own arguments (after the shared ones are taken out), in order, with defaults.
    _own: ClassVar[tuple[tuple[str, Any], ...]] = ()

    rate: float
    host: str | None
    path: str | None
    method: str | None

    def __init__(
        self,
        *,
        rate: float = 1.0,
        host: str | None = None,
        path: str | None = None,
        method: str | None = None,
    ) -> None:
        self._set("rate", check_number("rate", rate, minimum=0.0, maximum=1.0, min_inclusive=True))
        for param, value in (("host", host), ("path", path), ("method", method)):
            if value is not None and (not isinstance(value, str) or not value):
                raise TypeError(f"{param} must be a non-empty str or None, got {value!r}")
        if host is not None:
            if _HOST_AND_PORT.fullmatch(host):
                raise ValueError(
                    f"host is matched against the request's host alone, without its port: "
                    f"got {host!r}"
                )
            host = host.lower()  # as httpx gives it
        if path is not None and not path.startswith(("/", "*")):
            raise ValueError(f"path must start with '/' (or a '*' pattern), got {path!r}")
        if method is not None and not method.isalpha():
            raise ValueError(f"method must be an HTTP method such as 'GET', got {method!r}")
        self._set("host", host)
        self._set("path", path)
        self._set("method", None if method is None else method.upper())

    def _set(self, name: str, value: Any) -> None:
        object.__setattr__(self, name, value)

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"a {type(self).__name__} is fixed once made: make a new one")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"a {type(self).__name__} is fixed once made")

    def _values(self) -> tuple[Any, ...]:
        own = tuple(getattr(self, name) for name, _ in self._own)
        return (*own, self.rate, self.host, self.path, self.method)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Fault):
            return NotImplemented
        return type(self) is type(other) and self._values() == other._values()

    def __hash__(self) -> int:
        return hash((type(self), self._values()))

    def __repr__(self) -> str:
        shown = [
            f"{name}={getattr(self, name)!r}"
            for name, default in self._own
            if default is _MISSING or getattr(self, name) != default
        ]
        if self.rate != 1.0:
            shown.append(f"rate={self.rate:g}")
        shown += [
            f"{name}={getattr(self, name)!r}"
            for name in ("host", "path", "method")
            if getattr(self, name) is not None
        ]
        return f"{type(self).__name__}({', '.join(shown)})"

    @property
    def routed(self) -> bool:
        """Whether it names the requests it applies to."""
        return self.host is not None or self.path is not None or self.method is not None

    def matches(self, method: str, host: str, path: str) -> bool:
        return (
            (self.method is None or self.method == method)
            and (self.host is None or fnmatch.fnmatchcase(host, self.host))
            and (self.path is None or fnmatch.fnmatchcase(path, self.path))
        )


class Latency(Fault):
    """Added latency: the call waits ``seconds`` (or a uniform draw between ``seconds`` and
    ``up_to``) and then goes ahead. Over HTTP, a wait past the request's read timeout ends as
    ``httpx.ReadTimeout`` at that timeout, as on a real network."""

    __slots__ = ("seconds", "up_to")
    kind = "latency"
    ends_call = False
    _own = (("seconds", _MISSING), ("up_to", None))

    seconds: float
    up_to: float | None

    def __init__(self, seconds: float, up_to: float | None = None, **where: Any) -> None:
        super().__init__(**where)
        low = _seconds("seconds", seconds)
        self._set("seconds", low)
        if up_to is not None:
            up_to = check_number(
                "up_to",
                up_to,
                minimum=low,
                min_inclusive=True,
                maximum=math.inf,
                max_inclusive=False,
            )
        self._set("up_to", up_to)

    def draw(self, rng: random.Random) -> float:
        if self.up_to is None:
            return self.seconds
        return rng.uniform(self.seconds, self.up_to)


class Hang(Fault):
    """No answer, ever: only the caller's timeout ends the call. Async calls wait until
    cancelled; a sync call waits until its deadline (a ``seawall.Timeout`` around it; over
    HTTP, the request's read timeout) and then fails as that timeout does."""

    __slots__ = ()
    kind = "hang"


class _After(Fault):
    """A fault that ends the call with an error, ``after`` seconds."""

    __slots__ = ("after",)
    _own = (("after", 0.0),)

    after: float

    def __init__(self, after: float = 0.0, **where: Any) -> None:
        super().__init__(**where)
        self._set("after", _seconds("after", after))


class ConnectError(_After):
    """The connection is refused, ``after`` seconds: ``ConnectionRefusedError`` from a
    function, ``httpx.ConnectError`` from a transport."""

    __slots__ = ()
    kind = "connect_error"


class Reset(_After):
    """The connection is reset by the peer, ``after`` seconds: ``ConnectionResetError`` from
    a function, ``httpx.ReadError`` from a transport."""

    __slots__ = ()
    kind = "reset"


class ReadTimeout(_After):
    """The read times out, ``after`` seconds: ``TimeoutError`` from a function,
    ``httpx.ReadTimeout`` from a transport. (:class:`Hang` waits for the caller's own
    timeout instead.)"""

    __slots__ = ()
    kind = "read_timeout"


class Error(Fault):
    """Raises ``error``, ``after`` seconds: an exception class (made with a message), an
    exception (a fresh copy each time), or a function that makes one."""

    __slots__ = ("after", "error")
    kind = "error"
    _own = (("error", _MISSING), ("after", 0.0))

    error: type[BaseException] | BaseException | Callable[[], BaseException]
    after: float

    def __init__(
        self,
        error: type[BaseException] | BaseException | Callable[[], BaseException],
        after: float = 0.0,
        **where: Any,
    ) -> None:
        super().__init__(**where)
        if not (
            isinstance(error, BaseException)
            or (isinstance(error, type) and issubclass(error, BaseException))
            or callable(error)
        ):
            raise TypeError(
                f"error must be an exception, an exception class or a function making one, "
                f"got {type(error).__name__}"
            )
        if isinstance(error, BaseException):
            try:
                copy.copy(error)  # what every call raises: a fresh copy
            except Exception as exc:
                raise TypeError(
                    f"error: a {type(error).__name__} cannot be copied for each call ({exc}); "
                    "give a function that makes one instead"
                ) from None
        self._set("error", error)
        self._set("after", _seconds("after", after))

    def make(self) -> BaseException:
        error = self.error
        if isinstance(error, type) and issubclass(error, BaseException):
            return error("injected by seawall chaos")
        if isinstance(error, BaseException):
            return copy.copy(error)
        made = error()
        if not isinstance(made, BaseException):
            raise TypeError(f"error must make an exception, it made a {type(made).__name__}")
        return made


class Status(Fault):
    """An HTTP response with status ``code`` instead of the real one (transports only): 500,
    503 with a ``retry_after`` (seconds, or an HTTP date), 429, ..."""

    __slots__ = ("body", "code", "retry_after")
    kind = "status"
    shapes = frozenset({HTTP})
    _own = (("code", _MISSING), ("retry_after", None), ("body", b""))

    code: int
    retry_after: int | str | None
    body: bytes

    def __init__(
        self, code: int, retry_after: int | str | None = None, body: bytes = b"", **where: Any
    ) -> None:
        super().__init__(**where)
        if isinstance(code, bool) or not isinstance(code, int):
            raise TypeError(f"code must be an int, got {type(code).__name__}")
        if not 100 <= code <= 599:
            raise ValueError(f"code must be an HTTP status in [100, 599], got {code}")
        if retry_after is not None:
            if isinstance(retry_after, bool) or not isinstance(retry_after, int | str):
                raise TypeError(
                    f"retry_after must be whole seconds (an int) or an HTTP date (a str), "
                    f"got {type(retry_after).__name__}"
                )
            if isinstance(retry_after, int) and retry_after < 0:
                raise ValueError(f"retry_after must be >= 0, got {retry_after}")
            if isinstance(retry_after, str) and not _is_http_date(retry_after):
                raise ValueError(f"retry_after must be an HTTP date, got {retry_after!r}")
        if not isinstance(body, bytes):
            raise TypeError(f"body must be bytes, got {type(body).__name__}")
        self._set("code", code)
        self._set("retry_after", retry_after)
        self._set("body", body)


def _is_http_date(text: str) -> bool:
    from email.utils import parsedate_to_datetime

    if "\r" in text or "\n" in text:
        return False
    try:
        parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return False
    return True


class SlowBody(Fault):
    """The response's body arrives over ``seconds``, in ``chunks`` parts (transports only);
    a pause past the request's read timeout ends as ``httpx.ReadTimeout``."""

    __slots__ = ("chunks", "seconds")
    kind = "slow_body"
    shapes = frozenset({HTTP})
    _own = (("seconds", _MISSING), ("chunks", 10))

    seconds: float
    chunks: int

    def __init__(self, seconds: float, chunks: int = 10, **where: Any) -> None:
        super().__init__(**where)
        self._set("seconds", _seconds("seconds", seconds))
        if isinstance(chunks, bool) or not isinstance(chunks, int):
            raise TypeError(f"chunks must be an int, got {type(chunks).__name__}")
        if not 1 <= chunks <= 10_000:
            raise ValueError(f"chunks must be in [1, 10000], got {chunks}")
        self._set("chunks", chunks)


class Result(Fault):
    """Returns ``value`` without calling the function (functions only): a wrong or stale
    answer, as the dependency might give."""

    __slots__ = ("value",)
    kind = "result"
    shapes = frozenset({FUNCTION})
    _own = (("value", _MISSING),)

    value: Any

    def __init__(self, value: Any, **where: Any) -> None:
        super().__init__(**where)
        self._set("value", value)


FAULT_NAMES = (
    "Latency",
    "Hang",
    "ConnectError",
    "Reset",
    "ReadTimeout",
    "Error",
    "Status",
    "SlowBody",
    "Result",
)
FAULT_KINDS: tuple[str, ...] = tuple(
    kind.kind
    for kind in (Latency, Hang, ConnectError, Reset, ReadTimeout, Error, Status, SlowBody, Result)
)


# -- the schedule ------------------------------------------------------------------------------


class Phase:
    """A stretch of ``seconds`` (``None``: until the end) during which ``faults`` are in force.
    A phase without faults is healthy."""

    __slots__ = ("faults", "name", "seconds")

    def __init__(self, name: str, seconds: float | None, *faults: Fault) -> None:
        if not isinstance(name, str) or not name:
            raise TypeError(f"name must be a non-empty str, got {name!r}")
        if seconds is not None:
            seconds = check_number("seconds", seconds, maximum=math.inf, max_inclusive=False)
        for fault in faults:
            if not isinstance(fault, Fault):
                raise TypeError(f"faults must be seawall.chaos faults, got {fault!r}")
            if not fault.kind:
                raise TypeError(
                    f"faults: {type(fault).__name__} is no fault of its own; use one of "
                    f"{', '.join(FAULT_NAMES)}"
                )
        self.name = name
        self.seconds = seconds
        self.faults: tuple[Fault, ...] = faults

    def __repr__(self) -> str:
        inner = ", ".join(repr(fault) for fault in self.faults)
        seconds = "None" if self.seconds is None else f"{self.seconds:g}"
        return f"Phase({self.name!r}, {seconds}{', ' if inner else ''}{inner})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Phase):
            return NotImplemented
        return (self.name, self.seconds, self.faults) == (other.name, other.seconds, other.faults)

    def __hash__(self) -> int:
        return hash((self.name, self.seconds, self.faults))


class Schedule:
    """Phases one after the other, from the injector's start; the last may last forever
    (``seconds=None``), or the whole schedule ``repeat``. Past a schedule's end without
    ``repeat``, the last phase stays in force."""

    __slots__ = ("_ends", "duration", "phases", "repeat")

    def __init__(self, *phases: Phase, repeat: bool = False) -> None:
        if not phases:
            raise ValueError("phases: a Schedule needs at least one phase")
        for index, phase in enumerate(phases):
            if not isinstance(phase, Phase):
                raise TypeError(f"phases must be Phase objects, got {phase!r}")
            if phase.seconds is None and index != len(phases) - 1:
                raise ValueError(
                    f"phases: only the last phase may last forever (seconds=None), not "
                    f"{phase.name!r}"
                )
        if not isinstance(repeat, bool):
            raise TypeError(f"repeat must be a bool, got {type(repeat).__name__}")
        if repeat and phases[-1].seconds is None:
            raise ValueError("repeat: a schedule whose last phase lasts forever cannot repeat")
        self.phases: tuple[Phase, ...] = phases
        self.repeat = repeat
        ends = []
        t = 0.0
        for phase in phases:
            t = math.inf if phase.seconds is None else t + phase.seconds
            ends.append(t)
        self._ends = tuple(ends)
        #: Seconds until the last phase ends (``inf`` if it lasts forever).
        self.duration = ends[-1]

    @property
    def faults(self) -> tuple[Fault, ...]:
        return tuple(fault for phase in self.phases for fault in phase.faults)

    def index_at(self, t: float) -> int:
        """The index of the phase in force ``t`` seconds after the start."""
        if t < 0.0:
            return 0
        if self.repeat:
            t %= self.duration
        index = bisect.bisect_right(self._ends, t)
        return min(index, len(self.phases) - 1)

    def phase_at(self, t: float) -> Phase:
        return self.phases[self.index_at(t)]

    def spans(self) -> tuple[tuple[Phase, float, float], ...]:
        """Each phase with where it starts and ends, in seconds from the start (the first
        round, for a repeating schedule; past a schedule's end without ``repeat``, the last
        phase stays in force, whatever its own end says)."""
        starts = (0.0, *self._ends[:-1])
        return tuple(zip(self.phases, starts, self._ends, strict=True))

    def bounds(self, name: str) -> list[tuple[float, float]]:
        """Where each phase called ``name`` starts and ends, as :meth:`spans` says."""
        out = []
        start = 0.0
        for phase, end in zip(self.phases, self._ends, strict=True):
            if phase.name == name:
                out.append((start, end))
            start = end
        if not out:
            raise KeyError(f"no phase is called {name!r}")
        return out

    def __iter__(self) -> Iterator[Phase]:
        return iter(self.phases)

    def __repr__(self) -> str:
        inner = ", ".join(repr(phase) for phase in self.phases)
        return f"Schedule({inner}{', repeat=True' if self.repeat else ''})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Schedule):
            return NotImplemented
        return (self.phases, self.repeat) == (other.phases, other.repeat)

    def __hash__(self) -> int:
        return hash((self.phases, self.repeat))


def as_schedule(param: str, faults: tuple[Fault | Schedule, ...]) -> Schedule:
    """The faults given to an injector as a schedule: one Schedule as it is, faults as a
    single phase that lasts forever."""
    if len(faults) == 1 and isinstance(faults[0], Schedule):
        return faults[0]
    for fault in faults:
        if isinstance(fault, Schedule):
            raise TypeError(f"{param}: give either one Schedule or faults, not both")
        if not isinstance(fault, Fault):
            raise TypeError(f"{param} must be seawall.chaos faults or a Schedule, got {fault!r}")
    if not faults:
        raise ValueError(f"{param}: give the faults to inject, or a Schedule of them")
    return Schedule(Phase("chaos", None, *(f for f in faults if isinstance(f, Fault))))


def check_shape(param: str, schedule: Schedule, shape: str) -> None:
    for fault in schedule.faults:
        if shape not in fault.shapes:
            where = "httpx transports" if fault.shapes == {HTTP} else "functions"
            raise TypeError(
                f"{param}: {type(fault).__name__} applies to {where} only"
                + (" (use seawall.chaos.ChaosTransport)" if where == "httpx transports" else "")
            )
        if shape == FUNCTION and fault.routed:
            raise ValueError(
                f"{param}: {type(fault).__name__} names a host, path or method, which only "
                "requests have (use seawall.chaos.ChaosTransport)"
            )


# -- the switch --------------------------------------------------------------------------------


def _from_environment() -> bool:
    return os.environ.get("SEAWALL_CHAOS", "").strip().lower() in {"1", "true", "yes", "on"}


class _Switch:
    """The process-wide switch for injectors left to it (``enabled=None``)."""

    def __init__(self) -> None:
        self.on = _from_environment()
        self.lock = threading.Lock()
        self.injectors: weakref.WeakSet[Injector] = weakref.WeakSet()

    def set(self, on: bool) -> bool:
        with self.lock:
            before, self.on = self.on, on
            for injector in list(self.injectors):
                injector._rearm()
        return before


_switch = _Switch()


@_fork.in_child
def _renew() -> None:
    _switch.lock = threading.Lock()
    for injector in list(_switch.injectors):
        if injector._config.get("seed") is None:
            # Each worker draws its own faults, not the parent's sequence again.
            injector._rng.seed(random.getrandbits(64))


class _Restore:
    """What :func:`enable` and :func:`disable` return: a context manager that puts the
    switch back as it was."""

    def __init__(self, before: bool) -> None:
        self._before = before

    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc_info: object) -> None:
        _switch.set(self._before)


def enable() -> _Restore:
    """Turn fault injection on for every injector left to the process (``enabled=None``).
    As a context manager (``with chaos.enable():``), it is put back as it was on exit."""
    return _Restore(_switch.set(True))


def disable() -> _Restore:
    """Turn fault injection off for every injector left to the process."""
    return _Restore(_switch.set(False))


def is_enabled() -> bool:
    """Whether the process-wide switch is on (``SEAWALL_CHAOS=1`` turns it on at start)."""
    return _switch.on


# -- the injector ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class InjectorSnapshot:
    """An injector's counts: the calls that reached it while armed, by the phase they met, and
    the faults it injected, by kind."""

    name: str
    armed: bool
    calls: dict[str, int]
    injections: dict[str, int]


class InjectorView:
    """What a Policy's fast path (seawall._fast) may use of an injector: ``armed``, kept in
    step with its switch, and its raw shells. A disarmed injector's calls go straight
    through, so the fast path may skip it; an armed one's go the composed way."""

    __slots__ = ("__weakref__", "acall", "armed", "call")

    def __init__(self, injector: Injector) -> None:
        self.armed = injector._armed
        self.call = injector._call
        self.acall = injector._acall


class _Plan:
    """What to do with one call: wait ``delay`` seconds, then end it with ``fault`` (or go
    ahead)."""

    __slots__ = ("delay", "fault")

    def __init__(self, delay: float, fault: Fault | None) -> None:
        self.delay = delay
        self.fault = fault


_GO_AHEAD = _Plan(0.0, None)


class Injector(PolicyBase):
    """A policy part that injects faults into the calls through it (see :func:`inject`)."""

    @configured
    def __init__(
        self,
        *faults: Fault | Schedule,
        enabled: bool | None = None,
        seed: int | None = None,
        name: str | None = None,
        clock: Clock | None = None,
        _shape: str = FUNCTION,
    ) -> None:
        super().__init__(name=name, clock=clock)
        schedule = as_schedule("faults", faults)
        check_shape("faults", schedule, _shape)
        if enabled is not None and not isinstance(enabled, bool):
            raise TypeError(f"enabled must be True, False or None, got {enabled!r}")
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
            raise TypeError(f"seed must be an int or None, got {type(seed).__name__}")
        self.schedule = schedule
        self._enabled = enabled
        # Without a seed, drawn from `random` (which seawall.testing.simulated() seeds).
        self._rng = random.Random(random.getrandbits(64) if seed is None else seed)
        self._random = self._rng.random
        self._started = self._clock.monotonic()
        # By phase, in its order (a name may come back: each stretch counts its own).
        self._calls = [AtomicCounter() for _ in schedule.phases]
        self._injections = {fault.kind: AtomicCounter() for fault in schedule.faults}
        self._armed = False
        # Held weakly, as the breaker holds its view: the view holds its shells.
        self._view: weakref.ref[InjectorView] | None = None
        #: Called with each armed call's time (seawall.testing.watch).
        self._watchers: tuple[Callable[[float], None], ...] = ()
        with _switch.lock:
            _switch.injectors.add(self)
            self._rearm()

    @property
    def enabled(self) -> bool | None:
        """``True``/``False`` as built, or ``None``: it follows :func:`enable`."""
        return self._enabled

    @property
    def armed(self) -> bool:
        """Whether it injects now."""
        return self._armed

    def _rearm(self) -> None:
        armed = _switch.on if self._enabled is None else self._enabled
        if armed and not self._armed:
            # The schedule starts when injection does: an injector left in a service, off,
            # plays its first phase when a game day turns it on, not the one it would be in.
            self._started = self._clock.monotonic()
        self._armed = armed
        view = None if self._view is None else self._view()
        if view is not None:
            view.armed = armed

    @property
    def started(self) -> float:
        """When the schedule started, on the injector's clock."""
        return self._started

    def restart(self) -> None:
        """Start the schedule over, now (it starts by itself when the injector is armed: at
        its creation with ``enabled=True``, or when the process switch turns on)."""
        self._started = self._clock.monotonic()

    def elapsed(self) -> float:
        """Seconds since the schedule started."""
        return self._clock.monotonic() - self._started

    def phase(self) -> Phase:
        """The phase in force now."""
        return self.schedule.phase_at(self.elapsed())

    def _fast_view(self) -> InjectorView:
        with _switch.lock:  # armed in step with the switch from the start
            view = None if self._view is None else self._view()
            if view is None:
                view = InjectorView(self)
                self._view = weakref.ref(view)
            return view

    def snapshot(self) -> InjectorSnapshot:
        calls: dict[str, int] = {}
        for phase, counter in zip(self.schedule.phases, self._calls, strict=True):
            calls[phase.name] = calls.get(phase.name, 0) + counter.value
        return InjectorSnapshot(
            self.name,
            self._armed,
            calls,
            {kind: counter.value for kind, counter in self._injections.items()},
        )

    def calls_in(self, index: int) -> int:
        """The calls that reached it, armed, during the phase at ``index`` of its schedule."""
        return self._calls[index].value

    def _has_run(self) -> bool:
        return super()._has_run() or any(counter.value for counter in self._calls)

    def _plan(
        self, method: str = "", host: str = "", path: str = "", *, hang_refused: str = ""
    ) -> _Plan:
        """The decision for one call that reached the injector while armed: counted in its
        phase; each fault of the phase that applies is drawn at its rate; added latencies
        add up, and the first fault drawn that ends the call ends it. ``hang_refused``: why
        nothing would end a hang here (a sync call needs a deadline), if so; a Hang drawn then
        is that ``RuntimeError``, raised before anything is counted."""
        now = self._clock.monotonic()
        index = self.schedule.index_at(now - self._started)
        for watcher in self._watchers:
            watcher(now)
        self._calls[index].increment()
        phase = self.schedule.phases[index]
        if not phase.faults:
            return _GO_AHEAD
        delay = 0.0
        ending: Fault | None = None
        random_ = self._random
        for fault in phase.faults:
            if fault.routed and not fault.matches(method, host, path):
                continue
            if fault.rate < 1.0 and random_() >= fault.rate:
                continue
            if hang_refused and isinstance(fault, Hang):
                raise RuntimeError(hang_refused)
            self._injections[fault.kind].increment()
            if fault.ends_call:
                ending = fault
                break
            delay += fault.draw(self._rng)  # type: ignore[attr-defined]
        if ending is None and delay == 0.0:
            return _GO_AHEAD
        return _Plan(delay, ending)

    # -- the function shells ----------------------------------------------------------------

    def _call(self, fn: Callable[..., R], /, *args: Any) -> R:
        if not self._armed:
            return fn(*args)
        deadline = _deadline.current_deadline()
        plan = self._plan(hang_refused="" if deadline is not None else _NO_END_TO_HANG)
        fault = plan.fault
        # A sync call cannot be interrupted: the waits stop at its deadline and end the call
        # as its Timeout would, as a dependency that honours seawall.remaining() does.
        after: float = getattr(fault, "after", 0.0)
        wait = plan.delay + after
        if isinstance(fault, Hang) or (deadline is not None and wait > deadline.remaining()):
            assert deadline is not None  # a Hang without one was refused by _plan
            self._clock.sleep(deadline.remaining())
            raise deadline.exceeded()
        if plan.delay:
            self._clock.sleep(plan.delay)
        if after:
            self._clock.sleep(after)
        if fault is None:
            return fn(*args)
        if isinstance(fault, Result):
            return fault.value  # type: ignore[no-any-return]
        raise _function_error(fault)

    async def _acall(self, fn: Callable[..., Awaitable[R]], /, *args: Any) -> R:
        if not self._armed:
            return await fn(*args)
        plan = self._plan()
        if plan.delay:
            await self._clock.asleep(plan.delay)
        fault = plan.fault
        if fault is None:
            return await fn(*args)
        if isinstance(fault, Result):
            return fault.value  # type: ignore[no-any-return]
        if isinstance(fault, Hang):
            await _aio.get_running_loop().create_future()  # never set: only a cancel ends it
        after = getattr(fault, "after", 0.0)
        if after:
            await self._clock.asleep(after)
        raise _function_error(fault)

    def __repr__(self) -> str:
        state = "armed" if self._armed else "disarmed"
        return f"Injector({self.schedule!r}, name={self.name!r}, {state})"


_NO_END_TO_HANG = (
    "seawall chaos: a Hang in a sync call would block its thread forever; put a seawall "
    "Timeout around the call (its deadline ends the hang)"
)


def _function_error(fault: Fault) -> BaseException:
    """The exception a function's call ends with under ``fault``."""
    if isinstance(fault, Error):
        return fault.make()
    if isinstance(fault, ConnectError):
        return ConnectionRefusedError(errno.ECONNREFUSED, "Connection refused (seawall chaos)")
    if isinstance(fault, Reset):
        return ConnectionResetError(errno.ECONNRESET, "Connection reset by peer (seawall chaos)")
    if isinstance(fault, ReadTimeout):
        return TimeoutError("timed out (seawall chaos)")
    raise AssertionError(f"no function behaviour for {fault!r}")  # pragma: no cover


def inject(
    *faults: Fault | Schedule,
    enabled: bool | None = None,
    seed: int | None = None,
    name: str | None = None,
    clock: Clock | None = None,
) -> Injector:
    """A policy part that injects ``faults`` (or a :class:`Schedule` of them) into the calls
    through it: ``Policy(..., chaos=inject(...))`` puts it innermost, where the dependency
    is, so that every other part sees the faults; or last in a ``Pipeline``.

    Off unless enabled: ``enabled=True`` arms it, ``False`` never; ``None`` (the default)
    leaves it to :func:`enable` (or ``SEAWALL_CHAOS=1``). ``seed`` seeds its draws (rates,
    latencies); without one they are drawn from ``random`` (seeded by
    ``seawall.testing.simulated()``). The schedule starts when the injector is built
    (:meth:`Injector.restart` starts it over).
    """
    return Injector(*faults, enabled=enabled, seed=seed, name=name, clock=clock)
