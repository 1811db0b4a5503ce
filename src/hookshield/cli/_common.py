"""What every ``hookshield`` subcommand shares: exit codes, errors, input, credentials.

Theory of operation: nothing here names a sender.  What a sender takes (its
credential options, its event types) is read from its provider module through
:func:`hookshield.providers.get_provider`; a credential keyword argument ``basic_auth``
is the command-line flag ``--basic-auth``, by one rule (:func:`flag`), so that a new
sender needs no change here.  Messages speak of flags, never of keyword arguments.
"""

from __future__ import annotations

import argparse
import difflib
import importlib
import os
import re
import sys
from typing import Any, Final

from .._handling.handler import WebhookHandler, verifier_of
from ..providers import PROVIDERS, Provider, ProviderLike, get_provider
from ..providers._hmac import HmacSender

__all__ = [
    "CREDENTIAL_OPTIONS",
    "EXIT_FAILED",
    "EXIT_IO",
    "EXIT_OK",
    "EXIT_USAGE",
    "CLIError",
    "HelpFormatter",
    "as_flags",
    "check_event_type",
    "credentials",
    "first_sentence",
    "flag",
    "flags",
    "import_attribute",
    "load_handler",
    "make_handler",
    "parse_header",
    "provider_name",
    "provider_option",
    "read_body",
    "read_file",
    "resolve_provider",
    "signing_credentials",
]

EXIT_OK: Final = 0
EXIT_FAILED: Final = 1
EXIT_USAGE: Final = 2
EXIT_IO: Final = 3

#: The credential keyword arguments of ``WebhookHandler`` and ``testing.sign``, in the
#: order the help lists them; ``Provider.accepts`` says which of them a sender takes.
CREDENTIAL_OPTIONS: Final = ("secret", "public_key", "token", "basic_auth", "bearer_token")


class CLIError(Exception):
    """A failure to report, with the exit code to end with."""

    def __init__(self, message: str, code: int = EXIT_USAGE) -> None:
        super().__init__(message)
        self.code = code


class HelpFormatter(argparse.HelpFormatter):
    """Wraps prose paragraphs; keeps text with line breaks (examples, tables) as written."""

    def __init__(self, prog: str) -> None:
        super().__init__(prog, max_help_position=30)

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        if "\n" in text:
            return "".join(indent + line for line in text.splitlines(keepends=True))
        return super()._fill_text(text, width, indent)


def import_attribute(target: str) -> object:
    """The object named ``module:attribute`` (the current directory is importable).

    Raises :class:`CLIError` (exit 2) for a malformed name, a module that cannot be
    imported or an attribute it does not have.
    """
    module_name, _, name = target.partition(":")
    if not module_name or not name:
        raise CLIError(f"{target!r}: name it as module:attribute (myapp.hooks:moco)")
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())  # as gunicorn and celery do
    try:
        found: object = importlib.import_module(module_name)
        for part in name.split("."):
            found = getattr(found, part)
    except (ImportError, AttributeError) as exc:
        raise CLIError(f"{target!r}: {exc}") from exc
    return found


def load_handler(target: str) -> WebhookHandler:
    """The handler named ``module:name`` (the current directory is importable)."""
    module_name, _, name = target.partition(":")
    if not module_name or not name:
        raise CLIError(f"{target!r}: name a handler as module:name (myapp.hooks:moco)")
    found = import_attribute(target)
    if not isinstance(found, WebhookHandler):
        raise CLIError(f"{target!r} is {type(found).__name__}, not a WebhookHandler")
    return found


def provider_option(text: str) -> str:
    """``-p``'s value, checked as argparse reads it: a sender's name, or ``module:attribute``.

    For argparse's ``type=``: an unknown name is an :class:`argparse.ArgumentTypeError`,
    which argparse reports with the usage and exit code 2.  A ``module:attribute`` is
    imported later, by :func:`resolve_provider`, not while the arguments are parsed.
    """
    if text in PROVIDERS or ":" in text:
        return text
    raise argparse.ArgumentTypeError(
        f"unknown sender {text!r}: choose one of {', '.join(PROVIDERS)}, or name an "
        "HmacSender or a WebhookHandler of your code as module:attribute"
    )


def resolve_provider(text: str) -> ProviderLike:
    """The sender ``-p`` names: a registered name as it is, else the ``module:attribute``.

    The attribute is an :class:`~hookshield.HmacSender` description or a
    :class:`~hookshield.WebhookHandler`, whose sender it is (not its credentials: those
    are the command line's).  A bad module or attribute exits 2.
    """
    if text in PROVIDERS:
        return text
    try:
        found = import_attribute(text)
    except CLIError as exc:
        raise CLIError(f"-p {exc}") from None
    if isinstance(found, HmacSender):
        return found.provider()
    if isinstance(found, WebhookHandler):
        return verifier_of(found).sender
    raise CLIError(f"-p {text!r} is {type(found).__name__}, not an HmacSender or a WebhookHandler")


def provider_name(provider: ProviderLike) -> str:
    """The name of the sender ``-p`` gave (a name, or a sender loaded from a module)."""
    return get_provider(provider).name


def flag(option: str) -> str:
    """The command-line flag of a keyword argument: ``basic_auth`` is ``--basic-auth``."""
    return "--" + option.replace("_", "-")


def flags(options: Any) -> str:
    """``--token, --basic-auth or --bearer-token``: the flags of ``options``, in help order."""
    names = [flag(o) for o in CREDENTIAL_OPTIONS if o in options]
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " or " + names[-1]


_KEYWORD: Final = re.compile(
    r"\b(secret|public_key|token_header|token|basic_auth|bearer_token|allow_unsigned|tolerance)"
    r"=(True)?"
)


def as_flags(message: str) -> str:
    """A library message with its keyword arguments (``secret=``) spelled as flags."""
    return _KEYWORD.sub(lambda m: flag(m.group(1)), message)


def read_file(path: str, what: str = "") -> bytes:
    """The bytes of ``path``; exit 3 when it cannot be read."""
    try:
        with open(path, "rb") as file:
            return file.read()
    except OSError as exc:
        label = f"{what} {path}" if what else path
        raise CLIError(f"cannot read {label}: {exc.strerror or exc}", EXIT_IO) from None


def read_body(path: str | None) -> bytes:
    """The body in ``path``, or on stdin for ``-`` or no path with stdin not a terminal.

    With no path and a terminal on stdin, nothing would arrive: a usage error rather
    than a wait.  An empty body read from stdin is worth a word on stderr, since it is
    more often a pipe that produced nothing than a body meant to be empty.
    """
    if path is not None and path != "-":
        return read_file(path)
    if path is None and sys.stdin.isatty():
        raise CLIError("give the body as FILE, or '-' to read it from stdin")
    body = sys.stdin.buffer.read()
    if not body:
        print("hookshield: note: the body read from stdin is empty", file=sys.stderr)
    return body


def _basic(value: str) -> tuple[str, str]:
    user, sep, password = value.partition(":")
    if not sep:
        raise CLIError(f"--basic-auth takes USER:PASSWORD, not {value!r}")
    return user, password


def _refuse_unused(sender: Provider, args: argparse.Namespace) -> None:
    """Exit 2 for a credential option the sender does not take, instead of ignoring it."""
    for option in (*CREDENTIAL_OPTIONS, "token_header"):
        needs = "token" if option == "token_header" else option
        if getattr(args, option, None) and needs not in sender.accepts:
            raise CLIError(
                f"{sender.title} does not use {flag(option)}: it authenticates with "
                f"{flags(sender.accepts)}"
            )


def credentials(args: argparse.Namespace) -> dict[str, Any]:
    """The credential keyword arguments given on the command line or in the environment."""
    sender = get_provider(args.provider)
    _refuse_unused(sender, args)
    result: dict[str, Any] = {}
    for option in CREDENTIAL_OPTIONS:
        value = getattr(args, option, None)  # --public-key is only for receiving
        if value and option == "basic_auth":
            pairs = [_basic(v) for v in ([value] if isinstance(value, str) else value)]
            value = pairs if isinstance(value, list) else pairs[0]
        if value:
            result[option] = value
    if not result:
        # The environment keeps secrets out of shell history and process listings.
        for option, variable in (("secret", "HOOKSHIELD_SECRET"), ("token", "HOOKSHIELD_TOKEN")):
            if option in sender.accepts and os.environ.get(variable):
                result[option] = os.environ[variable]
                break
    if args.token_header:
        result["token_header"] = args.token_header
    if getattr(args, "tolerance", None) is not None:
        result["tolerance"] = args.tolerance
    return result


def signing_credentials(args: argparse.Namespace) -> dict[str, Any]:
    """The credentials to sign with; a sender that always signs needs its secret."""
    sender = get_provider(args.provider)
    creds = credentials(args)
    if "secret" in sender.accepts and not sender.can_be_unsigned and "secret" not in creds:
        raise CLIError(
            f"{sender.title} signs every delivery: pass --secret (or set HOOKSHIELD_SECRET)"
        )
    return creds


def make_handler(args: argparse.Namespace, **options: Any) -> WebhookHandler:
    """A WebhookHandler from the command line; configuration mistakes exit 2."""
    creds = credentials(args)
    try:
        return WebhookHandler(
            args.provider,
            allow_unsigned=args.allow_unsigned,
            # The CLI lists every event it received, so a batch is kept whole.
            stream_batches=False,
            **creds,
            **options,
        )
    except (TypeError, ValueError) as exc:
        raise CLIError(as_flags(str(exc))) from None


def parse_header(text: str) -> tuple[str, str]:
    """``"Name: value"`` as a pair."""
    name, sep, value = text.partition(":")
    if not sep or not name.strip() or name != name.strip():
        raise CLIError(f"a header is 'Name: value', not {text!r}")
    return name, value.strip()


def first_sentence(text: str) -> str:
    """The first sentence of a library message."""
    head, sep, _ = text.partition(". ")
    return head + "." if sep else text


def check_event_type(provider: ProviderLike, event_type: str) -> None:
    """Exit 2 for an event type the sender does not document, suggesting a close one.

    A sender that documents none (Standard Webhooks, where the types are each user's,
    or one described with ``HmacSender`` without ``event_types``) takes any.
    """
    sender = get_provider(provider)
    known = sender.event_types
    if event_type in known or not known:
        return
    close = difflib.get_close_matches(event_type, known, n=1)
    hint = f"; did you mean {close[0]!r}?" if close else "; documented: " + ", ".join(known)
    raise CLIError(f"{sender.title} documents no event type {event_type!r}{hint}")
