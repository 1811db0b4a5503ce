"""What every framework adapter shares: bounded body reads, replies and background work.

Theory of operation: an adapter takes the exact raw body and the headers out of the
framework's request, asks the core for an :class:`~hookshield.Outcome`, and turns it
into a :class:`Reply` (status, small JSON body, headers) that the framework sends.
The body is read with ``max_body_size`` enforced while reading: a ``Content-Length``
over the limit is refused before a byte is read, and a body without one (chunked) is
read no further than one byte (WSGI) or one received piece (ASGI) past the limit.
This module imports no framework.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import logging
import os
import threading
import weakref
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final, TypeVar

from ._dedupe import MemoryDedupeStore
from ._errors import BodyTooLarge, MalformedPayload, WebhookError
from ._events import Delivery
from ._handler import WebhookHandler
from ._headers import Headers, HeadersLike, lowercase_headers
from ._outcome import Outcome

__all__ = ["BackgroundPool"]

logger = logging.getLogger("hookshield")

T = TypeVar("T")
R = TypeVar("R")

#: How much of a body is read at a time.
CHUNK_SIZE: Final = 64 * 1024

JSON: Final = "application/json"

#: What a WSGI adapter read from a request: its body and headers, or the refusal.
Received = tuple[bytes, Headers] | Outcome
#: Sets the framework up around a background job (an app context, database connections).
Wrap = Callable[[Callable[[], Outcome]], Callable[[], object]]


def missing(package: str, *, extra: str, adapter: str) -> ImportError:
    """The error an adapter raises when its framework is not installed."""
    return ImportError(
        f"{adapter} needs {package}, which is not installed: "
        f"python -m pip install -e '.[{extra}]' (from a hookshield checkout)"
    )


@dataclass(frozen=True, slots=True)
class Reply:
    """An HTTP answer: ``status``, a small JSON ``body`` and extra ``headers``."""

    status: int
    body: bytes
    headers: tuple[tuple[str, str], ...] = ()


def reply(outcome: Outcome) -> Reply:
    """The answer to send for ``outcome``; its body never holds a secret or traceback."""
    return Reply(outcome.status, outcome.response_body(), outcome.response_headers())


def method_not_allowed(method: str) -> Outcome:
    """The outcome of a request with another method than POST."""
    return Outcome(status=405, reason=f"webhooks are delivered with POST, not {method[:16]}")


def too_large(handler: WebhookHandler, limit: int | None = None, setting: str = "") -> Outcome:
    """The outcome of a body over the handler's ``max_body_size`` (or another ``setting``)."""
    if limit is None:
        limit, setting = handler.max_body_size, "max_body_size"
    error = BodyTooLarge(
        f"the body is larger than this endpoint accepts ({limit} bytes, {setting})"
    )
    return Outcome(status=error.status, reason=str(error), error=error)


def bad_request(message: str) -> Outcome:
    """The outcome of a request whose body could not be read as sent."""
    error = MalformedPayload(message)
    return Outcome(status=error.status, reason=str(error), error=error)


def route_key(path: str) -> str:
    """A path as endpoints are looked up: the trailing slash is optional."""
    return path.rstrip("/") or "/"


def declared_length(value: str | None) -> int | None:
    """The ``Content-Length`` as an int; ``None`` when absent; ``-1`` when malformed."""
    if value is None or value == "":
        return None
    value = value.strip()
    # RFC 9110 section 8.6: 1*DIGIT.  int() alone would accept "+5", "1_0" or " 5 ".
    if not value.isascii() or not value.isdigit():
        return -1
    return int(value)


def check_source(handler: WebhookHandler, peer: str | None, headers: HeadersLike) -> Outcome | None:
    """Refuse, before reading, a delivery from outside the handler's ``allowed_ips``."""
    if handler.peers is None:
        return None
    try:
        handler.check_peer(peer, headers)
    except WebhookError as error:
        return Outcome(status=error.status, reason=str(error), error=error)
    return None


def check_length(handler: WebhookHandler, value: str | None) -> Outcome | None:
    """Refuse, before reading, a declared body over the limit or a malformed length."""
    length = declared_length(value)
    if length is None:
        return None
    if length < 0:
        return bad_request("the Content-Length header is not a number")
    if length > handler.max_body_size:
        return too_large(handler)
    return None


# The handlers already warned about, so that each warns once per process.
_WARNED: weakref.WeakSet[WebhookHandler] = weakref.WeakSet()


def warn_if_per_process(handler: WebhookHandler, environ: Mapping[str, Any]) -> None:
    """Warn once when a WSGI server runs several processes and the store is per-process.

    gunicorn (``-w 4``) and uWSGI set ``wsgi.multiprocess``; each worker then has its
    own memory store, and a retry that reaches another worker is dispatched again.
    """
    if (
        environ.get("wsgi.multiprocess")
        and isinstance(handler.dedupe, MemoryDedupeStore)
        and handler not in _WARNED
    ):
        _WARNED.add(handler)
        logger.warning(
            "hookshield: the %s handler de-duplicates in this process's memory, but the "
            "server runs several processes, so a retry that reaches another one is "
            "dispatched again; pass dedupe=SQLiteDedupeStore(path) (one machine) or "
            "RedisDedupeStore(client) (several)",
            handler.provider,
        )


def wsgi_headers(environ: Mapping[str, Any]) -> Headers:
    """The request headers of a WSGI environ (or of Django's ``request.META``).

    Read straight from the environ, as the frameworks' own header views do, without
    going through them: ``HTTP_X_MOCO_SIGNATURE`` is ``x-moco-signature``, and
    ``CONTENT_TYPE`` and ``CONTENT_LENGTH`` count when they are not empty.  A WSGI
    server has already joined a repeated header into one value.
    """
    names = _WSGI_NAMES
    items: dict[str, str] = {}
    for key, value in environ.items():
        name = names.get(key)
        if name is None:
            name = _wsgi_name(key)
        # An empty HTTP_* header was sent empty; an empty CONTENT_* is the server's
        # placeholder for none.
        if name and (value or key[0] == "H"):
            items[name] = value
    return lowercase_headers(items)


_UNPREFIXED: Final = {"CONTENT_TYPE": "content-type", "CONTENT_LENGTH": "content-length"}
# Environ key -> header name ("" for keys that are not headers).  Every request
# carries the same few dozen keys, so their names are worked out once; the keys are
# partly the sender's choice, so the cache is bounded in entries and in key length.
_WSGI_NAMES: dict[str, str] = {}


def _wsgi_name(key: str) -> str:
    if key.startswith("HTTP_"):
        name = key[5:].replace("_", "-").lower()
    else:
        name = _UNPREFIXED.get(key, "")
    if len(_WSGI_NAMES) < 1024 and len(key) <= 64:
        _WSGI_NAMES[key] = name
    return name


def read_limited(
    read: Callable[[int], bytes], limit: int, length: int | None = None
) -> bytes | None:
    """Read a stream to its end, or ``None`` as soon as it runs past ``limit`` bytes.

    At most ``limit + 1`` bytes are ever read, so a body that never ends costs no more
    memory than the limit allows.  With the declared ``length`` (the stream then ends
    there, and it was checked against the limit), reads ask for no more than is left
    of it, and stop once it is reached, without a last read to find the end: the
    frameworks' streams allocate what a read asks for, and a 1 KB body read in 64 KiB
    asks cost measurably more per request.
    """
    parts: list[bytes] = []
    size = 0
    end = limit + 1 if length is None else min(length, limit + 1)
    while True:
        chunk = read(min(CHUNK_SIZE, end - size))
        if not chunk:
            return b"".join(parts)
        size += len(chunk)
        if size > limit:
            return None
        parts.append(chunk)
        if size == length:
            return chunk if len(parts) == 1 else b"".join(parts)


# -- verified views ------------------------------------------------------------------


def for_view(outcome: Outcome) -> Delivery | None:
    """The Delivery a ``@verified`` view gets, or ``None`` when it must not run.

    Only new events are handed over: in a batch that repeats events already seen
    (Momentum), the view gets the delivery with the repeated ones left out.
    """
    if not outcome.ok or outcome.duplicate or outcome.delivery is None:
        return None
    delivery = outcome.delivery
    if outcome.pending != delivery.events:
        delivery = dataclasses.replace(delivery, events=outcome.pending)
    return delivery


def serve_view(
    handler: WebhookHandler,
    received: Received,
    view: Callable[[Delivery], T],
    respond: Callable[[Reply], R],
) -> T | R:
    """A ``@verified`` view's result for a new delivery, else ``respond``'s response.

    A view that returns has handled the delivery: its claims are completed, and a
    retry is a duplicate.  One that raises (anything, ``SystemExit`` from a worker
    timeout included) has not: its claims are released, so the retry runs it again.
    """
    if isinstance(received, Outcome):
        return respond(reply(received))
    outcome = handler.accept(*received)
    delivery = for_view(outcome)
    if delivery is None:
        return respond(reply(outcome))
    try:
        result = view(delivery)
    except BaseException:
        handler.release(outcome)
        raise
    handler.complete(outcome)
    return result


# -- background work on WSGI ------------------------------------------------------------


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


def background_pool(background: bool | BackgroundPool) -> BackgroundPool | None:
    """The pool an adapter's ``background=`` option asks for, if any."""
    if isinstance(background, BackgroundPool):
        return background
    return BackgroundPool() if background else None


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
        outcome = handler.accept(body, headers)
    except BaseException:
        pool.unreserve()
        raise
    if not outcome.pending:
        pool.unreserve()
        return outcome
    if not pool.start(wrap(lambda: handler.finish(outcome))):
        handler.release(outcome)
        return Outcome(status=503, reason="the background pool is shut down; retry later")
    return outcome


def serve(
    handler: WebhookHandler, received: Received, pool: BackgroundPool | None, wrap: Wrap
) -> Reply:
    """The reply of a ``webhook_view``: the routes run now, or in ``pool`` after it."""
    if isinstance(received, Outcome):
        return reply(received)
    body, headers = received
    if pool is None:
        return reply(handler.handle(body, headers))
    return reply(accept_in_background(handler, pool, body, headers, wrap))
