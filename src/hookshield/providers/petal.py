"""Petal Metrics: EEG stream messages from Muse headbands, posted unsigned to ``/``.

Rules (from Petal Metrics' documentation, "Receive Webhooks"):

* Petal does not sign.  Its newer app adds custom headers, so a shared token in a
  header of the user's choosing (``token=``, ``token_header=``), a Basic or a Bearer
  credential authenticates it; otherwise ``allow_unsigned=True`` and an IP allow-list.
* The page prints payloads with Python quotes; the wire form is JSON.  A body is never
  evaluated as Python.
* A message is ``{"type", "action": {"value", "time"}, "data": {...}}``; newer apps
  send ``{"timestamp", "device_id", "batch": [{"type", "timestamp", "data"}]}``.
* Any numeric reading may be the string ``"bad_data"``, read as :data:`BAD_DATA`.
* Not stated by the webhook page, and so marked where each is read: which electrode
  each channel is (TP9, AF7, AF8, TP10: Muse's layout); the order of the flat
  ``metrics`` array (blink, eye, artifact ch1..ch4, then alpha, beta, theta, delta
  for each of ch1..ch4: Petal's OSC page, "same format as LSL"); that
  ``metricsJson``'s bands ``"0"``..``"3"`` follow that same order; and that an
  ``artifact-detect`` 0 means an artifact and 1 a good signal (the page's example,
  all 0, matches ``metricsJson``'s all-``"artifact"`` one).
* The page says nothing of retries, so the retry window is the undocumented default.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar, Final, NamedTuple

from .._core.errors import MalformedPayload
from .._core.events import Delivery, Event, as_float, as_int, as_str, from_iso, from_unix
from .._core.frozen_json import FrozenObject, freeze, unwrap
from .._core.headers import Headers
from ._base import (
    MIB,
    DemoScript,
    Provider,
    authorization_headers,
    body_sha256,
    first_credential,
    unique_clock,
)
from ._petal_samples import SAMPLES, STREAM_FIELDS

__all__ = [
    "BAD_DATA",
    "CHANNELS",
    "CHANNEL_NAMES",
    "BadData",
    "BandPower",
    "PetalEvent",
    "PetalProvider",
    "Reading",
]

CHANNELS: Final = ("ch1", "ch2", "ch3", "ch4")
#: The electrode behind each channel: Muse's layout, not stated on the webhook page.
CHANNEL_NAMES: Final = {"ch1": "TP9", "ch2": "AF7", "ch3": "AF8", "ch4": "TP10"}
_JSON_CHANNELS = ("channel1", "channel2", "channel3", "channel4")


class BadData:
    """The type of :data:`BAD_DATA`: Petal's ``"bad_data"`` in place of a reading."""

    __slots__ = ()
    _instance: BadData | None = None

    def __new__(cls) -> BadData:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "BAD_DATA"

    def __bool__(self) -> bool:
        # Neither true nor false: a bad signal must not pass for a reading of 0 or 1.
        raise TypeError("BAD_DATA has no truth value; test it with `value is BAD_DATA`")

    def __reduce__(self) -> str:
        return "BAD_DATA"


#: Petal's ``"bad_data"``: the headband had no usable signal for this reading.
BAD_DATA: Final = BadData()

Reading = float | BadData


def reading(value: Any) -> Reading | None:
    """A numeric reading, :data:`BAD_DATA`, or ``None`` when absent or not a number."""
    if type(value) is float:  # nearly every reading of a live stream
        return value
    if value == "bad_data":
        return BAD_DATA
    return as_float(value)


class BandPower(NamedTuple):
    """The four band powers of one channel (a named tuple: cheap to build, immutable)."""

    delta: Reading | None
    theta: Reading | None
    alpha: Reading | None
    beta: Reading | None


_NO_BANDS = BandPower(None, None, None, None)
# Where each channel's delta, theta, alpha and beta are, in the order of BandPower's
# fields.  A bandpower message names them; metricsJson numbers them "0".."3", and
# the flat metrics array holds them per channel, both (unconfirmed, see the module's
# docstring) in the LSL order alpha, beta, theta, delta.
_NAMED_BANDS: Final = ("delta", "theta", "alpha", "beta")
_JSON_BANDS: Final = ("3", "2", "0", "1")
_METRICS_BANDS: Final = tuple(
    (ch, (9 + 4 * i, 8 + 4 * i, 6 + 4 * i, 7 + 4 * i)) for i, ch in enumerate(CHANNELS)
)
# Where each channel's artifact flag sits in a metrics array.
_METRICS_ARTIFACTS: Final = tuple((ch, 2 + i) for i, ch in enumerate(CHANNELS))


@dataclass(frozen=True, slots=True, kw_only=True)
class PetalEvent(Event):
    """One EEG stream message; ``type`` is Petal's (``"blink"``, ``"bandpower"``, ...).

    ``id`` is the stream's message counter (``data.id``), which restarts with the
    stream: it orders messages, it does not identify them across streams.
    """

    device_id: str | None = None
    action: FrozenObject | None = None

    @property
    def action_value(self) -> Any:
        """``action.value``: the reading in the shape Petal's LSL stream gives it.

        ``"bad_data"`` reads as :data:`BAD_DATA`, alone or in an array (returned as a
        tuple).  ``metricsJson``'s object is returned read-only as it came: its
        readings, with the sentinel, are :attr:`blink`, :attr:`eye`,
        :attr:`artifacts` and :attr:`bandpower`.
        """
        if self.action is None:
            return None
        value = unwrap(self.action).get("value")
        if isinstance(value, list):
            return tuple(BAD_DATA if item == "bad_data" else freeze(item) for item in value)
        return BAD_DATA if value == "bad_data" else freeze(value)

    @property
    def action_time(self) -> float | None:
        """``action.time``: the LSL time of the reading."""
        return None if self.action is None else as_float(unwrap(self.action).get("time"))

    @property
    def lsl_ts(self) -> float | None:
        """The reading's LSL timestamp."""
        return as_float(self._get("lsl_ts"))

    @property
    def lsl_eeg_fill_ts(self) -> float | None:
        """``lsl_eeg_fill_ts``, an LSL time the page gives without defining it."""
        return as_float(self._get("lsl_eeg_fill_ts"))

    @property
    def lsl_api_call_ts(self) -> float | None:
        """``lsl_api_call_ts``, an LSL time the page gives without defining it."""
        return as_float(self._get("lsl_api_call_ts"))

    @property
    def lsl_api_recv_ts(self) -> float | None:
        """``lsl_api_recv_ts``, an LSL time the page gives without defining it."""
        return as_float(self._get("lsl_api_recv_ts"))

    @property
    def unix_ts(self) -> float | None:
        """The reading's Unix timestamp in seconds."""
        return as_float(self._get("unix_ts"))

    @property
    def last_eeg_id(self) -> int | None:
        """The id of the last EEG sample the reading is computed from."""
        return as_int(self._get("last_eeg_id"))

    @property
    def blink(self) -> Reading | None:
        """1.0 if a blink was detected, 0.0 if not (``blink``, ``metrics*`` messages).

        In a ``metrics`` array it is the first value, by the order the webhook page
        does not state (see the module's docstring).
        """
        return self._metric("blink", 0)

    @property
    def eye(self) -> Reading | None:
        """The eye-movement reading (``eye``, ``metrics*`` messages).

        In a ``metrics`` array it is the second value, by the same unstated order.
        """
        return self._metric("eye", 1)

    @property
    def artifacts(self) -> dict[str, bool | BadData] | None:
        """Per channel, ``True`` where an artifact (bad contact, movement) was detected.

        Read as 0 = artifact, 1 = good for ``artifact-detect`` and ``metrics``, and
        ``"good"`` or not for ``metricsJson``: the page's examples agree with this,
        but the page does not state it.
        """
        raw = unwrap(self.data)
        if self.type == "artifact-detect":
            channels = raw.get("artifact_detect")
            if not isinstance(channels, dict):
                return None
            return {ch: _artifact(channels.get(ch), 1) for ch in CHANNELS}
        if self.type == "metrics":
            values = self._metrics_array()
            if values is None:
                return None
            return {ch: _artifact(values[index], 1) for ch, index in _METRICS_ARTIFACTS}
        if self.type == "metricsJson":
            metrics = raw.get("metrics")
            channels = metrics.get("artifact_detect") if isinstance(metrics, dict) else None
            if not isinstance(channels, dict):
                return None
            return {
                ch: _artifact(channels.get(f"channel{i + 1}"), "good")
                for i, ch in enumerate(CHANNELS)
            }
        return None

    @property
    def bandpower(self) -> dict[str, BandPower] | None:
        """Per channel, the delta, theta, alpha and beta band powers.

        For ``metrics`` and ``metricsJson`` (whose bands are ``"0"``..``"3"``), the
        bands are read in the LSL order alpha, beta, theta, delta, which Petal's OSC
        page gives and the webhook page does not state.
        """
        raw = unwrap(self.data)
        if self.type == "metrics":
            values = self._metrics_array()
            if values is None:
                return None
            return {
                ch: BandPower(*(reading(values[index]) for index in where))
                for ch, where in _METRICS_BANDS
            }
        if self.type == "bandpower":
            channels, names, keys = raw.get("bandpower"), CHANNELS, _NAMED_BANDS
        elif self.type == "metricsJson":
            metrics = raw.get("metrics")
            channels = metrics.get("bandpower") if isinstance(metrics, dict) else None
            names, keys = _JSON_CHANNELS, _JSON_BANDS
        else:
            return None
        if not isinstance(channels, dict):
            return None
        return {
            ch: _bands(channels.get(name), keys) for ch, name in zip(CHANNELS, names, strict=True)
        }

    def _metric(self, name: str, index: int) -> Reading | None:
        raw = unwrap(self.data)
        if self.type == name:
            inner = raw.get(name)
            return reading(inner.get(name)) if isinstance(inner, dict) else reading(inner)
        if self.type == "metrics":
            values = self._metrics_array()
            return None if values is None else reading(values[index])
        if self.type == "metricsJson":
            metrics = raw.get("metrics")
            inner = metrics.get(name) if isinstance(metrics, dict) else None
            return reading(inner.get(name)) if isinstance(inner, dict) else None
        return None

    def _metrics_array(self) -> list[Any] | None:
        values = unwrap(self.data).get("metrics")
        if not isinstance(values, list) or len(values) < 22:
            return None
        return values


def _artifact(value: Any, good: object) -> bool | BadData:
    if value == "bad_data":
        return BAD_DATA
    return bool(value != good)


def _bands(value: Any, keys: tuple[str, str, str, str]) -> BandPower:
    """One channel's bands from an object, ``keys`` naming delta, theta, alpha and beta."""
    if type(value) is not dict:
        return _NO_BANDS
    return BandPower(*(reading(value.get(key)) for key in keys))


class PetalProvider(Provider):
    """Petal Metrics' EEG stream webhooks."""

    name = "petal"
    title = "Petal Metrics"
    event_class = PetalEvent
    event_types = ("blink", "eye", "bandpower", "artifact-detect", "metricsJson", "metrics")
    accepts = frozenset({"token", "basic_auth", "bearer_token"})
    can_be_unsigned = True
    accepts_form = True
    default_token_header = "X-Petal-Token"  # noqa: S105 - a header name
    test_credentials: ClassVar[Mapping[str, Any]] = {"token": "petal-token"}
    # A stream message is under 1 KB (Petal's streaming documentation); the newer app
    # sends batches of them, whose length the documentation does not give.  2 MiB holds
    # a few thousand messages.  An unsigned handler (allow_unsigned=True) has nothing but this bound
    # and allowed_ips= to stop a stranger, so it stays well under the 25 MiB of a
    # Momentum batch.
    default_max_body_size = 2 * MIB
    parse_headers = ()  # everything is in the body
    demo = DemoScript(
        credentials={"token": "demo-petal-token"},
        event_types=("bandpower",),
        accepted="X-Petal-Token matched",
    )

    def parse(self, body: bytes, headers: Headers, signature: str | None) -> Delivery:
        """One event per message; several for a batch."""
        payload = self.payload(body, headers)
        if not isinstance(payload, dict):
            raise MalformedPayload("a Petal Metrics message is a JSON object")
        batch = payload.get("batch")
        if isinstance(batch, list):
            device = as_str(payload.get("device_id"))
            events = tuple(self._event(item, device) for item in batch)
        else:
            events = (self._event(payload, None),)
        return Delivery(
            provider="petal", id=body_sha256(body), events=events, headers=headers, body=body
        )

    def _event(self, message: Any, device_id: str | None) -> PetalEvent:
        if not isinstance(message, dict):
            raise MalformedPayload("each Petal Metrics message is a JSON object")
        kind = message.get("type")
        if not isinstance(kind, str) or not kind:
            raise MalformedPayload("a Petal Metrics message has a string 'type'")
        data = message.get("data")
        data = data if isinstance(data, dict) else {}
        action = message.get("action")
        return PetalEvent(
            provider="petal",
            type=kind,
            id=as_str(data.get("id")),
            timestamp=_timestamp(message.get("timestamp"), data.get("unix_ts")),
            data=FrozenObject(data),
            device_id=device_id,
            action=FrozenObject(action) if type(action) is dict else None,
        )

    def event_key(self, event: Event) -> str | None:
        """None: a message's ``id`` is a counter that restarts with the stream."""
        return None

    def sign(self, body: bytes, **options: Any) -> dict[str, str]:
        """Petal's headers, with the shared credential the user configured in its app."""
        headers = {"Content-Type": str(options.get("content_type") or "application/json")}
        token = options.get("token")
        if token is not None:
            header = str(options.get("token_header") or self.default_token_header)
            headers[header] = first_credential(token)
        headers.update(authorization_headers(options))
        return headers

    def sample(self, event_type: str, overrides: Mapping[str, Any]) -> bytes:
        """A message in the page's shape, as JSON on the wire.

        ``lsl_api_recv_ts`` (seconds on the stream's clock) is taken at the call,
        unique to the millisecond: Petal's messages differ by their times, and a
        receiver de-duplicating on the body must not drop a second sample.
        """
        action_value, own = SAMPLES.get(event_type, (0, {}))
        data: dict[str, Any] = {**own, **STREAM_FIELDS}
        # Milliseconds modulo about 11.5 days, read as seconds: a clock of the size of
        # the page's example (1257.78), unique for as long as a duplicate is remembered.
        data["lsl_api_recv_ts"] = unique_clock() // 1_000_000 % 1_000_000_000 / 1000
        data.update(overrides)
        message = {
            "type": event_type,
            "action": {"value": action_value, "time": 1214.697467542195},
            "data": data,
        }
        return json.dumps(message, allow_nan=False).encode("utf-8")


def _timestamp(explicit: Any, unix_ts: Any) -> datetime | None:
    if explicit is not None:
        seconds = as_float(explicit)
        return from_unix(seconds) if seconds is not None else from_iso(explicit)
    return from_unix(as_float(unix_ts))
