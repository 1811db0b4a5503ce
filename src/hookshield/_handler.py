"""``WebhookHandler``: one sender's deliveries, verified, de-duplicated and dispatched.

Theory of operation: the handler is a facade over four pieces, each in a module of
its own, and the words of ``_dispatch.py``'s docstring (verify, claim, dispatch,
complete, release; accept, finish, handle) mean the same here:

* ``_credentials.py`` prepares the credentials and refuses a misconfiguration;
* ``_verify.py`` bounds, authenticates and parses the raw bytes, purely;
* ``_routing.py`` holds the routes and error hooks;
* ``_dispatch.py`` claims and dispatches, with the store of ``_dedupe.py``.

Every entry point has an async twin in ``_async.py``, imported on first use.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable, Iterator
from typing import Final

from ._auth import SecretLike
from ._credentials import BasicAuth, prepare_credentials
from ._dedupe import (
    DEFAULT_LEASE,
    AsyncDedupeStore,
    DedupeStore,
    MemoryDedupeStore,
    adapt_store,
)
from ._dispatch import Dispatcher, drive
from ._errors import WebhookError
from ._events import Delivery, Event
from ._headers import HeadersLike
from ._options import flag, integer, text
from ._outcome import Outcome
from ._peers import AddressesLike, PeerPolicy
from ._routing import H, R, Route, Router
from ._stores import seconds
from ._verify import Body, Verifier
from .providers import ProviderLike, get_provider

__all__ = ["DEFAULT_MAX_BODY_SIZE", "WebhookHandler"]

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
    before dispatching any of it.

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
        self.unsigned = credentials.empty
        self.sync_handlers_in_thread = sync_handlers_in_thread
        self.stream_batches = stream_batches
        #: Where deliveries may come from; ``None`` for anywhere.
        self.peers = peers
        #: Whether the store's steps are awaited (``redis.asyncio``): async paths only.
        self.store_is_async = store is not None and inspect.iscoroutinefunction(store.claim)
        #: Whether the store's steps are quick enough to make on an event loop.
        self.store_inline = store is None or isinstance(store, MemoryDedupeStore)
        self.verifier = Verifier(sender, credentials, max_body_size)
        self.router = Router(sender.title, sender.event_types)
        self.dispatcher = Dispatcher(sender, self.router, store, lease, ttl)

    # -- configuration -------------------------------------------------------------
    # Read-only: the verifier and the dispatcher hold them, and a value set on the
    # handler afterwards would silently not reach them.

    @property
    def max_body_size(self) -> int:
        """The largest body accepted, in bytes."""
        return self.verifier.max_body_size

    @property
    def dedupe(self) -> DedupeStore | AsyncDedupeStore | None:
        """The de-duplication store, or ``None``."""
        return self.dispatcher.store

    @property
    def dedupe_ttl(self) -> float:
        """How long a handled delivery is remembered, in seconds."""
        return self.dispatcher.ttl

    @property
    def dedupe_lease(self) -> float:
        """How long an attempt in progress holds its delivery, in seconds."""
        return self.dispatcher.lease

    @property
    def provider(self) -> str:
        """The sender's name, as given to the constructor."""
        return self.verifier.sender.name

    @property
    def event_types(self) -> tuple[str, ...]:
        """The sender's documented event types."""
        return self.verifier.sender.event_types

    @property
    def streams(self) -> bool:
        """Whether :meth:`handle` dispatches a batch record by record as it decodes it."""
        return self.stream_batches and self.verifier.sender.sends_batches

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
        return self.router.on(*event_types, inline=inline)

    def on_error(self, hook: H) -> H:
        """Register ``hook(error, event)``, called when a route raises (plain or async)."""
        return self.router.on_error(hook)

    def routes_for(self, event_type: str) -> tuple[Route, ...]:
        """The functions an event of ``event_type`` is dispatched to, in order."""
        return self.router.routes_for(event_type)

    # -- verifying: pure, no store, no routes -----------------------------------------

    def check_peer(self, peer: str | None, headers: HeadersLike) -> None:
        """Refuse a delivery from outside ``allowed_ips`` with :class:`~hookshield.ForbiddenSource`.

        ``peer`` is the connection's address as the server reports it (``None`` when
        it gives none, as for a unix socket: refused when there is an allow-list).
        The adapters call this before reading the body; call it yourself before
        :meth:`handle` if you read the request yourself.  Without ``allowed_ips`` it
        accepts everything.
        """
        if self.peers is not None:
            self.peers.check(peer, headers)

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
        self.verifier.check_headers(headers)

    def authenticate(self, body: Body, headers: HeadersLike) -> None:
        """Check only the size and credentials of a delivery; raise a WebhookError if bad."""
        self.verifier.authenticate(body, headers)

    def verify(
        self, body: Body, headers: HeadersLike, *, received_at: float | None = None
    ) -> Delivery:
        """Authenticate ``body`` (the raw request body) and parse it into a Delivery.

        Raises a :class:`~hookshield.WebhookError` subclass, whose ``status`` is the
        HTTP status to answer, if the delivery must be rejected.  ``received_at``
        (Unix seconds) is for a delivery verified again after it was stored: a sender
        that signs a timestamp (Standard Webhooks) is judged by when it arrived.
        """
        return self.verifier.verify(body, headers, received_at=received_at)

    def iter_events(self, body: Body, headers: HeadersLike) -> Iterator[Event]:
        """Verify a delivery, and return its events to be read one at a time.

        The size and credentials are checked before this returns, raising as
        :meth:`verify` does.  A batch is then decoded record by record as the
        iteration goes, and a malformed record raises
        :class:`~hookshield.MalformedPayload` when it is reached.  No de-duplication.
        """
        return self.verifier.open(body, headers)[1]

    # -- handling: verify, claim, dispatch, settle ---------------------------------------

    def handle(self, body: Body, headers: HeadersLike) -> Outcome:
        """Verify, de-duplicate and dispatch one delivery; never raises a WebhookError."""
        self._require_plain_store("handle")
        events: Iterable[Event]
        try:
            if self.streams:
                delivery, events = self.verifier.open(body, headers)
            else:
                delivery = self.verifier.verify(body, headers)
                events = delivery.events
        except WebhookError as exc:
            return self.dispatcher.rejected(exc)
        outcome: Outcome = drive(self.dispatcher.handle(delivery, events))
        return outcome

    def process(self, delivery: Delivery) -> Outcome:
        """De-duplicate and dispatch a delivery already verified (by :meth:`verify`)."""
        self._require_plain_store("process")
        outcome: Outcome = drive(self.dispatcher.handle(delivery, delivery.events))
        return outcome

    def accept(self, body: Body, headers: HeadersLike) -> Outcome:
        """Verify and claim, without dispatching; never raises a WebhookError.

        A 200 outcome's ``pending`` events are new: pass the outcome to :meth:`finish`
        (or :meth:`finish_async`) to dispatch them, or, for code that handles them
        itself, to :meth:`complete` once done or :meth:`release` if it failed.

        A batch (Momentum) is read and claimed record by record, and a malformed
        record refuses it; ``pending`` is then a :class:`~hookshield.PendingEvents`,
        which keeps only the new records' keys and decodes them again as it is read,
        so that accepting a batch costs about its body's size.
        """
        self._require_plain_store("accept")
        source: Callable[[], Iterator[Event]] | None = None
        try:
            if self.streams:
                delivery, source = self.verifier.open_batch(body, headers)
            else:
                delivery = self.verifier.verify(body, headers)
        except WebhookError as exc:
            return self.dispatcher.rejected(exc)
        outcome: Outcome = drive(self.dispatcher.accept(delivery, source))
        return outcome

    def finish(self, outcome: Outcome) -> Outcome:
        """Dispatch an accepted outcome's pending events; a route failure gives 500."""
        self._require_plain_store("finish")
        result: Outcome = drive(self.dispatcher.finish(outcome))
        return result

    def complete(self, outcome: Outcome) -> None:
        """Mark an accepted outcome's claims done: its events were handled."""
        self._require_plain_store("complete")
        if outcome.claims is not None:
            drive(outcome.claims.complete_all())

    def release(self, outcome: Outcome) -> None:
        """Forget an accepted outcome's claims, so that the sender's retry runs it again."""
        self._require_plain_store("release")
        if outcome.claims is not None:
            drive(outcome.claims.release_all())

    def dispatch(self, delivery: Delivery) -> int:
        """Run the routes of every event of a verified delivery; return the calls made.

        No de-duplication happens here.  A route's exception propagates after the
        error hooks have run.
        """
        steps = self.dispatcher.dispatch(delivery, delivery.events, None, claim_events=False)
        outcome: Outcome = drive(steps)
        if outcome.error is not None:
            raise outcome.error
        return outcome.dispatched

    # -- the async twins ---------------------------------------------------------------

    async def handle_async(self, body: Body, headers: HeadersLike) -> Outcome:
        """:meth:`handle` for async code: async routes are awaited on the running loop.

        Plain routes run in hookshield's worker threads, in the caller's context; a
        large body is verified in one too, so the loop keeps serving.
        """
        from . import _async

        return await _async.handle(self, body, headers)

    async def process_async(self, delivery: Delivery) -> Outcome:
        """:meth:`process` for async code."""
        from . import _async

        outcome: Outcome = await _async.drive(
            self, self.dispatcher.handle(delivery, delivery.events)
        )
        return outcome

    async def accept_async(self, body: Body, headers: HeadersLike) -> Outcome:
        """:meth:`accept` for async code, keeping the event loop free."""
        from . import _async

        return await _async.accept(self, body, headers)

    async def finish_async(self, outcome: Outcome) -> Outcome:
        """:meth:`finish` for async code, awaiting async routes; plain ones in a thread."""
        from . import _async

        return await _async.finish(self, outcome)

    async def complete_async(self, outcome: Outcome) -> None:
        """:meth:`complete` for async code."""
        from . import _async

        await _async.settle(self, outcome, done=True)

    async def release_async(self, outcome: Outcome) -> None:
        """:meth:`release` for async code."""
        from . import _async

        await _async.settle(self, outcome, done=False)

    async def dispatch_async(self, delivery: Delivery) -> int:
        """:meth:`dispatch` for async code."""
        from . import _async

        return await _async.dispatch(self, delivery)

    # -- internals ---------------------------------------------------------------------

    def _require_plain_store(self, method: str) -> None:
        if self.store_is_async:
            raise TypeError(
                f"this handler's de-duplication store is async; call {method}_async() "
                "(or serve it with an ASGI adapter) instead"
            )

    def __repr__(self) -> str:
        parts = [repr(self.provider)]
        if self.unsigned:
            parts.append("UNSIGNED (allow_unsigned=True)")
        parts += self.verifier.credentials.describe()
        if self.peers is not None:
            parts += self.peers.describe()
        parts.append(f"dedupe={self.dedupe!r}")
        return f"WebhookHandler({', '.join(parts)})"
