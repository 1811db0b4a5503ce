"""hookshield.testing: deliveries built as the real senders build them."""

from __future__ import annotations

import json
from typing import Any

import pytest

from hookshield import WebhookHandler
from hookshield.providers import PROVIDERS, get_provider
from hookshield.testing import (
    event_types,
    providers,
    sample_batch,
    sample_body,
    sample_delivery,
    sign,
)


def test_providers_and_event_types_are_the_registrys() -> None:
    assert providers() == tuple(PROVIDERS)
    assert set(providers()) == {"moonsense", "petal", "moco", "mindpeeker", "momentum"}
    assert event_types("moco") == get_provider("moco").event_types
    assert repr(get_provider("moco")) == "<provider moco>"
    with pytest.raises(ValueError, match="unknown provider"):
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
