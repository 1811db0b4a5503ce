"""A sender is one module: registering one is all the CLI, the demo and testing need.

A minimal sender is defined here, as a sender module would define it, and added to
the registry; nothing in ``hookshield.cli`` or ``hookshield.testing`` is touched.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from collections.abc import Iterator, Mapping
from typing import Any, ClassVar

import pytest

from hookshield import Delivery, Event, FrozenObject, Headers, WebhookHandler, testing
from hookshield.cli import main
from hookshield.cli._demo import demo_cases
from hookshield.providers import (
    DemoScript,
    Provider,
    body_sha256,
    register_provider,
    unregister_provider,
)
from tests.cli.helpers import parse_headers, serving, write

KEY = "acme-key"


class AcmeProvider(Provider):
    """A sender that signs the body with HMAC-SHA256 in ``X-Acme-Signature``."""

    name = "acme"
    title = "Acme"
    event_class = Event
    event_types = ("ping", "pong")
    accepts = frozenset({"secret"})
    # A hex HMAC of the body in one header: the scheme these two attributes describe.
    signature_header = "X-Acme-Signature"
    test_credentials: ClassVar[Mapping[str, Any]] = {"secret": KEY}
    sends_batches = True
    demo = DemoScript(
        credentials={"secret": KEY},
        event_types=("ping", "pong"),
        accepted="X-Acme-Signature verified",
        attacks=("forged", "tampered", "unsigned", "replayed"),
        tamper=(b'"ping"', b'"pong"'),
    )

    def parse(self, body: bytes, headers: Headers, signature: str | None) -> Delivery:
        records = json.loads(body)
        events = tuple(
            Event(provider="acme", type=r["type"], id=r["id"], data=FrozenObject(r))
            for r in records
        )
        return Delivery(
            provider="acme",
            id=body_sha256(body),
            events=events,
            headers=headers,
            body=body,
        )

    def sign(self, body: bytes, **options: Any) -> dict[str, str]:
        digest = hmac.new(str(options["secret"]).encode(), body, hashlib.sha256).hexdigest()
        return {"Content-Type": "application/json", "X-Acme-Signature": digest}

    def sample(self, event_type: str, overrides: Mapping[str, Any]) -> bytes:
        return self.sample_batch([event_type], overrides)

    def sample_batch(self, event_types: Any, overrides: Mapping[str, Any] | None = None) -> bytes:
        records = [
            {"type": kind, "id": secrets.token_hex(8), **(overrides or {})} for kind in event_types
        ]
        return json.dumps(records).encode()


@pytest.fixture
def acme() -> Iterator[None]:
    register_provider(AcmeProvider())
    yield
    unregister_provider("acme")


@pytest.mark.usefixtures("acme")
def test_sample_delivery_of_a_registered_sender_verifies() -> None:
    body, headers = testing.sample_delivery("acme", "ping", secret=KEY)
    delivery = WebhookHandler("acme", secret=KEY).verify(body, headers)
    assert [e.type for e in delivery.events] == ["ping"]
    batch = testing.sample_batch(["ping", "pong"], provider="acme")
    assert [r["type"] for r in json.loads(batch)] == ["ping", "pong"]


@pytest.mark.usefixtures("acme")
def test_sign_of_a_registered_sender(tmp_path: Any, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, "b.json", b'[{"type": "ping", "id": "1"}]')
    assert main(["sign", "-p", "acme", "--secret", KEY, path]) == 0
    headers = parse_headers(capsys.readouterr().out)
    expected = hmac.new(KEY.encode(), b'[{"type": "ping", "id": "1"}]', hashlib.sha256)
    assert headers["X-Acme-Signature"] == expected.hexdigest()
    # Its credential options come from its module too.
    assert main(["sign", "-p", "acme", "--token", "t", path]) == 2
    assert "Acme does not use --token: it authenticates with --secret" in capsys.readouterr().err


@pytest.mark.usefixtures("acme")
def test_send_a_batch_of_a_registered_sender_to_listen(capsys: pytest.CaptureFixture[str]) -> None:
    with serving(capsys, "-p", "acme", "--secret", KEY, "--count", "1") as (url, finish):
        args = ["send", url, "-p", "acme", "-e", "ping", "-e", "pong", "--secret", KEY]
        assert main([*args, "--json"]) == 0
        lines = finish()
    [sent] = [line for line in lines if "request_headers" in line]
    assert sent["status"] == 200 and sent["duplicate"] is False
    [seen] = [line for line in lines if "path" in line]
    assert [e["type"] for e in seen["delivery"]["events"]] == ["ping", "pong"]


@pytest.mark.usefixtures("acme")
def test_the_demo_shows_a_registered_sender(capsys: pytest.CaptureFixture[str]) -> None:
    built_in = len(demo_cases()) - 5  # acme's five, registered by the fixture
    assert main(["demo", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    acme = [(c["case"], c["passed"]) for c in report["cases"] if c["provider"] == "acme"]
    assert acme == [
        ("valid", True),
        ("forged", True),
        ("tampered", True),
        ("unsigned", True),
        ("replayed", True),
    ]
    assert len(report["cases"]) == built_in + len(acme)  # the others' cases, and acme's
