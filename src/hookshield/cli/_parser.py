"""The ``hookshield`` command's arguments: every subcommand, its options, help and examples.

Theory of operation: this module only describes the command line; it runs nothing.
The senders, and which credential each takes, are read from the provider registry
when the parser is built, so that the help never lists a sender by hand.
"""

from __future__ import annotations

import argparse
from typing import Final, TypeAlias

from .._version import __version__
from ..providers import PROVIDERS
from ._common import HelpFormatter, flags, provider_option
from ._inbox import add_commands as add_inbox_commands

__all__ = ["build_parser"]

_Commands: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"
_BODY_HELP: Final = "the body; '-' or none reads stdin (when it is not a terminal)"


def _titles() -> str:
    titles = [sender.title for sender in PROVIDERS.values()]
    return titles[0] if len(titles) == 1 else ", ".join(titles[:-1]) + " and " + titles[-1]


def _add_provider(parser: argparse.ArgumentParser) -> None:
    names = tuple(PROVIDERS)
    parser.add_argument(
        "-p",
        "--provider",
        required=True,
        type=provider_option,
        metavar="PROVIDER",
        help="the sender: " + ", ".join(names) + "; or MODULE:NAME, an HmacSender "
        "description or a WebhookHandler in your code (myapp.hooks:acme)",
    )


def _who_takes_what() -> str:
    """``Moonsense, MOCO and MindPeeker take --secret; ...``, from the senders' modules."""
    groups: dict[str, list[str]] = {}
    for sender in PROVIDERS.values():
        groups.setdefault(flags(sender.accepts), []).append(sender.title)
    parts = []
    for options, titles in groups.items():
        who = titles[0] if len(titles) == 1 else ", ".join(titles[:-1]) + " and " + titles[-1]
        parts.append(f"{who} {'takes' if len(titles) == 1 else 'take'} {options}")
    return "; ".join(parts) + "."


def _add_credentials(parser: argparse.ArgumentParser, *, receiving: bool) -> None:
    group = parser.add_argument_group(
        "credentials",
        _who_takes_what() + " With no credential option, HOOKSHIELD_SECRET or "
        "HOOKSHIELD_TOKEN is read from the environment, which keeps the secret out of "
        "shell history."
        + (" Repeat an option to accept several (key rotation)." if receiving else ""),
    )
    repeat = "append" if receiving else "store"
    group.add_argument("-s", "--secret", action=repeat, help="the signing secret")
    group.add_argument("--token", action=repeat, help="a shared token sent in a header")
    group.add_argument(
        "--token-header",
        metavar="NAME",
        help="the header the token travels in, for senders that let you choose it",
    )
    group.add_argument(
        "--basic-auth", action=repeat, metavar="USER:PASSWORD", help="HTTP Basic credentials"
    )
    group.add_argument("--bearer-token", action=repeat, metavar="TOKEN", help="a Bearer token")
    if receiving:
        group.add_argument(
            "--public-key",
            action=repeat,
            metavar="KEY",
            help="an ed25519 public key (whpk_...), for senders that sign with one",
        )
        group.add_argument(
            "--allow-unsigned",
            action="store_true",
            help="accept deliveries with no credential, from senders that can send them",
        )
        group.add_argument(
            "--tolerance",
            type=float,
            metavar="SECONDS",
            help="how far a signed timestamp may be from now (default: the sender's, 5 min "
            "for Standard Webhooks)",
        )


def _add_json(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print JSON for scripts")


def _add_sign(commands: _Commands) -> None:
    """The ``sign`` subcommand."""
    sign = commands.add_parser(
        "sign",
        formatter_class=HelpFormatter,
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
    sign.add_argument("body", nargs="?", metavar="FILE", help=_BODY_HELP)
    _add_credentials(sign, receiving=False)
    sign.add_argument("--event", help="the event type, for senders that name it in a header")
    sign.add_argument("--form", action="store_true", help="the body is form-encoded")
    sign.add_argument("--curl", metavar="URL", help="print a curl command that posts to URL")
    _add_json(sign)


def _add_verify(commands: _Commands) -> None:
    """The ``verify`` subcommand."""
    verify = commands.add_parser(
        "verify",
        formatter_class=HelpFormatter,
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
    verify.add_argument("body", nargs="?", metavar="FILE", help=_BODY_HELP)
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


def _add_send(commands: _Commands) -> None:
    """The ``send`` subcommand."""
    send = commands.add_parser(
        "send",
        formatter_class=HelpFormatter,
        help="POST a realistic signed sample delivery to a receiver",
        description="POST a realistic, signed sample delivery of any documented event type "
        "to URL, and print the receiver's answer. Redirects are not followed (a redirected "
        "POST arrives as a GET): a 3xx is reported with its Location. Exit 1 if the "
        "answer is not 2xx. Each sample is new bytes, so a receiver that drops "
        "duplicates runs its routes for each send.",
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
        metavar="TYPE",
        help="a documented event type; repeat it to send a batch, for senders of batches "
        "(needed unless --body is given, where it names the event in the headers)",
    )
    _add_credentials(send, receiving=False)
    send.add_argument(
        "--data", metavar="FILE", help="a JSON object merged into the sample event's data"
    )
    send.add_argument("--body", metavar="FILE", help="send this exact body instead of a sample")
    form = ", ".join(p.title for p in PROVIDERS.values() if p.accepts_form)
    send.add_argument("--form", action="store_true", help=f"send form-encoded ({form})")
    send.add_argument("--timeout", type=float, default=10.0, metavar="SECONDS", help="default: 10")
    _add_json(send)


def _add_listen(commands: _Commands) -> None:
    """The ``listen`` subcommand."""
    listen = commands.add_parser(
        "listen",
        formatter_class=HelpFormatter,
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
        metavar="BYTES",
        help="the largest body accepted (default: the sender's, 1 MiB to 25 MiB)",
    )
    listen.add_argument("--count", type=int, metavar="N", help="stop after N deliveries")
    _add_json(listen)


def _add_demo(commands: _Commands) -> None:
    """The ``demo`` subcommand."""
    demo = commands.add_parser(
        "demo",
        formatter_class=HelpFormatter,
        help="see hookshield accept and reject deliveries, on this machine only",
        description="Start a receiver on 127.0.0.1, send it one valid delivery from each "
        "sender, then a forged, a tampered, an unsigned and a replayed one, "
        "and print what was accepted or rejected and why. Exit 0 only if every case "
        "behaved as it should. Uses the loopback interface only.",
        epilog="""\
examples:
  python -m hookshield demo
  hookshield demo --json""",
    )
    _add_json(demo)


def build_parser() -> argparse.ArgumentParser:
    """The ``hookshield`` argument parser, with every subcommand."""
    parser = argparse.ArgumentParser(
        prog="hookshield",
        formatter_class=HelpFormatter,
        description="Sign, verify, send and receive webhook deliveries the way "
        + _titles()
        + " send them.",
        epilog="""\
examples:
  hookshield demo
  hookshield sign -p moco --secret KEY body.json
  hookshield verify -p mindpeeker --secret whsec -H 'X-MindPeeker-Signature: sha256=...' body.json
  hookshield listen -p mindpeeker --secret whsec --port 8000
  hookshield send http://127.0.0.1:8000/ -p mindpeeker --event session.completed --secret whsec

exit codes:
  0  success
  1  a delivery was rejected, the receiver answered non-2xx or redirected,
     a demo case failed, or no stored delivery has that id
  2  usage or configuration error
  3  I/O error: unreadable file, unreachable receiver, port in use,
     an inbox that is missing or is not a hookshield inbox

Colour is used on a terminal only, and never when NO_COLOR is set.""",
    )
    parser.add_argument("--version", action="version", version=f"hookshield {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    _add_sign(commands)
    _add_verify(commands)
    _add_send(commands)
    _add_listen(commands)
    _add_demo(commands)
    add_inbox_commands(commands)
    return parser
