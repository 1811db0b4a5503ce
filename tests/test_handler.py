"""WebhookHandler, the facade: what each entry point does, end to end.

The pieces have their own specifications (``test_credentials``, ``test_verify``,
``test_routing``, ``test_dispatch``, ``test_claims``, ``test_outcome``,
``test_async``); these tests say what a user sees of them through the handler.
"""

from __future__ import annotations

import asyncio
import base64
import email.message
import json
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hookshield import (
    Accepted,
    AuthenticationError,
    BodyTooLarge,
    Event,
    Headers,
    InvalidSignature,
    MalformedPayload,
    MalformedSignature,
    MemoryDedupeStore,
    MissingCredentials,
    Outcome,
    WebhookError,
    WebhookHandler,
)
from hookshield.providers import get_provider
from hookshield.testing import forged_credentials, sample_batch, sample_delivery, sign

from .adapters.support import credential_header
from .conftest import CREDENTIALS, PROVIDER_NAMES, a_type, make_handler
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


#: What a user calls: a handful of verbs.  The pieces under them are private.
PUBLIC_METHODS = {
    "on", "on_error",
    "check_peer", "check_headers",
    "authenticate", "verify", "iter_events",
    "handle", "handle_async",
    "accept", "accept_async",
    "dispatch", "dispatch_async",
}  # fmt: skip
PUBLIC_PROPERTIES = {
    "provider",
    "event_types",
    "max_body_size",
    "dedupe",
    "dedupe_ttl",
    "dedupe_lease",
}


def test_the_handler_s_public_surface_is_a_few_verbs_and_its_settings() -> None:
    handler = make_handler("mindpeeker")
    public = {name for name in dir(handler) if not name.startswith("_")}
    assert public == PUBLIC_METHODS | PUBLIC_PROPERTIES
    assert all(callable(getattr(handler, name)) for name in PUBLIC_METHODS)
    assert not any(callable(getattr(handler, name)) for name in PUBLIC_PROPERTIES)


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


def test_accept_then_finish_acknowledges_before_dispatch() -> None:
    handler = make_handler("mindpeeker")
    seen: list[str] = []
    handler.on("*")(lambda event: seen.append(event.type))
    body, headers = mindpeeker_delivery()
    accepted = handler.accept(body, headers)
    assert isinstance(accepted, Accepted) and isinstance(accepted, Outcome)
    assert accepted.status == 200 and seen == []
    assert [event.type for event in accepted.pending] == ["session.created"]
    assert accepted.finish().dispatched == 1
    assert seen == ["session.created"]
    duplicate = handler.accept(body, headers)
    assert duplicate.duplicate and duplicate.pending == ()
    assert duplicate.finish() is duplicate  # nothing pending: nothing to do
    assert asyncio.run(duplicate.finish_async()) is duplicate


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
    accepted.release()
    again = handler.accept(body, headers)
    assert not again.duplicate and len(again.pending) == 2
    again.complete()
    assert handler.accept(body, headers).duplicate
    # An accepted delivery that holds nothing any more is settled as a no-op.
    again.complete()
    again.release()
    assert handler.accept(body, headers).duplicate


def test_a_with_block_completes_an_accepted_delivery_that_ran() -> None:
    handler = make_handler("mindpeeker")
    body, headers = mindpeeker_delivery()
    with handler.accept(body, headers) as accepted:
        assert [event.type for event in accepted.pending] == ["session.created"]
        assert handler.accept(body, headers).status == 409  # held while the block runs
    assert handler.accept(body, headers).duplicate


@pytest.mark.parametrize("error", [ValueError, SystemExit, KeyboardInterrupt])
def test_a_with_block_left_by_any_exception_releases_and_lets_it_through(
    error: type[BaseException],
) -> None:
    handler = make_handler("mindpeeker")
    body, headers = mindpeeker_delivery()
    with pytest.raises(error), handler.accept(body, headers):
        raise error
    assert handler.accept(body, headers).pending  # released: the retry runs it


def test_an_async_with_block_completes_or_releases_even_when_cancelled() -> None:
    handler = make_handler("mindpeeker", dedupe=AsyncStore())
    done, failed, cancelled = (mindpeeker_delivery() for _ in range(3))

    async def scenario() -> None:
        async with await handler.accept_async(*done):
            pass
        with pytest.raises(ValueError, match="the route failed"):
            async with await handler.accept_async(*failed):
                raise ValueError("the route failed")
        started = asyncio.Event()

        async def runs_until_cancelled() -> None:
            async with await handler.accept_async(*cancelled):
                started.set()
                await asyncio.Event().wait()

        task = asyncio.ensure_future(runs_until_cancelled())
        await started.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert (await handler.accept_async(*done)).duplicate
        for released in (failed, cancelled):
            assert (await handler.accept_async(*released)).pending

    asyncio.run(scenario())


def test_a_refused_or_duplicate_delivery_holds_nothing_to_settle() -> None:
    handler = make_handler("mindpeeker")
    body, headers = mindpeeker_delivery()
    refused = handler.accept(body, {**headers, "X-MindPeeker-Signature": "sha256=00"})
    assert isinstance(refused, Accepted) and refused.status == 401
    with refused:
        pass
    handler.accept(body, headers).complete()
    with handler.accept(body, headers) as duplicate:
        assert duplicate.duplicate and not duplicate.pending
    assert handler.accept(body, headers).duplicate


def test_without_a_store_accept_holds_nothing_and_every_copy_is_new() -> None:
    handler = make_handler("mindpeeker", dedupe=None)
    body, headers = mindpeeker_delivery()
    accepted = handler.accept(body, headers)
    assert len(accepted.pending) == 1
    accepted.complete()
    accepted.release()
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


PLAIN_ENTRY_POINTS: dict[str, Callable[[WebhookHandler, Accepted], object]] = {
    "handle": lambda handler, accepted: handler.handle(*mindpeeker_delivery()),
    "accept": lambda handler, accepted: handler.accept(*mindpeeker_delivery()),
    "finish": lambda handler, accepted: accepted.finish(),
    "complete": lambda handler, accepted: accepted.complete(),
    "release": lambda handler, accepted: accepted.release(),
}


@pytest.mark.parametrize("method", PLAIN_ENTRY_POINTS)
def test_an_async_store_is_refused_by_each_plain_entry_point(method: str) -> None:
    handler = make_handler("mindpeeker", dedupe=AsyncStore())
    accepted = asyncio.run(handler.accept_async(*mindpeeker_delivery()))
    with pytest.raises(TypeError, match=f"call {method}_async"):
        PLAIN_ENTRY_POINTS[method](handler, accepted)
    asyncio.run(accepted.release_async())


def test_an_async_route_called_from_plain_code_is_run_to_its_end() -> None:
    handler = make_handler("mindpeeker")
    seen: list[str] = []

    @handler.on("session.created")
    async def done(event: Event) -> None:
        await asyncio.sleep(0)
        seen.append(event.type)

    assert handler.handle(*mindpeeker_delivery()).dispatched == 1
    assert seen == ["session.created"]


# -- the caller's arguments: a wrong type is a TypeError, never an answer ------------------

ENTRY_POINTS: dict[str, Callable[[WebhookHandler, bytes, Any], object]] = {
    "verify": lambda handler, body, headers: handler.verify(body, headers),
    "handle": lambda handler, body, headers: handler.handle(body, headers),
    "accept": lambda handler, body, headers: handler.accept(body, headers),
    "authenticate": lambda handler, body, headers: handler.authenticate(body, headers),
    "iter_events": lambda handler, body, headers: handler.iter_events(body, headers),
    "handle_async": lambda handler, body, headers: asyncio.run(handler.handle_async(body, headers)),
    "accept_async": lambda handler, body, headers: asyncio.run(handler.accept_async(body, headers)),
}


def _message(headers: dict[str, str] | None = None) -> email.message.Message:
    message = email.message.Message()
    for name, value in (headers or mindpeeker_delivery()[1]).items():
        message[name] = value
    return message


NOT_HEADERS: dict[str, Callable[[], object]] = {
    "None": lambda: None,
    "str": lambda: "X-MindPeeker-Signature: sha256=00",
    "empty str": lambda: "",
    "bytes": lambda: b"Content-Type: application/json",
    "empty bytes": lambda: b"",
    "int": lambda: 5,
    "email.message.Message": _message,
    "an empty email.message.Message": email.message.Message,
    "an iterable of names": lambda: ["Content-Type"],
    "three-item tuples": lambda: [("Content-Type", "application/json", "x")],
    "an int value": lambda: {"Content-Type": 1.5},
    "an int name": lambda: {5: "application/json"},
    "an object value in a pair": lambda: [("X-MindPeeker-Signature", object())],
}


@pytest.mark.parametrize("entry_point", ENTRY_POINTS)
@pytest.mark.parametrize("headers", NOT_HEADERS)
def test_headers_of_the_wrong_type_are_a_type_error_at_every_entry_point(
    entry_point: str, headers: str
) -> None:
    # A 400 would be final for the sender: every delivery lost to a bug in the caller.
    handler = make_handler("mindpeeker")
    seen: list[Event] = []
    handler.on("*")(seen.append)
    body, _ = mindpeeker_delivery()
    with pytest.raises(TypeError, match="header"):
        ENTRY_POINTS[entry_point](handler, body, NOT_HEADERS[headers]())
    assert seen == []


@pytest.mark.parametrize("entry_point", ENTRY_POINTS)
@pytest.mark.parametrize("body", [None, "{}", 5, ["{}"]])
def test_a_body_of_the_wrong_type_is_a_type_error_at_every_entry_point(
    entry_point: str, body: Any
) -> None:
    handler = make_handler("mindpeeker")
    with pytest.raises(TypeError, match="raw request body"):
        ENTRY_POINTS[entry_point](handler, body, mindpeeker_delivery()[1])


def test_check_peer_refuses_headers_of_the_wrong_type_with_a_type_error() -> None:
    # Read when the peer is a trusted proxy, whose forwarding headers count.
    handler = make_handler("mindpeeker", allowed_ips=["10.0.0.0/8"], trusted_proxies=["127.0.0.1"])
    for headers in (None, "X-Forwarded-For: 127.0.0.1", _message()):
        with pytest.raises(TypeError):
            handler.check_peer("127.0.0.1", headers)  # type: ignore[arg-type]


def _werkzeug_environ_headers(headers: dict[str, str]) -> object:
    from werkzeug.test import EnvironBuilder

    return EnvironBuilder(method="POST", headers=list(headers.items())).get_request().headers


def _werkzeug_headers(headers: dict[str, str]) -> object:
    from werkzeug.datastructures import Headers as WerkzeugHeaders

    return WerkzeugHeaders(list(headers.items()))


def _django_headers(headers: dict[str, str]) -> object:
    from .adapters.support import configure_django

    configure_django()
    from django.test import RequestFactory

    rest = {name: value for name, value in headers.items() if name != "Content-Type"}
    request = RequestFactory().post("/hooks", content_type=headers["Content-Type"], headers=rest)
    return request.headers


def _starlette_headers(headers: dict[str, str]) -> object:
    from starlette.datastructures import Headers as StarletteHeaders

    return StarletteHeaders(headers)


HEADER_SHAPES: dict[str, Callable[[dict[str, str]], object]] = {
    "dict": dict,
    "hookshield.Headers": Headers,
    "ASGI byte pairs": lambda h: [(n.lower().encode(), v.encode("latin-1")) for n, v in h.items()],
    "ASGI byte lists": lambda h: [[n.lower().encode(), v.encode()] for n, v in h.items()],
    "a generator of pairs": lambda h: ((n, v) for n, v in h.items()),
    "list(email.message.Message.items())": lambda h: list(_message(h).items()),
    "a dict with a value given as None": lambda h: {**h, "X-Request-Id": None},
    "Werkzeug's request.headers": _werkzeug_environ_headers,
    "Werkzeug's Headers": _werkzeug_headers,
    "Django's request.headers": _django_headers,
    "Starlette's Headers": _starlette_headers,
}


@pytest.mark.parametrize("shape", HEADER_SHAPES)
def test_every_shape_of_headers_that_frameworks_hand_over_is_verified(shape: str) -> None:
    body, headers = mindpeeker_delivery()
    delivery = make_handler("mindpeeker").verify(body, HEADER_SHAPES[shape](headers))  # type: ignore[arg-type]
    assert delivery.events[0].type == "session.created"
    assert delivery.headers.get("x-mindpeeker-signature") == headers["X-MindPeeker-Signature"]


def test_a_header_given_as_none_is_absent() -> None:
    # What a caller that copies request.headers.get(name) passes for a header the
    # request did not carry: a refusal for that, not a crash.
    body, headers = mindpeeker_delivery()
    outcome = make_handler("mindpeeker").handle(body, {**headers, "X-MindPeeker-Signature": None})
    assert outcome.status == 401
    assert "no X-MindPeeker-Signature header" in outcome.reason


# -- what the headers settle, before the body is read ---------------------------------

#: Other credentials of the same shape as the test ones.
WRONG = {name: forged_credentials(name) for name in PROVIDER_NAMES}
#: The senders whose credential travels in a header alone, not over the body.
HEADER_ONLY = tuple(name for name in PROVIDER_NAMES if get_provider(name).scheme is None)


def signed_delivery(provider: str, **credentials: Any) -> tuple[bytes, dict[str, str]]:
    options = credentials or CREDENTIALS[provider]
    return sample_delivery(provider, a_type(provider), **options)


def test_check_headers_refuses_a_delivery_without_its_credential(provider: str) -> None:
    handler = make_handler(provider)
    _, headers = signed_delivery(provider)
    handler.check_headers(headers)
    header = credential_header(provider)
    name = header.lower()
    with pytest.raises(MissingCredentials, match=header):
        handler.check_headers({k: v for k, v in headers.items() if k.lower() != name})


def test_check_headers_settles_a_header_credential_and_leaves_a_signature(provider: str) -> None:
    handler = make_handler(provider)
    body, headers = signed_delivery(provider, **WRONG[provider])
    if provider in HEADER_ONLY:
        with pytest.raises(InvalidSignature):
            handler.check_headers(headers)
    else:
        handler.check_headers(headers)  # a signature over the body is judged with the body
        with pytest.raises(AuthenticationError):
            handler.authenticate(body, headers)


@pytest.mark.parametrize(
    ("authorization", "error"),
    [
        (None, MissingCredentials),
        ("Basic " + base64.b64encode(b"hooks:wrong").decode(), InvalidSignature),
        ("Bearer right", MalformedSignature),  # this handler takes Basic only
        ("Basic !!", MalformedSignature),
    ],
)
def test_check_headers_settles_basic_credentials(
    authorization: str | None, error: type[WebhookError]
) -> None:
    handler = WebhookHandler("momentum", basic_auth=("hooks", "right"))
    _, headers = sample_delivery("momentum", "delivery", basic_auth=("hooks", "right"))
    handler.check_headers(headers)
    headers.pop("Authorization")
    if authorization is not None:
        headers["Authorization"] = authorization
    with pytest.raises(error):
        handler.check_headers(headers)


def test_headers_checked_before_the_body_are_judged_whole_with_it() -> None:
    # The adapters check the headers, then verify with the same Headers object: what
    # the check before the body passed, the body, the key and another sender's header
    # are all judged anew.
    handler = make_handler("mindpeeker")
    body, sent = signed_delivery("mindpeeker")
    headers = Headers(sent)
    handler.check_headers(headers)
    assert handler.verify(body, headers).events[0].provider == "mindpeeker"
    with pytest.raises(InvalidSignature):
        handler.verify(body + b" ", headers)
    with pytest.raises(InvalidSignature):
        WebhookHandler("mindpeeker", secret="another-secret").verify(body, headers)
    with pytest.raises(MissingCredentials, match="X-Moco-Signature"):
        make_handler("moco").check_headers(headers)
    assert handler.verify(body, headers).events


def test_check_headers_refuses_a_declared_length_over_the_limit() -> None:
    handler = make_handler("moco", max_body_size=100)
    _, headers = signed_delivery("moco")
    handler.check_headers({**headers, "Content-Length": "100"})
    with pytest.raises(BodyTooLarge, match="max_body_size"):
        handler.check_headers({**headers, "Content-Length": "101"})
    with pytest.raises(MalformedPayload, match="Content-Length"):
        handler.check_headers({**headers, "Content-Length": "1_0"})
    # The credential is judged first: a stranger learns nothing of the limit.
    with pytest.raises(MissingCredentials):
        handler.check_headers({"Content-Length": "101"})


def test_an_unsigned_handler_has_nothing_to_check_but_the_length() -> None:
    handler = WebhookHandler("petal", allow_unsigned=True, max_body_size=10)
    handler.check_headers({})
    with pytest.raises(BodyTooLarge):
        handler.check_headers({"Content-Length": "11"})


@pytest.mark.parametrize("provider", PROVIDER_NAMES)
@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_check_headers_refuses_only_what_authenticate_refuses(
    provider: str, data: st.DataObject
) -> None:
    """Whatever the headers, a refusal before the body is the refusal after it."""
    handler = make_handler(provider)
    body, signed = signed_delivery(provider, **data.draw(st.sampled_from([{}, WRONG[provider]])))
    pairs = list(signed.items())
    names = [*signed, "Authorization", "Content-Type"]
    text = st.text(max_size=80)
    for _ in range(data.draw(st.integers(0, 3))):
        name = data.draw(st.sampled_from(names))
        change = data.draw(st.sampled_from(["drop", "replace", "repeat"]))
        if change == "drop":
            pairs = [(k, v) for k, v in pairs if k != name]
        elif change == "replace":
            pairs = [(k, v) for k, v in pairs if k != name] + [(name, data.draw(text))]
        else:
            pairs.append((name, data.draw(text)))
    try:
        handler.check_headers(pairs)
    except WebhookError as early:
        with pytest.raises(type(early)) as late:
            handler.authenticate(body, pairs)
        assert str(late.value) == str(early)


@pytest.mark.parametrize(
    ("provider", "size"),
    [
        ("moco", 1024 * 1024),
        ("mindpeeker", 1024 * 1024),
        ("standard-webhooks", 1024 * 1024),
        ("petal", 2 * 1024 * 1024),
        ("moonsense", 4 * 1024 * 1024),
        ("momentum", 25 * 1024 * 1024),
        ("github", 25 * 1024 * 1024),
    ],
)
def test_each_sender_has_its_own_default_body_limit(provider: str, size: int) -> None:
    assert make_handler(provider).max_body_size == size
    assert make_handler(provider, max_body_size=None).max_body_size == size
    assert make_handler(provider, max_body_size=10).max_body_size == 10


def test_the_names_of_the_wide_handler_still_answer_for_one_release_with_a_warning() -> None:
    handler = make_handler("momentum", stream_batches=False)
    seen: list[str] = []

    @handler.on("*")
    def route(event: Event) -> None:
        seen.append(event.type)

    body = sample_batch(["delivery"])
    headers = sign("momentum", body, batch_id="b-1", **CREDENTIALS["momentum"])

    def old(name: str) -> Any:
        with pytest.warns(DeprecationWarning, match=rf"WebhookHandler\.{name} is deprecated"):
            return getattr(handler, name)

    accepted = handler.accept(body, headers)
    assert old("finish")(accepted).dispatched == 1 and seen == ["delivery"]
    assert old("process")(handler.verify(body, headers)).duplicate
    second = sample_batch(["open"])
    again = handler.accept(second, sign("momentum", second, **CREDENTIALS["momentum"]))
    old("release")(again)
    assert handler.accept(second, sign("momentum", second, **CREDENTIALS["momentum"])).pending
    old("complete")(handler.handle(body, headers))  # an outcome that holds nothing: a no-op
    assert old("routes_for")("delivery") == (route,)
    assert (old("streams"), old("unsigned"), old("peers"), old("store_is_async")) == (
        False,
        False,
        None,
        False,
    )
    assert old("verifier").sender.name == old("dispatcher").sender.name == "momentum"

    async def twins() -> None:
        third = sample_batch(["bounce"])
        signed = sign("momentum", third, **CREDENTIALS["momentum"])
        pending = handler.accept(third, signed)
        assert (await old("finish_async")(pending)).dispatched == 1
        assert (await old("process_async")(handler.verify(third, signed))).duplicate

    asyncio.run(twins())
    with pytest.raises(AttributeError, match="no attribute 'nothing'"):
        getattr(handler, "nothing")  # noqa: B009 - a name the handler never had
