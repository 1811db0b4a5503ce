"""Opening an inbox from one string: a ``postgresql://`` URL, or the path of an SQLite file.

Theory of operation: everything that takes an inbox on a command line or in a setting
(``hookshield worker --inbox``, ``hookshield inbox ... --inbox``, ``HOOKSHIELD_INBOX``)
goes through :func:`open_inbox`, so that each accepts both.  The PostgreSQL inbox is
imported only when a URL names it: this module loads no database driver itself.
"""

from __future__ import annotations

from typing import Final

from .._core.options import text
from .browse import ManagedInbox
from .seal import InboxKey

__all__ = ["is_postgres_url", "open_inbox"]

#: The schemes libpq and psycopg read as a PostgreSQL URL.
POSTGRES_SCHEMES: Final = ("postgresql://", "postgres://")


def is_postgres_url(where: str) -> bool:
    """Whether ``where`` is a PostgreSQL URL rather than a file path."""
    return where.strip().lower().startswith(POSTGRES_SCHEMES)


def open_inbox(
    where: str,
    *,
    key: InboxKey | str | bytes | None = None,
    lease: float = 300.0,
    create: bool = True,
    read_only: bool = False,
) -> ManagedInbox:
    """The inbox ``where`` names: ``PostgresInbox`` for a ``postgresql://`` URL, else ``SQLiteInbox``.

    ``create=False`` opens only an inbox that exists (a file, or tables, made
    before): a mistyped name is an error, never a new, empty inbox.  ``read_only``
    (SQLite) opens the file for reading only.  ``key`` and ``lease`` are passed on;
    a PostgreSQL inbox needs a key (``key=`` or ``HOOKSHIELD_INBOX_KEY``).
    """
    text("where", where, "a postgresql:// URL or the path of an SQLite file (a str)")
    if is_postgres_url(where):
        from ..postgres import PostgresInbox

        return PostgresInbox(where.strip(), key=key, lease=lease, create=create)
    from .sqlite_inbox import SQLiteInbox

    return SQLiteInbox(where, key=key, lease=lease, create=create, read_only=read_only)
