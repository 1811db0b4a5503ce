"""Edge cases of the core: odd field values, limits, and the less travelled paths."""

from __future__ import annotations

import asyncio
import json
import pickle
from datetime import datetime, timezone
from typing import Any

import pytest

from hookshield import (
    BAD_DATA,
    BadData,
    Claim,
    Event,
    MalformedPayload,
    MemoryDedupeStore,
    MindPeekerEvent,
    MocoEvent,
    MomentumEvent,
    WebhookError,
    WebhookHandler,
)
from hookshield.providers import PROVIDERS, get_provider
from hookshield.testing import sample_batch, sample_body, sample_delivery, sign

from .conftest import CREDENTIALS, make_handler


def _momentum(
    records: list[dict[str, Any]], handler: WebhookHandler | None = None
) -> tuple[Event, ...]:
    body = json.dumps([{"msys": {"message_event": record}} for record in records]).encode()
    handler = handler or make_handler("momentum")
    return handler.verify(body, sign("momentum", body, **CREDENTIALS["momentum"])).events


def test_webhook_error_status_and_message() -> None:
    error = WebhookError("slow down", status=429)
    assert error.status == 429 and error.message == "slow down"
    assert WebhookError("plain").status == 400


def test_odd_numbers_read_as_none() -> None:
    (event,) = _momentum(
        [{"type": "bounce", "bounce_class": True, "timestamp": True, "num_retries": "1.5"}]
    )
    assert isinstance(event, MomentumEvent)
    assert event.bounce_class is None and event.timestamp is None and event.num_retries is None
    (odd,) = _momentum([{"type": "delay", "timestamp": [1700000000]}])
    assert odd.timestamp is None
    (far,) = _momentum([{"type": "delay", "timestamp": 1e20}])
    assert far.timestamp is None
    (text,) = _momentum([{"type": "delay", "timestamp": "1700000000.25"}])
    assert text.timestamp == datetime(2023, 11, 14, 22, 13, 20, 250000, tzinfo=timezone.utc)


@pytest.mark.parametrize(
    ("stamp", "expected"),
    [
        ("1527170410", datetime(2018, 5, 24, 14, 0, 10, tzinfo=timezone.utc)),
        ("1527170410463", datetime(2018, 5, 24, 14, 0, 10, 463000, tzinfo=timezone.utc)),
        ("1527170410463000000", datetime(2018, 5, 24, 14, 0, 10, 463000, tzinfo=timezone.utc)),
        ("soon", None),
    ],
)
def test_moco_timestamp_units_are_read_by_magnitude(stamp: str, expected: datetime | None) -> None:
    body, headers = sample_delivery("moco", "activity.create", timestamp=0, **CREDENTIALS["moco"])
    headers["X-Moco-Timestamp"] = stamp
    (event,) = make_handler("moco").verify(body, headers).events
    assert isinstance(event, MocoEvent)
    assert event.timestamp == expected


def test_a_naive_iso_time_is_read_as_utc() -> None:
    body = json.dumps(
        {"id": "evt_n", "type": "session.created", "created_at": "2025-01-15T10:30:00", "data": {}}
    ).encode()
    event = (
        make_handler("mindpeeker")
        .verify(body, sign("mindpeeker", body, **CREDENTIALS["mindpeeker"]))
        .events[0]
    )
    assert event.timestamp == datetime(2025, 1, 15, 10, 30, tzinfo=timezone.utc)


def test_coordinates_need_both_latitude_and_longitude() -> None:
    body = sample_body("mindpeeker", "dowsing.query_completed", {"coordinates": {"latitude": 1}})
    event = (
        make_handler("mindpeeker")
        .verify(body, sign("mindpeeker", body, **CREDENTIALS["mindpeeker"]))
        .events[0]
    )
    assert isinstance(event, MindPeekerEvent)
    assert event.coordinates is None


def test_a_failing_record_without_id_in_a_batch() -> None:
    handler = make_handler("momentum")
    handler.on("open")(lambda event: 1 / 0)
    body = json.dumps([{"msys": {"track_event": {"type": "open"}}}]).encode()
    headers = sign("momentum", body, batch_id="b", **CREDENTIALS["momentum"])
    assert handler.handle(body, headers).status == 500
    assert handler.handle(body, headers).status == 500  # released: retried, not a duplicate


def test_failure_without_a_dedupe_store() -> None:
    handler = make_handler("mindpeeker", dedupe=None)
    handler.on("*")(lambda event: 1 / 0)
    body, headers = sample_delivery("mindpeeker", "session.created", **CREDENTIALS["mindpeeker"])
    assert handler.handle(body, headers).status == 500


def test_many_distinct_event_types_keep_routing_right() -> None:
    handler = make_handler("mindpeeker")

    def sessions(event: Event) -> None: ...

    handler.on("session.*")(sessions)
    for number in range(5000):
        assert handler.routes_for(f"other.{number}") == ()
    assert handler.routes_for("session.x") == (sessions,)


def test_a_plain_function_returning_a_coroutine_is_awaited() -> None:
    handler = make_handler("mindpeeker")
    seen: list[str] = []

    async def later(event: Event) -> None:
        seen.append(event.type)

    handler.on("*")(lambda event: later(event))
    body, headers = sample_delivery("mindpeeker", "session.created", **CREDENTIALS["mindpeeker"])
    assert asyncio.run(handler.handle_async(body, headers)).status == 200
    assert seen == ["session.created"]


def test_an_awaitable_from_plain_dispatch_inside_a_loop_is_refused() -> None:
    handler = make_handler("mindpeeker")

    async def main() -> None:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        handler.on("*")(lambda event: future)
        body, headers = sample_delivery(
            "mindpeeker", "session.created", **CREDENTIALS["mindpeeker"]
        )
        with pytest.raises(TypeError, match="handle_async"):
            handler.dispatch(handler.verify(body, headers))

    asyncio.run(main())


def test_headers_differing_only_in_case_count_as_repeated() -> None:
    body, headers = sample_delivery("mindpeeker", "session.created", **CREDENTIALS["mindpeeker"])
    headers["x-mindpeeker-signature"] = headers["X-MindPeeker-Signature"]
    with pytest.raises(WebhookError, match="more than once"):
        make_handler("mindpeeker").verify(body, headers)


def test_many_content_types_are_all_judged() -> None:
    handler = make_handler("mindpeeker")
    body, headers = sample_delivery("mindpeeker", "session.created", **CREDENTIALS["mindpeeker"])
    for number in range(300):
        headers["Content-Type"] = f"application/json; v={number}"
        handler.verify(body, headers)
    headers["Content-Type"] = "   "
    handler.verify(body, headers)


def test_a_form_with_too_many_fields() -> None:
    body = "&".join(f"f{n}=1" for n in range(100)).encode()
    headers = sign(
        "petal", body, content_type="application/x-www-form-urlencoded", **CREDENTIALS["petal"]
    )
    with pytest.raises(MalformedPayload, match="more than 64"):
        make_handler("petal").verify(body, headers)


def test_bad_data_is_one_picklable_sentinel() -> None:
    assert BadData() is BAD_DATA
    assert pickle.loads(pickle.dumps(BAD_DATA)) is BAD_DATA  # noqa: S301 - our own bytes


def test_sample_credentials_may_be_bytes_or_several() -> None:
    body = sample_body("petal", "eye")
    assert sign("petal", body, token=b"eeg")["X-Petal-Token"] == "eeg"
    assert sign("momentum", b"[]", token=["new", "old"])["X-MessageSystems-Webhook-Token"] == "new"
    assert sign("momentum", b"[]", bearer_token=[b"tok"])["Authorization"] == "Bearer tok"
    assert sign("petal", body)["Content-Type"] == "application/json"


def test_petal_samples_carry_basic_and_bearer_credentials() -> None:
    for credential in ({"basic_auth": ("eeg", "pw")}, {"bearer_token": "tok"}):
        handler = WebhookHandler("petal", **credential)
        body, headers = sample_delivery("petal", "blink", **credential)
        assert handler.handle(body, headers).status == 200


def test_testing_helpers_refuse_what_a_sender_never_does() -> None:
    with pytest.raises(TypeError, match="bytes"):
        sign("moco", "{}", secret="k")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="secret="):
        sign("moco", b"{}")
    with pytest.raises(ValueError, match="form"):
        sample_body("moco", "activity.create", content_type="application/x-www-form-urlencoded")
    assert (
        json.loads(sample_batch(["click"], overrides={"rcpt_to": "a@b.c"}))[0]["msys"][
            "track_event"
        ]["rcpt_to"]
        == "a@b.c"
    )


def test_provider_registry() -> None:
    assert repr(get_provider("moco")) == "<provider moco>"
    assert set(PROVIDERS) == {
        "moonsense",
        "petal",
        "moco",
        "mindpeeker",
        "momentum",
        "github",
        "standard-webhooks",
    }
    with pytest.raises(ValueError, match="unknown provider"):
        get_provider(None)  # type: ignore[arg-type]


def test_long_sender_chosen_ids_and_types_are_kept_bounded() -> None:
    handler = WebhookHandler("momentum", allow_unsigned=True)
    store = handler.dedupe
    assert isinstance(store, MemoryDedupeStore)
    records = [
        {
            "msys": {
                "track_event": {"type": "t" * 10_000 + str(n), "event_id": "e" * 10_000 + str(n)}
            }
        }
        for n in range(20)
    ]
    body = json.dumps(records).encode()
    outcome = handler.handle(body, {})
    assert outcome.status == 200
    assert len(outcome.reason) < 1_000
    assert "15 more" in outcome.reason
    # Each key is short, whatever the sender put in the record: the store holds the
    # batch's key and each record's, and none of them is the 10,000-character id.
    assert len(store) == 21
    seen: list[str] = []
    real_claim = store.claim

    def claim(key: str, lease: float) -> Claim:
        seen.append(key)
        return real_claim(key, lease)

    store.claim = claim  # type: ignore[method-assign]
    # And de-duplication by those long ids still works.
    assert handler.handle(body, {"X-MessageSystems-Batch-ID": "other"}).duplicate
    assert seen and all(len(key) < 200 for key in seen)


@pytest.mark.parametrize(
    ("body", "error"),
    [
        (b' \t\r\n{"type": "session.created"}\n ', None),
        (b" \n\t", "the body is empty: expected a JSON payload"),
        # Not JSON whitespace (RFC 8259 section 2), though str.isspace() says it is.
        (b'\x0b{"type": "session.created"}', "Expecting value at line 1 column 1"),
        (b'{"type": "session.created"}\x0b', "Extra data at line 1 column 28"),
        (b'{"type": "session.created"} {}', "Extra data at line 1 column 29"),
        (b'{"type": "session.created", "x": NaN}', "NaN is not a JSON value"),
        (b'{"type": "session.created", "x": 1' + b"0" * 5000 + b"}", "Exceeds the limit"),
    ],
)
def test_json_bodies_are_read_strictly(body: bytes, error: str | None) -> None:
    handler = make_handler("mindpeeker")
    headers = sign("mindpeeker", body, **CREDENTIALS["mindpeeker"])
    if error is None:
        assert handler.verify(body, headers).events[0].type == "session.created"
        return
    with pytest.raises(MalformedPayload, match=error):
        handler.verify(body, headers)
