"""Svix: its own headers over the Standard Webhooks scheme, against Svix's own library."""

from __future__ import annotations

import json
import time
from datetime import datetime, timezone

import pytest
from svix.webhooks import Webhook, WebhookVerificationError

from hookshield import (
    InvalidSignature,
    MissingCredentials,
    StandardWebhooksEvent,
    SvixEvent,
    TimestampOutOfRange,
    WebhookHandler,
)
from hookshield.providers import get_provider
from hookshield.testing import credentials, sample_delivery, sign

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


def svix_signed(
    body: bytes,
    content_type: str = "application/json",
    *,
    msg_id: str = "msg_2LJ",
    at: float | None = None,
) -> dict[str, str]:
    """The headers Svix sends with ``body``, signed by Svix's own library."""
    when = datetime.fromtimestamp(time.time() if at is None else at, timezone.utc)
    return {
        "svix-id": msg_id,
        "svix-timestamp": str(int(when.timestamp())),
        "svix-signature": Webhook(SECRET).sign(msg_id, when, body.decode()),
        "Content-Type": content_type,
    }


def test_hookshield_verifies_what_svix_signs_in_every_shape() -> None:
    handler = WebhookHandler("svix", secret=SECRET)
    seen: list[SvixEvent] = []
    handler.on("*")(seen.append)
    bodies = [
        (
            b'{"type": "invoice.paid", "timestamp": "2025-01-15T10:30:00Z", "data": {"n": 1}}',
            "application/json",
        ),
        (b'{"event_type": "invoice.paid", "n": 2}', "application/json"),  # no "type"
        (b"<n>3</n>", "application/xml"),
    ]
    for number, (body, content_type) in enumerate(bodies):
        headers = svix_signed(body, content_type, msg_id=f"msg_{number}")
        assert handler.handle(body, headers).status == 200
    typed, untyped, raw = seen
    assert all(isinstance(event, SvixEvent) for event in seen)
    assert isinstance(typed, StandardWebhooksEvent)  # routes typed for either sender take it
    assert (typed.type, typed.id, typed.data["n"]) == ("invoice.paid", "msg_0", 1)
    assert (untyped.type, untyped.data["n"], untyped.raw) == ("untyped", 2, None)
    assert (raw.type, raw.raw, raw.content_type) == ("untyped", b"<n>3</n>", "application/xml")


def test_svix_verifies_what_hookshield_signs() -> None:
    for kind in ("invoice.paid", "user.created"):
        body, headers = sample_delivery("svix", kind, {"n": 1}, secret=SECRET)
        assert set(headers) >= {"svix-id", "svix-timestamp", "svix-signature"}
        assert not any(name.startswith("webhook-") for name in headers)
        Webhook(SECRET).verify(body, headers)  # raises if refused
        assert json.loads(body)["type"] == kind
    body = b"\x00 any bytes \xff"
    Webhook(SECRET).verify(
        body, sign("svix", body, secret=SECRET, content_type="application/octet-stream")
    )


def test_svix_and_hookshield_refuse_the_same_forgery() -> None:
    body = b'{"type": "invoice.paid"}'
    headers = sign("svix", body, secret="whsec_" + "QUJD" * 8)
    with pytest.raises(WebhookVerificationError):
        Webhook(SECRET).verify(body, headers)
    with pytest.raises(InvalidSignature):
        WebhookHandler("svix", secret=SECRET).verify(body, headers)


def test_the_standard_webhooks_names_are_not_svixs() -> None:
    # A delivery under the webhook-* names is Standard Webhooks': "svix" wants its own.
    body, headers = sample_delivery("standard-webhooks", "invoice.paid", secret=SECRET)
    with pytest.raises(MissingCredentials, match="svix-signature"):
        WebhookHandler("svix", secret=SECRET).verify(body, headers)
    WebhookHandler("standard-webhooks", secret=SECRET).verify(body, headers)


def test_the_signed_svix_id_is_the_dedupe_key() -> None:
    handler = WebhookHandler("svix", secret=SECRET)
    body = b'{"type": "invoice.paid", "data": {}}'
    first = svix_signed(body, msg_id="msg_same")
    retry = svix_signed(body, msg_id="msg_same", at=time.time() + 30)
    assert handler.verify(body, first).id == handler.verify(body, retry).id == "event:msg_same"
    assert [handler.handle(body, h).duplicate for h in (first, retry)] == [False, True]


def test_five_minutes_is_the_default_window_as_for_svix() -> None:
    body = b'{"type": "invoice.paid"}'
    old = svix_signed(body, at=time.time() - 360)
    with pytest.raises(WebhookVerificationError):
        Webhook(SECRET).verify(body, old)
    with pytest.raises(TimestampOutOfRange):
        WebhookHandler("svix", secret=SECRET).verify(body, old)


def test_the_provider_describes_itself() -> None:
    provider = get_provider("svix")
    assert (provider.name, provider.title, provider.event_class) == ("svix", "Svix", SvixEvent)
    assert provider.signature_header == "svix-signature"
    assert provider.accepts == frozenset({"secret", "public_key"})
    assert set(provider.parse_headers) >= {"svix-id", "svix-timestamp"}
    assert credentials("svix")["secret"].startswith("whsec_")
