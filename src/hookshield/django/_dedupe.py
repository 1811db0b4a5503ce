"""``DjangoDedupeStore``: de-duplication claims in the project's own database, through the ORM.

Theory of operation: a key is one row of :class:`~hookshield.django.models.DedupeKey`,
``(key, done, expiry, owner)`` as in the SQLite and PostgreSQL stores, its key the
SHA-256 of the delivery's key (any sender's id, at a length every backend indexes).
Each step is made of statements every backend runs atomically on one row:

* ``claim`` takes an expired row over with an ``UPDATE ... WHERE expiry <= now``;
  failing that it ``INSERT``s the key, and a primary key that is there already (a
  live row, or one another process inserted first) means it reads the row to
  answer; should the row vanish in between (released), it tries once more, and then
  answers in progress, so that the sender retries rather than the routes run twice;
* ``complete`` locks the row where the database can (``SELECT ... FOR UPDATE``),
  reads whether another token held it, and marks it done, in one transaction;
* ``release`` is one ``DELETE`` of the row unless it is live and done or another
  token's.

Expired rows are deleted as the store goes: every :data:`PURGE_EVERY` claims, one
bounded batch.  Times are wall-clock seconds of the process (``clock``): keep the
hosts' clocks in step (NTP), as for the SQLite store.  The models are imported on
first use.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable
from typing import Final

from django.db import IntegrityError, transaction
from django.db.models import Q

from .._core.options import function, text
from .._handling.dedupe import Claim, new_token
from .._stores.common import key_bytes, seconds

__all__ = ["DjangoDedupeStore"]

#: Claims between two purges of expired rows, and the most one purge deletes.
PURGE_EVERY: Final = 256
PURGE_BATCH: Final = 512


class DjangoDedupeStore:
    """A de-duplication store in Django's database ``using`` (``hookshield.django`` installed).

    Shared by every process and host that uses the database: a store for several
    workers when the project has no Redis.  ``clock`` is a wall clock in seconds,
    the same in every process.
    """

    def __init__(self, using: str = "default", *, clock: Callable[[], float] = time.time) -> None:
        self.using = text("using", using, "the alias of a database in settings.DATABASES")
        self._clock = function("clock", clock)
        self._claims = 0
        self._lock = threading.Lock()

    def claim(self, key: str, lease: float) -> tuple[Claim, str | None]:
        """Mark a free ``key`` in progress for ``lease`` seconds under a new token."""
        from .models import DedupeKey

        name, lease = _name(key), seconds("lease", lease)
        rows = DedupeKey.objects.using(self.using)
        token = new_token()
        now = self._clock()
        for _ in range(2):
            taken = rows.filter(key=name, expiry__lte=now).update(
                done=False, expiry=now + lease, owner=token
            )
            if not taken:
                try:
                    with transaction.atomic(using=self.using):
                        rows.create(key=name, done=False, expiry=now + lease, owner=token)
                    taken = 1
                except IntegrityError:  # the key is there: live, or just inserted by another
                    found = rows.filter(key=name).values_list("done", "expiry").first()
                    if found is None:
                        continue  # released in between: try again
                    done, expiry = found
                    if expiry > now:
                        return (Claim.DONE if done else Claim.IN_PROGRESS), None
                    continue  # expired in between: take it over
            self._purge_now_and_then(now)
            return Claim.NEW, token
        return Claim.IN_PROGRESS, None

    def complete(self, key: str, token: str, ttl: float) -> bool:
        """Mark ``key`` done for ``ttl`` seconds; ``False`` if another token held it."""
        from .models import DedupeKey

        name, ttl = _name(key), seconds("ttl", ttl)
        rows = DedupeKey.objects.using(self.using)
        now = self._clock()
        with transaction.atomic(using=self.using):
            found = (
                rows.select_for_update()
                .filter(key=name)
                .values_list("done", "expiry", "owner")
                .first()
            )
            rows.update_or_create(
                key=name, defaults={"done": True, "expiry": now + ttl, "owner": None}
            )
        if found is None:
            return True
        done, expiry, owner = found
        return not (expiry > now and not done and owner != token)

    def release(self, key: str, token: str) -> bool:
        """Forget ``key`` unless it is done or another token's; ``False`` if so."""
        from .models import DedupeKey

        name = _name(key)
        rows = DedupeKey.objects.using(self.using)
        now = self._clock()
        deleted, _ = rows.filter(Q(expiry__lte=now) | Q(done=False, owner=token), key=name).delete()
        if deleted:
            return True
        return not rows.filter(key=name, expiry__gt=now).exists()

    def _purge_now_and_then(self, now: float) -> None:
        from .models import DedupeKey

        with self._lock:
            self._claims += 1
            if self._claims % PURGE_EVERY:
                return
        rows = DedupeKey.objects.using(self.using)
        expired = list(
            rows.filter(expiry__lte=now)
            .order_by("expiry")
            .values_list("key", flat=True)[:PURGE_BATCH]
        )
        rows.filter(key__in=expired, expiry__lte=now).delete()

    def __repr__(self) -> str:
        return f"DjangoDedupeStore(using={self.using!r})"


def _name(key: str) -> str:
    return hashlib.sha256(key_bytes(key)).hexdigest()
