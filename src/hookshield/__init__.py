"""hookshield: receive webhooks safely.

>>> import hookshield
>>> handler = hookshield.WebhookHandler("mindpeeker", secret="whsec")
>>> @handler.on("session.completed")
... def done(event):
...     print(event.session_id, event.confidence)

``handler.handle(body, headers)`` verifies the raw body in constant time, parses it
into typed events, drops duplicates and calls the routes; its ``Outcome.status`` is
the HTTP status to answer.  The core uses the standard library only.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Final

from ._dedupe import (
    DEFAULT_LEASE,
    DEFAULT_TTL,
    AsyncDedupeStore,
    Claim,
    DedupeStore,
    MemoryDedupeStore,
)
from ._dispatch import Accepted
from ._errors import (
    AuthenticationError,
    BodyAlreadyRead,
    BodyTooLarge,
    DeliveryInProgress,
    EmptyBody,
    ForbiddenSource,
    HeaderTooLarge,
    InvalidEncoding,
    InvalidSignature,
    MalformedHeader,
    MalformedPayload,
    MalformedSignature,
    MissingCredentials,
    PayloadTooDeep,
    StoreUnavailable,
    TamperedDelivery,
    TimestampOutOfRange,
    UnsupportedContentType,
    WebhookError,
)
from ._events import Delivery, Event
from ._handler import DEFAULT_MAX_BODY_SIZE, WebhookHandler
from ._headers import Headers
from ._json import FrozenArray, FrozenObject, json_backend
from ._outcome import Outcome, PendingEvents
from ._version import __version__

if TYPE_CHECKING:
    from ._browse import Attempt, BrowsableInbox, DeliveryFilter, InboxOverview, ManagedInbox
    from ._construct import construct_event
    from ._inbox import Inbox, StoredDelivery, WorkerInbox
    from ._inboxes import open_inbox
    from ._refused import Recheck, RefusalKeeper, RefusedDelivery, recheck
    from ._seal import InboxKey
    from ._sqlite import SQLiteDedupeStore
    from ._sqlite_inbox import SQLiteInbox
    from ._worker import Retry, run_stored, run_worker
    from .providers._hmac import HmacSender
    from .providers.github import GitHubEvent
    from .providers.mindpeeker import MINDPEEKER_IPS, Coordinates, MindPeekerEvent
    from .providers.moco import MocoEvent
    from .providers.momentum import MomentumEvent
    from .providers.moonsense import MoonsenseEvent
    from .providers.petal import BAD_DATA, CHANNEL_NAMES, CHANNELS, BadData, BandPower, PetalEvent
    from .providers.standard_webhooks import StandardWebhooksEvent
    from .providers.svix import SvixEvent

__all__ = [
    "BAD_DATA",
    "CHANNELS",
    "CHANNEL_NAMES",
    "DEFAULT_LEASE",
    "DEFAULT_MAX_BODY_SIZE",
    "DEFAULT_TTL",
    "MINDPEEKER_IPS",
    "Accepted",
    "AsyncDedupeStore",
    "Attempt",
    "AuthenticationError",
    "BadData",
    "BandPower",
    "BodyAlreadyRead",
    "BodyTooLarge",
    "BrowsableInbox",
    "Claim",
    "Coordinates",
    "DedupeStore",
    "Delivery",
    "DeliveryFilter",
    "DeliveryInProgress",
    "EmptyBody",
    "Event",
    "ForbiddenSource",
    "FrozenArray",
    "FrozenObject",
    "GitHubEvent",
    "HeaderTooLarge",
    "Headers",
    "HmacSender",
    "Inbox",
    "InboxKey",
    "InboxOverview",
    "InvalidEncoding",
    "InvalidSignature",
    "MalformedHeader",
    "MalformedPayload",
    "MalformedSignature",
    "ManagedInbox",
    "MemoryDedupeStore",
    "MindPeekerEvent",
    "MissingCredentials",
    "MocoEvent",
    "MomentumEvent",
    "MoonsenseEvent",
    "Outcome",
    "PayloadTooDeep",
    "PendingEvents",
    "PetalEvent",
    "Recheck",
    "RefusalKeeper",
    "RefusedDelivery",
    "Retry",
    "SQLiteDedupeStore",
    "SQLiteInbox",
    "StandardWebhooksEvent",
    "StoreUnavailable",
    "StoredDelivery",
    "SvixEvent",
    "TamperedDelivery",
    "TimestampOutOfRange",
    "UnsupportedContentType",
    "WebhookError",
    "WebhookHandler",
    "WorkerInbox",
    "__version__",
    "construct_event",
    "json_backend",
    "open_inbox",
    "recheck",
    "run_stored",
    "run_worker",
]

# What a process that only receives deliveries never needs is imported on first use:
# each sender's module (with its events), the inbox, its browsing and the worker, the
# keeping of refusals, the SQLite stores (sqlite3).  The name -> the module that defines it.
_LAZY: Final = {
    **dict.fromkeys(
        ("Attempt", "BrowsableInbox", "DeliveryFilter", "InboxOverview", "ManagedInbox"),
        "._browse",
    ),
    "construct_event": "._construct",
    **dict.fromkeys(("Inbox", "StoredDelivery", "WorkerInbox"), "._inbox"),
    "open_inbox": "._inboxes",
    **dict.fromkeys(("Recheck", "RefusalKeeper", "RefusedDelivery", "recheck"), "._refused"),
    "InboxKey": "._seal",
    "SQLiteDedupeStore": "._sqlite",
    "SQLiteInbox": "._sqlite_inbox",
    **dict.fromkeys(("Retry", "run_stored", "run_worker"), "._worker"),
    "HmacSender": ".providers._hmac",
    "GitHubEvent": ".providers.github",
    **dict.fromkeys(("MINDPEEKER_IPS", "Coordinates", "MindPeekerEvent"), ".providers.mindpeeker"),
    "MocoEvent": ".providers.moco",
    "MomentumEvent": ".providers.momentum",
    "MoonsenseEvent": ".providers.moonsense",
    **dict.fromkeys(
        ("BAD_DATA", "CHANNEL_NAMES", "CHANNELS", "BadData", "BandPower", "PetalEvent"),
        ".providers.petal",
    ),
    "StandardWebhooksEvent": ".providers.standard_webhooks",
    "SvixEvent": ".providers.svix",
}


def __getattr__(name: str) -> object:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'hookshield' has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value  # found directly from now on
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
