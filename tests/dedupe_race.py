"""A worker process for the de-duplication races: kept small, as spawned children import it."""

from __future__ import annotations

import multiprocessing.synchronize
from multiprocessing.queues import Queue

from hookshield import Claim, DedupeStore, SQLiteDedupeStore

#: A lease no race outlasts: every claim after the first answers IN_PROGRESS.
LEASE = 600.0


def open_store(kind: str, where: str) -> DedupeStore:
    """A store of ``kind`` ("sqlite" or "redis") at ``where`` (a path or a URL)."""
    if kind == "sqlite":
        return SQLiteDedupeStore(where)
    import redis

    from hookshield.redis import RedisDedupeStore

    return RedisDedupeStore(redis.Redis.from_url(where))


def claim_all(store: DedupeStore, keys: list[str]) -> list[str]:
    """Claim every key of ``keys``; the keys this caller got (answered NEW)."""
    return [key for key in keys if store.claim(key, LEASE) is Claim.NEW]


def race(
    kind: str,
    where: str,
    keys: list[str],
    start: multiprocessing.synchronize.Barrier,
    results: Queue[list[str]],
) -> None:
    """In a child process: open the store, wait for the others, claim every key."""
    store = open_store(kind, where)
    store.claim("warm-up", LEASE)  # connect before the start, as a worker would
    start.wait(timeout=60)
    results.put(claim_all(store, keys))
