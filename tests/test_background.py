"""Background work: handing an accepted delivery to an inbox (the pool has its adapter tests)."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from hookshield import Outcome, StoredDelivery
from hookshield._durable.background import store_async
from hookshield.testing import sample_delivery

from .conftest import CREDENTIALS, make_handler


class SlowInbox:
    """An inbox whose ``put`` takes a while and then succeeds, recording each delivery."""

    def __init__(self, delay: float) -> None:
        self.delay = delay
        self.stored: list[StoredDelivery] = []
        self.lock = threading.Lock()

    def put(self, delivery: StoredDelivery) -> None:
        time.sleep(self.delay)
        with self.lock:
            self.stored.append(delivery)


def test_a_request_cancelled_while_its_delivery_is_stored_does_not_store_it_twice() -> None:
    # The put goes on in its thread and succeeds: the delivery is the inbox's, so its
    # claim is completed, and the sender's retry is a duplicate, not a second row.
    handler = make_handler("mindpeeker")
    inbox = SlowInbox(0.3)
    body, headers = sample_delivery("mindpeeker", "session.completed", **CREDENTIALS["mindpeeker"])

    async def main() -> Outcome:
        task = asyncio.ensure_future(store_async(handler, inbox, body, headers))
        await asyncio.sleep(0.1)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        return await store_async(handler, inbox, body, headers)

    retry = asyncio.run(main())
    assert (retry.status, retry.duplicate) == (200, True)
    assert len(inbox.stored) == 1
