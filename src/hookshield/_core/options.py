"""The type checks of constructor options, shared by the handler, the stores and the inboxes.

Theory of operation: a wrong type given to a constructor is refused there, with a
``TypeError`` that names the option and what it takes ("max_body_size must be an int
(bytes), not str"), rather than surfacing as a stray error at the first request.
``bool`` is a subclass of ``int``, but ``True`` is never a size, a count or a number
of seconds: it is refused wherever a number is meant.  Only types are judged here;
each constructor checks the values (a size of 0, a negative lease) itself, after.

Nothing here keeps state or does I/O.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

__all__ = ["flag", "function", "integer", "number", "text", "type_name"]

F = TypeVar("F", bound=Callable[..., object])


def type_name(value: object) -> str:
    """How a refusal names the type it got: never the value, which may be a secret."""
    return "None" if value is None else type(value).__name__


def integer(option: str, value: object, unit: str) -> int:
    """``value`` if it is an ``int`` (not a ``bool``) of ``unit``; else a ``TypeError``."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{option} must be an int ({unit}), not {type_name(value)}")
    return value


def number(option: str, value: object, unit: str = "seconds") -> float:
    """``value`` as a float if it is an ``int`` or ``float`` (not a ``bool``); else a ``TypeError``."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{option} must be a number ({unit}), not {type_name(value)}")
    return float(value)


def flag(option: str, value: object) -> bool:
    """``value`` if it is ``True`` or ``False``; a truthy string or 1 is a mistake."""
    if not isinstance(value, bool):
        raise TypeError(f"{option} must be True or False, not {type_name(value)}")
    return value


def text(option: str, value: object, what: str = "a str") -> str:
    """``value`` if it is a ``str``; else a ``TypeError`` saying ``what`` it must be."""
    if not isinstance(value, str):
        raise TypeError(f"{option} must be {what}, not {type_name(value)}")
    return value


def function(option: str, value: F) -> F:
    """``value`` if it can be called; else a ``TypeError``."""
    if not callable(value):
        raise TypeError(f"{option} must be a function, not {type_name(value)}")
    return value
