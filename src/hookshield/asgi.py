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
from collections.abc import Mapping
from typing import Final

from ._durable.background import Inbox, store_async
from ._durable.refused import is_refusal, keep_refusal_async
from ._handling import observe
from ._handling.handler import WebhookHandler
from ._handling.outcome import Outcome
from ._web.adapt import (
    ASGI_ADVICE,
    JSON,
    asgi_headers,
    lifespan,
    method_not_allowed,
    refuse_before_body,
    route_key,
    too_large,
    unread_body,
)
from ._web.asgi_types import ASGIApp, Receive, Scope, Send

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
            await lifespan(receive, send)
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
        await _send(send, method_not_allowed(method))
        return
    headers = asgi_headers(scope["headers"])
    refused = refuse_before_body(handler, peer, headers)
    if refused is not None:
        await _send(send, refused)
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
            await _send(send, too_large(handler))
            return
        parts.append(chunk)
        if not message.get("more_body", False):
            break
    body = b"".join(parts)
    unread = unread_body(handler, body, headers, ASGI_ADVICE)
    if unread is not None:
        await _send(send, unread)
        return
    if not background:
        await _send(send, await handler.handle_async(body, headers))
        return
    if background is not True:
        received = time.time()
        outcome = await store_async(handler, background, body, headers)
        await _send(send, outcome)
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
    accepted = await handler.accept_async(body, headers)
    try:
        await _send(send, accepted)
    finally:
        # Even if the answer could not be sent, the delivery is claimed: a retry would
        # be taken for a duplicate, so the work must happen now.
        await accepted.finish_async()


def _checked_background(background: object) -> bool | Inbox:
    """``background=`` as given, if it is ``True``, ``False`` or an inbox."""
    if isinstance(background, (bool, Inbox)):
        return background
    raise TypeError(
        "background= takes True, False or an inbox (SQLiteInbox, CeleryInbox), "
        f"not {type(background).__name__}"
    )


async def _send(send: Send, outcome: Outcome) -> None:
    observe.answered(outcome)
    body = outcome.response_body()
    headers = [(b"content-type", _JSON), (b"content-length", b"%d" % len(body))]
    extra = outcome.response_headers()
    if extra:  # most answers have none: no list built for them
        headers += [(n.lower().encode("latin-1"), v.encode("latin-1")) for n, v in extra]
    await send({"type": "http.response.start", "status": outcome.status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


_JSON: Final = JSON.encode("latin-1")
