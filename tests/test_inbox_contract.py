"""Every worker inbox keeps one contract: what ``run_worker`` and ``hookshield inbox`` rely on.

Each test runs on each inbox that a worker leases from, on real storage: an SQLite
file, a real PostgreSQL server started for the session (``postgres_server`` in
conftest.py), and Django's own database on SQLite and on that PostgreSQL
(``hookshield.django``).  What only one of them has is tested beside it
(``test_inbox.py``, ``test_postgres.py``, ``adapters/test_django_db.py``).
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from hookshield import (
    Inbox,
    ManagedInbox,
    SQLiteInbox,
    StoredDelivery,
    TamperedDelivery,
    WorkerInbox,
)
from hookshield._inbox import LEASE_ENDED, new_id

from .django_db import django_inbox
from .postgres_server import PostgresServer

NOW = 1_800_000_000.0
KEY = "contract-tests-inbox-key-0123456789"


def stored(index: int = 0, *, handler: str = "mindpeeker", at: float = NOW) -> StoredDelivery:
    return StoredDelivery(
        id=new_id(at + index / 1000),
        sender=handler,
        handler=handler,
        body=b'{"n": %d}\x00\xff' % index,
        headers=(("content-type", "application/json"), ("x-odd", "a\udc80"), ("x-odd", "b")),
        received=at + index / 1000 + 0.123456789,
        event_types=("session.completed", "é"),
        events=("k1", "k2") if index % 2 else None,
        next_attempt=at,
    )


@dataclass
class Backend:
    """An inbox under test, a way to open another on the same storage, and raw SQL on it."""

    inbox: ManagedInbox
    #: Another inbox on the same storage, with these options (``key=``).
    again: Callable[..., ManagedInbox]
    #: Change a row behind the inbox's back: ``tamper(id, new_body)``.
    tamper: Callable[[str, bytes], None]


def _sqlite(tmp_path: Path) -> Backend:
    path = tmp_path / "inbox.db"

    def tamper(delivery_id: str, body: bytes) -> None:
        import sqlite3

        db = sqlite3.connect(path)
        with db:
            db.execute("UPDATE hookshield_inbox SET body = ? WHERE id = ?", (body, delivery_id))
        db.close()

    def again(**options: Any) -> ManagedInbox:
        return SQLiteInbox(path, lease=60.0, **{"key": KEY, **options})

    return Backend(again(), again, tamper)


def _postgres(url: str) -> Backend:
    import psycopg

    from hookshield.postgres import PostgresInbox

    def tamper(delivery_id: str, body: bytes) -> None:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("UPDATE hookshield_inbox SET body = %s WHERE id = %s", (body, delivery_id))

    def again(**options: Any) -> ManagedInbox:
        return PostgresInbox(url, lease=60.0, **{"key": KEY, **options})

    return Backend(again(), again, tamper)


BACKENDS = ["sqlite", "postgres", "django-sqlite", "django-postgres"]


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    kind: str = request.param
    if kind == "sqlite":
        made = _sqlite(tmp_path)
    elif kind == "postgres":
        made = _postgres(request.getfixturevalue("postgres_url"))
    else:
        server: PostgresServer | None = None
        if kind == "django-postgres":
            server = request.getfixturevalue("postgres_server")
        made = django_inbox(server, KEY, tmp_path)
    yield made
    made.inbox.close()


@pytest.fixture
def inbox(backend: Backend) -> ManagedInbox:
    return backend.inbox


def test_is_an_inbox_a_worker_inbox_and_a_managed_one(inbox: ManagedInbox) -> None:
    assert isinstance(inbox, Inbox)
    assert isinstance(inbox, WorkerInbox)
    assert isinstance(inbox, ManagedInbox)


def test_a_stored_delivery_reads_back_exactly_and_sealed(backend: Backend) -> None:
    inbox = backend.inbox
    for index in range(2):
        delivery = stored(index)
        inbox.put(delivery)
        got = inbox.get(delivery.id)
        assert got == delivery
        assert got is not None and got.seal is not None
        inbox.check_seal(got)
    assert inbox.get("missing") is None


def test_the_trace_context_is_kept_and_leased_with_the_delivery(inbox: ManagedInbox) -> None:
    delivery = dataclasses.replace(
        stored(), traceparent="00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    )
    inbox.put(delivery)
    got = inbox.get(delivery.id)
    assert got is not None
    assert got.traceparent == delivery.traceparent
    leased = inbox.lease(NOW, ["mindpeeker"])
    assert leased is not None and leased.traceparent == delivery.traceparent
    inbox.check_seal(leased)  # not sealed: it says where the delivery came from


def test_oldest_due_is_when_the_delivery_due_longest_became_due(inbox: ManagedInbox) -> None:
    oldest_due = inbox.oldest_due  # type: ignore[attr-defined]
    assert oldest_due(NOW) is None  # empty
    inbox.put(stored(0, at=NOW + 100))  # due later
    assert oldest_due(NOW) is None
    inbox.put(stored(1, at=NOW - 20))
    assert oldest_due(NOW) == NOW - 20
    leased = inbox.lease(NOW, ["mindpeeker"])  # leased until NOW + 60: not due
    assert leased is not None
    assert oldest_due(NOW) is None
    assert oldest_due(NOW + 61) == NOW + 60  # its lease ended unsettled: due since then
    assert inbox.done(leased)
    assert oldest_due(NOW + 61) is None
    assert oldest_due(NOW + 101) == NOW + 100
    past = time.time() - 5
    inbox.put(stored(2, at=past))
    assert oldest_due() == past  # as of now, by default


def test_lease_takes_the_oldest_due_delivery_once(inbox: ManagedInbox) -> None:
    first, second = stored(0), stored(1)
    inbox.put(second)
    inbox.put(first)
    taken = inbox.lease(NOW, ["mindpeeker"])
    assert taken is not None
    assert (taken.id, taken.state, taken.attempts) == (first.id, "leased", 1)
    assert taken.next_attempt == NOW + 60.0 and taken.lease_id
    again = inbox.lease(NOW, ["mindpeeker"])
    assert again is not None and again.id == second.id
    assert inbox.lease(NOW, ["mindpeeker"]) is None


def test_lease_skips_deliveries_not_yet_due_and_other_handlers(inbox: ManagedInbox) -> None:
    inbox.put(stored(0, handler="moco"))
    later = stored(1, at=NOW + 100)
    inbox.put(later)
    assert inbox.lease(NOW, ["mindpeeker"]) is None
    assert inbox.lease(NOW, []) is None
    taken = inbox.lease(NOW + 100, ["mindpeeker"])
    assert taken is not None and taken.id == later.id


def test_an_ended_lease_is_taken_again_says_so_and_fences_the_first_worker(
    inbox: ManagedInbox,
) -> None:
    inbox.put(stored())
    first = inbox.lease(NOW, ["mindpeeker"])
    assert first is not None
    assert inbox.lease(NOW + 59, ["mindpeeker"]) is None  # still held
    second = inbox.lease(NOW + 61, ["mindpeeker"])
    assert second is not None and second.attempts == 2 and second.last_error == LEASE_ENDED
    assert second.lease_id != first.lease_id
    assert not inbox.done(first)
    assert not inbox.retry(first, NOW + 500, "late")
    assert not inbox.dead(first, "late")
    assert inbox.done(second)
    got = inbox.get(second.id)
    assert got is not None and got.state == "done"


def test_retry_makes_it_due_later_with_the_error(inbox: ManagedInbox) -> None:
    inbox.put(stored())
    taken = inbox.lease(NOW, ["mindpeeker"])
    assert taken is not None
    error = "RuntimeError: down \x00"  # a NUL: PostgreSQL's text cannot hold one as it is
    assert inbox.retry(taken, NOW + 30, error)
    got = inbox.get(taken.id)
    assert got is not None and (got.state, got.next_attempt) == ("pending", NOW + 30)
    assert got.last_error is not None and got.last_error.startswith("RuntimeError: down")
    assert inbox.lease(NOW + 29, ["mindpeeker"]) is None
    again = inbox.lease(NOW + 30, ["mindpeeker"])
    assert again is not None and again.last_error == got.last_error


def test_dead_then_requeue_and_a_leased_delivery_is_left_to_its_worker(
    inbox: ManagedInbox,
) -> None:
    inbox.put(stored(0))
    inbox.put(stored(1))
    dead = inbox.lease(NOW, ["mindpeeker"])
    leased = inbox.lease(NOW, ["mindpeeker"])
    assert dead is not None and leased is not None
    assert inbox.dead(dead, "gave up")
    assert [d.id for d in inbox.list("dead")] == [dead.id]
    assert inbox.requeue([dead.id, leased.id, "missing"]) == 1
    got = inbox.get(dead.id)
    assert got is not None and (got.state, got.attempts, got.last_error) == ("pending", 0, None)
    held = inbox.get(leased.id)
    assert held is not None and held.state == "leased"


def test_requeue_dead_walks_the_ids_forward_in_batches(inbox: ManagedInbox) -> None:
    for index in range(5):
        inbox.put(stored(index))
    taken = [inbox.lease(NOW, ["mindpeeker"]) for _ in range(5)]
    for delivery in taken[:4]:
        assert delivery is not None and inbox.dead(delivery, "gave up")
    ids = sorted(d.id for d in taken[:4] if d is not None)
    assert inbox.requeue_dead(limit=3) == (3, ids[2])
    assert inbox.requeue_dead(ids[2], limit=3) == (1, ids[3])
    assert inbox.requeue_dead(ids[3], limit=3) == (0, None)
    assert inbox.counts() == {"pending": 4, "leased": 1, "done": 0, "dead": 0}


def test_list_counts_waiting_and_find_ids(inbox: ManagedInbox) -> None:
    deliveries = [stored(index) for index in range(5)]
    for delivery in deliveries:
        inbox.put(delivery)
    inbox.put(stored(9, handler="moco"))
    assert [d.id for d in inbox.list(limit=3)] == [d.id for d in deliveries[:3]]
    assert len(inbox.list("pending")) == 6
    assert inbox.list("done") == []
    with pytest.raises(ValueError, match="state must be one of"):
        inbox.list("finished")  # type: ignore[arg-type]
    assert inbox.counts() == {"pending": 6, "leased": 0, "done": 0, "dead": 0}
    assert inbox.waiting() == {"mindpeeker": 5, "moco": 1}
    whole = deliveries[0].id
    assert inbox.find_ids(whole) == ([whole], 1)
    ids, count = inbox.find_ids(whole[:6], limit=2)
    assert count == 6 and ids == sorted(d.id for d in [*deliveries, stored(9)])[:2]
    assert inbox.find_ids("zz") == ([], 0)


def test_purge_deletes_old_deliveries_in_one_state_in_batches(inbox: ManagedInbox) -> None:
    for index in range(5):
        inbox.put(stored(index))
    for _ in range(5):
        taken = inbox.lease(NOW, ["mindpeeker"])
        assert taken is not None and inbox.done(taken)
    assert inbox.purge("done", NOW + 1, limit=2) == 2
    assert inbox.purge("done", NOW - 1) == 0  # none received that long ago
    assert inbox.purge("dead", NOW + 1) == 0
    assert inbox.purge("done", NOW + 1) == 3
    assert inbox.counts()["done"] == 0


def test_a_paused_sender_is_not_leased_until_resumed(inbox: ManagedInbox) -> None:
    inbox.put(stored(0, handler="moco"))
    inbox.put(stored(1))
    assert inbox.pause("mindpeeker") is True
    assert inbox.pause("mindpeeker") is False  # already
    assert list(inbox.paused()) == ["mindpeeker"]
    taken = inbox.lease(NOW, ["mindpeeker", "moco"])
    assert taken is not None and taken.sender == "moco"  # the others go on
    assert inbox.lease(NOW, ["mindpeeker", "moco"]) is None
    assert inbox.resume("mindpeeker") is True
    assert inbox.resume("mindpeeker") is False
    assert inbox.paused() == {}
    again = inbox.lease(NOW, ["mindpeeker"])
    assert again is not None and again.sender == "mindpeeker"


def test_a_pause_is_seen_by_every_worker_of_the_inbox(backend: Backend) -> None:
    other = backend.again()
    backend.inbox.put(stored())
    backend.inbox.pause("mindpeeker")
    assert other.lease(NOW, ["mindpeeker"]) is None
    other.resume("mindpeeker")
    assert backend.inbox.lease(NOW, ["mindpeeker"]) is not None
    other.close()


def test_a_row_changed_behind_the_inbox_fails_its_seal_until_resealed(backend: Backend) -> None:
    inbox = backend.inbox
    delivery = stored()
    inbox.put(delivery)
    backend.tamper(delivery.id, b'{"n": "changed"}')
    taken = inbox.lease(NOW, ["mindpeeker"])
    assert taken is not None and taken.body == b'{"n": "changed"}'
    with pytest.raises(TamperedDelivery, match="does not match"):
        inbox.check_seal(taken)
    assert inbox.reseal([taken.id]) == 0  # leased: left to its worker
    assert inbox.dead(taken, "refused")
    assert inbox.reseal([taken.id, "missing"]) == 1  # a person vouched for it
    got = inbox.get(taken.id)
    assert got is not None
    inbox.check_seal(got)


def test_another_key_is_refused_at_once(backend: Backend) -> None:
    backend.inbox.put(stored())
    other = backend.again(key="another-key-of-at-least-16-bytes")
    with pytest.raises(ValueError, match="sealed with another key"):
        other.counts()


def test_threads_lease_distinct_deliveries(backend: Backend) -> None:
    for index in range(40):
        backend.inbox.put(stored(index))
    inboxes = [backend.again() for _ in range(4)]
    taken: list[list[str]] = [[] for _ in inboxes]
    start = threading.Barrier(len(inboxes))

    def lease_all(index: int) -> None:
        mine = inboxes[index]
        start.wait(timeout=30)
        while (got := mine.lease(NOW, ["mindpeeker"])) is not None:
            taken[index].append(got.id)
            assert mine.done(got)
        mine.close()

    threads = [threading.Thread(target=lease_all, args=(i,)) for i in range(len(inboxes))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    every = [delivery_id for ids in taken for delivery_id in ids]
    assert len(every) == 40 and len(set(every)) == 40  # each leased once
    assert backend.inbox.counts()["done"] == 40


def test_a_state_that_is_not_one_is_refused(inbox: ManagedInbox) -> None:
    with pytest.raises(ValueError, match="state must be one of"):
        inbox.purge("finished", NOW)  # type: ignore[arg-type]
