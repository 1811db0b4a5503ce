"""``hookshield inbox serve`` and ``hookshield inbox refused``: the dashboard, and refusals.

Theory of operation: :func:`add_dashboard_actions` adds the two actions to ``hookshield
inbox``; ``cmd_inbox`` checks their arguments with :func:`check_args` before it opens
the inbox, then runs the action's function from :data:`DASHBOARD_ACTIONS` with it.

``serve`` runs :mod:`hookshield.dashboard` on the standard library's threaded WSGI
server.  The loopback rule: without a password it binds only to a loopback address
(127.0.0.0/8, ``::1``, or a name that resolves to those alone); any other address needs
the built-in password, from ``HOOKSHIELD_DASHBOARD_PASSWORD`` (or ``--password``, which
other users of the machine can read in the process list), and is refused otherwise.
``refused`` lists the refused deliveries an inbox kept (``keep_refused``), shows one,
and with ``--recheck`` verifies one again with a handler's current credentials.
"""

from __future__ import annotations

import argparse
import datetime
import os
import sys
import time
from collections.abc import Callable
from typing import Any, Final

from .._core.headers import Headers
from .._core.text import age, printable
from .._dashboard._serve import is_loopback, serve
from .._durable.browse import ManagedInbox
from .._durable.refused import RefusedDelivery, recheck
from ..dashboard import wsgi_app
from ._common import (
    EXIT_FAILED,
    EXIT_IO,
    EXIT_OK,
    EXIT_USAGE,
    CLIError,
    HelpFormatter,
    load_handler,
)
from ._output import Printer, table

__all__ = [
    "DASHBOARD_ACTIONS",
    "PASSWORD_ENV",
    "add_dashboard_actions",
    "check_args",
    "place",
    "reads_only",
]

#: Where ``serve`` reads the dashboard's password from.
PASSWORD_ENV: Final = "HOOKSHIELD_DASHBOARD_PASSWORD"  # noqa: S105 - a variable's name
DEFAULT_PORT: Final = 8025
#: How many of the latest refusals an id's start is looked for among.
_PREFIX_SCAN: Final = 1000


def add_dashboard_actions(actions: Any) -> list[tuple[argparse.ArgumentParser, str]]:
    """Add ``serve`` and ``refused`` to ``hookshield inbox``; each parser, with its --json help."""
    serve_parser = actions.add_parser(
        "serve",
        formatter_class=HelpFormatter,
        help="serve the inbox's dashboard in a browser",
        description="Serve the dashboard: the deliveries with filters, each delivery with "
        "its attempts, headers and body, Retry and Purge, an overview, and the refused "
        "deliveries kept.  On a loopback address (the default) it runs without a "
        "password; on any other it refuses to start without one, read from "
        f"${PASSWORD_ENV} (or --password).  Stop it with Ctrl-C.",
        epilog=f"""\
examples:
  hookshield inbox serve --inbox webhooks.db
  hookshield inbox serve --inbox webhooks.db --port 8080 --handler myapp.hooks:moco
  hookshield inbox serve --inbox postgresql://app@db.internal/app
  {PASSWORD_ENV}=... hookshield inbox serve --inbox webhooks.db --host 0.0.0.0""",
    )
    serve_parser.add_argument(
        "--host", default="127.0.0.1", help="the address to listen on (default: 127.0.0.1)"
    )
    serve_parser.add_argument(
        "--port",
        type=int,
        default=DEFAULT_PORT,
        help=f"the port to listen on, 0 for any free one (default: {DEFAULT_PORT})",
    )
    serve_parser.add_argument(
        "--handler",
        action="append",
        default=[],
        metavar="MODULE:NAME",
        help="a WebhookHandler whose refused deliveries may be checked again (repeatable)",
    )
    serve_parser.add_argument(
        "--password",
        help=f"the password to sign in with (default: ${PASSWORD_ENV}; prefer the "
        "variable: a command line is visible to every user of the machine)",
    )
    refused = actions.add_parser(
        "refused",
        formatter_class=HelpFormatter,
        help="the refused deliveries kept for diagnosis",
        description="The deliveries refused with a 4xx that an inbox opened with "
        "keep_refused=N kept, newest first: sender, answer, reason, peer and how much of "
        "the body was kept.  With an id, one of them with its headers (credentials "
        "hidden) and body; with --recheck, verify it again with that handler's current "
        "credentials: if it verifies now it becomes a pending delivery (exit 0), else "
        "the reason is printed (exit 1).",
        epilog="""\
examples:
  hookshield inbox refused --inbox webhooks.db
  hookshield inbox refused 01a22c2f --inbox webhooks.db
  hookshield inbox refused 01a22c2f --recheck myapp.hooks:moco --inbox webhooks.db
  hookshield inbox refused --inbox postgresql://app@db.internal/app""",
    )
    refused.add_argument("id", nargs="?", help="a kept refusal's id, or enough of its start")
    refused.add_argument(
        "--recheck", metavar="MODULE:NAME", help="verify it again with this WebhookHandler"
    )
    refused.add_argument(
        "--limit", type=int, default=50, metavar="N", help="show the newest N at most (default: 50)"
    )
    return [(serve_parser, "print the address served as JSON"), (refused, "print them as JSON")]


def check_args(args: argparse.Namespace) -> None:
    """Refuse a mistake on the command line before the inbox is opened."""
    if args.action == "serve":
        if not 0 <= args.port <= 65535:
            raise CLIError("--port must be between 0 and 65535")
        if not (_password(args) or is_loopback(args.host)):
            raise CLIError(
                f"--host {args.host} is not a loopback address, and the dashboard would "
                f"serve the inbox to anyone who reaches it: set {PASSWORD_ENV} (or give "
                "--password), or serve it on 127.0.0.1 behind your own authentication"
            )
    elif args.action == "refused" and args.recheck and not args.id:
        raise CLIError("--recheck checks one refusal: give its id")


def reads_only(args: argparse.Namespace) -> bool:
    """Whether the action only reads the inbox (then it is opened read-only)."""
    return args.action == "refused" and not args.recheck


def place(inbox: ManagedInbox) -> str:
    """Where ``inbox`` is, for a message: its file, or its database without the password."""
    return str(getattr(inbox, "path", None) or getattr(inbox, "where", None) or inbox)


def _password(args: argparse.Namespace) -> str | None:
    return args.password or os.environ.get(PASSWORD_ENV) or None


# -- serve --------------------------------------------------------------------------------


def cmd_serve(inbox: ManagedInbox, args: argparse.Namespace, out: Printer) -> int:
    """``hookshield inbox serve``: the dashboard, until Ctrl-C."""
    handlers = [load_handler(target) for target in args.handler]
    try:
        app = wsgi_app(inbox, password=_password(args), handlers=handlers)
    except ValueError as exc:  # a password too short, two handlers for one sender
        raise CLIError(str(exc)) from exc
    try:
        server = serve(app, args.host, args.port)
    except OSError as exc:
        raise CLIError(
            f"cannot listen on {args.host}:{args.port}: {exc.strerror or exc}", EXIT_IO
        ) from None
    host, port = str(server.server_address[0]), server.server_address[1]
    url = f"http://{f'[{host}]' if ':' in host else host}:{port}/"
    if args.json:
        out.json({"url": url, "password": app.dashboard.has_password})
    else:
        guard = "password required" if app.dashboard.has_password else "no password: loopback only"
        out.line(f"hookshield inbox serve: {url} ({guard}); Ctrl-C stops it")
    sys.stdout.flush()
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return EXIT_OK


# -- refused ------------------------------------------------------------------------------


def cmd_refused(inbox: ManagedInbox, args: argparse.Namespace, out: Printer) -> int:
    """``hookshield inbox refused [ID] [--recheck MODULE:NAME]``."""
    if args.id is None:
        return _list(inbox, args, out)
    refused = _find(inbox, args.id)
    if args.recheck is None:
        if args.json:
            out.json(_json(refused, whole=True))
        else:
            out.lines(_describe(refused))
        return EXIT_OK
    handler = load_handler(args.recheck)
    if handler.provider != refused.handler:
        raise CLIError(
            f"refusal {refused.id} was made by the {refused.handler!r} handler, not "
            f"{handler.provider!r}: give that sender's handler"
        )
    result = recheck(handler, inbox, refused)
    if result.stored is not None:
        inbox.forget_refused([refused.id])
    if args.json:
        out.json({"verified": result.verified, "stored": result.stored, "reason": result.reason})
    else:
        out.line(
            f"{refused.id}: {result.reason}" + (f" ({result.stored})" if result.stored else "")
        )
    return EXIT_OK if result.verified else EXIT_FAILED


def _list(inbox: ManagedInbox, args: argparse.Namespace, out: Printer) -> int:
    rows = inbox.refused(limit=max(1, args.limit))
    if args.json:
        out.json({"refused": [_json(row) for row in rows]})
        return EXIT_OK
    if not rows:
        out.line("no refused deliveries kept (open the inbox with keep_refused=N to keep them)")
        return EXIT_OK
    now = time.time()
    header = ("ID", "SENDER", "STATUS", "REFUSED FOR", "REASON", "PEER", "BODY", "AGE")
    cells = [
        (
            row.id,
            row.sender,
            str(row.status),
            row.error,
            _cut(printable(row.reason), 48),
            printable(row.peer or "-"),
            "-" if row.body_size is None else f"{len(row.body)}/{row.body_size}",
            age(now - row.received),
        )
        for row in rows
    ]
    out.lines(table(out, header, cells, [[()] * len(header) for _ in rows]))
    return EXIT_OK


def _find(inbox: ManagedInbox, text: str) -> RefusedDelivery:
    found = inbox.get_refused(text)
    if found is not None:
        return found
    matches = [row for row in inbox.refused(limit=_PREFIX_SCAN) if row.id.startswith(text)]
    if len(matches) > 1:
        raise CLIError(
            f"{text!r} is the start of {len(matches)} refusal ids: give more of the id", EXIT_USAGE
        )
    if not matches:
        raise CLIError(f"no kept refusal {text!r} in {place(inbox)}", EXIT_FAILED)
    return matches[0]


def _json(row: RefusedDelivery, *, whole: bool = False) -> dict[str, Any]:
    result: dict[str, Any] = {
        "id": row.id,
        "sender": row.sender,
        "handler": row.handler,
        "status": row.status,
        "error": row.error,
        "reason": row.reason,
        "peer": row.peer,
        "received": _iso(row.received),
        "body_size": row.body_size,
        "body_kept": len(row.body),
    }
    if whole:
        result["headers"] = [list(pair) for pair in row.headers]
        result["body"] = row.body.decode("utf-8", "replace")
    return result


def _describe(row: RefusedDelivery) -> list[str]:
    if row.body_size is None:
        kept = "not read: refused before its body"
    else:
        kept = f"{len(row.body)} of {row.body_size} bytes kept"
    return [
        f"id:           {row.id}",
        f"sender:       {row.sender} (handler {row.handler})",
        f"received:     {_iso(row.received)}",
        f"answer:       {row.status}, {row.error}",
        f"reason:       {printable(row.reason)}",
        f"peer:         {printable(row.peer or '-')}",
        "headers:",
        *(f"  {printable(name)}: {_shown(name, value)}" for name, value in row.headers),
        f"body ({kept}):",
        printable(row.body.decode("utf-8", "replace"), lines=True),
    ]


def _shown(name: str, value: str) -> str:
    # The signature is kept to check it again; a terminal need not show it (Headers
    # decides what is a credential, as for the dashboard and ``inbox show``).
    (redacted,) = Headers({name: ""}).redacted().values()
    return "<hidden>" if redacted else printable(value)


def _iso(when: float) -> str:
    return datetime.datetime.fromtimestamp(when, datetime.timezone.utc).isoformat()


def _cut(text: str, width: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


#: The actions this module adds, by name: each takes the opened inbox.
DASHBOARD_ACTIONS: Final[dict[str, Callable[[ManagedInbox, argparse.Namespace, Printer], int]]] = {
    "serve": cmd_serve,
    "refused": cmd_refused,
}
