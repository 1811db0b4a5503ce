"""What an inbox shows a person: filtered lists, counts, a delivery's attempts.

Theory of operation: the dashboard (``hookshield.dashboard``) and ``hookshield inbox``
ask an inbox the same questions, in the words of this module: a
:class:`DeliveryFilter` (state, sender, event type, a window of time received)
selects deliveries to list, count, retry or purge; :class:`InboxOverview` is what the
overview page draws; :class:`Attempt` is one line of a delivery's history.  An inbox
that answers them is a :class:`BrowsableInbox`; one that also keeps refusals
(:class:`~hookshield.RefusalKeeper`) and can be paused and repaired is a
:class:`ManagedInbox`: ``SQLiteInbox``, ``PostgresInbox`` and ``DjangoInbox`` are.

A delivery's history is kept with its row as an *attempt log*: one JSON object a
line (:func:`log_line`), appended by each settle, each lease that ended unsettled and
each requeue, and cut to its last :data:`LOG_CHARS` characters; :func:`attempts_of`
reads it back.  Every inbox writes and reads it with these, so that each keeps the
same history within the same bounds.

:func:`moment` reads the times a person types (``2026-05-01``, ``2026-05-01T10:30``,
``2h`` for two hours ago), for both.

This module owns those shapes, their validation and the attempt log's format; it
touches no store.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import math
import re
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Final, Protocol, runtime_checkable

from .inbox import LEASE_ENDED, STATES, State, StoredDelivery, WorkerInbox
from .refused import RefusalKeeper

__all__ = [
    "LOG_CHARS",
    "Attempt",
    "BrowsableInbox",
    "DeliveryFilter",
    "InboxOverview",
    "ManagedInbox",
    "attempts_of",
    "log_line",
    "moment",
]

#: The longest sender name or event type a filter takes: longer ones match nothing.
MAX_FILTER_TEXT: Final = 200

_UNITS: Final = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
#: The most characters of attempt log a row keeps: its latest lines, a few dozen.
LOG_CHARS: Final = 8000
#: The longest error an attempt's log line keeps.
LOG_ERROR: Final = 500
#: The state of the log line of a lease that ended unsettled, and of a requeue.
LEASE_ENDED_STATE: Final = "lease ended"
REQUEUED_STATE: Final = "requeued"


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


@runtime_checkable
class ManagedInbox(BrowsableInbox, RefusalKeeper, Protocol):
    """Every inbox ``hookshield inbox`` and the dashboard steer: search, browse, repair, pause.

    A :class:`BrowsableInbox` and a :class:`~hookshield.RefusalKeeper` (one that keeps
    none says so with ``keeps_refused``), with what the command line needs besides.
    :class:`~hookshield.SQLiteInbox`, ``hookshield.postgres.PostgresInbox`` and
    ``hookshield.django.DjangoInbox`` are.
    """

    def find_ids(self, prefix: str, limit: int = 10) -> tuple[list[str], int]:
        """Up to ``limit`` ids that start with ``prefix``, in order, and how many do in all."""

    def waiting(self) -> dict[str, int]:
        """How many deliveries wait to run (pending or leased), by handler name."""

    def counts(self) -> dict[str, int]:
        """How many deliveries are in each state."""

    def requeue_dead(self, after: str = "", limit: int = 1000) -> tuple[int, str | None]:
        """Requeue up to ``limit`` dead deliveries whose id sorts after ``after``; the next ``after``."""

    def reseal(self, delivery_ids: Iterable[str]) -> int:
        """Seal these deliveries as they stand now, vouching for them; how many there were."""

    def pause(self, sender: str) -> bool:
        """Lease none of ``sender``'s deliveries until resumed; ``False`` if paused already."""

    def resume(self, sender: str) -> bool:
        """Lease ``sender``'s deliveries again; ``False`` if it was not paused."""

    def paused(self) -> dict[str, float]:
        """The paused senders, and since when (seconds since the epoch)."""

    def close(self) -> None:
        """Let go of this inbox's connections (of this thread, or this process)."""


def log_line(attempt: int, state: str, error: str | None = None, *, at: float | None = None) -> str:
    """One line of a row's attempt log, newline included: ASCII JSON, its error cut.

    ASCII: a NUL or a lone surrogate in an error is escaped, and so kept by every
    database, and a character is a byte wherever the log is cut.
    """
    line: dict[str, object] = {
        "at": time.time() if at is None else at,
        "attempt": attempt,
        "state": state,
    }
    if error is not None:
        line["error"] = error[:LOG_ERROR]
    return json.dumps(line) + "\n"


def requeued_line() -> str:
    """The attempt log's line for a requeue by a person."""
    return log_line(0, REQUEUED_STATE)


def lease_ended_parts(at: float) -> tuple[str, str]:
    """The text before and after the attempt number of a lease-ended line (made in SQL)."""
    return '{"at": ' + repr(float(at)) + ', "attempt": ', f', "state": "{LEASE_ENDED_STATE}"}}\n'


def attempts_of(log: str | None) -> list[Attempt]:
    """The attempts an attempt log records, oldest first; a line that is not one is skipped.

    The first line kept may be cut part-way, where older lines were dropped.
    """
    attempts: list[Attempt] = []
    for line in (log or "").splitlines():
        try:
            item = json.loads(line)
            attempt = Attempt(
                at=float(item["at"]),
                attempt=int(item.get("attempt", 0)),
                state=str(item["state"]),
                error=None if item.get("error") is None else str(item["error"]),
            )
        except (ValueError, TypeError, KeyError, AttributeError):
            continue
        if attempt.state == LEASE_ENDED_STATE:
            attempt = dataclasses.replace(attempt, error=LEASE_ENDED)
        attempts.append(attempt)
    return attempts


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
