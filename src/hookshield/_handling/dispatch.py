"""Claiming and dispatching a verified delivery: the one loop, and the accepted delivery.

Theory of operation.  The words, used the same way everywhere (docs included):

* **verify** (``_core/verify.py``): bytes and headers in, a Delivery out, or an error.
* **claim**: take the delivery's de-duplication key (and each batch event's) in the
  store.  NEW runs; DONE is a duplicate (200); IN_PROGRESS is another attempt still
  running (409, the sender retries later).
* **dispatch**: call the routes of each event, and the error hooks when one raises.
* **complete** a key whose routes ran; **release** the keys of an attempt that failed.
* **accept** = verify + claim, giving an :class:`Accepted` delivery; **finish** =
  dispatch + complete or release; **handle** = all of it.

The loop is written once, as coroutines that await each call they make (a route, an
error hook, a store step) through a runner (``_handling/runner.py``): plain code runs them
with the plain runner, which never suspends (``_runner.run``), async code with
``_async.LoopRunner``, which awaits async routes and async stores and runs the rest
in threads.  So the plain and async paths, streamed batches or whole ones, share
every decision, and every way out of a failed attempt, a ``BaseException``
included, releases what it holds.

An :class:`Accepted` delivery holds its claims until it is settled, once: finished,
completed or released, or by leaving a ``with`` block.  Its async methods decide
what runs on the event loop and what in a thread, with the handler's async entry
points; this module imports :mod:`asyncio` (through ``_handling/asynchronous.py``) only when one of
them is first called.
"""

from __future__ import annotations

import dataclasses
import inspect
import logging
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from types import TracebackType
from typing import TYPE_CHECKING, Final, TypeVar

from .._core.errors import DeliveryInProgress, WebhookError
from .._core.events import Delivery, Event
from .._core.text import printable
from . import observe
from .claims import Claims, bounded
from .dedupe import AsyncDedupeStore, Claim, DedupeStore, MemoryDedupeStore
from .outcome import Outcome, PendingEvents, event_types_of
from .routing import Router
from .runner import PLAIN, Runner, run

if TYPE_CHECKING:
    from ..providers import Provider
    from .asynchronous import LoopRunner

__all__ = ["INLINE_BODY_LIMIT", "Accepted", "Dispatcher", "dispatched_reason"]

logger = logging.getLogger("hookshield")

#: Bodies up to this size are verified (and a batch decoded) on the event loop, about
#: 100 µs of work at most; larger ones in a worker thread, so that the loop keeps serving.
INLINE_BODY_LIMIT: Final = 64 * 1024
#: At most this many unrouted event types are named in an outcome's reason.
_MAX_UNROUTED: Final = 256
IN_PROGRESS_REASON: Final = "another attempt at this delivery is still running; retry later"

AnswerT = TypeVar("AnswerT", bound=Outcome)


class Dispatcher:
    """Claims and dispatches one sender's verified deliveries, in plain or async code."""

    __slots__ = (
        "_loop",
        "lease",
        "router",
        "sender",
        "store",
        "store_inline",
        "store_is_async",
        "threads",
        "ttl",
    )

    def __init__(
        self,
        sender: Provider,
        router: Router,
        store: DedupeStore | AsyncDedupeStore | None,
        lease: float,
        ttl: float,
        *,
        threads: bool = True,
    ) -> None:
        self.sender = sender
        self.router = router
        self.store = store
        self.lease = lease
        self.ttl = ttl
        #: Whether plain routes run in a worker thread under asyncio.
        self.threads = threads
        #: Whether the store's steps are awaited (``redis.asyncio``): async paths only.
        self.store_is_async = store is not None and inspect.iscoroutinefunction(store.claim)
        #: Whether the store's steps are quick enough to make on an event loop.
        self.store_inline = store is None or isinstance(store, MemoryDedupeStore)
        self._loop: LoopRunner | None = None

    def loop(self) -> LoopRunner:
        """The runner of this dispatcher's calls on an event loop, made on first use."""
        runner = self._loop
        if runner is None:
            from .asynchronous import LoopRunner  # asyncio, only once async code asks

            runner = self._loop = LoopRunner(
                self.router,
                threads=self.threads,
                store_is_async=self.store_is_async,
                store_inline=self.store_inline,
            )
        return runner

    def require_plain_store(self, method: str) -> None:
        """Refuse a plain call of ``method`` when the store must be awaited."""
        if self.store_is_async:
            raise TypeError(
                f"this handler's de-duplication store is async; call {method}_async() "
                "(or serve it with an ASGI adapter) instead"
            )

    # -- the entry points ------------------------------------------------------

    async def handle(self, runner: Runner, delivery: Delivery, events: Iterable[Event]) -> Outcome:
        """Claim, dispatch ``events`` (the delivery's, or a stream of them), settle."""
        observe.verified(self.sender, delivery)
        claims, refused = await self._claim_delivery(runner, delivery, Outcome)
        if refused is not None:
            return refused
        return await self.dispatch(runner, delivery, events, claims, claim_events=True)

    async def accept(
        self,
        runner: Runner,
        delivery: Delivery,
        source: Callable[[], Iterator[Event]] | None = None,
    ) -> Accepted:
        """Claim a delivery and its events; the result's ``pending`` are the new ones.

        With ``source`` (a batch read record by record) each event is decoded, claimed
        and let go: ``pending`` is a :class:`PendingEvents` that keeps only the new
        events' keys and decodes them again from ``source`` when read.  The whole
        batch is read here either way, so that a malformed record is refused before
        the delivery is answered 2xx.
        """
        observe.verified(self.sender, delivery)
        claims, refused = await self._claim_delivery(runner, delivery, Accepted)
        if refused is not None:
            return refused
        per_event = claims is not None and self.sender.dedupe_events
        if source is None and not per_event:
            return Accepted(
                200, "accepted", delivery, pending=delivery.events, _claims=claims, _dispatcher=self
            )
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
                if key is not None and claims.holds(key):  # type: ignore[union-attr]
                    continue  # the same record twice in one batch: run it once
                state = Claim.NEW if key is None else await claims.claim(runner, key)  # type: ignore[union-attr]
                if state is Claim.IN_PROGRESS:
                    await claims.release_all(runner)  # type: ignore[union-attr]
                    return self._in_progress(Accepted, delivery)
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
                await claims.release_all(runner)
            return self.refused(Accepted, exc, delivery)
        except GeneratorExit:
            raise
        except BaseException:
            if claims is not None:
                await claims.release_all(runner)
            raise
        if not new:
            if claims is not None:
                await claims.complete_all(runner)
            duplicate = seen > 0
            if duplicate:
                observe.duplicate(self.sender, delivery)
            reason = "duplicate events" if duplicate else "accepted"
            return Accepted(200, reason, delivery, duplicate=duplicate)
        pending: tuple[Event, ...] | PendingEvents
        if source is None:
            pending = tuple(kept)
        else:
            pending = PendingEvents(
                source,
                count=new,
                # Every record new: no keys to keep (nor to store in an inbox row).
                keys=None if new == seen else frozenset(keys),
                key=self.sender.event_key,
                types=tuple(types),
            )
        return Accepted(
            200, "accepted", delivery, pending=pending, _claims=claims, _dispatcher=self
        )

    async def finish(self, runner: Runner, accepted: Accepted) -> Outcome:
        """Dispatch an accepted delivery's pending events, then complete or release."""
        if not accepted.pending or accepted.delivery is None:
            return accepted
        claims = accepted._claims
        return await self.dispatch(
            runner, accepted.delivery, accepted.pending, claims, claim_events=False
        )

    # -- the one loop ----------------------------------------------------------

    async def dispatch(
        self,
        runner: Runner,
        delivery: Delivery,
        events: Iterable[Event],
        claims: Claims | None,
        *,
        claim_events: bool,
    ) -> Outcome:
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
                    state = await claims.claim(runner, key)  # type: ignore[union-attr]
                    if state is Claim.DONE:
                        continue
                    if state is Claim.IN_PROGRESS:
                        await claims.release_all(runner)  # type: ignore[union-attr]
                        return self._in_progress(Outcome, delivery, dispatched=calls)
                fresh += 1
                routes = self.router.routes_for(event.type)
                if not routes and len(unrouted) < _MAX_UNROUTED:
                    unrouted[bounded(event.type)] = event.type[:64]
                for ran, route in enumerate(routes):
                    started = observe.clock()
                    try:
                        await runner.route(route, event)
                    except Exception as error:
                        observe.routed(self.sender, self.router, event, ran, started, error)
                        await self._run_error_hooks(runner, error, event)
                        if claims is not None:
                            await claims.release_all(runner)
                        return self._failed(delivery, event, error, calls)
                    observe.routed(self.sender, self.router, event, ran, started)
                    calls += 1
                if key is not None and claims is not None and claims.holds(key):
                    await claims.complete(runner, key)
        except WebhookError as exc:  # a malformed record part-way, or the store failed
            if claims is not None:
                await claims.release_all(runner)
            return self.refused(Outcome, exc, delivery, dispatched=calls)
        except GeneratorExit:
            raise
        except BaseException:
            # SystemExit from a worker timeout, a cancelled task, KeyboardInterrupt:
            # the retry must run what this attempt did not finish.
            if claims is not None:
                await claims.release_all(runner)
            raise
        observe.counted(self.sender, seen)
        if claims is not None:
            await claims.complete_all(runner)
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
        """The outcome of a delivery refused with ``exc``, logged."""
        return self.refused(Outcome, exc, delivery, dispatched=dispatched)

    def refused(
        self,
        kind: type[AnswerT],
        exc: WebhookError,
        delivery: Delivery | None = None,
        *,
        dispatched: int = 0,
    ) -> AnswerT:
        """The answer (an ``Outcome`` or an ``Accepted``) to a delivery refused with ``exc``, logged."""
        observe.rejected(self.sender, exc, delivery)  # logged there, once per delivery
        return kind(exc.status, str(exc), delivery, error=exc, dispatched=dispatched)

    def _in_progress(
        self, kind: type[AnswerT], delivery: Delivery, *, dispatched: int = 0
    ) -> AnswerT:
        """The answer to a retry that arrives while another attempt still runs."""
        logger.info(
            "hookshield: %s delivery %s is in progress", self.sender.name, printable(delivery.id)
        )
        observe.in_progress(self.sender, delivery)
        error = DeliveryInProgress(IN_PROGRESS_REASON)
        return kind(error.status, str(error), delivery, error=error, dispatched=dispatched)

    # -- internals -------------------------------------------------------------------

    async def _claim_delivery(
        self, runner: Runner, delivery: Delivery, kind: type[AnswerT]
    ) -> tuple[Claims | None, AnswerT | None]:
        """The delivery's claims, or the answer when it must not run (as a ``kind``)."""
        if self.store is None:
            return None, None
        claims = Claims(self.store, self.lease, self.ttl)
        try:
            state = await claims.claim(runner, f"{self.sender.name}:{bounded(delivery.id)}")
        except WebhookError as exc:
            return None, self.refused(kind, exc, delivery)
        except GeneratorExit:
            raise
        except BaseException:  # cancelled once the store had claimed it: let it go
            await claims.release_all(runner)
            raise
        if state is Claim.NEW:
            return claims, None
        if state is Claim.DONE:
            logger.info(
                "hookshield: duplicate %s delivery %s", self.sender.name, printable(delivery.id)
            )
            observe.duplicate(self.sender, delivery)
            return None, kind(200, "duplicate delivery", delivery, duplicate=True)
        return None, self._in_progress(kind, delivery)

    def _event_key(self, event: Event) -> str | None:
        ident = self.sender.event_key(event)
        return None if ident is None else f"{self.sender.name}:event:{bounded(ident)}"

    async def _run_error_hooks(self, runner: Runner, error: Exception, event: Event) -> None:
        for hook in self.router.error_hooks:
            try:
                await runner.route(hook, error, event)
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


@dataclass(frozen=True, slots=True)
class Accepted(Outcome):
    """A verified, claimed delivery whose new events are to be run: what ``accept()`` gives.

    An :class:`~hookshield.Outcome` like any other (``status``, ``reason``,
    ``delivery``...).  A 200 with ``pending`` events holds their de-duplication claims
    until it is settled, once:

    * :meth:`finish` dispatches them to the handler's routes, then completes the
      claims, or releases them when a route raised (and answers 500);
    * code that runs the events itself calls :meth:`complete` once done, or
      :meth:`release` if it failed, so that the sender's retry runs them again;
    * or settles in a ``with`` block: completed when the block ends normally, released
      when it ends by any exception (``SystemExit``, ``KeyboardInterrupt`` and a
      cancellation included), which propagates::

          accepted = handler.accept(body, headers)
          if accepted.pending:
              with accepted:
                  for event in accepted.pending:
                      ...
          return accepted.status

    Each has an async twin (:meth:`finish_async`, :meth:`complete_async`,
    :meth:`release_async`, ``async with``) that awaits an async store and keeps the
    event loop free.  A refused or duplicate delivery holds nothing: settling it does
    nothing.
    """

    _claims: Claims | None = field(default=None, repr=False, compare=False)
    _dispatcher: Dispatcher | None = field(default=None, repr=False, compare=False)

    def finish(self) -> Outcome:
        """Dispatch the pending events to the routes, then settle; a route failure gives 500."""
        dispatcher = self._dispatcher
        if not self.pending or dispatcher is None:
            return self
        dispatcher.require_plain_store("finish")
        return run(dispatcher.finish(PLAIN, self))

    def complete(self) -> None:
        """Mark the claims done: the events were handled, and a retry is a duplicate."""
        claims = self._claims
        if claims and self._dispatcher is not None:
            self._dispatcher.require_plain_store("complete")
            run(claims.complete_all(PLAIN))

    def release(self) -> None:
        """Forget the claims, so that the sender's retry runs the events again."""
        claims = self._claims
        if claims and self._dispatcher is not None:
            self._dispatcher.require_plain_store("release")
            run(claims.release_all(PLAIN))

    async def finish_async(self) -> Outcome:
        """:meth:`finish` for async code: async routes awaited, plain ones in a thread.

        When every route of the pending events is plain, they run in one worker
        thread, one hop for the whole delivery; ``inline=True`` routes and async ones
        run on the loop.
        """
        dispatcher = self._dispatcher
        pending = self.pending
        if not pending or dispatcher is None:
            return self
        loop = dispatcher.loop()
        router = dispatcher.router
        if dispatcher.threads and not dispatcher.store_is_async:
            # By type: a batch accepted record by record (PendingEvents) is not decoded for it.
            kinds = event_types_of(pending)
            if router.all_plain(kinds) and router.any_threaded(kinds):
                try:  # one hop for the whole delivery, rather than one per route
                    return await loop.in_thread(self.finish)
                except Exception:  # no thread could take it (once there, finish settles)
                    await self.release_async()
                    raise
        accepted = self
        body = self.delivery.body if self.delivery is not None else b""
        if isinstance(pending, PendingEvents) and len(body) > INLINE_BODY_LIMIT:
            # A large batch is decoded again off the loop; its routes then run on it.
            try:
                events: tuple[Event, ...] = await loop.in_thread(tuple, pending)
            except BaseException:
                await self.release_async()
                raise
            accepted = dataclasses.replace(self, pending=events)
        return await dispatcher.finish(loop, accepted)

    async def complete_async(self) -> None:
        """:meth:`complete` for async code."""
        claims = self._claims
        if claims and self._dispatcher is not None:
            await claims.complete_all(self._dispatcher.loop())

    async def release_async(self) -> None:
        """:meth:`release` for async code."""
        claims = self._claims
        if claims and self._dispatcher is not None:
            await claims.release_all(self._dispatcher.loop())

    def __enter__(self) -> Accepted:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if kind is None:
            self.complete()
        else:
            self.release()

    async def __aenter__(self) -> Accepted:
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if kind is None:
            await self.complete_async()
        else:
            await self.release_async()


def dispatched_reason(calls: int, unrouted: Iterable[str] = ()) -> str:
    """The reason of a delivery dispatched to ``calls`` route calls (or to none)."""
    if calls == 1:
        return "dispatched to 1 handler call"
    if calls:
        return f"dispatched to {calls} handler calls"
    names = sorted(unrouted)
    more = f" and {len(names) - 5} more" if len(names) > 5 else ""
    return "no handler for " + ", ".join(repr(name) for name in names[:5]) + more
