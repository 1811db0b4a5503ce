"""The durable inbox's cost: ``python -m benchmarks.inbox [--quick]`` prints a Markdown table.

Three measurements, each on this machine:

1. **The web side under load.**  Flask on gunicorn with 4 workers, answering 1 KB
   signed MindPeeker deliveries from :mod:`benchmarks.load` (a separate process,
   distinct deliveries over several connections), with ``background=True`` (the
   in-memory pool, which may lose work), ``background=SQLiteInbox(...)`` and
   ``background=CeleryInbox(...)`` on a local Redis.  Reported: acknowledged requests
   per second and the p99 time to the acknowledgement.  Targets: p99 under 50 ms,
   and at least half the requests per second of the in-memory pool.
2. **The worker.**  Deliveries stored in a SQLite inbox, run by one in-process
   :func:`hookshield.run_worker` on a route that does nothing.  Target: 1,000/s.
3. **The web side's own cost per delivery**, in-process, without HTTP: HMAC only
   (the floor: authenticate the raw bytes), verify (HMAC and decode), and
   accept-and-store into a SQLite inbox, at 1 KB and 1 MB.

:func:`measure` returns the rows as dictionaries, for the tests and the report.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from . import web
from .payloads import MAX_BODY_SIZE, SECRET, padded

__all__ = ["flask_app", "main", "measure"]

ROOT = Path(__file__).resolve().parent.parent


# -- what is served -----------------------------------------------------------------------


def flask_app(mode: str) -> Any:
    """The benchmark's Flask app: ``mode`` is ``memory``, ``sqlite`` or ``celery``."""
    import flask

    from hookshield import SQLiteInbox, WebhookHandler
    from hookshield.flask import webhook_view

    handler = WebhookHandler("mindpeeker", secret=SECRET)
    handler.on("*")(lambda event: None)
    background: Any = True
    if mode == "sqlite":
        background = SQLiteInbox(os.environ["HOOKSHIELD_BENCH_INBOX"])
    elif mode == "celery":
        import celery

        from hookshield.celery import CeleryInbox

        tasks = celery.Celery("bench", broker=os.environ["HOOKSHIELD_BENCH_BROKER"])
        background = CeleryInbox(tasks, handler, key="benchmark-inbox-key-0123456789")
    app = flask.Flask(__name__)
    app.add_url_rule("/hooks", view_func=webhook_view(handler, background=background))
    return app


# -- processes -------------------------------------------------------------------------------


def _environment(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    paths = [str(ROOT / "src"), str(ROOT), env.get("PYTHONPATH", "")]
    env["PYTHONPATH"] = os.pathsep.join(p for p in paths if p)
    env.update(extra)
    return env


@contextmanager
def _gunicorn(mode: str, env: dict[str, str], workers: int = 4) -> Iterator[int]:
    target = f"benchmarks.inbox:flask_app({mode!r})"
    process, port = web.start_server("gunicorn", target, env, workers)
    try:
        if not web.wait_ready(process, port):
            web.stop_server(process)
            error = process.stderr.read().decode(errors="replace") if process.stderr else ""
            raise RuntimeError(f"the server did not start: {error.strip()[-500:]}")
        yield port
    finally:
        web.stop_server(process)
        if process.stderr is not None:
            process.stderr.close()


@contextmanager
def _redis(workdir: str) -> Iterator[int | None]:
    """A redis-server of our own for the Celery broker (``None`` without a binary)."""
    del workdir  # the server keeps nothing on disk
    from tests.redis_server import RedisServer, redis_server_binary

    binary = redis_server_binary()
    if binary is None:
        yield None
        return
    server = RedisServer(binary).start()
    try:
        yield server.port
    finally:
        server.stop()


# -- the measurements ----------------------------------------------------------------------


def _web(quick: bool, workdir: str) -> list[dict[str, Any]]:
    requests, concurrency = (400, 8) if quick else (4000, 8)
    rows: list[dict[str, Any]] = []
    with _redis(workdir) as redis_port:
        modes = ["memory", "sqlite"] + (["celery"] if redis_port is not None else [])
        for mode in modes:
            env = _environment(
                HOOKSHIELD_BENCH_INBOX=os.path.join(workdir, f"{mode}.db"),
                HOOKSHIELD_BENCH_BROKER=f"redis://127.0.0.1:{redis_port}/0",
            )
            with _gunicorn(mode, env) as port:
                summary = web.run_load(
                    f"http://127.0.0.1:{port}/hooks",
                    requests,
                    concurrency,
                    ack=False,
                    env=env,
                    warmup=40,
                )
            rows.append(
                {
                    "name": f"Flask + gunicorn -w 4, background={_LABELS[mode]}",
                    "rps": summary["rps"],
                    "p99_ms": summary["p99_ms"],
                    "statuses": summary["statuses"],
                }
            )
    floor = rows[0]["rps"]
    for row in rows[1:]:
        row["vs_memory"] = row["rps"] / floor if floor else 0.0
        row["met"] = row["p99_ms"] < 50 and row["vs_memory"] >= 0.5
    return rows


_LABELS = {"memory": "True (in memory)", "sqlite": "SQLiteInbox", "celery": "CeleryInbox (Redis)"}


def _stored(inbox: Any, count: int) -> None:
    from hookshield import WebhookHandler
    from hookshield._background import store

    handler = WebhookHandler("mindpeeker", secret=SECRET, dedupe=None)
    for _ in range(count):
        payload = padded("mindpeeker", "1 KB", 1024)
        outcome = store(handler, inbox, payload.body, payload.headers)
        if outcome.status != 200:
            raise RuntimeError(f"could not store: {outcome}")


def _worker(quick: bool, workdir: str) -> dict[str, Any]:
    from hookshield import SQLiteInbox, WebhookHandler, run_worker

    count = 500 if quick else 5000
    inbox = SQLiteInbox(os.path.join(workdir, "worker.db"))
    _stored(inbox, count)
    handler = WebhookHandler("mindpeeker", secret=SECRET, dedupe=None)
    handler.on("*")(lambda event: None)
    start = time.perf_counter()
    stats = run_worker(inbox, handler, burst=True, handle_signals=False)
    seconds = time.perf_counter() - start
    inbox.close()
    if stats.done != count:
        raise RuntimeError(f"the worker ran {stats.done} of {count}")
    rate = count / seconds
    return {
        "name": "hookshield worker, SQLite inbox, no-op route",
        "per_s": rate,
        "met": rate >= 1000,
    }


def _per_delivery(quick: bool, workdir: str) -> list[dict[str, Any]]:
    from hookshield import SQLiteInbox, WebhookHandler

    handler = WebhookHandler("mindpeeker", secret=SECRET, dedupe=None, max_body_size=MAX_BODY_SIZE)
    rows = []
    for label, size in (("1 KB", 1024), ("1 MB", 1024 * 1024)):
        rounds = (50 if size > 1024 else 500) if quick else (200 if size > 1024 else 3000)
        payloads = [padded("mindpeeker", label, size) for _ in range(rounds)]
        inbox = SQLiteInbox(os.path.join(workdir, f"cost-{size}.db"))
        timings = _costs(handler, inbox, payloads)
        inbox.close()
        floor = timings["HMAC only"]
        for step, micros in timings.items():
            rows.append({"name": f"{step}, {label}", "us": micros, "x_floor": micros / floor})
    return rows


def _costs(handler: Any, inbox: Any, payloads: Sequence[Any]) -> dict[str, float]:
    """Microseconds per delivery of each way the web side may take it in."""
    from hookshield import StoredDelivery
    from hookshield._background import store
    from hookshield._inbox import new_id

    def undecoded(p: Any) -> None:
        # What the web side would do if the worker decoded: authenticate the raw
        # bytes, hash them for the exact-redelivery check, store, acknowledge.
        handler.authenticate(p.body, p.headers)
        digest = hashlib.sha256(p.body).hexdigest()
        now = time.time()
        inbox.put(
            StoredDelivery(
                id=new_id(now), sender="mindpeeker", handler="mindpeeker", body=p.body,
                headers=tuple(p.headers.items()), received=now, events=(digest,),
            )
        )  # fmt: skip

    steps = {
        "HMAC only": lambda p: handler.authenticate(p.body, p.headers),
        "verify (HMAC + decode)": lambda p: handler.verify(p.body, p.headers),
        "verify + store (fsync), as shipped": lambda p: store(handler, inbox, p.body, p.headers),
        "HMAC + SHA-256 + store, no decode": undecoded,
    }
    timings = {}
    for step, run in steps.items():
        start = time.perf_counter()
        for payload in payloads:
            run(payload)
        timings[step] = (time.perf_counter() - start) / len(payloads) * 1e6
    return timings


def measure(quick: bool) -> list[dict[str, Any]]:
    """Run every measurement; one dictionary per row of the report."""
    with tempfile.TemporaryDirectory(prefix="hookshield-inbox-bench-") as workdir:
        rows = _web(quick, workdir)
        rows.append(_worker(quick, workdir))
        rows += _per_delivery(quick, workdir)
    return rows


def report(rows: Sequence[dict[str, Any]]) -> str:
    """The rows as Markdown tables."""
    web = [r for r in rows if "rps" in r]
    work = [r for r in rows if "per_s" in r]
    cost = [r for r in rows if "us" in r]
    lines = [
        "| Web side (1 KB, 8 connections) | acknowledged/s | p99 ms | vs in memory | target met |",
        "| --- | ---: | ---: | ---: | --- |",
    ]
    for r in web:
        ratio = f"{r['vs_memory']:.2f}x" if "vs_memory" in r else "1.00x"
        met = "-" if "met" not in r else ("yes" if r["met"] else "no")
        lines.append(f"| {r['name']} | {r['rps']:,.0f} | {r['p99_ms']:.1f} | {ratio} | {met} |")
    lines += ["", "| Worker | deliveries/s | target met (1,000/s) |", "| --- | ---: | --- |"]
    for r in work:
        lines.append(f"| {r['name']} | {r['per_s']:,.0f} | {'yes' if r['met'] else 'no'} |")
    lines += [
        "",
        "| Web side's own work per delivery | us | x HMAC only |",
        "| --- | ---: | ---: |",
    ]
    for r in cost:
        lines.append(f"| {r['name']} | {r['us']:,.1f} | {r['x_floor']:.2f} |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    """Measure, and print the Markdown tables."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer requests: a smoke run")
    args = parser.parse_args(argv)
    print(report(measure(args.quick)))


if __name__ == "__main__":
    main()
