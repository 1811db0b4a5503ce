"""MindPeeker's own SDK shape, over hookshield: change one import and keep your code.

MindPeeker's page shows its Python SDK used like this; with
``from hookshield.mindpeeker import WebhookHandler`` the same lines run on hookshield::

    handler = WebhookHandler("your_webhook_secret")

    @handler.on("session.completed")
    def handle_session_completed(event):
        print(f"Session {event.data.session_id} completed")

    event = handler.construct_event(request.data, request.headers["X-MindPeeker-Signature"])
    handler.process_event(event)

:meth:`WebhookHandler.construct_event` verifies the signature over the raw body in
constant time and parses the envelope, raising hookshield's errors (each with the
HTTP ``status`` to answer); :meth:`WebhookHandler.process_event` de-duplicates by the
signed event id and runs the routes, raising when a route raised, so that the sender
gets a non-2xx answer and retries.  For a Flask, Django or ASGI endpoint that does all
of this in one line, use the adapters with :attr:`WebhookHandler.handler`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from ._core.auth import SecretLike
from ._core.errors import MalformedPayload
from ._core.events import Delivery
from ._core.headers import Headers
from ._core.options import flag
from ._core.text import printable
from ._handling.dispatch import dispatched_reason
from ._handling.handler import WebhookHandler as _CoreHandler
from ._handling.handler import dispatcher_of
from ._handling.outcome import Outcome
from ._handling.routing import H, R
from ._handling.runner import PLAIN, run
from .providers.mindpeeker import MINDPEEKER, MindPeekerEvent

__all__ = ["WebhookHandler"]

logger = logging.getLogger("hookshield.mindpeeker")

SIGNATURE_HEADER = "X-MindPeeker-Signature"


class WebhookHandler:
    """MindPeeker's SDK ``WebhookHandler(secret)``, with hookshield underneath.

    ``secret`` is the webhook's signing secret (or several, during a rotation).
    ``debug=True`` logs each event constructed and processed, as the SDK's debug mode
    does.  Any other keyword (``dedupe=``, ``allowed_ips=``, ``max_body_size=`` ...)
    goes to :class:`hookshield.WebhookHandler`, which is :attr:`handler`.
    """

    def __init__(self, secret: SecretLike, *, debug: bool = False, **options: Any) -> None:
        #: The hookshield handler underneath, for the framework adapters.
        self.handler = _CoreHandler("mindpeeker", secret=secret, **options)
        self.debug = flag("debug", debug)

    def on(self, *event_types: str) -> Callable[[R], R]:
        """Register the decorated function for these event types (``"session.*"`` too)."""
        return self.handler.on(*event_types)

    def on_error(self, hook: H) -> H:
        """Register ``hook(error, event)``, called when a route raises."""
        return self.handler.on_error(hook)

    def construct_event(self, payload: bytes | str, signature: str | None) -> MindPeekerEvent:
        """Verify ``payload`` (the raw request body) against ``signature``; return its event.

        Raises :class:`~hookshield.AuthenticationError` (401) for a missing or wrong
        signature and :class:`~hookshield.MalformedPayload` (400) for a body that is
        not MindPeeker's envelope.  Pass the body exactly as received: a signature
        covers bytes, not parsed JSON.
        """
        body = payload.encode("utf-8") if isinstance(payload, str) else payload
        headers = {SIGNATURE_HEADER: signature} if signature is not None else {}
        (event,) = self.handler.verify(body, headers).events
        if not isinstance(event, MindPeekerEvent):  # pragma: no cover - the sender's parser
            raise MalformedPayload("not a MindPeeker event")
        if self.debug:
            logger.info(
                "hookshield: constructed MindPeeker %s event %s",
                printable(event.type),
                printable(event.id),
            )
        return event

    def process_event(self, event: MindPeekerEvent) -> Outcome:
        """Run the routes of a constructed event once, whatever the sender's retries.

        A retry of an event already processed is skipped (the returned outcome's
        ``duplicate`` is true).  When a route raises, its exception propagates after
        the error hooks ran and the event was released, so the sender retries it; a
        retry that arrives while the first attempt still runs raises
        :class:`~hookshield.DeliveryInProgress` (409).
        """
        delivery_id = MINDPEEKER.payload.id_key(event.id)
        if delivery_id is None:  # no signed id to de-duplicate by: run it as it is
            calls = self.handler.dispatch(_delivery_of(event, "unkeyed"))
            return Outcome(200, dispatched_reason(calls), dispatched=calls)
        dispatcher = dispatcher_of(self.handler)
        dispatcher.require_plain_store("process_event")
        delivery = _delivery_of(event, delivery_id)
        outcome = run(dispatcher.handle(PLAIN, delivery, delivery.events))
        if self.debug:
            logger.info(
                "hookshield: processed MindPeeker event %s: %s",
                printable(event.id),
                printable(outcome.reason),
            )
        if outcome.error is not None:
            raise outcome.error
        return outcome

    def __repr__(self) -> str:
        return f"<hookshield.mindpeeker.WebhookHandler {self.handler!r}>"


def _delivery_of(event: MindPeekerEvent, delivery_id: str) -> Delivery:
    # The body was verified by construct_event; the key needs only the signed id.
    return Delivery(
        provider="mindpeeker", id=delivery_id, events=(event,), headers=Headers(), body=b""
    )
