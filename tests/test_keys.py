"""De-duplication keys of every sender, per delivery and per event, and how long to keep them."""

from __future__ import annotations

import base64
import hashlib
import json
import time
import urllib.parse
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hookshield import DEFAULT_TTL, Delivery, FrozenObject, MomentumEvent, WebhookHandler
from hookshield.providers import PROVIDERS, get_provider
from hookshield.testing import sample_batch, sample_body, sign

from .conftest import CREDENTIALS, PROVIDER_NAMES, a_type, make_handler


def _sha(body: bytes) -> str:
    return "sha256:" + hashlib.sha256(body).hexdigest()


def _verify(
    provider: str, body: bytes, credentials: dict[str, Any], **sign_options: Any
) -> Delivery:
    headers = sign(provider, body, **credentials, **sign_options)
    handler = WebhookHandler(provider, **CREDENTIALS[provider], dedupe=None)
    if provider in ("moonsense", "moco", "mindpeeker"):
        handler = WebhookHandler(provider, secret=["old-secret", "new-secret"], dedupe=None)
    return handler.verify(body, headers)


class TestKeyRotation:
    """One body signed under the old and the new secret is one delivery."""

    @pytest.mark.parametrize("provider", ["moonsense", "moco"])
    def test_a_body_without_a_signed_id(self, provider: str) -> None:
        body = sample_body(provider, event_types_of(provider)[0], {})
        old = _verify(provider, body, {"secret": "old-secret"})
        new = _verify(provider, body, {"secret": "new-secret"})
        assert old.id == new.id
        assert old.id.startswith(_sha(body))

    def test_mindpeeker_without_an_id(self) -> None:
        body = json.dumps({"type": "session.created", "data": {}}).encode()
        old = _verify("mindpeeker", body, {"secret": "old-secret"})
        new = _verify("mindpeeker", body, {"secret": "new-secret"})
        assert old.id == new.id == _sha(body)

    def test_mindpeeker_with_its_signed_id(self) -> None:
        body = sample_body("mindpeeker", "session.created", {})
        old = _verify("mindpeeker", body, {"secret": "old-secret"})
        new = _verify("mindpeeker", body, {"secret": "new-secret"})
        assert old.id == new.id == "event:" + json.loads(body)["id"]


def event_types_of(provider: str) -> tuple[str, ...]:
    return PROVIDERS[provider].event_types


class TestTheEventTypeIsPartOfTheKeyWhereItIsUnsigned:
    def test_moco_one_body_under_two_event_types_is_two_deliveries(self) -> None:
        body = sample_body("moco", "project.update", {})
        handler = make_handler("moco", dedupe=None)
        update = handler.verify(
            body, sign("moco", body, event="project.update", **CREDENTIALS["moco"])
        )
        delete = handler.verify(
            body, sign("moco", body, event="project.delete", **CREDENTIALS["moco"])
        )
        assert update.id == _sha(body) + ":project.update"
        assert delete.id == _sha(body) + ":project.delete"

    def test_moco_replay_with_fresh_unsigned_headers_keeps_the_key(self) -> None:
        body = sample_body("moco", "project.update", {})
        handler = make_handler("moco", dedupe=None)
        first = handler.verify(
            body, sign("moco", body, event="project.update", timestamp=1, **CREDENTIALS["moco"])
        )
        again = handler.verify(
            body,
            sign(
                "moco", body, event="project.update", timestamp=2, user_id=7, **CREDENTIALS["moco"]
            ),
        )
        assert first.id == again.id

    def test_moonsense_event_header_counts_only_without_event_type_in_the_body(self) -> None:
        handler = make_handler("moonsense", dedupe=None)
        bare = b'{"session_id": "s"}'
        created = handler.verify(
            bare, sign("moonsense", bare, event="session.created", **CREDENTIALS["moonsense"])
        )
        inactive = handler.verify(
            bare, sign("moonsense", bare, event="session.inactive", **CREDENTIALS["moonsense"])
        )
        assert (created.id, inactive.id) == (
            _sha(bare) + ":session.created",
            _sha(bare) + ":session.inactive",
        )
        typed = sample_body("moonsense", "session.created", {})
        one = handler.verify(
            typed, sign("moonsense", typed, event="anything", **CREDENTIALS["moonsense"])
        )
        assert one.id == _sha(typed) and one.events[0].type == "session.created"

    def test_petal_is_keyed_on_its_body(self) -> None:
        body = sample_body("petal", "blink", {})
        delivery = make_handler("petal", dedupe=None).verify(
            body, sign("petal", body, **CREDENTIALS["petal"])
        )
        assert delivery.id == _sha(body)


class TestEventKeys:
    def test_default_is_the_events_id(self) -> None:
        provider = get_provider("mindpeeker")
        body = sample_body("mindpeeker", "session.created", {})
        event = (
            make_handler("mindpeeker")
            .verify(body, sign("mindpeeker", body, **CREDENTIALS["mindpeeker"]))
            .events[0]
        )
        assert provider.event_key(event) == event.id and event.id is not None

    def test_petal_message_counters_are_no_key(self) -> None:
        body = sample_body("petal", "blink", {})
        event = (
            make_handler("petal")
            .verify(body, sign("petal", body, **CREDENTIALS["petal"]))
            .events[0]
        )
        assert event.id == "21"  # the stream's counter, which restarts
        assert get_provider("petal").event_key(event) is None

    def test_momentum_records_with_an_event_id_are_keyed_on_it(self) -> None:
        body = sample_batch(["open", "click"])
        events = (
            make_handler("momentum")
            .verify(body, sign("momentum", body, **CREDENTIALS["momentum"]))
            .events
        )
        ids = [r["msys"][next(iter(r["msys"]))]["event_id"] for r in json.loads(body)]
        assert [get_provider("momentum").event_key(e) for e in events] == ids

    def test_momentum_records_without_event_id_are_keyed_on_their_content(self) -> None:
        provider = get_provider("momentum")
        record = {
            "msys": {"track_event": {"type": "open", "rcpt_to": "a@example.com", "timestamp": "1"}}
        }
        compact = json.dumps([record], separators=(",", ":")).encode()
        spaced = json.dumps([record], indent=2).encode()
        other = json.dumps(
            [{"msys": {"track_event": {"type": "open", "rcpt_to": "b@example.com"}}}]
        ).encode()
        handler = make_handler("momentum", dedupe=None)

        def key(body: bytes, batch_id: str) -> str | None:
            headers = sign("momentum", body, batch_id=batch_id, **CREDENTIALS["momentum"])
            (event,) = handler.verify(body, headers).events
            assert isinstance(event, MomentumEvent) and event.id is None
            return provider.event_key(event)

        # A replay under a fresh (unsigned) batch id, re-spaced, keeps the record's key.
        first = key(compact, "batch-1")
        assert first is not None and first.startswith("content:")
        assert key(spaced, "batch-2") == first
        assert key(other, "batch-3") != first
        # The class is part of the content.
        moved = json.dumps([{"msys": {"message_event": record["msys"]["track_event"]}}]).encode()
        assert key(moved, "batch-4") != first

    def test_a_record_too_deep_to_encode_has_no_key_rather_than_an_error(self) -> None:
        # The decoders refuse such a body; an event built by hand can still hold it.
        deep: list[Any] = []
        node = deep
        for _ in range(100_000):
            node.append([])
            node = node[0]
        event = MomentumEvent(
            provider="momentum", type="open", data=FrozenObject({"deep": deep}), event_class="x"
        )
        assert get_provider("momentum").event_key(event) is None


class TestRetryWindows:
    @pytest.mark.parametrize(
        ("provider", "window", "ttl"),
        [
            # Momentum retries for 4 h, SparkPost's cloud for 8: one provider serves both.
            ("momentum", 8 * 3600, 10 * 3600),
            ("mindpeeker", 6155, 2.5 * 3600),
            ("moco", 2 * 3600, DEFAULT_TTL),
            ("moonsense", 2 * 3600, DEFAULT_TTL),
            ("petal", 2 * 3600, DEFAULT_TTL),
        ],
    )
    def test_each_senders_window_and_default_ttl(
        self, provider: str, window: float, ttl: float
    ) -> None:
        sender = get_provider(provider)
        assert sender.retry_window == window
        assert sender.default_dedupe_ttl == ttl

    @pytest.mark.parametrize("provider", PROVIDER_NAMES)
    def test_the_ttl_outlasts_the_retries(self, provider: str) -> None:
        sender = get_provider(provider)
        assert sender.default_dedupe_ttl > sender.retry_window

    def test_the_default_ttl_follows_the_retry_window(self) -> None:
        class RetriesForADay(type(get_provider("moco"))):  # type: ignore[misc]
            retry_window = 24 * 3600.0

        sender = RetriesForADay()
        secret = CREDENTIALS["moco"]["secret"]
        # A quarter more than the window, rounded up to the half hour.
        assert WebhookHandler(sender, secret=secret).dedupe_ttl == 30 * 3600
        assert WebhookHandler(sender, secret=secret, dedupe_ttl=60).dedupe_ttl == 60


# -- one signed event, one key: whatever may vary between two accepted copies of it ------

#: Two secrets (a key rotation) per signing sender; two credentials per token sender.
ROTATING: dict[str, list[str]] = {
    "moonsense": ["moonsense-old", "moonsense-new"],
    "moco": ["1d608b9d72219b90ff2393a1d3ee0ac0", "0f1e2d3c4b5a69788796a5b4c3d2e1f0"],
    "mindpeeker": ["whsec_mindpeeker_old", "whsec_mindpeeker_new"],
    "github": ["It's a Secret to Everybody", "another secret"],
    "standard-webhooks": [
        "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        "whsec_c2Vjb25kLXN0YW5kYXJkLXNlY3JldA==",
    ],
    "svix": ["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "whsec_c2Vjb25kLXN2aXgtc2VjcmV0"],
}
SHARED: dict[str, Any] = {
    "token": "shared-token",
    "basic_auth": ("hookshield", "basic-password"),
    "bearer_token": "bearer-token",
}


def _secrets(name: str) -> list[str]:
    """The secrets a signing sender's handler rotates between (its test one by default)."""
    return ROTATING.get(name) or [CREDENTIALS[name]["secret"]]


def _shared(name: str) -> dict[str, Any]:
    """The shared credentials of :data:`SHARED` that a sender without a scheme accepts."""
    return {k: v for k, v in SHARED.items() if k in get_provider(name).accepts}


KEY_HANDLERS = {
    name: WebhookHandler(name, secret=_secrets(name), dedupe=None)
    if get_provider(name).scheme is not None
    else WebhookHandler(name, **_shared(name), dedupe=None)
    for name in PROVIDER_NAMES
}
#: One event of each sender, fixed: its copies differ only where the sender (or a
#: replay of it) may make them differ.
EVENTS = {name: sample_body(name, a_type(name), {"n": 1}) for name in PROVIDER_NAMES}
FORM = "application/x-www-form-urlencoded"
_TEXT = st.text(st.characters(min_codepoint=33, max_codepoint=126), max_size=24)
_JSON_TYPES = ["application/json", "application/json; charset=utf-8", "Application/JSON"]


def _case(data: st.DataObject) -> Callable[[str], str]:
    change: Callable[[str], str] = data.draw(
        st.sampled_from([str.lower, str.upper, str.title, lambda name: name]), label="name case"
    )
    return change


def _copy_of(provider: str, data: st.DataObject) -> tuple[bytes, list[tuple[str, str]]]:
    """An accepted copy of ``provider``'s one event, as it may come off the wire.

    What may differ between copies: the secret that signed it (a key rotation) or the
    credential that came with it, every header no signature covers (their names'
    case, a Content-Type's spelling, delivery GUIDs, MOCO's timestamp, user and the
    case of its target and action, GitHub's event header, Momentum's batch id), the
    case of a hex signature, Standard Webhooks' and Svix's timestamp (a retry is signed again)
    and the other signatures beside the one that matches, Momentum's spacing, and
    Moonsense's JSON sent as a form, percent-encoded either way, under the signature
    of the JSON.
    """
    body = EVENTS[provider]
    wire = body
    options: dict[str, Any] = {}
    if get_provider(provider).scheme is not None:
        options["secret"] = data.draw(st.sampled_from(_secrets(provider)), label="secret")
    else:
        method = data.draw(st.sampled_from(sorted(_shared(provider))), label="credential")
        options[method] = SHARED[method]
    content_type = data.draw(st.sampled_from(_JSON_TYPES), label="content type")
    if provider == "moonsense":
        # The body names its type: the unsigned X-Moonsense-Event is only a label.
        names = [*PROVIDERS["moonsense"].event_types, "anything"]
        options["event"] = data.draw(st.sampled_from(names), label="X-Moonsense-Event")
        if data.draw(st.booleans(), label="as a form"):
            # Signed over the payload: the same signature as the JSON body's.
            quote = data.draw(st.sampled_from([urllib.parse.quote_plus, urllib.parse.quote]))
            wire = b"payload=" + quote(body.decode(), safe="").encode()
            wire += data.draw(st.sampled_from([b"", b"&", b"&&"]), label="empty fields")
            content_type = data.draw(st.sampled_from([FORM, FORM + "; charset=utf-8"]))
    elif provider == "moco":
        options["timestamp"] = data.draw(st.integers(0, 2**41), label="X-Moco-Timestamp")
        options["user_id"] = data.draw(st.integers(0, 2**40), label="X-Moco-User-Id")
        options["account_url"] = "https://" + data.draw(_TEXT, label="account") + ".example"
        options["event"] = "project.update"
    elif provider == "github":
        # Neither the delivery GUID nor the event header is signed.
        options["event_id"] = str(uuid.UUID(int=data.draw(st.integers(0, 2**128 - 1))))
        options["event"] = data.draw(
            st.sampled_from(["ping", "issues", "Issues", "pull_request", "push", "x"]),
            label="X-GitHub-Event",
        )
    elif provider in ("standard-webhooks", "svix"):
        # A retry is signed again, at its own time, with the same message id.
        options["event_id"] = "msg_2KWPBgLlAfxdpx2AI54pPJ85f1W"
        options["timestamp"] = int(time.time()) - data.draw(st.integers(0, 240))
    elif provider == "momentum":
        options["batch_id"] = data.draw(_TEXT, label="batch id") or None
        indent = data.draw(st.sampled_from([None, 0, 2]), label="spacing")
        wire = json.dumps(json.loads(body), indent=indent).encode()
        body = wire
    headers = sign(provider, body, **options)
    headers["Content-Type"] = content_type
    if provider == "moco":
        for name in ("X-Moco-Target", "X-Moco-Event"):
            spelled = data.draw(st.sampled_from([str.lower, str.upper, str.title]))
            headers[name] = spelled(headers[name]) + data.draw(st.sampled_from(["", " "]))
    if provider in ("standard-webhooks", "svix") and data.draw(
        st.booleans(), label="more signatures"
    ):
        other = "v1," + base64.b64encode(bytes(32)).decode()
        name = PROVIDERS[provider].signature_header or ""
        headers[name] = f"{other} {headers[name]} v1a,xyz"
    if provider in ("mindpeeker", "github", "moco", "moonsense") and data.draw(st.booleans()):
        name = PROVIDERS[provider].signature_header or ""
        headers[name] = headers[name].upper()  # hex digits, compared in lower case
    extra = data.draw(
        st.dictionaries(st.sampled_from(["User-Agent", "X-Request-Id", "Via", "Date"]), _TEXT),
        label="other headers",
    )
    case = _case(data)
    return wire, [(case(name), value) for name, value in {**headers, **extra}.items()]


def _what_runs_once(provider: str, delivery: Delivery) -> tuple[str | None, ...]:
    """The keys that decide whether a delivery's routes run: the delivery's, or, for a
    sender of batches, each record's (the batch key only saves the work)."""
    sender = get_provider(provider)
    if sender.dedupe_events:
        return tuple(sender.event_key(event) for event in delivery.events)
    return (delivery.id,)


@pytest.mark.parametrize("provider", PROVIDER_NAMES)
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_two_accepted_copies_of_one_signed_event_have_one_key(
    provider: str, data: st.DataObject
) -> None:
    handler = KEY_HANDLERS[provider]
    first = handler.verify(*_copy_of(provider, data))
    second = handler.verify(*_copy_of(provider, data))
    # One event: the same signed data (the unsigned headers around it may differ).
    assert [e.data for e in first.events] == [e.data for e in second.events]
    assert _what_runs_once(provider, first) == _what_runs_once(provider, second)
    assert None not in _what_runs_once(provider, first)
