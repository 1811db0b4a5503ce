"""Events and deliveries: their constructors, and times that do not fit a float."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any

import pytest

from hookshield import (
    Delivery,
    FrozenObject,
    Headers,
    MindPeekerEvent,
    MocoEvent,
    MomentumEvent,
    MoonsenseEvent,
    PetalEvent,
)
from hookshield.testing import sample_body, sign

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
