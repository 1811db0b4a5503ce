"""A local HTTP receiver for ``hookshield listen`` and ``hookshield demo``.

Theory of operation: each POST is routed by path to a :class:`~hookshield.WebhookHandler`;
what its headers settle is refused before the body is read, as the framework adapters
do (:meth:`~hookshield.WebhookHandler.check_headers`: 401 without the sender's
credential or with a wrong token, 413 for a ``Content-Length`` over
``max_body_size``); its body is read bounded by ``max_body_size`` (413 while reading
a chunked body too; 411 when the request has neither, since the end of the body
cannot be known), passed to
``handler.handle`` with the headers, and answered with ``outcome.status`` and
``outcome.response_body()``, as the framework adapters answer, except that a
duplicate is answered ``{"ok":true,"duplicate":true}`` so that ``hookshield send``
can tell that the routes did not run.  Each connection
serves one request, and a stalled client is dropped after ``REQUEST_TIMEOUT``.
Standard library only.
"""

from __future__ import annotations

import dataclasses
import http.server
import socket
import urllib.parse
from collections.abc import Callable, Mapping
from typing import Any, Final

from .._core.errors import BodyTooLarge, WebhookError
from .._handling.handler import WebhookHandler, dispatcher_of
from .._handling.outcome import Outcome
from .._version import __version__

__all__ = ["REQUEST_TIMEOUT", "Received", "Receiver", "answer_body"]

#: A slow or stalled client must not hold a receiver thread for ever.
REQUEST_TIMEOUT: Final = 10.0


@dataclasses.dataclass(frozen=True)
class Received:
    """One request a receiver answered."""

    path: str
    client: str
    outcome: Outcome


class _TooLarge(Exception):
    pass


class _BadRequest(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class Receiver(http.server.ThreadingHTTPServer):
    """A local HTTP receiver: each POST is passed to the WebhookHandler for its path.

    ``routes`` maps a path to its handler; ``"*"`` serves every other path.
    ``report`` is called with each request's outcome just before the answer is sent
    (so a client that waits for its answer finds its request reported), and
    ``answered`` just after it.
    """

    daemon_threads = True

    def __init__(
        self,
        address: tuple[str, int],
        routes: Mapping[str, WebhookHandler],
        report: Callable[[Received], None],
        answered: Callable[[], None] | None = None,
    ) -> None:
        self.routes = dict(routes)
        self.report = report
        self.answered = answered
        super().__init__(address, _RequestHandler)

    def handler_for(self, path: str) -> WebhookHandler | None:
        """The handler serving ``path`` (the query string is ignored)."""
        path = urllib.parse.urlsplit(path).path or "/"
        return self.routes.get(path, self.routes.get("*"))

    @property
    def url(self) -> str:
        """The base URL the receiver answers on."""
        host, port = str(self.server_address[0]), self.server_address[1]
        shown = f"[{host}]" if ":" in host else host
        return f"http://{shown}:{port}"


class _RequestHandler(http.server.BaseHTTPRequestHandler):
    server: Receiver
    protocol_version = "HTTP/1.1"
    server_version = f"hookshield/{__version__}"
    timeout = REQUEST_TIMEOUT
    #: Whether the request's body has been read in full (see ``_linger``).
    _consumed = False

    def do_POST(self) -> None:
        self._consumed = False
        handler = self.server.handler_for(self.path)
        if handler is None:
            self._answer(404, b'{"error":"no receiver at this path"}')
            return
        refused = self._refusal(handler)
        if refused is not None:
            self._finish(refused)
            return
        try:
            body = self._read_body(handler.max_body_size)
            self._consumed = True
        except _TooLarge:
            outcome = _too_large(handler)
        except _BadRequest as exc:
            outcome = Outcome(status=exc.status, reason=str(exc))
        else:
            outcome = handler.handle(body, list(self.headers.items()))
        self._finish(outcome)

    def _finish(self, outcome: Outcome) -> None:
        self.server.report(Received(self.path, self.client_address[0], outcome))
        self._answer(outcome.status, answer_body(outcome))
        if self.server.answered is not None:
            self.server.answered()

    def do_GET(self) -> None:
        self._consumed = True
        self._answer(405, b'{"error":"webhooks are delivered with POST"}', allow="POST")

    def handle_expect_100(self) -> bool:
        # Refuse a body the headers condemn before the client sends it.
        handler = self.server.handler_for(self.path)
        refused = None if handler is None else self._refusal(handler)
        if refused is not None:
            self._finish(refused)
            return False
        return super().handle_expect_100()

    def _refusal(self, handler: WebhookHandler) -> Outcome | None:
        """The outcome refusing what the headers alone settle, before the body is read."""
        try:
            handler.check_headers(list(self.headers.items()))
        except BodyTooLarge:
            return _too_large(handler)
        except WebhookError as exc:
            return dispatcher_of(handler).rejected(exc)
        return None

    def _read_body(self, limit: int) -> bytes:
        length = self.headers.get("Content-Length")
        if length is not None:
            if not length.strip().isdigit():
                raise _BadRequest(400, "the Content-Length header is not a number")
            size = int(length)
            if size > limit:
                raise _TooLarge
            return self._exactly(size)
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            return self._chunked(limit)
        # Without a length the end of the body cannot be told on a kept-alive connection.
        raise _BadRequest(411, "a Content-Length header (or a chunked body) is required")

    def _exactly(self, size: int) -> bytes:
        data = self.rfile.read(size)
        if len(data) != size:
            raise _BadRequest(400, "the body is shorter than its Content-Length")
        return data

    def _chunked(self, limit: int) -> bytes:
        parts: list[bytes] = []
        total = 0
        while True:
            line = self.rfile.readline(1024)
            try:
                size = int(line.split(b";", 1)[0].strip(), 16)
            except ValueError:
                raise _BadRequest(400, "the chunked body is malformed") from None
            if size < 0:
                raise _BadRequest(400, "the chunked body is malformed")
            if size == 0:
                for _ in range(64):  # trailers, up to the empty line
                    if self.rfile.readline(8192).strip() == b"":
                        break
                return b"".join(parts)
            total += size
            if total > limit:
                raise _TooLarge
            parts.append(self._exactly(size))
            self.rfile.readline(8)  # the CRLF after each chunk

    def _answer(self, status: int, body: bytes, allow: str | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        if allow:
            self.send_header("Allow", allow)
        # One request per connection: a body left unread must not be taken for the next request.
        self.send_header("Connection", "close")
        self.close_connection = True
        self.end_headers()
        self.wfile.write(body)
        if not self._consumed:
            self._linger()

    def _linger(self) -> None:
        # Closing a socket with unread input sends a reset, which can destroy the answer
        # before the client reads it: end our side first, then drain a little input.
        try:
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_WR)
            self.connection.settimeout(0.5)
            for _ in range(16):
                if not self.connection.recv(65536):
                    break
        except OSError:
            pass

    def log_message(self, format: str, *args: Any) -> None:
        """Silenced: the command prints each delivery itself."""


#: What the receiver answers a duplicate: acknowledged, and said to be one.
DUPLICATE_ANSWER: Final = b'{"ok":true,"duplicate":true}'


def answer_body(outcome: Outcome) -> bytes:
    """``outcome.response_body()``, with a duplicate said to be one."""
    if outcome.duplicate and outcome.ok:
        return DUPLICATE_ANSWER
    return outcome.response_body()


def _too_large(handler: WebhookHandler) -> Outcome:
    error = BodyTooLarge(
        f"the body is larger than this receiver accepts ({handler.max_body_size} bytes)"
    )
    return Outcome(status=error.status, reason=str(error), error=error)
