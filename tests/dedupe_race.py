"""Worker processes for the de-duplication races: kept small, as spawned children import it."""

from __future__ import annotations

import multiprocessing.synchronize
from multiprocessing.queues import Queue

from hookshield import Claim, DedupeStore, SQLiteDedupeStore

#: A lease no race outlasts: every claim after the first answers IN_PROGRESS.
LEASE = 600.0
#: MindPeeker's secret in the attempts' handlers.
SECRET = "whsec_owners"


def open_store(kind: str, where: str) -> DedupeStore:
    """A store of ``kind`` ("sqlite", "redis" or "postgres") at ``where`` (a path or a URL)."""
    if kind == "sqlite":
        return SQLiteDedupeStore(where)
    if kind == "postgres":
        from hookshield.postgres import PostgresDedupeStore

        return PostgresDedupeStore(where)
    import redis

    from hookshield.redis import RedisDedupeStore

    return RedisDedupeStore(redis.Redis.from_url(where))


def claim_all(store: DedupeStore, keys: list[str]) -> dict[str, str]:
    """Claim every key of ``keys``; the keys this caller got (answered NEW), with their tokens."""
    got = {}
    for key in keys:
        state, token = store.claim(key, LEASE)
        if state is Claim.NEW:
            assert token is not None
            got[key] = token
    return got


def race(
    kind: str,
    where: str,
    keys: list[str],
    start: multiprocessing.synchronize.Barrier,
    results: Queue[dict[str, str]],
) -> None:
    """In a child process: open the store, wait for the others, claim every key."""
    store = open_store(kind, where)
    store.claim("warm-up", LEASE)  # connect before the start, as a worker would
    start.wait(timeout=60)
    results.put(claim_all(store, keys))


def attempt(
    kind: str,
    where: str,
    lease: float,
    delivery: tuple[bytes, dict[str, str]],
    fail: bool,
    running: multiprocessing.synchronize.Event,
    proceed: multiprocessing.synchronize.Event,
    results: Queue[tuple[int, int]],
) -> None:
    """In a child process: one attempt at ``delivery``, as a worker makes it.

    Its route says it is ``running``, waits to ``proceed``, then raises if ``fail``;
    the attempt's ``(status, dispatched)`` goes to ``results``.
    """
    from hookshield import WebhookHandler

    handler = WebhookHandler(
        "mindpeeker", secret=SECRET, dedupe=open_store(kind, where), dedupe_lease=lease
    )

    @handler.on("*")
    def route(event: object) -> None:
        running.set()
        if not proceed.wait(timeout=60):
            raise TimeoutError("the test never let this attempt proceed")
        if fail:
            raise RuntimeError("this attempt fails")

    outcome = handler.handle(*delivery)
    results.put((outcome.status, outcome.dispatched))
