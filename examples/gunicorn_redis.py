"""Receive MindPeeker webhooks in a Flask app served by four workers, de-duplicated in Redis.

Each gunicorn worker is a process of its own; the in-memory store would let a retry
that reaches another worker run again.  Here every worker shares one Redis store.
Run it (from the repository root, with a Redis server on localhost):

    python -m pip install -e '.[flask,redis]' gunicorn   # from a hookshield checkout
    export MINDPEEKER_SECRET=whsec_try_me REDIS_URL=redis://localhost:6379/0
    gunicorn -w 4 -b 127.0.0.1:8000 examples.gunicorn_redis:app

and send it the same signed delivery twice, as a retrying sender would, from another
shell (each `send` signs the body afresh; the body, and so the event id, stays the same):

    printf '%s' '{"id":"evt_1","type":"session.completed","created_at":"2026-01-01T00:00:00Z","data":{"session_id":"sess_1"}}' > delivery.json
    for attempt in 1 2; do
        python -m hookshield send http://127.0.0.1:8000/hooks/mindpeeker \\
            --provider mindpeeker --body delivery.json --secret "$MINDPEEKER_SECRET"
    done

The route prints once, whichever workers the two attempts reach.
"""

from __future__ import annotations

import os

import flask
import redis

from hookshield import Event, WebhookHandler
from hookshield.flask import webhook_view
from hookshield.redis import RedisDedupeStore

app = flask.Flask(__name__)

# redis-py connects lazily, and its pool opens new connections in a forked worker, so
# the store may be made before gunicorn forks (--preload) as well as in each worker.
store = RedisDedupeStore(
    redis.Redis.from_url(os.environ.get("REDIS_URL", "redis://localhost:6379/0")),
    prefix="hookshield:example:",
)
mindpeeker = WebhookHandler("mindpeeker", secret=os.environ["MINDPEEKER_SECRET"], dedupe=store)


@mindpeeker.on("session.completed", "analysis.*")
def on_result(event: Event) -> None:
    print(f"worker {os.getpid()}: mindpeeker {event.type} {event.id}", flush=True)


app.add_url_rule("/hooks/mindpeeker", view_func=webhook_view(mindpeeker))
