"""``hookshield.construct_event``: verify and parse one delivery, for code that routes itself."""

from __future__ import annotations

import json

import pytest

from hookshield import (
    BodyTooLarge,
    Event,
    GitHubEvent,
    InvalidSignature,
    MalformedPayload,
    MissingCredentials,
    MomentumEvent,
    PetalEvent,
    StandardWebhooksEvent,
    TimestampOutOfRange,
    WebhookError,
    construct_event,
)
from hookshield.testing import (
    credentials,
    event_types,
    forged_credentials,
    providers,
    sample_batch,
    sample_body,
    sample_delivery,
    sign,
)


@pytest.mark.parametrize("sender", [name for name in providers() if name != "momentum"])
def test_one_event_of_every_single_event_sender(sender: str) -> None:
    kind = (*event_types(sender), "invoice.paid")[0]
    body, headers = sample_delivery(sender, kind, **credentials(sender))
    event = construct_event(sender, body, headers, **credentials(sender))
    assert isinstance(event, Event) and (event.provider, event.type) == (sender, kind)


def test_the_event_is_typed_and_a_retry_is_returned_again() -> None:
    secret = "It's a Secret to Everybody"
    body, headers = sample_delivery("github", "issues.opened", secret=secret)
    first = construct_event("github", body, headers, secret=secret)
    again = construct_event("github", body, headers, secret=secret)
    assert isinstance(first, GitHubEvent) and first == again  # no store: yours to key on


def test_a_batch_is_a_tuple_of_events() -> None:
    batch = sample_batch(["delivery", "open", "click"], provider="momentum")
    events = construct_event("momentum", batch, sign("momentum", batch, token="t"), token="t")
    assert isinstance(events, tuple)
    assert [e.type for e in events] == ["delivery", "open", "click"]
    assert all(isinstance(e, MomentumEvent) for e in events)
    one = sample_batch(["bounce"], provider="momentum")
    single = construct_event("momentum", one, sign("momentum", one, token="t"), token="t")
    assert isinstance(single, tuple) and [e.type for e in single] == ["bounce"]  # still a batch
    validation = b'[{"msys": {}}]'
    assert (
        construct_event("momentum", validation, sign("momentum", validation, token="t"), token="t")
        == ()
    )


def test_a_petal_batch_is_a_tuple_and_one_message_an_event() -> None:
    message = sample_body("petal", "blink")
    assert isinstance(
        construct_event("petal", message, sign("petal", message, token="t"), token="t"), PetalEvent
    )
    batch = json.dumps(
        {"timestamp": 1, "device_id": "d", "batch": [json.loads(message), json.loads(message)]}
    ).encode()
    events = construct_event("petal", batch, sign("petal", batch, token="t"), token="t")
    assert isinstance(events, tuple) and len(events) == 2


@pytest.mark.parametrize("sender", providers())
def test_a_forgery_raises_the_typed_401(sender: str) -> None:
    body = sample_body(sender, (*event_types(sender), "x.y")[0])
    with pytest.raises(WebhookError) as caught:
        construct_event(
            sender, body, sign(sender, body, **forged_credentials(sender)), **credentials(sender)
        )
    assert caught.value.status == 401


def test_each_refusal_is_the_handlers() -> None:
    secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    body, headers = sample_delivery("standard-webhooks", "invoice.paid", secret=secret)
    event = construct_event("standard-webhooks", body, headers, secret=secret)
    assert isinstance(event, StandardWebhooksEvent) and event.type == "invoice.paid"
    with pytest.raises(InvalidSignature):
        construct_event("standard-webhooks", body + b" ", headers, secret=secret)
    with pytest.raises(MissingCredentials):
        construct_event(
            "standard-webhooks", body, {"Content-Type": "application/json"}, secret=secret
        )
    with pytest.raises(BodyTooLarge):
        construct_event("standard-webhooks", body, headers, secret=secret, max_body_size=10)
    with pytest.raises(BodyTooLarge):  # by the declared length, as before the body is read
        construct_event(
            "standard-webhooks", body, {**headers, "Content-Length": "99999999"}, secret=secret
        )
    stale = sign("standard-webhooks", body, secret=secret, timestamp=1)
    with pytest.raises(TimestampOutOfRange):
        construct_event("standard-webhooks", body, stale, secret=secret)
    bad = b'{"type": '
    with pytest.raises(MalformedPayload):
        construct_event(
            "standard-webhooks", bad, sign("standard-webhooks", bad, secret=secret), secret=secret
        )


def test_option_mistakes_are_the_callers() -> None:
    with pytest.raises(ValueError, match="pass secret="):
        construct_event("github", b"{}", {})
    with pytest.raises(ValueError, match="unknown provider"):
        construct_event("nobody", b"{}", {}, secret="s")
    with pytest.raises(TypeError, match="raw request body"):
        construct_event("github", "{}", {}, secret="s")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="signs no timestamp"):
        construct_event("github", b"{}", {}, secret="s", tolerance=60)
