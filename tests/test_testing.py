"""hookshield.testing: samples are new bytes each time, batches come from the sender."""

from __future__ import annotations

import json
from typing import Any

import pytest

from hookshield import WebhookHandler
from hookshield.providers import PROVIDERS, get_provider
from hookshield.testing import (
    credentials,
    event_types,
    providers,
    sample_batch,
    sample_body,
    sample_delivery,
    sign,
)

from .conftest import a_type

CREDENTIALS = {name: credentials(name) for name in providers()}


@pytest.mark.parametrize("provider", providers())
def test_two_samples_are_never_the_same_bytes(provider: str) -> None:
    for kind in event_types(provider):
        assert sample_body(provider, kind) != sample_body(provider, kind)


@pytest.mark.parametrize("provider", providers())
def test_each_send_of_a_sample_runs_the_routes(provider: str) -> None:
    handler = WebhookHandler(provider, **CREDENTIALS[provider])
    handled: list[str] = []

    @handler.on("*")
    def record(event: object) -> None:
        handled.append(provider)

    kind = a_type(provider)
    for _ in range(3):
        outcome = handler.handle(*sample_delivery(provider, kind, **CREDENTIALS[provider]))
        assert outcome.status == 200 and not outcome.duplicate
    assert len(handled) == 3


def test_a_batch_comes_from_the_one_sender_of_batches() -> None:
    records = json.loads(sample_batch(["delivery", "click"], overrides={"rcpt_to": "a@b.c"}))
    assert [next(iter(r["msys"].values()))["type"] for r in records] == ["delivery", "click"]
    assert sample_batch(["open"], provider="momentum") != sample_batch(["open"])


def test_a_sender_of_single_events_takes_one_type() -> None:
    assert json.loads(sample_batch(["blink"], provider="petal"))["type"] == "blink"
    with pytest.raises(ValueError, match="MOCO sends one event per delivery"):
        sample_batch(["deal.create", "deal.update"], provider="moco")
    with pytest.raises(TypeError, match="list of event types"):
        sample_batch("click")


def test_without_a_single_sender_of_batches_the_provider_is_needed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(type(PROVIDERS["momentum"]), "sends_batches", False)
    with pytest.raises(TypeError, match="pass provider=: the senders of batches are none"):
        sample_batch(["click"])


def test_providers_and_event_types_are_the_registrys() -> None:
    assert providers() == tuple(PROVIDERS)
    assert event_types("moco") == get_provider("moco").event_types
    assert repr(get_provider("moco")) == "<provider moco>"
    with pytest.raises(ValueError, match="unknown provider"):
        get_provider("mindpeker")
    with pytest.raises(TypeError, match="provider must be a sender's name"):
        get_provider(None)  # type: ignore[arg-type]


def test_sample_credentials_may_be_bytes_or_several() -> None:
    body = sample_body("petal", "eye")
    assert sign("petal", body, token=b"eeg")["X-Petal-Token"] == "eeg"
    assert sign("momentum", b"[]", token=["new", "old"])["X-MessageSystems-Webhook-Token"] == "new"
    assert sign("momentum", b"[]", bearer_token=[b"tok"])["Authorization"] == "Bearer tok"
    assert sign("petal", body)["Content-Type"] == "application/json"


@pytest.mark.parametrize("credential", [{"basic_auth": ("eeg", "pw")}, {"bearer_token": "tok"}])
def test_petal_samples_carry_basic_and_bearer_credentials(credential: dict[str, Any]) -> None:
    handler = WebhookHandler("petal", **credential)
    body, headers = sample_delivery("petal", "blink", **credential)
    assert handler.handle(body, headers).status == 200
    assert WebhookHandler("petal", token="other").handle(body, headers).status == 401


def test_testing_helpers_refuse_what_a_sender_never_does() -> None:
    with pytest.raises(TypeError, match="bytes"):
        sign("moco", "{}", secret="k")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="secret="):
        sign("moco", b"{}")
    with pytest.raises(ValueError, match="form"):
        sample_body("moco", "activity.create", content_type="application/x-www-form-urlencoded")


def test_a_sample_batch_takes_overrides_for_every_record() -> None:
    records = json.loads(sample_batch(["click", "open"], overrides={"rcpt_to": "a@b.c"}))
    assert [r["msys"]["track_event"]["rcpt_to"] for r in records] == ["a@b.c", "a@b.c"]
    assert [r["msys"]["track_event"]["type"] for r in records] == ["click", "open"]
