"""Who may change what: sessions, their tokens, the same-origin rule, the password's key.

Theory of operation, the rules this module owns:

* **A session** is a cookie ``hookshield_dashboard`` (``HttpOnly``, ``SameSite=Strict``,
  scoped to the mount point, ``Secure`` when the request came over https) holding a
  random session id, when it was issued, and whether the built-in password was given,
  with an HMAC over them: a cookie changed by anyone without the key is a new session,
  not signed in.  It lasts :data:`SESSION_SECONDS`.
* **Changing state** takes a POST that the browser says is same-origin
  (``Sec-Fetch-Site: same-origin``, or for an older browser an ``Origin`` equal to the
  ``Host``) and that carries the session's token, an HMAC of its id, in its form;
  compared in constant time.  Anything else is :class:`~._http.Refused` with 403.
* **The key** signing both is the one given (``session_key=``), else one derived
  slowly from the password (so that every process given the password agrees, and a
  captured cookie does not make the password cheap to guess), else random per process.

Nothing here does I/O.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
import urllib.parse
from dataclasses import dataclass
from typing import Final

from .._core.headers import Headers
from ._http import Refused, Request

__all__ = [
    "COOKIE",
    "SESSION_SECONDS",
    "Session",
    "Sessions",
    "here",
    "local",
    "new_session",
    "same_origin",
    "signing_key",
]

#: How long a session lasts, in seconds: then the password is asked again.
SESSION_SECONDS: Final = 12 * 3600
COOKIE: Final = "hookshield_dashboard"


@dataclass(frozen=True)
class Session:
    """Who is asking: a session id, when it was issued, and whether signed in."""

    sid: str
    issued: int
    signed_in: bool


class Sessions:
    """The sessions of one dashboard, signed with ``key``."""

    def __init__(self, key: bytes) -> None:
        self._key = key

    def of(self, request: Request) -> tuple[Session, Session | None]:
        """The request's session, and the one to set in its cookie when it needs a new one."""
        found = _read_cookie(request.headers.get("cookie"))
        if found is not None:
            sid, issued, signed_in, mac = found
            expected = self._mac(sid, str(issued), "1" if signed_in else "0")
            fresh = 0 <= time.time() - issued < SESSION_SECONDS
            if hmac.compare_digest(mac, expected) and fresh:
                return Session(sid, issued, signed_in), None
        session = new_session(signed_in=False)
        return session, session

    def token(self, session: Session) -> str:
        """The token every form of this session carries."""
        return self._mac("csrf", session.sid)[:32]

    def cookie(self, session: Session, request: Request) -> str:
        """The ``Set-Cookie`` value that holds ``session``, for the dashboard at ``request.base``."""
        flag = "1" if session.signed_in else "0"
        mac = self._mac(session.sid, str(session.issued), flag)
        secure = "; Secure" if request.secure else ""
        return (
            f"{COOKIE}={session.sid}.{session.issued}.{flag}.{mac}; Path={request.base or '/'}; "
            f"Max-Age={SESSION_SECONDS}; HttpOnly; SameSite=Strict{secure}"
        )

    def check_post(self, request: Request, session: Session) -> None:
        """Refuse (403) a POST that is not from a page of this dashboard in this session."""
        if not same_origin(request.headers):
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

    def _mac(self, *parts: str) -> str:
        return hmac.new(self._key, ".".join(parts).encode("ascii"), hashlib.sha256).hexdigest()


def signing_key(given: str | bytes | None, password: str | None) -> bytes:
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


def new_session(*, signed_in: bool) -> Session:
    """A new session, with a random id, issued now."""
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


def same_origin(headers: Headers) -> bool:
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


def here(request: Request) -> str:
    """The page asked for, below the mount point, with its query."""
    query = urllib.parse.urlencode(request.query, errors="surrogatepass")
    return request.path + ("?" + query if query else "")


#: A path of the dashboard: one slash, then no second one or backslash that would make it
#: another host's (//evil.test), and no space or control character.
_LOCAL: Final = re.compile(r"/(?![/\\])[^\s\x00-\x1f\x7f]{0,2000}")


def local(target: str) -> str:
    """``target`` if it is a page of the dashboard (``/delivery?id=...``), else ``/``."""
    return target if _LOCAL.fullmatch(target) else "/"
