"""``hookshield listen``: a local receiver that verifies and prints each delivery.

Theory of operation: one :class:`~hookshield.WebhookHandler` built from the command
line serves every path of a :class:`~hookshield.cli._server.Receiver`; a catch-all
route marks each event handled, and each answered request is printed (or written as
one JSON line).  The receiver runs in a thread; the main thread waits for Ctrl-C or
for ``--count`` answers.
"""

from __future__ import annotations

import argparse
import threading
from collections.abc import Callable, Mapping

from .._core.events import Event
from .._handling.handler import WebhookHandler
from ..providers import get_provider
from ._common import EXIT_IO, EXIT_OK, CLIError, make_handler, provider_name
from ._output import Printer, received_json, received_lines
from ._server import Received, Receiver

__all__ = ["bind", "cmd_listen"]


def bind(
    address: tuple[str, int],
    routes: Mapping[str, WebhookHandler],
    report: Callable[[Received], None],
    answered: Callable[[], None] | None = None,
) -> Receiver:
    """A receiver bound to ``address``; exit 3 when the port cannot be bound."""
    try:
        return Receiver(address, routes, report, answered)
    except OSError as exc:
        raise CLIError(
            f"cannot listen on {address[0]}:{address[1]}: {exc.strerror or exc}", EXIT_IO
        ) from None


def cmd_listen(args: argparse.Namespace, out: Printer) -> int:
    """``hookshield listen``."""
    if args.count is not None and args.count < 1:
        raise CLIError("--count must be at least 1")
    if args.max_body_size is not None and args.max_body_size < 1:
        raise CLIError("--max-body-size must be a positive number of bytes")
    handler = make_handler(args, max_body_size=args.max_body_size)

    @handler.on("*")
    def _received(event: Event) -> None:
        """Every event is handled by being printed; this route marks it as handled."""

    done = threading.Event()
    seen = 0
    lock = threading.Lock()

    def report(received: Received) -> None:
        if args.json:
            out.json(received_json(received))
        else:
            out.lines(received_lines(out, received))

    def answered() -> None:
        # Counted once the answer is out, so that stopping cannot cut it off.
        nonlocal seen
        with lock:
            seen += 1
            if args.count is not None and seen >= args.count:
                done.set()

    server = bind((args.host, args.port), {"*": handler}, report, answered)
    title = get_provider(args.provider).title
    if args.json:
        out.json({"listening": server.url + "/", "provider": provider_name(args.provider)})
    else:
        out.line(f"listening on {server.url}/ for {title} deliveries (Ctrl-C to stop)")
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1})
    thread.start()
    try:
        while not done.wait(0.2):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
    return EXIT_OK
