"""Browsing an inbox: filters, newest-first pages, counts, bulk steering, history, overview."""

from __future__ import annotations

import datetime
import sqlite3
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hookshield import (
    Attempt,
    BrowsableInbox,
    DeliveryFilter,
    SQLiteInbox,
    StoredDelivery,
)
from hookshield._durable.browse import moment
from hookshield._durable.inbox import LEASE_ENDED, STATES, new_id

NOW = 1_800_000_000.0


def delivery(
    index: int,
    *,
    sender: str = "moco",
    types: tuple[str, ...] = ("invoice.paid",),
    at: float = NOW,
    state: str = "pending",
) -> StoredDelivery:
    return StoredDelivery(
        id=new_id(at) + f"{index:04d}",
        sender=sender,
        handler=sender,
        body=b"{}",
        headers=(),
        received=at,
        event_types=types,
        state=state,  # type: ignore[arg-type]
        next_attempt=at,
    )


@pytest.fixture
def inbox(tmp_path: Path) -> SQLiteInbox:
    return SQLiteInbox(tmp_path / "inbox.db", lease=60.0)


def test_sqlite_inbox_is_browsable(inbox: SQLiteInbox) -> None:
    assert isinstance(inbox, BrowsableInbox)


def test_find_lists_newest_first_in_pages(inbox: SQLiteInbox) -> None:
    rows = [delivery(i, at=NOW + i) for i in range(7)]
    for row in rows:
        inbox.put(row)
    first = inbox.find(DeliveryFilter(), limit=3)
    assert [r.id for r in first] == [rows[6].id, rows[5].id, rows[4].id]
    second = inbox.find(DeliveryFilter(), limit=3, before=first[-1].id)
    assert [r.id for r in second] == [rows[3].id, rows[2].id, rows[1].id]
    last = inbox.find(DeliveryFilter(), limit=3, before=second[-1].id)
    assert [r.id for r in last] == [rows[0].id]
    assert inbox.find(DeliveryFilter(), before="no-such-id") == []


def test_filters_select_by_state_sender_type_and_time(inbox: SQLiteInbox) -> None:
    inbox.put(delivery(1, sender="moco", types=("invoice.paid",), at=NOW - 100))
    inbox.put(delivery(2, sender="moco", types=("session.completed", "x"), at=NOW))
    inbox.put(delivery(3, sender="github", types=("push",), at=NOW + 100, state="dead"))

    def ids(where: DeliveryFilter) -> set[str]:
        return {row.id[-4:] for row in inbox.find(where)}

    assert ids(DeliveryFilter(sender="moco")) == {"0001", "0002"}
    assert ids(DeliveryFilter(state="dead")) == {"0003"}
    assert ids(DeliveryFilter(event_type="x")) == {"0002"}
    assert ids(DeliveryFilter(event_type="session.*")) == {"0002"}
    assert ids(DeliveryFilter(event_type="session.")) == set()  # exact unless it ends in *
    assert ids(DeliveryFilter(since=NOW)) == {"0002", "0003"}
    assert ids(DeliveryFilter(until=NOW)) == {"0001"}
    assert ids(DeliveryFilter(since=NOW - 100, until=NOW + 100)) == {"0001", "0002"}
    assert inbox.count(DeliveryFilter(sender="moco", since=NOW)) == 1
    assert inbox.count(DeliveryFilter()) == 3


_TEXT = st.sampled_from(["a", "a.b", "a.c", "b", "", "é", "a*", '"q"', "\\"])


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    rows=st.lists(
        st.tuples(
            st.sampled_from(STATES),
            st.sampled_from(["moco", "github"]),
            st.lists(_TEXT, max_size=3).map(tuple),
            st.integers(0, 5),
        ),
        max_size=8,
    ),
    state=st.none() | st.sampled_from(STATES),
    sender=st.none() | st.sampled_from(["moco", "github", "x"]),
    kind=st.none() | _TEXT | _TEXT.map(lambda t: t + "*"),
    since=st.none() | st.integers(0, 5),
    until=st.none() | st.integers(0, 5),
)
def test_the_sql_selects_what_the_filter_says(
    tmp_path_factory: pytest.TempPathFactory,
    rows: list[tuple[str, str, tuple[str, ...], int]],
    state: str | None,
    sender: str | None,
    kind: str | None,
    since: int | None,
    until: int | None,
) -> None:
    inbox = SQLiteInbox(tmp_path_factory.mktemp("inbox") / "inbox.db")
    stored = [
        delivery(i, sender=s, types=t, at=NOW + when, state=st_)
        for i, (st_, s, t, when) in enumerate(rows)
    ]
    for row in stored:
        inbox.put(row)
    where = DeliveryFilter(
        state=state,  # type: ignore[arg-type]
        sender=sender,
        event_type=kind,
        since=None if since is None else NOW + since,
        until=None if until is None else NOW + until,
    )
    expected = {row.id for row in stored if where.matches(row)}
    assert {row.id for row in inbox.find(where, limit=100)} == expected
    assert inbox.count(where) == len(expected)


def test_a_filter_refuses_what_it_cannot_mean() -> None:
    with pytest.raises(ValueError, match="state must be one of"):
        DeliveryFilter(state="gone")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="finite"):
        DeliveryFilter(since=float("nan"))
    with pytest.raises(TypeError, match="sender must be a str"):
        DeliveryFilter(sender=3)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="longer than"):
        DeliveryFilter(event_type="x" * 201)
    assert DeliveryFilter().empty and not DeliveryFilter(sender="moco").empty


def test_requeue_matching_walks_the_selection_and_leaves_leased_ones(inbox: SQLiteInbox) -> None:
    for i in range(5):
        inbox.put(delivery(i, state="dead", at=NOW + i))
    inbox.put(delivery(9, sender="github", state="dead"))
    inbox.put(delivery(8, state="leased"))  # a worker runs it: left to that worker
    total, batches = 0, 0
    after: str | None = ""
    while after is not None:
        count, after = inbox.requeue_matching(DeliveryFilter(sender="moco"), after=after, limit=2)
        total += count
        batches += 1
    assert (total, batches) == (5, 4)
    assert inbox.count(DeliveryFilter(state="pending")) == 5
    assert inbox.count(DeliveryFilter(state="dead")) == 1  # github's
    assert inbox.count(DeliveryFilter(state="leased")) == 1


def test_purge_matching_deletes_only_done_or_dead(inbox: SQLiteInbox) -> None:
    inbox.put(delivery(1, state="done", at=NOW - 10))
    inbox.put(delivery(2, state="done", at=NOW))
    inbox.put(delivery(3, state="pending", at=NOW - 10))
    assert inbox.purge_matching(DeliveryFilter(state="done", until=NOW - 5)) == 1
    assert inbox.count(DeliveryFilter()) == 2
    with pytest.raises(ValueError, match="done or dead"):
        inbox.purge_matching(DeliveryFilter(state="pending"))
    with pytest.raises(ValueError, match="done or dead"):
        inbox.purge_matching(DeliveryFilter())


def test_discard_deletes_done_and_dead_deliveries_only(inbox: SQLiteInbox) -> None:
    rows = [delivery(i, state=state) for i, state in enumerate(STATES)]
    for row in rows:
        inbox.put(row)
    assert inbox.discard([row.id for row in rows] + ["missing"]) == 2
    assert sorted(row.state for row in inbox.find(DeliveryFilter())) == ["leased", "pending"]


def test_history_records_each_settle_requeue_and_ended_lease(inbox: SQLiteInbox) -> None:
    inbox.put(delivery(1))
    leased = inbox.lease(NOW, ["moco"])
    assert leased is not None
    assert inbox.retry(leased, NOW, "ValueError: no route for this")
    leased = inbox.lease(NOW, ["moco"])
    assert leased is not None
    assert inbox.dead(leased, "ValueError: still no route")
    assert inbox.requeue([leased.id]) == 1
    leased = inbox.lease(NOW, ["moco"])
    assert leased is not None
    # Its lease ends unsettled (the worker died): the next lease notes it.
    again = inbox.lease(NOW + 61, ["moco"])
    assert again is not None
    assert inbox.done(again)
    history = inbox.history(leased.id)
    assert [(a.attempt, a.state, a.error) for a in history] == [
        (1, "pending", "ValueError: no route for this"),
        (2, "dead", "ValueError: still no route"),
        (0, "requeued", None),
        (1, "lease ended", LEASE_ENDED),
        (2, "done", None),
    ]
    assert all(isinstance(a, Attempt) and a.at > 0 for a in history)
    assert inbox.history("missing") == []


def test_history_keeps_the_latest_attempts_within_its_bound(inbox: SQLiteInbox) -> None:
    row = delivery(1)
    inbox.put(row)
    for attempt in range(1, 61):
        leased = inbox.lease(NOW + attempt, ["moco"])
        assert leased is not None
        inbox.retry(leased, NOW + attempt, f"RuntimeError: attempt {attempt} " + "x" * 300)
    history = inbox.history(row.id)
    assert 10 < len(history) < 60
    assert history[-1].attempt == 60  # the latest are kept, in order
    assert [a.attempt for a in history] == list(range(61 - len(history), 61))


def test_overview_counts_by_state_and_sender_and_buckets(inbox: SQLiteInbox) -> None:
    inbox.put(delivery(1, at=NOW - 3500, state="done"))
    inbox.put(delivery(2, at=NOW - 1800, state="dead"))
    inbox.put(delivery(3, sender="github", at=NOW - 10))
    inbox.put(delivery(4, at=NOW - 7200))  # before the span: counted, not charted
    view = inbox.overview(NOW, span=3600, buckets=4)
    assert view.counts == {"pending": 2, "leased": 0, "done": 1, "dead": 1}
    assert view.by_sender["github"] == {"pending": 1, "leased": 0, "done": 0, "dead": 0}
    assert view.by_sender["moco"]["pending"] == 1
    assert view.oldest_due == NOW - 7200  # the longest waiting past due
    assert [dict(b) for b in view.buckets] == [
        {"pending": 0, "leased": 0, "done": 1, "dead": 0},
        {"pending": 0, "leased": 0, "done": 0, "dead": 0},
        {"pending": 0, "leased": 0, "done": 0, "dead": 1},
        {"pending": 1, "leased": 0, "done": 0, "dead": 0},
    ]
    assert inbox.overview(NOW - 8000, span=60, buckets=1).oldest_due is None
    with pytest.raises(ValueError, match="buckets"):
        inbox.overview(NOW, span=60, buckets=0)


def test_an_inbox_made_before_attempt_logs_gains_one_and_keeps_its_rows(tmp_path: Path) -> None:
    path = tmp_path / "inbox.db"
    SQLiteInbox(path).put(delivery(1))
    db = sqlite3.connect(path)
    db.execute("ALTER TABLE hookshield_inbox DROP COLUMN attempt_log")
    db.commit()
    db.close()
    inbox = SQLiteInbox(path, create=False)
    leased = inbox.lease(NOW, ["moco"])
    assert leased is not None and inbox.done(leased)
    assert [a.state for a in inbox.history(leased.id)] == ["done"]


#: The newest-first page's query, as SQLiteInbox.find makes it, with and without a state.
PAGE = "SELECT id FROM hookshield_inbox WHERE 1 ORDER BY received DESC, id DESC LIMIT 50"
STATE_PAGE = (
    "SELECT id FROM hookshield_inbox WHERE 1 AND state = ? ORDER BY received DESC, id DESC LIMIT 50"
)


@pytest.mark.parametrize(
    ("where", "query", "args"),
    [(DeliveryFilter(), PAGE, ()), (DeliveryFilter(state="dead"), STATE_PAGE, ("dead",))],
    ids=["every row", "one state"],
)
def test_a_page_newest_first_reads_an_index_not_the_whole_table(
    tmp_path: Path, where: DeliveryFilter, query: str, args: tuple[str, ...]
) -> None:
    # An inbox made before the browsing indexes gains them when opened; then a page of
    # the dashboard (or `inbox ls`) reads the newest rows from an index, where it
    # scanned and sorted every row, which took half a second at 200,000 rows.
    path = tmp_path / "inbox.db"
    row = delivery(1, state="dead")
    SQLiteInbox(path).put(row)
    db = sqlite3.connect(path)
    db.execute("DROP INDEX hookshield_inbox_received")
    db.execute("DROP INDEX hookshield_inbox_state")
    db.commit()
    db.close()
    inbox = SQLiteInbox(path, create=False)
    assert [d.id for d in inbox.find(where, limit=5)] == [row.id]
    db = sqlite3.connect(path)
    plan = " ".join(str(step[-1]) for step in db.execute("EXPLAIN QUERY PLAN " + query, args))
    db.close()
    assert "USING INDEX hookshield_inbox_" in plan or "USING COVERING INDEX" in plan
    assert "TEMP B-TREE" not in plan  # no sort of the rows found


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2h", NOW - 7200),
        ("30m", NOW - 1800),
        ("1.5d", NOW - 1.5 * 86400),
        ("1767225600", 1767225600.0),
        ("2026-01-01", datetime.datetime(2026, 1, 1, tzinfo=datetime.timezone.utc).timestamp()),
        (
            "2026-01-01T10:30Z",
            datetime.datetime(2026, 1, 1, 10, 30, tzinfo=datetime.timezone.utc).timestamp(),
        ),
        (
            "2026-01-01T10:30+02:00",
            datetime.datetime(2026, 1, 1, 8, 30, tzinfo=datetime.timezone.utc).timestamp(),
        ),
    ],
)
def test_moment_reads_dates_times_and_ages(text: str, expected: float) -> None:
    assert moment(text, now=NOW) == pytest.approx(expected)


@pytest.mark.parametrize("text", ["yesterday", "", "2h ago", "12", "2026-13-01"])
def test_moment_refuses_anything_else_saying_what_it_takes(text: str) -> None:
    with pytest.raises(ValueError, match="give a date"):
        moment(text, now=NOW)
