"""Momentum / SparkPost: batches of event records, authenticated by token or HTTP auth.

Rules (from Momentum's documentation, "Using Webhooks for Event Data"):

* No HMAC exists.  The credential is the (deprecated) ``X-MessageSystems-Webhook-Token``
  header, HTTP Basic, or an OAuth2 Bearer token the receiver issued.
* The body is a JSON array of up to 10,000 records ``{"msys": {"<class>": {...}}}``
  (several MB), so parsing is one linear pass that makes one small event per record.
* The validation POST sent when a webhook is created is ``[{"msys": {}}]`` and must get
  a 200: it yields no events.  The page also prints a single record as a bare
  ``{"msys": {...}}`` object; that is read as a batch of one, not refused (a refusal
  would be retried for four hours).
* ``X-MessageSystems-Batch-ID`` names the batch: the batch is keyed on it and on its
  body's SHA-256 (a batch seen before is acknowledged and not dispatched again, but
  another batch under the same id is run), and each record is also de-duplicated by
  its ``event_id``, or by its content where it has none: the batch id is unsigned, so a
  replay under a fresh one must still not dispatch the same records again.
* A record's ``timestamp`` is Unix seconds, as a number or a string; SparkPost's
  sample events also give ISO 8601 text (its ``generation_failure``): both are read,
  for every event class.
* A failed batch is retried for four hours, then dropped (the page); SparkPost's
  cloud retries for eight.  One provider serves both, so its retry window is the
  longer, eight hours, and the default de-duplication time covers it with margin.
"""

from __future__ import annotations

import json
import random
import re
import time
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar

from .._core.errors import MalformedPayload
from .._core.events import Delivery, Event, as_float, as_int, as_str, from_iso, from_unix
from .._core.frozen_json import FrozenObject, decode_json, iter_json_array, unwrap
from .._core.headers import Headers
from ._base import (
    MIB,
    DemoScript,
    Provider,
    authorization_headers,
    body_sha256,
    content_sha256,
    first_credential,
)

__all__ = ["EVENT_CLASSES", "MomentumEvent", "MomentumProvider"]

#: Each documented event class and its types (SparkPost's public event documentation).
EVENT_CLASSES: dict[str, tuple[str, ...]] = {
    "message_event": (
        "injection",
        "delivery",
        "bounce",
        "delay",
        "policy_rejection",
        "out_of_band",
        "spam_complaint",
        "sms_status",
    ),
    "track_event": ("click", "open", "initial_open", "amp_click", "amp_open", "amp_initial_open"),
    "gen_event": ("generation_failure", "generation_rejection"),
    "unsubscribe_event": ("list_unsubscribe", "link_unsubscribe"),
    "relay_event": (
        "relay_injection",
        "relay_rejection",
        "relay_delivery",
        "relay_tempfail",
        "relay_permfail",
    ),
}
_CLASS_OF_TYPE = {t: c for c, types in EVENT_CLASSES.items() for t in types}
BATCH_HEADER = "X-MessageSystems-Batch-ID"
_MAX_BATCH_ID = 256


@dataclass(frozen=True, slots=True, kw_only=True)
class MomentumEvent(Event):
    """One record of a Momentum batch; ``type`` is its ``type`` (``"click"``, ``"bounce"``)."""

    event_class: str = ""

    @property
    def message_id(self) -> str | None:
        """The message the event is about."""
        return self._str("message_id")

    @property
    def transmission_id(self) -> str | None:
        """The transmission the message was part of."""
        return as_str(self._get("transmission_id"))

    @property
    def recipient(self) -> str | None:
        """The recipient's address (``rcpt_to``)."""
        return self._str("rcpt_to")

    @property
    def raw_recipient(self) -> str | None:
        """The recipient's address as given at injection (``raw_rcpt_to``)."""
        return self._str("raw_rcpt_to")

    @property
    def campaign_id(self) -> str | None:
        """The campaign the message belongs to."""
        return self._str("campaign_id")

    @property
    def template_id(self) -> str | None:
        """The template the message was generated from."""
        return self._str("template_id")

    @property
    def subject(self) -> str | None:
        """The message's subject line."""
        return self._str("subject")

    @property
    def friendly_from(self) -> str | None:
        """The From address as shown to the recipient."""
        return self._str("friendly_from")

    @property
    def sending_ip(self) -> str | None:
        """The IP address the message was sent from."""
        return self._str("sending_ip")

    @property
    def ip_address(self) -> str | None:
        """The remote IP address (the recipient's MTA, or the clicker's address)."""
        return self._str("ip_address")

    @property
    def bounce_class(self) -> int | None:
        """The bounce classification code (``bounce``, ``out_of_band`` ...)."""
        return as_int(self._get("bounce_class"))

    @property
    def reason(self) -> str | None:
        """The canonicalised reason of a bounce, delay or rejection."""
        return self._str("reason")

    @property
    def raw_reason(self) -> str | None:
        """The reason as the remote server gave it."""
        return self._str("raw_reason")

    @property
    def error_code(self) -> str | None:
        """The SMTP error code of a bounce, delay or rejection."""
        return as_str(self._get("error_code"))

    @property
    def num_retries(self) -> int | None:
        """How many delivery attempts preceded this one."""
        return as_int(self._get("num_retries"))

    @property
    def target_link_url(self) -> str | None:
        """The URL of a clicked link."""
        return self._str("target_link_url")

    @property
    def target_link_name(self) -> str | None:
        """The name of a clicked link."""
        return self._str("target_link_name")

    @property
    def user_agent(self) -> str | None:
        """The user agent of an open or click."""
        return self._str("user_agent")

    @property
    def customer_id(self) -> str | None:
        """The account the event belongs to."""
        return as_str(self._get("customer_id"))

    @property
    def injection_time(self) -> datetime | None:
        """When the message was injected (ISO 8601)."""
        return from_iso(self._get("injection_time"))

    @property
    def tags(self) -> tuple[str, ...]:
        """The recipient's tags (``rcpt_tags``)."""
        tags = self._get("rcpt_tags")
        return tuple(t for t in tags if isinstance(t, str)) if isinstance(tags, list) else ()

    @property
    def metadata(self) -> FrozenObject:
        """The recipient's metadata (``rcpt_meta``), empty where there is none."""
        meta = self._get("rcpt_meta")
        return FrozenObject(meta if isinstance(meta, dict) else {})


_NOT_A_BATCH = "a Momentum batch is a JSON array of {'msys': {...}} records"


def _events(records: Iterable[Any]) -> Iterator[MomentumEvent]:
    """The events of a batch's records, in order, built as each record is reached."""
    # Each distinct timestamp is converted once: a batch spans at most 30 s.
    times: dict[Any, datetime | None] = {}
    for number, record in enumerate(records):
        msys = record.get("msys") if type(record) is dict else None
        if type(msys) is not dict:
            raise MalformedPayload(
                f"record {number} of the Momentum batch is not of the form {{'msys': {{...}}}}"
            )
        for event_class, data in msys.items():
            if type(data) is not dict:
                raise MalformedPayload(
                    f"record {number} of the Momentum batch: {event_class!r} is not an object"
                )
            kind = data.get("type")
            stamp = data.get("timestamp")
            try:
                when = times[stamp]
            except KeyError:
                when = times[stamp] = _time(stamp)
            except TypeError:  # an unhashable timestamp: a list or an object
                when = None
            yield MomentumEvent(
                provider="momentum",
                type=kind if type(kind) is str and kind else event_class,
                id=as_str(data.get("event_id")),
                timestamp=when,
                data=FrozenObject(data),
                event_class=event_class,
            )


def _time(stamp: Any) -> datetime | None:
    """A record's ``timestamp``: Unix seconds (a number or a string), or ISO 8601 text.

    Message events carry Unix seconds as a string; SparkPost's sample events give some
    classes (its ``generation_failure``) an ISO 8601 time, ``"2018-10-11T23:24:45.000+00:00"``.
    """
    seconds = as_float(stamp)
    return from_unix(seconds) if seconds is not None else from_iso(stamp)


_OPENS_AN_OBJECT = re.compile(rb"[ \t\r\n]*\{")


class MomentumProvider(Provider):
    """Momentum's (and SparkPost's) event webhooks."""

    name = "momentum"
    title = "Momentum"
    event_class = MomentumEvent
    event_types = tuple(_CLASS_OF_TYPE)
    accepts = frozenset({"token", "basic_auth", "bearer_token"})
    can_be_unsigned = True
    dedupe_events = True
    default_token_header = "X-MessageSystems-Webhook-Token"  # noqa: S105 - a header name
    parse_headers = (BATCH_HEADER,)  # names the batch: its de-duplication key
    sends_batches = True
    test_credentials: ClassVar[Mapping[str, Any]] = {"token": "momentum-token"}
    demo = DemoScript(
        credentials={"basic_auth": ("hookshield", "demo-password")},
        event_types=("delivery", "open", "click"),
        accepted="HTTP Basic credentials matched",
    )
    # The page: "retry at a backoff interval for four hours"; SparkPost's cloud, eight.
    retry_window = 8 * 3600.0
    # A batch holds up to 10,000 records (Momentum's webhooks documentation) of about 1 to 2.5 KB
    # each (SparkPost's event samples, with recipient metadata and tags): 25 MiB.
    default_max_body_size = 25 * MIB

    def parse(self, body: bytes, headers: Headers, signature: str | None) -> Delivery:
        """One event per record; none for the validation batch ``[{"msys": {}}]``.

        Decoded whole rather than through :meth:`stream`, so that a malformed batch is
        refused in the standard library's own words (Python 3.13 names a trailing comma).
        """
        payload = self.payload(body, headers)
        if isinstance(payload, dict) and "msys" in payload:
            payload = [payload]  # a bare record: a batch of one
        if not isinstance(payload, list):
            raise MalformedPayload(_NOT_A_BATCH)
        return Delivery(
            provider="momentum",
            id=self._delivery_id(body, headers),
            events=tuple(_events(payload)),
            headers=headers,
            body=body,
        )

    def stream(
        self, body: bytes, headers: Headers, signature: str | None
    ) -> tuple[str, Iterator[Event]]:
        """The batch's id, and its events decoded record by record."""
        self.check_json(headers)
        if _OPENS_AN_OBJECT.match(body):
            record = decode_json(body)
            if not (isinstance(record, dict) and "msys" in record):
                raise MalformedPayload(_NOT_A_BATCH)
            return self._delivery_id(body, headers), _events([record])
        records = iter_json_array(body, not_array=_NOT_A_BATCH)
        return self._delivery_id(body, headers), _events(records)

    def event_key(self, event: Event) -> str | None:
        """The record's ``event_id``; for a record without one, a hash of its content."""
        if event.id is not None:
            return event.id
        event_class = event.event_class if isinstance(event, MomentumEvent) else ""
        return content_sha256({event_class: unwrap(event.data)})

    def _delivery_id(self, body: bytes, headers: Headers) -> str:
        # The batch id is unsigned and the sender's (or a forger's) to reuse: alone, it
        # would make another batch under the same id a duplicate, dropped with a 200.
        # With the body's hash, only the same batch again is one.
        content = body_sha256(body)
        batch_id = headers.get(BATCH_HEADER)
        if batch_id and batch_id.strip() and len(batch_id) <= _MAX_BATCH_ID:
            return f"batch:{batch_id.strip()}:{content}"
        return content

    def sign(self, body: bytes, **options: Any) -> dict[str, str]:
        """Momentum's headers with the configured credential (token, Basic or Bearer)."""
        headers = {
            "Content-Type": "application/json",
            BATCH_HEADER: str(options.get("batch_id") or uuid.uuid4()),
        }
        token = options.get("token")
        if token is not None:
            header = options.get("token_header") or self.default_token_header or ""
            headers[str(header)] = first_credential(token)
        headers.update(authorization_headers(options))
        return headers

    def sample(self, event_type: str, overrides: Mapping[str, Any]) -> bytes:
        """A one-record batch in SparkPost's documented record shape."""
        return self.sample_batch((event_type,), overrides)

    def sample_batch(
        self, event_types: Sequence[str], overrides: Mapping[str, Any] | None = None
    ) -> bytes:
        """A batch with one record per entry of ``event_types``, each with a fresh event id."""
        records = [self.sample_record(kind, overrides) for kind in event_types]
        return json.dumps(records, allow_nan=False).encode("utf-8")

    def sample_record(
        self, event_type: str, overrides: Mapping[str, Any] | None = None
    ) -> dict[str, Any]:
        """One ``{"msys": {...}}`` record of ``event_type``."""
        event_class = _CLASS_OF_TYPE.get(event_type, "message_event")
        data: dict[str, Any] = dict(_COMMON)
        data.update(_BY_CLASS.get(event_class, {}))
        data.update(_BY_TYPE.get(event_type, {}))
        data["type"] = event_type
        data["event_id"] = str(random.getrandbits(63))
        data["timestamp"] = str(int(time.time()))
        if overrides:
            data.update(overrides)
        return {"msys": {event_class: data}}


_COMMON: dict[str, Any] = {
    "customer_id": "1",
    "message_id": "000443ee14578172be22",
    "transmission_id": "65832150921904138",
    "campaign_id": "Example Campaign Name",
    "template_id": "templ-1234",
    "template_version": "1",
    "rcpt_to": "recipient@example.com",
    "raw_rcpt_to": "recipient@example.com",
    "rcpt_tags": ["male", "US"],
    "rcpt_meta": {"customKey": "customValue"},
    "friendly_from": "sender@example.com",
    "subject": "Summer deals are here!",
    "ip_pool": "Example-Ip-Pool",
    "injection_time": "2016-04-19T21:34:24.000Z",
}
_BY_CLASS: dict[str, dict[str, Any]] = {
    "message_event": {
        "msg_from": "sender@example.com",
        "msg_size": "1337",
        "routing_domain": "example.com",
        "sending_ip": "127.0.0.1",
    },
    "track_event": {
        "ip_address": "127.0.0.1",
        "user_agent": "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_9_4) AppleWebKit/537.77.4",
        "geo_ip": {"country": "US", "region": "MD", "city": "Columbia"},
    },
    "gen_event": {"reason": "Error while rendering part html: substitution error"},
    "unsubscribe_event": {"mailfrom": "recipient@example.com"},
    "relay_event": {
        "relay_id": "SAMPLE-RELAY-ID",
        "origination": "recipient@example.com",
        "msg_from": "sender@example.com",
    },
}
_BY_TYPE: dict[str, dict[str, Any]] = {
    "bounce": {
        "bounce_class": "10",
        "error_code": "554",
        "reason": "000 Example Remote MTA Bounce Message",
        "raw_reason": "000 Example Remote MTA Bounce Message",
    },
    "delay": {
        "bounce_class": "21",
        "error_code": "421",
        "num_retries": "1",
        "reason": "000 Example Remote MTA Delay Message",
    },
    "policy_rejection": {"error_code": "554", "reason": "550 5.7.1 Unconfigured Sending Domain"},
    "out_of_band": {"bounce_class": "10", "error_code": "550", "reason": "550 5.0.0 <...>"},
    "click": {"target_link_url": "https://example.com", "target_link_name": "Example Link"},
    "amp_click": {"target_link_url": "https://example.com", "target_link_name": "Example Link"},
    "relay_tempfail": {"error_code": "421", "reason": "421 Example Tempfail"},
    "relay_permfail": {"error_code": "550", "reason": "550 Example Permfail"},
}
