"""Batches handled record by record: what is dispatched, claimed and answered, and memory."""

from __future__ import annotations

import asyncio
import json
import re
import tracemalloc
from pathlib import Path
from typing import Any

import pytest

from hookshield import (
    Event,
    MalformedPayload,
    MomentumEvent,
    PendingEvents,
    SQLiteInbox,
    WebhookHandler,
    run_worker,
)
from hookshield.testing import sample_batch, sample_delivery, sign

from .conftest import CREDENTIALS, make_handler


def _signed(records: list[Any], batch_id: str | None = None) -> tuple[bytes, dict[str, str]]:
    body = json.dumps(records).encode()
    options: dict[str, Any] = {"batch_id": batch_id} if batch_id else {}
    return body, sign("momentum", body, **options, **CREDENTIALS["momentum"])


def _records(*kinds: str) -> list[Any]:
    records: list[Any] = json.loads(sample_batch(list(kinds)))
    return records


def _recording(**options: Any) -> tuple[WebhookHandler, list[str | None]]:
    handler = make_handler("momentum", **options)
    seen: list[str | None] = []
    handler.on("*")(lambda event: seen.append(event.id))
    return handler, seen


class TestHandle:
    def test_every_record_is_dispatched_in_order_and_counted(self) -> None:
        handler, seen = _recording()
        records = _records("delivery", "click", "bounce")
        outcome = handler.handle(*_signed(records))
        assert (outcome.status, outcome.dispatched, outcome.reason) == (
            200,
            3,
            "dispatched to 3 handler calls",
        )
        assert seen == [r["msys"][next(iter(r["msys"]))]["event_id"] for r in records]
        assert outcome.delivery is not None and outcome.delivery.events == ()

    def test_kept_whole_with_stream_batches_false(self) -> None:
        handler, seen = _recording(stream_batches=False)
        outcome = handler.handle(*_signed(_records("delivery", "click")))
        assert outcome.dispatched == 2 and len(seen) == 2
        assert outcome.delivery is not None
        assert [event.type for event in outcome.delivery.events] == ["delivery", "click"]

    def test_a_malformed_record_stops_the_batch_and_the_retry_skips_what_ran(self) -> None:
        handler, seen = _recording()
        good = _records("delivery", "open")
        body, headers = _signed([*good, {"msys": []}, *_records("click")], batch_id="b-1")
        outcome = handler.handle(body, headers)
        assert outcome.status == 400 and isinstance(outcome.error, MalformedPayload)
        assert "record 2" in outcome.reason and outcome.dispatched == 2
        assert len(seen) == 2
        # The batch itself was released: its retry is processed, not taken for a
        # duplicate, and the two records already handled are not handled again.
        again = handler.handle(body, headers)
        assert (again.status, again.dispatched, len(seen)) == (400, 0, 2)

    def test_a_syntax_error_part_way_is_a_400_after_the_records_before_it(self) -> None:
        handler, seen = _recording()
        body, headers = _signed(_records("delivery", "click"))
        cut = body[: body.rindex(b"{")]  # the second record's opening brace onward is lost
        outcome = handler.handle(cut, sign("momentum", cut, **CREDENTIALS["momentum"]))
        assert outcome.status == 400 and "not valid JSON" in outcome.reason
        assert outcome.dispatched == 1 and len(seen) == 1
        assert handler.handle(body, headers).dispatched == 1  # the whole batch: the rest

    def test_a_failing_handler_releases_its_record_and_the_batch_for_the_retry(self) -> None:
        handler = make_handler("momentum")
        seen: list[str] = []
        failures: list[tuple[str, str]] = []

        @handler.on("*")
        def record(event: Event) -> None:
            if event.type == "bounce" and not failures:
                raise RuntimeError("database down")
            seen.append(event.type)

        @handler.on_error
        def failed(error: Exception, event: Event) -> None:
            failures.append((type(error).__name__, event.type))

        body, headers = _signed(_records("delivery", "bounce", "click"), batch_id="b-2")
        outcome = handler.handle(body, headers)
        assert (outcome.status, outcome.dispatched) == (500, 1)
        assert failures == [("RuntimeError", "bounce")] and seen == ["delivery"]
        retry = handler.handle(body, headers)
        assert (retry.status, retry.dispatched) == (200, 2)
        assert seen == ["delivery", "bounce", "click"]

    def test_duplicates_of_a_batch_and_of_its_records(self) -> None:
        handler, seen = _recording()
        records = _records("delivery", "click")
        assert handler.handle(*_signed(records, batch_id="b-3")).dispatched == 2
        assert handler.handle(*_signed(records, batch_id="b-3")).reason == "duplicate delivery"
        again = handler.handle(*_signed(records, batch_id="b-4"))
        assert (again.status, again.reason, again.duplicate) == (200, "duplicate events", True)
        assert len(seen) == 2

    @pytest.mark.parametrize("stream_batches", [True, False])
    def test_two_different_batches_under_one_batch_id_are_both_run(
        self, stream_batches: bool
    ) -> None:
        # The batch id is an unsigned header: a sender's reuse, or a forger's, must not
        # make a new batch read as a duplicate, which would answer 200 and drop it.
        handler, seen = _recording(stream_batches=stream_batches)
        first, second = _records("delivery", "click"), _records("bounce", "open")
        assert handler.handle(*_signed(first, batch_id="b-5")).dispatched == 2
        outcome = handler.handle(*_signed(second, batch_id="b-5"))
        assert (outcome.status, outcome.dispatched, outcome.duplicate) == (200, 2, False)
        assert seen == [r["msys"][next(iter(r["msys"]))]["event_id"] for r in first + second]
        # The same batch again, under its id, is still answered as a duplicate.
        again = handler.handle(*_signed(second, batch_id="b-5"))
        assert (again.reason, again.dispatched) == ("duplicate delivery", 0)

    def test_records_without_a_route_are_named_in_the_reason(self) -> None:
        handler = make_handler("momentum")
        handler.on("click")(lambda event: None)
        outcome = handler.handle(*_signed(_records("delivery", "bounce", "delivery")))
        assert outcome.reason == "no handler for 'bounce', 'delivery'"
        empty = handler.handle(*_signed([{"msys": {}}]))
        assert (empty.status, empty.reason) == (200, "accepted")

    def test_without_de_duplication(self) -> None:
        handler, seen = _recording(dedupe=None)
        body, headers = _signed(_records("delivery"))
        assert handler.handle(body, headers).dispatched == 1
        assert handler.handle(body, headers).dispatched == 1
        assert len(seen) == 2

    def test_a_refused_delivery_dispatches_nothing(self) -> None:
        handler, seen = _recording()
        body, _ = _signed(_records("delivery"))
        outcome = handler.handle(body, {"X-MessageSystems-Webhook-Token": "wrong"})
        assert outcome.status == 401 and outcome.dispatched == 0 and not seen


class TestHandleAsync:
    @pytest.mark.parametrize("asynchronous", [False, True])
    def test_plain_and_async_routes_see_the_same_events(self, asynchronous: bool) -> None:
        handler = make_handler("momentum")
        seen: list[str] = []
        if asynchronous:

            async def record_async(event: Event) -> None:
                seen.append(event.type)

            handler.on("*")(record_async)
        else:
            handler.on("*")(lambda event: seen.append(event.type))
        outcome = asyncio.run(handler.handle_async(*_signed(_records("delivery", "click"))))
        assert (outcome.status, outcome.dispatched, seen) == (200, 2, ["delivery", "click"])
        # Streamed in a worker thread for plain routes; decoded whole for async ones.
        assert outcome.delivery is not None
        assert len(outcome.delivery.events) == (2 if asynchronous else 0)


class TestIterEvents:
    def test_credentials_are_checked_before_any_record_is_read(self) -> None:
        handler = make_handler("momentum")
        body, _ = _signed(_records("delivery"))
        with pytest.raises(Exception, match="token does not match"):
            handler.iter_events(body, {"X-MessageSystems-Webhook-Token": "wrong"})

    def test_events_come_lazily_and_a_bad_record_raises_when_reached(self) -> None:
        handler = make_handler("momentum")
        body, headers = _signed([*_records("delivery"), 7])
        events = handler.iter_events(body, headers)
        first = next(events)
        assert isinstance(first, MomentumEvent) and first.type == "delivery"
        with pytest.raises(MalformedPayload, match="record 1"):
            next(events)

    @pytest.mark.parametrize("body", [b'{"records": []}', b'"msys"', b"  {}"])
    def test_a_body_that_is_no_array_is_refused_at_once(self, body: bytes) -> None:
        handler = make_handler("momentum")
        with pytest.raises(MalformedPayload, match="JSON array"):
            handler.iter_events(body, sign("momentum", body, **CREDENTIALS["momentum"]))

    def test_a_bare_record_streams_as_a_batch_of_one(self) -> None:
        # The seed prints one record as a bare {"msys": {...}} object.
        (record,) = _records("click")
        body, headers = _signed(record)
        events = list(make_handler("momentum").iter_events(b" \n" + body, headers))
        assert [(e.type, e.id) for e in events] == [
            ("click", record["msys"]["track_event"]["event_id"])
        ]

    def test_single_event_senders_are_read_whole(self) -> None:
        handler = make_handler("mindpeeker")
        body, headers = sample_delivery(
            "mindpeeker", "session.completed", **CREDENTIALS["mindpeeker"]
        )
        assert [e.type for e in handler.iter_events(body, headers)] == ["session.completed"]


def _peak(func: Any) -> int:
    tracemalloc.start()
    try:
        func()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_a_streamed_batch_holds_about_its_body_in_memory() -> None:
    # Allocations, not time: the same on any machine.  2,000 records, about 1.5 MB.
    records = _records("delivery", "click", "bounce", "open") * 500
    for number, record in enumerate(records):
        next(iter(record["msys"].values()))["event_id"] = str(number)
    body, headers = _signed(records)
    streamed = make_handler("momentum")
    streamed.on("*")(lambda event: event.recipient)
    whole = make_handler("momentum", stream_batches=False)
    whole.on("*")(lambda event: event.recipient)
    streamed_peak = _peak(lambda: streamed.handle(body, headers))
    whole_peak = _peak(lambda: whole.handle(body, headers))
    assert streamed_peak < 2 * len(body) < whole_peak


@pytest.mark.parametrize(
    ("body", "refused"),
    [
        (b'[{"msys": {}} {"msys": {}}]', True),
        (b'[{"msys": {}},]', True),
        (b'[{"msys": {}}] x', True),
        (b"[\n", True),
        (b' [ {"msys": {}} , {"msys": {}} ] \n', False),
        (b"[]", False),
    ],
)
def test_a_batch_is_read_as_strictly_as_a_whole_body(body: bytes, refused: bool) -> None:
    handler = make_handler("momentum")
    headers = sign("momentum", body, **CREDENTIALS["momentum"])
    if not refused:
        assert list(handler.iter_events(body, headers)) == []
        assert handler.verify(body, headers).events == ()
        return
    # The whole body is refused with the standard library's own words for it (which
    # vary between Python releases: 3.13 names a trailing comma); the streamed reader
    # refuses it too, saying where.
    with pytest.raises(json.JSONDecodeError) as standard:
        json.loads(body)
    words = f"{standard.value.msg} at line {standard.value.lineno} column {standard.value.colno}"
    with pytest.raises(MalformedPayload) as whole:
        handler.verify(body, headers)
    assert str(whole.value) == "the body is not valid JSON: " + words
    with pytest.raises(MalformedPayload) as streamed:
        list(handler.iter_events(body, headers))
    assert re.fullmatch(
        r"the body is not valid JSON: .+ at line \d+ column \d+", str(streamed.value)
    )


def _large_batch() -> tuple[bytes, dict[str, str]]:
    """A batch of 7,000 records with distinct event ids: about 6 MB."""
    records = _records("delivery", "click", "bounce", "open", "injection", "delay", "open")
    batch = [json.loads(json.dumps(record)) for record in records * 1000]
    for number, record in enumerate(batch):
        next(iter(record["msys"].values()))["event_id"] = str(10**12 + number)
    body, headers = _signed(batch, batch_id="large")
    assert 5_000_000 < len(body) < 10_000_000
    return body, headers


class TestDurablePathsStream:
    """``accept`` (``background=`` an inbox or ``True``, ``@verified``) and the worker."""

    def test_accepting_a_large_batch_holds_about_its_body_in_memory(self) -> None:
        # Allocations, not time: the same on any machine.  Decoded whole, this batch
        # costs 4 to 5 times its size on top of the body (more with smaller records);
        # read record by record, about 1.5 (its text, and the keys claimed).
        body, headers = _large_batch()
        handler, seen = _recording()
        accepted: list[Any] = []
        peak = _peak(lambda: accepted.append(handler.accept(body, headers)))
        assert peak < 2.5 * len(body)
        [outcome] = accepted
        assert outcome.ok and len(outcome.pending) == 7000
        assert outcome.finish().dispatched == 7000
        assert len(seen) == 7000 == len(set(seen))
        assert handler.handle(body, headers).duplicate  # every record was claimed

    def test_storing_and_running_a_large_batch_hold_about_its_body_in_memory(
        self, tmp_path: Path
    ) -> None:
        import flask

        from hookshield.flask import webhook_view

        body, headers = _large_batch()
        handler, seen = _recording()
        inbox = SQLiteInbox(tmp_path / "inbox.db")
        try:
            app = flask.Flask(__name__)
            app.add_url_rule("/hooks", view_func=webhook_view(handler, background=inbox))
            client = app.test_client()
            client.post("/hooks", data=b"[]", headers=_signed([])[1])  # the app and inbox set up
            answers: list[int] = []
            stored = _peak(
                lambda: answers.append(
                    client.post("/hooks", data=body, headers=headers).status_code
                )
            )
            assert answers == [200] and seen == []
            ran = _peak(lambda: run_worker(inbox, handler, burst=True))
            assert len(seen) == 7000 == len(set(seen))
            # Decoded whole, each took about 5 times the body.  Stored: Flask's test client
            # and the WSGI read hold copies of the body too; run: the body read back from
            # the file, and its text.
            assert stored < 3.5 * len(body)
            assert ran < 3 * len(body)
        finally:
            inbox.close()  # Python 3.13 warns of a connection left to the collector

    def test_a_malformed_record_part_way_refuses_the_batch_and_releases_its_claims(
        self,
    ) -> None:
        handler, seen = _recording()
        records = _records("delivery", "click", "bounce")
        broken = [*records[:2], {"not": "a record"}, records[2]]
        refused = handler.accept(*_signed(broken, batch_id="b-1"))
        assert (refused.status, refused.pending) == (400, ())
        assert "record 2 of the Momentum batch" in refused.reason
        # Nothing stays claimed: the sender's corrected batch runs every record.
        outcome = handler.accept(*_signed(records, batch_id="b-1"))
        assert len(outcome.pending) == 3
        assert outcome.finish().dispatched == 3 and len(seen) == 3

    def test_only_new_records_are_pending_each_once_and_read_again_in_order(self) -> None:
        handler, seen = _recording()
        old, new, other = _records("delivery", "click", "bounce")
        assert handler.handle(*_signed([old])).ok
        seen.clear()
        outcome = handler.accept(*_signed([old, new, other, new]))
        pending = outcome.pending
        assert isinstance(pending, PendingEvents) and len(pending) == 2
        ids = [next(iter(r["msys"].values()))["event_id"] for r in (new, other)]
        assert [event.id for event in pending] == ids == [pending[0].id, pending[1].id]
        assert pending.types == ("click", "bounce") and pending.keys == frozenset(ids)
        assert outcome.finish().dispatched == 2 and seen == ids
