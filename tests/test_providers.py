"""Each sender: a valid delivery of every documented type, typed fields, and rejections."""

from __future__ import annotations

import hashlib
import json
import urllib.parse
from datetime import datetime, timezone
from typing import Any

import pytest

from hookshield import (
    BAD_DATA,
    Coordinates,
    EmptyBody,
    Event,
    GitHubEvent,
    InvalidSignature,
    MalformedPayload,
    MindPeekerEvent,
    MocoEvent,
    MomentumEvent,
    MoonsenseEvent,
    PetalEvent,
    StandardWebhooksEvent,
    WebhookError,
)
from hookshield.providers import get_provider
from hookshield.testing import (
    sample_batch,
    sample_body,
    sample_delivery,
    sign,
)

from .conftest import CREDENTIALS, a_type, make_handler

#: The public typed event class of each built-in sender.  What every registered
#: sender must do (sign, verify, refuse) is tests/contract.py's.
EVENT_CLASSES = {
    "moonsense": MoonsenseEvent,
    "petal": PetalEvent,
    "moco": MocoEvent,
    "mindpeeker": MindPeekerEvent,
    "momentum": MomentumEvent,
    "github": GitHubEvent,
    "standard-webhooks": StandardWebhooksEvent,
}


@pytest.mark.parametrize(("provider", "event_class"), EVENT_CLASSES.items())
def test_a_built_in_senders_events_are_its_public_typed_class(
    provider: str, event_class: type[Event]
) -> None:
    assert get_provider(provider).event_class is event_class
    kind = a_type(provider)
    (event,) = (
        make_handler(provider)
        .verify(*sample_delivery(provider, kind, **CREDENTIALS[provider]))
        .events
    )
    assert type(event) is event_class


@pytest.mark.parametrize("provider", ["moonsense", "moco", "mindpeeker"])
def test_tampered_body_of_a_signing_sender(provider: str) -> None:
    body, headers = sample_delivery(provider, a_type(provider), **CREDENTIALS[provider])
    tampered = body.replace(b"}", b', "x": 1}', 1)
    assert make_handler(provider).handle(tampered, headers).status == 401


class TestMindPeeker:
    def test_typed_session_fields(self) -> None:
        body, headers = sample_delivery(
            "mindpeeker", "session.completed", secret="whsec_mindpeeker"
        )
        delivery = make_handler("mindpeeker").verify(body, headers)
        event = delivery.events[0]
        assert isinstance(event, MindPeekerEvent)
        assert delivery.id == "event:" + str(event.id)
        assert event.id is not None and event.id.startswith("evt_")
        assert event.timestamp == datetime(2025, 1, 15, 10, 30, tzinfo=timezone.utc)
        assert event.session_id == "sess_123456789"
        assert event.session_type == "remote_viewing"
        assert event.target == "Missing person investigation"
        assert event.status == "completed"
        assert event.confidence == 0.87
        assert event.duration_minutes == 28
        assert event.coordinates == Coordinates(40.7128, -74.006)
        assert event.descriptors == ("urban environment", "water body nearby")
        assert event.sketches[0].endswith(".png")
        assert event.completed_at == datetime(2025, 1, 15, 10, 30, tzinfo=timezone.utc)
        assert event.livemode is False and event.pending_webhooks == 0
        assert event.results is not None and "coordinates" in event.results

    def test_typed_analysis_and_dowsing_fields(self) -> None:
        handler = make_handler("mindpeeker")
        analysis = handler.verify(
            *sample_delivery("mindpeeker", "analysis.completed", secret="whsec_mindpeeker")
        ).events[0]
        assert isinstance(analysis, MindPeekerEvent)
        assert analysis.analysis_id == "anal_123456789"
        assert analysis.target_type == "location"
        assert analysis.summary is not None and analysis.summary.startswith("Analysis reveals")
        assert analysis.key_findings == (
            "Structural anomalies detected",
            "Temporal inconsistencies present",
        )
        assert analysis.risk_level == "medium"
        assert analysis.processing_time == "45 minutes"
        assert analysis.confidence == 0.91
        dowsing = handler.verify(
            *sample_delivery("mindpeeker", "dowsing.query_completed", secret="whsec_mindpeeker")
        ).events[0]
        assert isinstance(dowsing, MindPeekerEvent)
        assert dowsing.query_id == "dowse_123456789"
        assert dowsing.query_type == "location"
        assert dowsing.question == "Find optimal location for water well"
        assert dowsing.answer == "positive"
        assert dowsing.confidence == 0.89
        assert dowsing.coordinates == Coordinates(40.7132, -74.0058, 15.0)
        assert dowsing.chart_data is not None and dowsing.chart_data["readings"] == [
            0.8,
            0.6,
            0.9,
            0.7,
        ]
        failed = handler.verify(
            *sample_delivery("mindpeeker", "session.failed", secret="whsec_mindpeeker")
        ).events[0]
        assert isinstance(failed, MindPeekerEvent)
        assert failed.error == "Session was cancelled"
        progress = handler.verify(
            *sample_delivery("mindpeeker", "session.progress_updated", secret="whsec_mindpeeker")
        ).events[0]
        assert isinstance(progress, MindPeekerEvent)
        assert progress.progress == 40.0

    def test_the_test_endpoint_shape_without_id_uses_the_body_hash_as_key(self) -> None:
        body = json.dumps(
            {"type": "session.completed", "data": {"session_id": "test_session_123"}}
        ).encode()
        delivery = make_handler("mindpeeker").verify(
            body, sign("mindpeeker", body, secret="whsec_mindpeeker")
        )
        assert delivery.id == "sha256:" + hashlib.sha256(body).hexdigest()
        event = delivery.events[0]
        assert isinstance(event, MindPeekerEvent)
        assert event.id is None and event.timestamp is None and event.livemode is None

    def test_odd_field_types_read_as_none(self) -> None:
        data: dict[str, Any] = {
            "confidence_score": "high",
            "completed_at": 5,
            "coordinates": {"latitude": "north"},
            "results": ["not", "an", "object"],
            "error": {"message": "nested"},
        }
        body = json.dumps(
            {"id": "evt_x", "type": "session.failed", "data": data, "created_at": "yesterday"}
        ).encode()
        event = (
            make_handler("mindpeeker")
            .verify(body, sign("mindpeeker", body, secret="whsec_mindpeeker"))
            .events[0]
        )
        assert isinstance(event, MindPeekerEvent)
        assert event.confidence is None and event.completed_at is None and event.coordinates is None
        assert event.results is None and event.descriptors == () and event.summary is None
        assert event.risk_level is None and event.timestamp is None
        assert event.error == "nested"

    def test_missing_type(self) -> None:
        body = b'{"id": "evt_1", "data": {}}'
        with pytest.raises(MalformedPayload, match="type"):
            make_handler("mindpeeker").verify(
                body, sign("mindpeeker", body, secret="whsec_mindpeeker")
            )


class TestMoco:
    def test_headers_name_the_event_and_give_context(self) -> None:
        body, headers = sample_delivery(
            "moco",
            "project.update",
            secret=CREDENTIALS["moco"]["secret"],
            timestamp=1527170410463,
            user_id=42,
        )
        delivery = make_handler("moco").verify(body, headers)
        event = delivery.events[0]
        assert isinstance(event, MocoEvent)
        assert headers["X-Moco-Target"] == "Project"
        assert (event.type, event.target, event.action) == ("project.update", "Project", "update")
        assert event.user_id == 42
        assert event.account_url == "https://example.mocoapp.com"
        assert event.timestamp == datetime(2018, 5, 24, 14, 0, 10, 463000, tzinfo=timezone.utc)
        assert event.entity_id == 944504145
        assert event.data["name"] == "Website Relaunch"
        assert delivery.id == f"sha256:{hashlib.sha256(body).hexdigest()}:project.update"

    def test_missing_context_headers_still_acknowledge(self) -> None:
        body = b'{"id": 1}'
        handler = make_handler("moco")
        outcome = handler.handle(
            body,
            {"X-Moco-Signature": sign("moco", body, **CREDENTIALS["moco"])["X-Moco-Signature"]},
        )
        assert outcome.status == 200
        assert outcome.delivery is not None
        event = outcome.delivery.events[0]
        assert isinstance(event, MocoEvent)
        assert event.type == "unknown.unknown"
        assert event.timestamp is None and event.user_id is None and event.account_url is None


class TestMoonsense:
    @pytest.mark.parametrize(
        ("event_type", "expected"),
        [
            (1, "session.created"),
            ("2", "bundle.received"),
            ("CHUNK_PERSISTED", "chunk.persisted"),
            ("EVENT_TYPE_SESSION_INACTIVE", "session.inactive"),
            (9, "event_type.9"),
            ("SOMETHING_NEW", "something.new"),
        ],
    )
    def test_event_type_as_number_string_or_enum_name(
        self, event_type: object, expected: str
    ) -> None:
        body = json.dumps({"session_id": "s", "event_type": event_type}).encode()
        event = (
            make_handler("moonsense")
            .verify(body, sign("moonsense", body, **CREDENTIALS["moonsense"]))
            .events[0]
        )
        assert event.type == expected

    def test_missing_event_type_falls_back_to_the_event_header(self) -> None:
        body = b'{"session_id": "s"}'
        headers = sign("moonsense", body, event="Session Created", **CREDENTIALS["moonsense"])
        assert make_handler("moonsense").verify(body, headers).events[0].type == "session.created"
        headers.pop("X-Moonsense-Event")
        assert make_handler("moonsense").verify(body, headers).events[0].type == "unknown"

    def test_bundle_fields_and_microsecond_server_time(self) -> None:
        body, headers = sample_delivery("moonsense", "bundle.received", **CREDENTIALS["moonsense"])
        event = make_handler("moonsense").verify(body, headers).events[0]
        assert isinstance(event, MoonsenseEvent)
        assert event.project_id == "YsPHHmXUbyGzazfFvhABpf"
        assert event.app_id == "Wyk48mvsheCX4rg5d954tj"
        assert event.session_id == "XrwfjYoiUisvBMPLZvD2bh"
        assert event.journey_id is not None and event.client_session_group_id == ""
        assert event.session_labels == ()
        assert event.event_code == 2
        assert event.credential_id == "a7RZotQQqYn7wbpei2hAhV"
        assert event.server_time_raw == 1639623767326671
        assert event.server_time == datetime(2021, 12, 16, 3, 2, 47, 326671, tzinfo=timezone.utc)
        assert event.timestamp == event.server_time
        assert event.client_time == datetime(2021, 12, 16, 3, 2, 46, 810000, tzinfo=timezone.utc)
        assert event.bundle_index == 1
        assert event.bundle is not None and "bundle" in event.bundle
        assert len(event.bundle_data("focus_change_data")) == 1
        assert event.bundle_data("nothing") == []

    def test_chunk_persisted_has_no_bundle(self) -> None:
        event = (
            make_handler("moonsense")
            .verify(*sample_delivery("moonsense", "chunk.persisted", **CREDENTIALS["moonsense"]))
            .events[0]
        )
        assert isinstance(event, MoonsenseEvent)
        assert event.bundle is None and event.server_time is None and event.client_time is None
        assert (
            event.bundle_index is None and event.credential_id is None and event.timestamp is None
        )

    def test_64bit_integers_as_strings_and_labels(self) -> None:
        body = json.dumps(
            {
                "event_type": "SESSION_CREATED",
                "session_labels": [{"name": "vip"}],
                "bundle": {"server_time_millis": "1639623767326"},
            }
        ).encode()
        event = (
            make_handler("moonsense")
            .verify(body, sign("moonsense", body, **CREDENTIALS["moonsense"]))
            .events[0]
        )
        assert isinstance(event, MoonsenseEvent)
        assert event.event_code == 1
        assert event.server_time == datetime(2021, 12, 16, 3, 2, 47, 326000, tzinfo=timezone.utc)
        assert event.session_labels == ({"name": "vip"},)

    def test_form_body_signed_over_the_raw_body(self) -> None:
        form = "application/x-www-form-urlencoded"
        body, headers = sample_delivery(
            "moonsense", "bundle.received", content_type=form, **CREDENTIALS["moonsense"]
        )
        assert body.startswith(b"payload=")
        assert make_handler("moonsense").verify(body, headers).events[0].type == "bundle.received"

    def test_form_body_signed_over_the_payload_field(self) -> None:
        form = "application/x-www-form-urlencoded"
        payload = sample_body("moonsense", "session.created")
        body = urllib.parse.urlencode({"payload": payload.decode()}).encode()
        headers = sign("moonsense", payload, content_type=form, **CREDENTIALS["moonsense"])
        delivery = make_handler("moonsense").verify(body, headers)
        assert delivery.events[0].type == "session.created"

    def test_a_json_delivery_and_its_form_twin_are_one_delivery(self) -> None:
        # The payload-only signature of a JSON body also verifies the same JSON sent
        # as a form: both are one signed event, so both get one key.
        body, headers = sample_delivery("moonsense", "session.created", **CREDENTIALS["moonsense"])
        twin = urllib.parse.urlencode({"payload": body.decode()}).encode()
        form_headers = {**headers, "Content-Type": "application/x-www-form-urlencoded"}
        handler = make_handler("moonsense")
        assert handler.verify(twin, form_headers).id == handler.verify(body, headers).id
        assert handler.verify(body, headers).id == "sha256:" + hashlib.sha256(body).hexdigest()
        seen: list[object] = []
        handler.on("*")(seen.append)
        assert handler.handle(body, headers).dispatched == 1
        assert handler.handle(twin, form_headers).duplicate
        assert len(seen) == 1

    @pytest.mark.parametrize(
        "extra",
        [b"&n=1", b"&n=2", b"&payload=%7B%7D", b"&=", b"&n", b"&signature=x"],
    )
    def test_a_payload_signature_covers_only_a_form_of_that_field_alone(self, extra: bytes) -> None:
        # A captured JSON delivery re-sent as payload=<the JSON>&n=1, &n=2...: each one
        # verified over its payload, and each got a new key from its other bytes.
        body, headers = sample_delivery("moonsense", "session.created", **CREDENTIALS["moonsense"])
        form_headers = {**headers, "Content-Type": "application/x-www-form-urlencoded"}
        replay = urllib.parse.urlencode({"payload": body.decode()}).encode() + extra
        handler = make_handler("moonsense")
        seen: list[object] = []
        handler.on("*")(seen.append)
        assert handler.handle(body, headers).dispatched == 1
        with pytest.raises(InvalidSignature, match="exactly one 'payload' field") as caught:
            handler.verify(replay, form_headers)
        assert caught.value.status == 401
        assert handler.handle(replay, form_headers).status == 401
        assert len(seen) == 1

    def test_a_form_signed_whole_may_carry_other_fields_and_is_keyed_on_its_payload(
        self,
    ) -> None:
        payload = sample_body("moonsense", "session.created")
        body = urllib.parse.urlencode({"payload": payload.decode(), "n": "1"}).encode()
        form = "application/x-www-form-urlencoded"
        headers = sign("moonsense", body, content_type=form, **CREDENTIALS["moonsense"])
        delivery = make_handler("moonsense").verify(body, headers)
        assert delivery.events[0].type == "session.created"
        assert delivery.id == "sha256:" + hashlib.sha256(payload).hexdigest()

    @pytest.mark.parametrize("body", [b"other=1", b"payload=1&payload=2", b"payload=%ff"])
    def test_bad_forms(self, body: bytes) -> None:
        headers = sign(
            "moonsense",
            body,
            content_type="application/x-www-form-urlencoded",
            **CREDENTIALS["moonsense"],
        )
        with pytest.raises(MalformedPayload):
            make_handler("moonsense").verify(body, headers)

    def test_a_form_too_broken_to_decode_is_an_authentication_failure(self) -> None:
        body = b"payload=%ff"
        headers = sign(
            "moonsense",
            b"x",
            content_type="application/x-www-form-urlencoded",
            **CREDENTIALS["moonsense"],
        )
        with pytest.raises(WebhookError) as info:
            make_handler("moonsense").verify(body, headers)
        assert info.value.status == 401

    def test_empty_form(self) -> None:
        headers = sign(
            "moonsense",
            b"",
            content_type="application/x-www-form-urlencoded",
            **CREDENTIALS["moonsense"],
        )
        with pytest.raises(EmptyBody):
            make_handler("moonsense").verify(b"", headers)


class TestPetal:
    def _event(self, kind: str, data: dict[str, Any] | None = None) -> PetalEvent:
        body, headers = sample_delivery("petal", kind, data, **CREDENTIALS["petal"])
        event = make_handler("petal").verify(body, headers).events[0]
        assert isinstance(event, PetalEvent)
        return event

    def test_stream_fields(self) -> None:
        event = self._event("blink")
        assert event.blink == 1.0 and event.eye is None
        assert event.id == "21"
        assert event.lsl_ts == 1214.697467542195 and event.unix_ts == 1633343930.865
        assert event.last_eeg_id == 2895
        assert event.action_time == 1214.697467542195 and event.action_value == 1
        assert event.timestamp == datetime(2021, 10, 4, 10, 38, 50, 865000, tzinfo=timezone.utc)
        assert event.bandpower is None and event.artifacts is None

    def test_bad_data_is_a_sentinel_not_a_number(self) -> None:
        event = self._event(
            "bandpower",
            {"bandpower": {"ch1": {"delta": "bad_data", "theta": 1, "alpha": "0.5", "beta": None}}},
        )
        bands = event.bandpower
        assert bands is not None
        assert bands["ch1"].delta is BAD_DATA
        assert (bands["ch1"].theta, bands["ch1"].alpha, bands["ch1"].beta) == (1.0, 0.5, None)
        assert bands["ch2"].delta is None
        with pytest.raises(TypeError, match="is BAD_DATA"):
            bool(BAD_DATA)
        assert repr(BAD_DATA) == "BAD_DATA"

    def test_metrics_array_in_lsl_order(self) -> None:
        event = self._event("metrics")
        assert event.blink == 0.0 and event.eye == 0.0
        assert event.artifacts == {"ch1": False, "ch2": False, "ch3": True, "ch4": False}
        bands = event.bandpower
        assert bands is not None
        assert (bands["ch1"].alpha, bands["ch1"].beta, bands["ch1"].theta, bands["ch1"].delta) == (
            0.93,
            0.27,
            0.42,
            0.51,
        )
        assert bands["ch4"].alpha is BAD_DATA

    def test_metrics_json_and_artifact_detect(self) -> None:
        event = self._event("metricsJson")
        assert event.blink == 0.0 and event.eye == 0.0
        assert event.artifacts == {"ch1": False, "ch2": False, "ch3": True, "ch4": False}
        bands = event.bandpower
        assert bands is not None and bands["ch1"].alpha == 0.93 and bands["ch4"].delta is BAD_DATA
        detect = self._event(
            "artifact-detect",
            {"artifact_detect": {"ch1": 1, "ch2": 0, "ch3": "bad_data", "ch4": 1}},
        )
        assert detect.artifacts == {"ch1": False, "ch2": True, "ch3": BAD_DATA, "ch4": False}

    def test_short_or_missing_metrics_read_as_none(self) -> None:
        short = self._event("metrics", {"metrics": [0, 1]})
        assert short.blink is None and short.bandpower is None and short.artifacts is None
        empty = self._event("metricsJson", {"metrics": "nope"})
        assert empty.blink is None and empty.bandpower is None and empty.artifacts is None
        assert self._event("bandpower", {"bandpower": 3}).bandpower is None
        assert self._event("artifact-detect", {"artifact_detect": None}).artifacts is None

    def test_batch_form_yields_several_events(self) -> None:
        body = json.dumps(
            {
                "timestamp": 1700000000.5,
                "device_id": "muse-1",
                "batch": [
                    {"type": "blink", "timestamp": 1700000000.1, "data": {"blink": {"blink": 1}}},
                    {
                        "type": "eye",
                        "timestamp": "2023-11-14T22:13:20Z",
                        "data": {"eye": {"eye": "bad_data"}},
                    },
                ],
            }
        ).encode()
        delivery = make_handler("petal").verify(body, sign("petal", body, **CREDENTIALS["petal"]))
        first, second = delivery.events
        assert isinstance(first, PetalEvent) and isinstance(second, PetalEvent)
        assert (first.type, first.blink, first.device_id) == ("blink", 1.0, "muse-1")
        assert second.eye is BAD_DATA
        assert second.timestamp == datetime(2023, 11, 14, 22, 13, 20, tzinfo=timezone.utc)

    def test_python_quoted_body_from_the_page_is_rejected_not_evaluated(self) -> None:
        body = b"{'type': 'blink', 'data': {'blink': {'blink': __import__('os').getpid()}}}"
        with pytest.raises(MalformedPayload):
            make_handler("petal").verify(body, sign("petal", body, **CREDENTIALS["petal"]))

    @pytest.mark.parametrize("body", [b'{"batch": [1]}', b'{"batch": [{"data": {}}]}'])
    def test_malformed_messages(self, body: bytes) -> None:
        with pytest.raises(MalformedPayload):
            make_handler("petal").verify(body, sign("petal", body, **CREDENTIALS["petal"]))

    def test_form_encoded_message(self) -> None:
        form = "application/x-www-form-urlencoded"
        body, headers = sample_delivery("petal", "eye", content_type=form, **CREDENTIALS["petal"])
        assert make_handler("petal").verify(body, headers).events[0].type == "eye"


class TestMomentum:
    def test_batch_of_every_class_with_typed_fields(self) -> None:
        body = sample_batch(
            [
                "delivery",
                "bounce",
                "click",
                "generation_failure",
                "link_unsubscribe",
                "relay_delivery",
            ]
        )
        delivery = make_handler("momentum").verify(
            body, sign("momentum", body, batch_id="b-7", **CREDENTIALS["momentum"])
        )
        assert delivery.id == "batch:b-7:sha256:" + hashlib.sha256(body).hexdigest()
        classes = [e.event_class for e in delivery.events if isinstance(e, MomentumEvent)]
        assert classes == [
            "message_event",
            "message_event",
            "track_event",
            "gen_event",
            "unsubscribe_event",
            "relay_event",
        ]
        bounce, click = delivery.events[1], delivery.events[2]
        assert isinstance(bounce, MomentumEvent) and isinstance(click, MomentumEvent)
        assert bounce.bounce_class == 10 and bounce.error_code == "554"
        assert bounce.reason is not None and bounce.raw_reason is not None
        assert bounce.recipient == "recipient@example.com" == bounce.raw_recipient
        assert (
            bounce.message_id == "000443ee14578172be22"
            and bounce.transmission_id == "65832150921904138"
        )
        assert bounce.campaign_id == "Example Campaign Name" and bounce.template_id == "templ-1234"
        assert bounce.subject and bounce.friendly_from == "sender@example.com"
        assert bounce.sending_ip == "127.0.0.1" and bounce.customer_id == "1"
        assert bounce.injection_time == datetime(2016, 4, 19, 21, 34, 24, tzinfo=timezone.utc)
        assert bounce.tags == ("male", "US") and bounce.metadata == {"customKey": "customValue"}
        assert (
            click.target_link_url == "https://example.com"
            and click.target_link_name == "Example Link"
        )
        assert click.user_agent is not None and click.ip_address == "127.0.0.1"
        assert click.id is not None and click.id.isdigit()
        assert click.timestamp is not None and click.timestamp.tzinfo is timezone.utc
        delay = (
            make_handler("momentum")
            .verify(*sample_delivery("momentum", "delay", **CREDENTIALS["momentum"]))
            .events[0]
        )
        assert isinstance(delay, MomentumEvent) and delay.num_retries == 1

    def test_unknown_classes_and_types_pass_through(self) -> None:
        body = json.dumps(
            [
                {
                    "msys": {
                        "future_event": {
                            "type": "hologram",
                            "event_id": "e-1",
                            "timestamp": 1700000000,
                        }
                    }
                },
                {"msys": {"track_event": {"event_id": "e-2"}}},
            ]
        ).encode()
        events = (
            make_handler("momentum")
            .verify(body, sign("momentum", body, **CREDENTIALS["momentum"]))
            .events
        )
        assert [(e.type, e.id) for e in events] == [("hologram", "e-1"), ("track_event", "e-2")]
        assert events[1].timestamp is None
        assert (
            isinstance(events[1], MomentumEvent)
            and events[1].tags == ()
            and events[1].metadata == {}
        )

    @pytest.mark.parametrize(
        "body",
        [
            b'{"msys": []}',
            b'{"other": {}}',
            b"[1]",
            b'[{"msys": []}]',
            b'[{"msys": {"track_event": 5}}]',
        ],
    )
    def test_malformed_batches(self, body: bytes) -> None:
        with pytest.raises(MalformedPayload):
            make_handler("momentum").verify(body, sign("momentum", body, **CREDENTIALS["momentum"]))

    def test_without_batch_header_the_body_hash_is_the_key(self) -> None:
        body = sample_batch(["open"])
        headers = sign("momentum", body, **CREDENTIALS["momentum"])
        headers.pop("X-MessageSystems-Batch-ID")
        delivery = make_handler("momentum").verify(body, headers)
        assert delivery.id.startswith("sha256:")
