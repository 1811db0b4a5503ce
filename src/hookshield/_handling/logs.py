"""The refusal log: one WARNING line per refused delivery, and a summary in a flood.

Theory of operation: a refusal is what a team must hear of when a secret rotation
goes wrong, so each one is logged at WARNING on the ``hookshield.refused`` logger,
once per delivery, naming the sender, the reason (a word from a fixed set, see
:func:`reason_of`), the peer and the delivery id where one was read.  The same
values are in the record's ``extra`` (``hookshield_sender``, ``hookshield_status``,
``hookshield_reason``, ``hookshield_error``, ``hookshield_peer``,
``hookshield_delivery_id``), so that a JSON formatter writes them as fields.  Every
value a sender chose is escaped (``_text.printable``) and cut to a bound, in the
message and in ``extra`` alike.

A flood of forgeries must not fill the disk: per sender, the first ``burst``
refusals of each ``seconds`` are logged one by one; the rest are counted, by reason,
and summed up in one WARNING line when the next refusal (or answer) comes after the
period.  :func:`set_refusal_log_limit` changes both numbers.

This module only logs; it is called by ``observe.py``, never by an adapter.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Final

from .._core.errors import (
    AuthenticationError,
    BodyTooLarge,
    ForbiddenSource,
    HeaderTooLarge,
    InvalidSignature,
    MalformedHeader,
    MalformedPayload,
    MalformedSignature,
    MissingCredentials,
    TamperedDelivery,
    TimestampOutOfRange,
    UnsupportedContentType,
    WebhookError,
)
from .._core.text import printable

__all__ = ["REASONS", "reason_of", "set_refusal_log_limit"]

logger = logging.getLogger("hookshield")
refusals = logging.getLogger("hookshield.refused")

#: The reason of a refusal, by the error's type: the first that matches.  A type of
#: the user's own (a WebhookError subclass) is named by the nearest type it extends.
_BY_TYPE: Final[tuple[tuple[type[WebhookError], str], ...]] = (
    (ForbiddenSource, "source"),
    (TimestampOutOfRange, "timestamp"),
    (TamperedDelivery, "tampered"),
    (MissingCredentials, "credentials"),
    (InvalidSignature, "signature"),
    (MalformedSignature, "signature"),
    (AuthenticationError, "credentials"),
    (BodyTooLarge, "too_large"),
    (HeaderTooLarge, "too_large"),
    (UnsupportedContentType, "content_type"),
    (MalformedPayload, "malformed"),
    (MalformedHeader, "malformed"),
)
#: Every reason a refusal is given: a label's values can be no others.
REASONS: Final = (*dict.fromkeys(reason for _, reason in _BY_TYPE), "method", "other")

#: The longest text of a sender's kept in a line (an id, a peer, a message).
_MOST_TEXT: Final = 200
_MOST_MESSAGE: Final = 500


def reason_of(error: WebhookError | None) -> str:
    """The word for why ``error`` refused a delivery: one of :data:`REASONS`."""
    if error is None:
        return "other"
    for kind, reason in _BY_TYPE:
        if isinstance(error, kind):
            return reason
    return "other"


def _cut(text: str | None, most: int = _MOST_TEXT) -> str | None:
    if text is None:
        return None
    shown = printable(text)
    return shown if len(shown) <= most else shown[: most - 3] + "..."


@dataclass(slots=True)
class _Flood:
    """One sender's refusals in the current period."""

    start: float
    logged: int = 0
    skipped: int = 0
    reasons: Counter[str] = field(default_factory=Counter)


@dataclass(slots=True)
class _Limit:
    burst: int = 10
    seconds: float = 60.0


_limit = _Limit()
_floods: dict[str, _Flood] = {}
#: How many senders have refusals counted and not yet summed up: 0 on the hot path.
_pending = 0
_flood_lock = threading.Lock()


def set_refusal_log_limit(burst: int = 10, seconds: float = 60.0) -> None:
    """Log at most ``burst`` refusals per sender one by one in each ``seconds``.

    Refusals beyond them are counted by reason and summed up in one WARNING line
    when the period is over (with the next refusal or answer after it).  ``burst=0``
    logs summaries only.  The defaults are 10 a minute.  Setting it starts a new
    period for every sender, and drops the counts not yet summed up.
    """
    global _pending
    if isinstance(burst, bool) or not isinstance(burst, int) or burst < 0:
        raise ValueError("burst must be a whole number, 0 or more")
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not seconds > 0:
        raise ValueError("seconds must be a positive number")
    with _flood_lock:
        _limit.burst, _limit.seconds = burst, float(seconds)
        _floods.clear()
        _pending = 0


def refusal(
    sender: str,
    status: int,
    reason: str,
    error: WebhookError | str,
    peer: str | None,
    delivery_id: str | None,
) -> None:
    """Log one refused delivery, or count it when its sender's refusals flood."""
    global _pending
    now = time.monotonic()
    summary: tuple[int, Counter[str], float] | None = None
    with _flood_lock:
        flood = _floods.get(sender)
        if flood is None or now - flood.start >= _limit.seconds:
            if flood is not None and flood.skipped:
                summary = (flood.skipped, flood.reasons, now - flood.start)
                _pending -= 1
            flood = _floods[sender] = _Flood(now)
        logged = flood.logged < _limit.burst
        if logged:
            flood.logged += 1
            last = flood.logged == _limit.burst
        else:
            if not flood.skipped:
                _pending += 1
            flood.skipped += 1
            flood.reasons[reason] += 1
    if summary is not None:
        _summary(sender, *summary)
    if not logged:
        return
    message = _cut(str(error), _MOST_MESSAGE)
    shown_peer, shown_id = _cut(peer), _cut(delivery_id)
    refusals.warning(
        "hookshield: %s delivery refused (%d): %s (reason: %s, peer: %s, delivery: %s)",
        sender,
        status,
        message,
        reason,
        shown_peer or "unknown",
        shown_id or "none read",
        extra={
            "hookshield_sender": sender,
            "hookshield_status": status,
            "hookshield_reason": reason,
            "hookshield_error": type(error).__name__ if isinstance(error, Exception) else None,
            "hookshield_peer": shown_peer,
            "hookshield_delivery_id": shown_id,
        },
    )
    if last:
        refusals.warning(
            "hookshield: %d %s deliveries refused within %g s: the next ones this period "
            "are counted, and summed up in one line when it ends",
            _limit.burst,
            sender,
            _limit.seconds,
            extra={"hookshield_sender": sender},
        )


def flush_due() -> None:
    """Sum up the refusals counted in periods that are over (called as deliveries are answered)."""
    global _pending
    if not _pending:
        return
    now = time.monotonic()
    due: list[tuple[str, int, Counter[str], float]] = []
    with _flood_lock:
        for sender, flood in list(_floods.items()):
            if flood.skipped and now - flood.start >= _limit.seconds:
                due.append((sender, flood.skipped, flood.reasons, now - flood.start))
                del _floods[sender]
                _pending -= 1
    for sender, skipped, reasons, seconds in due:
        _summary(sender, skipped, reasons, seconds)


def _summary(sender: str, skipped: int, reasons: Counter[str], seconds: float) -> None:
    refusals.warning(
        "hookshield: %d more %s deliveries were refused in the last %.0f s, not logged one "
        "by one (%s)",
        skipped,
        sender,
        seconds,
        ", ".join(f"{reason}: {count}" for reason, count in reasons.most_common()),
        extra={
            "hookshield_sender": sender,
            "hookshield_refused": skipped,
            "hookshield_reasons": dict(reasons),
        },
    )


def failure(sender: str, error: WebhookError) -> None:
    """Log a delivery answered with a 5xx for a failure on our side (a store down)."""
    logger.warning(
        "hookshield: %s delivery refused (%d): %s",
        sender,
        error.status,
        printable(error),
        extra={
            "hookshield_sender": sender,
            "hookshield_status": error.status,
            "hookshield_error": type(error).__name__,
        },
    )
