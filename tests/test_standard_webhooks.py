"""Standard Webhooks, against the specification's vectors and its reference library."""

from __future__ import annotations

import base64
import dataclasses
import json
import time
from datetime import datetime, timezone

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from hookshield import (
    InvalidSignature,
    MalformedSignature,
    MissingCredentials,
    StandardWebhooksEvent,
    TimestampOutOfRange,
    WebhookError,
    WebhookHandler,
)
from hookshield.providers import get_provider
from hookshield.providers.standard_webhooks import STANDARD_WEBHOOKS, UNTYPED
from hookshield.testing import sample_delivery, sign

# The specification's example (and its reference libraries' tests).
SPEC_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
SPEC_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
SPEC_TIMESTAMP = 1614265330
SPEC_BODY = b'{"test": 2432232314}'
SPEC_SIGNATURE = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def at(seconds: float) -> WebhookHandler:
    """A handler whose clock reads ``seconds``."""
    clocked = dataclasses.replace(STANDARD_WEBHOOKS, clock=lambda: seconds)
    return WebhookHandler(clocked, secret=SPEC_SECRET)


def spec_headers(
    signature: str = SPEC_SIGNATURE, timestamp: int = SPEC_TIMESTAMP
) -> dict[str, str]:
    return {
        "webhook-id": SPEC_ID,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signature,
    }


def test_the_specification_vector_verifies_as_an_untyped_event() -> None:
    # Its body has no "type" and no "data": the specification dictates no payload.
    (event,) = at(SPEC_TIMESTAMP + 10).verify(SPEC_BODY, spec_headers()).events
    assert isinstance(event, StandardWebhooksEvent)
    assert (event.type, event.id, dict(event.data)) == (UNTYPED, SPEC_ID, {"test": 2432232314})
    assert event.timestamp == datetime.fromtimestamp(SPEC_TIMESTAMP, timezone.utc)


def test_the_specification_vector_is_what_sign_produces() -> None:
    headers = sign(
        "standard-webhooks",
        SPEC_BODY,
        secret=SPEC_SECRET,
        event_id=SPEC_ID,
        timestamp=SPEC_TIMESTAMP,
    )
    assert headers["webhook-signature"] == SPEC_SIGNATURE
    assert headers["webhook-id"] == SPEC_ID
    assert headers["webhook-timestamp"] == str(SPEC_TIMESTAMP)


@pytest.mark.parametrize(
    ("change", "error"),
    [
        (
            {"webhook-signature": "v1,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc="},
            InvalidSignature,
        ),
        ({"webhook-id": "msg_p5jXN8AQM9LWM0D4loKWxJeX"}, InvalidSignature),
        ({"webhook-timestamp": str(SPEC_TIMESTAMP + 1)}, InvalidSignature),
        ({"webhook-signature": SPEC_SIGNATURE.replace("v1,", "v2,")}, MalformedSignature),
        ({"webhook-signature": "v1,not base64!"}, MalformedSignature),
        ({"webhook-signature": ""}, MalformedSignature),
        ({"webhook-timestamp": "1614265330.5"}, MalformedSignature),
        ({"webhook-timestamp": "-1614265330"}, MalformedSignature),
    ],
)
def test_a_changed_header_is_refused(change: dict[str, str], error: type[WebhookError]) -> None:
    with pytest.raises(error) as caught:
        at(SPEC_TIMESTAMP).authenticate(SPEC_BODY, spec_headers() | change)
    assert caught.value.status == 401


@pytest.mark.parametrize("missing", ["webhook-id", "webhook-timestamp", "webhook-signature"])
def test_each_header_is_required(missing: str) -> None:
    headers = {k: v for k, v in spec_headers().items() if k != missing}
    with pytest.raises(MissingCredentials, match=missing):
        at(SPEC_TIMESTAMP).authenticate(SPEC_BODY, headers)


@pytest.mark.parametrize("empty", ["", " ", "\t"])
def test_an_empty_webhook_id_is_refused_as_malformed(empty: str) -> None:
    # The specification requires a message id, and the reference library refuses a
    # delivery without one; signed over an empty id, it would still match, and key
    # the delivery on nothing the sender chose.
    now = datetime.now(timezone.utc)
    body = '{"type": "invoice.paid", "timestamp": "2025-01-01T00:00:00Z", "data": {}}'
    headers = {
        "webhook-id": empty,
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": Webhook(SPEC_SECRET).sign("", now, body),
    }
    with pytest.raises(Exception):  # noqa: PT011, B017 - its error type varies by release
        Webhook(SPEC_SECRET).verify(body, {**headers, "webhook-id": ""})
    handler = WebhookHandler("standard-webhooks", secret=SPEC_SECRET)
    with pytest.raises(MalformedSignature, match="webhook-id header is empty") as caught:
        handler.verify(body.encode(), headers)
    assert caught.value.status == 401  # as a missing webhook-id is: a signed header
    outcome = handler.handle(body.encode(), headers)
    assert (outcome.status, outcome.dispatched) == (401, 0)


def test_a_changed_body_is_refused() -> None:
    with pytest.raises(InvalidSignature, match=r"raw\s+request body"):
        at(SPEC_TIMESTAMP).authenticate(b'{"test": 2432232315}', spec_headers())


@pytest.mark.parametrize("offset", [-300, 0, 300])
def test_five_minutes_either_way_is_accepted(offset: int) -> None:
    at(SPEC_TIMESTAMP + offset).authenticate(SPEC_BODY, spec_headers())  # raises if refused


@pytest.mark.parametrize(("offset", "word"), [(301, "ago"), (-301, "in the future")])
def test_beyond_five_minutes_either_way_is_refused(offset: int, word: str) -> None:
    with pytest.raises(TimestampOutOfRange, match=word) as caught:
        at(SPEC_TIMESTAMP + offset).authenticate(SPEC_BODY, spec_headers())
    assert caught.value.status == 401


def test_a_forged_signature_with_an_old_timestamp_is_a_signature_error() -> None:
    forged = spec_headers("v1," + base64.b64encode(bytes(32)).decode())
    with pytest.raises(InvalidSignature):
        at(SPEC_TIMESTAMP + 10_000).authenticate(SPEC_BODY, forged)


def test_rotation_any_of_several_signatures_and_versions() -> None:
    other = "v1," + base64.b64encode(bytes(32)).decode()
    for value in (
        f"{other} {SPEC_SIGNATURE}",
        f"v1a,aGVsbG8= {SPEC_SIGNATURE}",
        f"  {SPEC_SIGNATURE}   {other} ",
    ):
        at(SPEC_TIMESTAMP).authenticate(SPEC_BODY, spec_headers(value))
    too_many = " ".join([other] * 8 + [SPEC_SIGNATURE])
    with pytest.raises(MalformedSignature, match="9 signatures"):
        at(SPEC_TIMESTAMP).authenticate(SPEC_BODY, spec_headers(too_many))


def test_several_secrets_any_one_matches() -> None:
    handler = WebhookHandler(
        "standard-webhooks", secret=["whsec_" + base64.b64encode(b"old" * 10).decode(), SPEC_SECRET]
    )
    body, headers = sample_delivery("standard-webhooks", "invoice.paid", secret=SPEC_SECRET)
    assert handler.verify(body, headers).events[0].type == "invoice.paid"


def test_secrets_with_or_without_whsec_and_padding() -> None:
    padded = base64.b64encode(b"k" * 25).decode()  # 25 bytes: the base64 ends in "="
    assert padded.endswith("=")
    body, headers = sample_delivery("standard-webhooks", "user.created", secret="whsec_" + padded)
    for secret in ("whsec_" + padded, padded, padded.rstrip("="), "whsec_" + padded.rstrip("=")):
        WebhookHandler("standard-webhooks", secret=secret).verify(body, headers)
    other = "whsec_" + base64.b64encode(b"k" * 24).decode()
    with pytest.raises(InvalidSignature):
        WebhookHandler("standard-webhooks", secret=other).verify(body, headers)


@pytest.mark.parametrize("secret", ["whsec_not*base64", "whsec_", "whsec_===="])
def test_an_undecodable_secret_is_refused_at_construction(secret: str) -> None:
    with pytest.raises(ValueError, match="Standard Webhooks secret"):
        WebhookHandler("standard-webhooks", secret=secret)


def test_the_event_is_typed() -> None:
    body, headers = sample_delivery(
        "standard-webhooks", "invoice.paid", {"amount_paid": 4900}, secret=SPEC_SECRET
    )
    delivery = WebhookHandler("standard-webhooks", secret=SPEC_SECRET).verify(body, headers)
    (event,) = delivery.events
    assert isinstance(event, StandardWebhooksEvent)
    assert event.provider == delivery.provider == "standard-webhooks"
    assert event.type == "invoice.paid"
    assert event.id == event.message_id == headers["webhook-id"]
    assert event.timestamp == datetime(2025, 1, 15, 10, 30, tzinfo=timezone.utc)
    assert event.data["amount_paid"] == 4900
    assert event.data["currency"] == "usd"


def test_the_signed_id_is_the_dedupe_key_across_retries() -> None:
    handler = WebhookHandler("standard-webhooks", secret=SPEC_SECRET)
    body = b'{"type": "user.created", "timestamp": "2022-11-03T20:26:10Z", "data": {}}'
    first = sign("standard-webhooks", body, secret=SPEC_SECRET, event_id="msg_1")
    retry = sign(
        "standard-webhooks",
        body,
        secret=SPEC_SECRET,
        event_id="msg_1",
        timestamp=int(first["webhook-timestamp"]) + 60,
    )
    other = sign("standard-webhooks", body, secret=SPEC_SECRET, event_id="msg_2")
    assert first["webhook-signature"] != retry["webhook-signature"]
    ids = [handler.verify(body, h).id for h in (first, retry, other)]
    assert ids == ["event:msg_1", "event:msg_1", "event:msg_2"]
    outcomes = [handler.handle(body, h).duplicate for h in (first, retry, other)]
    assert outcomes == [False, True, False]


# -- against the reference library --------------------------------------------------


def test_the_reference_library_verifies_hookshield_deliveries() -> None:
    reference = Webhook(SPEC_SECRET)
    for kind in ("invoice.paid", "user.created", "anything.else"):
        body, headers = sample_delivery("standard-webhooks", kind, {"n": 1}, secret=SPEC_SECRET)
        assert reference.verify(body, headers)["type"] == kind


def test_hookshield_verifies_reference_library_deliveries() -> None:
    reference = Webhook(SPEC_SECRET)
    handler = WebhookHandler("standard-webhooks", secret=SPEC_SECRET)
    now = datetime.now(timezone.utc)
    for n in range(5):
        body = f'{{"type": "order.created", "timestamp": "2025-01-01T00:00:00Z", "data": {{"n": {n}}}}}'
        headers = {
            "webhook-id": f"msg_{n}",
            "webhook-timestamp": str(int(now.timestamp())),
            "webhook-signature": reference.sign(f"msg_{n}", now, body),
        }
        (event,) = handler.verify(body.encode(), headers).events
        assert (event.type, event.id, event.data["n"]) == ("order.created", f"msg_{n}", n)


@pytest.mark.parametrize(
    "signature",
    ["v1", "v1,abc,def", "v1,%%%%", "garbage", "v1,YWJj"],
)
def test_a_malformed_signature_is_refused_by_both_and_typed_by_hookshield(
    signature: str,
) -> None:
    now = int(datetime.now(timezone.utc).timestamp())
    headers = {"webhook-id": "msg_1", "webhook-timestamp": str(now), "webhook-signature": signature}
    # The reference library (1.3.0, as locked) refuses with its own error type.
    with pytest.raises(WebhookVerificationError):
        Webhook(SPEC_SECRET).verify(SPEC_BODY, headers)
    with pytest.raises(MalformedSignature) as ours:
        WebhookHandler("standard-webhooks", secret=SPEC_SECRET).authenticate(SPEC_BODY, headers)
    assert ours.value.status == 401


def test_a_non_utf8_body_is_refused_by_both_as_a_bad_signature() -> None:
    body = b"\xff\xfe not utf-8"
    now = int(time.time())
    # Signed over other bytes, at the current time, so only the body can be at fault.
    headers = sign(
        "standard-webhooks", SPEC_BODY, secret=SPEC_SECRET, event_id=SPEC_ID, timestamp=now
    )
    Webhook(SPEC_SECRET).verify(SPEC_BODY, headers)  # the same headers over their own body
    with pytest.raises(WebhookVerificationError):
        Webhook(SPEC_SECRET).verify(body, headers)
    with pytest.raises(InvalidSignature):
        WebhookHandler("standard-webhooks", secret=SPEC_SECRET).authenticate(body, headers)


_HEADER_TEXT = st.text(
    alphabet=st.characters(min_codepoint=32, max_codepoint=0x2FF, exclude_characters="\x7f"),
    max_size=120,
)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(
    webhook_id=_HEADER_TEXT,
    timestamp=_HEADER_TEXT,
    signature=_HEADER_TEXT,
    body=st.binary(max_size=64),
)
def test_garbage_headers_get_a_typed_refusal(
    webhook_id: str, timestamp: str, signature: str, body: bytes
) -> None:
    headers = {
        "webhook-id": webhook_id,
        "webhook-timestamp": timestamp,
        "webhook-signature": signature,
    }
    handler = WebhookHandler("standard-webhooks", secret=SPEC_SECRET)
    with pytest.raises(WebhookError) as caught:
        handler.verify(body, headers)
    assert caught.value.status in (401, 431)


def test_the_provider_describes_itself() -> None:
    provider = get_provider("standard-webhooks")
    assert provider.signature_header == "webhook-signature"
    assert provider.title == "Standard Webhooks"
    assert provider.event_class is StandardWebhooksEvent
    assert provider.accepts == frozenset({"secret", "public_key"})
    assert STANDARD_WEBHOOKS.id_is_signed
    assert STANDARD_WEBHOOKS.signed_headers == ("webhook-id", "webhook-timestamp")


def test_a_stored_delivery_verified_later_is_judged_by_when_it_arrived() -> None:
    # A worker runs a delivery from an inbox an hour on: its signature still holds,
    # and its timestamp is judged against its arrival, not the worker's clock.
    arrived = time.time()
    body, headers = sample_delivery("standard-webhooks", "invoice.paid", secret=SPEC_SECRET)
    later = dataclasses.replace(STANDARD_WEBHOOKS, clock=lambda: arrived + 3600)
    handler = WebhookHandler(later, secret=SPEC_SECRET)
    with pytest.raises(TimestampOutOfRange):
        handler.verify(body, headers)
    delivery = handler.verify(body, headers, received_at=arrived)
    assert delivery.events[0].id == headers["webhook-id"]
    # A forgery is refused whenever it arrived, and arriving late is still too late.
    forged = {**headers, "webhook-signature": "v1," + base64.b64encode(bytes(32)).decode()}
    with pytest.raises(InvalidSignature):
        handler.verify(body, forged, received_at=arrived)
    with pytest.raises(TimestampOutOfRange):
        handler.verify(body, headers, received_at=arrived + 301)


# -- any signed body: the three shapes the specification allows ----------------------


def reference_signed(
    body: bytes, content_type: str | None = "application/json", *, msg_id: str = "msg_ref"
) -> dict[str, str]:
    """The headers the reference library signs ``body`` with, now."""
    now = datetime.now(timezone.utc)
    headers = {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": Webhook(SPEC_SECRET).sign(msg_id, now, body),
    }
    if content_type is not None:
        headers["Content-Type"] = content_type
    return headers


def recording() -> tuple[WebhookHandler, dict[str, list[StandardWebhooksEvent]]]:
    """A handler whose ``"*"`` and ``"untyped"`` routes record the events they get."""
    handler = WebhookHandler("standard-webhooks", secret=SPEC_SECRET)
    seen: dict[str, list[StandardWebhooksEvent]] = {"*": [], UNTYPED: []}
    handler.on("*")(seen["*"].append)
    handler.on(UNTYPED)(seen[UNTYPED].append)
    return handler, seen


@pytest.mark.parametrize(
    "body",
    [SPEC_BODY, b'{"id": "obj_1", "amount": 5}', b'{"type": "", "n": 1}', b'{"type": 7}'],
)
def test_a_body_without_a_type_routes_to_star_and_untyped(body: bytes) -> None:
    handler, seen = recording()
    outcome = handler.handle(body, reference_signed(body))
    assert (outcome.status, outcome.dispatched) == (200, 2)
    [event] = seen[UNTYPED]
    assert seen["*"] == [event] and event.type == UNTYPED == "untyped"
    assert dict(event.data) == json.loads(body)  # no "data": the whole payload
    assert event.raw is None and event.content_type == "application/json"


def test_a_type_with_its_data_at_the_top_level_keeps_every_field() -> None:
    body = b'{"type": "invoice.paid", "timestamp": "2025-01-15T10:30:00Z", "amount_due": 4900}'
    (event,) = (
        WebhookHandler("standard-webhooks", secret=SPEC_SECRET)
        .verify(body, reference_signed(body))
        .events
    )
    assert isinstance(event, StandardWebhooksEvent)
    assert (event.type, event.data["amount_due"]) == ("invoice.paid", 4900)
    assert event.data["timestamp"] == "2025-01-15T10:30:00Z"


@pytest.mark.parametrize("data", ['"a string"', "[1, 2]", "null", "4"])
def test_a_data_that_is_no_object_leaves_the_whole_payload(data: str) -> None:
    body = f'{{"type": "invoice.paid", "data": {data}}}'.encode()
    (event,) = (
        WebhookHandler("standard-webhooks", secret=SPEC_SECRET)
        .verify(body, reference_signed(body))
        .events
    )
    assert dict(event.data) == json.loads(body)


def test_without_a_timestamp_the_event_time_is_the_signed_one() -> None:
    body = b'{"type": "invoice.paid", "data": {}}'
    headers = reference_signed(body)
    (event,) = WebhookHandler("standard-webhooks", secret=SPEC_SECRET).verify(body, headers).events
    signed = datetime.fromtimestamp(int(headers["webhook-timestamp"]), timezone.utc)
    assert event.timestamp == signed


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (b"plain words, not JSON", "text/plain"),
        (b"<invoice><paid/></invoice>", "application/xml"),
        (bytes(range(256)), "application/octet-stream"),
        ('{"name": "caf\u00e9"}'.encode("latin-1"), "application/json; charset=latin-1"),
        (b"a=1&b=2", "application/x-www-form-urlencoded"),
        (b"[1, 2, 3]", "application/json"),  # JSON, but no object
        (b'"just a string"', None),
    ],
)
def test_a_body_that_is_not_a_json_object_is_handed_over_as_bytes(
    body: bytes, content_type: str | None
) -> None:
    handler, seen = recording()
    outcome = handler.handle(body, reference_signed(body, content_type))
    assert (outcome.status, outcome.dispatched) == (200, 2)
    [event] = seen[UNTYPED]
    assert (event.raw, event.content_type) == (body, content_type)
    assert (event.type, dict(event.data), event.id) == (UNTYPED, {}, "msg_ref")


@pytest.mark.parametrize(
    "body", [b'{"type": ', b'{"type": "x", "value": NaN}', b"not json at all", b""]
)
def test_a_body_whose_content_type_says_json_must_be_json(body: bytes) -> None:
    outcome = WebhookHandler("standard-webhooks", secret=SPEC_SECRET).handle(
        body, reference_signed(body)
    )
    assert outcome.status == 400


def test_the_reference_library_verifies_what_hookshield_signs_in_every_shape() -> None:
    reference = Webhook(SPEC_SECRET)
    bodies = [
        (SPEC_BODY, "application/json"),
        (b'{"type": "invoice.paid", "amount_due": 1}', "application/json"),
        (b"<xml/>", "application/xml"),
        (bytes(range(256)), "application/octet-stream"),
    ]
    for body, content_type in bodies:
        headers = sign("standard-webhooks", body, secret=SPEC_SECRET, content_type=content_type)
        parsed = content_type == "application/json"
        assert reference.verify(body, headers, json_parse=parsed) == (
            json.loads(body) if parsed else None
        )
