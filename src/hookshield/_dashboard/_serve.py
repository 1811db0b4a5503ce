"""Serving the dashboard: as a WSGI app, an ASGI app, a Django view, or on its own.

Theory of operation: each adapter turns its framework's request into a
:class:`~hookshield._dashboard._app.Request` (the method, the path below where the
dashboard is mounted, that mount point for its links, the first value of each query
and form field, the headers, whether it came over https) and sends back the
:class:`~hookshield._dashboard._app.Response`.  A form body is read up to
:data:`~hookshield._dashboard._app.MAX_FORM` bytes and no further (413 beyond).  The
dashboard's own work (SQLite reads and writes) is blocking: the ASGI app runs it in
one of hookshield's threads.

:func:`serve` is ``hookshield inbox serve``'s server: the standard library's WSGI
server (``wsgiref``), one thread per request.  It is meant for a person or two on a
loopback address or behind a proxy, not for load.  This module owns the translation;
what the dashboard allows is ``_app.py``'s.
"""

from __future__ import annotations

import ipaddress
import socket
import socketserver
import urllib.parse
import wsgiref.simple_server
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any, Final

from .._core.headers import Headers
from .._web.adapt import lifespan, wsgi_headers
from .._web.asgi_types import Receive, Scope, Send
from ._app import Dashboard
from ._http import MAX_FORM, SECURITY_HEADERS, Request, Response

if TYPE_CHECKING:
    from django.http import HttpRequest, HttpResponse

__all__ = ["ASGIDashboard", "WSGIDashboard", "django_view", "is_loopback", "serve"]

#: The most query fields read; a filter has six.
_MAX_FIELDS: Final = 32

StartResponse = Callable[[str, list[tuple[str, str]]], Any]


class WSGIDashboard:
    """The dashboard as a WSGI app (see :func:`hookshield.dashboard.wsgi_app`)."""

    def __init__(self, dashboard: Dashboard, prefix: str = "") -> None:
        self.dashboard = dashboard
        self.prefix = _prefix(prefix)

    def __call__(
        self, environ: Mapping[str, Any], start_response: StartResponse
    ) -> Iterable[bytes]:
        response = self.respond(environ)
        reason = _REASONS.get(response.status, "")
        start_response(f"{response.status} {reason}", list(response.headers))
        return [response.body]

    def respond(self, environ: Mapping[str, Any]) -> Response:
        """The answer to the WSGI request ``environ``."""
        path = _below(environ.get("PATH_INFO") or "/", self.prefix)
        base = environ.get("SCRIPT_NAME", "").rstrip("/") + self.prefix
        if path is None:
            return _plain(404, "not found")
        method = environ.get("REQUEST_METHOD", "GET")
        form: dict[str, str] = {}
        if method == "POST":
            length = environ.get("CONTENT_LENGTH") or "0"
            if not length.isdigit() or int(length) > MAX_FORM:
                return _plain(413, "the form is larger than the dashboard reads")
            form = _fields(environ["wsgi.input"].read(int(length)).decode("utf-8", "replace"))
        request = Request(
            method=method,
            path=path,
            base=base,
            query=_fields(environ.get("QUERY_STRING", "")),
            form=form,
            headers=wsgi_headers(environ),
            secure=environ.get("wsgi.url_scheme") == "https",
        )
        return self.dashboard.respond(request)


class ASGIDashboard:
    """The dashboard as an ASGI app (see :func:`hookshield.dashboard.asgi_app`)."""

    def __init__(self, dashboard: Dashboard, prefix: str = "") -> None:
        self.dashboard = dashboard
        self.prefix = _prefix(prefix)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await lifespan(receive, send)
            return
        if scope["type"] != "http":
            await send({"type": "websocket.close", "code": 1008})
            return
        response = await self._respond(scope, receive)
        headers = [(n.lower().encode("latin-1"), v.encode("latin-1")) for n, v in response.headers]
        headers.append((b"content-length", str(len(response.body)).encode("ascii")))
        await send({"type": "http.response.start", "status": response.status, "headers": headers})
        await send({"type": "http.response.body", "body": response.body})

    async def _respond(self, scope: Scope, receive: Receive) -> Response:
        from .._handling.asynchronous import run_in_thread

        root = scope.get("root_path", "") or ""
        full: str = scope["path"]
        # Starlette's Mount leaves the whole path in "path" and the mount point in
        # "root_path"; some servers give the path below the root already.
        inside = full[len(root) :] if root and full.startswith(root) else full
        path = _below(inside or "/", self.prefix)
        if path is None:
            return _plain(404, "not found")
        method: str = scope["method"]
        form: dict[str, str] = {}
        if method == "POST":
            body = bytearray()
            while True:
                message = await receive()
                if message["type"] == "http.disconnect":
                    return _plain(400, "the request ended early")
                body += message.get("body", b"")
                if len(body) > MAX_FORM:
                    return _plain(413, "the form is larger than the dashboard reads")
                if not message.get("more_body", False):
                    break
            form = _fields(body.decode("utf-8", "replace"))
        raw = [(n.decode("latin-1"), v.decode("latin-1")) for n, v in scope["headers"]]
        request = Request(
            method=method,
            path=path,
            base=root.rstrip("/") + self.prefix,
            query=_fields(scope.get("query_string", b"").decode("latin-1")),
            form=form,
            headers=Headers(raw),
            secure=scope.get("scheme") == "https",
        )
        return await run_in_thread(self.dashboard.respond, request)


def django_view(dashboard: Dashboard) -> Callable[..., HttpResponse]:
    """The dashboard as a Django view taking the rest of the path as ``rest``."""
    from django.http import HttpResponse
    from django.views.decorators.csrf import csrf_exempt

    # CSRF-exempt: the dashboard checks each POST itself (same origin, and its own
    # per-session token), and Django's token is not in its forms.
    @csrf_exempt
    def view(request: HttpRequest, rest: str = "") -> HttpResponse:
        base = request.path[: len(request.path) - len(rest)].rstrip("/")
        form = {k: request.POST.get(k, "") for k in list(request.POST)[:_MAX_FIELDS]}
        query = {k: request.GET.get(k, "") for k in list(request.GET)[:_MAX_FIELDS]}
        answer = dashboard.respond(
            Request(
                method=request.method or "GET",
                path="/" + rest,
                base=base,
                query=query,
                form=form if request.method == "POST" else {},
                headers=wsgi_headers(request.META),
                secure=request.is_secure(),
            )
        )
        response = HttpResponse(answer.body, status=answer.status)
        for name, value in answer.headers:
            if name.lower() == "set-cookie":
                # Django sends (and its test client reads) cookies from .cookies.
                response.cookies.load(value)
            else:
                response[name] = value
        return response

    return view


# -- the command line's server ------------------------------------------------------------


class _Server(socketserver.ThreadingMixIn, wsgiref.simple_server.WSGIServer):
    daemon_threads = True


class _Quiet(wsgiref.simple_server.WSGIRequestHandler):
    #: A stalled client is dropped, rather than hold its thread for ever.
    timeout = 30

    def log_message(self, format: str, *args: Any) -> None:
        pass  # a dashboard's page views are not worth a line each


def serve(app: WSGIDashboard, host: str, port: int) -> wsgiref.simple_server.WSGIServer:
    """A threaded WSGI server for ``app`` bound to ``host`` and ``port``; call ``serve_forever``."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    server_class = type("DashboardServer", (_Server,), {"address_family": family})
    server: wsgiref.simple_server.WSGIServer = server_class((host, port), _Quiet)
    server.set_app(app)
    return server


def is_loopback(host: str) -> bool:
    """Whether ``host`` names only loopback addresses (127.0.0.0/8, ::1).

    A name is resolved, and is loopback only if every address it has is.
    """
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        pass
    try:
        found = socket.getaddrinfo(host, None)
    except OSError:
        return False
    addresses = {info[4][0] for info in found}
    return bool(addresses) and all(
        ipaddress.ip_address(str(address).split("%")[0]).is_loopback for address in addresses
    )


# -- pieces --------------------------------------------------------------------------------


def _prefix(prefix: str) -> str:
    if not isinstance(prefix, str):
        raise TypeError(f"prefix must be a str, not {type(prefix).__name__}")
    prefix = prefix.rstrip("/")
    if prefix and not prefix.startswith("/"):
        raise ValueError(f"prefix must start with '/': {prefix!r}")
    return prefix


def _below(path: str, prefix: str) -> str | None:
    """``path`` below ``prefix`` (``"/"`` at least), or ``None`` outside it."""
    if not prefix:
        return path or "/"
    if path == prefix:
        return "/"
    if path.startswith(prefix + "/"):
        return path[len(prefix) :]
    return None


def _fields(text: str) -> dict[str, str]:
    """The first value of each field of a query string or form body, bounded."""
    try:
        pairs = urllib.parse.parse_qsl(text, keep_blank_values=True, max_num_fields=_MAX_FIELDS)
    except ValueError:  # too many fields
        return {}
    fields: dict[str, str] = {}
    for name, value in pairs:
        fields.setdefault(name, value)
    return fields


def _plain(status: int, message: str) -> Response:
    headers = (("Content-Type", "text/plain; charset=utf-8"), *SECURITY_HEADERS)
    return Response(status, headers, message.encode("utf-8"))


_REASONS: Final = {
    200: "OK",
    303: "See Other",
    400: "Bad Request",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    409: "Conflict",
    413: "Content Too Large",
    500: "Internal Server Error",
}
