"""De-duplication and a durable inbox in PostgreSQL, shared by every process on every host.

    from hookshield.postgres import PostgresDedupeStore, PostgresInbox

    DSN = "postgresql://webhooks@db.internal/app"
    moco = WebhookHandler("moco", secret=..., dedupe=PostgresDedupeStore(DSN))
    inbox = PostgresInbox(DSN, key=os.environ["HOOKSHIELD_INBOX_KEY"])
    app.add_url_rule("/hooks/moco", view_func=webhook_view(moco, background=inbox))

and on any number of hosts, ``hookshield worker myapp.hooks:moco --inbox $DSN``.

Theory of operation, the store: a key is one row ``(key, done, expiry, owner)`` as
in ``_sqlite.py``, and each step is **one statement**, so one round trip and one
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

Rows are sealed (``_seal.py``) with a key that is never in the database: ``key=`` or
``HOOKSHIELD_INBOX_KEY``, required, as for ``CeleryInbox``; the database records the
key's public id, so that a process given another key is refused at once.

Tables are created on first use, or by ``hookshield inbox init --inbox DSN`` (``--sql``
prints the SQL, for a team whose application user may not create tables); each
records its schema version in ``hookshield_schema``.  Install with
``pip install 'hookshield[postgres]'``.  This module owns the SQL; it never runs a route.
"""

from __future__ import annotations

import builtins
import json
import os
import secrets
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Final

import psycopg
import psycopg_pool

from ._dedupe import Claim, new_token
from ._inbox import LEASE_ENDED, STATES, State, StoredDelivery, storable
from ._options import flag, function, integer
from ._pg import Connections, ensure_schema, identifier, schema_statements
from ._pg_listen import Listener
from ._seal import ENV_KEY, InboxKey, inbox_key
from ._stores import key_bytes, seconds

__all__ = ["PostgresDedupeStore", "PostgresInbox", "create_tables", "schema_sql"]

#: The version of the tables this release makes; recorded in ``hookshield_schema``.
STORE_VERSION: Final = 1
INBOX_VERSION: Final = 1
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
    return [
        # id in the "C" collation: ids sort by the bytes, as they were made to, and a
        # prefix is a range of the primary key's index whatever the database's locale.
        f"CREATE TABLE IF NOT EXISTS {table} ("
        ' id text COLLATE "C" PRIMARY KEY, sender text NOT NULL, handler text NOT NULL,'
        " body bytea NOT NULL, headers text NOT NULL, received double precision NOT NULL,"
        " event_types text NOT NULL, events text, attempts integer NOT NULL,"
        " state text NOT NULL, next_attempt double precision NOT NULL, last_error text,"
        " lease_id text, seal text, traceparent text)",
        f"CREATE INDEX IF NOT EXISTS {_index(table, 'due')} ON {table} (next_attempt, id)"
        " WHERE state IN ('pending', 'leased')",
        f"CREATE INDEX IF NOT EXISTS {_index(table, 'state')} ON {table} (state, received)",
        f"CREATE TABLE IF NOT EXISTS {_side(table, 'meta')} "
        "(name text PRIMARY KEY, value text NOT NULL)",
        f"CREATE TABLE IF NOT EXISTS {_side(table, 'paused')} "
        "(sender text PRIMARY KEY, since double precision NOT NULL)",
    ]


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
    deliveries' table; ``<table>_meta`` and ``<table>_paused`` sit beside it, and its
    ``NOTIFY`` channel has its name.  The tables are made on first use;
    ``create=False`` opens only an inbox whose tables exist, and raises
    :class:`psycopg.OperationalError` at first use otherwise.
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
            # A row still 'leased' is due because its lease ended unsettled.
            " last_error = CASE WHEN i.state = 'leased' THEN %(ended)s ELSE i.last_error END"
            f" FROM (SELECT id FROM {table} AS o WHERE state IN ('pending', 'leased')"
            " AND next_attempt <= %(now)s AND handler = ANY(%(handlers)s)"
            f" AND NOT EXISTS (SELECT 1 FROM {self._paused} AS p WHERE p.sender = o.sender)"
            " ORDER BY next_attempt, id LIMIT 1 FOR UPDATE SKIP LOCKED) AS due"
            f" WHERE i.id = due.id RETURNING {', '.join('i.' + c for c in _COLUMNS.split(', '))}",
            {
                "until": now + self.lease_seconds,
                "lease_id": secrets.token_hex(16),
                "ended": LEASE_ENDED,
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
        rows = self._fetch(f"SELECT sender, since FROM {self._paused} ORDER BY sender", ())
        return {str(sender): float(since) for sender, since in rows}

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
            f"WITH again AS (UPDATE {self.table} SET state = 'pending', attempts = 0,"
            " next_attempt = 0, last_error = NULL WHERE id = ANY(%s) AND state <> 'leased'"
            " RETURNING id) SELECT count(*), pg_notify(%s, '') FROM again",
            (ids, self.channel),
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
            f" again AS (UPDATE {self.table} AS i SET state = 'pending', attempts = 0,"
            " next_attempt = 0, last_error = NULL FROM picked WHERE i.id = picked.id"
            " RETURNING i.id) SELECT count(*), max(id), pg_notify(%s, '') FROM again",
            (after, limit, self.channel),
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
            " lease_id = NULL WHERE id = %s AND state = 'leased' AND lease_id = %s RETURNING 1",
            (state, due, storable(error), delivery.id, delivery.lease_id),
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
            then=self._check_key,
        )
        self._tables.made(pid)

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
