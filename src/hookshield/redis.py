"""De-duplication stores in Redis, shared by every worker on every host.

    import redis
    from hookshield.redis import RedisDedupeStore

    store = RedisDedupeStore(redis.Redis.from_url("redis://localhost:6379/0"))
    moco = WebhookHandler("moco", secret=..., dedupe=store)

:class:`RedisDedupeStore` takes a ``redis.Redis`` or a ``redis.cluster.RedisCluster``;
:class:`AsyncRedisDedupeStore` takes their ``redis.asyncio`` counterparts, and its
steps are awaited (serve it from the async paths: ``handle_async``, the ASGI
adapters).  Install with ``pip install 'hookshield[redis]'``.

Theory of operation: a key is one Redis string, ``<prefix><key>``, whose value is
its state (``in progress:<token>``, the claim's owner, or ``done``) and whose expiry
(``PX``) is its lease or TTL; Redis forgets it when that runs out.  Each step is one
small script, one round trip on one key, so it is atomic and works on Redis Cluster
(the key alone picks the node):

* ``claim``: ``SET key "in progress:<token>" NX PX lease``, and if the key was
  there, ``GET`` it to tell in progress from done;
* ``complete``: ``GET`` the value (was it another token's?), then ``SET key done PX
  ttl``;
* ``release``: ``DEL key`` only if its value is this claim's (or it is gone).

Times are whole milliseconds, rounded up, so that a key never lapses early.  This
module owns the Redis commands; it never opens a connection of its own (the client
you pass owns its pool, its timeouts and its retries).
"""

from __future__ import annotations

from typing import Final

from ._core.options import text, type_name
from ._handling.dedupe import Claim, new_token
from ._stores.common import key_bytes, milliseconds, seconds
from ._web.adapt import missing

try:
    import redis
    import redis.asyncio
    import redis.cluster
except ImportError as exc:  # pragma: no cover - exercised without the extra installed
    raise missing("redis", extra="redis", adapter="hookshield.redis") from exc

__all__ = ["AsyncRedisDedupeStore", "RedisDedupeStore"]

_IN_PROGRESS: Final = b"in progress:"

# KEYS[1]: the key; ARGV[1]: the lease in ms; ARGV[2]: the value of the claim in
# progress.  Answers 0 (new), 1 (in progress) or 2 (done).  Inside a script the
# server's clock stands still, so a key that SET NX found cannot expire before the GET.
_CLAIM_SCRIPT: Final = """
if redis.call('SET', KEYS[1], ARGV[2], 'NX', 'PX', ARGV[1]) then
  return 0
end
if redis.call('GET', KEYS[1]) == 'done' then
  return 2
end
return 1
"""
# KEYS[1]: the key; ARGV[1]: the value of this claim; ARGV[2]: the TTL in ms.  Marks
# the key done whatever it held; answers 0 if that was another claim in progress.
_COMPLETE_SCRIPT: Final = """
local value = redis.call('GET', KEYS[1])
redis.call('SET', KEYS[1], 'done', 'PX', ARGV[2])
if value and value ~= 'done' and value ~= ARGV[1] then
  return 0
end
return 1
"""
# KEYS[1]: the key; ARGV[1]: the value of this claim.  Deletes the key if it is this
# claim's; answers 0, deleting nothing, if it is done or another claim's.
_RELEASE_SCRIPT: Final = """
local value = redis.call('GET', KEYS[1])
if value == ARGV[1] then
  redis.call('DEL', KEYS[1])
  return 1
end
if value then
  return 0
end
return 1
"""
_ANSWERS: Final = (Claim.NEW, Claim.IN_PROGRESS, Claim.DONE)


def _claim_value(token: str) -> bytes:
    """What an in-progress key holds: its owner's token, after a word for a human reader."""
    return _IN_PROGRESS + token.encode("utf-8", "surrogatepass")


def _answer(code: int, token: str) -> tuple[Claim, str | None]:
    """The claim script's answer as ``(state, token)``: the token only for NEW."""
    state = _ANSWERS[int(code)]
    return state, (token if state is Claim.NEW else None)


SyncClient = redis.Redis | redis.cluster.RedisCluster
AsyncClient = redis.asyncio.Redis | redis.asyncio.RedisCluster


def _prefix(prefix: str) -> bytes:
    return text("prefix", prefix).encode("utf-8")


class RedisDedupeStore:
    """A store in Redis, through a synchronous ``redis.Redis`` or ``RedisCluster``.

    Each step is one round trip.  ``prefix`` starts every key it writes, to keep them
    apart from the rest of the database.  For a ``redis.asyncio`` client, use
    :class:`AsyncRedisDedupeStore`.
    """

    def __init__(self, client: SyncClient, *, prefix: str = "hookshield:") -> None:
        if isinstance(client, AsyncClient):
            raise TypeError(
                "client must be a synchronous redis.Redis or RedisCluster for "
                "RedisDedupeStore; for a redis.asyncio client, use AsyncRedisDedupeStore"
            )
        if not isinstance(client, SyncClient):
            raise TypeError(
                f"client must be a redis.Redis or RedisCluster, not {type_name(client)}"
            )
        self.client = client
        self.prefix = prefix
        self._prefix = _prefix(prefix)
        self._claim = client.register_script(_CLAIM_SCRIPT)
        self._complete = client.register_script(_COMPLETE_SCRIPT)
        self._release = client.register_script(_RELEASE_SCRIPT)

    def claim(self, key: str, lease: float) -> tuple[Claim, str | None]:
        """Mark a free ``key`` in progress for ``lease`` seconds under a new token."""
        name, ms = self._prefix + key_bytes(key), milliseconds(seconds("lease", lease))
        token = new_token()
        return _answer(self._claim(keys=[name], args=[ms, _claim_value(token)]), token)

    def complete(self, key: str, token: str, ttl: float) -> bool:
        """Mark ``key`` done for ``ttl`` seconds; ``False`` if another token held it."""
        name, ms = self._prefix + key_bytes(key), milliseconds(seconds("ttl", ttl))
        return bool(self._complete(keys=[name], args=[_claim_value(token), ms]))

    def release(self, key: str, token: str) -> bool:
        """Forget ``key`` unless it is done or another token's; ``False`` if so."""
        name = self._prefix + key_bytes(key)
        return bool(self._release(keys=[name], args=[_claim_value(token)]))

    def __repr__(self) -> str:
        return f"RedisDedupeStore({self.client!r}, prefix={self.prefix!r})"


class AsyncRedisDedupeStore:
    """:class:`RedisDedupeStore` through a ``redis.asyncio`` client: each step is awaited."""

    def __init__(self, client: AsyncClient, *, prefix: str = "hookshield:") -> None:
        if not isinstance(client, AsyncClient):
            raise TypeError(
                "client must be a redis.asyncio.Redis or RedisCluster for "
                f"AsyncRedisDedupeStore, not {type_name(client)}; for a synchronous client, "
                "use RedisDedupeStore"
            )
        self.client = client
        self.prefix = prefix
        self._prefix = _prefix(prefix)
        self._claim = client.register_script(_CLAIM_SCRIPT)
        self._complete = client.register_script(_COMPLETE_SCRIPT)
        self._release = client.register_script(_RELEASE_SCRIPT)

    async def claim(self, key: str, lease: float) -> tuple[Claim, str | None]:
        """Mark a free ``key`` in progress for ``lease`` seconds under a new token."""
        name, ms = self._prefix + key_bytes(key), milliseconds(seconds("lease", lease))
        token = new_token()
        return _answer(await self._claim(keys=[name], args=[ms, _claim_value(token)]), token)

    async def complete(self, key: str, token: str, ttl: float) -> bool:
        """Mark ``key`` done for ``ttl`` seconds; ``False`` if another token held it."""
        name, ms = self._prefix + key_bytes(key), milliseconds(seconds("ttl", ttl))
        return bool(await self._complete(keys=[name], args=[_claim_value(token), ms]))

    async def release(self, key: str, token: str) -> bool:
        """Forget ``key`` unless it is done or another token's; ``False`` if so."""
        name = self._prefix + key_bytes(key)
        return bool(await self._release(keys=[name], args=[_claim_value(token)]))

    def __repr__(self) -> str:
        return f"AsyncRedisDedupeStore({self.client!r}, prefix={self.prefix!r})"
