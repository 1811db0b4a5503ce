"""Claiming and dispatching: every path that claims, and every way out of it.

A delivery's claims must be settled whichever way an attempt ends: completed when its
routes ran (a retry is a duplicate), released when they did not (the retry runs), a
``BaseException`` or a cancellation included; and an attempt still running makes a
retry come back later (409) rather than be acknowledged.
"""

from __future__ import annotations

import asyncio
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
from hookshield._dispatch import drive
from hookshield.testing import sample_batch, sample_delivery, sign

from .conftest import CREDENTIALS, make_handler


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
    assert accepted.claims is not None and len(accepted.pending) == 1
    attempt(lambda: handler.finish(accepted), error)
    assert handler.finish(handler.accept(body, headers)).dispatched == 1
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
        drive(handler.dispatcher.handle(shell, broken()))
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
    handler.finish(first)
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


@pytest.mark.parametrize("option", [{"dedupe_ttl": 0}, {"dedupe_lease": -1}])
def test_ttl_and_lease_must_be_positive(option: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="positive"):
        make_handler("mindpeeker", **option)


def test_an_object_without_the_three_steps_is_not_a_store() -> None:
    class OldStore:
        def claim(self, key: str, ttl: float) -> bool:
            return True

        def release(self, key: str) -> None:
            pass

    with pytest.raises(TypeError, match="complete"):
        make_handler("mindpeeker", dedupe=OldStore())


# -- a store that fails ----------------------------------------------------------------


class FlakyStore(MemoryDedupeStore):
    """A store whose backend goes down on demand."""

    def __init__(self) -> None:
        super().__init__()
        self.down: set[str] = set()

    def claim(self, key: str, lease: float) -> Claim:
        if "claim" in self.down:
            raise ConnectionError("store unreachable")
        return super().claim(key, lease)

    def complete(self, key: str, ttl: float) -> None:
        if "complete" in self.down:
            raise ConnectionError("store unreachable")
        super().complete(key, ttl)

    def release(self, key: str) -> None:
        if "release" in self.down:
            raise ConnectionError("store unreachable")
        super().release(key)


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
    assert "could not mark a delivery done" in caplog.text


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
        def claim(self, key: str, lease: float) -> Claim:
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


class AsyncStore:
    """A store of the async kind (as redis.asyncio gives), recording the loop thread."""

    def __init__(self) -> None:
        self.inner = MemoryDedupeStore()
        self.threads: set[int] = set()

    async def claim(self, key: str, lease: float) -> Claim:
        self.threads.add(threading.get_ident())
        return self.inner.claim(key, lease)

    async def complete(self, key: str, ttl: float) -> None:
        self.threads.add(threading.get_ident())
        self.inner.complete(key, ttl)

    async def release(self, key: str) -> None:
        self.threads.add(threading.get_ident())
        self.inner.release(key)


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
        await handler.release_async(accepted)
        again = await handler.accept_async(body, headers)
        await handler.complete_async(again)
        third = await handler.accept_async(body, headers)
        return accepted.status, again.status, third.duplicate

    assert run(main()) == (200, 200, True)


def test_process_dedupes_a_delivery_verified_elsewhere() -> None:
    handler, seen = mindpeeker()
    verified = handler.verify(*delivery())
    assert handler.process(verified).dispatched == 1
    assert handler.process(verified).duplicate
    assert run(handler.process_async(verified)).duplicate
    assert seen == ["session.completed"]
