"""The ``hookshield`` command, through ``main(argv)`` and through ``python -m hookshield``.

Servers run on 127.0.0.1 with a free port, stop themselves (``--count``) and are
killed if a test fails first; every wait is bounded.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import http.client
import io
import json
import os
import pty
import runpy
import select
import shlex
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from hookshield import WebhookHandler, testing
from hookshield._cli import main

PY = [sys.executable, "-m", "hookshield"]
MOCO_KEY = "1d608b9d72219b90ff2393a1d3ee0ac0"  # MOCO's own test vector (PROVIDERS.md)
TIMEOUT = 20.0


def clean_env(**extra: str) -> dict[str, str]:
    """The environment without the variables that change the command's output."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("NO_COLOR", "HOOKSHIELD_SECRET", "HOOKSHIELD_TOKEN", "TERM")
    }
    env.update(extra)
    return env


def run(*args: str, stdin: bytes | None = None, **env: str) -> subprocess.CompletedProcess[str]:
    """``python -m hookshield ARGS`` in a subprocess."""
    return subprocess.run(
        [*PY, *args],
        input=stdin.decode() if stdin is not None else None,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        env=clean_env(**env),
        check=False,
    )


@pytest.fixture(autouse=True)
def _no_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("NO_COLOR", "HOOKSHIELD_SECRET", "HOOKSHIELD_TOKEN"):
        monkeypatch.delenv(name, raising=False)


def write(tmp_path: Path, name: str, data: bytes) -> str:
    path = tmp_path / name
    path.write_bytes(data)
    return str(path)


def parse_headers(text: str) -> dict[str, str]:
    pairs = (line.split(": ", 1) for line in text.splitlines() if line)
    return dict(pairs)


# -- help and usage -------------------------------------------------------------------


@pytest.mark.parametrize("command", ["sign", "verify", "send", "listen", "demo"])
def test_every_subcommand_has_help_with_examples(
    command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main([command, "--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert "examples:" in out
    assert f"hookshield {command}" in out


def test_top_level_help_documents_exit_codes(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert "exit codes:" in out
    assert "NO_COLOR" in out
    for command in ("sign", "verify", "send", "listen", "demo"):
        assert command in out


def test_no_subcommand_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main([])
    assert exit_info.value.code == 2
    assert "usage:" in capsys.readouterr().err


def test_unknown_provider_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["sign", "-p", "gitlab", "--secret", "s"])
    assert exit_info.value.code == 2
    assert "moonsense" in capsys.readouterr().err


def test_version_through_python_dash_m() -> None:
    result = run("--version")
    assert result.returncode == 0
    assert result.stdout.startswith("hookshield ")


# -- sign -------------------------------------------------------------------------------


def test_sign_matches_mocos_documented_test_vector(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    body = write(tmp_path, "body.txt", b'{id: 111, description: "a description"}')
    assert (
        main(["sign", "-p", "moco", "--secret", MOCO_KEY, "--event", "invoice.create", body]) == 0
    )
    headers = parse_headers(capsys.readouterr().out)
    assert headers["X-Moco-Signature"] == (
        "09f9ebc0adeb597cb7cb37fd72b20be0caeca6bd9fb67416b663606bd7f89183"
    )
    assert headers["X-Moco-Target"] == "Invoice"
    assert headers["X-Moco-Event"] == "create"


@pytest.mark.skipif(
    shutil.which("openssl") is None, reason="openssl is not installed on this machine"
)
@pytest.mark.parametrize(
    ("provider", "header", "prefix"),
    [
        ("moco", "X-Moco-Signature", ""),
        ("moonsense", "X-Moonsense-Signature-256", ""),
        ("mindpeeker", "X-MindPeeker-Signature", "sha256="),
    ],
)
def test_sign_matches_openssl_hmac(tmp_path: Path, provider: str, header: str, prefix: str) -> None:
    key = "k3y-with-ünïcode"
    body = write(
        tmp_path, "body.json", testing.sample_body(provider, testing.event_types(provider)[0])
    )
    openssl = subprocess.run(
        ["openssl", "dgst", "-sha256", "-hmac", key, body],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=True,
    )
    expected = openssl.stdout.strip().rsplit(" ", 1)[-1]
    result = run("sign", "-p", provider, "--secret", key, body)
    assert result.returncode == 0, result.stderr
    assert parse_headers(result.stdout)[header] == prefix + expected


def test_sign_reads_stdin(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    body = b'{"id": "evt_1", "type": "session.created", "data": {}}'
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(body)))
    assert main(["sign", "-p", "mindpeeker", "--secret", "whsec", "-"]) == 0
    signature = parse_headers(capsys.readouterr().out)["X-MindPeeker-Signature"]
    assert signature == "sha256=" + hmac.new(b"whsec", body, hashlib.sha256).hexdigest()


def test_sign_json_and_token_senders(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    body = write(tmp_path, "blink.json", testing.sample_body("petal", "blink"))
    assert (
        main(["sign", "-p", "petal", "--token", "t0k", "--token-header", "X-Mine", "--json", body])
        == 0
    )
    assert json.loads(capsys.readouterr().out)["headers"]["X-Mine"] == "t0k"


def test_sign_takes_the_secret_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    body_bytes = b'{"id": 1}'
    body = write(tmp_path, "b.json", body_bytes)
    monkeypatch.setenv("HOOKSHIELD_SECRET", "from-env")
    assert main(["sign", "-p", "moco", body]) == 0
    signature = parse_headers(capsys.readouterr().out)["X-Moco-Signature"]
    assert signature == hmac.new(b"from-env", body_bytes, hashlib.sha256).hexdigest()


def test_sign_curl_posts_the_exact_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    body = write(tmp_path, "batch.json", testing.sample_batch(["click"]))
    code = main(
        [
            "sign",
            "-p",
            "momentum",
            "--basic-auth",
            "user:pa ss",
            "--curl",
            "http://127.0.0.1:1/",
            body,
        ]
    )
    assert code == 0
    command = capsys.readouterr().out.strip()
    assert command.startswith("curl ")
    assert f"--data-binary @{body}" in command
    assert "'Authorization: Basic dXNlcjpwYSBzcw=='" in command


def test_sign_curl_with_a_body_on_stdin(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    body = b'{"id": 7, "note": "it\'s here"}\n'
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(body)))
    args = ["sign", "-p", "moco", "--secret", MOCO_KEY, "--curl", "http://127.0.0.1:1/", "--json"]
    assert main(args) == 0
    result = json.loads(capsys.readouterr().out)
    command = shlex.split(result["curl"])
    assert command[-2:] == ["--data-raw", body.decode()]
    assert f"X-Moco-Signature: {result['headers']['X-Moco-Signature']}" in command


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed on this machine")
def test_the_printed_curl_command_is_accepted_by_a_receiver(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    body = write(
        tmp_path, "body with space.json", testing.sample_body("moco", "deal.create") + b"\n"
    )
    with listening("-p", "moco", "--secret", MOCO_KEY, "--count", "1") as (url, proc):
        args = ["sign", "-p", "moco", "--secret", MOCO_KEY, "--event", "deal.create"]
        assert main([*args, "--curl", url, body]) == 0
        command = shlex.split(capsys.readouterr().out)
        env = clean_env(NO_PROXY="*", no_proxy="*")
        curl = subprocess.run(command, capture_output=True, text=True, timeout=TIMEOUT, env=env)
        assert curl.stdout == '{"ok":true}', curl.stderr
        seen = records(proc)
    assert seen[0]["delivery"]["events"][0]["type"] == "deal.create"


def test_sign_bearer_token(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    body = write(tmp_path, "b.json", testing.sample_batch(["open"]))
    assert main(["sign", "-p", "momentum", "--bearer-token", "oauth-token", body]) == 0
    assert parse_headers(capsys.readouterr().out)["Authorization"] == "Bearer oauth-token"


@pytest.mark.parametrize(
    ("option", "value", "handler_options"),
    [
        ("--bearer-token", "oauth", {"bearer_token": "oauth"}),
        ("--basic-auth", "petal:pw", {"basic_auth": ("petal", "pw")}),
    ],
)
def test_sign_petal_with_an_authorization_header(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    option: str,
    value: str,
    handler_options: dict[str, Any],
) -> None:
    body_bytes = testing.sample_body("petal", "eye")
    body = write(tmp_path, "eye.json", body_bytes)
    assert main(["sign", "-p", "petal", option, value, body]) == 0
    headers = parse_headers(capsys.readouterr().out)
    handler = WebhookHandler("petal", **handler_options)
    assert handler.verify(body_bytes, headers).events[0].type == "eye"


def test_sign_a_signing_sender_without_secret_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    body = write(tmp_path, "b.json", b"{}")
    assert main(["sign", "-p", "moco", body]) == 2
    err = capsys.readouterr().err
    assert "hookshield: error:" in err
    assert "--secret" in err


def test_sign_missing_file_exits_3(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sign", "-p", "moco", "--secret", "s", str(tmp_path / "nope.json")]) == 3
    assert "cannot read" in capsys.readouterr().err


# -- verify -----------------------------------------------------------------------------


def test_verify_accepts_a_signed_delivery(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    body, headers = testing.sample_delivery("mindpeeker", "session.completed", secret="whsec")
    path = write(tmp_path, "body.json", body)
    flags = [arg for name, value in headers.items() for arg in ("-H", f"{name}: {value}")]
    assert main(["verify", "-p", "mindpeeker", "--secret", "whsec", *flags, path]) == 0
    out = capsys.readouterr().out
    assert "verified" in out
    assert "session.completed" in out
    assert "confidence" in out
    assert "0.87" in out


def test_verify_rejects_a_tampered_delivery_with_the_reason(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    body, headers = testing.sample_delivery("moco", "activity.create", secret=MOCO_KEY)
    path = write(tmp_path, "body.json", body.replace(b"2.5", b"9.5"))
    flags = [arg for name, value in headers.items() for arg in ("-H", f"{name}: {value}")]
    assert main(["verify", "-p", "moco", "--secret", MOCO_KEY, *flags, path]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "401 InvalidSignature" in captured.err
    assert "raw request body" in captured.err


def test_verify_json_through_a_header_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    body, headers = testing.sample_delivery("momentum", "bounce", token="s3cret")
    path = write(tmp_path, "batch.json", body)
    lines = "".join(f"{k}: {v}\n" for k, v in headers.items())
    header_file = write(tmp_path, "h.txt", lines.encode())
    args = ["verify", "-p", "momentum", "--header-file", header_file, "--json", path]
    assert main([*args, "--token", "s3cret"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["ok"] is True
    [event] = result["events"]
    assert event["type"] == "bounce"
    assert event["fields"]["bounce_class"] == 10
    assert event["data"]["error_code"] == "554"
    assert main([*args, "--token", "other"]) == 1
    rejected = json.loads(capsys.readouterr().out)
    assert rejected == {
        "ok": False,
        "status": 401,
        "error": "InvalidSignature",
        "reason": rejected["reason"],
    }


def test_verify_json_shows_bad_data_and_per_channel_readings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    body, _ = testing.sample_delivery("petal", "metrics")
    path = write(tmp_path, "m.json", body)
    monkeypatch.setenv("HOOKSHIELD_TOKEN", "unused: a credential option is given")
    args = ["verify", "-p", "petal", "--bearer-token", "b", "--json", path]
    assert main([*args, "-H", "Authorization: Bearer b"]) == 0
    fields = json.loads(capsys.readouterr().out)["events"][0]["fields"]
    assert fields["bandpower"]["ch4"] == dict.fromkeys(
        ("delta", "theta", "alpha", "beta"), "bad_data"
    )
    assert fields["artifacts"] == {"ch1": False, "ch2": False, "ch3": True, "ch4": False}


def test_verify_takes_a_token_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    body, headers = testing.sample_delivery("petal", "eye", token="from-env")
    path = write(tmp_path, "e.json", body)
    header_file = write(
        tmp_path, "h.txt", "".join(f"{k}: {v}\n" for k, v in headers.items()).encode()
    )
    monkeypatch.setenv("HOOKSHIELD_TOKEN", "from-env")
    assert main(["verify", "-p", "petal", "--header-file", header_file, path]) == 0
    assert "eye" in capsys.readouterr().out


def test_verify_accepts_any_of_several_secrets(tmp_path: Path) -> None:
    body, headers = testing.sample_delivery("moonsense", "session.created", secret="new")
    path = write(tmp_path, "b.json", body)
    flags = [arg for name, value in headers.items() for arg in ("-H", f"{name}: {value}")]
    result = run("verify", "-p", "moonsense", "--secret", "old", "--secret", "new", *flags, path)
    assert result.returncode == 0, result.stderr


def test_verify_configuration_errors_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, "b.json", testing.sample_body("petal", "blink"))
    assert main(["verify", "-p", "petal", path]) == 2
    assert "allow_unsigned" in capsys.readouterr().err
    assert main(["verify", "-p", "moco", "--secret", "s", "-H", "no colon", path]) == 2
    assert "Name: value" in capsys.readouterr().err
    assert main(["verify", "-p", "petal", "--basic-auth", "nocolon", path]) == 2


def test_verify_unsigned_only_when_allowed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, "b.json", testing.sample_body("petal", "artifact-detect"))
    assert main(["verify", "-p", "petal", "--allow-unsigned", path]) == 0
    assert "artifact-detect" in capsys.readouterr().out


# -- listen and send --------------------------------------------------------------------


@contextlib.contextmanager
def listening(*args: str) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    """``hookshield listen --json`` on a free loopback port; its URL and process."""
    with subprocess.Popen(
        [*PY, "listen", "--port", "0", "--json", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=clean_env(),
    ) as proc:
        try:
            assert proc.stdout is not None
            ready, _, _ = select.select([proc.stdout], [], [], TIMEOUT)
            assert ready, "the receiver did not start"
            url = json.loads(proc.stdout.readline())["listening"]
            assert url.startswith("http://127.0.0.1:")
            yield url, proc
        finally:
            if proc.poll() is None:
                proc.kill()


def records(proc: subprocess.Popen[str]) -> list[dict[str, Any]]:
    """The JSON lines a receiver printed, once it has stopped by itself."""
    out, err = proc.communicate(timeout=TIMEOUT)
    assert proc.returncode == 0, err
    return [json.loads(line) for line in out.splitlines()]


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


@contextlib.contextmanager
def serving(
    capsys: pytest.CaptureFixture[str], *args: str
) -> Iterator[tuple[str, Callable[[], list[dict[str, Any]]]]]:
    """``main(["listen", "--json", ...])`` in a thread; its URL and a function that waits
    for it to stop by itself (``--count``) and returns the JSON lines it printed."""
    codes: list[int] = []
    thread = threading.Thread(
        target=lambda: codes.append(main(["listen", "--port", "0", "--json", *args]))
    )
    thread.start()
    text = ""
    deadline = time.monotonic() + TIMEOUT
    while "\n" not in text and time.monotonic() < deadline:
        time.sleep(0.01)
        text += capsys.readouterr().out
    first, _, text = text.partition("\n")
    url = json.loads(first)["listening"]

    def finish() -> list[dict[str, Any]]:
        thread.join(TIMEOUT)
        assert not thread.is_alive(), "the receiver did not stop after --count deliveries"
        assert codes == [0]
        return [json.loads(line) for line in (text + capsys.readouterr().out).splitlines()]

    try:
        yield url, finish
    finally:
        # If the test failed early, feed the receiver its remaining deliveries so it stops.
        for _ in range(100):
            if not thread.is_alive():
                break
            with contextlib.suppress(OSError):
                post_to(url, b"{}", {})
        thread.join(TIMEOUT)


def post_to(url: str, body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
    """POST through http.client; the status and the answer."""
    parts = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=TIMEOUT)
    try:
        conn.request("POST", parts.path or "/", body=body, headers=headers)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def test_listen_answers_a_replay_as_a_duplicate(capsys: pytest.CaptureFixture[str]) -> None:
    body, headers = testing.sample_delivery("moco", "project.update", secret=MOCO_KEY)
    with serving(capsys, "-p", "moco", "--secret", MOCO_KEY, "--count", "2") as (url, finish):
        assert post_to(url, body, headers) == (200, b'{"ok":true}')
        assert post_to(url, body, {**headers, "X-Moco-Timestamp": "1"}) == (200, b'{"ok":true}')
        seen = finish()
    assert [r["duplicate"] for r in seen] == [False, True]
    assert seen[0]["delivery"]["events"][0]["fields"]["target"] == "Project"


def test_listen_prints_deliveries_readably(capsys: pytest.CaptureFixture[str]) -> None:
    body, headers = testing.sample_delivery("petal", "metrics", token="t")
    codes: list[int] = []
    args = ["listen", "-p", "petal", "--token", "t", "--port", "0", "--count", "2"]
    thread = threading.Thread(target=lambda: codes.append(main(args)))
    thread.start()
    text = ""
    deadline = time.monotonic() + TIMEOUT
    while "\n" not in text and time.monotonic() < deadline:
        time.sleep(0.01)
        text += capsys.readouterr().out
    url = text.split()[2]
    try:
        assert post_to(url, body, headers)[0] == 200
        assert post_to(url, body, {})[0] == 401
    finally:
        thread.join(TIMEOUT)
    assert codes == [0]
    out = text + capsys.readouterr().out
    assert "for Petal Metrics deliveries" in out
    assert "POST /  200" in out
    assert "metrics" in out
    assert "BAD_DATA" in out  # Petal's "bad_data" readings are shown as such, not as numbers
    assert "POST /  401  the delivery carries no credential" in out


class FakeTerminal(io.StringIO):
    """A stdout that says it is a terminal."""

    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize(
    ("env", "coloured"),
    [({}, True), ({"NO_COLOR": "1"}, False), ({"TERM": "dumb"}, False)],
)
def test_colour_follows_the_terminal_and_the_environment(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], coloured: bool
) -> None:
    monkeypatch.delenv("TERM", raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    terminal = FakeTerminal()
    monkeypatch.setattr(sys, "stdout", terminal)
    assert main(["demo"]) == 0
    assert ("\x1b[" in terminal.getvalue()) is coloured


def raw_post(port: int, request: bytes) -> tuple[int, bytes]:
    """Send hand-made HTTP bytes; the status and body of the answer."""
    with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as sock:
        sock.sendall(request)
        sock.shutdown(socket.SHUT_WR)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), body


def test_listen_bounds_and_frames_the_body(capsys: pytest.CaptureFixture[str]) -> None:
    body, headers = testing.sample_delivery("moonsense", "chunk.persisted", secret="s")
    head = "".join(f"{k}: {v}\r\n" for k, v in headers.items()).encode()
    args = ["-p", "moonsense", "--secret", "s", "--max-body-size", "2000", "--count", "4"]
    with serving(capsys, *args) as (url, finish):
        port = urllib.parse.urlsplit(url).port
        assert port is not None
        # A GET is not a delivery and is not counted.
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=TIMEOUT)
        conn.request("GET", "/")
        assert conn.getresponse().status == 405
        conn.close()
        # Too large by its Content-Length: refused without reading it.
        status, answer = raw_post(
            port, b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5000000\r\n\r\n"
        )
        assert status == 413
        assert b"larger than this receiver accepts" in answer
        # No Content-Length and not chunked: the end of the body cannot be known.
        status, _ = raw_post(port, b"POST / HTTP/1.1\r\nHost: x\r\n" + head + b"\r\n" + body)
        assert status == 411
        # A chunked body is read, bounded, and verified like any other.
        chunks = b"".join(
            b"%x\r\n%s\r\n" % (len(part), part) for part in (body[:100], body[100:]) if part
        )
        request = b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n" + head
        status, answer = raw_post(port, request + b"\r\n" + chunks + b"0\r\n\r\n")
        assert status == 200, answer
        big = b"800\r\n" + b"x" * 0x800 + b"\r\n0\r\n\r\n"
        status, _ = raw_post(port, request + b"\r\n" + big)
        assert status == 413
        seen = finish()
    assert [r["status"] for r in seen] == [413, 411, 200, 413]
    assert seen[0]["error"] == "BodyTooLarge"
    assert seen[2]["delivery"]["events"][0]["type"] == "chunk.persisted"


def test_listen_human_output_and_port_in_use(capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert main(["listen", "-p", "moco", "--secret", "s", "--port", str(port)]) == 3
    assert "cannot listen" in capsys.readouterr().err
    with subprocess.Popen(
        [*PY, "listen", "-p", "petal", "--token", "t", "--port", "0", "--count", "1"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=clean_env(),
    ) as proc:
        try:
            assert proc.stdout is not None
            ready, _, _ = select.select([proc.stdout], [], [], TIMEOUT)
            assert ready
            first = proc.stdout.readline()
            assert first.startswith("listening on http://127.0.0.1:")
            url = first.split()[2]
            assert main(["send", url, "-p", "petal", "-e", "bandpower", "--token", "t"]) == 0
            out, _ = proc.communicate(timeout=TIMEOUT)
        finally:
            if proc.poll() is None:
                proc.kill()
    assert proc.returncode == 0
    assert "POST /  200" in out
    assert "bandpower" in out
    assert "\x1b[" not in out  # not a terminal: no colour


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


def test_listen_refuses_bad_options(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["listen", "-p", "moco", "--secret", "s", "--count", "0"]) == 2
    assert "--count" in capsys.readouterr().err
    assert main(["listen", "-p", "moco", "--secret", "s", "--max-body-size", "0"]) == 2
    assert "--max-body-size" in capsys.readouterr().err
    assert main(["listen", "-p", "moco"]) == 2
    assert "secret" in capsys.readouterr().err


def test_listen_refuses_malformed_framing(capsys: pytest.CaptureFixture[str]) -> None:
    post = b"POST / HTTP/1.1\r\nHost: x\r\n"
    with serving(
        capsys, "-p", "petal", "--token", "t", "--max-body-size", "100", "--count", "5"
    ) as (
        url,
        finish,
    ):
        port = urllib.parse.urlsplit(url).port
        assert port is not None
        # Expect: 100-continue with a body over the limit: refused before it is sent.
        expect = post + b"Content-Length: 1000\r\nExpect: 100-continue\r\n\r\n"
        assert raw_post(port, expect)[0] == 413
        assert raw_post(port, post + b"Content-Length: ten\r\n\r\n")[0] == 400
        assert raw_post(port, post + b"Content-Length: 50\r\n\r\nshort")[0] == 400
        chunked = post + b"Transfer-Encoding: chunked\r\n\r\n"
        assert raw_post(port, chunked + b"zz\r\nxx\r\n0\r\n\r\n")[0] == 400
        assert raw_post(port, chunked + b"-5\r\nxx\r\n0\r\n\r\n")[0] == 400
        seen = finish()
    assert [r["status"] for r in seen] == [413, 400, 400, 400, 400]


def test_python_dash_m_runs_main(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(sys, "argv", ["hookshield", "demo", "--json"])
    with pytest.raises(SystemExit) as exit_info:
        runpy.run_module("hookshield", run_name="__main__")
    assert exit_info.value.code == 0
    assert json.loads(capsys.readouterr().out)["ok"] is True


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
    assert "only Momentum" in capsys.readouterr().err
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]  # bound, never listening: the connection is refused
        code = main(
            ["send", f"http://127.0.0.1:{port}/", "-p", "petal", "-e", "eye", "--timeout", "5"]
        )
    assert code == 3
    assert "cannot reach" in capsys.readouterr().err


# -- demo -------------------------------------------------------------------------------


def test_demo_passes_in_process(capsys: pytest.CaptureFixture[str]) -> None:
    started = time.monotonic()
    assert main(["demo"]) == 0
    assert time.monotonic() - started < 5
    out = capsys.readouterr().out
    assert "all 11 cases behaved as they should" in out
    for sender in ("Moonsense", "Petal Metrics", "MOCO", "MindPeeker", "Momentum"):
        assert sender in out
    for case in ("forged", "tampered", "replayed"):
        assert case in out
    assert "FAIL" not in out


def test_demo_json_through_python_dash_m() -> None:
    result = run("demo", "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["ok"] is True
    assert report["receiver"].startswith("http://127.0.0.1:")
    cases = {c["case"].split()[0]: c for c in report["cases"]}
    assert cases["forged"]["got"] == {"status": 401, "events_handled": 0}
    assert cases["tampered"]["got"]["status"] == 401
    assert cases["replayed"]["got"] == {"status": 200, "events_handled": 0}
    assert "duplicate" in cases["replayed"]["why"]
    valid = [c for c in report["cases"] if c["case"] == "valid"]
    assert {c["provider"] for c in valid} == set(testing.providers())


def test_demo_exits_1_when_a_case_misbehaves(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from hookshield import _cli

    real = _cli.demo_cases

    def with_a_wrong_expectation() -> list[_cli.DemoCase]:
        cases = real()
        wrong = cases[0]
        return [*cases, _cli.DemoCase("wrong", "petal", wrong.body, {}, 200, True)]

    monkeypatch.setattr(_cli, "demo_cases", with_a_wrong_expectation)
    assert main(["demo"]) == 1
    out = capsys.readouterr().out
    assert "FAIL" in out
    assert "1 of 12 cases FAILED" in out


def read_pty(argv: list[str], env: dict[str, str]) -> str:
    """Run ``argv`` with its stdout on a pseudo-terminal; what it wrote there."""
    master, slave = pty.openpty()
    try:
        proc = subprocess.Popen(argv, stdout=slave, stderr=subprocess.DEVNULL, env=env)
        os.close(slave)
        slave = -1
        chunks = []
        deadline = time.monotonic() + TIMEOUT
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.5)
            if ready:
                try:
                    chunk = os.read(master, 65536)
                except OSError:  # EIO: the child closed the terminal
                    break
                if not chunk:
                    break
                chunks.append(chunk)
            elif proc.poll() is not None:
                break
        proc.wait(timeout=TIMEOUT)
        assert proc.returncode == 0
        return b"".join(chunks).decode()
    finally:
        os.close(master)
        if slave != -1:
            os.close(slave)


def test_colour_only_on_a_terminal_and_never_with_no_color() -> None:
    coloured = read_pty([*PY, "demo"], clean_env(TERM="xterm"))
    assert "\x1b[32m" in coloured
    plain = read_pty([*PY, "demo"], clean_env(TERM="xterm", NO_COLOR="1"))
    assert "all 11 cases" in plain
    assert "\x1b[" not in plain
    piped = run("demo")
    assert piped.returncode == 0
    assert "\x1b[" not in piped.stdout


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
