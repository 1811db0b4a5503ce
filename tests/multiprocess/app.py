"""The app the multi-process tests serve: one MindPeeker endpoint on a shared store.

Read from the environment, as a deployment would configure it:

* ``HOOKSHIELD_STORE``: ``sqlite:<path>`` or a ``redis://`` URL;
* ``HOOKSHIELD_LEASE``: the claim's lease, in seconds;
* ``HOOKSHIELD_TEST_LOG``: a file each dispatch appends ``<marker> <pid>`` to, and
  each worker process ``up - <pid>`` when it has loaded the app.

A delivery whose marker starts with ``slow-`` sleeps on its first attempt (a file
beside the log says whether one began), so that the test can kill the worker running
it, or let gunicorn's worker timeout end it; its retry then runs at once.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from flask import Flask
from starlette.applications import Starlette
from starlette.routing import Route

from hookshield import Event, SQLiteDedupeStore, WebhookHandler
from hookshield.asgi import WebhookApp
from hookshield.flask import webhook_view

from . import SECRET

LOG = Path(os.environ["HOOKSHIELD_TEST_LOG"])


def _store() -> object:
    where = os.environ["HOOKSHIELD_STORE"]
    if where.startswith("sqlite:"):
        return SQLiteDedupeStore(where.removeprefix("sqlite:"))
    import redis

    from hookshield.redis import RedisDedupeStore

    return RedisDedupeStore(redis.Redis.from_url(where))


def _note(line: str) -> None:
    # One write on an O_APPEND descriptor: lines from several processes never mix.
    fd = os.open(LOG, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    try:
        os.write(fd, f"{line} {os.getpid()}\n".encode())
    finally:
        os.close(fd)


handler = WebhookHandler(
    "mindpeeker",
    secret=SECRET,
    dedupe=_store(),  # type: ignore[arg-type]
    dedupe_lease=float(os.environ.get("HOOKSHIELD_LEASE", "300")),
)


# Each worker process says it is up: the test waits for all of them before it sends, so
# that the first worker to start does not take every request alone.
_note("up -")


@handler.on("*")
def record(event: Event) -> None:
    marker = str(event.data.get("marker"))
    if marker.startswith("slow-"):
        began = LOG.with_name(f"began-{marker}")
        if not began.exists():
            began.touch()
            _note(f"began {marker}")
            time.sleep(60)  # the test kills the worker first
    # A route takes a moment, as real ones do: attempts at one delivery overlap, and
    # the server hands concurrent requests to several workers.
    time.sleep(0.02)
    _note(f"done {marker}")


app = Flask(__name__)
app.add_url_rule("/hooks/mindpeeker", view_func=webhook_view(handler))
asgi_app = Starlette(routes=[Route("/hooks/mindpeeker", WebhookApp(handler))])
