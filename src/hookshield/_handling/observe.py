"""Observers: what a delivery goes through in this process, told to whoever asks.

Theory of operation: :func:`add_observer` registers an object, and every handler,
inbox and worker of the process tells it of each delivery's life by calling one of
its methods with a small frozen event (see :class:`Observer`).  The rest of the
library calls one function of this module per step, in one line; each of them
returns at once while no observer is added (``_observers`` is an empty tuple), so
that a process without observers does no extra work on its hot path.

One delivery in a web process is one :class:`Observation`, from the adapter's
``received`` (before a byte of the body is read) to its ``answered``; a worker's
attempt at a stored delivery is another, from ``leased`` to ``finished``.  It is kept
in a context variable, so that the core's events in between (``verified``, a route's
``routed``, ``settled``...) reach the same one, on the event loop and in the threads
hookshield hands work to (they run in a copy of the caller's context).  An event
with no observation open (a handler called directly, a background pool's thread)
gets one of its own, with the sender only.

Without observers an adapter's request is still recorded, as a plain ``(sender,
peer)`` in another context variable: the refusal log (``logs.py``) names the peer,
which only the adapter knows.

An observer that raises is logged (logger ``hookshield.observers``, at most once a
minute per observer and step) and changes nothing: not the outcome, not the answer,
not the other observers.  Nothing here reads a body, touches a store or starts a
thread; what an event carries is the library's own objects, and no event ever
carries a secret.
"""

from __future__ import annotations

import contextvars
import logging
import re
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final, Literal, Protocol

from .._core.errors import WebhookError
from . import logs as _logs

if TYPE_CHECKING:
    from .._core.events import Delivery, Event
    from ..providers import Provider
    from .outcome import Outcome
    from .routing import Router


class StoredDeliveryView(Protocol):
    """What an observer reads of a stored delivery: a :class:`hookshield.StoredDelivery`.

    Described here rather than imported: the inboxes' layer imports this one.
    """

    @property
    def id(self) -> str: ...
    @property
    def sender(self) -> str: ...
    @property
    def handler(self) -> str: ...
    @property
    def attempts(self) -> int: ...
    @property
    def received(self) -> float: ...
    @property
    def traceparent(self) -> str | None: ...


__all__ = [
    "Answered",
    "Duplicate",
    "Finished",
    "InProgress",
    "Leased",
    "Observation",
    "Observer",
    "Received",
    "Refused",
    "Routed",
    "Settled",
    "Stored",
    "Verified",
    "add_observer",
    "remove_observer",
]

logger = logging.getLogger("hookshield.observers")

#: What an answer was, as ``hookshield_deliveries_total`` counts it.
Result = Literal["accepted", "duplicate", "in_progress", "refused", "failed"]
#: What became of a worker's attempt at a stored delivery.
WorkerResult = Literal["done", "retried", "dead", "lost"]

#: The key under which a worker's observation keeps the type of the error that failed it.
_ERROR: Final = "hookshield.error"
#: A W3C ``traceparent``: version, trace id, parent id, flags (lower-case hex).
_TRACEPARENT: Final = re.compile(r"[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}")


@dataclass(slots=True, eq=False)
class Observation:
    """One delivery as this process sees it: a request, or a worker's attempt.

    ``sender`` is the handler's sender name, ``peer`` the connection's address (for
    a request an adapter served), ``delivery_id`` the delivery's id once it is
    verified (a worker's: the stored delivery's id).  ``notes`` is for observers:
    each keeps what it must carry from one event to the next (a span, a start time)
    under a key of its own, usually itself.
    """

    sender: str
    kind: Literal["request", "worker", "call"] = "request"
    peer: str | None = None
    delivery_id: str | None = None
    #: ``time.perf_counter()`` when it began (0.0 when no observer was added then).
    started: float = 0.0
    #: Whether the sender sends batches (``messaging.batch.message_count`` applies).
    batch: bool = False
    #: How many events the delivery carries, when known.
    messages: int | None = None
    notes: dict[object, Any] = field(default_factory=dict, repr=False)
    #: Whether its refusal was logged (and told) already: once per delivery.
    refused: bool = field(default=False, repr=False)
    #: Whether it has ended (answered, or finished).
    ended: bool = field(default=False, repr=False)


# -- the events ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Received:
    """A request reached an adapter (before its body is read)."""

    sender: str
    observation: Observation
    peer: str | None


@dataclass(frozen=True, slots=True, kw_only=True)
class Verified:
    """A delivery's credentials and body were verified."""

    sender: str
    observation: Observation
    delivery: Delivery


@dataclass(frozen=True, slots=True, kw_only=True)
class Refused:
    """A delivery was refused with a 4xx.

    ``reason`` is one of a few words (``signature``, ``credentials``, ``timestamp``,
    ``malformed``, ``too_large``, ``source``, ``method``, ``content_type``, ``other``),
    never the sender's text; ``error`` is the typed error (``None`` for a 405).
    """

    sender: str
    observation: Observation
    status: int
    reason: str
    error: WebhookError | None
    peer: str | None
    delivery_id: str | None


@dataclass(frozen=True, slots=True, kw_only=True)
class Duplicate:
    """A delivery (or every event of a batch) was handled before: answered 200."""

    sender: str
    observation: Observation
    delivery_id: str


@dataclass(frozen=True, slots=True, kw_only=True)
class InProgress:
    """Another attempt at the delivery still runs: answered 409, the sender retries."""

    sender: str
    observation: Observation
    delivery_id: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Routed:
    """A route ran for one event: ``route`` is the pattern it was registered for.

    ``event_type`` is the sender's text: never use it as a metric label.
    """

    sender: str
    observation: Observation
    route: str
    function: str
    event_type: str
    seconds: float
    error: BaseException | None


@dataclass(frozen=True, slots=True, kw_only=True)
class Settled:
    """A delivery's de-duplication claims were completed (its routes ran) or released."""

    sender: str
    observation: Observation
    completed: bool
    keys: int


@dataclass(frozen=True, slots=True, kw_only=True)
class Stored:
    """A delivery was stored in an inbox (``background=inbox``), before its answer."""

    sender: str
    observation: Observation
    inbox: object
    stored: StoredDeliveryView


@dataclass(frozen=True, slots=True, kw_only=True)
class Answered:
    """An adapter answered a request: ``result`` classes the outcome, ``seconds`` since received."""

    sender: str
    observation: Observation
    outcome: Outcome
    result: Result
    seconds: float


@dataclass(frozen=True, slots=True, kw_only=True)
class Leased:
    """A worker took a stored delivery to run it (``hookshield worker``, a Celery task)."""

    sender: str
    observation: Observation
    inbox: object
    stored: StoredDeliveryView


@dataclass(frozen=True, slots=True, kw_only=True)
class Finished:
    """A worker's attempt ended: ``done``, ``retried``, ``dead`` or ``lost`` (its lease ran out)."""

    sender: str
    observation: Observation
    inbox: object
    stored: StoredDeliveryView
    result: WorkerResult
    seconds: float
    #: The name of the exception's type that failed the attempt, when one did.
    error_type: str | None


class Observer:
    """What an observer may be told; subclass it and override what you need.

    Each method gets one event and returns nothing; the defaults do nothing.  Any
    object with some of these methods may be added (duck typing): the others are
    skipped.  Methods are called in the thread that does the work, so keep them
    quick and thread-safe; one that raises is logged and changes nothing.

    :meth:`trace_context` is asked, when a delivery is stored in an inbox, for the
    W3C ``traceparent`` to store with it (the first answer of the observers is kept).
    """

    def received(self, event: Received) -> None:
        """A request reached an adapter."""

    def verified(self, event: Verified) -> None:
        """A delivery was verified."""

    def refused(self, event: Refused) -> None:
        """A delivery was refused with a 4xx."""

    def duplicate(self, event: Duplicate) -> None:
        """A delivery was a duplicate."""

    def in_progress(self, event: InProgress) -> None:
        """Another attempt at a delivery still runs."""

    def routed(self, event: Routed) -> None:
        """A route ran (or raised)."""

    def settled(self, event: Settled) -> None:
        """A delivery's claims were completed or released."""

    def stored(self, event: Stored) -> None:
        """A delivery was stored in an inbox."""

    def answered(self, event: Answered) -> None:
        """An adapter answered a request."""

    def leased(self, event: Leased) -> None:
        """A worker took a stored delivery."""

    def finished(self, event: Finished) -> None:
        """A worker's attempt at a stored delivery ended."""

    def trace_context(self, observation: Observation) -> str | None:
        """The ``traceparent`` to store with the delivery of ``observation``, or ``None``."""
        return None


_STEPS: Final = (
    "received",
    "verified",
    "refused",
    "duplicate",
    "in_progress",
    "routed",
    "settled",
    "stored",
    "answered",
    "leased",
    "finished",
    "trace_context",
)

# -- the registry: tuples swapped whole, so that reading them needs no lock --------------

_observers: tuple[object, ...] = ()
_hooks: Mapping[str, tuple[Callable[..., Any], ...]] = dict.fromkeys(_STEPS, ())
_lock = threading.Lock()


def add_observer(observer: object) -> None:
    """Tell ``observer`` of every delivery's life in this process, from now on.

    ``observer`` is an :class:`Observer` (or any object with some of its methods);
    adding one already added does nothing.  Raises ``TypeError`` for an object with
    none of them.
    """
    if not any(callable(getattr(observer, step, None)) for step in _STEPS):
        raise TypeError(
            f"{type(observer).__name__} has none of an observer's methods "
            f"({', '.join(_STEPS)}): subclass hookshield.Observer"
        )
    with _lock:
        if any(known is observer for known in _observers):
            return
        _install((*_observers, observer))


def remove_observer(observer: object) -> None:
    """Stop telling ``observer``; one that was never added is ignored."""
    with _lock:
        _install(tuple(known for known in _observers if known is not observer))


def observers() -> tuple[object, ...]:
    """The observers added, in order."""
    return _observers


def _install(chosen: tuple[object, ...]) -> None:
    global _observers, _hooks
    hooks: dict[str, tuple[Callable[..., Any], ...]] = {}
    for step in _STEPS:
        found = []
        for observer in chosen:
            method = getattr(observer, step, None)
            # An Observer's inherited no-op is not worth a call per delivery.
            if callable(method) and getattr(type(observer), step, None) is not getattr(
                Observer, step
            ):
                found.append(method)
        hooks[step] = tuple(found)
    _hooks = hooks
    _observers = chosen


def _emit(step: str, event: object) -> None:
    for hook in _hooks[step]:
        try:
            hook(event)
        except Exception:
            _failed(hook, step)


#: (observer's type, step) -> when its failure was last logged, and how many since.
_failures: dict[tuple[str, str], list[float]] = {}
#: An observer's failures are logged once a minute at most, per step.
_FAILURE_INTERVAL: Final = 60.0


def _failed(hook: Callable[..., Any], step: str) -> None:
    owner = getattr(hook, "__self__", hook)
    key = (type(owner).__qualname__, step)
    now = time.monotonic()
    with _lock:
        last = _failures.setdefault(key, [-_FAILURE_INTERVAL, 0.0])
        last[1] += 1
        if now - last[0] < _FAILURE_INTERVAL:
            return
        skipped = int(last[1]) - 1
        last[:] = [now, 0.0]
    logger.exception(
        "hookshield: the observer %s raised in %s(); ignored, the delivery goes on%s",
        key[0],
        step,
        f" ({skipped} more failures since the last one logged)" if skipped else "",
        extra={"hookshield_observer": key[0], "hookshield_step": step},
    )


# -- the current delivery ----------------------------------------------------------------

_current: contextvars.ContextVar[Observation | None] = contextvars.ContextVar(
    "hookshield_observation", default=None
)
#: An adapter's request while no observer is added: a box holding ``(sender, peer)``,
#: for the refusal log only.  Emptied in place once the request is answered or its
#: refusal logged (so that it is logged once): setting a context variable costs as
#: much as the rest of a step's bookkeeping, so it is set once per request.
_bare: contextvars.ContextVar[list[tuple[str, str | None]] | None] = contextvars.ContextVar(
    "hookshield_request", default=None
)


def _take_bare() -> tuple[str, str | None] | None:
    """This context's open request, ``(sender, peer)``, taken out of its box."""
    box = _bare.get()
    return box.pop() if box else None


def current() -> Observation | None:
    """The observation open in this context, if any."""
    return _current.get()


def _observation(sender: str) -> Observation:
    """The observation open in this context, or one of its own for an event outside any."""
    found = _current.get()
    if found is not None and not found.ended:
        return found
    return Observation(sender, kind="call", started=time.perf_counter())


# -- the steps: one call each from the rest of the library -------------------------------


def received(sender: str, peer: str | None) -> None:
    """An adapter got a request for ``sender``'s handler from ``peer``: it opens an observation."""
    if not _observers:
        _bare.set([(sender, peer)])
        return
    _take_bare()
    stale = _current.get()
    if stale is not None and not stale.ended:
        _abandon(stale)
    observation = Observation(sender, peer=peer, started=time.perf_counter())
    _current.set(observation)
    _emit("received", Received(sender=sender, observation=observation, peer=peer))


def verified(sender: Provider, delivery: Delivery) -> None:
    """``sender``'s delivery was verified."""
    if not _observers:
        return
    observation = _observation(sender.name)
    observation.delivery_id = delivery.id
    observation.batch = sender.sends_batches
    if delivery.events:
        observation.messages = len(delivery.events)
    _emit("verified", Verified(sender=sender.name, observation=observation, delivery=delivery))


def rejected(sender: Provider, error: WebhookError, delivery: Delivery | None = None) -> None:
    """``sender``'s delivery was refused with ``error``: logged, and told if a 4xx."""
    if error.status >= 500:
        _logs.failure(sender.name, error)
        return
    found = _current.get()
    observation = found if found is not None and not found.ended else None
    peer = observation.peer if observation is not None else None
    bare = _take_bare()  # taken: its answer logs nothing more
    if bare is not None:  # an adapter's request, while no observer is added
        peer = bare[1]
    delivery_id = delivery.id if delivery is not None else None
    if delivery_id is None and observation is not None:
        delivery_id = observation.delivery_id
    if observation is not None:
        observation.refused = True
    reason = _logs.reason_of(error)
    _logs.refusal(sender.name, error.status, reason, error, peer, delivery_id)
    if _observers:
        event = Refused(
            sender=sender.name,
            observation=observation or _observation(sender.name),
            status=error.status,
            reason=reason,
            error=error,
            peer=peer,
            delivery_id=delivery_id,
        )
        _emit("refused", event)


def counted(sender: Provider, events: int) -> None:
    """All ``events`` of ``sender``'s delivery were read (a batch streamed as it was run)."""
    if not _observers:
        return
    found = _current.get()
    if found is not None and not found.ended:
        found.batch = sender.sends_batches
        found.messages = events


def duplicate(sender: Provider, delivery: Delivery) -> None:
    """``sender``'s delivery (or all of a batch's events) had been handled before."""
    if not _observers:
        return
    event = Duplicate(
        sender=sender.name, observation=_observation(sender.name), delivery_id=delivery.id
    )
    _emit("duplicate", event)


def in_progress(sender: Provider, delivery: Delivery) -> None:
    """Another attempt at ``sender``'s delivery still runs."""
    if not _observers:
        return
    event = InProgress(
        sender=sender.name, observation=_observation(sender.name), delivery_id=delivery.id
    )
    _emit("in_progress", event)


def clock() -> float:
    """When a route starts, for :func:`routed` (0.0 while no observer is added)."""
    return time.perf_counter() if _observers else 0.0


def routed(
    sender: Provider,
    router: Router,
    event: Event,
    index: int,
    started: float,
    error: BaseException | None = None,
) -> None:
    """The ``index``-th route of ``event`` ran since ``started`` (:func:`clock`), or raised."""
    if not _observers or not started:
        return
    seconds = time.perf_counter() - started
    pattern, function = router.route_at(event.type, index)
    observation = _observation(sender.name)
    if error is not None and observation.kind == "worker":
        observation.notes[_ERROR] = type(error).__name__
    routed_event = Routed(
        sender=sender.name,
        observation=observation,
        route=pattern,
        function=function,
        event_type=event.type,
        seconds=seconds,
        error=error,
    )
    _emit("routed", routed_event)


def settled(held: Mapping[str, str], *, completed: bool) -> None:
    """The claims ``held`` (key -> owner token) are about to be completed or released."""
    if not _observers or not held:
        return
    found = _current.get()
    # The keys are "<sender>:..." (see dispatch.py): the sender when no observation is open.
    sender = found.sender if found is not None else next(iter(held)).partition(":")[0]
    event = Settled(
        sender=sender, observation=_observation(sender), completed=completed, keys=len(held)
    )
    _emit("settled", event)


def stored(sender: str, inbox: object, delivery: StoredDeliveryView) -> None:
    """``sender``'s delivery was stored in ``inbox``."""
    if not _observers:
        return
    event = Stored(sender=sender, observation=_observation(sender), inbox=inbox, stored=delivery)
    _emit("stored", event)


def traceparent() -> str | None:
    """The trace context to store with the delivery being stored, from the observers."""
    if not _observers or not _hooks["trace_context"]:
        return None
    found = _current.get()
    observation = found if found is not None else Observation("", kind="call")
    for hook in _hooks["trace_context"]:
        try:
            value = hook(observation)
        except Exception:
            _failed(hook, "trace_context")
            continue
        if isinstance(value, str) and _TRACEPARENT.fullmatch(value):
            return value
    return None


def answered(outcome: Outcome, raised: BaseException | None = None) -> None:
    """An adapter answers ``outcome`` (or the framework a 500, when ``raised``)."""
    observation = _current.get()
    if observation is None or observation.ended:
        bare = _take_bare()
        if bare is not None:
            _answered_bare(bare, outcome, 500 if raised is not None else outcome.status)
        return  # else a handler called directly, or answered already
    _current.set(None)
    observation.ended = True
    status = 500 if raised is not None else outcome.status
    refusal = 400 <= status < 500 and status != 409
    if not refusal:
        _logs.flush_due()
    elif not observation.refused:
        _refused_here(observation, outcome, status)
    if not _observers:
        return
    result = _result(outcome, status)
    if observation.messages is None and outcome.pending:
        observation.messages = len(outcome.pending)
    seconds = time.perf_counter() - observation.started if observation.started else 0.0
    event = Answered(
        sender=observation.sender,
        observation=observation,
        outcome=outcome,
        result=result,
        seconds=seconds,
    )
    _emit("answered", event)


def _answered_bare(bare: tuple[str, str | None], outcome: Outcome, status: int) -> None:
    """The answer to a request received while no observer was added: only a refusal is logged."""
    if 400 <= status < 500 and status != 409:
        error = outcome.error if isinstance(outcome.error, WebhookError) else None
        reason = "method" if status == 405 else _logs.reason_of(error)
        _logs.refusal(bare[0], status, reason, error or outcome.reason, bare[1], None)
    else:
        _logs.flush_due()


def _refused_here(observation: Observation, outcome: Outcome, status: int) -> None:
    """Log and tell a refusal the adapter made itself (a 405, a body cut short or too long)."""
    error = outcome.error if isinstance(outcome.error, WebhookError) else None
    reason = "method" if status == 405 else _logs.reason_of(error)
    observation.refused = True
    delivery_id = observation.delivery_id
    peer = observation.peer
    _logs.refusal(observation.sender, status, reason, error or outcome.reason, peer, delivery_id)
    if _observers:
        event = Refused(
            sender=observation.sender,
            observation=observation,
            status=status,
            reason=reason,
            error=error,
            peer=observation.peer,
            delivery_id=delivery_id,
        )
        _emit("refused", event)


def _result(outcome: Outcome, status: int) -> Result:
    if 200 <= status < 300:
        return "duplicate" if outcome.duplicate else "accepted"
    if status == 409:
        return "in_progress"
    if status < 500:
        return "refused"
    return "failed"


def _abandon(observation: Observation) -> None:
    """End an observation its request left open (its view raised, say): failed."""
    from .outcome import Outcome  # the outcome type, only here

    _current.set(observation)
    answered(Outcome(500, "the request ended without an answer from hookshield"))


def leased(inbox: object, delivery: StoredDeliveryView) -> None:
    """A worker took ``delivery`` from ``inbox``: it opens the attempt's observation."""
    if not _observers:
        return
    stale = _current.get()
    if stale is not None and not stale.ended and stale.kind == "worker":
        stale.ended = True  # its inbox failed mid-settle: nothing to count
    observation = Observation(
        delivery.handler,
        kind="worker",
        delivery_id=delivery.id,
        started=time.perf_counter(),
    )
    _current.set(observation)
    event = Leased(sender=delivery.handler, observation=observation, inbox=inbox, stored=delivery)
    _emit("leased", event)


def finished(
    inbox: object,
    delivery: StoredDeliveryView,
    result: WorkerResult,
    error: BaseException | None = None,
) -> None:
    """A worker's attempt at ``delivery`` ended with ``result`` (failed with ``error``)."""
    if not _observers:
        return
    observation = _current.get()
    if observation is None or observation.kind != "worker" or observation.ended:
        observation = Observation(delivery.handler, kind="worker", delivery_id=delivery.id)
    _current.set(None)
    observation.ended = True
    seconds = time.perf_counter() - observation.started if observation.started else 0.0
    error_type = type(error).__name__ if error is not None else observation.notes.get(_ERROR)
    event = Finished(
        sender=delivery.handler,
        observation=observation,
        inbox=inbox,
        stored=delivery,
        result=result,
        seconds=seconds,
        error_type=error_type if result != "done" else None,
    )
    _emit("finished", event)
