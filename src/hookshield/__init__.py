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

from typing import TYPE_CHECKING

from ._browse import Attempt, BrowsableInbox, DeliveryFilter, InboxOverview
from ._dedupe import (
    DEFAULT_LEASE,
    DEFAULT_TTL,
    AsyncDedupeStore,
    Claim,
    DedupeStore,
    MemoryDedupeStore,
)
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
from ._inbox import Inbox, ManagedInbox, StoredDelivery, WorkerInbox
from ._inboxes import open_inbox
from ._json import FrozenArray, FrozenObject, json_backend
from ._logs import set_refusal_log_limit
from ._observe import (
    Answered,
    Duplicate,
    Finished,
    InProgress,
    Leased,
    Observation,
    Observer,
    Received,
    Refused,
    Routed,
    Settled,
    Stored,
    Verified,
    add_observer,
    remove_observer,
)
from ._outcome import Outcome, PendingEvents
from ._refused import Recheck, RefusalKeeper, RefusedDelivery, recheck
from ._seal import InboxKey
from ._sqlite import SQLiteDedupeStore
from ._version import __version__
from ._worker import Retry, run_stored, run_worker
from .providers._hmac import HmacSender
from .providers.github import GitHubEvent
from .providers.mindpeeker import MINDPEEKER_IPS, Coordinates, MindPeekerEvent
from .providers.moco import MocoEvent
from .providers.momentum import MomentumEvent
from .providers.moonsense import MoonsenseEvent
from .providers.petal import BAD_DATA, CHANNEL_NAMES, CHANNELS, BadData, BandPower, PetalEvent
from .providers.standard_webhooks import StandardWebhooksEvent

__all__ = [
    "BAD_DATA",
    "CHANNELS",
    "CHANNEL_NAMES",
    "DEFAULT_LEASE",
    "DEFAULT_MAX_BODY_SIZE",
    "DEFAULT_TTL",
    "MINDPEEKER_IPS",
    "Answered",
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
    "Duplicate",
    "EmptyBody",
    "Event",
    "Finished",
    "ForbiddenSource",
    "FrozenArray",
    "FrozenObject",
    "GitHubEvent",
    "HeaderTooLarge",
    "Headers",
    "HmacSender",
    "InProgress",
    "Inbox",
    "InboxKey",
    "InboxOverview",
    "InvalidEncoding",
    "InvalidSignature",
    "Leased",
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
    "Observation",
    "Observer",
    "Outcome",
    "PayloadTooDeep",
    "PendingEvents",
    "PetalEvent",
    "Received",
    "Recheck",
    "RefusalKeeper",
    "Refused",
    "RefusedDelivery",
    "Retry",
    "Routed",
    "SQLiteDedupeStore",
    "SQLiteInbox",
    "Settled",
    "StandardWebhooksEvent",
    "StoreUnavailable",
    "Stored",
    "StoredDelivery",
    "TamperedDelivery",
    "TimestampOutOfRange",
    "UnsupportedContentType",
    "Verified",
    "WebhookError",
    "WebhookHandler",
    "WorkerInbox",
    "__version__",
    "add_observer",
    "json_backend",
    "open_inbox",
    "recheck",
    "remove_observer",
    "run_stored",
    "run_worker",
    "set_refusal_log_limit",
]

if TYPE_CHECKING:
    from ._sqlite_inbox import SQLiteInbox


def __getattr__(name: str) -> object:
    # SQLiteInbox is imported on first use: most processes never load sqlite3.
    if name == "SQLiteInbox":
        from ._sqlite_inbox import SQLiteInbox

        return SQLiteInbox
    raise AttributeError(f"module 'hookshield' has no attribute {name!r}")
