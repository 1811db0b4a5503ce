"""MindPeeker: ``X-MindPeeker-Signature: sha256=<hex>`` over the raw body.

Rules (from MindPeeker's documentation, "Webhooks"):

* HMAC-SHA256 of the raw body, keyed with the secret's UTF-8 bytes, sent as
  ``sha256=`` and lower-case hex: the :data:`MINDPEEKER` description.
* The body is one event: ``{"id": "evt_...", "type", "created_at", "data", "livemode",
  "pending_webhooks"}``.  The signed ``id`` is the de-duplication key: it is the same
  on each of the seven attempts of one delivery (over 1 h 42 min), and so is
  ``created_at``, which is why a timestamp window would not stop a replay.  A body
  with no id (the test endpoint's shape) is keyed on its SHA-256, which covers its type.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar, Final

from .._core.events import Event, as_float, as_int, from_iso
from .._core.frozen_json import FrozenObject, unwrap
from .._core.headers import Headers
from ._base import MIB, DemoScript
from ._hmac import EventFields, HmacProvider, HmacSender

__all__ = [
    "MINDPEEKER",
    "MINDPEEKER_IPS",
    "Coordinates",
    "MindPeekerEvent",
    "MindPeekerProvider",
]


@dataclass(frozen=True, slots=True)
class Coordinates:
    """A location in a session, analysis or dowsing result."""

    latitude: float
    longitude: float
    accuracy_meters: float | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class MindPeekerEvent(Event):
    """An event from MindPeeker; typed properties read the documented ``data`` fields.

    ``livemode`` and ``pending_webhooks`` come from the envelope around ``data``.
    """

    livemode: bool | None = None
    pending_webhooks: int | None = None

    @property
    def session_id(self) -> str | None:
        """The session this event is about (``session.*`` events)."""
        return self._str("session_id")

    @property
    def analysis_id(self) -> str | None:
        """The analysis this event is about (``analysis.*`` events)."""
        return self._str("analysis_id")

    @property
    def query_id(self) -> str | None:
        """The dowsing query this event is about (``dowsing.*`` events)."""
        return self._str("query_id")

    @property
    def status(self) -> str | None:
        """The session's, analysis's or query's status (``"completed"``, ``"failed"``...)."""
        return self._str("status")

    @property
    def confidence(self) -> float | None:
        """``confidence_score`` (sessions, analyses) or ``confidence`` (dowsing queries)."""
        raw = unwrap(self.data)
        return as_float(raw.get("confidence_score", raw.get("confidence")))

    @property
    def completed_at(self) -> datetime | None:
        """When the session, analysis or query completed."""
        return from_iso(self._get("completed_at"))

    @property
    def session_type(self) -> str | None:
        """The kind of session (``"remote_viewing"``...); ``data.type`` in the payload."""
        return self._str("type")

    @property
    def target(self) -> str | None:
        """The session's target description."""
        return self._str("target")

    @property
    def target_type(self) -> str | None:
        """What an analysis looks at (``"location"``...)."""
        return self._str("target_type")

    @property
    def duration_minutes(self) -> int | None:
        """How long a session took."""
        return as_int(self._get("duration_minutes"))

    @property
    def progress(self) -> float | None:
        """A session's progress, for ``session.progress_updated``."""
        raw = unwrap(self.data)
        return as_float(raw.get("progress", raw.get("progress_percent")))

    @property
    def results(self) -> FrozenObject | None:
        """The ``results`` object of a completed session or analysis."""
        return self._object("results")

    @property
    def coordinates(self) -> Coordinates | None:
        """``coordinates`` of a dowsing query, or ``results.coordinates`` of a session."""
        raw = unwrap(self.data)
        value = raw.get("coordinates")
        if value is None and isinstance(raw.get("results"), dict):
            value = raw["results"].get("coordinates")
        if not isinstance(value, dict):
            return None
        latitude, longitude = as_float(value.get("latitude")), as_float(value.get("longitude"))
        if latitude is None or longitude is None:
            return None
        return Coordinates(latitude, longitude, as_float(value.get("accuracy_meters")))

    @property
    def descriptors(self) -> tuple[str, ...]:
        """A session's ``results.descriptors``."""
        return self._result_strings("descriptors")

    @property
    def sketches(self) -> tuple[str, ...]:
        """URLs of a session's ``results.sketches``."""
        return self._result_strings("sketches")

    @property
    def summary(self) -> str | None:
        """An analysis's ``results.summary``."""
        results = self._get("results")
        value = results.get("summary") if isinstance(results, dict) else None
        return value if isinstance(value, str) else None

    @property
    def key_findings(self) -> tuple[str, ...]:
        """An analysis's ``results.key_findings``."""
        return self._result_strings("key_findings")

    @property
    def risk_level(self) -> str | None:
        """An analysis's ``results.risk_assessment.level``."""
        results = self._get("results")
        risk = results.get("risk_assessment") if isinstance(results, dict) else None
        level = risk.get("level") if isinstance(risk, dict) else None
        return level if isinstance(level, str) else None

    @property
    def processing_time(self) -> str | None:
        """An analysis's ``processing_time`` as MindPeeker writes it (``"45 minutes"``)."""
        return self._str("processing_time")

    @property
    def query_type(self) -> str | None:
        """A dowsing query's ``query_type``."""
        return self._str("query_type")

    @property
    def question(self) -> str | None:
        """A dowsing query's question."""
        return self._str("question")

    @property
    def answer(self) -> str | None:
        """A dowsing query's answer (``"positive"``...)."""
        return self._str("answer")

    @property
    def chart_data(self) -> FrozenObject | None:
        """A dowsing query's ``chart_data``."""
        return self._object("chart_data")

    @property
    def error(self) -> str | None:
        """Why a session, analysis or query failed (``error`` or ``reason``)."""
        raw = unwrap(self.data)
        value = raw.get("error", raw.get("reason"))
        if isinstance(value, dict):
            value = value.get("message")
        return value if isinstance(value, str) else None

    def _result_strings(self, key: str) -> tuple[str, ...]:
        results = self._get("results")
        values = results.get(key) if isinstance(results, dict) else None
        if not isinstance(values, list):
            return ()
        return tuple(v for v in values if isinstance(v, str))


#: MindPeeker's scheme and envelope, as an :class:`HmacSender` description.
MINDPEEKER = HmacSender(
    name="mindpeeker",
    title="MindPeeker",
    signature_header="X-MindPeeker-Signature",
    signature_prefix="sha256=",
    type_field="type",
    id_field="id",
    time_field="created_at",
    data_field="data",
    # One envelope (`id`, `type`, `created_at`, `data`) per delivery, a few KB in the
    # documentation's examples, which give no cap.  1 MiB leaves a wide margin.
    max_body_size=MIB,
    event_class=MindPeekerEvent,
    event_types=(
        "session.created",
        "session.started",
        "session.completed",
        "session.failed",
        "session.progress_updated",
        "analysis.created",
        "analysis.started",
        "analysis.completed",
        "analysis.failed",
        "dowsing.query_created",
        "dowsing.query_completed",
        "dowsing.query_failed",
        "account.subscription_updated",
        "account.usage_threshold_reached",
        "account.payment_succeeded",
        "account.payment_failed",
        "system.maintenance_scheduled",
        "system.service_disruption",
        "system.security_alert",
        "webhook.failed",
    ),
)


class MindPeekerProvider(HmacProvider):
    """MindPeeker's webhooks."""

    sender = MINDPEEKER
    test_credentials: ClassVar[Mapping[str, Any]] = {"secret": "whsec_mindpeeker"}
    parse_headers = ()  # everything is in the signed envelope
    demo = DemoScript(
        credentials={"secret": "whsec_demo"},
        event_types=("session.completed",),
        accepted="X-MindPeeker-Signature verified",
        attacks=("forged", "unsigned"),
    )
    # Seven attempts, the last 1 h 42 min 35 s after the first (the page's table).
    retry_window = 1 * 3600 + 42 * 60 + 35.0

    def make_event(self, payload: Any, headers: Headers, fields: EventFields) -> Event:
        """The event with its envelope's ``livemode`` and ``pending_webhooks``."""
        if not isinstance(payload.get("created_at"), str):
            fields["timestamp"] = None  # ISO 8601 text only, as MindPeeker writes it
        livemode = payload.get("livemode")
        return MindPeekerEvent(
            **fields,
            livemode=livemode if type(livemode) is bool else None,
            pending_webhooks=as_int(payload.get("pending_webhooks")),
        )

    def sample(self, event_type: str, overrides: Mapping[str, Any]) -> bytes:
        """An envelope in MindPeeker's documented shape."""
        data = dict(_SAMPLE_DATA.get(event_type.partition(".")[0], {}))
        data.update(_SAMPLE_DATA.get(event_type, {}))
        data.update(overrides)
        envelope = {
            "id": "evt_" + secrets.token_hex(8),
            "type": event_type,
            "created_at": "2025-01-15T10:30:00Z",
            "data": data,
            "livemode": False,
            "pending_webhooks": 0,
        }
        return json.dumps(envelope, allow_nan=False).encode("utf-8")


_SESSION = {"session_id": "sess_123456789", "type": "remote_viewing", "status": "pending"}
_ANALYSIS = {"analysis_id": "anal_123456789", "target_type": "location", "status": "queued"}
_QUERY = {"query_id": "dowse_123456789", "query_type": "location", "status": "pending"}

# Shapes from the examples of MindPeeker's "Webhooks" page, filled in for the
# undocumented types.
_SAMPLE_DATA: dict[str, dict[str, Any]] = {
    "session": _SESSION,
    "analysis": _ANALYSIS,
    "dowsing": _QUERY,
    "session.started": {"status": "processing"},
    "session.progress_updated": {"status": "processing", "progress": 40},
    "session.completed": {
        "target": "Missing person investigation",
        "status": "completed",
        "confidence_score": 0.87,
        "duration_minutes": 28,
        "results": {
            "coordinates": {"latitude": 40.7128, "longitude": -74.0060},
            "descriptors": ["urban environment", "water body nearby"],
            "sketches": ["https://cdn.mindpeeker.com/sketches/sess_123456789_1.png"],
        },
        "completed_at": "2025-01-15T10:30:00Z",
    },
    "session.failed": {"status": "failed", "error": "Session was cancelled"},
    "analysis.started": {"status": "processing"},
    "analysis.completed": {
        "status": "completed",
        "confidence_score": 0.91,
        "results": {
            "summary": "Analysis reveals structural anomalies...",
            "key_findings": [
                "Structural anomalies detected",
                "Temporal inconsistencies present",
            ],
            "risk_assessment": {"level": "medium", "factors": ["temporal_instability"]},
        },
        "processing_time": "45 minutes",
        "completed_at": "2025-01-15T11:15:00Z",
    },
    "analysis.failed": {"status": "failed", "error": "Analysis failed"},
    "dowsing.query_created": {"question": "Find optimal location for water well"},
    "dowsing.query_completed": {
        "question": "Find optimal location for water well",
        "answer": "positive",
        "status": "completed",
        "confidence": 0.89,
        "coordinates": {"latitude": 40.7132, "longitude": -74.0058, "accuracy_meters": 15},
        "chart_data": {
            "chart_type": "radar",
            "readings": [0.8, 0.6, 0.9, 0.7],
            "interpretation": "Strong positive response",
        },
        "completed_at": "2025-01-15T09:45:00Z",
    },
    "dowsing.query_failed": {"status": "failed", "error": "Query could not be resolved"},
    "account.subscription_updated": {"plan": "professional", "previous_plan": "starter"},
    "account.usage_threshold_reached": {"usage_percent": 80, "limit": 1000},
    "account.payment_succeeded": {"amount": 4900, "currency": "usd"},
    "account.payment_failed": {"amount": 4900, "currency": "usd", "reason": "card_declined"},
    "system.maintenance_scheduled": {
        "starts_at": "2025-02-01T02:00:00Z",
        "ends_at": "2025-02-01T04:00:00Z",
    },
    "system.service_disruption": {"severity": "major", "components": ["sessions"]},
    "system.security_alert": {"severity": "high", "message": "New API key created"},
    "webhook.failed": {"webhook_id": "wh_123456789", "attempts": 7},
}

#: The addresses MindPeeker delivers webhooks from, as its webhook page publishes them
#: ("whitelist MindPeeker's webhook IP addresses"); for ``allowed_ips=``.
MINDPEEKER_IPS: Final = ("52.52.52.52", "52.53.53.53")
