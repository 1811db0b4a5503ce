"""The handlers: one per sender, with their routes."""

import os

from hookshield import Event, WebhookHandler

moonsense = WebhookHandler("moonsense", secret=os.environ["MOONSENSE_SECRET"])


@moonsense.on("session.*", "bundle.received")
def on_session(event: Event) -> None:
    print("moonsense", event.type)


moco = WebhookHandler("moco", secret=os.environ["MOCO_SECRET"])
