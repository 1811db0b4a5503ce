"""Django's own database for the tests of ``hookshield.django``'s inbox, store and admin.

Two databases, both real: ``default``, an SQLite file of the test process's own, and
``postgres``, a database of its own on the session's PostgreSQL server
(``tests/postgres_server.py``).  Each is migrated once per test process with
``manage.py migrate``'s own command, and emptied before each test that asks for it.
The settings are those of ``adapters/support.py``'s ``configure_django``.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

from .adapters.support import POSTGRES_ALIAS, configure_django
from .postgres_server import PostgresServer

__all__ = ["django_database", "django_inbox"]

_migrated: set[str] = set()


def django_database(server: PostgresServer | None) -> str:
    """The alias of a migrated, empty Django database: PostgreSQL's with a server, else SQLite's."""
    configure_django()
    from django.core.management import call_command
    from django.db import connections

    alias = "default"
    if server is not None:
        alias = POSTGRES_ALIAS
        wanted = {"HOST": "127.0.0.1", "PORT": str(server.port), "USER": "postgres"}
        current = connections.settings[alias]
        if any(current.get(k) != v for k, v in wanted.items()):
            # The session's server, known only now: a database of its own on it.  The
            # settings dict is the one each thread's connection is made from.
            name = f"django_{uuid.uuid4().hex[:12]}"
            server.create_database(name)
            connections[alias].close()
            current.update(wanted, NAME=name)
            _migrated.discard(alias)
    if alias not in _migrated:
        call_command("migrate", database=alias, verbosity=0, interactive=False)
        _migrated.add(alias)
    from hookshield.django.models import DedupeKey, Delivery, InboxMeta, PausedSender, Refusal

    for model in (Delivery, PausedSender, InboxMeta, DedupeKey, Refusal):
        model.objects.using(alias).all().delete()
    return alias


def django_inbox(server: PostgresServer | None, key: str, tmp_path: Path) -> Any:
    """A ``Backend`` of ``test_inbox_contract.py`` for ``DjangoInbox`` on a fresh database."""
    from django.db import connections

    from hookshield.django import DjangoInbox

    from .test_inbox_contract import Backend

    alias = django_database(server)

    def again(**options: Any) -> DjangoInbox:
        return DjangoInbox(alias, **{"key": key, "lease": 60.0, **options})

    def tamper(delivery_id: str, body: bytes) -> None:
        with connections[alias].cursor() as cursor:
            cursor.execute(
                "UPDATE hookshield_delivery SET body = %s WHERE id = %s", [body, delivery_id]
            )

    return Backend(again(), again, tamper)
