"""The errors a delivery can be rejected with.

Theory of operation: every way a delivery can fail is a subclass of
:class:`WebhookError`, and each carries the HTTP ``status`` a receiver should answer
with.  The status matters as much as the message: senders retry every non-2xx answer
(MindPeeker for 1 h 42 min, Momentum for 4 h), so a delivery that can never succeed
must get a 4xx, and only a transient failure on our side a 5xx.

Messages are written for the developer reading the log, and never contain a secret,
an expected signature or a traceback, so an adapter may send them back to the sender.
"""

from __future__ import annotations

__all__ = [
    "AuthenticationError",
    "BodyAlreadyRead",
    "BodyTooLarge",
    "DeliveryInProgress",
    "EmptyBody",
    "ForbiddenSource",
    "HeaderTooLarge",
    "InvalidEncoding",
    "InvalidSignature",
    "MalformedHeader",
    "MalformedPayload",
    "MalformedSignature",
    "MissingCredentials",
    "PayloadTooDeep",
    "StoreUnavailable",
    "TamperedDelivery",
    "TimestampOutOfRange",
    "UnsupportedContentType",
    "WebhookError",
]


class WebhookError(Exception):
    """Root of every error raised for a rejected delivery.

    ``status`` is the HTTP status to answer with; ``str(error)`` says what to fix.
    """

    status: int = 400

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        if status is not None:
            self.status = status

    @property
    def message(self) -> str:
        """The human-readable reason, the same as ``str(error)``."""
        return str(self)


class AuthenticationError(WebhookError):
    """The delivery's credentials are missing or wrong (401)."""

    status = 401


class MissingCredentials(AuthenticationError):
    """The delivery carries no signature, token or ``Authorization`` header."""


class MalformedSignature(AuthenticationError):
    """The signature header is not of the sender's form (wrong length, not hex, repeated)."""


class InvalidSignature(AuthenticationError):
    """The signature or credential is well-formed but does not match."""


class MalformedHeader(WebhookError):
    """A header that is no credential is not as the sender sends it: given twice (400).

    A credential header (a signature, or a header the signature covers) that is
    malformed is a :class:`MalformedSignature` (401) instead.  Headers of a wrong
    Python type are the calling code's mistake, a ``TypeError``.
    """

    status = 400


class MalformedPayload(WebhookError):
    """The body is authentic but cannot be read as the sender's payload (400)."""

    status = 400


class EmptyBody(MalformedPayload):
    """The body is empty."""


class InvalidEncoding(MalformedPayload):
    """The body is not valid UTF-8."""


class PayloadTooDeep(MalformedPayload):
    """The JSON nests deeper than the parser allows."""


class BodyTooLarge(WebhookError):
    """The body is larger than the handler's ``max_body_size`` (413)."""

    status = 413


class BodyAlreadyRead(WebhookError):
    """Code of the app read the request body before hookshield and did not keep it (500).

    A ``before_request`` function, a middleware or a parser consumed the stream, so
    the bytes the signature covers are gone.  The fault is the receiving app's, not
    the sender's, and the delivery is sound: a 5xx makes the sender retry within its
    retry window (every sender retries any non-2xx alike), so once the app is fixed
    its retries are received rather than lost.  Adapters log it at ERROR.
    """

    status = 500


class HeaderTooLarge(WebhookError):
    """A header the sender's authentication reads is larger than allowed (431)."""

    status = 431


class ForbiddenSource(WebhookError):
    """The delivery comes from an address outside the handler's ``allowed_ips`` (403)."""

    status = 403


class UnsupportedContentType(WebhookError):
    """The ``Content-Type`` is not one the sender uses (415)."""

    status = 415


class DeliveryInProgress(WebhookError):
    """Another attempt at the same delivery is still running (409): the sender retries later.

    Not a 2xx: if that first attempt fails, the retry is what runs the delivery.
    """

    status = 409


class StoreUnavailable(WebhookError):
    """The de-duplication store could not be reached (503): the sender retries later.

    Failing closed: a delivery is not dispatched unless it could be claimed, since a
    store that cannot answer cannot tell a replay from a new delivery.
    """

    status = 503


class TimestampOutOfRange(AuthenticationError):
    """The signed timestamp is older, or further in the future, than the tolerance (401).

    A replay of a captured delivery is refused this way once its window has passed.
    """


class TamperedDelivery(AuthenticationError):
    """A stored delivery's seal is missing or does not match (401): never run.

    Raised by a worker, never for a request: the inbox row (or the queued message)
    was changed after it was stored, was stored without a seal, or was sealed with
    another key than the worker's.
    """
