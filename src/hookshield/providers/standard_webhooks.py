"""Standard Webhooks: ``webhook-signature: v1,<base64>`` over ``{id}.{timestamp}.{body}``.

Rules (the Standard Webhooks specification, 1.0.0, "Signature scheme"):

* Three headers: ``webhook-id`` (the message id, the same on every retry),
  ``webhook-timestamp`` (Unix seconds) and ``webhook-signature``.
* The signed content is ``{webhook-id}.{webhook-timestamp}.{body}``, HMAC-SHA256
  keyed with the secret's bytes: the secret is written ``whsec_<base64>``.
* The signature header holds ``v1,<base64>`` signatures separated by spaces (several
  during a key rotation); other versions (``v1a,`` asymmetric) are skipped.
* A timestamp more than five minutes old or ahead is refused.  The id is signed, so
  it is the de-duplication key: a retry keeps it, a forger cannot change it.
* The payload is ``{"type", "timestamp", "data"}``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from .._events import Event
from ._base import MIB, DemoScript
from ._hmac import HmacProvider, HmacSender

__all__ = ["STANDARD_WEBHOOKS", "StandardWebhooksEvent", "StandardWebhooksProvider"]


@dataclass(frozen=True, slots=True, kw_only=True)
class StandardWebhooksEvent(Event):
    """A Standard Webhooks event.

    ``id`` is the signed ``webhook-id``, ``type`` the payload's ``type``,
    ``timestamp`` its ``timestamp`` and ``data`` its ``data`` object.
    """

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
    type_field="type",
    id_header="webhook-id",
    time_field="timestamp",
    data_field="data",
    # The specification ("Payload size") sets no limit but recommends payloads "smaller
    # than 20kb": HmacSender's default, 1 MiB, leaves fifty times that.
    max_body_size=MIB,
    event_class=StandardWebhooksEvent,
)


class StandardWebhooksProvider(HmacProvider):
    """Webhooks from any sender that follows the Standard Webhooks specification."""

    sender = STANDARD_WEBHOOKS
    test_credentials: ClassVar[Mapping[str, Any]] = {
        "secret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    }
    demo = DemoScript(
        credentials={"secret": "whsec_ZGVtby1zdGFuZGFyZC13ZWJob29rcw=="},
        event_types=("invoice.paid",),
        accepted="webhook-signature verified within its 5-minute window",
    )

    def sample(self, event_type: str, overrides: Mapping[str, Any]) -> bytes:
        """A payload in the specification's shape: ``{"type", "timestamp", "data"}``."""
        payload = {
            "type": event_type,
            "timestamp": "2025-01-15T10:30:00.000000Z",
            "data": {**_SAMPLE_DATA.get(event_type.partition(".")[0], {}), **overrides},
        }
        return json.dumps(payload, allow_nan=False).encode("utf-8")


# The specification names no event types; its examples use such payloads.
_SAMPLE_DATA: dict[str, dict[str, Any]] = {
    "user": {"id": "user_Zu7rRC9y0zqiUPgx", "email": "ada@example.com"},
    "invoice": {"id": "in_1MtHbELkdIwHu7ix", "amount_due": 4900, "currency": "usd"},
}
