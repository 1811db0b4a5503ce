"""The served comparisons: real servers on 127.0.0.1 under load, requests/s and latency.

Two claims of the documentation need a real server rather than the in-process stack:

* the ASGI page's, that a plain route handed to a thread costs a server requests per
  second that the same route written ``async def`` (or ``inline=True``) does not, and
  that the hand-written endpoint loses more when it hands its work to Starlette's
  thread pool: Starlette on uvicorn (one process) serving
  :data:`benchmarks.apps.SERVED_ENDPOINTS`, each loaded in turn, round after round,
  the best round kept;
* the durable page's, how fast Flask on gunicorn (four workers) acknowledges with
  ``background=True``, an SQLite inbox, a Celery inbox on a local Redis and a
  PostgreSQL inbox (with its de-duplication store) on a local server, at 1 KB and
  64 KB; how many deliveries one and four ``hookshield worker`` processes run a
  second; and how long a waiting worker takes to start a delivery just stored
  (``LISTEN/NOTIFY`` against the SQLite inbox's poll).

Every server starts and stops through :mod:`tests.servers`.  The load is this
process, one thread driving every connection with :mod:`selectors` over request
bytes written out beforehand, so that it costs the machine little beside the server
(it is otherwise idle while the server works).  Deliveries are distinct, so that
de-duplication drops none.
"""

from __future__ import annotations

import secrets
import selectors
import socket
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests import servers
from tests.postgres_server import PostgresServer, postgres_binaries
from tests.redis_server import RedisServer, redis_server_binary

from .apps import SERVED_ENDPOINTS
from .payloads import padded

__all__ = ["LOAD", "drive", "measure", "request"]

#: Requests per endpoint and round, rounds, and connections, by mode.
LOAD = {"full": (4000, 5, 4), "quick": (1000, 2, 4), "tiny": (30, 1, 2)}
_WARMUP = 50


def request(path: str, port: int, size: str = "1 KB") -> bytes:
    """A new signed MindPeeker delivery of ``size`` to ``path``, written out as HTTP/1.1 bytes."""
    delivery = padded("mindpeeker", size)
    lines = [f"POST {path} HTTP/1.1", f"Host: 127.0.0.1:{port}"]
    lines += [f"{name}: {value}" for name, value in delivery.headers.items()]
    lines.append(f"Content-Length: {len(delivery.body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + delivery.body


def _answer(buffer: bytearray) -> tuple[int, bool] | None:
    """The status of the response in ``buffer`` and whether the server closes after it;
    ``None`` while it is incomplete.  The servers here frame by ``Content-Length``."""
    end = buffer.find(b"\r\n\r\n")
    if end < 0:
        return None
    status_line, *lines = buffer[:end].decode("latin-1").lower().split("\r\n")
    fields = dict(line.split(":", 1) for line in lines)
    if "content-length" not in fields:
        raise RuntimeError(f"an answer without Content-Length: {status_line!r}")
    if len(buffer) < end + 4 + int(fields["content-length"]):
        return None
    return int(status_line.split()[1]), "close" in fields.get("connection", "")


@dataclass(slots=True)
class _Connection:
    sock: socket.socket
    buffer: bytearray = field(default_factory=bytearray)
    sent_at: float = 0.0


def drive(
    port: int, requests: Sequence[bytes], concurrency: int, timeout: float = 30.0
) -> tuple[float, list[float], Counter[int]]:
    """Send every request over ``concurrency`` connections, each sending its next as soon
    as it is answered; the seconds taken, each latency, and the count of each status."""
    queue = iter(requests)
    selector = selectors.DefaultSelector()
    latencies: list[float] = []
    statuses: Counter[int] = Counter()

    def send_next(conn: _Connection | None, close: bool = False) -> None:
        request = next(queue, None)
        if conn is not None and (request is None or close):
            selector.unregister(conn.sock)
            conn.sock.close()
            conn = None
        if request is None:
            return
        if conn is None:
            sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            conn = _Connection(sock)
            selector.register(sock, selectors.EVENT_READ, conn)
        conn.buffer.clear()
        conn.sent_at = time.perf_counter()
        conn.sock.sendall(request)

    start = time.perf_counter()
    try:
        for _ in range(concurrency):
            send_next(None)
        while selector.get_map():
            ready = selector.select(timeout)
            if not ready:
                raise RuntimeError(f"no answer within {timeout} s")
            for key, _ in ready:
                conn: _Connection = key.data
                data = conn.sock.recv(65536)
                if not data:
                    raise RuntimeError("the server closed a connection without answering")
                conn.buffer += data
                answer = _answer(conn.buffer)
                if answer is not None:
                    latencies.append(time.perf_counter() - conn.sent_at)
                    statuses[answer[0]] += 1
                    send_next(conn, close=answer[1])
    finally:
        for key in list(selector.get_map().values()):
            key.fileobj.close()  # type: ignore[union-attr]
        selector.close()
    return time.perf_counter() - start, latencies, statuses


def _summary(seconds: float, latencies: list[float], statuses: Counter[int]) -> dict[str, Any]:
    ordered = sorted(latencies)
    return {
        "requests": len(latencies),
        "rps": len(latencies) / seconds,
        "p50_ms": statistics.median(ordered) * 1e3,
        "p99_ms": ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))] * 1e3,
        "statuses": {str(status): count for status, count in sorted(statuses.items())},
    }


@contextmanager
def _served(argv: list[str], env: dict[str, str], folder: Path) -> Iterator[int]:
    port = servers.free_port()
    argv = [arg.replace("{port}", str(port)) for arg in argv]
    with servers.serving(argv, port=port, env=env, output=folder / "server.out"):
        yield port


def asgi_routes(mode: str, folder: Path) -> list[dict[str, Any]]:
    """Starlette on uvicorn: each of :data:`SERVED_ENDPOINTS`, best round of each."""
    requests, rounds, concurrency = LOAD[mode]
    argv = [sys.executable, "-m", "uvicorn", "--factory", "benchmarks.apps:served_starlette"]
    argv += ["--host", "127.0.0.1", "--port", "{port}", "--log-level", "warning"]
    argv += ["--no-access-log"]
    env = servers.environment(HOOKSHIELD_NO_SPEEDUPS="1")  # as the hand-written: json.loads
    best: dict[str, dict[str, Any]] = {}
    with _served(argv, env, folder) as port:
        for endpoint in SERVED_ENDPOINTS:
            drive(port, [request(endpoint, port) for _ in range(_WARMUP)], 1)
        for _ in range(rounds):
            for endpoint in SERVED_ENDPOINTS:
                load = [request(endpoint, port) for _ in range(requests)]
                summary = _summary(*drive(port, load, concurrency))
                if endpoint not in best or summary["rps"] > best[endpoint]["rps"]:
                    best[endpoint] = summary
    return [{"endpoint": endpoint, **summary} for endpoint, summary in best.items()]


#: The sizes of the deliveries acknowledged with each ``background=``.
INBOX_SIZES = ("1 KB", "64 KB")
#: The key that seals the inboxes' rows and the Celery messages of a run.
_KEY = secrets.token_hex(32)


@contextmanager
def _postgres() -> Iterator[str | None]:
    """The URL of a database on a PostgreSQL server of the run's own; ``None`` without one."""
    binaries = postgres_binaries()
    if binaries is None:
        yield None
        return
    server = PostgresServer(binaries).start()
    try:
        yield server.create_database("bench")
    finally:
        server.remove()


def inbox(mode: str, folder: Path, dsn: str | None = None) -> list[dict[str, Any]]:
    """Flask on gunicorn -w 4: acknowledgements with each ``background=``, at each size."""
    requests, _, _ = LOAD[mode]
    binary = redis_server_binary()
    modes = ["memory", "sqlite"] + (["celery"] if binary else []) + (["postgres"] if dsn else [])
    broker = RedisServer(binary).start() if binary else None
    rows = []
    try:
        for background in modes:
            env = servers.environment(
                HOOKSHIELD_NO_SPEEDUPS="1",
                HOOKSHIELD_BENCH_INBOX=str(folder / f"{background}.db"),
                HOOKSHIELD_BENCH_BROKER=broker.url if broker else "",
                HOOKSHIELD_BENCH_DSN=dsn or "",
                HOOKSHIELD_INBOX_KEY=_KEY,
            )
            argv = [sys.executable, "-m", "gunicorn", "--bind", "127.0.0.1:{port}"]
            argv += ["--workers", "4", "--log-level", "warning"]
            argv += ["--no-control-socket"] if servers.gunicorn_has_control_socket() else []
            argv.append(f"benchmarks.apps:flask_inbox_app({background!r})")
            with _served(argv, env, folder) as port:
                drive(port, [request("/hookshield/", port) for _ in range(_WARMUP)], 1)
                for size in INBOX_SIZES:
                    load = [request("/hookshield/", port, size) for _ in range(requests)]
                    summary = _summary(*drive(port, load, 8))
                    rows.append({"background": background, "size": size, **summary})
    finally:
        if broker is not None:
            broker.stop()
    return rows


#: Deliveries a worker measurement runs, and the puts the wake-up one times, by mode.
WORKER_LOAD = {"full": (2000, 40), "quick": (600, 20), "tiny": (40, 5)}


def _inboxes(folder: Path, dsn: str | None) -> dict[str, str]:
    """The inboxes the worker measurements run: an SQLite file, and PostgreSQL's."""
    found = {"sqlite": str(folder / "workers.db")}
    if dsn:
        found["postgres"] = dsn
    return found


def _worker(where: str, env: dict[str, str], folder: Path, name: str) -> Any:
    argv = [sys.executable, "-m", "hookshield", "worker", "benchmarks.apps:worker_hooks"]
    argv += ["--inbox", where, "--create", "--lease", "60"]
    return servers.start(argv, env=env, output=folder / f"{name}.out")


def _log_lines(log: Path) -> list[tuple[str, float]]:
    if not log.exists():
        return []
    return [(p[0], float(p[1])) for p in (line.split() for line in log.read_text().splitlines())]


def _wait(condition: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        time.sleep(0.01)


def _stored(size: str = "1 KB") -> Any:
    from hookshield import StoredDelivery
    from hookshield._durable.inbox import new_id

    delivery = padded("mindpeeker", size)
    now = time.time()
    return StoredDelivery(
        id=new_id(now),
        sender="mindpeeker",
        handler="mindpeeker",
        body=delivery.body,
        headers=tuple((k.lower(), v) for k, v in delivery.headers.items()),
        received=now,
        next_attempt=now,
    )


def workers(mode: str, folder: Path, dsn: str | None = None) -> list[dict[str, Any]]:
    """``hookshield worker`` processes on one inbox: deliveries run a second, 1 and 4 of them.

    The deliveries are stored while their sender is paused and the workers are up and
    waiting; then it is resumed, and the rate is taken from the first delivery's start
    to the last's (how soon a worker notices is :func:`wakeup`'s measure).
    """
    from hookshield import open_inbox

    count, _ = WORKER_LOAD[mode]
    rows = []
    for kind, where in _inboxes(folder, dsn).items():
        for processes in (1, 4):
            log = folder / f"workers-{kind}-{processes}.log"
            env = servers.environment(HOOKSHIELD_INBOX_KEY=_KEY, HOOKSHIELD_BENCH_LOG=str(log))
            store = open_inbox(where, key=_KEY)
            store.pause("mindpeeker")
            for _ in range(count):
                store.put(_stored())
            started = [_worker(where, env, folder, f"w-{kind}-{n}") for n in range(processes)]
            try:
                time.sleep(1.0)  # each has started, looked and found nothing it may run
                store.resume("mindpeeker")
                _wait(lambda log=log: len(_log_lines(log)) >= count, 300, "every delivery to run")
                times = [at for _, at in _log_lines(log)]
            finally:
                for process in started:
                    servers.stop(process)
            store.purge("done", time.time() + 1, limit=count * 2)
            store.close()
            rows.append(
                {
                    "inbox": kind,
                    "workers": processes,
                    "deliveries": count,
                    "per_second": (count - 1) / max(max(times) - min(times), 1e-9),
                }
            )
    return rows


def wakeup(mode: str, folder: Path, dsn: str | None = None) -> list[dict[str, Any]]:
    """The time from ``put`` to a waiting worker starting the delivery, by inbox."""
    from hookshield import open_inbox

    _, puts = WORKER_LOAD[mode]
    rows = []
    for kind, where in _inboxes(folder, dsn).items():
        log = folder / f"wakeup-{kind}.log"
        env = servers.environment(HOOKSHIELD_INBOX_KEY=_KEY, HOOKSHIELD_BENCH_LOG=str(log))
        store = open_inbox(where, key=_KEY)
        store.counts()
        process = _worker(where, env, folder, f"wakeup-{kind}")
        waits = []
        try:
            time.sleep(1.0)  # up, and waiting
            for n in range(puts):
                delivery = _stored()
                put_at = time.time()
                store.put(delivery)
                _wait(lambda n=n, log=log: len(_log_lines(log)) > n, 30, "the delivery to start")
                waits.append(_log_lines(log)[n][1] - put_at)
                time.sleep(0.13)  # not in step with the worker's poll
        finally:
            servers.stop(process)
            store.close()
        ordered = sorted(waits)
        rows.append(
            {
                "inbox": kind,
                "puts": puts,
                "p50_ms": statistics.median(ordered) * 1e3,
                "p99_ms": ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))] * 1e3,
            }
        )
    return rows


def measure(mode: str) -> dict[str, Any]:
    """Every served comparison; what could not be run is named in ``notes``."""
    notes = []
    with tempfile.TemporaryDirectory(prefix="hookshield-bench-") as scratch:
        folder = Path(scratch)
        found: dict[str, Any] = {"mode": mode, "load": LOAD[mode]}
        try:
            found["asgi"] = asgi_routes(mode, folder)
        except (RuntimeError, OSError) as exc:
            notes.append(f"asgi: not measured: {str(exc)[-500:]}")
        with _postgres() as dsn:
            for name, run in (("inbox", inbox), ("workers", workers), ("wakeup", wakeup)):
                try:
                    found[name] = run(mode, folder, dsn)
                except (RuntimeError, OSError) as exc:
                    notes.append(f"{name}: not measured: {str(exc)[-500:]}")
        if redis_server_binary() is None:
            notes.append("inbox: no redis-server here, so no Celery row")
        if postgres_binaries() is None:
            notes.append("inbox, workers, wakeup: no PostgreSQL server here, so no PostgreSQL rows")
    found["notes"] = notes
    return found
