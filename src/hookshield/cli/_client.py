"""``hookshield send``: POST a signed delivery to a receiver and report its answer.

Theory of operation: the delivery is built by :mod:`hookshield.testing` exactly as the
sender builds it, posted once with :mod:`urllib.request`, and the answer is reported
as it is.  Redirects are never followed: ``urllib`` would turn the POST into a GET
(Django's trailing-slash 301 then reads as a puzzling 405, and a 307 loses the body
on some stacks), so a 3xx is reported with its ``Location`` and a hint instead.  A
receiver on this machine is reached without a proxy.  The receiver's reason is shown
whole (up to ``MAX_RESPONSE`` bytes), and a ``"duplicate": true`` in its JSON answer
is called out: the routes did not run.
"""

from __future__ import annotations

import argparse
import dataclasses
import ipaddress
import json
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from typing import Any, Final

from .. import testing
from .._core.headers import Headers
from .._version import __version__
from ..providers import get_provider
from ._common import (
    EXIT_FAILED,
    EXIT_IO,
    EXIT_OK,
    CLIError,
    check_event_type,
    provider_name,
    read_file,
    signing_credentials,
)
from ._output import Printer, printable

__all__ = ["MAX_RESPONSE", "Answer", "cmd_send", "post"]

FORM: Final = "application/x-www-form-urlencoded"
#: How much of a receiver's answer ``send`` reads and shows.
MAX_RESPONSE: Final = 64 * 1024


@dataclasses.dataclass(frozen=True)
class Answer:
    """A receiver's answer to one POST."""

    status: int
    reason: str
    body: bytes
    location: str | None = None

    @property
    def ok(self) -> bool:
        """Whether the status is 2xx."""
        return 200 <= self.status < 300

    @property
    def duplicate(self) -> bool:
        """Whether the receiver said, in its JSON answer, that it had seen the delivery."""
        try:
            document = json.loads(self.body)
        except ValueError:
            return False
        return isinstance(document, dict) and document.get("duplicate") is True


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        """Decline every redirect: the 3xx then arrives as an HTTPError with its headers."""


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def post(url: str, body: bytes, headers: Mapping[str, str], timeout: float) -> Answer:
    """POST ``body`` once, following no redirect; the answer, whatever its status."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise CLIError(f"the URL must be http:// or https://, not {url!r}")
    request = urllib.request.Request(  # noqa: S310 - the scheme is checked just above
        url,
        data=body,
        headers={"User-Agent": f"hookshield/{__version__}", **headers},
        method="POST",
    )
    handlers: list[urllib.request.BaseHandler] = [_NoRedirect()]
    if _is_loopback(parts.hostname):
        handlers.append(urllib.request.ProxyHandler({}))
    opener = urllib.request.build_opener(*handlers)
    try:
        with opener.open(request, timeout=timeout) as response:
            return Answer(response.status, response.reason, response.read(MAX_RESPONSE))
    except urllib.error.HTTPError as exc:
        try:
            location = exc.headers.get("Location") if exc.headers else None
            return Answer(exc.code, str(exc.reason), exc.read(MAX_RESPONSE), location)
        finally:
            exc.close()
    except (urllib.error.URLError, OSError) as exc:
        reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
        raise CLIError(f"cannot reach {url}: {reason}", EXIT_IO) from None


def _data(path: str | None) -> dict[str, Any] | None:
    if path is None:
        return None
    try:
        loaded = json.loads(read_file(path, "--data"))
    except ValueError as exc:
        raise CLIError(f"--data {path} is not JSON: {exc}") from None
    if not isinstance(loaded, dict):
        raise CLIError(f"--data {path} must hold a JSON object")
    return loaded


def _delivery(args: argparse.Namespace) -> tuple[bytes, dict[str, str], str]:
    """The body, its headers, and what to call it in the report."""
    events: list[str] = args.event or []
    if not args.body and not events:
        raise CLIError("give the event type to send with --event TYPE (or a body with --body FILE)")
    for event_type in events:
        check_event_type(args.provider, event_type)
    content_type = FORM if args.form else None
    data = _data(args.data)
    try:
        if args.body:
            body, label = read_file(args.body, "--body"), args.body
        elif len(events) > 1:
            body = testing.sample_batch(events, provider=args.provider, overrides=data)
            label = ", ".join(events)
        else:
            body = testing.sample_body(args.provider, events[0], data, content_type=content_type)
            label = events[0]
        creds = signing_credentials(args)
        event = events[0] if events else None
        headers = testing.sign(args.provider, body, event=event, content_type=content_type, **creds)
    except (TypeError, ValueError) as exc:
        raise CLIError(str(exc)) from None
    return body, headers, label


def redirect_hint(url: str, location: str | None) -> str:
    """Why a redirect was not followed, and what to try instead."""
    if location is None:
        return "the receiver redirected without a Location header"
    target = urllib.parse.urljoin(url, location)
    hint = f"redirected to {target}: not followed, since a redirected POST arrives as a GET."
    here, there = urllib.parse.urlsplit(url).path, urllib.parse.urlsplit(target).path
    if here.rstrip("/") == there.rstrip("/") and here != there:
        slash = "ends with a slash" if there.endswith("/") else "has no trailing slash"
        hint += f" The receiver's route {slash}: send to {target} instead."
    else:
        hint += f" Send to {target} if that is the webhook's route."
    return hint


def cmd_send(args: argparse.Namespace, out: Printer) -> int:
    """``hookshield send``."""
    body, headers, label = _delivery(args)
    started = time.perf_counter()
    answer = post(args.url, body, headers, args.timeout)
    elapsed = time.perf_counter() - started
    text = answer.body.decode("utf-8", "replace")
    redirected = 300 <= answer.status < 400
    if args.json:
        report: dict[str, Any] = {
            "ok": answer.ok,
            "url": args.url,
            "provider": provider_name(args.provider),
            "events": args.event or [],
            "status": answer.status,
            "reason": answer.reason,
            "response": text,
            "duplicate": answer.duplicate,
            "seconds": round(elapsed, 4),
            # Credentials stay out of logs, as in every hookshield repr.
            "request_headers": Headers(headers).redacted(),
        }
        if redirected:
            report["location"] = answer.location
            report["hint"] = redirect_hint(args.url, answer.location)
        out.json(report)
        return EXIT_OK if answer.ok else EXIT_FAILED
    title = get_provider(args.provider).title
    colour = "green" if answer.ok else "red"
    lines = [
        f"sent      {title} {label} ({len(body)} bytes) to {args.url}",
        f"answered  {out.style(f'{answer.status} {printable(answer.reason)}', colour, 'bold')} "
        f"in {elapsed * 1000:.0f} ms",
        f"body      {printable(text) or '(empty)'}",
    ]
    if answer.duplicate:
        lines.append(
            out.style("duplicate", "yellow", "bold") + " the receiver had this delivery "
            "already: it acknowledged it and did not run its routes again"
        )
    if redirected:
        lines.append(
            out.style("redirect", "red", "bold")
            + "  "
            + printable(redirect_hint(args.url, answer.location))
        )
    out.lines(lines)
    return EXIT_OK if answer.ok else EXIT_FAILED
