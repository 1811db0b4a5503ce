"""Which functions an event is dispatched to.

Theory of operation: a route is registered for an event type (``"session.completed"``),
a prefix wildcard (``"session.*"``) or ``"*"``, and an error hook for every failure.
Whether a function is ``async def``, and whether a plain route asked to run on the
event loop (``inline=True``), is decided once, here, at registration, so that
dispatching never inspects a function.  A name the sender does not document, but
close to one it does, is warned about at registration: a typo would otherwise leave
the route silently unused.

Everything about routes lives in this module; nothing here calls a route.
"""

from __future__ import annotations

import functools
import inspect
import warnings
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, Final, TypeVar

from .._core.events import Event

__all__ = ["ErrorHook", "Route", "Router"]

Route = Callable[[Event], Awaitable[None] | Any | None]
ErrorHook = Callable[[Exception, Event], Awaitable[None] | Any | None]
# What the decorators take and give back unchanged.  A route annotated with its
# sender's event class (``def done(event: MindPeekerEvent) -> None``) takes a narrower
# argument than ``Route`` promises, which a bound of ``Route`` would refuse; a route
# is therefore bound only to take one argument (``Any``), and keeps its own type.
R = TypeVar("R", bound=Callable[[Any], object])
H = TypeVar("H", bound=Callable[[Exception, Any], object])

#: Event types longer than this (the sender's choice) are matched without caching.
_MAX_CACHED_TYPE: Final = 128


class Router:
    """The routes and error hooks of one handler; ``title`` and ``known`` for warnings."""

    def __init__(self, title: str, known: tuple[str, ...]) -> None:
        self._title = title
        self._known = known
        self._routes: list[tuple[str, Route]] = []
        self.error_hooks: list[ErrorHook] = []
        # ids of the async ones, and of the plain routes registered inline=True; the
        # lists above keep each function, and so its id, alive
        self._coroutines: set[int] = set()
        self._inline: set[int] = set()
        #: Whether any route or error hook is ``async def``.
        self.any_async = False
        #: Whether any route may run in a worker thread under asyncio (a plain one not
        #: registered ``inline=True``): without one, an async entry point need not ask
        #: :meth:`any_threaded` of each delivery.
        self.may_thread = False
        self._cached = functools.lru_cache(maxsize=4096)(self._match)
        self._cached_threaded = functools.lru_cache(maxsize=4096)(self._threaded)
        self._cached_patterns = functools.lru_cache(maxsize=4096)(self._match_patterns)

    def on(self, *event_types: str, inline: bool = False) -> Callable[[R], R]:
        """Register the decorated function for events of these types.

        ``inline=True`` runs a plain function on the event loop under asyncio, rather
        than in a worker thread: for routes that only compute, never block.
        """
        if not event_types:
            raise TypeError("on() needs at least one event type, for example on('*')")
        for name in event_types:
            self._check_pattern(name)

        def register(func: R) -> R:
            if not callable(func):
                raise TypeError(f"on() decorates a function, not {func!r}")
            self._routes.extend((name, func) for name in event_types)
            self._remember_kind(func)
            if inline:
                self._inline.add(id(func))
            elif id(func) not in self._coroutines:
                self.may_thread = True
            self._cached.cache_clear()
            self._cached_threaded.cache_clear()
            self._cached_patterns.cache_clear()
            return func

        return register

    def on_error(self, hook: H) -> H:
        """Register ``hook(error, event)``, called when a route raises."""
        if not callable(hook):
            raise TypeError(f"on_error() decorates a function, not {hook!r}")
        self.error_hooks.append(hook)
        self._remember_kind(hook)
        return hook

    def routes_for(self, event_type: str) -> tuple[Route, ...]:
        """The functions an event of ``event_type`` is dispatched to, in order."""
        if len(event_type) > _MAX_CACHED_TYPE:
            return self._match(event_type)
        return self._cached(event_type)

    def route_at(self, event_type: str, index: int) -> tuple[str, str]:
        """The pattern the ``index``-th route of ``event_type`` was registered for, and its name.

        The pattern is the application's, never the sender's text: what an observer may
        use as a metric label.
        """
        if len(event_type) > _MAX_CACHED_TYPE:
            pattern, func = self._match_patterns(event_type)[index]
        else:
            pattern, func = self._cached_patterns(event_type)[index]
        return pattern, getattr(func, "__qualname__", type(func).__qualname__)

    def is_async(self, func: Callable[..., Any]) -> bool:
        """Whether a registered route or hook is ``async def``."""
        return id(func) in self._coroutines

    def wants_thread(self, func: Callable[..., Any]) -> bool:
        """Whether a route is a plain function that must not run on the event loop."""
        key = id(func)
        return key not in self._coroutines and key not in self._inline

    def all_plain(self, event_types: Iterable[str]) -> bool:
        """Whether no route of these event types, nor any error hook, is ``async def``."""
        if not self._coroutines:
            return True
        if any(id(hook) in self._coroutines for hook in self.error_hooks):
            return False
        return not any(
            id(route) in self._coroutines for kind in event_types for route in self.routes_for(kind)
        )

    def any_threaded(self, event_types: Iterable[str]) -> bool:
        """Whether a route of these event types is a plain function to run in a thread."""
        for event_type in event_types:
            if len(event_type) > _MAX_CACHED_TYPE:
                threaded = self._threaded(event_type)
            else:
                threaded = self._cached_threaded(event_type)
            if threaded:
                return True
        return False

    def _threaded(self, event_type: str) -> bool:
        return any(self.wants_thread(route) for route in self.routes_for(event_type))

    def _remember_kind(self, func: Callable[..., Any]) -> None:
        if inspect.iscoroutinefunction(func):
            self._coroutines.add(id(func))
            self.any_async = True

    def _match(self, event_type: str) -> tuple[Route, ...]:
        return tuple(func for pattern, func in self._routes if _matches(pattern, event_type))

    def _match_patterns(self, event_type: str) -> tuple[tuple[str, Route], ...]:
        return tuple((p, func) for p, func in self._routes if _matches(p, event_type))

    def _check_pattern(self, name: str) -> None:
        if not isinstance(name, str) or not name:
            raise TypeError(f"an event type is a non-empty string, not {name!r}")
        if "*" in name and not (name == "*" or (name.endswith(".*") and name.count("*") == 1)):
            raise ValueError(f"{name!r}: a wildcard is '*' or a prefix like 'session.*'")
        if "*" not in name and name not in self._known:
            import difflib  # only for a name the sender does not document

            close = difflib.get_close_matches(name, self._known, n=1, cutoff=0.8)
            if close:
                warnings.warn(
                    f"{self._title} documents no event {name!r}; did you mean {close[0]!r}?",
                    stacklevel=4,
                )


def _matches(pattern: str, event_type: str) -> bool:
    if pattern == "*":
        return True
    if pattern.endswith(".*"):
        return event_type.startswith(pattern[:-1])
    return pattern == event_type
