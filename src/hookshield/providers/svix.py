"""Svix: the Standard Webhooks scheme under Svix's own header names.

Rules (Svix's "Verifying payloads" documentation, and its ``svix`` library, whose
``Webhook.verify`` is the Standard Webhooks reference implementation under these
names):

* Three headers: ``svix-id`` (the message id, the same on every retry),
  ``svix-timestamp`` (Unix seconds) and ``svix-signature``.
* The signed content is ``{svix-id}.{svix-timestamp}.{body}``, HMAC-SHA256 keyed with
  the secret's bytes: the endpoint's secret is written ``whsec_<base64>``.
* ``svix-signature`` holds ``v1,<base64>`` signatures separated by spaces (several
  during a key rotation); ``v1a,`` ed25519 ones are read as Standard Webhooks reads them.
* A timestamp more than five minutes old or ahead is refused (``tolerance=`` changes
  the window); the signed id is the de-duplication key.
* The body is the payload the application gave Svix, unchanged: it is read as
  Standard Webhooks reads it (a ``type``, ``timestamp`` and ``data`` where it has them;
  ``"untyped"``, the signed time and the whole payload where not; bytes where it is no
  JSON object).

A Svix endpoint that delivers under the ``webhook-*`` names is a Standard Webhooks
sender: receive it as ``"standard-webhooks"``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from ._base import DemoScript
from .standard_webhooks import STANDARD_WEBHOOKS, StandardWebhooksEvent, StandardWebhooksProvider

__all__ = ["SVIX", "SvixEvent", "SvixProvider"]


@dataclass(frozen=True, slots=True, kw_only=True)
class SvixEvent(StandardWebhooksEvent):
    """A Svix event: a :class:`~hookshield.StandardWebhooksEvent` whose ``id`` is ``svix-id``."""


#: The Standard Webhooks description under Svix's header names.
SVIX = dataclasses.replace(
    STANDARD_WEBHOOKS,
    name="svix",
    title="Svix",
    signature_header="svix-signature",
    signed_content="{svix-id}.{svix-timestamp}.{body}",
    timestamp_header="svix-timestamp",
    id_header="svix-id",
    event_class=SvixEvent,
)


class SvixProvider(StandardWebhooksProvider):
    """Webhooks that Svix delivers, with its ``svix-*`` headers."""

    sender = SVIX
    test_credentials: ClassVar[Mapping[str, Any]] = {
        "secret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    }
    demo = DemoScript(
        credentials={"secret": "whsec_ZGVtby1zdml4LXdlYmhvb2tz"},
        event_types=("invoice.paid",),
        accepted="svix-signature verified within its 5-minute window",
    )
