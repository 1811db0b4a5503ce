"""The ``hookshield`` command: sign, verify, send and receive deliveries, and a demo.

Theory of operation: every subcommand is a thin layer over the public API.  ``sign``
and ``send`` imitate a sender with :mod:`hookshield.testing`; ``verify`` and
``listen`` receive with :class:`~hookshield.WebhookHandler`, exactly as an
application does.  One module per concern: the arguments (``_parser``), what the
commands share (``_common``), the HTTP client (``_client``: ``send``), ``sign`` and
``verify`` (``_offline``), the local receiver (``_server``, ``_listen``), the demo
(``_demo``), the durable inbox's ``worker`` and ``inbox`` (``_inbox``) and the output
(``_output``).  No module here names a sender: what a
sender takes and sends is read from its provider module.

Output is for people by default (aligned columns fitted to the terminal; colour only
on a terminal and never when ``NO_COLOR`` is set) and JSON with ``--json``, errors
included.  Exit codes: 0 success; 1 a delivery was rejected, the receiver answered
non-2xx or redirected, or a demo case misbehaved; 2 a usage or configuration error;
3 an I/O error (an unreadable file, an unreachable receiver, a port in use).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from typing import Final

from ._client import cmd_send
from ._common import EXIT_FAILED, EXIT_IO, EXIT_OK, EXIT_USAGE, CLIError, resolve_provider
from ._demo import cmd_demo
from ._inbox import cmd_inbox, cmd_worker
from ._listen import cmd_listen
from ._offline import cmd_sign, cmd_verify
from ._output import Printer
from ._parser import build_parser

__all__ = ["EXIT_FAILED", "EXIT_IO", "EXIT_OK", "EXIT_USAGE", "build_parser", "main"]

_COMMANDS: Final[dict[str, Callable[[argparse.Namespace, Printer], int]]] = {
    "sign": cmd_sign,
    "verify": cmd_verify,
    "send": cmd_send,
    "listen": cmd_listen,
    "demo": cmd_demo,
    "worker": cmd_worker,
    "inbox": cmd_inbox,
}


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``hookshield`` command with ``argv`` (default: ``sys.argv[1:]``); the exit code."""
    args = build_parser().parse_args(argv)
    out = Printer()
    try:
        if isinstance(getattr(args, "provider", None), str):
            # Imported here, not while parsing: its failure is then reported as others are.
            args.provider = resolve_provider(args.provider)
        return _COMMANDS[args.command](args, out)
    except CLIError as exc:
        if args.json:
            # A script reading JSON gets the failure as JSON too, on stdout.
            out.json({"ok": False, "error": str(exc), "exit": exc.code})
        else:
            print(f"hookshield: error: {exc}", file=sys.stderr)
        return exc.code
    except BrokenPipeError:  # pragma: no cover - the reader went away (| head)
        return EXIT_OK
