"""Every worker inbox keeps one contract: what ``run_worker``, ``hookshield inbox`` and the
dashboard rely on, browsing and refusals kept included.

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
    BrowsableInbox,
    DeliveryFilter,
    Inbox,
    ManagedInbox,
    RefusalKeeper,
    RefusedDelivery,
    SQLiteInbox,
    StoredDelivery,
    TamperedDelivery,
    WorkerInbox,
)
from hookshield._durable.browse import LOG_ERROR
from hookshield._durable.inbox import LEASE_ENDED, new_id

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


# -- browsing: what the dashboard and the filtered command line ask ------------------------


def test_every_inbox_is_browsable_and_a_refusal_keeper(inbox: ManagedInbox) -> None:
    assert isinstance(inbox, BrowsableInbox)
    assert isinstance(inbox, RefusalKeeper)


def typed(index: int, *types: str, sender: str = "mindpeeker", ago: float = 0.0) -> StoredDelivery:
    """A delivery received ``ago`` seconds before NOW (plus ``index`` ms), carrying ``types``."""
    base = stored(index, handler=sender, at=NOW - ago)
    return dataclasses.replace(base, event_types=types)


#: Event types that only an exact match tells apart: a case, a quote, a prefix, a
#: character outside ASCII, and one JSON escapes.
TRICKY = [
    typed(0, "session.completed", ago=3600),
    typed(1, "Session.Completed", ago=1800),
    typed(2, 'x"session.completed', ago=900),
    typed(3, "session.completed.extra", "é", sender="moco", ago=600),
    typed(4, "sessions", "a\\b", sender="moco", ago=60),
    typed(5, ago=30),  # no event type at all
]

FILTERS = [
    DeliveryFilter(),
    DeliveryFilter(sender="moco"),
    DeliveryFilter(sender="MOCO"),
    DeliveryFilter(event_type="session.completed"),
    DeliveryFilter(event_type="Session.Completed"),
    DeliveryFilter(event_type="session.*"),
    DeliveryFilter(event_type="Session.*"),
    DeliveryFilter(event_type='x"*'),
    DeliveryFilter(event_type="completed"),
    DeliveryFilter(event_type="é"),
    DeliveryFilter(event_type="a\\b"),
    DeliveryFilter(event_type="a\\*"),
    DeliveryFilter(event_type="*"),
    DeliveryFilter(since=NOW - 900 + 0.002 + 0.123456789),  # exactly TRICKY[2]'s: included
    DeliveryFilter(until=NOW - 600 + 0.003 + 0.123456789),  # exactly TRICKY[3]'s: left out
    DeliveryFilter(sender="mindpeeker", event_type="session.*", since=NOW - 7200, until=NOW),
    DeliveryFilter(state="pending", sender="moco"),
    DeliveryFilter(state="dead"),
]


def newest_first(deliveries: list[StoredDelivery]) -> list[str]:
    return [d.id for d in sorted(deliveries, key=lambda d: (d.received, d.id), reverse=True)]


def test_find_and_count_select_as_the_filter_s_rule_says_newest_first(
    inbox: ManagedInbox,
) -> None:
    for delivery in TRICKY:
        inbox.put(delivery)
    for where in FILTERS:
        expected = newest_first([d for d in TRICKY if where.matches(d)])
        assert [d.id for d in inbox.find(where, limit=100)] == expected, where
        assert inbox.count(where) == len(expected), where
    found = inbox.find(DeliveryFilter(event_type="é"))
    assert found == [TRICKY[3]]  # read back whole, as stored


def test_find_pages_by_the_last_id_and_a_purged_one_ends_the_paging(
    inbox: ManagedInbox,
) -> None:
    # Two received at the same moment: the id breaks the tie.
    same = stored(7)
    twin = dataclasses.replace(same, id=same.id[:-1] + ("0" if same.id[-1] != "0" else "1"))
    deliveries = [stored(index) for index in range(5)] + [same, twin]
    for delivery in deliveries:
        inbox.put(delivery)
    everything = newest_first(deliveries)
    pages: list[str] = []
    before: str | None = None
    while True:
        page = inbox.find(DeliveryFilter(), limit=3, before=before)
        if not page:
            break
        pages += [d.id for d in page]
        before = page[-1].id
    assert pages == everything
    assert inbox.find(DeliveryFilter(), limit=3, before="gone") == []


def dead_ones(inbox: ManagedInbox, deliveries: list[StoredDelivery]) -> list[StoredDelivery]:
    """Store ``deliveries`` and move each to dead-letter, as a worker would."""
    for delivery in deliveries:
        inbox.put(delivery)
    dead = []
    for _ in deliveries:
        taken = inbox.lease(NOW + 1, ["mindpeeker", "moco"])
        assert taken is not None and inbox.dead(taken, "gave up")
        dead.append(taken)
    return dead


def test_requeue_matching_walks_the_ids_forward_and_leaves_a_leased_one(
    inbox: ManagedInbox,
) -> None:
    dead = dead_ones(inbox, [stored(i) for i in range(4)] + [stored(9, handler="moco")])
    ids = sorted(d.id for d in dead if d.sender == "mindpeeker")
    where = DeliveryFilter(state="dead", sender="mindpeeker")
    assert inbox.requeue_matching(where, limit=3) == (3, ids[2])
    assert inbox.requeue_matching(where, after=ids[2], limit=3) == (1, ids[3])
    assert inbox.requeue_matching(where, after=ids[3]) == (0, None)
    assert inbox.counts() == {"pending": 4, "leased": 0, "done": 0, "dead": 1}
    again = inbox.get(ids[0])
    assert again is not None and (again.state, again.attempts, again.last_error) == (
        "pending",
        0,
        None,
    )
    # A leased delivery is its worker's: never requeued, even when the filter takes it.
    leased = inbox.lease(NOW + 1, ["mindpeeker"])
    assert leased is not None
    assert inbox.requeue_matching(DeliveryFilter(sender="mindpeeker")) == (3, max(ids[1:]))
    held = inbox.get(leased.id)
    assert held is not None and held.state == "leased" and held.lease_id == leased.lease_id


def test_purge_matching_deletes_done_or_dead_only_in_batches(inbox: ManagedInbox) -> None:
    dead_ones(inbox, [stored(i) for i in range(3)] + [stored(9, handler="moco")])
    inbox.put(stored(20))  # pending: never purged
    for state in ("pending", "leased", None):
        with pytest.raises(ValueError, match="done or dead"):
            inbox.purge_matching(DeliveryFilter(state=state))
    where = DeliveryFilter(state="dead", sender="mindpeeker")
    assert inbox.purge_matching(where, limit=2) == 2
    assert inbox.purge_matching(where, limit=2) == 1
    assert inbox.purge_matching(where) == 0
    assert inbox.counts() == {"pending": 1, "leased": 0, "done": 0, "dead": 1}


def test_discard_deletes_a_delivery_only_once_it_has_run(inbox: ManagedInbox) -> None:
    (dead,) = dead_ones(inbox, [stored(0)])
    pending = stored(1)
    inbox.put(pending)
    assert inbox.discard([]) == 0
    assert inbox.discard([dead.id, pending.id, "missing"]) == 1
    assert inbox.get(dead.id) is None and inbox.get(pending.id) is not None


def test_history_records_each_settle_each_ended_lease_and_each_requeue(
    inbox: ManagedInbox,
) -> None:
    delivery = stored()
    inbox.put(delivery)
    assert inbox.history(delivery.id) == []
    first = inbox.lease(NOW, ["mindpeeker"])
    assert first is not None and inbox.retry(first, NOW + 10, "RuntimeError: down \x00")
    second = inbox.lease(NOW + 10, ["mindpeeker"])
    assert second is not None  # its worker dies: the lease ends unsettled
    third = inbox.lease(NOW + 100, ["mindpeeker"])
    assert third is not None and inbox.dead(third, "gave up")
    assert not inbox.done(second)  # the late worker changes nothing, and logs nothing
    assert inbox.requeue([delivery.id]) == 1
    history = inbox.history(delivery.id)
    assert [(a.attempt, a.state) for a in history] == [
        (1, "pending"),
        (2, "lease ended"),
        (3, "dead"),
        (0, "requeued"),
    ]
    assert history[0].error == "RuntimeError: down \x00"  # as the route raised it
    assert history[1].error == LEASE_ENDED
    assert history[2].error == "gave up" and history[3].error is None
    assert history[1].at == NOW + 100  # when the next worker found it ended
    assert inbox.history("missing") == []


def test_history_keeps_the_latest_lines_within_its_bound(inbox: ManagedInbox) -> None:
    delivery = stored()
    inbox.put(delivery)
    long_error = "E" * 2000
    for attempt in range(1, 41):
        taken = inbox.lease(NOW + attempt, ["mindpeeker"])
        assert taken is not None and inbox.retry(taken, NOW + attempt, long_error)
    history = inbox.history(delivery.id)
    # Each line is about 560 characters: some dozen of the latest fit the bound.
    assert 10 <= len(history) < 16
    assert [a.attempt for a in history] == list(range(41 - len(history), 41))
    assert all(a.error == "E" * LOG_ERROR for a in history)


def test_the_overview_counts_by_sender_the_oldest_due_and_the_buckets(
    inbox: ManagedInbox,
) -> None:
    now = NOW + 3600
    inbox.put(typed(3, "a", ago=-3590))  # received 10 s before `now`: the last bucket
    dead = inbox.lease(now, ["mindpeeker"])
    assert dead is not None and inbox.dead(dead, "gave up")
    for delivery in [
        typed(0, "a", ago=-10),  # received 10 s after NOW: the first bucket
        typed(1, "a", ago=1800),  # before the span
        typed(2, "a", sender="moco", ago=7200),  # before the span
    ]:
        inbox.put(delivery)
    inbox.put(dataclasses.replace(typed(4, "a", sender="github", ago=-3600), next_attempt=now + 5))
    view = inbox.overview(now, span=3600.0, buckets=4)
    assert view.now == now and view.span == 3600.0
    assert dict(view.counts) == {"pending": 4, "leased": 0, "done": 0, "dead": 1}
    assert {sender: dict(counts) for sender, counts in view.by_sender.items()} == {
        "github": {"pending": 1, "leased": 0, "done": 0, "dead": 0},
        "mindpeeker": {"pending": 2, "leased": 0, "done": 0, "dead": 1},
        "moco": {"pending": 1, "leased": 0, "done": 0, "dead": 0},
    }
    assert list(view.by_sender) == ["github", "mindpeeker", "moco"]
    assert view.oldest_due == NOW - 7200  # moco's; github's is not due yet
    assert [dict(bucket) for bucket in view.buckets] == [
        {"pending": 1, "leased": 0, "done": 0, "dead": 0},
        {"pending": 0, "leased": 0, "done": 0, "dead": 0},
        {"pending": 0, "leased": 0, "done": 0, "dead": 0},
        {"pending": 0, "leased": 0, "done": 0, "dead": 1},
    ]
    # github's, received at `now`, is not in the span: `until` is left out.
    with pytest.raises(ValueError, match="span must be"):
        inbox.overview(now, span=0.0, buckets=4)


# -- refusals kept for diagnosis -----------------------------------------------------------


def refusal(
    index: int, *, body: bytes | None = b"0123456789abcdef", at: float = NOW
) -> RefusedDelivery:
    return RefusedDelivery(
        id=new_id(at + index),
        sender="mindpeeker",
        handler="mindpeeker",
        status=401,
        error="InvalidSignature",
        reason=f"refusal {index}: the signature does not match",
        peer=None if index % 2 else "203.0.113.9",
        received=at + index,
        headers=(("x-mindpeeker-signature", "sha256=ab"), ("x-odd", "é\udc80"), ("x-odd", "2")),
        body=b"" if body is None else body,
        body_size=None if body is None else len(body),
    )


def test_refusals_are_kept_newest_first_bounded_and_cut(backend: Backend) -> None:
    keeper = backend.again(keep_refused=3, keep_refused_bytes=8)
    assert keeper.keeps_refused and keeper.refused_body_limit == 8
    kept = [refusal(index) for index in range(5)]
    for item in kept:
        assert keeper.keep_refusal(item)
    listed = keeper.refused()
    assert [r.id for r in listed] == [r.id for r in kept[:1:-1]]  # the latest 3, newest first
    newest = listed[0]
    assert newest == dataclasses.replace(kept[4], body=b"01234567")
    assert not newest.complete and newest.body_size == 16
    assert keeper.get_refused(kept[0].id) is None  # beyond the bound: forgotten
    assert keeper.get_refused(kept[3].id) == dataclasses.replace(kept[3], body=b"01234567")
    assert [r.id for r in keeper.refused(limit=1, before=kept[4].id)] == [kept[3].id]
    assert keeper.refused(before="gone") == []
    # A refusal before the body was read keeps none; the oldest kept is forgotten for it.
    unread = refusal(9, body=None)
    assert keeper.keep_refusal(unread)
    assert keeper.get_refused(unread.id) == unread and not unread.complete
    assert [r.id for r in keeper.refused()] == [unread.id, kept[4].id, kept[3].id]
    assert keeper.forget_refused([unread.id, kept[4].id, "missing"]) == 2
    assert keeper.forget_refused([]) == 0
    # Another process of the same inbox reads them, whatever it keeps itself.
    assert not backend.inbox.keeps_refused
    assert [r.id for r in backend.inbox.refused()] == [kept[3].id]
    keeper.close()


def test_an_inbox_keeps_no_refusal_unless_told(inbox: ManagedInbox) -> None:
    assert not inbox.keeps_refused
    assert inbox.keep_refusal(refusal(0)) is False
    assert inbox.refused() == [] and inbox.get_refused("x") is None
    assert inbox.forget_refused(["x"]) == 0


def test_the_refusal_bounds_are_checked(backend: Backend) -> None:
    cases: list[tuple[dict[str, object], type[Exception]]] = [
        ({"keep_refused": -1}, ValueError),
        ({"keep_refused": 100_001}, ValueError),
        ({"keep_refused_bytes": 0}, ValueError),
        ({"keep_refused_bytes": 1024 * 1024 + 1}, ValueError),
        ({"keep_refused": True}, TypeError),
        ({"keep_refused_bytes": "16k"}, TypeError),
    ]
    for options, error in cases:
        with pytest.raises(error, match="keep_refused"):
            backend.again(**options)
