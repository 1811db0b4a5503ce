"""Several worker processes, one shared store: every delivery dispatched exactly once.

Real servers on 127.0.0.1 (gunicorn ``-w 4`` serving Flask, uvicorn ``--workers 2``
serving Starlette), real HTTP from several client threads, a real SQLite file or
redis-server, and real signals: a worker killed with SIGKILL mid-route, and one ended
by gunicorn's own worker timeout (which raises ``SystemExit`` in the route).  Each
server is stopped by its PID.
"""

from __future__ import annotations

import http.client
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pytest

from hookshield.testing import sample_delivery

from .. import servers
from ..servers import gunicorn_has_control_socket, listening_socket, post
from . import SECRET

ROOT = Path(__file__).resolve().parents[2]
TIMEOUT = 15.0


@dataclass
class Server:
    """A running server, its process group, and the log its route writes."""

    process: subprocess.Popen[bytes]
    port: int
    log: Path
    output: Path

    def post(self, body: bytes, headers: dict[str, str]) -> int:
        return post(self.port, "/hooks/mindpeeker", body, headers, timeout=TIMEOUT)

    def deliver(self, body: bytes, headers: dict[str, str], *, until: float) -> int:
        """Post as a sender does: again, after a pause, while the answer is not 2xx."""
        while True:
            try:
                status = self.post(body, headers)
            except (OSError, http.client.HTTPException):
                status = 0  # the connection broke: a sender retries that too
            if 200 <= status < 300 or time.monotonic() > until:
                return status
            time.sleep(0.2)

    def lines(self, kind: str) -> list[tuple[str, int]]:
        """The ``(marker, pid)`` of every log line of ``kind`` (``done`` or ``began``)."""
        if not self.log.exists():
            return []
        found = []
        for line in self.log.read_text().splitlines():
            word, marker, pid = line.split()
            if word == kind:
                found.append((marker, int(pid)))
        return found

    def wait_for(self, kind: str, marker: str, seconds: float = TIMEOUT) -> int:
        """The pid that logged ``kind`` for ``marker``, once it has."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            for found, pid in self.lines(kind):
                if found == marker:
                    return pid
            time.sleep(0.05)
        pytest.fail(f"no {kind!r} line for {marker} in {seconds} s:\n{self.output.read_text()}")


def start(kind: str, store: str, workdir: Path, *, lease: float, timeout: int = 30) -> Server:
    """Start ``kind`` (gunicorn or uvicorn) on a free port; return once it answers."""
    log, output = workdir / "dispatched.log", workdir / "server.out"
    listening = listening_socket(backlog=256)
    sock, port = listening.fileno(), listening.getsockname()[1]
    with listening:
        workers = 4 if kind == "gunicorn" else 2
        if kind == "gunicorn":
            cmd = [sys.executable, "-m", "gunicorn", "--workers", str(workers)]
            cmd += ["--bind", f"fd://{sock}"]
            cmd += ["--timeout", str(timeout), "--graceful-timeout", "3"]
            if gunicorn_has_control_socket():
                cmd.append("--no-control-socket")  # it would go in $HOME
            cmd.append("tests.multiprocess.app:app")
        else:
            cmd = [sys.executable, "-m", "uvicorn", "--workers", str(workers), "--fd", str(sock)]
            cmd += ["--no-access-log", "--timeout-graceful-shutdown", "3"]
            cmd.append("tests.multiprocess.app:asgi_app")
        env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
            "HOOKSHIELD_STORE": store,
            "HOOKSHIELD_LEASE": str(lease),
            "HOOKSHIELD_TEST_LOG": str(log),
        }
        process = servers.start(cmd, env=env, output=output, pass_fds=(sock,))
    server = Server(process, port, log, output)

    def ready() -> bool:
        # Every worker has loaded the app, and one answers, refusing an unsigned delivery.
        if len({pid for _, pid in server.lines("up")}) < workers:
            return False
        try:
            return server.post(b"", {}) == 401
        except (OSError, http.client.HTTPException):
            return False

    servers.wait_until_ready(process, ready, output=output)
    return server


def stop(server: Server) -> None:
    """Stop the server's whole process group by its PID: TERM, then KILL."""
    servers.stop(server.process)


def mindpeeker(marker: str) -> tuple[bytes, dict[str, str]]:
    """A signed delivery whose event data carries ``marker``."""
    return sample_delivery("mindpeeker", "session.completed", {"marker": marker}, secret=SECRET)


@pytest.fixture(params=["sqlite", "redis"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Where the workers keep their claims: an SQLite file, or a real redis-server."""
    if request.param == "sqlite":
        return f"sqlite:{tmp_path / 'claims.db'}"
    url: str = request.getfixturevalue("redis_url")
    # A database of its own per test, so that no test sees another's keys.
    return f"{url.rstrip('/')}/{random.randrange(1, 15)}"


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    path = tmp_path / "server"
    path.mkdir()
    return path


@pytest.mark.parametrize("kind", ["gunicorn", "uvicorn"])
def test_each_delivery_sent_several_times_at_once_is_dispatched_once(
    kind: str, store: str, workdir: Path
) -> None:
    server = start(kind, store, workdir, lease=30)
    try:
        markers = [f"m{n}-{uuid.uuid4().hex[:8]}" for n in range(60)]
        deliveries = {marker: mindpeeker(marker) for marker in markers}
        # Each delivery three times, in a shuffled order, from eight client threads at
        # once: attempts at one delivery reach different workers at the same moment.
        attempts = [marker for marker in markers for _ in range(3)]
        random.shuffle(attempts)
        statuses: Counter[int] = Counter()
        lock = threading.Lock()
        until = time.monotonic() + 60

        def client(share: list[str]) -> None:
            for marker in share:
                status = server.deliver(*deliveries[marker], until=until)
                with lock:
                    statuses[status] += 1

        threads = [threading.Thread(target=client, args=(attempts[i::8],)) for i in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(90)
        done = server.lines("done")
    finally:
        stop(server)
    assert statuses == Counter({200: len(attempts)})  # every attempt acknowledged, at last
    assert Counter(marker for marker, _ in done) == Counter(dict.fromkeys(markers, 1))
    assert len({pid for _, pid in done}) > 1  # served by several processes


def test_a_worker_killed_mid_route_leaves_a_lease_that_a_retry_outlives(
    store: str, workdir: Path
) -> None:
    # Long enough that the kill, the join and the first retry fit well inside it on a
    # loaded machine, so the 409 below cannot race the lease's end.
    lease = 4.0
    server = start("gunicorn", store, workdir, lease=lease)
    try:
        marker = f"slow-{uuid.uuid4().hex[:8]}"
        body, headers = mindpeeker(marker)
        first = threading.Thread(target=server.deliver, args=(body, headers), kwargs={"until": 0})
        first.start()
        victim = server.wait_for("began", marker)
        # The claim was taken before the route began: the lease runs out at most `lease`
        # after this moment, however long the kill and the join below take.
        began_at = time.monotonic()
        os.kill(victim, signal.SIGKILL)  # the OOM killer, a deploy, kill -9
        first.join(TIMEOUT)
        # While the dead worker's lease runs, a retry is told to come back later ...
        assert server.post(body, headers) == 409
        # ... and once it has run out, the retry runs the delivery.
        status = server.deliver(body, headers, until=began_at + lease + TIMEOUT)
        assert status == 200
        # Not released early: the half second covers the claim-to-"began" line lag.
        assert time.monotonic() - began_at >= lease - 0.5
        assert server.lines("done") == [(marker, server.wait_for("done", marker))]
        assert server.post(body, headers) == 200  # and a later retry is a duplicate
        assert len(server.lines("done")) == 1
    finally:
        stop(server)


def test_a_route_ended_by_the_worker_timeout_is_released_for_the_retry(
    store: str, workdir: Path
) -> None:
    # gunicorn ends a worker whose request takes longer than --timeout by raising
    # SystemExit in it: hookshield releases the claim on the way out, so the retry
    # runs at once rather than waiting for the lease (an hour here) to run out.
    server = start("gunicorn", store, workdir, lease=3600, timeout=2)
    try:
        marker = f"slow-{uuid.uuid4().hex[:8]}"
        body, headers = mindpeeker(marker)
        first = server.deliver(body, headers, until=0)
        assert first != 200  # the worker died answering
        server.wait_for("began", marker)
        assert server.deliver(body, headers, until=time.monotonic() + TIMEOUT) == 200
        assert [m for m, _ in server.lines("done")] == [marker]
        log = server.output.read_text()
        assert "WORKER TIMEOUT" in log
    finally:
        stop(server)


def test_the_log_lines_are_whole(tmp_path: Path) -> None:
    # The route's O_APPEND writes from several processes never interleave: the
    # counts above rely on that.
    log = tmp_path / "lines.log"
    script = (
        "import os, sys\n"
        "fd = os.open(sys.argv[1], os.O_WRONLY | os.O_APPEND | os.O_CREAT)\n"
        "for n in range(500):\n"
        "    os.write(fd, f'done m{n} {os.getpid()}\\n'.encode())\n"
    )
    writers = [subprocess.Popen([sys.executable, "-c", script, str(log)]) for _ in range(4)]
    for writer in writers:
        assert writer.wait(30) == 0
    lines = log.read_text().splitlines()
    assert len(lines) == 2000 and all(len(line.split()) == 3 for line in lines)
    assert json.dumps(sorted(Counter(line.split()[1] for line in lines).values())) == json.dumps(
        [4] * 500
    )
