"""Composition: a Pipeline of policies, and Policy, which builds the recommended order."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from seawall._base import PolicyBase, check_clock
from seawall._breaker import CircuitBreaker
from seawall._bulkhead import Bulkhead
from seawall._chaos import Injector
from seawall._clock import Clock
from seawall._config import Config
from seawall._fallback import Fallback
from seawall._fast import fast_acall, fast_call
from seawall._retry import Retry
from seawall._stats import live
from seawall._timeout import Timeout

__all__ = ["Pipeline", "Policy"]

R = TypeVar("R")


class Pipeline(PolicyBase):
    """Policies applied in order, outermost first; itself a policy.

    ``Pipeline(a, b, c).call(fn)`` runs ``a`` around ``b`` around ``c`` around ``fn``. No
    closure is made per call: each layer is handed the next layers' ``call`` as its function.
    Policies without a name of their own take the pipeline's.
    """

    def __init__(
        self, *policies: PolicyBase, name: str | None = None, clock: Clock | None = None
    ) -> None:
        super().__init__(name=name, clock=clock)
        if not policies:
            raise ValueError("policies: a Pipeline needs at least one policy")
        for policy in policies:
            if not isinstance(policy, PolicyBase):
                raise TypeError(f"policies must be seawall policies, got {policy!r}")
            _check_not_composed("policies", policy, name)
        self.policies: tuple[PolicyBase, ...] = policies
        for policy in policies:
            live.mark_member(policy)
        self._call_outcomes = frozenset().union(*(policy._call_outcomes for policy in policies))
        # Members are composed through their raw shells: the pipeline records the SLI once.
        self._outer_call = policies[0]._call
        self._outer_acall = policies[0]._acall
        self._inner_calls = tuple(policy._call for policy in policies[1:])
        self._inner_acalls = tuple(policy._acall for policy in policies[1:])
        if self._name is not None:
            self._name_members(self._name)
        head = policies[0]
        if isinstance(head, Fallback):
            # Outermost, its answers are recorded as their own outcome (see PolicyBase): the
            # recording shells apply it around the other members.
            if len(policies) == 1:
                self._fallback_head = head._fallback_head
            else:
                self._fallback_head = (
                    head,
                    functools.partial(self._inner_calls[0], *self._inner_calls[1:]),
                    functools.partial(self._inner_acalls[0], *self._inner_acalls[1:]),
                )

    def _name_members(self, name: str) -> None:
        for policy in self.policies:
            policy._inherit_name(name)

    def _adopt_name(self, fn: object) -> None:
        super()._adopt_name(fn)
        self._name_members(self.name)

    def _inherit_name(self, name: str) -> None:
        super()._inherit_name(name)
        self._name_members(self.name)

    def _raw_call(self) -> Callable[..., Any]:
        # One C-level partial instead of this class's own frame on every decorated call.
        return functools.partial(self._outer_call, *self._inner_calls)

    def _raw_acall(self) -> Callable[..., Any]:
        return functools.partial(self._outer_acall, *self._inner_acalls)

    def _call(self, fn: Callable[..., R], /, *args: Any) -> R:
        result: R = self._outer_call(*self._inner_calls, fn, *args)
        return result

    async def _acall(self, fn: Callable[..., Awaitable[R]], /, *args: Any) -> R:
        result: R = await self._outer_acall(*self._inner_acalls, fn, *args)
        return result

    def __repr__(self) -> str:
        inner = ", ".join(repr(policy) for policy in self.policies)
        return f"Pipeline({inner}, name={self.name!r})"


def _check_not_composed(param: str, part: PolicyBase, name: str | None) -> None:
    """A part without a name of its own belongs to the first composition that names it:
    composed again under another name (or none yet), it would take that name, and the first
    one's series would move without a word."""
    taken = part._name
    if live.is_member(part) and not part._name_given and taken is not None and taken != name:
        kind = type(part).__name__
        raise ValueError(
            f"{param}: this {kind} is already part of {part.name!r} (whose name it took); "
            f"to share it, give it a name of its own: {kind}(..., name='...')"
        )


def _as_timeout(param: str, value: Timeout | float | None, clock: Clock | None) -> Timeout | None:
    if value is None or isinstance(value, Timeout):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        timeout: Timeout = _built(param, Timeout, value, clock)
        return timeout
    raise TypeError(f"{param} must be a Timeout or seconds, got {type(value).__name__}")


def _built(param: str, kind: Callable[..., Any], value: Any, clock: Clock | None) -> Any:
    """A part built from a Policy's parameter; an error names that parameter first."""
    try:
        return kind(value, clock=clock)
    except (TypeError, ValueError) as exc:
        raise type(exc)(f"{param}: {exc}") from None


def _adopt_clock(param: str, part: PolicyBase, clock: Clock) -> None:
    """Put ``part`` on the Policy's ``clock`` if it was built without a clock of its own. It is
    built again with the same arguments and ``clock``: what it derives from its clock (its
    window's buckets, tenacity's sleep) starts over."""
    if part.clock is clock:
        return
    config = part._config
    if config.get("clock") is not None or not config.accepts("clock"):
        return  # given one (kept), or it takes none
    if live.is_member(part):
        # Another composition runs it, on its clock (and its one-frame path read that clock).
        raise ValueError(
            f"clock: the {param} is already part of another policy, on another clock: give "
            f"the {type(part).__name__} its clock when you build it (clock=...)"
        )
    if part._has_run():
        # Built again, it would lose what it counted (a counter going down).
        raise ValueError(
            f"clock: the {param} ({type(part).__name__} {part.name!r}) has run on its own "
            "clock already: give it the Policy's clock when you build it (clock=...)"
        )
    listeners = getattr(part, "_listeners", ())
    _rebuild(part, config.replace(clock=clock))
    if listeners:
        part._listeners = listeners  # type: ignore[attr-defined]
    budget = getattr(part, "budget", None)
    if budget is not None and budget._clock is not clock:
        snapshot = budget.snapshot()
        config = budget._config
        if (
            config.accepts("clock")
            and config.get("clock") is None
            and not (snapshot.calls or snapshot.refused)
        ):
            # Unused yet (a budget shared with retries that have run keeps its clock).
            _rebuild(budget, budget._config.replace(clock=clock))


def _rebuild(obj: Any, config: Config) -> None:
    """Build ``obj`` again in place from ``config`` (it keeps its identity: the user holds
    it), before it has run: what it derived from its old configuration starts over."""
    obj._config = config
    config.build(functools.partial(type(obj).__init__, obj))


def _check(param: str, value: Any, kind: type[PolicyBase], shorthand: str = "") -> Any:
    """``value`` if it is a ``kind`` (or ``None``); ``shorthand`` names what else the Policy
    takes for it."""
    if value is not None and not isinstance(value, kind):
        article = "an" if kind.__name__[0] in "AEIOU" else "a"
        raise TypeError(
            f"{param} must be {article} {kind.__name__}{shorthand}, got {type(value).__name__}"
        )
    return value


class Policy(Pipeline):
    """The recommended stack, outermost first::

        fallback → total_timeout → retry → breaker → attempt_timeout → bulkhead → chaos → call

    So every attempt is seen by the breaker, a rejection by the breaker is not retried
    blindly (only if its ``retry_after`` fits the deadline), and a call queued in the bulkhead
    cannot wait longer than its attempt's timeout. ``chaos`` (``seawall.chaos.inject(...)``)
    stands where the dependency is: every other part sees the faults it injects, and while
    it is not enabled calls pass it by. Every part is optional. Timeouts may be
    given as seconds, the bulkhead as its ``max_concurrent``, the breaker as ``True`` for the
    defaults. Parts without a name of their own take the policy's ``name``. ``clock`` times
    the policy's own call-level SLI and is the clock of every part built without one (a part
    given a clock of its own keeps it).
    """

    def __init__(
        self,
        name: str,
        *,
        fallback: Fallback | None = None,
        total_timeout: Timeout | float | None = None,
        retry: Retry | None = None,
        breaker: CircuitBreaker | bool | None = None,
        attempt_timeout: Timeout | float | None = None,
        bulkhead: Bulkhead | int | None = None,
        chaos: Injector | None = None,
        clock: Clock | None = None,
    ) -> None:
        if clock is not None:
            check_clock(clock)
        if breaker is True:
            breaker = CircuitBreaker(clock=clock)
        elif breaker is False:
            breaker = None
        if isinstance(bulkhead, int) and not isinstance(bulkhead, bool):
            bulkhead = _built("bulkhead", Bulkhead, bulkhead, clock)
        self.fallback: Fallback | None = _check("fallback", fallback, Fallback)
        self.total_timeout = _as_timeout("total_timeout", total_timeout, clock)
        self.retry: Retry | None = _check("retry", retry, Retry)
        self.breaker: CircuitBreaker | None = _check(
            "breaker", breaker, CircuitBreaker, ", True or False"
        )
        self.attempt_timeout = _as_timeout("attempt_timeout", attempt_timeout, clock)
        self.bulkhead: Bulkhead | None = _check(
            "bulkhead", bulkhead, Bulkhead, " or an int (its max_concurrent)"
        )
        self.chaos: Injector | None = _check("chaos", chaos, Injector, " (seawall.chaos.inject)")
        named = (
            ("fallback", self.fallback),
            ("total_timeout", self.total_timeout),
            ("retry", self.retry),
            ("breaker", self.breaker),
            ("attempt_timeout", self.attempt_timeout),
            ("bulkhead", self.bulkhead),
            ("chaos", self.chaos),
        )
        for param, part in named:
            if part is not None:
                _check_not_composed(param, part, name)
        if clock is not None:
            for param, part in named:
                if part is not None:
                    _adopt_clock(param, part, clock)
        parts = [
            part
            for part in (
                self.fallback,
                self.total_timeout,
                self.retry,
                self.breaker,
                self.attempt_timeout,
                self.bulkhead,
                self.chaos,
            )
            if part is not None
        ]
        if not parts:
            raise ValueError("a Policy needs at least one of its parts")
        total, attempt = self.total_timeout, self.attempt_timeout
        if total is not None and attempt is not None and attempt.seconds > total.seconds:
            # The total would cut every attempt first: the attempt timeout could never act.
            raise ValueError(
                f"attempt_timeout ({attempt.seconds:g}s) must not exceed total_timeout "
                f"({total.seconds:g}s)"
            )
        if not isinstance(name, str):
            raise TypeError(f"name must be a str, got {type(name).__name__}")
        if self.total_timeout is not None and self.attempt_timeout is not None:
            # Two timeouts under one name would share their metric series.
            self.attempt_timeout._inherit_name(f"{name}.attempt")
            self.attempt_timeout._name_given = True
        super().__init__(*parts, name=name, clock=clock)
        # The common call (let through at once, successful at once) in one frame; see _fast.
        # The fast path stands in for the parts inside the total timeout.
        total = self.total_timeout
        inner = self.policies if total is None else self.policies[self.policies.index(total) + 1 :]
        fast_sync = fast_async = None
        if inner:
            composed = functools.partial(inner[0]._call, *(part._call for part in inner[1:]))
            fast_sync = fast_call(self, composed)
            composed = functools.partial(inner[0]._acall, *(part._acall for part in inner[1:]))
            fast_async = fast_acall(self, composed)
        self._sync_shell: Callable[..., Any] = fast_sync or super()._raw_call()
        self._async_shell: Callable[..., Any] = fast_async or super()._raw_acall()

    def _raw_call(self) -> Callable[..., Any]:
        return self._sync_shell

    def _raw_acall(self) -> Callable[..., Any]:
        return self._async_shell

    def _call(self, fn: Callable[..., R], /, *args: Any) -> R:
        result: R = self._sync_shell(fn, *args)
        return result

    async def _acall(self, fn: Callable[..., Awaitable[R]], /, *args: Any) -> R:
        result: R = await self._async_shell(fn, *args)
        return result

    def __repr__(self) -> str:
        labels = []
        for label, part in (
            ("fallback", self.fallback),
            ("total_timeout", self.total_timeout),
            ("retry", self.retry),
            ("breaker", self.breaker),
            ("attempt_timeout", self.attempt_timeout),
            ("bulkhead", self.bulkhead),
            ("chaos", self.chaos),
        ):
            if part is not None:
                labels.append(f"{label}={part!r}")
        chain = " → ".join(labels)
        return f"Policy({self.name!r}: {chain})"
