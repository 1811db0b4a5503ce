"""What the senders' own pages say, read as they say it."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any

import pytest

from hookshield import (
    BAD_DATA,
    FrozenArray,
    FrozenObject,
    Headers,
    MalformedPayload,
    MocoEvent,
    MoonsenseEvent,
    PetalEvent,
)
from hookshield.providers import get_provider
from hookshield.providers.moco import API_TARGETS, SEED_TARGETS
from hookshield.providers.momentum import EVENT_CLASSES
from hookshield.testing import event_types, sample_body, sample_delivery, sign

from .conftest import CREDENTIALS, make_handler

FORM = "application/x-www-form-urlencoded"
#: One event type of each event class SparkPost documents.
EVENT_TYPES_BY_CLASS = [types[0] for types in EVENT_CLASSES.values()]


class TestMocoTargets:
    def test_the_pages_own_targets_are_known(self) -> None:
        # seeds/002: "X-Moco-Target - Activity, Customer, Project, ..."
        assert SEED_TARGETS == ("Activity", "Customer", "Project")
        assert {"customer.create", "customer.update", "customer.delete", "customer.archive"} <= set(
            event_types("moco")
        )

    def test_targets_from_the_api_docs_are_kept_apart(self) -> None:
        assert "Company" in API_TARGETS and not set(API_TARGETS) & set(SEED_TARGETS)

    def test_a_customer_event_verifies(self) -> None:
        body, headers = sample_delivery("moco", "customer.update", **CREDENTIALS["moco"])
        assert headers["X-Moco-Target"] == "Customer"
        event = make_handler("moco").verify(body, headers).events[0]
        assert isinstance(event, MocoEvent)
        assert (event.type, event.target, event.action) == ("customer.update", "Customer", "update")


class TestMoonsenseEventCode:
    @pytest.mark.parametrize(
        ("header", "code"),
        [
            ("session.created", 1),
            ("bundle.received", 2),
            ("chunk.persisted", 3),
            ("session.inactive", 4),
            ("SESSION_CREATED", 1),
            ("something.else", None),
        ],
    )
    def test_from_the_event_header_when_the_body_has_no_event_type(
        self, header: str, code: int | None
    ) -> None:
        body = b'{"session_id": "s"}'
        headers = sign("moonsense", body, event=header, **CREDENTIALS["moonsense"])
        event = make_handler("moonsense").verify(body, headers).events[0]
        assert isinstance(event, MoonsenseEvent)
        assert event.event_code == code

    def test_the_body_wins_over_the_header(self) -> None:
        body = json.dumps({"event_type": "CHUNK_PERSISTED"}).encode()
        headers = sign("moonsense", body, event="session.created", **CREDENTIALS["moonsense"])
        event = make_handler("moonsense").verify(body, headers).events[0]
        assert isinstance(event, MoonsenseEvent)
        assert (event.type, event.event_code) == ("chunk.persisted", 3)


def _petal(message: dict[str, Any]) -> PetalEvent:
    body = json.dumps(message).encode()
    event = (
        make_handler("petal").verify(body, sign("petal", body, **CREDENTIALS["petal"])).events[0]
    )
    assert isinstance(event, PetalEvent)
    return event


class TestPetal:
    def test_bad_data_in_an_action_array_is_the_sentinel(self) -> None:
        # seeds/001, bandpower: 'value': ['bad_data', ... x16]
        event = _petal(
            {"type": "bandpower", "action": {"value": ["bad_data", 0.5, [1], {"a": 1}]}, "data": {}}
        )
        value = event.action_value
        assert isinstance(value, tuple)
        assert value[0] is BAD_DATA and value[1] == 0.5
        assert isinstance(value[2], FrozenArray) and isinstance(value[3], FrozenObject)

    def test_a_bad_data_action_scalar_is_the_sentinel(self) -> None:
        assert _petal({"type": "blink", "action": {"value": "bad_data"}}).action_value is BAD_DATA
        assert _petal({"type": "blink", "action": {"value": 1}}).action_value == 1
        assert _petal({"type": "blink"}).action_value is None

    def test_metrics_json_action_stays_a_read_only_object(self) -> None:
        event = _petal(json.loads(sample_body("petal", "metricsJson", {})))
        assert isinstance(event.action_value, FrozenObject)
        assert event.action_value["blink"]["blink"] == 0

    def test_the_pages_three_lsl_times(self) -> None:
        # The values of the page's example.
        page = {"lsl_eeg_fill_ts": 1214.7459047, "lsl_api_call_ts": 1257.6010982}
        event = _petal({"type": "eye", "data": {**page, "lsl_api_recv_ts": 1257.7840578}})
        assert event.lsl_eeg_fill_ts == 1214.7459047
        assert event.lsl_api_call_ts == 1257.6010982
        assert event.lsl_api_recv_ts == 1257.7840578
        # A sample keeps the page's first two, and a receive time of its own.
        sample = _petal(json.loads(sample_body("petal", "eye", {})))
        assert (sample.lsl_eeg_fill_ts, sample.lsl_api_call_ts) == tuple(page.values())
        assert isinstance(sample.lsl_api_recv_ts, float)

    def test_lsl_times_of_the_wrong_type_read_as_none(self) -> None:
        event = _petal({"type": "eye", "data": {"lsl_eeg_fill_ts": "x", "lsl_api_call_ts": [1]}})
        assert event.lsl_eeg_fill_ts is None and event.lsl_api_call_ts is None
        assert event.lsl_api_recv_ts is None


class TestMomentumBareRecord:
    def test_a_bare_record_is_a_batch_of_one(self) -> None:
        # seeds/004 prints one record as {"msys": {...}}, with no array around it.
        record = json.loads(sample_body("momentum", "click", {}))[0]
        body = json.dumps(record).encode()
        delivery = make_handler("momentum").verify(
            body, sign("momentum", body, **CREDENTIALS["momentum"])
        )
        assert [(e.type, e.id) for e in delivery.events] == [
            ("click", record["msys"]["track_event"]["event_id"])
        ]

    def test_the_bare_validation_record_yields_nothing(self) -> None:
        body = b'{"msys": {}}'
        delivery = make_handler("momentum").verify(
            body, sign("momentum", body, **CREDENTIALS["momentum"])
        )
        assert delivery.events == ()

    def test_an_object_without_msys_is_still_refused(self) -> None:
        handler = make_handler("momentum")
        body = b'{"records": []}'
        with pytest.raises(MalformedPayload, match="JSON array") as caught:
            handler.verify(body, sign("momentum", body, **CREDENTIALS["momentum"]))
        assert caught.value.status == 400


def test_a_moonsense_form_is_decoded_for_its_signature_only_when_the_raw_body_fails() -> None:
    # Nothing is decoded before a signature has matched, where the raw body matches.
    provider = get_provider("moonsense")
    body = sample_body("moonsense", "session.created", content_type=FORM)
    headers = Headers({"Content-Type": FORM})
    candidates = iter(provider.signed_messages(body, headers))
    assert next(candidates) == body
    assert next(candidates) != body  # the payload field, decoded only now


class TestMomentumTimestamps:
    """SparkPost's sample events carry Unix seconds as a string, and ISO 8601 text in some."""

    @pytest.mark.parametrize("event_type", EVENT_TYPES_BY_CLASS)
    @pytest.mark.parametrize(
        "stamp",
        [
            "2018-10-11T23:24:45.000+00:00",  # SparkPost's sample generation_failure
            "2018-10-11T23:24:45Z",
            "1539300285",  # message events: Unix seconds as a string
            1539300285,
            1539300285.0,
        ],
    )
    def test_each_event_class_reads_either_form(self, event_type: str, stamp: object) -> None:
        body = sample_body("momentum", event_type, {"timestamp": stamp})
        delivery = make_handler("momentum").verify(
            body, sign("momentum", body, **CREDENTIALS["momentum"])
        )
        (event,) = delivery.events
        assert event.timestamp == datetime(2018, 10, 11, 23, 24, 45, tzinfo=timezone.utc)

    def test_an_offset_is_kept_as_the_same_instant(self) -> None:
        body = sample_body(
            "momentum", "generation_failure", {"timestamp": "2018-10-12T01:24:45+02:00"}
        )
        event = (
            make_handler("momentum")
            .verify(body, sign("momentum", body, **CREDENTIALS["momentum"]))
            .events[0]
        )
        assert event.timestamp == datetime(2018, 10, 11, 23, 24, 45, tzinfo=timezone.utc)

    @pytest.mark.parametrize("stamp", ["yesterday", "", [1], None, "2018-13-40T00:00:00Z"])
    def test_anything_else_reads_as_none(self, stamp: object) -> None:
        body = sample_body("momentum", "delivery", {"timestamp": stamp})
        event = (
            make_handler("momentum")
            .verify(body, sign("momentum", body, **CREDENTIALS["momentum"]))
            .events[0]
        )
        assert event.timestamp is None
