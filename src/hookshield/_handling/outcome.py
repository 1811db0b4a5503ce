"""What became of one delivery, and what to answer its sender.

Theory of operation: every way through :class:`~hookshield.WebhookHandler` ends in
one :class:`Outcome`, built once, whose ``status`` is the HTTP answer.  The status is
the part that matters to the sender: 2xx ends its retries, anything else makes it try
again later.  So a delivery that can never succeed gets a 4xx, a duplicate of one
already handled gets 200, and a failure on our side (a route raised, the
de-duplication store is down, another attempt is still running) gets a status that
makes the sender retry: 500, 503 or 409.

This module owns the result type and the wording of the answers; it decides nothing.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Final, overload

from .._core.events import Delivery, Event

__all__ = ["Outcome", "PendingEvents", "event_types_of"]

#: The statuses an adapter answers with a ``Retry-After`` header, and its value.
RETRY_AFTER: Final = {409: "30", 503: "30"}


@dataclass(frozen=True, slots=True)
class Outcome:
    """What became of one delivery, and what to answer the sender.

    ``status`` is the HTTP status: 200 for a dispatched, duplicate, unhandled or empty
    delivery; the error's status for a rejected one; 409 while another attempt at the
    same delivery is still running; 500 when a route raised and 503 when the
    de-duplication store failed, so that the sender retries.  ``reason`` is a short
    explanation for logs.
    """

    status: int
    reason: str
    delivery: Delivery | None = None
    error: BaseException | None = None
    #: Whether the delivery (or every event of a batch) was handled before.
    duplicate: bool = False
    #: How many route calls ran.
    dispatched: int = 0
    #: The new events of an accepted delivery (see :class:`~hookshield.Accepted`): a
    #: tuple, or for a batch read record by record a :class:`PendingEvents`.
    pending: Sequence[Event] = field(default=(), repr=False)

    @property
    def ok(self) -> bool:
        """Whether the sender gets a 2xx answer."""
        return 200 <= self.status < 300

    def response_body(self) -> bytes:
        """A small JSON body for the HTTP answer: never a secret, signature or traceback."""
        if self.ok:
            return b'{"ok":true,"duplicate":true}' if self.duplicate else b'{"ok":true}'
        if self.status >= 500:
            return b'{"error":"the delivery could not be processed; please retry"}'
        return json.dumps({"error": self.reason}).encode("utf-8")

    def response_headers(self) -> tuple[tuple[str, str], ...]:
        """Extra headers of the HTTP answer: ``Allow`` for a 405, ``Retry-After`` to retry."""
        if self.status == 405:
            return (("Allow", "POST"),)
        retry_after = RETRY_AFTER.get(self.status)
        return () if retry_after is None else (("Retry-After", retry_after),)


class PendingEvents(Sequence[Event]):
    """The new events of a batch accepted record by record, decoded again when read.

    :meth:`~hookshield.WebhookHandler.accept` claims a batch's records one at a time
    and lets each go, keeping only the keys of the new ones: so accepting a batch
    costs about its body's size, not that of all its decoded events.  Iterating
    decodes the body again, record by record, and yields the new events in order;
    ``len()`` and truth need no decoding.  Indexing decodes the batch up to the index
    each time: iterate instead.
    """

    __slots__ = ("_count", "_key", "_source", "keys", "types")

    def __init__(
        self,
        source: Callable[[], Iterator[Event]],
        *,
        count: int,
        keys: frozenset[str] | None,
        key: Callable[[Event], str | None],
        types: tuple[str, ...],
    ) -> None:
        self._source = source
        self._key = key
        self._count = count
        #: The keys (the sender's ``event_key``) of the new events; ``None`` for all.
        self.keys = keys
        #: The distinct types of the new events, in the order they first come.
        self.types = types

    def __len__(self) -> int:
        return self._count

    def __iter__(self) -> Iterator[Event]:
        keys = self.keys
        if keys is None:
            yield from self._source()
            return
        seen: set[str] = set()
        for event in self._source():
            key = self._key(event)
            if key is None:
                yield event  # no key to claim: new every time, as accept() found it
            elif key in keys and key not in seen:
                seen.add(key)  # the same record twice in one batch runs once
                yield event

    @overload
    def __getitem__(self, index: int) -> Event: ...
    @overload
    def __getitem__(self, index: slice) -> Sequence[Event]: ...
    def __getitem__(self, index: int | slice) -> Event | Sequence[Event]:
        return tuple(self)[index]

    def __reversed__(self) -> Iterator[Event]:
        return reversed(tuple(self))

    def __repr__(self) -> str:
        kinds = ", ".join(self.types[:5]) + (", ..." if len(self.types) > 5 else "")
        return f"<PendingEvents: {self._count} new events of types {kinds}>"


def event_types_of(events: Sequence[Event]) -> tuple[str, ...]:
    """The distinct types of ``events``, without decoding a :class:`PendingEvents` again."""
    if isinstance(events, PendingEvents):
        return events.types
    return tuple(dict.fromkeys(event.type for event in events))
