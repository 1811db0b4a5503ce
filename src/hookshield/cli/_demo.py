"""``hookshield demo``: a receiver on 127.0.0.1 accepts and rejects deliveries, and says why.

Theory of operation: every sender whose module declares a
:class:`~hookshield.providers.DemoScript` gets a real :class:`~hookshield.WebhookHandler`
on its own path of a loopback :class:`~hookshield.cli._server.Receiver`, and one valid
delivery built by :mod:`hookshield.testing`.  The bad deliveries are built here by one
rule each, for the senders whose script names them (``attacks``): nothing in this
module names a sender, so a new sender joins the demo from its own module.  Each case
passes when the HTTP status, and whether the routes ran, are what they must be.
"""

from __future__ import annotations

import argparse
import dataclasses
import shutil
import threading
from collections.abc import Callable
from typing import Any, Final

from .. import testing
from .._core.events import Event
from .._handling.handler import WebhookHandler
from .._handling.outcome import Outcome
from ..providers import PROVIDERS, DemoScript, Provider
from ._client import post
from ._common import EXIT_FAILED, EXIT_OK, first_sentence
from ._listen import bind
from ._output import Printer, table
from ._server import Received

__all__ = ["DemoCase", "cmd_demo", "demo_cases"]


@dataclasses.dataclass(frozen=True)
class DemoCase:
    """One delivery the demo sends, and what the receiver must make of it."""

    name: str
    provider: str
    body: bytes
    headers: dict[str, str]
    status: int
    dispatched: bool
    #: Why the receiver must answer as it does, in a newcomer's words.
    story: str = ""


def _scripts() -> dict[str, tuple[Provider, DemoScript]]:
    """Each registered sender's script, with its credentials (its test ones by default)."""
    scripts = {}
    for name, provider in PROVIDERS.items():
        script = provider.demo
        if script is not None:
            if script.credentials is None:
                script = dataclasses.replace(script, credentials=provider.test_credentials)
            scripts[name] = (provider, script)
    return scripts


def _credentials(script: DemoScript) -> dict[str, Any]:
    return dict(script.credentials or {})


def _valid(name: str, script: DemoScript) -> DemoCase:
    body = testing.sample_batch(script.event_types, provider=name)
    headers = testing.sign(name, body, event=script.event_types[0], **_credentials(script))
    return DemoCase("valid", name, body, headers, 200, True)


def _forged(name: str, script: DemoScript, valid: DemoCase) -> DemoCase:
    guess = testing.forged_credentials(name, _credentials(script))
    body = testing.sample_batch(script.event_types, provider=name)
    headers = testing.sign(name, body, event=script.event_types[0], **guess)
    story = "signed with a wrong secret"
    return DemoCase("forged", name, body, headers, 401, False, story)


def _tampered(name: str, script: DemoScript, valid: DemoCase) -> DemoCase:
    before, after = script.tamper or (b"", b"")
    body, headers = testing.sample_delivery(name, script.event_types[0], **_credentials(script))
    tampered = body.replace(before, after, 1)
    story = f"body changed after signing ({before.decode()} became {after.decode()})"
    return DemoCase("tampered", name, tampered, headers, 401, False, story)


def _unsigned(name: str, script: DemoScript, valid: DemoCase) -> DemoCase:
    sender = PROVIDERS[name]
    # Every header that can carry the credential is dropped.
    carriers = {h.lower() for h in (sender.signature_header, sender.default_token_header) if h} | {
        "authorization"
    }
    headers = {k: v for k, v in valid.headers.items() if k.lower() not in carriers}
    body = testing.sample_batch(script.event_types, provider=name)
    story = "credential header removed"
    return DemoCase("unsigned", name, body, headers, 401, False, story)


def _replayed(name: str, script: DemoScript, valid: DemoCase) -> DemoCase:
    # Fresh headers (a new delivery ID) on the valid body: what an attacker who
    # captured a delivery, or a sender retrying, sends again.
    headers = testing.sign(name, valid.body, event=script.event_types[0], **_credentials(script))
    story = (
        f"the valid {PROVIDERS[name].title} body sent again with a new delivery ID: "
        "the same signed body is a duplicate of one already handled, so it is acknowledged "
        "(200, a retrying sender stops) and the routes do not run twice"
    )
    return DemoCase("replayed", name, valid.body, headers, 200, False, story)


_ATTACKS: Final[dict[str, Callable[[str, DemoScript, DemoCase], DemoCase]]] = {
    "forged": _forged,
    "tampered": _tampered,
    "unsigned": _unsigned,
    "replayed": _replayed,
}


def demo_cases() -> list[DemoCase]:
    """One valid delivery per sender, then the bad ones the senders' scripts name."""
    scripts = _scripts()
    valid = {name: _valid(name, script) for name, (_, script) in scripts.items()}
    cases = list(valid.values())
    for attack, build in _ATTACKS.items():
        for name, (_, script) in scripts.items():
            if attack in script.attacks:
                cases.append(build(name, script, valid[name]))
    return cases


def _handlers(handled: list[Event], lock: threading.Lock) -> dict[str, WebhookHandler]:
    routes: dict[str, WebhookHandler] = {}
    for name, (_, script) in _scripts().items():
        handler = WebhookHandler(name, stream_batches=False, **_credentials(script))

        @handler.on("*")
        def record(event: Event) -> None:
            with lock:
                handled.append(event)

        routes["/hooks/" + name] = handler
    return routes


def run_cases(cases: list[DemoCase]) -> tuple[str, list[dict[str, Any]]]:
    """Send each case to a fresh loopback receiver; its URL and a result per case."""
    handled: list[Event] = []
    outcomes: list[Received] = []
    lock = threading.Lock()

    def report(received: Received) -> None:
        with lock:
            outcomes.append(received)

    server = bind(("127.0.0.1", 0), _handlers(handled, lock), report)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    results = []
    try:
        for case in cases:
            with lock:
                before_events, before_outcomes = len(handled), len(outcomes)
            answer = post(f"{server.url}/hooks/{case.provider}", case.body, case.headers, 5.0)
            # The receiver reports each request before it answers it.
            with lock:
                new_events = handled[before_events:]
                outcome = outcomes[-1].outcome if len(outcomes) > before_outcomes else None
            results.append(_result(case, answer.status, new_events, outcome))
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
    return server.url, results


def _why(case: DemoCase, events: list[Event], outcome: Outcome | None) -> str:
    if outcome is None:
        return "the receiver did not report this request"
    script = PROVIDERS[case.provider].demo
    if case.name == "valid" and outcome.ok and events and script is not None:
        kinds = sorted({e.type for e in events})
        return f"{script.accepted}; handled " + ", ".join(kinds)
    if outcome.ok:
        return case.story or outcome.reason
    reason = first_sentence(outcome.reason)
    return f"{case.story}: {reason}" if case.story else reason


def _result(
    case: DemoCase, status: int, events: list[Event], outcome: Outcome | None
) -> dict[str, Any]:
    dispatched = len(events)
    return {
        "case": case.name,
        "provider": case.provider,
        "sender": PROVIDERS[case.provider].title,
        "expected": {"status": case.status, "handled": case.dispatched},
        "got": {"status": status, "events_handled": dispatched},
        "passed": status == case.status and (dispatched > 0) == case.dispatched,
        "why": _why(case, events, outcome),
    }


def _answer(result: dict[str, Any]) -> str:
    """``200, 3 handled`` / ``401, refused`` / ``200, not run again``."""
    status, n = result["got"]["status"], result["got"]["events_handled"]
    if n:
        return f"{status}, {n} handled"
    return f"{status}, " + ("refused" if status >= 400 else "not run")


def _print(out: Printer, url: str, results: list[dict[str, Any]], ok: bool) -> None:
    header = ["#", "CASE", "SENDER", "ANSWER", "RESULT", "WHY"]
    rows, styles = [], []
    for n, result in enumerate(results, 1):
        why = result["why"]
        if not result["passed"]:
            want = result["expected"]
            why = f"expected {want['status']}, routes {'run' if want['handled'] else 'not run'}; {why}"
        rows.append(
            [
                str(n),
                result["case"],
                result["sender"],
                _answer(result),
                "pass" if result["passed"] else "FAIL",
                why,
            ]
        )
        styles.append([(), (), (), (), ("green",) if result["passed"] else ("red", "bold"), ()])
    passed = sum(result["passed"] for result in results)
    summary = (
        out.style(f"all {passed} cases behaved as they should", "green", "bold")
        if ok
        else out.style(f"{len(results) - passed} of {len(results)} cases FAILED", "red", "bold")
    )
    width = shutil.get_terminal_size().columns
    out.lines(
        [
            f"hookshield demo: a receiver on {url} (loopback only)",
            "",
            *table(out, header, rows, styles, width=width),
            "",
            summary,
        ]
    )


def cmd_demo(args: argparse.Namespace, out: Printer) -> int:
    """``hookshield demo``."""
    url, results = run_cases(demo_cases())
    ok = all(result["passed"] for result in results)
    if args.json:
        out.json({"ok": ok, "receiver": url, "cases": results})
    else:
        _print(out, url, results, ok)
    return EXIT_OK if ok else EXIT_FAILED
