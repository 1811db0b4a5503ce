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

import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Final, TypeVar

from ._headers import Headers
from ._json import FrozenObject

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

    # Typed properties read the raw dict directly: no wrapper per access.
    def _get(self, key: str) -> Any:
        return self.data._raw.get(key)

    def _str(self, key: str) -> str | None:
        value = self.data._raw.get(key)
        return value if isinstance(value, str) else None


@dataclass(frozen=True, slots=True, kw_only=True)
class Delivery:
    """A verified HTTP delivery: who sent it, its de-duplication key and its events.

    ``id`` is the de-duplication key, derived from authenticated content so that a
    replay with fresh unsigned headers keeps the same ``id``: ``"event:<id>"`` for the
    signed event id in the body (MindPeeker), ``"hmac:<hex>"`` for the verified
    signature of a body without one (MOCO, Moonsense: a keyed SHA-256 of the exact
    bytes, already computed, so no second hash), ``"batch:<id>"`` for Momentum's batch
    header, and ``"sha256:<hex>"`` of the raw body otherwise.
    """

    provider: str
    id: str
    events: tuple[Event, ...]
    headers: Headers = field(repr=False)
    body: bytes = field(repr=False)


# Building events and deliveries on the hot path.  The frozen dataclass __init__
# sets each field through object.__setattr__ (about 0.2 us a field); the slots' own
# setters, unrolled, build the identical frozen object in a third of the time, which
# matters for a 10,000-record batch.  The public constructors stay the documented way.

_new = object.__new__
_set_raw = FrozenObject.__dict__["_raw"].__set__
_BASE_FIELDS = ("provider", "type", "id", "timestamp", "data")
# Resolved per concrete class: on Python 3.10 a slotted dataclass subclass declares
# the base fields' slots again, so the base class's setters would miss them.
_event_setters: dict[type[Event], tuple[Callable[[Any, Any], None], ...]] = {}


def _setters_of(cls: type[Event]) -> tuple[Callable[[Any, Any], None], ...]:
    setters = tuple(getattr(cls, name).__set__ for name in _BASE_FIELDS)
    _event_setters[cls] = setters
    return setters


def event_setters(cls: type[Event]) -> tuple[Callable[[Any, Any], None], ...]:
    """The setters of ``provider``, ``type``, ``id``, ``timestamp`` and ``data`` on ``cls``.

    For loops that build thousands of events, where even :func:`build_event`'s own
    call is a measurable share; ``data`` takes a :class:`FrozenObject`.
    """
    return _event_setters.get(cls) or _setters_of(cls)


_set_delivery_fields = tuple(
    Delivery.__dict__[name].__set__ for name in ("provider", "id", "events", "headers", "body")
)

E = TypeVar("E", bound=Event)


def frozen_view(raw: dict[str, Any]) -> FrozenObject:
    """``FrozenObject(raw)``, built without calling ``__init__``."""
    view = _new(FrozenObject)
    _set_raw(view, raw)
    return view


def build_event(
    cls: type[E],
    provider: str,
    kind: str,
    event_id: str | None,
    timestamp: datetime | None,
    data: dict[str, Any],
) -> E:
    """An event of ``cls`` with the base fields set; the caller sets the subclass's own."""
    set_provider, set_type, set_id, set_timestamp, set_data = _event_setters.get(
        cls
    ) or _setters_of(cls)
    event = _new(cls)
    set_provider(event, provider)
    set_type(event, kind)
    set_id(event, event_id)
    set_timestamp(event, timestamp)
    view = _new(FrozenObject)
    _set_raw(view, data)
    set_data(event, view)
    return event


def build_delivery(
    provider: str, delivery_id: str, events: tuple[Event, ...], headers: Headers, body: bytes
) -> Delivery:
    """A Delivery, built as :func:`build_event` builds events."""
    delivery = _new(Delivery)
    set_provider, set_id, set_events, set_headers, set_body = _set_delivery_fields
    set_provider(delivery, provider)
    set_id(delivery, delivery_id)
    set_events(delivery, events)
    set_headers(delivery, headers)
    set_body(delivery, body)
    return delivery


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
    """``value`` as a float where it is a number or a numeric string."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str) and len(value) < 40:
        try:
            return float(value)
        except ValueError:
            return None
    return None


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
