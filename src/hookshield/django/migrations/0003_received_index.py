"""An index on (``received``, ``id``): the newest deliveries first without sorting the table.

Made by ``django-admin makemigrations hookshield`` (Django 5.2).  On PostgreSQL a large
table is locked against writes while it is indexed; there, run this migration with
``--fake`` after making the index with ``CREATE INDEX CONCURRENTLY hookshield_received ON
hookshield_delivery (received, id)``.
"""

from __future__ import annotations

from typing import Any, ClassVar

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies: ClassVar[list[tuple[str, str]]] = [
        ("hookshield", "0002_attempt_log_and_refusals"),
    ]

    operations: ClassVar[list[Any]] = [
        migrations.AddIndex(
            model_name="delivery",
            index=models.Index(fields=["received", "id"], name="hookshield_received"),
        ),
    ]
