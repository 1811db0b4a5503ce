"""The async twins of the handler's entry points, and the threads plain code runs in.

Imported on first async use, so that ``import hookshield`` (a Flask or Django app)
loads neither :mod:`asyncio` nor this pool, and a bad ``HOOKSHIELD_THREADS`` is
reported when the pool is first needed rather than at import.

:func:`drive` runs the same generators of steps as ``_dispatch.drive``: an
``async def`` route is awaited on the loop, a plain one runs in a worker thread
(unless ``sync_handlers_in_thread=False``), an async store (``redis.asyncio``) is
awaited, a blocking one (SQLite, a sync Redis client) is called in a worker thread,
and the in-memory store is called on the loop, where a thread hop would cost more
than the call.  The pause before a store step is tried again is ``asyncio.sleep``.

The worker threads.  :func:`asyncio.to_thread` goes through the loop's default
executor, where each call takes a :class:`concurrent.futures.Future` (a condition and
its lock, taken by both threads), a work item, an idle-thread semaphore and an
asyncio future chained to the concurrent one.  Under a real server that machinery
costs more CPU than a webhook's own work: a plain route on uvicorn took about 45 µs
(h11) and 27 µs (httptools on uvloop) more server CPU per delivery through it.
Here a call is one tuple on a :class:`queue.SimpleQueue`.  A worker runs the function
in the caller's context (its context variables, as :func:`asyncio.to_thread`
copies them) and hands the result back with one ``call_soon_threadsafe``.  Threads
start on demand, up to ``HOOKSHIELD_THREADS`` (or the default executor's size); a
call beyond that waits its turn.  They are daemon threads, but calls still running
when the interpreter exits are waited for, as the default executor does.  A forked
child starts with an empty pool.
"""

from __future__ import annotations

import asyncio
import atexit
import contextvars
import dataclasses
import inspect
import os
import queue
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final, TypeVar

from ._claims import Kind, Steps
from ._dispatch import advance
from ._errors import WebhookError
from ._outcome import Outcome, PendingEvents, event_types_of
from ._verify import Body, as_bytes

if TYPE_CHECKING:
    from ._events import Delivery, Event
    from ._handler import WebhookHandler
    from ._headers import HeadersLike

__all__ = ["accept", "dispatch", "drive", "finish", "handle", "max_workers", "run_in_thread"]

#: Bodies up to this size are verified on the event loop (about 100 µs of work at
#: most); larger ones in a worker thread, so that the loop keeps serving.
INLINE_BODY_LIMIT: Final = 64 * 1024

T = TypeVar("T")


def max_workers() -> int:
    """The most threads the pool runs at once: ``HOOKSHIELD_THREADS``, or the default.

    The default is as many as :class:`~concurrent.futures.ThreadPoolExecutor` starts.
    """
    # HOOKSHIELD_THREADS sizes the pool, as ASGI_THREADS sizes Django's; by default it
    # has as many threads as asyncio's default executor.
    value = os.environ.get("HOOKSHIELD_THREADS", "").strip()
    if not value:
        return min(32, (os.cpu_count() or 1) + 4)
    if not (value.isascii() and value.isdigit() and len(value) <= 4 and 0 < int(value) <= 1024):
        raise ValueError(
            f"HOOKSHIELD_THREADS is {value[:32]!r}: it must be a whole number from 1 to 1024"
        )
    return int(value)


_Call = tuple[
    asyncio.AbstractEventLoop,
    "asyncio.Future[Any]",
    contextvars.Context,
    Callable[..., Any],
    tuple[Any, ...],
]


class _Pool:
    __slots__ = ("_idle", "_lock", "_pending", "_queue", "_threads", "max_workers")

    def __init__(self, max_workers: int) -> None:
        self.max_workers = max_workers
        self._lock = threading.Lock()
        self._queue: queue.SimpleQueue[_Call] = queue.SimpleQueue()
        self._threads = 0
        self._idle = 0  # workers waiting for a call and not yet promised one
        self._pending = 0  # calls submitted and not yet finished

    def submit(self, call: _Call) -> None:
        with self._lock:
            self._pending += 1
            if self._idle:
                self._idle -= 1  # that worker is promised this call
                start = False
            else:
                start = self._threads < self.max_workers
                self._threads += start
        if start:
            name = f"hookshield-worker-{self._threads}"
            try:
                threading.Thread(target=self._work, name=name, daemon=True).start()
            except RuntimeError:  # no thread can be started: fail this call, not hang it
                with self._lock:
                    self._threads -= 1
                    self._pending -= 1
                raise
        self._queue.put(call)

    def _work(self) -> None:
        get, lock = self._queue.get, self._lock
        while True:
            loop, future, context, func, args = get()
            try:
                result, error = context.run(func, *args), None
            except BaseException as exc:  # handed to the awaiting task, as an executor does
                result, error = None, exc
            try:  # noqa: SIM105 - a try costs nothing here; suppress() is a call per delivery
                loop.call_soon_threadsafe(_settle, future, result, error)
            except RuntimeError:
                pass  # the loop has closed: no one is waiting for the answer
            del future, context, func, args, result, error  # not kept alive while idle
            with lock:
                self._pending -= 1
                self._idle += 1

    def wait_for_calls(self) -> None:
        """Wait until every call submitted has finished (at the interpreter's exit)."""
        while self._pending:
            time.sleep(0.01)


def _settle(future: asyncio.Future[Any], result: Any, error: BaseException | None) -> None:
    if future.cancelled():  # the awaiting task gave up; the call ran regardless
        return
    if error is None:
        future.set_result(result)
    elif isinstance(error, StopIteration):
        # A future cannot carry StopIteration (it would end the awaiting coroutine).
        wrapped = RuntimeError("a function run in a thread raised StopIteration")
        wrapped.__cause__ = error
        future.set_exception(wrapped)
    else:
        future.set_exception(error)


_pool: _Pool | None = None
_pool_lock = threading.Lock()


def _get_pool() -> _Pool:
    global _pool
    pool = _pool
    if pool is None:
        with _pool_lock:
            if _pool is None:
                _pool = _Pool(max_workers())  # a bad HOOKSHIELD_THREADS is reported here
            pool = _pool
    return pool


def _forget_pool() -> None:
    # A forked child has none of the parent's threads; it starts a pool of its own.
    global _pool
    _pool = None


def _wait_at_exit() -> None:
    if _pool is not None:
        _pool.wait_for_calls()


if hasattr(os, "register_at_fork"):  # POSIX; Windows has no fork
    os.register_at_fork(after_in_child=_forget_pool)
atexit.register(_wait_at_exit)


async def run_in_thread(func: Callable[..., T], /, *args: Any) -> T:
    """``func(*args)`` in one of hookshield's worker threads, in the caller's context."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[T] = loop.create_future()
    _get_pool().submit((loop, future, contextvars.copy_context(), func, args))
    return await future


async def run_to_the_end(
    func: Callable[..., T], /, *args: Any
) -> tuple[T, asyncio.CancelledError | None]:
    """``func(*args)`` in a worker thread, waited for even if the caller is cancelled.

    For calls whose effect the caller must settle (a store's claim, an inbox's
    ``put``): the thread goes on whatever the caller does, so on a cancellation this
    waits for the call's result and returns it with the cancellation, for the caller
    to release or complete by what the call did, and then re-raise.
    """
    call = asyncio.ensure_future(run_in_thread(func, *args))
    try:
        return await asyncio.shield(call), None
    except asyncio.CancelledError as cancelled:
        return await call, cancelled


# -- the async driver and entry points -------------------------------------------------


async def drive(handler: WebhookHandler, steps: Steps) -> Any:
    """Run a generator of steps on the event loop, awaiting what must be awaited.

    Every decision is made here, in one coroutine: under a server, each coroutine
    layer per step costs more than the in-memory store's step itself.
    """
    router, threads = handler.router, handler.sync_handlers_in_thread
    store_is_async, store_inline = handler.store_is_async, handler.store_inline
    going, step = advance(steps, None, None)
    while going:
        kind, func, args = step
        cancelled: asyncio.CancelledError | None = None
        try:
            if kind is Kind.WAIT:
                result = await asyncio.sleep(*args)  # a store's retry: the loop keeps serving
            elif kind is Kind.STORE:
                if store_is_async:
                    result = await func(*args)
                elif store_inline:
                    result = func(*args)  # a dict and a lock: cheaper than a thread hop
                else:  # SQLite, a sync Redis: its answer must be known, even now
                    result, cancelled = await run_to_the_end(func, *args)
            elif router.is_async(func):
                result = await func(*args)
            elif threads and router.wants_thread(func):
                result = await run_in_thread(func, *args)
            else:
                result = func(*args)  # inline=True, or sync_handlers_in_thread=False
                if inspect.isawaitable(result):  # a plain function returning a coroutine
                    result = await result
        except BaseException as exc:  # cancellation included: the generator releases
            going, step = advance(steps, None, exc)
        else:
            going, step = advance(steps, result, None)
        if cancelled is not None:
            # The store's answer is in (a claim now held, say): only now does the
            # generator hear of the cancellation; the loop goes on to make the
            # releases it yields, and the cancellation comes out of it at the end.
            if not going:
                raise cancelled
            going, step = advance(steps, None, cancelled)
    return step


def _verifies_inline(handler: WebhookHandler, body: Body) -> bool:
    # A small body with the in-memory store (or none): the hop would cost more than the work.
    return len(body) <= INLINE_BODY_LIMIT and handler.store_inline


async def handle(handler: WebhookHandler, body: Body, headers: HeadersLike) -> Outcome:
    """``handler.handle_async``: see there."""
    body = as_bytes(body)  # a caller's wrong type raises here, before its size is judged
    router = handler.router
    if handler.store_is_async or router.any_async:
        # Async routes or an async store: on the loop, but for a large body's
        # verification and each plain route's call.
        try:
            if _verifies_inline(handler, body):
                delivery = handler.verify(body, headers)
            else:
                delivery = await run_in_thread(handler.verify, body, headers)
        except WebhookError as exc:
            return handler.dispatcher.rejected(exc)
        outcome: Outcome = await drive(
            handler, handler.dispatcher.handle(delivery, delivery.events)
        )
        return outcome
    if handler.streams or not _verifies_inline(handler, body):
        # A batch, decoded as it is dispatched, a large body or a blocking store: all
        # of it in one worker thread, one hop.
        return await run_in_thread(handler.handle, body, headers)
    # Verified and claimed on the loop: a refusal or a duplicate is answered without
    # a hop; a new delivery's plain routes then run in one worker thread, rather than
    # one hop per route.
    return await finish(handler, handler.accept(body, headers))


async def accept(handler: WebhookHandler, body: Body, headers: HeadersLike) -> Outcome:
    """``handler.accept_async``: see there."""
    body = as_bytes(body)
    if _verifies_inline(handler, body):
        return handler.accept(body, headers)  # small, and no store call to wait for
    if not handler.store_is_async:
        outcome, cancelled = await run_to_the_end(handler.accept, body, headers)
        if cancelled is not None:  # claimed in the thread, for a caller now gone
            await handler.release_async(outcome)
            raise cancelled
        return outcome
    try:
        delivery = await run_in_thread(handler.verify, body, headers)
    except WebhookError as exc:
        return handler.dispatcher.rejected(exc)
    accepted: Outcome = await drive(handler, handler.dispatcher.accept(delivery))
    return accepted


async def finish(handler: WebhookHandler, outcome: Outcome) -> Outcome:
    """``handler.finish_async``: see there."""
    if not outcome.pending:
        return outcome
    router = handler.router
    # By type: a batch accepted record by record (PendingEvents) is not decoded for it.
    kinds = event_types_of(outcome.pending)
    if handler.sync_handlers_in_thread and not handler.store_is_async and router.all_plain(kinds):
        threaded = any(
            router.wants_thread(route) for kind in kinds for route in router.routes_for(kind)
        )
        if threaded:  # one hop for the whole delivery, rather than one per route
            try:
                return await run_in_thread(handler.finish, outcome)
            except Exception:  # no thread could take it (once there, finish settles)
                await handler.release_async(outcome)
                raise
        if handler.store_inline:  # inline routes and an in-memory store
            pending = outcome.pending
            body = outcome.delivery.body if outcome.delivery is not None else b""
            if isinstance(pending, PendingEvents) and len(body) > INLINE_BODY_LIMIT:
                # A large batch is decoded again off the loop; its routes then run on it.
                try:
                    events: tuple[Event, ...] = await run_in_thread(tuple, pending)
                except Exception:
                    await handler.release_async(outcome)
                    raise
                outcome = dataclasses.replace(outcome, pending=events)
            return handler.finish(outcome)
    result: Outcome = await drive(handler, handler.dispatcher.finish(outcome))
    return result


async def dispatch(handler: WebhookHandler, delivery: Delivery) -> int:
    """``handler.dispatch_async``: see there."""
    steps = handler.dispatcher.dispatch(delivery, delivery.events, None, claim_events=False)
    outcome: Outcome = await drive(handler, steps)
    if outcome.error is not None:
        raise outcome.error
    return outcome.dispatched


async def settle(handler: WebhookHandler, outcome: Outcome, *, done: bool) -> None:
    """``handler.complete_async`` / ``release_async``: see there."""
    claims = outcome.claims
    if claims is not None:
        await drive(handler, claims.complete_all() if done else claims.release_all())
