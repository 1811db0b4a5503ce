"""The observer interface and the refusal log: what a delivery tells, and to whom.

An observer is added with ``hookshield.add_observer`` for the length of one test
(the ``observed`` fixture) and records every event it is told.  Deliveries go through
Flask's test client, a handler called directly, and the worker on a real SQLite inbox.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import flask
import pytest

from hookshield import (
    Answered,
    Event,
    Finished,
    Observation,
    Observer,
    Refused,
    Routed,
    SQLiteInbox,
    StoredDelivery,
    WebhookHandler,
    add_observer,
    remove_observer,
    run_worker,
    set_refusal_log_limit,
)
from hookshield._handling import observe
from hookshield.flask import webhook_view
from hookshield.testing import sample_batch, sample_body, sign

from .adapters.support import configure_django

SECRET = "whsec_observed"


class Recording(Observer):
    """Records (step, event) for every step it is told of."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, Any]] = []
        self.lock = threading.Lock()

    def _note(self, step: str, event: Any) -> None:
        with self.lock:
            self.seen.append((step, event))

    def received(self, event: Any) -> None:
        self._note("received", event)

    def verified(self, event: Any) -> None:
        self._note("verified", event)

    def refused(self, event: Any) -> None:
        self._note("refused", event)

    def duplicate(self, event: Any) -> None:
        self._note("duplicate", event)

    def in_progress(self, event: Any) -> None:
        self._note("in_progress", event)

    def routed(self, event: Any) -> None:
        self._note("routed", event)

    def settled(self, event: Any) -> None:
        self._note("settled", event)

    def stored(self, event: Any) -> None:
        self._note("stored", event)

    def answered(self, event: Any) -> None:
        self._note("answered", event)

    def leased(self, event: Any) -> None:
        self._note("leased", event)

    def finished(self, event: Any) -> None:
        self._note("finished", event)

    def steps(self) -> list[str]:
        return [step for step, _ in self.seen]

    def events(self, step: str) -> list[Any]:
        return [event for name, event in self.seen if name == step]


@pytest.fixture
def observed() -> Iterator[Recording]:
    recording = Recording()
    add_observer(recording)
    yield recording
    remove_observer(recording)


def signed(event_id: str, event_type: str = "session.completed") -> tuple[bytes, dict[str, str]]:
    payload = json.loads(sample_body("mindpeeker", "session.completed"))
    payload["id"], payload["type"] = event_id, event_type
    body = json.dumps(payload).encode()
    return body, sign("mindpeeker", body, secret=SECRET)


def forged(event_id: str) -> tuple[bytes, dict[str, str]]:
    body, _ = signed(event_id)
    return body, sign("mindpeeker", body, secret="not-the-secret")


def handler(fail: bool = False, **options: Any) -> WebhookHandler:
    made = WebhookHandler("mindpeeker", secret=SECRET, **options)

    @made.on("session.*")
    def route(event: Event) -> None:
        if fail:
            raise RuntimeError("the database is down")

    return made


def client(handler: WebhookHandler, **options: Any) -> Any:
    app = flask.Flask(__name__)
    app.add_url_rule("/hooks", view_func=webhook_view(handler, **options))
    return app.test_client()


# -- the steps of a delivery -----------------------------------------------------------


def test_an_observer_is_told_each_step_of_a_delivery_in_order(observed: Recording) -> None:
    post = client(handler()).post
    body, headers = signed("evt_1")
    assert post("/hooks", data=body, headers=headers).status_code == 200
    assert observed.steps() == ["received", "verified", "routed", "settled", "answered"]
    received, verified, routed, settled, answered = (event for _, event in observed.seen)
    assert received.peer == "127.0.0.1"
    assert verified.delivery.id == "event:evt_1"
    assert (routed.route, routed.function, routed.event_type, routed.error) == (
        "session.*",
        "handler.<locals>.route",
        "session.completed",
        None,
    )
    assert routed.seconds >= 0
    assert (settled.completed, settled.keys) == (True, 1)
    assert (answered.result, answered.outcome.status) == ("accepted", 200)
    assert answered.seconds >= routed.seconds
    # One observation, from received to answered, shared by every step.
    observation = received.observation
    assert all(event.observation is observation for _, event in observed.seen)
    assert (observation.sender, observation.delivery_id, observation.ended) == (
        "mindpeeker",
        "event:evt_1",
        True,
    )

    observed.seen.clear()
    assert post("/hooks", data=body, headers=headers).status_code == 200
    assert observed.steps() == ["received", "verified", "duplicate", "answered"]
    assert observed.events("answered")[0].result == "duplicate"

    observed.seen.clear()
    assert post("/hooks", data=forged("evt_2")[0], headers=forged("evt_2")[1]).status_code == 401
    assert observed.steps() == ["received", "refused", "answered"]
    (refused,) = observed.events("refused")
    assert (refused.status, refused.reason, type(refused.error).__name__) == (
        401,
        "signature",
        "InvalidSignature",
    )
    assert (refused.peer, refused.delivery_id) == ("127.0.0.1", None)


def test_a_failed_route_releases_and_answers_failed(observed: Recording) -> None:
    body, headers = signed("evt_1")
    assert client(handler(fail=True)).post("/hooks", data=body, headers=headers).status_code == 500
    assert observed.steps() == ["received", "verified", "routed", "settled", "answered"]
    routed, settled, answered = (observed.events(s)[0] for s in ("routed", "settled", "answered"))
    assert isinstance(routed.error, RuntimeError)
    assert settled.completed is False
    assert answered.result == "failed"


def test_a_retry_while_the_first_attempt_runs_is_in_progress(observed: Recording) -> None:
    made = handler()
    body, headers = signed("evt_1")
    held = made.accept(body, headers)
    observed.seen.clear()
    assert client(made).post("/hooks", data=body, headers=headers).status_code == 409
    assert observed.steps() == ["received", "verified", "in_progress", "answered"]
    assert observed.events("answered")[0].result == "in_progress"
    held.release()


def test_a_delivery_stored_in_an_inbox_and_run_by_the_worker(
    observed: Recording, tmp_path: Path
) -> None:
    inbox = SQLiteInbox(tmp_path / "inbox.db")
    made = handler()
    body, headers = signed("evt_1")
    assert (
        client(made, background=inbox).post("/hooks", data=body, headers=headers).status_code == 200
    )
    assert observed.steps() == ["received", "verified", "settled", "stored", "answered"]
    (stored,) = observed.events("stored")
    assert stored.inbox is inbox and stored.stored.id == inbox.list()[0].id
    observed.seen.clear()
    run_worker(inbox, made, burst=True, handle_signals=False)
    assert observed.steps() == ["leased", "routed", "finished"]
    leased, routed, finished = (event for _, event in observed.seen)
    assert leased.observation.kind == "worker"
    assert routed.observation is leased.observation is finished.observation
    assert (finished.result, finished.error_type, finished.stored.id) == (
        "done",
        None,
        stored.stored.id,
    )


def test_the_worker_tells_a_retry_and_a_dead_letter(observed: Recording, tmp_path: Path) -> None:
    inbox = SQLiteInbox(tmp_path / "inbox.db")
    made = handler(fail=True)
    for event_id in ("evt_fails", "evt_tampered"):
        body, headers = signed(event_id)
        client(made, background=inbox).post("/hooks", data=body, headers=headers)
    tampered = next(d for d in inbox.list() if b"evt_tampered" in d.body)
    import sqlite3

    db = sqlite3.connect(inbox.path)
    with db:
        db.execute("UPDATE hookshield_inbox SET body = ? WHERE id = ?", (b"{}", tampered.id))
    db.close()
    observed.seen.clear()
    run_worker(inbox, made, burst=True, handle_signals=False)
    results = {e.stored.id: (e.result, e.error_type) for e in observed.events("finished")}
    assert results[tampered.id] == ("dead", None)
    assert sorted(results.values(), key=str) == [("dead", None), ("retried", "RuntimeError")]


def test_a_handler_called_directly_tells_what_the_core_does(observed: Recording) -> None:
    made = handler()
    assert made.handle(*signed("evt_1")).status == 200
    assert made.handle(*forged("evt_2")).status == 401
    # No adapter: nothing was received or answered, and each event has an observation
    # of its own.
    assert observed.steps() == ["verified", "routed", "settled", "refused"]
    assert {event.observation.kind for _, event in observed.seen} == {"call"}
    assert observed.events("refused")[0].peer is None


# -- adding, removing, and an observer that raises ----------------------------------------


def test_an_observer_may_have_only_some_methods() -> None:
    seen: list[Answered] = []

    class OnlyAnswers:
        def answered(self, event: Answered) -> None:
            seen.append(event)

    only = OnlyAnswers()
    add_observer(only)
    add_observer(only)  # once is enough
    try:
        body, headers = signed("evt_1")
        client(handler()).post("/hooks", data=body, headers=headers)
    finally:
        remove_observer(only)
    remove_observer(only)  # gone already: nothing happens
    assert [event.result for event in seen] == ["accepted"]
    with pytest.raises(TypeError, match="none of an observer's methods"):
        add_observer(object())


def _fails(self: Observer, event: object) -> None:
    raise RuntimeError("this observer is broken")


#: An observer that raises in every step it is told of.
Raising: type[Observer] = type("Raising", (Observer,), dict.fromkeys(observe._STEPS, _fails))


def test_an_observer_that_raises_is_logged_and_changes_nothing(
    observed: Recording, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    raising = Raising()
    add_observer(raising)
    add_observer(observed)  # already added: stays where it was, before the raising one
    inbox = SQLiteInbox(tmp_path / "inbox.db")
    made = handler()
    try:
        with caplog.at_level(logging.ERROR, logger="hookshield.observers"):
            body, headers = signed("evt_1")
            served = client(made, background=inbox).post("/hooks", data=body, headers=headers)
            again = client(made).post("/hooks", data=body, headers=headers)
            forged_answer = client(made).post("/hooks", data=forged("x")[0], headers=forged("x")[1])
            stats = run_worker(inbox, made, burst=True, handle_signals=False)
    finally:
        remove_observer(raising)
    assert (served.status_code, served.json) == (200, {"ok": True})
    assert (again.status_code, again.json) == (200, {"ok": True, "duplicate": True})
    assert forged_answer.status_code == 401
    assert stats.done == 1
    assert inbox.list()[0].traceparent is None  # its trace_context raised: none stored
    # The other observer was told of everything all the same.
    assert observed.steps().count("answered") == 3
    assert observed.events("finished")[0].result == "done"
    failed = [r for r in caplog.records if r.name == "hookshield.observers"]
    steps = {r.hookshield_step for r in failed}  # type: ignore[attr-defined]
    assert {"received", "verified", "stored", "answered", "leased", "finished"} <= steps
    # Once per step and minute, however many deliveries.
    assert len(failed) == len(steps)
    assert all(r.exc_info is not None and "Raising" in r.getMessage() for r in failed)


def test_an_observers_trace_context_is_stored_only_when_it_is_one(tmp_path: Path) -> None:
    class Tracer(Observer):
        def __init__(self, value: object) -> None:
            self.value = value

        def trace_context(self, observation: Observation) -> str | None:
            return self.value  # type: ignore[return-value]

    good = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    inbox = SQLiteInbox(tmp_path / "inbox.db")
    made = handler()
    for number, value in enumerate(["00-not-a-trace", good + "\n", 42, good]):
        tracer = Tracer(value)
        add_observer(tracer)
        try:
            body, headers = signed(f"evt_{number}")
            client(made, background=inbox).post("/hooks", data=body, headers=headers)
        finally:
            remove_observer(tracer)
    kept = [d.traceparent for d in sorted(inbox.list(), key=lambda d: d.id)]
    assert kept == [None, None, None, good]


def test_a_queued_message_carries_the_trace_context_bounded() -> None:
    delivery = StoredDelivery(
        id="d1",
        sender="mindpeeker",
        handler="mindpeeker",
        body=b"{}",
        headers=(),
        received=1.0,
        traceparent="00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
    )
    message = delivery.to_message()
    assert StoredDelivery.from_message(message).traceparent == delivery.traceparent
    assert StoredDelivery.from_message({**message, "traceparent": "x" * 300}).traceparent is None
    assert StoredDelivery.from_message({**message, "traceparent": 7}).traceparent is None
    old = {k: v for k, v in message.items() if k != "traceparent"}  # sent by an older version
    assert StoredDelivery.from_message(old).traceparent is None


def test_an_sqlite_inbox_made_before_traces_gains_the_column(tmp_path: Path) -> None:
    import sqlite3

    path = tmp_path / "inbox.db"
    SQLiteInbox(path).put(
        StoredDelivery(id="a", sender="s", handler="s", body=b"", headers=(), received=1.0)
    )
    db = sqlite3.connect(path)
    db.execute("ALTER TABLE hookshield_inbox DROP COLUMN traceparent")
    db.commit()
    db.close()
    reopened = SQLiteInbox(path)
    reopened.put(
        StoredDelivery(
            id="b",
            sender="s",
            handler="s",
            body=b"",
            headers=(),
            received=2.0,
            traceparent="00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
        )
    )
    assert [(d.id, d.traceparent is not None) for d in reopened.list()] == [
        ("a", False),
        ("b", True),
    ]


# -- the refusal log ---------------------------------------------------------------------


def refusal_lines(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "hookshield.refused"]


def test_a_refusal_is_one_warning_with_its_fields_in_extra(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.INFO, logger="hookshield"):
        body, headers = forged("evt_1")
        assert client(handler()).post("/hooks", data=body, headers=headers).status_code == 401
    (record,) = [r for r in caplog.records if "refused" in r.getMessage()]
    assert (record.name, record.levelno) == ("hookshield.refused", logging.WARNING)
    message = record.getMessage()
    assert message.startswith(
        "hookshield: mindpeeker delivery refused (401): the X-MindPeeker-Signature "
        "signature does not match the body."
    )
    assert message.endswith("(reason: signature, peer: 127.0.0.1, delivery: none read)")
    fields = {k: v for k, v in vars(record).items() if k.startswith("hookshield_")}
    assert fields == {
        "hookshield_sender": "mindpeeker",
        "hookshield_status": 401,
        "hookshield_reason": "signature",
        "hookshield_error": "InvalidSignature",
        "hookshield_peer": "127.0.0.1",
        "hookshield_delivery_id": None,
    }


def test_a_refusal_after_verification_names_the_delivery_escaped(
    caplog: pytest.LogCaptureFixture,
) -> None:
    momentum = WebhookHandler("momentum", token="momentum-token")
    momentum.on("*")(lambda event: None)
    records = json.loads(sample_batch(["delivery", "bounce"]))
    body = json.dumps([records[0], 42]).encode()  # the second record is no record
    headers = sign("momentum", body, token="momentum-token", batch_id="b\x1b[2Jx")
    with caplog.at_level(logging.WARNING, logger="hookshield"):
        answer = client(momentum).post("/hooks", data=body, headers=headers)
    assert answer.status_code == 400
    (record,) = refusal_lines(caplog)
    shown: str = record.hookshield_delivery_id  # type: ignore[attr-defined]
    assert shown.startswith("batch:b\\x1b[2Jx:sha256:")
    assert f"delivery: {shown})" in record.getMessage()
    assert "\x1b" not in record.getMessage()
    assert record.hookshield_reason == "malformed"  # type: ignore[attr-defined]


@pytest.mark.parametrize("observing", [False, True])
def test_a_refusal_is_logged_once_with_or_without_observers(
    observing: bool, observed: Recording, caplog: pytest.LogCaptureFixture
) -> None:
    if not observing:
        remove_observer(observed)
    post = client(handler(max_body_size=1000)).post
    with caplog.at_level(logging.WARNING, logger="hookshield"):
        post("/hooks", data=forged("a")[0], headers=forged("a")[1])  # after the body
        post("/hooks", data=b"{}", headers={"Content-Type": "application/json"})  # before it
        post("/hooks", data=b"{" * 1001, headers=forged("b")[1])  # its length, before it
    reasons = [r.hookshield_reason for r in refusal_lines(caplog)]  # type: ignore[attr-defined]
    assert reasons == ["signature", "credentials", "too_large"]
    assert all(r.hookshield_peer == "127.0.0.1" for r in refusal_lines(caplog))  # type: ignore[attr-defined]


def test_an_adapters_own_refusal_is_logged_too(caplog: pytest.LogCaptureFixture) -> None:
    configure_django()
    from django.test import Client, override_settings
    from django.urls import path

    from hookshield.django import webhook_view as django_view

    from .adapters.test_django import urlconf

    urls = urlconf(path("hooks/", django_view(handler())))
    with (
        override_settings(ROOT_URLCONF=urls),
        caplog.at_level(logging.WARNING, logger="hookshield"),
    ):
        assert Client().get("/hooks/").status_code == 405
    (record,) = refusal_lines(caplog)
    assert record.hookshield_reason == "method"  # type: ignore[attr-defined]
    assert record.hookshield_status == 405  # type: ignore[attr-defined]


def test_a_flood_of_refusals_is_summed_up(caplog: pytest.LogCaptureFixture) -> None:
    set_refusal_log_limit(burst=3, seconds=0.2)
    post = client(handler()).post
    body, headers = forged("evt")
    with caplog.at_level(logging.WARNING, logger="hookshield"):
        for _ in range(10):
            post("/hooks", data=body, headers=headers)
        post("/hooks", data=b"{}", headers={"Content-Type": "application/json"})
        lines = [r.getMessage() for r in refusal_lines(caplog)]
        assert len(lines) == 4  # three refusals, and a word that the rest are counted
        assert "3 mindpeeker deliveries refused within 0.2 s" in lines[3]
        time.sleep(0.25)
        # The next refusal after the period sums up the last, then is logged itself.
        post("/hooks", data=body, headers=headers)
    lines = [r.getMessage() for r in refusal_lines(caplog)][4:]
    assert len(lines) == 2
    assert lines[0].startswith("hookshield: 8 more mindpeeker deliveries were refused in the last")
    assert lines[0].endswith("not logged one by one (signature: 7, credentials: 1)")
    assert "refused (401)" in lines[1]
    summary = refusal_lines(caplog)[4]
    assert summary.hookshield_refused == 8  # type: ignore[attr-defined]
    assert summary.hookshield_reasons == {"signature": 7, "credentials": 1}  # type: ignore[attr-defined]


def test_a_flood_is_summed_up_by_the_next_answer_after_it(caplog: pytest.LogCaptureFixture) -> None:
    set_refusal_log_limit(burst=1, seconds=0.2)
    made = handler()
    post = client(made).post
    body, headers = forged("evt")
    with caplog.at_level(logging.WARNING, logger="hookshield"):
        for _ in range(3):
            post("/hooks", data=body, headers=headers)
        time.sleep(0.25)
        assert post("/hooks", data=signed("ok")[0], headers=signed("ok")[1]).status_code == 200
    lines = [r.getMessage() for r in refusal_lines(caplog)]
    assert len(lines) == 3
    assert lines[2].startswith("hookshield: 2 more mindpeeker deliveries were refused")


def test_the_refusal_log_limit_is_checked() -> None:
    for burst, seconds in [(-1, 60.0), (1.5, 60.0), (True, 60.0), (10, 0), (10, "60")]:
        with pytest.raises(ValueError, match=r"^(burst|seconds) must be"):
            set_refusal_log_limit(burst, seconds)  # type: ignore[arg-type]
    set_refusal_log_limit(burst=0)  # summaries only: allowed


def test_refused_and_finished_events_are_frozen() -> None:
    observation = Observation("mindpeeker")
    event = Refused(
        sender="mindpeeker",
        observation=observation,
        status=401,
        reason="signature",
        error=None,
        peer=None,
        delivery_id=None,
    )
    with pytest.raises(dataclasses.FrozenInstanceError):
        event.reason = "other"  # type: ignore[misc]
    assert Routed.__dataclass_params__.frozen and Finished.__dataclass_params__.frozen  # type: ignore[attr-defined]


def test_a_verified_view_that_raises_is_a_failed_delivery(observed: Recording) -> None:
    from hookshield.flask import verified

    made = handler()
    app = flask.Flask(__name__)

    @app.post("/hooks")
    @verified(made)
    def hook(delivery: object) -> str:
        raise RuntimeError("the view failed")

    body, headers = signed("evt_1")
    assert app.test_client().post("/hooks", data=body, headers=headers).status_code == 500
    assert observed.steps() == ["received", "verified", "settled", "answered"]
    answered = observed.events("answered")[0]
    assert answered.result == "failed"  # the framework answered 500
    assert observed.events("settled")[0].completed is False  # released: the retry runs it


def test_a_request_left_unanswered_is_ended_as_failed_by_the_next() -> None:
    # What an adapter does when its request raised past it before the answer: the
    # next request in the same thread finds the first still open.
    from hookshield import Outcome
    from hookshield._handling import observe as _observe

    recording = Recording()
    add_observer(recording)
    try:
        _observe.received("mindpeeker", "192.0.2.1")
        _observe.received("mindpeeker", "192.0.2.2")
        _observe.answered(Outcome(200, "accepted"))
    finally:
        remove_observer(recording)
    first, second = recording.events("answered")
    assert (first.result, first.observation.peer) == ("failed", "192.0.2.1")
    assert (second.result, second.observation.peer) == ("accepted", "192.0.2.2")
    assert _observe.current() is None
