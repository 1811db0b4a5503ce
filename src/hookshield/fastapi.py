"""A FastAPI dependency that hands a route the verified delivery.

    from typing import Annotated
    from fastapi import Depends
    from hookshield import Delivery
    from hookshield.fastapi import verified

    @app.post("/hooks/moco")
    async def moco_hook(delivery: Annotated[Delivery, Depends(verified(moco))]):
        ...

It lives apart from :mod:`hookshield.asgi`, which stays pure ASGI and imports no
framework; this module needs FastAPI (``python -m pip install -e '.[fastapi]'`` from a checkout).  To
dispatch to ``@handler.on`` routes instead, mount :class:`hookshield.asgi.WebhookApp`.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable

from ._core.events import Delivery
from ._durable.background import Inbox, store_async
from ._durable.refused import keep_refusal_async
from ._handling import observe
from ._handling.handler import WebhookHandler
from ._handling.outcome import Outcome
from ._web.adapt import (
    asgi_headers,
    for_view,
    method_not_allowed,
    missing,
    refuse_before_body,
    too_large,
)

try:
    from fastapi import HTTPException, Request
except ImportError as exc:
    raise missing("FastAPI", extra="fastapi", adapter="hookshield.fastapi") from exc

__all__ = ["verified"]


def verified(
    handler: WebhookHandler, *, background: Inbox | None = None
) -> Callable[[Request], AsyncIterator[Delivery]]:
    """A dependency that verifies the request body and yields the Delivery.

    A forged, malformed or oversized delivery, or another method than POST, ends the
    request with its status before the route runs; a duplicate ends it with 200.
    These answers are FastAPI's ``{"detail": "..."}`` JSON, which never holds a
    secret.  Only new events are handed over, and handler routes are not called: the
    route is the handler.  If the route raises, the delivery is forgotten by the
    de-duplication store, so that the sender's retry runs it again.  Read the raw
    body from ``delivery.body``: the request stream has been consumed.

    With ``background=inbox`` the delivery is stored in the inbox before the route
    runs, and the handler's ``@handler.on`` routes run later in a worker; the route
    gets the stored delivery (to answer, or log) and a duplicate ends with 200.
    """

    async def verified_delivery(request: Request) -> AsyncIterator[Delivery]:
        scope = request.scope  # read as WebhookApp reads it, without Starlette's views
        client = scope.get("client")  # None when the server has no address
        peer = None if client is None else client[0]
        observe.received(handler.provider, peer)
        if request.method != "POST":
            raise _refusal(method_not_allowed(request.method))
        headers = asgi_headers(scope["headers"])  # a repeated name stays visible
        refused = refuse_before_body(handler, peer, headers)
        if refused is not None:
            await keep_refusal_async(
                handler, background, refused, received=time.time(), peer=peer, headers=headers
            )
            raise _refusal(refused)
        limit = handler.max_body_size
        parts: list[bytes] = []
        size = 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise _refusal(too_large(handler))
            parts.append(chunk)
        if background is not None:
            body = b"".join(parts)
            received = time.time()
            kept = await store_async(handler, background, body, headers)
            stored = for_view(kept)
            if stored is None:
                await keep_refusal_async(
                    handler,
                    background,
                    kept,
                    received=received,
                    peer=peer,
                    headers=headers,
                    body=body,
                )
                raise _refusal(kept)
            observe.answered(kept)  # stored: the route runs in a worker
            yield stored
            return
        accepted = await handler.accept_async(b"".join(parts), headers)
        delivery = for_view(accepted)
        if delivery is None:
            raise _refusal(accepted)
        # Completed once the route returns; released if it failed (or was cancelled),
        # so that the sender's retry runs it again.
        try:
            async with accepted:
                yield delivery
        except BaseException as exc:
            observe.answered(accepted, raised=exc)
            raise
        observe.answered(accepted)

    return verified_delivery


def _refusal(outcome: Outcome) -> HTTPException:
    """End the request with the outcome's status: a 4xx, 200 for a duplicate, or
    409 / 503 (with ``Retry-After``) for the sender to retry later.

    An ``HTTPException``, so that a refusal answers as every other error of a FastAPI
    app does (``{"detail": reason}``, as its own 404 and 422) and goes through the
    app's exception handlers.  ``WebhookApp`` answers ``{"error": reason}`` from
    outside them; docs/frameworks/asgi.md says to serve a FastAPI app's webhooks
    through this dependency, so that they all refuse alike.
    """
    observe.answered(outcome)
    headers = dict(outcome.response_headers()) or None
    # A 5xx says nothing of our side (a store's error, say), as Outcome.response_body.
    detail = SERVER_SIDE if outcome.status >= 500 else outcome.reason
    return HTTPException(status_code=outcome.status, detail=detail, headers=headers)


SERVER_SIDE = "the delivery could not be processed; please retry"
