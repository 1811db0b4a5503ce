"""A de-duplication store in an SQLite file, shared by the processes of one machine.

Theory of operation: one table holds a row per key, ``(key, done, expiry, owner)``;
a row whose expiry has passed is a free key, whether or not it is still there, and
``owner`` is the token of the claim in progress.  Every step is one SQLite
transaction opened with ``BEGIN IMMEDIATE`` (it takes the write lock first, so the
read and the write that follows see the same row), and SQLite lets one writer at a
time into a file, so that several worker processes (gunicorn ``-w 4``) never both
claim a key, nor settle one the other has claimed:

* ``claim`` inserts the key under a new token, or takes over a row that has expired,
  and otherwise reads the row to answer;
* ``complete`` reads the row (was it another token's?), then marks it done;
* ``release`` reads the row, and deletes it unless it is live and done or another
  token's.

A file made by an earlier release, without the ``owner`` column, gains it on first
use; its rows keep their state.

Expiry times are wall-clock (``time.time``) seconds: they are compared between
processes, and each process's monotonic clock starts at an arbitrary point.  A clock
stepped back therefore makes keys live longer, one stepped forward lets them lapse
early; hookshield's leases and TTLs are minutes and hours, well beyond NTP's steps.

Expired rows are deleted as the store goes: every :data:`PURGE_EVERY` writes, one
bounded batch, so that no call does unbounded work.

This module owns the SQL and the connection's life (per process: a connection made
before ``fork`` is never used in the child).  It imports :mod:`sqlite3` on first use,
so that ``import hookshield`` does not load it.
"""

from __future__ import annotations

import os
import threading
import time
import weakref
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from .._core.options import function, type_name
from .._handling.dedupe import Claim, new_token
from .common import key_bytes, seconds

if TYPE_CHECKING:
    import sqlite3

__all__ = [
    "DEFAULT_TIMEOUT",
    "PURGE_BATCH",
    "PURGE_EVERY",
    "SQLiteDedupeStore",
    "file_path",
    "reset_locks_after_fork",
]

#: How long a step waits for another connection's write lock, in seconds.  Short: a
#: step that gives up is a 503 with ``Retry-After`` (the sender retries later), while
#: one that waits as long as the sender does (5 to 10 s) answers no one, and a server
#: with a short worker timeout (``gunicorn --timeout 5``) kills the worker waiting.
DEFAULT_TIMEOUT = 1.0

#: Writes between two purges of expired rows.
PURGE_EVERY = 256
#: Most expired rows one purge deletes: the bound on the work one call adds.
PURGE_BATCH = 512

# The statements are literals (no text is ever formatted into them); the values are
# bound parameters.
_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS hookshield_dedupe ("
    " key BLOB PRIMARY KEY, done INTEGER NOT NULL, expiry REAL NOT NULL, owner TEXT"
    ") WITHOUT ROWID",
    # The purge finds expired rows by expiry, not by scanning the table.
    "CREATE INDEX IF NOT EXISTS hookshield_dedupe_expiry ON hookshield_dedupe (expiry)",
)
_COLUMNS = "SELECT name FROM pragma_table_info('hookshield_dedupe')"
# A file made before claims had owners: its rows have none (NULL, no one's token).
_ADD_OWNER = "ALTER TABLE hookshield_dedupe ADD COLUMN owner TEXT"
# Insert the key in progress, or take over its row if that row has expired; the
# row count (1 or 0) says which happened.
_CLAIM = (
    "INSERT INTO hookshield_dedupe (key, done, expiry, owner) VALUES (:key, 0, :expiry, :owner)"
    " ON CONFLICT (key) DO UPDATE SET done = 0, expiry = :expiry, owner = :owner"
    " WHERE expiry <= :now"
)
_STATE = "SELECT done FROM hookshield_dedupe WHERE key = ?"
# Whether a live row stands in the way of the claim of :owner: in progress under another
# token (for complete and release), or done (for release).
_HELD_BY_ANOTHER = (
    "SELECT done FROM hookshield_dedupe WHERE key = :key AND expiry > :now"
    " AND (done = 1 OR owner IS NOT :owner)"
)
_COMPLETE = (
    "INSERT OR REPLACE INTO hookshield_dedupe (key, done, expiry, owner) VALUES (?, 1, ?, NULL)"
)
_RELEASE = "DELETE FROM hookshield_dedupe WHERE key = ?"
_PURGE = (
    "DELETE FROM hookshield_dedupe WHERE key IN (SELECT key FROM hookshield_dedupe"
    " WHERE expiry <= ? ORDER BY expiry LIMIT ?)"
)


class _ForkSafe(Protocol):
    def _after_fork(self) -> None: ...


# Every SQLite store and inbox of this process, for the hook that runs in a forked child.
_STORES: weakref.WeakSet[_ForkSafe] = weakref.WeakSet()


def reset_locks_after_fork(owner: _ForkSafe) -> None:
    """Call ``owner._after_fork()`` in every child this process forks from now on.

    A thread of the parent may hold one of the owner's locks at the fork; in the
    child that thread does not exist and the lock would stay taken forever, so the
    owner makes new ones there.
    """
    _STORES.add(owner)


def _after_fork_in_child() -> None:
    for owner in list(_STORES):
        owner._after_fork()


if hasattr(os, "register_at_fork"):  # POSIX; elsewhere there is no fork
    os.register_at_fork(after_in_child=_after_fork_in_child)


def file_path(owner: str, path: str | os.PathLike[str], instead: str) -> Path:
    """``path`` as the :class:`Path` of a file every process opens; else a clear error.

    Refused: ``""`` and ``":memory:"`` (each connection would have a database of its
    own; ``instead`` names what to use then), a directory, and a file whose
    directory does not exist.
    """
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path must be a file path (a str or os.PathLike), not {type_name(path)}")
    text = os.fspath(path)
    if not text or text == ":memory:":
        raise ValueError(
            f"{owner} needs the path of a file that every worker opens, not {text!r}; {instead}"
        )
    file = Path(text)
    if file.is_dir():
        raise IsADirectoryError(f"{owner} path {text!r} is a directory, not a file")
    if not file.parent.is_dir():
        raise FileNotFoundError(
            f"{owner} path {text!r}: the directory {str(file.parent)!r} does not exist"
        )
    return file


class SQLiteDedupeStore:
    """A store in an SQLite file that every process of one machine opens.

    Use it behind several workers on one host (gunicorn ``-w 4``); across hosts, use
    ``hookshield.redis.RedisDedupeStore``.  The file and its table are created on
    first use.  ``timeout`` is how long a step waits for another process's write
    before it raises :class:`sqlite3.OperationalError` (a claim then answers 503 with
    ``Retry-After``); one second by default, well within what senders and servers
    wait for an answer.  ``clock`` is a wall clock
    in seconds, the same in every process (see the module's notes).  It is safe to
    share between threads and to create before the server forks its workers.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        timeout: float = DEFAULT_TIMEOUT,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.path = file_path(
            "SQLiteDedupeStore", path, "within one process, use MemoryDedupeStore"
        )
        self.timeout = seconds("timeout", timeout)
        self._clock = function("clock", clock)
        self._lock = threading.Lock()
        self._pid = os.getpid()
        self._connection: sqlite3.Connection | None = None
        self._writes = 0
        reset_locks_after_fork(self)

    def claim(self, key: str, lease: float) -> tuple[Claim, str | None]:
        """Mark a free ``key`` in progress for ``lease`` seconds under a new token."""
        name, lease = key_bytes(key), seconds("lease", lease)
        token = new_token()
        with self._lock:
            connection = self._open()
            now = self._clock()
            # The connection as a context manager commits, or rolls back on an error.
            with connection:
                connection.execute("BEGIN IMMEDIATE")
                row = {"key": name, "expiry": now + lease, "owner": token, "now": now}
                if connection.execute(_CLAIM, row).rowcount:
                    answer: tuple[Claim, str | None] = (Claim.NEW, token)
                else:
                    (done,) = connection.execute(_STATE, (name,)).fetchone()
                    answer = (Claim.DONE if done else Claim.IN_PROGRESS), None
            if answer[1] is not None:
                self._wrote(connection, now)
            return answer

    def complete(self, key: str, token: str, ttl: float) -> bool:
        """Mark ``key`` done for ``ttl`` seconds; ``False`` if another token held it."""
        name, ttl = key_bytes(key), seconds("ttl", ttl)
        with self._lock:
            connection = self._open()
            now = self._clock()
            with connection:
                connection.execute("BEGIN IMMEDIATE")
                found = connection.execute(
                    _HELD_BY_ANOTHER, {"key": name, "now": now, "owner": token}
                ).fetchone()
                connection.execute(_COMPLETE, (name, now + ttl))
            self._wrote(connection, now)
            # A live done row is no other attempt's claim: only one in progress is.
            return found is None or bool(found[0])

    def release(self, key: str, token: str) -> bool:
        """Forget ``key`` unless it is done or another token's; ``False`` if so."""
        name = key_bytes(key)
        with self._lock:
            connection = self._open()
            now = self._clock()
            with connection:
                connection.execute("BEGIN IMMEDIATE")
                if connection.execute(
                    _HELD_BY_ANOTHER, {"key": name, "now": now, "owner": token}
                ).fetchone():
                    return False
                connection.execute(_RELEASE, (name,))
            return True

    def close(self) -> None:
        """Close this process's connection; the next call opens a new one."""
        with self._lock:
            if self._connection is not None and self._pid == os.getpid():
                self._connection.close()
            self._connection = None

    def _after_fork(self) -> None:
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"SQLiteDedupeStore({str(self.path)!r})"

    def _open(self) -> sqlite3.Connection:
        """This process's connection, opened (and the table made) on first use."""
        if self._pid != os.getpid():
            # Forked: the parent's connection shares its file locks and state with the
            # parent, and SQLite forbids using it here.  Abandon it unclosed (closing
            # would act on the parent's locks) and open this process's own.  Checked
            # here, not in the fork hook, so that a fork that skips Python's hooks
            # (one made by a C extension) is caught too.
            self._pid, self._connection, self._writes = os.getpid(), None, 0
        if self._connection is None:
            self._connection = self._connect()
        return self._connection

    def _connect(self) -> sqlite3.Connection:
        # Imported here: `import hookshield` does not load sqlite3 (tests/test_imports.py).
        import sqlite3

        # isolation_level=None: no implicit transactions; each step says BEGIN itself.
        # check_same_thread=False: the lock above serialises the threads.
        connection = sqlite3.connect(
            self.path, timeout=self.timeout, isolation_level=None, check_same_thread=False
        )
        try:
            # WAL: readers never block the writer, and a commit appends to the log.
            # Switching a new file to it is not covered by the busy timeout: workers
            # opening the file at once retry until the first has switched it.  (Where
            # WAL is unavailable the mode stays as it was; claims remain atomic.)
            deadline = time.monotonic() + self.timeout
            while True:
                try:
                    connection.execute("PRAGMA journal_mode=WAL")
                    break
                except sqlite3.OperationalError as exc:
                    if "locked" not in str(exc) or time.monotonic() > deadline:
                        raise
                    time.sleep(0.005)
            # NORMAL skips the fsync at each commit in WAL mode: a power cut may lose
            # the last few keys, which only means a retry of those deliveries runs
            # again, the same as after a crash with the in-memory store.  The file
            # cannot be corrupted by it.
            connection.execute("PRAGMA synchronous=NORMAL")
            for statement in _SCHEMA:
                connection.execute(statement)
            self._add_owner_column(connection)
        except BaseException:
            connection.close()
            raise
        return connection

    @staticmethod
    def _add_owner_column(connection: sqlite3.Connection) -> None:
        """Give a file made before claims had owners its ``owner`` column."""
        import sqlite3

        if ("owner",) in connection.execute(_COLUMNS).fetchall():
            return
        try:
            connection.execute(_ADD_OWNER)
        except sqlite3.OperationalError as exc:
            if "duplicate column" not in str(exc):  # another worker added it first
                raise

    def _wrote(self, connection: sqlite3.Connection, now: float) -> None:
        self._writes += 1
        if self._writes % PURGE_EVERY == 0:
            connection.execute(_PURGE, (now, PURGE_BATCH))
