"""Verified deliveries and the events they carry.

An :class:`Event` is frozen and slotted: handlers may keep it, share it between
threads or put it in a set of seen events.  Each sender's subclass adds typed
properties over the same read-only ``data``; they are computed on access, so a batch
of 10,000 events costs 10,000 small objects and nothing more until a handler reads a
field.  A field the sender left out reads as ``None``; a field of an unexpected type
reads as ``None`` too rather than failing, because senders add and change fields
without notice and a receiver must keep acknowledging.
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Final

from .frozen_json import FrozenObject, unwrap
from .headers import Headers

__all__ = ["Delivery", "Event"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Event:
    """One event from a verified delivery.

    ``type`` is the dotted name handlers are registered for (``"session.completed"``,
    ``"activity.create"``, ``"click"``); ``id`` is the sender's event id where it has
    one; ``timestamp`` is an aware UTC ``datetime`` where the sender gives a time;
    ``data`` is this event's JSON, read-only.
    """

    provider: str
    type: str
    id: str | None = None
    timestamp: datetime | None = None
    # Left out of the hash (the view is unhashable) but not out of equality.
    data: FrozenObject = field(default_factory=FrozenObject, repr=False, hash=False)

    # Typed properties read the decoded dict itself: no wrapper per access.
    def _get(self, key: str) -> Any:
        return unwrap(self.data).get(key)

    def _str(self, key: str) -> str | None:
        value = unwrap(self.data).get(key)
        return value if isinstance(value, str) else None

    def _object(self, key: str) -> FrozenObject | None:
        value = unwrap(self.data).get(key)
        return FrozenObject(value) if isinstance(value, dict) else None


@dataclass(frozen=True, slots=True, kw_only=True)
class Delivery:
    """A verified HTTP delivery: who sent it, its de-duplication key and its events.

    ``id`` is the de-duplication key, derived from the signed content so that a replay
    with fresh unsigned headers keeps the same ``id``: ``"event:<id>"`` for a signed
    event id (MindPeeker's ``id``, Standard Webhooks' ``webhook-id``);
    ``"sha256:<hex>"`` otherwise, the SHA-256 of the body (of the JSON text for
    Moonsense, so that a form carrying it is the same delivery), followed by
    ``":<type>"`` where the event type comes from an unsigned header and one body may
    be two events (MOCO always, Moonsense when the body has no ``event_type``; not
    GitHub, whose every event has a body of its own); and
    ``"batch:<id>:sha256:<hex>"`` for a Momentum batch, whose records are each
    de-duplicated as well.  The key does not depend on which secret signed the body,
    so a body signed under the old and the new secret during a key rotation is one
    delivery.
    """

    provider: str
    id: str
    events: tuple[Event, ...]
    headers: Headers = field(repr=False)
    body: bytes = field(repr=False)


# Helpers for the senders' typed properties and parsers.


def as_str(value: Any) -> str | None:
    """``value`` if it is a string; an integer (64-bit ids in protobuf JSON) as its text."""
    if isinstance(value, str):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return None


def as_int(value: Any) -> int | None:
    """``value`` as an int, accepting the decimal strings that 64-bit JSON ids come as."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.isascii() and value.lstrip("-").isdigit():
        return int(value) if len(value) < 40 else None
    return None


def as_float(value: Any) -> float | None:
    """``value`` as a finite float where it is a number or a numeric string.

    An integer too large for a float, and text such as ``"nan"`` or ``"1e400"``,
    read as ``None``: JSON carries neither infinities nor NaN, so they are no reading.
    """
    if type(value) is float:  # the common case; JSON floats are finite
        return value
    if isinstance(value, bool):
        return None
    try:
        if isinstance(value, int) or (isinstance(value, str) and len(value) < 40):
            result = float(value)
        else:
            return None
    except (OverflowError, ValueError):
        return None
    return result if math.isfinite(result) else None


def from_unix(seconds: float | None) -> datetime | None:
    """An aware UTC datetime from Unix seconds, or ``None`` if it is out of range."""
    if seconds is None:
        return None
    try:
        return datetime.fromtimestamp(seconds, _UTC)  # positional: a third faster
    except (OverflowError, OSError, ValueError):
        return None


def from_epoch_by_magnitude(value: int | None) -> datetime | None:
    """An aware datetime from an epoch integer in seconds, milliseconds or microseconds.

    Moonsense's ``server_time_millis`` holds microseconds in its own example
    (16 digits), so the unit is read from the magnitude rather than the name.
    """
    if value is None:
        return None
    magnitude = abs(value)
    if magnitude >= 10**20:  # past year 5000 even in nanoseconds, and past a float
        return None
    if magnitude >= 10**17:
        return from_unix(value / 1e9)  # nanoseconds
    if magnitude >= 10**14:
        return from_unix(value / 1e6)  # microseconds
    if magnitude >= 10**11:
        return from_unix(value / 1e3)  # milliseconds
    return from_unix(value)


def from_iso(value: Any) -> datetime | None:
    """An aware datetime from ISO 8601 text; a time without an offset is read as UTC."""
    if type(value) is not str or len(value) > 64:
        return None
    if _ISO_NEEDS_Z_REWRITE and value.endswith(("Z", "z")):
        value = value[:-1] + "+00:00"
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    return parsed


_UTC: Final = timezone.utc
# fromisoformat reads a trailing "Z" itself from Python 3.11 on.
_ISO_NEEDS_Z_REWRITE: Final = sys.version_info < (3, 11)
