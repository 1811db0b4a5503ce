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

Each change of a delivery's state appends a line to its ``attempt_log``, cut to the
same bound as the other inboxes' (``_browse.log_line``).  Browsing is ORM queries; an
event type is matched in the JSON text of ``event_types`` by where the encoded type
starts and ends (:func:`_matching`), with ``StrIndex`` (``INSTR``, ``STRPOS``),
which compares case-sensitively on SQLite and PostgreSQL (on MySQL, as its
collation does).  ``keep_refused=N`` keeps the latest N refused deliveries as
:class:`~hookshield.django.models.Refusal` rows, one at a time under a row lock
waited for a few milliseconds at most (on PostgreSQL), else dropped.

On PostgreSQL with psycopg 3, ``put`` and every change that makes a delivery due
also ``NOTIFY`` the channel ``hookshield_delivery`` in the same transaction, and
:meth:`DjangoInbox.listen` wakes waiting workers with it.

Rows are sealed (``_durable/seal.py``) with the inbox key: ``key=``, else the setting
``HOOKSHIELD_INBOX_KEY``, else the environment variable of that name.  The models
are imported on first use, so that this module can be imported while Django loads
the app registry.
"""

from __future__ import annotations

import builtins
import json
import math
import os
import secrets
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any, Final

from django.conf import settings
from django.db import OperationalError, close_old_connections, connections, transaction
from django.db.models import (
    Case,
    Count,
    F,
    Min,
    Q,
    TextField,
    Value,
    When,
)
from django.db.models.functions import Cast, Coalesce, Concat, Floor, Right, StrIndex
from django.db.models.lookups import Exact, GreaterThan

from .._core.options import text
from .._durable.browse import (
    LOG_CHARS,
    Attempt,
    DeliveryFilter,
    InboxOverview,
    attempts_of,
    lease_ended_parts,
    log_line,
    requeued_line,
)
from .._durable.inbox import LEASE_ENDED, STATES, State, StoredDelivery, storable
from .._durable.refused import KEEP_WAIT, KEPT_BYTES, RefusedDelivery, keeping
from .._durable.seal import ENV_KEY, InboxKey, inbox_key
from .._stores.common import seconds

if TYPE_CHECKING:
    from .models import Delivery, Refusal

__all__ = ["DjangoInbox", "requeue", "stored_of"]

#: The channel a PostgreSQL database's workers listen on.
CHANNEL: Final = "hookshield_delivery"
#: How often a lease picks again when other workers took the rows it picked (SQLite).
_PICKS: Final = 32
#: The InboxMeta row that one refusal kept at a time locks (where rows can be locked).
_REFUSED_LOCK: Final = "refused_lock"


class DjangoInbox:
    """A durable inbox in Django's database ``using``: ``background=DjangoInbox()``.

    Needs ``"hookshield.django"`` in ``INSTALLED_APPS`` and its tables
    (``manage.py migrate``).  ``key`` seals each row (an :class:`~hookshield.InboxKey`,
    or its text or bytes); without it, the ``HOOKSHIELD_INBOX_KEY`` setting, then
    the environment variable, is used, and without any the inbox is refused
    (``ValueError``): the web processes and the workers need the same key.  ``lease``
    is how long a worker holds a delivery before another may run it: longer than
    your slowest route.  Run the workers with ``manage.py hookshield_worker``.

    ``keep_refused=N`` keeps the latest N deliveries the views storing in this inbox
    refuse with a 4xx, for diagnosis, as :class:`~hookshield.SQLiteInbox` does: at
    most the first ``keep_refused_bytes`` bytes of each body, credentials hidden
    (``hookshield inbox refused``, the dashboard).  Off (0) by default.
    """

    def __init__(
        self,
        using: str = "default",
        *,
        key: InboxKey | str | bytes | None = None,
        lease: float = 300.0,
        keep_refused: int = 0,
        keep_refused_bytes: int = KEPT_BYTES,
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
        #: How many refused deliveries are kept (0: none), and how much of each body.
        self.keep_refused, self.keep_refused_bytes = keeping(keep_refused, keep_refused_bytes)
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
        head, tail = lease_ended_parts(now)
        change = {
            # A row still 'leased' is due because its lease ended unsettled: so noted,
            # with the attempt that ended.  First: a database that assigns in order
            # (MySQL) reads the state and attempts before they change.
            "last_error": Case(
                When(state="leased", then=Value(LEASE_ENDED)),
                default=F("last_error"),
                output_field=TextField(),
            ),
            "attempt_log": Case(
                When(
                    state="leased",
                    then=_appended(
                        Concat(
                            _text(head),
                            Cast(F("attempts"), output_field=TextField()),
                            _text(tail),
                            output_field=TextField(),
                        )
                    ),
                ),
                default=F("attempt_log"),
                output_field=TextField(),
            ),
            "state": "leased",
            "attempts": F("attempts") + 1,
            "next_attempt": now + self.lease_seconds,
            "lease_id": lease_id,
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
        from .._stores.pg_listen import Listener

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

        rows = PausedSender.objects.using(self.using).values_list("sender", "since")
        # Sorted here, by code point as SQLite does, whatever the database's collation.
        return {str(sender): float(since) for sender, since in sorted(rows)}

    # -- inspection, for ``hookshield inbox`` and the admin ---------------------------

    def get(self, delivery_id: str) -> StoredDelivery | None:
        """The stored delivery ``delivery_id``, or ``None``."""
        row = self._model().objects.using(self.using).filter(pk=delivery_id).first()
        return None if row is None else stored_of(row)

    def find_ids(self, prefix: str, limit: int = 10) -> tuple[builtins.list[str], int]:
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

    def list(self, state: State | None = None, limit: int = 100) -> builtins.list[StoredDelivery]:
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
                .update(**_requeue())
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

    # -- browsing and steering, for the dashboard and ``hookshield inbox`` ------------

    def find(
        self, where: DeliveryFilter, *, limit: int = 50, before: str | None = None
    ) -> builtins.list[StoredDelivery]:
        """Up to ``limit`` deliveries ``where`` selects, newest first; after ``before``'s page.

        ``before`` is the id of the last delivery of the page before (see
        :meth:`~hookshield.BrowsableInbox.find`).
        """
        rows = self._model().objects.using(self.using).filter(_matching(where))
        if before is not None:
            mark = rows.model.objects.using(self.using).filter(pk=before)
            found = mark.values_list("received", "id").first()
            if found is None:
                return []  # purged meanwhile: the paging ends
            received, last = found
            rows = rows.filter(Q(received__lt=received) | Q(received=received, id__lt=last))
        ordered = rows.order_by("-received", "-id")[: max(1, limit)]
        return [stored_of(row) for row in ordered]

    def count(self, where: DeliveryFilter) -> int:
        """How many deliveries ``where`` selects."""
        return int(self._model().objects.using(self.using).filter(_matching(where)).count())

    def requeue_matching(
        self, where: DeliveryFilter, *, after: str = "", limit: int = 1000
    ) -> tuple[int, str | None]:
        """Requeue up to ``limit`` deliveries ``where`` selects whose id sorts after ``after``.

        Returns how many, and the id to pass as ``after`` next (``None`` once none is
        left).  A leased delivery is left to its worker, as :meth:`requeue` does.
        """
        model = self._model()
        with transaction.atomic(using=self.using):
            ids = builtins.list(
                model.objects.using(self.using)
                .filter(_matching(where), id__gt=after)
                .exclude(state="leased")
                .order_by("id")
                .values_list("id", flat=True)[: max(1, limit)]
            )
            if not ids:
                return 0, None
            count = (
                model.objects.using(self.using)
                .filter(pk__in=ids)
                .exclude(state="leased")
                .update(**_requeue())
            )
            if count:
                self._notify("")
        return int(count), ids[-1]

    def purge_matching(self, where: DeliveryFilter, *, limit: int = 1000) -> int:
        """Delete up to ``limit`` deliveries ``where`` selects, which must name done or dead.

        A pending or leased delivery is never purged by a filter: it has yet to run.
        """
        if where.state not in ("done", "dead"):
            raise ValueError("purge deletes done or dead deliveries only: give state done or dead")
        model = self._model()
        ids = builtins.list(
            model.objects.using(self.using)
            .filter(_matching(where))
            .values_list("id", flat=True)[: max(1, limit)]
        )
        # The state again: a delivery requeued meanwhile is judged as it is now.
        deleted, _ = model.objects.using(self.using).filter(pk__in=ids, state=where.state).delete()
        return int(deleted)

    def discard(self, delivery_ids: Iterable[str]) -> int:
        """Delete these deliveries if they are done or dead; how many were.

        A pending or leased delivery is left alone: it has yet to run.
        """
        ids = builtins.list(delivery_ids)
        if not ids:
            return 0
        gone = self._model().objects.using(self.using).filter(pk__in=ids)
        deleted, _ = gone.filter(state__in=("done", "dead")).delete()
        return int(deleted)

    def history(self, delivery_id: str) -> builtins.list[Attempt]:
        """The latest attempts made on ``delivery_id``, oldest first; empty when there is none.

        Each settle (done, retried, dead), each lease that ended unsettled and each
        requeue by a person adds a line; a row keeps its last few dozen.
        """
        rows = self._model().objects.using(self.using).filter(pk=delivery_id)
        found = rows.values_list("attempt_log", flat=True).first()
        return attempts_of(found)

    def overview(self, now: float, *, span: float, buckets: int) -> InboxOverview:
        """The overview page's counts at ``now``; see :class:`~hookshield.InboxOverview`."""
        if not (span > 0 and math.isfinite(span)) or not 1 <= buckets <= 1000:
            raise ValueError("span must be a positive number of seconds and buckets 1 to 1000")
        rows = self._model().objects.using(self.using)
        grouped = rows.values("sender", "state").annotate(n=Count("id")).order_by()
        by_sender: dict[str, dict[str, int]] = {}
        counts: dict[str, int] = dict.fromkeys(STATES, 0)
        # Sorted here, by code point as SQLite does, whatever the database's collation.
        for row in sorted(grouped, key=lambda row: (row["sender"], row["state"])):
            by_sender.setdefault(row["sender"], dict.fromkeys(STATES, 0))[row["state"]] = row["n"]
            counts[row["state"]] += row["n"]
        oldest = rows.filter(state__in=("pending", "leased"), next_attempt__lte=now).aggregate(
            first=Min("next_attempt")
        )["first"]
        start, width = now - span, span / buckets
        counted: builtins.list[dict[str, int]] = [dict.fromkeys(STATES, 0) for _ in range(buckets)]
        received = (
            rows.filter(received__gte=start, received__lt=now)
            # Floor, not a cast: a cast to an integer rounds on some databases.
            .annotate(bucket=Floor((F("received") - Value(start)) / Value(width)))
            .values("bucket", "state")
            .annotate(n=Count("id"))
            .order_by()
        )
        for row in received:
            counted[min(int(row["bucket"]), buckets - 1)][row["state"]] = row["n"]
        return InboxOverview(
            now=now,
            counts=counts,
            by_sender=by_sender,
            oldest_due=None if oldest is None else float(oldest),
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

        Its body is cut to ``keep_refused_bytes``.  One at a time, so that the bound
        holds exactly: on PostgreSQL the lock is waited for a few milliseconds at
        most, and the refusal dropped rather than hold up the deliveries.
        """
        if not self.keeps_refused:
            return False
        from .models import InboxMeta, Refusal

        self._check_key()
        wrapper = connections[self.using]
        if wrapper.features.has_select_for_update:
            InboxMeta.objects.using(self.using).get_or_create(
                name=_REFUSED_LOCK, defaults={"value": ""}
            )
        row = Refusal(
            id=refused.id,
            sender=refused.sender,
            handler=refused.handler,
            status=refused.status,
            error=storable(refused.error),
            reason=storable(refused.reason),
            peer=storable(refused.peer),
            received=refused.received,
            headers=_json(refused.headers),
            body=refused.body[: self.keep_refused_bytes],
            body_size=refused.body_size,
        )
        try:
            with transaction.atomic(using=self.using):
                if wrapper.features.has_select_for_update:
                    self._lock_refusals(wrapper)
                # Saved first: where nothing locks a row (SQLite), the write takes the
                # database's lock, and the trim below reads what it guards.
                row.save(using=self.using)
                kept = Refusal.objects.using(self.using).order_by("-received", "-id")
                oldest = kept.values_list("received", "id")[
                    self.keep_refused - 1 : self.keep_refused
                ]
                for received, last in oldest:
                    kept.filter(
                        Q(received__lt=received) | Q(received=received, id__lt=last)
                    ).delete()
        except OperationalError as exc:
            if not _busy(exc):
                raise
            return False
        return True

    def refused(
        self, *, limit: int = 50, before: str | None = None
    ) -> builtins.list[RefusedDelivery]:
        """Up to ``limit`` kept refusals, newest first; those after the id ``before``, if given."""
        rows = self._refusals()
        if before is not None:
            found = rows.filter(pk=before).values_list("received", "id").first()
            if found is None:
                return []
            received, last = found
            rows = rows.filter(Q(received__lt=received) | Q(received=received, id__lt=last))
        return [_refusal(row) for row in rows.order_by("-received", "-id")[: max(1, limit)]]

    def get_refused(self, refused_id: str) -> RefusedDelivery | None:
        """The kept refusal ``refused_id``, or ``None``."""
        row = self._refusals().filter(pk=refused_id).first()
        return None if row is None else _refusal(row)

    def forget_refused(self, refused_ids: Iterable[str]) -> int:
        """Forget these kept refusals; how many there were."""
        ids = builtins.list(refused_ids)
        if not ids:
            return 0
        deleted, _ = self._refusals().filter(pk__in=ids).delete()
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
            .update(
                state=state,
                next_attempt=due,
                last_error=storable(error),
                lease_id=None,
                attempt_log=_appended(_text(log_line(delivery.attempts, state, error))),
            )
        )
        return bool(count)

    def _refusals(self) -> Any:
        from .models import Refusal

        self._check_key()
        return Refusal.objects.using(self.using)

    def _lock_refusals(self, wrapper: Any) -> None:
        """Lock the row that one refusal kept at a time holds, in this transaction."""
        from .models import InboxMeta

        if wrapper.vendor == "postgresql":
            # Waited for briefly, then dropped: see keep_refusal.
            milliseconds = str(max(1, math.ceil(KEEP_WAIT * 1000)))
            with wrapper.cursor() as cursor:
                cursor.execute("SELECT set_config('lock_timeout', %s, true)", [milliseconds])
            rows = InboxMeta.objects.using(self.using).select_for_update()
        elif wrapper.features.has_select_for_update_nowait:
            rows = InboxMeta.objects.using(self.using).select_for_update(nowait=True)
        else:  # pragma: no cover - every backend that locks rows can refuse to wait
            rows = InboxMeta.objects.using(self.using).select_for_update()
        builtins.list(rows.filter(name=_REFUSED_LOCK))

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
            .update(**_requeue())
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


def _text(value: str) -> Value:
    return Value(value, output_field=TextField())


def _appended(line: Any) -> Any:
    """A row's attempt log with ``line`` (an expression) appended, cut to its last LOG_CHARS."""
    log = Concat(Coalesce(F("attempt_log"), _text("")), line, output_field=TextField())
    return Right(log, LOG_CHARS)


def _requeue() -> dict[str, Any]:
    """The change that makes a delivery pending and due now, attempts reset, noted in its log."""
    return {
        "state": "pending",
        "attempts": 0,
        "next_attempt": 0.0,
        "last_error": None,
        "attempt_log": _appended(_text(requeued_line())),
    }


def _matching(where: DeliveryFilter) -> Q:
    """The rows ``where`` selects, as a ``Q``; see DeliveryFilter.matches."""
    found = Q()
    if where.state is not None:
        found &= Q(state=_state(where.state))
    if where.sender is not None:
        found &= Q(sender=where.sender)
    if where.since is not None:
        found &= Q(received__gte=where.since)
    if where.until is not None:
        found &= Q(received__lt=where.until)
    if where.event_type is not None:
        # event_types is the JSON list _json wrote: ["a", "b"], ASCII, ", " between.  An
        # element starts after "[" or ", " (a quote inside one is escaped, \"), and JSON's
        # escaping is character by character, so a type is one element when its encoding,
        # quotes and all, follows either; a prefix when its encoding without the closing
        # quote does.  INSTR and STRPOS compare exactly, where LIKE may ignore case.
        kind = where.event_type
        encoded = json.dumps(kind[:-1])[:-1] if kind.endswith("*") else json.dumps(kind)
        first = Exact(StrIndex("event_types", Value("[" + encoded)), 1)
        later = GreaterThan(StrIndex("event_types", Value(", " + encoded)), 0)
        found &= Q(first) | Q(later)
    return found


def _busy(exc: OperationalError) -> bool:
    """Whether ``exc`` says a lock was not had in time (not that the database is down)."""
    cause = exc.__cause__
    if getattr(cause, "sqlstate", None) == "55P03":  # PostgreSQL: lock_not_available
        return True
    message = str(exc).lower()
    return "database is locked" in message or "could not obtain lock" in message


def _refusal(row: Refusal) -> RefusedDelivery:
    return RefusedDelivery(
        id=row.id,
        sender=row.sender,
        handler=row.handler,
        status=row.status,
        error=row.error,
        reason=row.reason,
        peer=row.peer,
        received=row.received,
        headers=tuple((str(name), str(value)) for name, value in json.loads(row.headers)),
        body=bytes(row.body),
        body_size=row.body_size,
    )


def _json(value: Iterable[Any]) -> str:
    # ASCII: a lone surrogate or a NUL in a header is escaped, and kept on every backend.
    return json.dumps(list(value), ensure_ascii=True)


def _state(state: str) -> str:
    if state not in STATES:
        raise ValueError(f"state must be one of {', '.join(STATES)}, not {state!r}")
    return state
