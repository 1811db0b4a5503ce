"""Every misconfiguration a handler refuses at construction, before any delivery.

``_credentials.py`` refuses a credential the sender cannot carry, a signing sender
without a secret, an unsigned handler not asked for, and empty or mistyped values;
the handler's constructor refuses the limits and stores it cannot work with.  Each
refusal is a ``ValueError`` or ``TypeError`` that says what to pass instead.
"""

from __future__ import annotations

import logging

import pytest

from hookshield import WebhookHandler
from hookshield.testing import sample_delivery

from .conftest import CREDENTIALS, make_handler


@pytest.mark.parametrize("provider", ["moco", "mindpeeker"])
def test_signing_senders_always_need_a_secret(provider: str) -> None:
    with pytest.raises(ValueError, match="secret="):
        WebhookHandler(provider)
    with pytest.raises(ValueError, match="signs every delivery"):
        WebhookHandler(provider, allow_unsigned=True)


@pytest.mark.parametrize("provider", ["moonsense", "petal", "momentum"])
def test_unsigned_needs_explicit_opt_in_and_is_warned_about(
    provider: str, caplog: pytest.LogCaptureFixture
) -> None:
    with pytest.raises(ValueError, match="allow_unsigned=True"):
        WebhookHandler(provider)
    with caplog.at_level(logging.WARNING, logger="hookshield"):
        handler = WebhookHandler(provider, allow_unsigned=True)
    assert "UNSIGNED" in repr(handler)
    assert "forge" in caplog.text


def test_a_handler_with_a_credential_is_not_unsigned() -> None:
    handler = WebhookHandler("moonsense", secret="s", allow_unsigned=True)
    assert "UNSIGNED" not in repr(handler)


@pytest.mark.parametrize(
    ("provider", "option"),
    [
        ("moco", "token"),
        ("moco", "basic_auth"),
        ("mindpeeker", "bearer_token"),
        ("petal", "secret"),
        ("momentum", "secret"),
    ],
)
def test_credentials_the_sender_cannot_carry_are_refused(provider: str, option: str) -> None:
    value: object = ("user", "pw") if option == "basic_auth" else "x"
    with pytest.raises(ValueError, match=f"cannot carry {option}="):
        WebhookHandler(provider, **{option: value})  # type: ignore[arg-type]


def test_unknown_provider_names_the_known_ones() -> None:
    with pytest.raises(ValueError, match="mindpeeker"):
        WebhookHandler("gitlab", secret="x")


@pytest.mark.parametrize("secret", ["", b"", [], ["ok", ""]])
def test_empty_secrets_are_refused(secret: object) -> None:
    with pytest.raises(ValueError, match="empty"):
        WebhookHandler("moco", secret=secret)  # type: ignore[arg-type]


@pytest.mark.parametrize("secret", [123, ["ok", 5]])
def test_a_secret_of_the_wrong_type_is_refused(secret: object) -> None:
    with pytest.raises(TypeError):
        WebhookHandler("moco", secret=secret)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("basic_auth", "error", "match"),
    [
        (("a:b", "pw"), ValueError, "':'"),
        (("user", ""), ValueError, "password cannot be empty"),
        ([], ValueError, "empty"),
        ([("a", "b", "c")], TypeError, "string pairs"),
        ([("a", 1)], TypeError, "string pairs"),
    ],
)
def test_basic_auth_must_be_user_password_string_pairs(
    basic_auth: object, error: type[Exception], match: str
) -> None:
    with pytest.raises(error, match=match):
        WebhookHandler("momentum", basic_auth=basic_auth)  # type: ignore[arg-type]


def test_basic_auth_takes_one_pair_or_several() -> None:
    assert "basic_auth=1" in repr(WebhookHandler("momentum", basic_auth=("a", "1")))
    assert "basic_auth=2" in repr(WebhookHandler("momentum", basic_auth=[("a", "1"), ("b", "2")]))


def test_token_header_without_token_is_refused() -> None:
    with pytest.raises(ValueError, match="token="):
        WebhookHandler("petal", token_header="X-T", allow_unsigned=True)


def test_the_repr_counts_credentials_and_never_shows_them() -> None:
    handler = WebhookHandler("mindpeeker", secret=["topsecret1", "topsecret2"])
    assert "topsecret" not in repr(handler)
    assert "secrets=2" in repr(handler)
    petal = WebhookHandler("petal", token="tok-value", bearer_token="bearer-value")
    assert "tokens=1" in repr(petal) and "bearer_tokens=1" in repr(petal)
    assert "value" not in repr(petal)


def test_every_key_of_a_rotation_is_accepted() -> None:
    handler = WebhookHandler("mindpeeker", secret=["new-key", "old-key"])
    for key in ("new-key", "old-key"):
        body, headers = sample_delivery("mindpeeker", "session.created", secret=key)
        assert handler.handle(body, headers).status == 200
    body, headers = sample_delivery("mindpeeker", "session.created", secret="other-key")
    assert handler.handle(body, headers).status == 401


# -- the handler's other options ---------------------------------------------------------


def test_max_body_size_must_be_positive() -> None:
    with pytest.raises(ValueError, match="max_body_size"):
        make_handler("moco", max_body_size=0)


@pytest.mark.parametrize("option", [{"dedupe_ttl": 0}, {"dedupe_lease": -1}])
def test_ttl_and_lease_must_be_positive(option: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="positive"):
        make_handler("mindpeeker", **option)


def test_an_object_without_the_store_steps_is_not_a_store() -> None:
    with pytest.raises(TypeError, match="complete"):
        make_handler("moco", dedupe=object())


def test_a_store_of_the_old_protocol_still_works_for_a_release_with_a_warning() -> None:
    class OldStore:
        """claim(key, ttl) -> bool and release(key), as hookshield 0.1 asked."""

        def __init__(self) -> None:
            self.keys: dict[str, float] = {}

        def claim(self, key: str, ttl: float) -> bool:
            if key in self.keys:
                return False
            self.keys[key] = ttl
            return True

        def release(self, key: str) -> None:
            self.keys.pop(key, None)

    old = OldStore()
    with pytest.warns(DeprecationWarning, match="protocol of hookshield 0.1"):
        handler = make_handler("mindpeeker", dedupe=old, dedupe_ttl=3600)
    failures = [RuntimeError("once")]

    @handler.on("session.completed")
    def route(event: object) -> None:
        if failures:
            raise failures.pop()

    body, headers = sample_delivery("mindpeeker", "session.completed", **CREDENTIALS["mindpeeker"])
    assert handler.handle(body, headers).status == 500  # released for the retry ...
    assert handler.handle(body, headers).dispatched == 1  # ... which runs
    assert handler.handle(body, headers).duplicate
    assert list(old.keys.values()) == [3600]  # claimed for the TTL, not the lease
    assert repr(old) in repr(handler)


def test_a_basic_auth_of_the_wrong_shape_is_refused_without_showing_the_password() -> None:
    with pytest.raises(TypeError, match="not list") as refused:
        WebhookHandler("petal", basic_auth=[["admin", "s3cret-pw"]])  # type: ignore[list-item]
    assert "s3cret-pw" not in str(refused.value)
