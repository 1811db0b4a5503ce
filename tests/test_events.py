"""Events and deliveries: their constructors, and times that do not fit a float."""

from __future__ import annotations

import json
import pickle
from datetime import datetime, timezone
from typing import Any

import pytest

from hookshield import (
    BAD_DATA,
    BadData,
    Delivery,
    Event,
    FrozenObject,
    Headers,
    MindPeekerEvent,
    MocoEvent,
    MomentumEvent,
    MoonsenseEvent,
    PetalEvent,
    WebhookError,
)
from hookshield.testing import sample_body, sample_delivery, sign

from .conftest import CREDENTIALS, make_handler

HUGE = 10**400  # valid JSON, far past a float


def _verify(provider: str, body: bytes, **headers: str) -> Delivery:
    signed = sign(provider, body, **CREDENTIALS[provider])
    signed.update(headers)
    return make_handler(provider, dedupe=None).verify(body, signed)


class TestConstructors:
    def test_events_are_built_with_their_keyword_constructors(self) -> None:
        when = datetime(2025, 1, 15, 10, 30, tzinfo=timezone.utc)
        event = MindPeekerEvent(
            provider="mindpeeker",
            type="session.completed",
            id="evt_1",
            timestamp=when,
            data=FrozenObject({"session_id": "sess_1"}),
            livemode=True,
        )
        assert (event.session_id, event.livemode, event.pending_webhooks) == ("sess_1", True, None)
        body = b"{}"
        delivery = Delivery(
            provider="mindpeeker", id="event:evt_1", events=(event,), headers=Headers(), body=body
        )
        assert delivery.events[0] is event

    def test_a_parsed_event_equals_one_built_by_hand(self) -> None:
        body = sample_body("moco", "activity.create", {})
        event = _verify("moco", body, **{"X-Moco-Timestamp": "1527170410463"}).events[0]
        built = MocoEvent(
            provider="moco",
            type="activity.create",
            timestamp=datetime(2018, 5, 24, 14, 0, 10, 463000, tzinfo=timezone.utc),
            data=FrozenObject(json.loads(body)),
            target="Activity",
            action="create",
            user_id=933613686,
            account_url="https://example.mocoapp.com",
        )
        assert event == built and hash(event) == hash(built)


class TestTimesTooLargeForAFloat:
    """A huge JSON integer in a time field reads as None; it never raises OverflowError."""

    def test_moonsense_server_time(self) -> None:
        body = sample_body("moonsense", "bundle.received", {})
        payload = json.loads(body)
        payload["bundle"]["server_time_millis"] = HUGE
        payload["bundle"]["bundle"]["client_time"]["wall_time_millis"] = -HUGE
        event = _verify("moonsense", json.dumps(payload).encode()).events[0]
        assert isinstance(event, MoonsenseEvent)
        assert event.timestamp is None and event.server_time is None
        assert event.client_time is None
        assert event.server_time_raw == HUGE

    @pytest.mark.parametrize("value", [10**20, -(10**25), 1.7e308])
    def test_moonsense_times_just_past_any_calendar(self, value: Any) -> None:
        body = sample_body("moonsense", "bundle.received", {})
        payload = json.loads(body)
        payload["bundle"]["server_time_millis"] = value
        event = _verify("moonsense", json.dumps(payload).encode()).events[0]
        assert isinstance(event, MoonsenseEvent)
        assert event.server_time is None

    @pytest.mark.parametrize("field", ["unix_ts", "lsl_ts", "lsl_eeg_fill_ts", "lsl_api_call_ts"])
    def test_petal_timestamps(self, field: str) -> None:
        body = sample_body("petal", "blink", {field: HUGE})
        event = _verify("petal", body).events[0]
        assert isinstance(event, PetalEvent)
        assert getattr(event, field) is None
        if field == "unix_ts":
            assert event.timestamp is None

    def test_petal_batch_timestamp_and_action_time(self) -> None:
        message = {"type": "eye", "timestamp": HUGE, "action": {"value": 1, "time": HUGE}}
        body = json.dumps({"device_id": "muse", "batch": [message]}).encode()
        event = _verify("petal", body).events[0]
        assert isinstance(event, PetalEvent)
        assert event.timestamp is None and event.action_time is None

    @pytest.mark.parametrize("stamp", [HUGE, -HUGE, str(10**30), "1e400", "nan", "-inf", 1e308])
    def test_momentum_timestamp(self, stamp: Any) -> None:
        body = json.dumps(
            [{"msys": {"track_event": {"type": "open", "event_id": "1", "timestamp": stamp}}}]
        ).encode()
        event = _verify("momentum", body).events[0]
        assert isinstance(event, MomentumEvent)
        assert event.timestamp is None

    def test_mindpeeker_numbers(self) -> None:
        data = {"confidence_score": HUGE, "progress": -HUGE, "duration_minutes": HUGE}
        body = sample_body("mindpeeker", "session.progress_updated", data)
        event = _verify("mindpeeker", body).events[0]
        assert isinstance(event, MindPeekerEvent)
        assert event.confidence is None and event.progress is None
        assert event.duration_minutes == HUGE  # an int stays exact

    def test_moco_timestamp_header(self) -> None:
        body = sample_body("moco", "activity.create", {})
        event = _verify("moco", body, **{"X-Moco-Timestamp": "9" * 39}).events[0]
        assert event.timestamp is None


def _momentum(records: list[dict[str, Any]]) -> tuple[Event, ...]:
    body = json.dumps([{"msys": {"message_event": record}} for record in records]).encode()
    handler = make_handler("momentum")
    return handler.verify(body, sign("momentum", body, **CREDENTIALS["momentum"])).events


def test_a_webhook_error_carries_its_status_and_message() -> None:
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
    handler = make_handler("mindpeeker")
    event = handler.verify(body, sign("mindpeeker", body, **CREDENTIALS["mindpeeker"])).events[0]
    assert event.timestamp == datetime(2025, 1, 15, 10, 30, tzinfo=timezone.utc)


def test_coordinates_need_both_latitude_and_longitude() -> None:
    body = sample_body("mindpeeker", "dowsing.query_completed", {"coordinates": {"latitude": 1}})
    handler = make_handler("mindpeeker")
    event = handler.verify(body, sign("mindpeeker", body, **CREDENTIALS["mindpeeker"])).events[0]
    assert isinstance(event, MindPeekerEvent)
    assert event.coordinates is None


def test_bad_data_is_one_picklable_sentinel() -> None:
    assert BadData() is BAD_DATA
    assert pickle.loads(pickle.dumps(BAD_DATA)) is BAD_DATA  # noqa: S301 - our own bytes
