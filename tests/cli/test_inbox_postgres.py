"""``hookshield worker`` and ``hookshield inbox`` on a ``postgresql://`` URL, and pausing a sender.

Against the session's real PostgreSQL server (``postgres_server`` in conftest.py).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hookshield import SQLiteInbox
from hookshield.postgres import PostgresInbox
from tests.cli.test_inbox import HOOKS, SECRET, cli, put

from ..postgres_server import PostgresServer

KEY = "cli-postgres-inbox-key-0123456789"


@pytest.fixture
def app_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A directory with an importable ``inbox_hooks`` module, made the current one."""
    (tmp_path / "inbox_hooks.py").write_text(HOOKS.format(secret=SECRET))
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("HOOKSHIELD_INBOX", raising=False)
    monkeypatch.setenv("HOOKSHIELD_INBOX_KEY", KEY)
    return tmp_path


def test_init_prints_its_sql_without_a_database(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = cli(capsys, "inbox", "init", "--sql")
    assert code == 0
    assert out.startswith("BEGIN;\n") and out.rstrip().endswith("COMMIT;")
    assert 'CREATE TABLE IF NOT EXISTS "hookshield_inbox"' in out
    assert 'CREATE TABLE IF NOT EXISTS "hookshield_dedupe"' in out


def test_the_commands_take_a_postgresql_url(
    app_dir: Path, postgres_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # A worker refuses a database without the inbox's tables, unless told to make them.
    code, _, err = cli(
        capsys, "worker", "inbox_hooks:mindpeeker", "--burst", "--inbox", postgres_url
    )
    assert code == 3 and "no hookshield_inbox here" in err and "inbox init" in err
    assert cli(capsys, "inbox", "init", "--inbox", postgres_url)[:2] == (
        0,
        "ready: hookshield_inbox, hookshield_dedupe\n",
    )
    inbox = PostgresInbox(postgres_url, key=KEY)
    stored = [put(inbox, f"evt_{n}") for n in range(3)]  # type: ignore[arg-type]
    put(inbox, "evt_moco", sender="moco")  # type: ignore[arg-type]
    code, out, _ = cli(capsys, "inbox", "pause", "moco", "--inbox", postgres_url)
    assert code == 0 and "moco: paused" in out
    code, out, _ = cli(capsys, "inbox", "ls", "--inbox", postgres_url, "--json")
    listed = json.loads(out)
    assert listed["counts"]["pending"] == 4 and list(listed["paused"]) == ["moco"]
    code, out, _ = cli(
        capsys,
        *("worker", "inbox_hooks:mindpeeker", "--burst", "--json"),
        *("--inbox", postgres_url, "--concurrency", "2"),
    )
    assert code == 0 and json.loads(out) == {"done": 3, "retried": 0, "dead": 0, "lost": 0}
    assert sorted((app_dir / "seen").read_text().split()) == ["evt_0", "evt_1", "evt_2"]
    code, out, _ = cli(capsys, "inbox", "show", stored[0].id, "--inbox", postgres_url)
    assert code == 0 and "state:        done, 1 attempt(s)" in out
    assert "<hidden>" in out  # the signature header
    code, out, _ = cli(capsys, "inbox", "resume", "moco", "--inbox", postgres_url)
    assert code == 0 and out == "moco: resumed\n"
    assert inbox.paused() == {}
    code, out, _ = cli(capsys, "inbox", "retry", stored[1].id, "--inbox", postgres_url)
    assert code == 0 and inbox.counts()["pending"] == 2
    code, out, _ = cli(
        capsys, "inbox", "purge", "--done", "--older-than", "0", "--inbox", postgres_url
    )
    assert code == 0 and out == "deleted 2 deliveries older than 0\n"
    inbox.close()


def test_a_wrong_url_is_one_line_naming_what_failed_without_the_password(
    app_dir: Path, postgres_server: PostgresServer, capsys: pytest.CaptureFixture[str]
) -> None:
    url = postgres_server.url("no_such_db", password="s3cret-password")
    for argv in (
        ("inbox", "ls", "--inbox", url),
        ("worker", "inbox_hooks:mindpeeker", "--burst", "--inbox", url),
        ("inbox", "init", "--inbox", url),
    ):
        code, out, err = cli(capsys, *argv)
        assert code == 3, err
        assert out == "" and err.count("\n") == 1
        assert f"postgres@127.0.0.1:{postgres_server.port}/no_such_db" in err
        assert 'database "no_such_db" does not exist' in err
        assert "s3cret" not in err


def test_an_inbox_without_its_key_is_refused_plainly(
    app_dir: Path,
    postgres_url: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("HOOKSHIELD_INBOX_KEY")
    code, _, err = cli(capsys, "inbox", "ls", "--inbox", postgres_url)
    assert code == 2 and "needs the key" in err


def test_pause_and_resume_an_sqlite_inbox(
    app_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    inbox = SQLiteInbox(app_dir / "webhooks.db")
    put(inbox, "evt_paused")
    assert cli(capsys, "inbox", "pause", "mindpeeker", "--inbox", "webhooks.db")[0] == 0
    code, out, _ = cli(capsys, "inbox", "pause", "mindpeeker", "--inbox", "webhooks.db")
    assert (code, out) == (0, "mindpeeker: paused already\n")
    code, out, _ = cli(capsys, "inbox", "ls", "--inbox", "webhooks.db")
    assert out.startswith("paused (not run until resumed): mindpeeker\n")
    code, out, _ = cli(
        capsys, "worker", "inbox_hooks:mindpeeker", "--burst", "--inbox", "webhooks.db"
    )
    assert code == 0 and "0 done" in out and not (app_dir / "seen").exists()
    assert cli(capsys, "inbox", "resume", "mindpeeker", "--inbox", "webhooks.db")[0] == 0
    code, out, _ = cli(
        capsys, "worker", "inbox_hooks:mindpeeker", "--burst", "--inbox", "webhooks.db"
    )
    assert code == 0 and "1 done" in out
    assert (app_dir / "seen").read_text() == "evt_paused\n"
    code, _, err = cli(capsys, "inbox", "pause", "", "--inbox", "webhooks.db")
    assert code == 2 and "not a sender's name" in err


def test_worker_options_are_checked(app_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    SQLiteInbox(app_dir / "webhooks.db").counts()
    for option in (("--concurrency", "0"), ("--stop-timeout", "inf")):
        code, _, err = cli(
            capsys, "worker", "inbox_hooks:mindpeeker", "--inbox", "webhooks.db", *option
        )
        assert code == 2 and "--concurrency must be at least 1" in err
