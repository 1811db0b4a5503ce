"""Real servers: gunicorn serving Flask and Django, uvicorn serving Starlette and FastAPI.

Each server runs as a subprocess on 127.0.0.1 with a free port, once per framework,
and gets real HTTP requests over a socket (``http.client``), including a chunked
upload that never ends.  The apps are in ``servers/``.
"""

from __future__ import annotations

import http.client
import os
import socket
import sys
import time
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from .. import servers
from .support import MOCO_SIGNATURE, SENDERS, SMALL_LIMIT, delivery, forged

ROOT = servers.ROOT
TIMEOUT = 10.0


def command(kind: str, fd: int) -> list[str]:
    gunicorn = [sys.executable, "-m", "gunicorn", "--bind", f"fd://{fd}", "--workers", "1"]
    gunicorn += ["--graceful-timeout", "5", "--chdir", str(ROOT)]
    if servers.gunicorn_has_control_socket():
        gunicorn.append("--no-control-socket")  # it would go in $HOME
    uvicorn = [sys.executable, "-m", "uvicorn", "--fd", str(fd)]
    uvicorn += ["--app-dir", str(ROOT), "--no-access-log", "--timeout-graceful-shutdown", "5"]
    return {
        "flask-gunicorn": [*gunicorn, "tests.adapters.servers.flask_server:app"],
        "django-gunicorn": [*gunicorn, "tests.adapters.servers.django_server:application"],
        "starlette-uvicorn": [*uvicorn, "tests.adapters.servers.starlette_server:app"],
        "fastapi-uvicorn": [*uvicorn, "tests.adapters.servers.fastapi_server:app"],
    }[kind]


@dataclass
class Server:
    """A running server and the log its handlers write."""

    name: str
    port: int
    log: Path

    def request(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, bytes]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=TIMEOUT)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            response = conn.getresponse()
            return response.status, response.read()
        finally:
            conn.close()

    def handled(self, marker: str) -> int:
        """How many times an event with ``marker`` was handled."""
        if not self.log.exists():
            return 0
        return sum(line.split()[1] == marker for line in self.log.read_text().splitlines())


def answers_http(port: int) -> bool:
    """Whether the server answers; the socket already listens, so connecting is not enough."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.request("GET", "/hooks/moco")
        conn.getresponse().read()
        return True
    except OSError:
        return False
    finally:
        conn.close()


@pytest.fixture(
    scope="module",
    params=["flask-gunicorn", "django-gunicorn", "starlette-uvicorn", "fastapi-uvicorn"],
)
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    """Start the server once per module, and stop it after its tests."""
    name: str = request.param
    workdir = tmp_path_factory.mktemp(name)
    log, output = workdir / "handled.log", workdir / "server.out"
    sock = servers.listening_socket()
    port: int = sock.getsockname()[1]
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
        "HOOKSHIELD_TEST_LOG": str(log),
        "DJANGO_SETTINGS_MODULE": "tests.adapters.servers.django_server",
    }
    with (
        sock,
        servers.serving(
            command(name, sock.fileno()),
            port=port,
            ready=lambda: answers_http(port),
            env=env,
            output=output,
            pass_fds=(sock.fileno(),),
        ),
    ):
        sock.close()  # the server holds it now
        yield Server(name, port, log)


@pytest.mark.parametrize("sender", SENDERS)
def test_each_sender_is_verified_and_handled_once(server: Server, sender: str) -> None:
    body, headers, marker = delivery(sender)
    assert server.request("POST", f"/hooks/{sender}", body, headers)[0] == 200
    duplicate, _ = server.request("POST", f"/hooks/{sender}", body, headers)
    assert duplicate == 200
    assert server.handled(marker) == 1


@pytest.mark.parametrize("sender", SENDERS)
def test_a_forged_delivery_is_refused(server: Server, sender: str) -> None:
    body, headers, marker = forged(sender)
    status, answer = server.request("POST", f"/hooks/{sender}", body, headers)
    assert status == 401
    assert b"Traceback" not in answer
    assert server.handled(marker) == 0


def test_a_moonsense_delivery_replayed_as_forms_runs_once(server: Server) -> None:
    # A captured JSON delivery re-sent as payload=<the JSON> plus any other field: its
    # signature is over the JSON, so each verified, and each got a key of its own.
    body, headers, marker = delivery("moonsense")
    assert server.request("POST", "/hooks/moonsense", body, headers)[0] == 200
    form = {**headers, "Content-Type": "application/x-www-form-urlencoded"}
    twin = urllib.parse.urlencode({"payload": body.decode()}).encode()
    assert server.request("POST", "/hooks/moonsense", twin, form)[0] == 200  # a duplicate
    for number in range(1, 6):
        replay = twin + f"&n={number}".encode()
        status, answer = server.request("POST", "/hooks/moonsense", replay, form)
        assert status == 401
        assert b"exactly one 'payload' field" in answer
    assert server.handled(marker) == 1


def test_another_method_gets_405(server: Server) -> None:
    assert server.request("GET", "/hooks/moco")[0] == 405


def test_a_content_length_over_the_limit_gets_413(server: Server) -> None:
    body, headers, marker = delivery("moco", pad=2 * SMALL_LIMIT)
    assert server.request("POST", "/hooks/small", body, headers)[0] == 413
    # Declared far over the limit and never sent: refused before reading.
    status, _ = server.request(
        "POST", "/hooks/small", headers={**headers, "Content-Length": str(10**9)}
    )
    assert status == 413
    assert server.handled(marker) == 0


def test_a_delivery_without_its_token_is_refused_before_its_body(server: Server) -> None:
    # As a flood would: 20 connections at once, each declaring a 20 MB body (within
    # Momentum's 25 MiB limit, so that only the credential can refuse it) and sending
    # 1 KB of it.  A server that read the body before looking for the token would
    # wait for the rest, and no answer would come before the timeout.  gunicorn's
    # sync worker, once it has answered, waits about 2 s for the unread body before
    # it takes the next connection (its own doing, and why docs/workers.md puts a
    # buffering proxy in front), so it gets one.
    count = 20 if "uvicorn" in server.name else 1
    head = (
        b"POST /hooks/momentum HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        b"Content-Type: application/json\r\nContent-Length: 20000000\r\n\r\n"
    )
    connections = []
    try:
        for _ in range(count):
            conn = socket.create_connection(("127.0.0.1", server.port), timeout=TIMEOUT)
            connections.append(conn)
            conn.sendall(head + b"[" + b" " * 1023)
        for conn in connections:
            response = http.client.HTTPResponse(conn)
            response.begin()
            assert response.status == 401
            assert b"credential" in response.read()
    finally:
        for conn in connections:
            conn.close()


def test_a_chunked_upload_over_the_limit_is_cut_off(server: Server) -> None:
    # The upload never sends its last chunk: an adapter that waited for the whole body
    # would never answer, and this test would time out.
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=TIMEOUT)
    try:
        conn.putrequest("POST", "/hooks/small")
        conn.putheader("Content-Type", "application/json")
        conn.putheader("Transfer-Encoding", "chunked")
        for name, value in MOCO_SIGNATURE.items():
            conn.putheader(name, value)
        conn.endheaders()
        chunk = b"x" * 512
        try:
            for _ in range(4 * SMALL_LIMIT // len(chunk)):
                conn.send(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        except OSError:
            pass  # the server may close as soon as it has answered
        response = conn.getresponse()
        assert response.status == 413
    finally:
        conn.close()


def test_a_chunked_upload_within_the_limit_is_handled(server: Server) -> None:
    body, headers, marker = delivery("moco")
    headers = {k: v for k, v in headers.items() if k.lower() != "content-length"}
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=TIMEOUT)
    try:
        conn.request("POST", "/hooks/moco", body=iter([body[:100], body[100:]]), headers=headers)
        assert conn.getresponse().status == 200
    finally:
        conn.close()
    assert server.handled(marker) == 1


def test_background_mode_answers_before_the_handler_runs(server: Server) -> None:
    body, headers, marker = delivery("mindpeeker")
    assert server.request("POST", "/hooks/background", body, headers)[0] == 200
    # Answered while the handler still waits for its gate.
    assert server.handled(marker) == 0
    (server.log.parent / f"gate-{marker}").touch()
    deadline = time.monotonic() + TIMEOUT
    while server.handled(marker) == 0 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert server.handled(marker) == 1
