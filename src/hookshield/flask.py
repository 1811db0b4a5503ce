"""Receive webhooks in a Flask app.

    from hookshield.flask import webhook_view, verified

    app.add_url_rule("/hooks/moco", view_func=webhook_view(moco))

    @app.post("/hooks/mindpeeker")
    @verified(mindpeeker)
    def mindpeeker_hook(delivery):
        ...

:func:`webhook_view` dispatches to the handler's ``@handler.on`` routes;
:func:`verified` runs your own view with the verified :class:`~hookshield.Delivery`.
Both read the raw body from the WSGI stream themselves, never through
``request.get_json()`` or ``request.form``, and stop reading at ``max_body_size``.
When code before the view read the body, the bytes Werkzeug kept (``get_data()``) are
verified; when it kept none, the delivery is refused with
:class:`~hookshield.BodyAlreadyRead` (500, logged at ERROR).
Install with ``python -m pip install -e '.[flask]'`` from a checkout.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from typing import Any, Concatenate, ParamSpec, TypeVar

from ._core.events import Delivery
from ._core.headers import Headers
from ._core.verify import declared_length
from ._durable.background import BackgroundPool, Inbox, background_pool, inbox_of
from ._durable.refused import keep_refusal
from ._handling import observe
from ._handling.handler import WebhookHandler
from ._handling.outcome import Outcome
from ._web.adapt import (
    JSON,
    bad_request,
    kept_body,
    method_not_allowed,
    missing,
    read_limited,
    refuse_before_body,
    serve,
    serve_view,
    too_large,
    warn_if_per_process,
    wsgi_headers,
)

try:
    import flask
    from flask.globals import app_ctx
    from werkzeug.exceptions import ClientDisconnected, RequestEntityTooLarge
except ImportError as exc:
    raise missing("Flask", extra="flask", adapter="hookshield.flask") from exc

__all__ = ["BackgroundPool", "verified", "webhook_view"]

P = ParamSpec("P")
RV = TypeVar("RV")


def webhook_view(
    handler: WebhookHandler, *, background: bool | BackgroundPool | Inbox = False
) -> Callable[..., flask.Response]:
    """A Flask view that verifies each delivery and dispatches it to ``handler``'s routes.

    Register it for POST (``app.add_url_rule(path, view_func=...)`` does so by
    default); the endpoint name is ``hookshield_<provider>``, so pass ``endpoint=``
    when two views serve the same sender.  With ``background=True`` (or a
    :class:`BackgroundPool` of your own) the sender gets 200 as soon as the delivery
    is verified and de-duplicated, and the routes run afterwards in a bounded pool of
    threads, inside the app context; when the pool is full the sender gets 503 and
    retries.  Background work is lost if the process dies before it is done.
    With ``background=inbox`` (:class:`~hookshield.SQLiteInbox`, ``CeleryInbox``)
    the delivery is stored durably before the 200, and a worker runs the routes.
    """
    pool, inbox = background_pool(background), inbox_of(background)

    def view(**_url_values: Any) -> flask.Response:
        received = _receive(handler, inbox)
        # The peer is kept only with a refusal an inbox keeps: no proxy lookup otherwise.
        peer = None if inbox is None else flask.request.environ.get("REMOTE_ADDR")
        return _response(serve(handler, received, pool, _in_app_context, inbox, peer=peer))

    view.__name__ = view.__qualname__ = f"hookshield_{handler.provider}"
    view.__doc__ = f"Receives {handler.provider} webhooks (hookshield)."
    # Read by add_url_rule when no methods= is given.
    view.methods = ("POST",)  # type: ignore[attr-defined]
    return view


def verified(
    handler: WebhookHandler,
) -> Callable[[Callable[Concatenate[Delivery, P], RV]], Callable[P, RV | flask.Response]]:
    """Decorate a plain (not ``async``) view of yours to run only for a new, verified delivery.

    The view gets the :class:`~hookshield.Delivery` as its first argument, before
    any URL values: ``def hook(delivery): ...``.  A forged, malformed or oversized
    delivery is answered with its 4xx and the view does not run; a duplicate is
    answered 200 and the view does not run either.  Handler routes are not called:
    the view is the handler.  If the view raises, the delivery is forgotten by the
    de-duplication store, so that the sender's retry runs the view again.  Read the
    raw body from ``delivery.body``: the request stream has been consumed.
    """

    def decorate(view: Callable[Concatenate[Delivery, P], RV]) -> Callable[P, RV | flask.Response]:
        @functools.wraps(view)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> RV | flask.Response:
            def call(delivery: Delivery) -> RV:
                return view(delivery, *args, **kwargs)

            return serve_view(handler, _receive(handler), call, _response)

        return wrapper

    return decorate


def _receive(
    handler: WebhookHandler, inbox: Inbox | None = None
) -> tuple[bytes, Headers] | Outcome:
    """The raw body and headers of the current request, or the outcome refusing it.

    A refusal before the body is handed to ``inbox`` when it keeps refusals.
    """
    # The request itself, not the proxy: each attribute read through the proxy looks
    # the request up again.
    request: flask.Request = flask.request._get_current_object()  # type: ignore[attr-defined]
    environ = request.environ
    observe.received(handler.provider, environ.get("REMOTE_ADDR"))
    method = environ["REQUEST_METHOD"]
    if method != "POST":
        return method_not_allowed(method)
    warn_if_per_process(handler, environ)
    headers = wsgi_headers(environ)
    peer = environ.get("REMOTE_ADDR")
    refused = refuse_before_body(handler, peer, headers)
    if refused is not None:
        keep_refusal(handler, inbox, refused, received=time.time(), peer=peer, headers=headers)
        return refused
    declared = headers.get("content-length")
    length = declared_length(declared)
    try:
        body = read_limited(request.stream.read, handler.max_body_size, length)
    except RequestEntityTooLarge:  # the app's own limit is lower than the handler's
        return too_large(handler, request.max_content_length, "MAX_CONTENT_LENGTH")
    except ClientDisconnected:
        return bad_request("the body ended before its Content-Length")
    if body is None:
        return too_large(handler)
    # A before_request that called request.get_json() or read request.data left the
    # stream empty; Werkzeug kept those bytes, and get_data() returns them unchanged.
    kept = kept_body(handler, body, length, lambda: request.get_data(cache=True), _ADVICE)
    return kept if isinstance(kept, Outcome) else (kept, headers)


_ADVICE = (
    "code that runs before the view (a before_request function, a WSGI middleware) "
    "read request.form or request.stream, which Werkzeug does not keep; read "
    "request.get_data() or request.get_json() there instead (Werkzeug keeps those "
    "bytes and hookshield verifies them), or skip that code for the webhook's endpoint"
)


def _in_app_context(job: Callable[[], Outcome]) -> Callable[[], Outcome]:
    """Run a background job inside this app's context, as the routes would in a request."""
    # Called in the request's thread: the proxy means nothing in another thread; the
    # app object itself does.
    app = app_ctx.app

    def run() -> Outcome:
        with app.app_context():
            return job()

    return run


def _response(outcome: Outcome) -> flask.Response:
    observe.answered(outcome)
    return flask.Response(
        outcome.response_body(),
        status=outcome.status,
        headers=list(outcome.response_headers()),
        content_type=JSON,
    )
