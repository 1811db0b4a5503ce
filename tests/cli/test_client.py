"""``hookshield send``: real HTTP to real receivers on 127.0.0.1."""

from __future__ import annotations

import contextlib
import io
import json
import socket
import sys
from pathlib import Path

import pytest

from hookshield import WebhookHandler, testing
from hookshield.cli import main
from tests.cli.helpers import listening, parse_headers, records, write


def test_send_to_a_real_listen_receiver(capsys: pytest.CaptureFixture[str]) -> None:
    with listening("-p", "mindpeeker", "--secret", "whsec", "--count", "3") as (url, proc):
        assert (
            main(["send", url, "-p", "mindpeeker", "-e", "session.completed", "--secret", "whsec"])
            == 0
        )
        out = capsys.readouterr().out
        assert "200 OK" in out
        assert '{"ok":true}' in out
        assert (
            main(
                [
                    "send",
                    url,
                    "-p",
                    "mindpeeker",
                    "-e",
                    "analysis.failed",
                    "--secret",
                    "bad",
                    "--json",
                ]
            )
            == 1
        )
        answer = json.loads(capsys.readouterr().out)
        assert answer["status"] == 401
        assert "does not match" in json.loads(answer["response"])["error"]
        assert (
            main(
                [
                    "send",
                    url,
                    "-p",
                    "mindpeeker",
                    "-e",
                    "dowsing.query_completed",
                    "--secret",
                    "whsec",
                    "--json",
                ]
            )
            == 0
        )
        assert json.loads(capsys.readouterr().out)["ok"] is True
        seen = records(proc)
    assert [r["status"] for r in seen] == [200, 401, 200]
    first = seen[0]["delivery"]
    assert first["provider"] == "mindpeeker"
    assert first["events"][0]["type"] == "session.completed"
    assert first["events"][0]["fields"]["confidence"] == 0.87
    assert seen[1]["error"] == "InvalidSignature"
    assert seen[2]["delivery"]["events"][0]["fields"]["answer"] == "positive"


def test_send_a_momentum_batch_with_data_and_see_the_replay(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = write(tmp_path, "data.json", b'{"rcpt_to": "ada@example.com"}')
    with listening("-p", "momentum", "--basic-auth", "u:p", "--count", "1") as (url, proc):
        args = ["send", url + "/hooks", "-p", "momentum", "-e", "click", "-e", "bounce"]
        assert main([*args, "--basic-auth", "u:p", "--data", data]) == 0
        seen = records(proc)
    events = seen[0]["delivery"]["events"]
    assert [e["type"] for e in events] == ["click", "bounce"]
    assert {e["fields"]["recipient"] for e in events} == {"ada@example.com"}
    assert seen[0]["path"] == "/hooks"
    capsys.readouterr()


def test_send_own_body_to_localhost_and_bad_data_files(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    not_json = write(tmp_path, "bad.json", b"{nope")
    assert (
        main(["send", "http://127.0.0.1:1/", "-p", "petal", "-e", "eye", "--data", not_json]) == 2
    )
    assert "is not JSON" in capsys.readouterr().err
    array = write(tmp_path, "array.json", b"[1, 2]")
    assert main(["send", "http://127.0.0.1:1/", "-p", "petal", "-e", "eye", "--data", array]) == 2
    assert "must hold a JSON object" in capsys.readouterr().err
    own = write(tmp_path, "own.json", b'{"id": "evt_own", "type": "webhook.failed", "data": {}}')
    with listening("-p", "mindpeeker", "--secret", "whsec", "--count", "1") as (url, proc):
        local = url.replace("127.0.0.1", "localhost")
        args = ["send", local, "-p", "mindpeeker", "-e", "webhook.failed", "--body", own]
        assert main([*args, "--secret", "whsec"]) == 0
        seen = records(proc)
    assert seen[0]["delivery"]["id"] == "event:evt_own"
    capsys.readouterr()


def test_send_errors(capsys: pytest.CaptureFixture[str]) -> None:
    assert (
        main(
            [
                "send",
                "http://127.0.0.1:1/",
                "-p",
                "mindpeeker",
                "-e",
                "session.complete",
                "--secret",
                "s",
            ]
        )
        == 2
    )
    assert "did you mean 'session.completed'" in capsys.readouterr().err
    assert main(["send", "ftp://127.0.0.1/", "-p", "petal", "-e", "blink"]) == 2
    assert "http://" in capsys.readouterr().err
    assert (
        main(
            [
                "send",
                "http://127.0.0.1:1/",
                "-p",
                "moco",
                "-e",
                "deal.create",
                "-e",
                "deal.update",
                "--secret",
                "s",
            ]
        )
        == 2
    )
    assert "MOCO sends one event per delivery" in capsys.readouterr().err
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]  # bound, never listening: the connection is refused
        code = main(
            ["send", f"http://127.0.0.1:{port}/", "-p", "petal", "-e", "eye", "--timeout", "5"]
        )
    assert code == 3
    assert "cannot reach" in capsys.readouterr().err


def test_the_library_receives_what_send_sends(capsys: pytest.CaptureFixture[str]) -> None:
    # sign's headers are accepted by a WebhookHandler configured as an app would be.
    body = testing.sample_body("moonsense", "bundle.received")
    handler = WebhookHandler("moonsense", secret="s")
    path_free = io.BytesIO(body)
    with contextlib.redirect_stdout(io.StringIO()) as out, pytest.MonkeyPatch.context() as mp:
        mp.setattr(sys, "stdin", io.TextIOWrapper(path_free))
        assert main(["sign", "-p", "moonsense", "--secret", "s", "--event", "bundle.received"]) == 0
    headers = parse_headers(out.getvalue())
    assert handler.verify(body, headers).events[0].type == "bundle.received"
