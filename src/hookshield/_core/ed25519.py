"""ed25519 signatures (Standard Webhooks' ``v1a``), through the optional ``cryptography`` package.

Theory of operation: the standard library has no ed25519, and hookshield's core imports
nothing else, so this module imports ``cryptography`` (the ``hookshield[ed25519]``
extra) only when a key is made: a handler given ``public_key=`` makes its keys when it
is built, and without the package it is refused then, with an ``ImportError`` that
says what to install, never at the first delivery.  Keys arrive here as raw bytes;
how a sender writes them (``whpk_<base64>``) is its scheme's concern.

Verifying involves no secret (the key is public), so nothing here needs a
constant-time compare: ``cryptography`` checks the signature itself.

Nothing here logs, awaits, touches a store or starts a thread.
"""

from __future__ import annotations

from types import ModuleType
from typing import Final

__all__ = ["INSTALL", "KEY_SIZE", "SIGNATURE_SIZE", "Ed25519Key", "Ed25519SigningKey"]

#: What to run for ed25519 support; every refusal for its lack says it.
INSTALL: Final = 'pip install "hookshield[ed25519]"'
#: The size of an ed25519 public key, of a private key's seed and of a signature.
KEY_SIZE: Final = 32
SIGNATURE_SIZE: Final = 64


def _ed25519() -> ModuleType:
    try:
        from cryptography.hazmat.primitives.asymmetric import ed25519
    except ImportError as exc:
        raise ImportError(
            "ed25519 signatures (Standard Webhooks' v1a) need the cryptography package, "
            f"which hookshield's core does not install: {INSTALL}"
        ) from exc
    return ed25519


class Ed25519Key:
    """An ed25519 public key that verifies signatures (``ValueError`` for a bad key)."""

    __slots__ = ("_key", "raw")

    def __init__(self, raw: bytes) -> None:
        if len(raw) != KEY_SIZE:
            raise ValueError(f"an ed25519 public key is {KEY_SIZE} bytes, not {len(raw)}")
        #: The key's 32 bytes.
        self.raw = raw
        self._key = _ed25519().Ed25519PublicKey.from_public_bytes(raw)

    def verify(self, signature: bytes, message: bytes) -> bool:
        """Whether ``signature`` (64 bytes) is this key's signature of ``message``."""
        from cryptography.exceptions import InvalidSignature

        if len(signature) != SIGNATURE_SIZE:
            return False
        try:
            self._key.verify(signature, message)
        except InvalidSignature:
            return False
        return True

    def __repr__(self) -> str:
        return f"Ed25519Key({self.raw.hex()[:16]}...)"


class Ed25519SigningKey:
    """An ed25519 private key, to sign as a sender does (``hookshield.testing``).

    ``raw`` is its 32-byte seed, or the 64 bytes of seed and public key that libsodium
    writes (whose public half must then match).
    """

    __slots__ = ("_key",)

    def __init__(self, raw: bytes) -> None:
        if len(raw) not in (KEY_SIZE, 2 * KEY_SIZE):
            raise ValueError(
                f"an ed25519 private key is a {KEY_SIZE}-byte seed, or the seed and its "
                f"public key ({2 * KEY_SIZE} bytes), not {len(raw)} bytes"
            )
        self._key = _ed25519().Ed25519PrivateKey.from_private_bytes(raw[:KEY_SIZE])
        if len(raw) == 2 * KEY_SIZE and raw[KEY_SIZE:] != self.public_key():
            raise ValueError("the private key's second half is not its public key")

    def sign(self, message: bytes) -> bytes:
        """The 64-byte signature of ``message``."""
        signature: bytes = self._key.sign(message)
        return signature

    def public_key(self) -> bytes:
        """The 32 bytes of the matching public key."""
        from cryptography.hazmat.primitives import serialization

        raw: bytes = self._key.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )
        return raw

    def __repr__(self) -> str:
        return "Ed25519SigningKey(<redacted>)"
