"""``manage.py hookshield_worker``: run the deliveries stored in Django's database.

Theory of operation: the handlers are named by the setting ``HOOKSHIELD_HANDLERS``, a
list of ``"module:name"`` (or dotted ``"module.name"``) paths of
:class:`~hookshield.WebhookHandler`s, the same objects the views use; the inbox is
the one ``HOOKSHIELD_INBOX`` names (as for the middleware), else a
:class:`~hookshield.django.DjangoInbox` on ``--database``.  Then
:func:`~hookshield.run_worker` runs, with the project's settings loaded, until
SIGTERM or SIGINT (or, with ``--burst``, until nothing is due).
"""

from __future__ import annotations

import importlib
import logging
import math
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connections
from django.utils.module_loading import import_string

from ...._durable.inbox import WorkerInbox
from ...._durable.worker import DEFAULT_STOP_TIMEOUT, Retry, handler_map, run_worker
from ...._handling.handler import WebhookHandler
from ..._inbox import DjangoInbox


class Command(BaseCommand):
    help = (
        "Run the webhook deliveries stored in the database: lease each due one, verify "
        "it again and run its routes, with the handlers named in HOOKSHIELD_HANDLERS. "
        "The first SIGTERM or SIGINT stops it once the deliveries in hand are done (up to "
        "--stop-timeout); a second stops it at once."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--burst", action="store_true", help="stop once nothing is due")
        parser.add_argument(
            "--concurrency",
            type=int,
            default=1,
            metavar="N",
            help="deliveries run at once, each in a thread with its own lease (default: 1)",
        )
        parser.add_argument(
            "--database",
            default="default",
            help="the database whose inbox to run, unless HOOKSHIELD_INBOX names one "
            "(default: default)",
        )
        parser.add_argument(
            "--lease",
            type=float,
            default=300.0,
            metavar="SECONDS",
            help="how long a delivery is held before another worker may run it (default: 300)",
        )
        parser.add_argument(
            "--max-attempts",
            type=int,
            default=Retry().max_attempts,
            metavar="N",
            help=f"attempts before dead-letter (default: {Retry().max_attempts})",
        )
        parser.add_argument(
            "--poll",
            type=float,
            default=0.5,
            metavar="SECONDS",
            help="the wait between looks when nothing is due, unless woken (default: 0.5)",
        )
        parser.add_argument(
            "--stop-timeout",
            type=float,
            default=DEFAULT_STOP_TIMEOUT,
            metavar="SECONDS",
            help="how long a stop waits for the deliveries in hand "
            f"(default: {DEFAULT_STOP_TIMEOUT:g})",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        numbers = (options["lease"], options["poll"])
        if options["concurrency"] < 1 or options["max_attempts"] < 1:
            raise CommandError("--concurrency and --max-attempts must be at least 1")
        if not all(0 < value < math.inf for value in numbers) or not (
            0 <= options["stop_timeout"] < math.inf
        ):
            raise CommandError("--lease and --poll must be positive, --stop-timeout finite")
        handlers = _handlers()
        inbox = _inbox(options["database"], options["lease"])
        if not logging.getLogger().handlers and not logging.getLogger("hookshield").handlers:
            logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
        try:
            stats = run_worker(
                inbox,
                *handlers,
                retry=Retry(max_attempts=options["max_attempts"]),
                poll=options["poll"],
                burst=options["burst"],
                concurrency=options["concurrency"],
                stop_timeout=options["stop_timeout"],
            )
        finally:
            connections.close_all()
        self.stdout.write(
            f"hookshield worker: {stats.done} done, {stats.retried} retried, "
            f"{stats.dead} dead-lettered"
        )


def _handlers() -> list[WebhookHandler]:
    """The handlers ``HOOKSHIELD_HANDLERS`` names; a clear ``CommandError`` otherwise."""
    names = getattr(settings, "HOOKSHIELD_HANDLERS", None)
    if not names or isinstance(names, str) or not isinstance(names, (list, tuple)):
        raise CommandError(
            "name the handlers to run in settings.HOOKSHIELD_HANDLERS, a list such as "
            '["myapp.hooks:moco", "myapp.hooks:mindpeeker"]'
        )
    found = [_handler(name) for name in names]
    try:
        handler_map(found)
    except ValueError as exc:  # two handlers for one sender
        raise CommandError(f"HOOKSHIELD_HANDLERS: {exc}") from exc
    return found


def _handler(name: object) -> WebhookHandler:
    if not isinstance(name, str):
        raise CommandError(f"HOOKSHIELD_HANDLERS: {name!r} is not a path such as myapp.hooks:moco")
    try:
        if ":" in name:
            module, _, attribute = name.partition(":")
            found: object = importlib.import_module(module)
            for part in attribute.split("."):
                found = getattr(found, part)
        else:
            found = import_string(name)
    except (ImportError, AttributeError, ValueError) as exc:
        raise CommandError(f"HOOKSHIELD_HANDLERS: {name!r}: {exc}") from exc
    if not isinstance(found, WebhookHandler):
        raise CommandError(
            f"HOOKSHIELD_HANDLERS: {name!r} is {type(found).__name__}, not a WebhookHandler"
        )
    return found


def _inbox(database: str, lease: float) -> WorkerInbox:
    """``HOOKSHIELD_INBOX`` when it names a worker inbox; else ``DjangoInbox(using=database)``."""
    target = getattr(settings, "HOOKSHIELD_INBOX", None)
    if isinstance(target, str):
        try:
            target = import_string(target)
        except ImportError as exc:
            raise CommandError(f"HOOKSHIELD_INBOX: {exc}") from exc
    if target is not None:
        if not isinstance(target, WorkerInbox):
            raise CommandError(
                f"HOOKSHIELD_INBOX is {type(target).__name__}, which a worker cannot lease "
                "from (run its own workers, e.g. Celery's)"
            )
        return target
    if database not in connections:
        raise CommandError(f"--database {database!r} is not in settings.DATABASES")
    try:
        return DjangoInbox(using=database, lease=lease)
    except ValueError as exc:  # no key
        raise CommandError(str(exc)) from exc
