"""Any sender that signs with HMAC-SHA256, described declaratively.

Theory of operation: an :class:`HmacSender` is a frozen description (which header,
which prefix and encoding, what is signed, how the key is written, where the type and
id come from); :meth:`HmacSender.provider` turns it into a :class:`Provider` whose
behaviour it drives.  Standard Webhooks and GitHub are two such descriptions.

Rules this module owns:

* Every misconfiguration is refused when the description is built (``ValueError`` or
  ``TypeError``), never at the first delivery.  A timestamp window is refused unless
  the signature covers the timestamp: an unsigned timestamp stops no replay
  (docs/security.md, "Replay and de-duplication").

The :class:`Provider` that a description drives lives in ``_hmac_provider``.

Nothing here logs, awaits, touches a store or starts a thread.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import math
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal

from .._events import Event
from ._base import MIB
from ._hmac_provider import HmacProvider, provider_of

__all__ = ["HmacProvider", "HmacSender"]

#: The most signatures one header may carry (key rotation needs two or three).
MAX_SIGNATURES = 64
# RFC 9110 section 5.6.2: a header name is a token.
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_NAME = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")
_PLACEHOLDER = re.compile(r"\{([^{}]*)\}")
_FIELD_PATH = re.compile(r"[^.\s]+(\.[^.\s]+)*")

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
      the signature covers it (a signed id header that is empty is refused); otherwise
      the key is the body's SHA-256 plus the type.  ``type_in_key=False`` leaves a type
      read from ``type_header`` out of that key, for a sender whose every event has a
      body of its own (GitHub): a captured body replayed under another type header is
      then a duplicate rather than a new delivery.  Keep the default where one body
      may be sent as two events (MOCO's update and delete of an unchanged entity).
    * ``data_field`` (the event's data; the whole payload by default), ``time_field``
      (ISO 8601 or epoch; the signed timestamp by default), ``event_class``,
      ``event_types`` (the documented ones) and ``accepts_form`` (a form body with the
      JSON in its ``payload`` field).
    * ``max_body_size``: the largest body the sender sends, in bytes, the default of a
      handler's ``max_body_size=`` (1 MiB, fifty times what the Standard Webhooks
      specification recommends a payload stays under; set the sender's documented cap
      where it has one).
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
    type_in_key: bool = True
    id_field: str | None = None
    id_header: str | None = None
    data_field: str | None = None
    time_field: str | None = None
    event_class: type[Event] = Event
    event_types: tuple[str, ...] = ()
    accepts_form: bool = False
    max_body_size: int = MIB
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
        flags = (self.accepts_form, self.type_lowercase, self.type_in_key)
        if not all(isinstance(flag, bool) for flag in flags):
            raise TypeError("accepts_form, type_lowercase and type_in_key are True or False")
        if type(self.max_body_size) is not int or self.max_body_size < 1:
            raise ValueError("max_body_size must be a positive number of bytes (an int)")

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
    def signed_parts(self) -> tuple[Part, ...]:
        """``signed_content`` parsed into its pieces: text, ``{body}``, the timestamp, headers."""
        return self._parts

    @property
    def signed_headers(self) -> tuple[str, ...]:
        """The (lower-case) headers the signature covers."""
        return tuple(value for kind, value in self._parts if kind == "header")

    def provider(self) -> HmacProvider:
        """The :class:`Provider` this description drives (one per description)."""
        return provider_of(self)

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
