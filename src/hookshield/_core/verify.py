"""The front door: bound the body, authenticate the raw bytes, and only then parse them.

Theory of operation, the rule of this module: nothing here logs, awaits, touches a
de-duplication store or starts a thread.  It takes bytes and headers and returns a
:class:`~hookshield.Delivery` or raises a :class:`~hookshield.WebhookError` whose
``status`` is the answer; so it can be called from any framework, any thread and any
event loop, and tested with nothing but bytes.

The order is the security property: what the headers alone settle first, before a
byte of the body is read (:meth:`Verifier.check_headers`: a missing signature, a
wrong token, a declared length over the bound), so that a stranger costs no buffer;
then the size bound on the body read; then the sender's authentication over the exact
bytes received (nothing has been decoded that a forger could aim at), and only then
the decoder.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .auth import RECEIVED_AT, Credentials
from .errors import BodyTooLarge, MalformedPayload
from .events import Delivery, Event
from .headers import Headers, HeadersLike, as_headers

if TYPE_CHECKING:
    from ..providers import Provider

__all__ = ["Body", "Verifier", "as_bytes", "declared_length"]

#: The raw request body; bytearray and memoryview are copied to bytes.
Body = bytes | bytearray | memoryview


@dataclass(frozen=True, slots=True)
class Verifier:
    """Verifies one sender's deliveries with one handler's credentials."""

    sender: Provider
    credentials: Credentials
    max_body_size: int

    def check_headers(self, headers: HeadersLike) -> Headers:
        """Refuse, from the headers alone, a delivery whose body need not be read.

        The sender's credential as far as the headers settle it (see
        :meth:`Provider.check_headers`), then a ``Content-Length`` that is malformed
        (400) or over ``max_body_size`` (413).  Returns the headers as checked.
        """
        checked = as_headers(headers)
        self.sender.check_headers(checked, self.credentials)
        length = declared_length(checked.get("content-length"))
        if length is not None and length < 0:
            raise MalformedPayload("the Content-Length header is not a number")
        if length is not None and length > self.max_body_size:
            raise BodyTooLarge(
                f"the body is {length} bytes (Content-Length); this handler accepts at "
                f"most {self.max_body_size} (max_body_size)"
            )
        return checked

    def authenticate(self, body: Body, headers: HeadersLike) -> tuple[bytes, Headers, str | None]:
        """Check the size and the credentials; return the body, headers and signature."""
        raw = self._bounded(body)
        checked = as_headers(headers)
        return raw, checked, self.sender.authenticate(raw, checked, self.credentials)

    def _bounded(self, body: Body) -> bytes:
        raw = as_bytes(body)
        if len(raw) > self.max_body_size:
            raise BodyTooLarge(
                f"the body is {len(raw)} bytes; this handler accepts at most "
                f"{self.max_body_size} (max_body_size)"
            )
        return raw

    def verify(
        self, body: Body, headers: HeadersLike, *, received_at: float | None = None
    ) -> Delivery:
        """Authenticate, then parse the whole body into a Delivery of typed events.

        ``received_at`` (Unix seconds) is when a delivery verified later arrived: a
        signed timestamp is judged against it rather than against now.
        """
        if received_at is None:
            raw, checked, signature = self.authenticate(body, headers)
        else:
            raw, checked, signature = self._authenticated(body, headers, received_at)
        return self.sender.parse(raw, checked, signature)

    def open(self, body: Body, headers: HeadersLike) -> tuple[Delivery, Iterator[Event]]:
        """Authenticate, then return the Delivery (without events) and its events, lazily.

        A batch (Momentum) is decoded record by record as the iterator is read, and a
        malformed record raises when it is reached; a single-event sender parses the
        whole body here.
        """
        shell, events = self.open_batch(body, headers)
        return shell, events()

    def open_batch(
        self, body: Body, headers: HeadersLike
    ) -> tuple[Delivery, Callable[[], Iterator[Event]]]:
        """Authenticate, then return the Delivery (without events) and a source of its events.

        Each call of the source decodes the body again, record by record: an accepted
        batch keeps its body, not its decoded events, until they are dispatched.
        """
        raw, checked, signature = self.authenticate(body, headers)
        delivery_id, events = self.sender.stream(raw, checked, signature)
        shell = Delivery(
            provider=self.sender.name, id=delivery_id, events=(), headers=checked, body=raw
        )
        first = [events]  # the first call reads the stream already opened

        def source() -> Iterator[Event]:
            return first.pop() if first else self.sender.stream(raw, checked, signature)[1]

        return shell, source

    def open_stored(
        self, body: Body, headers: HeadersLike, *, received_at: float
    ) -> tuple[Delivery, Iterator[Event]]:
        """:meth:`open` for a delivery an inbox stored, once its seal has been checked.

        A signature is checked again, judged by when the delivery arrived
        (``received_at``).  A shared credential (a token, Basic or Bearer) is not: an
        inbox does not keep it (:meth:`kept_headers`), and the seal vouches for the row.
        """
        if self.credentials.signed:
            raw, checked, signature = self._authenticated(body, headers, received_at)
        else:
            raw, signature = self._bounded(body), None
            checked = as_headers(headers)
        delivery_id, events = self.sender.stream(raw, checked, signature)
        shell = Delivery(
            provider=self.sender.name, id=delivery_id, events=(), headers=checked, body=raw
        )
        return shell, events

    def kept_headers(self) -> frozenset[str]:
        """The headers (lower-case) an inbox keeps with a delivery; the sender says which."""
        return self.sender.stored_headers(self.credentials)

    def _authenticated(
        self, body: Body, headers: HeadersLike, received_at: float
    ) -> tuple[bytes, Headers, str | None]:
        token = RECEIVED_AT.set(received_at)
        try:
            return self.authenticate(body, headers)
        finally:
            RECEIVED_AT.reset(token)


def declared_length(value: str | None) -> int | None:
    """The ``Content-Length`` as an int; ``None`` when absent; ``-1`` when malformed."""
    if value is None or value == "":
        return None
    value = value.strip()
    # RFC 9110 section 8.6: 1*DIGIT.  int() alone would accept "+5", "1_0" or " 5 ".
    if not value.isascii() or not value.isdigit():
        return -1
    return int(value)


def as_bytes(body: Any) -> bytes:
    """The raw body as bytes; any other type is a caller's mistake (``TypeError``)."""
    if isinstance(body, bytes):
        return body
    if isinstance(body, (bytearray, memoryview)):
        return bytes(body)
    raise TypeError(
        f"the body must be the raw request body as bytes, not {type(body).__name__}: "
        "a signature covers the exact bytes the sender sent"
    )
