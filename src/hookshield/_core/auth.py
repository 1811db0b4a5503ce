"""Keys prepared for HMAC, and constant-time checks of tokens and HTTP Basic/Bearer credentials.

Theory of operation:

* Every secret is held as bytes; a ``str`` is UTF-8 encoded, as every one of our
  senders does when it keys its HMAC (MOCO's 32-character hex key is used as its ASCII
  text, not hex-decoded: the test vector of MOCO's WebHooks documentation proves it).
* Signatures are compared in one place, ``providers/_scheme.py`` (``HmacScheme``),
  with the keys prepared here (:class:`HmacSha256Key`, in :class:`Credentials`).
* Tokens and passwords are compared as SHA-256 digests of both sides, so the compare
  has a fixed length and does not reveal the length of the expected token either.
* Several secrets may be configured (key rotation); any one matching is enough.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Sequence
from contextvars import ContextVar
from dataclasses import dataclass

from .ed25519 import Ed25519Key
from .errors import (
    HeaderTooLarge,
    InvalidSignature,
    MalformedHeader,
    MalformedSignature,
)
from .headers import Headers
from .options import type_name

__all__ = [
    "MAX_HEADER_SIZE",
    "Credentials",
    "HmacSha256Key",
    "SecretLike",
    "check_authorization",
    "check_token",
    "digest_secrets",
    "normalize_secrets",
    "read_header",
]

SecretLike = str | bytes | Sequence[str | bytes]

#: The largest value of a header that authentication reads, in bytes; larger ones get 431.
MAX_HEADER_SIZE = 8192

#: When the delivery being verified arrived (Unix seconds), if it is verified later
#: than it arrived: a delivery run from an inbox is verified again by its worker, and
#: its signed timestamp must be judged against its arrival, not the worker's clock.
RECEIVED_AT: ContextVar[float | None] = ContextVar("hookshield_received_at", default=None)


def normalize_secrets(value: SecretLike | None, *, name: str) -> tuple[bytes, ...]:
    """Turn one secret or a sequence of them into a tuple of non-empty byte strings."""
    if value is None:
        return ()
    items: Sequence[str | bytes]
    if isinstance(value, (str, bytes)):
        items = [value]
    elif isinstance(value, Sequence):
        items = [*value]
    else:
        raise TypeError(
            f"{name} must be a str, bytes or a sequence of them, not {type_name(value)}"
        )
    if not items:
        raise ValueError(f"{name} is an empty sequence: pass at least one secret")
    secrets: list[bytes] = []
    for item in items:
        if isinstance(item, str):
            encoded = item.encode("utf-8")
        elif isinstance(item, (bytes, bytearray)):
            encoded = bytes(item)
        else:
            raise TypeError(f"each {name} must be a str or bytes, not {type_name(item)}")
        if not encoded:
            raise ValueError(f"{name} must not be empty: an empty key authenticates anyone")
        secrets.append(encoded)
    return tuple(secrets)


def digest_secrets(secrets: Sequence[bytes]) -> tuple[bytes, ...]:
    """SHA-256 digests of ``secrets``, for fixed-length constant-time compares."""
    return tuple(hashlib.sha256(secret).digest() for secret in secrets)


def read_header(
    headers: Headers, name: str, *, max_size: int = MAX_HEADER_SIZE, credential: bool = True
) -> str | None:
    """The value of a header the sender sends once, refusing a repeated or oversized one.

    A repeated credential (a signature, or a header the signature covers) is a
    :class:`MalformedSignature` (401); a repeated header that is no credential (an
    unsigned delivery GUID), with ``credential=False``, a :class:`MalformedHeader` (400).
    """
    value = headers.get(name)
    if value is None:
        return None
    if len(value) > max_size:
        raise HeaderTooLarge(
            f"the {name} header is {len(value)} bytes long; at most {max_size} are accepted"
        )
    if headers.is_repeated(name):
        error = MalformedSignature if credential else MalformedHeader
        raise error(f"the {name} header was sent more than once; a delivery must carry exactly one")
    return value


class HmacSha256Key:
    """An HMAC-SHA256 key (RFC 2104), keyed once: each message is signed by a copy.

    ``hmac.digest(key, ...)`` derives the key's padded blocks, and with OpenSSL 3
    looks the digest up, on every call: for a 1 KB body that is a quarter of the
    HMAC's time (about 0.5 µs of 2.1).  The keyed object made here is only ever
    copied, never updated, so threads share it safely; the copy is the standard
    library's own :meth:`hmac.HMAC.copy`, not a hand-made HMAC.
    """

    __slots__ = ("_keyed",)

    def __init__(self, key: bytes) -> None:
        self._keyed = hmac.new(key, digestmod="sha256")

    def digest(self, message: bytes) -> bytes:
        """The HMAC-SHA256 of ``message``."""
        mac = self._keyed.copy()
        mac.update(message)
        return mac.digest()

    def hexdigest(self, message: bytes) -> str:
        """The lower-case hex HMAC-SHA256 of ``message``."""
        mac = self._keyed.copy()
        mac.update(message)
        return mac.hexdigest()

    def __repr__(self) -> str:
        return "HmacSha256Key(<redacted>)"


@dataclass(frozen=True, slots=True)
class Credentials:
    """A handler's credentials, prepared once at construction.

    ``hmac_keys`` hold each HMAC key (:class:`HmacSha256Key`); ``public_keys`` are
    ed25519 keys (Standard Webhooks' ``v1a``); ``tokens``, ``basic`` and ``bearer`` are
    SHA-256 digests, so that the per-request compare has a fixed length.
    ``tolerance``, where the handler sets one, is the window (seconds) of a signed
    timestamp in place of the sender's own.
    """

    hmac_keys: tuple[HmacSha256Key, ...] = ()
    tokens: tuple[bytes, ...] = ()
    token_header: str | None = None
    basic: tuple[bytes, ...] = ()
    bearer: tuple[bytes, ...] = ()
    public_keys: tuple[Ed25519Key, ...] = ()
    tolerance: float | None = None

    @property
    def empty(self) -> bool:
        """Whether no credential at all is configured."""
        return not (self.signed or self.tokens or self.basic or self.bearer)

    @property
    def signed(self) -> bool:
        """Whether a signature is checked: an HMAC secret or an ed25519 public key is set."""
        return bool(self.hmac_keys or self.public_keys)

    def describe(self) -> list[str]:
        """How many of each credential there are, for a repr: never the values."""
        counts = (
            ("secrets", self.hmac_keys),
            ("public_keys", self.public_keys),
            ("tokens", self.tokens),
            ("basic_auth", self.basic),
            ("bearer_tokens", self.bearer),
        )
        return [f"{label}={len(values)}" for label, values in counts if values]


def check_token(value: str, expected: Sequence[bytes], *, header: str) -> None:
    """Check a shared token against the SHA-256 ``expected`` digests of the configured ones."""
    received = hashlib.sha256(value.strip().encode("utf-8", "replace")).digest()
    if not _matches_any(received, expected):
        raise InvalidSignature(
            f"the {header} token does not match the one configured for this handler"
        )


def check_authorization(
    value: str,
    *,
    basic: Sequence[bytes] = (),
    bearer: Sequence[bytes] = (),
) -> None:
    """Check an ``Authorization`` header against Basic or Bearer credentials.

    ``basic`` holds SHA-256 digests of ``b"user:password"``, ``bearer`` of the tokens.
    """
    schemes = " or ".join(s for s, on in (("Basic", basic), ("Bearer", bearer)) if on)
    scheme, _, credentials = value.strip().partition(" ")
    scheme = scheme.lower()
    credentials = credentials.strip()
    if scheme == "basic" and basic:
        try:
            decoded = base64.b64decode(credentials.encode("ascii"), validate=True)
        except (binascii.Error, UnicodeEncodeError):
            raise MalformedSignature(
                "the Authorization header's Basic credentials are not valid base64"
            ) from None
        if b":" not in decoded:
            raise MalformedSignature(
                "the Authorization header's Basic credentials must be 'user:password'"
            )
        if not _matches_any(hashlib.sha256(decoded).digest(), basic):
            raise InvalidSignature("the Basic user name or password does not match")
        return
    if scheme == "bearer" and bearer:
        received = hashlib.sha256(credentials.encode("utf-8", "replace")).digest()
        if not _matches_any(received, bearer):
            raise InvalidSignature("the Bearer token does not match")
        return
    raise MalformedSignature(f"the Authorization header must use the {schemes} scheme")


def _matches_any(received: bytes, expected: Sequence[bytes]) -> bool:
    # Compare against every configured value, so the time taken does not say which.
    matched = False
    for candidate in expected:
        matched |= hmac.compare_digest(received, candidate)
    return matched
