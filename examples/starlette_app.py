"""Receive Momentum (SparkPost) and Moonsense webhooks in a Starlette app.

Run it (from the root of a checkout of the repository: hookshield is not on the
package index yet):

    python -m pip install -e '.[starlette]' uvicorn
    export MOMENTUM_TOKEN=token_try_me MOONSENSE_SECRET=moonsense_try_me
    uvicorn --app-dir examples starlette_app:app --port 8000

and send it signed test deliveries, as the real senders would, from another shell:

    python -m hookshield send http://127.0.0.1:8000/hooks/momentum \\
        --provider momentum --event delivery --token "$MOMENTUM_TOKEN"
    python -m hookshield send http://127.0.0.1:8000/hooks/moonsense \\
        --provider moonsense --event session.created --secret "$MOONSENSE_SECRET"
"""

from __future__ import annotations

import os

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from hookshield import Event, WebhookHandler
from hookshield.asgi import WebhookApp, WebhookMiddleware

# Momentum sends batches of up to 10,000 events and retries for hours: acknowledge
# at once (background=True) and handle the events after the answer has gone out.
momentum = WebhookHandler("momentum", token=os.environ["MOMENTUM_TOKEN"])


@momentum.on("bounce", "spam_complaint", "list_unsubscribe", "link_unsubscribe")
def suppress(event: Event) -> None:
    print("momentum", event.type, event.id)


moonsense = WebhookHandler("moonsense", secret=os.environ["MOONSENSE_SECRET"])


@moonsense.on("*")
async def on_moonsense(event: Event) -> None:
    print("moonsense", event.type)


async def home(request: Request) -> PlainTextResponse:
    return PlainTextResponse("webhook receiver")


app = Starlette(
    routes=[
        Route("/", home),
        Route("/hooks/momentum", WebhookApp(momentum, background=True)),
    ],
    # The middleware serves its endpoints in front of the whole app.
    middleware=[Middleware(WebhookMiddleware, endpoints={"/hooks/moonsense": moonsense})],
)
