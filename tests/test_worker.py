"""The worker: done, retried with backoff, dead-lettered; and the ``hookshield inbox`` commands."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import os
import signal
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from hookshield import Event, Retry, SQLiteInbox, StoredDelivery, WebhookHandler, run_worker
from hookshield._durable.inbox import new_id
from hookshield._durable.worker import Worker
from hookshield.cli import main
from hookshield.testing import sample_batch, sample_body, sample_delivery, sign

from .conftest import CREDENTIALS

NOW = 1_800_000_000.0


class Clock:
    """A fake clock; ``sleep`` moves it forward instead of waiting."""

    def __init__(self) -> None:
        self.now = NOW
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def mindpeeker() -> tuple[WebhookHandler, list[str]]:
    handler = WebhookHandler("mindpeeker", **CREDENTIALS["mindpeeker"])
    seen: list[str] = []
    handler.on("*")(lambda event: seen.append(event.id))
    return handler, seen


def put_signed(
    inbox: SQLiteInbox, body: bytes, headers: dict[str, str], *, sender: str = "mindpeeker"
) -> StoredDelivery:
    now = time.time() - 1  # due now, for a worker on the real clock
    stored = StoredDelivery(
        id=new_id(now),
        sender=sender,
        handler=sender,
        body=body,
        headers=tuple(headers.items()),
        received=now,
        event_types=("session.completed",),
        next_attempt=now,
    )
    inbox.put(stored)
    return stored


def signed(event_id: str) -> tuple[bytes, dict[str, str]]:
    """A MindPeeker delivery whose event has the id ``event_id``."""
    payload = json.loads(sample_body("mindpeeker", "session.completed"))
    payload["id"] = event_id
    body = json.dumps(payload).encode()
    return body, sign("mindpeeker", body, **CREDENTIALS["mindpeeker"])


def put_sample(inbox: SQLiteInbox, event_id: str = "evt_1") -> StoredDelivery:
    return put_signed(inbox, *signed(event_id))


@pytest.fixture
def inbox(tmp_path: Path) -> SQLiteInbox:
    return SQLiteInbox(tmp_path / "inbox.db", lease=60.0)


def test_a_delivery_runs_and_is_done(inbox: SQLiteInbox) -> None:
    handler, seen = mindpeeker()
    stored = put_sample(inbox, "evt_ok")
    stats = run_worker(inbox, handler, burst=True)
    assert seen == ["evt_ok"]
    assert (stats.done, stats.total) == (1, 1)
    got = inbox.get(stored.id)
    assert got is not None and (got.state, got.attempts) == ("done", 1)


def test_a_raising_route_is_retried_with_backoff_then_dead_lettered(
    inbox: SQLiteInbox, caplog: pytest.LogCaptureFixture
) -> None:
    handler = WebhookHandler("mindpeeker", **CREDENTIALS["mindpeeker"])
    calls: list[float] = []
    errors: list[str] = []
    clock = Clock()

    @handler.on("*")
    def fails(event: Event) -> None:
        calls.append(clock.now)
        raise RuntimeError("the database is down")

    handler.on_error(lambda exc, event: errors.append(str(exc)))
    stored = put_sample(inbox)
    retry = Retry(max_attempts=4, base_delay=10.0, max_delay=25.0)
    worker = Worker(inbox, {"mindpeeker": handler}, retry, clock, rand=lambda: 1.0)
    while worker.stats.dead == 0:
        if not worker.run_once():
            clock.sleep(1.0)
    # Full jitter at its ceiling (rand=1): 10 s, 20 s, then capped at 25 s.
    assert [round(t - NOW) for t in calls] == [0, 10, 30, 55]
    assert errors == ["the database is down"] * 4
    assert (worker.stats.retried, worker.stats.dead) == (3, 1)
    got = inbox.get(stored.id)
    assert got is not None
    assert (got.state, got.attempts) == ("dead", 4)
    assert got.last_error == "RuntimeError: the database is down"
    assert "moved to dead-letter after 4 attempts" in caplog.text


def test_an_error_of_any_text_is_noted_with_the_retry(inbox: SQLiteInbox) -> None:
    # A route's exception may hold a lone surrogate (text decoded from odd bytes) or a
    # NUL: the retry is recorded all the same, not refused by the inbox for ever.
    handler = WebhookHandler("mindpeeker", **CREDENTIALS["mindpeeker"])

    @handler.on("*")
    def fails(event: Event) -> None:
        raise ValueError("bad byte \udc80 and \x00 in the data")

    stored = put_sample(inbox)
    stats = run_worker(inbox, handler, burst=True)
    assert (stats.retried, stats.total) == (1, 1)
    got = inbox.get(stored.id)
    assert got is not None and got.state == "pending"
    assert got.last_error == "ValueError: bad byte \\udc80 and \\x00 in the data"


def test_async_routes_of_a_worker_thread_share_one_event_loop(inbox: SQLiteInbox) -> None:
    # A client made in one async route (its connection pool bound to the loop) still
    # works in the next: the thread keeps its loop while the worker runs.
    handler = WebhookHandler("mindpeeker", **CREDENTIALS["mindpeeker"])
    loops: list[asyncio.AbstractEventLoop] = []

    @handler.on("*")
    async def record(event: Event) -> None:
        loops.append(asyncio.get_running_loop())

    put_sample(inbox, "evt_a")
    put_sample(inbox, "evt_b")
    assert run_worker(inbox, handler, burst=True).done == 2
    assert len(loops) == 2 and loops[0] is loops[1]
    assert loops[0].is_closed()  # closed when the worker stopped


def test_concurrent_workers_on_one_file_run_each_delivery_once(inbox: SQLiteInbox) -> None:
    handler, seen = mindpeeker()
    for n in range(20):
        put_sample(inbox, f"evt_{n}")
    stats = run_worker(inbox, handler, burst=True, concurrency=3)
    assert stats.done == 20 and sorted(seen) == sorted(f"evt_{n}" for n in range(20))


def test_bad_concurrency_and_stop_timeout_are_refused(inbox: SQLiteInbox) -> None:
    handler, _ = mindpeeker()
    with pytest.raises(ValueError, match="concurrency must be at least 1"):
        run_worker(inbox, handler, burst=True, concurrency=0)
    with pytest.raises(TypeError, match="concurrency must be an int"):
        run_worker(inbox, handler, burst=True, concurrency=2.0)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="stop_timeout"):
        run_worker(inbox, handler, burst=True, stop_timeout=-1)


def test_a_delivery_that_kills_its_worker_is_dead_lettered_after_max_attempts(
    inbox: SQLiteInbox, caplog: pytest.LogCaptureFixture
) -> None:
    handler, seen = mindpeeker()
    stored = put_sample(inbox, "evt_oom")
    clock = Clock()
    # Two workers leased it and died mid-route: nothing settled, each lease ran out.
    for _ in range(2):
        assert inbox.lease(clock(), ["mindpeeker"]) is not None
        clock.sleep(61.0)
    worker = Worker(inbox, {"mindpeeker": handler}, Retry(max_attempts=2), clock)
    assert worker.run_once()
    assert seen == []  # not run a third time
    assert worker.stats.dead == 1
    got = inbox.get(stored.id)
    assert got is not None and (got.state, got.attempts) == ("dead", 3)
    assert got.last_error is not None
    assert got.last_error.startswith("attempt 2 of at most 2 ended unsettled: the worker died")
    assert "moved to dead-letter" in caplog.text
    assert not worker.run_once()  # and it stays there


def test_full_jitter_is_uniform_below_the_ceiling() -> None:
    retry = Retry(base_delay=30.0, max_delay=3600.0)
    assert retry.ceiling(1) == 30.0
    assert retry.ceiling(3) == 120.0
    assert retry.ceiling(200) == 3600.0
    assert retry.delay(3, lambda: 0.0) == 0.0
    assert retry.delay(3, lambda: 0.5) == 60.0


def test_the_default_attempts_span_about_a_day_on_average() -> None:
    retry = Retry()
    # The expected wait after a failure is half its ceiling (uniform jitter).
    expected = sum(retry.ceiling(n) / 2 for n in range(1, retry.max_attempts))
    assert 20 * 3600 < expected < 30 * 3600


def test_bad_retry_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="max_attempts"):
        Retry(max_attempts=0)
    with pytest.raises(ValueError, match="base_delay"):
        Retry(base_delay=10.0, max_delay=5.0)


def test_a_tampered_row_is_refused_and_dead_lettered(
    inbox: SQLiteInbox, caplog: pytest.LogCaptureFixture
) -> None:
    handler, seen = mindpeeker()
    body, headers = signed("evt_t")
    stored = put_signed(inbox, body.replace(b"evt_t", b"evt_x"), headers)
    stats = run_worker(inbox, handler, burst=True)
    assert seen == []
    assert stats.dead == 1
    got = inbox.get(stored.id)
    assert got is not None and got.state == "dead"
    assert got.last_error is not None and "does not verify" in got.last_error
    assert "dead-letter" in caplog.text


def test_a_delivery_the_worker_cannot_verify_names_a_credential_mismatch(
    inbox: SQLiteInbox, caplog: pytest.LogCaptureFixture
) -> None:
    # The web app verified it with its secret; this worker was given another one.
    handler, seen = mindpeeker()
    body = json.dumps({"id": "evt_k", "type": "session.completed", "data": {}}).encode()
    stored = put_signed(inbox, body, sign("mindpeeker", body, secret="the-web-apps-secret"))
    stats = run_worker(inbox, handler, burst=True)
    assert (stats.dead, seen) == (1, [])
    got = inbox.get(stored.id)
    assert got is not None and got.last_error is not None
    assert got.last_error.startswith("the stored delivery does not verify: ")
    likely = "this worker's credential most likely differs from the web app's"
    assert likely in got.last_error
    assert likely in caplog.text


def test_a_lowered_max_attempts_is_named_not_a_dead_worker(inbox: SQLiteInbox) -> None:
    # Three attempts failed and were retried under the default limit; then the worker
    # is restarted with a limit of 1.  No worker died.
    handler, seen = mindpeeker()
    stored = put_sample(inbox, "evt_low")
    clock = Clock()
    for attempt in range(3):
        taken = inbox.lease(clock(), ["mindpeeker"])
        assert taken is not None and inbox.retry(taken, clock(), f"RuntimeError: try {attempt}")
    worker = Worker(inbox, {"mindpeeker": handler}, Retry(max_attempts=1), clock)
    assert worker.run_once() and worker.stats.dead == 1
    got = inbox.get(stored.id)
    assert got is not None and got.state == "dead" and got.last_error is not None
    assert "died" not in got.last_error
    assert got.last_error == (
        "3 attempts were made before the most allowed was lowered to 1, so it is not run "
        "again (last error: RuntimeError: try 2)"
    )
    assert seen == []


def test_the_worker_warns_of_deliveries_for_a_sender_it_has_no_handler_for(
    inbox: SQLiteInbox, caplog: pytest.LogCaptureFixture
) -> None:
    handler, seen = mindpeeker()
    put_sample(inbox, "evt_mine")
    for _ in range(2):
        put_signed(inbox, b"{}", {}, sender="moco")
    with caplog.at_level(logging.WARNING, logger="hookshield"):
        stats = run_worker(inbox, handler, burst=True)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings == [
        "hookshield: 2 deliveries for 'moco' wait in the inbox, but this worker has no "
        "handler for 'moco' (it runs mindpeeker): they wait until a worker with one runs"
    ]
    assert (stats.done, seen) == (1, ["evt_mine"])  # and it ran the rest
    assert inbox.waiting() == {"moco": 2}


def test_only_the_new_events_of_a_batch_run(inbox: SQLiteInbox) -> None:
    handler = WebhookHandler("momentum", **CREDENTIALS["momentum"])
    seen: list[str | None] = []
    handler.on("*")(lambda event: seen.append(event.id))
    records = json.loads(sample_batch(["delivery", "bounce", "click"]))
    body = json.dumps(records).encode()
    headers = sign("momentum", body, **CREDENTIALS["momentum"])
    ids = [event.id for event in handler.verify(body, headers).events]
    stored = put_signed(inbox, body, headers, sender="momentum")
    inbox.requeue([stored.id])
    # As the adapter stores it when the first event was handled before.
    with_events = dataclasses.replace(stored, id=new_id(NOW + 1), events=tuple(map(str, ids[1:])))
    inbox.put(with_events)
    run_worker(inbox, handler, burst=True)
    assert sorted(map(str, seen)) == sorted(map(str, [*ids, *ids[1:]]))


def test_a_lease_lost_to_another_worker_is_counted_not_settled(
    inbox: SQLiteInbox, caplog: pytest.LogCaptureFixture
) -> None:
    handler = WebhookHandler("mindpeeker", **CREDENTIALS["mindpeeker"])
    clock = Clock()
    stored = put_sample(inbox)

    @handler.on("*")
    def slow(event: Event) -> None:
        clock.now += 120  # longer than the 60 s lease: another worker takes it over
        assert inbox.lease(clock.now, ["mindpeeker"]) is not None

    worker = Worker(inbox, {"mindpeeker": handler}, Retry(), clock)
    assert worker.run_once()
    assert worker.stats.lost == 1
    got = inbox.get(stored.id)
    assert got is not None and (got.state, got.attempts) == ("leased", 2)
    assert "another worker has it now" in caplog.text


def test_the_worker_waits_when_nothing_is_due_and_stops_when_told(inbox: SQLiteInbox) -> None:
    handler, _ = mindpeeker()
    stop = threading.Event()
    clock = Clock()

    def sleep(seconds: float) -> None:
        clock.sleep(seconds)
        if len(clock.slept) == 3:
            stop.set()

    stats = run_worker(inbox, handler, poll=2.0, stop=stop, clock=clock, sleep=sleep)
    assert clock.slept == [2.0, 2.0, 2.0]
    assert stats.total == 0


def test_an_inbox_error_is_logged_and_the_worker_backs_off_then_goes_on(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    import sqlite3

    inbox = SQLiteInbox(tmp_path / "inbox.db", lease=60.0, timeout=0.05)
    handler, seen = mindpeeker()
    put_sample(inbox, "evt_after_lock")
    holder = sqlite3.connect(inbox.path, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")  # another process holds the file: leasing fails
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        if len(slept) == 3:
            holder.execute("ROLLBACK")

    try:
        stats = run_worker(inbox, handler, poll=10.0, sleep=sleep, burst=True)
    finally:
        holder.close()
    assert slept == [20.0, 30.0, 30.0]  # doubling, bounded by MAX_PAUSE
    assert seen == ["evt_after_lock"] and stats.done == 1
    assert "the inbox failed (3 in a row), trying again in 30.0 s" in caplog.text
    assert "database is locked" in caplog.text


def test_sigterm_stops_the_worker_after_the_current_delivery(inbox: SQLiteInbox) -> None:
    handler = WebhookHandler("mindpeeker", **CREDENTIALS["mindpeeker"])
    seen: list[str | None] = []

    @handler.on("*")
    def record(event: Event) -> None:
        seen.append(event.id)
        if len(seen) == 1:
            os.kill(os.getpid(), signal.SIGTERM)

    for index in range(3):
        put_sample(inbox, f"evt_{index}")
    before = signal.getsignal(signal.SIGTERM)
    safety = threading.Timer(10, os.kill, (os.getpid(), signal.SIGINT))  # never hang
    safety.start()
    try:
        stats = run_worker(inbox, handler)
    finally:
        safety.cancel()
    assert len(seen) == 1 and stats.done == 1
    assert signal.getsignal(signal.SIGTERM) is before  # put back


def test_handlers_are_named_by_provider_once(inbox: SQLiteInbox) -> None:
    handler, _ = mindpeeker()
    other, _ = mindpeeker()
    with pytest.raises(ValueError, match="two handlers"):
        run_worker(inbox, handler, other, burst=True)
    with pytest.raises(ValueError, match="at least one"):
        run_worker(inbox, burst=True)
    with pytest.raises(TypeError, match="WebhookHandler"):
        run_worker(inbox, object(), burst=True)  # type: ignore[arg-type]


# -- hookshield worker / hookshield inbox ------------------------------------------------


HOOKS = """
from hookshield import WebhookHandler
mindpeeker = WebhookHandler("mindpeeker", secret={secret!r})
SEEN = {seen!r}

@mindpeeker.on("*")
def record(event):
    if event.id == "evt_fail":
        raise RuntimeError("cannot handle evt_fail")
    with open(SEEN, "a") as seen:
        seen.write(event.id + "\\n")

not_a_handler = 42
"""


@pytest.fixture
def app_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A directory with an importable ``hooks`` module, made the current one."""
    (tmp_path / "hooks_for_cli.py").write_text(
        HOOKS.format(secret=CREDENTIALS["mindpeeker"]["secret"], seen=str(tmp_path / "seen"))
    )
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("HOOKSHIELD_INBOX", raising=False)
    return tmp_path


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_worker_runs_the_inbox_and_the_inbox_commands_show_it(
    app_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = str(app_dir / "webhooks.db")
    inbox = SQLiteInbox(db)
    good, bad = put_sample(inbox, "evt_good"), put_sample(inbox, "evt_fail")
    code, out, _ = cli(
        capsys,
        "worker",
        "hooks_for_cli:mindpeeker",
        "--inbox",
        db,
        "--burst",
        "--max-attempts",
        "1",
    )
    assert code == 0
    assert "1 done, 0 retried, 1 dead-lettered" in out
    assert (app_dir / "seen").read_text() == "evt_good\n"

    code, out, _ = cli(capsys, "inbox", "ls", "--inbox", db)
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split() == [
        "ID",
        "SENDER",
        "EVENTS",
        "STATE",
        "ATTEMPTS",
        "LAST",
        "ERROR",
        "AGE",
    ]
    assert any(good.id in line and " done " in line for line in lines)
    assert any(bad.id in line and " dead " in line and "RuntimeError" in line for line in lines)
    assert lines[-1] == "0 pending, 0 leased, 1 done, 1 dead"

    code, out, _ = cli(capsys, "inbox", "ls", "--state", "dead", "--inbox", db)
    assert good.id not in out and bad.id in out
    code, out, _ = cli(capsys, "inbox", "ls", "--state", "pending", "--inbox", db)
    assert out.strip() == "no deliveries in state pending"

    code, out, _ = cli(capsys, "inbox", "show", bad.id, "--inbox", db)
    assert code == 0
    assert "state:        dead, 1 attempt(s)" in out
    assert "x-mindpeeker-signature: <hidden>" in out.lower()
    assert "evt_fail" in out  # the body
    row = put_signed(
        inbox,
        b"{}",
        {"Cookie": "session=abc", "Set-Cookie": "id=def", "X-Api-Key": "k", "X-Trace": "t1"},
    )
    code, out, _ = cli(capsys, "inbox", "show", row.id, "--inbox", db)
    assert code == 0
    for name in ("Cookie", "Set-Cookie", "X-Api-Key"):
        assert f"  {name}: <hidden>" in out
    assert "  X-Trace: t1" in out
    assert "session=abc" not in out and "id=def" not in out
    code, _, err = cli(capsys, "inbox", "show", "nope", "--inbox", db)
    assert code == 1 and "no delivery 'nope'" in err


def test_cli_retry_and_purge(app_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = str(app_dir / "webhooks.db")
    inbox = SQLiteInbox(db)
    handler = WebhookHandler("mindpeeker", **CREDENTIALS["mindpeeker"])
    handler.on("*")(lambda event: None)
    for index in range(3):
        stored = put_sample(inbox, f"evt_{index}")
        taken = inbox.lease(NOW, ["mindpeeker"])
        assert taken is not None and inbox.dead(taken, "boom")
    code, out, _ = cli(capsys, "inbox", "retry", "--dead", "--inbox", db)
    assert code == 0 and "3 dead-letter deliveries are pending again" in out
    assert inbox.counts()["pending"] == 3
    code, out, _ = cli(capsys, "inbox", "retry", stored.id, "--inbox", db)
    assert code == 0 and f"{stored.id}: pending, due now" in out
    code, _, err = cli(capsys, "inbox", "retry", "nope", "--inbox", db)
    assert code == 1 and "no delivery" in err
    leased = inbox.lease(NOW, ["mindpeeker"])
    assert leased is not None
    code, _, err = cli(capsys, "inbox", "retry", leased.id, "--inbox", db)
    assert code == 1 and "is leased to a worker now" in err
    assert inbox.retry(leased, 0.0, "let the next worker have it")  # its fence held

    run_worker(inbox, handler, burst=True)
    code, out, _ = cli(capsys, "inbox", "purge", "--done", "--older-than", "7d", "--inbox", db)
    assert code == 0 and "deleted 0 deliveries older than 7d" in out  # received just now
    code, out, _ = cli(capsys, "inbox", "purge", "--done", "--older-than", "0s", "--inbox", db)
    assert "deleted 3 deliveries" in out
    assert inbox.counts()["done"] == 0


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["inbox", "ls"], "name the inbox"),
        (["inbox", "purge", "--inbox", "x.db"], "--done, --dead or both"),
        (["inbox", "purge", "--done", "--older-than", "soon", "--inbox", "x.db"], "not an age"),
        (["worker", "hooks_for_cli", "--inbox", "x.db"], "module:name"),
        (["worker", "no_such_module:x", "--inbox", "x.db"], "no_such_module"),
        (["worker", "hooks_for_cli:missing", "--inbox", "x.db"], "missing"),
        (["worker", "hooks_for_cli:not_a_handler", "--inbox", "x.db"], "not a WebhookHandler"),
        (["worker", "hooks_for_cli:mindpeeker", "--inbox", "x.db", "--lease", "0"], "positive"),
        (["worker", "hooks_for_cli:mindpeeker", "--inbox", "x.db", "--lease", "inf"], "finite"),
        (["worker", "hooks_for_cli:mindpeeker", "--inbox", "x.db", "--lease", "nan"], "finite"),
        (["worker", "hooks_for_cli:mindpeeker", "--inbox", "x.db", "--poll", "nan"], "finite"),
        (["worker", "hooks_for_cli:mindpeeker", "--inbox", ":memory:"], "--inbox: SQLiteInbox"),
        (
            ["worker", "hooks_for_cli:mindpeeker", "hooks_for_cli:mindpeeker", "--inbox", "x.db"],
            "two handlers",
        ),
    ],
)
def test_cli_mistakes_exit_2(
    app_dir: Path, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    code, _, err = cli(capsys, *argv)
    assert code == 2
    assert message in err


def test_cli_ages() -> None:
    from hookshield._core.text import age
    from hookshield.cli._inbox import seconds

    assert [seconds(t) for t in ("90", "30m", "12h", "7d", "2w", "1.5h")] == [
        90,
        1800,
        43200,
        604800,
        1209600,
        5400,
    ]
    assert [age(s) for s in (5, 300, 7200, 3 * 86400, -1)] == ["5s", "5m", "2h", "3d", "0s"]


def test_a_worker_in_another_thread_leaves_signals_alone(inbox: SQLiteInbox) -> None:
    handler, seen = mindpeeker()
    put_sample(inbox, "evt_thread")
    before = signal.getsignal(signal.SIGTERM)
    results: list[int] = []
    thread = threading.Thread(
        target=lambda: results.append(run_worker(inbox, handler, burst=True).done)
    )
    thread.start()
    thread.join(10)
    assert results == [1] and seen == ["evt_thread"]
    assert signal.getsignal(signal.SIGTERM) is before


def test_a_timestamp_signed_delivery_that_waited_in_the_inbox_still_runs(
    inbox: SQLiteInbox,
) -> None:
    # Standard Webhooks refuses a signature more than five minutes old; the worker
    # judges it by when the delivery arrived, not by its own clock an hour on.
    secret = "whsec_" + "c2VjcmV0LWZvci10aGUtd29ya2Vy"
    handler = WebhookHandler("standard-webhooks", secret=secret)
    seen: list[str] = []
    handler.on("*")(lambda event: seen.append(event.type))
    arrived = time.time() - 3600
    body = b'{"type": "invoice.paid", "timestamp": "2026-01-01T00:00:00Z", "data": {}}'
    headers = sign("standard-webhooks", body, secret=secret, timestamp=int(arrived))
    inbox.put(
        StoredDelivery(
            id=new_id(arrived),
            sender="standard-webhooks",
            handler="standard-webhooks",
            body=body,
            headers=tuple(headers.items()),
            received=arrived,
            event_types=("invoice.paid",),
            next_attempt=arrived,
        )
    )
    stats = run_worker(inbox, handler, burst=True)
    assert (stats.done, seen) == (1, ["invoice.paid"])


def test_a_worker_that_hung_past_its_lease_cannot_settle_a_lease_taken_after_a_requeue(
    app_dir: Path, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    db = str(app_dir / "webhooks.db")
    inbox = SQLiteInbox(db, lease=60.0)
    clock = Clock()
    stored = put_sample(inbox, "evt_hung")
    hung = WebhookHandler("mindpeeker", **CREDENTIALS["mindpeeker"])
    other = WebhookHandler("mindpeeker", **CREDENTIALS["mindpeeker"])
    leases: list[StoredDelivery] = []

    @other.on("*")
    def fails(event: Event) -> None:
        raise RuntimeError("down")

    @hung.on("*")
    def stalls(event: Event) -> None:
        clock.now += 120  # the route hangs past its 60 s lease
        # Meanwhile another worker takes the delivery over and fails it to dead-letter,
        takeover = Worker(inbox, {"mindpeeker": other}, Retry(max_attempts=1), clock)
        assert takeover.run_once() and takeover.stats.dead == 1
        # someone runs `hookshield inbox retry --dead`, and a third worker leases it.
        assert main(["inbox", "retry", "--dead", "--inbox", db]) == 0
        again = inbox.lease(clock(), ["mindpeeker"])
        assert again is not None and again.attempts == 1
        leases.append(again)
        raise RuntimeError("the hung route finally fails")

    first = Worker(inbox, {"mindpeeker": hung}, Retry(), clock, rand=lambda: 0.0)
    assert first.run_once()
    # Its retry would have made the delivery due now, for a fourth worker to run
    # beside the third: it is refused instead, and the third still holds it.
    assert first.stats.lost == 1 and first.stats.retried == 0
    got = inbox.get(stored.id)
    assert got is not None and got.state == "leased"
    assert inbox.lease(clock() + 1, ["mindpeeker"]) is None
    assert inbox.done(leases[0])
    assert "another worker has it now" in caplog.text


def _edit_row(path: str | Path, delivery_id: str, column: str, old: bytes, new: bytes) -> None:
    """Change ``old`` to ``new`` in one column of a stored row, as a person with the file could."""
    db = sqlite3.connect(path)
    try:
        (value,) = db.execute(
            f"SELECT {column} FROM hookshield_inbox WHERE id = ?",  # noqa: S608 - a test's column
            (delivery_id,),
        ).fetchone()
        raw = value if isinstance(value, bytes) else value.encode()
        assert old in raw
        changed = raw.replace(old, new)
        db.execute(
            f"UPDATE hookshield_inbox SET {column} = ? WHERE id = ?",  # noqa: S608
            (changed if isinstance(value, bytes) else changed.decode(), delivery_id),
        )
        db.commit()
    finally:
        db.close()


#: For each sender, a change to its stored row that its own credential does not catch:
#: a token or Basic credential does not cover the body; an event type read from an
#: unsigned header is not covered by the signature over the body.
EDITS: dict[str, tuple[dict[str, Any], str, bytes, bytes]] = {
    "momentum": ({"token": "momentum-token"}, "body", b'"bounce"', b'"delivery"'),
    "petal": ({"basic_auth": ("petal", "pw")}, "body", b'"blink"', b'"eye"'),
    "github": ({"secret": "github-secret"}, "headers", b'"issues"', b'"release"'),
    "moco": ({"secret": "0123456789abcdef0123456789abcdef"}, "headers", b'"create"', b'"delete"'),
}


@pytest.mark.parametrize("sender", list(EDITS))
def test_a_row_changed_in_the_inbox_file_is_dead_lettered_never_run(
    tmp_path: Path, sender: str
) -> None:
    import flask

    from hookshield.flask import webhook_view

    credentials, column, old, new = EDITS[sender]
    handler = WebhookHandler(sender, **credentials)
    seen: list[str] = []
    handler.on("*")(lambda event: seen.append(event.type))
    inbox = SQLiteInbox(tmp_path / "inbox.db")
    app = flask.Flask(__name__)
    app.add_url_rule("/hooks", view_func=webhook_view(handler, background=inbox))
    kind = {"momentum": "bounce", "petal": "blink", "github": "issues.opened"}.get(
        sender, "activity.create"
    )
    body, headers = sample_delivery(sender, kind, **credentials)
    assert app.test_client().post("/hooks", data=body, headers=headers).status_code == 200
    [row] = inbox.list()
    _edit_row(inbox.path, row.id, column, old, new)
    stats = run_worker(inbox, handler, burst=True)
    assert seen == []
    assert stats.dead == 1
    got = inbox.get(row.id)
    assert got is not None and got.state == "dead"
    assert got.last_error is not None and "seal" in got.last_error
