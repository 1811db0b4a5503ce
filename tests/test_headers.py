"""Headers from whatever a framework hands over: text, bytes, repeats, and a caller's mistakes."""

from __future__ import annotations

import email.message
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hookshield import Headers, WebhookError, WebhookHandler
from hookshield.testing import sample_delivery

from .conftest import CREDENTIALS, make_handler


def test_bytes_names_and_values_are_latin1_as_asgi_sends_them() -> None:
    headers = Headers([(b"X-Moco-Target", b"Activit\xe9"), (bytearray(b"x-a"), bytearray(b"1"))])
    assert headers["x-moco-target"] == "Activit\u00e9"
    assert headers["X-A"] == "1"
    assert Headers({b"Content-Type": b"application/json"}).get("content-type") == (
        "application/json"
    )


@pytest.mark.parametrize("value", [["a", "b"], ("a", "b"), [b"a", "b"]])
def test_a_list_or_tuple_value_is_the_header_repeated(value: Any) -> None:
    headers = Headers({"X-Moco-Signature": value})
    assert headers.getall("x-moco-signature") == ["a", "b"]
    assert headers.is_repeated("X-Moco-Signature")
    assert headers["x-moco-signature"] == "a, b"


def test_a_one_item_list_is_one_header() -> None:
    headers = Headers({"X-Token": ["t"]})
    assert headers.getall("x-token") == ["t"] and not headers.is_repeated("x-token")


@pytest.mark.parametrize(
    "headers",
    [
        {"X-Moco-Signature": 5},
        {"X-Moco-Signature": {"a": "b"}},
        {"X-Moco-Signature": ["a", 5]},
        {5: "value"},
        [("a", "b", "c")],
        ["ab"],
        [5],
        [("x", object())],
        None,
        "X-Moco-Signature: abc",
        "",
        b"X-Moco-Signature: abc",
        5,
    ],
)
def test_anything_else_is_the_callers_mistake_a_type_error(headers: Any) -> None:
    # Nothing off the wire comes as these types: only calling code can pass them,
    # and a 400 would make every delivery a final refusal.
    with pytest.raises(TypeError) as caught:
        Headers(headers)
    assert not isinstance(caught.value, WebhookError)


def test_an_email_message_is_refused_with_how_to_pass_it() -> None:
    message = email.message.Message()
    message["X-Moco-Signature"] = "abc"
    with pytest.raises(TypeError, match=r"list\(message.items\(\)\)"):
        Headers(message)  # type: ignore[arg-type]
    assert Headers(list(message.items())).get("x-moco-signature") == "abc"


def test_a_value_of_none_is_a_header_not_sent() -> None:
    headers = Headers({"X-Moco-Signature": None, "X-Moco-Target": ["Activity", None]})
    assert "x-moco-signature" not in headers
    assert headers.getall("x-moco-target") == ["Activity"]


def test_verify_accepts_asgi_byte_pairs() -> None:
    body, headers = sample_delivery("mindpeeker", "session.completed", **CREDENTIALS["mindpeeker"])
    raw = [(name.lower().encode(), value.encode("latin-1")) for name, value in headers.items()]
    delivery = make_handler("mindpeeker").verify(body, raw)
    assert delivery.events[0].type == "session.completed"


def test_a_repeated_signature_given_as_a_list_is_refused_as_such() -> None:
    body, headers = sample_delivery("moco", "activity.create", **CREDENTIALS["moco"])
    signature = headers["X-Moco-Signature"]
    headers_with_list: dict[str, Any] = {**headers, "X-Moco-Signature": [signature, signature]}
    with pytest.raises(WebhookError, match="more than once") as caught:
        make_handler("moco").verify(body, headers_with_list)
    assert caught.value.status == 401


def test_a_header_of_the_wrong_type_is_a_type_error_not_an_answer() -> None:
    handler = WebhookHandler("petal", allow_unsigned=True, dedupe=None)
    with pytest.raises(TypeError, match="'content-type' must be text or bytes"):
        handler.handle(b"{}", {"Content-Type": 1.5})


def test_bytes_names_in_a_mapping_are_decoded_like_bytes_pairs() -> None:
    # A dict with bytes names (as some ASGI glue builds) must not keep them as bytes:
    # the signature header would then read as missing.
    headers = Headers({b"X-Moco-Signature": "abc"})
    assert headers.get("x-moco-signature") == "abc"
    assert "abc" not in repr(headers)


@settings(deadline=None)  # a shared machine's first example may be slow
@given(
    st.dictionaries(
        st.sampled_from(["X-Sig", "x-sig", "X-SIG", "Content-Type", "x-a"]),
        st.text(max_size=5) | st.binary(max_size=5) | st.none(),
        max_size=5,
    )
)
def test_a_dict_reads_as_the_same_headers_given_as_pairs(given: dict[str, Any]) -> None:
    # A dict of text takes a shorter road than pairs; both must read the same, names
    # that differ only in case being one header given twice.
    from_dict, from_pairs = Headers(given), Headers(list(given.items()))
    assert dict(from_dict) == dict(from_pairs)
    for name in given:
        assert from_dict.getall(name) == from_pairs.getall(name)
        assert from_dict.is_repeated(name) == from_pairs.is_repeated(name)
