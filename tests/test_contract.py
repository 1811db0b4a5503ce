"""Every registered sender keeps the contract: the list comes from the registry alone."""

from __future__ import annotations

import pytest

from hookshield.testing import providers

from .contract import SenderContract


@pytest.fixture(params=providers())
def sender(request: pytest.FixtureRequest) -> str:
    """Each sender of the registry in turn."""
    name: str = request.param
    return name


class TestEveryRegisteredSender(SenderContract):
    """The contract, for each registered sender."""
