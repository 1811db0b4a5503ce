"""Claims: the keys one delivery holds, and how each is completed or released.

These run ``Claims`` directly with the plain runner: the bookkeeping is the same
whichever runner makes the store calls.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import pytest

from hookshield import Claim, MemoryDedupeStore, StoreUnavailable
from hookshield._handling.claims import COMPLETE_RETRY_DELAYS, Claims, bounded
from hookshield._handling.runner import PLAIN, run


class Recorder:
    """A runner that makes each call plainly and records it; the first ``refusals``
    store steps fail as a store restarting would; ``withhold`` makes none of them."""

    def __init__(self, refusals: int = 0, *, withhold: bool = False) -> None:
        self.seen: list[tuple[str, tuple[Any, ...]]] = []
        self.refusals = refusals
        self.withhold = withhold

    async def route(self, func: Callable[..., Any], /, *args: Any) -> Any:
        return func(*args)

    async def store(self, func: Callable[..., Any], /, *args: Any) -> Any:
        self.seen.append(("store", args))
        if self.refusals:
            self.refusals -= 1
            raise ConnectionError("store restarting")
        return True if self.withhold else func(*args)

    async def pause(self, seconds: float) -> None:
        self.seen.append(("pause", (seconds,)))


class Recording(MemoryDedupeStore):
    """The in-memory store, recording each call; ``down`` makes every call fail."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[tuple[str, str]] = []
        self.down = False

    def _call(self, step: str, key: str) -> None:
        self.calls.append((step, key))
        if self.down:
            raise ConnectionError("store unreachable")

    def claim(self, key: str, lease: float) -> tuple[Claim, str | None]:
        self._call("claim", key)
        return super().claim(key, lease)

    def complete(self, key: str, token: str, ttl: float) -> bool:
        self._call("complete", key)
        return super().complete(key, token, ttl)

    def release(self, key: str, token: str) -> bool:
        self._call("release", key)
        return super().release(key, token)


def test_a_short_id_is_its_own_key_and_a_long_one_is_hashed() -> None:
    assert bounded("evt_1") == "evt_1"
    assert bounded("x" * 128) == "x" * 128
    long = bounded("x" * 129)
    assert long.startswith("sha256:") and len(long) == 7 + 64
    assert bounded("x" * 129) == long != bounded("x" * 130)
    assert bounded("\ud800" * 200).startswith("sha256:")  # a lone surrogate still hashes


def test_a_new_claim_is_held_and_others_are_not() -> None:
    store = Recording()
    store.complete("done", "never-issued", 60)
    store.claim("running", 60)
    claims = Claims(store, lease=60, ttl=600)
    assert run(claims.claim(PLAIN, "new")) is Claim.NEW
    assert run(claims.claim(PLAIN, "done")) is Claim.DONE
    assert run(claims.claim(PLAIN, "running")) is Claim.IN_PROGRESS
    assert [claims.holds(key) for key in ("new", "done", "running")] == [True, False, False]
    assert "held=1" in repr(claims)


def test_a_claim_is_one_store_step_made_by_the_runner() -> None:
    recorder = Recorder()
    assert run(Claims(MemoryDedupeStore(), lease=60, ttl=600).claim(recorder, "k")) is Claim.NEW
    assert recorder.seen == [("store", ("k", 60))]


def test_complete_settles_each_held_key_done_for_the_ttl() -> None:
    store = Recording()
    claims = Claims(store, lease=60, ttl=600)
    for key in ("a", "b"):
        run(claims.claim(PLAIN, key))
    run(claims.complete_all(PLAIN))
    assert store.calls[-2:] == [("complete", "a"), ("complete", "b")]
    assert not claims.holds("a") and not claims.holds("b")
    assert store.claim("a", 60)[0] is Claim.DONE


def test_release_forgets_every_held_key_newest_first() -> None:
    store = Recording()
    claims = Claims(store, lease=60, ttl=600)
    for key in ("a", "b", "c"):
        run(claims.claim(PLAIN, key))
    run(claims.complete(PLAIN, "b"))
    run(claims.release_all(PLAIN))
    assert store.calls[-2:] == [("release", "c"), ("release", "a")]
    assert store.claim("a", 60)[0] is Claim.NEW
    run(claims.release_all(PLAIN))  # nothing held: no store call
    assert store.calls[-1] == ("claim", "a")


def test_a_store_that_cannot_claim_is_unavailable() -> None:
    store = Recording()
    store.down = True
    claims = Claims(store, lease=60, ttl=600)
    with pytest.raises(StoreUnavailable, match="ConnectionError") as raised:
        run(claims.claim(PLAIN, "k"))
    assert isinstance(raised.value.__cause__, ConnectionError)
    assert raised.value.status == 503
    assert not claims.holds("k")


def test_a_store_that_cannot_complete_or_release_is_logged_and_the_rest_still_settled(
    caplog: pytest.LogCaptureFixture,
) -> None:
    store = Recording()
    claims = Claims(store, lease=60, ttl=600)
    for key in ("a", "b", "c"):
        run(claims.claim(PLAIN, key))
    store.down = True
    with caplog.at_level(logging.ERROR, logger="hookshield"):
        run(claims.complete(PLAIN, "a"))
        run(claims.release_all(PLAIN))
    # The completion is tried three times, each release once.
    assert store.calls[-5:] == [("complete", "a")] * 3 + [("release", "c"), ("release", "b")]
    assert "could not mark 'a' done" in caplog.text and "(tries: 3)" in caplog.text
    assert caplog.text.count("could not release a claim") == 2
    assert not any(claims.holds(key) for key in "abc")


def test_a_completion_the_store_refuses_is_tried_again_after_a_pause_then_settled() -> None:
    store = MemoryDedupeStore()
    claims = Claims(store, lease=60, ttl=600)
    run(claims.claim(PLAIN, "k"))
    recorder = Recorder(refusals=2)
    run(claims.complete(recorder, "k"))
    # Three tries, the pauses between them made by the runner (the async one awaits
    # them, keeping its event loop free), about a second in all.
    assert [(step, args[0]) for step, args in recorder.seen] == [
        ("store", "k"),
        ("pause", COMPLETE_RETRY_DELAYS[0]),
        ("store", "k"),
        ("pause", COMPLETE_RETRY_DELAYS[1]),
        ("store", "k"),
    ]
    assert sum(COMPLETE_RETRY_DELAYS) <= 1
    assert store.claim("k", 60)[0] is Claim.DONE


@pytest.mark.parametrize(
    "answer",
    [True, Claim.NEW, (Claim.NEW, None), (Claim.NEW, ""), (Claim.NEW, 7), ("new", "t"), ()],
)
def test_a_store_answering_something_else_than_a_claim_is_a_programming_error(
    answer: object,
) -> None:
    class Wrong(MemoryDedupeStore):
        def claim(self, key: str, lease: float) -> tuple[Claim, str | None]:
            return answer  # type: ignore[return-value]

    claims = Claims(Wrong(), lease=60, ttl=600)
    with pytest.raises(TypeError, match=r"hookshield\.Claim"):
        run(claims.claim(PLAIN, "k"))
    assert not claims.holds("k")


def test_the_token_of_a_claim_settles_it() -> None:
    store = Recording()
    claims = Claims(store, lease=60, ttl=600)
    run(claims.claim(PLAIN, "a"))
    recorder = Recorder(withhold=True)  # records the completion, does not make it
    run(claims.complete(recorder, "a"))
    [(step, (key, token, ttl))] = recorder.seen
    assert (step, key, ttl) == ("store", "a", 600)
    assert store.release("a", "another") is False  # the store holds it under that token
    assert store.release("a", token) is True


class Clock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_an_attempt_that_outlived_its_lease_settles_nothing_of_the_next_and_says_so(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = Clock()
    store = MemoryDedupeStore(clock=clock)
    # A sender-chosen id, logged escaped: it cannot forge a line of the log.
    key = "moco:evt\nhookshield: forged line \u202e"
    stale, current = Claims(store, lease=1, ttl=600), Claims(store, lease=1, ttl=600)
    run(stale.claim(PLAIN, key))
    clock.now += 2  # the stale attempt outlived its lease; the next copy takes the key
    assert run(current.claim(PLAIN, key)) is Claim.NEW
    with caplog.at_level(logging.WARNING, logger="hookshield"):
        run(stale.release_all(PLAIN))
    assert store.claim(key, 1)[0] is Claim.IN_PROGRESS  # the current attempt's claim stands
    [released] = caplog.records
    assert released.levelno == logging.WARNING
    assert repr(key) in released.getMessage() and "\n" not in released.getMessage()
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="hookshield"):
        run(stale.complete_all(PLAIN))  # nothing held any more: nothing to do
        assert caplog.records == []
        run(current.release_all(PLAIN))
    assert store.claim(key, 1)[0] is Claim.NEW


def test_a_stale_completion_marks_the_key_done_and_the_next_attempt_cannot_undo_it(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = Clock()
    store = MemoryDedupeStore(clock=clock)
    stale, current = Claims(store, lease=1, ttl=600), Claims(store, lease=1, ttl=600)
    run(stale.claim(PLAIN, "k"))
    clock.now += 2
    run(current.claim(PLAIN, "k"))
    with caplog.at_level(logging.WARNING, logger="hookshield"):
        run(stale.complete_all(PLAIN))
        run(current.release_all(PLAIN))
    assert store.claim("k", 1)[0] is Claim.DONE
    completed, released = caplog.records
    assert "marked done" in completed.getMessage() and "'k'" in completed.getMessage()
    assert "not released" in released.getMessage() and "'k'" in released.getMessage()
