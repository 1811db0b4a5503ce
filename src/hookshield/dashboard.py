"""A web page to see and steer an inbox, and the refusals kept for diagnosis.

    from hookshield import SQLiteInbox
    from hookshield.dashboard import wsgi_app, asgi_app

    inbox = SQLiteInbox("webhooks.db")  # or PostgresInbox(dsn, key=...), DjangoInbox()
    app = wsgi_app(inbox, password=os.environ["HOOKSHIELD_DASHBOARD_PASSWORD"])

``hookshield inbox serve --inbox webhooks.db`` (or ``--inbox postgresql://...``) serves
it on 127.0.0.1.  Mount it in
your own app under a prefix, behind your own authentication:

* Flask (any WSGI app): ``DispatcherMiddleware(app.wsgi_app, {"/inbox": wsgi_app(inbox)})``;
* Starlette and FastAPI: ``app.mount("/inbox", asgi_app(inbox))``;
* Django: ``re_path(r"^inbox/(?P<rest>.*)$", django_view(inbox))``.

The pages: the deliveries, newest first, filtered by state, sender, event type and
time received (the filter is in the URL, so a view can be bookmarked), with a bulk
retry that shows its count first; one delivery with its attempts, headers
(credentials hidden) and body, and Retry and Purge; an overview with counts, a chart
and each sender's Pause or Resume; the refused deliveries kept (``keep_refused=N``),
each with Re-check.  Every value a sender wrote is escaped; every change is a POST from the
dashboard's own page carrying its session's token; the pages run no script.  Standard
library only (Django is imported only by :func:`django_view`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from ._dashboard._app import Dashboard
from ._dashboard._serve import ASGIDashboard, WSGIDashboard
from ._dashboard._serve import django_view as _django_view
from ._durable.browse import ManagedInbox
from ._handling.handler import WebhookHandler

if TYPE_CHECKING:
    from django.http import HttpResponse

__all__ = ["ASGIDashboard", "Dashboard", "WSGIDashboard", "asgi_app", "django_view", "wsgi_app"]


def wsgi_app(
    inbox: ManagedInbox,
    *,
    password: str | None = None,
    prefix: str = "",
    handlers: Iterable[WebhookHandler] = (),
    session_key: str | bytes | None = None,
) -> WSGIDashboard:
    """The dashboard of ``inbox`` as a WSGI app.

    Mounted by ``DispatcherMiddleware`` (Flask, Werkzeug) it needs no ``prefix``: its
    links follow ``SCRIPT_NAME``.  ``prefix`` is for a server that hands it the whole
    path (``"/inbox"``: it answers only below it, and 404 elsewhere).  ``password`` is
    the built-in password (at least 12 characters), for when nothing in front
    authenticates; without one, whoever reaches it may use it.  ``handlers`` are the
    handlers whose kept refusals may be checked again.  ``session_key`` signs the
    sessions: give the same to every process that serves it (several gunicorn
    workers), else each process has its own (derived from the password if there is
    one).
    """
    return WSGIDashboard(
        Dashboard(inbox, handlers=handlers, password=password, session_key=session_key), prefix
    )


def asgi_app(
    inbox: ManagedInbox,
    *,
    password: str | None = None,
    prefix: str = "",
    handlers: Iterable[WebhookHandler] = (),
    session_key: str | bytes | None = None,
) -> ASGIDashboard:
    """The dashboard of ``inbox`` as an ASGI app; the options are :func:`wsgi_app`'s.

    Mounted by Starlette or FastAPI (``app.mount("/inbox", ...)``) its links follow
    the mount point (``root_path``).  Its blocking work runs in a thread.
    """
    return ASGIDashboard(
        Dashboard(inbox, handlers=handlers, password=password, session_key=session_key), prefix
    )


def django_view(
    inbox: ManagedInbox,
    *,
    password: str | None = None,
    handlers: Iterable[WebhookHandler] = (),
    session_key: str | bytes | None = None,
) -> Callable[..., HttpResponse]:
    """The dashboard of ``inbox`` as a Django view; the options are :func:`wsgi_app`'s.

    Route every path below the mount point to it, as ``rest``:
    ``re_path(r"^inbox/(?P<rest>.*)$", staff_member_required(django_view(inbox)))``.
    It is CSRF-exempt for Django's middleware: it checks each POST itself.
    """
    dashboard = Dashboard(inbox, handlers=handlers, password=password, session_key=session_key)
    view: Callable[..., Any] = _django_view(dashboard)
    return view
