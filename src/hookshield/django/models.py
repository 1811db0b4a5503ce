"""hookshield's tables in Django's own database (``"hookshield.django"`` in ``INSTALLED_APPS``).

Theory of operation: a :class:`Delivery` is one row of the inbox, as ``SQLiteInbox``
and ``PostgresInbox`` keep it: its exact bytes (``body``), the headers verifying
them again needs (JSON text: a header's odd characters survive every backend), the
schedule, the lease that fences a worker's settle, the seal, and its latest attempts
(``attempt_log``, not sealed: it records what happened, it is never run).  Times are
seconds since the epoch (floats): the seal covers ``received`` exactly as it was
stored.  :class:`PausedSender` holds the senders that no worker leases;
:class:`InboxMeta` the public id of the key that seals the rows; :class:`Refusal` a
refused delivery kept for diagnosis (``DjangoInbox(keep_refused=N)``);
:class:`DedupeKey` a de-duplication claim.

Changed only through ``DjangoInbox``, ``DjangoDedupeStore``, the admin's actions and
``manage.py hookshield_worker``: a row edited by hand no longer matches its seal, and
is refused.  Nothing here runs a route.
"""

from __future__ import annotations

import datetime
import json

from django.db import models

from .._durable.inbox import STATES

__all__ = ["DedupeKey", "Delivery", "InboxMeta", "PausedSender", "Refusal"]


class Delivery(models.Model):
    """A delivery stored by ``DjangoInbox``, waiting for ``manage.py hookshield_worker``."""

    id: models.CharField[str, str] = models.CharField(primary_key=True, max_length=64)
    sender: models.CharField[str, str] = models.CharField(max_length=64, db_index=True)
    handler: models.CharField[str, str] = models.CharField(max_length=64)
    body: models.BinaryField[bytes | memoryview, bytes | memoryview] = models.BinaryField()
    headers: models.TextField[str, str] = models.TextField(
        help_text="JSON: the [name, value] pairs verifying it reads"
    )
    received: models.FloatField[float, float] = models.FloatField(
        help_text="seconds since the epoch"
    )
    event_types: models.TextField[str, str] = models.TextField(
        help_text="JSON: the event types it carries"
    )
    events: models.TextField[str | None, str | None] = models.TextField(
        null=True, help_text="JSON: a batch's events still to run"
    )
    attempts: models.IntegerField[int, int] = models.IntegerField(default=0)
    state: models.CharField[str, str] = models.CharField(
        max_length=16, choices=[(s, s) for s in STATES], default="pending"
    )
    next_attempt: models.FloatField[float, float] = models.FloatField(
        help_text="when it is due, or its lease ends"
    )
    last_error: models.TextField[str | None, str | None] = models.TextField(null=True, blank=True)
    lease_id: models.CharField[str | None, str | None] = models.CharField(max_length=64, null=True)
    seal: models.CharField[str | None, str | None] = models.CharField(max_length=128, null=True)
    traceparent: models.CharField[str | None, str | None] = models.CharField(
        max_length=256, null=True, blank=True
    )
    attempt_log: models.TextField[str | None, str | None] = models.TextField(
        null=True, blank=True, help_text="its latest attempts, one JSON object a line"
    )

    class Meta:
        db_table = "hookshield_delivery"
        verbose_name = "webhook delivery"
        verbose_name_plural = "webhook deliveries"
        ordering = ("-received", "-id")
        indexes = (
            models.Index(fields=("state", "next_attempt", "id"), name="hookshield_due"),
            models.Index(fields=("state", "received"), name="hookshield_state"),
            # Newest first over every row: the admin's list and the dashboard's first page.
            models.Index(fields=("received", "id"), name="hookshield_received"),
        )

    def __str__(self) -> str:
        return f"{self.sender} delivery {self.id}"

    @property
    def received_at(self) -> datetime.datetime:
        """When it arrived, as an aware datetime."""
        return datetime.datetime.fromtimestamp(self.received, datetime.timezone.utc)

    @property
    def types(self) -> list[str]:
        """Its event types."""
        return [str(kind) for kind in json.loads(self.event_types)]


class PausedSender(models.Model):
    """A sender whose deliveries no worker leases until it is resumed."""

    sender: models.CharField[str, str] = models.CharField(primary_key=True, max_length=64)
    since: models.FloatField[float, float] = models.FloatField()

    class Meta:
        db_table = "hookshield_paused"

    def __str__(self) -> str:
        return f"{self.sender} (paused)"


class InboxMeta(models.Model):
    """Facts about the inbox itself: ``key_id``, the public id of the key that seals it."""

    name: models.CharField[str, str] = models.CharField(primary_key=True, max_length=64)
    value: models.TextField[str, str] = models.TextField()

    class Meta:
        db_table = "hookshield_meta"

    def __str__(self) -> str:
        return str(self.name)


class Refusal(models.Model):
    """A delivery refused with a 4xx, kept for diagnosis: credentials hidden, its body cut."""

    id: models.CharField[str, str] = models.CharField(primary_key=True, max_length=64)
    sender: models.CharField[str, str] = models.CharField(max_length=64)
    handler: models.CharField[str, str] = models.CharField(max_length=64)
    status: models.IntegerField[int, int] = models.IntegerField(help_text="the answer sent")
    error: models.TextField[str, str] = models.TextField(help_text="the refusal's type")
    reason: models.TextField[str, str] = models.TextField()
    peer: models.TextField[str | None, str | None] = models.TextField(null=True, blank=True)
    received: models.FloatField[float, float] = models.FloatField(
        help_text="seconds since the epoch"
    )
    headers: models.TextField[str, str] = models.TextField(
        help_text="JSON: the [name, value] pairs received, credentials hidden"
    )
    body: models.BinaryField[bytes | memoryview, bytes | memoryview] = models.BinaryField(
        help_text="at most the first keep_refused_bytes of the body"
    )
    body_size: models.BigIntegerField[int | None, int | None] = models.BigIntegerField(
        null=True, help_text="the whole body's size; none when it was not read"
    )

    class Meta:
        db_table = "hookshield_refused"
        verbose_name = "refused webhook delivery"
        verbose_name_plural = "refused webhook deliveries"
        ordering = ("-received", "-id")
        indexes = (models.Index(fields=("received", "id"), name="hookshield_refused_at"),)

    def __str__(self) -> str:
        return f"{self.sender} refusal {self.id}"


class DedupeKey(models.Model):
    """A de-duplication key of ``DjangoDedupeStore``: in progress (``owner``) or done."""

    #: The SHA-256 of the key, in hex: any sender's id, at a length every backend indexes.
    key: models.CharField[str, str] = models.CharField(primary_key=True, max_length=64)
    done: models.BooleanField[bool, bool] = models.BooleanField(default=False)
    expiry: models.FloatField[float, float] = models.FloatField(db_index=True)
    owner: models.CharField[str | None, str | None] = models.CharField(max_length=64, null=True)

    class Meta:
        db_table = "hookshield_dedupe_key"

    def __str__(self) -> str:
        return str(self.key)
