"""The de-duplication claims of one delivery: which keys it holds, and letting them go.

Theory of operation: a delivery claims its own key, and a batch each event's key too
(see ``_dedupe.py`` for what a claim is).  Every key claimed is *held*, with the
owner token the store gave it, until it is either *completed* (its routes ran:
retries are duplicates from now on) or *released* (the attempt failed: the retry
must run); the store settles it only for that token, and a key another attempt took
over meanwhile (this one outlived its lease) is logged.  A delivery's attempt ends with
nothing held, whichever way it ends, a ``BaseException`` or a cancellation included.
Two ways out cannot release: a crash, and a driver closed mid-step (a generator
cannot make store calls while it is being closed); the lease frees those keys.

Store calls are not made here but yielded as steps, so that one piece
of bookkeeping serves the plain driver (which calls them) and the async one (which
awaits an async store, or runs a blocking client in a thread).  A store that fails
to claim becomes :class:`~hookshield.StoreUnavailable` (503): without an answer from
it, a replay cannot be told from a new delivery, so nothing is dispatched.  A store
that fails to complete is tried again for about a second (a Redis restarting, an
SQLite file locked for a moment), since a key left in progress lets the copy that
comes after its lease run the routes again; if it still fails, the delivery is
acknowledged all the same (its routes ran) and the key is logged.
"""

from __future__ import annotations

import enum
import hashlib
import logging
import time
from collections.abc import Callable, Generator
from typing import Any, Final, TypeAlias

from . import _observe as observe
from ._dedupe import AsyncDedupeStore, Claim, DedupeStore
from ._errors import StoreUnavailable

__all__ = ["Claims", "Kind", "Step", "Steps", "bounded"]

logger = logging.getLogger("hookshield")


class Kind(enum.Enum):
    """What a step calls: a route or error hook, the de-duplication store, or a pause."""

    ROUTE = "route"
    STORE = "store"
    #: ``(Kind.WAIT, time.sleep, (seconds,))``: the async driver awaits ``asyncio.sleep``.
    WAIT = "wait"


#: One call for a driver to make, ``(kind, func, args)``: it calls ``func(*args)`` and
#: sends back the result (a plain tuple: a named one costs more to build than some of
#: the calls it carries).
Step: TypeAlias = tuple[Kind, Callable[..., Any], tuple[Any, ...]]

#: A generator of steps that returns a ``T`` when it is driven to its end.
Steps: TypeAlias = Generator[Step, Any, Any]

#: Sender-chosen text longer than this is hashed before it becomes a store key.
_MAX_KEY_TEXT: Final = 128

#: The pauses between the tries of a completion the store did not take: three tries.
COMPLETE_RETRY_DELAYS: Final = (0.2, 0.6)
#: No retry of a completion starts later than this after its first try, in seconds.
COMPLETE_RETRY_WITHIN: Final = 1.5


def bounded(ident: str) -> str:
    """``ident``, or its SHA-256 when it is too long to keep as a key."""
    if len(ident) <= _MAX_KEY_TEXT:
        return ident
    return "sha256:" + hashlib.sha256(ident.encode("utf-8", "surrogatepass")).hexdigest()


class Claims:
    """The keys one delivery holds in ``store``: claimed, and not yet completed or released."""

    __slots__ = ("_held", "_unreachable", "lease", "store", "ttl")

    def __init__(self, store: DedupeStore | AsyncDedupeStore, lease: float, ttl: float) -> None:
        self.store = store
        self.lease = lease
        self.ttl = ttl
        # key -> the claim's owner token; a dict: ordered, and O(1) to let one go
        self._held: dict[str, str] = {}
        # Set once a completion failed every retry: the delivery's later ones (a
        # batch's records) are tried once each, so the wait stays about a second.
        self._unreachable = False

    def holds(self, key: str) -> bool:
        """Whether ``key`` is claimed by this delivery and not yet settled."""
        return key in self._held

    def claim(self, key: str) -> Generator[Step, Any, Claim]:
        """Claim ``key``; a NEW claim is held, with its token, from now on."""
        try:
            answer = yield (Kind.STORE, self.store.claim, (key, self.lease))
        except Exception as exc:
            raise StoreUnavailable(
                f"the de-duplication store failed ({type(exc).__name__}); retry later"
            ) from exc
        state, token = self._checked(answer)
        if token is not None:  # NEW: the claim is this attempt's
            self._held[key] = token
        return state

    def complete(self, key: str) -> Steps:
        """Mark a held key done, trying again for about a second if the store fails.

        The routes have run by now: a store that still fails is logged, not raised,
        since answering an error would make the sender retry work that is done.  The
        key then stays in progress until its lease ends, and a copy of the delivery
        that arrives after that runs again.
        """
        token = self._held.pop(key)
        mine = yield from self._complete(key, token)
        if mine is False:
            logger.warning(
                "hookshield: %r was claimed by another attempt while this one ran (its "
                "lease of %g s ran out first); it is marked done, so that the other "
                "attempt cannot release it. Raise dedupe_lease above the slowest route.",
                key,
                self.lease,
            )

    def _complete(self, key: str, token: str) -> Steps:
        """The store's answer to completing ``key``, or ``None`` if it never took it."""
        started = time.monotonic()
        delays = iter(() if self._unreachable else COMPLETE_RETRY_DELAYS)
        tries = 0
        while True:
            tries += 1
            try:
                return (yield (Kind.STORE, self.store.complete, (key, token, self.ttl)))
            except Exception as exc:
                delay = next(delays, None)
                late = delay is None or time.monotonic() - started + delay > COMPLETE_RETRY_WITHIN
                if late:
                    self._unreachable = True
                    logger.error(
                        "hookshield: could not mark %r done in %r (tries: %d); its routes "
                        "ran, so the delivery is acknowledged, but a copy of it that "
                        "arrives after its lease of %g s runs them again",
                        key,
                        self.store,
                        tries,
                        self.lease,
                        exc_info=exc,
                    )
                    return None
            yield (Kind.WAIT, time.sleep, (delay,))

    def complete_all(self) -> Steps:
        """Mark every held key done."""
        observe.settled(self._held, completed=True)
        for key in list(self._held):
            yield from self.complete(key)

    def release_all(self) -> Steps:
        """Forget every held key, newest first, so that the sender's retry runs them.

        A store failure is logged and the other keys are still released; a key that
        could not be released is freed by its lease.  A key that another attempt has
        claimed or completed since is left to it (the store answers ``False``).
        """
        observe.settled(self._held, completed=False)
        held = list(self._held.items())
        self._held.clear()
        for key, token in reversed(held):
            try:
                released = yield (Kind.STORE, self.store.release, (key, token))
            except Exception:
                logger.exception("hookshield: could not release a claim in %r", self.store)
                continue
            if released is False:
                logger.warning(
                    "hookshield: %r was left as it is, not released: another attempt "
                    "claimed or completed it after this one's lease of %g s ran out. "
                    "Raise dedupe_lease above the slowest route.",
                    key,
                    self.lease,
                )

    def _checked(self, answer: object) -> tuple[Claim, str | None]:
        """A store's answer to a claim, if it is ``(Claim, token)``; else a ``TypeError``."""
        if isinstance(answer, tuple) and len(answer) == 2:
            state, token = answer
            if state is Claim.NEW and isinstance(token, str) and token:
                return state, token
            if isinstance(state, Claim) and state is not Claim.NEW:
                return state, None
        raise TypeError(
            f"{self.store!r}.claim() returned {answer!r}, not (hookshield.Claim, token): "
            "a token (a non-empty str) for NEW"
        )

    def __repr__(self) -> str:
        return f"<Claims held={len(self._held)} in {self.store!r}>"
