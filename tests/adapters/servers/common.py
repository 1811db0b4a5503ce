"""The handlers every test server serves (see the package docstring)."""

from __future__ import annotations

import os
import time
from pathlib import Path

from hookshield import Event, WebhookHandler

from ..support import CREDENTIALS, SENDERS, SMALL_LIMIT

LOG = Path(os.environ.get("HOOKSHIELD_TEST_LOG", os.devnull))


def record(event: Event) -> None:
    """Note in the log that ``event`` was handled."""
    with LOG.open("a", encoding="utf-8") as log:
        log.write(f"{event.provider} {event.data.get('marker')}\n")


def record_when_released(event: Event) -> None:
    """Wait (at most 10 s) for the test to create the event's gate file, then record it.

    The test checks that the sender got its answer while this still waited.
    """
    gate = LOG.with_name(f"gate-{event.data.get('marker')}")
    deadline = time.monotonic() + 10
    while not gate.exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    record(event)


def handler(sender: str, **options: object) -> WebhookHandler:
    made = WebhookHandler(sender, **CREDENTIALS[sender], **options)  # type: ignore[arg-type]
    made.on("*")(record)
    return made


HANDLERS = {sender: handler(sender) for sender in SENDERS}
SMALL = handler("moco", max_body_size=SMALL_LIMIT)
BACKGROUND = WebhookHandler("mindpeeker", **CREDENTIALS["mindpeeker"])
BACKGROUND.on("*")(record_when_released)

# Named, for the one HOOKSHIELD_ENDPOINTS entry given as a dotted path.
mindpeeker = HANDLERS["mindpeeker"]
