"""What a sender wrote reaches the operator's terminal escaped, never as commands.

ESC starts the sequence that retitles a terminal (``ESC ] 0 ; title BEL``), CSI
(``\\x9b``) one that clears it, CR returns to the start of the line to print over it,
and a newline forges a line of its own.  Each is shown as ``\\x1b``, ``\\x9b``,
``\\r``, ``\\n`` by ``hookshield inbox ls``/``show``, ``verify`` and ``listen``.
"""

from __future__ import annotations

import json
import time
import unicodedata
from pathlib import Path

import pytest

from hookshield import Delivery, Headers, Outcome, SQLiteInbox, StoredDelivery
from hookshield.cli import main
from hookshield.cli._output import Printer, received_lines
from hookshield.cli._server import Received
from hookshield.providers.mindpeeker import MindPeekerEvent
from hookshield.testing import sample_body, sign

TITLE = "\x1b]0;pwned\x07"  # sets the terminal's title
EVIL = f"{TITLE}a\rb\nc\x9b2J"
SHOWN = "\\x1b]0;pwned\\x07a\\rb\\nc\\x9b2J"
SECRET = "whsec_sender_text"


#: Unicode's Bidi_Control characters: each reorders what follows it on the line.
BIDI = "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"


def controls(text: str) -> set[str]:
    """The control, line-separating and reordering characters in ``text``, line breaks aside."""
    return {
        c
        for c in text
        if (unicodedata.category(c) in ("Cc", "Zl", "Zp") or c in BIDI) and c != "\n"
    }


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def db(tmp_path: Path) -> str:
    path = str(tmp_path / "inbox.db")
    now = time.time()
    SQLiteInbox(path).put(
        StoredDelivery(
            id=EVIL,
            sender="mindpeeker",
            handler="mindpeeker",
            body=f'{{"type": "{TITLE}a\rb\x9b2J",\n "id": 1}}'.encode(),
            headers=(("X-Trace", EVIL), (f"X-{EVIL}", "1")),
            received=now,
            event_types=(EVIL, "session.completed"),
            state="dead",
            next_attempt=now,
            last_error=f"RuntimeError: {EVIL}",
        )
    )
    return path


def test_inbox_ls_shows_sender_text_escaped(db: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = cli(capsys, "inbox", "ls", "--inbox", db)
    assert code == 0
    assert controls(out) == set()
    lines = out.splitlines()
    assert len(lines) == 3  # the header, the one delivery, the counts
    assert SHOWN in lines[1]  # its id
    assert lines[1].count("\\x1b]0;pwned\\x07") >= 3  # and its events and last error


def test_inbox_show_shows_sender_text_escaped(db: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = cli(capsys, "inbox", "show", EVIL, "--inbox", db)
    assert code == 0
    assert controls(out) == set()
    assert f"id:           {SHOWN}" in out
    assert f"events:       {SHOWN}, session.completed" in out
    assert f"last error:   RuntimeError: {SHOWN}" in out
    assert f"  X-Trace: {SHOWN}" in out
    assert f"  X-{SHOWN}: 1" in out
    # The body keeps its own line breaks, and only those.
    assert '{"type": "\\x1b]0;pwned\\x07a\\rb\\x9b2J",\n "id": 1}' in out


def evil_mindpeeker_body() -> bytes:
    payload = json.loads(sample_body("mindpeeker", "session.completed"))
    payload["type"], payload["id"] = EVIL, EVIL
    payload["data"]["session_id"] = EVIL
    return json.dumps(payload).encode()


def test_verify_shows_sender_text_escaped(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    body = evil_mindpeeker_body()
    (tmp_path / "body.json").write_bytes(body)
    headers = [f"{k}: {v}" for k, v in sign("mindpeeker", body, secret=SECRET).items()]
    argv = ["verify", "-p", "mindpeeker", "--secret", SECRET, str(tmp_path / "body.json")]
    for header in headers:
        argv += ["-H", header]
    code, out, _ = cli(capsys, *argv)
    assert code == 0
    assert controls(out) == set()
    assert SHOWN in out.splitlines()[1]  # the event's type and id


def test_json_output_has_no_control_character_and_the_same_values(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    body = evil_mindpeeker_body().replace(b"2J", b"2J\\u007f\\u0085\\u202e\\u2028")
    (tmp_path / "body.json").write_bytes(body)
    argv = ["verify", "-p", "mindpeeker", "--secret", SECRET, "--json", str(tmp_path / "body.json")]
    for name, value in sign("mindpeeker", body, secret=SECRET).items():
        argv += ["-H", f"{name}: {value}"]
    code, out, _ = cli(capsys, *argv)
    assert code == 0
    assert controls(out) == set()
    (event,) = json.loads(out)["events"]
    assert event["type"] == EVIL + "\x7f\x85\u202e\u2028"


def test_listen_lines_show_sender_text_escaped() -> None:
    event = MindPeekerEvent(provider="mindpeeker", type=EVIL, id=EVIL)
    delivery = Delivery(
        provider="mindpeeker", id=EVIL, events=(event,), headers=Headers(), body=b""
    )
    received = Received(f"/{EVIL}", "127.0.0.1", Outcome(401, EVIL, delivery))
    text = "\n".join(received_lines(Printer(), received))
    assert controls(text) == set()
    assert f"POST /{SHOWN}  401  {SHOWN}" in text
    assert f"delivery {SHOWN}" in text
