"""The web side of the PostgreSQL load test: gunicorn workers on one PostgreSQL database.

Read from the environment, as a deployment's would: ``HOOKSHIELD_TEST_DSN`` (the
database), ``HOOKSHIELD_INBOX_KEY`` (the inbox's key).  Claims live in
``PostgresDedupeStore``, with a short lease, so that a claim left by a killed worker
runs out within the test; deliveries go to ``PostgresInbox``, for ``hookshield
worker`` to run with ``tests.integration.apps:hooks`` (which logs each run).
"""

from __future__ import annotations

import os

from flask import Flask

from hookshield import WebhookHandler
from hookshield.flask import webhook_view
from hookshield.postgres import PostgresDedupeStore, PostgresInbox

from ..integration.apps import SECRET

DSN = os.environ["HOOKSHIELD_TEST_DSN"]

handler = WebhookHandler(
    "mindpeeker", secret=SECRET, dedupe=PostgresDedupeStore(DSN), dedupe_lease=3.0
)
app = Flask(__name__)
app.add_url_rule("/hooks", view_func=webhook_view(handler, background=PostgresInbox(DSN)))
