"""``hookshield inbox`` at the dashboard's parity: filters, --dry-run, refused, serve.

Each test that opens an inbox runs on an SQLite file and on a real PostgreSQL
database (``--inbox postgresql://...``): the command line asks both the same.
"""

from __future__ import annotations

import json
import re
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from hookshield import DeliveryFilter, ManagedInbox, SQLiteInbox, WebhookHandler
from hookshield._dashboard._serve import is_loopback
from hookshield._durable.refused import refused_delivery
from hookshield.cli import main
from hookshield.testing import sample_delivery
from tests.cli.helpers import PY, TIMEOUT, clean_env

from ..dashboard.support import SECRET, stock


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


KEY = "cli-filters-inbox-key-0123456789"
#: What ``--inbox`` names each inbox of the fixture by: its file, or its URL.
_PLACES: dict[int, str] = {}


@pytest.fixture(params=["sqlite", "postgres"])
def inbox(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[ManagedInbox]:
    made: ManagedInbox
    if request.param == "sqlite":
        where = str(tmp_path / "inbox.db")
        made = SQLiteInbox(where, keep_refused=10)
    else:
        from hookshield.postgres import PostgresInbox

        # The command reads the key where a deployment keeps it: the environment.
        monkeypatch.setenv("HOOKSHIELD_INBOX_KEY", KEY)
        where = request.getfixturevalue("postgres_url")
        made = PostgresInbox(where, key=KEY, keep_refused=10)
    made.counts()  # made before the command opens it
    _PLACES[id(made)] = where
    yield made
    del _PLACES[id(made)]
    made.close()


def place(inbox: ManagedInbox) -> str:
    """What ``--inbox`` names ``inbox`` by."""
    return _PLACES[id(inbox)]


def ids(out: str) -> list[str]:
    return [row["id"] for row in json.loads(out)["deliveries"]]


def test_ls_filters_by_sender_type_and_time(
    inbox: ManagedInbox, capsys: pytest.CaptureFixture[str]
) -> None:
    old = stock(inbox, sender="moco", event_type="activity.create", ago=3 * 86400)
    dead = stock(inbox, state="dead", ago=3600)
    new = stock(inbox, ago=10)
    db = place(inbox)
    assert ids(cli(capsys, "inbox", "ls", "--inbox", db, "--json")[1]) == [old.id, dead.id, new.id]
    assert ids(cli(capsys, "inbox", "ls", "--inbox", db, "--sender", "moco", "--json")[1]) == [
        old.id
    ]
    assert ids(cli(capsys, "inbox", "ls", "--inbox", db, "--type", "activity.*", "--json")[1]) == [
        old.id
    ]
    assert ids(cli(capsys, "inbox", "ls", "--inbox", db, "--since", "2h", "--json")[1]) == [
        dead.id,
        new.id,
    ]
    assert ids(cli(capsys, "inbox", "ls", "--inbox", db, "--until", "30m", "--json")[1]) == [
        old.id,
        dead.id,
    ]
    # --limit keeps the newest, shown oldest first.
    assert ids(cli(capsys, "inbox", "ls", "--inbox", db, "--limit", "2", "--json")[1]) == [
        dead.id,
        new.id,
    ]
    code, out, _ = cli(capsys, "inbox", "ls", "--inbox", db, "--sender", "github")
    assert (code, out) == (0, "no deliveries match\n")


def test_a_time_that_is_not_one_is_a_usage_error(
    inbox: ManagedInbox, capsys: pytest.CaptureFixture[str]
) -> None:
    stock(inbox)
    code, _, err = cli(capsys, "inbox", "ls", "--inbox", place(inbox), "--since", "last week")
    assert code == 2 and "--since: 'last week' is not a time" in err


def test_retry_takes_the_filters_and_a_dry_run_prints_the_count(
    inbox: ManagedInbox, capsys: pytest.CaptureFixture[str]
) -> None:
    moco = [stock(inbox, state="dead", sender="moco", ago=60) for _ in range(2)]
    other = stock(inbox, state="dead", ago=60)
    db = place(inbox)
    code, out, _ = cli(capsys, "inbox", "retry", "--sender", "moco", "--dry-run", "--inbox", db)
    assert code == 0
    assert out.startswith("2 deliveries would be retried (state dead, sender moco)")
    assert inbox.count(DeliveryFilter(state="dead")) == 3  # nothing changed
    code, out, _ = cli(capsys, "inbox", "retry", "--sender", "moco", "--inbox", db, "--json")
    assert (code, json.loads(out)) == (0, {"requeued": 2})
    assert all(inbox.get(row.id).state == "pending" for row in moco)  # type: ignore[union-attr]
    assert inbox.get(other.id).state == "dead"  # type: ignore[union-attr]


def test_retry_replays_done_deliveries_of_a_date_range(
    inbox: ManagedInbox, capsys: pytest.CaptureFixture[str]
) -> None:
    inside = stock(inbox, state="done", ago=2 * 86400)
    outside = stock(inbox, state="done", ago=10 * 86400)
    db = place(inbox)
    argv = ("inbox", "retry", "--state", "done", "--since", "3d", "--until", "1d", "--inbox", db)
    code, out, _ = cli(capsys, *argv, "--dry-run", "--json")
    assert json.loads(out) == {"dry_run": True, "matching": 1}
    code, out, _ = cli(capsys, *argv)
    assert (code, out) == (0, "1 done deliveries are pending again, due now\n")
    assert inbox.get(inside.id).state == "pending"  # type: ignore[union-attr]
    assert inbox.get(outside.id).state == "done"  # type: ignore[union-attr]


def test_retry_needs_an_id_dead_or_a_filter_and_not_an_id_with_one(
    inbox: ManagedInbox, capsys: pytest.CaptureFixture[str]
) -> None:
    db = place(inbox)
    stock(inbox)
    code, _, err = cli(capsys, "inbox", "retry", "--inbox", db)
    assert code == 2 and "say what to retry" in err
    code, _, err = cli(capsys, "inbox", "retry", "0123", "--sender", "moco", "--inbox", db)
    assert code == 2 and "not both" in err


def test_purge_takes_the_filters_and_a_dry_run(
    inbox: ManagedInbox, capsys: pytest.CaptureFixture[str]
) -> None:
    moco = stock(inbox, state="dead", sender="moco", ago=3 * 86400)
    other = stock(inbox, state="dead", ago=3 * 86400)
    done = stock(inbox, state="done", sender="moco", ago=3 * 86400)
    db = place(inbox)
    argv = ("inbox", "purge", "--dead", "--done", "--sender", "moco", "--older-than", "1d")
    code, out, _ = cli(capsys, *argv, "--dry-run", "--inbox", db)
    assert out.startswith("2 deliveries would be deleted (state done, sender moco")
    assert inbox.get(moco.id) is not None
    code, out, _ = cli(capsys, *argv, "--inbox", db, "--json")
    assert (code, json.loads(out)) == (0, {"deleted": 2, "older_than": "1d"})
    assert inbox.get(moco.id) is None and inbox.get(done.id) is None
    assert inbox.get(other.id) is not None


# -- refused ------------------------------------------------------------------------------


def _refuse(inbox: ManagedInbox, *, secret: str, limit: int = 10_000) -> str:
    handler = WebhookHandler("mindpeeker", secret="whsec_stale")
    body, headers = sample_delivery("mindpeeker", "session.completed", secret=secret)
    error = handler.accept(body, headers).error
    assert error is not None
    refused = refused_delivery(
        handler,
        error,  # type: ignore[arg-type]
        received=time.time(),
        peer="203.0.113.5",
        headers=headers,
        body=body,
        body_limit=limit,
    )
    assert inbox.keep_refusal(refused)
    return refused.id


HOOKS = f"""
from hookshield import WebhookHandler
mindpeeker = WebhookHandler("mindpeeker", secret={SECRET!r})
"""


def test_refused_lists_shows_and_rechecks(
    inbox: ManagedInbox,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    (tmp_path / "fixed_hooks.py").write_text(HOOKS)
    monkeypatch.chdir(tmp_path)
    db = place(inbox)
    refused_id = _refuse(inbox, secret=SECRET)
    code, out, _ = cli(capsys, "inbox", "refused", "--inbox", db)
    assert code == 0 and refused_id in out and "InvalidSignature" in out and "203.0.113.5" in out
    code, out, _ = cli(capsys, "inbox", "refused", refused_id[:16], "--inbox", db)
    assert code == 0 and "x-mindpeeker-signature: <hidden>" in out
    assert "answer:       401, InvalidSignature" in out
    code, out, _ = cli(
        capsys,
        "inbox",
        "refused",
        refused_id,
        "--recheck",
        "fixed_hooks:mindpeeker",
        "--inbox",
        db,
        "--json",
    )
    result = json.loads(out)
    assert code == 0 and result["verified"] and result["stored"]
    assert inbox.get(result["stored"]).state == "pending"  # type: ignore[union-attr]
    assert inbox.get_refused(refused_id) is None


def test_a_recheck_that_fails_exits_1_with_the_reason(
    inbox: ManagedInbox,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    (tmp_path / "fixed_hooks.py").write_text(HOOKS)
    monkeypatch.chdir(tmp_path)
    db = place(inbox)
    refused_id = _refuse(inbox, secret="whsec_forger")
    code, out, _ = cli(
        capsys, "inbox", "refused", refused_id, "--recheck", "fixed_hooks:mindpeeker", "--inbox", db
    )
    assert code == 1 and "it still does not verify" in out
    code, _, err = cli(
        capsys, "inbox", "refused", "--recheck", "fixed_hooks:mindpeeker", "--inbox", db
    )
    assert code == 2 and "give its id" in err


def test_refused_on_an_inbox_that_keeps_none(
    inbox: ManagedInbox, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = cli(capsys, "inbox", "refused", "--inbox", place(inbox))
    assert code == 0 and "no refused deliveries kept" in out
    code, _, err = cli(capsys, "inbox", "refused", "0123", "--inbox", place(inbox))
    assert code == 1 and "no kept refusal '0123' in " in err


# -- serve ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.8.9.10", True),
        ("::1", True),
        ("[::1]", True),
        ("localhost", True),
        ("0.0.0.0", False),  # noqa: S104 - judged, never bound
        ("::", False),
        ("192.0.2.10", False),
        ("10.1.2.3", False),
        ("no-such-host.invalid", False),
    ],
)
def test_what_counts_as_loopback(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


@pytest.mark.parametrize("host", ["0.0.0.0", "192.0.2.10", "::"])  # noqa: S104 - refused, never bound
def test_serve_refuses_any_other_address_without_a_password(
    inbox: ManagedInbox,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    host: str,
) -> None:
    monkeypatch.delenv("HOOKSHIELD_DASHBOARD_PASSWORD", raising=False)
    stock(inbox)
    code, _, err = cli(capsys, "inbox", "serve", "--inbox", place(inbox), "--host", host)
    assert code == 2
    assert f"--host {host} is not a loopback address" in err
    assert "HOOKSHIELD_DASHBOARD_PASSWORD" in err


def test_serve_answers_on_loopback_and_asks_for_the_password_when_given(
    inbox: ManagedInbox,
) -> None:
    stock(inbox)
    for env, signed in (
        ({}, False),
        ({"HOOKSHIELD_DASHBOARD_PASSWORD": "a long enough password"}, True),
    ):
        process = subprocess.Popen(
            [*PY, "inbox", "serve", "--inbox", place(inbox), "--port", "0", "--json"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=clean_env(**env),
        )
        try:
            assert process.stdout is not None
            started = json.loads(process.stdout.readline())
            assert re.fullmatch(r"http://127\.0\.0\.1:\d+/", started["url"])
            assert started["password"] is signed
            with urllib.request.urlopen(started["url"], timeout=TIMEOUT) as response:  # noqa: S310 - our own server
                page = response.read().decode()
                final = response.url
            assert "/login?next=" in final if signed else "Deliveries" in page
        finally:
            process.terminate()
            process.communicate(timeout=TIMEOUT)


@pytest.mark.parametrize("action", ["serve", "refused"])
def test_help_shows_examples_and_defaults(capsys: pytest.CaptureFixture[str], action: str) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["inbox", action, "--help"])
    assert exit_info.value.code == 0
    out = " ".join(capsys.readouterr().out.split())
    assert f"examples: hookshield inbox {action} " in out
    assert "(default: $HOOKSHIELD_INBOX)" in out
    if action == "serve":
        assert "(default: 127.0.0.1)" in out and "(default: 8025)" in out
