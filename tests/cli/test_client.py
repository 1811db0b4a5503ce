"""``hookshield send``: real HTTP to real receivers on 127.0.0.1."""

from __future__ import annotations

import contextlib
import http.server
import io
import json
import socket
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hookshield import WebhookHandler, testing
from hookshield.cli import main
from tests.cli.helpers import MOCO_KEY, listening, parse_headers, records, serving, write


def test_send_to_a_real_listen_receiver(capsys: pytest.CaptureFixture[str]) -> None:
    with listening("-p", "mindpeeker", "--secret", "whsec", "--count", "3") as (url, proc):
        send = ["send", url, "-p", "mindpeeker"]
        assert main([*send, "-e", "session.completed", "--secret", "whsec"]) == 0
        out = capsys.readouterr().out
        assert "200 OK" in out
        assert '{"ok":true}' in out
        assert main([*send, "-e", "analysis.failed", "--secret", "bad", "--json"]) == 1
        answer = json.loads(capsys.readouterr().out)
        assert answer["status"] == 401
        assert "does not match" in json.loads(answer["response"])["error"]
        assert main([*send, "-e", "dowsing.query_completed", "--secret", "whsec", "--json"]) == 0
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


# -- a newcomer's traps ------------------------------------------------------------------


def test_every_send_of_a_moco_sample_reaches_the_routes(capsys: pytest.CaptureFixture[str]) -> None:
    with serving(capsys, "-p", "moco", "--secret", MOCO_KEY, "--count", "3") as (url, finish):
        for event in ("activity.create", "activity.create", "deal.update"):
            args = ["send", url, "-p", "moco", "-e", event, "--secret", MOCO_KEY, "--json"]
            assert main(args) == 0
        lines = finish()
    sent = [line for line in lines if "request_headers" in line]
    assert [s["duplicate"] for s in sent] == [False, False, False]
    seen = [line for line in lines if "path" in line]
    assert [r["duplicate"] for r in seen] == [False, False, False]


def _human(out: str) -> str:
    """What ``send`` printed, without the JSON lines of the receiver in the same process."""
    return "\n".join(line for line in out.splitlines() if not line.startswith("{"))


def test_send_says_when_the_receiver_answers_a_duplicate(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    body = write(tmp_path, "body.json", testing.sample_body("petal", "blink"))
    with serving(capsys, "-p", "petal", "--token", "t", "--count", "2") as (url, finish):
        assert main(["send", url, "-p", "petal", "--body", body, "--token", "t"]) == 0
        first = _human(capsys.readouterr().out)
        assert main(["send", url, "-p", "petal", "--body", body, "--token", "t"]) == 0
        second = _human(capsys.readouterr().out)
        finish()
    assert "duplicate" not in first
    assert "duplicate" in second and "did not run its routes again" in second
    # --body needs no --event, and the body is named by its file, not an event type.
    assert f"sent      Petal Metrics {body} (" in first


class _Scripted(http.server.BaseHTTPRequestHandler):
    """Answers every POST with the server's ``answer``; records every request's method."""

    server: _ScriptedServer

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self._reply()

    def do_GET(self) -> None:
        self._reply()

    def _reply(self) -> None:
        self.server.methods.append(self.command)
        status, headers, body = self.server.answer
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet."""


class _ScriptedServer(http.server.ThreadingHTTPServer):
    def __init__(self, answer: tuple[int, dict[str, str], bytes]) -> None:
        self.answer = answer
        self.methods: list[str] = []
        super().__init__(("127.0.0.1", 0), _Scripted)


@contextlib.contextmanager
def scripted(answer: tuple[int, dict[str, str], bytes]) -> Iterator[_ScriptedServer]:
    server = _ScriptedServer(answer)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.mark.parametrize("status", [301, 307, 308])
def test_send_reports_a_redirect_instead_of_following_it(
    status: int, capsys: pytest.CaptureFixture[str]
) -> None:
    with scripted((status, {"Location": "/hooks/"}, b"")) as server:
        url = f"http://127.0.0.1:{server.server_address[1]}/hooks"
        assert main(["send", url, "-p", "petal", "-e", "blink", "--token", "t"]) == 1
        out = capsys.readouterr().out
        assert main(["send", url, "-p", "petal", "-e", "blink", "--token", "t", "--json"]) == 1
        report = json.loads(capsys.readouterr().out)
    assert server.methods == ["POST", "POST"]  # never followed, as a GET or otherwise
    assert f"answered  {status} " in out
    assert f"redirected to {url}/: not followed" in out
    assert f"The receiver's route ends with a slash: send to {url}/ instead." in out
    assert report["location"] == "/hooks/" and "ends with a slash" in report["hint"]


def test_send_reports_a_redirect_that_drops_the_slash(capsys: pytest.CaptureFixture[str]) -> None:
    with scripted((308, {"Location": "/hooks"}, b"")) as server:
        url = f"http://127.0.0.1:{server.server_address[1]}/hooks/"
        assert main(["send", url, "-p", "petal", "-e", "eye", "--token", "t"]) == 1
    out = capsys.readouterr().out
    assert "body      (empty)" in out
    assert f"The receiver's route has no trailing slash: send to {url[:-1]} instead." in out


def test_send_reports_a_redirect_elsewhere(capsys: pytest.CaptureFixture[str]) -> None:
    with scripted((302, {"Location": "http://example.invalid/login"}, b"")) as server:
        url = f"http://127.0.0.1:{server.server_address[1]}/hooks/"
        assert main(["send", url, "-p", "petal", "-e", "eye", "--token", "t"]) == 1
    out = capsys.readouterr().out
    assert "redirected to http://example.invalid/login: not followed" in out
    assert "Send to http://example.invalid/login if that is the webhook's route" in out
    with scripted((301, {}, b"")) as server:
        url = f"http://127.0.0.1:{server.server_address[1]}/"
        assert main(["send", url, "-p", "petal", "-e", "eye", "--token", "t"]) == 1
    assert "redirected without a Location header" in capsys.readouterr().out


def test_send_shows_the_receivers_whole_reason(capsys: pytest.CaptureFixture[str]) -> None:
    reason = "the signature does not match: " + "x" * 400 + " END"
    answer = json.dumps({"error": reason}).encode()
    with scripted((401, {"Content-Type": "application/json"}, answer)) as server:
        url = f"http://127.0.0.1:{server.server_address[1]}/"
        assert main(["send", url, "-p", "moco", "-e", "deal.create", "--secret", "k"]) == 1
    out = capsys.readouterr().out
    assert reason in out and "…" not in out


def test_send_needs_an_event_or_a_body(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["send", "http://127.0.0.1:1/", "-p", "petal", "--token", "t"]) == 2
    assert "--event TYPE (or a body with --body FILE)" in capsys.readouterr().err
