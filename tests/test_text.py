"""Text from a delivery reaches a terminal or a log escaped (``_text.printable``).

A newline in a signed id, an event type or a route's error would otherwise forge a
log line of its own, and ESC, BEL, CR or CSI would command the terminal that shows
it.  The command's output is specified in ``tests/cli/test_sender_text.py``.
"""

from __future__ import annotations

import json
import logging
import time
import unicodedata
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hookshield import Event, Retry, SQLiteInbox, StoredDelivery, WebhookHandler
from hookshield._core.text import printable
from hookshield._durable.inbox import new_id
from hookshield._durable.worker import Worker
from hookshield.mindpeeker import WebhookHandler as MindPeekerSDK
from hookshield.testing import sample_body, sign

SECRET = "whsec_text"
#: A newline that would start a forged log line, what retitles a terminal, and what
#: reorders or breaks a line without being a control character.
FORGED = (
    "evt_1\nINFO hookshield: duplicate mindpeeker delivery evt_2\x1b]0;pwned\x07\r\x9b\u202e\u2028"
)


#: Unicode's Bidi_Control characters: each reorders what follows it on the line.
BIDI = "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"


def is_control(char: str) -> bool:
    """A character that commands a terminal, breaks a line, or reorders one."""
    return unicodedata.category(char) in ("Cc", "Cs", "Zl", "Zp") or char in BIDI


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("\x1b]0;pwned\x07", "\\x1b]0;pwned\\x07"),
        ("a\rb", "a\\rb"),
        ("a\nb", "a\\nb"),
        ("\t", "\\t"),
        ("\x9b2J", "\\x9b2J"),
        ("\x7f\x00\x85", "\\x7f\\x00\\x85"),
        ("\ud800", "\\ud800"),
        # A right-to-left override shows "evt_1\u202e3pm" as "evt_1mp3".
        ("evt_1\u202e3pm", "evt_1\\u202e3pm"),
        ("\u2066a\u2069\u200f\u061c", "\\u2066a\\u2069\\u200f\\u061c"),
        ("a\u2028b\u2029c", "a\\u2028b\\u2029c"),
        ("évènement ✓ \\n", "évènement ✓ \\n"),
    ],
)
def test_each_control_character_is_shown_as_python_writes_it(text: str, shown: str) -> None:
    assert printable(text) == shown


def test_lines_keeps_line_breaks_and_tabs_but_not_a_carriage_return() -> None:
    assert printable("a\n\tb\r\x1b", lines=True) == "a\n\tb\\r\\x1b"


def test_anything_is_shown_as_its_text() -> None:
    assert printable(ValueError("bad\nvalue")) == "bad\\nvalue"
    assert printable(None) == "None"


@given(st.text())
def test_the_result_never_holds_a_control_character(text: str) -> None:
    assert not any(is_control(c) for c in printable(text))
    assert not any(is_control(c) for c in printable(text, lines=True) if c not in "\n\t")


@given(
    st.text(st.characters(blacklist_categories=("Cc", "Cs", "Zl", "Zp"), blacklist_characters=BIDI))
)
def test_printable_text_is_returned_unchanged(text: str) -> None:
    assert printable(text) == text
    assert printable(text, lines=True) == text


@given(st.text())
def test_escaping_twice_changes_nothing_more(text: str) -> None:
    assert printable(printable(text)) == printable(text)


# -- the log lines that carry a sender's text ------------------------------------------


def messages(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name.startswith("hookshield")]


def assert_one_line_each(caplog: pytest.LogCaptureFixture) -> None:
    found = messages(caplog)
    assert found
    for message in found:
        assert not any(is_control(c) for c in message), message


def forged_delivery() -> tuple[bytes, dict[str, str]]:
    """A signed MindPeeker delivery whose event type and id carry FORGED."""
    payload = json.loads(sample_body("mindpeeker", "session.completed"))
    payload["type"], payload["id"] = "session." + FORGED, FORGED
    body = json.dumps(payload).encode()
    return body, sign("mindpeeker", body, secret=SECRET)


def test_a_refused_and_a_failed_delivery_log_one_line_each(
    caplog: pytest.LogCaptureFixture,
) -> None:
    handler = WebhookHandler("mindpeeker", secret=SECRET)

    @handler.on("*")
    def fails(event: Event) -> None:
        raise RuntimeError("the database is down")

    body, headers = forged_delivery()
    with caplog.at_level(logging.INFO, logger="hookshield"):
        accepted = handler.accept(body, headers)
        assert handler.handle(body, headers).status == 409  # refused: in progress
        assert accepted.finish().status == 500  # the route failed
        handler.handle(body, {**headers, "X-MindPeeker-Signature": "sha256=" + "0" * 64})
    assert_one_line_each(caplog)
    shown = printable(FORGED)
    refused, failed, forged = messages(caplog)
    assert refused.endswith(f"delivery event:{shown} is in progress")
    assert f"on a session.{shown} event" in failed
    assert "refused (401)" in forged


def test_a_worker_logs_a_route_error_on_one_line(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    inbox = SQLiteInbox(tmp_path / "inbox.db")
    handler = WebhookHandler("mindpeeker", secret=SECRET)

    @handler.on("*")
    def fails(event: Event) -> None:
        raise RuntimeError(f"no row for {event.id}")

    body, headers = forged_delivery()
    now = time.time() - 1
    inbox.put(
        StoredDelivery(
            id=new_id(now),
            sender="mindpeeker",
            handler="mindpeeker",
            body=body,
            headers=tuple(headers.items()),
            received=now,
            next_attempt=now,
        )
    )
    clock = [now]
    worker = Worker(inbox, {"mindpeeker": handler}, Retry(max_attempts=2), lambda: clock[0])
    with caplog.at_level(logging.INFO, logger="hookshield"):
        while worker.stats.dead == 0:
            if not worker.run_once():
                clock[0] += 3600  # the retry is due
    assert (worker.stats.retried, worker.stats.dead) == (1, 1)
    assert_one_line_each(caplog)
    error = f"RuntimeError: no row for {printable(FORGED)}"
    assert sum(error in message for message in messages(caplog)) == 2  # retried, then dead


def test_the_mindpeeker_sdks_debug_log_is_one_line(caplog: pytest.LogCaptureFixture) -> None:
    sdk = MindPeekerSDK(SECRET, debug=True)
    body, headers = forged_delivery()
    with caplog.at_level(logging.INFO, logger="hookshield"):
        event = sdk.construct_event(body, headers["X-MindPeeker-Signature"])
        sdk.process_event(event)
    assert_one_line_each(caplog)
