"""``construct_event``: one delivery verified and parsed in one call, for code that routes itself.

Theory of operation: what Stripe's ``Webhook.construct_event(payload, sig_header,
secret)`` is to its users, for every sender: the checks of a ``WebhookHandler``
(:meth:`~hookshield.WebhookHandler.check_headers`, then
:meth:`~hookshield.WebhookHandler.verify`) on one delivery, and its events back.  It
keeps nothing between calls: no de-duplication store (a retry is returned again: key
your own processing on ``event.id``), no routes.  The options are the handler's, and
refused as the handler refuses them.

Nothing here logs (beyond the handler's warning for ``allow_unsigned=True``), awaits,
touches a store or starts a thread.
"""

from __future__ import annotations

from .._core.auth import SecretLike
from .._core.credentials import BasicAuth
from .._core.events import Event
from .._core.headers import HeadersLike
from .._core.verify import Body, as_bytes
from ..providers import ProviderLike, get_provider
from .handler import WebhookHandler

__all__ = ["construct_event"]


def construct_event(
    sender: ProviderLike,
    body: Body,
    headers: HeadersLike,
    *,
    secret: SecretLike | None = None,
    public_key: SecretLike | None = None,
    token: SecretLike | None = None,
    token_header: str | None = None,
    basic_auth: BasicAuth | None = None,
    bearer_token: SecretLike | None = None,
    allow_unsigned: bool = False,
    tolerance: float | None = None,
    max_body_size: int | None = None,
) -> Event | tuple[Event, ...]:
    """Verify one delivery and return its event: ``construct_event("github", body, headers, secret=...)``.

    ``body`` is the raw request body, as received; ``headers`` its headers.  The
    credentials and options are those of :class:`~hookshield.WebhookHandler`.  Returns
    the delivery's event, or a tuple of its events for a batch (always for a sender
    of batches, Momentum; for another sender, a delivery of several events, such as a
    Petal Metrics batch).  Raises the typed :class:`~hookshield.WebhookError` whose
    ``status`` is the HTTP answer; a mistake in the options is a ``TypeError`` or
    ``ValueError``.  No de-duplication and no routes: a retry of one delivery is
    returned again, with the same ``event.id``.
    """
    raw = as_bytes(body)  # a str or parsed JSON is the caller's mistake, named first
    handler = WebhookHandler(
        sender,
        secret=secret,
        public_key=public_key,
        token=token,
        token_header=token_header,
        basic_auth=basic_auth,
        bearer_token=bearer_token,
        allow_unsigned=allow_unsigned,
        tolerance=tolerance,
        max_body_size=max_body_size,
        dedupe=None,
    )
    handler.check_headers(headers)
    delivery = handler.verify(raw, headers)
    if get_provider(sender).sends_batches or len(delivery.events) != 1:
        return delivery.events
    return delivery.events[0]
