"""Store test doubles that several test modules share: stores that are not the in-memory one."""

from __future__ import annotations

import threading
import time

from hookshield import Claim, MemoryDedupeStore


class NetworkStore:
    """A store like a Redis or SQL client: blocking, and not the in-memory one.

    It records the thread of each claim, to show where the handler calls it from.
    """

    def __init__(self) -> None:
        self.inner = MemoryDedupeStore()
        self.threads: list[int] = []

    def claim(self, key: str, lease: float) -> tuple[Claim, str | None]:
        self.threads.append(threading.get_ident())
        return self.inner.claim(key, lease)

    def complete(self, key: str, token: str, ttl: float) -> bool:
        return self.inner.complete(key, token, ttl)

    def release(self, key: str, token: str) -> bool:
        return self.inner.release(key, token)


class AsyncStore:
    """A store of the async kind (as ``redis.asyncio`` gives), recording the threads it ran on."""

    def __init__(self) -> None:
        self.inner = MemoryDedupeStore()
        self.threads: set[int] = set()

    async def claim(self, key: str, lease: float) -> tuple[Claim, str | None]:
        self.threads.add(threading.get_ident())
        return self.inner.claim(key, lease)

    async def complete(self, key: str, token: str, ttl: float) -> bool:
        self.threads.add(threading.get_ident())
        return self.inner.complete(key, token, ttl)

    async def release(self, key: str, token: str) -> bool:
        self.threads.add(threading.get_ident())
        return self.inner.release(key, token)


class BrokenStore:
    """A de-duplication store whose backend is down."""

    def claim(self, key: str, lease: float) -> tuple[Claim, str | None]:
        raise ConnectionError("store unreachable")

    def complete(self, key: str, token: str, ttl: float) -> bool:
        raise ConnectionError("store unreachable")

    def release(self, key: str, token: str) -> bool:
        raise ConnectionError("store unreachable")


class SlowStore(NetworkStore):
    """A blocking store whose claims take ``delay`` seconds, to cancel a caller mid-claim."""

    def __init__(self, delay: float) -> None:
        super().__init__()
        self.delay = delay

    def claim(self, key: str, lease: float) -> tuple[Claim, str | None]:
        time.sleep(self.delay)
        return super().claim(key, lease)
