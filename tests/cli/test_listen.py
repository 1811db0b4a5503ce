"""``hookshield listen`` and its receiver: framing, bounds, duplicates, output."""

from __future__ import annotations

import http.client
import socket
import urllib.parse

import pytest

from hookshield import testing
from hookshield.cli import main
from tests.cli.helpers import (
    MOCO_KEY,
    TIMEOUT,
    post_to,
    raw_post,
    receiver_process,
    receiver_thread,
    serving,
)


def test_listen_answers_a_replay_as_a_duplicate_and_says_so(
    capsys: pytest.CaptureFixture[str],
) -> None:
    body, headers = testing.sample_delivery("moco", "project.update", secret=MOCO_KEY)
    with serving(capsys, "-p", "moco", "--secret", MOCO_KEY, "--count", "2") as (url, finish):
        assert post_to(url, body, headers) == (200, b'{"ok":true}')
        replay = post_to(url, body, {**headers, "X-Moco-Timestamp": "1"})
        assert replay == (200, b'{"ok":true,"duplicate":true}')
        seen = finish()
    assert [r["duplicate"] for r in seen] == [False, True]
    assert seen[0]["delivery"]["events"][0]["fields"]["target"] == "Project"


def test_listen_prints_deliveries_readably(capsys: pytest.CaptureFixture[str]) -> None:
    body, headers = testing.sample_delivery("petal", "metrics", token="t")
    with receiver_thread(capsys, "-p", "petal", "--token", "t", "--count", "2") as (first, finish):
        url = first.split()[2]
        assert post_to(url, body, headers)[0] == 200
        assert post_to(url, body, {})[0] == 401
        out = first + "\n" + finish()
    assert "for Petal Metrics deliveries" in out
    assert "POST /  200" in out
    assert "metrics" in out
    assert "BAD_DATA" in out  # Petal's "bad_data" readings are shown as such, not as numbers
    assert "POST /  401  the delivery carries no credential" in out


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
            port, b"POST / HTTP/1.1\r\nHost: x\r\n" + head + b"Content-Length: 5000000\r\n\r\n"
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
    with receiver_process("-p", "petal", "--token", "t", "--count", "1") as (first, proc):
        assert first.startswith("listening on http://127.0.0.1:")
        url = first.split()[2]
        assert main(["send", url, "-p", "petal", "-e", "bandpower", "--token", "t"]) == 0
        out, _ = proc.communicate(timeout=TIMEOUT)
    assert proc.returncode == 0
    assert "POST /  200" in out
    assert "bandpower" in out
    assert "\x1b[" not in out  # not a terminal: no colour


def test_listen_refuses_bad_options(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["listen", "-p", "moco", "--secret", "s", "--count", "0"]) == 2
    assert "--count" in capsys.readouterr().err
    assert main(["listen", "-p", "moco", "--secret", "s", "--max-body-size", "0"]) == 2
    assert "--max-body-size" in capsys.readouterr().err
    assert main(["listen", "-p", "moco"]) == 2
    assert "secret" in capsys.readouterr().err


def test_listen_refuses_malformed_framing(capsys: pytest.CaptureFixture[str]) -> None:
    post = b"POST / HTTP/1.1\r\nHost: x\r\nX-Petal-Token: t\r\n"
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
