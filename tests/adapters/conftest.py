"""Fixtures for the adapter tests."""

from __future__ import annotations

import pytest

from .support import SENDERS


@pytest.fixture(params=SENDERS)
def sender(request: pytest.FixtureRequest) -> str:
    """Each sender in turn."""
    name: str = request.param
    return name
