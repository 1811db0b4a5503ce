"""Standard Webhooks' v1a: ed25519 signatures, signed here by ``cryptography`` itself.

Every delivery below is signed with ``cryptography``'s own ed25519 (never only by
hookshield's signer), over the specification's ``{id}.{timestamp}.{body}``, and sent as
``v1a,<base64>``; keys are written ``whpk_<base64>`` and ``whsk_<base64>``.
"""

from __future__ import annotations

import base64
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from cryptography.exceptions import InvalidSignature as CryptoInvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from standardwebhooks.webhooks import Webhook

import hookshield
from hookshield import (
    InvalidSignature,
    MalformedSignature,
    MissingCredentials,
    SQLiteInbox,
    StandardWebhooksEvent,
    TimestampOutOfRange,
    WebhookHandler,
    run_worker,
)
from hookshield.testing import sign

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
BODY = b'{"type": "invoice.paid", "timestamp": "2025-01-15T10:30:00Z", "data": {"n": 1}}'
HEADERS = {"svix": "svix", "standard-webhooks": "webhook"}


class Key:
    """An ed25519 key pair made by ``cryptography``, written as Standard Webhooks writes it."""

    def __init__(self) -> None:
        self.private = Ed25519PrivateKey.generate()
        public = self.private.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )
        seed = self.private.private_bytes(
            serialization.Encoding.Raw,
            serialization.PrivateFormat.Raw,
            serialization.NoEncryption(),
        )
        self.raw_public = public
        self.whpk = "whpk_" + base64.b64encode(public).decode()
        self.whsk = "whsk_" + base64.b64encode(seed).decode()

    def v1a(self, msg_id: str, stamp: int, body: bytes) -> str:
        signed = self.private.sign(f"{msg_id}.{stamp}.".encode() + body)
        return "v1a," + base64.b64encode(signed).decode()


def delivery(
    *signatures: str, msg_id: str = "msg_1", stamp: int | None = None, prefix: str = "webhook"
) -> dict[str, str]:
    return {
        f"{prefix}-id": msg_id,
        f"{prefix}-timestamp": str(int(time.time()) if stamp is None else stamp),
        f"{prefix}-signature": " ".join(signatures),
        "Content-Type": "application/json",
    }


def v1a_only(
    key: Key, body: bytes = BODY, *, stamp: int | None = None, msg_id: str = "msg_1"
) -> dict[str, str]:
    now = int(time.time()) if stamp is None else stamp
    return delivery(key.v1a(msg_id, now, body), stamp=now, msg_id=msg_id)


def v1(body: bytes, stamp: int, msg_id: str = "msg_1") -> str:
    """The v1 signature the reference library makes."""
    from datetime import datetime, timezone

    return Webhook(SECRET).sign(msg_id, datetime.fromtimestamp(stamp, timezone.utc), body)


@pytest.mark.parametrize("sender", ["standard-webhooks", "svix"])
def test_a_v1a_delivery_verifies_with_the_public_key(sender: str) -> None:
    key = Key()
    now = int(time.time())
    headers = delivery(key.v1a("msg_1", now, BODY), stamp=now, prefix=HEADERS[sender])
    handler = WebhookHandler(sender, public_key=key.whpk)
    seen: list[StandardWebhooksEvent] = []
    handler.on("invoice.paid")(seen.append)
    outcome = handler.handle(BODY, headers)
    assert (outcome.status, outcome.dispatched) == (200, 1)
    assert (seen[0].type, seen[0].id, seen[0].data["n"]) == ("invoice.paid", "msg_1", 1)
    assert "public_keys=1" in repr(handler) and key.whpk not in repr(handler)


def test_the_whpk_prefix_may_be_left_out_and_keys_rotate() -> None:
    old, new = Key(), Key()
    bare = base64.b64encode(new.raw_public).decode().rstrip("=")
    handler = WebhookHandler("standard-webhooks", public_key=[old.whpk, bare])
    handler.verify(BODY, v1a_only(old))  # raises if refused
    handler.verify(BODY, v1a_only(new))


def test_a_v1a_only_delivery_to_a_secret_only_handler_says_what_to_pass() -> None:
    headers = v1a_only(Key())
    with pytest.raises(MalformedSignature, match="public_key=") as caught:
        WebhookHandler("standard-webhooks", secret=SECRET).verify(BODY, headers)
    assert caught.value.status == 401


def test_a_v1_only_delivery_to_a_public_key_handler_says_what_to_pass() -> None:
    now = int(time.time())
    headers = delivery(v1(BODY, now), stamp=now)
    with pytest.raises(MalformedSignature, match="secret="):
        WebhookHandler("standard-webhooks", public_key=Key().whpk).verify(BODY, headers)


def test_both_kinds_in_one_header_verify_by_whichever_keys_the_handler_holds() -> None:
    key, stranger = Key(), Key()
    now = int(time.time())
    both = delivery(v1(BODY, now), key.v1a("msg_1", now, BODY), stamp=now)
    wrong_secret = "whsec_" + base64.b64encode(b"x" * 24).decode()
    for secret, public_key in (
        (SECRET, None),
        (None, key.whpk),
        (SECRET, key.whpk),
        (SECRET, stranger.whpk),
        (wrong_secret, key.whpk),
    ):
        WebhookHandler("standard-webhooks", secret=secret, public_key=public_key).verify(BODY, both)
    with pytest.raises(InvalidSignature):
        WebhookHandler("standard-webhooks", secret=wrong_secret, public_key=stranger.whpk).verify(
            BODY, both
        )


def test_a_wrong_key_or_a_changed_body_or_id_is_refused() -> None:
    key = Key()
    headers = v1a_only(key)
    handler = WebhookHandler("standard-webhooks", public_key=key.whpk)
    with pytest.raises(InvalidSignature, match="raw"):
        handler.verify(BODY.replace(b'"n": 1', b'"n": 2'), headers)
    with pytest.raises(InvalidSignature):
        handler.verify(BODY, {**headers, "webhook-id": "msg_2"})
    with pytest.raises(InvalidSignature):
        WebhookHandler("standard-webhooks", public_key=Key().whpk).verify(BODY, headers)


@pytest.mark.parametrize(
    "signature",
    [
        "v1a,not base64!",
        "v1a," + base64.b64encode(bytes(63)).decode(),  # one byte short
        "v1a,",
        "v1b," + base64.b64encode(bytes(64)).decode(),
    ],
)
def test_a_malformed_v1a_signature_is_malformed(signature: str) -> None:
    with pytest.raises(MalformedSignature) as caught:
        WebhookHandler("standard-webhooks", public_key=Key().whpk).verify(BODY, delivery(signature))
    assert caught.value.status == 401


def test_a_well_formed_forgery_is_an_invalid_signature() -> None:
    forged = "v1a," + base64.b64encode(os.urandom(64)).decode()
    with pytest.raises(InvalidSignature):
        WebhookHandler("standard-webhooks", public_key=Key().whpk).verify(BODY, delivery(forged))


def test_the_window_holds_for_v1a_too() -> None:
    key = Key()
    handler = WebhookHandler("standard-webhooks", public_key=key.whpk)
    with pytest.raises(TimestampOutOfRange):
        handler.verify(BODY, v1a_only(key, stamp=int(time.time()) - 400))
    WebhookHandler("standard-webhooks", public_key=key.whpk, tolerance=600).verify(
        BODY, v1a_only(key, stamp=int(time.time()) - 400)
    )


def test_a_missing_signature_is_refused_before_the_body() -> None:
    handler = WebhookHandler("standard-webhooks", public_key=Key().whpk)
    with pytest.raises(MissingCredentials, match="webhook-signature"):
        handler.check_headers({"webhook-id": "msg_1", "webhook-timestamp": "1"})


def test_hookshields_v1a_signature_verifies_with_cryptography() -> None:
    key = Key()
    headers = sign("standard-webhooks", BODY, private_key=key.whsk, event_id="msg_9")
    (signature,) = headers["webhook-signature"].split(" ")
    assert signature.startswith("v1a,")
    message = f"msg_9.{headers['webhook-timestamp']}.".encode() + BODY
    key.private.public_key().verify(base64.b64decode(signature[4:]), message)  # raises if bad
    with pytest.raises(CryptoInvalidSignature):
        key.private.public_key().verify(base64.b64decode(signature[4:]), message + b" ")
    both = sign("standard-webhooks", BODY, secret=SECRET, private_key=key.whsk)
    first, second = both["webhook-signature"].split(" ")
    assert first.startswith("v1,") and second.startswith("v1a,")
    Webhook(SECRET).verify(BODY, both)  # the reference library checks the v1 beside it


def test_a_libsodium_private_key_of_seed_and_public_key_signs_too() -> None:
    key = Key()
    seed = base64.b64decode(key.whsk[5:])
    libsodium = "whsk_" + base64.b64encode(seed + key.raw_public).decode()
    headers = sign("standard-webhooks", BODY, private_key=libsodium)
    WebhookHandler("standard-webhooks", public_key=key.whpk).verify(BODY, headers)
    mismatched = "whsk_" + base64.b64encode(seed + Key().raw_public).decode()
    with pytest.raises(ValueError, match="public key"):
        sign("standard-webhooks", BODY, private_key=mismatched)


# -- keys in the wrong place are refused at construction, saying what to pass -----------


def test_a_public_key_given_as_secret_is_refused() -> None:
    with pytest.raises(ValueError, match=r"pass it as public_key=, not secret="):
        WebhookHandler("standard-webhooks", secret=Key().whpk)


def test_a_private_key_given_as_secret_or_public_key_is_refused() -> None:
    key = Key()
    with pytest.raises(ValueError, match=r"stays with the sender: pass its public key \(whpk_"):
        WebhookHandler("standard-webhooks", secret=key.whsk)
    with pytest.raises(ValueError, match=r"stays with the sender: pass its public key \(whpk_"):
        WebhookHandler("standard-webhooks", public_key=key.whsk)


def test_a_secret_given_as_public_key_is_refused() -> None:
    with pytest.raises(ValueError, match="pass it as secret="):
        WebhookHandler("standard-webhooks", public_key=SECRET)


@pytest.mark.parametrize(
    "value",
    ["whpk_not*base64", "whpk_" + base64.b64encode(bytes(31)).decode(), "whpk_"],
)
def test_a_public_key_that_is_no_key_is_refused(value: str) -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        WebhookHandler("standard-webhooks", public_key=value)


@pytest.mark.parametrize("sender", ["github", "mindpeeker", "moco", "moonsense"])
def test_a_sender_without_ed25519_signatures_takes_no_public_key(sender: str) -> None:
    with pytest.raises(ValueError, match="cannot carry public_key="):
        WebhookHandler(sender, secret="s", public_key=Key().whpk)


def test_a_public_key_of_the_wrong_type_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="public_key"):
        WebhookHandler("standard-webhooks", public_key=32)  # type: ignore[arg-type]


# -- a delivery stored by an inbox is verified again by its public key ------------------


def test_a_stored_v1a_delivery_is_verified_again_by_the_worker(tmp_path: Path) -> None:
    testclient = pytest.importorskip("starlette.testclient")
    from hookshield.asgi import WebhookApp

    key = Key()
    inbox = SQLiteInbox(tmp_path / "inbox.db")
    try:
        handler = WebhookHandler("standard-webhooks", public_key=key.whpk)
        with testclient.TestClient(WebhookApp(handler, background=inbox)) as client:
            assert client.post("/", content=BODY, headers=v1a_only(key)).status_code == 200
        stranger = WebhookHandler("standard-webhooks", public_key=Key().whpk)
        stats = run_worker(inbox, stranger, burst=True, handle_signals=False)
        assert (stats.done, stats.dead) == (0, 1)
        again = v1a_only(key, msg_id="msg_2")
        with testclient.TestClient(WebhookApp(handler, background=inbox)) as client:
            assert client.post("/", content=BODY, headers=again).status_code == 200
        ran: list[str] = []
        handler.on("*")(lambda event: ran.append(event.type))
        assert run_worker(inbox, handler, burst=True, handle_signals=False).done == 1
        assert ran == ["invoice.paid"]
    finally:
        inbox.close()


# -- without the extra ----------------------------------------------------------------


def test_without_cryptography_the_core_works_and_a_public_key_says_what_to_install() -> None:
    script = """
import sys
sys.modules["cryptography"] = None  # as if the extra were not installed
import hookshield
from hookshield.testing import sample_delivery
secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
handler = hookshield.WebhookHandler("standard-webhooks", secret=secret)
assert handler.handle(*sample_delivery("standard-webhooks", "a.b", secret=secret)).ok
try:
    hookshield.WebhookHandler("standard-webhooks", public_key="whpk_" + "A" * 43 + "=")
except ImportError as exc:
    print(exc)
else:
    raise SystemExit("a public key was accepted without cryptography")
"""
    package_root = str(Path(hookshield.__file__).resolve().parent.parent)
    env = {**os.environ, "PYTHONPATH": package_root}
    ran = subprocess.run(
        [sys.executable, "-W", "error", "-c", script],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert ran.returncode == 0, ran.stderr
    assert 'pip install "hookshield[ed25519]"' in ran.stdout
