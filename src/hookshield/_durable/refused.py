"""Refused deliveries, kept for diagnosis, and checked again once the cause is fixed.

Theory of operation: a refusal nobody can explain (the secret was rotated on one side
only, a proxy re-serialised the body) is the commonest trouble of a webhook receiver,
and a log line says too little to fix it.  An inbox that keeps refusals (a
:class:`RefusalKeeper`, ``SQLiteInbox(path, keep_refused=100)``) is handed each
delivery its handler refuses with a 4xx, by the adapters serving ``background=inbox``
(:func:`keep_refusal`): its sender, the typed reason, the peer's address, the time, the
headers with every credential hidden, and at most a bounded prefix of the body.

What is kept is unauthenticated: anyone who can reach the endpoint chooses it.  So it
is bounded (the keeper keeps the latest N, each body cut to its byte bound, each
header and the number of headers cut here), never runs (it is not a delivery), and a
credential a sender sends in a header (a token, ``Authorization``, a cookie) is never
written: only the sender's signature, which covers the body and proves nothing
without it, is kept as sent, so that a refusal can be checked again.

:func:`recheck` verifies a kept refusal again with the handler's current credentials
(after a rotated secret is fixed).  It can succeed only when the whole body was kept
(its size is within the keeper's bound) and the sender signs the body; a delivery that
verifies then is stored as any other (claimed, sealed, pending), as of the time it
was first received.  Nothing here logs a body or starts a thread.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final, Protocol, TypeGuard, runtime_checkable

from .._core.auth import RECEIVED_AT
from .._core.errors import DeliveryInProgress, WebhookError
from .._core.headers import Headers, HeadersLike
from .._core.options import integer
from .._core.text import printable
from .._handling.handler import WebhookHandler, verifier_of
from .._handling.outcome import Outcome
from .inbox import Inbox, new_id, stored_delivery

__all__ = [
    "Recheck",
    "RefusalKeeper",
    "RefusedDelivery",
    "is_refusal",
    "keep_refusal",
    "keep_refusal_async",
    "keeping",
    "recheck",
    "refused_delivery",
]

logger = logging.getLogger("hookshield")

#: What is kept of the request's headers: this many at most, each cut at these lengths.
MAX_HEADERS: Final = 64
MAX_NAME: Final = 100
MAX_VALUE: Final = 1024
#: What is kept of a reason and a peer's address.
MAX_REASON: Final = 500
MAX_PEER: Final = 100
#: What a hidden header's value is kept as.
HIDDEN: Final = "<hidden>"
#: The most refusals, and bytes of a body, an inbox may be asked to keep, and the
#: bytes of a body it keeps unless told otherwise (``keep_refused_bytes``).
MOST_KEPT: Final = 100_000
MOST_KEPT_BYTES: Final = 1024 * 1024
KEPT_BYTES: Final = 16 * 1024
#: The longest a keeper waits (for a lock, or a connection) to keep a refusal: it is
#: dropped rather than hold up the deliveries that wait for the same.
KEEP_WAIT: Final = 0.05
#: Headers never kept, whatever a sender's description says: they carry a person's
#: or a proxy's credentials, not a sender's signature.
_NEVER: Final = frozenset({"authorization", "proxy-authorization", "cookie", "set-cookie"})


@dataclass(frozen=True, slots=True, kw_only=True)
class RefusedDelivery:
    """A delivery refused with a 4xx, as a keeper keeps it for diagnosis.

    ``error`` is the refusal's type (``"InvalidSignature"``) and ``reason`` its
    message; ``status`` the answer sent.  ``peer`` is the connection's address as the
    server reported it.  ``headers`` are as received, but for every credential's
    value, kept as ``"<hidden>"``.  ``body`` is at most the keeper's bound of the body's
    first bytes; ``body_size`` the whole body's size, or ``None`` when it was refused
    before its body was read (by ``allowed_ips``, a missing signature, a wrong token).
    """

    id: str
    sender: str
    handler: str
    status: int
    error: str
    reason: str
    peer: str | None
    received: float
    headers: tuple[tuple[str, str], ...]
    body: bytes
    body_size: int | None

    @property
    def complete(self) -> bool:
        """Whether the whole body was kept: the condition for :func:`recheck` to succeed."""
        return self.body_size is not None and len(self.body) == self.body_size

    def __repr__(self) -> str:
        return (
            f"RefusedDelivery(id={self.id!r}, sender={self.sender!r}, status={self.status}, "
            f"error={self.error!r}, peer={self.peer!r}, received={self.received!r}, "
            f"body=<{len(self.body)} of {self.body_size} bytes>)"
        )


@runtime_checkable
class RefusalKeeper(Protocol):
    """An inbox that keeps refused deliveries for diagnosis.

    Every managed inbox is one, keeping them when told to: ``SQLiteInbox(path,
    keep_refused=N)``, ``PostgresInbox(dsn, keep_refused=N)``, ``DjangoInbox(keep_refused=N)``.
    """

    @property
    def keeps_refused(self) -> bool:
        """Whether refusals are kept now (``keep_refused`` is above 0)."""

    @property
    def refused_body_limit(self) -> int:
        """The most bytes of a refused body kept."""

    def keep_refusal(self, refused: RefusedDelivery) -> bool:
        """Keep ``refused``, forgetting the oldest beyond the bound; ``False`` if it was not kept.

        Must not wait long: it runs in the request that was refused, and under a
        flood of forgeries dropping some is better than slowing real deliveries.
        """

    def refused(self, *, limit: int = 50, before: str | None = None) -> list[RefusedDelivery]:
        """Up to ``limit`` kept refusals, newest first; after the id ``before``, if given."""

    def get_refused(self, refused_id: str) -> RefusedDelivery | None:
        """The kept refusal ``refused_id``, or ``None``."""

    def forget_refused(self, refused_ids: Iterable[str]) -> int:
        """Forget these kept refusals; how many there were."""


def keeping(keep_refused: object, keep_refused_bytes: object) -> tuple[int, int]:
    """An inbox's ``keep_refused`` and ``keep_refused_bytes`` options, checked; every inbox's bounds."""
    count = integer("keep_refused", keep_refused, "refusals")
    size = integer("keep_refused_bytes", keep_refused_bytes, "bytes")
    if not 0 <= count <= MOST_KEPT:
        raise ValueError(f"keep_refused must be between 0 and {MOST_KEPT}")
    if not 0 < size <= MOST_KEPT_BYTES:
        raise ValueError(f"keep_refused_bytes must be between 1 and {MOST_KEPT_BYTES}")
    return count, size


def refused_delivery(
    handler: WebhookHandler,
    error: WebhookError,
    *,
    received: float,
    peer: str | None,
    headers: HeadersLike,
    body: bytes | None,
    body_limit: int,
) -> RefusedDelivery:
    """What is kept of a delivery ``handler`` refused with ``error``; credentials hidden.

    ``body`` is ``None`` when it was refused before its body was read.
    """
    return RefusedDelivery(
        id=new_id(received),
        sender=handler.provider,
        handler=handler.provider,
        status=error.status,
        error=type(error).__name__,
        # Printable: the message may quote the sender's text, control characters or a
        # lone surrogate (which no TEXT column holds) included.
        reason=_cut(printable(error), MAX_REASON),
        peer=None if peer is None else _cut(peer, MAX_PEER),
        received=received,
        headers=kept_headers(handler, headers),
        body=b"" if body is None else bytes(body[: max(0, body_limit)]),
        body_size=None if body is None else len(body),
    )


def kept_headers(handler: WebhookHandler, headers: HeadersLike) -> tuple[tuple[str, str], ...]:
    """The headers of a refused delivery as kept: bounded, every credential's value hidden.

    The sender's signature header (and what else its verification reads, as an inbox
    keeps with a delivery) is kept as sent, so that the refusal can be checked again.
    Any other header whose name says it holds a credential (``Authorization``, a
    cookie, a token, a key, a secret) is kept by name only.
    """
    checked = headers if isinstance(headers, Headers) else Headers(headers)
    verifies = verifier_of(handler).kept_headers()
    kept: list[tuple[str, str]] = []
    for name in checked:
        for value in checked.getall(name):
            if len(kept) == MAX_HEADERS:
                return tuple(kept)
            shown = value if name in verifies and name not in _NEVER else _hide(name, value)
            kept.append((_cut(name, MAX_NAME), _cut(shown, MAX_VALUE)))
    return tuple(kept)


def _hide(name: str, value: str) -> str:
    # Headers' own rule for what its repr redacts in logs decides what a credential
    # is; asked about an empty value, it answers a non-empty one only for a credential.
    (redacted,) = Headers({name: ""}).redacted().values()
    return HIDDEN if redacted or name in _NEVER else value


def _cut(text: str, most: int) -> str:
    return text if len(text) <= most else text[: most - 1] + "…"


def is_refusal(outcome: Outcome) -> bool:
    """Whether ``outcome`` refused the delivery for something in the request (a 4xx).

    Not a 409 (another attempt is in progress: the sender retries it) nor a 5xx
    (this side failed).
    """
    error = outcome.error
    return (
        isinstance(error, WebhookError)
        and 400 <= outcome.status < 500
        and not isinstance(error, DeliveryInProgress)
    )


def _keeps(keeper: object, outcome: Outcome) -> TypeGuard[RefusalKeeper]:
    """Whether ``keeper`` keeps ``outcome``: a refusal, and an inbox that keeps refusals."""
    # The refusal first: it is the cheap test, and most outcomes are no refusal.
    return is_refusal(outcome) and isinstance(keeper, RefusalKeeper) and keeper.keeps_refused


def keep_refusal(
    handler: WebhookHandler,
    keeper: object,
    outcome: Outcome,
    *,
    received: float,
    peer: str | None,
    headers: HeadersLike,
    body: bytes | None = None,
) -> None:
    """Hand a refusal to ``keeper`` when it keeps refusals; for the adapters.

    Anything else (an accepted outcome, an inbox that keeps none) is left alone.  A
    failure to keep it is logged and never changes the answer to the sender.
    """
    if not _keeps(keeper, outcome):
        return
    error = outcome.error
    if not isinstance(error, WebhookError):  # pragma: no cover - is_refusal checked it
        return
    try:
        refused = refused_delivery(
            handler,
            error,
            received=received,
            peer=peer,
            headers=headers,
            body=body,
            body_limit=keeper.refused_body_limit,
        )
        keeper.keep_refusal(refused)
    except Exception as exc:
        logger.warning(
            "hookshield: could not keep a refused %s delivery in %r (%s: %s)",
            handler.provider,
            keeper,
            type(exc).__name__,
            printable(exc),
        )


async def keep_refusal_async(
    handler: WebhookHandler,
    keeper: object,
    outcome: Outcome,
    *,
    received: float,
    peer: str | None,
    headers: HeadersLike,
    body: bytes | None = None,
) -> None:
    """:func:`keep_refusal` for ASGI: the keeper's blocking write runs in a thread."""
    if not _keeps(keeper, outcome):
        return
    from .._handling.asynchronous import run_in_thread

    await run_in_thread(
        lambda: keep_refusal(
            handler, keeper, outcome, received=received, peer=peer, headers=headers, body=body
        )
    )


@dataclass(frozen=True, slots=True)
class Recheck:
    """What checking a kept refusal again came to.

    ``verified`` says whether it verifies now; ``stored`` is the id of the pending
    delivery it became (``None`` when it did not verify, or was a duplicate of one
    received since); ``reason`` says which, in a sentence for a person.
    """

    verified: bool
    reason: str
    stored: str | None = None


def recheck(handler: WebhookHandler, inbox: Inbox, refused: RefusedDelivery) -> Recheck:
    """Verify a kept refusal again with ``handler``'s current credentials.

    When it verifies, it is stored in ``inbox`` as a pending delivery (claimed in the
    handler's de-duplication store, sealed like any other), as of the time it was
    first received: a signed timestamp is judged by then, and the worker does the
    same.  The caller forgets the refusal then.  It cannot verify when only a prefix
    of its body was kept, when it was refused before its body was read, or when its
    sender authenticates with a token, Basic or Bearer credential (never kept): the
    reason says which.
    """
    if refused.handler != handler.provider:
        raise ValueError(
            f"refusal {refused.id} was made by the {refused.handler!r} handler, "
            f"not {handler.provider!r}"
        )
    credentials = verifier_of(handler).credentials
    if not credentials.hmac_keys and not credentials.empty:
        return Recheck(
            False,
            f"{handler.provider} authenticates with a credential in a header (a token, Basic "
            "or Bearer), which is never kept: only a delivery signed over its body can be "
            "checked again",
        )
    if refused.body_size is None:
        return Recheck(False, "it was refused before its body was read: there is no body to verify")
    if not refused.complete:
        return Recheck(
            False,
            f"only the first {len(refused.body)} of its {refused.body_size} bytes were kept: "
            "a signature covers the whole body (raise the keeper's body limit to keep such "
            "deliveries whole)",
        )
    # Judged as of when it arrived, as a worker judges a stored delivery; then stored
    # as the adapters store one (see _background.store), dated then too.
    token = RECEIVED_AT.set(refused.received)
    try:
        accepted = handler.accept(refused.body, refused.headers)
    finally:
        RECEIVED_AT.reset(token)
    if not accepted.pending:
        if accepted.duplicate:
            return Recheck(True, "it verifies now, and was received since: nothing to do")
        if accepted.ok:
            return Recheck(True, "it verifies now, but holds no event to run")
        if isinstance(accepted.error, DeliveryInProgress):
            return Recheck(False, "another attempt at it is running now: check again shortly")
        return Recheck(False, f"it still does not verify: {accepted.reason}")
    stored = stored_delivery(handler, accepted, now=refused.received)
    with accepted:  # completed once stored; released on any way out before
        inbox.put(stored)
    return Recheck(True, "it verifies now: stored as a pending delivery", stored.id)
