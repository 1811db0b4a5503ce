"""How the one loop's calls are made: in plain code here, on an event loop in ``_handling/asynchronous.py``.

Theory of operation: the loop of ``_handling/dispatch.py`` and the bookkeeping of ``_handling/claims.py``
are written once, as coroutines that ``await`` every call they make through a
*runner*: a route or an error hook (:meth:`Runner.route`), a step of the
de-duplication store (:meth:`Runner.store`), the pause before a store step is tried
again (:meth:`Runner.pause`).  The plain runner, :data:`PLAIN`, makes each call at
once and never suspends, so :func:`run` completes such a coroutine in one step, in
plain code, with no event loop.  The async runner (``_async.LoopRunner``) awaits
``async def`` routes and async stores on the running loop and sends blocking work to
hookshield's threads.  So plain code and async code share every decision, and every
way out of an attempt, a ``BaseException`` included, settles its claims in both.

This module owns the runner protocol and the plain runner; it decides nothing about
a delivery and never imports :mod:`asyncio` (an ``async def`` route called from
plain code does, then).
"""

from __future__ import annotations

import contextlib
import inspect
import threading
import time
from collections.abc import Awaitable, Callable, Coroutine, Iterator
from typing import Any, Protocol, TypeVar

__all__ = ["PLAIN", "Interrupted", "Runner", "one_event_loop", "run"]

T = TypeVar("T")


class Runner(Protocol):
    """Makes the calls of the dispatch loop: plainly (:data:`PLAIN`), or on an event loop."""

    async def route(self, func: Callable[..., Any], /, *args: Any) -> Any:
        """Call a route or an error hook; what it raises is raised here."""
        ...

    async def store(self, func: Callable[..., Any], /, *args: Any) -> Any:
        """Make one step of the de-duplication store (``claim``, ``complete``, ``release``).

        Raises :class:`Interrupted` when the step finished for a caller that was
        cancelled while it ran.
        """
        ...

    async def pause(self, seconds: float) -> None:
        """Wait before a store step is tried again."""
        ...


class Interrupted(BaseException):
    """A store step that finished in a thread for a task cancelled while it ran.

    ``result`` is the step's answer (a claim now held, say), for the caller to record
    before it re-raises ``cancelled``, so that the way out releases what it holds.
    A ``BaseException``, so that no ``except Exception`` takes it for a store failure.
    """

    def __init__(self, result: Any, cancelled: BaseException) -> None:
        super().__init__("a store step finished for a cancelled caller")
        self.result = result
        self.cancelled = cancelled


class _Plain:
    """The plain runner: each call made at once, in the caller's thread."""

    __slots__ = ()

    async def route(self, func: Callable[..., Any], /, *args: Any) -> Any:
        result = func(*args)
        if result is not None and inspect.isawaitable(result):
            result = _finish_awaitable(result)
        return result

    async def store(self, func: Callable[..., Any], /, *args: Any) -> Any:
        return func(*args)

    async def pause(self, seconds: float) -> None:
        time.sleep(seconds)


#: The runner of plain code: :meth:`WebhookHandler.handle`, the worker, a thread.
PLAIN: Runner = _Plain()


def run(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine of the dispatch loop that makes its calls with :data:`PLAIN`."""
    try:
        coroutine.send(None)
    except StopIteration as done:
        result: T = done.value
        return result
    # Only an await of something that suspends gets here: the plain runner never does.
    coroutine.close()
    raise RuntimeError("a call made in plain code waited for an event loop")


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
