"""Build signed deliveries exactly as the real senders do, to test your own receiver.

>>> from hookshield import WebhookHandler
>>> from hookshield.testing import sample_delivery
>>> handler = WebhookHandler("mindpeeker", secret="whsec")
>>> body, headers = sample_delivery("mindpeeker", "session.completed", secret="whsec")
>>> handler.verify(body, headers).events[0].type
'session.completed'

:func:`sign` gives the headers for a body you wrote; :func:`sample_body` a realistic
body of any documented event type; :func:`sample_delivery` both.  Every sample is
new bytes (a fresh id or time inside the signed body, as the real senders' bodies
differ), so a receiver that drops duplicates runs its routes for each one.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

from ._core.auth import SecretLike
from .providers import PROVIDERS, Provider, first_credential, get_provider

__all__ = [
    "SampleDelivery",
    "credentials",
    "event_types",
    "forged_credentials",
    "providers",
    "sample_batch",
    "sample_body",
    "sample_delivery",
    "sign",
]


class SampleDelivery(NamedTuple):
    """A body and the headers to send it with; unpacks as ``body, headers``."""

    body: bytes
    headers: dict[str, str]


def providers() -> tuple[str, ...]:
    """The names of every sender hookshield knows."""
    return tuple(PROVIDERS)


def credentials(provider: str) -> dict[str, Any]:
    """Credentials to test ``provider`` with, as its module declares them.

    Keyword arguments of both ``WebhookHandler`` and :func:`sign`:
    ``WebhookHandler(provider, **credentials(provider))`` verifies what
    ``sample_delivery(provider, event_type, **credentials(provider))`` sends.
    """
    return dict(get_provider(provider).test_credentials)


def forged_credentials(
    provider: str, credentials: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """Credentials of the same kinds as ``credentials`` that are not them: a forger's guess.

    ``credentials`` are :func:`credentials` (the sender's test ones) by default.  A
    secret is written as the sender writes its secrets (``whsec_<base64>``...), so
    that :func:`sign` signs with it, wrongly.
    """
    sender = get_provider(provider)
    given = sender.test_credentials if credentials is None else credentials
    forged: dict[str, Any] = {}
    for option, value in given.items():
        if option == "secret" and sender.scheme is not None:
            forged[option] = sender.scheme.write_secret(b"not-the-secret")
        elif option == "basic_auth":
            user, password = value
            forged[option] = (user, "not-" + password)
        else:
            forged[option] = "not-" + first_credential(value)
    return forged


def event_types(provider: str) -> tuple[str, ...]:
    """Every documented event type of ``provider``."""
    return get_provider(provider).event_types


def sign(
    provider: str,
    body: bytes,
    *,
    secret: SecretLike | None = None,
    token: SecretLike | None = None,
    token_header: str | None = None,
    basic_auth: tuple[str, str] | None = None,
    bearer_token: SecretLike | None = None,
    event: str | None = None,
    content_type: str | None = None,
    private_key: SecretLike | None = None,
    **options: Any,
) -> dict[str, str]:
    """The headers the real ``provider`` sends with ``body``.

    Pass the credential the sender is configured with (``secret`` for Moonsense, MOCO
    and MindPeeker; ``token``, ``basic_auth`` or ``bearer_token`` for Momentum and
    Petal; for Standard Webhooks and Svix, ``secret`` for a ``v1`` signature and, with
    the ``hookshield[ed25519]`` extra, ``private_key`` (``whsk_<base64>``) for a
    ``v1a`` one, or both).  ``event`` names the event for senders that put it in a header (MOCO's
    ``"activity.create"``, Moonsense's ``X-Moonsense-Event``).  Other options:
    MOCO's ``timestamp`` (ms), ``user_id``, ``account_url``; Momentum's ``batch_id``.
    """
    sender = get_provider(provider)
    if not isinstance(body, bytes):
        raise TypeError("sign() takes the body as bytes, exactly as it will be sent")
    signs = secret is not None or private_key is not None
    if "secret" in sender.accepts and not signs and not sender.can_be_unsigned:
        raise ValueError(f"{sender.title} signs every delivery: pass secret=")
    if private_key is not None and "public_key" not in sender.accepts:
        raise ValueError(f"{sender.title} signs with no ed25519 key: pass secret=")
    if private_key is not None:
        options["private_key"] = private_key
    return sender.sign(
        body,
        secret=secret,
        token=token,
        token_header=token_header,
        basic_auth=basic_auth,
        bearer_token=bearer_token,
        event=event,
        content_type=content_type,
        **options,
    )


def sample_body(
    provider: str,
    event_type: str,
    data: Mapping[str, Any] | None = None,
    *,
    content_type: str | None = None,
) -> bytes:
    """A realistic body of ``event_type``, with ``data`` merged into the event's data.

    With ``content_type="application/x-www-form-urlencoded"`` (Moonsense, Petal) the
    JSON is put in the form's ``payload`` field, as those senders do.
    """
    sender = get_provider(provider)
    body = sender.sample(event_type, data or {})
    if content_type == "application/x-www-form-urlencoded":
        if not sender.accepts_form:
            raise ValueError(f"{sender.title} does not send form-encoded bodies")
        body = urllib.parse.urlencode({"payload": body.decode("utf-8")}).encode("ascii")
    return body


def sample_batch(
    event_types: Sequence[str],
    *,
    provider: str | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> bytes:
    """One delivery with an event of each of ``event_types``, as a sender of batches sends it.

    ``provider`` may be left out while hookshield knows a single sender of batches
    (Momentum).  A sender of one event per delivery takes exactly one type.
    ``overrides`` are merged into each event's data.  Each call makes new event ids.
    """
    sender = get_provider(provider) if provider is not None else _the_batch_sender()
    if isinstance(event_types, str):
        raise TypeError("sample_batch() takes a list of event types, not one string")
    return sender.sample_batch(list(event_types), overrides)


def _the_batch_sender() -> Provider:
    senders = [sender for sender in PROVIDERS.values() if sender.sends_batches]
    if len(senders) != 1:
        names = ", ".join(sender.name for sender in senders) or "none"
        raise TypeError(f"pass provider=: the senders of batches are {names}")
    return senders[0]


def sample_delivery(
    provider: str,
    event_type: str,
    data: Mapping[str, Any] | None = None,
    *,
    content_type: str | None = None,
    **credentials: Any,
) -> SampleDelivery:
    """A realistic, signed delivery of ``event_type``: ``body, headers = sample_delivery(...)``.

    ``credentials`` are those :func:`sign` takes (``secret=``, ``token=``, ...).
    """
    body = sample_body(provider, event_type, data, content_type=content_type)
    credentials.setdefault("event", event_type)
    headers = sign(provider, body, content_type=content_type, **credentials)
    return SampleDelivery(body, headers)
