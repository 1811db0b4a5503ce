"""``hookshield sign`` and ``hookshield verify``: one delivery, no network.

Theory of operation: ``sign`` prints the headers :func:`hookshield.testing.sign` makes
for a body, as the real sender makes them; ``verify`` checks a body and its headers
with :meth:`hookshield.WebhookHandler.verify`, exactly as an application does, and
prints the typed events or the reason for the rejection.
"""

from __future__ import annotations

import argparse
import shlex
import sys

from .. import testing
from .._core.errors import WebhookError
from ..providers import get_provider
from ._client import FORM
from ._common import (
    EXIT_FAILED,
    EXIT_OK,
    CLIError,
    make_handler,
    parse_header,
    read_body,
    read_file,
    signing_credentials,
)
from ._output import Printer, delivery_json, event_lines, printable

__all__ = ["cmd_sign", "cmd_verify"]


def cmd_sign(args: argparse.Namespace, out: Printer) -> int:
    """``hookshield sign``."""
    creds = signing_credentials(args)
    body = read_body(args.body)
    try:
        headers = testing.sign(
            args.provider, body, event=args.event, content_type=FORM if args.form else None, **creds
        )
    except (TypeError, ValueError) as exc:
        raise CLIError(str(exc)) from None
    if args.curl:
        command = ["curl", "-sS", "-X", "POST", args.curl]
        for name, value in headers.items():
            command += ["-H", f"{name}: {value}"]
        # Both send the bytes exactly: -d @FILE would strip newlines and break the
        # signature, and --data-raw takes a body starting with "@" as text, not a file.
        if args.body not in (None, "-"):
            command += ["--data-binary", "@" + args.body]
        else:
            try:
                command += ["--data-raw", body.decode("utf-8")]
            except UnicodeDecodeError:
                raise CLIError("--curl with a body on stdin needs UTF-8 text") from None
        text = " ".join(shlex.quote(part) for part in command)
        if args.json:
            out.json({"headers": headers, "curl": text})
        else:
            out.line(text)
        return EXIT_OK
    if args.json:
        out.json({"headers": headers})
    else:
        out.lines(f"{name}: {value}" for name, value in headers.items())
    return EXIT_OK


def cmd_verify(args: argparse.Namespace, out: Printer) -> int:
    """``hookshield verify``."""
    handler = make_handler(args)
    pairs = [parse_header(h) for h in args.header]
    if args.header_file:
        text = read_file(args.header_file, "--header-file").decode("utf-8", "replace")
        pairs += [parse_header(line) for line in text.splitlines() if line.strip()]
    body = read_body(args.body)
    try:
        delivery = handler.verify(body, pairs)
    except WebhookError as exc:
        if args.json:
            out.json(
                {"ok": False, "status": exc.status, "error": type(exc).__name__, "reason": str(exc)}
            )
        else:
            print(
                f"hookshield: rejected ({exc.status} {type(exc).__name__}): {printable(exc)}",
                file=sys.stderr,
            )
        return EXIT_FAILED
    if args.json:
        out.json({"ok": True, "status": 200, **delivery_json(delivery)})
        return EXIT_OK
    title = get_provider(delivery.provider).title
    count = len(delivery.events)
    lines = [
        f"{out.style('verified', 'green', 'bold')}  {title} delivery {printable(delivery.id)}, "
        f"{count} event{'s' if count != 1 else ''}"
    ]
    for event in delivery.events:
        lines += event_lines(out, event)
    out.lines(lines)
    return EXIT_OK
