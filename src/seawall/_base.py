"""The one mechanism that turns any policy into a decorator for sync and async functions."""

from __future__ import annotations

import functools
import inspect
import weakref
from collections.abc import Awaitable, Callable, Coroutine
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar, overload

from seawall._clock import Clock, default_clock
from seawall._config import Config, configured
from seawall._stats import live
from seawall._stats.calls import CallStats
from seawall._stats.live import register
from seawall._validate import check_name

if TYPE_CHECKING:
    from seawall._fallback import Fallback

#: A fallback outermost in a policy, and the raw sync and async shells of what it guards.
FallbackHead = tuple["Fallback", Callable[..., Any], Callable[..., Any]]

__all__ = [
    "Bound",
    "PolicyBase",
    "bind",
    "check_decoratable",
    "qualified_name",
    "unbind",
]

P = ParamSpec("P")
R = TypeVar("R")
S = TypeVar("S")


class Bound(functools.partial[R]):
    """A function with the keyword arguments of one call. The raw shells take positional
    arguments only, because a ``**kwargs`` at every layer would cost a dict per layer per
    call; a call with keywords is bound once, outermost. Retry unwraps it for tenacity."""


def bind(fn: Callable[..., R], kwargs: dict[str, Any]) -> Callable[..., R]:
    return Bound(fn, **kwargs)


def unbind(fn: Callable[..., Any]) -> tuple[Callable[..., Any], dict[str, Any]]:
    """``fn`` and its bound keyword arguments, as the caller gave them."""
    if type(fn) is Bound:
        return fn.func, dict(fn.keywords)
    return fn, {}


def _name_of(ref: weakref.ref[PolicyBase]) -> str:
    policy = ref()
    return "" if policy is None else policy.name


def qualified_name(fn: object) -> str:
    name = getattr(fn, "__qualname__", None) or getattr(fn, "__name__", None)
    return name if isinstance(name, str) else type(fn).__name__


def is_async_callable(fn: object) -> bool:
    """A coroutine function, or an object whose ``__call__`` is one."""
    if inspect.iscoroutinefunction(fn):
        return True
    call = None if inspect.isroutine(fn) else getattr(type(fn), "__call__", None)  # noqa: B004
    return inspect.iscoroutinefunction(call)


def check_decoratable(fn: object) -> None:
    if not callable(fn):
        raise TypeError(f"a seawall policy decorates callables, got {type(fn).__name__}")
    if inspect.isgeneratorfunction(fn) or inspect.isasyncgenfunction(fn):
        raise TypeError(
            f"{qualified_name(fn)} is a generator function: a policy cannot tell when a "
            "generator's work succeeds or fails; decorate a function that returns its result"
        )


class _NotAwaitable(BaseException):
    """``acall`` was given a function whose result cannot be awaited: a misuse of ``acall``,
    not an outcome of the call. A ``BaseException`` on its way out, so that no part takes it
    for the dependency's failure (retried, answered by a fallback); the parts that count
    cancellations let it pass uncounted, and the public entry turns it into a ``TypeError``.
    """

    def __init__(self, fn: object, result: object) -> None:
        super().__init__(fn, result)
        self.error = TypeError(
            f"acall awaits what its function returns, and {qualified_name(fn)} ran and "
            f"returned a {type(result).__name__}: call a sync function with call()"
        )


def _awaiting(fn: Callable[..., Any]) -> Callable[..., Awaitable[Any]]:
    """``fn``, which is not a coroutine function, for ``acall``: what it returns is awaited
    (a function returning a coroutine is fine), anything else is refused once, not retried."""

    async def awaited(*args: Any, **kwargs: Any) -> Any:
        result = fn(*args, **kwargs)
        if not inspect.isawaitable(result):
            raise _NotAwaitable(fn, result)
        return await result

    return awaited


def check_clock(clock: object) -> Clock:
    if clock is None:
        return default_clock.get()  # the system clock, or a simulation's
    if not isinstance(clock, Clock):
        raise TypeError(f"clock must provide monotonic(), sleep() and asleep(), got {clock!r}")
    return clock


class PolicyBase:
    """What every policy shares: a name, a clock, the call-level SLI, and being a decorator.

    Subclasses implement the raw shells :meth:`_call` and :meth:`_acall`. The public
    :meth:`call` / :meth:`acall` and the decorators wrap them once more to record the call's
    duration and outcome (the SLI); a Pipeline composes its members' raw shells, so a logical
    call is recorded once, by its outermost layer.
    """

    _name: str | None
    _name_given: bool
    #: Set when a fallback is the policy's outermost layer (a Fallback itself, a Pipeline or
    #: Policy that starts with one). The recording shells then apply it themselves, so that
    #: its answers are recorded as their own outcome, ``fallback``, not as successes.
    _fallback_head: FallbackHead | None = None
    #: Set as it is collected, once its counts are with the remains: readers skip it.
    _collected = False

    def __init__(self, *, name: str | None, clock: Clock | None) -> None:
        self._name = check_name(name)
        self._name_given = self._name is not None
        self._clock = check_clock(clock)
        self._serial = live.next_serial()
        owner = weakref.ref(self)
        self.stats = CallStats(lambda: _name_of(owner))

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        # Every policy keeps its configuration and registers once it is fully built.
        init = cls.__dict__.get("__init__")
        if init is not None and not getattr(init, "__configured__", False):
            setattr(cls, "__init__", configured(init))  # noqa: B010 - mypy refuses the assignment

    def _built(self) -> None:
        """Its outermost ``__init__`` is over: now the metrics readers may see it."""
        register(self)

    #: The call outcomes it can give besides success and failure; their series exist from
    #: the start, so that ``rate()`` sees the first one (a series that appears with its first
    #: count loses that count to ``rate()``).
    _call_outcomes: frozenset[str] = frozenset()

    def _has_run(self) -> bool:
        """Whether it has counted anything (been called); each policy adds its own counts."""
        reading = self.stats.read()
        return bool(reading.errors) or any(sum(counts) for counts, _ in reading.durations.values())

    def _after_fork(self) -> None:
        """In a forked child: fresh locks, no slot held by a thread it does not have (see
        seawall._fork). Each policy renews what it holds."""
        self.stats._after_fork()

    def __del__(self) -> None:
        # Its counts outlive it in the exported totals (see seawall.metrics._remains).
        try:
            live.collected(self)
        except Exception:  # pragma: no cover - at interpreter shutdown
            pass

    @property
    def name(self) -> str:
        """The name used in errors and metric labels.

        Defaults to the qualified name of the first function the policy decorates or calls.
        """
        return self._name if self._name is not None else f"{type(self).__name__.lower()}"

    @property
    def clock(self) -> Clock:
        return self._clock

    def _adopt_name(self, fn: object) -> None:
        if self._name is None:
            self._name = qualified_name(fn)

    def _inherit_name(self, name: str) -> None:
        """Take a containing policy's name unless one was given explicitly."""
        if not self._name_given:
            self._name = name

    _config: Config

    def _spawn(self: S, name: str | None, **overrides: Any) -> S:
        """A fresh policy with this one's configuration, no state, and ``name``."""
        config: Config = self._config  # type: ignore[attr-defined]
        return config.replace(name=name, **overrides).build(type(self))

    # -- the raw shells, one pair per policy -------------------------------------------------

    def _call(self, fn: Callable[..., R], /, *args: Any) -> R:
        raise NotImplementedError

    async def _acall(self, fn: Callable[..., Awaitable[R]], /, *args: Any) -> R:
        raise NotImplementedError

    # -- the public entries: the raw shells plus the call-level SLI ---------------------------

    def call(self, fn: Callable[P, R], /, *args: P.args, **kwargs: P.kwargs) -> R:
        """Run ``fn(*args, **kwargs)`` under this policy."""
        if not callable(fn):
            raise TypeError(f"call needs a function to call, got {type(fn).__name__}")
        if self._name is None:
            self._adopt_name(fn)
        now = self._clock.monotonic
        start = now()
        head = self._fallback_head
        raw = self._call if head is None else head[1]
        try:
            result: R = raw(bind(fn, kwargs) if kwargs else fn, *args)
        except BaseException as exc:
            if head is None or not head[0]._applies(exc):
                self.stats.failed(exc, now() - start)
                raise
            answer: R = self._fall_back(head[0], exc, start)  # type: ignore[arg-type]
            return answer
        self.stats.succeeded(now() - start)
        return result

    async def acall(self, fn: Callable[P, Awaitable[R]], /, *args: P.args, **kwargs: P.kwargs) -> R:
        """Await ``fn(*args, **kwargs)`` under this policy."""
        if not callable(fn):
            raise TypeError(f"acall needs a function to call, got {type(fn).__name__}")
        if self._name is None:
            self._adopt_name(fn)
        if not is_async_callable(fn):
            fn = _awaiting(fn)
        now = self._clock.monotonic
        start = now()
        head = self._fallback_head
        raw = self._acall if head is None else head[2]
        try:
            result: R = await raw(bind(fn, kwargs) if kwargs else fn, *args)
        except BaseException as exc:
            if isinstance(exc, _NotAwaitable):
                raise exc.error from None  # counted nowhere, as call(None) is not
            if head is None or not head[0]._applies(exc):
                self.stats.failed(exc, now() - start)
                raise
            answer: R = await self._afall_back(head[0], exc, start)  # type: ignore[arg-type]
            return answer
        self.stats.succeeded(now() - start)
        return result

    def _fall_back(self, fallback: Fallback, exc: Exception, start: float) -> Any:
        """The fallback's answer to ``exc``, recorded as a ``fallback`` outcome; an error of
        the fallback's own is recorded as what it is, and raised (from ``exc``)."""
        try:
            answer = fallback._answer(exc)
        except BaseException as raised:
            self.stats.failed(raised, self._clock.monotonic() - start)
            raise
        self.stats.fell_back(exc, self._clock.monotonic() - start)
        return answer

    async def _afall_back(self, fallback: Fallback, exc: Exception, start: float) -> Any:
        try:
            answer = await fallback._aanswer(exc)
        except BaseException as raised:
            self.stats.failed(raised, self._clock.monotonic() - start)
            raise
        self.stats.fell_back(exc, self._clock.monotonic() - start)
        return answer

    @overload
    def __call__(
        self, fn: Callable[P, Coroutine[Any, Any, R]]
    ) -> Callable[P, Coroutine[Any, Any, R]]: ...

    @overload
    def __call__(self, fn: Callable[P, R]) -> Callable[P, R]: ...

    def __call__(self, fn: Callable[P, Any]) -> Callable[P, Any]:
        check_decoratable(fn)
        self._adopt_name(fn)
        decorated: Callable[P, Any] = (
            self._decorate_async(fn) if is_async_callable(fn) else self._decorate_sync(fn)
        )
        # The live-policy registry holds policies weakly, and a fused wrapper may hold only the
        # policy's parts: the decorated function keeps its policy, and so its series, alive.
        setattr(decorated, "__seawall_policy__", self)  # noqa: B010  (a name mypy cannot know)
        return decorated

    def _raw_call(self) -> Callable[..., Any]:
        """The raw sync shell a decorator calls (a pipeline fuses its members into one)."""
        return self._call

    def _raw_acall(self) -> Callable[..., Any]:
        return self._acall

    def _decorate_sync(self, fn: Callable[P, R]) -> Callable[P, R]:
        raw, now, stats = self._raw_call(), self._clock.monotonic, self.stats
        succeeded, failed = stats.succeeded, stats.failed
        head = self._fallback_head
        fallback = None if head is None else head[0]
        if head is not None:
            raw = head[1]
        fall_back = self._fall_back

        @functools.wraps(fn)
        def guarded(*args: P.args, **kwargs: P.kwargs) -> R:
            start = now()
            try:
                result: R = raw(bind(fn, kwargs) if kwargs else fn, *args)
            except BaseException as exc:
                if fallback is None or not fallback._applies(exc):
                    failed(exc, now() - start)
                    raise
                answer: R = fall_back(fallback, exc, start)  # type: ignore[arg-type]
                return answer
            succeeded(now() - start)
            return result

        return guarded

    def _decorate_async(
        self, fn: Callable[P, Coroutine[Any, Any, R]]
    ) -> Callable[P, Coroutine[Any, Any, R]]:
        raw, now, stats = self._raw_acall(), self._clock.monotonic, self.stats
        succeeded, failed = stats.succeeded, stats.failed
        head = self._fallback_head
        fallback = None if head is None else head[0]
        if head is not None:
            raw = head[2]
        fall_back = self._afall_back

        @functools.wraps(fn)
        async def guarded(*args: P.args, **kwargs: P.kwargs) -> R:
            start = now()
            try:
                result: R = await raw(bind(fn, kwargs) if kwargs else fn, *args)
            except BaseException as exc:
                if fallback is None or not fallback._applies(exc):
                    failed(exc, now() - start)
                    raise
                answer: R = await fall_back(fallback, exc, start)  # type: ignore[arg-type]
                return answer
            succeeded(now() - start)
            return result

        return guarded
