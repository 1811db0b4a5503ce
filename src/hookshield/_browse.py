"""What an inbox shows a person: filtered lists, counts, a delivery's attempts.

Theory of operation: the dashboard (``hookshield.dashboard``) and ``hookshield inbox``
ask an inbox the same questions, in the words of this module: a
:class:`DeliveryFilter` (state, sender, event type, a window of time received)
selects deliveries to list, count, retry or purge; :class:`InboxOverview` is what the
overview page draws; :class:`Attempt` is one line of a delivery's history.  An inbox
that answers them is a :class:`BrowsableInbox` (``SQLiteInbox`` is one).

:func:`moment` reads the times a person types (``2026-05-01``, ``2026-05-01T10:30``,
``2h`` for two hours ago), for both.

This module owns those shapes and their validation; it touches no store.
"""

from __future__ import annotations

import datetime
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Final, Protocol, runtime_checkable

from ._inbox import STATES, State, StoredDelivery, WorkerInbox

__all__ = [
    "Attempt",
    "BrowsableInbox",
    "DeliveryFilter",
    "InboxOverview",
    "moment",
]

#: The longest sender name or event type a filter takes: longer ones match nothing.
MAX_FILTER_TEXT: Final = 200

_UNITS: Final = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


@dataclass(frozen=True, slots=True, kw_only=True)
class DeliveryFilter:
    """Which deliveries: each field given narrows the selection, ``None`` leaves it open.

    ``state`` is one of pending, leased, done, dead; ``sender`` the sender's name
    (``"moco"``); ``event_type`` an event type the delivery carries, exactly, or a
    prefix ending in ``*`` (``"session.*"``); ``since`` and ``until`` (Unix seconds)
    bound when it was received, ``since`` included and ``until`` not.
    """

    state: State | None = None
    sender: str | None = None
    event_type: str | None = None
    since: float | None = None
    until: float | None = None

    def __post_init__(self) -> None:
        if self.state is not None and self.state not in STATES:
            raise ValueError(f"state must be one of {', '.join(STATES)}, not {self.state!r}")
        for name in ("sender", "event_type"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, str):
                raise TypeError(f"{name} must be a str, not {type(value).__name__}")
            if value is not None and len(value) > MAX_FILTER_TEXT:
                raise ValueError(f"{name} is longer than {MAX_FILTER_TEXT} characters")
        for name in ("since", "until"):
            value = getattr(self, name)
            if value is not None and (
                isinstance(value, bool)
                or not isinstance(value, (int, float))
                or not math.isfinite(value)
            ):
                raise ValueError(f"{name} must be a finite number of Unix seconds, not {value!r}")

    @property
    def empty(self) -> bool:
        """Whether it selects every delivery."""
        return all(getattr(self, name) is None for name in self.__slots__)

    def matches(self, delivery: StoredDelivery) -> bool:
        """Whether ``delivery`` is selected: the rule every inbox's query follows."""
        if self.state is not None and delivery.state != self.state:
            return False
        if self.sender is not None and delivery.sender != self.sender:
            return False
        if self.event_type is not None:
            wanted = self.event_type
            if wanted.endswith("*"):
                if not any(kind.startswith(wanted[:-1]) for kind in delivery.event_types):
                    return False
            elif wanted not in delivery.event_types:
                return False
        if self.since is not None and delivery.received < self.since:
            return False
        return not (self.until is not None and delivery.received >= self.until)


@dataclass(frozen=True, slots=True)
class Attempt:
    """One line of a delivery's history: when, which attempt, what came of it.

    ``state`` is what the attempt left it in (``done``, ``pending`` for a retry,
    ``dead``), ``"lease ended"`` when its worker never settled it, or ``"requeued"``
    when a person made it due again (``attempt`` is then 0).  ``error`` is the error
    noted, if any.
    """

    at: float
    attempt: int
    state: str
    error: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class InboxOverview:
    """Counts for the overview page, taken at ``now``.

    ``counts`` by state; ``by_sender`` each sender's counts by state; ``oldest_due``
    the ``next_attempt`` of the delivery that has waited longest past its due time
    (``None`` when none is due: the workers keep up); ``buckets`` the deliveries
    received in each of ``len(buckets)`` equal spans of ``span`` seconds ending at
    ``now``, oldest first, by the state each is in now.
    """

    now: float
    counts: Mapping[str, int]
    by_sender: Mapping[str, Mapping[str, int]]
    oldest_due: float | None
    span: float
    buckets: tuple[Mapping[str, int], ...]


@runtime_checkable
class BrowsableInbox(WorkerInbox, Protocol):
    """An inbox a person can browse and steer: what the dashboard and ``hookshield inbox`` need.

    Newest first means by time received, then by id, both descending.
    """

    def find(
        self, where: DeliveryFilter, *, limit: int = 50, before: str | None = None
    ) -> list[StoredDelivery]:
        """Up to ``limit`` deliveries ``where`` selects, newest first.

        ``before`` is the id of the last delivery of the page before: the next page
        starts after it (a delivery purged meanwhile ends the paging).
        """

    def count(self, where: DeliveryFilter) -> int:
        """How many deliveries ``where`` selects."""

    def requeue_matching(
        self, where: DeliveryFilter, *, after: str = "", limit: int = 1000
    ) -> tuple[int, str | None]:
        """Requeue up to ``limit`` deliveries ``where`` selects whose id sorts after ``after``.

        As :meth:`WorkerInbox.requeue` (pending, due now, attempts reset; a leased one
        is left to its worker).  Returns how many, and the id to pass as ``after``
        next (``None`` once none is left): walking ids forward ends even while
        workers dead-letter requeued deliveries again behind the walk.
        """

    def purge_matching(self, where: DeliveryFilter, *, limit: int = 1000) -> int:
        """Delete up to ``limit`` deliveries ``where`` selects; its state must be done or dead."""

    def discard(self, delivery_ids: Iterable[str]) -> int:
        """Delete these deliveries if they are done or dead; how many were."""

    def history(self, delivery_id: str) -> list[Attempt]:
        """The attempts made on ``delivery_id``, oldest first (the latest few are kept)."""

    def overview(self, now: float, *, span: float, buckets: int) -> InboxOverview:
        """The counts of the overview page; see :class:`InboxOverview`."""


def moment(text: str, *, now: float) -> float:
    """A time typed by a person, in Unix seconds.

    An ISO 8601 date or date and time (``2026-05-01``, ``2026-05-01T10:30:00+02:00``;
    UTC when it names no zone), Unix seconds (``1767225600``), or an age before
    ``now`` (``90s``, ``30m``, ``12h``, ``7d``, ``2w``).  Anything else raises
    :class:`ValueError` saying what is accepted.
    """
    text = text.strip()
    age = re.fullmatch(r"(\d+(?:\.\d+)?)([smhdw])", text)
    if age is not None:
        return now - float(age[1]) * _UNITS[age[2]]
    if re.fullmatch(r"\d{9,11}(?:\.\d+)?", text):
        return float(text)
    try:
        when = datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(
            f"{text[:40]!r} is not a time: give a date (2026-05-01), a date and time "
            "(2026-05-01T10:30, UTC unless it names a zone) or an age (30m, 12h, 7d)"
        ) from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=datetime.timezone.utc)
    return when.timestamp()
