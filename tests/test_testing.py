"""hookshield.testing: samples are new bytes each time, batches come from the sender."""

from __future__ import annotations

import json

import pytest

from hookshield import WebhookHandler
from hookshield.providers import PROVIDERS
from hookshield.testing import event_types, providers, sample_batch, sample_body, sample_delivery

from .conftest import a_type

CREDENTIALS = {name: dict(p.demo.credentials) for name, p in PROVIDERS.items() if p.demo}


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
