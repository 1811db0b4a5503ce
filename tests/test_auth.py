"""Authentication: each sender's signature or credential, checked against values
computed independently of hookshield (the senders' own vectors, openssl, hmac by hand)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import subprocess
from concurrent.futures import ThreadPoolExecutor

import pytest

from hookshield import (
    HeaderTooLarge,
    InvalidSignature,
    MalformedSignature,
    MissingCredentials,
    WebhookHandler,
)
from hookshield.providers import get_provider
from hookshield.testing import credentials, event_types, providers, sample_body, sign
from tests.required import tool

MOCO_KEY = "1d608b9d72219b90ff2393a1d3ee0ac0"
MOCO_BODY = b'{id: 111, description: "a description"}'
MOCO_SIGNATURE = "09f9ebc0adeb597cb7cb37fd72b20be0caeca6bd9fb67416b663606bd7f89183"


def test_moco_vector_from_the_senders_page_authenticates() -> None:
    handler = WebhookHandler("moco", secret=MOCO_KEY)
    handler.authenticate(MOCO_BODY, {"X-Moco-Signature": MOCO_SIGNATURE})


def test_sign_reproduces_the_moco_vector() -> None:
    headers = sign("moco", MOCO_BODY, secret=MOCO_KEY)
    assert headers["X-Moco-Signature"] == MOCO_SIGNATURE


def test_moco_key_is_used_as_ascii_not_hex_decoded() -> None:
    handler = WebhookHandler("moco", secret=bytes.fromhex(MOCO_KEY))
    with pytest.raises(InvalidSignature):
        handler.authenticate(MOCO_BODY, {"X-Moco-Signature": MOCO_SIGNATURE})


def _openssl_hmac(key: str, body: bytes) -> str:
    openssl = tool("openssl")
    out = subprocess.run(
        [openssl, "dgst", "-sha256", "-hmac", key],
        input=body,
        capture_output=True,
        check=True,
    ).stdout.decode()
    # "SHA2-256(stdin)= <hex>" or "(stdin)= <hex>" depending on the version.
    return out.strip().rsplit("= ", 1)[1]


@pytest.mark.parametrize(
    ("provider", "header", "prefix"),
    [
        ("moonsense", "X-Moonsense-Signature-256", ""),
        ("moco", "X-Moco-Signature", ""),
        ("mindpeeker", "X-MindPeeker-Signature", "sha256="),
    ],
)
def test_signature_headers_match_openssl(provider: str, header: str, prefix: str) -> None:
    key = "s3cr3t-ключ"  # non-ASCII: keys are UTF-8 encoded, as the senders do
    body = sample_body(provider, WebhookHandler(provider, secret=key).event_types[0])
    expected = _openssl_hmac(key, body)
    assert sign(provider, body, secret=key)[header] == prefix + expected
    WebhookHandler(provider, secret=key).verify(body, {header: prefix + expected})


def test_mindpeeker_signature_computed_by_hand() -> None:
    body = b'{"id":"evt_1","type":"session.completed","data":{}}'
    digest = hmac.new(b"whsec", body, hashlib.sha256).hexdigest()
    delivery = WebhookHandler("mindpeeker", secret="whsec").verify(
        body, {"x-mindpeeker-signature": f"sha256={digest}"}
    )
    assert delivery.id == "event:evt_1"


def test_upper_case_hex_and_surrounding_space_are_accepted() -> None:
    digest = hmac.new(MOCO_KEY.encode(), MOCO_BODY, hashlib.sha256).hexdigest()
    handler = WebhookHandler("moco", secret=MOCO_KEY)
    handler.authenticate(MOCO_BODY, {"X-Moco-Signature": f"  {digest.upper()} "})


def test_key_rotation_accepts_any_configured_secret() -> None:
    handler = WebhookHandler("moco", secret=["new-key", MOCO_KEY])
    handler.authenticate(MOCO_BODY, {"X-Moco-Signature": MOCO_SIGNATURE})
    handler.authenticate(MOCO_BODY, sign("moco", MOCO_BODY, secret="new-key"))
    with pytest.raises(InvalidSignature):
        handler.authenticate(MOCO_BODY, sign("moco", MOCO_BODY, secret="retired-key"))


def test_bytes_secret_equals_its_utf8_text() -> None:
    handler = WebhookHandler("moco", secret=MOCO_KEY.encode())
    handler.authenticate(MOCO_BODY, {"X-Moco-Signature": MOCO_SIGNATURE})


class TestRejectedSignatures:
    handler = WebhookHandler("mindpeeker", secret="whsec")
    body = b'{"id":"evt_1","type":"session.completed","data":{}}'
    good = "sha256=" + hmac.new(b"whsec", body, hashlib.sha256).hexdigest()

    def test_missing_header(self) -> None:
        with pytest.raises(MissingCredentials, match="X-MindPeeker-Signature") as info:
            self.handler.verify(self.body, {})
        assert info.value.status == 401

    def test_wrong_secret_explains_raw_body_and_secret(self) -> None:
        headers = sign("mindpeeker", self.body, secret="other")
        with pytest.raises(InvalidSignature) as info:
            self.handler.verify(self.body, headers)
        assert info.value.status == 401
        assert "raw request body" in str(info.value)
        assert "secret" in str(info.value)

    def test_tampered_body(self) -> None:
        with pytest.raises(InvalidSignature):
            self.handler.verify(
                self.body.replace(b"evt_1", b"evt_2"), {"X-MindPeeker-Signature": self.good}
            )

    def test_missing_prefix(self) -> None:
        with pytest.raises(MalformedSignature, match="sha256="):
            self.handler.verify(self.body, {"X-MindPeeker-Signature": self.good[7:]})

    def test_non_hex(self) -> None:
        bad = "sha256=" + "z" * 64
        with pytest.raises(MalformedSignature, match="hex"):
            self.handler.verify(self.body, {"X-MindPeeker-Signature": bad})

    def test_wrong_length(self) -> None:
        with pytest.raises(MalformedSignature, match="64 hex digits"):
            self.handler.verify(self.body, {"X-MindPeeker-Signature": self.good[:-2]})

    def test_non_ascii_signature(self) -> None:
        with pytest.raises(MalformedSignature):
            self.handler.verify(self.body, {"X-MindPeeker-Signature": "sha256=" + "é" * 64})

    def test_repeated_header(self) -> None:
        pairs = [("X-MindPeeker-Signature", self.good), ("x-mindpeeker-signature", self.good)]
        with pytest.raises(MalformedSignature, match="more than once"):
            self.handler.verify(self.body, pairs)

    def test_enormous_header(self) -> None:
        with pytest.raises(HeaderTooLarge) as info:
            self.handler.verify(self.body, {"X-MindPeeker-Signature": "sha256=" + "a" * 100_000})
        assert info.value.status == 431

    def test_error_never_contains_the_expected_signature(self) -> None:
        headers = sign("mindpeeker", self.body, secret="other")
        with pytest.raises(InvalidSignature) as info:
            self.handler.verify(self.body, headers)
        assert self.good[7:] not in str(info.value)
        assert "whsec" not in str(info.value)


class TestSharedCredentials:
    body = b'[{"msys": {}}]'

    def test_token(self) -> None:
        handler = WebhookHandler("momentum", token="tok")
        handler.verify(self.body, {"X-MessageSystems-Webhook-Token": "tok"})
        with pytest.raises(InvalidSignature):
            handler.verify(self.body, {"X-MessageSystems-Webhook-Token": "tok2"})
        with pytest.raises(MissingCredentials, match="X-MessageSystems-Webhook-Token"):
            handler.verify(self.body, {})

    def test_basic_auth_built_by_hand(self) -> None:
        handler = WebhookHandler("momentum", basic_auth=("hook", "p:ss wörd"))
        good = base64.b64encode("hook:p:ss wörd".encode()).decode()
        handler.verify(self.body, {"Authorization": f"Basic {good}"})
        handler.verify(self.body, {"Authorization": f"basic   {good}"})
        wrong = base64.b64encode(b"hook:nope").decode()
        with pytest.raises(InvalidSignature):
            handler.verify(self.body, {"Authorization": f"Basic {wrong}"})

    @pytest.mark.parametrize(
        "value",
        ["Basic !!!not-base64", "Basic " + base64.b64encode(b"no-colon").decode(), "Digest abc"],
    )
    def test_malformed_basic(self, value: str) -> None:
        handler = WebhookHandler("momentum", basic_auth=("hook", "pw"))
        with pytest.raises(MalformedSignature):
            handler.verify(self.body, {"Authorization": value})

    def test_bearer(self) -> None:
        handler = WebhookHandler("momentum", bearer_token=["old", "new"])
        handler.verify(self.body, {"Authorization": "Bearer new"})
        handler.verify(self.body, {"Authorization": "Bearer old"})
        with pytest.raises(InvalidSignature):
            handler.verify(self.body, {"Authorization": "Bearer other"})
        with pytest.raises(MalformedSignature, match="Bearer"):
            handler.verify(self.body, {"Authorization": "Basic eDp5"})

    def test_any_configured_method_is_enough(self) -> None:
        handler = WebhookHandler("momentum", token="tok", bearer_token="bear")
        handler.verify(self.body, {"X-MessageSystems-Webhook-Token": "tok"})
        handler.verify(self.body, {"Authorization": "Bearer bear"})
        with pytest.raises(MissingCredentials, match="Authorization"):
            handler.verify(self.body, {"Content-Type": "application/json"})

    def test_petal_token_in_a_header_of_the_users_choice(self) -> None:
        handler = WebhookHandler("petal", token="eeg", token_header="X-My-Token")
        body = sample_body("petal", "blink")
        handler.verify(body, {"x-my-token": "eeg"})
        with pytest.raises(MissingCredentials, match="X-My-Token"):
            handler.verify(body, {"X-Petal-Token": "eeg"})

    def test_sign_builds_momentum_basic_and_bearer_headers(self) -> None:
        basic = sign("momentum", self.body, basic_auth=("u", "p"))
        assert basic["Authorization"] == "Basic " + base64.b64encode(b"u:p").decode()
        assert basic["X-MessageSystems-Batch-ID"]
        bearer = sign("momentum", self.body, bearer_token="t")
        assert bearer["Authorization"] == "Bearer t"


SIGNING = [name for name in providers() if get_provider(name).scheme is not None]


@pytest.mark.parametrize("sender", SIGNING)
def test_every_signing_sender_words_its_refusals_alike(sender: str) -> None:
    """One verifier: a hand-written sender and a described one say the same things."""
    scheme = get_provider(sender).scheme
    assert scheme is not None
    header, prefix = scheme.signature_header, scheme.signature_prefix
    form = r"<(64 hex digits|44 base64 characters)>"
    handler = WebhookHandler(sender, **credentials(sender))
    body = sample_body(sender, (*event_types(sender), "invoice.paid")[0])
    headers = sign(sender, body, **credentials(sender))
    with pytest.raises(MalformedSignature) as short:
        handler.verify(body, {**headers, header: prefix + "abc"})
    assert re.fullmatch(
        rf"the {header} signature is not of the form '{re.escape(prefix)}{form}' "
        r"\(an HMAC-SHA256\)",
        str(short.value),
    )
    if prefix:
        with pytest.raises(MalformedSignature, match=f"holds no signature like '{prefix}<"):
            handler.verify(body, {**headers, header: "abc"})
    with pytest.raises(MissingCredentials) as missing:
        handler.verify(body, {k: v for k, v in headers.items() if k != header})
    assert str(missing.value) == (
        f"the delivery has no {header} header, but this handler has a secret: "
        f"{get_provider(sender).title} signs every delivery once a secret is set on its side"
    )


def test_one_handler_verifies_from_many_threads_at_once() -> None:
    # The key is prepared once and shared: threads verifying at the same time must
    # each get their own body's signature checked, never another's.
    handler = WebhookHandler("moco", secret=MOCO_KEY, dedupe=None)
    bodies = [b'{"id": %d, "n": "%s"}' % (i, b"x" * i) for i in range(64)]
    signed = [(body, sign("moco", body, secret=MOCO_KEY)) for body in bodies]

    def verify_all(offset: int) -> list[bytes]:
        order = signed[offset:] + signed[:offset]
        return [handler.verify(body, headers).body for _ in range(20) for body, headers in order]

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(verify_all, range(8)))
    for offset, verified in enumerate(results):
        assert verified == [
            body for _ in range(20) for body, _ in signed[offset:] + signed[:offset]
        ]
    forged = bodies[1] + b" "
    with pytest.raises(InvalidSignature):
        handler.verify(forged, signed[1][1])
