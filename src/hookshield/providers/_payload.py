"""Where a described sender puts an event's type, id, time and data: its payload shape.

Theory of operation: a :class:`PayloadShape` is the half of an ``HmacSender``
description that is not its signature (that half is an :class:`~._scheme.HmacScheme`).
It is checked when built (``ValueError`` or ``TypeError``), and read only once the
delivery is authenticated: the event's fields, and the de-duplication key.

Rules this module owns:

* The de-duplication key is ``event:<id>`` for a non-empty id that the signature
  covers; otherwise the body's SHA-256, followed by ``:<type>`` where the type comes
  from an unsigned header (and ``type_in_key`` is left on), since one body may then be
  two events.  A type read from the body is covered by the body's hash already.  An
  unsigned id (a delivery GUID) is never the key: a replay would come with a fresh one.

Nothing here logs, awaits, touches a store or starts a thread.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import re
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from .._core.auth import read_header
from .._core.errors import MalformedPayload
from .._core.events import Event, as_str, from_epoch_by_magnitude, from_iso, from_unix
from .._core.headers import Headers
from ._scheme import check_header_name, check_text

__all__ = ["PayloadShape"]

_FIELD_PATH = re.compile(r"[^.\s]+(\.[^.\s]+)*")
# A header part of an event type (MOCO's X-Moco-Target) is cut to this length.
_MAX_TYPE_PART = 64
_UNKNOWN = "unknown"


@dataclass(frozen=True, kw_only=True)
class PayloadShape:
    """Where the event's type, id, time and data are; see ``HmacSender`` for each option.

    ``id_signed`` says whether the signature covers the id: always for ``id_field``
    (the body is signed), for ``id_header`` where the scheme's ``signed_content`` names
    that header.
    """

    type_field: str | None = None
    type_header: str | tuple[str, ...] | None = None
    type_lowercase: bool = False
    type_detail_field: str | None = None
    type_in_key: bool = True
    type_fallback: str | None = None
    id_field: str | None = None
    id_header: str | None = None
    id_signed: bool = False
    data_field: str | None = None
    data_optional: bool = False
    time_field: str | None = None
    event_class: type[Event] = Event
    event_types: tuple[str, ...] = ()
    accepts_form: bool = False
    # Each JSON path option split into its keys once, not on every delivery.
    _keys: dict[str, tuple[str, ...]] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        self._check_type()
        if self.id_field is not None and self.id_header is not None:
            raise ValueError("give at most one of id_field= and id_header=")
        _check_path(self.id_field, "id_field")
        if self.id_header is not None:
            check_header_name(self.id_header, "id_header")
        for option in ("data_field", "time_field", "type_detail_field"):
            _check_path(getattr(self, option), option)
        self._check_event_class()
        kinds: object = self.event_types
        if isinstance(kinds, str) or not isinstance(kinds, Sequence):
            raise TypeError("event_types must be a sequence of event type names")
        object.__setattr__(self, "event_types", tuple(kinds))
        for kind in self.event_types:
            check_text(kind, "each of event_types")
        flags = (
            self.accepts_form,
            self.type_lowercase,
            self.type_in_key,
            self.id_signed,
            self.data_optional,
        )
        if not all(isinstance(flag, bool) for flag in flags):
            raise TypeError(
                "accepts_form, type_lowercase, type_in_key and data_optional are True or False"
            )
        if self.data_optional and self.data_field is None:
            raise ValueError("data_optional is for a data_field the payload may lack")
        paths = {
            "type_field": self.type_field,
            "type_detail_field": self.type_detail_field,
            "id_field": self.id_field,
            "data_field": self.data_field,
            "time_field": self.time_field,
        }
        keys = {option: tuple(path.split(".")) for option, path in paths.items() if path}
        object.__setattr__(self, "_keys", keys)

    def _check_type(self) -> None:
        if (self.type_field is None) == (self.type_header is None):
            raise ValueError(
                "give exactly one of type_field= (a JSON path such as 'type') and "
                "type_header= (a header such as 'X-GitHub-Event')"
            )
        _check_path(self.type_field, "type_field")
        fallback = self.type_fallback
        if fallback is not None:
            check_text(fallback, "type_fallback")
            if self.type_field is None:
                raise ValueError(
                    "type_fallback is for a type_field the payload may lack; a missing "
                    f"type header reads {_UNKNOWN!r}"
                )
            if "*" in fallback:
                raise ValueError(f"type_fallback={fallback!r}: '*' is for routes, not a type")
        names = (self.type_header,) if isinstance(self.type_header, str) else self.type_header
        if names is not None:
            if not isinstance(names, tuple) or not names:
                raise TypeError("type_header is a header name or a non-empty tuple of them")
            for name in names:
                check_header_name(name, "type_header")

    def _check_event_class(self) -> None:
        event_class = self.event_class
        if not (isinstance(event_class, type) and issubclass(event_class, Event)):
            raise TypeError(
                f"event_class must be a subclass of hookshield.Event, not {event_class!r}"
            )
        base = {f.name for f in dataclasses.fields(Event)}
        for extra in dataclasses.fields(event_class):
            if (
                extra.name not in base
                and extra.default is dataclasses.MISSING
                and extra.default_factory is dataclasses.MISSING
            ):
                raise TypeError(
                    f"{event_class.__name__}.{extra.name} has no default; "
                    "an HmacSender sets only the base fields of its events"
                )

    @property
    def type_headers(self) -> tuple[str, ...]:
        """The headers the event type is read from, in order (none for ``type_field``)."""
        names = self.type_header
        return (names,) if isinstance(names, str) else names or ()

    # -- reading an authenticated delivery ---------------------------------------------

    def event_type(self, payload: Any, headers: Headers, *, sender: str) -> str:
        """The event's type: from the body or the headers, with its detail field."""
        if self.type_field is not None:
            kind = at(payload, self._keys["type_field"])
            if not isinstance(kind, str) or not kind:
                if self.type_fallback is not None:
                    kind = self.type_fallback
                elif type(payload) is not dict:
                    raise MalformedPayload(f"a {sender} event is a JSON object")
                else:
                    raise MalformedPayload(f"a {sender} event has a string {self.type_field!r}")
        else:
            parts = []
            for name in self.type_headers:
                value = (headers.get(name) or "").strip()[:_MAX_TYPE_PART]
                parts.append(value or _UNKNOWN)
            kind = ".".join(parts)
            if self.type_lowercase:
                kind = kind.lower()
        if self.type_detail_field is not None:
            detail = at(payload, self._keys["type_detail_field"])
            if isinstance(detail, str) and detail:
                kind = f"{kind}.{detail}"
        return kind

    def event_id(self, payload: Any, headers: Headers) -> str | None:
        """The event's id, from the body or a header; ``None`` without one."""
        if self.id_field is not None:
            return as_str(at(payload, self._keys["id_field"]))
        if self.id_header is not None:
            # An unsigned id (GitHub's delivery GUID) is no credential: sent twice, it
            # is a malformed header (400), not a failed authentication.
            value = read_header(headers, self.id_header, credential=self.id_signed)
            return (value.strip() or None) if value is not None else None
        return None

    def data(self, payload: Any) -> Any:
        """The event's data: the whole payload, or the value at ``data_field``.

        With ``data_optional``, the whole payload where there is no object at
        ``data_field``.
        """
        if self.data_field is None:
            return payload
        data = at(payload, self._keys["data_field"])
        if self.data_optional and type(data) is not dict:
            return payload
        return data

    def time(self, payload: Any) -> datetime | None:
        """The time at ``time_field`` (ISO 8601, or an epoch read by its magnitude)."""
        if self.time_field is None:
            return None
        return _when(at(payload, self._keys["time_field"]))

    def id_key(self, event_id: str | None) -> str | None:
        """The key of a delivery with this event id: ``None`` unless signed and not empty."""
        return "event:" + event_id if event_id and self.id_signed else None

    def key(self, body: bytes, kind: str, event_id: str | None) -> str:
        """The delivery's de-duplication key (see the module's rules)."""
        signed = self.id_key(event_id)
        if signed is not None:
            return signed
        digest = "sha256:" + hashlib.sha256(body).hexdigest()
        if self.type_field is None and self.type_in_key:
            return f"{digest}:{kind}"  # the type is in an unsigned header
        return digest

    # -- imitating the sender ----------------------------------------------------------

    def sample(self, event_type: str, overrides: Mapping[str, Any]) -> bytes:
        """A body of ``event_type`` in this shape, ``overrides`` in its data."""
        payload: dict[str, Any] = {}
        if self.type_field is not None:
            _put(payload, self.type_field, event_type)
        elif self.type_detail_field is not None:
            names = self.type_headers
            pieces = event_type.split(".", len(names))
            if len(pieces) > len(names):
                _put(payload, self.type_detail_field, pieces[-1])
        if self.id_field is not None:
            _put(payload, self.id_field, "evt_" + secrets.token_hex(8))
        if self.time_field is not None:
            _put(payload, self.time_field, "2025-01-15T10:30:00Z")
        if self.data_field is not None:
            _put(payload, self.data_field, dict(overrides))
        else:
            payload.update(overrides)
        return json.dumps(payload, allow_nan=False).encode("utf-8")

    def type_header_values(self, event: str) -> dict[str, str]:
        """The type headers a sender sends for ``event`` (its detail, if any, is in the body)."""
        names = self.type_headers
        values = event.split(".", len(names) - (self.type_detail_field is None))
        return dict(zip(names, values[: len(names)], strict=False))


def at(payload: Any, keys: tuple[str, ...]) -> Any:
    """The value at the path of ``keys`` (a dotted path, split) in ``payload``, or ``None``."""
    for key in keys:
        if type(payload) is not dict:
            return None
        payload = payload.get(key)
    return payload


def _when(value: Any) -> datetime | None:
    """An event time: ISO 8601 text, or an epoch number read by its magnitude."""
    if isinstance(value, str):
        return from_iso(value)
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return from_epoch_by_magnitude(value)
    if isinstance(value, float) and math.isfinite(value):
        return from_unix(value)
    return None


def _put(payload: dict[str, Any], path: str, value: Any) -> None:
    *parents, last = path.split(".")
    for key in parents:
        payload = payload.setdefault(key, {})
    payload[last] = value


def _check_path(value: object, option: str) -> None:
    if value is None:
        return
    if not _FIELD_PATH.fullmatch(check_text(value, option)):
        raise ValueError(f"{option}={value!r} is not a JSON path such as 'type' or 'data.kind'")
