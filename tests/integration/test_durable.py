"""Durable processing with real processes: gunicorn, ``hookshield worker``, Celery on Redis.

Every process is started here on 127.0.0.1, in a session of its own, and killed by
its process group's id, with SIGKILL where the point is to lose it mid-work.  The
routes (``apps.py``) write a start and an end line per run to a log file, which is
what these tests read.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis

from hookshield import SQLiteInbox, StoredDelivery
from hookshield._durable.inbox import new_id
from hookshield.testing import sample_body, sign

from .. import servers
from .apps import SECRET, hooks

#: Headers a request carries that the sender's verification does not read: none of
#: them may be kept at rest, in the inbox file or the broker.
UNRELATED = {
    "Cookie": "session=cookie-kept-at-rest",
    "X-Forwarded-For": "203.0.113.99",
    "Authorization": "Bearer bearer-kept-at-rest",
}


def signed(event_id: str) -> tuple[bytes, dict[str, str]]:
    payload = json.loads(sample_body("mindpeeker", "session.completed"))
    payload["id"] = event_id
    body = json.dumps(payload).encode()
    return body, {**sign("mindpeeker", body, secret=SECRET), **UNRELATED}


def kept_nowhere(data: bytes) -> bool:
    """Whether none of the unrelated headers' values is in ``data``."""
    return not any(value.encode() in data for value in UNRELATED.values())


def environment(tmp_path: Path, **extra: str) -> dict[str, str]:
    return servers.environment(
        HOOKSHIELD_TEST_INBOX=str(tmp_path / "inbox.db"),
        HOOKSHIELD_TEST_LOG=str(tmp_path / "runs.log"),
        **extra,
    )


class Processes:
    """Processes started by a test, each in its own session; all killed at the end."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        self.started: list[subprocess.Popen[bytes]] = []

    def start(
        self,
        argv: list[str],
        env: dict[str, str],
        name: str,
        pass_fds: tuple[int, ...] = (),
        cwd: Path = servers.ROOT,
    ) -> subprocess.Popen[bytes]:
        process = servers.start(
            argv, env=env, cwd=cwd, output=self.tmp_path / f"{name}.out", pass_fds=pass_fds
        )
        self.started.append(process)
        return process

    def kill(self, process: subprocess.Popen[bytes], signum: int = signal.SIGKILL) -> None:
        """Signal the process's whole group (a gunicorn master and its workers)."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signum)
        process.wait(10)

    def kill_all(self) -> None:
        for process in self.started:
            servers.stop(process)

    def output(self, name: str) -> str:
        path = self.tmp_path / f"{name}.out"
        return path.read_text(errors="replace") if path.exists() else ""


@pytest.fixture
def processes(tmp_path: Path) -> Iterator[Processes]:
    started = Processes(tmp_path)
    yield started
    started.kill_all()


def runs(tmp_path: Path) -> list[tuple[str, str, int, int]]:
    """The route runs logged so far: (start|end, event id, pid, monotonic ns)."""
    log = tmp_path / "runs.log"
    if not log.exists():
        return []
    found = []
    for line in log.read_text().splitlines():
        what, event_id, pid, ns = line.split()
        found.append((what, event_id, int(pid), int(ns)))
    return found


def wait_for(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.05)


def worker(
    processes: Processes, env: dict[str, str], *options: str, name: str = "worker"
) -> subprocess.Popen[bytes]:
    argv = [sys.executable, "-m", "hookshield", "worker", "tests.integration.apps:hooks"]
    argv += ["--inbox", env["HOOKSHIELD_TEST_INBOX"], "--poll", "0.05", *options]
    return processes.start(argv, env, name)


def ended(tmp_path: Path) -> Counter[str]:
    return Counter(event_id for what, event_id, _, _ in runs(tmp_path) if what == "end")


def started(tmp_path: Path) -> Counter[str]:
    return Counter(event_id for what, event_id, _, _ in runs(tmp_path) if what == "start")


# -- SQLite inbox behind gunicorn, and the worker -----------------------------------------


def post(port: int, body: bytes, headers: dict[str, str]) -> int:
    return servers.post(port, "/hooks", body, headers, timeout=10)


def gunicorn(processes: Processes, env: dict[str, str]) -> int:
    """Serve apps.flask_app() with ``gunicorn -w 2`` on a free port; its port, once ready."""
    sock = servers.listening_socket()
    port: int = sock.getsockname()[1]
    argv = [sys.executable, "-m", "gunicorn", "--workers", "2", "--bind", f"fd://{sock.fileno()}"]
    argv += ["--no-control-socket"] if servers.gunicorn_has_control_socket() else []
    argv.append("tests.integration.apps:flask_app()")
    process = processes.start(argv, env, "gunicorn", pass_fds=(sock.fileno(),))
    sock.close()

    def ready() -> bool:
        try:
            return post(port, b"", {}) == 401  # served by the app
        except OSError:
            return False

    servers.wait_until_ready(process, ready, output=processes.tmp_path / "gunicorn.out")
    return port


def test_acknowledged_deliveries_survive_a_killed_server_and_a_killed_worker(
    tmp_path: Path, processes: Processes
) -> None:
    env = environment(tmp_path)
    port = gunicorn(processes, env)
    ids = [f"evt-{n:02d}" for n in range(40)]
    ids[20] = "evt-20-slow"  # its route runs 60 s the first time: the worker is killed in it
    for event_id in ids:
        assert post(port, *signed(event_id)) == 200
    processes.kill(processes.started[0])  # SIGKILL right after the last 2xx
    assert SQLiteInbox(env["HOOKSHIELD_TEST_INBOX"]).counts()["pending"] == 40
    at_rest = b"".join(p.read_bytes() for p in tmp_path.iterdir() if p.name.startswith("inbox"))
    assert kept_nowhere(at_rest)
    assert runs(tmp_path) == []  # nothing ran in the web process

    first = worker(processes, env, "--lease", "1")
    wait_for(lambda: "evt-20-slow" in started(tmp_path), 30, "the slow route to start")
    processes.kill(first)  # mid-route
    assert "evt-20-slow" not in ended(tmp_path)

    worker(processes, env, "--lease", "1", name="worker-2")
    wait_for(lambda: set(ended(tmp_path)) == set(ids), 30, "every delivery to be run")
    # At least once, and twice only for the delivery whose worker was killed in it.
    ran = started(tmp_path)
    assert {event_id for event_id, count in ran.items() if count > 1} == {"evt-20-slow"}
    assert ran["evt-20-slow"] == 2
    assert all(count == 1 for count in ended(tmp_path).values())
    wait_for(
        lambda: SQLiteInbox(env["HOOKSHIELD_TEST_INBOX"]).counts()["done"] == 40,
        10,
        "every delivery to be marked done",
    )


def test_two_workers_never_run_one_delivery_at_once(tmp_path: Path, processes: Processes) -> None:
    # Each route waits until both workers have started one, so a worker that is slow
    # to come up still takes part (see apps.py).
    env = environment(tmp_path, HOOKSHIELD_TEST_ROUTE_SECONDS="0.04", HOOKSHIELD_TEST_WORKERS="2")
    inbox = SQLiteInbox(env["HOOKSHIELD_TEST_INBOX"])
    ids = [f"evt-{n:02d}" for n in range(60)]
    now = time.time()
    for event_id in ids:
        body, headers = signed(event_id)
        inbox.put(
            StoredDelivery(
                id=new_id(now),
                sender="mindpeeker",
                handler="mindpeeker",
                body=body,
                headers=tuple(headers.items()),
                received=now,
                next_attempt=now,
            )
        )
    both = [worker(processes, env, "--burst", name=f"worker-{n}") for n in range(2)]
    for process in both:
        assert process.wait(60) == 0, processes.output("worker-0") + processes.output("worker-1")
    log = runs(tmp_path)
    assert set(ended(tmp_path)) == set(ids)
    assert all(count == 1 for count in started(tmp_path).values())  # nobody ran one twice
    assert len({pid for _, _, pid, _ in log}) == 2  # both workers took part
    # And no two runs of one delivery overlap (each ran once, so its start precedes its end
    # in the one process that ran it).
    spans: dict[str, list[tuple[str, int, int]]] = {}
    for what, event_id, pid, ns in log:
        spans.setdefault(event_id, []).append((what, pid, ns))
    for event_id, marks in spans.items():
        assert [m[0] for m in marks] == ["start", "end"], event_id
        assert marks[0][1] == marks[1][1] and marks[0][2] <= marks[1][2]
    assert inbox.counts()["done"] == 60


# -- Celery on a real Redis ----------------------------------------------------------------


def celery_worker(processes: Processes, env: dict[str, str], name: str) -> subprocess.Popen[bytes]:
    argv = [sys.executable, "-m", "celery", "-A", "tests.integration.celery_app", "worker"]
    argv += ["-P", "solo", "--without-gossip", "--without-mingle", "--without-heartbeat"]
    argv += ["-l", "info", "-n", f"{name}@%h"]
    return processes.start(argv, env, name)


def test_celery_runs_every_delivery_and_again_after_a_killed_worker(
    tmp_path: Path, processes: Processes, redis_url: str
) -> None:
    # A database of its own on the session's redis-server: the broker's queues only.
    broker = redis_url.rsplit("/", 1)[0] + "/15"
    env = environment(tmp_path, HOOKSHIELD_TEST_BROKER=broker)
    os.environ["HOOKSHIELD_TEST_BROKER"] = env["HOOKSHIELD_TEST_BROKER"]
    try:
        import flask

        from hookshield.flask import webhook_view

        from . import celery_app

        celery_app.app.conf.broker_url = env["HOOKSHIELD_TEST_BROKER"]
        web = flask.Flask(__name__)
        web.add_url_rule("/hooks", view_func=webhook_view(hooks, background=celery_app.inbox))
        client = web.test_client()
        ids = [f"evt-{n:02d}" for n in range(20)]
        ids[5] = "evt-05-slow"
        for event_id in ids:
            body, headers = signed(event_id)
            assert client.post("/hooks", data=body, headers=headers).status_code == 200
        celery_app.app.pool.force_close_all()
    finally:
        del os.environ["HOOKSHIELD_TEST_BROKER"]
    queue = redis.Redis.from_url(broker)
    messages: list[bytes] = queue.lrange("celery", 0, -1)  # type: ignore[assignment]
    assert len(messages) == 20 and all(kept_nowhere(m) for m in messages)
    for raw in messages:
        (message,), _, _ = json.loads(base64.b64decode(json.loads(raw)["body"]))
        assert message["seal"] and {name for name, _ in message["headers"]} == {
            "content-type",
            "x-mindpeeker-signature",
        }
    # One message changed in the broker: its event id, and its signature to match.
    changed = json.loads(sample_body("mindpeeker", "session.completed"))
    changed["id"] = "evt-changed-in-broker"
    body = json.dumps(changed).encode()
    tampered_headers = sign("mindpeeker", body, secret=SECRET)
    envelope = json.loads(messages[0])
    (message,), kwargs, embed = json.loads(base64.b64decode(envelope["body"]))
    message["body"] = base64.b64encode(body).decode()
    message["headers"] = [[n.lower(), v] for n, v in tampered_headers.items()]
    envelope["body"] = base64.b64encode(json.dumps([[message], kwargs, embed]).encode()).decode()
    envelope["headers"]["id"] = envelope["properties"]["correlation_id"] = "tampered-task"
    envelope["properties"]["delivery_tag"] = "tampered-tag"
    queue.lpush("celery", json.dumps(envelope))
    queue.close()

    first = celery_worker(processes, env, "first")
    wait_for(lambda: "evt-05-slow" in started(tmp_path), 30, "the slow task to start")
    processes.kill(first)  # SIGKILL mid-task: its message was never acknowledged
    celery_worker(processes, env, "second")
    wait_for(lambda: set(ended(tmp_path)) == set(ids), 40, "every delivery to be run")
    ran = started(tmp_path)
    assert ran["evt-05-slow"] == 2
    assert {event_id for event_id, count in ran.items() if count > 1} <= {"evt-05-slow"}
    # The changed message was refused by whichever worker took it, and never run.
    logs = processes.output("first") + processes.output("second")
    assert "does not verify; it is not run: the stored delivery's seal does not match" in logs
    assert "evt-changed-in-broker" not in ran
