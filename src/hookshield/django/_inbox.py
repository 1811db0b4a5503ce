"""``DjangoInbox``: the durable inbox in the project's own database, through the ORM.

Theory of operation: the rows of :class:`~hookshield.django.models.Delivery`, kept
and changed as ``SQLiteInbox`` and ``PostgresInbox`` keep theirs, on any database
Django supports (``using`` names it).  Every state change is one transaction:

* ``put`` is one ``INSERT`` in a *durable* atomic block, so that it is committed
  when it returns (a ``put`` inside a transaction of the caller's is refused, not
  left to a commit that may never come);
* ``lease``, on a database that can ``SELECT ... FOR UPDATE SKIP LOCKED``
  (PostgreSQL, MySQL 8, Oracle), picks the oldest due row of the worker's handlers
  whose sender is not paused, locked and skipped by every other worker, and marks
  it leased in the same transaction; elsewhere (SQLite) it picks one, then marks it
  leased with an ``UPDATE`` that only succeeds if the row is still as it was read
  (compare and set), and picks again if another worker was first;
* a settle (``done``, ``retry``, ``dead``) is one ``UPDATE`` fenced by the lease id.

On PostgreSQL with psycopg 3, ``put`` and every change that makes a delivery due
also ``NOTIFY`` the channel ``hookshield_delivery`` in the same transaction, and
:meth:`DjangoInbox.listen` wakes waiting workers with it.

Rows are sealed (``_seal.py``) with the inbox key: ``key=``, else the setting
``HOOKSHIELD_INBOX_KEY``, else the environment variable of that name.  The models
are imported on first use, so that this module can be imported while Django loads
the app registry.
"""

from __future__ import annotations

import json
import os
import secrets
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any, Final

from django.conf import settings
from django.db import close_old_connections, connections, transaction
from django.db.models import Case, F, TextField, Value, When

from .._inbox import LEASE_ENDED, STATES, State, StoredDelivery, storable
from .._options import text
from .._seal import ENV_KEY, InboxKey, inbox_key
from .._stores import seconds

if TYPE_CHECKING:
    from .models import Delivery

__all__ = ["DjangoInbox", "requeue", "stored_of"]

#: The channel a PostgreSQL database's workers listen on.
CHANNEL: Final = "hookshield_delivery"
#: How often a lease picks again when other workers took the rows it picked (SQLite).
_PICKS: Final = 32


class DjangoInbox:
    """A durable inbox in Django's database ``using``: ``background=DjangoInbox()``.

    Needs ``"hookshield.django"`` in ``INSTALLED_APPS`` and its tables
    (``manage.py migrate``).  ``key`` seals each row (an :class:`~hookshield.InboxKey`,
    or its text or bytes); without it, the ``HOOKSHIELD_INBOX_KEY`` setting, then
    the environment variable, is used, and without any the inbox is refused
    (``ValueError``): the web processes and the workers need the same key.  ``lease``
    is how long a worker holds a delivery before another may run it: longer than
    your slowest route.  Run the workers with ``manage.py hookshield_worker``.
    """

    def __init__(
        self,
        using: str = "default",
        *,
        key: InboxKey | str | bytes | None = None,
        lease: float = 300.0,
    ) -> None:
        self.using = text("using", using, "the alias of a database in settings.DATABASES")
        found = inbox_key(key if key is not None else getattr(settings, ENV_KEY, None))
        if found is None:
            raise ValueError(
                f"DjangoInbox needs the key that seals its rows: pass key=, or set {ENV_KEY} "
                "in the settings or the environment, the same for the web processes and every "
                'worker (at least 16 bytes; make one with python -c "import secrets; '
                'print(secrets.token_hex(32))")'
            )
        self.key = found
        self.lease_seconds = seconds("lease", lease)
        self._checked_pid = 0
        self._lock = threading.Lock()

    # -- the web side ------------------------------------------------------------

    def put(self, delivery: StoredDelivery) -> None:
        """Store ``delivery``, sealed; committed when this returns."""
        model = self._model()
        delivery = self.key.seal(delivery)
        # durable: refused inside a transaction of the caller's, whose commit would
        # come after the sender was told the delivery was stored.
        with transaction.atomic(using=self.using, durable=True):
            model.objects.using(self.using).create(
                id=delivery.id,
                sender=delivery.sender,
                handler=delivery.handler,
                body=delivery.body,
                headers=_json(delivery.headers),
                received=delivery.received,
                event_types=_json(delivery.event_types),
                events=None if delivery.events is None else _json(delivery.events),
                attempts=delivery.attempts,
                state=delivery.state,
                next_attempt=delivery.next_attempt,
                last_error=storable(delivery.last_error),
                lease_id=delivery.lease_id,
                seal=delivery.seal,
                traceparent=storable(delivery.traceparent),
            )
            self._notify(delivery.sender)

    # -- the worker side -----------------------------------------------------------

    def lease(self, now: float, handlers: Sequence[str]) -> StoredDelivery | None:
        """Lease the oldest due delivery of one of ``handlers`` until ``now + lease``."""
        if not handlers:
            return None
        # A worker's unit of work starts here, as a request does: a connection past
        # its CONN_MAX_AGE, or broken, is replaced.
        close_old_connections()
        model = self._model()
        due = self._due(now, handlers)
        lease_id = secrets.token_hex(16)
        change = {
            "state": "leased",
            "attempts": F("attempts") + 1,
            "next_attempt": now + self.lease_seconds,
            "lease_id": lease_id,
            # A row still 'leased' is due because its lease ended unsettled.
            "last_error": Case(
                When(state="leased", then=Value(LEASE_ENDED)),
                default=F("last_error"),
                output_field=TextField(),
            ),
        }
        if connections[self.using].features.has_select_for_update_skip_locked:
            with transaction.atomic(using=self.using):
                row = due.select_for_update(skip_locked=True).only("id").first()
                if row is None:
                    return None
                model.objects.using(self.using).filter(pk=row.pk).update(**change)
        else:
            for _ in range(_PICKS):
                row = due.only("id", "state", "next_attempt", "lease_id").first()
                if row is None:
                    return None
                # Compare and set: only if no other worker has leased it since the read.
                taken = (
                    model.objects.using(self.using)
                    .filter(
                        pk=row.pk,
                        state=row.state,
                        next_attempt=row.next_attempt,
                        lease_id=row.lease_id,
                    )
                    .update(**change)
                )
                if taken:
                    break
            else:
                return None
        return self.get(row.pk)

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
        self._check_key()
        self.key.check(delivery)

    def listen(self, wake: Callable[[], None]) -> Any:
        """On PostgreSQL with psycopg 3, wake idle workers at each ``NOTIFY``; else ``None``.

        The listener holds a connection of its own, made from the database's settings;
        ``close()`` it when done.
        """
        if not self._notifies():
            return None
        from .._pg_listen import Listener

        wrapper = connections[self.using]

        def connect() -> Any:
            conn = wrapper.get_new_connection(wrapper.get_connection_params())
            conn.autocommit = True
            return conn

        return Listener(connect, CHANNEL, wake)

    # -- pausing a sender ----------------------------------------------------------

    def pause(self, sender: str) -> bool:
        """Lease none of ``sender``'s deliveries until :meth:`resume`; ``False`` if paused already."""
        from .models import PausedSender

        _, made = PausedSender.objects.using(self.using).get_or_create(
            sender=sender, defaults={"since": time.time()}
        )
        return made

    def resume(self, sender: str) -> bool:
        """Lease ``sender``'s deliveries again; ``False`` if it was not paused."""
        from .models import PausedSender

        with transaction.atomic(using=self.using):
            deleted, _ = PausedSender.objects.using(self.using).filter(sender=sender).delete()
            if deleted:
                self._notify(sender)
        return bool(deleted)

    def paused(self) -> dict[str, float]:
        """The paused senders, and since when (seconds since the epoch)."""
        from .models import PausedSender

        rows = PausedSender.objects.using(self.using).order_by("sender")
        return {row.sender: row.since for row in rows}

    # -- inspection, for ``hookshield inbox`` and the admin ---------------------------

    def get(self, delivery_id: str) -> StoredDelivery | None:
        """The stored delivery ``delivery_id``, or ``None``."""
        row = self._model().objects.using(self.using).filter(pk=delivery_id).first()
        return None if row is None else stored_of(row)

    def find_ids(self, prefix: str, limit: int = 10) -> tuple[list[str], int]:
        """Up to ``limit`` ids that start with ``prefix``, in order, and how many do in all."""
        found = self._model().objects.using(self.using).filter(id__startswith=prefix)
        ids = list(found.order_by("id").values_list("id", flat=True)[:limit])
        return ids, (found.count() if ids else 0)

    def waiting(self) -> dict[str, int]:
        """How many deliveries wait to run (pending or leased), by handler name."""
        from django.db.models import Count

        rows = (
            self._model()
            .objects.using(self.using)
            .filter(state__in=("pending", "leased"))
            .values("handler")
            .annotate(n=Count("id"))
            .order_by("handler")
        )
        return {row["handler"]: row["n"] for row in rows}

    def list(self, state: State | None = None, limit: int = 100) -> list[StoredDelivery]:
        """Up to ``limit`` deliveries, oldest first, in ``state`` or any."""
        rows = self._model().objects.using(self.using).order_by("received", "id")
        if state is not None:
            rows = rows.filter(state=_state(state))
        return [stored_of(row) for row in rows[:limit]]

    def counts(self) -> dict[str, int]:
        """How many deliveries are in each state."""
        from django.db.models import Count

        self._check_key()
        rows = self._model().objects.using(self.using).values("state").annotate(n=Count("id"))
        found = {row["state"]: row["n"] for row in rows.order_by()}
        return {state: found.get(state, 0) for state in STATES}

    def oldest_due(self, now: float | None = None) -> float | None:
        """When the delivery due longest became due (Unix seconds), or ``None`` if none is.

        A delivery is due once its ``next_attempt`` has passed and it is pending, or
        leased with a lease that has ended: what ``lease`` would take.
        """
        from django.db.models import Min

        self._check_key()
        due = (
            self._model()
            .objects.using(self.using)
            .filter(
                state__in=("pending", "leased"),
                next_attempt__lte=time.time() if now is None else now,
            )
        )
        found = due.aggregate(oldest=Min("next_attempt"))["oldest"]
        return None if found is None else float(found)

    def requeue(self, delivery_ids: Iterable[str]) -> int:
        """Make these deliveries pending, due now, attempts reset; how many there were.

        A leased delivery is left to the worker running it (and not counted).
        """
        return requeue(self.using, delivery_ids)

    def requeue_dead(self, after: str = "", limit: int = 1000) -> tuple[int, str | None]:
        """Requeue up to ``limit`` dead deliveries whose id sorts after ``after``.

        Returns how many, and the id to pass as ``after`` next (``None`` when no dead
        delivery is left past it).
        """
        model = self._model()
        with transaction.atomic(using=self.using):
            ids = list(
                model.objects.using(self.using)
                .filter(state="dead", id__gt=after)
                .order_by("id")
                .values_list("id", flat=True)[:limit]
            )
            if not ids:
                return 0, None
            count = (
                model.objects.using(self.using)
                .filter(pk__in=ids, state="dead")
                .update(state="pending", attempts=0, next_attempt=0.0, last_error=None)
            )
            self._notify("")
        return count, ids[-1]

    def reseal(self, delivery_ids: Iterable[str]) -> int:
        """Seal these deliveries as they stand now, vouching for them; how many there were.

        A leased delivery is left alone.
        """
        model = self._model()
        count = 0
        with transaction.atomic(using=self.using):
            for delivery_id in delivery_ids:
                row = (
                    model.objects.using(self.using)
                    .select_for_update()
                    .filter(pk=delivery_id)
                    .exclude(state="leased")
                    .first()
                )
                if row is not None:
                    seal = self.key.seal_of(stored_of(row))
                    model.objects.using(self.using).filter(pk=delivery_id).update(seal=seal)
                    count += 1
        return count

    def purge(self, state: State, before: float, limit: int = 1000) -> int:
        """Delete up to ``limit`` deliveries in ``state`` received before ``before``."""
        model = self._model()
        ids = list(
            model.objects.using(self.using)
            .filter(state=_state(state), received__lt=before)
            .values_list("id", flat=True)[:limit]
        )
        deleted, _ = model.objects.using(self.using).filter(pk__in=ids, state=state).delete()
        return int(deleted)

    def close(self) -> None:
        """Close this thread's connection to the database (Django opens another when needed)."""
        connections[self.using].close()

    def end_thread(self) -> None:
        """Close this thread's connections, its routes' included: a worker thread ends."""
        connections.close_all()

    @property
    def where(self) -> str:
        """The database alias and its name, for messages."""
        name = connections[self.using].settings_dict.get("NAME")
        return f"Django database {self.using!r} ({os.fspath(name) if name else '?'})"

    def __repr__(self) -> str:
        return f"DjangoInbox(using={self.using!r}, lease={self.lease_seconds})"

    # -- internals ------------------------------------------------------------------

    def _model(self) -> type[Delivery]:
        from .models import Delivery

        self._check_key()
        return Delivery

    def _due(self, now: float, handlers: Sequence[str]) -> Any:
        from .models import PausedSender

        return (
            self._model()
            .objects.using(self.using)
            .filter(state__in=("pending", "leased"), next_attempt__lte=now, handler__in=handlers)
            .exclude(sender__in=PausedSender.objects.using(self.using).values("sender"))
            .order_by("next_attempt", "id")
        )

    def _settle(self, delivery: StoredDelivery, state: str, due: float, error: str | None) -> bool:
        # Fenced by the lease id: never the same for two leases, unlike the attempts.
        count = (
            self._model()
            .objects.using(self.using)
            .filter(pk=delivery.id, state="leased", lease_id=delivery.lease_id)
            .update(state=state, next_attempt=due, last_error=storable(error), lease_id=None)
        )
        return bool(count)

    def _notifies(self) -> bool:
        return _notifies(self.using)

    def _notify(self, sender: str) -> None:
        _notify(self.using, sender)

    def _check_key(self) -> None:
        """Record this key's id in a new inbox, once per process; refuse another key."""
        pid = os.getpid()
        if self._checked_pid == pid:
            return
        from .models import InboxMeta

        with self._lock:
            if self._checked_pid == pid:
                return
            row, _ = InboxMeta.objects.using(self.using).get_or_create(
                name="key_id", defaults={"value": self.key.id}
            )
            if row.value != self.key.id:
                raise ValueError(
                    f"the inbox in {self.where} is sealed with another key (id {row.value}) "
                    f"than this one (id {self.key.id}): give every process the key it was made "
                    f"with (key=, or {ENV_KEY} in the settings or the environment)"
                )
            self._checked_pid = pid


def requeue(using: str, delivery_ids: Iterable[str]) -> int:
    """Make these deliveries of the database ``using`` pending, due now, attempts reset.

    A leased delivery is left to the worker running it (and not counted).  No key is
    needed: the schedule is not sealed.  Shared by :class:`DjangoInbox` and the admin.
    """
    from .models import Delivery

    ids = list(delivery_ids)
    with transaction.atomic(using=using):
        count = (
            Delivery.objects.using(using)
            .filter(pk__in=ids)
            .exclude(state="leased")
            .update(state="pending", attempts=0, next_attempt=0.0, last_error=None)
        )
        if count:
            _notify(using, "")
    return int(count)


def _notifies(using: str) -> bool:
    """Whether the database can NOTIFY and this process can LISTEN (PostgreSQL, psycopg 3)."""
    wrapper = connections[using]
    driver = getattr(wrapper, "Database", None)  # the DB-API module the backend uses
    return wrapper.vendor == "postgresql" and getattr(driver, "__name__", "") == "psycopg"


def _notify(using: str, sender: str) -> None:
    """Wake the workers listening, when this transaction commits (PostgreSQL only)."""
    if _notifies(using):
        with connections[using].cursor() as cursor:
            cursor.execute("SELECT pg_notify(%s, %s)", [CHANNEL, sender])


def stored_of(row: Delivery) -> StoredDelivery:
    """The :class:`~hookshield.StoredDelivery` a row holds."""
    events = None if row.events is None else tuple(str(e) for e in json.loads(row.events))
    return StoredDelivery(
        id=row.id,
        sender=row.sender,
        handler=row.handler,
        body=bytes(row.body),
        headers=tuple((str(name), str(value)) for name, value in json.loads(row.headers)),
        received=row.received,
        event_types=tuple(str(kind) for kind in json.loads(row.event_types)),
        events=events,
        attempts=row.attempts,
        state=row.state,  # type: ignore[arg-type]  # one of STATES: the column's choices
        next_attempt=row.next_attempt,
        last_error=row.last_error,
        lease_id=row.lease_id,
        seal=row.seal,
        traceparent=row.traceparent,
    )


def _json(value: Iterable[Any]) -> str:
    # ASCII: a lone surrogate or a NUL in a header is escaped, and kept on every backend.
    return json.dumps(list(value), ensure_ascii=True)


def _state(state: str) -> str:
    if state not in STATES:
        raise ValueError(f"state must be one of {', '.join(STATES)}, not {state!r}")
    return state
