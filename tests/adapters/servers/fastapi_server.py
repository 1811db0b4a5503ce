"""FastAPI, served by uvicorn: routes that take the ``verified`` dependency.

No ``from __future__ import annotations``: FastAPI reads the annotations at run time.
"""

from typing import Annotated

from fastapi import Depends, FastAPI
from starlette.routing import Route

from hookshield import Delivery, WebhookHandler
from hookshield.asgi import WebhookApp
from hookshield.fastapi import verified

from .common import BACKGROUND, HANDLERS, SMALL, record

app = FastAPI()


def add_route(path: str, handler: WebhookHandler) -> None:
    async def receive(delivery: Annotated[Delivery, Depends(verified(handler))]) -> dict[str, bool]:
        for event in delivery.events:
            record(event)
        return {"ok": True}

    receive.__name__ = "receive_" + path.rsplit("/", 1)[-1]
    app.post(path)(receive)


for sender, handler in HANDLERS.items():
    add_route(f"/hooks/{sender}", handler)
add_route("/hooks/small", SMALL)
app.router.routes.append(Route("/hooks/background", WebhookApp(BACKGROUND, background=True)))
