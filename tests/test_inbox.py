"""SQLiteInbox: what it stores, leasing one delivery to one worker, and settling it."""

from __future__ import annotations

import dataclasses
import json
import math
import os
import signal
import sqlite3
import stat
import threading
import time
from pathlib import Path

import pytest

import hookshield
from hookshield import Inbox, SQLiteInbox, StoredDelivery, WorkerInbox
from hookshield._durable.inbox import LEASE_ENDED, new_id, stored_delivery
from hookshield._durable.worker import open_stored
from hookshield.testing import event_types, sample_delivery

from .conftest import CREDENTIALS, make_handler

NOW = 1_800_000_000.0


def stored(index: int = 0, *, handler: str = "mindpeeker", at: float = NOW) -> StoredDelivery:
    return StoredDelivery(
        id=new_id(at + index / 1000),
        sender=handler,
        handler=handler,
        body=b'{"n": %d}' % index,
        headers=(("content-type", "application/json"), ("x-repeated", "a"), ("x-repeated", "b")),
        received=at + index / 1000,
        event_types=("session.completed",),
        next_attempt=at,
    )


@pytest.fixture
def inbox(tmp_path: Path) -> SQLiteInbox:
    return SQLiteInbox(tmp_path / "inbox.db", lease=60.0)


def test_is_an_inbox_and_a_worker_inbox(inbox: SQLiteInbox) -> None:
    assert isinstance(inbox, Inbox)
    assert isinstance(inbox, WorkerInbox)
    assert repr(inbox).startswith("SQLiteInbox(")


def test_a_stored_delivery_reads_back_exactly(inbox: SQLiteInbox) -> None:
    delivery = stored()
    inbox.put(delivery)
    assert inbox.get(delivery.id) == delivery
    assert inbox.get("missing") is None


def test_the_file_is_readable_by_its_owner_only(inbox: SQLiteInbox) -> None:
    inbox.put(stored())
    assert stat.S_IMODE(os.stat(inbox.path).st_mode) == 0o600


def test_the_file_is_in_wal_mode_with_full_sync(inbox: SQLiteInbox) -> None:
    inbox.put(stored())
    db = sqlite3.connect(inbox.path)
    try:
        assert db.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    finally:
        db.close()
    own = inbox._connection()
    assert own.execute("PRAGMA synchronous").fetchone() == (2,)  # FULL


@pytest.mark.parametrize("returning", [True, False])
def test_lease_takes_the_oldest_due_delivery_once(tmp_path: Path, returning: bool) -> None:
    inbox = SQLiteInbox(tmp_path / "inbox.db", lease=60.0)
    inbox._returning = returning  # both ways of leasing: RETURNING, and BEGIN IMMEDIATE
    first, second = stored(0), stored(1)
    inbox.put(second)
    inbox.put(first)
    taken = inbox.lease(NOW, ["mindpeeker"])
    assert taken is not None
    assert (taken.id, taken.state, taken.attempts) == (first.id, "leased", 1)
    assert taken.next_attempt == NOW + 60.0
    again = inbox.lease(NOW, ["mindpeeker"])
    assert again is not None and again.id == second.id
    assert inbox.lease(NOW, ["mindpeeker"]) is None


def test_lease_skips_deliveries_not_yet_due_and_other_handlers(inbox: SQLiteInbox) -> None:
    inbox.put(stored(0, handler="moco"))
    later = stored(1, at=NOW + 100)
    inbox.put(later)
    assert inbox.lease(NOW, ["mindpeeker"]) is None
    assert inbox.lease(NOW, []) is None
    taken = inbox.lease(NOW + 100, ["mindpeeker"])
    assert taken is not None and taken.id == later.id


def test_an_ended_lease_is_taken_again_and_fences_the_first_worker(inbox: SQLiteInbox) -> None:
    inbox.put(stored())
    first = inbox.lease(NOW, ["mindpeeker"])
    assert first is not None
    assert inbox.lease(NOW + 59, ["mindpeeker"]) is None  # still held
    second = inbox.lease(NOW + 61, ["mindpeeker"])
    assert second is not None and second.attempts == 2
    # The first worker was presumed dead; its late answers change nothing.
    assert not inbox.done(first)
    assert not inbox.retry(first, NOW + 500, "late")
    assert not inbox.dead(first, "late")
    assert inbox.done(second)
    got = inbox.get(second.id)
    assert got is not None and got.state == "done"


@pytest.mark.parametrize("returning", [True, False])
def test_a_delivery_leased_again_after_its_lease_ended_says_so(
    tmp_path: Path, returning: bool
) -> None:
    inbox = SQLiteInbox(tmp_path / "inbox.db", lease=60.0)
    inbox._returning = returning  # both ways of leasing: RETURNING, and BEGIN IMMEDIATE
    inbox.put(stored())
    first = inbox.lease(NOW, ["mindpeeker"])
    assert first is not None and inbox.retry(first, NOW + 10, "RuntimeError: boom")
    second = inbox.lease(NOW + 10, ["mindpeeker"])  # after a settled retry: its error
    assert second is not None and second.last_error == "RuntimeError: boom"
    third = inbox.lease(NOW + 71, ["mindpeeker"])  # the second lease ran out unsettled
    assert third is not None and third.attempts == 3
    assert third.last_error == LEASE_ENDED


def test_retry_makes_it_due_later_with_the_error(inbox: SQLiteInbox) -> None:
    inbox.put(stored())
    taken = inbox.lease(NOW, ["mindpeeker"])
    assert taken is not None
    assert inbox.retry(taken, NOW + 30, "RuntimeError: down")
    got = inbox.get(taken.id)
    assert got is not None
    assert (got.state, got.next_attempt, got.last_error) == (
        "pending",
        NOW + 30,
        "RuntimeError: down",
    )
    assert inbox.lease(NOW + 29, ["mindpeeker"]) is None
    assert inbox.lease(NOW + 30, ["mindpeeker"]) is not None


def test_dead_then_requeue(inbox: SQLiteInbox) -> None:
    inbox.put(stored())
    taken = inbox.lease(NOW, ["mindpeeker"])
    assert taken is not None
    assert inbox.dead(taken, "gave up")
    assert inbox.lease(NOW + 10**6, ["mindpeeker"]) is None  # never due again by itself
    assert [d.id for d in inbox.list("dead")] == [taken.id]
    assert inbox.counts() == {"pending": 0, "leased": 0, "done": 0, "dead": 1}
    assert inbox.requeue([taken.id, "missing"]) == 1
    got = inbox.get(taken.id)
    assert got is not None
    assert (got.state, got.attempts, got.last_error) == ("pending", 0, None)


def test_requeue_leaves_a_leased_delivery_to_its_worker(inbox: SQLiteInbox) -> None:
    inbox.put(stored())
    taken = inbox.lease(NOW, ["mindpeeker"])
    assert taken is not None
    assert inbox.requeue([taken.id]) == 0
    got = inbox.get(taken.id)
    assert got is not None and (got.state, got.attempts) == ("leased", 1)
    assert inbox.done(taken)  # the worker's settle still matches its own lease


def test_requeue_dead_walks_the_ids_forward_in_batches(inbox: SQLiteInbox) -> None:
    for index in range(5):
        inbox.put(stored(index))
    taken = [inbox.lease(NOW, ["mindpeeker"]) for _ in range(5)]
    for delivery in taken[:4]:
        assert delivery is not None and inbox.dead(delivery, "gave up")
    ids = sorted(d.id for d in taken[:4] if d is not None)
    assert inbox.requeue_dead(limit=3) == (3, ids[2])
    # One requeued delivery is dead-lettered again meanwhile: the walk goes on past it.
    again = inbox.lease(NOW, ["mindpeeker"])
    assert again is not None and again.id in ids[:3] and inbox.dead(again, "again")
    assert inbox.requeue_dead(ids[2], limit=3) == (1, ids[3])
    assert inbox.requeue_dead(ids[3], limit=3) == (0, None)
    assert inbox.counts() == {"pending": 3, "leased": 1, "done": 0, "dead": 1}


def test_list_filters_by_state_and_limits(inbox: SQLiteInbox) -> None:
    for index in range(5):
        inbox.put(stored(index))
    assert len(inbox.list(limit=3)) == 3
    assert len(inbox.list("pending")) == 5
    assert inbox.list("done") == []
    with pytest.raises(ValueError, match="state must be one of"):
        inbox.list("finished")  # type: ignore[arg-type]


def test_purge_deletes_old_deliveries_in_one_state_in_batches(inbox: SQLiteInbox) -> None:
    for index in range(5):
        inbox.put(stored(index))
        taken = inbox.lease(NOW, ["mindpeeker"])
        assert taken is not None and inbox.done(taken)
    inbox.put(stored(9))
    assert inbox.purge("done", NOW + 1, limit=2) == 2
    assert inbox.purge("done", NOW + 1) == 3
    assert inbox.purge("done", NOW + 1) == 0
    assert inbox.counts()["pending"] == 1


def test_bad_options_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="lease"):
        SQLiteInbox(tmp_path / "x.db", lease=0)
    for lease in (math.inf, math.nan, -1.0):
        with pytest.raises(ValueError, match="lease must be a positive, finite"):
            SQLiteInbox(tmp_path / "x.db", lease=lease)
    with pytest.raises(TypeError, match="lease must be a number \\(seconds\\), not str"):
        SQLiteInbox(tmp_path / "x.db", lease="60")  # type: ignore[arg-type]
    for timeout in (math.inf, math.nan, -0.5):
        with pytest.raises(ValueError, match="timeout"):
            SQLiteInbox(tmp_path / "x.db", timeout=timeout)
    assert SQLiteInbox(tmp_path / "x.db", timeout=0).timeout == 0.0  # fail at once
    with pytest.raises(ValueError, match="a file that every worker opens, not ':memory:'"):
        SQLiteInbox(":memory:")
    with pytest.raises(ValueError, match="not ''"):
        SQLiteInbox("")
    with pytest.raises(IsADirectoryError, match="is a directory"):
        SQLiteInbox(tmp_path)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        SQLiteInbox(tmp_path / "missing" / "x.db")
    with pytest.raises(TypeError, match="file path"):
        SQLiteInbox(42)  # type: ignore[arg-type]
    assert not any(tmp_path.iterdir())  # nothing was created


def test_threads_each_get_a_connection_and_lease_distinct_rows(inbox: SQLiteInbox) -> None:
    for index in range(60):
        inbox.put(stored(index))
    taken: list[str] = []
    lock = threading.Lock()

    def take() -> None:
        while (delivery := inbox.lease(NOW, ["mindpeeker"])) is not None:
            with lock:
                taken.append(delivery.id)
            assert inbox.done(delivery)
        inbox.close()
        inbox.close()  # closing again is harmless

    threads = [threading.Thread(target=take) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(taken) == 60 == len(set(taken))


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork()")
def test_a_forked_child_opens_its_own_connection(inbox: SQLiteInbox) -> None:
    inbox.put(stored(0))
    child_row = stored(1)
    pid = os.fork()
    if pid == 0:  # pragma: no cover - runs in the child, whose coverage is not collected
        code = 1
        try:
            inbox.put(child_row)
            code = 0
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert inbox.get(child_row.id) == child_row
    inbox.put(stored(2))  # the parent's connection still works


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork()")
def test_a_child_forked_while_a_thread_writes_can_write(tmp_path: Path) -> None:
    inbox = SQLiteInbox(tmp_path / "inbox.db", timeout=2.0)
    inbox.put(stored(0))
    child_row = stored(1)
    # As if another thread were inside a write at the fork: that thread does not
    # exist in the child, and would never release the lock there.
    with inbox._thread_write_lock, inbox._setup_lock:
        pid = os.fork()
        if pid == 0:  # pragma: no cover - runs in the child
            code = 1
            try:
                inbox.put(child_row)
                code = 0
            finally:
                os._exit(code)
    deadline = time.monotonic() + 10
    while (ended := os.waitpid(pid, os.WNOHANG))[0] == 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    status = ended[1]
    if ended[0] == 0:  # pragma: no cover - the child hangs: the failure
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        pytest.fail("the forked child hung on a lock taken before the fork")
    assert os.waitstatus_to_exitcode(status) == 0
    assert inbox.get(child_row.id) == child_row


def test_a_locked_file_makes_put_fail_within_the_timeout(tmp_path: Path) -> None:
    inbox = SQLiteInbox(tmp_path / "inbox.db", timeout=0.05)
    inbox.put(stored(0))
    holder = sqlite3.connect(inbox.path, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        with pytest.raises(sqlite3.OperationalError, match="locked"):
            inbox.put(stored(1))
    finally:
        holder.execute("ROLLBACK")
        holder.close()


@pytest.mark.skipif(not hasattr(os, "fork"), reason="flock is POSIX")
def test_a_writer_queued_behind_another_process_fails_within_the_timeout(
    tmp_path: Path,
) -> None:
    import fcntl

    inbox = SQLiteInbox(tmp_path / "inbox.db", timeout=0.5)
    inbox.put(stored(0))
    later = stored(1)
    # Another open file description of the writer lock is what another process holds.
    other = os.open(f"{inbox.path}-writer", os.O_RDWR)
    fcntl.flock(other, fcntl.LOCK_EX)
    try:
        started = time.monotonic()
        with pytest.raises(sqlite3.OperationalError, match="database is locked"):
            inbox.put(later)
        assert 0.5 <= time.monotonic() - started < 1.5
    finally:
        os.close(other)
    inbox.put(later)  # the lock released, writing works again
    assert inbox.get(later.id) == later


def test_a_writer_queued_behind_another_thread_fails_within_the_timeout(
    tmp_path: Path,
) -> None:
    inbox = SQLiteInbox(tmp_path / "inbox.db", timeout=0.5)
    inbox.put(stored(0))
    later = stored(1)
    holding, release = threading.Event(), threading.Event()

    def hold() -> None:
        with inbox._writing():  # a thread in the middle of a long write
            holding.set()
            release.wait(10)

    thread = threading.Thread(target=hold)
    thread.start()
    try:
        assert holding.wait(10)
        started = time.monotonic()
        with pytest.raises(sqlite3.OperationalError, match="database is locked"):
            inbox.put(later)
        assert 0.5 <= time.monotonic() - started < 1.5
    finally:
        release.set()
        thread.join(10)
    inbox.put(later)
    assert inbox.get(later.id) == later


def test_import_hookshield_does_not_load_sqlite3() -> None:
    import subprocess
    import sys

    code = "import sys, hookshield; print('sqlite3' in sys.modules); hookshield.SQLiteInbox"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "False"
    with pytest.raises(AttributeError, match="no attribute 'Nope'"):
        hookshield.Nope  # noqa: B018


# -- opening an inbox that exists, and only that -------------------------------------


def test_create_false_refuses_a_missing_file_and_creates_nothing(tmp_path: Path) -> None:
    for create, read_only in ((False, False), (True, True)):
        with pytest.raises(FileNotFoundError, match="no such file") as raised:
            SQLiteInbox(tmp_path / "typo.db", create=create, read_only=read_only)
        assert raised.value.filename == str(tmp_path / "typo.db")
    assert not any(tmp_path.iterdir())


def test_create_false_refuses_a_file_that_is_not_an_inbox(tmp_path: Path) -> None:
    text = tmp_path / "notes.db"
    text.write_text("these are notes, not a database\n" * 100)
    empty = tmp_path / "empty.db"
    empty.touch()
    dedupe = tmp_path / "dedupe.db"
    store = hookshield.SQLiteDedupeStore(dedupe)
    store.claim("key", 60)
    store.close()
    other = tmp_path / "other.db"
    db = sqlite3.connect(other)
    db.execute("CREATE TABLE hookshield_inbox (id TEXT PRIMARY KEY, body BLOB)")
    db.close()
    cases = {
        text: "file is not a database",
        empty: "it has no hookshield_inbox table",
        dedupe: "it has no hookshield_inbox table",
        other: "it has a table of another shape",
    }
    for path, reason in cases.items():
        for create, read_only in ((False, False), (True, True)):
            inbox = SQLiteInbox(path, create=create, read_only=read_only)
            with pytest.raises(sqlite3.DatabaseError, match="is not a hookshield inbox") as raised:
                inbox.counts()
            assert reason in str(raised.value)
    # The dedupe store's file gained no inbox table.
    db = sqlite3.connect(dedupe)
    tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    db.close()
    assert tables == {"hookshield_dedupe"}
    assert text.read_text().startswith("these are notes")


def test_an_existing_inbox_opens_and_read_only_cannot_write(tmp_path: Path) -> None:
    path = tmp_path / "inbox.db"
    SQLiteInbox(path).put(stored(0))
    writer = SQLiteInbox(path, create=False, lease=60.0)
    writer.put(stored(1))
    assert writer.lease(NOW, ["mindpeeker"]) is not None
    reader = SQLiteInbox(path, read_only=True)
    assert reader.counts() == {"pending": 1, "leased": 1, "done": 0, "dead": 0}
    assert "read_only=True" in repr(reader) and "create=False" in repr(writer)
    with pytest.raises(sqlite3.OperationalError, match="readonly"):
        reader.put(stored(2))
    assert reader.counts()["pending"] == 1


def test_find_ids_matches_a_prefix_and_counts_the_matches(inbox: SQLiteInbox) -> None:
    for delivery_id in ("abc1", "abc2", "abd3", "b"):
        inbox.put(dataclasses.replace(stored(), id=delivery_id))
    assert inbox.find_ids("abc") == (["abc1", "abc2"], 2)
    assert inbox.find_ids("ab", limit=1) == (["abc1"], 3)
    assert inbox.find_ids("abd3") == (["abd3"], 1)
    assert inbox.find_ids("c") == ([], 0)


def test_waiting_counts_pending_and_leased_deliveries_by_handler(inbox: SQLiteInbox) -> None:
    for index, handler in enumerate(("moco", "moco", "mindpeeker", "github")):
        inbox.put(stored(index, handler=handler))
    taken = inbox.lease(NOW, ["github"])
    assert taken is not None and inbox.done(taken)
    assert inbox.lease(NOW, ["moco"]) is not None
    assert inbox.waiting() == {"mindpeeker": 1, "moco": 2}


def test_the_repr_of_a_stored_delivery_hides_credentials_and_the_body() -> None:
    # A StoredDelivery ends up in logs and tracebacks, as a Headers does.
    body = b'{"card": "4111-body-secret"}'
    delivery = dataclasses.replace(
        stored(),
        body=body,
        headers=(
            ("Content-Type", "application/json"),
            ("X-Petal-Token", "token-secret"),
            ("Authorization", "Bearer bearer-secret"),
            ("Cookie", "session=cookie-secret"),
            ("X-Trace", "trace-1"),
        ),
    )
    text = repr(delivery)
    for secret in ("token-secret", "bearer-secret", "cookie-secret", "body-secret"):
        assert secret not in text
    assert "x-petal-token': '<redacted>'" in text
    assert "x-trace': 'trace-1'" in text
    assert f"body=<{len(body)} bytes>" in text
    assert delivery.id in text and "state='pending'" in text


@pytest.mark.parametrize("how", ["one", "every dead"])
def test_a_lease_taken_after_a_requeue_is_fenced_from_a_worker_that_hung(
    inbox: SQLiteInbox, how: str
) -> None:
    # Worker A leases attempt 1 and hangs past its lease; the delivery is run out to
    # dead-letter by others, then requeued (attempts back to 0) and leased again:
    # attempt 1 once more.  A's late settle must not touch the new lease.
    delivery = stored()
    inbox.put(delivery)
    hung = inbox.lease(NOW, ["mindpeeker"])
    taken_over = inbox.lease(NOW + 61, ["mindpeeker"])
    assert hung is not None and taken_over is not None
    assert inbox.dead(taken_over, "gave up")
    if how == "one":
        assert inbox.requeue([delivery.id]) == 1
    else:
        assert inbox.requeue_dead() == (1, delivery.id)
    current = inbox.lease(NOW + 62, ["mindpeeker"])
    assert current is not None and current.attempts == hung.attempts == 1
    assert not inbox.retry(hung, NOW + 62, "late")
    assert not inbox.done(hung)
    assert not inbox.dead(hung, "late")
    got = inbox.get(delivery.id)
    assert got is not None and (got.state, got.next_attempt) == ("leased", NOW + 122)
    assert inbox.lease(NOW + 63, ["mindpeeker"]) is None  # no second worker runs it
    assert inbox.done(current)


#: The schema of the inbox files that hookshield made before leases had an id.
FIRST_SCHEMA = """
CREATE TABLE hookshield_inbox (
    id TEXT PRIMARY KEY, sender TEXT NOT NULL, handler TEXT NOT NULL, body BLOB NOT NULL,
    headers TEXT NOT NULL, received REAL NOT NULL, event_types TEXT NOT NULL, events TEXT,
    attempts INTEGER NOT NULL, state TEXT NOT NULL, next_attempt REAL NOT NULL,
    last_error TEXT
);
CREATE INDEX hookshield_inbox_due
    ON hookshield_inbox (next_attempt, id) WHERE state IN ('pending', 'leased');
"""


def test_an_inbox_made_before_lease_ids_is_brought_up_to_date_and_keeps_working(
    tmp_path: Path,
) -> None:
    path = tmp_path / "inbox.db"
    old = sqlite3.connect(path)
    old.executescript(FIRST_SCHEMA)
    rows = [stored(0), stored(1)]
    for row in rows:
        old.execute(
            "INSERT INTO hookshield_inbox VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
            (
                row.id,
                row.sender,
                row.handler,
                row.body,
                json.dumps(row.headers),
                row.received,
                json.dumps(row.event_types),
                None,
                0,
                "pending",
                row.next_attempt,
                None,
            ),
        )
    old.commit()
    old.close()
    inbox = SQLiteInbox(path, lease=60.0)
    assert [d.id for d in inbox.list()] == [row.id for row in rows]
    first = inbox.lease(NOW, ["mindpeeker"])
    assert first is not None and first.lease_id is not None and inbox.done(first)
    inbox.put(stored(2))
    assert inbox.counts() == {"pending": 2, "leased": 0, "done": 1, "dead": 0}
    # Another process opening it later finds it up to date.
    assert SQLiteInbox(path).counts()["pending"] == 2


def test_every_sender_keeps_what_verifying_again_and_parsing_read(provider: str) -> None:
    # Each sender declares the headers its verification and parse read: a stored
    # delivery holds those only, and reads back as the same events.
    handler = make_handler(provider, dedupe=None)
    unrelated = {"Cookie": "c=1", "X-Forwarded-For": "203.0.113.9", "X-Request-Id": "r-1"}
    if "secret" in CREDENTIALS[provider]:
        unrelated["Authorization"] = "Bearer unrelated"
    for kind in (*event_types(provider), "invoice.paid")[:3]:
        body, headers = sample_delivery(provider, kind, **CREDENTIALS[provider])
        outcome = handler.accept(body, {**headers, **unrelated})
        assert outcome.ok, outcome.reason
        kept = stored_delivery(handler, outcome, now=time.time())
        names = {name.lower() for name, _ in kept.headers}
        assert names.isdisjoint(name.lower() for name in unrelated)
        assert names <= {name.lower() for name in headers}
        _, again = open_stored(handler, kept)
        assert tuple(again) == handler.verify(body, headers).events
