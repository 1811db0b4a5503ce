"""The inbox: where an acknowledged delivery waits, durably, until its routes have run.

Theory of operation: with ``background=inbox`` an adapter verifies and claims a
delivery as usual, :meth:`Inbox.put` stores it, and only then is the sender answered
2xx; a worker (``hookshield worker``, :func:`~hookshield.run_worker`) later leases
it, verifies the stored bytes again with the same handler and runs its routes.

* :class:`Inbox` is all an adapter needs: ``put``, durable once it returns.  A queue
  of your own (Celery, RQ, Dramatiq) is an inbox when it has that one method.
* :class:`WorkerInbox` adds what ``hookshield worker`` and ``hookshield inbox`` need:
  lease the next due delivery to one worker, check its seal, mark it done, retry it
  later, move it to dead-letter, and list or inspect what is stored.
* ``ManagedInbox`` (in ``_durable/browse.py``, with what a person browses) adds what
  ``hookshield inbox`` and the dashboard need: filters, history, pausing a sender and
  refusals kept.

This module owns the stored form of a delivery and building it from an accepted
outcome; it touches no store and starts no thread.
"""

from __future__ import annotations

import base64
import os
import secrets
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final, Literal, Protocol, runtime_checkable

from .._core.headers import Headers
from .._handling import observe
from .._handling.handler import WebhookHandler, verifier_of
from .._handling.outcome import PendingEvents, event_types_of

if TYPE_CHECKING:
    from .._handling.outcome import Outcome

__all__ = [
    "LEASE_ENDED",
    "Inbox",
    "State",
    "StoredDelivery",
    "WorkerInbox",
    "new_id",
    "storable",
    "stored_delivery",
]

#: pending: waits for its next attempt; leased: a worker runs it (until its lease
#: ends); done: its routes ran; dead: it failed every attempt, or its bytes no longer
#: verify, and waits for a person (``hookshield inbox retry``).
State = Literal["pending", "leased", "done", "dead"]
STATES: Final[tuple[State, ...]] = ("pending", "leased", "done", "dead")
#: The ``last_error`` of a delivery leased again after a lease that ended unsettled:
#: the worker that held it died, or its route outran the lease.
LEASE_ENDED: Final = (
    "the lease ended before the attempt was settled: the worker died running it, "
    "or the route outran its lease"
)


@dataclass(frozen=True, slots=True, kw_only=True)
class StoredDelivery:
    """One delivery as an inbox keeps it: its exact bytes, and the headers it needs.

    ``headers`` are those its sender's verification and parse read (see
    ``Provider.stored_headers``), no other.  ``handler`` names the :class:`~hookshield.WebhookHandler` that verifies and runs
    it (its provider's name); ``events`` holds the keys of the events still to run
    when only some of a batch's were new (Momentum), ``None`` for all of them.
    ``attempts`` counts the leases taken so far (a requeue resets it); ``next_attempt``
    is when a pending delivery is due, or when a leased one's lease ends.  ``lease_id``
    names the lease a worker holds on a leased delivery, and is what its settle must
    match: unlike ``attempts`` it is never the same for two leases.  ``seal`` is the
    inbox's HMAC over what the delivery runs (see :class:`~hookshield.InboxKey`),
    checked before a worker runs it.
    """

    id: str
    sender: str
    handler: str
    body: bytes
    headers: tuple[tuple[str, str], ...]
    received: float
    event_types: tuple[str, ...] = ()
    events: tuple[str, ...] | None = None
    attempts: int = 0
    state: State = "pending"
    next_attempt: float = 0.0
    last_error: str | None = None
    lease_id: str | None = None
    #: Set by the inbox that stores it; two deliveries alike but for it are equal.
    seal: str | None = field(default=None, compare=False)
    #: The W3C trace context of the request that brought it, when one was recorded;
    #: kept with the row where the inbox has a place for it (SQLite, PostgreSQL, Django), not
    #: sealed: it says where the delivery came from, not what it runs.
    traceparent: str | None = field(default=None, compare=False)

    def to_message(self) -> dict[str, Any]:
        """The delivery as JSON-safe data for a queue (the body in base64), seal included.

        Only what a worker needs travels: not the schedule, which the queue keeps.
        """
        return {
            "id": self.id,
            "sender": self.sender,
            "handler": self.handler,
            "body": base64.b64encode(self.body).decode("ascii"),
            "headers": [list(pair) for pair in self.headers],
            "received": self.received,
            "event_types": list(self.event_types),
            "events": None if self.events is None else list(self.events),
            "seal": self.seal,
            "traceparent": self.traceparent,
        }

    @classmethod
    def from_message(cls, data: Mapping[str, Any]) -> StoredDelivery:
        """The delivery a message made by :meth:`to_message` carries."""
        events = data.get("events")
        seal = data.get("seal")
        trace = data.get("traceparent")
        return cls(
            id=str(data["id"]),
            sender=str(data["sender"]),
            handler=str(data["handler"]),
            body=base64.b64decode(data["body"], validate=True),
            headers=tuple((str(name), str(value)) for name, value in data["headers"]),
            received=float(data["received"]),
            event_types=tuple(str(t) for t in data.get("event_types", ())),
            events=None if events is None else tuple(str(e) for e in events),
            seal=None if seal is None else str(seal),
            traceparent=trace if isinstance(trace, str) and len(trace) <= 256 else None,
        )

    def __repr__(self) -> str:
        # A delivery ends up in logs and tracebacks: its credential headers are
        # redacted by the rule of Headers' own repr, and its body is left out.
        events = "all" if self.events is None else f"<{len(self.events)} keys>"
        return (
            f"StoredDelivery(id={self.id!r}, sender={self.sender!r}, handler={self.handler!r}, "
            f"state={self.state!r}, attempts={self.attempts}, received={self.received!r}, "
            f"event_types={self.event_types!r}, events={events}, "
            f"headers={Headers(self.headers).redacted()!r}, body=<{len(self.body)} bytes>, "
            f"last_error={self.last_error!r})"
        )


@runtime_checkable
class Inbox(Protocol):
    """Where ``background=inbox`` stores a verified delivery before answering 2xx."""

    def put(self, delivery: StoredDelivery) -> None:
        """Store ``delivery``; once this returns it must survive a crash of this process."""


@runtime_checkable
class WorkerInbox(Inbox, Protocol):
    """An inbox that ``hookshield worker`` runs deliveries from (see SQLiteInbox)."""

    def lease(self, now: float, handlers: Sequence[str]) -> StoredDelivery | None:
        """Lease the next due delivery of one of ``handlers`` to this worker, or ``None``.

        A delivery whose previous lease ended unsettled comes back with ``last_error``
        set to :data:`LEASE_ENDED`, so that the worker can tell why it gives up on it.
        """

    def done(self, delivery: StoredDelivery) -> bool:
        """Mark a leased delivery done; ``False`` if its lease (``lease_id``) is no longer held."""

    def retry(self, delivery: StoredDelivery, at: float, error: str) -> bool:
        """Make a leased delivery due again at ``at``, noting ``error``."""

    def dead(self, delivery: StoredDelivery, error: str) -> bool:
        """Move a leased delivery to dead-letter, noting ``error``."""

    def check_seal(self, delivery: StoredDelivery) -> None:
        """Raise :class:`~hookshield.TamperedDelivery` unless ``delivery`` is as it was put."""

    def get(self, delivery_id: str) -> StoredDelivery | None:
        """The stored delivery ``delivery_id``, or ``None``."""

    def list(self, state: State | None = None, limit: int = 100) -> list[StoredDelivery]:
        """Up to ``limit`` deliveries, oldest first, in ``state`` or any."""

    def requeue(self, delivery_ids: Iterable[str]) -> int:
        """Make these deliveries pending and due now, attempts reset; how many were."""

    def purge(self, state: State, before: float, limit: int = 1000) -> int:
        """Delete up to ``limit`` deliveries in ``state`` received before ``before``."""


def storable(text: str | None) -> str | None:
    """``text`` as every inbox can keep it: a lone surrogate escaped, and a NUL too.

    An error a route raised, or a header decoded from odd bytes, may hold either;
    SQLite's driver cannot encode the one and PostgreSQL's text refuses the other.
    """
    if text is None:
        return None
    return text.encode("utf-8", "backslashreplace").decode("utf-8").replace("\x00", "\\x00")


def new_id(now: float | None = None) -> str:
    """A new delivery id: sortable by time received, unique across processes."""
    millis = int((time.time() if now is None else now) * 1000)
    return f"{millis:012x}{os.getpid() & 0xFFFF:04x}{secrets.token_hex(4)}"


def stored_delivery(handler: WebhookHandler, outcome: Outcome, *, now: float) -> StoredDelivery:
    """The stored form of an accepted outcome: its bytes, the headers it needs, its new events."""
    delivery = outcome.delivery
    if delivery is None:  # pragma: no cover - an accepted outcome always has one
        raise ValueError("only an accepted delivery can be stored")
    pending = outcome.pending
    events: tuple[str, ...] | None = None
    if isinstance(pending, PendingEvents):
        # A batch read record by record: its new events' keys, without decoding it again.
        events = None if pending.keys is None else tuple(sorted(pending.keys))
    elif pending != delivery.events:
        # Some events of a batch were seen before: only the new ones may run.
        sender = verifier_of(handler).sender
        events = tuple(key for key in (sender.event_key(event) for event in pending) if key)
    headers = delivery.headers
    # Only what verifying again and parsing read: no cookie, proxy header or shared
    # token is kept at rest (nor sent to a broker).
    kept = verifier_of(handler).kept_headers()
    types = tuple(dict.fromkeys(kind[:64] for kind in event_types_of(pending)))[:16]
    return StoredDelivery(
        id=new_id(now),
        sender=handler.provider,
        handler=handler.provider,
        body=delivery.body,
        headers=tuple(
            (name, value) for name in headers if name in kept for value in headers.getall(name)
        ),
        received=now,
        event_types=types,
        events=events,
        next_attempt=now,
        traceparent=observe.traceparent(),  # the request's trace, when an observer traces
    )
