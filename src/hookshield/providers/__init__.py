"""The senders hookshield knows, one module each, by the name ``WebhookHandler`` takes.

Public: a sender that needs code of its own (not just an :class:`HmacSender`
description) is a :class:`Provider` subclass in a module, registered in
:data:`PROVIDERS`; see the Architecture page.  The leading-underscore modules here
are the senders' shared plumbing and stay private.
"""

from __future__ import annotations

from .._options import type_name
from ._base import Credentials, DemoScript, Provider
from ._hmac import HmacSender
from .github import GitHubProvider
from .mindpeeker import MindPeekerProvider
from .moco import MocoProvider
from .momentum import MomentumProvider
from .moonsense import MoonsenseProvider
from .petal import PetalProvider
from .standard_webhooks import StandardWebhooksProvider

__all__ = ["PROVIDERS", "Credentials", "DemoScript", "Provider", "ProviderLike", "get_provider"]

#: What ``WebhookHandler`` takes as its sender: a name, a description or a provider.
ProviderLike = str | HmacSender | Provider

#: Every sender, by name.  A new sender is a new module and one line here.
PROVIDERS: dict[str, Provider] = {
    provider.name: provider
    for provider in (
        MoonsenseProvider(),
        PetalProvider(),
        MocoProvider(),
        MindPeekerProvider(),
        MomentumProvider(),
        GitHubProvider(),
        StandardWebhooksProvider(),
    )
}


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
