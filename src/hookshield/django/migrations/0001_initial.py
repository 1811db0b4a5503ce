"""hookshield's tables: deliveries, paused senders, the inbox's facts, de-duplication keys."""

from __future__ import annotations

from typing import Any, ClassVar

from django.db import migrations, models


class Migration(migrations.Migration):
    initial = True

    dependencies: ClassVar[list[tuple[str, str]]] = []

    operations: ClassVar[list[Any]] = [
        migrations.CreateModel(
            name="DedupeKey",
            fields=[
                ("key", models.CharField(max_length=64, primary_key=True, serialize=False)),
                ("done", models.BooleanField(default=False)),
                ("expiry", models.FloatField(db_index=True)),
                ("owner", models.CharField(max_length=64, null=True)),
            ],
            options={
                "db_table": "hookshield_dedupe_key",
            },
        ),
        migrations.CreateModel(
            name="InboxMeta",
            fields=[
                ("name", models.CharField(max_length=64, primary_key=True, serialize=False)),
                ("value", models.TextField()),
            ],
            options={
                "db_table": "hookshield_meta",
            },
        ),
        migrations.CreateModel(
            name="PausedSender",
            fields=[
                ("sender", models.CharField(max_length=64, primary_key=True, serialize=False)),
                ("since", models.FloatField()),
            ],
            options={
                "db_table": "hookshield_paused",
            },
        ),
        migrations.CreateModel(
            name="Delivery",
            fields=[
                ("id", models.CharField(max_length=64, primary_key=True, serialize=False)),
                ("sender", models.CharField(db_index=True, max_length=64)),
                ("handler", models.CharField(max_length=64)),
                ("body", models.BinaryField()),
                (
                    "headers",
                    models.TextField(help_text="JSON: the [name, value] pairs verifying it reads"),
                ),
                ("received", models.FloatField(help_text="seconds since the epoch")),
                ("event_types", models.TextField(help_text="JSON: the event types it carries")),
                (
                    "events",
                    models.TextField(help_text="JSON: a batch's events still to run", null=True),
                ),
                ("attempts", models.IntegerField(default=0)),
                (
                    "state",
                    models.CharField(
                        choices=[
                            ("pending", "pending"),
                            ("leased", "leased"),
                            ("done", "done"),
                            ("dead", "dead"),
                        ],
                        default="pending",
                        max_length=16,
                    ),
                ),
                ("next_attempt", models.FloatField(help_text="when it is due, or its lease ends")),
                ("last_error", models.TextField(blank=True, null=True)),
                ("lease_id", models.CharField(max_length=64, null=True)),
                ("seal", models.CharField(max_length=128, null=True)),
                ("traceparent", models.CharField(blank=True, max_length=256, null=True)),
            ],
            options={
                "verbose_name": "webhook delivery",
                "verbose_name_plural": "webhook deliveries",
                "db_table": "hookshield_delivery",
                "ordering": ("-received", "-id"),
                "indexes": [
                    models.Index(fields=["state", "next_attempt", "id"], name="hookshield_due"),
                    models.Index(fields=["state", "received"], name="hookshield_state"),
                ],
            },
        ),
    ]
