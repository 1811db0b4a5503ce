"""``hookshield worker`` and ``hookshield inbox``: run and inspect a durable inbox.

Theory of operation: :func:`add_commands` adds the two commands to the ``hookshield``
parser, each with its function in ``args.run``; a function takes the parsed
arguments and a :class:`~hookshield.cli._output.Printer` and returns the exit code
(0 done, 1 nothing matched, 2 usage or configuration error, 3 the inbox file cannot
be used); a mistake is a :class:`~hookshield.cli._common.CLIError`.  Every command
opens the inbox named by ``--inbox`` (or ``$HOOKSHIELD_INBOX``), an SQLite file or a
``postgresql://`` URL (:func:`~hookshield.open_inbox`), and only one that exists: a
mistyped path must not become a new, empty inbox (``inbox init`` makes one).  ``ls`` and ``show``
open it read-only.  Nothing here runs a route itself: ``worker`` hands that to
:func:`~hookshield.run_worker`.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import datetime
import logging
import math
import os
import re
import signal
import sqlite3
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any, Final

from .._core.headers import Headers
from .._core.text import age
from .._durable.browse import DeliveryFilter, ManagedInbox, moment
from .._durable.inbox import STATES, State, StoredDelivery
from .._durable.inboxes import is_postgres_url, open_inbox
from .._durable.worker import DEFAULT_STOP_TIMEOUT, Retry, handler_map, run_worker
from ._common import (
    EXIT_FAILED,
    EXIT_IO,
    EXIT_OK,
    EXIT_USAGE,
    CLIError,
    HelpFormatter,
    load_handler,
)
from ._dashboard import DASHBOARD_ACTIONS, add_dashboard_actions, check_args, place, reads_only
from ._output import Printer, printable, table

__all__ = ["add_commands", "cmd_inbox", "cmd_worker"]

_UNITS: Final = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
#: Rows deleted or requeued per transaction: the web side's writes wait no longer.
_BATCH: Final = 500
#: How many of the ids an ambiguous prefix matches an error lists.
_SHOWN_IDS: Final = 3


def add_commands(commands: Any) -> None:
    """Add ``worker`` and ``inbox`` to the ``hookshield`` subcommands (argparse)."""
    worker = commands.add_parser(
        "worker",
        formatter_class=HelpFormatter,
        help="run the deliveries stored in an inbox",
        description="Lease each due delivery of the inbox, verify it again and run its "
        "routes; retry failures with backoff and move them to dead-letter after "
        "--max-attempts.  The first SIGTERM or SIGINT (Ctrl-C) stops it after the current "
        "delivery; a second stops it at once, with exit code 130 (SIGINT) or 143 (SIGTERM), "
        "and the delivery in hand runs again once its lease ends.  The inbox must exist (the web app creates it with its first "
        "delivery) unless --create is given.",
        epilog="""\
examples:
  hookshield worker myapp.hooks:mindpeeker myapp.hooks:moco --inbox webhooks.db
  hookshield worker myapp.hooks:mindpeeker --inbox webhooks.db --lease 600 --max-attempts 5
  hookshield worker myapp.hooks:mindpeeker --inbox webhooks.db --burst --json
  hookshield worker myapp.hooks:moco --inbox postgresql://app@db.internal/app --concurrency 8""",
    )
    worker.add_argument(
        "handlers", nargs="+", metavar="MODULE:NAME", help="a WebhookHandler to run"
    )
    _inbox_option(worker)
    worker.add_argument(
        "--create", action="store_true", help="create the inbox file if it does not exist"
    )
    worker.add_argument(
        "--lease",
        type=float,
        default=300.0,
        metavar="SECONDS",
        help="how long a delivery is held before another worker may run it; longer "
        "than your slowest route (default: 300)",
    )
    worker.add_argument(
        "--max-attempts",
        type=int,
        default=Retry().max_attempts,
        metavar="N",
        help=f"attempts before dead-letter (default: {Retry().max_attempts})",
    )
    worker.add_argument(
        "--poll",
        type=float,
        default=0.5,
        metavar="SECONDS",
        help="the wait between looks when nothing is due (default: 0.5)",
    )
    worker.add_argument("--burst", action="store_true", help="stop once nothing is due")
    worker.add_argument(
        "--concurrency",
        type=int,
        default=1,
        metavar="N",
        help="deliveries run at once, each in a thread of its own with its own lease; "
        "async routes run on one event loop per thread (default: 1)",
    )
    worker.add_argument(
        "--stop-timeout",
        type=float,
        default=DEFAULT_STOP_TIMEOUT,
        metavar="SECONDS",
        help="how long the first SIGTERM or SIGINT waits for the deliveries in hand "
        f"(default: {DEFAULT_STOP_TIMEOUT:g})",
    )
    _json_option(worker, "print the final counts as JSON")
    worker.set_defaults(run=cmd_worker)

    inbox = commands.add_parser(
        "inbox",
        formatter_class=HelpFormatter,
        help="list, show, retry or purge stored deliveries",
        description="Inspect and repair a durable inbox.  Each action takes --inbox PATH "
        "(default: $HOOKSHIELD_INBOX), an inbox that exists, and --json.",
        epilog="""\
examples:
  hookshield inbox ls --inbox webhooks.db
  hookshield inbox ls --state dead --sender moco --since 2h --inbox webhooks.db
  hookshield inbox show 01a22c2f --inbox webhooks.db
  hookshield inbox retry --dead --inbox webhooks.db
  hookshield inbox retry --state dead --type invoice.paid --dry-run --inbox webhooks.db
  hookshield inbox purge --done --older-than 7d --inbox webhooks.db
  hookshield inbox refused --inbox webhooks.db
  hookshield inbox serve --inbox webhooks.db
  hookshield inbox ls --state dead --inbox postgresql://app@db.internal/app""",
    )
    actions = inbox.add_subparsers(dest="action", metavar="ACTION", required=True)
    ls = actions.add_parser(
        "ls",
        formatter_class=HelpFormatter,
        help="a table of stored deliveries, oldest first",
        description="A table of the newest stored deliveries the filters select, oldest "
        "first, and the count in each state.",
        epilog="""\
examples:
  hookshield inbox ls --inbox webhooks.db
  hookshield inbox ls --state dead --limit 10 --inbox webhooks.db --json
  hookshield inbox ls --sender moco --type invoice.* --since 2026-05-01 --until 12h --inbox webhooks.db""",
    )
    ls.add_argument("--state", choices=STATES, help="only deliveries in this state (default: any)")
    _filter_options(ls)
    ls.add_argument(
        "--limit", type=int, default=50, metavar="N", help="show the newest N at most (default: 50)"
    )
    show = actions.add_parser(
        "show",
        formatter_class=HelpFormatter,
        help="one stored delivery, headers and body",
        description="One stored delivery: its state, headers (credentials hidden) and body.",
        epilog="""\
examples:
  hookshield inbox show 01a22c2f9c674dcc5f79ba5b --inbox webhooks.db
  hookshield inbox show 01a22c2f --inbox webhooks.db --json""",
    )
    show.add_argument("id", help="a delivery id, or enough of its start to name one")
    retry = actions.add_parser(
        "retry",
        formatter_class=HelpFormatter,
        help="make deliveries due again, attempts reset",
        description="Make a delivery, every dead-letter one, or those the filters select "
        "(dead-letter ones unless --state says otherwise) pending and due now with their "
        "attempts reset.  A delivery a worker holds leased is left to that worker.  "
        "--dry-run prints how many would be retried and changes nothing.",
        epilog="""\
examples:
  hookshield inbox retry 01a22c2f --inbox webhooks.db
  hookshield inbox retry --dead --inbox webhooks.db
  hookshield inbox retry --sender moco --since 2026-05-01 --dry-run --inbox webhooks.db
  hookshield inbox retry --state done --since 2026-05-01 --until 2026-05-02 --inbox webhooks.db""",
    )
    which = retry.add_mutually_exclusive_group()
    which.add_argument("id", nargs="?", help="a delivery id, or enough of its start to name one")
    which.add_argument("--dead", action="store_true", help="every dead-letter delivery")
    which.add_argument(
        "--state",
        choices=("dead", "done", "pending"),
        help="those in this state that the filters select (default with a filter: dead)",
    )
    _filter_options(retry)
    _dry_run_option(retry, "retried")
    seal = actions.add_parser(
        "seal",
        formatter_class=HelpFormatter,
        help="vouch for deliveries stored without a seal",
        description="Seal deliveries as they stand now, with the inbox's key: for rows "
        "an older hookshield stored, which a worker refuses until then.  Check them first "
        "(inbox show); then inbox retry runs a dead-lettered one again.",
        epilog="""\
examples:
  hookshield inbox seal 01a22c2f --inbox webhooks.db""",
    )
    seal.add_argument(
        "ids", nargs="+", metavar="ID", help="delivery ids, or enough of each one's start"
    )
    purge = actions.add_parser(
        "purge",
        formatter_class=HelpFormatter,
        help="delete old deliveries",
        description="Delete done or dead-letter deliveries received before --older-than "
        "that the filters select.  --dry-run prints how many would be deleted and "
        "deletes nothing.",
        epilog="""\
examples:
  hookshield inbox purge --done --inbox webhooks.db
  hookshield inbox purge --done --dead --older-than 30d --inbox webhooks.db
  hookshield inbox purge --dead --sender moco --older-than 1d --dry-run --inbox webhooks.db""",
    )
    purge.add_argument("--done", action="store_true", help="delete done deliveries")
    purge.add_argument("--dead", action="store_true", help="delete dead-letter deliveries")
    purge.add_argument(
        "--older-than", default="7d", metavar="AGE", help="age: 30m, 12h, 7d, 2w (default: 7d)"
    )
    _filter_options(purge)
    _dry_run_option(purge, "deleted")
    pause = actions.add_parser(
        "pause",
        formatter_class=HelpFormatter,
        help="stop running a sender's deliveries, on every worker",
        description="Pause a sender: no worker leases its deliveries until it is resumed "
        "(they wait in the inbox, and keep arriving).  The rest run on.  A delivery a "
        "worker runs already is finished.",
        epilog="""\
examples:
  hookshield inbox pause moco --inbox webhooks.db
  hookshield inbox resume moco --inbox webhooks.db""",
    )
    pause.add_argument("sender", help="the sender's name, as `inbox ls` shows it")
    resume = actions.add_parser(
        "resume",
        formatter_class=HelpFormatter,
        help="run a paused sender's deliveries again",
        description="Resume a paused sender: workers lease its deliveries again.",
        epilog="""\
examples:
  hookshield inbox resume moco --inbox postgresql://app@db.internal/app""",
    )
    resume.add_argument("sender", help="the sender's name")
    init = actions.add_parser(
        "init",
        formatter_class=HelpFormatter,
        help="create the inbox's tables (PostgreSQL) or file (SQLite)",
        description="Create the inbox, and in PostgreSQL the de-duplication store's table "
        "too, for a team whose application's database user may not create tables (run it "
        "as one who may; the application creates them on first use otherwise).  With "
        "--sql, print the SQL instead, to run by hand; no database is needed then.",
        epilog="""\
examples:
  hookshield inbox init --inbox postgresql://owner@db.internal/app
  hookshield inbox init --sql > hookshield.sql""",
    )
    init.add_argument(
        "--sql", action="store_true", help="print the SQL that creates the tables, and stop"
    )
    for action, what in (
        (pause, "print the result as JSON"),
        (resume, "print the result as JSON"),
        (init, "print the result as JSON"),
        (ls, "print the deliveries as JSON"),
        (show, "print the delivery as JSON"),
        (retry, "print the result as JSON"),
        (seal, "print the result as JSON"),
        (purge, "print the result as JSON"),
    ):
        _inbox_option(action)
        _json_option(action, what)
    for action, what in add_dashboard_actions(actions):
        _inbox_option(action)
        _json_option(action, what)
    inbox.set_defaults(run=cmd_inbox)


def _inbox_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--inbox",
        default=os.environ.get("HOOKSHIELD_INBOX"),
        metavar="PATH|URL",
        help="the SQLite inbox file, or a postgresql:// URL (default: $HOOKSHIELD_INBOX); "
        "a PostgreSQL inbox needs its key in HOOKSHIELD_INBOX_KEY",
    )


def _json_option(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument("--json", action="store_true", help=what + ", for scripts")


def _filter_options(parser: argparse.ArgumentParser) -> None:
    """--sender, --type, --since and --until: the filters ls, retry and purge share."""
    parser.add_argument("--sender", metavar="NAME", help="only deliveries of this sender (moco)")
    parser.add_argument(
        "--type",
        metavar="TYPE",
        help="only deliveries carrying this event type, or a prefix ending in * (invoice.*)",
    )
    for name, what in (("since", "at or after"), ("until", "before")):
        parser.add_argument(
            f"--{name}",
            metavar="WHEN",
            help=f"only deliveries received {what} WHEN: a date (2026-05-01), a date and "
            "time (2026-05-01T10:30, UTC unless it names a zone) or an age (12h, 7d)",
        )


def _dry_run_option(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument(
        "--dry-run", action="store_true", help=f"print how many would be {what}, and stop"
    )


def _filtered(args: argparse.Namespace) -> bool:
    """Whether any of --sender, --type, --since, --until was given."""
    return any(getattr(args, name, None) for name in ("sender", "type", "since", "until"))


def _where(
    args: argparse.Namespace, state: State | None, *, until: float | None = None
) -> DeliveryFilter:
    """The filter the options name, in ``state``; ``until`` bounds it further."""
    now = time.time()
    times: dict[str, float | None] = {}
    for name in ("since", "until"):
        text = getattr(args, name, None)
        try:
            times[name] = None if text is None else moment(text, now=now)
        except ValueError as exc:
            raise CLIError(f"--{name}: {exc}") from None
    if until is not None:
        times["until"] = until if times["until"] is None else min(until, times["until"])
    try:
        return DeliveryFilter(
            state=state,
            sender=args.sender or None,
            event_type=args.type or None,
            since=times["since"],
            until=times["until"],
        )
    except ValueError as exc:
        raise CLIError(str(exc)) from None


def _open(args: argparse.Namespace, hint: str = "", **options: Any) -> ManagedInbox:
    """The inbox ``--inbox`` names, which must exist (unless ``create=True``).

    An SQLite file, or a ``postgresql://`` URL (see :func:`~hookshield.open_inbox`).
    """
    if not args.inbox:
        raise CLIError("name the inbox: --inbox PATH or URL, or set HOOKSHIELD_INBOX")
    with _inbox_errors(args.inbox, hint):
        try:
            inbox = open_inbox(args.inbox, **options)
            inbox.counts()  # opened now: a missing or other key is told here, not in a loop
        except ValueError as exc:  # "", ":memory:", a missing or other key
            raise CLIError(f"--inbox: {exc}") from exc
        return inbox


@contextlib.contextmanager
def _inbox_errors(path: str, hint: str = "") -> Iterator[None]:
    """Turn a failure of the inbox file into one line and exit 3 (an I/O error).

    A missing file, a directory, a text file, a truncated database, one without the
    inbox's table, a file locked too long or an unwritable directory: each is an
    :class:`OSError` or a :class:`sqlite3.Error`, and none is worth a traceback.
    """
    try:
        yield
    except BrokenPipeError:  # the reader went away (| head): not the inbox's fault
        raise
    except OSError as exc:
        if exc.filename is None:  # a message that names the path already
            message = f"--inbox: {exc}"
        elif isinstance(exc, FileNotFoundError):
            message = f"--inbox {path}: the file does not exist"
        else:  # the inbox, or a file beside it (its -writer lock file)
            where = "" if os.fspath(exc.filename) == path else f"{os.fspath(exc.filename)}: "
            message = f"--inbox {path}: {where}{exc.strerror or exc}"
        hint = hint if isinstance(exc, FileNotFoundError) else ""
        raise CLIError(message + hint, EXIT_IO) from None
    except sqlite3.Error as exc:
        text = str(exc)
        if "is not a hookshield inbox" not in text:  # that one names the file already
            text = f"{path}: {text}"
        raise CLIError(f"--inbox {text}", EXIT_IO) from None
    except Exception as exc:
        if not type(exc).__module__.startswith("psycopg"):
            raise
        # PostgreSQL's errors name the server as user@host:port/db (hookshield.postgres
        # says what failed), never with the password; the URL is not repeated here.
        raise CLIError(f"--inbox: {' '.join(str(exc).split())}", EXIT_IO) from None


# -- worker -------------------------------------------------------------------------

#: Said when the worker's inbox does not exist and --create was not given.
_NO_INBOX_HINT: Final = (
    "; the web app creates it with its first delivery (check the path), "
    "or pass --create to make an empty one now"
)


def cmd_worker(args: argparse.Namespace, out: Printer) -> int:
    """``hookshield worker``: run the inbox's deliveries until SIGTERM or SIGINT."""
    handlers = [load_handler(target) for target in args.handlers]
    try:
        handler_map(handlers)
    except ValueError as exc:  # two handlers for one sender
        raise CLIError(str(exc)) from exc
    if args.max_attempts < 1 or not all(0 < value < math.inf for value in (args.lease, args.poll)):
        raise CLIError("--max-attempts, --lease and --poll must be positive (and finite)")
    if args.concurrency < 1 or not 0 <= args.stop_timeout < math.inf:
        raise CLIError("--concurrency must be at least 1, and --stop-timeout finite")
    # --create makes a missing file only: an existing one must be an inbox already (the
    # dedupe store's database is not to gain an inbox's table).  In PostgreSQL it makes
    # the inbox's tables when they are missing.
    create = args.create and bool(args.inbox) and not os.path.lexists(args.inbox)
    if args.inbox and is_postgres_url(args.inbox):
        create = args.create
    inbox = _open(args, lease=args.lease, create=create, hint=_NO_INBOX_HINT)
    with _inbox_errors(args.inbox):
        inbox.counts()  # a file that is no inbox is refused now, not retried for ever
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    try:
        stats = run_worker(
            inbox,
            *handlers,
            retry=Retry(max_attempts=args.max_attempts),
            poll=args.poll,
            burst=args.burst,
            concurrency=args.concurrency,
            stop_timeout=args.stop_timeout,
        )
    except KeyboardInterrupt:
        # A second Ctrl-C ended the delivery in hand (the worker logged it).  Its lease
        # was not settled, so it runs again once the lease ends: nothing is lost.  A
        # second SIGTERM ends the process the same way, with SystemExit(143).
        return 128 + signal.SIGINT
    if args.json:
        out.json(
            {"done": stats.done, "retried": stats.retried, "dead": stats.dead, "lost": stats.lost}
        )
    else:
        out.line(
            f"hookshield worker: {stats.done} done, {stats.retried} retried, "
            f"{stats.dead} dead-lettered"
        )
    return EXIT_OK


# -- inbox --------------------------------------------------------------------------


def cmd_inbox(args: argparse.Namespace, out: Printer) -> int:
    """``hookshield inbox ls|show|retry|seal|purge|refused|serve|pause|resume|init``."""
    if args.action in DASHBOARD_ACTIONS:
        check_args(args)
    if args.action == "purge":  # mistakes on the command line first, then the file
        if not (args.done or args.dead):
            raise CLIError("say what to purge: --done, --dead or both")
        seconds(args.older_than)
    if args.action == "init":
        return _init(args, out)
    if args.action in ("pause", "resume"):
        _sender_name(args.sender)
    if args.action == "retry" and not (args.id or args.dead or args.state or _filtered(args)):
        raise CLIError(
            "say what to retry: a delivery id, --dead, or a filter (--state, --sender ...)"
        )
    if args.action == "retry" and args.id and _filtered(args):
        raise CLIError("give a delivery id or a filter, not both")
    # ls and show only read: they open the file read-only, and change nothing in it.
    read_only = args.action in ("ls", "show") or (
        args.action in DASHBOARD_ACTIONS and reads_only(args)
    )
    inbox = _open(args, create=False, read_only=read_only)
    with _inbox_errors(args.inbox):
        if args.action in DASHBOARD_ACTIONS:
            return DASHBOARD_ACTIONS[args.action](inbox, args, out)
        action: Callable[[ManagedInbox, argparse.Namespace, Printer], int] = {
            "ls": _ls,
            "show": _show,
            "retry": _retry,
            "seal": _seal,
            "purge": _purge,
            "pause": _pause,
            "resume": _resume,
        }[args.action]
        return action(inbox, args, out)


def _find(inbox: ManagedInbox, text: str) -> StoredDelivery:
    """The delivery whose id is ``text``, or the one whose id starts with it."""
    if not text:
        raise CLIError("give a delivery id, or enough of its start to name one")
    row = inbox.get(text)
    if row is not None:
        return row
    ids, count = inbox.find_ids(text, limit=_SHOWN_IDS)
    if count > 1:
        listed = ", ".join(ids) + (", ..." if count > len(ids) else "")
        raise CLIError(
            f"{text!r} is the start of {count} delivery ids ({listed}): give more of the id",
            EXIT_USAGE,
        )
    row = inbox.get(ids[0]) if ids else None
    if row is None:
        raise CLIError(f"no delivery {text!r} in {place(inbox)}", EXIT_FAILED)
    return row


def _row_json(row: StoredDelivery, *, whole: bool = False) -> dict[str, Any]:
    """A stored delivery for ``--json``; ``whole`` adds its headers and body."""
    result: dict[str, Any] = {
        "id": row.id,
        "sender": row.sender,
        "handler": row.handler,
        "state": row.state,
        "attempts": row.attempts,
        "event_types": list(row.event_types),
        "events": None if row.events is None else list(row.events),
        "received": _iso(row.received),
        "next_attempt": _iso(row.next_attempt) if row.state in ("pending", "leased") else None,
        "last_error": row.last_error,
    }
    if whole:
        result["headers"] = [[name, _shown(name, value)] for name, value in row.headers]
        try:
            result["body"] = row.body.decode("utf-8")
        except UnicodeDecodeError:
            result["body_base64"] = base64.b64encode(row.body).decode("ascii")
    return result


def _iso(when: float) -> str:
    return datetime.datetime.fromtimestamp(when, datetime.timezone.utc).isoformat()


def _ls(inbox: ManagedInbox, args: argparse.Namespace, out: Printer) -> int:
    where = _where(args, args.state)
    # The newest N the filters select, shown oldest first, as a log reads.
    rows = inbox.find(where, limit=max(1, args.limit))[::-1]
    counts = inbox.counts()
    paused = inbox.paused()
    if args.json:
        out.json(
            {
                "deliveries": [_row_json(row) for row in rows],
                "counts": counts,
                "paused": {sender: _iso(since) for sender, since in paused.items()},
            }
        )
        return EXIT_OK
    if paused:
        out.line("paused (not run until resumed): " + ", ".join(map(printable, paused)))
    if not rows:
        if _filtered(args):
            out.line("no deliveries match")
        else:
            out.line("no deliveries" + (f" in state {args.state}" if args.state else ""))
        return EXIT_OK
    now = time.time()
    header = ("ID", "SENDER", "EVENTS", "STATE", "ATTEMPTS", "LAST ERROR", "AGE")
    cells = [
        (
            row.id,
            row.sender,
            _cut(printable(",".join(row.event_types)) or "-", 40),
            row.state,
            str(row.attempts),
            _cut(printable(row.last_error or "-"), 48),
            age(now - row.received),
        )
        for row in rows
    ]
    colour = {"dead": ("red",), "done": ("green",), "leased": ("yellow",), "pending": ()}
    styles = [[(), (), (), colour[row.state], (), (), ()] for row in rows]
    out.lines(table(out, header, cells, styles))
    out.line(", ".join(f"{counts[state]} {state}" for state in STATES))
    return EXIT_OK


def _show(inbox: ManagedInbox, args: argparse.Namespace, out: Printer) -> int:
    row = _find(inbox, args.id)
    if args.json:
        out.json(_row_json(row, whole=True))
    else:
        out.lines(describe(row))
    return EXIT_OK


def describe(row: StoredDelivery) -> list[str]:
    """A stored delivery as lines of text; a credential header's value is hidden."""
    when = datetime.datetime.fromtimestamp(row.received, datetime.timezone.utc)
    lines = [
        f"id:           {printable(row.id)}",
        f"sender:       {row.sender} (handler {row.handler})",
        f"received:     {when.isoformat(timespec='seconds')}",
        f"state:        {row.state}, {row.attempts} attempt(s)",
        f"events:       {printable(', '.join(row.event_types)) or '-'}",
    ]
    if row.events is not None:
        lines.append(f"to run:       {len(row.events)} event(s) of the batch")
    if row.last_error:
        lines.append(f"last error:   {printable(row.last_error)}")
    if row.seal is None:
        lines.append("seal:         none: a worker refuses it (see `hookshield inbox seal`)")
    lines.append("headers:")
    lines += [f"  {printable(name)}: {_shown(name, value)}" for name, value in row.headers]
    lines.append(f"body ({len(row.body)} bytes):")
    lines.append(printable(_cut(row.body.decode("utf-8", "replace"), 4000), lines=True))
    return lines


def _shown(name: str, value: str) -> str:
    # A signature is kept to verify again (and a row stored by an older version may
    # hold a token), but a terminal and its scrollback need not show it.  Headers
    # decides what is a credential (tokens, signatures, cookies ...), as it does for
    # its repr in logs; asked about an empty value, it answers a non-empty one only
    # for a credential.
    (redacted,) = Headers({name: ""}).redacted().values()
    return "<hidden>" if redacted else printable(value)


def _retry(inbox: ManagedInbox, args: argparse.Namespace, out: Printer) -> int:
    if args.id:
        row = _find(inbox, args.id)
        if inbox.requeue([row.id]) == 0:
            if inbox.get(row.id) is None:  # purged meanwhile
                raise CLIError(f"no delivery {args.id!r} in {place(inbox)}", EXIT_FAILED)
            # leased: a worker runs it now, and settles it when done
            raise CLIError(
                f"delivery {row.id!r} is leased to a worker now; retry it once it is done, "
                "dead or pending again",
                EXIT_FAILED,
            )
        if args.json:
            out.json({"requeued": 1, "ids": [row.id]})
        else:
            out.line(f"{row.id}: pending, due now")
        return EXIT_OK
    state: State = args.state or "dead"
    where = _where(args, state)
    total = inbox.count(where)
    if args.dry_run:
        return _would(out, args, total, "retried", [where])
    done = 0
    after: str | None = ""
    while after is not None:  # ids forward: ends though requeued rows may die again
        count, after = inbox.requeue_matching(where, after=after, limit=_BATCH)
        done += count
        _progress("requeued", done, total)
    if args.json:
        out.json({"requeued": done})
    else:
        which = "dead-letter deliveries" if state == "dead" else f"{state} deliveries"
        out.line(f"{done} {which} are pending again, due now")
    return EXIT_OK


def _would(
    out: Printer, args: argparse.Namespace, count: int, what: str, wheres: list[DeliveryFilter]
) -> int:
    """What --dry-run prints: how many deliveries the action would change, and which."""
    if args.json:
        out.json({"dry_run": True, "matching": count})
    else:
        described = "; ".join(_described(where) for where in wheres)
        out.line(f"{count} deliveries would be {what} ({described}); nothing was changed")
    return EXIT_OK


def _described(where: DeliveryFilter) -> str:
    parts = [f"state {where.state}"] if where.state else []
    for name, value in (("sender", where.sender), ("type", where.event_type)):
        if value:
            parts.append(f"{name} {printable(value)}")
    for name, when in (("since", where.since), ("until", where.until)):
        if when is not None:
            parts.append(f"{name} {_iso(when)}")
    return ", ".join(parts)


def _seal(inbox: ManagedInbox, args: argparse.Namespace, out: Printer) -> int:
    ids = [_find(inbox, given).id for given in args.ids]
    sealed = inbox.reseal(ids)
    if args.json:
        out.json({"sealed": sealed, "ids": ids})
    else:
        out.line(f"sealed {sealed} of {len(ids)} deliveries (leased or purged meanwhile: the rest)")
    return EXIT_OK if sealed else EXIT_FAILED


def _purge(inbox: ManagedInbox, args: argparse.Namespace, out: Printer) -> int:
    states: list[State] = [state for state in ("done", "dead") if getattr(args, state)]
    before = time.time() - seconds(args.older_than)
    wheres = [_where(args, state, until=before) for state in states]
    if args.dry_run:
        total = sum(inbox.count(where) for where in wheres)
        return _would(out, args, total, "deleted", wheres)
    deleted = 0
    for where in wheres:
        total = inbox.count(where)
        while True:
            count = inbox.purge_matching(where, limit=_BATCH)
            if not count:
                break
            deleted += count
            _progress(f"deleted ({where.state})", deleted, total)
    if args.json:
        out.json({"deleted": deleted, "older_than": args.older_than})
    else:
        out.line(f"deleted {deleted} deliveries older than {args.older_than}")
    return EXIT_OK


def _sender_name(name: str) -> str:
    if not name or len(name) > 64 or not name.isprintable():
        raise CLIError(f"{name!r} is not a sender's name (as `hookshield inbox ls` shows them)")
    return name


def _pause(inbox: ManagedInbox, args: argparse.Namespace, out: Printer) -> int:
    made = inbox.pause(args.sender)
    if args.json:
        out.json({"sender": args.sender, "paused": True, "changed": made})
    elif made:
        out.line(
            f"{args.sender}: paused; its deliveries wait until "
            f"`hookshield inbox resume {args.sender}`"
        )
    else:
        out.line(f"{args.sender}: paused already")
    return EXIT_OK


def _resume(inbox: ManagedInbox, args: argparse.Namespace, out: Printer) -> int:
    was = inbox.resume(args.sender)
    if args.json:
        out.json({"sender": args.sender, "paused": False, "changed": was})
    else:
        out.line(f"{args.sender}: " + ("resumed" if was else "was not paused"))
    return EXIT_OK


def _init(args: argparse.Namespace, out: Printer) -> int:
    """``hookshield inbox init``: make the tables (or the file), or print their SQL."""
    if args.sql:
        from ..postgres import schema_sql

        out.line(schema_sql().rstrip("\n"))
        return EXIT_OK
    if not args.inbox:
        raise CLIError("name the inbox: --inbox PATH or URL, or set HOOKSHIELD_INBOX")
    with _inbox_errors(args.inbox):
        if is_postgres_url(args.inbox):
            from ..postgres import create_tables

            made = create_tables(args.inbox.strip())
        else:
            try:
                inbox = open_inbox(args.inbox)
                inbox.counts()
            except ValueError as exc:
                raise CLIError(f"--inbox: {exc}") from exc
            made = [args.inbox]
    if args.json:
        out.json({"ready": made})
    else:
        out.line("ready: " + ", ".join(made))
    return EXIT_OK


def _progress(what: str, done: int, total: int) -> None:
    """A progress line on stderr, rewritten in place on a terminal."""
    if sys.stderr.isatty():
        print(f"\r{what}: {done}/{total}", end="", file=sys.stderr, flush=True)
    elif done % (_BATCH * 10) == 0:
        print(f"{what}: {done}/{total}", file=sys.stderr)


def seconds(text: str) -> float:
    """An age such as ``30m``, ``12h``, ``7d``, ``2w`` or ``90`` (seconds) in seconds."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*", text)
    if match is None:
        raise CLIError(f"{text!r} is not an age such as 30m, 12h or 7d")
    return float(match[1]) * _UNITS[match[2] or "s"]


def _cut(text: str, width: int) -> str:
    text = " ".join(text.split()) if width < 100 else text
    return text if len(text) <= width else text[: width - 1] + "…"
