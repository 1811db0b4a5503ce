"""Typed events: odd field values read as ``None`` (or ``BAD_DATA``), never as errors."""

from __future__ import annotations

import json
import pickle
from datetime import datetime, timezone
from typing import Any

import pytest

from hookshield import (
    BAD_DATA,
    BadData,
    Event,
    MindPeekerEvent,
    MocoEvent,
    MomentumEvent,
    WebhookError,
)
from hookshield.testing import sample_body, sample_delivery, sign

from .conftest import CREDENTIALS, make_handler


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
