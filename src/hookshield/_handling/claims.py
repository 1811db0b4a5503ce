"""The de-duplication claims of one delivery: which keys it holds, and letting them go.

Theory of operation: a delivery claims its own key, and a batch each event's key too
(see ``_handling/dedupe.py`` for what a claim is).  Every key claimed is *held*, with the
owner token the store gave it, until it is either *completed* (its routes ran:
retries are duplicates from now on) or *released* (the attempt failed: the retry
must run); the store settles it only for that token, and a key another attempt took
over meanwhile (this one outlived its lease) is logged.  A delivery's attempt ends with
nothing held, whichever way it ends, a ``BaseException`` or a cancellation included.
Two ways out cannot release: a crash, and an attempt's coroutine closed mid-call
(one being closed cannot wait for a store); the lease frees those keys.

Store calls are not made here but through a runner (``_handling/runner.py``), so that one
piece of bookkeeping serves plain code (which calls the store) and async code (which
awaits an async store, or runs a blocking client in a thread).  A store that fails
to claim becomes :class:`~hookshield.StoreUnavailable` (503): without an answer from
it, a replay cannot be told from a new delivery, so nothing is dispatched.  A store
that fails to complete is tried again for about a second (a Redis restarting, an
SQLite file locked for a moment), since a key left in progress lets the copy that
comes after its lease run the routes again; if it still fails, the delivery is
acknowledged all the same (its routes ran) and the key is logged.
"""

from __future__ import annotations

import hashlib
import logging
import time
from typing import Final

from .._core.errors import StoreUnavailable
from . import observe
from .dedupe import AsyncDedupeStore, Claim, DedupeStore
from .runner import Interrupted, Runner

__all__ = ["Claims", "bounded"]

logger = logging.getLogger("hookshield")

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

    def __bool__(self) -> bool:
        """Whether any key is still held."""
        return bool(self._held)

    async def claim(self, runner: Runner, key: str) -> Claim:
        """Claim ``key``; a NEW claim is held, with its token, from now on."""
        try:
            answer = await runner.store(self.store.claim, key, self.lease)
        except Interrupted as stop:  # claimed for a caller now cancelled: held, to release
            self._take(key, stop.result)
            raise stop.cancelled from None
        except Exception as exc:
            raise StoreUnavailable(
                f"the de-duplication store failed ({type(exc).__name__}); retry later"
            ) from exc
        return self._take(key, answer)

    async def complete(self, runner: Runner, key: str) -> None:
        """Mark a held key done, trying again for about a second if the store fails.

        The routes have run by now: a store that still fails is logged, not raised,
        since answering an error would make the sender retry work that is done.  The
        key then stays in progress until its lease ends, and a copy of the delivery
        that arrives after that runs again.
        """
        token = self._held.pop(key)
        started = time.monotonic()
        try:
            mine = await runner.store(self.store.complete, key, token, self.ttl)
        except Interrupted as stop:
            raise stop.cancelled from None
        except Exception as exc:
            mine = await self._complete_again(runner, key, token, started, exc)
        if mine is False:
            logger.warning(
                "hookshield: %r was claimed by another attempt while this one ran (its "
                "lease of %g s ran out first); it is marked done, so that the other "
                "attempt cannot release it. Raise dedupe_lease above the slowest route.",
                key,
                self.lease,
            )

    async def _complete_again(
        self, runner: Runner, key: str, token: str, started: float, error: Exception
    ) -> object:
        """The store's answer to completing ``key``, first tried at ``started`` and failed
        with ``error``; ``None`` once it has failed for about a second (logged)."""
        delays = iter(() if self._unreachable else COMPLETE_RETRY_DELAYS)
        tries = 1
        while True:
            delay = next(delays, None)
            if delay is None or time.monotonic() - started + delay > COMPLETE_RETRY_WITHIN:
                self._unreachable = True
                logger.error(
                    "hookshield: could not mark %r done in %r (tries: %d); its routes "
                    "ran, so the delivery is acknowledged, but a copy of it that "
                    "arrives after its lease of %g s runs them again",
                    key,
                    self.store,
                    tries,
                    self.lease,
                    exc_info=error,
                )
                return None
            await runner.pause(delay)
            tries += 1
            try:
                return await runner.store(self.store.complete, key, token, self.ttl)
            except Interrupted as stop:
                raise stop.cancelled from None
            except Exception as exc:
                error = exc

    async def complete_all(self, runner: Runner) -> None:
        """Mark every held key done."""
        observe.settled(self._held, completed=True)
        for key in list(self._held):
            await self.complete(runner, key)

    async def release_all(self, runner: Runner) -> None:
        """Forget every held key, newest first, so that the sender's retry runs them.

        A store failure is logged and the other keys are still released; a key that
        could not be released is freed by its lease.  A key that another attempt has
        claimed or completed since is left to it (the store answers ``False``).  A
        cancellation while a key is released is raised once the others are.
        """
        observe.settled(self._held, completed=False)
        held = list(self._held.items())
        self._held.clear()
        cancelled: BaseException | None = None
        for key, token in reversed(held):
            try:
                released = await runner.store(self.store.release, key, token)
            except Interrupted as stop:
                released, cancelled = stop.result, stop.cancelled
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
        if cancelled is not None:
            raise cancelled

    def _take(self, key: str, answer: object) -> Claim:
        """Record a store's answer to a claim, if it is ``(Claim, token)``; else a ``TypeError``."""
        if isinstance(answer, tuple) and len(answer) == 2:
            state, token = answer
            if state is Claim.NEW and isinstance(token, str) and token:
                self._held[key] = token  # the claim is this attempt's
                return state
            if isinstance(state, Claim) and state is not Claim.NEW:
                return state
        raise TypeError(
            f"{self.store!r}.claim() returned {answer!r}, not (hookshield.Claim, token): "
            "a token (a non-empty str) for NEW"
        )

    def __repr__(self) -> str:
        return f"<Claims held={len(self._held)} in {self.store!r}>"
