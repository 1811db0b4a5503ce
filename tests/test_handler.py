"""WebhookHandler, the facade: what each entry point does, end to end.

The pieces have their own specifications (``test_credentials``, ``test_verify``,
``test_routing``, ``test_dispatch``, ``test_claims``, ``test_outcome``,
``test_async``); these tests say what a user sees of them through the handler.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import pytest

from hookshield import Event, MemoryDedupeStore, WebhookHandler
from hookshield.providers import get_provider
from hookshield.testing import sample_batch, sample_delivery, sign

from .conftest import CREDENTIALS, make_handler
from .doubles import AsyncStore


def mindpeeker_delivery(kind: str = "session.created") -> tuple[bytes, dict[str, str]]:
    return sample_delivery("mindpeeker", kind, **CREDENTIALS["mindpeeker"])


def test_the_handler_describes_its_sender(provider: str) -> None:
    handler = make_handler(provider)
    assert handler.provider == provider
    # Standard Webhooks documents the envelope, not a list of types.
    assert handler.event_types == get_provider(provider).event_types
    assert all(isinstance(t, str) for t in handler.event_types)
    assert repr(handler).startswith(f"WebhookHandler('{provider}'")
    assert "MemoryDedupeStore" in repr(handler)


def test_the_default_store_is_one_in_memory_per_handler() -> None:
    first, second = make_handler("moco"), make_handler("moco")
    assert isinstance(first.dedupe, MemoryDedupeStore)
    assert first.dedupe is not second.dedupe
    assert make_handler("moco", dedupe=None).dedupe is None


def test_only_a_batch_sender_streams_and_only_when_asked() -> None:
    assert make_handler("momentum").streams
    assert not make_handler("momentum", stream_batches=False).streams
    assert not make_handler("mindpeeker").streams


def test_handle_verifies_dedupes_and_dispatches() -> None:
    handler = make_handler("mindpeeker")
    seen: list[str] = []
    handler.on("session.created")(lambda event: seen.append(event.type))
    body, headers = mindpeeker_delivery()
    outcome = handler.handle(body, headers)
    assert (outcome.status, outcome.dispatched, outcome.reason) == (
        200,
        1,
        "dispatched to 1 handler call",
    )
    assert outcome.delivery is not None and outcome.delivery.body == body
    assert handler.handle(body, headers).duplicate
    assert seen == ["session.created"]


def test_an_unrouted_event_is_acknowledged_and_named() -> None:
    handler = make_handler("mindpeeker")
    outcome = handler.handle(*mindpeeker_delivery("brand.new_event"))
    assert (outcome.status, outcome.dispatched) == (200, 0)
    assert outcome.reason == "no handler for 'brand.new_event'"
    assert outcome.response_body() == b'{"ok":true}'


def test_a_batch_of_no_events_is_acknowledged() -> None:
    # Momentum's "test" post when a webhook is set up carries no event.
    for streaming in (True, False):
        handler = make_handler("momentum", stream_batches=streaming)
        body = b'[{"msys": {}}]'
        outcome = handler.handle(body, sign("momentum", body, **CREDENTIALS["momentum"]))
        assert (outcome.status, outcome.reason) == (200, "accepted")
        assert outcome.delivery is not None and outcome.delivery.events == ()


def test_a_whole_batch_is_decoded_before_dispatch_when_streaming_is_off() -> None:
    handler = make_handler("momentum", stream_batches=False)
    seen: list[str] = []
    handler.on("*")(lambda event: seen.append(event.type))
    records = json.loads(sample_batch(["delivery", "open"]))
    body = json.dumps([*records, "not a record"]).encode()
    outcome = handler.handle(body, sign("momentum", body, **CREDENTIALS["momentum"]))
    assert outcome.status == 400 and seen == []  # nothing ran before the bad record was found
    streamed = make_handler("momentum")
    streamed.on("*")(lambda event: seen.append(event.type))
    assert streamed.handle(body, sign("momentum", body, **CREDENTIALS["momentum"])).status == 400
    assert seen == ["delivery", "open"]


def test_process_dedupes_a_delivery_verified_elsewhere() -> None:
    handler = make_handler("mindpeeker")
    seen: list[str] = []
    handler.on("*")(lambda event: seen.append(event.type))
    verified = handler.verify(*mindpeeker_delivery())
    assert handler.process(verified).dispatched == 1
    assert handler.process(verified).duplicate
    assert asyncio.run(handler.process_async(verified)).duplicate
    assert seen == ["session.created"]


def test_accept_then_finish_acknowledges_before_dispatch() -> None:
    handler = make_handler("mindpeeker")
    seen: list[str] = []
    handler.on("*")(lambda event: seen.append(event.type))
    body, headers = mindpeeker_delivery()
    accepted = handler.accept(body, headers)
    assert accepted.status == 200 and seen == []
    assert [event.type for event in accepted.pending] == ["session.created"]
    assert handler.finish(accepted).dispatched == 1
    assert seen == ["session.created"]
    duplicate = handler.accept(body, headers)
    assert duplicate.duplicate and duplicate.pending == ()
    assert handler.finish(duplicate) is duplicate  # nothing pending: nothing to do
    assert asyncio.run(handler.finish_async(duplicate)) is duplicate


def test_accept_refuses_a_bad_delivery_without_claiming_it() -> None:
    handler = make_handler("mindpeeker")
    body, headers = mindpeeker_delivery()
    assert handler.accept(body, {**headers, "X-MindPeeker-Signature": "sha256=00"}).status == 401
    assert handler.accept(body, headers).pending  # still new


def test_complete_and_release_settle_code_that_handles_events_itself() -> None:
    handler = make_handler("momentum")
    body = sample_batch(["delivery", "open"])
    headers = sign("momentum", body, batch_id="b-9", **CREDENTIALS["momentum"])
    accepted = handler.accept(body, headers)
    assert len(accepted.pending) == 2
    # While the first attempt holds the batch, a retry is told to come back later.
    assert handler.accept(body, headers).status == 409
    handler.release(accepted)
    again = handler.accept(body, headers)
    assert not again.duplicate and len(again.pending) == 2
    handler.complete(again)
    assert handler.accept(body, headers).duplicate
    # An outcome that holds nothing is settled as a no-op.
    handler.complete(again)
    handler.release(again)
    assert handler.accept(body, headers).duplicate


def test_without_a_store_accept_holds_nothing_and_every_copy_is_new() -> None:
    handler = make_handler("mindpeeker", dedupe=None)
    body, headers = mindpeeker_delivery()
    accepted = handler.accept(body, headers)
    assert accepted.claims is None and len(accepted.pending) == 1
    handler.complete(accepted)
    handler.release(accepted)
    assert len(handler.accept(body, headers).pending) == 1


def test_dispatch_runs_routes_without_dedupe_and_raises_the_routes_error() -> None:
    handler = make_handler("mindpeeker")
    seen: list[str] = []
    handler.on("session.created")(lambda event: seen.append(event.type))
    delivery = handler.verify(*mindpeeker_delivery())
    assert handler.dispatch(delivery) == 1
    assert handler.dispatch(delivery) == 1  # no de-duplication here
    assert seen == ["session.created"] * 2
    handler.on("*")(lambda event: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        handler.dispatch(delivery)


PLAIN_ENTRY_POINTS: dict[str, Callable[[WebhookHandler, Any], object]] = {
    "handle": lambda handler, outcome: handler.handle(*mindpeeker_delivery()),
    "process": lambda handler, outcome: handler.process(outcome.delivery),
    "accept": lambda handler, outcome: handler.accept(*mindpeeker_delivery()),
    "finish": lambda handler, outcome: handler.finish(outcome),
    "complete": lambda handler, outcome: handler.complete(outcome),
    "release": lambda handler, outcome: handler.release(outcome),
}


@pytest.mark.parametrize("method", PLAIN_ENTRY_POINTS)
def test_an_async_store_is_refused_by_each_plain_entry_point(method: str) -> None:
    handler = make_handler("mindpeeker", dedupe=AsyncStore())
    assert handler.store_is_async
    accepted = asyncio.run(handler.accept_async(*mindpeeker_delivery()))
    with pytest.raises(TypeError, match=f"call {method}_async"):
        PLAIN_ENTRY_POINTS[method](handler, accepted)


def test_an_async_route_called_from_plain_code_is_run_to_its_end() -> None:
    handler = make_handler("mindpeeker")
    seen: list[str] = []

    @handler.on("session.created")
    async def done(event: Event) -> None:
        await asyncio.sleep(0)
        seen.append(event.type)

    assert handler.handle(*mindpeeker_delivery()).dispatched == 1
    assert seen == ["session.created"]
