"""What every framework adapter shares: bounded body reads, refusals, verified views.

Theory of operation: an adapter takes the exact raw body and the headers out of the
framework's request, asks the core for an :class:`~hookshield.Outcome`, and answers
with its ``status``, ``response_body()`` and ``response_headers()``.
Before a byte of the body is read, :func:`refuse_before_body` refuses what the peer
and the headers settle (an address outside ``allowed_ips``, a missing signature, a
wrong token, a ``Content-Length`` over ``max_body_size``): every adapter calls it, and
nothing else, so that a stranger costs no buffer.  The body is then read with
``max_body_size`` enforced while reading: a body without a length (chunked) is read no
further than one byte (WSGI) or one received piece (ASGI) past the limit.
Background work (a pool, an inbox) lives in ``_durable/background.py``.  This module imports
no framework.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import time
import weakref
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Final, TypeVar

from .._core.errors import BodyAlreadyRead, BodyTooLarge, MalformedPayload, WebhookError
from .._core.events import Delivery
from .._core.headers import Headers, HeadersLike, lowercase_headers
from .._core.verify import declared_length
from .._durable.background import BackgroundPool, Inbox, Wrap, accept_in_background, store
from .._durable.refused import keep_refusal
from .._handling import observe
from .._handling.dedupe import MemoryDedupeStore
from .._handling.handler import WebhookHandler, dispatcher_of
from .._handling.outcome import Outcome
from .asgi_types import Receive, Send

__all__ = [
    "Received",
    "asgi_headers",
    "lifespan",
    "refuse_before_body",
    "serve",
    "serve_view",
    "wsgi_headers",
]

logger = logging.getLogger("hookshield")

T = TypeVar("T")
R = TypeVar("R")

#: How much of a body is read at a time.
CHUNK_SIZE: Final = 64 * 1024

JSON: Final = "application/json"

#: What a WSGI adapter read from a request: its body and headers, or the refusal.
Received = tuple[bytes, Headers] | Outcome


def missing(package: str, *, extra: str, adapter: str) -> ImportError:
    """The error an adapter raises when its framework is not installed."""
    return ImportError(
        f"{adapter} needs {package}, which is not installed: "
        f"python -m pip install -e '.[{extra}]' (from a hookshield checkout)"
    )


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


def already_read(handler: WebhookHandler, advice: str) -> Outcome:
    """The outcome of a body that code of the app read before hookshield, and did not keep.

    Logged at ERROR: it is a mistake in the app that fails every delivery until it is
    fixed.  ``advice`` says, in the framework's words, how to avoid it.
    """
    error = BodyAlreadyRead(
        "the request body was read before hookshield and not kept, so the bytes the "
        f"signature covers are gone; {advice}"
    )
    logger.error("hookshield: %s delivery refused (%d): %s", handler.provider, error.status, error)
    return Outcome(status=error.status, reason=str(error), error=error)


def kept_body(
    handler: WebhookHandler,
    body: bytes,
    length: int | None,
    kept: Callable[[], bytes | None],
    advice: str,
) -> bytes | Outcome:
    """The body to verify: the one read from the stream, or the framework's kept copy.

    A body shorter than its ``Content-Length`` (or an empty one without a length)
    means code of the app read the stream first.  The frameworks keep what some
    reads took (Werkzeug's ``get_data()``, Django's ``request.body``): ``kept()``
    returns that copy, or ``None``; the exact bytes are verified then, and anything
    else is refused with :class:`~hookshield.BodyAlreadyRead`.
    """
    if (len(body) >= length) if length is not None else bool(body):
        return body
    copy = kept()
    if length is None:
        if not copy:  # an empty body; or one read and not kept, which looks the same
            return body
        return too_large(handler) if len(copy) > handler.max_body_size else copy
    if copy is None or len(copy) != length:
        return already_read(handler, advice)
    return copy


def unread_body(
    handler: WebhookHandler, body: bytes, headers: Headers, advice: str
) -> Outcome | None:
    """The refusal of an ASGI body shorter than its ``Content-Length``, or ``None``.

    An ASGI server ends a body only where its ``Content-Length`` says, so a shorter
    one means code in front of hookshield (a middleware) read it and passed on a
    ``receive`` that does not deliver it again.  No ASGI framework keeps those bytes,
    so the delivery is refused with :class:`~hookshield.BodyAlreadyRead` (500, logged
    at ERROR), not taken for a forgery: the sender retries once the app is fixed.
    """
    length = declared_length(headers.get("content-length"))
    if length is not None and len(body) < length:
        return already_read(handler, advice)
    return None


#: What an ASGI app that read the body before hookshield can do instead.
ASGI_ADVICE: Final = (
    "an ASGI middleware in front of this endpoint read the request body and passed on a "
    "receive() that does not deliver it again; have it replay the messages it read (as "
    "Starlette's BaseHTTPMiddleware does), or let the webhook's path through untouched"
)


def bad_request(message: str) -> Outcome:
    """The outcome of a request whose body could not be read as sent."""
    error = MalformedPayload(message)
    return Outcome(status=error.status, reason=str(error), error=error)


def route_key(path: str) -> str:
    """A path as endpoints are looked up: the trailing slash is optional."""
    return path.rstrip("/") or "/"


def refuse_before_body(
    handler: WebhookHandler, peer: str | None, headers: HeadersLike
) -> Outcome | None:
    """The refusal of a request that the peer and headers condemn, or ``None``.

    Every adapter calls this before it reads a byte of the body: the peer against
    ``allowed_ips`` (403), then :meth:`WebhookHandler.check_headers` (401 without the
    sender's credential or with a wrong header credential, 413 for a ``Content-Length``
    over ``max_body_size``).  The refusal is logged as any other.
    """
    try:
        handler.check_peer(peer, headers)
        handler.check_headers(headers)
    except WebhookError as error:
        return dispatcher_of(handler).rejected(error)
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
    items: dict[str, str] = {}
    for key, value in environ.items():
        first = key[:1]  # one character is cheaper to compare than a prefix, per key
        if first == "H" and key.startswith("HTTP_"):  # an empty one was sent empty
            items[_header_name(key) if len(key) <= 64 else _name_of(key)] = value
        elif first == "C" and value and key in _UNPREFIXED:  # empty: the server's "none"
            items[_UNPREFIXED[key]] = value
    return lowercase_headers(items)


_UNPREFIXED: Final = {"CONTENT_TYPE": "content-type", "CONTENT_LENGTH": "content-length"}


def _name_of(key: str) -> str:
    """The header name of an ``HTTP_*`` environ key: ``HTTP_X_MOCO_SIGNATURE`` is ``x-moco-signature``."""
    return key[5:].replace("_", "-").lower()


# Every request carries the same few keys; they are partly the sender's choice, so
# only short ones are remembered, and at most this many.
_header_name = functools.lru_cache(maxsize=1024)(_name_of)


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


def asgi_headers(raw: Iterable[tuple[bytes, bytes]]) -> Headers:
    """The headers of an ASGI request (``scope["headers"]``, or Starlette's ``headers.raw``).

    ASGI header bytes are latin-1 (RFC 9110 section 5.5).
    """
    # One dict in one pass for the usual request, where no name repeats.  A repeated
    # name must reach the core as pairs, which refuses a repeated signature header.
    if type(raw) is not list:
        raw = list(raw)  # read twice when a name repeats
    items: dict[str, str] = {}
    for name, value in raw:
        key = name.decode("latin-1").lower()  # servers send them lower-case; not all do
        if key in items:
            return Headers([(n.decode("latin-1"), v.decode("latin-1")) for n, v in raw])
        items[key] = value.decode("latin-1")
    return lowercase_headers(items)


async def lifespan(receive: Receive, send: Send) -> None:
    """Answer an ASGI lifespan scope: there is nothing to start or stop."""
    # A lifespan scope carries a startup message, then a shutdown message.
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        else:
            await send({"type": "lifespan.shutdown.complete"})
            return


# -- verified views ------------------------------------------------------------------


def for_view(outcome: Outcome) -> Delivery | None:
    """The Delivery a ``@verified`` view gets, or ``None`` when it must not run.

    Only new events are handed over: in a batch that repeats events already seen
    (Momentum), the view gets the delivery with the repeated ones left out.
    """
    if not outcome.ok or outcome.duplicate or outcome.delivery is None:
        return None
    delivery = outcome.delivery
    pending = outcome.pending
    if not (isinstance(pending, tuple) and pending == delivery.events):
        # A view is handed the events themselves: a batch accepted record by record
        # (PendingEvents) is decoded again here.
        delivery = dataclasses.replace(delivery, events=tuple(pending))
    return delivery


def serve_view(
    handler: WebhookHandler,
    received: Received,
    view: Callable[[Delivery], T],
    respond: Callable[[Outcome], R],
) -> T | R:
    """A ``@verified`` view's result for a new delivery, else ``respond``'s response.

    A view that returns has handled the delivery: its claims are completed, and a
    retry is a duplicate.  One that raises (anything, ``SystemExit`` from a worker
    timeout included) has not: its claims are released, so the retry runs it again.
    """
    if isinstance(received, Outcome):
        return respond(received)
    accepted = handler.accept(*received)
    delivery = for_view(accepted)
    if delivery is None:
        return respond(accepted)
    try:
        with accepted:
            result = view(delivery)
    except BaseException as exc:
        observe.answered(accepted, raised=exc)
        raise
    observe.answered(accepted)
    return result


def serve(
    handler: WebhookHandler,
    received: Received,
    pool: BackgroundPool | None,
    wrap: Wrap,
    inbox: Inbox | None = None,
    *,
    peer: str | None = None,
) -> Outcome:
    """The outcome of a ``webhook_view``: the routes run now, in ``pool`` after it, or
    from ``inbox`` in a worker.

    An inbox that keeps refusals (``keep_refused``) is handed the ones verification
    makes; ``peer`` is the connection's address, kept with them.
    """
    if isinstance(received, Outcome):
        return received
    body, headers = received
    if inbox is not None:
        outcome = store(handler, inbox, body, headers)
        keep_refusal(
            handler, inbox, outcome, received=time.time(), peer=peer, headers=headers, body=body
        )
        return outcome
    if pool is None:
        return handler.handle(body, headers)
    return accept_in_background(handler, pool, body, headers, wrap)
