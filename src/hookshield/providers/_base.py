"""What every sender module provides, and the plumbing they share.

Theory of operation: a sender is a :class:`Provider` subclass in a module of its own,
holding everything about that sender: which credentials it can carry, how to check
them over the raw body, how to read its payload into typed events, and, for
:mod:`hookshield.testing`, how to sign a body and build realistic sample deliveries
exactly as the real sender does.  Adding a sender means adding one module and one line
in :mod:`hookshield.providers`.

The order is fixed by :meth:`hookshield.WebhookHandler.verify`: size limit, then
:meth:`Provider.authenticate` on the raw bytes, and only then :meth:`Provider.parse`.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import json
import threading
import time
import urllib.parse
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from .._auth import (
    check_authorization,
    check_hex_hmac,
    check_token,
    read_header,
)
from .._credentials import Credentials
from .._dedupe import DEFAULT_TTL
from .._errors import (
    EmptyBody,
    InvalidEncoding,
    MalformedPayload,
    MissingCredentials,
    UnsupportedContentType,
)
from .._events import Delivery, Event
from .._headers import Headers
from .._json import decode_json

__all__ = [
    "MIB",
    "Credentials",
    "DemoScript",
    "Provider",
    "authorization_headers",
    "body_sha256",
    "content_sha256",
    "first_credential",
    "is_json",
    "media_type",
    "unique_clock",
]

JSON_TYPES = frozenset({"application/json", "text/json", "text/plain"})
FORM_TYPE = "application/x-www-form-urlencoded"
_FORM_MAX_FIELDS = 64
#: The retry window assumed for a sender whose documentation gives none (Moonsense,
#: Petal Metrics, MOCO): two hours, within the library's default de-duplication
#: time (``DEFAULT_TTL``, 2.5 hours), like MindPeeker's published 1 h 42 min.
UNDOCUMENTED_RETRY_WINDOW = 2 * 3600.0
#: One mebibyte: the unit of the senders' default ``max_body_size``.
MIB = 1024 * 1024


@dataclass(frozen=True, slots=True)
class DemoScript:
    """How ``hookshield demo`` shows a sender, declared in the sender's own module.

    ``credentials`` are what the demo's receiver and sender share; ``event_types``
    make the valid delivery (several for a sender of batches); ``accepted`` says in
    words what the receiver checked.  ``attacks`` names the bad deliveries this sender
    demonstrates, among ``"forged"`` (signed with a wrong credential),
    ``"tampered"`` (the body changed after signing, by replacing ``tamper[0]`` with
    ``tamper[1]``), ``"unsigned"`` (the credential header removed) and ``"replayed"``
    (a valid body sent again with freshly made headers).
    """

    credentials: Mapping[str, Any]
    event_types: tuple[str, ...]
    accepted: str
    attacks: tuple[str, ...] = ()
    tamper: tuple[bytes, bytes] | None = None


_clock_lock = threading.Lock()
_clock_last = 0


def unique_clock() -> int:
    """Nanoseconds since the epoch, strictly increasing within the process.

    Sample bodies carry it where the real sender's bodies differ from one delivery to
    the next (an ``updated_at``, a stream's receive time), so that two samples are
    never the same bytes, which a receiver de-duplicating on the body would drop.
    Steps are at least a millisecond, so that a millisecond rendering stays unique.
    """
    global _clock_last
    with _clock_lock:
        now = max(time.time_ns(), _clock_last + 1_000_000)
        _clock_last = now
        return now


def media_type(headers: Headers) -> str:
    """The lower-case media type of the delivery; a missing one reads as JSON."""
    value = headers.get("content-type")
    return "application/json" if value is None else _media_type(value)


def is_json(headers: Headers) -> bool:
    """Whether the body is JSON by its ``Content-Type`` (a missing one reads as JSON).

    A charset other than UTF-8 is not JSON here; :meth:`Provider.check_json` says why.
    """
    value = headers.get("content-type")
    if value is None:
        return True
    try:
        return _is_json_type(value)
    except UnsupportedContentType:
        return False  # refused by check_json(), once the delivery is authenticated


# Senders use a handful of Content-Type spellings, parsed once each; a value too long
# to be one of them is parsed every time rather than cached.
@functools.lru_cache(maxsize=256)
def _cached_media_type(value: str) -> str:
    return _parse_media_type(value)


def _media_type(value: str) -> str:
    return _cached_media_type(value) if len(value) < 256 else _parse_media_type(value)


def _is_json_type(value: str) -> bool:
    kind = _media_type(value)
    return kind in JSON_TYPES or kind.endswith("+json")


def _parse_media_type(value: str) -> str:
    if not value.strip():
        return "application/json"
    kind, _, params = value.partition(";")
    charset = ""
    for param in params.split(";"):
        name, _, val = param.partition("=")
        if name.strip().lower() == "charset":
            charset = val.strip().strip('"').lower()
    if charset and charset not in ("utf-8", "utf8", "us-ascii", "ascii"):
        raise UnsupportedContentType(
            f"the body's charset is {charset!r}; only UTF-8 JSON is accepted"
        )
    return kind.strip().lower()


def first_credential(value: Any) -> str:
    """The credential a sample delivery carries: the first of several, as text."""
    if isinstance(value, (str, bytes)):
        items: list[Any] = [value]
    else:
        items = [*value]
    first = items[0]
    return first.decode("utf-8") if isinstance(first, bytes) else str(first)


def authorization_headers(options: Mapping[str, Any]) -> dict[str, str]:
    """The ``Authorization`` header a sample carries for ``basic_auth=`` or ``bearer_token=``."""
    basic = options.get("basic_auth")
    if basic is not None:
        user, password = basic
        pair = base64.b64encode(f"{user}:{password}".encode()).decode("ascii")
        return {"Authorization": "Basic " + pair}
    bearer = options.get("bearer_token")
    if bearer is not None:
        return {"Authorization": "Bearer " + first_credential(bearer)}
    return {}


def body_sha256(body: bytes) -> str:
    """The de-duplication key of a body with no signed id: its SHA-256."""
    return "sha256:" + hashlib.sha256(body).hexdigest()


def content_sha256(value: Any) -> str | None:
    """A key for decoded JSON content: the SHA-256 of its canonical JSON text.

    Canonical: keys sorted, no spaces, non-ASCII as is; two records that decode to
    the same value get the same key however their bodies were spaced.  ``None`` for
    content nested too deeply for the standard library's encoder (which the
    decoder can accept), which is then not keyed at all.
    """
    try:
        text = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    except (RecursionError, ValueError):
        return None
    return "content:" + hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def form_fields(body: bytes) -> list[tuple[str, str]]:
    """The ``(name, value)`` fields of an urlencoded body, decoded; a typed error otherwise."""
    try:
        return urllib.parse.parse_qsl(
            body.decode("ascii"),
            keep_blank_values=True,
            encoding="utf-8",
            errors="strict",
            max_num_fields=_FORM_MAX_FIELDS,
        )
    except UnicodeDecodeError:
        raise InvalidEncoding("the form body is not valid URL-encoded UTF-8") from None
    except ValueError:
        raise MalformedPayload(f"the form body has more than {_FORM_MAX_FIELDS} fields") from None


def form_field(body: bytes, field: str, *, sender: str) -> bytes:
    """The value of ``field`` in an urlencoded body, as bytes; a typed error otherwise."""
    values = [value for name, value in form_fields(body) if name == field]
    if len(values) != 1:
        found = "no" if not values else "more than one"
        raise MalformedPayload(
            f"the form body has {found} {field!r} field; {sender} puts its JSON in exactly one"
        )
    return values[0].encode("utf-8")


class Provider:
    """One sender: how it authenticates, what it sends, and how to imitate it."""

    #: The name passed to ``WebhookHandler(name, ...)``.
    name: ClassVar[str]
    #: The human name used in messages.
    title: ClassVar[str]
    #: The typed event class this sender's events are instances of.
    event_class: ClassVar[type[Event]]
    #: Every documented event type, for routing checks and sample builders.
    event_types: ClassVar[tuple[str, ...]]
    #: Which credential keyword arguments the sender can be configured with.
    accepts: ClassVar[frozenset[str]]
    #: Whether the sender can deliver with no credential at all.
    can_be_unsigned: ClassVar[bool] = False
    #: Whether the body may be form-encoded (with the JSON in the ``payload`` field).
    accepts_form: ClassVar[bool] = False
    #: Whether each event also has its own de-duplication key (batches of events).
    dedupe_events: ClassVar[bool] = False
    #: The header carrying the hex HMAC, for senders that sign.
    signature_header: ClassVar[str | None] = None
    #: What precedes the hex digest in the signature header (MindPeeker's ``sha256=``).
    signature_prefix: ClassVar[str] = ""
    #: Where a Petal-style shared token travels when no ``token_header`` is given.
    default_token_header: ClassVar[str | None] = None
    #: The headers :meth:`parse` reads besides ``Content-Type``.  An inbox keeps these
    #: with a stored delivery, and drops every other header of the request.
    parse_headers: ClassVar[tuple[str, ...]] = ()
    #: How ``hookshield demo`` shows this sender; ``None`` leaves it out of the demo.
    demo: ClassVar[DemoScript | None] = None
    #: For how long, in seconds, the sender retries a delivery that failed.  Where its
    #: documentation does not say, :data:`UNDOCUMENTED_RETRY_WINDOW`.
    retry_window: ClassVar[float] = UNDOCUMENTED_RETRY_WINDOW
    #: How long, in seconds, a de-duplication key should be kept: the retry window
    #: with a margin, so that the last retry is still recognised.
    default_dedupe_ttl: ClassVar[float] = DEFAULT_TTL
    #: The largest body a handler accepts unless given ``max_body_size=``: what the
    #: sender's largest delivery needs, with margin, so that an authenticated sender
    #: never buffers more than its deliveries can weigh.  Each sender sets its own,
    #: citing its documentation; this one is for a sender that does not.
    default_max_body_size: ClassVar[int] = MIB

    # -- receiving -------------------------------------------------------------

    def authenticate(self, body: bytes, headers: Headers, credentials: Credentials) -> str | None:
        """Check the delivery's credentials over the raw ``body``.

        Returns the verified signature's hex digest for a signed delivery, else ``None``.
        """
        keys = credentials.hmac_keys
        if keys:
            return check_hex_hmac(
                self._signature(headers),
                self.signed_messages(body, headers),
                keys,
                header=self.signature_header or "",
                prefix=self.signature_prefix,
            )
        if credentials.empty:
            return None  # allowed only with allow_unsigned=True, checked at construction
        self._check_shared_credentials(headers, credentials)
        return None

    def check_headers(self, headers: Headers, credentials: Credentials) -> None:
        """Check, before the body is read, what of the credentials the headers settle.

        A credential that travels in a header alone (a token, Basic, Bearer) is
        checked completely; a signature must be present (and well formed, where that
        can be told without the body).  Raises what :meth:`authenticate` would raise
        for these headers, so that a delivery it lets through is judged again, whole,
        by :meth:`authenticate`.
        """
        if credentials.hmac_keys:
            if self.signature_header is not None:
                self._signature(headers)
        elif not credentials.empty:
            self._check_shared_credentials(headers, credentials)

    def _signature(self, headers: Headers) -> str:
        """The signature header's value; :class:`MissingCredentials` without one."""
        header = self.signature_header
        if header is None:  # pragma: no cover - WebhookHandler refuses secrets for such senders
            raise TypeError(f"{self.title} does not sign its deliveries")
        value = read_header(headers, header)
        if value is None:
            raise MissingCredentials(
                f"the delivery has no {header} header, but this handler has a secret: "
                f"{self.title} signs every delivery once a secret is set on its side"
            )
        return value

    def stored_headers(self, credentials: Credentials) -> frozenset[str]:
        """The headers (lower-case) an inbox keeps: what verifying again and parsing read.

        ``Content-Type``, :attr:`parse_headers`, and the signature header when the
        handler checks a signature.  Never a shared credential (a token header,
        ``Authorization``): the inbox's seal vouches for a stored row, and a
        long-lived secret is not kept at rest only to be compared again.  A sender
        whose :meth:`authenticate` reads more headers adds them here.
        """
        names = {"content-type", *self.parse_headers}
        if credentials.hmac_keys and self.signature_header is not None:
            names.add(self.signature_header)
        return frozenset(name.lower() for name in names)

    def signing_keys(self, secrets: tuple[bytes, ...]) -> tuple[bytes, ...]:
        """The HMAC keys of the configured ``secret=`` values: their UTF-8 bytes by default.

        A sender whose secrets are encoded (Standard Webhooks' ``whsec_<base64>``)
        decodes them here; one that cannot be decoded raises ``ValueError``, so the
        handler is refused at construction rather than at the first delivery.
        """
        return secrets

    def signed_messages(self, body: bytes, headers: Headers) -> Iterable[bytes]:
        """The byte strings the sender may have signed, the raw body first.

        Read lazily by the compare: a candidate after the first is only worked out
        (decoded) when the raw body did not match.
        """
        return (body,)

    def _check_shared_credentials(self, headers: Headers, credentials: Credentials) -> None:
        # Any one configured method that the delivery uses must match; a delivery
        # that uses none of them is refused.
        expected: list[str] = []
        if credentials.tokens:
            header = credentials.token_header or self.default_token_header or ""
            value = read_header(headers, header)
            if value is not None:
                check_token(value, credentials.tokens, header=header)
                return
            expected.append(f"a {header} header")
        if credentials.basic or credentials.bearer:
            value = read_header(headers, "authorization")
            if value is not None:
                check_authorization(value, basic=credentials.basic, bearer=credentials.bearer)
                return
            expected.append("an Authorization header")
        raise MissingCredentials(
            f"the delivery carries no credential; this handler expects {' or '.join(expected)}"
        )

    def payload(self, body: bytes, headers: Headers) -> Any:
        """Decode the body (JSON, or the ``payload`` field of a form) after authentication."""
        return decode_json(self.payload_text(body, headers))

    def payload_text(self, body: bytes, headers: Headers) -> bytes:
        """The JSON text the body carries: the body itself, or a form's ``payload`` field."""
        if not is_json(headers):
            if self.accepts_form and media_type(headers) == FORM_TYPE:
                if not body:
                    raise EmptyBody("the body is empty: expected a form with a 'payload' field")
                return form_field(body, "payload", sender=self.title)
            self.check_json(headers)  # raises: neither JSON nor a form
        return body

    def check_json(self, headers: Headers) -> None:
        """Refuse a ``Content-Type`` other than JSON with :class:`UnsupportedContentType`."""
        if is_json(headers):
            return
        kind = media_type(headers)  # raises for a charset other than UTF-8
        allowed = "application/json" + (f" or {FORM_TYPE}" if self.accepts_form else "")
        raise UnsupportedContentType(f"{self.title} sends {allowed}, but this delivery is {kind!r}")

    def parse(self, body: bytes, headers: Headers, signature: str | None) -> Delivery:
        """Read an authenticated body into a :class:`Delivery` of typed events."""
        raise NotImplementedError

    def stream(
        self, body: bytes, headers: Headers, signature: str | None
    ) -> tuple[str, Iterator[Event]]:
        """The delivery's id and its events, for senders of batches read record by record.

        Called, like :meth:`parse`, only once the body is authenticated.  A single-event
        sender has nothing to gain: this parses the whole body and iterates its events.
        """
        delivery = self.parse(body, headers, signature)
        return delivery.id, iter(delivery.events)

    def event_key(self, event: Event) -> str | None:
        """The de-duplication key of one event of a delivery, or ``None`` for none.

        By default the event's signed ``id``.  Senders of batches (Momentum) key each
        event, so that a record already handled in one batch is not dispatched again
        when it comes back in another.
        """
        return event.id

    # -- imitating the sender, for hookshield.testing ------------------------------

    def sign(self, body: bytes, **options: Any) -> dict[str, str]:
        """The headers the real sender sends with ``body``."""
        raise NotImplementedError

    def sample(self, event_type: str, overrides: Mapping[str, Any]) -> bytes:
        """A realistic body for ``event_type``, with ``overrides`` merged into its data.

        Two calls never return the same bytes, as two real deliveries differ.
        """
        raise NotImplementedError

    #: Whether :meth:`sample_batch` can put several events in one delivery.
    sends_batches: ClassVar[bool] = False

    def sample_batch(
        self, event_types: Sequence[str], overrides: Mapping[str, Any] | None = None
    ) -> bytes:
        """One delivery holding an event of each of ``event_types``.

        A sender of one event per delivery takes exactly one type; a sender of
        batches (``sends_batches``) overrides this.
        """
        if len(event_types) != 1:
            raise ValueError(
                f"{self.title} sends one event per delivery: give one event type, "
                f"not {len(event_types)}"
            )
        return self.sample(event_types[0], overrides or {})

    def __repr__(self) -> str:
        return f"<provider {self.name}>"
