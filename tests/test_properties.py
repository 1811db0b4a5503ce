"""Properties that must hold for every input, found by hypothesis rather than by hand."""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hookshield import (
    Claim,
    Delivery,
    FrozenArray,
    MemoryDedupeStore,
    MoonsenseEvent,
    WebhookError,
    WebhookHandler,
)
from hookshield.providers import get_provider
from hookshield.testing import event_types, sample_body, sign

from .conftest import CREDENTIALS, PROVIDER_NAMES, a_type, make_handler

HANDLERS = {name: make_handler(name, dedupe=None) for name in PROVIDER_NAMES}
UNSIGNED = {
    name: WebhookHandler(name, allow_unsigned=True, dedupe=None)
    for name in ("moonsense", "petal", "momentum")
}
HEADER_NAMES = [
    "Content-Type",
    "X-Moonsense-Signature-256",
    "X-Moco-Signature",
    "X-Moco-Target",
    "X-Moco-Event",
    "X-Moco-Timestamp",
    "X-Moco-User-Id",
    "X-MindPeeker-Signature",
    "X-MessageSystems-Webhook-Token",
    "X-MessageSystems-Batch-ID",
    "X-Petal-Token",
    "Authorization",
    "X-Moonsense-Event",
]
header_values = st.one_of(
    st.text(max_size=80),
    st.sampled_from(
        [
            "application/json",
            "application/x-www-form-urlencoded",
            "application/json; charset=utf-16",
            "sha256=" + "0" * 64,
            "0" * 64,
            "Basic dTpw",
            "Bearer x",
            "Activity",
        ]
    ),
)
headers_strategy = st.lists(
    st.tuples(st.sampled_from(HEADER_NAMES) | st.text(min_size=1, max_size=20), header_values),
    max_size=8,
)
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=20,
)
bodies = st.one_of(
    st.binary(max_size=300),
    json_values.map(lambda v: json.dumps(v).encode()),
    st.sampled_from([b"", b"[" * 5000, b'[{"msys": {}}]', b"payload=%7B%7D", b"\xef\xbb\xbf{}"]),
)
handlers = st.sampled_from([*HANDLERS.values(), *UNSIGNED.values()])


def _touch(delivery: Delivery) -> None:
    # Reading every typed property must not fail either.
    for event in delivery.events:
        for name in dir(type(event)):
            if not name.startswith("_"):
                value: Any = getattr(event, name)
                if callable(value) and name == "bundle_data":
                    value("pointer_data")


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(handler=handlers, body=bodies, headers=headers_strategy)
def test_verify_returns_a_delivery_or_raises_a_webhook_error(
    handler: WebhookHandler, body: bytes, headers: list[tuple[str, str]]
) -> None:
    try:
        delivery = handler.verify(body, headers)
    except WebhookError as exc:
        assert exc.status in (400, 401, 413, 415, 431)
        assert str(exc)
    else:
        assert isinstance(delivery, Delivery)
        _touch(delivery)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(handler=handlers, body=bodies, headers=headers_strategy)
def test_handle_never_raises(
    handler: WebhookHandler, body: bytes, headers: list[tuple[str, str]]
) -> None:
    outcome = handler.handle(body, headers)
    assert outcome.status in (200, 400, 401, 413, 415, 431)
    assert outcome.response_body()


@settings(max_examples=200)
@given(
    provider=st.sampled_from(PROVIDER_NAMES),
    data=st.data(),
    # Keys that name the event type are left out: overriding them renames the event.
    overrides=st.dictionaries(
        st.text(min_size=1, max_size=8).filter(lambda k: k not in ("type", "event_type")),
        json_values,
        max_size=3,
    ),
)
def test_signed_samples_of_any_data_verify(
    provider: str, data: st.DataObject, overrides: dict[str, Any]
) -> None:
    kind = data.draw(st.sampled_from(event_types(provider) or (a_type(provider),)))
    body = sample_body(provider, kind, overrides)
    delivery = HANDLERS[provider].verify(
        body, sign(provider, body, event=kind, **CREDENTIALS[provider])
    )
    assert [event.type for event in delivery.events] == [kind]


@settings(max_examples=200)
@given(
    provider=st.sampled_from(["moonsense", "moco", "mindpeeker"]),
    secret=st.text(min_size=1, max_size=40) | st.binary(min_size=1, max_size=40),
    body=st.binary(max_size=200),
    data=st.data(),
)
def test_any_change_to_a_signed_body_is_detected(
    provider: str, secret: str | bytes, body: bytes, data: st.DataObject
) -> None:
    handler = WebhookHandler(provider, secret=secret, dedupe=None)
    headers = sign(provider, body, secret=secret)
    handler.authenticate(body, headers)
    if body:
        index = data.draw(st.integers(0, len(body) - 1))
        flip = data.draw(st.integers(1, 255))
        tampered = body[:index] + bytes([body[index] ^ flip]) + body[index + 1 :]
    else:
        tampered = b"x"
    try:
        handler.authenticate(tampered, headers)
    except WebhookError as exc:
        assert exc.status == 401
    else:
        raise AssertionError("a tampered body was accepted")


@settings(max_examples=300)
@given(key=st.binary(min_size=1, max_size=200), body=st.binary(max_size=300))
def test_signatures_equal_the_standard_librarys_hmac_for_any_key(key: bytes, body: bytes) -> None:
    # Keys longer than SHA-256's 64-byte block are hashed first (RFC 2104): both sides
    # of that boundary are drawn here.
    expected = hmac.new(key, body, hashlib.sha256).hexdigest()
    handler = WebhookHandler("moco", secret=key, dedupe=None)
    handler.authenticate(body, {"X-Moco-Signature": expected})
    assert sign("moco", body, secret=key)["X-Moco-Signature"] == expected


# Momentum batches in any JSON layout, and damaged copies of them.
records = st.lists(
    st.builds(
        lambda cls, data: {"msys": {cls: data}},
        st.sampled_from(["message_event", "track_event", "x"]),
        st.dictionaries(
            st.sampled_from(["type", "event_id", "timestamp", "rcpt_to", "k"]),
            json_values,
            max_size=5,
        ),
    )
    | json_values,  # records of the wrong shape too
    max_size=6,
)
layouts = st.sampled_from(
    [{}, {"indent": 1}, {"separators": (",", ":")}, {"separators": (" , ", " : ")}]
)


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(batch=records, layout=layouts, data=st.data())
def test_a_batch_read_record_by_record_equals_the_batch_decoded_whole(
    batch: list[Any], layout: dict[str, Any], data: st.DataObject
) -> None:
    body = json.dumps(batch, **layout).encode()
    if data.draw(st.booleans()):
        # Damage it: cut it short, or put a character somewhere.
        index = data.draw(st.integers(0, len(body)))
        extra = data.draw(st.sampled_from([b"", b",", b"]", b"[", b" ", b"x", b'"', b"\n"]))
        body = body[:index] + extra + body[index + (not extra) :]
    handler = UNSIGNED["momentum"]
    whole: list[Any] | WebhookError
    streamed: list[Any] | WebhookError
    try:
        whole = list(handler.verify(body, {}).events)
    except WebhookError as exc:
        whole = exc
    try:
        streamed = list(handler.iter_events(body, {}))
    except WebhookError as exc:
        streamed = exc
    if isinstance(whole, WebhookError):
        # Refused too.  Read in order, a record of the wrong shape may be met before
        # a syntax error further on; two syntax errors are the same fault, told alike.
        assert isinstance(streamed, WebhookError)
        assert streamed.status == whole.status == 400
        syntax = "the body is not valid JSON"
        if str(streamed).startswith(syntax) and str(whole).startswith(syntax):
            assert (type(streamed), str(streamed)) == (type(whole), str(whole))
    else:
        assert streamed == whole


# -- the JSON decoder, with or without hookshield[speedups] -----------------------------
# With msgspec installed (the test environment installs it) bodies are decoded by it;
# `nox -s tests_pure` runs these with the standard library's decoder alone.  Either
# way the values and the refusals must be the standard library's own.


def _reference(body: bytes) -> Any:
    def refuse(name: str) -> Any:
        raise ValueError(f"{name} is not JSON")

    return json.loads(body.decode("utf-8"), parse_constant=refuse)


def _same(a: Any, b: Any) -> bool:
    # Equal values of the same types all the way down: 1 is not 1.0, and -0.0 is not
    # 0.0.  Iterative: the decoders accept nesting deeper than Python's recursion limit.
    pairs = [(a, b)]
    while pairs:
        x, y = pairs.pop()
        if type(x) is not type(y):
            return False
        if isinstance(x, dict):
            if list(x) != list(y):
                return False
            pairs.extend((x[k], y[k]) for k in x)
        elif isinstance(x, list):
            if len(x) != len(y):
                return False
            pairs.extend(zip(x, y, strict=True))
        elif isinstance(x, float):
            if x.hex() != y.hex():
                return False
        elif x != y:
            return False
    return True


def _envelope(fragment: bytes) -> bytes:
    return b'{"type":"session.completed","id":"evt_1","data":{"v":' + fragment + b"}}"


MINDPEEKER = HANDLERS["mindpeeker"]

# Text that is JSON, nearly JSON, or JSON's edge cases: long and signed numbers,
# exponents, escapes (lone surrogates among them), duplicate keys, deep nesting.
json_texts = st.one_of(
    json_values.map(lambda v: json.dumps(v)),
    st.builds(
        lambda v, ascii_only: json.dumps(v, ensure_ascii=ascii_only),
        json_values,
        st.booleans(),
    ),
    st.text(alphabet='{}[],:"\\ -+.eE0123456789tfnrualsuU\u00e9\ud800\u2028', max_size=40),
    st.sampled_from(
        [
            "1e400",
            "-1e400",
            "1" * 4301,
            "NaN",
            "-Infinity",
            '"\\ud800"',
            '"\\udc00\\ud800"',
            '{"a":1,"b":2,"a":3}',
            "[" * 2000 + "]" * 2000,
            "18446744073709551616",
            "-9223372036854775809",
            "2.2250738585072011e-308",
            "0." + "0" * 400 + "1",
            "1.7976931348623157e308",
            "-0",
            "-0.0",
            "1E+2",
        ]
    ),
)


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(text=json_texts)
def test_any_json_text_decodes_to_the_standard_librarys_values_or_is_refused_alike(
    text: str,
) -> None:
    body = _envelope(text.encode("utf-8", "surrogatepass"))
    try:
        expected = _reference(body)
    except (ValueError, RecursionError):
        expected = None
    headers = sign("mindpeeker", body, secret=CREDENTIALS["mindpeeker"]["secret"])
    try:
        delivery = MINDPEEKER.verify(body, headers)
    except WebhookError as exc:
        assert expected is None, f"refused ({exc}) what json.loads accepts"
        return
    assert expected is not None, "accepted what json.loads refuses"
    assert _same(delivery.events[0].data.thaw()["v"], expected["data"]["v"])


@given(value=json_values)
def test_signed_json_values_keep_their_exact_types(value: Any) -> None:
    body = _envelope(json.dumps(value).encode())
    headers = sign("mindpeeker", body, secret=CREDENTIALS["mindpeeker"]["secret"])
    data = MINDPEEKER.verify(body, headers).events[0].data.thaw()
    assert _same(data["v"], value)


# The in-memory de-duplication store against a plain model of its rules: a key is
# in progress (under its claim's token) until its lease ends or done until its TTL
# ends; keys are kept in the order they were last written; after each write of a new
# key the front is dropped while it has expired or the store holds more than its
# bound.  Completions and releases use the newest token of their key, which a later
# claim of it may have made stale.
dedupe_steps = st.lists(
    st.one_of(
        st.tuples(st.just("claim"), st.sampled_from("abcdefg"), st.sampled_from([1.0, 5.0, 50.0])),
        st.tuples(st.just("complete"), st.sampled_from("abcdefg"), st.sampled_from([2.0, 80.0])),
        st.tuples(st.just("release"), st.sampled_from("abcdefg"), st.just(0.0)),
        st.tuples(st.just("wait"), st.just(""), st.sampled_from([0.5, 1.0, 3.0, 20.0])),
    ),
    max_size=60,
)


@settings(max_examples=400)
@given(steps=dedupe_steps, bound=st.integers(min_value=1, max_value=5))
def test_the_memory_dedupe_store_follows_its_rules(
    steps: list[tuple[str, str, float]], bound: int
) -> None:
    now = [0.0]
    store = MemoryDedupeStore(max_entries=bound, clock=lambda: now[0])
    # key -> (done, expiry, owner), in write order
    model: dict[str, tuple[bool, float, str | None]] = {}
    tokens: dict[str, str] = {}  # key -> the newest token it was claimed under

    def write(key: str, entry: tuple[bool, float, str | None]) -> None:
        model.pop(key, None)
        model[key] = entry
        while model:
            _, oldest_expiry, _ = next(iter(model.values()))
            if oldest_expiry > now[0] and len(model) <= bound:
                break
            del model[next(iter(model))]

    for action, key, amount in steps:
        entry = model.get(key)
        live = entry is not None and entry[1] > now[0]
        token = tokens.get(key, "never-issued")
        if action == "wait":
            now[0] += amount
        elif action == "release":
            kept = entry is not None and live and (entry[0] or entry[2] != token)
            assert store.release(key, token) is not kept
            if not kept:
                model.pop(key, None)
        elif action == "complete":
            another = entry is not None and live and not entry[0] and entry[2] != token
            assert store.complete(key, token, amount) is not another
            if key in model:  # completing a claimed key: moved to the back, nothing dropped
                model.pop(key)
                model[key] = (True, now[0] + amount, None)
            else:
                write(key, (True, now[0] + amount, None))
        else:
            expected = Claim.NEW
            if entry is not None and live:
                expected = Claim.DONE if entry[0] else Claim.IN_PROGRESS
            state, new = store.claim(key, amount)
            assert state is expected
            if new is not None:
                tokens[key] = new
                write(key, (False, now[0] + amount, new))
        assert len(store) == len(model)


# -- any JSON value in any field of a valid signed sample ------------------------------
# Time fields, counters and readings are where a huge integer used to escape as an
# OverflowError; every field of every sender's sample is tried.

hostile_values = json_values | st.sampled_from(
    [
        10**400,
        -(10**400),
        2**63,
        2**64,
        10**20,
        1.7976931348623157e308,
        -1e308,
        5e-324,
        "1e400",
        "nan",
        "-inf",
        "bad_data",
        "9" * 39,
        "",
        "\u0000",
        {"a": {"b": [1, {"c": None}]}},
        [[[]]],
        True,
    ]
)


def _paths(value: Any) -> list[tuple[Any, ...]]:
    """Every path to a value inside ``value`` (keys and indices), the root included."""
    found: list[tuple[Any, ...]] = [()]
    stack: list[tuple[tuple[Any, ...], Any]] = [((), value)]
    while stack:
        path, node = stack.pop()
        if isinstance(node, (dict, list)):
            for key, child in node.items() if isinstance(node, dict) else enumerate(node):
                found.append((*path, key))
                stack.append(((*path, key), child))
    return found


def _replace(value: Any, path: tuple[Any, ...], new: Any) -> Any:
    if not path:
        return new
    node = value
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = new
    return value


def _touch_everything(provider: str, delivery: Delivery) -> None:
    _touch(delivery)
    sender = get_provider(provider)
    for event in delivery.events:
        key = sender.event_key(event)
        assert key is None or isinstance(key, str)
        for name in ("pointer_data", "text_change_data", "nope"):
            if isinstance(event, MoonsenseEvent):
                assert isinstance(event.bundle_data(name), FrozenArray)
        repr(event)
        dir(event.data)


@settings(max_examples=600, suppress_health_check=[HealthCheck.too_slow])
@given(provider=st.sampled_from(PROVIDER_NAMES), value=hostile_values, data=st.data())
def test_any_value_in_any_field_verifies_or_is_refused_and_every_property_reads(
    provider: str, value: Any, data: st.DataObject
) -> None:
    kind = data.draw(st.sampled_from(event_types(provider) or (a_type(provider),)))
    sample = json.loads(sample_body(provider, kind, {}))
    path = data.draw(st.sampled_from(_paths(sample)))
    body = json.dumps(_replace(sample, path, value)).encode()
    headers = sign(provider, body, event=kind, **CREDENTIALS[provider])
    try:
        delivery = HANDLERS[provider].verify(body, headers)
    except WebhookError as exc:
        assert exc.status == 400, str(exc)
        return
    _touch_everything(provider, delivery)
