"""A de-duplication store in Django's cache framework (``hookshield.django``).

Theory of operation: a key is one cache entry whose value is its state
(``in progress:<token>``, the claim's owner, or ``done``) and whose timeout is its
lease or TTL.

* ``claim`` is ``cache.add`` (which writes only a missing key, atomically on the Redis
  and Memcached backends); when the key was there, ``get`` tells in progress from
  done.  Should the key vanish between the two (it expired, or was released), the
  add is tried once more; a key that still gives no answer is taken as in progress,
  so that the sender retries later rather than the routes running twice.
* ``complete`` is ``get`` (was it another token's?), then ``set`` done.
* ``release`` is ``get``, then ``delete`` if the entry is this claim's.

The limit: Django's cache API has no compare-and-delete, so ``release`` reads, then
deletes: another attempt that claims the key in the instant between the two (the
lease ran out just then) loses its claim.  The Redis store's steps have no such
window.

Django's timeouts are whole seconds: leases and TTLs are rounded up.  Keys are
hashed (SHA-256), so that any sender's id makes a key every backend accepts
(Memcached refuses spaces, control characters and keys over 250 bytes).

Only the cache's atomic ``add`` makes this safe across processes: the local-memory
cache is per process, the database cache's ``add`` can race between processes, and
the file cache's too.  Use the Redis or Memcached backends behind several workers.
"""

from __future__ import annotations

import hashlib
from typing import Final

from django.core.cache import BaseCache, caches

from .._core.options import text
from .._handling.dedupe import Claim, new_token
from .common import key_bytes, seconds, whole_seconds

__all__ = ["CacheDedupeStore"]

_IN_PROGRESS: Final = "in progress:"
_DONE: Final = "done"


class CacheDedupeStore:
    """A store in the Django cache named ``alias`` (a key of ``settings.CACHES``).

    Behind several workers, the cache must be shared and its ``add`` atomic: Django's
    ``RedisCache`` or a Memcached backend.  The cache is looked up at each step, so
    the store can be made before Django's settings are ready.
    """

    def __init__(self, alias: str = "default", *, prefix: str = "hookshield:") -> None:
        if not text("alias", alias, "the name of a cache in settings.CACHES (a str)"):
            raise ValueError("alias must name a cache in settings.CACHES, not ''")
        self.alias = alias
        self.prefix = text("prefix", prefix)

    @property
    def cache(self) -> BaseCache:
        """The cache this store writes to (this thread's connection to it)."""
        return caches[self.alias]

    def claim(self, key: str, lease: float) -> tuple[Claim, str | None]:
        """Mark a free ``key`` in progress for ``lease`` seconds under a new token."""
        name, timeout = self._name(key), whole_seconds(seconds("lease", lease))
        cache = self.cache
        token = new_token()
        for _ in range(2):
            if cache.add(name, _IN_PROGRESS + token, timeout):
                return Claim.NEW, token
            state = cache.get(name)
            if state is not None:
                return (Claim.DONE if state == _DONE else Claim.IN_PROGRESS), None
        # The key came and went twice between add and get: another attempt is busy
        # with it; the sender is asked to retry rather than the routes run twice.
        return Claim.IN_PROGRESS, None

    def complete(self, key: str, token: str, ttl: float) -> bool:
        """Mark ``key`` done for ``ttl`` seconds; ``False`` if another token held it."""
        name, timeout = self._name(key), whole_seconds(seconds("ttl", ttl))
        cache = self.cache
        state = cache.get(name)
        cache.set(name, _DONE, timeout)
        return state is None or state in (_DONE, _IN_PROGRESS + token)

    def release(self, key: str, token: str) -> bool:
        """Forget ``key`` unless it is done or another token's; ``False`` if so.

        Not atomic: see the module's notes.
        """
        name = self._name(key)
        cache = self.cache
        state = cache.get(name)
        if state is None:
            return True
        if state != _IN_PROGRESS + token:
            return False
        cache.delete(name)
        return True

    def _name(self, key: str) -> str:
        return self.prefix + hashlib.sha256(key_bytes(key)).hexdigest()

    def __repr__(self) -> str:
        return f"CacheDedupeStore({self.alias!r})"
