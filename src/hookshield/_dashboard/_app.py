"""The dashboard itself: its pages and actions, one request in, one response out.

Theory of operation: :class:`Dashboard` routes a :class:`~._http.Request` to one of its
actions by method and path (:data:`_ROUTES`): a GET shows a page, and never changes
anything; a POST acts, once its session's rules hold (``_session.py``: same origin,
the session's token, signed in when there is a password), then redirects to a page
that says what it did (or, for Pause and Resume, back to the page it was pressed on).
The filters come from the query or the form (``_fields.py``),
the pages from ``_pages.py``; every answer gets the security headers of ``_http.py``.
This module never writes markup itself, and never reads a cookie itself.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import logging
import time
import urllib.parse
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Final

from .._core.text import printable
from .._durable.browse import ManagedInbox
from .._durable.inbox import STATES
from .._durable.refused import recheck as recheck_refusal
from .._handling.handler import WebhookHandler
from . import _pages
from ._fields import bulk_filter, filter_of, given, params, purge_filter, required
from ._html import Markup, href
from ._http import SECURITY_HEADERS, Refused, Request, Response
from ._session import Session, Sessions, here, local, new_session, signing_key

__all__ = ["Dashboard"]

logger = logging.getLogger("hookshield")

#: The shortest built-in password accepted.
MIN_PASSWORD: Final = 12
#: How many deliveries a page lists.
PAGE: Final = 50
#: Rows requeued or deleted per transaction by a bulk action.
BATCH: Final = 500
#: How long a wrong password waits before its answer: guessing is slow.
WRONG_PASSWORD_DELAY: Final = 1.0
#: The longest sender name Pause takes (the inboxes' own bound).
MAX_SENDER: Final = 64

_HTML: Final = "text/html; charset=utf-8"
_STYLESHEET: Final = Path(__file__).with_name("dashboard.css")

#: The messages a redirect after an action may show, by the key in its URL.
NOTICES: Final = {
    "requeued": "{n} deliveries are pending again, due now.",
    "purged": "{n} deliveries deleted.",
    "retried": "Pending again, due now.",
    "deleted": "The delivery was deleted.",
    "stored": "It verifies now: stored as this pending delivery.",
    "forgotten": "The refusal was forgotten.",
    "paused": "Paused: no worker runs this sender's deliveries until it is resumed.",
    "paused-already": "That sender was paused already.",
    "resumed": "Resumed: workers run this sender's deliveries again.",
    "not-paused": "That sender was not paused.",
    "signed-out": "Signed out.",
}


Action = Callable[["Dashboard", Request, Session], "Response"]


class Dashboard:
    """The inbox dashboard, as one callable: ``respond(request) -> response``.

    ``inbox`` is a :class:`~hookshield.ManagedInbox` (``SQLiteInbox``,
    ``PostgresInbox``, ``DjangoInbox``);
    ``handlers`` the handlers whose refused deliveries may be checked again
    (re-check needs the handler and its current credentials); ``password`` the
    built-in password (at least 12 characters), or ``None`` when your own
    authentication stands in front; ``session_key`` the key that signs sessions and
    tokens (text or bytes): give every process that serves the dashboard the same
    one.  Without it the key is derived from the password (so every process that
    has the password agrees), or, without a password, is random per process.
    """

    def __init__(
        self,
        inbox: ManagedInbox,
        *,
        handlers: Iterable[WebhookHandler] = (),
        password: str | None = None,
        session_key: str | bytes | None = None,
    ) -> None:
        if not isinstance(inbox, ManagedInbox):
            raise TypeError(
                "the dashboard needs a ManagedInbox (SQLiteInbox, PostgresInbox, DjangoInbox), "
                f"not {type(inbox).__name__}"
            )
        self.inbox = inbox
        self.handlers: dict[str, WebhookHandler] = {}
        for handler in handlers:
            if not isinstance(handler, WebhookHandler):
                raise TypeError(f"handlers must be WebhookHandlers, not {type(handler).__name__}")
            if handler.provider in self.handlers:
                raise ValueError(f"two handlers for {handler.provider!r}: give one per sender")
            self.handlers[handler.provider] = handler
        if password is not None:
            if not isinstance(password, str):
                raise TypeError(f"password must be a str, not {type(password).__name__}")
            if len(password) < MIN_PASSWORD:
                raise ValueError(f"the password must be at least {MIN_PASSWORD} characters")
        self._password = (
            None if password is None else hashlib.sha256(password.encode("utf-8")).digest()
        )
        self.sessions = Sessions(signing_key(session_key, password))

    @property
    def has_password(self) -> bool:
        """Whether the built-in password guards the dashboard."""
        return self._password is not None

    def respond(self, request: Request) -> Response:
        """The answer to ``request``, with the security headers every answer carries."""
        session, fresh = self.sessions.of(request)
        try:
            response = self._respond(request, session)
        except Refused as refused:
            response = self._page(
                request,
                session,
                "Refused" if refused.status == 403 else "Not possible",
                _pages.problem(str(refused)),
                status=refused.status,
            )
        except Exception as exc:
            logger.exception("hookshield: the dashboard failed on %s", printable(request.path))
            response = self._page(
                request,
                session,
                "Failed",
                _pages.problem(f"the dashboard failed ({type(exc).__name__}); see its log"),
                status=500,
            )
        headers = [*response.headers, *SECURITY_HEADERS]
        if fresh is not None:
            headers.append(("Set-Cookie", self.sessions.cookie(fresh, request)))
        return Response(response.status, tuple(headers), response.body)

    def token(self, session: Session) -> str:
        """The token every form of ``session`` carries."""
        return self.sessions.token(session)

    # -- routing -----------------------------------------------------------------------

    def _respond(self, request: Request, session: Session) -> Response:
        if request.path == "/static/dashboard.css" and request.method in ("GET", "HEAD"):
            return Response(200, (("Content-Type", "text/css; charset=utf-8"),), _stylesheet())
        action = _ROUTES.get((request.method, request.path))
        if action is None:
            if any(path == request.path for _, path in _ROUTES):
                raise Refused(405, f"{request.method[:16]} is not allowed here")
            raise Refused(404, "there is no such page")
        if request.method == "POST":
            self.sessions.check_post(request, session)
        if self.has_password and not session.signed_in and request.path != "/login":
            if request.method == "POST":
                raise Refused(403, "refused: sign in first")
            # Back to this page once signed in: a link followed from elsewhere still leads.
            return self._redirect(request, "/login", {"next": here(request)})
        return action(self, request, session)

    # -- answers -----------------------------------------------------------------------

    def _page(
        self,
        request: Request,
        session: Session,
        title: str,
        content: Markup,
        *,
        status: int = 200,
        current: str = "",
    ) -> Response:
        signed_in = session.signed_in if self.has_password else None
        page = _pages.layout(
            request.base,
            title,
            content,
            current=current,
            signed_in=signed_in,
            token=self.token(session),
            notice=_notice(request.query),
        )
        return Response(status, (("Content-Type", _HTML),), page.encode("utf-8"))

    def _redirect(
        self, request: Request, path: str, params: Mapping[str, object] | None = None
    ) -> Response:
        return Response(303, (("Location", href(request.base, path, params)),), b"")

    # -- the pages ---------------------------------------------------------------------

    def deliveries(self, request: Request, session: Session) -> Response:
        """``GET /``: the deliveries the query's filter selects, newest first, a page at a time."""
        where = filter_of(request.query)
        before = request.query.get("before") or None
        rows = self.inbox.find(where, limit=PAGE + 1, before=before)
        more = len(rows) > PAGE
        rows = rows[:PAGE]
        content = _pages.deliveries(
            request.base,
            where=where,
            given=given(request.query),
            rows=rows,
            total=self.inbox.count(where),
            states={
                state: self.inbox.count(dataclasses.replace(where, state=state)) for state in STATES
            },
            older=rows[-1].id if more and rows else None,
            paged=before is not None,
            paused=self.inbox.paused(),
            token=self.token(session),
            back=here(request),
            now=time.time(),
        )
        return self._page(request, session, "Deliveries", content, current="/")

    def delivery(self, request: Request, session: Session) -> Response:
        """``GET /delivery?id=``: one delivery, its attempts, headers and body."""
        delivery_id = required(request.query, "id")
        row = self.inbox.get(delivery_id)
        if row is None:
            raise Refused(404, f"no delivery {delivery_id!r} (purged, or never stored)")
        content = _pages.delivery(
            request.base,
            row,
            self.inbox.history(row.id),
            token=self.token(session),
            now=time.time(),
        )
        return self._page(request, session, f"Delivery {row.id}", content, current="/")

    def retry_one(self, request: Request, session: Session) -> Response:
        """``POST /delivery/retry``: make one delivery pending and due now."""
        delivery_id = required(request.form, "id")
        if self.inbox.requeue([delivery_id]) == 0:
            if self.inbox.get(delivery_id) is None:
                raise Refused(404, f"no delivery {delivery_id!r} (purged meanwhile)")
            raise Refused(
                409,
                "a worker holds this delivery leased now; retry it once it is done, dead or "
                "pending again",
            )
        return self._redirect(request, "/delivery", {"id": delivery_id, "notice": "retried"})

    def purge_one(self, request: Request, session: Session) -> Response:
        """``POST /delivery/purge``: delete one done or dead delivery."""
        delivery_id = required(request.form, "id")
        if self.inbox.discard([delivery_id]) == 0:
            if self.inbox.get(delivery_id) is None:
                raise Refused(404, f"no delivery {delivery_id!r} (purged meanwhile)")
            raise Refused(
                409, "only a done or dead delivery can be deleted: this one has yet to run"
            )
        return self._redirect(request, "/", {"notice": "deleted"})

    def confirm_retry(self, request: Request, session: Session) -> Response:
        """``GET /retry``: how many deliveries the filter selects, and the button to retry them."""
        where = bulk_filter(request.query, ("dead", "done", "pending"), "retry")
        content = _pages.confirm_retry(
            request.base, where, self.inbox.count(where), token=self.token(session)
        )
        return self._page(request, session, "Retry", content, current="/")

    def retry_many(self, request: Request, session: Session) -> Response:
        """``POST /retry``: requeue every delivery the form's filter selects."""
        where = bulk_filter(request.form, ("dead", "done", "pending"), "retry")
        total = 0
        after: str | None = ""
        while after is not None:
            count, after = self.inbox.requeue_matching(where, after=after, limit=BATCH)
            total += count
        pending = dataclasses.replace(where, state="pending")
        return self._redirect(request, "/", {**params(pending), "notice": "requeued", "n": total})

    def confirm_purge(self, request: Request, session: Session) -> Response:
        """``GET /purge``: how many done or dead deliveries are older than the age given."""
        where = purge_filter(request.query)
        content = _pages.confirm_purge(
            request.base, where, self.inbox.count(where), token=self.token(session)
        )
        return self._page(request, session, "Purge", content, current="/")

    def purge_many(self, request: Request, session: Session) -> Response:
        """``POST /purge``: delete the done or dead deliveries the form selects."""
        where = purge_filter(request.form)
        total = 0
        while True:
            count = self.inbox.purge_matching(where, limit=BATCH)
            total += count
            if not count:
                break
        return self._redirect(request, "/", {"notice": "purged", "n": total})

    def overview(self, request: Request, session: Session) -> Response:
        """``GET /overview``: counts by state and sender, the oldest due, a chart."""
        window = request.query.get("window", "24h")
        spans = {"24h": (86400.0, 24), "7d": (7 * 86400.0, 28)}
        if window not in spans:
            raise Refused(400, "window must be 24h or 7d")
        span, buckets = spans[window]
        view = self.inbox.overview(time.time(), span=span, buckets=buckets)
        content = _pages.overview(
            request.base,
            view,
            window,
            paused=self.inbox.paused(),
            token=self.token(session),
            back=here(request),
        )
        return self._page(request, session, "Overview", content, current="/overview")

    def pause(self, request: Request, session: Session) -> Response:
        """``POST /sender/pause``: no worker leases the sender's deliveries until resumed."""
        made = self.inbox.pause(_sender(request.form))
        return self._back(request, "paused" if made else "paused-already")

    def resume(self, request: Request, session: Session) -> Response:
        """``POST /sender/resume``: workers lease the sender's deliveries again."""
        was = self.inbox.resume(_sender(request.form))
        return self._back(request, "resumed" if was else "not-paused")

    def refusals(self, request: Request, session: Session) -> Response:
        """``GET /refused``: the refused deliveries kept, newest first."""
        before = request.query.get("before") or None
        rows = self.inbox.refused(limit=PAGE + 1, before=before)
        more = len(rows) > PAGE
        rows = rows[:PAGE]
        content = _pages.refusals(
            request.base,
            rows,
            older=rows[-1].id if more and rows else None,
            now=time.time(),
        )
        return self._page(request, session, "Refused", content, current="/refused")

    def refusal(self, request: Request, session: Session, *, result: str | None = None) -> Response:
        """``GET /refused/one?id=``: one kept refusal, and its re-check button."""
        refused_id = required(request.query if result is None else request.form, "id")
        refused = self.inbox.get_refused(refused_id)
        if refused is None:
            raise Refused(404, f"no kept refusal {refused_id!r} (forgotten, or beyond the bound)")
        content = _pages.refusal(
            request.base,
            refused,
            can_recheck=refused.handler in self.handlers,
            result=result,
            token=self.token(session),
            now=time.time(),
        )
        return self._page(request, session, "Refused delivery", content, current="/refused")

    def recheck(self, request: Request, session: Session) -> Response:
        """``POST /refused/recheck``: verify a kept refusal again with its handler now."""
        refused_id = required(request.form, "id")
        refused = self.inbox.get_refused(refused_id)
        if refused is None:
            raise Refused(404, f"no kept refusal {refused_id!r} (forgotten, or beyond the bound)")
        handler = self.handlers.get(refused.handler)
        if handler is None:
            raise Refused(
                409,
                f"the dashboard has no handler for {refused.handler!r}: serve it with that "
                "handler (handlers=, or --handler) to check its refusals again",
            )
        result = recheck_refusal(handler, self.inbox, refused)
        if result.stored is not None:
            self.inbox.forget_refused([refused.id])
            return self._redirect(request, "/delivery", {"id": result.stored, "notice": "stored"})
        return self.refusal(request, session, result=result.reason)

    def forget(self, request: Request, session: Session) -> Response:
        """``POST /refused/forget``: forget one kept refusal."""
        refused_id = required(request.form, "id")
        self.inbox.forget_refused([refused_id])
        return self._redirect(request, "/refused", {"notice": "forgotten"})

    def login_form(self, request: Request, session: Session) -> Response:
        """``GET /login``: the password form."""
        if not self.has_password or session.signed_in:
            return self._redirect(request, "/")
        target = local(request.query.get("next", ""))
        content = _pages.login(request.base, self.token(session), target)
        return self._page(request, session, "Sign in", content)

    def login(self, request: Request, session: Session) -> Response:
        """``POST /login``: a new, signed-in session for the right password."""
        if self._password is None:
            return self._redirect(request, "/")
        given = hashlib.sha256(request.form.get("password", "").encode("utf-8", "replace"))
        if not hmac.compare_digest(given.digest(), self._password):
            time.sleep(WRONG_PASSWORD_DELAY)
            raise Refused(403, "wrong password")
        # A new session id: one fixed before signing in is worth nothing after.
        signed_in = new_session(signed_in=True)
        location = request.base + local(request.form.get("next", ""))
        cookie = ("Set-Cookie", self.sessions.cookie(signed_in, request))
        return Response(303, (("Location", location), cookie), b"")

    def logout(self, request: Request, session: Session) -> Response:
        """``POST /logout``: end the session."""
        response = self._redirect(
            request, "/login" if self.has_password else "/", {"notice": "signed-out"}
        )
        cookie = ("Set-Cookie", self.sessions.cookie(new_session(signed_in=False), request))
        return Response(response.status, (*response.headers, cookie), response.body)

    def _back(self, request: Request, notice: str) -> Response:
        """Back to the page the form was on (``next``, a page of the dashboard), with ``notice``."""
        target = urllib.parse.urlsplit(local(request.form.get("next", "")))
        query = {
            name: value
            for name, value in urllib.parse.parse_qsl(target.query)
            if name not in ("notice", "n")
        }
        return self._redirect(request, target.path, {**query, "notice": notice})


_ROUTES: Final[dict[tuple[str, str], Action]] = {
    ("GET", "/"): Dashboard.deliveries,
    ("GET", "/delivery"): Dashboard.delivery,
    ("POST", "/delivery/retry"): Dashboard.retry_one,
    ("POST", "/delivery/purge"): Dashboard.purge_one,
    ("GET", "/retry"): Dashboard.confirm_retry,
    ("POST", "/retry"): Dashboard.retry_many,
    ("GET", "/purge"): Dashboard.confirm_purge,
    ("POST", "/purge"): Dashboard.purge_many,
    ("GET", "/overview"): Dashboard.overview,
    ("POST", "/sender/pause"): Dashboard.pause,
    ("POST", "/sender/resume"): Dashboard.resume,
    ("GET", "/refused"): Dashboard.refusals,
    ("GET", "/refused/one"): Dashboard.refusal,
    ("POST", "/refused/recheck"): Dashboard.recheck,
    ("POST", "/refused/forget"): Dashboard.forget,
    ("GET", "/login"): Dashboard.login_form,
    ("POST", "/login"): Dashboard.login,
    ("POST", "/logout"): Dashboard.logout,
}


def _sender(form: Mapping[str, str]) -> str:
    """The sender a form names: a name as the inboxes keep them (400 otherwise)."""
    sender = required(form, "sender")
    if len(sender) > MAX_SENDER or not sender.isprintable():
        raise Refused(400, "that is not a sender's name (as the list shows them)")
    return sender


def _notice(query: Mapping[str, str]) -> str | None:
    template = NOTICES.get(query.get("notice", ""))
    if template is None:
        return None
    count = query.get("n", "0")
    return template.format(n=int(count) if count.isdigit() and len(count) < 10 else 0)


def _stylesheet() -> bytes:
    return _STYLESHEET.read_bytes()
