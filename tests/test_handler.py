"""WebhookHandler: construction rules, routing, outcomes, de-duplication and failures."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import threading
from typing import Any

import pytest

from hookshield import (
    BodyTooLarge,
    Claim,
    Delivery,
    Event,
    InvalidSignature,
    MemoryDedupeStore,
    Outcome,
    WebhookHandler,
)
from hookshield.testing import sample_batch, sample_delivery, sign

from .conftest import CREDENTIALS, a_type, make_handler


class TestConstruction:
    @pytest.mark.parametrize("provider", ["moco", "mindpeeker"])
    def test_signing_senders_always_need_a_secret(self, provider: str) -> None:
        with pytest.raises(ValueError, match="secret="):
            WebhookHandler(provider)
        with pytest.raises(ValueError, match="signs every delivery"):
            WebhookHandler(provider, allow_unsigned=True)

    @pytest.mark.parametrize("provider", ["moonsense", "petal", "momentum"])
    def test_unsigned_needs_explicit_opt_in(
        self, provider: str, caplog: pytest.LogCaptureFixture
    ) -> None:
        with pytest.raises(ValueError, match="allow_unsigned=True"):
            WebhookHandler(provider)
        with caplog.at_level(logging.WARNING, logger="hookshield"):
            handler = WebhookHandler(provider, allow_unsigned=True)
        assert "UNSIGNED" in repr(handler)
        assert "forge" in caplog.text

    def test_unsigned_moonsense_accepts_a_delivery_without_signature(self) -> None:
        handler = WebhookHandler("moonsense", allow_unsigned=True)
        body, headers = sample_delivery("moonsense", "session.created")
        assert "X-Moonsense-Signature-256" not in headers
        assert handler.verify(body, headers).events[0].type == "session.created"

    def test_with_a_secret_a_delivery_without_signature_is_refused(self) -> None:
        handler = WebhookHandler("moonsense", secret="s", allow_unsigned=True)
        body, headers = sample_delivery("moonsense", "session.created")
        assert handler.handle(body, headers).status == 401

    @pytest.mark.parametrize(
        ("provider", "option"),
        [
            ("moco", "token"),
            ("mindpeeker", "bearer_token"),
            ("petal", "secret"),
            ("momentum", "secret"),
        ],
    )
    def test_credentials_the_sender_cannot_carry_are_refused(
        self, provider: str, option: str
    ) -> None:
        with pytest.raises(ValueError, match="cannot carry"):
            WebhookHandler(provider, **{option: "x"})  # type: ignore[arg-type]

    def test_unknown_provider(self) -> None:
        with pytest.raises(ValueError, match="mindpeeker"):
            WebhookHandler("gitlab", secret="x")

    @pytest.mark.parametrize("secret", ["", b"", [], ["ok", ""]])
    def test_empty_secrets_are_refused(self, secret: object) -> None:
        with pytest.raises(ValueError, match="empty"):
            WebhookHandler("moco", secret=secret)  # type: ignore[arg-type]

    def test_secret_of_wrong_type(self) -> None:
        with pytest.raises(TypeError):
            WebhookHandler("moco", secret=123)  # type: ignore[arg-type]
        with pytest.raises(TypeError):
            WebhookHandler("moco", secret=["ok", 5])  # type: ignore[list-item]

    def test_basic_auth_validation(self) -> None:
        with pytest.raises(ValueError, match="':'"):
            WebhookHandler("momentum", basic_auth=("a:b", "pw"))
        with pytest.raises(ValueError, match="empty"):
            WebhookHandler("momentum", basic_auth=[])
        with pytest.raises(TypeError):
            WebhookHandler("momentum", basic_auth=[("a", "b", "c")])  # type: ignore[list-item]
        handler = WebhookHandler("momentum", basic_auth=[("a", "1"), ("b", "2")])
        assert "basic_auth=2" in repr(handler)

    def test_token_header_without_token(self) -> None:
        with pytest.raises(ValueError, match="token="):
            WebhookHandler("petal", token_header="X-T", allow_unsigned=True)

    def test_limits_must_be_positive(self) -> None:
        with pytest.raises(ValueError, match="max_body_size"):
            WebhookHandler("moco", secret="s", max_body_size=0)
        with pytest.raises(ValueError, match="dedupe_ttl"):
            WebhookHandler("moco", secret="s", dedupe_ttl=0)

    def test_dedupe_store_must_follow_the_protocol(self) -> None:
        with pytest.raises(TypeError, match="claim"):
            WebhookHandler("moco", secret="s", dedupe=object())  # type: ignore[arg-type]

    def test_repr_never_shows_a_secret(self) -> None:
        handler = WebhookHandler("mindpeeker", secret=["topsecret1", "topsecret2"])
        assert "topsecret" not in repr(handler)
        assert "secrets=2" in repr(handler)
        assert handler.provider == "mindpeeker"


class TestRouting:
    def test_exact_several_names_wildcards_in_registration_order(self) -> None:
        handler = make_handler("mindpeeker")
        calls: list[str] = []

        @handler.on("session.completed", "analysis.completed")
        def completed(event: Event) -> None:
            calls.append("completed:" + event.type)

        @handler.on("session.*")
        def sessions(event: Event) -> None:
            calls.append("session.*:" + event.type)

        @handler.on("*")
        def everything(event: Event) -> None:
            calls.append("*:" + event.type)

        for kind in ("session.completed", "analysis.completed", "dowsing.query_created"):
            body, headers = sample_delivery("mindpeeker", kind, **CREDENTIALS["mindpeeker"])
            assert handler.handle(body, headers).status == 200
        assert calls == [
            "completed:session.completed",
            "session.*:session.completed",
            "*:session.completed",
            "completed:analysis.completed",
            "*:analysis.completed",
            "*:dowsing.query_created",
        ]

    def test_routes_for_reflects_later_registrations(self) -> None:
        handler = make_handler("moco")
        assert handler.routes_for("activity.create") == ()

        def first(event: Event) -> None: ...

        handler.on("activity.*")(first)
        assert handler.routes_for("activity.create") == (first,)
        assert handler.routes_for("activityxcreate") == ()

    @pytest.mark.parametrize("pattern", ["", "session*", "*.completed", "a.*.*"])
    def test_bad_patterns(self, pattern: str) -> None:
        with pytest.raises((ValueError, TypeError)):
            make_handler("mindpeeker").on(pattern)

    def test_on_needs_a_name_and_a_function(self) -> None:
        handler = make_handler("mindpeeker")
        with pytest.raises(TypeError):
            handler.on()
        with pytest.raises(TypeError):
            handler.on("session.created")(42)  # type: ignore[type-var]
        with pytest.raises(TypeError):
            handler.on_error(42)  # type: ignore[type-var]

    def test_a_likely_typo_warns(self) -> None:
        handler = make_handler("mindpeeker")
        with pytest.warns(UserWarning, match="session.completed"):
            handler.on("session.complete")

    def test_an_undocumented_type_is_allowed_silently(self) -> None:
        make_handler("mindpeeker").on("brand.new_event")


class TestOutcomes:
    def test_unknown_event_type_is_acknowledged(self) -> None:
        handler = make_handler("mindpeeker")
        body, headers = sample_delivery(
            "mindpeeker", "brand.new_event", **CREDENTIALS["mindpeeker"]
        )
        outcome = handler.handle(body, headers)
        assert outcome.status == 200
        assert outcome.dispatched == 0
        assert "no handler" in outcome.reason
        assert outcome.response_body() == b'{"ok":true}'

    def test_rejected_delivery_carries_the_error(self) -> None:
        handler = make_handler("mindpeeker")
        body, headers = sample_delivery("mindpeeker", "session.created", secret="wrong")
        outcome = handler.handle(body, headers)
        assert outcome.status == 401
        assert isinstance(outcome.error, InvalidSignature)
        assert not outcome.ok
        assert json.loads(outcome.response_body()) == {"error": outcome.reason}

    def test_too_large_is_413_before_authentication(self) -> None:
        handler = make_handler("mindpeeker", max_body_size=10)
        outcome = handler.handle(b"x" * 11, {})
        assert outcome.status == 413
        assert isinstance(outcome.error, BodyTooLarge)

    def test_validation_batch_is_200_with_no_events(self) -> None:
        handler = make_handler("momentum")
        body = b'[{"msys": {}}]'
        outcome = handler.handle(body, sign("momentum", body, **CREDENTIALS["momentum"]))
        assert outcome.status == 200
        assert outcome.delivery is not None
        assert outcome.delivery.events == ()

    def test_body_must_be_bytes(self) -> None:
        handler = make_handler("moco")
        with pytest.raises(TypeError, match="raw request body"):
            handler.verify("{}", {})  # type: ignore[arg-type]
        assert handler.handle(bytearray(b"{}"), {}).status == 401
        assert handler.handle(memoryview(b"{}"), {}).status == 401


class TestDeduplication:
    def test_a_duplicate_is_acknowledged_and_not_dispatched(self, provider: str) -> None:
        handler = make_handler(provider)
        seen: list[Event] = []
        handler.on("*")(seen.append)
        kind = a_type(provider)
        body, headers = sample_delivery(provider, kind, **CREDENTIALS[provider])
        first = handler.handle(body, headers)
        second = handler.handle(body, headers)
        assert (first.status, second.status) == (200, 200)
        assert second.duplicate and not first.duplicate
        assert len(seen) == 1

    def test_a_replay_with_fresh_unsigned_headers_is_still_a_duplicate(self) -> None:
        handler = make_handler("moonsense")
        seen: list[Event] = []
        handler.on("*")(seen.append)
        body, headers = sample_delivery("moonsense", "bundle.received", **CREDENTIALS["moonsense"])
        handler.handle(body, headers)
        replay = {**headers, "X-Moonsense-Delivery": "a-fresh-guid"}
        assert handler.handle(body, replay).duplicate
        assert len(seen) == 1

    def test_dedupe_none_dispatches_every_time(self) -> None:
        handler = make_handler("mindpeeker", dedupe=None)
        seen: list[Event] = []
        handler.on("*")(seen.append)
        body, headers = sample_delivery(
            "mindpeeker", "session.created", **CREDENTIALS["mindpeeker"]
        )
        handler.handle(body, headers)
        handler.handle(body, headers)
        assert len(seen) == 2

    def test_momentum_records_are_deduplicated_across_batches(self) -> None:
        handler = make_handler("momentum")
        seen: list[str | None] = []
        handler.on("*")(lambda event: seen.append(event.id))
        first = json.loads(sample_batch(["delivery", "click"]))
        second = [first[1], *json.loads(sample_batch(["open"]))]
        for records in (first, second):
            body = json.dumps(records).encode()
            assert handler.handle(body, sign("momentum", body, **CREDENTIALS["momentum"])).ok
        assert len(seen) == 3
        assert len(set(seen)) == 3

    def test_a_repeated_batch_id_is_a_duplicate(self) -> None:
        handler = make_handler("momentum")
        body = sample_batch(["delivery"])
        headers = sign("momentum", body, batch_id="batch-1", **CREDENTIALS["momentum"])
        handler.handle(body, headers)
        other = sample_batch(["bounce"])
        outcome = handler.handle(
            other, sign("momentum", other, batch_id="batch-1", **CREDENTIALS["momentum"])
        )
        assert outcome.duplicate

    def test_shared_store_between_handlers(self) -> None:
        store = MemoryDedupeStore()
        a = make_handler("mindpeeker", dedupe=store)
        b = make_handler("mindpeeker", dedupe=store)
        body, headers = sample_delivery(
            "mindpeeker", "session.created", **CREDENTIALS["mindpeeker"]
        )
        assert not a.handle(body, headers).duplicate
        assert b.handle(body, headers).duplicate


class TestFailures:
    def test_a_failing_handler_gives_500_calls_error_hooks_and_allows_the_retry(self) -> None:
        handler = make_handler("mindpeeker")
        attempts: list[str] = []
        errors: list[tuple[str, str]] = []

        @handler.on("session.completed")
        def flaky(event: Event) -> None:
            attempts.append(event.type)
            if len(attempts) == 1:
                raise RuntimeError("database down")

        @handler.on_error
        def record(error: Exception, event: Event) -> None:
            errors.append((type(error).__name__, event.type))

        body, headers = sample_delivery(
            "mindpeeker", "session.completed", **CREDENTIALS["mindpeeker"]
        )
        failed = handler.handle(body, headers)
        assert failed.status == 500
        assert isinstance(failed.error, RuntimeError)
        assert b"database" not in failed.response_body()
        assert errors == [("RuntimeError", "session.completed")]
        retried = handler.handle(body, headers)
        assert retried.status == 200
        assert not retried.duplicate
        assert attempts == ["session.completed", "session.completed"]

    def test_a_failing_error_hook_is_logged_not_raised(
        self, caplog: pytest.LogCaptureFixture
    ) -> None:
        handler = make_handler("mindpeeker")

        @handler.on("*")
        def boom(event: Event) -> None:
            raise ValueError("handler")

        @handler.on_error
        def broken_hook(error: Exception, event: Event) -> None:
            raise KeyError("hook")

        body, headers = sample_delivery(
            "mindpeeker", "session.created", **CREDENTIALS["mindpeeker"]
        )
        with caplog.at_level(logging.ERROR, logger="hookshield"):
            assert handler.handle(body, headers).status == 500
        assert "on_error hook raised" in caplog.text

    def test_a_retried_batch_skips_records_already_handled(self) -> None:
        handler = make_handler("momentum")
        handled: list[str] = []

        @handler.on("*")
        def on_record(event: Event) -> None:
            if event.type == "bounce" and "bounce" not in handled:
                handled.append("bounce")
                raise RuntimeError("transient")
            handled.append(event.type)

        body = sample_batch(["delivery", "bounce", "click"])
        headers = sign("momentum", body, batch_id="b-1", **CREDENTIALS["momentum"])
        assert handler.handle(body, headers).status == 500
        assert handler.handle(body, headers).status == 200
        assert handled == ["delivery", "bounce", "bounce", "click"]

    def test_dispatch_raises_the_handlers_error(self) -> None:
        handler = make_handler("mindpeeker")
        handler.on("*")(lambda event: 1 / 0)
        body, headers = sample_delivery(
            "mindpeeker", "session.created", **CREDENTIALS["mindpeeker"]
        )
        delivery = handler.verify(body, headers)
        with pytest.raises(ZeroDivisionError):
            handler.dispatch(delivery)


class TestAsync:
    def _delivery(self, handler: WebhookHandler) -> Delivery:
        body, headers = sample_delivery(
            "mindpeeker", "session.completed", **CREDENTIALS["mindpeeker"]
        )
        return handler.verify(body, headers)

    def test_async_handler_from_plain_code(self) -> None:
        handler = make_handler("mindpeeker")
        seen: list[str] = []

        @handler.on("session.completed")
        async def done(event: Event) -> None:
            await asyncio.sleep(0)
            seen.append(event.type)

        assert handler.dispatch(self._delivery(handler)) == 1
        assert seen == ["session.completed"]

    def test_handle_async_runs_async_on_the_loop_and_plain_in_a_thread(self) -> None:
        import threading

        handler = make_handler("mindpeeker")
        threads: dict[str, int] = {}

        @handler.on("session.completed")
        async def on_loop(event: Event) -> None:
            threads["async"] = threading.get_ident()

        @handler.on("session.completed")
        def in_thread(event: Event) -> None:
            threads["plain"] = threading.get_ident()

        body, headers = sample_delivery(
            "mindpeeker", "session.completed", **CREDENTIALS["mindpeeker"]
        )

        async def main() -> int:
            outcome = await handler.handle_async(body, headers)
            assert outcome.dispatched == 2
            return threading.get_ident()

        loop_thread = asyncio.run(main())
        assert threads["async"] == loop_thread
        assert threads["plain"] != loop_thread

    def test_a_batch_of_plain_handlers_runs_in_one_worker_thread(self) -> None:
        handler = make_handler("momentum")
        threads: list[int] = []
        handler.on("*")(lambda event: threads.append(threading.get_ident()))
        body = sample_batch(["delivery", "open", "click", "bounce"])
        headers = sign("momentum", body, **CREDENTIALS["momentum"])

        async def main() -> int:
            assert (await handler.handle_async(body, headers)).dispatched == 4
            return threading.get_ident()

        loop_thread = asyncio.run(main())
        assert len(threads) == 4
        assert len(set(threads)) == 1 and loop_thread not in threads

    def test_nothing_routed_needs_no_thread(self) -> None:
        handler = make_handler("mindpeeker")
        body, headers = sample_delivery(
            "mindpeeker", "session.created", **CREDENTIALS["mindpeeker"]
        )
        outcome = asyncio.run(handler.handle_async(body, headers))
        assert outcome.status == 200 and outcome.dispatched == 0
        assert "no handler" in outcome.reason

    def test_sync_handlers_inline_when_asked(self) -> None:
        import threading

        handler = make_handler("mindpeeker", sync_handlers_in_thread=False)
        threads: list[int] = []
        handler.on("*")(lambda event: threads.append(threading.get_ident()))

        async def main() -> int:
            await handler.dispatch_async(self._delivery(handler))
            return threading.get_ident()

        assert threads == [asyncio.run(main())]

    def test_async_failures_call_async_error_hooks(self) -> None:
        handler = make_handler("mindpeeker")
        hooked: list[str] = []

        @handler.on("*")
        async def boom(event: Event) -> None:
            raise RuntimeError("x")

        @handler.on_error
        async def hook(error: Exception, event: Event) -> None:
            hooked.append(str(error))

        @handler.on_error
        async def broken(error: Exception, event: Event) -> None:
            raise KeyError("hook")

        delivery = self._delivery(handler)
        with pytest.raises(RuntimeError):
            asyncio.run(handler.dispatch_async(delivery))
        assert hooked == ["x"]
        body, headers = sample_delivery("mindpeeker", "session.failed", **CREDENTIALS["mindpeeker"])
        assert asyncio.run(handler.handle_async(body, headers)).status == 500

    def test_async_handler_from_plain_code_inside_a_loop_is_a_clear_error(self) -> None:
        handler = make_handler("mindpeeker")

        @handler.on("*")
        async def done(event: Event) -> None: ...

        delivery = self._delivery(handler)

        async def main() -> None:
            with pytest.raises(TypeError, match="handle_async"):
                handler.dispatch(delivery)

        asyncio.run(main())

    def test_accept_then_finish_acknowledges_before_dispatch(self) -> None:
        handler = make_handler("mindpeeker")
        seen: list[str] = []
        handler.on("*")(lambda event: seen.append(event.type))
        body, headers = sample_delivery(
            "mindpeeker", "session.created", **CREDENTIALS["mindpeeker"]
        )
        accepted = handler.accept(body, headers)
        assert accepted.status == 200 and seen == []
        assert len(accepted.pending) == 1
        assert handler.finish(accepted).dispatched == 1
        assert seen == ["session.created"]
        assert asyncio.run(handler.finish_async(handler.accept(body, headers))).duplicate


class _NetworkStore:
    """A store like a Redis or SQL client: blocking, and not the in-memory one."""

    def __init__(self) -> None:
        self.inner = MemoryDedupeStore()
        self.threads: list[int] = []

    def claim(self, key: str, lease: float) -> Claim:
        self.threads.append(threading.get_ident())
        return self.inner.claim(key, lease)

    def complete(self, key: str, ttl: float) -> None:
        self.inner.complete(key, ttl)

    def release(self, key: str) -> None:
        self.inner.release(key)


class _RecordingMemoryStore(MemoryDedupeStore):
    def __init__(self) -> None:
        super().__init__()
        self.threads: list[int] = []

    def claim(self, key: str, lease: float) -> Claim:
        self.threads.append(threading.get_ident())
        return super().claim(key, lease)


class TestAsyncAcceptAndRelease:
    small = sample_delivery("mindpeeker", "session.created", **CREDENTIALS["mindpeeker"])
    big = sample_delivery(
        "mindpeeker", "session.created", {"notes": ["x" * 100] * 1000}, **CREDENTIALS["mindpeeker"]
    )

    def test_large_bodies_and_blocking_stores_are_verified_off_the_loop(self) -> None:
        assert len(self.big.body) > 64 * 1024
        network = _NetworkStore()
        memory = _RecordingMemoryStore()
        on_network = make_handler("mindpeeker", dedupe=network)
        in_memory = make_handler("mindpeeker", dedupe=memory)

        async def main() -> int:
            assert (await on_network.accept_async(*self.small)).ok
            assert (await in_memory.accept_async(*self.small)).ok
            assert (await in_memory.accept_async(*self.big)).ok
            return threading.get_ident()

        loop_thread = asyncio.run(main())
        assert len(network.threads) == 1 and loop_thread not in network.threads
        assert memory.threads[0] == loop_thread  # small body, in-memory store: inline
        assert memory.threads[1] != loop_thread  # large body: in a thread

    def test_release_lets_the_retry_through(self) -> None:
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


def test_an_outcome_keeps_every_field_it_is_built_with_and_stays_frozen() -> None:
    values: dict[str, Any] = {f.name: object() for f in dataclasses.fields(Outcome)}
    outcome = Outcome(**values)
    assert {name: getattr(outcome, name) for name in values} == values
    assert outcome == Outcome(**values)
    changed = dataclasses.replace(outcome, status=500)
    assert (changed.status, changed.reason) == (500, values["reason"])
    with pytest.raises(dataclasses.FrozenInstanceError):
        outcome.status = 201  # type: ignore[misc]
    default = Outcome(200, "accepted")
    assert (default.delivery, default.error, default.duplicate, default.dispatched) == (
        None,
        None,
        False,
        0,
    )
    assert (default.pending, default.claims) == ((), None)
