"""The endpoints the benchmarks compare, per framework: hookshield's, and one written by hand.

The hand-written endpoint does for a 1 KB MindPeeker delivery what hookshield's does,
the least any safe receiver does: read the body, compare its HMAC-SHA256 with
:func:`hmac.compare_digest`, ``json.loads`` it, remember its id in a set (a replay is
answered 200 and not run), and call the route.  Each framework runs both routes the
same way:

* FastAPI: hookshield's endpoint is the README's, the ``verified`` dependency and
  ``dispatch_async`` to a plain ``@handler.on`` route, which runs in hookshield's
  thread; the hand-written endpoint runs its plain route in the thread pool, as
  FastAPI runs plain code.
* Starlette: ``WebhookApp`` with the route registered ``inline=True``, and the
  hand-written endpoint, both calling the route on the event loop.
* Flask and Django (WSGI): ``webhook_view``, and a view, both calling it in the
  request's thread.

Each app serves them at ``/hookshield/`` and ``/hand-written/``.  The served Starlette
app (:func:`served_starlette`, for ``uvicorn --factory``) adds the other ways to run
a plain route, and :func:`flask_inbox_app` is the durable inbox's web side.
Frameworks are imported when an app is built.  (No ``from __future__ import
annotations`` here: FastAPI reads the endpoints' annotations as objects.)
"""

import hashlib
import hmac
import json
import os
import time
from typing import Annotated, Any, cast

from hookshield import Delivery, Event, MindPeekerEvent, WebhookHandler

from .payloads import MAX_BODY_SIZE, SECRET

__all__ = [
    "HandWritten",
    "django_app",
    "fastapi_app",
    "flask_app",
    "flask_inbox_app",
    "served_starlette",
    "starlette_app",
]

SIGNATURE = "X-MindPeeker-Signature"
OK = b'{"ok":true}'
DENIED = b'{"error":"invalid signature"}'
_KEY = SECRET.encode()

urlpatterns: list[Any] = []  # Django's ROOT_URLCONF is this module


def route(event: Event) -> object:
    """hookshield's route: what a handler reads of the event."""
    mindpeeker = cast(MindPeekerEvent, event)
    return (mindpeeker.session_id, mindpeeker.status, mindpeeker.confidence)


async def async_route(event: Event) -> object:
    """The same route, written ``async def``."""
    return route(event)


def hand_route(data: dict[str, Any]) -> object:
    """The hand-written endpoint's route: the same fields, from the decoded dict."""
    fields = data["data"]
    return (fields["session_id"], fields["status"], fields["confidence_score"])


class HandWritten:
    """The hand-written receiver's checks, and the ids it has seen."""

    def __init__(self) -> None:
        self.seen: set[str] = set()

    def accept(self, body: bytes, signature: str | None) -> tuple[int, dict[str, Any] | None]:
        """The status to answer, and the data to hand the route (``None``: nothing to run)."""
        expected = "sha256=" + hmac.new(_KEY, body, hashlib.sha256).hexdigest()
        if signature is None or not hmac.compare_digest(expected, signature):
            return 401, None
        data: dict[str, Any] = json.loads(body)
        if data["id"] in self.seen:
            return 200, None
        self.seen.add(data["id"])
        return 200, data


def _started(event: Any) -> None:
    """A worker's route that notes when it started each delivery: ``<event id> <time>``."""
    line = f"{event.id} {time.time()!r}\n".encode()
    fd = os.open(os.environ["HOOKSHIELD_BENCH_LOG"], os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    try:
        os.write(fd, line)  # one write: lines from several processes never mix
    finally:
        os.close(fd)


#: What ``hookshield worker`` runs in the served worker measurements: a no-op route
#: that notes when each delivery started (``HOOKSHIELD_BENCH_LOG``).
worker_hooks = WebhookHandler("mindpeeker", secret=SECRET, max_body_size=MAX_BODY_SIZE)
worker_hooks.on("*")(_started)


def handler(*, inline: bool = False, asynchronous: bool = False) -> WebhookHandler:
    """hookshield's handler of the benchmarks' deliveries, with its one route."""
    hooks = WebhookHandler("mindpeeker", secret=SECRET)
    hooks.on("session.completed", inline=inline)(async_route if asynchronous else route)
    return hooks


def fastapi_app(*, dependency: bool = False) -> Any:
    """FastAPI: the README's decorator (or the ``verified`` dependency), and a hand-written endpoint."""
    from fastapi import Depends, FastAPI, HTTPException, Request
    from starlette.concurrency import run_in_threadpool

    from hookshield.fastapi import verified, verified_route

    hooks, hand = handler(), HandWritten()
    app = FastAPI(openapi_url=None)

    # response_model=None: as without the return annotation, which the README's lacks.
    if dependency:

        @app.post("/hookshield/", response_model=None)
        async def hookshield_dependency(
            delivery: Annotated[Delivery, Depends(verified(hooks))],
        ) -> dict[str, int]:
            await hooks.dispatch_async(delivery)
            return {"received": len(delivery.events)}

    else:

        @app.post("/hookshield/", response_model=None)
        @verified_route(hooks)
        async def hookshield_endpoint(delivery: Delivery) -> dict[str, int]:
            await hooks.dispatch_async(delivery)
            return {"received": len(delivery.events)}

    @app.post("/hand-written/", response_model=None)
    async def hand_written(request: Request) -> dict[str, int]:
        status, data = hand.accept(await request.body(), request.headers.get(SIGNATURE))
        if status != 200:
            raise HTTPException(status)
        if data is not None:
            await run_in_threadpool(hand_route, data)
        return {"received": 0 if data is None else 1}

    return app


def _starlette_hand_written(*, in_thread: bool) -> Any:
    from starlette.concurrency import run_in_threadpool
    from starlette.responses import Response

    hand = HandWritten()

    async def hand_written(request: Any) -> Any:
        status, data = hand.accept(await request.body(), request.headers.get(SIGNATURE))
        if data is not None:
            if in_thread:
                await run_in_threadpool(hand_route, data)
            else:
                hand_route(data)
        body = OK if status == 200 else DENIED
        return Response(body, status_code=status, media_type="application/json")

    return hand_written


def starlette_app() -> Any:
    """Starlette: ``WebhookApp`` with an ``inline=True`` route, and a hand-written endpoint."""
    from starlette.applications import Starlette
    from starlette.routing import Route

    from hookshield.asgi import WebhookApp

    return Starlette(
        routes=[
            Route("/hookshield/", WebhookApp(handler(inline=True)), methods=["POST"]),
            Route("/hand-written/", _starlette_hand_written(in_thread=False), methods=["POST"]),
        ]
    )


#: The served Starlette app's endpoints: each way of running the same plain route.
SERVED_ENDPOINTS = {
    "/hand-written/": "hand-written, route on the loop",
    "/hand-written-thread/": "hand-written, route in Starlette's thread pool",
    "/hookshield-thread/": "hookshield, plain route (in its thread)",
    "/hookshield-async/": "hookshield, `async def` route",
    "/hookshield/": "hookshield, plain route with `inline=True`",
}


def served_starlette() -> Any:
    """The Starlette app uvicorn serves (``--factory``): :data:`SERVED_ENDPOINTS`."""
    from starlette.routing import Route

    from hookshield.asgi import WebhookApp

    app = starlette_app()
    app.router.routes += [
        Route("/hand-written-thread/", _starlette_hand_written(in_thread=True), methods=["POST"]),
        Route("/hookshield-thread/", WebhookApp(handler()), methods=["POST"]),
        Route("/hookshield-async/", WebhookApp(handler(asynchronous=True)), methods=["POST"]),
    ]
    return app


def flask_app() -> Any:
    """Flask: ``webhook_view``, and a hand-written view."""
    from flask import Flask, Response, request

    from hookshield.flask import webhook_view

    hand = HandWritten()
    app = Flask("hookshield_bench")

    def hand_written() -> Response:
        status, data = hand.accept(request.get_data(), request.headers.get(SIGNATURE))
        if data is not None:
            hand_route(data)
        return Response(OK if status == 200 else DENIED, status=status, mimetype="application/json")

    app.add_url_rule("/hookshield/", "hookshield", webhook_view(handler()), methods=["POST"])
    app.add_url_rule("/hand-written/", "hand_written", hand_written, methods=["POST"])
    return app


def django_app() -> Any:
    """Django: ``webhook_view``, and a hand-written view; the WSGI application."""
    import django
    from django.conf import settings

    if not settings.configured:
        settings.configure(
            DEBUG=False,
            ALLOWED_HOSTS=["127.0.0.1"],
            ROOT_URLCONF=__name__,
            SECRET_KEY="hookshield-bench-only",  # noqa: S106 - a throwaway local app
            MIDDLEWARE=[],
            INSTALLED_APPS=[],
        )
    django.setup()
    from django.core.wsgi import get_wsgi_application
    from django.http import HttpRequest, HttpResponse
    from django.urls import path
    from django.views.decorators.csrf import csrf_exempt

    from hookshield.django import webhook_view

    hand = HandWritten()

    @csrf_exempt
    def hand_written(request: HttpRequest) -> HttpResponse:
        status, data = hand.accept(request.body, request.headers.get(SIGNATURE))
        if data is not None:
            hand_route(data)
        body = OK if status == 200 else DENIED
        return HttpResponse(body, status=status, content_type="application/json")

    urlpatterns[:] = [
        path("hookshield/", webhook_view(handler())),
        path("hand-written/", hand_written),
    ]
    return get_wsgi_application()


def flask_inbox_app(mode: str) -> Any:
    """The durable inbox's web side: ``background=`` ``True``, an SQLite, a Celery or a PostgreSQL inbox.

    ``mode`` is ``memory``, ``sqlite`` (the file ``HOOKSHIELD_BENCH_INBOX``), ``celery``
    (on the broker ``HOOKSHIELD_BENCH_BROKER``) or ``postgres`` (the database
    ``HOOKSHIELD_BENCH_DSN``, which then holds the claims too: ``PostgresDedupeStore``).
    """
    from flask import Flask

    from hookshield import SQLiteInbox
    from hookshield.flask import webhook_view

    hooks = handler()
    background: Any = True
    if mode == "postgres":
        from hookshield.postgres import PostgresDedupeStore, PostgresInbox

        dsn = os.environ["HOOKSHIELD_BENCH_DSN"]
        hooks = WebhookHandler("mindpeeker", secret=SECRET, dedupe=PostgresDedupeStore(dsn))
        hooks.on("session.completed")(route)
        background = PostgresInbox(dsn)
    elif mode == "sqlite":
        background = SQLiteInbox(os.environ["HOOKSHIELD_BENCH_INBOX"])
    elif mode == "celery":
        from celery import Celery

        from hookshield.celery import CeleryInbox

        background = CeleryInbox(
            Celery("bench", broker=os.environ["HOOKSHIELD_BENCH_BROKER"]), hooks
        )
    app = Flask("hookshield_bench_inbox")
    app.add_url_rule("/hookshield/", view_func=webhook_view(hooks, background=background))
    return app
