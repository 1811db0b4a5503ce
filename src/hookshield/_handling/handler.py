"""``WebhookHandler``: one sender's deliveries, verified, de-duplicated and dispatched.

Theory of operation: the handler is a narrow facade over four pieces, each in a
module of its own, and the words of ``_handling/dispatch.py``'s docstring (verify, claim,
dispatch, complete, release; accept, finish, handle) mean the same here:

* ``_core/credentials.py`` prepares the credentials and refuses a misconfiguration;
* ``_core/verify.py`` bounds, authenticates and parses the raw bytes, purely;
* ``_handling/routing.py`` holds the routes and error hooks;
* ``_handling/dispatch.py`` claims and dispatches, with the store of ``_handling/dedupe.py``, and
  gives the :class:`~hookshield.Accepted` delivery that ``accept`` returns.

The pieces are private.  hookshield's own modules that need one (the worker, the
inbox, the command line, the adapters) get it through :func:`verifier_of` and
:func:`dispatcher_of`.  The async entry points decide what runs on the event loop and
what in a thread, and run the same loop as the plain ones with ``_async.LoopRunner``,
which the dispatcher makes on first async use; ``_handling/asynchronous.py`` knows nothing of this
facade.  A sender's module is loaded when the first handler for it is made, and
``_core/peers.py`` (:mod:`ipaddress`) only for a handler with ``allowed_ips``.
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any, Final

from .._core.credentials import prepare_credentials
from .._core.errors import WebhookError
from .._core.events import Delivery, Event
from .._core.options import flag, integer, text
from .._core.verify import Verifier, as_bytes
from .._stores.common import seconds
from .dedupe import DEFAULT_LEASE, AsyncDedupeStore, DedupeStore, MemoryDedupeStore, adapt_store
from .dispatch import INLINE_BODY_LIMIT, Accepted, Dispatcher
from .outcome import Outcome
from .routing import H, R, Router
from .runner import PLAIN, run

if TYPE_CHECKING:
    from .._core.auth import SecretLike
    from .._core.credentials import BasicAuth
    from .._core.headers import HeadersLike
    from .._core.peers import AddressesLike, PeerPolicy
    from .._core.verify import Body
    from ..providers import ProviderLike

__all__ = ["DEFAULT_MAX_BODY_SIZE", "WebhookHandler", "dispatcher_of", "verifier_of"]

#: 25 MiB: the largest of the senders' own defaults (a 10,000-record Momentum batch,
#: GitHub's 25 MB cap), and the one every sender had before each got its own
#: (``Provider.default_max_body_size``, ``HmacSender(max_body_size=...)``).
DEFAULT_MAX_BODY_SIZE: Final = 25 * 1024 * 1024


class _Default:
    """The type of the default for ``dedupe=``: a new in-memory store per handler."""


_DEFAULT: Final = _Default()


class WebhookHandler:
    """Receives one sender's webhooks: verifies, de-duplicates and routes them.

    ``provider`` is ``"moonsense"``, ``"petal"``, ``"moco"``, ``"mindpeeker"``,
    ``"momentum"``, ``"github"``, ``"standard-webhooks"`` or ``"svix"``, or a
    :class:`~hookshield.HmacSender` describing any other sender that signs with HMAC.
    Credentials, each one value or a sequence of them for key rotation:

    * ``secret``: the HMAC key of a signing sender (Moonsense, MOCO, MindPeeker);
    * ``public_key``: an ed25519 public key, ``whpk_<base64>``, for Standard
      Webhooks' ``v1a`` signatures (Standard Webhooks, Svix; ``hookshield[ed25519]``);
    * ``token`` (with ``token_header`` for Petal): a shared token in a header;
    * ``basic_auth=(user, password)`` and ``bearer_token``: an ``Authorization`` header.

    A handler with no credential is refused unless ``allow_unsigned=True``, and only
    for senders that can deliver unsigned.  ``tolerance`` (seconds) is how far a
    signed timestamp may be from now, either way, for a sender that signs one
    (Standard Webhooks, Svix, a described sender with a ``timestamp_header``); the
    sender's own window (five minutes) by default.

    ``dedupe`` is the de-duplication store: in this process's memory by default, a
    shared one (:class:`~hookshield.SQLiteDedupeStore`, ``RedisDedupeStore``) behind
    several workers, ``None`` for none.  ``dedupe_ttl`` is how long a handled delivery
    is remembered (by default the sender's retry window with margin), and
    ``dedupe_lease`` how long an attempt in progress holds it before a retry may run
    it (the process may have died).  ``max_body_size`` is the largest body accepted,
    by default the sender's own (1 MiB for MOCO, MindPeeker and Standard Webhooks,
    25 MiB for Momentum and GitHub; see each sender's page).

    A batch (Momentum) is dispatched record by record as it is decoded, needing about
    its body's size in memory; a malformed record part-way is found after the records
    before it ran (they keep their claims, so the retry skips them), and the outcome's
    ``delivery`` carries no events.  ``stream_batches=False`` decodes the whole batch
    before dispatching any of it.  Under asyncio a plain route runs in a worker
    thread; ``sync_handlers_in_thread=False`` runs every plain route on the loop.

    ``allowed_ips`` (addresses and ranges, IPv4 or IPv6) restricts where deliveries
    may come from: the adapters answer 403 to any other before reading the body.
    ``trusted_proxies`` names the proxies in front of the app whose
    ``X-Forwarded-For`` or ``Forwarded`` header is believed; none by default.  The
    adapters also refuse, before reading the body, a delivery without its signature
    or with a wrong header credential (:meth:`check_headers`).  Code that calls
    :meth:`handle` (or :meth:`verify`, :meth:`accept`) itself calls :meth:`check_peer`
    and :meth:`check_headers` first, before it reads the body.
    """

    def __init__(
        self,
        provider: ProviderLike,
        *,
        secret: SecretLike | None = None,
        token: SecretLike | None = None,
        token_header: str | None = None,
        basic_auth: BasicAuth | None = None,
        bearer_token: SecretLike | None = None,
        allow_unsigned: bool = False,
        max_body_size: int | None = None,
        dedupe: DedupeStore | AsyncDedupeStore | _Default | None = _DEFAULT,
        dedupe_ttl: float | None = None,
        dedupe_lease: float = DEFAULT_LEASE,
        sync_handlers_in_thread: bool = True,
        stream_batches: bool = True,
        allowed_ips: AddressesLike | None = None,
        trusted_proxies: AddressesLike | None = None,
        public_key: SecretLike | None = None,
        tolerance: float | None = None,
    ) -> None:
        from ..providers import get_provider  # the registry loads the sender's module

        # The options that only need a type and a value come first, then the ones
        # checked against the sender, and the credentials last: a wrong type is named
        # before a missing secret could hide it.
        if max_body_size is not None:
            max_body_size = integer("max_body_size", max_body_size, "bytes")
            if max_body_size < 1:
                raise ValueError("max_body_size must be a positive number of bytes")
        lease = seconds("dedupe_lease", dedupe_lease)
        for option, value in (
            ("allow_unsigned", allow_unsigned),
            ("sync_handlers_in_thread", sync_handlers_in_thread),
            ("stream_batches", stream_batches),
        ):
            flag(option, value)
        if token_header is not None:
            text("token_header", token_header, "a header name (str)")
        sender = get_provider(provider)
        if max_body_size is None:
            max_body_size = sender.default_max_body_size
        ttl = sender.default_dedupe_ttl if dedupe_ttl is None else seconds("dedupe_ttl", dedupe_ttl)
        peers: PeerPolicy | None = None
        if allowed_ips is not None or trusted_proxies is not None:
            from .._core.peers import PeerPolicy  # ipaddress, only for an allow-list

            peers = PeerPolicy.build(allowed_ips, trusted_proxies)
        store = MemoryDedupeStore() if isinstance(dedupe, _Default) else dedupe
        if store is not None:
            store = adapt_store(store, ttl)
        credentials = prepare_credentials(
            sender,
            secret=secret,
            token=token,
            token_header=token_header,
            basic_auth=basic_auth,
            bearer_token=bearer_token,
            allow_unsigned=allow_unsigned,
            public_key=public_key,
            tolerance=tolerance,
        )
        self._peers = peers
        self._streams = stream_batches and sender.sends_batches
        self._verifier = Verifier(sender, credentials, max_body_size)
        self._router = Router(sender.title, sender.event_types)
        self._dispatcher = Dispatcher(
            sender, self._router, store, lease, ttl, threads=sync_handlers_in_thread
        )

    # -- configuration -------------------------------------------------------------
    # Read-only: the verifier and the dispatcher hold them, and a value set on the
    # handler afterwards would silently not reach them.

    @property
    def provider(self) -> str:
        """The sender's name, as given to the constructor."""
        return self._verifier.sender.name

    @property
    def event_types(self) -> tuple[str, ...]:
        """The sender's documented event types."""
        return self._verifier.sender.event_types

    @property
    def max_body_size(self) -> int:
        """The largest body accepted, in bytes."""
        return self._verifier.max_body_size

    @property
    def dedupe(self) -> DedupeStore | AsyncDedupeStore | None:
        """The de-duplication store, or ``None``."""
        return self._dispatcher.store

    @property
    def dedupe_ttl(self) -> float:
        """How long a handled delivery is remembered, in seconds."""
        return self._dispatcher.ttl

    @property
    def dedupe_lease(self) -> float:
        """How long an attempt in progress holds its delivery, in seconds."""
        return self._dispatcher.lease

    # -- routes ----------------------------------------------------------------------

    def on(self, *event_types: str, inline: bool = False) -> Callable[[R], R]:
        """Register the decorated function for events of these types.

        A type is a name (``"session.completed"``), a prefix wildcard
        (``"session.*"``), or ``"*"`` for every event.  The function takes the
        event, and may be annotated with the sender's event class
        (:class:`~hookshield.MindPeekerEvent`...) or :class:`~hookshield.Event`; it is
        returned unchanged, its type too.  It may be ``async def``.  Under asyncio a plain
        function runs in a worker thread, so that one that blocks cannot stall the
        server; ``inline=True`` runs it on the event loop instead, saving the
        hand-off, for a route that only computes.
        """
        return self._router.on(*event_types, inline=inline)

    def on_error(self, hook: H) -> H:
        """Register ``hook(error, event)``, called when a route raises (plain or async)."""
        return self._router.on_error(hook)

    # -- before the body: the peer and the headers -------------------------------------

    def check_peer(self, peer: str | None, headers: HeadersLike) -> None:
        """Refuse a delivery from outside ``allowed_ips`` with :class:`~hookshield.ForbiddenSource`.

        ``peer`` is the connection's address as the server reports it (``None`` when
        it gives none, as for a unix socket: refused when there is an allow-list).
        The adapters call this before reading the body; call it yourself before
        :meth:`handle` if you read the request yourself.  Without ``allowed_ips`` it
        accepts everything.
        """
        if self._peers is not None:
            self._peers.check(peer, headers)

    def check_headers(self, headers: HeadersLike) -> None:
        """Refuse, from the headers alone, a delivery whose body need not be read.

        Raises :class:`~hookshield.MissingCredentials` (401) without the sender's
        signature or credential header; checks a credential that travels in a header
        alone (``token``, ``basic_auth``, ``bearer_token``) completely
        (:class:`~hookshield.InvalidSignature`, 401); refuses a ``Content-Length``
        over ``max_body_size`` (:class:`~hookshield.BodyTooLarge`, 413).  The adapters
        call this before reading a byte of the body, so that a stranger costs no
        buffer; call it yourself (after :meth:`check_peer`) before reading the body
        for :meth:`handle`.  A signature over the body is checked by :meth:`handle`.
        """
        self._verifier.check_headers(headers)

    # -- verifying: pure, no store, no routes -----------------------------------------

    def authenticate(self, body: Body, headers: HeadersLike) -> None:
        """Check only the size and credentials of a delivery; raise a WebhookError if bad."""
        self._verifier.authenticate(body, headers)

    def verify(
        self, body: Body, headers: HeadersLike, *, received_at: float | None = None
    ) -> Delivery:
        """Authenticate ``body`` (the raw request body) and parse it into a Delivery.

        Raises a :class:`~hookshield.WebhookError` subclass, whose ``status`` is the
        HTTP status to answer, if the delivery must be rejected.  ``received_at``
        (Unix seconds) is for a delivery verified again after it was stored: a sender
        that signs a timestamp (Standard Webhooks) is judged by when it arrived.
        """
        return self._verifier.verify(body, headers, received_at=received_at)

    def iter_events(self, body: Body, headers: HeadersLike) -> Iterator[Event]:
        """Verify a delivery, and return its events to be read one at a time.

        The size and credentials are checked before this returns, raising as
        :meth:`verify` does.  A batch is then decoded record by record as the
        iteration goes, and a malformed record raises
        :class:`~hookshield.MalformedPayload` when it is reached.  No de-duplication.
        """
        return self._verifier.open(body, headers)[1]

    # -- handling: verify, claim, dispatch, settle ---------------------------------------

    def handle(self, body: Body, headers: HeadersLike) -> Outcome:
        """Verify, de-duplicate and dispatch one delivery; never raises a WebhookError."""
        dispatcher = self._dispatcher
        dispatcher.require_plain_store("handle")
        events: Iterable[Event]
        try:
            if self._streams:
                delivery, events = self._verifier.open(body, headers)
            else:
                delivery = self._verifier.verify(body, headers)
                events = delivery.events
        except WebhookError as exc:
            return dispatcher.rejected(exc)
        return run(dispatcher.handle(PLAIN, delivery, events))

    async def handle_async(self, body: Body, headers: HeadersLike) -> Outcome:
        """:meth:`handle` for async code: async routes are awaited on the running loop.

        Plain routes run in hookshield's worker threads, in the caller's context; a
        large body is verified in one too, so the loop keeps serving.
        """
        body = as_bytes(body)  # a caller's wrong type raises here, before its size is judged
        dispatcher = self._dispatcher
        loop = dispatcher.loop()
        small = len(body) <= INLINE_BODY_LIMIT
        awaits = dispatcher.store_is_async or self._router.any_async
        if not awaits and (self._streams or not (small and dispatcher.store_inline)):
            # A batch, decoded as it is dispatched, a large body or a blocking store:
            # all of it in one worker thread, one hop.
            return await loop.in_thread(self.handle, body, headers)
        try:
            if small:
                delivery = self._verifier.verify(body, headers)
            else:  # a large body, with async routes or an async store
                delivery = await loop.in_thread(self._verifier.verify, body, headers)
        except WebhookError as exc:
            return dispatcher.rejected(exc)
        threaded = dispatcher.threads and not awaits and self._router.may_thread
        if threaded and self._router.any_threaded([event.type for event in delivery.events]):
            # Claimed on the loop, so that a duplicate is answered without a hop; then
            # its plain routes run in one worker thread, not one hop each.
            return await run(dispatcher.accept(PLAIN, delivery)).finish_async()
        # Async routes awaited here, inline ones called here, plain ones in a thread.
        return await dispatcher.handle(loop, delivery, delivery.events)

    def accept(self, body: Body, headers: HeadersLike) -> Accepted:
        """Verify and claim, without dispatching; never raises a WebhookError.

        Returns an :class:`~hookshield.Accepted` delivery.  Its ``pending`` events are
        the new ones, and it holds their claims until it is settled: dispatch them to
        the routes with ``finish()``, or run them yourself in a ``with`` block (or call
        ``complete()`` once done, ``release()`` if it failed).  Its ``status`` is the
        answer otherwise: a refusal, or 200 for a duplicate.

        A batch (Momentum) is read and claimed record by record, and a malformed
        record refuses it; ``pending`` is then a :class:`~hookshield.PendingEvents`,
        which keeps only the new records' keys and decodes them again as it is read,
        so that accepting a batch costs about its body's size.
        """
        dispatcher = self._dispatcher
        dispatcher.require_plain_store("accept")
        source: Callable[[], Iterator[Event]] | None = None
        try:
            if self._streams:
                delivery, source = self._verifier.open_batch(body, headers)
            else:
                delivery = self._verifier.verify(body, headers)
        except WebhookError as exc:
            return dispatcher.refused(Accepted, exc)
        return run(dispatcher.accept(PLAIN, delivery, source))

    async def accept_async(self, body: Body, headers: HeadersLike) -> Accepted:
        """:meth:`accept` for async code, keeping the event loop free."""
        body = as_bytes(body)
        dispatcher = self._dispatcher
        if len(body) <= INLINE_BODY_LIMIT and dispatcher.store_inline:
            return self.accept(body, headers)  # small, and no store call to wait for
        loop = dispatcher.loop()
        if not dispatcher.store_is_async:
            accepted, cancelled = await loop.to_the_end(self.accept, body, headers)
            if cancelled is not None:  # claimed in the thread, for a caller now gone
                await accepted.release_async()
                raise cancelled
            return accepted
        try:
            delivery = await loop.in_thread(self._verifier.verify, body, headers)
        except WebhookError as exc:
            return dispatcher.refused(Accepted, exc)
        return await dispatcher.accept(loop, delivery)

    def dispatch(self, delivery: Delivery) -> int:
        """Run the routes of every event of a verified delivery; return the calls made.

        No de-duplication happens here.  A route's exception propagates after the
        error hooks have run.
        """
        dispatcher = self._dispatcher
        outcome = run(
            dispatcher.dispatch(PLAIN, delivery, delivery.events, None, claim_events=False)
        )
        if outcome.error is not None:
            raise outcome.error
        return outcome.dispatched

    async def dispatch_async(self, delivery: Delivery) -> int:
        """:meth:`dispatch` for async code: async routes awaited, plain ones in a thread."""
        dispatcher = self._dispatcher
        outcome = await dispatcher.dispatch(
            dispatcher.loop(), delivery, delivery.events, None, claim_events=False
        )
        if outcome.error is not None:
            raise outcome.error
        return outcome.dispatched

    # -- the names of earlier releases ---------------------------------------------------

    if not TYPE_CHECKING:  # type checkers see only the current names

        def __getattr__(self, name: str) -> object:
            # Only a name the class does not have gets here: the current ones cost nothing.
            deprecated = _DEPRECATED.get(name)
            if deprecated is None:
                raise AttributeError(f"'WebhookHandler' object has no attribute {name!r}")
            get, instead = deprecated
            warnings.warn(
                f"WebhookHandler.{name} is deprecated and will be removed in the next "
                f"release: {instead}",
                DeprecationWarning,
                stacklevel=2,
            )
            return get(self)

    def __repr__(self) -> str:
        verifier = self._verifier
        parts = [repr(self.provider)]
        if verifier.credentials.empty:
            parts.append("UNSIGNED (allow_unsigned=True)")
        parts += verifier.credentials.describe()
        if self._peers is not None:
            parts += self._peers.describe()
        parts.append(f"dedupe={self.dedupe!r}")
        return f"WebhookHandler({', '.join(parts)})"


def verifier_of(handler: WebhookHandler) -> Verifier:
    """The handler's verifier, for hookshield's own modules (the worker, the inbox, the CLI)."""
    return handler._verifier


def dispatcher_of(handler: WebhookHandler) -> Dispatcher:
    """The handler's dispatcher, for hookshield's own modules (the adapters, the worker)."""
    return handler._dispatcher


# -- the names of earlier releases, kept for one release ---------------------------------


def _process(handler: WebhookHandler, delivery: Delivery) -> Outcome:
    dispatcher = handler._dispatcher
    dispatcher.require_plain_store("process")
    return run(dispatcher.handle(PLAIN, delivery, delivery.events))


async def _process_async(handler: WebhookHandler, delivery: Delivery) -> Outcome:
    dispatcher = handler._dispatcher
    return await dispatcher.handle(dispatcher.loop(), delivery, delivery.events)


def _finish(outcome: Outcome) -> Outcome:
    return outcome.finish() if isinstance(outcome, Accepted) else outcome


async def _finish_async(outcome: Outcome) -> Outcome:
    return await outcome.finish_async() if isinstance(outcome, Accepted) else outcome


def _settle(method: str) -> Callable[[Outcome], Any]:
    def settle(outcome: Outcome) -> Any:
        if isinstance(outcome, Accepted):
            return getattr(outcome, method)()
        return None if not method.endswith("_async") else _nothing()

    return settle


async def _nothing() -> None:
    return None


def _method(func: Callable[..., Any]) -> Callable[[WebhookHandler], object]:
    return lambda handler: functools.partial(func, handler)


_ACCEPTED = "accept() returns an Accepted delivery: call its {} (or use it as a with block)"

#: Each name of hookshield 0.1 that the narrow handler dropped: how it is still
#: answered, and what to use instead.  Remove in the next release.
_DEPRECATED: Final[dict[str, tuple[Callable[[WebhookHandler], object], str]]] = {
    "process": (_method(_process), "verify with accept(), or dispatch() what is verified"),
    "process_async": (_method(_process_async), "use accept_async(), or dispatch_async()"),
    "finish": (lambda _: _finish, _ACCEPTED.format("finish()")),
    "finish_async": (lambda _: _finish_async, _ACCEPTED.format("finish_async()")),
    "complete": (lambda _: _settle("complete"), _ACCEPTED.format("complete()")),
    "complete_async": (lambda _: _settle("complete_async"), _ACCEPTED.format("complete_async()")),
    "release": (lambda _: _settle("release"), _ACCEPTED.format("release()")),
    "release_async": (lambda _: _settle("release_async"), _ACCEPTED.format("release_async()")),
    "routes_for": (lambda h: h._router.routes_for, "the routes are the handler's own"),
    "streams": (lambda h: h._streams, "it is stream_batches=, for a batch sender"),
    "stream_batches": (lambda h: h._streams, "it is the handler's own setting"),
    "sync_handlers_in_thread": (lambda h: h._dispatcher.threads, "it is the handler's own"),
    "unsigned": (lambda h: h._verifier.credentials.empty, "see repr(handler)"),
    "peers": (lambda h: h._peers, "see repr(handler)"),
    "store_is_async": (lambda h: h._dispatcher.store_is_async, "it is the handler's own"),
    "store_inline": (lambda h: h._dispatcher.store_inline, "it is the handler's own"),
    "verifier": (lambda h: h._verifier, "call the handler's verify() or check_headers()"),
    "router": (lambda h: h._router, "register with on() and on_error()"),
    "dispatcher": (lambda h: h._dispatcher, "call the handler's handle(), accept() or dispatch()"),
}
