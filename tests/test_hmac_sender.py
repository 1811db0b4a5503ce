"""HmacSender: a description is checked when built, and drives verification exactly."""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import json
from dataclasses import dataclass
from typing import Any

import pytest

from hookshield import (
    Event,
    HmacSender,
    InvalidSignature,
    MalformedSignature,
    MissingCredentials,
    TimestampOutOfRange,
    WebhookError,
    WebhookHandler,
)
from hookshield.providers import get_provider
from hookshield.testing import credentials, event_types, sample_delivery, sign

MOCO_KEY = "1d608b9d72219b90ff2393a1d3ee0ac0"
MINDPEEKER_SECRET = "whsec_mindpeeker"

# MindPeeker and MOCO (PROVIDERS.md), said with a description instead of a module.
MINDPEEKER = HmacSender(
    name="mindpeeker",
    signature_header="X-MindPeeker-Signature",
    signature_prefix="sha256=",
    type_field="type",
    id_field="id",
    time_field="created_at",
    data_field="data",
)
MOCO = HmacSender(
    name="moco",
    signature_header="X-Moco-Signature",
    type_header=("X-Moco-Target", "X-Moco-Event"),
    type_lowercase=True,
)


def _outcome(
    handler: WebhookHandler, body: bytes, headers: dict[str, str], *, timed: bool = True
) -> Any:
    try:
        (event,) = handler.verify(body, headers).events
    except WebhookError as error:
        return (type(error), error.status)
    # MOCO's time is an unsigned header in milliseconds, which a description does not read.
    return (event.type, event.id, event.timestamp if timed else None, event.data.thaw())


def _variants(
    body: bytes, headers: dict[str, str], header: str
) -> list[tuple[bytes, dict[str, str]]]:
    signature = headers[header]
    flipped = signature[:-1] + ("0" if signature[-1] != "0" else "1")
    return [
        (body, headers),
        (body + b" ", headers),
        (body.replace(b"{", b"{ ", 1), headers),
        (body, {**headers, header: flipped}),
        (body, {**headers, header: signature.upper()}),
        (body, {**headers, header: signature[:-2]}),
        (body, {**headers, header: "sha256=" + signature.rpartition("=")[2]}),
        (body, {**headers, header: ""}),
        (body, {k: v for k, v in headers.items() if k != header}),
        (b"[1, 2]", headers),
        (b"not json", headers),
    ]


@pytest.mark.parametrize(
    ("name", "description", "secret", "header"),
    [
        ("mindpeeker", MINDPEEKER, MINDPEEKER_SECRET, "X-MindPeeker-Signature"),
        ("moco", MOCO, MOCO_KEY, "X-Moco-Signature"),
    ],
)
def test_a_description_accepts_and_refuses_exactly_as_the_built_in_sender(
    name: str, description: HmacSender, secret: str, header: str
) -> None:
    built_in = WebhookHandler(name, secret=secret)
    described = WebhookHandler(description, secret=secret)
    checked = 0
    for kind in event_types(name):
        body, headers = sample_delivery(name, kind, secret=secret)
        for variant_body, variant_headers in _variants(body, headers, header):
            expected = _outcome(built_in, variant_body, variant_headers, timed=name != "moco")
            got = _outcome(described, variant_body, variant_headers, timed=name != "moco")
            assert got == expected
            checked += 1
    assert checked > 100
    # And at least one of each: accepted, and refused as forged.
    body, headers = sample_delivery(name, event_types(name)[0], secret=secret)
    assert _outcome(described, body, headers)[0] == event_types(name)[0]
    assert _outcome(described, body + b" ", headers) == (InvalidSignature, 401)


def test_mocos_documented_vector_through_a_description() -> None:
    body = b'{id: 111, description: "a description"}'  # MOCO's example: not JSON
    signature = "09f9ebc0adeb597cb7cb37fd72b20be0caeca6bd9fb67416b663606bd7f89183"
    WebhookHandler(MOCO, secret=MOCO_KEY).authenticate(body, {"X-Moco-Signature": signature})


# -- a sender with the timestamp inside its signature header ---------------------------

ACME = HmacSender(
    name="acme",
    title="Acme",
    signature_header="Acme-Signature",
    signature_prefix="v1=",
    signature_separator=",",
    timestamp_header="Acme-Signature",
    timestamp_prefix="t=",
    signed_content="{timestamp}.{body}",
    key_encoding="hex",
    key_prefix="acme_",
    tolerance=60,
    clock=lambda: 1_700_000_000,
    type_field="data.kind",
    id_field="id",
)
ACME_KEY = "acme_" + "ab" * 16


def acme_signature(body: bytes, timestamp: int, key: bytes = bytes.fromhex("ab" * 16)) -> str:
    digest = hmac.new(key, f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def test_a_timestamp_inside_the_signature_header() -> None:
    handler = WebhookHandler(ACME, secret=ACME_KEY)
    body = b'{"id": "evt_1", "data": {"kind": "order.paid"}}'
    delivery = handler.verify(body, {"Acme-Signature": acme_signature(body, 1_700_000_000)})
    (event,) = delivery.events
    assert (event.provider, event.type, event.id, delivery.id) == (
        "acme",
        "order.paid",
        "evt_1",
        "event:evt_1",
    )
    assert event.timestamp is not None and event.timestamp.timestamp() == 1_700_000_000
    old = acme_signature(body, 1_700_000_000 - 61)
    with pytest.raises(TimestampOutOfRange):
        handler.verify(body, {"Acme-Signature": old})
    rotated = acme_signature(body, 1_700_000_000) + ",v1=" + "00" * 32 + ",v0=abc"
    handler.verify(body, {"Acme-Signature": rotated})
    for bad in ("v1=" + "00" * 32, "t=1,t=2,v1=00", "t=soon,v1=00"):
        with pytest.raises(MalformedSignature):
            handler.verify(body, {"Acme-Signature": bad})


def test_sign_and_sample_follow_the_description() -> None:
    handler = WebhookHandler(ACME, secret=ACME_KEY)
    provider = get_provider(ACME)
    body = provider.sample("order.paid", {"total": 3})
    headers = provider.sign(body, secret=ACME_KEY)
    assert headers["Acme-Signature"] == acme_signature(body, 1_700_000_000)
    (event,) = handler.verify(body, headers).events
    assert (event.type, event.data["total"]) == ("order.paid", 3)
    assert get_provider(provider) is provider
    assert get_provider(ACME) is provider
    assert repr(provider) == "<provider acme>"


def test_a_signed_header_must_be_present_and_text() -> None:
    sender = HmacSender(
        name="relay",
        signature_header="X-Sig",
        signed_content="{x-account}:{body}",
        type_header="X-Event",
        id_header="X-Account",
    )
    assert sender.id_is_signed
    handler = WebhookHandler(sender, secret="k")
    headers = get_provider(sender).sign(b"{}", secret="k", event="a.b", event_id="acct_1")
    assert headers["X-Account"] == "acct_1"
    assert handler.verify(b"{}", headers).id == "event:acct_1"
    with pytest.raises(MissingCredentials, match="x-account"):
        handler.verify(b"{}", {k: v for k, v in headers.items() if k != "X-Account"})
    with pytest.raises(MalformedSignature, match="not text"):
        handler.verify(b"{}", {**headers, "X-Account": "\ud800"})


def test_an_unsigned_id_is_not_the_dedupe_key() -> None:
    sender = HmacSender(name="hooks", signature_header="X-Sig", type_field="t", id_header="X-Id")
    assert not sender.id_is_signed
    handler = WebhookHandler(sender, secret="k")
    body = b'{"t": "x"}'
    headers = get_provider(sender).sign(body, secret="k", event_id="one")
    key = handler.verify(body, headers).id
    # The type is read from the signed body, which the body's hash covers already.
    assert key == f"sha256:{hashlib.sha256(body).hexdigest()}"
    assert handler.verify(body, {**headers, "X-Id": "two"}).id == key


def test_an_empty_signed_id_is_no_key() -> None:
    sender = HmacSender(name="hooks", signature_header="X-Sig", type_field="t", id_field="id")
    handler = WebhookHandler(sender, secret="k")
    keys = set()
    for body in (b'{"t": "x", "id": "", "n": 1}', b'{"t": "x", "id": "", "n": 2}'):
        headers = get_provider(sender).sign(body, secret="k")
        delivery = handler.verify(body, headers)
        assert delivery.events[0].id == ""
        keys.add(delivery.id)
    # Keyed on "event:" alone, the second would be dropped as a duplicate of the first.
    assert keys == {
        f"sha256:{hashlib.sha256(body).hexdigest()}"
        for body in (b'{"t": "x", "id": "", "n": 1}', b'{"t": "x", "id": "", "n": 2}')
    }


def test_a_type_header_is_in_the_key_unless_the_description_leaves_it_out() -> None:
    body = b'{"id": 7}'
    keys: dict[bool, set[str]] = {}
    for type_in_key in (True, False):
        sender = dataclasses.replace(
            MOCO, name=f"moco-{type_in_key}".lower(), type_in_key=type_in_key
        )
        handler = WebhookHandler(sender, secret=MOCO_KEY)
        keys[type_in_key] = {
            handler.verify(body, get_provider(sender).sign(body, secret=MOCO_KEY, event=event)).id
            for event in ("activity.update", "activity.delete")
        }
    digest = "sha256:" + hashlib.sha256(body).hexdigest()
    # By default one body under two types is two events (MOCO's update and delete).
    assert keys[True] == {digest + ":activity.update", digest + ":activity.delete"}
    # Left out, the body alone is the key: a replay under another type is a duplicate.
    assert keys[False] == {digest}


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderEvent(Event):
    """A typed event of a described sender."""

    @property
    def total(self) -> int | None:
        value = self._get("total")
        return value if isinstance(value, int) else None


@dataclass(frozen=True, slots=True, kw_only=True)
class NeedsMore(Event):
    extra: str


def test_a_typed_event_class() -> None:
    sender = dataclasses.replace(ACME, event_class=OrderEvent, data_field="data")
    body = b'{"id": "e", "data": {"kind": "order.paid", "total": 7}}'
    (event,) = (
        WebhookHandler(sender, secret=ACME_KEY)
        .verify(body, {"Acme-Signature": acme_signature(body, 1_700_000_000)})
        .events
    )
    assert isinstance(event, OrderEvent) and event.total == 7


BASE: dict[str, Any] = {"name": "acme", "signature_header": "X-Sig", "type_field": "type"}


@pytest.mark.parametrize(
    ("change", "error", "match"),
    [
        ({"name": "Acme Corp"}, ValueError, "lower-case"),
        ({"name": 3}, TypeError, "name must be a str"),
        ({"signature_header": "X Sig"}, ValueError, "not an HTTP header name"),
        ({"signature_header": ""}, ValueError, "must not be empty"),
        ({"encoding": "base32"}, ValueError, "'hex' or 'base64'"),
        ({"key_encoding": "rot13"}, ValueError, "'text', 'hex' or 'base64'"),
        ({"signature_separator": "a"}, ValueError, "letters or digits"),
        (
            {"signature_separator": ",", "signature_prefix": "v1,"},
            ValueError,
            "contains the separator",
        ),
        ({"max_signatures": 0}, ValueError, "from 1 to 64"),
        ({"max_signatures": True}, ValueError, "from 1 to 64"),
        ({"signed_content": "{id}.{body"}, ValueError, "unmatched brace"),
        ({"signed_content": "{id}"}, ValueError, "exactly once"),
        ({"signed_content": "{body}{body}"}, ValueError, "exactly once"),
        ({"signed_content": "{a b}.{body}"}, ValueError, "neither"),
        ({"signed_content": "{x-sig}.{body}"}, ValueError, "signature header itself"),
        ({"signed_content": "{timestamp}.{body}"}, ValueError, "set timestamp_header"),
        ({"timestamp_header": "X-Time"}, ValueError, "unsigned timestamp stops no replay"),
        (
            {"timestamp_header": "X-Sig", "signed_content": "{timestamp}{body}"},
            ValueError,
            "timestamp_prefix",
        ),
        ({"timestamp_prefix": "t="}, ValueError, "needs timestamp_header"),
        (
            {"timestamp_header": "X-T", "timestamp_prefix": "t=", "signed_content": "{x-t}{body}"},
            ValueError,
            "inside the signature header",
        ),
        (
            {
                "timestamp_header": "X-Sig",
                "timestamp_prefix": "v1=t",
                "signature_prefix": "v1=",
                "signature_separator": ",",
                "signed_content": "{timestamp}{body}",
            },
            ValueError,
            "tell the items apart",
        ),
        ({"tolerance": 0}, ValueError, "positive"),
        ({"tolerance": float("inf")}, ValueError, "positive"),
        ({"tolerance": "300"}, TypeError, "number of seconds"),
        ({"clock": 0}, TypeError, "clock"),
        ({"type_field": None}, ValueError, "exactly one"),
        ({"type_header": "X-Event"}, ValueError, "exactly one"),
        ({"type_field": None, "type_header": ()}, TypeError, "non-empty tuple"),
        ({"type_field": "a..b"}, ValueError, "JSON path"),
        ({"id_field": "id", "id_header": "X-Id"}, ValueError, "at most one"),
        ({"id_header": "X Id"}, ValueError, "header name"),
        ({"data_field": ""}, ValueError, "must not be empty"),
        ({"title": "a\nb"}, ValueError, "control characters"),
        ({"event_class": dict}, TypeError, "subclass of hookshield.Event"),
        ({"event_class": NeedsMore}, TypeError, "NeedsMore.extra has no default"),
        ({"event_types": "a.b"}, TypeError, "sequence"),
        ({"event_types": ["a", ""]}, ValueError, "must not be empty"),
        ({"accepts_form": "yes"}, TypeError, "True or False"),
        ({"type_in_key": 0}, TypeError, "True or False"),
        ({"max_body_size": 0}, ValueError, "max_body_size must be a positive"),
        ({"max_body_size": True}, ValueError, "max_body_size must be a positive"),
        ({"max_body_size": 1.5e6}, ValueError, "max_body_size must be a positive"),
        ({"type_fallback": ""}, ValueError, "must not be empty"),
        ({"type_fallback": "any.*"}, ValueError, "'\\*' is for routes"),
        ({"type_fallback": 1}, TypeError, "type_fallback must be a str"),
        (
            {"type_field": None, "type_header": "X-Event", "type_fallback": "x"},
            ValueError,
            "type_fallback is for a type_field",
        ),
        ({"data_optional": True}, ValueError, "data_optional is for a data_field"),
        ({"data_optional": 1, "data_field": "data"}, TypeError, "True or False"),
        ({"ed25519_prefix": "v1a,"}, ValueError, "tell the signatures apart"),
        (
            {"signature_prefix": "v1", "ed25519_prefix": "v1a"},
            ValueError,
            "tell the signatures apart",
        ),
        (
            {"signature_prefix": "v1,", "ed25519_prefix": "v1a, x", "signature_separator": " "},
            ValueError,
            "contains the separator",
        ),
        ({"signature_prefix": "v1,", "ed25519_prefix": ""}, ValueError, "must not be empty"),
    ],
)
def test_a_misconfiguration_is_refused_at_construction(
    change: dict[str, Any], error: type[Exception], match: str
) -> None:
    with pytest.raises(error, match=match):
        HmacSender(**(BASE | change))


@pytest.mark.parametrize(
    ("key_encoding", "secret", "match"),
    [
        ("hex", "abc", "not valid hex"),
        ("base64", "@@@@", "not valid base64"),
        ("text", "pre_", "empty"),
    ],
)
def test_an_undecodable_secret_is_refused_by_the_handler(
    key_encoding: str, secret: str, match: str
) -> None:
    sender = HmacSender(**BASE, key_encoding=key_encoding, key_prefix="pre_")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=match):
        WebhookHandler(sender, secret=secret)


def test_a_description_sets_its_handlers_default_body_limit() -> None:
    assert WebhookHandler(HmacSender(**BASE), secret="s").max_body_size == 1024 * 1024
    small = HmacSender(**BASE, max_body_size=2048)
    assert WebhookHandler(small, secret="s").max_body_size == 2048
    assert WebhookHandler(small, secret="s", max_body_size=10).max_body_size == 10


def test_a_missing_signature_or_timestamp_is_refused_from_the_headers() -> None:
    sender = HmacSender(
        **BASE,
        timestamp_header="X-Time",
        signed_content="{x-time}.{body}",
        clock=lambda: 1_700_000_000,
    )
    handler = WebhookHandler(sender, secret="s")
    body = sender.provider().sample("order.paid", {})
    headers = sender.provider().sign(body, secret="s")
    handler.check_headers(headers)
    for name, error in (("X-Sig", MissingCredentials), ("X-Time", MissingCredentials)):
        with pytest.raises(error, match=name):
            handler.check_headers({k: v for k, v in headers.items() if k != name})
    with pytest.raises(MalformedSignature, match="Unix seconds"):
        handler.check_headers({**headers, "X-Time": "yesterday"})
    with_id = WebhookHandler(
        HmacSender(**BASE, id_header="X-Id", signed_content="{x-id}.{body}"), secret="s"
    )
    with pytest.raises(MissingCredentials, match="x-id"):
        with_id.check_headers({"X-Sig": "00" * 32})
    # A signature that does not match is judged with the body, not before it.
    handler.check_headers({**headers, "X-Sig": "00" * 32})
    with pytest.raises(InvalidSignature):
        handler.authenticate(body, {**headers, "X-Sig": "00" * 32})


def test_event_types_are_kept_as_a_tuple_and_routing_checks_them() -> None:
    kinds = ["order.paid", "order.refunded"]
    sender = HmacSender(**BASE, event_types=kinds)  # type: ignore[arg-type]
    assert sender.event_types == ("order.paid", "order.refunded")
    handler = WebhookHandler(sender, secret="k")
    assert handler.event_types == ("order.paid", "order.refunded")
    with pytest.warns(UserWarning, match="did you mean 'order.paid'"):
        handler.on("order.payd")


@pytest.mark.parametrize(
    ("created", "expected"),
    [
        ("2025-01-15T10:30:00Z", 1736937000.0),
        (1736937000, 1736937000.0),
        (1736937000000, 1736937000.0),  # milliseconds, read by magnitude
        (1736937000.5, 1736937000.5),
        (True, None),
        ("not a time", None),
        ([1], None),
        (None, None),
    ],
)
def test_the_event_time_from_a_field(created: Any, expected: float | None) -> None:
    sender = HmacSender(name="timed", signature_header="X-Sig", type_field="t", time_field="at")
    body = json.dumps({"t": "x", "at": created}).encode()
    headers = get_provider(sender).sign(body, secret="k")
    (event,) = WebhookHandler(sender, secret="k").verify(body, headers).events
    assert (event.timestamp.timestamp() if event.timestamp else None) == expected


def test_a_generic_sample_puts_each_field_where_described() -> None:
    sender = HmacSender(
        name="nested",
        signature_header="X-Sig",
        type_field="meta.kind",
        id_field="meta.id",
        time_field="meta.at",
        data_field="payload",
    )
    body = get_provider(sender).sample("thing.made", {"size": 2})
    payload = json.loads(body)
    assert payload["meta"]["kind"] == "thing.made"
    assert payload["meta"]["id"].startswith("evt_")
    assert payload["payload"] == {"size": 2}
    (event,) = (
        WebhookHandler(sender, secret="k")
        .verify(body, get_provider(sender).sign(body, secret="k"))
        .events
    )
    assert (event.type, event.id, event.data["size"]) == ("thing.made", payload["meta"]["id"], 2)
    assert event.timestamp is not None and event.timestamp.year == 2025


def test_a_subclass_keeps_the_attributes_it_sets() -> None:
    from hookshield.providers._hmac import HmacProvider

    class Renamed(HmacProvider):
        sender = MOCO
        title = "MOCO, described"

    assert (Renamed.name, Renamed.title, Renamed.signature_header) == (
        "moco",
        "MOCO, described",
        "X-Moco-Signature",
    )


@pytest.mark.parametrize("name", ["mindpeeker", "moco", "github", "standard-webhooks"])
def test_the_built_in_descriptions_verify_and_sign_with_their_one_scheme(name: str) -> None:
    from hookshield.providers import HmacProvider

    provider = get_provider(name)
    assert isinstance(provider, HmacProvider)
    assert provider.scheme is provider.sender.scheme
    secret = credentials(name)["secret"]
    body = provider.sample((*provider.event_types, "invoice.paid")[0], {})
    signed = sign(name, body, secret=secret)
    header = provider.sender.signature_header
    stamp = signed.get("webhook-timestamp")  # the one of them that signs a time
    scheme = provider.sender.scheme
    expected = scheme.sign(body, secret, signed, timestamp=None if stamp is None else int(stamp))
    assert signed[header] == expected[header]


# -- the payload shapes a description may allow ------------------------------------------

LENIENT = HmacSender(
    name="lenient",
    signature_header="X-Sig",
    type_field="kind",
    type_fallback="unnamed",
    data_field="payload",
    data_optional=True,
)


@pytest.mark.parametrize(
    ("body", "kind", "data"),
    [
        (b'{"kind": "a.b", "payload": {"n": 1}}', "a.b", {"n": 1}),
        (b'{"kind": "a.b", "n": 1}', "a.b", {"kind": "a.b", "n": 1}),
        (b'{"n": 1}', "unnamed", {"n": 1}),
        (b'{"kind": ["a"], "payload": {"n": 1}}', "unnamed", {"n": 1}),
        (b"[1, 2]", "unnamed", {}),
    ],
)
def test_a_fallback_type_and_optional_data(body: bytes, kind: str, data: dict[str, Any]) -> None:
    handler = WebhookHandler(LENIENT, secret="k")
    (event,) = handler.verify(body, LENIENT.provider().sign(body, secret="k")).events
    assert (event.type, event.data.thaw()) == (kind, data)


def test_without_a_fallback_a_payload_without_its_type_is_refused() -> None:
    strict = dataclasses.replace(LENIENT, type_fallback=None, data_optional=False)
    body = b'{"n": 1}'
    outcome = WebhookHandler(strict, secret="k").handle(
        body, strict.provider().sign(body, secret="k")
    )
    assert outcome.status == 400


def test_a_described_sender_with_ed25519_takes_public_keys() -> None:
    sender = HmacSender(
        name="edsender",
        signature_header="X-Sig",
        signature_prefix="v1,",
        signature_separator=" ",
        ed25519_prefix="v1a,",
        type_field="type",
    )
    provider = sender.provider()
    assert provider.accepts == frozenset({"secret", "public_key"})
    assert get_provider("github").accepts == frozenset({"secret"})
