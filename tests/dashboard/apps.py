"""Apps the browser tests serve with real servers: the dashboard mounted in Flask and ASGI.

Each reads the inbox's path from ``HOOKSHIELD_TEST_INBOX``, mounts the dashboard at
``/ops/inbox`` beside a route of its own, and is served by gunicorn (Flask) or uvicorn
(Starlette); ``mindpeeker`` is the handler ``hookshield inbox serve --handler`` loads.
"""

from __future__ import annotations

import os

import flask
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Mount, Route
from werkzeug.middleware.dispatcher import DispatcherMiddleware

from hookshield import SQLiteInbox, WebhookHandler
from hookshield.dashboard import asgi_app, wsgi_app

from .support import SECRET

mindpeeker = WebhookHandler("mindpeeker", secret=SECRET)


def _inbox() -> SQLiteInbox:
    return SQLiteInbox(os.environ["HOOKSHIELD_TEST_INBOX"], create=False)


def flask_app() -> flask.Flask:
    """A Flask app with the dashboard at /ops/inbox."""
    app = flask.Flask(__name__)
    app.add_url_rule("/", view_func=lambda: "the app's own page")
    app.wsgi_app = DispatcherMiddleware(  # type: ignore[method-assign]
        app.wsgi_app, {"/ops/inbox": wsgi_app(_inbox(), handlers=[mindpeeker])}
    )
    return app


def starlette_app() -> Starlette:
    """A Starlette app with the dashboard mounted at /ops/inbox."""
    return Starlette(
        routes=[
            Route("/", lambda request: PlainTextResponse("the app's own page")),
            Mount("/ops/inbox", asgi_app(_inbox(), handlers=[mindpeeker])),
        ]
    )
