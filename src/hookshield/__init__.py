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

from ._core.errors import (
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
from ._core.events import Delivery, Event
from ._core.frozen_json import FrozenArray, FrozenObject, json_backend
from ._core.headers import Headers
from ._handling.dedupe import (
    DEFAULT_LEASE,
    DEFAULT_TTL,
    AsyncDedupeStore,
    Claim,
    DedupeStore,
    MemoryDedupeStore,
)
from ._handling.dispatch import Accepted
from ._handling.handler import DEFAULT_MAX_BODY_SIZE, WebhookHandler
from ._handling.logs import set_refusal_log_limit
from ._handling.observe import (
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
from ._handling.outcome import Outcome, PendingEvents
from ._version import __version__

if TYPE_CHECKING:
    from ._durable.browse import (
        Attempt,
        BrowsableInbox,
        DeliveryFilter,
        InboxOverview,
        ManagedInbox,
    )
    from ._durable.inbox import Inbox, StoredDelivery, WorkerInbox
    from ._durable.inboxes import open_inbox
    from ._durable.refused import Recheck, RefusalKeeper, RefusedDelivery, recheck
    from ._durable.seal import InboxKey
    from ._durable.sqlite_inbox import SQLiteInbox
    from ._durable.worker import Retry, run_stored, run_worker
    from ._handling.construct import construct_event
    from ._stores.sqlite import SQLiteDedupeStore
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
    "SvixEvent",
    "TamperedDelivery",
    "TimestampOutOfRange",
    "UnsupportedContentType",
    "Verified",
    "WebhookError",
    "WebhookHandler",
    "WorkerInbox",
    "__version__",
    "add_observer",
    "construct_event",
    "json_backend",
    "open_inbox",
    "recheck",
    "remove_observer",
    "run_stored",
    "run_worker",
    "set_refusal_log_limit",
]

# What a process that only receives deliveries never needs is imported on first use:
# each sender's module (with its events), the inbox, its browsing and the worker, the
# keeping of refusals, the SQLite stores (sqlite3).  The name -> the module that defines it.
_LAZY: Final = {
    **dict.fromkeys(
        ("Attempt", "BrowsableInbox", "DeliveryFilter", "InboxOverview", "ManagedInbox"),
        "._durable.browse",
    ),
    "construct_event": "._handling.construct",
    **dict.fromkeys(("Inbox", "StoredDelivery", "WorkerInbox"), "._durable.inbox"),
    "open_inbox": "._durable.inboxes",
    **dict.fromkeys(
        ("Recheck", "RefusalKeeper", "RefusedDelivery", "recheck"), "._durable.refused"
    ),
    "InboxKey": "._durable.seal",
    "SQLiteDedupeStore": "._stores.sqlite",
    "SQLiteInbox": "._durable.sqlite_inbox",
    **dict.fromkeys(("Retry", "run_stored", "run_worker"), "._durable.worker"),
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


def _public(value: object) -> object:
    """``value``, named as ``hookshield``'s when it is a class or function of a submodule.

    Reprs, tracebacks and pickles then say ``hookshield.InvalidSignature``, not the
    private layout beneath it (httpx does the same), which may move between releases.
    """
    named = isinstance(value, type) or (callable(value) and hasattr(value, "__code__"))
    if named and getattr(value, "__module__", "").startswith(__name__ + "."):
        value.__module__ = __name__
    return value


for _name in __all__:
    if _name in globals():
        _public(globals()[_name])
del _name


def __getattr__(name: str) -> object:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'hookshield' has no attribute {name!r}")
    value = _public(getattr(importlib.import_module(module, __name__), name))
    globals()[name] = value  # found directly from now on
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
