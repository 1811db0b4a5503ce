"""De-duplication and a durable inbox in PostgreSQL, shared by every process on every host.

    from hookshield.postgres import PostgresDedupeStore, PostgresInbox

    DSN = "postgresql://webhooks@db.internal/app"
    moco = WebhookHandler("moco", secret=..., dedupe=PostgresDedupeStore(DSN))
    inbox = PostgresInbox(DSN, key=os.environ["HOOKSHIELD_INBOX_KEY"])
    app.add_url_rule("/hooks/moco", view_func=webhook_view(moco, background=inbox))

and on any number of hosts, ``hookshield worker myapp.hooks:moco --inbox $DSN``.

Theory of operation, the store: a key is one row ``(key, done, expiry, owner)`` as
in ``_stores/sqlite.py``, and each step is **one statement**, so one round trip and one
transaction:

* ``claim`` is an ``INSERT ... ON CONFLICT DO UPDATE`` that takes the row over only
  when it has expired, and otherwise writes it back unchanged, so that ``RETURNING``
  tells, under the row's lock, whether the claim is ours, or the key in progress or
  done; the same statement deletes a few expired rows (``SKIP LOCKED``: claims never
  wait for each other's purge), so the table holds about the live keys;
* ``complete`` reads the row under ``FOR UPDATE`` (was it another's?) and marks it
  done, in one statement;
* ``release`` deletes the row unless it is live and done or another token's.

Times are the **database's clock** by default, one clock for every host.

The inbox: one row per delivery, as ``SQLiteInbox`` keeps it.  ``lease`` takes the
oldest due row of the worker's handlers whose sender is not paused with ``SELECT ...
FOR UPDATE SKIP LOCKED`` and marks it leased in the same statement, so that workers
on any number of hosts never take the same row, nor wait for each other.  Every
state change is one statement; a settle names the lease (``lease_id``), so that a
worker whose lease ran out and was taken over changes nothing.  ``put`` and every
change that makes a delivery due again ``NOTIFY`` the inbox's channel in the same
transaction: a worker waiting on it (:meth:`PostgresInbox.listen`) starts the
delivery within milliseconds, and polls all the same, in case a notification is lost.

Rows are sealed (``_durable/seal.py``) with a key that is never in the database: ``key=`` or
``HOOKSHIELD_INBOX_KEY``, required, as for ``CeleryInbox``; the database records the
key's public id, so that a process given another key is refused at once.

Browsing (filters, paging, bulk actions, the overview) is plain SQL over the same
table, each change one statement; each row keeps its latest attempts in
``attempt_log``, as ``SQLiteInbox`` does.  ``keep_refused=N`` keeps the latest N
refused deliveries in ``<table>_refused``: each is one short transaction that waits
at most a few milliseconds for the table's advisory lock (so that the bound holds
exactly), and is dropped rather than wait longer.

Tables are created on first use, or by ``hookshield inbox init --inbox DSN`` (``--sql``
prints the SQL, for a team whose application user may not create tables); each
records its schema version in ``hookshield_schema``, and tables of an older version
are brought up to this one on first use (version 2 added ``attempt_log`` and
``<table>_refused``).  Install with ``pip install 'hookshield[postgres]'``.  This
module owns the SQL; it never runs a route.
"""

from __future__ import annotations

import builtins
import hashlib
import json
import logging
import math
import os
import secrets
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Final

import psycopg
import psycopg_pool

from ._core.options import flag, function, integer
from ._durable.browse import (
    LOG_CHARS,
    Attempt,
    DeliveryFilter,
    InboxOverview,
    attempts_of,
    lease_ended_parts,
    log_line,
    requeued_line,
)
from ._durable.inbox import LEASE_ENDED, STATES, State, StoredDelivery, storable
from ._durable.refused import KEEP_WAIT, KEPT_BYTES, RefusedDelivery, keeping
from ._durable.seal import ENV_KEY, InboxKey, inbox_key
from ._handling.dedupe import Claim, new_token
from ._stores.common import key_bytes, seconds
from ._stores.pg import (
    Connections,
    ensure_schema,
    identifier,
    make_indexes,
    missing_indexes,
    schema_statements,
)
from ._stores.pg_listen import Listener

__all__ = ["PostgresDedupeStore", "PostgresInbox", "create_tables", "schema_sql"]

logger = logging.getLogger("hookshield")

#: The version of the tables this release makes; recorded in ``hookshield_schema``.
STORE_VERSION: Final = 1
#: 2 added ``attempt_log`` and the table of refusals kept (``<table>_refused``).
INBOX_VERSION: Final = 2
#: Expired keys one claim deletes at most: more than the one it adds, so the table
#: shrinks back to the live keys, and little enough to cost a claim nothing.
PURGE_BATCH: Final = 8

#: The time of a step, read once: the database's clock in seconds, unless the step is
#: given a time (``%(now)s``).  MATERIALIZED: one reading, however often it is used.
_CLOCK: Final = (
    "clock AS MATERIALIZED (SELECT coalesce(%(now)s::float8,"
    " extract(epoch from clock_timestamp())) AS t)"
)
_NOW: Final = "(SELECT t FROM clock)"


def _store_schema(table: str) -> list[str]:
    return [
        f"CREATE TABLE IF NOT EXISTS {table} (key bytea PRIMARY KEY, done boolean NOT NULL, "
        "expiry double precision NOT NULL, owner text)",
        f"CREATE INDEX IF NOT EXISTS {_index(table, 'expiry')} ON {table} (expiry)",
    ]


def _inbox_schema(table: str) -> list[str]:
    """The inbox's tables as this version has them; idempotent, and bringing up an older one."""
    return [
        # id in the "C" collation: ids sort by the bytes, as they were made to, and a
        # prefix is a range of the primary key's index whatever the database's locale.
        f"CREATE TABLE IF NOT EXISTS {table} ("
        ' id text COLLATE "C" PRIMARY KEY, sender text NOT NULL, handler text NOT NULL,'
        " body bytea NOT NULL, headers text NOT NULL, received double precision NOT NULL,"
        " event_types text NOT NULL, events text, attempts integer NOT NULL,"
        " state text NOT NULL, next_attempt double precision NOT NULL, last_error text,"
        " lease_id text, seal text, traceparent text, attempt_log text)",
        # Version 2: what an inbox made by version 1 lacks.
        f"ALTER TABLE {table} ADD COLUMN IF NOT EXISTS attempt_log text",
        f"CREATE INDEX IF NOT EXISTS {_index(table, 'due')} ON {table} (next_attempt, id)"
        " WHERE state IN ('pending', 'leased')",
        f"CREATE INDEX IF NOT EXISTS {_index(table, 'state')} ON {table} (state, received)",
        *(
            f"CREATE INDEX IF NOT EXISTS {_index(table, suffix)} ON {table} {columns}"
            for suffix, columns in _BROWSING
        ),
        f"CREATE TABLE IF NOT EXISTS {_side(table, 'meta')} "
        "(name text PRIMARY KEY, value text NOT NULL)",
        f"CREATE TABLE IF NOT EXISTS {_side(table, 'paused')} "
        "(sender text PRIMARY KEY, since double precision NOT NULL)",
        f"CREATE TABLE IF NOT EXISTS {_side(table, 'refused')} ("
        ' id text COLLATE "C" PRIMARY KEY, sender text NOT NULL, handler text NOT NULL,'
        " status integer NOT NULL, error text NOT NULL, reason text NOT NULL, peer text,"
        " received double precision NOT NULL, headers text NOT NULL, body bytea NOT NULL,"
        " body_size bigint)",
        f"CREATE INDEX IF NOT EXISTS {_index(table, 'refused_at')} "
        f"ON {_side(table, 'refused')} (received, id)",
    ]


#: The indexes of browsing that came after the tables' version 2, by suffix: newest first
#: over every row (the dashboard's first page, ``inbox ls``).  Not counted in the version
#: (see ``make_indexes``): an inbox of version 2 without them is told how to make them.
_BROWSING: Final = (("received", "(received, id)"),)


def _browsing_indexes(table: str) -> dict[str, str]:
    """Each browsing index of ``table``, by its schema-qualified name: its concurrent making."""
    schema = table.rsplit(".", 1)[0] + "." if "." in table else ""
    return {
        schema + _index(table, suffix): (
            f"CREATE INDEX CONCURRENTLY IF NOT EXISTS {_index(table, suffix)} ON {table} {columns}"
        )
        for suffix, columns in _BROWSING
    }


def _side(table: str, suffix: str) -> str:
    """The quoted name of a table beside ``table``: ``"x"`` -> ``"x_meta"``."""
    return table[:-1] + f'_{suffix}"'


def _index(table: str, suffix: str) -> str:
    """An index's quoted name, without the schema (an index lives in its table's)."""
    return table.rsplit(".", 1)[-1][:-1] + f'_{suffix}"'


def _plain(table: str) -> str:
    """``table`` as the name ``hookshield_schema`` records it: unquoted."""
    return table.replace('"', "")


def schema_sql(
    inbox_table: str = "hookshield_inbox", dedupe_table: str = "hookshield_dedupe"
) -> str:
    """The SQL that creates an inbox's and a store's tables, for ``hookshield inbox init --sql``."""
    inbox = identifier("inbox_table", inbox_table)
    store = identifier("dedupe_table", dedupe_table)
    statements = schema_statements(_plain(inbox), INBOX_VERSION, _inbox_schema(inbox))
    statements += schema_statements(_plain(store), STORE_VERSION, _store_schema(store))[-1:]
    statements[-1:-1] = _store_schema(store)
    return "BEGIN;\n" + "".join(f"{s};\n" for s in statements) + "COMMIT;\n"


def create_tables(
    dsn: str, *, inbox_table: str = "hookshield_inbox", dedupe_table: str = "hookshield_dedupe"
) -> list[str]:
    """Create an inbox's and a store's tables in the database ``dsn`` unless they are there.

    For ``hookshield inbox init``: run as a user who may create tables.  Returns the
    names of the tables made ready.
    """
    inbox, store = identifier("inbox_table", inbox_table), identifier("dedupe_table", dedupe_table)
    db = Connections("create_tables", dsn, timeout=5.0, max_size=1)
    ensure_schema(db, _plain(inbox), INBOX_VERSION, _inbox_schema(inbox))
    ensure_schema(db, _plain(store), STORE_VERSION, _store_schema(store))
    make_indexes(db, _browsing_indexes(inbox))
    return [_plain(inbox), _plain(store)]


class _Tables:
    """Tables made once per process, on first use."""

    def __init__(self) -> None:
        self._ready_pid = 0

    def ready(self, pid: int) -> bool:
        return self._ready_pid == pid

    def made(self, pid: int) -> None:
        self._ready_pid = pid


# -- the de-duplication store ---------------------------------------------------------


class PostgresDedupeStore:
    """A de-duplication store in PostgreSQL: one table, one statement per step.

    ``dsn_or_pool`` is a DSN (``postgresql://user:password@host/db``), from which each
    process makes its own small pool on first use, or a ``psycopg_pool.ConnectionPool``
    of yours (give it autocommit connections, ``kwargs={"autocommit": True}``, to
    spare a round trip).  ``table`` is the table's name (made on first use).  A step
    waits at most ``timeout`` seconds for a connection and for its statement: then it
    raises, and a claim is answered 503 with ``Retry-After``.  ``clock`` is ``None``
    for the database's clock, the same for every host; or a function of your own (a
    wall clock in seconds, the same in every process).
    """

    def __init__(
        self,
        dsn_or_pool: str | psycopg_pool.ConnectionPool[Any],
        *,
        table: str = "hookshield_dedupe",
        timeout: float = 2.0,
        max_connections: int = 4,
        clock: Callable[[], float] | None = None,
    ) -> None:
        if integer("max_connections", max_connections, "a count") < 1:
            raise ValueError("max_connections must be at least 1")
        self.table = identifier("table", table)
        self._db = Connections(
            "PostgresDedupeStore", dsn_or_pool, timeout=timeout, max_size=max_connections
        )
        self._clock = None if clock is None else function("clock", clock)
        self._tables = _Tables()
        table = self.table
        self._claim_sql = (
            f"WITH {_CLOCK}, purged AS (DELETE FROM {table} WHERE key IN (SELECT key FROM {table}"
            f" WHERE expiry <= {_NOW} AND key <> %(key)s ORDER BY expiry"
            f" LIMIT {PURGE_BATCH} FOR UPDATE SKIP LOCKED))"
            f" INSERT INTO {table} AS d (key, done, expiry, owner)"
            f" VALUES (%(key)s, false, {_NOW} + %(lease)s, %(owner)s)"
            # Taken over only when expired; else written back as it was, so that the
            # row is locked and RETURNING tells what it holds.
            f" ON CONFLICT (key) DO UPDATE SET"
            f" done = CASE WHEN d.expiry <= {_NOW} THEN false ELSE d.done END,"
            f" owner = CASE WHEN d.expiry <= {_NOW} THEN excluded.owner ELSE d.owner END,"
            f" expiry = CASE WHEN d.expiry <= {_NOW} THEN excluded.expiry ELSE d.expiry END"
            " RETURNING d.owner = %(owner)s AND NOT d.done, d.done"
        )
        self._complete_sql = (
            f"WITH {_CLOCK}, prior AS (SELECT NOT done AND expiry > {_NOW} AND owner IS DISTINCT FROM"
            f" %(owner)s AS another FROM {table} WHERE key = %(key)s FOR UPDATE),"
            f" marked AS (INSERT INTO {table} (key, done, expiry, owner)"
            f" VALUES (%(key)s, true, {_NOW} + %(ttl)s, NULL) ON CONFLICT (key) DO UPDATE"
            " SET done = true, expiry = excluded.expiry, owner = NULL RETURNING 1)"
            " SELECT coalesce((SELECT another FROM prior), false), (SELECT count(*) FROM marked)"
        )
        self._release_sql = (
            f"WITH {_CLOCK}, gone AS (DELETE FROM {table} WHERE key = %(key)s AND NOT (expiry > {_NOW}"
            " AND (done OR owner IS DISTINCT FROM %(owner)s)) RETURNING 1)"
            f" SELECT EXISTS (SELECT 1 FROM gone) OR NOT EXISTS (SELECT 1 FROM {table}"
            f" WHERE key = %(key)s AND expiry > {_NOW})"
        )

    def claim(self, key: str, lease: float) -> tuple[Claim, str | None]:
        """Mark a free ``key`` in progress for ``lease`` seconds under a new token."""
        name, lease = key_bytes(key), seconds("lease", lease)
        token = new_token()
        row = self._one(self._claim_sql, {"key": name, "lease": lease, "owner": token})
        if row[0]:
            return Claim.NEW, token
        return (Claim.DONE if row[1] else Claim.IN_PROGRESS), None

    def complete(self, key: str, token: str, ttl: float) -> bool:
        """Mark ``key`` done for ``ttl`` seconds; ``False`` if another token held it."""
        name, ttl = key_bytes(key), seconds("ttl", ttl)
        row = self._one(self._complete_sql, {"key": name, "ttl": ttl, "owner": token})
        return not row[0]

    def release(self, key: str, token: str) -> bool:
        """Forget ``key`` unless it is done or another token's; ``False`` if so."""
        name = key_bytes(key)
        row = self._one(self._release_sql, {"key": name, "owner": token})
        return bool(row[0])

    def close(self) -> None:
        """Close this process's own pool; the next step opens another."""
        self._db.close()

    def __repr__(self) -> str:
        return f"PostgresDedupeStore({self._db.where!r}, table={_plain(self.table)!r})"

    def _one(self, statement: str, params: dict[str, Any]) -> tuple[Any, ...]:
        self._ready()
        params["now"] = None if self._clock is None else self._clock()
        with self._db.connection() as conn:
            row = conn.execute(statement.encode(), params).fetchone()
        if row is None:  # pragma: no cover - each statement returns one row
            raise psycopg.InternalError("the statement returned no row")
        return tuple(row)

    def _ready(self) -> None:
        pid = os.getpid()
        if not self._tables.ready(pid):
            ensure_schema(self._db, _plain(self.table), STORE_VERSION, _store_schema(self.table))
            self._tables.made(pid)


# -- the inbox ----------------------------------------------------------------------------

_COLUMNS: Final = (
    "id, sender, handler, body, headers, received, event_types, events, attempts, "
    "state, next_attempt, last_error, lease_id, seal, traceparent"
)
_REFUSED_COLUMNS: Final = (
    "id, sender, handler, status, error, reason, peer, received, headers, body, body_size"
)
_REPLACE_REFUSED: Final = ", ".join(
    f"{column} = excluded.{column}" for column in _REFUSED_COLUMNS.split(", ")[1:]
)
#: Appends the line given to a row's attempt log, keeping its last LOG_CHARS characters.
_APPEND_LOG: Final = f"right(coalesce(attempt_log, '') || %s::text, {LOG_CHARS})"
#: Makes a delivery pending and due now, attempts reset, noting a requeue (a parameter).
_REQUEUE: Final = (
    "state = 'pending', attempts = 0, next_attempt = 0, last_error = NULL, "
    f"attempt_log = {_APPEND_LOG}"
)


class PostgresInbox:
    """A durable inbox in PostgreSQL, for workers on any number of hosts.

    ``dsn_or_pool`` is a DSN or a ``psycopg_pool.ConnectionPool`` (as for
    :class:`PostgresDedupeStore`).  ``key`` seals each row (an
    :class:`~hookshield.InboxKey`, or its text or bytes); without it the
    ``HOOKSHIELD_INBOX_KEY`` environment variable is used, and without either the
    inbox is refused (``ValueError``): the web app and every worker need the same key.
    ``lease`` is how long a worker holds a delivery before another may run it:
    longer than your slowest route.  ``timeout`` bounds the wait for a connection
    and each statement (the web side then answers 503).  ``table`` names the
    deliveries' table; ``<table>_meta``, ``<table>_paused`` and ``<table>_refused`` sit
    beside it, and its ``NOTIFY`` channel has its name.  The tables are made on first
    use; ``create=False`` opens only an inbox whose tables exist, and raises
    :class:`psycopg.OperationalError` at first use otherwise.

    ``keep_refused=N`` keeps the latest N deliveries the handlers serving this inbox
    (``background=inbox``) refuse with a 4xx, for diagnosis, as
    :class:`~hookshield.SQLiteInbox` does: at most the first ``keep_refused_bytes``
    bytes of each body, credentials hidden (``hookshield inbox refused``, the
    dashboard).  Off (0) by default.
    """

    def __init__(
        self,
        dsn_or_pool: str | psycopg_pool.ConnectionPool[Any],
        *,
        key: InboxKey | str | bytes | None = None,
        lease: float = 300.0,
        timeout: float = 2.0,
        table: str = "hookshield_inbox",
        max_connections: int = 8,
        create: bool = True,
        keep_refused: int = 0,
        keep_refused_bytes: int = KEPT_BYTES,
    ) -> None:
        if integer("max_connections", max_connections, "a count") < 1:
            raise ValueError("max_connections must be at least 1")
        self.table = identifier("table", table)
        self._db = Connections(
            "PostgresInbox", dsn_or_pool, timeout=timeout, max_size=max_connections
        )
        found = inbox_key(key)
        if found is None:
            raise ValueError(
                f"PostgresInbox needs the key that seals its rows: pass key= or set {ENV_KEY}, "
                "the same in the web app and in every worker (at least 16 bytes; make one "
                'with python -c "import secrets; print(secrets.token_hex(32))")'
            )
        self.key = found
        self.lease_seconds = seconds("lease", lease)
        self.create = flag("create", create)
        self.channel = _plain(self.table).replace(".", "__")
        self._tables = _Tables()
        self._meta = _side(self.table, "meta")
        self._paused = _side(self.table, "paused")
        self._refused = _side(self.table, "refused")
        #: How many refused deliveries are kept (0: none), and how much of each body.
        self.keep_refused, self.keep_refused_bytes = keeping(keep_refused, keep_refused_bytes)
        # The advisory lock that one refusal kept at a time holds: one per table.
        digest = hashlib.sha256(b"hookshield refused " + _plain(self.table).encode()).digest()
        self._refused_lock = int.from_bytes(digest[:8], "big", signed=True)
        self._kept_pid = 0

    # -- the web side ------------------------------------------------------------

    def put(self, delivery: StoredDelivery) -> None:
        """Store ``delivery``, sealed; committed when this returns, and workers notified."""
        delivery = self.key.seal(delivery)
        row = (
            delivery.id,
            delivery.sender,
            delivery.handler,
            delivery.body,
            _json(delivery.headers),
            delivery.received,
            _json(delivery.event_types),
            None if delivery.events is None else _json(delivery.events),
            delivery.attempts,
            delivery.state,
            delivery.next_attempt,
            storable(delivery.last_error),
            delivery.lease_id,
            delivery.seal,
            storable(delivery.traceparent),
        )
        marks = ", ".join(["%s"] * len(row))
        # One statement: the row and its notification commit together (a NOTIFY is
        # sent at commit), or neither does.
        self._execute(
            f"WITH stored AS (INSERT INTO {self.table} ({_COLUMNS}) VALUES ({marks})"
            " RETURNING sender) SELECT pg_notify(%s, sender) FROM stored",
            (*row, self.channel),
        )

    # -- the worker side -----------------------------------------------------------

    def lease(self, now: float, handlers: Sequence[str]) -> StoredDelivery | None:
        """Lease the oldest due delivery of one of ``handlers`` until ``now + lease``.

        Rows another worker is leasing at this moment are skipped, not waited for; a
        paused sender's deliveries are left where they are.
        """
        if not handlers:
            return None
        table = self.table
        rows = self._fetch(
            f"UPDATE {table} AS i SET state = 'leased', attempts = i.attempts + 1,"
            " next_attempt = %(until)s, lease_id = %(lease_id)s,"
            # A row still 'leased' is due because its lease ended unsettled: so noted in
            # its log, with the attempt that ended (a SET reads the row as it was).
            " last_error = CASE WHEN i.state = 'leased' THEN %(ended)s ELSE i.last_error END,"
            " attempt_log = CASE WHEN i.state = 'leased' THEN right(coalesce(i.attempt_log, '')"
            f" || %(line_head)s::text || i.attempts || %(line_tail)s::text, {LOG_CHARS})"
            " ELSE i.attempt_log END"
            f" FROM (SELECT id FROM {table} AS o WHERE state IN ('pending', 'leased')"
            " AND next_attempt <= %(now)s AND handler = ANY(%(handlers)s)"
            f" AND NOT EXISTS (SELECT 1 FROM {self._paused} AS p WHERE p.sender = o.sender)"
            " ORDER BY next_attempt, id LIMIT 1 FOR UPDATE SKIP LOCKED) AS due"
            f" WHERE i.id = due.id RETURNING {', '.join('i.' + c for c in _COLUMNS.split(', '))}",
            {
                "until": now + self.lease_seconds,
                "lease_id": secrets.token_hex(16),
                "ended": LEASE_ENDED,
                "line_head": lease_ended_parts(now)[0],
                "line_tail": lease_ended_parts(now)[1],
                "now": now,
                "handlers": list(handlers),
            },
        )
        return _delivery(rows[0]) if rows else None

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
        self.key.check(delivery)

    def listen(self, wake: Callable[[], None]) -> Listener:
        """Call ``wake()`` whenever a delivery may have become due; ``close()`` the result.

        A ``LISTEN`` on a connection of its own, in a thread: see ``run_worker``.
        """
        self._ready()
        return Listener(lambda: self._db.connect("listening", autocommit=True), self.channel, wake)

    # -- pausing a sender ----------------------------------------------------------

    def pause(self, sender: str) -> bool:
        """Lease none of ``sender``'s deliveries until :meth:`resume`; ``False`` if paused already."""
        rows = self._fetch(
            f"INSERT INTO {self._paused} (sender, since) VALUES (%s, %s)"
            " ON CONFLICT (sender) DO NOTHING RETURNING 1",
            (sender, time.time()),
        )
        return bool(rows)

    def resume(self, sender: str) -> bool:
        """Lease ``sender``'s deliveries again; ``False`` if it was not paused."""
        rows = self._fetch(
            f"WITH gone AS (DELETE FROM {self._paused} WHERE sender = %s RETURNING sender)"
            " SELECT pg_notify(%s, sender) FROM gone",
            (sender, self.channel),
        )
        return bool(rows)

    def paused(self) -> dict[str, float]:
        """The paused senders, and since when (seconds since the epoch)."""
        rows = self._fetch(f"SELECT sender, since FROM {self._paused}", ())
        # Sorted here, by code point as SQLite does, whatever the database's collation.
        return {str(sender): float(since) for sender, since in sorted(rows)}

    # -- inspection, for ``hookshield inbox`` -----------------------------------------

    def get(self, delivery_id: str) -> StoredDelivery | None:
        """The stored delivery ``delivery_id``, or ``None``."""
        rows = self._fetch(f"SELECT {_COLUMNS} FROM {self.table} WHERE id = %s", (delivery_id,))
        return _delivery(rows[0]) if rows else None

    def find_ids(self, prefix: str, limit: int = 10) -> tuple[list[str], int]:
        """Up to ``limit`` ids that start with ``prefix``, in order, and how many do in all."""
        bounds = (prefix, prefix + "\U0010ffff")
        rows = self._fetch(
            f"SELECT id, count(*) OVER () FROM {self.table} WHERE id >= %s AND id < %s"
            " ORDER BY id LIMIT %s",
            (*bounds, limit),
        )
        if rows:
            return [str(row[0]) for row in rows], int(rows[0][1])
        return [], 0

    def waiting(self) -> dict[str, int]:
        """How many deliveries wait to run (pending or leased), by handler name."""
        rows = self._fetch(
            f"SELECT handler, count(*) FROM {self.table} WHERE state IN ('pending', 'leased')"
            " GROUP BY handler ORDER BY handler",
            (),
        )
        return {str(name): int(count) for name, count in rows}

    def list(self, state: State | None = None, limit: int = 100) -> list[StoredDelivery]:
        """Up to ``limit`` deliveries, oldest first, in ``state`` or any."""
        if state is None:
            rows = self._fetch(
                f"SELECT {_COLUMNS} FROM {self.table} ORDER BY received, id LIMIT %s", (limit,)
            )
        else:
            rows = self._fetch(
                f"SELECT {_COLUMNS} FROM {self.table} WHERE state = %s"
                " ORDER BY received, id LIMIT %s",
                (_state(state), limit),
            )
        return [_delivery(row) for row in rows]

    def counts(self) -> dict[str, int]:
        """How many deliveries are in each state."""
        rows = self._fetch(f"SELECT state, count(*) FROM {self.table} GROUP BY state", ())
        found = {str(state): int(count) for state, count in rows}
        return {state: found.get(state, 0) for state in STATES}

    def oldest_due(self, now: float | None = None) -> float | None:
        """When the delivery due longest became due (Unix seconds), or ``None`` if none is.

        A delivery is due once its ``next_attempt`` has passed and it is pending, or
        leased with a lease that has ended: what ``lease`` would take.
        """
        rows = self._fetch(
            f"SELECT min(next_attempt) FROM {self.table}"
            " WHERE state IN ('pending', 'leased') AND next_attempt <= %s",
            (time.time() if now is None else now,),
        )
        found = rows[0][0] if rows else None
        return None if found is None else float(found)

    def requeue(self, delivery_ids: Iterable[str]) -> int:
        """Make these deliveries pending, due now, attempts reset; how many there were.

        A leased delivery is left to the worker running it (and not counted).
        """
        ids = list(delivery_ids)
        if not ids:
            return 0
        rows = self._fetch(
            f"WITH again AS (UPDATE {self.table} SET {_REQUEUE}"
            " WHERE id = ANY(%s) AND state <> 'leased'"
            " RETURNING id) SELECT count(*), pg_notify(%s, '') FROM again",
            (requeued_line(), ids, self.channel),
        )
        return int(rows[0][0]) if rows else 0

    def requeue_dead(self, after: str = "", limit: int = 1000) -> tuple[int, str | None]:
        """Requeue up to ``limit`` dead deliveries whose id sorts after ``after``.

        Returns how many, and the id to pass as ``after`` next (``None`` when no dead
        delivery is left past it), as ``SQLiteInbox.requeue_dead`` does.
        """
        rows = self._fetch(
            f"WITH picked AS (SELECT id FROM {self.table} WHERE state = 'dead' AND id > %s"
            " ORDER BY id LIMIT %s FOR UPDATE),"
            f" again AS (UPDATE {self.table} AS i SET {_REQUEUE}"
            " FROM picked WHERE i.id = picked.id"
            " RETURNING i.id) SELECT count(*), max(id), pg_notify(%s, '') FROM again",
            (after, limit, requeued_line(), self.channel),
        )
        count = int(rows[0][0]) if rows else 0
        return (count, str(rows[0][1])) if count else (0, None)

    def reseal(self, delivery_ids: Iterable[str]) -> int:
        """Seal these deliveries as they stand now, vouching for them; how many there were.

        A leased delivery is left alone.
        """
        count = 0
        self._ready()
        with self._db.connection() as conn, conn.transaction():
            for delivery_id in delivery_ids:
                row = conn.execute(
                    f"SELECT {_COLUMNS} FROM {self.table} WHERE id = %s AND state <> 'leased'"
                    " FOR UPDATE",
                    (delivery_id,),
                ).fetchone()
                if row is not None:
                    seal = self.key.seal_of(_delivery(tuple(row)))
                    conn.execute(
                        f"UPDATE {self.table} SET seal = %s WHERE id = %s", (seal, delivery_id)
                    )
                    count += 1
        return count

    def purge(self, state: State, before: float, limit: int = 1000) -> int:
        """Delete up to ``limit`` deliveries in ``state`` received before ``before``."""
        rows = self._fetch(
            f"WITH gone AS (DELETE FROM {self.table} WHERE id IN (SELECT id FROM {self.table}"
            " WHERE state = %s AND received < %s LIMIT %s) RETURNING 1) SELECT count(*) FROM gone",
            (_state(state), before, limit),
        )
        return int(rows[0][0])

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
            # Row values: the rows after that one in the order (received, id) descending;
            # none when it is gone (the paging ends).
            clause += f" AND (received, id) < (SELECT received, id FROM {self.table} WHERE id = %s)"
            args.append(before)
        rows = self._fetch(
            f"SELECT {_COLUMNS} FROM {self.table} WHERE {clause}"
            " ORDER BY received DESC, id DESC LIMIT %s",
            (*args, max(1, limit)),
        )
        return [_delivery(row) for row in rows]

    def count(self, where: DeliveryFilter) -> int:
        """How many deliveries ``where`` selects."""
        clause, args = _where(where)
        rows = self._fetch(f"SELECT count(*) FROM {self.table} WHERE {clause}", args)
        return int(rows[0][0])

    def requeue_matching(
        self, where: DeliveryFilter, *, after: str = "", limit: int = 1000
    ) -> tuple[int, str | None]:
        """Requeue up to ``limit`` deliveries ``where`` selects whose id sorts after ``after``.

        Returns how many, and the id to pass as ``after`` next (``None`` once none is
        left).  A leased delivery is left to its worker, as :meth:`requeue` does.
        """
        clause, args = _where(where)
        rows = self._fetch(
            f"WITH picked AS (SELECT id FROM {self.table} WHERE {clause} AND id > %s"
            " AND state <> 'leased' ORDER BY id LIMIT %s FOR UPDATE),"
            f" again AS (UPDATE {self.table} AS i SET {_REQUEUE} FROM picked"
            " WHERE i.id = picked.id AND i.state <> 'leased' RETURNING i.id)"
            " SELECT (SELECT count(*) FROM again), (SELECT max(id) FROM picked),"
            " pg_notify(%s, '')",
            (*args, after, max(1, limit), requeued_line(), self.channel),
        )
        count, last = rows[0][0], rows[0][1]
        return (0, None) if last is None else (int(count), str(last))

    def purge_matching(self, where: DeliveryFilter, *, limit: int = 1000) -> int:
        """Delete up to ``limit`` deliveries ``where`` selects, which must name done or dead.

        A pending or leased delivery is never purged by a filter: it has yet to run.
        """
        if where.state not in ("done", "dead"):
            raise ValueError("purge deletes done or dead deliveries only: give state done or dead")
        clause, args = _where(where)
        # The state again outside: a row requeued meanwhile is checked as it is now.
        rows = self._fetch(
            f"WITH gone AS (DELETE FROM {self.table} WHERE id IN (SELECT id FROM {self.table}"
            f" WHERE {clause} LIMIT %s) AND state = %s RETURNING 1) SELECT count(*) FROM gone",
            (*args, max(1, limit), where.state),
        )
        return int(rows[0][0])

    def discard(self, delivery_ids: Iterable[str]) -> int:
        """Delete these deliveries if they are done or dead; how many were.

        A pending or leased delivery is left alone: it has yet to run.
        """
        ids = builtins.list(delivery_ids)
        if not ids:
            return 0
        rows = self._fetch(
            f"WITH gone AS (DELETE FROM {self.table} WHERE id = ANY(%s)"
            " AND state IN ('done', 'dead') RETURNING 1) SELECT count(*) FROM gone",
            (ids,),
        )
        return int(rows[0][0])

    def history(self, delivery_id: str) -> builtins.list[Attempt]:
        """The latest attempts made on ``delivery_id``, oldest first; empty when there is none.

        Each settle (done, retried, dead), each lease that ended unsettled and each
        requeue by a person adds a line; a row keeps its last few dozen.
        """
        rows = self._fetch(f"SELECT attempt_log FROM {self.table} WHERE id = %s", (delivery_id,))
        return attempts_of(rows[0][0]) if rows else []

    def overview(self, now: float, *, span: float, buckets: int) -> InboxOverview:
        """The overview page's counts at ``now``; see :class:`~hookshield.InboxOverview`."""
        if not (span > 0 and math.isfinite(span)) or not 1 <= buckets <= 1000:
            raise ValueError("span must be a positive number of seconds and buckets 1 to 1000")
        table = self.table
        start, width = now - span, span / buckets
        self._ready()
        with self._db.connection() as conn:
            grouped = conn.execute(
                f"SELECT sender, state, count(*) FROM {table} GROUP BY sender, state".encode()
            ).fetchall()
            oldest = conn.execute(
                f"SELECT min(next_attempt) FROM {table}"
                " WHERE state IN ('pending', 'leased') AND next_attempt <= %s".encode(),
                (now,),
            ).fetchone()
            # floor, not a cast: a cast to integer rounds.
            received = conn.execute(
                f"SELECT floor((received - %s) / %s)::bigint, state, count(*) FROM {table}"
                " WHERE received >= %s AND received < %s GROUP BY 1, 2".encode(),
                (start, width, start, now),
            ).fetchall()
        by_sender: dict[str, dict[str, int]] = {}
        counts: dict[str, int] = dict.fromkeys(STATES, 0)
        # Sorted here, by code point as SQLite does, whatever the database's collation.
        for sender, state, count in sorted(grouped):
            by_sender.setdefault(str(sender), dict.fromkeys(STATES, 0))[state] = int(count)
            counts[state] += int(count)
        counted: builtins.list[dict[str, int]] = [dict.fromkeys(STATES, 0) for _ in range(buckets)]
        for bucket, state, count in received:
            counted[min(int(bucket), buckets - 1)][state] = int(count)
        first = None if oldest is None else oldest[0]
        return InboxOverview(
            now=now,
            counts=counts,
            by_sender=by_sender,
            oldest_due=None if first is None else float(first),
            span=float(span),
            buckets=tuple(counted),
        )

    # -- refused deliveries, kept for diagnosis (keep_refused) -----------------------

    @property
    def keeps_refused(self) -> bool:
        """Whether refused deliveries are kept (``keep_refused`` above 0)."""
        return self.keep_refused > 0

    @property
    def refused_body_limit(self) -> int:
        """The most bytes of a refused delivery's body kept (``keep_refused_bytes``)."""
        return self.keep_refused_bytes

    def keep_refusal(self, refused: RefusedDelivery) -> bool:
        """Keep ``refused`` and forget all but the latest ``keep_refused``; ``False`` if not kept.

        Its body is cut to ``keep_refused_bytes``.  A connection (once the process's
        pool is open) and the table's lock are waited for a few milliseconds at most:
        under a flood of refusals some are dropped rather than hold up the deliveries
        that need the same connections.
        """
        if not self.keeps_refused:
            return False
        row = (
            refused.id,
            refused.sender,
            refused.handler,
            refused.status,
            storable(refused.error),
            storable(refused.reason),
            storable(refused.peer),
            refused.received,
            _json(refused.headers),
            refused.body[: self.keep_refused_bytes],
            refused.body_size,
        )
        marks = ", ".join(["%s"] * len(row))
        self._ready()
        wait = min(self._db.timeout, KEEP_WAIT)
        # The first in a process may wait as any step does: its pool is opened then.
        pid = os.getpid()
        opening = self._kept_pid != pid
        try:
            with (
                self._db.connection(timeout=None if opening else wait) as conn,
                conn.transaction(),
            ):
                # One at a time, so that the bound holds exactly; waited for briefly.
                milliseconds = str(max(1, math.ceil(wait * 1000)))
                conn.execute("SELECT set_config('lock_timeout', %s, true)", (milliseconds,))
                conn.execute("SELECT pg_advisory_xact_lock(%s)", (self._refused_lock,))
                conn.execute(
                    f"INSERT INTO {self._refused} ({_REFUSED_COLUMNS}) VALUES ({marks})"
                    # Replaced, as SQLite's INSERT OR REPLACE does.
                    f" ON CONFLICT (id) DO UPDATE SET {_REPLACE_REFUSED}".encode(),
                    row,
                )
                conn.execute(
                    f"DELETE FROM {self._refused} WHERE id IN (SELECT id FROM {self._refused}"
                    " ORDER BY received DESC, id DESC OFFSET %s)".encode(),
                    (self.keep_refused,),
                )
        except (psycopg_pool.PoolTimeout, psycopg.errors.LockNotAvailable):
            return False
        self._kept_pid = pid
        return True

    def refused(
        self, *, limit: int = 50, before: str | None = None
    ) -> builtins.list[RefusedDelivery]:
        """Up to ``limit`` kept refusals, newest first; those after the id ``before``, if given."""
        clause = ""
        args: builtins.list[object] = [max(1, limit)]
        if before is not None:
            clause = (
                f"WHERE (received, id) < (SELECT received, id FROM {self._refused} WHERE id = %s)"
            )
            args = [before, *args]
        rows = self._fetch(
            f"SELECT {_REFUSED_COLUMNS} FROM {self._refused} {clause}"
            " ORDER BY received DESC, id DESC LIMIT %s",
            args,
        )
        return [_refusal(row) for row in rows]

    def get_refused(self, refused_id: str) -> RefusedDelivery | None:
        """The kept refusal ``refused_id``, or ``None``."""
        rows = self._fetch(
            f"SELECT {_REFUSED_COLUMNS} FROM {self._refused} WHERE id = %s", (refused_id,)
        )
        return _refusal(rows[0]) if rows else None

    def forget_refused(self, refused_ids: Iterable[str]) -> int:
        """Forget these kept refusals; how many there were."""
        ids = builtins.list(refused_ids)
        if not ids:
            return 0
        rows = self._fetch(
            f"WITH gone AS (DELETE FROM {self._refused} WHERE id = ANY(%s) RETURNING 1)"
            " SELECT count(*) FROM gone",
            (ids,),
        )
        return int(rows[0][0])

    def make_tables(self) -> None:
        """Create the tables now if they are missing (they are made on first use anyway)."""
        self._ready()

    def close(self) -> None:
        """Close this process's own pool; the next call opens another."""
        self._db.close()

    @property
    def where(self) -> str:
        """The database, as ``user@host:port/dbname``: no password."""
        return self._db.where

    def __repr__(self) -> str:
        return (
            f"PostgresInbox({self._db.where!r}, table={_plain(self.table)!r}, "
            f"lease={self.lease_seconds})"
        )

    # -- internals ------------------------------------------------------------------

    def _settle(self, delivery: StoredDelivery, state: str, due: float, error: str | None) -> bool:
        # Fenced by the lease id: never the same for two leases, unlike the attempts.
        rows = self._fetch(
            f"UPDATE {self.table} SET state = %s, next_attempt = %s, last_error = %s,"
            f" lease_id = NULL, attempt_log = {_APPEND_LOG}"
            " WHERE id = %s AND state = 'leased' AND lease_id = %s RETURNING 1",
            (
                state,
                due,
                storable(error),
                log_line(delivery.attempts, state, error),
                delivery.id,
                delivery.lease_id,
            ),
        )
        return bool(rows)

    def _execute(self, statement: str, params: Sequence[Any] | dict[str, Any]) -> None:
        self._ready()
        with self._db.connection() as conn:
            conn.execute(statement.encode(), params)

    def _fetch(
        self, statement: str, params: Sequence[Any] | dict[str, Any]
    ) -> builtins.list[tuple[Any, ...]]:
        self._ready()
        with self._db.connection() as conn:
            return [tuple(row) for row in conn.execute(statement.encode(), params).fetchall()]

    def _ready(self) -> None:
        pid = os.getpid()
        if self._tables.ready(pid):
            return
        ensure_schema(
            self._db,
            _plain(self.table),
            INBOX_VERSION,
            _inbox_schema(self.table),
            create=self.create,
            then=self._first_use,
        )
        self._tables.made(pid)

    def _first_use(self, conn: psycopg.Connection[Any]) -> None:
        """Check the key; say so if the browsing indexes of a later release are missing."""
        self._check_key(conn)
        missing = missing_indexes(conn, _browsing_indexes(self.table))
        if missing:
            logger.warning(
                "hookshield: the inbox %r in %s lacks the index %s, with which the "
                "dashboard's and `hookshield inbox ls`'s pages need not sort the whole "
                "table; have its owner make it once, while writes go on: hookshield inbox "
                "init --inbox DSN",
                _plain(self.table),
                self._db.where,
                ", ".join(missing),
            )

    def _check_key(self, conn: psycopg.Connection[Any]) -> None:
        """Record this key's id in a new inbox; refuse a key other than the one recorded."""
        conn.execute(
            f"INSERT INTO {self._meta} (name, value) VALUES ('key_id', %s)"
            " ON CONFLICT (name) DO NOTHING",
            (self.key.id,),
        )
        row = conn.execute(f"SELECT value FROM {self._meta} WHERE name = 'key_id'").fetchone()
        if row is not None and row[0] != self.key.id:
            raise ValueError(
                f"the inbox {_plain(self.table)!r} in {self._db.where} is sealed with another "
                f"key (id {row[0]}) than this one (id {self.key.id}): give every process the "
                f"key it was made with (key= or {ENV_KEY})"
            )


def _json(value: Iterable[Any]) -> str:
    # ASCII: a lone surrogate or a NUL in a header is escaped, never refused by PostgreSQL.
    return json.dumps(list(value), ensure_ascii=True)


def _state(state: str) -> str:
    if state not in STATES:
        raise ValueError(f"state must be one of {', '.join(STATES)}, not {state!r}")
    return state


def _where(where: DeliveryFilter) -> tuple[str, builtins.list[object]]:
    """The SQL condition (never empty) and its arguments for ``where``; see DeliveryFilter.matches."""
    clauses = ["true"]
    args: builtins.list[object] = []
    if where.state is not None:
        clauses.append("state = %s")
        args.append(_state(where.state))
    if where.sender is not None:
        clauses.append("sender = %s")
        args.append(where.sender)
    if where.event_type is not None:
        kind = where.event_type
        types = "SELECT 1 FROM json_array_elements_text(event_types::json) AS t(kind)"
        if kind.endswith("*"):
            # left() counts characters, as SQLite's substr() and str.startswith do.
            clauses.append(f"EXISTS ({types} WHERE left(kind, %s::integer) = %s::text)")
            args += [len(kind) - 1, kind[:-1]]
        else:
            clauses.append(f"EXISTS ({types} WHERE kind = %s::text)")
            args.append(kind)
    if where.since is not None:
        clauses.append("received >= %s")
        args.append(float(where.since))
    if where.until is not None:
        clauses.append("received < %s")
        args.append(float(where.until))
    return " AND ".join(clauses), args


def _refusal(row: tuple[Any, ...]) -> RefusedDelivery:
    return RefusedDelivery(
        id=row[0],
        sender=row[1],
        handler=row[2],
        status=int(row[3]),
        error=row[4],
        reason=row[5],
        peer=row[6],
        received=float(row[7]),
        headers=tuple((str(name), str(value)) for name, value in json.loads(row[8])),
        body=bytes(row[9]),
        body_size=None if row[10] is None else int(row[10]),
    )


def _delivery(row: tuple[Any, ...]) -> StoredDelivery:
    events = None if row[7] is None else tuple(str(e) for e in json.loads(row[7]))
    return StoredDelivery(
        id=row[0],
        sender=row[1],
        handler=row[2],
        body=bytes(row[3]),
        headers=tuple((str(name), str(value)) for name, value in json.loads(row[4])),
        received=float(row[5]),
        event_types=tuple(str(t) for t in json.loads(row[6])),
        events=events,
        attempts=int(row[8]),
        state=row[9],
        next_attempt=float(row[10]),
        last_error=row[11],
        lease_id=row[12],
        seal=row[13],
        traceparent=row[14],
    )
