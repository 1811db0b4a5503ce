"""De-duplication: the replay defence for senders whose signature covers no timestamp.

Theory of operation: a delivery is *claimed* under its key before its handlers run.
A claim that succeeds means "new"; one that fails means "seen within the TTL", and the
delivery is acknowledged without being dispatched again.  If a handler raises, the
claim is *released*, so that the sender's retry is processed rather than taken for a
duplicate.  Claiming is one atomic call so that a shared store (Redis ``SET NX EX``,
an SQL unique insert) can implement it without a race.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Protocol, runtime_checkable

__all__ = ["DEFAULT_TTL", "DedupeStore", "MemoryDedupeStore"]

#: Two and a half hours: longer than MindPeeker's 1 h 42 min of retries, with margin.
DEFAULT_TTL = 2.5 * 3600.0


@runtime_checkable
class DedupeStore(Protocol):
    """Where hookshield remembers the deliveries it has seen.

    Implement these two methods over a shared store to de-duplicate across processes.
    """

    def claim(self, key: str, ttl: float) -> bool:
        """Record ``key`` for ``ttl`` seconds; ``True`` if it was not already recorded."""
        ...

    def release(self, key: str) -> None:
        """Forget ``key``, so that a retry of a failed delivery is processed again."""
        ...


class MemoryDedupeStore:
    """A bounded, thread-safe, in-process store.

    It remembers at most ``max_entries`` keys; past that the oldest is forgotten first,
    so memory stays bounded under a flood.  Each process has its own: behind several
    workers, use a shared store.  ``clock`` is a monotonic clock in seconds.
    """

    def __init__(
        self, max_entries: int = 100_000, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if max_entries < 1:
            raise ValueError("max_entries must be at least 1")
        self.max_entries = max_entries
        self._expiry: OrderedDict[str, float] = OrderedDict()
        self._lock = threading.Lock()
        self._clock = clock

    def claim(self, key: str, ttl: float) -> bool:
        """Record ``key`` for ``ttl`` seconds; ``True`` if it was new (or had expired)."""
        now = self._clock()
        with self._lock:
            entries = self._expiry
            expiry = entries.get(key)
            if expiry is not None:
                if expiry > now:
                    return False
                entries.move_to_end(key)  # an expired key claimed again joins the back
            entries[key] = now + ttl
            # Most claims find the oldest entry live and the store not full: one look
            # at the front, without the eviction loop.
            if len(entries) > self.max_entries or next(iter(entries.values())) <= now:
                self._evict(now)
            return True

    def release(self, key: str) -> None:
        """Forget ``key``."""
        with self._lock:
            self._expiry.pop(key, None)

    def __len__(self) -> int:
        with self._lock:
            return len(self._expiry)

    def _evict(self, now: float) -> None:
        # Entries are kept in claim order; with one TTL that is also expiry order,
        # so expired ones sit at the front.  With mixed TTLs an expired entry may wait
        # behind a live one: claim() still judges it by its own expiry, and
        # max_entries still bounds the memory.
        expiry = self._expiry
        while expiry:
            oldest_key, oldest_expiry = next(iter(expiry.items()))
            if oldest_expiry > now and len(expiry) <= self.max_entries:
                break
            del expiry[oldest_key]

    def __repr__(self) -> str:
        return f"MemoryDedupeStore(max_entries={self.max_entries})"
