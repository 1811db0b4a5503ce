"""``hookshield inbox`` and ``hookshield worker``: an inbox that exists, errors, JSON, signals."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from hookshield import SQLiteDedupeStore, SQLiteInbox, StoredDelivery
from hookshield._durable.inbox import new_id
from hookshield.cli import main
from hookshield.testing import sign
from tests.cli.helpers import PY, TIMEOUT, clean_env

SECRET = "whsec_worker"

HOOKS = """
import time
from pathlib import Path
from hookshield import WebhookHandler

mindpeeker = WebhookHandler("mindpeeker", secret={secret!r})

@mindpeeker.on("*")
def record(event):
    if event.id == "evt_hang":
        Path("route-started").touch()
        time.sleep(120)  # a route that hangs: only stopping at once ends it
    with open("seen", "a") as seen:
        seen.write(event.id + "\\n")
"""


@pytest.fixture
def app_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A directory with an importable ``inbox_hooks`` module, made the current one."""
    (tmp_path / "inbox_hooks.py").write_text(HOOKS.format(secret=SECRET))
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("HOOKSHIELD_INBOX", raising=False)
    return tmp_path


def put(inbox: SQLiteInbox, event_id: str, *, sender: str = "mindpeeker") -> StoredDelivery:
    """Store a MindPeeker delivery signed with SECRET whose event is ``event_id``."""
    now = time.time() - 1
    body = json.dumps({"id": event_id, "type": "session.completed", "data": {}}).encode()
    stored = StoredDelivery(
        id=new_id(now),
        sender=sender,
        handler=sender,
        body=body,
        headers=tuple(sign("mindpeeker", body, secret=SECRET).items()),
        received=now,
        event_types=("session.completed",),
        next_attempt=now,
    )
    inbox.put(stored)
    return stored


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


WORKER = ("worker", "inbox_hooks:mindpeeker", "--burst")
READERS = [
    ("inbox", "ls"),
    ("inbox", "show", "0123"),
    ("inbox", "retry", "0123"),
    ("inbox", "retry", "--dead"),
    ("inbox", "purge", "--done"),
    WORKER,
]


# -- 1. an inbox that exists, and only that -------------------------------------------


@pytest.mark.parametrize("argv", READERS)
def test_a_missing_inbox_is_refused_and_not_created(
    app_dir: Path, capsys: pytest.CaptureFixture[str], argv: tuple[str, ...]
) -> None:
    code, out, err = cli(capsys, *argv, "--inbox", "typo.db")
    assert (code, out) == (3, "")
    assert err.startswith("hookshield: error: --inbox typo.db: the file does not exist")
    assert len(err.splitlines()) == 1
    if argv == WORKER:
        assert "--create" in err
    assert not (app_dir / "typo.db").exists()


def test_the_worker_creates_a_missing_inbox_when_told(
    app_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = cli(capsys, *WORKER, "--inbox", "new.db", "--create")
    assert code == 0 and "0 done" in out
    assert SQLiteInbox(app_dir / "new.db", read_only=True).counts()["pending"] == 0


@pytest.mark.parametrize("argv", [*READERS, (*WORKER, "--create")])
def test_the_dedupe_database_is_not_an_inbox_and_is_left_alone(
    app_dir: Path, capsys: pytest.CaptureFixture[str], argv: tuple[str, ...]
) -> None:
    store = SQLiteDedupeStore(app_dir / "dedupe.db")
    store.claim("a-key", 60)
    store.close()
    code, out, err = cli(capsys, *argv, "--inbox", "dedupe.db")
    assert (code, out) == (3, "")
    assert err == (
        "hookshield: error: --inbox 'dedupe.db' is not a hookshield inbox: "
        "it has no hookshield_inbox table\n"
    )
    db = sqlite3.connect(app_dir / "dedupe.db")
    tables = [row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type='table'")]
    db.close()
    assert tables == ["hookshield_dedupe"]


# -- 2. a file that cannot be used: one line, exit 3 ----------------------------------


def _text_file(path: Path) -> None:
    path.write_text("not a database, just notes\n" * 200)


def _truncated(path: Path) -> None:
    inbox = SQLiteInbox(path)
    for index in range(100):
        put(inbox, f"evt_{index}")
    inbox.close()  # the last connection checkpoints the log into the file
    with path.open("r+b") as file:
        file.truncate(path.stat().st_size // 2)


@pytest.mark.parametrize("damage", [_text_file, _truncated], ids=["text", "truncated"])
@pytest.mark.parametrize("argv", READERS)
def test_a_file_that_is_not_a_sound_inbox_is_one_line_and_exit_3(
    app_dir: Path, capsys: pytest.CaptureFixture[str], argv: tuple[str, ...], damage: object
) -> None:
    damage(app_dir / "bad.db")  # type: ignore[operator]
    code, out, err = cli(capsys, *argv, "--inbox", "bad.db")
    assert (code, out) == (3, "")
    assert err.startswith("hookshield: error: --inbox 'bad.db' is not a hookshield inbox: ")
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    code, out, _ = cli(capsys, *argv, "--inbox", "bad.db", "--json")
    assert code == 3
    answer = json.loads(out)
    assert answer["ok"] is False and answer["exit"] == 3
    assert "is not a hookshield inbox" in answer["error"]


@pytest.mark.parametrize(
    "argv", [("inbox", "retry", "--dead"), ("inbox", "purge", "--dead", "--older-than", "0s")]
)
def test_an_os_error_while_writing_is_one_line_and_exit_3(
    app_dir: Path, capsys: pytest.CaptureFixture[str], argv: tuple[str, ...]
) -> None:
    inbox = SQLiteInbox(app_dir / "webhooks.db", lease=60)
    put(inbox, "evt_dead")
    taken = inbox.lease(time.time(), ["mindpeeker"])
    assert taken is not None and inbox.dead(taken, "boom")
    inbox.close()
    # The writers' lock file beside the inbox cannot be opened: a directory stands there.
    (app_dir / "webhooks.db-writer").unlink()
    (app_dir / "webhooks.db-writer").mkdir()
    code, out, err = cli(capsys, *argv, "--inbox", "webhooks.db")
    assert (code, out) == (3, "")
    assert err == "hookshield: error: --inbox webhooks.db: webhooks.db-writer: Is a directory\n"


@pytest.mark.parametrize(
    ("path", "message"),
    [("no/such/dir/x.db", "the directory 'no/such/dir' does not exist"), (".", "is a directory")],
)
def test_a_path_that_cannot_be_an_inbox_file_is_exit_3(
    app_dir: Path, capsys: pytest.CaptureFixture[str], path: str, message: str
) -> None:
    code, _, err = cli(capsys, "inbox", "ls", "--inbox", path)
    assert code == 3 and message in err and len(err.splitlines()) == 1


# -- 3. --json, id prefixes, help ---------------------------------------------------


@pytest.fixture
def stocked(app_dir: Path) -> tuple[str, SQLiteInbox, list[StoredDelivery]]:
    db = str(app_dir / "webhooks.db")
    inbox = SQLiteInbox(db, lease=60)
    rows = [put(inbox, "evt_a")]
    rows.append(put(inbox, "evt_b"))
    rows.append(put(inbox, "evt_c", sender="moco"))
    for delivery_id in ("feed01", "feed02"):  # two ids with a common start
        inbox.put(dataclasses.replace(rows[0], id=delivery_id))
    return db, inbox, rows


def test_ls_and_show_print_json(
    stocked: tuple[str, SQLiteInbox, list[StoredDelivery]], capsys: pytest.CaptureFixture[str]
) -> None:
    db, _, rows = stocked
    code, out, _ = cli(capsys, "inbox", "ls", "--inbox", db, "--json")
    assert code == 0
    listed = json.loads(out)
    assert listed["counts"] == {"pending": 5, "leased": 0, "done": 0, "dead": 0}
    first = listed["deliveries"][0]
    assert first["id"] == rows[0].id and first["sender"] == "mindpeeker"
    assert (first["state"], first["attempts"], first["last_error"]) == ("pending", 0, None)
    assert first["event_types"] == ["session.completed"]
    code, out, _ = cli(capsys, "inbox", "ls", "--inbox", db, "--state", "dead", "--json")
    assert json.loads(out)["deliveries"] == []

    code, out, _ = cli(capsys, "inbox", "show", rows[1].id, "--inbox", db, "--json")
    assert code == 0
    shown = json.loads(out)
    assert shown["id"] == rows[1].id
    assert json.loads(shown["body"])["id"] == "evt_b"
    headers = dict(shown["headers"])
    assert headers["X-MindPeeker-Signature"] == "<hidden>"
    assert headers["Content-Type"] == "application/json"


def test_show_and_retry_take_a_unique_start_of_an_id(
    stocked: tuple[str, SQLiteInbox, list[StoredDelivery]], capsys: pytest.CaptureFixture[str]
) -> None:
    db, inbox, _ = stocked
    code, out, _ = cli(capsys, "inbox", "show", "feed02", "--inbox", db)
    assert code == 0 and "id:           feed02" in out
    code, out, _ = cli(capsys, "inbox", "show", "feed0", "--inbox", db)
    assert code == 2 and out == ""
    code, _, err = cli(capsys, "inbox", "show", "feed", "--inbox", db)
    assert code == 2
    assert err == (
        "hookshield: error: 'feed' is the start of 2 delivery ids (feed01, feed02): "
        "give more of the id\n"
    )
    code, out, _ = cli(capsys, "inbox", "show", "feed0", "--inbox", db, "--json")
    assert code == 2 and "is the start of 2 delivery ids" in json.loads(out)["error"]
    code, _, err = cli(capsys, "inbox", "show", "nothing", "--inbox", db)
    assert code == 1 and "no delivery 'nothing'" in err

    taken = inbox.lease(time.time(), ["mindpeeker"])
    assert taken is not None and inbox.dead(taken, "boom")
    code, out, _ = cli(capsys, "inbox", "retry", taken.id[:14], "--inbox", db)
    assert (code, out) == (0, f"{taken.id}: pending, due now\n")
    code, _, err = cli(capsys, "inbox", "retry", "feed", "--inbox", db)
    assert code == 2 and "is the start of 2 delivery ids" in err


def test_the_worker_prints_its_counts_as_json_and_warns_of_unhandled_senders(
    stocked: tuple[str, SQLiteInbox, list[StoredDelivery]],
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    db, _, _ = stocked
    code, out, _ = cli(capsys, *WORKER, "--inbox", db, "--json")
    assert code == 0
    assert json.loads(out) == {"done": 4, "retried": 0, "dead": 0, "lost": 0}
    assert "1 deliveries for 'moco' wait in the inbox, but this worker has no handler" in (
        caplog.text
    )


@pytest.mark.parametrize(
    "argv",
    [
        ("inbox",),
        ("inbox", "ls"),
        ("inbox", "show"),
        ("inbox", "retry"),
        ("inbox", "purge"),
        ("worker",),
    ],
)
def test_help_shows_defaults_and_examples(
    capsys: pytest.CaptureFixture[str], argv: tuple[str, ...]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main([*argv, "--help"])
    assert exit_info.value.code == 0
    out = " ".join(capsys.readouterr().out.split())  # the words, however wrapped
    assert "examples: hookshield" in out
    assert f"hookshield {' '.join(argv)} " in out  # an example of this very command
    assert "(default: $HOOKSHIELD_INBOX)" in out
    defaults = {"ls": "(default: 50)", "purge": "(default: 7d)", "worker": "(default: 300)"}
    if argv[-1] in defaults:
        assert defaults[argv[-1]] in out


# -- 6. a second signal stops the worker at once --------------------------------------


@pytest.fixture
def hung_worker(app_dir: Path) -> Iterator[tuple[subprocess.Popen[str], SQLiteInbox]]:
    """A ``hookshield worker`` process whose route hangs on its one delivery."""
    inbox = SQLiteInbox(app_dir / "webhooks.db", lease=600)
    put(inbox, "evt_hang")
    proc = subprocess.Popen(
        [*PY, "worker", "inbox_hooks:mindpeeker", "--inbox", "webhooks.db", "--poll", "0.05"],
        cwd=app_dir,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=clean_env(),
    )
    try:
        deadline = time.monotonic() + TIMEOUT
        while not (app_dir / "route-started").exists():
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "the route did not start"
            time.sleep(0.02)
        yield proc, inbox
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
        proc.communicate()


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_second_signal_stops_the_worker_at_once(
    hung_worker: tuple[subprocess.Popen[str], SQLiteInbox], signum: int, code: int
) -> None:
    proc, inbox = hung_worker
    os.kill(proc.pid, signum)
    time.sleep(1.0)
    assert proc.poll() is None  # the first signal waits for the delivery in hand
    os.kill(proc.pid, signum)
    try:
        out, err = proc.communicate(timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        pytest.fail("a second signal did not stop the worker")
    assert proc.returncode == code
    assert "Traceback" not in err
    assert "stopping after the current delivery (send it again to stop at once)" in err
    assert "stopping at once; the delivery in hand stays leased" in err
    assert out == ""
    [row] = inbox.list()
    assert (row.state, row.attempts) == ("leased", 1)  # back once its lease ends
