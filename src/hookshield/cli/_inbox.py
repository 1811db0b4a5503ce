"""``hookshield worker`` and ``hookshield inbox``: run and inspect a durable inbox.

Theory of operation: :func:`add_commands` adds the two commands to the ``hookshield``
parser, each with its function in ``args.run``; a function takes the parsed
arguments and a :class:`~hookshield.cli._output.Printer` and returns the exit code
(0 done, 1 nothing matched, 2 usage or configuration error).  Every command opens the
SQLite inbox named by ``--inbox`` (or ``$HOOKSHIELD_INBOX``).  Nothing here runs a
route itself: ``worker`` hands that to :func:`~hookshield.run_worker`.
"""

from __future__ import annotations

import argparse
import datetime
import importlib
import logging
import math
import os
import re
import sys
import time
from collections.abc import Callable
from typing import Any, Final

from .._handler import WebhookHandler
from .._headers import Headers
from .._inbox import STATES, StoredDelivery
from .._sqlite_inbox import SQLiteInbox
from .._worker import Retry, handler_map, run_worker
from ._output import Printer, table

__all__ = ["add_commands", "cmd_inbox", "cmd_worker"]

EXIT_OK: Final = 0
EXIT_NONE: Final = 1
EXIT_USAGE: Final = 2

_UNITS: Final = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
#: Rows deleted or requeued per transaction: the web side's writes wait no longer.
_BATCH: Final = 500


class _Usage(Exception):
    """A mistake on the command line, reported on stderr with exit code 2."""


def add_commands(commands: Any) -> None:
    """Add ``worker`` and ``inbox`` to the ``hookshield`` subcommands (argparse)."""
    worker = commands.add_parser(
        "worker",
        help="run the deliveries stored in an inbox",
        description="Lease each due delivery of the inbox, verify it again and run its "
        "routes; retry failures with backoff and move them to dead-letter after "
        "--max-attempts.  Stops after the current delivery on SIGTERM or SIGINT.",
        epilog="example: hookshield worker myapp.hooks:mindpeeker myapp.hooks:moco "
        "--inbox webhooks.db",
    )
    worker.add_argument(
        "handlers", nargs="+", metavar="MODULE:NAME", help="a WebhookHandler to run"
    )
    _inbox_option(worker)
    worker.add_argument("--lease", type=float, default=300.0, help="seconds (default 300)")
    worker.add_argument("--max-attempts", type=int, default=Retry().max_attempts)
    worker.add_argument("--poll", type=float, default=0.5, help="seconds between looks")
    worker.add_argument("--burst", action="store_true", help="stop once nothing is due")
    worker.set_defaults(run=cmd_worker, json=False)

    inbox = commands.add_parser("inbox", help="list, show, retry or purge stored deliveries")
    actions = inbox.add_subparsers(dest="action", metavar="ACTION", required=True)
    ls = actions.add_parser("ls", help="a table of stored deliveries, oldest first")
    ls.add_argument("--state", choices=STATES)
    ls.add_argument("--limit", type=int, default=50)
    show = actions.add_parser("show", help="one stored delivery, headers and body")
    show.add_argument("id")
    retry = actions.add_parser("retry", help="make deliveries due again, attempts reset")
    which = retry.add_mutually_exclusive_group(required=True)
    which.add_argument("id", nargs="?")
    which.add_argument("--dead", action="store_true", help="every dead-letter delivery")
    seal = actions.add_parser(
        "seal",
        help="vouch for deliveries stored without a seal",
        description="Seal deliveries as they stand now, with the inbox's key: for rows "
        "an older hookshield stored, which a worker refuses until then.  Check them first "
        "(inbox show); then inbox retry runs a dead-lettered one again.",
    )
    seal.add_argument("ids", nargs="+", metavar="ID")
    purge = actions.add_parser("purge", help="delete old deliveries")
    purge.add_argument("--done", action="store_true", help="delete done deliveries")
    purge.add_argument("--dead", action="store_true", help="delete dead-letter deliveries")
    purge.add_argument("--older-than", default="7d", help="age: 30m, 12h, 7d (default 7d)")
    for action in (ls, show, retry, seal, purge):
        _inbox_option(action)
    inbox.set_defaults(run=cmd_inbox, json=False)


def _inbox_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--inbox",
        default=os.environ.get("HOOKSHIELD_INBOX"),
        metavar="PATH",
        help="the SQLite inbox file (default: $HOOKSHIELD_INBOX)",
    )


def _open(args: argparse.Namespace, lease: float = 300.0) -> SQLiteInbox:
    if not args.inbox:
        raise _Usage("name the inbox: --inbox PATH, or set HOOKSHIELD_INBOX")
    try:
        inbox = SQLiteInbox(args.inbox, lease=lease)
        inbox.counts()  # opened now: a missing or wrong key is told here, not in a loop
    except (OSError, ValueError) as exc:  # ":memory:", a directory, a missing folder or key
        raise _Usage(f"--inbox: {exc}") from exc
    return inbox


def _guarded(command: Callable[[argparse.Namespace, Printer], int]) -> Any:
    def run(args: argparse.Namespace, out: Printer) -> int:
        try:
            return command(args, out)
        except _Usage as exc:
            print(f"hookshield: error: {exc}", file=sys.stderr)
            return EXIT_USAGE

    run.__doc__ = command.__doc__
    return run


# -- worker -------------------------------------------------------------------------


def load_handler(target: str) -> WebhookHandler:
    """The handler named ``module:name`` (the current directory is importable)."""
    module_name, _, name = target.partition(":")
    if not module_name or not name:
        raise _Usage(f"{target!r}: name a handler as module:name (myapp.hooks:moco)")
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())  # as gunicorn and celery do
    try:
        found: object = importlib.import_module(module_name)
        for part in name.split("."):
            found = getattr(found, part)
    except (ImportError, AttributeError) as exc:
        raise _Usage(f"{target!r}: {exc}") from exc
    if not isinstance(found, WebhookHandler):
        raise _Usage(f"{target!r} is {type(found).__name__}, not a WebhookHandler")
    return found


@_guarded
def cmd_worker(args: argparse.Namespace, out: Printer) -> int:
    """``hookshield worker``: run the inbox's deliveries until SIGTERM or SIGINT."""
    handlers = [load_handler(target) for target in args.handlers]
    try:
        handler_map(handlers)
    except ValueError as exc:  # two handlers for one sender
        raise _Usage(str(exc)) from exc
    if args.max_attempts < 1 or not all(0 < value < math.inf for value in (args.lease, args.poll)):
        raise _Usage("--max-attempts, --lease and --poll must be positive (and finite)")
    inbox = _open(args, lease=args.lease)
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    stats = run_worker(
        inbox,
        *handlers,
        retry=Retry(max_attempts=args.max_attempts),
        poll=args.poll,
        burst=args.burst,
    )
    out.line(
        f"hookshield worker: {stats.done} done, {stats.retried} retried, {stats.dead} dead-lettered"
    )
    return EXIT_OK


# -- inbox --------------------------------------------------------------------------


@_guarded
def cmd_inbox(args: argparse.Namespace, out: Printer) -> int:
    """``hookshield inbox ls|show|retry|purge``."""
    inbox = _open(args)
    action: Callable[[SQLiteInbox, argparse.Namespace, Printer], int] = {
        "ls": _ls,
        "show": _show,
        "retry": _retry,
        "seal": _seal,
        "purge": _purge,
    }[args.action]
    return action(inbox, args, out)


def _ls(inbox: SQLiteInbox, args: argparse.Namespace, out: Printer) -> int:
    rows = inbox.list(args.state, limit=max(1, args.limit))
    if not rows:
        out.line("no deliveries" + (f" in state {args.state}" if args.state else ""))
        return EXIT_OK
    now = time.time()
    header = ("ID", "SENDER", "EVENTS", "STATE", "ATTEMPTS", "LAST ERROR", "AGE")
    cells = [
        (
            row.id,
            row.sender,
            _cut(",".join(row.event_types) or "-", 40),
            row.state,
            str(row.attempts),
            _cut(row.last_error or "-", 48),
            age(now - row.received),
        )
        for row in rows
    ]
    colour = {"dead": ("red",), "done": ("green",), "leased": ("yellow",), "pending": ()}
    styles = [[(), (), (), colour[row.state], (), (), ()] for row in rows]
    out.lines(table(out, header, cells, styles))
    counts = inbox.counts()
    out.line(", ".join(f"{counts[state]} {state}" for state in STATES))
    return EXIT_OK


def _show(inbox: SQLiteInbox, args: argparse.Namespace, out: Printer) -> int:
    row = inbox.get(args.id)
    if row is None:
        print(f"hookshield: no delivery {args.id!r} in {inbox.path}", file=sys.stderr)
        return EXIT_NONE
    out.lines(describe(row))
    return EXIT_OK


def describe(row: StoredDelivery) -> list[str]:
    """A stored delivery as lines of text; a credential header's value is hidden."""
    when = datetime.datetime.fromtimestamp(row.received, datetime.timezone.utc)
    lines = [
        f"id:           {row.id}",
        f"sender:       {row.sender} (handler {row.handler})",
        f"received:     {when.isoformat(timespec='seconds')}",
        f"state:        {row.state}, {row.attempts} attempt(s)",
        f"events:       {', '.join(row.event_types) or '-'}",
    ]
    if row.events is not None:
        lines.append(f"to run:       {len(row.events)} event(s) of the batch")
    if row.last_error:
        lines.append(f"last error:   {row.last_error}")
    if row.seal is None:
        lines.append("seal:         none: a worker refuses it (see `hookshield inbox seal`)")
    lines.append("headers:")
    lines += [f"  {name}: {_shown(name, value)}" for name, value in row.headers]
    lines.append(f"body ({len(row.body)} bytes):")
    lines.append(_cut(row.body.decode("utf-8", "replace"), 4000))
    return lines


def _shown(name: str, value: str) -> str:
    # A signature is kept to verify again (and a row stored by an older version may
    # hold a token), but a terminal and its scrollback need not show it.  Headers
    # decides what is a credential (tokens, signatures, cookies ...), as it does for
    # its repr in logs; asked about an empty value, it answers a non-empty one only
    # for a credential.
    (redacted,) = Headers({name: ""}).redacted().values()
    return "<hidden>" if redacted else value


def _retry(inbox: SQLiteInbox, args: argparse.Namespace, out: Printer) -> int:
    if not args.dead:
        if inbox.requeue([args.id]) == 0:
            row = inbox.get(args.id)
            if row is None:
                print(f"hookshield: no delivery {args.id!r} in {inbox.path}", file=sys.stderr)
            else:  # leased: a worker runs it now, and settles it when done
                print(
                    f"hookshield: delivery {args.id!r} is leased to a worker now; retry it "
                    "once it is done, dead or pending again",
                    file=sys.stderr,
                )
            return EXIT_NONE
        out.line(f"{args.id}: pending, due now")
        return EXIT_OK
    total = inbox.counts()["dead"]
    done = 0
    after: str | None = ""
    while after is not None:  # ids forward: ends though requeued rows may die again
        count, after = inbox.requeue_dead(after, limit=_BATCH)
        done += count
        _progress("requeued", done, total)
    out.line(f"{done} dead-letter deliveries are pending again, due now")
    return EXIT_OK


def _seal(inbox: SQLiteInbox, args: argparse.Namespace, out: Printer) -> int:
    sealed = inbox.reseal(args.ids)
    out.line(f"sealed {sealed} of {len(args.ids)} deliveries (not found or leased: the rest)")
    return EXIT_OK if sealed else EXIT_NONE


def _purge(inbox: SQLiteInbox, args: argparse.Namespace, out: Printer) -> int:
    states = [state for state in ("done", "dead") if getattr(args, state)]
    if not states:
        raise _Usage("say what to purge: --done, --dead or both")
    before = time.time() - seconds(args.older_than)
    deleted = 0
    for state in states:
        total = inbox.counts()[state]
        while True:
            count = inbox.purge(state, before, limit=_BATCH)  # type: ignore[arg-type]
            if not count:
                break
            deleted += count
            _progress(f"deleted ({state})", deleted, total)
    out.line(f"deleted {deleted} deliveries older than {args.older_than}")
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
        raise _Usage(f"{text!r} is not an age such as 30m, 12h or 7d")
    return float(match[1]) * _UNITS[match[2] or "s"]


def age(elapsed: float) -> str:
    """A short age: ``42s``, ``5m``, ``3h``, ``2d``."""
    elapsed = max(0.0, elapsed)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if elapsed >= size:
            return f"{int(elapsed // size)}{unit}"
    return f"{int(elapsed)}s"


def _cut(text: str, width: int) -> str:
    text = " ".join(text.split()) if width < 100 else text
    return text if len(text) <= width else text[: width - 1] + "…"
