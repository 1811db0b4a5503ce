"""``WebhookHandler``: verify, de-duplicate and dispatch one sender's deliveries.

Theory of operation, for each delivery:

1. :meth:`~WebhookHandler.verify` bounds the body, authenticates the raw bytes, and
   only then parses them into a :class:`~hookshield.Delivery` of typed events.
2. :meth:`~WebhookHandler.accept` claims the delivery's key (and, for batch senders,
   each event's) in the de-duplication store; a delivery already claimed is a
   duplicate, acknowledged with 200 and not dispatched again.
3. :meth:`~WebhookHandler.finish` runs the routes of each new event.  If a handler
   raises, the error hooks run, the claims of the events not yet handled are released,
   and the outcome is a 500 so that the sender retries them.

:meth:`~WebhookHandler.handle` is 2 and 3 in one call.  Adapters that acknowledge
first and work afterwards (``background=True``) call them apart.
"""

from __future__ import annotations

import asyncio
import difflib
import hashlib
import inspect
import json
import logging
import warnings
from collections.abc import Awaitable, Callable, Collection, Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Final, TypeVar, cast

from ._auth import HmacSha256Key, SecretLike, digest_secrets, normalize_secrets
from ._dedupe import DEFAULT_TTL, DedupeStore, MemoryDedupeStore
from ._errors import BodyTooLarge, WebhookError
from ._events import Delivery, Event
from ._headers import Headers, HeadersLike
from ._threads import run_in_thread
from .providers import Credentials, get_provider

__all__ = ["DEFAULT_MAX_BODY_SIZE", "ErrorHook", "Outcome", "Route", "WebhookHandler"]

logger = logging.getLogger("hookshield")

#: Bodies up to this size are verified on the event loop by accept_async (about 100 us
#: of work); larger ones in a thread.
_INLINE_BODY_LIMIT: Final = 64 * 1024

#: 25 MiB: a Momentum batch of 10,000 records is several MB.
DEFAULT_MAX_BODY_SIZE: Final = 25 * 1024 * 1024

Route = Callable[[Event], Awaitable[None] | Any | None]
ErrorHook = Callable[[Exception, Event], Awaitable[None] | Any | None]
R = TypeVar("R", bound=Route)
H = TypeVar("H", bound=ErrorHook)


class _Default:
    """The type of the default for ``dedupe=``: a new in-memory store per handler."""


_DEFAULT: Final = _Default()
BasicAuth = tuple[str, str] | Sequence[tuple[str, str]]
#: The raw request body; bytearray and memoryview are copied to bytes.
Body = bytes | bytearray | memoryview


@dataclass(frozen=True, slots=True, init=False)
class Outcome:
    """What became of one delivery, and what to answer the sender.

    ``status`` is the HTTP status: 200 for a dispatched, duplicate, unhandled or empty
    delivery; the error's status for a rejected one; 500 when a handler raised, so
    that the sender retries.  ``reason`` is a short explanation for logs.
    """

    status: int
    reason: str
    delivery: Delivery | None = None
    error: Exception | None = None
    duplicate: bool = False
    #: How many handler calls ran.
    dispatched: int = 0
    #: Events accepted but not yet dispatched (see :meth:`WebhookHandler.accept`).
    pending: tuple[Event, ...] = field(default=(), repr=False)
    # The de-duplication keys of the delivery and of each pending event, to release
    # when a handler fails.
    _delivery_key: str | None = field(default=None, repr=False)
    _event_keys: tuple[str | None, ...] = field(default=(), repr=False)

    def __init__(
        self,
        status: int,
        reason: str,
        delivery: Delivery | None = None,
        error: Exception | None = None,
        duplicate: bool = False,
        dispatched: int = 0,
        pending: tuple[Event, ...] = (),
        _delivery_key: str | None = None,
        _event_keys: tuple[str | None, ...] = (),
    ) -> None:
        # The frozen dataclass __init__ sets each field through object.__setattr__;
        # the slots' own setters build the same frozen object in half the time, and
        # every delivery makes two of these.
        _set_status(self, status)
        _set_reason(self, reason)
        _set_delivery(self, delivery)
        _set_error(self, error)
        _set_duplicate(self, duplicate)
        _set_dispatched(self, dispatched)
        _set_pending(self, pending)
        _set_delivery_key(self, _delivery_key)
        _set_event_keys(self, _event_keys)

    @property
    def ok(self) -> bool:
        """Whether the sender gets a 2xx answer."""
        return 200 <= self.status < 300

    def response_body(self) -> bytes:
        """A small JSON body for the HTTP answer: never a secret, signature or traceback."""
        if self.ok:
            return b'{"ok":true}'
        if self.status >= 500:
            return b'{"error":"the delivery could not be processed; please retry"}'
        return json.dumps({"error": self.reason}).encode("utf-8")


def _outcome_setter(name: str) -> Callable[[Outcome, Any], None]:
    setter: Callable[[Outcome, Any], None] = Outcome.__dict__[name].__set__
    return setter


_set_status = _outcome_setter("status")
_set_reason = _outcome_setter("reason")
_set_delivery = _outcome_setter("delivery")
_set_error = _outcome_setter("error")
_set_duplicate = _outcome_setter("duplicate")
_set_dispatched = _outcome_setter("dispatched")
_set_pending = _outcome_setter("pending")
_set_delivery_key = _outcome_setter("_delivery_key")
_set_event_keys = _outcome_setter("_event_keys")


class WebhookHandler:
    """Receives one sender's webhooks: verifies, de-duplicates and routes them.

    ``provider`` is ``"moonsense"``, ``"petal"``, ``"moco"``, ``"mindpeeker"`` or
    ``"momentum"``.  Credentials, each one value or a sequence of them for key rotation:

    * ``secret``: the HMAC key of a signing sender (Moonsense, MOCO, MindPeeker);
    * ``token`` (with ``token_header`` for Petal): a shared token in a header;
    * ``basic_auth=(user, password)`` and ``bearer_token``: an ``Authorization`` header.

    A handler with no credential is refused unless ``allow_unsigned=True``, and only
    for senders that can deliver unsigned.  ``dedupe`` is the de-duplication store
    (in memory by default; ``None`` turns de-duplication off), ``dedupe_ttl`` how long
    a key is kept, and ``max_body_size`` the largest body accepted, in bytes.

    For batch senders (Momentum), :meth:`handle` decodes and dispatches the records
    one at a time (see :meth:`iter_events`): a 10,000-record batch then needs about
    its body's size in memory rather than four to five times it, and is handled
    faster.  A malformed record part-way is found only after the records before it
    were dispatched (they keep their claims, so the retry skips them), and the
    outcome's ``delivery`` carries no events.  ``stream_batches=False`` decodes the
    whole batch before dispatching any of it.
    """

    def __init__(
        self,
        provider: str,
        *,
        secret: SecretLike | None = None,
        token: SecretLike | None = None,
        token_header: str | None = None,
        basic_auth: BasicAuth | None = None,
        bearer_token: SecretLike | None = None,
        allow_unsigned: bool = False,
        max_body_size: int = DEFAULT_MAX_BODY_SIZE,
        dedupe: DedupeStore | _Default | None = _DEFAULT,
        dedupe_ttl: float = DEFAULT_TTL,
        sync_handlers_in_thread: bool = True,
        stream_batches: bool = True,
    ) -> None:
        self._provider = get_provider(provider)
        sender = self._provider
        given = {
            "secret": secret,
            "token": token,
            "basic_auth": basic_auth,
            "bearer_token": bearer_token,
        }
        for option, value in given.items():
            if value is not None and option not in sender.accepts:
                can = " or ".join(f"{o}=" for o in sorted(sender.accepts))
                raise ValueError(f"{sender.title} deliveries cannot carry {option}=; pass {can}")
        if token_header is not None and token is None:
            raise ValueError("token_header= names where the token travels; pass token= too")
        self._credentials = Credentials(
            hmac_keys=tuple(HmacSha256Key(key) for key in normalize_secrets(secret, name="secret")),
            tokens=digest_secrets(normalize_secrets(token, name="token")),
            token_header=token_header,
            basic=digest_secrets(_basic_pairs(basic_auth)),
            bearer=digest_secrets(normalize_secrets(bearer_token, name="bearer_token")),
        )
        self.unsigned = self._credentials.empty
        if self.unsigned:
            if not sender.can_be_unsigned:
                raise ValueError(
                    f"{sender.title} signs every delivery: pass secret= (the signing secret "
                    f"from {sender.title}'s webhook settings)"
                )
            if not allow_unsigned:
                can = " or ".join(f"{o}=" for o in sorted(sender.accepts))
                raise ValueError(
                    f"a {sender.title} handler needs a credential: pass {can}, or "
                    "allow_unsigned=True to accept deliveries anyone could forge "
                    "(then restrict the endpoint, for example by IP address)"
                )
            logger.warning(
                "hookshield: %s handler accepts unsigned deliveries (allow_unsigned=True); "
                "anyone who can reach the endpoint can forge them",
                sender.title,
            )
        if max_body_size < 1:
            raise ValueError("max_body_size must be a positive number of bytes")
        if dedupe_ttl <= 0:
            raise ValueError("dedupe_ttl must be a positive number of seconds")
        self.max_body_size = max_body_size
        self.dedupe: DedupeStore | None = (
            MemoryDedupeStore() if isinstance(dedupe, _Default) else dedupe
        )
        if self.dedupe is not None and not isinstance(self.dedupe, DedupeStore):
            raise TypeError("dedupe must have claim(key, ttl) and release(key) methods, or be None")
        self.dedupe_ttl = dedupe_ttl
        self.sync_handlers_in_thread = sync_handlers_in_thread
        self.stream_batches = stream_batches
        self._routes: list[tuple[str, Route]] = []
        self._error_hooks: list[ErrorHook] = []
        self._resolved: dict[str, tuple[Route, ...]] = {}
        # The ids of the routes and error hooks that are ``async def``, found once at
        # registration rather than by inspect on every delivery (about 0.5 us a look).
        self._coroutines: set[int] = set()

    # -- configuration -------------------------------------------------------------

    @property
    def provider(self) -> str:
        """The sender's name, as given to the constructor."""
        return self._provider.name

    @property
    def event_types(self) -> tuple[str, ...]:
        """The sender's documented event types."""
        return self._provider.event_types

    def on(self, *event_types: str) -> Callable[[R], R]:
        """Register the decorated function for events of these types.

        A type is a name (``"session.completed"``), a prefix wildcard
        (``"session.*"``), or ``"*"`` for every event.  The function takes the
        :class:`~hookshield.Event`; it may be ``async def``.
        """
        if not event_types:
            raise TypeError("on() needs at least one event type, for example on('*')")
        for name in event_types:
            self._check_pattern(name)

        def register(func: R) -> R:
            if not callable(func):
                raise TypeError(f"on() decorates a function, not {func!r}")
            for name in event_types:
                self._routes.append((name, func))
            if inspect.iscoroutinefunction(func):
                self._coroutines.add(id(func))  # _routes keeps func, and so its id, alive
            self._resolved.clear()
            return func

        return register

    def on_error(self, hook: H) -> H:
        """Register ``hook(error, event)``, called when a handler raises (plain or async)."""
        if not callable(hook):
            raise TypeError(f"on_error() decorates a function, not {hook!r}")
        self._error_hooks.append(hook)
        if inspect.iscoroutinefunction(hook):
            self._coroutines.add(id(hook))
        return hook

    def routes_for(self, event_type: str) -> tuple[Route, ...]:
        """The functions an event of ``event_type`` is dispatched to, in order."""
        routes = self._resolved.get(event_type)
        if routes is None:
            routes = tuple(func for pattern, func in self._routes if _matches(pattern, event_type))
            # Sender-chosen names: bound the cache in entries and in bytes.
            if len(self._resolved) < 4096 and len(event_type) <= _MAX_KEY_TEXT:
                self._resolved[event_type] = routes
        return routes

    def _check_pattern(self, name: str) -> None:
        if not isinstance(name, str) or not name:
            raise TypeError(f"an event type is a non-empty string, not {name!r}")
        if "*" in name and not (name == "*" or (name.endswith(".*") and name.count("*") == 1)):
            raise ValueError(f"{name!r}: a wildcard is '*' or a prefix like 'session.*'")
        known = self._provider.event_types
        if "*" not in name and name not in known:
            close = difflib.get_close_matches(name, known, n=1, cutoff=0.8)
            if close:
                warnings.warn(
                    f"{self._provider.title} documents no event {name!r}; "
                    f"did you mean {close[0]!r}?",
                    stacklevel=3,
                )

    # -- receiving ---------------------------------------------------------------

    def authenticate(self, body: Body, headers: HeadersLike) -> None:
        """Check only the size and credentials of a delivery; raise a WebhookError if bad."""
        body = _as_bytes(body)
        self._check_size(body)
        self._provider.authenticate(body, _as_headers(headers), self._credentials)

    def verify(self, body: Body, headers: HeadersLike) -> Delivery:
        """Authenticate ``body`` (the raw request body) and parse it into a Delivery.

        Raises a :class:`~hookshield.WebhookError` subclass, whose ``status`` is the
        HTTP status to answer, if the delivery must be rejected.
        """
        if type(body) is not bytes:
            body = _as_bytes(body)
        if len(body) > self.max_body_size:
            self._check_size(body)
        if type(headers) is not Headers:
            headers = Headers(headers)
        provider = self._provider
        return provider.parse(
            body, headers, provider.authenticate(body, headers, self._credentials)
        )

    def iter_events(self, body: Body, headers: HeadersLike) -> Iterator[Event]:
        """Verify a delivery, and return its events to be read one at a time.

        The size and credentials (and content type) are checked before this returns,
        raising a :class:`~hookshield.WebhookError` as :meth:`verify` does.  A batch
        (Momentum) is then decoded record by record as the iteration goes, so a
        loop that lets each event go needs about the body's size in memory even for
        10,000 records; a malformed record raises :class:`~hookshield.MalformedPayload`
        when the iteration reaches it, after the records before it.  Use
        :meth:`verify` to have the whole body checked before acting on any of it.
        No de-duplication happens here.
        """
        return self._open(body, headers)[3]

    def _open(
        self, body: Body, headers: HeadersLike
    ) -> tuple[bytes, Headers, str, Iterator[Event]]:
        if type(body) is not bytes:
            body = _as_bytes(body)
        self._check_size(body)
        if type(headers) is not Headers:
            headers = Headers(headers)
        provider = self._provider
        signature = provider.authenticate(body, headers, self._credentials)
        delivery_id, events = provider.stream(body, headers, signature)
        return body, headers, delivery_id, events

    def accept(self, body: Body, headers: HeadersLike) -> Outcome:
        """Verify and de-duplicate, without dispatching; never raises a WebhookError.

        A 200 outcome's ``pending`` events are to be passed to :meth:`finish` (or
        :meth:`finish_async`), which dispatches them.
        """
        try:
            delivery = self.verify(body, headers)
        except WebhookError as exc:
            return self._rejected(exc)
        return self._claim(delivery)

    def finish(self, outcome: Outcome) -> Outcome:
        """Dispatch an accepted outcome's pending events; a handler failure gives 500."""
        if not outcome.pending:
            return outcome
        calls = 0
        for index, event in enumerate(outcome.pending):
            for route in self.routes_for(event.type):
                try:
                    _run_sync(route(event))
                except Exception as exc:
                    self._call_error_hooks_sync(exc, event)
                    return self._failed(outcome, index, exc, calls)
                calls += 1
        return self._finished(outcome, calls)

    async def finish_async(self, outcome: Outcome) -> Outcome:
        """Like :meth:`finish`, awaiting async handlers; plain ones run in a thread.

        The threads are hookshield's own (as many as the default executor's), and a
        plain route runs in the caller's context, with its context variables.

        When every route and error hook involved is plain, the whole delivery is
        dispatched in one worker thread rather than hopping to a thread per call
        (a 10,000-event batch would otherwise make 10,000 hops).
        """
        pending = outcome.pending
        if not pending:
            return outcome
        # One event, the usual delivery: its routes as they are, without building a set.
        routes = (
            self.routes_for(pending[0].type)
            if len(pending) == 1
            else {route for event in pending for route in self.routes_for(event.type)}
        )
        if not routes:
            return self._finished(outcome, 0)
        coroutines = self._coroutines
        if self.sync_handlers_in_thread and (
            not coroutines
            or (  # isdisjoint over map: no generator frame per delivery
                coroutines.isdisjoint(map(id, routes))
                and coroutines.isdisjoint(map(id, self._error_hooks))
            )
        ):
            return await run_in_thread(self.finish, outcome)
        calls = 0
        for index, event in enumerate(pending):
            for route in self.routes_for(event.type):
                try:
                    # An async route is awaited here rather than through _call_async:
                    # under a server, each coroutine layer per delivery costs more
                    # than the dispatch itself.
                    if id(route) in coroutines:
                        await cast("Awaitable[None]", route(event))
                    else:
                        await self._call_async(route, event)
                except Exception as exc:
                    await self._call_error_hooks_async(exc, event)
                    return self._failed(outcome, index, exc, calls)
                calls += 1
        return self._finished(outcome, calls)

    def handle(self, body: Body, headers: HeadersLike) -> Outcome:
        """Verify, de-duplicate and dispatch one delivery; never raises a WebhookError.

        A batch's records are dispatched as they are decoded, and the outcome's
        ``delivery`` carries no events, unless ``stream_batches=False``.
        """
        if self.stream_batches and self._provider.dedupe_events:
            return self._handle_streamed(body, headers)
        return self.finish(self.accept(body, headers))

    def _handle_streamed(self, body: Body, headers: HeadersLike) -> Outcome:
        try:
            raw, parsed, delivery_id, events = self._open(body, headers)
        except WebhookError as exc:
            return self._rejected(exc)
        delivery = Delivery(
            provider=self.provider, id=delivery_id, events=(), headers=parsed, body=raw
        )
        store = self.dedupe
        prefix = self.provider + ":"
        delivery_key = None
        if store is not None:
            delivery_key = prefix + _bounded(delivery_id)
            if not store.claim(delivery_key, self.dedupe_ttl):
                logger.info("hookshield: duplicate %s delivery %s", self.provider, delivery_id)
                return Outcome(
                    status=200, reason="duplicate delivery", delivery=delivery, duplicate=True
                )
        calls = seen = fresh = 0
        # The types nothing handled, for the reason given when nothing ran: shown cut
        # to 64 characters, told apart by their bounded key; at most 256 of them.
        unrouted: dict[str, str] = {}
        event_prefix, ttl = prefix + "event:", self.dedupe_ttl
        try:
            for event in events:
                seen += 1
                key = None
                if store is not None and event.id is not None:
                    key = event_prefix + _bounded(event.id)
                    if not store.claim(key, ttl):
                        continue
                fresh += 1
                routes = self.routes_for(event.type)
                if not routes and len(unrouted) < 256:
                    unrouted[_bounded(event.type)] = event.type[:64]
                for route in routes:
                    try:
                        _run_sync(route(event))
                    except Exception as exc:
                        self._call_error_hooks_sync(exc, event)
                        # As in finish(): records handled so far keep their claims;
                        # this one and the batch are released for the retry, and the
                        # records after it were never claimed.
                        claimed = Outcome(
                            status=200,
                            reason="accepted",
                            delivery=delivery,
                            pending=(event,),
                            _delivery_key=delivery_key,
                            _event_keys=(key,),
                        )
                        return self._failed(claimed, 0, exc, calls)
                    calls += 1
        except WebhookError as exc:
            # A malformed record part-way: the batch is refused, and its retry skips
            # the records dispatched before this one by their claims.
            if delivery_key is not None and store is not None:
                store.release(delivery_key)
            rejected = self._rejected(exc)
            return replace(rejected, delivery=delivery, dispatched=calls)
        if not fresh:
            # As finish() answers a batch with no events (Momentum's validation post).
            reason, duplicate = ("duplicate events", True) if seen else ("accepted", False)
            return Outcome(status=200, reason=reason, delivery=delivery, duplicate=duplicate)
        return self._done(delivery, calls, list(unrouted.values()))

    async def accept_async(self, body: Body, headers: HeadersLike) -> Outcome:
        """:meth:`accept` for async code, keeping the event loop free.

        A large body (whose HMAC and parse take milliseconds) or a de-duplication
        store other than the in-memory one (a Redis or SQL client blocks) is
        verified in a worker thread; a small one on the loop, where a thread hop
        would cost more than the work.
        """
        if self._accepts_inline(body):
            return self.accept(body, headers)
        return await run_in_thread(self.accept, body, headers)

    def _accepts_inline(self, body: Body) -> bool:
        # A small body with the in-memory store (or none): the thread hop would cost
        # more than the work.
        return len(body) <= _INLINE_BODY_LIMIT and isinstance(
            self.dedupe, (MemoryDedupeStore, type(None))
        )

    async def handle_async(self, body: Body, headers: HeadersLike) -> Outcome:
        """:meth:`handle` for async code: async handlers are awaited on the running loop.

        A batch whose routes and error hooks are all plain functions is streamed as
        :meth:`handle` streams it, in one worker thread, where they would run anyway.
        """
        if (
            self.stream_batches
            and self._provider.dedupe_events
            and self.sync_handlers_in_thread
            and not self._coroutines
        ):
            return await run_in_thread(self._handle_streamed, body, headers)
        # accept_async, written out for the same reason as the await in finish_async.
        if self._accepts_inline(body):
            return await self.finish_async(self.accept(body, headers))
        return await self.finish_async(await run_in_thread(self.accept, body, headers))

    def release(self, outcome: Outcome) -> None:
        """Forget an accepted outcome's de-duplication claims.

        For code that handles an accepted delivery itself (a framework view given the
        :class:`~hookshield.Delivery`) and fails: the sender's retry is then processed
        rather than taken for a duplicate.  :meth:`finish` does this on its own.
        """
        self._release(outcome, 0)

    def dispatch(self, delivery: Delivery) -> int:
        """Run the routes of every event of a verified delivery; return the calls made.

        No de-duplication happens here.  A handler's exception propagates after the
        error hooks have run.
        """
        outcome = self.finish(_pending(delivery))
        if outcome.error is not None:
            raise outcome.error
        return outcome.dispatched

    async def dispatch_async(self, delivery: Delivery) -> int:
        """:meth:`dispatch` for async code."""
        outcome = await self.finish_async(_pending(delivery))
        if outcome.error is not None:
            raise outcome.error
        return outcome.dispatched

    # -- internals ---------------------------------------------------------------

    def _check_size(self, body: bytes) -> None:
        if len(body) > self.max_body_size:
            raise BodyTooLarge(
                f"the body is {len(body)} bytes; this handler accepts at most "
                f"{self.max_body_size} (max_body_size)"
            )

    def _claim(self, delivery: Delivery) -> Outcome:
        store = self.dedupe
        if store is None:
            return Outcome(
                status=200, reason="accepted", delivery=delivery, pending=delivery.events
            )
        prefix = self.provider + ":"
        delivery_key = prefix + _bounded(delivery.id)
        if not store.claim(delivery_key, self.dedupe_ttl):
            logger.info("hookshield: duplicate %s delivery %s", self.provider, delivery.id)
            return Outcome(
                status=200, reason="duplicate delivery", delivery=delivery, duplicate=True
            )
        events = delivery.events
        if not self._provider.dedupe_events:
            return Outcome(
                status=200,
                reason="accepted",
                delivery=delivery,
                pending=events,
                _delivery_key=delivery_key,
            )
        pending: list[Event] = []
        keys: list[str | None] = []
        event_prefix = prefix + "event:"
        ttl = self.dedupe_ttl
        for event in events:
            if event.id is None:
                pending.append(event)
                keys.append(None)
                continue
            key = event_prefix + _bounded(event.id)
            if store.claim(key, ttl):
                pending.append(event)
                keys.append(key)
        duplicate = bool(events) and not pending
        return Outcome(
            status=200,
            reason="duplicate events" if duplicate else "accepted",
            delivery=delivery,
            duplicate=duplicate,
            pending=tuple(pending),
            _delivery_key=delivery_key,
            _event_keys=tuple(keys),
        )

    def _failed(self, outcome: Outcome, index: int, exc: Exception, calls: int) -> Outcome:
        # Release what the retry must process: the delivery itself, and the failed
        # event with every one after it.  Events already handled keep their claims,
        # so a retried batch does not run them twice.
        self._release(outcome, index)
        logger.error(
            "hookshield: a %s handler raised %s on %s event; answering 500 so the sender retries",
            self.provider,
            type(exc).__name__,
            outcome.pending[index].type,
            exc_info=exc,
        )
        return Outcome(
            status=500,
            reason=f"a handler raised {type(exc).__name__}",
            delivery=outcome.delivery,
            error=exc,
            dispatched=calls,
        )

    def _release(self, outcome: Outcome, first_event: int) -> None:
        store = self.dedupe
        if store is None:
            return
        if outcome._delivery_key is not None:
            store.release(outcome._delivery_key)
        for key in outcome._event_keys[first_event:]:
            if key is not None:
                store.release(key)

    def _finished(self, outcome: Outcome, calls: int) -> Outcome:
        # The types of the events are only told when no route took any of them.
        kinds = () if calls else {event.type for event in outcome.pending}
        return self._done(outcome.delivery, calls, kinds)

    def _done(self, delivery: Delivery | None, calls: int, kinds: Collection[str]) -> Outcome:
        # kinds: the distinct types of the events that no route took.
        if calls == 1:
            reason = "dispatched to 1 handler call"  # the usual case, without formatting
        elif calls:
            reason = f"dispatched to {calls} handler calls"
        else:
            names = sorted(kinds)
            more = f" and {len(names) - 5} more" if len(names) > 5 else ""
            reason = "no handler for " + ", ".join(repr(k[:64]) for k in names[:5]) + more
        return Outcome(status=200, reason=reason, delivery=delivery, dispatched=calls)

    def _rejected(self, exc: WebhookError) -> Outcome:
        logger.info("hookshield: %s delivery rejected (%d): %s", self.provider, exc.status, exc)
        return Outcome(status=exc.status, reason=str(exc), error=exc)

    async def _call_async(self, func: Callable[..., Any], *args: Any) -> None:
        # func is a registered route or error hook.
        if id(func) in self._coroutines:
            await func(*args)
            return
        if self.sync_handlers_in_thread:
            result = await run_in_thread(func, *args)
        else:
            result = func(*args)
        if inspect.isawaitable(result):
            await result

    def _call_error_hooks_sync(self, exc: Exception, event: Event) -> None:
        for hook in self._error_hooks:
            try:
                _run_sync(hook(exc, event))
            except Exception:
                logger.exception("hookshield: an on_error hook raised")

    async def _call_error_hooks_async(self, exc: Exception, event: Event) -> None:
        for hook in self._error_hooks:
            try:
                await self._call_async(hook, exc, event)
            except Exception:
                logger.exception("hookshield: an on_error hook raised")

    def __repr__(self) -> str:
        creds = self._credentials
        parts = [repr(self.provider)]
        if self.unsigned:
            parts.append("UNSIGNED (allow_unsigned=True)")
        for label, values in (
            ("secrets", creds.hmac_keys),
            ("tokens", creds.tokens),
            ("basic_auth", creds.basic),
            ("bearer_tokens", creds.bearer),
        ):
            if values:
                parts.append(f"{label}={len(values)}")
        parts.append(f"dedupe={self.dedupe!r}")
        return f"WebhookHandler({', '.join(parts)})"


#: Sender-chosen text longer than this is hashed before it is kept as a store key,
#: and not cached as a route name: the stores bound their entries, this their size.
_MAX_KEY_TEXT: Final = 128


def _bounded(ident: str) -> str:
    """``ident``, or its SHA-256 when it is too long to keep as a key."""
    if len(ident) <= _MAX_KEY_TEXT:
        return ident
    return "sha256:" + hashlib.sha256(ident.encode("utf-8", "surrogatepass")).hexdigest()


def _matches(pattern: str, event_type: str) -> bool:
    if pattern == "*":
        return True
    if pattern.endswith(".*"):
        return event_type.startswith(pattern[:-1])
    return pattern == event_type


def _pending(delivery: Delivery) -> Outcome:
    return Outcome(status=200, reason="accepted", delivery=delivery, pending=delivery.events)


def _run_sync(result: Any) -> None:
    """Finish an awaitable a plain-code caller got from an ``async def`` handler."""
    # Most handlers return None: answer that before the costlier awaitable check.
    if result is None or not inspect.isawaitable(result):
        return
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        asyncio.run(_await(result))
        return
    close = getattr(result, "close", None)
    if close is not None:
        close()  # do not leave a never-awaited coroutine behind
    raise TypeError(
        "an async handler was called from handle()/dispatch() inside a running event "
        "loop; use handle_async()/dispatch_async() there"
    )


async def _await(awaitable: Awaitable[Any]) -> None:
    await awaitable


def _as_bytes(body: Any) -> bytes:
    if isinstance(body, bytes):
        return body
    if isinstance(body, (bytearray, memoryview)):
        return bytes(body)
    raise TypeError(
        f"the body must be the raw request body as bytes, not {type(body).__name__}: "
        "a signature covers the exact bytes the sender sent"
    )


def _as_headers(headers: HeadersLike) -> Headers:
    return headers if isinstance(headers, Headers) else Headers(headers)


def _basic_pairs(value: BasicAuth | None) -> tuple[bytes, ...]:
    if value is None:
        return ()
    if isinstance(value, tuple) and len(value) == 2 and all(isinstance(v, str) for v in value):
        pairs: Sequence[tuple[str, str]] = [value]  # type: ignore[list-item]
    else:
        pairs = value  # type: ignore[assignment]
    if not pairs:
        raise ValueError("basic_auth is an empty sequence: pass (user, password)")
    result = []
    for pair in pairs:
        if not (
            isinstance(pair, tuple) and len(pair) == 2 and all(isinstance(v, str) for v in pair)
        ):
            raise TypeError(f"basic_auth takes (user, password) string pairs, not {pair!r}")
        user, password = pair
        if ":" in user or not password:
            raise ValueError(
                "a Basic user name cannot contain ':' and the password cannot be empty"
            )
        result.append(f"{user}:{password}".encode())
    return tuple(result)
