"""Real servers for the tests and the benchmarks: start, wait until it answers, stop by PID.

Every server, worker or broker a test or a benchmark runs goes through :func:`start`
(a command in a session of its own, its output to a file), :func:`wait_until_ready`
and :func:`stop` (SIGTERM to its process group, then SIGKILL), or through
:func:`serving`, which does all three around a ``with`` block.  Nothing here imports
pytest, so ``benchmarks/`` uses it too.
"""

from __future__ import annotations

import contextlib
import http.client
import importlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import IO

__all__ = [
    "ROOT",
    "ServerDidNotStart",
    "accepts_connections",
    "environment",
    "free_port",
    "gunicorn_has_control_socket",
    "listening_socket",
    "post",
    "serving",
    "start",
    "stop",
    "wait_until_ready",
]

#: The checkout: servers run from it, with it on their ``PYTHONPATH``.
ROOT = Path(__file__).resolve().parents[1]


class ServerDidNotStart(RuntimeError):
    """The process exited, or did not answer in time; the message ends with its output."""


def free_port() -> int:
    """A port of 127.0.0.1 that was free a moment ago (see :func:`listening_socket`)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def listening_socket(backlog: int = 64) -> socket.socket:
    """A socket on a free port of 127.0.0.1, handed to the server as an open descriptor.

    Passing the socket itself, rather than a port number, leaves no moment in which
    another process could take the port.
    """
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(backlog)
    sock.set_inheritable(True)
    return sock


def gunicorn_has_control_socket() -> bool:
    """Whether this gunicorn opens a control socket (in $HOME) unless told not to."""
    config = importlib.import_module("gunicorn.config")  # gunicorn ships no type hints
    return "control_socket_disable" in config.Config().settings


def post(port: int, path: str, body: bytes, headers: dict[str, str], *, timeout: float) -> int:
    """POST ``body`` to ``path`` on 127.0.0.1:``port``; the status, once the answer is read."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("POST", path, body=body, headers=headers)
        response = conn.getresponse()
        response.read()
        return response.status
    finally:
        conn.close()


def accepts_connections(port: int) -> bool:
    """Whether something accepts a TCP connection on 127.0.0.1:``port``."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def environment(**extra: str) -> dict[str, str]:
    """This process's environment with the checkout and its ``src`` first on ``PYTHONPATH``."""
    paths = [str(ROOT / "src"), str(ROOT), os.environ.get("PYTHONPATH", "")]
    return {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in paths if p), **extra}


def start(
    argv: Sequence[str],
    *,
    env: dict[str, str] | None = None,
    cwd: Path = ROOT,
    output: Path | None = None,
    pass_fds: Sequence[int] = (),
) -> subprocess.Popen[bytes]:
    """Run ``argv`` in a session of its own, its stdout and stderr appended to ``output``.

    Its own session makes it a process group that :func:`stop` ends whole (a gunicorn
    master and its workers).  Without ``output`` the output is dropped.
    """
    sink: IO[bytes] | int = output.open("ab") if output else subprocess.DEVNULL
    try:
        return subprocess.Popen(
            list(argv),
            env=environment() if env is None else env,
            cwd=cwd,
            stdout=sink,
            stderr=subprocess.STDOUT,
            pass_fds=tuple(pass_fds),
            start_new_session=True,
        )
    finally:
        if not isinstance(sink, int):
            sink.close()


def _output(output: Path | None) -> str:
    if output is not None and output.exists():
        return output.read_text(errors="replace")[-2000:]
    return ""


def wait_until_ready(
    process: subprocess.Popen[bytes],
    ready: Callable[[], bool],
    *,
    timeout: float = 30.0,
    output: Path | None = None,
) -> None:
    """Return once ``ready()`` is true; raise :class:`ServerDidNotStart` if it exits first.

    The process is stopped before the exception is raised.
    """
    deadline = time.monotonic() + timeout
    while not ready():
        if process.poll() is not None or time.monotonic() > deadline:
            why = "did not answer" if process.poll() is None else f"exited ({process.returncode})"
            stop(process)
            command = str(process.args)[:200]
            raise ServerDidNotStart(f"{command} {why}:\n{_output(output)}")
        time.sleep(0.05)


def stop(process: subprocess.Popen[bytes], timeout: float = 10.0) -> None:
    """Stop the process's whole group by its PID: SIGTERM, then SIGKILL after ``timeout``."""
    with contextlib.suppress(ProcessLookupError):
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=timeout)
        else:  # its children, if any, go too
            os.killpg(process.pid, signal.SIGKILL)


@contextlib.contextmanager
def serving(
    argv: Sequence[str],
    *,
    port: int,
    ready: Callable[[], bool] | None = None,
    env: dict[str, str] | None = None,
    cwd: Path = ROOT,
    output: Path | None = None,
    pass_fds: Sequence[int] = (),
    timeout: float = 30.0,
) -> Iterator[subprocess.Popen[bytes]]:
    """:func:`start` ``argv``, wait until it answers on ``port``, and :func:`stop` it after.

    ``ready`` says when it answers; by default, once it accepts a connection (use an
    HTTP request instead when the socket was passed in already listening).
    """
    process = start(argv, env=env, cwd=cwd, output=output, pass_fds=pass_fds)
    try:
        wait_until_ready(
            process, ready or (lambda: accepts_connections(port)), timeout=timeout, output=output
        )
        yield process
    finally:
        stop(process)
