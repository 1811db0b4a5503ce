"""The senders hookshield knows, and everything needed to write another one.

A sender is one module: a :class:`Provider` subclass (or an :class:`HmacProvider`
driven by an :class:`HmacSender` description, for a sender that signs with
HMAC-SHA256), registered by name in :data:`PROVIDERS`.  A built-in sender is one line
of the table below (its module is imported when it is first looked up); any other is
registered with :func:`register_provider`.  Every list of senders (``hookshield.testing.providers()``, the command line, ``hookshield
demo``, the test suite's contract tests) is read from the registry, so a registered
sender joins them all.  What a sender's module needs is exported here; see "Your own
sender" in the documentation.  The leading-underscore modules are the plumbing
behind these names and stay private.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Iterator, Mapping, MutableMapping

from .._core.auth import Credentials
from .._core.errors import (
    EmptyBody,
    InvalidEncoding,
    MalformedPayload,
    UnsupportedContentType,
)
from .._core.events import (
    Delivery,
    Event,
    as_float,
    as_int,
    as_str,
    from_epoch_by_magnitude,
    from_iso,
    from_unix,
)
from .._core.frozen_json import FrozenArray, FrozenObject, decode_json, freeze, unwrap
from .._core.headers import Headers
from .._core.options import type_name
from ._base import (
    MIB,
    UNDOCUMENTED_RETRY_WINDOW,
    DemoScript,
    Provider,
    authorization_headers,
    body_sha256,
    content_sha256,
    dedupe_ttl_for,
    first_credential,
    form_field,
    form_fields,
    is_json,
    media_type,
    unique_clock,
)
from ._hmac import HmacProvider, HmacSender
from ._payload import PayloadShape
from ._scheme import HmacScheme, check_header_name

__all__ = [
    "MIB",
    "PROVIDERS",
    "UNDOCUMENTED_RETRY_WINDOW",
    "Credentials",
    "Delivery",
    "DemoScript",
    "EmptyBody",
    "Event",
    "FrozenArray",
    "FrozenObject",
    "Headers",
    "HmacProvider",
    "HmacScheme",
    "HmacSender",
    "InvalidEncoding",
    "MalformedPayload",
    "PayloadShape",
    "Provider",
    "ProviderLike",
    "UnsupportedContentType",
    "as_float",
    "as_int",
    "as_str",
    "authorization_headers",
    "body_sha256",
    "content_sha256",
    "decode_json",
    "dedupe_ttl_for",
    "first_credential",
    "form_field",
    "form_fields",
    "freeze",
    "from_epoch_by_magnitude",
    "from_iso",
    "from_unix",
    "get_provider",
    "is_json",
    "media_type",
    "register_provider",
    "unique_clock",
    "unregister_provider",
    "unwrap",
]

#: What ``WebhookHandler`` takes as its sender: a name, a description or a provider.
ProviderLike = str | HmacSender | Provider


class _Registry(MutableMapping[str, Provider]):
    """The senders by name; a sender's module is imported when it is first looked up.

    So a process that receives from one sender loads that sender's module only.
    Assigning a name registers a sender made elsewhere.
    """

    def __init__(self, modules: dict[str, tuple[str, str]]) -> None:
        self._modules = modules  # name -> (module, class), imported on first use
        self._senders: dict[str, Provider | None] = dict.fromkeys(modules)

    def __getitem__(self, name: str) -> Provider:
        sender = self._senders[name]  # KeyError for a name never registered
        if sender is None:
            module, attribute = self._modules[name]
            made = getattr(importlib.import_module(module, __name__), attribute)()
            sender = self._senders[name] = made
        return sender

    def __setitem__(self, name: str, sender: Provider) -> None:
        self._senders[name] = sender

    def __delitem__(self, name: str) -> None:
        del self._senders[name]

    def __contains__(self, name: object) -> bool:
        return name in self._senders  # without importing the sender's module

    def __iter__(self) -> Iterator[str]:
        return iter(self._senders)

    def __len__(self) -> int:
        return len(self._senders)

    def __repr__(self) -> str:
        return f"<hookshield senders: {', '.join(self._senders)}>"


#: Every sender, by name.  A new built-in sender is a new module and one line here.
PROVIDERS: MutableMapping[str, Provider] = _Registry(
    {
        "moonsense": (".moonsense", "MoonsenseProvider"),
        "petal": (".petal", "PetalProvider"),
        "moco": (".moco", "MocoProvider"),
        "mindpeeker": (".mindpeeker", "MindPeekerProvider"),
        "momentum": (".momentum", "MomentumProvider"),
        "github": (".github", "GitHubProvider"),
        "standard-webhooks": (".standard_webhooks", "StandardWebhooksProvider"),
        "svix": (".svix", "SvixProvider"),
    }
)

_NAME = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")
_CREDENTIALS = frozenset({"secret", "public_key", "token", "basic_auth", "bearer_token"})


def get_provider(provider: ProviderLike) -> Provider:
    """The sender ``provider`` names or describes.

    A ``ValueError`` for an unknown name, a ``TypeError`` for anything but a name, an
    :class:`HmacSender` or a :class:`Provider`.
    """
    if isinstance(provider, Provider):
        return provider
    if isinstance(provider, HmacSender):
        return provider.provider()
    known = ", ".join(repr(n) for n in PROVIDERS)
    if not isinstance(provider, str):
        raise TypeError(
            "provider must be a sender's name (a str such as 'mindpeeker') or an "
            f"HmacSender, not {type_name(provider)}; hookshield knows {known}"
        )
    try:
        return PROVIDERS[provider]
    except KeyError:
        raise ValueError(f"unknown provider {provider!r}; hookshield knows {known}") from None


def register_provider(provider: Provider | HmacSender, *, replace: bool = False) -> Provider:
    """Add a sender to :data:`PROVIDERS`, under its name; returns its provider.

    From then on ``WebhookHandler("<name>", ...)``, :mod:`hookshield.testing`, the
    command line and ``hookshield demo`` know it.  The provider is checked first
    (``TypeError`` or ``ValueError``): its name, the attributes every sender declares,
    its ``default_max_body_size``, ``parse_headers`` and ``test_credentials``.  A name
    already registered is refused unless ``replace=True``.
    """
    sender = get_provider(provider)
    _check(sender)
    if sender.name in PROVIDERS and not replace:
        raise ValueError(
            f"a sender named {sender.name!r} is already registered; pass replace=True to replace it"
        )
    PROVIDERS[sender.name] = sender
    return sender


def unregister_provider(name: str) -> Provider:
    """Remove the sender registered as ``name`` and return it (``KeyError`` if none)."""
    return PROVIDERS.pop(name)


def _check(sender: Provider) -> None:
    missing = [
        attribute
        for attribute in ("name", "title", "event_class", "event_types", "accepts")
        if not hasattr(sender, attribute)
    ]
    if missing:
        raise TypeError(f"{type(sender).__name__} does not declare {', '.join(missing)}")
    if not (isinstance(sender.name, str) and _NAME.fullmatch(sender.name)):
        raise ValueError(
            f"name={sender.name!r}: use lower-case letters, digits, '.', '_' or '-' "
            "(at most 64), as in 'acme'"
        )
    if not (isinstance(sender.event_class, type) and issubclass(sender.event_class, Event)):
        raise TypeError(f"{sender.title}: event_class must be a subclass of hookshield.Event")
    if not sender.accepts <= _CREDENTIALS:
        raise ValueError(f"{sender.title}: accepts names {sorted(sender.accepts - _CREDENTIALS)}")
    if ("secret" in sender.accepts) != (sender.scheme is not None):
        raise ValueError(f"{sender.title}: a sender accepts secret= exactly when it has a scheme")
    ed25519 = sender.scheme is not None and sender.scheme.ed25519_prefix is not None
    if ("public_key" in sender.accepts) != ed25519:
        raise ValueError(
            f"{sender.title}: a sender accepts public_key= exactly when its scheme has an "
            "ed25519_prefix"
        )
    limit = sender.default_max_body_size
    if type(limit) is not int or limit < 1:
        raise ValueError(
            f"{sender.title}: default_max_body_size must be a positive number of bytes (an int)"
        )
    if not isinstance(sender.parse_headers, tuple):
        raise TypeError(f"{sender.title}: parse_headers must be a tuple of header names")
    for name in sender.parse_headers:
        check_header_name(name, f"{sender.title}'s parse_headers")
    credentials: Mapping[str, object] = sender.test_credentials
    if not (credentials or sender.can_be_unsigned) or not set(credentials) <= sender.accepts:
        raise ValueError(
            f"{sender.title}: test_credentials must be keyword arguments it accepts "
            f"({', '.join(sorted(sender.accepts))}), as the tests and the demo use them"
        )
