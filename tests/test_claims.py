"""Claims: the keys one delivery holds, and how each is completed or released.

These drive ``Claims`` directly with the plain driver: the bookkeeping is the same
whichever driver makes the store calls.
"""

from __future__ import annotations

import logging

import pytest

from hookshield import Claim, MemoryDedupeStore, StoreUnavailable
from hookshield._claims import COMPLETE_RETRY_DELAYS, Claims, Kind, bounded
from hookshield._dispatch import drive


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
    assert drive(claims.claim("new")) is Claim.NEW
    assert drive(claims.claim("done")) is Claim.DONE
    assert drive(claims.claim("running")) is Claim.IN_PROGRESS
    assert [claims.holds(key) for key in ("new", "done", "running")] == [True, False, False]
    assert "held=1" in repr(claims)


def test_a_claim_is_yielded_as_a_store_step() -> None:
    store = MemoryDedupeStore()
    steps = Claims(store, lease=60, ttl=600).claim("k")
    step = next(steps)
    kind, _, args = step
    assert kind is Kind.STORE and args == ("k", 60)


def test_complete_settles_each_held_key_done_for_the_ttl() -> None:
    store = Recording()
    claims = Claims(store, lease=60, ttl=600)
    for key in ("a", "b"):
        drive(claims.claim(key))
    drive(claims.complete_all())
    assert store.calls[-2:] == [("complete", "a"), ("complete", "b")]
    assert not claims.holds("a") and not claims.holds("b")
    assert store.claim("a", 60)[0] is Claim.DONE


def test_release_forgets_every_held_key_newest_first() -> None:
    store = Recording()
    claims = Claims(store, lease=60, ttl=600)
    for key in ("a", "b", "c"):
        drive(claims.claim(key))
    drive(claims.complete("b"))
    drive(claims.release_all())
    assert store.calls[-2:] == [("release", "c"), ("release", "a")]
    assert store.claim("a", 60)[0] is Claim.NEW
    drive(claims.release_all())  # nothing held: no store call
    assert store.calls[-1] == ("claim", "a")


def test_a_store_that_cannot_claim_is_unavailable() -> None:
    store = Recording()
    store.down = True
    claims = Claims(store, lease=60, ttl=600)
    with pytest.raises(StoreUnavailable, match="ConnectionError") as raised:
        drive(claims.claim("k"))
    assert isinstance(raised.value.__cause__, ConnectionError)
    assert raised.value.status == 503
    assert not claims.holds("k")


def test_a_store_that_cannot_complete_or_release_is_logged_and_the_rest_still_settled(
    caplog: pytest.LogCaptureFixture,
) -> None:
    store = Recording()
    claims = Claims(store, lease=60, ttl=600)
    for key in ("a", "b", "c"):
        drive(claims.claim(key))
    store.down = True
    with caplog.at_level(logging.ERROR, logger="hookshield"):
        drive(claims.complete("a"))
        drive(claims.release_all())
    # The completion is tried three times, each release once.
    assert store.calls[-5:] == [("complete", "a")] * 3 + [("release", "c"), ("release", "b")]
    assert "could not mark 'a' done" in caplog.text and "(tries: 3)" in caplog.text
    assert caplog.text.count("could not release a claim") == 2
    assert not any(claims.holds(key) for key in "abc")


def test_a_completion_the_store_refuses_is_tried_again_after_a_pause_then_settled() -> None:
    store = MemoryDedupeStore()
    claims = Claims(store, lease=60, ttl=600)
    drive(claims.claim("k"))
    steps, seen, refusals = claims.complete("k"), [], 2
    step = next(steps)
    while True:
        kind, func, args = step
        seen.append((kind, args[0]))
        try:
            if kind is Kind.STORE and refusals:
                refusals -= 1
                step = steps.throw(ConnectionError("store restarting"))
            else:
                step = steps.send(None if kind is Kind.WAIT else func(*args))
        except StopIteration:
            break
    # Three tries, the pauses between them yielded for the driver to wait (the async
    # one awaits them, keeping its event loop free), about a second in all.
    assert seen == [
        (Kind.STORE, "k"),
        (Kind.WAIT, COMPLETE_RETRY_DELAYS[0]),
        (Kind.STORE, "k"),
        (Kind.WAIT, COMPLETE_RETRY_DELAYS[1]),
        (Kind.STORE, "k"),
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
        drive(claims.claim("k"))
    assert not claims.holds("k")


def test_the_token_of_a_claim_settles_it() -> None:
    store = Recording()
    claims = Claims(store, lease=60, ttl=600)
    drive(claims.claim("a"))
    steps = claims.complete("a")
    kind, _, (key, token, ttl) = next(steps)
    assert (kind, key, ttl) == (Kind.STORE, "a", 600)
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
    drive(stale.claim(key))
    clock.now += 2  # the stale attempt outlived its lease; the next copy takes the key
    assert drive(current.claim(key)) is Claim.NEW
    with caplog.at_level(logging.WARNING, logger="hookshield"):
        drive(stale.release_all())
    assert store.claim(key, 1)[0] is Claim.IN_PROGRESS  # the current attempt's claim stands
    [released] = caplog.records
    assert released.levelno == logging.WARNING
    assert repr(key) in released.getMessage() and "\n" not in released.getMessage()
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="hookshield"):
        drive(stale.complete_all())  # nothing held any more: nothing to do
        assert caplog.records == []
        drive(current.release_all())
    assert store.claim(key, 1)[0] is Claim.NEW


def test_a_stale_completion_marks_the_key_done_and_the_next_attempt_cannot_undo_it(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = Clock()
    store = MemoryDedupeStore(clock=clock)
    stale, current = Claims(store, lease=1, ttl=600), Claims(store, lease=1, ttl=600)
    drive(stale.claim("k"))
    clock.now += 2
    drive(current.claim("k"))
    with caplog.at_level(logging.WARNING, logger="hookshield"):
        drive(stale.complete_all())
        drive(current.release_all())
    assert store.claim("k", 1)[0] is Claim.DONE
    completed, released = caplog.records
    assert "marked done" in completed.getMessage() and "'k'" in completed.getMessage()
    assert "not released" in released.getMessage() and "'k'" in released.getMessage()
