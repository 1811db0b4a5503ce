"""Hand acknowledged deliveries to Celery: ``background=CeleryInbox(app, handler, ...)``.

    from hookshield.celery import CeleryInbox

    inbox = CeleryInbox(celery_app, mindpeeker, moco)
    app.add_url_rule("/hooks/moco", view_func=webhook_view(moco, background=inbox))

Theory of operation: :class:`CeleryInbox` registers one task on the Celery app.
``put`` seals the stored delivery with the inbox's key and sends it as JSON-safe
data (the body in base64, the headers as name/value pairs, the seal; never a pickled
object) and returns once the broker has taken the message; the adapter answers 2xx
only then.  The task, in a Celery worker, checks the seal (a message changed in the
broker, or sent without one, is refused), verifies the bytes again with the same
handler and runs its routes.  A route that raises is retried by Celery with
exponential backoff and jitter; a refusal is not retried.  The task acknowledges its message only once it has
finished (``acks_late``), and a worker process killed mid-task gives its message
back (``reject_on_worker_lost``): at-least-once, as with
:class:`~hookshield.SQLiteInbox`.

Durability of ``put`` depends on the broker.  With RabbitMQ, set
``broker_transport_options = {"confirm_publish": True}``: the publish then waits for
the broker's confirmation.  Redis answers a push once it is in memory; it is on disk
after the next fsync of its append-only file (``appendonly yes``, ``appendfsync
always`` for every write, ``everysec`` to lose at most a second).  On Redis, set
``broker_transport_options = {"visibility_timeout": ...}`` longer than the slowest
task: a message not acknowledged by then is delivered again.

Install with ``python -m pip install -e '.[celery]'`` from a checkout.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, Final

from ._core.errors import TamperedDelivery, WebhookError
from ._core.options import integer, text, type_name
from ._core.text import printable
from ._durable.inbox import StoredDelivery
from ._durable.seal import ENV_KEY, InboxKey, inbox_key
from ._durable.worker import (
    DEFAULT_MAX_ATTEMPTS,
    NotVerified,
    dispatch_stored,
    handler_map,
    open_stored,
)
from ._handling import observe
from ._handling.handler import WebhookHandler
from ._handling.observe import WorkerResult
from ._web.adapt import missing

try:
    import celery
except ImportError as exc:
    raise missing("Celery", extra="celery", adapter="hookshield.celery") from exc

__all__ = ["CeleryInbox", "payload", "stored_from"]

logger = logging.getLogger("hookshield")

#: The task's name on the Celery app.
TASK_NAME: Final = "hookshield.deliver"


class CeleryInbox:
    """An inbox whose deliveries Celery runs: one task, registered on ``app``.

    ``handlers`` are the handlers the task runs deliveries with (one per sender, as
    with ``hookshield worker``); create the ``CeleryInbox`` in a module that both the
    web app and the Celery worker import.  ``key`` seals each message, so that the
    task runs only messages as the web app sent them (:class:`~hookshield.InboxKey`,
    or its text or bytes); without it the ``HOOKSHIELD_INBOX_KEY`` environment
    variable is used, and without either the inbox is refused (``ValueError``): the
    web app and the workers need the same key.  ``max_retries`` is how often a
    failing delivery is retried, ``retry_backoff_max`` the longest wait in seconds;
    options for the task's messages (``queue``, ``priority``) go in ``send_options``.
    """

    def __init__(
        self,
        app: celery.Celery,
        *handlers: WebhookHandler,
        key: InboxKey | str | bytes | None = None,
        name: str = TASK_NAME,
        max_retries: int = DEFAULT_MAX_ATTEMPTS - 1,
        retry_backoff_max: int = 6 * 3600,
        send_options: Mapping[str, Any] | None = None,
    ) -> None:
        if not isinstance(app, celery.Celery):
            raise TypeError(f"app must be a celery.Celery app, not {type_name(app)}")
        text("name", name, "a task name (str)")
        if integer("max_retries", max_retries, "a count of retries") < 0:
            raise ValueError("max_retries must be 0 or more")
        if integer("retry_backoff_max", retry_backoff_max, "seconds") < 1:
            raise ValueError("retry_backoff_max must be at least 1 second")
        if send_options is not None and not isinstance(send_options, Mapping):
            raise TypeError(
                f"send_options must be a mapping of apply_async options, not {type_name(send_options)}"
            )
        self.handlers = handler_map(handlers)
        found = inbox_key(key)
        if found is None:
            raise ValueError(
                f"CeleryInbox needs the key that seals its messages: pass key= or set {ENV_KEY}, "
                "the same in the web app and in every Celery worker (at least 16 bytes; make "
                'one with python -c "import secrets; print(secrets.token_hex(32))")'
            )
        self.app = app
        self.key = found
        self.send_options = dict(send_options or {})

        def deliver(data: dict[str, Any]) -> int:
            # A plain function: Celery reads the task's signature from it.
            return self.run(data)

        self.task = app.task(
            name=name,
            serializer="json",
            # Acknowledged after it ran, and given back if its worker dies: a delivery
            # runs again rather than being lost.
            acks_late=True,
            reject_on_worker_lost=True,
            autoretry_for=(Exception,),
            dont_autoretry_for=(WebhookError,),
            retry_backoff=True,
            retry_backoff_max=retry_backoff_max,
            retry_jitter=True,
            max_retries=max_retries,
        )(deliver)

    def put(self, delivery: StoredDelivery) -> None:
        """Send ``delivery`` to the broker; return once the broker has taken it."""
        if delivery.handler not in self.handlers:
            raise ValueError(
                f"no handler for {delivery.handler!r} in this CeleryInbox: pass it to "
                "CeleryInbox(app, *handlers) so that the task can run the delivery"
            )
        message = payload(self.key.seal(delivery))
        self.task.apply_async(args=(message,), serializer="json", **self.send_options)

    def run(self, data: dict[str, Any]) -> int:
        """The task's body: check the seal, verify the delivery again and run its routes."""
        stored = stored_from(data)
        handler = self.handlers.get(stored.handler)
        if handler is None:
            raise ValueError(f"this worker has no handler for {stored.handler!r}")
        observe.leased(self, stored)
        try:
            self.key.check(stored)
            delivery, events = open_stored(handler, stored)
            calls = dispatch_stored(handler, delivery, events)
        except (TamperedDelivery, NotVerified) as exc:
            error = exc.error if isinstance(exc, NotVerified) else exc
            logger.error(
                "hookshield: %s delivery %s does not verify; it is not run: %s",
                stored.sender,
                printable(stored.id),
                printable(str(error)),
            )
            observe.finished(self, stored, "dead", error)
            raise error from None  # a WebhookError: not retried
        except Exception as exc:
            observe.finished(self, stored, self._after_failure(exc), exc)
            raise
        observe.finished(self, stored, "done")
        return calls

    def _after_failure(self, exc: Exception) -> WorkerResult:
        """What Celery does with a task that raised ``exc``: retry it, or give up."""
        if isinstance(exc, WebhookError):  # dont_autoretry_for
            return "dead"
        request = self.task.request
        retries = getattr(request, "retries", 0) or 0
        return "retried" if retries < self.task.max_retries else "dead"

    def __repr__(self) -> str:
        return f"CeleryInbox({self.app.main!r}, task={self.task.name!r})"


def payload(delivery: StoredDelivery) -> dict[str, Any]:
    """The JSON-safe message for ``delivery``: the body in base64, the seal as it has it."""
    return delivery.to_message()


def stored_from(data: Mapping[str, Any]) -> StoredDelivery:
    """The delivery a message made by :func:`payload` carries."""
    return StoredDelivery.from_message(data)
