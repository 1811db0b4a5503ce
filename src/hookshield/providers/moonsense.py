"""Moonsense: ``X-Moonsense-Signature-256`` is the hex HMAC-SHA256 of the raw body.

Rules (from Moonsense's documentation, "Webhooks"):

* Lower-case hex, no ``sha256=`` prefix, keyed with the secret's UTF-8 bytes, sent only
  when a secret is set at Moonsense: without one the sender cannot sign, which is why
  an unsigned Moonsense handler is allowed (with ``allow_unsigned=True``).
* The body is JSON, or a form whose ``payload`` field holds the JSON.  The page does
  not say which bytes are signed in the form case, so both readings are accepted
  (``signs_form_payload``): the raw body first, then the decoded ``payload`` value,
  but the latter only for a form that is that one field alone.  A signature over the
  payload says nothing of other fields, and a captured JSON delivery re-sent as
  ``payload=<the JSON>&n=1``, ``&n=2`` ... would verify again and again.
* The de-duplication key is the SHA-256 of the JSON text (the body, or the form's
  decoded ``payload``): what every accepted signature covers, so that a JSON delivery
  and its form twin, however percent-encoded, are one delivery.
* ``event_type`` may be the enum number (1 Session Created, 2 Bundle Received,
  3 Chunk Persisted, 4 Session Inactive) or its protobuf enum name; 64-bit integers may
  come as strings.  ``X-Moonsense-Delivery`` and ``X-Moonsense-Event`` are unsigned.
* The page says nothing of retries, so the retry window is the undocumented default.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Any, ClassVar

from .._core.errors import MalformedPayload
from .._core.events import Delivery, Event, as_int, as_str, from_epoch_by_magnitude
from .._core.frozen_json import FrozenArray, FrozenObject, decode_json, freeze
from .._core.headers import Headers
from ._base import MIB, DemoScript, Provider, body_sha256
from ._scheme import HmacScheme

__all__ = ["MoonsenseEvent", "MoonsenseProvider"]

EVENT_CODES = {
    1: "session.created",
    2: "bundle.received",
    3: "chunk.persisted",
    4: "session.inactive",
}
_EVENT_NAMES = {name.replace(".", "_"): name for name in EVENT_CODES.values()}
_CODES_BY_NAME = {name: code for code, name in EVENT_CODES.items()}


def event_type_name(value: Any) -> str | None:
    """The dotted name for an ``event_type`` given as a number, numeric text or enum name."""
    code = as_int(value)
    if code is not None:
        return EVENT_CODES.get(code, f"event_type.{code}")
    if not isinstance(value, str) or not value.strip() or len(value) > 128:
        return None
    key = value.strip().lower().replace(" ", "_").replace("-", "_").replace(".", "_")
    key = key.removeprefix("event_type_")
    return _EVENT_NAMES.get(key, key.replace("_", ".", 1) if "_" in key else key)


class MoonsenseEvent(Event):
    """A Moonsense session event; the bundle, when there is one, under :attr:`bundle`."""

    __slots__ = ()

    @property
    def project_id(self) -> str | None:
        """The project the app sending the data belongs to."""
        return as_str(self._get("project_id"))

    @property
    def app_id(self) -> str | None:
        """The app that sent the data."""
        return as_str(self._get("app_id"))

    @property
    def session_id(self) -> str | None:
        """The session the data belongs to."""
        return as_str(self._get("session_id"))

    @property
    def journey_id(self) -> str | None:
        """The journey the session belongs to."""
        return as_str(self._get("journey_id"))

    @property
    def client_session_group_id(self) -> str | None:
        """The client session group (deprecated by Moonsense)."""
        return as_str(self._get("client_session_group_id"))

    @property
    def session_labels(self) -> tuple[Any, ...]:
        """The labels attached to the session."""
        labels = self._get("session_labels")
        return tuple(freeze(label) for label in labels) if isinstance(labels, list) else ()

    @property
    def event_code(self) -> int | None:
        """The numeric event type (1 to 4), whichever form the sender used.

        Read from the body's ``event_type``, or from the event's name where the body
        has none and the name came from the ``X-Moonsense-Event`` header.
        """
        code = as_int(self._get("event_type"))
        return code if code is not None else _CODES_BY_NAME.get(self.type)

    @property
    def bundle(self) -> FrozenObject | None:
        """The bundle wrapper of a ``bundle.received`` event (``bundle.bundle`` is the data)."""
        return self._object("bundle")

    @property
    def credential_id(self) -> str | None:
        """The credential that sent the bundle."""
        return as_str(self._bundle_field("credential_id"))

    @property
    def server_time_raw(self) -> int | None:
        """``bundle.server_time_millis`` as sent (its example holds microseconds)."""
        return as_int(self._bundle_field("server_time_millis"))

    @property
    def server_time(self) -> datetime | None:
        """When Moonsense received the bundle, read by magnitude (s, ms or µs).

        The event's ``timestamp`` is this same time, so it is returned when set.
        """
        if self.timestamp is not None:
            return self.timestamp
        return from_epoch_by_magnitude(self.server_time_raw)

    @property
    def client_time(self) -> datetime | None:
        """``bundle.bundle.client_time.wall_time_millis``: the device's clock."""
        inner = self._bundle_field("bundle")
        client = inner.get("client_time") if isinstance(inner, dict) else None
        wall = client.get("wall_time_millis") if isinstance(client, dict) else None
        return from_epoch_by_magnitude(as_int(wall))

    @property
    def bundle_index(self) -> int | None:
        """The bundle's sequence number within the session."""
        inner = self._bundle_field("bundle")
        return as_int(inner.get("index")) if isinstance(inner, dict) else None

    def bundle_data(self, kind: str) -> FrozenArray:
        """One list of the bundle's data points: ``"pointer_data"``, ``"text_change_data"``..."""
        inner = self._bundle_field("bundle")
        value = inner.get(kind) if isinstance(inner, dict) else None
        return FrozenArray(value) if isinstance(value, list) else FrozenArray()

    def _bundle_field(self, key: str) -> Any:
        bundle = self._get("bundle")
        return bundle.get(key) if isinstance(bundle, dict) else None


#: Lower-case hex of the raw body (or of a lone form ``payload``), no prefix.
SCHEME = HmacScheme(signature_header="X-Moonsense-Signature-256")


class MoonsenseProvider(Provider):
    """Moonsense Cloud's webhooks."""

    name = "moonsense"
    title = "Moonsense"
    event_class = MoonsenseEvent
    event_types = tuple(EVENT_CODES.values())
    accepts = frozenset({"secret"})
    can_be_unsigned = True
    accepts_form = True
    scheme = SCHEME
    signs_form_payload = True
    test_credentials: ClassVar[Mapping[str, Any]] = {"secret": "moonsense-secret"}
    # Bundle Received carries a bundle, "a collection of data points" (pointer, text
    # and focus changes, in Moonsense's webhooks documentation), of a size it does not
    # give; form encoding up to triples its JSON.  4 MiB, four times a single-event sender's.
    default_max_body_size = 4 * MIB
    parse_headers = ("X-Moonsense-Event",)  # the type, where the body has none
    # Replayed: the signed body of the valid delivery again, with a new delivery GUID.
    # The GUID is not signed, so the receiver recognises the body, not the GUID.
    demo = DemoScript(
        credentials={"secret": "demo-moonsense-secret"},
        event_types=("bundle.received",),
        accepted="X-Moonsense-Signature-256 verified",
        attacks=("replayed",),
    )

    def parse(self, body: bytes, headers: Headers, signature: str | None) -> Delivery:
        """One event from the session payload."""
        text = self.payload_text(body, headers)
        payload = decode_json(text)
        if not isinstance(payload, dict):
            raise MalformedPayload("a Moonsense payload is a JSON object")
        # The JSON text, which every accepted signature covers (see the docstring).
        delivery_id = body_sha256(text)
        kind = event_type_name(payload.get("event_type"))
        if kind is None:
            # The signed body is authoritative; the unsigned header only fills a gap,
            # and then it is part of the key, as MOCO's are.
            kind = event_type_name(headers.get("x-moonsense-event")) or "unknown"
            delivery_id += ":" + kind
        bundle = payload.get("bundle")
        server_time = bundle.get("server_time_millis") if isinstance(bundle, dict) else None
        event = MoonsenseEvent(
            provider="moonsense",
            type=kind,
            timestamp=from_epoch_by_magnitude(as_int(server_time)),
            data=FrozenObject(payload),
        )
        return Delivery(
            provider="moonsense", id=delivery_id, events=(event,), headers=headers, body=body
        )

    def sign(self, body: bytes, **options: Any) -> dict[str, str]:
        """Moonsense's headers; the signature only when a secret is given, as Moonsense does."""
        event = str(options.get("event") or "bundle.received")
        content_type = str(options.get("content_type") or "application/json")
        headers = {
            "Content-Type": content_type,
            "X-Moonsense-Delivery": str(uuid.uuid4()),
            "X-Moonsense-Event": event,
        }
        secret = options.get("secret")
        if secret is not None:
            headers.update(SCHEME.sign(body, secret))
        return headers

    def sample(self, event_type: str, overrides: Mapping[str, Any]) -> bytes:
        """A payload in the shape of the page's example."""
        code = _CODES_BY_NAME.get(event_type, 2)
        payload: dict[str, Any] = {
            "project_id": "YsPHHmXUbyGzazfFvhABpf",
            "app_id": "Wyk48mvsheCX4rg5d954tj",
            "session_id": "XrwfjYoiUisvBMPLZvD2bh",
            "client_session_group_id": "",
            "session_labels": [],
            "journey_id": "jrn_" + uuid.uuid4().hex[:16],
            "event_type": code,
        }
        if code == 2:
            payload["bundle"] = {
                "bundle": {
                    "client_time": {
                        "wall_time_millis": 1639623766810,
                        "timer_millis": 6319,
                        "timer_realtime_millis": 6319,
                    },
                    "pointer_data": [{"determined_at": 6190, "type": 2, "x": 312.5, "y": 488.0}],
                    "index": 1,
                    "text_change_data": [
                        {"determined_at": 6201, "target": {"target_id": "email"}, "length": 7}
                    ],
                    "focus_change_data": [
                        {
                            "determined_at": 6197,
                            "type": 1,
                            "target": {
                                "target_id": "73d501c9-bde6-46aa-9913-a06897c422b1",
                                "target_type": "range",
                            },
                        }
                    ],
                },
                "app_id": "Wyk48mvsheCX4rg5d954tj",
                "credential_id": "a7RZotQQqYn7wbpei2hAhV",
                "session_id": "XrwfjYoiUisvBMPLZvD2bh",
                "server_time_millis": 1639623767326671,
            }
        payload.update(overrides)
        return json.dumps(payload, allow_nan=False).encode("utf-8")
