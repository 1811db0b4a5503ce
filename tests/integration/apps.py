"""What the durable-processing tests serve and run (see test_durable.py).

Settings come from the environment, as a deployment's would: ``HOOKSHIELD_TEST_INBOX``
(the SQLite inbox), ``HOOKSHIELD_TEST_LOG`` (where routes record what they ran),
``HOOKSHIELD_TEST_BROKER`` (a Redis URL, for the Celery app).

Each route run writes a ``start`` and an ``end`` line, ``<what> <event id> <pid>
<monotonic ns>``, each in one ``write`` to a file opened for appending, so lines from
several processes never interleave.  The event whose id ends in ``-slow`` sleeps 60 s
on its first run only (a marker file remembers it), so that a test can kill the
process in the middle of it; runs after that are quick.  Every other route run takes
``HOOKSHIELD_TEST_ROUTE_SECONDS`` (default 0).  With ``HOOKSHIELD_TEST_WORKERS=n``,
routes wait (30 s at most) until ``n`` processes have each started a run.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from hookshield import Event, WebhookHandler

SECRET = "whsec_durable"
LOG = Path(os.environ.get("HOOKSHIELD_TEST_LOG", os.devnull))
ROUTE_SECONDS = float(os.environ.get("HOOKSHIELD_TEST_ROUTE_SECONDS", "0"))
WORKERS = int(os.environ.get("HOOKSHIELD_TEST_WORKERS", "0"))
_all_started = False


def _wait_for_every_worker() -> None:
    """Hold the first runs until ``WORKERS`` processes have each started one (30 s at most).

    Workers started together may come up seconds apart on a loaded machine, and the
    first could run every delivery before the last has begun; held here, each one that
    is up takes part, and one that never leases a delivery still shows in the log.
    """
    global _all_started  # once seen, later runs skip the wait
    deadline = time.monotonic() + 30
    while not _all_started and time.monotonic() < deadline:
        lines = LOG.read_text().splitlines()
        pids = {line.split()[2] for line in lines if line.startswith("start ")}
        _all_started = len(pids) >= WORKERS
        if not _all_started:
            time.sleep(0.01)


def note(what: str, event: Event) -> None:
    line = f"{what} {event.id} {os.getpid()} {time.monotonic_ns()}\n".encode()
    fd = os.open(LOG, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line)
    finally:
        os.close(fd)


def record(event: Event) -> None:
    note("start", event)
    if WORKERS:
        _wait_for_every_worker()
    if str(event.id).endswith("-slow"):
        marker = LOG.with_name("slow-started")
        if not marker.exists():
            marker.touch()
            time.sleep(60)  # killed before this ends
    elif ROUTE_SECONDS:
        time.sleep(ROUTE_SECONDS)
    note("end", event)


hooks = WebhookHandler("mindpeeker", secret=SECRET)
hooks.on("*")(record)


def flask_app() -> object:
    """The web side: a Flask app storing every delivery in the SQLite inbox."""
    import flask

    from hookshield import SQLiteInbox
    from hookshield.flask import webhook_view

    app = flask.Flask(__name__)
    inbox = SQLiteInbox(os.environ["HOOKSHIELD_TEST_INBOX"])
    app.add_url_rule("/hooks", view_func=webhook_view(hooks, background=inbox))
    return app
