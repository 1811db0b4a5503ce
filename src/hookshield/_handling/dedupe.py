"""De-duplication stores: where hookshield remembers the deliveries it has seen.

Theory of operation: before a delivery's routes run, its key is *claimed* in a store.
A key is in one of two states:

* **in progress**, for a short *lease* (a few minutes, longer than any sender waits
  for an answer): an attempt is running.  A retry that finds the key in progress is
  answered 409, so that the sender tries again later; if the process running the
  first attempt dies, the lease runs out and that later retry runs.
* **done**, for the sender's retry window (the *TTL*): the routes ran.  A retry that
  finds the key done is acknowledged 200 and not dispatched again.

An attempt that fails *releases* its key, so that the retry runs.  Each step is one
atomic call on the store, so that Redis (a script) or an SQL transaction implements
it without a race between processes.

A claim has an *owner*: a NEW claim comes with a random token, kept with the key
while it is in progress.  An attempt whose routes outlive its lease may find that a
retry has claimed the key since; the token keeps the two apart.  The stale attempt's
``release`` leaves the other's claim alone (else a third copy would run beside the
second), and its ``complete`` marks the key done anyway (the routes ran), after which
the other attempt's ``release`` cannot erase that (else the delivery would succeed a
second time).  Each step answers whether the key was still the token's, for the
handler to log.

This module owns the protocol and the in-process store.  The bookkeeping of one
delivery's claims (which keys, with which tokens, released from which event on)
lives in ``_handling/claims.py``; the shared stores live beside the libraries they need
(``hookshield.redis``, ``hookshield.django``) and in ``_stores/sqlite.py``.
"""

from __future__ import annotations

import enum
import inspect
import itertools
import logging
import secrets
import threading
import time
import warnings
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Protocol, runtime_checkable

from .._core.options import function, integer

__all__ = [
    "DEFAULT_LEASE",
    "DEFAULT_TTL",
    "AsyncDedupeStore",
    "Claim",
    "DedupeStore",
    "MemoryDedupeStore",
    "new_token",
]

logger = logging.getLogger("hookshield")

#: Two and a half hours: longer than MindPeeker's 1 h 42 min of retries, with margin.
#: Each sender has its own default (``Provider.retry_window``); this is the fallback.
DEFAULT_TTL = 2.5 * 3600.0

#: Five minutes: far longer than any sender waits for an answer (5 to 10 s), so an
#: attempt that is still running is never taken for a dead one.
DEFAULT_LEASE = 300.0


class Claim(enum.Enum):
    """What a store answered when a key was claimed."""

    #: The key was free (never seen, expired, released, or its lease ran out): run it.
    NEW = "new"
    #: Another attempt holds the key and its lease has not run out: retry later.
    IN_PROGRESS = "in progress"
    #: The key was completed within its TTL: a duplicate, acknowledge it.
    DONE = "done"


def new_token() -> str:
    """A new claim's owner token: random, so that no two processes ever make the same."""
    return secrets.token_hex(16)


@runtime_checkable
class DedupeStore(Protocol):
    """A store shared by every process that receives a sender's deliveries.

    Each method is one atomic step; ``lease`` and ``ttl`` are in seconds.  A key is
    *live* until its lease or TTL runs out, and *free* when it is not live (never
    seen, expired, or released).  A NEW claim's *token* (:func:`new_token`, or any
    text unique to that claim) is kept with the key while it is in progress: it names
    the attempt that owns the claim.
    """

    def claim(self, key: str, lease: float) -> tuple[Claim, str | None]:
        """Mark a free ``key`` in progress for ``lease`` seconds under a new token.

        Answers ``(Claim.NEW, token)`` for a key that was free, else
        ``(Claim.IN_PROGRESS, None)`` or ``(Claim.DONE, None)``.
        """
        ...

    def complete(self, key: str, token: str, ttl: float) -> bool:
        """Mark ``key`` done for ``ttl`` seconds, whatever its state: its routes ran.

        Answers ``False`` if the key was in progress under another token (this
        attempt's lease ran out and another claimed the key), else ``True``.
        """
        ...

    def release(self, key: str, token: str) -> bool:
        """Forget ``key``, so that the sender's retry runs, unless it is another's.

        A key that is live and done, or in progress under another token, is left as
        it is and the answer is ``False``; otherwise (the claim of ``token``, or a
        free key) it is forgotten and the answer is ``True``.
        """
        ...


@runtime_checkable
class AsyncDedupeStore(Protocol):
    """:class:`DedupeStore` for async clients (``redis.asyncio``): each step is awaited.

    A handler with an async store serves the async paths only (``handle_async``, the
    ASGI adapters); its sync ``handle`` raises ``TypeError``.
    """

    def claim(self, key: str, lease: float) -> Awaitable[tuple[Claim, str | None]]:
        """Mark a free ``key`` in progress under a new token; say what it was."""
        ...

    def complete(self, key: str, token: str, ttl: float) -> Awaitable[bool]:
        """Mark ``key`` done for ``ttl`` seconds; ``False`` if another token held it."""
        ...

    def release(self, key: str, token: str) -> Awaitable[bool]:
        """Forget ``key`` unless it is done or another token's; ``False`` if so."""
        ...


class MemoryDedupeStore:
    """A bounded, thread-safe store in this process's memory: the default.

    It keeps at most ``max_entries`` keys; past that it forgets the oldest first, and
    logs a warning the first time the key it forgets is still within its retry window
    (a replay of that delivery would then be dispatched again).  Each process has its
    own: behind several workers (gunicorn ``-w 4``) use a shared store, such as
    :class:`~hookshield.SQLiteDedupeStore` or ``hookshield.redis.RedisDedupeStore``.
    ``clock`` is a monotonic clock in seconds.
    """

    def __init__(
        self, max_entries: int = 1_000_000, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if integer("max_entries", max_entries, "a count of keys") < 1:
            raise ValueError("max_entries must be at least 1")
        self.max_entries = max_entries
        # key -> (done, expiry, owner token or None); kept in the order keys were last
        # written, which with one lease and one TTL is close to expiry order.
        self._entries: OrderedDict[str, tuple[bool, float, str | None]] = OrderedDict()
        self._lock = threading.Lock()
        # The owner tokens: this store is this process's alone, so a count tells its
        # claims apart (new_token's randomness is for stores that processes share).
        self._tokens = itertools.count(1)
        self._clock = function("clock", clock)
        self._warned = False

    def claim(self, key: str, lease: float) -> tuple[Claim, str | None]:
        """Mark a free ``key`` in progress for ``lease`` seconds under a new token."""
        now = self._clock()
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None and entry[1] > now:
                return (Claim.DONE if entry[0] else Claim.IN_PROGRESS), None
            token = f"memory-{next(self._tokens)}"
            self._write(key, (False, now + lease, token), now, known=entry is not None)
            return Claim.NEW, token

    def complete(self, key: str, token: str, ttl: float) -> bool:
        """Mark ``key`` done for ``ttl`` seconds; ``False`` if another token held it."""
        now = self._clock()
        with self._lock:
            entries = self._entries
            entry = entries.get(key)
            if entry is not None:  # the usual case, just claimed: the store does not grow
                entries[key] = (True, now + ttl, None)
                entries.move_to_end(key)
            else:
                self._write(key, (True, now + ttl, None), now, known=False)
            return not _held_by_another(entry, token, now)

    def release(self, key: str, token: str) -> bool:
        """Forget ``key`` unless it is done or another token's; ``False`` if so."""
        now = self._clock()
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None and entry[1] > now and (entry[0] or entry[2] != token):
                return False
            self._entries.pop(key, None)
            return True

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)

    def _write(
        self, key: str, entry: tuple[bool, float, str | None], now: float, *, known: bool
    ) -> None:
        entries = self._entries
        entries[key] = entry
        if known:  # a new key is at the end already
            entries.move_to_end(key)
        # Expired entries sit at the front (written longest ago); drop them, then as
        # many of the oldest live ones as the bound requires.
        while entries:
            oldest, (_, oldest_expiry, _) = next(iter(entries.items()))
            if oldest_expiry > now and len(entries) <= self.max_entries:
                break
            del entries[oldest]
            if oldest_expiry > now and not self._warned:
                self._warned = True
                logger.warning(
                    "hookshield: the in-memory de-duplication store is full "
                    "(max_entries=%d) and forgot a delivery still within its retry "
                    "window; a replay of it would be dispatched again. Raise "
                    "max_entries, or use SQLiteDedupeStore or RedisDedupeStore.",
                    self.max_entries,
                )

    def __repr__(self) -> str:
        return f"MemoryDedupeStore(max_entries={self.max_entries})"


def _held_by_another(entry: tuple[bool, float, str | None] | None, token: str, now: float) -> bool:
    """Whether ``entry`` is a live claim in progress under a token other than ``token``."""
    return entry is not None and entry[1] > now and not entry[0] and entry[2] != token


# -- the protocols of earlier releases -----------------------------------------------------

#: The token the wrappers below hand out: their stores keep none.
_UNOWNED = "unowned"


class _TwoStepStore(Protocol):
    """The protocol of hookshield 0.1: ``claim(key, ttl) -> bool`` and ``release(key)``."""

    def claim(self, key: str, ttl: float) -> bool: ...

    def release(self, key: str) -> None: ...


class _OwnerlessStore(Protocol):
    """The protocol before claims had owners: no token in or out."""

    def claim(self, key: str, lease: float) -> Claim: ...

    def complete(self, key: str, ttl: float) -> None: ...

    def release(self, key: str) -> None: ...


class _AsyncOwnerlessStore(Protocol):
    """:class:`_OwnerlessStore`, awaited."""

    def claim(self, key: str, lease: float) -> Awaitable[Claim]: ...

    def complete(self, key: str, ttl: float) -> Awaitable[None]: ...

    def release(self, key: str) -> Awaitable[None]: ...


_PROTOCOL = (
    "claim(key, lease) -> (Claim, token), complete(key, token, ttl) -> bool and "
    "release(key, token) -> bool (see hookshield.DedupeStore)"
)


def adapt_store(store: object, ttl: float) -> DedupeStore | AsyncDedupeStore:
    """``store`` as a :class:`DedupeStore`; a store of an earlier protocol is wrapped, with a warning.

    Each earlier protocol keeps working for one release:

    * ``claim(key, lease) -> Claim``, ``complete(key, ttl)`` and ``release(key)``, with
      no owner token: a stale attempt can still release or overwrite the claim of the
      attempt that took its key over, as before;
    * hookshield 0.1's ``claim(key, ttl) -> bool`` and ``release(key)``: its claim lasts
      the whole TTL (it cannot tell an attempt in progress from one done), and a retry
      during an attempt is taken for a duplicate, as in 0.1.

    Anything else is a ``TypeError``.
    """
    steps = [getattr(store, name, None) for name in ("claim", "complete", "release")]
    claim, complete, release = steps
    if all(callable(step) for step in steps):
        if _accepts(complete, "key", "token", 1.0) and _accepts(release, "key", "token"):
            return store  # type: ignore[return-value]
        warnings.warn(
            f"{type(store).__name__} has claim(key, lease) -> Claim, complete(key, ttl) "
            "and release(key), a de-duplication protocol without owner tokens: an "
            "attempt that outlives its lease can release or overwrite the claim of the "
            f"attempt that took its key over. Implement {_PROTOCOL}. This support will "
            "be removed in the next release.",
            DeprecationWarning,
            stacklevel=3,
        )
        if inspect.iscoroutinefunction(claim):
            return _AsyncOwnerlessWrapper(store)  # type: ignore[arg-type]
        return _OwnerlessWrapper(store)  # type: ignore[arg-type]
    if callable(claim) and callable(release):
        warnings.warn(
            f"{type(store).__name__} has claim(key, ttl) -> bool and release(key), the "
            f"de-duplication protocol of hookshield 0.1; implement {_PROTOCOL}. This "
            "support will be removed in the next release.",
            DeprecationWarning,
            stacklevel=3,
        )
        return _LegacyStore(store, ttl)  # type: ignore[arg-type]
    raise TypeError(
        "dedupe must have claim(key, lease), complete(key, token, ttl) and "
        "release(key, token) methods (see hookshield.DedupeStore), or be None"
    )


def _accepts(method: object, *args: object) -> bool:
    """Whether ``method`` can be called with ``args`` (a method with no signature: yes)."""
    try:
        inspect.signature(method).bind(*args)  # type: ignore[arg-type]
    except TypeError:
        return False
    except ValueError:  # a built-in without a signature: trusted to be current
        return True
    return True


class _OwnerlessWrapper:
    """A store without owner tokens behind the current protocol: it cannot tell owners apart."""

    def __init__(self, store: _OwnerlessStore) -> None:
        self.store = store

    def claim(self, key: str, lease: float) -> tuple[Claim, str | None]:
        state = self.store.claim(key, lease)
        return state, (_UNOWNED if state is Claim.NEW else None)

    def complete(self, key: str, token: str, ttl: float) -> bool:
        self.store.complete(key, ttl)
        return True

    def release(self, key: str, token: str) -> bool:
        self.store.release(key)
        return True

    def __repr__(self) -> str:
        return repr(self.store)


class _AsyncOwnerlessWrapper:
    """:class:`_OwnerlessWrapper` for an async store."""

    def __init__(self, store: _AsyncOwnerlessStore) -> None:
        self.store = store

    async def claim(self, key: str, lease: float) -> tuple[Claim, str | None]:
        state = await self.store.claim(key, lease)
        return state, (_UNOWNED if state is Claim.NEW else None)

    async def complete(self, key: str, token: str, ttl: float) -> bool:
        await self.store.complete(key, ttl)
        return True

    async def release(self, key: str, token: str) -> bool:
        await self.store.release(key)
        return True

    def __repr__(self) -> str:
        return repr(self.store)


class _LegacyStore:
    """A 0.1 store behind the current protocol: claims are kept for the TTL."""

    def __init__(self, store: _TwoStepStore, ttl: float) -> None:
        self.store = store
        self.ttl = ttl

    def claim(self, key: str, lease: float) -> tuple[Claim, str | None]:
        if self.store.claim(key, self.ttl):
            return Claim.NEW, _UNOWNED
        return Claim.DONE, None

    def complete(self, key: str, token: str, ttl: float) -> bool:
        """Nothing to do: the claim was recorded for the TTL."""
        return True

    def release(self, key: str, token: str) -> bool:
        self.store.release(key)
        return True

    def __repr__(self) -> str:
        return repr(self.store)
