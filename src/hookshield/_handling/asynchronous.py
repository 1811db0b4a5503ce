"""The async runner, and the threads plain code runs in under asyncio.

Imported on first async use, so that ``import hookshield`` (a Flask or Django app)
loads neither :mod:`asyncio` nor this pool, and a bad ``HOOKSHIELD_THREADS`` is
reported when the pool is first needed rather than at import.

:class:`LoopRunner` makes the calls of the dispatch loop (``_handling/runner.py``) on the
event loop: an ``async def`` route is awaited on the loop, a plain one runs in a
worker thread (unless ``sync_handlers_in_thread=False`` or ``inline=True``), an
async store (``redis.asyncio``) is awaited, a blocking one (SQLite, a sync Redis
client) is called in a worker thread, and the in-memory store is called on the loop,
where a thread hop would cost more than the call.  The pause before a store step is
tried again is ``asyncio.sleep``.  Which parts of a delivery run where is decided by
the handler's async entry points and ``Accepted.finish_async``; this module knows
nothing of them.

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
import inspect
import os
import queue
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from .runner import Interrupted

if TYPE_CHECKING:
    from .routing import Router

__all__ = ["LoopRunner", "max_workers", "run_in_thread", "run_to_the_end"]

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


# -- the async runner --------------------------------------------------------------


class LoopRunner:
    """Makes the dispatch loop's calls on the running event loop (see the module's docstring)."""

    __slots__ = ("_router", "_store_inline", "_store_is_async", "_threads")

    def __init__(
        self, router: Router, *, threads: bool, store_is_async: bool, store_inline: bool
    ) -> None:
        self._router = router
        self._threads = threads
        self._store_is_async = store_is_async
        self._store_inline = store_inline

    async def route(self, func: Callable[..., Any], /, *args: Any) -> Any:
        """Await an ``async def`` route, run a plain one in a thread or, inline, here."""
        router = self._router
        if router.is_async(func):
            return await func(*args)
        if self._threads and router.wants_thread(func):
            return await run_in_thread(func, *args)
        result = func(*args)  # inline=True, or sync_handlers_in_thread=False
        # A plain function returning a coroutine is awaited; most routes return None,
        # which needs no inspect.isawaitable (its ABC check is the costly part).
        if result is not None and inspect.isawaitable(result):
            result = await result
        return result

    async def store(self, func: Callable[..., Any], /, *args: Any) -> Any:
        """Await an async store's step; make a blocking one's in a thread, to its end."""
        if self._store_is_async:
            return await func(*args)
        if self._store_inline:
            return func(*args)  # a dict and a lock: cheaper than a thread hop
        # SQLite, a sync Redis: its answer must be known, even for a cancelled caller
        result, cancelled = await run_to_the_end(func, *args)
        if cancelled is not None:
            raise Interrupted(result, cancelled)
        return result

    async def pause(self, seconds: float) -> None:
        """Wait on the loop, which keeps serving."""
        await asyncio.sleep(seconds)

    # The pool, for the entry points that hold this runner.
    in_thread = staticmethod(run_in_thread)
    to_the_end = staticmethod(run_to_the_end)
