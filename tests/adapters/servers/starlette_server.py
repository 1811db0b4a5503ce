"""Starlette, served by uvicorn: ``WebhookMiddleware`` and ``WebhookApp`` routes."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import Route

from hookshield.asgi import WebhookApp, WebhookMiddleware

from .common import BACKGROUND, HANDLERS, SMALL

endpoints = {f"/hooks/{sender}": handler for sender, handler in HANDLERS.items()}
app = Starlette(
    routes=[
        Route("/hooks/small", WebhookApp(SMALL)),
        Route("/hooks/background", WebhookApp(BACKGROUND, background=True)),
    ],
    middleware=[Middleware(WebhookMiddleware, endpoints=endpoints)],
)
