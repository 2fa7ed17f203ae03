"""Configuration as values: what a policy was built with, fixed once it is built.

A policy's configuration is its constructor's arguments. :func:`configured` keeps those of
the outermost ``__init__`` call as a :class:`Config` (read-only, with a readable repr), from
which :meth:`Config.build` makes a fresh object with the same configuration and changes
(the httpx transports' per-host copies). Public configuration attributes are
:class:`ReadOnly`: each reads the private value the code itself uses, and refuses to be set,
because derived state (a bulkhead's slots, a retry's deadline arithmetic) would go out of step
with it.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any, Concatenate, Generic, ParamSpec, TypeVar, overload

__all__ = ["Config", "ReadOnly", "configured"]

P = ParamSpec("P")
S = TypeVar("S")
T = TypeVar("T")


class Config:
    """The arguments an object was built with, by parameter name (defaults filled in).

    ``config.<parameter>`` reads one; ``replace(**changes)`` is a copy with changes;
    ``build(cls)`` makes a new ``cls`` from it. The repr shows what differs from the defaults.
    """

    __slots__ = ("_kind", "_signature", "_values")

    def __init__(self, kind: str, signature: inspect.Signature, values: dict[str, Any]) -> None:
        object.__setattr__(self, "_kind", kind)
        object.__setattr__(self, "_signature", signature)
        object.__setattr__(self, "_values", values)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):  # its own slots, unset (a copy being made): never a parameter
            raise AttributeError(name)
        missing = object()
        value = self.get(name, missing)
        if value is missing:
            raise AttributeError(f"{self._kind} has no parameter {name!r}")
        return value

    def _var_keyword(self) -> str | None:
        """The name of the ``**kwargs`` parameter, if the constructor has one."""
        for parameter in self._signature.parameters.values():
            if parameter.kind is inspect.Parameter.VAR_KEYWORD:
                return str(parameter.name)
        return None

    def get(self, name: str, default: Any = None) -> Any:
        """The argument ``name`` was given (or its default); for a constructor that takes
        ``**kwargs``, one given through them; else ``default``."""
        values = self._values
        if name in values:
            return values[name]
        var_keyword = self._var_keyword()
        if var_keyword is not None:
            return values.get(var_keyword, {}).get(name, default)
        return default

    def accepts(self, name: str) -> bool:
        """Whether the constructor takes an argument ``name`` (by name or through ``**``)."""
        return name in self._values or self._var_keyword() is not None

    def __reduce__(self) -> tuple[Any, ...]:
        return (Config, (self._kind, self._signature, self._values))

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"a {self._kind}'s configuration is read-only")

    def arguments(self) -> dict[str, Any]:
        """Every parameter and its value."""
        return dict(self._values)

    def replace(self, **changes: Any) -> Config:
        values = dict(self._values)
        extra = {name: value for name, value in changes.items() if name not in values}
        var_keyword = self._var_keyword()
        if extra and var_keyword is None:
            names = ", ".join(map(repr, sorted(extra)))
            raise TypeError(f"{self._kind} has no parameter {names}")
        values.update((name, value) for name, value in changes.items() if name not in extra)
        if extra and var_keyword is not None:
            values[var_keyword] = {**values.get(var_keyword, {}), **extra}
        return Config(self._kind, self._signature, values)

    def build(self, cls: Callable[..., S]) -> S:
        """A new object built from these arguments (``cls`` is the type they were given to)."""
        bound = inspect.BoundArguments(self._signature, self._values)
        return cls(*bound.args, **bound.kwargs)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Config):
            return NotImplemented
        return bool(self._kind == other._kind and self._values == other._values)

    __hash__ = None  # type: ignore[assignment]  # its values may be unhashable

    def __repr__(self) -> str:
        shown = []
        for name, value in self._values.items():
            default = self._signature.parameters[name].default
            if default is inspect.Parameter.empty or not _same(value, default):
                shown.append(f"{name}={value!r}")
        return f"{self._kind}Config({', '.join(shown)})"


def configured(init: Callable[Concatenate[S, P], None]) -> Callable[Concatenate[S, P], None]:
    """Keep the arguments of the outermost ``__init__`` call as ``self._config``; once that
    call is over, call ``self._built()`` if the object has one (a policy registers itself
    there: only whole policies are ever seen by the metrics readers)."""
    signature = inspect.signature(init)
    # The arguments without self: what a new object is built from.
    arguments = signature.replace(parameters=list(signature.parameters.values())[1:])
    kind = init.__qualname__.split(".")[0]

    @functools.wraps(init)
    def __init__(self: S, /, *args: P.args, **kwargs: P.kwargs) -> None:
        # A plain attribute, never vars(self): asking CPython for an object's __dict__ turns
        # its attributes into a real dict, and every attribute read on the hot path slows.
        try:
            self._config  # type: ignore[attr-defined]  # noqa: B018
        except AttributeError:
            outermost = True
            try:
                bound = arguments.bind(*args, **kwargs)
            except TypeError:
                init(self, *args, **kwargs)  # raises Python's own error for the call
                raise
            bound.apply_defaults()
            self._config = Config(kind, arguments, dict(bound.arguments))  # type: ignore[attr-defined]
        else:
            outermost = False
        init(self, *args, **kwargs)
        if outermost:
            built = getattr(self, "_built", None)
            if built is not None:
                built()

    __init__.__configured__ = True  # type: ignore[attr-defined]
    return __init__


def _same(value: object, default: object) -> bool:
    if value is default:
        return True
    try:
        return bool(value == default) and type(value) is type(default)
    except Exception:  # an argument whose == is not a truth value
        return False


class ReadOnly(Generic[T]):
    """A public configuration attribute: reads the private attribute the code uses, and
    refuses to be set (a clear ``AttributeError``)."""

    def __init__(self, private: str) -> None:
        self.private = private
        self.public = private.lstrip("_")

    def __set_name__(self, owner: type, name: str) -> None:
        self.public = name

    @overload
    def __get__(self, obj: None, owner: type | None = None) -> ReadOnly[T]: ...

    @overload
    def __get__(self, obj: object, owner: type | None = None) -> T: ...

    def __get__(self, obj: object, owner: type | None = None) -> T | ReadOnly[T]:
        if obj is None:
            return self
        return getattr(obj, self.private)  # type: ignore[no-any-return]

    def __set__(self, obj: object, value: T) -> None:
        kind = type(obj).__name__
        raise AttributeError(
            f"{kind}.{self.public} is read-only: a {kind}'s configuration is fixed when it is "
            f"built (its state is made from it); build a new {kind}({self.public}=...)"
        )
