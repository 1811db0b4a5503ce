"""``SQLiteInbox``: a durable inbox in one SQLite file, for one machine.

Theory of operation: one table, one row per delivery.  A row is *pending* until it
is due (``next_attempt``), then *leased* to one worker until ``next_attempt``, which
is then the end of the lease, and finally *done* or *dead*.  A leased row whose lease
has ended is due again: its worker died, and another one takes it (at-least-once).

Every write is one statement in autocommit mode, except the lease, which is one
``UPDATE ... RETURNING`` (SQLite 3.35+) or, on an older SQLite, a ``SELECT`` and an
``UPDATE`` inside one ``BEGIN IMMEDIATE`` transaction, which takes the write lock
first: either way two workers can never lease the same row.  Each lease gets a
random ``lease_id``, and a worker's settling write names it, so that a worker whose
lease ran out and was taken over cannot settle the newer lease's row; not even after
a requeue has reset ``attempts`` to where that worker's lease had it.

Each row is sealed with the inbox's key (see ``_durable/seal.py``) when it is put, and a
worker checks the seal before it runs the row.  The key is never in the file: it is
passed (``key=``), in ``HOOKSHIELD_INBOX_KEY``, or in the key file beside the
database, ``<name>-key``, which is made only together with the database (or when an
inbox made before seals is first opened): an inbox whose key has gone missing refuses
to open rather than make a new one.  The file records the key's public id, so that
a process given another key is refused at once, not row by row.

The schema only grows: a column added by a later version is added to an existing
file the first time this version opens it (see ``_setup``), so that an inbox keeps
working across an upgrade, deliveries in it included.  Rows already there when seals
came are sealed then, once: they were trusted as they stood before.

Safe across processes (the web server's workers, several ``hookshield worker``s),
threads (a connection per thread) and ``fork`` (a child opens its own connection:
SQLite connections must not cross a fork).  This module owns the file and its SQL;
it never runs a route.
"""

from __future__ import annotations

import builtins
import contextlib
import dataclasses
import errno
import json
import math
import os
import secrets
import sqlite3
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, Final

from .._core.auth import Credentials, HmacSha256Key
from .._core.options import flag, number
from .._stores.common import seconds
from .._stores.sqlite import file_path, reset_locks_after_fork
from .browse import (
    LOG_CHARS,
    Attempt,
    DeliveryFilter,
    InboxOverview,
    attempts_of,
    lease_ended_parts,
    log_line,
    requeued_line,
)
from .inbox import LEASE_ENDED, STATES, State, StoredDelivery
from .refused import KEEP_WAIT, KEPT_BYTES, RefusedDelivery, keeping
from .seal import InboxKey, inbox_key

if sys.platform != "win32":
    import fcntl

__all__ = ["SQLiteInbox"]

#: SQLite 3.35 added ``RETURNING``.
_HAS_RETURNING: Final = sqlite3.sqlite_version_info >= (3, 35, 0)

_COLUMNS: Final = (
    "id, sender, handler, body, headers, received, event_types, events, attempts, "
    "state, next_attempt, last_error, lease_id, seal, traceparent"
)

#: The table as the first version made it; :data:`_ADDED` holds what came later.
_TABLE: Final = """
CREATE TABLE IF NOT EXISTS hookshield_inbox (
    id TEXT PRIMARY KEY,
    sender TEXT NOT NULL,
    handler TEXT NOT NULL,
    body BLOB NOT NULL,
    headers TEXT NOT NULL,
    received REAL NOT NULL,
    event_types TEXT NOT NULL,
    events TEXT,
    attempts INTEGER NOT NULL,
    state TEXT NOT NULL,
    next_attempt REAL NOT NULL,
    last_error TEXT
)
"""
_INDEX: Final = """
CREATE INDEX IF NOT EXISTS hookshield_inbox_due
    ON hookshield_inbox (next_attempt, id) WHERE state IN ('pending', 'leased')
"""
#: The indexes of browsing (the dashboard, ``inbox ls``), newest first over every row
#: or one state; made on first use where missing.  An older version ignores them.
_BROWSING: Final = {
    "hookshield_inbox_received": "ON hookshield_inbox (received, id)",
    "hookshield_inbox_state": "ON hookshield_inbox (state, received, id)",
}
#: Columns added since, each nullable, in the order they came: an existing file gets
#: the ones it lacks.  ``lease_id``: the lease a settle must match (fences workers);
#: ``seal``: the row's HMAC with the inbox's key; ``attempt_log``: the latest
#: attempts, one JSON object a line (see ``browse.log_line``); ``traceparent``: the
#: trace context of the request that brought it (not sealed).
_ADDED: Final = (
    ("lease_id", "TEXT"),
    ("seal", "TEXT"),
    ("attempt_log", "TEXT"),
    ("traceparent", "TEXT"),
)
#: Appends one line to a row's attempt log, keeping its last LOG_CHARS characters (the
#: first line kept may be cut: reading skips it).
_APPEND_LOG: Final = f"substr(coalesce(attempt_log, '') || ?, -{LOG_CHARS})"
#: The log line of a lease that ended unsettled, made in SQL: its attempt is the row's.
_LEASE_ENDED_LINE: Final = "? || attempts || ?"
#: Refused deliveries kept for diagnosis (keep_refused), the latest ones only.  Made
#: with the first refusal kept: an inbox that keeps none has no such table.
_REFUSED: Final = """
CREATE TABLE IF NOT EXISTS hookshield_refused (
    id TEXT PRIMARY KEY,
    sender TEXT NOT NULL,
    handler TEXT NOT NULL,
    status INTEGER NOT NULL,
    error TEXT NOT NULL,
    reason TEXT NOT NULL,
    peer TEXT,
    received REAL NOT NULL,
    headers TEXT NOT NULL,
    body BLOB NOT NULL,
    body_size INTEGER
)
"""
_REFUSED_COLUMNS: Final = (
    "id, sender, handler, status, error, reason, peer, received, headers, body, body_size"
)
#: A paused sender's row in the meta table: ``paused:<sender>``, valued since when.
_PAUSED: Final = "paused:"
#: Whether the sender of the row being leased is not paused.
_NOT_PAUSED: Final = (
    "NOT EXISTS (SELECT 1 FROM hookshield_inbox_meta "
    "WHERE name = 'paused:' || hookshield_inbox.sender)"
)
#: Facts about the inbox itself: ``key_id``, the public id of the key that seals it, and
#: each paused sender (``paused:<sender>``).
_META: Final = """
CREATE TABLE IF NOT EXISTS hookshield_inbox_meta (name TEXT PRIMARY KEY, value TEXT NOT NULL)
"""


class SQLiteInbox:
    """A durable inbox in the SQLite file at ``path``: ``background=SQLiteInbox(path)``.

    ``put`` returns once the delivery is on disk.  ``lease`` is how long a worker
    holds a delivery before another may run it (its process may have died): longer
    than your slowest route.  ``timeout`` is how long a write waits for another
    process's lock before failing (the web side then answers 503).

    ``key`` seals each row, so that a worker runs only rows as they were stored
    (:class:`~hookshield.InboxKey`, or its text or bytes).  Without one, the
    ``HOOKSHIELD_INBOX_KEY`` environment variable is used, and failing that the key
    file ``<name>-key`` beside the database, made with it: then every process that
    opens the file shares the key with nothing to configure.  An inbox whose key is
    missing, or is another, refuses to open with a ``ValueError`` that says which.

    The file and its table are created on first use.  ``create=False`` opens an
    inbox that exists already, and only that: a missing file raises
    :class:`FileNotFoundError` here, and a file that is not a hookshield inbox (another
    database, a text file) raises :class:`sqlite3.DatabaseError` at first use, so that
    a mistyped path is not a new, empty inbox.  ``read_only=True`` (which implies
    ``create=False``) opens it for reading only, as ``hookshield inbox ls`` does.

    The files are created readable by their owner only; beside the database,
    ``<name>-writer`` queues the processes that write.

    ``keep_refused=N`` keeps the latest N deliveries the handlers serving this inbox
    (``background=inbox``) refuse with a 4xx, for diagnosis: their sender, reason,
    peer, time, headers with credentials hidden, and at most the first
    ``keep_refused_bytes`` bytes of their body (see ``hookshield inbox refused`` and
    the dashboard).  Off (0) by default: each refusal kept costs a write, and its
    bytes are a stranger's.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        key: InboxKey | str | bytes | None = None,
        lease: float = 300.0,
        timeout: float = 5.0,
        create: bool = True,
        read_only: bool = False,
        keep_refused: int = 0,
        keep_refused_bytes: int = KEPT_BYTES,
    ) -> None:
        self.path = file_path("SQLiteInbox", path, "an inbox is the file workers share")
        text = os.fspath(path)
        self.read_only = flag("read_only", read_only)
        self.create = flag("create", create) and not self.read_only
        if not self.create and not self.path.is_file():
            raise FileNotFoundError(
                errno.ENOENT, "no such file, and create=False opens an existing inbox only", text
            )
        #: The key file, used when no key is given (``key=`` or ``HOOKSHIELD_INBOX_KEY``).
        self.key_path = self.path.with_name(self.path.name + "-key")
        self._given_key = inbox_key(key)
        self._key: InboxKey | None = None
        self.lease_seconds = seconds("lease", lease)
        # 0 is a timeout: fail at once when another writer holds the file.
        timeout = number("timeout", timeout)
        self.timeout = 0.0 if timeout == 0 else seconds("timeout", timeout)
        #: How many refused deliveries are kept (0: none), and how much of each body.
        self.keep_refused, self.keep_refused_bytes = keeping(keep_refused, keep_refused_bytes)
        self._returning = _HAS_RETURNING
        self._local = threading.local()
        self._setup_lock = threading.Lock()
        self._thread_write_lock = threading.Lock()
        self._ready_pid = 0
        self._refused_pid = 0
        self._lock_pid = 0
        self._lock_file = -1
        reset_locks_after_fork(self)

    # -- the web side ------------------------------------------------------------

    def put(self, delivery: StoredDelivery) -> None:
        """Store ``delivery``, sealed with this inbox's key; on disk (fsync'd) when this returns."""
        db = self._connection()
        delivery = self._sealer().seal(delivery)
        row = (
            delivery.id,
            delivery.sender,
            delivery.handler,
            delivery.body,
            json.dumps(delivery.headers),
            delivery.received,
            json.dumps(delivery.event_types),
            None if delivery.events is None else json.dumps(delivery.events),
            delivery.attempts,
            delivery.state,
            delivery.next_attempt,
            delivery.last_error,
            delivery.lease_id,
            delivery.seal,
            delivery.traceparent,
        )
        marks = ",".join("?" * len(row))
        with self._writing():
            db.execute(f"INSERT INTO hookshield_inbox ({_COLUMNS}) VALUES ({marks})", row)

    # -- the worker side -----------------------------------------------------------

    def lease(self, now: float, handlers: Sequence[str]) -> StoredDelivery | None:
        """Lease the next due delivery of one of ``handlers`` until ``now + lease``."""
        if not handlers:
            return None
        marks = ",".join("?" * len(handlers))
        pick = (
            "SELECT id FROM hookshield_inbox WHERE state IN ('pending', 'leased') "
            f"AND next_attempt <= ? AND handler IN ({marks}) AND {_NOT_PAUSED} "
            "ORDER BY next_attempt, id LIMIT 1"
        )
        # A row still 'leased' is due again because its lease ended unsettled: say so in
        # last_error (a SET reads the row as it was before the UPDATE).
        take = (
            "UPDATE hookshield_inbox SET state = 'leased', attempts = attempts + 1, "
            "next_attempt = ?, last_error = CASE WHEN state = 'leased' THEN ? "
            "ELSE last_error END, lease_id = ?, attempt_log = CASE WHEN state = 'leased' "
            f"THEN substr(coalesce(attempt_log, '') || {_LEASE_ENDED_LINE}, -{LOG_CHARS}) "
            "ELSE attempt_log END WHERE id = "
        )
        # A new id per lease: what the worker's settle must match (see _settle).
        lease = (
            now + self.lease_seconds,
            LEASE_ENDED,
            secrets.token_hex(16),
            *lease_ended_parts(now),
        )
        db = self._connection()
        if self._returning:
            with self._writing():
                row = db.execute(
                    f"{take}({pick}) RETURNING {_COLUMNS}", (*lease, now, *handlers)
                ).fetchone()
            return None if row is None else _delivery(row)
        with self._writing(), _immediate(db):
            found = db.execute(pick, (now, *handlers)).fetchone()
            if found is None:
                return None
            db.execute(f"{take}?", (*lease, found[0]))
            row = db.execute(
                f"SELECT {_COLUMNS} FROM hookshield_inbox WHERE id = ?", found
            ).fetchone()
        return _delivery(row)

    def done(self, delivery: StoredDelivery) -> bool:
        """Mark a leased delivery done; ``False`` if another worker has leased it since."""
        return self._settle(delivery, "done", delivery.next_attempt, None)

    def retry(self, delivery: StoredDelivery, at: float, error: str) -> bool:
        """Make a leased delivery pending again, due at ``at``."""
        return self._settle(delivery, "pending", at, error)

    def dead(self, delivery: StoredDelivery, error: str) -> bool:
        """Move a leased delivery to dead-letter."""
        return self._settle(delivery, "dead", delivery.next_attempt, error)

    def check_seal(self, delivery: StoredDelivery) -> None:
        """Raise :class:`~hookshield.TamperedDelivery` unless ``delivery``'s seal matches."""
        self._connection()
        self._sealer().check(delivery)

    # -- pausing a sender ----------------------------------------------------------

    def pause(self, sender: str) -> bool:
        """Lease none of ``sender``'s deliveries until :meth:`resume`; ``False`` if paused already."""
        db = self._connection()
        with self._writing():
            cursor = db.execute(
                "INSERT OR IGNORE INTO hookshield_inbox_meta (name, value) VALUES (?, ?)",
                (_PAUSED + sender, repr(time.time())),
            )
        return cursor.rowcount > 0

    def resume(self, sender: str) -> bool:
        """Lease ``sender``'s deliveries again; ``False`` if it was not paused."""
        db = self._connection()
        with self._writing():
            cursor = db.execute(
                "DELETE FROM hookshield_inbox_meta WHERE name = ?", (_PAUSED + sender,)
            )
        return cursor.rowcount > 0

    def paused(self) -> dict[str, float]:
        """The paused senders, and since when (seconds since the epoch)."""
        rows = self._connection().execute(
            "SELECT name, value FROM hookshield_inbox_meta WHERE name >= ? AND name < ? "
            "ORDER BY name",
            (_PAUSED, _PAUSED[:-1] + chr(ord(_PAUSED[-1]) + 1)),
        )
        return {name[len(_PAUSED) :]: float(value) for name, value in rows}

    # -- inspection, for ``hookshield inbox`` -----------------------------------------

    def get(self, delivery_id: str) -> StoredDelivery | None:
        """The stored delivery ``delivery_id``, or ``None``."""
        row = (
            self._connection()
            .execute(f"SELECT {_COLUMNS} FROM hookshield_inbox WHERE id = ?", (delivery_id,))
            .fetchone()
        )
        return None if row is None else _delivery(row)

    def find_ids(self, prefix: str, limit: int = 10) -> tuple[list[str], int]:
        """Up to ``limit`` ids that start with ``prefix``, in order, and how many do in all."""
        # A range over the primary key's index: every id that starts with the prefix
        # sorts at or after it and before it followed by the highest code point.
        bounds = (prefix, prefix + "\U0010ffff")
        db = self._connection()
        (count,) = db.execute(
            "SELECT count(*) FROM hookshield_inbox WHERE id >= ? AND id < ?", bounds
        ).fetchone()
        ids = [
            row[0]
            for row in db.execute(
                "SELECT id FROM hookshield_inbox WHERE id >= ? AND id < ? ORDER BY id LIMIT ?",
                (*bounds, limit),
            )
        ]
        return ids, count

    def waiting(self) -> dict[str, int]:
        """How many deliveries wait to run (pending or leased), by handler name."""
        rows = self._connection().execute(
            "SELECT handler, count(*) FROM hookshield_inbox "
            "WHERE state IN ('pending', 'leased') GROUP BY handler ORDER BY handler"
        )
        return dict(rows.fetchall())

    def list(self, state: State | None = None, limit: int = 100) -> list[StoredDelivery]:
        """Up to ``limit`` deliveries, oldest first, in ``state`` or any."""
        where, args = ("", ()) if state is None else ("WHERE state = ?", (_state(state),))
        rows = self._connection().execute(
            f"SELECT {_COLUMNS} FROM hookshield_inbox {where} ORDER BY received, id LIMIT ?",
            (*args, limit),
        )
        return [_delivery(row) for row in rows]

    def counts(self) -> dict[str, int]:
        """How many deliveries are in each state."""
        rows = self._connection().execute(
            "SELECT state, count(*) FROM hookshield_inbox GROUP BY state"
        )
        found = dict(rows.fetchall())
        return {state: found.get(state, 0) for state in STATES}

    def oldest_due(self, now: float | None = None) -> float | None:
        """When the delivery due longest became due (Unix seconds), or ``None`` if none is.

        A delivery is due once its ``next_attempt`` has passed and it is pending, or
        leased with a lease that has ended: what ``lease`` would take.
        """
        row = self._connection().execute(
            "SELECT min(next_attempt) FROM hookshield_inbox "
            "WHERE state IN ('pending', 'leased') AND next_attempt <= ?",
            (time.time() if now is None else now,),
        )
        found = row.fetchone()[0]
        return None if found is None else float(found)

    def requeue(self, delivery_ids: Iterable[str]) -> int:
        """Make these deliveries pending, due now, attempts reset; how many there were.

        A leased delivery is left alone (and not counted): a worker is running it,
        and making it due would let another worker run it beside that one.
        """
        db = self._connection()
        count = 0
        with self._writing(), _immediate(db):
            for delivery_id in delivery_ids:
                count += db.execute(
                    "UPDATE hookshield_inbox SET state = 'pending', attempts = 0, "
                    f"next_attempt = 0, last_error = NULL, attempt_log = {_APPEND_LOG} "
                    "WHERE id = ? AND state != 'leased'",
                    (requeued_line(), delivery_id),
                ).rowcount
        return count

    def requeue_dead(self, after: str = "", limit: int = 1000) -> tuple[int, str | None]:
        """Requeue up to ``limit`` dead deliveries whose id sorts after ``after``.

        Returns how many, and the id to pass as ``after`` next (``None`` when no
        dead delivery is left past it).  Walking the ids forward ends even while
        workers dead-letter the requeued deliveries again behind the walk.
        """
        db = self._connection()
        with self._writing(), _immediate(db):
            ids = [
                row[0]
                for row in db.execute(
                    "SELECT id FROM hookshield_inbox WHERE state = 'dead' AND id > ? "
                    "ORDER BY id LIMIT ?",
                    (after, limit),
                )
            ]
            if not ids:
                return 0, None
            marks = ",".join("?" * len(ids))
            count = db.execute(
                "UPDATE hookshield_inbox SET state = 'pending', attempts = 0, "
                f"next_attempt = 0, last_error = NULL, attempt_log = {_APPEND_LOG} "
                f"WHERE id IN ({marks})",
                (requeued_line(), *ids),
            ).rowcount
        return count, ids[-1]

    def reseal(self, delivery_ids: Iterable[str]) -> int:
        """Seal these deliveries as they stand now, vouching for them; how many there were.

        For a row stored without a seal (by an older hookshield still running beside
        this one) that a person has checked.  A leased delivery is left alone.
        """
        db = self._connection()
        key = self._sealer()
        count = 0
        with self._writing(), _immediate(db):
            for delivery_id in delivery_ids:
                row = db.execute(
                    f"SELECT {_COLUMNS} FROM hookshield_inbox WHERE id = ? AND state != 'leased'",
                    (delivery_id,),
                ).fetchone()
                if row is not None:
                    seal = key.seal_of(_delivery(row))
                    db.execute(
                        "UPDATE hookshield_inbox SET seal = ? WHERE id = ?", (seal, delivery_id)
                    )
                    count += 1
        return count

    def purge(self, state: State, before: float, limit: int = 1000) -> int:
        """Delete up to ``limit`` deliveries in ``state`` received before ``before``."""
        db = self._connection()
        with self._writing():
            cursor = db.execute(
                "DELETE FROM hookshield_inbox WHERE id IN (SELECT id FROM hookshield_inbox "
                "WHERE state = ? AND received < ? LIMIT ?)",
                (_state(state), before, limit),
            )
        return cursor.rowcount

    # -- browsing and steering, for the dashboard and ``hookshield inbox`` ------------

    def find(
        self, where: DeliveryFilter, *, limit: int = 50, before: str | None = None
    ) -> builtins.list[StoredDelivery]:
        """Up to ``limit`` deliveries ``where`` selects, newest first; after ``before``'s page.

        ``before`` is the id of the last delivery of the page before (see
        :meth:`~hookshield.BrowsableInbox.find`).
        """
        clause, args = _where(where)
        if before is not None:
            # Row values: the rows after that one in the order (received, id) descending.
            clause += (
                " AND (received, id) < (SELECT received, id FROM hookshield_inbox WHERE id = ?)"
            )
            args.append(before)
        rows = self._connection().execute(
            f"SELECT {_COLUMNS} FROM hookshield_inbox WHERE {clause} "
            "ORDER BY received DESC, id DESC LIMIT ?",
            (*args, max(1, limit)),
        )
        return [_delivery(row) for row in rows]

    def count(self, where: DeliveryFilter) -> int:
        """How many deliveries ``where`` selects."""
        clause, args = _where(where)
        (found,) = (
            self._connection()
            .execute(f"SELECT count(*) FROM hookshield_inbox WHERE {clause}", args)
            .fetchone()
        )
        return int(found)

    def requeue_matching(
        self, where: DeliveryFilter, *, after: str = "", limit: int = 1000
    ) -> tuple[int, str | None]:
        """Requeue up to ``limit`` deliveries ``where`` selects whose id sorts after ``after``.

        Returns how many, and the id to pass as ``after`` next (``None`` once none is
        left).  A leased delivery is left to its worker, as :meth:`requeue` does.
        """
        clause, args = _where(where)
        db = self._connection()
        with self._writing(), _immediate(db):
            ids = [
                row[0]
                for row in db.execute(
                    f"SELECT id FROM hookshield_inbox WHERE {clause} AND id > ? "
                    "AND state != 'leased' ORDER BY id LIMIT ?",
                    (*args, after, max(1, limit)),
                )
            ]
            if not ids:
                return 0, None
            marks = ",".join("?" * len(ids))
            count = db.execute(
                "UPDATE hookshield_inbox SET state = 'pending', attempts = 0, "
                f"next_attempt = 0, last_error = NULL, attempt_log = {_APPEND_LOG} "
                f"WHERE id IN ({marks}) AND state != 'leased'",
                (requeued_line(), *ids),
            ).rowcount
        return count, ids[-1]

    def purge_matching(self, where: DeliveryFilter, *, limit: int = 1000) -> int:
        """Delete up to ``limit`` deliveries ``where`` selects, which must name done or dead.

        A pending or leased delivery is never purged by a filter: it has yet to run.
        """
        if where.state not in ("done", "dead"):
            raise ValueError("purge deletes done or dead deliveries only: give state done or dead")
        clause, args = _where(where)
        db = self._connection()
        with self._writing():
            cursor = db.execute(
                "DELETE FROM hookshield_inbox WHERE id IN (SELECT id FROM hookshield_inbox "
                f"WHERE {clause} LIMIT ?)",
                (*args, max(1, limit)),
            )
        return cursor.rowcount

    def discard(self, delivery_ids: Iterable[str]) -> int:
        """Delete these deliveries if they are done or dead; how many were.

        A pending or leased delivery is left alone: it has yet to run.
        """
        db = self._connection()
        count = 0
        with self._writing(), _immediate(db):
            for delivery_id in delivery_ids:
                count += db.execute(
                    "DELETE FROM hookshield_inbox WHERE id = ? AND state IN ('done', 'dead')",
                    (delivery_id,),
                ).rowcount
        return count

    def history(self, delivery_id: str) -> builtins.list[Attempt]:
        """The latest attempts made on ``delivery_id``, oldest first; empty when there is none.

        Each settle (done, retried, dead), each lease that ended unsettled and each
        requeue by a person adds a line; a row keeps its last few dozen.
        """
        row = (
            self._connection()
            .execute("SELECT attempt_log FROM hookshield_inbox WHERE id = ?", (delivery_id,))
            .fetchone()
        )
        return [] if row is None else attempts_of(row[0])

    def overview(self, now: float, *, span: float, buckets: int) -> InboxOverview:
        """The overview page's counts at ``now``; see :class:`~hookshield.InboxOverview`."""
        if not (span > 0 and math.isfinite(span)) or not 1 <= buckets <= 1000:
            raise ValueError("span must be a positive number of seconds and buckets 1 to 1000")
        db = self._connection()
        by_sender: dict[str, dict[str, int]] = {}
        for sender, state, count in db.execute(
            "SELECT sender, state, count(*) FROM hookshield_inbox GROUP BY sender, state "
            "ORDER BY sender"
        ):
            by_sender.setdefault(sender, dict.fromkeys(STATES, 0))[state] = count
        (oldest,) = db.execute(
            "SELECT min(next_attempt) FROM hookshield_inbox "
            "WHERE state IN ('pending', 'leased') AND next_attempt <= ?",
            (now,),
        ).fetchone()
        start, width = now - span, span / buckets
        counted: builtins.list[dict[str, int]] = [dict.fromkeys(STATES, 0) for _ in range(buckets)]
        for bucket, state, count in db.execute(
            "SELECT CAST((received - ?) / ? AS INTEGER), state, count(*) FROM hookshield_inbox "
            "WHERE received >= ? AND received < ? GROUP BY 1, 2",
            (start, width, start, now),
        ):
            counted[min(int(bucket), buckets - 1)][state] = count
        return InboxOverview(
            now=now,
            counts=self.counts(),
            by_sender=by_sender,
            oldest_due=None if oldest is None else float(oldest),
            span=float(span),
            buckets=tuple(counted),
        )

    # -- refused deliveries, kept for diagnosis (keep_refused) -----------------------

    @property
    def keeps_refused(self) -> bool:
        """Whether refused deliveries are kept (``keep_refused`` above 0, not read-only)."""
        return self.keep_refused > 0 and not self.read_only

    @property
    def refused_body_limit(self) -> int:
        """The most bytes of a refused delivery's body kept (``keep_refused_bytes``)."""
        return self.keep_refused_bytes

    def keep_refusal(self, refused: RefusedDelivery) -> bool:
        """Keep ``refused`` and forget all but the latest ``keep_refused``; ``False`` if not kept.

        Its body is cut to ``keep_refused_bytes``.  The writer lock is waited for a
        few milliseconds at most: under a flood of refusals some are dropped rather
        than hold up the deliveries that queue for the same lock.
        """
        if not self.keeps_refused:
            return False
        body = refused.body[: self.keep_refused_bytes]
        row = (
            refused.id,
            refused.sender,
            refused.handler,
            refused.status,
            refused.error,
            refused.reason,
            refused.peer,
            refused.received,
            json.dumps(refused.headers),
            body,
            refused.body_size,
        )
        db = self._connection()
        try:
            with self._writing(wait=min(self.timeout, KEEP_WAIT)), _immediate(db):
                if self._refused_pid != os.getpid():
                    db.execute(_REFUSED)
                    self._refused_pid = os.getpid()
                db.execute(
                    f"INSERT OR REPLACE INTO hookshield_refused ({_REFUSED_COLUMNS}) "
                    "VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                    row,
                )
                db.execute(
                    "DELETE FROM hookshield_refused WHERE id NOT IN (SELECT id FROM "
                    "hookshield_refused ORDER BY received DESC, id DESC LIMIT ?)",
                    (self.keep_refused,),
                )
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc):
                raise
            return False
        return True

    def refused(
        self, *, limit: int = 50, before: str | None = None
    ) -> builtins.list[RefusedDelivery]:
        """Up to ``limit`` kept refusals, newest first; those after the id ``before``, if given."""
        clause = ""
        args: builtins.list[object] = [max(1, limit)]
        if before is not None:
            clause = (
                "WHERE (received, id) < (SELECT received, id FROM hookshield_refused WHERE id = ?)"
            )
            args = [before, *args]
        rows = self._refused_rows(
            f"SELECT {_REFUSED_COLUMNS} FROM hookshield_refused {clause} "
            "ORDER BY received DESC, id DESC LIMIT ?",
            args,
        )
        return [_refused(row) for row in rows]

    def get_refused(self, refused_id: str) -> RefusedDelivery | None:
        """The kept refusal ``refused_id``, or ``None``."""
        rows = self._refused_rows(
            f"SELECT {_REFUSED_COLUMNS} FROM hookshield_refused WHERE id = ?", (refused_id,)
        )
        return _refused(rows[0]) if rows else None

    def forget_refused(self, refused_ids: Iterable[str]) -> int:
        """Forget these kept refusals; how many there were."""
        db = self._connection()
        count = 0
        with self._writing(), _immediate(db):
            for refused_id in refused_ids:
                try:
                    count += db.execute(
                        "DELETE FROM hookshield_refused WHERE id = ?", (refused_id,)
                    ).rowcount
                except sqlite3.OperationalError as exc:
                    if "no such table" not in str(exc):
                        raise
                    return 0
        return count

    def _refused_rows(self, sql: str, args: Sequence[object]) -> builtins.list[tuple[Any, ...]]:
        """The rows of a query of the refusals; none when none was ever kept."""
        try:
            return self._connection().execute(sql, args).fetchall()
        except sqlite3.OperationalError as exc:
            if "no such table" not in str(exc):
                raise
            return []

    def close(self) -> None:
        """Close this thread's connection (others close when their thread ends)."""
        db: sqlite3.Connection | None = getattr(self._local, "db", None)
        if db is not None:
            self._local.db = None
            db.close()

    def __repr__(self) -> str:
        mode = ", read_only=True" if self.read_only else "" if self.create else ", create=False"
        return f"SQLiteInbox({str(self.path)!r}, lease={self.lease_seconds}{mode})"

    # -- internals ------------------------------------------------------------------

    def _settle(self, delivery: StoredDelivery, state: str, due: float, error: str | None) -> bool:
        # The lease id fences the write: a worker whose lease ran out, and whose
        # delivery another worker has leased since, changes nothing.  Not the attempt
        # number: a requeue resets it, and a later lease may then have the same one.
        db = self._connection()
        with self._writing():
            cursor = db.execute(
                "UPDATE hookshield_inbox SET state = ?, next_attempt = ?, last_error = ?, "
                f"lease_id = NULL, attempt_log = {_APPEND_LOG} "
                "WHERE id = ? AND state = 'leased' AND lease_id = ?",
                (
                    state,
                    due,
                    error,
                    log_line(delivery.attempts, state, error),
                    delivery.id,
                    delivery.lease_id,
                ),
            )
        return cursor.rowcount > 0

    @contextlib.contextmanager
    def _writing(self, wait: float | None = None) -> Iterator[None]:
        """Hold this inbox's writer lock: one writer at a time, queued by the kernel.

        SQLite makes a writer that finds the file locked sleep and try again (1 ms,
        then 2, 5, 10 ... up to 100 ms), so under load from several processes a
        put waits far longer than the write it waits for.  An ``flock`` on a file
        beside the database queues the writers instead, each woken the moment the
        one before is done.  A thread lock first: threads of one process share the
        file descriptor, which ``flock`` does not tell apart.

        Neither lock is waited for longer than ``timeout`` (or ``wait``, when given):
        then this raises :class:`sqlite3.OperationalError` as SQLite would, and the web
        side answers 503.  The ``flock`` is polled (a blocking one cannot time out), every few
        milliseconds: still far more often than SQLite's own waits.
        """
        if sys.platform == "win32":  # pragma: no cover - SQLite's own waiting only
            yield
            return
        timeout = self.timeout if wait is None else wait
        deadline = time.monotonic() + timeout
        if not self._thread_write_lock.acquire(timeout=timeout):
            raise sqlite3.OperationalError("database is locked")
        try:
            fd = self._lock_fd()
            _flock_until(fd, deadline)
            try:
                yield
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            self._thread_write_lock.release()

    def _after_fork(self) -> None:
        # In a forked child, a lock held by a thread of the parent would never be let go.
        self._setup_lock = threading.Lock()
        self._thread_write_lock = threading.Lock()

    def _lock_fd(self) -> int:
        pid = os.getpid()
        if self._lock_pid != pid:
            # A descriptor inherited over fork shares its lock with the parent's.
            path = self.path.with_name(self.path.name + "-writer")
            self._lock_file = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
            self._lock_pid = pid
        return self._lock_file

    def _connection(self) -> sqlite3.Connection:
        pid = os.getpid()
        db: sqlite3.Connection | None = getattr(self._local, "db", None)
        if db is not None and getattr(self._local, "pid", 0) == pid:
            return db
        # After fork the parent's connection belongs to the parent: open another and
        # leave that one alone (closing it here could disturb the parent's locks).
        if self.create and self._ready_pid != pid and not self.path.exists():
            # Created owner-only: the rows hold request headers, tokens included.
            # SQLite gives its -wal and -shm files the same permissions.
            with contextlib.suppress(FileExistsError):
                os.close(os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
        db = sqlite3.connect(
            self._target(),
            timeout=self.timeout,  # the busy timeout: how long a write waits for a lock
            isolation_level=None,  # autocommit: each statement is its own transaction
            check_same_thread=True,
            uri=not self.create,
        )
        try:
            if self._ready_pid != pid:
                self._setup(db, pid)
            # synchronous=FULL: in WAL mode SQLite then fsyncs the log at every commit,
            # so a delivery acknowledged to its sender survives kill -9 *and* power loss.
            # (NORMAL syncs only at checkpoints: it survives a killed process, but a
            # power cut may lose the last deliveries acknowledged.)
            db.execute("PRAGMA synchronous = FULL")
        except BaseException:
            db.close()
            raise
        self._local.db = db
        self._local.pid = pid
        return db

    def _target(self) -> str | Path:
        """The file to connect to: a URI that never creates it, unless ``create``."""
        if self.create:
            return self.path
        # mode=rw fails on a missing file where a plain path would make a new one.
        return f"{self.path.absolute().as_uri()}?mode={'ro' if self.read_only else 'rw'}"

    def _setup(self, db: sqlite3.Connection, pid: int) -> None:
        with self._setup_lock:
            if self._ready_pid == pid:
                return
            if self.create:
                # WAL: the web side's writes and the workers' reads do not block each
                # other, and a commit is one append to the log.
                db.execute("PRAGMA journal_mode = WAL")
            else:
                self._check_schema(db)
            key_id = _key_id(db)
            if (
                key_id is not None
                and _columns(db) >= {column for column, _ in _ADDED}
                and _indexes(db) >= _BROWSING.keys()
            ):
                # The usual case: up to date, and no write lock taken to look.
                self._key = self._existing_key(key_id)
                self._ready_pid = pid
                return
            # Created, or brought up to date, by one process at a time: the others wait
            # for the write lock, then find nothing left to do.
            with self._writing(), _immediate(db):
                if self.create:
                    db.execute(_TABLE)
                    db.execute(_INDEX)
                db.execute(_META)
                have = _columns(db)
                for column, kind in _ADDED:
                    if column not in have:
                        db.execute(f"ALTER TABLE hookshield_inbox ADD COLUMN {column} {kind}")
                for index, where in _BROWSING.items():
                    db.execute(f"CREATE INDEX IF NOT EXISTS {index} {where}")
                key_id = _key_id(db)
                if key_id is None:
                    # A new inbox, or one made before seals: its key is chosen now, and
                    # the rows an older version stored are sealed, once, as they stand but
                    # for the headers this version does not keep.
                    key = self._given_key or _key_file(self.key_path, create=True)
                    db.execute("INSERT INTO hookshield_inbox_meta VALUES ('key_id', ?)", (key.id,))
                    _seal_unsealed(db, key)
                else:
                    key = self._existing_key(key_id)
            self._key = key
            self._ready_pid = pid

    def _existing_key(self, key_id: str) -> InboxKey:
        """This process's key for an inbox sealed with the key ``key_id``; else a clear error."""
        key = self._given_key or _key_file(self.key_path, create=False)
        if key.id != key_id:
            raise ValueError(
                f"the inbox {str(self.path)!r} is sealed with another key (id {key_id}) than "
                f"this one (id {key.id}): give every process the key it was made with "
                f"(key=, HOOKSHIELD_INBOX_KEY or the file {str(self.key_path)!r})"
            )
        return key

    def _sealer(self) -> InboxKey:
        if self._key is None:  # pragma: no cover - _connection() sets it up first
            raise RuntimeError("the inbox is not open")
        return self._key

    def _check_schema(self, db: sqlite3.Connection) -> None:
        """Raise :class:`sqlite3.DatabaseError` unless the file is a hookshield inbox."""
        try:
            columns = {row[1] for row in db.execute("PRAGMA table_info(hookshield_inbox)")}
        except sqlite3.DatabaseError as exc:  # a text file, a truncated database
            raise sqlite3.DatabaseError(f"{self._name} is not a hookshield inbox: {exc}") from exc
        added = {name for name, _ in _ADDED}  # an older inbox gains these when opened
        missing = [n for n in _COLUMNS.split(", ") if n not in columns and n not in added]
        if missing:
            what = "no hookshield_inbox table" if not columns else "a table of another shape"
            raise sqlite3.DatabaseError(f"{self._name} is not a hookshield inbox: it has {what}")

    @property
    def _name(self) -> str:
        return repr(str(self.path))


def _flock_until(fd: int, deadline: float) -> None:
    """Take the exclusive ``flock`` on ``fd``, or raise once ``deadline`` has passed."""
    pause = 0.0005
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            left = deadline - time.monotonic()
            if left <= 0:
                raise sqlite3.OperationalError("database is locked") from None
            time.sleep(min(pause, left))
            pause = min(pause * 2, 0.005)


class _immediate:
    """``BEGIN IMMEDIATE`` ... ``COMMIT`` (or ``ROLLBACK`` on an error)."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db

    def __enter__(self) -> None:
        # IMMEDIATE takes the write lock now: no other writer can slip in between
        # this transaction's reads and its writes.
        self.db.execute("BEGIN IMMEDIATE")

    def __exit__(self, kind: object, *_: object) -> None:
        self.db.execute("ROLLBACK" if kind is not None else "COMMIT")


def _key_id(db: sqlite3.Connection) -> str | None:
    """The public id of the key the inbox is sealed with; ``None`` before it has one."""
    try:
        row = db.execute("SELECT value FROM hookshield_inbox_meta WHERE name = 'key_id'")
    except sqlite3.OperationalError:  # no such table: made before seals, or new
        return None
    found = row.fetchone()
    return None if found is None else str(found[0])


def _seal_unsealed(db: sqlite3.Connection, key: InboxKey) -> None:
    """Seal each row that has no seal, its headers cut first (in the caller's transaction).

    These are the rows of an inbox made before seals, stored by a release that kept
    every header: cookies, ``Authorization``, a sender's shared token.  Each keeps
    what this release keeps for its sender (:func:`_kept_headers`), and is sealed so.
    """
    ids = [row[0] for row in db.execute("SELECT id FROM hookshield_inbox WHERE seal IS NULL")]
    kept_by: dict[str, Callable[[str], bool]] = {}  # each sender's, worked out once
    for delivery_id in ids:  # one row in memory at a time: bodies may be large
        row = db.execute(
            f"SELECT {_COLUMNS} FROM hookshield_inbox WHERE id = ?", (delivery_id,)
        ).fetchone()
        delivery = _delivery(row)
        keeps = kept_by.get(delivery.sender)
        if keeps is None:
            keeps = kept_by[delivery.sender] = _kept_headers(delivery.sender)
        headers = tuple((name, value) for name, value in delivery.headers if keeps(name.lower()))
        seal = key.seal_of(dataclasses.replace(delivery, headers=headers))
        db.execute(
            "UPDATE hookshield_inbox SET headers = ?, seal = ? WHERE id = ?",
            (json.dumps(headers), seal, delivery_id),
        )


#: What no sender's verification or parsing reads: dropped from an old row of a sender
#: this process does not know (a described one it has not registered).
_NEVER_READ: Final = frozenset(
    {"authorization", "proxy-authorization", "cookie", "forwarded", "x-forwarded-for", "x-real-ip"}
)


def _kept_headers(sender: str) -> Callable[[str], bool]:
    """Whether a header (lower-case) of a row of ``sender`` is kept when it is sealed.

    For a sender this process knows, the headers a handler that checks its signature
    keeps (the most any handler of it keeps: :meth:`Provider.stored_headers`); for
    another, every header but those of :data:`_NEVER_READ`.
    """
    from ..providers import PROVIDERS  # a sender's module, only for an old inbox

    provider = PROVIDERS.get(sender)
    if provider is None:
        return lambda name: name not in _NEVER_READ
    signing = Credentials(hmac_keys=(HmacSha256Key(b"any"),))  # asks only whether it signs
    kept = provider.stored_headers(signing)
    return kept.__contains__


def _key_file(path: Path, *, create: bool) -> InboxKey:
    """The key in the key file ``path``; with ``create``, made first if there is none."""
    if create and not path.exists():
        _make_key_file(path)
    try:
        text = path.read_text(encoding="ascii")
    except FileNotFoundError:
        raise ValueError(
            f"the inbox's key is missing: {str(path)!r} does not exist.  Its rows are sealed "
            "with the key that was there, and nothing is stored or run without it: restore "
            "the file, or give the key it held (key=, HOOKSHIELD_INBOX_KEY)"
        ) from None
    except UnicodeDecodeError:
        raise ValueError(f"the inbox key file {str(path)!r} is not a key") from None
    try:
        return InboxKey(text)
    except ValueError as exc:
        raise ValueError(f"the inbox key file {str(path)!r}: {exc}") from None


def _make_key_file(path: Path) -> None:
    """Write a new random key to ``path``, owner-only, unless another process just did."""
    # Written whole under another name, fsync'd, then linked into place: a process
    # that finds the file finds all of it, and a link never replaces a key already
    # there.  The key must outlive a power cut as the rows sealed with it do.
    temporary = path.with_name(f"{path.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, (secrets.token_hex(32) + "\n").encode("ascii"))
        os.fsync(fd)
    finally:
        os.close(fd)
    try:
        os.link(temporary, path)
    except FileExistsError:
        pass  # another process made it first: that one is the key
    finally:
        os.unlink(temporary)
    if sys.platform != "win32":
        directory = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)


def _columns(db: sqlite3.Connection) -> set[str]:
    """The columns the inbox's table has; none before it is created."""
    return {row[1] for row in db.execute("PRAGMA table_info(hookshield_inbox)")}


def _indexes(db: sqlite3.Connection) -> set[str]:
    """The names of the indexes on the inbox's table."""
    return {row[1] for row in db.execute("PRAGMA index_list(hookshield_inbox)")}


def _state(state: str) -> str:
    if state not in STATES:
        raise ValueError(f"state must be one of {', '.join(STATES)}, not {state!r}")
    return state


def _delivery(row: tuple[Any, ...]) -> StoredDelivery:
    headers = tuple((str(name), str(value)) for name, value in json.loads(row[4]))
    events = None if row[7] is None else tuple(json.loads(row[7]))
    return StoredDelivery(
        id=row[0],
        sender=row[1],
        handler=row[2],
        body=bytes(row[3]),
        headers=headers,
        received=row[5],
        event_types=tuple(json.loads(row[6])),
        events=events,
        attempts=row[8],
        state=row[9],
        next_attempt=row[10],
        last_error=row[11],
        lease_id=row[12],
        seal=row[13],
        traceparent=row[14],
    )


def _where(where: DeliveryFilter) -> tuple[str, list[object]]:
    """The SQL condition (never empty) and its arguments for ``where``; see DeliveryFilter.matches."""
    clauses = ["1"]
    args: list[object] = []
    if where.state is not None:
        clauses.append("state = ?")
        args.append(_state(where.state))
    if where.sender is not None:
        clauses.append("sender = ?")
        args.append(where.sender)
    if where.event_type is not None:
        kind = where.event_type
        if kind.endswith("*"):
            clauses.append(
                "EXISTS (SELECT 1 FROM json_each(event_types) WHERE substr(value, 1, ?) = ?)"
            )
            args += [len(kind) - 1, kind[:-1]]
        else:
            clauses.append("EXISTS (SELECT 1 FROM json_each(event_types) WHERE value = ?)")
            args.append(kind)
    if where.since is not None:
        clauses.append("received >= ?")
        args.append(where.since)
    if where.until is not None:
        clauses.append("received < ?")
        args.append(where.until)
    return " AND ".join(clauses), args


def _refused(row: tuple[Any, ...]) -> RefusedDelivery:
    return RefusedDelivery(
        id=row[0],
        sender=row[1],
        handler=row[2],
        status=row[3],
        error=row[4],
        reason=row[5],
        peer=row[6],
        received=row[7],
        headers=tuple((str(name), str(value)) for name, value in json.loads(row[8])),
        body=bytes(row[9]),
        body_size=row[10],
    )
