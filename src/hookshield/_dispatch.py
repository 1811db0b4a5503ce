"""Claiming and dispatching a verified delivery: the one loop, and its plain driver.

Theory of operation.  The words, used the same way everywhere (docs included):

* **verify** (``_verify.py``): bytes and headers in, a Delivery out, or an error.
* **claim**: take the delivery's de-duplication key (and each batch event's) in the
  store.  NEW runs; DONE is a duplicate (200); IN_PROGRESS is another attempt still
  running (409, the sender retries later).
* **dispatch**: call the routes of each event, and the error hooks when one raises.
* **complete** a key whose routes ran; **release** the keys of an attempt that failed.
* **accept** = verify + claim, **finish** = dispatch + complete or release, and
  **handle** = all of it: the three entry points of ``WebhookHandler``.

The loop is written once, as generators that *yield* each call to make (a route, an
error hook, a store step) as a ``(kind, func, args)`` step and get its result
back.  :func:`drive` makes the calls in plain code; ``_async.drive`` awaits async
routes and async stores and runs the rest in threads.  So the sync and async paths,
streamed batches or whole ones, share every decision, and every way out of a failed
attempt, a ``BaseException`` included, releases what it holds.
"""

from __future__ import annotations

import contextlib
import inspect
import logging
import threading
from collections.abc import Awaitable, Callable, Generator, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Final

from . import _observe as observe
from ._claims import Claims, Kind, Step, Steps, bounded
from ._dedupe import AsyncDedupeStore, Claim, DedupeStore
from ._errors import DeliveryInProgress, WebhookError
from ._events import Delivery, Event
from ._outcome import Outcome, PendingEvents
from ._routing import Router
from ._text import printable
from .providers import Provider

__all__ = ["Dispatcher", "advance", "dispatched_reason", "drive", "one_event_loop"]

logger = logging.getLogger("hookshield")

#: At most this many unrouted event types are named in an outcome's reason.
_MAX_UNROUTED: Final = 256
IN_PROGRESS_REASON: Final = "another attempt at this delivery is still running; retry later"


@dataclass(frozen=True, slots=True)
class Dispatcher:
    """Claims and dispatches one sender's verified deliveries."""

    sender: Provider
    router: Router
    store: DedupeStore | AsyncDedupeStore | None
    lease: float
    ttl: float

    # -- the entry points ------------------------------------------------------

    def handle(self, delivery: Delivery, events: Iterable[Event]) -> Steps:
        """Claim, dispatch ``events`` (the delivery's, or a stream of them), settle."""
        observe.verified(self.sender, delivery)
        claims, refused = yield from self._claim_delivery(delivery)
        if refused is not None:
            return refused
        return (yield from self.dispatch(delivery, events, claims, claim_events=True))

    def accept(
        self, delivery: Delivery, source: Callable[[], Iterator[Event]] | None = None
    ) -> Steps:
        """Claim a delivery and its events; the outcome's ``pending`` are the new ones.

        With ``source`` (a batch read record by record) each event is decoded, claimed
        and let go: the outcome's ``pending`` is a :class:`PendingEvents` that keeps
        only the new events' keys and decodes them again from ``source`` when read.
        The whole batch is read here either way, so that a malformed record is
        refused before the delivery is answered 2xx.
        """
        observe.verified(self.sender, delivery)
        claims, refused = yield from self._claim_delivery(delivery)
        if refused is not None:
            return refused
        per_event = claims is not None and self.sender.dedupe_events
        if source is None and not per_event:
            return Outcome(200, "accepted", delivery, pending=delivery.events, claims=claims)
        events = delivery.events if source is None else source()
        kept: list[Event] = []  # the new events, when not streamed
        keys: set[str] = set()  # their keys, when streamed
        types: dict[str, None] = {}
        seen = new = 0
        try:
            for event in events:
                seen += 1
                ident = self.sender.event_key(event) if per_event else None
                key = None if ident is None else f"{self.sender.name}:event:{bounded(ident)}"
                if key is not None and claims.holds(key):
                    continue  # the same record twice in one batch: run it once
                state = Claim.NEW if key is None else (yield from claims.claim(key))
                if state is Claim.IN_PROGRESS:
                    yield from claims.release_all()
                    return self.in_progress(delivery)
                if state is Claim.NEW:
                    new += 1
                    if source is None:
                        kept.append(event)
                    else:
                        types.setdefault(event.type)
                        if ident is not None:
                            keys.add(ident)
        except WebhookError as exc:  # a malformed record, or the store failed
            if claims is not None:
                yield from claims.release_all()
            return self.rejected(exc, delivery)
        except GeneratorExit:
            raise
        except BaseException:
            if claims is not None:
                yield from claims.release_all()
            raise
        if not new:
            if claims is not None:
                yield from claims.complete_all()
            duplicate = seen > 0
            if duplicate:
                observe.duplicate(self.sender, delivery)
            reason = "duplicate events" if duplicate else "accepted"
            return Outcome(200, reason, delivery, duplicate=duplicate)
        if source is None:
            return Outcome(200, "accepted", delivery, pending=tuple(kept), claims=claims)
        pending = PendingEvents(
            source,
            count=new,
            # Every record new: no keys to keep (nor to store in an inbox row).
            keys=None if new == seen else frozenset(keys),
            key=self.sender.event_key,
            types=tuple(types),
        )
        return Outcome(200, "accepted", delivery, pending=pending, claims=claims)

    def finish(self, outcome: Outcome) -> Steps:
        """Dispatch an accepted outcome's pending events, then complete or release."""
        if not outcome.pending or outcome.delivery is None:
            return outcome
        delivery, pending, claims = outcome.delivery, outcome.pending, outcome.claims
        return (yield from self.dispatch(delivery, pending, claims, claim_events=False))

    # -- the one loop ----------------------------------------------------------

    def dispatch(
        self,
        delivery: Delivery,
        events: Iterable[Event],
        claims: Claims | None,
        *,
        claim_events: bool,
    ) -> Steps:
        """Run the routes of each event; with ``claims``, de-duplicate and settle them.

        ``events`` may be a lazy stream: a malformed record part-way refuses the
        delivery, and the records dispatched before it keep their completed claims,
        so that the sender's retry skips them.
        """
        calls = seen = fresh = 0
        unrouted: dict[str, str] = {}  # bounded type -> the type cut for the reason
        per_event = claims is not None and self.sender.dedupe_events
        try:
            for event in events:
                seen += 1
                key = self._event_key(event) if per_event else None
                if key is not None and claim_events:
                    state = yield from claims.claim(key)  # type: ignore[union-attr]
                    if state is Claim.DONE:
                        continue
                    if state is Claim.IN_PROGRESS:
                        yield from claims.release_all()  # type: ignore[union-attr]
                        return self.in_progress(delivery, dispatched=calls)
                fresh += 1
                ran, error = yield from self._call_routes(event, unrouted)
                calls += ran
                if error is not None:
                    if claims is not None:
                        yield from claims.release_all()
                    return self._failed(delivery, event, error, calls)
                if key is not None and claims is not None and claims.holds(key):
                    yield from claims.complete(key)
        except WebhookError as exc:  # a malformed record part-way, or the store failed
            if claims is not None:
                yield from claims.release_all()
            return self.rejected(exc, delivery, dispatched=calls)
        except GeneratorExit:
            raise
        except BaseException:
            # SystemExit from a worker timeout, a cancelled task, KeyboardInterrupt:
            # the retry must run what this attempt did not finish.
            if claims is not None:
                yield from claims.release_all()
            raise
        observe.counted(self.sender, seen)
        if claims is not None:
            yield from claims.complete_all()
        if seen and not fresh:
            observe.duplicate(self.sender, delivery)
            return Outcome(200, "duplicate events", delivery, duplicate=True)
        if not seen:
            return Outcome(200, "accepted", delivery)  # a batch of none (Momentum's test post)
        return Outcome(200, dispatched_reason(calls, unrouted.values()), delivery, dispatched=calls)

    # -- answers -------------------------------------------------------------------

    def rejected(
        self, exc: WebhookError, delivery: Delivery | None = None, *, dispatched: int = 0
    ) -> Outcome:
        """The outcome of a delivery refused with ``exc``."""
        observe.rejected(self.sender, exc, delivery)  # logged there, once per delivery
        return Outcome(exc.status, str(exc), delivery, error=exc, dispatched=dispatched)

    def in_progress(self, delivery: Delivery, *, dispatched: int = 0) -> Outcome:
        """The outcome of a retry that arrives while another attempt still runs."""
        logger.info(
            "hookshield: %s delivery %s is in progress", self.sender.name, printable(delivery.id)
        )
        observe.in_progress(self.sender, delivery)
        error = DeliveryInProgress(IN_PROGRESS_REASON)
        return Outcome(error.status, str(error), delivery, error=error, dispatched=dispatched)

    # -- internals -------------------------------------------------------------------

    def _claim_delivery(self, delivery: Delivery) -> Generator[Step, Any, tuple[Any, Any]]:
        if self.store is None:
            return None, None
        claims = Claims(self.store, self.lease, self.ttl)
        try:
            state = yield from claims.claim(f"{self.sender.name}:{bounded(delivery.id)}")
        except WebhookError as exc:
            return None, self.rejected(exc, delivery)
        if state is Claim.DONE:
            logger.info(
                "hookshield: duplicate %s delivery %s", self.sender.name, printable(delivery.id)
            )
            observe.duplicate(self.sender, delivery)
            return None, Outcome(200, "duplicate delivery", delivery, duplicate=True)
        if state is Claim.IN_PROGRESS:
            return None, self.in_progress(delivery)
        return claims, None

    def _event_key(self, event: Event) -> str | None:
        ident = self.sender.event_key(event)
        return None if ident is None else f"{self.sender.name}:event:{bounded(ident)}"

    def _call_routes(
        self, event: Event, unrouted: dict[str, str]
    ) -> Generator[Step, Any, tuple[int, Exception | None]]:
        """Call the routes of one event: how many ran, and the exception that stopped them."""
        routes = self.router.routes_for(event.type)
        if not routes and len(unrouted) < _MAX_UNROUTED:
            unrouted[bounded(event.type)] = event.type[:64]
        for ran, route in enumerate(routes):
            started = observe.clock()
            try:
                yield (Kind.ROUTE, route, (event,))
            except Exception as exc:
                observe.routed(self.sender, self.router, event, ran, started, exc)
                yield from self._run_error_hooks(exc, event)
                return ran, exc
            observe.routed(self.sender, self.router, event, ran, started)
        return len(routes), None

    def _run_error_hooks(self, exc: Exception, event: Event) -> Steps:
        for hook in self.router.error_hooks:
            try:
                yield (Kind.ROUTE, hook, (exc, event))
            except Exception:
                logger.exception("hookshield: an on_error hook raised")

    def _failed(self, delivery: Delivery, event: Event, exc: Exception, calls: int) -> Outcome:
        logger.error(
            "hookshield: a %s route raised %s on a %s event; released, so that it runs again",
            self.sender.name,
            type(exc).__name__,
            printable(event.type),
            exc_info=exc,
        )
        reason = f"a handler raised {type(exc).__name__}"
        return Outcome(500, reason, delivery, error=exc, dispatched=calls)


def dispatched_reason(calls: int, unrouted: Iterable[str] = ()) -> str:
    """The reason of a delivery dispatched to ``calls`` route calls (or to none)."""
    if calls == 1:
        return "dispatched to 1 handler call"
    if calls:
        return f"dispatched to {calls} handler calls"
    names = sorted(unrouted)
    more = f" and {len(names) - 5} more" if len(names) > 5 else ""
    return "no handler for " + ", ".join(repr(name) for name in names[:5]) + more


def advance(steps: Steps, result: Any, error: BaseException | None) -> tuple[bool, Any]:
    """Hand the last call's result (or exception) to ``steps``.

    Returns ``(True, the next step)``, or ``(False, the generator's return value)``.
    The generator decides what an exception means.
    """
    try:
        return True, (steps.throw(error) if error is not None else steps.send(result))
    except StopIteration as stop:
        return False, stop.value


def drive(steps: Steps) -> Any:
    """Run a generator of steps in plain code, making each call it yields."""
    going, step = advance(steps, None, None)
    while going:
        kind, func, args = step
        try:
            result = func(*args)
            if kind is Kind.ROUTE and result is not None and inspect.isawaitable(result):
                result = _finish_awaitable(result)
        except BaseException as exc:  # handed to the generator
            going, step = advance(steps, None, exc)
        else:
            going, step = advance(steps, result, None)
    return step


#: The event loop of this thread, while :func:`one_event_loop` keeps one.
_thread = threading.local()


@contextlib.contextmanager
def one_event_loop() -> Iterator[None]:
    """Run the ``async def`` routes that plain code calls in this thread on one event loop.

    Kept until the block ends, so that what a route makes on the loop (a client's
    connection pool) serves the routes after it; a worker thread runs its
    deliveries inside one.  Outside one, each such route gets a loop of its own.
    """
    import asyncio  # only for async routes called from plain code

    loop = asyncio.new_event_loop()
    _thread.loop = loop
    try:
        yield
    finally:
        _thread.loop = None
        try:
            loop.run_until_complete(loop.shutdown_asyncgens())
        finally:
            loop.close()


def _finish_awaitable(awaitable: Awaitable[Any]) -> Any:
    """Run an ``async def`` route that plain code called, outside any event loop."""
    import asyncio  # only for async routes called from plain code

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        loop = getattr(_thread, "loop", None)
        if loop is not None:
            return loop.run_until_complete(_await(awaitable))
        return asyncio.run(_await(awaitable))
    close = getattr(awaitable, "close", None)
    if close is not None:
        close()  # do not leave a never-awaited coroutine behind
    raise TypeError(
        "an async handler was called from handle()/dispatch() inside a running event "
        "loop; use handle_async()/dispatch_async() there"
    )


async def _await(awaitable: Awaitable[Any]) -> Any:
    return await awaitable
