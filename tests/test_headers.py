"""Headers from whatever a framework hands over: text, bytes, repeats, and nonsense."""

from __future__ import annotations

from typing import Any

import pytest

from hookshield import Headers, MalformedHeader, WebhookError, WebhookHandler
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
        {"X-Moco-Signature": None},
        {"X-Moco-Signature": {"a": "b"}},
        {"X-Moco-Signature": ["a", 5]},
        {5: "value"},
        [("a", "b", "c")],
        ["ab"],
        [5],
        [("x", object())],
    ],
)
def test_anything_else_is_a_malformed_header_with_status_400(headers: Any) -> None:
    with pytest.raises(MalformedHeader) as caught:
        Headers(headers)
    assert caught.value.status == 400
    assert isinstance(caught.value, WebhookError)


def test_headers_that_are_not_iterable_are_a_malformed_header() -> None:
    with pytest.raises(MalformedHeader, match="mapping or"):
        Headers(5)  # type: ignore[arg-type]


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


def test_a_header_of_the_wrong_type_is_a_400_outcome_not_a_crash() -> None:
    handler = WebhookHandler("petal", allow_unsigned=True, dedupe=None)
    with pytest.raises(MalformedHeader):
        handler.verify(b"{}", {"Content-Type": 1.5})


def test_bytes_names_in_a_mapping_are_decoded_like_bytes_pairs() -> None:
    # A dict with bytes names (as some ASGI glue builds) must not keep them as bytes:
    # the signature header would then read as missing.
    headers = Headers({b"X-Moco-Signature": "abc"})
    assert headers.get("x-moco-signature") == "abc"
    assert "abc" not in repr(headers)
