"""Receive webhooks in any ASGI app: Starlette, FastAPI, Litestar, Quart, or none.

    from hookshield.asgi import WebhookApp, WebhookMiddleware

    # Starlette / FastAPI: a route whose endpoint is the ASGI app
    routes = [Route("/hooks/moco", WebhookApp(moco))]            # Starlette
    app.router.routes.append(Route("/hooks/moco", WebhookApp(moco)))  # FastAPI

    # any ASGI app: serve the endpoints in front of it
    app = WebhookMiddleware(app, endpoints={"/hooks/moco": moco})

Both are pure ASGI and import no framework.  The body is read from the ``receive``
channel as it arrives, with ``max_body_size`` enforced while reading.  Async routes
run on the event loop, plain ones in a thread.  For a FastAPI route that gets the
verified :class:`~hookshield.Delivery`, see :mod:`hookshield.fastapi`.

Prefer ``Route`` to ``Mount`` in Starlette: a mount at ``/hooks/moco`` matches only
``/hooks/moco/...`` and answers a POST to ``/hooks/moco`` with a redirect, which
senders do not follow.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Mapping

from . import _observe as observe
from ._adapt import (
    JSON,
    Reply,
    method_not_allowed,
    refuse_before_body,
    reply,
    route_key,
    too_large,
)
from ._asgi_types import ASGIApp, Receive, Scope, Send
from ._background import Inbox, store_async
from ._handler import WebhookHandler
from ._headers import Headers, lowercase_headers
from ._refused import is_refusal, keep_refusal_async

__all__ = ["WebhookApp", "WebhookMiddleware"]

logger = logging.getLogger("hookshield")


class WebhookApp:
    """An ASGI app that verifies each delivery and dispatches it to ``handler``'s routes.

    It answers POST only (405 otherwise) and refuses WebSocket connections.  Served on
    its own, it completes the ASGI lifespan protocol.

    With ``background=True`` the sender gets 200 as soon as the delivery is verified
    and de-duplicated, and the routes run after the response has been sent, still
    within this request's ASGI call (as Starlette's background tasks do): a server
    shutting down gracefully waits for them, but the work is lost if the process
    dies first.  A route that fails then cannot make the sender retry; use
    ``@handler.on_error`` to record it.  With ``background=inbox``
    (:class:`~hookshield.SQLiteInbox`, ``CeleryInbox``) the delivery is stored
    durably before the 200, and a worker runs the routes.
    """

    def __init__(self, handler: WebhookHandler, *, background: bool | Inbox = False) -> None:
        if not isinstance(handler, WebhookHandler):
            raise TypeError(f"WebhookApp takes a WebhookHandler, not {type(handler).__name__}")
        self.handler = handler
        self.background = _checked_background(background)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            await _serve(self.handler, scope, receive, send, background=self.background)
        elif kind == "lifespan":
            await _lifespan(receive, send)
        elif kind == "websocket":
            # Closing before accepting refuses the handshake (403).
            await send({"type": "websocket.close", "code": 1008})
        else:
            raise ValueError(f"WebhookApp cannot serve a {kind!r} scope")

    def __repr__(self) -> str:
        return f"WebhookApp({self.handler!r}, background={self.background})"


class WebhookMiddleware:
    """ASGI middleware that serves webhook endpoints in front of ``app``.

    ``endpoints`` maps a path, as ``scope["path"]`` has it (a trailing slash is
    optional), to its :class:`~hookshield.WebhookHandler`.  An HTTP request for one
    of them is answered here, as :class:`WebhookApp` would; every other request, and
    every lifespan or WebSocket scope, goes to ``app`` untouched.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        endpoints: Mapping[str, WebhookHandler],
        background: bool | Inbox = False,
    ) -> None:
        self.app = app
        self.background = _checked_background(background)
        self.endpoints: dict[str, WebhookHandler] = {}
        for path, handler in endpoints.items():
            if not isinstance(path, str) or not path.startswith("/"):
                raise ValueError(f"endpoint {path!r} is not a path starting with '/'")
            if not isinstance(handler, WebhookHandler):
                raise TypeError(
                    f"endpoint {path!r} maps to {type(handler).__name__}, not a WebhookHandler"
                )
            self.endpoints[route_key(path)] = handler

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            handler = self.endpoints.get(route_key(scope["path"]))
            if handler is not None:
                await _serve(handler, scope, receive, send, background=self.background)
                return
        await self.app(scope, receive, send)


async def _serve(
    handler: WebhookHandler, scope: Scope, receive: Receive, send: Send, *, background: bool | Inbox
) -> None:
    """Answer one HTTP request with ``handler``."""
    # Reading the request is written out here rather than in a coroutine of its own:
    # under a server, each coroutine layer per request costs a few microseconds.
    client = scope.get("client")  # None when the server has no address (a unix socket)
    peer = None if client is None else client[0]
    observe.received(handler.provider, peer)
    method: str = scope["method"]
    if method != "POST":
        await _send(send, reply(method_not_allowed(method)))
        return
    headers = _headers(scope["headers"])
    refused = refuse_before_body(handler, peer, headers)
    if refused is not None:
        await _send(send, reply(refused))
        # Kept after the answer is sent: the sender does not wait for the write.
        await keep_refusal_async(
            handler, background, refused, received=time.time(), peer=peer, headers=headers
        )
        return
    limit = handler.max_body_size
    parts: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return  # the sender hung up; there is no one to answer
        chunk: bytes = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            # Stop here: the rest is never read, and the server closes the connection.
            await _send(send, reply(too_large(handler)))
            return
        parts.append(chunk)
        if not message.get("more_body", False):
            break
    body = b"".join(parts)
    if not background:
        await _send(send, reply(await handler.handle_async(body, headers)))
        return
    if background is not True:
        received = time.time()
        outcome = await store_async(handler, background, body, headers)
        await _send(send, reply(outcome))
        if is_refusal(outcome):  # tested here: no coroutine for the accepted ones
            await keep_refusal_async(
                handler,
                background,
                outcome,
                received=received,
                peer=peer,
                headers=headers,
                body=body,
            )
        return
    outcome = await handler.accept_async(body, headers)
    try:
        await _send(send, reply(outcome))
    finally:
        # Even if the answer could not be sent, the delivery is claimed: a retry would
        # be taken for a duplicate, so the work must happen now.
        if outcome.pending:
            await handler.finish_async(outcome)


def _checked_background(background: object) -> bool | Inbox:
    """``background=`` as given, if it is ``True``, ``False`` or an inbox."""
    if isinstance(background, (bool, Inbox)):
        return background
    raise TypeError(
        "background= takes True, False or an inbox (SQLiteInbox, CeleryInbox), "
        f"not {type(background).__name__}"
    )


def _headers(raw: Iterable[tuple[bytes, bytes]]) -> Headers:
    """The request's headers; ASGI header bytes are latin-1 (RFC 9110 section 5.5)."""
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


async def _send(send: Send, answer: Reply) -> None:
    headers = [
        (b"content-type", JSON.encode("latin-1")),
        (b"content-length", str(len(answer.body)).encode("latin-1")),
    ]
    headers += [(n.lower().encode("latin-1"), v.encode("latin-1")) for n, v in answer.headers]
    await send({"type": "http.response.start", "status": answer.status, "headers": headers})
    await send({"type": "http.response.body", "body": answer.body})


async def _lifespan(receive: Receive, send: Send) -> None:
    # A lifespan scope carries a startup message, then a shutdown message.
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        else:
            await send({"type": "lifespan.shutdown.complete"})
            return
