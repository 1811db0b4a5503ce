"""The senders hookshield knows, one module each, by the name ``WebhookHandler`` takes."""

from __future__ import annotations

from ._base import Credentials, DemoScript, Provider
from .mindpeeker import MindPeekerProvider
from .moco import MocoProvider
from .momentum import MomentumProvider
from .moonsense import MoonsenseProvider
from .petal import PetalProvider

__all__ = ["PROVIDERS", "Credentials", "DemoScript", "Provider", "get_provider"]

#: Every sender, by name.  A new sender is a new module and one line here.
PROVIDERS: dict[str, Provider] = {
    provider.name: provider
    for provider in (
        MoonsenseProvider(),
        PetalProvider(),
        MocoProvider(),
        MindPeekerProvider(),
        MomentumProvider(),
    )
}


def get_provider(name: str | Provider) -> Provider:
    """The sender called ``name``; a ``ValueError`` listing the known ones otherwise."""
    if isinstance(name, Provider):
        return name
    try:
        return PROVIDERS[name]
    except (KeyError, TypeError):
        known = ", ".join(repr(n) for n in PROVIDERS)
        raise ValueError(f"unknown provider {name!r}; hookshield knows {known}") from None
