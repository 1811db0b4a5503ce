"""Outcome: what became of a delivery, and the answer its sender gets.

2xx ends the sender's retries, anything else makes it retry; the body never carries
a secret, signature or traceback, and the statuses that mean "later" say when.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pytest

from hookshield import Accepted, InvalidSignature, Outcome
from hookshield.testing import sample_delivery

from .conftest import CREDENTIALS, make_handler


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
    assert default.pending == ()


def test_the_pending_events_take_no_part_in_the_repr() -> None:
    assert "pending" not in repr(Outcome(200, "a"))


def test_an_accepted_delivery_is_an_outcome_whose_claims_are_not_in_its_repr_or_equality() -> None:
    handler = make_handler("mindpeeker")
    accepted = handler.accept(
        *sample_delivery("mindpeeker", "session.created", **CREDENTIALS["mindpeeker"])
    )
    assert isinstance(accepted, Outcome) and accepted.ok
    fields = {f.name: getattr(accepted, f.name) for f in dataclasses.fields(Outcome)}
    assert accepted == Accepted(**fields)
    assert "claims" not in repr(accepted) and "dispatcher" not in repr(accepted)
    accepted.release()


@pytest.mark.parametrize(
    ("status", "ok"), [(199, False), (200, True), (204, True), (299, True), (300, False)]
)
def test_ok_means_a_2xx_answer(status: int, ok: bool) -> None:
    assert Outcome(status, "x").ok is ok


@pytest.mark.parametrize(
    ("outcome", "body"),
    [
        (Outcome(200, "dispatched"), {"ok": True}),
        (Outcome(200, "duplicate delivery", duplicate=True), {"ok": True, "duplicate": True}),
        (Outcome(401, "bad signature"), {"error": "bad signature"}),
        (Outcome(409, "still running"), {"error": "still running"}),
        (
            Outcome(500, "a handler raised KeyError: 'secret-value'"),
            {"error": "the delivery could not be processed; please retry"},
        ),
        (
            Outcome(503, "store down at redis://user:pw@host"),
            {"error": "the delivery could not be processed; please retry"},
        ),
    ],
)
def test_the_response_body_is_small_json_and_hides_server_errors(
    outcome: Outcome, body: dict[str, object]
) -> None:
    assert json.loads(outcome.response_body()) == body


@pytest.mark.parametrize(
    ("status", "headers"),
    [
        (200, ()),
        (401, ()),
        (405, (("Allow", "POST"),)),
        (409, (("Retry-After", "30"),)),
        (413, ()),
        (500, ()),
        (503, (("Retry-After", "30"),)),
    ],
)
def test_the_response_headers_say_what_to_do_next(
    status: int, headers: tuple[tuple[str, str], ...]
) -> None:
    assert Outcome(status, "x").response_headers() == headers


def test_a_refused_delivery_answers_its_reason_and_carries_its_error() -> None:
    handler = make_handler("mindpeeker")
    body, headers = sample_delivery("mindpeeker", "session.created", secret="wrong")
    outcome = handler.handle(body, headers)
    assert outcome.status == 401 and not outcome.ok
    assert isinstance(outcome.error, InvalidSignature)
    assert json.loads(outcome.response_body()) == {"error": outcome.reason}
    assert "wrong" not in outcome.reason
    assert CREDENTIALS["mindpeeker"]["secret"] not in outcome.reason
