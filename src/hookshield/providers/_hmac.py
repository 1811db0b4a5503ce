"""Any sender that signs with HMAC-SHA256, described declaratively, and the provider it drives.

Theory of operation: an :class:`HmacSender` is a frozen description in two halves:
its :class:`~._scheme.HmacScheme` (which header, which prefix and encoding, what is
signed, how the key is written: ``sender.scheme``) and its
:class:`~._payload.PayloadShape` (where the type, id, time and data are:
``sender.payload``).  It is written flat, one keyword per option, and split when
built; every misconfiguration is refused then (``ValueError`` or ``TypeError``),
never at the first delivery.  :meth:`HmacSender.provider` turns it into an
:class:`HmacProvider`, whose behaviour it drives.  MindPeeker, MOCO, GitHub and
Standard Webhooks are such descriptions, each with a module of its own for its typed
event class and its samples.

Nothing here logs, awaits, touches a store or starts a thread.
"""

from __future__ import annotations

import functools
import re
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType
from typing import Any, ClassVar, Literal, TypedDict

from .._core.events import Delivery, Event
from .._core.frozen_json import FrozenObject
from .._core.headers import Headers
from ._base import MIB, Provider
from ._payload import PayloadShape
from ._scheme import HmacScheme, Part, check_text

__all__ = ["EventFields", "HmacProvider", "HmacSender"]

_NAME = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")
_UNKNOWN = "unknown"


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
    * ``ed25519_prefix`` (``"v1a,"``): ed25519 signatures of the same signed content,
      beside the HMAC ones, checked with ``public_key=`` values (``whpk_<base64>``;
      the ``hookshield[ed25519]`` extra).
    * The event type from ``type_field`` (a JSON path, ``"data.kind"``) or from
      ``type_header`` (one header or several, joined with dots; a missing one reads
      ``"unknown"``), optionally ``type_lowercase``, and ``type_detail_field`` whose
      value, where there is one, is appended after a dot (GitHub's ``action``).
      ``type_fallback`` is the type of a payload without a string at ``type_field``
      (or that is no JSON object), which is refused (400) without one.
    * The event id from ``id_field`` or ``id_header``: it is the de-duplication key if
      the signature covers it (a signed id header that is empty is refused); otherwise
      the key is the body's SHA-256, plus the type where the type comes from a header.
      ``type_in_key=False`` leaves that type out, for a sender whose every event has a
      body of its own (GitHub): a captured body replayed under another type header is
      then a duplicate rather than a new delivery.  Keep the default where one body
      may be sent as two events (MOCO's update and delete of an unchanged entity).
    * ``data_field`` (the event's data; the whole payload by default) and
      ``data_optional`` (the whole payload where there is no object at ``data_field``),
      ``time_field`` (ISO 8601 or epoch; the signed timestamp where it has none), ``event_class``,
      ``event_types`` (the documented ones) and ``accepts_form`` (a form body with the
      JSON in its ``payload`` field).
    * ``max_body_size``: the largest body the sender sends, in bytes, the default of a
      handler's ``max_body_size=`` (1 MiB, fifty times what the Standard Webhooks
      specification recommends a payload stays under; set the sender's documented cap
      where it has one).

    The first four groups are its :attr:`scheme`, the next its :attr:`payload`.
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
    ed25519_prefix: str | None = None
    type_field: str | None = None
    type_header: str | tuple[str, ...] | None = None
    type_lowercase: bool = False
    type_detail_field: str | None = None
    type_in_key: bool = True
    type_fallback: str | None = None
    id_field: str | None = None
    id_header: str | None = None
    data_field: str | None = None
    data_optional: bool = False
    time_field: str | None = None
    event_class: type[Event] = Event
    event_types: tuple[str, ...] = ()
    accepts_form: bool = False
    max_body_size: int = MIB
    #: The signature half of the description, built from the fields above.
    scheme: HmacScheme = field(init=False, repr=False, compare=False)
    #: The payload half of the description, built from the fields above.
    payload: PayloadShape = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        check_text(self.name, "name")
        if not _NAME.fullmatch(self.name):
            raise ValueError(
                f"name={self.name!r}: use lower-case letters, digits, '.', '_' or '-' "
                "(at most 64), as in 'acme'"
            )
        if self.title is not None:
            check_text(self.title, "title")
        scheme = HmacScheme(
            signature_header=self.signature_header,
            signature_prefix=self.signature_prefix,
            encoding=self.encoding,
            signature_separator=self.signature_separator,
            max_signatures=self.max_signatures,
            signed_content=self.signed_content,
            key_encoding=self.key_encoding,
            key_prefix=self.key_prefix,
            timestamp_header=self.timestamp_header,
            timestamp_prefix=self.timestamp_prefix,
            tolerance=self.tolerance,
            clock=self.clock,
            id_header=self.id_header,
            ed25519_prefix=self.ed25519_prefix,
        )
        id_header = self.id_header
        id_signed = self.id_field is not None or (
            isinstance(id_header, str) and id_header.lower() in scheme.signed_headers
        )
        payload = PayloadShape(
            type_field=self.type_field,
            type_header=self.type_header,
            type_lowercase=self.type_lowercase,
            type_detail_field=self.type_detail_field,
            type_in_key=self.type_in_key,
            type_fallback=self.type_fallback,
            id_field=self.id_field,
            id_header=self.id_header,
            id_signed=id_signed,
            data_field=self.data_field,
            data_optional=self.data_optional,
            time_field=self.time_field,
            event_class=self.event_class,
            event_types=self.event_types,
            accepts_form=self.accepts_form,
        )
        object.__setattr__(self, "event_types", payload.event_types)
        object.__setattr__(self, "scheme", scheme)
        object.__setattr__(self, "payload", payload)
        if type(self.max_body_size) is not int or self.max_body_size < 1:
            raise ValueError("max_body_size must be a positive number of bytes (an int)")

    # -- derived -------------------------------------------------------------------

    @property
    def id_is_signed(self) -> bool:
        """Whether the signature covers the event id (so it may be the de-duplication key)."""
        return self.payload.id_signed

    @property
    def type_headers(self) -> tuple[str, ...]:
        """The headers the event type is read from, in order (none for ``type_field``)."""
        return self.payload.type_headers

    @property
    def signed_parts(self) -> tuple[Part, ...]:
        """``signed_content`` parsed into its pieces: text, ``{body}``, the timestamp, headers."""
        return self.scheme.signed_parts

    @property
    def signed_headers(self) -> tuple[str, ...]:
        """The (lower-case) headers the signature covers."""
        return self.scheme.signed_headers

    def provider(self) -> HmacProvider:
        """The :class:`Provider` this description drives (one per description)."""
        return _provider_of(self)

    def keys(self, secrets: tuple[bytes, ...]) -> tuple[bytes, ...]:
        """The HMAC keys of ``secrets`` as the sender writes them (``ValueError`` if not)."""
        return self.scheme.keys(secrets, sender=self.title or self.name)

    def encode(self, digest: bytes) -> str:
        """A raw HMAC digest as the header carries it, without the prefix."""
        return self.scheme.encode(digest)


class EventFields(TypedDict):
    """The base fields of an :class:`~hookshield.Event`, as a description reads them."""

    provider: str
    type: str
    id: str | None
    timestamp: datetime | None
    data: FrozenObject


@functools.lru_cache(maxsize=64)
def _provider_of(sender: HmacSender) -> HmacProvider:
    title = sender.title or sender.name
    attributes = {"sender": sender, "__doc__": f"{title}'s webhooks, from an HmacSender."}
    cls = type(f"HmacProvider[{sender.name}]", (HmacProvider,), attributes)
    provider: HmacProvider = cls()
    return provider


class HmacProvider(Provider):
    """A :class:`Provider` driven by its :class:`HmacSender` description, ``sender``.

    A sender's module subclasses it with ``sender = <its description>``, and may
    override :meth:`make_event` (typed fields the description does not read),
    :meth:`sign` (headers the description does not name) and :meth:`sample` (bodies
    in the sender's own shape).
    """

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
                "accepts_form": sender.accepts_form,
                "scheme": sender.scheme,
                # public_key= where the scheme carries ed25519 signatures.
                "accepts": frozenset(
                    {"secret", "public_key"} if sender.scheme.ed25519_prefix else {"secret"}
                ),
                "default_max_body_size": sender.max_body_size,
                # What parse() reads: the type and id headers, and the signed time.
                "parse_headers": tuple(
                    name
                    for name in (*sender.type_headers, sender.id_header, sender.timestamp_header)
                    if name is not None
                ),
                # A key the scheme reads, written as the sender writes its secrets.
                "test_credentials": MappingProxyType(
                    {"secret": sender.scheme.write_secret(f"{sender.name}-test-key".encode())}
                ),
            }
            for attribute, value in defaults.items():
                if attribute not in cls.__dict__:
                    setattr(cls, attribute, value)
        super().__init_subclass__(**kwargs)

    # -- receiving -----------------------------------------------------------------

    def parse(self, body: bytes, headers: Headers, signature: str | None) -> Delivery:
        """One event, its type, id and data read where the description says."""
        shape = self.sender.payload
        payload = self.payload(body, headers)
        kind = shape.event_type(payload, headers, sender=self.title)
        event_id = shape.event_id(payload, headers)
        data = shape.data(payload)
        # The payload's own time where it has one, else the signed timestamp.
        when = shape.time(payload) or self.sender.scheme.signed_time(headers)
        # A literal: calling the TypedDict, a class, costs as much again.
        fields: EventFields = {
            "provider": self.name,
            "type": kind,
            "id": event_id,
            "timestamp": when,
            "data": FrozenObject(data if type(data) is dict else {}),
        }
        event = self.make_event(payload, headers, fields)
        key = shape.key(body, kind, event_id)
        return Delivery(provider=self.name, id=key, events=(event,), headers=headers, body=body)

    def make_event(self, payload: Any, headers: Headers, fields: EventFields) -> Event:
        """The event of an authenticated ``payload``, from its base ``fields`` as described.

        A sender's module overrides this to fill the typed fields of its event class
        that the description does not read (MOCO's context headers, MindPeeker's
        envelope); ``payload`` is the decoded body.
        """
        return self.sender.event_class(**fields)

    # -- imitating the sender, for hookshield.testing ------------------------------

    def sign(self, body: bytes, **options: Any) -> dict[str, str]:
        """The headers the sender sends with ``body``, signed with the first secret.

        Options: ``event`` (for a type carried in headers), ``event_id`` (for an id
        header), ``timestamp`` (Unix seconds; now by default), ``content_type``, and
        ``private_key`` (``whsk_<base64>``) for an ed25519 signature, with or without
        the ``secret``'s.
        """
        sender = self.sender
        headers: dict[str, str] = {
            "Content-Type": str(options.get("content_type") or "application/json")
        }
        if sender.type_headers:
            event = str(options.get("event") or (self.event_types or (_UNKNOWN,))[0])
            headers.update(sender.payload.type_header_values(event))
        if sender.id_header is not None:
            headers[sender.id_header] = str(
                options.get("event_id") or "msg_" + secrets.token_hex(12)
            )
        headers.update(
            sender.scheme.sign(
                body,
                options.get("secret"),
                headers,
                timestamp=options.get("timestamp"),
                private_key=options.get("private_key"),
            )
        )
        return headers

    def sample(self, event_type: str, overrides: Mapping[str, Any]) -> bytes:
        """A body of ``event_type`` in the described shape, ``overrides`` in its data."""
        return self.sender.payload.sample(event_type, overrides)
