"""What only ``hookshield.postgres`` has: one round trip a step, its schema, clear errors,
``LISTEN/NOTIFY`` wake-ups, and a database that goes down.

Against real PostgreSQL servers: the session's (``postgres_server`` in conftest.py),
and, where a test stops and starts one, a server of its own.  The contract both
share with the other stores and inboxes is in ``test_dedupe.py`` and
``test_inbox_contract.py``.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any, ClassVar

import psycopg
import psycopg_pool
import pytest

from hookshield import (
    Claim,
    DeliveryFilter,
    Event,
    StoredDelivery,
    WebhookHandler,
    open_inbox,
    run_worker,
)
from hookshield._durable.inbox import new_id
from hookshield.postgres import (
    INBOX_VERSION,
    PURGE_BATCH,
    PostgresDedupeStore,
    PostgresInbox,
    schema_sql,
)
from hookshield.testing import sample_delivery

from .conftest import CREDENTIALS
from .postgres_server import PostgresServer, postgres_binaries
from .required import unavailable

KEY = "postgres-tests-inbox-key-0123456789"
SECRET = CREDENTIALS["mindpeeker"]["secret"]


def _execute(url: str, statement: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    with psycopg.connect(url, autocommit=True) as conn:
        cursor = conn.execute(statement.encode(), params)
        return [tuple(row) for row in cursor.fetchall()] if cursor.description else []


class CountingConnection(psycopg.Connection[Any]):
    """A connection that counts the statements it sends."""

    sent: ClassVar[list[str]] = []

    def execute(self, query: Any, params: Any = None, **options: Any) -> Any:
        text = query.decode() if isinstance(query, bytes) else str(query)
        if "set_config" not in text:
            CountingConnection.sent.append(text)
        return super().execute(query, params, **options)


# -- the de-duplication store: one statement a step -------------------------------------


def test_each_store_step_is_one_statement(postgres_url: str) -> None:
    pool = psycopg_pool.ConnectionPool(
        postgres_url,
        min_size=1,
        max_size=2,
        kwargs={"autocommit": True},
        connection_class=CountingConnection,
        open=True,
    )
    try:
        store = PostgresDedupeStore(pool)
        store.claim("warm-up", 10)  # the table is made on first use, outside the pool
        for step in (
            lambda: store.claim("k", 10),
            lambda: store.claim("k", 10),
            lambda: store.release("k", "another"),
            lambda: store.complete("k", "another", 100),
            lambda: store.release("k", "another"),
        ):
            CountingConnection.sent.clear()
            step()
            assert len(CountingConnection.sent) == 1, CountingConnection.sent
    finally:
        pool.close()


def test_claims_purge_expired_keys_a_bounded_batch_at_a_time(postgres_url: str) -> None:
    store = PostgresDedupeStore(postgres_url, table="purged")
    store.claim("first", 10)
    now = time.time()
    _execute(
        postgres_url,
        "INSERT INTO purged SELECT convert_to('old-' || n, 'UTF8'), true, %s, NULL"
        " FROM generate_series(1, 100) AS n",
        (now - 5,),
    )
    store.claim("another", 10)
    (left,) = _execute(postgres_url, "SELECT count(*) FROM purged WHERE expiry < %s", (now,))
    assert left == (100 - PURGE_BATCH,)
    for n in range(100 // PURGE_BATCH + 1):
        store.claim(f"more-{n}", 10)
    assert _execute(postgres_url, "SELECT count(*) FROM purged WHERE expiry < %s", (now,)) == [(0,)]
    store.close()


def test_the_store_runs_on_the_databases_clock_by_default(postgres_url: str) -> None:
    store = PostgresDedupeStore(postgres_url)
    state, token = store.claim("k", 0.5)
    assert state is Claim.NEW and token
    assert store.claim("k", 0.5) == (Claim.IN_PROGRESS, None)
    time.sleep(0.7)
    assert store.claim("k", 0.5)[0] is Claim.NEW
    store.close()


def test_bad_table_names_and_options_are_refused() -> None:
    with pytest.raises(ValueError, match="lower-case table name"):
        PostgresDedupeStore("postgresql://127.0.0.1/x", table='x"; DROP TABLE y; --')
    with pytest.raises(TypeError, match="table name"):
        PostgresInbox("postgresql://127.0.0.1/x", key=KEY, table=3)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="DSN"):
        PostgresDedupeStore(42)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="needs a PostgreSQL DSN"):
        PostgresDedupeStore("  ")
    with pytest.raises(ValueError, match="cannot be read"):
        PostgresDedupeStore("host=x port=1 nonsense=what")
    with pytest.raises(ValueError, match="timeout"):
        PostgresDedupeStore("postgresql://127.0.0.1/x", timeout=0)
    with pytest.raises(ValueError, match="needs the key"):
        PostgresInbox("postgresql://127.0.0.1/x")


# -- clear errors at start ------------------------------------------------------------------


def test_a_wrong_dsn_is_a_clear_error_naming_what_failed_without_the_password(
    postgres_server: PostgresServer,
) -> None:
    missing = postgres_server.url("no_such_db", password="hunter2-very-secret")
    with pytest.raises(psycopg.OperationalError) as raised:
        PostgresDedupeStore(missing).claim("k", 10)
    message = str(raised.value)
    assert f"postgres@127.0.0.1:{postgres_server.port}/no_such_db" in message
    assert 'database "no_such_db" does not exist' in message
    assert "hunter2" not in message
    closed = f"postgresql://postgres:hunter2-very-secret@127.0.0.1:{_closed_port()}/app"
    inbox = PostgresInbox(closed, key=KEY)
    assert "hunter2" not in repr(inbox)
    with pytest.raises(psycopg.OperationalError, match=r"connecting failed: .*refused") as raised:
        inbox.counts()
    assert "hunter2" not in str(raised.value)


def _closed_port() -> int:
    from .servers import free_port

    return free_port()


def test_an_inbox_that_is_not_there_is_refused_when_it_may_not_be_made(postgres_url: str) -> None:
    with pytest.raises(psycopg.OperationalError, match="no hookshield_inbox here"):
        PostgresInbox(postgres_url, key=KEY, create=False).counts()
    assert _execute(postgres_url, "SELECT to_regclass('hookshield_inbox')") == [(None,)]


def test_a_schema_of_a_newer_release_is_refused(postgres_url: str) -> None:
    PostgresInbox(postgres_url, key=KEY).make_tables()
    _execute(
        postgres_url, "UPDATE hookshield_schema SET version = 99 WHERE name = 'hookshield_inbox'"
    )
    with pytest.raises(psycopg.OperationalError, match="schema version 99, made by a newer"):
        PostgresInbox(postgres_url, key=KEY).counts()


def test_processes_starting_together_make_the_tables_once(postgres_url: str) -> None:
    inboxes = [PostgresInbox(postgres_url, key=KEY) for _ in range(6)]
    start = threading.Barrier(len(inboxes))
    errors: list[BaseException] = []

    def first_use(inbox: PostgresInbox) -> None:
        start.wait(timeout=30)
        try:
            inbox.counts()
        except BaseException as exc:
            errors.append(exc)
        finally:
            inbox.close()

    threads = [threading.Thread(target=first_use, args=(inbox,)) for inbox in inboxes]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    assert _execute(postgres_url, "SELECT name, version FROM hookshield_schema") == [
        ("hookshield_inbox", INBOX_VERSION)
    ]


def test_a_user_who_may_not_create_tables_is_told_to_run_init_and_then_works(
    postgres_server: PostgresServer, postgres_url: str
) -> None:
    database = postgres_url.rsplit("/", 1)[1]
    _execute(  # roles belong to the server: another test may have made it
        postgres_url,
        "DO $$ BEGIN CREATE ROLE webapp LOGIN; EXCEPTION WHEN duplicate_object THEN NULL; END $$",
    )
    as_app = f"postgresql://webapp@127.0.0.1:{postgres_server.port}/{database}"
    with pytest.raises(psycopg.OperationalError, match=r"may not create them.*inbox init"):
        PostgresInbox(as_app, key=KEY).counts()
    # The SQL `hookshield inbox init --sql` prints, run by the database's owner, then a grant.
    _execute(postgres_url, schema_sql())
    _execute(
        postgres_url,
        "GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO webapp",
    )
    inbox = PostgresInbox(as_app, key=KEY)
    inbox.put(_stored())
    assert inbox.counts()["pending"] == 1
    store = PostgresDedupeStore(as_app)
    assert store.claim("k", 10)[0] is Claim.NEW
    inbox.close()
    store.close()


def _stored(event_id: str = "evt_1", *, at: float | None = None) -> StoredDelivery:
    body, headers = sample_delivery(
        "mindpeeker", "session.completed", {"marker": event_id}, secret=SECRET
    )
    now = time.time() if at is None else at
    return StoredDelivery(
        id=new_id(now),
        sender="mindpeeker",
        handler="mindpeeker",
        body=body,
        headers=tuple((name.lower(), value) for name, value in headers.items()),
        received=now,
        event_types=("session.completed",),
        next_attempt=now,
    )


def test_open_inbox_takes_a_postgresql_url_or_a_path(postgres_url: str, tmp_path: Any) -> None:
    opened = open_inbox(postgres_url, key=KEY)
    assert isinstance(opened, PostgresInbox)
    assert isinstance(
        open_inbox(postgres_url.replace("postgresql://", "postgres://"), key=KEY), PostgresInbox
    )
    from hookshield import SQLiteInbox

    assert isinstance(open_inbox(str(tmp_path / "inbox.db")), SQLiteInbox)
    opened.close()


# -- the worker: woken by NOTIFY, several at once, a clean stop ---------------------------------


def _recording() -> tuple[WebhookHandler, list[str], threading.Event]:
    handler = WebhookHandler("mindpeeker", secret=SECRET)
    ran: list[str] = []
    seen = threading.Event()

    @handler.on("*")
    def record(event: Event) -> None:
        ran.append(str(event.data.get("marker")))
        seen.set()

    return handler, ran, seen


@pytest.fixture
def inbox(postgres_url: str) -> Iterator[PostgresInbox]:
    made = PostgresInbox(postgres_url, key=KEY, lease=30.0)
    made.make_tables()
    yield made
    made.close()


def test_a_waiting_worker_starts_a_new_delivery_at_once_not_at_its_next_poll(
    inbox: PostgresInbox,
) -> None:
    handler, ran, seen = _recording()
    stop = threading.Event()
    worker = threading.Thread(
        target=run_worker, args=(inbox, handler), kwargs={"poll": 60.0, "stop": stop}
    )
    worker.start()
    try:
        time.sleep(0.5)  # the worker has looked, found nothing, and waits (a minute)
        put_at = time.monotonic()
        inbox.put(_stored("evt_woken"))
        assert seen.wait(10)
        assert time.monotonic() - put_at < 5  # woken by the NOTIFY, not by the poll
        assert ran == ["evt_woken"]
    finally:
        stop.set()
        worker.join(10)
    assert not worker.is_alive()


def test_a_worker_whose_listener_fails_still_polls(
    postgres_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    inbox = PostgresInbox(postgres_url, key=KEY, table="polled")
    inbox.make_tables()
    handler, ran, seen = _recording()
    listening = PostgresInbox(postgres_url, key=KEY, table="polled")
    listening.channel = "no\x00such"  # a name its LISTEN cannot send
    stop = threading.Event()
    with caplog.at_level(logging.WARNING, logger="hookshield"):
        worker = threading.Thread(
            target=run_worker, args=(listening, handler), kwargs={"poll": 0.2, "stop": stop}
        )
        worker.start()
        try:
            deadline = time.monotonic() + 10
            while "listening for new deliveries failed" not in caplog.text:
                assert time.monotonic() < deadline
                time.sleep(0.02)
            inbox.put(_stored("evt_polled"))
            assert seen.wait(10)  # found by the poll
        finally:
            stop.set()
            worker.join(10)
    assert ran == ["evt_polled"]
    inbox.close()
    listening.close()


def test_several_deliveries_run_at_once_each_with_its_own_lease(inbox: PostgresInbox) -> None:
    handler = WebhookHandler("mindpeeker", secret=SECRET)
    lock = threading.Lock()
    running: list[int] = [0]
    most: list[int] = [0]
    ran: list[str] = []

    @handler.on("*")
    def slow(event: Event) -> None:
        with lock:
            running[0] += 1
            most[0] = max(most[0], running[0])
        time.sleep(0.3)
        with lock:
            running[0] -= 1
            ran.append(str(event.data.get("marker")))

    for n in range(8):
        inbox.put(_stored(f"evt_{n}"))
    started = time.monotonic()
    stats = run_worker(inbox, handler, burst=True, concurrency=4)
    took = time.monotonic() - started
    assert stats.done == 8 and sorted(ran) == sorted(f"evt_{n}" for n in range(8))
    assert most[0] == 4  # four at once, never more
    assert took < 8 * 0.3  # faster than one at a time
    assert inbox.counts()["done"] == 8


def test_a_stop_waits_for_the_deliveries_in_hand_up_to_its_timeout(
    inbox: PostgresInbox, caplog: pytest.LogCaptureFixture
) -> None:
    handler = WebhookHandler("mindpeeker", secret=SECRET)
    release = threading.Event()
    started: list[str] = []

    @handler.on("*")
    def held(event: Event) -> None:
        marker = str(event.data.get("marker"))
        started.append(marker)
        if marker == "evt_stuck":
            release.wait(30)  # outlives the stop's timeout
        else:
            time.sleep(0.3)  # ends within it

    inbox.put(_stored("evt_stuck"))
    inbox.put(_stored("evt_quick"))
    stop = threading.Event()
    result: list[Any] = []
    worker = threading.Thread(
        target=lambda: result.append(
            run_worker(inbox, handler, concurrency=2, stop=stop, stop_timeout=1.0, poll=0.05)
        )
    )
    worker.start()
    deadline = time.monotonic() + 10
    while len(started) < 2 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert sorted(started) == ["evt_quick", "evt_stuck"]
    with caplog.at_level(logging.WARNING, logger="hookshield"):
        stop.set()
        worker.join(10)
    try:
        assert not worker.is_alive()
        (stats,) = result
        assert stats.done == 1  # the quick one finished within the timeout
        assert "with 1 deliveries still running" in caplog.text
        # Read before the stuck route is let go: its thread would then settle it.
        assert inbox.counts() == {"pending": 0, "leased": 1, "done": 1, "dead": 0}
    finally:
        release.set()


# -- a database that goes down ------------------------------------------------------------------


@pytest.fixture
def own_server() -> Iterator[PostgresServer]:
    """A PostgreSQL server of the test's own, which it may stop and start again."""
    binaries = postgres_binaries()
    if binaries is None:
        unavailable("no PostgreSQL server binaries: apt-get install postgresql")
    server = PostgresServer(binaries).start()
    yield server
    server.remove()


def test_a_database_that_is_down_is_a_503_and_nothing_is_lost(own_server: PostgresServer) -> None:
    import flask

    from hookshield.flask import webhook_view

    url = own_server.url()
    store = PostgresDedupeStore(url, timeout=1.0)
    inbox = PostgresInbox(url, key=KEY, timeout=1.0)
    handler = WebhookHandler("mindpeeker", secret=SECRET, dedupe=store)
    app = flask.Flask(__name__)
    app.add_url_rule("/hooks", view_func=webhook_view(handler, background=inbox))
    client = app.test_client()
    first_body, first_headers = sample_delivery(
        "mindpeeker", "session.completed", {"marker": "before"}, secret=SECRET
    )
    assert client.post("/hooks", data=first_body, headers=first_headers).status_code == 200

    own_server.stop()  # the database goes down
    body, headers = sample_delivery(
        "mindpeeker", "session.completed", {"marker": "during"}, secret=SECRET
    )
    started = time.monotonic()
    answer = client.post("/hooks", data=body, headers=headers)
    assert answer.status_code == 503 and answer.headers["Retry-After"] == "30"
    assert time.monotonic() - started < 5  # well before a sender gives up

    own_server.start()  # back: the sender's retry is taken, and runs once
    deadline = time.monotonic() + 30
    while (status := client.post("/hooks", data=body, headers=headers).status_code) != 200:
        assert status == 503 and time.monotonic() < deadline
        time.sleep(0.2)
    assert client.post("/hooks", data=body, headers=headers).status_code == 200  # duplicate
    handler_ran, ran, _ = _recording()
    stats = run_worker(inbox, handler_ran, burst=True)
    assert stats.done == 2 and sorted(ran) == ["before", "during"]
    store.close()
    inbox.close()


def test_an_inbox_that_refuses_the_write_is_a_503_with_the_claim_released(
    postgres_url: str,
) -> None:
    import flask

    from hookshield.flask import webhook_view

    store = PostgresDedupeStore(postgres_url)
    inbox = PostgresInbox(postgres_url, key=KEY)
    inbox.make_tables()
    _execute(
        postgres_url,
        "CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS"
        " $$ BEGIN RAISE EXCEPTION 'the disk is full'; END $$",
    )
    _execute(
        postgres_url,
        "CREATE TRIGGER refuse BEFORE INSERT ON hookshield_inbox EXECUTE FUNCTION refuse()",
    )
    handler = WebhookHandler("mindpeeker", secret=SECRET, dedupe=store)
    app = flask.Flask(__name__)
    app.add_url_rule("/hooks", view_func=webhook_view(handler, background=inbox))
    client = app.test_client()
    body, headers = sample_delivery("mindpeeker", "session.completed", secret=SECRET)
    answer = client.post("/hooks", data=body, headers=headers)
    assert answer.status_code == 503 and answer.headers["Retry-After"] == "30"
    _execute(postgres_url, "DROP TRIGGER refuse ON hookshield_inbox")
    # The claim was released: the retry is stored at once (not 409, not a duplicate).
    assert client.post("/hooks", data=body, headers=headers).status_code == 200
    assert inbox.counts()["pending"] == 1
    store.close()
    inbox.close()


# -- the schema of an older release is brought up -------------------------------------------

#: The inbox's tables as schema version 1 made them (hookshield inbox init --sql printed it).
VERSION_1 = """
CREATE TABLE IF NOT EXISTS "hookshield_inbox" ( id text COLLATE "C" PRIMARY KEY, sender text NOT NULL, handler text NOT NULL, body bytea NOT NULL, headers text NOT NULL, received double precision NOT NULL, event_types text NOT NULL, events text, attempts integer NOT NULL, state text NOT NULL, next_attempt double precision NOT NULL, last_error text, lease_id text, seal text, traceparent text);
CREATE INDEX IF NOT EXISTS "hookshield_inbox_due" ON "hookshield_inbox" (next_attempt, id) WHERE state IN ('pending', 'leased');
CREATE INDEX IF NOT EXISTS "hookshield_inbox_state" ON "hookshield_inbox" (state, received);
CREATE TABLE IF NOT EXISTS "hookshield_inbox_meta" (name text PRIMARY KEY, value text NOT NULL);
CREATE TABLE IF NOT EXISTS "hookshield_inbox_paused" (sender text PRIMARY KEY, since double precision NOT NULL);
CREATE TABLE IF NOT EXISTS hookshield_schema (name text PRIMARY KEY, version integer NOT NULL);
INSERT INTO hookshield_schema (name, version) VALUES ('hookshield_inbox', 1) ON CONFLICT (name) DO NOTHING;
"""


def _version_1(url: str) -> StoredDelivery:
    """An inbox of schema version 1 in ``url``, holding one pending delivery sealed with KEY."""
    from hookshield import InboxKey

    from .test_inbox_contract import stored

    for statement in VERSION_1.strip().splitlines():
        _execute(url, statement)
    key = InboxKey(KEY)
    _execute(url, "INSERT INTO hookshield_inbox_meta VALUES ('key_id', %s)", (key.id,))
    delivery = key.seal(stored())
    _execute(
        url,
        "INSERT INTO hookshield_inbox (id, sender, handler, body, headers, received, event_types,"
        " events, attempts, state, next_attempt, seal) VALUES"
        " (%s, %s, %s, %s, %s, %s, %s, NULL, 0, 'pending', %s, %s)",
        (
            delivery.id,
            delivery.sender,
            delivery.handler,
            delivery.body,
            json.dumps(delivery.headers),
            delivery.received,
            json.dumps(delivery.event_types),
            delivery.next_attempt,
            delivery.seal,
        ),
    )
    return delivery


@pytest.mark.parametrize("create", [True, False])
def test_an_inbox_of_schema_version_1_is_brought_up_with_its_deliveries(
    postgres_url: str, create: bool
) -> None:
    delivery = _version_1(postgres_url)
    inbox = PostgresInbox(postgres_url, key=KEY, create=create, keep_refused=5)
    got = inbox.get(delivery.id)
    assert got == delivery
    assert got is not None
    inbox.check_seal(got)  # still its seal: nothing it covers changed
    assert _execute(
        postgres_url, "SELECT version FROM hookshield_schema WHERE name = 'hookshield_inbox'"
    ) == [(INBOX_VERSION,)]
    assert inbox.history(delivery.id) == []  # made before there was a log
    taken = inbox.lease(delivery.next_attempt, ["mindpeeker"])
    assert taken is not None and inbox.done(taken)
    assert [a.state for a in inbox.history(delivery.id)] == ["done"]
    from .test_inbox_contract import refusal

    assert inbox.keep_refusal(refusal(0))
    assert len(inbox.refused()) == 1
    inbox.close()


def test_a_user_who_may_not_bring_the_tables_up_is_told_how(
    postgres_server: PostgresServer, postgres_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    _version_1(postgres_url)
    role = f"app_{uuid.uuid4().hex[:8]}"
    _execute(postgres_url, f"CREATE ROLE {role} LOGIN")
    _execute(
        postgres_url,
        f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {role}",
    )
    app_url = postgres_url.replace("postgresql://postgres@", f"postgresql://{role}@")
    with pytest.raises(psycopg.OperationalError) as raised:
        PostgresInbox(app_url, key=KEY).counts()
    message = str(raised.value)
    assert "are of version 1 and this user may not bring them to version 2" in message
    assert "hookshield inbox init --inbox DSN" in message
    # Done once by the owner, as the message says; then the application's user goes on.
    from hookshield.cli import main

    assert main(["inbox", "init", "--inbox", postgres_url]) == 0
    assert capsys.readouterr().out == "ready: hookshield_inbox, hookshield_dedupe\n"
    _execute(
        postgres_url,
        f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {role}",
    )
    app = PostgresInbox(app_url, key=KEY)
    assert app.counts()["pending"] == 1
    app.close()


def test_the_printed_sql_brings_up_an_inbox_of_version_1(postgres_url: str) -> None:
    delivery = _version_1(postgres_url)
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute(schema_sql().encode())  # as a person runs it with psql
        conn.execute(schema_sql().encode())  # and again: it is idempotent
    assert _execute(postgres_url, "SELECT name, version FROM hookshield_schema ORDER BY name") == [
        ("hookshield_dedupe", 1),
        ("hookshield_inbox", INBOX_VERSION),
    ]
    # Not even the first use of this version changes the tables now: they are up to date.
    inbox = PostgresInbox(postgres_url, key=KEY, create=False)
    assert inbox.get(delivery.id) == delivery
    assert inbox.requeue([delivery.id]) == 1
    assert [a.state for a in inbox.history(delivery.id)] == ["requeued"]
    inbox.close()


def _valid_index(url: str, name: str) -> bool:
    rows = _execute(
        url, "SELECT indisvalid FROM pg_index WHERE indexrelid = to_regclass(%s)", (name,)
    )
    return rows == [(True,)]


def test_an_inbox_without_the_browsing_index_says_so_and_init_makes_it(
    postgres_url: str, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    PostgresInbox(postgres_url, key=KEY).make_tables()
    assert _valid_index(postgres_url, "hookshield_inbox_received")  # made with the tables
    # An inbox of version 2 made before the index: this release works with it as it is,
    # and an earlier one works with the index made (it is not counted in the version).
    _execute(postgres_url, "DROP INDEX hookshield_inbox_received")
    with caplog.at_level(logging.WARNING, logger="hookshield"):
        inbox = PostgresInbox(postgres_url, key=KEY, create=False)
        inbox.put(_stored())
    [warning] = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert "lacks the index" in warning and "hookshield inbox init --inbox DSN" in warning
    assert inbox.counts()["pending"] == 1
    inbox.close()
    from hookshield.cli import main

    assert main(["inbox", "init", "--inbox", postgres_url]) == 0
    capsys.readouterr()
    assert _valid_index(postgres_url, "hookshield_inbox_received")
    assert _execute(
        postgres_url, "SELECT version FROM hookshield_schema WHERE name = %s", ("hookshield_inbox",)
    ) == [(INBOX_VERSION,)]
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="hookshield"):
        again = PostgresInbox(postgres_url, key=KEY, create=False)
        assert again.counts()["pending"] == 1
    assert not [r for r in caplog.records if r.levelno == logging.WARNING]
    again.close()


def test_the_newest_first_page_reads_the_index_not_the_whole_table(postgres_url: str) -> None:
    inbox = PostgresInbox(postgres_url, key=KEY)
    inbox.make_tables()
    _execute(
        postgres_url,
        "INSERT INTO hookshield_inbox (id, sender, handler, body, headers, received, event_types,"
        " attempts, state, next_attempt) SELECT 'd' || n, 'moco', 'h', '\\x00', '[]', n, '[]', 1,"
        " 'done', 0 FROM generate_series(1, 20000) AS n",
    )
    _execute(postgres_url, "ANALYZE hookshield_inbox")
    [(plan,)] = _execute(
        postgres_url,
        "EXPLAIN (FORMAT JSON) SELECT id FROM hookshield_inbox WHERE true"
        " ORDER BY received DESC, id DESC LIMIT 50",
    )
    text = json.dumps(plan)
    assert "hookshield_inbox_received" in text and "Sort" not in text
    assert [d.id for d in inbox.find(DeliveryFilter(), limit=3)] == ["d20000", "d19999", "d19998"]
    inbox.close()


def test_refusals_kept_at_once_by_many_threads_hold_the_bound(postgres_url: str) -> None:
    from .test_inbox_contract import refusal

    inboxes = [PostgresInbox(postgres_url, key=KEY, keep_refused=5) for _ in range(6)]
    for inbox in inboxes:
        inbox.make_tables()
    start = threading.Barrier(len(inboxes))
    kept: list[bool] = []
    took: list[float] = []

    def keep(index: int) -> None:
        start.wait(timeout=30)
        for n in range(10):
            began = time.monotonic()
            kept.append(inboxes[index].keep_refusal(refusal(index * 100 + n)))
            took.append(time.monotonic() - began)

    threads = [threading.Thread(target=keep, args=(i,)) for i in range(len(inboxes))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert len(kept) == 60 and sum(kept) >= 5
    assert len(inboxes[0].refused(limit=100)) == 5  # exactly the bound, never one over
    assert max(took) < 2.0  # a refusal waits briefly, or is dropped
    for inbox in inboxes:
        inbox.close()
