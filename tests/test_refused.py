"""Refused deliveries kept for diagnosis (keep_refused), and checked again (recheck)."""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

import flask
import pytest
from starlette.applications import Starlette
from starlette.routing import Route
from starlette.testclient import TestClient

from hookshield import (
    RefusalKeeper,
    RefusedDelivery,
    SQLiteInbox,
    WebhookHandler,
    recheck,
    run_worker,
)
from hookshield._durable.refused import HIDDEN, MAX_HEADERS, MAX_VALUE, refused_delivery
from hookshield.asgi import WebhookApp
from hookshield.flask import webhook_view
from hookshield.testing import sample_delivery

OLD, NEW = "whsec_old_secret", "whsec_new_secret"
SW_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


@pytest.fixture
def inbox(tmp_path: Path) -> SQLiteInbox:
    return SQLiteInbox(tmp_path / "inbox.db", keep_refused=3)


def flask_client(handler: WebhookHandler, inbox: SQLiteInbox) -> Any:
    app = flask.Flask(__name__)
    app.add_url_rule("/hooks", view_func=webhook_view(handler, background=inbox))
    return app.test_client()


def test_sqlite_inbox_is_a_refusal_keeper(inbox: SQLiteInbox) -> None:
    assert isinstance(inbox, RefusalKeeper)
    assert inbox.keeps_refused
    assert not SQLiteInbox(inbox.path).keeps_refused  # off by default
    inbox.counts()  # made
    assert not SQLiteInbox(inbox.path, keep_refused=3, read_only=True).keeps_refused


def test_a_forgery_is_kept_with_its_reason_peer_and_credentials_hidden(
    inbox: SQLiteInbox,
) -> None:
    handler = WebhookHandler("mindpeeker", secret=NEW)
    body, headers = sample_delivery("mindpeeker", "session.completed", secret=OLD)
    sent = {
        **headers,
        "Authorization": "Bearer person-token",
        "X-Api-Token": "t0ken",
        "User-Agent": "MindPeeker/1.0",
    }
    client = flask_client(handler, inbox)
    client.set_cookie("session", "abc")  # Werkzeug's client sends its own Cookie header
    environ = {"REMOTE_ADDR": "203.0.113.9"}
    response = client.post("/hooks", data=body, headers=sent, environ_base=environ)
    assert response.status_code == 401
    (kept,) = inbox.refused()
    assert (kept.sender, kept.status, kept.error) == ("mindpeeker", 401, "InvalidSignature")
    assert "signature" in kept.reason
    assert kept.peer == "203.0.113.9"
    assert kept.body == body and kept.body_size == len(body) and kept.complete
    shown = dict(kept.headers)
    assert shown["authorization"] == shown["cookie"] == shown["x-api-token"] == HIDDEN
    assert shown["user-agent"] == "MindPeeker/1.0"
    # The signature covers the body and is what a re-check needs: kept as sent.
    assert shown["x-mindpeeker-signature"] == headers["X-MindPeeker-Signature"]
    assert inbox.get_refused(kept.id) == kept
    text = inbox.path.read_bytes() + Path(str(inbox.path) + "-wal").read_bytes()
    for secret in (b"person-token", b"session=abc", b"t0ken"):
        assert secret not in text


def test_a_refusal_before_the_body_is_kept_without_one(inbox: SQLiteInbox) -> None:
    handler = WebhookHandler("mindpeeker", secret=NEW)
    response = flask_client(handler, inbox).post(
        "/hooks", data=b'{"a": 1}', headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 401
    (kept,) = inbox.refused()
    assert kept.error == "MissingCredentials"
    assert kept.body == b"" and kept.body_size is None and not kept.complete


def test_accepted_deliveries_and_an_inbox_keeping_none_keep_nothing(tmp_path: Path) -> None:
    handler = WebhookHandler("mindpeeker", secret=NEW)
    keeping = SQLiteInbox(tmp_path / "a.db", keep_refused=3)
    body, headers = sample_delivery("mindpeeker", "session.completed", secret=NEW)
    client = flask_client(handler, keeping)
    assert client.post("/hooks", data=body, headers=headers).status_code == 200
    assert client.post("/hooks", data=body, headers=headers).status_code == 200  # duplicate
    assert keeping.refused() == []
    silent = SQLiteInbox(tmp_path / "b.db")
    forged, forged_headers = sample_delivery("mindpeeker", "session.completed", secret=OLD)
    assert (
        flask_client(handler, silent)
        .post("/hooks", data=forged, headers=forged_headers)
        .status_code
        == 401
    )
    assert silent.refused() == []
    tables = sqlite3.connect(silent.path).execute("SELECT name FROM sqlite_master").fetchall()
    assert ("hookshield_refused",) not in tables


def test_only_the_latest_n_are_kept(inbox: SQLiteInbox) -> None:
    handler = WebhookHandler("mindpeeker", secret=NEW)
    client = flask_client(handler, inbox)
    bodies = []
    for n in range(5):
        body, headers = sample_delivery("mindpeeker", "session.completed", {"n": n}, secret=OLD)
        client.post("/hooks", data=body, headers=headers)
        bodies.append(body)
    kept = inbox.refused(limit=10)
    assert [r.body for r in kept] == [bodies[4], bodies[3], bodies[2]]  # newest first
    assert inbox.refused(limit=1, before=kept[0].id) == [kept[1]]


def test_the_body_is_kept_up_to_its_bound_and_headers_are_bounded(tmp_path: Path) -> None:
    inbox = SQLiteInbox(tmp_path / "inbox.db", keep_refused=3, keep_refused_bytes=10)
    handler = WebhookHandler("mindpeeker", secret=NEW)
    body, headers = sample_delivery("mindpeeker", "session.completed", secret=OLD)
    many = {**headers, **{f"x-extra-{i}": "v" * 5000 for i in range(100)}}
    flask_client(handler, inbox).post("/hooks", data=body, headers=many)
    (kept,) = inbox.refused()
    assert kept.body == body[:10] and kept.body_size == len(body) and not kept.complete
    assert len(kept.headers) == MAX_HEADERS
    assert max(len(value) for _, value in kept.headers) == MAX_VALUE


def test_bad_options_are_refused(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match="keep_refused must be an int"):
        SQLiteInbox(tmp_path / "x.db", keep_refused=True)
    with pytest.raises(ValueError, match="keep_refused must be between"):
        SQLiteInbox(tmp_path / "x.db", keep_refused=-1)
    with pytest.raises(ValueError, match="keep_refused_bytes must be between"):
        SQLiteInbox(tmp_path / "x.db", keep_refused=1, keep_refused_bytes=0)


def test_an_asgi_app_keeps_refusals_after_answering(inbox: SQLiteInbox) -> None:
    handler = WebhookHandler("mindpeeker", secret=NEW)
    app = Starlette(routes=[Route("/hooks", WebhookApp(handler, background=inbox))])
    body, headers = sample_delivery("mindpeeker", "session.completed", secret=OLD)
    with TestClient(app) as client:
        assert client.post("/hooks", content=body, headers=headers).status_code == 401
        assert client.post("/hooks", content=b"{}").status_code == 401
    errors = sorted(r.error for r in inbox.refused())
    assert errors == ["InvalidSignature", "MissingCredentials"]
    assert {r.peer for r in inbox.refused()} == {"testclient"}


def test_a_refusal_waits_briefly_for_the_lock_then_is_dropped(inbox: SQLiteInbox) -> None:
    handler = WebhookHandler("mindpeeker", secret=NEW)
    body, headers = sample_delivery("mindpeeker", "session.completed", secret=OLD)
    refused = refused_delivery(
        handler,
        handler_error(handler, body, headers),
        received=time.time(),
        peer=None,
        headers=headers,
        body=body,
        body_limit=100,
    )
    inbox.counts()  # an inbox in use: made, and its key chosen
    other = SQLiteInbox(inbox.path, keep_refused=3)
    holding, release = threading.Event(), threading.Event()

    def hold() -> None:
        with other._writing():
            holding.set()
            release.wait(5)

    thread = threading.Thread(target=hold)
    thread.start()
    holding.wait(5)
    try:
        started = time.monotonic()
        assert inbox.keep_refusal(refused) is False
        assert time.monotonic() - started < 1.0
    finally:
        release.set()
        thread.join()
    assert inbox.keep_refusal(refused) is True


def handler_error(handler: WebhookHandler, body: bytes, headers: Any) -> Any:
    outcome = handler.accept(body, headers)
    assert outcome.error is not None
    return outcome.error


def test_a_keeper_that_fails_is_logged_and_the_answer_stands(
    inbox: SQLiteInbox, caplog: pytest.LogCaptureFixture
) -> None:
    # A table of another shape where the refusals go: the write fails.
    db = sqlite3.connect(inbox.path)
    db.execute("CREATE TABLE hookshield_refused (other TEXT)")
    db.commit()
    db.close()
    handler = WebhookHandler("mindpeeker", secret=NEW)
    body, headers = sample_delivery("mindpeeker", "session.completed", secret=OLD)
    with caplog.at_level(logging.WARNING, logger="hookshield"):
        response = flask_client(handler, inbox).post("/hooks", data=body, headers=headers)
    assert response.status_code == 401
    assert "could not keep a refused mindpeeker delivery" in caplog.text


# -- re-check -------------------------------------------------------------------------


def test_recheck_after_the_secret_is_fixed_stores_it_and_the_worker_runs_it(
    inbox: SQLiteInbox,
) -> None:
    # The sender rotated to NEW; the app still had OLD, and refused the delivery.
    stale = WebhookHandler("mindpeeker", secret=OLD)
    body, headers = sample_delivery("mindpeeker", "session.completed", secret=NEW)
    assert flask_client(stale, inbox).post("/hooks", data=body, headers=headers).status_code == 401
    (kept,) = inbox.refused()
    assert recheck(stale, inbox, kept).verified is False
    fixed = WebhookHandler("mindpeeker", secret=[NEW, OLD])
    ran: list[str] = []
    fixed.on("*")(lambda event: ran.append(event.type))
    result = recheck(fixed, inbox, kept)
    assert result.verified and result.stored is not None
    stored = inbox.get(result.stored)
    assert stored is not None and stored.state == "pending" and stored.body == body
    assert stored.received == kept.received
    assert run_worker(inbox, fixed, burst=True, handle_signals=False).done == 1
    assert ran == ["session.completed"]
    again = recheck(fixed, inbox, kept)  # claimed when stored: a duplicate now
    assert again.verified and again.stored is None and "received since" in again.reason


def test_recheck_judges_a_signed_timestamp_as_of_when_it_arrived(inbox: SQLiteInbox) -> None:
    hour_ago = time.time() - 3600
    body, headers = sample_delivery(
        "standard-webhooks", "invoice.paid", secret=SW_SECRET, timestamp=int(hour_ago)
    )
    fixed = WebhookHandler("standard-webhooks", secret=SW_SECRET)
    stale = WebhookHandler("standard-webhooks", secret="whsec_" + "A" * 32)
    error = handler_error(stale, body, headers)
    kept = refused_delivery(
        stale, error, received=hour_ago, peer=None, headers=headers, body=body, body_limit=10_000
    )
    result = recheck(fixed, inbox, kept)
    assert result.verified and result.stored is not None, result.reason
    assert run_worker(inbox, fixed, burst=True, handle_signals=False).done == 1
    # Judged by now, an hour later, the same bytes are too old.
    assert fixed.accept(body, headers).status == 401


def test_recheck_says_why_it_cannot_verify(tmp_path: Path) -> None:
    inbox = SQLiteInbox(tmp_path / "inbox.db", keep_refused=5, keep_refused_bytes=10)
    handler = WebhookHandler("mindpeeker", secret=NEW)
    client = flask_client(handler, inbox)
    body, headers = sample_delivery("mindpeeker", "session.completed", secret=OLD)
    client.post("/hooks", data=body, headers=headers)
    client.post("/hooks", data=b"{}", headers={"Content-Type": "application/json"})
    by_error = {r.error: r for r in inbox.refused()}
    cut = recheck(handler, inbox, by_error["InvalidSignature"])
    assert not cut.verified and f"only the first 10 of its {len(body)} bytes" in cut.reason
    unread = recheck(handler, inbox, by_error["MissingCredentials"])
    assert not unread.verified and "before its body was read" in unread.reason
    with pytest.raises(ValueError, match="made by the 'mindpeeker' handler"):
        recheck(WebhookHandler("moco", secret="s"), inbox, by_error["InvalidSignature"])


def test_recheck_of_a_token_sender_says_the_token_is_never_kept(inbox: SQLiteInbox) -> None:
    handler = WebhookHandler("petal", token="right-token")
    body, headers = sample_delivery("petal", "session.started", token="wrong-token")
    flask_client(handler, inbox).post("/hooks", data=body, headers=headers)
    (kept,) = inbox.refused()
    assert "wrong-token" not in str(kept.headers)
    result = recheck(handler, inbox, kept)
    assert not result.verified and "never kept" in result.reason


def test_still_wrong_says_why(inbox: SQLiteInbox) -> None:
    handler = WebhookHandler("mindpeeker", secret=NEW)
    body, headers = sample_delivery("mindpeeker", "session.completed", secret=OLD)
    flask_client(handler, inbox).post("/hooks", data=body, headers=headers)
    (kept,) = inbox.refused()
    result = recheck(handler, inbox, kept)
    assert not result.verified and result.reason.startswith("it still does not verify")


def test_forget_refused(inbox: SQLiteInbox, tmp_path: Path) -> None:
    assert inbox.forget_refused(["none"]) == 0  # no table yet
    handler = WebhookHandler("mindpeeker", secret=NEW)
    flask_client(handler, inbox).post("/hooks", data=b"{}")
    (kept,) = inbox.refused()
    assert isinstance(kept, RefusedDelivery) and "body=<0 of None bytes>" in repr(kept)
    assert inbox.forget_refused([kept.id, "other"]) == 1
    assert inbox.refused() == [] and inbox.get_refused(kept.id) is None
