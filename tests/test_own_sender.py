"""A sender is one module: three senders written here pass the whole contract once registered.

Each is written as a sender's module would write it, with the public names of
:mod:`hookshield.providers` only: Parcel, an ``HmacSender`` description (a signed
timestamp, a signed id in the body) with samples of its own; Beacon, a ``Provider``
of its own (a shared token, its own payload); Relay, a bare description.
Registering one with :func:`register_provider` is all that ``WebhookHandler``,
:mod:`hookshield.testing`, the adapters, the command line and ``hookshield demo``
need: no other file names them.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import pytest

from hookshield import WebhookHandler
from hookshield.providers import (
    PROVIDERS,
    Delivery,
    DemoScript,
    Event,
    FrozenObject,
    Headers,
    HmacProvider,
    HmacSender,
    MalformedPayload,
    Provider,
    body_sha256,
    first_credential,
    get_provider,
    register_provider,
    unregister_provider,
)
from hookshield.testing import credentials, providers

from .contract import SenderContract

# -- Parcel: described -------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class ParcelEvent(Event):
    """A Parcel event, with a typed view of its data."""

    @property
    def tracking_number(self) -> str | None:
        """The parcel's tracking number."""
        return self._str("tracking_number")


PARCEL = HmacSender(
    name="parcel",
    title="Parcel",
    signature_header="Parcel-Signature",
    signature_prefix="v1=",
    signature_separator=",",
    timestamp_header="Parcel-Signature",
    timestamp_prefix="t=",
    signed_content="{timestamp}.{body}",
    key_encoding="hex",
    key_prefix="prcl_",
    type_field="type",
    id_field="id",
    data_field="data",
    max_body_size=512 * 1024,  # one parcel's event, a few KB, with a wide margin
    event_class=ParcelEvent,
    event_types=("parcel.shipped", "parcel.delivered"),
)


class ParcelProvider(HmacProvider):
    """Parcel's webhooks."""

    sender = PARCEL
    test_credentials: ClassVar[Mapping[str, Any]] = {"secret": "prcl_" + "7a" * 32}
    demo = DemoScript(
        event_types=("parcel.shipped",),
        accepted="Parcel-Signature verified within its window",
        attacks=("forged", "tampered", "unsigned"),
        tamper=(b'"weight_kg": 2', b'"weight_kg": 0'),
    )
    retry_window = 3 * 24 * 3600.0  # three days

    def sample(self, event_type: str, overrides: Mapping[str, Any]) -> bytes:
        payload = {
            "id": "evt_" + secrets.token_hex(8),
            "type": event_type,
            "data": {"tracking_number": "1Z999", "weight_kg": 2, **overrides},
        }
        return json.dumps(payload).encode()


# -- Beacon: a provider of its own --------------------------------------------------------


class BeaconProvider(Provider):
    """Beacon's webhooks: ``{"kind", "ref", ...}`` with a shared token in a header."""

    name = "beacon"
    title = "Beacon"
    event_class = Event
    event_types = ("ping", "alert")
    accepts = frozenset({"token", "bearer_token"})
    default_token_header = "X-Beacon-Token"
    test_credentials: ClassVar[Mapping[str, Any]] = {"token": "beacon-test-token"}
    default_max_body_size = 768 * 1024  # alerts of a few hundred bytes, batched
    demo = DemoScript(
        event_types=("alert",),
        accepted="X-Beacon-Token matched",
        attacks=("forged", "unsigned"),
    )

    def parse(self, body: bytes, headers: Headers, signature: str | None) -> Delivery:
        payload = self.payload(body, headers)
        kind = payload.get("kind") if isinstance(payload, dict) else None
        if not isinstance(kind, str) or not kind:
            raise MalformedPayload("a Beacon event is an object with a string 'kind'")
        event = Event(
            provider=self.name, type=kind, id=payload.get("ref"), data=FrozenObject(payload)
        )
        return Delivery(
            provider=self.name, id=body_sha256(body), events=(event,), headers=headers, body=body
        )

    def sign(self, body: bytes, **options: Any) -> dict[str, str]:
        headers = {"Content-Type": "application/json"}
        if options.get("token") is not None:
            headers["X-Beacon-Token"] = first_credential(options["token"])
        if options.get("bearer_token") is not None:
            headers["Authorization"] = "Bearer " + first_credential(options["bearer_token"])
        return headers

    def sample(self, event_type: str, overrides: Mapping[str, Any]) -> bytes:
        return json.dumps({"kind": event_type, "ref": secrets.token_hex(6), **overrides}).encode()


# -- Relay: a bare description, registered as it is -----------------------------------

RELAY = HmacSender(
    name="relay",
    signature_header="X-Relay-Signature",
    signature_prefix="sha256=",
    type_field="event",
    id_field="id",
    event_types=("thing.made", "thing.gone"),
)


# -- registered for the contract, and only for it ----------------------------------------


@pytest.fixture(
    params=[ParcelProvider(), BeaconProvider(), RELAY], ids=["parcel", "beacon", "relay"]
)
def sender(request: pytest.FixtureRequest) -> Iterator[str]:
    """Parcel, Beacon or Relay, registered while the test runs."""
    registered = register_provider(request.param)
    try:
        yield registered.name
    finally:
        unregister_provider(registered.name)


class TestAnOwnSender(SenderContract):
    """The whole contract, for a sender this module defines."""


def test_a_registered_sender_is_known_everywhere_until_unregistered(sender: str) -> None:
    assert sender in providers()
    assert WebhookHandler(sender, **credentials(sender)).provider == sender


def test_the_registry_is_left_as_it_was() -> None:
    assert not {"parcel", "beacon", "relay"} & set(PROVIDERS)


def test_parcels_typed_event_and_window() -> None:
    provider = register_provider(ParcelProvider())
    try:
        assert get_provider("parcel") is provider
        # Three days of retries: kept a quarter longer, rounded up to the half hour.
        assert WebhookHandler("parcel", **credentials("parcel")).dedupe_ttl == 90 * 3600
        body = provider.sample("parcel.shipped", {})
        headers = provider.sign(body, secret=credentials("parcel")["secret"])
        (event,) = WebhookHandler("parcel", **credentials("parcel")).verify(body, headers).events
        assert isinstance(event, ParcelEvent) and event.tracking_number == "1Z999"
    finally:
        unregister_provider("parcel")


def test_each_own_sender_bounds_its_body_as_it_declares() -> None:
    limits = {"parcel": 512 * 1024, "beacon": 768 * 1024, "relay": 1024 * 1024}
    for provider in (ParcelProvider(), BeaconProvider(), RELAY):
        name = register_provider(provider).name
        try:
            assert WebhookHandler(name, **credentials(name)).max_body_size == limits[name]
        finally:
            unregister_provider(name)


def test_a_registration_is_checked() -> None:
    with pytest.raises(ValueError, match="already registered"):
        register_provider(get_provider("moco"))

    class Nameless(BeaconProvider):
        name = "Not A Name"

    with pytest.raises(ValueError, match="lower-case"):
        register_provider(Nameless())

    class Untested(BeaconProvider):
        name = "untested"
        test_credentials: ClassVar[Mapping[str, Any]] = {}

    with pytest.raises(ValueError, match="test_credentials"):
        register_provider(Untested())

    class SecretWithoutScheme(BeaconProvider):
        name = "secretive"
        accepts = frozenset({"secret"})
        test_credentials: ClassVar[Mapping[str, Any]] = {"secret": "s"}

    with pytest.raises(ValueError, match="scheme"):
        register_provider(SecretWithoutScheme())

    class KeyWithoutEd25519(ParcelProvider):
        name = "keyless"
        accepts = frozenset({"secret", "public_key"})

    with pytest.raises(ValueError, match="public_key= exactly when its scheme has an ed25519"):
        register_provider(KeyWithoutEd25519())

    class Unbounded(BeaconProvider):
        name = "unbounded"
        default_max_body_size = 0

    with pytest.raises(ValueError, match="default_max_body_size"):
        register_provider(Unbounded())

    class Listed(BeaconProvider):
        name = "listed"
        parse_headers = ["X-Beacon-Region"]  # type: ignore[assignment]  # noqa: RUF012 - the mistake tested

    with pytest.raises(TypeError, match="parse_headers"):
        register_provider(Listed())

    class Misnamed(BeaconProvider):
        name = "misnamed"
        parse_headers = ("X Beacon Region",)

    with pytest.raises(ValueError, match="parse_headers"):
        register_provider(Misnamed())
    assert not {"untested", "secretive", "keyless", "unbounded", "listed", "misnamed"} & set(
        PROVIDERS
    )
