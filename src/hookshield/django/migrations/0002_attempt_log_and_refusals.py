"""Each delivery's latest attempts (``attempt_log``), and refused deliveries kept (``Refusal``).

Made by ``django-admin makemigrations hookshield`` (Django 5.2).
"""

from __future__ import annotations

from typing import Any, ClassVar

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies: ClassVar[list[tuple[str, str]]] = [
        ("hookshield", "0001_initial"),
    ]

    operations: ClassVar[list[Any]] = [
        migrations.AddField(
            model_name="delivery",
            name="attempt_log",
            field=models.TextField(
                blank=True, help_text="its latest attempts, one JSON object a line", null=True
            ),
        ),
        migrations.CreateModel(
            name="Refusal",
            fields=[
                ("id", models.CharField(max_length=64, primary_key=True, serialize=False)),
                ("sender", models.CharField(max_length=64)),
                ("handler", models.CharField(max_length=64)),
                ("status", models.IntegerField(help_text="the answer sent")),
                ("error", models.TextField(help_text="the refusal's type")),
                ("reason", models.TextField()),
                ("peer", models.TextField(blank=True, null=True)),
                ("received", models.FloatField(help_text="seconds since the epoch")),
                (
                    "headers",
                    models.TextField(
                        help_text="JSON: the [name, value] pairs received, credentials hidden"
                    ),
                ),
                (
                    "body",
                    models.BinaryField(
                        help_text="at most the first keep_refused_bytes of the body"
                    ),
                ),
                (
                    "body_size",
                    models.BigIntegerField(
                        help_text="the whole body's size; none when it was not read", null=True
                    ),
                ),
            ],
            options={
                "verbose_name": "refused webhook delivery",
                "verbose_name_plural": "refused webhook deliveries",
                "db_table": "hookshield_refused",
                "ordering": ("-received", "-id"),
                "indexes": [models.Index(fields=["received", "id"], name="hookshield_refused_at")],
            },
        ),
    ]
