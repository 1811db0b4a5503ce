"""Receive MOCO and MindPeeker webhooks in a FastAPI app.

Run it (from the root of a checkout of the repository: hookshield is not on the
package index yet):

    python -m pip install -e '.[fastapi]' uvicorn
    export MOCO_SECRET=0123456789abcdef0123456789abcdef MINDPEEKER_SECRET=whsec_try_me
    uvicorn --app-dir examples fastapi_app:app --port 8000

and send it signed test deliveries, as the real senders would, from another shell:

    python -m hookshield send http://127.0.0.1:8000/hooks/moco \\
        --provider moco --event activity.create --secret "$MOCO_SECRET"
    python -m hookshield send http://127.0.0.1:8000/hooks/mindpeeker \\
        --provider mindpeeker --event session.completed --secret "$MINDPEEKER_SECRET"

Both endpoints are FastAPI routes with the ``verified`` dependency, so a forged or
malformed delivery is refused as FastAPI refuses anything, ``{"detail": reason}``.
"""

import os
from typing import Annotated

from fastapi import Depends, FastAPI

from hookshield import Delivery, Event, WebhookHandler
from hookshield.fastapi import verified

app = FastAPI()

# MOCO: a route that gets the verified delivery from a dependency. A forged or
# oversized delivery never reaches it, and a duplicate is answered 200 without it.
moco = WebhookHandler("moco", secret=os.environ["MOCO_SECRET"])
MocoDelivery = Annotated[Delivery, Depends(verified(moco))]


@app.post("/hooks/moco")
async def moco_hook(delivery: MocoDelivery) -> dict[str, list[str]]:
    return {"received": [event.type for event in delivery.events]}


# MindPeeker: routes on the handler, to which the FastAPI route dispatches the
# verified delivery. If one of them raises, the answer is 500 and the delivery is
# forgotten by the de-duplication store, so that MindPeeker's retry runs it again.
mindpeeker = WebhookHandler("mindpeeker", secret=os.environ["MINDPEEKER_SECRET"])
MindPeekerDelivery = Annotated[Delivery, Depends(verified(mindpeeker))]


@mindpeeker.on("session.*")
async def on_session(event: Event) -> None:
    print("mindpeeker", event.type, event.id)


@app.post("/hooks/mindpeeker")
async def mindpeeker_hook(delivery: MindPeekerDelivery) -> dict[str, bool]:
    await mindpeeker.dispatch_async(delivery)
    return {"ok": True}
