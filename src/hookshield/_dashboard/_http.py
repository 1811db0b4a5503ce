"""What a request to the dashboard and its answer are, whatever serves it.

Theory of operation: an adapter (``_serve.py``) hands the dashboard a :class:`Request`
(the method, the path below the mount point, the mount point for its links, the first
value of each query and form field, the headers, whether it came over https) and sends
back the :class:`Response`.  A page that cannot be given is :class:`Refused`, with its
status.  Every answer carries :data:`SECURITY_HEADERS`.  Nothing here does I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final

from .._core.headers import Headers

__all__ = ["CSP", "MAX_FORM", "SECURITY_HEADERS", "Refused", "Request", "Response"]

#: The most bytes of a form read: the dashboard's forms are a few fields.
MAX_FORM: Final = 64 * 1024
#: No script at all, styles from the dashboard's own stylesheet only, forms to itself
#: only, never framed: an element injected would neither run nor load nor connect.
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


class Refused(Exception):
    """A request the dashboard answers with an error page: ``status`` and a message."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
