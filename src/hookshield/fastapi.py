"""FastAPI routes that get the verified delivery: a decorator, or a dependency.

    from hookshield import Delivery
    from hookshield.fastapi import verified_route

    @app.post("/hooks/moco")
    @verified_route(moco)
    async def moco_hook(delivery: Delivery):
        ...

The dependency, ``Annotated[Delivery, Depends(verified(moco))]``, answers alike; the
decorator spares FastAPI's handling of a dependency with ``yield``.

It lives apart from :mod:`hookshield.asgi`, which stays pure ASGI and imports no
framework; this module needs FastAPI (``python -m pip install -e '.[fastapi]'`` from a checkout).  To
dispatch to ``@handler.on`` routes instead, mount :class:`hookshield.asgi.WebhookApp`.
"""

from __future__ import annotations

import functools
import inspect
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, Final

from ._core.events import Delivery
from ._durable.background import Inbox, store_async
from ._durable.refused import keep_refusal_async
from ._handling import observe
from ._handling.dispatch import Accepted
from ._handling.handler import WebhookHandler
from ._handling.outcome import Outcome
from ._web.adapt import (
    ASGI_ADVICE,
    asgi_headers,
    for_view,
    method_not_allowed,
    missing,
    refuse_before_body,
    too_large,
    unread_body,
)

try:
    from fastapi import HTTPException, Request
    from starlette.concurrency import run_in_threadpool
except ImportError as exc:
    raise missing("FastAPI", extra="fastapi", adapter="hookshield.fastapi") from exc

__all__ = ["verified", "verified_route"]


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

    :func:`verified_route` does the same as a decorator, without the cost of a
    dependency with ``yield`` (FastAPI wraps each in context managers and a cancel
    scope, a sizeable part of a request).
    """

    async def verified_delivery(request: Request) -> AsyncIterator[Delivery]:
        delivery, accepted = await _receive(handler, request, background)
        if accepted is None:  # stored in the inbox: nothing to settle here
            yield delivery
            return
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


def verified_route(
    handler: WebhookHandler, *, background: Inbox | None = None
) -> Callable[[Callable[..., Any]], Callable[..., Awaitable[Any]]]:
    """Decorate a route (``async def`` or plain) to run only for a new, verified delivery.

    Place it under the route's ``@app.post(...)``.  The route takes the
    :class:`~hookshield.Delivery` as its first parameter; its other parameters
    (path and query values, ``Depends``, ``BackgroundTasks``, ``Request``) are
    FastAPI's to fill, as usual.  It answers as the :func:`verified` dependency does,
    and ``background=`` means the same, but it settles the delivery itself: the
    claims are completed when the route returns and released if it raises.
    """

    def decorate(route: Callable[..., Any]) -> Callable[..., Awaitable[Any]]:
        # eval_str: annotations written as strings are resolved in the route's module,
        # since FastAPI will read them from this function, which lives in another.
        try:
            signature = inspect.signature(route, eval_str=True)
        except NameError:  # a name imported only for type checkers: as FastAPI does
            signature = inspect.signature(route)
        parameters = list(signature.parameters.values())
        _check_route(route, parameters)
        # FastAPI hands the request to one parameter only: the route's own, if it has one.
        own = [p.name for p in parameters[1:] if _is_request(p.annotation)]
        name = own[0] if own else _REQUEST
        # As FastAPI judges an endpoint: an object whose __call__ is async is awaited.
        is_async = inspect.iscoroutinefunction(route) or inspect.iscoroutinefunction(
            getattr(route, "__call__", None)  # noqa: B004 - the method, not callable()
        )

        async def call(delivery: Delivery, values: dict[str, Any]) -> Any:
            if is_async:
                return await route(delivery, **values)
            return await run_in_threadpool(route, delivery, **values)  # as FastAPI runs it

        @functools.wraps(route)
        async def endpoint(**values: Any) -> Any:
            request = values[name] if own else values.pop(name)
            delivery, accepted = await _receive(handler, request, background)
            if accepted is None:  # stored in the inbox: nothing to settle here
                return await call(delivery, values)
            try:
                async with accepted:
                    result = await call(delivery, values)
            except BaseException as exc:
                observe.answered(accepted, raised=exc)
                raise
            observe.answered(accepted)
            return result

        # FastAPI follows __wrapped__ to decide whether to await: it must see this one.
        del endpoint.__wrapped__
        # All by name, as FastAPI passes them; **kwargs stays last.
        others = [
            p if p.kind is p.VAR_KEYWORD else p.replace(kind=p.KEYWORD_ONLY) for p in parameters[1:]
        ]
        if not own:
            kind = inspect.Parameter.KEYWORD_ONLY
            others.insert(0, inspect.Parameter(_REQUEST, kind, annotation=Request))
        endpoint.__signature__ = signature.replace(parameters=others)  # type: ignore[attr-defined]
        return endpoint

    return decorate


# The request, as the decorated route's endpoint takes it: a name no route would use.
_REQUEST: Final = "hookshield_request"


def _check_route(route: Callable[..., Any], parameters: list[inspect.Parameter]) -> None:
    """Refuse, when decorating, a route that cannot take the delivery first."""
    name = getattr(route, "__qualname__", repr(route))
    first = parameters[0] if parameters else None
    if first is None or first.kind not in (first.POSITIONAL_ONLY, first.POSITIONAL_OR_KEYWORD):
        raise TypeError(
            f"{name} takes no positional parameter: verified_route hands it the Delivery "
            "as its first one"
        )
    if any(p.kind is p.VAR_POSITIONAL for p in parameters):
        raise TypeError(f"{name} takes *args, which FastAPI cannot fill")
    if any(p.name == _REQUEST for p in parameters):
        raise TypeError(f"{name} has a parameter named {_REQUEST}")


def _is_request(annotation: object) -> bool:
    return isinstance(annotation, type) and issubclass(annotation, Request)


async def _receive(
    handler: WebhookHandler, request: Request, background: Inbox | None
) -> tuple[Delivery, Accepted | None]:
    """The verified delivery of ``request``, and its claims to settle (``None`` when
    ``background`` stored it); a refusal raises its ``HTTPException``."""
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
    body = b"".join(parts)
    unread = unread_body(handler, body, headers, ASGI_ADVICE)
    if unread is not None:
        raise _refusal(unread)
    if background is not None:
        received = time.time()
        kept = await store_async(handler, background, body, headers)
        stored = for_view(kept)
        if stored is None:
            await keep_refusal_async(
                handler, background, kept, received=received, peer=peer, headers=headers, body=body
            )
            raise _refusal(kept)
        observe.answered(kept)  # stored: the route runs in a worker
        return stored, None
    accepted = await handler.accept_async(body, headers)
    delivery = for_view(accepted)
    if delivery is None:
        raise _refusal(accepted)
    return delivery, accepted


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
