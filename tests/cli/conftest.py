"""Fixtures of the command-line tests."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _no_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("NO_COLOR", "HOOKSHIELD_SECRET", "HOOKSHIELD_TOKEN"):
        monkeypatch.delenv(name, raising=False)
