"""Standard Webhooks: ``webhook-signature: v1,<base64>`` over ``{id}.{timestamp}.{body}``.

Rules (the Standard Webhooks specification, 1.0.0, "Signature scheme"):

* Three headers: ``webhook-id`` (the message id, the same on every retry),
  ``webhook-timestamp`` (Unix seconds) and ``webhook-signature``.
* The signed content is ``{webhook-id}.{webhook-timestamp}.{body}``, HMAC-SHA256
  keyed with the secret's bytes: the secret is written ``whsec_<base64>``.
* The signature header holds signatures separated by spaces (several during a key
  rotation): ``v1,<base64>`` (HMAC-SHA256) and ``v1a,<base64>`` (ed25519 over the
  same content, checked with a public key written ``whpk_<base64>``; the
  ``hookshield[ed25519]`` extra).  A handler checks the kinds it holds keys of;
  other versions are skipped.
* A timestamp more than five minutes old or ahead is refused (``tolerance=`` changes
  the window).  The id is signed, so it is the de-duplication key: a retry keeps it,
  a forger cannot change it.
* The payload "is not dictated" by the specification: it recommends
  ``{"type", "timestamp", "data"}``, and data "can be squashed" into the top level.
  So any signed body is accepted: without a string ``type`` the event's type is
  :data:`UNTYPED`; without a ``data`` object its data is the whole payload; without a
  ``timestamp`` its time is the signed one; a body that is not a JSON object (another
  ``Content-Type``, or JSON such as an array) is handed over as bytes, ``event.raw``.
  A body whose ``Content-Type`` says JSON must be JSON (400 otherwise).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Final

from .._core.errors import WebhookError
from .._core.events import Event
from .._core.headers import Headers
from ._base import MIB, DemoScript, media_type
from ._hmac import EventFields, HmacProvider, HmacSender

__all__ = ["STANDARD_WEBHOOKS", "UNTYPED", "StandardWebhooksEvent", "StandardWebhooksProvider"]

#: The type of an event whose payload names none: it routes to ``"*"`` and to this name.
UNTYPED: Final = "untyped"


@dataclass(frozen=True, slots=True, kw_only=True)
class StandardWebhooksEvent(Event):
    """A Standard Webhooks event.

    ``id`` is the signed ``webhook-id``; ``type`` the payload's ``type``
    (:data:`UNTYPED`, ``"untyped"``, without one); ``timestamp`` its ``timestamp``
    (the signed ``webhook-timestamp`` without one); ``data`` its ``data`` object (the
    whole payload without one).  ``content_type`` is the delivery's ``Content-Type``
    header as sent (``None`` without one), and ``raw`` the body's bytes where it is not
    a JSON object (another content type, or JSON such as an array), else ``None``.
    """

    content_type: str | None = None
    raw: bytes | None = field(default=None, repr=False)

    @property
    def message_id(self) -> str | None:
        """The ``webhook-id`` header, the same on each retry of one message."""
        return self.id


#: The specification's scheme, as an :class:`HmacSender` description.
STANDARD_WEBHOOKS = HmacSender(
    name="standard-webhooks",
    title="Standard Webhooks",
    signature_header="webhook-signature",
    signature_prefix="v1,",
    encoding="base64",
    signature_separator=" ",
    signed_content="{webhook-id}.{webhook-timestamp}.{body}",
    key_encoding="base64",
    key_prefix="whsec_",
    timestamp_header="webhook-timestamp",
    tolerance=5 * 60,
    ed25519_prefix="v1a,",
    type_field="type",
    type_fallback=UNTYPED,
    id_header="webhook-id",
    time_field="timestamp",
    data_field="data",
    data_optional=True,
    # The specification ("Payload size") sets no limit but recommends payloads "smaller
    # than 20kb": HmacSender's default, 1 MiB, leaves fifty times that.
    max_body_size=MIB,
    event_class=StandardWebhooksEvent,
)


@dataclass(frozen=True, slots=True)
class _Opaque:
    """A body that is not a JSON object, as the payload the description reads (no fields)."""

    body: bytes


class StandardWebhooksProvider(HmacProvider):
    """Webhooks from any sender that follows the Standard Webhooks specification."""

    sender = STANDARD_WEBHOOKS
    accepts_any_body = True
    test_credentials: ClassVar[Mapping[str, Any]] = {
        "secret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    }
    demo = DemoScript(
        credentials={"secret": "whsec_ZGVtby1zdGFuZGFyZC13ZWJob29rcw=="},
        event_types=("invoice.paid",),
        accepted="webhook-signature verified within its 5-minute window",
    )

    def payload(self, body: bytes, headers: Headers) -> Any:
        """The decoded JSON object; any other body as opaque bytes, read without fields."""
        if not _declares_json(headers):
            return _Opaque(body)
        decoded = super().payload(body, headers)
        return decoded if type(decoded) is dict else _Opaque(body)

    def make_event(self, payload: Any, headers: Headers, fields: EventFields) -> Event:
        """The event, with the body's content type, and its bytes where it is no object."""
        event_class = self.sender.event_class
        if not issubclass(event_class, StandardWebhooksEvent):
            return event_class(**fields)  # a description of another event class
        return event_class(
            **fields,
            content_type=headers.get("content-type"),
            raw=payload.body if isinstance(payload, _Opaque) else None,
        )

    def sample(self, event_type: str, overrides: Mapping[str, Any]) -> bytes:
        """A payload in the specification's shape: ``{"type", "timestamp", "data"}``."""
        payload = {
            "type": event_type,
            "timestamp": "2025-01-15T10:30:00.000000Z",
            "data": {**_SAMPLE_DATA.get(event_type.partition(".")[0], {}), **overrides},
        }
        return json.dumps(payload, allow_nan=False).encode("utf-8")


def _declares_json(headers: Headers) -> bool:
    """Whether the ``Content-Type`` says JSON (a missing one does; ``text/plain`` does not)."""
    value = headers.get("content-type")
    if value is None or not value.strip():
        return True
    try:
        kind = media_type(headers)
    except WebhookError:
        return False  # a charset other than UTF-8: bytes, with the header that says which
    return kind in ("application/json", "text/json") or kind.endswith("+json")


# The specification names no event types; its examples use such payloads.
_SAMPLE_DATA: dict[str, dict[str, Any]] = {
    "user": {"id": "user_Zu7rRC9y0zqiUPgx", "email": "ada@example.com"},
    "invoice": {"id": "in_1MtHbELkdIwHu7ix", "amount_due": 4900, "currency": "usd"},
}
