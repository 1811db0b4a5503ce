"""De-duplication keys of every sender, per delivery and per event, and how long to keep them."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pytest

from hookshield import DEFAULT_TTL, Delivery, FrozenObject, MomentumEvent, WebhookHandler
from hookshield.providers import PROVIDERS, get_provider
from hookshield.testing import sample_batch, sample_body, sign

from .conftest import CREDENTIALS, PROVIDER_NAMES, make_handler


def _sha(body: bytes) -> str:
    return "sha256:" + hashlib.sha256(body).hexdigest()


def _verify(
    provider: str, body: bytes, credentials: dict[str, Any], **sign_options: Any
) -> Delivery:
    headers = sign(provider, body, **credentials, **sign_options)
    handler = WebhookHandler(provider, **CREDENTIALS[provider], dedupe=None)
    if provider in ("moonsense", "moco", "mindpeeker"):
        handler = WebhookHandler(provider, secret=["old-secret", "new-secret"], dedupe=None)
    return handler.verify(body, headers)


class TestKeyRotation:
    """One body signed under the old and the new secret is one delivery."""

    @pytest.mark.parametrize("provider", ["moonsense", "moco"])
    def test_a_body_without_a_signed_id(self, provider: str) -> None:
        body = sample_body(provider, event_types_of(provider)[0], {})
        old = _verify(provider, body, {"secret": "old-secret"})
        new = _verify(provider, body, {"secret": "new-secret"})
        assert old.id == new.id
        assert old.id.startswith(_sha(body))

    def test_mindpeeker_without_an_id(self) -> None:
        body = json.dumps({"type": "session.created", "data": {}}).encode()
        old = _verify("mindpeeker", body, {"secret": "old-secret"})
        new = _verify("mindpeeker", body, {"secret": "new-secret"})
        assert old.id == new.id == _sha(body)

    def test_mindpeeker_with_its_signed_id(self) -> None:
        body = sample_body("mindpeeker", "session.created", {})
        old = _verify("mindpeeker", body, {"secret": "old-secret"})
        new = _verify("mindpeeker", body, {"secret": "new-secret"})
        assert old.id == new.id == "event:" + json.loads(body)["id"]


def event_types_of(provider: str) -> tuple[str, ...]:
    return PROVIDERS[provider].event_types


class TestTheEventTypeIsPartOfTheKeyWhereItIsUnsigned:
    def test_moco_one_body_under_two_event_types_is_two_deliveries(self) -> None:
        body = sample_body("moco", "project.update", {})
        handler = make_handler("moco", dedupe=None)
        update = handler.verify(
            body, sign("moco", body, event="project.update", **CREDENTIALS["moco"])
        )
        delete = handler.verify(
            body, sign("moco", body, event="project.delete", **CREDENTIALS["moco"])
        )
        assert update.id == _sha(body) + ":project.update"
        assert delete.id == _sha(body) + ":project.delete"

    def test_moco_replay_with_fresh_unsigned_headers_keeps_the_key(self) -> None:
        body = sample_body("moco", "project.update", {})
        handler = make_handler("moco", dedupe=None)
        first = handler.verify(
            body, sign("moco", body, event="project.update", timestamp=1, **CREDENTIALS["moco"])
        )
        again = handler.verify(
            body,
            sign(
                "moco", body, event="project.update", timestamp=2, user_id=7, **CREDENTIALS["moco"]
            ),
        )
        assert first.id == again.id

    def test_moonsense_event_header_counts_only_without_event_type_in_the_body(self) -> None:
        handler = make_handler("moonsense", dedupe=None)
        bare = b'{"session_id": "s"}'
        created = handler.verify(
            bare, sign("moonsense", bare, event="session.created", **CREDENTIALS["moonsense"])
        )
        inactive = handler.verify(
            bare, sign("moonsense", bare, event="session.inactive", **CREDENTIALS["moonsense"])
        )
        assert (created.id, inactive.id) == (
            _sha(bare) + ":session.created",
            _sha(bare) + ":session.inactive",
        )
        typed = sample_body("moonsense", "session.created", {})
        one = handler.verify(
            typed, sign("moonsense", typed, event="anything", **CREDENTIALS["moonsense"])
        )
        assert one.id == _sha(typed) and one.events[0].type == "session.created"

    def test_petal_is_keyed_on_its_body(self) -> None:
        body = sample_body("petal", "blink", {})
        delivery = make_handler("petal", dedupe=None).verify(
            body, sign("petal", body, **CREDENTIALS["petal"])
        )
        assert delivery.id == _sha(body)


class TestEventKeys:
    def test_default_is_the_events_id(self) -> None:
        provider = get_provider("mindpeeker")
        body = sample_body("mindpeeker", "session.created", {})
        event = (
            make_handler("mindpeeker")
            .verify(body, sign("mindpeeker", body, **CREDENTIALS["mindpeeker"]))
            .events[0]
        )
        assert provider.event_key(event) == event.id and event.id is not None

    def test_petal_message_counters_are_no_key(self) -> None:
        body = sample_body("petal", "blink", {})
        event = (
            make_handler("petal")
            .verify(body, sign("petal", body, **CREDENTIALS["petal"]))
            .events[0]
        )
        assert event.id == "21"  # the stream's counter, which restarts
        assert get_provider("petal").event_key(event) is None

    def test_momentum_records_with_an_event_id_are_keyed_on_it(self) -> None:
        body = sample_batch(["open", "click"])
        events = (
            make_handler("momentum")
            .verify(body, sign("momentum", body, **CREDENTIALS["momentum"]))
            .events
        )
        ids = [r["msys"][next(iter(r["msys"]))]["event_id"] for r in json.loads(body)]
        assert [get_provider("momentum").event_key(e) for e in events] == ids

    def test_momentum_records_without_event_id_are_keyed_on_their_content(self) -> None:
        provider = get_provider("momentum")
        record = {
            "msys": {"track_event": {"type": "open", "rcpt_to": "a@example.com", "timestamp": "1"}}
        }
        compact = json.dumps([record], separators=(",", ":")).encode()
        spaced = json.dumps([record], indent=2).encode()
        other = json.dumps(
            [{"msys": {"track_event": {"type": "open", "rcpt_to": "b@example.com"}}}]
        ).encode()
        handler = make_handler("momentum", dedupe=None)

        def key(body: bytes, batch_id: str) -> str | None:
            headers = sign("momentum", body, batch_id=batch_id, **CREDENTIALS["momentum"])
            (event,) = handler.verify(body, headers).events
            assert isinstance(event, MomentumEvent) and event.id is None
            return provider.event_key(event)

        # A replay under a fresh (unsigned) batch id, re-spaced, keeps the record's key.
        first = key(compact, "batch-1")
        assert first is not None and first.startswith("content:")
        assert key(spaced, "batch-2") == first
        assert key(other, "batch-3") != first
        # The class is part of the content.
        moved = json.dumps([{"msys": {"message_event": record["msys"]["track_event"]}}]).encode()
        assert key(moved, "batch-4") != first

    def test_a_record_too_deep_to_encode_has_no_key_rather_than_an_error(self) -> None:
        # The decoders refuse such a body; an event built by hand can still hold it.
        deep: list[Any] = []
        node = deep
        for _ in range(100_000):
            node.append([])
            node = node[0]
        event = MomentumEvent(
            provider="momentum", type="open", data=FrozenObject({"deep": deep}), event_class="x"
        )
        assert get_provider("momentum").event_key(event) is None


class TestRetryWindows:
    @pytest.mark.parametrize(
        ("provider", "window", "ttl"),
        [
            ("momentum", 4 * 3600, 8 * 3600),
            ("mindpeeker", 6155, 2.5 * 3600),
            ("moco", 2 * 3600, DEFAULT_TTL),
            ("moonsense", 2 * 3600, DEFAULT_TTL),
            ("petal", 2 * 3600, DEFAULT_TTL),
        ],
    )
    def test_each_senders_window_and_default_ttl(
        self, provider: str, window: float, ttl: float
    ) -> None:
        sender = get_provider(provider)
        assert sender.retry_window == window
        assert sender.default_dedupe_ttl == ttl

    @pytest.mark.parametrize("provider", PROVIDER_NAMES)
    def test_the_ttl_outlasts_the_retries(self, provider: str) -> None:
        sender = get_provider(provider)
        assert sender.default_dedupe_ttl > sender.retry_window
