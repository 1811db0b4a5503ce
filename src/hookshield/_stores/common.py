"""What the shared de-duplication stores check and convert alike.

Owns the checks of a store's arguments (a key is text, a lease or TTL a positive,
finite number of seconds) and the conversions to what a backend counts in.  Nothing
here imports a backend or keeps state.
"""

from __future__ import annotations

import math

from .._core.options import number

__all__ = ["key_bytes", "milliseconds", "seconds", "whole_seconds"]


def key_bytes(key: str) -> bytes:
    """``key`` as UTF-8; a lone surrogate (text decoded from bad JSON) passes through."""
    if not isinstance(key, str):
        raise TypeError(f"a de-duplication key is a str, not {type(key).__name__}")
    if not key:
        raise ValueError("a de-duplication key must not be empty")
    # The handler keeps sender-chosen ids as they parsed, lone surrogates included;
    # "surrogatepass" keeps two different ids two different keys.
    return key.encode("utf-8", "surrogatepass")


def seconds(name: str, value: float) -> float:
    """``value`` if it is a positive, finite number of seconds; else a clear error."""
    checked = number(name, value)
    if not (0 < checked < math.inf):
        raise ValueError(f"{name} must be a positive, finite number of seconds, not {value!r}")
    return checked


def milliseconds(value: float) -> int:
    """Whole milliseconds, rounded up and at least 1: a key never expires early."""
    return max(1, math.ceil(value * 1000))


def whole_seconds(value: float) -> int:
    """Whole seconds, rounded up and at least 1 (a cache timeout of 0 means "expired")."""
    return max(1, math.ceil(value))
