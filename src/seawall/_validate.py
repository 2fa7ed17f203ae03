"""Checks every policy runs on its configuration at construction."""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable
from typing import Any

__all__ = [
    "MAX_CONCURRENT",
    "MAX_WINDOW_CALLS",
    "MIN_WINDOW",
    "check_callable",
    "check_int",
    "check_name",
    "check_number",
    "check_one_argument",
    "check_window",
    "classifier",
    "optional_number",
]

ExceptionMatcher = (
    type[BaseException] | tuple[type[BaseException], ...] | Callable[[BaseException], bool]
)


def check_number(
    param: str,
    value: object,
    *,
    minimum: float = 0.0,
    maximum: float = math.inf,
    min_inclusive: bool = False,
    max_inclusive: bool = True,
) -> float:
    """``value`` as a float within the range, or ``TypeError``/``ValueError`` naming ``param``."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"{param} must be a number, got {type(value).__name__}")
    try:
        number = float(value)
        beyond = False
    except OverflowError:  # an int beyond any float, and so beyond any bound
        number, beyond = math.nan, True
    low_ok = number >= minimum if min_inclusive else number > minimum
    high_ok = number <= maximum if max_inclusive else number < maximum
    if beyond or math.isnan(number) or not low_ok or not high_ok:
        low = "[" if min_inclusive else "("
        high = "]" if max_inclusive else ")"
        raise ValueError(
            f"{param} must be in {low}{minimum:g}, {maximum:g}{high}, got {_shown(value)}"
        )
    return number


def _shown(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 40 else f"{text[:20]}...({len(text)} digits)"


#: A bulkhead's permits and a count window's calls are slots allocated up front.
MAX_CONCURRENT = 1_000_000
MAX_WINDOW_CALLS = 1_000_000
#: The shortest time window: its tenth is its bucket, and a clock reading is divided by it.
MIN_WINDOW = 0.001


def check_window(param: str, value: object) -> float:
    """Seconds of a time window: at least :data:`MIN_WINDOW`, and finite."""
    return check_number(param, value, minimum=MIN_WINDOW, min_inclusive=True, max_inclusive=False)


def optional_number(param: str, value: object, **bounds: Any) -> float | None:
    return None if value is None else check_number(param, value, **bounds)


def check_int(param: str, value: object, *, minimum: int = 1, maximum: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{param} must be an int, got {type(value).__name__}")
    if value < minimum:
        raise ValueError(f"{param} must be >= {minimum}, got {_shown(value)}")
    if maximum is not None and value > maximum:
        raise ValueError(f"{param} must be <= {maximum:,}, got {_shown(value)}")
    return value


def check_name(value: object) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise TypeError(f"name must be a str, got {type(value).__name__}")
    if not value or not value.isprintable():
        raise ValueError(f"name must be a non-empty printable string, got {value!r}")
    return value


def check_callable(param: str, value: object) -> None:
    if not callable(value):
        raise TypeError(f"{param} must be callable, got {type(value).__name__}")


def check_one_argument(param: str, value: Callable[..., object], what: str) -> None:
    """``value``, called with one positional argument (``what``), must be able to take it:
    otherwise it would fail only at its first call, inside the call it judges."""
    try:
        signature = inspect.signature(value)
    except (TypeError, ValueError):  # a builtin without a signature: taken as it is
        return
    try:
        signature.bind(None)
    except TypeError:
        name = getattr(value, "__qualname__", None) or type(value).__name__
        raise TypeError(
            f"{param} is called with one argument, {what}; {name}{signature} cannot take it"
        ) from None


def _is_exception_type(value: object) -> bool:
    return isinstance(value, type) and issubclass(value, BaseException)


def classifier(param: str, value: object) -> Callable[[BaseException], bool] | None:
    """Turn exception types, a tuple of them, or a predicate into one predicate.

    ``None`` means "matches nothing" and is returned as ``None`` so callers can skip the check.
    """
    if value is None:
        return None
    if _is_exception_type(value):
        exc_type: type[BaseException] = value  # type: ignore[assignment]
        return lambda exc: isinstance(exc, exc_type)
    if isinstance(value, tuple):
        if not value or not all(_is_exception_type(item) for item in value):
            raise TypeError(f"{param} must be exception types or a predicate, got {value!r}")
        types: tuple[type[BaseException], ...] = value
        return lambda exc: isinstance(exc, types)
    if callable(value) and not isinstance(value, type):
        check_one_argument(param, value, "the exception")
        predicate: Callable[[BaseException], bool] = value
        return predicate
    if (
        isinstance(value, list | set | frozenset)
        and value
        and all(_is_exception_type(item) for item in value)
    ):
        # What isinstance() and tenacity take is a tuple: say so rather than only "wrong".
        names = [item.__name__ for item in value]
        spelled = f"({names[0]},)" if len(names) == 1 else f"({', '.join(names)})"
        raise TypeError(
            f"{param} must give several exception types as a tuple, not a "
            f"{type(value).__name__}: {param}={spelled}"
        )
    raise TypeError(f"{param} must be exception types or a predicate, got {value!r}")
