"""Plain functions run off the event loop, with one wake-up of the loop per call.

Theory of operation: :func:`asyncio.to_thread` goes through the loop's default
executor, where each call takes a :class:`concurrent.futures.Future` (a condition and
its lock, taken by both threads), a work item, an idle-thread semaphore and an
asyncio future chained to the concurrent one.  Under a real server that machinery
costs more CPU than a webhook's own work: a plain route on uvicorn took about 45 µs
(h11) and 27 µs (httptools on uvloop) more server CPU per delivery through it.

Here a call is one tuple on a :class:`queue.SimpleQueue`.  A worker runs the function
in the caller's context (its context variables, as :func:`asyncio.to_thread`
copies them) and hands the result back with one ``call_soon_threadsafe``; the
loop side settles an ordinary asyncio future.  Threads start on demand, one more
whenever a call finds none idle, up to :data:`MAX_WORKERS` (``HOOKSHIELD_THREADS``,
or the default executor's size); a call beyond that waits its turn.  They are daemon
threads, so an idle one never holds up the interpreter's exit, but calls still
running when it exits are waited for, as the default executor does.  A forked child
starts with an empty pool.
"""

from __future__ import annotations

import asyncio
import atexit
import contextvars
import os
import queue
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

__all__ = ["MAX_WORKERS", "run_in_thread"]

T = TypeVar("T")


def _max_workers() -> int:
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


#: The most threads the pool runs at once: ``HOOKSHIELD_THREADS``, or by default
#: as many as :class:`~concurrent.futures.ThreadPoolExecutor` starts.
MAX_WORKERS = _max_workers()

_Call = tuple[
    asyncio.AbstractEventLoop,
    "asyncio.Future[Any]",
    contextvars.Context,
    Callable[..., Any],
    tuple[Any, ...],
]


class _Pool:
    __slots__ = ("_idle", "_lock", "_pending", "_queue", "_threads")

    def __init__(self) -> None:
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
                start = self._threads < MAX_WORKERS
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


_pool = _Pool()


def _new_pool() -> None:
    # A forked child has none of the parent's threads; it starts a pool of its own.
    global _pool
    _pool = _Pool()


if hasattr(os, "register_at_fork"):  # POSIX; Windows has no fork
    os.register_at_fork(after_in_child=_new_pool)
atexit.register(lambda: _pool.wait_for_calls())


async def run_in_thread(func: Callable[..., T], /, *args: Any) -> T:
    """``func(*args)`` in one of hookshield's worker threads, in the caller's context."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[T] = loop.create_future()
    _pool.submit((loop, future, contextvars.copy_context(), func, args))
    return await future
