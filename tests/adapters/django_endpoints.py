"""A handler named by dotted path in ``HOOKSHIELD_ENDPOINTS``, as a project would."""

from __future__ import annotations

from .support import recorder

MOCO = recorder("moco")
moco = MOCO.handler
not_a_handler = object()
