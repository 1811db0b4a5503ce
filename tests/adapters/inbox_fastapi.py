"""A FastAPI app whose route stores each delivery in an inbox (tests/adapters/test_inbox.py).

No ``from __future__ import annotations`` here: FastAPI reads the route's annotations
at run time, and they name the handler and inbox given to :func:`app_for`.
"""

from typing import Annotated, Any

from fastapi import Depends, FastAPI

from hookshield import Delivery, Inbox, WebhookHandler
from hookshield.fastapi import verified, verified_route


def app_for(handler: WebhookHandler, inbox: Inbox, *, decorated: bool = False) -> FastAPI:
    """An app whose ``POST /hooks`` answers with the stored delivery's event count.

    The route gets the delivery from the dependency, or with ``decorated`` from
    :func:`verified_route`.
    """
    app = FastAPI()
    if decorated:

        @app.post("/hooks")
        @verified_route(handler, background=inbox)
        def decorated_hook(stored: Delivery) -> dict[str, Any]:
            return {"stored": stored.id, "events": len(stored.events)}

        return app
    Stored = Annotated[Delivery, Depends(verified(handler, background=inbox))]

    @app.post("/hooks")
    async def hook(stored: Stored) -> dict[str, Any]:
        return {"stored": stored.id, "events": len(stored.events)}

    return app
