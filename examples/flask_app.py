"""Receive MindPeeker and MOCO webhooks in a Flask app.

Run it (from the root of a checkout of the repository: hookshield is not on the
package index yet):

    python -m pip install -e '.[flask]'
    export MINDPEEKER_SECRET=whsec_try_me MOCO_SECRET=0123456789abcdef0123456789abcdef
    flask --app examples/flask_app.py run --port 5000

and send it signed test deliveries, as the real senders would, from another shell:

    python -m hookshield send http://127.0.0.1:5000/hooks/mindpeeker \\
        --provider mindpeeker --event session.completed --secret "$MINDPEEKER_SECRET"
    python -m hookshield send http://127.0.0.1:5000/hooks/moco \\
        --provider moco --event activity.create --secret "$MOCO_SECRET"
"""

from __future__ import annotations

import os

import flask

from hookshield import Delivery, Event, WebhookHandler
from hookshield.flask import verified, webhook_view

app = flask.Flask(__name__)

# MindPeeker: routes on the handler; webhook_view answers and dispatches to them.
mindpeeker = WebhookHandler("mindpeeker", secret=os.environ["MINDPEEKER_SECRET"])


@mindpeeker.on("session.completed", "analysis.*")
def on_result(event: Event) -> None:
    print("mindpeeker", event.type, event.id)


# background=True: MindPeeker gets its 200 at once and the route runs afterwards in a
# small pool of threads. Work not yet done is lost if the process dies.
app.add_url_rule("/hooks/mindpeeker", view_func=webhook_view(mindpeeker, background=True))

# MOCO: your own view, run only for a verified delivery seen for the first time.
moco = WebhookHandler("moco", secret=os.environ["MOCO_SECRET"])


@app.post("/hooks/moco")
@verified(moco)
def moco_hook(delivery: Delivery) -> dict[str, object]:
    for event in delivery.events:
        print("moco", event.type)
    return {"ok": True, "events": len(delivery.events)}
