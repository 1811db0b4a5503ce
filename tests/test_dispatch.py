"""Claiming and dispatching: every path that claims, and every way out of it.

A delivery's claims must be settled whichever way an attempt ends: completed when its
routes ran (a retry is a duplicate), released when they did not (the retry runs), a
``BaseException`` or a cancellation included; and an attempt still running makes a
retry come back later (409) rather than be acknowledged.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from collections.abc import Callable
from typing import Any

import pytest

from hookshield import (
    Claim,
    Event,
    MemoryDedupeStore,
    Outcome,
    StoreUnavailable,
    WebhookHandler,
)
from hookshield._handling.handler import dispatcher_of
from hookshield._handling.runner import PLAIN
from hookshield._handling.runner import run as run_plainly
from hookshield.testing import sample_batch, sample_delivery, sign

from .conftest import CREDENTIALS, a_type, make_handler
from .doubles import AsyncStore


class Clock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def mindpeeker(**options: Any) -> tuple[WebhookHandler, list[str]]:
    handler = make_handler("mindpeeker", **options)
    seen: list[str] = []
    handler.on("*")(lambda event: seen.append(event.type))
    return handler, seen


def delivery() -> tuple[bytes, dict[str, str]]:
    return sample_delivery("mindpeeker", "session.completed", **CREDENTIALS["mindpeeker"])


#: What a route may raise, and how the attempt then ends for the caller.
WAYS_OUT: list[type[BaseException]] = [RuntimeError, SystemExit, KeyboardInterrupt]


def failing_once(error: type[BaseException]) -> Callable[[Event], None]:
    """A route that raises ``error`` on its first call and succeeds after."""
    calls: list[int] = []

    def route(event: Event) -> None:
        calls.append(1)
        if len(calls) == 1:
            raise error("first attempt fails")

    return route


def attempt(run: Callable[[], Outcome], error: type[BaseException]) -> Outcome | None:
    """Run an attempt; an ``Exception`` is an outcome, anything else propagates."""
    if issubclass(error, Exception):
        return run()
    with pytest.raises(error):
        run()
    return None


# -- the sync paths -----------------------------------------------------------------


def test_a_delivery_is_dispatched_once_and_its_retry_is_a_duplicate() -> None:
    handler, seen = mindpeeker()
    body, headers = delivery()
    first = handler.handle(body, headers)
    again = handler.handle(body, headers)
    assert (first.status, first.dispatched, first.duplicate) == (200, 1, False)
    assert (again.status, again.dispatched, again.duplicate) == (200, 0, True)
    assert again.response_body() == b'{"ok":true,"duplicate":true}'
    assert seen == ["session.completed"]


@pytest.mark.parametrize("error", WAYS_OUT)
def test_handle_releases_on_every_way_out(error: type[BaseException]) -> None:
    handler = make_handler("mindpeeker")
    handler.on("session.completed")(failing_once(error))
    body, headers = delivery()
    failed = attempt(lambda: handler.handle(body, headers), error)
    if failed is not None:
        assert failed.status == 500 and isinstance(failed.error, error)
    retry = handler.handle(body, headers)
    assert (retry.status, retry.dispatched) == (200, 1)  # run, not taken for a duplicate
    assert handler.handle(body, headers).duplicate


@pytest.mark.parametrize("error", WAYS_OUT)
def test_accept_and_finish_release_on_every_way_out(error: type[BaseException]) -> None:
    handler = make_handler("mindpeeker")
    handler.on("session.completed")(failing_once(error))
    body, headers = delivery()
    accepted = handler.accept(body, headers)
    assert len(accepted.pending) == 1 and handler.accept(body, headers).status == 409
    attempt(accepted.finish, error)
    assert handler.accept(body, headers).finish().dispatched == 1
    assert handler.accept(body, headers).duplicate


@pytest.mark.parametrize("error", WAYS_OUT)
def test_a_streamed_batch_keeps_what_ran_and_releases_the_rest(
    error: type[BaseException],
) -> None:
    handler = make_handler("momentum")
    ran: list[str] = []
    fail = failing_once(error)

    @handler.on("*")
    def route(event: Event) -> None:
        if event.type == "open":
            fail(event)
        ran.append(event.type)

    body = sample_batch(["delivery", "open", "click"])
    headers = sign("momentum", body, batch_id="b-1", **CREDENTIALS["momentum"])
    attempt(lambda: handler.handle(body, headers), error)
    assert ran == ["delivery"]
    retry = handler.handle(body, headers)
    # The record that ran keeps its claim; the failed one and those after it run now.
    assert (retry.status, ran) == (200, ["delivery", "open", "click"])
    assert handler.handle(body, headers).duplicate


def test_an_unexpected_error_while_decoding_a_batch_leaves_nothing_claimed() -> None:
    handler = make_handler("momentum")
    ran: list[str] = []
    handler.on("*")(lambda event: ran.append(event.type))
    body = sample_batch(["delivery", "open"])
    headers = sign("momentum", body, batch_id="b-2", **CREDENTIALS["momentum"])
    events = iter(handler.verify(body, headers).events)

    def broken() -> Any:
        yield next(events)
        raise OverflowError("a bug in a decoder")

    shell = handler.verify(body, headers)
    with pytest.raises(OverflowError):
        run_plainly(dispatcher_of(handler).handle(PLAIN, shell, broken()))
    assert ran == ["delivery"]
    # The batch was released: the retry is dispatched, skipping the record that ran.
    assert handler.handle(body, headers).dispatched == 1
    assert ran == ["delivery", "open"]


# -- in progress, and leases ------------------------------------------------------------


def test_a_retry_while_the_first_attempt_runs_is_told_to_come_back_later() -> None:
    handler, seen = mindpeeker()
    body, headers = delivery()
    first = handler.accept(body, headers)
    retry = handler.handle(body, headers)
    assert retry.status == 409 and not retry.ok and seen == []
    assert ("Retry-After", "30") in retry.response_headers()
    assert "in progress" in retry.reason or "still running" in retry.reason
    first.finish()
    assert handler.handle(body, headers).duplicate


def test_a_lease_that_runs_out_lets_the_next_retry_run() -> None:
    clock = Clock()
    handler, seen = mindpeeker(dedupe=MemoryDedupeStore(clock=clock), dedupe_lease=60)
    body, headers = delivery()
    handler.accept(body, headers)  # a process that then died, holding the claim
    assert handler.handle(body, headers).status == 409
    clock.now += 61
    assert handler.handle(body, headers).dispatched == 1
    assert seen == ["session.completed"]


def test_a_duplicate_is_remembered_for_the_ttl_only() -> None:
    clock = Clock()
    handler, _seen = mindpeeker(dedupe=MemoryDedupeStore(clock=clock), dedupe_ttl=100)
    body, headers = delivery()
    handler.handle(body, headers)
    clock.now += 99
    assert handler.handle(body, headers).duplicate
    clock.now += 2
    assert handler.handle(body, headers).dispatched == 1


def test_the_default_ttl_covers_each_senders_retry_window() -> None:
    assert make_handler("momentum").dedupe_ttl >= 2 * 4 * 3600  # retries for 4 h
    assert make_handler("mindpeeker").dedupe_ttl > 1.7 * 3600  # 1 h 42 min


# -- a store that fails ----------------------------------------------------------------


class FlakyStore(MemoryDedupeStore):
    """A store whose backend goes down on demand."""

    def __init__(self) -> None:
        super().__init__()
        self.down: set[str] = set()

    def claim(self, key: str, lease: float) -> tuple[Claim, str | None]:
        if "claim" in self.down:
            raise ConnectionError("store unreachable")
        return super().claim(key, lease)

    def complete(self, key: str, token: str, ttl: float) -> bool:
        if "complete" in self.down:
            raise ConnectionError("store unreachable")
        return super().complete(key, token, ttl)

    def release(self, key: str, token: str) -> bool:
        if "release" in self.down:
            raise ConnectionError("store unreachable")
        return super().release(key, token)


def test_a_store_that_cannot_claim_fails_closed_with_503() -> None:
    store = FlakyStore()
    handler, seen = mindpeeker(dedupe=store)
    store.down.add("claim")
    body, headers = delivery()
    outcome = handler.handle(body, headers)
    assert outcome.status == 503 and isinstance(outcome.error, StoreUnavailable)
    assert ("Retry-After", "30") in outcome.response_headers()
    assert seen == []
    store.down.clear()
    assert handler.handle(body, headers).dispatched == 1


def test_a_batch_whose_record_cannot_be_claimed_is_released_for_the_retry() -> None:
    store = FlakyStore()
    handler = make_handler("momentum", dedupe=store)
    ran: list[str] = []

    @handler.on("*")
    def route(event: Event) -> None:
        ran.append(event.type)
        if event.type == "delivery" and len(ran) == 1:
            store.down.add("claim")  # the store goes down after the first record ran

    body = sample_batch(["delivery", "open"])
    headers = sign("momentum", body, batch_id="b-3", **CREDENTIALS["momentum"])
    assert handler.handle(body, headers).status == 503
    assert ran == ["delivery"]
    store.down.clear()
    assert handler.handle(body, headers).dispatched == 1
    assert ran == ["delivery", "open"]  # the first record kept its completed claim


def test_a_store_that_cannot_complete_still_acknowledges_work_done(
    caplog: pytest.LogCaptureFixture,
) -> None:
    store = FlakyStore()
    handler, seen = mindpeeker(dedupe=store)
    store.down.add("complete")
    body, headers = delivery()
    assert handler.handle(body, headers).status == 200
    assert seen == ["session.completed"]
    assert "could not mark" in caplog.text and "(tries: 3)" in caplog.text


def test_a_store_that_cannot_release_is_logged_and_the_failure_still_answered(
    caplog: pytest.LogCaptureFixture,
) -> None:
    store = FlakyStore()
    handler = make_handler("mindpeeker", dedupe=store)
    handler.on("session.completed")(failing_once(RuntimeError))
    store.down.add("release")
    assert handler.handle(*delivery()).status == 500
    assert "could not release a claim" in caplog.text


def test_a_store_answering_something_else_than_a_claim_is_a_programming_error() -> None:
    class Wrong(MemoryDedupeStore):
        def claim(self, key: str, lease: float) -> tuple[Claim, str | None]:
            return True  # type: ignore[return-value]

    handler = make_handler("mindpeeker", dedupe=Wrong())
    with pytest.raises(TypeError, match=r"hookshield\.Claim"):
        handler.handle(*delivery())


# -- the async paths --------------------------------------------------------------------


def run(coroutine: Any) -> Any:
    return asyncio.run(coroutine)


@pytest.mark.parametrize("error", [RuntimeError, SystemExit])
@pytest.mark.parametrize("kind", ["plain", "async"])
def test_handle_async_releases_on_every_way_out(kind: str, error: type[BaseException]) -> None:
    handler = make_handler("mindpeeker")
    plain = failing_once(error)
    if kind == "plain":
        handler.on("session.completed")(plain)
    else:

        @handler.on("session.completed")
        async def route(event: Event) -> None:
            plain(event)

    body, headers = delivery()
    attempt(lambda: run(handler.handle_async(body, headers)), error)
    assert run(handler.handle_async(body, headers)).dispatched == 1
    assert run(handler.handle_async(body, headers)).duplicate


def test_a_cancelled_async_route_releases_its_claim() -> None:
    handler = make_handler("mindpeeker")

    async def main() -> Outcome:
        began = asyncio.Event()

        @handler.on("session.completed")
        async def route(event: Event) -> None:
            began.set()
            await asyncio.sleep(60)

        body, headers = delivery()
        task = asyncio.ensure_future(handler.handle_async(body, headers))
        await began.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        # The cancelled attempt let its claim go: the retry is not told "in progress".
        return await handler.accept_async(body, headers)

    accepted = run(main())
    assert accepted.status == 200 and len(accepted.pending) == 1


def test_an_async_store_is_awaited_on_the_loop_and_refused_by_plain_code() -> None:
    store = AsyncStore()
    handler, _seen = mindpeeker(dedupe=store)
    body, headers = delivery()

    async def main() -> tuple[Outcome, Outcome, int]:
        first = await handler.handle_async(body, headers)
        again = await handler.handle_async(body, headers)
        return first, again, threading.get_ident()

    first, again, loop_thread = run(main())
    assert (first.dispatched, again.duplicate) == (1, True)
    assert store.threads == {loop_thread}
    with pytest.raises(TypeError, match="handle_async"):
        handler.handle(body, headers)


def test_accept_complete_and_release_async() -> None:
    handler, _ = mindpeeker(dedupe=AsyncStore())
    body, headers = delivery()

    async def main() -> tuple[int, int, bool]:
        accepted = await handler.accept_async(body, headers)
        await accepted.release_async()
        again = await handler.accept_async(body, headers)
        await again.complete_async()
        third = await handler.accept_async(body, headers)
        return accepted.status, again.status, third.duplicate

    assert run(main()) == (200, 200, True)


class _Suspend:
    def __await__(self) -> Any:
        yield  # as an async runner's call waits for a thread


class Suspending:
    """A runner whose route calls wait once, as the async one's wait for a thread."""

    async def route(self, func: Callable[..., Any], /, *args: Any) -> Any:
        await _Suspend()
        return func(*args)

    async def store(self, func: Callable[..., Any], /, *args: Any) -> Any:
        return func(*args)

    async def pause(self, seconds: float) -> None:
        return None


def test_a_dispatch_closed_mid_route_closes_and_leaves_its_claim_to_the_lease() -> None:
    # A task torn down closes its coroutine where it waits: closing must not await
    # anything more (a coroutine that waits while it is being closed is an error).
    handler, seen = mindpeeker()
    body, headers = delivery()
    verified = handler.verify(body, headers)
    attempt_ = dispatcher_of(handler).handle(Suspending(), verified, verified.events)
    attempt_.send(None)  # the claim is made; the route's call waits
    attempt_.close()
    assert seen == []
    assert handler.handle(body, headers).status == 409  # the lease frees it


# -- de-duplication ------------------------------------------------------------------


def test_a_duplicate_is_acknowledged_and_not_dispatched(provider: str) -> None:
    handler = make_handler(provider)
    seen: list[Event] = []
    handler.on("*")(seen.append)
    kind = a_type(provider)
    body, headers = sample_delivery(provider, kind, **CREDENTIALS[provider])
    first = handler.handle(body, headers)
    second = handler.handle(body, headers)
    assert (first.status, second.status) == (200, 200)
    assert second.duplicate and not first.duplicate
    assert len(seen) == 1


def test_a_replay_with_fresh_unsigned_headers_is_still_a_duplicate() -> None:
    handler = make_handler("moonsense")
    seen: list[Event] = []
    handler.on("*")(seen.append)
    body, headers = sample_delivery("moonsense", "bundle.received", **CREDENTIALS["moonsense"])
    handler.handle(body, headers)
    replay = {**headers, "X-Moonsense-Delivery": "a-fresh-guid"}
    assert handler.handle(body, replay).duplicate
    assert len(seen) == 1


def test_dedupe_none_dispatches_every_time() -> None:
    handler, seen = mindpeeker(dedupe=None)
    body, headers = delivery()
    assert handler.handle(body, headers).dispatched == 1
    assert handler.handle(body, headers).dispatched == 1
    assert seen == ["session.completed"] * 2


def test_a_failure_without_a_store_is_500_and_its_retry_runs() -> None:
    handler = make_handler("mindpeeker", dedupe=None)
    handler.on("*")(failing_once(RuntimeError))
    body, headers = delivery()
    assert handler.handle(body, headers).status == 500
    assert handler.handle(body, headers).dispatched == 1


def test_momentum_records_are_deduplicated_across_batches() -> None:
    handler = make_handler("momentum")
    seen: list[str | None] = []
    handler.on("*")(lambda event: seen.append(event.id))
    first = json.loads(sample_batch(["delivery", "click"]))
    second = [first[1], *json.loads(sample_batch(["open"]))]
    for records in (first, second):
        body = json.dumps(records).encode()
        assert handler.handle(body, sign("momentum", body, **CREDENTIALS["momentum"])).ok
    assert len(seen) == 3
    assert len(set(seen)) == 3


def test_records_without_an_event_id_are_keyed_on_their_content() -> None:
    # A replay under a fresh (unsigned) batch id is a duplicate; another record runs.
    handler = make_handler("momentum")
    seen: list[str] = []
    handler.on("*")(lambda event: seen.append(event.type))
    body = json.dumps([{"msys": {"track_event": {"type": "open"}}}]).encode()
    for batch in ("b-1", "b-2"):
        headers = sign("momentum", body, batch_id=batch, **CREDENTIALS["momentum"])
        assert handler.handle(body, headers).ok
    other = json.dumps([{"msys": {"track_event": {"type": "click"}}}]).encode()
    assert handler.handle(other, sign("momentum", other, **CREDENTIALS["momentum"])).ok
    assert seen == ["open", "click"]


def test_a_failing_record_without_an_id_is_released_for_the_retry() -> None:
    handler = make_handler("momentum")
    handler.on("open")(lambda event: 1 / 0)
    body = json.dumps([{"msys": {"track_event": {"type": "open"}}}]).encode()
    headers = sign("momentum", body, batch_id="b", **CREDENTIALS["momentum"])
    assert handler.handle(body, headers).status == 500
    assert handler.handle(body, headers).status == 500  # released: retried, not a duplicate


def test_a_repeated_batch_is_a_duplicate_but_not_another_batch_under_its_id() -> None:
    handler = make_handler("momentum")
    body = sample_batch(["delivery"])
    headers = sign("momentum", body, batch_id="batch-1", **CREDENTIALS["momentum"])
    handler.handle(body, headers)
    outcome = handler.handle(body, headers)
    assert outcome.duplicate and outcome.reason == "duplicate delivery"
    other = sample_batch(["bounce"])
    outcome = handler.handle(
        other, sign("momentum", other, batch_id="batch-1", **CREDENTIALS["momentum"])
    )
    assert not outcome.duplicate and outcome.dispatched == 0  # no route, but run


def test_a_store_shared_between_handlers_dedupes_across_them() -> None:
    store = MemoryDedupeStore()
    a = make_handler("mindpeeker", dedupe=store)
    b = make_handler("mindpeeker", dedupe=store)
    body, headers = delivery()
    assert not a.handle(body, headers).duplicate
    assert b.handle(body, headers).duplicate


def test_long_sender_chosen_ids_and_types_are_kept_bounded() -> None:
    handler = WebhookHandler("momentum", allow_unsigned=True)
    store = handler.dedupe
    assert isinstance(store, MemoryDedupeStore)
    records = [
        {
            "msys": {
                "track_event": {"type": "t" * 10_000 + str(n), "event_id": "e" * 10_000 + str(n)}
            }
        }
        for n in range(20)
    ]
    body = json.dumps(records).encode()
    outcome = handler.handle(body, {})
    assert outcome.status == 200
    assert len(outcome.reason) < 1_000
    assert "15 more" in outcome.reason
    # Each key is short, whatever the sender put in the record: the store holds the
    # batch's key and each record's, and none of them is the 10,000-character id.
    assert len(store) == 21
    seen: list[str] = []
    real_claim = store.claim

    def claim(key: str, lease: float) -> tuple[Claim, str | None]:
        seen.append(key)
        return real_claim(key, lease)

    store.claim = claim  # type: ignore[method-assign]
    # And de-duplication by those long ids still works.
    assert handler.handle(body, {"X-MessageSystems-Batch-ID": "other"}).duplicate
    assert seen and all(len(key) < 200 for key in seen)


# -- route failures ---------------------------------------------------------------------


def test_a_failing_route_gives_500_calls_error_hooks_and_allows_the_retry() -> None:
    handler = make_handler("mindpeeker")
    attempts: list[str] = []
    errors: list[tuple[str, str]] = []

    @handler.on("session.completed")
    def flaky(event: Event) -> None:
        attempts.append(event.type)
        if len(attempts) == 1:
            raise RuntimeError("database down")

    @handler.on_error
    def record(error: Exception, event: Event) -> None:
        errors.append((type(error).__name__, event.type))

    body, headers = delivery()
    failed = handler.handle(body, headers)
    assert failed.status == 500
    assert failed.reason == "a handler raised RuntimeError"
    assert isinstance(failed.error, RuntimeError)
    assert b"database" not in failed.response_body()
    assert errors == [("RuntimeError", "session.completed")]
    retried = handler.handle(body, headers)
    assert retried.status == 200
    assert not retried.duplicate
    assert attempts == ["session.completed", "session.completed"]


def test_a_failing_error_hook_is_logged_and_the_others_still_run(
    caplog: pytest.LogCaptureFixture,
) -> None:
    handler = make_handler("mindpeeker")
    hooked: list[str] = []

    @handler.on("*")
    def boom(event: Event) -> None:
        raise ValueError("route")

    @handler.on_error
    def broken_hook(error: Exception, event: Event) -> None:
        raise KeyError("hook")

    handler.on_error(lambda error, event: hooked.append(str(error)))
    with caplog.at_level(logging.ERROR, logger="hookshield"):
        assert handler.handle(*delivery()).status == 500
    assert "on_error hook raised" in caplog.text
    assert hooked == ["route"]


def test_a_retried_batch_skips_records_already_handled() -> None:
    handler = make_handler("momentum")
    handled: list[str] = []

    @handler.on("*")
    def on_record(event: Event) -> None:
        if event.type == "bounce" and "bounce" not in handled:
            handled.append("bounce")
            raise RuntimeError("transient")
        handled.append(event.type)

    body = sample_batch(["delivery", "bounce", "click"])
    headers = sign("momentum", body, batch_id="b-1", **CREDENTIALS["momentum"])
    assert handler.handle(body, headers).status == 500
    assert handler.handle(body, headers).status == 200
    assert handled == ["delivery", "bounce", "bounce", "click"]


def test_an_async_route_from_plain_dispatch_inside_a_running_loop_is_refused() -> None:
    handler = make_handler("mindpeeker")

    @handler.on("*")
    async def done(event: Event) -> None: ...

    verified = handler.verify(*delivery())

    async def main() -> None:
        with pytest.raises(TypeError, match="handle_async"):
            handler.dispatch(verified)

    run(main())  # and no "coroutine was never awaited" warning: it was closed


def test_an_awaitable_from_plain_dispatch_inside_a_running_loop_is_refused() -> None:
    handler = make_handler("mindpeeker")

    async def main() -> None:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        handler.on("*")(lambda event: future)
        with pytest.raises(TypeError, match="handle_async"):
            handler.dispatch(handler.verify(*delivery()))

    run(main())


# -- batches: each record claimed -------------------------------------------------------


def momentum_batch(records: list[Any], batch_id: str) -> tuple[bytes, dict[str, str]]:
    body = json.dumps(records).encode()
    return body, sign("momentum", body, batch_id=batch_id, **CREDENTIALS["momentum"])


def test_a_batch_sharing_a_record_with_one_in_progress_comes_back_later() -> None:
    handler = make_handler("momentum")
    ran: list[str] = []
    handler.on("*")(lambda event: ran.append(event.type))
    records = json.loads(sample_batch(["delivery", "open"]))
    first = handler.accept(*momentum_batch(records, "b-1"))  # holds both records
    for attempt_ in (handler.accept, handler.handle):
        later = attempt_(*momentum_batch(records[1:], "b-2"))
        assert later.status == 409 and ran == []
    first.finish()
    # b-2 let its own key go each time: once b-1 is done, b-2 is a batch of duplicates.
    again = handler.accept(*momentum_batch(records[1:], "b-2"))
    assert (again.status, again.duplicate, again.reason) == (200, True, "duplicate events")
    assert handler.handle(*momentum_batch(records[1:], "b-2")).reason == "duplicate delivery"


def test_accepting_a_batch_of_no_events_is_not_a_duplicate() -> None:
    handler = make_handler("momentum")
    outcome = handler.accept(*momentum_batch([{"msys": {}}], "b-0"))
    assert (outcome.status, outcome.reason, outcome.duplicate) == (200, "accepted", False)
    assert outcome.pending == ()
    assert handler.accept(*momentum_batch([{"msys": {}}], "b-0")).reason == "duplicate delivery"


def test_accepting_a_batch_whose_record_cannot_be_claimed_gives_503_and_holds_nothing() -> None:
    store = FlakyStore()
    handler = make_handler("momentum", dedupe=store)
    body, headers = momentum_batch(json.loads(sample_batch(["delivery"])), "b-5")
    real_claim = store.claim

    def claim(key: str, lease: float) -> tuple[Claim, str | None]:
        if ":event:" in key:
            raise ConnectionError("store unreachable")
        return real_claim(key, lease)

    store.claim = claim  # type: ignore[method-assign]
    refused = handler.accept(body, headers)
    assert refused.status == 503 and isinstance(refused.error, StoreUnavailable)
    store.claim = real_claim  # type: ignore[method-assign]
    assert len(handler.accept(body, headers).pending) == 1  # the batch key was released


def test_an_interrupt_while_accepting_a_batch_releases_what_it_claimed() -> None:
    store = FlakyStore()
    handler = make_handler("momentum", dedupe=store)
    body, headers = momentum_batch(json.loads(sample_batch(["delivery", "open"])), "b-6")
    real_claim = store.claim
    claimed: list[str] = []

    def claim(key: str, lease: float) -> tuple[Claim, str | None]:
        claimed.append(key)
        if len(claimed) == 3:  # the batch, the first record, then the second: interrupted
            raise KeyboardInterrupt
        return real_claim(key, lease)

    store.claim = claim  # type: ignore[method-assign]
    with pytest.raises(KeyboardInterrupt):
        handler.accept(body, headers)
    store.claim = real_claim  # type: ignore[method-assign]
    assert len(handler.accept(body, headers).pending) == 2


def test_a_record_twice_in_one_batch_is_accepted_once_not_taken_for_another_attempt() -> None:
    # accept claims every record before any runs: the repeat must not find its own
    # claim "in progress" and turn the whole batch into a 409 on every retry.
    handler = make_handler("momentum")
    record = json.loads(sample_batch(["open"]))[0]
    body = json.dumps([record, record]).encode()
    headers = sign("momentum", body, batch_id="b-twice", **CREDENTIALS["momentum"])
    accepted = handler.accept(body, headers)
    assert accepted.status == 200 and len(accepted.pending) == 1
    assert accepted.finish().dispatched == 0  # no route: accepted, settled
    assert handler.accept(body, headers).duplicate
