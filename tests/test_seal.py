"""Sealed deliveries: what the seal covers, and the inbox key that lives outside the inbox."""

from __future__ import annotations

import dataclasses
import json
import os
import sqlite3
import stat
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hookshield import (
    InboxKey,
    SQLiteInbox,
    StoredDelivery,
    TamperedDelivery,
    WebhookHandler,
    run_stored,
    run_worker,
)
from hookshield._durable.inbox import new_id
from hookshield.cli import main
from hookshield.testing import sample_body, sign

from .conftest import CREDENTIALS

KEY = "tests-inbox-key-0123456789abcdef"


def delivery(event_id: str = "evt_1", **changes: object) -> StoredDelivery:
    """A signed MindPeeker delivery as an inbox stores it, due now."""
    payload = json.loads(sample_body("mindpeeker", "session.completed"))
    payload["id"] = event_id
    body = json.dumps(payload).encode()
    headers = sign("mindpeeker", body, **CREDENTIALS["mindpeeker"])
    made = StoredDelivery(
        id=new_id(),
        sender="mindpeeker",
        handler="mindpeeker",
        body=body,
        headers=tuple(headers.items()),
        received=1_700_000_000.25,
        event_types=("session.completed",),
    )
    return dataclasses.replace(made, **changes)  # type: ignore[arg-type]


def recording() -> tuple[WebhookHandler, list[str | None]]:
    handler = WebhookHandler("mindpeeker", **CREDENTIALS["mindpeeker"])
    seen: list[str | None] = []
    handler.on("*")(lambda event: seen.append(event.id))
    return handler, seen


# -- InboxKey -------------------------------------------------------------------------------

#: A change to each field the seal covers: each decides what a worker runs.
COVERED: dict[str, Any] = {
    "id": "01a0000000000000deadbeef",
    "sender": "moco",
    "handler": "moco",
    "received": 1_700_000_000.5,
    "body": b'{"id": "evt_other"}',
    "headers": (("content-type", "application/json"), ("x-github-event", "push")),
    "event_types": ("session.failed",),
    "events": ("evt_1",),
}


@pytest.mark.parametrize("field", list(COVERED))
def test_the_seal_covers_each_field_that_decides_what_runs(field: str) -> None:
    key = InboxKey(KEY)
    sealed = key.seal(delivery())
    key.check(sealed)
    with pytest.raises(TamperedDelivery, match="seal does not match"):
        key.check(dataclasses.replace(sealed, **{field: COVERED[field]}))


def test_the_seal_leaves_out_the_schedule_which_workers_change() -> None:
    key = InboxKey(KEY)
    sealed = key.seal(delivery())
    moved = dataclasses.replace(
        sealed, state="dead", attempts=7, next_attempt=5.0, last_error="boom", lease_id="x"
    )
    key.check(moved)


@given(
    first=st.lists(st.text(max_size=6), min_size=3, max_size=3),
    second=st.lists(st.text(max_size=6), min_size=3, max_size=3),
)
def test_fields_are_length_prefixed_so_no_two_deliveries_seal_alike(
    first: list[str], second: list[str]
) -> None:
    # "ab" + "c" and "a" + "bc" run together alike; their seals must not.
    key = InboxKey(KEY)
    one = delivery(id=first[0], sender=first[1], handler=first[2], headers=())
    other = delivery(id=second[0], sender=second[1], handler=second[2], headers=())
    assert (key.seal_of(one) == key.seal_of(other)) == (first == second)


def test_a_delivery_without_a_seal_or_with_another_keys_is_refused() -> None:
    key = InboxKey(KEY)
    with pytest.raises(TamperedDelivery, match="has no seal"):
        key.check(delivery())
    with pytest.raises(TamperedDelivery, match=f"another key than this one \\(key id {key.id}\\)"):
        key.check(InboxKey(KEY + "-other").seal(delivery()))


def test_a_key_is_long_enough_and_never_shown() -> None:
    with pytest.raises(ValueError, match="at least 16 bytes, not 5"):
        InboxKey("short")
    with pytest.raises(TypeError, match="text or bytes"):
        InboxKey(42)  # type: ignore[arg-type]
    key = InboxKey(KEY.encode())
    assert key.id == InboxKey(KEY).id and len(key.id) == 16
    assert KEY not in repr(key) and repr(key) == f"InboxKey(id={key.id!r})"


def test_run_stored_checks_the_seal_for_a_queue_of_your_own() -> None:
    handler, seen = recording()
    key = InboxKey(KEY)
    sealed = key.seal(delivery("evt_own_queue"))
    assert run_stored(handler, sealed, key=key) == 1 and seen == ["evt_own_queue"]
    with pytest.raises(TamperedDelivery):
        run_stored(handler, dataclasses.replace(sealed, received=0.0), key=key)
    assert seen == ["evt_own_queue"]


# -- SQLiteInbox's key ----------------------------------------------------------------------


@pytest.fixture(autouse=True)
def no_key_in_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HOOKSHIELD_INBOX_KEY", raising=False)


def test_the_key_file_is_made_beside_the_database_for_its_owner_only(tmp_path: Path) -> None:
    web = SQLiteInbox(tmp_path / "inbox.db")
    web.put(delivery("evt_shared"))
    assert web.key_path == tmp_path / "inbox.db-key"
    assert stat.S_IMODE(os.stat(web.key_path).st_mode) == 0o600
    text = web.key_path.read_text()
    # Never in the database: no row, no table holds it.
    dump = "\n".join(sqlite3.connect(web.path).iterdump())
    assert text.strip() not in dump
    # A worker opening the same file shares the key with nothing to configure.
    handler, seen = recording()
    assert run_worker(SQLiteInbox(tmp_path / "inbox.db"), handler, burst=True).done == 1
    assert seen == ["evt_shared"]


def test_a_missing_key_fails_closed_with_a_clear_message(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "inbox.db"
    web = SQLiteInbox(path)
    web.put(delivery())
    web.key_path.unlink()
    worker = SQLiteInbox(path)
    with pytest.raises(ValueError, match=r"the inbox's key is missing: .*inbox\.db-key' does not"):
        worker.lease(2e9, ["mindpeeker"])
    with pytest.raises(ValueError, match="key is missing"):
        worker.put(delivery())  # the web side then answers 503: nothing stored unsealed
    assert not worker.key_path.exists()  # and no new key made in its place
    code = main(["worker", "tests.integration.apps:hooks", "--inbox", str(path), "--burst"])
    assert code == 2
    assert "the inbox's key is missing" in capsys.readouterr().err


def test_a_process_given_another_key_is_refused_at_once(tmp_path: Path) -> None:
    path = tmp_path / "inbox.db"
    SQLiteInbox(path, key=KEY).put(delivery())
    assert not (tmp_path / "inbox.db-key").exists()  # a given key makes no key file
    for other in (SQLiteInbox(path), SQLiteInbox(path, key=KEY + "-other")):
        with pytest.raises(ValueError, match=r"is sealed with another key|key is missing"):
            other.counts()
    assert SQLiteInbox(path, key=KEY).counts()["pending"] == 1


def test_the_web_app_and_the_worker_may_share_the_key_by_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOOKSHIELD_INBOX_KEY", KEY)
    path = tmp_path / "inbox.db"
    SQLiteInbox(path).put(delivery("evt_env"))
    handler, seen = recording()
    assert run_worker(SQLiteInbox(path), handler, burst=True).done == 1
    assert seen == ["evt_env"] and not (tmp_path / "inbox.db-key").exists()
    monkeypatch.setenv("HOOKSHIELD_INBOX_KEY", "short")
    with pytest.raises(ValueError, match="at least 16 bytes"):
        SQLiteInbox(path)


#: The schema of the inbox files that hookshield made before rows were sealed.
UNSEALED_SCHEMA = """
CREATE TABLE hookshield_inbox (
    id TEXT PRIMARY KEY, sender TEXT NOT NULL, handler TEXT NOT NULL, body BLOB NOT NULL,
    headers TEXT NOT NULL, received REAL NOT NULL, event_types TEXT NOT NULL, events TEXT,
    attempts INTEGER NOT NULL, state TEXT NOT NULL, next_attempt REAL NOT NULL,
    last_error TEXT
);
CREATE INDEX hookshield_inbox_due
    ON hookshield_inbox (next_attempt, id) WHERE state IN ('pending', 'leased');
"""


def unsealed_inbox(folder: Path) -> Path:
    """An inbox file in ``folder`` as a hookshield that did not seal rows made it."""
    path = folder / "inbox.db"
    old = sqlite3.connect(path)
    old.executescript(UNSEALED_SCHEMA)
    old.close()
    return path


def insert_unsealed(path: Path, row: StoredDelivery) -> None:
    """Store ``row`` as a hookshield that did not seal rows did."""
    db = sqlite3.connect(path)
    db.execute(
        "INSERT INTO hookshield_inbox (id, sender, handler, body, headers, received, "
        "event_types, events, attempts, state, next_attempt, last_error) "
        "VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
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
            0.0,
            None,
        ),
    )
    db.commit()
    db.close()


def test_rows_an_earlier_release_stored_keep_only_what_this_one_keeps_once_sealed(
    tmp_path: Path,
) -> None:
    # The release before seals kept every header of a delivery: a cookie, a proxy's
    # X-Forwarded-For, a credential in Authorization stayed at rest in done and dead
    # rows until purged.  Sealed by this release, each row keeps what it keeps now.
    path = unsealed_inbox(tmp_path)
    stray = (
        ("Cookie", "session=s3cr3t"),
        ("Authorization", "Bearer unrelated-token"),
        ("X-Forwarded-For", "203.0.113.9"),
    )
    known = delivery("evt_before")
    known = dataclasses.replace(known, headers=known.headers + stray)
    # A described sender this process has not registered: only what no sender reads goes.
    described = delivery(
        "evt_described",
        sender="acme",
        handler="acme",
        headers=(("X-Acme-Signature", "sha256=00"), ("X-Request-Id", "r-1"), *stray),
    )
    insert_unsealed(path, known)
    insert_unsealed(path, described)
    inbox = SQLiteInbox(path)
    got = inbox.get(known.id)
    assert got is not None
    assert {name.lower() for name, _ in got.headers} == {"content-type", "x-mindpeeker-signature"}
    other = inbox.get(described.id)
    assert other is not None
    assert [name for name, _ in other.headers] == ["X-Acme-Signature", "X-Request-Id"]
    inbox.check_seal(other)  # sealed as cut
    handler, seen = recording()
    assert run_worker(inbox, handler, burst=True).done == 1  # still verified and run
    assert seen == ["evt_before"]


def test_rows_of_an_inbox_made_before_seals_are_sealed_once_and_later_unsealed_ones_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = unsealed_inbox(tmp_path)
    insert_unsealed(path, delivery("evt_before"))
    handler, seen = recording()
    # First opened by this version: the rows it finds are sealed as they stand.
    assert run_worker(SQLiteInbox(path), handler, burst=True).done == 1
    assert seen == ["evt_before"]
    # A row an older version stores afterwards (a web process not yet upgraded) has
    # no seal: refused, until a person vouches for it.
    late = delivery("evt_late")
    insert_unsealed(path, late)
    inbox = SQLiteInbox(path)
    assert run_worker(inbox, handler, burst=True).dead == 1
    got = inbox.get(late.id)
    assert got is not None and got.last_error is not None
    assert "has no seal" in got.last_error and "hookshield inbox seal" in got.last_error
    capsys.readouterr()
    assert main(["inbox", "show", late.id, "--inbox", str(path)]) == 0
    assert "seal:         none: a worker refuses it" in capsys.readouterr().out
    assert main(["inbox", "seal", late.id, "--inbox", str(path)]) == 0
    assert "sealed 1 of 1" in capsys.readouterr().out
    assert main(["inbox", "retry", late.id, "--inbox", str(path)]) == 0
    assert run_worker(inbox, handler, burst=True).done == 1
    assert seen == ["evt_before", "evt_late"]
    assert main(["inbox", "seal", "nope", "--inbox", str(path)]) == 1
