"""Receive webhooks in a Django project.

A view per sender, in ``urls.py``::

    from hookshield.django import webhook_view
    urlpatterns = [path("hooks/moco/", webhook_view(moco))]

your own view, run only for a verified, new delivery::

    @verified(mindpeeker)
    def mindpeeker_hook(request, delivery): ...

or the middleware, which serves the endpoints named in settings before any other
middleware (place it above ``CsrfViewMiddleware``)::

    MIDDLEWARE = ["hookshield.django.WebhookMiddleware", ...]
    HOOKSHIELD_ENDPOINTS = {"/hooks/moco/": "myapp.webhooks.moco"}

Durable background work in the project's own database: add ``"hookshield.django"`` to
``INSTALLED_APPS`` (models, migrations, the admin, ``manage.py hookshield_worker``) and
store each delivery with ``webhook_view(moco, background=DjangoInbox())``; claims can
live there too, ``WebhookHandler(..., dedupe=DjangoDedupeStore())``.

Every view is CSRF-exempt (a sender has no CSRF token; the signature is the check)
and answers 405 to anything but POST.  The raw body is read from the request
stream, never through ``request.POST`` or ``request.body``, and reading stops at the
handler's ``max_body_size`` (not Django's ``DATA_UPLOAD_MAX_MEMORY_SIZE``: a
Momentum batch is often larger).  When a middleware read ``request.body`` first, those
kept bytes are verified; when it read the stream itself, nothing was kept, and the
delivery is refused with :class:`~hookshield.BodyAlreadyRead` (500, logged at ERROR).  The views are synchronous; under ASGI, Django
runs them in a thread.  Install with ``python -m pip install -e '.[django]'``
from a checkout.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Mapping
from typing import Any, Concatenate, ParamSpec, TypeVar

from .._core.events import Delivery
from .._core.headers import Headers
from .._core.verify import declared_length
from .._durable.background import BackgroundPool, Inbox, background_pool, inbox_of
from .._durable.refused import keep_refusal
from .._handling import observe
from .._handling.handler import WebhookHandler
from .._handling.outcome import Outcome
from .._web.adapt import (
    JSON,
    bad_request,
    kept_body,
    method_not_allowed,
    missing,
    read_limited,
    refuse_before_body,
    route_key,
    serve,
    serve_view,
    too_large,
    warn_if_per_process,
    wsgi_headers,
)

try:
    from django.conf import settings
    from django.core.exceptions import ImproperlyConfigured, MiddlewareNotUsed
    from django.db import connections, transaction
    from django.http import HttpRequest, HttpResponse, RawPostDataException
    from django.utils.module_loading import import_string
    from django.views.decorators.csrf import csrf_exempt
except ImportError as exc:
    raise missing("Django", extra="django", adapter="hookshield.django") from exc

from .._stores.django_cache import CacheDedupeStore
from ._dedupe import DjangoDedupeStore
from ._inbox import DjangoInbox

__all__ = [
    "BackgroundPool",
    "CacheDedupeStore",
    "DjangoDedupeStore",
    "DjangoInbox",
    "WebhookMiddleware",
    "verified",
    "webhook_view",
]

P = ParamSpec("P")
RV = TypeVar("RV")


def webhook_view(
    handler: WebhookHandler, *, background: bool | BackgroundPool | Inbox = False
) -> Callable[..., HttpResponse]:
    """A Django view that verifies each delivery and dispatches it to ``handler``'s routes.

    With ``background=True`` (or a :class:`BackgroundPool` of your own) the sender
    gets 200 as soon as the delivery is verified and de-duplicated, and the routes
    run afterwards in a bounded pool of threads, each of which closes its database
    connections when done; when the pool is full the sender gets 503 and retries.
    Background work is lost if the process dies before it is done.
    With ``background=inbox`` (:class:`DjangoInbox`, :class:`~hookshield.SQLiteInbox`,
    ``CeleryInbox``) the delivery is stored durably before the 200, and a worker runs
    the routes.  With a :class:`DjangoInbox` the view is left out of
    ``ATOMIC_REQUESTS``: the delivery must be committed before the sender is answered.
    """
    pool, inbox = background_pool(background), inbox_of(background)

    @csrf_exempt
    def view(request: HttpRequest, *_args: Any, **_kwargs: Any) -> HttpResponse:
        received = _receive(request, handler, inbox)
        peer = request.META.get("REMOTE_ADDR")
        return _response(serve(handler, received, pool, _closing_connections, inbox, peer=peer))

    view.__name__ = view.__qualname__ = f"hookshield_{handler.provider}"
    view.__doc__ = f"Receives {handler.provider} webhooks (hookshield)."
    if isinstance(inbox, DjangoInbox):
        return transaction.non_atomic_requests(using=inbox.using)(view)
    return view


def verified(
    handler: WebhookHandler,
) -> Callable[
    [Callable[Concatenate[HttpRequest, Delivery, P], RV]],
    Callable[Concatenate[HttpRequest, P], RV | HttpResponse],
]:
    """Decorate a plain (not ``async``) view of yours to run only for a new, verified delivery.

    The view gets the :class:`~hookshield.Delivery` after the request:
    ``def hook(request, delivery, **url_kwargs)``.  The decorated view is CSRF-exempt
    and POST-only.  A forged, malformed or oversized delivery is answered with its
    4xx and the view does not run; a duplicate is answered 200 and the view does not
    run either.  Handler routes are not called: the view is the handler.  If the view
    raises, the delivery is forgotten by the de-duplication store, so that the
    sender's retry runs the view again.  Read the raw body from ``delivery.body``:
    the request stream has been consumed.
    """

    def decorate(
        view: Callable[Concatenate[HttpRequest, Delivery, P], RV],
    ) -> Callable[Concatenate[HttpRequest, P], RV | HttpResponse]:
        @functools.wraps(view)
        def wrapper(
            request: HttpRequest, /, *args: P.args, **kwargs: P.kwargs
        ) -> RV | HttpResponse:
            def call(delivery: Delivery) -> RV:
                return view(request, delivery, *args, **kwargs)

            return serve_view(handler, _receive(request, handler), call, _response)

        return csrf_exempt(wrapper)

    return decorate


class WebhookMiddleware:
    """Serves the webhook endpoints named in ``settings.HOOKSHIELD_ENDPOINTS``.

    ``HOOKSHIELD_ENDPOINTS`` maps a path (as ``request.path_info`` sees it; a trailing
    slash is optional) to a :class:`~hookshield.WebhookHandler` or the dotted path of
    one, e.g. ``{"/hooks/moco/": "myapp.webhooks.moco"}``.  A request for one of them
    is answered here, before the middleware below this one (CSRF, sessions,
    authentication, and also the ``ALLOWED_HOSTS`` check and HTTPS redirect, which a
    signed delivery does not need) and the URL resolver; every other request passes
    through.
    ``HOOKSHIELD_BACKGROUND = True`` runs the routes after the response, as
    ``webhook_view(..., background=True)`` does, in one pool for all endpoints;
    ``HOOKSHIELD_INBOX`` (an inbox, or the dotted path of one) stores every delivery
    in it for a worker instead, as ``background=inbox`` does.
    A wrong setting raises ``ImproperlyConfigured`` when Django loads the middleware.
    """

    def __init__(self, get_response: Callable[[HttpRequest], Any]) -> None:
        self.get_response = get_response
        endpoints = getattr(settings, "HOOKSHIELD_ENDPOINTS", None)
        if not endpoints:
            raise MiddlewareNotUsed("HOOKSHIELD_ENDPOINTS is empty")
        if not isinstance(endpoints, Mapping):
            raise ImproperlyConfigured(
                "HOOKSHIELD_ENDPOINTS maps paths to handlers, e.g. "
                '{"/hooks/moco/": "myapp.webhooks.moco"}'
            )
        pool = BackgroundPool() if getattr(settings, "HOOKSHIELD_BACKGROUND", False) else None
        inbox = _inbox_setting()
        self.views: dict[str, Callable[..., HttpResponse]] = {}
        for path, target in endpoints.items():
            if not isinstance(path, str) or not path.startswith("/"):
                raise ImproperlyConfigured(
                    f"HOOKSHIELD_ENDPOINTS: {path!r} is not a path starting with '/'"
                )
            handler = _load(path, target)
            self.views[route_key(path)] = webhook_view(
                handler, background=inbox if inbox is not None else pool or False
            )

    def __call__(self, request: HttpRequest) -> Any:
        view = self.views.get(route_key(request.path_info))
        if view is None:
            return self.get_response(request)
        return view(request)


def _load(path: str, target: object) -> WebhookHandler:
    if isinstance(target, str):
        try:
            target = import_string(target)
        except ImportError as exc:
            raise ImproperlyConfigured(f"HOOKSHIELD_ENDPOINTS[{path!r}]: {exc}") from exc
    if not isinstance(target, WebhookHandler):
        raise ImproperlyConfigured(
            f"HOOKSHIELD_ENDPOINTS[{path!r}] is {type(target).__name__}, not a WebhookHandler"
        )
    return target


def _inbox_setting() -> Inbox | None:
    target = getattr(settings, "HOOKSHIELD_INBOX", None)
    if isinstance(target, str):
        try:
            target = import_string(target)
        except ImportError as exc:
            raise ImproperlyConfigured(f"HOOKSHIELD_INBOX: {exc}") from exc
    if target is not None and inbox_of(target) is None:
        raise ImproperlyConfigured(
            f"HOOKSHIELD_INBOX is {type(target).__name__}, not an inbox (with a put method)"
        )
    return inbox_of(target)


def _receive(
    request: HttpRequest, handler: WebhookHandler, inbox: Inbox | None = None
) -> tuple[bytes, Headers] | Outcome:
    """The raw body and headers of ``request``, or the outcome refusing it.

    A refusal before the body is handed to ``inbox`` when it keeps refusals.
    """
    observe.received(handler.provider, request.META.get("REMOTE_ADDR"))
    if request.method != "POST":
        return method_not_allowed(request.method or "")
    meta = request.META
    warn_if_per_process(handler, meta)
    headers = wsgi_headers(meta)
    peer = meta.get("REMOTE_ADDR")
    refused = refuse_before_body(handler, peer, headers)
    if refused is not None:
        keep_refusal(handler, inbox, refused, received=time.time(), peer=peer, headers=headers)
        return refused
    length = declared_length(headers.get("content-length"))
    if length is None and meta.get("wsgi.input_terminated"):
        # A chunked body has no Content-Length, and Django then reads nothing.  A WSGI
        # server that decodes chunked bodies says so with wsgi.input_terminated (PEP
        # 3333 extension, set by gunicorn), and its stream is then safe to read to
        # its end; read_limited still stops at the limit.
        read = meta["wsgi.input"].read
    else:
        read = request.read
    try:
        body = read_limited(read, handler.max_body_size, length)
    except OSError:  # the sender hung up mid-body (Django raises UnreadablePostError)
        return bad_request("the body ended before its Content-Length")
    if body is None:
        return too_large(handler)

    def kept() -> bytes | None:
        # Django keeps the body once request.body was read; a read of the stream
        # itself (request.read(), a multipart request.POST) keeps nothing, and
        # request.body then raises.
        try:
            return request.body
        except RawPostDataException:
            return None

    checked = kept_body(handler, body, length, kept, _ADVICE)
    return checked if isinstance(checked, Outcome) else (checked, headers)


_ADVICE = (
    "a middleware or code before the view read the request's stream (request.read(), "
    "json.load(request), request.POST on a multipart body), which Django does not keep; "
    "read request.body there instead (Django keeps it, and hookshield verifies those "
    "bytes), or put hookshield.django.WebhookMiddleware above that middleware"
)


def _closing_connections(job: Callable[[], Outcome]) -> Callable[[], Outcome]:
    """Close the worker thread's database connections after a job, as a request does."""

    def run() -> Outcome:
        try:
            return job()
        finally:
            connections.close_all()

    return run


def _response(outcome: Outcome) -> HttpResponse:
    observe.answered(outcome)
    response = HttpResponse(outcome.response_body(), status=outcome.status, content_type=JSON)
    for name, value in outcome.response_headers():
        response[name] = value
    return response
