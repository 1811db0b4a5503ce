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
atomic call on the store, so that Redis (``SET NX PX``, a script) or an SQL unique
insert implements it without a race between processes.

This module owns the protocol and the in-process store.  The bookkeeping of one
delivery's claims (which keys, released from which event on) lives in
``_claims.py``; the shared stores live beside the libraries they need
(``hookshield.redis``, ``hookshield.django``) and in ``_sqlite.py``.
"""

from __future__ import annotations

import enum
import logging
import threading
import time
import warnings
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Protocol, runtime_checkable

from ._options import function, integer

__all__ = [
    "DEFAULT_LEASE",
    "DEFAULT_TTL",
    "AsyncDedupeStore",
    "Claim",
    "DedupeStore",
    "MemoryDedupeStore",
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


@runtime_checkable
class DedupeStore(Protocol):
    """A store shared by every process that receives a sender's deliveries.

    Each method is one atomic step.  ``lease`` and ``ttl`` are in seconds.
    """

    def claim(self, key: str, lease: float) -> Claim:
        """Mark ``key`` in progress for ``lease`` seconds if it is free; say what it was."""
        ...

    def complete(self, key: str, ttl: float) -> None:
        """Mark ``key`` done for ``ttl`` seconds: its routes ran."""
        ...

    def release(self, key: str) -> None:
        """Forget ``key``, so that the sender's retry runs."""
        ...


@runtime_checkable
class AsyncDedupeStore(Protocol):
    """:class:`DedupeStore` for async clients (``redis.asyncio``): each step is awaited.

    A handler with an async store serves the async paths only (``handle_async``, the
    ASGI adapters); its sync ``handle`` raises ``TypeError``.
    """

    def claim(self, key: str, lease: float) -> Awaitable[Claim]:
        """Mark ``key`` in progress for ``lease`` seconds if it is free; say what it was."""
        ...

    def complete(self, key: str, ttl: float) -> Awaitable[None]:
        """Mark ``key`` done for ``ttl`` seconds."""
        ...

    def release(self, key: str) -> Awaitable[None]:
        """Forget ``key``."""
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
        # key -> (done, expiry); kept in the order keys were last written, which with
        # one lease and one TTL is close to expiry order.
        self._entries: OrderedDict[str, tuple[bool, float]] = OrderedDict()
        self._lock = threading.Lock()
        self._clock = function("clock", clock)
        self._warned = False

    def claim(self, key: str, lease: float) -> Claim:
        """Mark ``key`` in progress for ``lease`` seconds if it is free; say what it was."""
        now = self._clock()
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None and entry[1] > now:
                return Claim.DONE if entry[0] else Claim.IN_PROGRESS
            self._write(key, False, now + lease, now)
            return Claim.NEW

    def complete(self, key: str, ttl: float) -> None:
        """Mark ``key`` done for ``ttl`` seconds."""
        now = self._clock()
        with self._lock:
            entries = self._entries
            if key in entries:  # the usual case, just claimed: the store does not grow
                entries[key] = (True, now + ttl)
                entries.move_to_end(key)
            else:
                self._write(key, True, now + ttl, now)

    def release(self, key: str) -> None:
        """Forget ``key``."""
        with self._lock:
            self._entries.pop(key, None)

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)

    def _write(self, key: str, done: bool, expiry: float, now: float) -> None:
        entries = self._entries
        entries[key] = (done, expiry)
        entries.move_to_end(key)
        # Expired entries sit at the front (written longest ago); drop them, then as
        # many of the oldest live ones as the bound requires.
        while entries:
            oldest, (_, oldest_expiry) = next(iter(entries.items()))
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


class _TwoStepStore(Protocol):
    """The protocol of hookshield 0.1: ``claim(key, ttl) -> bool`` and ``release(key)``."""

    def claim(self, key: str, ttl: float) -> bool: ...

    def release(self, key: str) -> None: ...


def adapt_store(store: object, ttl: float) -> DedupeStore | AsyncDedupeStore:
    """``store`` as a :class:`DedupeStore`; a store of the 0.1 protocol is wrapped, with a warning.

    A store with only ``claim(key, ttl) -> bool`` and ``release(key)`` keeps working
    for this release: its claim lasts the whole TTL (it cannot tell an attempt in
    progress from one done), and a retry during an attempt is taken for a duplicate,
    as in 0.1.  Anything else is a ``TypeError``.
    """
    if isinstance(store, (DedupeStore, AsyncDedupeStore)):
        return store
    if callable(getattr(store, "claim", None)) and callable(getattr(store, "release", None)):
        warnings.warn(
            f"{type(store).__name__} has claim(key, ttl) -> bool and release(key), the "
            "de-duplication protocol of hookshield 0.1; add complete(key, ttl) and make "
            "claim return a hookshield.Claim (see hookshield.DedupeStore). This support "
            "will be removed in the next release.",
            DeprecationWarning,
            stacklevel=3,
        )
        return _LegacyStore(store, ttl)  # type: ignore[arg-type]
    raise TypeError(
        "dedupe must have claim(key, lease), complete(key, ttl) and release(key) "
        "methods (see hookshield.DedupeStore), or be None"
    )


class _LegacyStore:
    """A 0.1 store behind the current protocol: claims are kept for the TTL."""

    def __init__(self, store: _TwoStepStore, ttl: float) -> None:
        self.store = store
        self.ttl = ttl

    def claim(self, key: str, lease: float) -> Claim:
        return Claim.NEW if self.store.claim(key, self.ttl) else Claim.DONE

    def complete(self, key: str, ttl: float) -> None:
        """Nothing to do: the claim was recorded for the TTL."""

    def release(self, key: str) -> None:
        self.store.release(key)

    def __repr__(self) -> str:
        return repr(self.store)
