"""Any sender that signs with HMAC-SHA256, described declaratively.

Theory of operation: an :class:`HmacSender` is a frozen description (which header,
which prefix and encoding, what is signed, how the key is written, where the type and
id come from); :meth:`HmacSender.provider` turns it into a :class:`Provider` whose
behaviour it drives.  Standard Webhooks and GitHub are two such descriptions.

Rules this module owns:

* Every misconfiguration is refused when the description is built (``ValueError`` or
  ``TypeError``), never at the first delivery.  A timestamp window is refused unless
  the signature covers the timestamp: an unsigned timestamp stops no replay
  (PROVIDERS.md, "Replay").
* Verification reads only bounded headers (:func:`read_header`), at most
  ``max_signatures`` signatures per header, and compares each one with
  :func:`hmac.compare_digest` on its normalised bytes *before* judging its form.
  Every bad input is a typed :class:`WebhookError`; the timestamp window is judged
  only once the signature matched, and in both directions.
* The de-duplication key is the event id when the signature covers it, otherwise the
  body's SHA-256 plus the event type: an unsigned id (a delivery GUID) would let a
  replay through with a fresh one.

Nothing here logs, awaits, touches a store or starts a thread.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import functools
import hashlib
import hmac
import json
import math
import re
import secrets
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar, Literal

from .._auth import normalize_secrets, read_header
from .._errors import (
    InvalidSignature,
    MalformedPayload,
    MalformedSignature,
    MissingCredentials,
    TimestampOutOfRange,
)
from .._events import Delivery, Event, as_str, from_epoch_by_magnitude, from_iso, from_unix
from .._headers import Headers
from .._json import FrozenObject
from ._base import Credentials, Provider

__all__ = ["HmacProvider", "HmacSender"]

#: The most signatures one header may carry (key rotation needs two or three).
MAX_SIGNATURES = 64
# RFC 9110 section 5.6.2: a header name is a token.
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_NAME = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")
_PLACEHOLDER = re.compile(r"\{([^{}]*)\}")
_FIELD_PATH = re.compile(r"[^.\s]+(\.[^.\s]+)*")
_HEX_DIGITS = frozenset(b"0123456789abcdef")
_BASE64_DIGITS = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=")
# Unix seconds up to the year 33658; longer digits are no timestamp a sender sends.
_MAX_TIMESTAMP_DIGITS = 12
# A header part of an event type (MOCO's X-Moco-Target) is cut to this length.
_MAX_TYPE_PART = 64
_UNKNOWN = "unknown"

Part = tuple[Literal["text", "body", "timestamp", "header"], str]


@dataclass(frozen=True, kw_only=True)
class HmacSender:
    """A sender that signs each delivery with HMAC-SHA256, described by its rules.

    Pass it where a sender's name goes: ``WebhookHandler(HmacSender(...), secret=...)``.

    * ``name`` (lower case, the events' ``provider``) and ``title`` (for messages).
    * ``signature_header``; ``signature_prefix`` before each signature (``"sha256="``,
      ``"v1,"``); ``encoding``, ``"hex"`` or ``"base64"``; ``signature_separator``
      between several signatures in the header (``" "``), signatures with another
      prefix being skipped; at most ``max_signatures`` of them.
    * ``signed_content``: a template over ``{body}`` (the raw bytes, exactly once),
      ``{timestamp}`` and named headers, e.g. ``"{webhook-id}.{webhook-timestamp}.{body}"``.
    * ``key_encoding`` of the secrets, ``"text"`` (UTF-8), ``"hex"`` or ``"base64"``,
      with ``key_prefix`` (``"whsec_"``) stripped where present.
    * ``timestamp_header`` with Unix seconds, checked within ``tolerance`` seconds of
      ``clock()`` in both directions; when it is the signature header itself, the
      timestamp is its item that starts with ``timestamp_prefix`` (``"t="``).
    * The event type from ``type_field`` (a JSON path, ``"data.kind"``) or from
      ``type_header`` (one header or several, joined with dots; a missing one reads
      ``"unknown"``), optionally ``type_lowercase``, and ``type_detail_field`` whose
      value, where there is one, is appended after a dot (GitHub's ``action``).
    * The event id from ``id_field`` or ``id_header``: it is the de-duplication key if
      the signature covers it; otherwise the key is the body's SHA-256 plus the type.
    * ``data_field`` (the event's data; the whole payload by default), ``time_field``
      (ISO 8601 or epoch; the signed timestamp by default), ``event_class``,
      ``event_types`` (the documented ones) and ``accepts_form`` (a form body with the
      JSON in its ``payload`` field).
    """

    name: str
    title: str | None = None
    signature_header: str
    signature_prefix: str = ""
    encoding: Literal["hex", "base64"] = "hex"
    signature_separator: str | None = None
    max_signatures: int = 8
    signed_content: str = "{body}"
    key_encoding: Literal["text", "hex", "base64"] = "text"
    key_prefix: str = ""
    timestamp_header: str | None = None
    timestamp_prefix: str = ""
    tolerance: float = 300.0
    clock: Callable[[], float] = time.time
    type_field: str | None = None
    type_header: str | tuple[str, ...] | None = None
    type_lowercase: bool = False
    type_detail_field: str | None = None
    id_field: str | None = None
    id_header: str | None = None
    data_field: str | None = None
    time_field: str | None = None
    event_class: type[Event] = Event
    event_types: tuple[str, ...] = ()
    accepts_form: bool = False
    # Derived once from the fields above.
    _parts: tuple[Part, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        _check_str(self.name, "name")
        if not _NAME.fullmatch(self.name):
            raise ValueError(
                f"name={self.name!r}: use lower-case letters, digits, '.', '_' or '-' "
                "(at most 64), as in 'acme'"
            )
        if self.title is not None:
            _check_str(self.title, "title")
        _check_header(self.signature_header, "signature_header")
        _check_str(self.signature_prefix, "signature_prefix", empty=True)
        if self.encoding not in ("hex", "base64"):
            raise ValueError(f"encoding={self.encoding!r}: use 'hex' or 'base64'")
        self._check_separator()
        self._check_timestamp()
        if self.key_encoding not in ("text", "hex", "base64"):
            raise ValueError(f"key_encoding={self.key_encoding!r}: use 'text', 'hex' or 'base64'")
        _check_str(self.key_prefix, "key_prefix", empty=True)
        object.__setattr__(self, "_parts", self._parse_template())
        self._check_type()
        self._check_id()
        for option in ("data_field", "time_field", "type_detail_field"):
            _check_path(getattr(self, option), option)
        if not (isinstance(self.event_class, type) and issubclass(self.event_class, Event)):
            raise TypeError(
                f"event_class must be a subclass of hookshield.Event, not {self.event_class!r}"
            )
        base = {f.name for f in dataclasses.fields(Event)}
        for extra in dataclasses.fields(self.event_class):
            no_default = extra.default is dataclasses.MISSING
            if (
                extra.name not in base
                and no_default
                and extra.default_factory is dataclasses.MISSING
            ):
                raise TypeError(
                    f"{self.event_class.__name__}.{extra.name} has no default; "
                    "an HmacSender sets only the base fields of its events"
                )
        kinds: object = self.event_types
        if isinstance(kinds, str) or not isinstance(kinds, Sequence):
            raise TypeError("event_types must be a sequence of event type names")
        object.__setattr__(self, "event_types", tuple(kinds))
        for kind in self.event_types:
            _check_str(kind, "each of event_types")
        if not isinstance(self.accepts_form, bool) or not isinstance(self.type_lowercase, bool):
            raise TypeError("accepts_form and type_lowercase are True or False")

    def _check_separator(self) -> None:
        separator = self.signature_separator
        if separator is not None:
            _check_str(separator, "signature_separator")
            if any(c.isalnum() for c in separator):
                raise ValueError(
                    f"signature_separator={separator!r} holds letters or digits, which "
                    "signatures themselves contain"
                )
            if separator in self.signature_prefix:
                raise ValueError(
                    f"signature_prefix={self.signature_prefix!r} contains the separator "
                    f"{separator!r}, so the header could not be split"
                )
        limit = self.max_signatures
        if type(limit) is not int or not 1 <= limit <= MAX_SIGNATURES:
            raise ValueError(f"max_signatures must be an int from 1 to {MAX_SIGNATURES}")

    def _check_timestamp(self) -> None:
        header = self.timestamp_header
        if not callable(self.clock):
            raise TypeError("clock must be a function returning Unix seconds, like time.time")
        tolerance = self.tolerance
        if isinstance(tolerance, bool) or not isinstance(tolerance, (int, float)):
            raise TypeError("tolerance is a number of seconds")
        if not (math.isfinite(tolerance) and tolerance > 0):
            raise ValueError("tolerance must be a positive, finite number of seconds")
        _check_str(self.timestamp_prefix, "timestamp_prefix", empty=True)
        if header is None:
            if self.timestamp_prefix:
                raise ValueError("timestamp_prefix needs timestamp_header")
            return
        _check_header(header, "timestamp_header")
        inside = header.lower() == self.signature_header.lower()
        if inside and not (self.signature_separator and self.timestamp_prefix):
            raise ValueError(
                "a timestamp in the signature header needs signature_separator and "
                "timestamp_prefix (as in 't=<seconds>,v1=<signature>')"
            )
        if self.timestamp_prefix and not inside:
            raise ValueError("timestamp_prefix is for a timestamp inside the signature header")
        if inside and self.timestamp_prefix.startswith(self.signature_prefix):
            raise ValueError("timestamp_prefix and signature_prefix must tell the items apart")

    def _parse_template(self) -> tuple[Part, ...]:
        template = self.signed_content
        _check_str(template, "signed_content")
        parts: list[Part] = []
        position = 0
        for match in _PLACEHOLDER.finditer(template):
            parts.extend(_literal(template[position : match.start()]))
            name = match.group(1)
            if name == "body":
                parts.append(("body", name))
            elif name == "timestamp":
                parts.append(("timestamp", name))
            elif _TOKEN.fullmatch(name):
                parts.append(("header", name.lower()))
            else:
                raise ValueError(
                    f"signed_content: {{{name}}} is neither {{body}}, {{timestamp}} nor a header name"
                )
            position = match.end()
        parts.extend(_literal(template[position:]))
        if sum(kind == "body" for kind, _ in parts) != 1:
            raise ValueError(
                "signed_content must hold {body} exactly once: the body is what is signed"
            )
        headers = {value for kind, value in parts if kind == "header"}
        if self.signature_header.lower() in headers:
            raise ValueError("signed_content cannot hold the signature header itself")
        stamp = self.timestamp_header
        has_placeholder = any(kind == "timestamp" for kind, _ in parts)
        if has_placeholder and stamp is None:
            raise ValueError("signed_content holds {timestamp}: set timestamp_header")
        if stamp is not None and not (has_placeholder or stamp.lower() in headers):
            raise ValueError(
                f"signed_content does not hold the timestamp ({{timestamp}} or {{{stamp}}}): "
                "a window over an unsigned timestamp stops no replay"
            )
        return tuple(parts)

    def _check_type(self) -> None:
        if (self.type_field is None) == (self.type_header is None):
            raise ValueError(
                "give exactly one of type_field= (a JSON path such as 'type') and "
                "type_header= (a header such as 'X-GitHub-Event')"
            )
        _check_path(self.type_field, "type_field")
        names = (self.type_header,) if isinstance(self.type_header, str) else self.type_header
        if names is not None:
            if not isinstance(names, tuple) or not names:
                raise TypeError("type_header is a header name or a non-empty tuple of them")
            for name in names:
                _check_header(name, "type_header")

    def _check_id(self) -> None:
        if self.id_field is not None and self.id_header is not None:
            raise ValueError("give at most one of id_field= and id_header=")
        _check_path(self.id_field, "id_field")
        if self.id_header is not None:
            _check_header(self.id_header, "id_header")

    # -- derived -------------------------------------------------------------------

    @property
    def id_is_signed(self) -> bool:
        """Whether the signature covers the event id (so it may be the de-duplication key)."""
        if self.id_field is not None:
            return True  # the body is always signed
        header = self.id_header
        return header is not None and ("header", header.lower()) in self._parts

    @property
    def type_headers(self) -> tuple[str, ...]:
        """The headers the event type is read from, in order (none for ``type_field``)."""
        names = self.type_header
        return (names,) if isinstance(names, str) else names or ()

    @property
    def signed_headers(self) -> tuple[str, ...]:
        """The (lower-case) headers the signature covers."""
        return tuple(value for kind, value in self._parts if kind == "header")

    def provider(self) -> HmacProvider:
        """The :class:`Provider` this description drives (one per description)."""
        return _provider_of(self)

    def keys(self, secrets: tuple[bytes, ...]) -> tuple[bytes, ...]:
        """The HMAC keys of ``secrets`` as the sender writes them (``ValueError`` if not)."""
        return tuple(self._key(secret) for secret in secrets)

    def _key(self, secret: bytes) -> bytes:
        prefix = self.key_prefix.encode("utf-8")
        if prefix and secret.startswith(prefix):
            secret = secret[len(prefix) :]
        shown = f"{self.title or self.name} secret"
        try:
            if self.key_encoding == "hex":
                key = bytes.fromhex(secret.decode("ascii"))
            elif self.key_encoding == "base64":
                text = secret.strip()
                key = base64.b64decode(text + b"=" * (-len(text) % 4), validate=True)
            else:
                key = secret
        except (ValueError, binascii.Error):
            raise ValueError(
                f"the {shown} is not valid {self.key_encoding}"
                + (f" after its {self.key_prefix!r} prefix" if self.key_prefix else "")
            ) from None
        if not key:
            raise ValueError(
                f"the {shown} is empty once decoded: an empty key authenticates anyone"
            )
        return key

    def encode(self, digest: bytes) -> str:
        """A raw HMAC digest as the header carries it, without the prefix."""
        if self.encoding == "hex":
            return digest.hex()
        return base64.b64encode(digest).decode("ascii")


def _literal(text: str) -> list[Part]:
    if "{" in text or "}" in text:
        raise ValueError("signed_content has an unmatched brace; placeholders are {name}")
    return [("text", text)] if text else []


def _check_str(value: object, option: str, *, empty: bool = False) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{option} must be a str, not {type(value).__name__}")
    if not value and not empty:
        raise ValueError(f"{option} must not be empty")
    if any(ord(c) < 32 or ord(c) == 127 for c in value):
        raise ValueError(f"{option}={value!r} holds control characters")
    return value


def _check_header(value: object, option: str) -> None:
    if not _TOKEN.fullmatch(_check_str(value, option)):
        raise ValueError(f"{option}={value!r} is not an HTTP header name")


def _check_path(value: object, option: str) -> None:
    if value is None:
        return
    if not _FIELD_PATH.fullmatch(_check_str(value, option)):
        raise ValueError(f"{option}={value!r} is not a JSON path such as 'type' or 'data.kind'")


def _at(payload: Any, path: str) -> Any:
    """The value at the dotted ``path`` of ``payload``, or ``None``."""
    for key in path.split("."):
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


@functools.lru_cache(maxsize=64)
def _provider_of(sender: HmacSender) -> HmacProvider:
    title = sender.title or sender.name
    attributes = {"sender": sender, "__doc__": f"{title}'s webhooks, from an HmacSender."}
    cls = type(f"HmacProvider[{sender.name}]", (HmacProvider,), attributes)
    provider: HmacProvider = cls()
    return provider


class HmacProvider(Provider):
    """A :class:`Provider` driven by its :class:`HmacSender` description, ``sender``."""

    sender: ClassVar[HmacSender]
    accepts = frozenset({"secret"})

    def __init_subclass__(cls, **kwargs: Any) -> None:
        sender: HmacSender | None = cls.__dict__.get("sender")
        if sender is not None:
            # The Provider attributes that the registry, testing and the CLI read.
            defaults = {
                "name": sender.name,
                "title": sender.title or sender.name,
                "event_class": sender.event_class,
                "event_types": sender.event_types,
                "signature_header": sender.signature_header,
                "signature_prefix": sender.signature_prefix,
                "accepts_form": sender.accepts_form,
            }
            for attribute, value in defaults.items():
                if attribute not in cls.__dict__:
                    setattr(cls, attribute, value)
        super().__init_subclass__(**kwargs)

    def signing_keys(self, secrets: tuple[bytes, ...]) -> tuple[bytes, ...]:
        """The secrets decoded as the description says (``whsec_`` base64, hex...)."""
        return self.sender.keys(secrets)

    # -- receiving -----------------------------------------------------------------

    def authenticate(self, body: bytes, headers: Headers, credentials: Credentials) -> str | None:
        """Check the signature (and the signed timestamp's window); the matched hex digest."""
        sender = self.sender
        keys = credentials.hmac_keys
        if not keys:  # pragma: no cover - WebhookHandler refuses a handler with no secret
            raise MissingCredentials(f"a {self.title} handler needs secret=")
        header = sender.signature_header
        value = read_header(headers, header)
        if value is None:
            raise MissingCredentials(
                f"the delivery has no {header} header, but this handler has a secret: "
                f"{self.title} signs every delivery"
            )
        signatures, stamp = self._split(value, headers)
        message = self._message(body, headers, stamp)
        prefix = sender.signature_prefix
        hexed = sender.encoding == "hex"
        if hexed:
            prefix = prefix.lower()
        # Every candidate goes through the constant-time compare, prefix included,
        # before anything about its form is judged.
        received = [
            (s.lower() if hexed else s).encode("utf-8", "surrogatepass") for s in signatures
        ]
        for key in keys:
            digest = bytes.fromhex(key.hexdigest(message))
            expected = (prefix + sender.encode(digest)).encode("ascii")
            for candidate in received:
                if hmac.compare_digest(expected, candidate):
                    if stamp is not None:
                        self._check_window(stamp)
                    return digest.hex()
        raise self._mismatch(received, prefix.encode("utf-8"))

    def _split(self, value: str, headers: Headers) -> tuple[list[str], str | None]:
        """The signatures of the header and the timestamp text (``None`` without one)."""
        sender = self.sender
        header = sender.signature_header
        separator = sender.signature_separator
        items = [value.strip()] if separator is None else value.split(separator)
        items = [item.strip() for item in items if item.strip()]
        if not items:
            raise MalformedSignature(f"the {header} header is empty")
        stamp_header = sender.timestamp_header
        stamp: str | None = None
        if stamp_header is not None and stamp_header.lower() == header.lower():
            prefix = sender.timestamp_prefix
            stamps = [item for item in items if item.startswith(prefix)]
            items = [item for item in items if not item.startswith(prefix)]
            if len(stamps) != 1:
                raise MalformedSignature(
                    f"the {header} header must hold exactly one {prefix}<Unix seconds> item"
                )
            stamp = stamps[0][len(prefix) :].strip()
        elif stamp_header is not None:
            stamp = read_header(headers, stamp_header)
            if stamp is None:
                raise MissingCredentials(
                    f"the delivery has no {stamp_header} header; {self.title} signs one"
                )
            stamp = stamp.strip()
        if len(items) > sender.max_signatures:
            raise MalformedSignature(
                f"the {header} header holds {len(items)} signatures; at most "
                f"{sender.max_signatures} are accepted"
            )
        if stamp is not None and not (
            stamp.isascii() and stamp.isdigit() and len(stamp) <= _MAX_TIMESTAMP_DIGITS
        ):
            raise MalformedSignature(
                f"the {stamp_header} timestamp must be Unix seconds (digits only)"
            )
        return items, stamp

    def _message(self, body: bytes, headers: Headers, stamp: str | None) -> bytes:
        """The bytes the sender signed, from the ``signed_content`` template."""
        parts = self.sender._parts
        if len(parts) == 1:
            return body  # "{body}": no copy
        stamp_header = (self.sender.timestamp_header or "").lower()
        chunks: list[bytes] = []
        for kind, value in parts:
            if kind == "body":
                chunks.append(body)
                continue
            if kind == "text":
                text = value
            elif kind == "timestamp" or value == stamp_header:
                text = stamp or ""
            else:
                found = read_header(headers, value)
                if found is None:
                    raise MissingCredentials(
                        f"the delivery has no {value} header; {self.title} signs one"
                    )
                text = found.strip()
            try:
                chunks.append(text.encode("utf-8"))
            except UnicodeEncodeError:
                raise MalformedSignature("a signed header of the delivery is not text") from None
        return b"".join(chunks)

    def _check_window(self, stamp: str) -> None:
        sender = self.sender
        age = sender.clock() - int(stamp)
        if abs(age) > sender.tolerance:
            when = f"{age:.0f} s ago" if age > 0 else f"{-age:.0f} s in the future"
            raise TimestampOutOfRange(
                f"the delivery was signed {when}, outside the {sender.tolerance:g} s window: "
                "a replay, or a clock that is off (check NTP on both sides)"
            )

    def _mismatch(self, received: list[bytes], prefix: bytes) -> Exception:
        """Why nothing matched, judged only after every constant-time compare."""
        sender = self.sender
        header = sender.signature_header
        digits, size = (_HEX_DIGITS, 64) if sender.encoding == "hex" else (_BASE64_DIGITS, 44)
        form = f"{sender.signature_prefix}<{size} {sender.encoding} characters>"
        ours = [item[len(prefix) :] for item in received if item.startswith(prefix)]
        if not ours:
            return MalformedSignature(f"the {header} header holds no signature like '{form}'")
        if not any(len(s) == size and digits.issuperset(s) for s in ours):
            return MalformedSignature(
                f"the {header} signature is not of the form '{form}' (an HMAC-SHA256)"
            )
        return InvalidSignature(
            f"the {header} signature does not match the body. Check that you pass the raw "
            "request body, byte for byte as received (not JSON your framework parsed and "
            "re-serialised), and that the secret is the one configured at the sender."
        )

    def parse(self, body: bytes, headers: Headers, signature: str | None) -> Delivery:
        """One event, its type, id and data read where the description says."""
        sender = self.sender
        payload = self.payload(body, headers)
        if sender.type_field is not None:
            if type(payload) is not dict:
                raise MalformedPayload(f"a {self.title} event is a JSON object")
            kind = _at(payload, sender.type_field)
            if not isinstance(kind, str) or not kind:
                raise MalformedPayload(f"a {self.title} event has a string {sender.type_field!r}")
        else:
            kind = self._header_type(headers)
        if sender.type_detail_field is not None:
            detail = _at(payload, sender.type_detail_field)
            if isinstance(detail, str) and detail:
                kind = f"{kind}.{detail}"
        event_id = self._event_id(payload, headers)
        data = payload if sender.data_field is None else _at(payload, sender.data_field)
        if sender.time_field is not None:
            when = _when(_at(payload, sender.time_field))
        else:
            when = self._signed_time(headers)
        event = sender.event_class(
            provider=self.name,
            type=kind,
            id=event_id,
            timestamp=when,
            data=FrozenObject(data if type(data) is dict else {}),
        )
        if event_id is not None and sender.id_is_signed:
            key = "event:" + event_id
        else:
            key = f"sha256:{hashlib.sha256(body).hexdigest()}:{kind}"
        return Delivery(provider=self.name, id=key, events=(event,), headers=headers, body=body)

    def _header_type(self, headers: Headers) -> str:
        parts = []
        for name in self.sender.type_headers:
            value = (headers.get(name) or "").strip()[:_MAX_TYPE_PART]
            parts.append(value or _UNKNOWN)
        kind = ".".join(parts)
        return kind.lower() if self.sender.type_lowercase else kind

    def _event_id(self, payload: Any, headers: Headers) -> str | None:
        sender = self.sender
        if sender.id_field is not None:
            return as_str(_at(payload, sender.id_field))
        if sender.id_header is not None:
            value = read_header(headers, sender.id_header)
            return (value.strip() or None) if value is not None else None
        return None

    def _signed_time(self, headers: Headers) -> datetime | None:
        sender = self.sender
        if sender.timestamp_header is None:
            return None
        value = headers.get(sender.timestamp_header) or ""
        if sender.timestamp_prefix:
            items = (item.strip() for item in value.split(sender.signature_separator or ","))
            value = next(
                (
                    i[len(sender.timestamp_prefix) :]
                    for i in items
                    if i.startswith(sender.timestamp_prefix)
                ),
                "",
            )
        return from_unix(int(value)) if value.strip().isdigit() else None

    # -- imitating the sender, for hookshield.testing ------------------------------

    def sign(self, body: bytes, **options: Any) -> dict[str, str]:
        """The headers the sender sends with ``body``, signed with the first secret.

        Options: ``event`` (for a type carried in headers), ``event_id`` (for an id
        header), ``timestamp`` (Unix seconds; now by default), ``content_type``.
        """
        sender = self.sender
        (secret, *_) = normalize_secrets(options["secret"], name="secret")
        (key,) = sender.keys((secret,))
        headers: dict[str, str] = {
            "Content-Type": str(options.get("content_type") or "application/json")
        }
        names = sender.type_headers
        if names:
            event = str(options.get("event") or (self.event_types or (_UNKNOWN,))[0])
            # With a detail field (GitHub's action) the last part is in the body.
            values = event.split(".", len(names) - (sender.type_detail_field is None))
            headers.update(zip(names, values[: len(names)], strict=False))
        if sender.id_header is not None:
            headers[sender.id_header] = str(
                options.get("event_id") or "msg_" + secrets.token_hex(12)
            )
        stamp = options.get("timestamp")
        stamp_text = str(int(sender.clock() if stamp is None else stamp))
        inside = False
        if sender.timestamp_header is not None:
            inside = sender.timestamp_header.lower() == sender.signature_header.lower()
            if not inside:
                headers[sender.timestamp_header] = stamp_text
        lowered = Headers(headers)
        message = self._message(body, lowered, stamp_text if sender.timestamp_header else None)
        signature = sender.signature_prefix + sender.encode(hmac.digest(key, message, "sha256"))
        if inside:
            separator = sender.signature_separator or ","
            signature = sender.timestamp_prefix + stamp_text + separator + signature
        headers[sender.signature_header] = signature
        return headers

    def sample(self, event_type: str, overrides: Mapping[str, Any]) -> bytes:
        """A body of ``event_type`` in the described shape, ``overrides`` in its data."""
        sender = self.sender
        payload: dict[str, Any] = {}
        if sender.type_field is not None:
            _put(payload, sender.type_field, event_type)
        elif sender.type_detail_field is not None:
            names = sender.type_headers
            pieces = event_type.split(".", len(names))
            if len(pieces) > len(names):
                _put(payload, sender.type_detail_field, pieces[-1])
        if sender.id_field is not None:
            _put(payload, sender.id_field, "evt_" + secrets.token_hex(8))
        if sender.time_field is not None:
            _put(payload, sender.time_field, "2025-01-15T10:30:00Z")
        if sender.data_field is not None:
            _put(payload, sender.data_field, dict(overrides))
        else:
            payload.update(overrides)
        return json.dumps(payload, allow_nan=False).encode("utf-8")


def _put(payload: dict[str, Any], path: str, value: Any) -> None:
    *parents, last = path.split(".")
    for key in parents:
        payload = payload.setdefault(key, {})
    payload[last] = value
