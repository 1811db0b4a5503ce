"""What every sender module provides, and the plumbing they share.

Theory of operation: a sender is a :class:`Provider` subclass in a module of its own,
holding everything about that sender: which credentials it can carry, how to check
them over the raw body (its :class:`HmacScheme`, for a sender that signs), how to
read its payload into typed events, for how long it retries, and, for
:mod:`hookshield.testing`, the command line and the contract tests, the credentials
to test it with, how to sign a body and build realistic sample deliveries exactly as
the real sender does.  Adding a sender means adding one module and registering it
(one line in :mod:`hookshield.providers`, or :func:`register_provider`).

The order is fixed by :meth:`hookshield.WebhookHandler.verify`: what the headers
settle before the body is read (:meth:`Provider.check_headers`), the size limit
(:attr:`Provider.default_max_body_size` unless the handler says), then
:meth:`Provider.authenticate` on the raw bytes, and only then :meth:`Provider.parse`.
Nothing here imports the handler side (``_handler``, ``_credentials``, the stores).
"""

from __future__ import annotations

import base64
import functools
import hashlib
import json
import math
import threading
import time
import urllib.parse
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, ClassVar

from .._core.auth import Credentials, check_authorization, check_token, read_header
from .._core.errors import (
    EmptyBody,
    InvalidEncoding,
    InvalidSignature,
    MalformedPayload,
    MissingCredentials,
    UnsupportedContentType,
    WebhookError,
)
from .._core.events import Delivery, Event
from .._core.frozen_json import decode_json
from .._core.headers import Headers
from ._scheme import HmacScheme

__all__ = [
    "FORM_TYPE",
    "MIB",
    "UNDOCUMENTED_RETRY_WINDOW",
    "Credentials",
    "DemoScript",
    "Provider",
    "authorization_headers",
    "body_sha256",
    "content_sha256",
    "dedupe_ttl_for",
    "first_credential",
    "form_field",
    "form_fields",
    "is_json",
    "media_type",
    "sole_payload",
    "unique_clock",
]

JSON_TYPES = frozenset({"application/json", "text/json", "text/plain"})
FORM_TYPE = "application/x-www-form-urlencoded"
_FORM_MAX_FIELDS = 64
#: The retry window assumed for a sender whose documentation gives none (Moonsense,
#: Petal Metrics, MOCO, GitHub, Standard Webhooks): two hours, about MindPeeker's
#: published 1 h 42 min.
UNDOCUMENTED_RETRY_WINDOW = 2 * 3600.0
_HALF_AN_HOUR = 1800.0
#: One mebibyte: the unit of the senders' default ``max_body_size``.
MIB = 1024 * 1024


def dedupe_ttl_for(retry_window: float) -> float:
    """The default de-duplication time of a sender that retries for ``retry_window`` s.

    The window and a quarter more, rounded up to a whole half hour (at least one), so
    that the sender's last retry, late as it may be, still finds its key: 2.5 hours for
    MindPeeker's 1 h 42 min and for the undocumented two hours, 10 hours for
    SparkPost's eight.
    """
    halves = math.ceil(retry_window * 1.25 / _HALF_AN_HOUR)
    return max(1, halves) * _HALF_AN_HOUR


@dataclass(frozen=True, slots=True, kw_only=True)
class DemoScript:
    """How ``hookshield demo`` shows a sender, declared in the sender's own module.

    ``credentials`` are what the demo's receiver and sender share (by default the
    sender's :attr:`Provider.test_credentials`); ``event_types``
    make the valid delivery (several for a sender of batches); ``accepted`` says in
    words what the receiver checked.  ``attacks`` names the bad deliveries this sender
    demonstrates, among ``"forged"`` (signed with a wrong credential),
    ``"tampered"`` (the body changed after signing, by replacing ``tamper[0]`` with
    ``tamper[1]``), ``"unsigned"`` (the credential header removed) and ``"replayed"``
    (a valid body sent again with freshly made headers).
    """

    event_types: tuple[str, ...]
    accepted: str
    credentials: Mapping[str, Any] | None = None
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
    return _is_json_type(value)


# Senders use a handful of Content-Type spellings, parsed once each; a value too long
# to be one of them is parsed every time rather than cached.
@functools.lru_cache(maxsize=256)
def _cached_media_type(value: str) -> str:
    return _parse_media_type(value)


def _media_type(value: str) -> str:
    return _cached_media_type(value) if len(value) < 256 else _parse_media_type(value)


def _is_json_type(value: str) -> bool:
    try:
        kind = _media_type(value)
    except UnsupportedContentType:
        return False  # refused by check_json(), once the delivery is authenticated
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


def _is_form(headers: Headers) -> bool:
    if is_json(headers):
        return False  # the common case, without a second look at the header
    try:
        return media_type(headers) == FORM_TYPE
    except WebhookError:
        return False  # a charset other than UTF-8: refused once authenticated


def _body_then_payload(body: bytes) -> Iterator[bytes]:
    yield body
    payload = sole_payload(body)
    if payload is not None:
        yield payload


def sole_payload(body: bytes) -> bytes | None:
    """The ``payload`` value of a form that is that one field alone, else ``None``."""
    try:
        fields = form_fields(body)
    except WebhookError:
        # Unreadable as a form: only the raw body can have been signed.  Being
        # unauthenticated, it is rejected as such, not as a bad form.
        return None
    if len(fields) != 1 or fields[0][0] != "payload":
        return None
    return fields[0][1].encode("utf-8")


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
    #: Whether a body of any ``Content-Type`` is accepted (Standard Webhooks hands one
    #: that is not JSON over as bytes) rather than refused with 415.
    accepts_any_body: ClassVar[bool] = False
    #: Whether each event also has its own de-duplication key (batches of events).
    dedupe_events: ClassVar[bool] = False
    #: How the sender signs, for a sender that signs with HMAC-SHA256; ``None`` else.
    scheme: ClassVar[HmacScheme | None] = None
    #: Whether a form whose only field is ``payload`` may be signed over that field's
    #: decoded value rather than the raw body (Moonsense, whose page does not say).
    signs_form_payload: ClassVar[bool] = False
    #: The scheme's signature header, for senders that sign (set from ``scheme``).
    signature_header: ClassVar[str | None] = None
    #: What precedes each signature in that header (set from ``scheme``).
    signature_prefix: ClassVar[str] = ""
    #: Where a Petal-style shared token travels when no ``token_header`` is given.
    default_token_header: ClassVar[str | None] = None
    #: The headers :meth:`parse` reads besides ``Content-Type``.  An inbox keeps these
    #: with a stored delivery, and drops every other header of the request.
    parse_headers: ClassVar[tuple[str, ...]] = ()
    #: The credentials the tests, the command line's examples and, unless its
    #: ``demo`` says otherwise, ``hookshield demo`` use with this sender: keyword
    #: arguments of ``WebhookHandler`` and :func:`hookshield.testing.sign`.
    test_credentials: ClassVar[Mapping[str, Any]] = MappingProxyType({})
    #: How ``hookshield demo`` shows this sender; ``None`` leaves it out of the demo.
    demo: ClassVar[DemoScript | None] = None
    #: For how long, in seconds, the sender retries a delivery that failed.  Where its
    #: documentation does not say, :data:`UNDOCUMENTED_RETRY_WINDOW`.
    retry_window: ClassVar[float] = UNDOCUMENTED_RETRY_WINDOW
    #: The largest body a handler accepts unless given ``max_body_size=``: what the
    #: sender's largest delivery needs, with margin, so that an authenticated sender
    #: never buffers more than its deliveries can weigh.  Each sender sets its own,
    #: citing its documentation; this one is for a sender that does not.
    default_max_body_size: ClassVar[int] = MIB

    def __init_subclass__(cls, **kwargs: Any) -> None:
        scheme: HmacScheme | None = cls.__dict__.get("scheme")
        header = cls.__dict__.get("signature_header")
        if scheme is None and isinstance(header, str):
            # A sender written before schemes (a hex HMAC of the body in one header)
            # gets the scheme its two attributes describe.
            scheme = cls.scheme = HmacScheme(
                signature_header=header, signature_prefix=cls.signature_prefix
            )
        if scheme is not None:
            # What the demo, the tests and the other modules read of a signing sender.
            if "signature_header" not in cls.__dict__:
                cls.signature_header = scheme.signature_header
            if "signature_prefix" not in cls.__dict__:
                cls.signature_prefix = scheme.signature_prefix
        super().__init_subclass__(**kwargs)

    @property
    def default_dedupe_ttl(self) -> float:
        """How long, in seconds, a de-duplication key is kept unless ``dedupe_ttl=`` says.

        The retry window with a margin (:func:`dedupe_ttl_for`), so that the last
        retry is still recognised.
        """
        return dedupe_ttl_for(self.retry_window)

    # -- receiving -------------------------------------------------------------

    def authenticate(self, body: bytes, headers: Headers, credentials: Credentials) -> str | None:
        """Check the delivery's credentials over the raw ``body``.

        Returns the verified signature's hex digest for a signed delivery, else ``None``.
        """
        if credentials.signed:
            scheme = self.scheme
            if scheme is None:  # pragma: no cover - WebhookHandler refuses secrets for such senders
                raise TypeError(f"{self.title} does not sign its deliveries")
            try:
                return scheme.verify(
                    self.signed_messages(body, headers),
                    headers,
                    credentials.hmac_keys,
                    sender=self.title,
                    public_keys=credentials.public_keys,
                    tolerance=credentials.tolerance,
                )
            except InvalidSignature:
                if self.signs_form_payload and _is_form(headers) and sole_payload(body) is None:
                    raise InvalidSignature(
                        f"the {scheme.signature_header} signature does not match the raw form "
                        "body; a signature over the 'payload' field alone covers only a form "
                        "of exactly one 'payload' field, which this form is not"
                    ) from None
                raise
        if credentials.empty:
            return None  # allowed only with allow_unsigned=True, checked at construction
        self._check_shared_credentials(headers, credentials)
        return None

    def check_headers(self, headers: Headers, credentials: Credentials) -> None:
        """Check, before the body is read, what of the credentials the headers settle.

        A credential that travels in a header alone (a token, Basic, Bearer) is
        checked completely; a signature must be present and well formed as far as
        that can be told without the body (:meth:`HmacScheme.check_headers`: its
        header, the timestamp, the other headers it signs).  Raises what
        :meth:`authenticate` would raise for these headers, so that a delivery it
        lets through is judged again, whole, by :meth:`authenticate`.  A sender with
        no ``scheme`` that verifies in an ``authenticate`` of its own checks nothing
        here unless it overrides this too.
        """
        if credentials.signed:
            if self.scheme is not None:
                self.scheme.check_headers(headers, sender=self.title)
        elif not credentials.empty:
            self._check_shared_credentials(headers, credentials)

    def stored_headers(self, credentials: Credentials) -> frozenset[str]:
        """The headers (lower-case) an inbox keeps: what verifying again and parsing read.

        ``Content-Type``, :attr:`parse_headers`, and, when the handler checks a
        signature, every header the scheme reads (:attr:`HmacScheme.read_headers`: the
        signature, the timestamp and the signed headers).  Never a shared credential
        (a token header, ``Authorization``): the inbox's seal vouches for a stored
        row, and a long-lived secret is not kept at rest only to be compared again.  A
        sender whose :meth:`authenticate` reads more headers adds them here.
        """
        names = {"content-type", *self.parse_headers}
        if credentials.signed and self.scheme is not None:
            names.update(self.scheme.read_headers)
        return frozenset(name.lower() for name in names)

    def signing_keys(self, secrets: tuple[bytes, ...]) -> tuple[bytes, ...]:
        """The HMAC keys of the configured ``secret=`` values, decoded as the scheme says.

        A sender whose secrets are encoded (Standard Webhooks' ``whsec_<base64>``)
        decodes them here; one that cannot be decoded raises ``ValueError``, so the
        handler is refused at construction rather than at the first delivery.
        """
        if self.scheme is None:
            return secrets
        return self.scheme.keys(secrets, sender=self.title)

    def signed_messages(self, body: bytes, headers: Headers) -> Iterable[bytes]:
        """The byte strings the sender may have signed as its body, the raw body first.

        With ``signs_form_payload``, a form of one ``payload`` field alone may be
        signed over that field: a signature over the payload says nothing of other
        fields, and a captured JSON delivery re-sent as ``payload=<the JSON>&n=1``,
        ``&n=2`` ... would verify again and again.  A generator: the form is decoded
        only once the raw body has failed to match.
        """
        if self.signs_form_payload and _is_form(headers):
            return _body_then_payload(body)
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
        """The headers the real sender sends with ``body``.

        For a sender with a ``scheme``: ``Content-Type`` (``content_type``, JSON by
        default) and the scheme's signature under the first ``secret`` (none without
        one, for a sender that may deliver unsigned), at ``timestamp`` for a scheme
        that signs one.  A sender that sends more headers adds them around this.
        """
        if self.scheme is None:
            raise NotImplementedError(f"{self.title} has no scheme: its module signs")
        headers = {"Content-Type": str(options.get("content_type") or "application/json")}
        secret, private_key = options.get("secret"), options.get("private_key")
        if secret is not None or private_key is not None:
            headers.update(
                self.scheme.sign(
                    body,
                    secret,
                    headers,
                    timestamp=options.get("timestamp"),
                    private_key=private_key,
                )
            )
        return headers

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
