"""What ``hookshield.postgres`` (and the Django inbox on PostgreSQL) share: connections,
the schema's creation, clear connection errors, and ``LISTEN`` in a thread.

Theory of operation:

* **Connections.**  A store or an inbox is given a DSN or a ``psycopg_pool``
  ``ConnectionPool``.  From a DSN it makes its own pool, lazily, once per process
  (a pool made before ``fork`` belongs to the parent: its connections and threads
  are not the child's), with autocommit connections, so that each step is one
  statement, one round trip and one transaction.  Every connection's statements are
  bounded by ``statement_timeout``, and a connection is waited for at most
  ``timeout`` seconds: a database that is down or locked is an error within a
  second or two (a 503 on the web side), never a request that hangs.
* **Errors name what failed, never the password.**  The first use in a process
  connects once directly, outside the pool, so that a wrong host, database, user or
  password is told as PostgreSQL tells it, and re-raised as
  :class:`psycopg.OperationalError` naming the server as ``user@host:port/db``.
* **The schema** is created on first use (or by ``hookshield inbox init``) in one
  transaction under an advisory lock, so that processes starting together do not
  race their ``CREATE TABLE``; a row in ``hookshield_schema`` records each table's
  version.  The schema only grows, and every statement that makes it is idempotent
  (``IF NOT EXISTS``): tables of an older version are brought up to this one by
  running them all again, under the same lock, the first time this version uses them.
  Indexes added later are not counted in the version (an older release works beside
  them): :func:`make_indexes` makes them concurrently, for ``hookshield inbox init``.
* **LISTEN** is in ``_pg_listen.py``.

This module imports psycopg; nothing in the core imports it.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import re
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Any, Final

from .._core.options import number, type_name
from .._web.adapt import missing

try:
    import psycopg
    import psycopg.conninfo
    import psycopg_pool
except ImportError as exc:  # pragma: no cover - exercised without the extra installed
    raise missing(
        "psycopg and psycopg-pool", extra="postgres", adapter="hookshield.postgres"
    ) from exc

__all__ = [
    "SCHEMA_TABLE",
    "Connections",
    "identifier",
    "where",
]

logger = logging.getLogger("hookshield")

#: The table that records the schema version of each of hookshield's tables.
SCHEMA_TABLE: Final = "hookshield_schema"
#: Arbitrary, fixed: the advisory lock that serialises hookshield's DDL in a database.
_DDL_LOCK: Final = 0x686F6F6B  # "hook"
_IDENTIFIER: Final = re.compile(r"[a-z_][a-z0-9_]{0,47}(\.[a-z_][a-z0-9_]{0,47})?")


def identifier(option: str, name: object) -> str:
    """``name`` if it is a plain lower-case table name (``schema.table`` allowed); quoted."""
    if not isinstance(name, str):
        raise TypeError(f"{option} must be a table name (a str), not {type_name(name)}")
    if not _IDENTIFIER.fullmatch(name):
        raise ValueError(
            f"{option} must be a lower-case table name of letters, digits and _ "
            f"(optionally schema.table), not {name!r}"
        )
    # Checked above to hold no quote: quoting only keeps a reserved word a name.
    return ".".join(f'"{part}"' for part in name.split("."))


def where(conninfo: str) -> str:
    """The database ``conninfo`` names, as ``user@host:port/dbname``: never its password."""
    try:
        parts = psycopg.conninfo.conninfo_to_dict(conninfo)
    except psycopg.ProgrammingError:
        return "<a DSN psycopg cannot read>"
    host = str(parts.get("host") or os.environ.get("PGHOST") or "localhost")
    port = str(parts.get("port") or os.environ.get("PGPORT") or "5432")
    user = str(parts.get("user") or os.environ.get("PGUSER") or "")
    dbname = str(parts.get("dbname") or os.environ.get("PGDATABASE") or user)
    return f"{user + '@' if user else ''}{host}:{port}/{dbname}"


def _scrubbed(message: str, conninfo: str) -> str:
    """``message`` without the password of ``conninfo``, should a server or driver echo it."""
    try:
        password = psycopg.conninfo.conninfo_to_dict(conninfo).get("password")
    except psycopg.ProgrammingError:
        return message
    if password and str(password) in message:
        message = message.replace(str(password), "***")
    return message


def clear_error(exc: BaseException, conninfo: str, doing: str) -> psycopg.OperationalError:
    """A one-line :class:`psycopg.OperationalError` naming the database and what failed."""
    reason = " ".join(str(exc).split()) or type(exc).__name__
    return psycopg.OperationalError(
        f"PostgreSQL {where(conninfo)}: {doing} failed: {_scrubbed(reason, conninfo)}"
    )


class Connections:
    """The connections of one store or inbox: the pool given, or one of its own per process."""

    def __init__(
        self,
        owner: str,
        dsn_or_pool: str | psycopg_pool.ConnectionPool[Any],
        *,
        timeout: float,
        max_size: int,
    ) -> None:
        if isinstance(dsn_or_pool, psycopg_pool.ConnectionPool):
            self._given: psycopg_pool.ConnectionPool[Any] | None = dsn_or_pool
            # A pool may take functions that make its conninfo and kwargs when it connects.
            conninfo, kwargs = dsn_or_pool.conninfo, dsn_or_pool.kwargs
            self.conninfo: str = conninfo() if callable(conninfo) else conninfo
            self._kwargs: dict[str, Any] = dict((kwargs() if callable(kwargs) else kwargs) or {})
        elif isinstance(dsn_or_pool, str):
            if not dsn_or_pool.strip():
                raise ValueError(f"{owner} needs a PostgreSQL DSN (postgresql://...), not ''")
            try:
                psycopg.conninfo.conninfo_to_dict(dsn_or_pool)
            except psycopg.ProgrammingError as exc:
                raise ValueError(
                    f"{owner}: the DSN cannot be read: {_scrubbed(str(exc), dsn_or_pool)}"
                ) from None
            self._given = None
            self.conninfo = dsn_or_pool
            self._kwargs = {}
        else:
            raise TypeError(
                f"{owner} takes a PostgreSQL DSN (str) or a psycopg_pool.ConnectionPool, "
                f"not {type_name(dsn_or_pool)}"
            )
        timeout = number("timeout", timeout)
        if not 0 < timeout < math.inf:
            raise ValueError("timeout must be a positive, finite number of seconds")
        self.timeout = timeout
        self.max_size = max_size
        self._lock = threading.Lock()
        self._pool: psycopg_pool.ConnectionPool[Any] | None = None
        self._pid = 0

    @property
    def where(self) -> str:
        """The database, as ``user@host:port/dbname``."""
        return where(self.conninfo)

    @contextlib.contextmanager
    def connection(self, timeout: float | None = None) -> Iterator[psycopg.Connection[Any]]:
        """A connection of the pool, for one step; given back (committed) after it.

        Waited for at most ``timeout`` seconds (the store's or inbox's own by default).
        """
        with self.pool().connection(timeout=self.timeout if timeout is None else timeout) as conn:
            yield conn

    def pool(self) -> psycopg_pool.ConnectionPool[Any]:
        """The pool: the one given, or this process's own, made on first use."""
        if self._given is not None:
            return self._given
        pid = os.getpid()
        if self._pool is not None and self._pid == pid:
            return self._pool
        with self._lock:
            if self._pool is None or self._pid != pid:
                # After fork the parent's pool is the parent's: left alone, not closed.
                self._pool = psycopg_pool.ConnectionPool(
                    self.conninfo,
                    min_size=1,
                    max_size=self.max_size,
                    kwargs={"autocommit": True},
                    configure=self._configure,
                    timeout=self.timeout,
                    name="hookshield",
                    open=False,
                )
                self._pool.open(wait=False)
                self._pid = pid
            return self._pool

    def _configure(self, conn: psycopg.Connection[Any]) -> None:
        # A statement blocked behind a lock (a long migration, a VACUUM FULL) fails
        # within the bound, so that a sender gets its 503 before it gives up on us.
        milliseconds = str(max(1, math.ceil(self.timeout * 1000)))
        conn.execute("SELECT set_config('statement_timeout', %s, false)", (milliseconds,))

    def connect(self, doing: str, **options: Any) -> psycopg.Connection[Any]:
        """A connection of its own, outside the pool; a clear error if it cannot be made."""
        try:
            return psycopg.connect(
                self.conninfo,
                **{
                    **self._kwargs,
                    "connect_timeout": max(2, math.ceil(self.timeout)),
                    **options,
                },
            )
        except psycopg.Error as exc:
            raise clear_error(exc, self.conninfo, doing) from None

    def close(self) -> None:
        """Close this process's own pool (a pool given is the caller's to close)."""
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None and self._pid == os.getpid():
            pool.close()


def ensure_schema(
    connections: Connections,
    name: str,
    version: int,
    statements: Iterable[str],
    *,
    create: bool = True,
    then: Callable[[psycopg.Connection[Any]], None] | None = None,
) -> None:
    """Create the tables of ``name`` (version ``version``) unless they are there; run ``then``.

    One direct connection: a database that cannot be reached is told clearly here,
    on first use, naming what failed.  Without ``create``, missing tables are an
    error; tables of an older version are brought up to ``version`` either way
    (``statements`` are idempotent: they are run again).  ``then`` runs on the same
    connection, in the same transaction when the tables were made or brought up.
    """
    conn = connections.connect("connecting", autocommit=True)
    try:
        found = _version(conn, name)
        if found is None and not create:
            raise psycopg.OperationalError(
                f"PostgreSQL {connections.where}: there is no {name} here (its tables are "
                "missing): check the URL, or create them (hookshield inbox init --inbox URL)"
            )
        if found is None or found < version:
            try:
                with conn.transaction():
                    conn.execute("SELECT pg_advisory_xact_lock(%s)", (_DDL_LOCK,))
                    now = _version(conn, name)  # another process made them meanwhile?
                    if now is None or now < version:
                        for statement in schema_statements(name, version, statements):
                            conn.execute(statement.encode())
                    if then is not None:
                        then(conn)
            except psycopg.errors.InsufficientPrivilege as exc:
                what = (
                    "are missing and this user may not create them"
                    if found is None
                    else f"are of version {found} and this user may not bring them to "
                    f"version {version}"
                )
                raise psycopg.OperationalError(
                    f"PostgreSQL {connections.where}: the tables of {name} {what} "
                    f"({' '.join(str(exc).split())}): have that done once by a user who may "
                    "(hookshield inbox init --inbox DSN, or its --sql run by hand)"
                ) from None
            return
        if found > version:
            raise psycopg.OperationalError(
                f"PostgreSQL {connections.where}: {name} has schema version {found}, made by "
                f"a newer hookshield than this one (which knows version {version}): upgrade it"
            )
        if then is not None:
            with conn.transaction():
                then(conn)
    except psycopg.OperationalError:
        raise
    except psycopg.Error as exc:
        raise clear_error(exc, connections.conninfo, f"preparing {name}") from None
    finally:
        conn.close()


def missing_indexes(conn: psycopg.Connection[Any], names: Iterable[str]) -> list[str]:
    """The indexes of ``names`` (quoted, schema-qualified where the table is) not there or not valid.

    A concurrent build that stopped part-way leaves its index invalid: there, and
    never used.
    """
    missing = []
    for name in names:
        row = conn.execute(
            "SELECT indisvalid FROM pg_index WHERE indexrelid = to_regclass(%s)", (name,)
        ).fetchone()
        if row is None or not row[0]:
            missing.append(name)
    return missing


def make_indexes(connections: Connections, statements: dict[str, str]) -> None:
    """Make each index of ``statements`` (name -> ``CREATE INDEX CONCURRENTLY ...``) that is missing.

    Indexes are not counted in a schema's version: an older release is content with
    more of them, so a release that only adds one needs no stop, and the tables'
    owner makes it (``hookshield inbox init``).  Concurrently, so that writes go on
    while a large table is indexed; an index left invalid by a build that stopped is
    dropped and made again.  Without a statement timeout: a large table takes a while.
    """
    conn = connections.connect("indexing", autocommit=True)
    try:
        conn.execute("SET statement_timeout = 0")
        for name in missing_indexes(conn, statements):
            conn.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {name}".encode())
            conn.execute(statements[name].encode())
    except psycopg.Error as exc:
        raise clear_error(exc, connections.conninfo, "indexing") from None
    finally:
        conn.close()


def schema_statements(name: str, version: int, statements: Iterable[str]) -> list[str]:
    """The SQL that creates the tables of ``name``, or brings them up, and records their version.

    Idempotent, as ``statements`` must be; a version recorded is only ever raised.
    """
    record = (
        f"CREATE TABLE IF NOT EXISTS {SCHEMA_TABLE} "
        "(name text PRIMARY KEY, version integer NOT NULL)",
        f"INSERT INTO {SCHEMA_TABLE} (name, version) VALUES ('{name}', {int(version)}) "
        f"ON CONFLICT (name) DO UPDATE SET version = excluded.version "
        f"WHERE {SCHEMA_TABLE}.version < excluded.version",
    )
    return [*statements, *record]


def _version(conn: psycopg.Connection[Any], name: str) -> int | None:
    """The recorded schema version of ``name``; ``None`` before its tables exist."""
    exists = conn.execute("SELECT to_regclass(%s) IS NOT NULL", (SCHEMA_TABLE,)).fetchone()
    if not exists or not exists[0]:
        return None
    row = conn.execute(f"SELECT version FROM {SCHEMA_TABLE} WHERE name = %s", (name,)).fetchone()
    return None if row is None else int(row[0])
