"""``WebhookHandler(..., tolerance=...)``: the window of a signed timestamp, both ways."""

from __future__ import annotations

import math
import time
from datetime import datetime, timezone

import pytest
import standardwebhooks.webhooks
import svix.webhooks

from hookshield import HmacSender, TimestampOutOfRange, WebhookHandler
from hookshield.providers import PROVIDERS
from hookshield.testing import credentials, sign

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
BODY = b'{"type": "invoice.paid", "data": {}}'


def reference(sender: str, seconds_ago: float) -> dict[str, str]:
    """Headers signed ``seconds_ago`` (negative: ahead) by the sender's reference library."""
    when = datetime.fromtimestamp(time.time() - seconds_ago, timezone.utc)
    if sender == "svix":
        signature = svix.webhooks.Webhook(SECRET).sign("msg_1", when, BODY.decode())
        prefix = "svix"
    else:
        signature = standardwebhooks.webhooks.Webhook(SECRET).sign("msg_1", when, BODY)
        prefix = "webhook"
    return {
        f"{prefix}-id": "msg_1",
        f"{prefix}-timestamp": str(int(when.timestamp())),
        f"{prefix}-signature": signature,
    }


@pytest.mark.parametrize("sender", ["standard-webhooks", "svix"])
@pytest.mark.parametrize("direction", [1, -1], ids=["past", "future"])
def test_a_wider_window_accepts_what_the_default_refuses(sender: str, direction: int) -> None:
    headers = reference(sender, direction * 590)
    with pytest.raises(TimestampOutOfRange):
        WebhookHandler(sender, secret=SECRET).verify(BODY, headers)  # five minutes by default
    wide = WebhookHandler(sender, secret=SECRET, tolerance=600)
    assert wide.verify(BODY, headers).events[0].type == "invoice.paid"
    with pytest.raises(TimestampOutOfRange, match="600 s window"):
        wide.verify(BODY, reference(sender, direction * 630))


@pytest.mark.parametrize("sender", ["standard-webhooks", "svix"])
@pytest.mark.parametrize("direction", [1, -1], ids=["past", "future"])
def test_a_narrower_window_refuses_what_the_default_accepts(sender: str, direction: int) -> None:
    headers = reference(sender, direction * 120)
    WebhookHandler(sender, secret=SECRET).verify(BODY, headers)
    with pytest.raises(TimestampOutOfRange, match="60 s window") as caught:
        WebhookHandler(sender, secret=SECRET, tolerance=60).verify(BODY, headers)
    assert caught.value.status == 401
    assert WebhookHandler(sender, secret=SECRET, tolerance=60).handle(BODY, headers).status == 401


def test_a_described_sender_with_a_signed_timestamp_takes_it() -> None:
    acme = HmacSender(
        name="acme",
        signature_header="Acme-Signature",
        signature_prefix="t=",
        signature_separator=",",
        signed_content="{timestamp}.{body}",
        timestamp_header="Acme-Signature",
        timestamp_prefix="ts=",
        type_field="type",
    )
    now = time.time()
    headers = acme.provider().sign(BODY, secret="k", timestamp=now - 1000)
    with pytest.raises(TimestampOutOfRange):
        WebhookHandler(acme, secret="k").verify(BODY, headers)
    WebhookHandler(acme, secret="k", tolerance=1200).verify(BODY, headers)


def test_a_stored_delivery_is_judged_by_its_arrival_within_the_handlers_window() -> None:
    arrived = time.time() - 3600
    headers = sign("standard-webhooks", BODY, secret=SECRET, timestamp=arrived - 500)
    handler = WebhookHandler("standard-webhooks", secret=SECRET, tolerance=600)
    handler.verify(BODY, headers, received_at=arrived)
    with pytest.raises(TimestampOutOfRange):
        WebhookHandler("standard-webhooks", secret=SECRET).verify(
            BODY, headers, received_at=arrived
        )


UNSTAMPED = sorted(
    name
    for name, sender in PROVIDERS.items()
    if sender.scheme is None or sender.scheme.timestamp_header is None
)


def test_the_senders_without_a_signed_timestamp_are_these() -> None:
    assert UNSTAMPED == ["github", "mindpeeker", "moco", "momentum", "moonsense", "petal"]


@pytest.mark.parametrize("sender", UNSTAMPED)
def test_a_sender_without_a_signed_timestamp_refuses_it(sender: str) -> None:
    with pytest.raises(ValueError, match="signs no timestamp, so tolerance= has nothing to judge"):
        WebhookHandler(sender, **credentials(sender), tolerance=600)


@pytest.mark.parametrize("value", ["600", True, None.__class__, [600]])
def test_a_tolerance_of_the_wrong_type_is_a_type_error(value: object) -> None:
    with pytest.raises(TypeError, match="tolerance must be a number"):
        WebhookHandler("standard-webhooks", secret=SECRET, tolerance=value)  # type: ignore[arg-type]


@pytest.mark.parametrize("value", [0, -1, math.inf, math.nan])
def test_a_tolerance_that_is_no_window_is_a_value_error(value: float) -> None:
    with pytest.raises(ValueError, match="positive, finite"):
        WebhookHandler("standard-webhooks", secret=SECRET, tolerance=value)
