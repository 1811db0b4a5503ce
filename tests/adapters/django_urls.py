"""The URLconf the adapter tests configure Django with; each test overrides it."""

from __future__ import annotations

from typing import Any

urlpatterns: list[Any] = []
