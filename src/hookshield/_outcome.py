"""What became of one delivery, and what to answer its sender.

Theory of operation: every way through :class:`~hookshield.WebhookHandler` ends in
one :class:`Outcome`, built once, whose ``status`` is the HTTP answer.  The status is
the part that matters to the sender: 2xx ends its retries, anything else makes it try
again later.  So a delivery that can never succeed gets a 4xx, a duplicate of one
already handled gets 200, and a failure on our side (a route raised, the
de-duplication store is down, another attempt is still running) gets a status that
makes the sender retry: 500, 503 or 409.

This module owns the result type and the wording of the answers; it decides nothing.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final

from ._events import Delivery, Event

if TYPE_CHECKING:
    from ._claims import Claims

__all__ = ["Outcome"]

#: The statuses an adapter answers with a ``Retry-After`` header, and its value.
RETRY_AFTER: Final = {409: "30", 503: "30"}


@dataclass(frozen=True, slots=True)
class Outcome:
    """What became of one delivery, and what to answer the sender.

    ``status`` is the HTTP status: 200 for a dispatched, duplicate, unhandled or empty
    delivery; the error's status for a rejected one; 409 while another attempt at the
    same delivery is still running; 500 when a route raised and 503 when the
    de-duplication store failed, so that the sender retries.  ``reason`` is a short
    explanation for logs.
    """

    status: int
    reason: str
    delivery: Delivery | None = None
    error: BaseException | None = None
    #: Whether the delivery (or every event of a batch) was handled before.
    duplicate: bool = False
    #: How many route calls ran.
    dispatched: int = 0
    #: The events accepted and not yet dispatched (see ``WebhookHandler.accept``).
    pending: tuple[Event, ...] = field(default=(), repr=False)
    #: The de-duplication keys an accepted outcome holds until it is finished,
    #: completed or released; ``None`` once they are settled or with no store.
    claims: Claims | None = field(default=None, repr=False, compare=False)

    @property
    def ok(self) -> bool:
        """Whether the sender gets a 2xx answer."""
        return 200 <= self.status < 300

    def response_body(self) -> bytes:
        """A small JSON body for the HTTP answer: never a secret, signature or traceback."""
        if self.ok:
            return b'{"ok":true,"duplicate":true}' if self.duplicate else b'{"ok":true}'
        if self.status >= 500:
            return b'{"error":"the delivery could not be processed; please retry"}'
        return json.dumps({"error": self.reason}).encode("utf-8")

    def response_headers(self) -> tuple[tuple[str, str], ...]:
        """Extra headers of the HTTP answer: ``Allow`` for a 405, ``Retry-After`` to retry."""
        if self.status == 405:
            return (("Allow", "POST"),)
        retry_after = RETRY_AFTER.get(self.status)
        return () if retry_after is None else (("Retry-After", retry_after),)
