"""The worker: run the deliveries an inbox holds, at least once each.

Theory of operation: a worker leases one due delivery at a time from a
:class:`~hookshield.WorkerInbox` (``concurrency`` threads each do so, each delivery
with a lease of its own), checks its seal (a row changed in the inbox, or
stored without one, is not run), verifies its stored bytes again with the same
handler, and dispatches its events to the handler's routes.  Then it settles the
lease:

* the routes returned: **done**;
* a route raised: **retried** later, after an exponential backoff with full jitter
  (a random delay between 0 and ``base * 2**(attempt - 1)``, at most ``max_delay``),
  so that many failures do not come back all at once;
* the last attempt failed, or the seal or the bytes do not verify: **dead**
  (dead-letter), logged;
* leased more than ``max_attempts`` times: **dead** without running again.  Either the
  last attempt ended unsettled (the worker died running it, or the route outran its
  lease: the inbox marks it :data:`~hookshield._durable.inbox.LEASE_ENDED`), and another would
  only do the same; or ``max_attempts`` was lowered below the attempts already made.
  The error recorded says which.

A worker that dies mid-route settles nothing: its lease ends, and another worker (or
the same one, restarted) runs the delivery again.  So a delivery may run twice, never
zero times, and routes should be idempotent by the event's ``id``.

An idle thread waits for its poll, or less: an inbox that can tell when a delivery
arrives (``listen(wake)``, PostgreSQL's ``LISTEN/NOTIFY``) wakes it at once.  An
inbox that holds something per thread (Django's connections) lets it go when a
thread ends (``end_thread()``).

This module owns the retry policy and the loop; it never stores anything itself.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import math
import random
import signal
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from types import FrameType
from typing import Any, Final

from .._core.errors import AuthenticationError, TamperedDelivery, TimestampOutOfRange, WebhookError
from .._core.events import Delivery, Event
from .._core.options import integer, number
from .._core.text import printable
from .._handling import observe
from .._handling.handler import WebhookHandler, dispatcher_of, verifier_of
from .._handling.observe import WorkerResult
from .._handling.runner import PLAIN, one_event_loop, run
from .inbox import LEASE_ENDED, StoredDelivery, WorkerInbox, storable
from .seal import InboxKey

__all__ = ["DEFAULT_MAX_ATTEMPTS", "Retry", "Worker", "WorkerStats", "run_stored", "run_worker"]

logger = logging.getLogger("hookshield")

#: With the default delays, 18 attempts span about a day on average (the expected
#: wait before attempt n is half its backoff: 15 s, 30 s, ... then 3 h each).
DEFAULT_MAX_ATTEMPTS: Final = 18
#: The longest wait after the inbox has failed several times in a row.
MAX_PAUSE: Final = 30.0
#: How long a stopping worker waits for the deliveries in hand, by default.
DEFAULT_STOP_TIMEOUT: Final = 30.0


@dataclass(frozen=True, slots=True)
class Retry:
    """When to try a failed delivery again, and when to give up on it."""

    max_attempts: int = DEFAULT_MAX_ATTEMPTS
    base_delay: float = 30.0
    max_delay: float = 6 * 3600.0

    def __post_init__(self) -> None:
        if self.max_attempts < 1 or self.base_delay <= 0 or self.max_delay < self.base_delay:
            raise ValueError("max_attempts >= 1 and 0 < base_delay <= max_delay are required")

    def ceiling(self, attempts: int) -> float:
        """The longest wait after the ``attempts``-th failed attempt."""
        return min(self.max_delay, self.base_delay * 2.0 ** min(attempts - 1, 64))

    def delay(self, attempts: int, rand: Callable[[], float] = random.random) -> float:
        """The wait after the ``attempts``-th failure: full jitter over the ceiling."""
        return rand() * self.ceiling(attempts)


@dataclass(slots=True)
class WorkerStats:
    """What a worker did: deliveries done, retried, dead-lettered."""

    done: int = 0
    retried: int = 0
    dead: int = 0
    lost: int = 0  #: settles refused because the lease had ended and been taken over

    @property
    def total(self) -> int:
        """Every delivery the worker leased."""
        return self.done + self.retried + self.dead + self.lost


@dataclass
class Worker:
    """Runs one inbox's deliveries with the named handlers; see :func:`run_worker`."""

    inbox: WorkerInbox
    handlers: dict[str, WebhookHandler]
    retry: Retry = field(default_factory=Retry)
    clock: Callable[[], float] = time.time
    rand: Callable[[], float] = random.random
    stats: WorkerStats = field(default_factory=WorkerStats)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def run_once(self) -> bool:
        """Lease and run one due delivery; ``False`` when none is due."""
        stored = self.inbox.lease(self.clock(), tuple(self.handlers))
        if stored is None:
            return False
        observe.leased(self.inbox, stored)
        try:
            self.inbox.check_seal(stored)
        except TamperedDelivery as exc:
            self._dead(stored, f"the stored delivery is refused: {exc}")
            return True
        if stored.attempts > self.retry.max_attempts:
            self._dead(stored, self._spent(stored))
            return True
        handler = self.handlers[stored.handler]
        try:
            delivery, events = open_stored(handler, stored)
            dispatch_stored(handler, delivery, events)
        except NotVerified as refused:
            # The handler's credentials changed, or (a row without a seal) its bytes:
            # never run, never retried.
            self._dead(stored, _unverified(refused.error))
            return True
        except Exception as exc:
            self._failed(stored, exc)
            return True
        self._count(self.inbox.done(stored), "done", stored)
        return True

    def _spent(self, stored: StoredDelivery) -> str:
        """Why a delivery leased past ``max_attempts`` is not run again."""
        made, most = stored.attempts - 1, self.retry.max_attempts
        if stored.last_error == LEASE_ENDED:
            # The attempt before this one never settled: running it again would only
            # end the same way (a route that kills its worker, or outruns its lease).
            return (
                f"attempt {made} of at most {most} ended unsettled: the worker died running "
                "it (killed, out of memory) or the route outran its lease"
            )
        # Each attempt settled as a retry, so the limit was higher when they were made.
        return (
            f"{made} attempts were made before the most allowed was lowered to {most}, "
            f"so it is not run again (last error: {stored.last_error or 'none'})"
        )

    def _failed(self, stored: StoredDelivery, exc: Exception) -> None:
        error = _error_text(exc)
        if stored.attempts >= self.retry.max_attempts:
            self._dead(stored, error)
            return
        at = self.clock() + self.retry.delay(stored.attempts, self.rand)
        logger.warning(
            "hookshield: %s delivery %s failed (attempt %d of %d), retrying in %.0f s: %s",
            stored.sender,
            printable(stored.id),
            stored.attempts,
            self.retry.max_attempts,
            at - self.clock(),
            printable(error),
        )
        self._count(self.inbox.retry(stored, at, error), "retried", stored)

    def _dead(self, stored: StoredDelivery, error: str) -> None:
        logger.error(
            "hookshield: %s delivery %s moved to dead-letter after %d attempts: %s "
            "(hookshield inbox retry %s runs it again)",
            stored.sender,
            printable(stored.id),
            stored.attempts,
            printable(error),
            printable(stored.id),
        )
        self._count(self.inbox.dead(stored, storable(error) or ""), "dead", stored)

    def _count(self, settled: bool, what: WorkerResult, stored: StoredDelivery) -> None:
        if not settled:
            logger.warning(
                "hookshield: the lease on delivery %s ended before it was %s; "
                "another worker has it now",
                printable(stored.id),
                what,
            )
            what = "lost"
        observe.finished(self.inbox, stored, what)
        with self._lock:  # the threads of one worker share its counts
            setattr(self.stats, what, getattr(self.stats, what) + 1)


def _error_text(exc: Exception) -> str:
    """What a failed attempt notes: the exception, as every inbox can keep it, bounded."""
    return storable(f"{type(exc).__name__}: {exc}"[:500]) or ""


def _unverified(exc: WebhookError) -> str:
    """Why a stored delivery is dead-lettered unrun, with its likely cause."""
    reason = f"the stored delivery does not verify: {exc}"
    if isinstance(exc, AuthenticationError) and not isinstance(exc, TimestampOutOfRange):
        # The web app verified these very bytes before storing them.
        reason += (
            " (the web app accepted it, so this worker's credential most likely differs "
            "from the web app's: give the worker's handler the same secret or token; "
            "else the stored row was changed)"
        )
    return reason


def run_stored(handler: WebhookHandler, stored: StoredDelivery, *, key: InboxKey) -> int:
    """Run one stored delivery as a worker does: for a queue of your own.

    Checks its seal with ``key`` (the key its inbox sealed it with), verifies it again
    with ``handler`` and calls the routes of its events still to run; returns the
    calls made.  Raises :class:`~hookshield.TamperedDelivery` or another
    :class:`~hookshield.WebhookError` when it must never run (do not retry it), and
    what a route raised when it should be retried.
    """
    key.check(stored)
    try:
        delivery, events = open_stored(handler, stored)
        return dispatch_stored(handler, delivery, events)
    except NotVerified as refused:
        raise refused.error from None


class NotVerified(Exception):
    """A stored delivery that does not verify (``error`` says why), even part-way through.

    Raised apart from a route's exceptions, which may be WebhookErrors too: a delivery
    that does not verify is dead-lettered, a route that raised is retried.
    """

    def __init__(self, error: WebhookError) -> None:
        super().__init__(str(error))
        self.error = error


def open_stored(
    handler: WebhookHandler, stored: StoredDelivery
) -> tuple[Delivery, Iterator[Event]]:
    """The stored delivery, verified again, and its events still to run, decoded lazily.

    Its seal must have been checked.  A signed timestamp is judged by when the
    delivery arrived: it may have waited in the inbox, or for a retry, far longer than
    the sender's window.  A batch is decoded record by record as the events are read,
    so that running it costs about its body's size.  Raises :class:`NotVerified`.
    """
    try:
        delivery, events = verifier_of(handler).open_stored(
            stored.body, stored.headers, received_at=stored.received
        )
    except WebhookError as exc:
        raise NotVerified(exc) from exc
    if stored.events is None:
        return delivery, _verified(events)
    return delivery, _verified(_only(events, frozenset(stored.events), handler))


def dispatch_stored(handler: WebhookHandler, delivery: Delivery, events: Iterable[Event]) -> int:
    """Run the routes of ``events``; the calls made.  What a route raised propagates."""
    outcome = run(
        dispatcher_of(handler).dispatch(PLAIN, delivery, events, None, claim_events=False)
    )
    if outcome.error is not None:
        raise outcome.error
    return outcome.dispatched


def _only(
    events: Iterator[Event], keys: frozenset[str], handler: WebhookHandler
) -> Iterator[Event]:
    """The events still to run: those whose key is in ``keys``, each once, and any without."""
    key_of = verifier_of(handler).sender.event_key
    seen: set[str] = set()
    for event in events:
        key = key_of(event)
        if key is None:
            yield event  # never claimed, so new when it was stored
        elif key in keys and key not in seen:
            seen.add(key)
            yield event


def _verified(events: Iterator[Event]) -> Iterator[Event]:
    """``events``, a record that does not decode part-way raising :class:`NotVerified`."""
    try:
        yield from events
    except WebhookError as exc:
        raise NotVerified(exc) from exc


def handler_map(handlers: Iterable[WebhookHandler]) -> dict[str, WebhookHandler]:
    """The handlers by the name their stored deliveries carry (the provider's name)."""
    named: dict[str, WebhookHandler] = {}
    for handler in handlers:
        if not isinstance(handler, WebhookHandler):
            raise TypeError(f"handlers must be WebhookHandlers, not {type(handler).__name__}")
        if handler.provider in named:
            raise ValueError(
                f"two handlers for {handler.provider!r}: an inbox tells a delivery's "
                "handler by its provider, so run one handler per sender"
            )
        named[handler.provider] = handler
    if not named:
        raise ValueError("run_worker needs at least one handler")
    return named


def run_worker(
    inbox: WorkerInbox,
    *handlers: WebhookHandler,
    retry: Retry | None = None,
    poll: float = 0.5,
    stop: threading.Event | None = None,
    clock: Callable[[], float] = time.time,
    sleep: Callable[[float], object] | None = None,
    burst: bool = False,
    handle_signals: bool = True,
    concurrency: int = 1,
    stop_timeout: float = DEFAULT_STOP_TIMEOUT,
) -> WorkerStats:
    """Run ``inbox``'s deliveries with ``handlers`` until stopped; blocks.

    ``concurrency`` deliveries run at once, each in a thread of its own with a lease
    of its own (with 1, in the calling thread).  Each thread runs the ``async def``
    routes it meets on one event loop of its own, kept while it runs.  When none is
    due a thread waits ``poll`` seconds; an inbox that can tell when a delivery
    arrives (``listen``, as :class:`~hookshield.postgres.PostgresInbox` can with
    ``LISTEN/NOTIFY``) wakes the waiting threads at once, and the poll is only the
    fallback.  A paused sender's deliveries are not leased (``hookshield inbox
    pause``).

    SIGTERM and SIGINT (when called in the main thread and ``handle_signals``) or
    setting ``stop`` end it once the deliveries in hand are done, waiting for them
    ``stop_timeout`` seconds at most (those still running then are left leased, and
    run again once their lease ends); a second SIGTERM or SIGINT ends it at once,
    raising :class:`SystemExit` or :class:`KeyboardInterrupt`.  ``burst=True`` ends
    it once nothing is due.  At start, it warns of deliveries waiting for a sender it
    has no handler for, when the inbox can count them (``waiting()``).  An error from
    the inbox is logged and the thread tries again after a pause that doubles with
    each failure in a row, up to :data:`MAX_PAUSE` seconds.  ``clock`` and ``sleep``
    may be replaced for tests.  Returns the counts.
    """
    if not isinstance(inbox, WorkerInbox):
        raise TypeError(
            f"run_worker needs a WorkerInbox (such as SQLiteInbox), not {type(inbox).__name__}: "
            "it leases, checks the seal of, and settles each delivery"
        )
    if integer("concurrency", concurrency, "a count of threads") < 1:
        raise ValueError("concurrency must be at least 1")
    if not 0 <= number("stop_timeout", stop_timeout) < math.inf:
        raise ValueError("stop_timeout must be a finite number of seconds, 0 or more")
    worker = Worker(inbox, handler_map(handlers), retry or Retry(), clock)
    stopping = stop if stop is not None else threading.Event()
    wake = _Wake(stopping)
    restore = _on_signals(stopping, wake.set) if handle_signals else {}
    logger.info(
        "hookshield: worker started on %r for %s (%d at once)",
        inbox,
        ", ".join(worker.handlers),
        concurrency,
    )
    _warn_unhandled(inbox, worker.handlers)
    listener = _listen(inbox, wake.set) if sleep is None else None
    idle: Callable[[int, float], object] = (
        (lambda _seen, seconds: sleep(seconds)) if sleep is not None else wake.wait
    )
    loop = functools.partial(_loop, worker, stopping, wake, idle, poll, burst)
    try:
        if concurrency == 1:
            loop()
        else:
            _run_threads(loop, concurrency, stopping, stop_timeout)
    finally:
        if listener is not None:
            listener.close()
        for signum, previous in restore.items():
            signal.signal(signum, previous)
    logger.info("hookshield: worker stopped: %s", worker.stats)
    return worker.stats


class _Wake:
    """Wake-ups for idle worker threads: a count that ``set`` raises, and waits on it.

    A thread reads the count *before* it looks for a due delivery, and waits only
    while the count is still that: a delivery put between its look and its wait
    still wakes it.
    """

    def __init__(self, stopping: threading.Event) -> None:
        self._stopping = stopping
        self._count = 0
        self._changed = threading.Condition()

    @property
    def count(self) -> int:
        return self._count

    def set(self) -> None:
        with self._changed:
            self._count += 1
            self._changed.notify_all()

    def wait(self, seen: int, timeout: float) -> None:
        """Return once the count has passed ``seen``, ``stopping`` is set, or ``timeout`` passes."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while self._count == seen and not self._stopping.is_set():
                left = deadline - time.monotonic()
                if left <= 0:
                    return
                # In slices: a stop event set by the caller does not notify this condition.
                self._changed.wait(min(left, 0.1))


def _loop(
    worker: Worker,
    stopping: threading.Event,
    wake: _Wake,
    idle: Callable[[int, float], object],
    poll: float,
    burst: bool,
) -> None:
    """One thread's work, on an event loop of its own for the async routes it meets."""
    # An inbox may hold what belongs to this thread (Django's connections): it lets it go.
    end_thread = getattr(worker.inbox, "end_thread", None)
    with contextlib.ExitStack() as ending:
        if callable(end_thread):
            ending.callback(end_thread)
        ending.enter_context(one_event_loop())
        _run_until_stopped(worker, stopping, wake, idle, poll, burst)


def _run_until_stopped(
    worker: Worker,
    stopping: threading.Event,
    wake: _Wake,
    idle: Callable[[int, float], object],
    poll: float,
    burst: bool,
) -> None:
    """Lease and run deliveries in this thread until stopped (or, in a burst, none is due)."""
    failures = 0
    while not stopping.is_set():
        seen = wake.count
        try:
            ran = worker.run_once()
        except Exception:
            # The inbox failed (a locked or full disk, a database or broker gone):
            # whatever was leased is run again when its lease ends.  Wait longer
            # after each failure in a row, up to a bound, and keep going.
            failures += 1
            pause = min(MAX_PAUSE, poll * 2.0 ** min(failures, 16))
            logger.exception(
                "hookshield: the inbox failed (%d in a row), trying again in %.1f s",
                failures,
                pause,
            )
            idle(seen, pause)
            continue
        failures = 0
        if ran:
            continue
        if burst:
            break
        idle(seen, poll)


def _run_threads(
    loop: Callable[[], None], count: int, stopping: threading.Event, stop_timeout: float
) -> None:
    """Run ``loop`` in ``count`` threads until they end, or ``stopping`` and ``stop_timeout``."""
    threads = [
        threading.Thread(target=loop, name=f"hookshield-worker-{n}", daemon=True)
        for n in range(count)
    ]
    for thread in threads:
        thread.start()
    # Woken often enough to see a signal's stop at once (signals reach the main thread).
    while not stopping.is_set() and any(thread.is_alive() for thread in threads):
        stopping.wait(0.1)
    deadline = time.monotonic() + stop_timeout
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
    left = sum(thread.is_alive() for thread in threads)
    if left:
        # Daemon threads: they end with the process.  Their leases were never
        # settled, so those deliveries run again once the leases end.
        logger.warning(
            "hookshield: stopped after %.0f s with %d deliveries still running; they run "
            "again once their lease ends",
            stop_timeout,
            left,
        )


def _listen(inbox: WorkerInbox, wake: Callable[[], None]) -> Any:
    """The inbox's listener for new deliveries (``inbox.listen(wake)``), if it has one."""
    listen = getattr(inbox, "listen", None)
    if not callable(listen):
        return None
    try:
        return listen(wake)
    except Exception:
        logger.exception("hookshield: cannot listen for new deliveries; polling instead")
        return None


def _warn_unhandled(inbox: WorkerInbox, handlers: dict[str, WebhookHandler]) -> None:
    """Warn of deliveries waiting for a sender none of ``handlers`` runs.

    They would wait in silence: a worker leases only its own handlers' deliveries.
    An inbox that can count what waits (``SQLiteInbox.waiting``) makes this possible.
    """
    waiting = getattr(inbox, "waiting", None)
    if not callable(waiting):
        return
    try:
        counts: dict[str, int] = waiting()
    except Exception:  # the loop meets the same failure at once, and reports it
        return
    for name, count in counts.items():
        if name not in handlers:
            logger.warning(
                "hookshield: %d deliveries for %r wait in the inbox, but this worker has no "
                "handler for %r (it runs %s): they wait until a worker with one runs",
                count,
                name,
                name,
                ", ".join(handlers),
            )


_Handler = Callable[[int, FrameType | None], object] | int | signal.Handlers | None


def _on_signals(
    stopping: threading.Event, woken: Callable[[], None] = lambda: None
) -> dict[int, _Handler]:
    """Make SIGTERM and SIGINT set ``stopping``, and a second one stop at once.

    The second signal ends the worker as the signal would by default, in the middle of
    the delivery in hand: :class:`KeyboardInterrupt` for SIGINT, :class:`SystemExit`
    (128 + 15) for SIGTERM.  That delivery's lease is never settled, so it runs
    again once the lease ends.  Returns the handlers these replaced.
    """
    if threading.current_thread() is not threading.main_thread():
        return {}
    received: list[int] = []

    def stop(signum: int, _frame: FrameType | None) -> None:
        received.append(signum)
        if len(received) == 1:
            logger.info(
                "hookshield: signal %d: stopping after the current delivery "
                "(send it again to stop at once)",
                signum,
            )
            stopping.set()
            woken()
            return
        logger.warning(
            "hookshield: signal %d again: stopping at once; the delivery in hand stays "
            "leased and runs again once its lease ends",
            signum,
        )
        if signum == signal.SIGINT:
            raise KeyboardInterrupt
        raise SystemExit(128 + signum)

    return {signum: signal.signal(signum, stop) for signum in (signal.SIGTERM, signal.SIGINT)}
