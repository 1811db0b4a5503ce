"""The URLconf of the dashboard's Django test: the view mounted below ``/ops/inbox/``."""

from __future__ import annotations

from typing import Any

#: Filled by the test with the view it mounts.
urlpatterns: list[Any] = []
