"""A handler's credential options, turned once into prepared credentials.

Theory of operation: ``WebhookHandler(secret=..., public_key=..., token=...,
basic_auth=..., bearer_token=..., allow_unsigned=..., tolerance=...)`` is where a
misconfiguration is cheapest to find, so every one is refused here, at construction,
with a ``ValueError`` or ``TypeError`` that says what to pass instead: a credential
the sender cannot carry, a handler with none for a sender that signs, an empty
secret.  What comes out is ready for constant-time checks on every delivery: each
HMAC key's inner and outer states computed once, each ed25519 public key loaded (the ``hookshield[ed25519]``
extra: without it, an ``ImportError`` that says so), each token and password
digested to a fixed length.  ``tolerance=``, the window of a signed timestamp, rides
with them, refused for a sender that signs no timestamp.

Nothing here sees a delivery.  The prepared :class:`Credentials` type itself lives in
``_auth``, which the senders' modules import: they never import this handler-side module.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

from .auth import Credentials, HmacSha256Key, SecretLike, digest_secrets, normalize_secrets
from .options import number, type_name

if TYPE_CHECKING:
    from ..providers import Provider

__all__ = ["BasicAuth", "Credentials", "prepare_credentials"]

logger = logging.getLogger("hookshield")

#: One ``(user, password)`` pair, or several during a rotation.
BasicAuth = tuple[str, str] | Sequence[tuple[str, str]]


def prepare_credentials(
    sender: Provider,
    *,
    secret: SecretLike | None,
    token: SecretLike | None,
    token_header: str | None,
    basic_auth: BasicAuth | None,
    bearer_token: SecretLike | None,
    allow_unsigned: bool,
    public_key: SecretLike | None = None,
    tolerance: float | None = None,
) -> Credentials:
    """Check the options against what ``sender`` can carry, and prepare them."""
    # Each option's type is judged first, whatever the sender: a wrong one is named
    # as such rather than as an option the sender cannot carry.
    secrets = normalize_secrets(secret, name="secret")
    public = normalize_secrets(public_key, name="public_key")
    tokens = normalize_secrets(token, name="token")
    pairs = _basic_pairs(basic_auth)
    bearers = normalize_secrets(bearer_token, name="bearer_token")
    window = None if tolerance is None else number("tolerance", tolerance)
    given = {
        "secret": secret,
        "public_key": public_key,
        "token": token,
        "basic_auth": basic_auth,
        "bearer_token": bearer_token,
    }
    can = " or ".join(f"{option}=" for option in sorted(sender.accepts))
    for option, value in given.items():
        if value is not None and option not in sender.accepts:
            raise ValueError(f"{sender.title} deliveries cannot carry {option}=; pass {can}")
    if token_header is not None and token is None:
        raise ValueError("token_header= names where the token travels; pass token= too")
    if window is not None:
        _check_tolerance(sender, window)
    credentials = Credentials(
        hmac_keys=tuple(HmacSha256Key(key) for key in sender.signing_keys(secrets)),
        tokens=digest_secrets(tokens),
        token_header=token_header,
        basic=digest_secrets(pairs),
        bearer=digest_secrets(bearers),
        public_keys=(
            sender.scheme.public_keys(public, sender=sender.title)
            if public and sender.scheme is not None
            else ()
        ),
        tolerance=window,
    )
    if credentials.empty:
        _check_unsigned(sender, allow_unsigned, can)
    return credentials


def _check_tolerance(sender: Provider, window: float) -> None:
    if not (math.isfinite(window) and window > 0):
        raise ValueError("tolerance must be a positive, finite number of seconds")
    if sender.scheme is None or sender.scheme.timestamp_header is None:
        raise ValueError(
            f"{sender.title} signs no timestamp, so tolerance= has nothing to judge: a "
            "replay of its deliveries is stopped by de-duplication (see the security page)"
        )


def _check_unsigned(sender: Provider, allow_unsigned: bool, can: str) -> None:
    if not sender.can_be_unsigned:
        keys = (
            " (or public_key=, for its ed25519 signatures)"
            if "public_key" in sender.accepts
            else ""
        )
        raise ValueError(
            f"{sender.title} signs every delivery: pass secret= (the signing secret "
            f"from {sender.title}'s webhook settings){keys}"
        )
    if not allow_unsigned:
        raise ValueError(
            f"a {sender.title} handler needs a credential: pass {can}, or "
            "allow_unsigned=True to accept deliveries anyone could forge "
            "(then restrict the endpoint, for example with allowed_ips=)"
        )
    logger.warning(
        "hookshield: %s handler accepts unsigned deliveries (allow_unsigned=True); "
        "anyone who can reach the endpoint can forge them",
        sender.title,
    )


def _basic_pairs(value: BasicAuth | None) -> tuple[bytes, ...]:
    if value is None:
        return ()
    if isinstance(value, tuple) and len(value) == 2 and all(isinstance(v, str) for v in value):
        pairs: Sequence[object] = [value]
    elif isinstance(value, Sequence) and not isinstance(value, (str, bytes, bytearray)):
        pairs = value
    else:
        raise TypeError(
            "basic_auth must be a (user, password) pair of strings, or a sequence of "
            f"them, not {type_name(value)}"
        )
    if not pairs:
        raise ValueError("basic_auth is an empty sequence: pass (user, password)")
    result = []
    for pair in pairs:
        if not (
            isinstance(pair, tuple) and len(pair) == 2 and all(isinstance(v, str) for v in pair)
        ):
            # The type only: the value would put a password in the startup log.
            raise TypeError(
                f"basic_auth takes (user, password) string pairs, not {type_name(pair)}"
            )
        user, password = pair
        if ":" in user or not password:
            raise ValueError(
                "a Basic user name cannot contain ':' and the password cannot be empty"
            )
        result.append(f"{user}:{password}".encode())
    return tuple(result)
