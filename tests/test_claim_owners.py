"""A claim belongs to the attempt that made it: a stale attempt cannot settle another's.

An attempt whose routes outlive its lease loses its key to the next copy of the
delivery.  When the stale attempt then ends, it must not release the new attempt's
claim (a third copy would run while the second still does), and a failure of the new
attempt must not erase the done mark of the stale one that succeeded (the delivery
would run successfully twice).  Each scenario runs in real worker processes on a
real SQLite file and a real redis-server.  A store of the protocol without owner
tokens keeps working for a release, with a warning.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from hookshield import Claim, Event, MemoryDedupeStore, WebhookHandler
from hookshield.testing import sample_delivery

from . import dedupe_race

#: The lease of the attempt that outlives it, in seconds.
SHORT_LEASE = 1.0
#: The lease of the attempt that takes the key over: it must still hold it at each check.
LONG_LEASE = 60.0


@pytest.fixture(params=["sqlite", "redis", "postgres"])
def shared(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, str]:
    """Where a shared store lives: ("sqlite", a path), ("redis", a URL) or ("postgres", a URL)."""
    kind: str = request.param
    if kind == "sqlite":
        return kind, str(tmp_path / "dedupe.sqlite3")
    if kind == "postgres":
        return kind, str(request.getfixturevalue("postgres_url"))
    url: str = request.getfixturevalue("redis_url")
    return kind, url


@dataclass
class Attempt:
    """An attempt at a delivery in a worker process of its own."""

    process: Any
    running: Any
    proceed: Any
    results: Any

    def finish(self) -> tuple[int, int]:
        """Let the route go on; the attempt's ``(status, dispatched)``."""
        self.proceed.set()
        answer: tuple[int, int] = self.results.get(timeout=60)
        self.process.join(timeout=30)
        assert self.process.exitcode == 0
        return answer


class Workers:
    """Worker processes making attempts at one delivery on one shared store."""

    def __init__(self, kind: str, where: str) -> None:
        self.kind, self.where = kind, where
        self.context = multiprocessing.get_context("spawn")
        body, headers = sample_delivery(
            "mindpeeker", "session.completed", secret=dedupe_race.SECRET
        )
        self.delivery = (body, dict(headers))
        self.attempts: list[Attempt] = []

    def start(self, *, lease: float, fail: bool) -> Attempt:
        """An attempt whose route runs until told to finish; it has claimed the key."""
        context = self.context
        running, proceed, results = context.Event(), context.Event(), context.Queue()
        process = context.Process(
            target=dedupe_race.attempt,
            args=(self.kind, self.where, lease, self.delivery, fail, running, proceed, results),
        )
        process.start()
        made = Attempt(process, running, proceed, results)
        self.attempts.append(made)
        if not running.wait(timeout=60):
            pytest.fail(f"the attempt did not run its route: {results.get(timeout=5)}")
        return made

    def copy(self) -> tuple[int, int, bool]:
        """Another copy of the delivery, handled here: ``(status, dispatched, duplicate)``."""
        handler = WebhookHandler(
            "mindpeeker",
            secret=dedupe_race.SECRET,
            dedupe=dedupe_race.open_store(self.kind, self.where),
        )
        handler.on("*")(lambda event: None)
        outcome = handler.handle(*self.delivery)
        return outcome.status, outcome.dispatched, outcome.duplicate

    def stop(self) -> None:
        for made in self.attempts:
            made.proceed.set()
            made.process.join(timeout=30)
            if made.process.is_alive():
                made.process.kill()


@pytest.fixture
def workers(shared: tuple[str, str]) -> Iterator[Workers]:
    made = Workers(*shared)
    yield made
    made.stop()


def _outlive_the_lease() -> None:
    time.sleep(SHORT_LEASE * 1.5)


def test_a_stale_attempt_that_fails_does_not_release_the_claim_of_the_one_running(
    workers: Workers,
) -> None:
    stale = workers.start(lease=SHORT_LEASE, fail=True)
    _outlive_the_lease()
    current = workers.start(lease=LONG_LEASE, fail=False)  # took the key over
    assert stale.finish() == (500, 0)
    # The current attempt still runs: a third copy must wait for it, not run too.
    assert workers.copy() == (409, 0, False)
    assert current.finish() == (200, 1)
    assert workers.copy() == (200, 0, True)


def test_a_stale_attempt_that_succeeded_stays_done_when_the_one_running_fails(
    workers: Workers,
) -> None:
    stale = workers.start(lease=SHORT_LEASE, fail=False)
    _outlive_the_lease()
    current = workers.start(lease=LONG_LEASE, fail=True)
    assert stale.finish() == (200, 1)  # the routes ran: the delivery is done
    assert current.finish() == (500, 0)
    # The current attempt's failure must not erase the done mark: no second success.
    assert workers.copy() == (200, 0, True)


# -- stores of the protocol without owners ------------------------------------------------


class OwnerlessStore:
    """``claim(key, lease) -> Claim``, ``complete(key, ttl)``, ``release(key)``: no tokens."""

    def __init__(self) -> None:
        self.keys: dict[str, bool] = {}  # key -> done; no expiry, for brevity

    def claim(self, key: str, lease: float) -> Claim:
        if key in self.keys:
            return Claim.DONE if self.keys[key] else Claim.IN_PROGRESS
        self.keys[key] = False
        return Claim.NEW

    def complete(self, key: str, ttl: float) -> None:
        self.keys[key] = True

    def release(self, key: str) -> None:
        self.keys.pop(key, None)


class AsyncOwnerlessStore:
    """:class:`OwnerlessStore`, awaited."""

    def __init__(self) -> None:
        self.inner = OwnerlessStore()

    async def claim(self, key: str, lease: float) -> Claim:
        return self.inner.claim(key, lease)

    async def complete(self, key: str, ttl: float) -> None:
        self.inner.complete(key, ttl)

    async def release(self, key: str) -> None:
        self.inner.release(key)


def _failing_once(handler: WebhookHandler) -> list[str]:
    ran: list[str] = []

    @handler.on("*")
    def route(event: Event) -> None:
        ran.append(event.type)
        if len(ran) == 1:
            raise RuntimeError("the first attempt fails")

    return ran


def test_a_store_without_owner_tokens_still_works_for_a_release_with_a_warning() -> None:
    store = OwnerlessStore()
    with pytest.warns(DeprecationWarning, match="without owner tokens") as warned:
        handler = WebhookHandler(
            "mindpeeker",
            secret=dedupe_race.SECRET,
            dedupe=store,  # type: ignore[arg-type]  # the earlier protocol, on purpose
        )
    assert "complete(key, token, ttl)" in str(warned[0].message)
    assert warned[0].filename == __file__  # it points at the user's code
    ran = _failing_once(handler)
    delivery = sample_delivery("mindpeeker", "session.completed", secret=dedupe_race.SECRET)
    assert handler.handle(*delivery).status == 500  # released for the retry ...
    assert handler.handle(*delivery).dispatched == 1  # ... which runs
    assert handler.handle(*delivery).duplicate
    assert len(ran) == 2 and list(store.keys.values()) == [True]
    assert repr(store) in repr(handler.dedupe)


def test_an_async_store_without_owner_tokens_still_works_for_a_release_with_a_warning() -> None:
    store = AsyncOwnerlessStore()
    with pytest.warns(DeprecationWarning, match="without owner tokens"):
        handler = WebhookHandler(
            "mindpeeker",
            secret=dedupe_race.SECRET,
            dedupe=store,  # type: ignore[arg-type]  # the earlier protocol, on purpose
        )
    ran = _failing_once(handler)
    delivery = sample_delivery("mindpeeker", "session.completed", secret=dedupe_race.SECRET)

    async def three_copies() -> list[tuple[int, bool]]:
        outcomes = [await handler.handle_async(*delivery) for _ in range(3)]
        return [(outcome.status, outcome.duplicate) for outcome in outcomes]

    assert asyncio.run(three_copies()) == [(500, False), (200, False), (200, True)]
    assert len(ran) == 2 and list(store.inner.keys.values()) == [True]


def test_a_store_of_the_current_protocol_is_used_as_it_is() -> None:
    store = MemoryDedupeStore()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        handler = WebhookHandler("mindpeeker", secret=dedupe_race.SECRET, dedupe=store)
    assert handler.dedupe is store
