"""The front door: the size bound first, then authentication over the raw bytes, then parsing.

The order is the security property (see ``_verify.py``): a flood is refused before a
byte is checked, a forgery before a byte is decoded, so that nothing a forger sends
reaches the decoder.  Each check is seen here by a delivery that fails two of them:
the answer is always the earlier one's.
"""

from __future__ import annotations

import json

import pytest

from hookshield import (
    BodyTooLarge,
    InvalidSignature,
    MalformedPayload,
    MissingCredentials,
    UnsupportedContentType,
    WebhookError,
    WebhookHandler,
)
from hookshield.testing import sample_batch, sample_delivery, sign

from .conftest import CREDENTIALS, make_handler


def mindpeeker_delivery() -> tuple[bytes, dict[str, str]]:
    return sample_delivery("mindpeeker", "session.created", **CREDENTIALS["mindpeeker"])


# -- the order: size, then credentials, then parsing ------------------------------------


def test_an_oversized_forgery_is_refused_for_its_size_before_its_signature() -> None:
    handler = make_handler("mindpeeker", max_body_size=10)
    outcome = handler.handle(b"x" * 11, {})
    assert outcome.status == 413
    assert isinstance(outcome.error, BodyTooLarge)
    with pytest.raises(BodyTooLarge, match="at most 10"):
        handler.authenticate(b"x" * 11, {})


def test_a_body_of_exactly_the_limit_is_checked_further() -> None:
    body, headers = mindpeeker_delivery()
    handler = make_handler("mindpeeker", max_body_size=len(body))
    assert handler.verify(body, headers).events[0].type == "session.created"
    with pytest.raises(BodyTooLarge):
        make_handler("mindpeeker", max_body_size=len(body) - 1).verify(body, headers)


def test_a_forged_body_that_is_not_json_is_refused_for_its_signature() -> None:
    handler = make_handler("mindpeeker")
    body = b"{not json"
    headers = sign("mindpeeker", body, secret="not-the-secret")
    with pytest.raises(InvalidSignature):
        handler.verify(body, headers)
    # With the right signature, the same bytes reach the decoder, and only then fail.
    signed = sign("mindpeeker", body, **CREDENTIALS["mindpeeker"])
    with pytest.raises(MalformedPayload):
        handler.verify(body, signed)


def test_authenticate_checks_credentials_without_parsing() -> None:
    handler = make_handler("mindpeeker")
    body = b"{not json"
    handler.authenticate(body, sign("mindpeeker", body, **CREDENTIALS["mindpeeker"]))  # passes
    with pytest.raises(MissingCredentials):
        handler.authenticate(body, {})


def test_iter_events_authenticates_before_it_returns_and_decodes_lazily() -> None:
    handler = make_handler("momentum")
    with pytest.raises(MissingCredentials):
        handler.iter_events(sample_batch(["delivery"]), {})
    records = json.loads(sample_batch(["delivery", "open"]))
    body = json.dumps([*records, "not a record"]).encode()
    events = handler.iter_events(body, sign("momentum", body, **CREDENTIALS["momentum"]))
    assert [next(events).type, next(events).type] == ["delivery", "open"]
    with pytest.raises(MalformedPayload):
        next(events)


# -- what authentication needs -------------------------------------------------------------


def test_an_unsigned_handler_accepts_a_delivery_without_a_signature() -> None:
    handler = WebhookHandler("moonsense", allow_unsigned=True)
    body, headers = sample_delivery("moonsense", "session.created")
    assert "X-Moonsense-Signature-256" not in headers
    assert handler.verify(body, headers).events[0].type == "session.created"


def test_with_a_secret_a_delivery_without_a_signature_is_refused() -> None:
    handler = WebhookHandler("moonsense", secret="s", allow_unsigned=True)
    body, headers = sample_delivery("moonsense", "session.created")
    outcome = handler.handle(body, headers)
    assert outcome.status == 401
    assert isinstance(outcome.error, MissingCredentials)


def test_headers_differing_only_in_case_count_as_repeated() -> None:
    body, headers = mindpeeker_delivery()
    headers["x-mindpeeker-signature"] = headers["X-MindPeeker-Signature"]
    with pytest.raises(WebhookError, match="more than once"):
        make_handler("mindpeeker").verify(body, headers)


@pytest.mark.parametrize("body", [bytearray(b"{}"), memoryview(b"{}")])
def test_a_bytes_like_body_is_verified_as_its_bytes(body: bytearray | memoryview) -> None:
    handler = make_handler("moco")
    assert handler.handle(body, {}).status == 401  # read, and refused for its credentials
    signed = sign("moco", bytes(body), event="activity.create", **CREDENTIALS["moco"])
    assert handler.verify(body, signed).body == b"{}"


def test_a_body_that_is_not_bytes_is_a_callers_mistake() -> None:
    handler = make_handler("moco")
    with pytest.raises(TypeError, match="raw request body"):
        handler.verify("{}", {})  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="raw request body"):
        handler.handle("{}", {})  # type: ignore[arg-type]


# -- parsing, after authentication -------------------------------------------------------------


def test_json_content_types_are_accepted_and_others_refused_however_many_were_seen() -> None:
    # JSON spellings are remembered (in a bounded cache); a cache that accepted
    # anything once full, or anything near a value it holds, would let these through.
    handler = make_handler("mindpeeker")
    body, headers = mindpeeker_delivery()
    for number in range(300):
        headers["Content-Type"] = f"application/json; v={number}"
        assert handler.verify(body, headers).events[0].type == "session.created"
    for value in ("   ", "text/plain", "application/vnd.mindpeeker+json"):
        headers["Content-Type"] = value
        assert handler.verify(body, headers).events[0].type == "session.created"
    for value in (
        "text/html",
        "application/xml; v=1",
        "application/jsonx",
        "application/json; charset=latin-1",
        "application/x-www-form-urlencoded",
    ):
        headers["Content-Type"] = value
        outcome = handler.handle(body, headers)
        assert outcome.status == 415, value
        assert isinstance(outcome.error, UnsupportedContentType)


def test_a_form_with_too_many_fields_is_refused() -> None:
    body = "&".join(f"f{n}=1" for n in range(100)).encode()
    headers = sign(
        "petal", body, content_type="application/x-www-form-urlencoded", **CREDENTIALS["petal"]
    )
    with pytest.raises(MalformedPayload, match="more than 64"):
        make_handler("petal").verify(body, headers)


@pytest.mark.parametrize(
    ("body", "error"),
    [
        (b' \t\r\n{"type": "session.created"}\n ', None),
        (b" \n\t", "the body is empty: expected a JSON payload"),
        # Not JSON whitespace (RFC 8259 section 2), though str.isspace() says it is.
        (b'\x0b{"type": "session.created"}', "Expecting value at line 1 column 1"),
        (b'{"type": "session.created"}\x0b', "Extra data at line 1 column 28"),
        (b'{"type": "session.created"} {}', "Extra data at line 1 column 29"),
        (b'{"type": "session.created", "x": NaN}', "NaN is not a JSON value"),
        (b'{"type": "session.created", "x": 1' + b"0" * 5000 + b"}", "Exceeds the limit"),
    ],
)
def test_json_bodies_are_read_strictly(body: bytes, error: str | None) -> None:
    handler = make_handler("mindpeeker")
    headers = sign("mindpeeker", body, **CREDENTIALS["mindpeeker"])
    if error is None:
        assert handler.verify(body, headers).events[0].type == "session.created"
        return
    with pytest.raises(MalformedPayload, match=error):
        handler.verify(body, headers)
