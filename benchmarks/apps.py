"""The web apps the HTTP benchmark serves, one factory per framework.

Each app has three POST endpoints for MindPeeker deliveries: ``/hook/``, hookshield's
adapter with a handler that reads the typed fields; ``/floor/``, the same framework's
endpoint written by hand doing the floor (HMAC-SHA256 of the raw body, a constant-time
compare, ``json.loads`` and the same fields); and ``/hook-background/``, the adapter in
``background=True`` mode with a handler that sleeps ``HOOKSHIELD_BENCH_SLEEP`` seconds
(10 by default).  The ASGI apps also have ``/hook-async/``, whose route is ``async def``,
and ``/floor-thread/``, the hand-written endpoint doing its work in the framework's
thread pool (``run_in_threadpool``), as a plain-function route of its own would: the
like-for-like of ``/hook/``; and ``/hook-inline/``, the plain route registered with
``inline=True``, run on the event loop.  gunicorn serves ``flask_app()`` and
``django_app()``; uvicorn ``--factory`` serves ``starlette_app`` and ``fastapi_app``.  Frameworks are imported by
name, so that this module type-checks without them.

``HOOKSHIELD_BENCH_STORE`` chooses the Flask app's de-duplication store for ``/hook/``:
``memory``, ``sqlite:PATH`` or ``redis://HOST:PORT/DB``; unset, the handler keeps its
default (in memory).  A store whose class is not installed stops the app from starting,
which the HTTP benchmark reports as a skipped row.
"""

from __future__ import annotations

import hashlib
import hmac
import importlib
import json
import os
import time
from typing import Any, cast

import hookshield
from hookshield import DedupeStore, Event, MindPeekerEvent, WebhookHandler

from .payloads import SECRET

__all__ = [
    "STORE_VARIABLE",
    "django_app",
    "fastapi_app",
    "flask_app",
    "floor",
    "starlette_app",
    "store_from",
]

#: The environment variable naming the Flask app's de-duplication store.
STORE_VARIABLE = "HOOKSHIELD_BENCH_STORE"

SIGNATURE = "X-MindPeeker-Signature"
OK = b'{"ok":true}'
DENIED = b'{"error":"invalid signature"}'

urlpatterns: list[Any] = []  # Django's ROOT_URLCONF is this module


def _read(event: Event) -> object:
    if isinstance(event, MindPeekerEvent):
        return (event.session_id, event.status, event.confidence, event.completed_at)
    return None


def _sleep(event: Event) -> None:
    time.sleep(float(os.environ.get("HOOKSHIELD_BENCH_SLEEP", "10")))


async def _read_async(event: Event) -> object:
    return _read(event)


def store_from(spec: str) -> DedupeStore:
    """The de-duplication store that ``spec`` names: ``memory``, ``sqlite:PATH``, ``redis://...``.

    Raises :class:`RuntimeError` when the store's class is not there (yet), and
    :class:`ValueError` for a spec it does not know.
    """
    if spec == "memory":
        return hookshield.MemoryDedupeStore()
    if spec.startswith("sqlite:"):
        sqlite_store = getattr(hookshield, "SQLiteDedupeStore", None)
        if sqlite_store is None:
            raise RuntimeError("hookshield.SQLiteDedupeStore is not available")
        store: DedupeStore = sqlite_store(spec.removeprefix("sqlite:"))
        return store
    if spec.startswith("redis://"):
        try:
            client = importlib.import_module("redis").Redis.from_url(spec)
            redis_store = importlib.import_module("hookshield.redis").RedisDedupeStore
        except (ImportError, AttributeError) as exc:
            raise RuntimeError(
                f"hookshield.redis.RedisDedupeStore is not available: {exc}"
            ) from exc
        return cast(DedupeStore, redis_store(client))
    raise ValueError(f"{STORE_VARIABLE}={spec[:60]!r}: expected memory, sqlite:PATH or redis://...")


def _handlers(dedupe: Any = None) -> tuple[WebhookHandler, WebhookHandler]:
    """The handler of ``/hook/`` (on ``dedupe`` when given) and of the slow route."""
    options = {} if dedupe is None else {"dedupe": dedupe}
    fast = WebhookHandler("mindpeeker", secret=SECRET, **options)
    fast.on("session.completed")(_read)
    slow = WebhookHandler("mindpeeker", secret=SECRET)
    slow.on("session.completed")(_sleep)
    return fast, slow


_KEY = SECRET.encode()


def floor(body: bytes, signature: str | None) -> tuple[int, bytes]:
    """The hand-written endpoint's work: verify, parse, read the fields; status and body."""
    expected = "sha256=" + hmac.new(_KEY, body, hashlib.sha256).hexdigest()
    if signature is None or not hmac.compare_digest(expected, signature):
        return 401, DENIED
    data = json.loads(body)["data"]
    _ = (data.get("session_id"), data.get("status"), data.get("confidence_score"))
    return 200, OK


def flask_app() -> Any:
    """The Flask app, for ``gunicorn 'benchmarks.apps:flask_app()'``."""
    flask = importlib.import_module("flask")
    adapter = importlib.import_module("hookshield.flask")
    spec = os.environ.get(STORE_VARIABLE, "").strip()
    fast, slow = _handlers(store_from(spec) if spec else None)
    app = flask.Flask("hookshield_bench")

    def hand_written() -> Any:
        request = flask.request
        status, body = floor(request.get_data(), request.headers.get(SIGNATURE))
        return flask.Response(body, status=status, mimetype="application/json")

    app.add_url_rule("/floor/", "floor", hand_written, methods=["POST"])
    app.add_url_rule("/hook/", "hook", adapter.webhook_view(fast), methods=["POST"])
    app.add_url_rule(
        "/hook-background/",
        "hook_background",
        adapter.webhook_view(slow, background=True),
        methods=["POST"],
    )
    return app


def django_app() -> Any:
    """The Django app, for ``gunicorn 'benchmarks.apps:django_app()'``."""
    settings = importlib.import_module("django.conf").settings
    if not settings.configured:
        settings.configure(
            DEBUG=False,
            ALLOWED_HOSTS=["127.0.0.1"],
            ROOT_URLCONF=__name__,
            SECRET_KEY="hookshield-bench-only",  # noqa: S106 - a throwaway local app
            MIDDLEWARE=[],
            INSTALLED_APPS=[],
        )
    importlib.import_module("django").setup()
    path = importlib.import_module("django.urls").path
    http = importlib.import_module("django.http")
    csrf_exempt = importlib.import_module("django.views.decorators.csrf").csrf_exempt
    adapter = importlib.import_module("hookshield.django")
    fast, slow = _handlers()

    def hand_written(request: Any) -> Any:
        if request.method != "POST":
            return http.HttpResponseNotAllowed(["POST"])
        status, body = floor(request.body, request.headers.get(SIGNATURE))
        return http.HttpResponse(body, status=status, content_type="application/json")

    urlpatterns[:] = [
        path("floor/", csrf_exempt(hand_written)),
        path("hook/", adapter.webhook_view(fast)),
        path("hook-background/", adapter.webhook_view(slow, background=True)),
    ]
    return importlib.import_module("django.core.wsgi").get_wsgi_application()


async def _asgi_floor(request: Any) -> Any:
    responses = importlib.import_module("starlette.responses")
    status, body = floor(await request.body(), request.headers.get(SIGNATURE))
    return responses.Response(body, status_code=status, media_type="application/json")


async def _asgi_floor_thread(request: Any) -> Any:
    responses = importlib.import_module("starlette.responses")
    run_in_threadpool = importlib.import_module("starlette.concurrency").run_in_threadpool
    body = await request.body()
    status, answer = await run_in_threadpool(floor, body, request.headers.get(SIGNATURE))
    return responses.Response(answer, status_code=status, media_type="application/json")


def _asgi_routes() -> list[Any]:
    routing = importlib.import_module("starlette.routing")
    asgi = importlib.import_module("hookshield.asgi")
    fast, slow = _handlers()
    # The same work with an ``async def`` route, which runs on the event loop rather
    # than in a thread.
    awaiting = WebhookHandler("mindpeeker", secret=SECRET)
    awaiting.on("session.completed")(_read_async)
    # The same plain route, run on the event loop.
    inline = WebhookHandler("mindpeeker", secret=SECRET)
    inline.on("session.completed", inline=True)(_read)
    return [
        routing.Route("/floor-thread/", _asgi_floor_thread, methods=["POST"]),
        routing.Route("/hook/", asgi.WebhookApp(fast), methods=["POST"]),
        routing.Route("/hook-async/", asgi.WebhookApp(awaiting), methods=["POST"]),
        routing.Route("/hook-inline/", asgi.WebhookApp(inline), methods=["POST"]),
        routing.Route(
            "/hook-background/", asgi.WebhookApp(slow, background=True), methods=["POST"]
        ),
    ]


def starlette_app() -> Any:
    """The Starlette app, for ``uvicorn --factory benchmarks.apps:starlette_app``."""
    routing = importlib.import_module("starlette.routing")
    applications = importlib.import_module("starlette.applications")
    routes = [routing.Route("/floor/", _asgi_floor, methods=["POST"]), *_asgi_routes()]
    return applications.Starlette(routes=routes)


def fastapi_app() -> Any:
    """The FastAPI app, for ``uvicorn --factory benchmarks.apps:fastapi_app``."""
    fastapi = importlib.import_module("fastapi")
    app = fastapi.FastAPI(openapi_url=None)

    async def hand_written(request: Any) -> Any:
        return await _asgi_floor(request)

    # FastAPI injects the request by the parameter's annotation, which must be the class.
    hand_written.__annotations__["request"] = fastapi.Request
    app.add_api_route("/floor/", hand_written, methods=["POST"])
    app.router.routes.extend(_asgi_routes())
    return app
