"""Flask, served by gunicorn: ``webhook_view`` for every endpoint."""

from __future__ import annotations

import flask

from hookshield.flask import webhook_view

from .common import BACKGROUND, HANDLERS, SMALL

app = flask.Flask(__name__)
for sender, handler in HANDLERS.items():
    app.add_url_rule(f"/hooks/{sender}", view_func=webhook_view(handler))
app.add_url_rule("/hooks/small", endpoint="small", view_func=webhook_view(SMALL))
app.add_url_rule(
    "/hooks/background", endpoint="background", view_func=webhook_view(BACKGROUND, background=True)
)
