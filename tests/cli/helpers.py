"""What the command-line tests share: running the command, and receivers to send to."""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import re
import select
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

from hookshield.cli import main

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


def write(tmp_path: Path, name: str, data: bytes) -> str:
    path = tmp_path / name
    path.write_bytes(data)
    return str(path)


def parse_headers(text: str) -> dict[str, str]:
    pairs = (line.split(": ", 1) for line in text.splitlines() if line)
    return dict(pairs)


@contextlib.contextmanager
def receiver_process(*args: str) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    """``hookshield listen --port 0 ARGS`` in a subprocess; the line it starts with, and it."""
    with subprocess.Popen(
        [*PY, "listen", "--port", "0", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=clean_env(),
    ) as proc:
        try:
            assert proc.stdout is not None
            ready, _, _ = select.select([proc.stdout], [], [], TIMEOUT)
            assert ready, "the receiver did not start"
            yield proc.stdout.readline(), proc
        finally:
            if proc.poll() is None:
                proc.kill()


@contextlib.contextmanager
def listening(*args: str) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    """``hookshield listen --json`` on a free loopback port; its URL and process."""
    with receiver_process("--json", *args) as (first, proc):
        url = json.loads(first)["listening"]
        assert url.startswith("http://127.0.0.1:")
        yield url, proc


def records(proc: subprocess.Popen[str]) -> list[dict[str, Any]]:
    """The JSON lines a receiver printed, once it has stopped by itself."""
    out, err = proc.communicate(timeout=TIMEOUT)
    assert proc.returncode == 0, err
    return [json.loads(line) for line in out.splitlines()]


@contextlib.contextmanager
def receiver_thread(
    capsys: pytest.CaptureFixture[str], *args: str
) -> Iterator[tuple[str, Callable[[], str]]]:
    """``main(["listen", "--port", "0", ...])`` in a thread; the line it starts with, and a
    function that waits for it to stop by itself (``--count``) and returns what it printed
    after that line."""
    codes: list[int] = []
    thread = threading.Thread(target=lambda: codes.append(main(["listen", "--port", "0", *args])))
    thread.start()
    text = ""
    deadline = time.monotonic() + TIMEOUT
    while "\n" not in text and time.monotonic() < deadline:
        time.sleep(0.01)
        text += capsys.readouterr().out
    first, _, text = text.partition("\n")
    address = re.search(r"http://127\.0\.0\.1:\d+", first)
    assert address is not None, f"the receiver did not start: {first!r}"

    def finish() -> str:
        thread.join(TIMEOUT)
        assert not thread.is_alive(), "the receiver did not stop after --count deliveries"
        assert codes == [0]
        return text + capsys.readouterr().out

    try:
        yield first, finish
    finally:
        # If the test failed early, feed the receiver its remaining deliveries so it stops.
        for _ in range(100):
            if not thread.is_alive():
                break
            with contextlib.suppress(OSError):
                post_to(address.group(), b"{}", {})
        thread.join(TIMEOUT)


@contextlib.contextmanager
def serving(
    capsys: pytest.CaptureFixture[str], *args: str
) -> Iterator[tuple[str, Callable[[], list[dict[str, Any]]]]]:
    """``main(["listen", "--json", ...])`` in a thread; its URL and a function that waits
    for it to stop by itself (``--count``) and returns the JSON lines it printed."""
    with receiver_thread(capsys, "--json", *args) as (first, finish_text):

        def finish() -> list[dict[str, Any]]:
            return [json.loads(line) for line in finish_text().splitlines()]

        yield json.loads(first)["listening"], finish


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
