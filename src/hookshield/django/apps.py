"""The Django app ``hookshield.django``: its models, migrations, admin and worker command.

Add ``"hookshield.django"`` to ``INSTALLED_APPS`` for the inbox and the de-duplication
store in Django's own database (``DjangoInbox``, ``DjangoDedupeStore``); the views and
the middleware work without it.
"""

from __future__ import annotations

from django.apps import AppConfig


class HookshieldConfig(AppConfig):
    """hookshield's tables in the project's database: deliveries, paused senders, claims."""

    name = "hookshield.django"
    label = "hookshield"
    verbose_name = "Webhooks (hookshield)"
    default_auto_field = "django.db.models.BigAutoField"
