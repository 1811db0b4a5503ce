"""The dashboard itself: one request in, one response out, whatever serves it.

Theory of operation: an adapter (``_serve.py``: WSGI, ASGI, a Django view, the
command line's server) turns its request into a :class:`Request` and sends back the
:class:`Response` that :meth:`Dashboard.respond` returns.  This module owns what the
dashboard allows:

* **Sessions**: a cookie ``hookshield_dashboard`` (``HttpOnly``, ``SameSite=Strict``,
  ``Secure`` when the request came over https) holds a random session id, when it was
  issued, and whether the built-in password was given, with an HMAC over them.  It
  lasts :data:`SESSION_SECONDS`.
* **Changing state**: only ``POST``, and only from a page of the dashboard: the
  request must say it is same-origin (``Sec-Fetch-Site: same-origin``, or else an
  ``Origin`` equal to the ``Host``) and carry the session's token (an HMAC of its id)
  in its form.  Anything else is answered 403 and changes nothing.
* **The built-in password** (``password=``), compared in constant time; without it,
  whoever reaches the dashboard may use it: put your own authentication in front, or
  serve it on a loopback address only (``hookshield inbox serve`` refuses any other).
* **Every answer** has a strict Content-Security-Policy (no script at all; styles from
  the dashboard's own stylesheet), ``X-Frame-Options: DENY``, ``Cache-Control:
  no-store`` and ``Referrer-Policy: no-referrer``.  Nothing secret is put in a URL:
  ids and filters only.

What each page shows is ``_pages.py``'s.  This module never writes markup itself.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import math
import re
import secrets
import time
import urllib.parse
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from .._browse import BrowsableInbox, DeliveryFilter, moment
from .._handler import WebhookHandler
from .._headers import Headers
from .._inbox import STATES
from .._refused import RefusalKeeper
from .._refused import recheck as recheck_refusal
from .._text import printable
from . import _pages
from ._html import Markup, href

__all__ = ["SESSION_SECONDS", "Dashboard", "Request", "Response"]

logger = logging.getLogger("hookshield")

#: How long a session lasts, in seconds: then the password is asked again.
SESSION_SECONDS: Final = 12 * 3600
#: The shortest built-in password accepted.
MIN_PASSWORD: Final = 12
#: The most bytes of a form read: the dashboard's forms are a few fields.
MAX_FORM: Final = 64 * 1024
#: How many deliveries a page lists.
PAGE: Final = 50
#: Rows requeued or deleted per transaction by a bulk action.
BATCH: Final = 500
#: How long a wrong password waits before its answer: guessing is slow.
WRONG_PASSWORD_DELAY: Final = 1.0

COOKIE: Final = "hookshield_dashboard"
CSP: Final = (
    "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)
SECURITY_HEADERS: Final = (
    ("Content-Security-Policy", CSP),
    ("X-Frame-Options", "DENY"),
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "no-referrer"),
    ("Cache-Control", "no-store"),
    ("Cross-Origin-Opener-Policy", "same-origin"),
    ("Cross-Origin-Resource-Policy", "same-origin"),
)
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
    "signed-out": "Signed out.",
}


@dataclass(frozen=True)
class Request:
    """One request, as an adapter hands it over.

    ``path`` is the part below the dashboard (``"/"``, ``"/delivery"``); ``base`` is
    where the dashboard is mounted (``""`` or ``"/inbox"``, no trailing slash), for
    its links.  ``query`` and ``form`` hold the first value of each field.
    """

    method: str
    path: str
    base: str = ""
    query: Mapping[str, str] = field(default_factory=dict)
    form: Mapping[str, str] = field(default_factory=dict)
    headers: Headers = field(default_factory=Headers)
    secure: bool = False


@dataclass(frozen=True)
class Response:
    """One answer: a status, headers and a body."""

    status: int
    headers: tuple[tuple[str, str], ...]
    body: bytes


@dataclass(frozen=True)
class Session:
    """Who is asking: a session id, when it was issued, and whether signed in."""

    sid: str
    issued: int
    signed_in: bool


class Refused(Exception):
    """A request the dashboard answers with an error page: ``status`` and a message."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


Action = Callable[["Dashboard", Request, Session], "Response"]


class Dashboard:
    """The inbox dashboard, as one callable: ``respond(request) -> response``.

    ``inbox`` is a :class:`~hookshield.BrowsableInbox` (``SQLiteInbox``);
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
        inbox: BrowsableInbox,
        *,
        handlers: Iterable[WebhookHandler] = (),
        password: str | None = None,
        session_key: str | bytes | None = None,
    ) -> None:
        if not isinstance(inbox, BrowsableInbox):
            raise TypeError(
                "the dashboard needs a BrowsableInbox (such as SQLiteInbox), not "
                f"{type(inbox).__name__}"
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
        self._key = _session_key(session_key, password)

    @property
    def has_password(self) -> bool:
        """Whether the built-in password guards the dashboard."""
        return self._password is not None

    def respond(self, request: Request) -> Response:
        """The answer to ``request``, with the security headers every answer carries."""
        session, fresh = self._session(request)
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
            headers.append(("Set-Cookie", self._cookie(fresh, request)))
        return Response(response.status, tuple(headers), response.body)

    # -- sessions and the checks on every request ----------------------------------------

    def _session(self, request: Request) -> tuple[Session, Session | None]:
        """The request's session, and the one to set in its cookie when it needs a new one."""
        found = _read_cookie(request.headers.get("cookie"))
        if found is not None:
            sid, issued, signed_in, mac = found
            expected = self._mac(sid, str(issued), "1" if signed_in else "0")
            fresh = 0 <= time.time() - issued < SESSION_SECONDS
            if hmac.compare_digest(mac, expected) and fresh:
                return Session(sid, issued, signed_in), None
        session = _new_session(signed_in=False)
        return session, session

    def _mac(self, *parts: str) -> str:
        return hmac.new(self._key, ".".join(parts).encode("ascii"), hashlib.sha256).hexdigest()

    def token(self, session: Session) -> str:
        """The token every form of this session carries."""
        return self._mac("csrf", session.sid)[:32]

    def _cookie(self, session: Session, request: Request) -> str:
        flag = "1" if session.signed_in else "0"
        value = f"{session.sid}.{session.issued}.{flag}.{self._mac(session.sid, str(session.issued), flag)}"
        secure = "; Secure" if request.secure else ""
        path = request.base or "/"
        return (
            f"{COOKIE}={value}; Path={path}; Max-Age={SESSION_SECONDS}; HttpOnly; "
            f"SameSite=Strict{secure}"
        )

    def _check_post(self, request: Request, session: Session) -> None:
        """Refuse (403) a POST that is not from a page of this dashboard in this session."""
        if not _same_origin(request.headers):
            raise Refused(
                403,
                "refused: this request did not come from a page of the dashboard "
                "(a cross-site request, or one without Origin or Sec-Fetch-Site)",
            )
        given = request.form.get("token", "")
        if not hmac.compare_digest(given.encode("utf-8", "replace"), self.token(session).encode()):
            raise Refused(
                403,
                "refused: the form's token is missing or is another session's; "
                "reload the page and try again",
            )

    def _respond(self, request: Request, session: Session) -> Response:
        if request.path == "/static/dashboard.css" and request.method in ("GET", "HEAD"):
            return Response(200, (("Content-Type", "text/css; charset=utf-8"),), _stylesheet())
        action = _ROUTES.get((request.method, request.path))
        if action is None:
            if any(path == request.path for _, path in _ROUTES):
                raise Refused(405, f"{request.method[:16]} is not allowed here")
            raise Refused(404, "there is no such page")
        if request.method == "POST":
            self._check_post(request, session)
        if self.has_password and not session.signed_in and request.path != "/login":
            if request.method == "POST":
                raise Refused(403, "refused: sign in first")
            # Back to this page once signed in: a link followed from elsewhere still leads.
            return self._redirect(request, "/login", {"next": _here(request)})
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
        where = _filter(request.query)
        before = request.query.get("before") or None
        rows = self.inbox.find(where, limit=PAGE + 1, before=before)
        more = len(rows) > PAGE
        rows = rows[:PAGE]
        content = _pages.deliveries(
            request.base,
            where=where,
            given=_given(request.query),
            rows=rows,
            total=self.inbox.count(where),
            states={state: self.inbox.count(_replace(where, state=state)) for state in STATES},
            older=rows[-1].id if more and rows else None,
            paged=before is not None,
            now=time.time(),
        )
        return self._page(request, session, "Deliveries", content, current="/")

    def delivery(self, request: Request, session: Session) -> Response:
        """``GET /delivery?id=``: one delivery, its attempts, headers and body."""
        delivery_id = _required(request.query, "id")
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
        delivery_id = _required(request.form, "id")
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
        delivery_id = _required(request.form, "id")
        if self.inbox.discard([delivery_id]) == 0:
            if self.inbox.get(delivery_id) is None:
                raise Refused(404, f"no delivery {delivery_id!r} (purged meanwhile)")
            raise Refused(
                409, "only a done or dead delivery can be deleted: this one has yet to run"
            )
        return self._redirect(request, "/", {"notice": "deleted"})

    def confirm_retry(self, request: Request, session: Session) -> Response:
        """``GET /retry``: how many deliveries the filter selects, and the button to retry them."""
        where = _bulk_filter(request.query, ("dead", "done", "pending"), "retry")
        content = _pages.confirm_retry(
            request.base, where, self.inbox.count(where), token=self.token(session)
        )
        return self._page(request, session, "Retry", content, current="/")

    def retry_many(self, request: Request, session: Session) -> Response:
        """``POST /retry``: requeue every delivery the form's filter selects."""
        where = _bulk_filter(request.form, ("dead", "done", "pending"), "retry")
        total = 0
        after: str | None = ""
        while after is not None:
            count, after = self.inbox.requeue_matching(where, after=after, limit=BATCH)
            total += count
        params = {**_params(_replace(where, state="pending")), "notice": "requeued", "n": total}
        return self._redirect(request, "/", params)

    def confirm_purge(self, request: Request, session: Session) -> Response:
        """``GET /purge``: how many done or dead deliveries are older than the age given."""
        where = _purge_filter(request.query)
        content = _pages.confirm_purge(
            request.base, where, self.inbox.count(where), token=self.token(session)
        )
        return self._page(request, session, "Purge", content, current="/")

    def purge_many(self, request: Request, session: Session) -> Response:
        """``POST /purge``: delete the done or dead deliveries the form selects."""
        where = _purge_filter(request.form)
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
        content = _pages.overview(request.base, view, window)
        return self._page(request, session, "Overview", content, current="/overview")

    def refusals(self, request: Request, session: Session) -> Response:
        """``GET /refused``: the refused deliveries kept, newest first."""
        keeper = self._keeper()
        before = request.query.get("before") or None
        rows = [] if keeper is None else keeper.refused(limit=PAGE + 1, before=before)
        more = len(rows) > PAGE
        rows = rows[:PAGE]
        content = _pages.refusals(
            request.base,
            rows,
            kept_by=keeper is not None,
            older=rows[-1].id if more and rows else None,
            now=time.time(),
        )
        return self._page(request, session, "Refused", content, current="/refused")

    def refusal(self, request: Request, session: Session, *, result: str | None = None) -> Response:
        """``GET /refused/one?id=``: one kept refusal, and its re-check button."""
        refused_id = _required(request.query if result is None else request.form, "id")
        keeper = self._keeper()
        refused = None if keeper is None else keeper.get_refused(refused_id)
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
        refused_id = _required(request.form, "id")
        keeper = self._keeper()
        refused = None if keeper is None else keeper.get_refused(refused_id)
        if keeper is None or refused is None:
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
            keeper.forget_refused([refused.id])
            return self._redirect(request, "/delivery", {"id": result.stored, "notice": "stored"})
        return self.refusal(request, session, result=result.reason)

    def forget(self, request: Request, session: Session) -> Response:
        """``POST /refused/forget``: forget one kept refusal."""
        refused_id = _required(request.form, "id")
        keeper = self._keeper()
        if keeper is not None:
            keeper.forget_refused([refused_id])
        return self._redirect(request, "/refused", {"notice": "forgotten"})

    def login_form(self, request: Request, session: Session) -> Response:
        """``GET /login``: the password form."""
        if not self.has_password or session.signed_in:
            return self._redirect(request, "/")
        target = _local(request.query.get("next", ""))
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
        signed_in = _new_session(signed_in=True)
        location = request.base + _local(request.form.get("next", ""))
        cookie = ("Set-Cookie", self._cookie(signed_in, request))
        return Response(303, (("Location", location), cookie), b"")

    def logout(self, request: Request, session: Session) -> Response:
        """``POST /logout``: end the session."""
        response = self._redirect(
            request, "/login" if self.has_password else "/", {"notice": "signed-out"}
        )
        cookie = ("Set-Cookie", self._cookie(_new_session(signed_in=False), request))
        return Response(response.status, (*response.headers, cookie), response.body)

    def _keeper(self) -> RefusalKeeper | None:
        return self.inbox if isinstance(self.inbox, RefusalKeeper) else None


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
    ("GET", "/refused"): Dashboard.refusals,
    ("GET", "/refused/one"): Dashboard.refusal,
    ("POST", "/refused/recheck"): Dashboard.recheck,
    ("POST", "/refused/forget"): Dashboard.forget,
    ("GET", "/login"): Dashboard.login_form,
    ("POST", "/login"): Dashboard.login,
    ("POST", "/logout"): Dashboard.logout,
}


def _session_key(given: str | bytes | None, password: str | None) -> bytes:
    if given is not None:
        if isinstance(given, str):
            given = given.encode("utf-8")
        if not isinstance(given, bytes) or len(given) < 16:
            raise ValueError("session_key must be text or bytes of at least 16 bytes")
        return hmac.new(given, b"hookshield dashboard session v1", hashlib.sha256).digest()
    if password is not None:
        # Slow on purpose: a captured cookie's HMAC must not make the password cheap
        # to guess offline.
        return hashlib.pbkdf2_hmac(
            "sha256", password.encode("utf-8"), b"hookshield dashboard session v1", 200_000
        )
    return secrets.token_bytes(32)


def _new_session(*, signed_in: bool) -> Session:
    return Session(secrets.token_urlsafe(18), int(time.time()), signed_in)


def _read_cookie(header: str | None) -> tuple[str, int, bool, str] | None:
    """The parts of the dashboard's cookie in a ``Cookie`` header, or ``None``."""
    if not header:
        return None
    for part in header.split(";"):
        name, _, value = part.strip().partition("=")
        if name != COOKIE:
            continue
        pieces = value.split(".")
        if len(pieces) != 4 or not pieces[1].isdigit() or pieces[2] not in ("0", "1"):
            return None
        sid, issued, flag, mac = pieces
        if not sid.isascii() or not mac.isascii():
            return None
        return sid, int(issued), flag == "1", mac
    return None


def _same_origin(headers: Headers) -> bool:
    """Whether the browser says the request comes from the dashboard's own origin.

    ``Sec-Fetch-Site`` is set by the browser and cannot be set by a page's script:
    when present it decides.  Otherwise (an older browser) the ``Origin`` must name
    the host the request was sent to.  A request with neither is refused: browsers
    send one of them with every POST.
    """
    site = headers.get("sec-fetch-site")
    if site is not None:
        return site == "same-origin"
    origin = headers.get("origin")
    host = headers.get("host")
    if not origin or origin == "null" or not host:
        return False
    parsed = urllib.parse.urlsplit(origin)
    return parsed.scheme in ("http", "https") and parsed.netloc.lower() == host.lower()


def _here(request: Request) -> str:
    """The page asked for, below the mount point, with its query."""
    query = urllib.parse.urlencode(request.query, errors="surrogatepass")
    return request.path + ("?" + query if query else "")


#: A path of the dashboard: one slash, then no second one or backslash that would make it
#: another host's (//evil.test), and no space or control character.
_LOCAL: Final = re.compile(r"/(?![/\\])[^\s\x00-\x1f\x7f]{0,2000}")


def _local(target: str) -> str:
    """``target`` if it is a page of the dashboard (``/delivery?id=...``), else ``/``."""
    return target if _LOCAL.fullmatch(target) else "/"


def _notice(query: Mapping[str, str]) -> str | None:
    template = NOTICES.get(query.get("notice", ""))
    if template is None:
        return None
    count = query.get("n", "0")
    return template.format(n=int(count) if count.isdigit() and len(count) < 10 else 0)


def _required(fields: Mapping[str, str], name: str) -> str:
    value = fields.get(name, "")
    if not value:
        raise Refused(400, f"the request names no {name}")
    return value


def _given(fields: Mapping[str, str]) -> dict[str, str]:
    """The filter's fields as typed, to show them again in its form."""
    return {name: fields.get(name, "") for name in ("state", "sender", "type", "since", "until")}


def _filter(fields: Mapping[str, str]) -> DeliveryFilter:
    """The filter the query (or form) names: ``state sender type since until``."""
    now = time.time()
    state = fields.get("state") or None
    if state is not None and state not in STATES:
        raise Refused(400, f"state must be one of {', '.join(STATES)}")
    times: dict[str, float | None] = {}
    for name in ("since", "until"):
        text = fields.get(name, "").strip()
        try:
            times[name] = moment(text, now=now) if text else None
        except ValueError as exc:
            raise Refused(400, f"{name}: {exc}") from None
    try:
        return DeliveryFilter(
            state=state,
            sender=fields.get("sender") or None,
            event_type=fields.get("type") or None,
            since=times["since"],
            until=times["until"],
        )
    except (TypeError, ValueError) as exc:
        raise Refused(400, str(exc)) from None


def _bulk_filter(fields: Mapping[str, str], states: tuple[str, ...], what: str) -> DeliveryFilter:
    where = _filter(fields)
    if where.state not in states:
        raise Refused(
            400, f"to {what} deliveries in bulk, filter them by state first ({', '.join(states)})"
        )
    return where


def _purge_filter(fields: Mapping[str, str]) -> DeliveryFilter:
    """The done or dead deliveries older than ``older_than`` (an age), and the rest of the filter."""
    where = _bulk_filter(fields, ("done", "dead"), "purge")
    age = fields.get("older_than", "").strip()
    if not age:
        return where
    try:
        limit = moment(age, now=time.time())
    except ValueError as exc:
        raise Refused(400, f"older than: {exc}") from None
    until = limit if where.until is None else min(where.until, limit)
    if not math.isfinite(until):
        raise Refused(400, "older than: not a time")
    return _replace(where, until=until)


def _replace(where: DeliveryFilter, **changes: object) -> DeliveryFilter:
    fields: dict[str, object] = {
        "state": where.state,
        "sender": where.sender,
        "event_type": where.event_type,
        "since": where.since,
        "until": where.until,
        **changes,
    }
    return DeliveryFilter(**fields)  # type: ignore[arg-type]


def _params(where: DeliveryFilter) -> dict[str, object]:
    """The query parameters of a filter, times as Unix seconds."""
    return {
        "state": where.state,
        "sender": where.sender,
        "type": where.event_type,
        "since": None if where.since is None else repr(where.since),
        "until": None if where.until is None else repr(where.until),
    }


def _stylesheet() -> bytes:
    return _STYLESHEET.read_bytes()
