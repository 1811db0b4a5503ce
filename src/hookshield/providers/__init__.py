"""The senders hookshield knows, one module each, by the name ``WebhookHandler`` takes.

Public: a sender that needs code of its own (not just an :class:`HmacSender`
description) is a :class:`Provider` subclass in a module, registered in
:data:`PROVIDERS`; see the Architecture page.  The leading-underscore modules here
are the senders' shared plumbing and stay private.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator, MutableMapping

from .._options import type_name
from ._base import Credentials, DemoScript, Provider
from ._hmac import HmacSender

__all__ = ["PROVIDERS", "Credentials", "DemoScript", "Provider", "ProviderLike", "get_provider"]

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

    def __iter__(self) -> Iterator[str]:
        return iter(self._senders)

    def __len__(self) -> int:
        return len(self._senders)

    def __repr__(self) -> str:
        return f"<hookshield senders: {', '.join(self._senders)}>"


#: Every sender, by name.  A new sender is a new module and one line here.
PROVIDERS: MutableMapping[str, Provider] = _Registry(
    {
        "moonsense": (".moonsense", "MoonsenseProvider"),
        "petal": (".petal", "PetalProvider"),
        "moco": (".moco", "MocoProvider"),
        "mindpeeker": (".mindpeeker", "MindPeekerProvider"),
        "momentum": (".momentum", "MomentumProvider"),
        "github": (".github", "GitHubProvider"),
        "standard-webhooks": (".standard_webhooks", "StandardWebhooksProvider"),
    }
)


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
