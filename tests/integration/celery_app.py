"""The Celery app of the durable-processing tests: ``celery -A tests.integration.celery_app``."""

from __future__ import annotations

import os

import celery

from hookshield.celery import CeleryInbox

from .apps import hooks

app = celery.Celery("hookshield_tests", broker=os.environ.get("HOOKSHIELD_TEST_BROKER"))
app.conf.update(
    # Redis gives a message whose worker died back after this long: short for the test,
    # and longer than any route here; and the worker looks for such messages every
    # second (by default every 10 s, and only every 10th look: 100 s).
    broker_transport_options={
        "visibility_timeout": 3,
        "unacked_restore_interval": 1,
        "unacked_restore_throttle": 1,
    },
    worker_prefetch_multiplier=1,
    broker_connection_retry_on_startup=True,
    task_ignore_result=True,
)
inbox = CeleryInbox(app, hooks, key="durable-tests-inbox-key", max_retries=3)
