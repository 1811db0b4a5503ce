"""The HTTP benchmark: each adapter against its framework's hand-written endpoint.

For each framework whose adapter, framework and server are installed, one server
process is started on 127.0.0.1 with a free port (gunicorn for Flask and Django,
uvicorn for Starlette and FastAPI, one worker each) serving :mod:`benchmarks.apps`.
The load comes from :mod:`benchmarks.load` in a separate process, a bounded number of
requests, alternating between the hand-written endpoint and hookshield's; the best
requests per second of each is kept.  Then the acknowledgement latency of the
``background=True`` endpoint, whose handler sleeps, is measured one delivery at a time.
Every server started is stopped, its whole process group, before the next one starts.
A framework that cannot be served is skipped with a note saying why.

Flask is also served by gunicorn with four workers, once per de-duplication store
(:data:`STORES`, chosen through ``HOOKSHIELD_BENCH_STORE``, see :mod:`benchmarks.apps`);
the Redis row starts its own ``redis-server`` on 127.0.0.1 and stops it by its PID.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

__all__ = [
    "ASGI_ENDPOINTS",
    "ENDPOINTS",
    "FRAMEWORKS",
    "STORES",
    "Load",
    "Served",
    "ServerResult",
    "run_http",
    "run_load",
    "start_server",
    "stop_server",
    "wait_ready",
]

ROOT = Path(__file__).resolve().parent.parent

_STARLETTE = ("starlette", "hookshield.asgi", "benchmarks.apps:starlette_app")
_FASTAPI = ("fastapi", "hookshield.asgi", "benchmarks.apps:fastapi_app")

_FLASK = ("flask", "hookshield.flask", "benchmarks.apps:flask_app()")


@dataclass(frozen=True, slots=True)
class Served:
    """One server to start: the framework, its server and app, workers, dedupe store."""

    name: str
    server: str
    framework: str
    adapter: str
    target: str
    workers: int = 1
    #: ``None``: the handler's default store; else a key of :data:`STORES`.
    store: str | None = None

    @property
    def label(self) -> str:
        """How the report names this server."""
        label = server_label(self.name, self.server)
        if self.workers > 1:
            label += f" -w {self.workers}"
        return label + (f", {self.store} store" if self.store else "")


#: The de-duplication stores of the ``-w 4`` Flask rows: the modules each needs.
STORES: dict[str, tuple[str, ...]] = {
    "memory": (),
    "sqlite": (),
    "redis": ("redis", "hookshield.redis"),
}

#: The servers of the HTTP benchmark.  The ASGI apps are served twice: by uvicorn's
#: pure-Python HTTP parser on asyncio's loop, and as ``uvicorn[standard]`` serves
#: them, which most deployments install, with httptools and uvloop: a faster server
#: leaves the app's own work a larger share.
FRAMEWORKS: tuple[Served, ...] = (
    Served("Flask", "gunicorn", *_FLASK),
    Served("Django", "gunicorn", "django", "hookshield.django", "benchmarks.apps:django_app()"),
    Served("Starlette", "uvicorn", *_STARLETTE),
    Served("FastAPI", "uvicorn", *_FASTAPI),
    Served("Starlette", "uvicorn[standard]", *_STARLETTE),
    Served("FastAPI", "uvicorn[standard]", *_FASTAPI),
    *(Served("Flask", "gunicorn", *_FLASK, workers=4, store=store) for store in STORES),
)
#: The endpoints loaded on every server, and on the ASGI servers besides.
ENDPOINTS = ("/floor/", "/hook/")
ASGI_ENDPOINTS = (
    "/hook-async/",
    "/hook-inline/",
    "/floor-thread/",
)
#: The modules each server needs, besides the framework and the adapter.
_SERVER_MODULES = {
    "gunicorn": ("gunicorn",),
    "uvicorn": ("uvicorn",),
    "uvicorn[standard]": ("uvicorn", "httptools", "uvloop"),
}


@dataclass(frozen=True, slots=True)
class Load:
    """The outcome of one load run against one endpoint."""

    endpoint: str
    requests: int
    rps: float
    p50_ms: float
    p99_ms: float
    statuses: dict[str, int]
    ratio: float | None = None
    #: The server's CPU time (user + system, all its processes) per request sent, in
    #: microseconds; ``None`` where /proc does not tell it (off Linux).
    cpu_us: float | None = None
    #: The hand-written endpoint's CPU per request over this one's (above 1: cheaper).
    cpu_ratio: float | None = None
    #: The server threads' context switches per request sent; ``None`` off Linux.
    switches: float | None = None

    @property
    def ratio_text(self) -> str:
        """The ratio to the hand-written endpoint's requests per second, if there is one."""
        return "" if self.ratio is None else f"{self.ratio:.2f}"

    @property
    def cpu_text(self) -> str:
        """The server CPU per request and its ratio, as the report shows them."""
        if self.cpu_us is None:
            return ""
        return f"{self.cpu_us:.0f}" + (
            "" if self.cpu_ratio is None else f" ({self.cpu_ratio:.2f}x)"
        )

    @property
    def switches_text(self) -> str:
        """The context switches per request, as the report shows them."""
        return "" if self.switches is None else f"{self.switches:.2f}"


@dataclass(slots=True)
class ServerResult:
    """Every load run against one framework's server."""

    framework: str
    server: str
    loads: list[Load] = field(default_factory=list)
    #: The name the report gives the server (framework, server, workers, store).
    name: str = ""
    workers: int = 1
    store: str | None = None

    @property
    def server_text(self) -> str:
        """The server as the report's table names it, with its workers and store."""
        text = self.server + (f" -w {self.workers}" if self.workers > 1 else "")
        return text + (f", {self.store} store" if self.store else "")

    rps_ratio: float | None = None
    #: The hand-written endpoint's server CPU per request over ``/hook/``'s.
    cpu_ratio: float | None = None
    #: ``/hook/`` over ``/floor-thread/``: both run their work in a thread (ASGI only).
    thread_ratio: float | None = None
    ack_p99_ms: float | None = None
    #: ``/hook/`` over ``/floor/`` in each round, the two loaded one after the other:
    #: their spread shows how far the machine's other load moves the ratio.
    round_ratios: list[float] = field(default_factory=list)

    @property
    def label(self) -> str:
        """The framework's name, with the server where the framework is served twice."""
        return self.name or server_label(self.framework, self.server)


def server_label(name: str, server: str) -> str:
    return f"{name} on {server}" if server == "uvicorn[standard]" else name


def can_serve(server: str, framework: str) -> bool:
    """Whether ``server`` and ``framework`` (the report's name) are installed here."""
    modules = (*_SERVER_MODULES.get(server, (server,)), framework.lower())
    return all(installed(module) for module in modules)


def installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:
        return False


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass(frozen=True, slots=True)
class Usage:
    """What the server's processes have spent so far, from /proc."""

    #: CPU time, user and system, in seconds.
    cpu_seconds: float
    #: Context switches of each live thread by its id, voluntary and involuntary: each
    #: time one waited (for a request, for work, for the interpreter lock) or was
    #: preempted.
    switches: dict[int, int]

    def switches_since(self, before: Usage) -> int:
        """The context switches since ``before``, of the threads alive now.

        Counted thread by thread, so that a thread that ended meanwhile cannot make
        the total go down; a thread started meanwhile counts from zero.
        """
        return sum(count - before.switches.get(tid, 0) for tid, count in self.switches.items())


def _group_usage(group: int) -> Usage | None:
    """CPU time and context switches of every live process in process group ``group``.

    Read from /proc (Linux); ``None`` elsewhere.  The CPU time counts every thread,
    ended ones included, in clock ticks (10 ms): a run of a few thousand requests
    takes seconds.  The switches are those of the threads alive now.
    """
    proc = Path("/proc")
    if not (proc / str(group) / "stat").is_file():
        return None
    ticks = 0
    switches: dict[int, int] = {}
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            text = (entry / "stat").read_text(encoding="ascii", errors="replace")
            # After "pid (command)": state, ppid, pgrp, ... utime and stime are the 12th
            # and 13th; the command may hold spaces and parentheses, so split after the
            # last ")".
            fields = text.rpartition(")")[2].split()
            if len(fields) <= 12 or int(fields[2]) != group:
                continue
            ticks += int(fields[11]) + int(fields[12])
            for task in (entry / "task").iterdir():
                if task.name.isdigit():
                    switches[int(task.name)] = _task_switches(task / "status")
        except OSError:  # the process ended meanwhile
            continue
    return Usage(ticks / os.sysconf("SC_CLK_TCK"), switches)


def _task_switches(status: Path) -> int:
    try:
        lines = status.read_text(encoding="ascii", errors="replace").splitlines()
    except OSError:  # the thread ended meanwhile
        return 0
    return sum(
        int(line.partition(":")[2])
        for line in lines
        if line.startswith(("voluntary_ctxt_switches:", "nonvoluntary_ctxt_switches:"))
    )


def _command(server: str, target: str, port: int, workers: int = 1) -> list[str]:
    if server == "gunicorn":
        return [
            sys.executable, "-m", "gunicorn",
            "--bind", f"127.0.0.1:{port}",
            "--workers", str(workers),
            "--graceful-timeout", "2",
            "--log-level", "warning",
            target,
        ]  # fmt: skip
    # Named, not left to uvicorn's choice, which takes httptools and uvloop when found.
    fast = server == "uvicorn[standard]"
    return [
        sys.executable, "-m", "uvicorn",
        "--factory", target,
        "--host", "127.0.0.1",
        "--port", str(port),
        "--http", "httptools" if fast else "h11",
        "--loop", "uvloop" if fast else "asyncio",
        "--log-level", "warning",
        "--no-access-log",
        "--timeout-graceful-shutdown", "2",
    ]  # fmt: skip


def bench_environment(sleep: float) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    env["HOOKSHIELD_BENCH_SLEEP"] = str(sleep)
    # hookshield as it ships, with the standard library's JSON decoder, as the
    # hand-written endpoints have it.
    env["HOOKSHIELD_NO_SPEEDUPS"] = "1"
    return env


def start_server(
    server: str, target: str, env: dict[str, str], workers: int = 1, cwd: Path = ROOT
) -> tuple[subprocess.Popen[bytes], int]:
    """``server`` serving ``target`` on a free port of 127.0.0.1, and that port.

    The server runs in a session of its own, so that stopping it stops its whole
    process group; its standard error is kept for the message if it fails to start.
    """
    port = _free_port()
    process = subprocess.Popen(  # noqa: S603 - this interpreter, arguments built here
        _command(server, target, port, workers),
        env=env,
        cwd=cwd,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    return process, port


def wait_ready(process: subprocess.Popen[bytes], port: int, timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return False
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.1)
    return False


def stop_server(process: subprocess.Popen[bytes]) -> None:
    # The server was started in a session of its own: stop its whole group (the
    # master and its worker), politely first.
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=8)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=8)


_WARMUP = 20  # requests sent before each timed run, on one connection


def run_load(
    url: str,
    requests: int,
    concurrency: int,
    *,
    ack: bool,
    env: dict[str, str],
    warmup: int | None = None,
) -> dict[str, object]:
    """The summary of :mod:`benchmarks.load` run against ``url``.

    ``warmup`` requests (by default a few when timing the acknowledgement, more
    otherwise) go before the timed run, on one connection.
    """
    if warmup is None:
        warmup = 5 if ack else _WARMUP
    command = [
        sys.executable, "-m", "benchmarks.load",
        "--url", url,
        "--requests", str(requests),
        "--concurrency", str(concurrency),
        "--warmup", str(warmup),
    ]  # fmt: skip
    if ack:
        command.append("--ack")
    done = subprocess.run(  # noqa: S603 - this interpreter, arguments built here
        command, env=env, cwd=ROOT, capture_output=True, text=True, timeout=600, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"the load generator failed: {done.stderr.strip()[-500:]}")
    summary: dict[str, object] = json.loads(done.stdout)
    return summary


def _as_load(endpoint: str, summary: dict[str, object]) -> Load:
    def number(key: str) -> float:
        value = summary[key]
        return float(value) if isinstance(value, (int, float)) else 0.0

    statuses = summary.get("statuses")
    return Load(
        endpoint=endpoint,
        requests=int(number("requests")),
        rps=number("rps"),
        p50_ms=number("p50_ms"),
        p99_ms=number("p99_ms"),
        statuses=dict(statuses) if isinstance(statuses, dict) else {},
    )


@contextmanager
def _store_environment(store: str | None, env: dict[str, str]) -> Iterator[dict[str, str]]:
    """``env`` naming ``store`` for the Flask app; a Redis store gets its own redis-server."""
    if store is None:
        yield env
        return
    with tempfile.TemporaryDirectory(prefix="hookshield-bench-") as scratch:
        if store != "redis":
            spec = "memory" if store == "memory" else f"sqlite:{scratch}/dedupe.db"
            yield {**env, "HOOKSHIELD_BENCH_STORE": spec}
            return
        port = _free_port()
        redis = subprocess.Popen(  # noqa: S603 - arguments built here
            [_REDIS_SERVER or "redis-server", "--bind", "127.0.0.1", "--port", str(port),
             "--save", "", "--appendonly", "no", "--dir", scratch],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )  # fmt: skip
        try:
            if not wait_ready(redis, port):
                raise RuntimeError("redis-server did not start")
            yield {**env, "HOOKSHIELD_BENCH_STORE": f"redis://127.0.0.1:{port}/0"}
        finally:
            stop_server(redis)


_REDIS_SERVER = shutil.which("redis-server")


def _has_sqlite_store() -> bool:
    return hasattr(importlib.import_module("hookshield"), "SQLiteDedupeStore")


def _serve(
    served: Served,
    *,
    requests: int,
    rounds: int,
    ack_requests: int,
    sleep: float,
    concurrency: int,
    notes: list[str],
) -> ServerResult | None:
    try:
        with _store_environment(served.store, bench_environment(sleep)) as env:
            return _serve_in(
                served,
                env,
                requests=requests,
                rounds=rounds,
                ack_requests=ack_requests,
                concurrency=concurrency,
                notes=notes,
            )
    except RuntimeError as exc:
        notes.append(f"{served.label}: not measured: {exc}")
        return None


def _serve_in(
    served: Served,
    env: dict[str, str],
    *,
    requests: int,
    rounds: int,
    ack_requests: int,
    concurrency: int,
    notes: list[str],
) -> ServerResult | None:
    name, server = served.name, served.server
    process, port = start_server(server, served.target, env, served.workers)
    try:
        if not wait_ready(process, port):
            stop_server(process)
            error = process.stderr.read().decode(errors="replace") if process.stderr else ""
            notes.append(
                f"{served.label}: the {server} server did not start: {error.strip()[-300:]}"
            )
            return None
        base = f"http://127.0.0.1:{port}"
        best: dict[str, Load] = {}
        endpoints = list(ENDPOINTS)
        if server.startswith("uvicorn"):
            # The same route as `async def` and on the loop, and the hand-written
            # work in a thread.
            endpoints += ASGI_ENDPOINTS
        cpu: dict[str, list[float]] = {endpoint: [] for endpoint in endpoints}
        switches: dict[str, list[float]] = {endpoint: [] for endpoint in endpoints}
        rates: dict[str, list[float]] = {endpoint: [] for endpoint in endpoints}
        for _ in range(rounds):
            for endpoint in endpoints:
                before = _group_usage(process.pid)
                summary = run_load(base + endpoint, requests, concurrency, ack=False, env=env)
                after = _group_usage(process.pid)
                load = _as_load(endpoint, summary)
                if before is not None and after is not None:
                    sent = requests + _WARMUP
                    cpu[endpoint].append((after.cpu_seconds - before.cpu_seconds) / sent * 1e6)
                    switches[endpoint].append(after.switches_since(before) / sent)
                rates[endpoint].append(load.rps)
                if endpoint not in best or load.rps > best[endpoint].rps:
                    best[endpoint] = load
        # The least CPU (and switches) per request of the rounds, as the most requests
        # per second is kept.
        least = {endpoint: min(spent) for endpoint, spent in cpu.items() if spent}
        fewest = {endpoint: min(counts) for endpoint, counts in switches.items() if counts}
        floor_cpu = least.get("/floor/")
        floor, hook = best["/floor/"], best["/hook/"]
        result = ServerResult(
            name, server, name=served.label, workers=served.workers, store=served.store
        )
        ratio = hook.rps / floor.rps if floor.rps else None
        result.loads = []
        for endpoint, load in best.items():
            spent = least.get(endpoint)
            result.loads.append(
                dataclasses.replace(
                    load,
                    ratio=None if endpoint == "/floor/" or not floor.rps else load.rps / floor.rps,
                    cpu_us=spent,
                    cpu_ratio=None
                    if endpoint == "/floor/" or not spent or floor_cpu is None
                    else floor_cpu / spent,
                    switches=fewest.get(endpoint),
                )
            )
        result.rps_ratio = ratio
        result.round_ratios = [
            hook_rps / floor_rps
            for hook_rps, floor_rps in zip(rates["/hook/"], rates["/floor/"], strict=True)
            if floor_rps
        ]
        result.cpu_ratio = next(x.cpu_ratio for x in result.loads if x.endpoint == "/hook/")
        threaded = best.get("/floor-thread/")
        if threaded is not None and threaded.rps:
            result.thread_ratio = hook.rps / threaded.rps
        if served.store is None:  # the acknowledgement does not depend on the store
            ack = _as_load(
                "/hook-background/ (ack)",
                run_load(base + "/hook-background/", ack_requests, 1, ack=True, env=env),
            )
            result.loads.append(ack)
            result.ack_p99_ms = ack.p99_ms
        notes.extend(
            f"{result.label} {load.endpoint}: answers other than 200: {load.statuses}"
            for load in result.loads
            if set(load.statuses) != {"200"}
        )
        return result
    except (RuntimeError, subprocess.TimeoutExpired, ValueError) as exc:
        notes.append(f"{served.label}: the load run failed: {exc}")
        return None
    finally:
        stop_server(process)
        if process.stderr is not None:
            process.stderr.close()


def run_http(
    *,
    requests: int,
    rounds: int,
    ack_requests: int,
    sleep: float,
    concurrency: int = 4,
    servers: Sequence[Served] = FRAMEWORKS,
) -> tuple[list[ServerResult], list[str]]:
    """Serve each framework in turn and load it; the results and the notes on what was skipped."""
    results: list[ServerResult] = []
    notes: list[str] = []
    for entry in servers:
        needed = (entry.adapter, entry.framework, *_SERVER_MODULES[entry.server])
        if entry.store is not None:
            needed += STORES[entry.store]
        missing = [m for m in needed if not installed(m)]
        if entry.store == "redis" and _REDIS_SERVER is None:
            missing.append("redis-server")
        if entry.store == "sqlite" and not _has_sqlite_store():
            missing.append("hookshield.SQLiteDedupeStore")
        if missing:
            notes.append(
                f"{entry.label} skipped: {', '.join(missing)} not installed or not written yet."
            )
            continue
        served = _serve(
            entry,
            requests=requests,
            rounds=rounds,
            ack_requests=ack_requests,
            sleep=sleep,
            concurrency=concurrency,
            notes=notes,
        )
        if served is not None:
            results.append(served)
    return results, notes
