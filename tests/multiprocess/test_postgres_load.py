"""Several hosts' worth of processes on one PostgreSQL database, under load, with kills.

gunicorn ``-w 4`` stores every delivery (``PostgresDedupeStore``, ``PostgresInbox``);
two ``hookshield worker`` processes run them; hundreds of deliveries are each sent
three times at once from eight client threads, which retry as senders do.  During
the load a gunicorn worker and a hookshield worker are killed with SIGKILL, the
latter in the middle of a route.  Every delivery runs; none twice, except the one the
killed hookshield worker was running, and one the killed gunicorn worker had stored
but not yet marked done (its row's id carries that worker's pid).  The routes
(``tests/integration/apps.py``) log a start and an end line per run.
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
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from hookshield.testing import sample_body, sign

from .. import servers
from ..integration.apps import SECRET
from ..postgres_server import PostgresServer

KEY = "load-test-inbox-key-0123456789abcdef"
#: Deliveries, each sent three times; one of them is slow the first time it runs.
COUNT = 150


def signed(event_id: str) -> tuple[bytes, dict[str, str]]:
    payload = json.loads(sample_body("mindpeeker", "session.completed"))
    payload["id"] = event_id
    body = json.dumps(payload).encode()
    return body, sign("mindpeeker", body, secret=SECRET)


def deliver(port: int, body: bytes, headers: dict[str, str], until: float) -> int:
    """POST as a sender does: again after a pause while the answer is not 2xx."""
    while True:
        try:
            status = servers.post(port, "/hooks", body, headers, timeout=10)
        except (OSError, http.client.HTTPException):
            status = 0  # the connection broke (a killed worker): a sender retries that too
        if 200 <= status < 300 or time.monotonic() > until:
            return status
        time.sleep(0.1)


def children(pid: int) -> list[int]:
    """The child processes of ``pid`` (a gunicorn master's workers)."""
    text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    return [int(child) for child in text.split()]


@pytest.fixture
def processes(tmp_path: Path) -> Iterator[list[subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for process in started:
        servers.stop(process)


def runs(log: Path) -> list[tuple[str, str, int]]:
    if not log.exists():
        return []
    found = []
    for line in log.read_text().splitlines():
        what, event_id, pid, _ = line.split()
        found.append((what, event_id, int(pid)))
    return found


def test_gunicorn_and_two_workers_on_postgresql_run_each_delivery_once_through_kills(
    tmp_path: Path, postgres_server: PostgresServer, processes: list[subprocess.Popen[bytes]]
) -> None:
    dsn = postgres_server.create_database(f"load_{random.randrange(10**9)}")
    log = tmp_path / "runs.log"
    env = servers.environment(
        HOOKSHIELD_TEST_DSN=dsn, HOOKSHIELD_INBOX_KEY=KEY, HOOKSHIELD_TEST_LOG=str(log)
    )
    assert (
        subprocess.run(
            [sys.executable, "-m", "hookshield", "inbox", "init", "--inbox", dsn],
            env=env,
            capture_output=True,
            timeout=60,
        ).returncode
        == 0
    )

    sock = servers.listening_socket(backlog=256)
    port: int = sock.getsockname()[1]
    argv = [sys.executable, "-m", "gunicorn", "--workers", "4", "--bind", f"fd://{sock.fileno()}"]
    argv += ["--no-control-socket"] if servers.gunicorn_has_control_socket() else []
    argv.append("tests.multiprocess.pg_app:app")
    web = servers.start(argv, env=env, output=tmp_path / "gunicorn.out", pass_fds=(sock.fileno(),))
    processes.append(web)
    sock.close()

    def ready() -> bool:
        try:
            return servers.post(port, "/hooks", b"", {}, timeout=5) == 401
        except OSError:
            return False

    servers.wait_until_ready(web, ready, output=tmp_path / "gunicorn.out")
    workers = [
        servers.start(
            [
                *(sys.executable, "-m", "hookshield", "worker", "tests.integration.apps:hooks"),
                *("--inbox", dsn, "--concurrency", "2", "--lease", "3", "--poll", "1"),
            ],
            env=env,
            output=tmp_path / f"worker-{n}.out",
        )
        for n in range(2)
    ]
    processes.extend(workers)

    ids = [f"evt-{n:03d}" for n in range(COUNT)]
    ids[COUNT // 3] = "evt-load-slow"  # its route sleeps 60 s the first time: killed in it
    attempts = [event_id for event_id in ids for _ in range(3)]
    random.shuffle(attempts)
    deliveries = {event_id: signed(event_id) for event_id in ids}
    statuses: Counter[int] = Counter()
    lock = threading.Lock()
    until = time.monotonic() + 45

    def client(share: list[str]) -> None:
        for event_id in share:
            status = deliver(port, *deliveries[event_id], until)
            with lock:
                statuses[status] += 1

    threads = [threading.Thread(target=client, args=(attempts[i::8],)) for i in range(8)]
    for thread in threads:
        thread.start()
    # A third of the way in, a gunicorn worker dies, whatever it was doing.
    while sum(statuses.values()) < len(attempts) // 3 and any(t.is_alive() for t in threads):
        time.sleep(0.01)
    killed_web = random.choice(children(web.pid))
    os.kill(killed_web, signal.SIGKILL)
    # The hookshield worker running the slow route dies in it.
    deadline = time.monotonic() + 30
    while not any(e == "evt-load-slow" for w, e, _ in runs(log) if w == "start"):
        assert time.monotonic() < deadline, "the slow route never started"
        time.sleep(0.02)
    (victim,) = {pid for w, e, pid in runs(log) if w == "start" and e == "evt-load-slow"}
    os.kill(victim, signal.SIGKILL)
    for thread in threads:
        thread.join(60)
    assert statuses == Counter({200: len(attempts)})  # every attempt acknowledged, at last

    deadline = time.monotonic() + 30
    while {e for w, e, _ in runs(log) if w == "end"} != set(ids):
        assert time.monotonic() < deadline, "not every delivery ran"
        time.sleep(0.1)
    started = Counter(e for w, e, _ in runs(log) if w == "start")
    ended = Counter(e for w, e, _ in runs(log) if w == "end")
    assert started["evt-load-slow"] == 2 and ended["evt-load-slow"] == 1
    with psycopg.connect(dsn) as conn:
        stored = Counter(
            json.loads(bytes(body))["id"]
            for (body,) in conn.execute("SELECT body FROM hookshield_inbox").fetchall()
        )
        ids_by_event: dict[str, list[str]] = {}
        for row_id, body in conn.execute("SELECT id, body FROM hookshield_inbox").fetchall():
            ids_by_event.setdefault(json.loads(bytes(body))["id"], []).append(row_id)
    twice = {e for e, n in ended.items() if n > 1}
    # Only a delivery the killed web worker stored, then died before marking it done, may
    # have been stored (and so run) twice: one of its rows carries that worker's pid.
    for event_id in twice:
        assert stored[event_id] == 2
        assert any(row[12:16] == f"{killed_web & 0xFFFF:04x}" for row in ids_by_event[event_id])
    # What the killed hookshield worker had started and not finished runs again: the slow
    # route, and (at --concurrency 2) whatever its other thread was in the middle of.
    unfinished = {e for w, e, p in runs(log) if w == "start" and p == victim} - {
        e for w, e, p in runs(log) if w == "end" and p == victim
    }
    assert "evt-load-slow" in unfinished and len(unfinished) <= 2
    assert all(n == 1 for e, n in started.items() if e not in unfinished | twice)
    assert len(twice) <= 1
    served = {pid for w, _, pid in runs(log)}
    assert len(served & {w.pid for w in workers}) == 2  # both workers took part
