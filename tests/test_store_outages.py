"""A shared store that is locked, restarting or forgetful, seen from the handler.

Real components only: an SQLite file locked by another connection's write
transaction, and redis-servers of the test's own that are stopped and started again
(``tests/redis_server.py``), with and without an append-only file.
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

from hookshield import SQLiteDedupeStore, WebhookHandler
from hookshield.testing import sample_delivery

from .conftest import CREDENTIALS

SECRET = CREDENTIALS["mindpeeker"]["secret"]


def _handler(store: object, **options: object) -> tuple[WebhookHandler, list[str]]:
    handler = WebhookHandler("mindpeeker", secret=SECRET, dedupe=store, **options)  # type: ignore[arg-type]
    ran: list[str] = []
    handler.on("*")(lambda event: ran.append(event.id))
    return handler, ran


def _delivery() -> tuple[bytes, dict[str, str]]:
    body, headers = sample_delivery("mindpeeker", "session.completed", secret=SECRET)
    return body, headers


def _write_locked(path: Path) -> sqlite3.Connection:
    """Another process's connection to the store's file, in a write transaction."""
    holder = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    holder.execute("BEGIN IMMEDIATE")
    return holder


# -- a locked SQLite file: 503 before the sender or the server gives up ------------------


def test_a_locked_sqlite_store_answers_503_with_retry_after_before_senders_give_up(
    tmp_path: Path,
) -> None:
    path = tmp_path / "dedupe.sqlite3"
    store = SQLiteDedupeStore(path)  # the default timeout, as a deployment has it
    handler, ran = _handler(store)
    body, headers = _delivery()
    assert store.claim("warm-up", 60)  # the file and its table exist, in WAL mode
    holder = _write_locked(path)
    try:
        started = time.monotonic()
        outcome = handler.handle(body, headers)
        waited = time.monotonic() - started
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert outcome.status == 503
    assert ("Retry-After", "30") in outcome.response_headers()
    assert ran == []
    # Senders wait 5 to 10 s for an answer, and `gunicorn --timeout 5` kills a worker
    # blocked for 5 s: the 503 must come well before either (it took 10 s).
    assert waited < 5
    assert handler.handle(body, headers).status == 200  # once the lock is gone, it runs
    assert ran != []
