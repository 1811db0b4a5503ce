"""Background work for the adapters: the in-memory pool, and the durable inbox.

Theory of operation: with ``background=True`` (or a :class:`BackgroundPool`) a
delivery is verified and claimed in the request, answered, and dispatched afterwards
in a bounded pool of threads of this process: fast, and lost if the process dies.
With ``background=inbox`` it is verified, claimed, stored durably and only then
answered; a worker runs it later (``hookshield.run_worker``, or Celery), and a
process that dies loses nothing.  Either way a delivery that cannot be taken on (a
full pool, an inbox that cannot write) is answered 503 and its claims released, so
that the sender retries.  This module imports no framework.
"""

from __future__ import annotations

import concurrent.futures
import logging
import os
import threading
import time
from collections.abc import Callable
from typing import Final

from .._core.errors import StoreUnavailable, WebhookError
from .._core.headers import HeadersLike
from .._handling import observe
from .._handling.handler import WebhookHandler
from .._handling.outcome import Outcome
from .inbox import Inbox, stored_delivery

__all__ = [
    "BackgroundPool",
    "Inbox",
    "Wrap",
    "accept_in_background",
    "background_pool",
    "inbox_of",
    "store",
    "store_async",
]

logger = logging.getLogger("hookshield")

#: Sets the framework up around a background job (an app context, database connections).
Wrap = Callable[[Callable[[], Outcome]], Callable[[], object]]


class BackgroundPool:
    """A bounded pool of threads that runs handlers after a WSGI response is sent.

    At most ``max_workers`` deliveries are handled at once and ``max_pending`` more
    wait.  When both are taken, a new delivery is answered ``503`` and not accepted,
    so that the sender retries it later rather than it piling up in memory.  The
    threads start on first use, in the process that serves requests (after a
    pre-forking server such as gunicorn has forked).

    The work is in memory only: deliveries acknowledged but not yet handled are lost
    if the process dies (a crash, a kill, a worker timeout).  A graceful shutdown
    waits for them.  If a delivery must never be lost, store it durably in the
    handler and process it from there, or do not use background mode.
    """

    def __init__(self, max_workers: int = 4, max_pending: int = 64) -> None:
        if max_workers < 1:
            raise ValueError("max_workers must be at least 1")
        if max_pending < 0:
            raise ValueError("max_pending cannot be negative")
        self.max_workers = max_workers
        self.max_pending = max_pending
        self._slots = threading.BoundedSemaphore(max_workers + max_pending)
        self._lock = threading.Lock()
        self._executor: concurrent.futures.ThreadPoolExecutor | None = None
        self._pid = 0

    def reserve(self) -> bool:
        """Take a slot for one delivery; ``False`` when the pool is full."""
        return self._slots.acquire(blocking=False)

    def unreserve(self) -> None:
        """Give back a slot taken by :meth:`reserve` that :meth:`start` will not use."""
        self._slots.release()

    def start(self, job: Callable[[], object]) -> bool:
        """Run ``job`` in the pool on a reserved slot; ``False`` if the pool is shut down."""

        def run() -> None:
            try:
                job()
            except Exception:
                logger.exception("hookshield: background work failed")
            finally:
                self._slots.release()

        try:
            self._pool().submit(run)
        except RuntimeError:  # shut down, or the interpreter is exiting
            self._slots.release()
            return False
        return True

    def shutdown(self, *, wait: bool = True) -> None:
        """Stop taking work; with ``wait``, return once the work taken is done."""
        with self._lock:
            executor, self._executor = self._executor, None
            self._pid = -1
        if executor is not None:
            executor.shutdown(wait=wait)

    def _pool(self) -> concurrent.futures.ThreadPoolExecutor:
        with self._lock:
            if self._pid == -1:
                raise RuntimeError("the background pool is shut down")
            pid = os.getpid()
            # Threads do not survive fork(): a pool made in a parent is useless in a child.
            if self._executor is None or self._pid != pid:
                self._executor = concurrent.futures.ThreadPoolExecutor(
                    self.max_workers, thread_name_prefix="hookshield"
                )
                self._pid = pid
            return self._executor

    def __repr__(self) -> str:
        return f"BackgroundPool(max_workers={self.max_workers}, max_pending={self.max_pending})"


def background_pool(background: bool | BackgroundPool | Inbox) -> BackgroundPool | None:
    """The pool an adapter's ``background=`` option asks for, if any (not an inbox)."""
    if isinstance(background, BackgroundPool):
        return background
    return BackgroundPool() if background and not isinstance(background, Inbox) else None


BUSY_REASON: Final = "too many deliveries in progress (background pool full); retry later"


def accept_in_background(
    handler: WebhookHandler,
    pool: BackgroundPool,
    body: bytes,
    headers: HeadersLike,
    wrap: Wrap = lambda job: job,
) -> Outcome:
    """Verify and de-duplicate now; hand the dispatch to ``pool``.

    The slot is taken before the delivery is claimed, so a delivery refused for a
    full pool leaves no claim behind and its retry is processed.  A forged delivery
    still gets its 4xx when the pool is full.  ``wrap`` lets an adapter set up the
    framework around the job (an app context, database connections).
    """
    if not pool.reserve():
        try:
            handler.authenticate(body, headers)
        except WebhookError as exc:
            return Outcome(status=exc.status, reason=str(exc), error=exc)
        logger.warning("hookshield: %s delivery refused: %s", handler.provider, BUSY_REASON)
        return Outcome(status=503, reason=BUSY_REASON)
    try:
        accepted = handler.accept(body, headers)
    except BaseException:
        pool.unreserve()
        raise
    if not accepted.pending:
        pool.unreserve()
        return accepted
    try:
        started = pool.start(wrap(accepted.finish))
    except BaseException:  # the framework's set-up failed: nothing will run the job
        pool.unreserve()
        accepted.release()
        raise
    if not started:
        accepted.release()
        return Outcome(status=503, reason="the background pool is shut down; retry later")
    return accepted


# -- durable background work: an inbox -------------------------------------------------

STORE_FAILED_REASON: Final = "the delivery could not be stored; retry later"
STORED_REASON: Final = "stored in the inbox"


def inbox_of(background: object) -> Inbox | None:
    """The inbox an adapter's ``background=`` names (anything with ``put``), if any."""
    return background if isinstance(background, Inbox) else None


def store(handler: WebhookHandler, inbox: Inbox, body: bytes, headers: HeadersLike) -> Outcome:
    """Verify and claim now, store the new events in ``inbox``, and only then answer.

    Once stored, the delivery's claims are completed: a retry from the sender is a
    duplicate, since the inbox has it.  If ``put`` fails, the claims are released and
    the answer is 503, so that the sender retries and the retry is run.
    """
    accepted = handler.accept(body, headers)
    if not accepted.pending:
        return accepted  # refused, a duplicate, another attempt running, or no events
    try:
        with accepted:  # completed once stored; released on any way out before
            stored = stored_delivery(handler, accepted, now=time.time())
            inbox.put(stored)
    except Exception as exc:
        return _not_stored(handler, inbox, exc)
    observe.stored(handler.provider, inbox, stored)
    return _stored(accepted)


async def store_async(
    handler: WebhookHandler, inbox: Inbox, body: bytes, headers: HeadersLike
) -> Outcome:
    """:func:`store` for ASGI: the blocking ``put`` runs in one of hookshield's threads."""
    from .._handling.asynchronous import run_to_the_end

    accepted = await handler.accept_async(body, headers)
    if not accepted.pending:
        return accepted
    try:
        async with accepted:  # completed once stored; released on any way out before
            stored = stored_delivery(handler, accepted, now=time.time())
            # Waited for even if the request is cancelled: once the put has succeeded
            # the delivery is the inbox's, and releasing its claim would store it twice.
            _, cancelled = await run_to_the_end(inbox.put, stored)
    except Exception as exc:
        return _not_stored(handler, inbox, exc)
    observe.stored(handler.provider, inbox, stored)
    if cancelled is not None:
        raise cancelled
    return _stored(accepted)


def _stored(accepted: Outcome) -> Outcome:
    # ``pending`` stays: the events stored, which a ``verified`` view is handed.
    return Outcome(200, STORED_REASON, accepted.delivery, pending=accepted.pending)


def _not_stored(handler: WebhookHandler, inbox: Inbox, exc: Exception) -> Outcome:
    logger.error(
        "hookshield: could not store a %s delivery in %r (%s); answering 503 so the sender retries",
        handler.provider,
        inbox,
        type(exc).__name__,
        exc_info=exc,
    )
    error = StoreUnavailable(STORE_FAILED_REASON)
    return Outcome(status=503, reason=STORE_FAILED_REASON, error=error)
