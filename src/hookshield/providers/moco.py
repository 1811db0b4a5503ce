"""MOCO: ``X-Moco-Signature`` is the hex HMAC-SHA256 of the raw body.

Rules (from MOCO's API documentation, "WebHooks"):

* The key is the 32-character hex string MOCO's UI shows, used as its ASCII text.  The
  page's own test vector signs ``{id: 111, description: "a description"}``, which is
  not JSON, so the signature is checked on bytes before and apart from parsing.
* The :data:`MOCO` description says it: only the body is signed, as plain hex.
  ``X-Moco-Target`` and ``X-Moco-Event`` (which name the
  event, ``activity.create``), ``X-Moco-Timestamp`` (Unix milliseconds),
  ``X-Moco-User-Id`` and ``X-Moco-Account-Url`` are not, so none of them alone can
  be a de-duplication key: the key is the body's SHA-256 plus the event type, since
  two events (an update, then a delete) may carry the same entity body.  The flip
  side: a captured delivery can be replayed under another event type.
* The targets: the page lists "Activity, Customer, Project, ..."; the others below
  come from MOCO's API documentation, not from the webhook page.
* MOCO retries a failed delivery but does not say for how long (it disables a hook
  after 500 failures in a row), so the retry window is the undocumented default.
* The body is the entity itself, with no envelope.  Deliveries may arrive out of
  order; ``timestamp`` orders the events of one entity.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar

from .._core.events import Event, as_int, from_epoch_by_magnitude, from_unix
from .._core.headers import Headers
from ._base import MIB, DemoScript, unique_clock
from ._hmac import EventFields, HmacProvider, HmacSender

__all__ = ["MOCO", "MocoEvent", "MocoProvider"]

#: The targets the webhook page names ("Activity, Customer, Project, ...").
SEED_TARGETS = ("Activity", "Customer", "Project")
#: Further targets named by MOCO's API documentation, not by the webhook page.
API_TARGETS = ("Company", "Contact", "Invoice", "Offer", "Deal", "Expense")
TARGETS = SEED_TARGETS + API_TARGETS
#: The actions the webhook page names ("create, update, delete, archive, ...").
ACTIONS = ("create", "update", "delete", "archive")


@dataclass(frozen=True, slots=True, kw_only=True)
class MocoEvent(Event):
    """A MOCO event: the entity in ``data``, the context from MOCO's headers.

    ``target`` and ``action`` are as MOCO sends them (``"Activity"``, ``"create"``);
    ``type`` is their lower-case dotted form (``"activity.create"``).
    """

    target: str | None = None
    action: str | None = None
    user_id: int | None = None
    account_url: str | None = None

    @property
    def entity_id(self) -> int | None:
        """The ``id`` of the entity the event is about."""
        return as_int(self._get("id"))


def _when(header: str | None) -> datetime | None:
    """``X-Moco-Timestamp``: Unix milliseconds as MOCO sends them, or read by magnitude."""
    if header is None:
        return None
    if len(header) == 13 and header.isdigit() and header.isascii():
        return from_unix(int(header) / 1e3)  # MOCO's own form, without the general parse
    return from_epoch_by_magnitude(as_int(header.strip()))


#: MOCO's scheme, as an :class:`HmacSender` description: the type from two unsigned
#: headers, so part of the key (one entity body may be an update, then a delete).
MOCO = HmacSender(
    name="moco",
    title="MOCO",
    signature_header="X-Moco-Signature",
    type_header=("X-Moco-Target", "X-Moco-Event"),
    type_lowercase=True,
    # The body is one entity (an activity, an invoice with its items), a few KB; MOCO's
    # WebHooks documentation gives no cap.  1 MiB leaves a wide margin.
    max_body_size=MIB,
    event_class=MocoEvent,
    event_types=tuple(f"{t.lower()}.{a}" for t in TARGETS for a in ACTIONS),
)


def _context(value: str | None) -> str | None:
    """``X-Moco-Target`` or ``X-Moco-Event`` as MOCO sent it, bounded."""
    return value.strip()[:64] if value else None


class MocoProvider(HmacProvider):
    """MOCO's webhooks."""

    sender = MOCO
    # The event's name and context: none of them signed (see the module's docstring).
    parse_headers = (
        "X-Moco-Target",
        "X-Moco-Event",
        "X-Moco-Timestamp",
        "X-Moco-User-Id",
        "X-Moco-Account-Url",
    )
    # The key is the test vector of MOCO's own WebHooks documentation; changing
    # the hours of a signed activity is the tampering a receiver must catch.
    test_credentials: ClassVar[Mapping[str, Any]] = {"secret": "1d608b9d72219b90ff2393a1d3ee0ac0"}
    demo = DemoScript(
        event_types=("activity.create",),
        accepted="X-Moco-Signature verified",
        attacks=("tampered",),
        tamper=(b'"hours": 2.5', b'"hours": 25.0'),
    )

    def make_event(self, payload: Any, headers: Headers, fields: EventFields) -> Event:
        """The entity from the body; its name and context from MOCO's headers."""
        user_id = headers.get("x-moco-user-id")
        account_url = headers.get("x-moco-account-url")
        fields["timestamp"] = _when(headers.get("x-moco-timestamp"))
        return MocoEvent(
            **fields,
            target=_context(headers.get("x-moco-target")),
            action=_context(headers.get("x-moco-event")),
            user_id=as_int(user_id.strip()) if user_id else None,
            account_url=account_url.strip()[:512] or None if account_url else None,
        )

    def sign(self, body: bytes, **options: Any) -> dict[str, str]:
        """The six headers MOCO sends, signed with the first secret.

        ``timestamp`` is MOCO's, Unix milliseconds (it is not signed).
        """
        event = str(options.get("event") or "activity.create")
        target, _, action = event.partition(".")
        timestamp = options.get("timestamp")
        millis = int(time.time() * 1000) if timestamp is None else int(timestamp)
        return {
            "Content-Type": "application/json",
            "X-Moco-Target": _TITLES.get(target.lower(), target.title()),
            "X-Moco-Event": action or "create",
            "X-Moco-Timestamp": str(millis),
            **self.sender.scheme.sign(body, options["secret"]),
            "X-Moco-User-Id": str(options.get("user_id", 933613686)),
            "X-Moco-Account-Url": str(options.get("account_url", "https://example.mocoapp.com")),
        }

    def sample(self, event_type: str, overrides: Mapping[str, Any]) -> bytes:
        """The entity MOCO would send for ``event_type`` (``"activity.create"``).

        ``updated_at`` is the time of the call (unique to the millisecond), as MOCO's
        own bodies change with each edit: the same bytes twice would be a duplicate.
        """
        target = event_type.partition(".")[0]
        entity = dict(_SAMPLE_ENTITIES.get(target, {"id": 1000001}))
        entity["updated_at"] = _iso_millis(unique_clock())
        entity.update(overrides)
        return json.dumps(entity, allow_nan=False).encode("utf-8")


def _iso_millis(nanos: int) -> str:
    """``2018-05-24T13:53:29.123Z`` for a time in nanoseconds since the epoch."""
    seconds, rest = divmod(nanos, 1_000_000_000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{rest // 1_000_000:03d}Z"


_TITLES = {t.lower(): t for t in TARGETS}

_STAMPS = {"created_at": "2018-05-24T13:53:29Z", "updated_at": "2018-05-24T13:53:29Z"}
_USER = {"id": 933613686, "firstname": "Ada", "lastname": "Lovelace"}
_CUSTOMER = {"id": 760253573, "name": "Beispiel AG"}
_PROJECT_REF = {"id": 944504145, "name": "Website Relaunch", "billable": True}
# A "Customer" target delivers the same entity as "Company": MOCO's companies of
# type "customer".
_COMPANY = {
    "id": 760253573,
    "type": "customer",
    "name": "Beispiel AG",
    "website": "https://www.beispiel.ch",
    "currency": "CHF",
    "identifier": "36",
    "tags": ["Netzwerk"],
    **_STAMPS,
}

# Entities in the shape of MOCO's REST API, which webhooks deliver unchanged.
_SAMPLE_ENTITIES: dict[str, dict[str, Any]] = {
    "activity": {
        "id": 988913748,
        "date": "2018-05-24",
        "hours": 2.5,
        "seconds": 9000,
        "description": "Kick-off workshop",
        "billed": False,
        "billable": True,
        "tag": "",
        "project": _PROJECT_REF,
        "task": {"id": 658734, "name": "Design", "billable": True},
        "customer": _CUSTOMER,
        "user": _USER,
        "hourly_rate": 150.0,
        "timer_started_at": None,
        **_STAMPS,
    },
    "customer": _COMPANY,
    "company": _COMPANY,
    "contact": {
        "id": 123456,
        "gender": "F",
        "firstname": "Grace",
        "lastname": "Hopper",
        "work_email": "grace@beispiel.ch",
        "company": _CUSTOMER,
        **_STAMPS,
    },
    "project": {
        "id": 944504145,
        "identifier": "P1900",
        "name": "Website Relaunch",
        "active": True,
        "billable": True,
        "currency": "EUR",
        "budget": 18200,
        "customer": _CUSTOMER,
        "leader": _USER,
        **_STAMPS,
    },
    "invoice": {
        "id": 2200123,
        "identifier": "R1900-013",
        "date": "2018-05-24",
        "due_date": "2018-06-23",
        "title": "Invoice",
        "status": "created",
        "currency": "EUR",
        "net_total": 1000.0,
        "gross_total": 1190.0,
        "customer_id": 760253573,
        **_STAMPS,
    },
    "offer": {
        "id": 7400123,
        "identifier": "A1900-004",
        "date": "2018-05-24",
        "title": "Offer",
        "status": "created",
        "currency": "EUR",
        "net_total": 5000.0,
        **_STAMPS,
    },
    "deal": {
        "id": 9000123,
        "name": "Website Relaunch",
        "status": "pending",
        "money": 25000,
        "currency": "EUR",
        "reminder_date": "2018-06-01",
        "user": _USER,
        **_STAMPS,
    },
    "expense": {
        "id": 47266,
        "date": "2018-05-24",
        "title": "Hosting",
        "quantity": 3,
        "unit": "months",
        "unit_price": 29.0,
        "currency": "EUR",
        "billable": True,
        "project": _PROJECT_REF,
        **_STAMPS,
    },
}
