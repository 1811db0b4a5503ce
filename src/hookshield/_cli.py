"""The ``hookshield`` command: sign, verify, send and receive deliveries, and a demo.

Theory of operation: every subcommand is a thin layer over the public API.  ``sign``
and ``send`` imitate a sender with :mod:`hookshield.testing`; ``verify`` and
``listen`` receive with :class:`~hookshield.WebhookHandler`, exactly as an
application does.  ``listen`` and ``demo`` run a small standard-library HTTP
receiver that reads the raw body (bounded by ``max_body_size``), passes it to
``handler.handle`` and answers ``outcome.status`` with ``outcome.response_body()``,
as the framework adapters do (:mod:`hookshield._cli_server`).

Output is for people by default (aligned columns; colour only on a terminal and
never when ``NO_COLOR`` is set) and JSON with ``--json`` (:mod:`hookshield._cli_output`).  Errors go to stderr.

Exit codes:

* 0: success;
* 1: a delivery was rejected (``verify``), the receiver answered non-2xx
  (``send``), or a demo case did not behave as expected (``demo``);
* 2: a usage or configuration error (bad arguments, a missing secret);
* 3: an I/O error (a file that cannot be read, a receiver that cannot be reached,
  a port that cannot be bound).
"""

from __future__ import annotations

import argparse
import dataclasses
import difflib
import ipaddress
import json
import os
import shlex
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final

from . import __version__, testing
from ._cli_output import (
    Printer,
    delivery_json,
    event_lines,
    received_json,
    received_lines,
    show,
    table,
)
from ._cli_server import Received, Receiver
from ._errors import WebhookError
from ._events import Event
from ._handler import DEFAULT_MAX_BODY_SIZE, WebhookHandler
from ._inbox_cli import add_commands as add_inbox_commands
from ._inbox_cli import cmd_inbox, cmd_worker
from ._outcome import Outcome
from .providers import get_provider

__all__ = ["EXIT_FAILED", "EXIT_IO", "EXIT_OK", "EXIT_USAGE", "main"]

EXIT_OK: Final = 0
EXIT_FAILED: Final = 1
EXIT_USAGE: Final = 2
EXIT_IO: Final = 3

PROVIDERS: Final = testing.providers()
FORM: Final = "application/x-www-form-urlencoded"
#: How much of a receiver's answer ``send`` reads and shows.
MAX_RESPONSE: Final = 64 * 1024


class CLIError(Exception):
    """A failure to report on stderr, with the exit code to end with."""

    def __init__(self, message: str, code: int = EXIT_USAGE) -> None:
        super().__init__(message)
        self.code = code


# -- arguments ---------------------------------------------------------------------


class _Formatter(argparse.HelpFormatter):
    """Wraps prose paragraphs; keeps text with line breaks (examples, tables) as written."""

    def __init__(self, prog: str) -> None:
        super().__init__(prog, max_help_position=30)

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        if "\n" in text:
            return "".join(indent + line for line in text.splitlines(keepends=True))
        return super()._fill_text(text, width, indent)


def _add_provider(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "-p",
        "--provider",
        required=True,
        choices=PROVIDERS,
        metavar="PROVIDER",
        help="the sender: " + ", ".join(PROVIDERS),
    )


def _add_credentials(parser: argparse.ArgumentParser, *, receiving: bool) -> None:
    group = parser.add_argument_group(
        "credentials",
        "Moonsense, MOCO and MindPeeker sign with --secret; Petal Metrics and Momentum "
        "authenticate with --token, --basic-auth or --bearer-token. With no credential "
        "option, HOOKSHIELD_SECRET or HOOKSHIELD_TOKEN is read from the environment, "
        "which keeps the secret out of shell history."
        + (" Repeat an option to accept several (key rotation)." if receiving else ""),
    )
    repeat = "append" if receiving else "store"
    group.add_argument("-s", "--secret", action=repeat, help="the signing secret")
    group.add_argument("--token", action=repeat, help="a shared token sent in a header")
    group.add_argument(
        "--token-header",
        metavar="NAME",
        help="the header the token travels in (Petal: your choice; default X-Petal-Token)",
    )
    group.add_argument(
        "--basic-auth", action=repeat, metavar="USER:PASSWORD", help="HTTP Basic credentials"
    )
    group.add_argument("--bearer-token", action=repeat, metavar="TOKEN", help="a Bearer token")
    if receiving:
        group.add_argument(
            "--allow-unsigned",
            action="store_true",
            help="accept deliveries with no credential (Moonsense, Petal, Momentum only)",
        )


def _add_json(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print JSON for scripts")


def build_parser() -> argparse.ArgumentParser:
    """The ``hookshield`` argument parser, with every subcommand."""
    parser = argparse.ArgumentParser(
        prog="hookshield",
        formatter_class=_Formatter,
        description="Sign, verify, send and receive webhook deliveries the way "
        "Moonsense, Petal Metrics, MOCO, MindPeeker and Momentum send them.",
        epilog="""\
examples:
  hookshield demo
  hookshield sign -p moco --secret KEY body.json
  hookshield verify -p mindpeeker --secret whsec -H 'X-MindPeeker-Signature: sha256=...' body.json
  hookshield listen -p mindpeeker --secret whsec --port 8000
  hookshield send http://127.0.0.1:8000/ -p mindpeeker --event session.completed --secret whsec

exit codes:
  0  success
  1  a delivery was rejected, the receiver answered non-2xx, or a demo case failed
  2  usage or configuration error
  3  I/O error: unreadable file, unreachable receiver, port in use

Colour is used on a terminal only, and never when NO_COLOR is set.""",
    )
    parser.add_argument("--version", action="version", version=f"hookshield {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    sign = commands.add_parser(
        "sign",
        formatter_class=_Formatter,
        help="print the headers a sender would send with a body",
        description="Print the headers the real sender sends with the body in FILE (one 'Name: value' "
        "per line), or a ready curl command with --curl.",
        epilog="""\
examples:
  hookshield sign -p moco --secret 1d608b9d72219b90ff2393a1d3ee0ac0 --event activity.create body.json
  echo '{"id": 1}' | hookshield sign -p mindpeeker --secret whsec -
  hookshield sign -p momentum --basic-auth user:pass --curl http://127.0.0.1:8000/ batch.json
  hookshield sign -p mindpeeker --secret whsec body.json > headers.txt
  hookshield verify -p mindpeeker --secret whsec --header-file headers.txt body.json""",
    )
    _add_provider(sign)
    sign.add_argument("body", nargs="?", default="-", metavar="FILE", help="the body ('-': stdin)")
    _add_credentials(sign, receiving=False)
    sign.add_argument("--event", help="the event type, for senders that name it in a header")
    sign.add_argument("--form", action="store_true", help="the body is form-encoded")
    sign.add_argument("--curl", metavar="URL", help="print a curl command that posts to URL")
    _add_json(sign)

    verify = commands.add_parser(
        "verify",
        formatter_class=_Formatter,
        help="verify a delivery and summarise its events",
        description="Verify the body in FILE with the given headers as a receiver would. Exit 0 and "
        "print the events, or exit 1 and print why the delivery is rejected.",
        epilog="""\
examples:
  hookshield verify -p moco --secret 1d608b9d72219b90ff2393a1d3ee0ac0 \\
      -H 'X-Moco-Signature: 09f9ebc0...' -H 'X-Moco-Target: Activity' body.json
  hookshield verify -p momentum --token s3cret -H 'X-MessageSystems-Webhook-Token: s3cret' batch.json
  hookshield verify -p mindpeeker --secret whsec --header-file headers.txt --json body.json""",
    )
    _add_provider(verify)
    verify.add_argument(
        "body", nargs="?", default="-", metavar="FILE", help="the body ('-': stdin)"
    )
    verify.add_argument(
        "-H",
        "--header",
        action="append",
        default=[],
        metavar="'NAME: VALUE'",
        help="a header of the delivery (repeat for each)",
    )
    verify.add_argument(
        "--header-file",
        metavar="FILE",
        help="read headers from FILE, one 'Name: value' per line (as sign prints them)",
    )
    _add_credentials(verify, receiving=True)
    _add_json(verify)

    send = commands.add_parser(
        "send",
        formatter_class=_Formatter,
        help="POST a realistic signed sample delivery to a receiver",
        description="POST a realistic, signed sample delivery of any documented event type "
        "to URL, and print the receiver's answer. Exit 1 if it is not 2xx.",
        epilog="""\
examples:
  hookshield send http://127.0.0.1:8000/ -p mindpeeker --event session.completed --secret whsec
  hookshield send http://127.0.0.1:8000/hooks/moco -p moco --event invoice.update --secret KEY
  hookshield send http://127.0.0.1:8000/ -p momentum --event click --event bounce --token s3cret
  hookshield send http://127.0.0.1:8000/ -p petal --event blink --token t --data overrides.json""",
    )
    send.add_argument("url", metavar="URL", help="the receiver's URL (http or https)")
    _add_provider(send)
    send.add_argument(
        "-e",
        "--event",
        action="append",
        required=True,
        metavar="TYPE",
        help="a documented event type (Momentum: repeat to send a batch)",
    )
    _add_credentials(send, receiving=False)
    send.add_argument(
        "--data", metavar="FILE", help="a JSON object merged into the sample event's data"
    )
    send.add_argument("--body", metavar="FILE", help="send this exact body instead of a sample")
    send.add_argument("--form", action="store_true", help="send form-encoded (Moonsense, Petal)")
    send.add_argument("--timeout", type=float, default=10.0, metavar="SECONDS", help="default: 10")
    _add_json(send)

    listen = commands.add_parser(
        "listen",
        formatter_class=_Formatter,
        help="run a local receiver that verifies and prints deliveries",
        description="Receive deliveries on HOST:PORT (any path), verify each with a "
        "WebhookHandler, print it and its events, and answer as the framework adapters "
        "do. Stop with Ctrl-C, or after --count deliveries.",
        epilog="""\
examples:
  hookshield listen -p mindpeeker --secret whsec --port 8000
  hookshield listen -p petal --token t --token-header X-Petal-Token
  hookshield listen -p momentum --basic-auth user:pass --json --count 1""",
    )
    _add_provider(listen)
    _add_credentials(listen, receiving=True)
    listen.add_argument("--host", default="127.0.0.1", help="default: 127.0.0.1 (this machine)")
    listen.add_argument("--port", type=int, default=8000, help="default: 8000; 0 picks a free port")
    listen.add_argument(
        "--max-body-size",
        type=int,
        default=DEFAULT_MAX_BODY_SIZE,
        metavar="BYTES",
        help=f"the largest body accepted (default: {DEFAULT_MAX_BODY_SIZE})",
    )
    listen.add_argument("--count", type=int, metavar="N", help="stop after N deliveries")
    _add_json(listen)

    demo = commands.add_parser(
        "demo",
        formatter_class=_Formatter,
        help="see hookshield accept and reject deliveries, on this machine only",
        description="Start a receiver on 127.0.0.1, send it one valid delivery from each "
        "of the five senders, then a forged, a tampered, an unsigned and a replayed one, "
        "and print what was accepted or rejected and why. Exit 0 only if every case "
        "behaved as it should. Uses the loopback interface only.",
        epilog="""\
examples:
  python -m hookshield demo
  hookshield demo --json""",
    )
    _add_json(demo)
    add_inbox_commands(commands)
    return parser


# -- shared helpers ----------------------------------------------------------------


def _read(path: str) -> bytes:
    if path == "-":
        return sys.stdin.buffer.read()
    try:
        with open(path, "rb") as file:
            return file.read()
    except OSError as exc:
        raise CLIError(f"cannot read {path}: {exc.strerror or exc}", EXIT_IO) from None


def _basic(value: str) -> tuple[str, str]:
    user, sep, password = value.partition(":")
    if not sep:
        raise CLIError(f"--basic-auth takes USER:PASSWORD, not {value!r}")
    return user, password


def _many(value: str | list[str]) -> list[str]:
    return [value] if isinstance(value, str) else value


def credentials(args: argparse.Namespace) -> dict[str, Any]:
    """The credential keyword arguments given on the command line or in the environment."""
    accepts = get_provider(args.provider).accepts
    result: dict[str, Any] = {}
    if args.secret:
        result["secret"] = args.secret
    if args.token:
        result["token"] = args.token
    if args.basic_auth:
        pairs = [_basic(v) for v in _many(args.basic_auth)]
        result["basic_auth"] = pairs if isinstance(args.basic_auth, list) else pairs[0]
    if args.bearer_token:
        result["bearer_token"] = args.bearer_token
    if not result:
        # The environment keeps secrets out of shell history and process listings.
        if "secret" in accepts and os.environ.get("HOOKSHIELD_SECRET"):
            result["secret"] = os.environ["HOOKSHIELD_SECRET"]
        elif "token" in accepts and os.environ.get("HOOKSHIELD_TOKEN"):
            result["token"] = os.environ["HOOKSHIELD_TOKEN"]
    if args.token_header:
        result["token_header"] = args.token_header
    return result


def signing_credentials(args: argparse.Namespace) -> dict[str, Any]:
    """The credentials to sign with (the first of each); a signing sender needs a secret."""
    sender = get_provider(args.provider)
    creds = credentials(args)
    if "secret" in sender.accepts and not sender.can_be_unsigned and "secret" not in creds:
        raise CLIError(
            f"{sender.title} signs every delivery: pass --secret (or set HOOKSHIELD_SECRET)"
        )
    return creds


def sign(provider: str, body: bytes, creds: Mapping[str, Any], **options: Any) -> dict[str, str]:
    """The headers the real sender sends: ``testing.sign`` with the command's credentials."""
    return testing.sign(provider, body, **creds, **options)


def make_handler(args: argparse.Namespace, **options: Any) -> WebhookHandler:
    """A WebhookHandler from the command line; configuration mistakes exit 2."""
    try:
        return WebhookHandler(
            args.provider,
            allow_unsigned=args.allow_unsigned,
            # The CLI lists every event it received, so a batch is kept whole.
            stream_batches=False,
            **credentials(args),
            **options,
        )
    except (TypeError, ValueError) as exc:
        raise CLIError(str(exc)) from None


def parse_header(text: str) -> tuple[str, str]:
    """``"Name: value"`` as a pair."""
    name, sep, value = text.partition(":")
    if not sep or not name.strip() or name != name.strip():
        raise CLIError(f"a header is 'Name: value', not {text!r}")
    return name, value.strip()


def _first_sentence(text: str) -> str:
    head, sep, _ = text.partition(". ")
    return head + "." if sep else text


def _check_event_type(provider: str, event_type: str) -> None:
    known = testing.event_types(provider)
    if event_type in known:
        return
    close = difflib.get_close_matches(event_type, known, n=1)
    hint = f"; did you mean {close[0]!r}?" if close else "; documented: " + ", ".join(known)
    title = get_provider(provider).title
    raise CLIError(f"{title} documents no event type {event_type!r}{hint}")


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def post(
    url: str, body: bytes, headers: Mapping[str, str], timeout: float
) -> tuple[int, str, bytes]:
    """POST ``body``; the status, reason and (start of the) answer, whatever the status."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise CLIError(f"the URL must be http:// or https://, not {url!r}")
    request = urllib.request.Request(  # noqa: S310 - the scheme is checked just above
        url,
        data=body,
        headers={"User-Agent": f"hookshield/{__version__}", **headers},
        method="POST",
    )
    # A receiver on this machine is reached directly, never through a proxy.
    handlers = [urllib.request.ProxyHandler({})] if _is_loopback(parts.hostname) else []
    opener = urllib.request.build_opener(*handlers)
    try:
        with opener.open(request, timeout=timeout) as response:
            return response.status, response.reason, response.read(MAX_RESPONSE)
    except urllib.error.HTTPError as exc:
        try:
            return exc.code, str(exc.reason), exc.read(MAX_RESPONSE)
        finally:
            exc.close()
    except (urllib.error.URLError, OSError) as exc:
        reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
        raise CLIError(f"cannot reach {url}: {reason}", EXIT_IO) from None


# -- sign --------------------------------------------------------------------------


def cmd_sign(args: argparse.Namespace, out: Printer) -> int:
    """``hookshield sign``."""
    body = _read(args.body)
    creds = signing_credentials(args)
    try:
        headers = sign(
            args.provider,
            body,
            creds,
            event=args.event,
            content_type=FORM if args.form else None,
        )
    except (TypeError, ValueError) as exc:
        raise CLIError(str(exc)) from None
    if args.curl:
        command = ["curl", "-sS", "-X", "POST", args.curl]
        for name, value in headers.items():
            command += ["-H", f"{name}: {value}"]
        # Both send the bytes exactly: -d @FILE would strip newlines and break the
        # signature, and --data-raw takes a body starting with "@" as text, not a file.
        if args.body != "-":
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


# -- verify ------------------------------------------------------------------------


def cmd_verify(args: argparse.Namespace, out: Printer) -> int:
    """``hookshield verify``."""
    handler = make_handler(args)
    pairs = [parse_header(h) for h in args.header]
    if args.header_file:
        text = _read(args.header_file).decode("utf-8", "replace")
        pairs += [parse_header(line) for line in text.splitlines() if line.strip()]
    body = _read(args.body)
    try:
        delivery = handler.verify(body, pairs)
    except WebhookError as exc:
        if args.json:
            out.json(
                {"ok": False, "status": exc.status, "error": type(exc).__name__, "reason": str(exc)}
            )
        else:
            print(
                f"hookshield: rejected ({exc.status} {type(exc).__name__}): {exc}",
                file=sys.stderr,
            )
        return EXIT_FAILED
    if args.json:
        out.json({"ok": True, "status": 200, **delivery_json(delivery)})
        return EXIT_OK
    title = get_provider(delivery.provider).title
    count = len(delivery.events)
    lines = [
        f"{out.style('verified', 'green', 'bold')}  {title} delivery {delivery.id}, "
        f"{count} event{'s' if count != 1 else ''}"
    ]
    for event in delivery.events:
        lines += event_lines(out, event)
    out.lines(lines)
    return EXIT_OK


# -- send --------------------------------------------------------------------------


def cmd_send(args: argparse.Namespace, out: Printer) -> int:
    """``hookshield send``."""
    provider = args.provider
    events: list[str] = args.event
    for event_type in events:
        _check_event_type(provider, event_type)
    if len(events) > 1 and provider != "momentum":
        raise CLIError("only Momentum sends several events in one delivery; give one --event")
    data: dict[str, Any] | None = None
    if args.data:
        try:
            loaded = json.loads(_read(args.data))
        except ValueError as exc:
            raise CLIError(f"--data {args.data} is not JSON: {exc}") from None
        if not isinstance(loaded, dict):
            raise CLIError(f"--data {args.data} must hold a JSON object")
        data = loaded
    content_type = FORM if args.form else None
    try:
        if args.body:
            body = _read(args.body)
        elif provider == "momentum":
            body = testing.sample_batch(events, overrides=data)
        else:
            body = testing.sample_body(provider, events[0], data, content_type=content_type)
        headers = sign(
            provider, body, signing_credentials(args), event=events[0], content_type=content_type
        )
    except (TypeError, ValueError) as exc:
        raise CLIError(str(exc)) from None
    started = time.perf_counter()
    status, reason, answer = post(args.url, body, headers, args.timeout)
    elapsed = time.perf_counter() - started
    ok = 200 <= status < 300
    text = answer.decode("utf-8", "replace")
    if args.json:
        out.json(
            {
                "ok": ok,
                "url": args.url,
                "provider": provider,
                "events": events,
                "status": status,
                "reason": reason,
                "response": text,
                "seconds": round(elapsed, 4),
                "request_headers": headers,
            }
        )
    else:
        colour = "green" if ok else "red"
        out.lines(
            [
                f"sent      {get_provider(provider).title} {', '.join(events)} "
                f"({len(body)} bytes) to {args.url}",
                f"answered  {out.style(f'{status} {reason}', colour, 'bold')} "
                f"in {elapsed * 1000:.0f} ms",
                f"body      {show(text, 200)}",
            ]
        )
    return EXIT_OK if ok else EXIT_FAILED


def _bind(
    address: tuple[str, int],
    routes: Mapping[str, WebhookHandler],
    report: Callable[[Received], None],
    answered: Callable[[], None] | None = None,
) -> Receiver:
    try:
        return Receiver(address, routes, report, answered)
    except OSError as exc:
        raise CLIError(
            f"cannot listen on {address[0]}:{address[1]}: {exc.strerror or exc}", EXIT_IO
        ) from None


# -- listen ------------------------------------------------------------------------


def cmd_listen(args: argparse.Namespace, out: Printer) -> int:
    """``hookshield listen``."""
    if args.count is not None and args.count < 1:
        raise CLIError("--count must be at least 1")
    if args.max_body_size < 1:
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

    server = _bind((args.host, args.port), {"*": handler}, report, answered)
    title = get_provider(args.provider).title
    if args.json:
        out.json({"listening": server.url + "/", "provider": args.provider})
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


# -- demo --------------------------------------------------------------------------

# The MOCO key is the test vector of MOCO's own documentation (PROVIDERS.md).
_DEMO_CREDENTIALS: Final[dict[str, dict[str, Any]]] = {
    "moonsense": {"secret": "demo-moonsense-secret"},
    "petal": {"token": "demo-petal-token"},
    "moco": {"secret": "1d608b9d72219b90ff2393a1d3ee0ac0"},
    "mindpeeker": {"secret": "whsec_demo"},
    "momentum": {"basic_auth": ("hookshield", "demo-password")},
}


_DEMO_AUTH: Final = {
    "moonsense": "X-Moonsense-Signature-256 verified",
    "petal": "X-Petal-Token matched",
    "moco": "X-Moco-Signature verified",
    "mindpeeker": "X-MindPeeker-Signature verified",
    "momentum": "HTTP Basic credentials matched",
}


@dataclasses.dataclass(frozen=True)
class DemoCase:
    """One delivery the demo sends, and what the receiver must make of it."""

    name: str
    provider: str
    body: bytes
    headers: dict[str, str]
    status: int
    dispatched: bool


def demo_cases() -> list[DemoCase]:
    """One valid delivery per sender, then a forged, a tampered, an unsigned and a replay."""
    creds = _DEMO_CREDENTIALS
    cases = []
    for provider, event_type in (
        ("moonsense", "bundle.received"),
        ("petal", "bandpower"),
        ("moco", "activity.create"),
        ("mindpeeker", "session.completed"),
    ):
        body, headers = testing.sample_delivery(provider, event_type, **creds[provider])
        cases.append(DemoCase("valid", provider, body, headers, 200, True))
    batch = testing.sample_batch(["delivery", "open", "click"])
    cases.append(
        DemoCase(
            "valid",
            "momentum",
            batch,
            testing.sign("momentum", batch, **creds["momentum"]),
            200,
            True,
        )
    )
    body, headers = testing.sample_delivery(
        "mindpeeker",
        "session.completed",
        secret="not-the-secret",  # noqa: S106 - the forger's guess, public on purpose
    )
    cases.append(DemoCase("forged (wrong secret)", "mindpeeker", body, headers, 401, False))
    body, headers = testing.sample_delivery("moco", "activity.update", **creds["moco"])
    tampered = body.replace(b'"hours": 2.5', b'"hours": 25.0')
    cases.append(DemoCase("tampered (hours changed)", "moco", tampered, headers, 401, False))
    body, headers = testing.sample_delivery(
        "mindpeeker", "analysis.completed", **creds["mindpeeker"]
    )
    # A MindPeeker handler with a secret fails closed on a delivery with no signature.
    unsigned = {k: v for k, v in headers.items() if k != "X-MindPeeker-Signature"}
    cases.append(DemoCase("unsigned", "mindpeeker", body, unsigned, 401, False))
    first = cases[0]
    # The same signed body with a fresh, unsigned delivery GUID: still a replay.
    replay = {**first.headers, "X-Moonsense-Delivery": "00000000-0000-4000-8000-000000000000"}
    cases.append(DemoCase("replayed (fresh GUID)", "moonsense", first.body, replay, 200, False))
    return cases


def cmd_demo(args: argparse.Namespace, out: Printer) -> int:
    """``hookshield demo``."""
    cases = demo_cases()
    handled: list[Event] = []
    outcomes: list[Received] = []
    lock = threading.Lock()
    routes: dict[str, WebhookHandler] = {}
    for provider, creds in _DEMO_CREDENTIALS.items():
        handler = WebhookHandler(provider, stream_batches=False, **creds)  # it lists events

        @handler.on("*")
        def record(event: Event) -> None:
            with lock:
                handled.append(event)

        routes["/hooks/" + provider] = handler

    def report(received: Received) -> None:
        with lock:
            outcomes.append(received)

    server = _bind(("127.0.0.1", 0), routes, report)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    results = []
    try:
        for case in cases:
            with lock:
                before_events, before_outcomes = len(handled), len(outcomes)
            status, _, _ = post(
                f"{server.url}/hooks/{case.provider}", case.body, case.headers, timeout=5.0
            )
            # The receiver reports each request before it answers it.
            with lock:
                new_events = handled[before_events:]
                outcome = outcomes[-1].outcome if len(outcomes) > before_outcomes else None
            results.append(_demo_result(case, status, new_events, outcome))
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
    ok = all(result["passed"] for result in results)
    if args.json:
        out.json({"ok": ok, "receiver": server.url, "cases": results})
    else:
        _print_demo(out, server.url, results, ok)
    return EXIT_OK if ok else EXIT_FAILED


def _demo_result(
    case: DemoCase, status: int, events: list[Event], outcome: Outcome | None
) -> dict[str, Any]:
    dispatched = len(events)
    passed = status == case.status and (dispatched > 0) == case.dispatched
    if outcome is None:
        why = "the receiver did not report this request"
    elif outcome.duplicate:
        why = "same signed body as case 1: a duplicate, acknowledged and not handled again"
    elif outcome.ok and events:
        kinds = sorted({e.type for e in events})
        why = f"{_DEMO_AUTH[case.provider]}; handled " + ", ".join(kinds)
    else:
        why = _first_sentence(outcome.reason)
    return {
        "case": case.name,
        "provider": case.provider,
        "sender": get_provider(case.provider).title,
        "expected": {"status": case.status, "handled": case.dispatched},
        "got": {"status": status, "events_handled": dispatched},
        "passed": passed,
        "why": why,
    }


def _print_demo(out: Printer, url: str, results: list[dict[str, Any]], ok: bool) -> None:
    def expected(result: dict[str, Any]) -> str:
        want = result["expected"]
        return f"{want['status']} {'handled' if want['handled'] else 'not handled'}"

    def got(result: dict[str, Any]) -> str:
        have = result["got"]
        n = have["events_handled"]
        return f"{have['status']} " + (
            f"{n} event{'s' if n != 1 else ''} handled" if n else "not handled"
        )

    header = ["#", "CASE", "SENDER", "EXPECTED", "GOT", "VERDICT", "WHY"]
    rows = []
    styles = []
    for n, result in enumerate(results, 1):
        verdict = "pass" if result["passed"] else "FAIL"
        rows.append(
            [
                str(n),
                result["case"],
                result["sender"],
                expected(result),
                got(result),
                verdict,
                show(result["why"], 80),
            ]
        )
        colour = ("green",) if result["passed"] else ("red", "bold")
        styles.append([(), (), (), (), (), colour, ()])
    passed = sum(result["passed"] for result in results)
    summary = (
        out.style(f"all {passed} cases behaved as they should", "green", "bold")
        if ok
        else out.style(f"{len(results) - passed} of {len(results)} cases FAILED", "red", "bold")
    )
    out.lines(
        [
            f"hookshield demo: a receiver on {url} (loopback only) for five senders",
            "",
            *table(out, header, rows, styles),
            "",
            summary,
        ]
    )


# -- entry point -------------------------------------------------------------------

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
    parser = build_parser()
    args = parser.parse_args(argv)
    out = Printer()
    try:
        return _COMMANDS[args.command](args, out)
    except CLIError as exc:
        print(f"hookshield: error: {exc}", file=sys.stderr)
        return exc.code
    except BrokenPipeError:  # pragma: no cover - the reader went away (| head)
        return EXIT_OK
